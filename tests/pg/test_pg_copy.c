/*
 * `mcpr store copy` (issue 16): SQLite → PostgreSQL → SQLite gives the
 * same answers to the read commands; a copy into a store that already
 * holds part of the rows (an interrupted copy, an earlier ingest) stores
 * the rest and nothing twice; running it again writes nothing. Skipped
 * without MCPR_TEST_PG_URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pg_fixture.h"
#include "testutil.h"

static void run_ok(cli_result *r, const char *const *args) {
  cli_spec spec = {.args = args, .timeout_ms = 120000};
  cli_run(&spec, r);
  if (r->exit_code != 0)
    fail_msg("mcpr %s %s: exit %d: %s", args[0], args[1], r->exit_code, r->err);
}

static char *output(const char *db, const char *const *args) {
  const char *argv[16];
  size_t n = 0;
  for (; args[n]; n++)
    argv[n] = args[n];
  argv[n++] = "--db";
  argv[n++] = db;
  argv[n] = NULL;
  cli_result r;
  run_ok(&r, argv);
  char *out = r.out;
  r.out = NULL;
  cli_result_free(&r);
  return out;
}

static void assert_same(const char *a, const char *b, const char *const *args) {
  char *x = output(a, args), *y = output(b, args);
  if (strcmp(x, y) != 0)
    fail_msg("`mcpr %s %s` differs between %s and the copy:\n%s\n---\n%s", args[0], args[1], a,
             x, y);
  free(x);
  free(y);
}

static void test_copy_both_ways_resumable(void **state) {
  (void)state;
  PG_REQUIRE();
  int lock = pg_lock(0);
  pg_space sp;
  pg_space_init(&sp, "copy");
  char *dir = tu_tmpdir();
  char *src = tu_path(dir, "src.db"), *back = tu_path(dir, "back.db");
  char *half = tu_path(dir, "half.ndjson");
  const char *sample = MCPR_TEST_SOURCE_DIR "/examples/sample-traffic.ndjson";
  cli_result r;
  run_ok(&r, (const char *const[]){"ingest", sample, "--db", src, NULL});
  cli_result_free(&r);
  /* The destination already holds the first 120 lines: a copy that was
   * interrupted part-way. */
  char *all = tu_read_text(sample);
  char *cut = all;
  for (int i = 0; i < 120 && cut; i++)
    cut = strchr(cut, '\n') ? strchr(cut, '\n') + 1 : NULL;
  assert_non_null(cut);
  *cut = '\0';
  tu_write_text(half, all);
  free(all);
  run_ok(&r, (const char *const[]){"ingest", half, "--db", sp.url, NULL});
  cli_result_free(&r);
  long long before = pg_int(&sp, "SELECT count(*) FROM requests");
  assert_true(before > 0 && before < 250);

  run_ok(&r, (const char *const[]){"store", "copy", "--from", src, "--to", sp.url, NULL});
  assert_non_null(strstr(r.out, "already there"));
  assert_null(strstr(r.out, pg_url())); /* the password is not shown */
  cli_result_free(&r);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM requests"), 250);
  assert_int_equal(pg_int(&sp, "SELECT count(DISTINCT request_id) FROM requests"), 250);

  const char *const logs[] = {"proxy", "logs", "--since", "1000w", "--tail", "1000", "--json", NULL};
  const char *const slow[] = {"proxy", "slow", "--since", "1000w", "--threshold", "1us", "--json", NULL};
  const char *const status[] = {"proxy", "status", "--since", "1000w", "--json", NULL};
  const char *const sessions[] = {"proxy", "sessions", "--since", "1000w", "--json", NULL};
  const char *const clients[] = {"proxy", "clients", "--since", "1000w", "--json", NULL};
  const char *const schema[] = {"proxy", "schema", "--json", NULL};
  const char *const *checks[] = {logs, slow, status, sessions, clients, schema};
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
    assert_same(src, sp.url, checks[i]);

  /* Again: nothing is written twice. */
  run_ok(&r, (const char *const[]){"store", "copy", "--from", src, "--to", sp.url, NULL});
  assert_non_null(strstr(r.out, ": 0 rows written"));
  cli_result_free(&r);
  assert_int_equal(pg_int(&sp, "SELECT sum(total_calls) FROM sessions"),
                   pg_int(&sp, "SELECT count(*) FROM requests r JOIN sessions s"
                               " ON s.session_id = r.session_id"));

  /* And back into a new SQLite file. */
  run_ok(&r, (const char *const[]){"store", "copy", "--from", sp.url, "--to", back, NULL});
  cli_result_free(&r);
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
    assert_same(src, back, checks[i]);

  cli_runv(&r, "store", "copy", "--from", src, NULL);
  assert_int_equal(r.exit_code, 2);
  cli_result_free(&r);
  free(src);
  free(back);
  free(half);
  tu_rmdir(dir);
  pg_space_drop(&sp);
  pg_unlock(lock);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_copy_both_ways_resumable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

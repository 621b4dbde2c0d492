/* Messages of the CLI, end to end: a bad value is one line naming the
 * flag and one line of hint (not the whole help, as clap's "For more
 * information, try '--help'"); counts agree with their noun ("1 error"). */
#include <stdlib.h>
#include <string.h>

#include "cli_check.h"
#include "store_fixtures.h"
#include "testutil.h"

static void test_bad_value_one_line_and_hint(void **state) {
  (void)state;
  static const struct {
    const char *args[6];
    const char *flag, *hint;
  } cases[] = {
      {{"proxy", "logs", "--tail", "0"}, "--tail", "Run 'mcpr proxy logs --help' for its usage.\n"},
      {{"proxy", "slow", "--threshold", "fast"}, "--threshold",
       "Run 'mcpr proxy slow --help' for its usage.\n"},
      {{"proxy", "sessions", "--since", "5x"}, "--since",
       "Run 'mcpr proxy sessions --help' for its usage.\n"},
      {{"store", "vacuum", "--before", "-1d"}, "--before",
       "Run 'mcpr store vacuum --help' for its usage.\n"},
      {{"proxy", "logs", "--bogus"}, "--bogus", "Run 'mcpr proxy logs --help' for its usage.\n"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_result r;
    run_on(&r, "/nonexistent/dir/x.db", cases[i].args);
    const char *nl = strchr(r.err, '\n');
    if (r.exit_code != 2 || r.out_len || strncmp(r.err, "mcpr: ", 6) != 0 || !nl ||
        !strstr(r.err, cases[i].flag) || strstr(nl, cases[i].flag) ||
        strcmp(nl + 1, cases[i].hint) != 0)
      fail_msg("case %zu: exit %d, want 'mcpr: …%s…' and the hint, got:\n%s", i, r.exit_code,
               cases[i].flag, r.err);
    cli_result_free(&r);
  }
}

static void test_error_counts_agree(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), *db = tu_path(dir, "store.db");
  mcpr_store *s = sf_open(db, 0, 0);
  int64_t now = mcpr_now_ms();
  sf_record(s, sf_session("sess-one", now - 60000, "claude"));
  char id[MCPR_UUID_STRLEN + 1];
  mcpr_uuid_v7(now - 5000, id);
  mcpr_store_event e = sf_request(id, now - 5000, "sess-one");
  e.u.request.status = MCPR_REQUEST_ERROR;
  sf_record(s, e);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  cli_result r;
  RUN_ON(&r, db, "proxy", "session", "sess-one");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "calls     1 (1 error)\n"));
  cli_result_free(&r);
  free(db);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_value_one_line_and_hint),
      cmocka_unit_test(test_error_counts_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* `mcpr store rollup` and the hint read commands give on a store whose
 * rows are not in its rollups (issue 15): a store of the original's with
 * millions of row ids above the watermark gets one line on stderr from a
 * read command, whose answer is unchanged; `store rollup` builds them
 * without that line, and the next read says nothing more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_check.h"
#include "store_fixtures.h"
#include "testutil.h"

static void test_hint_then_rollup(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  sf_build_legacy(path, 4);
  /* An id far up, as if the original had written 3M requests. */
  sf_exec(path, "INSERT INTO requests (id, request_id, ts, proxy, method, tool, latency_us,"
                " status) VALUES (3000000, 'r-far', 1700000000000, 'p', 'tools/call', 'x',"
                " 5000, 'ok')");
  cli_result r;
  RUN_ON(&r, path, "proxy", "logs", "--since", "100000d", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.err, "mcpr store rollup"));
  assert_non_null(strstr(r.err, "3000000 requests"));
  char *before = strdup(r.out);
  cli_result_free(&r);

  RUN_ON(&r, path, "store", "rollup");
  assert_int_equal(r.exit_code, 0);
  /* no hint, no progress off a terminal: only the index the original's
   * layout lacks (sessions by last seen), built last */
  assert_string_equal(r.err, "building index mcpr_sessions_seen: SQLite builds it in one"
                             " transaction, and writers wait until it is done (an index on"
                             " requests: about a minute per 10M of them)\n");
  assert_non_null(strstr(r.out, "Rolled up 4 requests in "));
  assert_non_null(strstr(r.out, "; 0 left.\n"));
  cli_result_free(&r);
  /* nothing left in the -wal for every later command to read back */
  char wal[4096];
  struct stat sb;
  snprintf(wal, sizeof wal, "%s-wal", path);
  assert_true(stat(wal, &sb) != 0 || sb.st_size == 0);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'"),
                   3000000);
  assert_int_equal(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_hour"), 4);

  RUN_ON(&r, path, "proxy", "logs", "--since", "100000d", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(r.err_len, 0);
  assert_string_equal(r.out, before);
  cli_result_free(&r);
  free(before);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hint_then_rollup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

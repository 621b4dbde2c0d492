/* JSON numbers in the CLI's output are shortest round-trip, end to end:
 * an error rate of 1 in 6 is "error_pct":16.67 and 1 in 18 is 5.56 — never
 * jansson's 17-digit 16.670000000000002 or 5.5599999999999996. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_check.h"
#include "store_fixtures.h"
#include "testutil.h"

static char *dir, *db;

/* Tool six: 6 calls, 1 error (16.67%), in session s-six of client "six";
 * tool eighteen: 18 calls, 1 error (5.56%), in session s-eighteen. */
static int setup(void **state) {
  (void)state;
  dir = tu_tmpdir();
  db = tu_path(dir, "store.db");
  mcpr_store *s = sf_open(db, 0, 0);
  int64_t now = mcpr_now_ms();
  sf_record(s, sf_session("s-six", now - 60000, "six"));
  sf_record(s, sf_session("s-eighteen", now - 60000, "eighteen"));
  static const struct {
    const char *tool, *session;
    int calls;
  } tools[] = {{"six", "s-six", 6}, {"eighteen", "s-eighteen", 18}};
  int n = 0;
  for (size_t t = 0; t < 2; t++)
    for (int i = 0; i < tools[t].calls; i++) {
      char id[MCPR_UUID_STRLEN + 1];
      mcpr_uuid_v7(now - 50000 + n++, id);
      mcpr_store_event e = sf_request(id, now - 50000 + n, tools[t].session);
      e.u.request.tool = tools[t].tool;
      e.u.request.latency_us = 1000 + i; /* averages that are not whole */
      if (i == 0) {
        e.u.request.status = MCPR_REQUEST_ERROR;
        e.u.request.error_code = "-32000";
      }
      sf_record(s, e);
    }
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(db);
  tu_rmdir(dir);
  return 0;
}

static void assert_no_long_reals(const char *out) {
  if (strstr(out, "0000000") || strstr(out, "9999999"))
    fail_msg("a 17-digit real in:\n%s", out);
}

static void test_status_error_pct(void **state) {
  (void)state;
  cli_result r;
  RUN_ON(&r, db, "proxy", "status", "--since", "1h", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_no_long_reals(r.out);
  assert_non_null(strstr(r.out, "\"label\":\"six\",\"calls\":6,"));
  assert_non_null(strstr(r.out, "\"error_pct\":16.67,"));
  assert_non_null(strstr(r.out, "\"error_pct\":5.56,"));
  assert_non_null(strstr(r.out, "\"error_pct\":8.33,")); /* overall: 2 in 24 */
  cli_result_free(&r);
}

static void test_clients_error_pct(void **state) {
  (void)state;
  cli_result r;
  RUN_ON(&r, db, "proxy", "clients", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_no_long_reals(r.out);
  assert_non_null(strstr(r.out, "\"client_name\":\"six\""));
  assert_non_null(strstr(r.out, "\"error_pct\":16.67,"));
  assert_non_null(strstr(r.out, "\"error_pct\":5.56,"));
  /* Still numbers, equal to the rounded rates. */
  for (size_t i = 0; i < nd_count(r.out); i++) {
    json_t *o = nd_line(r.out, i);
    json_t *pct = json_object_get(o, "error_pct");
    assert_true(json_is_real(pct));
    double want = strcmp(js(o, "client_name"), "six") == 0 ? 16.67 : 5.56;
    assert_true(json_real_value(pct) == want);
    json_decref(o);
  }
  cli_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_error_pct),
      cmocka_unit_test(test_clients_error_pct),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

// ctest-labels: tsan
/* Smoke: open a new store, record each kind of event, close, read rows. */
#include <stdlib.h>
#include <string.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

static void test_roundtrip(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "sub/store.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SESSION};
  e.u.session = (mcpr_session_event){"sess-1", "api", 1000, "claude-desktop", "1.0", NULL};
  assert_int_equal(mcpr_store_record(s, &e), MCPR_OK);
  for (int i = 0; i < 3; i++) {
    char id[40];
    mcpr_uuid_v7(1000 + i, id);
    mcpr_store_event r = {.kind = MCPR_STORE_EVENT_REQUEST};
    r.u.request = (mcpr_request_event){.request_id = id, .ts_ms = 1000 + i, .proxy = "api",
                                       .session_id = "sess-1", .method = "tools/call",
                                       .tool = "search", .latency_us = 1500,
                                       .status = i == 2 ? MCPR_REQUEST_ERROR : MCPR_REQUEST_OK,
                                       .bytes_in = 10, .bytes_out = -1};
    assert_int_equal(mcpr_store_record(s, &r), MCPR_OK);
  }
  assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_OK);
  mcpr_store_stats st;
  assert_int_equal(mcpr_store_close(s, &st), MCPR_OK);
  assert_int_equal(st.accepted, 4);
  assert_int_equal(st.written, 4);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 3);
  assert_int_equal(tu_sql_int(path, "SELECT total_calls FROM sessions"), 3);
  assert_int_equal(tu_sql_int(path, "SELECT total_errors FROM sessions"), 1);
  assert_int_equal(tu_sql_int(path, "SELECT last_seen_at FROM sessions"), 1002);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions WHERE client_platform='claude'"), 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE bytes_out IS NULL"), 3);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM meta WHERE key='schema_version'"), 5);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_roundtrip)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

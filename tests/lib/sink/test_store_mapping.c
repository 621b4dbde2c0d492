/* The store sink's mapping of proxy events onto store events (SPEC §3):
 * mcpr_event_to_store(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_fixtures.h"
#include "mcpr/event.h"
#include "mcpr/sink.h"
#include "testutil.h"

static void test_store_mapping(void **state) {
  (void)state;
  mcpr_event ev;
  mcpr_store_event se;
  mcpr_error err = {0};
  assert_int_equal(mcpr_event_decode(EF_REQUEST_ALL_NULL, strlen(EF_REQUEST_ALL_NULL), &ev, &err), MCPR_OK);
  assert_true(mcpr_event_to_store(&ev, &se));
  assert_int_equal(se.kind, MCPR_STORE_EVENT_REQUEST);
  assert_string_equal(se.u.request.method, "POST");
  assert_int_equal(se.u.request.status, MCPR_REQUEST_OK);
  assert_true(se.u.request.bytes_in < 0);
  assert_null(se.u.request.session_id);
  ev.u.request.status = 502;
  assert_true(mcpr_event_to_store(&ev, &se));
  assert_int_equal(se.u.request.status, MCPR_REQUEST_ERROR);
  mcpr_event_release(&ev);

  assert_int_equal(mcpr_event_decode(EF_CANONICAL[0], strlen(EF_CANONICAL[0]), &ev, &err), MCPR_OK);
  assert_true(mcpr_event_to_store(&ev, &se));
  assert_string_equal(se.u.request.method, "tools/call");
  assert_string_equal(se.u.request.request_id, "r1");
  assert_int_equal(se.u.request.status, MCPR_REQUEST_ERROR); /* error_code present, HTTP 200 */
  assert_int_equal(se.u.request.bytes_in, 10);
  assert_int_equal(se.u.request.bytes_out, 20);
  mcpr_event_release(&ev);

  assert_int_equal(mcpr_event_decode(EF_CANONICAL[3], strlen(EF_CANONICAL[3]), &ev, &err), MCPR_OK);
  assert_false(mcpr_event_to_store(&ev, &se)); /* heartbeat */
  mcpr_event_release(&ev);

  assert_int_equal(mcpr_event_decode(EF_CANONICAL[4], strlen(EF_CANONICAL[4]), &ev, &err), MCPR_OK);
  assert_true(mcpr_event_to_store(&ev, &se));
  assert_int_equal(se.kind, MCPR_STORE_EVENT_SCHEMA_VERSION);
  assert_string_equal(se.u.schema_version.proxy, "api");
  assert_string_equal(se.u.schema_version.payload, "{\"tools\":[{\"name\":\"a\"}]}");
  mcpr_event_release(&ev);

  const char *code = "{\"type\":\"request\",\"id\":\"r\",\"ts\":1,\"proxy\":\"p\",\"method\":\"POST\","
                     "\"status\":200,\"latency_us\":5,\"error_code\":-32601,\"note\":\"timeout\"}";
  assert_int_equal(mcpr_event_decode(code, strlen(code), &ev, &err), MCPR_OK);
  assert_string_equal(ev.u.request.error_code, "-32601");
  assert_true(mcpr_event_to_store(&ev, &se));
  assert_int_equal(se.u.request.status, MCPR_REQUEST_TIMEOUT);
  mcpr_event_release(&ev);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_store_mapping),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

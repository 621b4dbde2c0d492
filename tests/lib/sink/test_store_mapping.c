/* The store sink's mapping of proxy events onto store events (SPEC §3):
 * mcpr_event_to_store(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/event.h"
#include "mcpr/sink.h"
#include "testutil.h"

/* The original mcpr's stderr JSON line, every optional null. */
#define REQUEST_ALL_NULL \
    "{\"type\":\"request\",\"id\":\"0190a0b0-0000-7000-8000-000000000001\",\"ts\":1700000000000," \
    "\"proxy\":\"api\",\"session_id\":null,\"method\":\"POST\",\"path\":null,\"mcp_method\":null," \
    "\"tool\":null,\"resource_uri\":null,\"prompt_name\":null,\"status\":200,\"latency_us\":1500," \
    "\"upstream_us\":null,\"request_size\":null,\"response_size\":null,\"error_code\":null," \
    "\"error_msg\":null,\"client_name\":null,\"client_version\":null,\"note\":null}"

static const char *CANONICAL[] = {
    "{\"type\":\"request\",\"id\":\"r1\",\"ts\":1700000000000,\"proxy\":\"api\","
    "\"session_id\":\"s1\",\"method\":\"POST\",\"path\":\"/mcp\",\"mcp_method\":\"tools/call\","
    "\"tool\":\"search\",\"resource_uri\":null,\"prompt_name\":null,\"status\":200,"
    "\"latency_us\":1500,\"upstream_us\":1200,\"request_size\":10,\"response_size\":20,"
    "\"error_code\":\"-32601\",\"error_msg\":\"nope \\\"q\\\" é\",\"client_name\":\"cursor\","
    "\"client_version\":\"1.0\",\"note\":\"\",\"stage_timings\":{\"parse_us\":3,\"b\":[1,2]}}",
    "{\"type\":\"session_start\",\"session_id\":\"s1\",\"proxy\":\"api\",\"ts\":1,"
    "\"client_name\":\"claude-desktop\",\"client_version\":null,\"client_platform\":null}",
    "{\"type\":\"session_end\",\"session_id\":\"s1\",\"ts\":2,\"server\":\"my-srv\"}",
    "{\"type\":\"heartbeat\",\"ts\":3,\"proxy\":\"api\",\"mcp_status\":\"up\","
    "\"tunnel_status\":null,\"uptime_secs\":60,\"request_count\":7}",
    "{\"type\":\"schema_version_created\",\"ts\":4,\"upstream_id\":\"api\","
    "\"upstream_url\":\"http://x/mcp\",\"method\":\"tools/list\",\"version\":2,"
    "\"version_id\":\"v2\",\"content_hash\":\"ab\",\"payload\":{\"tools\":[{\"name\":\"a\"}]}}",
    REQUEST_ALL_NULL,
};

static void test_store_mapping(void **state) {
  (void)state;
  mcpr_event ev;
  mcpr_store_event se;
  mcpr_error err = {0};
  assert_int_equal(mcpr_event_decode(REQUEST_ALL_NULL, strlen(REQUEST_ALL_NULL), &ev, &err), MCPR_OK);
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

  assert_int_equal(mcpr_event_decode(CANONICAL[0], strlen(CANONICAL[0]), &ev, &err), MCPR_OK);
  assert_true(mcpr_event_to_store(&ev, &se));
  assert_string_equal(se.u.request.method, "tools/call");
  assert_string_equal(se.u.request.request_id, "r1");
  assert_int_equal(se.u.request.status, MCPR_REQUEST_ERROR); /* error_code present, HTTP 200 */
  assert_int_equal(se.u.request.bytes_in, 10);
  assert_int_equal(se.u.request.bytes_out, 20);
  mcpr_event_release(&ev);

  assert_int_equal(mcpr_event_decode(CANONICAL[3], strlen(CANONICAL[3]), &ev, &err), MCPR_OK);
  assert_false(mcpr_event_to_store(&ev, &se)); /* heartbeat */
  mcpr_event_release(&ev);

  assert_int_equal(mcpr_event_decode(CANONICAL[4], strlen(CANONICAL[4]), &ev, &err), MCPR_OK);
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

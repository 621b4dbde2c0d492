/* Proxy events: strict bounded decode, fixed-order encode (the mapping onto
 * the store is the store sink's: tests/lib/sink/test_store_mapping.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_fixtures.h"
#include "mcpr/event.h"
#include "testutil.h"

static void test_roundtrip_byte_for_byte(void **state) {
  (void)state;
  for (size_t i = 0; i < EF_CANONICAL_COUNT; i++) {
    mcpr_event ev;
    mcpr_error err = {0};
    if (mcpr_event_decode(EF_CANONICAL[i], strlen(EF_CANONICAL[i]), &ev, &err) != MCPR_OK)
      fail_msg("line %zu: %s", i, err.message);
    size_t len = 0;
    char *out = mcpr_event_encode(&ev, &len, &err);
    assert_non_null(out);
    assert_string_equal(out, EF_CANONICAL[i]);
    assert_int_equal(len, strlen(EF_CANONICAL[i]));
    mcpr_event copy;
    assert_int_equal(mcpr_event_copy(&copy, &ev, &err), MCPR_OK);
    char *out2 = mcpr_event_encode(&copy, NULL, &err);
    assert_string_equal(out2, EF_CANONICAL[i]);
    free(out2);
    mcpr_event_release(&copy);
    free(out);
    mcpr_event_release(&ev);
  }
}

static void test_reordered_keys_and_extras(void **state) {
  (void)state;
  const char *line = "{\"ts\":2,\"extra\":{\"x\":[1]},\"session_id\":\"s1\",\"type\":\"session_end\"}\r\n";
  mcpr_event ev;
  mcpr_error err = {0};
  assert_int_equal(mcpr_event_decode(line, strlen(line), &ev, &err), MCPR_OK);
  char *out = mcpr_event_encode(&ev, NULL, &err);
  assert_string_equal(out, "{\"type\":\"session_end\",\"session_id\":\"s1\",\"ts\":2}");
  free(out);
  mcpr_event_release(&ev);
}

static void expect_error(const char *line, size_t len, const char *needle) {
  mcpr_event ev;
  mcpr_error err = {0};
  mcpr_status st = mcpr_event_decode(line, len, &ev, &err);
  if (st == MCPR_OK)
    fail_msg("accepted: %.80s", line);
  if (!strstr(err.message, needle))
    fail_msg("error '%s' does not contain '%s'", err.message, needle);
}

static void test_errors_name_the_field(void **state) {
  (void)state;
#define E(line, needle) expect_error(line, strlen(line), needle)
  E("{\"type\":\"session_end\",\"session_id\":\"s\",\"ts\":1.5}", "field \"ts\": expected an integer");
  E("{\"type\":\"session_end\",\"session_id\":\"s\",\"ts\":\"1\"}", "field \"ts\": expected an integer");
  E("{\"type\":\"session_end\",\"ts\":1}", "field \"session_id\": required");
  E("{\"type\":\"session_end\",\"session_id\":null,\"ts\":1}", "field \"session_id\": required");
  E("{\"type\":\"session_end\",\"session_id\":5,\"ts\":1}", "field \"session_id\": expected a string");
  E("{\"type\":\"bogus\",\"ts\":1}", "field \"type\": unknown event type \"bogus\"");
  E("{\"ts\":1}", "field \"type\": required");
  E("[1,2]", "expected a JSON object");
  E("{\"type\":\"session_end\"", "invalid JSON");
  E("", "invalid JSON");
  E("{\"type\":\"request\",\"id\":\"r\",\"ts\":1,\"proxy\":\"p\",\"method\":\"POST\",\"status\":200}",
    "field \"latency_us\": required");
  E("{\"type\":\"request\",\"id\":\"r\",\"ts\":1,\"proxy\":\"p\",\"method\":\"POST\",\"status\":200,"
    "\"latency_us\":-5}", "field \"latency_us\": must not be negative");
  E("{\"type\":\"request\",\"id\":\"r\",\"ts\":1,\"proxy\":\"p\",\"method\":\"POST\",\"status\":2,"
    "\"latency_us\":5}", "field \"status\"");
  /* stage_timings: the original's array of {name, elapsed_us} (or an
   * object); a known field of the wrong type is refused. */
#define TIMINGS(t) \
  "{\"type\":\"request\",\"id\":\"r\",\"ts\":1,\"proxy\":\"p\",\"method\":\"POST\",\"status\":200," \
  "\"latency_us\":5,\"stage_timings\":" t "}"
  E(TIMINGS("[1]"), "field \"stage_timings\": entry 1: expected an object");
  E(TIMINGS("\"fast\""), "field \"stage_timings\": expected an array of {name, elapsed_us}");
  E(TIMINGS("42"), "field \"stage_timings\": expected an array");
  E(TIMINGS("[{\"name\":\"a\",\"elapsed_us\":1},{\"name\":5,\"elapsed_us\":1}]"),
    "field \"stage_timings\": entry 2: \"name\": expected a string");
  E(TIMINGS("[{\"name\":\"a\",\"elapsed_us\":-1}]"), "entry 1: \"elapsed_us\": expected an integer >= 0");
  E(TIMINGS("[{\"name\":\"a\",\"elapsed_us\":1.5}]"), "entry 1: \"elapsed_us\"");
  E(TIMINGS("[{\"name\":\"a\",\"elapsed_us\":\"1\"}]"), "entry 1: \"elapsed_us\"");
  E("{\"type\":\"schema_version_created\",\"ts\":4,\"upstream_id\":\"a\",\"upstream_url\":\"u\","
    "\"method\":\"m\",\"content_hash\":\"h\"}", "field \"payload\": required");
  E("{\"type\":\"session_end\",\"session_id\":\"\xff\xfe\",\"ts\":1}", "invalid UTF-8");
  E("{\"type\":\"session_end\",\"session_id\":\"a\\u0000b\",\"ts\":1}", "invalid JSON");
  E("{\"type\":\"session_end\",\"type\":\"request\",\"session_id\":\"s\",\"ts\":1}", "duplicate");
  E("{\"type\":\"session_end\",\"session_id\":\"s\",\"ts\":99999999999999999999999}", "invalid JSON");
  /* Durations and sizes are bounded (they are summed by the stats). */
#define REQ_WITH(extra) \
  "{\"type\":\"request\",\"id\":\"r\",\"ts\":1,\"proxy\":\"p\",\"method\":\"POST\",\"status\":200," extra "}"
  E(REQ_WITH("\"latency_us\":9000000000000000000"), "field \"latency_us\": out of range");
  E(REQ_WITH("\"latency_us\":31622400000001"), "field \"latency_us\": out of range");
  E(REQ_WITH("\"latency_us\":9e18"), "field \"latency_us\": expected an integer");
  E(REQ_WITH("\"latency_us\":1,\"upstream_us\":9223372036854775807"),
    "field \"upstream_us\": out of range");
  E(REQ_WITH("\"latency_us\":1,\"request_size\":1099511627777"), "field \"request_size\": out of range");
  E(REQ_WITH("\"latency_us\":1,\"response_size\":9000000000000000000"),
    "field \"response_size\": out of range");
  {
    const char *at_max = REQ_WITH("\"latency_us\":31622400000000,\"upstream_us\":31622400000000,"
                                  "\"request_size\":1099511627776,\"response_size\":1099511627776");
    mcpr_event ev;
    mcpr_error err = {0};
    assert_int_equal(mcpr_event_decode(at_max, strlen(at_max), &ev, &err), MCPR_OK);
    assert_int_equal(ev.u.request.latency_us, MCPR_EVENT_DURATION_US_MAX);
    assert_int_equal(ev.u.request.response_size, MCPR_EVENT_SIZE_BYTES_MAX);
    mcpr_event_release(&ev);
  }
#undef REQ_WITH
#undef TIMINGS
#undef E
  /* A raw NUL byte inside the line. */
  const char nul[] = "{\"type\":\"session_end\",\"session_id\":\"a\0b\",\"ts\":1}";
  expect_error(nul, sizeof nul - 1, "NUL byte at column 38");
}

static void test_bounds(void **state) {
  (void)state;
  /* Depth 64 is fine, 65 is not (checked before jansson parses). */
  char buf[512];
  for (int depth = 64; depth <= 65; depth++) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"type\":\"session_end\",\"session_id\":\"s\",\"ts\":1,\"x\":");
    for (int i = 1; i < depth; i++)
      buf[n++] = '[';
    for (int i = 1; i < depth; i++)
      buf[n++] = ']';
    buf[n++] = '}';
    buf[n] = 0;
    mcpr_event ev;
    mcpr_error err = {0};
    mcpr_status st = mcpr_event_decode(buf, n, &ev, &err);
    if (depth == 64) {
      assert_int_equal(st, MCPR_OK);
      mcpr_event_release(&ev);
    } else {
      assert_int_equal(st, MCPR_ETOOBIG);
      assert_non_null(strstr(err.message, "nesting deeper than 64"));
    }
  }
  /* Brackets inside strings do not count. */
  char deep_str[300];
  size_t n = (size_t)snprintf(deep_str, sizeof deep_str, "{\"type\":\"session_end\",\"session_id\":\"");
  for (int i = 0; i < 100; i++)
    deep_str[n++] = '[';
  n += (size_t)snprintf(deep_str + n, sizeof deep_str - n, "\\\"\",\"ts\":1}");
  mcpr_event ev;
  mcpr_error err = {0};
  assert_int_equal(mcpr_event_decode(deep_str, n, &ev, &err), MCPR_OK);
  assert_int_equal(strlen(ev.u.session_end.session_id), 101);
  mcpr_event_release(&ev);
  /* Over 1 MiB. */
  size_t big = MCPR_EVENT_LINE_MAX + 10;
  char *line = malloc(big);
  memset(line, ' ', big);
  memcpy(line, "{\"type\":\"session_end\",\"session_id\":\"s\",\"ts\":1}", 46);
  expect_error(line, big, "longer than the limit");
  free(line);
}

static void test_encode_refuses_missing_required(void **state) {
  (void)state;
  mcpr_event ev;
  mcpr_event_init(&ev, MCPR_EVENT_SESSION_END);
  mcpr_error err = {0};
  assert_null(mcpr_event_encode(&ev, NULL, &err));
  assert_non_null(strstr(err.message, "session_id"));
  mcpr_event_release(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_byte_for_byte),
      cmocka_unit_test(test_reordered_keys_and_extras),
      cmocka_unit_test(test_errors_name_the_field),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_encode_refuses_missing_required),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

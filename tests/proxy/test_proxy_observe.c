/*
 * observe.c on its own (it belongs to the mcpr program, so it is compiled
 * in here): exchanges are fed in as the proxy would feed them, and the
 * events the fan-out would get are captured in their wire form (SPEC §3).
 * Proves: a JSON-RPC batch gives each message its event and the batch's
 * response is matched by id in any order; an upstream 404 for a session
 * ends it; a paginated list is merged across its pages (nextCursor) into
 * one schema version, equal to the same list served in one page; a
 * list_changed between pages drops the mixed gathering, and the next list
 * is recorded only if its content changed.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/event.h"
#include "mcpr/sink.h"

mcpr_status cap_emit(mcpr_fanout *fan, const mcpr_event *ev);
#define mcpr_fanout_emit cap_emit
#include "../../src/proxy/observe.c"
#undef mcpr_fanout_emit

#include "testutil.h"

#define MAX_EVENTS 64
static json_t *events[MAX_EVENTS];
static size_t n_events;

mcpr_status cap_emit(mcpr_fanout *fan, const mcpr_event *ev) {
  (void)fan;
  char *text = mcpr_event_encode(ev, NULL, NULL);
  assert_non_null(text);
  assert_true(n_events < MAX_EVENTS);
  events[n_events] = json_loads(text, 0, NULL);
  assert_non_null(events[n_events]);
  n_events++;
  free(text);
  return MCPR_OK;
}

static void clear_events(void) {
  for (size_t i = 0; i < n_events; i++)
    json_decref(events[i]);
  n_events = 0;
}

static size_t count_type(const char *type) {
  size_t n = 0;
  for (size_t i = 0; i < n_events; i++)
    n += strcmp(json_string_value(json_object_get(events[i], "type")), type) == 0;
  return n;
}

/* The request event of the call with this mcp_method (NULL: none). */
static json_t *request_event(const char *mcp_method) {
  for (size_t i = 0; i < n_events; i++) {
    const char *m = json_string_value(json_object_get(events[i], "mcp_method"));
    if (m && strcmp(m, mcp_method) == 0)
      return events[i];
  }
  return NULL;
}

static const char *str(json_t *ev, const char *key) {
  return json_string_value(json_object_get(ev, key));
}

static obs *new_obs(void) {
  return obs_new("t", "http://127.0.0.1:1/mcp", (mcpr_fanout *)(uintptr_t)1, 1 << 20);
}

/* One POST exchange as the proxy runs it; the response body in chunks of
 * chunk bytes (0: whole). */
static void exchange(obs *o, const char *req_session, const char *body, int status,
                     const char *ctype, const char *resp_session, const char *resp,
                     size_t chunk) {
  obs_exchange *x = obs_begin(o, "POST", "/mcp", req_session, body, body ? strlen(body) : 0,
                              1700000000000, 10);
  assert_non_null(x);
  obs_upstream_sent(x, 20);
  obs_response_start(x, status, ctype, resp_session, 30);
  size_t len = resp ? strlen(resp) : 0;
  for (size_t i = 0; i < len;) {
    size_t n = chunk && chunk < len - i ? chunk : len - i;
    obs_response_data(x, resp + i, n, 40);
    i += n;
  }
  obs_end(x, status, NULL, NULL, NULL, 50);
}

static void test_batch_each_message_its_event(void **state) {
  (void)state;
  obs *o = new_obs();
  exchange(o, "s1",
           "[{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"},"
           "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"},"
           "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/read\",\"params\":{\"uri\":"
           "\"file:///a\"}},"
           "{\"jsonrpc\":\"2.0\",\"id\":\"x7\",\"method\":\"prompts/get\",\"params\":{\"name\":"
           "\"p\"}}]",
           200, "application/json", NULL,
           "[{\"jsonrpc\":\"2.0\",\"id\":\"x7\",\"error\":{\"code\":-32602,\"message\":\"bad "
           "args\"}},{\"jsonrpc\":\"2.0\",\"id\":6,\"result\":{\"contents\":[]}},"
           "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}]",
           7);
  assert_int_equal(count_type("request"), 4);
  json_t *ping = request_event("ping"), *read = request_event("resources/read");
  json_t *get = request_event("prompts/get"), *note = request_event("notifications/initialized");
  assert_non_null(ping);
  assert_non_null(read);
  assert_non_null(get);
  assert_non_null(note);
  assert_true(json_is_null(json_object_get(ping, "error_code")));
  assert_string_equal(str(read, "resource_uri"), "file:///a");
  assert_true(json_is_null(json_object_get(read, "error_code")));
  assert_string_equal(str(get, "prompt_name"), "p");
  assert_string_equal(str(get, "error_code"), "-32602");
  assert_string_equal(str(get, "error_msg"), "bad args");
  /* each answered message carries its own response's size, not the batch's */
  assert_int_equal(json_integer_value(json_object_get(read, "response_size")),
                   strlen("{\"jsonrpc\":\"2.0\",\"id\":6,\"result\":{\"contents\":[]}}"));
  assert_true(json_is_null(json_object_get(note, "note")));
  clear_events();
  obs_free(o);
}

static void test_refusals_count_as_errors(void **state) {
  (void)state;
  obs *o = new_obs();
  /* a 400 with a JSON-RPC error the server could not tie to the request
   * (it did not read the body: an unknown session) */
  exchange(o, "gone", "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", 400,
           "application/json", NULL,
           "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,\"message\":\"Bad Request: No "
           "valid session ID provided\"}}",
           0);
  json_t *ev = request_event("tools/list");
  assert_non_null(ev);
  assert_string_equal(str(ev, "error_code"), "-32000");
  assert_string_equal(str(ev, "error_msg"), "Bad Request: No valid session ID provided");
  clear_events();
  /* a 4xx without any JSON-RPC error: the request failed all the same */
  exchange(o, "s1", "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}", 429, "text/plain",
           NULL, "slow down", 0);
  ev = request_event("ping");
  assert_non_null(ev);
  assert_string_equal(str(ev, "error_code"), "http_429");
  clear_events();
  /* ... but a notification refused with 4xx keeps the plain rule */
  exchange(o, "s1", "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 400,
           "text/plain", NULL, "no", 0);
  ev = request_event("notifications/initialized");
  assert_non_null(ev);
  assert_true(json_is_null(json_object_get(ev, "error_code")));
  clear_events();
  obs_free(o);
}

static void test_upstream_404_ends_session(void **state) {
  (void)state;
  obs *o = new_obs();
  exchange(o, NULL,
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"clientInfo\":"
           "{\"name\":\"cursor\",\"version\":\"1\"}}}",
           200, "application/json", "sess-9",
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-06-18\"}}", 0);
  assert_int_equal(count_type("session_start"), 1);
  clear_events();
  exchange(o, "sess-9", "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", 404,
           "application/json", NULL,
           "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32001,\"message\":\"Session not "
           "found\"}}",
           0);
  assert_int_equal(count_type("session_end"), 1);
  for (size_t i = 0; i < n_events; i++)
    if (strcmp(str(events[i], "type"), "session_end") == 0)
      assert_string_equal(str(events[i], "session_id"), "sess-9");
  json_t *r = request_event("tools/list");
  assert_int_equal(json_integer_value(json_object_get(r, "status")), 404);
  obs_stats st;
  obs_get_stats(o, &st);
  assert_int_equal(st.sessions, 0);
  clear_events();
  obs_free(o);
}

#define TOOL(n) "{\"name\":\"" n "\",\"inputSchema\":{\"type\":\"object\"}}"
#define LIST_REQ(id, cursor)                                                                     \
  "{\"jsonrpc\":\"2.0\",\"id\":" id ",\"method\":\"tools/list\"" cursor "}"
#define CURSOR(c) ",\"params\":{\"cursor\":\"" c "\"}"
#define LIST_RESP(id, tools, next)                                                               \
  "{\"jsonrpc\":\"2.0\",\"id\":" id ",\"result\":{\"tools\":[" tools "]" next "}}"
#define NEXT(c) ",\"nextCursor\":\"" c "\""

static void three_pages(obs *o, const char *sid) {
  exchange(o, sid, LIST_REQ("1", ""), 200, "application/json", NULL,
           LIST_RESP("1", TOOL("a"), NEXT("c1")), 0);
  exchange(o, sid, LIST_REQ("2", CURSOR("c1")), 200, "text/event-stream", NULL,
           "event: message\ndata: " LIST_RESP("2", TOOL("b"), NEXT("c2")) "\n\n", 5);
  exchange(o, sid, LIST_REQ("3", CURSOR("c2")), 200, "application/json", NULL,
           LIST_RESP("3", TOOL("c"), ""), 0);
}

static json_t *only_schema_event(void) {
  assert_int_equal(count_type("schema_version_created"), 1);
  for (size_t i = 0; i < n_events; i++)
    if (strcmp(str(events[i], "type"), "schema_version_created") == 0)
      return events[i];
  return NULL;
}

static void test_paginated_list_merged_into_one_version(void **state) {
  (void)state;
  obs *o = new_obs();
  three_pages(o, "s1");
  json_t *sv = only_schema_event();
  assert_string_equal(str(sv, "method"), "tools/list");
  json_t *payload = json_object_get(sv, "payload");
  json_t *want = json_loads("{\"tools\":[" TOOL("a") "," TOOL("b") "," TOOL("c") "]}", 0, NULL);
  assert_true(json_equal(payload, want));
  json_decref(want);
  char hash[65];
  snprintf(hash, sizeof hash, "%s", str(sv, "content_hash"));
  clear_events();
  /* the same pages again, and the same list in one page: no new version */
  three_pages(o, "s2");
  exchange(o, "s3", LIST_REQ("9", ""), 200, "application/json", NULL,
           LIST_RESP("9", TOOL("a") "," TOOL("b") "," TOOL("c"), ""), 0);
  assert_int_equal(count_type("schema_version_created"), 0);
  assert_int_equal(count_type("request"), 4);
  clear_events();
  /* a page out of order (a cursor nobody handed out) records nothing */
  exchange(o, "s1", LIST_REQ("4", CURSOR("zz")), 200, "application/json", NULL,
           LIST_RESP("4", TOOL("q"), ""), 0);
  assert_int_equal(count_type("schema_version_created"), 0);
  clear_events();
  obs_free(o);
}

/* A GET stream carrying the server's notifications to the client. */
static void get_stream(obs *o, const char *sid, const char *sse) {
  obs_exchange *x = obs_begin(o, "GET", "/mcp", sid, NULL, 0, 1700000000000, 10);
  obs_upstream_sent(x, 20);
  obs_response_start(x, 200, "text/event-stream", NULL, 30);
  obs_response_data(x, sse, strlen(sse), 40);
  obs_end(x, 200, NULL, NULL, "client closed the connection", 50);
}

static void test_list_changed_between_pages(void **state) {
  (void)state;
  obs *o = new_obs();
  exchange(o, "s1", LIST_REQ("1", ""), 200, "application/json", NULL,
           LIST_RESP("1", TOOL("a"), NEXT("c1")), 0);
  clear_events();
  get_stream(o, "s1",
             "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n");
  /* the GET is one request event; the notification is no call of its own */
  assert_int_equal(n_events, 1);
  assert_true(json_is_null(json_object_get(events[0], "mcp_method")));
  clear_events();
  exchange(o, "s1", LIST_REQ("2", CURSOR("c1")), 200, "application/json", NULL,
           LIST_RESP("2", TOOL("b"), ""), 0);
  assert_int_equal(count_type("schema_version_created"), 0); /* a and b: two versions mixed */
  clear_events();
  three_pages(o, "s1");
  (void)only_schema_event();
  clear_events();
  get_stream(o, "s1",
             "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n");
  three_pages(o, "s1"); /* compared again: unchanged, so no new version */
  assert_int_equal(count_type("schema_version_created"), 0);
  clear_events();
  obs_free(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_batch_each_message_its_event),
      cmocka_unit_test(test_upstream_404_ends_session),
      cmocka_unit_test(test_refusals_count_as_errors),
      cmocka_unit_test(test_paginated_list_merged_into_one_version),
      cmocka_unit_test(test_list_changed_between_pages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * mcpr-sample-server, end to end over HTTP with libcurl: the server is
 * started once on port 0 (--page-size 4, a 200 ms keepalive) and every test
 * talks to it the way an MCP client would. Streamed replies are split into
 * SSE events as they arrive, each stamped with its arrival time, so the
 * slow tool can be shown to stream progress *before* its result. At the end
 * SIGTERM must give exit status 0 (under ASan: with nothing leaked).
 */
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "testutil.h"

#define MAX_EVENTS 64
#define ACCEPT_BOTH "application/json, text/event-stream"

static cli_proc server;
static char url[128];

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- an HTTP reply, with SSE events split as they arrive ---------- */

typedef struct sse_event {
  char id[32];
  json_t *data;      /* the parsed data: line, or NULL for a comment */
  long long at_ms;   /* when the event's last byte arrived */
} sse_event;

typedef struct reply {
  long status;
  char *body;
  size_t len, cap;
  size_t parsed; /* body offset up to which events are split */
  char session[80];
  char content_type[80];
  sse_event events[MAX_EVENTS];
  size_t n_events;
  size_t n_comments;
} reply;

static void reply_free(reply *r) {
  free(r->body);
  for (size_t i = 0; i < r->n_events; i++)
    json_decref(r->events[i].data);
  memset(r, 0, sizeof *r);
}

static void split_events(reply *r) {
  for (;;) {
    char *start = r->body + r->parsed;
    char *end = strstr(start, "\n\n");
    if (!end)
      return;
    *end = '\0';
    if (start[0] == ':') {
      r->n_comments++;
    } else if (r->n_events < MAX_EVENTS) {
      sse_event *ev = &r->events[r->n_events++];
      ev->at_ms = now_ms();
      for (char *line = start; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
          *nl = '\0';
        if (strncmp(line, "id: ", 4) == 0)
          snprintf(ev->id, sizeof ev->id, "%s", line + 4);
        else if (strncmp(line, "data: ", 6) == 0)
          ev->data = json_loads(line + 6, 0, NULL);
        if (nl)
          *nl = '\n';
        line = nl ? nl + 1 : NULL;
      }
    }
    *end = '\n';
    r->parsed = (size_t)(end - r->body) + 2;
  }
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  reply *r = arg;
  size_t add = size * n;
  if (r->len + add + 1 > r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 4096;
    while (cap < r->len + add + 1)
      cap *= 2;
    char *b = realloc(r->body, cap);
    if (!b)
      return 0;
    r->body = b;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, add);
  r->len += add;
  r->body[r->len] = '\0';
  if (strncmp(r->content_type, "text/event-stream", 17) == 0)
    split_events(r);
  return add;
}

static void copy_header_value(char *dst, size_t cap, const char *line, size_t n, size_t name_len) {
  const char *v = line + name_len;
  size_t vlen = n - name_len;
  while (vlen && (*v == ' '))
    v++, vlen--;
  while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
    vlen--;
  snprintf(dst, cap, "%.*s", (int)vlen, v);
}

static size_t on_header(char *line, size_t size, size_t n, void *arg) {
  reply *r = arg;
  size_t len = size * n;
  if (len > 15 && strncasecmp(line, "Mcp-Session-Id:", 15) == 0)
    copy_header_value(r->session, sizeof r->session, line, len, 15);
  else if (len > 13 && strncasecmp(line, "Content-Type:", 13) == 0)
    copy_header_value(r->content_type, sizeof r->content_type, line, len, 13);
  return len;
}

/* An easy handle for method (POST/GET/DELETE/…) with the MCP headers. */
static CURL *request(const char *method, const char *session, const char *accept,
                     const char *body, reply *r, struct curl_slist **headers) {
  CURL *c = curl_easy_init();
  assert_non_null(c);
  memset(r, 0, sizeof *r);
  char line[160];
  *headers = NULL;
  if (accept) {
    snprintf(line, sizeof line, "Accept: %s", accept);
    *headers = curl_slist_append(*headers, line);
  }
  if (session) {
    snprintf(line, sizeof line, "Mcp-Session-Id: %s", session);
    *headers = curl_slist_append(*headers, line);
  }
  if (body) {
    *headers = curl_slist_append(*headers, "Content-Type: application/json");
    *headers = curl_slist_append(*headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  return c;
}

static void perform(CURL *c, struct curl_slist *headers, reply *r) {
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK)
    fail_msg("curl: %s", curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
}

static void http(const char *method, const char *session, const char *accept, const char *body,
                 reply *r) {
  struct curl_slist *headers;
  CURL *c = request(method, session, accept, body, r, &headers);
  perform(c, headers, r);
}

static void post(const char *session, const char *body, reply *r) {
  http("POST", session, ACCEPT_BOTH, body, r);
}

/* The JSON body of a reply (new reference); fails the test if there is none. */
static json_t *body_json(const reply *r) {
  json_error_t err;
  json_t *j = r->body ? json_loads(r->body, 0, &err) : NULL;
  if (!j)
    fail_msg("not JSON (status %ld): %s", r->status, r->body ? r->body : "(no body)");
  return j;
}

/* The result of a successful JSON-RPC call, as a new reference. */
static json_t *call_result(const char *session, const char *body) {
  reply r;
  post(session, body, &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.content_type, "application/json");
  json_t *msg = body_json(&r);
  json_t *result = json_incref(json_object_get(msg, "result"));
  if (!result)
    fail_msg("no result: %s", r.body);
  json_decref(msg);
  reply_free(&r);
  return result;
}

static long call_error_code(const char *session, const char *body) {
  reply r;
  post(session, body, &r);
  assert_int_equal(r.status, 200);
  json_t *msg = body_json(&r);
  json_t *code = json_object_get(json_object_get(msg, "error"), "code");
  if (!json_is_integer(code))
    fail_msg("no error: %s", r.body);
  long v = (long)json_integer_value(code);
  json_decref(msg);
  reply_free(&r);
  return v;
}

static const char *text_of(json_t *result) {
  return json_string_value(json_object_get(json_array_get(json_object_get(result, "content"), 0),
                                           "text"));
}

/* A new session; the id goes into session (33 bytes at least). */
static void initialize(const char *capabilities, char *session, size_t cap) {
  char body[512];
  snprintf(body, sizeof body,
           "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
           "\"protocolVersion\":\"2025-06-18\",\"capabilities\":%s,"
           "\"clientInfo\":{\"name\":\"test\",\"version\":\"1.0\"}}}",
           capabilities);
  reply r;
  post(NULL, body, &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(strlen(r.session), 32);
  assert_true(cap > 32);
  memcpy(session, r.session, 33);
  reply_free(&r);
  post(session, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &r);
  assert_int_equal(r.status, 202);
  reply_free(&r);
}

/* ---------- tests ---------- */

static void test_initialize(void **state) {
  (void)state;
  reply r;
  post(NULL,
       "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
       "\"protocolVersion\":\"2025-03-26\",\"capabilities\":{},"
       "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}",
       &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.content_type, "application/json");
  assert_int_equal(strlen(r.session), 32);
  assert_int_equal(strspn(r.session, "0123456789abcdef"), 32);
  json_t *msg = body_json(&r);
  assert_int_equal(json_integer_value(json_object_get(msg, "id")), 1);
  json_t *result = json_object_get(msg, "result");
  assert_string_equal(json_string_value(json_object_get(result, "protocolVersion")), "2025-03-26");
  json_t *caps = json_object_get(result, "capabilities");
  assert_true(json_is_true(json_object_get(json_object_get(caps, "tools"), "listChanged")));
  assert_true(json_is_object(json_object_get(caps, "resources")));
  assert_true(json_is_object(json_object_get(caps, "prompts")));
  assert_true(json_is_object(json_object_get(caps, "logging")));
  assert_string_equal(json_string_value(json_object_get(json_object_get(result, "serverInfo"),
                                                        "name")),
                      "mcpr-sample");
  char first[sizeof r.session];
  snprintf(first, sizeof first, "%s", r.session);
  json_decref(msg);
  reply_free(&r);

  /* An unknown version gets the latest; every initialize is a new session. */
  post(NULL,
       "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"initialize\",\"params\":{"
       "\"protocolVersion\":\"1999-01-01\",\"capabilities\":{}}}",
       &r);
  msg = body_json(&r);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(msg, "result"), "protocolVersion")),
      "2025-06-18");
  assert_string_not_equal(r.session, first);
  json_decref(msg);
  reply_free(&r);
}

static void test_tools_list_pages(void **state) {
  (void)state;
  char s[64];
  initialize("{}", s, sizeof s);
  json_t *page1 = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}");
  json_t *tools = json_object_get(page1, "tools");
  assert_int_equal(json_array_size(tools), 4); /* --page-size 4 */
  const char *cursor = json_string_value(json_object_get(page1, "nextCursor"));
  assert_non_null(cursor);
  char body[256];
  snprintf(body, sizeof body,
           "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{\"cursor\":\"%s\"}}",
           cursor);
  json_t *page2 = call_result(s, body);
  assert_int_equal(json_array_size(json_object_get(page2, "tools")), 2);
  assert_null(json_object_get(page2, "nextCursor"));

  const char *expected[] = {"echo", "add", "fail", "slow", "boom", "notify"};
  for (size_t i = 0; i < 6; i++) {
    json_t *tool = json_array_get(i < 4 ? tools : json_object_get(page2, "tools"), i % 4);
    assert_string_equal(json_string_value(json_object_get(tool, "name")), expected[i]);
    assert_true(json_is_object(json_object_get(tool, "inputSchema")));
  }
  json_decref(page1);
  json_decref(page2);

  assert_int_equal(call_error_code(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/list\","
                                      "\"params\":{\"cursor\":\"bogus\"}}"),
                   -32602);
}

static void test_tools_call(void **state) {
  (void)state;
  char s[64];
  initialize("{}", s, sizeof s);
  json_t *r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":"
                             "{\"name\":\"echo\",\"arguments\":{\"text\":\"hello\"}}}");
  assert_string_equal(text_of(r), "hello");
  assert_null(json_object_get(r, "isError"));
  json_decref(r);

  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
                     "{\"name\":\"add\",\"arguments\":{\"a\":40,\"b\":2}}}");
  assert_string_equal(text_of(r), "42");
  json_decref(r);
  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":"
                     "{\"name\":\"add\",\"arguments\":{\"a\":1.5,\"b\":1}}}");
  assert_string_equal(text_of(r), "2.5");
  json_decref(r);

  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":"
                     "{\"name\":\"fail\",\"arguments\":{}}}");
  assert_true(json_is_true(json_object_get(r, "isError")));
  assert_non_null(text_of(r));
  json_decref(r);

  reply rep;
  post(s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":\"boom\"}}",
       &rep);
  json_t *msg = body_json(&rep);
  assert_int_equal(json_integer_value(json_object_get(msg, "id")), 5);
  json_t *err = json_object_get(msg, "error");
  assert_int_equal(json_integer_value(json_object_get(err, "code")), -32000);
  assert_string_equal(json_string_value(json_object_get(err, "message")), "boom");
  json_decref(msg);
  reply_free(&rep);

  assert_int_equal(call_error_code(s, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\","
                                      "\"params\":{\"name\":\"nope\"}}"),
                   -32602);
  assert_int_equal(call_error_code(s, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
                                      "\"params\":{\"name\":\"echo\",\"arguments\":{}}}"),
                   -32602);
  assert_int_equal(call_error_code(s, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"no/such\"}"),
                   -32601);
}

static void test_resources_prompts(void **state) {
  (void)state;
  char s[64];
  initialize("{}", s, sizeof s);
  json_t *r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"resources/list\"}");
  assert_int_equal(json_array_size(json_object_get(r, "resources")), 2);
  json_decref(r);
  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/read\","
                     "\"params\":{\"uri\":\"sample://readme\"}}");
  json_t *content = json_array_get(json_object_get(r, "contents"), 0);
  assert_string_equal(json_string_value(json_object_get(content, "uri")), "sample://readme");
  assert_non_null(json_string_value(json_object_get(content, "text")));
  json_decref(r);
  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/read\","
                     "\"params\":{\"uri\":\"sample://items/42\"}}");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(json_object_get(r, "contents"), 0), "text")),
      "item 42");
  json_decref(r);
  assert_int_equal(call_error_code(s, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/read\","
                                      "\"params\":{\"uri\":\"sample://nope\"}}"),
                   -32002);
  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/templates/list\"}");
  assert_int_equal(json_array_size(json_object_get(r, "resourceTemplates")), 1);
  json_decref(r);
  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"prompts/list\"}");
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(json_object_get(r, "prompts"), 0), "name")),
      "greet");
  json_decref(r);
  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"prompts/get\",\"params\":"
                     "{\"name\":\"greet\",\"arguments\":{\"name\":\"Ada\"}}}");
  json_t *text = json_object_get(
      json_object_get(json_array_get(json_object_get(r, "messages"), 0), "content"), "text");
  assert_non_null(strstr(json_string_value(text), "Ada"));
  json_decref(r);
  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}");
  assert_int_equal(json_object_size(r), 0);
  json_decref(r);
  r = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"logging/setLevel\","
                     "\"params\":{\"level\":\"warning\"}}");
  json_decref(r);
  assert_int_equal(call_error_code(s, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":"
                                      "\"logging/setLevel\",\"params\":{\"level\":\"loud\"}}"),
                   -32602);
}

/* Progress arrives as separate SSE events, each with an id, well before the
 * result: 3 steps over 900 ms, so the first comes ~600 ms before the end. */
static void test_slow_streams_progress(void **state) {
  (void)state;
  char s[64];
  initialize("{}", s, sizeof s);
  reply r;
  long long t0 = now_ms();
  post(s,
       "{\"jsonrpc\":\"2.0\",\"id\":\"slow-1\",\"method\":\"tools/call\",\"params\":{\"name\":"
       "\"slow\",\"arguments\":{\"ms\":900,\"steps\":3},\"_meta\":{\"progressToken\":\"tok\"}}}",
       &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.content_type, "text/event-stream");
  assert_int_equal(r.n_events, 4);
  for (size_t i = 0; i < 3; i++) {
    json_t *ev = r.events[i].data;
    assert_string_equal(json_string_value(json_object_get(ev, "method")),
                        "notifications/progress");
    json_t *params = json_object_get(ev, "params");
    assert_string_equal(json_string_value(json_object_get(params, "progressToken")), "tok");
    assert_int_equal(json_integer_value(json_object_get(params, "progress")), (json_int_t)i + 1);
    assert_int_equal(json_integer_value(json_object_get(params, "total")), 3);
    assert_true(r.events[i].id[0] != '\0');
    assert_string_not_equal(r.events[i].id, r.events[i + 1].id);
  }
  json_t *last = r.events[3].data;
  assert_string_equal(json_string_value(json_object_get(last, "id")), "slow-1");
  assert_non_null(strstr(text_of(json_object_get(last, "result")), "900 ms"));
  assert_true(r.events[3].id[0] != '\0');
  long long gap = r.events[3].at_ms - r.events[0].at_ms;
  if (gap < 300)
    fail_msg("first progress only %lld ms before the result", gap);
  assert_true(r.events[3].at_ms - t0 >= 850);
  reply_free(&r);

  /* A client that accepts only JSON gets the result as JSON, no progress. */
  http("POST", s, "application/json",
       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
       "\"slow\",\"arguments\":{\"ms\":50,\"steps\":2},\"_meta\":{\"progressToken\":1}}}",
       &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.content_type, "application/json");
  json_t *msg = body_json(&r);
  assert_int_equal(json_integer_value(json_object_get(msg, "id")), 2);
  assert_non_null(json_object_get(msg, "result"));
  json_decref(msg);
  reply_free(&r);
}

static void test_session_rules(void **state) {
  (void)state;
  const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
  reply r;
  post(NULL, ping, &r);
  assert_int_equal(r.status, 400);
  reply_free(&r);
  post("0123456789abcdef0123456789abcdef", ping, &r);
  assert_int_equal(r.status, 404);
  reply_free(&r);

  char s[64];
  initialize("{}", s, sizeof s);
  /* Notifications and client responses: 202, no body. */
  post(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/roots/list_changed\"}", &r);
  assert_int_equal(r.status, 202);
  assert_int_equal(r.len, 0);
  reply_free(&r);
  post(s, "{\"jsonrpc\":\"2.0\",\"id\":\"srv-99\",\"result\":{}}", &r);
  assert_int_equal(r.status, 202);
  reply_free(&r);

  http("DELETE", s, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  reply_free(&r);
  post(s, ping, &r);
  assert_int_equal(r.status, 404);
  reply_free(&r);
  http("DELETE", s, NULL, NULL, &r);
  assert_int_equal(r.status, 404);
  reply_free(&r);
  http("DELETE", NULL, NULL, NULL, &r);
  assert_int_equal(r.status, 400);
  reply_free(&r);
}

static void test_batch(void **state) {
  (void)state;
  char s[64];
  initialize("{}", s, sizeof s);
  reply r;
  post(s,
       "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
       "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}},"
       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\","
       "\"arguments\":{\"text\":\"b\"}}},"
       "{\"jsonrpc\":\"1.0\",\"id\":3,\"method\":\"ping\"}]",
       &r);
  assert_int_equal(r.status, 200);
  json_t *arr = body_json(&r);
  assert_true(json_is_array(arr));
  assert_int_equal(json_array_size(arr), 3); /* the notification gets none */
  assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 0), "id")), 1);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, 1), "id")), 2);
  assert_string_equal(text_of(json_object_get(json_array_get(arr, 1), "result")), "b");
  assert_int_equal(json_integer_value(json_object_get(
                       json_object_get(json_array_get(arr, 2), "error"), "code")),
                   -32600);
  json_decref(arr);
  reply_free(&r);

  post(s, "[{\"jsonrpc\":\"2.0\",\"method\":\"notifications/a\"},"
          "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/b\"}]",
       &r);
  assert_int_equal(r.status, 202);
  reply_free(&r);
}

/* Runs the multi handle until done() or timeout_ms; true when done. */
static bool pump(CURLM *multi, bool (*done)(const reply *), const reply *r, int timeout_ms) {
  long long deadline = now_ms() + timeout_ms;
  while (!done(r)) {
    int running = 0;
    curl_multi_perform(multi, &running);
    if (done(r))
      return true;
    if (!running || now_ms() >= deadline)
      return false;
    curl_multi_poll(multi, NULL, 0, 50, NULL);
  }
  return true;
}

static bool has_headers(const reply *r) { return r->content_type[0] != '\0'; }
static bool has_two_events(const reply *r) { return r->n_events >= 2; }
static bool has_comment(const reply *r) { return r->n_comments >= 1; }
static bool never(const reply *r) {
  (void)r;
  return false;
}

static void test_get_stream(void **state) {
  (void)state;
  char s[64];
  initialize("{\"roots\":{\"listChanged\":true}}", s, sizeof s);

  reply r;
  http("GET", s, "application/json", NULL, &r);
  assert_int_equal(r.status, 406);
  reply_free(&r);

  reply stream;
  struct curl_slist *headers;
  CURL *get = request("GET", s, "text/event-stream", NULL, &stream, &headers);
  CURLM *multi = curl_multi_init();
  curl_multi_add_handle(multi, get);
  assert_true(pump(multi, has_headers, &stream, 5000));
  assert_string_equal(stream.content_type, "text/event-stream");

  /* A second stream for the same session is refused. */
  http("GET", s, "text/event-stream", NULL, &r);
  assert_int_equal(r.status, 409);
  reply_free(&r);

  json_t *result = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                                  "\"params\":{\"name\":\"notify\"}}");
  assert_non_null(strstr(text_of(result), "on the GET stream"));
  json_decref(result);
  assert_true(pump(multi, has_two_events, &stream, 5000));
  json_t *changed = stream.events[0].data, *request_msg = stream.events[1].data;
  assert_string_equal(json_string_value(json_object_get(changed, "method")),
                      "notifications/tools/list_changed");
  assert_null(json_object_get(changed, "id"));
  assert_string_equal(json_string_value(json_object_get(request_msg, "method")), "roots/list");
  const char *srv_id = json_string_value(json_object_get(request_msg, "id"));
  assert_non_null(srv_id);

  /* The client's answer to the server's request comes back as a POST. */
  char body[200];
  snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":\"%s\",\"result\":{\"roots\":[]}}",
           srv_id);
  post(s, body, &r);
  assert_int_equal(r.status, 202);
  reply_free(&r);

  /* --keepalive-ms 200: a comment line soon. */
  assert_true(pump(multi, has_comment, &stream, 3000));
  assert_non_null(strstr(stream.body, ": keepalive\n\n"));

  /* Deleting the session ends its stream. */
  http("DELETE", s, NULL, NULL, &r);
  assert_int_equal(r.status, 200);
  reply_free(&r);
  assert_false(pump(multi, never, &stream, 3000)); /* returns when the transfer ends */
  int left = 0;
  CURLMsg *m = curl_multi_info_read(multi, &left);
  assert_non_null(m);
  assert_int_equal(m->data.result, CURLE_OK);

  curl_multi_remove_handle(multi, get);
  curl_easy_cleanup(get);
  curl_slist_free_all(headers);
  curl_multi_cleanup(multi);
  reply_free(&stream);
}

/* Without a GET stream, notify's messages wait and are delivered first
 * thing when one opens; a client without roots gets ping. */
static void test_backlog_and_disconnects(void **state) {
  (void)state;
  char s[64];
  initialize("{}", s, sizeof s);
  json_t *result = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                                  "\"params\":{\"name\":\"notify\"}}");
  assert_non_null(strstr(text_of(result), "backlog"));
  json_decref(result);

  /* Open a stream, hang up, and again: the server must notice the hang-up
   * and free the session's stream slot, or the next GET would be 409 (it
   * notices asynchronously, so a 409 is retried for a while). */
  for (int round = 0; round < 3; round++) {
    long long deadline = now_ms() + 3000;
    for (;;) {
      reply stream;
      struct curl_slist *headers;
      CURL *get = request("GET", s, "text/event-stream", NULL, &stream, &headers);
      CURLM *multi = curl_multi_init();
      curl_multi_add_handle(multi, get);
      bool opened = pump(multi, has_headers, &stream, 5000) &&
                    strcmp(stream.content_type, "text/event-stream") == 0;
      if (opened && round == 0) {
        assert_true(pump(multi, has_two_events, &stream, 5000));
        assert_string_equal(json_string_value(json_object_get(stream.events[1].data, "method")),
                            "ping");
      }
      curl_multi_remove_handle(multi, get);
      curl_easy_cleanup(get);
      curl_slist_free_all(headers);
      curl_multi_cleanup(multi);
      reply_free(&stream);
      if (opened)
        break;
      if (now_ms() >= deadline)
        fail_msg("round %d: the GET stream slot was never freed", round);
      struct timespec pause = {0, 50 * 1000 * 1000};
      nanosleep(&pause, NULL);
    }
  }

  /* A slow call whose client leaves mid-stream: the server carries on. */
  reply sr;
  struct curl_slist *headers;
  CURL *c = request("POST", s, ACCEPT_BOTH,
                    "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{"
                    "\"name\":\"slow\",\"arguments\":{\"ms\":3000,\"steps\":30},"
                    "\"_meta\":{\"progressToken\":9}}}",
                    &sr, &headers);
  CURLM *multi = curl_multi_init();
  curl_multi_add_handle(multi, c);
  assert_true(pump(multi, has_two_events, &sr, 5000));
  curl_multi_remove_handle(multi, c);
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  curl_multi_cleanup(multi);
  reply_free(&sr);
  json_t *pong = call_result(s, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"ping\"}");
  json_decref(pong);
}

static void test_http_errors(void **state) {
  (void)state;
  char s[64];
  initialize("{}", s, sizeof s);
  reply r;
  /* Over 1 MiB: 413. */
  size_t big_len = 1024 * 1024 + 100;
  char *big = malloc(big_len + 1);
  assert_non_null(big);
  memset(big, ' ', big_len);
  memcpy(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 40);
  big[big_len] = '\0';
  post(s, big, &r);
  if (r.status != 413)
    fail_msg("big body: %ld %s", r.status, r.body ? r.body : "");
  reply_free(&r);
  free(big);

  /* Too deep, not JSON: 400 with a parse error. */
  char deep[400];
  memset(deep, '[', 200);
  memset(deep + 200, ']', 199);
  deep[399] = '\0';
  post(s, deep, &r);
  assert_int_equal(r.status, 400);
  json_t *msg = body_json(&r);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(msg, "error"), "code")),
                   -32700);
  json_decref(msg);
  reply_free(&r);
  post(s, "{not json", &r);
  assert_int_equal(r.status, 400);
  reply_free(&r);

  /* Not application/json: 415; no acceptable type: 406. */
  CURL *c;
  struct curl_slist *headers;
  c = request("POST", s, ACCEPT_BOTH, "{}", &r, &headers);
  curl_slist_free_all(headers);
  headers = curl_slist_append(NULL, "Content-Type: text/plain");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  perform(c, headers, &r);
  assert_int_equal(r.status, 415);
  reply_free(&r);
  http("POST", s, "text/html", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r);
  assert_int_equal(r.status, 406);
  reply_free(&r);

  /* A foreign Origin (DNS rebinding) is refused; localhost is fine. */
  c = request("POST", s, ACCEPT_BOTH, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r,
              &headers);
  headers = curl_slist_append(headers, "Origin: http://evil.example");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  perform(c, headers, &r);
  assert_int_equal(r.status, 403);
  reply_free(&r);
  c = request("POST", s, ACCEPT_BOTH, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r,
              &headers);
  headers = curl_slist_append(headers, "Origin: http://localhost:6274");
  headers = curl_slist_append(headers, "MCP-Protocol-Version: 2025-06-18");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  perform(c, headers, &r);
  assert_int_equal(r.status, 200);
  reply_free(&r);
  c = request("POST", s, ACCEPT_BOTH, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r,
              &headers);
  headers = curl_slist_append(headers, "MCP-Protocol-Version: 1999-01-01");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  perform(c, headers, &r);
  assert_int_equal(r.status, 400);
  reply_free(&r);

  http("PUT", s, ACCEPT_BOTH, "{}", &r);
  assert_int_equal(r.status, 405);
  reply_free(&r);

  char other[sizeof url];
  snprintf(other, sizeof other, "%s", url);
  snprintf(url, sizeof url, "%.100s/elsewhere", other);
  post(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &r);
  snprintf(url, sizeof url, "%s", other);
  assert_int_equal(r.status, 404);
  reply_free(&r);
}

/* ---------- the server ---------- */

static int start_server(void **state) {
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const char *bin = getenv("MCPR_SAMPLE_SERVER_BIN");
  if (!bin) {
    fprintf(stderr, "MCPR_SAMPLE_SERVER_BIN is not set (run through ctest)\n");
    return -1;
  }
  static const char *const args[] = {"--listen",       "127.0.0.1:0", "--page-size", "4",
                                     "--keepalive-ms", "200",         "--quiet",     NULL};
  cli_spec spec = {.bin = bin, .args = args};
  cli_start(&spec, &server);
  if (!cli_wait_output(&server, "\n", 10000)) {
    fprintf(stderr, "the server did not start: %s\n", server.err);
    return -1;
  }
  int port = 0;
  if (sscanf(server.out, "listening on http://127.0.0.1:%d/mcp\n", &port) != 1 || port <= 0) {
    fprintf(stderr, "unexpected first line: %s\n", server.out);
    return -1;
  }
  snprintf(url, sizeof url, "http://127.0.0.1:%d/mcp", port);
  return 0;
}

static int stop_server(void **state) {
  (void)state;
  cli_result r;
  cli_stop(&server, SIGTERM, 10000, &r);
  int code = r.exit_code;
  if (code != 0)
    fprintf(stderr, "server exit %d; stderr:\n%s\n", code, r.err);
  cli_result_free(&r);
  curl_global_cleanup();
  return code == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_initialize),
      cmocka_unit_test(test_tools_list_pages),
      cmocka_unit_test(test_tools_call),
      cmocka_unit_test(test_resources_prompts),
      cmocka_unit_test(test_slow_streams_progress),
      cmocka_unit_test(test_session_rules),
      cmocka_unit_test(test_batch),
      cmocka_unit_test(test_get_stream),
      cmocka_unit_test(test_backlog_and_disconnects),
      cmocka_unit_test(test_http_errors),
  };
  return cmocka_run_group_tests(tests, start_server, stop_server);
}

/* `mcpr dashboard`, end to end over HTTP: started on a free port against
 * the fixture store, its JSON API gives the objects the CLI's --json
 * gives for the same window (status, sessions, session, clients, schema,
 * changes, unused, logs, slow), the series agrees with status, the live
 * feed shows a request ingested after it started (a tool name carrying
 * <script> comes back as a JSON string), the Host check refuses other
 * names (DNS rebinding), bad query strings are 400s naming the parameter,
 * only GET is served, and the page carries its CSP and no store data. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "fx_store.h"
#include "testutil.h"

static cli_proc server;
static int port;

typedef struct http_reply {
  int status;
  char *head; /* status line and headers */
  char *body;
} http_reply;

static void reply_free(http_reply *r) {
  free(r->head);
  free(r->body);
}

/* One HTTP/1.1 request with Connection: close; host NULL: the served one. */
static void http(const char *method, const char *target, const char *host, http_reply *out) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    fail_msg("connect to the dashboard on port %d failed", port);
  char served[64], req[4096];
  snprintf(served, sizeof served, "127.0.0.1:%d", port);
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                   method, target, host ? host : served);
  assert_true(n > 0 && (size_t)n < sizeof req);
  assert_int_equal(write(fd, req, (size_t)n), n);
  size_t len = 0, cap = 65536;
  char *buf = malloc(cap);
  assert_non_null(buf);
  for (;;) {
    if (len + 1 >= cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    ssize_t got = read(fd, buf + len, cap - len - 1);
    if (got <= 0)
      break;
    len += (size_t)got;
  }
  close(fd);
  buf[len] = '\0';
  char *sep = strstr(buf, "\r\n\r\n");
  if (!sep || sscanf(buf, "HTTP/1.1 %d", &out->status) != 1)
    fail_msg("not an HTTP reply:\n%s", buf);
  *sep = '\0';
  out->head = strdup(buf);
  out->body = strdup(sep + 4);
  free(buf);
}

/* GET target, expect status, return the body parsed as JSON. */
static json_t *get_json(const char *target, int status) {
  http_reply r;
  http("GET", target, NULL, &r);
  if (r.status != status)
    fail_msg("GET %s: %d, want %d\n%s", target, r.status, status, r.body);
  assert_non_null(strstr(r.head, "Content-Type: application/json"));
  json_error_t e;
  json_t *v = json_loads(r.body, 0, &e);
  if (!v)
    fail_msg("GET %s: not JSON: %s\n%s", target, e.text, r.body);
  reply_free(&r);
  return v;
}

/* The NDJSON lines of a CLI run as one array. */
static json_t *cli_array(const char *const *args) {
  cli_result r;
  run_on(&r, fx_path, args);
  if (r.exit_code != 0)
    fail_msg("exit %d: %s", r.exit_code, r.err);
  json_t *a = json_array();
  for (size_t i = 0; i < nd_count(r.out); i++)
    json_array_append_new(a, nd_line(r.out, i));
  cli_result_free(&r);
  return a;
}

static void assert_json_equal(json_t *got, json_t *want, const char *what) {
  if (!json_equal(got, want)) {
    char *g = json_dumps(got, JSON_COMPACT), *w = json_dumps(want, JSON_COMPACT);
    fail_msg("%s differs:\n api %s\n cli %s", what, g, w);
  }
}

/* API rows carry "proxy" (and log rows "row_id") beside the CLI's fields:
 * drop them to compare. */
static void drop_keys(json_t *rows, const char *k1, const char *k2) {
  size_t i;
  json_t *o;
  json_array_foreach(rows, i, o) {
    json_object_del(o, k1);
    if (k2)
      json_object_del(o, k2);
  }
}

static int setup(void **state) {
  fx_setup(state);
  const char *args[] = {"--db", fx_path, "dashboard", "--listen", "127.0.0.1:0", NULL};
  cli_spec spec = {.args = args};
  cli_start(&spec, &server);
  if (!cli_wait_output(&server, "/  (Ctrl-C to stop)\n", 20000))
    fail_msg("dashboard did not start: %s%s", server.out ? server.out : "",
             server.err ? server.err : "");
  const char *u = strstr(server.out, "http://127.0.0.1:");
  assert_non_null(u);
  port = (int)strtol(u + strlen("http://127.0.0.1:"), NULL, 10);
  assert_true(port > 0);
  return 0;
}

static int teardown(void **state) {
  cli_result r;
  cli_stop(&server, SIGINT, 5000, &r);
  int code = r.exit_code;
  cli_result_free(&r);
  fx_teardown(state);
  return code; /* a clean exit on SIGINT */
}

static void test_status_is_the_cli_object(void **state) {
  (void)state;
  const char *windows[][2] = {{"/api/status", "1h"},
                              {"/api/status?since=4h", "4h"},
                              {"/api/status?proxy=web&since=1h", "1h"}};
  for (size_t i = 0; i < 3; i++) {
    json_t *api = get_json(windows[i][0], 200);
    const char *proxy = strstr(windows[i][0], "proxy=web") ? "web" : NULL;
    const char *args[] = {"proxy", "status", "--since", windows[i][1], "--json",
                          proxy, NULL};
    json_t *cli = cli_array(args);
    json_t *want = json_array_get(cli, 0);
    char keys[256];
    keys_of(api, keys, sizeof keys);
    assert_string_equal(keys, "proxy,since,total_requests,error_pct,active_sessions,"
                              "total_sessions,proxies,tools");
    /* proxies come from this machine's registry, read twice: the rest must
     * be identical */
    json_object_del(api, "proxies");
    json_object_del(want, "proxies");
    assert_json_equal(api, want, windows[i][0]);
    json_decref(api);
    json_decref(cli);
  }
  json_t *api = get_json("/api/status", 200);
  assert_int_equal(ji(api, "total_requests"), 126);
  json_decref(api);
}

static void test_rows_are_the_cli_rows(void **state) {
  (void)state;
  static const struct {
    const char *target;
    const char *args[8];
    const char *drop1, *drop2;
  } cases[] = {
      {"/api/sessions?since=7d", {"proxy", "sessions", "--since", "7d", "--json"}, "proxy", NULL},
      {"/api/sessions?active=1&since=7d",
       {"proxy", "sessions", "--active", "--since", "7d", "--json"}, "proxy", NULL},
      {"/api/clients", {"proxy", "clients", "--json"}, NULL, NULL},
      {"/api/clients?proxy=api&since=1h", {"proxy", "clients", "api", "--since", "1h", "--json"},
       NULL, NULL},
      {"/api/schema", {"proxy", "schema", "--json"}, NULL, NULL},
      {"/api/schema/changes", {"proxy", "schema", "--changes", "--json"}, "proxy", NULL},
      {"/api/unused", {"proxy", "schema", "--unused", "--json"}, NULL, NULL},
      {"/api/unused?proxy=web&since=1h",
       {"proxy", "schema", "web", "--unused", "--since", "1h", "--json"}, NULL, NULL},
      {"/api/logs?limit=200", {"proxy", "logs", "--tail", "200", "--json"}, "proxy", "row_id"},
      {"/api/logs?tool=search&status=error",
       {"proxy", "logs", "--tool", "search", "--status", "error", "--json"}, "proxy", "row_id"},
      {"/api/slow?threshold=1ms&since=4h",
       {"proxy", "slow", "--threshold", "1ms", "--since", "4h", "--json"}, "proxy", "row_id"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *api = get_json(cases[i].target, 200);
    json_t *cli = cli_array(cases[i].args);
    assert_true(json_is_array(api));
    if (json_array_size(api) == 0)
      fail_msg("%s: no rows (the fixture has some)", cases[i].target);
    if (cases[i].drop1)
      drop_keys(api, cases[i].drop1, cases[i].drop2);
    assert_json_equal(api, cli, cases[i].target);
    json_decref(api);
    json_decref(cli);
  }
  /* one session: the `proxy session --json` object */
  json_t *api = get_json("/api/session?id=sess-alpha-2", 200);
  const char *args[] = {"proxy", "session", "sess-alpha-2", "--json", NULL};
  json_t *cli = cli_array(args);
  assert_json_equal(api, json_array_get(cli, 0), "/api/session");
  json_decref(api);
  json_decref(cli);
  json_t *nf = get_json("/api/session?id=nope", 404);
  assert_non_null(strstr(js(nf, "error"), "nope"));
  json_decref(nf);
}

static void test_series_agrees(void **state) {
  (void)state;
  json_t *st = get_json("/api/status?since=4h", 200);
  json_t *se = get_json("/api/series?since=4h&labels=1", 200);
  json_t *series = json_object_get(se, "series");
  json_t *total = json_array_get(series, 0);
  assert_true(json_is_null(json_object_get(total, "label")));
  assert_int_equal(ji(total, "requests"), ji(st, "total_requests"));
  size_t buckets = json_array_size(json_object_get(total, "start_ms"));
  assert_true(buckets >= 30 && buckets <= 130);
  assert_int_equal(json_array_size(json_object_get(total, "p95_us")), buckets);
  /* one series per stats row, same counts */
  json_t *tools = json_object_get(st, "tools");
  assert_int_equal(json_array_size(series), 1 + json_array_size(tools));
  for (size_t i = 0; i < json_array_size(tools); i++) {
    json_t *t = json_array_get(tools, i), *s = json_array_get(series, 1 + i);
    assert_string_equal(js(s, "label"), js(t, "label"));
    assert_int_equal(ji(s, "requests"), ji(t, "calls"));
  }
  json_decref(st);
  json_decref(se);
  se = get_json("/api/series?since=1h&buckets=4&tool=fetch", 200);
  total = json_array_get(json_object_get(se, "series"), 0);
  assert_int_equal(ji(total, "requests"), 20);
  assert_int_equal(json_array_size(json_object_get(total, "requests_per_bucket")), 4);
  json_decref(se);
}

static void expect_400(const char *target, const char *needle) {
  json_t *e = get_json(target, 400);
  if (!strstr(js(e, "error"), needle))
    fail_msg("%s: error '%s' does not name '%s'", target, js(e, "error"), needle);
  json_decref(e);
}

static void test_bad_requests(void **state) {
  (void)state;
  expect_400("/api/status?since=abc", "since");
  expect_400("/api/status?since=-1h", "since");
  expect_400("/api/status?since=99999999999999999999d", "since");
  expect_400("/api/status?bogus=1", "bogus");
  expect_400("/api/status?since=1h&since=2h", "twice");
  expect_400("/api/logs?limit=0", "limit");
  expect_400("/api/logs?limit=5000", "limit");
  expect_400("/api/logs?status=weird", "status");
  expect_400("/api/slow?threshold=fast", "threshold");
  expect_400("/api/series?buckets=100000", "buckets");
  expect_400("/api/series?labels=maybe", "labels");
  expect_400("/api/sessions?active=2", "active");
  expect_400("/api/session", "id");
  expect_400("/api/live?after=x", "after");
  expect_400("/api/live?after=-1", "after");
  expect_400("/api/live?after=%201", "after");
  expect_400("/api/live?after=99999999999999999999", "after");
  char big[1200] = "/api/logs?tool=";
  memset(big + strlen(big), 'a', 600);
  expect_400(big, "longer");
  json_t *e = get_json("/api/nothing", 404);
  json_decref(e);
  http_reply r;
  http("POST", "/api/status", NULL, &r);
  assert_int_equal(r.status, 405);
  reply_free(&r);
  http("DELETE", "/", NULL, &r);
  assert_int_equal(r.status, 405);
  reply_free(&r);
}

/* DNS rebinding: a page on another name that resolves to 127.0.0.1. */
static void test_host_check(void **state) {
  (void)state;
  char ok[64], wrong_port[64];
  snprintf(ok, sizeof ok, "localhost:%d", port);
  snprintf(wrong_port, sizeof wrong_port, "127.0.0.1:%d", port + 1);
  char evil[64];
  snprintf(evil, sizeof evil, "evil.example:%d", port);
  const char *refused[] = {evil, "evil.example", wrong_port, "127.0.0.1", "",
                           "localhost.evil.example", NULL};
  for (size_t i = 0; refused[i]; i++) {
    for (int page = 0; page < 2; page++) {
      http_reply r;
      http("GET", page ? "/" : "/api/status", refused[i], &r);
      if (r.status != 403)
        fail_msg("Host '%s': %d, want 403", refused[i], r.status);
      assert_null(strstr(r.body, "total_requests"));
      assert_null(strstr(r.body, "<html"));
      reply_free(&r);
    }
  }
  http_reply r;
  http("GET", "/api/status", ok, &r);
  assert_int_equal(r.status, 200);
  reply_free(&r);
}

static void test_page(void **state) {
  (void)state;
  http_reply r;
  http("GET", "/", NULL, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Content-Type: text/html"));
  assert_non_null(strstr(r.head, "Content-Security-Policy: default-src 'none'; script-src 'self'"));
  assert_non_null(strstr(r.body, "<script src=\"/assets/app.js\""));
  /* nothing from elsewhere */
  assert_null(strstr(r.body, "http://"));
  assert_null(strstr(r.body, "https://"));
  reply_free(&r);
  http("GET", "/assets/app.js", NULL, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.head, "Content-Type: text/javascript"));
  assert_null(strstr(r.body, "innerHTML"));
  assert_null(strstr(r.body, "https://"));
  reply_free(&r);
  http("GET", "/assets/../../etc/passwd", NULL, &r);
  assert_int_equal(r.status, 404);
  reply_free(&r);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  *len = 0;
  if (!f)
    return NULL;
  size_t cap = 1 << 20;
  char *buf = malloc(cap);
  assert_non_null(buf);
  size_t got;
  while ((got = fread(buf + *len, 1, cap - *len, f)) > 0) {
    *len += got;
    if (*len == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
  }
  fclose(f);
  return buf;
}

/* Read-only: a round of every endpoint leaves the store's file and its
 * WAL byte for byte as they were. */
static void test_writes_nothing(void **state) {
  (void)state;
  char wal[1024];
  snprintf(wal, sizeof wal, "%s-wal", fx_path);
  size_t db_len, wal_len;
  char *db0 = slurp(fx_path, &db_len), *wal0 = slurp(wal, &wal_len);
  assert_non_null(db0);
  static const char *const targets[] = {
      "/api/status?since=30d", "/api/series?since=7d&labels=1", "/api/logs", "/api/slow",
      "/api/live?after=1",     "/api/sessions?since=30d",       "/api/session?id=sess-alpha-1",
      "/api/clients",          "/api/schema",                   "/api/schema/changes",
      "/api/unused",           "/api/proxies",                  NULL};
  for (size_t i = 0; targets[i]; i++)
    json_decref(get_json(targets[i], 200));
  size_t db_len2, wal_len2;
  char *db1 = slurp(fx_path, &db_len2), *wal1 = slurp(wal, &wal_len2);
  assert_int_equal(db_len2, db_len);
  assert_int_equal(memcmp(db0, db1, db_len), 0);
  assert_int_equal(wal_len2, wal_len);
  if (wal_len)
    assert_int_equal(memcmp(wal0, wal1, wal_len), 0);
  free(db0);
  free(db1);
  free(wal0);
  free(wal1);
}

/* Last: it adds rows to the fixture. */
static void test_live_ingest(void **state) {
  (void)state;
  /* a row id past the counts' bound is still a row id */
  json_t *far = get_json("/api/live?after=9000000000", 200);
  assert_int_equal(json_array_size(json_object_get(far, "rows")), 0);
  json_decref(far);
  json_t *start = get_json("/api/live?after=0", 200);
  int64_t cursor = ji(start, "last_row_id");
  assert_true(cursor > 0);
  assert_int_equal(json_array_size(json_object_get(start, "rows")), 0);
  json_decref(start);
  char line[1024];
  snprintf(line, sizeof line,
           "{\"type\":\"request\",\"id\":\"dash-live-1\",\"ts\":%lld,\"proxy\":\"api\","
           "\"session_id\":null,\"method\":\"POST\",\"path\":\"/mcp\",\"mcp_method\":"
           "\"tools/call\",\"tool\":\"<script>alert(1)</script>\",\"status\":200,"
           "\"latency_us\":4321,\"error_code\":\"-1\",\"error_msg\":\"<img src=x "
           "onerror=alert(2)>\"}\n",
           (long long)mcpr_now_ms());
  const char *args[] = {"--db", fx_path, "ingest", "-", NULL};
  cli_spec spec = {.args = args, .stdin_data = line};
  cli_result ir;
  cli_run(&spec, &ir);
  if (ir.exit_code != 0)
    fail_msg("ingest: %s", ir.err);
  cli_result_free(&ir);
  char target[96];
  snprintf(target, sizeof target, "/api/live?after=%lld", (long long)cursor);
  json_t *live = get_json(target, 200);
  json_t *rows = json_object_get(live, "rows");
  assert_int_equal(json_array_size(rows), 1);
  json_t *row = json_array_get(rows, 0);
  assert_string_equal(js(row, "tool"), "<script>alert(1)</script>");
  assert_string_equal(js(row, "error_msg"), "<img src=x onerror=alert(2)>");
  assert_string_equal(js(row, "request_id"), "dash-live-1");
  assert_int_equal(ji(live, "last_row_id"), ji(row, "row_id"));
  assert_true(ji(row, "row_id") > cursor);
  json_decref(live);
  /* the status (once its cache is stale) counts it, as the CLI does */
  json_t *st = get_json("/api/status?since=2h", 200);
  const char *sargs[] = {"proxy", "status", "--since", "2h", "--json", NULL};
  json_t *cli = cli_array(sargs);
  assert_int_equal(ji(st, "total_requests"), 127);
  assert_int_equal(ji(st, "total_requests"), ji(json_array_get(cli, 0), "total_requests"));
  json_decref(st);
  json_decref(cli);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_is_the_cli_object),
      cmocka_unit_test(test_rows_are_the_cli_rows),
      cmocka_unit_test(test_series_agrees),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_host_check),
      cmocka_unit_test(test_page),
      cmocka_unit_test(test_writes_nothing),
      cmocka_unit_test(test_live_ingest),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

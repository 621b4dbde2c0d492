/*
 * `mcpr proxy run` end to end: a fake MCP upstream (libevent evhttp on its
 * own thread) behind the built mcpr, a raw-socket client in front of it.
 * Proves: JSON answers forwarded byte for byte, SSE events streamed as the
 * upstream sends them (the first reaches the client before the upstream
 * has sent the second), end-to-end headers both ways and hop-by-hop ones
 * dropped, 202 for a notification, 413, 403 for a foreign Origin, 504 for
 * a stalled upstream, 502 for one that is down, DELETE ending the session,
 * and the rows the store holds afterwards.
 */
#define _GNU_SOURCE /* strcasestr */
#include <sys/queue.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lockholder.h"
#include "proxy_fixture.h"
#include "testutil.h"

/* --- the fake upstream --- */

typedef struct upstream {
  pf_upstream u;
  pthread_mutex_t lock;
  char last_headers[8192]; /* "Name: value\n" of the last request */
  char last_body[8192];
  atomic_bool sse_second_sent;
  atomic_int requests;
} upstream;

static upstream up;

typedef struct sse_step {
  struct evhttp_request *req;
  struct event *ev;
  int step;
} sse_step;

static void sse_next(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  sse_step *s = arg;
  struct evbuffer *b = evbuffer_new();
  if (s->step == 0) {
    evbuffer_add_printf(b, ": a comment line\nid: ev-1\nevent: message\ndata: "
                           "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                           "\"params\":{\"progressToken\":\"progress-1\",\"progress\":1}}\n\n");
    evhttp_send_reply_chunk(s->req, b);
    s->step = 1;
    struct timeval tv = {0, 800 * 1000};
    evtimer_add(s->ev, &tv);
  } else {
    atomic_store(&up.sse_second_sent, true);
    evbuffer_add_printf(b, "id: ev-2\nretry: 1000\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,"
                           "\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n");
    evhttp_send_reply_chunk(s->req, b);
    evhttp_send_reply_end(s->req);
    event_free(s->ev);
    free(s);
  }
  evbuffer_free(b);
}

static void reply(struct evhttp_request *req, int status, const char *ctype, const char *body) {
  pf_reply(req, status, ctype, body, body ? strlen(body) : 0);
}

static void on_upstream(struct evhttp_request *req, void *arg) {
  (void)arg;
  atomic_fetch_add(&up.requests, 1);
  struct evbuffer *ib = evhttp_request_get_input_buffer(req);
  char body[8192];
  size_t n = evbuffer_copyout(ib, body, sizeof body - 1);
  body[n] = '\0';
  pthread_mutex_lock(&up.lock);
  size_t at = 0;
  struct evkeyval *kv;
  TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
    at += (size_t)snprintf(up.last_headers + at, sizeof up.last_headers - at, "%s: %s\n", kv->key,
                           kv->value);
    if (at >= sizeof up.last_headers)
      at = sizeof up.last_headers - 1;
  }
  up.last_headers[at] = '\0';
  snprintf(up.last_body, sizeof up.last_body, "%s", body);
  pthread_mutex_unlock(&up.lock);

  struct evkeyvalq *out = evhttp_request_get_output_headers(req);
  evhttp_add_header(out, "X-Upstream", "fake");
  evhttp_add_header(out, "Keep-Alive", "timeout=5");
  evhttp_add_header(out, "Proxy-Authenticate", "Basic");
  enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
  if (cmd == EVHTTP_REQ_DELETE) {
    reply(req, 200, NULL, NULL);
  } else if (cmd == EVHTTP_REQ_GET) {
    reply(req, 405, NULL, NULL);
  } else if (strstr(body, "\"initialize\"")) {
    evhttp_add_header(out, "Mcp-Session-Id", "sess-1");
    reply(req, 200, "application/json",
          "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-06-18\","
          "\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"fake\",\"version\":\"1\"}}}");
  } else if (strstr(body, "notifications/initialized")) {
    reply(req, 202, NULL, NULL);
  } else if (strstr(body, "tools/list")) {
    reply(req, 200, "application/json",
          "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"tools\":[{\"name\":\"echo\","
          "\"inputSchema\":{\"type\":\"object\"}}]}}");
  } else if (strstr(body, "\"fail\"")) {
    reply(req, 200, "application/json",
          "{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"isError\":true,\"content\":[{\"type\":"
          "\"text\",\"text\":\"it failed\"}]}}");
  } else if (strstr(body, "\"nosuch\"")) {
    reply(req, 200, "application/json",
          "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32601,\"message\":\"no such "
          "method\"}}");
  } else if (strstr(body, "\"slow_sse\"")) {
    evhttp_add_header(out, "Content-Type", "text/event-stream");
    evhttp_send_reply_start(req, 200, "OK");
    sse_step *s = calloc(1, sizeof *s);
    s->req = req;
    s->ev = evtimer_new(up.u.base, sse_next, s);
    sse_next(-1, 0, s);
  } else if (strstr(body, "\"stall\"")) {
    /* never answered: the proxy's request_timeout must fire */
  } else {
    reply(req, 200, "application/json", "{\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}");
  }
}

static int proxy_port;

/* --- the proxy under test --- */

static char *dir, *db;
static cli_proc proc;

static int setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  pthread_mutex_init(&up.lock, NULL);
  pf_upstream_start(&up.u, on_upstream, NULL);
  dir = tu_tmpdir();
  db = tu_path(dir, "store.db");
  char config[1024];
  snprintf(config, sizeof config,
           "name = \"fake\"\nmcp = \"http://127.0.0.1:%d/mcp\"\nadmin_bind = \"127.0.0.1:0\"\n"
           "request_timeout = \"1s\"\nmax_request_body_size = 4000\ndrain_timeout = \"5s\"\n",
           up.u.port);
  proxy_port = pf_start_proxy(&proc, dir, db, config, "mcpr.toml", NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  pf_upstream_stop(&up.u);
  tu_rmdir(dir);
  free(db);
  return 0;
}

#define INIT_BODY                                                                               \
  "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"     \
  "\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"claude-code\",\"version\":"     \
  "\"2.0.1\"}}}"

static void test_initialize_json_and_headers(void **state) {
  (void)state;
  pf_resp r;
  pf_http(proxy_port, &r, "POST",
       "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
       "Authorization: Bearer tok-123\r\nMCP-Protocol-Version: 2025-06-18\r\n"
       "X-Unknown-Thing: kept\r\nProxy-Authorization: secret\r\nKeep-Alive: timeout=9\r\n"
       "Origin: http://localhost:6274\r\n",
       INIT_BODY);
  assert_int_equal(r.status, 200);
  /* byte for byte */
  assert_string_equal(r.body,
                      "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":\"2025-06-18\","
                      "\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"fake\","
                      "\"version\":\"1\"}}}");
  assert_true(pf_has_header(&r, "\r\nMcp-Session-Id: sess-1\r\n"));
  assert_true(pf_has_header(&r, "\r\nX-Upstream: fake\r\n"));
  assert_true(pf_has_header(&r, "\r\nContent-Type: application/json\r\n"));
  assert_false(pf_has_header(&r, "\r\nProxy-Authenticate:"));
  assert_false(pf_has_header(&r, "\r\nKeep-Alive:"));
  pthread_mutex_lock(&up.lock);
  const char *h = up.last_headers;
  assert_non_null(strcasestr(h, "Authorization: Bearer tok-123\n"));
  assert_non_null(strcasestr(h, "MCP-Protocol-Version: 2025-06-18\n"));
  assert_non_null(strcasestr(h, "X-Unknown-Thing: kept\n"));
  assert_non_null(strcasestr(h, "Accept: application/json, text/event-stream\n"));
  assert_null(strcasestr(h, "Proxy-Authorization"));
  assert_null(strcasestr(h, "Keep-Alive"));
  assert_string_equal(up.last_body, INIT_BODY);
  pthread_mutex_unlock(&up.lock);
  free(r.raw);
}

static void test_notification_202_and_list(void **state) {
  (void)state;
  pf_resp r;
  pf_http(proxy_port, &r, "POST", "Mcp-Session-Id: sess-1\r\nContent-Type: application/json\r\n",
       "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
  assert_int_equal(r.status, 202);
  assert_string_equal(r.body, "");
  free(r.raw);
  pf_http(proxy_port, &r, "POST", "Mcp-Session-Id: sess-1\r\nContent-Type: application/json\r\n",
       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"echo\""));
  free(r.raw);
  pf_http(proxy_port, &r, "POST", "Mcp-Session-Id: sess-1\r\n",
       "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"fail\"}}");
  assert_int_equal(r.status, 200);
  free(r.raw);
  pf_http(proxy_port, &r, "POST", "Mcp-Session-Id: sess-1\r\n",
       "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"nosuch\"}");
  assert_int_equal(r.status, 200);
  free(r.raw);
}

static bool first_event_seen_early;
static bool first_event_seen;

static void watch_sse(const char *raw, size_t len) {
  (void)len;
  if (!first_event_seen && strstr(raw, "progress-1")) {
    first_event_seen = true;
    first_event_seen_early = !atomic_load(&up.sse_second_sent);
  }
}

static void test_sse_streams_each_event_as_it_comes(void **state) {
  (void)state;
  int fd = pf_connect(proxy_port);
  pf_send_request(fd, "POST", "/mcp",
               "Mcp-Session-Id: sess-1\r\nAccept: application/json, text/event-stream\r\n",
               "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":"
               "\"slow_sse\"}}");
  pf_resp r;
  pf_read_response(fd, &r, 10000, watch_sse);
  close(fd);
  assert_int_equal(r.status, 200);
  assert_true(first_event_seen);
  assert_true(first_event_seen_early); /* streamed, not held until the end */
  assert_true(pf_has_header(&r, "\r\nContent-Type: text/event-stream"));
  /* id:, event:, retry: and comment lines kept */
  assert_non_null(strstr(r.body, ": a comment line\nid: ev-1\nevent: message\ndata: "));
  assert_non_null(strstr(r.body, "id: ev-2\nretry: 1000\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,"));
  free(r.raw);
}

static void test_413_403_504(void **state) {
  (void)state;
  pf_resp r;
  char big[6000];
  memset(big, ' ', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  memcpy(big, "{\"jsonrpc\":\"2.0\",\"id\":55,\"method\":\"ping\"}", 41);
  pf_http(proxy_port, &r, "POST", NULL, big);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "\"error\""));
  free(r.raw);

  pf_http(proxy_port, &r, "POST", "Origin: https://evil.example.com\r\n",
       "{\"jsonrpc\":\"2.0\",\"id\":56,\"method\":\"ping\"}");
  assert_int_equal(r.status, 403);
  assert_non_null(strstr(r.body, "\"id\":56"));
  free(r.raw);

  int before = atomic_load(&up.requests);
  long long t0 = pf_now_ms();
  pf_http(proxy_port, &r, "POST", NULL,
       "{\"jsonrpc\":\"2.0\",\"id\":57,\"method\":\"tools/call\",\"params\":{\"name\":\"stall\"}}");
  long long took = pf_now_ms() - t0;
  assert_int_equal(r.status, 504);
  assert_non_null(strstr(r.body, "\"id\":57"));
  assert_true(took >= 900 && took < 5000);
  assert_int_equal(atomic_load(&up.requests), before + 1);
  free(r.raw);
}

static void test_admin_and_get(void **state) {
  (void)state;
  const char *at = strstr(proc.out, "admin:    http://127.0.0.1:");
  assert_non_null(at);
  int admin = (int)strtol(at + strlen("admin:    http://127.0.0.1:"), NULL, 10);
  int saved = proxy_port;
  pf_resp r;
  int fd = pf_connect(admin);
  pf_send_request(fd, "GET", "/healthz", NULL, NULL);
  pf_read_response(fd, &r, 5000, NULL);
  close(fd);
  assert_int_equal(r.status, 200);
  free(r.raw);
  fd = pf_connect(admin);
  pf_send_request(fd, "GET", "/ready", NULL, NULL);
  pf_read_response(fd, &r, 5000, NULL);
  close(fd);
  assert_int_equal(r.status, 200); /* the store can write */
  assert_non_null(strstr(r.body, "ready"));
  free(r.raw);
  proxy_port = saved;
  /* a GET the upstream refuses: its status passes through */
  pf_http(proxy_port, &r, "GET", "Mcp-Session-Id: sess-1\r\nAccept: text/event-stream\r\n", NULL);
  assert_int_equal(r.status, 405);
  free(r.raw);
}

static int admin_status(void) {
  const char *at = strstr(proc.out, "admin:    http://127.0.0.1:");
  assert_non_null(at);
  int admin = (int)strtol(at + strlen("admin:    http://127.0.0.1:"), NULL, 10);
  pf_resp r;
  int fd = pf_connect(admin);
  pf_send_request(fd, "GET", "/ready", NULL, NULL);
  pf_read_response(fd, &r, 5000, NULL);
  close(fd);
  int status = r.status;
  free(r.raw);
  return status;
}

/* Issue 18: /ready answers 503 while the store cannot write (here: its
 * commit lock held by a stopped process, reported after 5 s), and 200
 * again once it writes; what was waiting is then stored. */
static void test_ready_503_while_the_store_cannot_write(void **state) {
  (void)state;
  pid_t holder = lh_hold_stopped(db, LH_COMMIT_LOCK);
  pf_resp r;
  pf_http(proxy_port, &r, "POST", "Mcp-Session-Id: sess-1\r\nContent-Type: application/json\r\n",
       "{\"jsonrpc\":\"2.0\",\"id\":90,\"method\":\"tools/list\"}");
  assert_int_equal(r.status, 200); /* forwarding does not wait on the store */
  free(r.raw);
  int status = 0;
  for (int i = 0; i < 150 && status != 503; i++) {
    tu_sleep_ms(100);
    status = admin_status();
  }
  assert_int_equal(status, 503);
  lh_release(holder);
  for (int i = 0; i < 100 && status != 200; i++) {
    tu_sleep_ms(100);
    status = admin_status();
  }
  assert_int_equal(status, 200);
}

static void test_delete_ends_session(void **state) {
  (void)state;
  pf_resp r;
  pf_http(proxy_port, &r, "DELETE", "Mcp-Session-Id: sess-1\r\n", NULL);
  assert_int_equal(r.status, 200);
  free(r.raw);
}

static void test_store_rows_after_sigterm(void **state) {
  (void)state;
  cli_result res;
  cli_stop(&proc, SIGTERM, 15000, &res);
  assert_int_equal(res.exit_code, 0);
  /* --log json: SPEC §3 lines on stderr */
  assert_non_null(strstr(res.err, "\"type\":\"session_start\""));
  assert_non_null(strstr(res.err, "\"type\":\"schema_version_created\""));
  cli_result_free(&res);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM sessions WHERE session_id='sess-1' AND "
                                  "client_name='claude-code' AND client_version='2.0.1' AND "
                                  "client_platform='claude' AND ended_at IS NOT NULL"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE method='initialize' AND "
                                  "session_id='sess-1' AND status='ok'"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE "
                                  "method='notifications/initialized' AND status='ok'"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE tool='fail' AND "
                                  "status='error' AND error_code='tool_error' AND "
                                  "error_msg='it failed'"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE method='nosuch' AND "
                                  "status='error' AND error_code='-32601'"),
                   1);
  /* the SSE call's latency ends at its result (~800 ms), its sizes counted */
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE tool='slow_sse' AND "
                                  "status='ok' AND latency_us >= 700000 AND latency_us < 5000000 "
                                  "AND bytes_in > 0 AND bytes_out > 0"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE tool='stall' AND "
                                  "status='timeout'"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE method='ping' AND "
                                  "status='error'"),
                   1); /* the 403 (the 413's body was not parsed: its method is POST) */
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM server_schema WHERE method='tools/list' "
                                  "AND proxy='fake' AND length(schema_hash)=64"),
                   1);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM server_schema WHERE method='initialize'"),
                   1);
  /* every one of the session's calls counted on it */
  assert_true(tu_sql_int(db, "SELECT total_calls FROM sessions WHERE session_id='sess-1'") >= 5);
}

static void test_upstream_down_is_502(void **state) {
  (void)state;
  /* a port that nothing listens on */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, (struct sockaddr *)&sa, sizeof sa);
  socklen_t sl = sizeof sa;
  getsockname(s, (struct sockaddr *)&sa, &sl);
  int dead = ntohs(sa.sin_port);
  close(s);
  char config[512];
  snprintf(config, sizeof config,
           "name = \"down\"\nmcp = \"http://127.0.0.1:%d/mcp\"\nadmin_bind = \"off\"\n", dead);
  cli_proc p2;
  int saved = proxy_port;
  proxy_port = pf_start_proxy(&p2, dir, db, config, "down.toml", NULL);
  pf_resp r;
  pf_http(proxy_port, &r, "POST", NULL,
          "{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"tools/list\"}");
  assert_int_equal(r.status, 502);
  assert_non_null(strstr(r.body, "\"id\":\"abc\""));
  assert_non_null(strstr(r.body, "\"code\":-32000"));
  free(r.raw);
  proxy_port = saved;
  cli_result res;
  cli_stop(&p2, SIGINT, 15000, &res);
  assert_int_equal(res.exit_code, 0);
  cli_result_free(&res);
  assert_int_equal(tu_sql_int(db, "SELECT count(*) FROM requests WHERE proxy='down' AND "
                                  "method='tools/list' AND status='error'"),
                   1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_initialize_json_and_headers),
      cmocka_unit_test(test_notification_202_and_list),
      cmocka_unit_test(test_sse_streams_each_event_as_it_comes),
      cmocka_unit_test(test_413_403_504),
      cmocka_unit_test(test_admin_and_get),
      cmocka_unit_test(test_ready_503_while_the_store_cannot_write),
      cmocka_unit_test(test_delete_ends_session),
      cmocka_unit_test(test_store_rows_after_sigterm),
      cmocka_unit_test(test_upstream_down_is_502),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

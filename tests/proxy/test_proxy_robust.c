// ctest-labels: tsan
/*
 * `mcpr proxy run` under hostile and unusual traffic (issue 13), end to
 * end: the built mcpr between a fake upstream (its own thread) and raw
 * sockets. Proves: a client that hangs up mid-SSE-stream gets the upstream
 * request cancelled and its event a note, and others are still served; an
 * upstream that breaks off mid-stream gets the client's connection closed
 * (not ended cleanly) and an error event; a 10 MiB JSON answer passes byte
 * for byte while only max_response_body_size of it is parsed; a client
 * trickling its headers byte by byte holds nobody else up; a batch gets an
 * event per message; an upstream 404 for a session ends it; a server's
 * list_changed notification passes through a GET stream untouched; a
 * client that does not read an endless SSE stream does not make the proxy
 * read (and buffer) the upstream without bound; and run out of file
 * descriptors, the proxy pauses accepting instead of spinning, and serves
 * again once descriptors are free.
 */
#define _GNU_SOURCE /* strcasestr */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "proxy_fixture.h"
#include "testutil.h"

#define BIG_BYTES (10 * 1024 * 1024)
#define FIREHOSE_CAP_BYTES (512LL * 1024 * 1024)

static pf_upstream up;
static atomic_bool forever_closed, cut_sent;
static atomic_llong firehose_bytes;
static atomic_bool firehose_closed;
static char *big_body; /* a 10 MiB JSON-RPC answer */
static size_t big_len;

/* --- the fake upstream's streams --- */

typedef struct stream {
  struct evhttp_request *req;
  struct event *ev;
  int n;
  atomic_bool *closed;
} stream;

static void stream_closed(struct evhttp_connection *c, void *arg) {
  (void)c;
  stream *s = arg;
  atomic_store(s->closed, true);
  /* evhttp detached the unfinished request from the dead connection: ours */
  if (!evhttp_request_get_connection(s->req))
    evhttp_send_reply_end(s->req);
  event_free(s->ev);
  free(s);
}

static stream *stream_start(struct evhttp_request *req, event_callback_fn tick,
                            atomic_bool *closed) {
  stream *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->req = req;
  s->closed = closed;
  s->ev = evtimer_new(up.base, tick, s);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/event-stream");
  evhttp_send_reply_start(req, 200, "OK");
  evhttp_connection_set_closecb(evhttp_request_get_connection(req), stream_closed, s);
  return s;
}

static void after_ms(stream *s, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  evtimer_add(s->ev, &tv);
}

/* An SSE event every 50 ms until the proxy hangs up. */
static void forever_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  stream *s = arg;
  struct evbuffer *b = evbuffer_new();
  evbuffer_add_printf(b, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                         "\"params\":{\"progress\":%d}}\n\n",
                      s->n++);
  evhttp_send_reply_chunk(s->req, b);
  evbuffer_free(b);
  after_ms(s, 50);
}

/* One event, then the connection is dropped mid-stream. */
static void cut_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  stream *s = arg;
  if (s->n++ == 0) {
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                           "\"params\":{\"progress\":0}}\n\n");
    evhttp_send_reply_chunk(s->req, b);
    evbuffer_free(b);
    atomic_store(&cut_sent, true);
    after_ms(s, 300);
    return;
  }
  struct evhttp_connection *c = evhttp_request_get_connection(s->req);
  evhttp_connection_set_closecb(c, NULL, NULL);
  event_free(s->ev);
  free(s);
  evhttp_connection_free(c); /* no last chunk: the response is cut */
}

/* 64 KiB events as fast as the proxy takes them (each written only when
 * the last one left for the kernel), so firehose_bytes is what the proxy
 * has read. Capped, so a proxy without backpressure fails the test rather
 * than the machine. */
static void firehose_more(struct evhttp_connection *c, void *arg);

static void firehose_send(stream *s) {
  if (atomic_load(&firehose_bytes) >= FIREHOSE_CAP_BYTES)
    return;
  static char chunk[64 * 1024];
  if (!chunk[0]) {
    memset(chunk, 'x', sizeof chunk);
    memcpy(chunk, "data: ", 6);
    chunk[sizeof chunk - 2] = '\n';
    chunk[sizeof chunk - 1] = '\n';
  }
  struct evbuffer *b = evbuffer_new();
  evbuffer_add(b, chunk, sizeof chunk);
  atomic_fetch_add(&firehose_bytes, (long long)sizeof chunk);
  evhttp_send_reply_chunk_with_cb(s->req, b, firehose_more, s);
  evbuffer_free(b);
}

static void firehose_more(struct evhttp_connection *c, void *arg) {
  (void)c;
  firehose_send(arg);
}


static void on_upstream(struct evhttp_request *req, void *arg) {
  (void)arg;
  char body[4096];
  struct evbuffer *ib = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_copyout(ib, body, sizeof body - 1);
  body[n] = '\0';
  const char *sid = evhttp_find_header(evhttp_request_get_input_headers(req), "Mcp-Session-Id");
  if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
    /* the server's own stream: a list_changed, then the stream ends */
    const char *ev = "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
                     "\"notifications/tools/list_changed\"}\n\n";
    pf_reply(req, 200, "text/event-stream", ev, strlen(ev));
  } else if (sid && strcmp(sid, "gone") == 0) {
    const char *e = "{\"jsonrpc\":\"2.0\",\"id\":21,\"error\":{\"code\":-32001,\"message\":"
                    "\"Session not found\"}}";
    pf_reply(req, 404, "application/json", e, strlen(e));
  } else if (strstr(body, "\"sse_forever\"")) {
    forever_tick(-1, 0, stream_start(req, forever_tick, &forever_closed));
  } else if (strstr(body, "\"cut_stream\"")) {
    cut_tick(-1, 0, stream_start(req, cut_tick, &forever_closed));
  } else if (strstr(body, "\"firehose\"")) {
    firehose_send(stream_start(req, forever_tick, &firehose_closed));
  } else if (strstr(body, "\"big\"")) {
    pf_reply(req, 200, "application/json", big_body, big_len);
  } else if (body[0] == '[') {
    const char *b = "[{\"jsonrpc\":\"2.0\",\"id\":32,\"result\":{\"tools\":[]}},"
                    "{\"jsonrpc\":\"2.0\",\"id\":31,\"result\":{}}]";
    pf_reply(req, 200, "application/json", b, strlen(b));
  } else {
    const char *ok = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";
    pf_reply(req, 200, "application/json", ok, strlen(ok));
  }
}

/* --- the proxy under test --- */

static char *dir, *db;
static cli_proc proc;
static int port;

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static int setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  const char *head = "{\"jsonrpc\":\"2.0\",\"id\":11,\"result\":{\"content\":[{\"type\":\"text\","
                     "\"text\":\"";
  const char *tail = "\"}]}}";
  big_len = BIG_BYTES;
  big_body = malloc(big_len);
  assert_non_null(big_body);
  uint32_t r = 12345;
  for (size_t i = 0; i < big_len; i++) {
    r = r * 1103515245u + 12345u;
    big_body[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(r >> 16) % 36];
  }
  memcpy(big_body, head, strlen(head));
  memcpy(big_body + big_len - strlen(tail), tail, strlen(tail));
  pf_upstream_start(&up, on_upstream, NULL);
  dir = tu_tmpdir();
  db = tu_path(dir, "store.db");
  char config[1024];
  snprintf(config, sizeof config,
           "name = \"robust\"\nmcp = \"http://127.0.0.1:%d/mcp\"\nadmin_bind = \"off\"\n"
           "request_timeout = \"5s\"\nmax_response_body_size = 100000\ndrain_timeout = \"2s\"\n",
           up.port);
  port = pf_start_proxy(&proc, dir, db, config, "mcpr.toml", NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  pf_upstream_stop(&up);
  tu_rmdir(dir);
  free(db);
  free(big_body);
  return 0;
}

/* A quick request that must be answered at once. */
static void ping_ok(void) {
  pf_resp r;
  pf_http(port, &r, "POST", NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
  assert_int_equal(r.status, 200);
  assert_true(r.complete);
  free(r.raw);
}

static bool wait_flag(atomic_bool *flag, int ms) {
  for (int i = 0; i < ms / 20 && !atomic_load(flag); i++)
    tu_sleep_ms(20);
  return atomic_load(flag);
}

static void saw_progress(const char *raw, size_t len) {
  (void)len;
  (void)raw;
}

static void test_client_hangs_up_mid_sse(void **state) {
  (void)state;
  int fd = pf_connect(port);
  pf_send_request(fd, "POST", "/mcp", "Accept: application/json, text/event-stream\r\n",
                  "{\"jsonrpc\":\"2.0\",\"id\":41,\"method\":\"tools/call\",\"params\":{\"name\":"
                  "\"sse_forever\"}}");
  pf_resp r;
  pf_read_response(fd, &r, 300, saw_progress); /* a few events, then hang up */
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "notifications/progress"));
  free(r.raw);
  close(fd);
  assert_true(wait_flag(&forever_closed, 3000)); /* the upstream request was cancelled */
  ping_ok();
}

static void test_upstream_cuts_the_stream(void **state) {
  (void)state;
  atomic_store(&forever_closed, false);
  int fd = pf_connect(port);
  pf_send_request(fd, "POST", "/mcp", "Accept: application/json, text/event-stream\r\n",
                  "{\"jsonrpc\":\"2.0\",\"id\":42,\"method\":\"tools/call\",\"params\":{\"name\":"
                  "\"cut_stream\"}}");
  pf_resp r;
  pf_read_response(fd, &r, 5000, NULL);
  close(fd);
  assert_true(atomic_load(&cut_sent));
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"progress\":0"));
  assert_true(r.eof);       /* closed by the proxy ... */
  assert_false(r.complete); /* ... without the last chunk: not a whole answer */
  free(r.raw);
  ping_ok();
}

static void test_10mib_json_byte_exact(void **state) {
  (void)state;
  int fd = pf_connect(port);
  pf_send_request(fd, "POST", "/mcp", NULL,
                  "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"tools/call\",\"params\":{\"name\":"
                  "\"big\"}}");
  pf_resp r;
  pf_read_response(fd, &r, 30000, NULL);
  close(fd);
  assert_int_equal(r.status, 200);
  assert_true(r.complete);
  size_t got = r.len - (size_t)(r.body - r.raw);
  assert_int_equal(got, big_len);
  assert_true(fnv1a(r.body, got) == fnv1a(big_body, big_len));
  assert_memory_equal(r.body, big_body, big_len);
  free(r.raw);
}

typedef struct trickle {
  int status;
  long long took_ms;
} trickle;

static void *trickle_main(void *arg) {
  trickle *t = arg;
  char req[512];
  const char *body = "{\"jsonrpc\":\"2.0\",\"id\":51,\"method\":\"ping\"}";
  int n = snprintf(req, sizeof req,
                   "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: %s\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   "trickle-trickle-trickle-trickle", strlen(body), body);
  long long t0 = pf_now_ms();
  int fd = pf_connect(port);
  for (int i = 0; i < n; i++) {
    if (write(fd, req + i, 1) != 1)
      break;
    tu_sleep_ms(2500 / n);
  }
  pf_resp r;
  pf_read_response(fd, &r, 10000, NULL);
  close(fd);
  t->status = r.status;
  t->took_ms = pf_now_ms() - t0;
  free(r.raw);
  return NULL;
}

static void test_slow_header_trickle_blocks_nobody(void **state) {
  (void)state;
  trickle t = {0};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, trickle_main, &t), 0);
  tu_sleep_ms(200);
  long long worst = 0;
  for (int i = 0; i < 20; i++) {
    long long t0 = pf_now_ms();
    ping_ok();
    long long took = pf_now_ms() - t0;
    worst = took > worst ? took : worst;
    tu_sleep_ms(50);
  }
  pthread_join(th, NULL);
  assert_true(worst < 500);
  assert_int_equal(t.status, 200);
  assert_true(t.took_ms >= 2000); /* it really trickled */
}

static void test_batch_404_and_list_changed(void **state) {
  (void)state;
  pf_resp r;
  pf_http(port, &r, "POST", "Mcp-Session-Id: s-batch\r\n",
          "[{\"jsonrpc\":\"2.0\",\"id\":31,\"method\":\"ping\"},"
          "{\"jsonrpc\":\"2.0\",\"id\":32,\"method\":\"tools/list\"}]");
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "[{\"jsonrpc\":\"2.0\",\"id\":32,\"result\":{\"tools\":[]}},"
                              "{\"jsonrpc\":\"2.0\",\"id\":31,\"result\":{}}]");
  free(r.raw);
  pf_http(port, &r, "POST", "Mcp-Session-Id: gone\r\n",
          "{\"jsonrpc\":\"2.0\",\"id\":21,\"method\":\"tools/list\"}");
  assert_int_equal(r.status, 404);
  assert_non_null(strstr(r.body, "Session not found"));
  free(r.raw);
  pf_http(port, &r, "GET", "Mcp-Session-Id: s-batch\r\nAccept: text/event-stream\r\n", NULL);
  assert_int_equal(r.status, 200);
  assert_true(pf_has_header(&r, "\r\nContent-Type: text/event-stream"));
  assert_string_equal(r.body, "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
                              "\"notifications/tools/list_changed\"}\n\n");
  free(r.raw);
}

/* The most the kernel may buffer on the firehose's path: the upstream's
 * send buffer, the proxy's receive and send buffers, the client's receive
 * buffer. Autotuning grows them to tcp_[rw]mem's maximum, which differs
 * between machines (6 MiB by default, 32 MiB on some). */
static long long sysctl_third(const char *path) {
  long long a = 0, b = 0, c = 0;
  FILE *f = fopen(path, "r");
  if (f) {
    if (fscanf(f, "%lld %lld %lld", &a, &b, &c) != 3)
      c = 0;
    fclose(f);
  }
  return c > 0 ? c : 8LL * 1024 * 1024;
}

static long long kernel_buffers_max(void) {
  long long r = sysctl_third("/proc/sys/net/ipv4/tcp_rmem");
  long long w = sysctl_third("/proc/sys/net/ipv4/tcp_wmem");
  return 2 * r + 2 * w;
}

static void test_slow_sse_client_bounded(void **state) {
  (void)state;
  int fd = pf_connect(port);
  pf_send_request(fd, "POST", "/mcp", "Accept: application/json, text/event-stream\r\n",
                  "{\"jsonrpc\":\"2.0\",\"id\":61,\"method\":\"tools/call\",\"params\":{\"name\":"
                  "\"firehose\"}}");
  tu_sleep_ms(3000); /* the client reads nothing */
  long long read_by_proxy = atomic_load(&firehose_bytes);
  tu_sleep_ms(1000);
  long long a_second_later = atomic_load(&firehose_bytes);
  long long bound = kernel_buffers_max() + 4LL * 1024 * 1024;
  fprintf(stderr,
          "firehose: the proxy read %lld bytes from the upstream, %lld a second later "
          "(bound: this kernel's socket buffers + 4 MiB = %lld)\n",
          read_by_proxy, a_second_later, bound);
  /* The proxy stopped reading: nothing more came in the last second. */
  assert_true(a_second_later - read_by_proxy <= 128 * 1024);
  /* What it took is what the kernel buffers plus the proxy's 1 MiB hold. */
  assert_true(a_second_later < bound);
  ping_ok(); /* still serving */
  /* the client now reads: the stream flows again */
  char buf[65536];
  long long got = 0;
  while (got < 8LL * 1024 * 1024) {
    ssize_t n = read(fd, buf, sizeof buf);
    assert_true(n > 0);
    got += n;
  }
  assert_true(atomic_load(&firehose_bytes) > read_by_proxy);
  close(fd);
  assert_true(wait_flag(&firehose_closed, 3000));
}

/* utime + stime of a process, in clock ticks. */
static long long cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  assert_non_null(p);
  long long utime = 0, stime = 0;
  /* fields 14 and 15, counted from the state field (3) after ")" */
  assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime,
                          &stime),
                   2);
  return utime + stime;
}

static void test_out_of_file_descriptors(void **state) {
  (void)state;
  char config[512];
  snprintf(config, sizeof config,
           "name = \"fds\"\nmcp = \"http://127.0.0.1:%d/mcp\"\nadmin_bind = \"off\"\n", up.port);
  const char *wrapper[] = {"/usr/bin/prlimit", "--nofile=64:64", "--", NULL};
  cli_proc p2;
  int saved = port;
  port = pf_start_proxy(&p2, dir, db, config, "fds.toml", wrapper);
  ping_ok();
  enum { N = 120 };
  int fds[N];
  for (int i = 0; i < N; i++) {
    fds[i] = pf_connect(port); /* idle: each accepted one holds a descriptor */
    assert_true(fds[i] >= 0);
  }
  tu_sleep_ms(500);
  cli_wait_output(&p2, "\x01never", 10); /* keep its pipes drained */
  long long t0 = cpu_ticks(p2.pid);
  tu_sleep_ms(1000);
  long long spent = cpu_ticks(p2.pid) - t0;
  fprintf(stderr, "out of descriptors: %lld ticks of CPU in 1 s\n", spent);
  assert_true(spent < sysconf(_SC_CLK_TCK) / 4); /* not spinning on accept */
  assert_int_equal(kill(p2.pid, 0), 0);
  for (int i = 0; i < N; i++)
    close(fds[i]);
  tu_sleep_ms(300);
  ping_ok(); /* accepting again */
  port = saved;
  cli_result res;
  cli_stop(&p2, SIGTERM, 15000, &res);
  assert_int_equal(res.exit_code, 0);
  /* said in its summary, counted */
  assert_non_null(strstr(res.err, "accepting paused"));
  cli_result_free(&res);
}

static void test_events_after_stop(void **state) {
  (void)state;
  cli_result res;
  cli_stop(&proc, SIGTERM, 15000, &res);
  assert_int_equal(res.exit_code, 0);
  const char *e = res.err;
  /* the client that read nothing made the proxy stop reading its upstream */
  assert_non_null(strstr(e, "upstream reads paused"));
  /* the hang-up: recorded, with a note */
  const char *at = strstr(e, "\"tool\":\"sse_forever\"");
  assert_non_null(at);
  const char *eol = strchr(at, '\n');
  assert_non_null(strstr(at, "\"note\":\"client closed the connection\""));
  assert_true(strstr(at, "\"note\":\"client closed the connection\"") < eol);
  /* the cut stream: an error */
  at = strstr(e, "\"tool\":\"cut_stream\"");
  assert_non_null(at);
  eol = strchr(at, '\n');
  const char *err = strstr(at, "\"error_code\":\"-32000\"");
  assert_true(err && err < eol);
  /* the big answer: whole size counted, not parsed */
  at = strstr(e, "\"tool\":\"big\"");
  assert_non_null(at);
  eol = strchr(at, '\n');
  char want[64];
  snprintf(want, sizeof want, "\"response_size\":%zu", big_len);
  assert_true(strstr(at, want) && strstr(at, want) < eol);
  const char *note = strstr(at, "\"note\":\"response over max_response_body_size: not parsed\"");
  assert_true(note && note < eol);
  /* the batch: one event per message */
  assert_non_null(strstr(e, "\"session_id\":\"s-batch\",\"method\":\"POST\",\"path\":\"/mcp\","
                            "\"mcp_method\":\"ping\""));
  assert_non_null(strstr(e, "\"session_id\":\"s-batch\",\"method\":\"POST\",\"path\":\"/mcp\","
                            "\"mcp_method\":\"tools/list\""));
  /* the 404 ended the session */
  assert_non_null(strstr(e, "{\"type\":\"session_end\",\"session_id\":\"gone\""));
  cli_result_free(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_hangs_up_mid_sse),
      cmocka_unit_test(test_upstream_cuts_the_stream),
      cmocka_unit_test(test_10mib_json_byte_exact),
      cmocka_unit_test(test_slow_header_trickle_blocks_nobody),
      cmocka_unit_test(test_batch_404_and_list_changed),
      cmocka_unit_test(test_slow_sse_client_bounded),
      cmocka_unit_test(test_out_of_file_descriptors),
      cmocka_unit_test(test_events_after_stop),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

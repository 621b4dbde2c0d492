/*
 * The proxy's own HTTP/1.x handling, end to end (the built mcpr between a
 * fake upstream and raw sockets): pipelined requests answered in order; a
 * body over max_request_body_size refused with a JSON-RPC 413 before it
 * is read, whether it says its length or comes chunked, however large; a
 * head over 64 KiB gets a JSON 431 and garbage a JSON 400; Expect:
 * 100-continue answered by the proxy; an HTTP/1.0 client gets a body it
 * can read without chunking; an upstream that accepts no connection is a
 * 504 after connect_timeout (not request_timeout); an upstream named by a
 * host name is looked up without blocking and reached.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "proxy_fixture.h"
#include "testutil.h"

static pf_upstream up;
static char *dir, *db;
static cli_proc proc;
static int port;

#define CALL(id)                                                                                \
  "{\"jsonrpc\":\"2.0\",\"id\":" #id ",\"method\":\"tools/call\",\"params\":{\"name\":"         \
  "\"echo\",\"arguments\":{}}}"

/* The upstream answers a call with its id in the body, so order shows. */
static void on_upstream(struct evhttp_request *req, void *arg) {
  (void)arg;
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t n = evbuffer_get_length(in);
  char body[4096] = "";
  if (n >= sizeof body)
    n = sizeof body - 1;
  evbuffer_copyout(in, body, n);
  body[n] = '\0';
  const char *id = strstr(body, "\"id\":");
  long idv = id ? strtol(id + 5, NULL, 10) : 0;
  char out[256];
  snprintf(out, sizeof out, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"result\":{\"content\":[]}}", idv);
  pf_reply(req, 200, "application/json", out, strlen(out));
}

static int setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  pf_upstream_start(&up, on_upstream, NULL);
  dir = tu_tmpdir();
  db = tu_path(dir, "store.db");
  char config[1024];
  snprintf(config, sizeof config,
           "name = \"h1\"\nmcp = \"http://127.0.0.1:%d/mcp\"\nadmin_bind = \"off\"\n"
           "max_request_body_size = 4000\nlog_format = \"off\"\n",
           up.port);
  port = pf_start_proxy(&proc, dir, db, config, "mcpr.toml", NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cli_result res;
  cli_stop(&proc, SIGTERM, 15000, &res);
  cli_result_free(&res);
  pf_upstream_stop(&up);
  tu_rmdir(dir);
  free(db);
  return 0;
}

static void write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w <= 0)
      return;
    s += w;
    n -= (size_t)w;
  }
}

static void test_pipelined_requests_answered_in_order(void **state) {
  (void)state;
  int fd = pf_connect(port);
  assert_true(fd >= 0);
  char both[1024];
  int n = snprintf(both, sizeof both,
                   "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n%s"
                   "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   strlen(CALL(7)), CALL(7), strlen(CALL(8)), CALL(8));
  write_all(fd, both, (size_t)n); /* one write: both requests at once */
  /* Both answers, in one stream: read until the second is there. */
  char got[4096] = "";
  size_t len = 0;
  long long deadline = pf_now_ms() + 5000;
  while (!strstr(got, "\"id\":8") && pf_now_ms() < deadline && len < sizeof got - 1) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 100) <= 0)
      continue;
    ssize_t r = read(fd, got + len, sizeof got - 1 - len);
    if (r <= 0)
      break;
    len += (size_t)r;
    got[len] = '\0';
  }
  const char *first = strstr(got, "HTTP/1.1 200 ");
  assert_non_null(first);
  const char *second = strstr(first + 1, "HTTP/1.1 200 ");
  assert_non_null(second);
  const char *id7 = strstr(got, "\"id\":7"), *id8 = strstr(got, "\"id\":8");
  assert_non_null(id7);
  assert_non_null(id8);
  assert_true(first < id7 && id7 < second && second < id8); /* in order */
  close(fd);
}

static void test_body_too_large_is_json_413_before_reading(void **state) {
  (void)state;
  /* Declared 50 MB, nothing sent: the answer comes at once. */
  int fd = pf_connect(port);
  const char *head = "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 50000000\r\n\r\n{\"jsonrpc\":\"2.0\",\"id\":1";
  write_all(fd, head, strlen(head));
  pf_resp r;
  long long t0 = pf_now_ms();
  pf_read_response(fd, &r, 5000, NULL);
  assert_true(pf_now_ms() - t0 < 2000);
  assert_int_equal(r.status, 413);
  assert_true(pf_has_header(&r, "\r\nContent-Type: application/json\r\n"));
  assert_non_null(strstr(r.body, "\"code\":-32600"));
  assert_non_null(strstr(r.body, "max_request_body_size"));
  free(r.raw);
  close(fd);
  /* Chunked, growing past the limit: refused the same way. */
  fd = pf_connect(port);
  const char *chead = "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
  write_all(fd, chead, strlen(chead));
  char chunk[1100];
  memset(chunk, ' ', sizeof chunk);
  memcpy(chunk, "3e8\r\n", 5); /* 1000 bytes per chunk */
  memcpy(chunk + 1005, "\r\n", 2);
  for (int i = 0; i < 5; i++)
    write_all(fd, chunk, 1007);
  pf_read_response(fd, &r, 5000, NULL);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "\"jsonrpc\":\"2.0\""));
  free(r.raw);
  close(fd);
}

static void test_head_too_large_431_and_garbage_400(void **state) {
  (void)state;
  int fd = pf_connect(port);
  const char *start = "POST /mcp HTTP/1.1\r\nHost: x\r\n";
  write_all(fd, start, strlen(start));
  char line[1030];
  memset(line, 'a', sizeof line);
  memcpy(line, "X-Big: ", 7);
  memcpy(line + 1028, "\r\n", 2);
  for (int i = 0; i < 70; i++) /* 70 KiB of headers */
    write_all(fd, line, sizeof line);
  pf_resp r;
  pf_read_response(fd, &r, 5000, NULL);
  assert_int_equal(r.status, 431);
  assert_non_null(strstr(r.body, "\"jsonrpc\":\"2.0\""));
  free(r.raw);
  close(fd);
  fd = pf_connect(port);
  const char *junk = "\x16\x03\x01 hello, this is not HTTP\r\n\r\n";
  write_all(fd, junk, strlen(junk));
  pf_read_response(fd, &r, 5000, NULL);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "bad HTTP request"));
  assert_true(pf_has_header(&r, "\r\nConnection: close\r\n"));
  free(r.raw);
  close(fd);
}

static void test_expect_100_continue(void **state) {
  (void)state;
  int fd = pf_connect(port);
  char head[256];
  int n = snprintf(head, sizeof head,
                   "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                   strlen(CALL(9)));
  write_all(fd, head, (size_t)n);
  char buf[64] = "";
  ssize_t got = read(fd, buf, 25);
  assert_true(got > 0);
  assert_memory_equal(buf, "HTTP/1.1 100 Continue\r\n", 23);
  write_all(fd, CALL(9), strlen(CALL(9)));
  pf_resp r;
  pf_read_response(fd, &r, 5000, NULL);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"id\":9"));
  free(r.raw);
  close(fd);
}

static void test_http10_client_gets_a_plain_body(void **state) {
  (void)state;
  int fd = pf_connect(port);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "POST /mcp HTTP/1.0\r\nContent-Type: application/json\r\n"
                   "Content-Length: %zu\r\n\r\n%s",
                   strlen(CALL(10)), CALL(10));
  write_all(fd, req, (size_t)n);
  pf_resp r;
  pf_read_response(fd, &r, 5000, NULL);
  assert_int_equal(r.status, 200);
  assert_null(strstr(r.raw, "chunked"));
  assert_non_null(strstr(r.body, "\"id\":10"));
  free(r.raw);
  close(fd);
}

/* A listener whose accept queue is full: SYNs to it are dropped, so a
 * connect to it hangs (what a host that does not answer looks like). */
static int full_listener(int *port_out, int *fillers, int n) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(l, 0), 0);
  socklen_t sl = sizeof a;
  getsockname(l, (struct sockaddr *)&a, &sl);
  *port_out = ntohs(a.sin_port);
  for (int i = 0; i < n; i++) {
    fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fillers[i], (struct sockaddr *)&a, sizeof a);
  }
  tu_sleep_ms(100);
  return l;
}

static void test_connect_timeout_is_its_own(void **state) {
  (void)state;
  int fillers[4], hole_port;
  int l = full_listener(&hole_port, fillers, 4);
  char config[512];
  snprintf(config, sizeof config,
           "name = \"hole\"\nmcp = \"http://127.0.0.1:%d/mcp\"\nadmin_bind = \"off\"\n"
           "connect_timeout = \"300ms\"\nrequest_timeout = \"20s\"\nlog_format = \"off\"\n",
           hole_port);
  cli_proc p2;
  int p2port = pf_start_proxy(&p2, dir, db, config, "hole.toml", NULL);
  pf_resp r;
  long long t0 = pf_now_ms();
  pf_http(p2port, &r, "POST", "Content-Type: application/json\r\n", CALL(11));
  long long took = pf_now_ms() - t0;
  fprintf(stderr, "connect timeout answered in %lld ms\n", took);
  assert_int_equal(r.status, 504);
  assert_non_null(strstr(r.body, "connect timed out"));
  assert_non_null(strstr(r.body, "\"id\":11"));
  assert_true(took >= 250 && took < 5000); /* connect_timeout, not request_timeout */
  free(r.raw);
  cli_result res;
  cli_stop(&p2, SIGTERM, 15000, &res);
  assert_int_equal(res.exit_code, 0);
  cli_result_free(&res);
  for (int i = 0; i < 4; i++)
    close(fillers[i]);
  close(l);
}

static void test_upstream_by_host_name(void **state) {
  (void)state;
  char config[512];
  snprintf(config, sizeof config,
           "name = \"named\"\nmcp = \"http://localhost:%d/mcp\"\nadmin_bind = \"off\"\n"
           "log_format = \"off\"\n",
           up.port);
  cli_proc p2;
  int p2port = pf_start_proxy(&p2, dir, db, config, "named.toml", NULL);
  pf_resp r;
  pf_http(p2port, &r, "POST", "Content-Type: application/json\r\n", CALL(12));
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"id\":12"));
  free(r.raw);
  cli_result res;
  cli_stop(&p2, SIGTERM, 15000, &res);
  assert_int_equal(res.exit_code, 0);
  cli_result_free(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pipelined_requests_answered_in_order),
      cmocka_unit_test(test_body_too_large_is_json_413_before_reading),
      cmocka_unit_test(test_head_too_large_431_and_garbage_400),
      cmocka_unit_test(test_expect_100_continue),
      cmocka_unit_test(test_http10_client_gets_a_plain_body),
      cmocka_unit_test(test_connect_timeout_is_its_own),
      cmocka_unit_test(test_upstream_by_host_name),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

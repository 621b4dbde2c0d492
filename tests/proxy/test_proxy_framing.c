// ctest-labels: tsan
/*
 * `mcpr proxy run` end to end against an upstream that writes raw bytes
 * (a socket per connection on its own thread, the answer chosen by the
 * request's X-Answer header), for the framings http1.c must read as the
 * RFCs say and not as http-parser 2.9 lets through.
 * Proves: a 304 or 204 that carries a Content-Length ends at its head (the
 * client's next request on the connection is answered, not held behind a
 * body that never comes); a 101, a status of one digit and a control byte
 * in a header value are a 502, and nothing of them reaches the client;
 * trailing blanks of a header value are not passed on; a reason phrase
 * with a control byte is not passed on; an Upgrade request
 * is a 400 without a "100 Continue" first, and a control byte in a request
 * header value is a 400.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "proxy_fixture.h"
#include "testutil.h"

static const struct {
  const char *name, *answer;
} answers[] = {
    {"ok", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"},
    {"304-length", "HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\nContent-Length: 5\r\n\r\n"},
    {"204-length", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"},
    {"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "\r\nnot http any more"},
    {"status-3", "HTTP/1.1 3 Odd\r\nContent-Length: 2\r\n\r\n{}"},
    {"value-ctl", "HTTP/1.1 200 OK\r\nX-Evil:\001injected\r\nContent-Length: 2\r\n\r\n{}"},
    {"reason-ctl", "HTTP/1.1 201 Made\001X-Split: 1\r\nContent-Length: 2\r\n\r\n{}"},
    {"reason-none", "HTTP/1.1 404\r\nContent-Length: 2\r\n\r\n{}"},
    {"value-blanks", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Padded:   v w  \t\r\n"
                     "Content-Length: 2\r\n\r\n{}"},
};

static int listen_fd = -1;
static int up_port;
static pthread_t accept_thread;
static cli_proc proc;
static int port;
static char *dir, *db;

/* One upstream connection: each request (head and Content-Length body)
 * gets the answer its X-Answer names. */
static void *conn_main(void *arg) {
  int fd = (int)(intptr_t)arg;
  char buf[65536];
  size_t len = 0;
  for (;;) {
    ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
    if (got <= 0)
      break;
    len += (size_t)got;
    buf[len] = '\0';
    char *hend;
    while ((hend = memmem(buf, len, "\r\n\r\n", 4)) != NULL) {
      *hend = '\0';
      const char *cl = strcasestr(buf, "\r\nContent-Length:");
      size_t body = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
      size_t whole = (size_t)(hend + 4 - buf) + body;
      if (len < whole) {
        *hend = '\r';
        break;
      }
      const char *which = strcasestr(buf, "\r\nX-Answer: ");
      const char *answer = answers[0].answer;
      for (size_t i = 0; which && i < sizeof answers / sizeof answers[0]; i++) {
        size_t n = strlen(answers[i].name);
        if (strncmp(which + 12, answers[i].name, n) == 0 && which[12 + n] == '\r')
          answer = answers[i].answer;
      }
      if (write(fd, answer, strlen(answer)) < 0)
        break;
      memmove(buf, buf + whole, len - whole);
      len -= whole;
    }
  }
  close(fd);
  return NULL;
}

static void *accept_main(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      return NULL; /* the listener was shut down */
    }
    pthread_t t;
    if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) == 0)
      pthread_detach(t);
    else
      close(fd);
  }
}

static int setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  listen_fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(listen_fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(listen_fd, 16), 0);
  socklen_t sl = sizeof sa;
  assert_int_equal(getsockname(listen_fd, (struct sockaddr *)&sa, &sl), 0);
  up_port = ntohs(sa.sin_port);
  assert_int_equal(pthread_create(&accept_thread, NULL, accept_main, NULL), 0);
  dir = tu_tmpdir();
  db = tu_path(dir, "store.db");
  char config[512];
  snprintf(config, sizeof config,
           "name = \"framing\"\nmcp = \"http://127.0.0.1:%d/mcp\"\nadmin_bind = \"off\"\n"
           "request_timeout = \"5s\"\ndrain_timeout = \"1s\"\n",
           up_port);
  port = pf_start_proxy(&proc, dir, db, config, "mcpr.toml", NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  cli_result res;
  cli_stop(&proc, SIGTERM, 15000, &res);
  cli_result_free(&res);
  shutdown(listen_fd, SHUT_RDWR);
  close(listen_fd);
  pthread_join(accept_thread, NULL);
  tu_rmdir(dir);
  free(db);
  return 0;
}

static const char rpc[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";

/* Read one answer: its head, and its body when it has one by its
 * Content-Length (not for 1xx, 204, 304); NUL-terminated, new. NULL
 * (with what came in *partial) when it did not come within timeout_ms. */
static char *read_answer(int fd, int timeout_ms) {
  size_t cap = 65536, len = 0;
  char *raw = calloc(1, cap + 1);
  assert_non_null(raw);
  long long deadline = pf_now_ms() + timeout_ms;
  for (;;) {
    char *hend = memmem(raw, len, "\r\n\r\n", 4);
    if (hend) {
      int status = 0;
      sscanf(raw, "HTTP/1.%*d %d", &status);
      const char *cl = strcasestr(raw, "\r\nContent-Length:");
      size_t body = cl && cl < hend && status != 204 && status != 304 && status >= 200
                        ? (size_t)strtoul(cl + 17, NULL, 10)
                        : 0;
      if (len >= (size_t)(hend + 4 - raw) + body)
        return raw;
    }
    int left = (int)(deadline - pf_now_ms());
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (left <= 0 || poll(&p, 1, left) <= 0 || len == cap) {
      fprintf(stderr, "no whole answer in %d ms; got: %s\n", timeout_ms, raw);
      free(raw);
      return NULL;
    }
    ssize_t got = read(fd, raw + len, 1); /* byte by byte: not a byte of the next answer */
    if (got <= 0) {
      fprintf(stderr, "closed; got: %s\n", raw);
      free(raw);
      return NULL;
    }
    len += (size_t)got;
  }
}

/* A request answered as `answer`, then on the same connection one that
 * must be answered 200 {} at once. Returns the first answer (new). */
static char *ask_then_ok(const char *answer) {
  int fd = pf_connect(port);
  char headers[128];
  snprintf(headers, sizeof headers, "Content-Type: application/json\r\nX-Answer: %s\r\n", answer);
  pf_send_request(fd, "POST", "/mcp", headers, rpc);
  char *first = read_answer(fd, 3000);
  assert_non_null(first);
  pf_send_request(fd, "POST", "/mcp", "Content-Type: application/json\r\nX-Answer: ok\r\n", rpc);
  long long t0 = pf_now_ms();
  char *second = read_answer(fd, 3000);
  assert_non_null(second); /* not held behind a body that never comes */
  assert_true(pf_now_ms() - t0 < 2000);
  assert_true(strncmp(second, "HTTP/1.1 200 ", 13) == 0);
  assert_non_null(strstr(second, "\r\n\r\n{}"));
  free(second);
  close(fd);
  return first;
}

static void test_304_with_length_ends_at_head(void **state) {
  (void)state;
  char *a = ask_then_ok("304-length");
  assert_true(strncmp(a, "HTTP/1.1 304 ", 13) == 0);
  assert_non_null(strstr(a, "\r\nETag: \"e\"\r\n"));
  free(a);
}

static void test_204_with_length_ends_at_head(void **state) {
  (void)state;
  char *a = ask_then_ok("204-length");
  assert_true(strncmp(a, "HTTP/1.1 204 ", 13) == 0);
  free(a);
}

/* An answer the proxy must refuse: a 502 of its own, nothing of it passed. */
static void expect_502(const char *answer, const char *must_not_pass) {
  int fd = pf_connect(port);
  char headers[128];
  snprintf(headers, sizeof headers, "Content-Type: application/json\r\nX-Answer: %s\r\n", answer);
  pf_send_request(fd, "POST", "/mcp", headers, rpc);
  char *a = read_answer(fd, 3000);
  assert_non_null(a);
  assert_true(strncmp(a, "HTTP/1.1 502 ", 13) == 0);
  assert_null(strstr(a, must_not_pass));
  free(a);
  close(fd);
}

static void test_bad_answers_are_502(void **state) {
  (void)state;
  expect_502("101", "101");
  expect_502("101", "Upgrade");
  expect_502("status-3", "Odd");
  expect_502("value-ctl", "injected");
}

static void test_value_blanks_dropped(void **state) {
  (void)state;
  char *a = ask_then_ok("value-blanks");
  assert_true(strncmp(a, "HTTP/1.1 200 ", 13) == 0);
  assert_non_null(strstr(a, "\r\nX-Padded: v w\r\n"));
  free(a);
}

/* The reason phrase is optional: one carrying a control byte (which could
 * split the status line at a lenient client) is dropped, a missing one
 * stays missing (never "404 OK"). */
static void test_reason_phrase(void **state) {
  (void)state;
  char *a = ask_then_ok("reason-ctl");
  if (strncmp(a, "HTTP/1.1 502 ", 13) != 0) { /* or refused whole by the parser */
    assert_true(strncmp(a, "HTTP/1.1 201 \r\n", 15) == 0);
    assert_null(strstr(a, "Made"));
  }
  assert_null(memchr(a, '\001', strlen(a)));
  free(a);
  a = ask_then_ok("reason-none");
  assert_true(strncmp(a, "HTTP/1.1 404 \r\n", 15) == 0);
  free(a);
}

static void test_bad_requests_are_400(void **state) {
  (void)state;
  static const char *const reqs[] = {
      "POST /mcp HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Expect: 100-continue\r\nContent-Length: 2\r\n\r\n",
      "POST /mcp HTTP/1.1\r\nHost: h\r\nX-Answer:\001ok\r\nContent-Length: 2\r\n\r\n{}",
  };
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    int fd = pf_connect(port);
    assert_int_equal(write(fd, reqs[i], strlen(reqs[i])), (ssize_t)strlen(reqs[i]));
    char *a = read_answer(fd, 3000);
    assert_non_null(a);
    assert_true(strncmp(a, "HTTP/1.1 400 ", 13) == 0); /* first, no 100 Continue */
    free(a);
    close(fd);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_304_with_length_ends_at_head),
      cmocka_unit_test(test_204_with_length_ends_at_head),
      cmocka_unit_test(test_bad_answers_are_502),
      cmocka_unit_test(test_value_blanks_dropped),
      cmocka_unit_test(test_reason_phrase),
      cmocka_unit_test(test_bad_requests_are_400),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * http1.c on its own (it belongs to the mcpr program, so it is compiled in
 * here), fed as proxy.c feeds it: h1_feed() until a message is done or an
 * error, h1_next() for the next one, h1_eof() when the peer closes.
 * Proves: a message fed whole, byte by byte or in any other cut gives the
 * same method or status, target, headers and body; pipelined messages come
 * out one per h1_feed(); chunked bodies are decoded; empty header values
 * are ""; a head over H1_MAX_HEADERS or H1_HEAD_MAX_BYTES is
 * H1_E_HEAD_SIZE; bad syntax and request-smuggling framings are
 * H1_E_SYNTAX with a text; responses end by their length, their chunks,
 * the close (h1_eof), no body (HEAD, 204, 304), and a 1xx comes before its
 * final answer; EOF inside a message is H1_E_EOF; hop-by-hop names include
 * those the Connection header lists; an Upgrade or CONNECT is refused
 * before the owner sees its head.
 * On picohttpparser (which parses whole heads, so http1.c gathers them):
 * a stream cut into two pieces at every byte, or three at every pair of
 * bytes, gives what it gives whole — heads, chunked bodies with
 * extensions and trailers, pipelined messages; a malformed head is refused
 * once its end (or the close) is in, however it was cut; a head of
 * exactly H1_HEAD_MAX_BYTES is read and one byte more is not; what the
 * caller feeds is never written to (it is fed from read-only memory).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../../src/proxy/http1.c"

#include "testutil.h"

#define MAX_MSGS 8
#define HEAD_TEXT_MAX (256 * 1024)

/* One message as the owner saw it. */
typedef struct parsed {
  char *head; /* "METHOD target\n" or "STATUS reason\n", then "name: value\n"s */
  mcpr__buf body;
  size_t head_calls;
  bool done;
  h1_error error;
} parsed;

typedef struct run {
  h1_msg m;
  h1_type type;
  parsed msgs[MAX_MSGS];
  size_t n;
  int head_rc; /* what on_head returns */
  bool body_abort;
} run;

static char *head_text(const h1_msg *m) {
  char *s = malloc(HEAD_TEXT_MAX);
  assert_non_null(s);
  size_t n = 0;
  if (m->type == H1_REQUEST)
    n += (size_t)snprintf(s + n, HEAD_TEXT_MAX - n, "%s %s\n", h1_method(m), h1_target(m));
  else
    n += (size_t)snprintf(s + n, HEAD_TEXT_MAX - n, "%d %s\n", h1_status(m), h1_reason(m));
  for (size_t i = 0; i < m->n_fields && n < HEAD_TEXT_MAX; i++)
    n += (size_t)snprintf(s + n, HEAD_TEXT_MAX - n, "%s: %s\n", h1_str(m, m->fields[i].name),
                          h1_str(m, m->fields[i].value));
  assert_true(n < HEAD_TEXT_MAX);
  return s;
}

static int t_on_head(void *owner, h1_msg *m) {
  run *r = owner;
  assert_true(r->n < MAX_MSGS);
  parsed *p = &r->msgs[r->n];
  p->head_calls++;
  free(p->head);
  p->head = head_text(m);
  return r->head_rc;
}

static int t_on_body(void *owner, const char *data, size_t len) {
  run *r = owner;
  assert_true(r->msgs[r->n].head_calls == 1);
  assert_true(mcpr__buf_add(&r->msgs[r->n].body, data, len));
  return r->body_abort ? 1 : 0;
}

static const h1_hooks hooks = {t_on_head, t_on_body};

static void run_init(run *r, h1_type type) {
  memset(r, 0, sizeof *r);
  r->type = type;
  h1_init(&r->m, type, &hooks, r);
}

static void run_free(run *r) {
  for (size_t i = 0; i < MAX_MSGS; i++) {
    free(r->msgs[i].head);
    mcpr__buf_release(&r->msgs[i].body);
  }
  h1_free(&r->m);
}

/* What the current message came to: recorded, and the next one begun. */
static void record(run *r) {
  assert_true(r->n < MAX_MSGS);
  r->msgs[r->n].done = r->m.done;
  r->msgs[r->n].error = r->m.error;
  r->n++;
  if (r->m.done && !r->m.error)
    h1_next(&r->m);
}

/* Feed data in pieces of step bytes (0: whole), as the proxy does:
 * whatever a finished message left is fed again after h1_next(). Then, if
 * eof, the close. false once an error ended the stream. */
static bool feed(run *r, const char *data, size_t len, size_t step, bool eof) {
  size_t off = 0;
  while (off < len) {
    size_t piece = step && step < len - off ? step : len - off;
    const char *d = data + off;
    size_t left = piece;
    while (left > 0) {
      size_t used = h1_feed(&r->m, d, left);
      assert_true(used <= left);
      d += used;
      left -= used;
      if (r->m.error) {
        record(r);
        return false;
      }
      if (!r->m.done) {
        assert_int_equal(left, 0); /* not done: everything was taken */
        break;
      }
      record(r);
    }
    off += piece;
  }
  if (eof) {
    h1_eof(&r->m);
    if (r->m.done || r->m.error)
      record(r);
    return !r->m.error;
  }
  return true;
}

static void assert_same_runs(const run *a, const run *b) {
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    const parsed *x = &a->msgs[i], *y = &b->msgs[i];
    assert_int_equal(x->head_calls, y->head_calls);
    if (x->head)
      assert_string_equal(x->head, y->head);
    assert_int_equal(x->body.n, y->body.n);
    if (x->body.n)
      assert_memory_equal(x->body.p, y->body.p, x->body.n);
    assert_int_equal(x->done, y->done);
    assert_int_equal(x->error, y->error);
  }
}

/* The stream parsed whole, then cut at every step size up to 17 and byte by
 * byte: the same messages each time. Returns the whole run (run_free it). */
static void parse_every_way(run *whole, h1_type type, const char *data, size_t len,
                            bool eof) {
  run_init(whole, type);
  feed(whole, data, len, 0, eof);
  for (size_t step = 1; step <= 17; step++) {
    run cut;
    run_init(&cut, type);
    feed(&cut, data, len, step, eof);
    assert_same_runs(whole, &cut);
    run_free(&cut);
  }
}

static const char *body_str(const parsed *p) { return p->body.n ? p->body.p : ""; }

/* --- requests --- */

static const char post_request[] = "POST /mcp?session=1 HTTP/1.1\r\n"
                                   "Host: example.com:8080\r\n"
                                   "Content-Type: application/json\r\n"
                                   "Accept:   application/json, text/event-stream  \r\n"
                                   "Mcp-Session-Id: abc-123\r\n"
                                   "Content-Length: 40\r\n"
                                   "\r\n"
                                   "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";

static void test_request_whole_and_cut(void **state) {
  (void)state;
  run r;
  parse_every_way(&r, H1_REQUEST, post_request, strlen(post_request), false);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_string_equal(r.msgs[0].head, "POST /mcp?session=1\n"
                                      "Host: example.com:8080\n"
                                      "Content-Type: application/json\n"
                                      "Accept: application/json, text/event-stream\n"
                                      "Mcp-Session-Id: abc-123\n"
                                      "Content-Length: 40\n");
  assert_string_equal(body_str(&r.msgs[0]), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
  /* the properties, read as the proxy reads them (the head stays until h1_next) */
  run one;
  run_init(&one, H1_REQUEST);
  assert_int_equal(h1_feed(&one.m, post_request, strlen(post_request)), strlen(post_request));
  assert_true(one.m.done);
  assert_string_equal(h1_method(&one.m), "POST");
  assert_string_equal(h1_target(&one.m), "/mcp?session=1");
  assert_string_equal(h1_header(&one.m, "mcp-session-id"), "abc-123");
  assert_string_equal(h1_header(&one.m, "HOST"), "example.com:8080");
  assert_null(h1_header(&one.m, "Content-Encoding"));
  uint64_t length = 0;
  assert_true(h1_has_length(&one.m, &length));
  assert_int_equal(length, 40);
  assert_false(h1_chunked(&one.m));
  assert_true(h1_keep_alive(&one.m));
  assert_false(h1_version_1_0(&one.m));
  run_free(&one);
  run_free(&r);
}

static void test_request_pipelined(void **state) {
  (void)state;
  static const char first[] = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\none";
  static const char second[] = "GET /b?x=2 HTTP/1.1\r\nHost: h\r\nX-Second: yes\r\n\r\n";
  char both[256];
  snprintf(both, sizeof both, "%s%s", first, second);
  run r;
  run_init(&r, H1_REQUEST);
  /* h1_feed stops right after the first request */
  size_t used = h1_feed(&r.m, both, strlen(both));
  assert_int_equal(used, strlen(first));
  assert_true(r.m.done);
  assert_string_equal(h1_method(&r.m), "POST");
  assert_string_equal(h1_target(&r.m), "/a");
  assert_string_equal(body_str(&r.msgs[0]), "one");
  /* not a byte more until h1_next */
  assert_int_equal(h1_feed(&r.m, both + used, strlen(both) - used), 0);
  h1_next(&r.m);
  assert_false(r.m.done);
  assert_int_equal(r.m.n_fields, 0);
  r.n = 1;
  assert_int_equal(h1_feed(&r.m, both + used, strlen(both) - used), strlen(second));
  assert_true(r.m.done);
  assert_string_equal(h1_method(&r.m), "GET");
  assert_string_equal(h1_target(&r.m), "/b?x=2");
  assert_string_equal(h1_header(&r.m, "X-Second"), "yes");
  assert_null(h1_header(&r.m, "Content-Length")); /* the first's headers are gone */
  assert_false(h1_has_length(&r.m, NULL));
  assert_int_equal(r.msgs[1].body.n, 0);
  run_free(&r);

  /* and the same through every cut, with blank lines between requests */
  snprintf(both, sizeof both, "%s\r\n%s", first, second);
  parse_every_way(&r, H1_REQUEST, both, strlen(both), false);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.msgs[0].head, "POST /a\nHost: h\nContent-Length: 3\n");
  assert_string_equal(r.msgs[1].head, "GET /b?x=2\nHost: h\nX-Second: yes\n");
  run_free(&r);
}

static void test_request_chunked(void **state) {
  (void)state;
  static const char req[] = "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n"
                            "6;ext=1\r\n world\r\n"
                            "A\r\n, 10 bytes\r\n"
                            "0\r\n\r\n";
  run r;
  parse_every_way(&r, H1_REQUEST, req, strlen(req), false);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_string_equal(body_str(&r.msgs[0]), "hello world, 10 bytes");
  run_free(&r);

  run_init(&r, H1_REQUEST);
  assert_int_equal(h1_feed(&r.m, req, strlen(req)), strlen(req));
  assert_true(h1_chunked(&r.m));
  assert_false(h1_has_length(&r.m, NULL));
  run_free(&r);
}

static void test_request_content_length(void **state) {
  (void)state;
  static const char req[] = "PUT /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcdeGET / HTTP/1.1\r\n\r\n";
  run r;
  parse_every_way(&r, H1_REQUEST, req, strlen(req), false);
  assert_int_equal(r.n, 2);
  assert_string_equal(body_str(&r.msgs[0]), "abcde"); /* not a byte of the next request */
  assert_string_equal(r.msgs[1].head, "GET /\n");
  run_free(&r);

  static const char zero[] = "POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
  run_init(&r, H1_REQUEST);
  assert_int_equal(h1_feed(&r.m, zero, strlen(zero)), strlen(zero));
  assert_true(r.m.done);
  uint64_t length = 99;
  assert_true(h1_has_length(&r.m, &length));
  assert_int_equal(length, 0);
  run_free(&r);
}

static void test_header_split_across_feeds(void **state) {
  (void)state;
  run r;
  run_init(&r, H1_REQUEST);
  const char *pieces[] = {"GET /path", "/more HTTP/1.1\r\nX-Lo", "ng-Na", "me: va",
                          "lue one", "\r", "\nX-Two:", " 2\r\n", "\r\n"};
  for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
    assert_true(feed(&r, pieces[i], strlen(pieces[i]), 0, false));
  assert_int_equal(r.n, 1);
  assert_string_equal(r.msgs[0].head, "GET /path/more\nX-Long-Name: value one\nX-Two: 2\n");
  run_free(&r);
}

static void test_empty_header_value(void **state) {
  (void)state;
  static const char req[] = "GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:    \r\nX-After: a\r\n"
                            "X-Last:\r\n\r\n";
  run r;
  parse_every_way(&r, H1_REQUEST, req, strlen(req), false);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.msgs[0].head, "GET /\nX-Empty: \nX-Spaces: \nX-After: a\nX-Last: \n");
  run_free(&r);

  run_init(&r, H1_REQUEST);
  assert_int_equal(h1_feed(&r.m, req, strlen(req)), strlen(req));
  assert_string_equal(h1_header(&r.m, "X-Empty"), "");
  assert_string_equal(h1_header(&r.m, "X-Last"), "");
  assert_string_equal(h1_header(&r.m, "X-After"), "a");
  run_free(&r);
}

/* A request head with n headers "X-Hn: value" of value_len bytes each. */
static char *request_with_headers(size_t n, size_t value_len, size_t *len) {
  size_t cap = 64 + n * (value_len + 32);
  char *s = malloc(cap);
  assert_non_null(s);
  size_t at = (size_t)snprintf(s, cap, "GET / HTTP/1.1\r\n");
  for (size_t i = 0; i < n; i++) {
    at += (size_t)snprintf(s + at, cap - at, "X-H%zu: ", i);
    memset(s + at, 'v', value_len);
    at += value_len;
    at += (size_t)snprintf(s + at, cap - at, "\r\n");
  }
  at += (size_t)snprintf(s + at, cap - at, "\r\n");
  *len = at;
  return s;
}

/* Trailers of a chunked body come after on_head: they join the header
 * list (h1_header finds them once the message is done) and count towards
 * H1_MAX_HEADERS with the head's. */
static void test_request_trailers(void **state) {
  (void)state;
  static const char req[] = "POST /mcp HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "2\r\n{}\r\n0\r\nX-Trailer:  t  \r\n\r\n";
  run r;
  parse_every_way(&r, H1_REQUEST, req, strlen(req), false);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_string_equal(r.msgs[0].head, "POST /mcp\nHost: h\nTransfer-Encoding: chunked\n");
  assert_string_equal(body_str(&r.msgs[0]), "{}");
  run_free(&r);
  run_init(&r, H1_REQUEST);
  assert_int_equal(h1_feed(&r.m, req, strlen(req)), strlen(req));
  assert_true(r.m.done);
  assert_string_equal(h1_header(&r.m, "X-Trailer"), "t");
  assert_string_equal(h1_header(&r.m, "Host"), "h");
  run_free(&r);

  /* H1_MAX_HEADERS - 1 headers, then two trailers: one too many */
  size_t len;
  char *head = request_with_headers(H1_MAX_HEADERS - 2, 1, &len); /* and Transfer-Encoding */
  len -= 2;
  char *full = malloc(len + 128);
  assert_non_null(full);
  memcpy(full, head, len);
  static const char rest[] = "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\nA: 1\r\nB: 2\r\n\r\n";
  memcpy(full + len, rest, sizeof rest - 1);
  len += sizeof rest - 1;
  parse_every_way(&r, H1_REQUEST, full, len, false);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.msgs[0].head_calls, 1);
  assert_string_equal(body_str(&r.msgs[0]), "{}");
  assert_int_equal(r.m.error, H1_E_HEAD_SIZE);
  run_free(&r);
  free(full);
  free(head);
}

static void test_head_limits(void **state) {
  (void)state;
  size_t len;
  run r;
  /* H1_MAX_HEADERS headers are fine, one more is too many */
  char *req = request_with_headers(H1_MAX_HEADERS, 8, &len);
  parse_every_way(&r, H1_REQUEST, req, len, false);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_int_equal(r.msgs[0].error, H1_OK);
  run_free(&r);
  free(req);

  req = request_with_headers(H1_MAX_HEADERS + 1, 8, &len);
  parse_every_way(&r, H1_REQUEST, req, len, false);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.msgs[0].error, H1_E_HEAD_SIZE);
  assert_int_equal(r.msgs[0].head_calls, 0);
  assert_int_equal(r.m.error, H1_E_HEAD_SIZE);
  assert_string_equal(h1_error_text(&r.m), "request head too large");
  run_free(&r);
  free(req);

  /* one value over 64 KiB */
  req = request_with_headers(1, H1_HEAD_MAX_BYTES + 10, &len);
  parse_every_way(&r, H1_REQUEST, req, len, false);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.msgs[0].error, H1_E_HEAD_SIZE);
  assert_int_equal(r.msgs[0].head_calls, 0);
  assert_true(r.m.text.n <= H1_HEAD_MAX_BYTES + H1_MAX_HEADERS * 2 + 2); /* bounded */
  run_free(&r);
  free(req);

  /* many values adding up to over 64 KiB */
  req = request_with_headers(100, 700, &len);
  parse_every_way(&r, H1_REQUEST, req, len, false);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.msgs[0].error, H1_E_HEAD_SIZE);
  run_free(&r);
  free(req);

  /* a target over 64 KiB */
  size_t tlen = H1_HEAD_MAX_BYTES + 100;
  req = malloc(tlen + 64);
  assert_non_null(req);
  memcpy(req, "GET /", 5);
  memset(req + 5, 'a', tlen);
  memcpy(req + 5 + tlen, " HTTP/1.1\r\n\r\n", 13);
  parse_every_way(&r, H1_REQUEST, req, 5 + tlen + 13, false);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.msgs[0].error, H1_E_HEAD_SIZE);
  run_free(&r);
  free(req);
}

/* H1_MAX_HEADERS headers, then a malformed name: refused, as too large
 * (picohttpparser stops at one header too many before reading it) or as
 * malformed (http-parser, before it, said either, by the cuts). The proxy
 * answers 431 or 400. */
static void test_head_limit_or_syntax(void **state) {
  (void)state;
  size_t len;
  char *good = request_with_headers(H1_MAX_HEADERS, 1, &len);
  len -= 2; /* the blank line */
  char *req = malloc(len + 32);
  assert_non_null(req);
  memcpy(req, good, len);
  static const char bad[] = "X-Bad\001Name: v\r\n\r\n";
  memcpy(req + len, bad, sizeof bad - 1);
  len += sizeof bad - 1;
  for (size_t step = 0; step <= 17; step++) {
    run r;
    run_init(&r, H1_REQUEST);
    assert_false(feed(&r, req, len, step, true));
    assert_int_equal(r.msgs[0].head_calls, 0);
    assert_true(r.m.error == H1_E_SYNTAX || r.m.error == H1_E_HEAD_SIZE);
    if (step <= 1)
      fprintf(stderr, "fed %s: %s\n", step ? "byte by byte" : "whole", h1_error_text(&r.m));
    run_free(&r);
  }
  free(req);
  free(good);
}

/* head_calls: 0 for an error in the head, 1 for one in the body. */
static void expect_syntax_error(h1_type type, const char *text, size_t head_calls) {
  run r;
  parse_every_way(&r, type, text, strlen(text), true);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.msgs[0].head_calls, head_calls);
  assert_int_equal(r.m.error, H1_E_SYNTAX);
  const char *why = h1_error_text(&r.m);
  assert_non_null(why);
  assert_true(strlen(why) > 0);
  assert_string_not_equal(why, "no error");
  assert_string_not_equal(why, "success");
  run_free(&r);
}

static void test_bad_syntax(void **state) {
  (void)state;
  expect_syntax_error(H1_REQUEST, "GARBAGE\r\n\r\n", 0);
  expect_syntax_error(H1_REQUEST, "GET / HTTP/1.1\r\nNo Colon Here\r\n\r\n", 0);
  expect_syntax_error(H1_REQUEST, "GET / HTTP/9.x\r\n\r\n", 0);
  expect_syntax_error(H1_REQUEST, "GET /a b HTTP/1.1\r\n\r\n", 0);
  expect_syntax_error(H1_REQUEST, "GET / HTTP/1.1\r\nX: a\001b\r\n\r\n", 0);
  /* control bytes first in a value (http-parser let those through) */
  expect_syntax_error(H1_REQUEST, "GET / HTTP/1.1\r\nX:\001abc\r\n\r\n", 0);
  expect_syntax_error(H1_REQUEST, "GET / HTTP/1.1\r\nX: \033[31m\r\n\r\n", 0);
  expect_syntax_error(H1_REQUEST, "GET / HTTP/1.1\r\nX: \177\r\n\r\n", 0);
  expect_syntax_error(H1_RESPONSE, "HTTP/1.1 200 OK\r\nX:\002\r\nContent-Length: 0\r\n\r\n", 0);
  {
    static const char nul[] = "GET / HTTP/1.1\r\nHost:\0example.com\r\n\r\n";
    run r;
    parse_every_way(&r, H1_REQUEST, nul, sizeof nul - 1, true);
    assert_int_equal(r.m.error, H1_E_SYNTAX);
    assert_int_equal(r.msgs[0].head_calls, 0);
    run_free(&r);
  }
  expect_syntax_error(H1_REQUEST, "POST / HTTP/1.1\r\nContent-Length: x1\r\n\r\n", 0);
  expect_syntax_error(H1_RESPONSE, "HTTP/1.1 abc OK\r\n\r\n", 0);
  expect_syntax_error(H1_RESPONSE, "SSH-2.0-OpenSSH\r\n", 0);
  expect_syntax_error(H1_RESPONSE, "HTTP/1.1 3 short\r\nContent-Length: 0\r\n\r\n", 0);
  expect_syntax_error(H1_RESPONSE, "HTTP/1.1 000 zero\r\nContent-Length: 0\r\n\r\n", 0);
  expect_syntax_error(H1_RESPONSE, "HTTP/1.1 1000 OK\r\n\r\n", 0);
  /* framings a front end and a back end could read differently (smuggling) */
  expect_syntax_error(H1_REQUEST,
                      "POST / HTTP/1.1\r\nContent-Length: 3\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      0);
  expect_syntax_error(H1_REQUEST,
                      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 0);
  /* a request whose last coding is not chunked has no length: refused
   * before the owner sees its head */
  expect_syntax_error(H1_REQUEST, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc", 0);
  /* broken chunk framing */
  expect_syntax_error(H1_REQUEST,
                      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "zz\r\nabc\r\n0\r\n\r\n",
                      1);
  expect_syntax_error(H1_REQUEST,
                      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabcX\r\n0\r\n\r\n",
                      1);
}

static void test_hooks_stop(void **state) {
  (void)state;
  run r;
  run_init(&r, H1_REQUEST);
  r.head_rc = -1;
  assert_false(feed(&r, post_request, strlen(post_request), 0, false));
  assert_int_equal(r.m.error, H1_E_ABORTED);
  assert_int_equal(r.msgs[0].head_calls, 1);
  assert_int_equal(r.msgs[0].body.n, 0);
  assert_int_equal(h1_feed(&r.m, "x", 1), 0); /* stays stopped */
  run_free(&r);

  run_init(&r, H1_REQUEST);
  r.body_abort = true;
  assert_false(feed(&r, post_request, strlen(post_request), 0, false));
  assert_int_equal(r.m.error, H1_E_ABORTED);
  assert_string_equal(h1_error_text(&r.m), "stopped");
  run_free(&r);
}

static void test_version_and_keep_alive(void **state) {
  (void)state;
  static const char *const cases[][2] = {
      {"GET / HTTP/1.0\r\n\r\n", "1.0 close"},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "1.0 keep"},
      {"GET / HTTP/1.1\r\n\r\n", "1.1 keep"},
      {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "1.1 close"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    run r;
    run_init(&r, H1_REQUEST);
    assert_int_equal(h1_feed(&r.m, cases[i][0], strlen(cases[i][0])), strlen(cases[i][0]));
    assert_true(r.m.done);
    char got[16];
    snprintf(got, sizeof got, "%s %s", h1_version_1_0(&r.m) ? "1.0" : "1.1",
             h1_keep_alive(&r.m) ? "keep" : "close");
    assert_string_equal(got, cases[i][1]);
    run_free(&r);
  }
}

static void test_upgrade_refused(void **state) {
  (void)state;
  static const char *const reqs[] = {
      "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
      "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
      "Content-Length: 4\r\n\r\nbody",
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    run r;
    parse_every_way(&r, H1_REQUEST, reqs[i], strlen(reqs[i]), false);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.m.error, H1_E_SYNTAX);
    assert_string_equal(h1_error_text(&r.m), "protocol upgrade not supported");
    /* refused before the owner acts on it (proxy.c would answer an
     * Expect: 100-continue, or forward a 101's head to the client) */
    assert_int_equal(r.msgs[0].head_calls, 0);
    assert_int_equal(r.msgs[0].body.n, 0);
    run_free(&r);
  }
  /* Upgrade without "Connection: upgrade" is only informational */
  static const char info[] = "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";
  run r;
  parse_every_way(&r, H1_REQUEST, info, strlen(info), false);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_int_equal(r.msgs[0].error, H1_OK);
  run_free(&r);
  /* a 101 answer is refused too */
  static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\n\r\n";
  parse_every_way(&r, H1_RESPONSE, sw, strlen(sw), false);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.m.error, H1_E_SYNTAX);
  assert_int_equal(r.msgs[0].head_calls, 0);
  run_free(&r);
}

/* --- responses --- */

static void test_response_content_length(void **state) {
  (void)state;
  static const char res[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: 11\r\n\r\n{\"ok\":true}"
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  run r;
  parse_every_way(&r, H1_RESPONSE, res, strlen(res), true);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.msgs[0].head, "200 OK\nContent-Type: application/json\nContent-Length: 11\n");
  assert_string_equal(body_str(&r.msgs[0]), "{\"ok\":true}");
  assert_string_equal(r.msgs[1].head, "404 Not Found\nContent-Length: 0\n");
  assert_int_equal(r.msgs[1].body.n, 0);
  assert_int_equal(r.m.error, H1_OK); /* a close between answers is no error */
  run_free(&r);
}

static void test_response_chunked(void **state) {
  (void)state;
  static const char res[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n"
                            "1c\r\nevent: message\r\ndata: {}\r\n\r\n\r\n"
                            "7\r\ndata: 1\r\n"
                            "0\r\nX-Trailer: t\r\n\r\n";
  run r;
  parse_every_way(&r, H1_RESPONSE, res, strlen(res), true);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_string_equal(r.msgs[0].head,
                      "200 OK\nContent-Type: text/event-stream\nTransfer-Encoding: chunked\n");
  assert_string_equal(body_str(&r.msgs[0]), "event: message\r\ndata: {}\r\n\r\ndata: 1");
  run_free(&r);
}

static void test_response_close_delimited(void **state) {
  (void)state;
  static const char res[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close";
  run r;
  parse_every_way(&r, H1_RESPONSE, res, strlen(res), true);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_int_equal(r.msgs[0].error, H1_OK);
  assert_string_equal(body_str(&r.msgs[0]), "until the close");
  run_free(&r);

  /* before the close it is not done, and not framed */
  run_init(&r, H1_RESPONSE);
  assert_int_equal(h1_feed(&r.m, res, strlen(res)), strlen(res));
  assert_false(r.m.done);
  assert_false(h1_has_length(&r.m, NULL));
  assert_false(h1_chunked(&r.m));
  h1_eof(&r.m);
  assert_true(r.m.done);
  assert_int_equal(r.m.error, H1_OK);
  run_free(&r);
}

static void expect_eof_error(const char *res) {
  run r;
  parse_every_way(&r, H1_RESPONSE, res, strlen(res), true);
  assert_int_equal(r.n, 1);
  assert_false(r.msgs[0].done);
  assert_int_equal(r.msgs[0].error, H1_E_EOF);
  assert_string_equal(h1_error_text(&r.m), "connection closed inside a message");
  run_free(&r);
}

static void test_response_eof_inside(void **state) {
  (void)state;
  expect_eof_error("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nonly5");
  expect_eof_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
  expect_eof_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n");
  expect_eof_error("HTTP/1.1 200 OK\r\nContent-Le");
  expect_eof_error("HTTP/1.1 2");
  /* the same for a request */
  run r;
  static const char req[] = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
  parse_every_way(&r, H1_REQUEST, req, strlen(req), true);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.msgs[0].error, H1_E_EOF);
  run_free(&r);
  /* nothing at all, or only blank lines: no message, no error */
  run_init(&r, H1_RESPONSE);
  assert_true(feed(&r, "", 0, 0, true));
  assert_int_equal(r.n, 0);
  run_free(&r);
  run_init(&r, H1_REQUEST);
  assert_true(feed(&r, "\r\n\r\n", 4, 0, true));
  assert_int_equal(r.n, 0);
  run_free(&r);
}

static void test_response_to_head(void **state) {
  (void)state;
  static const char res[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  run r;
  run_init(&r, H1_RESPONSE);
  r.head_rc = 1; /* answers to HEAD: no body whatever the framing says */
  assert_true(feed(&r, res, strlen(res), 0, true));
  assert_int_equal(r.n, 2);
  assert_true(r.msgs[0].done);
  assert_true(r.msgs[1].done);
  assert_int_equal(r.msgs[0].body.n, 0);
  assert_string_equal(r.msgs[1].head, "200 OK\nTransfer-Encoding: chunked\n");
  run_free(&r);
}

static void test_response_no_body(void **state) {
  (void)state;
  static const char res[] = "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"
                            "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  run r;
  parse_every_way(&r, H1_RESPONSE, res, strlen(res), false);
  assert_int_equal(r.n, 3);
  assert_true(r.msgs[0].done && r.msgs[1].done && r.msgs[2].done);
  assert_string_equal(r.msgs[0].head, "204 No Content\nX-A: 1\n");
  assert_int_equal(r.msgs[0].body.n, 0);
  assert_string_equal(r.msgs[1].head, "304 Not Modified\nContent-Length: 10\n");
  assert_int_equal(r.msgs[1].body.n, 0);
  assert_string_equal(body_str(&r.msgs[2]), "ok");
  run_free(&r);
}

static void test_response_interim(void **state) {
  (void)state;
  static const char res[] = "HTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  run r;
  parse_every_way(&r, H1_RESPONSE, res, strlen(res), false);
  assert_int_equal(r.n, 3);
  assert_string_equal(r.msgs[0].head, "100 Continue\n");
  assert_string_equal(r.msgs[1].head, "103 Early Hints\nLink: </x>; rel=preload\n");
  assert_string_equal(r.msgs[2].head, "200 OK\nContent-Length: 2\n");
  assert_string_equal(body_str(&r.msgs[2]), "ok");
  run_free(&r);

  /* one h1_feed per answer, as proxy.c loops */
  run_init(&r, H1_RESPONSE);
  size_t used = h1_feed(&r.m, res, strlen(res));
  assert_true(r.m.done);
  assert_int_equal(h1_status(&r.m), 100);
  assert_string_equal(h1_reason(&r.m), "Continue");
  h1_next(&r.m);
  r.n++;
  used += h1_feed(&r.m, res + used, strlen(res) - used);
  assert_int_equal(h1_status(&r.m), 103);
  h1_next(&r.m);
  r.n++;
  used += h1_feed(&r.m, res + used, strlen(res) - used);
  assert_int_equal(used, strlen(res));
  assert_int_equal(h1_status(&r.m), 200);
  assert_true(r.m.done);
  run_free(&r);
}

static void test_response_no_reason(void **state) {
  (void)state;
  static const char res[] = "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n";
  run r;
  run_init(&r, H1_RESPONSE);
  assert_int_equal(h1_feed(&r.m, res, strlen(res)), strlen(res));
  assert_true(r.m.done);
  assert_int_equal(h1_status(&r.m), 200);
  assert_string_equal(h1_reason(&r.m), "");
  run_free(&r);
}

/* --- the stream cut anywhere --- */

/* data fed as data[0..a), data[a..b), data[b..len): the same as whole. */
static void assert_cut_twice_same(h1_type type, const char *data, size_t len, bool eof,
                                  size_t a, size_t b, const run *whole) {
  run cut;
  run_init(&cut, type);
  bool ok = feed(&cut, data, a, 0, false);
  if (ok && b > a)
    ok = feed(&cut, data + a, b - a, 0, false);
  if (ok)
    feed(&cut, data + b, len - b, 0, eof);
  assert_same_runs(whole, &cut);
  run_free(&cut);
}

/* Every cut into two pieces, and into three when len is small enough. */
static void parse_every_cut(run *whole, h1_type type, const char *data, size_t len, bool eof) {
  run_init(whole, type);
  feed(whole, data, len, 0, eof);
  for (size_t a = 0; a <= len; a++)
    assert_cut_twice_same(type, data, len, eof, a, a, whole);
  if (len <= 160)
    for (size_t a = 1; a < len; a++)
      for (size_t b = a + 1; b < len; b++)
        assert_cut_twice_same(type, data, len, eof, a, b, whole);
}

static void test_head_cut_at_every_byte(void **state) {
  (void)state;
  run r;
  parse_every_cut(&r, H1_REQUEST, post_request, strlen(post_request), false);
  assert_int_equal(r.n, 1);
  assert_string_equal(r.msgs[0].head, "POST /mcp?session=1\n"
                                      "Host: example.com:8080\n"
                                      "Content-Type: application/json\n"
                                      "Accept: application/json, text/event-stream\n"
                                      "Mcp-Session-Id: abc-123\n"
                                      "Content-Length: 40\n");
  run_free(&r);
  /* bare LF line ends, blank lines before, a request without a body */
  static const char lf[] = "\r\n\nGET /x HTTP/1.0\nHost: h\nX-Pad: a b \t\n\n"
                           "GET /y HTTP/1.1\r\n\r\n";
  parse_every_cut(&r, H1_REQUEST, lf, strlen(lf), true);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.msgs[0].head, "GET /x\nHost: h\nX-Pad: a b\n");
  assert_string_equal(r.msgs[1].head, "GET /y\n");
  assert_int_equal(r.m.error, H1_OK);
  run_free(&r);
  static const char res[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            "Content-Length: 2\r\n\r\n{}"
                            "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n";
  parse_every_cut(&r, H1_RESPONSE, res, strlen(res), true);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.msgs[0].head, "200 OK\nContent-Type: application/json\nContent-Length: 2\n");
  assert_string_equal(body_str(&r.msgs[0]), "{}");
  assert_string_equal(r.msgs[1].head, "404 \nContent-Length: 0\n");
  run_free(&r);
}

static void test_chunked_cut_at_every_byte(void **state) {
  (void)state;
  static const char req[] = "POST /mcp HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                            "4;name=value;x\r\nabcd\r\n"
                            "0A ; spaced = \"q\"\r\n0123456789\r\n"
                            "1\n!\n" /* bare LFs */
                            "000\r\nX-T1: one\r\nX-T2:  two  \r\n\r\n"
                            "GET /next HTTP/1.1\r\n\r\n";
  run r;
  parse_every_cut(&r, H1_REQUEST, req, strlen(req), false);
  assert_int_equal(r.n, 2);
  assert_true(r.msgs[0].done);
  assert_string_equal(body_str(&r.msgs[0]), "abcd0123456789!");
  assert_string_equal(r.msgs[1].head, "GET /next\n");
  run_free(&r);
  run_init(&r, H1_REQUEST);
  assert_int_equal(h1_feed(&r.m, req, strlen(req)), strlen(req) - strlen("GET /next HTTP/1.1\r\n\r\n"));
  assert_true(r.m.done);
  assert_string_equal(h1_header(&r.m, "X-T1"), "one");
  assert_string_equal(h1_header(&r.m, "x-t2"), "two");
  assert_string_equal(h1_header(&r.m, "Transfer-Encoding"), "gzip, chunked");
  assert_true(h1_chunked(&r.m));
  run_free(&r);
  /* a response's chunks, ended by an empty trailer section, then the close */
  static const char res[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "3\r\nabc\r\n0\r\n\r\n";
  parse_every_cut(&r, H1_RESPONSE, res, strlen(res), true);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_string_equal(body_str(&r.msgs[0]), "abc");
  assert_int_equal(r.m.error, H1_OK);
  run_free(&r);
}

/* The bytes fed are only read: fed from a read-only page, whole and in
 * pieces (a write would fault). */
static void test_input_never_written(void **state) {
  (void)state;
  static const char text[] = "POST /a HTTP/1.1\r\nX-Pad:  v  \r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5;e=1\r\nhello\r\n0\r\nX-T: t \r\n\r\n"
                             "PUT /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz";
  size_t len = strlen(text), page = 4096;
  char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(p != MAP_FAILED);
  memcpy(p, text, len);
  assert_int_equal(mprotect(p, page, PROT_READ), 0);
  for (size_t step = 0; step <= 7; step++) {
    run r;
    run_init(&r, H1_REQUEST);
    assert_true(feed(&r, p, len, step, true));
    assert_int_equal(r.n, 2);
    assert_string_equal(r.msgs[0].head, "POST /a\nX-Pad: v\nTransfer-Encoding: chunked\n");
    assert_string_equal(body_str(&r.msgs[0]), "hello");
    assert_string_equal(body_str(&r.msgs[1]), "xyz");
    run_free(&r);
  }
  assert_memory_equal(p, text, len);
  munmap(p, page);
}

/* Framings that smuggle (RFC 9112 §6.1, §6.3) and other bad lengths:
 * refused before the owner sees the head. */
static void test_framing_refused(void **state) {
  (void)state;
  static const char *const reqs[] = {
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 03x\r\n\r\nabc",
      "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\na",
      "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\na",
      "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length :1\r\n\r\na",
      "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\n Leading: space\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\rX: a\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++)
    expect_syntax_error(H1_REQUEST, reqs[i], 0);
  expect_syntax_error(H1_RESPONSE,
                      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", 0);
  expect_syntax_error(H1_RESPONSE, "HTTP/1.1 101 Switching Protocols\r\n\r\n", 0);
  expect_syntax_error(H1_RESPONSE, "HTTP/1.1 200 OK\r\nX: a\r\n\tfolded\r\n\r\n", 0);
  /* the same length twice is one length (RFC 9110 §8.6) */
  static const char twice[] = "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nab";
  run r;
  parse_every_way(&r, H1_REQUEST, twice, strlen(twice), true);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_string_equal(body_str(&r.msgs[0]), "ab");
  run_free(&r);
  /* a response whose last coding is not chunked runs until the close */
  static const char gz[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbytes";
  run_init(&r, H1_RESPONSE);
  assert_true(feed(&r, gz, strlen(gz), 0, true));
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_string_equal(body_str(&r.msgs[0]), "bytes");
  run_free(&r);
  /* bad chunk size lines: after the owner saw the head */
  static const char *const chunks[] = {"5x\r\nhello\r\n0\r\n\r\n", "\r\n",
                                       "11111111111111111\r\n", "5;a\001\r\nhello\r\n0\r\n\r\n",
                                       "5\r\nhello\r\r\n0\r\n\r\n", "0\r\n\rX"};
  for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
    char text[256];
    snprintf(text, sizeof text, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%s", chunks[i]);
    expect_syntax_error(H1_REQUEST, text, 1);
  }
}

/* A malformed head is refused when its blank line is in, or at the close:
 * not earlier when fed whole than when cut. */
static void test_malformed_head_waits_for_its_end(void **state) {
  (void)state;
  static const char ssh[] = "SSH-2.0-OpenSSH_9.2\r\n";
  run r;
  parse_every_way(&r, H1_RESPONSE, ssh, strlen(ssh), false);
  assert_int_equal(r.n, 0);
  assert_int_equal(r.m.error, H1_OK);
  h1_eof(&r.m);
  assert_int_equal(r.m.error, H1_E_SYNTAX);
  run_free(&r);
  expect_syntax_error(H1_RESPONSE, ssh, 0);
  /* cut short but well-formed so far: an EOF error, not a syntax one */
  run_init(&r, H1_REQUEST);
  static const char short_head[] = "GET / HTTP/1.1\r\nHost: h";
  assert_false(feed(&r, short_head, strlen(short_head), 0, true));
  assert_int_equal(r.m.error, H1_E_EOF);
  run_free(&r);
}

/* H1_HEAD_MAX_BYTES bound the head as received, from its first byte to
 * the end of its blank line; trailers count with it. */
static void test_head_limit_exact(void **state) {
  (void)state;
  size_t len;
  char *req = request_with_headers(1, 8, &len);
  size_t grow = H1_HEAD_MAX_BYTES - len; /* the one value, that much longer */
  free(req);
  req = request_with_headers(1, 8 + grow, &len);
  assert_int_equal(len, H1_HEAD_MAX_BYTES);
  run r;
  parse_every_way(&r, H1_REQUEST, req, len, true);
  assert_int_equal(r.n, 1);
  assert_true(r.msgs[0].done);
  assert_int_equal(r.m.error, H1_OK);
  run_free(&r);
  /* blank lines before it do not count */
  char *pre = malloc(len + 2);
  assert_non_null(pre);
  memcpy(pre, "\r\n", 2);
  memcpy(pre + 2, req, len);
  parse_every_way(&r, H1_REQUEST, pre, len + 2, true);
  assert_true(r.msgs[0].done);
  run_free(&r);
  free(pre);
  free(req);
  req = request_with_headers(1, 9 + grow, &len);
  parse_every_way(&r, H1_REQUEST, req, len, true);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.m.error, H1_E_HEAD_SIZE);
  assert_int_equal(r.msgs[0].head_calls, 0);
  assert_true(r.m.text.n <= H1_HEAD_MAX_BYTES);
  run_free(&r);
  free(req);
  /* a trailer section taking the head over the limit */
  size_t tlen = H1_HEAD_MAX_BYTES;
  char *body = malloc(tlen + 256);
  assert_non_null(body);
  size_t at = (size_t)snprintf(body, 256, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          "1\r\nx\r\n0\r\nX-T: ");
  memset(body + at, 't', tlen);
  at += tlen;
  memcpy(body + at, "\r\n\r\n", 4);
  at += 4;
  parse_every_way(&r, H1_REQUEST, body, at, true);
  assert_int_equal(r.n, 1);
  assert_int_equal(r.msgs[0].head_calls, 1);
  assert_string_equal(body_str(&r.msgs[0]), "x");
  assert_int_equal(r.m.error, H1_E_HEAD_SIZE);
  run_free(&r);
  free(body);
}

/* --- hop-by-hop --- */

static void test_hop_by_hop(void **state) {
  (void)state;
  static const char *const hop[] = {"Connection",      "connection",          "Keep-Alive",
                                    "Transfer-Encoding", "TE",                "Trailer",
                                    "Upgrade",         "Proxy-Authorization", "proxy-connection",
                                    "Proxy-Authenticate"};
  for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
    assert_true(h1_hop_by_hop(hop[i], NULL));
  static const char *const end[] = {"Content-Type", "Content-Length", "Mcp-Session-Id", "Host",
                                    "Authorization", "Accept", "TEA", "Upgrade-Insecure-Requests",
                                    "Proxy"};
  for (size_t i = 0; i < sizeof end / sizeof end[0]; i++)
    assert_false(h1_hop_by_hop(end[i], NULL));
  /* names the Connection header lists, any case, any spacing */
  const char *conn = "close, X-Foo ,\tx-bar,,Keep-Alive";
  assert_true(h1_hop_by_hop("X-Foo", conn));
  assert_true(h1_hop_by_hop("X-BAR", conn));
  assert_true(h1_hop_by_hop("close", conn));
  assert_false(h1_hop_by_hop("X-Fo", conn));
  assert_false(h1_hop_by_hop("X-Foo2", conn));
  assert_false(h1_hop_by_hop("Content-Type", conn));
  assert_false(h1_hop_by_hop("X-Foo", ""));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_whole_and_cut),
      cmocka_unit_test(test_request_pipelined),
      cmocka_unit_test(test_request_chunked),
      cmocka_unit_test(test_request_trailers),
      cmocka_unit_test(test_request_content_length),
      cmocka_unit_test(test_header_split_across_feeds),
      cmocka_unit_test(test_empty_header_value),
      cmocka_unit_test(test_head_limits),
      cmocka_unit_test(test_head_limit_or_syntax),
      cmocka_unit_test(test_bad_syntax),
      cmocka_unit_test(test_hooks_stop),
      cmocka_unit_test(test_version_and_keep_alive),
      cmocka_unit_test(test_upgrade_refused),
      cmocka_unit_test(test_response_content_length),
      cmocka_unit_test(test_response_chunked),
      cmocka_unit_test(test_response_close_delimited),
      cmocka_unit_test(test_response_eof_inside),
      cmocka_unit_test(test_response_to_head),
      cmocka_unit_test(test_response_no_body),
      cmocka_unit_test(test_response_interim),
      cmocka_unit_test(test_response_no_reason),
      cmocka_unit_test(test_head_cut_at_every_byte),
      cmocka_unit_test(test_chunked_cut_at_every_byte),
      cmocka_unit_test(test_input_never_written),
      cmocka_unit_test(test_framing_refused),
      cmocka_unit_test(test_malformed_head_waits_for_its_end),
      cmocka_unit_test(test_head_limit_exact),
      cmocka_unit_test(test_hop_by_hop),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

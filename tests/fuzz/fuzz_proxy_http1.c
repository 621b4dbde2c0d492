/*
 * fuzz_proxy_http1.c — libFuzzer target for the proxy's HTTP/1.x layer
 * (src/proxy/http1.c over picohttpparser): arbitrary bytes read as a stream
 * of requests from a client and as a stream of responses from an
 * upstream, fed as proxy.c feeds them (h1_feed until a message is done or
 * an error, h1_next, the rest fed again; h1_eof at the close).
 *
 * http1.c is part of the mcpr program, not of libmcpr, so it is compiled
 * into this target (included below), with lazy_pico.c: picohttpparser
 * comes from libh2o-evloop as in the proxy (not instrumented).
 *
 * Properties, on each stream type:
 *  - cutting does not matter: fed whole, then cut at the input's chosen
 *    points, the stream gives the same messages — method or status,
 *    target, reason, headers, body bytes, and how each ended (done, or
 *    which error; a head refused as too large and one refused as
 *    malformed are the same here, see end_message);
 *  - h1_feed takes every byte unless it stops at a message's end or an
 *    error;
 *  - a head is bounded (H1_MAX_HEADERS, H1_HEAD_MAX_BYTES) and what the
 *    proxy copies from it into the next hop's head is safe to copy: the
 *    target, names and values are C strings of their recorded length with
 *    no CR or LF (no header injection), names are not empty, values carry
 *    no leading or trailing blanks, h1_header finds every name;
 *  - a body framed by Content-Length that completes has that many bytes.
 *
 * Input layout (anything else is still a valid input):
 *   byte 0: flags: bit 0 the responses answer HEAD (on_head returns 1),
 *           bit 1 the peer closes after the last byte (h1_eof)
 *   byte 1: k = b & 15, then k bytes: the piece sizes (b + 1), used in
 *           turn; k = 0: byte by byte
 *   the rest: the stream.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/proxy/http1.c"

#define CHECK(cond)                                                                              \
  do {                                                                                         \
    if (!(cond))                                                                               \
      __builtin_trap();                                                                        \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_run {
  h1_msg m;
  uint64_t digest;
  bool head_answers; /* responses to HEAD */
  bool skipped;      /* this message has no body by its head */
  uint64_t body_bytes;
  size_t input_bytes;
} fz_run;

static void mix(fz_run *r, const void *p, size_t n) {
  const unsigned char *s = p;
  r->digest = (r->digest ^ 0x100) * 1099511628211ull; /* a field boundary */
  for (size_t i = 0; i < n; i++)
    r->digest = (r->digest ^ s[i]) * 1099511628211ull;
}

static void mix_num(fz_run *r, uint64_t v) { mix(r, &v, sizeof v); }

static bool has_crlf(const char *s, size_t n) {
  return memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* The header list (with a chunked body's trailers once it is done). */
static void check_fields(const h1_msg *m) {
  CHECK(m->n_fields <= H1_MAX_HEADERS);
  for (size_t i = 0; i < m->n_fields; i++) {
    const h1_field *f = &m->fields[i];
    const char *name = h1_str(m, f->name), *value = h1_str(m, f->value);
    CHECK(f->name_len > 0);
    CHECK(strlen(name) == f->name_len);
    CHECK(strlen(value) == f->value_len);
    CHECK(!has_crlf(name, f->name_len) && !has_crlf(value, f->value_len));
    CHECK(strchr(name, ':') == NULL);
    CHECK(f->value_len == 0 || (!is_blank(value[0]) && !is_blank(value[f->value_len - 1])));
    CHECK(h1_header(m, name) != NULL);
  }
}

static void check_head(const h1_msg *m) {
  CHECK(m->text.n <= H1_HEAD_MAX_BYTES + 2 * H1_MAX_HEADERS + 2);
  if (m->type == H1_REQUEST) {
    const char *t = h1_target(m);
    CHECK(m->target_len > 0);
    CHECK(strlen(t) == m->target_len);
    CHECK(!has_crlf(t, m->target_len));
    CHECK(strchr(t, ' ') == NULL);
  } else {
    const char *reason = h1_reason(m);
    CHECK(!has_crlf(reason, strlen(reason)));
    CHECK(h1_status(m) >= 100 && h1_status(m) <= 999);
  }
  check_fields(m);
}

static int fz_on_head(void *owner, h1_msg *m) {
  fz_run *r = owner;
  check_head(m);
  mix_num(r, 1);
  if (m->type == H1_REQUEST) {
    mix(r, h1_method(m), strlen(h1_method(m)));
    mix(r, h1_target(m), m->target_len);
  } else {
    mix_num(r, (uint64_t)h1_status(m));
    mix(r, h1_reason(m), strlen(h1_reason(m)));
  }
  for (size_t i = 0; i < m->n_fields; i++) {
    mix(r, h1_str(m, m->fields[i].name), m->fields[i].name_len);
    mix(r, h1_str(m, m->fields[i].value), m->fields[i].value_len);
  }
  uint64_t length = 0;
  mix_num(r, h1_has_length(m, &length));
  mix_num(r, length);
  mix_num(r, h1_chunked(m));
  mix_num(r, h1_keep_alive(m));
  mix_num(r, h1_version_1_0(m));
  int status = h1_status(m);
  bool response = m->type == H1_RESPONSE;
  r->skipped = response && (r->head_answers || status / 100 == 1 || status == 204 || status == 304);
  r->body_bytes = 0;
  return response && r->head_answers ? 1 : 0;
}

/* Body bytes go into the digest one by one, so where the pieces were cut
 * does not show. */
static int fz_on_body(void *owner, const char *data, size_t len) {
  fz_run *r = owner;
  CHECK(r->m.head_done);
  CHECK(!r->skipped);
  for (size_t i = 0; i < len; i++)
    r->digest = (r->digest ^ (unsigned char)data[i]) * 1099511628211ull;
  r->body_bytes += len;
  CHECK(r->body_bytes <= r->input_bytes);
  return 0;
}

static const h1_hooks fz_hooks = {fz_on_head, fz_on_body};

/* How the current message ended: into the digest, and the next begun. */
static void end_message(fz_run *r) {
  h1_msg *m = &r->m;
  mix_num(r, 2);
  mix_num(r, m->done);
  /* A head (or a chunked body's trailers, which count with it) both over
   * a limit and malformed is refused either way, but which is found first
   * is the parser's choice (http-parser's, before picohttpparser, depended
   * on the cuts). So over a limit and bad syntax count as one here (the proxy answers 431 or 400:
   * regress/proxy_http1/head-limit-or-syntax, trailer-limit-or-syntax). */
  h1_error e = m->error;
  if (e == H1_E_HEAD_SIZE)
    e = H1_E_SYNTAX;
  mix_num(r, (uint64_t)e);
  mix_num(r, r->body_bytes);
  if (m->error)
    CHECK(h1_error_text(m) != NULL && *h1_error_text(m));
  if (m->done && !m->error) {
    check_fields(m);
    uint64_t length = 0;
    if (h1_has_length(m, &length) && !r->skipped)
      CHECK(r->body_bytes == length);
    h1_next(m);
    r->body_bytes = 0;
    r->skipped = false;
  }
}

/* The stream through one parser; sizes NULL: whole. Returns the digest. */
static uint64_t run(h1_type type, const uint8_t *flags_p, const uint8_t *s,
                    size_t len, const uint8_t *sizes, size_t n_sizes) {
  fz_run r;
  memset(&r, 0, sizeof r);
  r.digest = 14695981039346656037ull;
  r.head_answers = (*flags_p & 1) != 0;
  r.input_bytes = len;
  h1_init(&r.m, type, &fz_hooks, &r);
  size_t off = 0, turn = 0;
  bool failed = false;
  while (off < len && !failed) {
    size_t piece = len - off;
    if (sizes) {
      size_t want = n_sizes ? (size_t)sizes[turn++ % n_sizes] + 1 : 1;
      if (want < piece)
        piece = want;
    }
    /* an exact-size copy: a read past the piece is caught */
    char *buf = malloc(piece);
    CHECK(buf != NULL);
    memcpy(buf, s + off, piece);
    const char *d = buf;
    size_t left = piece;
    while (left > 0) {
      size_t used = h1_feed(&r.m, d, left);
      CHECK(used <= left);
      d += used;
      left -= used;
      if (r.m.error) {
        end_message(&r);
        failed = true;
        break;
      }
      if (!r.m.done) {
        CHECK(left == 0);
        break;
      }
      end_message(&r);
    }
    free(buf);
    off += piece;
  }
  if (!failed && (*flags_p & 2)) {
    h1_eof(&r.m);
    if (r.m.done || r.m.error)
      end_message(&r);
    mix_num(&r, 3);
  }
  h1_free(&r.m);
  return r.digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  const uint8_t *flags = data;
  size_t n_sizes = data[1] & 15;
  if (size < 2 + n_sizes)
    return 0;
  const uint8_t *sizes = data + 2, *s = data + 2 + n_sizes;
  size_t len = size - 2 - n_sizes;
  static const h1_type types[] = {H1_REQUEST, H1_RESPONSE};
  for (size_t i = 0; i < 2; i++) {
    uint64_t whole = run(types[i], flags, s, len, NULL, 0);
    CHECK(run(types[i], flags, s, len, sizes, n_sizes) == whole);
  }
  return 0;
}

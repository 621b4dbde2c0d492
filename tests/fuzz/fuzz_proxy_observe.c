/*
 * fuzz_proxy_observe.c — libFuzzer target for the proxy's traffic parsing
 * (src/proxy/observe.c): JSON-RPC request bodies, batches, JSON and SSE
 * response bodies cut into arbitrary chunks, response headers, and the
 * events built from them.
 *
 * observe.c is part of the mcpr program, not of libmcpr, so it is
 * compiled into this target (included below). mcpr_fanout_emit is renamed
 * to a local function around that include, so every event the observer
 * builds is checked synchronously, on this thread: it must encode (valid
 * UTF-8, a payload that is JSON), decode again, and an error_msg is at most
 * 512 characters. Bounded memory: after every chunk, what the observer
 * buffers is at most max_response_body. Chunking does not matter: the
 * input is run twice, its response bodies cut at random and then whole,
 * and both runs must give the same events (timing fields aside); a third
 * run reads every body with jansson alone (obs_fast off) and must give the
 * same events again: the scanner's fast reading changes nothing.
 *
 * Input layout (anything else is still a valid input):
 *   byte 0: max_response_body = 16 << (b & 7)   (small, to reach the bounds)
 *   byte 1: seed of the chunk sizes
 *   then exchanges separated by "\xff\xff"; each is one flags byte and up
 *   to five fields separated by "\xfe\xfe": request body, response
 *   Content-Type, response Mcp-Session-Id, request Mcp-Session-Id,
 *   response body. Flags: bits 0-1 HTTP method, 2-4 status, 5 the proxy's
 *   own error at the end, 6 the exchange is dropped before its response.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/event.h"
#include "mcpr/sink.h"

mcpr_status fuzz_emit(mcpr_fanout *fan, const mcpr_event *ev);

#define mcpr_fanout_emit fuzz_emit
#include "../../src/proxy/observe.c"
#undef mcpr_fanout_emit

#define CHECK(cond)                                                                              \
  do {                                                                                         \
    if (!(cond))                                                                               \
      __builtin_trap();                                                                        \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FNV-1a over what the events say, except ids, timestamps and latencies. */
static uint64_t digest;

static void digest_add(const char *s) {
  digest = (digest ^ 0xff) * 1099511628211ull; /* a field boundary, also for NULL */
  for (; s && *s; s++)
    digest = (digest ^ (unsigned char)*s) * 1099511628211ull;
}

static void digest_num(int64_t v) {
  char b[32];
  snprintf(b, sizeof b, "%lld", (long long)v);
  digest_add(b);
}

static void digest_event(const mcpr_event *ev) {
  digest_num(ev->type);
  if (ev->type == MCPR_EVENT_REQUEST) {
    const mcpr_event_request *r = &ev->u.request;
    digest_add(r->session_id);
    digest_add(r->mcp_method);
    digest_add(r->tool);
    digest_add(r->resource_uri);
    digest_add(r->prompt_name);
    digest_add(r->client_version);
    digest_add(r->error_code);
    digest_add(r->error_msg);
    digest_add(r->note);
    digest_add(r->client_name);
    digest_num(r->status);
    digest_num(r->request_size);
    digest_num(r->response_size);
  } else if (ev->type == MCPR_EVENT_SCHEMA_VERSION_CREATED) {
    digest_add(ev->u.schema_version.method);
    digest_add(ev->u.schema_version.content_hash);
  } else if (ev->type == MCPR_EVENT_SESSION_START) {
    digest_add(ev->u.session_start.session_id);
    digest_add(ev->u.session_start.client_name);
    digest_add(ev->u.session_start.client_version);
  } else if (ev->type == MCPR_EVENT_SESSION_END) {
    digest_add(ev->u.session_end.session_id);
  }
}

static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

mcpr_status fuzz_emit(mcpr_fanout *fan, const mcpr_event *ev) {
  (void)fan;
  mcpr_error err = {0};
  size_t len = 0;
  if (ev->type == MCPR_EVENT_REQUEST && ev->u.request.error_msg)
    CHECK(utf8_chars(ev->u.request.error_msg) <= ERROR_MSG_MAX);
  char *text = mcpr_event_encode(ev, &len, &err);
  if (!text)
    fprintf(stderr, "encode: %s\n", err.message);
  CHECK(text != NULL);
  mcpr_event back;
  mcpr_status st = mcpr_event_decode(text, len, &back, &err);
  if (st != MCPR_OK)
    fprintf(stderr, "decode: %s\n%s\n", err.message, text);
  CHECK(st == MCPR_OK);
  CHECK(back.type == ev->type);
  digest_event(ev);
  mcpr_event_release(&back);
  free(text);
  return MCPR_OK;
}

/* The next field of [*at, end) up to "\xfe\xfe" (or the end); NULL past it. */
static const uint8_t *next_field(const uint8_t **at, const uint8_t *end, size_t *len) {
  if (!*at)
    return NULL;
  const uint8_t *s = *at;
  for (const uint8_t *p = s; p + 1 < end; p++)
    if (p[0] == 0xfe && p[1] == 0xfe) {
      *len = (size_t)(p - s);
      *at = p + 2;
      return s;
    }
  *len = (size_t)(end - s);
  *at = NULL;
  return s;
}

static char *cstr(const uint8_t *s, size_t n) {
  return s ? strndup((const char *)s, n) : NULL;
}

static void check_bounds(const obs_exchange *x, size_t max) {
  if (!x)
    return;
  CHECK(x->body_len <= max);
  CHECK(x->sp.line_len <= max);
  CHECK(x->sp.data_len <= max + 1);
}

/* seed NULL: each response body in one piece. */
static void one_exchange(obs *o, const uint8_t *s, const uint8_t *end, unsigned *seed,
                         size_t max) {
  static const char *const methods[] = {"POST", "GET", "DELETE", "POST"};
  static const int statuses[] = {200, 202, 404, 500, 200, 400, 0, 200};
  if (s >= end)
    return;
  uint8_t flags = *s++;
  const uint8_t *at = s;
  size_t req_len = 0, ct_len = 0, rsid_len = 0, qsid_len = 0, body_len = 0;
  const uint8_t *req = next_field(&at, end, &req_len);
  const uint8_t *ct = next_field(&at, end, &ct_len);
  const uint8_t *rsid = next_field(&at, end, &rsid_len);
  const uint8_t *qsid = next_field(&at, end, &qsid_len);
  const uint8_t *body = next_field(&at, end, &body_len);
  char *ctype = cstr(ct, ct_len), *resp_sid = cstr(rsid, rsid_len), *req_sid = cstr(qsid, qsid_len);
  /* The request body as the proxy hands it over: an exact-size copy. */
  char *reqb = req_len ? malloc(req_len) : NULL;
  if (reqb)
    memcpy(reqb, req, req_len);
  int status = statuses[(flags >> 2) & 7];
  obs_exchange *x = obs_begin(o, methods[flags & 3], "/mcp", req_sid, reqb, reqb ? req_len : 0,
                              1700000000000, 1000);
  (void)obs_first_id(x);
  obs_upstream_sent(x, 1100);
  if (!(flags & 0x40)) {
    obs_response_start(x, status, ctype, resp_sid, 1200);
    size_t i = 0;
    while (body && i < body_len) {
      size_t n = body_len;
      if (seed) {
        *seed = *seed * 1103515245u + 12345u;
        n = 1 + (*seed >> 16) % 97;
      }
      if (n > body_len - i)
        n = body_len - i;
      char *chunk = malloc(n); /* exact size: a read past it is caught */
      CHECK(chunk != NULL);
      memcpy(chunk, body + i, n);
      obs_response_data(x, chunk, n, 1300 + (int64_t)i);
      free(chunk);
      check_bounds(x, max);
      i += n;
    }
  }
  if (flags & 0x20)
    obs_end(x, 502, "-32000", "upstream unreachable", "upstream_unreachable", 5000);
  else
    obs_end(x, status ? status : 200, NULL, NULL, (flags & 0x80) ? "client closed" : NULL, 5000);
  free(reqb);
  free(ctype);
  free(resp_sid);
  free(req_sid);
}

/* Every exchange of the input through one observer; the events' digest. */
static uint64_t run(const uint8_t *data, size_t size, bool chunked) {
  size_t max = (size_t)16 << (data[0] & 7);
  unsigned seed = data[1];
  digest = 14695981039346656037ull;
  obs *o = obs_new("fuzz", "http://127.0.0.1:1/mcp", (mcpr_fanout *)(uintptr_t)1, max);
  CHECK(o != NULL);
  const uint8_t *end = data + size, *s = data + 2;
  while (s < end) {
    const uint8_t *e = s;
    while (e + 1 < end && !(e[0] == 0xff && e[1] == 0xff))
      e++;
    if (e + 1 >= end)
      e = end;
    one_exchange(o, s, e, chunked ? &seed : NULL, max);
    s = e == end ? end : e + 2;
  }
  obs_stats st;
  obs_get_stats(o, &st);
  CHECK(st.emit_refused == 0);
  obs_free(o);
  return digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  obs_fast = true;
  uint64_t cut = run(data, size, true);
  CHECK(run(data, size, false) == cut);
  /* jansson alone: the fast reading must give the same events */
  obs_fast = false;
  uint64_t slow = run(data, size, true);
  obs_fast = true;
  CHECK(slow == cut);
  return 0;
}

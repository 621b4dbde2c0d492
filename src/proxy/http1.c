/*
 * http1.c — HTTP/1.x messages for the proxy (see http1.h), on http-parser.
 *
 * Why not evhttp, which the first version used on both sides: evhttp's
 * connections re-arm their epoll registrations several times per request
 * and never write before the loop turns (measured: 10 epoll_ctl and about
 * 23 syscalls per proxied request, against nginx's 5). With the parser
 * apart from the I/O, proxy.c keeps one registration per socket for its
 * whole life and writes at once.
 */
#include "http1.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static h1_msg *msg_of(http_parser *hp) { return hp->data; }

/* Append a piece of the target, reason, name or value; false stops. */
static bool add_text(h1_msg *m, const char *at, size_t len) {
  m->head_bytes += len;
  if (m->head_bytes > H1_HEAD_MAX_BYTES) {
    m->error = H1_E_HEAD_SIZE;
    return false;
  }
  if (!mcpr__buf_add(&m->text, at, len)) {
    m->error = H1_E_NOMEM;
    return false;
  }
  return true;
}

/* End the element being gathered with a NUL (names and values become C
 * strings in place). */
static bool end_text(h1_msg *m) {
  if (!mcpr__buf_add(&m->text, "", 1)) {
    m->error = H1_E_NOMEM;
    return false;
  }
  return true;
}

static int on_message_begin(http_parser *hp) {
  h1_msg *m = msg_of(hp);
  m->started = true;
  return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len) {
  h1_msg *m = msg_of(hp);
  return add_text(m, at, len) ? (m->target_len += (uint32_t)len, 0) : -1;
}

static int on_status(http_parser *hp, const char *at, size_t len) {
  h1_msg *m = msg_of(hp);
  return add_text(m, at, len) ? (m->reason_len += (uint32_t)len, 0) : -1;
}

/* A value ends: trailing whitespace is not part of it (RFC 9112 §5; the
 * parser drops only the leading). */
static void trim_value(h1_msg *m) {
  h1_field *f = &m->fields[m->n_fields - 1];
  if (f->value + f->value_len != m->text.n) /* ended already */
    return;
  while (f->value_len && (m->text.p[m->text.n - 1] == ' ' || m->text.p[m->text.n - 1] == '\t')) {
    f->value_len--;
    m->text.n--;
    m->text.p[m->text.n] = '\0';
  }
}

static int on_header_field(http_parser *hp, const char *at, size_t len) {
  h1_msg *m = msg_of(hp);
  if (m->last != 1) { /* a new header begins */
    if (m->last == 2)
      trim_value(m);
    if (!end_text(m))
      return -1;
    if (m->n_fields == H1_MAX_HEADERS) {
      m->error = H1_E_HEAD_SIZE;
      return -1;
    }
    h1_field *f = &m->fields[m->n_fields++];
    memset(f, 0, sizeof *f);
    f->name = (uint32_t)m->text.n;
    m->last = 1;
  }
  if (!add_text(m, at, len))
    return -1;
  m->fields[m->n_fields - 1].name_len += (uint32_t)len;
  return 0;
}

/* field-value bytes (RFC 9110 §5.5): HTAB, visible, SP, obs-text.
 * http-parser checks every byte of a value but its first: "X:\x00" went
 * through, and a NUL cut the value short for every h1_header() reader. */
static bool value_bytes_ok(const char *at, size_t len) {
  /* no early exit: every byte is read anyway in a good value (nearly all
   * are), and without one the loop vectorises */
  unsigned bad = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)at[i];
    bad |= ((c < 0x20) & (c != '\t')) | (c == 0x7f);
  }
  return bad == 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len) {
  h1_msg *m = msg_of(hp);
  if (!value_bytes_ok(at, len)) {
    m->error = H1_E_SYNTAX;
    m->hpe = HPE_INVALID_HEADER_TOKEN;
    return -1;
  }
  if (m->last != 2) {
    if (!end_text(m))
      return -1;
    m->fields[m->n_fields - 1].value = (uint32_t)m->text.n;
    m->last = 2;
  }
  if (!add_text(m, at, len))
    return -1;
  m->fields[m->n_fields - 1].value_len += (uint32_t)len;
  return 0;
}

static int on_headers_complete(http_parser *hp) {
  h1_msg *m = msg_of(hp);
  if (m->last == 1 && !end_text(m)) /* a name without a value (the parser refuses those) */
    return -1;
  if (m->last == 1)
    m->fields[m->n_fields - 1].value = (uint32_t)m->text.n - 1; /* "" */
  if (m->last == 2)
    trim_value(m);
  if (!end_text(m))
    return -1;
  /* An Upgrade (or CONNECT) leaves HTTP after the head: the proxy speaks
   * plain HTTP only, so refuse it before the owner acts on the head (it
   * would answer an Expect, or pass a 101 on to the client). */
  if (hp->upgrade) {
    m->error = H1_E_SYNTAX;
    m->hpe = HPE_INVALID_CONSTANT;
    return -1;
  }
  /* http-parser takes 1 to 3 digits ("HTTP/1.1 3 x"); a status is 3. */
  if (hp->type == HTTP_RESPONSE && hp->status_code < 100) {
    m->error = H1_E_SYNTAX;
    m->hpe = HPE_INVALID_STATUS;
    return -1;
  }
  m->head_done = true;
  m->chunked = (hp->flags & F_CHUNKED) != 0;
  m->has_length = !m->chunked && (hp->flags & F_CONTENTLENGTH) != 0;
  m->length = m->has_length ? hp->content_length : 0;
  int rc = m->hooks->on_head ? m->hooks->on_head(m->owner, m) : 0;
  if (rc < 0) {
    m->error = H1_E_ABORTED;
    return -1;
  }
  /* 1xx, 204 and 304 answers end at their head whatever their framing
   * headers say (RFC 9112 §6.3); http-parser would read a Content-Length
   * worth of the next answer as their body. */
  unsigned status = hp->status_code;
  if (hp->type == HTTP_RESPONSE && (status / 100 == 1 || status == 204 || status == 304))
    rc = 1;
  return rc == 1 ? 1 : 0;
}

static int on_body(http_parser *hp, const char *at, size_t len) {
  h1_msg *m = msg_of(hp);
  if (m->hooks->on_body && m->hooks->on_body(m->owner, at, len) != 0) {
    m->error = H1_E_ABORTED;
    return -1;
  }
  return 0;
}

static int on_message_complete(http_parser *hp) {
  h1_msg *m = msg_of(hp);
  if (m->last == 2) /* the last trailer's value (no headers_complete after trailers) */
    trim_value(m);
  m->done = true;
  http_parser_pause(hp, 1); /* one message per h1_feed(): the owner acts on it first */
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void clear_message(h1_msg *m) {
  m->text.n = 0;
  m->target = m->target_len = m->reason = m->reason_len = 0;
  m->n_fields = 0;
  m->last = 0;
  m->head_bytes = 0;
  m->started = m->head_done = m->done = false;
  m->has_length = m->chunked = false;
  m->length = 0;
}

void h1_init(h1_msg *m, enum http_parser_type type, const h1_hooks *hooks, void *owner) {
  memset(m, 0, sizeof *m);
  http_parser_init(&m->hp, type);
  m->hp.data = m;
  m->hooks = hooks;
  m->owner = owner;
}

void h1_next(h1_msg *m) {
  clear_message(m);
  http_parser_pause(&m->hp, 0);
}

void h1_free(h1_msg *m) { mcpr__buf_release(&m->text); }

static void take_errno(h1_msg *m) {
  enum http_errno e = HTTP_PARSER_ERRNO(&m->hp);
  if (e == HPE_OK || e == HPE_PAUSED || m->error)
    return;
  m->hpe = e;
  m->error = e == HPE_HEADER_OVERFLOW ? H1_E_HEAD_SIZE : H1_E_SYNTAX;
}

size_t h1_feed(h1_msg *m, const char *data, size_t len) {
  if (m->error || m->done || len == 0)
    return 0;
  size_t n = http_parser_execute(&m->hp, &settings, data, len);
  take_errno(m);
  /* An Upgrade (or CONNECT) leaves the parser after the head: the proxy
   * speaks plain HTTP only. */
  if (!m->error && m->hp.upgrade) {
    m->error = H1_E_SYNTAX;
    m->hpe = HPE_INVALID_CONSTANT;
  }
  return n;
}

void h1_eof(h1_msg *m) {
  if (m->error || m->done)
    return;
  bool under_way = m->started;
  http_parser_execute(&m->hp, &settings, NULL, 0);
  take_errno(m);
  if (!m->error && under_way && !m->done)
    m->error = H1_E_EOF;
  if (m->error == H1_E_SYNTAX && m->hpe == HPE_INVALID_EOF_STATE)
    m->error = H1_E_EOF;
}

const char *h1_target(const h1_msg *m) { return m->text.p ? m->text.p + m->target : ""; }

const char *h1_reason(const h1_msg *m) {
  return m->text.p && m->reason_len ? m->text.p + m->reason : "";
}

const char *h1_method(const h1_msg *m) { return http_method_str((enum http_method)m->hp.method); }

int h1_status(const h1_msg *m) { return (int)m->hp.status_code; }

const char *h1_header(const h1_msg *m, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < m->n_fields; i++) {
    const h1_field *f = &m->fields[i];
    if (f->name_len == n && strncasecmp(m->text.p + f->name, name, n) == 0)
      return m->text.p + f->value;
  }
  return NULL;
}

bool h1_keep_alive(const h1_msg *m) { return http_should_keep_alive(&m->hp) != 0; }

bool h1_version_1_0(const h1_msg *m) { return m->hp.http_major == 1 && m->hp.http_minor == 0; }

bool h1_has_length(const h1_msg *m, uint64_t *length) {
  if (length)
    *length = m->length;
  return m->has_length;
}

bool h1_chunked(const h1_msg *m) { return m->chunked; }

const char *h1_error_text(const h1_msg *m) {
  switch (m->error) {
  case H1_OK: return "no error";
  case H1_E_SYNTAX: return m->hp.upgrade ? "protocol upgrade not supported"
                                         : http_errno_description(m->hpe);
  case H1_E_HEAD_SIZE: return "request head too large";
  case H1_E_EOF: return "connection closed inside a message";
  case H1_E_NOMEM: return "out of memory";
  case H1_E_ABORTED: return "stopped";
  }
  return "unknown error";
}

bool h1_hop_by_hop(const char *name, const char *connection_value) {
  /* by length first: every header of every message passes here */
  size_t n = strlen(name);
  const char *hop = NULL, *hop2 = NULL;
  switch (n) {
  case 2: hop = "TE"; break;
  case 7: hop = "Trailer", hop2 = "Upgrade"; break;
  case 8: hop = "Trailers"; break;
  case 10: hop = "Connection", hop2 = "Keep-Alive"; break;
  case 17: hop = "Transfer-Encoding"; break;
  }
  if ((hop && strcasecmp(name, hop) == 0) || (hop2 && strcasecmp(name, hop2) == 0))
    return true;
  if (n >= 6 && (name[0] | 0x20) == 'p' && strncasecmp(name, "Proxy-", 6) == 0)
    return true;
  if (connection_value) {
    for (const char *s = connection_value; *s;) {
      while (*s == ' ' || *s == ',' || *s == '\t')
        s++;
      const char *e = s;
      while (*e && *e != ',' && *e != ' ' && *e != '\t')
        e++;
      if ((size_t)(e - s) == n && strncasecmp(s, name, n) == 0)
        return true;
      s = e;
    }
  }
  return false;
}

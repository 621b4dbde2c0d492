/*
 * http1.c — HTTP/1.x messages for the proxy (see http1.h), on
 * picohttpparser.
 *
 * Why not evhttp, which the first version used on both sides: evhttp's
 * connections re-arm their epoll registrations several times per request
 * and never write before the loop turns (measured: 10 epoll_ctl and about
 * 23 syscalls per proxied request, against nginx's 5). With the parser
 * apart from the I/O, proxy.c keeps one registration per socket for its
 * whole life and writes at once.
 *
 * Why picohttpparser and not Node's http-parser, which this file wrapped
 * before: http-parser walks a message a byte at a time through its state
 * machine and calls back for every piece of every name and value; on the
 * proxy's loop thread that was a third of the instructions spent per
 * request. picohttpparser finds a whole head in one call, a line at a
 * time, and hands back pointers into it.
 *
 * The head. picohttpparser keeps no state between calls: it parses a
 * whole head or answers "not complete". A head fed whole is parsed in the
 * caller's bytes, then only its bytes are copied into m->text; a head
 * that comes in pieces is gathered in m->text (at most H1_HEAD_MAX_BYTES)
 * and parsed there. The copy is where the head's strings live: each is
 * NUL-terminated in place, over the byte that followed it.
 *
 * When a head is parsed: once its blank line is in, at the close, or when
 * H1_HEAD_MAX_BYTES of it are in — never earlier. Looking for the blank
 * line is done here over the new bytes only (memchr), so a head in many
 * small pieces costs linear time. picohttpparser's own answer to that
 * (last_len) is not used: last_len = 0 parses at once, which would refuse
 * a malformed head fed whole before its end has come while the same bytes
 * cut in pieces wait for it, and the same bytes must give the same answer
 * however they are cut (tests/fuzz/fuzz_proxy_http1.c checks that); and
 * 2.2.5's completeness check wants two line ends in a row, which an empty
 * trailer section never holds.
 *
 * The framing (RFC 9112 §6) is read here from the parsed header list:
 * Content-Length and Transfer-Encoding (both: refused, as request
 * smuggling needs; differing lengths: refused), no body for 1xx, 204, 304
 * and HEAD answers, keep-alive by version and Connection, and no upgrade.
 *
 * Chunked bodies are decoded by the small state machine of feed_body(),
 * not by phr_decode_chunked: that one decodes in place, and the bytes
 * h1_feed() gets are the caller's (proxy.c's read buffer, const here), so
 * it would need a scratch copy of every chunked body; the state machine
 * hands each chunk's data to on_body straight from the caller's bytes.
 * A trailer section is gathered like a head and parsed with
 * phr_parse_headers; its fields join the header list.
 */
#include "http1.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "picohttpparser.h"

bool h1_load(const char **why) { return mcpr__pico_load(why); }

static bool fail(h1_msg *m, h1_error e, const char *why) {
  m->error = e;
  m->why = why;
  return false;
}

/* Whether p[0..n) holds a blank line (LF, then LF or CR LF); only one
 * ending at from or later is looked for (the bytes before were). */
static bool has_blank_line(const char *p, size_t n, size_t from) {
  size_t i = from > 2 ? from - 2 : 0;
  while (i < n) {
    const char *lf = memchr(p + i, '\n', n - i);
    if (!lf)
      return false;
    size_t k = (size_t)(lf - p) + 1;
    if (k < n && (p[k] == '\n' || (p[k] == '\r' && k + 1 < n && p[k + 1] == '\n')))
      return true;
    i = k;
  }
  return false;
}

static bool is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
         (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

_Static_assert(H1_MAX_HEADERS < 256, "h1_msg.first holds 1 + a field's index in a byte");

/* strncasecmp's answer (ASCII) for a literal name, without the call: a
 * byte differing from lit's matches only as the other case of a letter. */
static bool name_is(const char *name, size_t n, const char *lit, size_t lit_n) {
  if (n != lit_n)
    return false;
  for (size_t i = 0; i < n; i++) {
    unsigned c = (unsigned char)name[i], l = (unsigned char)lit[i];
    if (c != l && ((c | 0x20) != (l | 0x20) || (l | 0x20) - 'a' > 'z' - 'a'))
      return false;
  }
  return true;
}

/* Which known header name[0..n) is: by length first, as most differ at once. */
static h1_known known_header(const char *name, size_t n) {
  switch (n) {
  case 2: return name_is(name, n, "TE", 2) ? H1_H_TE : H1_H_OTHER;
  case 4: return name_is(name, n, "Host", 4) ? H1_H_HOST : H1_H_OTHER;
  case 6:
    if (name_is(name, n, "Expect", 6))
      return H1_H_EXPECT;
    return name_is(name, n, "Origin", 6) ? H1_H_ORIGIN : H1_H_OTHER;
  case 7:
    if (name_is(name, n, "Upgrade", 7))
      return H1_H_UPGRADE;
    return name_is(name, n, "Trailer", 7) ? H1_H_TRAILER : H1_H_OTHER;
  case 8: return name_is(name, n, "Trailers", 8) ? H1_H_TRAILERS : H1_H_OTHER;
  case 10:
    if (name_is(name, n, "Connection", 10))
      return H1_H_CONNECTION;
    return name_is(name, n, "Keep-Alive", 10) ? H1_H_KEEP_ALIVE : H1_H_OTHER;
  case 12: return name_is(name, n, "Content-Type", 12) ? H1_H_CONTENT_TYPE : H1_H_OTHER;
  case 14:
    if (name_is(name, n, "Content-Length", 14))
      return H1_H_CONTENT_LENGTH;
    return name_is(name, n, "Mcp-Session-Id", 14) ? H1_H_MCP_SESSION_ID : H1_H_OTHER;
  case 17: return name_is(name, n, "Transfer-Encoding", 17) ? H1_H_TRANSFER_ENCODING : H1_H_OTHER;
  default: return H1_H_OTHER;
  }
}

/* Hop-by-hop by name alone: as h1_hop_by_hop() with no Connection list. */
static bool known_hop(h1_known k, const char *name, size_t n) {
  switch (k) {
  case H1_H_TE: case H1_H_TRAILER: case H1_H_TRAILERS: case H1_H_UPGRADE: case H1_H_CONNECTION:
  case H1_H_KEEP_ALIVE: case H1_H_TRANSFER_ENCODING:
    return true;
  default:
    return n >= 6 && (name[0] | 0x20) == 'p' && strncasecmp(name, "Proxy-", 6) == 0;
  }
}

/* The fields picohttpparser found in a section that begins at off in the
 * buffer parsed (p), appended to the list. false: an obs-fold line. */
static bool add_fields(h1_msg *m, const struct phr_header *h, size_t nh, const char *p, size_t off) {
  for (size_t i = 0; i < nh; i++) {
    if (!h[i].name)
      return fail(m, H1_E_SYNTAX, "folded header line (obs-fold)");
    size_t vlen = h[i].value_len;
    while (vlen && (h[i].value[vlen - 1] == ' ' || h[i].value[vlen - 1] == '\t'))
      vlen--; /* RFC 9112 §5: trailing blanks are not part of the value */
    h1_field *f = &m->fields[m->n_fields++];
    f->name = (uint32_t)(off + (size_t)(h[i].name - p));
    f->name_len = (uint32_t)h[i].name_len;
    f->value = (uint32_t)(off + (size_t)(h[i].value - p));
    f->value_len = (uint32_t)vlen;
    h1_known k = known_header(h[i].name, h[i].name_len);
    f->known = (uint8_t)k;
    f->hop = known_hop(k, h[i].name, h[i].name_len);
    if (k != H1_H_OTHER && !m->first[k])
      m->first[k] = (uint8_t)m->n_fields; /* 1 + its index: n_fields counts it already */
  }
  return true;
}

/* "HTTP/1.d ddd" and a line end: a status line without a reason phrase
 * (RFC 9112 §4 makes it optional; picohttpparser 2.2.5 refuses it). Its
 * length, or 0. */
static size_t bare_status_line(const char *p, size_t n, int *minor_version, int *status) {
  if (n < 13 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
    return 0;
  for (size_t i = 9; i < 12; i++)
    if (p[i] < '0' || p[i] > '9')
      return 0;
  if (p[7] < '0' || p[7] > '9')
    return 0;
  size_t len = p[12] == '\n' ? 13 : p[12] == '\r' && n > 13 && p[13] == '\n' ? 14 : 0;
  if (len) {
    *minor_version = p[7] - '0';
    *status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  }
  return len;
}

/* picohttpparser over the head in p[0..n): its length in bytes, -2 (not
 * complete) or -1 (refused: *kind and m->why say why). On success the
 * request or status line and the fields are recorded as offsets into p. */
static int parse_head(h1_msg *m, const char *p, size_t n, h1_error *kind) {
  struct phr_header h[H1_MAX_HEADERS];
  size_t nh = H1_MAX_HEADERS;
  int r;
  *kind = H1_E_SYNTAX;
  m->why = "malformed message head";
  m->n_fields = 0;
  memset(m->first, 0, sizeof m->first);
  if (m->type == H1_REQUEST) {
    const char *method, *path;
    size_t method_len, path_len;
    r = phr_parse_request(p, n, &method, &method_len, &path, &path_len, &m->minor_version, h, &nh,
                          0);
    if (r > 0) {
      bool token = method_len > 0;
      for (size_t i = 0; token && i < method_len; i++)
        token = is_tchar((unsigned char)method[i]);
      if (!token || path_len == 0)
        r = -1;
      m->method = (uint32_t)(method - p);
      m->target = (uint32_t)(path - p);
      m->target_len = (uint32_t)path_len;
    }
  } else {
    const char *msg;
    size_t msg_len;
    r = phr_parse_response(p, n, &m->minor_version, &m->status, &msg, &msg_len, h, &nh, 0);
    if (r > 0) {
      m->reason = (uint32_t)(msg - p);
      m->reason_len = (uint32_t)msg_len;
    } else if (r == -1 && nh == 0) {
      size_t line = bare_status_line(p, n, &m->minor_version, &m->status);
      if (line) {
        nh = H1_MAX_HEADERS;
        r = phr_parse_headers(p + line, n - line, h, &nh, 0);
        if (r > 0)
          r += (int)line;
        m->reason = m->reason_len = 0;
      }
    }
  }
  if (r == -1 && nh == H1_MAX_HEADERS) /* stopped at one header too many */
    *kind = H1_E_HEAD_SIZE;
  if (r > 0 && !add_fields(m, h, nh, p, 0))
    r = -1;
  return r;
}

/* The trailer section gathered in text from m->section: as parse_head. */
static int parse_trailers(h1_msg *m, h1_error *kind) {
  struct phr_header h[H1_MAX_HEADERS];
  size_t max = H1_MAX_HEADERS - m->n_fields, nh = max;
  const char *p = m->text.p + m->section;
  int r = phr_parse_headers(p, m->text.n - m->section, h, &nh, 0);
  *kind = r == -1 && nh == max ? H1_E_HEAD_SIZE : H1_E_SYNTAX;
  m->why = "malformed trailer section";
  if (r > 0 && !add_fields(m, h, nh, p, m->section))
    r = -1;
  return r;
}

/* NUL-terminate the strings of the head (first = 0) or of the trailer
 * fields from first on, in text. */
static void terminate(h1_msg *m, size_t first) {
  char *t = m->text.p;
  if (first == 0) {
    if (m->type == H1_REQUEST) {
      t[m->target - 1] = '\0'; /* the space after the method */
      t[m->target + m->target_len] = '\0';
    } else if (m->reason_len) {
      t[m->reason + m->reason_len] = '\0';
    }
  }
  for (size_t i = first; i < m->n_fields; i++) {
    t[m->fields[i].name + m->fields[i].name_len] = '\0';
    t[m->fields[i].value + m->fields[i].value_len] = '\0';
  }
}

/* The elements of a list-valued header (RFC 9110 §5.6.1) in turn:
 * blanks around them dropped, empty ones skipped. */
static bool list_next(const char **s, const char **elem, size_t *elem_len) {
  const char *p = *s;
  while (*p == ',' || *p == ' ' || *p == '\t')
    p++;
  if (!*p)
    return false;
  const char *e = p;
  while (*e && *e != ',')
    e++;
  const char *t = e;
  while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
    t--;
  *elem = p;
  *elem_len = (size_t)(t - p);
  *s = e;
  return true;
}

static bool elem_is(const char *e, size_t n, const char *lit) {
  return n == strlen(lit) && strncasecmp(e, lit, n) == 0;
}

static bool parse_length(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 19) /* 19 digits always fit in 64 bits */
    return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return true;
}

/* The head is parsed and terminated: its framing, then on_head, then
 * where the body goes. false: refused or stopped (m->error). */
static bool head_parsed(h1_msg *m) {
  bool request = m->type == H1_REQUEST;
  bool te = false, te_chunked_last = false, conn_close = false, conn_keep = false;
  bool conn_upgrade = false, upgrade = false;
  unsigned te_chunked = 0;
  for (size_t i = 0; i < m->n_fields; i++) {
    const h1_field *f = &m->fields[i];
    const char *value = h1_str(m, f->value), *e;
    size_t n;
    switch (f->known) {
    case H1_H_CONTENT_LENGTH: {
      uint64_t length;
      if (!parse_length(value, f->value_len, &length))
        return fail(m, H1_E_SYNTAX, "invalid Content-Length");
      if (m->has_length && length != m->length)
        return fail(m, H1_E_SYNTAX, "differing Content-Length values");
      m->has_length = true;
      m->length = length;
      break;
    }
    case H1_H_TRANSFER_ENCODING:
      te = true;
      while (list_next(&value, &e, &n)) {
        te_chunked_last = elem_is(e, n, "chunked");
        te_chunked += te_chunked_last;
      }
      break;
    case H1_H_CONNECTION:
      while (list_next(&value, &e, &n)) {
        conn_close |= elem_is(e, n, "close");
        conn_keep |= elem_is(e, n, "keep-alive");
        conn_upgrade |= elem_is(e, n, "upgrade");
      }
      break;
    case H1_H_UPGRADE: upgrade = true; break;
    default: break;
    }
  }
  /* RFC 9112 §6.1 and §6.3: a message with both is refused (a front end
   * and a back end could each read one), and so is chunked applied twice
   * or a request whose last coding is not chunked (its length unknown);
   * such a response runs until the close. */
  if (te && m->has_length)
    return fail(m, H1_E_SYNTAX, "both Content-Length and Transfer-Encoding");
  if (te_chunked > 1 || (request && te && !te_chunked_last))
    return fail(m, H1_E_SYNTAX, "unsupported Transfer-Encoding");
  m->chunked = te && te_chunked_last;
  /* An Upgrade (or CONNECT) leaves HTTP after the head: the proxy speaks
   * plain HTTP only, so refuse it before the owner acts on the head (it
   * would answer an Expect, or pass a 101 on to the client). */
  bool leaves = request ? (upgrade && conn_upgrade) || strcmp(h1_method(m), "CONNECT") == 0
                        : m->status == 101;
  if (leaves)
    return fail(m, H1_E_SYNTAX, "protocol upgrade not supported");
  if (!request && m->status < 100)
    return fail(m, H1_E_SYNTAX, "invalid status code");
  m->keep_alive = m->minor_version >= 1 ? !conn_close : conn_keep && !conn_close;
  m->head_done = true;
  int rc = m->hooks->on_head ? m->hooks->on_head(m->owner, m) : 0;
  if (rc < 0)
    return fail(m, H1_E_ABORTED, NULL);
  /* 1xx, 204 and 304 answers end at their head whatever their framing
   * headers say (RFC 9112 §6.3). */
  unsigned status = (unsigned)m->status;
  bool no_body = rc == 1 || (!request && (status / 100 == 1 || status == 204 || status == 304));
  if (no_body || (!m->chunked && !m->has_length && request) || (m->has_length && m->length == 0)) {
    m->state = H1_S_DONE;
  } else if (m->chunked) {
    m->state = H1_S_CHUNK_SIZE;
  } else if (m->has_length) {
    m->state = H1_S_LENGTH;
    m->left = m->length;
  } else {
    m->state = H1_S_CLOSE; /* a response that ends with the connection */
    m->keep_alive = false;
  }
  return true;
}

/* Bytes of a head: gathered and parsed as the top of this file says.
 * Returns the bytes used. */
static size_t feed_head(h1_msg *m, const char *data, size_t len) {
  size_t used = 0;
  if (!m->started) { /* blank lines before a message are skipped */
    while (used < len && (data[used] == '\r' || data[used] == '\n'))
      used++;
    if (used == len)
      return used;
    m->started = true;
    data += used;
    len -= used;
  }
  size_t before = m->text.n, room = H1_HEAD_MAX_BYTES - before;
  size_t take = len < room ? len : room;
  h1_error kind = H1_E_SYNTAX;
  int r;
  if (before == 0) {
    r = parse_head(m, data, take, &kind);
    m->end_in = r > 0 || has_blank_line(data, take, 0);
    if (r == -1 && !m->end_in)
      r = -2; /* refused once its end is in: see the top of this file */
    /* kept: the head's bytes, or all that came while it is not complete */
    if (r != -1 && !mcpr__buf_add(&m->text, data, r > 0 ? (size_t)r : take)) {
      fail(m, H1_E_NOMEM, NULL);
      return used;
    }
  } else {
    if (!mcpr__buf_add(&m->text, data, take)) {
      fail(m, H1_E_NOMEM, NULL);
      return used;
    }
    if (!m->end_in)
      m->end_in = has_blank_line(m->text.p, m->text.n, before);
    r = m->end_in ? parse_head(m, m->text.p, m->text.n, &kind) : -2;
    if (r > 0) {
      m->text.n = (size_t)r;
      m->text.p[r] = '\0';
    }
  }
  if (r == -2 && m->text.n >= H1_HEAD_MAX_BYTES) { /* the limit: refused either way */
    r = parse_head(m, m->text.p, m->text.n, &kind);
    if (r != -1)
      fail(m, H1_E_HEAD_SIZE, NULL);
  }
  if (r == -1)
    fail(m, kind, m->why);
  if (m->error)
    return used + take;
  if (r == -2)
    return used + take;
  terminate(m, 0);
  head_parsed(m);
  return used + (size_t)r - before;
}

/* Bytes of a trailer section (its first byte is not a line end). */
static size_t feed_trailers(h1_msg *m, const char *data, size_t len) {
  size_t before = m->text.n, room = H1_HEAD_MAX_BYTES - before;
  size_t take = len < room ? len : room;
  if (!mcpr__buf_add(&m->text, data, take)) {
    fail(m, H1_E_NOMEM, NULL);
    return 0;
  }
  if (!m->end_in)
    m->end_in = has_blank_line(m->text.p + m->section, m->text.n - m->section, before - m->section);
  h1_error kind = H1_E_SYNTAX;
  int r = m->end_in ? parse_trailers(m, &kind) : -2;
  if (r == -2 && m->text.n >= H1_HEAD_MAX_BYTES) {
    r = parse_trailers(m, &kind);
    if (r != -1)
      fail(m, H1_E_HEAD_SIZE, NULL);
  }
  if (r == -1)
    fail(m, kind, m->why);
  if (m->error || r <= 0)
    return take;
  size_t first = m->n_fields;
  while (first > 0 && m->fields[first - 1].name >= m->section)
    first--;
  m->text.n = m->section + (size_t)r;
  terminate(m, first);
  m->state = H1_S_DONE;
  return m->section + (size_t)r - before;
}

static bool deliver(h1_msg *m, const char *p, size_t n) {
  if (n && m->hooks->on_body && m->hooks->on_body(m->owner, p, n) != 0)
    return fail(m, H1_E_ABORTED, NULL);
  return true;
}

static int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c |= 0x20;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A chunk's size line ended. */
static void size_line_done(h1_msg *m) {
  m->hex_digits = 0;
  m->state = m->left ? H1_S_CHUNK_DATA : H1_S_TRAILERS;
}

/* Bytes of a body: by its length, until the close, or chunk by chunk
 * (RFC 9112 §7.1; a lone LF ends a line as well as CR LF, as in heads).
 * Stops at the message's end or an error. */
static size_t feed_body(h1_msg *m, const char *data, size_t len) {
  size_t i = 0;
  while (i < len && !m->error && m->state != H1_S_DONE) {
    unsigned char c = (unsigned char)data[i];
    const char *bad = NULL; /* why this byte is refused */
    switch (m->state) {
    case H1_S_LENGTH:
    case H1_S_CHUNK_DATA:
    case H1_S_CLOSE: {
      size_t n = len - i;
      if (m->state != H1_S_CLOSE && n > m->left)
        n = (size_t)m->left;
      if (!deliver(m, data + i, n))
        return i + n;
      i += n;
      if (m->state != H1_S_CLOSE) {
        m->left -= n;
        if (!m->left)
          m->state = m->state == H1_S_LENGTH ? H1_S_DONE : H1_S_DATA_CR;
      }
      break;
    }
    case H1_S_CHUNK_SIZE: {
      int v = hex_value(c);
      if (v >= 0 && (m->left >> 60) == 0) {
        m->left = m->left * 16 + (unsigned)v;
        m->hex_digits++;
        i++;
      } else if (v >= 0) {
        bad = "chunk size too large";
      } else if (m->hex_digits && (c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
        m->state = H1_S_CHUNK_EXT;
      } else {
        bad = "invalid chunk size";
      }
      break;
    }
    case H1_S_CHUNK_EXT: /* extensions are skipped, control bytes refused */
      if (c == '\n')
        size_line_done(m);
      else if (c == '\r')
        m->state = H1_S_CHUNK_LF;
      else if ((c < 0x20 && c != '\t') || c == 0x7f)
        bad = "invalid chunk extension";
      i++;
      break;
    case H1_S_CHUNK_LF:
      if (c == '\n')
        size_line_done(m);
      else
        bad = "malformed chunk";
      i++;
      break;
    case H1_S_DATA_CR:
    case H1_S_DATA_LF:
      if (c == '\r' && m->state == H1_S_DATA_CR) {
        m->state = H1_S_DATA_LF;
      } else if (c == '\n') {
        m->state = H1_S_CHUNK_SIZE;
        m->left = 0;
      } else {
        bad = "malformed chunk";
      }
      i++;
      break;
    case H1_S_TRAILERS:
      if (c == '\r' || c == '\n') {
        m->state = c == '\n' ? H1_S_DONE : H1_S_TRAILERS_LF;
        i++;
      } else {
        m->section = m->text.n;
        m->end_in = false;
        m->state = H1_S_TRAILER_LINES;
      }
      break;
    case H1_S_TRAILERS_LF:
      if (c == '\n')
        m->state = H1_S_DONE;
      else
        bad = "malformed chunk";
      i++;
      break;
    case H1_S_TRAILER_LINES: i += feed_trailers(m, data + i, len - i); break;
    case H1_S_HEAD:
    case H1_S_DONE: return i;
    }
    if (bad)
      fail(m, H1_E_SYNTAX, bad);
  }
  return i;
}

static void clear_message(h1_msg *m) {
  m->text.n = 0;
  m->section = 0;
  m->end_in = false;
  m->method = m->target = m->target_len = m->reason = m->reason_len = 0;
  m->n_fields = 0;
  memset(m->first, 0, sizeof m->first);
  m->status = m->minor_version = 0;
  m->state = H1_S_HEAD;
  m->left = 0;
  m->hex_digits = 0;
  m->started = m->head_done = m->done = false;
  m->has_length = m->chunked = m->keep_alive = false;
  m->length = 0;
}

void h1_init(h1_msg *m, h1_type type, const h1_hooks *hooks, void *owner) {
  memset(m, 0, sizeof *m);
  m->type = type;
  m->hooks = hooks;
  m->owner = owner;
  clear_message(m);
}

void h1_next(h1_msg *m) { clear_message(m); }

void h1_free(h1_msg *m) { mcpr__buf_release(&m->text); }

size_t h1_feed(h1_msg *m, const char *data, size_t len) {
  if (m->error || m->done || len == 0)
    return 0;
  size_t used = 0;
  if (m->state == H1_S_HEAD) {
    used = feed_head(m, data, len);
    if (m->error || m->state == H1_S_HEAD) {
      return used;
    }
  }
  used += feed_body(m, data + used, len - used);
  if (!m->error && m->state == H1_S_DONE)
    m->done = true; /* one message per h1_feed(): the owner acts on it first */
  return used;
}

void h1_eof(h1_msg *m) {
  if (m->error || m->done || !m->started)
    return;
  h1_error kind;
  switch (m->state) {
  case H1_S_CLOSE:
    m->state = H1_S_DONE;
    m->done = true;
    return;
  case H1_S_HEAD: /* malformed, or cut short */
    if (parse_head(m, m->text.p, m->text.n, &kind) == -1)
      fail(m, kind, m->why);
    break;
  case H1_S_TRAILER_LINES:
    if (parse_trailers(m, &kind) == -1)
      fail(m, kind, m->why);
    break;
  default: break;
  }
  if (!m->error)
    fail(m, H1_E_EOF, NULL);
}

const char *h1_target(const h1_msg *m) {
  return m->text.p && m->target_len ? m->text.p + m->target : "";
}

const char *h1_reason(const h1_msg *m) {
  return m->text.p && m->reason_len ? m->text.p + m->reason : "";
}

const char *h1_method(const h1_msg *m) {
  return m->type == H1_REQUEST && m->text.p && m->target_len ? m->text.p + m->method : "";
}

int h1_status(const h1_msg *m) { return m->status; }

const char *h1_header(const h1_msg *m, const char *name) {
  size_t n = strlen(name);
  h1_known k = known_header(name, n);
  if (k != H1_H_OTHER)
    return h1_known_header(m, k);
  for (size_t i = 0; i < m->n_fields; i++) {
    const h1_field *f = &m->fields[i];
    if (f->name_len == n && strncasecmp(m->text.p + f->name, name, n) == 0)
      return m->text.p + f->value;
  }
  return NULL;
}

bool h1_keep_alive(const h1_msg *m) { return m->keep_alive; }

bool h1_version_1_0(const h1_msg *m) { return m->minor_version == 0; }

bool h1_has_length(const h1_msg *m, uint64_t *length) {
  if (length)
    *length = m->length;
  return m->has_length;
}

bool h1_chunked(const h1_msg *m) { return m->chunked; }

const char *h1_error_text(const h1_msg *m) {
  switch (m->error) {
  case H1_OK: return "no error";
  case H1_E_SYNTAX: return m->why ? m->why : "malformed message";
  case H1_E_HEAD_SIZE: return "request head too large";
  case H1_E_EOF: return "connection closed inside a message";
  case H1_E_NOMEM: return "out of memory";
  case H1_E_ABORTED: return "stopped";
  }
  return "unknown error";
}

static bool in_connection_list(const char *name, size_t n, const char *connection_value) {
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
  return false;
}

bool h1_field_hop_by_hop(const h1_msg *m, const h1_field *f) {
  if (f->hop)
    return true;
  const char *conn = h1_known_header(m, H1_H_CONNECTION);
  return conn && in_connection_list(h1_str(m, f->name), f->name_len, conn);
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
  return connection_value && in_connection_list(name, n, connection_value);
}

/*
 * http1.h — one HTTP/1.x message at a time off a byte stream, for both
 * sides of the proxy (requests from clients, responses from the upstream).
 *
 * The head is parsed by picohttpparser (picohttpparser.h: Debian's
 * libh2o-evloop, loaded on first use) in a copy kept here, whose strings
 * are NUL-terminated in place; the framing rules (Content-Length,
 * Transfer-Encoding, no-body answers, keep-alive, upgrades) and the
 * chunked decoding are http1.c's own. The body is handed on as it is
 * decoded (chunked framing removed), so nothing of a body is held here.
 *
 *   h1_msg m;
 *   h1_init(&m, H1_REQUEST, &hooks, owner);
 *   n = h1_feed(&m, data, len);  // stops after a whole message or an error
 *   if (m.error) ...             // h1_error_text(&m)
 *   if (m.done) { ...; h1_next(&m); } // then feed data + n onwards
 *   h1_free(&m);
 *
 * Hooks run inside h1_feed(); a hook returning non-zero stops the message
 * with H1_E_ABORTED (the owner decided to drop it; feed no more). The
 * caller's bytes are only read, never written.
 */
#ifndef MCPR_PROXY_HTTP1_H
#define MCPR_PROXY_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Limits on what a message's head may hold (a peer over them gets 431). */
#define H1_HEAD_MAX_BYTES (64 * 1024)
#define H1_MAX_HEADERS 128

typedef enum h1_error {
  H1_OK = 0,
  H1_E_SYNTAX,    /* not HTTP/1.x, or a framing error (see h1_error_text) */
  H1_E_HEAD_SIZE, /* the head is over H1_HEAD_MAX_BYTES or H1_MAX_HEADERS */
  H1_E_EOF,       /* the stream ended inside a message */
  H1_E_NOMEM,
  H1_E_ABORTED, /* a hook said stop */
} h1_error;

typedef enum h1_type { H1_REQUEST, H1_RESPONSE } h1_type;

/* Where a message is (h1_msg.state). */
typedef enum h1_state {
  H1_S_HEAD,        /* gathering the head */
  H1_S_LENGTH,      /* a body of Content-Length bytes (left in .left) */
  H1_S_CLOSE,       /* a response body that runs until the close */
  H1_S_CHUNK_SIZE,  /* chunked: the size line's hex digits */
  H1_S_CHUNK_EXT,   /* the rest of the size line (extensions) */
  H1_S_CHUNK_LF,    /* a CR ended the size line: its LF */
  H1_S_CHUNK_DATA,  /* .left bytes of a chunk */
  H1_S_DATA_CR,     /* the CRLF after a chunk's data */
  H1_S_DATA_LF,
  H1_S_TRAILERS,    /* after the last chunk: a blank line, or trailers */
  H1_S_TRAILERS_LF, /* a CR began the blank line: its LF */
  H1_S_TRAILER_LINES, /* gathering the trailer section */
  H1_S_DONE,
} h1_state;

typedef struct h1_msg h1_msg;

typedef struct h1_hooks {
  /* The head is complete. Return 0 to go on, 1 (responses only) to read no
   * body (the answer to a HEAD request), -1 to stop. */
  int (*on_head)(void *owner, h1_msg *m);
  /* A piece of the decoded body. Non-zero: stop. */
  int (*on_body)(void *owner, const char *data, size_t len);
} h1_hooks;

/* The headers the framing and the proxy read, recognized once per field
 * as the head is parsed (names compared once, not at every look-up). */
typedef enum h1_known {
  H1_H_OTHER = 0,
  H1_H_CONTENT_LENGTH,
  H1_H_TRANSFER_ENCODING,
  H1_H_CONNECTION,
  H1_H_UPGRADE,
  H1_H_CONTENT_TYPE,
  H1_H_MCP_SESSION_ID,
  H1_H_EXPECT,
  H1_H_ORIGIN,
  H1_H_HOST,
  H1_H_TE,
  H1_H_TRAILER,
  H1_H_TRAILERS,
  H1_H_KEEP_ALIVE,
  H1_H_COUNT
} h1_known;

typedef struct h1_field {
  uint32_t name, name_len, value, value_len; /* offsets into text */
  uint8_t known; /* h1_known */
  bool hop;      /* hop-by-hop by its name (Connection's list aside) */
} h1_field;

struct h1_msg {
  h1_type type;
  const h1_hooks *hooks;
  void *owner;
  /* The head as received (then the trailer section), at most
   * H1_HEAD_MAX_BYTES; once parsed, the method, target, reason, names and
   * values are NUL-terminated in place (over the space, colon or line end
   * that followed them). */
  mcpr__buf text;
  size_t section; /* where the trailer section begins in text */
  bool end_in;    /* the blank line ending the head (or trailers) is in text */
  uint32_t method, target, target_len, reason, reason_len;
  h1_field fields[H1_MAX_HEADERS];
  size_t n_fields;
  uint8_t first[H1_H_COUNT]; /* 1 + the index of the first field of each kind; 0: none */
  int status, minor_version;
  h1_state state;
  uint64_t left;  /* body bytes left: of the Content-Length, or the chunk */
  unsigned hex_digits; /* of the chunk size line being read */
  bool started;   /* a byte of this message was seen */
  bool head_done; /* on_head ran */
  bool done;      /* the whole message was read; h1_next() before more */
  bool has_length, chunked; /* the body's framing, read at the head */
  bool keep_alive; /* the connection may carry another message after this */
  uint64_t length;
  h1_error error;
  const char *why; /* for H1_E_SYNTAX: static text */
};

/* Load the parser's library (picohttpparser.h); false with *why (static
 * text) when it is missing. The proxy calls it before it listens; h1_feed
 * loads it too, and answers H1_E_SYNTAX for every head without it. */
bool h1_load(const char **why);

void h1_init(h1_msg *m, h1_type type, const h1_hooks *hooks, void *owner);
/* Ready for the next message on the same connection (after done). */
void h1_next(h1_msg *m);
void h1_free(h1_msg *m);

/* Parse up to len bytes; returns how many were used. Stops early after a
 * whole message (m->done) or on an error (m->error). */
size_t h1_feed(h1_msg *m, const char *data, size_t len);
/* The peer closed: completes a body that runs until the close, else an
 * H1_E_EOF error when a message was under way. */
void h1_eof(h1_msg *m);

/* Message properties, valid once the head is done. */
static inline const char *h1_str(const h1_msg *m, uint32_t off) { return m->text.p + off; }
const char *h1_target(const h1_msg *m);
const char *h1_reason(const h1_msg *m);
const char *h1_method(const h1_msg *m);
int h1_status(const h1_msg *m);
/* The first header of that name (case-insensitive), or NULL. */
const char *h1_header(const h1_msg *m, const char *name);
/* The same for a header recognized at parse time (borrowed, or NULL). */
static inline const char *h1_known_header(const h1_msg *m, h1_known h) {
  return m->first[h] ? m->text.p + m->fields[m->first[h] - 1].value : NULL;
}
bool h1_keep_alive(const h1_msg *m);
/* The connection carries no other message after this one (the owner saw
 * bytes past it that it will not read). */
static inline void h1_no_reuse(h1_msg *m) { m->keep_alive = false; }
bool h1_version_1_0(const h1_msg *m);
/* The body's framing as sent: a Content-Length (length set), chunked, or
 * neither (a response read until the close, or no body). */
bool h1_has_length(const h1_msg *m, uint64_t *length);
bool h1_chunked(const h1_msg *m);
const char *h1_error_text(const h1_msg *m);

/* Hop-by-hop header (RFC 9110 §7.6.1), including those the message's own
 * Connection header lists. */
bool h1_hop_by_hop(const char *name, const char *connection_value);
/* h1_hop_by_hop() of one of m's fields, with m's Connection header. */
bool h1_field_hop_by_hop(const h1_msg *m, const h1_field *f);

#endif

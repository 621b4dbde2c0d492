/*
 * http1.h — one HTTP/1.x message at a time off a byte stream, for both
 * sides of the proxy (requests from clients, responses from the upstream).
 *
 * The byte-level parsing is Node's http-parser (Debian's libhttp-parser);
 * this wrapper keeps what the proxy needs of a message — method or status,
 * the request target, the reason phrase and the header list, NUL-terminated
 * and bounded — and hands the body on as it is decoded (chunked framing
 * removed), so nothing of a body is held here.
 *
 *   h1_msg m;
 *   h1_init(&m, HTTP_REQUEST, &hooks, owner);
 *   n = h1_feed(&m, data, len);  // stops after a whole message or an error
 *   if (m.error) ...             // h1_error_text(&m)
 *   if (m.done) { ...; h1_next(&m); } // then feed data + n onwards
 *   h1_free(&m);
 *
 * Hooks run inside h1_feed(); a hook returning non-zero stops the message
 * with H1_E_ABORTED (the owner decided to drop it; feed no more).
 */
#ifndef MCPR_PROXY_HTTP1_H
#define MCPR_PROXY_HTTP1_H

#include <http_parser.h>
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

typedef struct h1_msg h1_msg;

typedef struct h1_hooks {
  /* The head is complete. Return 0 to go on, 1 (responses only) to read no
   * body (the answer to a HEAD request), -1 to stop. */
  int (*on_head)(void *owner, h1_msg *m);
  /* A piece of the decoded body. Non-zero: stop. */
  int (*on_body)(void *owner, const char *data, size_t len);
} h1_hooks;

typedef struct h1_field {
  uint32_t name, name_len, value, value_len; /* offsets into text */
} h1_field;

struct h1_msg {
  http_parser hp;
  const h1_hooks *hooks;
  void *owner;
  mcpr__buf text; /* target or reason, then name\0value\0 per header */
  uint32_t target, target_len, reason, reason_len;
  h1_field fields[H1_MAX_HEADERS];
  size_t n_fields;
  int last; /* 0: nothing yet, 1: in a name, 2: in a value */
  size_t head_bytes;
  bool started;   /* a byte of this message was seen */
  bool head_done; /* on_head ran */
  bool done;      /* the whole message was read; h1_next() before more */
  bool has_length, chunked; /* the body's framing, read at the head */
  uint64_t length;
  h1_error error;
  enum http_errno hpe; /* for H1_E_SYNTAX */
};

void h1_init(h1_msg *m, enum http_parser_type type, const h1_hooks *hooks, void *owner);
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
bool h1_keep_alive(const h1_msg *m);
bool h1_version_1_0(const h1_msg *m);
/* The body's framing as sent: a Content-Length (length set), chunked, or
 * neither (a response read until the close, or no body). */
bool h1_has_length(const h1_msg *m, uint64_t *length);
bool h1_chunked(const h1_msg *m);
const char *h1_error_text(const h1_msg *m);

/* Hop-by-hop header (RFC 9110 §7.6.1), including those the message's own
 * Connection header lists. */
bool h1_hop_by_hop(const char *name, const char *connection_value);

#endif

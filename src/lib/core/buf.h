/*
 * buf.h — internal: the library's one growing byte buffer (as curl's
 * dynbuf). Always NUL-terminated once anything was added, so text can be
 * handed on as a C string. Callers bound what they add (the TOML parser by
 * its input cap, the HTTP layer by max_body_bytes).
 */
#ifndef MCPR__CORE_BUF_H
#define MCPR__CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct mcpr__buf {
  char *p; /* NULL until the first add */
  size_t n, cap;
} mcpr__buf;

/* The growing part of mcpr__buf_add (buf.c). */
bool mcpr__buf_add_grow(mcpr__buf *b, const void *data, size_t n);

/* Append n bytes (n may be 0: then p holds at least ""). false: out of
 * memory, and the buffer is as it was. Inline when there is room: the
 * proxy adds every piece of every head this way. */
static inline bool mcpr__buf_add(mcpr__buf *b, const void *data, size_t n) {
  if (b->n + n + 1 > b->cap)
    return mcpr__buf_add_grow(b, data, n);
  if (n)
    memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = '\0';
  return true;
}
/* Free what it holds and empty it. */
void mcpr__buf_release(mcpr__buf *b);

#endif

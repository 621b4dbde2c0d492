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

typedef struct mcpr__buf {
  char *p; /* NULL until the first add */
  size_t n, cap;
} mcpr__buf;

/* Append n bytes (n may be 0: then p holds at least ""). false: out of
 * memory, and the buffer is as it was. */
bool mcpr__buf_add(mcpr__buf *b, const void *data, size_t n);
/* Free what it holds and empty it. */
void mcpr__buf_release(mcpr__buf *b);

#endif

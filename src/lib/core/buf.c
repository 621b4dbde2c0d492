/* buf.c — see buf.h. */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

bool mcpr__buf_add_grow(mcpr__buf *b, const void *data, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q)
      return false;
    b->p = q;
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = '\0';
  return true;
}

void mcpr__buf_release(mcpr__buf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "query/pool.h"

#define CHUNK_BYTES (64 * 1024)

typedef struct chunk {
  struct chunk *next;
  size_t used, size;
  max_align_t data[];
} chunk;

struct mcpr__query_pool {
  chunk *head;
};

mcpr__query_pool *mcpr__pool_new(void) { return calloc(1, sizeof(mcpr__query_pool)); }

void mcpr__pool_free(mcpr__query_pool *pool) {
  if (!pool)
    return;
  chunk *c = pool->head;
  while (c) {
    chunk *next = c->next;
    free(c);
    c = next;
  }
  free(pool);
}

void *mcpr__pool_alloc(mcpr__query_pool *pool, size_t size) {
  size_t align = sizeof(max_align_t);
  size = (size + align - 1) / align * align;
  chunk *c = pool->head;
  if (!c || c->size - c->used < size) {
    size_t want = size > CHUNK_BYTES ? size : CHUNK_BYTES;
    chunk *n = malloc(sizeof *n + want);
    if (!n)
      return NULL;
    n->used = 0;
    n->size = want;
    /* A big allocation gets its own chunk behind the current one, so the
     * current chunk's free space is not wasted. */
    if (c && want > CHUNK_BYTES) {
      n->next = c->next;
      c->next = n;
    } else {
      n->next = c;
      pool->head = n;
    }
    c = n;
  }
  void *p = (char *)c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

const char *mcpr__pool_strndup(mcpr__query_pool *pool, const char *s, size_t len, int *oom) {
  if (!s)
    return NULL;
  char *p = mcpr__pool_alloc(pool, len + 1);
  if (!p) {
    *oom = 1;
    return NULL;
  }
  memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

const char *mcpr__pool_strdup(mcpr__query_pool *pool, const char *s, int *oom) {
  return s ? mcpr__pool_strndup(pool, s, strlen(s), oom) : NULL;
}

void *mcpr__array_push(void **items, size_t *count, size_t *cap, size_t elem_size) {
  if (*count == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / elem_size)
      return NULL;
    void *n = realloc(*items, ncap * elem_size);
    if (!n)
      return NULL;
    *items = n;
    *cap = ncap;
  }
  void *slot = (char *)*items + *count * elem_size;
  memset(slot, 0, elem_size);
  (*count)++;
  return slot;
}

/*
 * pool.h — internal: the memory behind one query result set. Rows arrays
 * grow with mcpr__pool_grow(); strings are copied into chunks that are
 * freed together by mcpr__pool_free(), so releasing a result set is two
 * calls however many rows it has.
 */
#ifndef MCPR__QUERY_POOL_H
#define MCPR__QUERY_POOL_H

#include <stddef.h>

#include "mcpr/query.h"

mcpr__query_pool *mcpr__pool_new(void);
/* NULL is a no-op. */
void mcpr__pool_free(mcpr__query_pool *pool);
/* Copy len bytes of s plus a NUL into the pool; NULL s gives NULL. Returns
 * NULL with *oom set when out of memory. */
const char *mcpr__pool_strndup(mcpr__query_pool *pool, const char *s, size_t len, int *oom);
const char *mcpr__pool_strdup(mcpr__query_pool *pool, const char *s, int *oom);
/* Zeroed memory owned by the pool, aligned for any row type. */
void *mcpr__pool_alloc(mcpr__query_pool *pool, size_t size);

/*
 * Make room for one more element in a malloc'd array (*items, *count,
 * *cap) of elem_size bytes; returns a pointer to the new zeroed slot
 * (already counted) or NULL when out of memory.
 */
void *mcpr__array_push(void **items, size_t *count, size_t *cap, size_t elem_size);

#endif

/*
 * arrays.h — internal to the PostgreSQL backend: columns sent as one
 * array parameter each ("{1,2,NULL}", '{"a","b\"c"}'), the form every
 * statement that writes many rows at once takes (unnest($n::type[])).
 */
#ifndef MCPR__PG_ARRAYS_H
#define MCPR__PG_ARRAYS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"

static inline bool mcpr__pg_arr_start(mcpr__buf *b) {
  b->n = 0;
  return mcpr__buf_add(b, "{", 1);
}

static inline bool mcpr__pg_arr_sep(mcpr__buf *b) {
  return b->n <= 1 || mcpr__buf_add(b, ",", 1);
}

/* v NULL: a NULL element. */
static inline bool mcpr__pg_arr_text(mcpr__buf *b, const char *v) {
  if (!mcpr__pg_arr_sep(b))
    return false;
  if (!v)
    return mcpr__buf_add(b, "NULL", 4);
  if (!mcpr__buf_add(b, "\"", 1))
    return false;
  const char *run = v;
  for (const char *p = v; *p; p++) {
    if (*p == '"' || *p == '\\') {
      if (!mcpr__buf_add(b, run, (size_t)(p - run)) || !mcpr__buf_add(b, "\\", 1))
        return false;
      run = p;
    }
  }
  return mcpr__buf_add(b, run, strlen(run)) && mcpr__buf_add(b, "\"", 1);
}

/* nullable: a negative v is a NULL element. */
static inline bool mcpr__pg_arr_int(mcpr__buf *b, int64_t v, bool nullable) {
  if (!mcpr__pg_arr_sep(b))
    return false;
  if (nullable && v < 0)
    return mcpr__buf_add(b, "NULL", 4);
  char num[24];
  int n = snprintf(num, sizeof num, "%lld", (long long)v);
  return mcpr__buf_add(b, num, (size_t)n);
}

static inline bool mcpr__pg_arr_end(mcpr__buf *b) { return mcpr__buf_add(b, "}", 1); }

#endif

/*
 * sqlb.h — internal to the SQLite backend's read sides (query.c for the
 * stores this mcpr writes, query_v05.c for the original's 0.5 layout):
 * the statement builder, the column readers and the row loops both use.
 *
 * A statement is assembled from fixed fragments, one per filter that is
 * set, and every value is a bound parameter: no user text ever reaches
 * the SQL. The same builder output is run and, for the plan test and
 * docs/query-plans.md, explained — so the plans shown are those of the
 * SQL that runs. Header-only (static inline): each read side gets its own
 * copy of what it uses.
 */
#ifndef MCPR__SQLITE_SQLB_H
#define MCPR__SQLITE_SQLB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/sqlite/db.h"
#include "backend/sqlite/query.h"
#include "query/backend.h"

#define SQL_MAX 2048
#define PARAMS_MAX 16

/* ---------- statement builder ---------- */

typedef struct param {
  int is_text;
  int64_t i;
  const char *s;
} param;

typedef struct sqlb {
  char sql[SQL_MAX];
  size_t len;
  int overflow;
  param params[PARAMS_MAX];
  int nparams;
  char prefix_hi[1100]; /* upper bound of a session prefix range */
} sqlb;

static inline void sb_init(sqlb *b) {
  b->len = 0;
  b->sql[0] = '\0';
  b->overflow = 0;
  b->nparams = 0;
}

static inline void sb_add(sqlb *b, const char *frag) {
  size_t n = strlen(frag);
  if (b->len + n + 1 > sizeof b->sql) {
    b->overflow = 1;
    return;
  }
  memcpy(b->sql + b->len, frag, n + 1);
  b->len += n;
}

/* frag contains exactly one '?' for value. */
static inline void sb_text(sqlb *b, const char *frag, const char *value) {
  sb_add(b, frag);
  if (b->nparams == PARAMS_MAX) {
    b->overflow = 1;
    return;
  }
  b->params[b->nparams++] = (param){1, 0, value};
}

static inline void sb_int(sqlb *b, const char *frag, int64_t value) {
  sb_add(b, frag);
  if (b->nparams == PARAMS_MAX) {
    b->overflow = 1;
    return;
  }
  b->params[b->nparams++] = (param){0, value, NULL};
}

static inline mcpr_status sb_prepare(sqlite3 *db, sqlb *b, sqlite3_stmt **st,
                                     mcpr_error *err) {
  *st = NULL;
  if (b->overflow)
    return mcpr_error_set(err, MCPR_EINVAL, "internal: query too long");
  int rc = sqlite3_prepare_v2(db, b->sql, (int)b->len + 1, st, NULL);
  if (rc != SQLITE_OK)
    return mcpr__db_error(db, rc, err, "preparing a query");
  for (int i = 0; i < b->nparams; i++) {
    if (b->params[i].is_text)
      rc = sqlite3_bind_text(*st, i + 1, b->params[i].s, -1, SQLITE_TRANSIENT);
    else
      rc = sqlite3_bind_int64(*st, i + 1, b->params[i].i);
    if (rc != SQLITE_OK) {
      mcpr_status s = mcpr__db_error(db, rc, err, "binding a query parameter");
      sqlite3_finalize(*st);
      *st = NULL;
      return s;
    }
  }
  return MCPR_OK;
}

/*
 * session_id LIKE 'prefix%' without LIKE's wildcards and case folding, and
 * with an index: session_id >= prefix AND session_id < hi, where hi is the
 * prefix with its last byte incremented (dropping trailing 0xFF bytes;
 * none left → no upper bound). SQLite compares TEXT bytewise (BINARY).
 */
static inline void sb_prefix(sqlb *b, const char *column_ge, const char *column_lt,
                      const char *prefix) {
  size_t n = strlen(prefix);
  if (n >= sizeof b->prefix_hi) {
    b->overflow = 1;
    return;
  }
  memcpy(b->prefix_hi, prefix, n + 1);
  while (n > 0 && (unsigned char)b->prefix_hi[n - 1] == 0xFF)
    b->prefix_hi[--n] = '\0';
  sb_text(b, column_ge, prefix);
  if (n > 0) {
    b->prefix_hi[n - 1] = (char)((unsigned char)b->prefix_hi[n - 1] + 1);
    sb_text(b, column_lt, b->prefix_hi);
  }
}

/* ---------- column readers ---------- */

static inline const char *col_text(sqlite3_stmt *st, int i, mcpr__query_pool *pool,
                                   int *oom) {
  const unsigned char *t = sqlite3_column_text(st, i);
  if (!t)
    return NULL;
  return mcpr__pool_strndup(pool, (const char *)t, (size_t)sqlite3_column_bytes(st, i), oom);
}

static inline int64_t col_int(sqlite3_stmt *st, int i) {
  return sqlite3_column_type(st, i) == SQLITE_NULL ? MCPR_QUERY_NULL
                                                   : sqlite3_column_int64(st, i);
}

static inline mcpr_status step_error(sqlite3 *db, int rc, mcpr_error *err) {
  return mcpr__db_error(db, rc, err, "reading the store");
}

static inline mcpr_status oom_error(mcpr_error *err) {
  return mcpr_error_set(err, MCPR_ENOMEM, "out of memory reading the store");
}

/* ---------- running a statement ---------- */

/* Called on each result row; nonzero stops the statement as out of memory. */
typedef int (*row_fn)(void *ctx, sqlite3_stmt *st);

/* Prepare b and call fn on every row it yields. */
static inline mcpr_status each_row(sqlite3 *db, sqlb *b, row_fn fn, void *ctx,
                                   mcpr_error *err) {
  sqlite3_stmt *st;
  mcpr_status s = sb_prepare(db, b, &st, err);
  if (s != MCPR_OK)
    return s;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (fn(ctx, st) != 0) {
      sqlite3_finalize(st);
      return oom_error(err);
    }
  }
  if (rc != SQLITE_DONE)
    s = step_error(db, rc, err);
  sqlite3_finalize(st);
  return s;
}

/* Fill one result row (zeroed) from the statement's columns; strings go
 * to pool and set *oom when it is out of memory. */
typedef void (*row_reader)(sqlite3_stmt *st, void *row, mcpr__query_pool *pool, int *oom);

typedef struct rows_sink {
  void **rows;
  size_t *count, *cap, row_size;
  mcpr__query_pool *pool;
  row_reader read;
} rows_sink;

static inline int append_row(void *ctx, sqlite3_stmt *st) {
  rows_sink *k = ctx;
  void *r = mcpr__array_push(k->rows, k->count, k->cap, k->row_size);
  if (!r)
    return 1;
  int oom = 0;
  k->read(st, r, k->pool, &oom);
  return oom;
}

/* Run b and append each row, read by read, to the array *rows (*count
 * elements of row_size, capacity *cap). */
static inline mcpr_status read_rows(sqlite3 *db, sqlb *b, void **rows, size_t *count,
                                    size_t *cap, size_t row_size, mcpr__query_pool *pool,
                                    row_reader read, mcpr_error *err) {
  rows_sink k = {rows, count, cap, row_size, pool, read};
  return each_row(db, b, append_row, &k, err);
}

/* A fixed statement of one row: its first one or two integer columns
 * (NULL as MCPR_QUERY_NULL). */
static inline mcpr_status fixed_row(sqlite3 *db, const char *sql, int64_t *a,
                                    int64_t *b2, mcpr_error *err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *a = col_int(st, 0);
    if (b2)
      *b2 = col_int(st, 1);
    rc = SQLITE_OK;
  }
  mcpr_status s = rc == SQLITE_OK ? MCPR_OK : step_error(db, rc, err);
  sqlite3_finalize(st);
  return s;
}


static inline mcpr_status count_one(sqlite3 *db, sqlb *b, int64_t *out, mcpr_error *err) {
  sqlite3_stmt *st;
  mcpr_status s = sb_prepare(db, b, &st, err);
  if (s != MCPR_OK)
    return s;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    *out = sqlite3_column_int64(st, 0);
  else
    s = step_error(db, rc, err);
  sqlite3_finalize(st);
  return s;
}

/* JSON array of the names (each JSON-escaped) as a new string. */
static inline char *names_to_json(const char *const *names, size_t n) {
  size_t cap = 2;
  for (size_t i = 0; i < n; i++)
    cap += strlen(names[i]) * 6 + 3;
  char *buf = malloc(cap + 1);
  if (!buf)
    return NULL;
  size_t len = 0;
  buf[len++] = '[';
  for (size_t i = 0; i < n; i++) {
    if (i)
      buf[len++] = ',';
    buf[len++] = '"';
    for (const unsigned char *c = (const unsigned char *)names[i]; *c; c++) {
      if (*c == '"' || *c == '\\') {
        buf[len++] = '\\';
        buf[len++] = (char)*c;
      } else if (*c < 0x20) {
        len += (size_t)snprintf(buf + len, cap + 1 - len, "\\u%04x", *c);
      } else {
        buf[len++] = (char)*c;
      }
    }
    buf[len++] = '"';
  }
  buf[len++] = ']';
  buf[len] = '\0';
  return buf;
}

/* ---------- plans ---------- */

/* EXPLAIN QUERY PLAN of b, handed to fn with name and the SQL (see
 * backend/sqlite/query.h); *stop when fn asks. */
static inline mcpr_status explain(sqlite3 *db, sqlb *b, const char *name, mcpr__plan_fn fn,
                                  void *ctx, int *stop, mcpr_error *err) {
  sqlb e = *b;
  int w0 = snprintf(e.sql, sizeof e.sql, "EXPLAIN QUERY PLAN %s", b->sql);
  if (w0 < 0 || (size_t)w0 >= sizeof e.sql)
    return mcpr_error_set(err, MCPR_EINVAL, "internal: query too long to explain");
  e.len = (size_t)w0;
  sqlite3_stmt *st;
  mcpr_status s = sb_prepare(db, &e, &st, err);
  if (s != MCPR_OK)
    return s;
  char plan[4096];
  size_t len = 0;
  plan[0] = '\0';
  /* Indent each row by its depth: parent ids lead back to 0. */
  int ids[64], depth[64], n = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int id = sqlite3_column_int(st, 0), parent = sqlite3_column_int(st, 1), d = 0;
    for (int i = 0; i < n; i++)
      if (ids[i] == parent)
        d = depth[i] + 1;
    if (n < 64) {
      ids[n] = id;
      depth[n++] = d;
    }
    const char *detail = (const char *)sqlite3_column_text(st, 3);
    int w = snprintf(plan + len, sizeof plan - len, "%*s%s\n", d * 2, "",
                     detail ? detail : "");
    if (w > 0 && (size_t)w < sizeof plan - len)
      len += (size_t)w;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE)
    return step_error(db, rc, err);
  if (fn(ctx, name, b->sql, plan) != 0)
    *stop = 1;
  return MCPR_OK;
}


/* --- row readers: both read sides (this project's layout, the original's
 * 0.5 layout) select the same columns in the same order --- */

static inline void read_session_row(sqlite3_stmt *st, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_session_row *r = row;
  r->session_id = col_text(st, 0, pool, oom);
  r->proxy = col_text(st, 1, pool, oom);
  r->client_name = col_text(st, 2, pool, oom);
  r->client_version = col_text(st, 3, pool, oom);
  r->client_platform = col_text(st, 4, pool, oom);
  r->started_at_ms = sqlite3_column_int64(st, 5);
  r->last_seen_at_ms = sqlite3_column_int64(st, 6);
  r->ended_at_ms = col_int(st, 7);
  r->total_calls = sqlite3_column_int64(st, 8);
  r->total_errors = sqlite3_column_int64(st, 9);
  r->is_active = sqlite3_column_int(st, 10) != 0;
}

static inline mcpr_status read_sessions(sqlite3 *db, sqlb *b, mcpr_session_rows *out, size_t *cap,
                                 mcpr_error *err) {
  return read_rows(db, b, (void **)&out->rows, &out->count, cap, sizeof *out->rows, out->pool,
                   read_session_row, err);
}

static inline void read_log_row(sqlite3_stmt *st, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_log_row *r = row;
  r->row_id = sqlite3_column_int64(st, 0);
  r->request_id = col_text(st, 1, pool, oom);
  r->ts_ms = sqlite3_column_int64(st, 2);
  r->proxy = col_text(st, 3, pool, oom);
  r->method = col_text(st, 4, pool, oom);
  r->tool = col_text(st, 5, pool, oom);
  r->resource_uri = col_text(st, 6, pool, oom);
  r->prompt_name = col_text(st, 7, pool, oom);
  r->latency_us = col_int(st, 8); /* NULL: no response */
  r->status = col_text(st, 9, pool, oom);
  r->error_code = col_text(st, 10, pool, oom);
  r->error_msg = col_text(st, 11, pool, oom);
  r->session_id = col_text(st, 12, pool, oom);
  r->bytes_in = col_int(st, 13);
  r->bytes_out = col_int(st, 14);
}

static inline void read_client_row(sqlite3_stmt *st, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_client_row *r = row;
  r->client_name = col_text(st, 0, pool, oom);
  r->client_version = col_text(st, 1, pool, oom);
  r->client_platform = col_text(st, 2, pool, oom);
  r->sessions = sqlite3_column_int64(st, 3);
  r->total_calls = sqlite3_column_int64(st, 4);
  r->total_errors = sqlite3_column_int64(st, 5);
  r->error_pct =
      r->total_calls ? 100.0 * (double)r->total_errors / (double)r->total_calls : 0.0;
  r->first_seen_ms = sqlite3_column_int64(st, 6);
  r->last_seen_ms = sqlite3_column_int64(st, 7);
}

static inline void read_change_row(sqlite3_stmt *st, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_schema_change_row *r = row;
  r->proxy = col_text(st, 0, pool, oom);
  r->upstream_url = col_text(st, 1, pool, oom);
  r->method = col_text(st, 2, pool, oom);
  r->change_type = col_text(st, 3, pool, oom);
  r->item_name = col_text(st, 4, pool, oom);
  r->old_hash = col_text(st, 5, pool, oom);
  r->new_hash = col_text(st, 6, pool, oom);
  r->detected_at_ms = sqlite3_column_int64(st, 7);
}

static inline void read_schema_row(sqlite3_stmt *st, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_schema_row *r = row;
  r->proxy = col_text(st, 0, pool, oom);
  r->upstream_url = col_text(st, 1, pool, oom);
  r->method = col_text(st, 2, pool, oom);
  r->payload = col_text(st, 3, pool, oom);
  r->captured_at_ms = sqlite3_column_int64(st, 4);
  r->schema_hash = col_text(st, 5, pool, oom);
}

static inline int64_t file_size(const char *path, const char *suffix) {
  char buf[4200];
  snprintf(buf, sizeof buf, "%s%s", path, suffix);
  struct stat sb;
  return stat(buf, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

#endif

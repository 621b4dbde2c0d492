/*
 * query.c — the PostgreSQL backend's read side: the SQL of every query of
 * SPEC §6 for a PostgreSQL store, behind query/backend.h. The same
 * statements as the SQLite read side (backend/sqlite/query.c), in
 * PostgreSQL's dialect, so that every read command gives the same rows:
 * text columns are COLLATE "C" (bytewise order, as SQLite's BINARY), NULLs
 * are ordered first where SQLite orders them first, and session id
 * prefixes are ranges [prefix, prefix || U+10FFFF).
 *
 * Statements are assembled from fixed fragments; each '?' of a fragment
 * becomes a numbered, typed parameter ($n::int8, $n::text): no value ever
 * reaches the SQL text. Rows are read in libpq's single-row mode, so a
 * stats scan over millions of requests holds one row at a time.
 *
 * The rollups (per-hour aggregates) are SQLite's for now: stats_rollup
 * and rollup are left NULL, and the engine scans the requests. Vacuum
 * (retention) is not implemented for PostgreSQL yet and says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres/pg.h"
#include "backend/postgres/postgres.h"
#include "core/buf.h"
#include "mcpr/util.h"
#include "query/backend.h"
#include "query/pool.h"

#define SQL_MAX 4096
#define PARAMS_MAX 16

typedef struct pg_impl {
  mcpr__pg_target t;
  PGconn *conn;
} pg_impl;

/* ---------- statement builder ---------- */

typedef struct pgb {
  char sql[SQL_MAX];
  size_t len;
  int overflow;
  const char *params[PARAMS_MAX];
  char ints[PARAMS_MAX][24];
  int n;
} pgb;

static void pb_init(pgb *b) {
  b->len = 0;
  b->sql[0] = '\0';
  b->overflow = 0;
  b->n = 0;
}

static void pb_raw(pgb *b, const char *s, size_t n) {
  if (b->len + n + 1 > sizeof b->sql) {
    b->overflow = 1;
    return;
  }
  memcpy(b->sql + b->len, s, n);
  b->len += n;
  b->sql[b->len] = '\0';
}

static void pb_add(pgb *b, const char *frag) { pb_raw(b, frag, strlen(frag)); }

/* frag with each '?' taking the next parameter, of type type. */
static void pb_param(pgb *b, const char *frag, const char *type, const char *value) {
  const char *q = strchr(frag, '?');
  if (!q || b->n == PARAMS_MAX) {
    b->overflow = 1;
    return;
  }
  pb_raw(b, frag, (size_t)(q - frag));
  b->params[b->n++] = value;
  char ph[32];
  int w = snprintf(ph, sizeof ph, "$%d::%s", b->n, type);
  pb_raw(b, ph, (size_t)w);
  pb_add(b, q + 1);
}

static void pb_text(pgb *b, const char *frag, const char *value) {
  pb_param(b, frag, "text", value);
}

static void pb_int(pgb *b, const char *frag, int64_t value) {
  if (b->n == PARAMS_MAX) {
    b->overflow = 1;
    return;
  }
  snprintf(b->ints[b->n], sizeof b->ints[b->n], "%lld", (long long)value);
  pb_param(b, frag, "int8", b->ints[b->n]);
}

/* ---------- running ---------- */

static mcpr_status oom_error(mcpr_error *err) {
  return mcpr_error_set(err, MCPR_ENOMEM, "out of memory reading the store");
}

typedef int (*row_fn)(void *ctx, const PGresult *r);

/* Run b and call fn on every row, one row in memory at a time. */
static mcpr_status each_row(pg_impl *impl, const pgb *b, row_fn fn, void *ctx,
                            mcpr_error *err) {
  if (b->overflow)
    return mcpr_error_set(err, MCPR_EINVAL, "internal: query too long");
  if (!PQsendQueryParams(impl->conn, b->sql, b->n, NULL, b->params, NULL, NULL, 0))
    return mcpr__pg_error(impl->conn, NULL, &impl->t, err, "reading the store");
  PQsetSingleRowMode(impl->conn);
  mcpr_status st = MCPR_OK;
  bool stopped = false;
  PGresult *r;
  while ((r = PQgetResult(impl->conn))) {
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_SINGLE_TUPLE) {
      if (!stopped && st == MCPR_OK && fn(ctx, r) != 0) {
        st = oom_error(err);
        stopped = true;
      }
    } else if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK && st == MCPR_OK) {
      st = mcpr__pg_error(impl->conn, r, &impl->t, err, "reading the store");
    }
    PQclear(r);
  }
  return st;
}

static bool isnull(const PGresult *r, int c) { return PQgetisnull(r, 0, c); }

static int64_t col_int(const PGresult *r, int c) {
  return isnull(r, c) ? MCPR_QUERY_NULL : strtoll(PQgetvalue(r, 0, c), NULL, 10);
}

static const char *col_text(const PGresult *r, int c, mcpr__query_pool *pool, int *oom) {
  if (isnull(r, c))
    return NULL;
  return mcpr__pool_strndup(pool, PQgetvalue(r, 0, c), (size_t)PQgetlength(r, 0, c), oom);
}

static bool col_bool(const PGresult *r, int c) { return PQgetvalue(r, 0, c)[0] == 't'; }

typedef void (*row_reader)(const PGresult *r, void *row, mcpr__query_pool *pool, int *oom);

typedef struct rows_sink {
  void **rows;
  size_t *count, *cap, row_size;
  mcpr__query_pool *pool;
  row_reader read;
} rows_sink;

static int append_row(void *ctx, const PGresult *r) {
  rows_sink *k = ctx;
  void *row = mcpr__array_push(k->rows, k->count, k->cap, k->row_size);
  if (!row)
    return 1;
  int oom = 0;
  k->read(r, row, k->pool, &oom);
  return oom;
}

static mcpr_status read_rows(pg_impl *impl, const pgb *b, void **rows, size_t *count,
                             size_t *cap, size_t row_size, mcpr__query_pool *pool,
                             row_reader read, mcpr_error *err) {
  rows_sink k = {rows, count, cap, row_size, pool, read};
  return each_row(impl, b, append_row, &k, err);
}

typedef struct ints_sink {
  int64_t *a, *b;
} ints_sink;

static int take_ints(void *ctx, const PGresult *r) {
  ints_sink *k = ctx;
  *k->a = col_int(r, 0);
  if (k->b)
    *k->b = col_int(r, 1);
  return 0;
}

/* The first one or two integer columns of b's one row. */
static mcpr_status one_row(pg_impl *impl, const pgb *b, int64_t *a, int64_t *b2,
                           mcpr_error *err) {
  ints_sink k = {a, b2};
  return each_row(impl, b, take_ints, &k, err);
}

static mcpr_status fixed(pg_impl *impl, const char *sql, int64_t *a, int64_t *b2,
                         mcpr_error *err) {
  pgb b;
  pb_init(&b);
  pb_add(&b, sql);
  return one_row(impl, &b, a, b2, err);
}

/* ---------- row readers (columns as the SELECTs below list them) ---------- */

static void read_log_row(const PGresult *r, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_log_row *o = row;
  o->row_id = col_int(r, 0);
  o->request_id = col_text(r, 1, pool, oom);
  o->ts_ms = col_int(r, 2);
  o->proxy = col_text(r, 3, pool, oom);
  o->method = col_text(r, 4, pool, oom);
  o->tool = col_text(r, 5, pool, oom);
  o->resource_uri = col_text(r, 6, pool, oom);
  o->prompt_name = col_text(r, 7, pool, oom);
  o->latency_us = col_int(r, 8);
  o->status = col_text(r, 9, pool, oom);
  o->error_code = col_text(r, 10, pool, oom);
  o->error_msg = col_text(r, 11, pool, oom);
  o->session_id = col_text(r, 12, pool, oom);
  o->bytes_in = col_int(r, 13);
  o->bytes_out = col_int(r, 14);
}

static void read_session_row(const PGresult *r, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_session_row *o = row;
  o->session_id = col_text(r, 0, pool, oom);
  o->proxy = col_text(r, 1, pool, oom);
  o->client_name = col_text(r, 2, pool, oom);
  o->client_version = col_text(r, 3, pool, oom);
  o->client_platform = col_text(r, 4, pool, oom);
  o->started_at_ms = col_int(r, 5);
  o->last_seen_at_ms = col_int(r, 6);
  o->ended_at_ms = col_int(r, 7);
  o->total_calls = col_int(r, 8);
  o->total_errors = col_int(r, 9);
  o->is_active = col_bool(r, 10);
}

static void read_client_row(const PGresult *r, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_client_row *o = row;
  o->client_name = col_text(r, 0, pool, oom);
  o->client_version = col_text(r, 1, pool, oom);
  o->client_platform = col_text(r, 2, pool, oom);
  o->sessions = col_int(r, 3);
  o->total_calls = col_int(r, 4);
  o->total_errors = col_int(r, 5);
  o->error_pct =
      o->total_calls ? 100.0 * (double)o->total_errors / (double)o->total_calls : 0.0;
  o->first_seen_ms = col_int(r, 6);
  o->last_seen_ms = col_int(r, 7);
}

static void read_schema_row(const PGresult *r, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_schema_row *o = row;
  o->proxy = col_text(r, 0, pool, oom);
  o->upstream_url = col_text(r, 1, pool, oom);
  o->method = col_text(r, 2, pool, oom);
  o->payload = col_text(r, 3, pool, oom);
  o->captured_at_ms = col_int(r, 4);
  o->schema_hash = col_text(r, 5, pool, oom);
}

static void read_change_row(const PGresult *r, void *row, mcpr__query_pool *pool, int *oom) {
  mcpr_schema_change_row *o = row;
  o->proxy = col_text(r, 0, pool, oom);
  o->upstream_url = col_text(r, 1, pool, oom);
  o->method = col_text(r, 2, pool, oom);
  o->change_type = col_text(r, 3, pool, oom);
  o->item_name = col_text(r, 4, pool, oom);
  o->old_hash = col_text(r, 5, pool, oom);
  o->new_hash = col_text(r, 6, pool, oom);
  o->detected_at_ms = col_int(r, 7);
}

/* ---------- open / close ---------- */

static void pg_close(void *p) {
  pg_impl *impl = p;
  if (!impl)
    return;
  PQfinish(impl->conn);
  mcpr__pg_target_release(&impl->t);
  free(impl);
}

mcpr_status mcpr__pg_query_open(const char *url, const mcpr__query_backend **be, void **out,
                                mcpr_error *err) {
  *out = NULL;
  pg_impl *impl = calloc(1, sizeof *impl);
  if (!impl)
    return oom_error(err);
  mcpr_status st = mcpr__pg_target_init(&impl->t, url, err);
  if (st != MCPR_OK) {
    free(impl);
    return st;
  }
  st = mcpr__pg_connect(&impl->t, &impl->conn, err);
  if (st == MCPR_OK)
    st = mcpr__pg_migrate(impl->conn, &impl->t, false, NULL, err);
  if (st != MCPR_OK) {
    pg_close(impl);
    return st;
  }
  *be = &mcpr__query_pg_backend;
  *out = impl;
  return MCPR_OK;
}

/* ---------- requests ---------- */

#define LOG_COLUMNS                                                            \
  "SELECT id, request_id, ts, proxy, method, tool, resource_uri, prompt_name,"  \
  " latency_us, status, error_code, error_msg, session_id, bytes_in, bytes_out" \
  " FROM requests WHERE true"

/* A session's requests lie within its lifetime (see the SQLite read
 * side's sb_session_window): the ts index bounds the search. */
#define SESSION_SLACK_MS "3600000"
static void pb_session_window(pgb *b, const char *id, bool prefix) {
  for (int bound = 0; bound < 2; bound++) {
    pb_add(b, bound == 0 ? " AND ts >= coalesce((SELECT min(started_at) - " SESSION_SLACK_MS
                           " FROM sessions"
                         : " AND ts <= coalesce((SELECT max(CASE WHEN ended_at IS NULL"
                           " THEN 9223372036854775807 ELSE GREATEST(ended_at, last_seen_at) + "
                           SESSION_SLACK_MS " END) FROM sessions");
    if (prefix) {
      pb_text(b, " WHERE session_id >= ?", id);
      pb_text(b, " AND session_id < (? || chr(1114111))", id);
    } else {
      pb_text(b, " WHERE session_id = ?", id);
    }
    pb_add(b, bound == 0 ? "), -9223372036854775807)" : "), 9223372036854775807)");
  }
}

static void build_logs(pgb *b, mcpr__log_kind kind, const mcpr_log_filter *f) {
  pb_init(b);
  pb_add(b, LOG_COLUMNS);
  if (f->proxy)
    pb_text(b, " AND proxy = ?", f->proxy);
  if (f->tool)
    pb_text(b, " AND tool = ?", f->tool);
  if (kind != MCPR__SLOW) {
    if (f->method)
      pb_text(b, " AND method = ?", f->method);
    if (f->error_code)
      pb_text(b, " AND error_code = ?", f->error_code);
    if (f->has_status)
      pb_text(b, " AND status = ?", mcpr_request_status_str(f->status));
    if (f->session_id) {
      pb_text(b, " AND session_id = ?", f->session_id);
      pb_session_window(b, f->session_id, false);
    } else if (f->session_prefix && *f->session_prefix) {
      pb_text(b, " AND session_id >= ?", f->session_prefix);
      pb_text(b, " AND session_id < (? || chr(1114111))", f->session_prefix);
      pb_session_window(b, f->session_prefix, true);
    }
  }
  if (kind != MCPR__FOLLOW && kind != MCPR__OLDEST_FIRST && f->since_ms != MCPR_QUERY_NO_CUTOFF)
    pb_int(b, " AND ts >= ?", f->since_ms);
  if (f->min_latency_us > 0)
    pb_int(b, " AND latency_us >= ?", f->min_latency_us);
  if (f->after_row_id > 0)
    pb_int(b, " AND id > ?", f->after_row_id);
  if (f->up_to_row_id > 0)
    pb_int(b, " AND id <= ?", f->up_to_row_id);
  switch (kind) {
  case MCPR__LOGS:
    pb_add(b, " ORDER BY ts DESC, id DESC");
    break;
  case MCPR__SLOW:
    pb_add(b, " ORDER BY latency_us DESC, ts DESC, id DESC");
    break;
  case MCPR__FOLLOW:
    pb_add(b, " ORDER BY id");
    break;
  case MCPR__OLDEST_FIRST:
    pb_add(b, " ORDER BY ts, id");
    break;
  }
  pb_int(b, " LIMIT ?", f->limit);
}

static mcpr_status pg_logs(void *p, mcpr__log_kind kind, const mcpr_log_filter *f,
                           mcpr_log_rows *out, size_t *cap, mcpr_error *err) {
  pg_impl *impl = p;
  pgb b;
  build_logs(&b, kind, f);
  mcpr_status s = read_rows(impl, &b, (void **)&out->rows, &out->count, cap, sizeof *out->rows,
                            out->pool, read_log_row, err);
  if (s != MCPR_OK || kind != MCPR__OLDEST_FIRST || !f->session_id ||
      (int64_t)out->count >= f->limit)
    return s;
  /* Fewer rows in the window than the session counted: some lie outside
   * it (a clock step); read them all without the window. */
  int64_t total_calls = 0;
  pb_init(&b);
  pb_text(&b, "SELECT coalesce(max(total_calls), 0) FROM sessions WHERE session_id = ?",
          f->session_id);
  if ((s = one_row(impl, &b, &total_calls, NULL, err)) != MCPR_OK ||
      (int64_t)out->count >= total_calls)
    return s;
  out->count = 0;
  pb_init(&b);
  pb_add(&b, LOG_COLUMNS);
  pb_text(&b, " AND session_id = ?", f->session_id);
  pb_int(&b, " ORDER BY ts, id LIMIT ?", f->limit);
  return read_rows(impl, &b, (void **)&out->rows, &out->count, cap, sizeof *out->rows,
                   out->pool, read_log_row, err);
}

static mcpr_status pg_last_row_id(void *p, int64_t *out, mcpr_error *err) {
  mcpr_status s = fixed(p, "SELECT max(id) FROM requests", out, NULL, err);
  if (s == MCPR_OK && *out == MCPR_QUERY_NULL)
    *out = 0;
  return s;
}

/* ---------- stats ---------- */

typedef struct sample_sink {
  mcpr__stats_sink sink;
  void *ctx;
} sample_sink;

static int pass_sample(void *ctx, const PGresult *r) {
  sample_sink *k = ctx;
  mcpr__stats_sample sm;
  sm.tool = isnull(r, 0) ? NULL : PQgetvalue(r, 0, 0);
  sm.tool_len = sm.tool ? (size_t)PQgetlength(r, 0, 0) : 0;
  sm.method = PQgetvalue(r, 0, 1);
  sm.method_len = (size_t)PQgetlength(r, 0, 1);
  sm.latency_us = col_int(r, 2);
  sm.is_error = col_bool(r, 3);
  sm.bytes_in = col_int(r, 4);
  sm.bytes_out = col_int(r, 5);
  return k->sink(k->ctx, &sm);
}

static mcpr_status pg_stats_scan(void *p, const mcpr_stats_filter *f, mcpr__stats_sink sink,
                                 void *ctx, mcpr_error *err) {
  pgb b;
  pb_init(&b);
  pb_add(&b, "SELECT tool, method, latency_us, status <> 'ok', bytes_in, bytes_out"
             " FROM requests WHERE true");
  if (f->proxy)
    pb_text(&b, " AND proxy = ?", f->proxy);
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF)
    pb_int(&b, " AND ts >= ?", f->since_ms);
  sample_sink k = {sink, ctx};
  return each_row(p, &b, pass_sample, &k, err);
}

/* ---------- sessions ---------- */

static mcpr_status pg_session_counts(void *p, const char *proxy, int64_t since_ms,
                                     int64_t now_ms, int64_t *active, int64_t *total,
                                     mcpr_error *err) {
  pgb b;
  pb_init(&b);
  pb_add(&b, "SELECT count(*) FROM sessions WHERE ended_at IS NULL");
  if (proxy)
    pb_text(&b, " AND proxy = ?", proxy);
  pb_int(&b, " AND last_seen_at > ?", now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
  mcpr_status s = one_row(p, &b, active, NULL, err);
  if (s != MCPR_OK)
    return s;
  pb_init(&b);
  pb_add(&b, "SELECT count(*) FROM sessions WHERE true");
  if (proxy)
    pb_text(&b, " AND proxy = ?", proxy);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    pb_int(&b, " AND started_at >= ?", since_ms);
  return one_row(p, &b, total, NULL, err);
}

#define SESSION_COLUMNS                                                        \
  "SELECT session_id, proxy, client_name, client_version, client_platform,"     \
  " started_at, last_seen_at, ended_at, total_calls, total_errors,"             \
  " ended_at IS NULL AND last_seen_at > ? FROM sessions WHERE true"

static mcpr_status read_sessions(pg_impl *impl, const pgb *b, mcpr_session_rows *out,
                                 size_t *cap, mcpr_error *err) {
  return read_rows(impl, b, (void **)&out->rows, &out->count, cap, sizeof *out->rows, out->pool,
                   read_session_row, err);
}

static mcpr_status pg_sessions(void *p, const mcpr_session_filter *f, int64_t now_ms,
                               mcpr_session_rows *out, mcpr_error *err) {
  int64_t active_after = now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS;
  pgb b;
  size_t cap = 0;
  pb_init(&b);
  pb_int(&b, SESSION_COLUMNS, active_after);
  if (f->proxy)
    pb_text(&b, " AND proxy = ?", f->proxy);
  if (f->client_name)
    pb_text(&b, " AND client_name = ?", f->client_name);
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF)
    pb_int(&b, " AND started_at >= ?", f->since_ms);
  if (f->active_only)
    pb_int(&b, " AND ended_at IS NULL AND last_seen_at > ?", active_after);
  pb_int(&b, " ORDER BY last_seen_at DESC, session_id LIMIT ?", f->limit);
  return read_sessions(p, &b, out, &cap, err);
}

static mcpr_status pg_sessions_by_prefix(void *p, const char *prefix, int64_t now_ms,
                                         size_t max, mcpr_session_rows *out, mcpr_error *err) {
  pgb b;
  size_t cap = 0;
  pb_init(&b);
  pb_int(&b, SESSION_COLUMNS, now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
  pb_text(&b, " AND session_id = ?", prefix);
  mcpr_status s = read_sessions(p, &b, out, &cap, err);
  if (s != MCPR_OK || out->count > 0)
    return s;
  pb_init(&b);
  pb_int(&b, SESSION_COLUMNS, now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
  pb_text(&b, " AND session_id >= ?", prefix);
  pb_text(&b, " AND session_id < (? || chr(1114111))", prefix);
  pb_int(&b, " ORDER BY session_id LIMIT ?", (int64_t)max);
  return read_sessions(p, &b, out, &cap, err);
}

static mcpr_status pg_clients(void *p, const char *proxy, int64_t since_ms,
                              mcpr_client_rows *out, mcpr_error *err) {
  pgb b;
  size_t cap = 0;
  pb_init(&b);
  pb_add(&b, "SELECT client_name, client_version, client_platform, count(*),"
             " sum(total_calls), sum(total_errors), min(started_at), max(last_seen_at)"
             " FROM sessions WHERE true");
  if (proxy)
    pb_text(&b, " AND proxy = ?", proxy);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    pb_int(&b, " AND started_at >= ?", since_ms);
  /* NULLS FIRST: SQLite's order for the NULL names and versions. */
  pb_add(&b, " GROUP BY client_name, client_version, client_platform"
             " ORDER BY sum(total_calls) DESC, count(*) DESC, client_name NULLS FIRST,"
             " client_version NULLS FIRST");
  return read_rows(p, &b, (void **)&out->rows, &out->count, &cap, sizeof *out->rows, out->pool,
                   read_client_row, err);
}

/* ---------- schema ---------- */

static mcpr_status pg_schema(void *p, const char *proxy, const char *method,
                             mcpr_schema_rows *out, mcpr_error *err) {
  pgb b;
  size_t cap = 0;
  pb_init(&b);
  pb_add(&b, "SELECT proxy, upstream_url, method, payload, captured_at, schema_hash"
             " FROM server_schema WHERE true");
  if (proxy)
    pb_text(&b, " AND proxy = ?", proxy);
  if (method)
    pb_text(&b, " AND method = ?", method);
  pb_add(&b, " ORDER BY upstream_url, proxy, method");
  return read_rows(p, &b, (void **)&out->rows, &out->count, &cap, sizeof *out->rows, out->pool,
                   read_schema_row, err);
}

static mcpr_status pg_schema_changes(void *p, const char *proxy, const char *method,
                                     int64_t limit, mcpr_schema_change_rows *out,
                                     mcpr_error *err) {
  pgb b;
  size_t cap = 0;
  pb_init(&b);
  pb_add(&b, "SELECT proxy, upstream_url, method, change_type, item_name, old_hash, new_hash,"
             " detected_at FROM schema_changes WHERE true");
  if (proxy)
    pb_text(&b, " AND proxy = ?", proxy);
  if (method)
    pb_text(&b, " AND method = ?", method);
  pb_int(&b, " ORDER BY detected_at DESC, id DESC LIMIT ?", limit);
  return read_rows(p, &b, (void **)&out->rows, &out->count, &cap, sizeof *out->rows, out->pool,
                   read_change_row, err);
}

/* The names as one text[] literal: {"a","b"} with " and \ escaped. */
static char *names_array(const char *const *names, size_t n) {
  mcpr__buf b = {0};
  bool mem = mcpr__buf_add(&b, "{", 1);
  for (size_t i = 0; i < n && mem; i++) {
    mem = (i == 0 || mcpr__buf_add(&b, ",", 1)) && mcpr__buf_add(&b, "\"", 1);
    for (const char *c = names[i]; *c && mem; c++)
      mem = ((*c != '"' && *c != '\\') || mcpr__buf_add(&b, "\\", 1)) &&
            mcpr__buf_add(&b, c, 1);
    mem = mem && mcpr__buf_add(&b, "\"", 1);
  }
  if (!mem || !mcpr__buf_add(&b, "}", 1)) {
    mcpr__buf_release(&b);
    return NULL;
  }
  return b.p;
}

typedef struct usage_sink {
  const char *const *names;
  size_t n;
  mcpr__tool_usage *usage;
} usage_sink;

static int match_usage(void *ctx, const PGresult *r) {
  usage_sink *k = ctx;
  const char *tool = PQgetvalue(r, 0, 0);
  for (size_t i = 0; i < k->n; i++) {
    if (strcmp(k->names[i], tool) == 0) {
      k->usage[i].calls = col_int(r, 1);
      k->usage[i].errors = col_int(r, 2);
      k->usage[i].last_called_at_ms = col_int(r, 3);
      break;
    }
  }
  return 0;
}

static mcpr_status pg_tool_usage(void *p, const char *proxy, int64_t since_ms,
                                 const char *const *names, size_t n, mcpr__tool_usage *usage,
                                 mcpr_error *err) {
  char *arr = names_array(names, n);
  if (!arr)
    return oom_error(err);
  pgb b;
  pb_init(&b);
  pb_param(&b, "SELECT tool, count(*), count(*) FILTER (WHERE status <> 'ok'), max(ts)"
               " FROM requests WHERE tool = ANY(?)", "text[]", arr);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    pb_int(&b, " AND ts >= ?", since_ms);
  if (proxy)
    pb_text(&b, " AND proxy = ?", proxy);
  pb_add(&b, " GROUP BY tool");
  usage_sink k = {names, n, usage};
  mcpr_status s = each_row(p, &b, match_usage, &k, err);
  free(arr);
  return s;
}

/* ---------- store info ---------- */

static mcpr_status pg_store_info(void *p, mcpr_store_info *out, mcpr_error *err) {
  pg_impl *impl = p;
  int64_t version = 0;
  mcpr_status s = fixed(impl, "SELECT count(*) FROM requests", &out->total_requests, NULL, err);
  if (s == MCPR_OK)
    s = fixed(impl, "SELECT count(*) FROM sessions", &out->total_sessions, NULL, err);
  if (s == MCPR_OK)
    s = fixed(impl, "SELECT min(ts), max(ts) FROM requests", &out->oldest_request_ms,
              &out->newest_request_ms, err);
  if (s == MCPR_OK)
    s = fixed(impl, "SELECT count(DISTINCT proxy) FROM requests", &out->proxies, NULL, err);
  /* The database's size; PostgreSQL's WAL is the server's, not the store's. */
  if (s == MCPR_OK)
    s = fixed(impl, "SELECT pg_database_size(current_database())", &out->db_bytes, NULL, err);
  if (s == MCPR_OK)
    s = fixed(impl,
              "SELECT value::int8 FROM meta WHERE key = 'schema_version'"
              " AND value ~ '^[0-9]{1,6}$'",
              &version, NULL, err);
  if (s != MCPR_OK)
    return s;
  out->wal_bytes = 0;
  out->schema_version = version == MCPR_QUERY_NULL ? 0 : (int)version;
  out->last_failure = MCPR_OK;
  return MCPR_OK;
}

static mcpr_status pg_vacuum(void *p, const mcpr_vacuum_options *o, mcpr_vacuum_result *out,
                             mcpr_error *err) {
  pg_impl *impl = p;
  (void)o;
  (void)out;
  return mcpr_error_set(err, MCPR_EINVAL,
                        "%s: `mcpr store vacuum` does not support PostgreSQL stores yet "
                        "(delete old rows with SQL, then VACUUM)",
                        impl->t.shown);
}

const mcpr__query_backend mcpr__query_pg_backend = {
    .name = "postgres",
    .close = pg_close,
    .logs = pg_logs,
    .last_row_id = pg_last_row_id,
    .stats_scan = pg_stats_scan,
    .stats_rollup = NULL,
    .rollup = NULL,
    .session_counts = pg_session_counts,
    .sessions = pg_sessions,
    .sessions_by_prefix = pg_sessions_by_prefix,
    .clients = pg_clients,
    .schema = pg_schema,
    .schema_changes = pg_schema_changes,
    .tool_usage = pg_tool_usage,
    .store_info = pg_store_info,
    .vacuum = pg_vacuum,
};

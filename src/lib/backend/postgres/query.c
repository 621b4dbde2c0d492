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
 * The rollups (rollup.h) serve stats and tool usage over long windows as
 * they do on SQLite, with the same bound below which stats are read raw,
 * so that both stores give the same p95 for the same events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres/pg.h"
#include "backend/postgres/postgres.h"
#include "backend/postgres/retention.h"
#include "backend/postgres/rollup.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/sketch.h"
#include "mcpr/util.h"
#include "query/backend.h"
#include "query/pool.h"

#define SQL_MAX 4096
#define PARAMS_MAX 16

/* Stats read raw — exact p95 — while the rollups of the window hold
 * at most this many requests (the SQLite store's bound, so that both give
 * the same p95 for the same events); beyond, the rollups' sketches. */
#define ROLLUP_RAW_MAX_ROWS 50000
/* Rows no writer counted yet (rolled false) beyond which a read ignores
 * the rollups and reads every row through the time indexes. */
#define ROLLUP_MAX_BEHIND 200000

typedef struct pg_impl {
  mcpr__pg_target t;
  PGconn *conn;
  int64_t rollup_raw_max_rows; /* see mcpr__query_pg_set_rollup_raw_max() */
  bool pending;                /* the store has the pending rollup tables */
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
  impl->rollup_raw_max_rows = ROLLUP_RAW_MAX_ROWS;
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

/* The highest row id a follower may pass now: every row at or below it is
 * committed or never will be (pg.h, "follow order"). Two statements, in
 * this order: the sequence first, then the floors of the batches in
 * flight; the rows are read after, in a later snapshot. */
static mcpr_status settled_row_id(pg_impl *impl, int64_t *out, mcpr_error *err) {
  int64_t last = 0, floor = MCPR_QUERY_NULL;
  mcpr_status s = fixed(impl, "SELECT " MCPR__PG_FOLLOW_SEQ_LAST, &last, NULL, err);
  if (s == MCPR_OK)
    s = fixed(impl, MCPR__PG_FOLLOW_FLOOR,
              &floor, NULL, err);
  *out = floor != MCPR_QUERY_NULL && floor < last ? floor : last;
  return s;
}

static mcpr_status pg_logs(void *p, mcpr__log_kind kind, const mcpr_log_filter *f,
                           mcpr_log_rows *out, size_t *cap, mcpr_error *err) {
  pg_impl *impl = p;
  pgb b;
  mcpr_log_filter settled;
  if (kind == MCPR__FOLLOW) { /* no further than the settled rows */
    int64_t h = 0;
    mcpr_status s = settled_row_id(impl, &h, err);
    if (s != MCPR_OK)
      return s;
    if (h <= 0 || h <= f->after_row_id ||
        (f->up_to_row_id > 0 && f->up_to_row_id <= f->after_row_id))
      return MCPR_OK; /* nothing settled past the cursor yet */
    settled = *f;
    if (settled.up_to_row_id <= 0 || settled.up_to_row_id > h)
      settled.up_to_row_id = h;
    f = &settled;
  }
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

/* Where a follow starts: the newest row, or below it the settled ones
 * (rows past it may still be joined by a batch in flight). */
static mcpr_status pg_last_row_id(void *p, int64_t *out, mcpr_error *err) {
  int64_t h = 0;
  mcpr_status s = settled_row_id(p, &h, err);
  if (s == MCPR_OK)
    s = fixed(p, "SELECT max(id) FROM requests", out, NULL, err);
  if (s == MCPR_OK && *out == MCPR_QUERY_NULL)
    *out = 0;
  if (s == MCPR_OK && h < *out)
    *out = h;
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

/* ---------- stats from the rollups ---------- */

/*
 * As the SQLite store (backend/sqlite/query.c): the window [since, ∞)
 * splits at H0, the first hour boundary at or after since. Hours from H0
 * on come from the rollups (whole days from mcpr_rollup_day, the hours
 * before the first whole day from mcpr_rollup_hour); the partial hour
 * [since, H0) of the rows they count is read raw, and so is every row
 * they do not count (rolled false, through its partial index). One
 * REPEATABLE READ transaction: rollups and rows are one snapshot.
 */

static mcpr_status read_begin(pg_impl *impl, mcpr_error *err) {
  if (!mcpr__pg_exec(impl->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    return mcpr__pg_error(impl->conn, NULL, &impl->t, err, "reading the store");
  return MCPR_OK;
}

static void read_end(pg_impl *impl) {
  if (PQtransactionStatus(impl->conn) != PQTRANS_IDLE)
    mcpr__pg_exec(impl->conn, "COMMIT");
}

/* Whether the rollups can serve a read: the store has them (a writer of
 * this version opened it) and few rows are left out of them. */
static mcpr_status rollups_usable(pg_impl *impl, bool *yes, mcpr_error *err) {
  int64_t have = 0, behind = 0;
  *yes = false;
  mcpr_status s =
      fixed(impl, "SELECT (to_regclass('mcpr_rollup_day_sketch') IS NOT NULL"
                  " AND to_regclass('mcpr_retention_state') IS NOT NULL)::int"
                  " + (to_regclass('mcpr_rollup_pending_sketch') IS NOT NULL)::int",
            &have, NULL, err);
  if (s != MCPR_OK || have < 1)
    return s;
  impl->pending = have == 2; /* a store a writer of this version opened */
  pgb b;
  pb_init(&b);
  pb_int(&b, "SELECT count(*) FROM (SELECT 1 FROM requests WHERE NOT rolled LIMIT ?) x",
         ROLLUP_MAX_BEHIND + 1);
  s = one_row(impl, &b, &behind, NULL, err);
  *yes = s == MCPR_OK && behind <= ROLLUP_MAX_BEHIND;
  return s;
}

static int64_t first_full_hour(int64_t since_ms) {
  if (since_ms == MCPR_QUERY_NO_CUTOFF)
    return INT64_MIN;
  int64_t h = since_ms / MCPR__PG_ROLLUP_HOUR_MS;
  if (since_ms > 0 && since_ms % MCPR__PG_ROLLUP_HOUR_MS != 0)
    h++;
  return h;
}

typedef struct rollup_span {
  bool hours, days;
  bool pending; /* add the pending groups in (rollup.h) */
  int64_t hour_lo, hour_hi; /* hours [lo, hi); hi INT64_MAX: no bound */
  int64_t day_lo;           /* days >= day_lo */
} rollup_span;

static rollup_span span_of(int64_t first_hour) {
  rollup_span sp = {.days = true, .hour_lo = first_hour, .hour_hi = INT64_MAX,
                    .day_lo = INT64_MIN};
  if (first_hour == INT64_MIN)
    return sp;
  sp.hours = true;
  /* ceil(first_hour / 24), for negative hours too */
  int64_t d = first_hour / 24;
  if (first_hour % 24 != 0 && first_hour > 0)
    d++;
  sp.day_lo = d;
  sp.hour_hi = d * 24;
  return sp;
}

static bool level_used(const rollup_span *sp, int day) { return day ? sp->days : sp->hours; }

/* The columns of a level's table after its hour or day, and of its
 * sketch's. */
#define FIGURE_COLS \
  "proxy, is_tool, name, calls, errors, sum_us, min_us, max_us, bytes_in, bytes_out, last_ts"
#define SKETCH_COLS "proxy, is_tool, name, key, n"

/* " FROM <level table> WHERE <its range>" (sketch: its bucket table),
 * with the pending groups of its hours added in when the store has them
 * (they belong to both levels until folded: rollup.h). */
static void pb_rollup_from(pgb *b, const rollup_span *sp, int day, bool sketch) {
  if (sp->pending) {
    if (day)
      pb_add(b, sketch ? " FROM (SELECT day, " SKETCH_COLS " FROM mcpr_rollup_day_sketch"
                         " UNION ALL SELECT " MCPR__PG_FLOOR_DIV("hour", "24") " AS day, "
                         SKETCH_COLS " FROM mcpr_rollup_pending_sketch) r"
                       : " FROM (SELECT day, " FIGURE_COLS " FROM mcpr_rollup_day"
                         " UNION ALL SELECT " MCPR__PG_FLOOR_DIV("hour", "24") " AS day, "
                         FIGURE_COLS " FROM mcpr_rollup_pending) r");
    else
      pb_add(b, sketch ? " FROM (SELECT hour, " SKETCH_COLS " FROM mcpr_rollup_hour_sketch"
                         " UNION ALL SELECT hour, " SKETCH_COLS
                         " FROM mcpr_rollup_pending_sketch) r"
                       : " FROM (SELECT hour, " FIGURE_COLS " FROM mcpr_rollup_hour"
                         " UNION ALL SELECT hour, " FIGURE_COLS " FROM mcpr_rollup_pending) r");
  } else if (day) {
    pb_add(b, sketch ? " FROM mcpr_rollup_day_sketch" : " FROM mcpr_rollup_day");
  } else {
    pb_add(b, sketch ? " FROM mcpr_rollup_hour_sketch" : " FROM mcpr_rollup_hour");
  }
  if (day) {
    pb_int(b, " WHERE day >= ?", sp->day_lo);
    return;
  }
  pb_int(b, " WHERE hour >= ?", sp->hour_lo);
  if (sp->hour_hi != INT64_MAX)
    pb_int(b, " AND hour < ?", sp->hour_hi);
}

/* One part per label of a level: its figures added up, and its sketch's
 * buckets as "key:n,key:n…". */
static void build_rollup_parts(pgb *b, const char *proxy, const rollup_span *sp, int day) {
  pb_init(b);
  pb_add(b, "WITH k AS MATERIALIZED (SELECT is_tool, name, key, sum(n)::int8 AS n");
  pb_rollup_from(b, sp, day, true);
  if (proxy)
    pb_text(b, " AND proxy = ?", proxy);
  pb_add(b, " GROUP BY is_tool, name, key), a AS (SELECT is_tool, name, sum(calls)::int8 AS"
            " calls, sum(errors)::int8 AS errors, " MCPR__PG_SAT("sum(sum_us)") " AS sum_us,"
            " min(min_us) AS min_us, max(max_us) AS max_us, " MCPR__PG_SAT("sum(bytes_in)")
            " AS bytes_in, " MCPR__PG_SAT("sum(bytes_out)") " AS bytes_out");
  pb_rollup_from(b, sp, day, false);
  if (proxy)
    pb_text(b, " AND proxy = ?", proxy);
  pb_add(b, " GROUP BY is_tool, name) SELECT a.*, (SELECT string_agg(k.key || ':' || k.n, ',')"
            " FROM k WHERE k.is_tool = a.is_tool AND k.name = a.name) FROM a");
}

/* The buckets "key:n,…" into s. false: not a sketch's, or out of memory. */
static bool sketch_parse(mcpr__sketch *s, const char *text) {
  const char *p = text;
  while (*p) {
    char *end = NULL;
    long long key = strtoll(p, &end, 10);
    if (end == p || *end != ':' || key <= -8192 || key >= 8192)
      return false;
    p = end + 1;
    long long n = strtoll(p, &end, 10);
    if (end == p || n <= 0 || (*end != ',' && *end != '\0'))
      return false;
    if (!mcpr__sketch_add_key(s, (int32_t)key, n))
      return false;
    p = *end ? end + 1 : end;
  }
  return true;
}

static int pass_part(void *ctx, const PGresult *r) {
  const mcpr__stats_sinks *k = ctx;
  mcpr__sketch sk = {0};
  unsigned char *blob = NULL;
  size_t len = 0;
  if (!sketch_parse(&sk, PQgetisnull(r, 0, 9) ? "" : PQgetvalue(r, 0, 9)) ||
      !mcpr__sketch_encode(&sk, &blob, &len)) {
    mcpr__sketch_release(&sk);
    return 1;
  }
  mcpr__sketch_release(&sk);
  mcpr__stats_part part = {
      .is_tool = (int)col_int(r, 0),
      .name = PQgetvalue(r, 0, 1),
      .name_len = (size_t)PQgetlength(r, 0, 1),
      .calls = col_int(r, 2),
      .errors = col_int(r, 3),
      .sum_us = col_int(r, 4),
      .min_us = col_int(r, 5),
      .max_us = col_int(r, 6),
      .bytes_in = col_int(r, 7),
      .bytes_out = col_int(r, 8),
      .sketch = blob,
      .sketch_len = len,
  };
  int rc = k->part(k->ctx, &part);
  free(blob);
  return rc;
}

/* The requests of f's window as stats_scan reads them; rolled: 1 only
 * those the rollups count, before ts before_ms; 0 only the others. */
static void build_stats_rows(pgb *b, const mcpr_stats_filter *f, int rolled, int64_t before_ms) {
  pb_init(b);
  pb_add(b, "SELECT tool, method, latency_us, status <> 'ok', bytes_in, bytes_out"
            " FROM requests WHERE true");
  if (f->proxy)
    pb_text(b, " AND proxy = ?", f->proxy);
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF)
    pb_int(b, " AND ts >= ?", f->since_ms);
  if (rolled == 1)
    pb_int(b, " AND ts < ? AND rolled", before_ms);
  else if (rolled == 0)
    pb_add(b, " AND NOT rolled");
}

static mcpr_status pg_stats_rollup(void *p, const mcpr_stats_filter *f,
                                   const mcpr__stats_sinks *sinks, mcpr_error *err) {
  pg_impl *impl = p;
  bool usable = false;
  mcpr_status s = read_begin(impl, err);
  if (s == MCPR_OK)
    s = rollups_usable(impl, &usable, err);
  if (s != MCPR_OK || !usable) {
    if (s == MCPR_OK)
      s = pg_stats_scan(p, f, sinks->sample, sinks->ctx, err);
    goto out;
  }
  int64_t h0 = first_full_hour(f->since_ms);
  rollup_span sp = span_of(h0);
  sp.pending = impl->pending;
  pgb b;
  int64_t in_rollups = 0;
  for (int day = 0; day < 2 && s == MCPR_OK; day++) {
    int64_t n = 0;
    if (!level_used(&sp, day))
      continue;
    pb_init(&b);
    pb_add(&b, "SELECT coalesce(sum(calls), 0)::int8");
    pb_rollup_from(&b, &sp, day, false);
    if (f->proxy)
      pb_text(&b, " AND proxy = ?", f->proxy);
    s = one_row(impl, &b, &n, NULL, err);
    in_rollups += n;
  }
  if (s != MCPR_OK)
    goto out;
  if (in_rollups <= impl->rollup_raw_max_rows) {
    s = pg_stats_scan(p, f, sinks->sample, sinks->ctx, err);
    goto out;
  }
  for (int day = 0; day < 2 && s == MCPR_OK; day++) {
    if (!level_used(&sp, day))
      continue;
    build_rollup_parts(&b, f->proxy, &sp, day);
    s = each_row(impl, &b, pass_part, (void *)sinks, err);
  }
  sample_sink k = {sinks->sample, sinks->ctx};
  if (s == MCPR_OK && h0 != INT64_MIN) {
    build_stats_rows(&b, f, 1, h0 * MCPR__PG_ROLLUP_HOUR_MS);
    s = each_row(impl, &b, pass_sample, &k, err);
  }
  if (s == MCPR_OK) {
    build_stats_rows(&b, f, 0, 0);
    s = each_row(impl, &b, pass_sample, &k, err);
  }
out:
  read_end(impl);
  return s;
}

void mcpr__query_pg_set_rollup_raw_max(mcpr_query *q, int64_t rows) {
  if (q && q->backend == &mcpr__query_pg_backend)
    ((pg_impl *)q->impl)->rollup_raw_max_rows = rows;
}

/* ---------- time series ---------- */

/*
 * As the SQLite store (backend/sqlite/series.c): when the buckets are
 * whole hours on hour boundaries and the rollup hours wholly inside the
 * window hold more than ROLLUP_RAW_MAX_ROWS requests, those hours come
 * from mcpr_rollup_hour as parts (one per hour, proxy and label, with its
 * sketch); the partial hour at the end is read raw (the rows the rollups
 * count), and so is every row they do not count. Else every request of
 * the window, raw. One snapshot.
 */

static void build_series_rows(pgb *b, const mcpr_series_filter *f, int64_t since_ms,
                              int64_t until_ms, int rolled) {
  pb_init(b);
  pb_add(b, "SELECT ts, tool, method, latency_us, status <> 'ok' FROM requests WHERE true");
  pb_int(b, " AND ts >= ?", since_ms);
  pb_int(b, " AND ts < ?", until_ms);
  if (f->proxy)
    pb_text(b, " AND proxy = ?", f->proxy);
  if (f->tool)
    pb_text(b, " AND tool = ?", f->tool);
  if (rolled >= 0)
    pb_add(b, rolled ? " AND rolled" : " AND NOT rolled");
}

/* The series' filters on a rollup hour table h (or its pending one). */
static void pb_series_where(pgb *b, const mcpr_series_filter *f, int64_t h_lo, int64_t h_hi) {
  pb_int(b, " WHERE hour >= ?", h_lo);
  pb_int(b, " AND hour < ?", h_hi);
  if (f->proxy)
    pb_text(b, " AND proxy = ?", f->proxy);
  if (f->tool)
    pb_text(b, " AND is_tool = 1 AND name = ?", f->tool);
}

static void build_series_parts(pgb *b, const mcpr_series_filter *f, int64_t h_lo, int64_t h_hi,
                               bool count_only, bool pending) {
  pb_init(b);
  if (count_only) {
    pb_add(b, pending ? "SELECT coalesce(sum(calls), 0)::int8 FROM (SELECT hour, " FIGURE_COLS
                        " FROM mcpr_rollup_hour UNION ALL SELECT hour, " FIGURE_COLS
                        " FROM mcpr_rollup_pending) h"
                      : "SELECT coalesce(sum(calls), 0)::int8 FROM mcpr_rollup_hour h");
    pb_series_where(b, f, h_lo, h_hi);
    return;
  }
  pb_add(b, "SELECT hour, is_tool, name, calls, errors, (SELECT string_agg(k.key"
            " || ':' || k.n, ',') FROM mcpr_rollup_hour_sketch k"
            " WHERE k.hour = h.hour AND k.proxy = h.proxy"
            " AND k.is_tool = h.is_tool AND k.name = h.name) FROM mcpr_rollup_hour h");
  pb_series_where(b, f, h_lo, h_hi);
  if (!pending)
    return;
  /* The pending groups as parts of their own (parts add up), each hour
   * and label's rows summed, its buckets joined rather than looked up per
   * part (the table has no index). */
  pb_add(b, " UNION ALL SELECT p.hour, p.is_tool, p.name, p.calls, p.errors, k.s FROM"
            " (SELECT hour, proxy, is_tool, name, sum(calls)::int8 AS calls,"
            " sum(errors)::int8 AS errors FROM mcpr_rollup_pending");
  pb_series_where(b, f, h_lo, h_hi);
  pb_add(b, " GROUP BY 1, 2, 3, 4) p LEFT JOIN (SELECT hour, proxy, is_tool, name,"
            " string_agg(key || ':' || n, ',') AS s FROM (SELECT hour, proxy, is_tool, name, key,"
            " sum(n)::int8 AS n FROM mcpr_rollup_pending_sketch");
  pb_series_where(b, f, h_lo, h_hi);
  pb_add(b, " GROUP BY 1, 2, 3, 4, 5) x GROUP BY 1, 2, 3, 4) k"
            " USING (hour, proxy, is_tool, name)");
}

static int pass_series(void *ctx, const PGresult *r) {
  const mcpr__series_sinks *k = ctx;
  mcpr__series_sample sm = {
      .ts_ms = col_int(r, 0),
      .tool = isnull(r, 1) ? NULL : PQgetvalue(r, 0, 1),
      .tool_len = isnull(r, 1) ? 0 : (size_t)PQgetlength(r, 0, 1),
      .method = PQgetvalue(r, 0, 2),
      .method_len = (size_t)PQgetlength(r, 0, 2),
      .latency_us = col_int(r, 3),
      .is_error = col_bool(r, 4),
  };
  return k->sample(k->ctx, &sm);
}

static int pass_series_part(void *ctx, const PGresult *r) {
  const mcpr__series_sinks *k = ctx;
  mcpr__sketch sk = {0};
  unsigned char *blob = NULL;
  size_t len = 0;
  if (!sketch_parse(&sk, isnull(r, 5) ? "" : PQgetvalue(r, 0, 5)) ||
      !mcpr__sketch_encode(&sk, &blob, &len)) {
    mcpr__sketch_release(&sk);
    return 1;
  }
  mcpr__sketch_release(&sk);
  mcpr__series_part part = {
      .hour_start_ms = col_int(r, 0) * MCPR__PG_ROLLUP_HOUR_MS,
      .is_tool = (int)col_int(r, 1),
      .name = PQgetvalue(r, 0, 2),
      .name_len = (size_t)PQgetlength(r, 0, 2),
      .calls = col_int(r, 3),
      .errors = col_int(r, 4),
      .sketch = blob,
      .sketch_len = len,
  };
  int rc = k->part(k->ctx, &part);
  free(blob);
  return rc;
}

static mcpr_status series_rollup(pg_impl *impl, const mcpr_series_filter *f,
                                 const mcpr__series_sinks *sinks, bool *used, mcpr_error *err) {
  const int64_t H = MCPR__PG_ROLLUP_HOUR_MS;
  *used = false;
  if (f->bucket_ms % H != 0 || f->since_ms % H != 0 || f->since_ms < 0)
    return MCPR_OK;
  bool usable = false;
  mcpr_status s = rollups_usable(impl, &usable, err);
  int64_t h_lo = f->since_ms / H, h_hi = f->until_ms / H; /* hours wholly inside */
  if (s != MCPR_OK || !usable || h_hi <= h_lo)
    return s;
  pgb b;
  int64_t in_rollups = 0;
  build_series_parts(&b, f, h_lo, h_hi, true, impl->pending);
  s = one_row(impl, &b, &in_rollups, NULL, err);
  /* The SQLite store's bound, which its tests' setting does not move. */
  if (s != MCPR_OK || in_rollups <= ROLLUP_RAW_MAX_ROWS)
    return s;
  *used = true;
  build_series_parts(&b, f, h_lo, h_hi, false, impl->pending);
  s = each_row(impl, &b, pass_series_part, (void *)sinks, err);
  if (s == MCPR_OK && h_hi * H < f->until_ms) {
    build_series_rows(&b, f, h_hi * H, f->until_ms, 1);
    s = each_row(impl, &b, pass_series, (void *)sinks, err);
  }
  if (s == MCPR_OK) {
    build_series_rows(&b, f, f->since_ms, f->until_ms, 0);
    s = each_row(impl, &b, pass_series, (void *)sinks, err);
  }
  return s;
}

static mcpr_status pg_series_scan(void *p, const mcpr_series_filter *f,
                                  const mcpr__series_sinks *sinks, mcpr_error *err) {
  pg_impl *impl = p;
  bool used = false;
  mcpr_status s = read_begin(impl, err);
  if (s == MCPR_OK)
    s = series_rollup(impl, f, sinks, &used, err);
  if (s == MCPR_OK && !used) {
    pgb b;
    build_series_rows(&b, f, f->since_ms, f->until_ms, -1);
    s = each_row(impl, &b, pass_series, (void *)sinks, err);
  }
  read_end(impl);
  return s;
}

/* ---------- building the rollups ---------- */

#define ROLLUP_CHUNK 20000

/* `mcpr store rollup`: count the rows no writer counted (another
 * program's, or a store's from before the rollups), a chunk per
 * transaction; then fold what writers left pending (rollup.h), unless a
 * writer is folding at that moment. */
static mcpr_status pg_rollup(void *p, mcpr_rollup_progress_fn fn, void *ctx,
                             mcpr_rollup_progress *out, mcpr_error *err) {
  pg_impl *impl = p;
  int64_t have = 0;
  mcpr_status s = fixed(impl, "SELECT (to_regclass('mcpr_retention_state') IS NOT NULL)::int",
                        &have, NULL, err);
  if (s != MCPR_OK || have != 1)
    return s; /* no rollups here until a writer of this version opens the store */
  for (out->left = 1; out->left > 0;) {
    int64_t rolled = 0, t0 = mcpr__mono_ms();
    s = mcpr__pg_rollup_catch_up(impl->conn, &impl->t, ROLLUP_CHUNK, &rolled, &out->left, err);
    if (s != MCPR_OK)
      return s;
    int64_t ms = mcpr__mono_ms() - t0;
    out->rolled += rolled;
    out->batches++;
    if (ms > out->longest_lock_ms)
      out->longest_lock_ms = ms;
    if (fn)
      fn(ctx, out);
    if (rolled == 0)
      break; /* the rest is another catch-up's, locked */
  }
  s = fixed(impl, "SELECT (to_regclass('mcpr_rollup_pending_sketch') IS NOT NULL)::int", &have,
            NULL, err);
  int64_t moved = 0;
  if (s == MCPR_OK && have == 1)
    s = mcpr__pg_rollup_fold(impl->conn, &impl->t, true, &moved, err);
  return s;
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
      /* Added up: with rollups a tool comes from up to three parts. */
      mcpr__tool_usage *u = &k->usage[i];
      u->calls += col_int(r, 1);
      u->errors += col_int(r, 2);
      int64_t last = col_int(r, 3);
      if (last != MCPR_QUERY_NULL &&
          (u->last_called_at_ms == MCPR_QUERY_NULL || last > u->last_called_at_ms))
        u->last_called_at_ms = last;
      break;
    }
  }
  return 0;
}

/* Requests of the named tools; rolled: 1 only the rows the rollups
 * count, 0 only the others, -1 all; before_ms INT64_MIN: no bound. */
static void build_tool_usage_rows(pgb *b, const char *arr, const char *proxy, int64_t since_ms,
                                  int64_t before_ms, int rolled) {
  pb_init(b);
  pb_param(b, "SELECT tool, count(*), count(*) FILTER (WHERE status <> 'ok'), max(ts)"
              " FROM requests WHERE tool = ANY(?)", "text[]", arr);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    pb_int(b, " AND ts >= ?", since_ms);
  if (before_ms != INT64_MIN)
    pb_int(b, " AND ts < ?", before_ms);
  if (rolled >= 0)
    pb_add(b, rolled ? " AND rolled" : " AND NOT rolled");
  if (proxy)
    pb_text(b, " AND proxy = ?", proxy);
  pb_add(b, " GROUP BY tool");
}

static mcpr_status pg_tool_usage(void *p, const char *proxy, int64_t since_ms,
                                 const char *const *names, size_t n, mcpr__tool_usage *usage,
                                 mcpr_error *err) {
  pg_impl *impl = p;
  char *arr = names_array(names, n);
  if (!arr)
    return oom_error(err);
  pgb b;
  usage_sink k = {names, n, usage};
  bool usable = false;
  /* One snapshot: the rollups and the rows agree. */
  mcpr_status s = read_begin(impl, err);
  if (s == MCPR_OK)
    s = rollups_usable(impl, &usable, err);
  if (s == MCPR_OK && !usable) {
    build_tool_usage_rows(&b, arr, proxy, since_ms, INT64_MIN, -1);
    s = each_row(impl, &b, match_usage, &k, err);
  } else if (s == MCPR_OK) {
    int64_t h0 = first_full_hour(since_ms);
    rollup_span sp = span_of(h0);
    sp.pending = impl->pending;
    for (int day = 0; day < 2 && s == MCPR_OK; day++) {
      if (!level_used(&sp, day))
        continue;
      pb_init(&b);
      pb_add(&b, "SELECT name, sum(calls), sum(errors), max(last_ts)");
      pb_rollup_from(&b, &sp, day, false);
      pb_param(&b, " AND is_tool = 1 AND name = ANY(?)", "text[]", arr);
      if (proxy)
        pb_text(&b, " AND proxy = ?", proxy);
      pb_add(&b, " GROUP BY name");
      s = each_row(impl, &b, match_usage, &k, err);
    }
    if (s == MCPR_OK && h0 != INT64_MIN) {
      build_tool_usage_rows(&b, arr, proxy, since_ms, h0 * MCPR__PG_ROLLUP_HOUR_MS, 1);
      s = each_row(impl, &b, match_usage, &k, err);
    }
    if (s == MCPR_OK) {
      build_tool_usage_rows(&b, arr, proxy, since_ms, INT64_MIN, 0);
      s = each_row(impl, &b, match_usage, &k, err);
    }
  }
  read_end(impl);
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
  if (s == MCPR_OK)
    s = mcpr__pg_retention_read(impl->conn, &impl->t, out, err);
  if (s != MCPR_OK)
    return s;
  out->wal_bytes = 0;
  out->schema_version = version == MCPR_QUERY_NULL ? 0 : (int)version;
  out->last_failure = MCPR_OK;
  return MCPR_OK;
}

/* ---------- vacuum ---------- */

/*
 * SPEC §6 on PostgreSQL, as the SQLite store does it (backend/sqlite/
 * query.c): requests before the cutoff (of one proxy) go VACUUM_CHUNK_ROWS
 * per transaction, so a writer's batch never waits on a long one; the
 * rollups of the hours deleted go too and the hour the cutoff cuts is
 * counted again from the rows left (rollup.c); the sessions that ended
 * before the cutoff with no request left are found in one anti-join into
 * a temporary table and deleted a chunk per transaction, each checked
 * again against requests written meanwhile (by proxy and time, through
 * idx_requests_proxy_ts, as retention does). Space is then PostgreSQL's
 * own: a plain VACUUM (ANALYZE) of the store's tables makes the deleted
 * rows' space reusable (and gives back what is at the end of the files)
 * without the exclusive lock of VACUUM FULL, so writers go on meanwhile.
 */

#define VACUUM_CHUNK_ROWS 5000
#define VACUUM_LOCK_WAIT_MS 60000
#define VACUUM_SESSION_SLACK_MS 3600000

/* The sessions a vacuum deletes (ended before the cutoff, of proxy, no
 * request left), after what (with before_delete: a dry run's count, the
 * requests before the cutoff of other proxies only) survives. */
static void pb_vacuum_sessions(pgb *b, const char *select, const mcpr_vacuum_options *o,
                               bool before_delete) {
  pb_int(b, select, o->before_ms);
  if (o->proxy)
    pb_text(b, " AND s.proxy = ?", o->proxy);
  pb_add(b, " AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.session_id = s.session_id");
  if (before_delete) {
    pb_int(b, " AND (r.ts >= ?", o->before_ms);
    if (o->proxy)
      pb_text(b, " OR r.proxy <> ?", o->proxy);
    pb_add(b, ")");
  }
  pb_add(b, ")");
}

static mcpr_status run_pgb(pg_impl *impl, const pgb *b, int64_t *changed, mcpr_error *err,
                           const char *doing) {
  if (b->overflow)
    return mcpr_error_set(err, MCPR_EINVAL, "internal: query too long");
  return mcpr__pg_run(impl->conn, &impl->t, b->sql, b->n, b->params, changed, err, doing);
}

static mcpr_status vacuum_count(pg_impl *impl, const mcpr_vacuum_options *o,
                                mcpr_vacuum_result *out, mcpr_error *err) {
  pgb b;
  mcpr_status s = read_begin(impl, err);
  if (s != MCPR_OK)
    return s;
  pb_init(&b);
  pb_int(&b, "SELECT count(*) FROM requests WHERE ts < ?", o->before_ms);
  if (o->proxy)
    pb_text(&b, " AND proxy = ?", o->proxy);
  s = one_row(impl, &b, &out->requests_deleted, NULL, err);
  if (s == MCPR_OK) {
    pb_init(&b);
    pb_vacuum_sessions(&b, "SELECT count(*) FROM sessions s WHERE s.ended_at < ?", o, true);
    s = one_row(impl, &b, &out->sessions_deleted, NULL, err);
  }
  read_end(impl);
  return s;
}

/* The rollups lose the deleted hours, in a transaction of their own. */
static mcpr_status vacuum_rollups(pg_impl *impl, const mcpr_vacuum_options *o, mcpr_error *err) {
  int64_t have = 0;
  mcpr_status s = fixed(impl, "SELECT (to_regclass('mcpr_rollup_day_sketch') IS NOT NULL)::int",
                        &have, NULL, err);
  if (s != MCPR_OK || have != 1)
    return s;
  s = mcpr__pg_run(impl->conn, &impl->t, "BEGIN", 0, NULL, NULL, err, "updating the rollups");
  if (s == MCPR_OK) { /* two statements: not through PQexecParams */
    PGresult *r = PQexec(impl->conn, MCPR__PG_ROLLUP_PENDING_DDL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      s = mcpr__pg_error(impl->conn, r, &impl->t, err, "updating the rollups");
    PQclear(r);
  }
  if (s == MCPR_OK)
    s = mcpr__pg_rollup_forget_before(impl->conn, &impl->t, o->before_ms, o->proxy, err);
  if (s == MCPR_OK)
    s = mcpr__pg_run(impl->conn, &impl->t, "COMMIT", 0, NULL, NULL, err,
                     "updating the rollups");
  if (s != MCPR_OK && PQtransactionStatus(impl->conn) != PQTRANS_IDLE)
    mcpr__pg_exec(impl->conn, "ROLLBACK");
  return s;
}

static mcpr_status vacuum_sessions(pg_impl *impl, const mcpr_vacuum_options *o,
                                   mcpr_vacuum_result *out, mcpr_error *err) {
  pgb b;
  int64_t found = 0;
  mcpr_status s = mcpr__pg_run(impl->conn, &impl->t,
                               "CREATE TEMP TABLE IF NOT EXISTS mcpr_vacuum_sessions"
                               " (rn BIGSERIAL PRIMARY KEY,"
                               " session_id TEXT COLLATE \"C\" NOT NULL)",
                               0, NULL, NULL, err, "finding the sessions to delete");
  if (s == MCPR_OK)
    s = mcpr__pg_run(impl->conn, &impl->t, "TRUNCATE mcpr_vacuum_sessions RESTART IDENTITY", 0,
                     NULL, NULL, err, "finding the sessions to delete");
  if (s != MCPR_OK)
    return s;
  pb_init(&b);
  pb_vacuum_sessions(&b,
                     "INSERT INTO mcpr_vacuum_sessions (session_id) SELECT s.session_id"
                     " FROM sessions s WHERE s.ended_at < ?",
                     o, false);
  s = run_pgb(impl, &b, &found, err, "finding the sessions to delete");
  for (int64_t first = 0; first < found && s == MCPR_OK; first += VACUUM_CHUNK_ROWS) {
    int64_t n = 0;
    pb_init(&b);
    pb_int(&b, "DELETE FROM sessions s USING mcpr_vacuum_sessions v"
               " WHERE v.session_id = s.session_id AND v.rn > ?", first);
    pb_int(&b, " AND v.rn <= ?", first + VACUUM_CHUNK_ROWS);
    pb_int(&b, " AND s.ended_at < ?", o->before_ms);
    pb_int(&b, " AND NOT EXISTS (SELECT 1 FROM requests q WHERE q.proxy = s.proxy"
               " AND q.ts >= s.started_at - ?", VACUUM_SESSION_SLACK_MS);
    pb_int(&b, " AND q.ts <= GREATEST(s.ended_at, s.last_seen_at) + ?",
           VACUUM_SESSION_SLACK_MS);
    pb_add(&b, " AND q.session_id = s.session_id)");
    s = run_pgb(impl, &b, &n, err, "deleting sessions");
    out->sessions_deleted += n;
  }
  mcpr__pg_exec(impl->conn, "DROP TABLE IF EXISTS mcpr_vacuum_sessions");
  return s;
}

static mcpr_status pg_vacuum(void *p, const mcpr_vacuum_options *o, mcpr_vacuum_result *out,
                             mcpr_error *err) {
  pg_impl *impl = p;
  mcpr_status s = fixed(impl, "SELECT pg_database_size(current_database())", &out->bytes_before,
                        NULL, err);
  if (s != MCPR_OK)
    return s;
  if (o->dry_run) {
    out->bytes_after = out->bytes_before;
    return vacuum_count(impl, o, out, err);
  }
  /* Each delete waits for a writer's locks at most this long. */
  char wait[32];
  snprintf(wait, sizeof wait, "%lldms",
           (long long)(o->lock_wait_ms > 0 ? o->lock_wait_ms : VACUUM_LOCK_WAIT_MS));
  const char *params[1] = {wait};
  s = mcpr__pg_run(impl->conn, &impl->t, "SELECT set_config('lock_timeout', $1, false)", 1,
                   params, NULL, err, "setting the lock timeout");
  for (int64_t n = VACUUM_CHUNK_ROWS; s == MCPR_OK && n == VACUUM_CHUNK_ROWS;) {
    pgb b;
    pb_init(&b);
    pb_int(&b, "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE ts < ?",
           o->before_ms);
    if (o->proxy)
      pb_text(&b, " AND proxy = ?", o->proxy);
    pb_int(&b, " LIMIT ?)", VACUUM_CHUNK_ROWS);
    n = 0;
    s = run_pgb(impl, &b, &n, err, "deleting requests");
    out->requests_deleted += n;
  }
  if (s == MCPR_OK)
    s = vacuum_rollups(impl, o, err);
  if (s == MCPR_OK)
    s = vacuum_sessions(impl, o, out, err);
  int64_t rollups = 0;
  if (s == MCPR_OK)
    s = fixed(impl, "SELECT (to_regclass('mcpr_rollup_day_sketch') IS NOT NULL)::int", &rollups,
              NULL, err);
  if (s == MCPR_OK)
    s = mcpr__pg_run(impl->conn, &impl->t,
                     rollups == 1 ? "VACUUM (ANALYZE) requests, sessions, mcpr_rollup_hour,"
                                    " mcpr_rollup_pending, mcpr_rollup_pending_sketch,"
                                    " mcpr_rollup_hour_sketch, mcpr_rollup_day,"
                                    " mcpr_rollup_day_sketch"
                                  : "VACUUM (ANALYZE) requests, sessions",
                     0, NULL, NULL, err, "reclaiming space (VACUUM)");
  if (s == MCPR_OK)
    s = fixed(impl, "SELECT pg_database_size(current_database())", &out->bytes_after, NULL, err);
  return s;
}

const mcpr__query_backend mcpr__query_pg_backend = {
    .name = "postgres",
    .close = pg_close,
    .logs = pg_logs,
    .last_row_id = pg_last_row_id,
    .stats_scan = pg_stats_scan,
    .stats_rollup = pg_stats_rollup,
    .rollup = pg_rollup,
    .session_counts = pg_session_counts,
    .sessions = pg_sessions,
    .sessions_by_prefix = pg_sessions_by_prefix,
    .clients = pg_clients,
    .schema = pg_schema,
    .schema_changes = pg_schema_changes,
    .tool_usage = pg_tool_usage,
    .store_info = pg_store_info,
    .vacuum = pg_vacuum,
    .series_scan = pg_series_scan,
};

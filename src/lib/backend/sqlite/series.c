/*
 * series.c — the SQLite SQL of the time series (query/series.c buckets
 * what this reads). Bound parameters only.
 *
 * Raw: every request of the window, unordered, in one pass through
 * idx_requests_ts, or idx_requests_proxy_ts / idx_requests_tool_ts when a
 * proxy or tool is given — about a second per million requests.
 *
 * From the rollups, as stats does (query.c): when the buckets are whole
 * hours on hour boundaries and the window's rollup hours hold more than
 * RAW_MAX_ROWS requests, the hours wholly inside the window come from
 * mcpr_rollup_hour (rows up to the watermark W) as parts; the partial
 * hours at both ends are read raw (rows up to W, through the ts index),
 * and every row above W through the rowid. One read transaction, so W,
 * the rollups and the rows are one snapshot.
 */
#include "backend/sqlite/rollup.h"
#include "backend/sqlite/series.h"
#include "backend/sqlite/sqlb.h"

/* As stats: below this many requests a raw read costs about as much as
 * merging the sketches, and gives exact percentiles. */
#define RAW_MAX_ROWS 50000
/* Rows above the watermark are read through the rowid: more than this
 * and the rollups are not used. */
#define MAX_BEHIND 200000

#define SERIES_COLUMNS "SELECT ts, tool, method, latency_us, status <> 'ok' FROM requests"

static void build_raw(sqlb *b, const mcpr_series_filter *f, int64_t since_ms, int64_t until_ms,
                      int64_t up_to_id) {
  sb_init(b);
  sb_add(b, SERIES_COLUMNS " WHERE 1");
  sb_int(b, " AND ts >= ?", since_ms);
  sb_int(b, " AND ts < ?", until_ms);
  if (f->proxy)
    sb_text(b, " AND proxy = ?", f->proxy);
  if (f->tool)
    sb_text(b, " AND tool = ?", f->tool);
  if (up_to_id >= 0)
    sb_int(b, " AND id <= ?", up_to_id);
}

static void build_above(sqlb *b, const mcpr_series_filter *f, int64_t watermark) {
  sb_init(b);
  /* NOT INDEXED: the rowid range only (an index would walk the window). */
  sb_add(b, SERIES_COLUMNS " NOT INDEXED WHERE 1");
  sb_int(b, " AND id > ?", watermark);
  sb_int(b, " AND +ts >= ?", f->since_ms);
  sb_int(b, " AND +ts < ?", f->until_ms);
  if (f->proxy)
    sb_text(b, " AND +proxy = ?", f->proxy);
  if (f->tool)
    sb_text(b, " AND +tool = ?", f->tool);
}

static void build_parts(sqlb *b, const mcpr_series_filter *f, int64_t h_lo, int64_t h_hi,
                        bool count_only) {
  sb_init(b);
  sb_add(b, count_only ? "SELECT coalesce(sum(calls), 0)"
                       : "SELECT hour, is_tool, name, calls, errors, sketch");
  sb_int(b, " FROM mcpr_rollup_hour WHERE hour >= ?", h_lo);
  sb_int(b, " AND hour < ?", h_hi);
  if (f->proxy)
    sb_text(b, " AND proxy = ?", f->proxy);
  if (f->tool)
    sb_text(b, " AND is_tool = 1 AND name = ?", f->tool);
}

static int pass_series(void *ctx, sqlite3_stmt *st) {
  const mcpr__series_sinks *k = ctx;
  mcpr__series_sample s = {
      .ts_ms = sqlite3_column_int64(st, 0),
      .tool = (const char *)sqlite3_column_text(st, 1),
      .tool_len = (size_t)sqlite3_column_bytes(st, 1),
      .method = (const char *)sqlite3_column_text(st, 2),
      .method_len = (size_t)sqlite3_column_bytes(st, 2),
      .latency_us = col_int(st, 3),
      .is_error = sqlite3_column_int(st, 4),
  };
  return k->sample(k->ctx, &s);
}

static int pass_part(void *ctx, sqlite3_stmt *st) {
  const mcpr__series_sinks *k = ctx;
  mcpr__series_part p = {
      .hour_start_ms = sqlite3_column_int64(st, 0) * MCPR__ROLLUP_HOUR_MS,
      .is_tool = sqlite3_column_int(st, 1),
      .name = (const char *)sqlite3_column_text(st, 2),
      .name_len = (size_t)sqlite3_column_bytes(st, 2),
      .calls = sqlite3_column_int64(st, 3),
      .errors = sqlite3_column_int64(st, 4),
      .sketch = sqlite3_column_blob(st, 5),
      .sketch_len = (size_t)sqlite3_column_bytes(st, 5),
  };
  return k->part(k->ctx, &p);
}

/* The watermark when the rollups can serve a read (the file has them and
 * they are not far behind the rows), else -1. */
static int64_t usable_watermark(sqlite3 *db) {
  sqlite3_stmt *st = NULL;
  bool yes = sqlite3_prepare_v2(db,
                                "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                " AND name = 'mcpr_rollup_state'",
                                -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (!yes)
    return -1;
  int64_t w = mcpr__rollup_watermark(db), top = 0;
  if (w < 0 || fixed_row(db, "SELECT max(id) FROM requests", &top, NULL, NULL) != MCPR_OK)
    return -1;
  return top == MCPR_QUERY_NULL || top - w <= MAX_BEHIND ? w : -1;
}

static mcpr_status series_rollup(sqlite3 *db, const mcpr_series_filter *f,
                                 const mcpr__series_sinks *sinks, bool *used, mcpr_error *err) {
  const int64_t H = MCPR__ROLLUP_HOUR_MS;
  *used = false;
  if (f->bucket_ms % H != 0 || f->since_ms % H != 0 || f->since_ms < 0)
    return MCPR_OK;
  int64_t w = usable_watermark(db);
  int64_t h_lo = f->since_ms / H, h_hi = f->until_ms / H; /* hours wholly inside */
  if (w < 0 || h_hi <= h_lo)
    return MCPR_OK;
  sqlb b;
  int64_t in_rollups = 0;
  build_parts(&b, f, h_lo, h_hi, true);
  mcpr_status s = count_one(db, &b, &in_rollups, err);
  if (s != MCPR_OK || in_rollups <= RAW_MAX_ROWS)
    return s;
  *used = true;
  build_parts(&b, f, h_lo, h_hi, false);
  s = each_row(db, &b, pass_part, (void *)sinks, err);
  if (s == MCPR_OK && h_hi * H < f->until_ms) {
    build_raw(&b, f, h_hi * H, f->until_ms, w);
    s = each_row(db, &b, pass_series, (void *)sinks, err);
  }
  if (s == MCPR_OK) {
    build_above(&b, f, w);
    s = each_row(db, &b, pass_series, (void *)sinks, err);
  }
  return s;
}

mcpr_status mcpr__sqlite_series_scan(sqlite3 *db, const mcpr_series_filter *f,
                                     const mcpr__series_sinks *sinks, mcpr_error *err) {
  if (mcpr__db_exec(db, "BEGIN") != SQLITE_OK)
    return mcpr__db_error(db, sqlite3_errcode(db), err, "reading the store");
  bool used = false;
  mcpr_status s = series_rollup(db, f, sinks, &used, err);
  if (s == MCPR_OK && !used) {
    sqlb b;
    build_raw(&b, f, f->since_ms, f->until_ms, -1);
    s = each_row(db, &b, pass_series, (void *)sinks, err);
  }
  mcpr__db_exec(db, "COMMIT");
  return s;
}

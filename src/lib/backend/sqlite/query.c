/*
 * query.c — the SQLite backend's read side: every SQL statement of the
 * query engine (SPEC §6) lives here, behind query/backend.h, so a
 * PostgreSQL backend can sit beside it. It calls nothing of the public
 * query API: the engine (query/query.c) calls it.
 *
 * Statements are assembled with the builder of sqlb.h (shared with
 * query_v05.c, the read side of the original's 0.5 layout) from fixed
 * fragments, and every value is a bound parameter. Each builder (build_*)
 * is used both to run the query and, by mcpr__query_sqlite_plans(), to show
 * its plan — so docs/query-plans.md and the plan test see exactly the SQL
 * that runs.
 *
 * Index use (see docs/query-plans.md): time windows go through
 * idx_requests_ts or idx_requests_proxy_ts / idx_requests_tool_ts when a
 * proxy or tool is given; a session filter is bounded by the session's
 * lifetime from the sessions table (sb_session_window) and a prefix is
 * turned into the range [prefix, prefix-with-last-byte+1);
 * follow mode walks the rowid. The connection is read-only in practice
 * (WAL: it never blocks the writer); only vacuum writes, in short
 * transactions that wait out the writer's lock.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backend/sqlite/db.h"
#include "backend/sqlite/extra_schema.h"
#include "backend/sqlite/query.h"
#include "backend/sqlite/retention.h"
#include "backend/sqlite/rollup.h"
#include "backend/sqlite/series.h"
#include "backend/sqlite/sqlb.h"
#include "backend/sqlite/sqlite.h"
#include "core/clock.h"
#include "mcpr/util.h"
#include "query/backend.h"

#define VACUUM_CHUNK_ROWS 5000
#define VACUUM_LOCK_WAIT_MS 60000
/* Between two batches: flock() is not fair, and a lock released and
 * taken again at once would starve a writer waiting for it. */
#define VACUUM_BATCH_PAUSE_MS 3

/* Stats read raw — exact p95 — while the rollup hours of the window hold
 * at most this many requests: scanning them costs about as much as
 * merging their sketches. */
#define ROLLUP_RAW_MAX_ROWS 50000

typedef struct sqlite_impl {
  sqlite3 *db;
  char *path;
  int64_t rollup_raw_max_rows; /* see mcpr__query_sqlite_set_rollup_raw_max() */
  bool sessions_walk;          /* see mcpr__query_sqlite_set_sessions_walk() */
} sqlite_impl;

/*
 * A read that visits each page about once (clients, the plain session
 * list, slow and stats from the rollups) gains nothing from the
 * connection's 64 MB page cache, and pays for filling it: every page read
 * lands in freshly allocated memory, one page fault each — two thirds of
 * the CPU of reading 100k sessions (2,500 pages) on the 2-core VM. With a
 * small cache the same few buffers are reused. The connection's size
 * (SPEC §4's cache_size) is restored after the read.
 */
#define ONE_PASS_CACHE_PAGES 64

static int64_t cache_size_swap(sqlite3 *db, int64_t size) {
  int64_t was = 0;
  if (fixed_row(db, "PRAGMA cache_size", &was, NULL, NULL) != MCPR_OK)
    return 0;
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA cache_size=%lld", (long long)size);
  sqlite3_exec(db, sql, NULL, NULL, NULL);
  return was;
}

/*
 * A session's requests lie between its started_at and its last activity
 * (last_seen_at, or ended_at once closed; an open session: up to now), so
 * the ts index bounds the search to that window instead of the whole table
 * (the store keeps no index on the random session ids: it costs the writer
 * more than anything else). The window is widened by SESSION_SLACK_MS on
 * both sides for clock steps between the proxy's timestamps. Requests
 * whose session row is missing (its session_start was never seen) get no
 * bound and are still found.
 */
#define SESSION_SLACK_MS "3600000"
static void sb_session_window(sqlb *b, const char *where_ge, const char *where_lt,
                              const char *id) {
  static const char lo[] =
      " AND ts >= coalesce((SELECT min(started_at) - " SESSION_SLACK_MS " FROM sessions";
  static const char hi[] =
      " AND ts <= coalesce((SELECT max(CASE WHEN ended_at IS NULL"
      " THEN 9223372036854775807"
      " ELSE max(ended_at, last_seen_at) + " SESSION_SLACK_MS " END) FROM sessions";
  for (int bound = 0; bound < 2; bound++) {
    sb_add(b, bound == 0 ? lo : hi);
    if (where_lt)
      sb_prefix(b, where_ge, where_lt, id);
    else
      sb_text(b, where_ge, id);
    sb_add(b, bound == 0 ? "), -9223372036854775808)" : "), 9223372036854775807)");
  }
}

/* ---------- open / close ---------- */

mcpr_status mcpr__query_sqlite_open(const char *path, void **out, mcpr_error *err) {
  *out = NULL;
  sqlite_impl *impl = calloc(1, sizeof *impl);
  if (!impl)
    return oom_error(err);
  impl->path = strdup(path);
  impl->rollup_raw_max_rows = ROLLUP_RAW_MAX_ROWS;
  impl->sessions_walk = true;
  if (!impl->path) {
    free(impl);
    return oom_error(err);
  }
  mcpr_status st = mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &impl->db, err);
  if (st != MCPR_OK) {
    free(impl->path);
    free(impl);
    return st;
  }
  /*
   * The last connection to close a WAL store checkpoints it, and every
   * checkpoint must hold the commit lock (db.h: SQLite 3.40's
   * WAL-reset race). Taking the lock in close would make a read command
   * wait, at exit, behind a writer's commit or another process's VACUUM
   * (which holds it for seconds); so a query connection never checkpoints
   * on close, and a read never writes the database file. Checkpoints stay
   * with the connections that write: the writer's, and vacuum's explicit
   * one. The cost: when a reader is the last to leave, the -wal file stays
   * (bounded by the writer's auto-checkpoint) for the next writer to reuse.
   */
  sqlite3_db_config(impl->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
  *out = impl;
  return MCPR_OK;
}

/* The hooks of backend/sqlite/query.h below need a store of ours. */
static mcpr_status not_ours(const mcpr_query *q, mcpr_error *err) {
  return mcpr_error_set(err, MCPR_EINVAL, "%s is not read by this backend (%s)", q->path,
                        q->backend->name);
}

static void sqlite_close(void *p) {
  sqlite_impl *impl = p;
  if (!impl)
    return;
  /* Never checkpoints: see mcpr__query_sqlite_open(). */
  sqlite3_close_v2(impl->db);
  free(impl->path);
  free(impl);
}

/* ---------- requests ---------- */

#define LOG_COLUMNS                                                            \
  "SELECT id, request_id, ts, proxy, method, tool, resource_uri, prompt_name,"  \
  " latency_us, status, error_code, error_msg, session_id, bytes_in, bytes_out" \
  " FROM requests WHERE 1"

static void build_logs(sqlb *b, mcpr__log_kind kind, const mcpr_log_filter *f) {
  sb_init(b);
  sb_add(b, LOG_COLUMNS);
  if (f->proxy)
    sb_text(b, " AND proxy = ?", f->proxy);
  if (f->tool)
    sb_text(b, " AND tool = ?", f->tool);
  if (kind != MCPR__SLOW) {
    if (f->method)
      sb_text(b, " AND method = ?", f->method);
    if (f->error_code)
      sb_text(b, " AND error_code = ?", f->error_code);
    if (f->has_status)
      sb_text(b, " AND status = ?", mcpr_request_status_str(f->status));
    if (f->session_id) {
      sb_text(b, " AND session_id = ?", f->session_id);
      sb_session_window(b, " WHERE session_id = ?", NULL, f->session_id);
    } else if (f->session_prefix && *f->session_prefix) {
      sb_prefix(b, " AND session_id >= ?", " AND session_id < ?", f->session_prefix);
      sb_session_window(b, " WHERE session_id >= ?", " AND session_id < ?",
                        f->session_prefix);
    }
  }
  if (kind != MCPR__FOLLOW && kind != MCPR__OLDEST_FIRST && f->since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND ts >= ?", f->since_ms);
  if (f->min_latency_us > 0)
    sb_int(b, " AND latency_us >= ?", f->min_latency_us);
  if (f->after_row_id > 0)
    sb_int(b, " AND id > ?", f->after_row_id);
  if (f->up_to_row_id > 0)
    sb_int(b, " AND id <= ?", f->up_to_row_id);
  switch (kind) {
  case MCPR__LOGS:
    sb_add(b, " ORDER BY ts DESC, id DESC");
    break;
  case MCPR__SLOW:
    sb_add(b, " ORDER BY latency_us DESC, ts DESC, id DESC");
    break;
  case MCPR__FOLLOW:
    sb_add(b, " ORDER BY id");
    break;
  case MCPR__OLDEST_FIRST:
    sb_add(b, " ORDER BY ts, id");
    break;
  }
  sb_int(b, " LIMIT ?", f->limit);
}

/*
 * One session's requests (MCPR__OLDEST_FIRST, the session detail) are
 * first searched inside the session's lifetime window (sb_session_window).
 * A request stored further outside it than the slack (a clock step on the
 * proxy host) is missed there; the session's total_calls counts it. So
 * when the window yields fewer rows than total_calls, the session's
 * requests are read again without the window: a full scan, paid only by
 * such a session.
 */
static mcpr_status slow_rollup(sqlite_impl *impl, const mcpr_log_filter *f, mcpr_log_rows *out,
                               size_t *cap, bool *done, mcpr_error *err);

static mcpr_status sqlite_logs(void *p, mcpr__log_kind kind, const mcpr_log_filter *f,
                               mcpr_log_rows *out, size_t *cap, mcpr_error *err) {
  sqlite_impl *impl = p;
  sqlb b;
  if (kind == MCPR__SLOW && f->after_row_id <= 0) {
    bool done = false;
    int64_t cache_size = cache_size_swap(impl->db, ONE_PASS_CACHE_PAGES);
    mcpr_status s = slow_rollup(impl, f, out, cap, &done, err);
    if (cache_size != 0)
      cache_size_swap(impl->db, cache_size);
    if (s != MCPR_OK || done)
      return s;
  }
  build_logs(&b, kind, f);
  mcpr_status s = read_rows(impl->db, &b, (void **)&out->rows, &out->count, cap,
                            sizeof *out->rows, out->pool, read_log_row, err);
  if (s != MCPR_OK || kind != MCPR__OLDEST_FIRST || !f->session_id ||
      (int64_t)out->count >= f->limit)
    return s;
  int64_t total_calls = 0;
  sb_init(&b);
  sb_text(&b, "SELECT coalesce(max(total_calls), 0) FROM sessions WHERE session_id = ?",
          f->session_id);
  if ((s = count_one(impl->db, &b, &total_calls, err)) != MCPR_OK ||
      (int64_t)out->count >= total_calls)
    return s;
  out->count = 0; /* the rows read so far stay in the pool until release */
  sb_init(&b);
  sb_add(&b, LOG_COLUMNS);
  sb_text(&b, " AND session_id = ?", f->session_id);
  sb_int(&b, " ORDER BY ts, id LIMIT ?", f->limit);
  return read_rows(impl->db, &b, (void **)&out->rows, &out->count, cap, sizeof *out->rows,
                   out->pool, read_log_row, err);
}

static const char SQL_LAST_ROW_ID[] = "SELECT max(id) FROM requests";

static mcpr_status sqlite_last_row_id(void *p, int64_t *out, mcpr_error *err) {
  sqlite_impl *impl = p;
  mcpr_status s = fixed_row(impl->db, SQL_LAST_ROW_ID, out, NULL, err);
  if (s == MCPR_OK && *out == MCPR_QUERY_NULL)
    *out = 0; /* an empty store */
  return s;
}

/* ---------- stats ---------- */

#define STATS_COLUMNS                                                          \
  "SELECT tool, method, latency_us, status <> 'ok', bytes_in, bytes_out"        \
  " FROM requests WHERE 1"

static void build_stats_where(sqlb *b, const mcpr_stats_filter *f) {
  if (f->proxy)
    sb_text(b, " AND proxy = ?", f->proxy);
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND ts >= ?", f->since_ms);
}

static void build_stats(sqlb *b, const mcpr_stats_filter *f, bool sorted) {
  sb_init(b);
  sb_add(b, STATS_COLUMNS);
  build_stats_where(b, f);
  if (sorted)
    sb_add(b, " ORDER BY coalesce(tool, '<' || method || '>'), latency_us");
}

typedef struct sample_sink {
  mcpr__stats_sink sink;
  void *ctx;
} sample_sink;

static int pass_sample(void *ctx, sqlite3_stmt *st) {
  sample_sink *k = ctx;
  mcpr__stats_sample sm;
    sm.tool = (const char *)sqlite3_column_text(st, 0);
    sm.tool_len = (size_t)sqlite3_column_bytes(st, 0);
    sm.method = (const char *)sqlite3_column_text(st, 1);
    sm.method_len = (size_t)sqlite3_column_bytes(st, 1);
    sm.latency_us = sqlite3_column_int64(st, 2);
    sm.is_error = sqlite3_column_int(st, 3);
    sm.bytes_in = col_int(st, 4);
  sm.bytes_out = col_int(st, 5);
  return k->sink(k->ctx, &sm);
}

static mcpr_status stream_samples(sqlite3 *db, sqlb *b, mcpr__stats_sink sink, void *ctx,
                                  mcpr_error *err) {
  sample_sink k = {sink, ctx};
  return each_row(db, b, pass_sample, &k, err);
}

static mcpr_status sqlite_stats_scan(void *p, const mcpr_stats_filter *f, mcpr__stats_sink sink,
                                     void *ctx, mcpr_error *err) {
  sqlite_impl *impl = p;
  sqlb b;
  build_stats(&b, f, false);
  return stream_samples(impl->db, &b, sink, ctx, err);
}

/* ---------- stats from the rollups ---------- */

/*
 * The window [since, ∞) splits at H0, the first hour boundary at or after
 * since: hours from H0 on come from mcpr_rollup_hour (rows up to the
 * watermark W); the rest is read raw — the partial hour [since, H0) of
 * rows up to W through the ts index, and every row above W through the
 * rowid (NOT INDEXED: its ts, proxy and tool are tested on the row; an
 * index on them would walk the whole window). One read
 * transaction, so W, the rollups and the rows are one snapshot.
 */
static int64_t first_full_hour(int64_t since_ms) {
  if (since_ms == MCPR_QUERY_NO_CUTOFF)
    return INT64_MIN;
  int64_t h = since_ms / MCPR__ROLLUP_HOUR_MS;
  if (since_ms > 0 && since_ms % MCPR__ROLLUP_HOUR_MS != 0)
    h++;
  return h;
}

/*
 * The rollup rows that cover the hours [first_hour, ∞): with the daily
 * level (rollup.h), the hours before the first whole day from
 * mcpr_rollup_hour and every whole day from mcpr_rollup_day — a month is
 * ~30 rows per label and proxy instead of ~720; without it, the hours.
 */
typedef struct rollup_span {
  bool hours, days;          /* which levels are read */
  int64_t hour_lo, hour_hi;  /* hours [lo, hi); hi INT64_MAX: no bound */
  int64_t day_lo;            /* days >= day_lo */
} rollup_span;

static rollup_span span_of(int64_t first_hour, bool have_days) {
  rollup_span sp = {true, false, first_hour, INT64_MAX, INT64_MIN};
  if (!have_days)
    return sp;
  sp.days = true;
  if (first_hour == INT64_MIN) {
    sp.hours = false;
    return sp;
  }
  /* ceil(first_hour / 24), for negative hours too */
  int64_t d = first_hour / 24;
  if (first_hour % 24 != 0 && first_hour > 0)
    d++;
  sp.day_lo = d;
  sp.hour_hi = d * 24;
  return sp;
}

/* " FROM <level table> WHERE <its range>" */
static void sb_rollup_from(sqlb *b, const rollup_span *sp, int day) {
  if (day) {
    sb_int(b, " FROM mcpr_rollup_day WHERE day >= ?", sp->day_lo);
    return;
  }
  sb_int(b, " FROM mcpr_rollup_hour WHERE hour >= ?", sp->hour_lo);
  if (sp->hour_hi != INT64_MAX)
    sb_int(b, " AND hour < ?", sp->hour_hi);
}

static bool level_used(const rollup_span *sp, int day) { return day ? sp->days : sp->hours; }

static void build_rollup_calls(sqlb *b, const char *proxy, const rollup_span *sp, int day) {
  sb_init(b);
  sb_add(b, "SELECT coalesce(sum(calls), 0)");
  sb_rollup_from(b, sp, day);
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
}

static void build_rollup_parts(sqlb *b, const char *proxy, const rollup_span *sp, int day) {
  sb_init(b);
  sb_add(b, "SELECT is_tool, name, calls, errors, sum_us, min_us, max_us, bytes_in, bytes_out,"
            " sketch");
  sb_rollup_from(b, sp, day);
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
}

static void build_rollup_edge(sqlb *b, const mcpr_stats_filter *f, int64_t first_hour,
                              int64_t watermark) {
  sb_init(b);
  sb_add(b, STATS_COLUMNS);
  build_stats_where(b, f);
  sb_int(b, " AND ts < ?", first_hour * MCPR__ROLLUP_HOUR_MS);
  sb_int(b, " AND id <= ?", watermark);
}

static void build_rollup_above(sqlb *b, const mcpr_stats_filter *f, int64_t watermark) {
  sb_init(b);
  /* NOT INDEXED: the rowid range only (an index on tool or ts would walk
   * the whole window). */
  sb_add(b, "SELECT tool, method, latency_us, status <> 'ok', bytes_in, bytes_out"
            " FROM requests NOT INDEXED WHERE 1");
  sb_int(b, " AND id > ?", watermark);
  if (f->proxy)
    sb_text(b, " AND +proxy = ?", f->proxy);
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND +ts >= ?", f->since_ms);
}

static int pass_part(void *ctx, sqlite3_stmt *st) {
  const mcpr__stats_sinks *k = ctx;
  mcpr__stats_part p = {
      .is_tool = sqlite3_column_int(st, 0),
      .name = (const char *)sqlite3_column_text(st, 1),
      .name_len = (size_t)sqlite3_column_bytes(st, 1),
      .calls = sqlite3_column_int64(st, 2),
      .errors = sqlite3_column_int64(st, 3),
      .sum_us = sqlite3_column_int64(st, 4),
      .min_us = sqlite3_column_int64(st, 5),
      .max_us = sqlite3_column_int64(st, 6),
      .bytes_in = sqlite3_column_int64(st, 7),
      .bytes_out = sqlite3_column_int64(st, 8),
      .sketch = sqlite3_column_blob(st, 9),
      .sketch_len = (size_t)sqlite3_column_bytes(st, 9),
  };
  return k->part(k->ctx, &p);
}

/* Rows above the watermark are read through the rowid, all of them: more
 * than this (a store the original wrote, not yet rolled up) and a read
 * goes through the time indexes as if there were no rollups. */
#define ROLLUP_MAX_BEHIND 200000

/*
 * Whether the rollups can serve a read: the file has them (a read-only
 * store from before them has not) and they are not far behind the rows.
 * *watermark receives the watermark.
 */
static bool has_rollups(sqlite3 *db, int64_t *watermark) {
  sqlite3_stmt *st = NULL;
  bool yes = sqlite3_prepare_v2(db,
                                "SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                " AND name = 'mcpr_rollup_state'",
                                -1, &st, NULL) == SQLITE_OK &&
             sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  if (!yes)
    return false;
  int64_t w = mcpr__rollup_watermark(db), top = 0;
  if (w < 0 || fixed_row(db, SQL_LAST_ROW_ID, &top, NULL, NULL) != MCPR_OK)
    return false;
  *watermark = w;
  return top == MCPR_QUERY_NULL || top - w <= ROLLUP_MAX_BEHIND;
}

static mcpr_status stats_rollup_read(void *p, const mcpr_stats_filter *f,
                                     const mcpr__stats_sinks *sinks, mcpr_error *err) {
  sqlite_impl *impl = p;
  if (mcpr__db_exec(impl->db, "BEGIN") != SQLITE_OK)
    return mcpr__db_error(impl->db, sqlite3_errcode(impl->db), err, "reading the store");
  mcpr_status s = MCPR_OK;
  int64_t w = 0;
  if (!has_rollups(impl->db, &w)) {
    s = sqlite_stats_scan(p, f, sinks->sample, sinks->ctx, err);
    goto out;
  }
  int64_t h0 = first_full_hour(f->since_ms);
  rollup_span sp = span_of(h0, mcpr__rollup_has_days(impl->db));
  sqlb b;
  int64_t in_rollups = 0;
  for (int day = 0; day < 2 && s == MCPR_OK; day++) {
    int64_t n = 0;
    if (!level_used(&sp, day))
      continue;
    build_rollup_calls(&b, f->proxy, &sp, day);
    s = count_one(impl->db, &b, &n, err);
    in_rollups += n;
  }
  if (s != MCPR_OK)
    goto out;
  if (in_rollups <= impl->rollup_raw_max_rows) {
    s = sqlite_stats_scan(p, f, sinks->sample, sinks->ctx, err);
    goto out;
  }
  for (int day = 0; day < 2 && s == MCPR_OK; day++) {
    if (!level_used(&sp, day))
      continue;
    build_rollup_parts(&b, f->proxy, &sp, day);
    s = each_row(impl->db, &b, pass_part, (void *)sinks, err);
  }
  if (s == MCPR_OK && h0 != INT64_MIN) {
    build_rollup_edge(&b, f, h0, w);
    s = stream_samples(impl->db, &b, sinks->sample, sinks->ctx, err);
  }
  if (s == MCPR_OK) {
    build_rollup_above(&b, f, w);
    s = stream_samples(impl->db, &b, sinks->sample, sinks->ctx, err);
  }
out:
  mcpr__db_exec(impl->db, "COMMIT");
  return s;
}

static mcpr_status sqlite_stats_rollup(void *p, const mcpr_stats_filter *f,
                                       const mcpr__stats_sinks *sinks, mcpr_error *err) {
  sqlite_impl *impl = p;
  int64_t cache_size = cache_size_swap(impl->db, ONE_PASS_CACHE_PAGES);
  mcpr_status s = stats_rollup_read(p, f, sinks, err);
  if (cache_size != 0)
    cache_size_swap(impl->db, cache_size);
  return s;
}

/* ---------- slow from the rollups ---------- */

/*
 * `proxy slow` over a long window: the rows with the highest latency_us
 * (ties: newest ts, then highest id), exactly those a full scan returns.
 * Each rollup hour knows the max latency of its rows up to the watermark,
 * per proxy and label, so the hours of the window are visited by
 * descending max: an hour whose max is below the limit-th latency found
 * so far cannot hold a row of the answer, nor can any hour after it. Read
 * raw besides: the partial first hour and the rows above the watermark.
 * Every raw read asks only for rows at or above the current bound, and
 * keeps at most `limit` of them.
 */
typedef struct slow_hour {
  int64_t hour, max_us;
} slow_hour;

static void build_slow_hours(sqlb *b, const mcpr_log_filter *f, int64_t first_hour) {
  sb_init(b);
  sb_int(b, "SELECT hour, max(max_us), sum(calls) FROM mcpr_rollup_hour WHERE hour >= ?",
         first_hour);
  if (f->proxy)
    sb_text(b, " AND proxy = ?", f->proxy);
  if (f->tool)
    sb_text(b, " AND is_tool = 1 AND name = ?", f->tool);
  sb_add(b, " GROUP BY hour");
}

/* Rows of [ts_lo, ts_hi) (INT64_MIN: no bound) with id in (id_lo, id_hi]
 * at or above min_us, the slowest `limit` of them. above: the rows above
 * the watermark, through the rowid only. */
static void build_slow_range(sqlb *b, const mcpr_log_filter *f, bool above, int64_t ts_lo,
                             int64_t ts_hi, int64_t id_lo, int64_t id_hi, int64_t min_us) {
  sb_init(b);
  sb_add(b, above ? "SELECT id, request_id, ts, proxy, method, tool, resource_uri, prompt_name,"
                    " latency_us, status, error_code, error_msg, session_id, bytes_in, bytes_out"
                    " FROM requests NOT INDEXED WHERE 1"
                  : LOG_COLUMNS);
  if (f->proxy)
    sb_text(b, above ? " AND +proxy = ?" : " AND proxy = ?", f->proxy);
  if (f->tool)
    sb_text(b, above ? " AND +tool = ?" : " AND tool = ?", f->tool);
  if (ts_lo != INT64_MIN)
    sb_int(b, above ? " AND +ts >= ?" : " AND ts >= ?", ts_lo);
  if (ts_hi != INT64_MIN)
    sb_int(b, " AND ts < ?", ts_hi);
  /* Unary + on latency_us: never the original's (proxy, latency_us) index,
   * which would walk every slow row of the proxy. */
  if (min_us > 0)
    sb_int(b, " AND +latency_us >= ?", min_us);
  if (id_lo != INT64_MIN)
    sb_int(b, " AND id > ?", id_lo);
  if (id_hi != INT64_MAX)
    sb_int(b, " AND id <= ?", id_hi);
  sb_add(b, " ORDER BY latency_us DESC, ts DESC, id DESC");
  sb_int(b, " LIMIT ?", f->limit);
}

static int cmp_slow(const void *pa, const void *pb) {
  const mcpr_log_row *a = pa, *b = pb;
  if (a->latency_us != b->latency_us)
    return a->latency_us > b->latency_us ? -1 : 1;
  if (a->ts_ms != b->ts_ms)
    return a->ts_ms > b->ts_ms ? -1 : 1;
  return a->row_id > b->row_id ? -1 : (a->row_id < b->row_id);
}

static int cmp_hour_max(const void *pa, const void *pb) {
  const slow_hour *a = pa, *b = pb;
  if (a->max_us != b->max_us)
    return a->max_us > b->max_us ? -1 : 1;
  return a->hour > b->hour ? -1 : (a->hour < b->hour);
}

/* Keep the slowest `limit` rows; returns the latency a row needs from now
 * on to enter them. */
static int64_t slow_keep(mcpr_log_rows *out, const mcpr_log_filter *f) {
  if (out->count > 1) /* rows is NULL while count is 0 */
    qsort(out->rows, out->count, sizeof *out->rows, cmp_slow);
  if ((int64_t)out->count > f->limit)
    out->count = (size_t)f->limit; /* the rest stays in the pool until release */
  int64_t need = f->min_latency_us > 0 ? f->min_latency_us : 0;
  if ((int64_t)out->count == f->limit && out->rows[out->count - 1].latency_us > need)
    need = out->rows[out->count - 1].latency_us;
  return need;
}

static int read_slow_hour(void *ctx, sqlite3_stmt *st) {
  slow_hour **v = ((void **)ctx)[0];
  size_t *n = ((void **)ctx)[1], *cap = ((void **)ctx)[2];
  int64_t *calls = ((void **)ctx)[3];
  slow_hour *h = mcpr__array_push((void **)v, n, cap, sizeof *h);
  if (!h)
    return 1;
  h->hour = sqlite3_column_int64(st, 0);
  h->max_us = sqlite3_column_int64(st, 1);
  *calls += sqlite3_column_int64(st, 2);
  return 0;
}

/* *done: the rows are in out; false (and nothing read) when the window is
 * small enough to read raw, or the store has no usable rollups. */
static mcpr_status slow_rollup(sqlite_impl *impl, const mcpr_log_filter *f, mcpr_log_rows *out,
                               size_t *cap, bool *done, mcpr_error *err) {
  sqlite3 *db = impl->db;
  *done = false;
  if (mcpr__db_exec(db, "BEGIN") != SQLITE_OK)
    return mcpr__db_error(db, sqlite3_errcode(db), err, "reading the store");
  int64_t w = 0, calls = 0;
  slow_hour *hours = NULL;
  size_t nhours = 0, hcap = 0;
  mcpr_status s = MCPR_OK;
  if (!has_rollups(db, &w))
    goto out;
  int64_t h0 = first_full_hour(f->since_ms);
  sqlb b;
  build_slow_hours(&b, f, h0);
  void *ctx[4] = {&hours, &nhours, &hcap, &calls};
  s = each_row(db, &b, read_slow_hour, ctx, err);
  if (s != MCPR_OK || calls <= impl->rollup_raw_max_rows)
    goto out;
  *done = true;
  int64_t id_hi = f->up_to_row_id > 0 && f->up_to_row_id < w ? f->up_to_row_id : w;
  int64_t need = f->min_latency_us > 0 ? f->min_latency_us : 0;
  /* The rows above the watermark, then the partial first hour. */
  if (f->up_to_row_id <= 0 || f->up_to_row_id > w) {
    build_slow_range(&b, f, true, f->since_ms == MCPR_QUERY_NO_CUTOFF ? INT64_MIN : f->since_ms,
                     INT64_MIN, w, f->up_to_row_id > 0 ? f->up_to_row_id : INT64_MAX, need);
    s = read_rows(db, &b, (void **)&out->rows, &out->count, cap, sizeof *out->rows, out->pool,
                  read_log_row, err);
    if (s != MCPR_OK)
      goto out;
    need = slow_keep(out, f);
  }
  if (h0 != INT64_MIN) {
    build_slow_range(&b, f, false, f->since_ms, h0 * MCPR__ROLLUP_HOUR_MS, INT64_MIN, id_hi,
                     need);
    s = read_rows(db, &b, (void **)&out->rows, &out->count, cap, sizeof *out->rows, out->pool,
                  read_log_row, err);
    if (s != MCPR_OK)
      goto out;
    need = slow_keep(out, f);
  }
  /* By max, then newest first: once the answer is full, an hour whose max
   * only ties with its last row, which is newer than the hour, cannot
   * place a row (ties go to the newest ts), nor can any hour after it. */
  if (nhours > 1)
    qsort(hours, nhours, sizeof *hours, cmp_hour_max);
  for (size_t i = 0; i < nhours && hours[i].max_us >= need; i++) {
    if ((int64_t)out->count == f->limit && hours[i].max_us == need &&
        out->rows[out->count - 1].ts_ms >= (hours[i].hour + 1) * MCPR__ROLLUP_HOUR_MS)
      break;
    build_slow_range(&b, f, false, hours[i].hour * MCPR__ROLLUP_HOUR_MS,
                     (hours[i].hour + 1) * MCPR__ROLLUP_HOUR_MS, INT64_MIN, id_hi, need);
    s = read_rows(db, &b, (void **)&out->rows, &out->count, cap, sizeof *out->rows, out->pool,
                  read_log_row, err);
    if (s != MCPR_OK)
      goto out;
    need = slow_keep(out, f);
  }
out:
  free(hours);
  mcpr__db_exec(db, "COMMIT");
  return s;
}

/* The original's approach, for the benchmark's comparison only. */
static mcpr_status stats_original(sqlite3 *db, const mcpr_stats_filter *f, mcpr_stats *out,
                                  mcpr_error *err) {
  sqlb b;
  sqlite3_stmt *labels = NULL, *agg = NULL, *lat = NULL;
  int64_t *values = NULL;
  size_t nvalues = 0, cap = 0, rows_cap = 0;
  int oom = 0, rc;
  memset(out, 0, sizeof *out);
  out->pool = mcpr__pool_new();
  if (!out->pool)
    return oom_error(err);
  sb_init(&b);
  sb_add(&b, "SELECT DISTINCT tool, CASE WHEN tool IS NULL THEN method END"
             " FROM requests WHERE 1");
  build_stats_where(&b, f);
  mcpr_status s = sb_prepare(db, &b, &labels, err);
  while (s == MCPR_OK && (rc = sqlite3_step(labels)) == SQLITE_ROW) {
    const char *tool = (const char *)sqlite3_column_text(labels, 0);
    const char *method = (const char *)sqlite3_column_text(labels, 1);
    sb_init(&b);
    sb_add(&b, "SELECT count(*), avg(latency_us), min(latency_us), max(latency_us),"
               " sum(status <> 'ok'), sum(bytes_in), sum(bytes_out) FROM requests WHERE 1");
    if (tool)
      sb_text(&b, " AND tool = ?", tool);
    else
      sb_text(&b, " AND tool IS NULL AND method = ?", method ? method : "");
    build_stats_where(&b, f);
    sqlb lb = b;
    s = sb_prepare(db, &b, &agg, err);
    if (s != MCPR_OK)
      break;
    if ((rc = sqlite3_step(agg)) != SQLITE_ROW) {
      s = step_error(db, rc, err);
      break;
    }
    mcpr_stats_row *r = mcpr__array_push((void **)&out->rows, &out->count, &rows_cap,
                                         sizeof *r);
    if (!r) {
      oom = 1;
      break;
    }
    if (tool) {
      r->label = mcpr__pool_strdup(out->pool, tool, &oom);
    } else {
      char label[512];
      snprintf(label, sizeof label, "<%s>", method ? method : "");
      r->label = mcpr__pool_strdup(out->pool, label, &oom);
    }
    r->calls = sqlite3_column_int64(agg, 0);
    r->avg_us = (int64_t)(sqlite3_column_double(agg, 1) + 0.5);
    r->min_us = sqlite3_column_int64(agg, 2);
    r->max_us = sqlite3_column_int64(agg, 3);
    r->errors = sqlite3_column_int64(agg, 4);
    r->total_bytes_in = sqlite3_column_int64(agg, 5);
    r->total_bytes_out = sqlite3_column_int64(agg, 6);
    r->error_pct = r->calls ? 100.0 * (double)r->errors / (double)r->calls : 0;
    sqlite3_finalize(agg);
    agg = NULL;
    /* The p95 fetch: every latency of the label, sorted. */
    char *where = strstr(b.sql, " WHERE 1");
    int w = snprintf(lb.sql, sizeof lb.sql,
                     "SELECT latency_us FROM requests%s ORDER BY latency_us", where);
    if (w < 0 || (size_t)w >= sizeof lb.sql)
      lb.overflow = 1;
    lb.len = strlen(lb.sql);
    s = sb_prepare(db, &lb, &lat, err);
    if (s != MCPR_OK)
      break;
    nvalues = 0;
    while ((rc = sqlite3_step(lat)) == SQLITE_ROW) {
      int64_t *v = mcpr__array_push((void **)&values, &nvalues, &cap, sizeof *v);
      if (!v) {
        oom = 1;
        break;
      }
      *v = sqlite3_column_int64(lat, 0);
    }
    sqlite3_finalize(lat);
    lat = NULL;
    if (oom)
      break;
    r->p95_us = nvalues ? values[mcpr__p95_index(nvalues)] : 0;
  }
  if (s == MCPR_OK && !oom && rc != SQLITE_DONE)
    s = step_error(db, rc, err);
  sqlite3_finalize(labels);
  sqlite3_finalize(agg);
  free(values);
  if (oom)
    s = oom_error(err);
  if (s != MCPR_OK) {
    mcpr_stats_release(out);
    return s;
  }
  mcpr__stats_order(out);
  return MCPR_OK;
}

mcpr_status mcpr__query_sqlite_stats(mcpr_query *q, const mcpr_stats_filter *f,
                                     mcpr__stats_strategy strategy, mcpr_stats *out,
                                     mcpr_error *err) {
  if (q->backend != &mcpr__query_sqlite_backend)
    return not_ours(q, err);
  sqlite_impl *impl = q->impl;
  if (strategy == MCPR__STATS_ORIGINAL)
    return stats_original(impl->db, f, out, err);
  if (strategy == MCPR__STATS_ONE_PASS) /* the engine's own: mcpr_query_stats() */
    return mcpr_error_set(err, MCPR_EINVAL, "the one-pass strategy is mcpr_query_stats()");
  memset(out, 0, sizeof *out);
  mcpr__stats_acc *acc = mcpr__stats_acc_new();
  if (!acc)
    return oom_error(err);
  sqlb b;
  build_stats(&b, f, true);
  mcpr_status s = stream_samples(impl->db, &b, mcpr__stats_acc_add, acc, err);
  if (s == MCPR_OK)
    s = mcpr__stats_acc_finish(acc, out, err);
  mcpr__stats_acc_free(acc);
  return s;
}

/* ---------- sessions ---------- */

/*
 * The proxies that have sessions, hopping from one name to the next on
 * idx_sessions_proxy_started: one seek per proxy. A filter on a session
 * column without the proxy is then one range per proxy on the indexes led
 * by proxy, instead of a walk of the whole index.
 */
#define SESSION_PROXIES                                                        \
  "WITH RECURSIVE p(name) AS ("                                                 \
  " SELECT (SELECT min(proxy) FROM sessions)"                                   \
  " UNION ALL"                                                                  \
  " SELECT (SELECT min(proxy) FROM sessions WHERE proxy > p.name) FROM p"       \
  " WHERE p.name IS NOT NULL)"

static void build_active_count(sqlb *b, const char *proxy, int64_t now_ms) {
  sb_init(b);
  if (!proxy) {
    sb_int(b,
           SESSION_PROXIES " SELECT coalesce(sum((SELECT count(*) FROM sessions"
                           " WHERE ended_at IS NULL AND proxy = p.name AND last_seen_at > ?)), 0)"
                           " FROM p WHERE p.name IS NOT NULL",
           now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
    return;
  }
  sb_add(b, "SELECT count(*) FROM sessions WHERE ended_at IS NULL");
  sb_text(b, " AND proxy = ?", proxy);
  sb_int(b, " AND last_seen_at > ?", now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
}

static void build_total_count(sqlb *b, const char *proxy, int64_t since_ms) {
  sb_init(b);
  if (!proxy && since_ms != MCPR_QUERY_NO_CUTOFF) {
    sb_int(b,
           SESSION_PROXIES " SELECT coalesce(sum((SELECT count(*) FROM sessions"
                           " WHERE proxy = p.name AND started_at >= ?)), 0)"
                           " FROM p WHERE p.name IS NOT NULL",
           since_ms);
    return;
  }
  sb_add(b, "SELECT count(*) FROM sessions WHERE 1");
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND started_at >= ?", since_ms);
}

static mcpr_status sqlite_session_counts(void *p, const char *proxy, int64_t since_ms,
                                         int64_t now_ms, int64_t *active, int64_t *total,
                                         mcpr_error *err) {
  sqlite_impl *impl = p;
  sqlb b;
  build_active_count(&b, proxy, now_ms);
  mcpr_status s = count_one(impl->db, &b, active, err);
  if (s != MCPR_OK)
    return s;
  build_total_count(&b, proxy, since_ms);
  return count_one(impl->db, &b, total, err);
}

#define SESSION_SELECT                                                         \
  "SELECT session_id, proxy, client_name, client_version, client_platform,"     \
  " started_at, last_seen_at, ended_at, total_calls, total_errors,"             \
  " ended_at IS NULL AND last_seen_at > ?"
#define SESSION_COLUMNS SESSION_SELECT " FROM sessions WHERE 1"

/* The plain list: every session of the window, sorted (the fallback of
 * sessions_walk). */
static void build_sessions(sqlb *b, const mcpr_session_filter *f, int64_t now_ms) {
  int64_t active_after = now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS;
  sb_init(b);
  sb_int(b, SESSION_COLUMNS, active_after);
  if (f->proxy)
    sb_text(b, " AND proxy = ?", f->proxy);
  if (f->client_name)
    sb_text(b, " AND client_name = ?", f->client_name);
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND started_at >= ?", f->since_ms);
  if (f->active_only)
    sb_int(b, " AND ended_at IS NULL AND last_seen_at > ?", active_after);
  sb_int(b, " ORDER BY last_seen_at DESC, session_id LIMIT ?", f->limit);
}

/*
 * The list without sorting the window: per proxy, the sessions in
 * descending order of their seen key on mcpr_sessions_seen
 * (extra_schema.h), down to the lowest key a match can have — the
 * cutoff (the key is >= started_at), or the active bound (the key is >=
 * last_seen_at).
 */
static void build_sessions_walk(sqlb *b, const char *proxy, const mcpr_session_filter *f,
                                int64_t now_ms) {
  int64_t active_after = now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS;
  sb_init(b);
  sb_int(b, SESSION_SELECT " FROM sessions INDEXED BY " MCPR__SESSIONS_SEEN_INDEX, active_after);
  sb_text(b, " WHERE proxy = ?", proxy);
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND " MCPR__SESSIONS_SEEN_KEY " >= ?", f->since_ms);
  if (f->active_only)
    sb_int(b, " AND " MCPR__SESSIONS_SEEN_KEY " > ?", active_after);
  sb_add(b, " ORDER BY " MCPR__SESSIONS_SEEN_KEY " DESC");
}

/* Only for the plans: the walk's own check is its INDEXED BY. */
static bool index_exists(sqlite3 *db, const char *name) {
  sqlb b;
  int64_t n = 0;
  sb_init(&b);
  sb_text(&b, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = ?", name);
  return count_one(db, &b, &n, NULL) == MCPR_OK && n > 0;
}

static void build_session_proxies(sqlb *b) {
  sb_init(b);
  sb_add(b, SESSION_PROXIES " SELECT name FROM p WHERE name IS NOT NULL");
}

/* Above this limit the walk would hold most of a window anyway. */
#define SESSIONS_WALK_MAX_LIMIT 1000
/* Rows a walk may visit beyond its limit before the plain list is
 * cheaper: a rare --client, or a proxy's sessions all outside the window. */
#define SESSIONS_WALK_BUDGET 4000

/* ORDER BY last_seen_at DESC, session_id (BINARY; NULL first). */
static int session_order(int64_t a_seen, const unsigned char *a_id, int a_len, int64_t b_seen,
                         const char *b_id) {
  if (a_seen != b_seen)
    return a_seen > b_seen ? -1 : 1;
  if (!a_id || !b_id)
    return a_id ? 1 : b_id ? -1 : 0;
  size_t b_len = strlen(b_id);
  int c = memcmp(a_id, b_id, (size_t)a_len < b_len ? (size_t)a_len : b_len);
  if (c != 0)
    return c;
  return (size_t)a_len < b_len ? -1 : (size_t)a_len > b_len ? 1 : 0;
}

typedef struct session_walk {
  const mcpr_session_filter *f;
  mcpr_session_rows *out; /* rows: capacity f->limit + 1, in list order */
  int64_t visited, budget;
  bool gave_up;
} session_walk;

static bool session_matches(const session_walk *w, sqlite3_stmt *st) {
  const mcpr_session_filter *f = w->f;
  if (f->since_ms != MCPR_QUERY_NO_CUTOFF && sqlite3_column_int64(st, 5) < f->since_ms)
    return false;
  if (f->active_only && !sqlite3_column_int(st, 10))
    return false;
  if (f->client_name) {
    if (sqlite3_column_type(st, 2) != SQLITE_TEXT)
      return false;
    const unsigned char *name = sqlite3_column_text(st, 2);
    size_t len = (size_t)sqlite3_column_bytes(st, 2);
    if ( len != strlen(f->client_name) || memcmp(name, f->client_name, len) != 0)
      return false;
  }
  return true;
}

/* One proxy's walk, into the list w->out holds. */
static mcpr_status walk_proxy(sqlite3 *db, sqlb *b, session_walk *w, mcpr_error *err) {
  sqlite3_stmt *st = NULL;
  if (sb_prepare(db, b, &st, NULL) != MCPR_OK) {
    w->gave_up = true; /* no index yet: the plain list */
    return MCPR_OK;
  }
  mcpr_session_rows *out = w->out;
  size_t limit = (size_t)w->f->limit;
  mcpr_status s = MCPR_OK;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t started = sqlite3_column_int64(st, 5), seen = sqlite3_column_int64(st, 6);
    int64_t key = seen > started ? seen : started;
    const mcpr_session_row *last = out->count ? &out->rows[out->count - 1] : NULL;
    /* Every later row has last_seen_at <= key: none can enter a full list. */
    if (out->count == limit && key < last->last_seen_at_ms)
      break;
    if (++w->visited > w->budget) {
      w->gave_up = true;
      break;
    }
    if (!session_matches(w, st))
      continue;
    const unsigned char *id = sqlite3_column_text(st, 0);
    int id_len = sqlite3_column_bytes(st, 0);
    if (out->count == limit &&
        session_order(seen, id, id_len, last->last_seen_at_ms, last->session_id) >= 0)
      continue;
    size_t lo = 0, hi = out->count;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (session_order(seen, id, id_len, out->rows[mid].last_seen_at_ms,
                        out->rows[mid].session_id) < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
    memmove(&out->rows[lo + 1], &out->rows[lo], (out->count - lo) * sizeof *out->rows);
    memset(&out->rows[lo], 0, sizeof *out->rows);
    int oom = 0;
    read_session_row(st, &out->rows[lo], out->pool, &oom);
    if (oom) {
      s = oom_error(err);
      break;
    }
    if (out->count < limit)
      out->count++;
  }
  if (s == MCPR_OK && !w->gave_up && rc != SQLITE_DONE && rc != SQLITE_ROW)
    s = step_error(db, rc, err);
  sqlite3_finalize(st);
  return s;
}

/*
 * The list from mcpr_sessions_seen, exact: the walks share one list of at
 * most limit rows (the dropped rows' strings stay in the pool until
 * release). *gave_up when the index is missing or the walk ran past its
 * budget: the caller then runs the plain list.
 */
static mcpr_status sessions_walk(sqlite3 *db, const mcpr_session_filter *f, int64_t now_ms,
                                 mcpr_session_rows *out, bool *gave_up, mcpr_error *err) {
  session_walk w = {f, out, 0, SESSIONS_WALK_BUDGET + f->limit, false};
  out->rows = calloc((size_t)f->limit + 1, sizeof *out->rows);
  if (!out->rows)
    return oom_error(err);
  const char **proxies = NULL;
  size_t nproxies = 0, cap = 0;
  mcpr_status s = MCPR_OK;
  sqlb b;
  if (f->proxy) {
    proxies = malloc(sizeof *proxies);
    if (!proxies)
      s = oom_error(err);
    else
      proxies[nproxies++] = f->proxy;
  } else {
    sqlite3_stmt *st = NULL;
    build_session_proxies(&b);
    s = sb_prepare(db, &b, &st, err);
    int rc = SQLITE_DONE;
    while (s == MCPR_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
      int oom = 0;
      const char **slot = mcpr__array_push((void **)&proxies, &nproxies, &cap, sizeof *slot);
      if (slot)
        *slot = col_text(st, 0, out->pool, &oom);
      if (!slot || oom)
        s = oom_error(err);
    }
    if (s == MCPR_OK && rc != SQLITE_DONE)
      s = step_error(db, rc, err);
    sqlite3_finalize(st);
  }
  for (size_t i = 0; s == MCPR_OK && !w.gave_up && i < nproxies; i++) {
    build_sessions_walk(&b, proxies[i], f, now_ms);
    s = walk_proxy(db, &b, &w, err);
  }
  free(proxies);
  *gave_up = w.gave_up;
  if (s != MCPR_OK || w.gave_up) {
    free(out->rows);
    out->rows = NULL;
    out->count = 0;
  }
  return s;
}

static mcpr_status sqlite_sessions(void *p, const mcpr_session_filter *f, int64_t now_ms,
                                   mcpr_session_rows *out, mcpr_error *err) {
  sqlite_impl *impl = p;
  if (f->limit <= SESSIONS_WALK_MAX_LIMIT && impl->sessions_walk) {
    bool gave_up = false;
    mcpr_status s = sessions_walk(impl->db, f, now_ms, out, &gave_up, err);
    if (s != MCPR_OK || !gave_up)
      return s;
  }
  sqlb b;
  size_t cap = 0;
  build_sessions(&b, f, now_ms);
  int64_t cache_size = cache_size_swap(impl->db, ONE_PASS_CACHE_PAGES);
  mcpr_status s = read_sessions(impl->db, &b, out, &cap, err);
  if (cache_size != 0)
    cache_size_swap(impl->db, cache_size);
  return s;
}

static void build_session_exact(sqlb *b, const char *id, int64_t now_ms) {
  sb_init(b);
  sb_int(b, SESSION_COLUMNS, now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
  sb_text(b, " AND session_id = ?", id);
}

static void build_session_prefix(sqlb *b, const char *prefix, int64_t now_ms, size_t max) {
  sb_init(b);
  sb_int(b, SESSION_COLUMNS, now_ms - MCPR_QUERY_ACTIVE_WINDOW_MS);
  sb_prefix(b, " AND session_id >= ?", " AND session_id < ?", prefix);
  sb_int(b, " ORDER BY session_id LIMIT ?", (int64_t)max);
}

static mcpr_status sqlite_sessions_by_prefix(void *p, const char *prefix, int64_t now_ms,
                                             size_t max, mcpr_session_rows *out,
                                             mcpr_error *err) {
  sqlite_impl *impl = p;
  sqlb b;
  size_t cap = 0;
  build_session_exact(&b, prefix, now_ms);
  mcpr_status s = read_sessions(impl->db, &b, out, &cap, err);
  if (s != MCPR_OK || out->count > 0)
    return s;
  build_session_prefix(&b, prefix, now_ms, max);
  return read_sessions(impl->db, &b, out, &cap, err);
}

/*
 * Clients: the window's sessions read once and grouped in C by (name,
 * version, platform) in a hash table; the few groups are then sorted. A
 * GROUP BY in SQL sorts every session of the window into a temp b-tree
 * first: two thirds of the time at 100k sessions.
 *
 * A window of most of the sessions reads the table in order, NOT INDEXED
 * (a proxy tested on each row): the planner would otherwise walk
 * idx_sessions_client or idx_sessions_proxy_started, one table lookup per
 * session (3x slower at 100k sessions in client order). A shorter window
 * (the default 7d of a month's store) reads its range of
 * idx_sessions_proxy_started, one proxy at a time: sessions are stored
 * about in order of start, so the lookups touch just the window's pages
 * (twice as fast at a quarter of the sessions, 15% slower at all).
 */
static void build_clients(sqlb *b, const char *proxy, int64_t since_ms, bool by_index) {
  sb_init(b);
  if (by_index && !proxy) {
    sb_int(b,
           SESSION_PROXIES " SELECT s.client_name, s.client_version, s.client_platform,"
                           " s.total_calls, s.total_errors, s.started_at, s.last_seen_at"
                           " FROM p CROSS JOIN sessions s WHERE p.name IS NOT NULL"
                           " AND s.proxy = p.name AND s.started_at >= ?",
           since_ms);
    return;
  }
  sb_add(b, "SELECT client_name, client_version, client_platform, total_calls, total_errors,"
            " started_at, last_seen_at FROM sessions");
  sb_add(b, by_index ? " WHERE 1" : " NOT INDEXED WHERE 1");
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND started_at >= ?", since_ms);
}

/* The start times of the first and last session stored (rowid order,
 * about start order): only to choose between the plans above. */
static const char SQL_SESSIONS_SPAN[] =
    "SELECT (SELECT started_at FROM sessions ORDER BY rowid LIMIT 1),"
    " (SELECT started_at FROM sessions ORDER BY rowid DESC LIMIT 1)";

/* Does the window [since_ms, ∞) hold at most about 3/4 of the sessions? */
static bool short_window(sqlite3 *db, int64_t since_ms) {
  if (since_ms == MCPR_QUERY_NO_CUTOFF)
    return false;
  int64_t first = 0, last = 0;
  if (fixed_row(db, SQL_SESSIONS_SPAN, &first, &last, NULL) != MCPR_OK ||
      first == MCPR_QUERY_NULL || last == MCPR_QUERY_NULL || last <= first)
    return false;
  return since_ms - first >= (last - first) / 4;
}

/* A group's key column: NULL, or bytes (TEXT compares as BINARY). */
typedef struct key_text {
  const char *s; /* NULL: SQL NULL */
  size_t len;
} key_text;

typedef struct client_group {
  mcpr_client_row row;
  key_text key[3]; /* name, version, platform */
  uint64_t hash;
} client_group;

typedef struct client_groups {
  client_group *groups;
  size_t count, cap;
  uint32_t *slots; /* index + 1 into groups; 0 empty */
  size_t nslots;   /* a power of two, > 2 * count */
  mcpr__query_pool *pool;
} client_groups;

static uint64_t key_hash(uint64_t h, const unsigned char *s, size_t len) {
  if (!s)
    return (h ^ 0x1ff) * 0x100000001b3ull;
  for (size_t i = 0; i < len; i++)
    h = (h ^ s[i]) * 0x100000001b3ull;
  return (h ^ 0x100) * 0x100000001b3ull;
}

static bool key_equal(const key_text *k, const unsigned char *s, size_t len) {
  if (!k->s || !s)
    return !k->s && !s;
  return k->len == len && memcmp(k->s, s, len) == 0;
}

static int grow_slots(client_groups *g) {
  size_t n = g->nslots ? g->nslots * 2 : 64;
  uint32_t *slots = calloc(n, sizeof *slots);
  if (!slots)
    return -1;
  for (size_t i = 0; i < g->count; i++) {
    size_t j = (size_t)g->groups[i].hash & (n - 1);
    while (slots[j])
      j = (j + 1) & (n - 1);
    slots[j] = (uint32_t)i + 1;
  }
  free(g->slots);
  g->slots = slots;
  g->nslots = n;
  return 0;
}

static int add_client_session(void *ctx, sqlite3_stmt *st) {
  client_groups *g = ctx;
  const unsigned char *col[3];
  size_t len[3];
  uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < 3; i++) {
    col[i] = sqlite3_column_text(st, i);
    len[i] = (size_t)sqlite3_column_bytes(st, i);
    h = key_hash(h, col[i], len[i]);
  }
  if (2 * (g->count + 1) >= g->nslots && grow_slots(g) != 0)
    return 1;
  size_t j = (size_t)h & (g->nslots - 1);
  client_group *grp = NULL;
  for (; g->slots[j]; j = (j + 1) & (g->nslots - 1)) {
    client_group *c = &g->groups[g->slots[j] - 1];
    if (c->hash == h && key_equal(&c->key[0], col[0], len[0]) &&
        key_equal(&c->key[1], col[1], len[1]) && key_equal(&c->key[2], col[2], len[2])) {
      grp = c;
      break;
    }
  }
  int64_t calls = sqlite3_column_int64(st, 3), errors = sqlite3_column_int64(st, 4);
  int64_t started = sqlite3_column_int64(st, 5), seen = sqlite3_column_int64(st, 6);
  if (grp) {
    grp->row.sessions++;
    grp->row.total_calls += calls;
    grp->row.total_errors += errors;
    if (started < grp->row.first_seen_ms)
      grp->row.first_seen_ms = started;
    if (seen > grp->row.last_seen_ms)
      grp->row.last_seen_ms = seen;
    return 0;
  }
  grp = mcpr__array_push((void **)&g->groups, &g->count, &g->cap, sizeof *grp);
  if (!grp)
    return 1;
  int oom = 0;
  memset(grp, 0, sizeof *grp);
  for (int i = 0; i < 3; i++) {
    grp->key[i].len = len[i];
    grp->key[i].s = col[i] ? mcpr__pool_strndup(g->pool, (const char *)col[i], len[i], &oom) : NULL;
  }
  grp->hash = h;
  grp->row = (mcpr_client_row){grp->key[0].s, grp->key[1].s, grp->key[2].s, 1, calls, errors, 0,
                               started, seen};
  g->slots[j] = (uint32_t)g->count;
  return oom;
}

/* NULL first, then bytewise, a prefix before the longer text. */
static int key_order(const key_text *a, const key_text *b) {
  if (!a->s || !b->s)
    return a->s ? 1 : b->s ? -1 : 0;
  int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
  if (c != 0)
    return c;
  return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
}

/* ORDER BY sum(total_calls) DESC, count(*) DESC, client_name,
 * client_version — and, as the GROUP BY left them, client_platform. */
static int client_order(const void *pa, const void *pb) {
  const client_group *a = pa, *b = pb;
  if (a->row.total_calls != b->row.total_calls)
    return a->row.total_calls > b->row.total_calls ? -1 : 1;
  if (a->row.sessions != b->row.sessions)
    return a->row.sessions > b->row.sessions ? -1 : 1;
  for (int i = 0; i < 3; i++) {
    int c = key_order(&a->key[i], &b->key[i]);
    if (c != 0)
      return c;
  }
  return 0;
}

static mcpr_status sqlite_clients(void *p, const char *proxy, int64_t since_ms,
                                  mcpr_client_rows *out, mcpr_error *err) {
  sqlite_impl *impl = p;
  sqlb b;
  client_groups g = {.pool = out->pool};
  build_clients(&b, proxy, since_ms, short_window(impl->db, since_ms));
  int64_t cache_size = cache_size_swap(impl->db, ONE_PASS_CACHE_PAGES);
  mcpr_status s = each_row(impl->db, &b, add_client_session, &g, err);
  if (cache_size != 0)
    cache_size_swap(impl->db, cache_size);
  if (s == MCPR_OK && g.count > 0) {
    qsort(g.groups, g.count, sizeof *g.groups, client_order);
    out->rows = malloc(g.count * sizeof *out->rows);
    if (!out->rows) {
      s = oom_error(err);
    } else {
      for (size_t i = 0; i < g.count; i++) {
        mcpr_client_row *r = &out->rows[i];
        *r = g.groups[i].row;
        r->error_pct =
            r->total_calls ? 100.0 * (double)r->total_errors / (double)r->total_calls : 0.0;
      }
      out->count = g.count;
    }
  }
  free(g.groups);
  free(g.slots);
  return s;
}

/* ---------- schema ---------- */

static void build_schema(sqlb *b, const char *proxy, const char *method) {
  sb_init(b);
  sb_add(b, "SELECT proxy, upstream_url, method, payload, captured_at, schema_hash"
            " FROM server_schema WHERE 1");
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  if (method)
    sb_text(b, " AND method = ?", method);
  sb_add(b, " ORDER BY upstream_url, proxy, method");
}

static mcpr_status sqlite_schema(void *p, const char *proxy, const char *method,
                                 mcpr_schema_rows *out, mcpr_error *err) {
  sqlite_impl *impl = p;
  sqlb b;
  size_t cap = 0;
  build_schema(&b, proxy, method);
  return read_rows(impl->db, &b, (void **)&out->rows, &out->count, &cap, sizeof *out->rows,
                   out->pool, read_schema_row, err);
}

static void build_changes(sqlb *b, const char *proxy, const char *method, int64_t limit) {
  sb_init(b);
  sb_add(b, "SELECT proxy, upstream_url, method, change_type, item_name, old_hash, new_hash,"
            " detected_at FROM schema_changes WHERE 1");
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  if (method)
    sb_text(b, " AND method = ?", method);
  sb_int(b, " ORDER BY detected_at DESC, id DESC LIMIT ?", limit);
}

static mcpr_status sqlite_schema_changes(void *p, const char *proxy, const char *method,
                                         int64_t limit, mcpr_schema_change_rows *out,
                                         mcpr_error *err) {
  sqlite_impl *impl = p;
  sqlb b;
  size_t cap = 0;
  build_changes(&b, proxy, method, limit);
  return read_rows(impl->db, &b, (void **)&out->rows, &out->count, &cap, sizeof *out->rows,
                   out->pool, read_change_row, err);
}

/* One range lookup per tool on (tool, ts); the tool names arrive as one
 * bound JSON array rather than as N statements. With rollups (below) the
 * same statement reads only the partial first hour up to the watermark:
 * before_ms and watermark bound it (INT64_MIN: no bound). */
static void build_tool_usage_range(sqlb *b, const char *names_json, const char *proxy,
                                   int64_t since_ms, int64_t before_ms, int64_t watermark) {
  sb_init(b);
  sb_text(b, "SELECT tool, count(*), sum(status <> 'ok'), max(ts) FROM requests"
             " WHERE tool IN (SELECT value FROM json_each(?))", names_json);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND ts >= ?", since_ms);
  if (before_ms != INT64_MIN)
    sb_int(b, " AND ts < ?", before_ms);
  if (watermark != INT64_MIN)
    sb_int(b, " AND id <= ?", watermark);
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  sb_add(b, " GROUP BY tool");
}

static void build_tool_usage(sqlb *b, const char *names_json, const char *proxy,
                             int64_t since_ms) {
  build_tool_usage_range(b, names_json, proxy, since_ms, INT64_MIN, INT64_MIN);
}

/* The full hours of the window, from the rollups: one level of them. */
static void build_tool_usage_rollup(sqlb *b, const char *names_json, const char *proxy,
                                    const rollup_span *sp, int day) {
  sb_init(b);
  sb_add(b, "SELECT name, sum(calls), sum(errors), max(last_ts)");
  sb_rollup_from(b, sp, day);
  sb_text(b, " AND is_tool = 1 AND name IN (SELECT value FROM json_each(?))", names_json);
  if (proxy)
    sb_text(b, " AND proxy = ?", proxy);
  sb_add(b, " GROUP BY name");
}

/* The rows above the watermark, through the rowid. */
static void build_tool_usage_above(sqlb *b, const char *names_json, const char *proxy,
                                   int64_t since_ms, int64_t watermark) {
  sb_init(b);
  sb_int(b, "SELECT tool, count(*), sum(status <> 'ok'), max(ts) FROM requests NOT INDEXED"
            " WHERE id > ?", watermark);
  sb_text(b, " AND +tool IN (SELECT value FROM json_each(?))", names_json);
  if (since_ms != MCPR_QUERY_NO_CUTOFF)
    sb_int(b, " AND +ts >= ?", since_ms);
  if (proxy)
    sb_text(b, " AND +proxy = ?", proxy);
  sb_add(b, " GROUP BY tool");
}

typedef struct usage_sink {
  const char *const *names;
  size_t n;
  mcpr__tool_usage *usage;
} usage_sink;

static int match_usage(void *ctx, sqlite3_stmt *st) {
  usage_sink *k = ctx;
  const char *tool = (const char *)sqlite3_column_text(st, 0);
  for (size_t i = 0; tool && i < k->n; i++) {
    if (strcmp(k->names[i], tool) == 0) {
      /* Added up: with rollups a tool comes from up to three parts. */
      mcpr__tool_usage *u = &k->usage[i];
      u->calls += sqlite3_column_int64(st, 1);
      u->errors += sqlite3_column_int64(st, 2);
      int64_t last = col_int(st, 3);
      if (last != MCPR_QUERY_NULL &&
          (u->last_called_at_ms == MCPR_QUERY_NULL || last > u->last_called_at_ms))
        u->last_called_at_ms = last;
      break;
    }
  }
  return 0;
}

static mcpr_status sqlite_tool_usage(void *p, const char *proxy, int64_t since_ms,
                                     const char *const *names, size_t n,
                                     mcpr__tool_usage *usage, mcpr_error *err) {
  sqlite_impl *impl = p;
  char *json = names_to_json(names, n);
  if (!json)
    return oom_error(err);
  sqlb b;
  usage_sink k = {names, n, usage};
  mcpr_status s;
  /* b holds json as a parameter until the statement is bound. One read
   * transaction: the watermark, the rollups and the rows agree. */
  if (mcpr__db_exec(impl->db, "BEGIN") != SQLITE_OK) {
    free(json);
    return mcpr__db_error(impl->db, sqlite3_errcode(impl->db), err, "reading the store");
  }
  int64_t w = 0;
  if (!has_rollups(impl->db, &w)) {
    build_tool_usage(&b, json, proxy, since_ms);
    s = each_row(impl->db, &b, match_usage, &k, err);
    goto out;
  }
  int64_t h0 = first_full_hour(since_ms);
  rollup_span sp = span_of(h0, mcpr__rollup_has_days(impl->db));
  s = MCPR_OK;
  for (int day = 0; day < 2 && s == MCPR_OK; day++) {
    if (!level_used(&sp, day))
      continue;
    build_tool_usage_rollup(&b, json, proxy, &sp, day);
    s = each_row(impl->db, &b, match_usage, &k, err);
  }
  if (s == MCPR_OK && h0 != INT64_MIN) {
    build_tool_usage_range(&b, json, proxy, since_ms, h0 * MCPR__ROLLUP_HOUR_MS, w);
    s = each_row(impl->db, &b, match_usage, &k, err);
  }
  if (s == MCPR_OK) {
    build_tool_usage_above(&b, json, proxy, since_ms, w);
    s = each_row(impl->db, &b, match_usage, &k, err);
  }
out:
  mcpr__db_exec(impl->db, "COMMIT");
  free(json);
  return s;
}

/* ---------- store info ---------- */

static const char SQL_INFO_REQUESTS[] = "SELECT count(*) FROM requests";
static const char SQL_INFO_SESSIONS[] = "SELECT count(*) FROM sessions";
/* Two subqueries: SQLite answers a lone min() or max() with one seek on
 * idx_requests_ts, but min(ts), max(ts) together with a scan of the whole
 * index (1.7 s of `store stats` at 10M requests). */
static const char SQL_INFO_RANGE[] =
    "SELECT (SELECT min(ts) FROM requests), (SELECT max(ts) FROM requests)";
/* count(DISTINCT proxy) would walk the whole index; this hops from one
 * proxy name to the next on idx_requests_proxy_ts: one seek per proxy. */
static const char SQL_INFO_PROXIES[] =
    "WITH RECURSIVE p(name) AS ("
    " SELECT (SELECT min(proxy) FROM requests)"
    " UNION ALL"
    " SELECT (SELECT min(proxy) FROM requests WHERE proxy > p.name) FROM p"
    " WHERE p.name IS NOT NULL)"
    " SELECT count(name) FROM p";

static mcpr_status sqlite_store_info(void *p, mcpr_store_info *out, mcpr_error *err) {
  sqlite_impl *impl = p;
  mcpr_status s = MCPR_OK;
  /* One snapshot for the rollups' figures; counting 10M rows instead
   * would read the whole ts index (1.5 s). */
  sqlite3_exec(impl->db, "BEGIN", NULL, NULL, NULL);
  if (!mcpr__retention_count_requests(impl->db, &out->total_requests))
    s = fixed_row(impl->db, SQL_INFO_REQUESTS, &out->total_requests, NULL, err);
  sqlite3_exec(impl->db, "COMMIT", NULL, NULL, NULL);
  if (s == MCPR_OK)
    s = fixed_row(impl->db, SQL_INFO_SESSIONS, &out->total_sessions, NULL, err);
  if (s == MCPR_OK)
    s = fixed_row(impl->db, SQL_INFO_RANGE, &out->oldest_request_ms, &out->newest_request_ms,
                  err);
  if (s == MCPR_OK)
    s = fixed_row(impl->db, SQL_INFO_PROXIES, &out->proxies, NULL, err);
  if (s != MCPR_OK)
    return s;
  out->schema_version = mcpr__db_schema_version(impl->db, NULL);
  out->db_bytes = file_size(impl->path, "");
  out->wal_bytes = file_size(impl->path, "-wal");
  mcpr__health_record_read(impl->path, out);
  mcpr__retention_read(impl->db, out);
  return MCPR_OK;
}

/* ---------- vacuum ---------- */

/*
 * SPEC §6: delete the requests older than the cutoff (of one proxy), then
 * the sessions that ended before it and have no requests left — none at
 * all, of any age or proxy — then VACUUM and checkpoint.
 *
 * The store has no index on requests(session_id) (docs/query-plans.md), so
 * "has no requests left" must never be asked per session: a correlated
 * NOT EXISTS walks the whole table once per ended session, which is hours
 * on a store of a million requests. Instead the session ids that still
 * have requests (the survivors) are collected in one pass, through the ts
 * index, and a session is tested against that set: NOT IN a
 * non-correlated subquery, which SQLite builds once as an ephemeral index.
 *
 * The real run holds the commit lock only for short batches, so a writer
 * waits at most one batch: requests go VACUUM_CHUNK_ROWS at a time, oldest
 * first. The doomed sessions are then found in a read transaction (WAL:
 * no lock, the writer goes on) into a temp table, with the highest request
 * id of that snapshot; each batch deletes its share of them, re-checked
 * against the requests written since (id above that snapshot's — ids only
 * grow, AUTOINCREMENT), a rowid range search.
 */

static void build_vacuum_count_requests(sqlb *b, const mcpr_vacuum_options *o) {
  sb_init(b);
  sb_int(b, "SELECT count(*) FROM requests WHERE ts < ?", o->before_ms);
  if (o->proxy)
    sb_text(b, " AND proxy = ?", o->proxy);
}

/*
 * The session ids of the requests a vacuum leaves: those at or after the
 * cutoff, and those before it it does not delete. Before the deletion (a
 * dry run) that is the other proxies' old requests; after it, every old
 * request still there (including one a writer added meanwhile). NULLs are
 * left out: one would make every NOT IN unknown, so nothing would go.
 * Two ranges of idx_requests_ts, never a full scan of the table.
 */
static void sb_vacuum_survivors(sqlb *b, const mcpr_vacuum_options *o, bool after_delete) {
  sb_int(b, "SELECT session_id FROM requests WHERE ts >= ? AND session_id IS NOT NULL",
         o->before_ms);
  if (after_delete)
    sb_int(b, " UNION ALL SELECT session_id FROM requests WHERE ts < ?"
              " AND session_id IS NOT NULL", o->before_ms);
  else if (o->proxy) {
    sb_int(b, " UNION ALL SELECT session_id FROM requests WHERE ts < ?", o->before_ms);
    sb_text(b, " AND proxy <> ? AND session_id IS NOT NULL", o->proxy);
  }
}

/* The sessions a vacuum deletes: ended before the cutoff, no survivors. */
static void sb_vacuum_sessions(sqlb *b, const char *select, const mcpr_vacuum_options *o,
                               bool after_delete) {
  sb_int(b, select, o->before_ms);
  if (o->proxy)
    sb_text(b, " AND proxy = ?", o->proxy);
  sb_add(b, " AND session_id NOT IN (");
  sb_vacuum_survivors(b, o, after_delete);
  sb_add(b, ")");
}

static void build_vacuum_count_sessions(sqlb *b, const mcpr_vacuum_options *o) {
  sb_init(b);
  sb_vacuum_sessions(b, "SELECT count(*) FROM sessions WHERE ended_at < ?", o, false);
}

static void build_vacuum_delete_requests(sqlb *b, const mcpr_vacuum_options *o) {
  sb_init(b);
  sb_int(b, "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE ts < ?",
         o->before_ms);
  if (o->proxy)
    sb_text(b, " AND proxy = ?", o->proxy);
  sb_int(b, " LIMIT ?)", VACUUM_CHUNK_ROWS);
}

#define VACUUM_TEMP "temp.mcpr_vacuum_sessions"
static const char SQL_VACUUM_TEMP_CREATE[] =
    "CREATE TEMP TABLE IF NOT EXISTS mcpr_vacuum_sessions (session_id TEXT NOT NULL)";
static const char SQL_VACUUM_TEMP_DROP[] = "DROP TABLE IF EXISTS " VACUUM_TEMP;
static const char SQL_VACUUM_SNAPSHOT_ID[] = "SELECT coalesce(max(id), 0) FROM requests";

static void build_vacuum_find_sessions(sqlb *b, const mcpr_vacuum_options *o) {
  sb_init(b);
  sb_vacuum_sessions(b,
                     "INSERT INTO " VACUUM_TEMP " (session_id)"
                     " SELECT session_id FROM sessions WHERE ended_at < ?",
                     o, true);
}

/*
 * Temp rows (first, last] of the doomed sessions, looked up by primary
 * key; still ended before the cutoff (a session deleted and started again
 * meanwhile is open: its proxy needs no second test, nothing changes a
 * row's proxy), and no request written after the snapshot
 * (id > snapshot_id).
 */
static void build_vacuum_delete_sessions(sqlb *b, const mcpr_vacuum_options *o, int64_t first,
                                         int64_t last, int64_t snapshot_id) {
  sb_init(b);
  sb_int(b, "DELETE FROM sessions WHERE session_id IN (SELECT session_id FROM " VACUUM_TEMP
            " WHERE rowid > ?", first);
  sb_int(b, " AND rowid <= ?)", last);
  sb_int(b, " AND ended_at < ?", o->before_ms);
  sb_int(b, " AND session_id NOT IN (SELECT session_id FROM requests WHERE id > ?"
            " AND session_id IS NOT NULL)", snapshot_id);
}

static bool is_busy(int rc) {
  return (rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED;
}

/* One delete in its own IMMEDIATE transaction; SQLite code, *changes on
 * success. */
static int write_txn_once(sqlite3 *db, sqlb *b, int64_t *changes, mcpr_status *prep,
                          mcpr_error *err) {
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return rc;
  sqlite3_stmt *st;
  *prep = sb_prepare(db, b, &st, err);
  if (*prep != MCPR_OK) {
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return SQLITE_ERROR;
  }
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc == SQLITE_DONE) {
    *changes = sqlite3_changes64(db);
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
      return SQLITE_OK;
  }
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static void note_batch(mcpr__vacuum_timing *t, int64_t t0) {
  if (!t)
    return;
  int64_t held = mcpr__mono_ms() - t0;
  t->batches++;
  if (held > t->longest_batch_ms)
    t->longest_batch_ms = held;
}

static mcpr_status lock_timeout(mcpr_error *err) {
  return mcpr_error_set(err, MCPR_EBUSY,
                        "another process held the store's commit lock past the vacuum's "
                        "deadline; nothing more was deleted");
}

/* Every commit and checkpoint of vacuum holds the store's commit lock
 * (db.h), waited for outside SQLite's own lock; a busy transaction
 * is retried whole until deadline. */
static mcpr_status write_txn(sqlite3 *db, int lock_fd, sqlb *b, int64_t deadline,
                             int64_t *changes, mcpr__vacuum_timing *t, mcpr_error *err) {
  for (;;) {
    mcpr_status prep = MCPR_OK;
    if (!mcpr__commit_lock_within(lock_fd, (int)(deadline - mcpr__mono_ms())))
      return lock_timeout(err);
    int64_t t0 = mcpr__mono_ms();
    int rc = write_txn_once(db, b, changes, &prep, err);
    note_batch(t, t0);
    mcpr__commit_unlock(lock_fd);
    if (prep != MCPR_OK)
      return prep;
    if (rc == SQLITE_OK)
      return MCPR_OK;
    if (!is_busy(rc) || mcpr__mono_ms() >= deadline)
      return mcpr__db_error(db, rc, err, "deleting old rows");
    mcpr__sleep_ms(20);
  }
}

static mcpr_status exec_retry(sqlite3 *db, int lock_fd, const char *sql, int64_t deadline,
                              mcpr_error *err, const char *doing) {
  for (;;) {
    if (!mcpr__commit_lock_within(lock_fd, (int)(deadline - mcpr__mono_ms())))
      return lock_timeout(err);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    mcpr__commit_unlock(lock_fd);
    if (rc == SQLITE_OK)
      return MCPR_OK;
    if (!is_busy(rc) || mcpr__mono_ms() >= deadline)
      return mcpr__db_error(db, rc, err, doing);
    mcpr__sleep_ms(20);
  }
}

static int64_t lock_deadline(const mcpr_vacuum_options *o) {
  return mcpr__mono_ms() + (o->lock_wait_ms > 0 ? o->lock_wait_ms : VACUUM_LOCK_WAIT_MS);
}

/* Both counts from one snapshot, so they agree with each other. */
static mcpr_status vacuum_count(sqlite3 *db, const mcpr_vacuum_options *o,
                                mcpr_vacuum_result *out, mcpr_error *err) {
  sqlb b;
  int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return mcpr__db_error(db, rc, err, "reading the store");
  build_vacuum_count_requests(&b, o);
  mcpr_status s = count_one(db, &b, &out->requests_deleted, err);
  if (s == MCPR_OK) {
    build_vacuum_count_sessions(&b, o);
    s = count_one(db, &b, &out->sessions_deleted, err);
  }
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  return s;
}

/* Fill the temp table with the sessions to delete and *snapshot_id with
 * the last request id they were judged against; *found rows. A read
 * transaction on the store (the temp table is the connection's own). */
static mcpr_status vacuum_find_sessions(sqlite3 *db, const mcpr_vacuum_options *o,
                                        int64_t *snapshot_id, int64_t *found,
                                        mcpr_error *err) {
  sqlb b;
  mcpr_status s = MCPR_OK;
  int rc = sqlite3_exec(db, SQL_VACUUM_TEMP_CREATE, NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "DELETE FROM " VACUUM_TEMP, NULL, NULL, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return mcpr__db_error(db, rc, err, "finding the sessions to delete");
  s = fixed_row(db, SQL_VACUUM_SNAPSHOT_ID, snapshot_id, NULL, err);
  if (s != MCPR_OK)
    goto rollback;
  build_vacuum_find_sessions(&b, o);
  sqlite3_stmt *st;
  s = sb_prepare(db, &b, &st, err);
  if (s != MCPR_OK)
    goto rollback;
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) {
    s = mcpr__db_error(db, rc, err, "finding the sessions to delete");
    goto rollback;
  }
  *found = sqlite3_changes64(db);
  rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    s = mcpr__db_error(db, rc, err, "finding the sessions to delete");
    goto rollback;
  }
  return MCPR_OK;
rollback:
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return s;
}

static void took(double *ms, int64_t *t0) {
  int64_t now = mcpr__mono_ms();
  if (ms)
    *ms = (double)(now - *t0);
  *t0 = now;
}

/* Run fn(r, arg) in a write transaction under the commit lock, with a
 * rollup handle on db; busy is retried until deadline. A file without
 * rollup tables has nothing to do. */
typedef int (*rollup_txn_fn)(mcpr__rollup *r, void *arg);
static mcpr_status rollup_txn(sqlite3 *db, int lock_fd, int64_t deadline, rollup_txn_fn fn,
                              void *arg, int64_t *held_ms, mcpr_error *err, const char *doing) {
  int rc = SQLITE_OK;
  mcpr__rollup *r = mcpr__rollup_new(db, &rc);
  if (!r)
    return rc == SQLITE_NOMEM ? oom_error(err) : MCPR_OK;
  mcpr_status s = MCPR_OK;
  for (;;) {
    if (!mcpr__commit_lock_within(lock_fd, (int)(deadline - mcpr__mono_ms()))) {
      s = lock_timeout(err);
      break;
    }
    int64_t t0 = mcpr__mono_ms();
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) {
      rc = fn(r, arg);
      rc = rc == SQLITE_DONE ? sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) : rc;
      if (rc != SQLITE_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    mcpr__commit_unlock(lock_fd);
    if (held_ms)
      *held_ms = mcpr__mono_ms() - t0;
    if (rc == SQLITE_OK)
      break;
    if (!is_busy(rc) || mcpr__mono_ms() >= deadline) {
      s = mcpr__db_error(db, rc, err, doing);
      break;
    }
    mcpr__sleep_ms(20);
  }
  mcpr__rollup_free(r);
  return s;
}

static int forget_rollups(mcpr__rollup *r, void *arg) {
  const mcpr_vacuum_options *o = arg;
  return mcpr__rollup_forget_before(r, o->before_ms, o->proxy);
}

/* ---------- building the rollups (rollup_build.c) ---------- */

/* Empty the -wal into the file, best effort (a reader may keep part of it
 * alive for a moment), under the commit lock as every checkpoint (db.h).
 * For the commands that write much through a query connection, which
 * does not checkpoint on close: a -wal left behind is read whole by the
 * next process that opens the store while none has it open (at 6.8 MB,
 * 30 ms of every read command after a `store rollup` at 10M rows). */
static void checkpoint_truncate(sqlite3 *db, int lock_fd) {
  if (mcpr__commit_lock_within(lock_fd, MCPR__CLOSE_LOCK_WAIT_MS)) {
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    mcpr__commit_unlock(lock_fd);
  }
}

static mcpr_status sqlite_rollup(void *p, mcpr_rollup_progress_fn fn, void *ctx,
                                 mcpr_rollup_progress *out, mcpr_error *err) {
  sqlite_impl *impl = p;
  mcpr_status st = mcpr__rollup_build(impl->db, impl->path, 0, fn, ctx, out, err);
  int lock_fd = mcpr__commit_lock_open(impl->path);
  checkpoint_truncate(impl->db, lock_fd);
  mcpr__commit_lock_close(lock_fd);
  return st;
}

static mcpr_status sqlite_rollup_behind(void *p, int64_t *rows, mcpr_error *err) {
  (void)err;
  *rows = mcpr__rollup_behind(((sqlite_impl *)p)->db);
  return MCPR_OK;
}

static mcpr_status vacuum_run(sqlite_impl *impl, const mcpr_vacuum_options *o,
                              mcpr_vacuum_result *out, mcpr__vacuum_timing *t,
                              mcpr_error *err) {
  sqlite3 *db = impl->db;
  sqlb b;
  mcpr__vacuum_timing unused;
  if (!t)
    t = &unused;
  memset(t, 0, sizeof *t);
  int64_t t0 = mcpr__mono_ms();
  out->bytes_before = file_size(impl->path, "") + file_size(impl->path, "-wal");
  if (o->dry_run) {
    mcpr_status s = vacuum_count(db, o, out, err);
    took(&t->count_ms, &t0);
    out->bytes_after = out->bytes_before;
    return s;
  }
  int lock_fd = mcpr__commit_lock_open(impl->path);
  mcpr_status s = MCPR_OK;
  for (;;) {
    int64_t n = 0;
    build_vacuum_delete_requests(&b, o);
    s = write_txn(db, lock_fd, &b, lock_deadline(o), &n, t, err);
    if (s != MCPR_OK)
      goto out;
    out->requests_deleted += n;
    if (n < VACUUM_CHUNK_ROWS)
      break;
    mcpr__sleep_ms(VACUUM_BATCH_PAUSE_MS);
  }
  /* The rollups of the deleted hours go too, and the hour the cutoff
   * cuts is rebuilt from the rows left in it. */
  s = rollup_txn(db, lock_fd, lock_deadline(o), forget_rollups, (void *)o, NULL, err,
                 "updating the rollups");
  if (s != MCPR_OK)
    goto out;
  /* The rollups now count none of the deleted rows: the retention's gap
   * (retention.h) is measured again. */
  if (mcpr__commit_lock_within(lock_fd, (int)(lock_deadline(o) - mcpr__mono_ms()))) {
    int rc = mcpr__retention_recount(db);
    mcpr__commit_unlock(lock_fd);
    if (rc != SQLITE_OK) {
      s = mcpr__db_error(db, rc, err, "updating the rollups");
      goto out;
    }
  } else {
    s = lock_timeout(err);
    goto out;
  }
  took(&t->delete_requests_ms, &t0);

  int64_t snapshot_id = 0, found = 0;
  s = vacuum_find_sessions(db, o, &snapshot_id, &found, err);
  if (s != MCPR_OK)
    goto out;
  took(&t->find_sessions_ms, &t0);
  for (int64_t first = 0; first < found; first += VACUUM_CHUNK_ROWS) {
    int64_t n = 0;
    build_vacuum_delete_sessions(&b, o, first, first + VACUUM_CHUNK_ROWS, snapshot_id);
    s = write_txn(db, lock_fd, &b, lock_deadline(o), &n, t, err);
    if (s != MCPR_OK)
      goto out;
    out->sessions_deleted += n;
    mcpr__sleep_ms(VACUUM_BATCH_PAUSE_MS);
  }
  took(&t->delete_sessions_ms, &t0);

  t->vacuum_started_mono_ms = t0;
  s = exec_retry(db, lock_fd, "VACUUM", lock_deadline(o), err, "reclaiming space (VACUUM)");
  if (s != MCPR_OK)
    goto out;
  took(&t->vacuum_ms, &t0);
  /* SQLite's advice after large changes; the limit keeps its ANALYZE of
   * a big table to a sample. Best effort: statistics are an optimisation. */
  if (mcpr__commit_lock_within(lock_fd, MCPR__CLOSE_LOCK_WAIT_MS)) {
    sqlite3_exec(db, "PRAGMA analysis_limit=1000; PRAGMA optimize", NULL, NULL, NULL);
    mcpr__commit_unlock(lock_fd);
  }
  took(&t->optimize_ms, &t0);
  checkpoint_truncate(db, lock_fd);
  took(&t->checkpoint_ms, &t0);
  out->bytes_after = file_size(impl->path, "") + file_size(impl->path, "-wal");
out:
  /* Its rows only; the temp database lives as long as the connection. */
  sqlite3_exec(db, SQL_VACUUM_TEMP_DROP, NULL, NULL, NULL);
  mcpr__commit_lock_close(lock_fd);
  return s;
}

static mcpr_status sqlite_vacuum(void *p, const mcpr_vacuum_options *o,
                                 mcpr_vacuum_result *out, mcpr_error *err) {
  return vacuum_run(p, o, out, NULL, err);
}

mcpr_status mcpr__query_sqlite_vacuum(mcpr_query *q, const mcpr_vacuum_options *o,
                                      mcpr_vacuum_result *out, mcpr__vacuum_timing *timing,
                                      mcpr_error *err) {
  if (q->backend != &mcpr__query_sqlite_backend)
    return not_ours(q, err);
  memset(out, 0, sizeof *out);
  return vacuum_run(q->impl, o, out, timing, err);
}

/* The original's per-session NOT EXISTS: a full scan of requests for every
 * ended session. For the benchmark's comparison only. */
static int past_budget(void *deadline) {
  return mcpr__mono_ms() >= *(int64_t *)deadline;
}

mcpr_status mcpr__query_sqlite_vacuum_count_original(mcpr_query *q,
                                                     const mcpr_vacuum_options *o,
                                                     int64_t budget_ms, int64_t *sessions,
                                                     bool *over_budget, mcpr_error *err) {
  if (q->backend != &mcpr__query_sqlite_backend)
    return not_ours(q, err);
  sqlite_impl *impl = q->impl;
  sqlb b;
  sb_init(&b);
  sb_int(&b, "SELECT count(*) FROM sessions s WHERE s.ended_at < ?", o->before_ms);
  if (o->proxy)
    sb_text(&b, " AND s.proxy = ?", o->proxy);
  sb_int(&b, " AND NOT EXISTS (SELECT 1 FROM requests r WHERE r.session_id = s.session_id"
             " AND NOT (r.ts < ?", o->before_ms);
  if (o->proxy)
    sb_text(&b, " AND r.proxy = ?", o->proxy);
  sb_add(&b, "))");
  int64_t deadline = mcpr__mono_ms() + budget_ms;
  sqlite3_progress_handler(impl->db, 100000, past_budget, &deadline);
  mcpr_status s = count_one(impl->db, &b, sessions, err);
  sqlite3_progress_handler(impl->db, 0, NULL, NULL);
  *over_budget = s != MCPR_OK && mcpr__mono_ms() >= deadline;
  return s;
}

/* ---------- plans ---------- */

mcpr_status mcpr__query_sqlite_plans(mcpr_query *q, mcpr__plan_fn fn, void *ctx,
                                     mcpr_error *err) {
  if (q->backend != &mcpr__query_sqlite_backend)
    return not_ours(q, err);
  sqlite_impl *impl = q->impl;
  sqlite3 *db = impl->db;
  int64_t now = mcpr_now_ms(), hour = now - 3600000, week = now - 7 * 86400000LL;
  int stop = 0;
  mcpr_status s = MCPR_OK;
  sqlb b;
#define PLAN(name) \
  do { \
    if (s == MCPR_OK && !stop) \
      s = explain(db, &b, name, fn, ctx, &stop, err); \
  } while (0)

  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.since_ms = hour;
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --since 1h");
  f.proxy = "api";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs NAME --since 1h");
  f.proxy = NULL;
  f.tool = "search";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --tool T");
  f.tool = NULL;
  f.method = "tools/list";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --method M");
  f.method = NULL;
  f.has_status = true;
  f.status = MCPR_REQUEST_ERROR;
  f.error_code = "-32601";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --status error --error-code C");
  f.has_status = false;
  f.error_code = NULL;
  f.since_ms = MCPR_QUERY_NO_CUTOFF;
  f.session_prefix = "0198";
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --session PREFIX (all time)");
  f.session_prefix = NULL;
  f.after_row_id = 1000;
  build_logs(&b, MCPR__FOLLOW, &f);
  PLAN("logs --follow (poll)");
  f.tool = "search";
  build_logs(&b, MCPR__FOLLOW, &f);
  PLAN("logs --tool T --follow (poll)");
  f.tool = NULL;
  f.after_row_id = 0;
  f.up_to_row_id = 1000;
  f.since_ms = hour;
  build_logs(&b, MCPR__LOGS, &f);
  PLAN("logs --follow (initial tail)");
  f.up_to_row_id = 0;
  f.min_latency_us = 500000;
  f.limit = 20;
  build_logs(&b, MCPR__SLOW, &f);
  PLAN("slow --since 1h");
  f.proxy = "api";
  build_logs(&b, MCPR__SLOW, &f);
  PLAN("slow NAME");
  f.proxy = NULL;
  f.tool = "search";
  build_logs(&b, MCPR__SLOW, &f);
  PLAN("slow --tool T");
  f.tool = NULL;
  f.after_row_id = 1000;
  build_logs(&b, MCPR__FOLLOW, &f);
  PLAN("slow --follow (poll)");
  sb_init(&b);
  sb_add(&b, SQL_LAST_ROW_ID);
  PLAN("follow start (last row id)");
  {
    mcpr_log_filter sl;
    mcpr_log_filter_init(&sl);
    sl.since_ms = now - 40 * 24 * 3600000LL;
    sl.min_latency_us = 500000;
    sl.limit = 20;
    int64_t sh0 = first_full_hour(sl.since_ms), one = sh0 + 100;
    for (int v = 0; v < 3; v++) {
      static const char *const suffix[] = {"", " --tool T", " NAME"};
      char name[128];
      sl.tool = v == 1 ? "search" : NULL;
      sl.proxy = v == 2 ? "api" : NULL;
      build_slow_hours(&b, &sl, sh0);
      snprintf(name, sizeof name, "slow%s --since 40d: rollup hours (max per hour)", suffix[v]);
      PLAN(name);
      build_slow_range(&b, &sl, false, one * MCPR__ROLLUP_HOUR_MS,
                       (one + 1) * MCPR__ROLLUP_HOUR_MS, INT64_MIN, 1000, 500000);
      snprintf(name, sizeof name, "slow%s --since 40d: one hour (raw)", suffix[v]);
      PLAN(name);
      build_slow_range(&b, &sl, false, sl.since_ms, sh0 * MCPR__ROLLUP_HOUR_MS, INT64_MIN, 1000,
                       500000);
      snprintf(name, sizeof name, "slow%s --since 40d: partial first hour (raw)", suffix[v]);
      PLAN(name);
      build_slow_range(&b, &sl, true, sl.since_ms, INT64_MIN, 1000, INT64_MAX, 500000);
      snprintf(name, sizeof name, "slow%s --since 40d: rows above the watermark (raw)",
               suffix[v]);
      PLAN(name);
    }
  }

  mcpr_stats_filter sf = {NULL, hour, 0};
  build_stats(&b, &sf, false);
  PLAN("status/stats --since 1h");
  sf.proxy = "api";
  build_stats(&b, &sf, false);
  PLAN("status/stats NAME --since 1h");
  int64_t month = now - 40 * 24 * 3600000LL;
  int64_t h0 = first_full_hour(month);
  rollup_span sp = span_of(h0, true);
  for (int day = 0; day < 2; day++) {
    const char *lv = day ? "rollup days" : "rollup hours before the first whole day";
    char name[160];
    build_rollup_calls(&b, NULL, &sp, day);
    snprintf(name, sizeof name, "status --since 40d: requests in the %s", lv);
    PLAN(name);
    build_rollup_calls(&b, "api", &sp, day);
    snprintf(name, sizeof name, "status NAME --since 40d: requests in the %s", lv);
    PLAN(name);
    build_rollup_parts(&b, NULL, &sp, day);
    snprintf(name, sizeof name, "status --since 40d: %s", lv);
    PLAN(name);
    build_rollup_parts(&b, "api", &sp, day);
    snprintf(name, sizeof name, "status NAME --since 40d: %s", lv);
    PLAN(name);
  }
  sf.proxy = NULL;
  sf.since_ms = month;
  build_rollup_edge(&b, &sf, h0, 1000);
  PLAN("status --since 40d: partial first hour (raw)");
  sf.proxy = "api";
  build_rollup_edge(&b, &sf, h0, 1000);
  PLAN("status NAME --since 40d: partial first hour (raw)");
  build_rollup_above(&b, &sf, 1000);
  PLAN("status NAME --since 40d: rows above the watermark (raw)");
  sf.since_ms = hour;
  build_active_count(&b, "api", now);
  PLAN("status: active sessions");
  build_total_count(&b, "api", hour);
  PLAN("status: sessions in window");
  build_active_count(&b, NULL, now);
  PLAN("status: active sessions (all proxies)");

  mcpr_session_filter sess;
  mcpr_session_filter_init(&sess);
  sess.since_ms = hour;
  build_sessions(&b, &sess, now);
  PLAN("sessions --since 1h");
  sess.proxy = "api";
  build_sessions(&b, &sess, now);
  PLAN("sessions NAME");
  sess.active_only = true;
  build_sessions(&b, &sess, now);
  PLAN("sessions NAME --active");
  sess.proxy = NULL;
  sess.active_only = false;
  sess.client_name = "cursor";
  build_sessions(&b, &sess, now);
  PLAN("sessions --client C");
  build_session_proxies(&b);
  PLAN("sessions: the proxies that have sessions");
  if (s == MCPR_OK && index_exists(db, MCPR__SESSIONS_SEEN_INDEX)) {
    sess.since_ms = hour;
    build_sessions_walk(&b, "api", &sess, now);
    PLAN("sessions --since 1h: one proxy's walk (mcpr_sessions_seen)");
    sess.active_only = true;
    sess.since_ms = MCPR_QUERY_NO_CUTOFF;
    build_sessions_walk(&b, "api", &sess, now);
    PLAN("sessions --active: one proxy's walk (mcpr_sessions_seen)");
    sess.active_only = false;
  }
  build_session_exact(&b, "0198abcd", now);
  PLAN("session ID (exact)");
  build_session_prefix(&b, "0198", now, 4);
  PLAN("session PREFIX");
  mcpr_log_filter_init(&f);
  f.session_id = "0198abcd";
  f.limit = INT64_MAX;
  build_logs(&b, MCPR__OLDEST_FIRST, &f);
  PLAN("session ID: its requests");

  build_clients(&b, NULL, week, true);
  PLAN("clients --since 7d (a short window)");
  build_clients(&b, NULL, week, false);
  PLAN("clients --since 7d (most of the sessions)");
  build_clients(&b, "api", week, true);
  PLAN("clients NAME --since 7d (a short window)");
  build_clients(&b, "api", week, false);
  PLAN("clients NAME --since 7d (most of the sessions)");
  build_total_count(&b, NULL, hour);
  PLAN("status: sessions in window (all proxies)");
  sb_init(&b);
  sb_add(&b, SQL_SESSIONS_SPAN);
  PLAN("clients: sessions span (plan choice)");
  build_schema(&b, "api", NULL);
  PLAN("schema NAME");
  build_schema(&b, NULL, "tools/list");
  PLAN("schema --method M");
  build_changes(&b, "api", NULL, 50);
  PLAN("schema --changes");
  build_tool_usage(&b, "[\"search\",\"fetch\"]", NULL, week);
  PLAN("schema --unused --since 7d");
  build_tool_usage(&b, "[\"search\",\"fetch\"]", "api", week);
  PLAN("schema NAME --unused");
  sp = span_of(first_full_hour(week), true);
  build_tool_usage_rollup(&b, "[\"search\",\"fetch\"]", NULL, &sp, 0);
  PLAN("schema --unused --since 7d: rollup hours before the first whole day");
  build_tool_usage_rollup(&b, "[\"search\",\"fetch\"]", NULL, &sp, 1);
  PLAN("schema --unused --since 7d: rollup days");
  build_tool_usage_rollup(&b, "[\"search\",\"fetch\"]", "api", &sp, 0);
  PLAN("schema NAME --unused --since 7d: rollup hours before the first whole day");
  build_tool_usage_rollup(&b, "[\"search\",\"fetch\"]", "api", &sp, 1);
  PLAN("schema NAME --unused --since 7d: rollup days");
  build_tool_usage_range(&b, "[\"search\",\"fetch\"]", "api", week,
                         first_full_hour(week) * MCPR__ROLLUP_HOUR_MS, 1000);
  PLAN("schema NAME --unused --since 7d: partial first hour (raw)");
  build_tool_usage_above(&b, "[\"search\",\"fetch\"]", "api", week, 1000);
  PLAN("schema NAME --unused --since 7d: rows above the watermark (raw)");

  sb_init(&b);
  sb_add(&b, SQL_INFO_REQUESTS);
  PLAN("store stats: requests");
  sb_init(&b);
  sb_add(&b, SQL_INFO_RANGE);
  PLAN("store stats: oldest/newest");
  sb_init(&b);
  sb_add(&b, SQL_INFO_PROXIES);
  PLAN("store stats: proxies");
  mcpr_vacuum_options vo = {.before_ms = week, .proxy = NULL};
  build_vacuum_count_requests(&b, &vo);
  PLAN("vacuum --dry-run: requests");
  build_vacuum_count_sessions(&b, &vo);
  PLAN("vacuum --dry-run: sessions");
  build_vacuum_delete_requests(&b, &vo);
  PLAN("vacuum: delete requests");
  sb_init(&b);
  sb_add(&b, SQL_VACUUM_SNAPSHOT_ID);
  PLAN("vacuum: last request id");
  /* The batch delete reads the temp table the run fills. */
  if (s == MCPR_OK && mcpr__db_exec(db, SQL_VACUUM_TEMP_CREATE) != SQLITE_OK)
    s = mcpr__db_error(db, sqlite3_errcode(db), err, "creating vacuum's temp table");
  build_vacuum_find_sessions(&b, &vo);
  PLAN("vacuum: find sessions to delete");
  build_vacuum_delete_sessions(&b, &vo, 0, VACUUM_CHUNK_ROWS, 1000);
  PLAN("vacuum: delete sessions (batch)");
  vo.proxy = "api";
  build_vacuum_count_requests(&b, &vo);
  PLAN("vacuum --proxy P --dry-run: requests");
  build_vacuum_count_sessions(&b, &vo);
  PLAN("vacuum --proxy P --dry-run: sessions");
  build_vacuum_delete_requests(&b, &vo);
  PLAN("vacuum --proxy P: delete requests");
  build_vacuum_find_sessions(&b, &vo);
  PLAN("vacuum --proxy P: find sessions to delete");
  build_vacuum_delete_sessions(&b, &vo, 0, VACUUM_CHUNK_ROWS, 1000);
  PLAN("vacuum --proxy P: delete sessions (batch)");
  mcpr__db_exec(db, SQL_VACUUM_TEMP_DROP);
#undef PLAN
  return s;
}

static mcpr_status sqlite_series_scan(void *p, const mcpr_series_filter *f,
                                      const mcpr__series_sinks *sinks, mcpr_error *err) {
  return mcpr__sqlite_series_scan(((sqlite_impl *)p)->db, f, sinks, err);
}

const mcpr__query_backend mcpr__query_sqlite_backend = {
    .name = "sqlite",
    .close = sqlite_close,
    .logs = sqlite_logs,
    .last_row_id = sqlite_last_row_id,
    .stats_scan = sqlite_stats_scan,
    .stats_rollup = sqlite_stats_rollup,
    .rollup = sqlite_rollup,
    .rollup_behind = sqlite_rollup_behind,
    .session_counts = sqlite_session_counts,
    .sessions = sqlite_sessions,
    .sessions_by_prefix = sqlite_sessions_by_prefix,
    .clients = sqlite_clients,
    .schema = sqlite_schema,
    .schema_changes = sqlite_schema_changes,
    .tool_usage = sqlite_tool_usage,
    .store_info = sqlite_store_info,
    .vacuum = sqlite_vacuum,
    .series_scan = sqlite_series_scan,
};

void mcpr__query_sqlite_set_rollup_raw_max(mcpr_query *q, int64_t rows) {
  if (q && q->backend == &mcpr__query_sqlite_backend)
    ((sqlite_impl *)q->impl)->rollup_raw_max_rows = rows;
}

void mcpr__query_sqlite_set_sessions_walk(mcpr_query *q, bool on) {
  if (q && q->backend == &mcpr__query_sqlite_backend)
    ((sqlite_impl *)q->impl)->sessions_walk = on;
}

/*
 * query.h — the read side of the store (SPEC §6): every question the
 * `mcpr proxy` and `mcpr store` commands ask, as typed calls.
 *
 * A mcpr_query is its own read connection to one store file. Opening runs
 * pending migrations first (so a v0–v4 file written by the original just
 * works) and otherwise only reads: in WAL mode a writer never waits for a
 * query and a query never waits for a writer. Only mcpr_query_vacuum()
 * writes.
 *
 *   mcpr_query *q;
 *   mcpr_error err = {0};
 *   if (mcpr_query_open(&q, path, &err) != MCPR_OK) { ...err.message... }
 *   mcpr_log_filter f;
 *   mcpr_log_filter_init(&f);
 *   f.since_ms = mcpr_now_ms() - 3600 * 1000;
 *   mcpr_log_rows rows;
 *   if (mcpr_query_logs(q, &f, &rows, &err) == MCPR_OK) {
 *     for (size_t i = 0; i < rows.count; i++) ...rows.rows[i].tool...
 *     mcpr_log_rows_release(&rows);
 *   }
 *   mcpr_query_close(q);
 *
 * Conventions. Filter strings are borrowed for the call; NULL means "no
 * filter". Time cutoffs are unix ms; MCPR_QUERY_NO_CUTOFF means all time.
 * Result sets are caller-owned structs: every string in their rows belongs
 * to the set and lives until its _release(); a missing value is a NULL
 * string or MCPR_QUERY_NULL for an integer. A handle is used by one thread
 * at a time.
 */
#ifndef MCPR_QUERY_H
#define MCPR_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcpr_query mcpr_query;

/* An integer column that is NULL in the store. */
#define MCPR_QUERY_NULL INT64_MIN
/* since_ms / before_ms value meaning "no time bound". */
#define MCPR_QUERY_NO_CUTOFF INT64_MIN
/* A session is active when it has not ended and was seen this recently. */
#define MCPR_QUERY_ACTIVE_WINDOW_MS (5 * 60 * 1000)

/* Opaque storage for the strings of one result set. */
typedef struct mcpr__query_pool mcpr__query_pool;

/*
 * Open a read connection to the store at path (NULL: resolved as
 * mcpr_store_resolve_path(NULL)). Never creates a file: a missing store is
 * MCPR_ENOTFOUND with a message naming the path and how to point elsewhere.
 * Also MCPR_ENEWER, MCPR_ENOTSTORE, MCPR_ECORRUPT, MCPR_EREADONLY (an old
 * read-only file that needs migrating); a refused file is left as it was,
 * with nothing created beside it. A store in the original's 0.5.x layout
 * is opened strictly read-only and answers every query (see
 * docs/original-v05.md; mcpr_query_vacuum() refuses it): there a log
 * row's status may be "pending" (no response recorded) with latency_us
 * MCPR_QUERY_NULL.
 */
MCPR_API mcpr_status mcpr_query_open(mcpr_query **out, const char *path, mcpr_error *err);
/* NULL is a no-op. */
MCPR_API void mcpr_query_close(mcpr_query *q);
/* The file this handle reads (borrowed). */
MCPR_API const char *mcpr_query_path(const mcpr_query *q);

/* ---------- requests: logs, slow, follow ---------- */

typedef struct mcpr_log_row {
  int64_t row_id; /* the store's insertion order: follow cursors */
  const char *request_id;
  int64_t ts_ms;
  const char *proxy;
  const char *method;
  const char *tool;         /* NULL */
  const char *resource_uri; /* NULL */
  const char *prompt_name;  /* NULL */
  int64_t latency_us;  /* MCPR_QUERY_NULL when unknown (0.5 layout: no response) */
  const char *status; /* "ok" | "error" | "timeout"; "pending" (0.5 layout) */
  const char *error_code; /* NULL */
  const char *error_msg;  /* NULL */
  const char *session_id; /* NULL */
  int64_t bytes_in;       /* MCPR_QUERY_NULL */
  int64_t bytes_out;      /* MCPR_QUERY_NULL */
} mcpr_log_row;

typedef struct mcpr_log_rows {
  mcpr_log_row *rows;
  size_t count;
  mcpr__query_pool *pool;
} mcpr_log_rows;

MCPR_API void mcpr_log_rows_release(mcpr_log_rows *rows);

typedef struct mcpr_log_filter {
  const char *proxy;
  const char *tool;
  const char *method;
  const char *error_code;     /* exact */
  const char *session_prefix; /* session_id starts with this */
  const char *session_id;     /* exact */
  bool has_status;
  mcpr_request_status status;
  int64_t since_ms;           /* ts >= since_ms; MCPR_QUERY_NO_CUTOFF */
  int64_t min_latency_us;     /* slow: latency_us >= this; 0 = no bound */
  int64_t limit;              /* > 0 */
  /* Follow: only rows with row_id > after_row_id (0: no bound)... */
  int64_t after_row_id;
  /* ...and row_id <= up_to_row_id (0: no bound). */
  int64_t up_to_row_id;
} mcpr_log_filter;

/* No filters, all time, limit 50. */
MCPR_API void mcpr_log_filter_init(mcpr_log_filter *f);

/* logs: matching requests, newest first (ts, then insertion order). */
MCPR_API mcpr_status mcpr_query_logs(mcpr_query *q, const mcpr_log_filter *f,
                                     mcpr_log_rows *out, mcpr_error *err);
/* slow: requests with latency_us >= f->min_latency_us, slowest first. Uses
 * proxy, tool, since_ms, limit. */
MCPR_API mcpr_status mcpr_query_slow(mcpr_query *q, const mcpr_log_filter *f,
                                     mcpr_log_rows *out, mcpr_error *err);
/*
 * follow: rows stored after f->after_row_id that match f (since_ms is
 * ignored; min_latency_us applies when > 0), oldest first (insertion
 * order), at most f->limit. Call again with after_row_id = the last row's
 * row_id to continue.
 */
MCPR_API mcpr_status mcpr_query_follow(mcpr_query *q, const mcpr_log_filter *f,
                                       mcpr_log_rows *out, mcpr_error *err);
/* The newest row_id in the store now (0 when empty): where a follow starts. */
MCPR_API mcpr_status mcpr_query_last_row_id(mcpr_query *q, int64_t *out, mcpr_error *err);

/* ---------- stats and status ---------- */

typedef struct mcpr_stats_row {
  const char *label; /* tool, or "<method>" when the request has no tool */
  int64_t calls;
  /* avg/min/max/p95 over the requests whose latency is known;
   * MCPR_QUERY_NULL when none is (0.5 layout: none answered) */
  int64_t avg_us;    /* rounded to the nearest µs */
  int64_t min_us;
  int64_t max_us;
  int64_t p95_us;    /* nearest rank: sorted ascending, index ceil(0.95·n)−1 */
  int64_t errors;    /* status not ok */
  double error_pct;  /* 100·errors/calls */
  int64_t total_bytes_in;  /* sum of the measured values (0 when none) */
  int64_t total_bytes_out;
} mcpr_stats_row;

typedef struct mcpr_stats {
  mcpr_stats_row *rows; /* by calls desc, then label */
  size_t count;
  int64_t total_calls;
  int64_t total_errors;
  double error_pct;
  mcpr__query_pool *pool;
} mcpr_stats;

MCPR_API void mcpr_stats_release(mcpr_stats *stats);

typedef struct mcpr_stats_filter {
  const char *proxy;
  int64_t since_ms;
  /* Non-zero: compute from the raw requests only, never from rollups
   * (p95 exact rather than within 1 %; every other figure is exact
   * either way). */
  int exact;
} mcpr_stats_filter;

/* Per-label stats of the requests in the window, in one pass over them. */
MCPR_API mcpr_status mcpr_query_stats(mcpr_query *q, const mcpr_stats_filter *f,
                                      mcpr_stats *out, mcpr_error *err);

typedef struct mcpr_status_summary {
  mcpr_stats stats;        /* the tools of `proxy status` */
  int64_t active_sessions; /* of the proxy, active now (any start time) */
  int64_t total_sessions;  /* of the proxy, started at or after since_ms */
} mcpr_status_summary;

/* stats plus session counts; now_ms <= 0 means the current time. */
MCPR_API mcpr_status mcpr_query_status(mcpr_query *q, const mcpr_stats_filter *f,
                                       int64_t now_ms, mcpr_status_summary *out,
                                       mcpr_error *err);
MCPR_API void mcpr_status_summary_release(mcpr_status_summary *s);

/* ---------- time series (the dashboard's charts) ---------- */

/* At most this many buckets in one series (400 hourly buckets: 16 days). */
#define MCPR_SERIES_MAX_BUCKETS 2000

typedef struct mcpr_series_filter {
  const char *proxy; /* NULL: all */
  const char *tool;  /* NULL: all requests; else only tools/call of this tool */
  int64_t since_ms;  /* first bucket starts here (ts >= since_ms) */
  int64_t until_ms;  /* last bucket ends here (ts < until_ms) */
  int64_t bucket_ms; /* > 0; the window is ceil((until−since)/bucket) buckets */
  /* Also one series per label (tool, or "<method>" as in stats rows)
   * with requests and errors per bucket. */
  bool by_label;
} mcpr_series_filter;

typedef struct mcpr_series_point {
  int64_t start_ms; /* bucket [start_ms, start_ms + bucket_ms) */
  int64_t requests;
  int64_t errors;   /* status not ok, as in stats */
  /* Nearest rank over the bucket's known latencies (p95 as in stats:
   * index ceil(0.95·n)−1; p50: ceil(0.5·n)−1); MCPR_QUERY_NULL when the
   * bucket has none, and always in per-label series. */
  int64_t p50_us;
  int64_t p95_us;
} mcpr_series_point;

typedef struct mcpr_series {
  const char *label; /* NULL: every request of the filter */
  int64_t requests;  /* sum over the buckets */
  mcpr_series_point *points; /* one per bucket, oldest first */
} mcpr_series;

typedef struct mcpr_series_set {
  size_t buckets;      /* points in every series */
  int64_t since_ms, bucket_ms;
  mcpr_series *series; /* [0]: the total; then by_label's, by requests desc, label */
  size_t count;
  mcpr__query_pool *pool;
} mcpr_series_set;

/* Zeroed filter, no proxy or tool. */
MCPR_API void mcpr_series_filter_init(mcpr_series_filter *f);

/*
 * Requests, errors and p50/p95 latency per time bucket, from the same rows
 * as mcpr_query_stats (so a bucket's figures agree with `proxy status`
 * over the same range). A bad window (bucket_ms <= 0, until <= since, more
 * than MCPR_SERIES_MAX_BUCKETS buckets) is MCPR_EINVAL.
 */
MCPR_API mcpr_status mcpr_query_series(mcpr_query *q, const mcpr_series_filter *f,
                                       mcpr_series_set *out, mcpr_error *err);
MCPR_API void mcpr_series_set_release(mcpr_series_set *s);

/* ---------- sessions and clients ---------- */

typedef struct mcpr_session_row {
  const char *session_id;
  const char *proxy;
  const char *client_name;     /* NULL */
  const char *client_version;  /* NULL */
  const char *client_platform; /* NULL */
  int64_t started_at_ms;
  int64_t last_seen_at_ms;
  int64_t ended_at_ms; /* MCPR_QUERY_NULL while open */
  int64_t total_calls;
  int64_t total_errors;
  bool is_active;
} mcpr_session_row;

typedef struct mcpr_session_rows {
  mcpr_session_row *rows;
  size_t count;
  mcpr__query_pool *pool;
} mcpr_session_rows;

MCPR_API void mcpr_session_rows_release(mcpr_session_rows *rows);

typedef struct mcpr_session_filter {
  const char *proxy;
  const char *client_name; /* exact */
  int64_t since_ms;        /* started_at >= since_ms */
  bool active_only;
  int64_t now_ms;          /* <= 0: the current time */
  int64_t limit;
} mcpr_session_filter;

MCPR_API void mcpr_session_filter_init(mcpr_session_filter *f);

/* sessions, most recently seen first. */
MCPR_API mcpr_status mcpr_query_sessions(mcpr_query *q, const mcpr_session_filter *f,
                                         mcpr_session_rows *out, mcpr_error *err);

typedef struct mcpr_session_detail {
  mcpr_session_row session;
  mcpr_log_rows requests; /* oldest first */
  mcpr__query_pool *pool;
} mcpr_session_detail;

/*
 * One session by id or unique id prefix, with all its requests. Not found
 * is MCPR_ENOTFOUND; a prefix that matches several sessions is MCPR_EINVAL
 * naming some of them. now_ms <= 0: the current time.
 */
MCPR_API mcpr_status mcpr_query_session(mcpr_query *q, const char *id_prefix, int64_t now_ms,
                                        mcpr_session_detail *out, mcpr_error *err);
MCPR_API void mcpr_session_detail_release(mcpr_session_detail *d);

typedef struct mcpr_client_row {
  const char *client_name;     /* NULL */
  const char *client_version;  /* NULL */
  const char *client_platform; /* NULL */
  int64_t sessions;
  int64_t total_calls;
  int64_t total_errors;
  double error_pct;
  int64_t first_seen_ms; /* earliest started_at */
  int64_t last_seen_ms;  /* latest last_seen_at */
} mcpr_client_row;

typedef struct mcpr_client_rows {
  mcpr_client_row *rows; /* by total_calls desc */
  size_t count;
  mcpr__query_pool *pool;
} mcpr_client_rows;

MCPR_API void mcpr_client_rows_release(mcpr_client_rows *rows);

/* Sessions started at or after since_ms grouped by (name, version, platform). */
MCPR_API mcpr_status mcpr_query_clients(mcpr_query *q, const char *proxy, int64_t since_ms,
                                        mcpr_client_rows *out, mcpr_error *err);

/* ---------- schema ---------- */

typedef struct mcpr_schema_row {
  const char *proxy;
  const char *upstream_url;
  const char *method;
  const char *payload; /* JSON text */
  int64_t captured_at_ms;
  const char *schema_hash;
} mcpr_schema_row;

typedef struct mcpr_schema_rows {
  mcpr_schema_row *rows; /* by upstream_url, method */
  size_t count;
  mcpr__query_pool *pool;
} mcpr_schema_rows;

MCPR_API void mcpr_schema_rows_release(mcpr_schema_rows *rows);

/* Current snapshots; proxy and method may be NULL. */
MCPR_API mcpr_status mcpr_query_schema(mcpr_query *q, const char *proxy, const char *method,
                                       mcpr_schema_rows *out, mcpr_error *err);

typedef enum mcpr_schema_completeness {
  MCPR_SCHEMA_UNKNOWN = 0,  /* nothing captured */
  MCPR_SCHEMA_PARTIAL = 1,  /* something, but not initialize + a list method */
  MCPR_SCHEMA_COMPLETE = 2, /* initialize and at least one list method */
} mcpr_schema_completeness;

/* "complete" | "partial" | "unknown". */
MCPR_API const char *mcpr_schema_completeness_str(mcpr_schema_completeness c);

typedef struct mcpr_schema_status {
  const char *proxy;
  const char *upstream_url;
  mcpr_schema_completeness status;
  const char *server_name;      /* from initialize: serverInfo.name, NULL */
  const char *server_version;   /* serverInfo.version, NULL */
  const char *protocol_version; /* protocolVersion, NULL */
  const char **capabilities;    /* keys of capabilities, sorted */
  size_t capability_count;
  const char **methods;         /* captured methods, sorted */
  size_t method_count;
  int64_t last_captured_ms;
} mcpr_schema_status;

typedef struct mcpr_schema_statuses {
  mcpr_schema_status *rows; /* one per (proxy, upstream_url), by upstream */
  size_t count;
  mcpr__query_pool *pool;
} mcpr_schema_statuses;

MCPR_API void mcpr_schema_statuses_release(mcpr_schema_statuses *s);

/* Status of every upstream of proxy (NULL: all). An empty result means
 * "unknown": nothing captured. */
MCPR_API mcpr_status mcpr_query_schema_status(mcpr_query *q, const char *proxy,
                                              mcpr_schema_statuses *out, mcpr_error *err);

typedef struct mcpr_schema_change_row {
  const char *proxy;
  const char *upstream_url;
  const char *method;
  const char *change_type;
  const char *item_name; /* NULL */
  const char *old_hash;  /* NULL */
  const char *new_hash;  /* NULL */
  int64_t detected_at_ms;
} mcpr_schema_change_row;

typedef struct mcpr_schema_change_rows {
  mcpr_schema_change_row *rows; /* newest first */
  size_t count;
  mcpr__query_pool *pool;
} mcpr_schema_change_rows;

MCPR_API void mcpr_schema_change_rows_release(mcpr_schema_change_rows *rows);

MCPR_API mcpr_status mcpr_query_schema_changes(mcpr_query *q, const char *proxy,
                                               const char *method, int64_t limit,
                                               mcpr_schema_change_rows *out, mcpr_error *err);

typedef struct mcpr_unused_tool_row {
  const char *tool_name;
  const char *description; /* NULL */
  int64_t calls;
  int64_t errors;
  int64_t last_called_at_ms; /* MCPR_QUERY_NULL when never called in the window */
} mcpr_unused_tool_row;

typedef struct mcpr_unused_tool_rows {
  mcpr_unused_tool_row *rows; /* least used first: calls asc, then name */
  size_t count;
  mcpr__query_pool *pool;
} mcpr_unused_tool_rows;

MCPR_API void mcpr_unused_tool_rows_release(mcpr_unused_tool_rows *rows);

/*
 * Every tool of the captured tools/list snapshots (of proxy, when given)
 * with its calls, errors and last call at or after since_ms — counting
 * only that proxy's requests when proxy is given.
 */
MCPR_API mcpr_status mcpr_query_unused_tools(mcpr_query *q, const char *proxy,
                                             int64_t since_ms, mcpr_unused_tool_rows *out,
                                             mcpr_error *err);

/* ---------- the store itself ---------- */

typedef struct mcpr_store_info {
  int64_t total_requests;
  int64_t total_sessions;
  int64_t oldest_request_ms; /* MCPR_QUERY_NULL when there are none */
  int64_t newest_request_ms;
  int64_t proxies;           /* distinct proxy names in requests */
  int64_t db_bytes;
  int64_t wal_bytes;         /* 0 when there is no WAL file */
  int schema_version;
  /* The last time a writer could not write (full disk, I/O error,
   * read-only, locked), as that writer recorded it; MCPR_OK: none known. */
  mcpr_status last_failure;
  char last_failure_message[256];
  int64_t last_failure_at_ms;    /* wall clock: when it began */
  int64_t last_failure_ended_ms; /* when writing resumed; 0: not seen to resume */
  int64_t last_failure_events;   /* events counted as not stored during it */
  /* What retention ([store] retention...) deleted, ever, as the writers of
   * the store counted it in the file; 0 when it never ran. */
  int64_t retention_requests_deleted;
  int64_t retention_sessions_deleted;
  int64_t retention_rollups_deleted; /* rollup rows (hour × proxy × label) */
  int64_t retention_last_run_ms;     /* wall clock; 0: never */
} mcpr_store_info;

MCPR_API mcpr_status mcpr_query_store_info(mcpr_query *q, mcpr_store_info *out,
                                           mcpr_error *err);

typedef struct mcpr_vacuum_options {
  int64_t before_ms;  /* delete requests with ts < before_ms */
  const char *proxy;  /* only this proxy's rows; NULL: all */
  bool dry_run;       /* count only */
  /* How long to wait for a writer's lock before giving up (default when
   * 0: 60000 ms). */
  int64_t lock_wait_ms;
} mcpr_vacuum_options;

typedef struct mcpr_vacuum_result {
  int64_t requests_deleted; /* or that would be, on a dry run */
  int64_t sessions_deleted;
  int64_t bytes_before; /* db + wal */
  int64_t bytes_after;  /* equal to bytes_before on a dry run */
} mcpr_vacuum_result;

/*
 * Delete requests older than before_ms (of one proxy), then sessions that
 * ended before it and have no requests left, then reclaim the space
 * (VACUUM, WAL checkpoint TRUNCATE). Deletes run in short transactions that
 * wait out a writer's lock, so a running writer loses nothing.
 */
MCPR_API mcpr_status mcpr_query_vacuum(mcpr_query *q, const mcpr_vacuum_options *o,
                                       mcpr_vacuum_result *out, mcpr_error *err);

/* ---------- rollups ---------- */

typedef struct mcpr_rollup_progress {
  int64_t rolled;          /* requests rolled up by this call so far */
  int64_t left;            /* requests still above the rollups' watermark */
  int64_t batches;         /* write transactions (commit lock taken) */
  int64_t longest_lock_ms; /* the longest of them */
  int64_t largest_batch_rows; /* the most requests one of them rolled up */
  /* Indexes on requests a big store lacked (the open leaves them out),
   * built after the rollups: each in one transaction that holds the
   * commit lock for its whole build — writers wait (a minute at 10M). */
  int64_t indexes_built;
  int64_t index_lock_ms;      /* the lock held for them, in all */
  const char *building_index; /* borrowed: during the call announcing
                                 one before its build, else NULL */
} mcpr_rollup_progress;

/* Called after every batch with the progress so far (borrowed). */
typedef void (*mcpr_rollup_progress_fn)(void *ctx, const mcpr_rollup_progress *p);

/*
 * Bring the store's rollups (per hour, proxy and tool) up to date with
 * every request in it: what a running writer does by itself for its own
 * rows, done here for a store the original or an older mcpr wrote. Short
 * transactions, each holding the commit lock for about 100 ms at most, so
 * a writer keeps writing meanwhile. fn may be NULL; *out (may be NULL)
 * receives the final progress.
 */
MCPR_API mcpr_status mcpr_query_rollup(mcpr_query *q, mcpr_rollup_progress_fn fn, void *ctx,
                                       mcpr_rollup_progress *out, mcpr_error *err);

/*
 * *rows: requests of the store not counted in its rollups yet (an upper
 * bound, by row id) — those a store the original wrote holds until
 * mcpr_query_rollup() (or a running writer, a chunk per batch) rolls them
 * up. Reads count them exactly all the same, raw, which is slow over long
 * windows when they are millions. 0 for a backend without rollups.
 */
MCPR_API mcpr_status mcpr_query_rollup_behind(mcpr_query *q, int64_t *rows, mcpr_error *err);

#ifdef __cplusplus
}
#endif
#endif

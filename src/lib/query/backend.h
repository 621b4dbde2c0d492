/*
 * backend.h — internal: what a store backend provides to the query engine.
 *
 * The public calls of query.h live in query/query.c and hold no SQL: they
 * check arguments, call the backend through this table, and do the work
 * that is the same for every backend (stats and p95 from a stream of
 * samples, schema payload parsing, merging, ordering). A backend is found
 * by the store target's scheme (store/backend.h); SQLite's read side is
 * backend/sqlite/query.c, and a PostgreSQL backend is another table.
 *
 * Every function fills a caller-zeroed result whose pool the caller made.
 */
#ifndef MCPR__QUERY_BACKEND_H
#define MCPR__QUERY_BACKEND_H

#include "mcpr/query.h"
#include "query/pool.h"

typedef enum mcpr__log_kind {
  MCPR__LOGS = 0,   /* newest first */
  MCPR__SLOW = 1,   /* slowest first */
  MCPR__FOLLOW = 2, /* insertion order, after a row id */
  MCPR__OLDEST_FIRST = 3, /* by ts then insertion: one session's requests */
} mcpr__log_kind;

/* One request as the stats pass sees it; strings valid during the call. */
typedef struct mcpr__stats_sample {
  const char *tool; /* NULL: label is "<method>" */
  size_t tool_len;
  const char *method;
  size_t method_len;
  int64_t latency_us; /* MCPR_QUERY_NULL when unknown (no response) */
  int is_error; /* status is not ok */
  int64_t bytes_in;  /* MCPR_QUERY_NULL when not measured */
  int64_t bytes_out;
} mcpr__stats_sample;

/* Returns 0 to go on, non-zero to stop (out of memory). */
typedef int (*mcpr__stats_sink)(void *ctx, const mcpr__stats_sample *s);

/* Many requests of one label at once, as a rollup holds them: every
 * latency known, counted in the serialised sketch (core/sketch.h). */
typedef struct mcpr__stats_part {
  const char *name; /* the tool, or the method when is_tool is 0 */
  size_t name_len;
  int is_tool;
  int64_t calls, errors, sum_us, min_us, max_us, bytes_in, bytes_out;
  const void *sketch;
  size_t sketch_len;
} mcpr__stats_part;

/* Both sinks of a rollup read; each returns 0 to go on. */
typedef struct mcpr__stats_sinks {
  mcpr__stats_sink sample;
  int (*part)(void *ctx, const mcpr__stats_part *p);
  void *ctx;
} mcpr__stats_sinks;

typedef struct mcpr__tool_usage {
  int64_t calls, errors, last_called_at_ms;
} mcpr__tool_usage;

/* One request as the series pass sees it; strings valid during the call. */
typedef struct mcpr__series_sample {
  int64_t ts_ms;
  const char *tool; /* NULL: label is "<method>" */
  size_t tool_len;
  const char *method;
  size_t method_len;
  int64_t latency_us; /* MCPR_QUERY_NULL when unknown */
  int is_error;       /* status is not ok */
} mcpr__series_sample;

/* Returns 0 to go on, non-zero to stop (out of memory). */
typedef int (*mcpr__series_sink)(void *ctx, const mcpr__series_sample *s);

/* One rollup hour of one label, as series_scan may hand it over instead
 * of its requests: only for an hour wholly inside the window and inside
 * one bucket (bucket_ms a multiple of an hour, since_ms on an hour). */
typedef struct mcpr__series_part {
  int64_t hour_start_ms;
  const char *name; /* the tool, or the method when is_tool is 0 */
  size_t name_len;
  int is_tool;
  int64_t calls, errors;
  const void *sketch; /* serialised latencies (core/sketch.h) */
  size_t sketch_len;
} mcpr__series_part;

typedef struct mcpr__series_sinks {
  mcpr__series_sink sample;
  int (*part)(void *ctx, const mcpr__series_part *p);
  void *ctx;
} mcpr__series_sinks;

typedef struct mcpr__query_backend {
  const char *name;
  void (*close)(void *impl);
  mcpr_status (*logs)(void *impl, mcpr__log_kind kind, const mcpr_log_filter *f,
                      mcpr_log_rows *out, size_t *cap, mcpr_error *err);
  mcpr_status (*last_row_id)(void *impl, int64_t *out, mcpr_error *err);
  /* Every request of the window, in any order, each handed to sink once. */
  mcpr_status (*stats_scan)(void *impl, const mcpr_stats_filter *f, mcpr__stats_sink sink,
                            void *ctx, mcpr_error *err);
  /* Optional (NULL: the engine scans). The same requests as stats_scan,
   * each counted once: those the backend's rollups cover as parts, the
   * rest as samples. A backend without usable rollups scans. */
  mcpr_status (*stats_rollup)(void *impl, const mcpr_stats_filter *f,
                              const mcpr__stats_sinks *sinks, mcpr_error *err);
  mcpr_status (*session_counts)(void *impl, const char *proxy, int64_t since_ms,
                                int64_t now_ms, int64_t *active, int64_t *total,
                                mcpr_error *err);
  mcpr_status (*sessions)(void *impl, const mcpr_session_filter *f, int64_t now_ms,
                          mcpr_session_rows *out, mcpr_error *err);
  /* Up to max sessions whose id starts with prefix, exact match first. */
  mcpr_status (*sessions_by_prefix)(void *impl, const char *prefix, int64_t now_ms,
                                    size_t max, mcpr_session_rows *out, mcpr_error *err);
  mcpr_status (*clients)(void *impl, const char *proxy, int64_t since_ms,
                         mcpr_client_rows *out, mcpr_error *err);
  mcpr_status (*schema)(void *impl, const char *proxy, const char *method,
                        mcpr_schema_rows *out, mcpr_error *err);
  mcpr_status (*schema_changes)(void *impl, const char *proxy, const char *method,
                                int64_t limit, mcpr_schema_change_rows *out, mcpr_error *err);
  /* usage[i] for names[i]: requests with tool = names[i] in the window. */
  mcpr_status (*tool_usage)(void *impl, const char *proxy, int64_t since_ms,
                            const char *const *names, size_t n, mcpr__tool_usage *usage,
                            mcpr_error *err);
  mcpr_status (*store_info)(void *impl, mcpr_store_info *out, mcpr_error *err);
  mcpr_status (*vacuum)(void *impl, const mcpr_vacuum_options *o, mcpr_vacuum_result *out,
                        mcpr_error *err);
  /* Optional (NULL: the store has no rollups to build). */
  mcpr_status (*rollup)(void *impl, mcpr_rollup_progress_fn fn, void *ctx,
                        mcpr_rollup_progress *out, mcpr_error *err);
  /* Optional (NULL: nothing is ever behind). */
  mcpr_status (*rollup_behind)(void *impl, int64_t *rows, mcpr_error *err);
  /* Optional (NULL: the engine computes the series from stats_scan, one
   * scan per bucket — correct, but slow on a big window). Every request
   * with since_ms <= ts < until_ms of f's proxy and tool, in any order,
   * each handed over once: as a sample, or within a part (a rollup hour)
   * when the backend has them (query/series.c buckets both). */
  mcpr_status (*series_scan)(void *impl, const mcpr_series_filter *f,
                             const mcpr__series_sinks *sinks, mcpr_error *err);
} mcpr__query_backend;

struct mcpr_query {
  const mcpr__query_backend *backend;
  void *impl;
  char *path;
};

/* Row helpers shared by backends: append a zeroed row. */
mcpr_log_row *mcpr__log_rows_push(mcpr_log_rows *rows, size_t *cap);

/* Stats accumulator (query/stats.c): the one-pass stats of SPEC §6. */
typedef struct mcpr__stats_acc mcpr__stats_acc;
mcpr__stats_acc *mcpr__stats_acc_new(void);
void mcpr__stats_acc_free(mcpr__stats_acc *acc);
/* mcpr__stats_sink-compatible. */
int mcpr__stats_acc_add(void *acc, const mcpr__stats_sample *s);
/* The same for a part (a rollup): its p95 then comes from the merged
 * sketch, within 1 % of the exact value; everything else stays exact. */
int mcpr__stats_acc_add_part(void *acc, const mcpr__stats_part *p);
/* Compute p95s and the ordering into out (whose pool it creates). */
mcpr_status mcpr__stats_acc_finish(mcpr__stats_acc *acc, mcpr_stats *out, mcpr_error *err);
/* ceil(0.95·n) − 1 for n >= 1, in integers. */
size_t mcpr__p95_index(size_t n);
/* Order stats rows by calls desc, then label, and fill the totals. */
void mcpr__stats_order(mcpr_stats *s);

/* How the engine opens a backend's read side (store/backend.h finds it by
 * the store target's scheme): *be is its table, *impl its connection. */
typedef mcpr_status (*mcpr__query_backend_open)(const char *target,
                                                const mcpr__query_backend **be, void **impl,
                                                mcpr_error *err);


#endif

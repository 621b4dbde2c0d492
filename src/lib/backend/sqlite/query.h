/*
 * query.h — internal hooks into the SQLite backend's read side, for the
 * benchmark, the query-plan test and docs/query-plans.md. Not part of the
 * public API.
 */
#ifndef MCPR__SQLITE_QUERY_H
#define MCPR__SQLITE_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "mcpr/query.h"

typedef enum mcpr__stats_strategy {
  /* What mcpr_query_stats() does: one unordered pass, grouping and p95
   * selection in C. */
  MCPR__STATS_ONE_PASS = 0,
  /* One pass ordered by (label, latency_us) in SQL, streamed. */
  MCPR__STATS_SORTED_SQL = 1,
  /* The original: the labels, then per label one aggregate query and one
   * sorted fetch of its latencies for p95 (2N+1 queries). */
  MCPR__STATS_ORIGINAL = 2,
} mcpr__stats_strategy;

mcpr_status mcpr__query_sqlite_stats(mcpr_query *q, const mcpr_stats_filter *f,
                                     mcpr__stats_strategy strategy, mcpr_stats *out,
                                     mcpr_error *err);

/* For every query the backend runs (in its representative filter
 * variants), call fn with a short name, the SQL and its EXPLAIN QUERY PLAN
 * (one line per plan row, indented by depth). Stops at fn's non-zero. */
typedef int (*mcpr__plan_fn)(void *ctx, const char *name, const char *sql, const char *plan);
mcpr_status mcpr__query_sqlite_plans(mcpr_query *q, mcpr__plan_fn fn, void *ctx,
                                     mcpr_error *err);

/* The same for a store in the original's 0.5.x layout (query_v05.c);
 * MCPR_EINVAL for any other store. */
mcpr_status mcpr__query_v05_plans(mcpr_query *q, mcpr__plan_fn fn, void *ctx,
                                  mcpr_error *err);

/* Stats read the raw rows (exact p95) instead of the rollups while the
 * window's rollup hours hold at most rows requests (default 50,000); tests
 * set 0 to exercise the rollups on small stores, or a huge value to force
 * the raw path. */
void mcpr__query_sqlite_set_rollup_raw_max(mcpr_query *q, int64_t rows);

/* Sessions are listed by walking mcpr_sessions_seen (extra_schema.h) when
 * it exists (default on); tests turn it off for the plain sorted list. */
void mcpr__query_sqlite_set_sessions_walk(mcpr_query *q, bool on);

/* Where a real vacuum's time goes, for the benchmark (milliseconds). */
typedef struct mcpr__vacuum_timing {
  double count_ms;           /* dry run: both counts */
  double delete_requests_ms; /* all request batches */
  double find_sessions_ms;   /* the read that picks the sessions to delete */
  double delete_sessions_ms; /* all session batches */
  double vacuum_ms, optimize_ms, checkpoint_ms;
  int64_t vacuum_started_mono_ms; /* mcpr__mono_ms() as VACUUM began; 0: not reached */
  int64_t batches;                /* delete transactions (commit lock taken) */
  int64_t longest_batch_ms;       /* longest one of them held the commit lock */
} mcpr__vacuum_timing;

/* mcpr_query_vacuum(), filling *timing (may be NULL) as well. */
mcpr_status mcpr__query_sqlite_vacuum(mcpr_query *q, const mcpr_vacuum_options *o,
                                      mcpr_vacuum_result *out, mcpr__vacuum_timing *timing,
                                      mcpr_error *err);

/* The original's dry-run session count (a correlated NOT EXISTS per
 * session), as a baseline; given up after budget_ms with *over_budget set
 * (and an error status). */
mcpr_status mcpr__query_sqlite_vacuum_count_original(mcpr_query *q,
                                                     const mcpr_vacuum_options *o,
                                                     int64_t budget_ms, int64_t *sessions,
                                                     bool *over_budget, mcpr_error *err);

#endif

/*
 * query_sqlite.h — internal hooks into the SQLite query backend, for the
 * benchmark, the query-plan test and docs/query-plans.md. Not part of the
 * public API.
 */
#ifndef MCPR__STORE_QUERY_SQLITE_H
#define MCPR__STORE_QUERY_SQLITE_H

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

#endif

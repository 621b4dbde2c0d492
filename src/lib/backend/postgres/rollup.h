/*
 * rollup.h — internal to the PostgreSQL backend: the request rollups (the
 * SQLite store's, backend/sqlite/rollup.h, with the same meaning) and the
 * tables of retention.
 *
 *   mcpr_rollup_hour — per hour (ts div 3,600,000, rounded down) × proxy ×
 *     label (a tool, or the method when there is none; is_tool tells
 *     which) the calls, errors (status not ok), latency sum/min/max,
 *     bytes in/out and the last ts of the requests it counts;
 *   mcpr_rollup_hour_sketch — the latency sketch (core/sketch.h) of each
 *     of those rows, one row per non-empty bucket: (…, key, n). Buckets
 *     add up with n = n + excluded.n, so two writers merge into one hour
 *     with plain upserts, no sketch ever read back into C;
 *   mcpr_rollup_day, mcpr_rollup_day_sketch — the same per UTC day (hour
 *     div 24, rounded down), the sum of its hours;
 *   requests.rolled — true on the rows the rollups count;
 *   mcpr_rollup_pending, mcpr_rollup_pending_sketch — hours (and their
 *     buckets) of the hourly tables' shape, not yet added to the four
 *     tables: no key, no index, several rows per hour and label. Every
 *     read of the rollups adds them in (UNION ALL: its sums, minima and
 *     maxima are the same either way).
 *
 * Where the SQLite store has a watermark (every row id below it is
 * counted), rows here say themselves whether they are counted: identity
 * values are handed out before commit, so with several writers on several
 * machines a lower id may commit after a higher one and no id is a safe
 * boundary. The writer inserts its requests with rolled = true and, in
 * the same statement, appends their groups to the pending tables, so a
 * committed request is counted exactly when its row says so. Upserting
 * them into the four keyed tables with every batch cost the writer half
 * its time (a batch of 2,000 requests touches about 1,200 sketch buckets
 * per level: 2,400 upserts, 10 µs each); an append to a table without an
 * index is a sixth of that. Now and then (mcpr__pg_rollup_fold: after
 * enough batches, when idle, at close) a writer moves what is pending
 * into the keyed tables in one statement, many batches' buckets merged
 * into one upsert each; in between, the pending rows are compacted (each
 * hour, label and bucket's rows replaced by their sum: no index to
 * update, so a tenth of the cost), which keeps them few for the reads
 * that scan them. A try-advisory lock keeps two writers from doing either
 * at once, and DELETE … RETURNING takes exactly the rows it removed, so a
 * row appended meanwhile waits for the next round. A fold locks pending
 * rows before keyed ones; whatever else deletes both (retention, vacuum)
 * takes them in that order too, so the two wait rather than deadlock. Rows another program inserts
 * (and those of a store written before the rollups) have rolled = false:
 * reads take them raw, through a partial index, until a catch-up
 * (mcpr__pg_rollup_catch_up: the writer's retention, `mcpr store rollup`)
 * counts them and flips the flag in one transaction, the rows locked
 * FOR UPDATE SKIP LOCKED, so concurrent catch-ups share them out.
 *
 * Upserts lock their rollup rows in (hour, proxy, is_tool, name[, key])
 * order, the same in every writer; a deadlock left (retention against a
 * writer) is PostgreSQL's to detect and the batch's to retry.
 */
#ifndef MCPR__PG_ROLLUP_H
#define MCPR__PG_ROLLUP_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "backend/postgres/pg.h"
#include "mcpr/error.h"

#define MCPR__PG_ROLLUP_HOUR_MS 3600000LL

/* The tables of rollups and retention, and requests.rolled: run by the
 * migration whenever mcpr_retention_state or the pending tables are
 * missing. */
extern const char MCPR__PG_ROLLUP_DDL[];

#define MCPR__PG_ROLLUP_COL "COLLATE \"C\" NOT NULL"
#define MCPR__PG_ROLLUP_FIGURES                                                              \
  " calls BIGINT NOT NULL, errors BIGINT NOT NULL, sum_us BIGINT NOT NULL,"                  \
  " min_us BIGINT NOT NULL, max_us BIGINT NOT NULL, bytes_in BIGINT NOT NULL,"               \
  " bytes_out BIGINT NOT NULL, last_ts BIGINT NOT NULL"

/* The pending tables alone (part of MCPR__PG_ROLLUP_DDL), for a command
 * that deletes rollups on a store whose writers predate them. */
#define MCPR__PG_ROLLUP_PENDING_DDL                                                          \
  "CREATE TABLE IF NOT EXISTS mcpr_rollup_pending (hour BIGINT NOT NULL,"                    \
  " proxy TEXT " MCPR__PG_ROLLUP_COL ", is_tool INT NOT NULL, name TEXT " MCPR__PG_ROLLUP_COL \
  "," MCPR__PG_ROLLUP_FIGURES ");"                                                           \
  "CREATE TABLE IF NOT EXISTS mcpr_rollup_pending_sketch (hour BIGINT NOT NULL,"             \
  " proxy TEXT " MCPR__PG_ROLLUP_COL ", is_tool INT NOT NULL, name TEXT " MCPR__PG_ROLLUP_COL \
  ", key INT NOT NULL, n BIGINT NOT NULL);"

/* floor(x / d) in SQL, for negative x too. */
#define MCPR__PG_FLOOR_DIV(x, d) \
  "(CASE WHEN " x " >= 0 THEN " x " / " d " ELSE (" x " - (" d " - 1)) / " d " END)"

/* A numeric sum as BIGINT, saturated at its bounds as the SQLite store's
 * sums are (a direct caller of the store API may store any latency):
 * never an out-of-range error that would lose the batch. */
#define MCPR__PG_SAT(x) \
  "LEAST(GREATEST(" x ", -9223372036854775808), 9223372036854775807)::int8"

/*
 * CTEs (each preceded by a comma) that group the requests of a relation
 * rr (ts, proxy, tool, method, latency_us, is_error, bytes_in, bytes_out,
 * key: the latency's sketch key) by hour and label: rg their figures, rk
 * their sketch buckets.
 */
#define MCPR__PG_ROLLUP_GROUP_CTES                                                            \
  ", rg AS (SELECT " MCPR__PG_FLOOR_DIV("ts", "3600000") " AS hour, proxy,"                  \
  " (tool IS NOT NULL)::int4 AS is_tool, coalesce(tool, method) AS name, count(*) AS calls," \
  " count(*) FILTER (WHERE is_error) AS errors, " MCPR__PG_SAT("sum(latency_us)") " AS sum_us," \
  " min(latency_us) AS min_us, max(latency_us) AS max_us, "                                   \
  MCPR__PG_SAT("coalesce(sum(bytes_in), 0)") " AS bytes_in, "                                 \
  MCPR__PG_SAT("coalesce(sum(bytes_out), 0)") " AS bytes_out,"                                \
  " max(ts) AS last_ts FROM rr GROUP BY 1, 2, 3, 4),"                                         \
  " rk AS (SELECT " MCPR__PG_FLOOR_DIV("ts", "3600000") " AS hour, proxy,"                   \
  " (tool IS NOT NULL)::int4 AS is_tool, coalesce(tool, method) AS name, key, count(*) AS n" \
  " FROM rr GROUP BY 1, 2, 3, 4, 5)"

/* CTEs (each preceded by a comma) that add the groups rg and rk (as
 * above) to the four rollup tables. */
#define MCPR__PG_ROLLUP_UPSERT_CTES                                                           \
  ", rh AS (INSERT INTO mcpr_rollup_hour AS o SELECT * FROM rg"                               \
  " ORDER BY hour, proxy, is_tool, name ON CONFLICT (hour, proxy, is_tool, name) DO UPDATE"  \
  " SET " MCPR__PG_ROLLUP_ADD "),"                                                           \
  " rhk AS (INSERT INTO mcpr_rollup_hour_sketch AS o SELECT * FROM rk"                       \
  " ORDER BY hour, proxy, is_tool, name, key"                                                \
  " ON CONFLICT (hour, proxy, is_tool, name, key) DO UPDATE SET n = o.n + excluded.n),"      \
  " rd AS (INSERT INTO mcpr_rollup_day AS o SELECT " MCPR__PG_FLOOR_DIV("hour", "24") ","    \
  " proxy, is_tool, name, sum(calls)::int8, sum(errors)::int8, " MCPR__PG_SAT("sum(sum_us)") \
  ", min(min_us), max(max_us), " MCPR__PG_SAT("sum(bytes_in)") ", "                          \
  MCPR__PG_SAT("sum(bytes_out)") ", max(last_ts)"                                           \
  " FROM rg GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"                                         \
  " ON CONFLICT (day, proxy, is_tool, name) DO UPDATE SET " MCPR__PG_ROLLUP_ADD "),"         \
  " rdk AS (INSERT INTO mcpr_rollup_day_sketch AS o SELECT " MCPR__PG_FLOOR_DIV("hour", "24") \
  ", proxy, is_tool, name, key, sum(n)::int8 FROM rk GROUP BY 1, 2, 3, 4, 5"                 \
  " ORDER BY 1, 2, 3, 4, 5"                                                                  \
  " ON CONFLICT (day, proxy, is_tool, name, key) DO UPDATE SET n = o.n + excluded.n)"

/* CTEs (each preceded by a comma) that add the requests of rr to the
 * four rollup tables at once. */
#define MCPR__PG_ROLLUP_CTES MCPR__PG_ROLLUP_GROUP_CTES MCPR__PG_ROLLUP_UPSERT_CTES

/* CTEs (each preceded by a comma) that append the requests of rr, grouped
 * by hour and label, to the pending tables (the writer's way: see above). */
#define MCPR__PG_ROLLUP_PENDING_CTES                                                          \
  MCPR__PG_ROLLUP_GROUP_CTES ", rp AS (INSERT INTO mcpr_rollup_pending SELECT * FROM rg),"    \
  " rpk AS (INSERT INTO mcpr_rollup_pending_sketch SELECT * FROM rk)"

#define MCPR__PG_ROLLUP_ADD                                                                \
  "calls = o.calls + excluded.calls, errors = o.errors + excluded.errors,"                 \
  " sum_us = " MCPR__PG_SAT("o.sum_us::numeric + excluded.sum_us") ","                     \
  " min_us = LEAST(o.min_us, excluded.min_us), max_us = GREATEST(o.max_us, excluded.max_us)," \
  " bytes_in = " MCPR__PG_SAT("o.bytes_in::numeric + excluded.bytes_in") ","               \
  " bytes_out = " MCPR__PG_SAT("o.bytes_out::numeric + excluded.bytes_out") ","            \
  " last_ts = GREATEST(o.last_ts, excluded.last_ts)"

/*
 * keyed: move the pending groups into the four keyed tables; else compact
 * them (the pending rows of each hour, label and bucket replaced by their
 * sum). One transaction of its own (conn must be outside one). When
 * another connection is at either, nothing is done and *moved = -1; else
 * *moved: pending rows taken.
 */
mcpr_status mcpr__pg_rollup_fold(PGconn *c, const mcpr__pg_target *t, bool keyed,
                                 int64_t *moved, mcpr_error *err);

/*
 * Count up to max_rows requests that have rolled = false, in one
 * transaction of its own (conn must be outside one). *rolled: how many;
 * *left (may be NULL): how many are still not counted after it.
 */
mcpr_status mcpr__pg_rollup_catch_up(PGconn *c, const mcpr__pg_target *t, int64_t max_rows,
                                     int64_t *rolled, int64_t *left, mcpr_error *err);

/*
 * Inside a transaction, after requests with ts < cutoff_ms (of proxy;
 * NULL: all) were deleted: the rollup hours before the cutoff go, the
 * hour it cuts is counted again from the rows left of it, and the days
 * follow (SQLite's mcpr__rollup_forget_before).
 */
mcpr_status mcpr__pg_rollup_forget_before(PGconn *c, const mcpr__pg_target *t, int64_t cutoff_ms,
                                          const char *proxy, mcpr_error *err);

/*
 * Inside a transaction, after the rollup hours before hour went
 * (rollup_retention): the days wholly before it go, the one it falls in
 * is summed again from its hours.
 */
mcpr_status mcpr__pg_rollup_days_follow(PGconn *c, const mcpr__pg_target *t, int64_t hour,
                                        mcpr_error *err);

/* Run sql with n text parameters; *changed (may be NULL): rows affected.
 * Status and err as mcpr__pg_error. */
mcpr_status mcpr__pg_run(PGconn *c, const mcpr__pg_target *t, const char *sql, int n,
                         const char *const *params, int64_t *changed, mcpr_error *err,
                         const char *doing);

#endif

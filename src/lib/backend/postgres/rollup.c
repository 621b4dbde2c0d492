/*
 * rollup.c — the PostgreSQL rollups outside the writer's batch (see
 * rollup.h): counting rows no writer counted, and dropping the rollups
 * of deleted hours (vacuum, retention). Latencies become sketch keys in C
 * (core/sketch.c decides the buckets, so they are the SQLite store's to
 * the bit); everything else is added up in SQL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres/arrays.h"
#include "backend/postgres/rollup.h"
#include "core/sketch.h"

#define COL MCPR__PG_ROLLUP_COL
#define FIGURES MCPR__PG_ROLLUP_FIGURES

const char MCPR__PG_ROLLUP_DDL[] =
    "ALTER TABLE requests ADD COLUMN IF NOT EXISTS rolled BOOLEAN NOT NULL DEFAULT false;"
    "CREATE INDEX IF NOT EXISTS idx_requests_unrolled ON requests (id) WHERE NOT rolled;"
    "CREATE TABLE IF NOT EXISTS mcpr_rollup_hour (hour BIGINT NOT NULL, proxy TEXT " COL ","
    " is_tool INT NOT NULL, name TEXT " COL "," FIGURES ","
    " PRIMARY KEY (hour, proxy, is_tool, name));"
    "CREATE TABLE IF NOT EXISTS mcpr_rollup_hour_sketch (hour BIGINT NOT NULL,"
    " proxy TEXT " COL ", is_tool INT NOT NULL, name TEXT " COL ", key INT NOT NULL,"
    " n BIGINT NOT NULL, PRIMARY KEY (hour, proxy, is_tool, name, key));"
    "CREATE TABLE IF NOT EXISTS mcpr_rollup_day (day BIGINT NOT NULL, proxy TEXT " COL ","
    " is_tool INT NOT NULL, name TEXT " COL "," FIGURES ","
    " PRIMARY KEY (day, proxy, is_tool, name));"
    "CREATE TABLE IF NOT EXISTS mcpr_rollup_day_sketch (day BIGINT NOT NULL,"
    " proxy TEXT " COL ", is_tool INT NOT NULL, name TEXT " COL ", key INT NOT NULL,"
    " n BIGINT NOT NULL, PRIMARY KEY (day, proxy, is_tool, name, key));"
    "CREATE TABLE IF NOT EXISTS mcpr_retention_state (key TEXT COLLATE \"C\" PRIMARY KEY,"
    " value BIGINT NOT NULL);" MCPR__PG_ROLLUP_PENDING_DDL;

/* The pending groups, what the DELETEs removed (rows of one hour and
 * label from many batches) grouped again into rg and rk. */
#define PENDING_REGROUPED                                                                    \
  "WITH d AS (DELETE FROM mcpr_rollup_pending RETURNING *),"                                 \
  " dk AS (DELETE FROM mcpr_rollup_pending_sketch RETURNING *),"                             \
  " rg AS (SELECT hour, proxy, is_tool, name, sum(calls)::int8 AS calls,"                    \
  " sum(errors)::int8 AS errors, " MCPR__PG_SAT("sum(sum_us)") " AS sum_us,"                \
  " min(min_us) AS min_us, max(max_us) AS max_us, " MCPR__PG_SAT("sum(bytes_in)")            \
  " AS bytes_in, " MCPR__PG_SAT("sum(bytes_out)") " AS bytes_out, max(last_ts) AS last_ts"  \
  " FROM d GROUP BY 1, 2, 3, 4),"                                                            \
  " rk AS (SELECT hour, proxy, is_tool, name, key, sum(n)::int8 AS n FROM dk"                \
  " GROUP BY 1, 2, 3, 4, 5)"

/* [0]: compact — back into the pending tables, one row per hour, label
 * (and bucket): an append of a few thousand rows without an index, where
 * a batch appends up to one per request. [1]: fold — upserted into the
 * keyed tables (each bucket's upsert costs as much as ten appends). */
static const char *const SQL_FOLD[2] = {
    PENDING_REGROUPED ", a AS (INSERT INTO mcpr_rollup_pending SELECT * FROM rg),"
                      " ak AS (INSERT INTO mcpr_rollup_pending_sketch SELECT * FROM rk)"
                      " SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM dk)",
    PENDING_REGROUPED MCPR__PG_ROLLUP_UPSERT_CTES
    " SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM dk)"};

/* The rollups' transaction committed when st is MCPR_OK so far, else
 * rolled back; the status of the whole. */
static mcpr_status txn_end(PGconn *c, const mcpr__pg_target *t, mcpr_status st,
                           mcpr_error *err) {
  if (st == MCPR_OK)
    st = mcpr__pg_run(c, t, "COMMIT", 0, NULL, NULL, err, "updating the rollups");
  if (st != MCPR_OK)
    mcpr__pg_exec(c, "ROLLBACK");
  return st;
}

/* pg_try_advisory_xact_lock(FOLD_LOCK_CLASS, hashtext(current_schema())) */
#define FOLD_LOCK_CLASS "1836282485"

mcpr_status mcpr__pg_rollup_fold(PGconn *c, const mcpr__pg_target *t, bool keyed,
                                 int64_t *moved, mcpr_error *err) {
  *moved = 0;
  mcpr_status st = mcpr__pg_run(c, t, "BEGIN", 0, NULL, NULL, err, "updating the rollups");
  if (st != MCPR_OK)
    return st;
  PGresult *r = PQexec(c, "SELECT pg_try_advisory_xact_lock(" FOLD_LOCK_CLASS
                          ", hashtext(current_schema()))");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    st = mcpr__pg_error(c, r, t, err, "updating the rollups");
  } else if (PQgetvalue(r, 0, 0)[0] != 't') {
    *moved = -1; /* another connection is folding */
  } else {
    PQclear(r);
    r = PQexec(c, SQL_FOLD[keyed]);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
      st = mcpr__pg_error(c, r, t, err, "updating the rollups");
    else
      *moved = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  }
  PQclear(r);
  if ((st = txn_end(c, t, st, err)) != MCPR_OK)
    *moved = 0;
  return st;
}

/* Rows as arrays ($1..$9) plus the ids whose flag to set ($10). */
static const char SQL_ROLL_ROWS[] =
    "WITH x AS (SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[],"
    " $5::int8[], $6::int4[], $7::int8[], $8::int8[], $9::int4[])"
    " AS x(ts, proxy, tool, method, latency_us, e, bytes_in, bytes_out, key)),"
    " rr AS (SELECT ts, proxy, tool, method, latency_us, e <> 0 AS is_error, bytes_in,"
    " bytes_out, key FROM x),"
    " u AS (UPDATE requests SET rolled = true WHERE id = ANY($10::int8[]))" MCPR__PG_ROLLUP_CTES
    " SELECT 1";

/* Columns 0..8 of the rows the two selects below return. */
#define ROW_COLUMNS                                                                          \
  "SELECT ts, proxy, tool, method, latency_us, (status <> 'ok')::int4, bytes_in, bytes_out," \
  " id FROM requests"

mcpr_status mcpr__pg_run(PGconn *c, const mcpr__pg_target *t, const char *sql, int n,
                         const char *const *params, int64_t *changed, mcpr_error *err,
                         const char *doing) {
  PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    mcpr_status st = mcpr__pg_error(c, r, t, err, doing);
    PQclear(r);
    return st;
  }
  if (changed) {
    const char *k = PQcmdTuples(r);
    *changed = k && *k ? strtoll(k, NULL, 10) : 0;
  }
  PQclear(r);
  return MCPR_OK;
}

#define NCOLS 10

/* Add the rows of r (ROW_COLUMNS) to the rollups; flag: set their
 * rolled flag too. */
static mcpr_status roll_result(PGconn *c, const mcpr__pg_target *t, const PGresult *r,
                               bool flag, mcpr_error *err) {
  mcpr__buf cols[NCOLS] = {{0}};
  bool mem = true;
  mcpr_status st = MCPR_OK;
  for (int k = 0; k < NCOLS; k++)
    mem = mem && mcpr__pg_arr_start(&cols[k]);
  int n = PQntuples(r);
  for (int i = 0; i < n && mem; i++) {
    for (int k = 0; k < 8 && mem; k++)
      mem = mcpr__pg_arr_text(&cols[k], PQgetisnull(r, i, k) ? NULL : PQgetvalue(r, i, k));
    int64_t lat = strtoll(PQgetvalue(r, i, 4), NULL, 10);
    mem = mem && mcpr__pg_arr_int(&cols[8], mcpr__sketch_key(lat), false) &&
          (!flag || mcpr__pg_arr_text(&cols[9], PQgetvalue(r, i, 8)));
  }
  const char *params[NCOLS];
  for (int k = 0; k < NCOLS && mem; k++) {
    mem = mcpr__pg_arr_end(&cols[k]);
    params[k] = cols[k].p;
  }
  if (!mem)
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory updating the rollups");
  else if (n > 0)
    st = mcpr__pg_run(c, t, SQL_ROLL_ROWS, NCOLS, params, NULL, err, "updating the rollups");
  for (int k = 0; k < NCOLS; k++)
    mcpr__buf_release(&cols[k]);
  return st;
}

static mcpr_status select_rows(PGconn *c, const mcpr__pg_target *t, const char *sql, int n,
                               const char *const *params, PGresult **out, mcpr_error *err) {
  *out = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(*out) == PGRES_TUPLES_OK)
    return MCPR_OK;
  mcpr_status st = mcpr__pg_error(c, *out, t, err, "reading requests for the rollups");
  PQclear(*out);
  *out = NULL;
  return st;
}

mcpr_status mcpr__pg_rollup_catch_up(PGconn *c, const mcpr__pg_target *t, int64_t max_rows,
                                     int64_t *rolled, int64_t *left, mcpr_error *err) {
  char lim[24];
  snprintf(lim, sizeof lim, "%lld", (long long)max_rows);
  const char *params[1] = {lim};
  PGresult *r = NULL;
  *rolled = 0;
  mcpr_status st = mcpr__pg_run(c, t, "BEGIN", 0, NULL, NULL, err, "updating the rollups");
  if (st != MCPR_OK)
    return st;
  st = select_rows(c, t,
                   ROW_COLUMNS " WHERE NOT rolled ORDER BY id LIMIT $1::int8"
                               " FOR UPDATE SKIP LOCKED",
                   1, params, &r, err);
  if (st == MCPR_OK) {
    *rolled = PQntuples(r);
    st = roll_result(c, t, r, true, err);
    PQclear(r);
  }
  if ((st = txn_end(c, t, st, err)) != MCPR_OK) {
    *rolled = 0;
    return st;
  }
  if (!left)
    return MCPR_OK;
  st = select_rows(c, t, "SELECT count(*) FROM requests WHERE NOT rolled", 0, NULL, &r, err);
  if (st == MCPR_OK) {
    *left = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
  }
  return st;
}

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Both tables of a level lose [from, below) of proxy (NULL: all). */
static mcpr_status forget(PGconn *c, const mcpr__pg_target *t, bool day, int64_t from,
                          int64_t below, const char *proxy, mcpr_error *err) {
  static const char *const SQL[2][4] = {
      /* Pending groups of those hours count in both levels: they go
       * with the hours (a day is rebuilt from the hours left). Pending
       * rows first, as a fold locks them: rollup.h. */
      {"DELETE FROM mcpr_rollup_pending WHERE hour >= $1::int8 AND hour < $2::int8"
       " AND ($3::text IS NULL OR proxy = $3::text)",
       "DELETE FROM mcpr_rollup_pending_sketch WHERE hour >= $1::int8 AND hour < $2::int8"
       " AND ($3::text IS NULL OR proxy = $3::text)",
       "DELETE FROM mcpr_rollup_hour WHERE hour >= $1::int8 AND hour < $2::int8"
       " AND ($3::text IS NULL OR proxy = $3::text)",
       "DELETE FROM mcpr_rollup_hour_sketch WHERE hour >= $1::int8 AND hour < $2::int8"
       " AND ($3::text IS NULL OR proxy = $3::text)"},
      {"DELETE FROM mcpr_rollup_day WHERE day >= $1::int8 AND day < $2::int8"
       " AND ($3::text IS NULL OR proxy = $3::text)",
       "DELETE FROM mcpr_rollup_day_sketch WHERE day >= $1::int8 AND day < $2::int8"
       " AND ($3::text IS NULL OR proxy = $3::text)",
       NULL, NULL}};
  char a[24], b[24];
  snprintf(a, sizeof a, "%lld", (long long)from);
  snprintf(b, sizeof b, "%lld", (long long)below);
  const char *params[3] = {a, b, proxy};
  mcpr_status st = MCPR_OK;
  for (int i = 0; i < 4 && SQL[day][i] && st == MCPR_OK; i++)
    st = mcpr__pg_run(c, t, SQL[day][i], 3, params, NULL, err, "updating the rollups");
  return st;
}

/* The day (of proxy; NULL: all), gone already, summed again from its hours. */
static mcpr_status day_from_hours(PGconn *c, const mcpr__pg_target *t, int64_t day,
                                  const char *proxy, mcpr_error *err) {
  char d[24];
  snprintf(d, sizeof d, "%lld", (long long)day);
  const char *params[2] = {d, proxy};
  mcpr_status st = mcpr__pg_run(
      c, t,
      "INSERT INTO mcpr_rollup_day SELECT $1::int8, proxy, is_tool, name, sum(calls)::int8,"
      " sum(errors)::int8, " MCPR__PG_SAT("sum(sum_us)") ", min(min_us), max(max_us), "
      MCPR__PG_SAT("sum(bytes_in)") ", " MCPR__PG_SAT("sum(bytes_out)") ", max(last_ts)"
      " FROM mcpr_rollup_hour"
      " WHERE hour >= $1::int8 * 24 AND hour < $1::int8 * 24 + 24"
      " AND ($2::text IS NULL OR proxy = $2::text) GROUP BY proxy, is_tool, name",
      2, params, NULL, err, "updating the rollups");
  if (st == MCPR_OK)
    st = mcpr__pg_run(
        c, t,
        "INSERT INTO mcpr_rollup_day_sketch SELECT $1::int8, proxy, is_tool, name, key,"
        " sum(n)::int8 FROM mcpr_rollup_hour_sketch"
        " WHERE hour >= $1::int8 * 24 AND hour < $1::int8 * 24 + 24"
        " AND ($2::text IS NULL OR proxy = $2::text) GROUP BY proxy, is_tool, name, key",
        2, params, NULL, err, "updating the rollups");
  return st;
}

mcpr_status mcpr__pg_rollup_forget_before(PGconn *c, const mcpr__pg_target *t, int64_t cutoff_ms,
                                          const char *proxy, mcpr_error *err) {
  int64_t hb = floor_div(cutoff_ms, MCPR__PG_ROLLUP_HOUR_MS);
  mcpr_status st = forget(c, t, false, INT64_MIN, hb, proxy, err);
  if (st == MCPR_OK && cutoff_ms != hb * MCPR__PG_ROLLUP_HOUR_MS) {
    /* The hour the cutoff cuts: counted again from what is left of it. */
    st = forget(c, t, false, hb, hb + 1, proxy, err);
    char lo[24], hi[24];
    snprintf(lo, sizeof lo, "%lld", (long long)(hb * MCPR__PG_ROLLUP_HOUR_MS));
    snprintf(hi, sizeof hi, "%lld", (long long)((hb + 1) * MCPR__PG_ROLLUP_HOUR_MS));
    const char *params[3] = {lo, hi, proxy};
    PGresult *r = NULL;
    if (st == MCPR_OK)
      st = select_rows(c, t,
                       ROW_COLUMNS " WHERE ts >= $1::int8 AND ts < $2::int8 AND rolled"
                                   " AND ($3::text IS NULL OR proxy = $3::text)",
                       3, params, &r, err);
    if (st == MCPR_OK) {
      st = roll_result(c, t, r, false, err);
      PQclear(r);
    }
  }
  if (st != MCPR_OK)
    return st;
  int64_t day = floor_div(hb, 24);
  st = forget(c, t, true, INT64_MIN, day, proxy, err);
  if (st != MCPR_OK || cutoff_ms == day * 24 * MCPR__PG_ROLLUP_HOUR_MS)
    return st;
  st = forget(c, t, true, day, day + 1, proxy, err);
  return st == MCPR_OK ? day_from_hours(c, t, day, proxy, err) : st;
}

mcpr_status mcpr__pg_rollup_days_follow(PGconn *c, const mcpr__pg_target *t, int64_t hour,
                                        mcpr_error *err) {
  int64_t day = floor_div(hour, 24);
  bool cut = hour != day * 24;
  mcpr_status st = forget(c, t, true, INT64_MIN, cut ? day + 1 : day, NULL, err);
  if (st != MCPR_OK || !cut)
    return st;
  return day_from_hours(c, t, day, NULL, err);
}

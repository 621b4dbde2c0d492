/*
 * retention.c — retention in bounded steps on PostgreSQL (see
 * retention.h). Each step is one transaction: its deletes and the
 * counters of what they deleted commit together, and the round's position
 * (phase, walk cursor) only moves once the step has committed, so a
 * failed step is simply done again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres/retention.h"
#include "backend/postgres/rollup.h"

/* The SQLite store's bounds (backend/sqlite/retention.c): rows deleted per
 * step (phases 1 and 3), rows looked at per step (phase 2), hours of
 * rollups per step (phase 4), and how far either side of its life a
 * session is looked for requests. */
#define RETENTION_CHUNK 2000
#define RETENTION_SCAN 5000
#define RETENTION_ROLLUP_HOURS 24
#define SESSION_SLACK_MS 3600000

/* pg_try_advisory_xact_lock(RETENTION_LOCK_CLASS, hashtext(current_schema())). */
#define RETENTION_LOCK_CLASS "1836282484"

typedef enum phase {
  PHASE_IDLE = 0,
  PHASE_OLD,
  PHASE_OK,
  PHASE_SESSIONS,
  PHASE_ROLLUPS,
} phase;

struct mcpr__pg_retention {
  int64_t retention_ms, keep_errors_ms, rollup_retention_ms;
  phase phase;
  int64_t cutoff_ms, err_cutoff_ms, last_round_cutoff_ms;
  int64_t walk_ts, walk_id;
};

typedef struct step_result {
  int64_t requests, sessions, rollups;
  bool phase_over;
  int64_t walk_ts, walk_id;
} step_result;

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_hour_ms(int64_t ms) {
  return floor_div(ms, MCPR__PG_ROLLUP_HOUR_MS) * MCPR__PG_ROLLUP_HOUR_MS;
}

mcpr__pg_retention *mcpr__pg_retention_new(int64_t retention_ms, int64_t keep_errors_ms,
                                           int64_t rollup_retention_ms) {
  mcpr__pg_retention *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->retention_ms = retention_ms;
  r->keep_errors_ms = keep_errors_ms > retention_ms ? keep_errors_ms : retention_ms;
  r->rollup_retention_ms = rollup_retention_ms;
  r->last_round_cutoff_ms = INT64_MIN;
  return r;
}

void mcpr__pg_retention_free(mcpr__pg_retention *r) { free(r); }

typedef struct ints {
  char v[4][24];
  const char *p[4];
} ints;

static const char *const *ints_of(ints *k, int n, const int64_t *v) {
  for (int i = 0; i < n; i++) {
    snprintf(k->v[i], sizeof k->v[i], "%lld", (long long)v[i]);
    k->p[i] = k->v[i];
  }
  return k->p;
}

/* Run sql with integer parameters; *out (may be NULL) receives the
 * first row's columns (NULL columns: INT64_MIN), up to nout. */
static mcpr_status query_ints(PGconn *c, const mcpr__pg_target *t, const char *sql, int n,
                              const int64_t *params, int64_t *out, int nout, int64_t *changed,
                              mcpr_error *err) {
  ints k;
  PGresult *r = PQexecParams(c, sql, n, NULL, ints_of(&k, n, params), NULL, NULL, 0);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
    mcpr_status st = mcpr__pg_error(c, r, t, err, "deleting rows past the store's retention");
    PQclear(r);
    return st;
  }
  for (int i = 0; i < nout && PQntuples(r) > 0 && i < PQnfields(r); i++)
    out[i] = PQgetisnull(r, 0, i) ? INT64_MIN : strtoll(PQgetvalue(r, 0, i), NULL, 10);
  if (changed) {
    const char *ct = PQcmdTuples(r);
    *changed = ct && *ct ? strtoll(ct, NULL, 10) : 0;
  }
  PQclear(r);
  return MCPR_OK;
}

static mcpr_status step_old(mcpr__pg_retention *r, PGconn *c, const mcpr__pg_target *t,
                            step_result *out, mcpr_error *err) {
  int64_t p[2] = {r->err_cutoff_ms, RETENTION_CHUNK};
  mcpr_status st = query_ints(c, t,
                              "DELETE FROM requests WHERE id IN (SELECT id FROM requests"
                              " WHERE ts < $1::int8 AND rolled LIMIT $2::int8)",
                              2, p, NULL, 0, &out->requests, err);
  out->phase_over = out->requests < RETENTION_CHUNK;
  return st;
}

static mcpr_status step_ok(mcpr__pg_retention *r, PGconn *c, const mcpr__pg_target *t,
                           step_result *out, mcpr_error *err) {
  int64_t p[4] = {r->walk_ts, r->walk_id, r->cutoff_ms, RETENTION_SCAN};
  int64_t got[4] = {0, 0, INT64_MIN, INT64_MIN};
  /* Rows the rollups do not count yet (rolled false) are left for the
   * next round. */
  mcpr_status st = query_ints(
      c, t,
      "WITH w AS (SELECT id, ts, status, rolled FROM requests WHERE ts >= $1::int8"
      " AND (ts, id) > ($1::int8, $2::int8) AND ts < $3::int8 ORDER BY ts, id LIMIT $4::int8),"
      " d AS (DELETE FROM requests q USING w WHERE q.id = w.id AND w.status = 'ok'"
      " AND w.rolled RETURNING 1),"
      " last AS (SELECT ts, id FROM w ORDER BY ts DESC, id DESC LIMIT 1)"
      " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM w), (SELECT ts FROM last),"
      " (SELECT id FROM last)",
      4, p, got, 4, NULL, err);
  if (st != MCPR_OK)
    return st;
  out->requests = got[0];
  out->walk_ts = got[2] == INT64_MIN ? r->walk_ts : got[2];
  out->walk_id = got[3] == INT64_MIN ? r->walk_id : got[3];
  out->phase_over = got[1] < RETENTION_SCAN;
  return MCPR_OK;
}

static mcpr_status step_sessions(mcpr__pg_retention *r, PGconn *c, const mcpr__pg_target *t,
                                 step_result *out, mcpr_error *err) {
  int64_t p[3] = {r->cutoff_ms, RETENTION_CHUNK, SESSION_SLACK_MS};
  mcpr_status st = query_ints(
      c, t,
      "DELETE FROM sessions WHERE session_id IN (SELECT s.session_id FROM sessions s"
      " WHERE s.ended_at < $1::int8 AND GREATEST(s.ended_at, s.last_seen_at) < $1::int8 - $3::int8"
      " AND NOT EXISTS (SELECT 1 FROM requests q WHERE q.proxy = s.proxy"
      " AND q.ts >= s.started_at - $3::int8"
      " AND q.ts <= GREATEST(s.ended_at, s.last_seen_at) + $3::int8"
      " AND q.session_id = s.session_id) LIMIT $2::int8)",
      3, p, NULL, 0, &out->sessions, err);
  out->phase_over = out->sessions < RETENTION_CHUNK;
  return st;
}

/* A day of rollup hours per step, oldest first, with the rows they count
 * that are still there (normally none: keep_errors is shorter). */
static mcpr_status step_rollups(mcpr__pg_retention *r, PGconn *c, const mcpr__pg_target *t,
                                int64_t now_ms, step_result *out, mcpr_error *err) {
  int64_t oldest = INT64_MIN;
  mcpr_status st =
      query_ints(c, t, "SELECT min(hour) FROM mcpr_rollup_hour", 0, NULL, &oldest, 1, NULL, err);
  if (st != MCPR_OK)
    return st;
  int64_t cut = floor_div(now_ms - r->rollup_retention_ms, MCPR__PG_ROLLUP_HOUR_MS);
  if (oldest == INT64_MIN || oldest >= cut) {
    out->phase_over = true;
    return MCPR_OK;
  }
  int64_t below = oldest + RETENTION_ROLLUP_HOURS < cut ? oldest + RETENTION_ROLLUP_HOURS : cut;
  int64_t p[1] = {below};
  int64_t ignored = 0;
  st = query_ints(c, t,
                  "DELETE FROM requests WHERE ts < $1::int8 * 3600000 AND rolled", 1, p, NULL,
                  0, &out->requests, err);
  /* Pending rows first, as a fold locks them (rollup.h). */
  if (st == MCPR_OK)
    st = query_ints(c, t, "DELETE FROM mcpr_rollup_pending WHERE hour < $1::int8", 1, p, NULL,
                    0, &ignored, err);
  if (st == MCPR_OK)
    st = query_ints(c, t, "DELETE FROM mcpr_rollup_pending_sketch WHERE hour < $1::int8", 1, p,
                    NULL, 0, &ignored, err);
  if (st == MCPR_OK)
    st = query_ints(c, t, "DELETE FROM mcpr_rollup_hour WHERE hour < $1::int8", 1, p, NULL, 0,
                    &out->rollups, err);
  if (st == MCPR_OK)
    st = query_ints(c, t, "DELETE FROM mcpr_rollup_hour_sketch WHERE hour < $1::int8", 1, p,
                    NULL, 0, &ignored, err);
  if (st == MCPR_OK)
    st = mcpr__pg_rollup_days_follow(c, t, below, err);
  out->phase_over = below == cut;
  return st;
}

static phase next_phase(const mcpr__pg_retention *r, phase p) {
  switch (p) {
  case PHASE_OLD:
    return r->err_cutoff_ms < r->cutoff_ms ? PHASE_OK : PHASE_SESSIONS;
  case PHASE_OK:
    return PHASE_SESSIONS;
  case PHASE_SESSIONS:
    return r->rollup_retention_ms > 0 ? PHASE_ROLLUPS : PHASE_IDLE;
  default:
    return PHASE_IDLE;
  }
}

static mcpr_status count_add(PGconn *c, const mcpr__pg_target *t, const char *key, int64_t v,
                             bool set, mcpr_error *err) {
  char num[24];
  snprintf(num, sizeof num, "%lld", (long long)v);
  const char *params[2] = {key, num};
  return mcpr__pg_run(c, t,
                      set ? "INSERT INTO mcpr_retention_state (key, value) VALUES ($1, $2::int8)"
                            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                          : "INSERT INTO mcpr_retention_state AS o (key, value)"
                            " VALUES ($1, $2::int8)"
                            " ON CONFLICT (key) DO UPDATE SET value = o.value + excluded.value",
                      2, params, NULL, err, "counting what retention deleted");
}

static mcpr_status step_body(mcpr__pg_retention *r, PGconn *c, const mcpr__pg_target *t,
                             int64_t now_ms, step_result *out, mcpr_error *err) {
  mcpr_status st;
  switch (r->phase) {
  case PHASE_OLD:
    st = step_old(r, c, t, out, err);
    break;
  case PHASE_OK:
    st = step_ok(r, c, t, out, err);
    break;
  case PHASE_SESSIONS:
    st = step_sessions(r, c, t, out, err);
    break;
  case PHASE_ROLLUPS:
    st = step_rollups(r, c, t, now_ms, out, err);
    break;
  default:
    return mcpr_error_set(err, MCPR_EINVAL, "internal: retention step without a round");
  }
  if (st == MCPR_OK && out->requests)
    st = count_add(c, t, "requests_deleted", out->requests, false, err);
  if (st == MCPR_OK && out->sessions)
    st = count_add(c, t, "sessions_deleted", out->sessions, false, err);
  if (st == MCPR_OK && out->rollups)
    st = count_add(c, t, "rollups_deleted", out->rollups, false, err);
  bool round_over = out->phase_over && next_phase(r, r->phase) == PHASE_IDLE;
  if (st == MCPR_OK && (out->requests || out->sessions || out->rollups || round_over))
    st = count_add(c, t, "last_run_ms", now_ms, true, err);
  return st;
}

/* Whether this connection got the store's retention lock (for the
 * transaction under way). */
static mcpr_status take_lock(PGconn *c, const mcpr__pg_target *t, bool *got, mcpr_error *err) {
  PGresult *r = PQexec(c, "SELECT pg_try_advisory_xact_lock(" RETENTION_LOCK_CLASS
                          ", hashtext(current_schema()))");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    mcpr_status st = mcpr__pg_error(c, r, t, err, "taking the retention lock");
    PQclear(r);
    return st;
  }
  *got = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  return MCPR_OK;
}

mcpr_status mcpr__pg_retention_step(mcpr__pg_retention *r, PGconn *c, const mcpr__pg_target *t,
                                    int64_t now_ms, bool *more, mcpr_error *err) {
  *more = false;
  if (r->phase == PHASE_IDLE) {
    int64_t cutoff = floor_hour_ms(now_ms - r->retention_ms);
    if (cutoff == r->last_round_cutoff_ms)
      return MCPR_OK; /* this hour's round is done */
    r->cutoff_ms = cutoff;
    r->err_cutoff_ms = floor_hour_ms(now_ms - r->keep_errors_ms);
    r->walk_ts = r->err_cutoff_ms;
    r->walk_id = INT64_MIN;
    r->phase = PHASE_OLD;
  }
  mcpr_status st = MCPR_OK;
  if (r->phase == PHASE_OLD) {
    /* Rows no writer counted (another program's) are counted first, so
     * they can go like the others. */
    int64_t rolled = 0;
    st = mcpr__pg_rollup_catch_up(c, t, RETENTION_CHUNK, &rolled, NULL, err);
    if (st != MCPR_OK)
      return st;
  }
  step_result res = {0};
  bool got = false;
  st = mcpr__pg_run(c, t, "BEGIN", 0, NULL, NULL, err, "starting a retention step");
  if (st == MCPR_OK)
    st = take_lock(c, t, &got, err);
  if (st == MCPR_OK && !got) {
    /* Another writer is at it: this round waits for the next look. */
    mcpr__pg_exec(c, "ROLLBACK");
    return MCPR_OK;
  }
  if (st == MCPR_OK)
    st = step_body(r, c, t, now_ms, &res, err);
  if (st == MCPR_OK)
    st = mcpr__pg_run(c, t, "COMMIT", 0, NULL, NULL, err, "committing a retention step");
  if (st != MCPR_OK) {
    if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE)
      mcpr__pg_exec(c, "ROLLBACK");
    return st;
  }
  if (r->phase == PHASE_OK) {
    r->walk_ts = res.walk_ts;
    r->walk_id = res.walk_id;
  }
  if (res.phase_over) {
    r->phase = next_phase(r, r->phase);
    if (r->phase == PHASE_IDLE)
      r->last_round_cutoff_ms = r->cutoff_ms;
  }
  *more = r->phase != PHASE_IDLE;
  return MCPR_OK;
}

mcpr_status mcpr__pg_retention_read(PGconn *c, const mcpr__pg_target *t, mcpr_store_info *out,
                                    mcpr_error *err) {
  out->retention_requests_deleted = 0;
  out->retention_sessions_deleted = 0;
  out->retention_rollups_deleted = 0;
  out->retention_last_run_ms = 0;
  PGresult *r = PQexec(c, "SELECT to_regclass('mcpr_retention_state') IS NOT NULL");
  bool have = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (!have)
    return MCPR_OK; /* a store no writer of this version opened yet */
  r = PQexec(c, "SELECT key, value FROM mcpr_retention_state");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    mcpr_status st = mcpr__pg_error(c, r, t, err, "reading the retention counters");
    PQclear(r);
    return st;
  }
  for (int i = 0; i < PQntuples(r); i++) {
    const char *k = PQgetvalue(r, i, 0);
    int64_t v = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    if (strcmp(k, "requests_deleted") == 0)
      out->retention_requests_deleted = v;
    else if (strcmp(k, "sessions_deleted") == 0)
      out->retention_sessions_deleted = v;
    else if (strcmp(k, "rollups_deleted") == 0)
      out->retention_rollups_deleted = v;
    else if (strcmp(k, "last_run_ms") == 0)
      out->retention_last_run_ms = v;
  }
  PQclear(r);
  return MCPR_OK;
}

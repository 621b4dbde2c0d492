/*
 * retention.c — retention in bounded steps (see retention.h for the
 * design). Each step is one transaction: its deletes and the counters of
 * what they deleted commit together or not at all, and the round's
 * position (phase, walk cursor) only moves once the step has committed,
 * so a failed or killed step is simply done again.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/sqlite/retention.h"
#include "backend/sqlite/rollup.h"

const char MCPR__RETENTION_DDL[] =
    "CREATE TABLE IF NOT EXISTS mcpr_retention_state ("
    " key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    /* sum(calls) without reading the sketches: a few pages. */
    "CREATE INDEX IF NOT EXISTS mcpr_rollup_hour_calls ON mcpr_rollup_hour(calls);";

/* Rows deleted per step (phases 1 and 3), rows looked at per step of the
 * walk (phase 2), hours of rollups per step (phase 4). */
#define RETENTION_CHUNK 2000
#define RETENTION_SCAN 5000
#define RETENTION_ROLLUP_HOURS 24
/* Rows above the watermark beyond which requests wait for the rollups. */
#define RETENTION_LAG_MAX 20000
/* A session is looked for requests this far either side of its life. */
#define SESSION_SLACK_MS 3600000

enum {
  S_BEGIN,
  S_COMMIT,
  S_ROLLBACK,
  S_WATERMARK,
  S_MAX_ID,
  S_DEL_OLD,
  S_WALK,
  S_DEL_ID,
  S_DEL_SESSIONS,
  S_DEL_ROLLUPS,
  S_DEL_ROLLED_RAW,
  S_SUM_ROLLUPS,
  S_COUNT_ADD,
  S_SET,
  S_COUNT
};

static const char *const SQL[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_WATERMARK] = "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'",
    [S_MAX_ID] = "SELECT coalesce(max(id), 0) FROM requests",
    [S_DEL_OLD] = "DELETE FROM requests WHERE id IN (SELECT id FROM requests"
                  " WHERE ts < ?1 AND id <= ?2 LIMIT ?3)",
    [S_WALK] = "SELECT id, ts, status = 'ok' FROM requests"
               " WHERE (ts, id) > (?1, ?2) AND ts < ?3 ORDER BY ts, id LIMIT ?4",
    [S_DEL_ID] = "DELETE FROM requests WHERE id = ?1",
    [S_DEL_SESSIONS] =
        "DELETE FROM sessions WHERE session_id IN (SELECT s.session_id FROM sessions s"
        " WHERE s.ended_at < ?1 AND max(s.ended_at, s.last_seen_at) < ?1 - ?3"
        " AND NOT EXISTS (SELECT 1 FROM requests q WHERE q.proxy = s.proxy"
        " AND q.ts >= s.started_at - ?3 AND q.ts <= max(s.ended_at, s.last_seen_at) + ?3"
        " AND q.session_id = s.session_id) LIMIT ?2)",
    [S_DEL_ROLLUPS] = "DELETE FROM mcpr_rollup_hour WHERE hour < ?1",
    /* The hours phase 4 deletes: the rollups' rows before ?1, and the
     * raw rows they count that are still there. */
    [S_DEL_ROLLED_RAW] = "DELETE FROM requests WHERE ts < ?1 * 3600000 AND id <= ?2",
    [S_SUM_ROLLUPS] = "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_hour WHERE hour < ?1",
    [S_COUNT_ADD] = "INSERT INTO mcpr_retention_state (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
    [S_SET] = "INSERT INTO mcpr_retention_state (key, value) VALUES (?1, ?2)"
              " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
};

typedef enum phase {
  PHASE_IDLE = 0, /* no round under way */
  PHASE_OLD,      /* 1: everything before the errors' cutoff */
  PHASE_OK,       /* 2: ok requests between the two cutoffs */
  PHASE_SESSIONS, /* 3 */
  PHASE_ROLLUPS,  /* 4 */
} phase;

struct mcpr__retention {
  sqlite3 *db;
  sqlite3_stmt *st[S_COUNT]; /* prepared when first used */
  int64_t retention_ms, keep_errors_ms, rollup_retention_ms;
  /* The round under way. */
  phase phase;
  int64_t cutoff_ms;     /* requests (ok) before this go */
  int64_t err_cutoff_ms; /* every request before this goes */
  int64_t last_round_cutoff_ms; /* the cutoff of the last round finished */
  int64_t walk_ts, walk_id;     /* phase 2's position */
  int64_t *ids;                 /* phase 2's ids to delete, RETENTION_SCAN */
  mcpr__rollup *rollup;         /* phase 4's day fix-up; made when first used */
};

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_hour_ms(int64_t ms) {
  return floor_div(ms, MCPR__ROLLUP_HOUR_MS) * MCPR__ROLLUP_HOUR_MS;
}

mcpr__retention *mcpr__retention_new(sqlite3 *db, int64_t retention_ms, int64_t keep_errors_ms,
                                     int64_t rollup_retention_ms) {
  mcpr__retention *r = calloc(1, sizeof *r);
  if (!r)
    return NULL;
  r->ids = malloc(RETENTION_SCAN * sizeof *r->ids);
  if (!r->ids) {
    free(r);
    return NULL;
  }
  r->db = db;
  r->retention_ms = retention_ms;
  r->keep_errors_ms = keep_errors_ms > retention_ms ? keep_errors_ms : retention_ms;
  r->rollup_retention_ms = rollup_retention_ms;
  r->last_round_cutoff_ms = INT64_MIN;
  return r;
}

void mcpr__retention_free(mcpr__retention *r) {
  if (!r)
    return;
  for (int i = 0; i < S_COUNT; i++)
    sqlite3_finalize(r->st[i]);
  mcpr__rollup_free(r->rollup);
  free(r->ids);
  free(r);
}

static sqlite3_stmt *stmt(mcpr__retention *r, int i, int *rc) {
  if (!r->st[i]) {
    *rc = sqlite3_prepare_v3(r->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &r->st[i], NULL);
    if (*rc != SQLITE_OK)
      return NULL;
  }
  return r->st[i];
}

/* Run a statement that returns no row (or ignore its rows). SQLITE_DONE
 * or an error. */
static int run(mcpr__retention *r, int i) {
  int rc = SQLITE_OK;
  sqlite3_stmt *st = stmt(r, i, &rc);
  if (!st)
    return rc;
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static int one_int(mcpr__retention *r, int i, int64_t *out) {
  int rc = SQLITE_OK;
  sqlite3_stmt *st = stmt(r, i, &rc);
  if (!st)
    return rc;
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st, 0);
    rc = SQLITE_DONE;
  } else if (rc == SQLITE_DONE) {
    rc = SQLITE_CORRUPT; /* the watermark row is created with its table */
  }
  sqlite3_reset(st);
  return rc;
}

static int put(mcpr__retention *r, int i, const char *key, int64_t value) {
  int rc = SQLITE_OK;
  sqlite3_stmt *st = stmt(r, i, &rc);
  if (!st)
    return rc;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, value);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc;
}

/* Delete with a bound statement; *n rows deleted. */
static int delete_n(mcpr__retention *r, sqlite3_stmt *st, int64_t *n) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_DONE)
    *n += sqlite3_changes64(r->db);
  return rc;
}

typedef struct step_result {
  int64_t requests, sessions, rollups; /* deleted */
  bool phase_over;
  bool lagging; /* the rollups are far behind: the round stops, to be redone */
  int64_t gap_delta; /* to rolled_gap, beside the requests deleted */
  int64_t walk_ts, walk_id; /* phase 2's next position */
} step_result;

/* Whether the rollups count all but a few of the rows: requests are only
 * deleted once rolled up. *w: the watermark. */
static int rollups_current(mcpr__retention *r, int64_t *w, bool *current) {
  int64_t top = 0;
  int rc = one_int(r, S_WATERMARK, w);
  if (rc == SQLITE_DONE)
    rc = one_int(r, S_MAX_ID, &top);
  *current = rc == SQLITE_DONE && top - *w <= RETENTION_LAG_MAX;
  return rc;
}

static int step_old(mcpr__retention *r, int64_t w, step_result *out) {
  int rc = SQLITE_OK;
  sqlite3_stmt *st = stmt(r, S_DEL_OLD, &rc);
  if (!st)
    return rc;
  sqlite3_bind_int64(st, 1, r->err_cutoff_ms);
  sqlite3_bind_int64(st, 2, w);
  sqlite3_bind_int64(st, 3, RETENTION_CHUNK);
  rc = delete_n(r, st, &out->requests);
  out->phase_over = out->requests < RETENTION_CHUNK;
  return rc;
}

static int step_ok(mcpr__retention *r, int64_t w, step_result *out) {
  int rc = SQLITE_OK;
  sqlite3_stmt *walk = stmt(r, S_WALK, &rc);
  sqlite3_stmt *del = walk ? stmt(r, S_DEL_ID, &rc) : NULL;
  if (!del)
    return rc;
  sqlite3_bind_int64(walk, 1, r->walk_ts);
  sqlite3_bind_int64(walk, 2, r->walk_id);
  sqlite3_bind_int64(walk, 3, r->cutoff_ms);
  sqlite3_bind_int64(walk, 4, RETENTION_SCAN);
  size_t seen = 0, n = 0;
  out->walk_ts = r->walk_ts;
  out->walk_id = r->walk_id;
  while ((rc = sqlite3_step(walk)) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(walk, 0);
    out->walk_ts = sqlite3_column_int64(walk, 1);
    out->walk_id = id;
    seen++;
    /* Above the watermark: not counted by the rollups yet; left for the
     * next round. */
    if (sqlite3_column_int(walk, 2) && id <= w)
      r->ids[n++] = id;
  }
  sqlite3_reset(walk);
  if (rc != SQLITE_DONE)
    return rc;
  for (size_t i = 0; i < n && rc == SQLITE_DONE; i++) {
    sqlite3_bind_int64(del, 1, r->ids[i]);
    rc = delete_n(r, del, &out->requests);
  }
  out->phase_over = seen < RETENTION_SCAN;
  return rc;
}

static int step_sessions(mcpr__retention *r, step_result *out) {
  int rc = SQLITE_OK;
  sqlite3_stmt *st = stmt(r, S_DEL_SESSIONS, &rc);
  if (!st)
    return rc;
  sqlite3_bind_int64(st, 1, r->cutoff_ms);
  sqlite3_bind_int64(st, 2, RETENTION_CHUNK);
  sqlite3_bind_int64(st, 3, SESSION_SLACK_MS);
  rc = delete_n(r, st, &out->sessions);
  out->phase_over = out->sessions < RETENTION_CHUNK;
  return rc;
}

/* A day of rollup hours per step, oldest first. The raw rows of those
 * hours that are rolled up go with them (normally none: keep_errors is
 * shorter), so the gap (rolled_gap) loses exactly the calls whose rows
 * are gone. */
static int step_rollups(mcpr__retention *r, int64_t now_ms, step_result *out) {
  int rc = SQLITE_OK;
  int64_t oldest = 0, w = 0, calls = 0;
  sqlite3_stmt *del = stmt(r, S_DEL_ROLLUPS, &rc);
  sqlite3_stmt *raw = del ? stmt(r, S_DEL_ROLLED_RAW, &rc) : NULL;
  sqlite3_stmt *sum = raw ? stmt(r, S_SUM_ROLLUPS, &rc) : NULL;
  if (!sum)
    return rc;
  sqlite3_stmt *min = NULL;
  rc = sqlite3_prepare_v2(r->db, "SELECT min(hour) FROM mcpr_rollup_hour", -1, &min, NULL);
  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(min);
  bool none = rc != SQLITE_ROW || sqlite3_column_type(min, 0) == SQLITE_NULL;
  if (rc == SQLITE_ROW)
    oldest = sqlite3_column_int64(min, 0);
  sqlite3_finalize(min);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return rc;
  int64_t cut = floor_div(now_ms - r->rollup_retention_ms, MCPR__ROLLUP_HOUR_MS);
  if (none || oldest >= cut) {
    out->phase_over = true;
    return SQLITE_DONE;
  }
  int64_t below = oldest + RETENTION_ROLLUP_HOURS < cut ? oldest + RETENTION_ROLLUP_HOURS : cut;
  rc = one_int(r, S_WATERMARK, &w);
  if (rc != SQLITE_DONE)
    return rc;
  sqlite3_bind_int64(raw, 1, below);
  sqlite3_bind_int64(raw, 2, w);
  rc = delete_n(r, raw, &out->requests);
  if (rc != SQLITE_DONE)
    return rc;
  sqlite3_bind_int64(sum, 1, below);
  rc = sqlite3_step(sum);
  if (rc == SQLITE_ROW) {
    calls = sqlite3_column_int64(sum, 0);
    rc = SQLITE_DONE;
  }
  sqlite3_reset(sum);
  if (rc != SQLITE_DONE)
    return rc;
  sqlite3_bind_int64(del, 1, below);
  rc = delete_n(r, del, &out->rollups);
  /* The days follow the hours (counted above, so already gone): those
   * wholly before below go, the one it cuts is summed again. */
  int prc = SQLITE_OK;
  if (rc == SQLITE_DONE && !r->rollup && !(r->rollup = mcpr__rollup_new(r->db, &prc)))
    return prc;
  if (rc == SQLITE_DONE)
    rc = mcpr__rollup_forget_before(r->rollup, below * MCPR__ROLLUP_HOUR_MS, NULL);
  out->gap_delta -= calls;
  out->phase_over = below == cut;
  return rc;
}

static phase next_phase(const mcpr__retention *r, phase p) {
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

/* The step's work and counters, inside its transaction. */
static int step_body(mcpr__retention *r, int64_t now_ms, step_result *out) {
  int rc = SQLITE_DONE;
  int64_t w = 0;
  bool current = false;
  switch (r->phase) {
  case PHASE_OLD:
  case PHASE_OK:
    rc = rollups_current(r, &w, &current);
    if (rc != SQLITE_DONE)
      return rc;
    if (!current) {
      /* The rollups are far behind (a big store being caught up): the
       * requests wait for them. The round stops here, to be done again. */
      out->lagging = true;
      return SQLITE_DONE;
    }
    rc = r->phase == PHASE_OLD ? step_old(r, w, out) : step_ok(r, w, out);
    break;
  case PHASE_SESSIONS:
    rc = step_sessions(r, out);
    break;
  case PHASE_ROLLUPS:
    rc = step_rollups(r, now_ms, out);
    break;
  default:
    return SQLITE_MISUSE;
  }
  if (rc == SQLITE_DONE && out->requests)
    rc = put(r, S_COUNT_ADD, "requests_deleted", out->requests);
  /* Every request deleted here was counted by the rollups, which keep
   * counting it. */
  if (rc == SQLITE_DONE && (out->requests || out->gap_delta))
    rc = put(r, S_COUNT_ADD, "rolled_gap", out->requests + out->gap_delta);
  if (rc == SQLITE_DONE && out->sessions)
    rc = put(r, S_COUNT_ADD, "sessions_deleted", out->sessions);
  if (rc == SQLITE_DONE && out->rollups)
    rc = put(r, S_COUNT_ADD, "rollups_deleted", out->rollups);
  bool round_over = out->phase_over && next_phase(r, r->phase) == PHASE_IDLE;
  if (rc == SQLITE_DONE && (out->requests || out->sessions || out->rollups || round_over))
    rc = put(r, S_SET, "last_run_ms", now_ms);
  return rc;
}

int mcpr__retention_step(mcpr__retention *r, int64_t now_ms, bool *more) {
  *more = false;
  if (r->phase == PHASE_IDLE) {
    int64_t cutoff = floor_hour_ms(now_ms - r->retention_ms);
    if (cutoff == r->last_round_cutoff_ms)
      return SQLITE_OK; /* this hour's round is done */
    r->cutoff_ms = cutoff;
    r->err_cutoff_ms = floor_hour_ms(now_ms - r->keep_errors_ms);
    r->walk_ts = r->err_cutoff_ms;
    r->walk_id = INT64_MIN;
    r->phase = PHASE_OLD;
  }
  step_result res = {0};
  int rc = run(r, S_BEGIN);
  if (rc != SQLITE_DONE)
    return rc;
  rc = step_body(r, now_ms, &res);
  if (rc == SQLITE_DONE)
    rc = run(r, S_COMMIT);
  if (rc != SQLITE_DONE) {
    if (!sqlite3_get_autocommit(r->db))
      run(r, S_ROLLBACK);
    return rc;
  }
  if (res.lagging) {
    r->phase = PHASE_IDLE; /* last_round_cutoff_ms unchanged: redone at the next look */
    return SQLITE_OK;
  }
  /* Committed: the round moves on. */
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
  return SQLITE_OK;
}

void mcpr__retention_read(sqlite3 *db, mcpr_store_info *out) {
  out->retention_requests_deleted = 0;
  out->retention_sessions_deleted = 0;
  out->retention_rollups_deleted = 0;
  out->retention_last_run_ms = 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT key, value FROM mcpr_retention_state", -1, &st, NULL) !=
      SQLITE_OK) {
    sqlite3_finalize(st);
    return;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *k = (const char *)sqlite3_column_text(st, 0);
    int64_t v = sqlite3_column_int64(st, 1);
    if (!k)
      continue;
    if (strcmp(k, "requests_deleted") == 0)
      out->retention_requests_deleted = v;
    else if (strcmp(k, "sessions_deleted") == 0)
      out->retention_sessions_deleted = v;
    else if (strcmp(k, "rollups_deleted") == 0)
      out->retention_rollups_deleted = v;
    else if (strcmp(k, "last_run_ms") == 0)
      out->retention_last_run_ms = v;
  }
  sqlite3_finalize(st);
}

/* ---------- the number of requests, without counting them ---------- */

static int64_t state_value(sqlite3 *db, const char *key, int *rc) {
  sqlite3_stmt *st = NULL;
  int64_t v = 0;
  *rc = sqlite3_prepare_v2(db, "SELECT value FROM mcpr_retention_state WHERE key = ?1", -1, &st,
                           NULL);
  if (*rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    *rc = sqlite3_step(st);
    if (*rc == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    *rc = *rc == SQLITE_ROW || *rc == SQLITE_DONE ? SQLITE_OK : *rc;
  }
  sqlite3_finalize(st);
  return v;
}

static int64_t one_value(sqlite3 *db, const char *sql, int64_t a, int *rc) {
  sqlite3_stmt *st = NULL;
  int64_t v = 0;
  *rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (*rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, a);
    *rc = sqlite3_step(st);
    if (*rc == SQLITE_ROW)
      v = sqlite3_column_int64(st, 0);
    *rc = *rc == SQLITE_ROW ? SQLITE_OK : (*rc == SQLITE_DONE ? SQLITE_CORRUPT : *rc);
  }
  sqlite3_finalize(st);
  return v;
}

bool mcpr__retention_count_requests(sqlite3 *db, int64_t *out) {
  int64_t w = mcpr__rollup_watermark(db);
  if (w < 0)
    return false;
  int rc = SQLITE_OK;
  /* The planner would scan the table, sketches and all (3,500 pages at
   * 10M requests); the index on calls is a few dozen. */
  int64_t rolled = one_value(db, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_hour"
                                 " INDEXED BY mcpr_rollup_hour_calls WHERE ?1 = ?1", 0, &rc);
  int64_t gap = rc == SQLITE_OK ? state_value(db, "rolled_gap", &rc) : 0;
  int64_t above = rc == SQLITE_OK
                      ? one_value(db, "SELECT count(*) FROM requests WHERE id > ?1", w, &rc)
                      : 0;
  if (rc != SQLITE_OK || rolled - gap < 0)
    return false;
  *out = rolled - gap + above;
  return true;
}

int mcpr__retention_recount(sqlite3 *db) {
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return rc;
  int64_t w = mcpr__rollup_watermark(db);
  if (w >= 0) {
    int64_t rolled = one_value(db, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_hour"
                                   " WHERE ?1 = ?1", 0, &rc);
    int64_t present = rc == SQLITE_OK
                          ? one_value(db, "SELECT count(*) FROM requests WHERE id <= ?1", w, &rc)
                          : 0;
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK)
      rc = sqlite3_prepare_v2(db, SQL[S_SET], -1, &st, NULL);
    if (rc == SQLITE_OK) {
      sqlite3_bind_text(st, 1, "rolled_gap", -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 2, rolled - present);
      rc = sqlite3_step(st);
      rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
  }
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

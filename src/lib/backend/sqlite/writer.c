/*
 * writer.c — the SQLite backend's write side: one batch of store events in
 * one transaction (SPEC §5), for the engine's writer thread (store/writer.c,
 * which owns batching, retries and counting).
 *
 * Statements are prepared once and reused. A batch is BEGIN IMMEDIATE …
 * COMMIT under the store's commit lock (db.h): no other mcpr connection
 * checkpoints while this one commits. A per-row problem (a constraint)
 * skips that row only; anything else rolls the whole batch back and is
 * returned, so the engine can retry it.
 *
 * Session counters are summed per session within the batch and applied
 * with one UPDATE per session at the end of it, in the same transaction,
 * which gives the same rows as one UPDATE per request. A session insert
 * first applies what is pending, so a request seen before its session's
 * insert counts exactly as it would have row by row (not at all). A
 * duplicate request_id is skipped and counts nothing.
 *
 * Rollups (rollup.h): each batch, before COMMIT, rolls up the rows above
 * the watermark — its own, and the few any other writer of the file added
 * since — when they are at most the batch plus CATCH_UP_SLACK rows. A
 * store that holds more than that above the watermark (one the original
 * wrote, or one from before the rollups) is caught up after the batch's
 * commit in chunks of CATCH_UP_CHUNK rows, one short transaction per
 * batch, until the writer's own batches take over again: the rollups
 * build themselves in the background of a running writer, and
 * `mcpr store rollup` does the same in a loop.
 */
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sqlite/db.h"
#include "backend/sqlite/retention.h"
#include "backend/sqlite/rollup.h"
#include "backend/sqlite/sqlite.h"
#include "core/schema_diff.h"
#include "mcpr/mcpr.h"

enum {
  STMT_BEGIN,
  STMT_COMMIT,
  STMT_ROLLBACK,
  STMT_INSERT_REQUEST,
  STMT_INSERT_SESSION,
  STMT_UPDATE_SESSION,
  STMT_CLOSE_SESSION,
  STMT_SELECT_SCHEMA,
  STMT_INSERT_CHANGE,
  STMT_UPSERT_SCHEMA,
  STMT_SAVEPOINT,
  STMT_RELEASE,
  STMT_ROLLBACK_TO,
  STMT_SESSION_EXISTS,
  STMT_ROLLUP_SAVEPOINT,
  STMT_ROLLUP_RELEASE,
  STMT_ROLLUP_ROLLBACK_TO,
  STMT_INSERT_REQUESTS_RUN,
  STMT_ROWS_INSERTED,
  STMT_LAST_ID,
  STMT_COUNT
};

#define REQUEST_COLUMNS                                                            \
  " requests (request_id, ts, proxy, session_id, method, tool,"                  \
  " latency_us, status, error_code, error_msg, bytes_in, bytes_out,"             \
  " resource_uri, prompt_name) VALUES "
#define REQUEST_VALUES "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define REQUEST_PARAMS 14
#define REQUEST_VALUES_4 REQUEST_VALUES "," REQUEST_VALUES "," REQUEST_VALUES "," REQUEST_VALUES

/*
 * Requests come in runs (a proxy's batch is mostly requests): RUN_ROWS of
 * them go into one INSERT. SQLite's cost per statement (opening a cursor
 * on the table and on each of its indexes, halting, resetting) is then
 * paid once per run instead of once per row: callgrind counted it at a
 * third of the writer's instructions per request.
 */
#define RUN_ROWS 16

static const char *const STMT_SQL[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_INSERT_REQUEST] =
        "INSERT INTO" REQUEST_COLUMNS REQUEST_VALUES " ON CONFLICT(request_id) DO NOTHING",
    /* OR IGNORE, not ON CONFLICT DO NOTHING: a row it skips (a duplicate,
     * or a NOT NULL it breaks) cannot abort the statement after other rows
     * went in, so SQLite keeps no statement journal for it (a copy of
     * every page the run touches: a tenth of the writer's instructions).
     * What it skipped is sorted out row by row (sort_out_run). */
    [STMT_INSERT_REQUESTS_RUN] = "INSERT OR IGNORE INTO" REQUEST_COLUMNS REQUEST_VALUES_4
        "," REQUEST_VALUES_4 "," REQUEST_VALUES_4 "," REQUEST_VALUES_4,
    /* the rows one run inserted: this writer holds the write lock, so
     * every id above the last before the run is the run's */
    [STMT_ROWS_INSERTED] = "SELECT request_id FROM requests WHERE id > ?1 AND id <= ?2",
    [STMT_LAST_ID] = "SELECT coalesce(max(id), 0) FROM requests",
    [STMT_INSERT_SESSION] =
        "INSERT INTO sessions (session_id, proxy, started_at, last_seen_at,"
        " client_name, client_version, client_platform)"
        " VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6) ON CONFLICT(session_id) DO NOTHING",
    [STMT_UPDATE_SESSION] =
        "UPDATE sessions SET total_calls = total_calls + ?2,"
        " total_errors = total_errors + ?3, last_seen_at = MAX(last_seen_at, ?4)"
        " WHERE session_id = ?1",
    [STMT_CLOSE_SESSION] =
        "UPDATE sessions SET ended_at = ?2 WHERE session_id = ?1 AND ended_at IS NULL",
    [STMT_SELECT_SCHEMA] = "SELECT schema_hash, payload, captured_at FROM server_schema"
                           " WHERE proxy = ?1 AND upstream_url = ?2 AND method = ?3",
    [STMT_INSERT_CHANGE] =
        "INSERT INTO schema_changes (upstream_url, method, change_type, item_name,"
        " old_hash, new_hash, detected_at, proxy) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [STMT_UPSERT_SCHEMA] =
        "INSERT INTO server_schema (proxy, upstream_url, method, payload, captured_at,"
        " schema_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT(proxy, upstream_url, method) DO UPDATE SET"
        " payload = excluded.payload, captured_at = excluded.captured_at,"
        " schema_hash = excluded.schema_hash",
    /* A schema version is several statements (change rows, then the
     * snapshot): a row error part-way must undo all of them, never leave
     * change rows without their snapshot. */
    [STMT_SAVEPOINT] = "SAVEPOINT schema_version",
    [STMT_RELEASE] = "RELEASE schema_version",
    [STMT_ROLLBACK_TO] = "ROLLBACK TO schema_version",
    [STMT_SESSION_EXISTS] = "SELECT 1 FROM sessions WHERE session_id = ?1",
    /* The rollups never cost a batch its rows: a catch-up that fails
     * (a damaged rollup table, say) is undone alone, and the rows stay
     * above the watermark, where reads count them raw. */
    [STMT_ROLLUP_SAVEPOINT] = "SAVEPOINT rollup",
    [STMT_ROLLUP_RELEASE] = "RELEASE rollup",
    [STMT_ROLLUP_ROLLBACK_TO] = "ROLLBACK TO rollup",
};

typedef struct session_sum {
  const char *session_id; /* borrowed from an item of the batch */
  int64_t calls, errors, last_ts;
} session_sum;

typedef struct writer {
  sqlite3 *db;
  char *path;
  int commit_lock_fd; /* see mcpr__commit_lock_open(); -1: none */
  /* The health record (db.h) shows a failure no writer saw end: the first
   * commit of this one ends it, so `store stats` does not say "not yet
   * seen to end" forever. */
  bool record_open_failure;
  sqlite3_stmt *stmt[STMT_COUNT];
  /* Open-addressing table of pending session sums, cleared per attempt. */
  session_sum *sums;
  size_t sums_cap; /* power of two, > 2 × batch_size */
  size_t *sums_used; /* indexes in use, to clear and apply in order */
  size_t sums_n;
  mcpr__rollup *rollup; /* NULL: the file has no rollup tables */
  int64_t rollup_left;  /* rows above the watermark after the last batch */
  mcpr__retention *retention; /* NULL: retention is off */
  /* The highest requests.id in the batch's transaction: read at its start,
   * then the last row this writer inserted (ids only grow: AUTOINCREMENT;
   * an ignored duplicate may use one up, so a run's ids can have gaps). */
  int64_t last_id;
} writer;

#define CATCH_UP_SLACK 5000
#define CATCH_UP_CHUNK 10000



/* Errors that undo the statement only: the row is skipped, the batch goes on. */
static bool is_row_error(int rc) {
  switch (rc & 0xFF) {
  case SQLITE_CONSTRAINT:
  case SQLITE_TOOBIG:
  case SQLITE_MISMATCH:
  case SQLITE_RANGE:
    return true;
  default:
    return false;
  }
}

static int run(sqlite3_stmt *st) {
  /* Every parameter is bound (NULL included) before each step, so no
   * sqlite3_clear_bindings() is needed between rows. */
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static void bind_opt_int(sqlite3_stmt *st, int i, int64_t v) {
  if (v >= 0)
    sqlite3_bind_int64(st, i, v);
  else
    sqlite3_bind_null(st, i);
}

/* r's 14 columns into st's parameters base+1 … base+14. */
static void bind_request(sqlite3_stmt *st, int base, const mcpr_request_event *r) {
  sqlite3_bind_text(st, base + 1, r->request_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, base + 2, r->ts_ms);
  sqlite3_bind_text(st, base + 3, r->proxy, -1, SQLITE_STATIC);
  bind_text(st, base + 4, r->session_id);
  sqlite3_bind_text(st, base + 5, r->method, -1, SQLITE_STATIC);
  bind_text(st, base + 6, r->tool);
  sqlite3_bind_int64(st, base + 7, r->latency_us);
  sqlite3_bind_text(st, base + 8, mcpr_request_status_str(r->status), -1, SQLITE_STATIC);
  bind_text(st, base + 9, r->error_code);
  bind_text(st, base + 10, r->error_msg);
  bind_opt_int(st, base + 11, r->bytes_in);
  bind_opt_int(st, base + 12, r->bytes_out);
  bind_text(st, base + 13, r->resource_uri);
  bind_text(st, base + 14, r->prompt_name);
}

/* ---------- session sums ---------- */

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static void sums_add(writer *w, const char *session_id, bool error, int64_t ts) {
  size_t i = hash_str(session_id) & (w->sums_cap - 1);
  while (w->sums[i].session_id && strcmp(w->sums[i].session_id, session_id) != 0)
    i = (i + 1) & (w->sums_cap - 1);
  session_sum *sum = &w->sums[i];
  if (!sum->session_id) {
    sum->session_id = session_id;
    sum->last_ts = ts;
    w->sums_used[w->sums_n++] = i;
  }
  sum->calls++;
  sum->errors += error;
  if (ts > sum->last_ts)
    sum->last_ts = ts;
}

/* A request row went in: its session's counters follow at the batch's end. */
static void request_written(writer *w, const mcpr_request_event *r) {
  bool error = r->status != MCPR_REQUEST_OK;
  if (r->session_id)
    sums_add(w, r->session_id, error, r->ts_ms);
  if (w->rollup)
    mcpr__rollup_feed(w->rollup, &(mcpr__rollup_row){.ts = r->ts_ms,
                                                     .latency_us = r->latency_us,
                                                     .proxy = r->proxy,
                                                     .tool = r->tool,
                                                     .method = r->method,
                                                     .error = error,
                                                     .bytes_in = r->bytes_in,
                                                     .bytes_out = r->bytes_out});
}

static void sums_clear(writer *w) {
  for (size_t k = 0; k < w->sums_n; k++)
    memset(&w->sums[w->sums_used[k]], 0, sizeof(session_sum));
  w->sums_n = 0;
}

/* Apply and clear the pending sums. Returns an SQLite code. */
static int sums_apply(writer *w) {
  sqlite3_stmt *st = w->stmt[STMT_UPDATE_SESSION];
  int rc = SQLITE_DONE;
  for (size_t k = 0; k < w->sums_n && rc == SQLITE_DONE; k++) {
    session_sum *sum = &w->sums[w->sums_used[k]];
    sqlite3_bind_text(st, 1, sum->session_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, sum->calls);
    sqlite3_bind_int64(st, 3, sum->errors);
    sqlite3_bind_int64(st, 4, sum->last_ts);
    rc = run(st);
  }
  sums_clear(w);
  return rc;
}

/* ---------- applying one event ---------- */

typedef struct change_ctx {
  writer *w;
  const mcpr_schema_version_event *v;
  const char *old_hash;
  int rc;
} change_ctx;

static int insert_change(void *arg, const char *change_type, const char *item_name) {
  change_ctx *c = arg;
  sqlite3_stmt *st = c->w->stmt[STMT_INSERT_CHANGE];
  sqlite3_bind_text(st, 1, c->v->upstream_url, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, c->v->method, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, change_type, -1, SQLITE_TRANSIENT);
  bind_text(st, 4, item_name);
  bind_text(st, 5, c->old_hash);
  sqlite3_bind_text(st, 6, c->v->content_hash, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 7, c->v->ts_ms);
  sqlite3_bind_text(st, 8, c->v->proxy, -1, SQLITE_STATIC);
  c->rc = run(st);
  return c->rc == SQLITE_DONE ? 0 : 1;
}

/* Returns SQLITE_DONE, with *dup set when the event repeats or predates
 * the stored snapshot (a replayed log): a proxy only emits a version when
 * the content changed, so an equal hash or an older ts is not a change. */
static int apply_schema_version(writer *w, const mcpr_schema_version_event *v, bool *dup) {
  sqlite3_stmt *sel = w->stmt[STMT_SELECT_SCHEMA];
  sqlite3_bind_text(sel, 1, v->proxy, -1, SQLITE_STATIC);
  sqlite3_bind_text(sel, 2, v->upstream_url, -1, SQLITE_STATIC);
  sqlite3_bind_text(sel, 3, v->method, -1, SQLITE_STATIC);
  int rc = sqlite3_step(sel);
  char *old_hash = NULL, *old_payload = NULL;
  *dup = false;
  if (rc == SQLITE_ROW) {
    const char *h = (const char *)sqlite3_column_text(sel, 0);
    const char *p = (const char *)sqlite3_column_text(sel, 1);
    int64_t captured_at = sqlite3_column_int64(sel, 2);
    if ((h && strcmp(h, v->content_hash) == 0) || v->ts_ms < captured_at) {
      *dup = true;
      rc = SQLITE_DONE;
    } else {
      old_hash = strdup(h ? h : "");
      old_payload = strdup(p ? p : "");
      rc = (old_hash && old_payload) ? SQLITE_DONE : SQLITE_NOMEM;
    }
  }
  sqlite3_reset(sel);
  if (rc != SQLITE_DONE || *dup)
    goto out;

  change_ctx c = {w, v, old_hash, SQLITE_DONE};
  if (!old_hash) {
    insert_change(&c, "initial", NULL);
  } else if (mcpr__schema_diff(v->method, old_payload, v->payload, insert_change, &c) < 0) {
    c.rc = SQLITE_NOMEM;
  }
  rc = c.rc;
  if (rc != SQLITE_DONE)
    goto out;

  sqlite3_stmt *up = w->stmt[STMT_UPSERT_SCHEMA];
  sqlite3_bind_text(up, 1, v->proxy, -1, SQLITE_STATIC);
  sqlite3_bind_text(up, 2, v->upstream_url, -1, SQLITE_STATIC);
  sqlite3_bind_text(up, 3, v->method, -1, SQLITE_STATIC);
  sqlite3_bind_text(up, 4, v->payload, -1, SQLITE_STATIC);
  sqlite3_bind_int64(up, 5, v->ts_ms);
  sqlite3_bind_text(up, 6, v->content_hash, -1, SQLITE_STATIC);
  rc = run(up);
out:
  free(old_hash);
  free(old_payload);
  return rc;
}

/* Returns SQLITE_DONE with *out set, or a batch-level SQLite error. */
static int apply(writer *w, const mcpr_store_event *e, mcpr__outcome *out) {
  sqlite3 *db = w->db;
  int rc;
  *out = MCPR__WRITTEN;
  switch (e->kind) {
  case MCPR_STORE_EVENT_REQUEST: {
    const mcpr_request_event *r = &e->u.request;
    sqlite3_stmt *st = w->stmt[STMT_INSERT_REQUEST];
    bind_request(st, 0, r);
    rc = run(st);
    if (rc == SQLITE_DONE && sqlite3_changes(db) == 0) {
      *out = MCPR__DUPLICATE;
    } else if (rc == SQLITE_DONE) {
      w->last_id = sqlite3_last_insert_rowid(db);
      request_written(w, r);
    }
    break;
  }
  case MCPR_STORE_EVENT_SESSION: {
    rc = sums_apply(w);
    if (rc != SQLITE_DONE)
      return rc;
    const mcpr_session_event *ss = &e->u.session;
    sqlite3_stmt *st = w->stmt[STMT_INSERT_SESSION];
    sqlite3_bind_text(st, 1, ss->session_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ss->proxy, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ss->started_at_ms);
    bind_text(st, 4, ss->client_name);
    bind_text(st, 5, ss->client_version);
    bind_text(st, 6, ss->client_platform);
    rc = run(st);
    if (rc == SQLITE_DONE && sqlite3_changes(db) == 0)
      *out = MCPR__DUPLICATE;
    break;
  }
  case MCPR_STORE_EVENT_SESSION_CLOSED: {
    sqlite3_stmt *st = w->stmt[STMT_CLOSE_SESSION];
    sqlite3_bind_text(st, 1, e->u.session_closed.session_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, e->u.session_closed.ended_at_ms);
    rc = run(st);
    /* Already closed, or never seen: nothing changed. Which of the two is
     * asked only then, so a close costs one statement as before. */
    if (rc == SQLITE_DONE && sqlite3_changes(db) == 0) {
      sqlite3_stmt *ex = w->stmt[STMT_SESSION_EXISTS];
      sqlite3_bind_text(ex, 1, e->u.session_closed.session_id, -1, SQLITE_STATIC);
      rc = sqlite3_step(ex);
      sqlite3_reset(ex);
      *out = rc == SQLITE_ROW ? MCPR__DUPLICATE : MCPR__UNKNOWN_SESSION;
      if (rc == SQLITE_ROW)
        rc = SQLITE_DONE;
    }
    break;
  }
  case MCPR_STORE_EVENT_SCHEMA_VERSION: {
    bool dup = false;
    rc = run(w->stmt[STMT_SAVEPOINT]);
    if (rc != SQLITE_DONE)
      return rc;
    rc = apply_schema_version(w, &e->u.schema_version, &dup);
    if (rc == SQLITE_DONE && dup)
      *out = MCPR__DUPLICATE;
    if (rc != SQLITE_DONE && is_row_error(rc))
      run(w->stmt[STMT_ROLLBACK_TO]);
    if (rc == SQLITE_DONE || is_row_error(rc)) {
      int rel = run(w->stmt[STMT_RELEASE]);
      if (rel != SQLITE_DONE)
        return rel;
    }
    break;
  }
  default:
    rc = SQLITE_MISUSE;
  }
  if (rc != SQLITE_DONE && is_row_error(rc)) {
    *out = (rc & 0xFF) == SQLITE_CONSTRAINT ? MCPR__CONSTRAINT : MCPR__ROW_FAILED;
    rc = SQLITE_DONE;
  }
  return rc;
}

/* ---------- a run of requests in one statement ---------- */

/* Outcomes of a run that inserted fewer rows than it had: the rows it did
 * insert are those with ids in (before, w->last_id]; each of their
 * request_ids marks the first event of the run carrying it (a run may
 * repeat one). Every other event is applied alone, which tells a
 * duplicate from a row SQLite refuses. Returns an SQLite code. */
static int sort_out_run(writer *w, const mcpr_store_event *const *events, int64_t before,
                        mcpr__outcome *outcomes) {
  bool written[RUN_ROWS] = {false};
  int rc = SQLITE_DONE;
  if (w->last_id > before) {
    sqlite3_stmt *st = w->stmt[STMT_ROWS_INSERTED];
    sqlite3_bind_int64(st, 1, before);
    sqlite3_bind_int64(st, 2, w->last_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      const char *id = (const char *)sqlite3_column_text(st, 0);
      for (int k = 0; id && k < RUN_ROWS; k++)
        if (!written[k] && strcmp(events[k]->u.request.request_id, id) == 0) {
          written[k] = true;
          break;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
      return rc;
  }
  for (int k = 0; k < RUN_ROWS && rc == SQLITE_DONE; k++) {
    if (written[k]) {
      outcomes[k] = MCPR__WRITTEN;
      request_written(w, &events[k]->u.request);
    } else {
      rc = apply(w, events[k], &outcomes[k]);
    }
  }
  return rc;
}

/* RUN_ROWS requests in one INSERT. Rows it skipped are sorted out after
 * it; an error that aborts it (a trigger's RAISE, say: its changes are
 * undone) has the run applied row by row, so only that row is skipped, as
 * ever. Returns an SQLite code. */
static int apply_run(writer *w, const mcpr_store_event *const *events,
                     mcpr__outcome *outcomes) {
  sqlite3_stmt *st = w->stmt[STMT_INSERT_REQUESTS_RUN];
  for (int k = 0; k < RUN_ROWS; k++)
    bind_request(st, k * REQUEST_PARAMS, &events[k]->u.request);
  int rc = run(st);
  if (rc == SQLITE_DONE) {
    int changes = sqlite3_changes(w->db);
    int64_t before = w->last_id;
    if (changes > 0)
      w->last_id = sqlite3_last_insert_rowid(w->db);
    if (changes < RUN_ROWS)
      return sort_out_run(w, events, before, outcomes);
    for (int k = 0; k < RUN_ROWS; k++) {
      outcomes[k] = MCPR__WRITTEN;
      request_written(w, &events[k]->u.request);
    }
    return rc;
  }
  if (!is_row_error(rc))
    return rc;
  rc = SQLITE_DONE;
  for (int k = 0; k < RUN_ROWS && rc == SQLITE_DONE; k++)
    rc = apply(w, events[k], &outcomes[k]);
  return rc;
}

/* How many of events[0..n) are requests, up to RUN_ROWS. */
static size_t requests_ahead(const mcpr_store_event *const *events, size_t n) {
  size_t k = 0;
  while (k < n && k < RUN_ROWS && events[k]->kind == MCPR_STORE_EVENT_REQUEST)
    k++;
  return k;
}

/* ---------- one batch ---------- */

static int rollup_in_batch(writer *w, size_t n) {
  int rc = run(w->stmt[STMT_ROLLUP_SAVEPOINT]);
  if (rc != SQLITE_DONE)
    return rc;
  int rrc = mcpr__rollup_feed_end(w->rollup, (int64_t)n + CATCH_UP_SLACK, &w->rollup_left);
  if (rrc != SQLITE_DONE) {
    w->rollup_left = 0; /* no background chunks either, this batch */
    rc = run(w->stmt[STMT_ROLLUP_ROLLBACK_TO]);
    if (rc != SQLITE_DONE)
      return rc;
  }
  return run(w->stmt[STMT_ROLLUP_RELEASE]);
}

static int attempt(writer *w, const mcpr_store_event *const *events, size_t n,
                   mcpr__outcome *outcomes) {
  int rc = run(w->stmt[STMT_BEGIN]);
  if (rc != SQLITE_DONE)
    return rc;
  sqlite3_stmt *last = w->stmt[STMT_LAST_ID];
  rc = sqlite3_step(last);
  if (rc == SQLITE_ROW) {
    w->last_id = sqlite3_column_int64(last, 0);
    rc = SQLITE_DONE;
  }
  sqlite3_reset(last);
  /* A failed read of the watermark costs the batch nothing, unless it cost
   * the transaction (out of memory, an I/O error: SQLite rolled it back). */
  if (rc == SQLITE_DONE && w->rollup &&
      (rc = mcpr__rollup_feed_begin(w->rollup, w->last_id)) != SQLITE_DONE && !sqlite3_get_autocommit(w->db))
    rc = SQLITE_DONE;
  for (size_t i = 0; i < n && rc == SQLITE_DONE;) {
    if (requests_ahead(events + i, n - i) == RUN_ROWS) {
      rc = apply_run(w, events + i, outcomes + i);
      i += RUN_ROWS;
    } else {
      rc = apply(w, events[i], &outcomes[i]);
      i++;
    }
  }
  if (rc == SQLITE_DONE)
    rc = sums_apply(w);
  if (rc == SQLITE_DONE && w->rollup)
    rc = rollup_in_batch(w, n);
  if (rc == SQLITE_DONE)
    rc = run(w->stmt[STMT_COMMIT]);
  if (rc != SQLITE_DONE) {
    sums_clear(w);
    if (w->rollup)
      mcpr__rollup_feed_drop(w->rollup);
    if (!sqlite3_get_autocommit(w->db))
      run(w->stmt[STMT_ROLLBACK]);
  }
  return rc;
}

/* One chunk of a big catch-up, in a transaction of its own after a batch;
 * a failure only leaves the rows for the next batch. */
static void catch_up_chunk(writer *w) {
  if (run(w->stmt[STMT_BEGIN]) != SQLITE_DONE)
    return;
  int rc = mcpr__rollup_catch_up(w->rollup, CATCH_UP_CHUNK, false, NULL, &w->rollup_left);
  if (rc == SQLITE_DONE)
    rc = run(w->stmt[STMT_COMMIT]);
  if (rc != SQLITE_DONE && !sqlite3_get_autocommit(w->db))
    run(w->stmt[STMT_ROLLBACK]);
}

static mcpr_status write_batch(void *impl, const mcpr_store_event *const *events, size_t n,
                               mcpr__outcome *outcomes, int lock_wait_ms, mcpr_error *err) {
  writer *w = impl;
  if (!mcpr__commit_lock_within(w->commit_lock_fd, lock_wait_ms))
    return mcpr_error_set(err, MCPR_EBUSY,
                          "another process has held the store's commit lock (%s-mcprlock) "
                          "for more than %d ms",
                          w->path, lock_wait_ms);
  int rc = attempt(w, events, n, outcomes);
  if (rc == SQLITE_DONE && w->rollup && w->rollup_left > 0)
    catch_up_chunk(w);
  mcpr__commit_unlock(w->commit_lock_fd);
  if (rc == SQLITE_DONE) {
    if (w->record_open_failure) {
      w->record_open_failure = false;
      mcpr__health_record_end(w->commit_lock_fd, mcpr_now_ms());
    }
    return MCPR_OK;
  }
  mcpr_status st = mcpr__db_status(rc);
  return mcpr_error_set(err, st, "%s", sqlite3_errstr(rc));
}

/* How long a retention step waits for the commit lock: it is never worth
 * making events wait; a busy store is tried again at the next look. */
#define RETAIN_LOCK_WAIT_MS 100

static mcpr_status retain(void *impl, int64_t now_ms, bool *more, mcpr_error *err) {
  writer *w = impl;
  *more = false;
  if (!w->retention)
    return MCPR_OK;
  if (!mcpr__commit_lock_within(w->commit_lock_fd, RETAIN_LOCK_WAIT_MS))
    return MCPR_OK;
  int rc = mcpr__retention_step(w->retention, now_ms, more);
  mcpr__commit_unlock(w->commit_lock_fd);
  if (rc == SQLITE_OK)
    return MCPR_OK;
  if ((rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED)
    return MCPR_OK; /* another connection writes: the next look */
  return mcpr__db_error(w->db, rc, err, "deleting rows past the store's retention");
}

static void writer_close(void *impl) {
  writer *w = impl;
  if (!w)
    return;
  for (int i = 0; i < STMT_COUNT; i++)
    sqlite3_finalize(w->stmt[i]);
  mcpr__rollup_free(w->rollup);
  mcpr__retention_free(w->retention);
  /* PRAGMA optimize as SQLite advises before closing a connection that
   * wrote; the close may checkpoint, so both run under the commit lock. */
  if (!w->db) {
    /* opened no further than the allocations */
  } else if (mcpr__commit_lock_within(w->commit_lock_fd, MCPR__CLOSE_LOCK_WAIT_MS)) {
    mcpr__db_exec(w->db, "PRAGMA optimize");
    sqlite3_close_v2(w->db);
    mcpr__commit_unlock(w->commit_lock_fd);
  } else {
    /* Another process holds the lock past any reasonable time: close
     * without the checkpoint rather than hang (the WAL stays, and the next
     * writer checkpoints it). */
    sqlite3_db_config(w->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_close_v2(w->db);
  }
  mcpr__commit_lock_close(w->commit_lock_fd);
  free(w->sums);
  free(w->sums_used);
  free(w->path);
  free(w);
}

static mcpr_status writer_open(const char *path, const mcpr_store_options *o, void **impl,
                               mcpr_error *err) {
  *impl = NULL;
  writer *w = calloc(1, sizeof *w);
  if (!w)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  w->commit_lock_fd = -1;
  size_t bs = o->batch_size;
  w->sums_cap = 16;
  while (w->sums_cap < 2 * bs + 1)
    w->sums_cap <<= 1;
  w->sums = calloc(w->sums_cap, sizeof *w->sums);
  w->sums_used = calloc(bs, sizeof *w->sums_used);
  w->path = strdup(path);
  if (!w->sums || !w->sums_used || !w->path) {
    writer_close(w);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  }
  mcpr_status st = mcpr__db_open(path, MCPR__DB_CREATE, o->vfs_name, &w->db, err);
  if (st != MCPR_OK) {
    free(w->sums);
    free(w->sums_used);
    free(w->path);
    free(w);
    return st;
  }
  /* requests.status's CHECK (status IN ('ok','error','timeout')) is kept
   * by this writer, not evaluated by SQLite: the text it binds comes from
   * mcpr_request_status_str(), which knows those three only (anything else
   * is NULL, which NOT NULL still refuses). SQLite evaluates that IN list
   * through a temporary b-tree built for every row, a fifth of the
   * writer's CPU per request (callgrind). No other table has a CHECK. */
  w->commit_lock_fd = mcpr__commit_lock_open(path);
  mcpr__health_record_reserve(w->commit_lock_fd);
  w->record_open_failure = mcpr__health_record_is_open(path);
  /* The writer appends: what it touches is the last pages of the table and
   * of each index, and the rollups' recent rows. 8 MB holds that; the 64 MB
   * every connection gets for reading only made a long-running proxy's
   * resident set grow with the store (bench/proxy.sh: 94 MB idle after
   * 260k requests). */
  int prc = sqlite3_exec(w->db, "PRAGMA ignore_check_constraints = ON; PRAGMA cache_size = -8000",
                         NULL, NULL, NULL);
  if (prc != SQLITE_OK) {
    st = mcpr__db_error(w->db, prc, err, "setting up the store's connection");
    writer_close(w);
    return st;
  }
  for (int i = 0; i < STMT_COUNT; i++) {
    int rc = sqlite3_prepare_v3(w->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &w->stmt[i],
                                NULL);
    if (rc != SQLITE_OK) {
      st = mcpr__db_error(w->db, rc, err, "preparing the store's statements");
      writer_close(w);
      return st;
    }
  }
  int rc = SQLITE_OK;
  w->rollup = mcpr__rollup_new(w->db, &rc);
  if (!w->rollup && rc == SQLITE_NOMEM) {
    writer_close(w);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  }
  /* Requests are only deleted once rolled up: no rollups, no retention. */
  if (o->retention_ms > 0 && w->rollup &&
      !(w->retention = mcpr__retention_new(w->db, o->retention_ms, o->keep_errors_ms,
                                           o->rollup_retention_ms))) {
    writer_close(w);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  }
  *impl = w;
  return MCPR_OK;
}

static void note_health(void *impl, const mcpr_store_health *h) {
  writer *w = impl;
  mcpr__health_record_write(w->commit_lock_fd, h);
}

const mcpr__store_backend mcpr__sqlite_store_backend = {
    .name = "sqlite",
    .open = writer_open,
    .write_batch = write_batch,
    .note_health = note_health,
    .retain = retain,
    .close = writer_close,
};

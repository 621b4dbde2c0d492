/*
 * writer.c — the PostgreSQL backend's write side: one batch of store
 * events in one transaction (SPEC §5), for the engine's writer thread
 * (store/writer.c owns batching, retries, backoff and counting).
 *
 * One round trip per batch, whatever the mix. The batch's events are
 * written kind by kind: all its session inserts in one INSERT … SELECT
 * FROM unnest(<arrays>) ON CONFLICT DO NOTHING, all its requests in one,
 * all its session closes in one UPDATE, each with its columns sent as
 * array parameters; these, BEGIN, the session counters and COMMIT go out
 * together in libpq's pipeline mode and their results are read after
 * (measured with mcpr-bench write: 0.31 of SQLite's rate with a statement
 * per run of events, 0.40 one per kind, 0.64 pipelined). A schema version
 * (rare) reads the stored snapshot and diffs it in C: a batch holding one
 * commits in a second step. The order within the batch still decides
 * what the SQLite writer's row-by-row order decides: each event carries
 * its position, the session insert notes the position of each session it
 * inserts (a temporary table), and a request or close that comes before
 * its session's insert in the batch finds no session, as it would have
 * then.
 *
 * Session counters are counted in SQL, never read into C and written
 * back: the request insert also writes, into a temporary table, one row
 * per session of the requests it actually inserted (a duplicate
 * request_id inserts nothing, so counts nothing) — but only for sessions
 * whose row exists at that point of the batch, which gives the rows the
 * SQLite writer gives (a request stored before its session's insert is
 * not counted). At the end of the batch the sums are added with
 * total_calls = total_calls + n, after locking the session rows in
 * session_id order: several writers on several machines adding to the
 * same sessions at once wait for each other and never deadlock.
 *
 * Rollups (rollup.h): the request insert also appends the rows it
 * inserted, grouped by hour and label, to the pending rollup tables, with
 * the sketch key of each latency sent beside it (computed in C, so the
 * buckets are the SQLite store's), and marks them rolled: a committed
 * request is counted exactly once, whichever writer wrote it. A thread of
 * the writer's, on a connection of its own, compacts the pending groups
 * and folds them into the keyed tables now and then (fold), and the
 * close folds what is left. Rows no writer counted are counted after
 * batches, a bounded chunk at a time (catch_up). Retention (retention.h)
 * runs between batches on the same connection, in steps of one short
 * transaction each.
 *
 * Schema versions: a transaction-level advisory lock on (proxy,
 * upstream_url, method) serializes concurrent writers of one upstream's
 * method, so the prior snapshot read, the change rows and the new
 * snapshot are one step that no other writer interleaves with.
 *
 * Failures. A row that breaks a constraint or holds a value PostgreSQL
 * refuses (invalid UTF-8) fails its whole statement: the batch is then
 * rolled back and written again event by event, each in a savepoint, so
 * only that row is skipped (MCPR__CONSTRAINT / MCPR__ROW_FAILED). A lost
 * connection, a server restart or shutdown, a deadlock or a lock timeout
 * roll the batch back and return a retryable status (MCPR_EIO,
 * MCPR_EBUSY): the engine retries with backoff, and each attempt first
 * reconnects when the connection is gone. A COMMIT whose answer was lost
 * may have committed: the retry then finds every request and session
 * already there (idempotent on request_id and session_id, counters
 * derived only from rows actually inserted), so nothing is stored or
 * counted twice.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres/arrays.h"
#include "backend/postgres/pg.h"
#include "backend/postgres/postgres.h"
#include "backend/postgres/retention.h"
#include "backend/postgres/rollup.h"
#include "core/clock.h"
#include "core/sketch.h"
#include "core/buf.h"
#include "core/schema_diff.h"
#include "mcpr/mcpr.h"

enum {
  P_INSERT_REQUESTS,
  P_INSERT_SESSIONS,
  P_CLOSE_SESSIONS,
  P_LOCK_SESSIONS,
  P_APPLY_SESSIONS,
  P_SCHEMA_LOCK,
  P_SELECT_SCHEMA,
  P_INSERT_CHANGE,
  P_UPSERT_SCHEMA,
  P_COUNT
};

typedef struct prepared {
  const char *name;
  int nparams;
  const char *sql;
} prepared;

static const prepared SQL[P_COUNT] = {
    [P_INSERT_REQUESTS] =
        {"mcpr_insert_requests", 16,
         "WITH v AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[],"
         " $5::text[], $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[],"
         " $11::int8[], $12::int8[], $13::text[], $14::text[], $15::int8[], $16::int4[])"
         " WITH ORDINALITY AS v(request_id, ts, proxy, session_id, method, tool, latency_us,"
         " status, error_code, error_msg, bytes_in, bytes_out, resource_uri, prompt_name, pos,"
         " key, ord)),"
         " ins AS (INSERT INTO requests (request_id, ts, proxy, session_id, method, tool,"
         " latency_us, status, error_code, error_msg, bytes_in, bytes_out, resource_uri,"
         " prompt_name, rolled) SELECT request_id, ts, proxy, session_id, method, tool,"
         " latency_us, status, error_code, error_msg, bytes_in, bytes_out, resource_uri,"
         " prompt_name, true FROM v ORDER BY ord ON CONFLICT (request_id) DO NOTHING"
         " RETURNING request_id, session_id, ts, status, proxy, tool, method, latency_us,"
         " bytes_in, bytes_out),"
         /* each request id's first event in the batch (a repeat is a
          * duplicate): its position and sketch key, sorted out once */
         " f AS MATERIALIZED (SELECT DISTINCT ON (request_id) request_id, pos, key FROM v"
         " ORDER BY request_id, ord),"
         " d AS (INSERT INTO mcpr_session_delta (session_id, calls, errors, last_ts)"
         " SELECT i.session_id, count(*), count(*) FILTER (WHERE i.status <> 'ok'), max(i.ts)"
         " FROM ins i JOIN f ON f.request_id = i.request_id"
         " WHERE i.session_id IS NOT NULL"
         " AND EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = i.session_id)"
         " AND NOT EXISTS (SELECT 1 FROM mcpr_batch_sessions n"
         " WHERE n.session_id = i.session_id AND n.pos > f.pos)"
         " GROUP BY i.session_id),"
         /* The rollups count the requests inserted (rollup.h), each with
          * the sketch key of its latency, computed in C. */
         " rr AS (SELECT i.ts, i.proxy, i.tool, i.method, i.latency_us,"
         " i.status <> 'ok' AS is_error, i.bytes_in, i.bytes_out, f.key FROM ins i"
         " JOIN f ON f.request_id = i.request_id)" MCPR__PG_ROLLUP_PENDING_CTES
         " SELECT request_id FROM ins"},
    [P_INSERT_SESSIONS] =
        {"mcpr_insert_sessions", 7,
         "WITH v AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[],"
         " $5::text[], $6::text[], $7::int8[]) WITH ORDINALITY AS v(session_id, proxy,"
         " started_at, client_name, client_version, client_platform, pos, ord)),"
         " ins AS (INSERT INTO sessions (session_id, proxy, started_at, last_seen_at,"
         " client_name, client_version, client_platform)"
         " SELECT session_id, proxy, started_at, started_at, client_name, client_version,"
         " client_platform FROM v ORDER BY ord"
         " ON CONFLICT (session_id) DO NOTHING RETURNING session_id),"
         " b AS (INSERT INTO mcpr_batch_sessions (session_id, pos) SELECT f.session_id, f.pos"
         " FROM ins JOIN (SELECT DISTINCT ON (session_id) session_id, pos FROM v"
         " ORDER BY session_id, ord) f ON f.session_id = ins.session_id)"
         " SELECT session_id FROM ins"},
    [P_CLOSE_SESSIONS] =
        {"mcpr_close_sessions", 3,
         "WITH v AS (SELECT v.*, NOT EXISTS (SELECT 1 FROM mcpr_batch_sessions n"
         " WHERE n.session_id = v.session_id AND n.pos > v.pos) AS applicable"
         " FROM unnest($1::text[], $2::int8[], $3::int8[]) WITH ORDINALITY"
         " AS v(session_id, ended_at, pos, ord)),"
         " f AS (SELECT DISTINCT ON (session_id) session_id, ended_at, ord FROM v"
         " WHERE applicable ORDER BY session_id, ord),"
         " u AS (UPDATE sessions s SET ended_at = f.ended_at FROM f"
         " WHERE s.session_id = f.session_id AND s.ended_at IS NULL RETURNING f.ord)"
         " SELECT EXISTS (SELECT 1 FROM u WHERE u.ord = v.ord), v.applicable AND"
         " EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = v.session_id)"
         " FROM v ORDER BY v.ord"},
    [P_LOCK_SESSIONS] =
        {"mcpr_lock_sessions", 0,
         "SELECT 1 FROM sessions WHERE session_id IN"
         " (SELECT session_id FROM mcpr_session_delta) ORDER BY session_id FOR UPDATE"},
    [P_APPLY_SESSIONS] =
        {"mcpr_apply_sessions", 0,
         "UPDATE sessions s SET total_calls = s.total_calls + d.calls,"
         " total_errors = s.total_errors + d.errors,"
         " last_seen_at = GREATEST(s.last_seen_at, d.last_ts)"
         " FROM (SELECT session_id, sum(calls) AS calls, sum(errors) AS errors,"
         " max(last_ts) AS last_ts FROM mcpr_session_delta GROUP BY session_id) d"
         " WHERE s.session_id = d.session_id"},
    [P_SCHEMA_LOCK] =
        {"mcpr_schema_lock", 3,
         "SELECT pg_advisory_xact_lock(1836282483,"
         " hashtext($1::text || chr(31) || $2::text || chr(31) || $3::text))"},
    [P_SELECT_SCHEMA] = {"mcpr_select_schema", 3,
                         "SELECT schema_hash, payload, captured_at FROM server_schema"
                         " WHERE proxy = $1 AND upstream_url = $2 AND method = $3"},
    [P_INSERT_CHANGE] =
        {"mcpr_insert_change", 8,
         "INSERT INTO schema_changes (upstream_url, method, change_type, item_name,"
         " old_hash, new_hash, detected_at, proxy) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"},
    [P_UPSERT_SCHEMA] =
        {"mcpr_upsert_schema", 6,
         "INSERT INTO server_schema (proxy, upstream_url, method, payload, captured_at,"
         " schema_hash) VALUES ($1, $2, $3, $4, $5, $6)"
         " ON CONFLICT (proxy, upstream_url, method) DO UPDATE SET"
         " payload = excluded.payload, captured_at = excluded.captured_at,"
         " schema_hash = excluded.schema_hash"},
};

/* Per transaction: the session sums of the requests inserted, and the
 * sessions inserted with their position in the batch. */
static const char SQL_TEMP[] =
    "CREATE TEMP TABLE IF NOT EXISTS mcpr_session_delta (session_id TEXT COLLATE \"C\" NOT NULL,"
    " calls BIGINT NOT NULL, errors BIGINT NOT NULL, last_ts BIGINT NOT NULL)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS mcpr_batch_sessions (session_id TEXT COLLATE \"C\" NOT NULL,"
    " pos BIGINT NOT NULL) ON COMMIT DELETE ROWS";

#define REQ_COLS 16
#define SES_COLS 7

typedef struct writer {
  mcpr__pg_target t;
  PGconn *conn;
  int lock_wait_ms; /* the lock_timeout set on conn; 0: not set */
  bool prepared;    /* conn has the temp table and the statements */
  mcpr__buf cols[REQ_COLS];
  /* Returned ids of one run, sorted, with whether an event claimed each. */
  const char **ids;
  bool *claimed;
  size_t ids_cap;
  /* One kind of the batch's events, gathered (fast mode), and the
   * sessions this batch inserted, with the position of their insert. */
  const mcpr_store_event **kind_ev;
  mcpr__outcome *kind_out;
  size_t *kind_pos;
  size_t kind_cap;
  mcpr__pg_retention *retention; /* NULL: retention is off */
  unsigned catch_up_wait;        /* batches before the next catch-up */
  int64_t fold_rows;             /* events written since the last fold */
  int64_t compact_rows;          /* … since the last fold or compaction */
  int64_t fold_ms;               /* when the last fold was (monotonic) */
  /* The folder thread (see fold()), on a connection of its own. */
  pthread_t folder;
  bool folder_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int want;  /* under mu: 0 nothing, 1 compact, 2 fold; taken by the folder */
  bool stop; /* under mu: the folder exits */
} writer;

/* What one step came to: go on, a row of its own failed (careful mode
 * skips it), or the batch failed (status in *st). */
typedef enum step { STEP_OK, STEP_ROW, STEP_FAIL } step;

/* ---------- running statements ---------- */

static step fail(writer *w, PGresult *r, mcpr_status *st, mcpr_error *err, const char *doing) {
  bool row = mcpr__pg_is_row_error(r);
  *st = mcpr__pg_error(w->conn, r, &w->t, err, doing);
  PQclear(r);
  return row ? STEP_ROW : STEP_FAIL;
}

static PGresult *run(writer *w, int which, const char *const *params) {
  return PQexecPrepared(w->conn, SQL[which].name, SQL[which].nparams, params, NULL, NULL, 0);
}

static bool ok(const PGresult *r) {
  ExecStatusType s = PQresultStatus(r);
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static int cmp_id(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keep r's first column (the ids a run inserted), sorted, to tell each
 * event of the run whether it was the one written. */
static bool ids_take(writer *w, const PGresult *r) {
  size_t n = (size_t)PQntuples(r);
  if (n > w->ids_cap) {
    const char **ids = realloc(w->ids, n * sizeof *ids);
    if (ids)
      w->ids = ids;
    bool *claimed = realloc(w->claimed, n * sizeof *claimed);
    if (claimed)
      w->claimed = claimed;
    if (!ids || !claimed)
      return false;
    w->ids_cap = n;
  }
  for (size_t i = 0; i < n; i++) {
    w->ids[i] = PQgetvalue(r, (int)i, 0);
    w->claimed[i] = false;
  }
  if (n > 1)
    qsort(w->ids, n, sizeof *w->ids, cmp_id);
  return true;
}

/* The first event with an id the run returned was written; any other
 * (a repeat within the batch, or one already stored) is a duplicate. */
static mcpr__outcome ids_claim(writer *w, size_t n, const char *id) {
  if (n == 0)
    return MCPR__DUPLICATE;
  const char **hit = bsearch(&id, w->ids, n, sizeof *w->ids, cmp_id);
  if (!hit)
    return MCPR__DUPLICATE;
  size_t i = (size_t)(hit - w->ids);
  if (w->claimed[i])
    return MCPR__DUPLICATE;
  w->claimed[i] = true;
  return MCPR__WRITTEN;
}

/* ---------- runs of one kind ---------- */

/* Each kind is one statement: build its array parameters (into w->cols,
 * which libpq copies when it sends), then take its result. */

static bool build_requests(writer *w, const mcpr_store_event *const *ev, const size_t *pos,
                           size_t n, bool *has_session, const char **params) {
  bool mem = true;
  for (int c = 0; c < REQ_COLS; c++)
    mem = mem && mcpr__pg_arr_start(&w->cols[c]);
  for (size_t i = 0; i < n && mem; i++) {
    const mcpr_request_event *q = &ev[i]->u.request;
    *has_session = *has_session || q->session_id;
    mem = mcpr__pg_arr_text(&w->cols[0], q->request_id) &&
          mcpr__pg_arr_int(&w->cols[1], q->ts_ms, false) &&
          mcpr__pg_arr_text(&w->cols[2], q->proxy) &&
          mcpr__pg_arr_text(&w->cols[3], q->session_id) &&
          mcpr__pg_arr_text(&w->cols[4], q->method) && mcpr__pg_arr_text(&w->cols[5], q->tool) &&
          mcpr__pg_arr_int(&w->cols[6], q->latency_us, false) &&
          mcpr__pg_arr_text(&w->cols[7], mcpr_request_status_str(q->status)) &&
          mcpr__pg_arr_text(&w->cols[8], q->error_code) &&
          mcpr__pg_arr_text(&w->cols[9], q->error_msg) &&
          mcpr__pg_arr_int(&w->cols[10], q->bytes_in, true) &&
          mcpr__pg_arr_int(&w->cols[11], q->bytes_out, true) &&
          mcpr__pg_arr_text(&w->cols[12], q->resource_uri) &&
          mcpr__pg_arr_text(&w->cols[13], q->prompt_name) &&
          mcpr__pg_arr_int(&w->cols[14], (int64_t)pos[i], false) &&
          mcpr__pg_arr_int(&w->cols[15], mcpr__sketch_key(q->latency_us), false);
  }
  for (int c = 0; c < REQ_COLS && mem; c++) {
    mem = mcpr__pg_arr_end(&w->cols[c]);
    params[c] = w->cols[c].p;
  }
  return mem;
}

static bool build_sessions(writer *w, const mcpr_store_event *const *ev, const size_t *pos,
                           size_t n, const char **params) {
  bool mem = true;
  for (int c = 0; c < SES_COLS; c++)
    mem = mem && mcpr__pg_arr_start(&w->cols[c]);
  for (size_t i = 0; i < n && mem; i++) {
    const mcpr_session_event *s = &ev[i]->u.session;
    mem = mcpr__pg_arr_text(&w->cols[0], s->session_id) &&
          mcpr__pg_arr_text(&w->cols[1], s->proxy) &&
          mcpr__pg_arr_int(&w->cols[2], s->started_at_ms, false) &&
          mcpr__pg_arr_text(&w->cols[3], s->client_name) &&
          mcpr__pg_arr_text(&w->cols[4], s->client_version) &&
          mcpr__pg_arr_text(&w->cols[5], s->client_platform) &&
          mcpr__pg_arr_int(&w->cols[6], (int64_t)pos[i], false);
  }
  for (int c = 0; c < SES_COLS && mem; c++) {
    mem = mcpr__pg_arr_end(&w->cols[c]);
    params[c] = w->cols[c].p;
  }
  return mem;
}

static bool build_closes(writer *w, const mcpr_store_event *const *ev, const size_t *pos, size_t n,
                         const char **params) {
  bool mem = mcpr__pg_arr_start(&w->cols[0]) && mcpr__pg_arr_start(&w->cols[1]) &&
             mcpr__pg_arr_start(&w->cols[2]);
  for (size_t i = 0; i < n && mem; i++) {
    const mcpr_session_closed_event *c = &ev[i]->u.session_closed;
    mem = mcpr__pg_arr_text(&w->cols[0], c->session_id) &&
          mcpr__pg_arr_int(&w->cols[1], c->ended_at_ms, false) &&
          mcpr__pg_arr_int(&w->cols[2], (int64_t)pos[i], false);
  }
  mem = mem && mcpr__pg_arr_end(&w->cols[0]) && mcpr__pg_arr_end(&w->cols[1]) &&
        mcpr__pg_arr_end(&w->cols[2]);
  for (int c = 0; c < 3; c++)
    params[c] = w->cols[c].p;
  return mem;
}

/* The ids a request or session insert returned: the first event of each
 * was written, any other is a duplicate. */
static bool take_ids(writer *w, const PGresult *r, mcpr_store_event_kind kind,
                     const mcpr_store_event *const *ev, size_t n, mcpr__outcome *out) {
  size_t got = (size_t)PQntuples(r);
  if (!ids_take(w, r))
    return false;
  for (size_t i = 0; i < n; i++)
    out[i] = ids_claim(w, got,
                       kind == MCPR_STORE_EVENT_REQUEST ? ev[i]->u.request.request_id
                                                        : ev[i]->u.session.session_id);
  return true;
}

static void take_closes(const PGresult *r, size_t n, mcpr__outcome *out) {
  for (size_t i = 0; i < n && (int)i < PQntuples(r); i++) {
    bool closed = PQgetvalue(r, (int)i, 0)[0] == 't';
    bool known = PQgetvalue(r, (int)i, 1)[0] == 't';
    out[i] = closed ? MCPR__WRITTEN : known ? MCPR__DUPLICATE : MCPR__UNKNOWN_SESSION;
  }
}

typedef struct change_ctx {
  writer *w;
  const mcpr_schema_version_event *v;
  const char *old_hash;
  const char *ts;
  PGresult *failed; /* the failed insert's result, when one failed */
} change_ctx;

static int insert_change(void *arg, const char *change_type, const char *item_name) {
  change_ctx *c = arg;
  const char *params[8] = {c->v->upstream_url, c->v->method, change_type, item_name,
                           c->old_hash,        c->v->content_hash, c->ts, c->v->proxy};
  PGresult *r = run(c->w, P_INSERT_CHANGE, params);
  if (!ok(r)) {
    c->failed = r;
    return 1;
  }
  PQclear(r);
  return 0;
}

/* SPEC §5's schema version, under the (proxy, upstream, method) lock. */
static step schema_version(writer *w, const mcpr_schema_version_event *v, mcpr__outcome *out,
                           mcpr_status *st, mcpr_error *err) {
  const char *key[3] = {v->proxy, v->upstream_url, v->method};
  PGresult *r = run(w, P_SCHEMA_LOCK, key);
  if (!ok(r))
    return fail(w, r, st, err, "locking a schema snapshot");
  PQclear(r);
  r = run(w, P_SELECT_SCHEMA, key);
  if (!ok(r))
    return fail(w, r, st, err, "reading a schema snapshot");
  char ts[24];
  snprintf(ts, sizeof ts, "%lld", (long long)v->ts_ms);
  const char *old_hash = NULL, *old_payload = NULL;
  if (PQntuples(r) > 0) {
    old_hash = PQgetvalue(r, 0, 0);
    old_payload = PQgetvalue(r, 0, 1);
    long long captured = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
    /* A proxy only emits a version when the content changed: an equal
     * hash or an older ts is a replay, not a change. */
    if (strcmp(old_hash, v->content_hash) == 0 || v->ts_ms < captured) {
      *out = MCPR__DUPLICATE;
      PQclear(r);
      return STEP_OK;
    }
  }
  change_ctx c = {w, v, old_hash, ts, NULL};
  int rc = old_hash ? mcpr__schema_diff(v->method, old_payload, v->payload, insert_change, &c)
                    : insert_change(&c, "initial", NULL);
  PQclear(r);
  if (c.failed)
    return fail(w, c.failed, st, err, "writing a schema change");
  if (rc < 0) {
    *st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory comparing schema versions");
    return STEP_FAIL;
  }
  const char *up[6] = {v->proxy, v->upstream_url, v->method, v->payload, ts, v->content_hash};
  r = run(w, P_UPSERT_SCHEMA, up);
  if (!ok(r))
    return fail(w, r, st, err, "writing a schema snapshot");
  PQclear(r);
  *out = MCPR__WRITTEN;
  return STEP_OK;
}

/* ---------- one batch ---------- */

/* The batch's events of one kind within [from, to), in order, with their
 * positions; returns how many. */
static size_t gather(mcpr_store_event_kind kind, const mcpr_store_event *const *events,
                     size_t from, size_t to, const mcpr_store_event **ev, size_t *pos) {
  size_t m = 0;
  for (size_t i = from; i < to; i++)
    if (events[i]->kind == kind) {
      ev[m] = events[i];
      pos[m++] = i;
    }
  return m;
}

/* One statement per kind, in this order. */
static const mcpr_store_event_kind KINDS[3] = {
    MCPR_STORE_EVENT_SESSION, MCPR_STORE_EVENT_REQUEST, MCPR_STORE_EVENT_SESSION_CLOSED};
static const int KIND_SQL[3] = {P_INSERT_SESSIONS, P_INSERT_REQUESTS, P_CLOSE_SESSIONS};

static bool build_kind(writer *w, int k, const mcpr_store_event *const *ev, const size_t *pos,
                       size_t m, bool *has_session, const char **params) {
  switch (k) {
  case 0:
    return build_sessions(w, ev, pos, m, params);
  case 1:
    return build_requests(w, ev, pos, m, has_session, params);
  default:
    return build_closes(w, ev, pos, m, params);
  }
}

static bool take_kind(writer *w, int k, const PGresult *r, const mcpr_store_event *const *ev,
                      size_t m, mcpr__outcome *out) {
  if (k == 2) {
    take_closes(r, m, out);
    return true;
  }
  return take_ids(w, r, KINDS[k], ev, m, out);
}

static step oom(mcpr_status *st, mcpr_error *err) {
  *st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory writing a batch");
  return STEP_FAIL;
}

/* Events [from, to) one statement per kind, waiting for each (careful
 * mode: one event in its savepoint). */
static step write_events(writer *w, const mcpr_store_event *const *events, size_t from, size_t to,
                         mcpr__outcome *outcomes, bool *has_session, mcpr_status *st,
                         mcpr_error *err) {
  step res = STEP_OK;
  for (int k = 0; k < 3 && res == STEP_OK; k++) {
    size_t m = gather(KINDS[k], events, from, to, w->kind_ev, w->kind_pos);
    if (m == 0)
      continue;
    const char *params[REQ_COLS];
    if (!build_kind(w, k, w->kind_ev, w->kind_pos, m, has_session, params))
      return oom(st, err);
    PGresult *r = run(w, KIND_SQL[k], params);
    if (!ok(r))
      return fail(w, r, st, err, "writing a batch");
    bool mem = take_kind(w, k, r, w->kind_ev, m, w->kind_out);
    PQclear(r);
    if (!mem)
      return oom(st, err);
    for (size_t i = 0; i < m; i++)
      outcomes[w->kind_pos[i]] = w->kind_out[i];
  }
  size_t m = gather(MCPR_STORE_EVENT_SCHEMA_VERSION, events, from, to, w->kind_ev, w->kind_pos);
  for (size_t i = 0; i < m && res == STEP_OK; i++)
    res = schema_version(w, &w->kind_ev[i]->u.schema_version, &outcomes[w->kind_pos[i]], st, err);
  return res;
}

/* What one statement of a pipeline was, to read its result. */
typedef struct pipe_cmd {
  int kind;     /* 0..2: a kind's statement (take_kind); -1: no rows to take */
  size_t m;     /* its events */
  size_t first; /* where they are in w->kind_ev / kind_pos / kind_out */
} pipe_cmd;

#define PIPE_MAX 10

static bool send_fixed(writer *w, const char *sql) {
  return PQsendQueryParams(w->conn, sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
}

static bool send_prepared(writer *w, int which, const char *const *params) {
  return PQsendQueryPrepared(w->conn, SQL[which].name, SQL[which].nparams, params, NULL, NULL,
                             0) == 1;
}

/* Read the results of the n statements sent and the sync; the first
 * failure is returned (the server aborts the statements after it). */
static step pipe_read(writer *w, const pipe_cmd *cmds, int n, mcpr__outcome *outcomes,
                      mcpr_status *st, mcpr_error *err) {
  step res = STEP_OK;
  for (int i = 0; i < n; i++) {
    PGresult *r = PQgetResult(w->conn);
    if (!r) {
      if (res == STEP_OK)
        res = fail(w, NULL, st, err, "writing a batch");
      break;
    }
    if (PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
      PQclear(r);
    } else if (!ok(r)) {
      if (res == STEP_OK)
        res = fail(w, r, st, err, "writing a batch");
      else
        PQclear(r);
    } else {
      const pipe_cmd *c = &cmds[i];
      if (res == STEP_OK && c->kind >= 0) {
        if (!take_kind(w, c->kind, r, w->kind_ev + c->first, c->m, w->kind_out + c->first))
          res = oom(st, err);
        else
          for (size_t k = 0; k < c->m; k++)
            outcomes[w->kind_pos[c->first + k]] = w->kind_out[c->first + k];
      }
      PQclear(r);
    }
    r = PQgetResult(w->conn); /* the NULL that ends this statement's results */
    PQclear(r);
  }
  /* Up to the sync, however the statements ended (bounded: a broken
   * connection ends it). */
  for (int guard = 0; guard < 4 * PIPE_MAX && PQstatus(w->conn) == CONNECTION_OK; guard++) {
    PGresult *r = PQgetResult(w->conn);
    if (!r)
      continue;
    bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (sync)
      break;
  }
  PQexitPipelineMode(w->conn);
  return res;
}

/*
 * The fast path, in libpq's pipeline mode: BEGIN, the session, request
 * and close statements, the session counters and COMMIT are sent at once
 * and their results read after: one round trip for the batch. A batch
 * with schema versions (they read the stored snapshot and diff it in C)
 * commits in a second step after them.
 */
static step write_fast(writer *w, const mcpr_store_event *const *events, size_t n,
                       mcpr__outcome *outcomes, mcpr_status *st, mcpr_error *err) {
  bool has_session = false;
  pipe_cmd cmds[PIPE_MAX];
  int nc = 0;
  size_t used = 0;
  size_t schemas = 0;
  for (size_t i = 0; i < n; i++)
    schemas += events[i]->kind == MCPR_STORE_EVENT_SCHEMA_VERSION;
  if (!PQenterPipelineMode(w->conn))
    return fail(w, NULL, st, err, "starting a pipeline");
  bool sent = send_fixed(w, "BEGIN") && send_fixed(w, MCPR__PG_FOLLOW_LOCK); /* pg.h */
  cmds[nc++] = (pipe_cmd){.kind = -1};
  cmds[nc++] = (pipe_cmd){.kind = -1};
  for (int k = 0; k < 3 && sent; k++) {
    size_t m = gather(KINDS[k], events, 0, n, w->kind_ev + used, w->kind_pos + used);
    if (m == 0)
      continue;
    const char *params[REQ_COLS];
    if (!build_kind(w, k, w->kind_ev + used, w->kind_pos + used, m, &has_session, params)) {
      PQexitPipelineMode(w->conn);
      return oom(st, err);
    }
    sent = send_prepared(w, KIND_SQL[k], params); /* libpq copies the parameters */
    cmds[nc++] = (pipe_cmd){.kind = k, .m = m, .first = used};
    used += m;
  }
  bool finish = schemas == 0;
  if (finish && has_session && sent) {
    sent = send_prepared(w, P_LOCK_SESSIONS, NULL) && send_prepared(w, P_APPLY_SESSIONS, NULL);
    cmds[nc++] = (pipe_cmd){.kind = -1};
    cmds[nc++] = (pipe_cmd){.kind = -1};
  }
  if (finish && sent) {
    sent = send_fixed(w, "COMMIT");
    cmds[nc++] = (pipe_cmd){.kind = -1};
  }
  if (!sent || !PQpipelineSync(w->conn)) {
    step res = fail(w, NULL, st, err, "sending a batch");
    PQexitPipelineMode(w->conn);
    return res;
  }
  step res = pipe_read(w, cmds, nc, outcomes, st, err);
  if (res != STEP_OK || finish)
    return res;
  size_t m = gather(MCPR_STORE_EVENT_SCHEMA_VERSION, events, 0, n, w->kind_ev, w->kind_pos);
  for (size_t i = 0; i < m && res == STEP_OK; i++)
    res = schema_version(w, &w->kind_ev[i]->u.schema_version, &outcomes[w->kind_pos[i]], st, err);
  if (res == STEP_OK && has_session) {
    PGresult *r = run(w, P_LOCK_SESSIONS, NULL);
    if (!ok(r))
      return fail(w, r, st, err, "locking the batch's sessions");
    PQclear(r);
    r = run(w, P_APPLY_SESSIONS, NULL);
    if (!ok(r))
      return fail(w, r, st, err, "counting session calls");
    PQclear(r);
  }
  if (res == STEP_OK) {
    PGresult *r = PQexec(w->conn, "COMMIT");
    if (!ok(r))
      return fail(w, r, st, err, "committing a batch");
    PQclear(r);
  }
  return res;
}

static bool exec_ok(writer *w, const char *sql, mcpr_status *st, mcpr_error *err,
                    const char *doing) {
  PGresult *r = PQexec(w->conn, sql);
  if (ok(r)) {
    PQclear(r);
    return true;
  }
  fail(w, r, st, err, doing);
  return false;
}

/*
 * One attempt in one transaction. careful: each event in a savepoint of
 * its own, so a row error skips that event only. Returns STEP_ROW when a
 * fast attempt met a row error (the caller tries again carefully).
 */
static step attempt(writer *w, const mcpr_store_event *const *events, size_t n,
                    mcpr__outcome *outcomes, bool careful, mcpr_status *st, mcpr_error *err) {
  bool has_session = false;
  step res = STEP_OK;
  if (!careful) {
    res = write_fast(w, events, n, outcomes, st, err);
    goto out;
  }
  if (!exec_ok(w, "BEGIN", st, err, "starting a batch"))
    return STEP_FAIL;
  if (!exec_ok(w, MCPR__PG_FOLLOW_LOCK, st, err, "starting a batch")) {
    res = STEP_FAIL;
    goto out;
  }
  for (size_t i = 0; i < n && res == STEP_OK;) {
    size_t j = i + 1;
    if (careful && !exec_ok(w, "SAVEPOINT mcpr_event", st, err, "writing a batch")) {
      res = STEP_FAIL;
      break;
    }
    mcpr_error row_err = {0};
    res = write_events(w, events, i, j, outcomes, &has_session, st, careful ? &row_err : err);
    if (careful && res == STEP_ROW) {
      outcomes[i] = *st == MCPR_ECONSTRAINT ? MCPR__CONSTRAINT : MCPR__ROW_FAILED;
      res = exec_ok(w, "ROLLBACK TO SAVEPOINT mcpr_event", st, err, "skipping a row")
                ? STEP_OK
                : STEP_FAIL;
    } else if (careful && res == STEP_FAIL && err) {
      *err = row_err;
    }
    if (careful && res == STEP_OK &&
        !exec_ok(w, "RELEASE SAVEPOINT mcpr_event", st, err, "writing a batch"))
      res = STEP_FAIL;
    i = j;
  }
  if (res == STEP_OK && has_session) {
    PGresult *r = run(w, P_LOCK_SESSIONS, NULL);
    if (!ok(r)) {
      res = fail(w, r, st, err, "locking the batch's sessions");
    } else {
      PQclear(r);
      r = run(w, P_APPLY_SESSIONS, NULL);
      res = ok(r) ? (PQclear(r), STEP_OK) : fail(w, r, st, err, "counting session calls");
    }
  }
  if (res == STEP_OK && !exec_ok(w, "COMMIT", st, err, "committing a batch"))
    res = STEP_FAIL;
out:
  if (res != STEP_OK && PQstatus(w->conn) == CONNECTION_OK &&
      PQtransactionStatus(w->conn) != PQTRANS_IDLE)
    mcpr__pg_exec(w->conn, "ROLLBACK");
  return res;
}

static void disconnect(writer *w) {
  PQfinish(w->conn);
  w->conn = NULL;
  w->lock_wait_ms = 0;
  w->prepared = false;
}

/* A usable connection with the temp table and the prepared statements. */
static mcpr_status connect_writer(writer *w, mcpr_error *err) {
  if (w->conn && PQstatus(w->conn) == CONNECTION_OK && w->prepared)
    return MCPR_OK;
  mcpr_status st = MCPR_OK;
  if (!w->conn || PQstatus(w->conn) != CONNECTION_OK) {
    disconnect(w);
    if ((st = mcpr__pg_connect(&w->t, &w->conn, err)) != MCPR_OK)
      return st;
  }
  PGresult *r = PQexec(w->conn, SQL_TEMP);
  for (int i = 0; ok(r) && i < P_COUNT; i++) {
    PQclear(r);
    r = PQprepare(w->conn, SQL[i].name, SQL[i].sql, SQL[i].nparams, NULL);
  }
  if (!ok(r)) {
    st = mcpr__pg_error(w->conn, r, &w->t, err, "preparing the store's statements");
    PQclear(r);
    disconnect(w);
    return st;
  }
  PQclear(r);
  w->prepared = true;
  return MCPR_OK;
}

/* lock_timeout follows the engine's wait per attempt, so a writer never
 * waits on another's locks longer than the engine expects. */
static mcpr_status set_lock_wait(writer *w, int lock_wait_ms, mcpr_error *err) {
  if (lock_wait_ms <= 0 || lock_wait_ms == w->lock_wait_ms)
    return MCPR_OK;
  char v[24];
  snprintf(v, sizeof v, "%dms", lock_wait_ms);
  const char *params[1] = {v};
  PGresult *r = PQexecParams(w->conn, "SELECT set_config('lock_timeout', $1, false)", 1, NULL,
                             params, NULL, NULL, 0);
  mcpr_status st = MCPR_OK;
  if (!ok(r))
    st = mcpr__pg_error(w->conn, r, &w->t, err, "setting the lock timeout");
  else
    w->lock_wait_ms = lock_wait_ms;
  PQclear(r);
  return st;
}

/* Rows another program inserted (or a store's from before the rollups)
 * are counted by the writer too, as the SQLite writer catches up its
 * watermark: CATCH_UP_ROWS after each batch while some are left, else a
 * look every CATCH_UP_LOOK_EVERY batches (one probe of a partial index).
 * Best effort, after the batch's commit: the batch is written whatever
 * this does, and a read counts such rows raw meanwhile. */
#define CATCH_UP_ROWS 2000
#define CATCH_UP_LOOK_EVERY 256

static void catch_up(writer *w) {
  if (w->catch_up_wait > 0) {
    w->catch_up_wait--;
    return;
  }
  int64_t rolled = 0, left = 0;
  mcpr_error ignored = {0};
  if (mcpr__pg_rollup_catch_up(w->conn, &w->t, CATCH_UP_ROWS, &rolled, &left, &ignored) !=
      MCPR_OK)
    left = 0;
  w->catch_up_wait = left > 0 && rolled > 0 ? 0 : CATCH_UP_LOOK_EVERY;
}

/* The pending rollup groups (rollup.h) are compacted after COMPACT_ROWS
 * events written, and folded into the keyed tables after FOLD_ROWS or
 * FOLD_MS, and at close. Reads add what is pending, so these bound what
 * they scan without an index, not what they see. Measured with mcpr-bench
 * write (server CPU a request): folding every 50,000 events in the
 * writer's own thread, 4.8 µs; as now, beside it, 0.51 of SQLite's rate
 * against 0.46. */
#define COMPACT_ROWS 50000
#define FOLD_ROWS 200000
#define FOLD_MS 60000

/*
 * The folder: compactions and folds run on a connection of their own, in
 * a thread of their own, beside the batches (they touch only the pending
 * rows a DELETE took and the keyed tables, which batches never lock), so
 * the server does them on another core while the writer's next batches go
 * in. A round that fails is dropped: the rows stay pending, read as they
 * are, and the next round takes them.
 */
static void *folder_main(void *arg) {
  writer *w = arg;
  PGconn *conn = NULL;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->want && !w->stop)
      pthread_cond_wait(&w->cv, &w->mu);
    if (w->stop)
      break;
    bool keyed = w->want == 2;
    pthread_mutex_unlock(&w->mu);
    mcpr_error ignored = {0};
    if (conn && PQstatus(conn) != CONNECTION_OK) {
      PQfinish(conn);
      conn = NULL;
    }
    int64_t moved = 0;
    if (conn || mcpr__pg_connect(&w->t, &conn, &ignored) == MCPR_OK)
      mcpr__pg_rollup_fold(conn, &w->t, keyed, &moved, &ignored);
    pthread_mutex_lock(&w->mu);
    w->want = 0;
  }
  pthread_mutex_unlock(&w->mu);
  PQfinish(conn);
  return NULL;
}

/* After a batch's commit: hand a compaction or a fold to the folder when
 * one is due and it is idle (else it is due again after the next batch). */
static void fold(writer *w) {
  int64_t t = mcpr__mono_ms();
  bool keyed = w->fold_rows >= FOLD_ROWS || t - w->fold_ms >= FOLD_MS;
  if (w->fold_rows == 0 || (!keyed && w->compact_rows < COMPACT_ROWS) || !w->folder_started)
    return;
  pthread_mutex_lock(&w->mu);
  bool idle = w->want == 0;
  if (idle) {
    w->want = keyed ? 2 : 1;
    pthread_cond_signal(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  if (!idle)
    return;
  w->compact_rows = 0;
  if (keyed) {
    w->fold_rows = 0;
    w->fold_ms = t;
  }
}

/* At close: the folder stopped, whatever is pending is folded on the
 * writer's connection — unless another writer is folding at that moment:
 * then what it did not take stays pending for the next round (reads add
 * it in), rather than writers closing at once waiting on one another. */
static void fold_at_close(writer *w) {
  if (w->folder_started) {
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->folder, NULL);
    w->folder_started = false;
  }
  if (w->fold_rows == 0 || !w->conn || PQstatus(w->conn) != CONNECTION_OK)
    return;
  int64_t moved = 0;
  mcpr_error ignored = {0};
  mcpr__pg_rollup_fold(w->conn, &w->t, true, &moved, &ignored);
}

static mcpr_status write_batch(void *impl, const mcpr_store_event *const *events, size_t n,
                               mcpr__outcome *outcomes, int lock_wait_ms, mcpr_error *err) {
  writer *w = impl;
  if (n > w->kind_cap) {
    const mcpr_store_event **ev = realloc(w->kind_ev, n * sizeof *ev);
    if (ev)
      w->kind_ev = ev;
    mcpr__outcome *out = realloc(w->kind_out, n * sizeof *out);
    if (out)
      w->kind_out = out;
    size_t *pos = realloc(w->kind_pos, n * sizeof *pos);
    if (pos)
      w->kind_pos = pos;
    if (!ev || !out || !pos)
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory writing a batch");
    w->kind_cap = n;
  }
  mcpr_status st = connect_writer(w, err);
  if (st != MCPR_OK)
    return st == MCPR_ENOMEM ? st : MCPR_EIO; /* retried: the server may come back */
  if ((st = set_lock_wait(w, lock_wait_ms, err)) != MCPR_OK)
    goto out;
  st = MCPR_OK;
  step s = attempt(w, events, n, outcomes, false, &st, err);
  if (s == STEP_ROW) {
    st = MCPR_OK;
    s = attempt(w, events, n, outcomes, true, &st, err);
  }
  if (s == STEP_OK) {
    w->fold_rows += (int64_t)n;
    w->compact_rows += (int64_t)n;
    fold(w);
    catch_up(w);
    return MCPR_OK;
  }
  if (st == MCPR_OK || st == MCPR_ECONSTRAINT)
    st = MCPR_ESQL;
out:
  if (PQstatus(w->conn) != CONNECTION_OK) {
    disconnect(w);
    st = MCPR_EIO;
  }
  /* The engine retries EIO for io_retry_limit_ms: a refused login or a
   * missing table is no reason to give up sooner than a lost network. */
  if (st == MCPR_EAUTH || st == MCPR_ENOTFOUND || st == MCPR_ENETWORK)
    st = MCPR_EIO;
  return st;
}

/* How long a retention step waits for a row lock: never worth making
 * events wait; a busy store is tried again at the next look. */
#define RETAIN_LOCK_WAIT_MS 1000

/* One retention step (retention.h). A lock another connection holds
 * (lock_timeout) is no failure: the step is done again at the next look. */
static mcpr_status retain(void *impl, int64_t now_ms, bool *more, mcpr_error *err) {
  writer *w = impl;
  *more = false;
  if (!w->retention)
    return MCPR_OK;
  mcpr_status st = connect_writer(w, err);
  if (st == MCPR_OK)
    st = set_lock_wait(w, RETAIN_LOCK_WAIT_MS, err);
  if (st == MCPR_OK)
    st = mcpr__pg_retention_step(w->retention, w->conn, &w->t, now_ms, more, err);
  if (st != MCPR_OK && PQstatus(w->conn) != CONNECTION_OK)
    disconnect(w);
  return st == MCPR_EBUSY ? MCPR_OK : st;
}

static void writer_close(void *impl) {
  writer *w = impl;
  if (!w)
    return;
  /* What this writer left pending goes to the keyed tables now, so a
   * store no one writes to any more reads no pending rows. */
  fold_at_close(w);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  disconnect(w);
  for (int c = 0; c < REQ_COLS; c++)
    mcpr__buf_release(&w->cols[c]);
  free(w->ids);
  free(w->claimed);
  free(w->kind_ev);
  free(w->kind_out);
  free(w->kind_pos);
  mcpr__pg_retention_free(w->retention);
  mcpr__pg_target_release(&w->t);
  free(w);
}

static mcpr_status writer_open(const char *url, const mcpr_store_options *o, void **impl,
                               mcpr_error *err) {
  *impl = NULL;
  writer *w = calloc(1, sizeof *w);
  if (!w)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  if (o->retention_ms > 0 &&
      !(w->retention = mcpr__pg_retention_new(o->retention_ms, o->keep_errors_ms,
                                              o->rollup_retention_ms))) {
    free(w);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  }
  mcpr_status st = mcpr__pg_target_init(&w->t, url, err);
  if (st != MCPR_OK) {
    mcpr__pg_retention_free(w->retention);
    free(w);
    return st;
  }
  w->fold_ms = mcpr__mono_ms();
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  st = mcpr__pg_connect(&w->t, &w->conn, err);
  if (st == MCPR_OK)
    st = mcpr__pg_migrate(w->conn, &w->t, true, NULL, err);
  if (st == MCPR_OK)
    st = connect_writer(w, err);
  /* Without the folder (no thread to be had), the close folds it all. */
  if (st == MCPR_OK)
    w->folder_started = pthread_create(&w->folder, NULL, folder_main, w) == 0;
  if (st != MCPR_OK) {
    writer_close(w);
    return st;
  }
  *impl = w;
  return MCPR_OK;
}

/* Measured with mcpr-bench write (one writer, server CPU per event):
 * 41 µs at 500 events a batch, 31 µs at 2,000, rollups in the batch. */
#define PG_BATCH_SIZE 2000

const mcpr__store_backend mcpr__pg_store_backend = {
    .name = "postgres",
    .batch_size = PG_BATCH_SIZE,
    .open = writer_open,
    .write_batch = write_batch,
    .note_health = NULL,
    .retain = retain,
    .close = writer_close,
};

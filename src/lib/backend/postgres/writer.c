/*
 * writer.c — the PostgreSQL backend's write side: one batch of store
 * events in one transaction (SPEC §5), for the engine's writer thread
 * (store/writer.c owns batching, retries, backoff and counting).
 *
 * Few round trips. The batch is cut into runs of events of one kind, in
 * order; a run of requests is one INSERT … SELECT FROM unnest(<arrays>)
 * ON CONFLICT (request_id) DO NOTHING, a run of sessions likewise, each
 * with its columns sent as 6–14 array parameters. A batch of requests of
 * existing sessions is five round trips: BEGIN, the insert, the session
 * lock, the counter update, COMMIT. Session closes and schema versions,
 * one or a few per session, take one or a few round trips each.
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres/pg.h"
#include "backend/postgres/postgres.h"
#include "core/buf.h"
#include "core/schema_diff.h"
#include "mcpr/mcpr.h"

enum {
  P_INSERT_REQUESTS,
  P_INSERT_SESSIONS,
  P_CLOSE_SESSION,
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
        {"mcpr_insert_requests", 14,
         "WITH v AS (SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[],"
         " $5::text[], $6::text[], $7::int8[], $8::text[], $9::text[], $10::text[],"
         " $11::int8[], $12::int8[], $13::text[], $14::text[]) WITH ORDINALITY AS"
         " v(request_id, ts, proxy, session_id, method, tool, latency_us, status, error_code,"
         " error_msg, bytes_in, bytes_out, resource_uri, prompt_name, ord)),"
         " ins AS (INSERT INTO requests (request_id, ts, proxy, session_id, method, tool,"
         " latency_us, status, error_code, error_msg, bytes_in, bytes_out, resource_uri,"
         " prompt_name) SELECT request_id, ts, proxy, session_id, method, tool, latency_us,"
         " status, error_code, error_msg, bytes_in, bytes_out, resource_uri, prompt_name"
         " FROM v ORDER BY ord ON CONFLICT (request_id) DO NOTHING"
         " RETURNING request_id, session_id, ts, status),"
         " d AS (INSERT INTO mcpr_session_delta (session_id, calls, errors, last_ts)"
         " SELECT i.session_id, count(*), count(*) FILTER (WHERE i.status <> 'ok'), max(i.ts)"
         " FROM ins i WHERE i.session_id IS NOT NULL"
         " AND EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = i.session_id)"
         " GROUP BY i.session_id)"
         " SELECT request_id FROM ins"},
    [P_INSERT_SESSIONS] =
        {"mcpr_insert_sessions", 6,
         "INSERT INTO sessions (session_id, proxy, started_at, last_seen_at, client_name,"
         " client_version, client_platform)"
         " SELECT session_id, proxy, started_at, started_at, client_name, client_version,"
         " client_platform FROM unnest($1::text[], $2::text[], $3::int8[], $4::text[],"
         " $5::text[], $6::text[]) WITH ORDINALITY AS v(session_id, proxy, started_at,"
         " client_name, client_version, client_platform, ord) ORDER BY ord"
         " ON CONFLICT (session_id) DO NOTHING RETURNING session_id"},
    [P_CLOSE_SESSION] =
        {"mcpr_close_session", 2,
         "WITH u AS (UPDATE sessions SET ended_at = $2::int8"
         " WHERE session_id = $1::text AND ended_at IS NULL RETURNING 1)"
         " SELECT (SELECT count(*) FROM u),"
         " EXISTS (SELECT 1 FROM sessions WHERE session_id = $1::text)"},
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

static const char SQL_TEMP[] =
    "CREATE TEMP TABLE IF NOT EXISTS mcpr_session_delta (session_id TEXT COLLATE \"C\" NOT NULL,"
    " calls BIGINT NOT NULL, errors BIGINT NOT NULL, last_ts BIGINT NOT NULL)"
    " ON COMMIT DELETE ROWS";

#define REQ_COLS 14
#define SES_COLS 6

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
} writer;

/* What one step came to: go on, a row of its own failed (careful mode
 * skips it), or the batch failed (status in *st). */
typedef enum step { STEP_OK, STEP_ROW, STEP_FAIL } step;

/* ---------- array parameters ---------- */

static bool arr_start(mcpr__buf *b) {
  b->n = 0;
  return mcpr__buf_add(b, "{", 1);
}

static bool arr_sep(mcpr__buf *b) { return b->n <= 1 || mcpr__buf_add(b, ",", 1); }

static bool arr_text(mcpr__buf *b, const char *v) {
  if (!arr_sep(b))
    return false;
  if (!v)
    return mcpr__buf_add(b, "NULL", 4);
  if (!mcpr__buf_add(b, "\"", 1))
    return false;
  const char *run = v;
  for (const char *p = v; *p; p++) {
    if (*p == '"' || *p == '\\') {
      if (!mcpr__buf_add(b, run, (size_t)(p - run)) || !mcpr__buf_add(b, "\\", 1))
        return false;
      run = p;
    }
  }
  return mcpr__buf_add(b, run, strlen(run)) && mcpr__buf_add(b, "\"", 1);
}

static bool arr_int(mcpr__buf *b, int64_t v, bool nullable) {
  if (!arr_sep(b))
    return false;
  if (nullable && v < 0)
    return mcpr__buf_add(b, "NULL", 4);
  char num[24];
  int n = snprintf(num, sizeof num, "%lld", (long long)v);
  return mcpr__buf_add(b, num, (size_t)n);
}

static bool arr_end(mcpr__buf *b) { return mcpr__buf_add(b, "}", 1); }

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
  qsort(w->ids, n, sizeof *w->ids, cmp_id);
  return true;
}

/* The first event with an id the run returned was written; any other
 * (a repeat within the batch, or one already stored) is a duplicate. */
static mcpr__outcome ids_claim(writer *w, size_t n, const char *id) {
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

static step insert_requests(writer *w, const mcpr_store_event *const *ev, size_t n,
                            mcpr__outcome *out, bool *has_session, mcpr_status *st,
                            mcpr_error *err) {
  bool mem = true;
  for (int c = 0; c < REQ_COLS; c++)
    mem = mem && arr_start(&w->cols[c]);
  for (size_t i = 0; i < n && mem; i++) {
    const mcpr_request_event *q = &ev[i]->u.request;
    *has_session = *has_session || q->session_id;
    mem = arr_text(&w->cols[0], q->request_id) && arr_int(&w->cols[1], q->ts_ms, false) &&
          arr_text(&w->cols[2], q->proxy) && arr_text(&w->cols[3], q->session_id) &&
          arr_text(&w->cols[4], q->method) && arr_text(&w->cols[5], q->tool) &&
          arr_int(&w->cols[6], q->latency_us, false) &&
          arr_text(&w->cols[7], mcpr_request_status_str(q->status)) &&
          arr_text(&w->cols[8], q->error_code) && arr_text(&w->cols[9], q->error_msg) &&
          arr_int(&w->cols[10], q->bytes_in, true) && arr_int(&w->cols[11], q->bytes_out, true) &&
          arr_text(&w->cols[12], q->resource_uri) && arr_text(&w->cols[13], q->prompt_name);
  }
  const char *params[REQ_COLS];
  for (int c = 0; c < REQ_COLS && mem; c++) {
    mem = arr_end(&w->cols[c]);
    params[c] = w->cols[c].p;
  }
  if (!mem) {
    *st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory writing a batch");
    return STEP_FAIL;
  }
  PGresult *r = run(w, P_INSERT_REQUESTS, params);
  if (!ok(r))
    return fail(w, r, st, err, "inserting requests");
  size_t got = (size_t)PQntuples(r);
  if (!ids_take(w, r)) {
    PQclear(r);
    *st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory writing a batch");
    return STEP_FAIL;
  }
  for (size_t i = 0; i < n; i++)
    out[i] = ids_claim(w, got, ev[i]->u.request.request_id);
  PQclear(r);
  return STEP_OK;
}

static step insert_sessions(writer *w, const mcpr_store_event *const *ev, size_t n,
                            mcpr__outcome *out, mcpr_status *st, mcpr_error *err) {
  bool mem = true;
  for (int c = 0; c < SES_COLS; c++)
    mem = mem && arr_start(&w->cols[c]);
  for (size_t i = 0; i < n && mem; i++) {
    const mcpr_session_event *s = &ev[i]->u.session;
    mem = arr_text(&w->cols[0], s->session_id) && arr_text(&w->cols[1], s->proxy) &&
          arr_int(&w->cols[2], s->started_at_ms, false) &&
          arr_text(&w->cols[3], s->client_name) && arr_text(&w->cols[4], s->client_version) &&
          arr_text(&w->cols[5], s->client_platform);
  }
  const char *params[SES_COLS];
  for (int c = 0; c < SES_COLS && mem; c++) {
    mem = arr_end(&w->cols[c]);
    params[c] = w->cols[c].p;
  }
  if (!mem) {
    *st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory writing a batch");
    return STEP_FAIL;
  }
  PGresult *r = run(w, P_INSERT_SESSIONS, params);
  if (!ok(r))
    return fail(w, r, st, err, "inserting sessions");
  size_t got = (size_t)PQntuples(r);
  if (!ids_take(w, r)) {
    PQclear(r);
    *st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory writing a batch");
    return STEP_FAIL;
  }
  for (size_t i = 0; i < n; i++)
    out[i] = ids_claim(w, got, ev[i]->u.session.session_id);
  PQclear(r);
  return STEP_OK;
}

static step close_session(writer *w, const mcpr_session_closed_event *c, mcpr__outcome *out,
                          mcpr_status *st, mcpr_error *err) {
  char ended[24];
  snprintf(ended, sizeof ended, "%lld", (long long)c->ended_at_ms);
  const char *params[2] = {c->session_id, ended};
  PGresult *r = run(w, P_CLOSE_SESSION, params);
  if (!ok(r))
    return fail(w, r, st, err, "closing a session");
  bool closed = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
  bool known = PQgetvalue(r, 0, 1)[0] == 't';
  *out = closed ? MCPR__WRITTEN : known ? MCPR__DUPLICATE : MCPR__UNKNOWN_SESSION;
  PQclear(r);
  return STEP_OK;
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

/* Events [i, j) of one kind (a run; in careful mode, one event). */
static step write_run(writer *w, const mcpr_store_event *const *events, size_t i, size_t j,
                      mcpr__outcome *outcomes, bool *has_session, mcpr_status *st,
                      mcpr_error *err) {
  switch (events[i]->kind) {
  case MCPR_STORE_EVENT_REQUEST:
    return insert_requests(w, events + i, j - i, outcomes + i, has_session, st, err);
  case MCPR_STORE_EVENT_SESSION:
    return insert_sessions(w, events + i, j - i, outcomes + i, st, err);
  case MCPR_STORE_EVENT_SESSION_CLOSED:
    for (size_t k = i; k < j; k++) {
      step s = close_session(w, &events[k]->u.session_closed, &outcomes[k], st, err);
      if (s != STEP_OK)
        return s;
    }
    return STEP_OK;
  case MCPR_STORE_EVENT_SCHEMA_VERSION:
    for (size_t k = i; k < j; k++) {
      step s = schema_version(w, &events[k]->u.schema_version, &outcomes[k], st, err);
      if (s != STEP_OK)
        return s;
    }
    return STEP_OK;
  }
  *st = mcpr_error_set(err, MCPR_EINVAL, "internal: unknown event kind %d", (int)events[i]->kind);
  return STEP_FAIL;
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
  if (!exec_ok(w, "BEGIN", st, err, "starting a batch"))
    return STEP_FAIL;
  for (size_t i = 0; i < n && res == STEP_OK;) {
    size_t j = i + 1;
    while (!careful && j < n && events[j]->kind == events[i]->kind)
      j++;
    if (careful && !exec_ok(w, "SAVEPOINT mcpr_event", st, err, "writing a batch")) {
      res = STEP_FAIL;
      break;
    }
    mcpr_error row_err = {0};
    res = write_run(w, events, i, j, outcomes, &has_session, st, careful ? &row_err : err);
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

static mcpr_status write_batch(void *impl, const mcpr_store_event *const *events, size_t n,
                               mcpr__outcome *outcomes, int lock_wait_ms, mcpr_error *err) {
  writer *w = impl;
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
  if (s == STEP_OK)
    return MCPR_OK;
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

static void writer_close(void *impl) {
  writer *w = impl;
  if (!w)
    return;
  disconnect(w);
  for (int c = 0; c < REQ_COLS; c++)
    mcpr__buf_release(&w->cols[c]);
  free(w->ids);
  free(w->claimed);
  mcpr__pg_target_release(&w->t);
  free(w);
}

static mcpr_status writer_open(const char *url, const mcpr_store_options *o, void **impl,
                               mcpr_error *err) {
  (void)o;
  *impl = NULL;
  writer *w = calloc(1, sizeof *w);
  if (!w)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  mcpr_status st = mcpr__pg_target_init(&w->t, url, err);
  if (st != MCPR_OK) {
    free(w);
    return st;
  }
  st = mcpr__pg_connect(&w->t, &w->conn, err);
  if (st == MCPR_OK)
    st = mcpr__pg_migrate(w->conn, &w->t, true, NULL, err);
  if (st == MCPR_OK)
    st = connect_writer(w, err);
  if (st != MCPR_OK) {
    writer_close(w);
    return st;
  }
  *impl = w;
  return MCPR_OK;
}

const mcpr__store_backend mcpr__pg_store_backend = {
    .name = "postgres",
    .open = writer_open,
    .write_batch = write_batch,
    .note_health = NULL,
    .close = writer_close,
};

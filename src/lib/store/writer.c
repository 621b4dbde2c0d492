/*
 * writer.c — the store's writer thread (SPEC §5).
 *
 * One thread owns the SQLite connection. It takes events off the queue
 * into a batch, and commits the batch when it holds batch_size events, when
 * its first event has waited flush_interval_ms, when a flush() asks, or at
 * close. A batch is one BEGIN IMMEDIATE … COMMIT with statements prepared
 * once and reused.
 *
 * A batch is never thrown away because the database said no:
 *   - busy/locked (another process writing, a vacuum): roll back, back off
 *     and retry the whole batch, without limit;
 *   - I/O error, full disk, read-only: roll back, back off and retry for up
 *     to io_retry_limit_ms, then count the batch's events as failed by
 *     cause (the only way events are lost, and never silently).
 * Per-row problems (a constraint) skip that row only, counted.
 *
 * Session counters are summed per session within the batch and applied
 * with one UPDATE per session at the end of it, in the same transaction,
 * which gives the same rows as one UPDATE per request. A session insert
 * first applies what is pending, so a request seen before its session's
 * insert counts exactly as it would have row by row (not at all). A
 * duplicate request_id is skipped and counts nothing.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "mcpr/mcpr.h"
#include "store/db.h"
#include "store/schema_diff.h"
#include "store/store_internal.h"

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
  STMT_COUNT
};

static const char *const STMT_SQL[STMT_COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_INSERT_REQUEST] =
        "INSERT INTO requests (request_id, ts, proxy, session_id, method, tool,"
        " latency_us, status, error_code, error_msg, bytes_in, bytes_out,"
        " resource_uri, prompt_name)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        " ON CONFLICT(request_id) DO NOTHING",
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
};

/* What became of one event in the attempt under way. */
typedef enum {
  OUT_WRITTEN,
  OUT_DUPLICATE,
  OUT_CONSTRAINT,
  OUT_OTHER,
} outcome;

typedef struct session_sum {
  const char *session_id; /* borrowed from an item of the batch */
  int64_t calls, errors, last_ts;
} session_sum;

typedef struct writer {
  mcpr_store *s;
  sqlite3_stmt *stmt[STMT_COUNT];
  void **batch; /* queue slots, in order */
  outcome *outcomes;
  size_t n;
  int64_t first_at_ms; /* monotonic time the batch's first event was taken */
  /* Open-addressing table of pending session sums, cleared per attempt. */
  session_sum *sums;
  size_t sums_cap; /* power of two, > 2 × batch_size */
  size_t *sums_used; /* indexes in use, to clear and apply in order */
  size_t sums_n;
} writer;



static bool is_busy(int rc) { return (rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED; }

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
static int apply(writer *w, const mcpr_store_event *e, outcome *out) {
  sqlite3 *db = w->s->db;
  int rc;
  *out = OUT_WRITTEN;
  switch (e->kind) {
  case MCPR_STORE_EVENT_REQUEST: {
    const mcpr_request_event *r = &e->u.request;
    sqlite3_stmt *st = w->stmt[STMT_INSERT_REQUEST];
    sqlite3_bind_text(st, 1, r->request_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->ts_ms);
    sqlite3_bind_text(st, 3, r->proxy, -1, SQLITE_STATIC);
    bind_text(st, 4, r->session_id);
    sqlite3_bind_text(st, 5, r->method, -1, SQLITE_STATIC);
    bind_text(st, 6, r->tool);
    sqlite3_bind_int64(st, 7, r->latency_us);
    sqlite3_bind_text(st, 8, mcpr_request_status_str(r->status), -1, SQLITE_STATIC);
    bind_text(st, 9, r->error_code);
    bind_text(st, 10, r->error_msg);
    bind_opt_int(st, 11, r->bytes_in);
    bind_opt_int(st, 12, r->bytes_out);
    bind_text(st, 13, r->resource_uri);
    bind_text(st, 14, r->prompt_name);
    rc = run(st);
    if (rc == SQLITE_DONE && sqlite3_changes(db) == 0)
      *out = OUT_DUPLICATE;
    else if (rc == SQLITE_DONE && r->session_id)
      sums_add(w, r->session_id, r->status != MCPR_REQUEST_OK, r->ts_ms);
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
      *out = OUT_DUPLICATE;
    break;
  }
  case MCPR_STORE_EVENT_SESSION_CLOSED: {
    sqlite3_stmt *st = w->stmt[STMT_CLOSE_SESSION];
    sqlite3_bind_text(st, 1, e->u.session_closed.session_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, e->u.session_closed.ended_at_ms);
    rc = run(st);
    /* Already closed, or never seen: nothing changed. */
    if (rc == SQLITE_DONE && sqlite3_changes(db) == 0)
      *out = OUT_DUPLICATE;
    break;
  }
  case MCPR_STORE_EVENT_SCHEMA_VERSION: {
    bool dup = false;
    rc = apply_schema_version(w, &e->u.schema_version, &dup);
    if (rc == SQLITE_DONE && dup)
      *out = OUT_DUPLICATE;
    break;
  }
  default:
    rc = SQLITE_MISUSE;
  }
  if (rc != SQLITE_DONE && is_row_error(rc)) {
    *out = (rc & 0xFF) == SQLITE_CONSTRAINT ? OUT_CONSTRAINT : OUT_OTHER;
    rc = SQLITE_DONE;
  }
  return rc;
}

/* ---------- one batch ---------- */

static int attempt_locked(writer *w);

/* One try at the batch, holding the store's commit lock (db.h) so no
 * other mcpr connection checkpoints while this one commits. */
static int attempt(writer *w) {
  mcpr__commit_lock(w->s->commit_lock_fd);
  int rc = attempt_locked(w);
  mcpr__commit_unlock(w->s->commit_lock_fd);
  return rc;
}

static int attempt_locked(writer *w) {
  sqlite3 *db = w->s->db;
  int rc = run(w->stmt[STMT_BEGIN]);
  if (rc != SQLITE_DONE)
    return rc;
  for (size_t i = 0; i < w->n && rc == SQLITE_DONE; i++)
    rc = apply(w, &mcpr__slot_item(w->batch[i])->event, &w->outcomes[i]);
  if (rc == SQLITE_DONE)
    rc = sums_apply(w);
  if (rc == SQLITE_DONE)
    rc = run(w->stmt[STMT_COMMIT]);
  if (rc != SQLITE_DONE) {
    sums_clear(w);
    if (!sqlite3_get_autocommit(db))
      run(w->stmt[STMT_ROLLBACK]);
  }
  return rc;
}

static void note_error(mcpr_store *s, mcpr_status st, const char *what, const char *detail) {
  pthread_mutex_lock(&s->lock);
  s->last_error = st;
  snprintf(s->last_error_message, sizeof s->last_error_message, "%s: %s", what, detail);
  s->last_error_at_ms = mcpr_now_ms();
  pthread_mutex_unlock(&s->lock);
}

static void finish_batch(writer *w) {
  mcpr_store *s = w->s;
  uint64_t n = w->n;
  for (size_t i = 0; i < w->n; i++)
    mcpr__slot_free(w->batch[i]);
  mcpr__queue_release(&s->queue, w->n);
  w->n = 0;
  pthread_mutex_lock(&s->lock);
  atomic_fetch_add(&s->finished, n);
  pthread_cond_broadcast(&s->done_cv);
  pthread_mutex_unlock(&s->lock);
}

static void fail_batch(writer *w, mcpr_status cause) {
  mcpr_store *s = w->s;
  _Atomic uint64_t *c = cause == MCPR_EDISKFULL ? &s->failed_disk_full : &s->failed_io;
  atomic_fetch_add(c, w->n);
  pthread_mutex_lock(&s->lock);
  if (s->first_failure == MCPR_OK)
    s->first_failure = cause;
  pthread_mutex_unlock(&s->lock);
  finish_batch(w);
}

static void write_batch(writer *w) {
  mcpr_store *s = w->s;
  int64_t io_since_ms = 0;
  unsigned attempt_no = 0, seed = mcpr__backoff_seed(w);
  for (;;) {
    int rc = attempt(w);
    if (rc == SQLITE_DONE) {
      uint64_t written = 0, dup = 0, constraint = 0, other = 0;
      for (size_t i = 0; i < w->n; i++) {
        switch (w->outcomes[i]) {
        case OUT_WRITTEN: written++; break;
        case OUT_DUPLICATE: dup++; break;
        case OUT_CONSTRAINT: constraint++; break;
        case OUT_OTHER: other++; break;
        }
      }
      atomic_fetch_add(&s->written, written);
      atomic_fetch_add(&s->duplicates, dup);
      atomic_fetch_add(&s->batches, 1);
      if (constraint || other) {
        atomic_fetch_add(&s->failed_constraint, constraint);
        atomic_fetch_add(&s->failed_other, other);
        note_error(s, MCPR_ECONSTRAINT, "rows skipped", "a row broke a constraint");
        pthread_mutex_lock(&s->lock);
        if (s->first_failure == MCPR_OK)
          s->first_failure = MCPR_ECONSTRAINT;
        pthread_mutex_unlock(&s->lock);
      }
      finish_batch(w);
      return;
    }
    mcpr_status st = mcpr__db_status(rc);
    atomic_fetch_add(&s->retries, 1);
    note_error(s, st, "writing a batch", sqlite3_errstr(rc));
    if (is_busy(rc)) {
      atomic_fetch_add(&s->busy_waits, 1);
    } else {
      int64_t now = mcpr__mono_ms();
      if (!io_since_ms)
        io_since_ms = now;
      if (now - io_since_ms >= (int64_t)s->opts.io_retry_limit_ms) {
        fail_batch(w, st);
        return;
      }
    }
    mcpr__sleep_ms(mcpr__backoff_ms(5, 1000, attempt_no++, &seed));
  }
}

/* ---------- the loop ---------- */

static bool closing_and_quiet(mcpr_store *s) {
  uint64_t f = atomic_load(&s->inflight);
  return (f & MCPR__CLOSING_BIT) && (f & ~MCPR__CLOSING_BIT) == 0;
}

static void wait_for_work(mcpr_store *s, int64_t until_ms) {
  if (until_ms <= mcpr__mono_ms())
    return;
  struct timespec ts = mcpr__mono_timespec(until_ms);
  pthread_mutex_lock(&s->lock);
  if (!atomic_exchange(&s->wake, false))
    pthread_cond_timedwait(&s->work_cv, &s->lock, &ts);
  atomic_store(&s->wake, false);
  pthread_mutex_unlock(&s->lock);
}

static bool writer_init(writer *w, mcpr_store *s) {
  memset(w, 0, sizeof *w);
  w->s = s;
  size_t bs = s->opts.batch_size;
  w->batch = calloc(bs, sizeof *w->batch);
  w->outcomes = calloc(bs, sizeof *w->outcomes);
  w->sums_cap = 16;
  while (w->sums_cap < 2 * bs + 1)
    w->sums_cap <<= 1;
  w->sums = calloc(w->sums_cap, sizeof *w->sums);
  w->sums_used = calloc(bs, sizeof *w->sums_used);
  if (!w->batch || !w->outcomes || !w->sums || !w->sums_used)
    return false;
  for (int i = 0; i < STMT_COUNT; i++) {
    int rc = sqlite3_prepare_v3(s->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &w->stmt[i], NULL);
    if (rc != SQLITE_OK) {
      note_error(s, mcpr__db_status(rc), "preparing statements", sqlite3_errmsg(s->db));
      return false;
    }
  }
  return true;
}

static void writer_release(writer *w) {
  for (int i = 0; i < STMT_COUNT; i++)
    sqlite3_finalize(w->stmt[i]);
  free(w->batch);
  free(w->outcomes);
  free(w->sums);
  free(w->sums_used);
}

/* Without statements nothing can be written: count every event as failed
 * (never silently) until close. */
static void run_failed(writer *w) {
  mcpr_store *s = w->s;
  for (;;) {
    void *slot;
    uint64_t n = 0;
    while ((slot = mcpr__queue_read(&s->queue))) {
      mcpr__slot_free(slot);
      mcpr__queue_release(&s->queue, 1);
      n++;
    }
    if (n) {
      atomic_fetch_add(&s->failed_other, n);
      pthread_mutex_lock(&s->lock);
      if (s->first_failure == MCPR_OK)
        s->first_failure = MCPR_ESQL;
      atomic_fetch_add(&s->finished, n);
      pthread_cond_broadcast(&s->done_cv);
      pthread_mutex_unlock(&s->lock);
    }
    if (closing_and_quiet(s) && mcpr__queue_depth(&s->queue) == 0)
      return;
    wait_for_work(s, mcpr__mono_ms() + 50);
  }
}

void *mcpr__writer_main(void *arg) {
  mcpr_store *s = arg;
  writer w;
  pthread_setname_np(pthread_self(), "mcpr-writer");
  if (!writer_init(&w, s)) {
    run_failed(&w);
    goto out;
  }
  size_t bs = s->opts.batch_size;
  for (;;) {
    void *slot;
    while (w.n < bs && (slot = mcpr__queue_read(&s->queue))) {
      if (w.n == 0)
        w.first_at_ms = mcpr__mono_ms();
      w.batch[w.n++] = slot;
    }
    bool closing = closing_and_quiet(s);
    uint64_t taken = atomic_load(&s->finished) + w.n;
    bool flush_wanted = atomic_load(&s->flush_target) > atomic_load(&s->finished);
    int64_t now = mcpr__mono_ms();
    if (w.n == bs ||
        (w.n > 0 && (closing || flush_wanted ||
                     now - w.first_at_ms >= (int64_t)s->opts.flush_interval_ms))) {
      write_batch(&w);
      continue;
    }
    /* Claimed but not yet published cells: their producer is a few
     * instructions from publishing; look again very soon. */
    bool unpublished = atomic_load(&s->queue.head) > taken;
    if (w.n == 0 && closing && !unpublished)
      break;
    if (unpublished && (closing || flush_wanted)) {
      sched_yield();
      continue;
    }
    /* Idle: look again at a quarter of the interval, so an event waits
     * at most 1.25 intervals without any wake-up from the hot path. */
    int64_t idle = s->opts.flush_interval_ms / 4 ? s->opts.flush_interval_ms / 4 : 1;
    int64_t until = w.n > 0 ? w.first_at_ms + s->opts.flush_interval_ms : now + idle;
    wait_for_work(s, until);
  }
out:
  writer_release(&w);
  pthread_mutex_lock(&s->lock);
  atomic_store(&s->writer_exited, true);
  pthread_cond_broadcast(&s->done_cv);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/*
 * rollup_build.c — building the rollups of a store that holds many rows
 * above their watermark (issue 15): a store the original mcpr wrote, or one
 * of ours from before the rollups. `mcpr store rollup` runs it
 * (mcpr_query_rollup); see rollup.h for what the rollups are.
 *
 * The build is a series of chunks, each one short write transaction under
 * the store's commit lock (db.h) that rolls up the next rows above the
 * watermark and moves it (mcpr__rollup_catch_up): a writer (`mcpr ingest`,
 * `mcpr proxy run`, the original) keeps writing between two chunks, a
 * kill -9 loses at most the chunk in progress (the next build goes on from
 * the watermark), and reads stay exact all along — they read the rows
 * above the watermark raw.
 *
 * A chunk's size follows the time the last one held the lock, aiming at
 * BUILD_LOCK_TARGET_MS, and never exceeds MCPR__ROLLUP_BUILD_CHUNK_MAX
 * rows, so that one chunk on a stalled, loaded machine stays near the
 * 100 ms the issue allows. Between chunks the lock is left free for
 * BUILD_PAUSE_MS: flock() is not fair, and a lock taken again at once would
 * starve a writer waiting for it.
 *
 * Then the indexes on requests a big file lacked, if any: the open leaves
 * them out (db.c), SQLite cannot build one in chunks, so each is one long
 * transaction, announced through the progress function. On the original's
 * layout there are none: it has every index this project reads by, under
 * the same names.
 */
#include <time.h>

#include "backend/sqlite/db.h"
#include "backend/sqlite/rollup.h"
#include "core/clock.h"

#define BUILD_LOCK_TARGET_MS 40
#define BUILD_CHUNK_FIRST 5000
#define BUILD_CHUNK_MIN 1000
#define BUILD_PAUSE_MS 3
/* How long one chunk waits for the commit lock (a writer holds it for one
 * batch at a time) before the build gives up. */
#define BUILD_LOCK_WAIT_MS 60000

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool is_busy(int rc) {
  return (rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED;
}

/* One chunk of at most rows rows, under the lock; *held_us: from taking the
 * lock to releasing it. An SQLite code; SQLITE_OK when it committed. */
static int build_chunk(sqlite3 *db, mcpr__rollup *r, int lock_fd, int64_t rows, int64_t *rolled,
                       int64_t *left, int64_t *held_us) {
  int64_t t0 = mono_us();
  int rc = mcpr__db_exec(db, "BEGIN IMMEDIATE");
  if (rc == SQLITE_OK) {
    rc = mcpr__rollup_catch_up(r, rows, false, rolled, left);
    rc = rc == SQLITE_DONE ? mcpr__db_exec(db, "COMMIT") : rc;
    if (rc != SQLITE_OK)
      mcpr__db_exec(db, "ROLLBACK");
  }
  mcpr__commit_unlock(lock_fd);
  *held_us = mono_us() - t0;
  return rc;
}

static int64_t next_chunk(int64_t chunk, int64_t held_us, int64_t max_rows) {
  int64_t next = held_us > 0 ? chunk * BUILD_LOCK_TARGET_MS * 1000 / held_us : chunk * 2;
  if (next > chunk * 2)
    next = chunk * 2;
  if (next < BUILD_CHUNK_MIN)
    next = BUILD_CHUNK_MIN;
  return next > max_rows ? max_rows : next;
}

typedef struct announce_ctx {
  mcpr_rollup_progress_fn fn;
  void *ctx;
  mcpr_rollup_progress *out;
} announce_ctx;

static void announce_index(void *p, const char *name) {
  announce_ctx *a = p;
  a->out->building_index = name;
  if (a->fn)
    a->fn(a->ctx, a->out);
  a->out->building_index = NULL;
  a->out->indexes_built++;
}

mcpr_status mcpr__rollup_build(sqlite3 *db, const char *path, int64_t max_chunk_rows,
                               mcpr_rollup_progress_fn fn, void *ctx,
                               mcpr_rollup_progress *out, mcpr_error *err) {
  if (max_chunk_rows <= 0 || max_chunk_rows > MCPR__ROLLUP_BUILD_CHUNK_MAX)
    max_chunk_rows = MCPR__ROLLUP_BUILD_CHUNK_MAX;
  int rc = SQLITE_OK;
  mcpr__rollup *r = mcpr__rollup_new(db, &rc);
  if (!r) {
    if (rc == SQLITE_NOMEM)
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory building the rollups");
    /* An old store opened read-only: not migrated, so no rollup tables. */
    return mcpr_error_set(err, sqlite3_db_readonly(db, "main") == 1 ? MCPR_EREADONLY : MCPR_ESQL,
                          "%s has no rollup tables%s", path,
                          sqlite3_db_readonly(db, "main") == 1
                              ? " and is read-only: they cannot be built"
                              : "");
  }
  int lock_fd = mcpr__commit_lock_open(path);
  int64_t chunk = BUILD_CHUNK_FIRST < max_chunk_rows ? BUILD_CHUNK_FIRST : max_chunk_rows;
  int64_t left = 1;
  mcpr_status st = MCPR_OK;
  while (left > 0) {
    int64_t deadline = mcpr__mono_ms() + BUILD_LOCK_WAIT_MS;
    int64_t rolled = 0, held_us = 0;
    left = 0;
    for (;;) {
      if (!mcpr__commit_lock_within(lock_fd, (int)(deadline - mcpr__mono_ms()))) {
        st = mcpr_error_set(err, MCPR_EBUSY,
                            "another process held the store's commit lock for %d s;"
                            " the rollups built so far are kept (run it again)",
                            BUILD_LOCK_WAIT_MS / 1000);
        goto out;
      }
      rc = build_chunk(db, r, lock_fd, chunk, &rolled, &left, &held_us);
      if (rc == SQLITE_OK)
        break;
      if (!is_busy(rc) || mcpr__mono_ms() >= deadline) {
        st = mcpr__db_error(db, rc, err, "building the rollups");
        goto out;
      }
      mcpr__sleep_ms(20);
    }
    int64_t held_ms = (held_us + 999) / 1000;
    out->rolled += rolled;
    out->left = left;
    out->batches++;
    if (held_ms > out->longest_lock_ms)
      out->longest_lock_ms = held_ms;
    if (rolled > out->largest_batch_rows)
      out->largest_batch_rows = rolled;
    if (fn)
      fn(ctx, out);
    chunk = next_chunk(chunk, held_us, max_chunk_rows);
    if (left > 0)
      mcpr__sleep_ms(BUILD_PAUSE_MS);
  }
  /* Last, what a big file's open left out (db.c): one long transaction
   * each, only here, where the user asked for the work. */
  announce_ctx a = {fn, ctx, out};
  rc = mcpr__db_build_missing_indexes(db, lock_fd, announce_index, &a, &out->index_lock_ms);
  if (rc != SQLITE_OK)
    st = mcpr__db_error(db, rc, err, "building the indexes the store lacked");
out:
  mcpr__commit_lock_close(lock_fd);
  mcpr__rollup_free(r);
  return st;
}

int64_t mcpr__rollup_behind(sqlite3 *db) {
  int64_t top = 0, w = mcpr__rollup_watermark(db);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM requests", -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    top = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return top > w ? top - (w > 0 ? w : 0) : 0;
}

/*
 * Waits have an end (issue 12, defect 4): a stopped process holding the
 * store's commit lock, or SQLite's own write lock, must not hang the
 * writer, flush() or close().
 *
 *   - commit lock held by a stopped process: with lock_wait_limit_ms
 *     1.5 s the batch fails as failed_busy, flush() returns MCPR_EBUSY,
 *     on_health says FAILING then GIVING_UP; a later batch fails at once
 *     (one attempt); once the process is gone the next batch is written
 *     and on_health says OK;
 *   - SQLite's write lock held (BEGIN EXCLUSIVE) by a stopped process: the
 *     same, through the busy path;
 *   - close() with the lock held and a long lock limit returns after about
 *     close_timeout_ms, counting what is left as failed by cause.
 * Bounds here are generous ("returns at all, within seconds"), not speed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "health_log.h"
#include "lockholder.h"
#include "mcpr/mcpr.h"
#include "store_fixtures.h"
#include "testutil.h"

static void check_lock_held(lh_lock kind) {
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "held.db");
  health_log log = HEALTH_LOG_INIT;
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  o.lock_wait_limit_ms = 1500;
  o.on_health = hl_on_health;
  o.on_health_ctx = &log;
  mcpr_store *s = sf_open_warm(path, &o);
  mcpr_error err = {0};

  pid_t holder = lh_hold_stopped(path, kind);
  int64_t t0 = tu_mono_ms();
  sf_record_n(s, "held", 100);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_EBUSY);
  int64_t first_ms = tu_mono_ms() - t0;
  assert_true(first_ms < 15000);
  mcpr_store_stats st;
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.failed_busy, 100);
  mcpr_store_health h;
  mcpr_store_health_get(s, &h);
  assert_int_equal(h.state, MCPR_STORE_HEALTH_GIVING_UP);
  assert_int_equal(h.cause, MCPR_EBUSY);
  assert_non_null(strstr(h.message, path));

  /* The window ran out: a new batch gets one attempt, not a new window. */
  t0 = tu_mono_ms();
  sf_record_n(s, "after", 10);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_EBUSY);
  assert_true(tu_mono_ms() - t0 < 7000);
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.failed_busy, 110);

  lh_release(holder);
  sf_record_n(s, "back", 10);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);
  mcpr_store_health_get(s, &h);
  assert_int_equal(h.state, MCPR_STORE_HEALTH_OK);
  assert_true(h.ended_ms > 0);
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.written, 13);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_EBUSY); /* the first failure's cause */

  pthread_mutex_lock(&log.mu);
  assert_int_equal(log.n, 3);
  assert_int_equal(log.seen[0].state, MCPR_STORE_HEALTH_FAILING);
  assert_int_equal(log.seen[0].cause, MCPR_EBUSY);
  assert_int_equal(log.seen[1].state, MCPR_STORE_HEALTH_GIVING_UP);
  assert_int_equal(log.seen[2].state, MCPR_STORE_HEALTH_OK);
  pthread_mutex_unlock(&log.mu);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 13);
  free(path);
  tu_rmdir(dir);
}

static void test_commit_lock_held_by_a_stopped_process(void **state) {
  (void)state;
  check_lock_held(LH_COMMIT_LOCK);
}

static void test_sqlite_lock_held_by_a_stopped_process(void **state) {
  (void)state;
  check_lock_held(LH_SQLITE_LOCK);
}

static void test_close_is_bounded(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "close.db");
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  o.lock_wait_limit_ms = 600000; /* the lock would be waited on for 10 min */
  o.close_timeout_ms = 1000;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  sf_record_n(s, "warm", 1);
  assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_OK);
  pid_t holder = lh_hold_stopped(path, LH_COMMIT_LOCK);
  sf_record_n(s, "left", 50);
  mcpr_store_stats final;
  int64_t t0 = tu_mono_ms();
  assert_int_equal(mcpr_store_close(s, &final), MCPR_EBUSY);
  int64_t took = tu_mono_ms() - t0;
  assert_true(took < 12000); /* close_timeout_ms + one attempt + the close's own lock wait */
  assert_int_equal(final.written, 1);
  assert_int_equal(final.failed_busy, 50);
  assert_int_equal(final.accepted, final.written + mcpr_store_stats_failed(&final));
  lh_release(holder);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 1);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_commit_lock_held_by_a_stopped_process),
      cmocka_unit_test(test_sqlite_lock_held_by_a_stopped_process),
      cmocka_unit_test(test_close_is_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

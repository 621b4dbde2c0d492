/*
 * Failures said out loud (issue 18): what a caller of the store learns
 * when writing fails, through on_health, mcpr_store_health_get(), the
 * counters, flush(), and — for another process — mcpr_query_store_info().
 *
 * The store is opened on tests/support/faultvfs with io_retry_limit_ms
 * 1000, warmed up, and then every write fails (SQLITE_IOERR_WRITE, then in
 * a second case SQLITE_FULL). For each:
 *
 *   - on_health says FAILING with the cause at the first failed attempt,
 *     well before the window ends, and GIVING_UP when it ends; flush()
 *     returns the cause and the batch is counted in failed_io /
 *     failed_disk_full;
 *   - the record beside the store says the same to a reader while the
 *     episode lasts (not ended, events counted so far);
 *   - a later batch is tried once and fails at once: no new window, no new
 *     FAILING;
 *   - once writes work again the next batch is written, on_health says OK,
 *     mcpr_store_health_get() has ended_ms and `failed` equal to every
 *     event failed during the episode, and the reader sees the episode
 *     ended with that count;
 *   - the rows in the file are exactly the ones counted written.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultvfs.h"
#include "health_log.h"
#include "mcpr/mcpr.h"
#include "store_fixtures.h"
#include "testutil.h"

#define WINDOW_MS 1000

static void store_info(const char *path, mcpr_store_info *info) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  memset(info, 0, sizeof *info);
  assert_int_equal(mcpr_query_store_info(q, info, &err), MCPR_OK);
  mcpr_query_close(q);
}

static uint64_t failed_by(const mcpr_store_stats *st, mcpr_status cause) {
  return cause == MCPR_EIO ? st->failed_io : st->failed_disk_full;
}

static void check_episode(int sqlite_rc, mcpr_status cause) {
  assert_int_equal(faultvfs_register(), SQLITE_OK);
  faultvfs_reset();
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "health.db");
  health_log log = HEALTH_LOG_INIT;
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  o.vfs_name = FAULTVFS_NAME;
  o.io_retry_limit_ms = WINDOW_MS;
  o.on_health = hl_on_health;
  o.on_health_ctx = &log;
  mcpr_store *s = sf_open_warm(path, &o);
  mcpr_error err = {0};
  mcpr_store_health h;
  mcpr_store_health_get(s, &h);
  assert_int_equal(h.state, MCPR_STORE_HEALTH_OK);
  assert_int_equal(h.cause, MCPR_OK);
  assert_int_equal(h.since_ms, 0);
  assert_int_equal(hl_count(&log), 0);

  /* Every write fails from now on. */
  faultvfs_fail_writes(sqlite_rc);
  sf_record_n(s, "lost", 50);
  hl_wait(&log, 1);
  pthread_mutex_lock(&log.mu);
  assert_int_equal(log.seen[0].state, MCPR_STORE_HEALTH_FAILING);
  assert_int_equal(log.seen[0].cause, cause);
  assert_non_null(strstr(log.seen[0].message, path));
  assert_true(log.seen[0].since_ms > 0);
  assert_int_equal(log.seen[0].failed, 0);
  pthread_mutex_unlock(&log.mu);
  /* While FAILING the store says so to a poller too. */
  mcpr_store_health_get(s, &h);
  assert_true(h.state == MCPR_STORE_HEALTH_FAILING || h.state == MCPR_STORE_HEALTH_GIVING_UP);
  assert_int_equal(h.cause, cause);

  assert_int_equal(mcpr_store_flush(s, 30000, &err), cause);
  hl_wait(&log, 2);
  pthread_mutex_lock(&log.mu);
  assert_int_equal(log.n, 2);
  assert_int_equal(log.seen[1].state, MCPR_STORE_HEALTH_GIVING_UP);
  assert_int_equal(log.seen[1].cause, cause);
  /* FAILING came at the first failure, not at the end of the window. */
  assert_true(log.at_mono_ms[1] - log.at_mono_ms[0] >= WINDOW_MS - 300);
  pthread_mutex_unlock(&log.mu);
  mcpr_store_stats st;
  mcpr_store_stats_get(s, &st);
  assert_int_equal(failed_by(&st, cause), 50);
  assert_int_equal(mcpr_store_stats_failed(&st), 50);
  assert_int_equal(st.written, 3);
  mcpr_store_health_get(s, &h);
  assert_int_equal(h.state, MCPR_STORE_HEALTH_GIVING_UP);
  assert_int_equal(h.cause, cause);
  assert_int_equal(h.failed, 50);
  assert_int_equal(h.ended_ms, 0);
  int64_t since_ms = h.since_ms;

  /* Another process reading the store sees the episode, not yet ended. */
  mcpr_store_info info;
  store_info(path, &info);
  assert_int_equal(info.last_failure, cause);
  assert_int_equal(info.last_failure_at_ms, since_ms);
  assert_int_equal(info.last_failure_ended_ms, 0);
  assert_int_equal(info.last_failure_events, 50);
  assert_non_null(strstr(info.last_failure_message, path));

  /* The window has run out: a later batch gets one attempt and fails at
   * once, without a new window or a new FAILING. */
  uint64_t retries_before = st.retries;
  int64_t t0 = tu_mono_ms();
  sf_record_n(s, "once", 1);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), cause);
  assert_true(tu_mono_ms() - t0 < 10000); /* it ends at all */
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.retries - retries_before, 1);
  assert_int_equal(failed_by(&st, cause), 51);
  assert_int_equal(hl_count(&log), 2);

  /* The device is back: the next batch is written and the episode ends. */
  faultvfs_reset();
  sf_record_n(s, "back", 7);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);
  hl_wait(&log, 3);
  pthread_mutex_lock(&log.mu);
  assert_int_equal(log.n, 3);
  assert_int_equal(log.seen[2].state, MCPR_STORE_HEALTH_OK);
  assert_int_equal(log.seen[2].cause, cause); /* of the episode that ended */
  assert_int_equal(log.seen[2].failed, 51);
  assert_true(log.seen[2].ended_ms >= since_ms);
  pthread_mutex_unlock(&log.mu);
  mcpr_store_health_get(s, &h);
  assert_int_equal(h.state, MCPR_STORE_HEALTH_OK);
  assert_int_equal(h.cause, cause);
  assert_int_equal(h.since_ms, since_ms);
  assert_true(h.ended_ms >= since_ms);
  assert_int_equal(h.failed, 51);
  int64_t ended_ms = h.ended_ms;
  mcpr_store_stats_get(s, &st);
  assert_int_equal(failed_by(&st, cause), h.failed);
  assert_int_equal(mcpr_store_stats_failed(&st), 51);
  assert_int_equal(st.written, 10);

  store_info(path, &info);
  assert_int_equal(info.last_failure, cause);
  assert_int_equal(info.last_failure_at_ms, since_ms);
  assert_int_equal(info.last_failure_ended_ms, ended_ms);
  assert_int_equal(info.last_failure_events, 51);

  mcpr_store_stats final;
  assert_int_equal(mcpr_store_close(s, &final), cause); /* the first failure's cause */
  assert_int_equal(final.written, 10);
  assert_int_equal(final.accepted, final.written + mcpr_store_stats_failed(&final));
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 10);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE request_id LIKE 'lost-%' "
                                    "OR request_id LIKE 'once-%'"),
                   0);
  /* The record outlives the writer. */
  store_info(path, &info);
  assert_int_equal(info.last_failure, cause);
  assert_int_equal(info.last_failure_ended_ms, ended_ms);
  assert_int_equal(info.last_failure_events, 51);
  free(path);
  tu_rmdir(dir);
}

static void test_io_error_episode(void **state) {
  (void)state;
  check_episode(SQLITE_IOERR_WRITE, MCPR_EIO);
}

static void test_disk_full_episode(void **state) {
  (void)state;
  check_episode(SQLITE_FULL, MCPR_EDISKFULL);
}

/* A store that never failed has no record. */
static void test_no_failure_no_record(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "fine.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  sf_record_n(s, "ok", 5);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  mcpr_store_info info;
  store_info(path, &info);
  assert_int_equal(info.total_requests, 5);
  assert_int_equal(info.last_failure, MCPR_OK);
  assert_int_equal(info.last_failure_events, 0);
  free(path);
  tu_rmdir(dir);
}

static int reset_faults(void **state) {
  (void)state;
  faultvfs_reset();
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_io_error_episode, reset_faults),
      cmocka_unit_test_teardown(test_disk_full_episode, reset_faults),
      cmocka_unit_test(test_no_failure_no_record),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct health_log {
  pthread_mutex_t mu;
  mcpr_store_health_event seen[16];
  mcpr_status cause[16];
  int n;
} health_log;

static void on_health(void *ctx, const mcpr_store_health *h) {
  health_log *l = ctx;
  pthread_mutex_lock(&l->mu);
  if (l->n < 16) {
    l->seen[l->n] = h->state;
    l->cause[l->n] = h->cause;
    l->n++;
  }
  pthread_mutex_unlock(&l->mu);
}

static void record_n(mcpr_store *s, const char *prefix, int n) {
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%04d", prefix, i);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = 1700000000000 + i,
                                       .proxy = "p", .method = "tools/call", .tool = "t",
                                       .latency_us = 5, .status = MCPR_REQUEST_OK,
                                       .bytes_in = -1, .bytes_out = -1};
    assert_int_equal(mcpr_store_record(s, &e), MCPR_OK);
  }
}

/* A child that takes a lock on the store and stops itself (SIGSTOP): the
 * lock stays held until the parent kills it. */
typedef enum { HOLD_COMMIT_LOCK, HOLD_SQLITE_LOCK } hold_kind;

static pid_t hold_lock_stopped(const char *db_path, hold_kind kind) {
  int ready[2];
  assert_int_equal(pipe(ready), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(ready[0]);
    if (kind == HOLD_COMMIT_LOCK) {
      char lock_path[4200];
      snprintf(lock_path, sizeof lock_path, "%s-mcprlock", db_path);
      int fd = open(lock_path, O_RDWR | O_CREAT, 0600);
      if (fd < 0 || flock(fd, LOCK_EX) != 0)
        _exit(1);
    } else {
      sqlite3 *db;
      if (sqlite3_open(db_path, &db) != SQLITE_OK ||
          sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) != SQLITE_OK)
        _exit(1);
    }
    char c = 1;
    if (write(ready[1], &c, 1) != 1)
      _exit(1);
    raise(SIGSTOP);
    _exit(0);
  }
  close(ready[1]);
  char c;
  assert_int_equal(read(ready[0], &c, 1), 1);
  close(ready[0]);
  return pid;
}

static void release_holder(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

static void check_lock_held(hold_kind kind) {
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "held.db");
  health_log log = {.mu = PTHREAD_MUTEX_INITIALIZER};
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  o.lock_wait_limit_ms = 1500;
  o.on_health = on_health;
  o.on_health_ctx = &log;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  record_n(s, "warm", 3);
  assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_OK);

  pid_t holder = hold_lock_stopped(path, kind);
  int64_t t0 = mono_ms();
  record_n(s, "held", 100);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_EBUSY);
  int64_t first_ms = mono_ms() - t0;
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
  t0 = mono_ms();
  record_n(s, "after", 10);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_EBUSY);
  assert_true(mono_ms() - t0 < 7000);
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.failed_busy, 110);

  release_holder(holder);
  record_n(s, "back", 10);
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);
  mcpr_store_health_get(s, &h);
  assert_int_equal(h.state, MCPR_STORE_HEALTH_OK);
  assert_true(h.ended_ms > 0);
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.written, 13);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_EBUSY); /* the first failure's cause */

  pthread_mutex_lock(&log.mu);
  assert_int_equal(log.n, 3);
  assert_int_equal(log.seen[0], MCPR_STORE_HEALTH_FAILING);
  assert_int_equal(log.cause[0], MCPR_EBUSY);
  assert_int_equal(log.seen[1], MCPR_STORE_HEALTH_GIVING_UP);
  assert_int_equal(log.seen[2], MCPR_STORE_HEALTH_OK);
  pthread_mutex_unlock(&log.mu);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 13);
  free(path);
  tu_rmdir(dir);
}

static void test_commit_lock_held_by_a_stopped_process(void **state) {
  (void)state;
  check_lock_held(HOLD_COMMIT_LOCK);
}

static void test_sqlite_lock_held_by_a_stopped_process(void **state) {
  (void)state;
  check_lock_held(HOLD_SQLITE_LOCK);
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
  record_n(s, "warm", 1);
  assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_OK);
  pid_t holder = hold_lock_stopped(path, HOLD_COMMIT_LOCK);
  record_n(s, "left", 50);
  mcpr_store_stats final;
  int64_t t0 = mono_ms();
  assert_int_equal(mcpr_store_close(s, &final), MCPR_EBUSY);
  int64_t took = mono_ms() - t0;
  assert_true(took < 12000); /* close_timeout_ms + one attempt + the close's own lock wait */
  assert_int_equal(final.written, 1);
  assert_int_equal(final.failed_busy, 50);
  assert_int_equal(final.accepted, final.written + mcpr_store_stats_failed(&final));
  release_holder(holder);
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

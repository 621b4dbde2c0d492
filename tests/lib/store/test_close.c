// ctest-labels: tsan
/*
 * Closing the store (SPEC §5: "Shutdown writes everything already handed
 * over before it returns").
 *
 *   - close right after 4 threads recorded 10k events writes all 10k;
 *   - a producer racing close: everything accepted is written, everything
 *     after close began is refused with MCPR_ECLOSING and counted, and
 *     accepted + refused == offered. The writer is held by another
 *     connection's lock so close cannot finish (and free the store) before
 *     the producer has seen the refusals and stopped calling;
 *   - mcpr_store_close(NULL, ...) is MCPR_OK;
 *   - flush with a timeout while the writer is locked out is MCPR_ETIMEDOUT,
 *     and MCPR_OK once the lock is gone.
 */
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

static mcpr_status record_one(mcpr_store *s, int producer, long seq) {
  char id[48];
  snprintf(id, sizeof id, "close-%d-%07ld", producer, seq);
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
  e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = 1700000000000 + seq,
                                     .proxy = "close", .method = "tools/call",
                                     .tool = "t", .latency_us = seq,
                                     .status = MCPR_REQUEST_OK, .bytes_in = -1,
                                     .bytes_out = -1};
  return mcpr_store_record(s, &e);
}

/* ---------- close drains ---------- */

typedef struct burst {
  mcpr_store *s;
  int id;
  int n;
  int accepted;
} burst;

static void *burst_main(void *arg) {
  burst *b = arg;
  for (int i = 0; i < b->n; i++)
    if (record_one(b->s, b->id, i) == MCPR_OK)
      b->accepted++;
  return NULL;
}

static void test_close_drains_everything(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  pthread_t th[4];
  burst b[4];
  for (int i = 0; i < 4; i++) {
    b[i] = (burst){s, i, 2500, 0};
    assert_int_equal(pthread_create(&th[i], NULL, burst_main, &b[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(b[i].accepted, 2500);
  }
  mcpr_store_stats fin;
  assert_int_equal(mcpr_store_close(s, &fin), MCPR_OK); /* no flush first */
  assert_int_equal(fin.accepted, 10000);
  assert_int_equal(fin.written, 10000);
  assert_int_equal(fin.queue_depth, 0);
  assert_int_equal(mcpr_store_stats_failed(&fin), 0);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 10000);
  free(path);
  tu_rmdir(dir);
}

/* ---------- a producer racing close ---------- */

typedef struct race {
  mcpr_store *s;
  const char *path;
  _Atomic bool lock_held;
  _Atomic bool producer_done; /* the producer will call record() no more */
  _Atomic int started;        /* events the producer has offered so far */
  uint64_t offered, accepted, refused_full, refused_closing, other;
  int closing_after_first; /* ECLOSING results after the first one */
  bool accepted_after_closing;
} race;

static void *race_producer(void *arg) {
  race *r = arg;
  long seq = 0;
  for (;;) {
    mcpr_status st = record_one(r->s, 0, seq++);
    r->offered++;
    atomic_store(&r->started, (int)(seq > 1000000 ? 1000000 : seq));
    if (st == MCPR_OK) {
      r->accepted++;
    } else if (st == MCPR_EQUEUEFULL) {
      r->refused_full++;
      sched_yield();
    } else if (st == MCPR_ECLOSING) {
      r->refused_closing++;
      break;
    } else {
      r->other++;
      break;
    }
  }
  /* Once close has begun, it stays begun: every later call is refused. */
  for (int i = 0; i < 100; i++) {
    mcpr_status st = record_one(r->s, 0, seq++);
    r->offered++;
    if (st == MCPR_ECLOSING) {
      r->refused_closing++;
      r->closing_after_first++;
    } else if (st == MCPR_OK) {
      r->accepted++;
      r->accepted_after_closing = true;
    } else {
      r->other++;
    }
  }
  atomic_store(&r->producer_done, true);
  return NULL;
}

/* Holds the write lock until the producer has stopped calling record(),
 * so close() cannot complete (and free the store) while it still might. */
static void *race_locker(void *arg) {
  race *r = arg;
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(r->path, &db, SQLITE_OPEN_READWRITE, NULL);
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, 10000);
    rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  }
  atomic_store(&r->lock_held, rc == SQLITE_OK);
  if (rc == SQLITE_OK) {
    for (int i = 0; i < 60000 && !atomic_load(&r->producer_done); i++)
      tu_sleep_ms(1);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  }
  sqlite3_close(db);
  return NULL;
}

static void test_record_racing_close(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  mcpr_store_options opts;
  mcpr_store_options_init(&opts);
  opts.queue_capacity = 4096; /* some refusals for a full queue too */
  race r = {.path = path};
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&r.s, path, &opts, &err), MCPR_OK);

  pthread_t locker, producer;
  assert_int_equal(pthread_create(&locker, NULL, race_locker, &r), 0);
  while (!atomic_load(&r.lock_held) && !atomic_load(&r.producer_done))
    tu_sleep_ms(1);
  assert_true(atomic_load(&r.lock_held));
  assert_int_equal(pthread_create(&producer, NULL, race_producer, &r), 0);
  while (atomic_load(&r.started) < 1000)
    sched_yield();

  mcpr_store_stats fin;
  mcpr_status cst = mcpr_store_close(r.s, &fin);
  assert_int_equal(pthread_join(producer, NULL), 0);
  assert_int_equal(pthread_join(locker, NULL), 0);

  assert_int_equal(cst, MCPR_OK);
  assert_int_equal(r.other, 0);
  assert_false(r.accepted_after_closing);
  assert_int_equal(r.closing_after_first, 100);
  assert_true(r.accepted > 0);
  assert_int_equal(fin.accepted, r.accepted);
  assert_int_equal(fin.written, r.accepted);
  assert_int_equal(fin.refused_closing, r.refused_closing);
  assert_int_equal(fin.refused_queue_full, r.refused_full);
  assert_int_equal(mcpr_store_stats_failed(&fin), 0);
  assert_int_equal(fin.accepted + mcpr_store_stats_refused(&fin), r.offered);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), (int64_t)r.accepted);
  free(path);
  tu_rmdir(dir);
}

/* ---------- NULL, flush timeout ---------- */

static void test_close_null(void **state) {
  (void)state;
  assert_int_equal(mcpr_store_close(NULL, NULL), MCPR_OK);
  mcpr_store_stats st;
  memset(&st, 0xAB, sizeof st);
  assert_int_equal(mcpr_store_close(NULL, &st), MCPR_OK);
}

static void test_flush_timeout_while_locked(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  sqlite3 *blocker = NULL;
  assert_int_equal(sqlite3_open_v2(path, &blocker, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_exec(blocker, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

  for (int i = 0; i < 10; i++)
    assert_int_equal(record_one(s, 0, i), MCPR_OK);
  mcpr_error_clear(&err);
  assert_int_equal(mcpr_store_flush(s, 300, &err), MCPR_ETIMEDOUT);
  assert_int_equal(err.status, MCPR_ETIMEDOUT);
  assert_non_null(strstr(err.message, "10 events"));

  assert_int_equal(sqlite3_exec(blocker, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_close(blocker), SQLITE_OK);
  mcpr_error_clear(&err);
  assert_int_equal(mcpr_store_flush(s, 60000, &err), MCPR_OK);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 10);
  mcpr_store_stats fin;
  assert_int_equal(mcpr_store_close(s, &fin), MCPR_OK);
  assert_int_equal(fin.written, 10);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_close_null),
      cmocka_unit_test(test_close_drains_everything),
      cmocka_unit_test(test_flush_timeout_while_locked),
      cmocka_unit_test(test_record_racing_close),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

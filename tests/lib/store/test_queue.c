// ctest-labels: tsan
/*
 * The event queue under contention, and the store when it is full.
 *
 * Queue level: 4 producers push tagged items through a small queue to one
 * consumer; every item must arrive exactly once and in each producer's
 * order, and a push on a full queue must fail at once. Store level: with a
 * 64-cell queue and the writer shut out by another connection's write
 * lock, record() refuses with MCPR_EQUEUEFULL (counted) instead of
 * blocking, and once the lock goes every accepted event is written.
 */
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/mcpr.h"
#include "store/queue.h"
#include "testutil.h"

#define PRODUCERS 4
#define ITEMS_PER_PRODUCER 50000u

/* ---------- queue level ---------- */

/* What a producer writes into a cell, in place, as record() does. */
typedef struct tagged {
  uint32_t producer;
  uint32_t seq;
  char filler[40]; /* a payload bigger than a pointer */
} tagged;

typedef struct producer_arg {
  mcpr__queue *q;
  uint32_t id;
  _Atomic uint64_t *full_seen;
} producer_arg;

static void *producer_main(void *arg) {
  producer_arg *a = arg;
  for (uint32_t seq = 0; seq < ITEMS_PER_PRODUCER; seq++) {
    size_t pos;
    tagged *cell;
    while (!(cell = mcpr__queue_claim(a->q, &pos))) {
      atomic_fetch_add(a->full_seen, 1);
      sched_yield();
    }
    cell->producer = a->id;
    cell->seq = seq;
    memset(cell->filler, (int)(seq & 0x7F), sizeof cell->filler);
    mcpr__queue_publish(a->q, pos);
  }
  return NULL;
}

/* 4 producers, 1 consumer that, like the writer, reads a batch of cells
 * and hands them back only once it is done with them. */
static void test_queue_mpsc_exactly_once_in_order(void **state) {
  (void)state;
  mcpr__queue q;
  assert_true(mcpr__queue_init(&q, 256, sizeof(tagged)));
  _Atomic uint64_t full_seen = 0;
  pthread_t th[PRODUCERS];
  producer_arg args[PRODUCERS];
  for (uint32_t i = 0; i < PRODUCERS; i++) {
    args[i] = (producer_arg){&q, i, &full_seen};
    assert_int_equal(pthread_create(&th[i], NULL, producer_main, &args[i]), 0);
  }
  uint32_t next[PRODUCERS] = {0};
  uint64_t received = 0;
  while (received < (uint64_t)PRODUCERS * ITEMS_PER_PRODUCER) {
    size_t batch = 0;
    tagged *cell;
    while (batch < 32 && (cell = mcpr__queue_read(&q))) {
      assert_true(cell->producer < PRODUCERS);
      /* Exactly once and in order: each producer's items come 0, 1, 2, ... */
      assert_int_equal(cell->seq, next[cell->producer]);
      for (size_t k = 0; k < sizeof cell->filler; k++)
        assert_int_equal(cell->filler[k], (char)(cell->seq & 0x7F));
      next[cell->producer]++;
      batch++;
    }
    if (!batch) {
      sched_yield();
      continue;
    }
    mcpr__queue_release(&q, batch);
    received += batch;
  }
  for (int i = 0; i < PRODUCERS; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
  for (int i = 0; i < PRODUCERS; i++)
    assert_int_equal(next[i], ITEMS_PER_PRODUCER);
  assert_null(mcpr__queue_read(&q)); /* nothing extra */
  assert_int_equal(mcpr__queue_depth(&q), 0);
  printf("# %llu pushes found the queue full and were retried\n",
         (unsigned long long)atomic_load(&full_seen));
  mcpr__queue_release_all(&q);
}

static void test_queue_full_returns_null_at_once(void **state) {
  (void)state;
  mcpr__queue q;
  assert_true(mcpr__queue_init(&q, 5, sizeof(tagged)));
  assert_int_equal(mcpr__queue_capacity(&q), 8); /* rounded up to a power of two */
  size_t pos = 99;
  for (uint32_t i = 0; i < 8; i++) {
    tagged *cell = mcpr__queue_claim(&q, &pos);
    assert_non_null(cell);
    assert_int_equal(pos, i);
    cell->seq = i;
    mcpr__queue_publish(&q, pos);
  }
  assert_int_equal(mcpr__queue_depth(&q), 8);
  /* Full: refused, repeatedly, and nothing changes. */
  for (int i = 0; i < 3; i++)
    assert_null(mcpr__queue_claim(&q, &pos));
  /* Cells read but not yet handed back (a batch being written) stay taken. */
  for (uint32_t i = 0; i < 3; i++) {
    tagged *cell = mcpr__queue_read(&q);
    assert_non_null(cell);
    assert_int_equal(cell->seq, i);
  }
  assert_null(mcpr__queue_claim(&q, &pos));
  assert_int_equal(mcpr__queue_depth(&q), 8);
  /* Handed back: exactly three fit again. */
  mcpr__queue_release(&q, 3);
  assert_int_equal(mcpr__queue_depth(&q), 5);
  for (uint32_t i = 8; i < 11; i++) {
    tagged *cell = mcpr__queue_claim(&q, &pos);
    assert_non_null(cell);
    assert_int_equal(pos, i);
    cell->seq = i;
    mcpr__queue_publish(&q, pos);
  }
  assert_null(mcpr__queue_claim(&q, &pos));
  for (uint32_t i = 3; i < 11; i++) {
    tagged *cell = mcpr__queue_read(&q);
    assert_non_null(cell);
    assert_int_equal(cell->seq, i);
  }
  assert_null(mcpr__queue_read(&q));
  mcpr__queue_release(&q, 8);
  assert_int_equal(mcpr__queue_depth(&q), 0);
  mcpr__queue_release_all(&q);
}

/* The pointer convenience: same rules. */
static void test_queue_push_pop_pointers(void **state) {
  (void)state;
  mcpr__queue q;
  int items[4];
  assert_true(mcpr__queue_init(&q, 4, 0));
  for (int i = 0; i < 4; i++)
    assert_true(mcpr__queue_push(&q, &items[i], NULL));
  assert_false(mcpr__queue_push(&q, &items[0], NULL));
  assert_ptr_equal(mcpr__queue_pop(&q), &items[0]);
  size_t pos = 0;
  assert_true(mcpr__queue_push(&q, &items[0], &pos));
  assert_int_equal(pos, 4);
  assert_false(mcpr__queue_push(&q, &items[1], NULL));
  for (int i = 1; i < 4; i++)
    assert_ptr_equal(mcpr__queue_pop(&q), &items[i]);
  assert_ptr_equal(mcpr__queue_pop(&q), &items[0]);
  assert_null(mcpr__queue_pop(&q));
  mcpr__queue_release_all(&q);
}

/* ---------- store level ---------- */

static mcpr_store_event request_event(const char *id, int64_t seq) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
  e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = 1700000000000 + seq,
                                     .proxy = "queue", .method = "tools/call",
                                     .tool = "search", .latency_us = seq,
                                     .status = MCPR_REQUEST_OK, .bytes_in = seq,
                                     .bytes_out = -1};
  return e;
}

static sqlite3 *hold_write_lock(const char *path) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  return db;
}

static void release_write_lock(sqlite3 *db) {
  assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_store_queue_full_refuses_and_never_blocks(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  mcpr_store_options opts;
  mcpr_store_options_init(&opts);
  opts.queue_capacity = 64;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &opts, &err), MCPR_OK);
  sqlite3 *blocker = hold_write_lock(path);

  enum { OFFERED = 10000 };
  uint64_t accepted = 0, refused_full = 0;
  int64_t t0 = tu_mono_ms();
  for (int i = 0; i < OFFERED; i++) {
    char id[32];
    snprintf(id, sizeof id, "q-%06d", i);
    mcpr_store_event e = request_event(id, i);
    mcpr_status st = mcpr_store_record(s, &e);
    if (st == MCPR_OK)
      accepted++;
    else if (st == MCPR_EQUEUEFULL)
      refused_full++;
    else
      fail_msg("record %d returned %s", i, mcpr_status_name(st));
  }
  /* Sanity bound only: a blocking record() would take the busy timeout
   * (5 s) per call; 10k non-blocking calls take milliseconds. */
  assert_true(tu_mono_ms() - t0 < 5000);

  mcpr_store_stats st;
  mcpr_store_stats_get(s, &st);
  assert_true(refused_full > 0);
  assert_int_equal(st.refused_queue_full, refused_full);
  assert_int_equal(st.accepted, accepted);
  assert_int_equal(st.written, 0); /* the lock is still held */
  assert_int_equal(accepted + refused_full, OFFERED);

  release_write_lock(blocker);
  assert_int_equal(mcpr_store_flush(s, 60000, &err), MCPR_OK);
  mcpr_store_stats fin;
  assert_int_equal(mcpr_store_close(s, &fin), MCPR_OK);
  assert_int_equal(fin.accepted, accepted);
  assert_int_equal(fin.written, accepted);
  assert_int_equal(fin.refused_queue_full, refused_full);
  assert_int_equal(mcpr_store_stats_failed(&fin), 0);
  assert_int_equal(fin.accepted + mcpr_store_stats_refused(&fin), OFFERED);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), (int64_t)accepted);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queue_full_returns_null_at_once),
      cmocka_unit_test(test_queue_push_pop_pointers),
      cmocka_unit_test(test_queue_mpsc_exactly_once_in_order),
      cmocka_unit_test(test_store_queue_full_refuses_and_never_blocks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

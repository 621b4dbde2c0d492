// ctest-labels: tsan
/* Fan-out: each sink its own queue and thread; a stuck sink refuses
 * (counted) instead of slowing the caller or the other sinks. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcpr/sink.h"
#include "testutil.h"

typedef struct gate_sink {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool open;
  atomic_int delivered;
  atomic_int flushed;
  atomic_int drained;
  int64_t last_ts;     /* order check */
  bool out_of_order;
  int fail_every;      /* >0: every n-th event fails with EIO */
} gate_sink;

static void gate_init(gate_sink *g, bool open) {
  memset(g, 0, sizeof *g);
  pthread_mutex_init(&g->mu, NULL);
  pthread_cond_init(&g->cv, NULL);
  g->open = open;
  g->last_ts = -1;
}

static void gate_open(gate_sink *g) {
  pthread_mutex_lock(&g->mu);
  g->open = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

static mcpr_status gate_deliver(void *self, const mcpr_event *ev, mcpr_error *err) {
  gate_sink *g = self;
  pthread_mutex_lock(&g->mu);
  while (!g->open)
    pthread_cond_wait(&g->cv, &g->mu);
  if (ev->u.session_end.ts <= g->last_ts)
    g->out_of_order = true;
  g->last_ts = ev->u.session_end.ts;
  pthread_mutex_unlock(&g->mu);
  int n = atomic_fetch_add(&g->delivered, 1) + 1;
  if (g->fail_every && n % g->fail_every == 0)
    return mcpr_error_set(err, MCPR_EIO, "injected failure %d", n);
  return MCPR_OK;
}

static mcpr_status gate_flush(void *self, mcpr_error *err) {
  (void)err;
  atomic_fetch_add(&((gate_sink *)self)->flushed, 1);
  return MCPR_OK;
}

static void gate_drain(void *self) { atomic_fetch_add(&((gate_sink *)self)->drained, 1); }

static mcpr_sink *gate_new(gate_sink *g, const char *name, size_t cap) {
  mcpr_sink_ops ops = {.name = name, .deliver = gate_deliver, .flush = gate_flush,
                       .drain = gate_drain};
  mcpr_sink *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_sink_new(&s, &ops, g, cap, &err), MCPR_OK);
  return s;
}

static mcpr_event end_event(int64_t ts) {
  static char sid[] = "s-1";
  mcpr_event ev;
  mcpr_event_init(&ev, MCPR_EVENT_SESSION_END);
  ev.u.session_end.session_id = sid;
  ev.u.session_end.ts = ts;
  return ev;
}

static void test_stuck_sink_does_not_slow_others(void **state) {
  (void)state;
  gate_sink slow, fast;
  gate_init(&slow, false); /* stuck until opened */
  gate_init(&fast, true);
  mcpr_fanout *fan = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_fanout_new(&fan, &err), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(fan, gate_new(&slow, "slow", 16), &err), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(fan, gate_new(&fast, "fast", 0), &err), MCPR_OK);
  int refused = 0;
  for (int i = 0; i < 2000; i++) {
    mcpr_event ev = end_event(i);
    if (mcpr_fanout_emit(fan, &ev) == MCPR_EQUEUEFULL)
      refused++;
  }
  /* The caller finished while the slow sink has not delivered anything;
   * the fast one gets all of it. */
  int spins = 0;
  while (atomic_load(&fast.delivered) < 2000 && spins++ < 10000) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  assert_int_equal(atomic_load(&fast.delivered), 2000);
  assert_true(atomic_load(&slow.delivered) == 0);
  mcpr_sink_stats st;
  assert_int_equal(mcpr_fanout_sink_stats(fan, 0, &st), MCPR_OK);
  assert_string_equal(st.name, "slow");
  assert_true(st.accepted <= 17);
  assert_int_equal(st.accepted + st.refused_queue_full, 2000);
  assert_int_equal(refused, (int)st.refused_queue_full);
  gate_open(&slow);
  mcpr_sink_stats fin[2];
  assert_int_equal(mcpr_fanout_close(fan, fin, 2), MCPR_EQUEUEFULL);
  assert_int_equal(fin[0].delivered, fin[0].accepted);
  assert_int_equal(atomic_load(&slow.delivered), (int)fin[0].accepted);
  assert_int_equal(fin[1].delivered, 2000);
  assert_int_equal(fin[1].refused_queue_full, 0);
  assert_false(slow.out_of_order);
  assert_false(fast.out_of_order);
  assert_int_equal(atomic_load(&slow.drained), 1);
  assert_int_equal(atomic_load(&fast.drained), 1);
}

static void *open_later(void *arg) {
  struct timespec ts = {0, 50 * 1000000};
  nanosleep(&ts, NULL);
  gate_open(arg);
  return NULL;
}

static void test_emit_wait_flush_and_failures(void **state) {
  (void)state;
  gate_sink g;
  gate_init(&g, false);
  g.fail_every = 10;
  mcpr_fanout *fan = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_fanout_new(&fan, &err), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(fan, gate_new(&g, "gate", 4), &err), MCPR_OK);
  pthread_t t;
  pthread_create(&t, NULL, open_later, &g);
  for (int i = 0; i < 100; i++) {
    mcpr_event ev = end_event(i);
    assert_int_equal(mcpr_fanout_emit_wait(fan, &ev, -1), MCPR_OK);
  }
  assert_int_equal(mcpr_fanout_flush(fan, -1, &err), MCPR_OK);
  assert_int_equal(atomic_load(&g.delivered), 100);
  assert_true(atomic_load(&g.flushed) >= 1);
  pthread_join(t, NULL);
  mcpr_sink_stats st;
  assert_int_equal(mcpr_fanout_sink_stats(fan, 0, &st), MCPR_OK);
  assert_int_equal(st.accepted, 100);
  assert_int_equal(st.delivered, 90);
  assert_int_equal(st.failed, 10);
  assert_int_equal(st.failed_by[MCPR_EIO], 10);
  assert_int_equal(st.queue_depth, 0);
  assert_non_null(strstr(st.last_error_message, "injected failure 100"));
  assert_int_equal(mcpr_fanout_close(fan, NULL, 0), MCPR_EIO);
}

static void test_emit_after_close_begins_and_null(void **state) {
  (void)state;
  assert_int_equal(mcpr_fanout_close(NULL, NULL, 0), MCPR_OK);
  mcpr_fanout *fan = NULL;
  assert_int_equal(mcpr_fanout_new(&fan, NULL), MCPR_OK);
  mcpr_event ev = end_event(1);
  assert_int_equal(mcpr_fanout_emit(fan, &ev), MCPR_OK); /* no sinks: nothing to do */
  assert_int_equal(mcpr_fanout_close(fan, NULL, 0), MCPR_OK);
}

static void *emitter(void *arg) {
  mcpr_fanout *fan = arg;
  for (int i = 0; i < 5000; i++) {
    mcpr_event ev = end_event(i);
    mcpr_fanout_emit_wait(fan, &ev, -1);
  }
  return NULL;
}

static void test_many_emitters(void **state) {
  (void)state;
  gate_sink a, b;
  gate_init(&a, true);
  gate_init(&b, true);
  mcpr_fanout *fan = NULL;
  assert_int_equal(mcpr_fanout_new(&fan, NULL), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(fan, gate_new(&a, "a", 64), NULL), MCPR_OK);
  assert_int_equal(mcpr_fanout_add(fan, gate_new(&b, "b", 1024), NULL), MCPR_OK);
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&t[i], NULL, emitter, fan);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  mcpr_sink_stats fin[2];
  assert_int_equal(mcpr_fanout_close(fan, fin, 2), MCPR_OK);
  assert_int_equal(fin[0].delivered, 20000);
  assert_int_equal(fin[1].delivered, 20000);
}

/*
 * pthread_create, interposed: the library's calls land here (the test
 * links libmcpr statically), so a test can make the next one fail. The
 * real one (glibc's, or the sanitizer's interceptor) is found with
 * RTLD_NEXT.
 */
static atomic_int fail_next_thread;

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
  if (atomic_exchange(&fail_next_thread, 0))
    return EAGAIN;
  int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
  *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
  return real ? real(t, attr, fn, arg) : ENOSYS;
}

static atomic_int destroyed;
static void count_destroy(void *self) {
  (void)self;
  atomic_fetch_add(&destroyed, 1);
}

/* A sink whose thread cannot start is freed by mcpr_fanout_add, and the
 * error still names it (it was read after the free: ASan). */
static void test_add_thread_fails_names_freed_sink(void **state) {
  (void)state;
  gate_sink g;
  gate_init(&g, true);
  mcpr_sink_ops ops = {.name = "thread-less", .deliver = gate_deliver, .destroy = count_destroy};
  mcpr_sink *s = NULL;
  assert_int_equal(mcpr_sink_new(&s, &ops, &g, 8, NULL), MCPR_OK);
  mcpr_fanout *fan = NULL;
  assert_int_equal(mcpr_fanout_new(&fan, NULL), MCPR_OK);
  mcpr_error err = {0};
  atomic_store(&fail_next_thread, 1);
  assert_int_equal(mcpr_fanout_add(fan, s, &err), MCPR_ENOMEM);
  assert_int_equal(err.status, MCPR_ENOMEM);
  assert_non_null(strstr(err.message, "thread-less"));
  assert_int_equal(atomic_load(&destroyed), 1);
  assert_int_equal(mcpr_fanout_sink_count(fan), 0);
  /* the fan-out still works without it */
  gate_sink a;
  gate_init(&a, true);
  assert_int_equal(mcpr_fanout_add(fan, gate_new(&a, "a", 8), NULL), MCPR_OK);
  mcpr_event ev = end_event(1);
  assert_int_equal(mcpr_fanout_emit(fan, &ev), MCPR_OK);
  mcpr_sink_stats fin[1];
  assert_int_equal(mcpr_fanout_close(fan, fin, 1), MCPR_OK);
  assert_int_equal(fin[0].delivered, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stuck_sink_does_not_slow_others),
      cmocka_unit_test(test_emit_wait_flush_and_failures),
      cmocka_unit_test(test_emit_after_close_begins_and_null),
      cmocka_unit_test(test_many_emitters),
      cmocka_unit_test(test_add_thread_fails_names_freed_sink),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

// ctest-labels: slow
/*
 * kill -9 in the middle of writing, many times over.
 *
 * Each iteration forks a child that opens the store (recovering whatever
 * the previous child left) and records from 3 threads; every 200 events a
 * thread calls mcpr_store_flush() and, when it returns MCPR_OK, writes
 * "thread t has n events durable" to a pipe (an 8-byte write, atomic).
 * The parent SIGKILLs the child after a random 0–300 ms, then checks that
 * the file passes PRAGMA integrity_check and that every event a flush
 * vouched for is in it: thread t's events carry proxy "i<iter>-t<t>" and
 * their sequence number in bytes_in, so the first n of them must all be
 * there. A pipe keeps what was written before the kill.
 *
 * MCPR_CRASH_LOOPS sets the number of iterations (default 200),
 * MCPR_CRASH_SEED the random seed (default: time; printed either way).
 * The store file is started afresh every 25 iterations to keep it small.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

#define CHILD_THREADS 3
#define FLUSH_EVERY 200
#define FILE_ROTATE_EVERY 25

typedef struct durable_mark {
  uint32_t thread;
  uint32_t count;
} durable_mark;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static long env_long(const char *name, long fallback) {
  const char *v = getenv(name);
  if (!v || !*v)
    return fallback;
  char *end = NULL;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || *end || n < 0)
    return fallback;
  return n;
}

/* ---------- the child ---------- */

typedef struct child_thread {
  mcpr_store *s;
  int iter;
  uint32_t id;
  int pipe_fd;
} child_thread;

static void *child_producer(void *arg) {
  child_thread *c = arg;
  char proxy[32];
  snprintf(proxy, sizeof proxy, "i%d-t%u", c->iter, (unsigned)c->id);
  for (uint32_t seq = 0;; seq++) {
    char id[64];
    snprintf(id, sizeof id, "crash-%s-%08u", proxy, (unsigned)seq);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = mcpr_now_ms(),
                                       .proxy = proxy, .method = "tools/call",
                                       .tool = "search", .latency_us = 1234,
                                       .status = MCPR_REQUEST_OK, .bytes_in = seq,
                                       .bytes_out = -1};
    /* A refusal (full queue) is retried, so sequence numbers have no gaps. */
    while (mcpr_store_record(c->s, &e) != MCPR_OK)
      sleep_ms(1);
    if ((seq + 1) % FLUSH_EVERY == 0) {
      if (mcpr_store_flush(c->s, 10000, NULL) == MCPR_OK) {
        durable_mark m = {c->id, seq + 1};
        if (write(c->pipe_fd, &m, sizeof m) != (ssize_t)sizeof m)
          _exit(5);
      }
      sleep_ms(30); /* keep the file small across hundreds of iterations */
    }
  }
  return NULL;
}

static _Noreturn void child_main(const char *path, int iter, int pipe_fd) {
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  if (mcpr_store_open(&s, path, NULL, &err) != MCPR_OK) {
    fprintf(stderr, "child %d: open failed: %s\n", iter, err.message);
    _exit(3);
  }
  pthread_t th[CHILD_THREADS];
  child_thread ct[CHILD_THREADS];
  for (uint32_t i = 0; i < CHILD_THREADS; i++) {
    ct[i] = (child_thread){s, iter, i, pipe_fd};
    if (pthread_create(&th[i], NULL, child_producer, &ct[i]) != 0)
      _exit(4);
  }
  for (;;)
    pause(); /* until SIGKILL */
}

/* ---------- the parent's checks ---------- */

static void check_integrity(const char *path, int iter) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  /* Leave the WAL for the next child to recover from. */
  sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  const char *res = (const char *)sqlite3_column_text(st, 0);
  if (!res || strcmp(res, "ok") != 0)
    fail_msg("iteration %d: integrity_check: %s", iter, res ? res : "(null)");
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t durable_rows(const char *path, int iter, uint32_t thread, uint32_t below) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT count(DISTINCT bytes_in) FROM requests"
                                      " WHERE proxy = ?1 AND bytes_in < ?2",
                                      -1, &st, NULL),
                   SQLITE_OK);
  char proxy[32];
  snprintf(proxy, sizeof proxy, "i%d-t%u", iter, (unsigned)thread);
  sqlite3_bind_text(st, 1, proxy, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, below);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

static void test_kill9_loop(void **state) {
  (void)state;
  long loops = env_long("MCPR_CRASH_LOOPS", 200);
  unsigned seed = (unsigned)env_long("MCPR_CRASH_SEED", (long)(time(NULL) ^ getpid()));
  printf("# crash loop: %ld iterations, seed %u (MCPR_CRASH_SEED)\n", loops, seed);
  char *dir = tu_tmpdir();
  char path[4096];
  uint64_t vouched_total = 0;
  long killed_mid_write = 0;

  for (int iter = 0; iter < loops; iter++) {
    snprintf(path, sizeof path, "%s/store-%d.db", dir, iter / FILE_ROTATE_EVERY);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      child_main(path, iter, fds[1]);
    }
    close(fds[1]);
    sleep_ms(rand_r(&seed) % 301);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    if (!(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL))
      fail_msg("iteration %d: child ended by itself (status 0x%x) before the kill", iter,
               wstatus);

    uint32_t vouched[CHILD_THREADS] = {0};
    durable_mark m;
    ssize_t n;
    while ((n = read(fds[0], &m, sizeof m)) == (ssize_t)sizeof m) {
      assert_true(m.thread < CHILD_THREADS);
      if (m.count > vouched[m.thread])
        vouched[m.thread] = m.count;
    }
    assert_int_equal(n, 0);
    close(fds[0]);

    struct stat sb;
    if (stat(path, &sb) != 0) {
      /* Killed before the file was even created: nothing was vouched for. */
      for (int t = 0; t < CHILD_THREADS; t++)
        assert_int_equal(vouched[t], 0);
      continue;
    }
    check_integrity(path, iter);
    for (uint32_t t = 0; t < CHILD_THREADS; t++) {
      if (!vouched[t])
        continue;
      int64_t rows = durable_rows(path, iter, t, vouched[t]);
      if (rows != vouched[t])
        fail_msg("iteration %d thread %u: flush vouched for %u events, %lld in the file",
                 iter, (unsigned)t, (unsigned)vouched[t], (long long)rows);
      vouched_total += vouched[t];
    }
    if (vouched[0] || vouched[1] || vouched[2])
      killed_mid_write++;
  }
  /* The loop must have exercised something: kills while flushed data exists. */
  if (loops >= 20)
    assert_true(killed_mid_write > 0);
  printf("# crash loop: %ld iterations done, %ld with flushed events (%llu events checked),"
         " integrity ok every time\n",
         loops, killed_mid_write, (unsigned long long)vouched_total);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill9_loop)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

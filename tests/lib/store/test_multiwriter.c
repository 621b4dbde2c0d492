// ctest-labels: slow
/*
 * Several writer processes and a vacuum on one store at once (SPEC §5,
 * issue 5: "several mcpr ingest processes and a vacuum … every row still
 * arrives"). Each child records its own proxy's events as fast as the
 * store takes them, flushing every 64 and reporting through a pipe how
 * many were confirmed; meanwhile the parent vacuums again and again
 * (VACUUM + WAL checkpoint TRUNCATE). Every confirmed event must be in the
 * file and the file must pass integrity_check.
 *
 * This is also the workload of SQLite's WAL-reset race (a checkpoint on
 * one connection while another commits and restarts the WAL; in every
 * SQLite before 3.51.3, Debian 12's 3.40.1 included): all of mcpr's
 * commits and checkpoints take the store's cross-process lock so they
 * never overlap. MCPR_MULTIWRITER_SECONDS (default 4) sets the duration.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

#define WRITERS 3

static void writer_child(const char *path, int k, int64_t run_ms, int fd) {
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  if (mcpr_store_open(&s, path, NULL, &err) != MCPR_OK)
    _exit(3);
  char proxy[16];
  snprintf(proxy, sizeof proxy, "w%d", k);
  long long accepted = 0, confirmed = 0;
  int64_t end = tu_mono_ms() + run_ms;
  while (tu_mono_ms() < end) {
    int64_t ts = mcpr_now_ms();
    char id[MCPR_UUID_STRLEN + 1];
    mcpr_uuid_v7(ts, id);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = ts, .proxy = proxy,
                                       .method = "tools/call", .tool = "t", .latency_us = 1,
                                       .status = MCPR_REQUEST_OK, .bytes_in = 100,
                                       .bytes_out = 1000};
    if (mcpr_store_record(s, &e) != MCPR_OK) {
      usleep(1000);
      continue;
    }
    if (++accepted % 64 == 0 && mcpr_store_flush(s, 120000, &err) == MCPR_OK)
      confirmed = accepted;
  }
  if (mcpr_store_flush(s, 120000, &err) == MCPR_OK)
    confirmed = accepted;
  mcpr_store_stats st;
  mcpr_store_close(s, &st);
  char line[128];
  int n = snprintf(line, sizeof line, "%lld %llu\n", confirmed,
                   (unsigned long long)mcpr_store_stats_failed(&st));
  _exit(write(fd, line, (size_t)n) == n ? 0 : 4);
}

static void test_writers_and_vacuum(void **state) {
  (void)state;
  const char *secs = getenv("MCPR_MULTIWRITER_SECONDS");
  long seconds = secs ? strtol(secs, NULL, 10) : 4;
  int64_t run_ms = (seconds > 0 && seconds < 3600 ? seconds : 4) * 1000;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  int pipes[WRITERS][2];
  pid_t pids[WRITERS];
  fflush(NULL);
  for (int k = 0; k < WRITERS; k++) {
    assert_int_equal(pipe(pipes[k]), 0);
    pids[k] = fork();
    assert_true(pids[k] >= 0);
    if (pids[k] == 0) {
      close(pipes[k][0]);
      writer_child(path, k, run_ms, pipes[k][1]);
    }
    close(pipes[k][1]);
  }
  int vacuums = 0;
  int64_t end = tu_mono_ms() + run_ms;
  while (tu_mono_ms() < end) {
    mcpr_query *q = NULL;
    assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
    mcpr_vacuum_options o = {.before_ms = mcpr_now_ms() - 3600000};
    mcpr_vacuum_result r;
    if (mcpr_query_vacuum(q, &o, &r, &err) != MCPR_OK)
      fail_msg("vacuum: %s", err.message);
    mcpr_query_close(q);
    vacuums++;
    usleep(50000);
  }
  long long total = 0;
  for (int k = 0; k < WRITERS; k++) {
    char line[128] = "";
    ssize_t n;
    size_t got = 0;
    while ((n = read(pipes[k][0], line + got, sizeof line - 1 - got)) > 0 ||
           (n < 0 && errno == EINTR))
      got += n > 0 ? (size_t)n : 0;
    close(pipes[k][0]);
    int status = 0;
    assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    long long confirmed = 0;
    unsigned long long failed = 0;
    assert_int_equal(sscanf(line, "%lld %llu", &confirmed, &failed), 2);
    assert_int_equal(failed, 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM requests WHERE proxy = 'w%d'", k);
    int64_t stored = tu_sql_int(path, sql);
    print_message("writer w%d: %lld confirmed, %lld stored\n", k, confirmed, (long long)stored);
    assert_true(confirmed > 0);
    assert_true(stored >= confirmed); /* every confirmed event; unconfirmed ones may be too */
    total += confirmed;
  }
  print_message("%d writers, %d vacuums, %lld events confirmed\n", WRITERS, vacuums, total);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM pragma_integrity_check"
                                    " WHERE integrity_check <> 'ok'"), 0);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_writers_and_vacuum)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* `mcpr store stats` and `mcpr store vacuum`, end to end: the totals and
 * sizes stats reports; a dry run that changes nothing; a vacuum that
 * deletes exactly the old rows (of one proxy with --proxy) and the ended
 * sessions left without requests, and leaves a smaller, valid file; and a
 * vacuum run while another process keeps writing, which must lose nothing
 * that process's flush confirmed. `mcpr store rollup` on a store whose
 * rollups are missing, and `proxy status --exact` beside it. */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "store_fixtures.h"
#include "fx_store.h"
#include "testutil.h"

#define DAY_MS (24 * FX_HOUR_MS)
#define INFO_KEYS                                                                        \
  "path,schema_version,total_requests,total_sessions,oldest_request,newest_request,"    \
  "proxies,db_bytes,wal_bytes,last_write_failure,retention"

/* ---------- tests ---------- */

static int64_t file_bytes(const char *path, const char *suffix) {
  char p[4096];
  snprintf(p, sizeof p, "%s%s", path, suffix);
  struct stat st;
  return stat(p, &st) == 0 ? (int64_t)st.st_size : 0;
}

static void test_stats(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "store", "stats", "--json");
  assert_int_equal(nd_count(r.out), 1);
  json_t *o = nd_line(r.out, 0);
  assert_keys(o, INFO_KEYS);
  assert_string_equal(js(o, "path"), fx_path);
  assert_int_equal(ji(o, "schema_version"), 5);
  assert_int_equal(ji(o, "total_requests"), 127);
  assert_int_equal(ji(o, "total_sessions"), 4);
  assert_int_equal(ji(o, "oldest_request"), fx_now - 3 * FX_HOUR_MS);
  assert_int_equal(ji(o, "newest_request"), fx_now - 120000 + 501);
  assert_int_equal(ji(o, "proxies"), 2);
  assert_int_equal(ji(o, "db_bytes"), file_bytes(fx_path, ""));
  assert_int_equal(ji(o, "wal_bytes"), file_bytes(fx_path, "-wal"));
  assert_true(ji(o, "db_bytes") > 0);
  assert_true(json_is_null(json_object_get(o, "last_write_failure")));
  json_decref(o);
  cli_result_free(&r);

  RUN_OK(&r, "store", "stats");
  char want[4200];
  snprintf(want, sizeof want, "store      %s (schema v5)\n", fx_path);
  assert_non_null(strstr(r.out, want));
  assert_non_null(strstr(r.out, "requests   127\n"));
  assert_non_null(strstr(r.out, "sessions   4\n"));
  assert_non_null(strstr(r.out, "proxies    2\n"));
  assert_non_null(strstr(r.out, "db size    "));
  assert_non_null(strstr(r.out, "wal size   "));
  assert_null(strstr(r.out, "oldest     -"));
  cli_result_free(&r);

  /* An empty store: no oldest/newest. */
  char *empty = tu_path(fx_dir, "empty.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, empty, NULL, &err), MCPR_OK);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  RUN_ON(&r, empty, "store", "stats", "--json");
  assert_int_equal(r.exit_code, 0);
  o = nd_line(r.out, 0);
  assert_int_equal(ji(o, "total_requests"), 0);
  assert_int_equal(ji(o, "proxies"), 0);
  assert_null_field(o, "oldest_request");
  assert_null_field(o, "newest_request");
  json_decref(o);
  cli_result_free(&r);
  RUN_ON(&r, empty, "store", "stats");
  assert_non_null(strstr(r.out, "oldest     -\nnewest     -\n"));
  cli_result_free(&r);
  free(empty);
}

/* A request with a long error message, so old rows take real space. */
static void big_request(mcpr_store *s, int64_t ts, const char *proxy, const char *session) {
  static char msg[401];
  memset(msg, 'x', sizeof msg - 1);
  char id[MCPR_UUID_STRLEN + 1];
  mcpr_uuid_v7(ts, id);
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
  e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = ts, .proxy = proxy,
                                     .session_id = session, .method = "tools/call",
                                     .tool = "t", .latency_us = 10,
                                     .status = MCPR_REQUEST_ERROR, .error_code = "-1",
                                     .error_msg = msg, .bytes_in = -1, .bytes_out = -1};
  fx_record(s, e);
}

static void close_session(mcpr_store *s, const char *id, int64_t ended) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
  e.u.session_closed = (mcpr_session_closed_event){id, ended};
  fx_record(s, e);
}

/*
 * now − 10 d ("old") and now − 1 min ("new"):
 *   proxy a: 300 old requests (100 in s-a-old-ended, 50 in s-a-old-open,
 *            10 in s-a-recent-ended, 140 without session), 10 new (5 in
 *            s-a-recent-ended);
 *   proxy b: 200 old (50 in s-b-old-ended), 5 new (1 in s-b-weird).
 *   sessions: s-a-old-ended (ended old), s-a-old-open (never ended),
 *   s-a-recent-ended (ended a minute ago), s-b-weird (ended 9 d ago but a
 *   request a minute ago), s-b-noreq (ended 8 d ago, no requests),
 *   s-b-old-ended (ended old).
 */
static char *build_vacuum_store(int64_t now) {
  char *path = tu_path(fx_dir, "vac.db");
  int64_t old = now - 10 * DAY_MS, fresh = now - 60000;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  fx_session(s, "s-a-old-ended", "a", old, "cursor", "1");
  fx_session(s, "s-a-old-open", "a", old, "cursor", "1");
  fx_session(s, "s-a-recent-ended", "a", old, "cursor", "1");
  fx_session(s, "s-b-weird", "b", old, "cursor", "1");
  fx_session(s, "s-b-noreq", "b", old, "cursor", "1");
  fx_session(s, "s-b-old-ended", "b", old, "cursor", "1");
  for (int i = 0; i < 300; i++)
    big_request(s, old + i, "a",
                i < 100 ? "s-a-old-ended" : i < 150 ? "s-a-old-open"
                                       : i < 160 ? "s-a-recent-ended" : NULL);
  for (int i = 0; i < 10; i++)
    big_request(s, fresh + i, "a", i < 5 ? "s-a-recent-ended" : NULL);
  for (int i = 0; i < 200; i++)
    big_request(s, old + 1000 + i, "b", i < 50 ? "s-b-old-ended" : NULL);
  for (int i = 0; i < 5; i++)
    big_request(s, fresh + 100 + i, "b", i == 0 ? "s-b-weird" : NULL);
  close_session(s, "s-a-old-ended", old + 5000);
  close_session(s, "s-a-recent-ended", fresh + 50);
  close_session(s, "s-b-weird", now - 9 * DAY_MS);
  close_session(s, "s-b-noreq", now - 8 * DAY_MS);
  close_session(s, "s-b-old-ended", old + 5000);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  return path;
}

#define ALL_REQUESTS "SELECT request_id, ts, proxy, session_id FROM requests ORDER BY request_id"
#define ALL_SESSIONS "SELECT * FROM sessions ORDER BY session_id"

static void test_vacuum(void **state) {
  (void)state;
  int64_t now = mcpr_now_ms();
  char *path = build_vacuum_store(now);
  char *requests0 = sf_sql_dump(path, ALL_REQUESTS);
  char *sessions0 = sf_sql_dump(path, ALL_SESSIONS);
  char *schema0 = sf_sql_dump(path, "SELECT * FROM meta WHERE key <> 'mcpr_version' ORDER BY key");
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 515);

  /* Dry runs count and change nothing. */
  cli_result r;
  RUN_ON(&r, path, "store", "vacuum", "--before", "7d", "--dry-run");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "Would delete 500 requests and 3 sessions older than 7d"));
  assert_non_null(strstr(r.out, "Nothing was changed"));
  cli_result_free(&r);
  RUN_ON(&r, path, "store", "vacuum", "--before", "7d", "--proxy", "a", "--dry-run");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "Would delete 300 requests and 1 sessions older than 7d of proxy a"));
  cli_result_free(&r);
  RUN_ON(&r, path, "store", "vacuum", "--dry-run", "--before", "30d");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "Would delete 0 requests and 0 sessions"));
  cli_result_free(&r);
  sf_assert_dump(path, ALL_REQUESTS, requests0);
  sf_assert_dump(path, ALL_SESSIONS, sessions0);
  sf_assert_dump(path, "SELECT * FROM meta WHERE key <> 'mcpr_version' ORDER BY key", schema0);

  /* What must survive: every request newer than the cutoff. */
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT request_id, ts, proxy, session_id FROM requests WHERE ts >= %lld"
           " ORDER BY request_id",
           (long long)(now - 7 * DAY_MS));
  char *fresh = sf_sql_dump(path, sql);
  char *b_rows = sf_sql_dump(path,
                             "SELECT request_id, ts, proxy, session_id FROM requests"
                             " WHERE proxy = 'b' ORDER BY request_id");
  int64_t bytes_before = file_bytes(path, "") + file_bytes(path, "-wal");

  /* One proxy: a's old rows and its ended, emptied session; b untouched. */
  RUN_ON(&r, path, "store", "vacuum", "--before", "7d", "--proxy", "a");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "Deleted 300 requests and 1 sessions older than 7d of proxy a"));
  cli_result_free(&r);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE proxy = 'a'"), 10);
  sf_assert_dump(path,
                 "SELECT request_id, ts, proxy, session_id FROM requests WHERE proxy = 'b'"
                 " ORDER BY request_id",
                 b_rows);
  sf_assert_dump(path, "SELECT session_id FROM sessions ORDER BY session_id",
                 "s-a-old-open\ns-a-recent-ended\ns-b-noreq\ns-b-old-ended\ns-b-weird\n");

  /* Everything: b's old rows, s-b-noreq and s-b-old-ended go; s-b-weird
   * ended long ago but still has a request; s-a-old-open never ended. */
  RUN_ON(&r, path, "store", "vacuum", "--before", "7d");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "Deleted 200 requests and 2 sessions older than 7d"));
  cli_result_free(&r);
  sf_assert_dump(path, ALL_REQUESTS, fresh);
  sf_assert_dump(path, "SELECT session_id FROM sessions ORDER BY session_id",
                 "s-a-old-open\ns-a-recent-ended\ns-b-weird\n");
  sf_assert_text(path, "PRAGMA integrity_check", "ok");
  int64_t bytes_after = file_bytes(path, "") + file_bytes(path, "-wal");
  if (bytes_after >= bytes_before)
    fail_msg("store did not shrink: %lld -> %lld bytes", (long long)bytes_before,
             (long long)bytes_after);

  /* Again: nothing left to delete; still valid and readable. */
  RUN_ON(&r, path, "store", "vacuum", "--before", "7d");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "Deleted 0 requests and 0 sessions"));
  cli_result_free(&r);
  RUN_ON(&r, path, "store", "stats", "--json");
  assert_int_equal(r.exit_code, 0);
  json_t *o = nd_line(r.out, 0);
  assert_int_equal(ji(o, "total_requests"), 15);
  assert_int_equal(ji(o, "total_sessions"), 3);
  json_decref(o);
  cli_result_free(&r);
  sf_assert_text(path, "PRAGMA integrity_check", "ok");
  free(requests0);
  free(sessions0);
  free(schema0);
  free(fresh);
  free(b_rows);
  free(path);
}

/* ---------- vacuum beside a live writer ---------- */

#define WRITER_RUN_MS 3000
#define OLD_ROWS 20000

/*
 * The child: record requests of proxy "live" for WRITER_RUN_MS, flushing
 * every 50; report on fd "confirmed accepted written failed flush_errors
 * busy_waits":
 * confirmed = events accepted before the last flush that returned MCPR_OK.
 * No cmocka in here: the child only reports, the parent judges.
 */
static void writer_child(const char *path, int fd) {
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  if (mcpr_store_open(&s, path, NULL, &err) != MCPR_OK)
    _exit(3);
  long long accepted = 0, confirmed = 0, flush_errors = 0;
  int64_t end = tu_mono_ms() + WRITER_RUN_MS;
  while (tu_mono_ms() < end) {
    int64_t ts = mcpr_now_ms();
    char id[MCPR_UUID_STRLEN + 1];
    mcpr_uuid_v7(ts, id);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = ts, .proxy = "live",
                                       .method = "tools/call", .tool = "w", .latency_us = 1,
                                       .status = MCPR_REQUEST_OK, .bytes_in = -1,
                                       .bytes_out = -1};
    if (mcpr_store_record(s, &e) == MCPR_OK)
      accepted++;
    else
      usleep(2000);
    if (accepted % 50 == 0) {
      if (mcpr_store_flush(s, 60000, &err) == MCPR_OK)
        confirmed = accepted;
      else
        flush_errors++;
    }
    usleep(200);
  }
  if (mcpr_store_flush(s, 60000, &err) == MCPR_OK)
    confirmed = accepted;
  else
    flush_errors++;
  mcpr_store_stats st;
  mcpr_store_close(s, &st);
  char line[256];
  int n = snprintf(line, sizeof line, "%lld %lld %llu %llu %lld %llu\n", confirmed, accepted,
                   (unsigned long long)st.written,
                   (unsigned long long)mcpr_store_stats_failed(&st), flush_errors,
                   (unsigned long long)st.busy_waits);
  if (write(fd, line, (size_t)n) != n)
    _exit(4);
  _exit(0);
}

static long long next_number(char **p) {
  char *end;
  errno = 0;
  long long v = strtoll(*p, &end, 10);
  if (end == *p || errno)
    fail_msg("bad report from the writer child: %s", *p);
  *p = end;
  return v;
}

static void test_vacuum_beside_live_writer(void **state) {
  (void)state;
  char *path = tu_path(fx_dir, "live.db");
  int64_t old = mcpr_now_ms() - 2 * DAY_MS;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  for (int i = 0; i < OLD_ROWS; i++) {
    big_request(s, old + i, "old", NULL);
    if (i % 5000 == 4999)
      assert_int_equal(mcpr_store_flush(s, 60000, &err), MCPR_OK);
  }
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(pfd[0]);
    writer_child(path, pfd[1]);
  }
  close(pfd[1]);
  usleep(300000); /* the writer is up and writing */
  cli_result r;
  for (int round = 0; round < 2; round++) {
    RUN_ON(&r, path, "store", "vacuum", "--before", "1h");
    if (r.exit_code != 0 || !strstr(r.out, "Deleted"))
      fail_msg("vacuum %d: exit %d\n%s%s", round, r.exit_code, r.out, r.err);
    if (round == 0)
      assert_non_null(strstr(r.out, "Deleted 20000 requests"));
    cli_result_free(&r);
    usleep(300000);
  }
  char report[256] = "";
  size_t got = 0;
  for (;;) {
    ssize_t n = read(pfd[0], report + got, sizeof report - 1 - got);
    if (n > 0) {
      got += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    break;
  }
  report[got] = '\0';
  close(pfd[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("writer child failed (status %d), report: %s", status, report);
  char *p = report;
  long long confirmed = next_number(&p), accepted = next_number(&p),
            written = next_number(&p), failed = next_number(&p),
            flush_errors = next_number(&p), busy_waits = next_number(&p);
  /* How often the writer met vacuum's lock: shown, not asserted (timing). */
  print_message("writer: %lld events confirmed, %lld batches retried after a lock timeout\n",
                confirmed, busy_waits);
  assert_true(confirmed > 100);
  assert_int_equal(flush_errors, 0);
  assert_int_equal(failed, 0);
  assert_int_equal(confirmed, accepted);
  assert_int_equal(written, accepted);
  /* Every confirmed event is there, once; the old rows are gone. */
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE proxy = 'live'"),
                   confirmed);
  assert_int_equal(tu_sql_int(path, "SELECT count(DISTINCT request_id) FROM requests"),
                   confirmed);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE proxy = 'old'"), 0);
  sf_assert_text(path, "PRAGMA integrity_check", "ok");
  free(path);
}

static void test_rollup(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "rollup.db");
  fx_build(path);
  int64_t top = tu_sql_int(path, "SELECT max(id) FROM requests");
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'"), top);
  /* As the original or an older mcpr leaves it: no rollups. */
  sf_exec(path, "DELETE FROM mcpr_rollup_hour; DELETE FROM mcpr_rollup_day;"
                 " UPDATE mcpr_rollup_state SET value = 0 WHERE key = 'watermark'");
  cli_result r;
  RUN_ON(&r, path, "proxy", "status", "--since", "1d", "--json");
  assert_int_equal(r.exit_code, 0);
  char *before = strdup(r.out);
  cli_result_free(&r);

  RUN_ON(&r, path, "store", "rollup");
  assert_int_equal(r.exit_code, 0);
  char want[128];
  snprintf(want, sizeof want, "Rolled up %lld requests", (long long)top);
  assert_non_null(strstr(r.out, want));
  assert_non_null(strstr(r.out, "0 left"));
  assert_int_equal(r.err_len, 0); /* no progress when stderr is not a terminal */
  cli_result_free(&r);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'"), top);
  assert_int_equal(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_hour"), top);

  /* Same answers from the rollups, and with --exact. */
  RUN_ON(&r, path, "proxy", "status", "--since", "1d", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(r.out, before);
  cli_result_free(&r);
  RUN_ON(&r, path, "proxy", "status", "--since", "1d", "--exact", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(r.out, before);
  cli_result_free(&r);
  RUN_ON(&r, path, "store", "rollup", "extra");
  assert_int_equal(r.exit_code, 2);
  cli_result_free(&r);
  free(before);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rollup),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_vacuum),
      cmocka_unit_test(test_vacuum_beside_live_writer),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

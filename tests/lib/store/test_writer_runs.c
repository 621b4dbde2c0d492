/*
 * The SQLite writer inserts requests in runs (16 rows per INSERT) and
 * rolls its own batch up from the rows it wrote rather than reading them
 * back. Both are invisible to a user: the same rows, outcomes, session
 * counters and rollups as one row at a time — checked here with runs full
 * of duplicates (from earlier batches and within the run), a row SQLite
 * refuses in the middle of a run, rows another writer added between
 * batches, and rollups compared with a recomputation from the rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/mcpr.h"
#include "store_fixtures.h"
#include "testutil.h"

#define NEVER_MS 600000
#define HOUR_MS 3600000LL

static char ids[512][32];

/* Request i of the traffic: two sessions, four labels (a tool or, without
 * one, the method), a status, latency and sizes varying with i, spread
 * over three hours. */
static mcpr_store_event request_n(int i, const char *prefix) {
  snprintf(ids[i % 512], sizeof ids[0], "%s-%04d", prefix, i);
  mcpr_store_event e = sf_request(ids[i % 512], 1700000000000LL + (i % 3) * HOUR_MS + i,
                                  i % 2 ? "s-1" : "s-2");
  mcpr_request_event *r = &e.u.request;
  static const char *const tools[] = {"search", "fetch", NULL, "write"};
  r->tool = tools[i % 4];
  if (!r->tool)
    r->method = "resources/read";
  r->status = i % 5 == 0 ? MCPR_REQUEST_ERROR : (i % 7 == 0 ? MCPR_REQUEST_TIMEOUT : MCPR_REQUEST_OK);
  r->latency_us = 100 + (i * 37) % 5000;
  r->bytes_in = i % 6 == 0 ? -1 : 10 + i;
  r->bytes_out = i % 9 == 0 ? -1 : 20 + 2 * i;
  return e;
}

static void flush_ok(mcpr_store *s) {
  mcpr_error err = {0};
  mcpr_status st = mcpr_store_flush(s, 30000, &err);
  if (st != MCPR_OK && st != MCPR_ECONSTRAINT)
    fail_msg("flush: %s: %s", mcpr_status_name(st), err.message);
}

/* The rollups hold exactly what the rows say, per hour and label, and
 * the watermark is the last id. */
static void assert_rollups_match_rows(const char *path) {
  const char *from_rows =
      "SELECT ts / 3600000, proxy, tool IS NOT NULL, coalesce(tool, method), count(*),"
      " sum(status <> 'ok'), sum(latency_us), min(latency_us), max(latency_us),"
      " coalesce(sum(bytes_in), 0), coalesce(sum(bytes_out), 0), max(ts) FROM requests"
      " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";
  const char *from_rollups =
      "SELECT hour, proxy, is_tool, name, calls, errors, sum_us, min_us, max_us, bytes_in,"
      " bytes_out, last_ts FROM mcpr_rollup_hour ORDER BY 1, 2, 3, 4";
  char *want = sf_sql_dump(path, from_rows);
  sf_assert_dump(path, from_rollups, want);
  free(want);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key='watermark'"),
                   tu_sql_int(path, "SELECT max(id) FROM requests"));
}

/* Session counters are the sums of their rows. */
static void assert_sessions_match_rows(const char *path) {
  char *want = sf_sql_dump(path, "SELECT session_id, count(*), sum(status <> 'ok') FROM requests"
                                 " WHERE session_id IS NOT NULL GROUP BY 1 ORDER BY 1");
  sf_assert_dump(path, "SELECT session_id, total_calls, total_errors FROM sessions ORDER BY 1",
                 want);
  free(want);
}

static mcpr_store *open_with_sessions(const char *path) {
  mcpr_store *s = sf_open(path, 0, NEVER_MS);
  sf_record(s, sf_session("s-1", 1000, "cursor"));
  sf_record(s, sf_session("s-2", 1000, "claude"));
  return s;
}

static void test_runs_write_what_rows_would(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "runs.db");
  mcpr_store *s = open_with_sessions(path);
  for (int i = 0; i < 16 * 5 + 7; i++) /* five runs and a tail */
    sf_record(s, request_n(i, "a"));
  flush_ok(s);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 87);
  assert_rollups_match_rows(path);
  assert_sessions_match_rows(path);
  /* the columns as given, NULL sizes included */
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE bytes_in IS NULL"), 15);
  int errors = 0, timeouts = 0;
  for (int i = 0; i < 87; i++) {
    errors += i % 5 == 0;
    timeouts += i % 5 != 0 && i % 7 == 0;
  }
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE status = 'error'"), errors);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE status = 'timeout'"),
                   timeouts);
  assert_int_equal(tu_sql_int(path, "SELECT sum(latency_us) FROM requests WHERE request_id"
                                    " IN ('a-0016', 'a-0017')"),
                   (100 + (16 * 37) % 5000) + (100 + (17 * 37) % 5000));
  mcpr_store_stats st;
  assert_int_equal(mcpr_store_close(s, &st), MCPR_OK);
  assert_int_equal(st.written, 2 + 87);
  assert_int_equal(st.duplicates, 0);
  free(path);
  tu_rmdir(dir);
}

static void test_duplicates_inside_runs(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "dups.db");
  mcpr_store *s = open_with_sessions(path);
  for (int i = 0; i < 20; i++)
    sf_record(s, request_n(i, "d"));
  flush_ok(s);
  /* A run of 16: 3 sent before, 1 twice within the run, 12 new. */
  sf_record(s, request_n(3, "d"));
  sf_record(s, request_n(100, "d"));
  sf_record(s, request_n(11, "d"));
  for (int i = 101; i < 111; i++)
    sf_record(s, request_n(i, "d"));
  sf_record(s, request_n(104, "d")); /* again, same run */
  sf_record(s, request_n(19, "d"));
  sf_record(s, request_n(111, "d"));
  /* A run of nothing but duplicates. */
  for (int i = 0; i < 16; i++)
    sf_record(s, request_n(i, "d"));
  flush_ok(s);
  mcpr_store_stats st;
  mcpr_store_stats_get(s, &st);
  assert_int_equal(st.written, 2 + 20 + 12);
  assert_int_equal(st.duplicates, 4 + 16);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 32);
  /* the first of a repeated id is the one kept */
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE request_id = 'd-0104'"),
                   1);
  assert_rollups_match_rows(path);
  assert_sessions_match_rows(path);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  free(path);
  tu_rmdir(dir);
}

static void test_refused_row_in_a_run(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "refused.db");
  mcpr_store *s = open_with_sessions(path);
  flush_ok(s);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  sf_exec(path, "CREATE TRIGGER refuse_bad BEFORE INSERT ON requests"
                " WHEN NEW.request_id = 'r-0005' BEGIN SELECT RAISE(ABORT, 'refused'); END");
  s = sf_open(path, 0, NEVER_MS);
  for (int i = 0; i < 32; i++)
    sf_record(s, request_n(i, "r"));
  flush_ok(s);
  mcpr_store_stats st;
  assert_int_equal(mcpr_store_close(s, &st), MCPR_ECONSTRAINT);
  assert_int_equal(st.written, 31);
  assert_int_equal(st.failed_constraint, 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 31);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE request_id = 'r-0005'"),
                   0);
  assert_rollups_match_rows(path);
  assert_sessions_match_rows(path);
  free(path);
  tu_rmdir(dir);
}

/* A row the run's INSERT skips that is not a duplicate (here: it breaks
 * a UNIQUE index of somebody else's) is a refused row, not a duplicate. */
static void test_skipped_row_is_not_a_duplicate(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "skipped.db");
  mcpr_store *s = open_with_sessions(path);
  flush_ok(s);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  sf_exec(path, "CREATE UNIQUE INDEX one_latency ON requests(latency_us)");
  s = sf_open(path, 0, NEVER_MS);
  for (int i = 0; i < 32; i++) {
    mcpr_store_event e = request_n(i, "u");
    e.u.request.latency_us = i == 9 ? 1000 + 3 : 1000 + i; /* 9 repeats 3's */
    sf_record(s, e);
  }
  flush_ok(s);
  mcpr_store_stats st;
  assert_int_equal(mcpr_store_close(s, &st), MCPR_ECONSTRAINT);
  assert_int_equal(st.written, 31);
  assert_int_equal(st.duplicates, 0);
  assert_int_equal(st.failed_constraint, 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE request_id = 'u-0009'"),
                   0);
  assert_rollups_match_rows(path);
  assert_sessions_match_rows(path);
  free(path);
  tu_rmdir(dir);
}

/* Rows another writer adds between two batches are read back by the next
 * catch-up; then feeding resumes. */
static void test_rows_of_another_writer(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "other.db");
  mcpr_store *s = open_with_sessions(path);
  for (int i = 0; i < 40; i++)
    sf_record(s, request_n(i, "o"));
  flush_ok(s);
  sf_exec(path, "INSERT INTO requests (request_id, ts, proxy, method, tool, latency_us, status)"
                " VALUES ('x-1', 1700000000500, 'p', 'tools/call', 'search', 777, 'error'),"
                " ('x-2', 1700003600500, 'other', 'tools/call', 'zzz', 5, 'ok')");
  for (int i = 40; i < 80; i++)
    sf_record(s, request_n(i, "o"));
  flush_ok(s);
  assert_rollups_match_rows(path);
  for (int i = 80; i < 100; i++)
    sf_record(s, request_n(i, "o"));
  flush_ok(s);
  assert_rollups_match_rows(path);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 102);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_runs_write_what_rows_would),
      cmocka_unit_test(test_duplicates_inside_runs),
      cmocka_unit_test(test_refused_row_in_a_run),
      cmocka_unit_test(test_skipped_row_is_not_a_duplicate),
      cmocka_unit_test(test_rows_of_another_writer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

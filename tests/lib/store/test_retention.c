// ctest-labels: tsan
/*
 * Retention ([store] retention, keep_errors, rollup_retention) run by the
 * writer: it deletes exactly the requests past their cutoff (failed ones
 * only past keep_errors), the ended sessions left without requests, and
 * the rollup hours past rollup_retention; the counters in the store file
 * say exactly what went; and `status` over a window older than retention
 * still gives the counts it gave before — the rollups keep counting the
 * deleted rows, nothing is counted twice (rows another writer added above
 * the rollups' watermark are never deleted before they are rolled up, and
 * count once), nothing is lost. A writer that writes afterwards adds to
 * those counts exactly. store stats' number of requests, read from the
 * rollups and the gap retention keeps, is the number of rows — after
 * retention, after a vacuum, with rows another program added.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/sqlite/query.h"
#include "mcpr/mcpr.h"
#include "retention_days.h"
#include "store_fixtures.h"
#include "testutil.h"

#define HOUR RD_HOUR
#define DAY RD_DAY
#define DAYS RD_DAYS
#define PER_SESSION RD_PER_SESSION

static int64_t floor_hour(int64_t ms) { return ms / HOUR * HOUR; }

static void record(mcpr_store *s, const mcpr_store_event *e) {
  while (mcpr_store_record(s, e) == MCPR_EQUEUEFULL)
    tu_sleep_ms(5);
}

/* Rows another writer adds (the original): above the watermark. */
static void old_row(void *ctx, int i, sf_request_row *r) {
  snprintf(r->request_id, sizeof r->request_id, "raw-%d", i);
  r->ts = *(const int64_t *)ctx + i;
  r->proxy = "a";
  r->method = "tools/call";
  r->tool = "search";
  r->latency_us = 500;
  r->bytes_in = r->bytes_out = -1;
}

static void insert_raw_old(const char *path, int64_t ts, int n) {
  sf_insert_requests(path, n, old_row, &ts);
}

typedef rd_totals totals;

static totals stats_since(const char *path, int64_t since) {
  return rd_stats_since(path, since, mcpr__query_sqlite_set_rollup_raw_max);
}

static void write_days(const char *path, int64_t now, const mcpr_store_options *o) {
  rd_write_days(path, now, o);
}

static void assert_totals_equal(totals a, totals b) { rd_assert_totals_equal(a, b); }

static mcpr_store_info info(const char *path) { return rd_info(path); }

__attribute__((format(printf, 2, 0))) static int64_t sql_int(const char *path, const char *fmt,
                                                           int64_t a) {
  char sql[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
  snprintf(sql, sizeof sql, fmt, (long long)a);
#pragma GCC diagnostic pop
  return tu_sql_int(path, sql);
}

/* The retention options of these tests: 30 days, failed ones 45, rollups 50. */
static mcpr_store_options with_retention(void) {
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  o.retention_ms = 30 * DAY;
  o.keep_errors_ms = 45 * DAY;
  o.rollup_retention_ms = 50 * DAY;
  return o;
}

static void test_retention_keeps_rollup_counts(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms();
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  write_days(path, now, &o);
  /* 20 rows from another writer, 40 days old: above the watermark. */
  insert_raw_old(path, now - 40 * DAY, 20);
  int64_t watermark =
      tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'");
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE id > (SELECT value"
                                    " FROM mcpr_rollup_state WHERE key = 'watermark')"),
                   20);

  const int64_t cutoff = floor_hour(now - 30 * DAY), err_cutoff = floor_hour(now - 45 * DAY);
  const int64_t rollup_cut_hour = (now - 50 * DAY) / HOUR;
  totals before49 = stats_since(path, now - 49 * DAY);
  totals before20 = stats_since(path, now - 20 * DAY);
  totals before90 = stats_since(path, now - 90 * DAY);
  assert_int_equal(before90.calls, DAYS * PER_SESSION + 20);
  int64_t rows_before = tu_sql_int(path, "SELECT count(*) FROM requests");
  int64_t want_deleted =
      sql_int(path, "SELECT count(*) FROM requests WHERE ts < %lld", err_cutoff);
  {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM requests WHERE status = 'ok' AND ts >= %lld AND ts < %lld"
             " AND id <= %lld",
             (long long)err_cutoff, (long long)cutoff, (long long)watermark);
    want_deleted += tu_sql_int(path, sql);
  }
  /* Sessions: ended (k >= 2) before the cutoff with nothing left, i.e.
   * those older than keep_errors (their failed requests are gone too). */
  int64_t want_sessions =
      sql_int(path, "SELECT count(*) FROM sessions WHERE started_at < %lld", err_cutoff);
  int64_t want_rollups =
      sql_int(path, "SELECT count(*) FROM mcpr_rollup_hour WHERE hour < %lld", rollup_cut_hour);
  assert_true(want_deleted > 0 && want_sessions > 0 && want_rollups > 0);
  assert_int_equal(info(path).retention_last_run_ms, 0);

  /* A writer with retention on: it works while idle. */
  o = with_retention();
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  int64_t deadline = tu_mono_ms() + 60000;
  mcpr_store_info in;
  do {
    tu_sleep_ms(20);
    in = info(path);
  } while (in.retention_rollups_deleted < want_rollups && tu_mono_ms() < deadline);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  /* Exactly what was due went, and the file says so. */
  in = info(path);
  assert_int_equal(in.retention_requests_deleted, want_deleted);
  assert_int_equal(in.retention_sessions_deleted, want_sessions);
  assert_int_equal(in.retention_rollups_deleted, want_rollups);
  assert_true(in.retention_last_run_ms >= now);
  assert_int_equal(in.total_requests, rows_before - want_deleted);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), rows_before - want_deleted);
  assert_int_equal(sql_int(path, "SELECT count(*) FROM requests WHERE ts < %lld", err_cutoff), 0);
  {
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM requests WHERE status = 'ok' AND ts < %lld AND id <= %lld",
             (long long)cutoff, (long long)watermark);
    assert_int_equal(tu_sql_int(path, sql), 0);
  }
  /* The failed requests between the cutoffs are kept, and so their
   * sessions; the other writer's rows were not rolled up: still there. */
  assert_true(sql_int(path, "SELECT count(*) FROM requests WHERE status = 'error' AND ts < %lld",
                      cutoff) > 0);
  assert_int_equal(sql_int(path, "SELECT count(*) FROM requests WHERE id > %lld", watermark), 20);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions"), DAYS - want_sessions);
  assert_int_equal(sql_int(path, "SELECT count(*) FROM mcpr_rollup_hour WHERE hour < %lld",
                           rollup_cut_hour),
                   0);
  /* The daily level follows: no day before the cut's, and every day is
   * still the sum of its hours. */
  assert_int_equal(sql_int(path, "SELECT count(*) FROM mcpr_rollup_day WHERE day < %lld",
                           rollup_cut_hour / 24),
                   0);
  assert_int_equal(tu_sql_int(path, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_day"),
                   tu_sql_int(path, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_hour"));

  /* Status over windows older than retention: the same counts as before. */
  assert_totals_equal(stats_since(path, now - 49 * DAY), before49);
  assert_totals_equal(stats_since(path, now - 20 * DAY), before20);
  totals after90 = stats_since(path, now - 90 * DAY);
  assert_true(after90.calls < before90.calls); /* the rollups past 50 days went */
  /* --exact reads the raw rows: what is left of them. */
  {
    mcpr_query *q = NULL;
    assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
    mcpr_stats st;
    mcpr_stats_filter f = {NULL, now - 20 * DAY, 1};
    assert_int_equal(mcpr_query_stats(q, &f, &st, &err), MCPR_OK);
    assert_int_equal(st.total_calls, before20.calls);
    mcpr_stats_release(&st);
    mcpr_query_close(q);
  }

  /* A later writer (retention off) rolls the other writer's rows up and
   * adds its own: each counts once. */
  mcpr_store_options_init(&o);
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  char id[MCPR_UUID_STRLEN + 1];
  mcpr_uuid_v7(now - 40 * DAY, id);
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
  e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = now - 40 * DAY, .proxy = "a",
                                     .method = "tools/call", .tool = "search",
                                     .latency_us = 10, .status = MCPR_REQUEST_ERROR,
                                     .bytes_in = 1, .bytes_out = -1};
  record(s, &e);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE id > (SELECT value"
                                    " FROM mcpr_rollup_state WHERE key = 'watermark')"),
                   0);
  totals later = stats_since(path, now - 49 * DAY);
  assert_int_equal(later.calls, before49.calls + 1);
  assert_int_equal(later.errors, before49.errors + 1);
  assert_int_equal(later.search_calls, before49.search_calls + 1);
  assert_int_equal(later.bytes_in, before49.bytes_in + 1);

  /* Retention again: the other writer's rows, rolled up now, go too, and
   * the counts still hold. */
  int64_t deleted_before = in.retention_requests_deleted;
  o = with_retention();
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  deadline = tu_mono_ms() + 60000;
  do {
    tu_sleep_ms(20);
    in = info(path);
  } while (in.retention_requests_deleted < deleted_before + 20 && tu_mono_ms() < deadline);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  assert_int_equal(info(path).retention_requests_deleted, deleted_before + 20);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE request_id LIKE 'raw-%'"),
                   0);
  assert_totals_equal(stats_since(path, now - 49 * DAY), later);
  /* store stats counts the requests from the rollups and the gap
   * retention left in them: exactly the rows. */
  assert_int_equal(info(path).total_requests, tu_sql_int(path, "SELECT count(*) FROM requests"));

  /* A vacuum deletes rows and the rollups of their hours: the count
   * still holds. */
  {
    mcpr_query *q = NULL;
    assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
    mcpr_vacuum_options vo = {.before_ms = now - 35 * DAY};
    mcpr_vacuum_result vr;
    assert_int_equal(mcpr_query_vacuum(q, &vo, &vr, &err), MCPR_OK);
    assert_true(vr.requests_deleted > 0);
    mcpr_query_close(q);
  }
  assert_int_equal(info(path).total_requests, tu_sql_int(path, "SELECT count(*) FROM requests"));
  /* Rows another program adds are counted too. */
  insert_raw_old(path, now - HOUR, 7);
  assert_int_equal(info(path).total_requests, tu_sql_int(path, "SELECT count(*) FROM requests"));

  free(path);
  tu_rmdir(dir);
}

/* The file holds together whenever a writer stops: the counters say what
 * the rows no longer hold, store stats counts the rows, and the rollups
 * still count what retention deleted inside the window they keep (from
 * the whole hour 49 days ago: before49). */
static void assert_consistent(const char *path, int64_t rows_before, int64_t now,
                              totals before49) {
  mcpr_store_info in = info(path);
  int64_t rows = tu_sql_int(path, "SELECT count(*) FROM requests");
  assert_int_equal(in.retention_requests_deleted, rows_before - rows);
  assert_int_equal(in.total_requests, rows);
  assert_totals_equal(stats_since(path, floor_hour(now - 49 * DAY)), before49);
  assert_int_equal(tu_sql_int(path, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_day"),
                   tu_sql_int(path, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_hour"));
}

/* kill -9 during a retention round (each step is one transaction), then a
 * writer with the same retention finishes it: exactly what was due went. */
static void test_retention_kill9(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms();
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  for (int i = 0; i < 20000; i++) {
    int64_t ts = now - (int64_t)(((uint64_t)i * 2654435761u) % (uint64_t)(60 * DAY));
    char id[MCPR_UUID_STRLEN + 1];
    mcpr_uuid_v7(ts, id);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){
        .request_id = id, .ts_ms = ts, .proxy = i % 2 ? "a" : "b", .method = "tools/call",
        .tool = i % 2 ? "fetch" : "search", .latency_us = 10 + i % 300,
        .status = i % 7 ? MCPR_REQUEST_OK : MCPR_REQUEST_ERROR, .bytes_in = i % 50,
        .bytes_out = -1};
    record(s, &e);
  }
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  const int64_t cutoff = floor_hour(now - 30 * DAY), err_cutoff = floor_hour(now - 45 * DAY);
  int64_t rows_before = tu_sql_int(path, "SELECT count(*) FROM requests");
  int64_t want_deleted =
      sql_int(path, "SELECT count(*) FROM requests WHERE ts < %lld", err_cutoff) +
      sql_int(path, "SELECT count(*) FROM requests WHERE status = 'ok' AND ts < %lld", cutoff) -
      sql_int(path, "SELECT count(*) FROM requests WHERE status = 'ok' AND ts < %lld",
              err_cutoff);
  /* A window of whole hours: the rollups answer it all (a partial first
   * hour is read raw, and its deleted rows would be missing). */
  totals before49 = stats_since(path, floor_hour(now - 49 * DAY));
  assert_true(want_deleted > 4 * 2000); /* several steps of RETENTION_CHUNK */

  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    o = with_retention();
    if (mcpr_store_open(&s, path, &o, &err) != MCPR_OK)
      _exit(2);
    for (;;)
      pause();
  }
  int64_t deadline = tu_mono_ms() + 30000;
  while (tu_sql_int_or_zero(path, "SELECT count(*) FROM mcpr_retention_state"
                                  " WHERE key = 'requests_deleted' AND value > 0") == 0 &&
         tu_mono_ms() < deadline)
    ;
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  assert_true(WIFSIGNALED(status));
  int64_t deleted = info(path).retention_requests_deleted;
  print_message("killed after %lld of %lld deletes\n", (long long)deleted,
                (long long)want_deleted);
  assert_true(deleted > 0 && deleted <= want_deleted);
  assert_consistent(path, rows_before, now, before49);

  o = with_retention();
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  deadline = tu_mono_ms() + 60000;
  while (info(path).retention_requests_deleted < want_deleted && tu_mono_ms() < deadline)
    tu_sleep_ms(20);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  assert_int_equal(info(path).retention_requests_deleted, want_deleted);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), rows_before - want_deleted);
  assert_consistent(path, rows_before, now, before49);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_retention_keeps_rollup_counts),
      cmocka_unit_test(test_retention_kill9),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

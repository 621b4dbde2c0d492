// ctest-labels: tsan
/*
 * Retention ([store] retention, keep_errors, rollup_retention) on a
 * PostgreSQL store, as tests/lib/store/test_retention.c checks it on
 * SQLite: the writer deletes exactly the requests past their cutoff
 * (failed ones only past keep_errors), the ended sessions left without
 * requests and the rollup hours past rollup_retention; the counters in the
 * store say exactly what went (`store stats`); `status` over a window
 * older than retention still gives the counts it gave before (the rollups
 * keep counting the deleted rows); rows another program inserted are
 * counted once, then go like the others. Two writers with retention on
 * at once delete each row once. `mcpr store rollup` counts the rows
 * another program inserted, and so does a writer after its batches; the
 * figures stay the same. Skipped
 * without MCPR_TEST_PG_URL.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/postgres/postgres.h"
#include "cli.h"
#include "mcpr/mcpr.h"
#include "pg_fixture.h"
#include "retention_days.h"
#include "testutil.h"

#define HOUR RD_HOUR
#define DAY RD_DAY
#define DAYS RD_DAYS
#define PER_SESSION RD_PER_SESSION

static int64_t floor_hour(int64_t ms) { return ms / HOUR * HOUR; }

static void write_days(const char *url, int64_t now) {
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  rd_write_days(url, now, &o);
}

/* Rows another program inserts: not counted by the rollups. */
static void insert_raw(const pg_space *sp, int64_t ts, int n) {
  PGconn *c = pg_admin(sp->url);
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO requests (request_id, ts, proxy, method, tool, latency_us, status)"
           " SELECT 'raw-' || g, %lld + g, 'a', 'tools/call', 'search', 500, 'ok'"
           " FROM generate_series(0, %d) g",
           (long long)ts, n - 1);
  pg_exec_ok(c, sql);
  PQfinish(c);
}

typedef rd_totals totals;

static totals stats_since(const char *url, int64_t since) {
  return rd_stats_since(url, since, mcpr__query_pg_set_rollup_raw_max);
}

static mcpr_store_info info(const char *url) { return rd_info(url); }

__attribute__((format(printf, 2, 3))) static long long sqlf(const pg_space *sp, const char *fmt,
                                                             ...) {
  char sql[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  return pg_int(sp, sql);
}

static mcpr_store_options retention_options(void) {
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  o.retention_ms = 30 * DAY;
  o.keep_errors_ms = 45 * DAY;
  o.rollup_retention_ms = 50 * DAY;
  return o;
}

/* Open n writers with retention on, wait until info(url) shows pred,
 * close them. */
static mcpr_store_info run_writers(const char *url, int n, bool (*done)(const mcpr_store_info *,
                                                                       int64_t),
                                   int64_t arg) {
  mcpr_store_options o = retention_options();
  mcpr_store *s[2] = {NULL, NULL};
  mcpr_error err = {0};
  for (int i = 0; i < n; i++)
    assert_int_equal(mcpr_store_open(&s[i], url, &o, &err), MCPR_OK);
  int64_t deadline = tu_mono_ms() + 60000;
  mcpr_store_info in;
  do {
    tu_sleep_ms(20);
    in = info(url);
  } while (!done(&in, arg) && tu_mono_ms() < deadline);
  for (int i = 0; i < n; i++)
    assert_int_equal(mcpr_store_close(s[i], NULL), MCPR_OK);
  return info(url);
}

static bool rollups_gone(const mcpr_store_info *in, int64_t want) {
  return in->retention_rollups_deleted >= want;
}

static bool requests_gone(const mcpr_store_info *in, int64_t want) {
  return in->retention_requests_deleted >= want;
}

static void test_retention_keeps_rollup_counts(void **state) {
  (void)state;
  PG_REQUIRE();
  int lock = pg_lock(0);
  pg_space sp;
  pg_space_init(&sp, "retention");
  int64_t now = mcpr_now_ms();
  write_days(sp.url, now);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM requests WHERE NOT rolled"), 0);
  /* 20 rows from another program, 40 days old: not counted yet. */
  insert_raw(&sp, now - 40 * DAY, 20);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM requests WHERE NOT rolled"), 20);

  const int64_t cutoff = floor_hour(now - 30 * DAY), err_cutoff = floor_hour(now - 45 * DAY);
  const int64_t rollup_cut_hour = (now - 50 * DAY) / HOUR;
  totals before49 = stats_since(sp.url, now - 49 * DAY);
  totals before20 = stats_since(sp.url, now - 20 * DAY);
  totals before90 = stats_since(sp.url, now - 90 * DAY);
  assert_int_equal(before90.calls, DAYS * PER_SESSION + 20);
  long long rows_before = pg_int(&sp, "SELECT count(*) FROM requests");
  /* The other program's rows are counted at the round's start, then go
   * with the others (ok, between the cutoffs). */
  long long want_deleted =
      sqlf(&sp, "SELECT count(*) FROM requests WHERE ts < %lld", (long long)err_cutoff) +
      sqlf(&sp,
           "SELECT count(*) FROM requests WHERE status = 'ok' AND ts >= %lld AND ts < %lld",
           (long long)err_cutoff, (long long)cutoff);
  long long want_sessions = sqlf(&sp, "SELECT count(*) FROM sessions WHERE started_at < %lld",
                                 (long long)err_cutoff);
  long long want_rollups = sqlf(&sp, "SELECT count(*) FROM mcpr_rollup_hour WHERE hour < %lld",
                                (long long)rollup_cut_hour);
  assert_true(want_deleted > 20 && want_sessions > 0 && want_rollups > 0);
  assert_int_equal(info(sp.url).retention_last_run_ms, 0);

  /* Two writers with retention on at once: one step at a time, each row
   * deleted (and counted) once. */
  mcpr_store_info in = run_writers(sp.url, 2, rollups_gone, want_rollups);
  assert_int_equal(in.retention_requests_deleted, want_deleted);
  assert_int_equal(in.retention_sessions_deleted, want_sessions);
  assert_int_equal(in.retention_rollups_deleted, want_rollups);
  assert_true(in.retention_last_run_ms >= now);
  assert_int_equal(in.total_requests, rows_before - want_deleted);
  assert_int_equal(sqlf(&sp, "SELECT count(*) FROM requests WHERE ts < %lld",
                        (long long)err_cutoff),
                   0);
  assert_int_equal(sqlf(&sp, "SELECT count(*) FROM requests WHERE status = 'ok' AND ts < %lld",
                        (long long)cutoff),
                   0);
  assert_true(sqlf(&sp, "SELECT count(*) FROM requests WHERE status = 'error' AND ts < %lld",
                   (long long)cutoff) > 0);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM requests WHERE request_id LIKE 'raw-%'"),
                   0);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM sessions"), DAYS - want_sessions);
  assert_int_equal(sqlf(&sp, "SELECT count(*) FROM mcpr_rollup_hour WHERE hour < %lld",
                        (long long)rollup_cut_hour),
                   0);
  assert_int_equal(sqlf(&sp, "SELECT count(*) FROM mcpr_rollup_hour_sketch WHERE hour < %lld",
                        (long long)rollup_cut_hour),
                   0);
  /* The days follow: none before the cut's, each the sum of its hours. */
  assert_int_equal(sqlf(&sp, "SELECT count(*) FROM mcpr_rollup_day WHERE day < %lld",
                        (long long)(rollup_cut_hour / 24)),
                   0);
  assert_int_equal(pg_int(&sp, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_day"),
                   pg_int(&sp, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_hour"));
  assert_int_equal(pg_int(&sp, "SELECT coalesce(sum(n), 0) FROM mcpr_rollup_day_sketch"),
                   pg_int(&sp, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_day"));

  /* Status over windows older than retention: the same counts as before. */
  rd_assert_totals_equal(stats_since(sp.url, now - 49 * DAY), before49);
  rd_assert_totals_equal(stats_since(sp.url, now - 20 * DAY), before20);
  assert_true(stats_since(sp.url, now - 90 * DAY).calls < before90.calls);
  /* --exact reads the rows: what is left of them. */
  {
    mcpr_query *q = NULL;
    mcpr_error err = {0};
    assert_int_equal(mcpr_query_open(&q, sp.url, &err), MCPR_OK);
    mcpr_stats st;
    mcpr_stats_filter f = {NULL, now - 20 * DAY, 1};
    assert_int_equal(mcpr_query_stats(q, &f, &st, &err), MCPR_OK);
    assert_int_equal(st.total_calls, before20.calls);
    mcpr_stats_release(&st);
    mcpr_query_close(q);
  }

  /* More rows from another program: read raw (counted once) until a
   * round counts them and deletes them. */
  insert_raw(&sp, now - 40 * DAY + 1000, 5);
  totals later = stats_since(sp.url, now - 49 * DAY);
  assert_int_equal(later.calls, before49.calls + 5);
  int64_t deleted_before = in.retention_requests_deleted;
  in = run_writers(sp.url, 1, requests_gone, deleted_before + 5);
  assert_int_equal(in.retention_requests_deleted, deleted_before + 5);
  rd_assert_totals_equal(stats_since(sp.url, now - 49 * DAY), later);
  assert_int_equal(in.total_requests, pg_int(&sp, "SELECT count(*) FROM requests"));

  pg_space_drop(&sp);
  pg_unlock(lock);
}

/* Every row is counted, once, at both levels of the rollups. */
static void assert_all_rolled(const pg_space *sp) {
  long long rows = pg_int(sp, "SELECT count(*) FROM requests");
  assert_int_equal(pg_int(sp, "SELECT count(*) FROM requests WHERE NOT rolled"), 0);
  assert_int_equal(pg_int(sp, "SELECT sum(calls) FROM mcpr_rollup_hour"), rows);
  assert_int_equal(pg_int(sp, "SELECT sum(calls) FROM mcpr_rollup_day"), rows);
  assert_int_equal(pg_int(sp, "SELECT sum(n) FROM mcpr_rollup_hour_sketch"), rows);
  assert_int_equal(pg_int(sp, "SELECT sum(n) FROM mcpr_rollup_day_sketch"), rows);
}

/* n requests of tool search at now + i, latency latency0 − i, through a
 * writer, one batch each. */
static void write_search(const char *url, int64_t now, int n, int64_t latency0,
                         int64_t bytes_in) {
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, url, &o, &err), MCPR_OK);
  for (int i = 0; i < n; i++) {
    char id[MCPR_UUID_STRLEN + 1];
    mcpr_uuid_v7(now + i, id);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = now + i, .proxy = "a",
                                       .method = "tools/call", .tool = "search",
                                       .latency_us = latency0 - i, .status = MCPR_REQUEST_OK,
                                       .bytes_in = bytes_in, .bytes_out = -1};
    assert_int_equal(mcpr_store_record(s, &e), MCPR_OK);
    assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_OK);
  }
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
}

/* Rows another program inserts are read raw, counted once, until
 * `mcpr store rollup` counts them in the rollups (and flags them): the
 * same figures before and after, nothing counted twice. */
static void test_store_rollup_counts_other_rows(void **state) {
  (void)state;
  PG_REQUIRE();
  int lock = pg_lock(0);
  pg_space sp;
  pg_space_init(&sp, "storerollup");
  int64_t now = mcpr_now_ms();
  write_days(sp.url, now);
  insert_raw(&sp, now - 3 * DAY, 2500);
  totals before = stats_since(sp.url, now - 10 * DAY);
  long long rows = pg_int(&sp, "SELECT count(*) FROM requests");
  assert_int_equal(pg_int(&sp, "SELECT sum(calls) FROM mcpr_rollup_hour"), rows - 2500);
  cli_result r;
  cli_runv(&r, "store", "rollup", "--db", sp.url, NULL);
  if (r.exit_code != 0)
    fail_msg("store rollup: %s", r.err);
  cli_result_free(&r);
  assert_all_rolled(&sp);
  rd_assert_totals_equal(stats_since(sp.url, now - 10 * DAY), before);
  pg_space_drop(&sp);
  pg_unlock(lock);
}

/* A writer counts the rows another program inserted too, a chunk after
 * each batch, as the SQLite writer catches its watermark up. */
static void test_writer_counts_other_rows(void **state) {
  (void)state;
  PG_REQUIRE();
  int lock = pg_lock(0);
  pg_space sp;
  pg_space_init(&sp, "writercatchup");
  int64_t now = mcpr_now_ms();
  write_days(sp.url, now);
  insert_raw(&sp, now - 3 * DAY, 3000);
  totals before = stats_since(sp.url, now - 10 * DAY);
  write_search(sp.url, now, 2, 10, 1);
  assert_all_rolled(&sp);
  totals after = stats_since(sp.url, now - 10 * DAY);
  assert_int_equal(after.calls, before.calls + 2);
  assert_int_equal(after.search_calls, before.search_calls + 2);
  assert_int_equal(after.bytes_in, before.bytes_in + 2);
  pg_space_drop(&sp);
  pg_unlock(lock);
}

/* Latencies whose sum does not fit: both requests are stored and the
 * rollups' sums saturate, as the SQLite store's do, rather than failing
 * the batch. */
static void test_huge_latencies_saturate(void **state) {
  (void)state;
  PG_REQUIRE();
  int lock = pg_lock(0);
  pg_space sp;
  pg_space_init(&sp, "saturate");
  /* one batch each: the second and third add to the stored sums */
  write_search(sp.url, mcpr_now_ms(), 3, INT64_MAX, INT64_MAX / 2);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM requests"), 3);
  assert_int_equal(pg_int(&sp, "SELECT calls FROM mcpr_rollup_hour"), 3);
  assert_true(pg_int(&sp, "SELECT sum_us FROM mcpr_rollup_hour") == INT64_MAX);
  assert_true(pg_int(&sp, "SELECT bytes_in FROM mcpr_rollup_day") == INT64_MAX);
  pg_space_drop(&sp);
  pg_unlock(lock);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_retention_keeps_rollup_counts),
      cmocka_unit_test(test_store_rollup_counts_other_rows),
      cmocka_unit_test(test_writer_counts_other_rows),
      cmocka_unit_test(test_huge_latencies_saturate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

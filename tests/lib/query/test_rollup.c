/*
 * Rollups (backend/sqlite/rollup.h): stats read from the hourly rollups
 * give exactly the raw answer — labels, calls, errors, error %, avg, min,
 * max, bytes — and p95 within 1 % of the exact nearest-rank value, on
 * random stores, for windows that start mid-hour, one proxy or all; rows
 * another program adds after the rollups (the original writing the same
 * file) count exactly, and the next batch of our writer rolls them up.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sqlite/query.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

#define HOUR 3600000LL

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static const char *const PROXIES[] = {"a", "b", "c"};
static const char *const TOOLS[] = {"t0", "t1", "t2", "t3", NULL, NULL};
static const char *const METHODS[] = {"tools/list", "initialize", "resources/read"};

static int64_t latency(void) {
  switch (rnd() % 4) {
  case 0:
    return (int64_t)(rnd() % 300);
  case 1:
    return (int64_t)(100 / pow(unif() + 1e-9, 1.2));
  case 2:
    return (int64_t)exp(7 + 3 * unif());
  default:
    return unif() < 0.9 ? 900 : 30000000;
  }
}

static void write_store(const char *path, int64_t now, int n, int64_t span_ms) {
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  static const char tools[] = "{\"tools\":[{\"name\":\"t0\"},{\"name\":\"t1\"},"
                              "{\"name\":\"t2\"},{\"name\":\"t3\"},{\"name\":\"never\"}]}";
  mcpr_store_event sv = {.kind = MCPR_STORE_EVENT_SCHEMA_VERSION};
  sv.u.schema_version =
      (mcpr_schema_version_event){now - span_ms, "b", "http://up", "tools/list", tools, "h1"};
  assert_int_equal(mcpr_store_record(s, &sv), MCPR_OK);
  for (int i = 0; i < n; i++) {
    int64_t ts = now - (int64_t)(rnd() % (uint64_t)span_ms);
    const char *tool = TOOLS[rnd() % 6];
    char id[MCPR_UUID_STRLEN + 1];
    mcpr_uuid_v7(ts, id);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){
        .request_id = id, .ts_ms = ts, .proxy = PROXIES[rnd() % 3],
        .method = tool ? "tools/call" : METHODS[rnd() % 3], .tool = tool,
        .latency_us = latency(),
        .status = rnd() % 10 == 0 ? MCPR_REQUEST_ERROR
                                  : (rnd() % 50 == 0 ? MCPR_REQUEST_TIMEOUT : MCPR_REQUEST_OK),
        .bytes_in = rnd() % 3 ? (int64_t)(rnd() % 5000) : -1,
        .bytes_out = rnd() % 3 ? (int64_t)(rnd() % 50000) : -1};
    while (mcpr_store_record(s, &e) == MCPR_EQUEUEFULL)
      tu_sleep_ms(5);
  }
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
}

/* What the original (or any other writer) adds: plain INSERTs. */
static void insert_raw(const char *path, int64_t now, int n, int64_t span_ms) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = tu_sql_insert_begin(
      path,
      "INSERT INTO requests (request_id, ts, proxy, method,"
      " tool, latency_us, status, bytes_in, bytes_out)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
      &db);
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "raw-%d-%llu", i, (unsigned long long)rnd());
    const char *tool = TOOLS[rnd() % 6];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now - (int64_t)(rnd() % (uint64_t)span_ms));
    sqlite3_bind_text(st, 3, PROXIES[rnd() % 3], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, tool ? "tools/call" : METHODS[rnd() % 3], -1, SQLITE_STATIC);
    if (tool)
      sqlite3_bind_text(st, 5, tool, -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, latency());
    sqlite3_bind_text(st, 7, rnd() % 8 ? "ok" : "error", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, (int64_t)(rnd() % 100));
    sqlite3_bind_null(st, 9);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
  }
  tu_sql_insert_end(db, st);
}

static void exec_sql(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

static double worst = 0;

/* The daily level is the sum of its hours, group by group, and complete. */
static void check_days(const char *path) {
  if (tu_sql_int(path, "SELECT count(*) FROM mcpr_rollup_state WHERE key = 'day_level'") == 0)
    return; /* a damaged state (test_damaged_rollups) */
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'day_level'"),
                   1);
  assert_int_equal(
      tu_sql_int(path,
                 "SELECT count(*) FROM (SELECT CASE WHEN hour >= 0 THEN hour / 24"
                 " ELSE (hour - 23) / 24 END AS d, proxy, is_tool, name, sum(calls) c,"
                 " sum(errors) e, sum(sum_us) s, min(min_us) mi, max(max_us) ma,"
                 " sum(bytes_in) bi, sum(bytes_out) bo, max(last_ts) lt FROM mcpr_rollup_hour"
                 " GROUP BY 1, 2, 3, 4"
                 " EXCEPT SELECT day, proxy, is_tool, name, calls, errors, sum_us, min_us,"
                 " max_us, bytes_in, bytes_out, last_ts FROM mcpr_rollup_day)"),
      0);
  assert_int_equal(tu_sql_int(path, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_day"),
                   tu_sql_int(path, "SELECT coalesce(sum(calls), 0) FROM mcpr_rollup_hour"));
}

static void compare(const char *path, const char *proxy, int64_t since) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  mcpr__query_sqlite_set_rollup_raw_max(q, 0); /* small stores too */
  mcpr_stats fast, exact;
  mcpr_stats_filter f = {proxy, since, 0};
  assert_int_equal(mcpr_query_stats(q, &f, &fast, &err), MCPR_OK);
  f.exact = 1;
  assert_int_equal(mcpr_query_stats(q, &f, &exact, &err), MCPR_OK);
  assert_int_equal(fast.count, exact.count);
  assert_int_equal(fast.total_calls, exact.total_calls);
  assert_int_equal(fast.total_errors, exact.total_errors);
  assert_true(fast.error_pct == exact.error_pct);
  for (size_t i = 0; i < exact.count; i++) {
    const mcpr_stats_row *e = &exact.rows[i], *r = &fast.rows[i];
    assert_string_equal(r->label, e->label);
    assert_int_equal(r->calls, e->calls);
    assert_int_equal(r->errors, e->errors);
    assert_int_equal(r->avg_us, e->avg_us);
    assert_int_equal(r->min_us, e->min_us);
    assert_int_equal(r->max_us, e->max_us);
    assert_int_equal(r->total_bytes_in, e->total_bytes_in);
    assert_int_equal(r->total_bytes_out, e->total_bytes_out);
    assert_true(r->error_pct == e->error_pct);
    double rel = e->p95_us ? fabs((double)(r->p95_us - e->p95_us)) / (double)e->p95_us
                           : (double)(r->p95_us != 0);
    if (rel > worst)
      worst = rel;
    if (rel > 0.01)
      fail_msg("%s since %lld: p95 %lld vs exact %lld", e->label, (long long)since,
               (long long)r->p95_us, (long long)e->p95_us);
  }
  mcpr_stats_release(&fast);
  mcpr_stats_release(&exact);

  /* Unused tools: calls, errors and last call exact, against plain SQL. */
  mcpr_unused_tool_rows u;
  assert_int_equal(mcpr_query_unused_tools(q, proxy, since, &u, &err), MCPR_OK);
  assert_int_equal(u.count, proxy && strcmp(proxy, "b") != 0 ? 0 : 5);
  for (size_t i = 0; i < u.count; i++) {
    char where[256], sql[400];
    snprintf(where, sizeof where, "FROM requests WHERE tool = '%s' AND ts >= %lld%s%s%s",
             u.rows[i].tool_name, (long long)(since == MCPR_QUERY_NO_CUTOFF ? INT64_MIN : since),
             proxy ? " AND proxy = '" : "", proxy ? proxy : "", proxy ? "'" : "");
    snprintf(sql, sizeof sql, "SELECT count(*) %s", where);
    assert_int_equal(u.rows[i].calls, tu_sql_int(path, sql));
    snprintf(sql, sizeof sql, "SELECT count(*) %s AND status <> 'ok'", where);
    assert_int_equal(u.rows[i].errors, tu_sql_int(path, sql));
    snprintf(sql, sizeof sql, "SELECT coalesce(max(ts), %lld) %s", (long long)MCPR_QUERY_NULL,
             where);
    assert_int_equal(u.rows[i].last_called_at_ms, tu_sql_int(path, sql));
  }
  mcpr_unused_tool_rows_release(&u);
  mcpr_query_close(q);
}

static void compare_windows(const char *path, int64_t now) {
  check_days(path);
  const int64_t windows[] = {HOUR / 2, HOUR, 90 * 60000, 26 * HOUR + 12345, 5 * 24 * HOUR,
                             40 * 24 * HOUR, 3 * 24 * HOUR + 5 * HOUR + 777};
  for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
    compare(path, NULL, now - windows[w]);
    compare(path, "b", now - windows[w]);
  }
  compare(path, NULL, MCPR_QUERY_NO_CUTOFF);
  compare(path, "c", MCPR_QUERY_NO_CUTOFF);
}

static void test_rollups_match_raw(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms() - 1234;
  write_store(path, now, 20000, 10 * 24 * HOUR);
  int64_t top = tu_sql_int(path, "SELECT max(id) FROM requests");
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'"), top);
  assert_int_equal(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_hour"), top);
  compare_windows(path, now);

  /* Another writer adds rows: above the watermark, read raw. */
  insert_raw(path, now, 700, 12 * 24 * HOUR);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'"), top);
  compare_windows(path, now);

  /* Our next batch rolls them up with its own rows. */
  write_store(path, now, 300, 2 * 24 * HOUR);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'"),
                   tu_sql_int(path, "SELECT max(id) FROM requests"));
  assert_int_equal(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_hour"),
                   tu_sql_int(path, "SELECT count(*) FROM requests"));
  compare_windows(path, now);

  /* A store whose hourly rollups predate the daily level: the migration
   * that adds the day table fills it from the hours. */
  exec_sql(path, "DROP TABLE mcpr_rollup_day;"
                 " DELETE FROM mcpr_rollup_state WHERE key = 'day_level'");
  write_store(path, now, 100, 2 * 24 * HOUR);
  compare_windows(path, now);
  print_message("worst relative p95 difference: %.4f %%\n", 100 * worst);
  free(path);
  tu_rmdir(dir);
}

static void progress(void *ctx, const mcpr_rollup_progress *p) {
  int64_t *calls = ctx;
  assert_true(p->rolled >= 0 && p->left >= 0);
  (*calls)++;
}

/* A store written without rollups (the original's, an older mcpr's):
 * read raw until `mcpr store rollup` builds them; vacuum keeps them in
 * step with the rows it deletes. */
static void test_backfill_and_vacuum(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms() - 777;
  write_store(path, now, 30000, 8 * 24 * HOUR);
  exec_sql(path, "DELETE FROM mcpr_rollup_hour; DELETE FROM mcpr_rollup_day;"
                 " UPDATE mcpr_rollup_state SET value = 0 WHERE key = 'watermark'");
  insert_raw(path, now, 500, 9 * 24 * HOUR);
  compare_windows(path, now);

  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  mcpr_rollup_progress p;
  int64_t calls = 0;
  assert_int_equal(mcpr_query_rollup(q, progress, &calls, &p, &err), MCPR_OK);
  assert_int_equal(p.rolled, 30500);
  assert_int_equal(p.left, 0);
  assert_int_equal(calls, p.batches);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'"),
                   tu_sql_int(path, "SELECT max(id) FROM requests"));
  compare_windows(path, now);
  /* Nothing left: a second run is a no-op. */
  assert_int_equal(mcpr_query_rollup(q, NULL, NULL, &p, &err), MCPR_OK);
  assert_int_equal(p.rolled, 0);

  mcpr_vacuum_options o = {.before_ms = now - 3 * 24 * HOUR - 1234567, .proxy = "b"};
  mcpr_vacuum_result r;
  assert_int_equal(mcpr_query_vacuum(q, &o, &r, &err), MCPR_OK);
  assert_true(r.requests_deleted > 0);
  o.before_ms = now - 5 * 24 * HOUR - 99999;
  o.proxy = NULL;
  assert_int_equal(mcpr_query_vacuum(q, &o, &r, &err), MCPR_OK);
  assert_true(r.requests_deleted > 0);
  mcpr_query_close(q);
  assert_int_equal(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_hour"),
                   tu_sql_int(path, "SELECT count(*) FROM requests"));
  compare_windows(path, now);
  free(path);
  tu_rmdir(dir);
}

/* A damaged rollup state never costs the writer a row, and reads then
 * count from the rows themselves. */
static void test_damaged_rollups(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms() - 4321;
  write_store(path, now, 3000, 3 * 24 * HOUR);
  exec_sql(path, "DELETE FROM mcpr_rollup_state");
  write_store(path, now, 700, 3 * 24 * HOUR);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 3700);
  compare_windows(path, now);
  exec_sql(path, "DROP TABLE mcpr_rollup_hour");
  write_store(path, now, 300, 3 * 24 * HOUR);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 4000);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rollups_match_raw),
      cmocka_unit_test(test_backfill_and_vacuum),
      cmocka_unit_test(test_damaged_rollups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

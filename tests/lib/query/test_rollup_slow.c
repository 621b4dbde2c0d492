/*
 * `proxy slow` from the rollups (backend/sqlite/query.c, slow_rollup):
 * the list is exactly the rows a full scan returns, in the same order —
 * all proxies or one, with and without --tool, thresholds from none to
 * above every latency, windows that start mid-hour or cover all time,
 * limits from 1 to more than match, latencies with many ties across hours,
 * and rows another writer added above the watermark.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sqlite/query.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

#define HOUR 3600000LL

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static const char *const PROXIES[] = {"a", "b", "c"};
static const char *const TOOLS[] = {"t0", "t1", "t2", NULL};

/* Many exact ties (900, 30 s) next to spread values. */
static int64_t latency(void) {
  switch (rnd() % 4) {
  case 0:
    return (int64_t)(rnd() % 300);
  case 1:
    return (int64_t)exp(7 + 8 * unif());
  case 2:
    return 30000000;
  default:
    return 900;
  }
}

static void write_store(const char *path, int64_t now, int n, int64_t span_ms) {
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  for (int i = 0; i < n; i++) {
    /* Some timestamps repeat: ties on ts too, broken by id. */
    int64_t ts = now - (int64_t)(rnd() % (uint64_t)span_ms) / (i % 3 ? 1 : 1000) * (i % 3 ? 1 : 1000);
    const char *tool = TOOLS[rnd() % 4];
    char id[MCPR_UUID_STRLEN + 1];
    mcpr_uuid_v7(ts, id);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){
        .request_id = id, .ts_ms = ts, .proxy = PROXIES[rnd() % 3],
        .method = tool ? "tools/call" : "tools/list", .tool = tool,
        .latency_us = latency(),
        .status = rnd() % 10 == 0 ? MCPR_REQUEST_ERROR : MCPR_REQUEST_OK,
        .bytes_in = -1, .bytes_out = -1};
    while (mcpr_store_record(s, &e) == MCPR_EQUEUEFULL)
      tu_sleep_ms(5);
  }
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
}

/* What another writer adds: plain INSERTs, above the watermark. */
static void insert_raw(const char *path, int64_t now, int n, int64_t span_ms) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = tu_sql_insert_begin(
      path,
      "INSERT INTO requests (request_id, ts, proxy, method,"
      " tool, latency_us, status) VALUES (?1, ?2, ?3, ?4, ?5,"
      " ?6, 'ok')",
      &db);
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "raw-%d-%llu", i, (unsigned long long)rnd());
    const char *tool = TOOLS[rnd() % 4];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, now - (int64_t)(rnd() % (uint64_t)span_ms));
    sqlite3_bind_text(st, 3, PROXIES[rnd() % 3], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, tool ? "tools/call" : "tools/list", -1, SQLITE_STATIC);
    if (tool)
      sqlite3_bind_text(st, 5, tool, -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, 5);
    /* Sometimes the slowest of all. */
    sqlite3_bind_int64(st, 6, rnd() % 50 ? latency() : 40000000 + (int64_t)(rnd() % 5));
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
  }
  tu_sql_insert_end(db, st);
}

/* The full scan: every row of the window, sorted as `slow` sorts. */
static size_t full_scan(sqlite3 *db, const mcpr_log_filter *f, int64_t *ids, size_t max) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db,
                                      "SELECT id FROM requests NOT INDEXED"
                                      " WHERE (?1 IS NULL OR proxy = ?1)"
                                      " AND (?2 IS NULL OR tool = ?2) AND ts >= ?3"
                                      " AND latency_us >= ?4"
                                      " ORDER BY latency_us DESC, ts DESC, id DESC LIMIT ?5",
                                      -1, &st, NULL),
                   SQLITE_OK);
  if (f->proxy)
    sqlite3_bind_text(st, 1, f->proxy, -1, SQLITE_STATIC);
  if (f->tool)
    sqlite3_bind_text(st, 2, f->tool, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, f->since_ms == MCPR_QUERY_NO_CUTOFF ? INT64_MIN : f->since_ms);
  sqlite3_bind_int64(st, 4, f->min_latency_us);
  sqlite3_bind_int64(st, 5, f->limit);
  size_t n = 0;
  while (sqlite3_step(st) == SQLITE_ROW && n < max)
    ids[n++] = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

static int compared = 0;

static void compare(const char *path, int64_t now) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  mcpr__query_sqlite_set_rollup_raw_max(q, 0); /* the rollup path for any window */
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  const int64_t windows[] = {HOUR / 3, 2 * HOUR, 26 * HOUR + 12345, 4 * 24 * HOUR, 40 * 24 * HOUR,
                             -1};
  const int64_t thresholds[] = {0, 1000, 30000000, 40000001, 99000000};
  const int64_t limits[] = {1, 7, 20, 400, 100000};
  const char *const proxies[] = {NULL, "b"};
  const char *const tools[] = {NULL, "t1"};
  static int64_t want[100000];
  for (size_t w = 0; w < sizeof windows / sizeof *windows; w++)
    for (size_t t = 0; t < sizeof thresholds / sizeof *thresholds; t++)
      for (size_t l = 0; l < sizeof limits / sizeof *limits; l++)
        for (size_t p = 0; p < 2; p++)
          for (size_t k = 0; k < 2; k++) {
            mcpr_log_filter f;
            mcpr_log_filter_init(&f);
            f.since_ms = windows[w] < 0 ? MCPR_QUERY_NO_CUTOFF : now - windows[w];
            f.min_latency_us = thresholds[t];
            f.limit = limits[l];
            f.proxy = proxies[p];
            f.tool = tools[k];
            size_t n = full_scan(db, &f, want, sizeof want / sizeof *want);
            mcpr_log_rows got;
            assert_int_equal(mcpr_query_slow(q, &f, &got, &err), MCPR_OK);
            if (got.count != n)
              fail_msg("window %lld threshold %lld limit %lld proxy %s tool %s: %zu rows, a"
                       " full scan %zu",
                       (long long)windows[w], (long long)thresholds[t], (long long)limits[l],
                       f.proxy ? f.proxy : "-", f.tool ? f.tool : "-", got.count, n);
            for (size_t i = 0; i < n; i++)
              if (got.rows[i].row_id != want[i])
                fail_msg("window %lld threshold %lld limit %lld: row %zu is id %lld, a full"
                         " scan has %lld",
                         (long long)windows[w], (long long)thresholds[t], (long long)limits[l],
                         i, (long long)got.rows[i].row_id, (long long)want[i]);
            mcpr_log_rows_release(&got);
            compared++;
          }
  sqlite3_close(db);
  mcpr_query_close(q);
}

static void test_slow_matches_full_scan(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms() - 4321;
  write_store(path, now, 20000, 6 * 24 * HOUR);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'"),
                   tu_sql_int(path, "SELECT max(id) FROM requests"));
  compare(path, now);
  /* Another writer's rows, above the watermark: some are the slowest. */
  insert_raw(path, now, 600, 7 * 24 * HOUR);
  assert_true(tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'") <
              tu_sql_int(path, "SELECT max(id) FROM requests"));
  compare(path, now);
  /* Our next batch rolls them up. */
  write_store(path, now, 200, 24 * HOUR);
  compare(path, now);
  print_message("%d slow lists compared with a full scan\n", compared);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slow_matches_full_scan),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

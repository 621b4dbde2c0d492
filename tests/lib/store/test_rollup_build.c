/*
 * Building the rollups of a store the original wrote (issue 15,
 * backend/sqlite/rollup_build.c): the file has the original's tables and
 * indexes and no rollups; `mcpr store rollup` (mcpr_query_rollup) builds
 * them in chunks of bounded size, and what it builds equals a
 * recomputation from the rows — while a writer adds rows, after a kill -9
 * in the middle and a second run, and with reads exact all along.
 */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/sqlite/db.h"
#include "backend/sqlite/query.h"
#include "backend/sqlite/rollup.h"
#include "mcpr/mcpr.h"
#include "store_fixtures.h"
#include "testutil.h"

#define HOUR 3600000LL

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const char *const PROXIES[] = {"api", "docs", "web"};
static const char *const TOOLS[] = {"search", "fetch", "send", NULL, NULL};
static const char *const METHODS[] = {"tools/list", "initialize", "resources/read"};

static void exec_ok(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
    fail_msg("%s: %s", sql, msg);
}

typedef struct span {
  int64_t now, span_ms;
} span;

static void random_row(void *ctx, int i, sf_request_row *r) {
  const span *sp = ctx;
  const char *tool = TOOLS[rnd() % 5];
  (void)i;
  snprintf(r->request_id, sizeof r->request_id, "orig-%llu", (unsigned long long)rnd());
  r->ts = sp->now - (int64_t)(rnd() % (uint64_t)sp->span_ms);
  r->proxy = PROXIES[rnd() % 3];
  r->method = tool ? "tools/call" : METHODS[rnd() % 3];
  r->tool = tool;
  r->latency_us = (int64_t)(rnd() % 7 ? rnd() % 2000 : rnd() % 9000000);
  r->status = rnd() % 9 ? "ok" : (rnd() % 2 ? "error" : "timeout");
  r->bytes_in = rnd() % 4 ? (int64_t)(rnd() % 5000) : -1;
  r->bytes_out = rnd() % 4 ? (int64_t)(rnd() % 90000) : -1;
}

/* n requests over span_ms ending at now, by plain INSERTs as the original
 * writes them (into an existing store, or a new one in its layout). */
static void original_rows(const char *path, bool create, int64_t now, int n, int64_t span_ms) {
  if (create) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec_ok(db, mcpr__db_legacy_ddl(4));
    exec_ok(db, "ALTER TABLE requests ADD COLUMN resource_uri TEXT;"
                "ALTER TABLE requests ADD COLUMN prompt_name TEXT;"
                "UPDATE meta SET value = '5' WHERE key = 'schema_version';"
                "PRAGMA journal_mode=WAL");
    sqlite3_close(db);
  }
  span sp = {now, span_ms};
  sf_insert_requests(path, n, random_row, &sp);
}

static int64_t watermark(const char *path) {
  return tu_sql_int(path, "SELECT value FROM mcpr_rollup_state WHERE key = 'watermark'");
}

/* Hours and days hold, group by group, what the rows up to the watermark
 * give when summed in SQL: a full recomputation of every figure but the
 * sketch, which tests/lib/query/test_rollup.c checks through p95. */
#define RAW_GROUPS(unit)                                                                     \
  "SELECT " unit ", proxy, tool IS NOT NULL, coalesce(tool, method), count(*),"             \
  " sum(status <> 'ok'), sum(latency_us), min(latency_us), max(latency_us),"                \
  " coalesce(sum(bytes_in), 0), coalesce(sum(bytes_out), 0), max(ts)"                       \
  " FROM requests WHERE id <= (SELECT value FROM mcpr_rollup_state WHERE key = 'watermark')" \
  " GROUP BY 1, 2, 3, 4"
#define HOUR_OF "(CASE WHEN ts >= 0 THEN ts / 3600000 ELSE (ts - 3599999) / 3600000 END)"
#define ROLLED(table, unit)                                                                  \
  "SELECT " unit ", proxy, is_tool, name, calls, errors, sum_us, min_us, max_us, bytes_in,"  \
  " bytes_out, last_ts FROM " table

static void assert_recomputed(const char *path) {
  static const char *const SQL[] = {
      "SELECT count(*) FROM (" RAW_GROUPS(HOUR_OF) " EXCEPT " ROLLED("mcpr_rollup_hour",
                                                                      "hour") ")",
      "SELECT count(*) FROM (" ROLLED("mcpr_rollup_hour", "hour") " EXCEPT " RAW_GROUPS(
          HOUR_OF) ")",
      "SELECT count(*) FROM (" RAW_GROUPS(MCPR__ROLLUP_DAY_OF(HOUR_OF)) " EXCEPT " ROLLED(
          "mcpr_rollup_day", "day") ")",
      "SELECT count(*) FROM (" ROLLED("mcpr_rollup_day", "day") " EXCEPT " RAW_GROUPS(
          MCPR__ROLLUP_DAY_OF(HOUR_OF)) ")",
  };
  for (size_t i = 0; i < sizeof SQL / sizeof SQL[0]; i++)
    if (tu_sql_int(path, SQL[i]) != 0)
      fail_msg("rollups differ from the rows (check %zu)", i);
}

static void assert_complete(const char *path) {
  assert_int_equal(watermark(path), tu_sql_int(path, "SELECT max(id) FROM requests"));
  assert_int_equal(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_hour"),
                   tu_sql_int(path, "SELECT count(*) FROM requests"));
  assert_int_equal(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_day"),
                   tu_sql_int(path, "SELECT count(*) FROM requests"));
  assert_recomputed(path);
}

/* Reads from the rollups (forced even on a small store) give the raw
 * answer: stats (all but p95, which is within 1 %) and slow. */
static void assert_reads_exact(const char *path, int64_t now) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  mcpr__query_sqlite_set_rollup_raw_max(q, 0);
  const int64_t windows[] = {HOUR, 26 * HOUR + 4321, 4 * 24 * HOUR + 777, 40 * 24 * HOUR};
  for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
    for (int p = 0; p < 2; p++) {
      mcpr_stats fast, exact;
      mcpr_stats_filter f = {p ? "docs" : NULL, now - windows[w], 0};
      assert_int_equal(mcpr_query_stats(q, &f, &fast, &err), MCPR_OK);
      f.exact = 1;
      assert_int_equal(mcpr_query_stats(q, &f, &exact, &err), MCPR_OK);
      assert_int_equal(fast.total_calls, exact.total_calls);
      assert_int_equal(fast.total_errors, exact.total_errors);
      assert_int_equal(fast.count, exact.count);
      for (size_t i = 0; i < exact.count; i++) {
        assert_string_equal(fast.rows[i].label, exact.rows[i].label);
        assert_int_equal(fast.rows[i].calls, exact.rows[i].calls);
        assert_int_equal(fast.rows[i].errors, exact.rows[i].errors);
        assert_int_equal(fast.rows[i].min_us, exact.rows[i].min_us);
        assert_int_equal(fast.rows[i].max_us, exact.rows[i].max_us);
        assert_int_equal(fast.rows[i].avg_us, exact.rows[i].avg_us);
        assert_int_equal(fast.rows[i].total_bytes_in, exact.rows[i].total_bytes_in);
        assert_int_equal(fast.rows[i].total_bytes_out, exact.rows[i].total_bytes_out);
      }
      mcpr_stats_release(&fast);
      mcpr_stats_release(&exact);

      mcpr_log_filter lf;
      mcpr_log_filter_init(&lf);
      lf.proxy = f.proxy;
      lf.since_ms = now - windows[w];
      lf.limit = 15;
      mcpr_log_rows slow;
      assert_int_equal(mcpr_query_slow(q, &lf, &slow, &err), MCPR_OK);
      char sql[512], got[512] = "";
      snprintf(sql, sizeof sql,
               "SELECT coalesce(group_concat(latency_us, ','), '') FROM (SELECT latency_us"
               " FROM requests WHERE ts >= %lld%s%s%s"
               " ORDER BY latency_us DESC, ts DESC, id DESC LIMIT 15)",
               (long long)lf.since_ms, p ? " AND proxy = '" : "", p ? "docs" : "", p ? "'" : "");
      for (size_t i = 0, n = 0; i < slow.count && n < sizeof got; i++)
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", i ? "," : "",
                              (long long)slow.rows[i].latency_us);
      char *want = sf_sql_text(path, sql);
      assert_string_equal(got, want);
      free(want);
      mcpr_log_rows_release(&slow);
    }
  }
  mcpr_query_close(q);
}

static void count_batch(void *ctx, const mcpr_rollup_progress *p) {
  int64_t *batches = ctx;
  (*batches)++;
  assert_true(p->largest_batch_rows <= MCPR__ROLLUP_BUILD_CHUNK_MAX);
}

/* `mcpr store rollup` on the original's file: its first open adds our
 * tables (and no index on requests: the original has all we use); the
 * build rolls up every row, in chunks no bigger than the bound. */
static void test_build_equals_recompute(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms();
  original_rows(path, true, now, 60000, 9 * 24 * HOUR);
  int64_t indexes = tu_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                     " AND tbl_name = 'requests'");

  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                    " AND tbl_name = 'requests'"),
                   indexes);
  int64_t behind = 0;
  assert_int_equal(mcpr_query_rollup_behind(q, &behind, &err), MCPR_OK);
  assert_int_equal(behind, 60000);
  assert_int_equal(watermark(path), 0);
  assert_reads_exact(path, now); /* raw above a watermark of 0 */

  mcpr_rollup_progress p;
  int64_t batches = 0;
  assert_int_equal(mcpr_query_rollup(q, count_batch, &batches, &p, &err), MCPR_OK);
  assert_int_equal(p.rolled, 60000);
  assert_int_equal(p.left, 0);
  assert_int_equal(p.batches, batches);
  assert_true(p.batches >= 3); /* 60,000 rows are never one chunk */
  assert_true(p.largest_batch_rows > 0 && p.largest_batch_rows <= MCPR__ROLLUP_BUILD_CHUNK_MAX);
  assert_int_equal(mcpr_query_rollup_behind(q, &behind, &err), MCPR_OK);
  assert_int_equal(behind, 0);
  mcpr_query_close(q);
  assert_complete(path);
  assert_reads_exact(path, now);
  free(path);
  tu_rmdir(dir);
}

/* A build in chunks of `rows`, on its own connection as the CLI has. */
static mcpr_status build(const char *path, int64_t rows, mcpr_rollup_progress_fn fn, void *ctx,
                         mcpr_rollup_progress *p) {
  sqlite3 *db = NULL;
  mcpr_error err = {0};
  memset(p, 0, sizeof *p);
  assert_int_equal(mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &db, &err), MCPR_OK);
  mcpr_status st = mcpr__rollup_build(db, path, rows, fn, ctx, p, &err);
  sqlite3_close_v2(db);
  return st;
}

typedef struct writer_arg {
  const char *path;
  int64_t now;
  int n;
  uint64_t written;
} writer_arg;

/* `mcpr ingest` beside the build: requests through the store API, a few at
 * a time, so that its batches fall between the build's chunks. */
static void *writer_main(void *p) {
  writer_arg *a = p;
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  o.batch_size = 50;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  if (mcpr_store_open(&s, a->path, &o, &err) != MCPR_OK)
    return NULL;
  for (int i = 0; i < a->n; i++) {
    char id[MCPR_UUID_STRLEN + 1];
    int64_t ts = a->now - (int64_t)(i % 500) * 60000;
    mcpr_uuid_v7(ts, id);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = ts, .proxy = PROXIES[i % 3],
                                       .method = "tools/call", .tool = TOOLS[i % 3],
                                       .latency_us = 100 + i % 777, .status = MCPR_REQUEST_OK,
                                       .bytes_in = i % 100, .bytes_out = -1};
    while (mcpr_store_record(s, &e) == MCPR_EQUEUEFULL)
      tu_sleep_ms(2);
    if (i % 100 == 99)
      tu_sleep_ms(3);
  }
  mcpr_store_stats st;
  if (mcpr_store_close(s, &st) == MCPR_OK)
    a->written = st.written;
  return NULL;
}

static void test_concurrent_writer(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms();
  original_rows(path, true, now, 30000, 6 * 24 * HOUR);
  writer_arg a = {.path = path, .now = now, .n = 6000};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, writer_main, &a), 0);
  mcpr_rollup_progress p;
  assert_int_equal(build(path, 700, NULL, NULL, &p), MCPR_OK);
  assert_true(p.largest_batch_rows <= 700);
  pthread_join(t, NULL);
  assert_int_equal(a.written, 6000);
  /* The writer rolled some rows up itself (its own batches, and chunks of
   * the backlog after them); what is left, if any, the next run does. */
  assert_int_equal(build(path, 700, NULL, NULL, &p), MCPR_OK);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 36000);
  assert_complete(path);
  assert_reads_exact(path, now);
  free(path);
  tu_rmdir(dir);
}

/* The child reports each chunk on a pipe, and is killed during a later one. */
static void report_batch(void *ctx, const mcpr_rollup_progress *p) {
  int fd = *(int *)ctx;
  char c = 'b';
  (void)p;
  if (write(fd, &c, 1) != 1)
    _exit(3);
}

static void test_kill9_then_resume(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms();
  original_rows(path, true, now, 40000, 8 * 24 * HOUR);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    mcpr_rollup_progress p;
    build(path, 400, report_batch, &fds[1], &p);
    _exit(0);
  }
  close(fds[1]);
  char c;
  for (int got = 0; got < 5;)
    if (read(fds[0], &c, 1) == 1)
      got++;
  kill(pid, SIGKILL); /* most likely inside the next chunk's transaction */
  int status = 0;
  waitpid(pid, &status, 0);
  close(fds[0]);
  assert_true(WIFSIGNALED(status));

  /* A partial build: the watermark well below the last id, reads exact. */
  int64_t w = watermark(path);
  assert_true(w >= 5 * 400 && w < 40000);
  assert_int_equal(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_hour"), w);
  assert_recomputed(path);
  assert_reads_exact(path, now);
  /* Rows the original adds meanwhile count too. */
  original_rows(path, false, now, 3000, 2 * 24 * HOUR);
  assert_reads_exact(path, now);

  mcpr_rollup_progress p;
  assert_int_equal(build(path, 0, NULL, NULL, &p), MCPR_OK);
  assert_int_equal(p.rolled, 43000 - w);
  assert_complete(path);
  assert_reads_exact(path, now);
  free(path);
  tu_rmdir(dir);
}

static int64_t has_index(const char *path, const char *name) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '%s'", name);
  return tu_sql_int(path, sql);
}

/* A big file of the original's that lacks one of the indexes we read by:
 * its first open does not build it (a minute under the lock at 10M rows);
 * `store rollup` does, last, and says so. */
static void test_missing_index_left_to_rollup(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms();
  original_rows(path, true, now, 2000, 3 * 24 * HOUR);
  sf_exec(path, "DROP INDEX idx_requests_proxy_ts;"
                "INSERT INTO requests (id, request_id, ts, proxy, method, latency_us, status)"
                " VALUES (250000, 'far', 1700000000000, 'api', 'tools/list', 9, 'ok')");
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  assert_int_equal(has_index(path, "idx_requests_proxy_ts"), 0);
  assert_int_equal(has_index(path, "mcpr_rollup_hour_calls"), 1); /* the rest was migrated */
  assert_reads_exact(path, now);
  mcpr_rollup_progress p;
  assert_int_equal(mcpr_query_rollup(q, NULL, NULL, &p, &err), MCPR_OK);
  assert_int_equal(p.rolled, 2001);
  assert_int_equal(p.indexes_built, 2); /* and sessions by last seen, which it never had */
  assert_null(p.building_index);
  assert_int_equal(has_index(path, "idx_requests_proxy_ts"), 1);
  assert_int_equal(mcpr_query_rollup(q, NULL, NULL, &p, &err), MCPR_OK);
  assert_int_equal(p.indexes_built, 0);
  mcpr_query_close(q);
  assert_complete(path);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_equals_recompute),
      cmocka_unit_test(test_concurrent_writer),
      cmocka_unit_test(test_kill9_then_resume),
      cmocka_unit_test(test_missing_index_left_to_rollup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

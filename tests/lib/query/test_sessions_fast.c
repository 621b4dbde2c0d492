/*
 * `proxy sessions`, `proxy clients` and the session counts of `proxy
 * status` (backend/sqlite/query.c: the walk of mcpr_sessions_seen, the
 * grouping in C, the counts one proxy at a time) against a straightforward
 * computation — the whole table, sorted or grouped by SQLite — on random
 * sessions written as another writer would: ties on last_seen_at, rows
 * whose last_seen_at is before their started_at, NULL and empty client
 * fields, same name and version on two platforms, open and ended sessions,
 * active ones. Every filter of the CLI, limits from 1 to more than match,
 * with the index, without it (the store before its background build) and
 * with the walk turned off.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sqlite/extra_schema.h"
#include "backend/sqlite/query.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

#define HOUR 3600000LL

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const char *const PROXIES[] = {"a", "b", "c", "b-2"};
static const char *const NAMES[] = {"cursor", "Cursor", "claude-desktop", "", NULL, "rare"};
static const char *const VERSIONS[] = {"1.0", "2.0", NULL};
static const char *const PLATFORMS[] = {"cursor", "unknown", NULL};

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v) {
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

/* n sessions over the last `span_ms`, written with plain INSERTs. */
static void insert_sessions(const char *path, int64_t now, int n, int64_t span_ms, int tag) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = tu_sql_insert_begin(
      path,
      "INSERT INTO sessions (session_id, proxy, started_at,"
      " last_seen_at, ended_at, client_name, client_version,"
      " client_platform, total_calls, total_errors)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
      &db);
  for (int i = 0; i < n; i++) {
    char id[64];
    /* Ids not in time order: the list's tie-break is the id. */
    snprintf(id, sizeof id, "s%d-%08llx-%d", tag, (unsigned long long)(rnd() & 0xffffffff), i);
    /* Whole seconds: many sessions share a last_seen_at. */
    int64_t started = (now - (int64_t)(rnd() % (uint64_t)span_ms)) / 1000 * 1000;
    int64_t seen;
    switch (rnd() % 8) {
    case 0: /* another writer's row: seen before it started */
      seen = started - (int64_t)(rnd() % (3 * HOUR));
      break;
    case 1: /* never seen since its start */
      seen = started;
      break;
    case 2: /* long-lived, seen lately */
      seen = now - (int64_t)(rnd() % (10 * 60000)) / 1000 * 1000;
      break;
    default:
      seen = started + (int64_t)(rnd() % (4 * HOUR)) / 1000 * 1000;
    }
    if (seen > now)
      seen = now - (int64_t)(rnd() % 60) * 1000;
    /* A rare client: many more sessions than the walk's budget lie above
     * its few. */
    const char *name = i % 500 == 7 ? "rare" : NAMES[rnd() % 5];
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, PROXIES[rnd() % 4], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, started);
    sqlite3_bind_int64(st, 4, seen);
    if (rnd() % 5 < 2)
      sqlite3_bind_null(st, 5);
    else
      sqlite3_bind_int64(st, 5, seen + (int64_t)(rnd() % 1000));
    bind_text_or_null(st, 6, name);
    bind_text_or_null(st, 7, VERSIONS[rnd() % 3]);
    bind_text_or_null(st, 8, PLATFORMS[rnd() % 3]);
    sqlite3_bind_int64(st, 9, (int64_t)(rnd() % 100));
    sqlite3_bind_int64(st, 10, (int64_t)(rnd() % 5));
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_reset(st);
  }
  tu_sql_insert_end(db, st);
}

static bool same_text(const char *a, const unsigned char *b) {
  if (!a || !b)
    return !a && !b;
  return strcmp(a, (const char *)b) == 0;
}

static int compared = 0;

/* The straightforward list: the whole table, sorted. */
static void check_sessions(sqlite3 *db, mcpr_query *q, const mcpr_session_filter *f,
                           int64_t now) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(
      sqlite3_prepare_v2(db,
                         "SELECT session_id, proxy, client_name, client_version,"
                         " client_platform, started_at, last_seen_at, ended_at, total_calls,"
                         " total_errors, ended_at IS NULL AND last_seen_at > ?1"
                         " FROM sessions NOT INDEXED"
                         " WHERE (?2 IS NULL OR proxy = ?2) AND (?3 IS NULL OR client_name = ?3)"
                         " AND started_at >= ?4 AND (NOT ?5 OR (ended_at IS NULL"
                         " AND last_seen_at > ?1))"
                         " ORDER BY last_seen_at DESC, session_id LIMIT ?6",
                         -1, &st, NULL),
      SQLITE_OK);
  sqlite3_bind_int64(st, 1, now - MCPR_QUERY_ACTIVE_WINDOW_MS);
  bind_text_or_null(st, 2, f->proxy);
  bind_text_or_null(st, 3, f->client_name);
  sqlite3_bind_int64(st, 4, f->since_ms);
  sqlite3_bind_int(st, 5, f->active_only);
  sqlite3_bind_int64(st, 6, f->limit);
  mcpr_session_rows got;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_sessions(q, f, &got, &err), MCPR_OK);
  size_t n = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (n >= got.count)
      fail_msg("proxy %s client %s since %lld active %d limit %lld: %zu rows, the full list"
               " has more",
               f->proxy ? f->proxy : "-", f->client_name ? f->client_name : "-",
               (long long)f->since_ms, f->active_only, (long long)f->limit, got.count);
    const mcpr_session_row *r = &got.rows[n];
    if (!same_text(r->session_id, sqlite3_column_text(st, 0)) ||
        !same_text(r->proxy, sqlite3_column_text(st, 1)) ||
        !same_text(r->client_name, sqlite3_column_text(st, 2)) ||
        !same_text(r->client_version, sqlite3_column_text(st, 3)) ||
        !same_text(r->client_platform, sqlite3_column_text(st, 4)) ||
        r->started_at_ms != sqlite3_column_int64(st, 5) ||
        r->last_seen_at_ms != sqlite3_column_int64(st, 6) ||
        r->ended_at_ms != (sqlite3_column_type(st, 7) == SQLITE_NULL
                               ? MCPR_QUERY_NULL
                               : sqlite3_column_int64(st, 7)) ||
        r->total_calls != sqlite3_column_int64(st, 8) ||
        r->total_errors != sqlite3_column_int64(st, 9) ||
        r->is_active != (sqlite3_column_int(st, 10) != 0))
      fail_msg("proxy %s client %s since %lld active %d limit %lld: row %zu is %s, the full"
               " list has %s",
               f->proxy ? f->proxy : "-", f->client_name ? f->client_name : "-",
               (long long)f->since_ms, f->active_only, (long long)f->limit, n, r->session_id,
               (const char *)sqlite3_column_text(st, 0));
    n++;
  }
  if (n != got.count)
    fail_msg("proxy %s client %s since %lld active %d limit %lld: %zu rows, the full list %zu",
             f->proxy ? f->proxy : "-", f->client_name ? f->client_name : "-",
             (long long)f->since_ms, f->active_only, (long long)f->limit, got.count, n);
  sqlite3_finalize(st);
  mcpr_session_rows_release(&got);
  compared++;
}

/* The straightforward clients: GROUP BY in SQL. */
static void check_clients(sqlite3 *db, mcpr_query *q, const char *proxy, int64_t since) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(
                       db,
                       "SELECT client_name, client_version, client_platform, count(*),"
                       " sum(total_calls), sum(total_errors), min(started_at),"
                       " max(last_seen_at) FROM sessions NOT INDEXED"
                       " WHERE (?1 IS NULL OR proxy = ?1) AND started_at >= ?2"
                       " GROUP BY client_name, client_version, client_platform"
                       " ORDER BY sum(total_calls) DESC, count(*) DESC, client_name,"
                       " client_version, client_platform",
                       -1, &st, NULL),
                   SQLITE_OK);
  bind_text_or_null(st, 1, proxy);
  sqlite3_bind_int64(st, 2, since);
  mcpr_client_rows got;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_clients(q, proxy, since, &got, &err), MCPR_OK);
  size_t n = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    assert_true(n < got.count);
    const mcpr_client_row *r = &got.rows[n];
    if (!same_text(r->client_name, sqlite3_column_text(st, 0)) ||
        !same_text(r->client_version, sqlite3_column_text(st, 1)) ||
        !same_text(r->client_platform, sqlite3_column_text(st, 2)) ||
        r->sessions != sqlite3_column_int64(st, 3) ||
        r->total_calls != sqlite3_column_int64(st, 4) ||
        r->total_errors != sqlite3_column_int64(st, 5) ||
        r->first_seen_ms != sqlite3_column_int64(st, 6) ||
        r->last_seen_ms != sqlite3_column_int64(st, 7))
      fail_msg("clients proxy %s since %lld: row %zu (%s %s %s) differs from GROUP BY",
               proxy ? proxy : "-", (long long)since, n,
               r->client_name ? r->client_name : "NULL",
               r->client_version ? r->client_version : "NULL",
               r->client_platform ? r->client_platform : "NULL");
    double pct = r->total_calls ? 100.0 * (double)r->total_errors / (double)r->total_calls : 0;
    assert_true(r->error_pct == pct);
    n++;
  }
  assert_int_equal(n, got.count);
  sqlite3_finalize(st);
  mcpr_client_rows_release(&got);
  compared++;
}

static int64_t count_sql(sqlite3 *db, const char *sql, const char *proxy, int64_t bound) {
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  bind_text_or_null(st, 1, proxy);
  sqlite3_bind_int64(st, 2, bound);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

static void check_counts(sqlite3 *db, mcpr_query *q, const char *proxy, int64_t since,
                         int64_t now) {
  mcpr_stats_filter f = {proxy, since, 0};
  mcpr_status_summary s;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_status(q, &f, now, &s, &err), MCPR_OK);
  assert_int_equal(s.active_sessions,
                   count_sql(db,
                             "SELECT count(*) FROM sessions NOT INDEXED WHERE (?1 IS NULL OR"
                             " proxy = ?1) AND ended_at IS NULL AND last_seen_at > ?2",
                             proxy, now - MCPR_QUERY_ACTIVE_WINDOW_MS));
  assert_int_equal(s.total_sessions,
                   count_sql(db,
                             "SELECT count(*) FROM sessions NOT INDEXED WHERE (?1 IS NULL OR"
                             " proxy = ?1) AND started_at >= ?2",
                             proxy, since == MCPR_QUERY_NO_CUTOFF ? INT64_MIN : since));
  mcpr_status_summary_release(&s);
  compared++;
}

static void compare(const char *path, int64_t now, bool walk) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  mcpr__query_sqlite_set_sessions_walk(q, walk);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  const int64_t windows[] = {HOUR / 2, 3 * HOUR, 26 * HOUR, 7 * 24 * HOUR, -1};
  const char *const proxies[] = {NULL, "b", "zz"};
  const char *const clients[] = {NULL, "cursor", "rare", "", "nobody"};
  const int64_t limits[] = {1, 3, 50, 1000, 5000};
  for (size_t w = 0; w < sizeof windows / sizeof *windows; w++) {
    int64_t since = windows[w] < 0 ? MCPR_QUERY_NO_CUTOFF : now - windows[w];
    for (size_t p = 0; p < 3; p++) {
      check_clients(db, q, proxies[p], since == MCPR_QUERY_NO_CUTOFF ? INT64_MIN : since);
      check_counts(db, q, proxies[p], since, now);
      for (size_t c = 0; c < sizeof clients / sizeof *clients; c++)
        for (int active = 0; active < 2; active++)
          for (size_t l = 0; l < sizeof limits / sizeof *limits; l++) {
            mcpr_session_filter f;
            mcpr_session_filter_init(&f);
            f.proxy = proxies[p];
            f.client_name = clients[c];
            f.since_ms = since == MCPR_QUERY_NO_CUTOFF ? INT64_MIN : since;
            f.active_only = active;
            f.now_ms = now;
            f.limit = limits[l];
            check_sessions(db, q, &f, now);
          }
    }
  }
  sqlite3_close(db);
  mcpr_query_close(q);
}

static void test_sessions_and_clients_match_full_computation(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  int64_t now = mcpr_now_ms() - 1234;
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, &o, &err), MCPR_OK);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  /* A store without the index, which opens leave so: a big one (opens
   * defer such indexes to `mcpr store rollup`). */
  sqlite3 *big = NULL;
  assert_int_equal(sqlite3_open(path, &big), SQLITE_OK);
  assert_int_equal(sqlite3_exec(big,
                                "DROP INDEX " MCPR__SESSIONS_SEEN_INDEX ";"
                                "INSERT INTO requests (id, request_id, ts, proxy, method,"
                                " latency_us, status) VALUES (300000, 'far', 1700000000000,"
                                " 'a', 'tools/list', 9, 'ok')",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(big);
  insert_sessions(path, now, 12000, 10 * 24 * HOUR, 1);
  /* Client groups tied on calls and sessions: ordered by name, version,
   * then platform (as the GROUP BY leaves them), NULL first. */
  char twins[1024];
  snprintf(twins, sizeof twins,
           "INSERT INTO sessions (session_id, proxy, started_at, last_seen_at, client_name,"
           " client_version, client_platform, total_calls) VALUES"
           " ('tw-1', 'a', %lld, %lld, 'twin', '1', 'y', 7),"
           " ('tw-2', 'a', %lld, %lld, 'twin', '1', NULL, 7),"
           " ('tw-3', 'b', %lld, %lld, 'twin', '1', 'x', 7),"
           " ('tw-4', 'b', %lld, %lld, 'twin', NULL, 'x', 7),"
           " ('tw-5', 'a', %lld, %lld, 'twim', '1', 'x', 7)",
           (long long)(now - HOUR), (long long)(now - HOUR), (long long)(now - HOUR),
           (long long)(now - HOUR), (long long)(now - HOUR), (long long)(now - HOUR),
           (long long)(now - HOUR), (long long)(now - HOUR), (long long)(now - HOUR),
           (long long)(now - HOUR));
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions"), 12000);
  sqlite3 *tw = NULL;
  assert_int_equal(sqlite3_open(path, &tw), SQLITE_OK);
  assert_int_equal(sqlite3_exec(tw, twins, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(tw);
  /* Before the index is built: the plain list. */
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = '"
                                    MCPR__SESSIONS_SEEN_INDEX "'"),
                   0);
  compare(path, now, true);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, MCPR__SESSIONS_SEEN_DDL, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  compare(path, now, true);
  compare(path, now, false);
  /* Rows added once the index exists: SQLite keeps it for any writer. */
  insert_sessions(path, now, 3000, 2 * HOUR, 2);
  compare(path, now, true);
  print_message("%d session lists, client lists and counts compared with a full"
                " computation\n",
                compared);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sessions_and_clients_match_full_computation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

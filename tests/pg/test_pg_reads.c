/*
 * Every read command gives the same --json output from a PostgreSQL store
 * as from a SQLite store holding the same events (issue 16): the sample
 * traffic and a generated mix (several proxies, clients without a name,
 * resources and prompts, timeouts, closed sessions, odd characters) are
 * ingested into both, then each command runs against both and the outputs
 * are compared byte for byte — `store stats` without the sizes and the
 * path, which are each store's own. Skipped without MCPR_TEST_PG_URL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mcpr/mcpr.h"
#include "pg_fixture.h"
#include "testutil.h"

#define T0 1767222000000LL

static void write_mix(const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  static const char *const proxies[] = {"pa", "pb", "docs-api"};
  static const char *const clients[] = {"\"claude-ai\"", "null", "\"Cursor\"", "\"my \\\"odd\\\" client\""};
  for (int s = 0; s < 24; s++) {
    fprintf(f,
            "{\"type\":\"session_start\",\"session_id\":\"mix-%02d\",\"proxy\":\"%s\",\"ts\":%lld,"
            "\"client_name\":%s,\"client_version\":%s,\"client_platform\":null}\n",
            s, proxies[s % 3], T0 + s * 1000LL, clients[s % 4], s % 5 ? "\"1.2\"" : "null");
  }
  for (int i = 0; i < 600; i++) {
    int s = i % 25; /* 24: a session never started */
    const char *kind = i % 6 == 0 ? "resources/read" : i % 6 == 1 ? "prompts/get" : "tools/call";
    char tool[64] = "null", uri[64] = "null", prompt[64] = "null";
    if (i % 6 == 0)
      snprintf(uri, sizeof uri, "\"file:///doc/%d\"", i % 4);
    else if (i % 6 == 1)
      snprintf(prompt, sizeof prompt, "\"p%d\"", i % 3);
    else
      snprintf(tool, sizeof tool, "\"t%d\"", i % 5);
    bool err = i % 9 == 0, big = i % 11 == 0;
    char session[32] = "null";
    if (i % 13 != 0)
      snprintf(session, sizeof session, "\"mix-%02d\"", s);
    fprintf(f,
            "{\"type\":\"request\",\"id\":\"mix-req-%04d\",\"ts\":%lld,\"proxy\":\"%s\","
            "\"session_id\":%s,\"method\":\"POST\",\"path\":\"/mcp\",\"mcp_method\":\"%s\","
            "\"tool\":%s,\"resource_uri\":%s,\"prompt_name\":%s,\"status\":%d,"
            "\"latency_us\":%d,\"upstream_us\":null,\"request_size\":%s,\"response_size\":%d,"
            "\"error_code\":%s,\"error_msg\":%s,\"client_name\":null,\"client_version\":null,"
            "\"note\":null}\n",
            i, T0 + 30000 + i * 137LL, proxies[s % 3], session, kind, tool,
            uri, prompt, big ? 502 : 200, 100 + (i * 7919) % 90000,
            i % 4 ? "120" : "null", 300 + i, err ? "\"-32603\"" : "null",
            err ? "\"bad \\\"thing\\\" \\u00e9\"" : "null");
  }
  for (int s = 0; s < 24; s += 3)
    fprintf(f, "{\"type\":\"session_end\",\"session_id\":\"mix-%02d\",\"ts\":%lld}\n", s,
            T0 + 200000 + s);
  fclose(f);
}

static void ingest(const char *db, const char *file) {
  cli_result r;
  cli_runv(&r, "ingest", file, "--db", db, NULL);
  if (r.exit_code != 0)
    fail_msg("ingest %s: %s", file, r.err);
  cli_result_free(&r);
}

/* argv (room for 32): args, then extra (may be NULL), then --db db. */
static const char *const *with_db(const char **argv, const char *const *args,
                                  const char *const *extra, const char *db) {
  size_t n = 0;
  for (; *args; args++)
    argv[n++] = *args;
  for (; extra && *extra; extra++)
    argv[n++] = *extra;
  argv[n++] = "--db";
  argv[n++] = db;
  argv[n] = NULL;
  return argv;
}

/* Run one read command against both stores and compare. */
static void same(const char *sqlite_db, const char *pg_db, const char *const *args) {
  const char *argv[32];
  cli_result a, b;
  cli_spec spec = {.args = with_db(argv, args, NULL, sqlite_db)};
  cli_run(&spec, &a);
  spec.args = with_db(argv, args, NULL, pg_db);
  cli_run(&spec, &b);
  char what[512] = "";
  for (size_t i = 0; args[i]; i++) {
    strncat(what, args[i], sizeof what - strlen(what) - 2);
    strncat(what, " ", sizeof what - strlen(what) - 1);
  }
  if (a.exit_code != b.exit_code || strcmp(a.out, b.out) != 0)
    fail_msg("`mcpr %s` differs:\n--- sqlite (exit %d)\n%s%s\n--- postgres (exit %d)\n%s%s", what,
             a.exit_code, a.out, a.err, b.exit_code, b.out, b.err);
  print_message("same: mcpr %s(%zu bytes)\n", what, a.out_len);
  cli_result_free(&a);
  cli_result_free(&b);
}

/* store stats --json without "path", "db_bytes" and "wal_bytes". */
static char *stats_counts(const char *db) {
  cli_result r;
  cli_runv(&r, "store", "stats", "--json", "--db", db, NULL);
  assert_int_equal(r.exit_code, 0);
  char *out = calloc(1, r.out_len + 1);
  assert_non_null(out);
  size_t j = 0;
  for (const char *p = r.out; *p;) {
    if (strncmp(p, "\"path\":", 7) == 0 || strncmp(p, "\"db_bytes\":", 11) == 0 ||
        strncmp(p, "\"wal_bytes\":", 12) == 0) {
      /* skip the member up to the next top-level ',' (values here hold none) */
      const char *q = p + 1;
      bool in_str = false;
      for (q = strchr(p, ':') + 1; *q && (in_str || (*q != ',' && *q != '}')); q++) {
        if (*q == '\\' && in_str && q[1])
          q++;
        else if (*q == '"')
          in_str = !in_str;
      }
      if (*q == ',')
        q++;
      p = q;
      continue;
    }
    out[j++] = *p++;
  }
  cli_result_free(&r);
  return out;
}

/* The output of a command that must succeed (a new string). */
static char *run_out(const char *db, const char *const *args, const char *const *extra) {
  const char *argv[32];
  cli_spec spec = {.args = with_db(argv, args, extra, db)};
  cli_result r;
  cli_run(&spec, &r);
  if (r.exit_code != 0)
    fail_msg("mcpr %s %s: exit %d: %s", args[0], args[1], r.exit_code, r.err);
  char *out = r.out;
  r.out = NULL;
  cli_result_free(&r);
  return out;
}

static void first_session(const char *db, const char *const *extra, char *id, size_t size) {
  char *out = run_out(db, (const char *const[]){"proxy", "sessions", "--since", "1000w",
                                                "--json", NULL},
                      extra);
  const char *p = strstr(out, "\"session_id\":\"");
  assert_non_null(p);
  p += 14;
  size_t len = strcspn(p, "\"");
  snprintf(id, size, "%.*s", (int)len, p);
  free(out);
}

/* A SQLite store and a PostgreSQL one, each with the sample traffic and
 * the events write() puts in a file. */
typedef struct stores {
  int lock;
  pg_space sp;
  char *dir, *sqlite_db, *file;
} stores;

static void stores_open(stores *st, const char *name, void (*write)(const char *path)) {
  st->lock = pg_lock(0);
  pg_space_init(&st->sp, name);
  st->dir = tu_tmpdir();
  st->sqlite_db = tu_path(st->dir, "store.db");
  st->file = tu_path(st->dir, "events.ndjson");
  write(st->file);
  const char *sample = MCPR_TEST_SOURCE_DIR "/examples/sample-traffic.ndjson";
  ingest(st->sqlite_db, sample);
  ingest(st->sqlite_db, st->file);
  ingest(st->sp.url, sample);
  ingest(st->sp.url, st->file);
}

static void stores_close(stores *st) {
  free(st->file);
  free(st->sqlite_db);
  tu_rmdir(st->dir);
  pg_space_drop(&st->sp);
  pg_unlock(st->lock);
}

static void test_every_read_command_matches_sqlite(void **state) {
  (void)state;
  PG_REQUIRE();
  stores st;
  stores_open(&st, "reads", write_mix);
  const char *sqlite_db = st.sqlite_db;
  pg_space sp = st.sp;
  ingest(sp.url, st.file); /* again: duplicates change nothing */

  char s1[128], s2[128], prefix[16];
  first_session(sqlite_db, NULL, s1, sizeof s1);
  first_session(sqlite_db, (const char *const[]){"pb", NULL}, s2, sizeof s2);
  snprintf(prefix, sizeof prefix, "%.4s", s2);
#define SAME(...) same(sqlite_db, sp.url, (const char *const[]){__VA_ARGS__, NULL})
  SAME("proxy", "status", "--since", "1000w", "--json");
  SAME("proxy", "status", "pa", "--since", "1000w", "--json");
  SAME("proxy", "status", "docs-api", "--since", "1000w", "--json");
  SAME("proxy", "status", "--json");
  SAME("proxy", "slow", "--since", "1000w", "--threshold", "1us", "--limit", "1000", "--json");
  SAME("proxy", "slow", "pb", "--since", "1000w", "--threshold", "50ms", "--json");
  SAME("proxy", "slow", "--since", "1000w", "--tool", "t2", "--threshold", "1ms", "--json");
  SAME("proxy", "logs", "--since", "1000w", "--tail", "2000", "--json");
  SAME("proxy", "logs", "pa", "--since", "1000w", "--tail", "2000", "--json");
  SAME("proxy", "logs", "--since", "1000w", "--status", "error", "--json");
  SAME("proxy", "logs", "--since", "1000w", "--method", "resources/read", "--json");
  SAME("proxy", "logs", "--since", "1000w", "--tool", "get_page", "--json");
  SAME("proxy", "logs", "--since", "1000w", "--error-code", "-32603", "--json");
  SAME("proxy", "logs", "--session", prefix, "--tail", "500", "--json");
  SAME("proxy", "logs", "--session", s1, "--json");
  SAME("proxy", "sessions", "--since", "1000w", "--limit", "1000", "--json");
  SAME("proxy", "sessions", "pb", "--since", "1000w", "--json");
  SAME("proxy", "sessions", "--since", "1000w", "--client", "Cursor", "--json");
  SAME("proxy", "sessions", "--active", "--json");
  SAME("proxy", "session", s1, "--json");
  SAME("proxy", "session", s2, "--json");
  SAME("proxy", "session", prefix, "--json");
  SAME("proxy", "session", "no-such-session", "--json");
  SAME("proxy", "clients", "--since", "1000w", "--json");
  SAME("proxy", "clients", "pa", "--since", "1000w", "--json");
  SAME("proxy", "schema", "--json");
  SAME("proxy", "schema", "docs-api", "--json");
  SAME("proxy", "schema", "--method", "tools/list", "--json");
  SAME("proxy", "schema", "--changes", "--json");
  SAME("proxy", "schema", "--changes", "--limit", "2", "--json");
  SAME("proxy", "schema", "--unused", "--since", "1000w", "--json");
  SAME("proxy", "schema", "docs-api", "--unused", "--since", "1000w", "--json");
#undef SAME
  char *a = stats_counts(sqlite_db), *b = stats_counts(sp.url);
  assert_string_equal(a, b);
  assert_non_null(strstr(a, "\"total_requests\":850"));
  free(a);
  free(b);

  stores_close(&st);
}

/* 56,000 requests over ten days (of three proxies, five tools and a
 * method without one, latencies spread over three decades, every 13th
 * failed), sessions that end: more than the 50,000 requests below which
 * `status` reads raw, so both stores read their rollups. */
#define LONG_REQUESTS 56000
#define LONG_STEP_MS 15437LL

static void write_long(const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  static const char *const proxies[] = {"pa", "pb", "docs-api"};
  for (int s = 0; s < 40; s++)
    fprintf(f,
            "{\"type\":\"session_start\",\"session_id\":\"long-%02d\",\"proxy\":\"%s\","
            "\"ts\":%lld,\"client_name\":\"claude-ai\",\"client_version\":\"1\","
            "\"client_platform\":null}\n",
            s, proxies[s % 3], T0 + s * 21600000LL);
  for (int i = 0; i < LONG_REQUESTS; i++) {
    int s = (int)((int64_t)i * LONG_STEP_MS / 21600000LL) % 40;
    char tool[32] = "null";
    if (i % 7 != 0)
      snprintf(tool, sizeof tool, "\"t%d\"", i % 5);
    unsigned lat = 50 + (unsigned)((i * 2654435761u) % 200000u) / (1 + (unsigned)(i % 3) * 40);
    fprintf(f,
            "{\"type\":\"request\",\"id\":\"long-%06d\",\"ts\":%lld,\"proxy\":\"%s\","
            "\"session_id\":\"long-%02d\",\"method\":\"POST\",\"path\":\"/mcp\","
            "\"mcp_method\":\"%s\",\"tool\":%s,\"resource_uri\":null,\"prompt_name\":null,"
            "\"status\":200,\"latency_us\":%u,\"upstream_us\":null,\"request_size\":%d,"
            "\"response_size\":%d,\"error_code\":%s,\"error_msg\":null,\"client_name\":null,"
            "\"client_version\":null,\"note\":null}\n",
            i, T0 + 3600000LL + i * LONG_STEP_MS, proxies[s % 3], s,
            i % 7 ? "tools/call" : "tools/list", tool, lat, 100 + i % 50, 300 + i % 900,
            i % 13 == 0 ? "\"-32603\"" : "null");
  }
  for (int s = 0; s < 40; s += 2)
    fprintf(f, "{\"type\":\"session_end\",\"session_id\":\"long-%02d\",\"ts\":%lld}\n", s,
            T0 + s * 21600000LL + 3600000LL);
  fclose(f);
}

static void vacuum_both(const char *sqlite_db, const char *pg_db, int64_t before_ms,
                        const char *proxy, bool dry_run) {
  mcpr_vacuum_result res[2];
  const char *dbs[2] = {sqlite_db, pg_db};
  for (int i = 0; i < 2; i++) {
    mcpr_query *q = NULL;
    mcpr_error err = {0};
    assert_int_equal(mcpr_query_open(&q, dbs[i], &err), MCPR_OK);
    mcpr_vacuum_options o = {.before_ms = before_ms, .proxy = proxy, .dry_run = dry_run};
    if (mcpr_query_vacuum(q, &o, &res[i], &err) != MCPR_OK)
      fail_msg("vacuum %s: %s", dbs[i], err.message);
    mcpr_query_close(q);
  }
  print_message("vacuum%s: %lld requests, %lld sessions\n", dry_run ? " (dry run)" : "",
                (long long)res[0].requests_deleted, (long long)res[0].sessions_deleted);
  assert_true(res[0].requests_deleted > 0);
  assert_int_equal(res[0].requests_deleted, res[1].requests_deleted);
  assert_int_equal(res[0].sessions_deleted, res[1].sessions_deleted);
  if (dry_run)
    assert_int_equal(res[1].bytes_after, res[1].bytes_before);
}

static void same_long_reads(const char *sqlite_db, const char *pg_db) {
#define SAME(...) same(sqlite_db, pg_db, (const char *const[]){__VA_ARGS__, NULL})
  SAME("proxy", "status", "--since", "1000w", "--json");
  SAME("proxy", "status", "--since", "1000w", "--exact", "--json");
  SAME("proxy", "status", "pa", "--since", "1000w", "--json");
  SAME("proxy", "status", "docs-api", "--since", "1000w", "--json");
  SAME("proxy", "slow", "--since", "1000w", "--threshold", "1ms", "--limit", "300", "--json");
  SAME("proxy", "slow", "pb", "--since", "1000w", "--tool", "t3", "--threshold", "1ms",
       "--json");
  SAME("proxy", "schema", "--unused", "--since", "1000w", "--json");
  SAME("proxy", "schema", "docs-api", "--unused", "--since", "1000w", "--json");
  SAME("proxy", "sessions", "--since", "1000w", "--limit", "1000", "--json");
  SAME("proxy", "clients", "--since", "1000w", "--json");
#undef SAME
  char *a = stats_counts(sqlite_db), *b = stats_counts(pg_db);
  assert_string_equal(a, b);
  free(a);
  free(b);
}

/* The dashboard's series from both stores: every point of every series
 * the same. */
static void same_series(const char *sqlite_db, const char *pg_db, const char *proxy,
                        const char *tool, int64_t bucket_ms) {
  mcpr_series_set set[2];
  const char *dbs[2] = {sqlite_db, pg_db};
  for (int i = 0; i < 2; i++) {
    mcpr_query *q = NULL;
    mcpr_error err = {0};
    assert_int_equal(mcpr_query_open(&q, dbs[i], &err), MCPR_OK);
    mcpr_series_filter f;
    mcpr_series_filter_init(&f);
    f.proxy = proxy;
    f.tool = tool;
    f.since_ms = T0 / 3600000 * 3600000;
    f.until_ms = f.since_ms + 12 * 86400000LL;
    f.bucket_ms = bucket_ms;
    f.by_label = true;
    if (mcpr_query_series(q, &f, &set[i], &err) != MCPR_OK)
      fail_msg("series %s: %s", dbs[i], err.message);
    mcpr_query_close(q);
  }
  assert_int_equal(set[0].buckets, set[1].buckets);
  assert_int_equal(set[0].count, set[1].count);
  for (size_t k = 0; k < set[0].count; k++) {
    const mcpr_series *a = &set[0].series[k], *b = &set[1].series[k];
    assert_true((a->label == NULL) == (b->label == NULL));
    if (a->label)
      assert_string_equal(a->label, b->label);
    assert_int_equal(a->requests, b->requests);
    for (size_t i = 0; i < set[0].buckets; i++) {
      assert_int_equal(a->points[i].start_ms, b->points[i].start_ms);
      assert_int_equal(a->points[i].requests, b->points[i].requests);
      assert_int_equal(a->points[i].errors, b->points[i].errors);
      assert_int_equal(a->points[i].p50_us, b->points[i].p50_us);
      assert_int_equal(a->points[i].p95_us, b->points[i].p95_us);
    }
  }
  print_message("same series: %s %s bucket %lld ms (%zu series)\n", proxy ? proxy : "*",
                tool ? tool : "*", (long long)bucket_ms, set[0].count);
  mcpr_series_set_release(&set[0]);
  mcpr_series_set_release(&set[1]);
}

/* Windows long enough that the SQLite store reads its rollups (p95 from
 * the latency sketches): the PostgreSQL store gives the same bytes, and
 * still does after `store vacuum` cut an hour and a day of them. */
static void test_long_windows_match_sqlite(void **state) {
  (void)state;
  PG_REQUIRE();
  stores st;
  stores_open(&st, "longreads", write_long);
  const char *sqlite_db = st.sqlite_db;
  pg_space sp = st.sp;
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM requests WHERE NOT rolled"), 0);
  assert_int_equal(pg_int(&sp, "SELECT sum(calls) FROM mcpr_rollup_hour"),
                   pg_int(&sp, "SELECT count(*) FROM requests"));
  assert_int_equal(pg_int(&sp, "SELECT sum(n) FROM mcpr_rollup_day_sketch"),
                   pg_int(&sp, "SELECT count(*) FROM requests"));

  /* The sketch's p95 is not the exact one here: the rollups were read. */
  const char *status[] = {"proxy", "status", "--since", "1000w", "--json", NULL};
  const char *exact[] = {"proxy", "status", "--since", "1000w", "--exact", "--json", NULL};
  char *approx = run_out(sqlite_db, status, NULL), *exact_out = run_out(sqlite_db, exact, NULL);
  assert_string_not_equal(approx, exact_out);
  free(approx);
  free(exact_out);
  same_long_reads(sqlite_db, sp.url);
  same_series(sqlite_db, sp.url, NULL, NULL, 3600000LL);
  same_series(sqlite_db, sp.url, NULL, NULL, 86400000LL);
  same_series(sqlite_db, sp.url, "pa", NULL, 3600000LL);
  same_series(sqlite_db, sp.url, NULL, "t2", 7200000LL);

  /* A vacuum that cuts an hour (and so a day) of one proxy, then of all. */
  int64_t cut = T0 + 3 * 86400000LL + 5 * 3600000LL + 17 * 60000LL;
  vacuum_both(sqlite_db, sp.url, cut, "pb", true);
  vacuum_both(sqlite_db, sp.url, cut, "pb", false);
  same_long_reads(sqlite_db, sp.url);
  vacuum_both(sqlite_db, sp.url, cut + 86400000LL, NULL, true);
  vacuum_both(sqlite_db, sp.url, cut + 86400000LL, NULL, false);
  same_long_reads(sqlite_db, sp.url);
  assert_int_equal(pg_int(&sp, "SELECT sum(calls) FROM mcpr_rollup_hour"),
                   pg_int(&sp, "SELECT count(*) FROM requests"));
  assert_int_equal(pg_int(&sp, "SELECT sum(calls) FROM mcpr_rollup_day"),
                   pg_int(&sp, "SELECT count(*) FROM requests"));
  assert_int_equal(pg_int(&sp, "SELECT sum(n) FROM mcpr_rollup_hour_sketch"),
                   pg_int(&sp, "SELECT count(*) FROM requests"));

  stores_close(&st);
}

/* Record the events of an NDJSON file into an open store, as `mcpr
 * ingest` does, and wait until they are committed. */
static void record_file(mcpr_store *s, const char *file) {
  FILE *f = fopen(file, "r");
  assert_non_null(f);
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    mcpr_event ev;
    mcpr_error err = {0};
    assert_int_equal(mcpr_event_decode(line, (size_t)len, &ev, &err), MCPR_OK);
    mcpr_store_event se;
    assert_true(mcpr_event_to_store(&ev, &se));
    mcpr_status st;
    while ((st = mcpr_store_record(s, &se)) == MCPR_EQUEUEFULL) /* as ingest: wait */
      assert_int_equal(mcpr_store_flush(s, 60000, &err), MCPR_OK);
    assert_int_equal(st, MCPR_OK);
    mcpr_event_release(&ev);
  }
  free(line);
  fclose(f);
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_flush(s, 60000, &err), MCPR_OK);
}

/* The writer appends its batches' rollups to the pending tables and folds
 * them into the keyed ones now and then (rollup.h): read while a writer
 * still holds some pending (after a fold of most), every figure is the
 * same as SQLite's; at the writer's close the rest is folded and they
 * still are, with nothing pending and the keyed tables adding up. */
static void test_reads_with_pending_rollups(void **state) {
  (void)state;
  PG_REQUIRE();
  int lock = pg_lock(0);
  pg_space sp;
  pg_space_init(&sp, "pending");
  char *dir = tu_tmpdir();
  char *sqlite_db = tu_path(dir, "store.db"), *file = tu_path(dir, "events.ndjson");
  write_long(file);
  const char *sample = MCPR_TEST_SOURCE_DIR "/examples/sample-traffic.ndjson";
  ingest(sqlite_db, sample);
  ingest(sqlite_db, file);
  ingest(sp.url, sample);
  static const char taken_sql[] =
      "SELECT coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables"
      " WHERE relname = 'mcpr_rollup_pending_sketch' AND schemaname = current_schema()";
  int64_t taken0 = pg_int(&sp, taken_sql); /* the sample's ingest folded at its close */
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, sp.url, NULL, &err), MCPR_OK);
  record_file(s, file);
  int64_t pending = pg_int(&sp, "SELECT count(*) FROM mcpr_rollup_pending_sketch");
  int64_t folded = pg_int(&sp, "SELECT count(*) FROM mcpr_rollup_hour_sketch");
  print_message("while writing: %lld pending buckets, %lld folded\n", (long long)pending,
                (long long)folded);
  assert_true(pending > 0);
  assert_true(folded > 0);
  same_long_reads(sqlite_db, sp.url);
  same_series(sqlite_db, sp.url, NULL, NULL, 3600000LL);
  same_series(sqlite_db, sp.url, NULL, NULL, 86400000LL);
  same_series(sqlite_db, sp.url, "pa", NULL, 3600000LL);
  same_series(sqlite_db, sp.url, NULL, "t2", 7200000LL);
  /* Past 50,000 events the writer's folder compacts the pending rows in
   * the background (one per hour, label and bucket; these batches hold
   * hours of their own, so hardly fewer rows): the same again after it. */
  int64_t taken = 0;
  for (int i = 0; i < 600 && taken <= taken0; i++) {
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    taken = pg_int(&sp, taken_sql);
  }
  print_message("compacted: %lld pending buckets taken, %lld now\n",
                (long long)(taken - taken0),
                (long long)pg_int(&sp, "SELECT count(*) FROM mcpr_rollup_pending_sketch"));
  assert_true(taken > taken0 + LONG_REQUESTS / 2);
  same_long_reads(sqlite_db, sp.url);
  same_series(sqlite_db, sp.url, NULL, NULL, 3600000LL);
  same_series(sqlite_db, sp.url, NULL, "t2", 7200000LL);
  /* A vacuum cutting an hour of the pending ones: both levels lose it. */
  int64_t last = pg_int(&sp, "SELECT max(ts) FROM requests");
  vacuum_both(sqlite_db, sp.url, last - 3600000LL * 5 / 2, NULL, false);
  same_long_reads(sqlite_db, sp.url);
  assert_true(pg_int(&sp, "SELECT count(*) FROM mcpr_rollup_pending_sketch") > 0);
  /* `mcpr store rollup` folds what is pending, the writer still open. */
  cli_result r;
  cli_runv(&r, "store", "rollup", "--db", sp.url, NULL);
  if (r.exit_code != 0)
    fail_msg("store rollup: %s", r.err);
  cli_result_free(&r);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM mcpr_rollup_pending_sketch"), 0);
  same_long_reads(sqlite_db, sp.url);

  mcpr_store_stats fin;
  assert_int_equal(mcpr_store_close(s, &fin), MCPR_OK);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM mcpr_rollup_pending"), 0);
  assert_int_equal(pg_int(&sp, "SELECT count(*) FROM mcpr_rollup_pending_sketch"), 0);
  same_long_reads(sqlite_db, sp.url);
  same_series(sqlite_db, sp.url, NULL, NULL, 3600000LL);
  int64_t rows = pg_int(&sp, "SELECT count(*) FROM requests");
  assert_int_equal(pg_int(&sp, "SELECT sum(calls) FROM mcpr_rollup_hour"), rows);
  assert_int_equal(pg_int(&sp, "SELECT sum(calls) FROM mcpr_rollup_day"), rows);
  assert_int_equal(pg_int(&sp, "SELECT sum(n) FROM mcpr_rollup_hour_sketch"), rows);
  assert_int_equal(pg_int(&sp, "SELECT sum(n) FROM mcpr_rollup_day_sketch"), rows);

  free(file);
  free(sqlite_db);
  tu_rmdir(dir);
  pg_space_drop(&sp);
  pg_unlock(lock);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_read_command_matches_sqlite),
      cmocka_unit_test(test_long_windows_match_sqlite),
      cmocka_unit_test(test_reads_with_pending_rollups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The query API (query.h) on the fixture store of query_fixture.h and on a
 * v3 store written with the original's DDL. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcpr/query.h"
#include "query/backend.h"
#include "query_fixture.h"
#include "backend/sqlite/db.h"
#include "backend/sqlite/query.h"
#include "fx_store.h"
#include "testutil.h"

static mcpr_query *open_q(void) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  if (mcpr_query_open(&q, fx_path, &err) != MCPR_OK)
    fail_msg("open: %s", err.message);
  return q;
}

static size_t logs_count(mcpr_query *q, const mcpr_log_filter *f) {
  mcpr_log_rows rows;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_logs(q, f, &rows, &err), MCPR_OK);
  size_t n = rows.count;
  mcpr_log_rows_release(&rows);
  return n;
}

static void test_logs_filters(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.limit = 1000;
  f.since_ms = fx_now - FX_HOUR_MS;
  assert_int_equal(logs_count(q, &f), 126);
  f.proxy = "web";
  assert_int_equal(logs_count(q, &f), 20);
  f.proxy = NULL;
  f.tool = "search";
  assert_int_equal(logs_count(q, &f), 100);
  f.since_ms = MCPR_QUERY_NO_CUTOFF;
  assert_int_equal(logs_count(q, &f), 101);
  f.tool = NULL;
  f.method = "tools/list";
  assert_int_equal(logs_count(q, &f), 3);
  f.method = NULL;
  f.has_status = true;
  f.status = MCPR_REQUEST_ERROR;
  assert_int_equal(logs_count(q, &f), 10);
  f.status = MCPR_REQUEST_TIMEOUT;
  assert_int_equal(logs_count(q, &f), 1);
  f.has_status = false;
  f.error_code = "-32602";
  assert_int_equal(logs_count(q, &f), 10);
  f.error_code = "-3260"; /* exact, not prefix */
  assert_int_equal(logs_count(q, &f), 0);
  f.error_code = NULL;
  f.session_prefix = "sess-alpha";
  assert_int_equal(logs_count(q, &f), 103);
  f.session_prefix = "sess-alpha-2";
  assert_int_equal(logs_count(q, &f), 2);
  f.session_prefix = "sess-alpha-9";
  assert_int_equal(logs_count(q, &f), 0);
  f.session_prefix = "SESS"; /* case-sensitive, no LIKE folding */
  assert_int_equal(logs_count(q, &f), 0);
  f.session_prefix = "sess_%"; /* no wildcards */
  assert_int_equal(logs_count(q, &f), 0);

  /* Newest first, limit, and the row's fields. */
  mcpr_log_filter_init(&f);
  f.limit = 2;
  f.tool = "search";
  mcpr_log_rows rows;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_logs(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 2);
  assert_int_equal(rows.rows[0].latency_us, 100);
  assert_string_equal(rows.rows[0].status, "error");
  assert_string_equal(rows.rows[0].error_code, "-32602");
  assert_string_equal(rows.rows[0].error_msg, "Invalid params");
  assert_string_equal(rows.rows[0].session_id, "sess-alpha-1");
  assert_int_equal(rows.rows[0].bytes_in, 100);
  assert_int_equal(rows.rows[0].bytes_out, 200);
  assert_int_equal(rows.rows[1].latency_us, 99);
  assert_true(rows.rows[0].ts_ms > rows.rows[1].ts_ms);
  mcpr_log_rows_release(&rows);

  mcpr_log_filter_init(&f);
  f.method = "resources/read";
  assert_int_equal(mcpr_query_logs(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 1);
  assert_string_equal(rows.rows[0].resource_uri, "file:///a.md");
  assert_null(rows.rows[0].tool);
  assert_null(rows.rows[0].prompt_name);
  assert_int_equal(rows.rows[0].bytes_in, MCPR_QUERY_NULL);
  mcpr_log_rows_release(&rows);
  mcpr_query_close(q);
}

static void test_slow_and_follow(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.min_latency_us = 1000;
  f.since_ms = fx_now - FX_HOUR_MS;
  mcpr_log_rows rows;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_slow(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 4); /* prompts/get 2 s, tools/list ×3 */
  assert_int_equal(rows.rows[0].latency_us, 2000000);
  assert_string_equal(rows.rows[0].prompt_name, "review");
  assert_int_equal(rows.rows[1].latency_us, 3000);
  assert_int_equal(rows.rows[3].latency_us, 1000);
  mcpr_log_rows_release(&rows);
  f.since_ms = MCPR_QUERY_NO_CUTOFF;
  f.tool = "search";
  assert_int_equal(mcpr_query_slow(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 1);
  assert_int_equal(rows.rows[0].latency_us, 900000);
  mcpr_log_rows_release(&rows);
  f.tool = NULL;
  f.proxy = "web";
  assert_int_equal(mcpr_query_slow(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 0);
  mcpr_log_rows_release(&rows);

  /* Follow: in insertion order after a cursor, filters applied. */
  int64_t last = 0;
  assert_int_equal(mcpr_query_last_row_id(q, &last, &err), MCPR_OK);
  assert_true(last >= 127);
  mcpr_log_filter_init(&f);
  f.after_row_id = last - 5;
  f.limit = 100;
  assert_int_equal(mcpr_query_follow(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 5);
  for (size_t i = 1; i < rows.count; i++)
    assert_true(rows.rows[i].row_id > rows.rows[i - 1].row_id);
  assert_int_equal(rows.rows[4].row_id, last);
  mcpr_log_rows_release(&rows);
  f.after_row_id = last;
  assert_int_equal(mcpr_query_follow(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 0);
  mcpr_log_rows_release(&rows);
  f.after_row_id = 0;
  f.tool = "fetch";
  f.limit = 7;
  assert_int_equal(mcpr_query_follow(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 7);
  assert_int_equal(rows.rows[0].latency_us, 1);
  assert_int_equal(rows.rows[6].latency_us, 7);
  mcpr_log_rows_release(&rows);
  mcpr_query_close(q);
}

static const mcpr_stats_row *find_label(const mcpr_stats *s, const char *label) {
  for (size_t i = 0; i < s->count; i++)
    if (strcmp(s->rows[i].label, label) == 0)
      return &s->rows[i];
  fail_msg("no stats row %s", label);
  return NULL;
}

static void check_fixture_stats(const mcpr_stats *s) {
  assert_int_equal(s->count, 6);
  assert_string_equal(s->rows[0].label, "search"); /* by calls desc */
  assert_string_equal(s->rows[1].label, "fetch");
  assert_string_equal(s->rows[2].label, "<tools/list>");
  assert_int_equal(s->total_calls, 126);
  assert_int_equal(s->total_errors, 11);
  const mcpr_stats_row *r = find_label(s, "search");
  assert_int_equal(r->calls, 100);
  assert_int_equal(r->p95_us, 95); /* 1..100 → 95 */
  assert_int_equal(r->min_us, 1);
  assert_int_equal(r->max_us, 100);
  assert_int_equal(r->avg_us, 51); /* 50.5 rounds up */
  assert_int_equal(r->errors, 10);
  assert_true(r->error_pct > 9.999 && r->error_pct < 10.001);
  assert_int_equal(r->total_bytes_in, 5050);
  assert_int_equal(r->total_bytes_out, 10100);
  r = find_label(s, "fetch");
  assert_int_equal(r->p95_us, 19); /* 1..20 → 19 */
  assert_int_equal(r->errors, 1);  /* the timeout counts */
  assert_int_equal(r->total_bytes_in, 0);
  r = find_label(s, "single");
  assert_int_equal(r->p95_us, 7);
  assert_int_equal(r->min_us, 7);
  r = find_label(s, "<tools/list>");
  assert_int_equal(r->p95_us, 3000);
  assert_int_equal(r->avg_us, 2000);
  find_label(s, "<resources/read>");
  find_label(s, "<prompts/get>");
}

static void test_stats_all_strategies(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_stats_filter f = {NULL, fx_now - FX_HOUR_MS, 0};
  mcpr_error err = {0};
  for (int strategy = 0; strategy < 3; strategy++) {
    mcpr_stats s;
    mcpr_status st = strategy == MCPR__STATS_ONE_PASS
                         ? mcpr_query_stats(q, &f, &s, &err)
                         : mcpr__query_sqlite_stats(q, &f, (mcpr__stats_strategy)strategy, &s,
                                                    &err);
    assert_int_equal(st, MCPR_OK);
    check_fixture_stats(&s);
    mcpr_stats_release(&s);
  }
  /* Proxy filter, and all time includes the 3-hour-old call. */
  mcpr_stats s;
  f.proxy = "api";
  f.since_ms = MCPR_QUERY_NO_CUTOFF;
  assert_int_equal(mcpr_query_stats(q, &f, &s, &err), MCPR_OK);
  assert_int_equal(s.count, 5);
  assert_int_equal(find_label(&s, "search")->calls, 101);
  assert_int_equal(find_label(&s, "search")->max_us, 900000);
  mcpr_stats_release(&s);

  mcpr_status_summary sum;
  f.proxy = "api";
  f.since_ms = fx_now - FX_HOUR_MS;
  assert_int_equal(mcpr_query_status(q, &f, fx_now, &sum, &err), MCPR_OK);
  assert_int_equal(sum.stats.total_calls, 106);
  assert_int_equal(sum.active_sessions, 1);
  assert_int_equal(sum.total_sessions, 2); /* sess-alpha-1 started 3 h ago */
  mcpr_status_summary_release(&sum);
  mcpr_query_close(q);
}

static void test_p95_index(void **state) {
  (void)state;
  assert_int_equal(mcpr__p95_index(1), 0);
  assert_int_equal(mcpr__p95_index(20), 18);
  assert_int_equal(mcpr__p95_index(100), 94);
  assert_int_equal(mcpr__p95_index(101), 95); /* ceil(95.95) − 1 */
  assert_int_equal(mcpr__p95_index(2), 1);
}

static void test_sessions(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_session_filter f;
  mcpr_session_filter_init(&f);
  f.now_ms = fx_now;
  mcpr_session_rows rows;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_sessions(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 4);
  /* Most recently seen first: alpha-2's last request is the newest. */
  assert_string_equal(rows.rows[0].session_id, "sess-alpha-2");
  assert_false(rows.rows[0].is_active); /* ended */
  assert_string_equal(rows.rows[1].session_id, "sess-alpha-1");
  assert_true(rows.rows[1].is_active);
  assert_int_equal(rows.rows[1].total_calls, 101);
  assert_int_equal(rows.rows[1].total_errors, 10);
  assert_int_equal(rows.rows[1].ended_at_ms, MCPR_QUERY_NULL);
  assert_string_equal(rows.rows[1].client_platform, "claude");
  assert_string_equal(rows.rows[2].session_id, "sess-idle");
  assert_false(rows.rows[2].is_active); /* open, but seen 20 minutes ago */
  assert_false(rows.rows[3].is_active);
  mcpr_session_rows_release(&rows);

  f.since_ms = fx_now - FX_HOUR_MS;
  assert_int_equal(mcpr_query_sessions(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 2); /* sess-alpha-1 started 3 h ago */
  mcpr_session_rows_release(&rows);
  f.since_ms = fx_now - 4 * FX_HOUR_MS;
  f.active_only = true;
  assert_int_equal(mcpr_query_sessions(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 1);
  mcpr_session_rows_release(&rows);
  /* Six minutes later nothing is active: last_seen_at > now − 5 min. */
  f.now_ms = fx_now + 6 * 60000;
  assert_int_equal(mcpr_query_sessions(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 0);
  mcpr_session_rows_release(&rows);
  f.now_ms = fx_now;
  f.active_only = false;
  f.client_name = "cursor";
  assert_int_equal(mcpr_query_sessions(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 1);
  assert_string_equal(rows.rows[0].session_id, "sess-alpha-2");
  assert_true(rows.rows[0].ended_at_ms != MCPR_QUERY_NULL);
  mcpr_session_rows_release(&rows);
  f.client_name = NULL;
  f.proxy = "web";
  f.since_ms = MCPR_QUERY_NO_CUTOFF;
  assert_int_equal(mcpr_query_sessions(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 1);
  assert_string_equal(rows.rows[0].session_id, "sess-beta-1");
  mcpr_session_rows_release(&rows);
  f.proxy = NULL;
  f.limit = 2;
  assert_int_equal(mcpr_query_sessions(q, &f, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 2);
  mcpr_session_rows_release(&rows);
  mcpr_query_close(q);
}

static void test_session_detail(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_session_detail d;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_session(q, "sess-alpha-2", fx_now, &d, &err), MCPR_OK);
  assert_string_equal(d.session.client_name, "cursor");
  assert_int_equal(d.requests.count, 2);
  assert_string_equal(d.requests.rows[0].method, "resources/read"); /* oldest first */
  assert_string_equal(d.requests.rows[1].method, "prompts/get");
  mcpr_session_detail_release(&d);
  assert_int_equal(mcpr_query_session(q, "sess-b", fx_now, &d, &err), MCPR_OK);
  assert_string_equal(d.session.session_id, "sess-beta-1");
  assert_int_equal(d.requests.count, 0);
  mcpr_session_detail_release(&d);
  assert_int_equal(mcpr_query_session(q, "sess-alpha-1", fx_now, &d, &err), MCPR_OK);
  assert_int_equal(d.requests.count, 101);
  assert_int_equal(d.requests.rows[0].latency_us, 900000);
  mcpr_session_detail_release(&d);
  assert_int_equal(mcpr_query_session(q, "sess-alpha", fx_now, &d, &err), MCPR_EINVAL);
  assert_non_null(strstr(err.message, "ambiguous"));
  assert_int_equal(mcpr_query_session(q, "nope", fx_now, &d, &err), MCPR_ENOTFOUND);
  assert_non_null(strstr(err.message, "nope"));
  mcpr_query_close(q);
}

static void test_clients(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_client_rows rows;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_clients(q, NULL, fx_now - 7 * 24 * FX_HOUR_MS, &rows, &err),
                   MCPR_OK);
  assert_int_equal(rows.count, 3);
  assert_string_equal(rows.rows[0].client_name, "claude-desktop");
  assert_int_equal(rows.rows[0].sessions, 2);
  assert_int_equal(rows.rows[0].total_calls, 101);
  assert_int_equal(rows.rows[0].total_errors, 10);
  assert_string_equal(rows.rows[0].client_platform, "claude");
  assert_string_equal(rows.rows[1].client_name, "cursor");
  assert_int_equal(rows.rows[1].total_calls, 2);
  /* "Visual Studio Code" matches none of the SPEC §9 rules. */
  assert_string_equal(rows.rows[2].client_platform, "unknown");
  mcpr_client_rows_release(&rows);
  assert_int_equal(mcpr_query_clients(q, "web", MCPR_QUERY_NO_CUTOFF, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 1);
  mcpr_client_rows_release(&rows);
  assert_int_equal(mcpr_query_clients(q, NULL, fx_now - FX_HOUR_MS, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 2);
  mcpr_client_rows_release(&rows);
  mcpr_query_close(q);
}

static void test_schema(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_error err = {0};
  mcpr_schema_rows rows;
  assert_int_equal(mcpr_query_schema(q, NULL, NULL, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 3);
  assert_string_equal(rows.rows[0].upstream_url, "http://up-api");
  assert_string_equal(rows.rows[0].method, "initialize");
  assert_string_equal(rows.rows[2].upstream_url, "http://up-web");
  mcpr_schema_rows_release(&rows);
  assert_int_equal(mcpr_query_schema(q, NULL, "tools/list", &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 2);
  mcpr_schema_rows_release(&rows);

  mcpr_schema_statuses st;
  assert_int_equal(mcpr_query_schema_status(q, NULL, &st, &err), MCPR_OK);
  assert_int_equal(st.count, 2);
  assert_int_equal(st.rows[0].status, MCPR_SCHEMA_COMPLETE);
  assert_string_equal(st.rows[0].server_name, "demo");
  assert_string_equal(st.rows[0].server_version, "1.2");
  assert_string_equal(st.rows[0].protocol_version, "2025-06-18");
  assert_int_equal(st.rows[0].capability_count, 2);
  assert_string_equal(st.rows[0].capabilities[0], "prompts");
  assert_string_equal(st.rows[0].capabilities[1], "tools");
  assert_int_equal(st.rows[1].status, MCPR_SCHEMA_PARTIAL);
  assert_null(st.rows[1].server_name);
  mcpr_schema_statuses_release(&st);
  assert_int_equal(mcpr_query_schema_status(q, "nobody", &st, &err), MCPR_OK);
  assert_int_equal(st.count, 0); /* unknown */
  mcpr_schema_statuses_release(&st);

  mcpr_schema_change_rows ch;
  assert_int_equal(mcpr_query_schema_changes(q, NULL, NULL, 50, &ch, &err), MCPR_OK);
  assert_int_equal(ch.count, 3);
  assert_string_equal(ch.rows[0].upstream_url, "http://up-web"); /* newest first */
  assert_string_equal(ch.rows[0].change_type, "initial");
  assert_null(ch.rows[0].old_hash);
  assert_string_equal(ch.rows[0].new_hash, "hash-web-tools");
  mcpr_schema_change_rows_release(&ch);
  assert_int_equal(mcpr_query_schema_changes(q, "api", "tools/list", 50, &ch, &err), MCPR_OK);
  assert_int_equal(ch.count, 1);
  mcpr_schema_change_rows_release(&ch);
  assert_int_equal(mcpr_query_schema_changes(q, NULL, NULL, 1, &ch, &err), MCPR_OK);
  assert_int_equal(ch.count, 1);
  mcpr_schema_change_rows_release(&ch);
  mcpr_query_close(q);
}

static void test_unused(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_error err = {0};
  mcpr_unused_tool_rows rows;
  int64_t week = fx_now - 7 * 24 * FX_HOUR_MS;
  /* Proxy api: fetch is only called through web, so it is unused here. */
  assert_int_equal(mcpr_query_unused_tools(q, "api", week, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 3);
  assert_string_equal(rows.rows[0].tool_name, "fetch");
  assert_int_equal(rows.rows[0].calls, 0);
  assert_int_equal(rows.rows[0].last_called_at_ms, MCPR_QUERY_NULL);
  assert_string_equal(rows.rows[1].tool_name, "unused_tool");
  assert_string_equal(rows.rows[1].description, "Never called");
  assert_string_equal(rows.rows[2].tool_name, "search");
  assert_int_equal(rows.rows[2].calls, 101);
  assert_int_equal(rows.rows[2].errors, 10);
  assert_string_equal(rows.rows[2].description, "Search docs");
  assert_true(rows.rows[2].last_called_at_ms > fx_now - FX_HOUR_MS);
  mcpr_unused_tool_rows_release(&rows);
  /* All proxies: the union of both tool lists; fetch has web's 20 calls. */
  assert_int_equal(mcpr_query_unused_tools(q, NULL, fx_now - FX_HOUR_MS, &rows, &err), MCPR_OK);
  assert_int_equal(rows.count, 4);
  assert_string_equal(rows.rows[0].tool_name, "unused_tool");
  assert_string_equal(rows.rows[1].tool_name, "web_only");
  assert_string_equal(rows.rows[2].tool_name, "fetch");
  assert_int_equal(rows.rows[2].calls, 20);
  assert_int_equal(rows.rows[2].errors, 1);
  assert_int_equal(rows.rows[3].calls, 100); /* the 3-hour-old call is outside 1h */
  mcpr_unused_tool_rows_release(&rows);
  mcpr_query_close(q);
}

static void test_store_info_and_vacuum(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "v.db");
  int64_t now = fx_build(path);
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  mcpr_store_info info;
  assert_int_equal(mcpr_query_store_info(q, &info, &err), MCPR_OK);
  assert_int_equal(info.total_requests, 127);
  assert_int_equal(info.total_sessions, 4);
  assert_int_equal(info.proxies, 2);
  assert_int_equal(info.oldest_request_ms, now - 3 * FX_HOUR_MS);
  assert_true(info.db_bytes > 0);
  assert_int_equal(info.schema_version, 5);

  /* Dry run: counts, changes nothing. The 3-hour-old request goes; no
   * session qualifies (sess-alpha-2 ended recently, the others are open). */
  mcpr_vacuum_options o = {.before_ms = now - FX_HOUR_MS, .dry_run = true};
  mcpr_vacuum_result r;
  assert_int_equal(mcpr_query_vacuum(q, &o, &r, &err), MCPR_OK);
  assert_int_equal(r.requests_deleted, 1);
  assert_int_equal(r.sessions_deleted, 0);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 127);
  /* Everything older than a minute from now of proxy api: sess-alpha-2
   * (ended, its requests gone) goes too; web is untouched. */
  o.before_ms = now + 60000;
  o.proxy = "api";
  assert_int_equal(mcpr_query_vacuum(q, &o, &r, &err), MCPR_OK);
  assert_int_equal(r.requests_deleted, 107);
  assert_int_equal(r.sessions_deleted, 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 127);
  o.dry_run = false;
  assert_int_equal(mcpr_query_vacuum(q, &o, &r, &err), MCPR_OK);
  assert_int_equal(r.requests_deleted, 107);
  assert_int_equal(r.sessions_deleted, 1);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 20);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests WHERE proxy='web'"), 20);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions"), 3);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sessions WHERE session_id='sess-alpha-2'"), 0);
  mcpr_query_close(q);
  free(path);
  tu_rmdir(dir);
}

/* A store written by the original at schema v3 (latency_ms) reads after the
 * migration, in µs. */
static void test_legacy_v3(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "v3.db");
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(mcpr__db_exec(db, mcpr__db_legacy_ddl(3)), SQLITE_OK);
  assert_int_equal(
      mcpr__db_exec(db,
                    "INSERT INTO requests (request_id, ts, proxy, session_id, method, tool,"
                    " latency_ms, status, error_code, error_msg, bytes_in, bytes_out) VALUES"
                    " ('r1', 1000, 'api', 's1', 'tools/call', 'search', 12, 'ok', NULL, NULL, 1, 2),"
                    " ('r2', 2000, 'api', 's1', 'tools/call', 'search', 30, 'error', '-1', 'x', NULL, NULL),"
                    " ('r3', 3000, 'api', NULL, 'tools/list', NULL, 5, 'ok', NULL, NULL, NULL, NULL);"
                    "INSERT INTO sessions VALUES ('s1', 'api', 900, 2000, NULL, 'claude-ai', '0.1',"
                    " 'claude', 2, 1);"),
      SQLITE_OK);
  sqlite3_close(db);
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  mcpr_stats_filter f = {NULL, MCPR_QUERY_NO_CUTOFF, 0};
  mcpr_stats s;
  assert_int_equal(mcpr_query_stats(q, &f, &s, &err), MCPR_OK);
  assert_int_equal(s.count, 2);
  assert_string_equal(s.rows[0].label, "search");
  assert_int_equal(s.rows[0].max_us, 30000);
  assert_int_equal(s.rows[0].p95_us, 30000);
  assert_int_equal(s.rows[1].p95_us, 5000);
  mcpr_stats_release(&s);
  mcpr_session_detail d;
  assert_int_equal(mcpr_query_session(q, "s", 2000, &d, &err), MCPR_OK);
  assert_int_equal(d.requests.count, 2);
  assert_int_equal(d.requests.rows[0].latency_us, 12000);
  assert_null(d.requests.rows[0].resource_uri);
  mcpr_session_detail_release(&d);
  mcpr_query_close(q);
  free(path);
  tu_rmdir(dir);
}

/* The store keeps no index on requests(session_id): session filters are
 * bounded by the session's lifetime. Clock steps (a request stamped before
 * its session started) and sessions never seen starting must still be
 * found. */
static void test_session_window_edges(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "edges.db");
  int64_t now = mcpr_now_ms();
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  fx_session(s, "sess-step", "api", now - 60000, "cursor", "1.0");
  fx_request(s, now - 90000, "api", "sess-step", "tools/call", "a", 1, MCPR_REQUEST_OK, NULL,
             -1, -1); /* 30 s before its session: the clock stepped back */
  fx_request(s, now - 50000, "api", "sess-step", "tools/call", "a", 1, MCPR_REQUEST_OK, NULL,
             -1, -1);
  fx_request(s, now - 3 * FX_HOUR_MS, "api", "sess-orphan", "tools/call", "a", 1,
             MCPR_REQUEST_OK, NULL, -1, -1); /* no session row at all */
  for (int i = 0; i < 50; i++) /* other traffic around them */
    fx_request(s, now - 4 * FX_HOUR_MS + i * 300000, "api", NULL, "ping", NULL, 1,
               MCPR_REQUEST_OK, NULL, -1, -1);
  mcpr_store_event closed = {.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
  closed.u.session_closed = (mcpr_session_closed_event){"sess-step", now - 40000};
  fx_record(s, closed);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  mcpr_query *q = NULL;
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.since_ms = MCPR_QUERY_NO_CUTOFF;
  f.session_id = "sess-step";
  assert_int_equal(logs_count(q, &f), 2);
  f.session_id = NULL;
  f.session_prefix = "sess-st";
  assert_int_equal(logs_count(q, &f), 2);
  f.session_prefix = "sess-orph";
  assert_int_equal(logs_count(q, &f), 1);
  /* A prefix that names known sessions is bounded by their lifetimes: an
   * orphan that merely shares the prefix falls outside (documented in
   * docs/query-plans.md); one that names no known session is unbounded. */
  f.session_prefix = "sess-";
  assert_int_equal(logs_count(q, &f), 2);
  mcpr_query_close(q);
  free(path);
  tu_rmdir(dir);
}

static void test_missing_store(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "none.db");
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_ENOTFOUND);
  assert_null(q);
  assert_non_null(strstr(err.message, path));
  assert_non_null(strstr(err.message, "MCPR_DB"));
  assert_int_equal(access(path, F_OK), -1);
  free(path);
  tu_rmdir(dir);
}

/* A limit below 1 is refused with the output zeroed, so releasing it is
 * safe; an empty store's last row id is 0. */
static void test_limit_rules_and_empty_store(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_error err = {0};
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.limit = 0;
  mcpr_log_rows logs;
  memset(&logs, 0xAB, sizeof logs);
  assert_int_equal(mcpr_query_logs(q, &f, &logs, &err), MCPR_EINVAL);
  assert_string_equal(err.message, "limit must be positive");
  assert_null(logs.rows);
  assert_int_equal(logs.count, 0);
  assert_null(logs.pool);
  mcpr_log_rows_release(&logs);
  mcpr_session_filter sf;
  mcpr_session_filter_init(&sf);
  sf.limit = -1;
  mcpr_session_rows sessions;
  memset(&sessions, 0xAB, sizeof sessions);
  assert_int_equal(mcpr_query_sessions(q, &sf, &sessions, &err), MCPR_EINVAL);
  assert_string_equal(err.message, "limit must be positive");
  assert_null(sessions.rows);
  assert_null(sessions.pool);
  mcpr_session_rows_release(&sessions);
  mcpr_schema_change_rows changes;
  memset(&changes, 0xAB, sizeof changes);
  assert_int_equal(mcpr_query_schema_changes(q, NULL, NULL, 0, &changes, &err), MCPR_EINVAL);
  assert_string_equal(err.message, "limit must be positive");
  assert_null(changes.rows);
  assert_null(changes.pool);
  mcpr_schema_change_rows_release(&changes);
  int64_t last = -1;
  assert_int_equal(mcpr_query_last_row_id(q, &last, &err), MCPR_OK);
  assert_true(last > 0);
  mcpr_query_close(q);

  char *empty = tu_path(fx_dir, "empty.db");
  mcpr_store *s = NULL;
  assert_int_equal(mcpr_store_open(&s, empty, NULL, &err), MCPR_OK);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  assert_int_equal(mcpr_query_open(&q, empty, &err), MCPR_OK);
  last = -1;
  assert_int_equal(mcpr_query_last_row_id(q, &last, &err), MCPR_OK);
  assert_int_equal(last, 0);
  mcpr_query_close(q);
  free(empty);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logs_filters),   cmocka_unit_test(test_slow_and_follow),
      cmocka_unit_test(test_stats_all_strategies), cmocka_unit_test(test_p95_index),
      cmocka_unit_test(test_sessions),       cmocka_unit_test(test_session_detail),
      cmocka_unit_test(test_clients),        cmocka_unit_test(test_schema),
      cmocka_unit_test(test_unused),         cmocka_unit_test(test_store_info_and_vacuum),
      cmocka_unit_test(test_legacy_v3),      cmocka_unit_test(test_missing_store),
      cmocka_unit_test(test_session_window_edges),
      cmocka_unit_test(test_limit_rules_and_empty_store),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

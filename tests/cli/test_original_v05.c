/*
 * A store.db in the original mcpr's 0.5.x layout (meta.schema_version '1',
 * requests + responses, sessions with a state, schema_items), built with
 * the original's own DDL (store_fixtures.h): every reading command answers
 * from it — logs, slow, status (p95), sessions, session, clients, schema,
 * --changes, --unused, store stats — and leaves the file byte for byte as
 * it was, with nothing beside it (no -wal, -shm, -journal, -mcprlock).
 * Writing commands (ingest, vacuum) refuse it by name, untouched. With the
 * original's proxy running (its -wal and -shm present), its latest
 * commits are read too.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "cli_check.h"
#include "store_fixtures.h"
#include "testutil.h"

static char *dir, *path;
static unsigned char *bytes;
static size_t len;
static int64_t now_ms;

static int setup(void **state) {
  (void)state;
  dir = tu_tmpdir();
  path = tu_path(dir, "store.db");
  now_ms = mcpr_now_ms();
  sf_build_original_v05(path, now_ms);
  bytes = sf_read_file(path, &len);
  return bytes ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  free(bytes);
  free(path);
  tu_rmdir(dir);
  return 0;
}

static void assert_untouched(const char *what) {
  size_t len1 = 0;
  unsigned char *after = sf_read_file(path, &len1);
  if (!after || len1 != len || memcmp(after, bytes, len) != 0)
    fail_msg("mcpr %s changed the 0.5 store", what);
  free(after);
  static const char *const sidecars[] = {"-wal", "-shm", "-journal", "-mcprlock"};
  for (size_t i = 0; i < 4; i++) {
    char side[4200];
    snprintf(side, sizeof side, "%s%s", path, sidecars[i]);
    if (sf_exists(side))
      fail_msg("mcpr %s created %s", what, side);
  }
}

/* Run mcpr --db path args, expect exit 0 and the store untouched. */
#define READ(r, ...)                                                           \
  do {                                                                         \
    RUN_ON(r, path, __VA_ARGS__);                                              \
    if ((r)->exit_code != 0)                                                   \
      fail_msg("exit %d, stderr:\n%s", (r)->exit_code, (r)->err);              \
    assert_untouched(#__VA_ARGS__);                                            \
  } while (0)

static void test_logs(void **state) {
  (void)state;
  cli_result r;
  READ(&r, "proxy", "logs", "--since", "1h", "--tail", "100", "--json");
  assert_int_equal(nd_count(r.out), 23); /* 22 of api, 1 of web */
  json_t *o = nd_line(r.out, 0);         /* newest: tools/list, 2 min ago */
  assert_string_equal(js(o, "method"), "tools/list");
  assert_string_equal(js(o, "status"), "ok");
  assert_int_equal(ji(o, "latency_us"), 0);
  assert_null_field(o, "bytes_in"); /* the layout does not measure sizes */
  json_decref(o);
  cli_result_free(&r);

  READ(&r, "proxy", "logs", "api", "--status", "error", "--json");
  assert_int_equal(nd_count(r.out), 1);
  o = nd_line(r.out, 0);
  assert_string_equal(js(o, "request_id"), "7");
  assert_string_equal(js(o, "error_code"), "-32603");
  assert_string_equal(js(o, "error_msg"), "boom");
  assert_int_equal(ji(o, "latency_us"), 7000);
  assert_string_equal(js(o, "session_id"), "sess-a");
  json_decref(o);
  cli_result_free(&r);

  /* No response row: pending, latency unknown, as the original's view. */
  READ(&r, "proxy", "logs", "web", "--json");
  assert_int_equal(nd_count(r.out), 1);
  o = nd_line(r.out, 0);
  assert_string_equal(js(o, "status"), "pending");
  assert_null_field(o, "latency_us");
  assert_string_equal(js(o, "resource_uri"), "file:///x");
  json_decref(o);
  cli_result_free(&r);

  READ(&r, "proxy", "logs", "--tool", "fetch", "--since", "1h", "--json");
  assert_int_equal(nd_count(r.out), 0); /* 100 min ago */
  cli_result_free(&r);
  READ(&r, "proxy", "logs", "--session", "sess-b", "--json"); /* all time */
  assert_int_equal(nd_count(r.out), 1);
  cli_result_free(&r);
  READ(&r, "proxy", "logs", "--tail", "5");
  assert_non_null(strstr(r.out, "search"));
  cli_result_free(&r);
}

static void test_slow(void **state) {
  (void)state;
  cli_result r;
  READ(&r, "proxy", "slow", "--threshold", "15ms", "--json");
  assert_int_equal(nd_count(r.out), 6); /* 15..20 ms */
  json_t *o = nd_line(r.out, 0);
  assert_int_equal(ji(o, "latency_us"), 20000);
  json_decref(o);
  o = nd_line(r.out, 5);
  assert_int_equal(ji(o, "latency_us"), 15000);
  json_decref(o);
  cli_result_free(&r);
}

static json_t *tool_row(json_t *status, const char *label) {
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(status, "tools"), i, t) {
    if (strcmp(js(t, "label"), label) == 0)
      return t;
  }
  fail_msg("no stats row %s", label);
  return NULL;
}

static void test_status_p95(void **state) {
  (void)state;
  cli_result r;
  READ(&r, "proxy", "status", "api", "--since", "1h", "--json");
  json_t *o = nd_line(r.out, 0);
  assert_int_equal(ji(o, "total_requests"), 22);
  assert_int_equal(ji(o, "active_sessions"), 1);
  assert_int_equal(ji(o, "total_sessions"), 1); /* sess-a started 30 min ago */
  json_t *search = tool_row(o, "search");
  assert_int_equal(ji(search, "calls"), 21);
  /* The 20 answered calls: 1..20 ms; the unanswered one has no latency. */
  assert_int_equal(ji(search, "p95_us"), 19000);
  assert_int_equal(ji(search, "min_us"), 1000);
  assert_int_equal(ji(search, "max_us"), 20000);
  assert_int_equal(ji(search, "avg_us"), 10500);
  /* Not ok: the error and the pending call, as the original counts. */
  double pct = json_real_value(json_object_get(search, "error_pct"));
  assert_true(pct > 9.5 && pct < 9.6);
  json_t *list = tool_row(o, "<tools/list>");
  assert_int_equal(ji(list, "calls"), 1);
  assert_int_equal(ji(list, "p95_us"), 0);
  json_decref(o);
  cli_result_free(&r);

  READ(&r, "proxy", "status", "web", "--since", "1h", "--json");
  o = nd_line(r.out, 0);
  json_t *read = tool_row(o, "<resources/read>");
  assert_null_field(read, "p95_us"); /* no latency known at all */
  json_decref(o);
  cli_result_free(&r);
  READ(&r, "proxy", "status");
  assert_non_null(strstr(r.out, "search"));
  cli_result_free(&r);
}

static void test_sessions(void **state) {
  (void)state;
  cli_result r;
  char ids[256];
  READ(&r, "proxy", "sessions", "--since", "7d", "--json");
  ids_of(r.out, ids, sizeof ids);
  assert_string_equal(ids, "sess-a,sess-c,sess-b"); /* most recently seen first */
  json_t *o = nd_line(r.out, 0);
  assert_string_equal(js(o, "client_platform"), "claude");
  assert_int_equal(ji(o, "total_calls"), 22);
  assert_int_equal(ji(o, "total_errors"), 1);
  assert_null_field(o, "ended_at");
  assert_true(json_is_true(json_object_get(o, "is_active")));
  json_decref(o);
  o = nd_line(r.out, 1); /* active in the layout, idle for 20 min */
  assert_string_equal(js(o, "client_platform"), "chatgpt");
  assert_true(json_is_false(json_object_get(o, "is_active")));
  json_decref(o);
  o = nd_line(r.out, 2); /* closed: ended at its last activity */
  assert_int_equal(ji(o, "ended_at"), ji(o, "last_seen_at"));
  assert_int_equal(ji(o, "ended_at"), now_ms - 90 * 60000);
  json_decref(o);
  cli_result_free(&r);

  READ(&r, "proxy", "sessions", "--active", "--json");
  ids_of(r.out, ids, sizeof ids);
  assert_string_equal(ids, "sess-a");
  cli_result_free(&r);

  READ(&r, "proxy", "session", "sess-a", "--json");
  o = nd_line(r.out, 0);
  assert_string_equal(js(o, "session_id"), "sess-a");
  json_t *reqs = json_object_get(o, "requests");
  assert_int_equal(json_array_size(reqs), 22);
  assert_string_equal(js(json_array_get(reqs, 0), "request_id"), "1"); /* oldest first */
  json_decref(o);
  cli_result_free(&r);
  RUN_ON(&r, path, "proxy", "session", "sess-");
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "ambiguous"));
  assert_untouched("proxy session sess-");
  cli_result_free(&r);
}

static void test_clients(void **state) {
  (void)state;
  cli_result r;
  READ(&r, "proxy", "clients", "--since", "7d", "--json");
  assert_int_equal(nd_count(r.out), 3);
  json_t *o = nd_line(r.out, 0);
  assert_string_equal(js(o, "client_name"), "claude-ai");
  assert_int_equal(ji(o, "sessions"), 1);
  assert_int_equal(ji(o, "total_calls"), 22);
  assert_int_equal(ji(o, "total_errors"), 1);
  json_decref(o);
  cli_result_free(&r);
}

static void test_schema(void **state) {
  (void)state;
  cli_result r;
  READ(&r, "proxy", "schema", "--json");
  assert_int_equal(nd_count(r.out), 2); /* prompts/list and tools/list of api */
  json_t *o = nd_line(r.out, 1);
  assert_string_equal(js(o, "method"), "tools/list");
  assert_string_equal(js(o, "upstream_url"), ""); /* not recorded */
  assert_null_field(o, "schema_hash");
  /* {"tools": [each tool's payload, by name]}, as a tools/list result. */
  /* payload is the JSON text, a string, as the original prints it (SPEC §7) */
  json_t *payload = json_loads(js(o, "payload"), 0, NULL);
  json_t *tools = json_object_get(payload, "tools");
  assert_int_equal(json_array_size(tools), 3);
  char names[64] = "";
  for (size_t i = 0, n = 0; i < 3; i++)
    n += (size_t)snprintf(names + n, sizeof names - n, "%s,",
                          json_string_value(json_object_get(json_array_get(tools, i), "name")));
  assert_non_null(strstr(names, "search,"));
  assert_non_null(strstr(names, "fetch,"));
  assert_non_null(strstr(names, "unused,"));
  json_decref(payload);
  json_decref(o);
  cli_result_free(&r);

  READ(&r, "proxy", "schema", "--changes", "--json");
  assert_int_equal(nd_count(r.out), 3);
  o = nd_line(r.out, 0);
  assert_string_equal(js(o, "change_type"), "tool_modified");
  assert_string_equal(js(o, "item_name"), "search");
  assert_string_equal(js(o, "old_hash"), "h-search-1");
  json_decref(o);
  o = nd_line(r.out, 2);
  assert_string_equal(js(o, "change_type"), "tool_added");
  assert_null_field(o, "old_hash");
  json_decref(o);
  cli_result_free(&r);
  READ(&r, "proxy", "schema", "--changes", "--method", "prompts/list", "--json");
  assert_int_equal(nd_count(r.out), 1);
  cli_result_free(&r);

  READ(&r, "proxy", "schema", "--unused", "--since", "7d", "--json");
  assert_int_equal(nd_count(r.out), 3);
  o = nd_line(r.out, 0);
  assert_string_equal(js(o, "tool_name"), "unused");
  assert_int_equal(ji(o, "calls"), 0);
  assert_string_equal(js(o, "description"), "Nobody calls it");
  json_decref(o);
  o = nd_line(r.out, 1);
  assert_string_equal(js(o, "tool_name"), "fetch");
  assert_int_equal(ji(o, "calls"), 1);
  json_decref(o);
  o = nd_line(r.out, 2);
  assert_string_equal(js(o, "tool_name"), "search");
  assert_int_equal(ji(o, "calls"), 21);
  assert_int_equal(ji(o, "errors"), 2);
  json_decref(o);
  cli_result_free(&r);
  READ(&r, "proxy", "schema");
  cli_result_free(&r);
}

static void test_store_stats(void **state) {
  (void)state;
  cli_result r;
  READ(&r, "store", "stats");
  assert_non_null(strstr(r.out, "24")); /* requests */
  cli_result_free(&r);
}

/* Writing commands name the layout and write nothing. */
static void test_writes_refused(void **state) {
  (void)state;
  const char *const *const writers[] = {
      (const char *const[]){"ingest", "-", NULL},
      (const char *const[]){"store", "vacuum", "--before", "1d", NULL},
      (const char *const[]){"store", "vacuum", "--before", "1d", "--dry-run", NULL},
  };
  for (size_t i = 0; i < sizeof writers / sizeof writers[0]; i++) {
    cli_result r;
    run_on(&r, path, writers[i]);
    if (r.exit_code == 0 || !strstr(r.err, "original mcpr 0.5"))
      fail_msg("mcpr %s %s: exit %d, stderr: %s", writers[i][0], writers[i][1], r.exit_code,
               r.err);
    assert_untouched(writers[i][0]);
    cli_result_free(&r);
  }
}

/* The original's proxy running: its connection keeps -wal and -shm, and a
 * commit still in the WAL is read. */
static void test_live_writer(void **state) {
  (void)state;
  char *live = tu_path(dir, "live.db");
  sf_build_original_v05(live, now_ms);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(live, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "PRAGMA wal_autocheckpoint=0;"
                                    "INSERT INTO requests (ts, proxy, session_id, request_id,"
                                    " method, tool) VALUES (strftime('%s','now')*1000, 'live',"
                                    " NULL, 'x', 'tools/call', 'late');",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  cli_result r;
  RUN_ON(&r, live, "proxy", "logs", "live", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(nd_count(r.out), 1);
  cli_result_free(&r);
  char lock[4200];
  snprintf(lock, sizeof lock, "%s-mcprlock", live);
  assert_false(sf_exists(lock));
  sqlite3_close(db);
  free(live);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logs),       cmocka_unit_test(test_slow),
      cmocka_unit_test(test_status_p95), cmocka_unit_test(test_sessions),
      cmocka_unit_test(test_clients),    cmocka_unit_test(test_schema),
      cmocka_unit_test(test_store_stats), cmocka_unit_test(test_writes_refused),
      cmocka_unit_test(test_live_writer),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

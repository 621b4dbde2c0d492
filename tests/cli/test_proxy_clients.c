/* `mcpr proxy clients`, end to end: sessions grouped by (name, version,
 * platform) with the JSON fields of SPEC §7, ordered by calls desc, the
 * window on the start time, the proxy filter, null for missing values, and
 * the aligned pretty table. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "store_fixtures.h"
#include "fx_store.h"
#include "testutil.h"

#define CLIENT_KEYS                                                                      \
  "client_name,client_version,client_platform,sessions,total_calls,total_errors,"       \
  "error_pct,first_seen,last_seen"

/* ---------- tests ---------- */

static double jr(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_number(v))
    fail_msg("%s is not a number", key);
  return json_number_value(v);
}

static void assert_pct(json_t *o, double want) {
  if (fabs(jr(o, "error_pct") - want) > 0.0001)
    fail_msg("error_pct %.4f, want %.4f", jr(o, "error_pct"), want);
}

/* "name" of each NDJSON line (null as "-"), comma-joined. */
static void names_of(const char *out, char *buf, size_t n) {
  buf[0] = '\0';
  size_t len = 0;
  for (size_t i = 0; i < nd_count(out); i++) {
    json_t *o = nd_line(out, i);
    json_t *v = json_object_get(o, "client_name");
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "",
                            json_is_string(v) ? json_string_value(v) : "-");
    json_decref(o);
  }
}

static void test_json(void **state) {
  (void)state;
  int64_t t0 = fx_now - 120000;
  cli_result r;
  RUN_OK(&r, "proxy", "clients", "--json"); /* default window 7d */
  assert_int_equal(nd_count(r.out), 3);
  json_t *o = nd_line(r.out, 0);
  assert_keys(o, CLIENT_KEYS);
  assert_string_equal(js(o, "client_name"), "claude-desktop");
  assert_string_equal(js(o, "client_version"), "1.0");
  assert_string_equal(js(o, "client_platform"), "claude");
  assert_int_equal(ji(o, "sessions"), 2); /* sess-alpha-1 and sess-idle */
  assert_int_equal(ji(o, "total_calls"), 101);
  assert_int_equal(ji(o, "total_errors"), 10);
  assert_pct(o, 9.9); /* 10/101, two decimals */
  assert_int_equal(ji(o, "first_seen"), fx_now - 3 * FX_HOUR_MS - 1000);
  assert_int_equal(ji(o, "last_seen"), t0 + 100);
  json_decref(o);
  o = nd_line(r.out, 1);
  assert_keys(o, CLIENT_KEYS);
  assert_string_equal(js(o, "client_name"), "cursor");
  assert_string_equal(js(o, "client_platform"), "cursor");
  assert_int_equal(ji(o, "sessions"), 1);
  assert_int_equal(ji(o, "total_calls"), 2);
  assert_int_equal(ji(o, "total_errors"), 0);
  assert_pct(o, 0.0);
  assert_int_equal(ji(o, "first_seen"), t0 - 500);
  assert_int_equal(ji(o, "last_seen"), t0 + 501);
  json_decref(o);
  o = nd_line(r.out, 2);
  assert_keys(o, CLIENT_KEYS);
  assert_string_equal(js(o, "client_name"), "Visual Studio Code");
  assert_string_equal(js(o, "client_platform"), "unknown");
  assert_int_equal(ji(o, "total_calls"), 0);
  assert_pct(o, 0.0); /* no calls: 0, not NaN */
  json_decref(o);
  cli_result_free(&r);
}

static void test_filters(void **state) {
  (void)state;
  static const struct {
    const char *args[4];
    const char *names;
  } cases[] = {
      {{NULL}, "claude-desktop,cursor,Visual Studio Code"},
      {{"--since", "7d", NULL}, "claude-desktop,cursor,Visual Studio Code"},
      /* 1h: only sess-idle of claude-desktop (0 calls): cursor first */
      {{"--since", "1h", NULL}, "cursor,claude-desktop"},
      {{"--since", "10m", NULL}, "cursor"},
      {{"--since", "1s", NULL}, ""},
      {{"api", NULL}, "claude-desktop,cursor"},
      {{"web", NULL}, "Visual Studio Code"},
      {{"web", "--since", "1h", NULL}, ""},
      {{"nobody", NULL}, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static const char *const base[] = {"proxy", "clients", "--json", NULL};
    cli_result r;
    run_ok_on(&r, fx_path, base, cases[i].args);
    char names[256];
    names_of(r.out, names, sizeof names);
    if (strcmp(names, cases[i].names) != 0)
      fail_msg("case %zu: got [%s], want [%s]", i, names, cases[i].names);
    cli_result_free(&r);
  }
  /* The 1h window counts only the sessions that started in it. */
  cli_result r;
  RUN_OK(&r, "proxy", "clients", "--since", "1h", "--json");
  json_t *o = nd_line(r.out, 1);
  assert_int_equal(ji(o, "sessions"), 1);
  assert_int_equal(ji(o, "first_seen"), fx_now - 20 * 60000);
  json_decref(o);
  cli_result_free(&r);
}

/* Versions are separate groups; a client without clientInfo is its own
 * group with null name and version; a row written by an older mcpr with no
 * platform shows null; ties on calls go to the group with more sessions. */
static void test_grouping_and_nulls(void **state) {
  (void)state;
  char *path = tu_path(fx_dir, "groups.db");
  int64_t now = mcpr_now_ms();
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  fx_session(s, "c1", "api", now - 60000, "cursor", "1.0");
  fx_session(s, "c2", "api", now - 50000, "cursor", "1.0");
  fx_session(s, "c3", "api", now - 40000, "cursor", "2.0");
  fx_session(s, "n1", "api", now - 30000, NULL, NULL);
  fx_session(s, "old", "api", now - 20000, "legacy", "0.1");
  for (int i = 0; i < 3; i++)
    fx_request(s, now - 10000 + i, "api", "c3", "tools/call", "t", 5,
               i == 0 ? MCPR_REQUEST_ERROR : MCPR_REQUEST_OK, i == 0 ? "-1" : NULL, -1, -1);
  fx_request(s, now - 9000, "api", "c1", "tools/call", "t", 5, MCPR_REQUEST_OK, NULL, -1, -1);
  fx_request(s, now - 8000, "api", "c2", "tools/call", "t", 5, MCPR_REQUEST_OK, NULL, -1, -1);
  fx_request(s, now - 7000, "api", "n1", "tools/call", "t", 5, MCPR_REQUEST_OK, NULL, -1, -1);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  sf_exec(path, "UPDATE sessions SET client_platform = NULL WHERE session_id = 'old'");

  cli_result r;
  RUN_ON(&r, path, "proxy", "clients", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(nd_count(r.out), 4);
  json_t *o = nd_line(r.out, 0); /* cursor 2.0: 3 calls */
  assert_string_equal(js(o, "client_version"), "2.0");
  assert_int_equal(ji(o, "total_calls"), 3);
  assert_int_equal(ji(o, "total_errors"), 1);
  assert_pct(o, 33.33);
  json_decref(o);
  o = nd_line(r.out, 1); /* cursor 1.0: 2 calls over 2 sessions */
  assert_string_equal(js(o, "client_version"), "1.0");
  assert_int_equal(ji(o, "sessions"), 2);
  assert_int_equal(ji(o, "total_calls"), 2);
  assert_int_equal(ji(o, "first_seen"), now - 60000);
  assert_int_equal(ji(o, "last_seen"), now - 8000);
  json_decref(o);
  o = nd_line(r.out, 2); /* no clientInfo: 1 call */
  assert_keys(o, CLIENT_KEYS);
  assert_null_field(o, "client_name");
  assert_null_field(o, "client_version");
  assert_null_field(o, "client_platform"); /* no name, nothing to derive it from */
  assert_int_equal(ji(o, "total_calls"), 1);
  json_decref(o);
  o = nd_line(r.out, 3);
  assert_string_equal(js(o, "client_name"), "legacy");
  assert_null_field(o, "client_platform");
  assert_int_equal(ji(o, "total_calls"), 0);
  json_decref(o);
  cli_result_free(&r);

  RUN_ON(&r, path, "proxy", "clients");
  assert_int_equal(r.exit_code, 0);
  static const char *const right[] = {"SESSIONS", "CALLS", "ERRORS", "ERR%", NULL};
  static const char *const left[] = {"VERSION", "PLATFORM", "FIRST SEEN", "LAST SEEN", NULL};
  assert_int_equal(assert_table(r.out, "CLIENT", right, left), 4);
  assert_non_null(strstr(r.out, "33.3%"));
  cli_result_free(&r);
  free(path);
}

static void test_pretty(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "proxy", "clients");
  static const char *const right[] = {"SESSIONS", "CALLS", "ERRORS", "ERR%", NULL};
  static const char *const left[] = {"VERSION", "PLATFORM", "FIRST SEEN", "LAST SEEN", NULL};
  assert_int_equal(assert_table(r.out, "CLIENT", right, left), 3);
  const char *c = strstr(r.out, "\nclaude-desktop"), *cu = strstr(r.out, "\ncursor"),
             *v = strstr(r.out, "\nVisual Studio Code");
  assert_true(c && cu && v && c < cu && cu < v);
  assert_non_null(strstr(r.out, "9.9%"));
  assert_null(strstr(r.out, "\033["));
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "clients", "nobody", "--since", "2d");
  assert_non_null(strstr(r.out, "No sessions started in the last 2d."));
  cli_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_filters),
      cmocka_unit_test(test_grouping_and_nulls),
      cmocka_unit_test(test_pretty),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

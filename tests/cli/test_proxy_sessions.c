/* `mcpr proxy sessions`, end to end: the JSON fields of SPEC §7 with their
 * values (null for what is missing), every filter, the active rule
 * (ended_at IS NULL AND last_seen_at > now − 5 min), most recently seen
 * first, and the aligned pretty table. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "fx_store.h"
#include "testutil.h"

#define SESSION_KEYS                                                                     \
  "session_id,client_name,client_version,client_platform,started_at,last_seen_at,"      \
  "ended_at,total_calls,total_errors,is_active"

/* ---------- tests ---------- */

static void test_json_fields_and_values(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "proxy", "sessions", "--json", "--since", "4h");
  assert_int_equal(nd_count(r.out), 4);
  char ids[256];
  ids_of(r.out, ids, sizeof ids);
  /* Most recently seen first: alpha-2's last request is the newest. */
  assert_string_equal(ids, "sess-alpha-2,sess-alpha-1,sess-idle,sess-beta-1");

  int64_t t0 = fx_now - 120000;
  json_t *o = nd_line(r.out, 0);
  assert_keys(o, SESSION_KEYS);
  assert_string_equal(js(o, "client_name"), "cursor");
  assert_string_equal(js(o, "client_version"), "0.9");
  assert_string_equal(js(o, "client_platform"), "cursor");
  assert_int_equal(ji(o, "started_at"), t0 - 500);
  assert_int_equal(ji(o, "last_seen_at"), t0 + 501);
  assert_int_equal(ji(o, "ended_at"), t0 + 600);
  assert_int_equal(ji(o, "total_calls"), 2);
  assert_int_equal(ji(o, "total_errors"), 0);
  assert_true(json_is_false(json_object_get(o, "is_active"))); /* ended */
  json_decref(o);

  o = nd_line(r.out, 1);
  assert_keys(o, SESSION_KEYS);
  assert_string_equal(js(o, "client_name"), "claude-desktop");
  assert_string_equal(js(o, "client_platform"), "claude");
  assert_int_equal(ji(o, "started_at"), fx_now - 3 * FX_HOUR_MS - 1000);
  assert_int_equal(ji(o, "last_seen_at"), t0 + 100);
  assert_null_field(o, "ended_at");
  assert_int_equal(ji(o, "total_calls"), 101);
  assert_int_equal(ji(o, "total_errors"), 10);
  assert_true(json_is_true(json_object_get(o, "is_active")));
  json_decref(o);

  o = nd_line(r.out, 2); /* open, but last seen 20 minutes ago */
  assert_keys(o, SESSION_KEYS);
  assert_int_equal(ji(o, "total_calls"), 0);
  assert_int_equal(ji(o, "last_seen_at"), fx_now - 20 * 60000);
  assert_null_field(o, "ended_at");
  assert_true(json_is_false(json_object_get(o, "is_active")));
  json_decref(o);

  o = nd_line(r.out, 3);
  assert_keys(o, SESSION_KEYS);
  assert_string_equal(js(o, "client_name"), "Visual Studio Code");
  assert_string_equal(js(o, "client_platform"), "unknown");
  json_decref(o);
  cli_result_free(&r);
}

static void test_filters(void **state) {
  (void)state;
  static const struct {
    const char *args[8];
    const char *ids;
  } cases[] = {
      /* default window 1h on started_at: alpha-1 and beta-1 started 3 h ago */
      {{NULL}, "sess-alpha-2,sess-idle"},
      {{"--since", "4h", NULL}, "sess-alpha-2,sess-alpha-1,sess-idle,sess-beta-1"},
      {{"--since=4h", NULL}, "sess-alpha-2,sess-alpha-1,sess-idle,sess-beta-1"},
      {{"--since", "30m", NULL}, "sess-alpha-2,sess-idle"},
      {{"--since", "10m", NULL}, "sess-alpha-2"},
      {{"--since", "1s", NULL}, ""},
      {{"--active", "--since", "4h", NULL}, "sess-alpha-1"},
      {{"--active", NULL}, "sess-alpha-1"}, /* --active alone: every active session, however old */
      {{"--client", "cursor", NULL}, "sess-alpha-2"},
      {{"--client", "claude-desktop", "--since", "4h", NULL}, "sess-alpha-1,sess-idle"},
      {{"--client", "claude", "--since", "4h", NULL}, ""}, /* exact, not a prefix */
      {{"--client", "Visual Studio Code", "--since", "1d", NULL}, "sess-beta-1"},
      {{"api", "--since", "4h", NULL}, "sess-alpha-2,sess-alpha-1,sess-idle"},
      {{"web", "--since", "4h", NULL}, "sess-beta-1"},
      {{"web", NULL}, ""},
      {{"nobody", "--since", "4h", NULL}, ""},
      {{"--since", "4h", "--limit", "2", NULL}, "sess-alpha-2,sess-alpha-1"},
      {{"--since", "4h", "--limit", "1", NULL}, "sess-alpha-2"},
      {{"api", "--active", "--client", "claude-desktop", "--since", "1d", NULL},
       "sess-alpha-1"},
      {{"web", "--active", "--since", "1d", NULL}, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static const char *const base[] = {"proxy", "sessions", "--json", NULL};
    cli_result r;
    run_ok_on(&r, fx_path, base, cases[i].args);
    char ids[256];
    ids_of(r.out, ids, sizeof ids);
    if (strcmp(ids, cases[i].ids) != 0)
      fail_msg("case %zu (%s %s): got [%s], want [%s]", i,
               cases[i].args[0] ? cases[i].args[0] : "",
               cases[i].args[0] && cases[i].args[1] ? cases[i].args[1] : "", ids,
               cases[i].ids);
    cli_result_free(&r);
  }
}

/* The active rule at its edges, on a store of its own: open and seen 4
 * minutes ago is active; open and seen 6 minutes ago is not; seen a minute
 * ago but ended is not. A session without clientInfo has null name and
 * version. */
static void test_active_rule_and_nulls(void **state) {
  (void)state;
  char *path = tu_path(fx_dir, "active.db");
  int64_t now = mcpr_now_ms();
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  fx_session(s, "s-seen-4m", "api", now - 30 * 60000, NULL, NULL);
  fx_session(s, "s-seen-6m", "api", now - 30 * 60000, "cursor", "2.0");
  fx_session(s, "s-ended", "api", now - 30 * 60000, "cursor", "2.0");
  fx_request(s, now - 4 * 60000, "api", "s-seen-4m", "tools/call", "t", 10, MCPR_REQUEST_ERROR,
             "-1", -1, -1);
  fx_request(s, now - 6 * 60000, "api", "s-seen-6m", "tools/call", "t", 10, MCPR_REQUEST_TIMEOUT,
             NULL, -1, -1);
  fx_request(s, now - 60000, "api", "s-ended", "tools/call", "t", 10, MCPR_REQUEST_OK, NULL, -1,
             -1);
  mcpr_store_event closed = {.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
  closed.u.session_closed = (mcpr_session_closed_event){"s-ended", now - 30000};
  fx_record(s, closed);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  cli_result r;
  RUN_ON(&r, path, "proxy", "sessions", "--json");
  assert_int_equal(r.exit_code, 0);
  char ids[256];
  ids_of(r.out, ids, sizeof ids);
  assert_string_equal(ids, "s-ended,s-seen-4m,s-seen-6m");
  json_t *o = nd_line(r.out, 0);
  assert_true(json_is_false(json_object_get(o, "is_active")));
  assert_int_equal(ji(o, "ended_at"), now - 30000);
  json_decref(o);
  o = nd_line(r.out, 1);
  assert_keys(o, SESSION_KEYS);
  assert_true(json_is_true(json_object_get(o, "is_active")));
  assert_null_field(o, "client_name");
  assert_null_field(o, "client_version");
  assert_int_equal(ji(o, "total_calls"), 1);
  assert_int_equal(ji(o, "total_errors"), 1);
  json_decref(o);
  o = nd_line(r.out, 2);
  assert_true(json_is_false(json_object_get(o, "is_active")));
  assert_int_equal(ji(o, "total_errors"), 1); /* a timeout counts as an error */
  json_decref(o);
  cli_result_free(&r);

  RUN_ON(&r, path, "proxy", "sessions", "--active", "--json");
  assert_int_equal(r.exit_code, 0);
  ids_of(r.out, ids, sizeof ids);
  assert_string_equal(ids, "s-seen-4m");
  cli_result_free(&r);

  RUN_ON(&r, path, "proxy", "sessions", "--active");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "s-seen-4m"));
  assert_null(strstr(r.out, "s-seen-6m"));
  assert_null(strstr(r.out, "s-ended"));
  cli_result_free(&r);
  free(path);
}

static void test_pretty(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "proxy", "sessions", "--since", "4h");
  static const char *const right[] = {"CALLS", "ERRORS", NULL};
  static const char *const left[] = {"CLIENT", "PLATFORM", "STARTED", "LAST SEEN", "STATE", NULL};
  assert_int_equal(assert_table(r.out, "SESSION", right, left), 4);
  assert_non_null(strstr(r.out, "claude-desktop 1.0"));
  assert_non_null(strstr(r.out, "cursor 0.9"));
  /* the rows in order, each with its state */
  const char *a2 = strstr(r.out, "sess-alpha-2"), *a1 = strstr(r.out, "sess-alpha-1"),
             *idle = strstr(r.out, "sess-idle"), *b1 = strstr(r.out, "sess-beta-1");
  assert_true(a2 && a1 && idle && b1 && a2 < a1 && a1 < idle && idle < b1);
  assert_non_null(strstr(a2, "ended\n"));
  assert_non_null(strstr(a1, "active\n"));
  assert_non_null(strstr(idle, "idle\n"));
  assert_true(strstr(a1, "active\n") < idle);
  assert_null(strstr(r.out, "\033[")); /* NO_COLOR / not a TTY */
  cli_result_free(&r);

  /* A filter that empties the list is named, not only the window. */
  RUN_OK(&r, "proxy", "sessions", "--client", "nobody");
  assert_string_equal(r.out, "No sessions match --client nobody in the last 1h.\n");
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "sessions", "--client", "nobody", "--since", "400d");
  assert_string_equal(r.out, "No sessions match --client nobody in the last 400d.\n");
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "sessions", "nobody", "--client", "cursor", "--since", "400d");
  assert_string_equal(r.out,
                      "No sessions match --client cursor and proxy nobody in the last 400d.\n");
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "sessions", "--active", "--client", "nobody");
  assert_string_equal(r.out, "No active sessions match --client nobody.\n");
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "sessions", "--since", "1s");
  assert_string_equal(r.out, "No sessions started in the last 1s.\n");
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "sessions", "--active", "--since", "1s");
  assert_non_null(strstr(r.out, "No active sessions"));
  cli_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_fields_and_values),
      cmocka_unit_test(test_filters),
      cmocka_unit_test(test_active_rule_and_nulls),
      cmocka_unit_test(test_pretty),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

/* `mcpr proxy session ID|PREFIX`, end to end: one JSON object with the
 * session's fields and its requests oldest first; exact id before prefix;
 * an ambiguous prefix or an unknown id is a clear error with exit 1; the
 * prefix is a prefix, not a LIKE pattern. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "fx_store.h"
#include "store_fixtures.h"
#include "testutil.h"

#define SESSION_KEYS                                                                     \
  "session_id,client_name,client_version,client_platform,started_at,last_seen_at,"      \
  "ended_at,total_calls,total_errors,is_active"
#define LOG_KEYS                                                                         \
  "request_id,ts,method,tool,resource_uri,prompt_name,latency_us,status,error_code,"    \
  "error_msg,session_id,bytes_in,bytes_out"

/* ---------- tests ---------- */

/* The SPEC §7 session fields, in order, then whatever else, `requests` last. */
static void assert_session_object(json_t *o) {
  char buf[1024];
  size_t len = keys_of(o, buf, sizeof buf);
  if (strncmp(buf, SESSION_KEYS ",", strlen(SESSION_KEYS) + 1) != 0 ||
      strcmp(buf + len - strlen(",requests"), ",requests") != 0)
    fail_msg("session object keys: %s", buf);
  assert_true(json_is_array(json_object_get(o, "requests")));
}

static void test_json_detail(void **state) {
  (void)state;
  int64_t t0 = fx_now - 120000;
  cli_result r;
  RUN_OK(&r, "proxy", "session", "sess-alpha-2", "--json");
  assert_int_equal(nd_count(r.out), 1); /* one object, one line */
  json_t *o = nd_line(r.out, 0);
  assert_session_object(o);
  assert_string_equal(js(o, "session_id"), "sess-alpha-2");
  assert_string_equal(js(o, "client_name"), "cursor");
  assert_string_equal(js(o, "client_version"), "0.9");
  assert_int_equal(ji(o, "started_at"), t0 - 500);
  assert_int_equal(ji(o, "ended_at"), t0 + 600);
  assert_int_equal(ji(o, "total_calls"), 2);
  assert_true(json_is_false(json_object_get(o, "is_active")));
  json_t *reqs = json_object_get(o, "requests");
  assert_int_equal(json_array_size(reqs), 2);
  json_t *q0 = json_array_get(reqs, 0), *q1 = json_array_get(reqs, 1);
  assert_keys(q0, LOG_KEYS);
  assert_keys(q1, LOG_KEYS);
  /* oldest first */
  assert_string_equal(js(q0, "method"), "resources/read");
  assert_string_equal(js(q0, "resource_uri"), "file:///a.md");
  assert_null_field(q0, "tool");
  assert_null_field(q0, "prompt_name");
  assert_null_field(q0, "bytes_in");
  assert_int_equal(ji(q0, "latency_us"), 500);
  assert_int_equal(ji(q0, "ts"), t0 + 500);
  assert_string_equal(js(q0, "session_id"), "sess-alpha-2");
  assert_string_equal(js(q1, "method"), "prompts/get");
  assert_string_equal(js(q1, "prompt_name"), "review");
  assert_int_equal(ji(q1, "latency_us"), 2000000);
  json_decref(o);
  cli_result_free(&r);

  /* An open session: every request, the 3-hour-old one first. */
  RUN_OK(&r, "proxy", "session", "sess-alpha-1", "--json");
  o = nd_line(r.out, 0);
  assert_session_object(o);
  assert_null_field(o, "ended_at");
  assert_true(json_is_true(json_object_get(o, "is_active")));
  assert_int_equal(ji(o, "total_calls"), 101);
  assert_int_equal(ji(o, "total_errors"), 10);
  reqs = json_object_get(o, "requests");
  assert_int_equal(json_array_size(reqs), 101);
  assert_int_equal(ji(json_array_get(reqs, 0), "latency_us"), 900000);
  assert_int_equal(ji(json_array_get(reqs, 0), "ts"), fx_now - 3 * FX_HOUR_MS);
  int64_t prev = 0, errors = 0;
  for (size_t i = 0; i < json_array_size(reqs); i++) {
    json_t *q = json_array_get(reqs, i);
    assert_true(ji(q, "ts") > prev);
    prev = ji(q, "ts");
    assert_string_equal(js(q, "session_id"), "sess-alpha-1");
    if (strcmp(js(q, "status"), "error") == 0) {
      errors++;
      assert_string_equal(js(q, "error_code"), "-32602");
    }
    if (i > 0)
      assert_int_equal(ji(q, "latency_us"), (int64_t)i);
  }
  assert_int_equal(errors, 10);
  json_decref(o);
  cli_result_free(&r);
}

static void test_prefix(void **state) {
  (void)state;
  cli_result r;
  /* A unique prefix; a session without requests has an empty list. */
  RUN_OK(&r, "proxy", "session", "sess-b", "--json");
  json_t *o = nd_line(r.out, 0);
  assert_session_object(o);
  assert_string_equal(js(o, "session_id"), "sess-beta-1");
  assert_string_equal(js(o, "client_platform"), "unknown");
  assert_int_equal(json_array_size(json_object_get(o, "requests")), 0);
  json_decref(o);
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "session", "sess-i", "--json");
  o = nd_line(r.out, 0);
  assert_string_equal(js(o, "session_id"), "sess-idle");
  json_decref(o);
  cli_result_free(&r);

  /* Ambiguous: exit 1, says so, names the candidates' common prefix. */
  static const char *const ambiguous[] = {"sess-alpha", "sess-", "s"};
  for (size_t i = 0; i < 3; i++) {
    RUN(&r, "proxy", "session", ambiguous[i], "--json");
    if (r.exit_code != 1 || !strstr(r.err, "ambiguous") || !strstr(r.err, ambiguous[i]))
      fail_msg("prefix %s: exit %d, stderr:\n%s", ambiguous[i], r.exit_code, r.err);
    assert_string_equal(r.out, "");
    cli_result_free(&r);
  }
  /* Unknown, and prefix characters that would be patterns elsewhere. */
  static const char *const unknown[] = {"nope", "sess-alpha-3", "sess%", "sess_alpha-1",
                                        "sess-alpha-1x", "SESS-ALPHA-1"};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    RUN(&r, "proxy", "session", unknown[i]);
    if (r.exit_code != 1 || !strstr(r.err, unknown[i]))
      fail_msg("id %s: exit %d, stderr:\n%s", unknown[i], r.exit_code, r.err);
    assert_int_equal(nd_count(r.err), 1); /* one clear line */
    assert_null(strstr(r.err, "usage"));
    assert_string_equal(r.out, "");
    cli_result_free(&r);
  }
}

/* An id that is a prefix of another id names itself, not an ambiguity; a
 * longer prefix picks the longer id. Requests of another session sharing
 * the prefix are not mixed in. */
static void test_exact_before_prefix(void **state) {
  (void)state;
  char *path = tu_path(fx_dir, "prefix.db");
  int64_t now = mcpr_now_ms();
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  fx_session(s, "abc", "api", now - 60000, "cursor", "1");
  fx_session(s, "abcd", "api", now - 60000, "windsurf", "2");
  fx_request(s, now - 50000, "api", "abc", "tools/call", "one", 11, MCPR_REQUEST_OK, NULL, 1, 2);
  fx_request(s, now - 40000, "api", "abcd", "tools/call", "two", 22, MCPR_REQUEST_OK, NULL, 1, 2);
  fx_request(s, now - 30000, "api", "abcd", "tools/call", "three", 33, MCPR_REQUEST_OK, NULL, 1,
             2);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  cli_result r;
  RUN_ON(&r, path, "proxy", "session", "abc", "--json");
  assert_int_equal(r.exit_code, 0);
  json_t *o = nd_line(r.out, 0);
  assert_string_equal(js(o, "session_id"), "abc");
  json_t *reqs = json_object_get(o, "requests");
  assert_int_equal(json_array_size(reqs), 1);
  assert_string_equal(js(json_array_get(reqs, 0), "tool"), "one");
  json_decref(o);
  cli_result_free(&r);
  RUN_ON(&r, path, "proxy", "session", "abcd", "--json");
  assert_int_equal(r.exit_code, 0);
  o = nd_line(r.out, 0);
  assert_string_equal(js(o, "client_platform"), "windsurf");
  reqs = json_object_get(o, "requests");
  assert_int_equal(json_array_size(reqs), 2);
  assert_string_equal(js(json_array_get(reqs, 0), "tool"), "two");
  assert_string_equal(js(json_array_get(reqs, 1), "tool"), "three");
  json_decref(o);
  cli_result_free(&r);
  RUN_ON(&r, path, "proxy", "session", "ab");
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "ambiguous"));
  cli_result_free(&r);
  free(path);
}

static void test_pretty(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "proxy", "session", "sess-alpha-2");
  assert_non_null(strstr(r.out, "session   sess-alpha-2\n"));
  assert_non_null(strstr(r.out, "proxy     api\n"));
  assert_non_null(strstr(r.out, "client    cursor 0.9 (cursor)\n"));
  assert_non_null(strstr(r.out, "calls     2 (0 errors)\n"));
  static const char *const right[] = {"LATENCY", NULL};
  static const char *const left[] = {"PROXY", "METHOD", "TARGET", "STATUS", "SESSION", NULL};
  assert_int_equal(assert_table(r.out, "TIME", right, left), 2);
  const char *rr = strstr(r.out, "resources/read"), *pg = strstr(r.out, "prompts/get");
  assert_true(rr && pg && rr < pg); /* oldest first */
  assert_non_null(strstr(r.out, "file:///a.md"));
  assert_non_null(strstr(r.out, "500\xc2\xb5s"));
  assert_non_null(strstr(r.out, "2.00s"));
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "session", "sess-beta");
  assert_non_null(strstr(r.out, "No requests stored for this session."));
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "session", "sess-alpha-1");
  assert_non_null(strstr(r.out, "(active)"));
  assert_non_null(strstr(r.out, "calls     101 (10 errors)"));
  assert_int_equal(cli_count_substr(r.out, "search"), 101);
  cli_result_free(&r);
}

/* A request stored with a timestamp hours before its session's start (the
 * proxy host's clock stepped back) is still one of the session's requests:
 * the detail lists as many requests as the session's call count, whatever
 * their timestamps, and the usual ones are still found the fast way. */
static void test_request_outside_lifetime(void **state) {
  (void)state;
  char *dir = tu_tmpdir(), *db = tu_path(dir, "store.db");
  mcpr_store *s = sf_open(db, 0, 0);
  int64_t now = mcpr_now_ms(), start = now - 600000;
  sf_record(s, sf_session("sess-stepped", start, "claude"));
  sf_record(s, sf_session("sess-steady", start, "cursor"));
  static const int64_t offsets_ms[] = {-3 * 3600000LL, 1000, 2000};
  char id[MCPR_UUID_STRLEN + 1];
  for (size_t i = 0; i < 3; i++) {
    mcpr_uuid_v7(start + offsets_ms[i], id);
    sf_record(s, sf_request(id, start + offsets_ms[i], "sess-stepped"));
    mcpr_uuid_v7(start + 1000 + (int64_t)i, id);
    sf_record(s, sf_request(id, start + 1000 + (int64_t)i, "sess-steady"));
  }
  sf_record(s, sf_session_closed("sess-stepped", start + 3000));
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  cli_result r;
  RUN_ON(&r, db, "proxy", "session", "sess-stepped", "--json");
  assert_int_equal(r.exit_code, 0);
  json_t *o = nd_line(r.out, 0);
  assert_int_equal(ji(o, "total_calls"), 3);
  json_t *reqs = json_object_get(o, "requests");
  assert_int_equal(json_array_size(reqs), 3);
  assert_int_equal(ji(json_array_get(reqs, 0), "ts"), start - 3 * 3600000LL); /* oldest first */
  assert_int_equal(ji(json_array_get(reqs, 2), "ts"), start + 2000);
  json_decref(o);
  cli_result_free(&r);
  RUN_ON(&r, db, "proxy", "session", "sess-stepped");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "calls     3 (0 errors)\n"));
  assert_int_equal(cli_count_substr(r.out, "search"), 3);
  cli_result_free(&r);
  RUN_ON(&r, db, "proxy", "session", "sess-steady", "--json");
  o = nd_line(r.out, 0);
  assert_int_equal(json_array_size(json_object_get(o, "requests")), 3);
  json_decref(o);
  cli_result_free(&r);
  free(db);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_detail),
      cmocka_unit_test(test_prefix),
      cmocka_unit_test(test_exact_before_prefix),
      cmocka_unit_test(test_pretty),
      cmocka_unit_test(test_request_outside_lifetime),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

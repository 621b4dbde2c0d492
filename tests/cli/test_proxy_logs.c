/* `mcpr proxy logs` and `mcpr proxy slow`, end to end, including follow
 * mode against rows written by another process. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "fx_store.h"
#include "testutil.h"

#define LOG_KEYS                                                                   \
  "request_id,ts,method,tool,resource_uri,prompt_name,latency_us,status,error_code," \
  "error_msg,session_id,bytes_in,bytes_out"

static void test_logs_json(void **state) {
  (void)state;
  cli_result r;
  RUN(&r, "proxy", "logs", "--json", "--tail", "1000");
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(nd_count(r.out), 126);
  json_t *o = nd_line(r.out, 0); /* newest: prompts/get */
  assert_keys(o, LOG_KEYS);
  assert_string_equal(json_string_value(json_object_get(o, "method")), "prompts/get");
  assert_string_equal(json_string_value(json_object_get(o, "prompt_name")), "review");
  assert_true(json_is_null(json_object_get(o, "tool")));
  assert_true(json_is_null(json_object_get(o, "bytes_in")));
  assert_true(json_is_null(json_object_get(o, "error_code")));
  assert_int_equal(json_integer_value(json_object_get(o, "latency_us")), 2000000);
  assert_string_equal(json_string_value(json_object_get(o, "session_id")), "sess-alpha-2");
  json_decref(o);
  cli_result_free(&r);

  RUN(&r, "proxy", "logs", "api", "--tool", "search", "--status", "error", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(nd_count(r.out), 10);
  o = nd_line(r.out, 0);
  assert_int_equal(json_integer_value(json_object_get(o, "latency_us")), 100);
  assert_string_equal(json_string_value(json_object_get(o, "error_code")), "-32602");
  assert_string_equal(json_string_value(json_object_get(o, "error_msg")), "Invalid params");
  assert_int_equal(json_integer_value(json_object_get(o, "bytes_in")), 100);
  assert_int_equal(json_integer_value(json_object_get(o, "bytes_out")), 200);
  json_decref(o);
  cli_result_free(&r);

  /* Each filter on its own. */
  static const struct {
    const char *args[6];
    size_t lines;
  } cases[] = {
      {{"web", NULL}, 20},
      {{"--method", "tools/list", NULL}, 3},
      {{"--status", "timeout", NULL}, 1},
      {{"--error-code", "-32602", NULL}, 10},
      {{"--session", "sess-alpha-2", NULL}, 2},
      {{"--session", "sess-alpha-1", NULL}, 101}, /* --session: all time */
      {{"--session", "sess-alpha-1", "--since", "1h", NULL}, 100},
      {{"--tool", "search", "--since", "4h", NULL}, 101},
      {{"--tail", "5", NULL}, 5},
      {{"--since", "1s", NULL}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    /* a later --tail wins */
    static const char *const base[] = {"proxy", "logs", "--json", "--tail", "1000", NULL};
    run_ok_on(&r, fx_path, base, cases[i].args);
    if (nd_count(r.out) != cases[i].lines)
      fail_msg("case %zu (%s %s): %zu lines, want %zu\n%s", i, cases[i].args[0],
               cases[i].args[1] ? cases[i].args[1] : "", nd_count(r.out), cases[i].lines,
               r.err);
    cli_result_free(&r);
  }
}

static void test_logs_pretty(void **state) {
  (void)state;
  cli_result r;
  RUN(&r, "proxy", "logs", "--tail", "3", "--tool", "search");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "TIME"));
  assert_non_null(strstr(r.out, "LATENCY"));
  assert_non_null(strstr(r.out, "100\xc2\xb5s"));
  assert_non_null(strstr(r.out, "-32602 Invalid params"));
  assert_null(strstr(r.out, "\033[")); /* not a TTY: no colour */
  assert_int_equal(nd_count(r.out), 4);
  cli_result_free(&r);
  RUN(&r, "proxy", "slow", "--threshold", "1ms");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "2.00s"));
  assert_non_null(strstr(r.out, "3.0ms"));
  cli_result_free(&r);
}

static void test_slow(void **state) {
  (void)state;
  cli_result r;
  RUN(&r, "proxy", "slow", "--json");
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(nd_count(r.out), 1); /* default 500ms, 1h: prompts/get */
  json_t *o = nd_line(r.out, 0);
  assert_keys(o, LOG_KEYS);
  assert_int_equal(json_integer_value(json_object_get(o, "latency_us")), 2000000);
  json_decref(o);
  cli_result_free(&r);
  RUN(&r, "proxy", "slow", "--threshold", "50us", "--json", "--limit", "3");
  assert_int_equal(nd_count(r.out), 3);
  o = nd_line(r.out, 2);
  assert_int_equal(json_integer_value(json_object_get(o, "latency_us")), 2000);
  json_decref(o);
  cli_result_free(&r);
  RUN(&r, "proxy", "slow", "--threshold", "50us", "--tool", "search", "--json", "--limit", "100");
  assert_int_equal(nd_count(r.out), 51);
  cli_result_free(&r);
  RUN(&r, "proxy", "slow", "web", "--threshold", "10\xce\xbcs", "--json");
  assert_int_equal(nd_count(r.out), 11);
  cli_result_free(&r);
  RUN(&r, "proxy", "slow", "--since", "4h", "--tool", "search", "--json");
  assert_int_equal(nd_count(r.out), 1);
  cli_result_free(&r);
}

static void test_usage_errors(void **state) {
  (void)state;
  static const struct {
    const char *args[6];
    const char *needle;
  } cases[] = {
      {{"proxy", "logs", "--since", "5x", NULL}, "--since"},
      {{"proxy", "logs", "--since", "-1h", NULL}, "--since"},
      {{"proxy", "logs", "--tail", "0", NULL}, "--tail"},
      {{"proxy", "logs", "--tail", "-3", NULL}, "--tail"},
      {{"proxy", "logs", "--tail", "99999999999999999999", NULL}, "--tail"},
      {{"proxy", "logs", "--status", "bad", NULL}, "--status"},
      {{"proxy", "logs", "--bogus", NULL}, "--bogus"},
      {{"proxy", "logs", "a", "b", NULL}, "'b'"},
      {{"proxy", "slow", "--threshold", "500", NULL}, "--threshold"},
      {{"proxy", "slow", "--limit", "abc", NULL}, "--limit"},
      {{"proxy", "sessions", "--since", "1y", NULL}, "--since"},
      {{"proxy", "clients", "--since", "0d", NULL}, "--since"},
      {{"proxy", "schema", "--limit", "5", NULL}, "--changes"},
      {{"proxy", "session", NULL}, "SESSION_ID"},
      {{"proxy", "nope", NULL}, "nope"},
      {{"store", "vacuum", NULL}, "--before"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_result r;
    run_on(&r, fx_path, cases[i].args);
    if (r.exit_code != 2 || !strstr(r.err, cases[i].needle))
      fail_msg("case %zu: exit %d, stderr:\n%s", i, r.exit_code, r.err);
    assert_string_equal(r.out, "");
    cli_result_free(&r);
  }
  cli_result r;
  RUN(&r, "proxy", "logs", "--since", "5x");
  assert_non_null(strstr(r.err, "s, m, h, d, w"));
  assert_non_null(strstr(r.err, "usage"));
  cli_result_free(&r);
}

static void test_help(void **state) {
  (void)state;
  static const char *const cmds[][2] = {{"proxy", "logs"},    {"proxy", "slow"},
                                        {"proxy", "sessions"}, {"proxy", "session"},
                                        {"proxy", "clients"}, {"proxy", "status"},
                                        {"proxy", "schema"},  {"store", "stats"},
                                        {"store", "vacuum"}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    cli_result r;
    cli_runv(&r, cmds[i][0], cmds[i][1], "--help", NULL);
    assert_int_equal(r.exit_code, 0);
    char want[64];
    snprintf(want, sizeof want, "mcpr %s %s", cmds[i][0], cmds[i][1]);
    assert_non_null(strstr(r.out, want));
    assert_non_null(strstr(r.out, "examples:"));
    cli_result_free(&r);
  }
  cli_result r;
  cli_runv(&r, "proxy", "--help", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "proxy logs"));
  assert_non_null(strstr(r.out, "proxy schema"));
  cli_result_free(&r);
}

/* Follow: rows another process writes appear, oldest first, once; SIGINT
 * ends it with exit 0. */
static void test_follow(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "f.db");
  fx_build(path);
  const char *args[] = {"--db", path, "proxy", "logs", "-f", "--json", "--tool", "live",
                        "--tail", "5", NULL};
  cli_spec spec = {.args = args};
  cli_proc p;
  cli_start(&spec, &p);
  /* The follower is up once it has printed its (empty) first page. */
  usleep(400000);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  int64_t now = mcpr_now_ms();
  for (int i = 1; i <= 3; i++)
    fx_request(s, now + i, "api", NULL, "tools/call", "live", 1000 * i, MCPR_REQUEST_OK, NULL,
               -1, -1);
  fx_request(s, now + 4, "api", NULL, "tools/call", "other", 5, MCPR_REQUEST_OK, NULL, -1, -1);
  assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_OK);
  bool seen = cli_wait_output(&p, "\"latency_us\":3000", 10000);
  /* A second batch after the first was printed. */
  fx_request(s, now + 10, "api", NULL, "tools/call", "live", 4000, MCPR_REQUEST_OK, NULL, -1, -1);
  assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_OK);
  bool seen2 = cli_wait_output(&p, "\"latency_us\":4000", 10000);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  cli_result r;
  cli_stop(&p, SIGINT, 5000, &r);
  if (!seen || !seen2)
    fail_msg("follow did not print the new rows; stdout:\n%s\nstderr:\n%s", r.out, r.err);
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(nd_count(r.out), 4);
  for (size_t i = 0; i < 4; i++) {
    json_t *o = nd_line(r.out, i);
    assert_int_equal(json_integer_value(json_object_get(o, "latency_us")), 1000 * (i + 1));
    assert_string_equal(json_string_value(json_object_get(o, "tool")), "live");
    json_decref(o);
  }
  cli_result_free(&r);

  /* slow -f: only new slow rows. */
  const char *sargs[] = {"--db", path, "proxy", "slow", "--follow", "--json", "--threshold",
                         "1s", NULL};
  spec.args = sargs;
  cli_start(&spec, &p);
  usleep(400000);
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  fx_request(s, now + 20, "api", NULL, "tools/call", "live", 5, MCPR_REQUEST_OK, NULL, -1, -1);
  fx_request(s, now + 21, "api", NULL, "tools/call", "live", 3000000, MCPR_REQUEST_OK, NULL,
             -1, -1);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  seen = cli_wait_output(&p, "\"latency_us\":3000000", 10000);
  cli_stop(&p, SIGINT, 5000, &r);
  assert_true(seen);
  assert_int_equal(r.exit_code, 0);
  /* The first page (the fixture's 2 s prompts/get) then the new row. */
  assert_int_equal(cli_count_substr(r.out, "\"latency_us\":3000000"), 1);
  assert_int_equal(cli_count_substr(r.out, "\"latency_us\":5,"), 0);
  cli_result_free(&r);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logs_json),   cmocka_unit_test(test_logs_pretty),
      cmocka_unit_test(test_slow),        cmocka_unit_test(test_usage_errors),
      cmocka_unit_test(test_help),        cmocka_unit_test(test_follow),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

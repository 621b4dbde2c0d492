/* `mcpr proxy status`, end to end: the one JSON object of SPEC §7 with its
 * stats rows, exact nearest-rank p95 on known data (where interpolation
 * would differ), `<method>` labels, the proxy and window filters, and the
 * pretty table's alignment and latency units. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "fx_store.h"
#include "testutil.h"

#define STATUS_KEYS "proxy,since,total_requests,error_pct,active_sessions,total_sessions,proxies,tools"
#define STATS_KEYS                                                                       \
  "label,calls,avg_us,min_us,max_us,p95_us,error_pct,total_bytes_in,total_bytes_out"

/* ---------- tests ---------- */

static void assert_pct(json_t *o, double want) {
  json_t *v = json_object_get(o, "error_pct");
  if (!json_is_number(v) || fabs(json_number_value(v) - want) > 0.0001)
    fail_msg("error_pct %.4f, want %.4f", json_number_value(v), want);
}

/* Parse the single object `proxy status --json` prints. */
static json_t *status_json(const cli_result *r) {
  if (r->exit_code != 0)
    fail_msg("exit %d\n%s", r->exit_code, r->err);
  assert_int_equal(nd_count(r->out), 1);
  json_t *o = nd_line(r->out, 0);
  assert_keys(o, STATUS_KEYS);
  json_t *tools = json_object_get(o, "tools");
  assert_true(json_is_array(tools));
  for (size_t i = 0; i < json_array_size(tools); i++)
    assert_keys(json_array_get(tools, i), STATS_KEYS);
  return o;
}

static json_t *tool(json_t *status, const char *label) {
  json_t *tools = json_object_get(status, "tools");
  for (size_t i = 0; i < json_array_size(tools); i++)
    if (strcmp(js(json_array_get(tools, i), "label"), label) == 0)
      return json_array_get(tools, i);
  fail_msg("no stats row %s", label);
  return NULL;
}

static void assert_stats(json_t *t, int64_t calls, int64_t avg, int64_t min, int64_t max,
                         int64_t p95) {
  assert_int_equal(ji(t, "calls"), calls);
  assert_int_equal(ji(t, "avg_us"), avg);
  assert_int_equal(ji(t, "min_us"), min);
  assert_int_equal(ji(t, "max_us"), max);
  assert_int_equal(ji(t, "p95_us"), p95);
}

static void test_json_all(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "proxy", "status", "--json");
  json_t *o = status_json(&r);
  assert_null_field(o, "proxy");
  assert_string_equal(js(o, "since"), "1h");
  assert_int_equal(ji(o, "total_requests"), 126);
  assert_pct(o, 8.73); /* 11 of 126 not ok (10 errors, 1 timeout) */
  assert_int_equal(ji(o, "active_sessions"), 1);
  assert_int_equal(ji(o, "total_sessions"), 2);
  json_t *tools = json_object_get(o, "tools");
  assert_int_equal(json_array_size(tools), 6);
  /* by calls desc */
  assert_string_equal(js(json_array_get(tools, 0), "label"), "search");
  assert_string_equal(js(json_array_get(tools, 1), "label"), "fetch");
  assert_string_equal(js(json_array_get(tools, 2), "label"), "<tools/list>");
  json_t *t = tool(o, "search");
  assert_stats(t, 100, 51, 1, 100, 95); /* 1..100 µs: p95 = 95th value */
  assert_pct(t, 10.0);
  assert_int_equal(ji(t, "total_bytes_in"), 5050);
  assert_int_equal(ji(t, "total_bytes_out"), 10100);
  t = tool(o, "fetch");
  assert_stats(t, 20, 11, 1, 20, 19); /* 10.5 rounds up; 1..20: p95 = 19 */
  assert_pct(t, 5.0);                 /* the timeout counts */
  t = tool(o, "<tools/list>");
  assert_stats(t, 3, 2000, 1000, 3000, 3000);
  assert_pct(t, 0.0);
  assert_int_equal(ji(t, "total_bytes_in"), 30);
  assert_int_equal(ji(t, "total_bytes_out"), 300);
  assert_stats(tool(o, "single"), 1, 7, 7, 7, 7);
  assert_stats(tool(o, "<resources/read>"), 1, 500, 500, 500, 500);
  assert_stats(tool(o, "<prompts/get>"), 1, 2000000, 2000000, 2000000, 2000000);
  json_decref(o);
  cli_result_free(&r);
}

static void test_json_filters(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "proxy", "status", "api", "--json");
  json_t *o = status_json(&r);
  assert_string_equal(js(o, "proxy"), "api");
  assert_int_equal(ji(o, "total_requests"), 106);
  assert_pct(o, 9.43); /* 10/106 */
  assert_int_equal(ji(o, "active_sessions"), 1);
  assert_int_equal(ji(o, "total_sessions"), 2);
  assert_int_equal(json_array_size(json_object_get(o, "tools")), 5);
  json_decref(o);
  cli_result_free(&r);

  /* 4 h: the 900 ms call joins search: 101 values, p95 at index 95 */
  RUN_OK(&r, "proxy", "status", "api", "--since", "4h", "--json");
  o = status_json(&r);
  assert_string_equal(js(o, "since"), "4h");
  assert_int_equal(ji(o, "total_requests"), 107);
  assert_int_equal(ji(o, "total_sessions"), 3);
  json_t *t = tool(o, "search");
  assert_stats(t, 101, 8961, 1, 900000, 96);
  assert_int_equal(ji(t, "total_bytes_in"), 5051);
  json_decref(o);
  cli_result_free(&r);

  RUN_OK(&r, "proxy", "status", "web", "--json");
  o = status_json(&r);
  assert_int_equal(ji(o, "total_requests"), 20);
  assert_pct(o, 5.0);
  assert_int_equal(ji(o, "active_sessions"), 0);
  assert_int_equal(ji(o, "total_sessions"), 0); /* sess-beta-1 started 3 h ago */
  assert_int_equal(json_array_size(json_object_get(o, "tools")), 1);
  json_decref(o);
  cli_result_free(&r);

  RUN_OK(&r, "proxy", "status", "nobody", "--json");
  o = status_json(&r);
  assert_int_equal(ji(o, "total_requests"), 0);
  assert_pct(o, 0.0);
  assert_int_equal(json_array_size(json_object_get(o, "tools")), 0);
  json_decref(o);
  cli_result_free(&r);

  RUN_OK(&r, "proxy", "status", "--since", "1s", "--json");
  o = status_json(&r);
  assert_int_equal(ji(o, "total_requests"), 0);
  json_decref(o);
  cli_result_free(&r);
}

/* Known data where nearest rank and interpolation disagree, written out of
 * latency order; and one call each in µs, ms and s for the units. */
static char *build_p95_store(const char *name) {
  char *path = tu_path(fx_dir, name);
  int64_t now = mcpr_now_ms(), ts = now - 60000;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  fx_request(s, ts++, "p", NULL, "tools/call", "pair", 1000, MCPR_REQUEST_OK, NULL, -1, -1);
  fx_request(s, ts++, "p", NULL, "tools/call", "pair", 10, MCPR_REQUEST_OK, NULL, -1, -1);
  for (int i = 0; i < 21; i++) /* 1..21 scrambled: gcd(8, 21) = 1 */
    fx_request(s, ts++, "p", NULL, "tools/call", "t21", 1 + (i * 8) % 21, MCPR_REQUEST_OK, NULL,
               -1, -1);
  for (int i = 0; i < 40; i++)
    fx_request(s, ts++, "p", NULL, "tools/call", "t40", 100 * (1 + (i * 7) % 40),
               i < 4 ? MCPR_REQUEST_ERROR : MCPR_REQUEST_OK, i < 4 ? "-1" : NULL, 1000, 1);
  fx_request(s, ts++, "p", NULL, "tools/call", "fmt_us", 850, MCPR_REQUEST_OK, NULL, -1, -1);
  fx_request(s, ts++, "p", NULL, "tools/call", "fmt_ms", 12300, MCPR_REQUEST_OK, NULL, -1, -1);
  fx_request(s, ts++, "p", NULL, "tools/call", "fmt_s", 4200000, MCPR_REQUEST_OK, NULL, -1, -1);
  fx_request(s, ts++, "p", NULL, "initialize", NULL, 3100, MCPR_REQUEST_OK, NULL, -1, -1);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  return path;
}

static void test_p95_nearest_rank(void **state) {
  (void)state;
  char *path = build_p95_store("p95.db");
  cli_result r;
  RUN_ON(&r, path, "proxy", "status", "--json");
  json_t *o = status_json(&r);
  assert_int_equal(ji(o, "total_requests"), 2 + 21 + 40 + 4);
  assert_stats(tool(o, "pair"), 2, 505, 10, 1000, 1000); /* ceil(1.9)−1 = 1 */
  assert_stats(tool(o, "t21"), 21, 11, 1, 21, 20);       /* ceil(19.95)−1 = 19 */
  json_t *t = tool(o, "t40");
  assert_stats(t, 40, 2050, 100, 4000, 3800);            /* ceil(38)−1 = 37 */
  assert_pct(t, 10.0);
  assert_int_equal(ji(t, "total_bytes_in"), 40000);
  assert_int_equal(ji(t, "total_bytes_out"), 40);
  assert_stats(tool(o, "<initialize>"), 1, 3100, 3100, 3100, 3100);
  assert_string_equal(js(json_array_get(json_object_get(o, "tools"), 0), "label"), "t40");
  json_decref(o);
  cli_result_free(&r);
  free(path);
}

/* The line of the pretty table whose first cell is label. */
static const char *row_of(const char *out, const char *label) {
  size_t n = strlen(label);
  for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, label, n) == 0 && p[n] == ' ')
      return p;
  fail_msg("no row %s in:\n%s", label, out);
  return NULL;
}

static size_t count_in_line(const char *line, const char *needle) {
  const char *end = strchr(line, '\n');
  size_t n = 0, len = strlen(needle);
  for (const char *p = strstr(line, needle); p && (!end || p < end); p = strstr(p + len, needle))
    n++;
  return n;
}

static void test_pretty(void **state) {
  (void)state;
  char *path = build_p95_store("pretty.db");
  cli_result r;
  RUN_ON(&r, path, "proxy", "status");
  assert_int_equal(r.exit_code, 0);
  assert_true(strncmp(r.out, "all proxies \xe2\x80\x94 last 1h\n", 19) == 0);
  assert_non_null(strstr(r.out, "requests 67   errors 6.0%   sessions 0 active, 0 started"));
  static const char *const right[] = {"CALLS", "AVG", "P95", "MIN", "MAX", "ERR%", "IN", "OUT",
                                      NULL};
  assert_int_equal(assert_table(r.out, "TOOL", right, NULL), 7);
  assert_int_equal(count_in_line(row_of(r.out, "fmt_us"), "850\xc2\xb5s"), 4);
  assert_int_equal(count_in_line(row_of(r.out, "fmt_ms"), "12.3ms"), 4);
  assert_int_equal(count_in_line(row_of(r.out, "fmt_s"), "4.20s"), 4);
  const char *t40 = row_of(r.out, "t40");
  assert_int_equal(count_in_line(t40, "3.8ms"), 1); /* p95 */
  assert_int_equal(count_in_line(t40, "100\xc2\xb5s"), 1); /* min */
  assert_int_equal(count_in_line(t40, "10.0%"), 1);
  assert_int_equal(count_in_line(t40, "39.1 KB"), 1); /* 40000 bytes in */
  row_of(r.out, "<initialize>");
  assert_true(row_of(r.out, "t40") < row_of(r.out, "t21")); /* by calls desc */
  assert_null(strstr(r.out, "\033["));
  cli_result_free(&r);

  RUN(&r, "proxy", "status", "api", "--since", "4h");
  assert_int_equal(r.exit_code, 0);
  assert_true(strncmp(r.out, "api \xe2\x80\x94 last 4h\n", 14) == 0);
  assert_non_null(strstr(r.out, "sessions 1 active, 3 started"));
  assert_int_equal(count_in_line(row_of(r.out, "search"), "900.0ms"), 1);
  cli_result_free(&r);
  RUN(&r, "proxy", "status", "nobody");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "No requests in this window."));
  cli_result_free(&r);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_all),
      cmocka_unit_test(test_json_filters),
      cmocka_unit_test(test_p95_nearest_rank),
      cmocka_unit_test(test_pretty),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

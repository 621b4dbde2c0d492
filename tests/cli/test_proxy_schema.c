/* `mcpr proxy schema`, end to end: snapshots and schema status
 * (complete/partial/unknown), `--changes` (SPEC §7 fields, newest first,
 * the diff kinds the writer records, --limit, proxy and method filters)
 * and `--unused` (SPEC §7 fields, least used first, honouring the proxy
 * filter, which the original ignores). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "fx_store.h"
#include "testutil.h"

#define CHANGE_KEYS "upstream_url,method,change_type,item_name,old_hash,new_hash,detected_at"
#define UNUSED_KEYS "tool_name,description,calls,errors,last_called_at"

/* ---------- tests ---------- */

/* Field key of every NDJSON line, comma-joined (null as "-"). */
static void field_of(const char *out, const char *key, char *buf, size_t n) {
  buf[0] = '\0';
  size_t len = 0;
  for (size_t i = 0; i < nd_count(out); i++) {
    json_t *o = nd_line(out, i);
    json_t *v = json_object_get(o, key);
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "",
                            json_is_string(v) ? json_string_value(v) : "-");
    json_decref(o);
  }
}

static void test_snapshots(void **state) {
  (void)state;
  int64_t t0 = fx_now - 120000;
  cli_result r;
  RUN_OK(&r, "proxy", "schema", "--json");
  char buf[512];
  field_of(r.out, "method", buf, sizeof buf);
  assert_string_equal(buf, "initialize,tools/list,tools/list"); /* by upstream, method */
  field_of(r.out, "upstream_url", buf, sizeof buf);
  assert_string_equal(buf, "http://up-api,http://up-api,http://up-web");
  json_t *o = nd_line(r.out, 1);
  /* The original's keys in its order (SPEC §7), then proxy. */
  assert_keys(o, "upstream_url,method,payload,captured_at,schema_hash,proxy");
  assert_string_equal(js(o, "proxy"), "api");
  assert_string_equal(js(o, "schema_hash"), "hash-api-tools");
  assert_int_equal(ji(o, "captured_at"), t0 + 11);
  /* The payload is a string holding the captured JSON text, as the
   * original prints it: `jq -r .payload | jq .tools` works. */
  json_t *tools_payload = json_loads(js(o, "payload"), 0, NULL);
  assert_non_null(tools_payload);
  assert_int_equal(json_array_size(json_object_get(tools_payload, "tools")), 3);
  json_decref(tools_payload);
  json_decref(o);
  o = nd_line(r.out, 0);
  assert_string_equal(js(o, "payload"), FX_INIT_PAYLOAD);
  json_decref(o);
  cli_result_free(&r);

  static const struct {
    const char *args[5];
    const char *methods;
  } cases[] = {
      {{"--method", "tools/list", NULL}, "tools/list,tools/list"},
      {{"api", NULL}, "initialize,tools/list"},
      {{"web", NULL}, "tools/list"},
      {{"api", "--method", "initialize", NULL}, "initialize"},
      {{"web", "--method", "initialize", NULL}, ""},
      {{"nobody", NULL}, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static const char *const base[] = {"proxy", "schema", "--json", NULL};
    run_ok_on(&r, fx_path, base, cases[i].args);
    field_of(r.out, "method", buf, sizeof buf);
    if (strcmp(buf, cases[i].methods) != 0)
      fail_msg("case %zu: got [%s], want [%s]", i, buf, cases[i].methods);
    cli_result_free(&r);
  }
}

static void test_schema_status_pretty(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "proxy", "schema");
  assert_non_null(strstr(r.out, "http://up-api (api): complete\n"));
  assert_non_null(strstr(r.out, "  server     demo 1.2\n"));
  assert_non_null(strstr(r.out, "  protocol   2025-06-18\n"));
  assert_non_null(strstr(r.out, "  capability prompts, tools\n"));
  /* tools/list without initialize: partial, and no server facts */
  const char *web = strstr(r.out, "http://up-web (web): partial\n");
  assert_non_null(web);
  const char *table = strstr(r.out, "\nUPSTREAM");
  assert_non_null(table);
  assert_null(strstr(web, "  server "));
  static const char *const left[] = {"METHOD", "CAPTURED", "HASH", NULL};
  assert_int_equal(assert_table(table + 1, "UPSTREAM", NULL, left), 3);
  assert_non_null(strstr(table, "hash-api-too\n")); /* hash cut to 12 */
  cli_result_free(&r);

  RUN_OK(&r, "proxy", "schema", "web");
  assert_non_null(strstr(r.out, "http://up-web (web): partial\n"));
  assert_null(strstr(r.out, "up-api"));
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "schema", "nobody");
  assert_non_null(strstr(r.out, "unknown"));
  assert_null(strstr(r.out, "UPSTREAM"));
  cli_result_free(&r);
}

/* The pretty form shows what the original's does: server, version,
 * protocol, capabilities, then each captured list with its items and
 * their descriptions, under the upstream that served it. */
static void test_schema_lists_pretty(void **state) {
  (void)state;
  cli_result r;
  RUN_OK(&r, "proxy", "schema");
  const char *api = strstr(r.out, "http://up-api (api): complete\n");
  const char *web = strstr(r.out, "http://up-web (web): partial\n");
  assert_non_null(api);
  assert_non_null(web);
  const char *api_tools = strstr(api, "  ── tools/list ──  (captured ");
  assert_true(api_tools && api_tools < web);
  assert_non_null(strstr(api_tools, "    Tools (3):\n"
                                    "      search  —  Search docs\n"
                                    "      fetch\n"
                                    "      unused_tool  —  Never called\n"));
  assert_null(strstr(r.out, "── initialize ──")); /* shown as the server's facts */
  const char *web_tools = strstr(web, "  ── tools/list ──  (captured ");
  assert_non_null(web_tools);
  assert_non_null(strstr(web_tools, "    Tools (2):\n      fetch\n      web_only\n"));
  cli_result_free(&r);

  RUN_OK(&r, "proxy", "schema", "web");
  assert_non_null(strstr(r.out, "      web_only\n"));
  assert_null(strstr(r.out, "search"));
  cli_result_free(&r);
}

static void test_changes_fixture(void **state) {
  (void)state;
  int64_t t0 = fx_now - 120000;
  cli_result r;
  RUN_OK(&r, "proxy", "schema", "--changes", "--json");
  assert_int_equal(nd_count(r.out), 3);
  json_t *o = nd_line(r.out, 0); /* newest first */
  assert_keys(o, CHANGE_KEYS);
  assert_string_equal(js(o, "upstream_url"), "http://up-web");
  assert_string_equal(js(o, "method"), "tools/list");
  assert_string_equal(js(o, "change_type"), "initial");
  assert_null_field(o, "item_name");
  assert_null_field(o, "old_hash");
  assert_string_equal(js(o, "new_hash"), "hash-web-tools");
  assert_int_equal(ji(o, "detected_at"), t0 + 12);
  json_decref(o);
  o = nd_line(r.out, 2);
  assert_keys(o, CHANGE_KEYS);
  assert_string_equal(js(o, "method"), "initialize");
  assert_int_equal(ji(o, "detected_at"), t0 + 10);
  json_decref(o);
  cli_result_free(&r);

  static const struct {
    const char *args[6];
    size_t lines;
  } cases[] = {
      {{"--limit", "1", NULL}, 1},
      {{"--limit", "2", NULL}, 2},
      {{"api", NULL}, 2},
      {{"web", NULL}, 1},
      {{"nobody", NULL}, 0},
      {{"--method", "tools/list", NULL}, 2},
      {{"api", "--method", "tools/list", NULL}, 1},
      {{"--method", "prompts/list", NULL}, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static const char *const base[] = {"proxy", "schema", "--changes", "--json", NULL};
    run_ok_on(&r, fx_path, base, cases[i].args);
    if (nd_count(r.out) != cases[i].lines)
      fail_msg("case %zu: %zu lines, want %zu\n%s", i, nd_count(r.out), cases[i].lines, r.out);
    cli_result_free(&r);
  }

  RUN_OK(&r, "proxy", "schema", "--changes");
  static const char *const left[] = {"UPSTREAM", "METHOD", "CHANGE", "ITEM", NULL};
  assert_int_equal(assert_table(r.out, "DETECTED", NULL, left), 3);
  assert_int_equal(cli_count_substr(r.out, " initial "), 3);
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "schema", "nobody", "--changes");
  assert_non_null(strstr(r.out, "No schema changes recorded."));
  cli_result_free(&r);
}

/* Item-level diffs recorded by the writer, read back through the CLI. */
static void test_changes_diffs(void **state) {
  (void)state;
  char *path = tu_path(fx_dir, "diff.db");
  int64_t ts = mcpr_now_ms() - 60000;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  fx_schema(s, ts, "api", "http://up", "tools/list",
            "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\",\"description\":\"x\"},{\"name\":\"c\"}]}",
            "h1");
  fx_schema(s, ts + 1000, "api", "http://up", "tools/list",
            "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\",\"description\":\"y\"},{\"name\":\"d\"}]}",
            "h2");
  fx_schema(s, ts + 2000, "api", "http://up", "initialize", "{\"serverInfo\":{\"name\":\"s\"}}",
            "i1");
  fx_schema(s, ts + 3000, "api", "http://up", "initialize",
            "{\"serverInfo\":{\"name\":\"s2\"}}", "i2");
  fx_schema(s, ts + 4000, "other", "http://up", "tools/list", "{\"tools\":[]}", "o1");
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  cli_result r;
  RUN_ON(&r, path, "proxy", "schema", "api", "--changes", "--json");
  assert_int_equal(r.exit_code, 0);
  char buf[512];
  field_of(r.out, "change_type", buf, sizeof buf);
  /* newest first; the three item changes of one snapshot share a time */
  assert_int_equal(nd_count(r.out), 6);
  assert_true(strncmp(buf, "updated,initial,", 16) == 0);
  const char *rest = buf + 16;
  assert_non_null(strstr(rest, "tool_added"));
  assert_non_null(strstr(rest, "tool_modified"));
  assert_non_null(strstr(rest, "tool_removed"));
  assert_true(strcmp(rest + strlen(rest) - strlen("initial"), "initial") == 0);
  json_t *o = nd_line(r.out, 0);
  assert_keys(o, CHANGE_KEYS);
  assert_string_equal(js(o, "method"), "initialize");
  assert_null_field(o, "item_name");
  assert_string_equal(js(o, "old_hash"), "i1");
  assert_string_equal(js(o, "new_hash"), "i2");
  assert_int_equal(ji(o, "detected_at"), ts + 3000);
  json_decref(o);
  for (size_t i = 2; i < 5; i++) {
    o = nd_line(r.out, i);
    const char *type = js(o, "change_type");
    const char *want = strcmp(type, "tool_added") == 0      ? "d"
                       : strcmp(type, "tool_modified") == 0 ? "b"
                                                            : "c";
    assert_string_equal(js(o, "item_name"), want);
    assert_string_equal(js(o, "old_hash"), "h1");
    assert_string_equal(js(o, "new_hash"), "h2");
    assert_int_equal(ji(o, "detected_at"), ts + 1000);
    json_decref(o);
  }
  cli_result_free(&r);
  /* The same upstream URL behind another proxy is another history. */
  RUN_ON(&r, path, "proxy", "schema", "other", "--changes", "--json");
  assert_int_equal(nd_count(r.out), 1);
  cli_result_free(&r);
  RUN_ON(&r, path, "proxy", "schema", "--changes", "--json", "--limit", "3");
  field_of(r.out, "change_type", buf, sizeof buf);
  assert_string_equal(buf, "initial,updated,initial"); /* other's, then api's */
  cli_result_free(&r);
  free(path);
}

static void test_unused(void **state) {
  (void)state;
  int64_t t0 = fx_now - 120000;
  cli_result r;
  char buf[512];
  /* All proxies, 7 d: the union of both tool lists. */
  RUN_OK(&r, "proxy", "schema", "--unused", "--json");
  assert_int_equal(nd_count(r.out), 4);
  field_of(r.out, "tool_name", buf, sizeof buf);
  assert_true(strcmp(buf, "unused_tool,web_only,fetch,search") == 0 ||
              strcmp(buf, "web_only,unused_tool,fetch,search") == 0);
  for (size_t i = 0; i < 4; i++) {
    json_t *o = nd_line(r.out, i);
    assert_keys(o, UNUSED_KEYS);
    if (i < 2) {
      assert_int_equal(ji(o, "calls"), 0);
      assert_int_equal(ji(o, "errors"), 0);
      assert_null_field(o, "last_called_at");
    }
    json_decref(o);
  }
  json_t *o = nd_line(r.out, 2);
  assert_int_equal(ji(o, "calls"), 20);
  assert_int_equal(ji(o, "errors"), 1);
  assert_null_field(o, "description");
  assert_int_equal(ji(o, "last_called_at"), t0 + 220);
  json_decref(o);
  o = nd_line(r.out, 3);
  assert_int_equal(ji(o, "calls"), 101);
  assert_int_equal(ji(o, "errors"), 10);
  assert_string_equal(js(o, "description"), "Search docs");
  assert_int_equal(ji(o, "last_called_at"), t0 + 100);
  json_decref(o);
  cli_result_free(&r);

  /* Proxy api: its own tool list and its own calls only. fetch is called
   * 20 times, but through web: unused here. web_only is not api's. */
  RUN_OK(&r, "proxy", "schema", "api", "--unused", "--json");
  field_of(r.out, "tool_name", buf, sizeof buf);
  assert_true(strcmp(buf, "fetch,unused_tool,search") == 0 ||
              strcmp(buf, "unused_tool,fetch,search") == 0);
  for (size_t i = 0; i < 3; i++) {
    o = nd_line(r.out, i);
    if (strcmp(js(o, "tool_name"), "fetch") == 0) {
      assert_int_equal(ji(o, "calls"), 0);
      assert_null_field(o, "last_called_at");
    }
    if (strcmp(js(o, "tool_name"), "unused_tool") == 0)
      assert_string_equal(js(o, "description"), "Never called");
    json_decref(o);
  }
  cli_result_free(&r);

  RUN_OK(&r, "proxy", "schema", "web", "--unused", "--json");
  field_of(r.out, "tool_name", buf, sizeof buf);
  assert_string_equal(buf, "web_only,fetch");
  o = nd_line(r.out, 1);
  assert_int_equal(ji(o, "calls"), 20);
  json_decref(o);
  cli_result_free(&r);

  /* The window: 1 h leaves out the 3-hour-old call. */
  RUN_OK(&r, "proxy", "schema", "api", "--unused", "--since", "1h", "--json");
  o = nd_line(r.out, 2);
  assert_string_equal(js(o, "tool_name"), "search");
  assert_int_equal(ji(o, "calls"), 100);
  json_decref(o);
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "schema", "api", "--unused", "--since", "1s", "--json");
  assert_int_equal(nd_count(r.out), 3);
  o = nd_line(r.out, 2);
  assert_int_equal(ji(o, "calls"), 0);
  json_decref(o);
  cli_result_free(&r);

  RUN_OK(&r, "proxy", "schema", "nobody", "--unused", "--json");
  assert_string_equal(r.out, "");
  cli_result_free(&r);
  RUN_OK(&r, "proxy", "schema", "nobody", "--unused");
  assert_non_null(strstr(r.out, "No tools/list captured for this proxy"));
  cli_result_free(&r);

  RUN_OK(&r, "proxy", "schema", "api", "--unused");
  assert_non_null(strstr(r.out, "least used first"));
  static const char *const right[] = {"CALLS", "ERRORS", NULL};
  static const char *const left[] = {"LAST CALLED", NULL};
  assert_int_equal(assert_table(r.out, "TOOL", right, left), 3);
  assert_int_equal(cli_count_substr(r.out, "never"), 2);
  assert_non_null(strstr(r.out, "Search docs"));
  assert_null(strstr(r.out, "web_only"));
  cli_result_free(&r);
}

static void test_flag_rules(void **state) {
  (void)state;
  static const char *const cases[][6] = {
      {"proxy", "schema", "--changes", "--unused", NULL},
      {"proxy", "schema", "--limit", "5", NULL},
      {"proxy", "schema", "--unused", "--limit", "5", NULL},
      {"proxy", "schema", "--since", "1d", NULL},
      {"proxy", "schema", "--changes", "--since", "1d", NULL},
      {"proxy", "schema", "a", "b", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_result r;
    run_on(&r, fx_path, cases[i]);
    if (r.exit_code != 2 || !strstr(r.err, "usage") || r.out_len)
      fail_msg("case %zu: exit %d\n%s", i, r.exit_code, r.err);
    cli_result_free(&r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_snapshots),       cmocka_unit_test(test_schema_status_pretty),
      cmocka_unit_test(test_schema_lists_pretty),
      cmocka_unit_test(test_changes_fixture), cmocka_unit_test(test_changes_diffs),
      cmocka_unit_test(test_unused),          cmocka_unit_test(test_flag_rules),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

/* `mcpr proxy session ID|PREFIX`, end to end: one JSON object with the
 * session's fields and its requests oldest first; exact id before prefix;
 * an ambiguous prefix or an unknown id is a clear error with exit 1; the
 * prefix is a prefix, not a LIKE pattern. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/query/query_fixture.h"
#include "cli.h"
#include "testutil.h"

#define SESSION_KEYS                                                                     \
  "session_id,client_name,client_version,client_platform,started_at,last_seen_at,"      \
  "ended_at,total_calls,total_errors,is_active"
#define LOG_KEYS                                                                         \
  "request_id,ts,method,tool,resource_uri,prompt_name,latency_us,status,error_code,"    \
  "error_msg,session_id,bytes_in,bytes_out"

static char *g_dir, *g_path;
static int64_t g_now;

static int setup(void **state) {
  (void)state;
  g_dir = tu_tmpdir();
  g_path = tu_path(g_dir, "store.db");
  g_now = fx_build(g_path);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(g_path);
  tu_rmdir(g_dir);
  return 0;
}

/* ---------- helpers (NDJSON lines, keys, aligned columns) ---------- */

static inline json_t *nd_line(const char *text, size_t i) {
  const char *p = text;
  for (size_t k = 0; k < i && *p; k++) {
    const char *nl = strchr(p, '\n');
    p = nl ? nl + 1 : p + strlen(p);
  }
  if (!*p)
    fail_msg("no line %zu in output:\n%s", i, text);
  const char *end = strchr(p, '\n');
  json_error_t e;
  json_t *o = json_loadb(p, end ? (size_t)(end - p) : strlen(p), 0, &e);
  if (!json_is_object(o))
    fail_msg("line %zu is not a JSON object (%s):\n%s", i, e.text, text);
  return o;
}

static inline size_t nd_count(const char *text) {
  size_t n = 0;
  for (const char *p = text; *p; p++)
    n += *p == '\n';
  return n;
}

static inline void assert_keys(json_t *o, const char *keys) {
  char buf[1024] = "";
  size_t len = 0;
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    (void)v;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len ? "," : "", k);
  }
  assert_string_equal(buf, keys);
}

static inline const char *js(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_string(v))
    fail_msg("%s is not a string", key);
  return json_string_value(v);
}

static inline int64_t ji(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_integer(v))
    fail_msg("%s is not an integer", key);
  return (int64_t)json_integer_value(v);
}

static inline void assert_null_field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!v || !json_is_null(v))
    fail_msg("%s should be present and null", key);
}

/* Line text with every UTF-8 character as one byte, so byte offsets are
 * display columns. New string. */
static inline char *flat_line(const char *p, size_t len) {
  char *s = malloc(len + 1);
  assert_non_null(s);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c & 0xC0) == 0x80)
      continue;
    s[n++] = c < 0x80 ? (char)c : '#';
  }
  s[n] = '\0';
  return s;
}

/*
 * The table whose header line starts with first_header: every row below it
 * (up to a blank line or the end) has its right-aligned columns ending
 * where their header ends and its left-aligned columns starting where
 * theirs start. Returns the number of rows.
 */
static inline size_t assert_table(const char *out, const char *first_header, const char *const *right,
                           const char *const *left) {
  const char *h = strstr(out, first_header);
  if (!h || (h != out && h[-1] != '\n'))
    fail_msg("no table with header %s in:\n%s", first_header, out);
  const char *hend = strchr(h, '\n');
  char *header = flat_line(h, hend ? (size_t)(hend - h) : strlen(h));
  size_t rows = 0;
  for (const char *p = hend ? hend + 1 : h + strlen(h); *p && *p != '\n';) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char *line = flat_line(p, len);
    size_t ll = strlen(line);
    for (const char *const *r = right; r && *r; r++) {
      const char *at = strstr(header, *r);
      assert_non_null(at);
      size_t end = (size_t)(at - header) + strlen(*r);
      if (end > ll || line[end - 1] == ' ' || (end < ll && line[end] != ' '))
        fail_msg("column %s not right-aligned in row:\n%s\n%s", *r, header, line);
    }
    for (const char *const *l = left; l && *l; l++) {
      const char *at = strstr(header, *l);
      assert_non_null(at);
      size_t start = (size_t)(at - header);
      if (start >= ll || line[start] == ' ' || (start > 0 && line[start - 1] != ' '))
        fail_msg("column %s not left-aligned in row:\n%s\n%s", *l, header, line);
    }
    free(line);
    rows++;
    p = e ? e + 1 : p + len;
  }
  free(header);
  return rows;
}

static inline void run_on(cli_result *r, const char *path, const char *const *args) {
  const char *argv[32];
  size_t n = 0;
  argv[n++] = "--db";
  argv[n++] = path;
  for (const char *const *a = args; *a && n < 31; a++)
    argv[n++] = *a;
  argv[n] = NULL;
  cli_spec spec = {.args = argv};
  cli_run(&spec, r);
}

#define RUN_ON(r, path, ...)                                                       \
  do {                                                                             \
    const char *const a_[] = {__VA_ARGS__, NULL};                                  \
    run_on(r, path, a_);                                                           \
  } while (0)
#define RUN(r, ...) RUN_ON(r, g_path, __VA_ARGS__)

/* Run and expect exit 0 and nothing on stderr. */
#define RUN_OK(r, ...)                                                             \
  do {                                                                             \
    RUN(r, __VA_ARGS__);                                                           \
    if ((r)->exit_code != 0 || (r)->err_len)                                       \
      fail_msg("exit %d, stderr:\n%s", (r)->exit_code, (r)->err);                  \
  } while (0)

/* The session ids of NDJSON output, comma-joined. */
static inline void ids_of(const char *out, char *buf, size_t n) {
  buf[0] = '\0';
  size_t len = 0;
  for (size_t i = 0; i < nd_count(out); i++) {
    json_t *o = nd_line(out, i);
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "", js(o, "session_id"));
    json_decref(o);
  }
}

/* ---------- tests ---------- */

/* The SPEC §7 session fields, in order, then whatever else, `requests` last. */
static void assert_session_object(json_t *o) {
  char buf[1024] = "";
  size_t len = 0;
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    (void)v;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len ? "," : "", k);
  }
  if (strncmp(buf, SESSION_KEYS ",", strlen(SESSION_KEYS) + 1) != 0 ||
      strcmp(buf + len - strlen(",requests"), ",requests") != 0)
    fail_msg("session object keys: %s", buf);
  assert_true(json_is_array(json_object_get(o, "requests")));
}

static void test_json_detail(void **state) {
  (void)state;
  int64_t t0 = g_now - 120000;
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
  assert_int_equal(ji(json_array_get(reqs, 0), "ts"), g_now - 3 * FX_HOUR_MS);
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
  char *path = tu_path(g_dir, "prefix.db");
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_detail),
      cmocka_unit_test(test_prefix),
      cmocka_unit_test(test_exact_before_prefix),
      cmocka_unit_test(test_pretty),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

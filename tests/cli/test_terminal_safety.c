/* Pretty output is safe for a terminal, end to end: strings from the wire
 * (tool and client names, session ids, error messages, URIs) never put a
 * control character (C0, DEL, C1) on the terminal — they are printed as
 * visible escapes; tables line up by display width (CJK counts two
 * columns); a table wider than the terminal ($COLUMNS here) is cut with
 * "…"; --json stays exact JSON. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_check.h"
#include "store_fixtures.h"
#include "testutil.h"

#define EVIL_TOOL "\x1b[2Jevil\x07"
#define EVIL_CLIENT "\x1b]0;pwned\x07"
#define CJK_CLIENT "\xe3\x82\xaf\xe3\x83\xad\xe3\x83\xbc\xe3\x83\x89" /* クロード */
#define C1_ERROR "bad\xc2\x9b" "31mred\nsecond line\tand\x7f"
#define EVIL_SESSION "sess\x1b[1A"

static char *dir, *db, *long_uri, *env_cols_80;

static int setup(void **state) {
  (void)state;
  dir = tu_tmpdir();
  db = tu_path(dir, "store.db");
  long_uri = malloc(320);
  snprintf(long_uri, 320, "%s", "file:///");
  for (size_t i = strlen(long_uri); i < 300; i++)
    long_uri[i] = (char)('a' + i % 26);
  long_uri[300] = '\0';
  env_cols_80 = strdup("COLUMNS=80");
  mcpr_store *s = sf_open(db, 0, 0);
  int64_t now = mcpr_now_ms();
  sf_record(s, sf_session(EVIL_SESSION, now - 60000, EVIL_CLIENT));
  sf_record(s, sf_session("sess-cjk", now - 60000, CJK_CLIENT));
  sf_record(s, sf_session("sess-plain", now - 60000, "plain-client"));
  char id[MCPR_UUID_STRLEN + 1];
  mcpr_uuid_v7(now - 5000, id);
  mcpr_store_event e = sf_request(id, now - 5000, EVIL_SESSION);
  e.u.request.tool = EVIL_TOOL;
  e.u.request.status = MCPR_REQUEST_ERROR;
  e.u.request.error_code = "-32000";
  e.u.request.error_msg = C1_ERROR;
  sf_record(s, e);
  mcpr_uuid_v7(now - 4000, id);
  e = sf_request(id, now - 4000, "sess-cjk");
  e.u.request.method = "resources/read";
  e.u.request.tool = NULL;
  e.u.request.resource_uri = long_uri;
  sf_record(s, e);
  mcpr_uuid_v7(now - 3000, id);
  e = sf_request(id, now - 3000, "sess-plain");
  sf_record(s, e);
  /* A tools/list whose names and descriptions carry escapes (JSON \\u001b),
   * and a description longer than one line. */
  sf_record(s, sf_schema(now - 2000, "api", "tools/list",
                         "{\"tools\":[{\"name\":\"\\u001b[2Jevil\",\"description\":"
                         "\"red\\u009b31m\\u0007 text\"},{\"name\":\"long\",\"description\":"
                         "\"0123456789012345678901234567890123456789012345678901234567890123456789\"},"
                         "{\"name\":\"two\",\"description\":\"first line\\nsecond line\"}]}",
                         "hash-evil"));
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(db);
  free(long_uri);
  free(env_cols_80);
  tu_rmdir(dir);
  return 0;
}

/* Display columns of UTF-8 text: CJK and fullwidth count two. */
static size_t display_width(const char *s, size_t n) {
  size_t w = 0;
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    unsigned cp = c;
    size_t len = 1;
    if (c >= 0xF0)
      len = 4, cp = c & 0x07;
    else if (c >= 0xE0)
      len = 3, cp = c & 0x0F;
    else if (c >= 0xC0)
      len = 2, cp = c & 0x1F;
    for (size_t k = 1; k < len && i + k < n; k++)
      cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
    bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
                (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6);
    w += wide ? 2 : 1;
    i += len;
  }
  return w;
}

/* No C0 control but '\n', no DEL, no C1 (UTF-8 C2 80..C2 9F) in out. */
static void assert_terminal_safe(const char *out, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)out[i];
    if ((c < 0x20 && c != '\n') || c == 0x7f)
      fail_msg("raw control byte 0x%02x at %zu in:\n%s", c, i, out);
    if (c == 0xC2 && i + 1 < len && (unsigned char)out[i + 1] >= 0x80 &&
        (unsigned char)out[i + 1] <= 0x9F)
      fail_msg("raw C1 control at %zu in:\n%s", i, out);
  }
}

static void assert_has(const char *out, const char *needle) {
  if (!strstr(out, needle))
    fail_msg("no [%s] in:\n%s", needle, out);
}

static void run_pretty(cli_result *r, bool cols_80, const char *const *args) {
  const char *env[] = {cols_80 ? env_cols_80 : NULL, NULL};
  const char *unset[] = {"COLUMNS", NULL};
  const char *all[16] = {"--db", db};
  size_t n = 2;
  for (size_t i = 0; args[i] && n < 15; i++)
    all[n++] = args[i];
  all[n] = NULL;
  cli_spec spec = {.args = all, .env = env, .unset = cols_80 ? NULL : unset};
  cli_run(&spec, r);
  if (r->exit_code != 0)
    fail_msg("exit %d, stderr:\n%s", r->exit_code, r->err);
}

#define PRETTY(r, cols, ...)                                                               \
  do {                                                                                     \
    const char *const a_[] = {__VA_ARGS__, NULL};                                          \
    run_pretty(r, cols, a_);                                                               \
  } while (0)

static void test_logs_escaped_and_cut(void **state) {
  (void)state;
  cli_result r;
  /* No terminal and no $COLUMNS: whole lines, every control escaped. */
  PRETTY(&r, false, "proxy", "logs");
  assert_terminal_safe(r.out, r.out_len);
  assert_has(r.out, "\\x1b[2Jevil\\x07");
  assert_has(r.out, "\\u009b31mred\\x0asecond line\\x09and\\x7f");
  assert_has(r.out, "sess\\x1b[1"); /* the session column's 8 characters */
  assert_has(r.out, long_uri);
  cli_result_free(&r);
  /* 80 columns: every line fits, the long cells (the URI) cut with "…". */
  PRETTY(&r, true, "proxy", "logs");
  assert_terminal_safe(r.out, r.out_len);
  assert_has(r.out, "file:///");
  assert_has(r.out, "\xe2\x80\xa6");
  assert_null(strstr(r.out, long_uri));
  for (const char *line = r.out; *line;) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    if (display_width(line, n) > 80)
      fail_msg("line wider than 80 columns:\n%.*s", (int)n, line);
    line += n + (nl ? 1 : 0);
  }
  cli_result_free(&r);
}

/* The display column where the field after the first one starts. */
static size_t second_column(const char *line, size_t n) {
  const char *gap = strstr(line, "  ");
  assert_true(gap && (size_t)(gap - line) < n);
  while (*gap == ' ')
    gap++;
  return display_width(line, (size_t)(gap - line));
}

static void test_tables_align_by_display_width(void **state) {
  (void)state;
  static const char *const commands[][3] = {
      {"proxy", "clients", NULL},
      {"proxy", "sessions", NULL},
  };
  for (size_t c = 0; c < 2; c++) {
    cli_result r;
    PRETTY(&r, false, commands[c][0], commands[c][1]);
    assert_terminal_safe(r.out, r.out_len);
    assert_has(r.out, CJK_CLIENT);
    assert_non_null(strstr(r.out, "\\x1b]0;pwned\\x07"));
    /* Every row's second column starts where its header's does. */
    const char *nl = strchr(r.out, '\n');
    size_t want = second_column(r.out, (size_t)(nl - r.out));
    size_t rows = 0;
    for (const char *line = nl + 1; *line; rows++) {
      const char *end = strchr(line, '\n');
      size_t n = end ? (size_t)(end - line) : strlen(line);
      if (second_column(line, n) != want)
        fail_msg("%s %s: misaligned row:\n%s", commands[c][0], commands[c][1], r.out);
      line += n + (end ? 1 : 0);
    }
    assert_int_equal(rows, 3);
    cli_result_free(&r);
  }
}

static void test_session_detail_escaped(void **state) {
  (void)state;
  cli_result r;
  PRETTY(&r, false, "proxy", "session", "sess\x1b");
  assert_terminal_safe(r.out, r.out_len);
  assert_has(r.out, "session   sess\\x1b[1A\n");
  assert_non_null(strstr(r.out, "client    \\x1b]0;pwned\\x07"));
  cli_result_free(&r);
  /* An error message quoting what the user typed is escaped too. */
  const char *const args[] = {"--db", db, "proxy", "session", "nope\x1b]0;x\x07", NULL};
  cli_spec spec = {.args = args};
  cli_run(&spec, &r);
  assert_int_equal(r.exit_code, 1);
  assert_terminal_safe(r.err, r.err_len);
  cli_result_free(&r);
}

static void test_schema_items_escaped(void **state) {
  (void)state;
  cli_result r;
  PRETTY(&r, false, "proxy", "schema");
  assert_terminal_safe(r.out, r.out_len);
  assert_has(r.out, "      \\x1b[2Jevil  —  red\\u009b31m\\x07 text\n");
  /* cut to 60 characters, one line each */
  assert_has(r.out, "      long  —  012345678901234567890123456789012345678901234567890123456789…\n");
  assert_has(r.out, "      two  —  first line…\n");
  cli_result_free(&r);
}

/* --json is exact: the same bytes back after decoding. */
static void test_json_exact(void **state) {
  (void)state;
  cli_result r;
  PRETTY(&r, true, "proxy", "logs", "--json");
  assert_int_equal(nd_count(r.out), 3);
  bool seen_tool = false, seen_uri = false;
  for (size_t i = 0; i < 3; i++) {
    json_t *o = nd_line(r.out, i);
    json_t *tool = json_object_get(o, "tool"), *uri = json_object_get(o, "resource_uri");
    if (json_is_string(tool) && strcmp(json_string_value(tool), EVIL_TOOL) == 0) {
      seen_tool = true;
      assert_string_equal(js(o, "error_msg"), C1_ERROR);
      assert_string_equal(js(o, "session_id"), EVIL_SESSION);
    }
    if (json_is_string(uri) && strcmp(json_string_value(uri), long_uri) == 0)
      seen_uri = true;
    json_decref(o);
  }
  assert_true(seen_tool && seen_uri);
  cli_result_free(&r);
  PRETTY(&r, false, "proxy", "clients", "--json");
  assert_has(r.out, "\"client_name\":\"" CJK_CLIENT "\"");
  assert_non_null(strstr(r.out, "\"client_name\":\"\\u001B]0;pwned\\u0007\""));
  cli_result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logs_escaped_and_cut),
      cmocka_unit_test(test_tables_align_by_display_width),
      cmocka_unit_test(test_session_detail_escaped),
      cmocka_unit_test(test_schema_items_escaped),
      cmocka_unit_test(test_json_exact),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

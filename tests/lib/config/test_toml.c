/* The TOML reader: every value form mcpr.toml may use, and errors with line:column on broken files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"
#include "testutil.h"

static mcpr__toml_value *parse_ok(const char *text) {
  mcpr__toml_value *root = NULL;
  mcpr__toml_error e;
  if (!mcpr__toml_parse(text, strlen(text), &root, &e))
    fail_msg("parse failed at %d:%d: %s", e.line, e.column, e.message);
  return root;
}

static const mcpr__toml_value *get(const mcpr__toml_value *t, const char *dotted) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", dotted);
  const mcpr__toml_value *v = t;
  for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
    mcpr__toml_entry *e = mcpr__toml_find(v, k);
    if (!e)
      fail_msg("no key %s", dotted);
    v = e->value;
  }
  return v;
}

static void test_values(void **state) {
  (void)state;
  mcpr__toml_value *r = parse_ok(
      "\xef\xbb\xbf# comment\n"
      "basic = \"tab\\there \\\"q\\\" \\\\ \\u00e9 \\U0001F600\"\n"
      "literal = 'C:\\path\\no escapes'\n"
      "multi = \"\"\"\nline1\nline2 \\\n   joined\"\"\"\n"
      "multilit = '''\nraw \\n'''\n"
      "\"quoted key\" = 1\n"
      "'lit key' = 2\n"
      "dec = +1_000\n"
      "neg = -17\n"
      "hex = 0xDEAD_beef\n"
      "oct = 0o755\n"
      "bin = 0b1010\n"
      "flt = 6.626e-34\n"
      "flt2 = -0.5\n"
      "inf1 = -inf\n"
      "nan1 = nan\n"
      "yes = true\n"
      "no = false\n"
      "arr = [ 1, [\"a\", 'b'], # comment in array\n  { x = 1 }, ]\n"
      "inl = { a.b = \"deep\", c = [] }\n"
      "site.\"google.com\" = true   # dotted with quoted part\n"
      "[a.b.c]\n"
      "d = 1\n"
      "[a]\n"
      "e = 2\n"
      "[[items]]\n"
      "n = 1\n"
      "[[items]]\n"
      "n = 2\n");
  assert_string_equal(get(r, "basic")->string, "tab\there \"q\" \\ \xc3\xa9 \xf0\x9f\x98\x80");
  assert_string_equal(get(r, "literal")->string, "C:\\path\\no escapes");
  assert_string_equal(get(r, "multi")->string, "line1\nline2 joined");
  assert_string_equal(get(r, "multilit")->string, "raw \\n");
  assert_int_equal(get(r, "quoted key")->integer, 1);
  assert_int_equal(get(r, "lit key")->integer, 2);
  assert_int_equal(get(r, "dec")->integer, 1000);
  assert_int_equal(get(r, "neg")->integer, -17);
  assert_int_equal(get(r, "hex")->integer, 0xdeadbeef);
  assert_int_equal(get(r, "oct")->integer, 0755);
  assert_int_equal(get(r, "bin")->integer, 10);
  assert_true(fabs(get(r, "flt")->floating - 6.626e-34) < 1e-40);
  assert_true(get(r, "flt2")->floating == -0.5);
  assert_true(isinf(get(r, "inf1")->floating) && get(r, "inf1")->floating < 0);
  assert_true(isnan(get(r, "nan1")->floating));
  assert_true(get(r, "yes")->boolean);
  assert_false(get(r, "no")->boolean);
  const mcpr__toml_value *arr = get(r, "arr");
  assert_int_equal(arr->type, MCPR__TOML_ARRAY);
  assert_int_equal(arr->n_items, 3);
  assert_string_equal(arr->items[1]->items[1]->string, "b");
  assert_int_equal(mcpr__toml_find(arr->items[2], "x")->value->integer, 1);
  assert_string_equal(get(r, "inl.a.b")->string, "deep");
  assert_non_null(mcpr__toml_find(get(r, "site"), "google.com"));
  assert_int_equal(get(r, "a.b.c.d")->integer, 1);
  assert_int_equal(get(r, "a.e")->integer, 2);
  const mcpr__toml_value *items = get(r, "items");
  assert_int_equal(items->n_items, 2);
  assert_int_equal(mcpr__toml_find(items->items[1], "n")->value->integer, 2);
  /* positions: the key line and the value's byte span */
  mcpr__toml_entry *e = mcpr__toml_find(r, "neg");
  assert_int_equal(e->line, 13);
  assert_int_equal(e->value->end - e->value->start, 3);
  mcpr__toml_free(r);
}

static void test_crlf_and_empty(void **state) {
  (void)state;
  mcpr__toml_value *r = parse_ok("a = 1\r\n[t]\r\nb = \"x\"\r\n");
  assert_string_equal(get(r, "t.b")->string, "x");
  mcpr__toml_free(r);
  r = parse_ok("");
  assert_int_equal(r->n_entries, 0);
  mcpr__toml_free(r);
  r = parse_ok("# only a comment");
  mcpr__toml_free(r);
}

/* text (named name in messages) fails to parse at line:column with a
 * message containing says, and hands back no tree. */
static void expect_error(const char *name, const char *text, size_t len, int line, int column,
                         const char *says) {
  mcpr__toml_value *r = NULL;
  mcpr__toml_error e;
  if (mcpr__toml_parse(text, len, &r, &e))
    fail_msg("%s parsed", name);
  assert_null(r);
  if (e.line != line || e.column != column || !strstr(e.message, says))
    fail_msg("%s: got %d:%d %s; want %d:%d %s", name, e.line, e.column, e.message, line, column,
             says);
}

/* Broken files under data/: each must fail at the given line and column. */
static const struct {
  const char *file;
  int line, column;
  const char *says;
} broken[] = {
    {"unterminated_string.toml", 2, 12, "unterminated string"},
    {"missing_equals.toml", 3, 5, "expected '=' after the key 'mcp'"},
    {"duplicate_key.toml", 4, 1, "duplicate key 'path' (first defined at line 2)"},
    {"table_redefined.toml", 4, 2, "table [cloud] is already defined at line 1"},
    {"bad_escape.toml", 1, 13, "expected an escape"},
    {"bad_number.toml", 2, 8, "expected a value for the key 'port'"},
    {"unclosed_array.toml", 2, 1, "expected ',' or ']'"},
    {"unclosed_header.toml", 2, 7, "expected ']' to close the table header"},
    {"invalid_utf8.toml", 1, 12, "invalid UTF-8"},
    {"deep_nesting.toml", 1, 37, "nested too deeply"},
    {"date.toml", 2, 8, "dates and times are not supported"},
    {"trailing_garbage.toml", 1, 10, "expected the end of the line"},
    {"surrogate_escape.toml", 1, 9, "not a valid Unicode scalar value"},
    {"inline_newline.toml", 1, 23, "expected a key, found end of line"},
    {"missing_key.toml", 3, 1, "expected a key, found '='"},
    {"control_char.toml", 1, 10, "control character 0x01"},
    {"dotted_conflict.toml", 2, 1, "duplicate key 'store'"},
    {"int_overflow.toml", 1, 5, "out of range"},
    {"array_no_comma.toml", 1, 8, "expected ',' or ']' in the array, found a digit"},
};

static void test_broken_files(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/lib/config/data/%s", MCPR_TEST_SOURCE_DIR, broken[i].file);
    FILE *f = fopen(path, "rb");
    if (!f)
      fail_msg("missing %s", path);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    expect_error(broken[i].file, buf, n, broken[i].line, broken[i].column, broken[i].says);
  }
}

/* `key = value` at the top level and inside an inline table: the same
 * rules, the same messages, and a missing value on its own line said so. */
static void test_keyval_errors(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int line, column;
    const char *says;
  } cases[] = {
      {"a = 1\nb 2\n", 2, 3, "expected '=' after the key 'b', found a digit"},
      {"t = {x = 1, y 2}\n", 1, 15, "expected '=' after the key 'y', found a digit"},
      {"t = {x.y 2}\n", 1, 10, "expected '=' after the key 'y', found a digit"},
      {"a =\n", 1, 4, "expected a value after '=', found end of line"},
      {"a = # no value\n", 1, 5, "expected a value after '=', found '#'"},
      {"t = {x = 1 y = 2}\n", 1, 12, "expected ',' or '}' in the inline table, found a letter"},
      {"t = {x = 1, x = 2}\n", 1, 13, "duplicate key 'x'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    expect_error(cases[i].text, cases[i].text, strlen(cases[i].text), cases[i].line,
                 cases[i].column, cases[i].says);
  mcpr__toml_value *r = parse_ok("t = {x.y = 1, z = 'a'}\n");
  assert_string_equal(get(r, "t.z")->string, "a");
  mcpr__toml_free(r);
}

static void test_bounds(void **state) {
  (void)state;
  mcpr__toml_value *r = NULL;
  mcpr__toml_error e;
  /* a line over the cap */
  size_t n = MCPR__TOML_MAX_LINE_BYTES + 100;
  char *s = malloc(n + 1);
  memcpy(s, "x = \"", 5);
  memset(s + 5, 'a', n - 6);
  s[n - 1] = '"';
  s[n] = '\0';
  assert_false(mcpr__toml_parse(s, n, &r, &e));
  assert_int_equal(e.line, 1);
  assert_non_null(strstr(e.message, "longer than"));
  free(s);
  /* a file over the cap */
  n = MCPR__TOML_MAX_BYTES + 1;
  s = calloc(1, n);
  memset(s, '\n', n);
  assert_false(mcpr__toml_parse(s, n, &r, &e));
  assert_non_null(strstr(e.message, "larger than"));
  free(s);
  /* nesting through inline tables and dotted keys is bounded too */
  char deep[512];
  size_t o = (size_t)snprintf(deep, sizeof deep, "a = ");
  for (int i = 0; i < 40; i++)
    o += (size_t)snprintf(deep + o, sizeof deep - o, "{b=");
  o += (size_t)snprintf(deep + o, sizeof deep - o, "1");
  for (int i = 0; i < 40; i++)
    o += (size_t)snprintf(deep + o, sizeof deep - o, "}");
  assert_false(mcpr__toml_parse(deep, strlen(deep), &r, &e));
  assert_non_null(strstr(e.message, "nested too deeply"));
  char dotted[512];
  o = 0;
  for (int i = 0; i < 40; i++)
    o += (size_t)snprintf(dotted + o, sizeof dotted - o, "k.");
  snprintf(dotted + o, sizeof dotted - o, "z = 1");
  assert_false(mcpr__toml_parse(dotted, strlen(dotted), &r, &e));
  assert_non_null(strstr(e.message, "too many parts"));
  /* NUL byte */
  assert_false(mcpr__toml_parse("a = 1\n\0", 7, &r, &e));
  assert_int_equal(e.line, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_values),
      cmocka_unit_test(test_crlf_and_empty),
      cmocka_unit_test(test_broken_files),
      cmocka_unit_test(test_keyval_errors),
      cmocka_unit_test(test_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

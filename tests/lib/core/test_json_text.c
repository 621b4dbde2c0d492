/* JSON text with shortest round-trip reals (core/json_text.h): 16.67 is
 * written 16.67, never 16.670000000000002; everything else exactly as
 * jansson's compact writer. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_text.h"
#include "testutil.h"

static void expect_real(double v, const char *want) {
  char buf[MCPR__JSON_REAL_MAX];
  size_t n = mcpr__json_real_text(v, buf);
  if (strcmp(buf, want) != 0)
    fail_msg("%.17g: got %s, want %s", v, buf, want);
  assert_int_equal(n, strlen(want));
}

static void test_shortest_reals(void **state) {
  (void)state;
  expect_real(16.67, "16.67");
  expect_real(5.56, "5.56");
  expect_real(round(100.0 / 6.0 * 100.0) / 100.0, "16.67"); /* an error % as the CLI rounds it */
  expect_real(round(100.0 / 18.0 * 100.0) / 100.0, "5.56");
  expect_real((16.67 + 5.56 + 1.0) / 3.0, "7.743333333333333"); /* an average */
  expect_real(0.1, "0.1");
  expect_real(0.1 + 0.2, "0.30000000000000004");
  expect_real(1.0 / 3.0, "0.3333333333333333");
  expect_real(1.0, "1.0");
  expect_real(-0.0, "-0.0");
  expect_real(100.0, "100.0");
  expect_real(1e300, "1e300");
  expect_real(1e-5, "1e-5");
  expect_real(-2.5e-7, "-2.5e-7");
  expect_real(123456789012345680.0, "1.2345678901234568e17");
  expect_real(45356535652906920.0, "45356535652906920.0"); /* not 4.535653565290692e16 */
  expect_real(1.7976931348623157e308, "1.7976931348623157e308");
}

/* Every real reads back as itself, never longer than %.17g (+ ".0"). */
static void test_round_trip(void **state) {
  (void)state;
  srand(12345);
  for (int i = 0; i < 200000; i++) {
    double v;
    if (i % 2) {
      unsigned long long bits = ((unsigned long long)rand() << 33) ^ ((unsigned long long)rand() << 11) ^
                                (unsigned long long)rand();
      memcpy(&v, &bits, sizeof v);
      if (!isfinite(v))
        continue;
    } else {
      v = round((double)rand() / RAND_MAX * 10000.0 * 100.0) / 100.0;
    }
    char buf[MCPR__JSON_REAL_MAX], full[64];
    mcpr__json_real_text(v, buf);
    if (strtod(buf, NULL) != v)
      fail_msg("%.17g written %s", v, buf);
    snprintf(full, sizeof full, "%.17g", v);
    assert_true(strlen(buf) <= strlen(full) + 2); /* + ".0" */
    json_error_t jerr;
    char doc[80];
    snprintf(doc, sizeof doc, "[%s]", buf);
    json_t *a = json_loads(doc, 0, &jerr);
    if (!a || !json_is_real(json_array_get(a, 0)) || json_real_value(json_array_get(a, 0)) != v)
      fail_msg("%s does not read back as a real %.17g", buf, v);
    json_decref(a);
  }
}

/* Without reals, byte for byte what json_dumps(JSON_COMPACT) writes. */
static void test_same_as_jansson(void **state) {
  (void)state;
  static const char *const docs[] = {
      "{}",
      "[]",
      "null",
      "\"\"",
      "[true,false,null,0,-1,9223372036854775807,-9223372036854775808]",
      "{\"b\":1,\"a\":{\"z\":[1,{\"y\":\"x\"}],\"c\":[]},\"\":\"empty key\"}",
      "[\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u00e9\\u4e2d\\ud83d\\ude00\"]",
      "{\"key\":\"nul\\u0000inside\",\"\\u001b[2J\":\"esc\"}",
      "[\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 raw UTF-8\"]",
  };
  for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
    json_error_t jerr;
    json_t *v = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!v)
      fail_msg("doc %zu: %s", i, jerr.text);
    char *ours = mcpr__json_dumps(v);
    char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(ours);
    if (strcmp(ours, theirs) != 0)
      fail_msg("doc %zu:\n ours   %s\n jansson %s", i, ours, theirs);
    free(ours);
    free(theirs);
    json_decref(v);
  }
}

static void test_document_with_reals(void **state) {
  (void)state;
  json_t *o = json_pack("{sf sf s[f i] sf}", "error_pct", 16.67, "avg", 5.56, "list", 0.1, 3,
                        "whole", 2.0);
  char *text = mcpr__json_dumps(o);
  assert_string_equal(text, "{\"error_pct\":16.67,\"avg\":5.56,\"list\":[0.1,3],\"whole\":2.0}");
  free(text);
  json_decref(o);
  assert_null(mcpr__json_dumps(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shortest_reals),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_same_as_jansson),
      cmocka_unit_test(test_document_with_reals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

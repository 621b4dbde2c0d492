/*
 * core/json_scan.h: the proxy reads the fields of each message with this
 * scanner and asks jansson only when it says "unsure", so its yes must be
 * jansson's yes and what it reads what jansson reads. Checked on chosen
 * corners, on the fuzz seeds (tests/fuzz/corpus/json_scan/) and on many
 * random JSON-RPC-like texts with random damage, each against jansson
 * (tests/support/json_scan_oracle.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"
#include "fuzz_replay.h"
#include "json_scan_oracle.h"
#include "testutil.h"

static mcpr__js_result check(const char *s) { return mcpr__js_check(s, strlen(s)); }

static void test_verdicts(void **state) {
  (void)state;
  static const char *const ok[] = {
      "{}", "[]", " {\"a\" : [1, -2.5e10, true, false, null, \"x\"]}\n", "0", "-0", "\"\"",
      "{\"a\":\"\\n\\t\\\\\\\"\\/\\u00e9\"}", "\"h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
      "123456789012345678", "1.5e99"};
  static const char *const bad[] = {
      "", " ", "{", "{\"a\"}", "{\"a\":1,}", "[1,]", "01", "-", "1.", ".5", "1e", "tru",
      "nul", "{\"a\":1} x", "\"a\x01\"", "\"\\x\"", "\"\\u12g4\"", "\"\xc0\xaf\"",
      "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "{'a':1}", "[1 2]", "\"abc", "\xef\xbb\xbf{}"};
  static const char *const unsure[] = {"\"\\u0000\"", "\"\\ud83d\\ude00\"", "\"\\udc00\"",
                                       "1234567890123456789", "1e400", "1e-400"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    if (check(ok[i]) != MCPR__JS_OK)
      fail_msg("expected OK: %s", ok[i]);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (check(bad[i]) != MCPR__JS_BAD)
      fail_msg("expected BAD: %s", bad[i]);
  }
  for (size_t i = 0; i < sizeof unsure / sizeof unsure[0]; i++) {
    if (check(unsure[i]) != MCPR__JS_UNSURE)
      fail_msg("expected UNSURE: %s", unsure[i]);
  }
  /* deep nesting is jansson's to judge */
  char deep[300];
  memset(deep, '[', 150);
  memset(deep + 150, ']', 150);
  assert_int_equal(mcpr__js_check(deep, sizeof deep), MCPR__JS_UNSURE);
  /* a later byte still makes an unsure text bad */
  assert_int_equal(check("[\"\\u0000\", ]"), MCPR__JS_BAD);
}

static void test_members(void **state) {
  (void)state;
  const char *t = " {\"id\": 7, \"params\": {\"name\": \"echo\", \"args\": {\"name\": \"no\"}},"
                  " \"id\": \"last\", \"e\\u0073c\": 1 } ";
  assert_int_equal(mcpr__js_check(t, strlen(t)), MCPR__JS_OK);
  mcpr__js_span root = mcpr__js_root(t, strlen(t)), v, name;
  /* an escaped key might spell the one asked for: declined */
  assert_false(mcpr__js_member(root, "id", &v));
  const char *u = "{\"id\": 7, \"params\": {\"args\": {\"name\": \"no\"}, \"name\": \"echo\"},"
                  " \"id\": \"last\"}";
  root = mcpr__js_root(u, strlen(u));
  assert_true(mcpr__js_member(root, "id", &v));
  assert_int_equal(v.n, 6); /* the last "id" counts, as in jansson */
  assert_memory_equal(v.p, "\"last\"", 6);
  assert_true(mcpr__js_member(root, "params", &v));
  assert_true(mcpr__js_member(v, "name", &name));
  const char *s;
  size_t n;
  assert_true(mcpr__js_plain_string(name, &s, &n));
  assert_int_equal(n, 4);
  assert_memory_equal(s, "echo", 4);
  assert_true(mcpr__js_member(root, "absent", &v));
  assert_null(v.p);
  assert_true(mcpr__js_plain_integer((mcpr__js_span){"-12", 3}));
  assert_false(mcpr__js_plain_integer((mcpr__js_span){"-0", 2}));
  assert_false(mcpr__js_plain_integer((mcpr__js_span){"1.0", 3}));
  assert_false(mcpr__js_plain_string((mcpr__js_span){"\"a\\n\"", 5}, &s, &n));
}

static int seed_one(const uint8_t *data, size_t size) {
  const char *why = json_scan_disagreement((const char *)data, size);
  if (why)
    fail_msg("json_scan disagrees with jansson (%s) on: %.*s", why, (int)size, (const char *)data);
  return 0;
}

static void test_fuzz_seeds(void **state) {
  (void)state;
  fr_replay_target("json_scan", seed_one, NULL);
}

/* --- random texts: JSON-RPC-like values, then random damage --- */

static unsigned rnd(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fff;
}

static void put(char *b, size_t *n, size_t cap, const char *s) {
  size_t l = strlen(s);
  if (*n + l < cap) {
    memcpy(b + *n, s, l);
    *n += l;
  }
}

static void gen_value(char *b, size_t *n, size_t cap, unsigned *s, int depth) {
  static const char *const atoms[] = {
      "1", "-7", "0", "-0", "3.25", "1e5", "2E-3", "123456789012345678", "99999999999999999999",
      "true", "false", "null", "\"echo\"", "\"tools/call\"", "\"a\\\"b\"", "\"\\u00e9t\xc3\xa9\"",
      "\"\\u0000\"", "\"\\ud83d\\ude00\"", "\"line\\nbreak\"", "\"\xe2\x82\xac\"", "1e400"};
  static const char *const keys[] = {"\"id\"", "\"method\"", "\"params\"", "\"name\"",
                                     "\"result\"", "\"error\"", "\"code\"", "\"message\"",
                                     "\"isError\"", "\"x\"", "\"i\\u0064\""};
  unsigned k = rnd(s) % 10;
  if (depth > 3 || k < 5) {
    put(b, n, cap, atoms[rnd(s) % (sizeof atoms / sizeof atoms[0])]);
    return;
  }
  bool object = k < 8;
  put(b, n, cap, object ? "{" : "[");
  unsigned members = rnd(s) % 5;
  for (unsigned i = 0; i < members; i++) {
    if (i)
      put(b, n, cap, rnd(s) % 3 ? "," : " , ");
    if (object) {
      put(b, n, cap, keys[rnd(s) % (sizeof keys / sizeof keys[0])]);
      put(b, n, cap, rnd(s) % 2 ? ":" : " :\n");
    }
    gen_value(b, n, cap, s, depth + 1);
  }
  put(b, n, cap, object ? "}" : "]");
}

static void test_random_against_jansson(void **state) {
  (void)state;
  unsigned seed = 20261205;
  char buf[4096];
  for (int i = 0; i < 60000; i++) {
    size_t n = 0;
    gen_value(buf, &n, sizeof buf - 1, &seed, 0);
    unsigned damage = rnd(&seed) % 4;
    for (unsigned d = 0; d < damage && n > 0; d++) {
      size_t at = rnd(&seed) % n;
      static const char bytes[] = "{}[],:\"\\ 0e-.tn\x80\xff\x01";
      unsigned op = rnd(&seed) % 3;
      if (op == 0)
        buf[at] = bytes[rnd(&seed) % (sizeof bytes - 1)];
      else if (op == 1)
        memmove(buf + at, buf + at + 1, --n - at);
      else
        n = at;
    }
    const char *why = json_scan_disagreement(buf, n);
    if (why)
      fail_msg("json_scan disagrees with jansson (%s) on: %.*s", why, (int)n, buf);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_verdicts),
      cmocka_unit_test(test_members),
      cmocka_unit_test(test_fuzz_seeds),
      cmocka_unit_test(test_random_against_jansson),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Durations, thresholds and counts of the command line (SPEC §7). */
#include <string.h>

#include "mcpr/util.h"
#include "testutil.h"

static void test_durations(void **state) {
  (void)state;
  int64_t ms = 0;
  mcpr_error err = {0};
  assert_int_equal(mcpr_parse_duration_ms("--since", "1h", &ms, &err), MCPR_OK);
  assert_int_equal(ms, 3600000);
  assert_int_equal(mcpr_parse_duration_ms("--since", " 30 m ", &ms, &err), MCPR_OK);
  assert_int_equal(ms, 1800000);
  assert_int_equal(mcpr_parse_duration_ms("--since", "7d", &ms, &err), MCPR_OK);
  assert_int_equal(ms, 604800000);
  assert_int_equal(mcpr_parse_duration_ms("--since", "2w", &ms, &err), MCPR_OK);
  assert_int_equal(ms, 1209600000);
  assert_int_equal(mcpr_parse_duration_ms("--since", "45s", &ms, &err), MCPR_OK);
  assert_int_equal(ms, 45000);
  static const char *const bad[] = {"5x", "h", "", "-1h", "0h", "1.5h", "1hh", "1 h x",
                                    "99999999999999999999d", "9223372036854775807w", "1ms"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mcpr_error_clear(&err);
    ms = 42;
    assert_int_not_equal(mcpr_parse_duration_ms("--since", bad[i], &ms, &err), MCPR_OK);
    assert_int_equal(ms, 42);
    assert_non_null(strstr(err.message, "--since"));
  }
  mcpr_error_clear(&err);
  mcpr_parse_duration_ms("--since", "5x", &ms, &err);
  assert_non_null(strstr(err.message, "s, m, h, d, w"));
}

static void test_thresholds(void **state) {
  (void)state;
  int64_t us = 0;
  mcpr_error err = {0};
  assert_int_equal(mcpr_parse_threshold_us("--threshold", "500ms", &us, &err), MCPR_OK);
  assert_int_equal(us, 500000);
  assert_int_equal(mcpr_parse_threshold_us("--threshold", "250us", &us, &err), MCPR_OK);
  assert_int_equal(us, 250);
  assert_int_equal(mcpr_parse_threshold_us("--threshold", "250\xce\xbcs", &us, &err), MCPR_OK);
  assert_int_equal(us, 250);
  assert_int_equal(mcpr_parse_threshold_us("--threshold", "250\xc2\xb5s", &us, &err), MCPR_OK);
  assert_int_equal(us, 250);
  assert_int_equal(mcpr_parse_threshold_us("--threshold", " 2s", &us, &err), MCPR_OK);
  assert_int_equal(us, 2000000);
  assert_int_equal(mcpr_parse_threshold_us("--threshold", "1m", &us, &err), MCPR_OK);
  assert_int_equal(us, 60000000);
  static const char *const bad[] = {"500", "0ms", "-5ms", "ms", "5 x", "99999999999999999w"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mcpr_error_clear(&err);
    assert_int_not_equal(mcpr_parse_threshold_us("--threshold", bad[i], &us, &err), MCPR_OK);
    assert_non_null(strstr(err.message, "--threshold"));
  }
}

static void test_counts(void **state) {
  (void)state;
  int64_t n = 0;
  mcpr_error err = {0};
  assert_int_equal(mcpr_parse_count("--tail", "50", &n, &err), MCPR_OK);
  assert_int_equal(n, 50);
  assert_int_equal(mcpr_parse_count("--tail", " 7 ", &n, &err), MCPR_OK);
  assert_int_equal(n, 7);
  static const char *const bad[] = {"0", "-1", "abc", "", "5x", "1e3", "99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mcpr_error_clear(&err);
    assert_int_not_equal(mcpr_parse_count("--limit", bad[i], &n, &err), MCPR_OK);
    assert_non_null(strstr(err.message, "--limit"));
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_thresholds),
      cmocka_unit_test(test_counts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

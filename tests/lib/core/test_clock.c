/*
 * core/clock.h: the one backoff of the library (issue 12: the writer's
 * retries had none). Exponential from base, capped, with jitter in
 * [d/2, d]: two processes that met the same lock must not retry in
 * lockstep, and a retry must never wait longer than the cap.
 */
#include <stdlib.h>

#include "core/clock.h"
#include "testutil.h"

static void test_backoff_bounds_and_jitter(void **state) {
  (void)state;
  unsigned seed = 12345;
  for (unsigned attempt = 0; attempt < 20; attempt++) {
    int64_t d = 5;
    for (unsigned i = 0; i < attempt && d < 1000; i++)
      d *= 2;
    if (d > 1000)
      d = 1000;
    int64_t lo = d, hi = 0;
    for (int k = 0; k < 200; k++) {
      int64_t v = mcpr__backoff_ms(5, 1000, attempt, &seed);
      assert_true(v >= d / 2 && v <= d);
      lo = v < lo ? v : lo;
      hi = v > hi ? v : hi;
    }
    if (d >= 8)
      assert_true(hi > lo); /* jitter: not one fixed value */
  }
  /* Two seeds (two processes) draw different sequences. */
  unsigned a = mcpr__backoff_seed(&a), b = mcpr__backoff_seed(&b) ^ 0x9e3779b9u;
  int same = 0;
  for (int k = 0; k < 50; k++)
    same += mcpr__backoff_ms(100, 100000, 5, &a) == mcpr__backoff_ms(100, 100000, 5, &b);
  assert_true(same < 50);
}

static void test_deadline_and_sleep(void **state) {
  (void)state;
  int64_t t0 = mcpr__mono_ms();
  mcpr__sleep_ms(20);
  assert_true(mcpr__mono_ms() - t0 >= 19);
  mcpr__sleep_ms(-5); /* returns at once */
  struct timespec a = mcpr__mono_deadline(1500), b = mcpr__mono_timespec(mcpr__mono_ms());
  int64_t diff = ((int64_t)a.tv_sec - b.tv_sec) * 1000 + (a.tv_nsec - b.tv_nsec) / 1000000;
  assert_true(diff >= 1490 && diff <= 1510);
  assert_true(a.tv_nsec >= 0 && a.tv_nsec < 1000000000L);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backoff_bounds_and_jitter),
      cmocka_unit_test(test_deadline_and_sleep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Replays the HTTP/1.x layer's fuzz inputs — the seeds
 * (tests/fuzz/corpus/proxy_http1/) and every input the fuzzer once
 * crashed on (tests/fuzz/regress/proxy_http1/) — through the fuzz
 * target's own entry point, in the normal builds (plain and ASan+UBSan),
 * so a fixed defect stays fixed without clang or libFuzzer. It lives here
 * and not in tests/inject/test_fuzz_regress.c because http1.c belongs to
 * the mcpr program, not to libmcpr: the target compiles it in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fuzz_proxy_http1_one
#include "../fuzz/fuzz_proxy_http1.c"
#undef LLVMFuzzerTestOneInput

#include "fuzz_replay.h"
#include "testutil.h"

static void test_replay(void **state) {
  (void)state;
  size_t regress = 0;
  fr_replay_target("proxy_http1", fuzz_proxy_http1_one, &regress);
  assert_true(regress > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Replays every fuzz input kept in the repository — the regression inputs
 * (tests/fuzz/regress/<target>/, one per defect the fuzzers found) and the
 * seed corpora (tests/fuzz/corpus/<target>/) — through the fuzz targets'
 * own entry points, in the normal builds (plain, and ASan+UBSan in the
 * asan run), so a fixed defect stays fixed without clang or libFuzzer.
 *
 * The targets all name their entry point LLVMFuzzerTestOneInput, so each is
 * included here under its own name. fuzz_cloud_response.c defines
 * curl_easy_setopt/perform/getinfo (its fake transport): this program makes
 * no real HTTP call. A failed property traps (SIGILL); the input being
 * replayed is printed first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fuzz_event_one
#include "../fuzz/fuzz_event.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_toml_one
#include "../fuzz/fuzz_toml.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_cloud_response_one
#include "../fuzz/fuzz_cloud_response.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_spool_one
#include "../fuzz/fuzz_spool.c"
#undef LLVMFuzzerTestOneInput

#include "fuzz_replay.h"
#include "testutil.h"

static void replay(const char *target, fr_target_fn fn) { fr_replay_target(target, fn, NULL); }

static void test_event(void **state) {
  (void)state;
  replay("event", fuzz_event_one);
}
static void test_toml(void **state) {
  (void)state;
  replay("toml", fuzz_toml_one);
}
static void test_cloud_response(void **state) {
  (void)state;
  replay("cloud_response", fuzz_cloud_response_one);
}
static void test_spool(void **state) {
  (void)state;
  replay("spool", fuzz_spool_one);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_event),
      cmocka_unit_test(test_toml),
      cmocka_unit_test(test_cloud_response),
      cmocka_unit_test(test_spool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

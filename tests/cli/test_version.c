/* `mcpr version` and `mcpr --version`, end to end, as the original prints
 * them: `version` one JSON object {"target","version"} (serde_json's sorted
 * keys), `--version` / `-V` the line "mcpr X.Y.Z". */
#include <jansson.h>
#include <string.h>

#include "cli_check.h"
#include "mcpr/mcpr.h"

static void test_version_json(void **state) {
  (void)state;
  cli_result r;
  cli_runv(&r, "version", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(nd_count(r.out), 1);
  json_t *o = nd_line(r.out, 0);
  assert_keys(o, "target,version");
  assert_string_equal(js(o, "version"), mcpr_version());
  /* A Rust-style triple: ARCH-VENDOR-OS[-ENV], e.g. x86_64-unknown-linux-gnu. */
  const char *target = js(o, "target");
  assert_true(cli_count_substr(target, "-") >= 2);
#if defined(__linux__) && defined(__x86_64__) && defined(__GLIBC__)
  assert_string_equal(target, "x86_64-unknown-linux-gnu");
#endif
  char want[128];
  snprintf(want, sizeof want, "{\"target\":\"%s\",\"version\":\"%s\"}\n", target, mcpr_version());
  json_decref(o);
  cli_result_free(&r);
  cli_runv(&r, "version", NULL);
  assert_string_equal(r.out, want);
  cli_result_free(&r);
}

static void test_dash_version(void **state) {
  (void)state;
  char want[64];
  snprintf(want, sizeof want, "mcpr %s\n", mcpr_version());
  static const char *const flags[] = {"--version", "-V"};
  for (size_t i = 0; i < 2; i++) {
    cli_result r;
    cli_runv(&r, flags[i], NULL);
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.out, want);
    cli_result_free(&r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version_json),
      cmocka_unit_test(test_dash_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

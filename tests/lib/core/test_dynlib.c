/*
 * core/dynlib.h: libraries loaded on first use. A missing library is a
 * NULL symbol and an error text, never retried; a present one gives its
 * symbols. And the point of it: the mcpr program does not load libcurl
 * or libpq at start (every command paid ~10 ms of CPU for them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dynlib.h"
#include "testutil.h"

static void test_missing_library(void **state) {
  (void)state;
  mcpr__dynlib lib = {"libmcpr-no-such-library.so.9", NULL, 0};
  assert_null(mcpr__dynlib_sym(&lib, "anything"));
  assert_int_equal(lib.failed, 1);
  assert_true(strlen(mcpr__dynlib_error(&lib)) > 0);
  assert_null(mcpr__dynlib_sym(&lib, "anything"));
  void *cache = NULL;
  assert_null(mcpr__dynlib_cached(&lib, &cache, "anything"));
  assert_null(cache);
}

static void test_present_library(void **state) {
  (void)state;
  mcpr__dynlib lib = {"libcurl.so.4", NULL, 0};
  void *cache = NULL;
  void *fn = mcpr__dynlib_cached(&lib, &cache, "curl_version");
  assert_non_null(fn);
  assert_ptr_equal(cache, fn);
  assert_ptr_equal(mcpr__dynlib_cached(&lib, &cache, "curl_version"), fn);
  assert_null(mcpr__dynlib_sym(&lib, "curl_no_such_function"));
  assert_string_equal(mcpr__dynlib_error(&lib), "");
}

/* glibc's loader lists what a program loads at start (as ldd does). */
static void test_program_does_not_load_them(void **state) {
  (void)state;
  const char *bin = getenv("MCPR_BIN");
  assert_non_null(bin);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "LD_TRACE_LOADED_OBJECTS=1 '%s' version 2>&1", bin);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char line[512];
  int libs = 0;
  while (fgets(line, sizeof line, p)) {
    if (strstr(line, "libsqlite3"))
      libs++;
    if (strstr(line, "libcurl") || strstr(line, "libpq"))
      fail_msg("mcpr loads at start: %s", line);
  }
  pclose(p);
  assert_int_equal(libs, 1); /* the listing worked */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_missing_library),
      cmocka_unit_test(test_present_library),
      cmocka_unit_test(test_program_does_not_load_them),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

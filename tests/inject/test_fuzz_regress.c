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
#include <dirent.h>
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

#include "testutil.h"

typedef int (*fuzz_fn)(const uint8_t *, size_t);

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run fn on every file of dir (a missing dir is none); returns the count. */
static size_t replay_dir(const char *dir, fuzz_fn fn) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.')
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      names = realloc(names, cap * sizeof *names);
      assert_non_null(names);
    }
    names[n++] = strdup(de->d_name);
  }
  closedir(d);
  if (n)
    qsort(names, n, sizeof *names, cmp_str);
  for (size_t i = 0; i < n; i++) {
    char *path = tu_path(dir, names[i]);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(len >= 0);
    /* An exact-size copy, so ASan sees any read past the input's end. */
    uint8_t *buf = malloc(len ? (size_t)len : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    fprintf(stderr, "replay %s\n", path);
    fn(buf, (size_t)len);
    free(buf);
    free(path);
    free(names[i]);
  }
  free(names);
  return n;
}

static void replay(const char *target, fuzz_fn fn) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", MCPR_TEST_SOURCE_DIR, target);
  size_t seeds = replay_dir(dir, fn);
  assert_true(seeds > 0); /* the corpus is in the repository */
  snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", MCPR_TEST_SOURCE_DIR, target);
  size_t regress = replay_dir(dir, fn);
  fprintf(stderr, "%s: %zu seeds, %zu regression inputs replayed\n", target, seeds, regress);
}

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

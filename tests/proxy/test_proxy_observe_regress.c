/*
 * Replays the proxy observer's fuzz inputs — the seeds
 * (tests/fuzz/corpus/proxy_observe/) and every input the fuzzer once
 * crashed on (tests/fuzz/regress/proxy_observe/) — through the fuzz
 * target's own entry point, in the normal builds (plain and ASan+UBSan),
 * so a fixed defect stays fixed without clang or libFuzzer. It lives here
 * and not in tests/inject/test_fuzz_regress.c because observe.c belongs to
 * the mcpr program, not to libmcpr: the target compiles it in.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fuzz_proxy_observe_one
#include "../fuzz/fuzz_proxy_observe.c"
#undef LLVMFuzzerTestOneInput

#include "testutil.h"

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every file of dir (a missing dir is none); returns the count. */
static size_t replay_dir(const char *dir) {
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
    fuzz_proxy_observe_one(buf, (size_t)len);
    free(buf);
    free(path);
    free(names[i]);
  }
  free(names);
  return n;
}

static void test_replay(void **state) {
  (void)state;
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/proxy_observe", MCPR_TEST_SOURCE_DIR);
  size_t seeds = replay_dir(dir);
  assert_true(seeds > 0);
  snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/proxy_observe", MCPR_TEST_SOURCE_DIR);
  size_t regress = replay_dir(dir);
  assert_true(regress > 0);
  fprintf(stderr, "proxy_observe: %zu seeds, %zu regression inputs replayed\n", seeds, regress);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_replay),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

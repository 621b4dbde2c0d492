/* fuzz_replay.c — see fuzz_replay.h. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_replay.h"
#include "testutil.h"

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t fr_replay_dir(const char *dir, fr_target_fn fn) {
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

void fr_replay_target(const char *target, fr_target_fn fn, size_t *regress_out) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", MCPR_TEST_SOURCE_DIR, target);
  size_t seeds = fr_replay_dir(dir, fn);
  assert_true(seeds > 0); /* the corpus is in the repository */
  snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", MCPR_TEST_SOURCE_DIR, target);
  size_t regress = fr_replay_dir(dir, fn);
  fprintf(stderr, "%s: %zu seeds, %zu regression inputs replayed\n", target, seeds, regress);
  if (regress_out)
    *regress_out = regress;
}

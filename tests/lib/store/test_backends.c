/*
 * A store is named by a path or a URL, and the engine picks the backend by
 * the URL's scheme (issue 12's layout; SPEC §7): a path or sqlite:PATH is
 * SQLite, postgresql:// PostgreSQL; any other scheme is refused with its name — never taken for a
 * file name (`--db postgresql://…` once made a directory "postgresql:").
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

static void test_sqlite_url_forms_open_the_file(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "url.db");
  const char *prefixes[] = {"sqlite:", "sqlite://", ""};
  for (size_t i = 0; i < 3; i++) {
    char target[4200];
    snprintf(target, sizeof target, "%s%s", prefixes[i], path);
    mcpr_store *s = NULL;
    mcpr_error err = {0};
    assert_int_equal(mcpr_store_open(&s, target, NULL, &err), MCPR_OK);
    assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
    mcpr_query *q = NULL;
    assert_int_equal(mcpr_query_open(&q, target, &err), MCPR_OK);
    mcpr_query_close(q);
  }
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  free(path);
  tu_rmdir(dir);
}

static void test_other_schemes_are_refused_not_files(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(dir), 0);
  /* postgresql:// and postgres:// are the PostgreSQL backend's now
   * (tests/pg/test_pg_store.c checks they never become files either). */
  const char *urls[] = {"mysql://mcpr@localhost/mcpr", "oracle://h/db",
                        "mysql://h/db", "sqlite:"};
  for (size_t i = 0; i < 4; i++) {
    mcpr_store *s = NULL;
    mcpr_error err = {0};
    assert_int_equal(mcpr_store_open(&s, urls[i], NULL, &err), MCPR_EINVAL);
    assert_null(s);
    if (i < 3) {
      size_t n = strcspn(urls[i], ":");
      char scheme[32];
      snprintf(scheme, sizeof scheme, "'%.*s'", (int)n, urls[i]);
      assert_non_null(strstr(err.message, scheme));
    }
    mcpr_query *q = NULL;
    assert_int_equal(mcpr_query_open(&q, urls[i], &err), MCPR_EINVAL);
    assert_null(q);
  }
  struct stat sb;
  assert_int_not_equal(stat("mysql:", &sb), 0);
  assert_int_not_equal(stat("oracle:", &sb), 0);
  assert_int_equal(chdir(cwd), 0);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sqlite_url_forms_open_the_file),
      cmocka_unit_test(test_other_schemes_are_refused_not_files),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Naming a PostgreSQL store (issue 16), no server needed: `[store] url`
 * in mcpr.toml, `MCPR_DB`, and the places that derive a file from the
 * store's name (the cloud spool) never take a URL for a file name.
 */
#include <stdlib.h>
#include <string.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

static mcpr_config *load(const char *text, mcpr_status want) {
  mcpr_config *cfg = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_config_load_string(text, strlen(text), "mcpr.toml", &cfg, &err), want);
  assert_non_null(cfg);
  return cfg;
}

static void test_store_url_in_config(void **state) {
  (void)state;
  mcpr_config *cfg = load("[store]\nurl = \"postgresql://u:pw@db/mcpr\"\n", MCPR_OK);
  assert_int_equal(mcpr_config_diag_count(cfg), 0);
  mcpr_error err = {0};
  unsetenv("MCPR_DB");
  char *p = mcpr_config_store_path(cfg, NULL, &err);
  assert_string_equal(p, "postgresql://u:pw@db/mcpr");
  free(p);
  /* --db still wins */
  p = mcpr_config_store_path(cfg, "/tmp/x.db", &err);
  assert_string_equal(p, "/tmp/x.db");
  free(p);
  mcpr_config_free(cfg);

  cfg = load("[store]\nurl = \"\"\n", MCPR_EPARSE);
  mcpr_config_free(cfg);
  cfg = load("[store]\npath = \"/a.db\"\nurl = \"postgres://h/db\"\n", MCPR_EPARSE);
  assert_non_null(strstr(mcpr_config_diag_at(cfg, 0)->message, "both set"));
  mcpr_config_free(cfg);
}

static void test_env_url_resolves_as_is(void **state) {
  (void)state;
  setenv("MCPR_DB", "postgres://h:5432/db?sslmode=require", 1);
  mcpr_error err = {0};
  char *p = mcpr_store_resolve_path(NULL, &err);
  assert_string_equal(p, "postgres://h:5432/db?sslmode=require");
  free(p);
  unsetenv("MCPR_DB");
}

static void test_spool_dir_of_a_url_store_is_not_the_url(void **state) {
  (void)state;
  setenv("HOME", "/home/someone", 1);
  char *d = mcpr_cloud_spool_dir("postgresql://u:pw@db.example/mcpr");
  assert_string_equal(d, "/home/someone/.mcpr/cloud-spool");
  free(d);
  d = mcpr_cloud_spool_dir("sqlite:/var/lib/mcpr/store.db");
  assert_string_equal(d, "/var/lib/mcpr/cloud-spool");
  free(d);
  d = mcpr_cloud_spool_dir("/var/lib/mcpr/store.db");
  assert_string_equal(d, "/var/lib/mcpr/cloud-spool");
  free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_store_url_in_config),
      cmocka_unit_test(test_env_url_resolves_as_is),
      cmocka_unit_test(test_spool_dir_of_a_url_store_is_not_the_url),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mcpr.toml: the proxy's top-level keys (SPEC §9) — defaults, units, bad values. */
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

static bool has_diag(const mcpr_config *cfg, mcpr_config_severity sev, const char *needle) {
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++) {
    const mcpr_config_diag *d = mcpr_config_diag_at(cfg, i);
    if (d->severity == sev && strstr(d->message, needle))
      return true;
  }
  return false;
}

static void test_defaults(void **state) {
  (void)state;
  mcpr_config *cfg = load("mcp = \"http://127.0.0.1:9000/mcp\"\n", MCPR_OK);
  assert_null(cfg->listen);
  assert_null(cfg->log_format);
  assert_null(cfg->admin_bind);
  assert_int_equal(cfg->drain_timeout_ms, 30000);
  assert_int_equal(cfg->connect_timeout_ms, 5000);
  assert_int_equal(cfg->request_timeout_ms, 30000);
  assert_int_equal(cfg->max_request_body_size, 5000000);
  assert_int_equal(cfg->max_response_body_size, 10000000);
  assert_int_equal(cfg->max_concurrent_upstream, 100);
  assert_int_equal(cfg->n_allowed_origins, 0);
  mcpr_config_free(cfg);
}

static void test_all_keys(void **state) {
  (void)state;
  mcpr_config *cfg = load("name = \"api\"\nmcp = \"http://127.0.0.1:9000/mcp\"\nport = 3100\n"
                          "listen = \"0.0.0.0:3200\"\nlog_format = \"pretty\"\n"
                          "admin_bind = \"127.0.0.1:9902\"\ndrain_timeout = \"5s\"\n"
                          "connect_timeout = 2\nrequest_timeout = \"1500ms\"\n"
                          "max_request_body_size = \"1MiB\"\nmax_response_body_size = 2048\n"
                          "max_concurrent_upstream = 7\n"
                          "allowed_origins = [\"https://app.example.com\", \"*\"]\n",
                          MCPR_OK);
  assert_int_equal(mcpr_config_diag_count(cfg), 0);
  assert_string_equal(cfg->listen, "0.0.0.0:3200");
  assert_string_equal(cfg->log_format, "pretty");
  assert_string_equal(cfg->admin_bind, "127.0.0.1:9902");
  assert_int_equal(cfg->drain_timeout_ms, 5000);
  assert_int_equal(cfg->connect_timeout_ms, 2000);
  assert_int_equal(cfg->request_timeout_ms, 1500);
  assert_int_equal(cfg->max_request_body_size, 1048576);
  assert_int_equal(cfg->max_response_body_size, 2048);
  assert_int_equal(cfg->max_concurrent_upstream, 7);
  assert_int_equal(cfg->n_allowed_origins, 2);
  assert_string_equal(cfg->allowed_origins[0], "https://app.example.com");
  assert_string_equal(cfg->allowed_origins[1], "*");
  mcpr_config_free(cfg);
  cfg = load("max_request_body_size = \"5MB\"\nmax_response_body_size = \"1 GiB\"\n", MCPR_OK);
  assert_int_equal(cfg->max_request_body_size, 5000000);
  assert_int_equal(cfg->max_response_body_size, 1073741824);
  mcpr_config_free(cfg);
}

static void test_bad_values_are_errors_naming_the_key(void **state) {
  (void)state;
  mcpr_config *cfg = load("log_format = \"xml\"\ndrain_timeout = \"soon\"\nrequest_timeout = 0\n"
                          "max_request_body_size = \"5 parsecs\"\nmax_response_body_size = -1\n"
                          "max_concurrent_upstream = 0\nallowed_origins = [1]\n"
                          "connect_timeout = true\n",
                          MCPR_EPARSE);
  assert_int_equal(mcpr_config_error_count(cfg), 8);
  assert_true(has_diag(cfg, MCPR_CONFIG_ERROR, "log_format must be"));
  assert_true(has_diag(cfg, MCPR_CONFIG_ERROR, "drain_timeout must be a duration"));
  assert_true(has_diag(cfg, MCPR_CONFIG_ERROR, "request_timeout must be between"));
  assert_true(has_diag(cfg, MCPR_CONFIG_ERROR, "max_request_body_size must be a size"));
  assert_true(has_diag(cfg, MCPR_CONFIG_ERROR, "max_response_body_size must be a size"));
  assert_true(has_diag(cfg, MCPR_CONFIG_ERROR, "max_concurrent_upstream must be between"));
  assert_true(has_diag(cfg, MCPR_CONFIG_ERROR, "allowed_origins must be an array of strings"));
  assert_true(has_diag(cfg, MCPR_CONFIG_ERROR, "connect_timeout must be a duration"));
  /* a bad value leaves the default in place */
  assert_int_equal(cfg->drain_timeout_ms, 30000);
  assert_null(cfg->log_format);
  mcpr_config_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_all_keys),
      cmocka_unit_test(test_bad_values_are_errors_naming_the_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

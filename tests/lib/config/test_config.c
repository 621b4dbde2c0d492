/* mcpr.toml: validation rules of SPEC §9, store path resolution, and the in-place [cloud] writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

static mcpr_config *load(const char *text, mcpr_status want) {
  mcpr_config *cfg = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_config_load_string(text, strlen(text), "mcpr.toml", &cfg, &err), want);
  assert_non_null(cfg);
  return cfg;
}

static const mcpr_config_diag *find_diag(const mcpr_config *cfg, const char *needle) {
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++)
    if (strstr(mcpr_config_diag_at(cfg, i)->message, needle))
      return mcpr_config_diag_at(cfg, i);
  return NULL;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = calloc(1, 65536);
  size_t n = fread(buf, 1, 65535, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_full_config_and_defaults(void **state) {
  (void)state;
  mcpr_config *cfg = load("name = \"api\"\nmcp = \"http://localhost:9000/mcp\"\nport = 3000\n"
                          "[store]\nenabled = false\npath = \"/data/s.db\"\nname = \"main\"\n"
                          "[cloud]\ntoken = \"mcpr_abc\"\nserver = \"srv\"\n"
                          "endpoint = \"https://staging.mcpr.app\"\nbatch_size = 50\n"
                          "flush_interval_ms = 1000\n",
                          MCPR_OK);
  assert_string_equal(cfg->name, "api");
  assert_string_equal(cfg->mcp, "http://localhost:9000/mcp");
  assert_int_equal(cfg->port, 3000);
  assert_false(cfg->store.enabled);
  assert_string_equal(cfg->store.path, "/data/s.db");
  assert_string_equal(cfg->store.name, "main");
  assert_string_equal(cfg->cloud.token, "mcpr_abc");
  assert_string_equal(cfg->cloud.server, "srv");
  assert_string_equal(mcpr_config_cloud_endpoint(cfg), "https://staging.mcpr.app");
  assert_int_equal(cfg->cloud.batch_size, 50);
  assert_int_equal(cfg->cloud.flush_interval_ms, 1000);
  assert_int_equal(mcpr_config_diag_count(cfg), 0);
  mcpr_config_free(cfg);

  cfg = load("", MCPR_OK);
  assert_true(cfg->store.enabled);
  assert_null(cfg->store.path);
  assert_int_equal(cfg->cloud.batch_size, 100);
  assert_int_equal(cfg->cloud.flush_interval_ms, 5000);
  assert_string_equal(mcpr_config_cloud_endpoint(cfg), "https://api.mcpr.app");
  mcpr_config_free(cfg);

  /* dotted keys and inline tables are the same config */
  cfg = load("store.path = \"/x\"\ncloud = { server = \"s\", batch_size = 7 }\n", MCPR_OK);
  assert_string_equal(cfg->store.path, "/x");
  assert_string_equal(cfg->cloud.server, "s");
  assert_int_equal(cfg->cloud.batch_size, 7);
  mcpr_config_free(cfg);
}

static void test_empty_strings_exact_messages(void **state) {
  (void)state;
  mcpr_config *cfg = load("[store]\npath = \"\"\nname = \"\"\n", MCPR_EPARSE);
  const mcpr_config_diag *d = find_diag(cfg, "store.path");
  assert_non_null(d);
  assert_string_equal(d->message, "store.path cannot be an empty string — remove the key to use "
                                  "the platform default, or set a valid path");
  assert_int_equal(d->line, 2);
  d = find_diag(cfg, "store.name");
  assert_non_null(d);
  assert_string_equal(d->message, "store.name cannot be an empty string — remove the key to use "
                                  "the platform default, or set a valid name");
  assert_int_equal(d->line, 3);
  assert_int_equal(mcpr_config_error_count(cfg), 2);
  mcpr_config_free(cfg);
}

static void test_unknown_keys_warn_wrong_types_fail(void **state) {
  (void)state;
  mcpr_error err = {0};
  mcpr_config *cfg = NULL;
  const char *text = "name = \"x\"\ncolour = 1\n[store]\nenabled = \"yes\"\ncompress = \"7d\"\n"
                     "[cloud]\nbatch_size = \"10\"\nflush_interval_ms = -1\ntoken = 5\n"
                     "[extra]\nz = 1\n";
  assert_int_equal(mcpr_config_load_string(text, strlen(text), "mcpr.toml", &cfg, &err),
                   MCPR_EPARSE);
  /* err names the first error with its place */
  assert_non_null(strstr(err.message, "mcpr.toml:4:11: store.enabled must be a boolean"));
  const mcpr_config_diag *d = find_diag(cfg, "unknown key 'colour'");
  assert_non_null(d);
  assert_int_equal(d->severity, MCPR_CONFIG_WARNING);
  assert_int_equal(d->line, 2);
  d = find_diag(cfg, "unknown key 'store.compress'");
  assert_non_null(d);
  assert_int_equal(d->line, 5);
  d = find_diag(cfg, "unknown key 'extra'");
  assert_non_null(d);
  assert_int_equal(d->line, 10);
  d = find_diag(cfg, "cloud.batch_size must be an integer, not a string");
  assert_non_null(d);
  assert_int_equal(d->severity, MCPR_CONFIG_ERROR);
  assert_int_equal(d->line, 7);
  assert_non_null(find_diag(cfg, "cloud.flush_interval_ms must be between 1 and"));
  assert_non_null(find_diag(cfg, "cloud.token must be a string, not an integer"));
  assert_int_equal(mcpr_config_error_count(cfg), 4);
  /* in file order */
  for (size_t i = 1; i < mcpr_config_diag_count(cfg); i++)
    assert_true(mcpr_config_diag_at(cfg, i - 1)->line <= mcpr_config_diag_at(cfg, i)->line);
  mcpr_config_free(cfg);

  /* only warnings: usable */
  cfg = load("whatever = 1\n", MCPR_OK);
  assert_int_equal(mcpr_config_diag_count(cfg), 1);
  mcpr_config_free(cfg);
  cfg = load("store = 5\n", MCPR_EPARSE);
  assert_non_null(find_diag(cfg, "store must be a table"));
  mcpr_config_free(cfg);
}

static void test_syntax_error_has_line_and_column(void **state) {
  (void)state;
  mcpr_config *cfg = NULL;
  mcpr_error err = {0};
  const char *text = "name = \"x\"\n[cloud]\ntoken = \"abc\n";
  assert_int_equal(mcpr_config_load_string(text, strlen(text), "f.toml", &cfg, &err), MCPR_EPARSE);
  assert_non_null(strstr(err.message, "f.toml:3:13: unterminated string"));
  assert_int_equal(mcpr_config_diag_at(cfg, 0)->line, 3);
  mcpr_config_free(cfg);
}

/* [store] retention, keep_errors, rollup_retention: durations, the
 * defaults, the checks between them (each naming its key and line), and
 * the store options they become. */
static void test_store_retention(void **state) {
  (void)state;
  mcpr_error err = {0};
  mcpr_config *cfg = NULL;
  const char *ok = "[store]\nretention = \"30d\"\nkeep_errors = \"90d\"\n";
  assert_int_equal(mcpr_config_load_string(ok, strlen(ok), "mcpr.toml", &cfg, &err), MCPR_OK);
  assert_int_equal(cfg->store.retention_ms, INT64_C(30) * 86400000);
  assert_int_equal(cfg->store.keep_errors_ms, INT64_C(90) * 86400000);
  assert_int_equal(cfg->store.rollup_retention_ms, INT64_C(400) * 86400000);
  mcpr_store_options so;
  mcpr_store_options_init(&so);
  mcpr_config_store_options(cfg, &so);
  assert_int_equal(so.retention_ms, INT64_C(30) * 86400000);
  assert_int_equal(so.keep_errors_ms, INT64_C(90) * 86400000);
  assert_int_equal(so.rollup_retention_ms, INT64_C(400) * 86400000);
  mcpr_config_free(cfg);

  /* Without retention nothing is deleted, whatever the default says. */
  const char *none = "[store]\nenabled = true\n";
  assert_int_equal(mcpr_config_load_string(none, strlen(none), "mcpr.toml", &cfg, &err), MCPR_OK);
  mcpr_store_options_init(&so);
  mcpr_config_store_options(cfg, &so);
  assert_int_equal(so.retention_ms, 0);
  assert_int_equal(so.rollup_retention_ms, 0);
  mcpr_config_free(cfg);

  /* A retention longer than the default rollup_retention raises it. */
  const char *lng = "[store]\nretention = \"500d\"\n";
  assert_int_equal(mcpr_config_load_string(lng, strlen(lng), "mcpr.toml", &cfg, &err), MCPR_OK);
  mcpr_store_options_init(&so);
  mcpr_config_store_options(cfg, &so);
  assert_int_equal(so.rollup_retention_ms, INT64_C(500) * 86400000);
  mcpr_config_free(cfg);

  const char *bad = "[store]\nretention = \"30 days\"\nkeep_errors = 90\nrollup_retention = \"-1d\"\n";
  assert_int_equal(mcpr_config_load_string(bad, strlen(bad), "mcpr.toml", &cfg, &err),
                   MCPR_EPARSE);
  assert_non_null(strstr(err.message, "mcpr.toml:2:13: store.retention must be a duration"));
  const mcpr_config_diag *d = find_diag(cfg, "store.keep_errors must be a duration");
  assert_non_null(d);
  assert_int_equal(d->line, 3);
  d = find_diag(cfg, "store.rollup_retention must be a duration");
  assert_non_null(d);
  assert_int_equal(d->line, 4);
  assert_int_equal(mcpr_config_error_count(cfg), 3);
  mcpr_config_free(cfg);

  const char *order = "[store]\nretention = \"30d\"\nkeep_errors = \"7d\"\n"
                      "rollup_retention = \"10d\"\n";
  assert_int_equal(mcpr_config_load_string(order, strlen(order), "mcpr.toml", &cfg, &err),
                   MCPR_EPARSE);
  d = find_diag(cfg, "store.keep_errors must be at least store.retention");
  assert_non_null(d);
  assert_int_equal(d->line, 3);
  d = find_diag(cfg, "store.rollup_retention must be at least store.retention");
  assert_non_null(d);
  assert_int_equal(d->line, 4);
  mcpr_config_free(cfg);

  const char *alone = "[store]\nkeep_errors = \"7d\"\n";
  assert_int_equal(mcpr_config_load_string(alone, strlen(alone), "mcpr.toml", &cfg, &err),
                   MCPR_EPARSE);
  d = find_diag(cfg, "store.keep_errors needs store.retention");
  assert_non_null(d);
  assert_int_equal(d->line, 2);
  mcpr_config_free(cfg);

  /* The store refuses what the config would have refused. */
  mcpr_store_options_init(&so);
  so.retention_ms = 1000;
  so.keep_errors_ms = 10;
  mcpr_store *st = NULL;
  assert_int_equal(mcpr_store_open(&st, "/nonexistent-dir/never.db", &so, &err), MCPR_EINVAL);
  assert_null(st);
}

static void test_files_and_store_path(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *old = getcwd(NULL, 0);
  char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
  char *mdb = getenv("MCPR_DB") ? strdup(getenv("MCPR_DB")) : NULL;
  assert_int_equal(chdir(dir), 0);
  mcpr_config *cfg = NULL;
  mcpr_error err = {0};
  /* missing default: defaults, not an error; missing explicit: error */
  assert_int_equal(mcpr_config_load(NULL, &cfg, &err), MCPR_OK);
  assert_false(cfg->file_exists);
  mcpr_config_free(cfg);
  assert_int_equal(mcpr_config_load("nope.toml", &cfg, &err), MCPR_ENOTFOUND);
  assert_null(cfg);
  assert_non_null(strstr(err.message, "nope.toml"));
  /* store path: config → MCPR_DB → ~/.mcpr/store.db; --db wins */
  setenv("HOME", dir, 1);
  unsetenv("MCPR_DB");
  write_file("mcpr.toml", "[store]\npath = \"~/data/x.db\"\n");
  assert_int_equal(mcpr_config_load(NULL, &cfg, &err), MCPR_OK);
  assert_true(cfg->file_exists);
  char *p = mcpr_config_store_path(cfg, NULL, &err);
  char want[4096];
  snprintf(want, sizeof want, "%s/data/x.db", dir);
  assert_string_equal(p, want);
  free(p);
  p = mcpr_config_store_path(cfg, "/override.db", &err);
  assert_string_equal(p, "/override.db");
  free(p);
  mcpr_config_free(cfg);
  write_file("mcpr.toml", "name = \"x\"\n");
  assert_int_equal(mcpr_config_load(NULL, &cfg, &err), MCPR_OK);
  setenv("MCPR_DB", "/env/store.db", 1);
  p = mcpr_config_store_path(cfg, NULL, &err);
  assert_string_equal(p, "/env/store.db");
  free(p);
  unsetenv("MCPR_DB");
  p = mcpr_config_store_path(cfg, NULL, &err);
  snprintf(want, sizeof want, "%s/.mcpr/store.db", dir);
  assert_string_equal(p, want);
  free(p);
  mcpr_config_free(cfg);
  /* a too-large file */
  FILE *f = fopen("big.toml", "w");
  for (int i = 0; i < 70000; i++)
    fputs("# padding padding\n", f);
  fclose(f);
  assert_int_equal(mcpr_config_load("big.toml", &cfg, &err), MCPR_ETOOBIG);
  assert_null(cfg);

  assert_int_equal(chdir(old), 0);
  free(old);
  if (home)
    setenv("HOME", home, 1);
  if (mdb)
    setenv("MCPR_DB", mdb, 1);
  free(home);
  free(mdb);
  tu_rmdir(dir);
}

static char *set_text(const char *in, const char *token, const char *server, const char *endpoint,
                      mcpr_status want) {
  char *out = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_config_set_cloud_text(in, strlen(in), token, server, endpoint, &out, &err),
                   want);
  return out;
}

static void test_writer_keeps_everything_else(void **state) {
  (void)state;
  const char *in = "# mcpr config — hand written\n"
                   "name = \"api\"   # the proxy\n"
                   "\n"
                   "[cloud]\n"
                   "# my server\n"
                   "server = \"old\"  # keep this comment\n"
                   "batch_size = 10\n"
                   "\n"
                   "[store]\n"
                   "path = \"/x.db\"\n";
  char *out = set_text(in, "mcpr_new\"token\\", "new-srv", NULL, MCPR_OK);
  assert_string_equal(out, "# mcpr config — hand written\n"
                           "name = \"api\"   # the proxy\n"
                           "\n"
                           "[cloud]\n"
                           "# my server\n"
                           "server = \"new-srv\"  # keep this comment\n"
                           "batch_size = 10\n"
                           "token = \"mcpr_new\\\"token\\\\\"\n"
                           "\n"
                           "[store]\n"
                           "path = \"/x.db\"\n");
  /* again: values replaced where they stand, nothing added */
  char *again = set_text(out, "mcpr_2", "s2", "http://127.0.0.1:1", MCPR_OK);
  assert_non_null(strstr(again, "server = \"s2\"  # keep this comment\n"));
  assert_non_null(strstr(again, "token = \"mcpr_2\"\n"));
  assert_non_null(strstr(again, "batch_size = 10\ntoken = \"mcpr_2\"\nendpoint = \"http://127.0.0.1:1\"\n"));
  free(again);
  free(out);
}

static void test_writer_adds_cloud_table(void **state) {
  (void)state;
  char *out = set_text("name = \"api\"\n[store]\nenabled = true", "mcpr_t", "srv", NULL, MCPR_OK);
  assert_string_equal(out, "name = \"api\"\n[store]\nenabled = true\n\n[cloud]\ntoken = \"mcpr_t\"\n"
                           "server = \"srv\"\n");
  free(out);
  out = set_text("", "mcpr_t", "srv", "https://e.example", MCPR_OK);
  assert_string_equal(out, "[cloud]\ntoken = \"mcpr_t\"\nserver = \"srv\"\nendpoint = \"https://e.example\"\n");
  free(out);
  /* an empty [cloud] section in the middle: keys go right under its header */
  out = set_text("[cloud]\n# nothing yet\n[store]\npath = \"p\"\n", "mcpr_t", NULL, NULL, MCPR_OK);
  assert_string_equal(out, "[cloud]\ntoken = \"mcpr_t\"\n# nothing yet\n[store]\npath = \"p\"\n");
  free(out);
  /* dotted style at the top level is continued in the same style */
  out = set_text("cloud.server = \"s\"\nname = \"n\"\n", "mcpr_t", NULL, NULL, MCPR_OK);
  assert_string_equal(out, "cloud.server = \"s\"\ncloud.token = \"mcpr_t\"\nname = \"n\"\n");
  free(out);
  /* inline table: an existing value is replaced, a new key is refused */
  out = set_text("cloud = { server = \"a\" }\n", NULL, "b", NULL, MCPR_OK);
  assert_string_equal(out, "cloud = { server = \"b\" }\n");
  free(out);
  assert_null(set_text("cloud = { server = \"a\" }\n", "mcpr_t", NULL, NULL, MCPR_EINVAL));
  /* a broken file is not touched */
  assert_null(set_text("[cloud\n", "mcpr_t", NULL, NULL, MCPR_EPARSE));
}

static void test_writer_file_modes(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "mcpr.toml");
  mcpr_error err = {0};
  write_file(path, "# keep me\nname = \"x\"\n");
  chmod(path, 0644);
  /* no token: the mode is kept */
  assert_int_equal(mcpr_config_set_cloud(path, NULL, "srv", NULL, &err), MCPR_OK);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0644);
  /* a token: 0600 */
  assert_int_equal(mcpr_config_set_cloud(path, "mcpr_secret_value_1234", NULL, NULL, &err), MCPR_OK);
  assert_int_equal(stat(path, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  char *text = read_file(path);
  assert_string_equal(text, "# keep me\nname = \"x\"\n\n[cloud]\nserver = \"srv\"\ntoken = \"mcpr_secret_value_1234\"\n");
  free(text);
  /* no temp file left beside it */
  char *ls = tu_path(dir, ".mcpr.toml.tmp-*");
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "ls %s >/dev/null 2>&1", ls);
  assert_int_not_equal(system(cmd), 0);
  free(ls);
  /* a missing file is created, 0600 with a token */
  char *fresh = tu_path(dir, "new.toml");
  assert_int_equal(mcpr_config_set_cloud(fresh, "mcpr_secret_value_1234", "s", NULL, &err), MCPR_OK);
  assert_int_equal(stat(fresh, &sb), 0);
  assert_int_equal(sb.st_mode & 0777, 0600);
  /* a broken file is left as it was */
  write_file(path, "[cloud\n");
  assert_int_equal(mcpr_config_set_cloud(path, "mcpr_secret_value_1234", NULL, NULL, &err), MCPR_EPARSE);
  text = read_file(path);
  assert_string_equal(text, "[cloud\n");
  free(text);
  free(fresh);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_config_and_defaults),
      cmocka_unit_test(test_empty_strings_exact_messages),
      cmocka_unit_test(test_unknown_keys_warn_wrong_types_fail),
      cmocka_unit_test(test_syntax_error_has_line_and_column),
      cmocka_unit_test(test_store_retention),
      cmocka_unit_test(test_files_and_store_path),
      cmocka_unit_test(test_writer_keeps_everything_else),
      cmocka_unit_test(test_writer_adds_cloud_table),
      cmocka_unit_test(test_writer_file_modes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

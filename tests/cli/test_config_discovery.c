/* Which config and store a command uses, end to end, as the original: the
 * global -c/--config FILE before or after the command, else ./mcpr.toml
 * in the working directory, read by every command; the store is --db,
 * else that config's [store] path, else $MCPR_DB, else ~/.mcpr/store.db.
 * An explicit config that does not exist is an error; a missing
 * ./mcpr.toml is fine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_check.h"
#include "store_fixtures.h"
#include "testutil.h"

static char *dir, *home, *env_home, *env_db;

/* A store at path holding one request to tool `tool`. */
static void make_store(const char *path, const char *tool) {
  mcpr_store *s = sf_open(path, 0, 0);
  char id[MCPR_UUID_STRLEN + 1];
  int64_t ts = mcpr_now_ms() - 1000;
  mcpr_uuid_v7(ts, id);
  mcpr_store_event e = sf_request(id, ts, NULL);
  e.u.request.tool = tool;
  sf_record(s, e);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
}

static char *path_in(const char *name) { return tu_path(dir, name); }

static int setup(void **state) {
  (void)state;
  dir = tu_tmpdir();
  home = path_in("home");
  assert_int_equal(mkdir(home, 0700), 0);
  char *data = path_in("data");
  assert_int_equal(mkdir(data, 0700), 0);
  free(data);
  static const char *const stores[][2] = {
      {"data/cfg.db", "from-cwd-config"}, {"flag.db", "from-flag"},
      {"env.db", "from-env"},             {"alt.db", "from-alt-config"},
  };
  for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
    char *p = path_in(stores[i][0]);
    make_store(p, stores[i][1]);
    free(p);
  }
  char *cfg = path_in("mcpr.toml");
  tu_write_text(cfg, "name = \"api\"\n[store]\npath = \"data/cfg.db\"\n");
  free(cfg);
  char *alt = path_in("alt.toml"), *alt_db = path_in("alt.db"), text[4096];
  snprintf(text, sizeof text, "[store]\npath = \"%s\"\n", alt_db);
  tu_write_text(alt, text);
  free(alt);
  free(alt_db);
  char *empty = path_in("empty");
  assert_int_equal(mkdir(empty, 0700), 0);
  free(empty);
  char *broken = path_in("broken");
  assert_int_equal(mkdir(broken, 0700), 0);
  char *broken_cfg = tu_path(broken, "mcpr.toml");
  tu_write_text(broken_cfg, "[store]\npath = \"x.db\"\nport = = 3\n");
  free(broken_cfg);
  free(broken);
  size_t n = strlen(home) + 8;
  env_home = malloc(n);
  snprintf(env_home, n, "HOME=%s", home);
  char *env = path_in("env.db");
  n = strlen(env) + 16;
  env_db = malloc(n);
  snprintf(env_db, n, "MCPR_DB=%s", env);
  free(env);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  free(env_home);
  free(env_db);
  free(home);
  tu_rmdir(dir);
  return 0;
}

/* mcpr args... in dir/sub (NULL: dir), HOME in the fixture, MCPR_DB unset
 * unless with_env_db. */
static void run_in(cli_result *r, const char *sub, bool with_env_db, const char *const *args) {
  char *cwd = sub ? path_in(sub) : strdup(dir);
  const char *env[] = {env_home, with_env_db ? env_db : NULL, NULL};
  const char *unset[] = {with_env_db ? NULL : "MCPR_DB", NULL};
  cli_spec spec = {.args = args, .env = env, .unset = unset, .cwd = cwd};
  cli_run(&spec, r);
  free(cwd);
}

#define RUN_IN(r, sub, env_db_on, ...)                                                  \
  do {                                                                                  \
    const char *const a_[] = {__VA_ARGS__, NULL};                                       \
    run_in(r, sub, env_db_on, a_);                                                      \
  } while (0)

/* The tool of the one log row printed as NDJSON. */
static void expect_tool(cli_result *r, const char *tool) {
  if (r->exit_code != 0)
    fail_msg("exit %d, stderr:\n%s", r->exit_code, r->err);
  assert_int_equal(nd_count(r->out), 1);
  json_t *o = nd_line(r->out, 0);
  assert_string_equal(js(o, "tool"), tool);
  json_decref(o);
  cli_result_free(r);
}

static void test_cwd_config_is_read(void **state) {
  (void)state;
  cli_result r;
  RUN_IN(&r, NULL, false, "proxy", "logs", "--json");
  expect_tool(&r, "from-cwd-config");
  /* [store] path beats $MCPR_DB (the original's resolve_db_path order)... */
  RUN_IN(&r, NULL, true, "proxy", "logs", "--json");
  expect_tool(&r, "from-cwd-config");
  /* ...and --db beats both. */
  char *flag = path_in("flag.db");
  RUN_IN(&r, NULL, true, "proxy", "logs", "--json", "--db", flag);
  expect_tool(&r, "from-flag");
  RUN_IN(&r, NULL, true, "--db", flag, "proxy", "logs", "--json");
  expect_tool(&r, "from-flag");
  free(flag);
  /* No ./mcpr.toml: fine, $MCPR_DB. */
  RUN_IN(&r, "empty", true, "proxy", "logs", "--json");
  expect_tool(&r, "from-env");
}

/* config check shows the store the read commands use. */
static void test_config_check_agrees(void **state) {
  (void)state;
  cli_result r;
  RUN_IN(&r, NULL, true, "config", "check");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "data/cfg.db"));
  cli_result_free(&r);
  RUN_IN(&r, NULL, true, "store", "stats", "--json");
  assert_int_equal(r.exit_code, 0);
  json_t *o = nd_line(r.out, 0);
  assert_non_null(strstr(js(o, "path"), "data/cfg.db"));
  assert_int_equal(ji(o, "total_requests"), 1);
  json_decref(o);
  cli_result_free(&r);
}

static void test_global_config_flag_anywhere(void **state) {
  (void)state;
  static const char *const forms[][6] = {
      {"-c", "alt.toml", "proxy", "logs", "--json", NULL},
      {"proxy", "logs", "-c", "alt.toml", "--json", NULL},
      {"proxy", "logs", "--json", "--config", "alt.toml", NULL},
      {"--config=alt.toml", "proxy", "logs", "--json", NULL},
      {"proxy", "--config", "alt.toml", "logs", "--json", NULL},
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    cli_result r;
    run_in(&r, NULL, true, forms[i]);
    expect_tool(&r, "from-alt-config");
  }
  /* Every read command takes it. */
  cli_result r;
  RUN_IN(&r, NULL, false, "proxy", "status", "--json", "-c", "alt.toml");
  assert_int_equal(r.exit_code, 0);
  json_t *o = nd_line(r.out, 0);
  assert_int_equal(ji(o, "total_requests"), 1);
  assert_string_equal(js(json_array_get(json_object_get(o, "tools"), 0), "label"),
                      "from-alt-config");
  json_decref(o);
  cli_result_free(&r);
  RUN_IN(&r, NULL, false, "-c", "alt.toml", "config", "check");
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "alt.db"));
  cli_result_free(&r);
}

static void test_config_errors(void **state) {
  (void)state;
  cli_result r;
  /* An explicit config that does not exist is an error, not the defaults. */
  RUN_IN(&r, NULL, true, "-c", "missing.toml", "proxy", "logs");
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "missing.toml does not exist"));
  assert_int_equal(r.out_len, 0);
  cli_result_free(&r);
  RUN_IN(&r, NULL, true, "proxy", "logs", "-c", "missing.toml", "--db", "flag.db");
  assert_int_equal(r.exit_code, 1);
  cli_result_free(&r);
  /* Twice, or without a value: usage errors. */
  RUN_IN(&r, NULL, true, "-c", "alt.toml", "proxy", "logs", "--config", "mcpr.toml");
  assert_int_equal(r.exit_code, 2);
  cli_result_free(&r);
  RUN_IN(&r, NULL, true, "proxy", "logs", "-c");
  assert_int_equal(r.exit_code, 2);
  cli_result_free(&r);
  RUN_IN(&r, NULL, true, "proxy", "logs", "--config=");
  assert_int_equal(r.exit_code, 2);
  cli_result_free(&r);
  /* A ./mcpr.toml that does not parse: its store is unknown, so say why
   * (with the line) rather than read another store... */
  RUN_IN(&r, "broken", true, "proxy", "logs", "--json");
  assert_int_equal(r.exit_code, 1);
  assert_non_null(strstr(r.err, "mcpr.toml:3:"));
  assert_int_equal(r.out_len, 0);
  cli_result_free(&r);
  /* ...unless --db names the store. */
  char *flag = path_in("flag.db");
  RUN_IN(&r, "broken", true, "proxy", "logs", "--json", "--db", flag);
  expect_tool(&r, "from-flag");
  free(flag);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cwd_config_is_read),
      cmocka_unit_test(test_config_check_agrees),
      cmocka_unit_test(test_global_config_flag_anywhere),
      cmocka_unit_test(test_config_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

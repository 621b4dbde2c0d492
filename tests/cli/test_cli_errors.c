/* Errors and help of every observability command, end to end: usage
 * errors (exit 2, naming the flag), a missing store (exit 1, one line,
 * nothing created), a store from the future or a file that is not one
 * (exit 1, file unchanged), the global --db anywhere on the line, help
 * (exit 0), and reads that still answer while a writer holds the lock. */
#include <dirent.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/query/query_fixture.h"
#include "cli_check.h"
#include "store_fixtures.h"
#include "fx_store.h"
#include "testutil.h"

/* ---------- tests ---------- */

/* Every command that reads (or vacuums) the store, with the least it needs. */
static const char *const COMMANDS[][6] = {
    {"proxy", "logs", NULL},
    {"proxy", "slow", NULL},
    {"proxy", "sessions", NULL},
    {"proxy", "session", "sess-alpha-2", NULL},
    {"proxy", "clients", NULL},
    {"proxy", "status", NULL},
    {"proxy", "schema", NULL},
    {"proxy", "schema", "--changes", NULL},
    {"proxy", "schema", "--unused", NULL},
    {"store", "stats", NULL},
    {"store", "vacuum", "--before", "1d", "--dry-run", NULL},
    {"store", "vacuum", "--before", "1d", NULL},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

/* Run command c with extra arguments after it; env/unset as in cli_spec. */
static void run_cmd(cli_result *r, const char *db, size_t c, const char *const *extra,
                    const char *const *env, const char *const *unset) {
  const char *argv[32];
  size_t n = 0;
  if (db) {
    argv[n++] = "--db";
    argv[n++] = db;
  }
  for (size_t k = 0; COMMANDS[c][k]; k++)
    argv[n++] = COMMANDS[c][k];
  for (const char *const *a = extra; a && *a && n < 31; a++)
    argv[n++] = *a;
  argv[n] = NULL;
  cli_spec spec = {.args = argv, .env = env, .unset = unset};
  cli_run(&spec, r);
}

static const char *cmd_name(size_t c, char *buf, size_t n) {
  snprintf(buf, n, "%s %s %s", COMMANDS[c][0], COMMANDS[c][1],
           COMMANDS[c][2] ? COMMANDS[c][2] : "");
  return buf;
}

static void expect_usage(const cli_result *r, const char *what, const char *needle) {
  if (r->exit_code != 2 || !strstr(r->err, needle) || !strstr(r->err, "usage"))
    fail_msg("%s: exit %d (want 2), stderr should name %s:\n%s", what, r->exit_code, needle,
             r->err);
  if (r->out_len)
    fail_msg("%s: usage error printed on stdout:\n%s", what, r->out);
}

static void test_unknown_flag(void **state) {
  (void)state;
  char name[64];
  for (size_t c = 0; c < NCOMMANDS; c++) {
    cli_result r;
    const char *const extra[] = {"--bogus", NULL};
    run_cmd(&r, fx_path, c, extra, NULL, NULL);
    expect_usage(&r, cmd_name(c, name, sizeof name), "--bogus");
    char want[64];
    snprintf(want, sizeof want, "mcpr %s %s", COMMANDS[c][0], COMMANDS[c][1]);
    assert_non_null(strstr(r.err, want)); /* the command's own usage */
    cli_result_free(&r);
    const char *const extra2[] = {"-z", NULL};
    run_cmd(&r, fx_path, c, extra2, NULL, NULL);
    expect_usage(&r, cmd_name(c, name, sizeof name), "-z");
    cli_result_free(&r);
  }
  /* Unknown commands, groups and global options. */
  static const char *const bad[][3] = {
      {"proxy", "nope", NULL}, {"store", "nope", NULL}, {"nope", NULL, NULL},
      {"--bogus", NULL, NULL}, {"proxy", NULL, NULL},   {"store", NULL, NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cli_result r;
    const char *argv[6] = {"--db", fx_path};
    size_t n = 2;
    for (size_t k = 0; k < 3 && bad[i][k]; k++)
      argv[n++] = bad[i][k];
    argv[n] = NULL;
    cli_spec spec = {.args = argv};
    cli_run(&spec, &r);
    if (r.exit_code != 2 || !r.err_len || r.out_len)
      fail_msg("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", bad[i][0], bad[i][1] ? bad[i][1] : "",
               r.exit_code, r.out, r.err);
    cli_result_free(&r);
  }
  cli_result r;
  cli_runv(&r, NULL);
  assert_int_equal(r.exit_code, 2);
  assert_non_null(strstr(r.err, "usage"));
  cli_result_free(&r);
  cli_runv(&r, "proxy", "logs", "--db", NULL);
  assert_int_equal(r.exit_code, 2);
  assert_non_null(strstr(r.err, "--db"));
  cli_result_free(&r);
}

static void test_bad_values(void **state) {
  (void)state;
  static const struct {
    const char *args[8];
    const char *flag;
  } cases[] = {
      {{"proxy", "logs", "--since", "5x"}, "--since"},
      {{"proxy", "logs", "--since", "0h"}, "--since"},
      {{"proxy", "logs", "--since", "-1h"}, "--since"},
      {{"proxy", "logs", "--since", "h"}, "--since"},
      {{"proxy", "logs", "--since", ""}, "--since"},
      {{"proxy", "logs", "--since", "1.5h"}, "--since"},
      {{"proxy", "logs", "--since", "99999999999999999999d"}, "--since"},
      {{"proxy", "logs", "--since", "99999999999999999w"}, "--since"},
      {{"proxy", "logs", "--tail", "0"}, "--tail"},
      {{"proxy", "logs", "--tail", "-3"}, "--tail"},
      {{"proxy", "logs", "--tail", "abc"}, "--tail"},
      {{"proxy", "logs", "--tail", "5x"}, "--tail"},
      {{"proxy", "logs", "--tail", "0x10"}, "--tail"},
      {{"proxy", "logs", "--tail", ""}, "--tail"},
      {{"proxy", "logs", "--tail", "99999999999999999999"}, "--tail"},
      {{"proxy", "logs", "--tail=-1"}, "--tail"},
      {{"proxy", "logs", "--tail"}, "--tail"}, /* missing value */
      {{"proxy", "slow", "--since", "5x"}, "--since"},
      {{"proxy", "slow", "--limit", "abc"}, "--limit"},
      {{"proxy", "slow", "--limit", "0"}, "--limit"},
      {{"proxy", "slow", "--limit", "-3"}, "--limit"},
      {{"proxy", "slow", "--limit", "99999999999999999999"}, "--limit"},
      {{"proxy", "slow", "--threshold", "fast"}, "--threshold"},
      {{"proxy", "slow", "--threshold", "-5ms"}, "--threshold"},
      {{"proxy", "sessions", "--since", "5x"}, "--since"},
      {{"proxy", "sessions", "--limit", "abc"}, "--limit"},
      {{"proxy", "sessions", "--limit", "0"}, "--limit"},
      {{"proxy", "sessions", "--limit", "-3"}, "--limit"},
      {{"proxy", "sessions", "--limit", "99999999999999999999"}, "--limit"},
      {{"proxy", "clients", "--since", "5x"}, "--since"},
      {{"proxy", "clients", "--since", "-7d"}, "--since"},
      {{"proxy", "status", "--since", "5x"}, "--since"},
      {{"proxy", "status", "--since", "99999999999999999999s"}, "--since"},
      {{"proxy", "schema", "--unused", "--since", "5x"}, "--since"},
      {{"proxy", "schema", "--changes", "--limit", "abc"}, "--limit"},
      {{"proxy", "schema", "--changes", "--limit", "0"}, "--limit"},
      {{"proxy", "schema", "--changes", "--limit", "-3"}, "--limit"},
      {{"proxy", "schema", "--changes", "--limit", "99999999999999999999"}, "--limit"},
      {{"store", "vacuum", "--before", "5x"}, "--before"},
      {{"store", "vacuum", "--before", "0d"}, "--before"},
      {{"store", "vacuum", "--before", "-1d", "--dry-run"}, "--before"},
      {{"store", "vacuum"}, "--before"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_result r;
    run_on(&r, fx_path, cases[i].args);
    char what[128];
    snprintf(what, sizeof what, "case %zu (%s %s %s)", i, cases[i].args[1],
             cases[i].args[2] ? cases[i].args[2] : "",
             cases[i].args[2] && cases[i].args[3] ? cases[i].args[3] : "");
    expect_usage(&r, what, cases[i].flag);
    cli_result_free(&r);
  }
  /* A bad duration names the accepted forms. */
  cli_result r;
  RUN(&r, "proxy", "status", "--since", "5x");
  assert_non_null(strstr(r.err, "s, m, h, d, w"));
  cli_result_free(&r);
  /* Surrounding spaces are allowed in a duration. */
  RUN(&r, "proxy", "status", "--since", " 2h ", "--json");
  assert_int_equal(r.exit_code, 0);
  cli_result_free(&r);
  /* A bad value is refused before the store is even looked for. */
  RUN_ON(&r, "/nonexistent/dir/x.db", "proxy", "logs", "--tail", "0");
  assert_int_equal(r.exit_code, 2);
  cli_result_free(&r);
}

/* Names in dir (excluding . and ..), '\n'-joined, as a new string. */
static char *list_dir(const char *dir) {
  char *out = calloc(1, 4096);
  assert_non_null(out);
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t len = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
      len += (size_t)snprintf(out + len, 4096 - len, "%s\n", e->d_name);
  closedir(d);
  return out;
}

static void expect_missing(const cli_result *r, const char *what, const char *path) {
  if (r->exit_code != 1)
    fail_msg("%s: exit %d (want 1)\n%s", what, r->exit_code, r->err);
  if (nd_count(r->err) != 1 || !strstr(r->err, path) || !strstr(r->err, "--db") ||
      !strstr(r->err, "MCPR_DB"))
    fail_msg("%s: want one line naming %s, --db and MCPR_DB, got:\n%s", what, path, r->err);
  if (r->out_len)
    fail_msg("%s: printed on stdout:\n%s", what, r->out);
}

static void test_missing_store(void **state) {
  (void)state;
  char name[64];
  char *dir = tu_tmpdir();
  char *missing = tu_path(dir, "sub/missing.db");
  char *flat = tu_path(dir, "missing.db");
  char env_db[4200], env_home[4200];
  char *home = tu_path(dir, "home");
  assert_int_equal(mkdir(home, 0700), 0);
  char *home_store = tu_path(home, ".mcpr/store.db");
  for (size_t c = 0; c < NCOMMANDS; c++) {
    cmd_name(c, name, sizeof name);
    cli_result r;
    run_cmd(&r, "/nonexistent/dir/x.db", c, NULL, NULL, NULL);
    expect_missing(&r, name, "/nonexistent/dir/x.db");
    cli_result_free(&r);
    assert_int_equal(access("/nonexistent", F_OK), -1);

    snprintf(env_db, sizeof env_db, "MCPR_DB=%s", missing);
    const char *const env1[] = {env_db, NULL};
    run_cmd(&r, NULL, c, NULL, env1, NULL);
    expect_missing(&r, name, missing);
    cli_result_free(&r);

    snprintf(env_db, sizeof env_db, "MCPR_DB=%s", flat);
    run_cmd(&r, NULL, c, NULL, env1, NULL);
    expect_missing(&r, name, flat);
    cli_result_free(&r);

    /* No --db, no MCPR_DB (or an empty one): $HOME/.mcpr/store.db */
    snprintf(env_home, sizeof env_home, "HOME=%s", home);
    const char *const env2[] = {env_home, NULL};
    const char *const unset[] = {"MCPR_DB", NULL};
    run_cmd(&r, NULL, c, NULL, env2, unset);
    expect_missing(&r, name, home_store);
    cli_result_free(&r);
    const char *const env3[] = {env_home, "MCPR_DB=", NULL};
    run_cmd(&r, NULL, c, NULL, env3, NULL);
    expect_missing(&r, name, home_store);
    cli_result_free(&r);

    /* Nothing was created: not the file, not its directory. */
    char *ls = list_dir(dir);
    if (strcmp(ls, "home\n") != 0)
      fail_msg("%s created files in %s:\n%s", name, dir, ls);
    free(ls);
    ls = list_dir(home);
    if (strcmp(ls, "") != 0)
      fail_msg("%s created files in HOME:\n%s", name, ls);
    free(ls);
  }
  free(home_store);
  free(home);
  free(flat);
  free(missing);
  tu_rmdir(dir);
}

/* The whole file, compared before and after. */
typedef struct snapshot {
  unsigned char *data;
  size_t len;
} snapshot;

static snapshot take(const char *path) {
  snapshot s;
  s.data = sf_read_file(path, &s.len);
  assert_non_null(s.data);
  return s;
}

static void expect_same(const snapshot *s, const char *path, const char *what) {
  size_t len = 0;
  unsigned char *now = sf_read_file(path, &len);
  if (!now || len != s->len || memcmp(now, s->data, len) != 0)
    fail_msg("%s changed %s (%zu -> %zu bytes)", what, path, s->len, len);
  free(now);
}

static void expect_refused(const char *path, const char *needle, const char *kind) {
  snapshot before = take(path);
  char name[64], what[160];
  for (size_t c = 0; c < NCOMMANDS; c++) {
    cli_result r;
    run_cmd(&r, path, c, NULL, NULL, NULL);
    snprintf(what, sizeof what, "%s on %s", cmd_name(c, name, sizeof name), kind);
    if (r.exit_code != 1 || !strstr(r.err, needle) || !strstr(r.err, path) ||
        nd_count(r.err) != 1 || r.out_len)
      fail_msg("%s: exit %d (want 1 and one line with '%s')\nstdout:\n%s\nstderr:\n%s", what,
               r.exit_code, needle, r.out, r.err);
    cli_result_free(&r);
    expect_same(&before, path, what);
  }
  free(before.data);
}

static void test_future_and_foreign_files(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  /* A store written by a newer mcpr. */
  char *future = tu_path(dir, "future.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, future, NULL, &err), MCPR_OK);
  fx_request(s, mcpr_now_ms(), "api", NULL, "tools/call", "t", 5, MCPR_REQUEST_OK, NULL, -1, -1);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  sf_exec(future, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
  expect_refused(future, "newer", "a store from schema v99");
  cli_result r;
  RUN_ON(&r, future, "proxy", "status");
  assert_non_null(strstr(r.err, "99"));
  cli_result_free(&r);

  /* Files that are not SQLite at all. */
  char *text = tu_path(dir, "notes.db");
  static const char notes[] = "these are my notes, not a database\n";
  sf_write_file(text, notes, sizeof notes - 1);
  expect_refused(text, "not an mcpr store", "a text file");
  char *noise = tu_path(dir, "noise.db");
  unsigned char junk[8192];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (unsigned char)(i * 131 + 7);
  sf_write_file(noise, junk, sizeof junk);
  expect_refused(noise, "not an mcpr store", "8 KB of noise");

  /* An SQLite database of something else. */
  char *other = tu_path(dir, "other.db");
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db,
                                "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT);"
                                "INSERT INTO photos (name) VALUES ('cat.jpg');",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  expect_refused(other, "not an mcpr store", "another application's database");

  /* A directory where the file should be. */
  RUN_ON(&r, dir, "proxy", "logs");
  assert_int_equal(r.exit_code, 1);
  assert_int_equal(nd_count(r.err), 1);
  assert_non_null(strstr(r.err, dir));
  cli_result_free(&r);
  free(other);
  free(noise);
  free(text);
  free(future);
  tu_rmdir(dir);
}

static void test_global_db_anywhere(void **state) {
  (void)state;
  char eq[4200];
  snprintf(eq, sizeof eq, "--db=%s", fx_path);
  char env_db[4200];
  snprintf(env_db, sizeof env_db, "MCPR_DB=%s", fx_path);
  const char *const forms[][7] = {
      {"--db", fx_path, "proxy", "status", "--json", NULL},
      {"proxy", "status", "--json", "--db", fx_path, NULL},
      {"proxy", "--db", fx_path, "status", "--json", NULL},
      {"proxy", "status", "--db", fx_path, "--json", NULL},
      {eq, "proxy", "status", "--json", NULL},
      {"proxy", "status", "--json", eq, NULL},
      /* --db wins over MCPR_DB (set below to a missing file) */
      {"--db", fx_path, "proxy", "status", "--json", NULL},
  };
  char *first = NULL;
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    const char *const env[] = {"MCPR_DB=/nonexistent/other.db", NULL};
    cli_spec spec = {.args = forms[i], .env = i == 6 ? env : NULL};
    cli_result r;
    cli_run(&spec, &r);
    if (r.exit_code != 0)
      fail_msg("form %zu: exit %d\n%s", i, r.exit_code, r.err);
    json_t *o = nd_line(r.out, 0);
    assert_int_equal(ji(o, "total_requests"), 126);
    json_decref(o);
    if (!first)
      first = strdup(r.out);
    else
      assert_string_equal(r.out, first);
    cli_result_free(&r);
  }
  /* MCPR_DB alone. */
  const char *const args[] = {"proxy", "status", "--json", NULL};
  const char *const env[] = {env_db, NULL};
  cli_spec spec = {.args = args, .env = env};
  cli_result r;
  cli_run(&spec, &r);
  assert_int_equal(r.exit_code, 0);
  assert_string_equal(r.out, first);
  cli_result_free(&r);
  /* store commands too, and a --db after a flag value */
  RUN_ON(&r, fx_path, "store", "stats", "--json");
  assert_int_equal(r.exit_code, 0);
  cli_result_free(&r);
  cli_runv(&r, "store", "stats", "--json", "--db", fx_path, NULL);
  assert_int_equal(r.exit_code, 0);
  json_t *o = nd_line(r.out, 0);
  assert_int_equal(ji(o, "total_requests"), 127);
  json_decref(o);
  cli_result_free(&r);
  cli_runv(&r, "proxy", "logs", "--tail", "3", "--db", fx_path, "--json", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_int_equal(nd_count(r.out), 3);
  cli_result_free(&r);
  free(first);
}

static void test_help(void **state) {
  (void)state;
  cli_result r;
  static const char *const top[] = {"--help", "-h"};
  for (size_t i = 0; i < 2; i++) {
    cli_runv(&r, top[i], NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "usage: mcpr"));
    static const char *const listed[] = {"proxy logs",    "proxy slow",   "proxy sessions",
                                         "proxy session", "proxy clients", "proxy status",
                                         "proxy schema",  "store stats",  "store vacuum"};
    for (size_t k = 0; k < sizeof listed / sizeof listed[0]; k++)
      assert_non_null(strstr(r.out, listed[k]));
    assert_non_null(strstr(r.out, "--db"));
    assert_string_equal(r.err, "");
    cli_result_free(&r);
  }
  cli_runv(&r, "proxy", "--help", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "proxy sessions"));
  assert_non_null(strstr(r.out, "proxy status"));
  assert_null(strstr(r.out, "store vacuum"));
  cli_result_free(&r);
  cli_runv(&r, "store", "-h", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "store vacuum"));
  assert_non_null(strstr(r.out, "store stats"));
  cli_result_free(&r);

  /* Each command's help, wherever --help stands, needs no store at all. */
  char name[64];
  for (size_t c = 0; c < NCOMMANDS; c++) {
    static const char *const flags[] = {"--help", "-h"};
    for (size_t f = 0; f < 2; f++) {
      const char *const extra[] = {flags[f], NULL};
      run_cmd(&r, "/nonexistent/dir/x.db", c, extra, NULL, NULL);
      char want[64];
      snprintf(want, sizeof want, "mcpr %s %s", COMMANDS[c][0], COMMANDS[c][1]);
      if (r.exit_code != 0 || !strstr(r.out, want) || !strstr(r.out, "examples:"))
        fail_msg("%s %s: exit %d\n%s%s", cmd_name(c, name, sizeof name), flags[f], r.exit_code,
                 r.out, r.err);
      cli_result_free(&r);
    }
  }
  cli_runv(&r, "proxy", "logs", "--tail", "5", "--help", NULL);
  assert_int_equal(r.exit_code, 0);
  assert_non_null(strstr(r.out, "mcpr proxy logs"));
  cli_result_free(&r);
}

/* Another connection holds the write lock (a proxy mid-batch): reads still
 * answer, with the committed rows only. */
static void test_locked_store_still_reads(void **state) {
  (void)state;
  static const char *const begins[] = {"BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"};
  for (size_t b = 0; b < 2; b++) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(fx_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, begins[b], NULL, NULL, NULL), SQLITE_OK);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO requests (request_id, ts, proxy, method, tool, latency_us, status)"
             " VALUES ('uncommitted-%zu', %lld, 'api', 'tools/call', 'ghost', 1, 'ok')",
             b, (long long)mcpr_now_ms());
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);

    cli_result r;
    RUN_OK(&r, "proxy", "logs", "--json", "--tail", "1000");
    assert_int_equal(nd_count(r.out), 126);
    assert_null(strstr(r.out, "ghost"));
    cli_result_free(&r);
    RUN_OK(&r, "proxy", "logs", "--tool", "search", "--status", "error", "--json");
    assert_int_equal(nd_count(r.out), 10);
    cli_result_free(&r);
    RUN_OK(&r, "proxy", "status", "--json");
    json_t *o = nd_line(r.out, 0);
    assert_int_equal(ji(o, "total_requests"), 126);
    json_decref(o);
    cli_result_free(&r);
    RUN_OK(&r, "proxy", "sessions", "--json", "--since", "4h");
    assert_int_equal(nd_count(r.out), 4);
    cli_result_free(&r);
    RUN_OK(&r, "proxy", "session", "sess-alpha-2", "--json");
    cli_result_free(&r);
    RUN_OK(&r, "store", "stats");
    assert_non_null(strstr(r.out, "requests   127\n"));
    cli_result_free(&r);
    RUN_OK(&r, "store", "vacuum", "--before", "1d", "--dry-run");
    cli_result_free(&r);

    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
  }
  assert_int_equal(tu_sql_int(fx_path, "SELECT count(*) FROM requests"), 127);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unknown_flag),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_missing_store),
      cmocka_unit_test(test_future_and_foreign_files),
      cmocka_unit_test(test_global_db_anywhere),
      cmocka_unit_test(test_help),
      cmocka_unit_test(test_locked_store_still_reads),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

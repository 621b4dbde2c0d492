/* `mcpr config check`: resolved values, masked token, diagnostics with lines, exit codes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define CANARY "mcpr_CANARYcfgchk0123456789wxyz"

typedef struct result {
  int code;
  char out[65536], err[65536];
} result;

static void slurp(const char *path, char *buf, size_t n) {
  FILE *f = fopen(path, "rb");
  size_t k = f ? fread(buf, 1, n - 1, f) : 0;
  buf[k] = '\0';
  if (f)
    fclose(f);
}

/* mcpr args... in dir, with HOME=dir and MCPR_DB unset. */
static void run(const char *dir, const char *const *args, result *r) {
  char *out_path = tu_path(dir, "out.txt"), *err_path = tu_path(dir, "err.txt");
  const char *bin = getenv("MCPR_BIN");
  assert_non_null(bin);
  char *argv[16];
  size_t a = 0;
  argv[a++] = (char *)bin;
  for (size_t i = 0; args[i] && a < 15; i++)
    argv[a++] = (char *)args[i];
  argv[a] = NULL;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (chdir(dir) != 0 || in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(err, 2) < 0)
      _exit(127);
    setenv("HOME", dir, 1); /* single-threaded test process: fine after fork */
    unsetenv("MCPR_DB");
    execv(bin, argv);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  slurp(out_path, r->out, sizeof r->out);
  slurp(err_path, r->err, sizeof r->err);
  assert_null(strstr(r->out, CANARY));
  assert_null(strstr(r->err, CANARY));
  free(out_path);
  free(err_path);
}

static void spit(const char *dir, const char *name, const char *text) {
  char *p = tu_path(dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  free(p);
}

static void test_good_config(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  spit(dir, "mcpr.toml",
       "name = \"api\"\n[store]\npath = \"~/s.db\"\n[cloud]\ntoken = \"" CANARY "\"\n"
       "server = \"srv\"\nendpoint = \"https://staging.mcpr.app\"\nbatch_size = 20\nextra = 1\n");
  static result r;
  const char *args[] = {"config", "check", NULL};
  run(dir, args, &r);
  assert_int_equal(r.code, 0);
  char want[4200];
  snprintf(want, sizeof want, "%s/s.db\n", dir);
  assert_non_null(strstr(r.out, want)); /* ~ resolved against HOME */
  assert_non_null(strstr(r.out, "https://staging.mcpr.app"));
  assert_non_null(strstr(r.out, "mcpr_…wxyz"));
  assert_non_null(strstr(r.out, "20\n"));
  assert_non_null(strstr(r.err, "mcpr.toml:9:1: warning: unknown key 'cloud.extra'"));
  /* global --db wins over the config */
  const char *db[] = {"--db", "/elsewhere.db", "config", "check", NULL};
  run(dir, db, &r);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "/elsewhere.db"));
  tu_rmdir(dir);
}

static void test_errors_and_usage(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  static result r;
  /* no file at all: defaults, fine */
  const char *plain[] = {"config", "check", NULL};
  run(dir, plain, &r);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "not found: defaults"));
  assert_non_null(strstr(r.out, "https://api.mcpr.app"));
  /* validation errors, each with its line */
  spit(dir, "bad.toml", "[store]\npath = \"\"\n[cloud]\ntoken = \"" CANARY "\"\nbatch_size = \"x\"\n");
  const char *bad[] = {"config", "check", "--config", "bad.toml", NULL};
  run(dir, bad, &r);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "bad.toml:2:1: error: store.path cannot be an empty string"));
  assert_non_null(strstr(r.err, "bad.toml:5:14: error: cloud.batch_size must be an integer"));
  assert_non_null(strstr(r.err, "2 errors"));
  /* a syntax error */
  spit(dir, "syntax.toml", "# one\nname = 'x\n");
  const char *syn[] = {"config", "check", "--config=syntax.toml", NULL};
  run(dir, syn, &r);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "syntax.toml:2:10: error: unterminated string"));
  /* an explicit file that is missing */
  const char *missing[] = {"config", "check", "--config", "nope.toml", NULL};
  run(dir, missing, &r);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "nope.toml does not exist"));
  /* usage errors */
  const char *noval[] = {"config", "check", "--config", NULL};
  run(dir, noval, &r);
  assert_int_equal(r.code, 2);
  const char *extra[] = {"config", "check", "what", NULL};
  run(dir, extra, &r);
  assert_int_equal(r.code, 2);
  tu_rmdir(dir);
}

/* [cloud] endpoint gets the token: a host that only looks like loopback
 * is an error naming the key and the reason, as the sink would refuse it. */
static void test_lookalike_endpoint(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  static result r;
  const char *args[] = {"config", "check", NULL};
  const struct {
    const char *url, *why;
  } bad[] = {
      {"http://127.attacker.example/",
       "mcpr.toml:3:12: error: cloud.endpoint: refusing plain http:// to 127.attacker.example"},
      {"http://localhost:8080@attacker.example/",
       "mcpr.toml:3:12: error: cloud.endpoint must not carry a user name or password"},
      {"http://127.0.0.1@attacker.example",
       "mcpr.toml:3:12: error: cloud.endpoint must not carry a user name or password"},
      {"ftp://127.0.0.1/", "cloud.endpoint must start with https://"},
      {"https://api.mcpr.app/?token=x", "cloud.endpoint must not have a query string"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char toml[512];
    snprintf(toml, sizeof toml, "[cloud]\ntoken = \"" CANARY "\"\nendpoint = \"%s\"\n",
             bad[i].url);
    spit(dir, "mcpr.toml", toml);
    run(dir, args, &r);
    if (r.code != 1 || !strstr(r.err, bad[i].why))
      fail_msg("%s: exit %d, stderr:\n%s", bad[i].url, r.code, r.err);
  }
  /* loopback and https are fine */
  const char *good[] = {"http://127.0.0.1:8080/", "http://localhost", "http://[::1]:9/",
                        "https://api.mcpr.app"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    char toml[512];
    snprintf(toml, sizeof toml, "[cloud]\nendpoint = \"%s\"\n", good[i]);
    spit(dir, "mcpr.toml", toml);
    run(dir, args, &r);
    if (r.code != 0)
      fail_msg("%s: exit %d, stderr:\n%s", good[i], r.code, r.err);
  }
  tu_rmdir(dir);
}

/* A token written without quotes: the error names the place and the key
 * and says what to do, and never shows the token (run() asserts it), in
 * `config check` and in every other command that reads the config. */
static void test_unquoted_token_not_echoed(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  static result r;
  spit(dir, "mcpr.toml", "[cloud]\ntoken = " CANARY "\nserver = \"srv\"\n");
  const char *check[] = {"config", "check", NULL};
  run(dir, check, &r);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "mcpr.toml:2:9: error: expected a value for the key 'token'"));
  assert_non_null(strstr(r.err, "quoted"));
  assert_null(strstr(r.err, "CANARY"));
  const char *ingest[] = {"ingest", "--config", "mcpr.toml", "--db", "s.db", "/dev/null", NULL};
  run(dir, ingest, &r);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "mcpr.toml:2:9:"));
  const char *status[] = {"cloud", "status", "--config", "mcpr.toml", "--db", "s.db", NULL};
  run(dir, status, &r);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "mcpr.toml:2:9:"));
  /* in an inline table, in an array, pasted on a line of its own */
  static const char *const docs[] = {
      "cloud = { server = \"s\", token = " CANARY " }\n",
      "[cloud]\ntokens = [\"a\", " CANARY "]\n",
      "[cloud]\ntoken = \"a\" " CANARY "\n",
      "[cloud]\n" CANARY "\n",
      "[cloud]\ntoken " CANARY "\n",
  };
  for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
    spit(dir, "mcpr.toml", docs[i]);
    run(dir, check, &r);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "mcpr.toml:"));
    assert_null(strstr(r.err, "CANARY"));
  }
  tu_rmdir(dir);
}

/* A token file that group or others can read: a warning naming the file
 * and the fix, from `config check` and from every command that loads it. */
static void test_token_file_readable_warning(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  static result r;
  spit(dir, "mcpr.toml", "[cloud]\ntoken = \"" CANARY "\"\nserver = \"srv\"\n");
  char *path = tu_path(dir, "mcpr.toml");
  assert_int_equal(chmod(path, 0644), 0);
  const char *want = "[cloud] token is in a file that group and others can read (mode 0644); "
                     "run: chmod 600 mcpr.toml";
  const char *check[] = {"config", "check", NULL};
  run(dir, check, &r);
  assert_int_equal(r.code, 0); /* a warning */
  assert_non_null(strstr(r.err, "mcpr.toml: warning: "));
  assert_non_null(strstr(r.err, want));
  const char *ingest[] = {"ingest", "--config", "mcpr.toml", "--db", "s.db", "/dev/null", NULL};
  run(dir, ingest, &r);
  assert_non_null(strstr(r.err, "mcpr: warning: mcpr.toml: "));
  assert_non_null(strstr(r.err, want));
  const char *status[] = {"cloud", "status", "--config", "mcpr.toml", "--db", "s.db", NULL};
  run(dir, status, &r);
  assert_non_null(strstr(r.err, want));
  /* group only */
  assert_int_equal(chmod(path, 0640), 0);
  run(dir, check, &r);
  assert_non_null(strstr(r.err, "a file that group can read (mode 0640)"));
  /* fixed */
  assert_int_equal(chmod(path, 0600), 0);
  run(dir, check, &r);
  assert_int_equal(r.code, 0);
  assert_null(strstr(r.err, "chmod"));
  run(dir, ingest, &r);
  assert_null(strstr(r.err, "chmod"));
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_config),
      cmocka_unit_test(test_errors_and_usage),
      cmocka_unit_test(test_lookalike_endpoint),
      cmocka_unit_test(test_unquoted_token_not_echoed),
      cmocka_unit_test(test_token_file_readable_warning),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* `mcpr help [COMMAND…]` and `mcpr GROUP help [COMMAND]`, end to end, as
 * the original's clap help subcommand (its README says "use `mcpr proxy
 * help`"): the help asked for on stdout, exit 0, no store needed; a name
 * that is no command is a usage error (exit 2). */
#include <string.h>

#include "cli_check.h"

/* Runs mcpr with a store that does not exist (help must not need one). */
static void run_help(cli_result *r, const char *const *args) {
  const char *argv[8] = {"--db", "/nonexistent/dir/x.db"};
  size_t n = 2;
  for (size_t i = 0; args[i] && n < 7; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  cli_spec spec = {.args = argv};
  cli_run(&spec, r);
}

static void expect_help(const char *const *args, const char *needle, const char *absent) {
  cli_result r;
  run_help(&r, args);
  if (r.exit_code != 0 || !strstr(r.out, needle) || r.err_len ||
      (absent && strstr(r.out, absent)))
    fail_msg("mcpr %s %s %s: exit %d, want '%s' on stdout%s%s\nstdout:\n%s\nstderr:\n%s", args[0],
             args[1] ? args[1] : "", args[1] && args[2] ? args[2] : "", r.exit_code, needle,
             absent ? " and not " : "", absent ? absent : "", r.out, r.err);
  cli_result_free(&r);
}

static void test_help_subcommand(void **state) {
  (void)state;
  /* The top-level list. */
  expect_help((const char *const[]){"help", NULL}, "usage: mcpr", NULL);
  expect_help((const char *const[]){"help", NULL}, "proxy sessions", NULL);
  /* A group's list: mcpr proxy help, mcpr help proxy. */
  expect_help((const char *const[]){"proxy", "help", NULL}, "proxy schema", "store vacuum");
  expect_help((const char *const[]){"help", "proxy", NULL}, "proxy logs", "store stats");
  expect_help((const char *const[]){"help", "store", NULL}, "store vacuum", "proxy logs");
  /* One command's help, by every spelling. */
  expect_help((const char *const[]){"help", "proxy", "logs", NULL}, "--tail N", NULL);
  expect_help((const char *const[]){"proxy", "help", "slow", NULL}, "--threshold", NULL);
  expect_help((const char *const[]){"help", "store", "vacuum", NULL}, "--before", NULL);
  expect_help((const char *const[]){"help", "ingest", NULL}, "mcpr ingest", NULL);
  expect_help((const char *const[]){"help", "version", NULL}, "mcpr version", NULL);
  expect_help((const char *const[]){"proxy", "help", "setup", NULL}, "mcpr proxy setup", NULL);
}

static void test_help_unknown(void **state) {
  (void)state;
  static const char *const bad[][4] = {
      {"help", "nope", NULL},
      {"help", "proxy", "nope", NULL},
      {"proxy", "help", "nope", NULL},
      {"help", "proxy", "logs", "extra"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *args[5] = {bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL};
    cli_result r;
    run_help(&r, args);
    if (r.exit_code != 2 || r.out_len || !strstr(r.err, "mcpr: "))
      fail_msg("case %zu: exit %d (want 2)\nstdout:\n%s\nstderr:\n%s", i, r.exit_code, r.out,
               r.err);
    cli_result_free(&r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_help_subcommand),
      cmocka_unit_test(test_help_unknown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

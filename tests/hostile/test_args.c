/*
 * Hostile arguments to every command: unknown flags, flags without their
 * value, malformed and out-of-range numbers and durations, huge arguments
 * (as the positional argument and as each flag's value), invalid UTF-8
 * and control characters, contradictory flags, and the global --db made
 * hostile. Each run: a documented exit code (usage errors are 2), a
 * message, no crash, no hang, and the store is left as it was
 * (hostile.h). HOME is a scratch directory and the cloud URL a closed
 * loopback port, so nothing here reaches a real account or the network.
 */
#include "hostile.h"

/*
 * The brief's "1 MB argument" cannot reach a program on Linux: execve
 * refuses any single argument longer than MAX_ARG_STRLEN (32 pages, 128
 * KiB) with E2BIG. So the huge arguments are the longest Linux passes.
 */
#define HUGE_ARG (128 * 1024 - 1)

typedef struct command {
  const char *words[3];     /* e.g. {"proxy", "logs", NULL} */
  const char *value_flags;  /* space separated flags that take a free-form value */
  const char *number_flags; /* flags that take a positive integer */
  const char *duration_flags;
  bool positional;          /* takes a positional argument (NAME, FILE, ...) */
} command;

static const command COMMANDS[] = {
    {{"proxy", "status"}, "", "", "--since", true},
    {{"proxy", "logs"}, "--tool --method --session --status --error-code", "--tail", "--since", true},
    {{"proxy", "slow"}, "--tool", "--limit", "--since --threshold", true},
    {{"proxy", "sessions"}, "--client", "--limit", "--since", true},
    {{"proxy", "session"}, "", "", "", true},
    {{"proxy", "clients"}, "", "", "--since", true},
    {{"proxy", "schema"}, "--method", "", "", true},
    {{"store", "stats"}, "", "", "", false},
    {{"store", "vacuum"}, "--proxy", "", "--before", false},
    {{"ingest"}, "--config", "", "", true},
    {{"cloud", "status"}, "--config", "", "", false},
    {{"cloud", "flush"}, "--config", "--timeout", "", false},
    {{"config", "check"}, "--config", "", "", false},
    {{"setup"}, "--config --cloud-url --email --code --project --server --endpoint", "", "", false},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

typedef struct fixture {
  hx_store store;
  char *home;
  char *env_home;
} fixture;

static const char *g_env[4];

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  hx_store_make(&f->store);
  f->home = tu_tmpdir();
  size_t n = strlen(f->home) + 6;
  f->env_home = malloc(n);
  snprintf(f->env_home, n, "HOME=%s", f->home);
  g_env[0] = f->env_home;
  g_env[1] = "MCPR_CLOUD_URL=http://127.0.0.1:9";
  g_env[2] = "MCPR_DB=";
  g_env[3] = NULL;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  hx_store_free(&f->store);
  tu_rmdir(f->home);
  free(f->env_home);
  free(f);
  return 0;
}

/* argv: --db STORE <command words> <extra...>; stdin is empty. */
static void run_cmd(fixture *f, const command *c, int allowed, const char *const *extra) {
  const char *args[32];
  size_t n = 0;
  args[n++] = "--db";
  args[n++] = f->store.path;
  for (size_t i = 0; c->words[i]; i++)
    args[n++] = c->words[i];
  for (size_t i = 0; extra && extra[i] && n < 31; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  cli_result r;
  hx_run(&r, g_env, "", allowed, args);
  cli_result_free(&r);
  char what[512];
  hx_describe(what, sizeof what, args);
  hx_store_intact(&f->store, what);
}

/* Each space-separated word of list in turn. */
#define FOR_EACH_FLAG(list, var)                                                               \
  for (char buf_[256], *save_ = NULL, *var = (snprintf(buf_, sizeof buf_, "%s", (list)),       \
                                              strtok_r(buf_, " ", &save_));                    \
       var; var = strtok_r(NULL, " ", &save_))

static void test_unknown_and_missing_values(void **state) {
  fixture *f = *state;
  for (size_t i = 0; i < N_COMMANDS; i++) {
    const command *c = &COMMANDS[i];
    run_cmd(f, c, HX_USAGE, (const char *[]){"--no-such-flag", NULL});
    run_cmd(f, c, HX_USAGE, (const char *[]){"-Z", NULL});
    FOR_EACH_FLAG(c->value_flags, flag) run_cmd(f, c, HX_USAGE, (const char *[]){flag, NULL});
    FOR_EACH_FLAG(c->number_flags, flag) run_cmd(f, c, HX_USAGE, (const char *[]){flag, NULL});
    FOR_EACH_FLAG(c->duration_flags, flag) run_cmd(f, c, HX_USAGE, (const char *[]){flag, NULL});
  }
}

/* Accepted, so not listed: blanks around a number (" 5", "5 ") or between a
 * duration's number and unit ("1 h"). Lenient, and harmless. */
static void test_bad_numbers_and_durations(void **state) {
  fixture *f = *state;
  static const char *const bad_numbers[] = {"-1", "abc", "", "1e3", "0x10",
                                            "99999999999999999999", "-9223372036854775808",
                                            "1.5", "５"};
  static const char *const bad_durations[] = {"-1h", "1", "h", "", "1y", "1.5h", "0x1h",
                                              "99999999999999999999w", "9223372036854775807d",
                                              "1hh", "1h1", "\xff"};
  for (size_t i = 0; i < N_COMMANDS; i++) {
    const command *c = &COMMANDS[i];
    FOR_EACH_FLAG(c->number_flags, flag) {
      for (size_t k = 0; k < sizeof bad_numbers / sizeof bad_numbers[0]; k++)
        run_cmd(f, c, HX_USAGE, (const char *[]){flag, bad_numbers[k], NULL});
    }
    FOR_EACH_FLAG(c->duration_flags, flag) {
      for (size_t k = 0; k < sizeof bad_durations / sizeof bad_durations[0]; k++)
        run_cmd(f, c, HX_USAGE, (const char *[]){flag, bad_durations[k], NULL});
    }
  }
}

static void test_huge_arguments(void **state) {
  fixture *f = *state;
  char *huge = hx_repeat('a', HUGE_ARG);
  for (size_t i = 0; i < N_COMMANDS; i++) {
    const command *c = &COMMANDS[i];
    /* A huge NAME/FILE/… is a name nobody has, or a path too long: 0, 1 or 2. */
    run_cmd(f, c, c->positional ? HX_ANY : HX_USAGE, (const char *[]){huge, NULL});
    FOR_EACH_FLAG(c->value_flags, flag) run_cmd(f, c, HX_ANY, (const char *[]){flag, huge, NULL});
    FOR_EACH_FLAG(c->number_flags, flag) {
      run_cmd(f, c, HX_USAGE, (const char *[]){flag, huge, NULL});
    }
    FOR_EACH_FLAG(c->duration_flags, flag) {
      run_cmd(f, c, HX_USAGE, (const char *[]){flag, huge, NULL});
    }
  }
  /* A huge command name and group member. */
  cli_result r;
  hx_run(&r, g_env, "", HX_USAGE, (const char *[]){huge, NULL});
  cli_result_free(&r);
  hx_run(&r, g_env, "", HX_USAGE, (const char *[]){"proxy", huge, NULL});
  cli_result_free(&r);
  free(huge);
}

static void test_odd_bytes_in_arguments(void **state) {
  fixture *f = *state;
  static const char *const odd[] = {"\xff\xfe", "\xc3\x28", "a\x1b[2Jb", "\x7f", "'; DROP TABLE requests; --",
                                    "%s%s%s%n", "../../../../etc/passwd", "-", "--"};
  for (size_t i = 0; i < N_COMMANDS; i++) {
    const command *c = &COMMANDS[i];
    for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
      if (c->positional)
        run_cmd(f, c, HX_ANY, (const char *[]){odd[k], NULL});
      FOR_EACH_FLAG(c->value_flags, flag) run_cmd(f, c, HX_ANY, (const char *[]){flag, odd[k], NULL});
    }
  }
}

static void test_contradictory_flags(void **state) {
  fixture *f = *state;
  const command *logs = &COMMANDS[1], *schema = &COMMANDS[6], *vacuum = &COMMANDS[8],
                *session = &COMMANDS[4];
  run_cmd(f, schema, HX_USAGE, (const char *[]){"--changes", "--unused", NULL});
  run_cmd(f, logs, HX_USAGE, (const char *[]){"--status", "maybe", NULL});
  run_cmd(f, logs, HX_USAGE, (const char *[]){"a", "b", NULL}); /* two NAMEs */
  run_cmd(f, session, HX_USAGE, (const char *[]){NULL});        /* no SESSION_ID */
  run_cmd(f, vacuum, HX_USAGE, (const char *[]){"--dry-run", NULL});
  run_cmd(f, vacuum, HX_USAGE, (const char *[]){"--before", "1d", "--before", NULL});
  /* The same flag twice: the last wins or it is refused; either way no harm. */
  run_cmd(f, logs, HX_OK | HX_USAGE, (const char *[]){"--tail", "5", "--tail", "7", NULL});
  run_cmd(f, logs, HX_OK | HX_USAGE, (const char *[]){"--json", "--json", NULL});
}

static void test_hostile_db_flag(void **state) {
  fixture *f = *state;
  char *huge = hx_repeat('d', HUGE_ARG);
  cli_result r;
  hx_run(&r, g_env, "", HX_USAGE, (const char *[]){"--db", NULL});
  cli_result_free(&r);
  hx_run(&r, g_env, "", HX_ANY, (const char *[]){"--db", "", "store", "stats", NULL});
  cli_result_free(&r);
  hx_run(&r, g_env, "", HX_FAIL | HX_USAGE, (const char *[]){"--db", huge, "store", "stats", NULL});
  cli_result_free(&r);
  hx_run(&r, g_env, "", HX_FAIL | HX_USAGE,
         (const char *[]){"--db", "/proc/self/mem", "proxy", "status", NULL});
  cli_result_free(&r);
  hx_run(&r, g_env, "", HX_FAIL | HX_USAGE,
         (const char *[]){"--db", f->store.dir, "proxy", "status", NULL});
  cli_result_free(&r);
  /* Two --db: one store is used and neither is damaged. */
  hx_run(&r, g_env, "", HX_OK | HX_USAGE,
         (const char *[]){"--db", "/nonexistent/x.db", "store", "stats", "--db", f->store.path, NULL});
  cli_result_free(&r);
  hx_store_intact(&f->store, "two --db");
  free(huge);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unknown_and_missing_values),
      cmocka_unit_test(test_bad_numbers_and_durations),
      cmocka_unit_test(test_huge_arguments),
      cmocka_unit_test(test_odd_bytes_in_arguments),
      cmocka_unit_test(test_contradictory_flags),
      cmocka_unit_test(test_hostile_db_flag),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

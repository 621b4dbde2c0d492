/*
 * Allocation failure injection (allocfail.h) into mcpr.toml handling: the
 * TOML parser + validation (mcpr_config_load_string) and the in-place
 * [cloud] writer (mcpr_config_set_cloud_text), with the Nth allocation
 * failing for N = 1, 2, ... Each run either gives exactly the result of a
 * run without failure, or fails with MCPR_ENOMEM, a message and no config
 * — never a crash, a leak, or a made-up syntax error.
 */
#define _GNU_SOURCE /* dladdr, for allocfail.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocfail.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

/*
 * On every failed allocation: no crash, no leak, a message, ENOMEM as the
 * status, and never a silently different result (a diagnostic that could
 * not be recorded fails the load instead of letting the config pass).
 */
#define STRICT 1

static const char TOML[] =
    "# mcpr.toml\n"
    "name = \"docs-proxy\"\nmcp = \"http://127.0.0.1:9000/mcp\"\nport = 3000\n"
    "unknown_key = [1, 2.5, \"x\", { a = true }]\n"
    "[store]\nenabled = true\npath = \"~/.mcpr/store.db\"\nname = 'local'\n"
    "[cloud]\ntoken = \"mcpr_abcdefghijklmnop\"  # secret\nserver = \"docs\"\n"
    "batch_size = 100\nflush_interval_ms = 5_000\n";

/* Every resolved value and diagnostic as one text, for comparing runs. */
static char *describe(const mcpr_config *c) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f)
    return NULL;
#define S(x) ((x) ? (x) : "(null)")
  fprintf(f, "%s|%s|%lld|%d|%s|%s|%s|%s|%s|%lld|%lld\n", S(c->name), S(c->mcp),
          (long long)c->port, c->store.enabled, S(c->store.path), S(c->store.name),
          S(c->cloud.token), S(c->cloud.server), S(c->cloud.endpoint),
          (long long)c->cloud.batch_size, (long long)c->cloud.flush_interval_ms);
#undef S
  for (size_t i = 0; i < mcpr_config_diag_count(c); i++) {
    const mcpr_config_diag *d = mcpr_config_diag_at(c, i);
    fprintf(f, "%d:%d:%d:%s\n", d->severity, d->line, d->column, d->message);
  }
  fclose(f);
  return buf;
}

typedef mcpr_status (*op_fn)(char **result, mcpr_error *err);

static mcpr_status op_load(char **result, mcpr_error *err) {
  mcpr_config *cfg = NULL;
  *result = NULL;
  mcpr_status st = mcpr_config_load_string(TOML, strlen(TOML), "mcpr.toml", &cfg, err);
  if (cfg) {
    *result = describe(cfg);
    if (!*result) /* the test's own allocation failed: an ENOMEM like any other */
      st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory describing the config (test)");
  }
  mcpr_config_free(cfg);
  return st;
}

static mcpr_status op_set_cloud(char **result, mcpr_error *err) {
  return mcpr_config_set_cloud_text(TOML, strlen(TOML), "mcpr_newtoken_0123456789", NULL,
                                    "https://api.example", result, err);
}

static void every_allocation(const char *what, op_fn op) {
  mcpr_error err = {0};
  char *want = NULL;
  assert_int_equal(op(&want, &err), MCPR_OK);
  assert_non_null(want);
  long n = 1, failures = 0, wrong = 0;
  for (;; n++) {
    char *got = NULL;
    mcpr_error_clear(&err);
    af_arm(n);
    mcpr_status st = op(&got, &err);
    bool same = got && strcmp(got, want) == 0;
    if (st == MCPR_OK && !same)
      fprintf(stderr, "%s, allocation %ld failed: OK but\n--- got\n%s--- want\n%s", what, n,
              got ? got : "(null)\n", want);
    free(got);
    af_result r = af_disarm();
    if (r.balance != 0)
      fail_msg("%s, allocation %ld failed: %ld blocks leaked", what, n, r.balance);
    if (!r.failed) {
      assert_int_equal(st, MCPR_OK);
      assert_true(same);
      break;
    }
    if (st == MCPR_OK) {
      if (STRICT && !same)
        fail_msg("%s, allocation %ld failed: OK but a different result", what, n);
      continue;
    }
    failures++;
    if (err.message[0] == '\0')
      fail_msg("%s, allocation %ld failed: %s without a message", what, n, mcpr_status_name(st));
    if (st != MCPR_ENOMEM) {
      if (wrong++ < 5)
        fprintf(stderr, "%s, allocation %ld failed: got %s \"%s\", want ENOMEM\n", what, n,
                mcpr_status_name(st), err.message);
    }
  }
  fprintf(stderr, "%s: %ld allocations, %ld runs failed, %ld of them not as ENOMEM\n", what,
          n - 1, failures, wrong);
  assert_true(n > 10);
  if (STRICT)
    assert_int_equal(wrong, 0);
  free(want);
}

static void test_load_every_allocation(void **state) {
  (void)state;
  every_allocation("config load", op_load);
}

static void test_set_cloud_every_allocation(void **state) {
  (void)state;
  every_allocation("set [cloud]", op_set_cloud);
}

int main(void) {
  af_install();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_every_allocation),
      cmocka_unit_test(test_set_cloud_every_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

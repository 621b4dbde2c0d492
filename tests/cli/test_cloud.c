/* `mcpr ingest --config` with a [cloud] token, `mcpr cloud status` and
 * `mcpr cloud flush` against a fake cloud on loopback. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fakecloud.h"
#include "testutil.h"

#define PATH "/api/ingest-events"

/* Run mcpr with args; stdout to out_path, stderr to err_path. */
static int run(const char *const *args, const char *out_path, const char *err_path) {
  const char *bin = getenv("MCPR_BIN");
  assert_non_null(bin);
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path ? err_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    const char *argv[32] = {bin};
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
      argv[n] = args[n - 1];
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  int status;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status))
    fail_msg("mcpr %s %s: killed by signal %d", args[0], args[1] ? args[1] : "", WTERMSIG(status));
  return WEXITSTATUS(status);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char *buf = calloc(1, 1 << 16);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  buf[n] = 0;
  fclose(f);
  return buf;
}

static void test_ingest_to_cloud_then_flush(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *cfg = tu_path(dir, "mcpr.toml"), *db = tu_path(dir, "store.db");
  char *out = tu_path(dir, "out"), *err = tu_path(dir, "err");
  fakecloud *fc = fc_start(NULL);
  /* The server quotes the credentials it got: none of it may be kept or shown. */
  fc_response down = {.status = 503, .body = "{\"message\":\"maintenance ({auth})\"}",
                      .echo_auth = true};
  fc_route_ex(fc, "POST", PATH, &down);
  FILE *f = fopen(cfg, "w");
  fprintf(f,
          "[store]\npath = \"%s\"\n\n[cloud]\ntoken = \"sk-very-secret\"\nserver = \"docs\"\n"
          "endpoint = \"%s\"\nbatch_size = 50\nflush_interval_ms = 200\n",
          db, fc_url(fc));
  fclose(f);
  char sample[4096];
  snprintf(sample, sizeof sample, "%s/examples/sample-traffic.ndjson", MCPR_TEST_SOURCE_DIR);

  /* The cloud is down: the store gets every row, the spool every event. */
  const char *ingest[] = {"ingest", sample, "--config", cfg, NULL};
  assert_int_equal(run(ingest, out, err), 0);
  int64_t requests = tu_sql_int(db, "SELECT count(*) FROM requests");
  assert_true(requests >= 200);
  const char *status[] = {"cloud", "status", "--config", cfg, "--json", NULL};
  assert_int_equal(run(status, out, err), 0);
  char *text = slurp(out);
  assert_non_null(strstr(text, "\"pending_events\":270")); /* every line is an event */
  assert_non_null(strstr(text, "\"delivered_events\":0"));
  assert_non_null(strstr(text, "maintenance (Bearer …cret)"));
  assert_null(strstr(text, "sk-very-secret"));
  free(text);
  const char *human_down[] = {"cloud", "status", "--config", cfg, NULL};
  assert_int_equal(run(human_down, out, err), 0);
  text = slurp(out);
  assert_non_null(strstr(text, "last error: HTTP 503"));
  assert_null(strstr(text, "sk-very-secret"));
  free(text);
  char *state_json = tu_path(dir, "cloud-spool/state.json");
  text = slurp(state_json);
  assert_non_null(strstr(text, "maintenance (Bearer"));
  assert_null(strstr(text, "sk-very-secret"));
  free(text);
  free(state_json);

  /* Still down: flush says why, exit 1. */
  const char *flush[] = {"cloud", "flush", "--config", cfg, NULL};
  assert_int_equal(run(flush, out, err), 1);
  text = slurp(err);
  assert_non_null(strstr(text, "HTTP 503"));
  assert_non_null(strstr(text, "maintenance (Bearer …cret)"));
  assert_non_null(strstr(text, "still in"));
  assert_null(strstr(text, "sk-very-secret"));
  free(text);

  /* Back up: flush delivers the whole spool, exit 0. */
  fc_reset(fc);
  fc_route(fc, "POST", PATH, 200, "{}");
  assert_int_equal(run(flush, out, err), 0);
  text = slurp(out);
  assert_non_null(strstr(text, "(270 events); the spool is empty"));
  free(text);
  assert_int_equal(fc_count(fc, "POST", PATH), 6); /* 270 events / 50 per batch */
  fc_request q;
  assert_true(fc_request_get(fc, 0, &q));
  assert_non_null(strstr(q.body, "\"server\":\"docs\""));
  fc_request_release(&q);
  const char *human[] = {"cloud", "status", "--config", cfg, NULL};
  assert_int_equal(run(human, out, err), 0);
  text = slurp(out);
  assert_non_null(strstr(text, "pending:    0 batches, 0 events"));
  assert_non_null(strstr(text, "delivered:  6 batches, 270 events"));
  free(text);
  /* Nothing left: flush succeeds without a request. */
  assert_int_equal(run(flush, out, err), 0);
  assert_int_equal(fc_count(fc, "POST", PATH), 6);

  const char *bad[] = {"cloud", "flush", "--bogus", NULL};
  assert_int_equal(run(bad, out, err), 2);
  fc_stop(fc);
  free(cfg); free(db); free(out); free(err);
  tu_rmdir(dir);
}

static void test_flush_without_token(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *cfg = tu_path(dir, "mcpr.toml"), *db = tu_path(dir, "store.db"), *err = tu_path(dir, "err");
  FILE *f = fopen(cfg, "w");
  fprintf(f, "[store]\npath = \"%s\"\n", db);
  fclose(f);
  const char *flush[] = {"cloud", "flush", "--config", cfg, NULL};
  assert_int_equal(run(flush, NULL, err), 1);
  char *text = slurp(err);
  assert_non_null(strstr(text, "no [cloud] token"));
  free(text);
  free(cfg); free(db); free(err);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ingest_to_cloud_then_flush),
      cmocka_unit_test(test_flush_without_token),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

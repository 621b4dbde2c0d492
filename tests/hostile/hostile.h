/*
 * hostile.h — shared by the hostile-input CLI tests (header-only; each
 * test program includes it once).
 *
 * Every run of `mcpr` here must end by itself (a timeout kills it and
 * fails the test), by exit and not by a signal, with one of the exit codes
 * the commands document (0 ok, 1 failed, 2 usage — cli.h), with a message
 * on stderr when it fails, and without a sanitizer report (the asan run
 * builds mcpr with ASan+UBSan). The store it was pointed at must still
 * pass PRAGMA integrity_check with the same rows.
 */
#ifndef MCPR_TEST_HOSTILE_H
#define MCPR_TEST_HOSTILE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store_fixtures.h"
#include "testutil.h"

#define HX_TIMEOUT_MS 30000
#define HX_OK (1 << 0)
#define HX_FAIL (1 << 1)
#define HX_USAGE (1 << 2)
#define HX_ANY (HX_OK | HX_FAIL | HX_USAGE)

/* A store built by `mcpr ingest examples/sample-traffic.ndjson`. */
typedef struct hx_store {
  char *dir, *path;
  int64_t requests, sessions;
} hx_store;

__attribute__((unused)) static int64_t hx_count(const char *path, const char *table) {
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
  return tu_sql_int(path, sql);
}

__attribute__((unused)) static void hx_store_make(hx_store *s) {
  s->dir = tu_tmpdir();
  s->path = tu_path(s->dir, "store.db");
  char sample[4096];
  snprintf(sample, sizeof sample, "%s/examples/sample-traffic.ndjson", MCPR_TEST_SOURCE_DIR);
  cli_result r;
  const char *args[] = {"--db", s->path, "ingest", sample, NULL};
  cli_spec spec = {.args = args, .timeout_ms = HX_TIMEOUT_MS};
  cli_run(&spec, &r);
  if (r.exit_code != 0)
    fail_msg("building the store failed (%d): %s", r.exit_code, r.err);
  cli_result_free(&r);
  s->requests = hx_count(s->path, "requests");
  s->sessions = hx_count(s->path, "sessions");
  assert_true(s->requests > 100);
}

/* integrity_check ok and the same rows as when it was made. */
__attribute__((unused)) static void hx_store_intact(const hx_store *s, const char *after) {
  char *ic = sf_sql_text(s->path, "PRAGMA integrity_check");
  if (strcmp(ic, "ok") != 0)
    fail_msg("after %s: integrity_check says %s", after, ic);
  free(ic);
  int64_t req = hx_count(s->path, "requests"), ses = hx_count(s->path, "sessions");
  if (req != s->requests || ses != s->sessions)
    fail_msg("after %s: requests %lld → %lld, sessions %lld → %lld", after,
             (long long)s->requests, (long long)req, (long long)s->sessions, (long long)ses);
}

__attribute__((unused)) static void hx_store_free(hx_store *s) {
  tu_rmdir(s->dir);
  free(s->path);
}

/* A short, printable description of argv for messages (huge args cut). */
__attribute__((unused)) static void hx_describe(char *buf, size_t n, const char *const *args) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; args[i] && used + 1 < n; i++) {
    int w = snprintf(buf + used, n - used, "%s%.40s%s", i ? " " : "", args[i],
                     strlen(args[i]) > 40 ? "…" : "");
    if (w < 0)
      break;
    used += (size_t)w < n - used ? (size_t)w : n - used - 1;
  }
}

/* The checks every run gets; allowed is a mask of HX_OK/HX_FAIL/HX_USAGE. */
__attribute__((unused)) static void hx_check(const cli_result *r, const char *const *args, int allowed) {
  char what[512];
  hx_describe(what, sizeof what, args);
  if (r->exit_code >= 128)
    fail_msg("mcpr %s: killed by signal %d (or timed out)\nstderr: %.2000s", what,
             r->exit_code - 128, r->err);
  int bit = r->exit_code == 0 ? HX_OK : r->exit_code == 1 ? HX_FAIL : r->exit_code == 2 ? HX_USAGE : 0;
  if (!(allowed & bit))
    fail_msg("mcpr %s: exit %d not allowed here (mask %d)\nstderr: %.2000s", what, r->exit_code,
             allowed, r->err);
  if (strstr(r->err, "Sanitizer") || strstr(r->err, "runtime error:"))
    fail_msg("mcpr %s: sanitizer report\n%.4000s", what, r->err);
  if (r->exit_code != 0 && strstr(r->err, "mcpr") == NULL && strstr(r->err, "line ") == NULL)
    fail_msg("mcpr %s: exit %d without a message on stderr (got: %.500s)", what, r->exit_code,
             r->err);
}

/* Run $MCPR_BIN with args (NULL-terminated) and env, check, return the result. */
__attribute__((unused)) static void hx_run(cli_result *r, const char *const *env, const char *stdin_data, int allowed,
                   const char *const *args) {
  cli_spec spec = {.args = args, .env = env, .stdin_data = stdin_data,
                   .timeout_ms = HX_TIMEOUT_MS};
  cli_run(&spec, r);
  hx_check(r, args, allowed);
}

/* A string of n copies of c (new). */
__attribute__((unused)) static char *hx_repeat(char c, size_t n) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

#endif

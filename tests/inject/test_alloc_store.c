/*
 * Allocation failure injection (allocfail.h) into the store: open a new
 * store file (create + migrate), record a handful of events (one of them a
 * duplicate), close — with the Nth allocation of the whole run failing,
 * for N = 1, 2, ... until a run completes without reaching N. SQLite's
 * allocations come through SQLITE_CONFIG_MALLOC, libmcpr's and libc's
 * through the interposed malloc; the writer thread's count too.
 *
 * Leaks are LeakSanitizer's job here (the asan run): SQLite and the
 * writer thread free blocks made before the armed window, so the simple
 * balance of allocfail.h is not exact for this test.
 *
 * Every run: no crash, no leak; a failed open says why and leaves a file
 * that a later open accepts (integrity_check ok); a successful open loses
 * no event without counting it: offered == accepted + refused, accepted
 * == written + duplicates + failed, and the requests table holds exactly
 * the written rows.
 */
#define _GNU_SOURCE /* dladdr, for allocfail.h */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "allocfail.h"
#include "mcpr/mcpr.h"
#include "store_fixtures.h"
#include "testutil.h"

#define OFFERED 6

typedef struct outcome {
  mcpr_status open_st;
  mcpr_error err;
  mcpr_store_stats final;
  uint64_t offered, accepted_calls;
} outcome;

static void run(const char *path, outcome *o) {
  memset(o, 0, sizeof *o);
  mcpr_store_options opts;
  mcpr_store_options_init(&opts);
  opts.queue_capacity = 64;
  opts.batch_size = 4;
  opts.flush_interval_ms = 20;
  opts.io_retry_limit_ms = 2000;
  mcpr_store *s = NULL;
  o->open_st = mcpr_store_open(&s, path, &opts, &o->err);
  if (o->open_st != MCPR_OK)
    return;
  static const char *const ids[OFFERED] = {"r-1", "r-2", "r-3", "r-2", "r-4", "r-5"};
  for (int i = 0; i < OFFERED; i++) {
    mcpr_store_event e = sf_request(ids[i], 1700000000000 + i, NULL);
    o->offered++;
    if (mcpr_store_record(s, &e) == MCPR_OK)
      o->accepted_calls++;
  }
  mcpr_store_close(s, &o->final);
}

static char *shm_dir(void) {
  char tmpl[] = "/dev/shm/mcpr-inject-XXXXXX";
  if (access("/dev/shm", W_OK) == 0 && mkdtemp(tmpl))
    return strdup(tmpl);
  return tu_tmpdir();
}

static void test_open_record_close_every_allocation(void **state) {
  (void)state;
  char *dir = shm_dir();
  char path[4096];
  outcome o;
  snprintf(path, sizeof path, "%s/warm.db", dir);
  run(path, &o); /* warm-up: SQLite's one-time initialisation */
  assert_int_equal(o.open_st, MCPR_OK);
  assert_int_equal(o.final.written, 5);
  long n = 1, open_failures = 0, counted_failures = 0;
  const char *first = getenv("MCPR_INJECT_FIRST"); /* debugging: start at this N */
  if (first)
    n = strtol(first, NULL, 10);
  for (;; n++) {
    snprintf(path, sizeof path, "%s/s-%ld.db", dir, n);
    af_arm(n);
    run(path, &o);
    af_result r = af_disarm();
    if (o.open_st != MCPR_OK) {
      open_failures++;
      if (!r.failed)
        fail_msg("open failed without an injected failure: %s", o.err.message);
      if (o.err.message[0] == '\0')
        fail_msg("allocation %ld failed: open gave %s without a message", n,
                 mcpr_status_name(o.open_st));
      /* Whatever the failed open left must open cleanly now. */
      mcpr_store *s = NULL;
      mcpr_error err = {0};
      if (mcpr_store_open(&s, path, NULL, &err) != MCPR_OK)
        fail_msg("allocation %ld failed during open; reopening then failed: %s", n, err.message);
      mcpr_store_close(s, NULL);
    } else {
      const mcpr_store_stats *st = &o.final;
      uint64_t refused = mcpr_store_stats_refused(st), failed = mcpr_store_stats_failed(st);
      if (o.offered != st->accepted + refused || st->accepted != o.accepted_calls ||
          st->accepted != st->written + st->duplicates + failed)
        fail_msg("allocation %ld failed: offered %llu accepted %llu refused %llu written %llu "
                 "duplicates %llu failed %llu",
                 n, (unsigned long long)o.offered, (unsigned long long)st->accepted,
                 (unsigned long long)refused, (unsigned long long)st->written,
                 (unsigned long long)st->duplicates, (unsigned long long)failed);
      if (refused || failed)
        counted_failures++;
      char *tables = sf_tables(path);
      if (!strstr(tables, "requests"))
        fail_msg("allocation %ld failed: open said OK but the store has no requests table "
                 "(tables: [%s]; written %llu, failed %llu, last error %s)",
                 n, tables, (unsigned long long)st->written, (unsigned long long)failed,
                 st->last_error_message);
      free(tables);
      assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), (int64_t)st->written);
    }
    char *ic = sf_sql_text(path, "PRAGMA integrity_check");
    assert_string_equal(ic, "ok");
    free(ic);
    if (!r.failed) {
      assert_int_equal(o.open_st, MCPR_OK);
      assert_int_equal(o.final.written, 5);
      assert_int_equal(o.final.duplicates, 1);
      break;
    }
    unlink(path);
  }
  fprintf(stderr, "%ld allocations: %ld runs failed in open, %ld counted refused/failed events\n",
          n - 1, open_failures, counted_failures);
  assert_true(n > 100);
  tu_rmdir(dir);
}

int main(void) {
  af_install();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_record_close_every_allocation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

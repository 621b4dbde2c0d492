/* store.c — see bench.h: opening, recording into and closing a store the
 * way every subcommand that builds one does. */
#include <stdio.h>

#include "bench.h"
#include "core/clock.h"

int64_t bench_retention_ms;

mcpr_store *bench_store_open(const char *path) {
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  mcpr_store_options o;
  mcpr_store_options_init(&o);
  o.retention_ms = bench_retention_ms;
  if (mcpr_store_open(&s, path, &o, &err) != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: %s\n", err.message);
    return NULL;
  }
  return s;
}

int bench_record_retry(mcpr_store *s, const mcpr_store_event *e) {
  for (;;) {
    mcpr_status st = mcpr_store_record(s, e);
    if (st == MCPR_OK)
      return 0;
    if (st != MCPR_EQUEUEFULL) {
      fprintf(stderr, "mcpr-bench: record: %s\n", mcpr_strerror(st));
      return -1;
    }
    mcpr__sleep_ms(1);
  }
}

int bench_store_close(mcpr_store *s, int rc, mcpr_store_stats *st) {
  mcpr_status cs = mcpr_store_close(s, st);
  if (rc == 0 && cs != MCPR_OK) {
    fprintf(stderr, "mcpr-bench: close: %s\n", mcpr_strerror(cs));
    rc = -1;
  }
  return rc;
}

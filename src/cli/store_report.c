/* store_report.c — see store_report.h. */
#include <inttypes.h>
#include <stdio.h>

#include "store_report.h"

const char *cli_store_cause_words(mcpr_status cause) {
  switch (cause) {
  case MCPR_EDISKFULL:
    return "disk full";
  case MCPR_EREADONLY:
    return "the store is read-only";
  case MCPR_EBUSY:
    return "the store is locked by another process";
  case MCPR_EIO:
    return "I/O error";
  default:
    return mcpr_strerror(cause);
  }
}

void cli_store_health_print(void *ctx, const mcpr_store_health *h) {
  (void)ctx;
  switch (h->state) {
  case MCPR_STORE_HEALTH_FAILING:
    fprintf(stderr,
            "mcpr: cannot write to the store: %s (%s); %" PRIu64
            " events waiting, retrying\n",
            cli_store_cause_words(h->cause), h->message, h->waiting);
    break;
  case MCPR_STORE_HEALTH_GIVING_UP:
    fprintf(stderr,
            "mcpr: the store still cannot write (%s): events are now counted as not stored "
            "until a write succeeds; %" PRIu64 " waiting\n",
            cli_store_cause_words(h->cause), h->waiting);
    break;
  case MCPR_STORE_HEALTH_OK: {
    double secs = h->ended_ms > h->since_ms ? (double)(h->ended_ms - h->since_ms) / 1000.0 : 0;
    fprintf(stderr,
            "mcpr: the store is writing again after %.1f s (%s); %" PRIu64
            " events not stored meanwhile\n",
            secs, cli_store_cause_words(h->cause), h->failed);
    break;
  }
  }
  fflush(stderr);
}

void cli_store_print_failed_by_cause(FILE *out, const mcpr_store_stats *st) {
  const struct {
    uint64_t n;
    const char *what;
  } causes[] = {
      {st->failed_disk_full, "disk full"},
      {st->failed_io, "I/O error"},
      {st->failed_readonly, "read-only store"},
      {st->failed_busy, "store locked"},
      {st->failed_closed, "not written before exit"},
      {st->failed_constraint, "constraint"},
      {st->failed_other, "other"},
  };
  for (size_t i = 0; i < sizeof causes / sizeof causes[0]; i++)
    if (causes[i].n)
      fprintf(out, ", %s %" PRIu64, causes[i].what, causes[i].n);
}

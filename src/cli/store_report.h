/*
 * store_report.h — what every mcpr program that writes to the store tells
 * the user about it: the start, giving up and end of a write failure
 * (the store's on_health, printed at once on stderr), and the final
 * summary's "not stored" counts by cause.
 */
#ifndef MCPR_CLI_STORE_REPORT_H
#define MCPR_CLI_STORE_REPORT_H

#include <stdio.h>

#include "mcpr/store.h"

/* A write failure's cause in the words a user searches for ("disk full",
 * "the store is locked by another process"...). */
const char *cli_store_cause_words(mcpr_status cause);

/* An mcpr_store_options.on_health that prints one line on stderr (ctx: unused). */
void cli_store_health_print(void *ctx, const mcpr_store_health *h);

/* ", <cause> N" for every non-zero failed_* counter, e.g.
 * ", disk full 32000, I/O error 12"; nothing when none. */
void cli_store_print_failed_by_cause(FILE *out, const mcpr_store_stats *st);

#endif

/* bench.h — mcpr-bench subcommands, each in its own file. */
#ifndef MCPR_BENCH_H
#define MCPR_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "mcpr/mcpr.h"

/* argv[0] is the subcommand name. Return the exit code. */
int bench_write_main(int argc, char **argv);
int bench_query_main(int argc, char **argv);
int bench_vacuum_main(int argc, char **argv);
int bench_original_main(int argc, char **argv);

/* Monotonic nanoseconds. */
uint64_t bench_now_ns(void);
/* Milliseconds since t0_ns (a bench_now_ns() value). */
double bench_ms_since(uint64_t t0_ns);
/* Parse a positive integer flag value or exit(2) naming the flag. */
uint64_t bench_parse_count(const char *flag, const char *value);
/* Say that arg is not an option of this subcommand, print its usage to
 * stderr; returns 2, the exit code. */
int bench_unknown_option(const char *arg, void (*usage)(FILE *out));

/* bench/store.c: the store calls the subcommands make alike. */

/* Retention for the stores bench_store_open opens (write --retention D);
 * 0: off, the default. */
extern int64_t bench_retention_ms;
/* Open the store at path with default options (and bench_retention_ms);
 * NULL (said on stderr) when it cannot be opened. */
mcpr_store *bench_store_open(const char *path);
/* Record e, offering it again after 1 ms while the queue is full, so no
 * event is lost; 0, or -1 (said on stderr) on any other refusal. */
int bench_record_retry(mcpr_store *s, const mcpr_store_event *e);
/* Close s, its final counters into *st. Returns rc, or -1 when rc is 0 and
 * the close failed (said on stderr). */
int bench_store_close(mcpr_store *s, int rc, mcpr_store_stats *st);

#endif

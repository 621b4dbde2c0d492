/* bench.h — mcpr-bench subcommands, each in its own file. */
#ifndef MCPR_BENCH_H
#define MCPR_BENCH_H

#include <stdint.h>

/* argv[0] is the subcommand name. Return the exit code. */
int bench_write_main(int argc, char **argv);
int bench_query_main(int argc, char **argv);
int bench_vacuum_main(int argc, char **argv);

/* Monotonic nanoseconds. */
uint64_t bench_now_ns(void);
/* Parse a positive integer flag value or exit(2) naming the flag. */
uint64_t bench_parse_count(const char *flag, const char *value);

#endif

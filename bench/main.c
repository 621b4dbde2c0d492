/*
 * mcpr-bench — performance targets live here, never in timed unit tests.
 * Each subcommand prints human-readable lines and, as its last line, one
 * JSON object with the figures, so scripts can compare runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "mcpr/util.h"

static const struct {
  const char *name, *summary;
  int (*run)(int, char **);
} SUBCOMMANDS[] = {
    {"write", "record generated traffic into a store; --baseline compares the original's design",
     bench_write_main},
    {"query", "time every CLI query on an N-row store; stats vs the original's approach", bench_query_main},
    {"vacuum", "store vacuum on a 1M-request, 20k-session store, beside a live writer",
     bench_vacuum_main},
    {"original", "build a store in the original mcpr's layout (no rollups), for first-open timing",
     bench_original_main},
};

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double bench_ms_since(uint64_t t0_ns) { return (double)(bench_now_ns() - t0_ns) / 1e6; }

uint64_t bench_parse_count(const char *flag, const char *value) {
  char *end = NULL;
  errno = 0;
  unsigned long long v = value ? strtoull(value, &end, 10) : 0;
  if (!value || errno || end == value || *end || v == 0 || value[0] == '-') {
    fprintf(stderr, "mcpr-bench: %s needs a positive integer, got '%s'\n", flag,
            value ? value : "");
    exit(2);
  }
  return v;
}

int bench_unknown_option(const char *arg, void (*usage)(FILE *out)) {
  fprintf(stderr, "mcpr-bench: unknown option '%s'\n", arg);
  usage(stderr);
  return 2;
}

static void usage(FILE *out) {
  fputs("usage: mcpr-bench <subcommand> [options]\n\nsubcommands:\n", out);
  for (size_t i = 0; i < sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]; i++)
    fprintf(out, "  %-8s %s\n", SUBCOMMANDS[i].name, SUBCOMMANDS[i].summary);
  fputs("\n'mcpr-bench <subcommand> --help' for its options.\n", out);
}

int main(int argc, char **argv) {
  mcpr_process_init(); /* both the store and the baseline runs get it */
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof SUBCOMMANDS / sizeof SUBCOMMANDS[0]; i++)
    if (strcmp(argv[1], SUBCOMMANDS[i].name) == 0)
      return SUBCOMMANDS[i].run(argc - 1, argv + 1);
  fprintf(stderr, "mcpr-bench: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}

/*
 * gen.h — realistic MCP traffic for the benchmarks: sessions from several
 * clients, each starting with a Session event, then requests (mostly
 * tools/call over a dozen tools, some list/read/get methods) with a mix of
 * statuses, error codes and messages, log-normal latencies and sizes, and
 * most sessions ending with SessionClosed. Deterministic for a seed.
 */
#ifndef MCPR_BENCH_GEN_H
#define MCPR_BENCH_GEN_H

#include <stdint.h>

#include "mcpr/store.h"

typedef struct bench_gen bench_gen;

typedef struct bench_gen_options {
  uint64_t seed;
  unsigned sessions;     /* sessions this generator cycles through (>= 1) */
  const char *id_prefix; /* makes session ids unique across generators */
  int64_t start_ts_ms;   /* first event's ts */
  int64_t step_us;       /* mean gap between events, microseconds */
} bench_gen_options;

bench_gen *bench_gen_new(const bench_gen_options *o);
/* The next event; its strings stay valid until the next call. */
const mcpr_store_event *bench_gen_next(bench_gen *g);
/* Events that end sessions still open (call until it returns NULL). */
const mcpr_store_event *bench_gen_finish(bench_gen *g);
void bench_gen_free(bench_gen *g);

/* Tool names the generator uses (NULL-terminated), for schema payloads. */
extern const char *const bench_gen_tools[];

#endif

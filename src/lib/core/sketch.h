/*
 * sketch.h — internal: a mergeable latency histogram with bounded relative
 * error (DDSketch-style), what the rollups keep per hour and label so p95
 * over months of requests is read from a few kilobytes instead of every
 * latency.
 *
 * A value v >= 1 falls in bucket i = ceil(log_gamma(v)), i.e. gamma^(i-1) <
 * v <= gamma^i, and the bucket stands for 2·gamma^i/(gamma+1): every value
 * of the bucket is within (gamma-1)/(gamma+1) = MCPR__SKETCH_ALPHA of it,
 * relatively. 0 has its own bucket and negatives mirror the positives (a
 * direct caller of the store API may store anything). The nearest-rank
 * quantile of the sketch is the stand-in of the bucket that holds the
 * exact nearest-rank value, so it is within ALPHA of it; the stand-in is
 * rounded to whole microseconds, and ALPHA = 0.5 % keeps that rounding
 * inside a 1 % bound (|round(e) − v| ≤ floor(0.005·v + 0.5) ≤ 0.01·v for
 * integers v; values below 100 come out exact).
 *
 * Counts are kept densely between the lowest and highest bucket used
 * (at most ~8,800 buckets over the whole int64 range, 70 KB; a tool's
 * latencies over a few decades use a few hundred). The serialised form is
 * sparse: a version byte, the number of non-empty buckets, then per bucket
 * the zigzag-varint key delta and the varint count.
 */
#ifndef MCPR__CORE_SKETCH_H
#define MCPR__CORE_SKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCPR__SKETCH_ALPHA 0.005

typedef struct mcpr__sketch {
  int64_t *counts; /* counts[k - lo] for bucket key k in [lo, lo + n) */
  int32_t lo;
  size_t n;
  int64_t total;
} mcpr__sketch;

/* The bucket key of v, and the value that stands for a bucket. */
int32_t mcpr__sketch_key(int64_t v);
int64_t mcpr__sketch_key_value(int32_t key);

/* Add count copies of v. false: out of memory, the sketch as it was. */
bool mcpr__sketch_add(mcpr__sketch *s, int64_t v, int64_t count);
/* Add count values to the bucket of key (mcpr__sketch_key): a sketch
 * kept as (key, count) rows. false: out of memory, the sketch as it was. */
bool mcpr__sketch_add_key(mcpr__sketch *s, int32_t key, int64_t count);
/* dst += src. false: out of memory, dst as it was. */
bool mcpr__sketch_merge(mcpr__sketch *dst, const mcpr__sketch *src);
/* The value standing for the rank-th smallest value (0-based, rank <
 * total); 0 when empty. */
int64_t mcpr__sketch_rank(const mcpr__sketch *s, int64_t rank);
/* Nearest-rank p95: rank ceil(0.95·total) − 1. */
int64_t mcpr__sketch_p95(const mcpr__sketch *s);

/* Serialise into a new buffer (*out, *len; caller frees). false: out of memory. */
bool mcpr__sketch_encode(const mcpr__sketch *s, unsigned char **out, size_t *len);
/* Add a serialised sketch into s. Returns 0, -1 when the bytes are not a
 * sketch (s unchanged), -2 out of memory. */
int mcpr__sketch_decode_add(mcpr__sketch *s, const void *data, size_t len);

/* Merge two serialised sketches into a new serialised one (*out, *len;
 * caller frees) without expanding either: what the store's upserts do.
 * Returns 0, -1 when either is not a sketch, -2 out of memory. */
int mcpr__sketch_merge_encoded(const void *a, size_t alen, const void *b, size_t blen,
                               unsigned char **out, size_t *len);

/* Free what it holds and empty it. */
void mcpr__sketch_release(mcpr__sketch *s);

#endif

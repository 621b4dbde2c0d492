/*
 * The latency sketch (core/sketch.h): p95 read from the sketch is within
 * 1 % (relative) of the exact nearest-rank p95 of the same values, on
 * random and adversarial distributions, whole and merged from pieces, and
 * through the serialised form; garbage is refused.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/sketch.h"
#include "query/backend.h"
#include "testutil.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static double unif(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double worst_error = 0.0;

/* Checks p95 (and a few other ranks) of v[0..n) against the sketch built
 * in `pieces` merged parts, one of them through encode/decode. */
static void check(const char *what, int64_t *v, size_t n, int pieces) {
  mcpr__sketch whole = {0}, merged = {0};
  for (size_t i = 0; i < n; i++)
    assert_true(mcpr__sketch_add(&whole, v[i], 1));
  for (int p = 0; p < pieces; p++) {
    mcpr__sketch part = {0};
    for (size_t i = p; i < n; i += (size_t)pieces)
      assert_true(mcpr__sketch_add(&part, v[i], 1));
    unsigned char *blob = NULL;
    size_t len = 0;
    assert_true(mcpr__sketch_encode(&part, &blob, &len));
    assert_int_equal(mcpr__sketch_decode_add(&merged, blob, len), 0);
    free(blob);
    mcpr__sketch_release(&part);
  }
  assert_int_equal(whole.total, (int64_t)n);
  assert_int_equal(merged.total, (int64_t)n);
  qsort(v, n, sizeof *v, cmp64);
  int64_t exact = v[mcpr__p95_index(n)];
  int64_t got[2] = {mcpr__sketch_p95(&whole), mcpr__sketch_p95(&merged)};
  for (int j = 0; j < 2; j++) {
    double e = exact == 0 ? (got[j] == 0 ? 0.0 : 1.0)
                          : fabs((double)got[j] - (double)exact) / fabs((double)exact);
    if (e > worst_error)
      worst_error = e;
    if (e > 0.01)
      fail_msg("%s: n=%zu exact p95 %lld, sketch %lld (%.4f %%)", what, n, (long long)exact,
               (long long)got[j], 100 * e);
  }
  /* Every rank, not only p95: the bound holds for any quantile. */
  for (size_t r = 0; r < n; r += n / 97 + 1) {
    int64_t g = mcpr__sketch_rank(&merged, (int64_t)r);
    double e = v[r] == 0 ? (double)(g != 0) : fabs((double)g - (double)v[r]) / fabs((double)v[r]);
    if (e > 0.01)
      fail_msg("%s: rank %zu exact %lld sketch %lld", what, r, (long long)v[r], (long long)g);
  }
  mcpr__sketch_release(&whole);
  mcpr__sketch_release(&merged);
}

static void test_random_distributions(void **state) {
  (void)state;
  enum { MAXN = 20000 };
  int64_t *v = malloc(MAXN * sizeof *v);
  assert_non_null(v);
  for (int round = 0; round < 300; round++) {
    size_t n = 1 + rnd() % (round % 3 == 0 ? 20 : MAXN); /* tiny counts too */
    int kind = round % 6;
    for (size_t i = 0; i < n; i++) {
      double x;
      switch (kind) {
      case 0: /* uniform over a few decades */
        x = 1 + unif() * 5e6;
        break;
      case 1: /* log-normal */
        x = exp(8 + 2 * sqrt(-2 * log(unif() + 1e-300)) * cos(6.283185307 * unif()));
        break;
      case 2: /* Pareto, heavy tail */
        x = 100 / pow(unif() + 1e-12, 1.5);
        break;
      case 3: /* bimodal: fast cache hits, slow misses */
        x = unif() < 0.9 ? 200 + unif() * 50 : 2e6 + unif() * 1e6;
        break;
      case 4: /* small integers, where rounding matters most */
        x = (double)(rnd() % 300);
        break;
      default: /* exponential */
        x = -log(unif() + 1e-300) * 40000;
        break;
      }
      v[i] = x > 9e18 ? INT64_MAX : (int64_t)x;
    }
    check("random", v, n, 1 + (int)(rnd() % 7));
  }
  free(v);
}

static void test_adversarial(void **state) {
  (void)state;
  enum { N = 4000 };
  int64_t v[N];
  /* All equal, at many magnitudes. */
  for (int64_t x = 1; x < INT64_MAX / 3; x = x * 3 + 1) {
    for (size_t i = 0; i < 50; i++)
      v[i] = x;
    check("all equal", v, 50, 3);
  }
  /* Values on either side of bucket edges: gamma^i rounded down and up. */
  double g = (1 + MCPR__SKETCH_ALPHA) / (1 - MCPR__SKETCH_ALPHA);
  for (int i = 1; i < 4000; i += 7) {
    double edge = pow(g, i);
    if (edge > 9e18)
      break;
    size_t n = 0;
    for (int d = -2; d <= 2; d++)
      for (int k = 0; k < 7; k++)
        v[n++] = (int64_t)floor(edge) + d > 0 ? (int64_t)floor(edge) + d : 1;
    check("bucket edge", v, n, 2);
  }
  /* p95 exactly at the boundary between two far-apart clusters. */
  for (size_t n = 1; n <= 400; n++) {
    size_t k = mcpr__p95_index(n);
    for (size_t i = 0; i < n; i++)
      v[i] = i <= k ? 1000 : 30000000;
    check("cluster boundary", v, n, 1 + (int)(n % 4));
  }
  /* Zero, negatives (a direct API caller may store them) and extremes. */
  int64_t odd[] = {0, 0, -5, -1000000, 1, INT64_MAX, INT64_MIN + 1, 7, 99, 100, 101};
  memcpy(v, odd, sizeof odd);
  check("extremes", v, sizeof odd / sizeof odd[0], 2);
  for (size_t i = 0; i < N; i++)
    v[i] = -(int64_t)(rnd() % 1000000);
  check("negatives", v, N, 3);
  print_message("worst relative p95 error seen: %.4f %%\n", 100 * worst_error);
}

static void test_garbage_refused(void **state) {
  (void)state;
  mcpr__sketch s = {0};
  assert_true(mcpr__sketch_add(&s, 500, 3));
  unsigned char *blob = NULL;
  size_t len = 0;
  assert_true(mcpr__sketch_encode(&s, &blob, &len));
  for (size_t cut = 0; cut < len; cut++)
    assert_int_equal(mcpr__sketch_decode_add(&s, blob, cut), -1);
  assert_int_equal(s.total, 3);
  unsigned char bad[][8] = {{2, 0}, {1, 1, 0x80}, {1, 2, 2, 1, 0, 1}, {1, 1, 0xfe, 0xff, 0x7f, 1}};
  size_t bad_len[] = {2, 3, 6, 6};
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(mcpr__sketch_decode_add(&s, bad[i], bad_len[i]), -1);
  for (int i = 0; i < 20000; i++) {
    unsigned char junk[16];
    size_t n = 1 + rnd() % sizeof junk;
    for (size_t j = 0; j < n; j++)
      junk[j] = (unsigned char)rnd();
    junk[0] = 1;
    int64_t before = s.total;
    int rc = mcpr__sketch_decode_add(&s, junk, n);
    assert_true(rc == 0 || (rc == -1 && s.total == before));
    assert_true(s.total >= before);
  }
  free(blob);
  mcpr__sketch_release(&s);
}

/* Merging serialised sketches gives the bytes of the dense merge. */
static void test_merge_encoded(void **state) {
  (void)state;
  for (int round = 0; round < 500; round++) {
    mcpr__sketch a = {0}, b = {0}, both = {0};
    size_t na = rnd() % 50, nb = rnd() % 50;
    for (size_t i = 0; i < na + nb; i++) {
      int64_t v = (int64_t)(rnd() % 5 == 0 ? -(int64_t)(rnd() % 100000) : (int64_t)(rnd() % 10000000));
      assert_true(mcpr__sketch_add(i < na ? &a : &b, v, 1 + (int64_t)(rnd() % 3)));
    }
    assert_true(mcpr__sketch_merge(&both, &a));
    assert_true(mcpr__sketch_merge(&both, &b));
    unsigned char *ea, *eb, *eboth, *m;
    size_t la, lb, lboth, lm;
    assert_true(mcpr__sketch_encode(&a, &ea, &la));
    assert_true(mcpr__sketch_encode(&b, &eb, &lb));
    assert_true(mcpr__sketch_encode(&both, &eboth, &lboth));
    assert_int_equal(mcpr__sketch_merge_encoded(ea, la, eb, lb, &m, &lm), 0);
    assert_int_equal(lm, lboth);
    assert_memory_equal(m, eboth, lm);
    /* Truncated input is refused. */
    if (la > 2)
      assert_int_equal(mcpr__sketch_merge_encoded(ea, la - 1, eb, lb, &m, &lm) == -1 ? 0 : 1, 0);
    free(m);
    free(ea);
    free(eb);
    free(eboth);
    mcpr__sketch_release(&a);
    mcpr__sketch_release(&b);
    mcpr__sketch_release(&both);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_distributions),
      cmocka_unit_test(test_adversarial),
      cmocka_unit_test(test_garbage_refused),
      cmocka_unit_test(test_merge_encoded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mcpr_query_series (query/series.c) on the fixture store of
 * query_fixture.h: requests, errors and nearest-rank p50/p95 per bucket,
 * the proxy and tool filters, per-label series, agreement with stats over
 * the same window, bad windows; and the engine's fallback for a backend
 * without series_scan (computed from stats_scan) giving the same answers. */
#include <stdlib.h>
#include <string.h>

#include "mcpr/query.h"
#include "query/backend.h"
#include "query_fixture.h"
#include "fx_store.h"
#include "testutil.h"

static mcpr_query *open_q(void) {
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  if (mcpr_query_open(&q, fx_path, &err) != MCPR_OK)
    fail_msg("open: %s", err.message);
  return q;
}

/* The same store read through a copy of its backend table without
 * series_scan: what a backend that leaves the field NULL gets. */
static mcpr__query_backend no_series;
static void use_fallback(mcpr_query *q) {
  no_series = *q->backend;
  no_series.series_scan = NULL;
  q->backend = &no_series;
}

static void series(mcpr_query *q, const mcpr_series_filter *f, mcpr_series_set *s) {
  mcpr_error err = {0};
  if (mcpr_query_series(q, f, s, &err) != MCPR_OK)
    fail_msg("series: %s", err.message);
}

/* Four hours up to now in hour buckets (the fifth holds only [now, now+1)). */
static void four_hours(mcpr_series_filter *f) {
  mcpr_series_filter_init(f);
  f->since_ms = fx_now - 4 * FX_HOUR_MS;
  f->until_ms = fx_now + 1;
  f->bucket_ms = FX_HOUR_MS;
}

static const mcpr_series *label(const mcpr_series_set *s, const char *name) {
  for (size_t i = 1; i < s->count; i++)
    if (strcmp(s->series[i].label, name) == 0)
      return &s->series[i];
  fail_msg("no series %s", name);
  return NULL;
}

static void check_all(mcpr_query *q) {
  mcpr_series_filter f;
  four_hours(&f);
  f.by_label = true;
  mcpr_series_set s;
  series(q, &f, &s);
  assert_int_equal(s.buckets, 5);
  assert_int_equal(s.since_ms, f.since_ms);
  assert_int_equal(s.bucket_ms, FX_HOUR_MS);
  const mcpr_series *t = &s.series[0];
  assert_null(t->label);
  assert_int_equal(t->requests, 127);
  for (size_t b = 0; b < 5; b++)
    assert_int_equal(t->points[b].start_ms, f.since_ms + (int64_t)b * FX_HOUR_MS);
  /* bucket 1 starts exactly 3 h ago: the 900 ms search call */
  assert_int_equal(t->points[0].requests, 0);
  assert_int_equal(t->points[0].p50_us, MCPR_QUERY_NULL);
  assert_int_equal(t->points[0].p95_us, MCPR_QUERY_NULL);
  assert_int_equal(t->points[1].requests, 1);
  assert_int_equal(t->points[1].p50_us, 900000);
  assert_int_equal(t->points[1].p95_us, 900000);
  assert_int_equal(t->points[2].requests, 0);
  /* the last hour: 126 requests, 11 not ok; sorted latencies give
   * p50 = the 63rd = 42 µs and p95 = the 120th = 99 µs */
  assert_int_equal(t->points[3].requests, 126);
  assert_int_equal(t->points[3].errors, 11);
  assert_int_equal(t->points[3].p50_us, 42);
  assert_int_equal(t->points[3].p95_us, 99);
  assert_int_equal(t->points[4].requests, 0);
  /* labels as stats names them, by requests desc */
  assert_int_equal(s.count, 1 + 6);
  assert_string_equal(s.series[1].label, "search");
  assert_string_equal(s.series[2].label, "fetch");
  assert_string_equal(s.series[3].label, "<tools/list>");
  assert_int_equal(label(&s, "search")->requests, 101);
  assert_int_equal(label(&s, "search")->points[3].errors, 10);
  assert_int_equal(label(&s, "search")->points[1].requests, 1);
  assert_int_equal(label(&s, "fetch")->points[3].errors, 1); /* the timeout */
  assert_int_equal(label(&s, "<prompts/get>")->requests, 1);
  assert_int_equal(label(&s, "single")->points[3].p95_us, MCPR_QUERY_NULL);
  mcpr_series_set_release(&s);

  /* proxy filter: api has 106 in the last hour (p50 52, p95 100) */
  four_hours(&f);
  f.proxy = "api";
  series(q, &f, &s);
  assert_int_equal(s.count, 1);
  assert_int_equal(s.series[0].points[3].requests, 106);
  assert_int_equal(s.series[0].points[3].errors, 10);
  assert_int_equal(s.series[0].points[3].p50_us, 52);
  assert_int_equal(s.series[0].points[3].p95_us, 100);
  mcpr_series_set_release(&s);

  /* tool filter */
  four_hours(&f);
  f.tool = "fetch";
  series(q, &f, &s);
  assert_int_equal(s.series[0].requests, 20);
  assert_int_equal(s.series[0].points[3].p50_us, 10);
  assert_int_equal(s.series[0].points[3].p95_us, 19);
  mcpr_series_set_release(&s);
  four_hours(&f);
  f.tool = "nothing";
  series(q, &f, &s);
  assert_int_equal(s.series[0].requests, 0);
  mcpr_series_set_release(&s);
}

static void test_series(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  check_all(q);
  mcpr_query_close(q);
}

static void test_fallback_from_stats(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  use_fallback(q);
  check_all(q);
  mcpr_query_close(q);
}

/* A bucket's count agrees with stats over the same range: the window's
 * total equals stats' total calls for the same cutoff. */
static void test_agrees_with_stats(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  int64_t cuts[] = {fx_now - FX_HOUR_MS, fx_now - 4 * FX_HOUR_MS, fx_now - 110000};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    mcpr_stats_filter sf = {NULL, cuts[i], 1};
    mcpr_stats st;
    mcpr_error err = {0};
    assert_int_equal(mcpr_query_stats(q, &sf, &st, &err), MCPR_OK);
    mcpr_series_filter f;
    mcpr_series_filter_init(&f);
    f.since_ms = cuts[i];
    f.until_ms = fx_now + 60000;
    f.bucket_ms = 60000;
    f.by_label = true;
    mcpr_series_set s;
    series(q, &f, &s);
    assert_int_equal(s.series[0].requests, st.total_calls);
    int64_t errors = 0;
    for (size_t b = 0; b < s.buckets; b++)
      errors += s.series[0].points[b].errors;
    assert_int_equal(errors, st.total_errors);
    assert_int_equal(s.count, 1 + st.count);
    for (size_t r = 0; r < st.count; r++)
      assert_int_equal(label(&s, st.rows[r].label)->requests, st.rows[r].calls);
    mcpr_series_set_release(&s);
    mcpr_stats_release(&st);
  }
  mcpr_query_close(q);
}

/* A store big enough for the rollups (over 50,000 requests in whole hours
 * of the window): hour buckets read as parts give the same counts as the
 * raw rows (the fallback reads them raw) and p50/p95 within 1 %. */
static void test_rollup_hours(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "big.db");
  const int64_t H = FX_HOUR_MS;
  int64_t now = mcpr_now_ms(), start = (now / H - 12) * H;
  mcpr_store *st = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&st, path, NULL, &err), MCPR_OK);
  for (int i = 0; i < 66000; i++) {
    if (i % 2000 == 1999) /* the queue is bounded */
      assert_int_equal(mcpr_store_flush(st, 60000, &err), MCPR_OK);
    int64_t ts = start + (int64_t)i * (11 * H) / 66000;
    fx_request(st, ts, i % 3 ? "api" : "web", NULL, i % 5 ? "tools/call" : "tools/list",
               i % 5 ? (i % 2 ? "search" : "fetch") : NULL, 100 + (i * 7919) % 100000,
               i % 17 == 0 ? MCPR_REQUEST_ERROR : MCPR_REQUEST_OK, i % 17 == 0 ? "-1" : NULL, -1,
               -1);
  }
  assert_int_equal(mcpr_store_flush(st, 60000, &err), MCPR_OK);
  assert_int_equal(mcpr_store_close(st, NULL), MCPR_OK);
  /* the writer rolled them up: the series reads hours as parts */
  assert_true(tu_sql_int(path, "SELECT sum(calls) FROM mcpr_rollup_hour") > 50000);
  mcpr_query *q = NULL, *raw = NULL;
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  assert_int_equal(mcpr_query_open(&raw, path, &err), MCPR_OK);
  use_fallback(raw);
  const char *proxies[] = {NULL, "api"};
  for (size_t k = 0; k < 2; k++) {
    mcpr_series_filter f;
    mcpr_series_filter_init(&f);
    f.proxy = proxies[k];
    f.since_ms = start;
    f.until_ms = now + 1;
    f.bucket_ms = H;
    f.by_label = true;
    mcpr_series_set a, b;
    series(q, &f, &a);
    series(raw, &f, &b);
    assert_int_equal(a.buckets, b.buckets);
    assert_int_equal(a.count, b.count);
    assert_int_equal(a.series[0].requests, k == 0 ? 66000 : 44000);
    for (size_t i = 0; i < a.count; i++) {
      assert_int_equal(a.series[i].requests, b.series[i].requests);
      if (i)
        assert_string_equal(a.series[i].label, b.series[i].label);
      for (size_t j = 0; j < a.buckets; j++) {
        const mcpr_series_point *x = &a.series[i].points[j], *y = &b.series[i].points[j];
        assert_int_equal(x->requests, y->requests);
        assert_int_equal(x->errors, y->errors);
        if (y->p95_us == MCPR_QUERY_NULL) {
          assert_int_equal(x->p95_us, MCPR_QUERY_NULL);
          continue;
        }
        if (llabs(x->p95_us - y->p95_us) > y->p95_us / 100 ||
            llabs(x->p50_us - y->p50_us) > y->p50_us / 100)
          fail_msg("bucket %zu: p50 %lld/%lld p95 %lld/%lld", j, (long long)x->p50_us,
                   (long long)y->p50_us, (long long)x->p95_us, (long long)y->p95_us);
      }
    }
    mcpr_series_set_release(&a);
    mcpr_series_set_release(&b);
  }
  mcpr_query_close(q);
  mcpr_query_close(raw);
  free(path);
  tu_rmdir(dir);
}

static void test_bad_windows(void **state) {
  (void)state;
  mcpr_query *q = open_q();
  mcpr_series_filter f;
  mcpr_series_set s;
  mcpr_error err = {0};
  four_hours(&f);
  f.bucket_ms = 0;
  assert_int_equal(mcpr_query_series(q, &f, &s, &err), MCPR_EINVAL);
  assert_null(s.series);
  four_hours(&f);
  f.until_ms = f.since_ms;
  assert_int_equal(mcpr_query_series(q, &f, &s, &err), MCPR_EINVAL);
  four_hours(&f);
  f.bucket_ms = 1000; /* 14401 buckets */
  assert_int_equal(mcpr_query_series(q, &f, &s, &err), MCPR_EINVAL);
  four_hours(&f);
  f.since_ms = MCPR_QUERY_NO_CUTOFF;
  assert_int_equal(mcpr_query_series(q, &f, &s, &err), MCPR_EINVAL);
  f.since_ms = INT64_MIN + 1; /* the span overflows int64 */
  f.until_ms = INT64_MAX;
  assert_int_equal(mcpr_query_series(q, &f, &s, &err), MCPR_EINVAL);
  assert_int_equal(mcpr_query_series(q, NULL, &s, &err), MCPR_EINVAL);
  mcpr_series_set_release(NULL);
  mcpr_query_close(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_series),
      cmocka_unit_test(test_fallback_from_stats),
      cmocka_unit_test(test_agrees_with_stats),
      cmocka_unit_test(test_rollup_hours),
      cmocka_unit_test(test_bad_windows),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}

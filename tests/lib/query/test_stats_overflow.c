/* Stats over hostile latencies and sizes: the sums saturate instead of
 * overflowing int64 (undefined behaviour, which the asan build's
 * -fsanitize=undefined turns into a crash). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/mcpr.h"
#include "query/backend.h"
#include "testutil.h"

static const mcpr_stats_row *row(const mcpr_stats *s, const char *label) {
  for (size_t i = 0; i < s->count; i++)
    if (strcmp(s->rows[i].label, label) == 0)
      return &s->rows[i];
  fail_msg("no stats row %s", label);
  return NULL;
}

static void sample(mcpr__stats_acc *acc, const char *tool, int64_t latency_us, int64_t bytes) {
  mcpr__stats_sample s = {.tool = tool, .tool_len = strlen(tool), .method = "tools/call",
                          .method_len = 10, .latency_us = latency_us, .bytes_in = bytes,
                          .bytes_out = bytes};
  assert_int_equal(mcpr__stats_acc_add(acc, &s), 0);
}

static void test_accumulator_saturates(void **state) {
  (void)state;
  mcpr__stats_acc *acc = mcpr__stats_acc_new();
  assert_non_null(acc);
  for (int i = 0; i < 3; i++)
    sample(acc, "big", INT64_MAX - 1, INT64_MAX);
  for (int i = 0; i < 3; i++)
    sample(acc, "neg", INT64_MIN + 1, INT64_MIN + 1);
  sample(acc, "near", INT64_MAX - 1, 1);
  sample(acc, "near", 1, 1);
  mcpr_stats st;
  mcpr_error err = {0};
  assert_int_equal(mcpr__stats_acc_finish(acc, &st, &err), MCPR_OK);
  mcpr__stats_acc_free(acc);

  const mcpr_stats_row *r = row(&st, "big");
  assert_int_equal(r->calls, 3);
  assert_int_equal(r->total_bytes_in, INT64_MAX);
  assert_int_equal(r->total_bytes_out, INT64_MAX);
  assert_int_equal(r->max_us, INT64_MAX - 1);
  assert_int_equal(r->p95_us, INT64_MAX - 1);
  assert_true(r->avg_us > 0 && r->avg_us <= INT64_MAX / 3 + 1);
  r = row(&st, "neg");
  assert_int_equal(r->total_bytes_in, INT64_MIN);
  assert_true(r->avg_us < 0);
  /* the sum is exactly INT64_MAX: the mean is rounded without overflowing */
  r = row(&st, "near");
  assert_int_equal(r->avg_us, INT64_MAX / 2 + 1);
  mcpr_stats_release(&st);
}

/* Rows written through the store API (no decoder in front to bound them). */
static void test_store_rows_with_huge_values(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *db = tu_path(dir, "huge.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, db, NULL, &err), MCPR_OK);
  int64_t now = mcpr_now_ms();
  for (int i = 0; i < 4; i++) {
    char id[MCPR_UUID_STRLEN + 1];
    mcpr_uuid_v7(now - 1000 + i, id);
    mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
    e.u.request = (mcpr_request_event){.request_id = id, .ts_ms = now - 1000 + i, .proxy = "api",
                                       .method = "tools/call", .tool = "hostile",
                                       .latency_us = INT64_C(9000000000000000000),
                                       .status = MCPR_REQUEST_OK,
                                       .bytes_in = INT64_MAX, .bytes_out = INT64_MAX - i};
    assert_int_equal(mcpr_store_record(s, &e), MCPR_OK);
  }
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);

  mcpr_query *q = NULL;
  assert_int_equal(mcpr_query_open(&q, db, &err), MCPR_OK);
  mcpr_stats_filter f = {NULL, MCPR_QUERY_NO_CUTOFF, 0};
  mcpr_stats st;
  assert_int_equal(mcpr_query_stats(q, &f, &st, &err), MCPR_OK);
  const mcpr_stats_row *r = row(&st, "hostile");
  assert_int_equal(r->calls, 4);
  assert_int_equal(r->max_us, INT64_C(9000000000000000000));
  assert_int_equal(r->total_bytes_in, INT64_MAX);
  assert_int_equal(r->total_bytes_out, INT64_MAX);
  assert_true(r->avg_us > 0);
  mcpr_stats_release(&st);
  mcpr_query_close(q);
  free(db);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accumulator_saturates),
      cmocka_unit_test(test_store_rows_with_huge_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

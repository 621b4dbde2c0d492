/*
 * Every query of SPEC §6, in each filter variant the backend builds, must
 * be served by an index on a store with our index set: no plan row may be
 * a full `SCAN requests`, through the table or a non-covering index (a
 * covering-index scan for count(*) is allowed).
 * With MCPR_WRITE_PLANS=FILE the plans are also written as markdown (how
 * docs/query-plans.md is made).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/query.h"
#include "query_fixture.h"
#include "store/query_sqlite.h"
#include "testutil.h"

typedef struct plans {
  int count;
  int full_scans;
  FILE *md;
} plans;

static bool full_scan_of_requests(const char *plan) {
  for (const char *line = plan; line && *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    while (len && *line == ' ')
      line++, len--;
    /* A whole-table walk, through the table or a non-covering index;
     * only count(*)-style covering-index scans are allowed. */
    if (len >= 13 && strncmp(line, "SCAN requests", 13) == 0 &&
        (len == 13 || strncmp(line + 13, " USING COVERING INDEX", 21) != 0))
      return true;
    line = end ? end + 1 : NULL;
  }
  return false;
}

static int on_plan(void *ctx, const char *name, const char *sql, const char *plan) {
  plans *p = ctx;
  p->count++;
  if (full_scan_of_requests(plan)) {
    p->full_scans++;
    fprintf(stderr, "full scan in '%s':\n%s\n%s\n", name, sql, plan);
  }
  if (p->md)
    fprintf(p->md, "### %s\n\n```sql\n%s\n```\n\n```\n%s```\n\n", name, sql, plan);
  return 0;
}

static void test_no_full_scans(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  fx_build(path);
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  plans p = {0};
  const char *out = getenv("MCPR_WRITE_PLANS");
  if (out && *out) {
    p.md = fopen(out, "w");
    assert_non_null(p.md);
  }
  assert_int_equal(mcpr__query_sqlite_plans(q, on_plan, &p, &err), MCPR_OK);
  if (p.md)
    fclose(p.md);
  assert_true(p.count >= 40);
  assert_int_equal(p.full_scans, 0);
  assert_true(full_scan_of_requests("SCAN requests\n"));
  assert_true(full_scan_of_requests("  SCAN requests\n"));
  assert_true(full_scan_of_requests("SCAN requests USING INDEX idx_requests_ts\n"));
  assert_false(full_scan_of_requests("SCAN requests USING COVERING INDEX idx_requests_ts\n"));
  mcpr_query_close(q);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_no_full_scans)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

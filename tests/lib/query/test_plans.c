/*
 * Every query of SPEC §6, in each filter variant the backend builds, must
 * be served by an index on a store with our index set: no plan row may be
 * a full scan of requests — through the table or a non-covering index (a
 * covering-index scan for count(*) is allowed) — whatever alias the SQL
 * gives it (`FROM requests r` plans as `SCAN r`); and no big table
 * (requests, sessions) may be scanned inside a correlated subquery, which
 * runs once per outer row: the quadratic shape of the original vacuum.
 * With MCPR_WRITE_PLANS=FILE the plans are also written as markdown (how
 * docs/query-plans.md is made).
 */
#include <ctype.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/query.h"
#include "query_fixture.h"
#include "backend/sqlite/extra_schema.h"
#include "backend/sqlite/query.h"
#include "store_fixtures.h"
#include "testutil.h"

typedef struct plans {
  int count;
  int full_scans;
  int vacuum_plans;
  FILE *md;
} plans;

/* Tables too big to walk; sessions only inside a correlated subquery. */
typedef enum big { NOT_BIG = 0, BIG_SESSIONS, BIG_REQUESTS } big;

static big big_table(const char *name, size_t len) {
  /* responses: one per request in the original's 0.5 layout */
  if (len == 8 && strncmp(name, "requests", 8) == 0)
    return BIG_REQUESTS;
  if (len == 9 && strncmp(name, "responses", 9) == 0)
    return BIG_REQUESTS;
  if (len == 8 && strncmp(name, "sessions", 8) == 0)
    return BIG_SESSIONS;
  return NOT_BIG;
}

static bool word_at(const char *p, const char *word) {
  size_t n = strlen(word);
  return strncasecmp(p, word, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_';
}

static size_t ident_len(const char *p) {
  size_t n = 0;
  while (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '.')
    n++;
  return n;
}

/*
 * What the name a plan row scans stands for: the table itself, or an
 * alias given in the SQL (`FROM requests r`, `JOIN requests AS r`,
 * `, requests r`).
 */
static big resolve(const char *sql, const char *name, size_t len) {
  big direct = big_table(name, len);
  if (direct != NOT_BIG || !sql)
    return direct;
  for (const char *p = sql; *p; p++) {
    bool after_from = p > sql && !isalnum((unsigned char)p[-1]) && p[-1] != '_' &&
                      (word_at(p, "FROM") || word_at(p, "JOIN"));
    bool after_comma = *p == ',';
    if (!after_from && !after_comma)
      continue;
    const char *t = p + (after_comma ? 1 : 4);
    while (*t == ' ')
      t++;
    size_t tlen = ident_len(t);
    big table = big_table(t, tlen);
    if (table == NOT_BIG)
      continue;
    const char *a = t + tlen;
    while (*a == ' ')
      a++;
    if (word_at(a, "AS")) {
      a += 2;
      while (*a == ' ')
        a++;
    }
    if (ident_len(a) == len && strncmp(a, name, len) == 0)
      return table;
  }
  return NOT_BIG;
}

static bool full_scan_of_big_table(const char *sql, const char *plan) {
  /* correlated[d]: the row at depth d or one of its parents is a
   * correlated subquery, run once per row of its outer query. */
  bool correlated[64] = {false};
  for (const char *line = plan; line && *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line), indent = 0;
    while (len && *line == ' ')
      line++, len--, indent++;
    size_t depth = indent / 2 < 63 ? indent / 2 : 63;
    correlated[depth] = (depth > 0 && correlated[depth - 1]) ||
                        (len >= 10 && strncmp(line, "CORRELATED", 10) == 0);
    if (len > 5 && strncmp(line, "SCAN ", 5) == 0) {
      const char *name = line + 5;
      size_t nlen = ident_len(name);
      big table = resolve(sql, name, nlen);
      bool covering = len >= 5 + nlen + 21 &&
                      strncmp(name + nlen, " USING COVERING INDEX", 21) == 0;
      /* A whole-table walk, through the table or a non-covering index;
       * only count(*)-style covering-index scans are allowed. */
      if (table == BIG_REQUESTS && !covering)
        return true;
      if (table != NOT_BIG && depth > 0 && correlated[depth - 1])
        return true;
    }
    line = end ? end + 1 : NULL;
  }
  return false;
}

static int on_plan(void *ctx, const char *name, const char *sql, const char *plan) {
  plans *p = ctx;
  p->count++;
  if (strncmp(name, "vacuum", 6) == 0)
    p->vacuum_plans++;
  if (full_scan_of_big_table(sql, plan)) {
    p->full_scans++;
    fprintf(stderr, "full scan in '%s':\n%s\n%s\n", name, sql, plan);
  }
  if (p->md)
    fprintf(p->md, "### %s\n\n```sql\n%s\n```\n\n```\n%s```\n\n", name, sql, plan);
  return 0;
}

static void test_detector(void **state) {
  (void)state;
  assert_true(full_scan_of_big_table(NULL, "SCAN requests\n"));
  assert_true(full_scan_of_big_table(NULL, "  SCAN requests\n"));
  assert_true(full_scan_of_big_table(NULL, "SCAN requests USING INDEX idx_requests_ts\n"));
  assert_false(
      full_scan_of_big_table(NULL, "SCAN requests USING COVERING INDEX idx_requests_ts\n"));
  assert_false(full_scan_of_big_table(NULL, "SCAN sessions\n"));
  assert_false(full_scan_of_big_table(NULL, "SCAN p\n"));
  /* Aliases, as the original vacuum wrote them. */
  const char *aliased = "SELECT count(*) FROM sessions s WHERE NOT EXISTS"
                        " (SELECT 1 FROM requests r WHERE r.session_id = s.session_id)";
  assert_true(full_scan_of_big_table(aliased, "SCAN s\nCORRELATED SCALAR SUBQUERY 1\n  SCAN r\n"));
  assert_true(full_scan_of_big_table("SELECT 1 FROM requests AS q", "SCAN q\n"));
  assert_true(full_scan_of_big_table("SELECT 1 FROM sessions, requests q", "SCAN q\n"));
  assert_true(full_scan_of_big_table("SELECT 1 FROM sessions JOIN requests q ON 1", "SCAN q\n"));
  assert_false(full_scan_of_big_table(aliased, "SCAN s\n"));
  assert_false(full_scan_of_big_table("SELECT 1 FROM requests_old r", "SCAN r\n"));
  /* Anything big walked per outer row, even through a covering index. */
  assert_true(full_scan_of_big_table(
      "SELECT 1 FROM requests r WHERE NOT EXISTS (SELECT 1 FROM sessions s)",
      "SEARCH r USING INDEX idx_requests_ts (ts<?)\nCORRELATED SCALAR SUBQUERY 1\n  SCAN s\n"));
  assert_true(full_scan_of_big_table(
      NULL, "SCAN sessions\nCORRELATED SCALAR SUBQUERY 1\n  SCAN requests USING COVERING INDEX"
            " idx_requests_ts\n"));
  /* A recursive CTE's own scan per step is not a table walk. */
  assert_false(full_scan_of_big_table(
      "WITH RECURSIVE p(name) AS (SELECT 1) SELECT count(name) FROM p",
      "SCAN p\n  CORRELATED SCALAR SUBQUERY 3\n    SCAN p\n"));
}

static void test_no_full_scans(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  fx_build(path);
  /* With the extra indexes (extra_schema.h): their plans too. */
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, MCPR__SESSIONS_SEEN_DDL, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
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
  /* Every statement of a vacuum, dry and real, with and without a proxy. */
  assert_true(p.vacuum_plans >= 11);
  assert_int_equal(p.full_scans, 0);
  mcpr_query_close(q);
  free(path);
  tu_rmdir(dir);
}

/* The same for the original's 0.5 layout, read with the original's own
 * index set (no index on requests.ts); its plans follow ours in the file. */
static void test_no_full_scans_v05(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "store.db");
  sf_build_original_v05(path, mcpr_now_ms());
  mcpr_query *q = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_query_open(&q, path, &err), MCPR_OK);
  plans p = {0};
  const char *out = getenv("MCPR_WRITE_PLANS");
  if (out && *out) {
    p.md = fopen(out, "a");
    assert_non_null(p.md);
    fprintf(p.md, "## Plans on the original's 0.5 layout\n\n");
  }
  assert_int_equal(mcpr__query_v05_plans(q, on_plan, &p, &err), MCPR_OK);
  if (p.md)
    fclose(p.md);
  assert_true(p.count >= 25);
  assert_int_equal(p.full_scans, 0);
  /* Not a 0.5 store: refused. */
  assert_int_equal(mcpr__query_sqlite_plans(q, on_plan, &p, &err) == MCPR_OK, 0);
  mcpr_query_close(q);
  free(path);
  tu_rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_detector),
                                     cmocka_unit_test(test_no_full_scans),
                                     cmocka_unit_test(test_no_full_scans_v05)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}

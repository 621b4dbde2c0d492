/*
 * A schema version is all of its rows or none (issue 12, defect 8).
 *
 *   - A row error part-way through a schema version (here: a trigger that
 *     refuses the snapshot of one proxy, after its change rows were
 *     inserted) leaves neither change rows nor a snapshot of it, counts
 *     one failed_constraint, and the other events of the batch are written.
 *   - Out of memory while diffing two payloads is an error, not an
 *     `updated` change row.
 */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/schema_diff.h"
#include "mcpr/mcpr.h"
#include "testutil.h"

static void exec_sql(const char *path, const char *sql) {
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

static mcpr_store_event schema_event(const char *proxy, const char *hash, const char *payload) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SCHEMA_VERSION};
  e.u.schema_version = (mcpr_schema_version_event){.ts_ms = 1700000000000, .proxy = proxy,
                                                   .upstream_url = "http://up",
                                                   .method = "tools/list",
                                                   .payload = payload,
                                                   .content_hash = hash};
  return e;
}

static void test_row_error_undoes_the_whole_version(void **state) {
  (void)state;
  char *dir = tu_tmpdir();
  char *path = tu_path(dir, "schema.db");
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  exec_sql(path, "CREATE TRIGGER refuse_bad BEFORE INSERT ON server_schema"
                 " WHEN NEW.proxy = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END");

  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_OK);
  const char *payload = "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}";
  mcpr_store_event good1 = schema_event("good", "h1", payload);
  mcpr_store_event bad = schema_event("bad", "h2", payload);
  mcpr_store_event good2 = schema_event("other", "h3", payload);
  assert_int_equal(mcpr_store_record(s, &good1), MCPR_OK);
  assert_int_equal(mcpr_store_record(s, &bad), MCPR_OK);
  assert_int_equal(mcpr_store_record(s, &good2), MCPR_OK);
  assert_int_equal(mcpr_store_flush(s, 10000, &err), MCPR_ECONSTRAINT);
  mcpr_store_stats st;
  assert_int_equal(mcpr_store_close(s, &st), MCPR_ECONSTRAINT);
  assert_int_equal(st.written, 2);
  assert_int_equal(st.failed_constraint, 1);

  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM schema_changes WHERE proxy = 'bad'"), 0);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM server_schema WHERE proxy = 'bad'"), 0);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM schema_changes"), 2);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM server_schema"), 2);
  free(path);
  tu_rmdir(dir);
}

static void *failing_malloc(size_t n) {
  (void)n;
  return NULL;
}

static int changes;
static char last_change[64];

static int on_change(void *ctx, const char *change_type, const char *item_name) {
  (void)ctx, (void)item_name;
  changes++;
  snprintf(last_change, sizeof last_change, "%s", change_type);
  return 0;
}

static void test_out_of_memory_is_not_an_update(void **state) {
  (void)state;
  const char *old_p = "{\"tools\":[{\"name\":\"a\"}]}";
  const char *new_p = "{\"tools\":[{\"name\":\"a\"},{\"name\":\"b\"}]}";
  json_malloc_t m;
  json_free_t f;
  json_get_alloc_funcs(&m, &f);
  json_set_alloc_funcs(failing_malloc, free);
  changes = 0;
  int rc = mcpr__schema_diff("tools/list", old_p, new_p, on_change, NULL);
  json_set_alloc_funcs(m, f);
  assert_int_equal(rc, -1);
  assert_int_equal(changes, 0);

  rc = mcpr__schema_diff("tools/list", old_p, new_p, on_change, NULL);
  assert_int_equal(rc, 0);
  assert_int_equal(changes, 1);
  assert_string_equal(last_change, "tool_added");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_row_error_undoes_the_whole_version),
      cmocka_unit_test(test_out_of_memory_is_not_an_update),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

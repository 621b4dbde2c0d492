/*
 * Migrations (SPEC §4): a store written by every older schema version
 * (v0..v4, the original's DDL) opens, is migrated in place to v5 with its
 * rows intact, ends with exactly the tables and columns of a fresh store,
 * and a second open changes nothing. Two processes opening the same old
 * file at the same moment migrate it exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mcpr/mcpr.h"
#include "backend/sqlite/db.h"
#include "store_fixtures.h"
#include "testutil.h"

#define NUL "\xE2\x88\x85"

static const char *const TABLES[] = {"requests", "sessions", "meta", "server_schema",
                                     "schema_changes"};

static const char REQUESTS_SQL[] =
    "SELECT request_id, ts, proxy, session_id, method, tool, latency_us, status,"
    " error_code, error_msg, bytes_in, bytes_out, resource_uri, prompt_name"
    " FROM requests ORDER BY id";
static const char SESSIONS_SQL[] =
    "SELECT session_id, proxy, started_at, last_seen_at, ended_at, client_name,"
    " client_version, client_platform, total_calls, total_errors"
    " FROM sessions ORDER BY session_id";
static const char SERVER_SCHEMA_SQL[] =
    "SELECT proxy, upstream_url, method, payload, captured_at, schema_hash"
    " FROM server_schema ORDER BY id";
static const char SCHEMA_CHANGES_SQL[] =
    "SELECT proxy, upstream_url, method, change_type, item_name, old_hash, new_hash,"
    " detected_at FROM schema_changes ORDER BY id";

/* The legacy rows after migration: latency in µs, the new columns NULL. */
static const char EXPECTED_REQUESTS[] =
    "r-1|1000|api|s-1|tools/call|search|12000|ok|" NUL "|" NUL "|10|20|" NUL "|" NUL "\n"
    "r-2|2000|api|s-1|tools/call|fetch|0|error|-32601|no such tool|" NUL "|" NUL "|" NUL
    "|" NUL "\n"
    "r-3|3000|web|" NUL "|resources/read|" NUL "|7000|ok|" NUL "|" NUL "|5|6|" NUL "|" NUL
    "\n";
static const char EXPECTED_SESSIONS[] =
    "s-1|api|900|2000|" NUL "|claude-ai|0.1|claude|3|1\n"
    "s-2|web|500|600|700|Cursor|2.0|cursor|0|0\n";
static const char EXPECTED_SERVER_SCHEMA[] =
    "default|http://up|tools/list|{\"tools\":[{\"name\":\"search\"}]}|1100|hash-tools\n"
    "default|http://up|prompts/list|{\"prompts\":[]}|1200|hash-prompts\n";
static const char EXPECTED_SCHEMA_CHANGES[] =
    "default|http://up|tools/list|initial|" NUL "|" NUL "|hash-tools|1100\n"
    "default|http://up|prompts/list|initial|" NUL "|" NUL "|hash-prompts|1200\n";

typedef struct fixture {
  char *dir;
  char *fresh; /* a store made by this library from nothing */
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  f->fresh = tu_path(f->dir, "fresh.db");
  mcpr_store *s = sf_open(f->fresh, 0, 0);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  free(f->fresh);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

/* Everything a user could read from the store, for before/after checks. */
static char *dump_all(const char *path) {
  static const char *const sql[] = {
      REQUESTS_SQL, SESSIONS_SQL, SERVER_SCHEMA_SQL, SCHEMA_CHANGES_SQL,
      "SELECT key, value FROM meta ORDER BY key",
      "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
  };
  size_t cap = 1, n = 0;
  char *out = calloc(1, 1);
  for (size_t i = 0; i < sizeof sql / sizeof sql[0]; i++) {
    char *part = sf_sql_dump(path, sql[i]);
    size_t k = strlen(part);
    out = realloc(out, cap + k + 2);
    memcpy(out + n, part, k);
    n += k;
    out[n++] = '#';
    out[n] = '\0';
    cap += k + 2;
    free(part);
  }
  return out;
}

/* The migrated file has the same tables, with the same columns in the same
 * order, types, constraints and defaults, as a fresh store, and at least
 * its indexes. */
static void assert_same_shape(const char *path, const char *fresh) {
  char *want = sf_tables(fresh), *got = sf_tables(path);
  assert_string_equal(got, want);
  free(want);
  free(got);
  for (size_t i = 0; i < sizeof TABLES / sizeof TABLES[0]; i++) {
    want = sf_table_info(fresh, TABLES[i]);
    got = sf_table_info(path, TABLES[i]);
    if (strcmp(got, want) != 0)
      fail_msg("columns of %s differ from a fresh store\n--- migrated ---\n%s--- fresh ---\n%s",
               TABLES[i], got, want);
    free(want);
    free(got);
  }
  char *indexes = sf_sql_dump(fresh, "SELECT name FROM sqlite_master WHERE type='index'"
                                     " AND name NOT LIKE 'sqlite_%' ORDER BY name");
  for (char *line = strtok(indexes, "\n"); line; line = strtok(NULL, "\n")) {
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='%s'",
             line);
    if (tu_sql_int(path, sql) != 1)
      fail_msg("index %s missing after migration", line);
  }
  free(indexes);
}

static void assert_migrated(const char *path, const char *fresh, int from, int64_t t0,
                            int64_t t1) {
  sf_assert_text(path, "SELECT value FROM meta WHERE key='schema_version'", "5");
  sf_assert_text(path, "SELECT value FROM meta WHERE key='mcpr_version'", mcpr_version());
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM meta"), 3);
  if (from >= 1) {
    sf_assert_text(path, "SELECT value FROM meta WHERE key='created_at'", SF_LEGACY_CREATED_AT);
  } else {
    /* v0 had no meta: created_at is set at the migration. */
    int64_t created = tu_sql_int(path, "SELECT CAST(value AS INTEGER) FROM meta"
                                       " WHERE key='created_at'");
    assert_in_range(created, t0, t1);
  }
  sf_assert_dump(path, REQUESTS_SQL, EXPECTED_REQUESTS);
  sf_assert_dump(path, SESSIONS_SQL, EXPECTED_SESSIONS);
  sf_assert_dump(path, SERVER_SCHEMA_SQL, from >= 2 ? EXPECTED_SERVER_SCHEMA : "");
  sf_assert_dump(path, SCHEMA_CHANGES_SQL, from >= 2 ? EXPECTED_SCHEMA_CHANGES : "");
  assert_same_shape(path, fresh);
  sf_assert_text(path, "PRAGMA integrity_check", "ok");
}

static void open_with_store(const char *path) {
  mcpr_store *s = sf_open(path, 0, 0);
  mcpr_store_stats st;
  assert_int_equal(mcpr_store_close(s, &st), MCPR_OK);
  assert_int_equal(st.accepted, 0);
}

static void open_with_db(const char *path) {
  sqlite3 *db = NULL;
  mcpr_error err = {0};
  mcpr_status st = mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &db, &err);
  if (st != MCPR_OK)
    fail_msg("mcpr__db_open(%s, EXISTING): %s: %s", path, mcpr_status_name(st), err.message);
  assert_non_null(db);
  assert_int_equal(sqlite3_close_v2(db), SQLITE_OK);
}

static void check_migration(fixture *f, int from, bool via_db_open) {
  char name[64];
  snprintf(name, sizeof name, "v%d-%s.db", from, via_db_open ? "db" : "store");
  char *path = tu_path(f->dir, name);
  sf_build_legacy(path, from);
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), SF_LEGACY_REQUESTS);

  int64_t t0 = mcpr_now_ms();
  if (via_db_open)
    open_with_db(path);
  else
    open_with_store(path);
  int64_t t1 = mcpr_now_ms();
  assert_migrated(path, f->fresh, from, t0, t1);

  /* A second open, by either side, is a no-op. */
  char *before = dump_all(path);
  open_with_store(path);
  open_with_db(path);
  char *after = dump_all(path);
  assert_string_equal(after, before);
  free(before);
  free(after);
  assert_migrated(path, f->fresh, from, t0, t1);

  /* The new columns are usable by the writer. */
  mcpr_store *s = sf_open(path, 0, 0);
  mcpr_store_event e = sf_request("r-new", 5000, "s-1");
  e.u.request.method = "prompts/get";
  e.u.request.tool = NULL;
  e.u.request.prompt_name = "summarise";
  e.u.request.resource_uri = "file:///x";
  sf_record(s, e);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  sf_assert_dump(path,
              "SELECT prompt_name, resource_uri, latency_us FROM requests"
              " WHERE request_id='r-new'",
              "summarise|file:///x|1500\n");
  assert_int_equal(tu_sql_int(path, "SELECT total_calls FROM sessions WHERE session_id='s-1'"),
                   4);
  free(path);
}

#define MIGRATION_TESTS(v)                                                     \
  static void test_v##v##_store_open(void **state) { check_migration(*state, v, false); } \
  static void test_v##v##_db_open_existing(void **state) { check_migration(*state, v, true); }
MIGRATION_TESTS(0)
MIGRATION_TESTS(1)
MIGRATION_TESTS(2)
MIGRATION_TESTS(3)
MIGRATION_TESTS(4)

/* v3→v4 multiplies latency by 1000 exactly once; a v4 file is in µs already. */
static void test_latency_units(void **state) {
  fixture *f = *state;
  char *v3 = tu_path(f->dir, "lat3.db"), *v4 = tu_path(f->dir, "lat4.db");
  sf_build_legacy(v3, 3);
  sf_build_legacy(v4, 4);
  assert_int_equal(tu_sql_int(v3, "SELECT latency_ms FROM requests WHERE request_id='r-1'"), 12);
  assert_int_equal(tu_sql_int(v4, "SELECT latency_us FROM requests WHERE request_id='r-1'"),
                   12000);
  for (int round = 0; round < 3; round++) {
    open_with_store(v3);
    open_with_db(v4);
    open_with_db(v3);
    open_with_store(v4);
  }
  const char *sql = "SELECT latency_us FROM requests WHERE request_id='r-1'";
  assert_int_equal(tu_sql_int(v3, sql), 12000);
  assert_int_equal(tu_sql_int(v4, sql), 12000);
  assert_int_equal(tu_sql_int(v3, "SELECT sum(latency_us) FROM requests"), 19000);
  assert_int_equal(tu_sql_int(v4, "SELECT sum(latency_us) FROM requests"), 19000);
  free(v3);
  free(v4);
}

/* A v2 unique key was (upstream_url, method); after migration two proxies
 * may hold the same upstream/method. */
static void test_v2_unique_key_now_per_proxy(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "uniq2.db");
  sf_build_legacy(path, 2);
  open_with_db(path);
  sf_exec(path, "INSERT INTO server_schema (proxy, upstream_url, method, payload,"
                " captured_at, schema_hash)"
                " VALUES ('other', 'http://up', 'tools/list', '{}', 1, 'h')");
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM server_schema"
                                    " WHERE upstream_url='http://up' AND method='tools/list'"),
                   2);
  free(path);
}

/* The original ran in WAL mode: an old file may be a WAL database. */
static void test_v0_wal_mode_file(void **state) {
  fixture *f = *state;
  for (int way = 0; way < 2; way++) {
    char *path = tu_path(f->dir, way ? "wal0-db.db" : "wal0-store.db");
    sf_build_legacy(path, 0);
    sf_exec(path, "PRAGMA journal_mode=WAL;");
    int64_t t0 = mcpr_now_ms();
    if (way)
      open_with_db(path);
    else
      open_with_store(path);
    assert_migrated(path, f->fresh, 0, t0, mcpr_now_ms());
    free(path);
  }
}

/* Child process: wait at the gate, open, close; the exit code says how it
 * went (0 ok, 10+status for a failed open). */
static void race_child(int gate, const char *path, bool via_db_open) {
  char c;
  /* Blocks until the parent closes the write end: all start together. */
  if (read(gate, &c, 1) != 0)
    _exit(90);
  mcpr_error err = {0};
  if (via_db_open) {
    sqlite3 *db = NULL;
    mcpr_status st = mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &db, &err);
    if (st != MCPR_OK) {
      fprintf(stderr, "race child: %s\n", err.message); /* why, in the test's log */
      _exit(10 + (int)st);
    }
    _exit(sqlite3_close_v2(db) == SQLITE_OK ? 0 : 81);
  }
  mcpr_store *s = NULL;
  mcpr_status st = mcpr_store_open(&s, path, NULL, &err);
  if (st != MCPR_OK) {
    fprintf(stderr, "race child: %s\n", err.message);
    _exit(10 + (int)st);
  }
  _exit(mcpr_store_close(s, NULL) == MCPR_OK ? 0 : 80);
}

/* Two processes open the same v0 file at the same moment: both succeed and
 * the file is migrated once. Rounds vary the file's journal mode and
 * whether the second opener is a writer or a read command. */
static void test_concurrent_open_v0(void **state) {
  fixture *f = *state;
  for (int round = 0; round < 8; round++) {
    bool wal = round & 1, mixed = round & 2;
    char name[32];
    snprintf(name, sizeof name, "race-%d.db", round);
    char *path = tu_path(f->dir, name);
    sf_build_legacy(path, 0);
    if (wal)
      sf_exec(path, "PRAGMA journal_mode=WAL;");

    int gate[2];
    assert_int_equal(pipe(gate), 0);
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
      pids[i] = fork();
      assert_true(pids[i] >= 0);
      if (pids[i] == 0) {
        close(gate[1]);
        race_child(gate[0], path, mixed && i == 1);
      }
    }
    close(gate[0]);
    close(gate[1]);
    for (int i = 0; i < 2; i++) {
      int status = 0;
      assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
      assert_true(WIFEXITED(status));
      if (WEXITSTATUS(status) != 0)
        fail_msg("round %d (wal %d, mixed %d): child %d exited %d", round, wal, mixed, i,
                 WEXITSTATUS(status));
    }
    assert_migrated(path, f->fresh, 0, 0, mcpr_now_ms());
    free(path);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_v0_store_open),
      cmocka_unit_test(test_v0_db_open_existing),
      cmocka_unit_test(test_v1_store_open),
      cmocka_unit_test(test_v1_db_open_existing),
      cmocka_unit_test(test_v2_store_open),
      cmocka_unit_test(test_v2_db_open_existing),
      cmocka_unit_test(test_v3_store_open),
      cmocka_unit_test(test_v3_db_open_existing),
      cmocka_unit_test(test_v4_store_open),
      cmocka_unit_test(test_v4_db_open_existing),
      cmocka_unit_test(test_latency_units),
      cmocka_unit_test(test_v2_unique_key_now_per_proxy),
      cmocka_unit_test(test_v0_wal_mode_file),
      cmocka_unit_test(test_concurrent_open_v0),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * Opening files that are not (or not yet, or no longer) stores this mcpr
 * can write (SPEC §4): a newer store, a file that is not SQLite, an SQLite
 * database of something else, a truncated store, a directory, a missing
 * file. Each is refused with its own status and a message that names the
 * problem, and a refused file is left byte for byte as it was. Also: the
 * path resolution order and the parent directory created on open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcpr/mcpr.h"
#include "backend/sqlite/db.h"
#include "store_fixtures.h"
#include "testutil.h"

typedef struct fixture {
  char *dir;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  f->dir = tu_tmpdir();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

static char *sidecar(const char *path, const char *suffix) {
  size_t n = strlen(path) + strlen(suffix) + 1;
  char *p = malloc(n);
  snprintf(p, n, "%s%s", path, suffix);
  return p;
}

static void assert_no_sidecars(const char *path) {
  static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
  for (size_t i = 0; i < 3; i++) {
    char *p = sidecar(path, suffixes[i]);
    if (sf_exists(p))
      fail_msg("%s was created", p);
    free(p);
  }
}

/* Try both ways of opening; each must fail with want (or want2 when
 * non-zero), leave the file's bytes as they were and create no sidecar. */
static void assert_refused(const char *path, mcpr_status want, mcpr_status want2,
                           const char *must_mention) {
  size_t len0 = 0, len1 = 0;
  unsigned char *before = sf_read_file(path, &len0);
  assert_non_null(before);

  for (int way = 0; way < 2; way++) {
    mcpr_error err = {0};
    mcpr_status st;
    if (way == 0) {
      mcpr_store *s = (mcpr_store *)&err; /* must be reset to NULL */
      st = mcpr_store_open(&s, path, NULL, &err);
      if (s) {
        mcpr_store_close(s, NULL);
        fail_msg("%s was opened as a store", path);
      }
    } else {
      sqlite3 *db = (sqlite3 *)&err;
      st = mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &db, &err);
      if (db) {
        sqlite3_close_v2(db);
        fail_msg("%s was opened as a store by mcpr__db_open", path);
      }
    }
    if (st != want && (want2 == MCPR_OK || st != want2))
      fail_msg("%s: open way %d gave %s (%s), want %s", path, way, mcpr_status_name(st),
               err.message, mcpr_status_name(want));
    assert_int_equal(err.status, st);
    assert_true(strlen(err.message) > 0);
    if (must_mention && !strstr(err.message, must_mention))
      fail_msg("message '%s' does not mention '%s'", err.message, must_mention);
    if (!strstr(err.message, path))
      fail_msg("message '%s' does not name the file %s", err.message, path);

    unsigned char *after = sf_read_file(path, &len1);
    assert_non_null(after);
    assert_int_equal(len1, len0);
    assert_memory_equal(after, before, len0);
    free(after);
    assert_no_sidecars(path);
  }
  free(before);
}

/* A real store file (WAL mode, as this library leaves it), with n requests. */
static void make_store(const char *path, int n) {
  mcpr_store *s = sf_open(path, 0, 0);
  for (int i = 0; i < n; i++) {
    char id[40];
    mcpr_uuid_v7(1000 + i, id);
    mcpr_store_event e = sf_request(id, 1000 + i, NULL);
    e.u.request.error_msg = "a message long enough to fill pages quickly............";
    sf_record(s, e);
  }
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
}

static void test_newer_version_refused(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "newer.db");
  make_store(path, 3);
  /* As a newer mcpr might leave it: rollback journal, version 99. */
  sf_exec(path, "PRAGMA journal_mode=DELETE;"
                "UPDATE meta SET value='99' WHERE key='schema_version';");
  assert_no_sidecars(path);
  assert_refused(path, MCPR_ENEWER, MCPR_OK, "99");
  assert_int_equal(tu_sql_int(path, "SELECT value FROM meta WHERE key='schema_version'"), 99);
  free(path);
}

static void test_newer_version_wal_file_untouched(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "newer-wal.db");
  make_store(path, 3);
  sf_exec(path, "UPDATE meta SET value='6' WHERE key='schema_version';"
                "PRAGMA wal_checkpoint(TRUNCATE);");
  size_t len0 = 0, len1 = 0;
  unsigned char *before = sf_read_file(path, &len0);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, path, NULL, &err), MCPR_ENEWER);
  assert_null(s);
  assert_non_null(strstr(err.message, "6"));
  unsigned char *after = sf_read_file(path, &len1);
  assert_int_equal(len1, len0);
  assert_memory_equal(after, before, len0);
  assert_int_equal(tu_sql_int(path, "SELECT value FROM meta WHERE key='schema_version'"), 6);
  free(before);
  free(after);
  free(path);
}

static void test_random_bytes_not_a_store(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "random.bin");
  unsigned char buf[8192];
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < sizeof buf; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    buf[i] = (unsigned char)x;
  }
  sf_write_file(path, buf, sizeof buf);
  assert_refused(path, MCPR_ENOTSTORE, MCPR_OK, "not an mcpr store");
  free(path);
}

static void test_text_file_not_a_store(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "notes.txt");
  const char text[] = "# my notes\nthis is not a database\n";
  sf_write_file(path, text, sizeof text - 1);
  assert_refused(path, MCPR_ENOTSTORE, MCPR_OK, "not an mcpr store");
  free(path);
}

/* A file of one byte (e.g. a lone newline) is not a store either: SQLite
 * reads it as an empty database, so only a check of the header before
 * sqlite3_open tells. It must not be turned into a store. */
static void test_one_byte_file_not_a_store(void **state) {
  fixture *f = *state;
  char *tiny = tu_path(f->dir, "tiny.txt");
  sf_write_file(tiny, "\n", 1);
  assert_refused(tiny, MCPR_ENOTSTORE, MCPR_OK, NULL);
  free(tiny);
}

static void test_other_sqlite_db_not_a_store(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "other.db");
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db,
                                "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                                "INSERT INTO customers (name) VALUES ('ada');",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_refused(path, MCPR_ENOTSTORE, MCPR_OK, "not an mcpr store");
  assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type='table'"), 1);

  /* A meta table whose schema_version is not a number. */
  char *bad = tu_path(f->dir, "badmeta.db");
  assert_int_equal(sqlite3_open(bad, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db,
                                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                                "INSERT INTO meta VALUES ('schema_version', 'five');",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  assert_refused(bad, MCPR_ENOTSTORE, MCPR_OK, NULL);
  free(bad);
  free(path);
}

/* An SQLite header followed by garbage: no crash, a clear refusal. */
static void test_sqlite_header_then_garbage(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "garbage.db");
  unsigned char buf[4096 * 3];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)(i * 131u + 7u);
  memcpy(buf, "SQLite format 3", 16);
  sf_write_file(path, buf, sizeof buf);
  assert_refused(path, MCPR_ECORRUPT, MCPR_ENOTSTORE, NULL);
  free(path);
}

static void test_empty_file_becomes_store(void **state) {
  fixture *f = *state;
  for (int way = 0; way < 2; way++) {
    char *path = tu_path(f->dir, way ? "empty-db.db" : "empty-store.db");
    sf_write_file(path, "", 0);
    mcpr_error err = {0};
    if (way == 0) {
      mcpr_store *s = sf_open(path, 0, 0);
      sf_record(s, sf_request("r-1", 1000, NULL));
      assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
      assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM requests"), 1);
    } else {
      sqlite3 *db = NULL;
      assert_int_equal(mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &db, &err), MCPR_OK);
      sqlite3_close_v2(db);
    }
    assert_int_equal(tu_sql_int(path, "SELECT value FROM meta WHERE key='schema_version'"), 5);
    assert_int_equal(tu_sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type='table'"
                                      " AND name IN ('requests','sessions','meta',"
                                      "'server_schema','schema_changes')"),
                     5);
    free(path);
  }
}

static void test_directory_refused(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "adir");
  assert_int_equal(mkdir(path, 0700), 0);
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  mcpr_status st = mcpr_store_open(&s, path, NULL, &err);
  assert_int_not_equal(st, MCPR_OK);
  assert_null(s);
  assert_non_null(strstr(err.message, path));
  sqlite3 *db = NULL;
  st = mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &db, &err);
  assert_int_not_equal(st, MCPR_OK);
  assert_null(db);
  free(path);
}

static void test_existing_mode_missing_file(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "nothere/sub/store.db");
  char *parent = tu_path(f->dir, "nothere");
  sqlite3 *db = NULL;
  mcpr_error err = {0};
  assert_int_equal(mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &db, &err), MCPR_ENOTFOUND);
  assert_null(db);
  assert_non_null(strstr(err.message, path));
  assert_false(sf_exists(path));
  assert_false(sf_exists(parent));

  char *flat = tu_path(f->dir, "missing.db");
  assert_int_equal(mcpr__db_open(flat, MCPR__DB_EXISTING, NULL, &db, &err), MCPR_ENOTFOUND);
  assert_false(sf_exists(flat));
  free(flat);
  free(parent);
  free(path);
}

static void test_truncated_store(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "truncated.db");
  make_store(path, 3000);
  size_t len = 0;
  unsigned char *bytes = sf_read_file(path, &len);
  assert_true(len > 8 * 4096);
  sf_write_file(path, bytes, len / 2);
  free(bytes);

  for (int way = 0; way < 2; way++) {
    mcpr_error err = {0};
    mcpr_status st;
    if (way == 0) {
      mcpr_store *s = NULL;
      st = mcpr_store_open(&s, path, NULL, &err);
      if (st == MCPR_OK)
        mcpr_store_close(s, NULL);
    } else {
      sqlite3 *db = NULL;
      st = mcpr__db_open(path, MCPR__DB_EXISTING, NULL, &db, &err);
      if (st == MCPR_OK)
        sqlite3_close_v2(db);
    }
    if (st != MCPR_ECORRUPT && st != MCPR_ENOTSTORE)
      fail_msg("truncated store, open way %d: %s (%s), want ECORRUPT or ENOTSTORE", way,
               mcpr_status_name(st), err.message);
    assert_non_null(strstr(err.message, path));
  }
  free(path);
}

/* ---------- path resolution and the parent directory ---------- */

typedef struct saved_env {
  char *home, *db;
} saved_env;

static saved_env env_save(void) {
  const char *h = getenv("HOME"), *d = getenv("MCPR_DB");
  return (saved_env){h ? strdup(h) : NULL, d ? strdup(d) : NULL};
}

static void env_restore(saved_env e) {
  if (e.home)
    setenv("HOME", e.home, 1);
  else
    unsetenv("HOME");
  if (e.db)
    setenv("MCPR_DB", e.db, 1);
  else
    unsetenv("MCPR_DB");
  free(e.home);
  free(e.db);
}

static void assert_resolves(const char *explicit_path, const char *want) {
  mcpr_error err = {0};
  char *got = mcpr_store_resolve_path(explicit_path, &err);
  if (!got)
    fail_msg("resolve_path failed: %s", err.message);
  assert_string_equal(got, want);
  free(got);
}

static void test_resolve_path_order(void **state) {
  (void)state;
  saved_env saved = env_save();
  setenv("HOME", "/home/someone", 1);
  setenv("MCPR_DB", "/from/env.db", 1);
  assert_resolves("/explicit.db", "/explicit.db");
  assert_resolves(NULL, "/from/env.db");
  assert_resolves("", "/from/env.db");
  setenv("MCPR_DB", "", 1);
  assert_resolves(NULL, "/home/someone/.mcpr/store.db");
  unsetenv("MCPR_DB");
  assert_resolves(NULL, "/home/someone/.mcpr/store.db");
  assert_resolves("rel/store.db", "rel/store.db");
  unsetenv("HOME");
  mcpr_error err = {0};
  char *p = mcpr_store_resolve_path(NULL, &err);
  assert_null(p);
  assert_int_not_equal(err.status, MCPR_OK);
  assert_true(strlen(err.message) > 0);
  assert_resolves("/explicit.db", "/explicit.db");
  env_restore(saved);
}

static void assert_mode_0700(const char *dir) {
  struct stat sb;
  if (stat(dir, &sb) != 0)
    fail_msg("%s was not created: %s", dir, strerror(errno));
  assert_true(S_ISDIR(sb.st_mode));
  if ((sb.st_mode & 0777) != 0700)
    fail_msg("%s has mode %o, want 0700", dir, (unsigned)(sb.st_mode & 0777));
}

static void test_parent_directories_created(void **state) {
  fixture *f = *state;
  mode_t old = umask(022);
  char *path = tu_path(f->dir, "a/b/c/store.db");
  mcpr_store *s = sf_open(path, 0, 0);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  assert_true(sf_exists(path));
  static const char *const dirs[] = {"a", "a/b", "a/b/c"};
  for (size_t i = 0; i < 3; i++) {
    char *d = tu_path(f->dir, dirs[i]);
    assert_mode_0700(d);
    free(d);
  }
  free(path);

  /* The default location: $HOME/.mcpr/store.db, with .mcpr created 0700. */
  saved_env saved = env_save();
  char *home = tu_path(f->dir, "home");
  assert_int_equal(mkdir(home, 0755), 0);
  setenv("HOME", home, 1);
  unsetenv("MCPR_DB");
  mcpr_error err = {0};
  assert_int_equal(mcpr_store_open(&s, NULL, NULL, &err), MCPR_OK);
  char *want = tu_path(home, ".mcpr/store.db");
  assert_string_equal(mcpr_store_path(s), want);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  assert_true(sf_exists(want));
  char *dot = tu_path(home, ".mcpr");
  assert_mode_0700(dot);

  /* MCPR_DB wins over HOME. */
  char *envdb = tu_path(f->dir, "envdir/x.db");
  setenv("MCPR_DB", envdb, 1);
  assert_int_equal(mcpr_store_open(&s, NULL, NULL, &err), MCPR_OK);
  assert_string_equal(mcpr_store_path(s), envdb);
  assert_int_equal(mcpr_store_close(s, NULL), MCPR_OK);
  assert_true(sf_exists(envdb));
  env_restore(saved);
  umask(old);
  free(envdb);
  free(dot);
  free(want);
  free(home);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_newer_version_refused),
      cmocka_unit_test(test_newer_version_wal_file_untouched),
      cmocka_unit_test(test_random_bytes_not_a_store),
      cmocka_unit_test(test_text_file_not_a_store),
      cmocka_unit_test(test_one_byte_file_not_a_store),
      cmocka_unit_test(test_other_sqlite_db_not_a_store),
      cmocka_unit_test(test_sqlite_header_then_garbage),
      cmocka_unit_test(test_empty_file_becomes_store),
      cmocka_unit_test(test_directory_refused),
      cmocka_unit_test(test_existing_mode_missing_file),
      cmocka_unit_test(test_truncated_store),
      cmocka_unit_test(test_resolve_path_order),
      cmocka_unit_test(test_parent_directories_created),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

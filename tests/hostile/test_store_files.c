/*
 * Every command that opens the store, pointed at a file that is not a
 * usable store: empty, truncated, not SQLite, an SQLite database of
 * something else, from the future (schema_version 99), and read-only (on
 * a read-only bind mount, since the tests run as root and chmod 0444 does
 * not stop root). Each run: exit 0 or 1 (never a crash or a hang), a
 * message that names the problem, and a damaged or foreign file left byte
 * for byte as it was, with nothing created beside it (no -wal, -shm,
 * -journal or -mcprlock). And a good store read by every reading command
 * gets no -mcprlock: only a writer needs one.
 */
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostile.h"

/* A store on a read-only mount answers every reading command (exit 0):
 * db.c opens it read-only, immutable when no -wal was left behind. */
#define READ_ONLY_READS HX_OK

static const char GOOD_LINE[] =
    "{\"type\":\"session_end\",\"session_id\":\"hostile-s\",\"ts\":1700000000000}\n";

/* Every command that opens a store, as argv after --db PATH. */
static const char *const *const COMMANDS[] = {
    (const char *const[]){"proxy", "status", NULL},
    (const char *const[]){"proxy", "logs", "--since", "1000w", NULL},
    (const char *const[]){"proxy", "slow", NULL},
    (const char *const[]){"proxy", "sessions", NULL},
    (const char *const[]){"proxy", "session", "sess-00", NULL},
    (const char *const[]){"proxy", "clients", NULL},
    (const char *const[]){"proxy", "schema", NULL},
    (const char *const[]){"proxy", "schema", "--changes", NULL},
    (const char *const[]){"store", "stats", NULL},
    (const char *const[]){"store", "vacuum", "--before", "3650d", "--dry-run", NULL},
    (const char *const[]){"store", "vacuum", "--before", "3650d", NULL},
    (const char *const[]){"ingest", "-", NULL},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

typedef struct fixture {
  hx_store good; /* a real store, for truncating and copying */
  char *dir;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  hx_store_make(&f->good);
  f->dir = tu_tmpdir();
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  hx_store_free(&f->good);
  tu_rmdir(f->dir);
  free(f);
  return 0;
}

/* Run cmd with --db path (optionally through a prefix such as unshare). */
static void run_on(const char *path, const char *const *cmd, const char *const *prefix,
                   int allowed, cli_result *r) {
  const char *args[40];
  size_t n = 0;
  const char *bin = NULL;
  if (prefix) {
    bin = prefix[0];
    for (size_t i = 1; prefix[i]; i++)
      args[n++] = prefix[i];
    args[n++] = getenv("MCPR_BIN");
  }
  args[n++] = "--db";
  args[n++] = path;
  for (size_t i = 0; cmd[i]; i++)
    args[n++] = cmd[i];
  args[n] = NULL;
  const char *env[] = {"MCPR_DB=", NULL};
  cli_spec spec = {.bin = bin, .args = args, .env = env, .stdin_data = GOOD_LINE,
                   .timeout_ms = HX_TIMEOUT_MS};
  cli_run(&spec, r);
  hx_check(r, args, allowed);
}

/* Every command refuses the file (exit 1, message mentioning must_say),
 * and the file and its directory are as they were. */
static void refused_untouched(const char *path, const char *must_say) {
  size_t len0 = 0;
  unsigned char *before = sf_read_file(path, &len0);
  assert_non_null(before);
  for (size_t i = 0; i < N_COMMANDS; i++) {
    cli_result r;
    run_on(path, COMMANDS[i], NULL, HX_FAIL, &r);
    if (!strstr(r.err, must_say))
      fail_msg("mcpr %s %s on %s: message does not say '%s': %s", COMMANDS[i][0],
               COMMANDS[i][1], path, must_say, r.err);
    cli_result_free(&r);
    size_t len1 = 0;
    unsigned char *after = sf_read_file(path, &len1);
    if (len0 != len1 || memcmp(before, after, len0) != 0)
      fail_msg("mcpr %s %s changed %s", COMMANDS[i][0], COMMANDS[i][1], path);
    free(after);
    static const char *const sidecars[] = {"-wal", "-shm", "-journal", "-mcprlock"};
    for (size_t k = 0; k < 4; k++) {
      char side[4200];
      snprintf(side, sizeof side, "%s%s", path, sidecars[k]);
      if (sf_exists(side))
        fail_msg("mcpr %s %s left %s behind", COMMANDS[i][0], COMMANDS[i][1], side);
    }
  }
  free(before);
}

static void test_truncated_store(void **state) {
  fixture *f = *state;
  size_t len = 0;
  unsigned char *bytes = sf_read_file(f->good.path, &len);
  assert_true(len > 8192);
  char *path = tu_path(f->dir, "truncated.db");
  sf_write_file(path, bytes, len / 2);
  refused_untouched(path, path);
  /* Cut inside the 100-byte SQLite header too. */
  sf_write_file(path, bytes, 50);
  refused_untouched(path, path);
  free(path);
  free(bytes);
}

static void test_not_sqlite(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "text.db");
  static const char text[] = "this is not a database\n\0\xff\xfe binary tail";
  sf_write_file(path, text, sizeof text);
  refused_untouched(path, "not an mcpr store");
  free(path);
}

static void test_foreign_sqlite(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "foreign.db");
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db,
                                "CREATE TABLE photos(id INTEGER PRIMARY KEY, data BLOB);"
                                "INSERT INTO photos(data) VALUES (x'00ff');",
                                NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  refused_untouched(path, "not an mcpr store");
  free(path);
}

/* SQLite databases of other programs that happen to use a table name or
 * two of ours: told apart before anything writes, in rollback-journal and
 * in WAL mode. */
static void test_foreign_layouts(void **state) {
  fixture *f = *state;
  static const char *const layouts[] = {
      /* no meta: would be taken for a version-0 store and migrated */
      "CREATE TABLE requests(id INTEGER PRIMARY KEY, url TEXT, body BLOB);"
      "INSERT INTO requests(url) VALUES ('https://example.com');",
      /* a meta table with a version we know, over someone else's tables */
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta VALUES ('schema_version', '3');"
      "CREATE TABLE requests(id INTEGER PRIMARY KEY, payload TEXT);",
      /* the original's 0.4 requests table without its sessions */
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "INSERT INTO meta VALUES ('schema_version', '5');"
      "CREATE TABLE requests(id INTEGER PRIMARY KEY, request_id TEXT, ts INTEGER,"
      " proxy TEXT, method TEXT, latency_us INTEGER, status TEXT);",
  };
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
    for (int wal = 0; wal < 2; wal++) {
      char name[32];
      snprintf(name, sizeof name, "foreign-%zu-%s.db", i, wal ? "wal" : "rollback");
      char *path = tu_path(f->dir, name);
      sqlite3 *db = NULL;
      assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
      assert_int_equal(sqlite3_exec(db, layouts[i], NULL, NULL, NULL), SQLITE_OK);
      if (wal)
        assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL),
                         SQLITE_OK);
      sqlite3_close(db);
      refused_untouched(path, "not an mcpr store");
      free(path);
    }
  }
}

/* Reading a good store creates no lock file beside it. */
static void test_reads_create_no_lock_file(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "good-copy.db");
  size_t len = 0;
  unsigned char *bytes = sf_read_file(f->good.path, &len);
  sf_write_file(path, bytes, len);
  free(bytes);
  char lock[4200];
  snprintf(lock, sizeof lock, "%s-mcprlock", path);
  for (size_t i = 0; i < N_COMMANDS; i++) {
    bool writes = strcmp(COMMANDS[i][0], "ingest") == 0 ||
                  (strcmp(COMMANDS[i][0], "store") == 0 &&
                   strcmp(COMMANDS[i][1], "vacuum") == 0 && !COMMANDS[i][4]);
    if (writes)
      continue;
    cli_result r;
    run_on(path, COMMANDS[i], NULL, HX_OK, &r);
    cli_result_free(&r);
    if (sf_exists(lock))
      fail_msg("mcpr %s %s created %s", COMMANDS[i][0], COMMANDS[i][1], lock);
  }
  free(path);
}

static void test_future_store(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "future.db");
  size_t len = 0;
  unsigned char *bytes = sf_read_file(f->good.path, &len);
  sf_write_file(path, bytes, len);
  free(bytes);
  sf_exec(path, "UPDATE meta SET value='99' WHERE key='schema_version'");
  refused_untouched(path, "newer");
  free(path);
}

/* An empty file is an empty SQLite database: a command may refuse it or
 * make it a store, but must leave a valid store or the empty file. */
static void test_empty_file(void **state) {
  fixture *f = *state;
  char *path = tu_path(f->dir, "empty.db");
  for (size_t i = 0; i < N_COMMANDS; i++) {
    sf_write_file(path, "", 0);
    cli_result r;
    run_on(path, COMMANDS[i], NULL, HX_OK | HX_FAIL, &r);
    cli_result_free(&r);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    if (sb.st_size > 0) {
      char *ic = sf_sql_text(path, "PRAGMA integrity_check");
      assert_string_equal(ic, "ok");
      free(ic);
      assert_true(tu_sql_int(path, "SELECT count(*) FROM requests") == 0);
    }
  }
  free(path);
}

/*
 * Read-only: the store's directory bind-mounted read-only in a private
 * mount namespace of the child (unshare -m), so nothing outside it sees
 * the mount. Reading commands work or fail with a message; writing ones
 * fail with a message; the file is unchanged.
 */
static void test_read_only_store(void **state) {
  fixture *f = *state;
  char *rodir = tu_path(f->dir, "ro");
  assert_int_equal(mkdir(rodir, 0700), 0);
  char *path = tu_path(rodir, "store.db");
  size_t len = 0;
  unsigned char *bytes = sf_read_file(f->good.path, &len);
  sf_write_file(path, bytes, len);
  char script[8192];
  snprintf(script, sizeof script,
           "mount --bind '%s' '%s' && mount -o remount,bind,ro '%s' && exec \"$@\"", rodir,
           rodir, rodir);
  const char *probe_args[] = {"-m", "--propagation", "private", "sh", "-c", script, "sh", "true",
                              NULL};
  cli_result r;
  cli_spec probe = {.bin = "/usr/bin/unshare", .args = probe_args, .timeout_ms = HX_TIMEOUT_MS};
  cli_run(&probe, &r);
  bool can_mount = r.exit_code == 0;
  cli_result_free(&r);
  if (!can_mount) {
    /* chmod 0444 does not stop root, so there is nothing to test here. */
    fprintf(stderr, "SKIP read-only store: cannot make a read-only bind mount here\n");
  } else {
    const char *prefix[] = {"/usr/bin/unshare", "-m", "--propagation", "private", "sh", "-c", script,
                            "sh", NULL};
    for (size_t i = 0; i < N_COMMANDS; i++) {
      bool writes = strcmp(COMMANDS[i][0], "ingest") == 0 ||
                    (strcmp(COMMANDS[i][0], "store") == 0 && strcmp(COMMANDS[i][1], "vacuum") == 0 &&
                     !COMMANDS[i][4]);
      run_on(path, COMMANDS[i], prefix, writes ? HX_FAIL : READ_ONLY_READS, &r);
      if (getenv("HX_VERBOSE"))
        fprintf(stderr, "read-only: %s %s → %d %s", COMMANDS[i][0], COMMANDS[i][1], r.exit_code,
                r.err);
      cli_result_free(&r);
      size_t len1 = 0;
      unsigned char *after = sf_read_file(path, &len1);
      if (len != len1 || memcmp(bytes, after, len) != 0)
        fail_msg("mcpr %s %s changed a store on a read-only mount", COMMANDS[i][0],
                 COMMANDS[i][1]);
      free(after);
    }
  }
  free(bytes);
  free(path);
  free(rodir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_truncated_store), cmocka_unit_test(test_not_sqlite),
      cmocka_unit_test(test_foreign_sqlite),  cmocka_unit_test(test_future_store),
      cmocka_unit_test(test_empty_file),      cmocka_unit_test(test_read_only_store),
      cmocka_unit_test(test_foreign_layouts), cmocka_unit_test(test_reads_create_no_lock_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}

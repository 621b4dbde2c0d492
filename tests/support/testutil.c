#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

char *tu_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/mcpr-test-XXXXXX", base && *base ? base : "/tmp");
  char *d = mkdtemp(tmpl);
  assert_non_null(d);
  return strdup(d);
}

void tu_rmdir(char *dir) {
  if (!dir)
    return;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "warning: could not remove %s\n", dir);
  free(dir);
}

char *tu_path(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  assert_non_null(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

sqlite3_stmt *tu_sql_insert_begin(const char *db_path, const char *sql, sqlite3 **db) {
  *db = NULL;
  assert_int_equal(sqlite3_open(db_path, db), SQLITE_OK);
  sqlite3_busy_timeout(*db, 5000);
  assert_int_equal(sqlite3_exec(*db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(*db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("sql error in '%s': %s", sql, sqlite3_errmsg(*db));
  return st;
}

void tu_sql_insert_end(sqlite3 *db, sqlite3_stmt *st) {
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

int64_t tu_sql_int(const char *db_path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
    fail_msg("sql error in '%s': %s", sql, sqlite3_errmsg(db));
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW)
    fail_msg("no row from '%s': %s", sql, sqlite3_errmsg(db));
  int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

int64_t tu_sql_int_or_zero(const char *db_path, const char *sql) {
  if (access(db_path, F_OK) != 0)
    return 0;
  sqlite3 *h = NULL;
  int64_t n = 0;
  if (sqlite3_open_v2(db_path, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_busy_timeout(h, 2000);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  return n;
}

char *tu_read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *s = calloc(1, (size_t)n + 1);
  assert_non_null(s);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  return s;
}

void tu_write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f)
    fail_msg("cannot create %s", path);
  fputs(text, f);
  fclose(f);
}

int64_t tu_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tu_sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* testutil.h — helpers shared by the tests. */
#ifndef MCPR_TESTUTIL_H
#define MCPR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

/* A fresh empty directory under $TMPDIR (or /tmp); returns a new string. */
char *tu_tmpdir(void);
/* rm -rf dir and free it. */
void tu_rmdir(char *dir);
/* path join into a new string */
char *tu_path(const char *dir, const char *name);
/* Another writer of the store at db_path: a raw connection, a transaction
 * begun and sql (an INSERT) prepared on it; the test binds and steps it,
 * then tu_sql_insert_end commits and closes. */
sqlite3_stmt *tu_sql_insert_begin(const char *db_path, const char *sql, sqlite3 **db);
void tu_sql_insert_end(sqlite3 *db, sqlite3_stmt *st);
/* Run a single SQL query returning one integer (test assertions only). */
int64_t tu_sql_int(const char *db_path, const char *sql);
/* The same for polling a store another process is writing: 0 while the
 * file does not exist, cannot be opened, stays busy for 2 s or the query
 * gives no row. */
int64_t tu_sql_int_or_zero(const char *db_path, const char *sql);

/* Whole text file as a new NUL-terminated string; fails the test when it
 * cannot be read. */
char *tu_read_text(const char *path);
/* Write text to path (create/truncate); fails the test when it cannot. */
void tu_write_text(const char *path, const char *text);

/* Monotonic clock, milliseconds. */
int64_t tu_mono_ms(void);
/* Sleep ms milliseconds (a signal handler may cut it short). */
void tu_sleep_ms(int64_t ms);

#endif

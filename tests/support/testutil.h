/* testutil.h — helpers shared by the tests. */
#ifndef MCPR_TESTUTIL_H
#define MCPR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* A fresh empty directory under $TMPDIR (or /tmp); returns a new string. */
char *tu_tmpdir(void);
/* rm -rf dir and free it. */
void tu_rmdir(char *dir);
/* path join into a new string */
char *tu_path(const char *dir, const char *name);
/* Run a single SQL query returning one integer (test assertions only). */
int64_t tu_sql_int(const char *db_path, const char *sql);

#endif

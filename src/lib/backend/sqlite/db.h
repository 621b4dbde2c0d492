/*
 * db.h — internal to the SQLite backend: opening a store file (SPEC §4).
 * Shared by the backend's write and read sides, so both check, configure
 * and migrate a file the same way. This is the one place that knows the
 * SQLite schema and pragmas.
 */
#ifndef MCPR__SQLITE_DB_H
#define MCPR__SQLITE_DB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "mcpr/error.h"
#include "mcpr/query.h"
#include "mcpr/store.h"

typedef enum mcpr__db_mode {
  /* Create the file (and its parent directory) when missing. */
  MCPR__DB_CREATE = 1,
  /* The file must exist. Migrations still run (they write); a read-only
   * file at the current version is opened read-only. */
  MCPR__DB_EXISTING = 2,
} mcpr__db_mode;

/*
 * Open path, refuse anything that is not a store of a version we know
 * before writing a byte, then set the pragmas and migrate to
 * MCPR_STORE_SCHEMA_VERSION. On success *out is an open connection the
 * caller closes with sqlite3_close_v2(). vfs may be NULL.
 */
mcpr_status mcpr__db_open(const char *path, mcpr__db_mode mode, const char *vfs,
                          sqlite3 **out, mcpr_error *err);

/* What an existing file holds, as mcpr__db_identify() finds it. */
typedef enum mcpr__db_layout {
  /* An empty file or an SQLite database without tables: a store to be. */
  MCPR__LAYOUT_EMPTY = 0,
  /* A store of schema version 0..MCPR_STORE_SCHEMA_VERSION (ours, or the
   * original's up to 0.4.x): opened, migrated and written as usual. */
  MCPR__LAYOUT_STORE = 1,
  /* The original's 0.5.x layout (meta.schema_version '1' with `requests`
   * + `responses`, `schema_items`): read by query_v05.c, never written. */
  MCPR__LAYOUT_ORIGINAL_V05 = 2,
} mcpr__db_layout;

/*
 * Identify the existing file at path without writing a byte to it or
 * creating anything beside it (no -wal, -shm, -journal or -mcprlock):
 * *layout and, for MCPR__LAYOUT_STORE, *version. A file that is not
 * SQLite, an SQLite database of something else, a store from a newer mcpr
 * or a corrupt one is an error (MCPR_ENOTSTORE, MCPR_ENEWER,
 * MCPR_ECORRUPT...) with a message naming path. vfs may be NULL.
 */
mcpr_status mcpr__db_identify(const char *path, const char *vfs, mcpr__db_layout *layout,
                              int *version, mcpr_error *err);

/*
 * Open path read-only so that nothing is created beside it: a
 * rollback-journal file plainly (SQLITE_OPEN_READONLY), a WAL-mode one
 * plainly when its -wal and -shm are there (a writer may be running), else
 * immutable (a WAL read-only connection would create and leave both).
 * Returns the SQLite code; *db is to be closed either way.
 */
int mcpr__db_open_untouched(const char *path, const char *vfs, sqlite3 **db);

/* The message for a writer pointed at the original's 0.5.x layout. */
mcpr_status mcpr__db_refuse_v05(const char *path, mcpr_error *err);

/* sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); see mcpr_process_init(). */
mcpr_status mcpr__db_process_init(void);

/* Map an SQLite result code to a status (SQLITE_FULL → MCPR_EDISKFULL...). */
mcpr_status mcpr__db_status(int sqlite_rc);

/* Fill err from the connection's last error, prefixed with what was done.
 * Returns the mapped status. */
mcpr_status mcpr__db_error(sqlite3 *db, int rc, mcpr_error *err, const char *doing);

/* The file's schema_version: 0 for a pre-meta store, -1 for an empty
 * database, -2 for a database that is not a store. */
int mcpr__db_schema_version(sqlite3 *db, mcpr_error *err);

/* Run sql (no rows, no parameters) — for fixed statements only. */
int mcpr__db_exec(sqlite3 *db, const char *sql);

/* mkdir -p for the parent directory of path (mode 0700 for new ones). */
mcpr_status mcpr__mkdir_parent(const char *path, mcpr_error *err);

/*
 * The store's commit lock: an flock() on `<store>-mcprlock` that every
 * mcpr connection holds while it writes (BEGIN … COMMIT, with the
 * checkpoint SQLite may run inside COMMIT) or checkpoints, in every
 * process. SQLite before 3.51.3 — Debian 12 ships 3.40.1 — has a race
 * between a checkpoint on one connection and another connection's commit
 * that restarts the WAL, which can lose committed transactions; with this
 * lock mcpr's own commits and checkpoints never overlap. A separate file,
 * because closing any descriptor of the database itself would drop
 * SQLite's POSIX locks. Best effort: -1 when the file cannot be opened
 * (a read-only directory), and locking a -1 does nothing.
 */
int mcpr__commit_lock_open(const char *db_path);
/* Take the lock, waiting at most timeout_ms: a stopped process holding it
 * must not hang a writer, a migration, a vacuum or a close. false when it
 * was not obtained. */
bool mcpr__commit_lock_within(int fd, int timeout_ms);
/* How long a closing writer waits for the lock before it closes without
 * checkpointing. */
#define MCPR__CLOSE_LOCK_WAIT_MS 5000
void mcpr__commit_unlock(int fd);
void mcpr__commit_lock_close(int fd);

/*
 * The last write failure, for `mcpr store stats`: kept in the first
 * MCPR__HEALTH_RECORD_BYTES of the lock file, which the writer reserves at
 * open, so that it can be rewritten in place on a full disk. One line of
 * text: "mcpr-health 1 <state> <cause> <since_ms> <ended_ms> <failed>",
 * then the message, padded with spaces. Best effort both ways.
 */
#define MCPR__HEALTH_RECORD_BYTES 512
void mcpr__health_record_reserve(int lock_fd);
void mcpr__health_record_write(int lock_fd, const mcpr_store_health *h);
/* Read the record beside db_path into out's last_failure fields (left
 * zero when there is none). */
void mcpr__health_record_read(const char *db_path, mcpr_store_info *out);
/* Whether the record beside db_path shows a failure not seen to end. */
bool mcpr__health_record_is_open(const char *db_path);
/* Mark the recorded failure as ended at ended_ms (a later writer wrote). */
void mcpr__health_record_end(int lock_fd, int64_t ended_ms);

/*
 * Build the indexes on requests that the open left out (a big file that
 * lacked them: see DEFER_INDEX_ROWS in db.c), each in one transaction
 * under the commit lock held for the whole build — a minute at 10M rows,
 * which writers wait out. fn (may be NULL) is called with each index's
 * name before it is built; *held_ms (may be NULL) adds the time the lock
 * was held. Returns an SQLite code.
 */
typedef void (*mcpr__index_fn)(void *ctx, const char *name);
int mcpr__db_build_missing_indexes(sqlite3 *db, int lock_fd, mcpr__index_fn fn, void *ctx,
                                   int64_t *held_ms);

/* DDL of older schema versions, for tests that build old stores:
 * mcpr__db_legacy_ddl(v) for v in 0..4 is the full DDL of that version
 * (tables and meta rows), NULL otherwise. */
const char *mcpr__db_legacy_ddl(int version);

#endif

/*
 * faultvfs.h — an SQLite VFS for fault-injection tests.
 *
 * "faultvfs" wraps the default VFS and forwards everything to it, except
 * that writes and syncs to main database and WAL files can be made to fail:
 *
 *   - a byte quota: a write that would grow the database+WAL files opened
 *     through this VFS beyond the quota fails with SQLITE_FULL, like a disk
 *     that has run out of blocks (writes inside the files' current extent
 *     still succeed, as on a real full disk);
 *   - on demand: every write fails with a given code (SQLITE_FULL,
 *     SQLITE_IOERR_WRITE, ...), every sync with another (SQLITE_IOERR_FSYNC).
 *
 * The knobs are process-wide atomics, safe to turn from any thread while a
 * store's writer thread uses the VFS. The byte count covers the files open
 * right now (a file's size counts from its open to its close), so it is
 * exact for the single writer connection a store test opens through the VFS.
 * Open a store on it with `opts.vfs_name = FAULTVFS_NAME`.
 */
#ifndef MCPR_TEST_FAULTVFS_H
#define MCPR_TEST_FAULTVFS_H

#include <stdint.h>

#define FAULTVFS_NAME "faultvfs"

/* Register the VFS (not as the default). Idempotent, thread-safe.
 * Returns an SQLite result code. */
int faultvfs_register(void);

/* Clear every fault and the failure counters (the byte count stays). */
void faultvfs_reset(void);

/* quota_bytes <= 0: no quota. */
void faultvfs_set_quota(int64_t quota_bytes);
/* Fail every database/WAL write with sqlite_rc (0: stop failing). */
void faultvfs_fail_writes(int sqlite_rc);
/* Fail every database/WAL sync with sqlite_rc (0: stop failing). */
void faultvfs_fail_syncs(int sqlite_rc);

/* Bytes of the database and WAL files open through the VFS. */
int64_t faultvfs_bytes(void);
/* Writes / syncs failed on purpose since the last reset. */
uint64_t faultvfs_failed_writes(void);
uint64_t faultvfs_failed_syncs(void);

#endif

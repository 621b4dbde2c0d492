/*
 * lockholder.h — a child process that takes a lock on a store and stops
 * itself (SIGSTOP), so the lock stays held, by a process that does nothing,
 * until the test kills it: the store's commit lock (flock on
 * "<db>-mcprlock") or SQLite's own write lock (BEGIN EXCLUSIVE).
 */
#ifndef MCPR_TEST_LOCKHOLDER_H
#define MCPR_TEST_LOCKHOLDER_H

#include <sys/types.h>

typedef enum lh_lock {
  LH_COMMIT_LOCK, /* the store's commit lock */
  LH_SQLITE_LOCK, /* SQLite's write lock on db_path */
} lh_lock;

/* Fork the holder; returns once it holds the lock (it is stopped, or about
 * to stop). Fails the test when it cannot take the lock. */
pid_t lh_hold_stopped(const char *db_path, lh_lock lock);
/* Kill the holder and reap it: the lock is free again. */
void lh_release(pid_t holder);

#endif

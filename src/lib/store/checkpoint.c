/*
 * checkpoint.c — moves WAL checkpoints off the writer thread.
 *
 * In WAL mode every commit appends pages to the -wal file, and by default
 * the committing connection itself copies them back into the database
 * (and fsyncs it) once the WAL passes 1000 pages: the writer thread would
 * stop writing batches to do that. Here the writer's connection reports its
 * WAL size after each commit (sqlite3_wal_hook, which also turns off its
 * automatic checkpoints); past the threshold it wakes this thread, which
 * runs a PASSIVE checkpoint on its own connection. PASSIVE never blocks the
 * writer and is never blocked by it: it copies what it can, and the writer
 * starts the WAL over once a checkpoint has caught up.
 *
 * When the second connection cannot be opened, nothing changes: the
 * writer keeps SQLite's automatic checkpoints.
 */
#include <stdlib.h>

#include "store/db.h"
#include "store/store_internal.h"

#define CHECKPOINT_PAGES 1000

static int on_commit(void *arg, sqlite3 *db, const char *name, int wal_pages) {
  (void)db;
  (void)name;
  mcpr__checkpointer *c = arg;
  if (wal_pages >= CHECKPOINT_PAGES) {
    pthread_mutex_lock(&c->lock);
    c->wanted = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->lock);
  }
  return SQLITE_OK;
}

static void *checkpointer_main(void *arg) {
  mcpr__checkpointer *c = arg;
  for (;;) {
    pthread_mutex_lock(&c->lock);
    while (!c->wanted && !c->stop)
      pthread_cond_wait(&c->cv, &c->lock);
    bool stop = c->stop;
    c->wanted = false;
    pthread_mutex_unlock(&c->lock);
    if (stop)
      break;
    /* A failure leaves the pages in the WAL, where they are safe; the
     * next commit past the threshold asks again. */
    sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  }
  return NULL;
}

void mcpr__checkpointer_start(mcpr__checkpointer *c, const char *path, const char *vfs,
                              sqlite3 *writer_db) {
  c->started = false;
  c->wanted = c->stop = false;
  if (mcpr__db_open(path, MCPR__DB_EXISTING, vfs, &c->db, NULL) != MCPR_OK)
    return;
  pthread_mutex_init(&c->lock, NULL);
  pthread_cond_init(&c->cv, NULL);
  if (pthread_create(&c->thread, NULL, checkpointer_main, c) != 0) {
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->lock);
    sqlite3_close_v2(c->db);
    c->db = NULL;
    return;
  }
  sqlite3_wal_hook(writer_db, on_commit, c);
  c->started = true;
}

void mcpr__checkpointer_stop(mcpr__checkpointer *c, sqlite3 *writer_db) {
  if (!c->started)
    return;
  sqlite3_wal_hook(writer_db, NULL, NULL);
  pthread_mutex_lock(&c->lock);
  c->stop = true;
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->lock);
  pthread_join(c->thread, NULL);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->lock);
  sqlite3_close_v2(c->db);
  c->db = NULL;
  c->started = false;
}

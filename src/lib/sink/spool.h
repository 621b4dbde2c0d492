/* spool.h — the cloud sink's on-disk spool (internal; see spool.c). */
#ifndef MCPR_SINK_SPOOL_H
#define MCPR_SINK_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpr/sink.h"

#define MCPR__SPOOL_KEY_LEN 36
#define MCPR__SPOOL_NAME_MAX 64

typedef struct mcpr__spool_entry {
  char name[MCPR__SPOOL_NAME_MAX];
  uint64_t size;
} mcpr__spool_entry;

typedef struct mcpr__spool_record {
  char key[MCPR__SPOOL_KEY_LEN + 1]; /* Idempotency-Key */
  uint32_t nevents;
  int64_t created_ms;
  char *body; /* new; NUL-terminated JSON array */
  size_t body_len;
} mcpr__spool_record;

/* Create dir (and rejected/, corrupt/) with mode 0700 when missing. */
mcpr_status mcpr__spool_prepare(const char *dir, mcpr_error *err);

/*
 * Append one batch as a new record (written to a temporary file, fsync'd,
 * renamed, directory fsync'd). When the spool would exceed max_bytes the
 * oldest records are dropped first and counted in the state.
 */
mcpr_status mcpr__spool_append(const char *dir, const char *body, size_t len, uint32_t nevents,
                               uint64_t max_bytes, mcpr_error *err);

/* Pending records, oldest first. *out is new (free()). */
mcpr_status mcpr__spool_list(const char *dir, mcpr__spool_entry **out, size_t *n, mcpr_error *err);

/* Read and verify one record. MCPR_ECORRUPT for a torn or damaged one. */
mcpr_status mcpr__spool_read(const char *dir, const char *name, mcpr__spool_record *rec,
                             mcpr_error *err);
void mcpr__spool_record_release(mcpr__spool_record *rec);

/* The record was delivered: remove it and count it. */
void mcpr__spool_delivered(const char *dir, const char *name, uint32_t nevents);
/* Move a record to <dir>/<sub>/ with a .reason file beside it, count it
 * (sub "rejected" or "corrupt"). */
void mcpr__spool_set_aside(const char *dir, const char *name, const char *sub, uint32_t nevents,
                           const char *reason);
/* Record an error (and optionally the paused flag) in the state. */
void mcpr__spool_note_error(const char *dir, const char *message, bool paused);

/* Leftover temporary files of dead processes → corrupt/ (torn writes). */
void mcpr__spool_sweep(const char *dir);

/* The persistent counters plus the pending records. */
mcpr_status mcpr__spool_status(const char *dir, mcpr_spool_status *out, mcpr_error *err);

/* Exclusive, non-blocking: only one process delivers a spool at a time.
 * Returns an fd to pass to unlock, or -1 when another process holds it. */
int mcpr__spool_lock_delivery(const char *dir);
void mcpr__spool_unlock_delivery(int fd);

#endif

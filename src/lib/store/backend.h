/*
 * backend.h — internal: what a store backend provides to the writer, and
 * how the engine finds a backend.
 *
 * The engine (store/: queue, writer thread, retry policy, counters;
 * query/: the read API) owns these interfaces and knows no SQL. Each
 * backend lives in a folder of its own under backend/ and holds all the
 * SQL of its engine, for writing and for reading. Like SQLite's VFS, the
 * engine finds a backend by name — here by the store target's URL scheme —
 * and a backend calls nothing in the engine above it. Adding one is a
 * folder and a line in store/backends.c.
 */
#ifndef MCPR__STORE_BACKEND_H
#define MCPR__STORE_BACKEND_H

#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "mcpr/store.h"
#include "query/backend.h"

/* What became of one event of a committed batch. */
typedef enum mcpr__outcome {
  MCPR__WRITTEN = 0,
  MCPR__DUPLICATE,  /* already stored, or changes nothing (SPEC §5) */
  MCPR__CONSTRAINT, /* the row broke a constraint: skipped */
  MCPR__ROW_FAILED, /* another error on that row only: skipped */
  MCPR__UNKNOWN_SESSION, /* a session close for a session never started: changes nothing */
} mcpr__outcome;

typedef struct mcpr__store_backend {
  const char *name;
  /* Events per batch when the options leave it to the backend (0: the
   * engine's default). */
  size_t batch_size;
  /*
   * Open target (a path or URL this backend matched), creating and
   * migrating the store. From then on impl belongs to the writer thread.
   */
  mcpr_status (*open)(const char *target, const mcpr_store_options *o, void **impl,
                      mcpr_error *err);
  /*
   * Write events[0..n) in one transaction: all of it or nothing. MCPR_OK:
   * committed, outcomes[i] says what became of each event. Anything else:
   * nothing was committed and the status says why — MCPR_EBUSY (locked by
   * another writer; the backend waited at most about lock_wait_ms),
   * MCPR_EDISKFULL, MCPR_EIO, MCPR_EREADONLY, MCPR_ENOMEM, MCPR_ESQL — with
   * err's message naming the backend's own detail. The writer decides
   * whether and when to try again.
   */
  mcpr_status (*write_batch)(void *impl, const mcpr_store_event *const *events, size_t n,
                             mcpr__outcome *outcomes, int lock_wait_ms, mcpr_error *err);
  /* Keep the writer's health where a reader of the store can see it (the
   * last failure shown by `mcpr store stats`); best effort, may be NULL.
   * Called on the writer thread at each change of episode. */
  void (*note_health)(void *impl, const mcpr_store_health *h);
  /*
   * One bounded step of retention (mcpr_store_options.retention_ms...,
   * given at open) at wall-clock now_ms: a short transaction deleting at
   * most a few thousand rows, with what it deleted counted in the store
   * in the same transaction. *more: call again soon (the round is not
   * over, or the store was locked); false: nothing is due before the
   * next round. Called on the writer thread between batches, only when
   * retention is on. May be NULL (a backend without retention).
   */
  mcpr_status (*retain)(void *impl, int64_t now_ms, bool *more, mcpr_error *err);
  /* Finish (optimise, checkpoint as the engine requires) and close. */
  void (*close)(void *impl);
} mcpr__store_backend;

typedef struct mcpr__backend {
  const char *name; /* "sqlite" */
  /* The part of a store target this backend opens, or NULL when the
   * target is not one of this backend's: a path or "sqlite:PATH" for
   * SQLite. */
  const char *(*match)(const char *target);
  const mcpr__store_backend *store;
  mcpr__query_backend_open query_open;
} mcpr__backend;

/* Length of target's URL scheme when it has one ("name://…", or the
 * "sqlite:" of "sqlite:PATH"), else 0: then it is a path. */
static inline size_t mcpr__url_scheme_len(const char *target) {
  size_t n = 0;
  if (!isalpha((unsigned char)target[0]))
    return 0;
  while (isalnum((unsigned char)target[n]) || target[n] == '+' || target[n] == '-' ||
         target[n] == '.')
    n++;
  if (target[n] != ':')
    return 0;
  if (strncmp(target + n, "://", 3) == 0 || (n == 6 && strncmp(target, "sqlite", 6) == 0))
    return n;
  return 0;
}

/*
 * The backend for a store target (a path, or a URL such as sqlite:PATH or
 * postgresql://…), with *rest pointing at what that backend opens. NULL
 * with err filled (naming the scheme) when no backend in this build
 * accepts it: a URL is never taken for a file name.
 */
const mcpr__backend *mcpr__backend_find(const char *target, const char **rest,
                                        mcpr_error *err);

/* The file a store target names when its backend keeps the store in a
 * file (SQLite: the path of a path or sqlite:PATH), else NULL (a server,
 * or no backend): where files beside the store may go (the cloud spool). */
const char *mcpr__store_target_file(const char *target);

#endif

/*
 * store_internal.h — internal: the store handle, shared by store.c (the
 * producer side: record, flush, stats, close) and writer.c (the writer
 * thread). See store.h for the design.
 */
#ifndef MCPR__STORE_INTERNAL_H
#define MCPR__STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "mcpr/store.h"
#include "store/backend.h"
#include "store/queue.h"

/* One accepted event: the caller's event with every string copied right
 * behind it. */
typedef struct mcpr__item {
  mcpr_store_event event;
  char strings[];
} mcpr__item;

/* A queue cell's payload: a pointer that is NULL when the item is inline
 * at MCPR__SLOT_ITEM_OFFSET, or points to a heap copy of an item too big
 * for the cell. 512-byte cells hold a typical request event whole. */
#define MCPR__SLOT_SIZE (512 - 16)
#define MCPR__SLOT_ITEM_OFFSET 16

static inline mcpr__item *mcpr__slot_item(void *slot) {
  mcpr__item *heap;
  __builtin_memcpy(&heap, slot, sizeof heap);
  return heap ? heap : (mcpr__item *)((unsigned char *)slot + MCPR__SLOT_ITEM_OFFSET);
}

static inline void mcpr__slot_free(void *slot) {
  mcpr__item *heap;
  __builtin_memcpy(&heap, slot, sizeof heap);
  __builtin_free(heap);
}

/* Bit set in `inflight` once close has begun; the rest counts record()
 * calls between their closing check and their push. */
#define MCPR__CLOSING_BIT ((uint64_t)1 << 63)

struct mcpr_store {
  mcpr__queue queue;
  mcpr_store_options opts;
  char *path;
  const mcpr__store_backend *backend;
  void *impl;  /* the backend's writer, owned by the writer thread once it runs */
  int wake_fd; /* eventfd: producers, flush() and close() wake the writer */
  pthread_t thread;

  _Alignas(MCPR__CACHELINE) _Atomic uint64_t inflight;

  /* Refusals: written by producers, rare. */
  _Alignas(MCPR__CACHELINE) _Atomic uint64_t refused_queue_full;
  _Atomic uint64_t refused_closing;
  _Atomic uint64_t refused_invalid;
  _Atomic uint64_t refused_nomem;

  /* Outcomes: written by the writer thread only. */
  _Alignas(MCPR__CACHELINE) _Atomic uint64_t finished; /* positions done */
  _Atomic uint64_t written;
  _Atomic uint64_t duplicates;
  _Atomic uint64_t unknown_session_closes;
  _Atomic uint64_t failed_io;
  _Atomic uint64_t failed_disk_full;
  _Atomic uint64_t failed_readonly;
  _Atomic uint64_t failed_busy;
  _Atomic uint64_t failed_closed;
  _Atomic uint64_t failed_constraint;
  _Atomic uint64_t failed_other;
  _Atomic uint64_t retries;
  _Atomic uint64_t busy_waits;
  _Atomic uint64_t batches;
  _Atomic bool abandon;            /* close ran out of time: fail what is left */
  _Atomic bool no_retry;           /* mcpr_store_stop_retrying() */

  /* Completion, the last error and the health episode: under `lock`. */
  pthread_mutex_t lock;
  pthread_cond_t done_cv;          /* flush() and close() wait here */
  _Atomic uint64_t flush_target;   /* positions a flush waits for */
  _Atomic bool writer_exited;
  mcpr_status last_error;
  char last_error_message[256];
  int64_t last_error_at_ms;
  mcpr_status first_failure; /* first cause of failed events, for close() */
  uint64_t failed_reported;  /* failures already returned by a flush() */
  mcpr_store_health health;  /* see mcpr_store_health_get() */
};

/* The writer thread's entry point (writer.c). */
void *mcpr__writer_main(void *arg);
/* Wake the writer (any thread; one write(2), never a lock). */
void mcpr__store_wake(mcpr_store *s);

#endif

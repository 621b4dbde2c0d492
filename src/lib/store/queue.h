/*
 * queue.h — internal: bounded lock-free multi-producer, single-consumer
 * queue of fixed-size cells (Dmitry Vyukov's bounded array queue).
 *
 * Each cell carries a sequence number and an inline payload. A producer
 * claims a position with one CAS, fills the cell's payload in place, and
 * publishes it by storing the sequence with release order. The consumer
 * reads cells in position order and hands them back later, in order, with
 * release() — so a batch being written (and perhaps retried) keeps its
 * cells, and the hot path never calls malloc or free. Cell memory is
 * allocated and touched once at init, so claiming one never page-faults.
 *
 * claim() never blocks and never waits for another thread: a full queue
 * returns NULL at once.
 */
#ifndef MCPR__STORE_QUEUE_H
#define MCPR__STORE_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCPR__CACHELINE 64

typedef struct mcpr__queue {
  unsigned char *cells; /* capacity × stride bytes */
  size_t mask;
  size_t stride;       /* bytes per cell: header + payload, 16-aligned */
  size_t payload_size; /* usable payload bytes per cell */
  /* Producers read the fields above on every claim; the consumer's own
   * position lives on the line of `tail`, which only the consumer writes,
   * so reading a cell never invalidates the line producers read. */
  _Alignas(MCPR__CACHELINE) _Atomic size_t head; /* next position to claim */
  _Alignas(MCPR__CACHELINE) _Atomic size_t tail; /* oldest cell not released */
  size_t read_pos;     /* consumer only: next cell to read */
  char pad_[MCPR__CACHELINE - 2 * sizeof(size_t)];
} mcpr__queue;

/* capacity is rounded up to a power of two (at least 2); payload_size is
 * the bytes each cell holds (at least a pointer). false: out of memory. */
bool mcpr__queue_init(mcpr__queue *q, size_t capacity, size_t payload_size);
void mcpr__queue_release_all(mcpr__queue *q);
size_t mcpr__queue_capacity(const mcpr__queue *q);

/* Producer: claim a cell. Returns its payload (payload_size bytes, 16-byte
 * aligned) and sets *pos, or NULL when the queue is full. The cell must be
 * published with mcpr__queue_publish(q, *pos) without delay. */
void *mcpr__queue_claim(mcpr__queue *q, size_t *pos);
void mcpr__queue_publish(mcpr__queue *q, size_t pos);

/* Consumer: the next published cell's payload, or NULL when the next cell
 * is empty or still being filled. Advances the read position. */
void *mcpr__queue_read(mcpr__queue *q);
/* Consumer: hand back the `count` oldest read cells to the producers. */
void mcpr__queue_release(mcpr__queue *q, size_t count);

/* Pointer-queue convenience over the cells. */
bool mcpr__queue_push(mcpr__queue *q, void *item, size_t *pos_out);
void *mcpr__queue_pop(mcpr__queue *q);

/* Positions claimed minus positions released (approximate under races). */
size_t mcpr__queue_depth(const mcpr__queue *q);

#endif

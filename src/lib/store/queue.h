/*
 * queue.h — internal: bounded lock-free multi-producer queue of pointers.
 *
 * Dmitry Vyukov's bounded MPMC array queue: each cell carries a sequence
 * number; a producer claims a position with one CAS and publishes the cell
 * by storing its sequence with release order; the consumer (one thread
 * here) reads cells in position order. push() never blocks and never
 * spins on another thread: a full queue returns false at once.
 */
#ifndef MCPR__STORE_QUEUE_H
#define MCPR__STORE_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCPR__CACHELINE 64

typedef struct mcpr__queue_cell {
  _Atomic size_t seq;
  void *item;
} mcpr__queue_cell;

typedef struct mcpr__queue {
  mcpr__queue_cell *cells;
  size_t mask;
  _Alignas(MCPR__CACHELINE) _Atomic size_t head; /* next position to push */
  _Alignas(MCPR__CACHELINE) _Atomic size_t tail; /* next position to pop */
  char pad_[MCPR__CACHELINE - sizeof(size_t)];
} mcpr__queue;

/* capacity is rounded up to a power of two (at least 2). false: ENOMEM. */
bool mcpr__queue_init(mcpr__queue *q, size_t capacity);
void mcpr__queue_release(mcpr__queue *q);
size_t mcpr__queue_capacity(const mcpr__queue *q);

/* Producer side: false when full. *pos_out gets the position taken. */
bool mcpr__queue_push(mcpr__queue *q, void *item, size_t *pos_out);

/* Consumer side (single consumer): NULL when the next cell is not yet
 * published — either empty, or a producer between claim and publish. */
void *mcpr__queue_pop(mcpr__queue *q);

/* Positions claimed minus positions popped (approximate under races). */
size_t mcpr__queue_depth(const mcpr__queue *q);

#endif

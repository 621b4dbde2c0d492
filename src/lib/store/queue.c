#include <stdlib.h>
#include <string.h>

#include "store/queue.h"

#define CELL_HEADER 16 /* the sequence number, padded to keep payloads aligned */

static _Atomic size_t *cell_seq(const mcpr__queue *q, size_t pos) {
  return (_Atomic size_t *)(q->cells + (pos & q->mask) * q->stride);
}

static void *cell_payload(const mcpr__queue *q, size_t pos) {
  return q->cells + (pos & q->mask) * q->stride + CELL_HEADER;
}

bool mcpr__queue_init(mcpr__queue *q, size_t capacity, size_t payload_size) {
  size_t cap = 2;
  while (cap < capacity && cap < ((size_t)1 << 30))
    cap <<= 1;
  if (payload_size < sizeof(void *))
    payload_size = sizeof(void *);
  q->payload_size = (payload_size + 15) & ~(size_t)15;
  q->stride = CELL_HEADER + q->payload_size;
  if (cap > SIZE_MAX / q->stride)
    return false;
  if (posix_memalign((void **)&q->cells, MCPR__CACHELINE, cap * q->stride) != 0) {
    q->cells = NULL;
    return false;
  }
  memset(q->cells, 0, cap * q->stride); /* fault every page in now, not on the hot path */
  q->mask = cap - 1;
  for (size_t i = 0; i < cap; i++)
    atomic_init(cell_seq(q, i), i);
  q->read_pos = 0;
  atomic_init(&q->head, 0);
  atomic_init(&q->tail, 0);
  return true;
}

void mcpr__queue_release_all(mcpr__queue *q) {
  free(q->cells);
  q->cells = NULL;
}

size_t mcpr__queue_capacity(const mcpr__queue *q) { return q->mask + 1; }

void *mcpr__queue_claim(mcpr__queue *q, size_t *pos_out) {
  size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
  for (;;) {
    size_t seq = atomic_load_explicit(cell_seq(q, pos), memory_order_acquire);
    intptr_t dif = (intptr_t)seq - (intptr_t)pos;
    if (dif == 0) {
      if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                memory_order_relaxed,
                                                memory_order_relaxed)) {
        *pos_out = pos;
        return cell_payload(q, pos);
      }
      /* CAS failure reloaded pos: try the new position. */
    } else if (dif < 0) {
      return NULL; /* the cell is still held from one lap ago: full */
    } else {
      pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    }
  }
}

void mcpr__queue_publish(mcpr__queue *q, size_t pos) {
  atomic_store_explicit(cell_seq(q, pos), pos + 1, memory_order_release);
}

void *mcpr__queue_read(mcpr__queue *q) {
  size_t pos = q->read_pos;
  size_t seq = atomic_load_explicit(cell_seq(q, pos), memory_order_acquire);
  if (seq != pos + 1)
    return NULL;
  q->read_pos = pos + 1;
  return cell_payload(q, pos);
}

void mcpr__queue_release(mcpr__queue *q, size_t count) {
  size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  for (size_t pos = tail; pos < tail + count; pos++)
    atomic_store_explicit(cell_seq(q, pos), pos + q->mask + 1, memory_order_release);
  atomic_store_explicit(&q->tail, tail + count, memory_order_release);
}

bool mcpr__queue_push(mcpr__queue *q, void *item, size_t *pos_out) {
  size_t pos;
  void **cell = mcpr__queue_claim(q, &pos);
  if (!cell)
    return false;
  *cell = item;
  mcpr__queue_publish(q, pos);
  if (pos_out)
    *pos_out = pos;
  return true;
}

void *mcpr__queue_pop(mcpr__queue *q) {
  void **cell = mcpr__queue_read(q);
  if (!cell)
    return NULL;
  void *item = *cell;
  mcpr__queue_release(q, 1);
  return item;
}

size_t mcpr__queue_depth(const mcpr__queue *q) {
  size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  return head >= tail ? head - tail : 0;
}

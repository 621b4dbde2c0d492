#include <stdlib.h>

#include "store/queue.h"

bool mcpr__queue_init(mcpr__queue *q, size_t capacity) {
  size_t cap = 2;
  while (cap < capacity && cap < ((size_t)1 << 30))
    cap <<= 1;
  q->cells = calloc(cap, sizeof *q->cells);
  if (!q->cells)
    return false;
  for (size_t i = 0; i < cap; i++)
    atomic_init(&q->cells[i].seq, i);
  q->mask = cap - 1;
  atomic_init(&q->head, 0);
  atomic_init(&q->tail, 0);
  return true;
}

void mcpr__queue_release(mcpr__queue *q) {
  free(q->cells);
  q->cells = NULL;
}

size_t mcpr__queue_capacity(const mcpr__queue *q) { return q->mask + 1; }

bool mcpr__queue_push(mcpr__queue *q, void *item, size_t *pos_out) {
  size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
  for (;;) {
    mcpr__queue_cell *cell = &q->cells[pos & q->mask];
    size_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
    intptr_t dif = (intptr_t)seq - (intptr_t)pos;
    if (dif == 0) {
      if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                memory_order_relaxed,
                                                memory_order_relaxed)) {
        cell->item = item;
        atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
        if (pos_out)
          *pos_out = pos;
        return true;
      }
      /* CAS failure reloaded pos: try the new position. */
    } else if (dif < 0) {
      return false; /* the cell still holds an item from one lap ago: full */
    } else {
      pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    }
  }
}

void *mcpr__queue_pop(mcpr__queue *q) {
  size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
  mcpr__queue_cell *cell = &q->cells[pos & q->mask];
  size_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
  if ((intptr_t)seq - (intptr_t)(pos + 1) < 0)
    return NULL;
  void *item = cell->item;
  atomic_store_explicit(&cell->seq, pos + q->mask + 1, memory_order_release);
  atomic_store_explicit(&q->tail, pos + 1, memory_order_relaxed);
  return item;
}

size_t mcpr__queue_depth(const mcpr__queue *q) {
  size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
  size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
  return head >= tail ? head - tail : 0;
}

/*
 * store_sink.c — proxy events onto the SQLite store (SPEC §3 mapping).
 *
 * The store's own record() never blocks and refuses when its queue is full.
 * This sink runs on its own thread, so it can afford to wait: it re-offers
 * a refused event with a growing pause (1 ms .. 100 ms) for up to
 * requeue_limit_ms before counting it failed. Nothing is lost silently:
 * every event ends delivered (accepted by the store, whose own counters
 * then say written / duplicate / failed) or failed here with its cause.
 */
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "mcpr/sink.h"

typedef struct store_sink {
  mcpr_store *store;
  uint32_t requeue_limit_ms;
} store_sink;


static mcpr_status store_deliver(void *self, const mcpr_event *ev, mcpr_error *err) {
  store_sink *s = self;
  mcpr_store_event se;
  if (!mcpr_event_to_store(ev, &se))
    return MCPR_OK; /* heartbeat: the store keeps none */
  long waited_ms = 0, pause_ms = 1;
  for (;;) {
    mcpr_status st = mcpr_store_record(s->store, &se);
    if (st == MCPR_OK)
      return MCPR_OK;
    if (st != MCPR_EQUEUEFULL)
      return mcpr_error_set(err, st, "the store refused a %s event: %s",
                            mcpr_event_type_name(ev->type), mcpr_strerror(st));
    if (waited_ms >= (long)s->requeue_limit_ms)
      return mcpr_error_set(err, st, "the store's queue stayed full for %ld ms", waited_ms);
    mcpr__sleep_ms(pause_ms);
    waited_ms += pause_ms;
    pause_ms = pause_ms * 2 > 100 ? 100 : pause_ms * 2;
  }
}

static mcpr_status store_flush(void *self, mcpr_error *err) {
  store_sink *s = self;
  return mcpr_store_flush(s->store, -1, err);
}

mcpr_status mcpr_sink_store_new(mcpr_sink **out, mcpr_store *store,
                                const mcpr_store_sink_options *opts, mcpr_error *err) {
  *out = NULL;
  if (!store)
    return mcpr_error_set(err, MCPR_EINVAL, "store sink needs an open store");
  store_sink *s = calloc(1, sizeof *s);
  if (!s)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory creating a store sink");
  s->store = store;
  s->requeue_limit_ms = opts && opts->requeue_limit_ms ? opts->requeue_limit_ms : 60000;
  mcpr_sink_ops ops = {.name = "store", .deliver = store_deliver, .flush = store_flush,
                       .destroy = free};
  mcpr_status st = mcpr_sink_new(out, &ops, s, 0, err);
  if (st != MCPR_OK)
    free(s);
  return st;
}

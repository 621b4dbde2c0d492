/*
 * store_sink.c — proxy events onto the SQLite store (SPEC §3 mapping).
 *
 * The store's own record() never blocks and refuses when its queue is full,
 * so the emitting thread calls it directly (try_deliver) while nothing is
 * queued here. A refused event goes to this sink's thread, which can
 * afford to wait: it re-offers
 * a refused event with a growing pause (1 ms .. 100 ms) for up to
 * requeue_limit_ms of a *healthy* store before counting it failed. While
 * the store cannot write (a full disk, a lock: mcpr_store_health_get) the
 * wait does not count: the store's own retry window bounds that episode,
 * and then fails its events by their real cause, emptying the queue —
 * counting them here as "queue full" would hide why. Nothing is lost silently:
 * every event ends delivered (accepted by the store, whose own counters
 * then say written / duplicate / failed) or failed here with its cause.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "mcpr/sink.h"

typedef struct store_sink {
  mcpr_store *store;
  uint32_t requeue_limit_ms;
} store_sink;

bool mcpr_event_to_store(const mcpr_event *ev, mcpr_store_event *out) {
  switch (ev->type) {
  case MCPR_EVENT_REQUEST: {
    const mcpr_event_request *r = &ev->u.request;
    mcpr_request_status st = MCPR_REQUEST_OK;
    if (r->error_code || r->status >= 500)
      st = MCPR_REQUEST_ERROR;
    if (r->note && strcmp(r->note, "timeout") == 0)
      st = MCPR_REQUEST_TIMEOUT;
    memset(out, 0, sizeof *out);
    out->kind = MCPR_STORE_EVENT_REQUEST;
    out->u.request = (mcpr_request_event){
        .request_id = r->id,
        .ts_ms = r->ts,
        .proxy = r->proxy,
        .session_id = r->session_id,
        .method = r->mcp_method ? r->mcp_method : r->method,
        .tool = r->tool,
        .resource_uri = r->resource_uri,
        .prompt_name = r->prompt_name,
        .latency_us = r->latency_us,
        .status = st,
        .error_code = r->error_code,
        .error_msg = r->error_msg,
        .bytes_in = r->request_size == MCPR_EVENT_ABSENT ? -1 : r->request_size,
        .bytes_out = r->response_size == MCPR_EVENT_ABSENT ? -1 : r->response_size,
    };
    return true;
  }
  case MCPR_EVENT_SESSION_START: {
    const mcpr_event_session_start *s = &ev->u.session_start;
    memset(out, 0, sizeof *out);
    out->kind = MCPR_STORE_EVENT_SESSION;
    out->u.session = (mcpr_session_event){s->session_id, s->proxy, s->ts, s->client_name,
                                          s->client_version, s->client_platform};
    return true;
  }
  case MCPR_EVENT_SESSION_END:
    memset(out, 0, sizeof *out);
    out->kind = MCPR_STORE_EVENT_SESSION_CLOSED;
    out->u.session_closed =
        (mcpr_session_closed_event){ev->u.session_end.session_id, ev->u.session_end.ts};
    return true;
  case MCPR_EVENT_SCHEMA_VERSION_CREATED: {
    const mcpr_event_schema_version *v = &ev->u.schema_version;
    memset(out, 0, sizeof *out);
    out->kind = MCPR_STORE_EVENT_SCHEMA_VERSION;
    out->u.schema_version = (mcpr_schema_version_event){
        v->ts, v->upstream_id, v->upstream_url, v->method, v->payload, v->content_hash};
    return true;
  }
  case MCPR_EVENT_HEARTBEAT:
  default:
    return false;
  }
}

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
    mcpr_store_health h;
    mcpr_store_health_get(s->store, &h);
    if (h.state == MCPR_STORE_HEALTH_OK)
      waited_ms += pause_ms;
    pause_ms = pause_ms * 2 > 100 ? 100 : pause_ms * 2;
  }
}

/* On the emitting thread: the store's record() never blocks. A refusal
 * (a full queue) sends the event through deliver(), which can wait. */
static mcpr_status store_try_deliver(void *self, const mcpr_event *ev) {
  store_sink *s = self;
  mcpr_store_event se;
  if (!mcpr_event_to_store(ev, &se))
    return MCPR_OK;
  return mcpr_store_record(s->store, &se);
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
  mcpr_sink_ops ops = {.name = "store",
                       .deliver = store_deliver,
                       .try_deliver = store_try_deliver,
                       .flush = store_flush,
                       .destroy = free};
  mcpr_status st = mcpr_sink_new(out, &ops, s, 0, err);
  if (st != MCPR_OK)
    free(s);
  return st;
}

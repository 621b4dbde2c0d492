/*
 * sink.h — where proxy events go (SPEC §1 "Sinks"), and the fan-out that
 * hands each event to every sink.
 *
 * A fan-out owns a set of sinks. mcpr_fanout_emit() copies the event once
 * (shared, reference counted, by every sink) and pushes it onto each sink's
 * own bounded queue; it never waits on a sink, so a slow or stuck sink
 * (a cloud outage, a locked database) never slows the caller or the other
 * sinks: when one sink's queue is full, that sink refuses the event and
 * counts it (refused_queue_full), the others still get it.
 *
 * Each sink has its own thread, started by mcpr_fanout_add(), which takes
 * events off its queue in emit order and calls the sink's deliver(); every
 * event a sink was offered ends in exactly one of its counters: refused
 * (by cause), delivered, or failed (by cause, the mcpr_status deliver()
 * returned). mcpr_fanout_close() stops accepting, lets each sink deliver
 * everything queued, calls its drain(), joins its thread and frees it.
 *
 *   mcpr_fanout *fan;
 *   mcpr_sink *json, *db;
 *   mcpr_fanout_new(&fan, &err);
 *   mcpr_sink_stream_new(&json, stderr, MCPR_STREAM_JSON, &err);
 *   mcpr_fanout_add(fan, json, &err);           // fan-out owns it now
 *   mcpr_sink_store_new(&db, store, NULL, &err);
 *   mcpr_fanout_add(fan, db, &err);
 *   mcpr_fanout_emit(fan, &event);              // any thread, never blocks
 *   mcpr_fanout_close(fan);                     // drains, joins, frees sinks
 *
 * emit/flush/stats are thread-safe; add() must not run concurrently with
 * emit(). The library never picks stderr (or any stream) by itself.
 */
#ifndef MCPR_SINK_H
#define MCPR_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "event.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcpr_sink mcpr_sink;
typedef struct mcpr_fanout mcpr_fanout;

/*
 * Map a proxy event onto a store event (SPEC §3), as the store sink does.
 * The store event borrows ev's strings: keep ev alive while *out is used. Returns false (and leaves
 * *out untouched) for a heartbeat, which the store does not keep.
 *   request → Request: request_id=id, method = mcp_method or else the HTTP
 *     method, bytes_in/out = request/response_size, status = error when
 *     error_code is present or HTTP status >= 500, else ok — except that a
 *     note of exactly "timeout" makes it timeout (the store's third status);
 *   session_start → Session; session_end → SessionClosed;
 *   schema_version_created → SchemaVersion with proxy = upstream_id.
 */
MCPR_API bool mcpr_event_to_store(const mcpr_event *ev, mcpr_store_event *out);

/* A sink's behaviour. Every callback runs on the sink's own thread. */
typedef struct mcpr_sink_ops {
  /* Short name for counters and messages ("stderr", "store", "cloud"). */
  const char *name;
  /* Deliver one event (borrowed for the call). MCPR_OK counts it as
   * delivered; any other status counts it as failed with that cause. */
  mcpr_status (*deliver)(void *self, const mcpr_event *ev, mcpr_error *err);
  /* Optional: called about every tick_ms, busy or idle (batching sinks
   * send what they hold). */
  void (*tick)(void *self);
  uint32_t tick_ms;
  /* Optional: mcpr_fanout_flush() asked that everything delivered so far
   * be pushed out (written, committed, sent or spooled). */
  mcpr_status (*flush)(void *self, mcpr_error *err);
  /* Optional: the last call on this thread, at close, after every queued
   * event was delivered. */
  void (*drain)(void *self);
  /* Optional: free self; called once, from close (or add's failure path). */
  void (*destroy)(void *self);
  /* Optional: deliver without ever blocking, on the emitting thread, when
   * nothing is queued for this sink (so order is kept; the sink's lock is
   * held, so never at the same time as deliver(), but maybe as tick() or
   * flush()). MCPR_EQUEUEFULL: not taken, and the event is queued for
   * deliver() as without this callback (which may wait); any other status
   * counts as deliver() returning it. Saves a copy of the event and a
   * wake-up of the sink's thread per event (the store's queue is such a
   * sink). */
  mcpr_status (*try_deliver)(void *self, const mcpr_event *ev);
  /* Optional: false while the sink wants no events at all (a log turned
   * off); called on the emitting thread, so cheap and thread-safe. Events
   * it declines are neither queued nor counted. */
  bool (*wants)(void *self);
} mcpr_sink_ops;

/* Default number of events one sink's queue holds. */
#define MCPR_SINK_QUEUE_DEFAULT 8192

/*
 * A sink from your own callbacks (ops is copied; self is handed to them).
 * queue_capacity 0 means MCPR_SINK_QUEUE_DEFAULT. On failure destroy(self)
 * has NOT been called.
 */
MCPR_API mcpr_status mcpr_sink_new(mcpr_sink **out, const mcpr_sink_ops *ops, void *self,
                                   size_t queue_capacity, mcpr_error *err);

typedef enum mcpr_stream_format {
  MCPR_STREAM_JSON = 0,   /* exactly the wire format, one object per line */
  MCPR_STREAM_PRETTY = 1, /* one readable line per event */
} mcpr_stream_format;

/*
 * Writes every event to fp (borrowed: the caller keeps it open until the
 * fan-out is closed, and closes it). A write error fails the event (EIO).
 */
MCPR_API mcpr_status mcpr_sink_stream_new(mcpr_sink **out, FILE *fp, mcpr_stream_format format,
                                          mcpr_error *err);

/* One readable line (no newline) for an event, as the pretty sink writes
 * it, into buf (always NUL-terminated). Returns the length it needed. */
MCPR_API size_t mcpr_event_format_pretty(const mcpr_event *ev, char *buf, size_t size);

typedef struct mcpr_store_sink_options {
  /* How long deliver() re-offers an event the store refuses because its
   * queue is full before counting it failed (MCPR_EQUEUEFULL); default
   * 60000 ms. Time while the store cannot write does not count: the
   * store's own retry window bounds that, and fails events by cause. */
  uint32_t requeue_limit_ms;
} mcpr_store_sink_options;

/*
 * Maps events onto the store (SPEC §3) with mcpr_store_record(). store is
 * borrowed: keep it open until the fan-out is closed. Heartbeats are not
 * stored (counted as delivered: there is nothing to keep). An event the
 * store refuses as invalid fails with MCPR_EINVAL; flush() waits for the
 * store to commit. opts may be NULL.
 */
MCPR_API mcpr_status mcpr_sink_store_new(mcpr_sink **out, mcpr_store *store,
                                         const mcpr_store_sink_options *opts, mcpr_error *err);

/* --- the cloud sink (SPEC §8) --- */

/*
 * Events are batched (batch_size events or flush_interval_ms, whichever
 * first) into a JSON array and written, before any upload, as one record
 * to an on-disk spool (fsync'd); a delivery thread then POSTs the spooled
 * batches oldest first to <endpoint>/api/ingest-events with
 * `Authorization: Bearer <token>`, `Content-Type: application/json` and an
 * `Idempotency-Key` that is fixed when the batch is spooled, so it is the
 * same on every retry, in every process. Outcomes:
 *   200/202                     delivered: the record is removed;
 *   5xx, 408, 429, network      retried with exponential backoff and
 *                               jitter (backoff_base_ms .. backoff_max_ms),
 *                               or after Retry-After; no retry limit;
 *   401/403                     delivery pauses (batches keep being
 *                               spooled) until a process with a good token;
 *   other 4xx (400, 413, 422…)  moved to <spool>/rejected/ with the
 *                               server's answer, never retried.
 * The spool is capped (spool_max_bytes): when a new batch does not fit,
 * the oldest batches are dropped and counted. A process killed at any
 * point loses at most the batch it was still filling in memory; the next
 * process (or `mcpr cloud flush`) delivers the spool.
 */
typedef struct mcpr_cloud_sink_options {
  const char *endpoint;        /* base URL; NULL: https://api.mcpr.app */
  const char *token;           /* required; never printed */
  const char *server;          /* slug added as "server" to events without one; NULL: none */
  const char *spool_dir;       /* required; see mcpr_cloud_spool_dir() */
  size_t batch_size;           /* default 100 */
  uint32_t flush_interval_ms;  /* default 5000 */
  uint64_t spool_max_bytes;    /* default 256 MiB */
  uint32_t backoff_base_ms;    /* default 1000 */
  uint32_t backoff_max_ms;     /* default 300000 */
  uint32_t request_timeout_ms; /* one POST, default 30000 */
  uint32_t close_timeout_ms;   /* at close, keep delivering this long (default 5000) */
} mcpr_cloud_sink_options;

MCPR_API void mcpr_cloud_sink_options_init(mcpr_cloud_sink_options *o);

/* The spool directory for a store file: "<dir of store_path>/cloud-spool".
 * Returns a *new* string or NULL (no memory). */
MCPR_API char *mcpr_cloud_spool_dir(const char *store_path);

MCPR_API mcpr_status mcpr_sink_cloud_new(mcpr_sink **out, const mcpr_cloud_sink_options *opts,
                                         mcpr_error *err);

typedef struct mcpr_spool_status {
  uint64_t pending_batches, pending_events, pending_bytes;
  uint64_t delivered_batches, delivered_events;
  uint64_t rejected_batches, rejected_events;
  uint64_t dropped_batches, dropped_events; /* oldest dropped at the cap */
  uint64_t corrupt_records;                 /* torn or failed checksum: set aside */
  bool paused;                              /* 401/403 seen, not yet cleared */
  char last_error[256];
  int64_t last_error_at_ms;    /* 0: none */
  int64_t last_delivery_at_ms; /* 0: none */
} mcpr_spool_status;

/* Read the spool's state without changing it (a missing spool is empty). */
MCPR_API mcpr_status mcpr_cloud_spool_status(const char *spool_dir, mcpr_spool_status *out,
                                             mcpr_error *err);

/*
 * Deliver the spool now, oldest first, each batch once (no backoff), for
 * up to timeout_ms (< 0: no limit). Returns MCPR_OK when the spool is
 * empty at the end; otherwise the cause (MCPR_ENETWORK, MCPR_EHTTP,
 * MCPR_EAUTH, MCPR_ETIMEDOUT, MCPR_EBUSY when another process is
 * delivering) with the reason in err. out (may be NULL) gets the state.
 */
MCPR_API mcpr_status mcpr_cloud_spool_deliver(const mcpr_cloud_sink_options *opts, int timeout_ms,
                                              mcpr_spool_status *out, mcpr_error *err);

/* --- fan-out --- */

MCPR_API mcpr_status mcpr_fanout_new(mcpr_fanout **out, mcpr_error *err);

/* A fan-out holds at most this many sinks. */
#define MCPR_FANOUT_MAX_SINKS 64

/*
 * Add a sink and start its thread. The sink is *stolen*: the fan-out frees
 * it at close, or right away if add fails (EINVAL past
 * MCPR_FANOUT_MAX_SINKS).
 */
MCPR_API mcpr_status mcpr_fanout_add(mcpr_fanout *fan, mcpr_sink *sink, mcpr_error *err);

/*
 * Offer ev (borrowed; copied once) to every sink. Never blocks. Returns
 * MCPR_OK when every sink accepted it, else the first cause of a refusal
 * (MCPR_EQUEUEFULL, MCPR_ECLOSING, MCPR_ENOMEM, MCPR_EINVAL for an event
 * of no known type); each refusal is counted on its sink.
 */
MCPR_API mcpr_status mcpr_fanout_emit(mcpr_fanout *fan, const mcpr_event *ev);

/*
 * Like emit, but waits (up to timeout_ms, < 0 without limit) for room in
 * a full queue instead of refusing: for batch producers such as
 * `mcpr ingest`, never for a proxy's hot path.
 */
MCPR_API mcpr_status mcpr_fanout_emit_wait(mcpr_fanout *fan, const mcpr_event *ev,
                                           int timeout_ms);

/*
 * Wait until every sink has delivered every event accepted before this
 * call, then ask each to flush() (store: commit; cloud: send or spool).
 * timeout_ms < 0 waits without limit. MCPR_OK, MCPR_ETIMEDOUT, or the
 * first sink's flush failure (err says which sink).
 */
MCPR_API mcpr_status mcpr_fanout_flush(mcpr_fanout *fan, int timeout_ms, mcpr_error *err);

typedef struct mcpr_sink_stats {
  char name[32];
  uint64_t accepted;           /* taken into the queue */
  uint64_t delivered;          /* deliver() returned MCPR_OK */
  uint64_t refused_queue_full;
  uint64_t refused_closing;
  uint64_t refused_nomem;
  uint64_t failed;                        /* sum of failed_by[] */
  uint64_t failed_by[MCPR_STATUS_COUNT];  /* by the status deliver() returned */
  uint64_t queue_depth;                   /* accepted, not yet delivered or failed */
  mcpr_status last_error;
  char last_error_message[256];
} mcpr_sink_stats;

MCPR_API size_t mcpr_fanout_sink_count(const mcpr_fanout *fan);
/* Counters of the i-th sink added (0-based). */
MCPR_API mcpr_status mcpr_fanout_sink_stats(mcpr_fanout *fan, size_t i, mcpr_sink_stats *out);

/*
 * Refuse new events, deliver everything queued, drain, join and free every
 * sink and the fan-out. final (may be NULL) receives up to nfinal sinks'
 * last counters. NULL fan: no-op. Returns MCPR_OK when nothing failed or
 * was refused, else the first cause seen.
 */
MCPR_API mcpr_status mcpr_fanout_close(mcpr_fanout *fan, mcpr_sink_stats *final, size_t nfinal);

/* Counter of a sink's refusals (all causes). */
MCPR_API uint64_t mcpr_sink_stats_refused(const mcpr_sink_stats *st);

#ifdef __cplusplus
}
#endif
#endif

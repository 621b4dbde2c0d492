/*
 * store.h — the request store (SPEC §2, §4, §5).
 *
 * A store is a handle on one store — a SQLite store.db file, named by a
 * path or sqlite:PATH — and the background thread that writes to it. The proxy's hot path calls mcpr_store_record(), which copies
 * the event into a bounded lock-free queue and returns at once: it never
 * blocks, never waits on I/O and never waits on the writer. The writer
 * thread takes events off the queue in batches (500 events or 200 ms,
 * whichever first), writes each batch in one transaction, and retries a
 * batch that fails (database locked, I/O error, disk full) instead of
 * dropping it — for a bounded window per episode of failure, reported
 * through on_health. Every event handed to record() ends in exactly one
 * counter: refused (by cause), written, skipped as a duplicate, or failed
 * (by cause). Nothing waits without end: not the writer, not close().
 *
 *   mcpr_store *s;
 *   mcpr_error err = {0};
 *   if (mcpr_store_open(&s, NULL, NULL, &err) != MCPR_OK) { ...err.message... }
 *   mcpr_store_record(s, &event);          // from any thread
 *   mcpr_store_flush(s, 5000, &err);       // wait for everything so far
 *   mcpr_store_close(s, &final_stats);     // drain, commit, join
 *
 * All functions are thread-safe unless noted. The library never prints.
 */
#ifndef MCPR_STORE_H
#define MCPR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The schema version this library writes and the newest it can read. */
#define MCPR_STORE_SCHEMA_VERSION 5

typedef struct mcpr_store mcpr_store;
typedef struct mcpr_store_health mcpr_store_health;

typedef enum mcpr_request_status {
  MCPR_REQUEST_OK = 0,
  MCPR_REQUEST_ERROR = 1,
  MCPR_REQUEST_TIMEOUT = 2,
} mcpr_request_status;

/* "ok", "error", "timeout"; NULL for an out-of-range value. */
MCPR_API const char *mcpr_request_status_str(mcpr_request_status status);
/* Parses "ok"|"error"|"timeout". Returns false for anything else. */
MCPR_API bool mcpr_request_status_parse(const char *text, mcpr_request_status *out);

/*
 * Event structs: every string is borrowed for the duration of the
 * mcpr_store_record() call only (it copies). Optional strings are NULL when
 * absent; optional integers are negative when absent.
 */
typedef struct mcpr_request_event {
  const char *request_id;   /* required: UUIDv7 text, unique */
  int64_t ts_ms;            /* unix ms when received */
  const char *proxy;        /* required */
  const char *session_id;   /* optional */
  const char *method;       /* required: JSON-RPC method as-is */
  const char *tool;         /* optional: tools/call */
  const char *resource_uri; /* optional: resources/read|subscribe|unsubscribe */
  const char *prompt_name;  /* optional: prompts/get */
  int64_t latency_us;       /* >= 0 */
  mcpr_request_status status;
  const char *error_code;   /* optional, e.g. "-32601" */
  const char *error_msg;    /* optional; truncated to 512 characters */
  int64_t bytes_in;         /* < 0: not measured */
  int64_t bytes_out;        /* < 0: not measured */
} mcpr_request_event;

typedef struct mcpr_session_event {
  const char *session_id;      /* required */
  const char *proxy;           /* required */
  int64_t started_at_ms;
  const char *client_name;     /* optional */
  const char *client_version;  /* optional */
  const char *client_platform; /* optional; NULL: derived from client_name */
} mcpr_session_event;

typedef struct mcpr_session_closed_event {
  const char *session_id; /* required */
  int64_t ended_at_ms;
} mcpr_session_closed_event;

typedef struct mcpr_schema_version_event {
  int64_t ts_ms;
  const char *proxy;        /* required */
  const char *upstream_url; /* required */
  const char *method;       /* required, e.g. "tools/list" */
  const char *payload;      /* required: JSON text of the merged result */
  const char *content_hash; /* required: SHA-256 hex of the payload */
} mcpr_schema_version_event;

typedef enum mcpr_store_event_kind {
  MCPR_STORE_EVENT_REQUEST = 1,
  MCPR_STORE_EVENT_SESSION = 2,
  MCPR_STORE_EVENT_SESSION_CLOSED = 3,
  MCPR_STORE_EVENT_SCHEMA_VERSION = 4,
} mcpr_store_event_kind;

typedef struct mcpr_store_event {
  mcpr_store_event_kind kind;
  union {
    mcpr_request_event request;
    mcpr_session_event session;
    mcpr_session_closed_event session_closed;
    mcpr_schema_version_event schema_version;
  } u;
} mcpr_store_event;

typedef struct mcpr_store_options {
  /* Events per transaction (0: the backend's default: 500 for SQLite,
   * whose readers wait for a commit's lock; 2,000 for PostgreSQL, whose
   * readers never do, and which writes a larger batch faster per event). */
  size_t batch_size;
  /* A non-empty batch is committed at the latest this long after its
   * first event was taken (default 200 ms). */
  uint32_t flush_interval_ms;
  /* Events the queue holds before record() refuses (default 16384;
   * rounded up to a power of two). Each takes a 512-byte cell, allocated
   * at open, so the hot path never allocates. */
  size_t queue_capacity;
  /* How long writes are retried through continuous I/O errors, a full
   * disk or a read-only file before events are counted as failed (default
   * 60000 ms). The window is one per episode, not per batch: once it has
   * run out, each later batch is tried once and fails at once until a
   * write succeeds again, then normal retrying resumes. */
  uint32_t io_retry_limit_ms;
  /* The same for a database locked by another writer, or the store's
   * commit lock held by another process (default 120000 ms: a vacuum of a
   * big store holds it for a while). Counted as failed_busy. */
  uint32_t lock_wait_limit_ms;
  /* How long close() lets the writer finish before it gives up on what is
   * left, counting it as failed by cause (default 60000 ms). */
  uint32_t close_timeout_ms;
  /* Called on the writer thread when writing starts failing (at once for
   * I/O errors, a full disk or a read-only file; after 5 s for a lock),
   * when its retry window runs out, and when writing succeeds again: once
   * each per episode. Must be quick and must not call back into the
   * store, except mcpr_store_stats_get / mcpr_store_health_get. NULL: none
   * (mcpr_store_health_get() tells the same by polling). */
  void (*on_health)(void *ctx, const mcpr_store_health *health);
  void *on_health_ctx;
  /* Run the writer thread at background priority while it keeps up
   * (Linux SCHED_IDLE; normal again once its queue is a quarter full, and
   * at close; only where the process may return to normal priority), so
   * that its commits never delay the threads that produce the events.
   * Default false; `mcpr proxy run` sets it. */
  bool background_writer;
  /* SQLite VFS name, NULL for the default (fault-injection tests). */
  const char *vfs_name;
  /*
   * Retention ([store] retention, keep_errors, rollup_retention in
   * mcpr.toml; 0: keep forever, the default). The writer thread deletes,
   * in small transactions between batches (a few thousand rows each, while
   * it is idle or every few batches under load):
   *   - requests older than retention_ms — those whose status is not ok
   *     only once older than keep_errors_ms (0: the same as retention_ms) —
   *     each only after the rollups count it, so the rollups keep counting
   *     the traffic the raw rows no longer hold;
   *   - sessions that ended before that cutoff and have no requests left;
   *   - rollups older than rollup_retention_ms (0: kept forever).
   * Cutoffs are whole hours, the rollups' unit. What was deleted is
   * counted in the store file (mcpr_query_store_info). Retention of
   * requests needs retention_ms; keep_errors_ms and rollup_retention_ms
   * must then be at least retention_ms (else mcpr_store_open fails with
   * MCPR_EINVAL), and rollups are only deleted when retention_ms is set:
   * rollups younger than the raw rows would make reads count nothing for
   * the hours they held.
   */
  int64_t retention_ms;
  int64_t keep_errors_ms;
  int64_t rollup_retention_ms;
} mcpr_store_options;

/* Fill o with the defaults above. */
MCPR_API void mcpr_store_options_init(mcpr_store_options *o);

/*
 * Resolve the store path (SPEC §4): explicit_path if non-NULL and
 * non-empty, else $MCPR_DB if non-empty, else $HOME/.mcpr/store.db.
 * Returns a *new* string (free() it), or NULL with err filled.
 */
MCPR_API char *mcpr_store_resolve_path(const char *explicit_path, mcpr_error *err);

/*
 * Open (creating if needed, with its parent directory) the store at path
 * (NULL: mcpr_store_resolve_path(NULL)), migrate it to the current schema,
 * and start the writer thread. opts may be NULL for defaults.
 * Fails with MCPR_ENEWER for a store from a newer mcpr, MCPR_ENOTSTORE for
 * a database that is not an mcpr store or a file that is not SQLite,
 * MCPR_ECORRUPT, MCPR_EIO, MCPR_EREADONLY. On failure *out is NULL and the
 * file is left untouched when it was refused.
 */
MCPR_API mcpr_status mcpr_store_open(mcpr_store **out, const char *path,
                                     const mcpr_store_options *opts, mcpr_error *err);

/*
 * target (a store path or URL) as it may be shown: a URL's password
 * (user:PASSWORD@host, or a password=… parameter) replaced by "****".
 * Every message, log line and output that names a store goes through
 * this. Writes at most size bytes into buf (cut when longer, always
 * NUL-terminated) and returns buf.
 */
MCPR_API const char *mcpr_store_target_redact(const char *target, char *buf, size_t size);

/* The resolved path of an open store, its password redacted (borrowed,
 * valid until close). */
MCPR_API const char *mcpr_store_path(const mcpr_store *store);

/*
 * Hand one event to the writer. Copies it and returns at once:
 *   MCPR_OK          accepted: it will be written, skipped as a duplicate,
 *                    or counted as failed;
 *   MCPR_EQUEUEFULL  refused, the queue is full (counted);
 *   MCPR_ECLOSING    refused, close has begun (counted);
 *   MCPR_EINVAL      refused, a required field is missing or a value is
 *                    out of range (counted);
 *   MCPR_ENOMEM      refused, the copy could not be allocated (counted).
 * Never blocks; safe from any number of threads.
 */
MCPR_API mcpr_status mcpr_store_record(mcpr_store *store, const mcpr_store_event *event);

/*
 * Wait until every event accepted before this call has been committed or
 * counted as failed. timeout_ms < 0 waits without limit. Returns MCPR_OK
 * when nothing failed since the previous flush returned, MCPR_ETIMEDOUT
 * when the time ran out, or the cause (e.g. MCPR_EDISKFULL) when events
 * failed since the previous flush — each failure is reported by exactly
 * one flush, even if its batch was given up before this call; err says
 * how many.
 */
MCPR_API mcpr_status mcpr_store_flush(mcpr_store *store, int timeout_ms, mcpr_error *err);

typedef struct mcpr_store_stats {
  uint64_t accepted;            /* record() returned MCPR_OK */
  uint64_t written;             /* committed */
  /* Skipped because already stored: a request_id or session_id seen
   * before, a session close that changed nothing (already closed or never
   * started), a schema version equal to or older than the stored one. */
  uint64_t duplicates;
  /* Each refused record() call counts once: a caller that offers the
   * same event again after EQUEUEFULL counts each attempt. */
  uint64_t refused_queue_full;
  uint64_t refused_closing;
  uint64_t refused_invalid;
  uint64_t refused_nomem;
  uint64_t failed_io;           /* given up after io_retry_limit_ms of I/O errors */
  uint64_t failed_disk_full;    /* given up after io_retry_limit_ms of a full disk */
  uint64_t failed_readonly;     /* given up after io_retry_limit_ms of a read-only store */
  uint64_t failed_busy;         /* given up after lock_wait_limit_ms of a locked store */
  uint64_t failed_closed;       /* close_timeout_ms ran out before they were tried */
  uint64_t failed_constraint;   /* the row broke a constraint: skipped */
  uint64_t failed_other;        /* any other SQLite error on that row */
  uint64_t retries;             /* batch attempts that were rolled back and retried */
  uint64_t busy_waits;          /* of those, because the database was locked */
  uint64_t batches;             /* transactions committed */
  uint64_t queue_depth;         /* accepted, not yet finished */
  mcpr_status last_error;       /* MCPR_OK if none yet */
  char last_error_message[256];
  int64_t last_error_at_ms;     /* 0 if none */
  /* Of the duplicates, session closes for a session the store never saw
   * start (its session_start lost, or from another store): counted apart
   * so a summary can tell them from replayed events. */
  uint64_t unknown_session_closes;
} mcpr_store_stats;

/*
 * Whether the store can write now. An episode starts with the first failed
 * attempt of a batch and ends with the next commit; mcpr programs print
 * its start, its giving up and its end (see on_health).
 */
typedef enum mcpr_store_health_event {
  MCPR_STORE_HEALTH_OK = 0,        /* writing (again): the episode ended */
  MCPR_STORE_HEALTH_FAILING = 1,   /* writes fail and are being retried */
  MCPR_STORE_HEALTH_GIVING_UP = 2, /* the retry window ran out: batches fail at once */
} mcpr_store_health_event;

struct mcpr_store_health {
  mcpr_store_health_event state;
  mcpr_status cause;        /* of the current (or, when OK, the last) episode; OK if none */
  char message[256];        /* the backend's detail, with the store path */
  int64_t since_ms;         /* wall clock: the episode's start; 0 if none */
  int64_t ended_ms;         /* wall clock: when the last episode ended; 0 if none/ongoing */
  uint64_t waiting;         /* events accepted, not yet written or failed */
  uint64_t failed;          /* events counted as failed during this episode */
};

/* The current health (a snapshot; safe from any thread). */
MCPR_API void mcpr_store_health_get(const mcpr_store *store, mcpr_store_health *out);

/*
 * Stop waiting out failures, for a program that was asked to stop: from
 * now on a batch that fails is counted as failed at once (by cause)
 * instead of being retried, while batches that can be written still are.
 * What is queued is then flushed in about one attempt per batch. Safe from
 * any thread, and async-signal-safe (an atomic store and a write(2)), so a
 * SIGTERM handler may call it; cannot be undone.
 */
MCPR_API void mcpr_store_stop_retrying(mcpr_store *store);

/* Snapshot of the counters (consistent enough for monitoring). */
MCPR_API void mcpr_store_stats_get(const mcpr_store *store, mcpr_store_stats *out);
/* Sums of the refused_* and failed_* counters. */
MCPR_API uint64_t mcpr_store_stats_refused(const mcpr_store_stats *st);
MCPR_API uint64_t mcpr_store_stats_failed(const mcpr_store_stats *st);

/*
 * Refuse new events, write everything accepted, join the writer, close the
 * file. final (may be NULL) receives the last counters. NULL store: MCPR_OK.
 * Returns MCPR_OK when every accepted event was written or skipped as a
 * duplicate, otherwise the cause of the first failure.
 */
MCPR_API mcpr_status mcpr_store_close(mcpr_store *store, mcpr_store_stats *final);

#ifdef __cplusplus
}
#endif
#endif

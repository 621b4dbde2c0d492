/*
 * store.c — the producer side of the store: open, record, flush, stats,
 * close. The writer thread lives in writer.c.
 *
 * record() does four things, none of which can wait: announce itself in
 * `inflight` (one atomic add, which also tells it whether close has begun),
 * claim a queue cell with one CAS, copy the event into the cell (only an
 * event too big for a cell is copied to the heap), and every
 * batch_size-th event wake the writer. close() sets the closing bit,
 * waits for the few record() calls already past their check to finish
 * their push, then lets the writer drain the queue and exit: no event can
 * be accepted after the writer's last look at the queue.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "mcpr/mcpr.h"
#include "store/store_internal.h"

#define DEFAULT_BATCH_SIZE 500
#define DEFAULT_FLUSH_INTERVAL_MS 200
#define DEFAULT_QUEUE_CAPACITY 16384
#define DEFAULT_IO_RETRY_LIMIT_MS 60000
#define DEFAULT_LOCK_WAIT_LIMIT_MS 120000
#define DEFAULT_CLOSE_TIMEOUT_MS 60000
#define ERROR_MSG_MAX_CHARS 512

const char *mcpr_request_status_str(mcpr_request_status status) {
  switch (status) {
  case MCPR_REQUEST_OK:
    return "ok";
  case MCPR_REQUEST_ERROR:
    return "error";
  case MCPR_REQUEST_TIMEOUT:
    return "timeout";
  }
  return NULL;
}

bool mcpr_request_status_parse(const char *text, mcpr_request_status *out) {
  static const mcpr_request_status all[] = {MCPR_REQUEST_OK, MCPR_REQUEST_ERROR,
                                            MCPR_REQUEST_TIMEOUT};
  if (!text)
    return false;
  for (size_t i = 0; i < 3; i++)
    if (strcmp(text, mcpr_request_status_str(all[i])) == 0) {
      *out = all[i];
      return true;
    }
  return false;
}

void mcpr_store_options_init(mcpr_store_options *o) {
  memset(o, 0, sizeof *o);
  o->batch_size = 0; /* the backend's */
  o->flush_interval_ms = DEFAULT_FLUSH_INTERVAL_MS;
  o->queue_capacity = DEFAULT_QUEUE_CAPACITY;
  o->io_retry_limit_ms = DEFAULT_IO_RETRY_LIMIT_MS;
  o->lock_wait_limit_ms = DEFAULT_LOCK_WAIT_LIMIT_MS;
  o->close_timeout_ms = DEFAULT_CLOSE_TIMEOUT_MS;
}

char *mcpr_store_resolve_path(const char *explicit_path, mcpr_error *err) {
  const char *env = getenv("MCPR_DB");
  char *out = NULL;
  if (explicit_path && *explicit_path) {
    out = strdup(explicit_path);
  } else if (env && *env) {
    out = strdup(env);
  } else {
    const char *home = getenv("HOME");
    if (!home || !*home) {
      mcpr_error_set(err, MCPR_EINVAL,
                     "cannot find the store: HOME is not set; use --db PATH or MCPR_DB");
      return NULL;
    }
    size_t n = strlen(home) + sizeof "/.mcpr/store.db";
    out = malloc(n);
    if (out)
      snprintf(out, n, "%s/.mcpr/store.db", home);
  }
  if (!out)
    mcpr_error_set(err, MCPR_ENOMEM, "out of memory resolving the store path");
  return out;
}

/* The handle holds cache-line-aligned members: calloc only promises 16. */
static mcpr_store *store_alloc(void) {
  size_t size = (sizeof(mcpr_store) + MCPR__CACHELINE - 1) & ~(size_t)(MCPR__CACHELINE - 1);
  mcpr_store *s = aligned_alloc(MCPR__CACHELINE, size);
  if (s)
    memset(s, 0, size);
  return s;
}

static void store_free(mcpr_store *s) {
  if (s->wake_fd >= 0)
    close(s->wake_fd);
  mcpr__queue_release_all(&s->queue);
  free(s->path);
  free(s);
}

mcpr_status mcpr_store_open(mcpr_store **out, const char *path,
                            const mcpr_store_options *opts, mcpr_error *err) {
  *out = NULL;
  mcpr_status st;
  mcpr_store *s = store_alloc();
  if (!s)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  s->wake_fd = -1;
  if (opts)
    s->opts = *opts;
  else
    mcpr_store_options_init(&s->opts);
#define DEFAULT(field, value)                                                                      \
  if (!s->opts.field)                                                                              \
  s->opts.field = value
  DEFAULT(flush_interval_ms, DEFAULT_FLUSH_INTERVAL_MS);
  DEFAULT(queue_capacity, DEFAULT_QUEUE_CAPACITY);
  DEFAULT(io_retry_limit_ms, DEFAULT_IO_RETRY_LIMIT_MS);
  DEFAULT(lock_wait_limit_ms, DEFAULT_LOCK_WAIT_LIMIT_MS);
  DEFAULT(close_timeout_ms, DEFAULT_CLOSE_TIMEOUT_MS);
#undef DEFAULT
  if (s->opts.batch_size > 100000 || s->opts.queue_capacity > ((size_t)1 << 30)) {
    store_free(s);
    return mcpr_error_set(err, MCPR_EINVAL,
                          "batch_size must be at most 100000 and queue_capacity at most 2^30");
  }
  {
    const mcpr_store_options *o = &s->opts;
    const char *bad = NULL;
    if (o->retention_ms < 0 || o->keep_errors_ms < 0 || o->rollup_retention_ms < 0)
      bad = "retention periods cannot be negative";
    else if (!o->retention_ms && o->keep_errors_ms)
      bad = "keep_errors needs retention (errors are kept longer than other requests)";
    else if (o->keep_errors_ms && o->keep_errors_ms < o->retention_ms)
      bad = "keep_errors must be at least retention";
    else if (o->retention_ms && o->rollup_retention_ms &&
             o->rollup_retention_ms < (o->keep_errors_ms > o->retention_ms ? o->keep_errors_ms
                                                                           : o->retention_ms))
      bad = "rollup_retention must be at least retention and keep_errors";
    if (bad) {
      store_free(s);
      return mcpr_error_set(err, MCPR_EINVAL, "%s", bad);
    }
  }

  s->path = mcpr_store_resolve_path(path, err);
  if (!s->path) {
    store_free(s);
    return err ? err->status : MCPR_ENOMEM;
  }
  const char *target;
  const mcpr__backend *be = mcpr__backend_find(s->path, &target, err);
  if (!be) {
    store_free(s);
    return err ? err->status : MCPR_EINVAL;
  }
  s->backend = be->store;
  if (!s->opts.batch_size)
    s->opts.batch_size = s->backend->batch_size ? s->backend->batch_size : DEFAULT_BATCH_SIZE;
  s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd < 0) {
    store_free(s);
    return mcpr_error_set(err, MCPR_ENOMEM, "cannot create the writer's wake-up descriptor");
  }
  if (!mcpr__queue_init(&s->queue, s->opts.queue_capacity, MCPR__SLOT_SIZE)) {
    store_free(s);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory allocating the event queue");
  }
  st = s->backend->open(target, &s->opts, &s->impl, err);
  if (st != MCPR_OK) {
    store_free(s);
    return st;
  }
  /* From here on the target is only shown (health messages,
   * mcpr_store_path()): its password never is. */
  char shown[1024];
  char *redacted = strdup(mcpr_store_target_redact(s->path, shown, sizeof shown));
  if (!redacted) {
    s->backend->close(s->impl);
    store_free(s);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory opening the store");
  }
  free(s->path);
  s->path = redacted;

  pthread_mutex_init(&s->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->done_cv, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&s->thread, NULL, mcpr__writer_main, s) != 0) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "cannot start the store writer thread");
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->lock);
    s->backend->close(s->impl);
    store_free(s);
    return st;
  }
  *out = s;
  return MCPR_OK;
}

const char *mcpr_store_path(const mcpr_store *store) { return store ? store->path : NULL; }

/* ---------- record ---------- */

static size_t str_size(const char *s) { return s ? strlen(s) + 1 : 0; }

/* Bytes of the first ERROR_MSG_MAX_CHARS code points of s (whole
 * characters only, so the cut never splits a UTF-8 sequence). */
static size_t truncated_msg_len(const char *s) {
  size_t chars = 0, i = 0;
  while (s[i]) {
    size_t len = 1;
    unsigned char c = (unsigned char)s[i];
    if (c >= 0xF0)
      len = 4;
    else if (c >= 0xE0)
      len = 3;
    else if (c >= 0xC0)
      len = 2;
    for (size_t k = 1; k < len; k++)
      if (((unsigned char)s[i + k] & 0xC0) != 0x80) {
        len = k; /* malformed: take what is there, never past the NUL */
        break;
      }
    if (chars == ERROR_MSG_MAX_CHARS)
      break;
    chars++;
    i += len;
  }
  return i;
}

/* Copies src into *cursor and returns the copy (NULL stays NULL). */
static const char *copy_str(char **cursor, const char *src, size_t len) {
  if (!src)
    return NULL;
  char *dst = *cursor;
  memcpy(dst, src, len);
  dst[len] = '\0';
  *cursor += len + 1;
  return dst;
}
#define COPY(field) dst->field = copy_str(&cur, src->field, src->field ? strlen(src->field) : 0)

static bool event_valid(const mcpr_store_event *e) {
  switch (e->kind) {
  case MCPR_STORE_EVENT_REQUEST: {
    const mcpr_request_event *r = &e->u.request;
    return r->request_id && *r->request_id && r->proxy && r->method &&
           mcpr_request_status_str(r->status) && r->latency_us >= 0;
  }
  case MCPR_STORE_EVENT_SESSION:
    return e->u.session.session_id && *e->u.session.session_id && e->u.session.proxy;
  case MCPR_STORE_EVENT_SESSION_CLOSED:
    return e->u.session_closed.session_id && *e->u.session_closed.session_id;
  case MCPR_STORE_EVENT_SCHEMA_VERSION: {
    const mcpr_schema_version_event *v = &e->u.schema_version;
    return v->proxy && v->upstream_url && v->method && v->payload && v->content_hash;
  }
  }
  return false;
}

/* Bytes of strings an event needs copied (and its error_msg cut). */
static size_t item_need(const mcpr_store_event *e, size_t *msg_len, const char **platform) {
  switch (e->kind) {
  case MCPR_STORE_EVENT_REQUEST: {
    const mcpr_request_event *r = &e->u.request;
    *msg_len = r->error_msg ? truncated_msg_len(r->error_msg) : 0;
    return str_size(r->request_id) + str_size(r->proxy) + str_size(r->session_id) +
           str_size(r->method) + str_size(r->tool) + str_size(r->resource_uri) +
           str_size(r->prompt_name) + str_size(r->error_code) +
           (r->error_msg ? *msg_len + 1 : 0);
  }
  case MCPR_STORE_EVENT_SESSION: {
    const mcpr_session_event *ss = &e->u.session;
    *platform = ss->client_platform ? ss->client_platform
                                    : mcpr_client_platform(ss->client_name);
    return str_size(ss->session_id) + str_size(ss->proxy) + str_size(ss->client_name) +
           str_size(ss->client_version) + str_size(*platform);
  }
  case MCPR_STORE_EVENT_SESSION_CLOSED:
    return str_size(e->u.session_closed.session_id);
  case MCPR_STORE_EVENT_SCHEMA_VERSION: {
    const mcpr_schema_version_event *v = &e->u.schema_version;
    return str_size(v->proxy) + str_size(v->upstream_url) + str_size(v->method) +
           str_size(v->payload) + str_size(v->content_hash);
  }
  }
  return 0;
}

/* Copy e into it, whose strings[] has room for item_need() bytes. */
static void item_fill(mcpr__item *it, const mcpr_store_event *e, size_t msg_len,
                      const char *platform) {
  it->event = *e;
  char *cur = it->strings;
  switch (e->kind) {
  case MCPR_STORE_EVENT_REQUEST: {
    const mcpr_request_event *src = &e->u.request;
    mcpr_request_event *dst = &it->event.u.request;
    COPY(request_id);
    COPY(proxy);
    COPY(session_id);
    COPY(method);
    COPY(tool);
    COPY(resource_uri);
    COPY(prompt_name);
    COPY(error_code);
    dst->error_msg = copy_str(&cur, src->error_msg, msg_len);
    break;
  }
  case MCPR_STORE_EVENT_SESSION: {
    const mcpr_session_event *src = &e->u.session;
    mcpr_session_event *dst = &it->event.u.session;
    COPY(session_id);
    COPY(proxy);
    COPY(client_name);
    COPY(client_version);
    dst->client_platform = copy_str(&cur, platform, platform ? strlen(platform) : 0);
    break;
  }
  case MCPR_STORE_EVENT_SESSION_CLOSED: {
    const mcpr_session_closed_event *src = &e->u.session_closed;
    mcpr_session_closed_event *dst = &it->event.u.session_closed;
    COPY(session_id);
    break;
  }
  case MCPR_STORE_EVENT_SCHEMA_VERSION: {
    const mcpr_schema_version_event *src = &e->u.schema_version;
    mcpr_schema_version_event *dst = &it->event.u.schema_version;
    COPY(proxy);
    COPY(upstream_url);
    COPY(method);
    COPY(payload);
    COPY(content_hash);
    break;
  }
  }
}
#undef COPY

static void count(_Atomic uint64_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

mcpr_status mcpr_store_record(mcpr_store *s, const mcpr_store_event *event) {
  if (!s || !event)
    return MCPR_EINVAL;
  uint64_t state = atomic_fetch_add_explicit(&s->inflight, 1, memory_order_seq_cst);
  mcpr_status st = MCPR_OK;
  size_t pos = 0;
  if (state & MCPR__CLOSING_BIT) {
    count(&s->refused_closing);
    st = MCPR_ECLOSING;
    goto out;
  }
  if (!event_valid(event)) {
    count(&s->refused_invalid);
    st = MCPR_EINVAL;
    goto out;
  }
  size_t msg_len = 0;
  const char *platform = NULL;
  size_t need = sizeof(mcpr__item) + item_need(event, &msg_len, &platform);
  mcpr__item *heap = NULL;
  if (need > s->queue.payload_size - MCPR__SLOT_ITEM_OFFSET) {
    /* Rare (schema payloads): too big for a cell, so it goes on the heap. */
    heap = malloc(need);
    if (!heap) {
      count(&s->refused_nomem);
      st = MCPR_ENOMEM;
      goto out;
    }
    item_fill(heap, event, msg_len, platform);
  }
  unsigned char *slot = mcpr__queue_claim(&s->queue, &pos);
  if (!slot) {
    free(heap);
    count(&s->refused_queue_full);
    st = MCPR_EQUEUEFULL;
    goto out;
  }
  memcpy(slot, &heap, sizeof heap);
  if (!heap)
    item_fill((mcpr__item *)(slot + MCPR__SLOT_ITEM_OFFSET), event, msg_len, platform);
  mcpr__queue_publish(&s->queue, pos);
  /* A full batch is waiting: wake the writer rather than let it sleep out
   * its interval. Once per batch_size events, one write(2), no lock — and
   * before the decrement below, which is this call's last touch of the
   * store: from then on close() may free it. */
  if ((pos + 1) % s->opts.batch_size == 0)
    mcpr__store_wake(s);
out:
  atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_release);
  return st;
}

/* ---------- flush, stats, close ---------- */


static uint64_t failed_total(const mcpr_store *s) {
  return atomic_load(&s->failed_io) + atomic_load(&s->failed_disk_full) +
         atomic_load(&s->failed_readonly) + atomic_load(&s->failed_busy) +
         atomic_load(&s->failed_closed) + atomic_load(&s->failed_constraint) +
         atomic_load(&s->failed_other);
}

mcpr_status mcpr_store_flush(mcpr_store *s, int timeout_ms, mcpr_error *err) {
  if (!s)
    return mcpr_error_set(err, MCPR_EINVAL, "no store");
  uint64_t target = atomic_load(&s->queue.head);
  struct timespec deadline;
  if (timeout_ms >= 0)
    deadline = mcpr__mono_deadline(timeout_ms);

  uint64_t cur = atomic_load(&s->flush_target);
  while (cur < target && !atomic_compare_exchange_weak(&s->flush_target, &cur, target))
    ;
  mcpr__store_wake(s);
  pthread_mutex_lock(&s->lock);
  int rc = 0;
  while (atomic_load(&s->finished) < target && !atomic_load(&s->writer_exited) && rc == 0) {
    if (timeout_ms >= 0)
      rc = pthread_cond_timedwait(&s->done_cv, &s->lock, &deadline);
    else
      pthread_cond_wait(&s->done_cv, &s->lock);
  }
  mcpr_status cause = s->first_failure;
  uint64_t done = atomic_load(&s->finished);
  /* Each failure is reported once, by the first flush that completes
   * after it — however long ago its batch was given up. */
  uint64_t failed = 0;
  if (done >= target) {
    uint64_t total = failed_total(s);
    failed = total - s->failed_reported;
    s->failed_reported = total;
  }
  pthread_mutex_unlock(&s->lock);

  if (done < target)
    return mcpr_error_set(err, MCPR_ETIMEDOUT,
                          "flush timed out after %d ms with %llu events not yet written",
                          timeout_ms, (unsigned long long)(target - done));
  if (failed)
    return mcpr_error_set(err, cause == MCPR_OK ? MCPR_EIO : cause,
                          "%llu events could not be written: %s", (unsigned long long)failed,
                          mcpr_strerror(cause == MCPR_OK ? MCPR_EIO : cause));
  return MCPR_OK;
}

void mcpr_store_stats_get(const mcpr_store *cs, mcpr_store_stats *o) {
  memset(o, 0, sizeof *o);
  if (!cs)
    return;
  mcpr_store *s = (mcpr_store *)cs; /* the lock is the only thing touched */
  /* Every claimed queue position is an accepted event. */
  o->accepted = atomic_load(&s->queue.head);
  o->written = atomic_load(&s->written);
  o->duplicates = atomic_load(&s->duplicates);
  o->unknown_session_closes = atomic_load(&s->unknown_session_closes);
  o->refused_queue_full = atomic_load(&s->refused_queue_full);
  o->refused_closing = atomic_load(&s->refused_closing);
  o->refused_invalid = atomic_load(&s->refused_invalid);
  o->refused_nomem = atomic_load(&s->refused_nomem);
  o->failed_io = atomic_load(&s->failed_io);
  o->failed_disk_full = atomic_load(&s->failed_disk_full);
  o->failed_readonly = atomic_load(&s->failed_readonly);
  o->failed_busy = atomic_load(&s->failed_busy);
  o->failed_closed = atomic_load(&s->failed_closed);
  o->failed_constraint = atomic_load(&s->failed_constraint);
  o->failed_other = atomic_load(&s->failed_other);
  o->retries = atomic_load(&s->retries);
  o->busy_waits = atomic_load(&s->busy_waits);
  o->batches = atomic_load(&s->batches);
  uint64_t finished = atomic_load(&s->finished);
  o->queue_depth = o->accepted > finished ? o->accepted - finished : 0;
  pthread_mutex_lock(&s->lock);
  o->last_error = s->last_error;
  memcpy(o->last_error_message, s->last_error_message, sizeof o->last_error_message);
  o->last_error_at_ms = s->last_error_at_ms;
  pthread_mutex_unlock(&s->lock);
}

uint64_t mcpr_store_stats_refused(const mcpr_store_stats *st) {
  return st->refused_queue_full + st->refused_closing + st->refused_invalid +
         st->refused_nomem;
}

uint64_t mcpr_store_stats_failed(const mcpr_store_stats *st) {
  return st->failed_io + st->failed_disk_full + st->failed_readonly + st->failed_busy +
         st->failed_closed + st->failed_constraint + st->failed_other;
}

void mcpr_store_health_get(const mcpr_store *cs, mcpr_store_health *out) {
  memset(out, 0, sizeof *out);
  if (!cs)
    return;
  mcpr_store *s = (mcpr_store *)cs; /* the lock is the only thing touched */
  uint64_t accepted = atomic_load(&s->queue.head), finished = atomic_load(&s->finished);
  pthread_mutex_lock(&s->lock);
  *out = s->health;
  pthread_mutex_unlock(&s->lock);
  out->waiting = accepted > finished ? accepted - finished : 0;
}

void mcpr_store_stop_retrying(mcpr_store *s) {
  if (!s)
    return;
  atomic_store(&s->no_retry, true);
  mcpr__store_wake(s);
}

mcpr_status mcpr_store_close(mcpr_store *s, mcpr_store_stats *final) {
  if (!s)
    return MCPR_OK;
  atomic_fetch_or(&s->inflight, MCPR__CLOSING_BIT);
  /* Wait for record() calls that passed their check before the bit was
   * set: each is a handful of instructions from its push. */
  while ((atomic_load(&s->inflight) & ~MCPR__CLOSING_BIT) != 0)
    sched_yield();
  mcpr__store_wake(s);
  /* The writer has close_timeout_ms to finish; then it gives up on what is
   * left (counted by cause) and exits within one attempt. */
  struct timespec deadline = mcpr__mono_deadline(s->opts.close_timeout_ms);
  pthread_mutex_lock(&s->lock);
  int rc = 0;
  while (!atomic_load(&s->writer_exited) && rc == 0)
    rc = pthread_cond_timedwait(&s->done_cv, &s->lock, &deadline);
  pthread_mutex_unlock(&s->lock);
  if (!atomic_load(&s->writer_exited)) {
    atomic_store(&s->abandon, true);
    mcpr__store_wake(s);
  }
  pthread_join(s->thread, NULL);

  if (final)
    mcpr_store_stats_get(s, final);
  mcpr_status st = s->first_failure;
  s->backend->close(s->impl);
  pthread_cond_destroy(&s->done_cv);
  pthread_mutex_destroy(&s->lock);
  store_free(s);
  return st;
}

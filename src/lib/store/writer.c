/*
 * writer.c — the store's writer thread (SPEC §5), the same for every
 * backend (store/backend.h): the backend writes one batch in one
 * transaction; this file decides what goes in a batch, when it is written,
 * and what happens when the backend says no.
 *
 * One thread owns the backend's writer. It takes events off the queue into
 * a batch, and writes the batch when it holds batch_size events, when its
 * first event has waited flush_interval_ms, when a flush() asks, or at
 * close. It sleeps on an eventfd that producers (once per batch_size
 * events), flush() and close() write to.
 *
 * A batch is never thrown away because the database said no. A failed
 * attempt starts (or continues) an *episode* of failure:
 *   - a locked store (another writer, a vacuum, a stopped process holding
 *     the commit lock) is retried for lock_wait_limit_ms;
 *   - an I/O error, a full disk or a read-only file for io_retry_limit_ms;
 * with jittered exponential backoff. The window is per episode, not per
 * batch: once it has run out, each later batch gets one attempt and fails
 * at once (counted by cause) until one commits, which ends the episode.
 * Episodes are reported through on_health and mcpr_store_health_get() —
 * the library never prints. Per-row problems (a constraint) skip that row
 * only, counted.
 *
 * Retention (mcpr_store_options.retention_ms) runs on this thread too, in
 * bounded steps of the backend's (retain: one short transaction each), so
 * that deleting old rows never stalls event writing: when the writer is
 * idle, and under load once every RETAIN_EVERY_BATCHES batches. A round
 * is looked for at most every RETAIN_CHECK_MS; a round goes on step by
 * step until the backend says it is over. A failed step is noted as the
 * last error and tried again at the next check; it never touches events.
 *
 * With options.background_writer (the proxy's store), the thread runs under
 * Linux's SCHED_IDLE while it keeps up: it then never delays a thread of
 * normal priority on its core (measured in bench/proxy.sh at one
 * connection: its commits put the proxy's p99 at 1.6-1.9 ms; 0.24-0.66 ms
 * in SCHED_IDLE, about nginx's). It returns to normal priority as
 * soon as its queue holds a quarter of its capacity, and at close, so a
 * busy machine cannot starve it into dropping events; it leaves normal
 * priority only where it can come back (probed once at start by a
 * short-lived thread: unprivileged, RLIMIT_NICE must allow nice 0).
 *
 * close() may run out of time (close_timeout_ms): then `abandon` is set and
 * everything not committed is counted as failed by cause — the episode's
 * cause, or failed_closed when the store was healthy but slow — never
 * dropped silently and never waited on forever.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "mcpr/mcpr.h"
#include "store/store_internal.h"

/* A lock is only worth telling the user about once it has lasted this long:
 * a vacuum or another writer holding it for a moment is normal. */
#define BUSY_REPORT_AFTER_MS 5000
/* Longest single wait for the commit lock inside one attempt, so that the
 * writer looks at `abandon` and the clock between attempts. */
#define LOCK_ATTEMPT_MS 1000
/* Retention: how often a new round is looked for, and how many batches
 * may pass under load between two steps of a round. */
#define RETAIN_CHECK_MS 60000
#define RETAIN_EVERY_BATCHES 4

typedef struct writer {
  mcpr_store *s;
  void **batch; /* queue slots, in order */
  const mcpr_store_event **events;
  mcpr__outcome *outcomes;
  size_t n;
  int64_t first_at_ms; /* monotonic time the batch's first event was taken */
  /* The episode of failure under way (see the top of this file). */
  int64_t episode_start_ms; /* monotonic; 0: writing is healthy */
  mcpr_status episode_cause;
  bool episode_reported;
  bool episode_exhausted;
  unsigned attempt; /* backoff step within the episode */
  unsigned seed;
  /* Retention: a round under way, the next look for one (monotonic), and
   * batches written since the last step. */
  bool retain_more;
  int64_t retain_next_ms;
  unsigned batches_since_retain;
  /* Background priority (see the top of this file): allowed, and now on. */
  bool can_background;
  bool background;
} writer;

static void *probe_idle_and_back(void *arg) {
  struct sched_param sp = {0};
  *(bool *)arg = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) == 0 &&
                 pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp) == 0;
  return NULL;
}

/* Can a thread of this process leave SCHED_IDLE once in it? Tried on a
 * thread of its own, which ends either way. */
static bool idle_round_trip_allowed(void) {
  bool ok = false;
  pthread_t t;
  if (pthread_create(&t, NULL, probe_idle_and_back, &ok) != 0)
    return false;
  pthread_join(t, NULL);
  return ok;
}

static void set_background(writer *w, bool on) {
  if (!w->can_background || w->background == on)
    return;
  struct sched_param sp = {0};
  if (pthread_setschedparam(pthread_self(), on ? SCHED_IDLE : SCHED_OTHER, &sp) == 0)
    w->background = on;
  else if (w->background) /* cannot come back after all: stay out of the idle class */
    w->can_background = false;
}

static bool is_busy(mcpr_status st) { return st == MCPR_EBUSY; }

static void note_error(mcpr_store *s, mcpr_status st, const char *what, const char *detail) {
  pthread_mutex_lock(&s->lock);
  s->last_error = st;
  /* A long detail is cut: the message is for people. */
  if (snprintf(s->last_error_message, sizeof s->last_error_message, "%s: %s", what, detail) < 0)
    s->last_error_message[0] = '\0';
  s->last_error_at_ms = mcpr_now_ms();
  pthread_mutex_unlock(&s->lock);
}

static _Atomic uint64_t *failed_counter(mcpr_store *s, mcpr_status cause) {
  switch (cause) {
  case MCPR_EDISKFULL:
    return &s->failed_disk_full;
  case MCPR_EREADONLY:
    return &s->failed_readonly;
  case MCPR_EBUSY:
    return &s->failed_busy;
  case MCPR_ECLOSING:
    return &s->failed_closed;
  case MCPR_EIO:
    return &s->failed_io;
  default:
    return &s->failed_other;
  }
}

/* ---------- health episodes ---------- */

/* Tell on_health (outside the lock) what the episode now is. */
static void health_publish(writer *w, mcpr_store_health_event state, mcpr_status cause,
                           const char *detail) {
  mcpr_store *s = w->s;
  mcpr_store_health h;
  pthread_mutex_lock(&s->lock);
  s->health.state = state;
  if (state == MCPR_STORE_HEALTH_OK) {
    s->health.ended_ms = mcpr_now_ms();
  } else {
    s->health.cause = cause;
    if (snprintf(s->health.message, sizeof s->health.message, "%s: %s", s->path, detail) < 0)
      s->health.message[0] = '\0';
    if (state == MCPR_STORE_HEALTH_FAILING) {
      s->health.since_ms = mcpr_now_ms() - (mcpr__mono_ms() - w->episode_start_ms);
      s->health.ended_ms = 0;
      s->health.failed = 0;
    }
  }
  pthread_mutex_unlock(&s->lock);
  mcpr_store_health_get(s, &h);
  if (s->backend->note_health)
    s->backend->note_health(s->impl, &h);
  if (s->opts.on_health)
    s->opts.on_health(s->opts.on_health_ctx, &h);
}

static void episode_end(writer *w) {
  if (!w->episode_start_ms)
    return;
  bool reported = w->episode_reported;
  w->episode_start_ms = 0;
  w->episode_reported = w->episode_exhausted = false;
  w->attempt = 0;
  if (reported)
    health_publish(w, MCPR_STORE_HEALTH_OK, MCPR_OK, "");
}

/* A failed attempt: start or continue the episode. Returns true when the
 * batch must fail now (the window has run out). */
static bool episode_failed(writer *w, mcpr_status st, const char *detail) {
  int64_t now = mcpr__mono_ms();
  if (!w->episode_start_ms)
    w->episode_start_ms = now;
  w->episode_cause = st;
  int64_t age = now - w->episode_start_ms;
  if (!w->episode_reported && (!is_busy(st) || age >= BUSY_REPORT_AFTER_MS)) {
    w->episode_reported = true;
    health_publish(w, MCPR_STORE_HEALTH_FAILING, st, detail);
  }
  int64_t limit = is_busy(st) ? w->s->opts.lock_wait_limit_ms : w->s->opts.io_retry_limit_ms;
  if (!w->episode_exhausted && (age >= limit || atomic_load(&w->s->no_retry))) {
    w->episode_exhausted = true;
    if (!w->episode_reported) {
      w->episode_reported = true;
      health_publish(w, MCPR_STORE_HEALTH_FAILING, st, detail);
    }
    health_publish(w, MCPR_STORE_HEALTH_GIVING_UP, st, detail);
  }
  return w->episode_exhausted;
}

/* ---------- one batch ---------- */

static void finish_batch(writer *w) {
  mcpr_store *s = w->s;
  uint64_t n = w->n;
  for (size_t i = 0; i < w->n; i++)
    mcpr__slot_free(w->batch[i]);
  mcpr__queue_release(&s->queue, w->n);
  w->n = 0;
  pthread_mutex_lock(&s->lock);
  atomic_fetch_add(&s->finished, n);
  pthread_cond_broadcast(&s->done_cv);
  pthread_mutex_unlock(&s->lock);
}

static void fail_batch(writer *w, mcpr_status cause) {
  mcpr_store *s = w->s;
  atomic_fetch_add(failed_counter(s, cause), w->n);
  pthread_mutex_lock(&s->lock);
  if (s->first_failure == MCPR_OK)
    s->first_failure = cause;
  bool in_episode = s->health.state != MCPR_STORE_HEALTH_OK;
  if (in_episode)
    s->health.failed += w->n;
  pthread_mutex_unlock(&s->lock);
  if (in_episode && s->backend->note_health) {
    mcpr_store_health h;
    mcpr_store_health_get(s, &h);
    s->backend->note_health(s->impl, &h);
  }
  finish_batch(w);
}

static void count_outcomes(writer *w) {
  mcpr_store *s = w->s;
  uint64_t written = 0, dup = 0, unknown_session = 0, constraint = 0, other = 0;
  for (size_t i = 0; i < w->n; i++) {
    switch (w->outcomes[i]) {
    case MCPR__WRITTEN: written++; break;
    case MCPR__DUPLICATE: dup++; break;
    case MCPR__UNKNOWN_SESSION: dup++; unknown_session++; break;
    case MCPR__CONSTRAINT: constraint++; break;
    case MCPR__ROW_FAILED: other++; break;
    }
  }
  atomic_fetch_add(&s->written, written);
  atomic_fetch_add(&s->duplicates, dup);
  atomic_fetch_add(&s->unknown_session_closes, unknown_session);
  atomic_fetch_add(&s->batches, 1);
  if (constraint || other) {
    atomic_fetch_add(&s->failed_constraint, constraint);
    atomic_fetch_add(&s->failed_other, other);
    note_error(s, MCPR_ECONSTRAINT, "rows skipped", "a row broke a constraint");
    pthread_mutex_lock(&s->lock);
    if (s->first_failure == MCPR_OK)
      s->first_failure = MCPR_ECONSTRAINT;
    pthread_mutex_unlock(&s->lock);
  }
}

/* Sleep ms, or less when close gives up on us. */
static void backoff_sleep(mcpr_store *s, int64_t ms) {
  int64_t until = mcpr__mono_ms() + ms;
  while (!atomic_load(&s->abandon) && !atomic_load(&s->no_retry)) {
    int64_t left = until - mcpr__mono_ms();
    if (left <= 0)
      return;
    mcpr__sleep_ms(left < 50 ? left : 50);
  }
}

static void write_batch(writer *w) {
  mcpr_store *s = w->s;
  for (size_t i = 0; i < w->n; i++)
    w->events[i] = &mcpr__slot_item(w->batch[i])->event;
  mcpr_status last = MCPR_OK;
  for (;;) {
    if (atomic_load(&s->abandon)) {
      fail_batch(w, last != MCPR_OK ? last : MCPR_ECLOSING);
      return;
    }
    mcpr_error err = {0};
    mcpr_status st =
        s->backend->write_batch(s->impl, w->events, w->n, w->outcomes, LOCK_ATTEMPT_MS, &err);
    if (st == MCPR_OK) {
      count_outcomes(w);
      episode_end(w); /* before the batch is done: a flush then sees health OK */
      finish_batch(w);
      return;
    }
    last = st;
    atomic_fetch_add(&s->retries, 1);
    if (is_busy(st))
      atomic_fetch_add(&s->busy_waits, 1);
    note_error(s, st, "writing a batch", err.message);
    if (episode_failed(w, st, err.message)) {
      fail_batch(w, st);
      return;
    }
    backoff_sleep(s, mcpr__backoff_ms(5, 1000, w->attempt++, &w->seed));
  }
}

/* ---------- retention ---------- */

static bool retention_on(const mcpr_store *s) {
  return s->opts.retention_ms > 0 && s->backend->retain;
}

static bool retain_due(const writer *w) {
  return w->retain_more || mcpr__mono_ms() >= w->retain_next_ms;
}

static void retain_step(writer *w) {
  mcpr_store *s = w->s;
  mcpr_error err = {0};
  bool more = false;
  mcpr_status st = s->backend->retain(s->impl, mcpr_now_ms(), &more, &err);
  w->batches_since_retain = 0;
  if (st != MCPR_OK) {
    note_error(s, st, "applying retention", err.message);
    more = false;
  }
  w->retain_more = more;
  if (!more)
    w->retain_next_ms = mcpr__mono_ms() + RETAIN_CHECK_MS;
}

/* ---------- the loop ---------- */

static bool closing_and_quiet(mcpr_store *s) {
  uint64_t f = atomic_load(&s->inflight);
  return (f & MCPR__CLOSING_BIT) && (f & ~MCPR__CLOSING_BIT) == 0;
}

void mcpr__store_wake(mcpr_store *s) {
  uint64_t one = 1;
  /* Non-blocking: a full counter (never, at 2^64 − 2) would mean it is
   * already signalled. */
  ssize_t r = write(s->wake_fd, &one, sizeof one);
  (void)r;
}

static void wait_for_work(mcpr_store *s, int64_t until_ms) {
  int64_t left = until_ms - mcpr__mono_ms();
  if (left <= 0)
    return;
  struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
  if (poll(&p, 1, (int)(left > 60000 ? 60000 : left)) > 0) {
    uint64_t v;
    ssize_t r = read(s->wake_fd, &v, sizeof v);
    (void)r;
  }
}

/* Count what is left in the queue as failed (close gave up, or nothing can
 * be written at all). */
static uint64_t fail_queued(mcpr_store *s, mcpr_status cause) {
  void *slot;
  uint64_t n = 0;
  while ((slot = mcpr__queue_read(&s->queue))) {
    mcpr__slot_free(slot);
    mcpr__queue_release(&s->queue, 1);
    n++;
  }
  if (n) {
    atomic_fetch_add(failed_counter(s, cause), n);
    pthread_mutex_lock(&s->lock);
    if (s->first_failure == MCPR_OK)
      s->first_failure = cause;
    atomic_fetch_add(&s->finished, n);
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->lock);
  }
  return n;
}

static bool writer_init(writer *w, mcpr_store *s) {
  memset(w, 0, sizeof *w);
  w->s = s;
  w->seed = mcpr__backoff_seed(w);
  size_t bs = s->opts.batch_size;
  w->batch = calloc(bs, sizeof *w->batch);
  w->events = calloc(bs, sizeof *w->events);
  w->outcomes = calloc(bs, sizeof *w->outcomes);
  return w->batch && w->events && w->outcomes;
}

static void writer_release(writer *w) {
  free(w->batch);
  free(w->events);
  free(w->outcomes);
}

void *mcpr__writer_main(void *arg) {
  mcpr_store *s = arg;
  writer w;
  pthread_setname_np(pthread_self(), "mcpr-writer");
  if (!writer_init(&w, s)) {
    /* Nothing can be written: count every event as failed (never
     * silently) until close. */
    note_error(s, MCPR_ENOMEM, "starting the writer", "out of memory");
    for (;;) {
      fail_queued(s, MCPR_ENOMEM);
      if (closing_and_quiet(s) && mcpr__queue_depth(&s->queue) == 0)
        break;
      wait_for_work(s, mcpr__mono_ms() + 50);
    }
    goto out;
  }
  size_t bs = s->opts.batch_size;
  /* After writer_init: a thread the backend starts there (PostgreSQL's
   * folder) keeps normal priority. */
  w.can_background = s->opts.background_writer && idle_round_trip_allowed();
  size_t behind = (s->queue.mask + 1) / 4; /* events queued that end the background */
  for (;;) {
    if (atomic_load(&s->abandon)) {
      /* close gave up: the batch in hand and the rest of the queue. */
      mcpr_status cause = w.episode_start_ms ? w.episode_cause : MCPR_ECLOSING;
      if (w.n)
        fail_batch(&w, cause);
      fail_queued(s, cause);
      if (closing_and_quiet(s) && atomic_load(&s->queue.head) == atomic_load(&s->finished))
        break;
      sched_yield();
      continue;
    }
    void *slot;
    while (w.n < bs && (slot = mcpr__queue_read(&s->queue))) {
      if (w.n == 0)
        w.first_at_ms = mcpr__mono_ms();
      w.batch[w.n++] = slot;
    }
    bool closing = closing_and_quiet(s);
    if (w.background && (closing || mcpr__queue_depth(&s->queue) >= behind))
      set_background(&w, false);
    uint64_t taken = atomic_load(&s->finished) + w.n;
    bool flush_wanted = atomic_load(&s->flush_target) > atomic_load(&s->finished);
    int64_t now = mcpr__mono_ms();
    if (w.n == bs ||
        (w.n > 0 && (closing || flush_wanted ||
                     now - w.first_at_ms >= (int64_t)s->opts.flush_interval_ms))) {
      write_batch(&w);
      if (retention_on(s) && !closing && ++w.batches_since_retain >= RETAIN_EVERY_BATCHES &&
          retain_due(&w))
        retain_step(&w);
      continue;
    }
    /* Claimed but not yet published cells: their producer is a few
     * instructions from publishing; look again very soon. */
    bool unpublished = atomic_load(&s->queue.head) > taken;
    if (w.n == 0 && closing && !unpublished)
      break;
    if (unpublished && (closing || flush_wanted)) {
      sched_yield();
      continue;
    }
    if (w.n == 0 && !closing && !unpublished && retention_on(s) && retain_due(&w)) {
      retain_step(&w);
      continue;
    }
    /* Idle: look again at a quarter of the interval, so an event waits
     * at most 1.25 intervals even if a wake-up were missed. */
    int64_t idle = s->opts.flush_interval_ms / 4 ? s->opts.flush_interval_ms / 4 : 1;
    int64_t until = w.n > 0 ? w.first_at_ms + s->opts.flush_interval_ms : now + idle;
    if (!closing)
      set_background(&w, true);
    wait_for_work(s, until);
  }
out:
  writer_release(&w);
  pthread_mutex_lock(&s->lock);
  atomic_store(&s->writer_exited, true);
  pthread_cond_broadcast(&s->done_cv);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

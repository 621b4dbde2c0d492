/*
 * fanout.c — one event to every sink, each sink on its own thread.
 *
 * emit() copies the event once into a reference-counted shared_event and
 * pushes a pointer to it on each sink's ring (bounded, guarded by the
 * sink's mutex, held only for the push: O(1), no I/O, no waiting on the
 * sink). The sink's thread pops in FIFO order, calls deliver() without the
 * lock, then counts the outcome. The last sink to finish with an event
 * frees it.
 *
 * A sink's thread also runs its periodic tick() (batching), answers
 * flush() requests once every event accepted before the request is done
 * (tracked by sequence numbers, so a steady stream cannot starve a flush),
 * and at close delivers what is queued, calls drain() and exits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "mcpr/sink.h"

typedef struct shared_event {
  atomic_uint refs;
  mcpr_event ev;
} shared_event;

struct mcpr_sink {
  mcpr_sink_ops ops;
  void *self;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv_work;  /* to the sink thread: events, flush, close */
  pthread_cond_t cv_done;  /* from it: room in the ring, flush answered */
  shared_event **ring;
  size_t cap, head, count;
  bool closing;
  bool idle; /* the thread sleeps with nothing to do: an offer must wake it */
  uint64_t seq_accepted, seq_done;
  uint64_t flush_req, flush_done, flush_target;
  mcpr_status flush_status;
  char flush_message[MCPR_ERROR_MESSAGE_MAX];
  mcpr_sink_stats st;
};

struct mcpr_fanout {
  mcpr_sink **sinks;
  size_t n, cap;
  atomic_bool closing;
};

static void shared_release(shared_event *se) {
  if (se && atomic_fetch_sub(&se->refs, 1) == 1) {
    mcpr_event_release(&se->ev);
    free(se);
  }
}



/* Wait on cv until signalled or the monotonic deadline (ms; < 0: none). */
static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms) {
  if (deadline_ms < 0) {
    pthread_cond_wait(cv, mu);
    return;
  }
  struct timespec ts = mcpr__mono_timespec(deadline_ms);
  pthread_cond_timedwait(cv, mu, &ts);
}

mcpr_status mcpr_sink_new(mcpr_sink **out, const mcpr_sink_ops *ops, void *self,
                          size_t queue_capacity, mcpr_error *err) {
  *out = NULL;
  if (!ops || !ops->deliver)
    return mcpr_error_set(err, MCPR_EINVAL, "a sink needs a deliver callback");
  mcpr_sink *s = calloc(1, sizeof *s);
  if (!s)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory creating a sink");
  s->ops = *ops;
  s->self = self;
  s->cap = queue_capacity ? queue_capacity : MCPR_SINK_QUEUE_DEFAULT;
  s->ring = calloc(s->cap, sizeof *s->ring);
  if (!s->ring) {
    free(s);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory for a sink queue of %zu", queue_capacity);
  }
  snprintf(s->st.name, sizeof s->st.name, "%s", ops->name ? ops->name : "sink");
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv_work, &ca);
  pthread_cond_init(&s->cv_done, &ca);
  pthread_condattr_destroy(&ca);
  *out = s;
  return MCPR_OK;
}

static void sink_free(mcpr_sink *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->count; i++)
    shared_release(s->ring[(s->head + i) % s->cap]);
  if (s->ops.destroy)
    s->ops.destroy(s->self);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv_work);
  pthread_cond_destroy(&s->cv_done);
  free(s->ring);
  free(s);
}

/* Called with s->mu held; releases it around the callback. */
static void run_flush(mcpr_sink *s) {
  uint64_t req = s->flush_req;
  mcpr_status st = MCPR_OK;
  mcpr_error err = {0};
  if (s->ops.flush) {
    pthread_mutex_unlock(&s->mu);
    st = s->ops.flush(s->self, &err);
    pthread_mutex_lock(&s->mu);
  }
  s->flush_status = st;
  snprintf(s->flush_message, sizeof s->flush_message, "%s", err.message);
  s->flush_done = req;
  pthread_cond_broadcast(&s->cv_done);
}

/* Events a sink's thread takes from its ring under one lock. */
#define SINK_TAKE_MAX 64
/*
 * After its ring runs dry a sink's thread waits this long for more before
 * it counts as idle. Producers wake only an idle thread (or one whose ring
 * is half full), so under load a sink costs one timed wake-up per linger
 * period instead of a futex wake and two context switches per event.
 */
#define SINK_LINGER_MS 2

static void count_outcome(mcpr_sink *s, mcpr_status st, const mcpr_error *err) {
  if (st == MCPR_OK) {
    s->st.delivered++;
    return;
  }
  s->st.failed++;
  s->st.failed_by[st < MCPR_STATUS_COUNT ? st : MCPR_EINVAL]++;
  s->st.last_error = st;
  snprintf(s->st.last_error_message, sizeof s->st.last_error_message, "%.255s",
           err->message[0] ? err->message : mcpr_strerror(st));
}

static void *sink_thread(void *arg) {
  mcpr_sink *s = arg;
  int64_t next_tick = s->ops.tick && s->ops.tick_ms ? mcpr__mono_ms() + s->ops.tick_ms : -1;
  bool lingered = false;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    if (next_tick >= 0 && mcpr__mono_ms() >= next_tick) {
      pthread_mutex_unlock(&s->mu);
      s->ops.tick(s->self);
      pthread_mutex_lock(&s->mu);
      next_tick = mcpr__mono_ms() + s->ops.tick_ms;
      continue;
    }
    if (s->count > 0) {
      /* The events stay in their ring slots until delivered, so the ring's
       * capacity is what a stuck sink holds. */
      shared_event *batch[SINK_TAKE_MAX];
      size_t n = 0;
      while (n < s->count && n < SINK_TAKE_MAX) {
        batch[n] = s->ring[(s->head + n) % s->cap];
        n++;
      }
      pthread_mutex_unlock(&s->mu);
      mcpr_status outcome[SINK_TAKE_MAX];
      mcpr_error last_err = {0};
      for (size_t i = 0; i < n; i++) {
        mcpr_error err = {0};
        outcome[i] = s->ops.deliver(s->self, &batch[i]->ev, &err);
        if (outcome[i] != MCPR_OK)
          last_err = err;
        shared_release(batch[i]);
      }
      pthread_mutex_lock(&s->mu);
      s->head = (s->head + n) % s->cap;
      s->count -= n;
      s->seq_done += n;
      for (size_t i = 0; i < n; i++)
        count_outcome(s, outcome[i], &last_err);
      pthread_cond_broadcast(&s->cv_done); /* room for emit_wait */
      lingered = false;
      continue;
    }
    if (s->flush_req != s->flush_done && s->seq_done >= s->flush_target) {
      run_flush(s);
      continue;
    }
    if (s->closing)
      break;
    if (!lingered) {
      int64_t until = mcpr__mono_ms() + SINK_LINGER_MS;
      cond_wait_until(&s->cv_work, &s->mu, next_tick >= 0 && next_tick < until ? next_tick : until);
      lingered = true;
      continue;
    }
    s->idle = true;
    cond_wait_until(&s->cv_work, &s->mu, next_tick);
    s->idle = false;
    lingered = false;
  }
  pthread_mutex_unlock(&s->mu);
  if (s->ops.drain)
    s->ops.drain(s->self);
  return NULL;
}

mcpr_status mcpr_fanout_new(mcpr_fanout **out, mcpr_error *err) {
  *out = calloc(1, sizeof **out);
  if (!*out)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory creating a fan-out");
  atomic_init(&(*out)->closing, false);
  return MCPR_OK;
}

mcpr_status mcpr_fanout_add(mcpr_fanout *fan, mcpr_sink *sink, mcpr_error *err) {
  if (!fan || !sink) {
    sink_free(sink);
    return mcpr_error_set(err, MCPR_EINVAL, "no fan-out or no sink");
  }
  if (fan->n == MCPR_FANOUT_MAX_SINKS) {
    sink_free(sink);
    return mcpr_error_set(err, MCPR_EINVAL, "a fan-out holds at most %d sinks",
                          MCPR_FANOUT_MAX_SINKS);
  }
  if (fan->n == fan->cap) {
    size_t cap = fan->cap ? fan->cap * 2 : 4;
    mcpr_sink **v = realloc(fan->sinks, cap * sizeof *v);
    if (!v) {
      sink_free(sink);
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory adding a sink");
    }
    fan->sinks = v;
    fan->cap = cap;
  }
  int rc = pthread_create(&sink->thread, NULL, sink_thread, sink);
  if (rc != 0) {
    /* the message names the sink: set it before the sink is freed */
    mcpr_error_set(err, MCPR_ENOMEM, "cannot start the %s sink's thread: %s", sink->st.name,
                   strerror(rc));
    sink_free(sink);
    return MCPR_ENOMEM;
  }
  sink->started = true;
  fan->sinks[fan->n++] = sink;
  return MCPR_OK;
}

static mcpr_status offer(mcpr_sink *s, shared_event *se, int timeout_ms) {
  mcpr_status st = MCPR_OK;
  int64_t deadline = timeout_ms < 0 ? -1 : mcpr__mono_ms() + timeout_ms;
  pthread_mutex_lock(&s->mu);
  while (!s->closing && s->count == s->cap && timeout_ms != 0) {
    if (deadline >= 0 && mcpr__mono_ms() >= deadline)
      break;
    cond_wait_until(&s->cv_done, &s->mu, deadline);
  }
  if (s->closing) {
    s->st.refused_closing++;
    st = MCPR_ECLOSING;
  } else if (s->count == s->cap) {
    s->st.refused_queue_full++;
    st = MCPR_EQUEUEFULL;
  } else {
    s->ring[(s->head + s->count) % s->cap] = se;
    s->count++;
    s->st.accepted++;
    s->seq_accepted++;
    if (s->idle || s->count * 2 >= s->cap)
      pthread_cond_signal(&s->cv_work);
  }
  pthread_mutex_unlock(&s->mu);
  return st;
}

static mcpr_status emit_queued(mcpr_fanout *fan, const mcpr_event *ev, int timeout_ms,
                               uint64_t queued, size_t n_queued);

/* The event taken at once by s's try_deliver, when nothing is queued
 * ahead of it: true when that settled it (delivered or failed). */
static bool deliver_now(mcpr_sink *s, const mcpr_event *ev) {
  if (!s->ops.try_deliver)
    return false;
  bool done = false;
  pthread_mutex_lock(&s->mu);
  mcpr_status st;
  if (!s->closing && s->count == 0 && (st = s->ops.try_deliver(s->self, ev)) != MCPR_EQUEUEFULL) {
    mcpr_error err = {0};
    s->st.accepted++;
    s->seq_accepted++;
    s->seq_done++;
    count_outcome(s, st, &err);
    done = true;
  }
  pthread_mutex_unlock(&s->mu);
  return done;
}

static mcpr_status emit(mcpr_fanout *fan, const mcpr_event *ev, int timeout_ms) {
  if (!fan || fan->n == 0)
    return fan ? MCPR_OK : MCPR_EINVAL;
  /* Sinks that take the event at once, or want none, first; then one
   * shared copy for the queues of the others. */
  uint64_t queued = 0;
  size_t n_queued = 0;
  bool closing = atomic_load(&fan->closing);
  for (size_t i = 0; i < fan->n; i++) {
    mcpr_sink *s = fan->sinks[i];
    if ((s->ops.wants && !s->ops.wants(s->self)) || (!closing && deliver_now(s, ev)))
      continue;
    queued |= (uint64_t)1 << i;
    n_queued++;
  }
  return emit_queued(fan, ev, timeout_ms, queued, n_queued);
}

/* ev onto the queue of every sink i whose bit is set in queued. */
static mcpr_status emit_queued(mcpr_fanout *fan, const mcpr_event *ev, int timeout_ms,
                               uint64_t queued, size_t n_queued) {
  if (n_queued == 0)
    return MCPR_OK;
  mcpr_status first = MCPR_OK;
  shared_event *se = NULL;
  mcpr_status copy_st = MCPR_ENOMEM;
  if (!atomic_load(&fan->closing) && (se = malloc(sizeof *se)) != NULL) {
    copy_st = mcpr_event_copy(&se->ev, ev, NULL);
    if (copy_st != MCPR_OK) {
      free(se);
      se = NULL;
    }
  }
  if (!se) {
    mcpr_status cause = atomic_load(&fan->closing) ? MCPR_ECLOSING : copy_st;
    for (size_t i = 0; i < fan->n; i++) {
      if (!(queued >> i & 1))
        continue;
      mcpr_sink *s = fan->sinks[i];
      pthread_mutex_lock(&s->mu);
      if (cause == MCPR_ECLOSING)
        s->st.refused_closing++;
      else
        s->st.refused_nomem++; /* EINVAL (no known type) is counted here too */
      pthread_mutex_unlock(&s->mu);
    }
    return cause;
  }
  atomic_init(&se->refs, (unsigned)n_queued);
  for (size_t i = 0; i < fan->n; i++) {
    if (!(queued >> i & 1))
      continue;
    mcpr_status st = offer(fan->sinks[i], se, timeout_ms);
    if (st != MCPR_OK) {
      shared_release(se);
      if (first == MCPR_OK)
        first = st;
    }
  }
  return first;
}

mcpr_status mcpr_fanout_emit(mcpr_fanout *fan, const mcpr_event *ev) { return emit(fan, ev, 0); }

mcpr_status mcpr_fanout_emit_wait(mcpr_fanout *fan, const mcpr_event *ev, int timeout_ms) {
  return emit(fan, ev, timeout_ms < 0 ? -1 : timeout_ms);
}

mcpr_status mcpr_fanout_flush(mcpr_fanout *fan, int timeout_ms, mcpr_error *err) {
  if (!fan)
    return mcpr_error_set(err, MCPR_EINVAL, "no fan-out");
  int64_t deadline = timeout_ms < 0 ? -1 : mcpr__mono_ms() + timeout_ms;
  mcpr_status first = MCPR_OK;
  for (size_t i = 0; i < fan->n; i++) {
    mcpr_sink *s = fan->sinks[i];
    pthread_mutex_lock(&s->mu);
    uint64_t ticket = ++s->flush_req;
    s->flush_target = s->seq_accepted;
    pthread_cond_signal(&s->cv_work);
    while (s->flush_done < ticket) {
      if (deadline >= 0 && mcpr__mono_ms() >= deadline)
        break;
      cond_wait_until(&s->cv_done, &s->mu, deadline);
    }
    if (s->flush_done < ticket) {
      if (first == MCPR_OK)
        first = mcpr_error_set(err, MCPR_ETIMEDOUT, "the %s sink did not finish in %d ms",
                               s->st.name, timeout_ms);
    } else if (s->flush_status != MCPR_OK && first == MCPR_OK) {
      first = mcpr_error_set(err, s->flush_status, "%s sink: %s", s->st.name,
                             s->flush_message[0] ? s->flush_message
                                                 : mcpr_strerror(s->flush_status));
    }
    pthread_mutex_unlock(&s->mu);
  }
  return first;
}

size_t mcpr_fanout_sink_count(const mcpr_fanout *fan) { return fan ? fan->n : 0; }

mcpr_status mcpr_fanout_sink_stats(mcpr_fanout *fan, size_t i, mcpr_sink_stats *out) {
  if (!fan || i >= fan->n)
    return MCPR_EINVAL;
  mcpr_sink *s = fan->sinks[i];
  pthread_mutex_lock(&s->mu);
  *out = s->st;
  out->queue_depth = s->seq_accepted - s->seq_done;
  pthread_mutex_unlock(&s->mu);
  return MCPR_OK;
}

uint64_t mcpr_sink_stats_refused(const mcpr_sink_stats *st) {
  return st->refused_queue_full + st->refused_closing + st->refused_nomem;
}

mcpr_status mcpr_fanout_close(mcpr_fanout *fan, mcpr_sink_stats *final, size_t nfinal) {
  if (!fan)
    return MCPR_OK;
  atomic_store(&fan->closing, true);
  mcpr_status first = MCPR_OK;
  for (size_t i = 0; i < fan->n; i++) {
    mcpr_sink *s = fan->sinks[i];
    pthread_mutex_lock(&s->mu);
    s->closing = true;
    pthread_cond_broadcast(&s->cv_work);
    pthread_cond_broadcast(&s->cv_done); /* wake emit_wait */
    pthread_mutex_unlock(&s->mu);
  }
  for (size_t i = 0; i < fan->n; i++) {
    mcpr_sink *s = fan->sinks[i];
    if (s->started)
      pthread_join(s->thread, NULL);
    s->st.queue_depth = s->seq_accepted - s->seq_done;
    if (first == MCPR_OK && s->st.failed)
      first = s->st.last_error;
    if (first == MCPR_OK && s->st.refused_queue_full)
      first = MCPR_EQUEUEFULL;
    if (first == MCPR_OK && s->st.refused_nomem)
      first = MCPR_ENOMEM;
    if (final && i < nfinal)
      final[i] = s->st;
    sink_free(s);
  }
  free(fan->sinks);
  free(fan);
  return first;
}

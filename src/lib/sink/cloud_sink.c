/*
 * cloud_sink.c — proxy events to the mcpr cloud without losing them.
 *
 * Two threads per cloud sink:
 *   - the fan-out's sink thread calls deliver(): each event is encoded
 *     (with the "server" slug added) and appended to the batch in memory;
 *     a batch that reaches batch_size, or is flush_interval_ms old, or is
 *     flushed, is appended to the spool (fsync'd) — write-ahead, before any
 *     upload, so a process killed mid-upload loses nothing;
 *   - the delivery thread owns the HTTP handle (src/lib/http, which
 *     decides which endpoints may be used, verifies TLS, refuses
 *     redirects to another origin and keeps the token out of every text
 *     it returns). It uploads spooled batches oldest first (see
 *     deliver_pass) and, after a retryable failure, sleeps with
 *     exponential backoff and jitter or for the server's Retry-After;
 *     after 401/403 it pauses until close.
 * They meet only at the spool directory and a condition variable that the
 * sink thread signals when it has spooled a batch.
 *
 * Close (drain): the last batch is spooled, then the delivery thread gets
 * close_timeout_ms to deliver what it can (a POST in flight is aborted at
 * the deadline); what is left stays in the spool for the next process or
 * `mcpr cloud flush`. Several processes may share one spool; only one at
 * a time delivers (delivery.lock).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "http/http.h"
#include "mcpr/mcpr.h"
#include "mcpr/sink.h"
#include "sink/spool.h"
#include "store/backend.h"

#define BATCH_BYTES_MAX (4u * 1024 * 1024) /* start a new batch beyond this */
#define MEMORY_BYTES_MAX (16u * 1024 * 1024) /* refuse events when the spool fails this long */
#define ERROR_BODY_MAX 4096
#define RETRY_AFTER_MAX_MS (3600 * 1000)

typedef struct poster {
  mcpr__http *http;
  char *url;         /* <endpoint>/api/ingest-events */
  char *auth_header;
  mcpr__http_secret token; /* the token and its mask, redacted from what the server says */
  char token_shown[64];
  uint32_t timeout_ms;
  atomic_llong *abort_at_ms; /* monotonic ms; < 0: never */
} poster;

typedef enum pass_result { PASS_EMPTY, PASS_RETRY, PASS_PAUSED, PASS_BUSY, PASS_STOPPED } pass_result;

typedef struct cloud_sink {
  mcpr_cloud_sink_options o; /* strings below are owned copies */
  char *endpoint, *token, *server, *spool_dir;

  /* sink-thread side */
  char *batch;
  size_t batch_len, batch_cap;
  uint32_t batch_events;
  int64_t batch_started_ms;

  /* delivery thread */
  pthread_t thread;
  bool thread_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool closing, kick;
  atomic_llong abort_at_ms;
  poster post;
} cloud_sink;


void mcpr_cloud_sink_options_init(mcpr_cloud_sink_options *o) {
  memset(o, 0, sizeof *o);
  o->batch_size = 100;
  o->flush_interval_ms = 5000;
  o->spool_max_bytes = 256ull * 1024 * 1024;
  o->backoff_base_ms = 1000;
  o->backoff_max_ms = 300000;
  o->request_timeout_ms = 30000;
  o->close_timeout_ms = 5000;
}

static void fill_defaults(mcpr_cloud_sink_options *o, const mcpr_cloud_sink_options *in) {
  mcpr_cloud_sink_options d;
  mcpr_cloud_sink_options_init(&d);
  *o = *in;
#define DEF(f) if (!o->f) o->f = d.f
  DEF(batch_size);
  DEF(flush_interval_ms);
  DEF(spool_max_bytes);
  DEF(backoff_base_ms);
  DEF(backoff_max_ms);
  DEF(request_timeout_ms);
  DEF(close_timeout_ms);
#undef DEF
  if (o->backoff_max_ms < o->backoff_base_ms)
    o->backoff_max_ms = o->backoff_base_ms;
}

char *mcpr_cloud_spool_dir(const char *store_path) {
  /* A store on a server (postgresql://…) has no directory: the spool goes
   * where the default store would be. A URL is never a file name. */
  char *fallback = NULL;
  if (store_path && *store_path && !mcpr__store_target_file(store_path)) {
    const char *home = getenv("HOME");
    size_t n = strlen(home && *home ? home : ".") + sizeof "/.mcpr/store.db";
    if (!(fallback = malloc(n)))
      return NULL;
    snprintf(fallback, n, "%s/.mcpr/store.db", home && *home ? home : ".");
    store_path = fallback;
  } else if (store_path && *store_path) {
    store_path = mcpr__store_target_file(store_path);
  }
  const char *slash = store_path ? strrchr(store_path, '/') : NULL;
  size_t dlen = slash ? (size_t)(slash - store_path) : 1;
  const char *d = slash ? store_path : ".";
  if (slash && dlen == 0) { /* "/store.db" */
    d = "/";
    dlen = 1;
  }
  size_t n = dlen + sizeof "/cloud-spool";
  char *out = malloc(n);
  if (out)
    snprintf(out, n, "%.*s/cloud-spool", (int)dlen, d);
  free(fallback);
  return out;
}

/* --- HTTP --- */

static void poster_release(poster *p) {
  mcpr__http_free(p->http);
  mcpr__http_secret_free(p->auth_header);
  free(p->url);
  memset(p, 0, sizeof *p);
}

/* Refuses, before any connection, an endpoint the HTTP layer would not
 * send the token to, and a token that would break the header. */
static mcpr_status poster_init(poster *p, const mcpr_cloud_sink_options *o, atomic_llong *abort_at,
                               mcpr_error *err) {
  memset(p, 0, sizeof *p);
  const char *ep = o->endpoint && *o->endpoint ? o->endpoint : MCPR_CLOUD_DEFAULT_URL;
  mcpr_status st = mcpr__http_check_url(ep, "the cloud endpoint", 0, NULL, err);
  if (st != MCPR_OK)
    return st;
  if (strpbrk(o->token, "\r\n"))
    return mcpr_error_set(err, MCPR_EINVAL, "the cloud token contains a line break");
  size_t elen = strlen(ep);
  while (elen > 0 && ep[elen - 1] == '/')
    elen--;
  size_t ulen = elen + sizeof "/api/ingest-events";
  size_t alen = strlen(o->token) + sizeof "Authorization: Bearer ";
  p->url = malloc(ulen);
  p->auth_header = malloc(alen);
  if (!p->url || !p->auth_header) {
    poster_release(p);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory setting up the cloud sink");
  }
  if ((st = mcpr__http_new(&p->http, err)) != MCPR_OK) {
    poster_release(p);
    return st;
  }
  snprintf(p->url, ulen, "%.*s/api/ingest-events", (int)elen, ep);
  snprintf(p->auth_header, alen, "Authorization: Bearer %s", o->token);
  p->token.value = o->token;
  p->token.shown_as = mcpr_secret_mask(o->token, p->token_shown, sizeof p->token_shown);
  p->timeout_ms = o->request_timeout_ms;
  p->abort_at_ms = abort_at;
  return MCPR_OK;
}

static mcpr_status post_batch(poster *p, const mcpr__spool_record *rec, mcpr__http_response *res,
                              mcpr_error *err) {
  char idem[80];
  snprintf(idem, sizeof idem, "Idempotency-Key: %s", rec->key);
  const char *headers[] = {p->auth_header, "Content-Type: application/json", idem, NULL};
  mcpr__http_request req = {.method = "POST",
                            .url = p->url,
                            .headers = headers,
                            .body = rec->body,
                            .body_len = rec->body_len,
                            .secrets = &p->token,
                            .n_secrets = 1,
                            .max_body_bytes = ERROR_BODY_MAX, /* only the start is shown */
                            .cut_body = true,
                            .connect_timeout_ms = 10000,
                            .timeout_ms = p->timeout_ms,
                            .max_redirects = 5,
                            .keep_method = true,
                            .user_agent = "mcpr-c/" MCPR_VERSION_STRING,
                            .abort_at_ms = p->abort_at_ms,
                            .label = "cloud upload",
                            .peer = "cloud",
                            .shown_url = p->url};
  return mcpr__http_perform(p->http, &req, res, err);
}

/* At most max bytes of the layer's error text (already free of the token). */
static const char *server_message(const mcpr__http_response *r, char *buf, size_t size,
                                  size_t max) {
  const char *t = r->error_text ? r->error_text : "(empty body)";
  size_t n = mcpr__http_utf8_cut(t, strlen(t), max < size - 1 ? max : size - 1);
  memcpy(buf, t, n);
  buf[n] = '\0';
  return buf;
}

static int64_t retry_after_ms(const mcpr__http_response *r) {
  if (r->retry_after_ms < 0)
    return -1;
  return r->retry_after_ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : r->retry_after_ms;
}

/*
 * Upload the spool oldest first until it is empty, a retryable failure,
 * a pause (401/403), or the deadline. *retry_after_ms gets Retry-After
 * (-1 if none); err the reason of a non-empty result.
 */
static pass_result deliver_pass(const char *dir, poster *p, int64_t deadline_ms,
                                int64_t *retry_after_ms_out, mcpr_error *err) {
  *retry_after_ms_out = -1;
  int lock = mcpr__spool_lock_delivery(dir);
  if (lock < 0) {
    mcpr_error_set(err, MCPR_EBUSY, "another process is delivering this spool");
    return PASS_BUSY;
  }
  mcpr__spool_sweep(dir);
  pass_result res = PASS_EMPTY;
  mcpr__spool_entry *v = NULL;
  size_t n = 0;
  if (mcpr__spool_list(dir, &v, &n, err) != MCPR_OK) {
    res = PASS_RETRY;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    if (deadline_ms >= 0 && mcpr__mono_ms() >= deadline_ms) {
      mcpr_error_set(err, MCPR_ETIMEDOUT, "ran out of time with %zu batches left", n - i);
      res = PASS_STOPPED;
      break;
    }
    mcpr__spool_record rec;
    mcpr_error rerr = {0};
    mcpr_status st = mcpr__spool_read(dir, v[i].name, &rec, &rerr);
    if (st == MCPR_ECORRUPT) {
      mcpr__spool_set_aside(dir, v[i].name, "corrupt", 0, rerr.message);
      continue;
    }
    if (st == MCPR_ENOTFOUND)
      continue; /* delivered by another process meanwhile */
    if (st != MCPR_OK) {
      mcpr_error_set(err, st, "%s", rerr.message);
      res = PASS_RETRY;
      break;
    }
    mcpr__http_response r;
    mcpr_error herr = {0};
    mcpr_status hst = post_batch(p, &rec, &r, &herr);
    char msg[512], why[220];
    if (hst != MCPR_OK) {
      /* No answer, or a redirect refused: keep the batch, try again later. */
      snprintf(msg, sizeof msg, "%s", herr.message);
      mcpr_error_set(err, r.aborted ? MCPR_ETIMEDOUT : hst, "%s", msg);
      mcpr__spool_note_error(dir, msg, false);
      res = r.aborted ? PASS_STOPPED : PASS_RETRY;
    } else if (r.status == 200 || r.status == 202) {
      mcpr__spool_delivered(dir, v[i].name, rec.nevents);
    } else if (r.status == 401 || r.status == 403) {
      snprintf(msg, sizeof msg,
               "cloud refused the token (HTTP %ld: %s); delivery paused, batches kept in the "
               "spool: fix [cloud] token, then run 'mcpr cloud flush'",
               r.status, server_message(&r, why, sizeof why, 60));
      mcpr_error_set(err, MCPR_EAUTH, "%s", msg);
      mcpr__spool_note_error(dir, msg, true);
      res = PASS_PAUSED;
    } else if (r.status == 408 || r.status == 429 || r.status >= 500 || r.status < 200) {
      snprintf(msg, sizeof msg, "HTTP %ld from %s: %s", r.status, p->url,
               server_message(&r, why, sizeof why, 150));
      mcpr_error_set(err, MCPR_EHTTP, "%s", msg);
      mcpr__spool_note_error(dir, msg, false);
      *retry_after_ms_out = retry_after_ms(&r);
      res = PASS_RETRY;
    } else {
      /* 400, 413, 422 and every other answer: the batch itself is refused. */
      snprintf(msg, sizeof msg, "rejected by the server (HTTP %ld): %s", r.status,
               server_message(&r, why, sizeof why, 200));
      mcpr__spool_set_aside(dir, v[i].name, "rejected", rec.nevents, msg);
    }
    mcpr__http_response_release(&r);
    mcpr__spool_record_release(&rec);
    if (res != PASS_EMPTY)
      break;
  }
out:
  free(v);
  mcpr__spool_unlock_delivery(lock);
  return res;
}

static void wait_until(cloud_sink *s, int64_t at_ms) {
  struct timespec ts = mcpr__mono_timespec(at_ms);
  pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

static void *delivery_thread(void *arg) {
  cloud_sink *s = arg;
  unsigned attempt = 0;
  unsigned seed = mcpr__backoff_seed(s);
  bool paused = false;
  int64_t next_try = 0; /* monotonic ms; 0: now */
  pthread_mutex_lock(&s->mu);
  for (;;) {
    if (s->closing)
      break;
    /* A new batch starts a pass only when no backoff is running. */
    bool due = !paused && ((next_try == 0 && s->kick) || (next_try != 0 && mcpr__mono_ms() >= next_try));
    if (!due) {
      if (paused || next_try == 0)
        pthread_cond_wait(&s->cv, &s->mu);
      else
        wait_until(s, next_try);
      continue;
    }
    s->kick = false;
    pthread_mutex_unlock(&s->mu);
    int64_t retry_after = -1;
    mcpr_error err = {0};
    pass_result r = deliver_pass(s->spool_dir, &s->post, -1, &retry_after, &err);
    pthread_mutex_lock(&s->mu);
    switch (r) {
    case PASS_EMPTY:
      attempt = 0;
      next_try = 0;
      break;
    case PASS_PAUSED:
      paused = true;
      break;
    case PASS_BUSY: /* another process delivers; look again later */
      next_try = mcpr__mono_ms() + (int64_t)s->o.backoff_base_ms;
      break;
    case PASS_RETRY:
    case PASS_STOPPED:
      next_try = mcpr__mono_ms() + (retry_after >= 0 ? retry_after
                                                   : mcpr__backoff_ms(s->o.backoff_base_ms,
                                                                      s->o.backoff_max_ms,
                                                                      attempt, &seed));
      if (attempt < 32)
        attempt++;
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  /* Closing: one last pass within close_timeout_ms (unless paused). */
  if (!paused) {
    int64_t retry_after;
    deliver_pass(s->spool_dir, &s->post, atomic_load(&s->abort_at_ms), &retry_after, NULL);
  }
  return NULL;
}

/* --- the sink-thread side --- */

static mcpr_status spool_batch(cloud_sink *s, mcpr_error *err) {
  if (s->batch_events == 0)
    return MCPR_OK;
  if (s->batch_len + 2 > s->batch_cap) {
    char *nb = realloc(s->batch, s->batch_len + 2);
    if (!nb)
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory closing a batch");
    s->batch = nb;
    s->batch_cap = s->batch_len + 2;
  }
  s->batch[s->batch_len] = ']';
  mcpr_status st = mcpr__spool_append(s->spool_dir, s->batch, s->batch_len + 1, s->batch_events,
                                      s->o.spool_max_bytes, err);
  if (st != MCPR_OK)
    return st; /* kept in memory; tried again at the next tick */
  s->batch_len = 0;
  s->batch_events = 0;
  pthread_mutex_lock(&s->mu);
  s->kick = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  return MCPR_OK;
}

static mcpr_status cloud_deliver(void *self, const mcpr_event *ev, mcpr_error *err) {
  cloud_sink *s = self;
  mcpr_event tagged = *ev; /* shallow: only "server" changes */
  if (!tagged.server && s->server)
    tagged.server = s->server;
  size_t len = 0;
  char *text = mcpr_event_encode(&tagged, &len, err);
  if (!text)
    return err ? err->status : MCPR_EINVAL;
  if (s->batch_len + len + 2 > MEMORY_BYTES_MAX) {
    free(text);
    return mcpr_error_set(err, MCPR_EIO, "the spool has been failing; batch memory is full");
  }
  size_t need = s->batch_len + len + 2;
  if (need > s->batch_cap) {
    size_t cap = s->batch_cap ? s->batch_cap : 16384;
    while (cap < need)
      cap *= 2;
    char *nb = realloc(s->batch, cap);
    if (!nb) {
      free(text);
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory growing a batch");
    }
    s->batch = nb;
    s->batch_cap = cap;
  }
  if (s->batch_events == 0) {
    s->batch[0] = '[';
    s->batch_len = 1;
    s->batch_started_ms = mcpr__mono_ms();
  } else {
    s->batch[s->batch_len++] = ',';
  }
  memcpy(s->batch + s->batch_len, text, len);
  s->batch_len += len;
  s->batch_events++;
  free(text);
  if (s->batch_events >= s->o.batch_size || s->batch_len >= BATCH_BYTES_MAX)
    spool_batch(s, NULL);
  return MCPR_OK;
}

static void cloud_tick(void *self) {
  cloud_sink *s = self;
  if (s->batch_events && mcpr__mono_ms() - s->batch_started_ms >= (int64_t)s->o.flush_interval_ms)
    spool_batch(s, NULL);
}

static mcpr_status cloud_flush(void *self, mcpr_error *err) { return spool_batch(self, err); }

static void cloud_drain(void *self) {
  cloud_sink *s = self;
  spool_batch(s, NULL);
  atomic_store(&s->abort_at_ms, mcpr__mono_ms() + (int64_t)s->o.close_timeout_ms);
  pthread_mutex_lock(&s->mu);
  s->closing = true;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (s->thread_started)
    pthread_join(s->thread, NULL);
  s->thread_started = false;
}

static void cloud_destroy(void *self) {
  cloud_sink *s = self;
  if (!s)
    return;
  if (s->thread_started)
    cloud_drain(s);
  poster_release(&s->post);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  if (s->token)
    memset(s->token, 0, strlen(s->token));
  free(s->token);
  free(s->endpoint);
  free(s->server);
  free(s->spool_dir);
  free(s->batch);
  free(s);
}

static char *dup_or_null(const char *v) { return v ? strdup(v) : NULL; }

mcpr_status mcpr_sink_cloud_new(mcpr_sink **out, const mcpr_cloud_sink_options *opts,
                                mcpr_error *err) {
  *out = NULL;
  if (!opts || !opts->token || !*opts->token || !opts->spool_dir || !*opts->spool_dir)
    return mcpr_error_set(err, MCPR_EINVAL, "the cloud sink needs a token and a spool directory");
  cloud_sink *s = calloc(1, sizeof *s);
  if (!s)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory creating the cloud sink");
  fill_defaults(&s->o, opts);
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  atomic_init(&s->abort_at_ms, -1);
  mcpr_status st = MCPR_ENOMEM;
  s->token = strdup(opts->token);
  s->spool_dir = strdup(opts->spool_dir);
  s->endpoint = dup_or_null(opts->endpoint);
  s->server = opts->server && *opts->server ? strdup(opts->server) : NULL;
  if (!s->token || !s->spool_dir || (opts->endpoint && !s->endpoint) ||
      (opts->server && *opts->server && !s->server)) {
    mcpr_error_set(err, st, "out of memory creating the cloud sink");
    goto fail;
  }
  s->o.token = s->token;
  s->o.endpoint = s->endpoint;
  s->o.server = s->server;
  s->o.spool_dir = s->spool_dir;
  if ((st = mcpr__spool_prepare(s->spool_dir, err)) != MCPR_OK)
    goto fail;
  if ((st = poster_init(&s->post, &s->o, &s->abort_at_ms, err)) != MCPR_OK)
    goto fail;
  s->kick = true; /* deliver what earlier processes left in the spool */
  if (pthread_create(&s->thread, NULL, delivery_thread, s) != 0) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "cannot start the cloud delivery thread");
    goto fail;
  }
  s->thread_started = true;
  uint32_t tick = s->o.flush_interval_ms < 250 ? s->o.flush_interval_ms : 250;
  mcpr_sink_ops ops = {.name = "cloud",
                       .deliver = cloud_deliver,
                       .tick = cloud_tick,
                       .tick_ms = tick ? tick : 1,
                       .flush = cloud_flush,
                       .drain = cloud_drain,
                       .destroy = cloud_destroy};
  if ((st = mcpr_sink_new(out, &ops, s, 0, err)) != MCPR_OK)
    goto fail;
  return MCPR_OK;
fail:
  cloud_destroy(s);
  return st;
}

mcpr_status mcpr_cloud_spool_status(const char *spool_dir, mcpr_spool_status *out, mcpr_error *err) {
  if (!spool_dir || !out)
    return mcpr_error_set(err, MCPR_EINVAL, "no spool directory");
  return mcpr__spool_status(spool_dir, out, err);
}

mcpr_status mcpr_cloud_spool_deliver(const mcpr_cloud_sink_options *opts, int timeout_ms,
                                     mcpr_spool_status *out, mcpr_error *err) {
  if (!opts || !opts->token || !*opts->token || !opts->spool_dir)
    return mcpr_error_set(err, MCPR_EINVAL, "delivery needs a token and a spool directory");
  mcpr_cloud_sink_options o;
  fill_defaults(&o, opts);
  atomic_llong abort_at;
  int64_t deadline = timeout_ms < 0 ? -1 : mcpr__mono_ms() + timeout_ms;
  atomic_init(&abort_at, deadline);
  poster p;
  mcpr_status st = poster_init(&p, &o, &abort_at, err);
  if (st != MCPR_OK)
    return st;
  int64_t retry_after;
  mcpr_error perr = {0};
  pass_result r = deliver_pass(opts->spool_dir, &p, deadline, &retry_after, &perr);
  poster_release(&p);
  mcpr_spool_status s;
  mcpr__spool_status(opts->spool_dir, &s, NULL);
  if (out)
    *out = s;
  if (r == PASS_EMPTY && s.pending_batches == 0)
    return MCPR_OK;
  if (r == PASS_EMPTY)
    return mcpr_error_set(err, MCPR_EBUSY, "%llu batches arrived while delivering",
                          (unsigned long long)s.pending_batches);
  if (r == PASS_RETRY && retry_after >= 0)
    return mcpr_error_set(err, perr.status, "%s (server asks to retry in %lld s)", perr.message,
                          (long long)(retry_after / 1000));
  return mcpr_error_set(err, perr.status ? perr.status : MCPR_EIO, "%s", perr.message);
}

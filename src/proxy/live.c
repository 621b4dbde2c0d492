/*
 * live.c — reload rules and the switchable stderr log (see live.h).
 *
 * The log sink runs on its own thread (sink.h); the format it reads is an
 * atomic int the reload (on the proxy's loop thread) stores, so a change
 * takes effect from the next event, with no lock on the hot path.
 */
#include "live.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mcpr/event.h"

struct mcpr_live_log {
  FILE *fp;
  atomic_int format;
};

static bool str_differs(const char *a, const char *b) {
  return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

static void add_key(char *buf, size_t size, size_t *n, const char *key) {
  size_t len = strlen(buf);
  snprintf(buf + len, size - len, "%s%s", *n ? ", " : "", key);
  (*n)++;
}

size_t mcpr_live_restart_keys(const mcpr_config *o, const mcpr_config *c, char *buf, size_t size) {
  size_t n = 0;
  buf[0] = '\0';
  struct { const char *key; bool changed; } keys[] = {
      {"name", str_differs(o->name, c->name)},
      {"mcp", str_differs(o->mcp, c->mcp)},
      {"port", o->port != c->port},
      {"listen", str_differs(o->listen, c->listen)},
      {"admin_bind", str_differs(o->admin_bind, c->admin_bind)},
      {"max_request_body_size", o->max_request_body_size != c->max_request_body_size},
      {"max_response_body_size", o->max_response_body_size != c->max_response_body_size},
      {"max_concurrent_upstream", o->max_concurrent_upstream != c->max_concurrent_upstream},
      {"store", o->store.enabled != c->store.enabled || str_differs(o->store.path, c->store.path) ||
                    str_differs(o->store.name, c->store.name)},
      {"cloud", str_differs(o->cloud.token, c->cloud.token) ||
                    str_differs(o->cloud.server, c->cloud.server) ||
                    str_differs(o->cloud.endpoint, c->cloud.endpoint) ||
                    o->cloud.batch_size != c->cloud.batch_size ||
                    o->cloud.flush_interval_ms != c->cloud.flush_interval_ms},
  };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    if (keys[i].changed)
      add_key(buf, size, &n, keys[i].key);
  return n;
}

static bool origins_differ(const mcpr_config *o, const mcpr_config *c) {
  if (o->n_allowed_origins != c->n_allowed_origins)
    return true;
  for (size_t i = 0; i < o->n_allowed_origins; i++)
    if (strcmp(o->allowed_origins[i], c->allowed_origins[i]) != 0)
      return true;
  return false;
}

size_t mcpr_live_changed_keys(const mcpr_config *o, const mcpr_config *c, char *buf, size_t size) {
  size_t n = 0;
  buf[0] = '\0';
  if (str_differs(o->log_format, c->log_format))
    add_key(buf, size, &n, "log_format");
  if (origins_differ(o, c))
    add_key(buf, size, &n, "allowed_origins");
  if (o->request_timeout_ms != c->request_timeout_ms)
    add_key(buf, size, &n, "request_timeout");
  if (o->connect_timeout_ms != c->connect_timeout_ms)
    add_key(buf, size, &n, "connect_timeout");
  if (o->drain_timeout_ms != c->drain_timeout_ms)
    add_key(buf, size, &n, "drain_timeout");
  return n;
}

bool mcpr_log_format_parse(const char *s, mcpr_log_format *out) {
  static const struct { const char *name; mcpr_log_format f; } names[] = {
      {"off", MCPR_LOG_OFF}, {"json", MCPR_LOG_JSON}, {"pretty", MCPR_LOG_PRETTY}};
  for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i].name) == 0) {
      *out = names[i].f;
      return true;
    }
  return false;
}

static mcpr_status log_deliver(void *self, const mcpr_event *ev, mcpr_error *err) {
  mcpr_live_log *log = self;
  int format = atomic_load_explicit(&log->format, memory_order_relaxed);
  if (format == MCPR_LOG_OFF)
    return MCPR_OK;
  if (format == MCPR_LOG_JSON) {
    size_t len = 0;
    char *text = mcpr_event_encode(ev, &len, err);
    if (!text)
      return err ? err->status : MCPR_EINVAL;
    text[len] = '\n'; /* replaces the NUL: one fwrite for the whole line */
    size_t w = fwrite(text, 1, len + 1, log->fp);
    free(text);
    return w == len + 1 ? MCPR_OK : mcpr_error_set(err, MCPR_EIO, "write failed");
  }
  char line[2048];
  size_t need = mcpr_event_format_pretty(ev, line, sizeof line - 1);
  size_t len = need < sizeof line - 1 ? need : sizeof line - 2;
  line[len] = '\n';
  if (fwrite(line, 1, len + 1, log->fp) != len + 1)
    return mcpr_error_set(err, MCPR_EIO, "write failed");
  return MCPR_OK;
}

static void log_tick(void *self) { fflush(((mcpr_live_log *)self)->fp); }

/* Turned off (--log off, or a reload): no event reaches the log's queue. */
static bool log_wants(void *self) {
  mcpr_live_log *log = self;
  return atomic_load_explicit(&log->format, memory_order_relaxed) != MCPR_LOG_OFF;
}

static mcpr_status log_flush(void *self, mcpr_error *err) {
  if (fflush(((mcpr_live_log *)self)->fp) != 0)
    return mcpr_error_set(err, MCPR_EIO, "flush failed");
  return MCPR_OK;
}

mcpr_status mcpr_live_log_new(mcpr_sink **out, mcpr_live_log **handle, FILE *fp,
                              mcpr_log_format format, mcpr_error *err) {
  *out = NULL;
  *handle = NULL;
  mcpr_live_log *log = calloc(1, sizeof *log);
  if (!log)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  log->fp = fp;
  atomic_init(&log->format, (int)format);
  mcpr_sink_ops ops = {.name = "stderr",
                       .deliver = log_deliver,
                       .tick = log_tick,
                       .tick_ms = 200,
                       .flush = log_flush,
                       .drain = log_tick,
                       .wants = log_wants,
                       .destroy = free};
  mcpr_status st = mcpr_sink_new(out, &ops, log, 0, err);
  if (st != MCPR_OK) {
    free(log);
    return st;
  }
  *handle = log;
  return MCPR_OK;
}

void mcpr_live_log_set(mcpr_live_log *log, mcpr_log_format format) {
  atomic_store_explicit(&log->format, (int)format, memory_order_relaxed);
}

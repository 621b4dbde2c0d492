/*
 * stream_sink.c — events to a caller's FILE*: the wire JSON (one object per
 * line, what `mcpr ingest` reads back) or one readable line per event.
 * Each line is written with one fwrite so lines from one sink never
 * interleave; the stream is flushed on tick/flush, not per line.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcpr/sink.h"

typedef struct stream_sink {
  FILE *fp;
  mcpr_stream_format format;
} stream_sink;

static void fmt_ts(int64_t ts_ms, char *buf, size_t size) {
  time_t secs = (time_t)(ts_ms / 1000);
  struct tm tm;
  if (ts_ms < 0 || !gmtime_r(&secs, &tm)) {
    snprintf(buf, size, "%" PRId64, ts_ms);
    return;
  }
  char day[32];
  strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, size, "%s.%03dZ", day, (int)(ts_ms % 1000));
}

static void fmt_latency(int64_t us, char *buf, size_t size) {
  if (us == MCPR_EVENT_ABSENT)
    snprintf(buf, size, "-");
  else if (us < 1000)
    snprintf(buf, size, "%" PRId64 "us", us);
  else if (us < 1000000)
    snprintf(buf, size, "%.2fms", (double)us / 1000.0);
  else
    snprintf(buf, size, "%.2fs", (double)us / 1e6);
}

#define OR(s, d) ((s) ? (s) : (d))

size_t mcpr_event_format_pretty(const mcpr_event *ev, char *buf, size_t size) {
  char ts[48], lat[32];
  int n = 0;
  switch (ev->type) {
  case MCPR_EVENT_REQUEST: {
    const mcpr_event_request *r = &ev->u.request;
    fmt_ts(r->ts, ts, sizeof ts);
    fmt_latency(r->latency_us, lat, sizeof lat);
    const char *what = r->tool ? r->tool : r->resource_uri ? r->resource_uri : OR(r->prompt_name, "");
    n = snprintf(buf, size, "%s %-8s %s %s%s%s -> %" PRId64 " %s%s%s%s%s%s%s%s", ts, "request",
                 OR(r->proxy, "-"), OR(r->mcp_method, OR(r->method, "-")), *what ? " " : "",
                 what, r->status, lat, r->session_id ? " session=" : "", OR(r->session_id, ""),
                 r->error_code ? " error=" : "", OR(r->error_code, ""),
                 r->error_msg ? " \"" : "", OR(r->error_msg, ""), r->error_msg ? "\"" : "");
    break;
  }
  case MCPR_EVENT_SESSION_START: {
    const mcpr_event_session_start *s = &ev->u.session_start;
    fmt_ts(s->ts, ts, sizeof ts);
    n = snprintf(buf, size, "%s %-8s %s session=%s client=%s%s%s", ts, "session", OR(s->proxy, "-"),
                 OR(s->session_id, "-"), OR(s->client_name, "unknown"), s->client_version ? "/" : "",
                 OR(s->client_version, ""));
    break;
  }
  case MCPR_EVENT_SESSION_END:
    fmt_ts(ev->u.session_end.ts, ts, sizeof ts);
    n = snprintf(buf, size, "%s %-8s session=%s", ts, "end", OR(ev->u.session_end.session_id, "-"));
    break;
  case MCPR_EVENT_HEARTBEAT: {
    const mcpr_event_heartbeat *h = &ev->u.heartbeat;
    fmt_ts(h->ts, ts, sizeof ts);
    n = snprintf(buf, size, "%s %-8s %s mcp=%s tunnel=%s uptime=%" PRId64 "s requests=%" PRId64, ts,
                 "beat", OR(h->proxy, "-"), OR(h->mcp_status, "-"), OR(h->tunnel_status, "-"),
                 h->uptime_secs == MCPR_EVENT_ABSENT ? 0 : h->uptime_secs,
                 h->request_count == MCPR_EVENT_ABSENT ? 0 : h->request_count);
    break;
  }
  case MCPR_EVENT_SCHEMA_VERSION_CREATED: {
    const mcpr_event_schema_version *v = &ev->u.schema_version;
    fmt_ts(v->ts, ts, sizeof ts);
    n = snprintf(buf, size, "%s %-8s %s %s %s hash=%.12s", ts, "schema", OR(v->upstream_id, "-"),
                 OR(v->upstream_url, "-"), OR(v->method, "-"), OR(v->content_hash, "-"));
    break;
  }
  default:
    n = snprintf(buf, size, "unknown event");
  }
  /* A newline inside a field must not break "one line per event". */
  size_t len = n < 0 ? 0 : (size_t)n;
  for (size_t i = 0; i < size && i < len && buf[i]; i++)
    if (buf[i] == '\n' || buf[i] == '\r')
      buf[i] = ' ';
  return len;
}

static mcpr_status stream_deliver(void *self, const mcpr_event *ev, mcpr_error *err) {
  stream_sink *s = self;
  if (s->format == MCPR_STREAM_JSON) {
    size_t len = 0;
    char *text = mcpr_event_encode(ev, &len, err);
    if (!text)
      return err ? err->status : MCPR_EINVAL;
    text[len] = '\n'; /* replaces the NUL: one fwrite for the whole line */
    size_t w = fwrite(text, 1, len + 1, s->fp);
    free(text);
    if (w != len + 1)
      return mcpr_error_set(err, MCPR_EIO, "write failed");
    return MCPR_OK;
  }
  char line[2048];
  size_t need = mcpr_event_format_pretty(ev, line, sizeof line - 1);
  size_t len = need < sizeof line - 1 ? need : sizeof line - 2;
  line[len] = '\n';
  if (fwrite(line, 1, len + 1, s->fp) != len + 1)
    return mcpr_error_set(err, MCPR_EIO, "write failed");
  return MCPR_OK;
}

static void stream_tick(void *self) { fflush(((stream_sink *)self)->fp); }

static mcpr_status stream_flush(void *self, mcpr_error *err) {
  if (fflush(((stream_sink *)self)->fp) != 0)
    return mcpr_error_set(err, MCPR_EIO, "flush failed");
  return MCPR_OK;
}

static void stream_drain(void *self) { fflush(((stream_sink *)self)->fp); }

mcpr_status mcpr_sink_stream_new(mcpr_sink **out, FILE *fp, mcpr_stream_format format,
                                 mcpr_error *err) {
  *out = NULL;
  if (!fp || (format != MCPR_STREAM_JSON && format != MCPR_STREAM_PRETTY))
    return mcpr_error_set(err, MCPR_EINVAL, "stream sink needs a stream and a known format");
  stream_sink *s = calloc(1, sizeof *s);
  if (!s)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory creating a stream sink");
  s->fp = fp;
  s->format = format;
  mcpr_sink_ops ops = {.name = format == MCPR_STREAM_JSON ? "stream-json" : "stream-pretty",
                       .deliver = stream_deliver,
                       .tick = stream_tick,
                       .tick_ms = 200,
                       .flush = stream_flush,
                       .drain = stream_drain,
                       .destroy = free};
  mcpr_status st = mcpr_sink_new(out, &ops, s, 0, err);
  if (st != MCPR_OK)
    free(s);
  return st;
}

/*
 * server.c — `mcpr dashboard`'s HTTP server: libevent's evhttp, one loop on
 * one thread, one read connection to the store (queries run in the loop:
 * a local page with a handful of clients).
 *
 * What it serves: the page (index.html, app.js, app.css, embedded by
 * embed.cmake) and a JSON API under /api/ (README, "Dashboard"): every
 * object is the one the CLI's --json prints, built by the same functions
 * (format.h, cli_json.h) from the same query calls, plus /api/series (the
 * engine's mcpr_query_series) and /api/live (the follow read of
 * `proxy logs -f`: rows after a row id, a rowid range walk).
 *
 * Heavy answers (stats, series, clients, schema...) are cached by URL: a
 * cached answer is reused while no request has been stored since, and for
 * CACHE_FRESH_MS in any case, so however many tabs poll, the store sees
 * one such query per URL every few seconds at most. The live feed is the
 * only thing polled every second, and it reads only new rows.
 *
 * Safety: GET/HEAD only; the Host header must name the address served (a
 * DNS-rebinding page on another name gets 403); every query parameter is
 * known, bounded and validated, or the answer is 400 naming it; nothing
 * here writes to the store; the page is served with a CSP that forbids
 * anything not from this origin, and builds its DOM with textContent.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cli_json.h"
#include "core/json_text.h"
#include "dashboard/assets.h"
#include "dashboard/dashboard.h"
#include "format.h"
#include "mcpr/util.h"

#define MAX_URI_BYTES 2048
#define MAX_PARAM_BYTES 512
#define MAX_LIMIT 1000
#define LIVE_MAX_ROWS 500
#define CACHE_SLOTS 32
#define CACHE_FRESH_MS 5000 /* reused this long even if rows were stored */
#define CACHE_MAX_MS 15000 /* and never longer: windows slide, sessions age */

typedef struct cache_slot {
  char *uri;
  char *body;
  int status;
  int64_t row_id; /* last row id when computed */
  int64_t at_ms;
} cache_slot;

typedef struct dash {
  mcpr_query *q;
  struct event_base *base;
  char hostport[300];  /* what the page is served on: "127.0.0.1:7878" */
  char port_text[16];
  bool wildcard;       /* bound to 0.0.0.0 / :: */
  bool loopback;
  cache_slot cache[CACHE_SLOTS];
  size_t cache_next;
} dash;

/* ---------- answers ---------- */

static void add_common_headers(struct evhttp_request *req, const char *type) {
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  evhttp_add_header(h, "Content-Type", type);
  evhttp_add_header(h, "Cache-Control", "no-store");
  evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
  evhttp_add_header(h, "X-Frame-Options", "DENY");
  evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

static void send_body(struct evhttp_request *req, int status, const char *type,
                      const void *body, size_t len) {
  struct evbuffer *b = evbuffer_new();
  if (!b) {
    evhttp_send_error(req, 500, "out of memory");
    return;
  }
  add_common_headers(req, type);
  evbuffer_add(b, body, len);
  evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", b);
  evbuffer_free(b);
}

static void send_json_text(struct evhttp_request *req, int status, const char *text) {
  send_body(req, status, "application/json", text, strlen(text));
}

/* status with {"error": message}. */
static void send_error(struct evhttp_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_error(struct evhttp_request *req, int status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *o = json_object();
  json_object_set_new(o, "error", json_string(msg) ? json_string(msg) : json_string("error"));
  char *text = o ? mcpr__json_dumps(o) : NULL;
  json_decref(o);
  send_json_text(req, status, text ? text : "{\"error\":\"out of memory\"}");
  free(text);
}

/* ---------- query parameters ---------- */

/* The parameters of one request, checked against the endpoint's list. */
typedef struct params {
  struct evkeyvalq kv;
  char bad[600]; /* the 400 message when not empty */
} params;

static const char *param(params *p, const char *name) {
  return evhttp_find_header(&p->kv, name);
}

static void set_bad(params *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_bad(params *p, const char *fmt, ...) {
  if (p->bad[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->bad, sizeof p->bad, fmt, ap);
  va_end(ap);
}

/* Parse the query string; every key must be in allowed (NULL-ended) and
 * appear once, every value be at most MAX_PARAM_BYTES of valid text. */
static bool params_parse(params *p, const char *query, const char *const *allowed) {
  p->bad[0] = '\0';
  /* Initialises p->kv whatever it returns. */
  if (evhttp_parse_query_str(query ? query : "", &p->kv) != 0) {
    set_bad(p, "malformed query string");
    return false;
  }
  struct evkeyval *e;
  for (e = p->kv.tqh_first; e; e = e->next.tqe_next) {
    bool known = false;
    for (size_t i = 0; allowed[i] && !known; i++)
      known = strcmp(allowed[i], e->key) == 0;
    if (!known) {
      set_bad(p, "unknown parameter '%.64s'", e->key);
      return false;
    }
    if (strlen(e->value) > MAX_PARAM_BYTES) {
      set_bad(p, "parameter '%s' is longer than %d bytes", e->key, MAX_PARAM_BYTES);
      return false;
    }
    for (struct evkeyval *o = e->next.tqe_next; o; o = o->next.tqe_next)
      if (strcmp(o->key, e->key) == 0) {
        set_bad(p, "parameter '%s' given twice", e->key);
        return false;
      }
  }
  return true;
}

static void params_clear(params *p) { evhttp_clear_headers(&p->kv); }

/* A non-empty text filter, or NULL when absent or empty. */
static const char *text_param(params *p, const char *name) {
  const char *v = param(p, name);
  return v && *v ? v : NULL;
}

/* since=D as the CLI's --since: cutoff now − D; *text receives the text. */
static int64_t since_param(params *p, const char *dflt, int64_t now_ms, const char **text) {
  const char *v = param(p, "since");
  *text = v ? v : dflt;
  int64_t ms = 0;
  mcpr_error err = {0};
  if (mcpr_parse_duration_ms("since", *text, &ms, &err) != MCPR_OK) {
    set_bad(p, "%s", err.message);
    return 0;
  }
  return ms >= now_ms ? 0 : now_ms - ms;
}

static int64_t count_param(params *p, const char *name, int64_t dflt, int64_t max) {
  const char *v = param(p, name);
  if (!v)
    return dflt;
  int64_t n = 0;
  mcpr_error err = {0};
  if (mcpr_parse_count(name, v, &n, &err) != MCPR_OK) {
    set_bad(p, "%s", err.message);
    return dflt;
  }
  if (n > max) {
    set_bad(p, "%s must be at most %lld", name, (long long)max);
    return dflt;
  }
  return n;
}

static bool bool_param(params *p, const char *name) {
  const char *v = param(p, name);
  if (!v)
    return false;
  if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
    return true;
  if (strcmp(v, "0") != 0 && strcmp(v, "false") != 0)
    set_bad(p, "%s must be 0 or 1", name);
  return false;
}

/* ---------- endpoints ---------- */

/* Each returns a new JSON value, or NULL with *status and *msg set. */
typedef struct api_ctx {
  dash *d;
  params *p;
  int64_t now_ms;
  int status;
  char msg[512];
} api_ctx;

static json_t *query_failed(api_ctx *c, const mcpr_error *err) {
  c->status = err->status == MCPR_ENOTFOUND ? 404 : err->status == MCPR_EINVAL ? 400 : 500;
  snprintf(c->msg, sizeof c->msg, "%s", err->message);
  return NULL;
}

static json_t *rows_array(void) { return json_array(); }

static json_t *api_status(api_ctx *c) {
  const char *since;
  mcpr_stats_filter f = {text_param(c->p, "proxy"), 0, 0};
  f.since_ms = since_param(c->p, "1h", c->now_ms, &since);
  if (c->p->bad[0])
    return NULL;
  mcpr_status_summary s;
  mcpr_error err = {0};
  if (mcpr_query_status(c->d->q, &f, c->now_ms, &s, &err) != MCPR_OK)
    return query_failed(c, &err);
  mcpr_proxy_entry *pv = NULL;
  size_t pn = 0, keep = 0;
  if (mcpr_registry_list(&pv, &pn, &err) != MCPR_OK)
    pn = 0;
  for (size_t i = 0; i < pn; i++)
    if (!f.proxy || strcmp(pv[i].name, f.proxy) == 0)
      pv[keep++] = pv[i];
  json_t *o = cli_status_json(f.proxy, since, &s, pv, keep);
  free(pv);
  mcpr_status_summary_release(&s);
  return o;
}

/* Bucket width for a window: about 60–120 points per chart. */
static int64_t bucket_for(int64_t window_ms) {
  static const int64_t steps[] = {10000,    30000,    60000,     300000,   600000,
                                  900000,   1800000,  3600000,   7200000,  10800000,
                                  21600000, 43200000, 86400000, 604800000};
  for (size_t i = 0; i < sizeof steps / sizeof *steps; i++)
    if (window_ms / steps[i] <= 120)
      return steps[i];
  return window_ms / 120 + 1;
}

static json_t *api_series(api_ctx *c) {
  const char *since;
  mcpr_series_filter f;
  mcpr_series_filter_init(&f);
  f.proxy = text_param(c->p, "proxy");
  f.tool = text_param(c->p, "tool");
  f.since_ms = since_param(c->p, "1h", c->now_ms, &since);
  f.until_ms = c->now_ms + 1;
  f.by_label = bool_param(c->p, "labels");
  int64_t buckets = count_param(c->p, "buckets", 0, MCPR_SERIES_MAX_BUCKETS);
  if (c->p->bad[0])
    return NULL;
  int64_t span = f.until_ms - f.since_ms;
  f.bucket_ms = buckets ? (span + buckets - 1) / buckets : bucket_for(span);
  /* Buckets of whole hours start on the clock's: the first one may begin
   * before the window (by less than a bucket), and the engine can then
   * read whole hours from the store's rollups instead of every row. */
  if (!buckets && f.bucket_ms % 3600000 == 0)
    f.since_ms -= f.since_ms % f.bucket_ms;
  mcpr_series_set s;
  mcpr_error err = {0};
  if (mcpr_query_series(c->d->q, &f, &s, &err) != MCPR_OK)
    return query_failed(c, &err);
  json_t *o = json_object();
  json_object_set_new(o, "proxy", fmt_json_str(f.proxy));
  json_object_set_new(o, "tool", fmt_json_str(f.tool));
  json_object_set_new(o, "since", json_string(since));
  json_object_set_new(o, "since_ms", json_integer(s.since_ms));
  json_object_set_new(o, "until_ms", json_integer(f.until_ms));
  json_object_set_new(o, "bucket_ms", json_integer(s.bucket_ms));
  json_t *series = json_array();
  for (size_t i = 0; i < s.count; i++) {
    const mcpr_series *se = &s.series[i];
    json_t *so = json_object();
    json_object_set_new(so, "label", fmt_json_str(se->label));
    json_object_set_new(so, "requests", json_integer(se->requests));
    /* Columns, not objects: compact for a few hundred points. */
    json_t *t = json_array(), *rq = json_array(), *er = json_array(), *p50 = json_array(),
           *p95 = json_array();
    for (size_t b = 0; b < s.buckets; b++) {
      const mcpr_series_point *pt = &se->points[b];
      json_array_append_new(t, json_integer(pt->start_ms));
      json_array_append_new(rq, json_integer(pt->requests));
      json_array_append_new(er, json_integer(pt->errors));
      json_array_append_new(p50, fmt_json_int(pt->p50_us));
      json_array_append_new(p95, fmt_json_int(pt->p95_us));
    }
    json_object_set_new(so, "start_ms", t);
    json_object_set_new(so, "requests_per_bucket", rq);
    json_object_set_new(so, "errors", er);
    json_object_set_new(so, "p50_us", p50);
    json_object_set_new(so, "p95_us", p95);
    json_array_append_new(series, so);
  }
  json_object_set_new(o, "series", series);
  mcpr_series_set_release(&s);
  return o;
}

static json_t *log_rows_json(const mcpr_log_rows *rows) {
  json_t *a = rows_array();
  for (size_t i = 0; i < rows->count; i++) {
    json_t *r = fmt_json_log_row(&rows->rows[i]);
    json_object_set_new(r, "proxy", fmt_json_str(rows->rows[i].proxy));
    json_object_set_new(r, "row_id", json_integer(rows->rows[i].row_id));
    json_array_append_new(a, r);
  }
  return a;
}

static json_t *api_logs(api_ctx *c, bool slow) {
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  const char *since;
  f.proxy = text_param(c->p, "proxy");
  f.tool = text_param(c->p, "tool");
  f.since_ms = since_param(c->p, "1h", c->now_ms, &since);
  f.limit = count_param(c->p, "limit", slow ? 20 : 50, MAX_LIMIT);
  if (slow) {
    const char *th = param(c->p, "threshold");
    mcpr_error err = {0};
    f.min_latency_us = 500000;
    if (th && mcpr_parse_threshold_us("threshold", th, &f.min_latency_us, &err) != MCPR_OK)
      set_bad(c->p, "%s", err.message);
  } else {
    f.method = text_param(c->p, "method");
    f.error_code = text_param(c->p, "error_code");
    f.session_prefix = text_param(c->p, "session");
    const char *st = param(c->p, "status");
    if (st) {
      f.has_status = true;
      if (strcmp(st, "ok") == 0)
        f.status = MCPR_REQUEST_OK;
      else if (strcmp(st, "error") == 0)
        f.status = MCPR_REQUEST_ERROR;
      else if (strcmp(st, "timeout") == 0)
        f.status = MCPR_REQUEST_TIMEOUT;
      else
        set_bad(c->p, "status must be ok, error or timeout");
    }
  }
  if (c->p->bad[0])
    return NULL;
  mcpr_log_rows rows;
  mcpr_error err = {0};
  mcpr_status st = slow ? mcpr_query_slow(c->d->q, &f, &rows, &err)
                        : mcpr_query_logs(c->d->q, &f, &rows, &err);
  if (st != MCPR_OK)
    return query_failed(c, &err);
  json_t *a = log_rows_json(&rows);
  mcpr_log_rows_release(&rows);
  return a;
}

static json_t *api_live(api_ctx *c) {
  /* A row id: any non-negative integer (counts stop at MCPR_COUNT_MAX). */
  const char *after_text = param(c->p, "after");
  int64_t after = 0;
  if (after_text) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(after_text, &end, 10);
    if (after_text[0] < '0' || after_text[0] > '9' || *end || errno || v < 0)
      set_bad(c->p, "after must be a row id (a non-negative integer)");
    else
      after = v;
  }
  int64_t limit = count_param(c->p, "limit", 100, LIVE_MAX_ROWS);
  if (c->p->bad[0])
    return NULL;
  mcpr_error err = {0};
  int64_t last = 0;
  if (mcpr_query_last_row_id(c->d->q, &last, &err) != MCPR_OK)
    return query_failed(c, &err);
  json_t *o = json_object();
  json_t *rows = NULL;
  /* after=0: where to start from (the newest row id), no rows. */
  if (after > 0 && last > after) {
    mcpr_log_filter f;
    mcpr_log_filter_init(&f);
    f.proxy = text_param(c->p, "proxy");
    f.after_row_id = after;
    f.up_to_row_id = last; /* the snapshot: a row stored meanwhile comes next time */
    f.limit = limit;
    mcpr_log_rows lr;
    if (mcpr_query_follow(c->d->q, &f, &lr, &err) != MCPR_OK) {
      json_decref(o);
      return query_failed(c, &err);
    }
    rows = log_rows_json(&lr);
    /* More than one page behind: the next call goes on from here. */
    if (lr.count == (size_t)limit)
      last = lr.rows[lr.count - 1].row_id;
    mcpr_log_rows_release(&lr);
  }
  json_object_set_new(o, "last_row_id", json_integer(last));
  json_object_set_new(o, "rows", rows ? rows : rows_array());
  return o;
}

static json_t *api_sessions(api_ctx *c) {
  mcpr_session_filter f;
  mcpr_session_filter_init(&f);
  const char *since;
  f.proxy = text_param(c->p, "proxy");
  f.client_name = text_param(c->p, "client");
  f.active_only = bool_param(c->p, "active");
  f.since_ms = since_param(c->p, "1h", c->now_ms, &since);
  f.limit = count_param(c->p, "limit", 50, MAX_LIMIT);
  f.now_ms = c->now_ms;
  if (c->p->bad[0])
    return NULL;
  mcpr_session_rows rows;
  mcpr_error err = {0};
  if (mcpr_query_sessions(c->d->q, &f, &rows, &err) != MCPR_OK)
    return query_failed(c, &err);
  json_t *a = rows_array();
  for (size_t i = 0; i < rows.count; i++) {
    json_t *r = fmt_json_session_row(&rows.rows[i]);
    json_object_set_new(r, "proxy", fmt_json_str(rows.rows[i].proxy));
    json_array_append_new(a, r);
  }
  mcpr_session_rows_release(&rows);
  return a;
}

static json_t *api_session(api_ctx *c) {
  const char *id = text_param(c->p, "id");
  if (!id) {
    set_bad(c->p, "id is required");
    return NULL;
  }
  mcpr_session_detail d;
  mcpr_error err = {0};
  if (mcpr_query_session(c->d->q, id, c->now_ms, &d, &err) != MCPR_OK)
    return query_failed(c, &err);
  json_t *o = cli_session_json(&d);
  mcpr_session_detail_release(&d);
  return o;
}

static json_t *api_clients(api_ctx *c) {
  const char *since;
  const char *proxy = text_param(c->p, "proxy");
  int64_t cutoff = since_param(c->p, "7d", c->now_ms, &since);
  if (c->p->bad[0])
    return NULL;
  mcpr_client_rows rows;
  mcpr_error err = {0};
  if (mcpr_query_clients(c->d->q, proxy, cutoff, &rows, &err) != MCPR_OK)
    return query_failed(c, &err);
  json_t *a = rows_array();
  for (size_t i = 0; i < rows.count; i++)
    json_array_append_new(a, fmt_json_client_row(&rows.rows[i]));
  mcpr_client_rows_release(&rows);
  return a;
}

static json_t *api_schema(api_ctx *c) {
  const char *proxy = text_param(c->p, "proxy"), *method = text_param(c->p, "method");
  mcpr_schema_rows rows;
  mcpr_error err = {0};
  if (mcpr_query_schema(c->d->q, proxy, method, &rows, &err) != MCPR_OK)
    return query_failed(c, &err);
  json_t *a = rows_array();
  for (size_t i = 0; i < rows.count; i++)
    json_array_append_new(a, fmt_json_schema_row(&rows.rows[i]));
  mcpr_schema_rows_release(&rows);
  return a;
}

static json_t *api_changes(api_ctx *c) {
  const char *proxy = text_param(c->p, "proxy"), *method = text_param(c->p, "method");
  int64_t limit = count_param(c->p, "limit", 50, MAX_LIMIT);
  if (c->p->bad[0])
    return NULL;
  mcpr_schema_change_rows rows;
  mcpr_error err = {0};
  if (mcpr_query_schema_changes(c->d->q, proxy, method, limit, &rows, &err) != MCPR_OK)
    return query_failed(c, &err);
  json_t *a = rows_array();
  for (size_t i = 0; i < rows.count; i++) {
    json_t *r = fmt_json_change_row(&rows.rows[i]);
    json_object_set_new(r, "proxy", fmt_json_str(rows.rows[i].proxy));
    json_array_append_new(a, r);
  }
  mcpr_schema_change_rows_release(&rows);
  return a;
}

static json_t *api_unused(api_ctx *c) {
  const char *since;
  const char *proxy = text_param(c->p, "proxy");
  int64_t cutoff = since_param(c->p, "7d", c->now_ms, &since);
  if (c->p->bad[0])
    return NULL;
  mcpr_unused_tool_rows rows;
  mcpr_error err = {0};
  if (mcpr_query_unused_tools(c->d->q, proxy, cutoff, &rows, &err) != MCPR_OK)
    return query_failed(c, &err);
  json_t *a = rows_array();
  for (size_t i = 0; i < rows.count; i++)
    json_array_append_new(a, fmt_json_unused_row(&rows.rows[i]));
  mcpr_unused_tool_rows_release(&rows);
  return a;
}

/* Proxy names for the picker: the registry's, and those of the recent
 * requests and the captured schemas. */
static void add_name(json_t *a, const char *name) {
  if (!name || !*name)
    return;
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) if (strcmp(json_string_value(v) ? json_string_value(v) : "",
                                         name) == 0) return;
  json_t *s = json_string(name);
  if (s)
    json_array_append_new(a, s);
}

static json_t *api_proxies(api_ctx *c) {
  json_t *a = rows_array();
  mcpr_error err = {0};
  mcpr_proxy_entry *pv = NULL;
  size_t pn = 0;
  if (mcpr_registry_list(&pv, &pn, &err) == MCPR_OK)
    for (size_t i = 0; i < pn; i++)
      add_name(a, pv[i].name);
  free(pv);
  mcpr_log_filter f;
  mcpr_log_filter_init(&f);
  f.limit = 1000;
  mcpr_log_rows rows;
  if (mcpr_query_logs(c->d->q, &f, &rows, &err) == MCPR_OK) {
    for (size_t i = 0; i < rows.count; i++)
      add_name(a, rows.rows[i].proxy);
    mcpr_log_rows_release(&rows);
  }
  mcpr_schema_rows sr;
  if (mcpr_query_schema(c->d->q, NULL, NULL, &sr, &err) == MCPR_OK) {
    for (size_t i = 0; i < sr.count; i++)
      add_name(a, sr.rows[i].proxy);
    mcpr_schema_rows_release(&sr);
  }
  json_t *o = json_object();
  json_object_set_new(o, "proxies", a);
  return o;
}

typedef struct endpoint {
  const char *path;
  json_t *(*fn)(api_ctx *c);
  const char *const *params;
  bool cached;
} endpoint;

static json_t *api_logs_plain(api_ctx *c) { return api_logs(c, false); }
static json_t *api_slow(api_ctx *c) { return api_logs(c, true); }

static const char *const P_STATUS[] = {"proxy", "since", NULL};
static const char *const P_SERIES[] = {"proxy", "tool", "since", "buckets", "labels", NULL};
static const char *const P_LOGS[] = {"proxy", "tool",       "since",   "limit",
                                     "method", "error_code", "session", "status", NULL};
static const char *const P_SLOW[] = {"proxy", "tool", "since", "limit", "threshold", NULL};
static const char *const P_LIVE[] = {"proxy", "after", "limit", NULL};
static const char *const P_SESSIONS[] = {"proxy", "client", "active", "since", "limit", NULL};
static const char *const P_SESSION[] = {"id", NULL};
static const char *const P_WINDOW[] = {"proxy", "since", NULL};
static const char *const P_SCHEMA[] = {"proxy", "method", NULL};
static const char *const P_CHANGES[] = {"proxy", "method", "limit", NULL};
static const char *const P_NONE[] = {NULL};

static const endpoint endpoints[] = {
    {"/api/status", api_status, P_STATUS, true},
    {"/api/series", api_series, P_SERIES, true},
    {"/api/logs", api_logs_plain, P_LOGS, false},
    {"/api/slow", api_slow, P_SLOW, true},
    {"/api/live", api_live, P_LIVE, false},
    {"/api/sessions", api_sessions, P_SESSIONS, true},
    {"/api/session", api_session, P_SESSION, false},
    {"/api/clients", api_clients, P_WINDOW, true},
    {"/api/schema", api_schema, P_SCHEMA, true},
    {"/api/schema/changes", api_changes, P_CHANGES, true},
    {"/api/unused", api_unused, P_WINDOW, true},
    {"/api/proxies", api_proxies, P_NONE, true},
};

/* ---------- the cache of heavy answers ---------- */

static cache_slot *cache_find(dash *d, const char *uri, int64_t row_id, int64_t now_ms) {
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    cache_slot *s = &d->cache[i];
    if (!s->uri || strcmp(s->uri, uri) != 0)
      continue;
    int64_t age = now_ms - s->at_ms;
    if (age >= 0 && age < CACHE_MAX_MS && (age < CACHE_FRESH_MS || s->row_id == row_id))
      return s;
  }
  return NULL;
}

static void cache_put(dash *d, const char *uri, int status, const char *body, int64_t row_id,
                      int64_t now_ms) {
  cache_slot *s = NULL;
  for (size_t i = 0; i < CACHE_SLOTS && !s; i++)
    if (d->cache[i].uri && strcmp(d->cache[i].uri, uri) == 0)
      s = &d->cache[i];
  if (!s) {
    s = &d->cache[d->cache_next];
    d->cache_next = (d->cache_next + 1) % CACHE_SLOTS;
  }
  char *u = strdup(uri), *b = strdup(body);
  free(s->uri);
  free(s->body);
  s->uri = u && b ? u : NULL;
  s->body = u && b ? b : NULL;
  if (!s->uri) {
    free(u);
    free(b);
  }
  s->status = status;
  s->row_id = row_id;
  s->at_ms = now_ms;
}

static void cache_clear(dash *d) {
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    free(d->cache[i].uri);
    free(d->cache[i].body);
  }
}

/* ---------- routing ---------- */

static void serve_api(dash *d, struct evhttp_request *req, const endpoint *ep,
                      const char *uri, const char *query) {
  int64_t now = mcpr_now_ms();
  int64_t row_id = -1;
  mcpr_error err = {0};
  if (ep->cached && mcpr_query_last_row_id(d->q, &row_id, &err) == MCPR_OK) {
    cache_slot *s = cache_find(d, uri, row_id, now);
    if (s) {
      send_json_text(req, s->status, s->body);
      return;
    }
  }
  params p;
  if (!params_parse(&p, query, ep->params)) {
    send_error(req, 400, "%s", p.bad);
    params_clear(&p);
    return;
  }
  api_ctx c = {.d = d, .p = &p, .now_ms = now, .status = 0};
  json_t *o = ep->fn(&c);
  if (!o) {
    if (p.bad[0])
      send_error(req, 400, "%s", p.bad);
    else
      send_error(req, c.status ? c.status : 500, "%s", c.msg[0] ? c.msg : "out of memory");
    params_clear(&p);
    return;
  }
  params_clear(&p);
  char *text = mcpr__json_dumps(o);
  json_decref(o);
  if (!text) {
    send_error(req, 500, "out of memory");
    return;
  }
  if (ep->cached && row_id >= 0)
    cache_put(d, uri, 200, text, row_id, now);
  send_json_text(req, 200, text);
  free(text);
}

static const char *content_type(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot && strcmp(dot, ".html") == 0)
    return "text/html; charset=utf-8";
  if (dot && strcmp(dot, ".js") == 0)
    return "text/javascript; charset=utf-8";
  if (dot && strcmp(dot, ".css") == 0)
    return "text/css; charset=utf-8";
  return "application/octet-stream";
}

static bool serve_asset(struct evhttp_request *req, const char *path) {
  const char *name = NULL;
  if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
    name = "index.html";
  else if (strncmp(path, "/assets/", 8) == 0)
    name = path + 8;
  if (!name)
    return false;
  for (const mcpr__dash_asset *a = mcpr__dash_assets; a->name; a++) {
    if (strcmp(a->name, name) != 0)
      continue;
    if (strcmp(name, "index.html") == 0)
      evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
                        "default-src 'none'; script-src 'self'; style-src 'self'; "
                        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                        "form-action 'none'; frame-ancestors 'none'");
    send_body(req, 200, content_type(name), a->data, a->size);
    return true;
  }
  return false;
}

/* "[::1]:7878" or "127.0.0.1:7878" → the host part, without brackets. */
static bool split_host(const char *hostport, char *host, size_t size, const char **port) {
  const char *end;
  if (hostport[0] == '[') {
    end = strchr(hostport, ']');
    if (!end || (end[1] != ':' && end[1] != '\0'))
      return false;
    hostport++;
    *port = end[1] ? end + 2 : NULL;
  } else {
    end = strrchr(hostport, ':');
    *port = end ? end + 1 : NULL;
    if (!end)
      end = hostport + strlen(hostport);
  }
  size_t n = (size_t)(end - hostport);
  if (n == 0 || n >= size)
    return false;
  memcpy(host, hostport, n);
  host[n] = '\0';
  return true;
}

static bool is_ip_literal(const char *host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/*
 * DNS rebinding: a page on attacker.example that resolves to 127.0.0.1
 * sends Host: attacker.example. Only the address served passes, or, for
 * a loopback address, localhost; on a wildcard bind, any address literal
 * (no DNS name is involved then) or localhost, on our port.
 */
static bool host_allowed(const dash *d, const char *hostport) {
  if (!hostport || strlen(hostport) > 280)
    return false;
  if (strcmp(hostport, d->hostport) == 0)
    return true;
  char host[280];
  const char *port;
  if (!split_host(hostport, host, sizeof host, &port) || !port ||
      strcmp(port, d->port_text) != 0)
    return false;
  if ((d->loopback || d->wildcard) && strcmp(host, "localhost") == 0)
    return true;
  if (d->wildcard && is_ip_literal(host))
    return true;
  if (d->loopback && mcpr_dash_is_loopback(host) && is_ip_literal(host))
    return true;
  return false;
}

static void on_request(struct evhttp_request *req, void *arg) {
  dash *d = arg;
  const char *uri = evhttp_request_get_uri(req);
  if (!host_allowed(d, evhttp_find_header(evhttp_request_get_input_headers(req), "Host"))) {
    send_error(req, 403, "Host not allowed: open the address mcpr dashboard printed");
    return;
  }
  enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
  if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
    send_error(req, 405, "read-only: GET only");
    return;
  }
  if (!uri || strlen(uri) > MAX_URI_BYTES) {
    send_error(req, 414, "URI longer than %d bytes", MAX_URI_BYTES);
    return;
  }
  const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
  const char *path = u ? evhttp_uri_get_path(u) : NULL;
  const char *query = u ? evhttp_uri_get_query(u) : NULL;
  if (!path || !*path) {
    send_error(req, 400, "malformed request target");
    return;
  }
  for (size_t i = 0; i < sizeof endpoints / sizeof *endpoints; i++)
    if (strcmp(path, endpoints[i].path) == 0) {
      serve_api(d, req, &endpoints[i], uri, query);
      return;
    }
  if (serve_asset(req, path))
    return;
  send_error(req, 404, "no such page");
}

/* ---------- the loop ---------- */

bool mcpr_dash_is_loopback(const char *host) {
  if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0)
    return true;
  struct in_addr a4;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  return false;
}

static void on_signal(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  event_base_loopbreak(arg);
}

int mcpr_dash_serve(mcpr_query *q, const mcpr_dash_options *o, FILE *err_out) {
  int rc = 1;
  dash d = {.q = q};
  const char *bind_host = strcmp(o->host, "localhost") == 0 ? "127.0.0.1" : o->host;
  d.loopback = mcpr_dash_is_loopback(o->host);
  d.wildcard = strcmp(bind_host, "0.0.0.0") == 0 || strcmp(bind_host, "::") == 0;
  struct evhttp *http = NULL;
  struct event *sigint = NULL, *sigterm = NULL;
  d.base = event_base_new();
  if (!d.base || !(http = evhttp_new(d.base))) {
    fprintf(err_out, "mcpr: out of memory\n");
    goto out;
  }
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                       EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
  evhttp_set_max_headers_size(http, 16384);
  evhttp_set_max_body_size(http, 4096);
  evhttp_set_timeout(http, 30);
  evhttp_set_gencb(http, on_request, &d);
  struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, bind_host,
                                                                  (ev_uint16_t)o->port);
  if (!bs) {
    fprintf(err_out, "mcpr: cannot listen on %s:%d (in use, or not an address of this machine)\n",
            o->host, o->port);
    goto out;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int port = o->port;
  if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0)
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
  snprintf(d.port_text, sizeof d.port_text, "%d", port);
  bool v6 = strchr(o->host, ':') != NULL;
  snprintf(d.hostport, sizeof d.hostport, "%s%s%s:%d", v6 ? "[" : "", o->host, v6 ? "]" : "",
           port);
  sigint = evsignal_new(d.base, SIGINT, on_signal, d.base);
  sigterm = evsignal_new(d.base, SIGTERM, on_signal, d.base);
  if (!sigint || !sigterm || evsignal_add(sigint, NULL) != 0 ||
      evsignal_add(sigterm, NULL) != 0) {
    fprintf(err_out, "mcpr: cannot install signal handlers\n");
    goto out;
  }
  char url[340];
  snprintf(url, sizeof url, "http://%s/", d.hostport);
  if (o->on_listen)
    o->on_listen(o->ctx, url, d.loopback);
  event_base_dispatch(d.base);
  rc = 0;
out:
  if (sigint)
    event_free(sigint);
  if (sigterm)
    event_free(sigterm);
  if (http)
    evhttp_free(http);
  if (d.base)
    event_base_free(d.base);
  cache_clear(&d);
  return rc;
}

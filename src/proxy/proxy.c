/*
 * proxy.c — the MCP reverse proxy: forwarding (see proxy.h).
 *
 * One thread, one libevent loop, no thread per connection. Both sides are
 * libevent's evhttp:
 *   - clients talk to an evhttp server; a request reaches on_request()
 *     with its whole body (bounded by max_request_body plus a little slack,
 *     see read_limit());
 *   - the upstream is reached through a pool of evhttp_connections (at
 *     most max_concurrent_upstream, reused while the upstream keeps them
 *     alive; requests beyond that wait in a FIFO);
 *   - the response is streamed: when the upstream's status and headers
 *     arrive (header callback) the client's reply is started with the same
 *     status and end-to-end headers, and every piece of body the upstream
 *     sends (chunked callback) is passed on at once with
 *     evhttp_send_reply_chunk(). With the upstream's Content-Length kept,
 *     evhttp writes the body raw; without one it re-chunks it, which keeps
 *     the bytes the client reads identical. So an SSE event reaches the
 *     client when the upstream sends it.
 * Only after a piece was handed on is its copy given to observe.c, which
 * turns the traffic into events; parsing never holds a byte back.
 *
 * Backpressure: a client slower than its upstream (an SSE stream it does
 * not read) would make the proxy hold whatever the upstream sends. Past
 * CLIENT_BACKLOG_MAX_BYTES waiting for the client, the upstream is no
 * longer read until the client has taken it all; TCP then slows the
 * upstream down.
 *
 * Out of file descriptors, accepting pauses for ACCEPT_PAUSE_MS and is
 * tried again; connections already accepted are served meanwhile.
 *
 * Timeouts: the upstream connection's read timeout is request_timeout
 * until the response headers arrive (a 504), and none after (an SSE
 * stream may be quiet for hours); the client connection has none while a
 * response streams to it.
 *
 * Lifetimes: an exchange lives from on_request() to finish(). The client
 * request belongs to evhttp; when the client goes away on_client_close()
 * forgets it (freeing it when evhttp detached it), cancels the upstream
 * request and finishes. The upstream request belongs to evhttp too: it is
 * freed after on_up_done(), or by evhttp_cancel_request().
 */
#include <sys/queue.h> /* before libevent: TAILQ_FOREACH over headers */

#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "observe.h"
#include "mcpr/util.h"

#define PATH_MAX_BYTES 8192
#define HEADERS_MAX_BYTES (64 * 1024)
#define CLIENT_IDLE_TIMEOUT_S 120
/* A client slower than its upstream: past this much response waiting in
 * the client's output buffer the upstream is no longer read (TCP then
 * slows it down), until the client has taken it all. */
#define CLIENT_BACKLOG_MAX_BYTES (1024 * 1024)
/* Out of file descriptors: accepting stops for this long, then is tried
 * again (the listening socket stays readable, so accepting on would spin). */
#define ACCEPT_PAUSE_MS 100

typedef struct upstream_conn {
  struct evhttp_connection *evcon;
  struct upstream_conn *next_idle;
} upstream_conn;

typedef struct exchange exchange;

struct mcpr_proxy {
  mcpr_proxy_options o;
  char *name, *upstream_url, *listen_addr, *admin_addr;
  char **origins;
  struct event_base *base;
  struct evhttp *http, *admin;
  struct evhttp_bound_socket *bound, *admin_bound;
  int port, admin_port;
  char up_host[256];
  int up_port;
  char up_hostport[300];
  char *up_path;     /* "/mcp" */
  obs *obs;
  upstream_conn *conns; /* all, max_concurrent_upstream slots */
  int n_conns;
  upstream_conn *idle;
  exchange *waiting_head, *waiting_tail;
  exchange *live; /* every exchange in flight */
  size_t n_live;
  struct event *sigint_ev, *sigterm_ev, *drain_ev, *kick_ev, *accept_ev;
  struct event *sighup_ev; /* reload hook (o.on_hangup) */
  bool draining;
  int signal;
  mcpr_proxy_stats stats;
};

struct exchange {
  mcpr_proxy *p;
  struct evhttp_request *client;        /* NULL once gone */
  struct evhttp_connection *client_conn; /* NULL once gone */
  struct evhttp_request *up;             /* in flight upstream, else NULL */
  upstream_conn *conn;
  obs_exchange *ox;
  enum evhttp_cmd_type cmd;
  char *uri;
  struct evbuffer *body;
  bool started;   /* the client's reply was started */
  bool up_paused; /* the upstream is not read: the client is behind */
  int status;
  enum evhttp_request_error up_error;
  bool up_failed;
  bool dispatching, done_while_dispatching;
  char *scratch;
  size_t scratch_cap;
  exchange *prev, *next, *wait_next;
};

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval ms_tv(int64_t ms) {
  struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
  return tv;
}

void mcpr_proxy_options_init(mcpr_proxy_options *o) {
  memset(o, 0, sizeof *o);
  o->listen_addr = "127.0.0.1";
  o->drain_timeout_ms = 30000;
  o->connect_timeout_ms = 5000;
  o->request_timeout_ms = 30000;
  o->max_request_body = 5 * 1000 * 1000;
  o->max_response_body = 10 * 1000 * 1000;
  o->max_concurrent_upstream = 100;
}

/* --- headers --- */

static bool is_hop_by_hop(const char *name, const char *connection_value) {
  static const char *const hop[] = {"Connection", "Keep-Alive", "Transfer-Encoding", "TE",
                                    "Trailer",    "Trailers",   "Upgrade"};
  for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
    if (strcasecmp(name, hop[i]) == 0)
      return true;
  if (strncasecmp(name, "Proxy-", 6) == 0)
    return true;
  /* A header the sender listed in Connection is hop-by-hop too. */
  if (connection_value) {
    size_t n = strlen(name);
    for (const char *s = connection_value; *s;) {
      while (*s == ' ' || *s == ',' || *s == '\t')
        s++;
      const char *e = s;
      while (*e && *e != ',' && *e != ' ' && *e != '\t')
        e++;
      if ((size_t)(e - s) == n && strncasecmp(s, name, n) == 0)
        return true;
      s = e;
    }
  }
  return false;
}

/* Copy end-to-end headers from in to out, leaving out those in skip[]. */
static void copy_headers(struct evkeyvalq *in, struct evkeyvalq *out, const char *const *skip) {
  const char *conn = evhttp_find_header(in, "Connection");
  struct evkeyval *kv;
  TAILQ_FOREACH(kv, in, next) {
    if (is_hop_by_hop(kv->key, conn))
      continue;
    bool skipped = false;
    for (const char *const *s = skip; *s && !skipped; s++)
      skipped = strcasecmp(kv->key, *s) == 0;
    if (!skipped)
      evhttp_add_header(out, kv->key, kv->value);
  }
}

/* --- replies of the proxy's own --- */

static void send_json(struct evhttp_request *req, int status, const char *reason, const char *json) {
  struct evbuffer *b = evbuffer_new();
  if (!b) {
    evhttp_send_error(req, status, reason);
    return;
  }
  evbuffer_add(b, json, strlen(json));
  struct evkeyvalq *h = evhttp_request_get_output_headers(req);
  evhttp_remove_header(h, "Content-Type");
  evhttp_add_header(h, "Content-Type", "application/json");
  evhttp_send_reply(req, status, reason, b);
  evbuffer_free(b);
}

/* A JSON-RPC error body carrying the request's id (JSON text, or "null"). */
static void send_rpc_error(struct evhttp_request *req, int status, const char *reason,
                           const char *id_json, int code, const char *message) {
  json_t *id = json_loads(id_json ? id_json : "null", JSON_DECODE_ANY, NULL);
  json_t *o = json_pack("{s:s, s:o, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                        "error", "code", code, "message", message);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  send_json(req, status, reason,
            text ? text : "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
                          "\"message\":\"internal error\"}}");
  free(text);
  json_decref(o);
}

/* --- the upstream pool --- */

static void conn_release(mcpr_proxy *p, upstream_conn *c) {
  c->next_idle = p->idle;
  p->idle = c;
  if (p->waiting_head)
    event_active(p->kick_ev, EV_TIMEOUT, 0);
}

static upstream_conn *conn_acquire(mcpr_proxy *p) {
  if (p->idle) {
    upstream_conn *c = p->idle;
    p->idle = c->next_idle;
    return c;
  }
  if (p->n_conns >= p->o.max_concurrent_upstream)
    return NULL;
  upstream_conn *c = &p->conns[p->n_conns];
  c->evcon = evhttp_connection_base_new(p->base, NULL, p->up_host, (unsigned short)p->up_port);
  if (!c->evcon)
    return NULL;
  evhttp_connection_set_retries(c->evcon, 0);
  evhttp_connection_set_max_headers_size(c->evcon, HEADERS_MAX_BYTES);
  p->n_conns++;
  return c;
}

/* --- exchange lifecycle --- */

static void live_remove(mcpr_proxy *p, exchange *x) {
  if (x->prev)
    x->prev->next = x->next;
  else
    p->live = x->next;
  if (x->next)
    x->next->prev = x->prev;
  p->n_live--;
}

static void finish(exchange *x, const char *error_code, const char *error_msg, const char *note) {
  mcpr_proxy *p = x->p;
  obs_end(x->ox, x->status, error_code, error_msg, note, mono_us());
  if (x->client_conn)
    evhttp_connection_set_closecb(x->client_conn, NULL, NULL);
  live_remove(p, x);
  if (x->body)
    evbuffer_free(x->body);
  free(x->uri);
  free(x->scratch);
  free(x);
  if (p->draining && p->n_live == 0)
    event_base_loopexit(p->base, NULL);
}

/* The client's request, detached from the exchange (its close callback
 * off), for the one last reply to it; NULL when it is already gone. */
static struct evhttp_request *take_client(exchange *x) {
  struct evhttp_request *req = x->client;
  if (!req)
    return NULL;
  if (x->client_conn)
    evhttp_connection_set_closecb(x->client_conn, NULL, NULL);
  x->client = NULL;
  x->client_conn = NULL;
  return req;
}

/* Answer the client with the proxy's own error and finish. */
static void fail(exchange *x, int status, const char *reason, int rpc_code, const char *msg,
                 const char *note) {
  x->status = status;
  char code[16];
  snprintf(code, sizeof code, "%d", rpc_code);
  struct evhttp_request *req = take_client(x);
  if (req) {
    send_rpc_error(req, status, reason, obs_first_id(x->ox), rpc_code, msg);
  }
  finish(x, code, msg, note);
}

/* The upstream broke off a response already under way: the client must
 * not take a cut stream for a whole one, so its connection is closed. */
static void abort_client(exchange *x) {
  if (!x->client)
    return;
  struct evhttp_connection *c = x->client_conn;
  struct evhttp_request *req = x->client;
  x->client = NULL;
  x->client_conn = NULL;
  if (c) {
    evhttp_connection_set_closecb(c, NULL, NULL);
    if (evhttp_request_get_connection(req))
      evhttp_connection_free(c); /* frees req too */
    else
      evhttp_send_reply_end(req);
  }
}

static void on_client_close(struct evhttp_connection *c, void *arg) {
  exchange *x = arg;
  (void)c;
  struct evhttp_request *req = x->client;
  x->client = NULL;
  x->client_conn = NULL;
  /* evhttp detached the request from the dead connection (it was not
   * answered yet): it is ours to free now. */
  if (req && !evhttp_request_get_connection(req))
    evhttp_send_reply_end(req);
  if (x->up) {
    struct evhttp_request *up = x->up;
    x->up = NULL;
    evhttp_cancel_request(up); /* no callback; the connection is reset */
    conn_release(x->p, x->conn);
    x->conn = NULL;
  }
  if (!x->started)
    x->status = 499;
  finish(x, NULL, NULL, "client closed the connection");
}

static void on_up_done(struct evhttp_request *up, void *arg);
static void on_up_error(enum evhttp_request_error e, void *arg);
static int on_up_headers(struct evhttp_request *up, void *arg);
static void on_up_chunk(struct evhttp_request *up, void *arg);

static void dispatch(exchange *x, upstream_conn *c) {
  mcpr_proxy *p = x->p;
  x->conn = c;
  struct evhttp_request *up = evhttp_request_new(on_up_done, x);
  if (!up) {
    conn_release(p, c);
    x->conn = NULL;
    fail(x, 502, "Bad Gateway", -32603, "proxy out of memory", NULL);
    return;
  }
  evhttp_request_set_header_cb(up, on_up_headers);
  evhttp_request_set_chunked_cb(up, on_up_chunk);
  evhttp_request_set_error_cb(up, on_up_error);
  static const char *const skip[] = {"Host", "Content-Length", NULL};
  struct evkeyvalq *out = evhttp_request_get_output_headers(up);
  copy_headers(evhttp_request_get_input_headers(x->client), out, skip);
  evhttp_add_header(out, "Host", p->up_hostport);
  size_t len = evbuffer_get_length(x->body);
  if (len || x->cmd == EVHTTP_REQ_POST || x->cmd == EVHTTP_REQ_PUT) {
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", len);
    evhttp_add_header(out, "Content-Length", cl);
  }
  evbuffer_add_buffer(evhttp_request_get_output_buffer(up), x->body);
  struct timeval tv = ms_tv(p->o.request_timeout_ms);
  evhttp_connection_set_timeout_tv(c->evcon, &tv);
  x->up = up;
  obs_upstream_sent(x->ox, mono_us());
  /* A refused connection may be reported from inside make_request. */
  x->dispatching = true;
  int rc = evhttp_make_request(c->evcon, up, x->cmd, x->uri);
  x->dispatching = false;
  if (rc != 0) {
    x->up = NULL;
    conn_release(p, c);
    x->conn = NULL;
    p->stats.upstream_errors++;
    fail(x, 502, "Bad Gateway", -32000, "upstream unreachable", "upstream_unreachable");
    return;
  }
  if (x->done_while_dispatching)
    on_up_done(NULL, x);
}

static void on_kick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mcpr_proxy *p = arg;
  while (p->waiting_head) {
    upstream_conn *c = conn_acquire(p);
    if (!c)
      return;
    exchange *x = p->waiting_head;
    p->waiting_head = x->wait_next;
    if (!p->waiting_head)
      p->waiting_tail = NULL;
    dispatch(x, c);
  }
}

static int on_up_headers(struct evhttp_request *up, void *arg) {
  exchange *x = arg;
  mcpr_proxy *p = x->p;
  x->status = evhttp_request_get_response_code(up);
  struct evkeyvalq *in = evhttp_request_get_input_headers(up);
  /* The stream may now be quiet for as long as the upstream likes. */
  struct evhttp_connection *uc = evhttp_request_get_connection(up);
  if (uc)
    bufferevent_set_timeouts(evhttp_connection_get_bufferevent(uc), NULL, NULL);
  obs_response_start(x->ox, x->status, evhttp_find_header(in, "Content-Type"),
                     evhttp_find_header(in, "Mcp-Session-Id"), mono_us());
  (void)p;
  if (!x->client)
    return 0;
  static const char *const skip[] = {NULL};
  struct evkeyvalq *out = evhttp_request_get_output_headers(x->client);
  copy_headers(in, out, skip);
  if (x->client_conn)
    bufferevent_set_timeouts(evhttp_connection_get_bufferevent(x->client_conn), NULL, NULL);
  const char *reason = evhttp_request_get_response_code_line(up);
  evhttp_send_reply_start(x->client, x->status, reason && *reason ? reason : "OK");
  x->started = true;
  return 0;
}

/* The client took everything written to it: read the upstream again. evhttp
 * calls this from the client connection's write callback, so the upstream's
 * bytes already waiting are handed over from the loop (deferred), not from
 * in here, where the exchange could end under evhttp's feet. */
static void on_client_drained(struct evhttp_connection *evcon, void *arg) {
  exchange *x = arg;
  (void)evcon;
  if (!x->up_paused || !x->up)
    return;
  x->up_paused = false;
  struct evhttp_connection *uc = evhttp_request_get_connection(x->up);
  if (!uc)
    return;
  struct bufferevent *bev = evhttp_connection_get_bufferevent(uc);
  bufferevent_enable(bev, EV_READ);
  if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
    bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

static void on_up_chunk(struct evhttp_request *up, void *arg) {
  exchange *x = arg;
  struct evbuffer *in = evhttp_request_get_input_buffer(up);
  size_t len = evbuffer_get_length(in);
  if (!len)
    return;
  /* Keep a copy for the observer, hand the bytes on, then observe. */
  if (len > x->scratch_cap) {
    char *s = realloc(x->scratch, len);
    if (s) {
      x->scratch = s;
      x->scratch_cap = len;
    }
  }
  bool copied = len <= x->scratch_cap && evbuffer_copyout(in, x->scratch, len) == (ev_ssize_t)len;
  if (x->client && x->started) {
    evhttp_send_reply_chunk_with_cb(x->client, in, on_client_drained, x);
    struct evhttp_connection *uc = evhttp_request_get_connection(up);
    struct bufferevent *client_bev =
        x->client_conn ? evhttp_connection_get_bufferevent(x->client_conn) : NULL;
    if (uc && client_bev && !x->up_paused &&
        evbuffer_get_length(bufferevent_get_output(client_bev)) > CLIENT_BACKLOG_MAX_BYTES) {
      bufferevent_disable(evhttp_connection_get_bufferevent(uc), EV_READ);
      x->up_paused = true;
    }
  } else if (!x->client) {
    evbuffer_drain(in, len); /* nobody to pass it to */
  }
  if (copied)
    obs_response_data(x->ox, x->scratch, len, mono_us());
}

static void on_up_error(enum evhttp_request_error e, void *arg) {
  exchange *x = arg;
  x->up_failed = true;
  x->up_error = e;
}

static void on_up_done(struct evhttp_request *up, void *arg) {
  exchange *x = arg;
  mcpr_proxy *p = x->p;
  if (x->dispatching) {
    x->done_while_dispatching = true; /* handled when make_request returns */
    return;
  }
  x->up = NULL;
  upstream_conn *c = x->conn;
  x->conn = NULL;
  bool ok = up && !x->up_failed && evhttp_request_get_response_code(up) != 0;
  if (c)
    conn_release(p, c);
  if (!ok) {
    if (x->started) {
      abort_client(x);
      p->stats.upstream_errors++;
      finish(x, "-32000", "upstream closed the response early", "upstream_closed");
    } else if (x->up_failed && x->up_error == EVREQ_HTTP_TIMEOUT) {
      p->stats.timeouts++;
      fail(x, 504, "Gateway Timeout", -32001, "upstream timed out", "timeout");
    } else {
      p->stats.upstream_errors++;
      fail(x, 502, "Bad Gateway", -32000, "upstream unreachable", "upstream_unreachable");
    }
    return;
  }
  struct evhttp_request *req = take_client(x);
  if (req) {
    if (x->started) {
      evhttp_send_reply_end(req);
    } else { /* no header callback came (should not happen): answer whole */
      evhttp_send_reply(req, x->status, "OK", evhttp_request_get_input_buffer(up));
    }
  }
  finish(x, NULL, NULL, NULL);
}

/* --- the client side --- */

static bool loopback_host(const char *h) {
  return strcasecmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 ||
         strcmp(h, "[::1]") == 0;
}

/* DNS-rebinding protection: a browser page may only reach the proxy from
 * a loopback origin or one the config allows; no Origin (a non-browser
 * client) is fine. */
static bool origin_allowed(const mcpr_proxy *p, const char *origin) {
  if (!origin)
    return true;
  for (size_t i = 0; i < p->o.n_allowed_origins; i++)
    if (strcmp(p->origins[i], "*") == 0 || strcasecmp(p->origins[i], origin) == 0)
      return true;
  struct evhttp_uri *u = evhttp_uri_parse(origin);
  bool ok = false;
  if (u) {
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    ok = scheme && host && (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
         loopback_host(host);
    evhttp_uri_free(u);
  }
  return ok;
}

static const char *cmd_name(enum evhttp_cmd_type t) {
  switch (t) {
  case EVHTTP_REQ_GET: return "GET";
  case EVHTTP_REQ_POST: return "POST";
  case EVHTTP_REQ_DELETE: return "DELETE";
  case EVHTTP_REQ_PUT: return "PUT";
  case EVHTTP_REQ_HEAD: return "HEAD";
  case EVHTTP_REQ_OPTIONS: return "OPTIONS";
  case EVHTTP_REQ_PATCH: return "PATCH";
  default: return "OTHER";
  }
}

/* The upstream URI for a client's: the MCP endpoint (the proxy's path, or
 * "/") maps onto the upstream's path, with the client's query; any other
 * path (OAuth discovery under /.well-known/, ...) goes to the upstream's
 * origin unchanged. New string. */
static char *upstream_uri(const mcpr_proxy *p, const char *uri) {
  const char *q = strchr(uri, '?');
  size_t plen = q ? (size_t)(q - uri) : strlen(uri);
  size_t n = strlen(p->up_path) + strlen(uri) + 2;
  char *out = malloc(n);
  if (!out)
    return NULL;
  bool endpoint = (plen == 1 && uri[0] == '/') ||
                  (plen == strlen(p->up_path) && strncmp(uri, p->up_path, plen) == 0);
  if (endpoint)
    snprintf(out, n, "%s%s", p->up_path, q ? q : "");
  else
    snprintf(out, n, "%s", uri);
  return out;
}

static void on_request(struct evhttp_request *req, void *arg) {
  mcpr_proxy *p = arg;
  p->stats.requests++;
  int64_t t0 = mono_us();
  struct evkeyvalq *in = evhttp_request_get_input_headers(req);
  struct evbuffer *body = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(body);
  const char *uri = evhttp_request_get_uri(req);
  enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
  if (!uri || strlen(uri) > PATH_MAX_BYTES) {
    send_rpc_error(req, 414, "URI Too Long", NULL, -32600, "request URI too long");
    return;
  }
  exchange *x = calloc(1, sizeof *x);
  if (!x) {
    send_rpc_error(req, 503, "Service Unavailable", NULL, -32603, "proxy out of memory");
    return;
  }
  x->p = p;
  x->client = req;
  x->client_conn = evhttp_request_get_connection(req);
  x->cmd = cmd;
  x->next = p->live;
  if (p->live)
    p->live->prev = x;
  p->live = x;
  p->n_live++;
  char path[PATH_MAX_BYTES + 1];
  snprintf(path, sizeof path, "%s", uri);
  char *qm = strchr(path, '?');
  if (qm)
    *qm = '\0';
  /* A body over the limit is not parsed (nor its id looked for). */
  const char *data = len && len <= p->o.max_request_body
                         ? (const char *)evbuffer_pullup(body, (ev_ssize_t)len)
                         : NULL;
  x->ox = obs_begin(p->obs, cmd_name(cmd), path, evhttp_find_header(in, "Mcp-Session-Id"), data,
                    data ? len : 0, mcpr_now_ms(), t0);
  if (x->client_conn)
    evhttp_connection_set_closecb(x->client_conn, on_client_close, x);
  if (len > p->o.max_request_body) {
    fail(x, 413, "Payload Too Large", -32600, "request body larger than max_request_body_size",
         NULL);
    return;
  }
  if (!origin_allowed(p, evhttp_find_header(in, "Origin"))) {
    fail(x, 403, "Forbidden", -32600, "origin not allowed", NULL);
    return;
  }
  if (p->draining) {
    fail(x, 503, "Service Unavailable", -32000, "proxy is shutting down", NULL);
    return;
  }
  x->uri = upstream_uri(p, uri);
  x->body = evbuffer_new();
  if (!x->uri || !x->body) {
    fail(x, 503, "Service Unavailable", -32603, "proxy out of memory", NULL);
    return;
  }
  evbuffer_add_buffer(x->body, body);
  upstream_conn *c = conn_acquire(p);
  if (c) {
    dispatch(x, c);
    return;
  }
  if (p->waiting_tail)
    p->waiting_tail->wait_next = x;
  else
    p->waiting_head = x;
  p->waiting_tail = x;
}

/* Whatever evhttp sends without us (its own 413 past the read limit,
 * 400s) has no JSON; everything we answer does. */
static size_t read_limit(size_t max_body) {
  size_t slack = max_body < 1024 * 1024 ? max_body : 1024 * 1024;
  return max_body + (slack > 4096 ? slack : 4096);
}

/* --- admin --- */

static void on_admin(struct evhttp_request *req, void *arg) {
  mcpr_proxy *p = arg;
  const char *uri = evhttp_request_get_uri(req);
  char path[256];
  snprintf(path, sizeof path, "%s", uri ? uri : "");
  char *q = strchr(path, '?');
  if (q)
    *q = '\0';
  if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
    send_json(req, 405, "Method Not Allowed", "{\"error\":\"method not allowed\"}");
  } else if (strcmp(path, "/healthz") == 0) {
    send_json(req, 200, "OK", "{\"status\":\"ok\"}");
  } else if (strcmp(path, "/ready") == 0) {
    char why[256] = "";
    if (p->draining) {
      send_json(req, 503, "Service Unavailable",
                "{\"status\":\"not ready\",\"reason\":\"shutting down\"}");
    } else if (p->o.ready && !p->o.ready(p->o.ready_ctx, why, sizeof why)) {
      json_t *o = json_pack("{s:s, s:s}", "status", "not ready", "reason", why);
      char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
      send_json(req, 503, "Service Unavailable", t ? t : "{\"status\":\"not ready\"}");
      free(t);
      json_decref(o);
    } else {
      send_json(req, 200, "OK", "{\"status\":\"ready\"}");
    }
  } else {
    send_json(req, 404, "Not Found", "{\"error\":\"not found\"}");
  }
}

/* --- out of file descriptors --- */

/*
 * libevent hands an accept error to the listener's error callback with the
 * listener's own user data, which for evhttp's listeners is the evhttp: so
 * which proxy it belongs to is looked up here. One proxy per evhttp, a few
 * per process at most; only the loop's thread and new/free touch this.
 */
#define MAX_PROXIES 8
static struct {
  struct evhttp *http;
  mcpr_proxy *p;
} accept_owners[MAX_PROXIES];

static void accept_owner_set(struct evhttp *http, mcpr_proxy *p) {
  for (size_t i = 0; i < MAX_PROXIES; i++)
    if (accept_owners[i].http == (p ? NULL : http)) {
      accept_owners[i].http = p ? http : NULL;
      accept_owners[i].p = p;
      return;
    }
}

static mcpr_proxy *accept_owner(void *http) {
  for (size_t i = 0; i < MAX_PROXIES; i++)
    if (http && accept_owners[i].http == http)
      return accept_owners[i].p;
  return NULL;
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mcpr_proxy *p = arg;
  /* p->bound is NULL once draining deleted the listener */
  if (p->bound)
    evconnlistener_enable(evhttp_bound_socket_get_listener(p->bound));
  if (p->admin_bound)
    evconnlistener_enable(evhttp_bound_socket_get_listener(p->admin_bound));
}

/* EMFILE and the like: connections in flight keep being served, new ones
 * wait in the kernel's backlog until descriptors are free again. */
static void on_accept_error(struct evconnlistener *lev, void *http) {
  int e = EVUTIL_SOCKET_ERROR();
  mcpr_proxy *p = accept_owner(http);
  if (!p || !(e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM))
    return;
  evconnlistener_disable(lev);
  struct timeval tv = ms_tv(ACCEPT_PAUSE_MS);
  if (evtimer_add(p->accept_ev, &tv) != 0)
    evconnlistener_enable(lev);
}

static bool watch_accept_errors(mcpr_proxy *p, struct evhttp *http,
                                struct evhttp_bound_socket *b) {
  if (!accept_owner(http))
    accept_owner_set(http, p);
  if (!accept_owner(http))
    return false;
  evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(b), on_accept_error);
  return true;
}

/* --- setup, run, drain --- */

static int bound_port(struct evhttp_bound_socket *b) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(evhttp_bound_socket_get_fd(b), (struct sockaddr *)&ss, &sl) != 0)
    return 0;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

static mcpr_status parse_upstream(mcpr_proxy *p, mcpr_error *err) {
  struct evhttp_uri *u = evhttp_uri_parse(p->upstream_url);
  mcpr_status st = MCPR_OK;
  if (!u)
    return mcpr_error_set(err, MCPR_EINVAL, "upstream URL '%s' is not a URL (want http://HOST:PORT/PATH)",
                          p->upstream_url);
  const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
  const char *path = evhttp_uri_get_path(u);
  if (!scheme || strcasecmp(scheme, "http") != 0) {
    st = mcpr_error_set(err, MCPR_EINVAL,
                        "upstream URL '%s': only http:// upstreams are supported (https is not "
                        "yet)",
                        p->upstream_url);
    goto out;
  }
  if (!host || !*host || strlen(host) >= sizeof p->up_host) {
    st = mcpr_error_set(err, MCPR_EINVAL, "upstream URL '%s' has no host", p->upstream_url);
    goto out;
  }
  snprintf(p->up_host, sizeof p->up_host, "%s", host);
  p->up_port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
  bool v6 = strchr(host, ':') != NULL;
  snprintf(p->up_hostport, sizeof p->up_hostport, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
           p->up_port);
  p->up_path = strdup(path && *path ? path : "/");
  if (!p->up_path)
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
out:
  evhttp_uri_free(u);
  return st;
}

static void on_signal(evutil_socket_t sig, short what, void *arg);

mcpr_status mcpr_proxy_new(mcpr_proxy **out, const mcpr_proxy_options *o, mcpr_error *err) {
  *out = NULL;
  mcpr_status st = MCPR_OK;
  if (!o->name || !*o->name || !o->upstream_url || !*o->upstream_url)
    return mcpr_error_set(err, MCPR_EINVAL, "the proxy needs a name and an upstream URL");
  if (o->max_concurrent_upstream < 1 || o->max_request_body < 1 || o->max_response_body < 1)
    return mcpr_error_set(err, MCPR_EINVAL, "proxy limits must be positive");
  mcpr_proxy *p = calloc(1, sizeof *p);
  if (!p)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  p->o = *o;
  p->name = strdup(o->name);
  p->upstream_url = strdup(o->upstream_url);
  p->listen_addr = strdup(o->listen_addr ? o->listen_addr : "127.0.0.1");
  p->admin_addr = o->admin_addr ? strdup(o->admin_addr) : NULL;
  p->origins = calloc(o->n_allowed_origins + 1, sizeof *p->origins);
  p->conns = calloc((size_t)o->max_concurrent_upstream, sizeof *p->conns);
  if (!p->name || !p->upstream_url || !p->listen_addr || (o->admin_addr && !p->admin_addr) ||
      !p->origins || !p->conns) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto fail;
  }
  for (size_t i = 0; i < o->n_allowed_origins; i++)
    if (!(p->origins[i] = strdup(o->allowed_origins[i]))) {
      st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
      goto fail;
    }
  if ((st = parse_upstream(p, err)) != MCPR_OK)
    goto fail;
  p->obs = obs_new(p->name, p->upstream_url, o->fanout, o->max_response_body);
  p->base = event_base_new();
  p->http = p->base ? evhttp_new(p->base) : NULL;
  p->kick_ev = p->base ? event_new(p->base, -1, 0, on_kick, p) : NULL;
  p->accept_ev = p->base ? evtimer_new(p->base, on_accept_resume, p) : NULL;
  if (!p->obs || !p->http || !p->kick_ev || !p->accept_ev) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "cannot set up the event loop");
    goto fail;
  }
  evhttp_set_allowed_methods(p->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                          EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS |
                                          EVHTTP_REQ_PATCH);
  evhttp_set_max_body_size(p->http, (ev_ssize_t)read_limit(o->max_request_body));
  evhttp_set_max_headers_size(p->http, HEADERS_MAX_BYTES);
  evhttp_set_default_content_type(p->http, NULL);
  evhttp_set_timeout(p->http, CLIENT_IDLE_TIMEOUT_S);
  evhttp_set_gencb(p->http, on_request, p);
  p->bound = evhttp_bind_socket_with_handle(p->http, p->listen_addr, (ev_uint16_t)o->port);
  if (!p->bound) {
    st = mcpr_error_set(err, MCPR_EIO, "cannot listen on %s:%d: %s", p->listen_addr, o->port,
                        strerror(errno));
    goto fail;
  }
  p->port = bound_port(p->bound);
  if (!watch_accept_errors(p, p->http, p->bound)) {
    st = mcpr_error_set(err, MCPR_EINVAL, "too many proxies in one process");
    goto fail;
  }
  if (p->admin_addr) {
    p->admin = evhttp_new(p->base);
    if (!p->admin) {
      st = mcpr_error_set(err, MCPR_ENOMEM, "cannot set up the admin server");
      goto fail;
    }
    evhttp_set_gencb(p->admin, on_admin, p);
    evhttp_set_timeout(p->admin, 10);
    p->admin_bound = evhttp_bind_socket_with_handle(p->admin, p->admin_addr, (ev_uint16_t)o->admin_port);
    if (!p->admin_bound && o->admin_optional) {
      evhttp_free(p->admin);
      p->admin = NULL;
    } else if (!p->admin_bound) {
      st = mcpr_error_set(err, MCPR_EIO, "cannot listen on %s:%d (admin_bind): %s", p->admin_addr,
                          o->admin_port, strerror(errno));
      goto fail;
    }
    if (p->admin_bound)
      p->admin_port = bound_port(p->admin_bound);
    if (p->admin_bound && !watch_accept_errors(p, p->admin, p->admin_bound)) {
      st = mcpr_error_set(err, MCPR_EINVAL, "too many proxies in one process");
      goto fail;
    }
  }
  *out = p;
  return MCPR_OK;
fail:
  mcpr_proxy_free(p);
  return st;
}

int mcpr_proxy_port(const mcpr_proxy *p) { return p->port; }
int mcpr_proxy_admin_port(const mcpr_proxy *p) { return p->admin_port; }
const char *mcpr_proxy_path(const mcpr_proxy *p) { return p->up_path; }

/* Drop an exchange at shutdown: its upstream request is cancelled, its
 * client connection closed (an SSE client reconnects and resumes). */
static void abandon(exchange *x, const char *note) {
  if (x->up) {
    struct evhttp_request *up = x->up;
    x->up = NULL;
    evhttp_cancel_request(up);
    conn_release(x->p, x->conn);
    x->conn = NULL;
  }
  if (x->started) {
    struct evhttp_request *req = take_client(x);
    if (req)
      evhttp_send_reply_end(req);
    finish(x, NULL, NULL, note);
  } else {
    fail(x, 503, "Service Unavailable", -32000, "proxy is shutting down", note);
  }
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mcpr_proxy *p = arg;
  p->draining = false; /* finish() must not exit the loop mid-way */
  while (p->waiting_head) {
    exchange *x = p->waiting_head;
    p->waiting_head = x->wait_next;
    p->stats.aborted_at_drain++;
    abandon(x, "drain_timeout");
  }
  p->waiting_tail = NULL;
  while (p->live) {
    p->stats.aborted_at_drain++;
    abandon(p->live, "drain_timeout");
  }
  p->draining = true;
  event_base_loopexit(p->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)what;
  mcpr_proxy *p = arg;
  if (p->draining)
    return;
  p->signal = (int)sig;
  p->draining = true;
  if (p->bound) {
    evhttp_del_accept_socket(p->http, p->bound); /* stop accepting */
    p->bound = NULL;
  }
  /* GET streams never end by themselves: close them now. */
  for (exchange *x = p->live, *next; x; x = next) {
    next = x->next;
    if (x->cmd == EVHTTP_REQ_GET && x->started)
      abandon(x, "proxy shutting down");
  }
  if (p->n_live == 0) {
    event_base_loopexit(p->base, NULL);
    return;
  }
  struct timeval tv = ms_tv(p->o.drain_timeout_ms);
  p->drain_ev = evtimer_new(p->base, on_drain_timeout, p);
  if (!p->drain_ev || evtimer_add(p->drain_ev, &tv) != 0)
    on_drain_timeout(-1, 0, p);
}

/* --- reload hook: SIGHUP → o.on_hangup; mcpr_proxy_set_live() --- */

static void on_hangup(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  mcpr_proxy *p = arg;
  if (!p->draining)
    p->o.on_hangup(p->o.hangup_ctx);
}

mcpr_status mcpr_proxy_set_live(mcpr_proxy *p, const mcpr_proxy_options *o, mcpr_error *err) {
  char **origins = calloc(o->n_allowed_origins + 1, sizeof *origins);
  for (size_t i = 0; origins && i < o->n_allowed_origins; i++)
    if (!(origins[i] = strdup(o->allowed_origins[i]))) {
      for (size_t k = 0; k < i; k++)
        free(origins[k]);
      free(origins);
      origins = NULL;
    }
  if (!origins)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  for (size_t i = 0; i < p->o.n_allowed_origins; i++)
    free(p->origins[i]);
  free(p->origins);
  p->origins = origins;
  p->o.n_allowed_origins = o->n_allowed_origins;
  p->o.allowed_origins = NULL; /* the caller's list is not kept */
  p->o.drain_timeout_ms = o->drain_timeout_ms;
  p->o.connect_timeout_ms = o->connect_timeout_ms;
  p->o.request_timeout_ms = o->request_timeout_ms;
  return MCPR_OK;
}

int mcpr_proxy_run(mcpr_proxy *p) {
  signal(SIGPIPE, SIG_IGN); /* a client gone mid-write is an error return, not death */
  p->sigint_ev = evsignal_new(p->base, SIGINT, on_signal, p);
  p->sigterm_ev = evsignal_new(p->base, SIGTERM, on_signal, p);
  if (p->sigint_ev)
    evsignal_add(p->sigint_ev, NULL);
  if (p->sigterm_ev)
    evsignal_add(p->sigterm_ev, NULL);
  if (p->o.on_hangup && (p->sighup_ev = evsignal_new(p->base, SIGHUP, on_hangup, p)))
    evsignal_add(p->sighup_ev, NULL);
  event_base_dispatch(p->base);
  return p->signal;
}

void mcpr_proxy_get_stats(const mcpr_proxy *p, mcpr_proxy_stats *out) {
  *out = p->stats;
  if (p->obs) {
    obs_stats os;
    obs_get_stats(p->obs, &os);
    out->events = os.events;
    out->emit_refused = os.emit_refused;
  }
}

void mcpr_proxy_free(mcpr_proxy *p) {
  if (!p)
    return;
  p->draining = false;
  while (p->waiting_head) {
    exchange *x = p->waiting_head;
    p->waiting_head = x->wait_next;
    abandon(x, "proxy stopped");
  }
  while (p->live)
    abandon(p->live, "proxy stopped");
  if (p->sigint_ev)
    event_free(p->sigint_ev);
  if (p->sigterm_ev)
    event_free(p->sigterm_ev);
  if (p->drain_ev)
    event_free(p->drain_ev);
  if (p->sighup_ev)
    event_free(p->sighup_ev);
  if (p->kick_ev)
    event_free(p->kick_ev);
  if (p->accept_ev)
    event_free(p->accept_ev);
  accept_owner_set(p->http, NULL);
  accept_owner_set(p->admin, NULL);
  for (int i = 0; i < p->n_conns; i++)
    evhttp_connection_free(p->conns[i].evcon);
  if (p->http)
    evhttp_free(p->http);
  if (p->admin)
    evhttp_free(p->admin);
  if (p->base)
    event_base_free(p->base);
  obs_free(p->obs);
  for (size_t i = 0; p->origins && i < p->o.n_allowed_origins; i++)
    free(p->origins[i]);
  free(p->origins);
  free(p->conns);
  free(p->up_path);
  free(p->name);
  free(p->upstream_url);
  free(p->listen_addr);
  free(p->admin_addr);
  free(p);
}

/*
 * proxy.c — the MCP reverse proxy: forwarding (see proxy.h).
 *
 * One thread, one libevent loop, no thread per connection. Both sides are
 * plain sockets with one read event each, registered once for the
 * connection's life, and HTTP/1.x parsed by http1.c:
 *   - a client's request is read whole (its body bounded by
 *     max_request_body: over it, a JSON 413 at once), then sent to the
 *     upstream with one write;
 *   - the upstream is reached through a pool of keep-alive connections (at
 *     most max_concurrent_upstream; requests beyond that wait in a FIFO);
 *     a pooled connection the upstream closed before answering is replaced
 *     once by a fresh one;
 *   - the response is streamed: when the upstream's head arrives the
 *     client's is written with the same status, reason and end-to-end
 *     headers, and every piece of body read from the upstream is written
 *     to the client in the same loop turn (with its Content-Length kept;
 *     a chunked or close-delimited body is re-chunked, so the bytes the
 *     client's HTTP layer hands up are the upstream's). An SSE event thus
 *     reaches the client when the upstream sends it.
 * Writes are made at once and only what the kernel does not take waits
 * for a write event, so a request costs about one read and one write on
 * each side (evhttp, which the first version used, re-armed its epoll
 * registrations several times per request: 23 syscalls against 6 now).
 * Only after a piece was handed on is it given to observe.c, which turns
 * the traffic into events; parsing never holds a byte back.
 *
 * Backpressure: past CLIENT_BACKLOG_MAX_BYTES waiting for a client, its
 * upstream is no longer read until the client has taken it all; TCP then
 * slows the upstream down.
 *
 * Out of file descriptors, accepting pauses for ACCEPT_PAUSE_MS and is
 * tried again; connections already accepted are served meanwhile.
 *
 * Timeouts: connect_timeout to establish an upstream connection (then a
 * 504), request_timeout from sending a request to the first byte of its
 * answer (a 504), none after (an SSE stream may be quiet for hours); a
 * client connection idle between requests for CLIENT_IDLE_TIMEOUT_S is
 * closed.
 *
 * Lifetimes: a client connection (cconn) lives from accept to close; it
 * has at most one exchange at a time (pipelined requests wait in its input
 * buffer). An exchange lives from its request's last byte to finish(); it
 * holds an upstream connection (uconn) while one serves it. A uconn lives
 * for the proxy's life in its pool slot; its socket is opened and closed
 * as needed.
 */
#include <sys/queue.h>

#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http1.h"
#include "observe.h"
#include "mcpr/util.h"

#define PATH_MAX_BYTES 8192
#define CLIENT_IDLE_TIMEOUT_S 120
/* A client slower than its upstream: past this much response waiting in
 * the client's output buffer the upstream is no longer read (TCP then
 * slows it down), until the client has taken it all. */
#define CLIENT_BACKLOG_MAX_BYTES (1024 * 1024)
/* Pipelined requests read while one is in flight: past this, the client
 * is not read until its requests are answered. */
#define CLIENT_INPUT_MAX_BYTES (1024 * 1024)
/* Out of file descriptors: accepting stops for this long, then is tried
 * again (the listening socket stays readable, so accepting on would spin). */
#define ACCEPT_PAUSE_MS 100
/* A resolved upstream address is used for this long before it is looked
 * up again. */
#define DNS_REUSE_MS 30000
#define READ_CHUNK (64 * 1024)
/* Exchanges kept for reuse, and the largest request buffer one keeps. */
#define SPARE_EXCHANGES 1024
#define SPARE_REQUEST_BYTES (16 * 1024)

typedef struct exchange exchange;
typedef struct cconn cconn;
typedef struct uconn uconn;

enum uconn_state { U_CLOSED, U_RESOLVING, U_CONNECTING, U_HANDSHAKE, U_OPEN };

struct uconn {
  mcpr_proxy *p;
  int fd;
  enum uconn_state state;
  struct event *rev, *wev, *timer;
  struct evbuffer *out;
  h1_msg res;
  exchange *x;   /* the exchange it serves, NULL when idle */
  bool reused;   /* answered a request before the current one */
  bool got_bytes; /* a byte of the current answer arrived */
  bool read_paused;
  bool in_pool;
  uconn *next_idle;
  struct evdns_getaddrinfo_request *dns;
  SSL *ssl;      /* https upstreams */
  char why[200]; /* a failure's words, when they are made up here */
};

struct cconn {
  mcpr_proxy *p;
  int fd;
  struct event *rev, *wev;
  struct evbuffer *out;
  struct evbuffer *in; /* read, not parsed yet (a request is in flight) */
  h1_msg req;
  mcpr__buf body;
  exchange *x;
  bool close_after; /* close once out is written */
  bool read_paused;
  bool closed;
  int busy;        /* inside client_parse(): closing waits until it returns */
  bool want_close;
  int64_t last_active_ms;
  LIST_ENTRY(cconn) link; /* p->clients */
};

struct mcpr_proxy {
  mcpr_proxy_options o;
  char *name, *upstream_url, *listen_addr, *admin_addr;
  char **origins;
  struct event_base *base;
  struct evconnlistener *listener;
  struct evhttp *admin;
  struct evhttp_bound_socket *admin_bound;
  struct evdns_base *dns;
  int port, admin_port;
  char up_host[256];
  int up_port;
  char up_hostport[300];
  size_t up_hostport_len;
  char *up_path; /* "/mcp" */
  size_t up_path_len;
  bool up_numeric;
  bool up_tls; /* https: OpenSSL over the same sockets */
  SSL_CTX *ssl_ctx;
  struct sockaddr_storage up_addr;
  socklen_t up_addr_len;
  int64_t up_addr_until_ms; /* 0: not resolved yet (never, for numeric) */
  obs *obs;
  uconn *conns; /* all, max_concurrent_upstream slots */
  int n_conns;
  uconn *idle;
  exchange *waiting_head, *waiting_tail;
  LIST_HEAD(, exchange) live; /* every exchange in flight */
  size_t n_live;
  LIST_HEAD(, cconn) clients;
  size_t n_clients;
  struct event *sigint_ev, *sigterm_ev, *drain_ev, *kick_ev, *accept_ev, *sweep_ev;
  struct event *sighup_ev; /* reload hook (o.on_hangup) */
  bool draining;
  int signal;
  mcpr_proxy_stats stats;
  char rbuf[READ_CHUNK];
  mcpr__buf head; /* a head being written (head_add) */
  bool head_ok;
  /* Exchanges over, kept for the next requests (no calloc and free per
   * request): at most SPARE_EXCHANGES, their request buffers kept when
   * small. */
  exchange *spare;
  size_t n_spare;
};

struct exchange {
  mcpr_proxy *p;
  cconn *c; /* NULL once the client is gone */
  uconn *u; /* the upstream connection serving it, else NULL */
  obs_exchange *ox;
  bool head_req;
  bool keep_alive;        /* the client's connection stays open after */
  mcpr__buf request; /* for the upstream: head and body */
  bool started;           /* the client's response head was written */
  bool chunked_out;       /* the body goes to the client chunked */
  bool close_delimited;   /* ... or until the connection closes */
  bool retried;
  bool client_1_0; /* an HTTP/1.0 client: no chunked body for it */
  bool is_get;
  /* dispatch() runs before the request is observed (parsing waits until
   * the request is on its way): a failure meanwhile is acted on after */
  bool dispatching, deferred, deferred_timeout;
  const char *deferred_why;
  int64_t sent_us;
  int status;
  LIST_ENTRY(exchange) link; /* p->live */
  exchange *wait_next;
  bool waiting;
  exchange *next_spare; /* p->spare */
};

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void) { return mono_us() / 1000; }

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

/* --- writing: at once, and a write event only for what the kernel did
 * not take --- */

/* Write what out holds; false when the socket failed (the caller closes). */
static bool flush_out(int fd, struct evbuffer *out, struct event *wev) {
  while (evbuffer_get_length(out) > 0) {
    int n = evbuffer_write(out, fd);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!event_pending(wev, EV_WRITE, NULL))
          event_add(wev, NULL);
        return true;
      }
      if (errno == EINTR)
        continue;
      return false;
    }
  }
  if (event_pending(wev, EV_WRITE, NULL))
    event_del(wev);
  return true;
}

/* event_free() that takes NULL (libevent's does not). */
static void ev_free(struct event *e) {
  if (e)
    event_free(e);
}

static void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The standard reason phrase for the proxy's own statuses. */
static const char *reason_of(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 413: return "Payload Too Large";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 499: return "Client Closed Request";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Error";
  }
}

/* --- origins --- */

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


/* --- client connections --- */

static void client_close(cconn *c);
static void client_parse(cconn *c, const char *data, size_t len);
static void client_resume(cconn *c);

/* A response of the proxy's own: JSON, with Content-Length. */
static void client_reply_json(cconn *c, int status, const char *json, bool close) {
  size_t len = strlen(json);
  evbuffer_add_printf(c->out,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n%s\r\n",
                      status, reason_of(status), len, close ? "Connection: close\r\n" : "");
  evbuffer_add(c->out, json, len);
  if (close)
    c->close_after = true;
}

/* A JSON-RPC error body carrying the request's id (JSON text, or "null"). */
static void client_reply_rpc_error(cconn *c, int status, const char *id_json, int code,
                                   const char *message, bool close) {
  json_t *id = json_loads(id_json ? id_json : "null", JSON_DECODE_ANY, NULL);
  json_t *o = json_pack("{s:s, s:o, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                        "error", "code", code, "message", message);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  client_reply_json(c, status,
                    text ? text : "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32603,"
                                  "\"message\":\"internal error\"}}",
                    close);
  free(text);
  json_decref(o);
}

/* Write what waits; close when done and asked to, or when the socket
 * failed. false: the connection is gone. */
static void client_gone(cconn *c);

static bool client_flush(cconn *c) {
  if (c->want_close)
    return false;
  if (!flush_out(c->fd, c->out, c->wev)) {
    client_gone(c); /* as if it hung up: its exchange ends too */
    return false;
  }
  if (c->close_after && !c->x && evbuffer_get_length(c->out) == 0) {
    client_close(c);
    return false;
  }
  return !c->want_close;
}

static void on_client_write(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  cconn *c = arg;
  if (!client_flush(c))
    return;
  /* The client caught up: read its upstream again. */
  exchange *x = c->x;
  if (x && x->u && x->u->read_paused && evbuffer_get_length(c->out) == 0) {
    x->u->read_paused = false;
    event_add(x->u->rev, NULL);
    if (x->u->ssl && SSL_pending(x->u->ssl) > 0) /* decrypted already: no event would come */
      event_active(x->u->rev, EV_READ, 0);
  }
}

static void on_client_read(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  cconn *c = arg;
  mcpr_proxy *p = c->p;
  ssize_t n = recv(fd, p->rbuf, sizeof p->rbuf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (n <= 0) {
    client_gone(c);
    return;
  }
  c->last_active_ms = mono_ms();
  if (c->x || evbuffer_get_length(c->in) > 0 || c->close_after) {
    /* A request is in flight: keep what follows for later. */
    if (!c->close_after)
      evbuffer_add(c->in, p->rbuf, (size_t)n);
    if (evbuffer_get_length(c->in) > CLIENT_INPUT_MAX_BYTES) {
      event_del(c->rev);
      c->read_paused = true;
    }
    return;
  }
  client_parse(c, p->rbuf, (size_t)n);
}

static void client_close(cconn *c) {
  mcpr_proxy *p = c->p;
  if (c->busy) {
    c->want_close = true;
    return;
  }
  if (c->closed)
    return;
  c->closed = true;
  LIST_REMOVE(c, link);
  p->n_clients--;
  event_free(c->rev);
  event_free(c->wev);
  evutil_closesocket(c->fd);
  evbuffer_free(c->out);
  evbuffer_free(c->in);
  h1_free(&c->req);
  mcpr__buf_release(&c->body);
  free(c);
}

static int on_request_head(void *owner, h1_msg *m);
static int on_request_body(void *owner, const char *data, size_t len);
static const h1_hooks request_hooks = {on_request_head, on_request_body};

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg) {
  (void)lev;
  (void)sa;
  (void)salen;
  mcpr_proxy *p = arg;
  cconn *c = calloc(1, sizeof *c);
  if (c) {
    c->p = p;
    c->fd = fd;
    c->out = evbuffer_new();
    c->in = evbuffer_new();
    c->rev = event_new(p->base, fd, EV_READ | EV_PERSIST, on_client_read, c);
    c->wev = event_new(p->base, fd, EV_WRITE | EV_PERSIST, on_client_write, c);
  }
  if (!c || !c->out || !c->in || !c->rev || !c->wev || event_add(c->rev, NULL) != 0) {
    if (c) {
      ev_free(c->rev);
      ev_free(c->wev);
      if (c->out)
        evbuffer_free(c->out);
      if (c->in)
        evbuffer_free(c->in);
      free(c);
    }
    evutil_closesocket(fd);
    return;
  }
  set_nodelay(fd);
  h1_init(&c->req, H1_REQUEST, &request_hooks, c);
  c->last_active_ms = mono_ms();
  LIST_INSERT_HEAD(&p->clients, c, link);
  p->n_clients++;
}

/* --- the upstream pool --- */

static void on_up_read(evutil_socket_t fd, short what, void *arg);
static void on_up_write(evutil_socket_t fd, short what, void *arg);
static void on_up_timer(evutil_socket_t fd, short what, void *arg);
static int on_response_head(void *owner, h1_msg *m);
static int on_response_body(void *owner, const char *data, size_t len);
static const h1_hooks response_hooks = {on_response_head, on_response_body};

static void uconn_close(uconn *u) {
  if (u->dns) {
    evdns_getaddrinfo_cancel(u->dns); /* its callback runs now, with EVUTIL_EAI_CANCEL */
    u->dns = NULL;
  }
  if (u->ssl) {
    SSL_free(u->ssl);
    u->ssl = NULL;
  }
  if (u->fd >= 0) {
    if (u->rev)
      event_del(u->rev);
    if (u->wev)
      event_del(u->wev);
    evutil_closesocket(u->fd);
    u->fd = -1;
  }
  event_del(u->timer);
  evbuffer_drain(u->out, evbuffer_get_length(u->out));
  h1_free(&u->res);
  h1_init(&u->res, H1_RESPONSE, &response_hooks, u);
  u->state = U_CLOSED;
  u->reused = false;
  u->read_paused = false;
}

static void conn_release(mcpr_proxy *p, uconn *u) {
  u->x = NULL;
  u->in_pool = true;
  u->next_idle = p->idle;
  p->idle = u;
  event_del(u->timer);
  if (p->waiting_head)
    event_active(p->kick_ev, EV_TIMEOUT, 0);
}

static uconn *conn_acquire(mcpr_proxy *p) {
  /* An idle open connection first; closed slots are reopened. */
  for (uconn **pp = &p->idle; *pp; pp = &(*pp)->next_idle) {
    if ((*pp)->state == U_OPEN) {
      uconn *u = *pp;
      *pp = u->next_idle;
      u->in_pool = false;
      return u;
    }
  }
  if (p->idle) {
    uconn *u = p->idle;
    p->idle = u->next_idle;
    u->in_pool = false;
    return u;
  }
  if (p->n_conns >= p->o.max_concurrent_upstream)
    return NULL;
  uconn *u = &p->conns[p->n_conns];
  u->p = p;
  u->fd = -1;
  u->out = evbuffer_new();
  u->timer = evtimer_new(p->base, on_up_timer, u);
  if (!u->out || !u->timer) {
    if (u->out)
      evbuffer_free(u->out);
    ev_free(u->timer);
    u->out = NULL;
    u->timer = NULL;
    return NULL;
  }
  h1_init(&u->res, H1_RESPONSE, &response_hooks, u);
  p->n_conns++;
  return u;
}

/* --- exchange lifecycle --- */

static void live_remove(mcpr_proxy *p, exchange *x) {
  LIST_REMOVE(x, link);
  p->n_live--;
}

/* A new exchange for the request just read on c (live, c's current). */
static exchange *exchange_new(cconn *c) {
  mcpr_proxy *p = c->p;
  h1_msg *m = &c->req;
  exchange *x = p->spare;
  if (x) {
    p->spare = x->next_spare;
    p->n_spare--;
    mcpr__buf request = x->request;
    memset(x, 0, sizeof *x);
    x->request = request;
    x->request.n = 0;
  } else if (!(x = calloc(1, sizeof *x))) {
    return NULL;
  }
  x->p = p;
  x->c = c;
  c->x = x;
  x->keep_alive = h1_keep_alive(m) && !p->draining;
  x->head_req = strcmp(h1_method(m), "HEAD") == 0;
  x->is_get = strcmp(h1_method(m), "GET") == 0;
  x->client_1_0 = h1_version_1_0(m);
  LIST_INSERT_HEAD(&p->live, x, link);
  p->n_live++;
  return x;
}

/* The request's path: its target without the query. */
static void request_path(const h1_msg *m, char path[static PATH_MAX_BYTES + 1]) {
  size_t n = m->target_len < PATH_MAX_BYTES ? m->target_len : PATH_MAX_BYTES;
  const char *q = memchr(h1_target(m), '?', n);
  if (q)
    n = (size_t)(q - h1_target(m));
  memcpy(path, h1_target(m), n);
  path[n] = '\0';
}

/* x is over: kept for a next request, or freed. */
static void exchange_free(mcpr_proxy *p, exchange *x) {
  if (p->n_spare >= SPARE_EXCHANGES) {
    mcpr__buf_release(&x->request);
    free(x);
    return;
  }
  if (x->request.cap > SPARE_REQUEST_BYTES)
    mcpr__buf_release(&x->request);
  x->next_spare = p->spare;
  p->spare = x;
  p->n_spare++;
}

static void wait_remove(mcpr_proxy *p, exchange *x) {
  exchange **pp = &p->waiting_head;
  exchange *prev = NULL;
  while (*pp && *pp != x) {
    prev = *pp;
    pp = &(*pp)->wait_next;
  }
  if (!*pp)
    return;
  *pp = x->wait_next;
  if (p->waiting_tail == x)
    p->waiting_tail = prev;
  x->waiting = false;
}

/* The exchange is over (whatever the client got was written, or it is
 * gone). The client connection goes on with its next request. */
static void finish(exchange *x, const char *error_code, const char *error_msg, const char *note) {
  mcpr_proxy *p = x->p;
  if (x->waiting)
    wait_remove(p, x);
  live_remove(p, x);
  cconn *c = x->c;
  bool alive = false;
  if (c) {
    c->x = NULL;
    if (p->draining)
      c->close_after = true;
    alive = client_flush(c); /* the client has its answer before the event is made */
  }
  obs_end(x->ox, x->status, error_code, error_msg, note, mono_us());
  exchange_free(p, x);
  if (alive)
    client_resume(c);
  if (p->draining && p->n_live == 0)
    event_base_loopexit(p->base, NULL);
}

/* Answer the client with the proxy's own error and finish. */
static void fail(exchange *x, int status, int rpc_code, const char *msg, const char *note) {
  x->status = status;
  char code[16];
  snprintf(code, sizeof code, "%d", rpc_code);
  if (x->c && !x->started)
    client_reply_rpc_error(x->c, status, obs_first_id(x->ox), rpc_code, msg, !x->keep_alive);
  finish(x, code, msg, note);
}

/* A response under way will not be completed: the client must not take a
 * cut stream for a whole one, so its connection is closed (a chunked one
 * is ended cleanly when the proxy itself stops it: abandon()). */
static void abort_client(exchange *x) {
  cconn *c = x->c;
  if (!c)
    return;
  x->c = NULL;
  c->x = NULL;
  client_close(c);
}

/* The upstream connection's part is over: back to the pool (kept open if
 * the answer allows), or closed. */
static void up_release(exchange *x, bool reusable) {
  uconn *u = x->u;
  if (!u)
    return;
  x->u = NULL;
  if (!reusable)
    uconn_close(u);
  else {
    h1_next(&u->res);
    u->reused = true;
    if (u->read_paused) {
      u->read_paused = false;
      event_add(u->rev, NULL);
    }
  }
  conn_release(x->p, u);
}

static void uconn_start(uconn *u);

/* The request into u's output (x->request is kept for one retry). */
static void queue_request(exchange *x, uconn *u) {
  evbuffer_add(u->out, x->request.p, x->request.n);
}

static void dispatch(exchange *x, uconn *u) {
  x->u = u;
  u->x = x;
  u->got_bytes = false;
  queue_request(x, u);
  x->sent_us = mono_us();
  obs_upstream_sent(x->ox, x->sent_us);
  uconn_start(u);
}

static void on_kick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mcpr_proxy *p = arg;
  while (p->waiting_head) {
    uconn *u = conn_acquire(p);
    if (!u)
      return;
    exchange *x = p->waiting_head;
    p->waiting_head = x->wait_next;
    if (!p->waiting_head)
      p->waiting_tail = NULL;
    x->waiting = false;
    dispatch(x, u);
  }
}

/* The upstream failed the exchange before or while answering. */
static void up_failed(exchange *x, bool timeout, const char *why) {
  mcpr_proxy *p = x->p;
  uconn *u = x->u;
  if (x->dispatching) {
    x->deferred = true;
    x->deferred_timeout = timeout;
    x->deferred_why = why;
    return;
  }
  /* A pooled connection the upstream had closed meanwhile: once more on a
   * fresh one (nothing of the answer was seen, so nothing was lost). */
  if (u && u->reused && !u->got_bytes && !timeout && !x->retried && x->c) {
    x->retried = true;
    uconn_close(u); /* empties u->out too */
    queue_request(x, u);
    uconn_start(u);
    return;
  }
  if (u) {
    x->u = NULL;
    uconn_close(u);
    conn_release(p, u);
  }
  if (x->started) {
    abort_client(x);
    p->stats.upstream_errors++;
    finish(x, "-32000", "upstream closed the response early", "upstream_closed");
  } else if (timeout) {
    p->stats.timeouts++;
    fail(x, 504, -32001, why, "timeout");
  } else {
    p->stats.upstream_errors++;
    fail(x, 502, -32000, why, "upstream_unreachable");
  }
}

/* The whole answer was read from the upstream. */
static void up_done(exchange *x) {
  uconn *u = x->u;
  bool reusable = u && h1_keep_alive(&u->res) && !x->close_delimited;
  up_release(x, reusable);
  cconn *c = x->c;
  if (c) {
    if (x->chunked_out)
      evbuffer_add(c->out, "0\r\n\r\n", 5);
    if (x->close_delimited || !x->keep_alive)
      c->close_after = true;
  }
  finish(x, NULL, NULL, NULL);
}

/* --- upstream connections: resolve, connect, write, read --- */

static void uconn_connect(uconn *u);
static bool up_flush(uconn *u);
static void request_timer(uconn *u);
static const char *tls_why(uconn *u, const char *what);
static void tls_start(uconn *u);
static void tls_handshake(uconn *u);

static void uconn_open_failed(uconn *u, const char *why) {
  exchange *x = u->x;
  if (x)
    up_failed(x, false, why);
  else
    uconn_close(u);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg) {
  uconn *u = arg;
  mcpr_proxy *p = u->p;
  u->dns = NULL;
  if (result == EVUTIL_EAI_CANCEL)
    return;
  if (result != 0 || !res) {
    if (res)
      evutil_freeaddrinfo(res);
    uconn_open_failed(u, "upstream host not found");
    return;
  }
  memcpy(&p->up_addr, res->ai_addr, res->ai_addrlen);
  p->up_addr_len = (socklen_t)res->ai_addrlen;
  p->up_addr_until_ms = mono_ms() + DNS_REUSE_MS;
  evutil_freeaddrinfo(res);
  uconn_connect(u);
}

/* Open the socket (the address is known) and start connecting. */
static void uconn_connect(uconn *u) {
  mcpr_proxy *p = u->p;
  int fd = socket(p->up_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    uconn_open_failed(u, "upstream unreachable (no socket)");
    return;
  }
  set_nodelay(fd);
  ev_free(u->rev);
  ev_free(u->wev);
  u->rev = event_new(p->base, fd, EV_READ | EV_PERSIST, on_up_read, u);
  u->wev = event_new(p->base, fd, EV_WRITE | EV_PERSIST, on_up_write, u);
  u->fd = fd;
  if (!u->rev || !u->wev) {
    uconn_open_failed(u, "proxy out of memory");
    return;
  }
  u->state = U_CONNECTING;
  int rc = connect(fd, (struct sockaddr *)&p->up_addr, p->up_addr_len);
  if (rc != 0 && errno != EINPROGRESS) {
    uconn_open_failed(u, "upstream unreachable");
    return;
  }
  struct timeval tv = ms_tv(p->o.connect_timeout_ms);
  evtimer_add(u->timer, &tv);
  event_add(u->wev, NULL); /* writable: connected (or failed) */
}

/* The request waits in u->out: send it on an open connection, or open one. */
static void uconn_start(uconn *u) {
  mcpr_proxy *p = u->p;
  if (u->state == U_OPEN) {
    request_timer(u);
    if (!up_flush(u))
      up_failed(u->x, false, u->ssl ? tls_why(u, "write") : "upstream unreachable");
    return;
  }
  if (u->state != U_CLOSED)
    return;
  if (p->up_numeric || (p->up_addr_until_ms && mono_ms() < p->up_addr_until_ms)) {
    uconn_connect(u);
    return;
  }
  u->state = U_RESOLVING;
  char port[16];
  snprintf(port, sizeof port, "%d", p->up_port);
  struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = EVUTIL_AI_ADDRCONFIG};
  struct evdns_getaddrinfo_request *r =
      evdns_getaddrinfo(p->dns, p->up_host, port, &hints, on_resolved, u);
  /* NULL: answered (or failed) already, from inside the call */
  if (r && u->state == U_RESOLVING)
    u->dns = r;
}

/* --- TLS to an https upstream: OpenSSL on the non-blocking socket, driven
 * by the same read and write events --- */

/* Why a handshake or a TLS read/write failed, in u->why. */
static const char *tls_why(uconn *u, const char *what) {
  long v = u->ssl ? SSL_get_verify_result(u->ssl) : X509_V_OK;
  unsigned long e = ERR_peek_last_error();
  if (v != X509_V_OK)
    snprintf(u->why, sizeof u->why, "upstream TLS certificate not accepted: %s",
             X509_verify_cert_error_string(v));
  else if (e)
    snprintf(u->why, sizeof u->why, "upstream TLS %s failed: %s", what,
             ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
  else
    snprintf(u->why, sizeof u->why, "upstream TLS %s failed", what);
  ERR_clear_error();
  return u->why;
}

static void tls_want(uconn *u, int err) {
  if (err == SSL_ERROR_WANT_WRITE) {
    if (!event_pending(u->wev, EV_WRITE, NULL))
      event_add(u->wev, NULL);
  } else if (event_pending(u->wev, EV_WRITE, NULL) &&
             (u->state == U_HANDSHAKE || evbuffer_get_length(u->out) == 0)) {
    event_del(u->wev); /* waiting to read: writable would wake us for nothing */
  }
}

static bool up_flush(uconn *u);
static void request_timer(uconn *u);

/* Go on with the handshake; once done the connection is open and the
 * waiting request is sent. */
static void tls_handshake(uconn *u) {
  ERR_clear_error();
  int rc = SSL_connect(u->ssl);
  if (rc == 1) {
    u->state = U_OPEN;
    event_del(u->timer);
    if (!u->x) {
      if (event_pending(u->wev, EV_WRITE, NULL))
        event_del(u->wev);
      return;
    }
    request_timer(u);
    if (!up_flush(u))
      up_failed(u->x, false, tls_why(u, "write"));
    return;
  }
  int err = SSL_get_error(u->ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    tls_want(u, err);
    return;
  }
  uconn_open_failed(u, tls_why(u, "handshake"));
}

static void tls_start(uconn *u) {
  mcpr_proxy *p = u->p;
  u->ssl = SSL_new(p->ssl_ctx);
  if (!u->ssl || SSL_set_fd(u->ssl, u->fd) != 1) {
    uconn_open_failed(u, "proxy out of memory");
    return;
  }
  SSL_set_connect_state(u->ssl);
  if (!p->up_numeric)
    SSL_set_tlsext_host_name(u->ssl, p->up_host);
  /* the certificate must name the host (or address) in the upstream URL */
  X509_VERIFY_PARAM *vp = SSL_get0_param(u->ssl);
  X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (p->up_numeric ? X509_VERIFY_PARAM_set1_ip_asc(vp, p->up_host) != 1
                    : X509_VERIFY_PARAM_set1_host(vp, p->up_host, 0) != 1) {
    uconn_open_failed(u, "proxy out of memory");
    return;
  }
  u->state = U_HANDSHAKE;
  event_add(u->rev, NULL);
  tls_handshake(u);
}

/* Write what u->out holds; false when the connection failed. */
static bool up_flush(uconn *u) {
  if (!u->ssl)
    return flush_out(u->fd, u->out, u->wev);
  while (evbuffer_get_length(u->out) > 0) {
    struct evbuffer_iovec v;
    if (evbuffer_peek(u->out, -1, NULL, &v, 1) < 1)
      break;
    ERR_clear_error();
    int n = SSL_write(u->ssl, v.iov_base, (int)(v.iov_len > INT32_MAX ? INT32_MAX : v.iov_len));
    if (n > 0) {
      evbuffer_drain(u->out, (size_t)n);
      continue;
    }
    int err = SSL_get_error(u->ssl, n);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      if (!event_pending(u->wev, EV_WRITE, NULL))
        event_add(u->wev, NULL);
      return true;
    }
    return false;
  }
  if (event_pending(u->wev, EV_WRITE, NULL))
    event_del(u->wev);
  return true;
}

static void request_timer(uconn *u) {
  struct timeval tv = ms_tv(u->p->o.request_timeout_ms);
  evtimer_add(u->timer, &tv);
}

static void on_up_write(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  uconn *u = arg;
  mcpr_proxy *p = u->p;
  if (u->state == U_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      uconn_open_failed(u, "upstream unreachable");
      return;
    }
    if (p->up_tls) { /* the connect timeout now covers the handshake too */
      tls_start(u);
      return;
    }
    u->state = U_OPEN;
    event_del(u->timer);
    event_add(u->rev, NULL);
    if (!u->x) { /* its exchange ended while connecting: keep it for the next */
      event_del(u->wev);
      return;
    }
    request_timer(u);
  }
  if (u->state == U_HANDSHAKE) {
    tls_handshake(u);
    return;
  }
  if (!up_flush(u) && u->x)
    up_failed(u->x, false, u->ssl ? tls_why(u, "write") : "upstream unreachable");
}

static void on_up_timer(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  uconn *u = arg;
  exchange *x = u->x;
  if (!x) {
    uconn_close(u);
    return;
  }
  bool connecting = u->state != U_OPEN;
  up_failed(x, true,
            u->state == U_HANDSHAKE ? "upstream TLS handshake timed out"
            : connecting            ? "upstream connect timed out"
                                    : "upstream timed out");
}

/* Bytes of the answer (n > 0) or its end (n == 0: closed, n < 0: failed).
 * false: the exchange is over (or failed); the caller stops. */
static bool up_bytes(uconn *u, const char *data, ssize_t n) {
  mcpr_proxy *p = u->p;
  exchange *x = u->x;
  if (n <= 0) {
    h1_eof(&u->res);
    if (u->res.done && !u->res.error)
      up_done(x);
    else
      up_failed(x, false, "upstream unreachable");
    return false;
  }
  if (!u->got_bytes) {
    u->got_bytes = true;
    event_del(u->timer); /* an answer is coming: no timeout from here on */
  }
  size_t len = (size_t)n;
  while (len > 0) {
    size_t used = h1_feed(&u->res, data, len);
    data += used;
    len -= used;
    if (u->res.error) {
      up_failed(x, false, "upstream sent a malformed response");
      return false;
    }
    if (!u->res.done)
      break;
    int status = h1_status(&u->res);
    if (status >= 100 && status < 200) { /* an interim answer: the final one follows */
      h1_next(&u->res);
      continue;
    }
    if (len > 0) /* bytes past the answer: not a connection to reuse */
      h1_no_reuse(&u->res);
    up_done(x);
    return false;
  }
  cconn *c = x->c;
  if (c && !client_flush(c))
    return false; /* the client went: so did the exchange */
  if (c && evbuffer_get_length(c->out) > CLIENT_BACKLOG_MAX_BYTES && !u->read_paused) {
    event_del(u->rev);
    u->read_paused = true;
    p->stats.backpressure_pauses++;
    return false;
  }
  return true;
}

static void on_up_read(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  uconn *u = arg;
  mcpr_proxy *p = u->p;
  if (u->state == U_HANDSHAKE) {
    tls_handshake(u);
    return;
  }
  if (u->ssl) {
    /* TLS keeps decrypted bytes of its own: read until it wants more */
    for (;;) {
      ERR_clear_error();
      int n = SSL_read(u->ssl, p->rbuf, (int)sizeof p->rbuf);
      if (n > 0) {
        if (!u->x) { /* idle, and the upstream spoke: not a connection to keep */
          uconn_close(u);
          return;
        }
        if (!up_bytes(u, p->rbuf, n))
          return;
        continue;
      }
      int err = SSL_get_error(u->ssl, n);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        tls_want(u, err); /* session tickets and the like: nothing to pass on */
        return;
      }
      if (!u->x) {
        uconn_close(u);
        return;
      }
      up_bytes(u, NULL, err == SSL_ERROR_ZERO_RETURN ? 0 : -1);
      return;
    }
  }
  ssize_t n = recv(fd, p->rbuf, sizeof p->rbuf, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return;
  if (!u->x) { /* idle: the upstream closed it (or spoke out of turn) */
    uconn_close(u);
    return;
  }
  up_bytes(u, p->rbuf, n);
}

/* --- heads: gathered in p->head, added to their evbuffer at once (one
 * evbuffer_add where there were a dozen, and no printf: callgrind counted
 * the two heads of an exchange at a sixth of the loop's instructions) --- */

/* inline: most pieces are literals of a known length, and a memcpy of a
 * constant two bytes is then a store, not a call */
static inline void head_add(mcpr_proxy *p, const char *s, size_t n) {
  if (!mcpr__buf_add(&p->head, s, n))
    p->head_ok = false;
}

static void head_str(mcpr_proxy *p, const char *s) { head_add(p, s, strlen(s)); }

static void head_uint(mcpr_proxy *p, uint64_t v, unsigned base) {
  char digits[24], *e = digits + sizeof digits, *d = e;
  do {
    *--d = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  head_add(p, d, (size_t)(e - d));
}

/* "Name: value\r\n" of a received header, as received. */
static void head_field(mcpr_proxy *p, const h1_msg *m, const h1_field *f) {
  mcpr__buf *b = &p->head;
  size_t n = (size_t)f->name_len + f->value_len + 4;
  if (b->n + n + 1 <= b->cap) { /* room for it all: two copies, not four adds */
    char *d = b->p + b->n;
    memcpy(d, h1_str(m, f->name), f->name_len);
    d += f->name_len;
    memcpy(d, ": ", 2);
    memcpy(d + 2, h1_str(m, f->value), f->value_len);
    d += 2 + f->value_len;
    memcpy(d, "\r\n", 3); /* and the NUL the buffer keeps */
    b->n += n;
    return;
  }
  head_add(p, h1_str(m, f->name), f->name_len);
  head_add(p, ": ", 2);
  head_add(p, h1_str(m, f->value), f->value_len);
  head_add(p, "\r\n", 2);
}

/* Hand the head gathered to out; false (and nothing added) when memory
 * ran out on the way. */
static bool head_flush(mcpr_proxy *p, struct evbuffer *out) {
  bool ok = p->head_ok && evbuffer_add(out, p->head.p, p->head.n) == 0;
  p->head.n = 0;
  p->head_ok = true;
  return ok;
}

/* The upstream's head: the client's is written at once. */
static int on_response_head(void *owner, h1_msg *m) {
  uconn *u = owner;
  exchange *x = u->x;
  mcpr_proxy *p = u->p;
  int status = h1_status(m);
  bool interim = status >= 100 && status < 200;
  if (!interim) {
    x->status = status;
    obs_response_start(x->ox, status, h1_known_header(m, H1_H_CONTENT_TYPE),
                       h1_known_header(m, H1_H_MCP_SESSION_ID),
                       mono_us());
  }
  cconn *c = x->c;
  if (!c)
    return x->head_req ? 1 : 0;
  if (interim && status != 103)
    return 0; /* 100 Continue is the proxy's to give (it read the body already) */
  /* reason-phrase = *( HTAB / SP / VCHAR / obs-text ): a control byte in
   * it could split the client's status line, so such a reason goes (it is
   * optional: RFC 9112 §4) */
  const char *reason = h1_reason(m);
  for (const unsigned char *r = (const unsigned char *)reason; *r; r++)
    if ((*r < 0x20 && *r != '\t') || *r == 0x7f) {
      reason = "";
      break;
    }
  head_add(p, "HTTP/1.1 ", 9);
  head_uint(p, (uint64_t)status, 10);
  head_add(p, " ", 1);
  head_str(p, *reason || status != 200 ? reason : "OK");
  head_add(p, "\r\n", 2);
  for (size_t i = 0; i < m->n_fields; i++) {
    const h1_field *f = &m->fields[i];
    if (h1_field_hop_by_hop(m, f) || f->known == H1_H_CONTENT_LENGTH)
      continue;
    head_field(p, m, f);
  }
  if (interim) {
    head_add(p, "\r\n", 2);
    return head_flush(p, c->out) ? 0 : -1;
  }
  uint64_t length = 0;
  bool has_length = h1_has_length(m, &length);
  bool no_body = x->head_req || status == 204 || status == 304;
  if (no_body) {
    const char *cl = h1_known_header(m, H1_H_CONTENT_LENGTH);
    if (cl && status != 204) {
      head_add(p, "Content-Length: ", 16);
      head_str(p, cl);
      head_add(p, "\r\n", 2);
    }
  } else if (has_length) {
    head_add(p, "Content-Length: ", 16);
    head_uint(p, length, 10);
    head_add(p, "\r\n", 2);
  } else if (!x->client_1_0) {
    head_add(p, "Transfer-Encoding: chunked\r\n", 28);
    x->chunked_out = true;
  } else {
    x->close_delimited = true;
  }
  if (!x->keep_alive || x->close_delimited || p->draining) {
    head_add(p, "Connection: close\r\n", 19);
    x->keep_alive = false;
  }
  head_add(p, "\r\n", 2);
  if (!head_flush(p, c->out))
    return -1;
  x->started = true;
  return x->head_req ? 1 : 0;
}

static int on_response_body(void *owner, const char *data, size_t len) {
  uconn *u = owner;
  exchange *x = u->x;
  cconn *c = x->c;
  if (c) {
    if (x->chunked_out) {
      mcpr_proxy *p = u->p;
      head_uint(p, len, 16);
      head_add(p, "\r\n", 2);
      head_add(p, data, len);
      head_add(p, "\r\n", 2);
      if (!head_flush(p, c->out))
        return -1;
    } else {
      evbuffer_add(c->out, data, len);
    }
  }
  obs_response_data(x->ox, data, len, mono_us());
  return 0;
}

/* --- requests --- */

static size_t body_limit(const mcpr_proxy *p) { return p->o.max_request_body; }

static int on_request_head(void *owner, h1_msg *m) {
  cconn *c = owner;
  uint64_t length = 0;
  if (h1_has_length(m, &length) && length > body_limit(c->p))
    return -1; /* 413, from client_parse(): the body is not read */
  const char *expect = h1_known_header(m, H1_H_EXPECT);
  if (expect && strcasecmp(expect, "100-continue") == 0)
    evbuffer_add(c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  c->body.n = 0;
  return 0;
}

static int on_request_body(void *owner, const char *data, size_t len) {
  cconn *c = owner;
  if (c->body.n + len > body_limit(c->p))
    return -1; /* a chunked body over the limit */
  return mcpr__buf_add(&c->body, data, len) ? 0 : -1;
}

static bool method_has_body(const char *m) {
  return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/* The upstream's copy of the request: its method and target (mapped onto
 * the upstream's path), end-to-end headers, Host, the body's length. */
static bool build_request(mcpr_proxy *p, exchange *x, cconn *c, const char *target) {
  h1_msg *m = &c->req;
  const char *q = memchr(target, '?', m->target_len);
  size_t plen = q ? (size_t)(q - target) : m->target_len;
  bool endpoint = (plen == 1 && target[0] == '/') ||
                  (plen == p->up_path_len && memcmp(target, p->up_path, plen) == 0);
  /* The MCP endpoint maps onto the upstream's path, with the client's
   * query; any other path (OAuth discovery under /.well-known/, ...) goes
   * to the upstream's origin unchanged. */
  head_str(p, h1_method(m));
  head_add(p, " ", 1);
  if (endpoint) {
    head_add(p, p->up_path, p->up_path_len);
    if (q)
      head_add(p, q, m->target_len - plen);
  } else {
    head_add(p, target, m->target_len);
  }
  head_add(p, " HTTP/1.1\r\nHost: ", 17);
  head_add(p, p->up_hostport, p->up_hostport_len);
  head_add(p, "\r\n", 2);
  for (size_t i = 0; i < m->n_fields; i++) {
    const h1_field *f = &m->fields[i];
    if (h1_field_hop_by_hop(m, f) || f->known == H1_H_HOST || f->known == H1_H_CONTENT_LENGTH ||
        f->known == H1_H_EXPECT)
      continue;
    head_field(p, m, f);
  }
  if (c->body.n || method_has_body(h1_method(m))) {
    head_add(p, "Content-Length: ", 16);
    head_uint(p, c->body.n, 10);
    head_add(p, "\r\n", 2);
  }
  head_add(p, "\r\n", 2);
  /* the head gathered becomes the request, and the request's old room
   * the next head's: nothing copied */
  bool ok = p->head_ok;
  mcpr__buf room = x->request;
  x->request = p->head;
  p->head = room;
  p->head.n = 0;
  p->head_ok = true;
  return ok && mcpr__buf_add(&x->request, c->body.p, c->body.n);
}

static void handle_request(cconn *c) {
  mcpr_proxy *p = c->p;
  h1_msg *m = &c->req;
  p->stats.requests++;
  int64_t t0 = mono_us();
  const char *target = h1_target(m);
  bool keep_alive = h1_keep_alive(m) && !p->draining;
  if (m->target_len > PATH_MAX_BYTES) {
    client_reply_rpc_error(c, 414, NULL, -32600, "request URI too long", !keep_alive);
    return;
  }
  exchange *x = exchange_new(c);
  if (!x) {
    client_reply_rpc_error(c, 503, NULL, -32603, "proxy out of memory", true);
    return;
  }
  char path[PATH_MAX_BYTES + 1];
  request_path(m, path);
  int64_t ts_ms = mcpr_now_ms();
  const char *sid = h1_known_header(m, H1_H_MCP_SESSION_ID);
  bool origin_ok = origin_allowed(p, h1_known_header(m, H1_H_ORIGIN));
  if (!origin_ok || p->draining) {
    x->ox = obs_begin(p->obs, h1_method(m), path, sid, c->body.p, c->body.n, ts_ms, t0);
    if (!origin_ok)
      fail(x, 403, -32600, "origin not allowed", NULL);
    else
      fail(x, 503, -32000, "proxy is shutting down", NULL);
    return;
  }
  if (!build_request(p, x, c, target)) {
    x->ox = obs_begin(p->obs, h1_method(m), path, sid, c->body.p, c->body.n, ts_ms, t0);
    fail(x, 503, -32603, "proxy out of memory", NULL);
    return;
  }
  uconn *u = conn_acquire(p);
  if (u) {
    x->dispatching = true;
    dispatch(x, u);
    x->dispatching = false;
  } else {
    x->waiting = true;
    if (p->waiting_tail)
      p->waiting_tail->wait_next = x;
    else
      p->waiting_head = x;
    p->waiting_tail = x;
  }
  /* Observed once it is on its way: parsing never holds a request back. */
  x->ox = obs_begin(p->obs, h1_method(m), path, sid, c->body.p, c->body.n, ts_ms, t0);
  if (x->sent_us)
    obs_upstream_sent(x->ox, x->sent_us);
  if (x->deferred)
    up_failed(x, x->deferred_timeout, x->deferred_why);
}

/* A request the parser refused: the proxy's own answer, then close. */
static void refuse_request(cconn *c) {
  mcpr_proxy *p = c->p;
  h1_msg *m = &c->req;
  if (m->error == H1_E_ABORTED && m->head_done) {
    /* over max_request_body: an exchange of its own, so the refusal is an
     * event (its body was not read, so it has no JSON-RPC method) */
    p->stats.requests++;
    int64_t t0 = mono_us();
    exchange *x = exchange_new(c);
    if (x) {
      x->keep_alive = false;
      char path[PATH_MAX_BYTES + 1];
      request_path(m, path);
      x->ox = obs_begin(p->obs, h1_method(m), path, h1_known_header(m, H1_H_MCP_SESSION_ID), NULL, 0,
                        mcpr_now_ms(), t0);
      fail(x, 413, -32600, "request body larger than max_request_body_size", NULL);
      return;
    }
    client_reply_rpc_error(c, 413, NULL, -32600, "request body larger than max_request_body_size",
                           true);
  } else if (m->error == H1_E_HEAD_SIZE) {
    client_reply_rpc_error(c, 431, NULL, -32600, "request head too large", true);
  } else if (m->error == H1_E_NOMEM) {
    client_reply_rpc_error(c, 503, NULL, -32603, "proxy out of memory", true);
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "bad HTTP request: %s", h1_error_text(m));
    client_reply_rpc_error(c, 400, NULL, -32600, msg, true);
  }
  client_flush(c);
}

/* Parse what the client sent, one request at a time: each is handled
 * before the next is looked at; what follows a request in flight waits in
 * c->in. */
static void client_parse_(cconn *c, const char *data, size_t len);

static void client_parse(cconn *c, const char *data, size_t len) {
  c->busy++;
  client_parse_(c, data, len);
  if (--c->busy == 0 && c->want_close) {
    c->want_close = false;
    client_close(c);
  }
}

static void client_parse_(cconn *c, const char *data, size_t len) {
  while (len > 0 && !c->x && !c->close_after && !c->want_close) {
    size_t used = h1_feed(&c->req, data, len);
    data += used;
    len -= used;
    if (c->req.error) {
      c->close_after = true;
      refuse_request(c); /* may close c */
      return;
    }
    if (!c->req.done)
      break;
    handle_request(c);
    h1_next(&c->req);
    c->body.n = 0;
    if (c->x && len > 0) {
      evbuffer_add(c->in, data, len);
      len = 0;
    }
    if (!c->x && !client_flush(c))
      return;
  }
  if (!c->x && !c->close_after)
    client_flush(c);
}

/* The exchange ended: parse what the client sent meanwhile. */
static void client_resume(cconn *c) {
  if (c->x || c->closed)
    return;
  if (c->close_after) {
    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    return;
  }
  size_t n = evbuffer_get_length(c->in);
  if (n > 0) {
    /* parse a private copy: c->in receives what is left */
    char *copy = malloc(n);
    if (copy) {
      evbuffer_remove(c->in, copy, n);
      client_parse(c, copy, n);
      free(copy);
    }
  }
  if (!c->closed && c->read_paused && evbuffer_get_length(c->in) <= CLIENT_INPUT_MAX_BYTES) {
    c->read_paused = false;
    event_add(c->rev, NULL);
  }
}

/* The client hung up (or its socket failed). */
static void client_gone(cconn *c) {
  exchange *x = c->x;
  if (x) {
    x->c = NULL;
    c->x = NULL;
    if (x->u) {
      /* an answer under way cannot be reused: its connection goes */
      uconn *u = x->u;
      x->u = NULL;
      uconn_close(u);
      conn_release(c->p, u);
    }
    if (!x->started)
      x->status = 499;
    client_close(c);
    finish(x, NULL, NULL, "client closed the connection");
    return;
  }
  client_close(c);
}

/* Every second: close client connections idle past the limit. */
static void on_sweep(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mcpr_proxy *p = arg;
  int64_t now = mono_ms();
  for (cconn *c = LIST_FIRST(&p->clients), *next; c; c = next) {
    next = LIST_NEXT(c, link);
    if (!c->x && now - c->last_active_ms > CLIENT_IDLE_TIMEOUT_S * 1000LL &&
        evbuffer_get_length(c->out) == 0)
      client_close(c);
  }
}

/* --- admin --- */

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

static void on_accept_resume(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mcpr_proxy *p = arg;
  /* p->listener is NULL once draining freed it */
  if (p->listener)
    evconnlistener_enable(p->listener);
  if (p->admin_bound)
    evconnlistener_enable(evhttp_bound_socket_get_listener(p->admin_bound));
}

/* EMFILE and the like: connections in flight keep being served, new ones
 * wait in the kernel's backlog until descriptors are free again. */
static void pause_accepting(mcpr_proxy *p, struct evconnlistener *lev) {
  int e = EVUTIL_SOCKET_ERROR();
  if (!(e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM))
    return;
  evconnlistener_disable(lev);
  p->stats.accept_pauses++;
  struct timeval tv = ms_tv(ACCEPT_PAUSE_MS);
  if (evtimer_add(p->accept_ev, &tv) != 0)
    evconnlistener_enable(lev);
}

static void on_accept_error(struct evconnlistener *lev, void *arg) { pause_accepting(arg, lev); }

/*
 * libevent hands an accept error to the listener's error callback with the
 * listener's own user data, which for evhttp's (the admin server) is the
 * evhttp: so which proxy it belongs to is looked up here. One proxy per
 * evhttp, a few per process at most; only the loop's thread and new/free
 * touch this.
 */
#define MAX_PROXIES 8
static struct {
  struct evhttp *http;
  mcpr_proxy *p;
} admin_owners[MAX_PROXIES];

static bool admin_owner_set(struct evhttp *http, mcpr_proxy *p) {
  for (size_t i = 0; i < MAX_PROXIES; i++)
    if (admin_owners[i].http == (p ? NULL : http)) {
      admin_owners[i].http = p ? http : NULL;
      admin_owners[i].p = p;
      return true;
    }
  return false;
}

static void on_admin_accept_error(struct evconnlistener *lev, void *http) {
  for (size_t i = 0; i < MAX_PROXIES; i++)
    if (http && admin_owners[i].http == http)
      pause_accepting(admin_owners[i].p, lev);
}

/* --- setup, run, drain --- */

static int socket_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
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
  p->up_tls = scheme && strcasecmp(scheme, "https") == 0;
  if (!scheme || (strcasecmp(scheme, "http") != 0 && !p->up_tls)) {
    st = mcpr_error_set(err, MCPR_EINVAL, "upstream URL '%s': want http:// or https://",
                        p->upstream_url);
    goto out;
  }
  if (!host || !*host || strlen(host) >= sizeof p->up_host) {
    st = mcpr_error_set(err, MCPR_EINVAL, "upstream URL '%s' has no host", p->upstream_url);
    goto out;
  }
  snprintf(p->up_host, sizeof p->up_host, "%s", host);
  p->up_port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : p->up_tls ? 443 : 80;
  bool v6 = strchr(host, ':') != NULL;
  snprintf(p->up_hostport, sizeof p->up_hostport, "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
           p->up_port);
  p->up_hostport_len = strlen(p->up_hostport);
  p->up_path = strdup(path && *path ? path : "/");
  if (!p->up_path) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto out;
  }
  p->up_path_len = strlen(p->up_path);
  /* A literal address is used as it is; a name is looked up when a
   * connection is opened (without blocking the loop), and again after
   * DNS_REUSE_MS. */
  struct sockaddr_in *a4 = (struct sockaddr_in *)&p->up_addr;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&p->up_addr;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)p->up_port);
    p->up_addr_len = sizeof *a4;
    p->up_numeric = true;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)p->up_port);
    p->up_addr_len = sizeof *a6;
    p->up_numeric = true;
  }
out:
  evhttp_uri_free(u);
  return st;
}

/* Bind and listen on listen_addr:port (a literal address or a name). */
static mcpr_status listen_on(mcpr_proxy *p, int port, mcpr_error *err) {
  struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV};
  struct evutil_addrinfo *res = NULL;
  char ports[16];
  snprintf(ports, sizeof ports, "%d", port);
  int rc = evutil_getaddrinfo(p->listen_addr, ports, &hints, &res);
  if (rc != 0 || !res)
    return mcpr_error_set(err, MCPR_EINVAL, "cannot listen on %s:%d: %s", p->listen_addr, port,
                          evutil_gai_strerror(rc));
  p->listener = evconnlistener_new_bind(
      p->base, on_accept, p, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
      1024, res->ai_addr, (int)res->ai_addrlen);
  int e = errno;
  evutil_freeaddrinfo(res);
  if (!p->listener)
    return mcpr_error_set(err, MCPR_EIO, "cannot listen on %s:%d: %s", p->listen_addr, port,
                          strerror(e));
  evconnlistener_set_error_cb(p->listener, on_accept_error);
  p->port = socket_port(evconnlistener_get_fd(p->listener));
  return MCPR_OK;
}

static void on_signal(evutil_socket_t sig, short what, void *arg);

mcpr_status mcpr_proxy_new(mcpr_proxy **out, const mcpr_proxy_options *o, mcpr_error *err) {
  *out = NULL;
  mcpr_status st = MCPR_OK;
  if (!o->name || !*o->name || !o->upstream_url || !*o->upstream_url)
    return mcpr_error_set(err, MCPR_EINVAL, "the proxy needs a name and an upstream URL");
  if (o->max_concurrent_upstream < 1 || o->max_request_body < 1 || o->max_response_body < 1)
    return mcpr_error_set(err, MCPR_EINVAL, "proxy limits must be positive");
  const char *why = NULL;
  if (!h1_load(&why)) /* now, not as a 400 for every request */
    return mcpr_error_set(err, MCPR_EIO,
                          "cannot load the proxy's HTTP/1.x parser (Debian package "
                          "libh2o-evloop0.13): %s",
                          why ? why : "unknown error");
  mcpr_proxy *p = calloc(1, sizeof *p);
  if (p)
    p->head_ok = true;
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
  if (p->up_tls) {
    /* The system's trust store (SSL_CERT_FILE / SSL_CERT_DIR override it,
     * as for every OpenSSL program), TLS 1.2 at least, HTTP/1.1 by ALPN. */
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    p->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!p->ssl_ctx || SSL_CTX_set_default_verify_paths(p->ssl_ctx) != 1 ||
        SSL_CTX_set_min_proto_version(p->ssl_ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_alpn_protos(p->ssl_ctx, alpn, sizeof alpn) != 0) {
      st = mcpr_error_set(err, MCPR_ENOMEM, "cannot set up TLS for the upstream");
      goto fail;
    }
    SSL_CTX_set_verify(p->ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_mode(p->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  }
  p->obs = obs_new(p->name, p->upstream_url, o->fanout, o->max_response_body);
  p->base = event_base_new();
  p->kick_ev = p->base ? event_new(p->base, -1, 0, on_kick, p) : NULL;
  p->accept_ev = p->base ? evtimer_new(p->base, on_accept_resume, p) : NULL;
  p->sweep_ev = p->base ? event_new(p->base, -1, EV_PERSIST, on_sweep, p) : NULL;
  if (!p->obs || !p->kick_ev || !p->accept_ev || !p->sweep_ev) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "cannot set up the event loop");
    goto fail;
  }
  if (!p->up_numeric) {
    /* resolv.conf and /etc/hosts, as the C library would read them */
    p->dns = evdns_base_new(p->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                         EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (!p->dns)
      p->dns = evdns_base_new(p->base, 0); /* no resolv.conf: /etc/hosts at least */
    if (p->dns)
      evdns_base_load_hosts(p->dns, NULL);
    if (!p->dns) {
      st = mcpr_error_set(err, MCPR_ENOMEM, "cannot set up name lookups");
      goto fail;
    }
  }
  struct timeval sweep = {1, 0};
  event_add(p->sweep_ev, &sweep);
  if ((st = listen_on(p, o->port, err)) != MCPR_OK)
    goto fail;
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
    if (p->admin_bound) {
      p->admin_port = socket_port(evhttp_bound_socket_get_fd(p->admin_bound));
      if (!admin_owner_set(p->admin, p)) {
        st = mcpr_error_set(err, MCPR_EINVAL, "too many proxies in one process");
        goto fail;
      }
      evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(p->admin_bound),
                                  on_admin_accept_error);
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
 * client's response ended (a chunked one cleanly: an SSE client
 * reconnects and resumes) or answered with a 503. */
static void abandon(exchange *x, const char *note) {
  if (x->u) {
    uconn *u = x->u;
    x->u = NULL;
    uconn_close(u);
    conn_release(x->p, u);
  }
  if (x->started) {
    if (x->c) {
      if (x->chunked_out)
        evbuffer_add(x->c->out, "0\r\n\r\n", 5);
      x->c->close_after = true;
    }
    finish(x, NULL, NULL, note);
  } else {
    x->keep_alive = false;
    fail(x, 503, -32000, "proxy is shutting down", note);
  }
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  mcpr_proxy *p = arg;
  p->draining = false; /* finish() must not exit the loop mid-way */
  while (!LIST_EMPTY(&p->live)) {
    p->stats.aborted_at_drain++;
    abandon(LIST_FIRST(&p->live), "drain_timeout");
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
  if (p->listener) {
    evconnlistener_free(p->listener); /* stop accepting */
    p->listener = NULL;
  }
  /* Idle keep-alive clients are closed now; GET streams never end by
   * themselves: they are ended now (clients reconnect and resume). */
  for (cconn *c = LIST_FIRST(&p->clients), *next; c; c = next) {
    next = LIST_NEXT(c, link);
    if (!c->x && !c->req.started && evbuffer_get_length(c->out) == 0)
      client_close(c);
  }
  for (exchange *x = LIST_FIRST(&p->live), *next; x; x = next) {
    next = LIST_NEXT(x, link);
    if (x->is_get && x->started)
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
  while (!LIST_EMPTY(&p->live))
    abandon(LIST_FIRST(&p->live), "proxy stopped");
  while (!LIST_EMPTY(&p->clients))
    client_close(LIST_FIRST(&p->clients));
  ev_free(p->sigint_ev);
  ev_free(p->sigterm_ev);
  ev_free(p->drain_ev);
  ev_free(p->sighup_ev);
  ev_free(p->kick_ev);
  ev_free(p->accept_ev);
  ev_free(p->sweep_ev);
  if (p->listener)
    evconnlistener_free(p->listener);
  if (p->admin)
    admin_owner_set(p->admin, NULL);
  for (int i = 0; i < p->n_conns; i++) {
    uconn *u = &p->conns[i];
    uconn_close(u);
    ev_free(u->rev);
    ev_free(u->wev);
    event_free(u->timer);
    evbuffer_free(u->out);
    h1_free(&u->res);
  }
  if (p->dns)
    evdns_base_free(p->dns, 0);
  if (p->ssl_ctx)
    SSL_CTX_free(p->ssl_ctx);
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
  mcpr__buf_release(&p->head);
  for (exchange *x = p->spare, *next; x; x = next) {
    next = x->next_spare;
    mcpr__buf_release(&x->request);
    free(x);
  }
  free(p);
}

/*
 * transport.c — MCP Streamable HTTP (2025-06-18) on libevent's evhttp.
 *
 * One thread, one event loop; nothing blocks. Three kinds of HTTP work:
 *
 *  - A POST is an *exchange*: its JSON-RPC messages are answered by
 *    methods.c. Notifications and client responses alone get 202. Requests
 *    get one JSON body (an array for a batch) — unless one of them is the
 *    `slow` tool and the client accepts text/event-stream: then the reply is
 *    an SSE stream carrying the ready responses, the slow call's progress
 *    notifications on a timer, and its result, each its own event with an
 *    `id:`; the stream ends when the last response is out. A client that
 *    accepts only JSON still gets the slow result, as JSON, when it is done.
 *  - A GET (Accept: text/event-stream) opens the session's server→client
 *    stream: an SSE comment every keepalive_ms, and whatever the `notify`
 *    tool sends. One per session (a second one is 409); it ends with the
 *    session (DELETE, eviction) or when the client goes away.
 *  - A DELETE ends the session.
 *
 * Ownership of a streamed reply. evhttp owns each request until the reply
 * ends — except when the client disconnects in the middle of a streamed
 * reply: then evhttp detaches the request from the dying connection, calls
 * the connection's close callback, and the request is ours to free. So each
 * exchange or stream sets the close callback while it streams and clears it
 * before it ends the reply; the callback frees the request when it finds it
 * detached. At shutdown the callbacks are cleared first and evhttp_free
 * takes the requests with the connections.
 *
 * evhttp gives every connection a 50 s read timeout, and reading stays
 * enabled while a reply streams (that is how a disconnect is noticed), so a
 * quiet client would be cut off mid-stream: streams drop the read timeout
 * while they run and restore the default when they end.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "sample.h"

#define ALL_HTTP_METHODS 0x1ff
#define WRITE_TIMEOUT_S 50

typedef struct exchange exchange;

typedef struct slow_call {
  exchange *ex;
  json_t *id;    /* the request's id */
  json_t *token; /* params._meta.progressToken, or NULL */
  int ms, steps, step;
  struct event *timer;
  struct slow_call *next;
} slow_call;

struct exchange {
  ss_server *srv;
  struct evhttp_request *req;
  ss_session *session; /* a reference, or NULL (initialize failed early) */
  bool new_session;    /* answer carries Mcp-Session-Id */
  bool batch;          /* the body was an array */
  bool accept_json, accept_sse;
  bool sse;            /* the reply is an SSE stream (started) */
  bool invalid_single; /* one message, not valid JSON-RPC: 400 */
  json_t *ready;       /* responses not yet sent (JSON mode: all of them) */
  slow_call *calls;    /* running slow calls */
  char summary[96];    /* for the log line */
  exchange *prev, *next;
};

struct ss_stream {
  ss_server *srv;
  ss_session *session; /* a reference */
  struct evhttp_request *req;
  struct event *keepalive;
};

struct ss_server {
  struct event_base *base;
  struct evhttp *http;
  const ss_config *config;
  ss_sessions *sessions;
  exchange *exchanges; /* running exchanges (waiting on slow calls) */
  int port;
  bool shutting_down;
};

static void slog(const ss_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void slog(const ss_server *srv, const char *fmt, ...) {
  if (srv->config->quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ---------- HTTP helpers ---------- */

static const char *header(struct evhttp_request *req, const char *name) {
  return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

static void set_header(struct evhttp_request *req, const char *name, const char *value) {
  evhttp_add_header(evhttp_request_get_output_headers(req), name, value);
}

static const char *reason_of(int status) {
  switch (status) {
  case 200: return "OK";
  case 202: return "Accepted";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 406: return "Not Acceptable";
  case 409: return "Conflict";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

/* Replies with msg as the JSON body (msg is stolen; NULL: no body). */
static void reply_json(struct evhttp_request *req, int status, json_t *msg) {
  struct evbuffer *body = NULL;
  char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
  json_decref(msg);
  if (text) {
    body = evbuffer_new();
    if (body)
      evbuffer_add(body, text, strlen(text));
    set_header(req, "Content-Type", "application/json");
  }
  evhttp_send_reply(req, status, reason_of(status), body);
  evbuffer_free(body);
  free(text);
}

static const char *command_name(struct evhttp_request *req) {
  switch (evhttp_request_get_command(req)) {
  case EVHTTP_REQ_GET: return "GET";
  case EVHTTP_REQ_POST: return "POST";
  case EVHTTP_REQ_DELETE: return "DELETE";
  case EVHTTP_REQ_HEAD: return "HEAD";
  case EVHTTP_REQ_PUT: return "PUT";
  case EVHTTP_REQ_OPTIONS: return "OPTIONS";
  case EVHTTP_REQ_PATCH: return "PATCH";
  default: return "other";
  }
}

/* HTTP-level errors carry a JSON-RPC error body, as the reference SDKs do,
 * so a client can show why. */
static void reply_error(ss_server *srv, struct evhttp_request *req, int status,
                        const char *message) {
  slog(srv, "%s %s -> %d %s", command_name(req), evhttp_request_get_uri(req), status, message);
  reply_json(req, status, ss_error(NULL, -32000, message));
}

static bool contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++)
    if (strncasecmp(hay, needle, n) == 0)
      return true;
  return false;
}

/* Accept negotiation: a missing header accepts anything; q-values are not
 * weighed (clients send both types or one). */
static void parse_accept(const char *accept, bool *json, bool *sse) {
  if (!accept || strstr(accept, "*/*")) {
    *json = *sse = true;
    return;
  }
  *json = contains_nocase(accept, "application/json") || contains_nocase(accept, "application/*");
  *sse = contains_nocase(accept, "text/event-stream") || contains_nocase(accept, "text/*");
}

/* Browsers send Origin; a page on another host must not reach a server on
 * loopback (DNS rebinding), as the spec requires servers to check. */
static bool origin_allowed(const char *origin) {
  if (!origin)
    return true;
  const char *host = strstr(origin, "://");
  if (!host)
    return false;
  host += 3;
  static const char *const local[] = {"localhost", "127.0.0.1", "[::1]"};
  for (size_t i = 0; i < sizeof local / sizeof *local; i++) {
    size_t n = strlen(local[i]);
    if (strncasecmp(host, local[i], n) == 0 && (host[n] == '\0' || host[n] == ':' ||
                                                 host[n] == '/'))
      return true;
  }
  return false;
}

/* jansson nests up to 2048 levels; hostile bodies get far less. */
static bool json_depth_ok(const char *p, size_t len, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < len; i++) {
    char c = p[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return false;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return true;
}

/* A streamed reply must not be cut by the idle read timeout (see top). */
static void stream_timeouts(struct evhttp_request *req, bool streaming) {
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  if (!evcon)
    return;
  if (streaming) {
    struct timeval write_tv = {WRITE_TIMEOUT_S, 0};
    bufferevent_set_timeouts(evhttp_connection_get_bufferevent(evcon), NULL, &write_tv);
  } else {
    evhttp_connection_set_timeout_tv(evcon, NULL);
  }
}

static void start_sse(struct evhttp_request *req) {
  set_header(req, "Content-Type", "text/event-stream");
  set_header(req, "Cache-Control", "no-cache");
  evhttp_send_reply_start(req, 200, "OK");
  stream_timeouts(req, true);
}

/* One SSE event; its id is unique within the session (resumption ids). */
static void sse_send(struct evhttp_request *req, ss_session *session, json_t *msg) {
  char *text = json_dumps(msg, JSON_COMPACT);
  struct evbuffer *buf = evbuffer_new();
  if (text && buf) {
    /* Compact JSON has no raw newline, so one data: line holds it. */
    evbuffer_add_printf(buf, "id: %" PRIu64 "\nevent: message\ndata: %s\n\n",
                        ++session->next_event_id, text);
    evhttp_send_reply_chunk(req, buf);
  }
  if (buf)
    evbuffer_free(buf);
  free(text);
}

static void detach_closecb(struct evhttp_request *req) {
  struct evhttp_connection *evcon = evhttp_request_get_connection(req);
  if (evcon)
    evhttp_connection_set_closecb(evcon, NULL, NULL);
}

/* ---------- GET streams ---------- */

static void stream_free(ss_stream *st) {
  if (st->keepalive)
    event_free(st->keepalive);
  st->session->stream = NULL;
  ss_session_unref(st->session);
  free(st);
}

/* Ends the stream from our side: the reply is finished cleanly unless the
 * server is going down (then evhttp_free takes the request). */
static void stream_close(ss_stream *st) {
  detach_closecb(st->req);
  if (!st->srv->shutting_down) {
    stream_timeouts(st->req, false);
    evhttp_send_reply_end(st->req);
  }
  stream_free(st);
}

static void stream_gone(struct evhttp_connection *evcon, void *arg) {
  ss_stream *st = arg;
  (void)evcon;
  slog(st->srv, "GET stream of session %.8s closed by the client", st->session->id);
  if (!evhttp_request_get_connection(st->req))
    evhttp_request_free(st->req);
  stream_free(st);
}

static void stream_keepalive(evutil_socket_t fd, short what, void *arg) {
  ss_stream *st = arg;
  (void)fd;
  (void)what;
  struct evbuffer *buf = evbuffer_new();
  if (!buf)
    return;
  evbuffer_add(buf, ": keepalive\n\n", 13);
  evhttp_send_reply_chunk(st->req, buf);
  evbuffer_free(buf);
}

bool ss_session_send(ss_server *srv, ss_session *session, json_t *msg) {
  (void)srv;
  if (!msg)
    return false;
  if (session->stream) {
    sse_send(session->stream->req, session, msg);
    json_decref(msg);
    return true;
  }
  if (json_array_size(session->backlog) >= SS_MAX_BACKLOG)
    json_array_remove(session->backlog, 0);
  json_array_append_new(session->backlog, msg);
  return false;
}

static ss_session *session_of(ss_server *srv, struct evhttp_request *req, int *status,
                              const char **why) {
  const char *id = header(req, "Mcp-Session-Id");
  if (!id) {
    *status = 400;
    *why = "Bad Request: Mcp-Session-Id header is required";
    return NULL;
  }
  ss_session *s = ss_sessions_find(srv->sessions, id);
  if (!s) {
    *status = 404;
    *why = "Not Found: unknown or ended session";
  }
  return s;
}

static void handle_get(ss_server *srv, struct evhttp_request *req) {
  bool json, sse;
  parse_accept(header(req, "Accept"), &json, &sse);
  if (!sse) {
    reply_error(srv, req, 406, "Not Acceptable: GET opens a text/event-stream");
    return;
  }
  int status;
  const char *why;
  ss_session *s = session_of(srv, req, &status, &why);
  if (!s) {
    reply_error(srv, req, status, why);
    return;
  }
  if (s->stream) {
    reply_error(srv, req, 409, "Conflict: this session already has a GET stream");
    return;
  }
  ss_stream *st = calloc(1, sizeof *st);
  if (!st) {
    reply_error(srv, req, 503, "Service Unavailable: out of memory");
    return;
  }
  st->srv = srv;
  st->req = req;
  st->session = s;
  ss_session_ref(s);
  s->stream = st;
  st->keepalive = event_new(srv->base, -1, EV_PERSIST, stream_keepalive, st);
  if (st->keepalive) {
    struct timeval tv = {srv->config->keepalive_ms / 1000, (srv->config->keepalive_ms % 1000) * 1000};
    event_add(st->keepalive, &tv);
  }
  start_sse(req);
  evhttp_connection_set_closecb(evhttp_request_get_connection(req), stream_gone, st);
  slog(srv, "GET %s -> 200 stream for session %.8s", evhttp_request_get_uri(req), s->id);

  size_t n = json_array_size(s->backlog);
  for (size_t i = 0; i < n; i++)
    sse_send(req, s, json_array_get(s->backlog, i));
  json_array_clear(s->backlog);
}

/* The table calls this when a session ends, for whatever reason. */
static void session_ended(ss_session *s, void *arg) {
  (void)arg;
  if (s->stream)
    stream_close(s->stream);
}

static void handle_delete(ss_server *srv, struct evhttp_request *req) {
  int status;
  const char *why;
  ss_session *s = session_of(srv, req, &status, &why);
  if (!s) {
    reply_error(srv, req, status, why);
    return;
  }
  slog(srv, "DELETE %s -> 200 session %.8s ended", evhttp_request_get_uri(req), s->id);
  ss_sessions_end(srv->sessions, s);
  evhttp_send_reply(req, 200, "OK", NULL);
}

/* ---------- POST exchanges ---------- */

static void exchange_free(exchange *ex) {
  while (ex->calls) {
    slow_call *c = ex->calls;
    ex->calls = c->next;
    if (c->timer)
      event_free(c->timer);
    json_decref(c->id);
    json_decref(c->token);
    free(c);
  }
  if (ex->prev)
    ex->prev->next = ex->next;
  else if (ex->srv->exchanges == ex)
    ex->srv->exchanges = ex->next;
  if (ex->next)
    ex->next->prev = ex->prev;
  json_decref(ex->ready);
  ss_session_unref(ex->session);
  free(ex);
}

static void exchange_gone(struct evhttp_connection *evcon, void *arg) {
  exchange *ex = arg;
  (void)evcon;
  slog(ex->srv, "POST %s: client went away before the answer (%s)", ex->srv->config->path,
       ex->summary);
  if (!evhttp_request_get_connection(ex->req))
    evhttp_request_free(ex->req);
  exchange_free(ex);
}

/* Sends what is ready and, when nothing is running any more, ends the reply
 * and frees the exchange. */
static void exchange_flush(exchange *ex) {
  if (ex->sse) {
    size_t n = json_array_size(ex->ready);
    for (size_t i = 0; i < n; i++)
      sse_send(ex->req, ex->session, json_array_get(ex->ready, i));
    json_array_clear(ex->ready);
  }
  if (ex->calls)
    return;

  detach_closecb(ex->req);
  if (ex->sse) {
    stream_timeouts(ex->req, false);
    evhttp_send_reply_end(ex->req);
    slog(ex->srv, "POST %s -> 200 sse (%s)", ex->srv->config->path, ex->summary);
  } else if (json_array_size(ex->ready) == 0) {
    /* Every request was cancelled: nothing to answer. */
    evhttp_send_reply(ex->req, 202, "Accepted", NULL);
    slog(ex->srv, "POST %s -> 202 (%s)", ex->srv->config->path, ex->summary);
  } else {
    if (ex->new_session)
      set_header(ex->req, "Mcp-Session-Id", ex->session->id);
    int status = ex->invalid_single ? 400 : 200;
    json_t *body = ex->batch ? json_incref(ex->ready) : json_incref(json_array_get(ex->ready, 0));
    reply_json(ex->req, status, body);
    slog(ex->srv, "POST %s -> %d json (%s)", ex->srv->config->path, status, ex->summary);
  }
  exchange_free(ex);
}

static void slow_remove(slow_call *c) {
  slow_call **pp = &c->ex->calls;
  while (*pp != c)
    pp = &(*pp)->next;
  *pp = c->next;
  if (c->timer)
    event_free(c->timer);
  json_decref(c->id);
  json_decref(c->token);
  free(c);
}

static void slow_tick(evutil_socket_t fd, short what, void *arg) {
  slow_call *c = arg;
  exchange *ex = c->ex;
  (void)fd;
  (void)what;
  c->step++;
  if (ex->sse) {
    json_t *note = NULL;
    char text[64];
    snprintf(text, sizeof text, "slow: step %d of %d", c->step, c->steps);
    /* Progress only for a token the client gave; otherwise a log message
     * (when its level allows), so the stream still shows interleaving. */
    if (c->token)
      note = ss_notification("notifications/progress",
                             json_pack("{s:O, s:i, s:i, s:s}", "progressToken", c->token,
                                       "progress", c->step, "total", c->steps, "message", text));
    else if (ex->session->log_level <= SS_LOG_INFO)
      note = ss_notification("notifications/message", json_pack("{s:s, s:s, s:s}", "level",
                                                                 "info", "logger", "slow",
                                                                 "data", text));
    if (note) {
      sse_send(ex->req, ex->session, note);
      json_decref(note);
    }
  }
  if (c->step < c->steps) {
    struct timeval tv = {0, 0};
    int interval_ms = c->ms / c->steps;
    tv.tv_sec = interval_ms / 1000;
    tv.tv_usec = (interval_ms % 1000) * 1000;
    event_add(c->timer, &tv);
    return;
  }
  json_array_append_new(ex->ready, ss_slow_result(c->id, c->ms, c->steps));
  slow_remove(c);
  exchange_flush(ex);
}

static bool slow_start(exchange *ex, json_t *request, const ss_outcome *o) {
  slow_call *c = calloc(1, sizeof *c);
  if (!c)
    return false;
  c->ex = ex;
  c->id = json_incref(json_object_get(request, "id"));
  json_t *meta = json_object_get(json_object_get(request, "params"), "_meta");
  json_t *token = json_object_get(meta, "progressToken");
  if (json_is_string(token) || json_is_integer(token))
    c->token = json_incref(token);
  c->ms = o->slow_ms;
  c->steps = o->slow_steps;
  c->timer = event_new(ex->srv->base, -1, 0, slow_tick, c);
  if (!c->timer) {
    json_decref(c->id);
    json_decref(c->token);
    free(c);
    return false;
  }
  int interval_ms = c->ms / c->steps;
  struct timeval tv = {interval_ms / 1000, (interval_ms % 1000) * 1000};
  event_add(c->timer, &tv);
  c->next = ex->calls;
  ex->calls = c;
  return true;
}

/* notifications/cancelled: the cancelled call sends nothing more. */
static void cancel_call(ss_server *srv, ss_session *s, json_t *request_id) {
  for (exchange *ex = srv->exchanges; ex; ex = ex->next) {
    if (ex->session != s)
      continue;
    for (slow_call *c = ex->calls; c; c = c->next) {
      if (json_equal(c->id, request_id)) {
        slog(srv, "session %.8s: request cancelled by the client", s->id);
        slow_remove(c);
        exchange_flush(ex);
        return;
      }
    }
  }
}

static void append_summary(exchange *ex, const char *what) {
  size_t len = strlen(ex->summary);
  if (len + 2 >= sizeof ex->summary)
    return;
  snprintf(ex->summary + len, sizeof ex->summary - len, "%s%s", len ? " " : "", what);
}

/* One message of the body. Requests produce a response or a slow call;
 * notifications and client responses produce nothing. */
static void handle_message(exchange *ex, json_t *msg, bool single) {
  ss_server *srv = ex->srv;
  if (!json_is_object(msg) || !json_is_string(json_object_get(msg, "jsonrpc")) ||
      strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") != 0) {
    json_array_append_new(ex->ready, ss_error(NULL, -32600, "Invalid Request"));
    ex->invalid_single = single;
    append_summary(ex, "invalid");
    return;
  }
  json_t *id = json_object_get(msg, "id");
  json_t *method = json_object_get(msg, "method");
  bool id_ok = json_is_string(id) || json_is_integer(id);

  if (json_is_string(method) && id_ok) {
    ss_outcome o;
    ss_context ctx = {srv, ex->session, srv->config};
    append_summary(ex, json_string_value(method));
    if (strcmp(json_string_value(method), "tools/call") == 0) {
      const char *tool = json_string_value(json_object_get(json_object_get(msg, "params"), "name"));
      if (tool)
        append_summary(ex, tool);
    }
    ss_dispatch(&ctx, msg, &o);
    if (o.deferred && !slow_start(ex, msg, &o))
      o.response = ss_error(id, -32603, "Internal error");
    if (o.response)
      json_array_append_new(ex->ready, o.response);
  } else if (json_is_string(method) && !id) {
    const char *name = json_string_value(method);
    append_summary(ex, name);
    if (strcmp(name, "notifications/cancelled") == 0)
      cancel_call(srv, ex->session, json_object_get(json_object_get(msg, "params"), "requestId"));
  } else if (!method && id_ok &&
             (json_object_get(msg, "result") || json_object_get(msg, "error"))) {
    slog(srv, "session %.8s: the client answered %s (%s)", ex->session->id,
         json_is_string(id) ? json_string_value(id) : "a request",
         json_object_get(msg, "error") ? "error" : "result");
    append_summary(ex, "response");
  } else {
    json_array_append_new(ex->ready, ss_error(id_ok ? id : NULL, -32600, "Invalid Request"));
    ex->invalid_single = single;
    append_summary(ex, "invalid");
  }
}

static bool is_initialize(json_t *msg) {
  const char *version = json_string_value(json_object_get(msg, "jsonrpc"));
  const char *method = json_string_value(json_object_get(msg, "method"));
  json_t *id = json_object_get(msg, "id");
  return version && strcmp(version, "2.0") == 0 && method && strcmp(method, "initialize") == 0 &&
         (json_is_string(id) || json_is_integer(id));
}

static void handle_post(ss_server *srv, struct evhttp_request *req) {
  json_t *body = NULL;
  exchange *ex = NULL;

  const char *ctype = header(req, "Content-Type");
  if (!ctype || strncasecmp(ctype, "application/json", 16) != 0) {
    reply_error(srv, req, 415, "Unsupported Media Type: POST a JSON-RPC message as application/json");
    return;
  }
  bool accept_json, accept_sse;
  parse_accept(header(req, "Accept"), &accept_json, &accept_sse);
  if (!accept_json && !accept_sse) {
    reply_error(srv, req, 406, "Not Acceptable: accept application/json or text/event-stream");
    return;
  }
  const char *version = header(req, "MCP-Protocol-Version");
  if (version && !ss_protocol_supported(version)) {
    reply_error(srv, req, 400, "Bad Request: unsupported MCP-Protocol-Version");
    return;
  }

  struct evbuffer *input = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(input);
  const char *text = len ? (const char *)evbuffer_pullup(input, -1) : "";
  if (!json_depth_ok(text, len, SS_MAX_JSON_DEPTH)) {
    reply_json(req, 400, ss_error(NULL, -32700, "Parse error: JSON nested too deep"));
    return;
  }
  json_error_t jerr;
  body = json_loadb(text, len, 0, &jerr);
  if (!body) {
    char msg[200];
    snprintf(msg, sizeof msg, "Parse error: %.150s", jerr.text);
    slog(srv, "POST %s -> 400 %s", srv->config->path, msg);
    reply_json(req, 400, ss_error(NULL, -32700, msg));
    return;
  }
  if (json_is_array(body) && json_array_size(body) == 0) {
    reply_json(req, 400, ss_error(NULL, -32600, "Invalid Request: empty batch"));
    goto out;
  }

  ex = calloc(1, sizeof *ex);
  if (!ex || !(ex->ready = json_array())) {
    reply_error(srv, req, 503, "Service Unavailable: out of memory");
    goto out;
  }
  ex->srv = srv;
  ex->req = req;
  ex->batch = json_is_array(body);
  ex->accept_json = accept_json;
  ex->accept_sse = accept_sse;

  if (!ex->batch && is_initialize(body)) {
    ss_session *s = ss_sessions_create(srv->sessions);
    if (!s) {
      reply_error(srv, req, 503, "Service Unavailable: cannot create a session");
      goto out;
    }
    ss_session_ref(s);
    ex->session = s;
    ex->new_session = true;
    json_t *params = json_object_get(body, "params");
    json_array_append_new(ex->ready, ss_response(json_object_get(body, "id"),
                                                 ss_initialize_result(params, s)));
    append_summary(ex, "initialize");
    snprintf(ex->summary + strlen(ex->summary), sizeof ex->summary - strlen(ex->summary),
             " -> session %.8s", s->id);
  } else {
    int status;
    const char *why;
    ss_session *s = session_of(srv, req, &status, &why);
    if (!s) {
      reply_error(srv, req, status, why);
      goto out;
    }
    ss_session_ref(s);
    ex->session = s;
    if (ex->batch) {
      size_t i;
      json_t *msg;
      json_array_foreach(body, i, msg) handle_message(ex, msg, false);
    } else {
      handle_message(ex, body, true);
    }
  }

  if (!ex->calls && json_array_size(ex->ready) == 0) {
    /* Only notifications and responses: accepted, no body. */
    evhttp_send_reply(req, 202, "Accepted", NULL);
    slog(srv, "POST %s -> 202 (%s)", srv->config->path, ex->summary);
    goto out;
  }

  ex->sse = accept_sse && (ex->calls || !accept_json) && !ex->invalid_single;
  if (ex->sse) {
    if (ex->new_session)
      set_header(req, "Mcp-Session-Id", ex->session->id);
    start_sse(req);
  }
  if (ex->calls) {
    /* Running on: keep it where shutdown and cancellation can find it. */
    ex->next = srv->exchanges;
    if (srv->exchanges)
      srv->exchanges->prev = ex;
    srv->exchanges = ex;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), exchange_gone, ex);
  }
  exchange_flush(ex);
  ex = NULL;
out:
  if (ex)
    exchange_free(ex);
  json_decref(body);
}

/* ---------- routing ---------- */

static void handle_request(struct evhttp_request *req, void *arg) {
  ss_server *srv = arg;
  const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
  const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
  if (!path || strcmp(path, srv->config->path) != 0) {
    reply_error(srv, req, 404, "Not Found: the MCP endpoint is elsewhere");
    return;
  }
  if (!origin_allowed(header(req, "Origin"))) {
    reply_error(srv, req, 403, "Forbidden: Origin not allowed");
    return;
  }
  switch (evhttp_request_get_command(req)) {
  case EVHTTP_REQ_POST:
    handle_post(srv, req);
    break;
  case EVHTTP_REQ_GET:
    handle_get(srv, req);
    break;
  case EVHTTP_REQ_DELETE:
    handle_delete(srv, req);
    break;
  default:
    set_header(req, "Allow", "GET, POST, DELETE");
    reply_error(srv, req, 405, "Method Not Allowed");
  }
}

/* ---------- server ---------- */

static int bound_port(struct evhttp_bound_socket *sock) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return -1;
}

ss_server *ss_server_new(struct event_base *base, const ss_config *config) {
  ss_server *srv = calloc(1, sizeof *srv);
  if (!srv)
    return NULL;
  srv->base = base;
  srv->config = config;
  srv->sessions = ss_sessions_new(SS_MAX_SESSIONS, session_ended, srv);
  srv->http = evhttp_new(base);
  if (!srv->sessions || !srv->http)
    goto fail;
  evhttp_set_allowed_methods(srv->http, ALL_HTTP_METHODS);
  /* Bodiless replies (202, DELETE) must not claim to be text/html. */
  evhttp_set_default_content_type(srv->http, NULL);
  evhttp_set_max_body_size(srv->http, SS_MAX_BODY_BYTES);
  evhttp_set_max_headers_size(srv->http, 64 * 1024);
  evhttp_set_gencb(srv->http, handle_request, srv);
  struct evhttp_bound_socket *sock =
      evhttp_bind_socket_with_handle(srv->http, config->host, (ev_uint16_t)config->port);
  if (!sock) {
    fprintf(stderr, "mcpr-sample-server: cannot listen on %s:%d\n", config->host, config->port);
    goto fail;
  }
  srv->port = bound_port(sock);
  if (srv->port < 0)
    goto fail;
  return srv;
fail:
  ss_server_free(srv);
  return NULL;
}

int ss_server_port(const ss_server *srv) { return srv->port; }

void ss_server_free(ss_server *srv) {
  if (!srv)
    return;
  srv->shutting_down = true;
  while (srv->exchanges) {
    detach_closecb(srv->exchanges->req);
    exchange_free(srv->exchanges);
  }
  ss_sessions_free(srv->sessions); /* closes the GET streams */
  if (srv->http)
    evhttp_free(srv->http);
  free(srv);
}

/*
 * fakecloud.c — scripted loopback HTTP server for tests (see fakecloud.h).
 *
 * One thread runs a libevent evhttp loop. Routes and the request log live
 * behind one mutex shared with the test thread. Delayed answers are
 * scheduled as one-shot timers on the loop, so a slow answer never stalls
 * other requests or fc_stop().
 */
#include "fakecloud.h"

#include <sys/queue.h> /* before libevent: TAILQ_FOREACH over headers */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

typedef struct route {
  char method[16];
  char path[1024];
  int status;
  char *body;
  size_t body_len;
  char *headers;
  int delay_ms;
  bool once;
  bool echo_auth;
  bool used;
} route;

struct fakecloud {
  struct event_base *base;
  struct evhttp *http;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t running_cv;
  bool running; /* the loop is dispatching: a loopbreak from now on is not lost */
  int port;
  char url[64];
  route *routes;
  size_t n_routes, cap_routes;
  fc_request *log;
  size_t n_log, cap_log;
  struct pending *pendings; /* delayed answers not sent yet (loop thread only) */
};

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static void init_evthread(void) { evthread_use_pthreads(); }

static void *fc_strdup(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (!p)
    abort();
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

static const char *method_name(enum evhttp_cmd_type t) {
  switch (t) {
  case EVHTTP_REQ_GET: return "GET";
  case EVHTTP_REQ_POST: return "POST";
  case EVHTTP_REQ_PUT: return "PUT";
  case EVHTTP_REQ_DELETE: return "DELETE";
  case EVHTTP_REQ_PATCH: return "PATCH";
  case EVHTTP_REQ_HEAD: return "HEAD";
  default: return "OTHER";
  }
}

static bool path_matches(const char *pattern, const char *path) {
  size_t n = strlen(pattern);
  if (n && pattern[n - 1] == '*')
    return strncmp(pattern, path, n - 1) == 0;
  return strcmp(pattern, path) == 0;
}

typedef struct pending {
  struct evhttp_request *req;
  int status;
  struct evbuffer *buf;
  fakecloud *fc;
  struct pending *next;
} pending;

static void send_pending(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  pending *p = arg;
  for (pending **pp = &p->fc->pendings; *pp; pp = &(*pp)->next)
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  evhttp_send_reply(p->req, p->status, "Scripted", p->buf);
  evbuffer_free(p->buf);
  free(p);
}

/* body with {auth} and {token} replaced by what request r carried (new). */
static char *echo_auth(const fc_request *r, const char *body, size_t len) {
  char auth[1024] = "";
  fc_header(r, "Authorization", auth, sizeof auth);
  const char *token = strncmp(auth, "Bearer ", 7) == 0 ? auth + 7 : auth;
  size_t cap = len + 1;
  for (const char *p = body; (p = strchr(p, '{')) != NULL; p++)
    cap += strlen(auth); /* enough for any replacement */
  char *out = malloc(cap);
  if (!out)
    abort();
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    if (strncmp(body + i, "{auth}", 6) == 0) {
      o += (size_t)snprintf(out + o, cap - o, "%s", auth);
      i += 6;
    } else if (strncmp(body + i, "{token}", 7) == 0) {
      o += (size_t)snprintf(out + o, cap - o, "%s", token);
      i += 7;
    } else {
      out[o++] = body[i++];
    }
  }
  out[o] = '\0';
  return out;
}

static void on_request(struct evhttp_request *req, void *arg) {
  fakecloud *fc = arg;
  fc_request r;
  memset(&r, 0, sizeof r);
  snprintf(r.method, sizeof r.method, "%s", method_name(evhttp_request_get_command(req)));
  const char *uri = evhttp_request_get_uri(req);
  snprintf(r.uri, sizeof r.uri, "%s", uri ? uri : "");
  snprintf(r.path, sizeof r.path, "%.1000s", r.uri);
  char *q = strchr(r.path, '?');
  if (q)
    *q = '\0';
  size_t hl = 0;
  struct evkeyvalq *in = evhttp_request_get_input_headers(req);
  struct evkeyval *kv;
  TAILQ_FOREACH(kv, in, next) hl += strlen(kv->key) + strlen(kv->value) + 3;
  r.headers = calloc(1, hl + 1);
  if (!r.headers)
    abort();
  size_t at = 0;
  TAILQ_FOREACH(kv, in, next) {
    at += (size_t)snprintf(r.headers + at, hl + 1 - at, "%s: %s\n", kv->key, kv->value);
  }
  struct evbuffer *ib = evhttp_request_get_input_buffer(req);
  r.body_len = evbuffer_get_length(ib);
  r.body = calloc(1, r.body_len + 1);
  if (!r.body)
    abort();
  evbuffer_copyout(ib, r.body, r.body_len);

  int status = 404;
  char *body = NULL;
  size_t body_len = 0;
  char *headers = NULL;
  int delay_ms = 0;
  pthread_mutex_lock(&fc->lock);
  if (fc->n_log == fc->cap_log) {
    fc->cap_log = fc->cap_log ? fc->cap_log * 2 : 16;
    fc->log = realloc(fc->log, fc->cap_log * sizeof *fc->log);
    if (!fc->log)
      abort();
  }
  fc->log[fc->n_log++] = r;
  /* first unused response of the route; the last one repeats unless once */
  route *hit = NULL;
  for (size_t i = 0; i < fc->n_routes; i++) {
    route *rt = &fc->routes[i];
    if (rt->used || strcmp(rt->method, r.method) != 0 || !path_matches(rt->path, r.path))
      continue;
    hit = rt;
    bool later = false;
    for (size_t k = i + 1; k < fc->n_routes; k++)
      if (!fc->routes[k].used && strcmp(fc->routes[k].method, r.method) == 0 &&
          strcmp(fc->routes[k].path, rt->path) == 0)
        later = true;
    if (later || rt->once)
      rt->used = true;
    break;
  }
  if (hit) {
    status = hit->status;
    body_len = hit->body_len;
    body = fc_strdup(hit->body ? hit->body : "", body_len);
    headers = hit->headers ? fc_strdup(hit->headers, strlen(hit->headers)) : NULL;
    delay_ms = hit->delay_ms;
    if (hit->echo_auth) {
      char *echoed = echo_auth(&r, body, body_len);
      free(body);
      body = echoed;
      body_len = strlen(body);
    }
  } else {
    char msg[1200];
    snprintf(msg, sizeof msg, "{\"message\":\"no route for %s %.1000s\"}", r.method, r.path);
    body_len = strlen(msg);
    body = fc_strdup(msg, body_len);
  }
  pthread_mutex_unlock(&fc->lock);

  struct evkeyvalq *out = evhttp_request_get_output_headers(req);
  bool has_ct = false;
  for (char *line = headers; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl)
      *nl = '\0';
    char *colon = strchr(line, ':');
    if (colon) {
      *colon = '\0';
      const char *v = colon + 1;
      while (*v == ' ')
        v++;
      if (strcasecmp(line, "Content-Type") == 0)
        has_ct = true;
      evhttp_add_header(out, line, v);
    }
    line = nl ? nl + 1 : NULL;
  }
  if (!has_ct)
    evhttp_add_header(out, "Content-Type", "application/json");
  struct evbuffer *buf = evbuffer_new();
  evbuffer_add(buf, body, body_len);
  free(body);
  free(headers);
  if (delay_ms > 0) {
    pending *p = malloc(sizeof *p);
    if (!p)
      abort();
    *p = (pending){req, status, buf, fc, fc->pendings};
    fc->pendings = p;
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    event_base_once(fc->base, -1, EV_TIMEOUT, send_pending, p, &tv);
    return;
  }
  evhttp_send_reply(req, status, "Scripted", buf);
  evbuffer_free(buf);
}

static void on_loop_started(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  fakecloud *fc = arg;
  pthread_mutex_lock(&fc->lock);
  fc->running = true;
  pthread_cond_signal(&fc->running_cv);
  pthread_mutex_unlock(&fc->lock);
}

static void *loop(void *arg) {
  fakecloud *fc = arg;
  struct timeval now = {0, 0};
  event_base_once(fc->base, -1, EV_TIMEOUT, on_loop_started, fc, &now);
  event_base_dispatch(fc->base);
  return NULL;
}

fakecloud *fc_start(const char *bind_addr) {
  pthread_once(&evthread_once, init_evthread);
  fakecloud *fc = calloc(1, sizeof *fc);
  if (!fc)
    abort();
  pthread_mutex_init(&fc->lock, NULL);
  pthread_cond_init(&fc->running_cv, NULL);
  fc->base = event_base_new();
  fc->http = fc->base ? evhttp_new(fc->base) : NULL;
  if (!fc->http)
    abort();
  evhttp_set_allowed_methods(fc->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                           EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_HEAD);
  evhttp_set_gencb(fc->http, on_request, fc);
  const char *addr = bind_addr ? bind_addr : "127.0.0.1";
  struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(fc->http, addr, 0);
  if (!s) {
    fprintf(stderr, "fakecloud: cannot bind %s\n", addr);
    abort();
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &sl);
  fc->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  snprintf(fc->url, sizeof fc->url, "http://%s:%d", addr, fc->port);
  if (pthread_create(&fc->thread, NULL, loop, fc) != 0)
    abort();
  /* event_base_loop() clears a loopbreak that came before it: wait until it runs */
  pthread_mutex_lock(&fc->lock);
  while (!fc->running)
    pthread_cond_wait(&fc->running_cv, &fc->lock);
  pthread_mutex_unlock(&fc->lock);
  return fc;
}

static void clear_locked(fakecloud *fc) {
  for (size_t i = 0; i < fc->n_routes; i++) {
    free(fc->routes[i].body);
    free(fc->routes[i].headers);
  }
  fc->n_routes = 0;
  for (size_t i = 0; i < fc->n_log; i++)
    fc_request_release(&fc->log[i]);
  fc->n_log = 0;
}

void fc_stop(fakecloud *fc) {
  if (!fc)
    return;
  event_base_loopbreak(fc->base);
  pthread_join(fc->thread, NULL);
  while (fc->pendings) {
    pending *p = fc->pendings;
    fc->pendings = p->next;
    evbuffer_free(p->buf);
    free(p);
  }
  evhttp_free(fc->http);
  event_base_free(fc->base);
  clear_locked(fc);
  free(fc->routes);
  free(fc->log);
  pthread_mutex_destroy(&fc->lock);
  pthread_cond_destroy(&fc->running_cv);
  free(fc);
}

const char *fc_url(const fakecloud *fc) { return fc->url; }
int fc_port(const fakecloud *fc) { return fc->port; }

void fc_route_ex(fakecloud *fc, const char *method, const char *path, const fc_response *r) {
  pthread_mutex_lock(&fc->lock);
  if (fc->n_routes == fc->cap_routes) {
    fc->cap_routes = fc->cap_routes ? fc->cap_routes * 2 : 16;
    fc->routes = realloc(fc->routes, fc->cap_routes * sizeof *fc->routes);
    if (!fc->routes)
      abort();
  }
  route *rt = &fc->routes[fc->n_routes++];
  memset(rt, 0, sizeof *rt);
  snprintf(rt->method, sizeof rt->method, "%s", method);
  snprintf(rt->path, sizeof rt->path, "%s", path);
  rt->status = r->status;
  rt->body_len = r->body ? (r->body_len ? r->body_len : strlen(r->body)) : 0;
  rt->body = r->body ? fc_strdup(r->body, rt->body_len) : NULL;
  rt->headers = r->headers ? fc_strdup(r->headers, strlen(r->headers)) : NULL;
  rt->delay_ms = r->delay_ms;
  rt->once = r->once;
  rt->echo_auth = r->echo_auth;
  pthread_mutex_unlock(&fc->lock);
}

void fc_route(fakecloud *fc, const char *method, const char *path, int status, const char *body) {
  fc_response r = {.status = status, .body = body};
  fc_route_ex(fc, method, path, &r);
}

void fc_redirect(fakecloud *fc, const char *method, const char *path, int status,
                 const char *location) {
  char h[2048];
  snprintf(h, sizeof h, "Location: %s\n", location);
  fc_response r = {.status = status, .body = "", .headers = h};
  fc_route_ex(fc, method, path, &r);
}

void fc_reset(fakecloud *fc) {
  pthread_mutex_lock(&fc->lock);
  clear_locked(fc);
  pthread_mutex_unlock(&fc->lock);
}

size_t fc_request_count(fakecloud *fc) {
  pthread_mutex_lock(&fc->lock);
  size_t n = fc->n_log;
  pthread_mutex_unlock(&fc->lock);
  return n;
}

size_t fc_count(fakecloud *fc, const char *method, const char *path) {
  size_t n = 0;
  pthread_mutex_lock(&fc->lock);
  for (size_t i = 0; i < fc->n_log; i++)
    if ((!method || strcmp(fc->log[i].method, method) == 0) &&
        (!path || path_matches(path, fc->log[i].path)))
      n++;
  pthread_mutex_unlock(&fc->lock);
  return n;
}

bool fc_request_get(fakecloud *fc, size_t i, fc_request *out) {
  bool ok = false;
  pthread_mutex_lock(&fc->lock);
  if (i < fc->n_log) {
    *out = fc->log[i];
    out->headers = fc_strdup(fc->log[i].headers, strlen(fc->log[i].headers));
    out->body = fc_strdup(fc->log[i].body, fc->log[i].body_len);
    ok = true;
  }
  pthread_mutex_unlock(&fc->lock);
  return ok;
}

void fc_request_release(fc_request *r) {
  free(r->headers);
  free(r->body);
  r->headers = r->body = NULL;
}

const char *fc_header(const fc_request *r, const char *name, char *buf, size_t n) {
  size_t nl = strlen(name);
  for (const char *line = r->headers; line && *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len > nl + 1 && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ')
        v++;
      snprintf(buf, n, "%.*s", (int)(line + len - v), v);
      return buf;
    }
    line = end ? end + 1 : NULL;
  }
  return NULL;
}

bool fc_any_request_has_header(fakecloud *fc, const char *name) {
  bool found = false;
  char buf[8];
  pthread_mutex_lock(&fc->lock);
  for (size_t i = 0; i < fc->n_log && !found; i++)
    found = fc_header(&fc->log[i], name, buf, sizeof buf) != NULL;
  pthread_mutex_unlock(&fc->lock);
  return found;
}

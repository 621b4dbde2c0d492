/* proxy_fixture.c — see proxy_fixture.h. */
#define _GNU_SOURCE /* strcasestr, memmem */
#include "proxy_fixture.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static void *upstream_main(void *arg) {
  pf_upstream *u = arg;
  event_base_dispatch(u->base);
  return NULL;
}

void pf_upstream_start(pf_upstream *u, void (*handler)(struct evhttp_request *, void *),
                       void *arg) {
  u->ssl_ctx = NULL;
  pf_upstream_start_bev(u, handler, arg, NULL, NULL);
}

void pf_upstream_start_bev(pf_upstream *u, void (*handler)(struct evhttp_request *, void *),
                           void *arg, struct bufferevent *(*bevcb)(struct event_base *, void *),
                           void *bev_arg) {
  atomic_init(&u->connections, 0);
  evthread_use_pthreads();
  u->base = event_base_new();
  assert_non_null(u->base);
  u->http = evhttp_new(u->base);
  evhttp_set_allowed_methods(u->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
  evhttp_set_gencb(u->http, handler, arg);
  if (bevcb)
    evhttp_set_bevcb(u->http, bevcb, bev_arg);
  struct evhttp_bound_socket *b = evhttp_bind_socket_with_handle(u->http, "127.0.0.1", 0);
  assert_non_null(b);
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  getsockname(evhttp_bound_socket_get_fd(b), (struct sockaddr *)&sa, &sl);
  u->port = ntohs(sa.sin_port);
  assert_int_equal(pthread_create(&u->thread, NULL, upstream_main, u), 0);
}

void pf_upstream_stop(pf_upstream *u) {
  event_base_loopbreak(u->base);
  pthread_join(u->thread, NULL);
  evhttp_free(u->http);
  event_base_free(u->base); /* runs the finalizers that free each connection's SSL */
  SSL_CTX_free(u->ssl_ctx);
  u->ssl_ctx = NULL;
}

long long pf_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pf_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

void pf_send_request(int fd, const char *method, const char *path, const char *headers,
                     const char *body) {
  char buf[16384];
  int n = snprintf(buf, sizeof buf,
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n%s", method,
                   path, headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
  assert_true(n > 0 && (size_t)n < sizeof buf);
  assert_int_equal(write(fd, buf, (size_t)n), n);
}

/* True when raw holds a complete response. Only the header block and the
 * tail are looked at, so a large body costs nothing per read. */
static bool complete(const char *raw, size_t len) {
  const char *hend = memmem(raw, len, "\r\n\r\n", 4);
  if (!hend)
    return false;
  size_t hlen = (size_t)(hend - raw);
  char *head = strndup(raw, hlen + 2);
  assert_non_null(head);
  const char *body = hend + 4;
  size_t blen = len - (size_t)(body - raw);
  bool done = false;
  const char *cl = strcasestr(head, "\r\nContent-Length:");
  if (cl)
    done = blen >= (size_t)strtol(cl + 17, NULL, 10);
  else if (strcasestr(head, "\r\nTransfer-Encoding: chunked"))
    done = blen >= 5 && memcmp(raw + len - 5, "0\r\n\r\n", 5) == 0;
  free(head);
  return done; /* else: read until close */
}

void pf_read_response(int fd, pf_resp *r, int timeout_ms,
                      void (*on_data)(const char *raw, size_t len)) {
  memset(r, 0, sizeof *r);
  size_t cap = 1 << 16;
  r->raw = calloc(1, cap + 1);
  assert_non_null(r->raw);
  long long deadline = pf_now_ms() + timeout_ms;
  while (!(r->complete = complete(r->raw, r->len))) {
    int left = (int)(deadline - pf_now_ms());
    if (left <= 0)
      break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, left) <= 0)
      break;
    if (r->len == cap) {
      cap *= 2;
      r->raw = realloc(r->raw, cap + 1);
      assert_non_null(r->raw);
    }
    ssize_t got = read(fd, r->raw + r->len, cap - r->len);
    if (got <= 0) {
      r->eof = true;
      break;
    }
    r->len += (size_t)got;
    r->raw[r->len] = '\0';
    if (on_data)
      on_data(r->raw, r->len);
  }
  sscanf(r->raw, "HTTP/1.%*d %d", &r->status);
  char *hend = memmem(r->raw, r->len, "\r\n\r\n", 4);
  r->body = hend ? hend + 4 : r->raw + r->len;
}

bool pf_has_header(const pf_resp *r, const char *line) {
  char *hend = strstr(r->raw, "\r\n\r\n");
  char *at = strcasestr(r->raw, line);
  return at && hend && at < hend;
}

void pf_http(int port, pf_resp *r, const char *method, const char *headers, const char *body) {
  int fd = pf_connect(port);
  pf_send_request(fd, method, "/mcp", headers, body);
  pf_read_response(fd, r, 10000, NULL);
  close(fd);
}

int pf_start_proxy(cli_proc *p, const char *dir, const char *db, const char *config,
                   const char *cfgname, const char *const *wrapper) {
  return pf_start_proxy_env(p, dir, db, config, cfgname, wrapper, NULL);
}

int pf_start_proxy_env(cli_proc *p, const char *dir, const char *db, const char *config,
                       const char *cfgname, const char *const *wrapper, const char *const *env) {
  char *path = tu_path(dir, cfgname);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(config, f);
  fclose(f);
  const char *args[32];
  size_t n = 0;
  const char *bin = NULL;
  if (wrapper) {
    bin = wrapper[0];
    for (size_t i = 1; wrapper[i] && n < 16; i++)
      args[n++] = wrapper[i];
    args[n++] = cli_bin();
  }
  const char *rest[] = {"--db", db, "proxy", "run", "-c", path, "--port", "0", "--log", "json",
                        NULL};
  for (size_t i = 0; rest[i]; i++)
    args[n++] = rest[i];
  args[n] = NULL;
  /* The proxy's lock file lives under $HOME/.mcpr: keep it in the test's
   * own directory, so tests (and the user's own proxies) never collide. */
  char home[4200];
  snprintf(home, sizeof home, "HOME=%s", dir);
  const char *envs[16] = {home};
  size_t ne = 1;
  for (size_t i = 0; env && env[i]; i++) {
    assert_true(ne < sizeof envs / sizeof envs[0] - 1);
    envs[ne++] = env[i];
  }
  envs[ne] = NULL;
  cli_spec spec = {.bin = bin, .args = args, .env = envs, .timeout_ms = 120000};
  cli_start(&spec, p);
  free(path); /* the child has its own copy of the arguments */
  if (!cli_wait_output(p, "Point your MCP client", 10000))
    fail_msg("mcpr proxy run did not start; its stderr:\n%s", p->err);
  const char *at = strstr(p->out, "listening on http://127.0.0.1:");
  assert_non_null(at);
  return (int)strtol(at + strlen("listening on http://127.0.0.1:"), NULL, 10);
}

void pf_reply(struct evhttp_request *req, int status, const char *ctype, const char *body,
              size_t len) {
  struct evbuffer *b = evbuffer_new();
  if (body)
    evbuffer_add(b, body, len);
  if (ctype)
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
  const char *reason = status == 202 ? "Accepted" : status == 404 ? "Not Found" : "OK";
  evhttp_send_reply(req, status, reason, b);
  evbuffer_free(b);
}

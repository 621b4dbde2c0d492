/*
 * proxy_fixture.h — what the proxy's end-to-end tests share: a fake MCP
 * upstream (libevent evhttp on its own thread, the test's handler), a raw
 * HTTP/1.1 client over plain sockets (so a test controls every byte and
 * can stall, trickle or hang up), and `mcpr proxy run` started from a
 * config text.
 */
#ifndef MCPR_TEST_PROXY_FIXTURE_H
#define MCPR_TEST_PROXY_FIXTURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

struct bufferevent;
struct event_base;
struct evhttp;
struct evhttp_request;
struct ssl_ctx_st;

typedef struct pf_upstream {
  struct event_base *base;
  struct evhttp *http;
  pthread_t thread;
  int port;
  struct ssl_ctx_st *ssl_ctx; /* HTTPS upstreams (tls_fixture.h): owned, freed by stop */
  atomic_int connections;     /* connections accepted (counted by HTTPS upstreams) */
} pf_upstream;

/* Listen on 127.0.0.1 (a free port, in u->port) and serve every request
 * with handler(req, arg) on the upstream's own thread. */
void pf_upstream_start(pf_upstream *u, void (*handler)(struct evhttp_request *, void *), void *arg);
/* The same, with each accepted connection's bufferevent made by
 * bevcb(base, bev_arg) (evhttp_set_bevcb): how pf_upstream_start_tls
 * serves HTTPS. u->ssl_ctx is left as the caller set it. */
void pf_upstream_start_bev(pf_upstream *u, void (*handler)(struct evhttp_request *, void *),
                           void *arg, struct bufferevent *(*bevcb)(struct event_base *, void *),
                           void *bev_arg);
/* Stop the thread, free the evhttp, its connections, the base and u->ssl_ctx. */
void pf_upstream_stop(pf_upstream *u);
/* The fake upstream's answer: status, Content-Type (NULL: none) and len
 * bytes of body (NULL: empty), with the status's usual reason phrase. */
void pf_reply(struct evhttp_request *req, int status, const char *ctype, const char *body,
              size_t len);

typedef struct pf_resp {
  int status;
  char *raw; /* everything read, NUL-terminated (new) */
  size_t len;
  char *body;    /* into raw, after the header block */
  bool complete; /* the whole response (by Content-Length or last chunk) */
  bool eof;      /* the proxy closed the connection */
} pf_resp;

long long pf_now_ms(void);
int pf_connect(int port);
/* Write a request with Host and Content-Length added; headers are
 * "Name: value\r\n" lines (may be NULL). */
void pf_send_request(int fd, const char *method, const char *path, const char *headers,
                     const char *body);
/* Read one response (until complete, closed or timeout_ms); on_data (may
 * be NULL) sees the bytes as they come. */
void pf_read_response(int fd, pf_resp *r, int timeout_ms,
                      void (*on_data)(const char *raw, size_t len));
/* A response's header line such as "\r\nName: value" is in the header block. */
bool pf_has_header(const pf_resp *r, const char *line);
/* One request on a new connection to /mcp. */
void pf_http(int port, pf_resp *r, const char *method, const char *headers, const char *body);

/* Write config to dir/cfgname and start `mcpr --db db proxy run` on it
 * (through wrapper argv, e.g. prlimit, when not NULL); returns its port. */
int pf_start_proxy(cli_proc *p, const char *dir, const char *db, const char *config,
                   const char *cfgname, const char *const *wrapper);
/* The same with env (NULL-terminated "K=V", may be NULL) added to the
 * proxy's environment, e.g. SSL_CERT_FILE (HOME is dir unless env sets
 * it). When the proxy does not start, the test fails with its stderr. */
int pf_start_proxy_env(cli_proc *p, const char *dir, const char *db, const char *config,
                       const char *cfgname, const char *const *wrapper, const char *const *env);

#endif

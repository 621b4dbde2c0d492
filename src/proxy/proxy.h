/*
 * proxy.h — the MCP reverse proxy behind `mcpr proxy run` (part of the
 * mcpr program, not of libmcpr).
 *
 *   mcpr_proxy *p;
 *   mcpr_proxy_options o;
 *   mcpr_proxy_options_init(&o);
 *   o.upstream_url = "http://127.0.0.1:9000/mcp"; o.fanout = fan; ...
 *   if (mcpr_proxy_new(&p, &o, &err) != MCPR_OK) ...   // binds the ports
 *   ... print mcpr_proxy_port(p) ...
 *   mcpr_proxy_run(p);      // until SIGINT/SIGTERM, then drains
 *   mcpr_proxy_free(p);
 *
 * One thread: the caller's, which runs the libevent loop. The fan-out is
 * borrowed and only ever given events with mcpr_fanout_emit() (never
 * blocks); the caller closes it after mcpr_proxy_run() returns.
 */
#ifndef MCPR_PROXY_PROXY_H
#define MCPR_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpr/error.h"
#include "mcpr/sink.h"

typedef struct mcpr_proxy mcpr_proxy;

typedef struct mcpr_proxy_options {
  const char *name;         /* proxy name in events (required) */
  const char *upstream_url; /* http://HOST[:PORT][/PATH] (required) */
  const char *listen_addr;  /* default "127.0.0.1" */
  int port;                 /* 0: a free port chosen by the kernel */
  const char *admin_addr;   /* NULL: no admin server */
  int admin_port;           /* 0: a free port */
  bool admin_optional;      /* admin address in use: run without (admin port 0) */
  int64_t drain_timeout_ms, connect_timeout_ms, request_timeout_ms;
  size_t max_request_body, max_response_body;
  int max_concurrent_upstream;
  const char *const *allowed_origins; /* beside loopback; "*" = any */
  size_t n_allowed_origins;
  mcpr_fanout *fanout; /* borrowed; NULL: no events */
  /* GET /ready: true when the proxy can record (the store can write);
   * why receives the reason when not. NULL: always ready. */
  bool (*ready)(void *ctx, char *why, size_t why_size);
  void *ready_ctx;
  /* SIGHUP (`mcpr proxy reload`): called on the loop's thread, so it may
   * call mcpr_proxy_set_live(). NULL: SIGHUP is not taken. */
  void (*on_hangup)(void *ctx);
  void *hangup_ctx;
} mcpr_proxy_options;

void mcpr_proxy_options_init(mcpr_proxy_options *o);

/* Check the options, parse the upstream URL and bind both listeners. */
mcpr_status mcpr_proxy_new(mcpr_proxy **out, const mcpr_proxy_options *o, mcpr_error *err);
/* The bound ports (useful when 0 was asked). admin: 0 when none. */
int mcpr_proxy_port(const mcpr_proxy *p);
int mcpr_proxy_admin_port(const mcpr_proxy *p);
/* The path clients should use (the upstream URL's path, "/" when none). */
const char *mcpr_proxy_path(const mcpr_proxy *p);

/*
 * Serve until SIGINT or SIGTERM; then stop accepting, close GET streams
 * (clients reconnect and resume), let the other in-flight requests finish
 * for up to drain_timeout_ms, and return the signal number.
 */
int mcpr_proxy_run(mcpr_proxy *p);

typedef struct mcpr_proxy_stats {
  uint64_t requests;         /* HTTP requests received on the MCP port */
  uint64_t upstream_errors;  /* 502 */
  uint64_t timeouts;         /* 504 */
  uint64_t events, emit_refused;
  uint64_t aborted_at_drain; /* in flight when drain_timeout ran out */
  uint64_t accept_pauses;    /* out of descriptors: accepting paused */
  uint64_t backpressure_pauses; /* a client behind: its upstream not read */
} mcpr_proxy_stats;

/*
 * What may change while the proxy runs (reload): the timeouts and the
 * allowed origins, from o (the other fields are ignored). They apply to
 * requests that start after the call. Call from the loop's thread only
 * (on_hangup). On failure nothing changed.
 */
mcpr_status mcpr_proxy_set_live(mcpr_proxy *p, const mcpr_proxy_options *o, mcpr_error *err);

void mcpr_proxy_get_stats(const mcpr_proxy *p, mcpr_proxy_stats *out);
void mcpr_proxy_free(mcpr_proxy *p);

#endif

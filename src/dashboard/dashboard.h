/*
 * dashboard.h — the server behind `mcpr dashboard` (cmd_dashboard.c parses
 * the flags and calls this): one libevent evhttp loop on one thread
 * serving the embedded page (assets.h) and a JSON API whose objects are
 * those of the CLI's --json (format.h, cli_json.h) from the same query
 * engine, over one read connection to the store.
 */
#ifndef MCPR_DASHBOARD_H
#define MCPR_DASHBOARD_H

#include <stdbool.h>
#include <stdio.h>

#include "mcpr/query.h"

typedef struct mcpr_dash_options {
  const char *host; /* address to bind: an IPv4/IPv6 literal or "localhost" */
  int port;         /* 0: any free port */
  /* Called once listening, with the page's URL (borrowed) and whether
   * the address is loopback; before any request is served. */
  void (*on_listen)(void *ctx, const char *url, bool loopback);
  void *ctx;
} mcpr_dash_options;

/*
 * Serve until SIGINT or SIGTERM. q is borrowed (the caller opened it and
 * closes it). Returns 0, or 1 after printing why to err_out (cannot bind).
 */
int mcpr_dash_serve(mcpr_query *q, const mcpr_dash_options *o, FILE *err_out);

/* Whether host (an address literal or "localhost") is a loopback one. */
bool mcpr_dash_is_loopback(const char *host);

#endif

/* cmd_dashboard.c — `mcpr dashboard`: a local web page over the store
 * (the server is src/dashboard/server.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_proxy_common.h"
#include "dashboard/dashboard.h"

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv);

const mcpr_cli_command cmd_dashboard = {
    .group = NULL,
    .name = "dashboard",
    .summary = "a local web page with live charts of the store",
    .usage = "mcpr dashboard [--listen 127.0.0.1:7878] [--db PATH]\n"
             "\n"
             "Serve a page with the store's traffic — requests, errors and p50/p95\n"
             "latency over time, tools, slow calls, sessions, clients, the captured\n"
             "schema and its changes, unused tools — updated live, and the JSON API\n"
             "behind it (README: Dashboard). Prints the page's URL; Ctrl-C stops.\n"
             "Read-only: it never writes to the store.\n"
             "  --listen ADDR:PORT  where to listen (default 127.0.0.1:7878; port 0:\n"
             "                      any free port). An address other than loopback\n"
             "                      makes the page readable from other machines.\n"
             "\n"
             "examples:\n"
             "  mcpr dashboard\n"
             "  mcpr dashboard --listen 127.0.0.1:9000 --db ./store.db",
    .run = run,
};

static void on_listen(void *ctx, const char *url, bool loopback) {
  (void)ctx;
  if (!loopback)
    fprintf(stderr,
            "mcpr: warning: the dashboard listens on an address other machines may reach;\n"
            "      anyone who can connect to it can read the traffic in this store\n");
  printf("mcpr dashboard: %s  (Ctrl-C to stop)\n", url);
  fflush(stdout);
}

/* "HOST:PORT" or "[V6]:PORT" into host (NUL-ended in buf) and port. */
static bool parse_listen(const char *text, char *buf, size_t size, int *port) {
  const char *colon;
  size_t n;
  const char *host = text;
  if (text[0] == '[') {
    const char *end = strchr(text, ']');
    if (!end || end[1] != ':')
      return false;
    host = text + 1;
    n = (size_t)(end - host);
    colon = end + 1;
  } else {
    colon = strrchr(text, ':');
    if (!colon)
      return false;
    n = (size_t)(colon - text);
  }
  if (n == 0 || n >= size)
    return false;
  memcpy(buf, host, n);
  buf[n] = '\0';
  char *end = NULL;
  long p = strtol(colon + 1, &end, 10);
  if (!colon[1] || *end || p < 0 || p > 65535)
    return false;
  *port = (int)p;
  return true;
}

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_dashboard;
  const char *listen = NULL;
  const cli_opt opts[] = {
      {"--listen", 0, true, &listen, NULL},
      {NULL, 0, false, NULL, NULL},
  };
  int rc = cli_parse_name(cmd, argc, argv, opts, NULL);
  if (rc >= 0)
    return rc;
  char host[256];
  int port = 0;
  if (!parse_listen(listen ? listen : "127.0.0.1:7878", host, sizeof host, &port))
    return cli_usage_error(cmd, "--listen needs ADDR:PORT (e.g. 127.0.0.1:7878), not '%s'",
                           listen);
  mcpr_query *q = NULL;
  if ((rc = cli_open_query(ctx, &q)) != 0)
    return rc;
  mcpr_dash_options o = {.host = host, .port = port, .on_listen = on_listen, .ctx = NULL};
  rc = mcpr_dash_serve(q, &o, stderr);
  mcpr_query_close(q);
  return rc;
}

/*
 * mcpr-sample-server — a small MCP server speaking Streamable HTTP, to put
 * behind `mcpr proxy run` in the README demo, the proxy's tests and the
 * benchmark. It stands for any third-party server: it links libevent and
 * jansson, nothing of libmcpr.
 *
 * One process, one thread, one libevent loop (transport.c explains the HTTP
 * side, methods.c the answers). On start it prints exactly one line to
 * stdout, `listening on http://HOST:PORT/PATH`, and flushes it, so a script
 * or test that asked for port 0 can read the port. SIGINT and SIGTERM stop
 * the loop; everything is freed and the exit status is 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

static const char usage[] =
    "usage: mcpr-sample-server [--listen HOST:PORT] [--path /mcp] [--page-size N]\n"
    "                          [--keepalive-ms N] [--quiet]\n"
    "\n"
    "  --listen HOST:PORT  address to listen on (default 127.0.0.1:9000; port 0 picks one;\n"
    "                      IPv6 as [::1]:PORT)\n"
    "  --path PATH         the MCP endpoint (default /mcp)\n"
    "  --page-size N       tools/list page size (default 0: one page)\n"
    "  --keepalive-ms N    SSE keepalive comment interval on GET streams (default 15000)\n"
    "  --quiet             no per-request log lines on stderr\n";

static bool parse_long(const char *text, long lo, long hi, long *out) {
  errno = 0;
  char *end = NULL;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

/* HOST:PORT, [V6]:PORT, or PORT alone (on 127.0.0.1). */
static bool parse_listen(const char *text, ss_config *config) {
  const char *colon = strrchr(text, ':');
  const char *host = text;
  size_t host_len;
  long port;
  if (!colon) {
    host = "127.0.0.1";
    host_len = strlen(host);
    colon = text - 1;
  } else if (text[0] == '[') {
    if (colon == text || colon[-1] != ']')
      return false;
    host = text + 1;
    host_len = (size_t)(colon - 1 - host);
  } else {
    host_len = (size_t)(colon - text);
  }
  if (host_len == 0 || host_len >= sizeof config->host)
    return false;
  if (!parse_long(colon + 1, 0, 65535, &port))
    return false;
  snprintf(config->host, sizeof config->host, "%.*s", (int)host_len, host);
  config->port = (int)port;
  return true;
}

/* 0: parsed; 1: --help or --version printed; 2: usage error. */
static int parse_args(int argc, char **argv, ss_config *config) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    long n;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(usage, stdout);
      return 1;
    } else if (strcmp(arg, "--version") == 0) {
      printf("mcpr-sample-server %s\n", MCPR_SAMPLE_VERSION);
      return 1;
    } else if (strcmp(arg, "--quiet") == 0) {
      config->quiet = true;
      continue;
    }
    if (!value) {
      fprintf(stderr, "mcpr-sample-server: unknown option or missing value: %s\n%s", arg, usage);
      return 2;
    }
    if (strcmp(arg, "--listen") == 0) {
      if (!parse_listen(value, config)) {
        fprintf(stderr, "mcpr-sample-server: --listen wants HOST:PORT, got '%s'\n", value);
        return 2;
      }
    } else if (strcmp(arg, "--path") == 0) {
      if (value[0] != '/' || strlen(value) >= sizeof config->path) {
        fprintf(stderr, "mcpr-sample-server: --path must start with / (got '%s')\n", value);
        return 2;
      }
      snprintf(config->path, sizeof config->path, "%s", value);
    } else if (strcmp(arg, "--page-size") == 0) {
      if (!parse_long(value, 0, 1000, &n)) {
        fprintf(stderr, "mcpr-sample-server: --page-size wants 0..1000, got '%s'\n", value);
        return 2;
      }
      config->page_size = (size_t)n;
    } else if (strcmp(arg, "--keepalive-ms") == 0) {
      if (!parse_long(value, 10, 3600000, &n)) {
        fprintf(stderr, "mcpr-sample-server: --keepalive-ms wants 10..3600000, got '%s'\n",
                value);
        return 2;
      }
      config->keepalive_ms = (int)n;
    } else {
      fprintf(stderr, "mcpr-sample-server: unknown option: %s\n%s", arg, usage);
      return 2;
    }
    i++;
  }
  return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv) {
  ss_config config = {.host = "127.0.0.1", .port = 9000, .path = "/mcp", .keepalive_ms = 15000};
  struct event_base *base = NULL;
  struct event *sigint = NULL, *sigterm = NULL;
  ss_server *server = NULL;
  int status = 1;

  int parsed = parse_args(argc, argv, &config);
  if (parsed)
    return parsed == 1 ? 0 : 2;

  /* A client that hangs up mid-stream must cost a write error, not the
   * process. */
  struct sigaction ignore = {.sa_handler = SIG_IGN};
  sigaction(SIGPIPE, &ignore, NULL);

  base = event_base_new();
  if (!base)
    goto out;
  sigint = evsignal_new(base, SIGINT, on_signal, base);
  sigterm = evsignal_new(base, SIGTERM, on_signal, base);
  if (!sigint || !sigterm || event_add(sigint, NULL) || event_add(sigterm, NULL))
    goto out;
  server = ss_server_new(base, &config);
  if (!server)
    goto out;

  bool v6 = strchr(config.host, ':') != NULL;
  printf("listening on http://%s%s%s:%d%s\n", v6 ? "[" : "", config.host, v6 ? "]" : "",
         ss_server_port(server), config.path);
  fflush(stdout);

  if (event_base_dispatch(base) == 0)
    status = 0;

out:
  ss_server_free(server);
  if (sigterm)
    event_free(sigterm);
  if (sigint)
    event_free(sigint);
  if (base)
    event_base_free(base);
  libevent_global_shutdown();
  return status;
}

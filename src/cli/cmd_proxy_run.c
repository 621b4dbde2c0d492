/*
 * cmd_proxy_run.c — `mcpr proxy run`: the MCP reverse proxy (src/proxy/)
 * with its sinks: the store, stderr in the --log format, and the cloud
 * when [cloud] token is set.
 *
 * Threads: the proxy's event loop runs on this (the main) thread; each
 * sink has its own thread (sink.h) and the store its writer. The proxy
 * only ever calls mcpr_fanout_emit(), which never blocks, so a slow store
 * or a cloud outage never slows forwarding. SIGINT/SIGTERM are taken by
 * the loop (proxy.c): it stops accepting, drains, and returns here; then
 * the fan-out is closed (every sink delivers what it holds), the store
 * closed, and the run exits 0.
 *
 * Lifecycle (registry.h): once both ports are bound the proxy takes its
 * lock in ~/.mcpr/proxies/NAME/ (refusing to start when a live proxy has
 * the name) and removes it after the drain. SIGHUP (`mcpr proxy reload`)
 * reaches on_reload() on the loop's thread: the config is read again and
 * the live keys (live.h) applied, or the reload rejected and the running
 * config kept; the outcome goes to stderr and to the reload handshake.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config_warn.h"
#include "mcpr/mcpr.h"
#include "store_report.h"
#include "../proxy/live.h"
#include "../proxy/proxy.h"
#include "../proxy/registry.h"

extern const mcpr_cli_command cmd_proxy_run;

mcpr_status cli_cloud_sink_from_config(const mcpr_config *cfg, const char *store_path,
                                       mcpr_sink **out, mcpr_error *err);

typedef struct run_args {
  const char *config, *mcp, *port, *listen, *name, *log;
} run_args;

/* -c/--config FILE is global (main.c): ctx->config_path, taken here when
 * no CONFIG is given as an argument. */
static int parse_args(const mcpr_cli_ctx *ctx, int argc, char **argv, run_args *a) {
  memset(a, 0, sizeof *a);
  static const struct {
    const char *flag;
    size_t off;
  } opts[] = {
      {"--mcp", offsetof(run_args, mcp)},       {"--port", offsetof(run_args, port)},
      {"--listen", offsetof(run_args, listen)}, {"--name", offsetof(run_args, name)},
      {"--log", offsetof(run_args, log)},
  };
  for (int i = 1; i < argc; i++) {
    if (cli_is_help(argv[i])) {
      printf("%s\n", cmd_proxy_run.usage);
      return 0;
    }
    bool known = false;
    for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !known; k++) {
      size_t n = strlen(opts[k].flag);
      const char **dst = (const char **)((char *)a + opts[k].off);
      if (strcmp(argv[i], opts[k].flag) == 0) {
        if (i + 1 >= argc)
          return cli_usage_error(&cmd_proxy_run, "%s needs a value", opts[k].flag);
        *dst = argv[++i];
        known = true;
      } else if (strncmp(argv[i], opts[k].flag, n) == 0 && argv[i][n] == '=') {
        *dst = argv[i] + n + 1;
        known = true;
      }
    }
    if (known)
      continue;
    if (argv[i][0] == '-' && argv[i][1])
      return cli_usage_error(&cmd_proxy_run, "unknown option '%s'", argv[i]);
    if (a->config)
      return cli_usage_error(&cmd_proxy_run, "only one config file, got '%s' and '%s'", a->config,
                             argv[i]);
    a->config = argv[i];
  }
  if (ctx->config_path && a->config)
    return cli_usage_error(&cmd_proxy_run, "only one config file, got '%s' and '%s'",
                           ctx->config_path, a->config);
  if (ctx->config_path)
    a->config = ctx->config_path;
  return -1;
}

static bool parse_port(const char *s, int *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end || errno || v < 0 || v > 65535)
    return false;
  *out = (int)v;
  return true;
}

/* "ADDR:PORT", "[V6]:PORT" or "ADDR" (port left as is) into addr/port. */
static bool parse_listen(const char *s, char *addr, size_t addr_size, int *port) {
  const char *colon = NULL;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || (close[1] && close[1] != ':'))
      return false;
    if ((size_t)(close - s - 1) >= addr_size || close == s + 1)
      return false;
    snprintf(addr, addr_size, "%.*s", (int)(close - s - 1), s + 1);
    colon = close[1] == ':' ? close + 1 : NULL;
  } else {
    colon = strrchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    if (n == 0 || n >= addr_size || (colon && memchr(s, ':', n)))
      return false;
    snprintf(addr, addr_size, "%.*s", (int)n, s);
  }
  return !colon || parse_port(colon + 1, port);
}

/* GET /ready: the store can write. */
static bool store_ready(void *ctx, char *why, size_t n) {
  mcpr_store *store = ctx;
  if (!store)
    return true;
  mcpr_store_health h;
  mcpr_store_health_get(store, &h);
  if (h.state == MCPR_STORE_HEALTH_OK)
    return true;
  snprintf(why, n, "the store cannot write: %s", h.message[0] ? h.message : mcpr_strerror(h.cause));
  return false;
}

/* What a reload needs: the running proxy and the config it runs on. */
typedef struct reload_ctx {
  mcpr_proxy *proxy;
  mcpr_live_log *log; /* NULL: no stderr log */
  const char *name;
  const char *config_path;  /* the file started with */
  const mcpr_config *start; /* borrowed */
  mcpr_config *current;     /* after a reload (owned), else NULL */
} reload_ctx;

/* Apply path's config to the running proxy; msg receives what was done. */
static mcpr_reload_outcome reload_apply(reload_ctx *rc, const char *path, char *msg, size_t n) {
  mcpr_config *cfg = NULL;
  mcpr_error err = {0};
  mcpr_status st = mcpr_config_load(path, &cfg, &err);
  const mcpr_config *old = rc->current ? rc->current : rc->start;
  char keys[512];
  if (st != MCPR_OK) {
    snprintf(msg, n, "%s (the running config is kept)", err.message);
    goto reject;
  }
  if (mcpr_live_restart_keys(old, cfg, keys, sizeof keys)) {
    snprintf(msg, n, "fields require restart: %s (the running config is kept)", keys);
    goto reject;
  }
  mcpr_proxy_options live;
  mcpr_proxy_options_init(&live);
  live.drain_timeout_ms = cfg->drain_timeout_ms;
  live.connect_timeout_ms = cfg->connect_timeout_ms;
  live.request_timeout_ms = cfg->request_timeout_ms;
  live.allowed_origins = (const char *const *)cfg->allowed_origins;
  live.n_allowed_origins = cfg->n_allowed_origins;
  if (mcpr_proxy_set_live(rc->proxy, &live, &err) != MCPR_OK) {
    snprintf(msg, n, "%s (the running config is kept)", err.message);
    goto reject;
  }
  mcpr_log_format lf;
  if (rc->log && cfg->log_format && mcpr_log_format_parse(cfg->log_format, &lf))
    mcpr_live_log_set(rc->log, lf);
  if (mcpr_live_changed_keys(old, cfg, keys, sizeof keys))
    snprintf(msg, n, "applied %s from %s", keys, cfg->file_path);
  else
    snprintf(msg, n, "no change in %s", cfg->file_path);
  mcpr_config_free(rc->current);
  rc->current = cfg;
  return MCPR_RELOAD_APPLIED;
reject:
  mcpr_config_free(cfg);
  return MCPR_RELOAD_REJECTED;
}

static void on_reload(void *arg) {
  reload_ctx *rc = arg;
  uint64_t nonce = 0;
  char path[1024] = "", msg[1024];
  bool asked = mcpr_registry_reload_read_request(rc->name, &nonce, path, sizeof path);
  mcpr_reload_outcome r = reload_apply(rc, path[0] ? path : rc->config_path, msg, sizeof msg);
  fprintf(stderr, "mcpr: reload %s: %s\n", r == MCPR_RELOAD_APPLIED ? "applied" : "rejected", msg);
  fflush(stderr);
  if (asked)
    mcpr_registry_reload_result(rc->name, nonce, r, msg);
}

static int run_proxy(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  run_args a;
  int rc = parse_args(ctx, argc, argv, &a);
  if (rc >= 0)
    return rc;

  int code = CLI_EXIT_FAIL;
  mcpr_error err = {0};
  mcpr_config *cfg = NULL;
  char *db_path = NULL;
  mcpr_store *store = NULL;
  mcpr_fanout *fan = NULL;
  mcpr_sink *sink = NULL;
  mcpr_proxy *proxy = NULL;
  bool cloud = false, locked = false;
  reload_ctx rl = {0};

  mcpr_status st = mcpr_config_load(a.config, &cfg, &err);
  cli_config_secret_warnings(cfg);
  if (st != MCPR_OK) {
    code = cli_fail("%s", err.message);
    goto out;
  }
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++) {
    const mcpr_config_diag *d = mcpr_config_diag_at(cfg, i);
    if (!d->secret_at_risk)
      fprintf(stderr, "mcpr: warning: %s:%d: %s\n", cfg->file_path, d->line, d->message);
  }

  mcpr_proxy_options po;
  mcpr_proxy_options_init(&po);
  po.upstream_url = a.mcp ? a.mcp : cfg->mcp;
  if (!po.upstream_url || !*po.upstream_url) {
    code = cli_usage_error(&cmd_proxy_run,
                           "no upstream: give --mcp URL or set mcp = \"http://...\" in %s",
                           cfg->file_path);
    goto out;
  }
  po.name = a.name ? a.name : cfg->name ? cfg->name : "default";
  if (!mcpr_registry_name_ok(po.name)) {
    code = cli_usage_error(&cmd_proxy_run,
                           "the proxy name '%s' must be 1-64 letters, digits, '.', '_' or '-'",
                           po.name);
    goto out;
  }
  char listen_addr[256] = "127.0.0.1";
  int port = cfg->port > 0 ? (int)cfg->port : MCPR_CONFIG_DEFAULT_PORT;
  if (cfg->listen && !parse_listen(cfg->listen, listen_addr, sizeof listen_addr, &port)) {
    code = cli_fail("%s: listen must be ADDR or ADDR:PORT", cfg->file_path);
    goto out;
  }
  if (a.listen && a.port) {
    code = cli_usage_error(&cmd_proxy_run, "give --port or --listen, not both");
    goto out;
  }
  if (a.listen && !parse_listen(a.listen, listen_addr, sizeof listen_addr, &port)) {
    code = cli_usage_error(&cmd_proxy_run, "--listen must be ADDR:PORT (e.g. 127.0.0.1:3000)");
    goto out;
  }
  if (a.port && !parse_port(a.port, &port)) {
    code = cli_usage_error(&cmd_proxy_run, "--port must be a port number (0-65535)");
    goto out;
  }
  po.listen_addr = listen_addr;
  po.port = port;
  char admin_addr[256] = "127.0.0.1";
  int admin_port = 9901;
  const char *admin = cfg->admin_bind ? cfg->admin_bind : MCPR_CONFIG_DEFAULT_ADMIN_BIND;
  if (strcmp(admin, "off") != 0) {
    if (!parse_listen(admin, admin_addr, sizeof admin_addr, &admin_port)) {
      code = cli_fail("%s: admin_bind must be ADDR:PORT or \"off\"", cfg->file_path);
      goto out;
    }
    po.admin_addr = admin_addr;
    po.admin_port = admin_port;
    /* Two proxies on one machine share the default admin port: the second
     * runs without one rather than not at all. */
    po.admin_optional = cfg->admin_bind == NULL;
  }
  const char *log = a.log ? a.log : cfg->log_format ? cfg->log_format : "pretty";
  mcpr_log_format log_format;
  if (!mcpr_log_format_parse(log, &log_format)) {
    code = cli_usage_error(&cmd_proxy_run, "--log must be json, pretty or off");
    goto out;
  }
  po.drain_timeout_ms = cfg->drain_timeout_ms;
  po.connect_timeout_ms = cfg->connect_timeout_ms;
  po.request_timeout_ms = cfg->request_timeout_ms;
  po.max_request_body = (size_t)cfg->max_request_body_size;
  po.max_response_body = (size_t)cfg->max_response_body_size;
  po.max_concurrent_upstream = (int)cfg->max_concurrent_upstream;
  po.allowed_origins = (const char *const *)cfg->allowed_origins;
  po.n_allowed_origins = cfg->n_allowed_origins;

  if (mcpr_fanout_new(&fan, &err) != MCPR_OK) {
    code = cli_fail("%s", err.message);
    goto out;
  }
  if (cfg->store.enabled) {
    if (!(db_path = mcpr_config_store_path(cfg, ctx->db_path, &err))) {
      code = cli_fail("%s", err.message);
      goto out;
    }
    mcpr_store_options so;
    mcpr_store_options_init(&so);
    so.on_health = cli_store_health_print;
    so.background_writer = true; /* its commits never delay forwarding */
    mcpr_config_store_options(cfg, &so);
    if (mcpr_store_open(&store, db_path, &so, &err) != MCPR_OK) {
      char shown[1024];
      code = cli_fail("cannot open the store %s: %s",
                      mcpr_store_target_redact(db_path, shown, sizeof shown), err.message);
      goto out;
    }
    if (mcpr_sink_store_new(&sink, store, NULL, &err) != MCPR_OK ||
        mcpr_fanout_add(fan, sink, &err) != MCPR_OK) {
      code = cli_fail("store sink: %s", err.message);
      goto out;
    }
  }
  {
    /* Always there, even with --log off, so a reload can turn it on. */
    sink = NULL;
    if (mcpr_live_log_new(&sink, &rl.log, stderr, log_format, &err) != MCPR_OK ||
        mcpr_fanout_add(fan, sink, &err) != MCPR_OK) {
      code = cli_fail("log sink: %s", err.message);
      goto out;
    }
  }
  if (cfg->cloud.token && cfg->cloud.token[0]) {
    sink = NULL;
    if (cli_cloud_sink_from_config(cfg, db_path ? db_path : "", &sink, &err) != MCPR_OK ||
        mcpr_fanout_add(fan, sink, &err) != MCPR_OK) {
      code = cli_fail("cloud sink: %s", err.message);
      goto out;
    }
    cloud = true;
  }
  po.fanout = fan;
  po.ready = store_ready;
  po.ready_ctx = store;
  po.on_hangup = on_reload;
  po.hangup_ctx = &rl;
  signal(SIGHUP, SIG_IGN); /* a reload before the loop runs is not a kill */
  if (mcpr_proxy_new(&proxy, &po, &err) != MCPR_OK) {
    code = cli_fail("%s", err.message);
    goto out;
  }
  char config_abs[PATH_MAX] = "";
  if (cfg->file_exists && !realpath(cfg->file_path, config_abs))
    config_abs[0] = '\0';
  mcpr_proxy_entry me;
  memset(&me, 0, sizeof me);
  snprintf(me.name, sizeof me.name, "%s", po.name);
  me.port = mcpr_proxy_port(proxy);
  snprintf(me.upstream_url, sizeof me.upstream_url, "%s", po.upstream_url);
  snprintf(me.listen_addr, sizeof me.listen_addr, "%s", listen_addr);
  if (strlen(config_abs) < sizeof me.config_path) /* longer: not recorded, reload needs --config */
    memcpy(me.config_path, config_abs, strlen(config_abs) + 1);
  mcpr_proxy_entry holder;
  st = mcpr_registry_acquire(&me, &holder, &err);
  if (st == MCPR_EBUSY) {
    code = cli_fail("%s: stop it with `mcpr proxy stop %s`, or give this one another --name",
                    err.message, po.name);
    goto out;
  } else if (st != MCPR_OK) {
    code = cli_fail("cannot record the proxy in ~/.mcpr/proxies: %s", err.message);
    goto out;
  }
  locked = true;
  rl.proxy = proxy;
  rl.name = po.name;
  rl.config_path = config_abs[0] ? config_abs : cfg->file_path;
  rl.start = cfg;
  bool v6 = strchr(listen_addr, ':') != NULL;
  char url[400];
  snprintf(url, sizeof url, "http://%s%s%s:%d%s", v6 ? "[" : "", listen_addr, v6 ? "]" : "",
           mcpr_proxy_port(proxy), mcpr_proxy_path(proxy));
  printf("mcpr proxy '%s' listening on %s\n", po.name, url);
  printf("  upstream: %s\n", po.upstream_url);
  char shown[1024];
  printf("  store:    %s\n", db_path ? mcpr_store_target_redact(db_path, shown, sizeof shown)
                                     : "(disabled: [store] enabled = false)");
  if (cloud)
    printf("  cloud:    %s\n", mcpr_config_cloud_endpoint(cfg));
  if (mcpr_proxy_admin_port(proxy))
    printf("  admin:    http://%s:%d (/healthz, /ready)\n", admin_addr,
           mcpr_proxy_admin_port(proxy));
  else if (po.admin_addr)
    printf("  admin:    not started (%s:%d is in use)\n", admin_addr, admin_port);
  printf("Point your MCP client at %s (Streamable HTTP transport).\n", url);
  fflush(stdout);

  int sig = mcpr_proxy_run(proxy);
  mcpr_proxy_stats ps;
  mcpr_proxy_get_stats(proxy, &ps);
  mcpr_proxy_free(proxy);
  proxy = NULL;
  rl.proxy = NULL;
  mcpr_fanout_close(fan, NULL, 0);
  fan = NULL;
  mcpr_store_stats ss;
  memset(&ss, 0, sizeof ss);
  if (store) {
    mcpr_store_close(store, &ss);
    store = NULL;
  }
  fprintf(stderr,
          "mcpr: proxy '%s' stopped (%s): %" PRIu64 " requests, %" PRIu64 " events, %" PRIu64
          " stored",
          po.name, sig == 2 ? "SIGINT" : "SIGTERM", ps.requests, ps.events, ss.written);
  if (ps.emit_refused)
    fprintf(stderr, ", %" PRIu64 " refused by a full sink", ps.emit_refused);
  if (ps.aborted_at_drain)
    fprintf(stderr, ", %" PRIu64 " requests cut at drain_timeout", ps.aborted_at_drain);
  if (ps.upstream_errors || ps.timeouts)
    fprintf(stderr, ", upstream failed %" PRIu64 " and timed out %" PRIu64 " times",
            ps.upstream_errors, ps.timeouts);
  if (ps.accept_pauses)
    fprintf(stderr, ", accepting paused %" PRIu64 " times (out of file descriptors)",
            ps.accept_pauses);
  if (ps.backpressure_pauses)
    fprintf(stderr, ", upstream reads paused %" PRIu64 " times for slow clients",
            ps.backpressure_pauses);
  if (mcpr_store_stats_failed(&ss)) {
    fprintf(stderr, ", not stored %" PRIu64, mcpr_store_stats_failed(&ss));
    cli_store_print_failed_by_cause(stderr, &ss);
  }
  fputc('\n', stderr);
  code = CLI_EXIT_OK;
out:
  mcpr_proxy_free(proxy);
  mcpr_fanout_close(fan, NULL, 0);
  mcpr_store_close(store, NULL);
  if (locked) /* after every event was written: a stop that waits for the lock sees them */
    mcpr_registry_release(po.name);
  mcpr_config_free(rl.current);
  free(db_path);
  mcpr_config_free(cfg);
  return code;
}

const mcpr_cli_command cmd_proxy_run = {
    .group = "proxy",
    .name = "run",
    .summary = "run the MCP reverse proxy, recording every request",
    .usage =
        "mcpr proxy run [CONFIG | -c CONFIG] [--mcp URL] [--port N | --listen ADDR:PORT]\n"
        "               [--name NAME] [--log json|pretty|off] [--db PATH]\n"
        "\n"
        "Forwards MCP Streamable HTTP (POST, GET, DELETE) to the upstream server\n"
        "unchanged, streaming text/event-stream responses as they arrive, and\n"
        "records a request event for every JSON-RPC request (plus sessions and\n"
        "schema versions) in the store, on stderr and, with [cloud] token, the cloud.\n"
        "\n"
        "  -c, --config FILE  mcpr.toml (default ./mcpr.toml when present)\n"
        "  --mcp URL          upstream MCP endpoint, http://HOST:PORT/PATH (config: mcp)\n"
        "  --port N           listen on 127.0.0.1:N (config: port, default 3000)\n"
        "  --listen ADDR:PORT listen address (config: listen)\n"
        "  --name NAME        proxy name in the store (config: name, default 'default')\n"
        "  --log FORMAT       stderr log: json (SPEC lines for mcpr ingest), pretty\n"
        "                     (default) or off (config: log_format)\n"
        "\n"
        "Config keys: drain_timeout (30s), admin_bind (127.0.0.1:9901: GET /healthz,\n"
        "GET /ready), max_request_body_size (5MB), max_response_body_size (10MB),\n"
        "max_concurrent_upstream (100), connect_timeout (5s), request_timeout (30s),\n"
        "allowed_origins (browser origins allowed beside loopback ones).\n"
        "\n"
        "SIGINT/SIGTERM stop accepting, let requests in flight finish (up to\n"
        "drain_timeout), write every event and exit 0.\n"
        "\n"
        "While it runs the proxy is listed by `mcpr proxy list` (its lock file is\n"
        "~/.mcpr/proxies/NAME/lock.json; a second proxy with the same name is\n"
        "refused). SIGHUP (`mcpr proxy reload NAME`) re-reads the config and applies\n"
        "the live keys: " MCPR_LIVE_KEYS ";\n"
        "a change to any other key needs a restart and the reload is rejected.",
    .run = run_proxy,
};

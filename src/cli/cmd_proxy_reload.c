/*
 * cmd_proxy_reload.c — `mcpr proxy reload NAME [--config F]`: ask a running
 * proxy to re-read its config (the handshake of registry.h: a request with
 * a nonce, SIGHUP, then the proxy's result for that nonce).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd_proxy_common.h"
#include "proxy_entries.h"
#include "../proxy/live.h"

extern const mcpr_cli_command cmd_proxy_reload;

#define RELOAD_WAIT_MS 3000

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const mcpr_cli_command *cmd = &cmd_proxy_reload;
  const char *name = NULL;
  /* The global -c/--config, only when given: without it the proxy reads
   * again the file it was started with (not ./mcpr.toml). */
  const char *config = ctx->config_path;
  const cli_opt opts[] = {{NULL, 0, false, NULL, NULL}};
  int rc = cli_parse_name(cmd, argc, argv, opts, &name);
  if (rc >= 0)
    return rc;
  if (!name)
    return cli_usage_error(cmd, "which proxy? give its NAME (see `mcpr proxy list`)");
  char config_abs[PATH_MAX] = "";
  if (config && !realpath(config, config_abs))
    return cli_fail("cannot read %s: %s", config, strerror(errno));
  mcpr_proxy_entry e;
  mcpr_error err = {0};
  if (mcpr_registry_get(name, &e, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  if (e.state != MCPR_PROXY_RUNNING)
    return cli_fail("proxy '%s' is not running (%s)", name, mcpr_proxy_state_name(e.state));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  uint64_t nonce = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
  if (mcpr_registry_reload_request(name, nonce, config_abs, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  if (kill(e.pid, SIGHUP) != 0)
    return cli_fail("cannot signal proxy '%s' (pid %ld): %s", name, (long)e.pid, strerror(errno));
  char msg[1024];
  mcpr_reload_outcome outcome;
  for (int waited = 0; waited < RELOAD_WAIT_MS; waited += 50) {
    if (mcpr_registry_reload_read_result(name, nonce, &outcome, msg, sizeof msg)) {
      if (outcome == MCPR_RELOAD_REJECTED)
        return cli_fail("reload of proxy '%s' rejected: %s", name, msg);
      printf("Proxy '%s' reloaded: %s\n", name, msg);
      return CLI_EXIT_OK;
    }
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return cli_fail("reload signal sent to proxy '%s', but no answer within %d s; see its log",
                  name, RELOAD_WAIT_MS / 1000);
}

const mcpr_cli_command cmd_proxy_reload = {
    .group = "proxy",
    .name = "reload",
    .summary = "make a running proxy re-read its config",
    .usage = "mcpr proxy reload NAME [--config FILE]\n"
             "\n"
             "Sends SIGHUP to proxy NAME, which re-reads its config (FILE, else the one it\n"
             "started with) and applies, for the requests that start afterwards:\n"
             "  " MCPR_LIVE_KEYS "\n"
             "Any other change (name, mcp, port, listen, admin_bind, body and concurrency\n"
             "limits, [store], [cloud]) needs a restart: the reload is then rejected, as is\n"
             "a config with errors, and the proxy keeps running on its current config.\n"
             "The proxy logs what it did on its stderr.\n"
             "  -c, --config FILE   the config to apply\n"
             "Exit 1 when the reload was rejected or the proxy did not answer within 3 s.",
    .run = run,
};

/* cmd_proxy_stop.c — `mcpr proxy stop [NAME] [--all]`: SIGTERM and wait. */
#include <stdio.h>
#include <stdlib.h>

#include "cmd_proxy_common.h"
#include "proxy_entries.h"

extern const mcpr_cli_command cmd_proxy_stop;

/* Long enough for the default drain_timeout (30 s) plus the final writes. */
#define STOP_WAIT_MS 40000

/* Stop one; prints what happened. Returns the exit code. */
static int stop_one(const char *name) {
  mcpr_proxy_entry was;
  mcpr_error err = {0};
  printf("Stopping proxy '%s'...\n", name);
  fflush(stdout);
  mcpr_status st = mcpr_registry_stop(name, STOP_WAIT_MS, &was, &err);
  if (st != MCPR_OK)
    return cli_fail("%s", err.message);
  if (was.state == MCPR_PROXY_STALE)
    printf("Proxy '%s' was not running (pid %ld is gone): cleaned up its stale lock.\n", name,
           (long)was.pid);
  else
    printf("Proxy '%s' (pid %ld) stopped.\n", name, (long)was.pid);
  return CLI_EXIT_OK;
}

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  (void)ctx;
  const mcpr_cli_command *cmd = &cmd_proxy_stop;
  bool all = false;
  const char *name = NULL;
  const cli_opt opts[] = {{"--all", 0, false, NULL, &all}, {0}};
  int rc = cli_parse_name(cmd, argc, argv, opts, &name);
  if (rc >= 0)
    return rc;
  if (all == (name != NULL))
    return cli_usage_error(cmd, "give a proxy NAME or --all");
  if (name)
    return stop_one(name);
  mcpr_proxy_entry *v = NULL;
  size_t n = 0, acted = 0;
  mcpr_error err = {0};
  if (mcpr_registry_list(&v, &n, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  int code = CLI_EXIT_OK;
  for (size_t i = 0; i < n; i++) {
    if (v[i].state == MCPR_PROXY_STOPPED)
      continue;
    acted++;
    if (stop_one(v[i].name) != CLI_EXIT_OK)
      code = CLI_EXIT_FAIL;
  }
  if (acted == 0)
    printf("No running proxies.\n");
  free(v);
  return code;
}

const mcpr_cli_command cmd_proxy_stop = {
    .group = "proxy",
    .name = "stop",
    .summary = "stop a running proxy (or --all)",
    .usage = "mcpr proxy stop [NAME] [--all]\n"
             "\n"
             "Sends SIGTERM to proxy NAME and waits (up to 40 s) until it has drained its\n"
             "requests, written its events and exited. A stale proxy (its process died)\n"
             "is cleaned up. The proxy stays listed as stopped until `mcpr proxy delete`.\n"
             "  --all   every running (and stale) proxy\n"
             "Exit 1 when NAME is not running or did not exit in time.",
    .run = run,
};

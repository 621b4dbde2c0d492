/* cmd_proxy_delete.c — `mcpr proxy delete NAME [-y]`: forget a stopped proxy. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd_proxy_common.h"
#include "proxy_entries.h"

extern const mcpr_cli_command cmd_proxy_delete;

/* y/yes on stdin (a terminal or not); anything else is no. */
static bool confirm(const char *name) {
  char answer[16];
  fprintf(stderr, "Delete proxy '%s'? This removes ~/.mcpr/proxies/%s [y/N] ", name, name);
  fflush(stderr);
  if (!fgets(answer, sizeof answer, stdin))
    return false;
  answer[strcspn(answer, "\r\n")] = '\0';
  return strcmp(answer, "y") == 0 || strcmp(answer, "Y") == 0 || strcmp(answer, "yes") == 0;
}

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  (void)ctx;
  const mcpr_cli_command *cmd = &cmd_proxy_delete;
  bool yes = false;
  const char *name = NULL;
  const cli_opt opts[] = {{"--yes", 'y', false, NULL, &yes}, {0}};
  int rc = cli_parse_name(cmd, argc, argv, opts, &name);
  if (rc >= 0)
    return rc;
  if (!name)
    return cli_usage_error(cmd, "which proxy? give its NAME (see `mcpr proxy list`)");
  mcpr_proxy_entry e;
  mcpr_error err = {0};
  if (mcpr_registry_get(name, &e, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  if (e.state == MCPR_PROXY_RUNNING)
    return cli_fail("proxy '%s' is running (pid %ld); stop it first with `mcpr proxy stop %s`",
                    name, (long)e.pid, name);
  if (!yes && !confirm(name)) {
    printf("Cancelled: proxy '%s' kept.\n", name);
    return CLI_EXIT_OK;
  }
  if (mcpr_registry_delete(name, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  printf("Proxy '%s' deleted.\n", name);
  return CLI_EXIT_OK;
}

const mcpr_cli_command cmd_proxy_delete = {
    .group = "proxy",
    .name = "delete",
    .summary = "forget a stopped (or stale) proxy",
    .usage = "mcpr proxy delete NAME [-y]\n"
             "\n"
             "Removes ~/.mcpr/proxies/NAME. A running proxy is refused: stop it first.\n"
             "Its requests in the store are kept (see `mcpr store vacuum`).\n"
             "  -y, --yes   do not ask for confirmation",
    .run = run,
};

/* cmd_proxy_list.c — `mcpr proxy list`: the proxies in ~/.mcpr/proxies. */
#include <stdio.h>
#include <stdlib.h>

#include "cmd_proxy_common.h"
#include "format.h"
#include "proxy_entries.h"

extern const mcpr_cli_command cmd_proxy_list;

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  (void)ctx;
  bool json = false;
  const cli_opt opts[] = {{"--json", 0, false, NULL, &json}, {0}};
  int npos = 0;
  int rc = cli_parse_args(&cmd_proxy_list, argc, argv, opts, NULL, 0, &npos);
  if (rc >= 0)
    return rc;
  mcpr_proxy_entry *v = NULL;
  size_t n = 0;
  mcpr_error err = {0};
  if (mcpr_registry_list(&v, &n, &err) != MCPR_OK)
    return cli_fail("%s", err.message);
  if (json) {
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(a, cli_proxy_entry_json(&v[i]));
    fmt_json_line(stdout, a);
  } else if (n == 0) {
    fprintf(stderr, "No proxies found.\n");
  } else {
    cli_proxy_entries_print(stdout, v, n);
  }
  free(v);
  return CLI_EXIT_OK;
}

const mcpr_cli_command cmd_proxy_list = {
    .group = "proxy",
    .name = "list",
    .summary = "the proxies on this machine: running, stale or stopped",
    .usage = "mcpr proxy list [--json]\n"
             "\n"
             "Every proxy started with `mcpr proxy run` by this user (~/.mcpr/proxies/NAME):\n"
             "  running  its process is alive\n"
             "  stale    its process died without cleaning up (kill -9, crash);\n"
             "           `mcpr proxy stop NAME` cleans it up\n"
             "  stopped  it exited; `mcpr proxy delete NAME` forgets it\n"
             "  --json   one JSON array: name, status, and for running/stale proxies pid,\n"
             "           port, started_at, config_path (running: localhost_url,\n"
             "           tunnel_url, upstream_url)",
    .run = run,
};

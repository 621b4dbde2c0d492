/*
 * cmd_validate.c — `mcpr validate [-c FILE]`: is this config good enough
 * to run the proxy? The findings of `mcpr config check` (same printer)
 * plus the keys a proxy needs (mcpr_config_require_proxy).
 */
#include <stdio.h>

#include "cli_config.h"
#include "cmd_proxy_common.h"
#include "config_warn.h"
#include "format.h"

extern const mcpr_cli_command cmd_validate;

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  const cli_opt opts[] = {{NULL, 0, false, NULL, NULL}};
  int npos = 0;
  int rc = cli_parse_args(&cmd_validate, argc, argv, opts, NULL, 0, &npos);
  if (rc >= 0)
    return rc;
  mcpr_config *cfg = NULL;
  if ((rc = cli_config_load(ctx, true, &cfg)) != 0)
    return rc;
  mcpr_config_require_proxy(cfg);
  size_t errors = cli_config_print_diags(cfg);
  if (!errors) {
    fmt_put_clean(stdout, cfg->file_path);
    fputs(": valid (proxy '", stdout);
    fmt_put_clean(stdout, cfg->name ? cfg->name : "default");
    fputs("' in front of ", stdout);
    fmt_put_clean(stdout, cfg->mcp);
    fputs(")\n", stdout);
  }
  mcpr_config_free(cfg);
  return errors ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

const mcpr_cli_command cmd_validate = {
    .group = NULL,
    .name = "validate",
    .summary = "check that a config can run the proxy",
    .usage = "mcpr validate [-c FILE]\n"
             "\n"
             "Checks every key of FILE (default ./mcpr.toml): the proxy's (mcp present and\n"
             "an http(s) URL, port 1-65535, durations, sizes, limits, log_format), [store]\n"
             "and [cloud]. Prints each finding as FILE:LINE:COL: error|warning: message.\n"
             "  -c, --config FILE   the config to check\n"
             "Exit 1 when there is an error (warnings such as an unknown key are fine).",
    .run = run,
};

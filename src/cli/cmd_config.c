/*
 * cmd_config.c — `mcpr config check [-c FILE]`: the config as mcpr
 * will use it (store path resolved, cloud endpoint, token masked) and every
 * warning and error with its line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_config.h"
#include "config_warn.h"
#include "format.h"
#include "mcpr/mcpr.h"

extern const mcpr_cli_command cmd_config_check;

/* Print user-controlled text without control characters (no terminal tricks). */

static void line_str(const char *key, const char *value, const char *absent) {
  printf("%-24s ", key);
  if (value)
    fmt_put_clean(stdout, value);
  else
    fputs(absent, stdout);
  fputc('\n', stdout);
}

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (cli_is_help(argv[i])) {
      printf("%s\n", cmd_config_check.usage);
      return CLI_EXIT_OK;
    }
    return cli_usage_error(&cmd_config_check, "unexpected argument '%s'", argv[i]);
  }
  mcpr_config *cfg = NULL;
  int rc = cli_config_load(ctx, true, &cfg);
  if (rc != 0)
    return rc;

  printf("%-24s ", "config");
  fmt_put_clean(stdout, cfg->file_path);
  fputs(cfg->file_exists ? "\n" : " (not found: defaults)\n", stdout);
  line_str("name", cfg->name, "(not set)");
  line_str("mcp", cfg->mcp, "(not set)");
  if (cfg->port)
    printf("%-24s %lld\n", "port", (long long)cfg->port);
  else
    line_str("port", NULL, "(not set)");
  line_str("store.enabled", cfg->store.enabled ? "true" : "false", "");
  mcpr_error perr = {0};
  char *store_path = mcpr_config_store_path(cfg, ctx->db_path, &perr);
  char shown[1024];
  line_str("store.path", store_path ? mcpr_store_target_redact(store_path, shown, sizeof shown)
                                    : NULL,
           perr.message[0] ? perr.message : "(unknown)");
  free(store_path);
  line_str("store.name", cfg->store.name, "(not set)");
  line_str("cloud.endpoint", mcpr_config_cloud_endpoint(cfg), "");
  char mask[64];
  line_str("cloud.token", cfg->cloud.token ? mcpr_secret_mask(cfg->cloud.token, mask, sizeof mask)
                                           : NULL,
           "(not set)");
  line_str("cloud.server", cfg->cloud.server, "(not set)");
  printf("%-24s %lld\n", "cloud.batch_size", (long long)cfg->cloud.batch_size);
  printf("%-24s %lld\n", "cloud.flush_interval_ms", (long long)cfg->cloud.flush_interval_ms);

  size_t errors = cli_config_print_diags(cfg);
  mcpr_config_free(cfg);
  return errors ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

const mcpr_cli_command cmd_config_check = {
    .group = "config",
    .name = "check",
    .summary = "check mcpr.toml and show the config mcpr will use",
    .usage = "mcpr config check [-c|--config FILE]\n"
             "  -c, --config FILE   config file (default: ./mcpr.toml; a missing default is fine)\n"
             "Prints the resolved config (store path, cloud endpoint, masked token) and every\n"
             "warning and error with its line. Exit 1 when the file has errors.",
    .run = run,
};

/* cli_config.c — see cli_config.h. */
#include "cli_config.h"

#include <stdlib.h>

#include "config_warn.h"

int cli_config_load(const mcpr_cli_ctx *ctx, bool keep_invalid, mcpr_config **cfg) {
  mcpr_error err = {0};
  *cfg = NULL;
  mcpr_status st = mcpr_config_load(ctx->config_path, cfg, &err);
  if (!*cfg)
    return cli_fail("%s", err.message);
  if (keep_invalid)
    return 0; /* the caller prints every finding */
  if (st != MCPR_OK) {
    cli_config_print_diags(*cfg);
    mcpr_config_free(*cfg);
    *cfg = NULL;
    return CLI_EXIT_FAIL;
  }
  cli_config_secret_warnings(*cfg);
  return 0;
}

int cli_store_path(const mcpr_cli_ctx *ctx, char **path) {
  mcpr_error err = {0};
  *path = NULL;
  if (ctx->db_path && *ctx->db_path && !ctx->config_path) {
    if (!(*path = mcpr_store_resolve_path(ctx->db_path, &err)))
      return cli_fail("%s", err.message);
    return 0;
  }
  mcpr_config *cfg = NULL;
  int rc = cli_config_load(ctx, false, &cfg);
  if (rc != 0)
    return rc;
  *path = mcpr_config_store_path(cfg, ctx->db_path, &err);
  mcpr_config_free(cfg);
  if (!*path)
    return cli_fail("%s", err.message);
  return 0;
}

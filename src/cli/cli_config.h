/*
 * cli_config.h — which mcpr.toml a command reads, and so which store it
 * uses. As the original: the global -c/--config FILE (before or after the
 * command; main.c takes it out of the line into ctx->config_path), else
 * ./mcpr.toml when it exists. An explicit file that does not exist is an
 * error; a missing ./mcpr.toml is fine (defaults).
 *
 * The store (SPEC §4): the global --db PATH, else the config's
 * [store] path, else $MCPR_DB, else ~/.mcpr/store.db.
 */
#ifndef MCPR_CLI_CLI_CONFIG_H
#define MCPR_CLI_CLI_CONFIG_H

#include "cli.h"
#include "mcpr/config.h"
#include "mcpr/store.h"

/*
 * Load the config of this run into *cfg (new; mcpr_config_free()). A file
 * with errors prints every finding and fails; otherwise its secret-at-risk
 * warnings are printed. keep_invalid (config check, validate): a file with
 * errors is returned too, nothing printed — the caller reports every
 * finding itself. Returns 0, or the exit code after printing why (*cfg
 * NULL).
 */
int cli_config_load(const mcpr_cli_ctx *ctx, bool keep_invalid, mcpr_config **cfg);

/*
 * The store path of this run (new string: free()). With --db and no -c the
 * config is not read at all (a broken ./mcpr.toml does not stop a command
 * told where the store is). Returns 0, or the exit code after printing why.
 */
int cli_store_path(const mcpr_cli_ctx *ctx, char **path);

#endif

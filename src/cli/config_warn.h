/*
 * config_warn.h — the config findings every command shows, not only
 * `mcpr config check`: a secret at risk (mcpr_config_diag.secret_at_risk,
 * e.g. a token file that others can read).
 */
#ifndef MCPR_CLI_CONFIG_WARN_H
#define MCPR_CLI_CONFIG_WARN_H

#include "mcpr/config.h"

/* Print "mcpr: warning: FILE: message" on stderr for each; NULL is a no-op. */
void cli_config_secret_warnings(const mcpr_config *cfg);

/*
 * Print every finding as "FILE:LINE:COL: error|warning: message" on stderr
 * (the token redacted), then "mcpr: N errors, M warnings in FILE" when
 * there are errors. Returns the number of errors. (config check, validate)
 */
size_t cli_config_print_diags(const mcpr_config *cfg);

#endif

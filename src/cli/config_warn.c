/* config_warn.c — see config_warn.h. */
#include "config_warn.h"
#include "format.h"

#include <stdbool.h>
#include <stdio.h>

#include "mcpr/cloud.h"


void cli_config_secret_warnings(const mcpr_config *cfg) {
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++) {
    const mcpr_config_diag *d = mcpr_config_diag_at(cfg, i);
    if (!d->secret_at_risk)
      continue;
    fputs("mcpr: warning: ", stderr);
    fmt_put_clean(stderr, cfg->file_path);
    fputs(": ", stderr);
    fmt_put_clean(stderr, d->message);
    fputc('\n', stderr);
  }
}

size_t cli_config_print_diags(const mcpr_config *cfg) {
  size_t errors = 0, warnings = 0;
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++) {
    const mcpr_config_diag *d = mcpr_config_diag_at(cfg, i);
    bool is_err = d->severity == MCPR_CONFIG_ERROR;
    errors += is_err;
    warnings += !is_err;
    char msg[sizeof d->message];
    snprintf(msg, sizeof msg, "%s", d->message);
    if (cfg->cloud.token)
      mcpr_secret_redact(msg, sizeof msg, cfg->cloud.token);
    fmt_put_clean(stderr, cfg->file_path);
    if (d->line > 0)
      fprintf(stderr, ":%d:%d", d->line, d->column);
    fprintf(stderr, ": %s: ", is_err ? "error" : "warning");
    fmt_put_clean(stderr, msg);
    fputc('\n', stderr);
  }
  if (errors) {
    fprintf(stderr, "mcpr: %zu error%s, %zu warning%s in ", errors, errors == 1 ? "" : "s",
            warnings, warnings == 1 ? "" : "s");
    fmt_put_clean(stderr, cfg->file_path);
    fputc('\n', stderr);
  }
  return errors;
}

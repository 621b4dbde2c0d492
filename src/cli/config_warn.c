/* config_warn.c — see config_warn.h. */
#include "config_warn.h"

#include <stdio.h>

static void put_clean(FILE *out, const char *s) {
  for (const unsigned char *c = (const unsigned char *)s; *c; c++)
    fputc(*c < 0x20 || *c == 0x7f ? '?' : *c, out);
}

void cli_config_secret_warnings(const mcpr_config *cfg) {
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++) {
    const mcpr_config_diag *d = mcpr_config_diag_at(cfg, i);
    if (!d->secret_at_risk)
      continue;
    fputs("mcpr: warning: ", stderr);
    put_clean(stderr, cfg->file_path);
    fputs(": ", stderr);
    put_clean(stderr, d->message);
    fputc('\n', stderr);
  }
}

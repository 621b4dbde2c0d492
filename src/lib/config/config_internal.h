/* config_internal.h — shared between config.c and writer.c (internal). */
#ifndef MCPR_CONFIG_INTERNAL_H
#define MCPR_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "mcpr/config.h"

/* Parse and validate text into cfg (diagnostics appended). */
mcpr_status mcpr__config_from_text(mcpr_config *cfg, const char *text, size_t len,
                                   mcpr_error *err);
/*
 * Read a whole config file, bounded by the 1 MiB cap. *text is new (NUL
 * terminated). A missing file with missing_ok: MCPR_OK, *exists false.
 * *mode (may be NULL) gets the file's permission bits (0 when missing).
 */
mcpr_status mcpr__config_read_file(const char *path, bool missing_ok, char **text, size_t *len,
                                   bool *exists, unsigned *mode, mcpr_error *err);

#endif

/*
 * cli_json.h — the one-object `--json` outputs of `proxy status` and
 * `proxy session`, built in their command files and reused by the
 * dashboard's API (src/dashboard), so both print the same objects.
 * Row objects are in format.h (fmt_json_*_row).
 */
#ifndef MCPR_CLI_JSON_H
#define MCPR_CLI_JSON_H

#include <jansson.h>

#include "mcpr/query.h"
#include "proxy_entries.h"

/* `proxy status --json`: proxy (NULL: all), since (the window's text),
 * totals, session counts, proxies (pv[0..pn)), tools. New reference. */
json_t *cli_status_json(const char *proxy, const char *since, const mcpr_status_summary *s,
                        const mcpr_proxy_entry *pv, size_t pn);
/* `proxy session --json`: the session's fields, proxy and requests. New
 * reference. */
json_t *cli_session_json(const mcpr_session_detail *d);

#endif

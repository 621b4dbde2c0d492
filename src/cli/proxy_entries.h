/*
 * proxy_entries.h — how the registry's proxies (../proxy/registry.h) are
 * shown: `proxy list` and the `proxies` of `proxy status`.
 */
#ifndef MCPR_CLI_PROXY_ENTRIES_H
#define MCPR_CLI_PROXY_ENTRIES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "../proxy/registry.h"

/* `proxy list --json` element, as the original: running → name, status,
 * pid, port, started_at, config_path, localhost_url, tunnel_url (null),
 * upstream_url; stale → name, status, pid, port, started_at, config_path;
 * stopped → name, status. New reference. */
json_t *cli_proxy_entry_json(const mcpr_proxy_entry *e);
/* `proxy status --json` element: name, status, port, pid, localhost_url
 * (null when not running or stale). New reference. */
json_t *cli_proxy_entry_status_json(const mcpr_proxy_entry *e);
/* A table: NAME STATUS PID PORT URL UPSTREAM STARTED. */
void cli_proxy_entries_print(FILE *out, const mcpr_proxy_entry *v, size_t n);

#endif

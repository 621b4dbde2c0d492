/*
 * live.h — what `mcpr proxy reload` may change in a running proxy, and
 * the stderr log whose format can change while events flow.
 *
 * Live (applied at reload): log_format, allowed_origins, request_timeout,
 * connect_timeout, drain_timeout. Everything else (name, mcp, port,
 * listen, admin_bind, the body and concurrency limits, [store], [cloud])
 * needs a restart: a reload that changes one of them is rejected whole,
 * as the original mcpr does, and the running config is kept.
 */
#ifndef MCPR_PROXY_LIVE_H
#define MCPR_PROXY_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "mcpr/config.h"
#include "mcpr/sink.h"

/* The keys the help names as live (one line, comma separated). */
#define MCPR_LIVE_KEYS "log_format, allowed_origins, request_timeout, connect_timeout, drain_timeout"

/* Comma-separated names of the keys that differ between old and new and
 * need a restart, into buf ("" when none). Returns how many. */
size_t mcpr_live_restart_keys(const mcpr_config *old, const mcpr_config *new_cfg, char *buf,
                              size_t size);
/* Comma-separated live keys that differ ("" when none). */
size_t mcpr_live_changed_keys(const mcpr_config *old, const mcpr_config *new_cfg, char *buf,
                              size_t size);

typedef enum { MCPR_LOG_OFF = 0, MCPR_LOG_JSON = 1, MCPR_LOG_PRETTY = 2 } mcpr_log_format;

/* "json" | "pretty" | "off" → format; false when unknown. */
bool mcpr_log_format_parse(const char *s, mcpr_log_format *out);

/*
 * A sink writing events to fp (borrowed) in a format that may change at
 * any time with mcpr_live_log_set() (from any thread). *handle is borrowed
 * and lives as long as the sink (owned by the fan-out it is added to).
 */
typedef struct mcpr_live_log mcpr_live_log;
mcpr_status mcpr_live_log_new(mcpr_sink **out, mcpr_live_log **handle, FILE *fp,
                              mcpr_log_format format, mcpr_error *err);
void mcpr_live_log_set(mcpr_live_log *log, mcpr_log_format format);

#endif

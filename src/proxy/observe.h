/*
 * observe.h — what the proxy learns from the traffic it forwards, turned
 * into proxy events (SPEC §3): one `request` per JSON-RPC request or
 * notification (and one per GET/DELETE), `session_start` when an
 * initialize succeeds, `session_end` on DELETE or an upstream 404 for the
 * session, `schema_version_created` when a schema result changes.
 *
 * Everything here runs on the proxy's event-loop thread and only reads
 * copies: the forwarding code hands over the bytes it has already passed
 * on, so parsing can never delay or change a forwarded byte. Copies are
 * bounded by max_response_body (a larger body is forwarded whole but not
 * parsed; its events say so in `note`). Events go to the fan-out with
 * mcpr_fanout_emit(), which never blocks.
 */
#ifndef MCPR_PROXY_OBSERVE_H
#define MCPR_PROXY_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpr/sink.h"

typedef struct obs obs;
typedef struct obs_exchange obs_exchange;

typedef struct obs_stats {
  uint64_t events;         /* handed to the fan-out */
  uint64_t emit_refused;   /* refused by some sink (counted there too) */
  uint64_t sessions;       /* known sessions now */
} obs_stats;

/* proxy_name and upstream_url are copied; fan may be NULL (no events). */
obs *obs_new(const char *proxy_name, const char *upstream_url, mcpr_fanout *fan,
             size_t max_response_body);
void obs_free(obs *o);
void obs_get_stats(const obs *o, obs_stats *out);

/*
 * A request was received (its whole body, already bounded by
 * max_request_body). session_id: its Mcp-Session-Id header (may be NULL).
 * Never fails: without memory the exchange is still forwarded, and an
 * exchange that could not be set up is NULL (every obs_* accepts NULL).
 */
obs_exchange *obs_begin(obs *o, const char *http_method, const char *path, const char *session_id,
                        const char *body, size_t len, int64_t ts_ms, int64_t now_us);
/* The JSON text of the first request's id ("null" when none), for the
 * error bodies the proxy writes itself (borrowed, valid until obs_end). */
const char *obs_first_id(const obs_exchange *x);
/* The request went to the upstream. */
void obs_upstream_sent(obs_exchange *x, int64_t now_us);
/* The upstream's status and headers arrived. content_type and session_id
 * (its Mcp-Session-Id) may be NULL. */
void obs_response_start(obs_exchange *x, int status, const char *content_type,
                        const char *session_id, int64_t now_us);
/* Response body bytes, after they were passed on to the client. */
void obs_response_data(obs_exchange *x, const char *data, size_t len, int64_t now_us);
/*
 * The exchange is over: status is what the client got (the upstream's, or
 * the proxy's own 4xx/5xx); error_code/error_msg/note (may be NULL) describe
 * a failure of the proxy's own (502, 504, 413, 403, a client gone); every
 * request not answered yet gets its event now. Frees x.
 */
void obs_end(obs_exchange *x, int status, const char *error_code, const char *error_msg,
             const char *note, int64_t now_us);

#endif

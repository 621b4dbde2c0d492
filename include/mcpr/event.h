/*
 * event.h — proxy events, the wire format of SPEC §3.
 *
 * A proxy event is what a proxy hands to its sinks (stderr, the store, the
 * cloud). On the wire it is one JSON object with a "type" tag and the
 * fields flat beside it:
 *
 *   {"type":"session_end","session_id":"s-1","ts":1700000000000}
 *
 * mcpr_event_decode() is strict and bounded, because its input (a log file,
 * a pipe, `mcpr ingest`) is untrusted: a line over MCPR_EVENT_LINE_MAX
 * bytes, nesting deeper than MCPR_EVENT_DEPTH_MAX, a NUL byte, invalid
 * UTF-8, a wrong type, a missing required field or an unknown "type" is an
 * MCPR_EPARSE / MCPR_ETOOBIG error whose message names the field, e.g.
 *   field "latency_us": expected an integer
 * Unknown extra fields are ignored (forward compatibility); only a known
 * field of the wrong type is refused.
 *
 * mcpr_event_encode() writes the fields in a fixed order (the order of the
 * structs below, "type" first), compact, with `null` for every absent
 * optional — except "stage_timings" and "server", which the original omits
 * when absent and so do we. encode(decode(encode(e))) is byte for byte
 * encode(e). Reals inside JSON values (payload, stage_timings) are written
 * in the fewest digits that read back as the same number (0.1, 16.67).
 *
 * Required (missing or null is an error) / optional, per type:
 *   request:        id, ts, proxy, method, status, latency_us required;
 *                   session_id, path, mcp_method, tool, resource_uri,
 *                   prompt_name, upstream_us, request_size, response_size,
 *                   error_code, error_msg, client_name, client_version,
 *                   note optional; stage_timings optional: the original's
 *                   array of {"name": string, "elapsed_us": integer >= 0}
 *                   (MCPR_STAGE_TIMING=1; other keys in an entry are kept),
 *                   or an object (stage → value), kept as JSON text.
 *   session_start:  session_id, proxy, ts required; client_name,
 *                   client_version, client_platform optional.
 *   session_end:    session_id, ts required.
 *   heartbeat:      ts required; proxy, mcp_status, tunnel_status,
 *                   uptime_secs, request_count optional.
 *   schema_version_created: ts, upstream_id, upstream_url, method,
 *                   content_hash, payload (any JSON value but null)
 *                   required; version, version_id optional.
 * Every type also accepts an optional "server" (the cloud slug, SPEC §8).
 * Integers are JSON integers (a real like 1.5 is refused); ts, latency_us,
 * sizes and counts must be >= 0; "status" is the HTTP status (100..999).
 * Durations (latency_us, upstream_us) are at most MCPR_EVENT_DURATION_US_MAX
 * (one year) and sizes (request_size, response_size) at most
 * MCPR_EVENT_SIZE_BYTES_MAX (1 TiB): larger values are MCPR_ERANGE, e.g.
 *   field "latency_us": out of range (got 9000000000000000000; ...)
 * so that the stats summed over millions of requests stay far from
 * overflowing int64.
 * "error_code" may be a string or an integer (JSON-RPC codes are integers);
 * it is kept and re-encoded as a string.
 *
 * Ownership: a decoded or copied mcpr_event owns every string in it;
 * release it with mcpr_event_release(). Events you build yourself on the
 * stack may point anywhere: encode and copy only borrow (so does
 * mcpr_event_to_store(), in sink.h).
 */
#ifndef MCPR_EVENT_H
#define MCPR_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest accepted line / JSON text, in bytes (1 MiB). */
#define MCPR_EVENT_LINE_MAX (1024 * 1024)
/* Deepest accepted nesting of arrays/objects (the event object is 1). */
#define MCPR_EVENT_DEPTH_MAX 64
/* An optional integer that is absent (encoded as null). */
#define MCPR_EVENT_ABSENT INT64_MIN

/* Bounds on decoded durations and sizes (see above). */
#define MCPR_EVENT_DURATION_US_MAX INT64_C(31622400000000) /* 366 days in µs */
#define MCPR_EVENT_SIZE_BYTES_MAX (INT64_C(1) << 40)      /* 1 TiB */

typedef enum mcpr_event_type {
  MCPR_EVENT_REQUEST = 1,
  MCPR_EVENT_SESSION_START = 2,
  MCPR_EVENT_SESSION_END = 3,
  MCPR_EVENT_HEARTBEAT = 4,
  MCPR_EVENT_SCHEMA_VERSION_CREATED = 5,
} mcpr_event_type;

/* The wire name: "request", "session_start", …; NULL when out of range. */
MCPR_API const char *mcpr_event_type_name(mcpr_event_type type);

/* Strings: NULL when absent. Integers: MCPR_EVENT_ABSENT when absent. */
typedef struct mcpr_event_request {
  char *id;           /* UUIDv7 of the request */
  int64_t ts;         /* unix ms when received */
  char *proxy;
  char *session_id;
  char *method;       /* HTTP method, e.g. "POST" */
  char *path;
  char *mcp_method;   /* JSON-RPC method, e.g. "tools/call" */
  char *tool;
  char *resource_uri;
  char *prompt_name;
  int64_t status;     /* HTTP status */
  int64_t latency_us;
  int64_t upstream_us;
  int64_t request_size;
  int64_t response_size;
  char *error_code;
  char *error_msg;
  char *client_name;
  char *client_version;
  char *note;
  char *stage_timings; /* compact JSON text (array or object); omitted when NULL */
} mcpr_event_request;

typedef struct mcpr_event_session_start {
  char *session_id;
  char *proxy;
  int64_t ts;
  char *client_name;
  char *client_version;
  char *client_platform;
} mcpr_event_session_start;

typedef struct mcpr_event_session_end {
  char *session_id;
  int64_t ts;
} mcpr_event_session_end;

typedef struct mcpr_event_heartbeat {
  int64_t ts;
  char *proxy;
  char *mcp_status;
  char *tunnel_status;
  int64_t uptime_secs;
  int64_t request_count;
} mcpr_event_heartbeat;

typedef struct mcpr_event_schema_version {
  int64_t ts;
  char *upstream_id;
  char *upstream_url;
  char *method;
  int64_t version;
  char *version_id;
  char *content_hash;
  char *payload; /* compact JSON text of any JSON value */
} mcpr_event_schema_version;

typedef struct mcpr_event {
  mcpr_event_type type;
  char *server; /* cloud server slug; omitted from JSON when NULL */
  union {
    mcpr_event_request request;
    mcpr_event_session_start session_start;
    mcpr_event_session_end session_end;
    mcpr_event_heartbeat heartbeat;
    mcpr_event_schema_version schema_version;
  } u;
} mcpr_event;

/* Zero an event and set its type, with every optional integer absent. */
MCPR_API void mcpr_event_init(mcpr_event *ev, mcpr_event_type type);

/*
 * Decode one JSON object (len bytes, no NUL needed; a trailing "\n" or
 * "\r\n" is allowed) into *out, which is initialised first and owns its
 * strings on success. On failure *out holds nothing to release and err
 * names the field or the position.
 */
MCPR_API mcpr_status mcpr_event_decode(const char *text, size_t len, mcpr_event *out,
                                       mcpr_error *err);

/*
 * Encode ev as one compact JSON object without a newline. Returns a *new*
 * string (free() it) and its length in *len_out (may be NULL), or NULL
 * with err filled (a required field missing, a JSON field that is not
 * valid JSON, no memory).
 */
MCPR_API char *mcpr_event_encode(const mcpr_event *ev, size_t *len_out, mcpr_error *err);

/* Deep copy src into *dst (which then owns its strings). */
MCPR_API mcpr_status mcpr_event_copy(mcpr_event *dst, const mcpr_event *src, mcpr_error *err);

/* Free the strings an event owns (decoded or copied) and zero it. NULL ok. */
MCPR_API void mcpr_event_release(mcpr_event *ev);


#ifdef __cplusplus
}
#endif
#endif

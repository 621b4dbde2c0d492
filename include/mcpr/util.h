/*
 * util.h — small rules shared by every part of mcpr (SPEC §9): client
 * platform normalisation, UUIDv7 request ids, the clock.
 */
#ifndef MCPR_UTIL_H
#define MCPR_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Normalised platform for a client name, case-insensitive, first match:
 * claude, cursor, chatgpt (chatgpt|openai), vscode (copilot|vscode|vs-code),
 * windsurf, else "unknown". NULL name → NULL. Returns a static string.
 */
MCPR_API const char *mcpr_client_platform(const char *client_name);

#define MCPR_UUID_STRLEN 36
/*
 * Writes a UUIDv7 (RFC 9562) for unix time ts_ms as 36 characters plus NUL
 * into out. Random bits come from the OS; ids made in one process within
 * the same millisecond still sort in creation order.
 */
MCPR_API void mcpr_uuid_v7(int64_t ts_ms, char out[MCPR_UUID_STRLEN + 1]);

/*
 * Optional and process-wide: call once at program start, before anything
 * in the process uses SQLite or jansson. It
 *   - turns off SQLite's memory statistics, a global mutex taken on every
 *     SQLite allocation (+10–15% store write throughput, mcpr-bench write);
 *   - routes jansson's allocations through mcpr, so that an allocation
 *     failing inside a JSON parse is reported as MCPR_ENOMEM: jansson 2.14
 *     can otherwise drop a byte of a string and still succeed
 *     (akheron/jansson#362).
 * Returns MCPR_EBUSY, harmlessly, when SQLite was already initialised (the
 * jansson part is done either way). The mcpr programs call it; nothing
 * else in the library needs it.
 */
MCPR_API mcpr_status mcpr_process_init(void);

/* Wall clock, unix milliseconds UTC. */
MCPR_API int64_t mcpr_now_ms(void);

/*
 * Human durations and counts for command-line flags (SPEC §7). Each takes
 * the flag's name (for the message; may be NULL) and fills err with a
 * message that names the flag and the accepted forms. Nothing out of range
 * ever reaches a caller: negative, zero, non-numeric and overflowing values
 * are MCPR_EINVAL / MCPR_ERANGE.
 *
 * mcpr_parse_duration_ms: an integer and one of s m h d w, surrounding
 *   spaces allowed ("1h", " 30 m "); *out_ms > 0.
 * mcpr_parse_threshold_us: the same units plus us, µs/μs and ms ("500ms",
 *   "250us", "2s"); *out_us > 0.
 * mcpr_parse_count: a positive decimal integer (--tail, --limit) of at most
 *   MCPR_COUNT_MAX.
 */
#define MCPR_COUNT_MAX 100000000
MCPR_API mcpr_status mcpr_parse_duration_ms(const char *flag, const char *text,
                                            int64_t *out_ms, mcpr_error *err);
MCPR_API mcpr_status mcpr_parse_threshold_us(const char *flag, const char *text,
                                             int64_t *out_us, mcpr_error *err);
MCPR_API mcpr_status mcpr_parse_count(const char *flag, const char *text, int64_t *out,
                                      mcpr_error *err);

#ifdef __cplusplus
}
#endif
#endif

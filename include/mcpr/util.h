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

/* Wall clock, unix milliseconds UTC. */
MCPR_API int64_t mcpr_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif

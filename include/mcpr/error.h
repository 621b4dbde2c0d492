/*
 * error.h — result codes and the caller-owned error record.
 *
 * Every function that can fail returns an mcpr_status and, when given a
 * non-NULL mcpr_error, fills it with a message a user can act on (what
 * failed, where, and what to do). The table below is append-only: codes
 * never change meaning once released.
 */
#ifndef MCPR_ERROR_H
#define MCPR_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MCPR_BUILDING_LIBRARY)
#define MCPR_API __attribute__((visibility("default")))
#else
#define MCPR_API
#endif

/* X(code, name, message) — append only. */
#define MCPR_STATUS_TABLE(X)                                                    \
  X(MCPR_OK, "OK", "success")                                                   \
  X(MCPR_EINVAL, "EINVAL", "invalid argument")                                  \
  X(MCPR_ENOMEM, "ENOMEM", "out of memory")                                     \
  X(MCPR_EIO, "EIO", "input/output error")                                      \
  X(MCPR_EDISKFULL, "EDISKFULL", "disk full")                                   \
  X(MCPR_EBUSY, "EBUSY", "database is locked by another connection")            \
  X(MCPR_ENOTSTORE, "ENOTSTORE", "file is not an mcpr store")                   \
  X(MCPR_ENEWER, "ENEWER", "store was written by a newer mcpr")                 \
  X(MCPR_ECORRUPT, "ECORRUPT", "store file is corrupt")                         \
  X(MCPR_EQUEUEFULL, "EQUEUEFULL", "queue is full")                             \
  X(MCPR_ECLOSING, "ECLOSING", "store is closing")                              \
  X(MCPR_ETIMEDOUT, "ETIMEDOUT", "timed out")                                   \
  X(MCPR_ENOTFOUND, "ENOTFOUND", "not found")                                   \
  X(MCPR_ECONSTRAINT, "ECONSTRAINT", "constraint violated")                     \
  X(MCPR_EPARSE, "EPARSE", "parse error")                                       \
  X(MCPR_ERANGE, "ERANGE", "value out of range")                                \
  X(MCPR_ESQL, "ESQL", "database error")                                        \
  X(MCPR_EREADONLY, "EREADONLY", "store is read-only")                          \
  X(MCPR_EHTTP, "EHTTP", "HTTP error")                                          \
  X(MCPR_ENETWORK, "ENETWORK", "network error")                                 \
  X(MCPR_EAUTH, "EAUTH", "not authorized")                                      \
  X(MCPR_ETOOBIG, "ETOOBIG", "input too large")

typedef enum mcpr_status {
#define MCPR__STATUS_ENUM(code, name, msg) code,
  MCPR_STATUS_TABLE(MCPR__STATUS_ENUM)
#undef MCPR__STATUS_ENUM
  MCPR_STATUS_COUNT
} mcpr_status;

#define MCPR_ERROR_MESSAGE_MAX 512

/* Caller-owned. Zero-initialise or call mcpr_error_clear() before use. */
typedef struct mcpr_error {
  mcpr_status status;
  char message[MCPR_ERROR_MESSAGE_MAX];
} mcpr_error;

/* Static text for a status (never NULL, even for unknown codes). */
MCPR_API const char *mcpr_strerror(mcpr_status status);
/* Static symbolic name, e.g. "EDISKFULL". */
MCPR_API const char *mcpr_status_name(mcpr_status status);
/* Reset to MCPR_OK and an empty message. NULL is a no-op. */
MCPR_API void mcpr_error_clear(mcpr_error *err);
/*
 * Fill err (if non-NULL) with status and a printf-style message, truncated
 * to fit. Returns status, so callers can `return mcpr_error_set(...)`.
 */
MCPR_API mcpr_status mcpr_error_set(mcpr_error *err, mcpr_status status,
                                    const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif

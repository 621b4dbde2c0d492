/*
 * lazy_pico.c — picohttpparser's functions (picohttpparser.h), taken from
 * libh2o-evloop on first use, as core/lazy_curl.c and core/lazy_pq.c take
 * libcurl's and libpq's (core/dynlib.h): only `mcpr proxy run` parses
 * HTTP/1.x, so no other command loads libh2o and its dependencies. The
 * proxy calls mcpr__pico_load() when it starts, so a missing library is
 * an error at once and not a 400 for every request.
 */
#include "picohttpparser.h"

#include "core/dynlib.h"

static mcpr__dynlib libh2o = {MCPR_PICO_SONAME, NULL, 0};

#define PHR(ret, name, params, args, fallback) \
  MCPR__DYNLIB_STUB(libh2o, ret, name, params, args, fallback)

PHR(int, phr_parse_request,
    (const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
     size_t *path_len, int *minor_version, struct phr_header *headers, size_t *num_headers,
     size_t last_len),
    (buf, len, method, method_len, path, path_len, minor_version, headers, num_headers, last_len),
    -1)
PHR(int, phr_parse_response,
    (const char *buf, size_t len, int *minor_version, int *status, const char **msg,
     size_t *msg_len, struct phr_header *headers, size_t *num_headers, size_t last_len),
    (buf, len, minor_version, status, msg, msg_len, headers, num_headers, last_len), -1)
PHR(int, phr_parse_headers,
    (const char *buf, size_t len, struct phr_header *headers, size_t *num_headers,
     size_t last_len),
    (buf, len, headers, num_headers, last_len), -1)

bool mcpr__pico_load(const char **why) {
  static const char *const used[] = {"phr_parse_request", "phr_parse_response",
                                     "phr_parse_headers"};
  for (size_t i = 0; i < sizeof used / sizeof used[0]; i++) {
    if (!mcpr__dynlib_sym(&libh2o, used[i])) {
      if (why) {
        const char *e = mcpr__dynlib_error(&libh2o);
        *why = *e ? e : "libh2o-evloop.so.0.13 has no phr_ functions";
      }
      return false;
    }
  }
  return true;
}

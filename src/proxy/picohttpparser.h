/*
 * picohttpparser.h — the declarations of picohttpparser, whose compiled
 * code Debian ships inside libh2o-evloop0.13 (the h2o 2.2.5 source
 * package), loaded on first use by lazy_pico.c.
 *
 * Why this file: Debian packages the library but not this header (h2o's
 * -dev package ships h2o's own headers only). The structs and prototypes
 * below are those of the copy h2o 2.2.5 builds into it
 * (deps/picohttpparser at the v2.2.5 tag), and must match it byte for
 * byte: struct phr_header is filled by the library.
 * (Newer releases changed struct phr_chunked_decoder, which is therefore
 * left out: see below.)
 * The issue behind the proxy's parser names "libh2o's event loop with its
 * HTTP parser" as an allowed choice; the library is loaded with dlopen so
 * that no mcpr command pays at exec for it and its dependencies (libssl,
 * wslay, zlib).
 *
 * What this project relies on, as that version behaves:
 *  - the parse functions return the head's length in bytes, -2 when the
 *    head is not complete, -1 when it is malformed; *num_headers is the
 *    array's size on the way in and the headers found on the way out (on a
 *    -1 it is where parsing stopped: equal to the array's size when there
 *    were more headers than that);
 *  - a header line beginning with SP or HTAB (obs-fold) comes back as a
 *    header whose name is NULL;
 *  - values keep their trailing blanks (not their leading ones); names are
 *    tokens; values, the target and the reason are refused if they hold a
 *    control byte other than HTAB; bytes 0x80-0xFF are let through;
 *  - only "HTTP/1.<digit>" is a version; a response needs a reason phrase
 *    after its three-digit status ("HTTP/1.1 200\r\n" is -1);
 *  - last_len != 0 checks first, from last_len - 3 on, that the buffer
 *    holds two line ends in a row, and answers -2 until it does.
 */
#ifndef MCPR_PROXY_PICOHTTPPARSER_H
#define MCPR_PROXY_PICOHTTPPARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct phr_header {
  const char *name; /* NULL: a continuation line (obs-fold) */
  size_t name_len;
  const char *value;
  size_t value_len;
};

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status,
                       const char **msg, size_t *msg_len, struct phr_header *headers,
                       size_t *num_headers, size_t last_len);

int phr_parse_headers(const char *buf, size_t len, struct phr_header *headers, size_t *num_headers,
                      size_t last_len);

/* The library's chunked decoder (phr_decode_chunked) is not declared:
 * http1.c decodes chunked bodies itself (it says why), so this project
 * depends on no struct of the library's but phr_header. */

/* --- loading (lazy_pico.c) --- */

#define MCPR_PICO_SONAME "libh2o-evloop.so.0.13"

/* Load the library and look up every phr_ function the proxy calls, now;
 * false when that fails, with *why (static text, may be NULL) saying
 * what is missing. Until it succeeds the phr_ functions answer -1. */
bool mcpr__pico_load(const char **why);

#endif

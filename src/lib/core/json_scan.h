/*
 * json_scan.h — internal: a JSON text checked in place, and the members of
 * its objects found without building anything.
 *
 * Written by hand, and why: the proxy reads a handful of fields (method,
 * id, params.name, error.code, result.isError) of every message that
 * passes, and jansson — which stays the parser of record — builds a whole
 * tree of allocated nodes to answer that, a third of the proxy's CPU per
 * request. No Debian package answers "is this exactly what jansson would
 * accept, and where is member K" without allocating: yajl and json-c
 * either build trees or parse by callbacks with acceptance rules of their
 * own. So this scanner is deliberately partial: it says yes only to texts
 * jansson (json_loadb, flags 0) certainly accepts with the same values,
 * no to texts it certainly refuses, and "unsure" to the corners where the
 * two could differ (a \u0000 or a surrogate escape, an integer past 18
 * digits, a real near the double's range, deep nesting) — the caller then
 * asks jansson. tests/fuzz/fuzz_proxy_observe.c checks that the proxy's
 * events are the same either way.
 */
#ifndef MCPR__CORE_JSON_SCAN_H
#define MCPR__CORE_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mcpr__js_result {
  MCPR__JS_OK = 0,      /* one JSON value (any type), jansson reads it alike */
  MCPR__JS_BAD = -1,    /* not JSON: jansson refuses it too */
  MCPR__JS_UNSURE = -2, /* ask jansson */
} mcpr__js_result;

/* A value inside a checked text: p at its first byte, n bytes long (a
 * string's quotes included). p NULL: absent. */
typedef struct mcpr__js_span {
  const char *p;
  size_t n;
} mcpr__js_span;

/* Check text[0..len) as one JSON value with only whitespace around it. */
mcpr__js_result mcpr__js_check(const char *text, size_t len);

/* The value of text[0..len), whitespace trimmed (text already checked). */
mcpr__js_span mcpr__js_root(const char *text, size_t len);

/* The value of member key in object v (checked). When a key occurs twice
 * the last one counts, as in jansson. Returns false when v is not an
 * object or one of its keys holds an escape (it might spell key: ask
 * jansson); *out is then zeroed. Absent: true with out->p NULL. */
bool mcpr__js_member(mcpr__js_span v, const char *key, mcpr__js_span *out);

/* mcpr__js_member for keys[0..n) at once, in one walk of v: out[i] is
 * keys[i]'s value. */
bool mcpr__js_members(mcpr__js_span v, const char *const *keys, size_t n, mcpr__js_span *out);

/* Type tests on a checked value (false when absent). */
static inline bool mcpr__js_is_object(mcpr__js_span v) { return v.p && v.p[0] == '{'; }
static inline bool mcpr__js_is_string(mcpr__js_span v) { return v.p && v.p[0] == '"'; }
static inline bool mcpr__js_is_null(mcpr__js_span v) { return v.p && v.p[0] == 'n'; }
static inline bool mcpr__js_is_true(mcpr__js_span v) { return v.p && v.p[0] == 't'; }

/* A string value without escapes: its bytes between the quotes. false for
 * anything else (a string with an escape must be decoded: ask jansson). */
bool mcpr__js_plain_string(mcpr__js_span v, const char **s, size_t *len);

/* An integer jansson holds in a json_int_t and writes back with the same
 * text (no fraction, no exponent, not "-0", at most 18 digits). */
bool mcpr__js_plain_integer(mcpr__js_span v);

/* Length of the valid UTF-8 sequence of 2 to 4 bytes at p (p < end,
 * p[0] >= 0x80); 0 when it is not one: overlong forms, surrogates and
 * code points past U+10FFFF are not. */
size_t mcpr__utf8_len(const unsigned char *p, const unsigned char *end);

#endif

/* cli_json.h — helpers for the CLI tests: NDJSON lines and exact keys. */
#ifndef MCPR_TEST_CLI_JSON_H
#define MCPR_TEST_CLI_JSON_H

#include <jansson.h>
#include <string.h>

#include "testutil.h"

/* Parse line i (0-based) of NDJSON text; fails the test if it is not an object. */
static inline json_t *nd_line(const char *text, size_t i) {
  const char *p = text;
  for (size_t k = 0; k < i && p; k++) {
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  if (!p || !*p)
    fail_msg("no line %zu in output:\n%s", i, text ? text : "(no output)");
  const char *end = strchr(p, '\n');
  json_error_t e;
  json_t *o = json_loadb(p, end ? (size_t)(end - p) : strlen(p), 0, &e);
  if (!json_is_object(o))
    fail_msg("line %zu is not a JSON object (%s):\n%s", i, e.text, text);
  return o;
}

static inline size_t nd_count(const char *text) {
  size_t n = 0;
  for (const char *p = text; *p; p++)
    n += *p == '\n';
  return n;
}

/* The object's keys are exactly the comma-separated list, in that order. */
static inline void assert_keys(json_t *o, const char *keys) {
  char buf[1024] = "";
  size_t len = 0;
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    (void)v;
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", len ? "," : "", k);
  }
  assert_string_equal(buf, keys);
}

#endif

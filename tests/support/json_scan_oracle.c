/* json_scan_oracle.c — see json_scan_oracle.h. */
#include "json_scan_oracle.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/json_scan.h"

/* Member key of object span v against jansson's object o, and one level
 * into members that are objects. */
static const char *agree_member(mcpr__js_span v, json_t *o, const char *key, int depth) {
  mcpr__js_span m;
  if (!mcpr__js_member(v, key, &m))
    return NULL; /* the scanner declined (an escaped key): nothing claimed */
  json_t *j = json_object_get(o, key);
  if (!j)
    return m.p ? "member found that jansson does not have" : NULL;
  if (!m.p)
    return "member missed";
  const char *s;
  size_t n;
  if (mcpr__js_is_string(m) != json_is_string(j) || mcpr__js_is_object(m) != json_is_object(j) ||
      mcpr__js_is_null(m) != json_is_null(j) || mcpr__js_is_true(m) != json_is_true(j))
    return "member of another type";
  if (mcpr__js_plain_string(m, &s, &n) &&
      (n != json_string_length(j) || memcmp(s, json_string_value(j), n) != 0))
    return "plain string differs";
  if (mcpr__js_plain_integer(m) || mcpr__js_plain_string(m, &s, &n)) {
    /* an id's text as observe.c keeps it */
    char *d = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    int same = d && strlen(d) == m.n && memcmp(d, m.p, m.n) == 0;
    free(d);
    if (!same)
      return "compact text differs";
  }
  if (depth < 2 && json_is_object(j)) {
    const char *k;
    json_t *unused;
    json_object_foreach(j, k, unused) {
      const char *why = agree_member(m, j, k, depth + 1);
      if (why)
        return why;
    }
  }
  return NULL;
}

const char *json_scan_disagreement(const char *text, size_t len) {
  mcpr__js_result r = mcpr__js_check(text, len);
  json_t *root = json_loadb(text, len, JSON_DECODE_ANY, NULL);
  const char *why = NULL;
  if (r == MCPR__JS_OK && !root)
    why = "scanner accepts what jansson refuses";
  else if (r == MCPR__JS_BAD && root)
    why = "scanner refuses what jansson accepts";
  else if (r == MCPR__JS_OK && json_is_object(root)) {
    mcpr__js_span v = mcpr__js_root(text, len);
    static const char *const keys[] = {"id", "method", "params", "result", "error", "name", "x"};
    for (size_t i = 0; !why && i < sizeof keys / sizeof keys[0]; i++)
      why = agree_member(v, root, keys[i], 0);
    const char *k;
    json_t *unused;
    json_object_foreach(root, k, unused) {
      if (why)
        break;
      why = agree_member(v, root, k, 0);
    }
  }
  json_decref(root);
  return why;
}

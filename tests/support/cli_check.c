/* cli_check.c — see cli_check.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_check.h"

json_t *nd_line(const char *text, size_t i) {
  if (!text)
    fail_msg("no line %zu: no output", i);
  const char *p = text;
  for (size_t k = 0; k < i && *p; k++) {
    const char *nl = strchr(p, '\n');
    p = nl ? nl + 1 : p + strlen(p);
  }
  if (!*p)
    fail_msg("no line %zu in output:\n%s", i, text);
  const char *end = strchr(p, '\n');
  json_error_t e;
  json_t *o = json_loadb(p, end ? (size_t)(end - p) : strlen(p), 0, &e);
  if (!json_is_object(o))
    fail_msg("line %zu is not a JSON object (%s):\n%s", i, e.text, text);
  return o;
}

size_t nd_count(const char *text) {
  size_t n = 0;
  for (const char *p = text; *p; p++)
    n += *p == '\n';
  return n;
}

size_t keys_of(json_t *o, char *buf, size_t n) {
  buf[0] = '\0';
  size_t len = 0;
  const char *k;
  json_t *v;
  json_object_foreach(o, k, v) {
    (void)v;
    len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "", k);
    if (len >= n) /* cut: the comparison fails on it */
      return n - 1;
  }
  return len;
}

void assert_keys(json_t *o, const char *keys) {
  char buf[1024];
  keys_of(o, buf, sizeof buf);
  assert_string_equal(buf, keys);
}

const char *js(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_string(v))
    fail_msg("%s is not a string", key);
  return json_string_value(v);
}

int64_t ji(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!json_is_integer(v))
    fail_msg("%s is not an integer", key);
  return (int64_t)json_integer_value(v);
}

void assert_null_field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (!v || !json_is_null(v))
    fail_msg("%s should be present and null", key);
}

void ids_of(const char *out, char *buf, size_t n) {
  buf[0] = '\0';
  size_t len = 0;
  for (size_t i = 0; i < nd_count(out); i++) {
    json_t *o = nd_line(out, i);
    len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "," : "", js(o, "session_id"));
    json_decref(o);
    if (len >= n)
      break; /* cut: the comparison fails on it */
  }
}

/* Line text with every UTF-8 character as one byte, so byte offsets are
 * display columns. New string. */
static char *flat_line(const char *p, size_t len) {
  char *s = malloc(len + 1);
  assert_non_null(s);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)p[i];
    if ((c & 0xC0) == 0x80)
      continue;
    s[n++] = c < 0x80 ? (char)c : '#';
  }
  s[n] = '\0';
  return s;
}

size_t assert_table(const char *out, const char *first_header, const char *const *right,
                    const char *const *left) {
  const char *h = strstr(out, first_header);
  if (!h || (h != out && h[-1] != '\n'))
    fail_msg("no table with header %s in:\n%s", first_header, out);
  const char *hend = strchr(h, '\n');
  char *header = flat_line(h, hend ? (size_t)(hend - h) : strlen(h));
  size_t rows = 0;
  for (const char *p = hend ? hend + 1 : h + strlen(h); *p && *p != '\n';) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    char *line = flat_line(p, len);
    size_t ll = strlen(line);
    for (const char *const *r = right; r && *r; r++) {
      const char *at = strstr(header, *r);
      assert_non_null(at);
      size_t end = (size_t)(at - header) + strlen(*r);
      if (end > ll || line[end - 1] == ' ' || (end < ll && line[end] != ' '))
        fail_msg("column %s not right-aligned in row:\n%s\n%s", *r, header, line);
    }
    for (const char *const *l = left; l && *l; l++) {
      const char *at = strstr(header, *l);
      assert_non_null(at);
      size_t start = (size_t)(at - header);
      if (start >= ll || line[start] == ' ' || (start > 0 && line[start - 1] != ' '))
        fail_msg("column %s not left-aligned in row:\n%s\n%s", *l, header, line);
    }
    free(line);
    rows++;
    p = e ? e + 1 : p + len;
  }
  free(header);
  return rows;
}

void run_ok_on(cli_result *r, const char *path, const char *const *base,
               const char *const *extra) {
  const char *args[32];
  size_t n = 0;
  for (const char *const *w = base; w && *w && n < 29; w++)
    args[n++] = *w;
  for (const char *const *w = extra; w && *w && n < 29; w++)
    args[n++] = *w;
  args[n] = NULL;
  run_on(r, path, args);
  if (r->exit_code != 0) {
    char line[512] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof line; i++)
      len += (size_t)snprintf(line + len, sizeof line - len, " %s", args[i]);
    fail_msg("mcpr%s: exit %d, stderr:\n%s", line, r->exit_code, r->err);
  }
}

void run_on(cli_result *r, const char *path, const char *const *args) {
  const char *argv[32];
  size_t n = 0;
  argv[n++] = "--db";
  argv[n++] = path;
  for (const char *const *a = args; *a && n < 31; a++)
    argv[n++] = *a;
  argv[n] = NULL;
  cli_spec spec = {.args = argv};
  cli_run(&spec, r);
}

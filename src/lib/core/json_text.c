/* json_text.c — see json_text.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json_text.h"

/* v with precision digits, as jansson writes a real: a decimal point ('.'
 * whatever the locale) or an exponent, no '+' or leading zeros in the
 * exponent. Returns the length (0 when it does not fit). */
static size_t real_with(double v, int precision, char *buf) {
  int n = snprintf(buf, MCPR__JSON_REAL_MAX, "%.*g", precision, v);
  if (n < 0 || n >= MCPR__JSON_REAL_MAX - 2) {
    buf[0] = '\0';
    return 0;
  }
  size_t len = (size_t)n;
  /* A locale whose decimal point is a comma (LC_NUMERIC set by a program
   * using the library) must not leak into JSON. */
  for (char *p = buf; *p; p++)
    if (*p == ',')
      *p = '.';
  /* A real must not read back as an integer. */
  if (!strchr(buf, '.') && !strchr(buf, 'e')) {
    memcpy(buf + len, ".0", 3);
    len += 2;
  }
  char *e = strchr(buf, 'e');
  if (e) {
    char *start = e + 1, *digits = e + 1;
    if (*digits == '+' || *digits == '-')
      digits++;
    if (*start == '-')
      start++;
    char *end = digits;
    while (*end == '0' && end[1])
      end++;
    if (end != start) {
      memmove(start, end, strlen(end) + 1);
      len = strlen(buf);
    }
  }
  return len;
}

size_t mcpr__json_real_text(double v, char *buf) {
  /* The shortest of 15, 16 and 17 significant digits that reads back as v
   * (17 always does); 15 before 16 before 17 on a tie. */
  size_t best = 0;
  for (int precision = 15; precision <= 17; precision++) {
    char text[MCPR__JSON_REAL_MAX];
    size_t len = real_with(v, precision, text);
    if (len && strtod(text, NULL) == v && (best == 0 || len < best)) {
      memcpy(buf, text, len + 1);
      best = len;
    }
  }
  if (best == 0)
    best = real_with(v, 17, buf);
  return best;
}

static bool put(mcpr__buf *b, const char *s, size_t n) { return mcpr__buf_add(b, s, n); }

static bool put_string(mcpr__buf *b, const char *s, size_t n) {
  if (!put(b, "\"", 1))
    return false;
  size_t run = 0; /* bytes copied as they are, waiting to be added */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char seq[8];
    switch (c) {
    case '\\': esc = "\\\\"; break;
    case '"': esc = "\\\""; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    default:
      if (c < 0x20) {
        snprintf(seq, sizeof seq, "\\u%04X", c);
        esc = seq;
      }
    }
    if (!esc) {
      run++;
      continue;
    }
    if (!put(b, s + i - run, run) || !put(b, esc, strlen(esc)))
      return false;
    run = 0;
  }
  return put(b, s + n - run, run) && put(b, "\"", 1);
}

static bool put_value(mcpr__buf *b, const json_t *v) {
  char num[MCPR__JSON_REAL_MAX + 8];
  switch (json_typeof(v)) {
  case JSON_NULL:
    return put(b, "null", 4);
  case JSON_TRUE:
    return put(b, "true", 4);
  case JSON_FALSE:
    return put(b, "false", 5);
  case JSON_INTEGER: {
    int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return put(b, num, (size_t)n);
  }
  case JSON_REAL: {
    size_t n = mcpr__json_real_text(json_real_value(v), num);
    return put(b, num, n);
  }
  case JSON_STRING:
    return put_string(b, json_string_value(v), json_string_length(v));
  case JSON_ARRAY: {
    if (!put(b, "[", 1))
      return false;
    for (size_t i = 0; i < json_array_size(v); i++)
      if ((i && !put(b, ",", 1)) || !put_value(b, json_array_get(v, i)))
        return false;
    return put(b, "]", 1);
  }
  case JSON_OBJECT: {
    if (!put(b, "{", 1))
      return false;
    bool first = true;
    const char *key;
    size_t key_len;
    json_t *item;
    /* Insertion order, as json_dumps without JSON_SORT_KEYS. */
    json_object_keylen_foreach((json_t *)v, key, key_len, item) {
      if ((!first && !put(b, ",", 1)) || !put_string(b, key, key_len) || !put(b, ":", 1) ||
          !put_value(b, item))
        return false;
      first = false;
    }
    return put(b, "}", 1);
  }
  }
  return false;
}

char *mcpr__json_dumps(const json_t *v) {
  mcpr__buf b = {0};
  if (!v || !put_value(&b, v)) {
    mcpr__buf_release(&b);
    return NULL;
  }
  return b.p;
}

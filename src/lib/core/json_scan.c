/*
 * json_scan.c — see json_scan.h (why this is written by hand, and the
 * promise it keeps: yes only where jansson certainly agrees).
 *
 * The check is one recursive pass over the text, each byte looked at once;
 * nothing is allocated. Where jansson's acceptance could differ from a
 * plain reading of RFC 8259 the answer is UNSURE:
 *   - \u0000 (refused without JSON_ALLOW_NUL) and every surrogate escape
 *     (a lone one is refused, a pair accepted: not worth telling apart);
 *   - an integer of more than 18 digits (json_int_t may overflow: refused);
 *   - a real whose exponent has three digits or more, or whose integer part
 *     is very long (strtod may overflow: refused);
 *   - nesting deeper than MAX_DEPTH (jansson stops at 2048);
 *   - a NUL byte right after a number or a literal (jansson reads past it:
 *     "2\0" is 2, "null\0" null).
 * Strings are checked as jansson checks them: no byte below 0x20, escapes
 * from the JSON set, UTF-8 without overlong forms, surrogates or code
 * points past U+10FFFF.
 */
#include "core/json_scan.h"

#include <stddef.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct scan {
  const unsigned char *p, *end;
  bool stop; /* stopped where jansson reads its own way: the rest unread (UNSURE) */
} scan;

static void skip_ws(scan *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
    s->p++;
}

size_t mcpr__utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned c = p[0], cp;
  size_t n;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if ((size_t)(end - p) < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

static int hex(unsigned c) {
  if (c >= '0' && c <= '9')
    return (int)(c - '0');
  c |= 0x20;
  return c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10) : -1;
}

/* The bytes a string holds as they are: ASCII from 0x20 on but the quote
 * and the backslash (one look-up a byte where there were five tests). */
#define PLAIN_ROW(c)                                                                         \
  ((c) >= 0x20 && (c) != '"' && (c) != '\\'), ((c) + 1 >= 0x20 && (c) + 1 != '"' && (c) + 1 != '\\'), \
      ((c) + 2 >= 0x20 && (c) + 2 != '"' && (c) + 2 != '\\'), ((c) + 3 >= 0x20 && (c) + 3 != '"' && (c) + 3 != '\\')
static const bool plain_byte[256] = {
    PLAIN_ROW(0),   PLAIN_ROW(4),   PLAIN_ROW(8),   PLAIN_ROW(12),  PLAIN_ROW(16),  PLAIN_ROW(20),
    PLAIN_ROW(24),  PLAIN_ROW(28),  PLAIN_ROW(32),  PLAIN_ROW(36),  PLAIN_ROW(40),  PLAIN_ROW(44),
    PLAIN_ROW(48),  PLAIN_ROW(52),  PLAIN_ROW(56),  PLAIN_ROW(60),  PLAIN_ROW(64),  PLAIN_ROW(68),
    PLAIN_ROW(72),  PLAIN_ROW(76),  PLAIN_ROW(80),  PLAIN_ROW(84),  PLAIN_ROW(88),  PLAIN_ROW(92),
    PLAIN_ROW(96),  PLAIN_ROW(100), PLAIN_ROW(104), PLAIN_ROW(108), PLAIN_ROW(112), PLAIN_ROW(116),
    PLAIN_ROW(120), PLAIN_ROW(124), /* 0x80 on: false (UTF-8, checked apart) */
};
#undef PLAIN_ROW

/* s->p at the opening quote. */
static mcpr__js_result check_string(scan *s) {
  const unsigned char *p = s->p + 1, *end = s->end;
  mcpr__js_result r = MCPR__JS_OK;
  for (;;) {
    while (p < end && plain_byte[*p])
      p++;
    if (p >= end || *p < 0x20)
      return MCPR__JS_BAD;
    if (*p == '"')
      break;
    if (*p == '\\') {
      if (end - p < 2)
        return MCPR__JS_BAD;
      switch (p[1]) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        p += 2;
        continue;
      case 'u':
        break;
      default:
        return MCPR__JS_BAD;
      }
      if (end - p < 6)
        return MCPR__JS_BAD;
      unsigned v = 0;
      for (int i = 2; i < 6; i++) {
        int h = hex(p[i]);
        if (h < 0)
          return MCPR__JS_BAD;
        v = v << 4 | (unsigned)h;
      }
      if (v == 0 || (v >= 0xD800 && v <= 0xDFFF))
        r = MCPR__JS_UNSURE; /* go on: a later byte may still make it BAD */
      p += 6;
      continue;
    }
    size_t n = mcpr__utf8_len(p, end);
    if (n == 0)
      return MCPR__JS_BAD;
    p += n;
  }
  s->p = p + 1;
  return r;
}

static bool is_digit(unsigned c) { return c >= '0' && c <= '9'; }

static mcpr__js_result check_number(scan *s) {
  const unsigned char *p = s->p, *end = s->end;
  if (p < end && *p == '-')
    p++;
  const unsigned char *int_start = p;
  if (p >= end || !is_digit(*p))
    return MCPR__JS_BAD;
  if (*p == '0')
    p++;
  else
    while (p < end && is_digit(*p))
      p++;
  size_t int_digits = (size_t)(p - int_start);
  bool real = false;
  size_t exp_digits = 0;
  if (p < end && *p == '.') {
    real = true;
    p++;
    if (p >= end || !is_digit(*p))
      return MCPR__JS_BAD;
    while (p < end && is_digit(*p))
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    real = true;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    const unsigned char *e = p;
    while (p < end && is_digit(*p))
      p++;
    exp_digits = (size_t)(p - e);
    if (exp_digits == 0)
      return MCPR__JS_BAD;
  }
  s->p = p;
  if (p < end && *p == '\0') {
    s->stop = true; /* jansson skips a NUL byte after a number */
    return MCPR__JS_UNSURE;
  }
  if (!real)
    return int_digits > 18 ? MCPR__JS_UNSURE : MCPR__JS_OK;
  return exp_digits > 2 || int_digits > 200 ? MCPR__JS_UNSURE : MCPR__JS_OK;
}

static mcpr__js_result check_value(scan *s, int depth);

/* Keeps the worse of two results: BAD over UNSURE over OK. */
static mcpr__js_result worse(mcpr__js_result a, mcpr__js_result b) {
  if (a == MCPR__JS_BAD || b == MCPR__JS_BAD)
    return MCPR__JS_BAD;
  return a == MCPR__JS_UNSURE ? a : b;
}

static mcpr__js_result check_container(scan *s, int depth, bool object) {
  if (depth >= MAX_DEPTH) {
    s->stop = true;
    return MCPR__JS_UNSURE;
  }
  unsigned char close = object ? '}' : ']';
  mcpr__js_result r = MCPR__JS_OK;
  s->p++;
  skip_ws(s);
  if (s->p < s->end && *s->p == close) {
    s->p++;
    return r;
  }
  for (;;) {
    if (object) {
      if (s->p >= s->end || *s->p != '"')
        return MCPR__JS_BAD;
      r = worse(r, check_string(s));
      if (r == MCPR__JS_BAD)
        return r;
      skip_ws(s);
      if (s->p >= s->end || *s->p != ':')
        return MCPR__JS_BAD;
      s->p++;
      skip_ws(s);
    }
    r = worse(r, check_value(s, depth + 1));
    if (r == MCPR__JS_BAD || s->stop)
      return r;
    skip_ws(s);
    if (s->p >= s->end)
      return MCPR__JS_BAD;
    if (*s->p == close) {
      s->p++;
      return r;
    }
    if (*s->p != ',')
      return MCPR__JS_BAD;
    s->p++;
    skip_ws(s);
  }
}

static mcpr__js_result literal(scan *s, const char *word, size_t n) {
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
    return MCPR__JS_BAD;
  s->p += n;
  if (s->p < s->end && *s->p == '\0') {
    s->stop = true; /* as after a number */
    return MCPR__JS_UNSURE;
  }
  return MCPR__JS_OK;
}

static mcpr__js_result check_value(scan *s, int depth) {
  if (s->p >= s->end)
    return MCPR__JS_BAD;
  switch (*s->p) {
  case '{':
    return check_container(s, depth, true);
  case '[':
    return check_container(s, depth, false);
  case '"':
    return check_string(s);
  case 't':
    return literal(s, "true", 4);
  case 'f':
    return literal(s, "false", 5);
  case 'n':
    return literal(s, "null", 4);
  default:
    return check_number(s);
  }
}

mcpr__js_result mcpr__js_check(const char *text, size_t len) {
  scan s = {(const unsigned char *)text, (const unsigned char *)text + len, false};
  skip_ws(&s);
  mcpr__js_result r = check_value(&s, 0);
  if (r == MCPR__JS_BAD || s.stop)
    return r;
  skip_ws(&s);
  return s.p == s.end ? r : MCPR__JS_BAD;
}

/* --- reading a checked text --- */

/* Past the checked string whose opening quote is at p. */
static const char *skip_string(const char *p, const char *end) {
  for (const char *q = p + 1;; q++) {
    q = memchr(q, '"', (size_t)(end - q));
    size_t backslashes = 0;
    while (q[-1 - (ptrdiff_t)backslashes] == '\\')
      backslashes++;
    if (backslashes % 2 == 0)
      return q + 1;
  }
}

/* Past the checked value at p. */
static const char *skip_value(const char *p, const char *end) {
  if (*p == '"')
    return skip_string(p, end);
  if (*p != '{' && *p != '[') {
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
           *p != '\r' && *p != '\t')
      p++;
    return p;
  }
  int depth = 0;
  do {
    if (*p == '"') {
      p = skip_string(p, end);
      continue;
    }
    if (*p == '{' || *p == '[')
      depth++;
    else if (*p == '}' || *p == ']')
      depth--;
    p++;
  } while (depth > 0);
  return p;
}

static const char *ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

mcpr__js_span mcpr__js_root(const char *text, size_t len) {
  const char *end = text + len, *p = ws(text, end);
  while (end > p && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r' || end[-1] == '\t'))
    end--;
  return (mcpr__js_span){p, (size_t)(end - p)};
}

bool mcpr__js_members(mcpr__js_span v, const char *const *keys, size_t n, mcpr__js_span *out) {
  for (size_t i = 0; i < n; i++)
    out[i] = (mcpr__js_span){NULL, 0};
  if (!mcpr__js_is_object(v))
    return false;
  const char *p = v.p + 1, *end = v.p + v.n;
  p = ws(p, end);
  if (*p == '}')
    return true;
  for (;;) {
    const char *k = p + 1, *k_end = skip_string(p, end) - 1;
    size_t k_len = (size_t)(k_end - k);
    if (memchr(k, '\\', k_len)) {
      for (size_t i = 0; i < n; i++)
        out[i] = (mcpr__js_span){NULL, 0};
      return false;
    }
    p = ws(k_end + 1, end) + 1; /* past ':' */
    p = ws(p, end);
    const char *val_end = skip_value(p, end);
    /* the first byte first: most keys differ there (and no strlen of the
     * keys wanted, which every call made before) */
    for (size_t i = 0; i < n; i++)
      if (k_len == 0 ? keys[i][0] == '\0'
                     : keys[i][0] == k[0] && strncmp(keys[i], k, k_len) == 0 &&
                           keys[i][k_len] == '\0')
        out[i] = (mcpr__js_span){p, (size_t)(val_end - p)};
    p = ws(val_end, end);
    if (*p == '}')
      return true;
    p = ws(p + 1, end); /* past ',' */
  }
}

bool mcpr__js_member(mcpr__js_span v, const char *key, mcpr__js_span *out) {
  return mcpr__js_members(v, &key, 1, out);
}

bool mcpr__js_plain_string(mcpr__js_span v, const char **s, size_t *len) {
  if (!mcpr__js_is_string(v) || memchr(v.p, '\\', v.n))
    return false;
  *s = v.p + 1;
  *len = v.n - 2;
  return true;
}

bool mcpr__js_plain_integer(mcpr__js_span v) {
  if (!v.p || v.n == 0)
    return false;
  size_t i = v.p[0] == '-';
  size_t digits = v.n - i;
  if (digits == 0 || digits > 18)
    return false;
  if (v.p[i] == '0' && (digits > 1 || i == 1))
    return false; /* "-0" reads as 0 and is written "0" */
  for (size_t k = i; k < v.n; k++)
    if (!is_digit((unsigned char)v.p[k]))
      return false;
  return true;
}

/*
 * toml.c — a hand-written TOML reader for mcpr.toml.
 *
 * Why hand-written: Debian 12 ships no C TOML library (no tomlc99, no
 * toml++ for C), and the project takes no vendored code. mcpr.toml needs
 * only a subset of TOML 1.0, and that subset is what this file reads:
 * tables and arrays of tables, dotted and quoted keys, basic and literal
 * strings (single and multi-line, every escape incl. \uXXXX/\UXXXXXXXX),
 * integers (decimal, hex, octal, binary, underscores), floats (incl. inf
 * and nan), booleans, arrays, inline tables and comments. Dates and times
 * are refused with a clear message: no mcpr key takes one.
 *
 * Shape: one pass, recursive descent. A first scan checks the whole input
 * is UTF-8, has no NUL byte and no line longer than the cap, so the parser
 * proper deals only with well-formed text. Nesting (arrays, inline tables,
 * dotted key parts) is bounded by MCPR__TOML_MAX_DEPTH and the input by
 * MCPR__TOML_MAX_BYTES, so hostile input cannot exhaust the stack or memory.
 * Every error names the line and column and what was expected there, and
 * never quotes the text of a value: mcpr.toml holds a token, and a token
 * written without quotes must not end up on a terminal or in a CI log
 * through its own error message. Errors show at most a key's name (unless
 * it looks like a secret, see mcpr__toml_key_shown) and describe the byte
 * found ("a letter", "a digit", "end of line") rather than repeat it.
 *
 * Every value keeps its byte span in the source: the config writer
 * (writer.c) replaces one value's text and leaves every other byte alone.
 */
#include "config/toml.h"
#include "core/buf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
  const char *src;
  size_t len;
  size_t pos;
  int line;
  size_t line_start;
  int depth;
  mcpr__toml_value *root;
  mcpr__toml_value *current; /* table the statements go to */
  const char *value_key;     /* the key whose value is being parsed (messages) */
  mcpr__toml_error *err;
  bool failed;
} parser;

/* String values grow in an mcpr__buf, bounded by the input size. */
typedef mcpr__buf sbuf;
#define sbuf_add mcpr__buf_add

static void fail_at(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_at(parser *p, size_t pos, const char *fmt, ...) {
  if (p->failed)
    return;
  p->failed = true;
  p->err->out_of_memory = false;
  /* pos may be on a later line than p->line when we point ahead: recount. */
  int line = 1;
  size_t ls = 0;
  for (size_t i = 0; i < pos && i < p->len; i++)
    if (p->src[i] == '\n') {
      line++;
      ls = i + 1;
    }
  p->err->line = line;
  p->err->column = (int)(pos - ls) + 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err->message, sizeof p->err->message, fmt, ap);
  va_end(ap);
}

static void fail_oom(parser *p, size_t pos) {
  bool first = !p->failed;
  fail_at(p, pos, "out of memory");
  if (first)
    p->err->out_of_memory = true;
}

/*
 * A short description of the byte at pos, for "found ...". Letters and
 * digits are described, not shown: they may be the first byte of a secret
 * (an unquoted token). Punctuation is shown: it says what the parser saw.
 */
static const char *found(parser *p, size_t pos, char buf[16]) {
  if (pos >= p->len)
    return "end of file";
  unsigned char c = (unsigned char)p->src[pos];
  if (c == '\n' || c == '\r')
    return "end of line";
  if (c < 0x20 || c == 0x7f) {
    snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
  }
  if (c >= 0x80)
    return "a non-ASCII character";
  if (c >= '0' && c <= '9')
    return "a digit";
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
    return "a letter";
  snprintf(buf, 16, "'%c'", c);
  return buf;
}

const char *mcpr__toml_key_shown(const char *key, char *buf, size_t n) {
  size_t len = key ? strlen(key) : 0;
  bool secret_like = len > MCPR__TOML_KEY_SHOWN_MAX || strncmp(key ? key : "", "mcpr_", 5) == 0 ||
                     strncmp(key ? key : "", "eyJ", 3) == 0;
  if (secret_like)
    snprintf(buf, n, "(not shown: it looks like a secret)");
  else
    snprintf(buf, n, "'%s'", key ? key : "");
  return buf;
}

static int peek(const parser *p) { return p->pos < p->len ? (unsigned char)p->src[p->pos] : -1; }
static int peek_at(const parser *p, size_t off) {
  return p->pos + off < p->len ? (unsigned char)p->src[p->pos + off] : -1;
}

static void newline(parser *p) {
  /* p->src[p->pos - 1] was '\n' */
  p->line++;
  p->line_start = p->pos;
}

static void skip_ws(parser *p) {
  while (peek(p) == ' ' || peek(p) == '\t')
    p->pos++;
}

/* Skip a comment if one starts here (not the newline). */
static bool skip_comment(parser *p) {
  if (peek(p) != '#')
    return true;
  while (p->pos < p->len && p->src[p->pos] != '\n') {
    unsigned char c = (unsigned char)p->src[p->pos];
    if ((c < 0x20 && c != '\t' && !(c == '\r' && peek_at(p, 1) == '\n')) || c == 0x7f) {
      fail_at(p, p->pos, "control character 0x%02x is not allowed in a comment", c);
      return false;
    }
    p->pos++;
  }
  return true;
}

/* Consume one newline (\n or \r\n) if here. */
static bool eat_newline(parser *p) {
  if (peek(p) == '\r' && peek_at(p, 1) == '\n')
    p->pos++;
  if (peek(p) == '\n') {
    p->pos++;
    newline(p);
    return true;
  }
  return false;
}

/* Whitespace, newlines and comments (inside arrays). */
static bool skip_ws_nl_comments(parser *p) {
  for (;;) {
    skip_ws(p);
    if (!skip_comment(p))
      return false;
    if (!eat_newline(p))
      return true;
  }
}

/* ---- values --------------------------------------------------------- */

static mcpr__toml_value *new_value(parser *p, mcpr__toml_type type) {
  mcpr__toml_value *v = calloc(1, sizeof *v);
  if (!v) {
    fail_oom(p, p->pos);
    return NULL;
  }
  v->type = type;
  v->line = p->line;
  v->column = (int)(p->pos - p->line_start) + 1;
  v->start = p->pos;
  return v;
}

void mcpr__toml_free(mcpr__toml_value *v) {
  if (!v)
    return;
  free(v->string);
  for (size_t i = 0; i < v->n_items; i++)
    mcpr__toml_free(v->items[i]);
  free(v->items);
  for (size_t i = 0; i < v->n_entries; i++) {
    free(v->entries[i].key);
    mcpr__toml_free(v->entries[i].value);
  }
  free(v->entries);
  free(v);
}

const char *mcpr__toml_type_name(mcpr__toml_type type) {
  switch (type) {
  case MCPR__TOML_STRING: return "a string";
  case MCPR__TOML_INTEGER: return "an integer";
  case MCPR__TOML_FLOAT: return "a float";
  case MCPR__TOML_BOOLEAN: return "a boolean";
  case MCPR__TOML_ARRAY: return "an array";
  case MCPR__TOML_TABLE: return "a table";
  }
  return "a value";
}

mcpr__toml_entry *mcpr__toml_find(const mcpr__toml_value *t, const char *key) {
  if (!t || t->type != MCPR__TOML_TABLE)
    return NULL;
  for (size_t i = 0; i < t->n_entries; i++)
    if (strcmp(t->entries[i].key, key) == 0)
      return &t->entries[i];
  return NULL;
}

static bool push_item(parser *p, mcpr__toml_value *arr, mcpr__toml_value *item) {
  if (arr->n_items == arr->cap_items) {
    size_t cap = arr->cap_items ? arr->cap_items * 2 : 4;
    mcpr__toml_value **q = realloc(arr->items, cap * sizeof *q);
    if (!q) {
      fail_oom(p, p->pos);
      return false;
    }
    arr->items = q;
    arr->cap_items = cap;
  }
  arr->items[arr->n_items++] = item;
  return true;
}

/* The position of one key part, for messages and for the writer. */
typedef struct keypart {
  char *text;
  size_t pos;
  int line, column;
} keypart;

static mcpr__toml_entry *add_entry(parser *p, mcpr__toml_value *t, const keypart *k,
                                   size_t stmt_start, mcpr__toml_value *v) {
  if (t->n_entries >= MCPR__TOML_MAX_TABLE_KEYS) {
    fail_at(p, k->pos, "too many keys in one table (the limit is %d)", MCPR__TOML_MAX_TABLE_KEYS);
    return NULL;
  }
  if (t->n_entries == t->cap_entries) {
    size_t cap = t->cap_entries ? t->cap_entries * 2 : 8;
    mcpr__toml_entry *q = realloc(t->entries, cap * sizeof *q);
    if (!q) {
      fail_oom(p, k->pos);
      return NULL;
    }
    t->entries = q;
    t->cap_entries = cap;
  }
  char *key = strdup(k->text);
  if (!key) {
    fail_oom(p, k->pos);
    return NULL;
  }
  mcpr__toml_entry *e = &t->entries[t->n_entries++];
  *e = (mcpr__toml_entry){.key = key, .value = v, .line = k->line, .column = k->column,
                          .line_start = k->pos - (size_t)(k->column - 1),
                          .stmt_start = stmt_start, .key_start = k->pos};
  return e;
}

/* Append the UTF-8 encoding of code point cp. */
static bool put_utf8(sbuf *b, unsigned long cp) {
  char out[4];
  size_t n;
  if (cp < 0x80) {
    out[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    n = 2;
  } else if (cp < 0x10000) {
    out[0] = (char)(0xe0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[2] = (char)(0x80 | (cp & 0x3f));
    n = 3;
  } else {
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    n = 4;
  }
  return sbuf_add(b, out, n);
}

static bool parse_escape(parser *p, sbuf *b) {
  size_t at = p->pos; /* the backslash */
  p->pos++;
  int c = peek(p);
  char one;
  switch (c) {
  case 'b': one = '\b'; break;
  case 't': one = '\t'; break;
  case 'n': one = '\n'; break;
  case 'f': one = '\f'; break;
  case 'r': one = '\r'; break;
  case 'e': one = 0x1b; break;
  case '"': one = '"'; break;
  case '\\': one = '\\'; break;
  case 'u':
  case 'U': {
    int digits = c == 'u' ? 4 : 8;
    unsigned long cp = 0;
    for (int i = 1; i <= digits; i++) {
      int h = peek_at(p, (size_t)i);
      int d = h >= '0' && h <= '9' ? h - '0'
              : h >= 'a' && h <= 'f' ? h - 'a' + 10
              : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                     : -1;
      if (d < 0) {
        fail_at(p, at, "expected %d hex digits after \\%c", digits, c);
        return false;
      }
      cp = cp * 16 + (unsigned long)d;
    }
    if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      fail_at(p, at, "\\%c escape is not a valid Unicode scalar value%s", c,
              cp == 0 ? " here (NUL is not allowed)" : "");
      return false;
    }
    p->pos += (size_t)digits + 1;
    if (!put_utf8(b, cp)) {
      fail_oom(p, at);
      return false;
    }
    return true;
  }
  default: {
    char fb[16];
    fail_at(p, at, "expected an escape (\\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX), found %s",
            found(p, p->pos, fb));
    return false;
  }
  }
  p->pos++;
  if (!sbuf_add(b, &one, 1)) {
    fail_oom(p, at);
    return false;
  }
  return true;
}

/* Basic or literal string, single or multi-line; p->pos at the opening quote. */
static char *parse_string(parser *p) {
  size_t open = p->pos;
  char q = p->src[p->pos];
  bool literal = q == '\'';
  bool multi = peek_at(p, 1) == q && peek_at(p, 2) == q;
  sbuf b = {0};
  if (!sbuf_add(&b, "", 0)) {
    fail_oom(p, open);
    return NULL;
  }
  p->pos += multi ? 3 : 1;
  if (multi && !eat_newline(p)) {
    /* a newline right after the opening delimiter is trimmed */
  }
  for (;;) {
    int c = peek(p);
    if (c < 0) {
      fail_at(p, open, "unterminated string: expected a closing %s", multi ? (literal ? "'''" : "\"\"\"") : (literal ? "'" : "\""));
      goto fail;
    }
    if (c == q) {
      if (!multi) {
        p->pos++;
        break;
      }
      if (peek_at(p, 1) == q && peek_at(p, 2) == q) {
        /* up to two extra quotes may end the content: """a""""" */
        size_t run = 3;
        while (run < 5 && peek_at(p, run) == q)
          run++;
        for (size_t i = 3; i < run; i++)
          if (!sbuf_add(&b, &q, 1))
            goto oom;
        p->pos += run;
        break;
      }
      p->pos++;
      if (!sbuf_add(&b, &q, 1))
        goto oom;
      continue;
    }
    if (c == '\n' || (c == '\r' && peek_at(p, 1) == '\n')) {
      if (!multi) {
        fail_at(p, p->pos, "unterminated string: expected a closing %s before the end of the line",
                literal ? "'" : "\"");
        goto fail;
      }
      if (c == '\r')
        p->pos++;
      p->pos++;
      newline(p);
      if (!sbuf_add(&b, "\n", 1))
        goto oom;
      continue;
    }
    if (c == '\\' && !literal) {
      if (multi) {
        /* line-ending backslash: trim it, the newline and following whitespace */
        size_t k = 1;
        while (peek_at(p, k) == ' ' || peek_at(p, k) == '\t')
          k++;
        if (peek_at(p, k) == '\n' || (peek_at(p, k) == '\r' && peek_at(p, k + 1) == '\n')) {
          p->pos += k;
          for (;;) {
            skip_ws(p);
            if (!eat_newline(p))
              break;
          }
          continue;
        }
      }
      if (!parse_escape(p, &b))
        goto fail;
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      fail_at(p, p->pos, "control character 0x%02x must be escaped in a string", c);
      goto fail;
    }
    if (!sbuf_add(&b, p->src + p->pos, 1))
      goto oom;
    p->pos++;
  }
  return b.p;
oom:
  fail_oom(p, open);
fail:
  free(b.p);
  return NULL;
}

static bool is_bare_key_char(int c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

/* Parse a (dotted) key into parts; returns the count, 0 on failure. */
static size_t parse_key(parser *p, keypart parts[MCPR__TOML_MAX_DEPTH]) {
  size_t n = 0;
  for (;;) {
    skip_ws(p);
    if (n == MCPR__TOML_MAX_DEPTH) {
      fail_at(p, p->pos, "key has too many parts (the limit is %d)", MCPR__TOML_MAX_DEPTH);
      goto fail;
    }
    keypart *k = &parts[n];
    k->pos = p->pos;
    k->line = p->line;
    k->column = (int)(p->pos - p->line_start) + 1;
    int c = peek(p);
    if (c == '"' || c == '\'') {
      if (peek_at(p, 1) == c && peek_at(p, 2) == c) {
        fail_at(p, p->pos, "a key cannot be a multi-line string");
        goto fail;
      }
      k->text = parse_string(p);
      if (!k->text)
        goto fail;
    } else if (is_bare_key_char(c)) {
      size_t s = p->pos;
      while (is_bare_key_char(peek(p)))
        p->pos++;
      k->text = strndup(p->src + s, p->pos - s);
      if (!k->text) {
        fail_oom(p, s);
        goto fail;
      }
    } else {
      char fb[16];
      fail_at(p, p->pos, "expected a key, found %s", found(p, p->pos, fb));
      goto fail;
    }
    n++;
    skip_ws(p);
    if (peek(p) != '.')
      return n;
    p->pos++;
  }
fail:
  for (size_t i = 0; i < n; i++)
    free(parts[i].text);
  return 0;
}

static void free_key(keypart *parts, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(parts[i].text);
}

static mcpr__toml_value *parse_value(parser *p);

/* Put value v at the dotted key parts[0..n) under table t. Takes v. */
static bool put_keyval(parser *p, mcpr__toml_value *t, keypart *parts, size_t n, size_t stmt_start,
                       mcpr__toml_value *v) {
  for (size_t i = 0; i + 1 < n; i++) {
    mcpr__toml_entry *e = mcpr__toml_find(t, parts[i].text);
    if (!e) {
      mcpr__toml_value *sub = new_value(p, MCPR__TOML_TABLE);
      if (!sub)
        goto fail;
      sub->dotted_defined = true;
      sub->line = parts[i].line;
      sub->column = parts[i].column;
      sub->start = sub->end = parts[i].pos;
      if (!add_entry(p, t, &parts[i], stmt_start, sub)) {
        mcpr__toml_free(sub);
        goto fail;
      }
      t = sub;
    } else if (e->value->type == MCPR__TOML_TABLE && !e->value->is_inline &&
               !e->value->header_defined) {
      t = e->value;
    } else {
      char kb[MCPR__TOML_KEY_SHOWN_BUF];
      fail_at(p, parts[i].pos, "key %s is already defined at line %d and cannot be extended",
              mcpr__toml_key_shown(parts[i].text, kb, sizeof kb), e->line);
      goto fail;
    }
  }
  keypart *last = &parts[n - 1];
  mcpr__toml_entry *e = mcpr__toml_find(t, last->text);
  if (e) {
    char kb[MCPR__TOML_KEY_SHOWN_BUF];
    fail_at(p, last->pos, "duplicate key %s (first defined at line %d)",
            mcpr__toml_key_shown(last->text, kb, sizeof kb), e->line);
    goto fail;
  }
  if (!add_entry(p, t, last, stmt_start, v))
    goto fail;
  return true;
fail:
  mcpr__toml_free(v);
  return false;
}

static mcpr__toml_value *parse_array(parser *p) {
  mcpr__toml_value *arr = new_value(p, MCPR__TOML_ARRAY);
  if (!arr)
    return NULL;
  p->pos++; /* [ */
  for (;;) {
    if (!skip_ws_nl_comments(p))
      goto fail;
    if (peek(p) == ']') {
      p->pos++;
      break;
    }
    mcpr__toml_value *item = parse_value(p);
    if (!item)
      goto fail;
    if (!push_item(p, arr, item)) {
      mcpr__toml_free(item);
      goto fail;
    }
    if (!skip_ws_nl_comments(p))
      goto fail;
    if (peek(p) == ',') {
      p->pos++;
      continue;
    }
    if (peek(p) == ']') {
      p->pos++;
      break;
    }
    char fb[16];
    fail_at(p, p->pos, "expected ',' or ']' in the array, found %s", found(p, p->pos, fb));
    goto fail;
  }
  arr->end = p->pos;
  return arr;
fail:
  mcpr__toml_free(arr);
  return NULL;
}

/*
 * `key = value` into table, in a statement of its own line (own_line) or
 * in an inline table. On its own line a missing value gets a message of
 * its own; in an inline table parse_value reports what it finds.
 */
static bool parse_keyval(parser *p, mcpr__toml_value *table, bool own_line) {
  keypart parts[MCPR__TOML_MAX_DEPTH];
  size_t stmt = p->pos;
  size_t n = parse_key(p, parts);
  if (!n)
    return false;
  bool ok = false;
  char fb[16], kb[MCPR__TOML_KEY_SHOWN_BUF];
  skip_ws(p);
  if (peek(p) != '=') {
    fail_at(p, p->pos, "expected '=' after the key %s, found %s",
            mcpr__toml_key_shown(parts[n - 1].text, kb, sizeof kb), found(p, p->pos, fb));
    goto out;
  }
  p->pos++;
  skip_ws(p);
  if (own_line && (peek(p) < 0 || peek(p) == '\n' || peek(p) == '\r' || peek(p) == '#')) {
    fail_at(p, p->pos, "expected a value after '=', found %s", found(p, p->pos, fb));
    goto out;
  }
  const char *outer_key = p->value_key;
  p->value_key = parts[n - 1].text;
  mcpr__toml_value *v = parse_value(p);
  p->value_key = outer_key;
  ok = v && put_keyval(p, table, parts, n, stmt, v);
out:
  free_key(parts, n);
  return ok;
}

static mcpr__toml_value *parse_inline_table(parser *p) {
  mcpr__toml_value *t = new_value(p, MCPR__TOML_TABLE);
  if (!t)
    return NULL;
  p->pos++; /* { */
  skip_ws(p);
  if (peek(p) == '}') {
    p->pos++;
    goto done;
  }
  for (;;) {
    if (!parse_keyval(p, t, false))
      goto fail;
    skip_ws(p);
    if (peek(p) == ',') {
      p->pos++;
      continue;
    }
    if (peek(p) == '}') {
      p->pos++;
      break;
    }
    char fb[16];
    fail_at(p, p->pos, "expected ',' or '}' in the inline table, found %s", found(p, p->pos, fb));
    goto fail;
  }
done:
  t->is_inline = true;
  /* close every table it made through dotted keys too */
  t->end = p->pos;
  return t;
fail:
  mcpr__toml_free(t);
  return NULL;
}

static bool is_number_char(int c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c == '+' || c == '-' || c == '.' || c == ':';
}

/* Copy digits without '_' into out, checking each '_' sits between digits. */
static bool strip_underscores(const char *s, size_t n, char *out, size_t cap, bool hex) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '_') {
      bool prev = i > 0 && (s[i - 1] >= '0' && s[i - 1] <= '9');
      bool next = i + 1 < n && (s[i + 1] >= '0' && s[i + 1] <= '9');
      if (hex) {
        prev = prev || (i > 0 && strchr("abcdefABCDEF", s[i - 1]) && s[i - 1]);
        next = next || (i + 1 < n && strchr("abcdefABCDEF", s[i + 1]) && s[i + 1]);
      }
      if (!prev || !next)
        return false;
      continue;
    }
    if (o + 1 >= cap)
      return false;
    out[o++] = c;
  }
  out[o] = '\0';
  return true;
}

static mcpr__toml_value *parse_number(parser *p) {
  size_t s = p->pos;
  while (is_number_char(peek(p)))
    p->pos++;
  size_t n = p->pos - s;
  const char *t = p->src + s;
  char fb[16];
  if (n == 0) {
    fail_at(p, s, "expected a value (string, number, boolean, array or inline table), found %s",
            found(p, s, fb));
    return NULL;
  }
  if (memchr(t, ':', n) || (n >= 10 && t[4] == '-' && t[0] >= '0' && t[0] <= '9')) {
    fail_at(p, s, "dates and times are not supported in mcpr.toml; quote the value as a string");
    return NULL;
  }
  mcpr__toml_value *v = NULL;
  char buf[128];
  size_t off = (t[0] == '+' || t[0] == '-') ? 1 : 0;
  if (n - off == 3 && (memcmp(t + off, "inf", 3) == 0 || memcmp(t + off, "nan", 3) == 0)) {
    v = new_value(p, MCPR__TOML_FLOAT);
    if (!v)
      return NULL;
    v->start = s;
    v->column = (int)(s - p->line_start) + 1;
    double x = t[off] == 'i' ? INFINITY : NAN;
    v->floating = t[0] == '-' ? -x : x;
    v->end = p->pos;
    return v;
  }
  if (n > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
    int base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
    if (!strip_underscores(t + 2, n - 2, buf, sizeof buf, base == 16) || !buf[0] || buf[0] == '+' ||
        buf[0] == '-')
      goto bad;
    for (const char *c = buf; *c; c++) {
      int d = *c >= '0' && *c <= '9' ? *c - '0'
              : *c >= 'a' && *c <= 'f' ? *c - 'a' + 10
              : *c >= 'A' && *c <= 'F' ? *c - 'A' + 10
                                       : 99;
      if (d >= base)
        goto bad;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long u = strtoull(buf, &end, base);
    if (errno || *end || u > INT64_MAX) {
      fail_at(p, s, "integer is out of range (64-bit signed)");
      return NULL;
    }
    v = new_value(p, MCPR__TOML_INTEGER);
    if (!v)
      return NULL;
    v->integer = (int64_t)u;
  } else {
    if (!strip_underscores(t, n, buf, sizeof buf, false))
      goto bad;
    const char *digits = buf + ((buf[0] == '+' || buf[0] == '-') ? 1 : 0);
    if (!(digits[0] >= '0' && digits[0] <= '9'))
      goto bad;
    bool is_float = strpbrk(digits, ".eE") != NULL;
    for (const char *c = digits; *c; c++)
      if (!((*c >= '0' && *c <= '9') || (is_float && strchr(".eE+-", *c))))
        goto bad;
    if (digits[0] == '0' && digits[1] >= '0' && digits[1] <= '9')
      goto bad; /* leading zeros */
    if (is_float) {
      const char *dot = strchr(digits, '.');
      if (dot && !(dot[1] >= '0' && dot[1] <= '9'))
        goto bad;
      errno = 0;
      char *end = NULL;
      double x = strtod(buf, &end);
      if (*end)
        goto bad;
      if (errno == ERANGE && isinf(x)) {
        fail_at(p, s, "float is out of range");
        return NULL;
      }
      v = new_value(p, MCPR__TOML_FLOAT);
      if (!v)
        return NULL;
      v->floating = x;
    } else {
      errno = 0;
      char *end = NULL;
      long long x = strtoll(buf, &end, 10);
      if (*end)
        goto bad;
      if (errno == ERANGE) {
        fail_at(p, s, "integer is out of range (64-bit signed)");
        return NULL;
      }
      v = new_value(p, MCPR__TOML_INTEGER);
      if (!v)
        return NULL;
      v->integer = x;
    }
  }
  v->start = s;
  v->column = (int)(s - p->line_start) + 1;
  v->end = p->pos;
  return v;
bad:
  /* Never the text itself: an unquoted token lands here. */
  if (p->value_key) {
    char kb[MCPR__TOML_KEY_SHOWN_BUF];
    fail_at(p, s,
            "expected a value for the key %s: a \"quoted string\", a number, true or false, "
            "an array or an inline table (text must be quoted)",
            mcpr__toml_key_shown(p->value_key, kb, sizeof kb));
  } else {
    fail_at(p, s,
            "expected a value: a \"quoted string\", a number, true or false, an array or an "
            "inline table (text must be quoted)");
  }
  return NULL;
}

static mcpr__toml_value *parse_value(parser *p) {
  if (p->depth >= MCPR__TOML_MAX_DEPTH) {
    fail_at(p, p->pos, "values are nested too deeply (the limit is %d)", MCPR__TOML_MAX_DEPTH);
    return NULL;
  }
  int c = peek(p);
  mcpr__toml_value *v = NULL;
  if (c == '"' || c == '\'') {
    v = new_value(p, MCPR__TOML_STRING);
    if (!v)
      return NULL;
    v->string = parse_string(p);
    if (!v->string) {
      mcpr__toml_free(v);
      return NULL;
    }
  } else if (c == '[') {
    p->depth++;
    v = parse_array(p);
    p->depth--;
    return v;
  } else if (c == '{') {
    p->depth++;
    v = parse_inline_table(p);
    p->depth--;
    return v;
  } else if (p->len - p->pos >= 4 && memcmp(p->src + p->pos, "true", 4) == 0 &&
             !is_bare_key_char(peek_at(p, 4))) {
    v = new_value(p, MCPR__TOML_BOOLEAN);
    if (!v)
      return NULL;
    v->boolean = true;
    p->pos += 4;
  } else if (p->len - p->pos >= 5 && memcmp(p->src + p->pos, "false", 5) == 0 &&
             !is_bare_key_char(peek_at(p, 5))) {
    v = new_value(p, MCPR__TOML_BOOLEAN);
    if (!v)
      return NULL;
    v->boolean = false;
    p->pos += 5;
  } else {
    return parse_number(p);
  }
  v->end = p->pos;
  return v;
}

/* ---- statements ----------------------------------------------------- */

static bool parse_header(parser *p) {
  size_t open = p->pos;
  bool array = peek_at(p, 1) == '[';
  p->pos += array ? 2 : 1;
  keypart parts[MCPR__TOML_MAX_DEPTH];
  size_t n = parse_key(p, parts);
  if (!n)
    return false;
  bool ok = false;
  if (peek(p) != ']' || (array && peek_at(p, 1) != ']')) {
    char fb[16];
    fail_at(p, p->pos, "expected '%s' to close the table header, found %s", array ? "]]" : "]",
            found(p, p->pos, fb));
    goto out;
  }
  p->pos += array ? 2 : 1;
  mcpr__toml_value *t = p->root;
  for (size_t i = 0; i + 1 < n; i++) {
    mcpr__toml_entry *e = mcpr__toml_find(t, parts[i].text);
    if (!e) {
      mcpr__toml_value *sub = new_value(p, MCPR__TOML_TABLE);
      if (!sub)
        goto out;
      sub->line = parts[i].line;
      sub->column = parts[i].column;
      sub->start = sub->end = parts[i].pos;
      if (!add_entry(p, t, &parts[i], open, sub)) {
        mcpr__toml_free(sub);
        goto out;
      }
      t = sub;
    } else if (e->value->type == MCPR__TOML_TABLE && !e->value->is_inline) {
      t = e->value;
    } else if (e->value->type == MCPR__TOML_ARRAY && e->value->is_table_array &&
               e->value->n_items) {
      t = e->value->items[e->value->n_items - 1];
    } else {
      char kb[MCPR__TOML_KEY_SHOWN_BUF];
      fail_at(p, parts[i].pos, "%s is already defined at line %d as %s, not a table",
              mcpr__toml_key_shown(parts[i].text, kb, sizeof kb), e->line,
              mcpr__toml_type_name(e->value->type));
      goto out;
    }
  }
  keypart *last = &parts[n - 1];
  mcpr__toml_entry *e = mcpr__toml_find(t, last->text);
  mcpr__toml_value *target = NULL;
  if (array) {
    mcpr__toml_value *arr;
    if (!e) {
      arr = new_value(p, MCPR__TOML_ARRAY);
      if (!arr)
        goto out;
      arr->is_table_array = true;
      arr->start = arr->end = open;
      if (!add_entry(p, t, last, open, arr)) {
        mcpr__toml_free(arr);
        goto out;
      }
    } else if (e->value->type == MCPR__TOML_ARRAY && e->value->is_table_array) {
      arr = e->value;
    } else {
      char kb[MCPR__TOML_KEY_SHOWN_BUF];
      fail_at(p, last->pos, "%s is already defined at line %d and is not an array of tables",
              mcpr__toml_key_shown(last->text, kb, sizeof kb), e->line);
      goto out;
    }
    target = new_value(p, MCPR__TOML_TABLE);
    if (!target)
      goto out;
    if (!push_item(p, arr, target)) {
      mcpr__toml_free(target);
      goto out;
    }
  } else if (!e) {
    target = new_value(p, MCPR__TOML_TABLE);
    if (!target)
      goto out;
    if (!add_entry(p, t, last, open, target)) {
      mcpr__toml_free(target);
      goto out;
    }
  } else if (e->value->type == MCPR__TOML_TABLE && !e->value->is_inline &&
             !e->value->header_defined && !e->value->dotted_defined) {
    target = e->value; /* created implicitly by an earlier [a.b.c] */
  } else {
    char kb[MCPR__TOML_KEY_SHOWN_BUF];
    const char *shown = mcpr__toml_key_shown(last->text, kb, sizeof kb);
    if (shown[0] == '\'')
      fail_at(p, last->pos, "table [%s] is already defined at line %d", last->text, e->line);
    else
      fail_at(p, last->pos, "table %s is already defined at line %d", shown, e->line);
    goto out;
  }
  target->header_defined = true;
  target->line = p->line;
  target->column = (int)(open - p->line_start) + 1;
  target->start = open;
  target->end = p->pos;
  p->current = target;
  ok = true;
out:
  free_key(parts, n);
  return ok;
}

static bool parse_keyval_stmt(parser *p) { return parse_keyval(p, p->current, true); }

/* Whole-input checks: UTF-8, no NUL, bounded lines. */
static bool prescan(parser *p) {
  size_t line_begin = 0;
  int line = 1;
  for (size_t i = 0; i < p->len;) {
    unsigned char c = (unsigned char)p->src[i];
    if (c == '\n') {
      line++;
      line_begin = ++i;
      continue;
    }
    if (i - line_begin >= MCPR__TOML_MAX_LINE_BYTES) {
      p->failed = true;
      p->err->line = line;
      p->err->column = MCPR__TOML_MAX_LINE_BYTES;
      snprintf(p->err->message, sizeof p->err->message, "line is longer than %d bytes",
               MCPR__TOML_MAX_LINE_BYTES);
      return false;
    }
    if (c == 0) {
      fail_at(p, i, "NUL byte in the file (is it a text file?)");
      return false;
    }
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= p->len;
    unsigned long cp = n == 1 ? c : n == 2 ? (c & 0x1fu) : n == 3 ? (c & 0x0fu) : (c & 0x07u);
    for (size_t k = 1; ok && k < n; k++) {
      unsigned char cc = (unsigned char)p->src[i + k];
      ok = (cc & 0xc0) == 0x80;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if (ok && n > 1) {
      static const unsigned long min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= min_cp[n] && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff);
    }
    if (!ok) {
      fail_at(p, i, "invalid UTF-8 (the file must be UTF-8 text)");
      return false;
    }
    i += n;
  }
  return true;
}

bool mcpr__toml_parse(const char *src, size_t len, mcpr__toml_value **out, mcpr__toml_error *e) {
  *out = NULL;
  mcpr__toml_error scratch;
  parser p = {.src = src, .len = len, .line = 1, .err = e ? e : &scratch};
  memset(p.err, 0, sizeof *p.err);
  if (len > MCPR__TOML_MAX_BYTES) {
    p.err->line = 0;
    snprintf(p.err->message, sizeof p.err->message, "file is larger than %d bytes",
             MCPR__TOML_MAX_BYTES);
    return false;
  }
  if (!prescan(&p))
    return false;
  /* a UTF-8 byte order mark is allowed and skipped */
  if (len >= 3 && memcmp(src, "\xef\xbb\xbf", 3) == 0)
    p.pos = p.line_start = 3;
  p.root = new_value(&p, MCPR__TOML_TABLE);
  if (!p.root)
    return false;
  p.root->header_defined = true;
  p.current = p.root;
  while (p.pos < p.len) {
    skip_ws(&p);
    int c = peek(&p);
    if (c == '[') {
      if (!parse_header(&p))
        goto fail;
    } else if (c != '#' && c != '\n' && c != '\r' && c >= 0) {
      if (!parse_keyval_stmt(&p))
        goto fail;
    }
    skip_ws(&p);
    if (!skip_comment(&p))
      goto fail;
    if (p.pos >= p.len)
      break;
    if (!eat_newline(&p)) {
      char fb[16];
      fail_at(&p, p.pos, "expected the end of the line (or a # comment), found %s",
              found(&p, p.pos, fb));
      goto fail;
    }
    if (p.current != p.root && p.current->header_end == 0)
      p.current->header_end = p.pos;
  }
  if (p.current != p.root && p.current->header_end == 0)
    p.current->header_end = p.pos;
  *out = p.root;
  return true;
fail:
  mcpr__toml_free(p.root);
  return false;
}

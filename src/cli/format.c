/*
 * format.c — table, latency, time and JSON formatting for the `mcpr proxy`
 * and `mcpr store` commands. Only the CLI prints; the library hands it
 * typed rows.
 *
 * Terminal safety: the strings in the rows come from the wire (tool and
 * client names, session ids, error messages, URIs), so in pretty output
 * every one goes through fmt_clean() before it reaches the terminal — a
 * table cell by fmt_table_cell, a line by fmt_put_clean — and no ESC, OSC,
 * BEL or C1 control survives. Widths are display columns (wcwidth under
 * C.UTF-8, set by main(), with a small table of wide ranges when no UTF-8
 * locale is there), so CJK text lines up; a table wider than the terminal
 * has its widest text columns cut with "…".
 */
#define _XOPEN_SOURCE 700 /* wcwidth */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "format.h"
#include "../lib/core/json_text.h"

bool fmt_use_color(void) {
  const char *no = getenv("NO_COLOR");
  if (no && *no)
    return false;
  return isatty(STDOUT_FILENO) == 1;
}

const char *fmt_status_color(const char *status) {
  if (!status)
    return NULL;
  if (strcmp(status, "ok") == 0)
    return FMT_GREEN;
  if (strcmp(status, "error") == 0)
    return FMT_RED;
  if (strcmp(status, "timeout") == 0)
    return FMT_YELLOW;
  return NULL;
}

void fmt_latency(int64_t us, char *buf, size_t n) {
  if (us < 0)
    us = 0;
  if (us < 1000)
    snprintf(buf, n, "%lld\xc2\xb5s", (long long)us);
  else if (us < 999950)
    snprintf(buf, n, "%.1fms", (double)us / 1000.0);
  else
    snprintf(buf, n, "%.2fs", (double)us / 1000000.0);
}

void fmt_time(int64_t ts_ms, int64_t now_ms, char *buf, size_t n) {
  time_t t = (time_t)(ts_ms / 1000), now = (time_t)(now_ms / 1000);
  struct tm tm, tn;
  if (!localtime_r(&t, &tm) || !localtime_r(&now, &tn)) {
    snprintf(buf, n, "%lld", (long long)ts_ms);
    return;
  }
  bool today = tm.tm_year == tn.tm_year && tm.tm_yday == tn.tm_yday;
  if (strftime(buf, n, today ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm) == 0 && n)
    buf[0] = '\0';
}

void fmt_bytes(int64_t bytes, char *buf, size_t n) {
  static const char *const units[] = {"KB", "MB", "GB", "TB"};
  if (bytes < 1024) {
    snprintf(buf, n, "%lld B", (long long)(bytes < 0 ? 0 : bytes));
    return;
  }
  double v = (double)bytes;
  size_t u = 0;
  v /= 1024.0;
  while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024.0;
    u++;
  }
  snprintf(buf, n, "%.1f %s", v, units[u]);
}

void fmt_pct(double pct, char *buf, size_t n) { snprintf(buf, n, "%.1f%%", pct); }

/* ---------- terminal safety and display width ---------- */

/* One UTF-8 character at s (n bytes left): its length and code point, or 0
 * for an invalid sequence (overlong, surrogate, above U+10FFFF, cut). */
static size_t utf8_char(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  size_t len;
  uint32_t v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return len;
}

char *fmt_clean(const char *s) {
  if (!s)
    return NULL;
  size_t n = strlen(s);
  /* Worst case: every byte becomes "\xHH" (4 bytes); a C1 character (2
   * bytes) becomes "\u00HH" (6 bytes). */
  char *out = malloc(n * 4 + 1);
  if (!out)
    return NULL;
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp = 0;
    size_t len = utf8_char(p + i, n - i, &cp);
    if (len == 0 || cp < 0x20 || cp == 0x7F) {
      o += (size_t)snprintf(out + o, 5, "\\x%02x", p[i]);
      i++;
    } else if (cp >= 0x80 && cp <= 0x9F) {
      o += (size_t)snprintf(out + o, 7, "\\u%04x", (unsigned)cp);
      i += len;
    } else {
      memcpy(out + o, p + i, len);
      o += len;
      i += len;
    }
  }
  out[o] = '\0';
  return out;
}

void fmt_put_clean(FILE *out, const char *s) {
  char *clean = fmt_clean(s ? s : "-");
  fputs(clean ? clean : "?", out);
  free(clean);
}

/* East Asian wide and fullwidth ranges (and the emoji blocks terminals draw
 * two columns wide), for when wcwidth cannot tell (no UTF-8 locale). */
static bool is_wide(uint32_t cp) {
  static const uint32_t wide[][2] = {
      {0x1100, 0x115F},   {0x2E80, 0x303E},   {0x3041, 0x33FF},   {0x3400, 0x4DBF},
      {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},
      {0xFE30, 0xFE4F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x1F300, 0x1F64F},
      {0x1F900, 0x1F9FF}, {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
  };
  for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
    if (cp >= wide[i][0] && cp <= wide[i][1])
      return true;
  return false;
}

static size_t char_width(uint32_t cp) {
  if (cp < 0x7F)
    return cp >= 0x20 ? 1 : 0;
  int w = wcwidth((wchar_t)cp);
  if (w >= 0)
    return (size_t)w;
  return is_wide(cp) ? 2 : 1;
}

size_t fmt_width(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), w = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp = 0;
    size_t len = utf8_char(p + i, n - i, &cp);
    w += len ? char_width(cp) : 1;
    i += len ? len : 1;
  }
  return w;
}

/* Print the longest prefix of s that fits width - 1 columns, then "…". */
static void put_cut(FILE *out, const char *s, size_t width) {
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), w = 0, i = 0;
  while (i < n) {
    uint32_t cp = 0;
    size_t len = utf8_char(p + i, n - i, &cp);
    size_t cw = len ? char_width(cp) : 1;
    if (w + cw + 1 > width)
      break;
    w += cw;
    i += len ? len : 1;
  }
  fwrite(s, 1, i, out);
  fputs("\xe2\x80\xa6", out); /* … */
  for (; w + 1 < width; w++) /* a wide character that did not fit */
    fputc(' ', out);
}

size_t fmt_term_width(void) {
  struct winsize ws;
  if (isatty(STDOUT_FILENO) == 1 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  const char *cols = getenv("COLUMNS");
  if (cols && *cols) {
    char *end = NULL;
    long v = strtol(cols, &end, 10);
    if (*end == '\0' && v > 0 && v <= 100000)
      return (size_t)v;
  }
  return 0;
}

/* ---------- tables ---------- */

typedef struct cell {
  char *text;
  const char *color;
} cell;

struct fmt_table {
  size_t ncols;
  char **headers;
  bool *right;
  size_t *min_width;
  size_t max_width; /* the whole line; 0: no limit */
  cell *cells;
  size_t count, cap;
};

fmt_table *fmt_table_new(size_t ncols, const char *const *headers) {
  fmt_table *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->ncols = ncols;
  t->max_width = fmt_term_width();
  t->headers = calloc(ncols, sizeof *t->headers);
  t->right = calloc(ncols, sizeof *t->right);
  t->min_width = calloc(ncols, sizeof *t->min_width);
  if (!t->headers || !t->right || !t->min_width) {
    fmt_table_free(t);
    return NULL;
  }
  for (size_t i = 0; i < ncols; i++) {
    const char *h = headers[i];
    t->right[i] = h[0] == '>';
    t->headers[i] = strdup(h + (t->right[i] ? 1 : 0));
    if (!t->headers[i]) {
      fmt_table_free(t);
      return NULL;
    }
  }
  return t;
}

void fmt_table_free(fmt_table *t) {
  if (!t)
    return;
  for (size_t i = 0; t->headers && i < t->ncols; i++)
    free(t->headers[i]);
  for (size_t i = 0; i < t->count; i++)
    free(t->cells[i].text);
  free(t->headers);
  free(t->right);
  free(t->min_width);
  free(t->cells);
  free(t);
}

bool fmt_table_cell(fmt_table *t, const char *text, const char *color) {
  if (t->count == t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 64;
    cell *n = realloc(t->cells, ncap * sizeof *n);
    if (!n)
      return false;
    t->cells = n;
    t->cap = ncap;
  }
  /* Cells are one line of text from the wire: every control character
   * (a newline, an escape sequence) becomes a visible escape. */
  char *copy = fmt_clean(text ? text : "-");
  if (!copy)
    return false;
  t->cells[t->count++] = (cell){copy, color};
  return true;
}

void fmt_table_min_width(fmt_table *t, size_t col, size_t width) {
  if (col < t->ncols)
    t->min_width[col] = width;
}

void fmt_table_max_width(fmt_table *t, size_t width) { t->max_width = width; }

size_t fmt_table_rows(const fmt_table *t) { return t->count / t->ncols; }

static void print_cell(FILE *out, const char *text, const char *color, size_t width,
                       bool right, bool last, bool use_color) {
  size_t w = fmt_width(text);
  bool cut = w > width;
  size_t pad = width > w ? width - w : 0;
  if (right)
    fprintf(out, "%*s", (int)pad, "");
  if (color && use_color)
    fputs(color, out);
  if (cut)
    put_cut(out, text, width);
  else
    fputs(text, out);
  if (color && use_color)
    fputs(FMT_RESET, out);
  if (!right && !last)
    fprintf(out, "%*s", (int)pad, "");
  if (!last)
    fputs("  ", out);
}

/*
 * Fit the line in max columns: take one column at a time off the widest
 * left-aligned column (text: a URI, an error message, a name; the
 * right-aligned ones are numbers) until the line fits or every such column
 * is down to its header (at least 4 columns).
 */
static void fit_widths(const fmt_table *t, size_t *width, size_t max) {
  size_t total = 2 * (t->ncols - 1);
  for (size_t c = 0; c < t->ncols; c++)
    total += width[c];
  while (max && total > max) {
    size_t best = t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
      size_t floor = fmt_width(t->headers[c]);
      if (floor < 4)
        floor = 4;
      if (!t->right[c] && width[c] > floor && (best == t->ncols || width[c] > width[best]))
        best = c;
    }
    if (best == t->ncols)
      break;
    width[best]--;
    total--;
  }
}

void fmt_table_print(const fmt_table *t, FILE *out, bool color, bool header) {
  size_t *width = calloc(t->ncols, sizeof *width);
  if (!width)
    return;
  for (size_t c = 0; c < t->ncols; c++) {
    width[c] = t->min_width[c];
    if (header && fmt_width(t->headers[c]) > width[c])
      width[c] = fmt_width(t->headers[c]);
  }
  for (size_t i = 0; i < t->count; i++) {
    size_t w = fmt_width(t->cells[i].text);
    if (w > width[i % t->ncols])
      width[i % t->ncols] = w;
  }
  fit_widths(t, width, t->max_width);
  if (header) {
    for (size_t c = 0; c < t->ncols; c++)
      print_cell(out, t->headers[c], color ? FMT_BOLD : NULL, width[c], t->right[c],
                 c + 1 == t->ncols, color);
    fputc('\n', out);
  }
  size_t rows = t->count / t->ncols;
  for (size_t r = 0; r < rows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      const cell *x = &t->cells[r * t->ncols + c];
      print_cell(out, x->text, x->color, width[c], t->right[c], c + 1 == t->ncols, color);
    }
    fputc('\n', out);
  }
  free(width);
}

/* ---------- JSON ---------- */

void fmt_json_line(FILE *out, json_t *obj) {
  if (!obj)
    return;
  char *text = mcpr__json_dumps(obj);
  if (text) {
    fputs(text, out);
    fputc('\n', out);
    free(text);
  }
  json_decref(obj);
}

json_t *fmt_json_str(const char *s) { return s ? json_string(s) : json_null(); }

json_t *fmt_json_int(int64_t v) {
  return v == MCPR_QUERY_NULL ? json_null() : json_integer((json_int_t)v);
}

/* Two decimals: 33.33, not 33.333333333333336 (and printed as 33.33 by
 * fmt_json_line, whose reals are shortest round-trip). */
json_t *fmt_json_pct(double pct) { return json_real(round(pct * 100.0) / 100.0); }

/* json_object_set_new that tolerates a NULL value from a failed alloc. */
static void put(json_t *o, const char *key, json_t *v) {
  if (o && v)
    json_object_set_new(o, key, v);
  else
    json_decref(v);
}

json_t *fmt_json_log_row(const mcpr_log_row *r) {
  json_t *o = json_object();
  put(o, "request_id", fmt_json_str(r->request_id));
  put(o, "ts", fmt_json_int(r->ts_ms));
  put(o, "method", fmt_json_str(r->method));
  put(o, "tool", fmt_json_str(r->tool));
  put(o, "resource_uri", fmt_json_str(r->resource_uri));
  put(o, "prompt_name", fmt_json_str(r->prompt_name));
  put(o, "latency_us", fmt_json_int(r->latency_us));
  put(o, "status", fmt_json_str(r->status));
  put(o, "error_code", fmt_json_str(r->error_code));
  put(o, "error_msg", fmt_json_str(r->error_msg));
  put(o, "session_id", fmt_json_str(r->session_id));
  put(o, "bytes_in", fmt_json_int(r->bytes_in));
  put(o, "bytes_out", fmt_json_int(r->bytes_out));
  return o;
}

json_t *fmt_json_stats_row(const mcpr_stats_row *r) {
  json_t *o = json_object();
  put(o, "label", fmt_json_str(r->label));
  put(o, "calls", fmt_json_int(r->calls));
  put(o, "avg_us", fmt_json_int(r->avg_us));
  put(o, "min_us", fmt_json_int(r->min_us));
  put(o, "max_us", fmt_json_int(r->max_us));
  put(o, "p95_us", fmt_json_int(r->p95_us));
  put(o, "error_pct", fmt_json_pct(r->error_pct));
  put(o, "total_bytes_in", fmt_json_int(r->total_bytes_in));
  put(o, "total_bytes_out", fmt_json_int(r->total_bytes_out));
  return o;
}

json_t *fmt_json_session_row(const mcpr_session_row *r) {
  json_t *o = json_object();
  put(o, "session_id", fmt_json_str(r->session_id));
  put(o, "client_name", fmt_json_str(r->client_name));
  put(o, "client_version", fmt_json_str(r->client_version));
  put(o, "client_platform", fmt_json_str(r->client_platform));
  put(o, "started_at", fmt_json_int(r->started_at_ms));
  put(o, "last_seen_at", fmt_json_int(r->last_seen_at_ms));
  put(o, "ended_at", fmt_json_int(r->ended_at_ms));
  put(o, "total_calls", fmt_json_int(r->total_calls));
  put(o, "total_errors", fmt_json_int(r->total_errors));
  put(o, "is_active", json_boolean(r->is_active));
  return o;
}

json_t *fmt_json_client_row(const mcpr_client_row *r) {
  json_t *o = json_object();
  put(o, "client_name", fmt_json_str(r->client_name));
  put(o, "client_version", fmt_json_str(r->client_version));
  put(o, "client_platform", fmt_json_str(r->client_platform));
  put(o, "sessions", fmt_json_int(r->sessions));
  put(o, "total_calls", fmt_json_int(r->total_calls));
  put(o, "total_errors", fmt_json_int(r->total_errors));
  put(o, "error_pct", fmt_json_pct(r->error_pct));
  put(o, "first_seen", fmt_json_int(r->first_seen_ms));
  put(o, "last_seen", fmt_json_int(r->last_seen_ms));
  return o;
}

json_t *fmt_json_change_row(const mcpr_schema_change_row *r) {
  json_t *o = json_object();
  put(o, "upstream_url", fmt_json_str(r->upstream_url));
  put(o, "method", fmt_json_str(r->method));
  put(o, "change_type", fmt_json_str(r->change_type));
  put(o, "item_name", fmt_json_str(r->item_name));
  put(o, "old_hash", fmt_json_str(r->old_hash));
  put(o, "new_hash", fmt_json_str(r->new_hash));
  put(o, "detected_at", fmt_json_int(r->detected_at_ms));
  return o;
}

json_t *fmt_json_unused_row(const mcpr_unused_tool_row *r) {
  json_t *o = json_object();
  put(o, "tool_name", fmt_json_str(r->tool_name));
  put(o, "description", fmt_json_str(r->description));
  put(o, "calls", fmt_json_int(r->calls));
  put(o, "errors", fmt_json_int(r->errors));
  put(o, "last_called_at", fmt_json_int(r->last_called_at_ms));
  return o;
}

json_t *fmt_json_schema_row(const mcpr_schema_row *r) {
  /* The original's keys and order; the payload is the stored JSON text, a
   * string (`jq -r .payload | jq ...`), as the original prints it. */
  json_t *o = json_object();
  put(o, "upstream_url", fmt_json_str(r->upstream_url));
  put(o, "method", fmt_json_str(r->method));
  put(o, "payload", fmt_json_str(r->payload));
  put(o, "captured_at", fmt_json_int(r->captured_at_ms));
  put(o, "schema_hash", fmt_json_str(r->schema_hash));
  put(o, "proxy", fmt_json_str(r->proxy));
  return o;
}

/*
 * format.h — how the observability commands print: aligned tables,
 * human latencies and times, colour only for a terminal, and NDJSON rows
 * with the field names of SPEC §7 (null for a missing value).
 */
#ifndef MCPR_CLI_FORMAT_H
#define MCPR_CLI_FORMAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mcpr/query.h"

#define FMT_RED "\033[31m"
#define FMT_YELLOW "\033[33m"
#define FMT_GREEN "\033[32m"
#define FMT_DIM "\033[2m"
#define FMT_BOLD "\033[1m"
#define FMT_RESET "\033[0m"

/* Colour when stdout is a terminal and NO_COLOR is unset or empty. */
bool fmt_use_color(void);
/* ANSI colour for a request status ("ok" green, "error" red, "timeout"
 * yellow), NULL for anything else. */
const char *fmt_status_color(const char *status);

/* 850µs, 12.3ms, 4.20s. */
void fmt_latency(int64_t us, char *buf, size_t n);
/* Local HH:MM:SS when ts is on now's local date, else YYYY-MM-DD HH:MM:SS. */
void fmt_time(int64_t ts_ms, int64_t now_ms, char *buf, size_t n);
/* 512 B, 1.5 KB, 3.2 MB, 1.1 GB. */
void fmt_bytes(int64_t bytes, char *buf, size_t n);
/* "12.5%". */
void fmt_pct(double pct, char *buf, size_t n);

/* ---------- terminal safety ---------- */

/*
 * Text from the wire made safe for a terminal, as a new string (free();
 * NULL when s is NULL or out of memory): every control character — C0
 * (newline and tab included), DEL, C1 (U+0080–U+009F) — and every byte
 * that is not valid UTF-8 becomes a visible escape: \x1b, \x07, \u009b,
 * \xff. Everything else (printable UTF-8) is kept. Every string from a
 * store or a proxy printed in pretty output goes through here (--json
 * output is exact JSON instead).
 */
char *fmt_clean(const char *s);
/* fputs(fmt_clean(s)); NULL prints "-". */
void fmt_put_clean(FILE *out, const char *s);
/* Display columns of clean UTF-8 text (wide CJK characters count 2,
 * combining marks 0). */
size_t fmt_width(const char *s);
/* Columns of the terminal on stdout (TIOCGWINSZ), else $COLUMNS, else 0
 * (no limit: a pipe gets whole lines). */
size_t fmt_term_width(void);

/* ---------- tables ---------- */

typedef struct fmt_table fmt_table;

/* headers: ncols names; a name starting with '>' is right-aligned (the
 * '>' is not printed). Returns NULL when out of memory. */
fmt_table *fmt_table_new(size_t ncols, const char *const *headers);
/* Append a cell (copied through fmt_clean; NULL prints "-") to the current
 * row; a row is complete after ncols cells. color may be NULL. Returns
 * false on OOM. */
bool fmt_table_cell(fmt_table *t, const char *text, const char *color);
/* Print with every column as wide as its widest cell (display columns);
 * header when asked. A line wider than the table's max width (default
 * fmt_term_width()) has its widest left-aligned columns narrowed, their
 * long cells cut with "…". */
void fmt_table_print(const fmt_table *t, FILE *out, bool color, bool header);
/* Columns at least this wide (follow mode keeps its columns steady). */
void fmt_table_min_width(fmt_table *t, size_t col, size_t width);
/* The widest a printed line may be; 0: no limit. */
void fmt_table_max_width(fmt_table *t, size_t width);
size_t fmt_table_rows(const fmt_table *t);
void fmt_table_free(fmt_table *t);

/* ---------- JSON ---------- */

/* Print obj compactly on one line of out and release it (stolen). Every
 * JSON line the CLI prints goes through here: reals are written in the
 * fewest digits that read back as the same number (16.67, not
 * 16.670000000000002). */
void fmt_json_line(FILE *out, json_t *obj);
/* new references; NULL / MCPR_QUERY_NULL become null. */
json_t *fmt_json_str(const char *s);
json_t *fmt_json_int(int64_t v);
json_t *fmt_json_pct(double pct);

/* One object per row type, with SPEC §7's field names (new reference). */
json_t *fmt_json_log_row(const mcpr_log_row *r);
json_t *fmt_json_stats_row(const mcpr_stats_row *r);
json_t *fmt_json_session_row(const mcpr_session_row *r);
json_t *fmt_json_client_row(const mcpr_client_row *r);
json_t *fmt_json_change_row(const mcpr_schema_change_row *r);
json_t *fmt_json_unused_row(const mcpr_unused_tool_row *r);
json_t *fmt_json_schema_row(const mcpr_schema_row *r);

#endif

/*
 * toml.h — the small TOML reader behind mcpr.toml (internal).
 *
 * mcpr__toml_parse() turns a document into a tree of values. Besides the
 * values, the tree remembers where each one sits in the source (line,
 * column, byte span) so that errors can point at the text and the config
 * writer can change one value in place without touching anything else.
 */
#ifndef MCPR_CONFIG_TOML_H
#define MCPR_CONFIG_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on untrusted input. */
#define MCPR__TOML_MAX_BYTES (1024 * 1024)
#define MCPR__TOML_MAX_LINE_BYTES 16384
#define MCPR__TOML_MAX_DEPTH 32
#define MCPR__TOML_MAX_TABLE_KEYS 10000

typedef enum mcpr__toml_type {
  MCPR__TOML_STRING,
  MCPR__TOML_INTEGER,
  MCPR__TOML_FLOAT,
  MCPR__TOML_BOOLEAN,
  MCPR__TOML_ARRAY,
  MCPR__TOML_TABLE,
} mcpr__toml_type;

typedef struct mcpr__toml_value mcpr__toml_value;

typedef struct mcpr__toml_entry {
  char *key;               /* this table's key (one part of a dotted key) */
  mcpr__toml_value *value; /* owned */
  int line, column;        /* of the key part, 1-based */
  size_t line_start;       /* byte offset of the start of the key's line */
  size_t stmt_start;       /* byte offset of the statement's first key part */
  size_t key_start;        /* byte offset of this key part */
} mcpr__toml_entry;

struct mcpr__toml_value {
  mcpr__toml_type type;
  int line, column;  /* where the value starts (tables: their header or key) */
  size_t start, end; /* byte span of the value's text in the source */
  char *string;      /* STRING, NUL-terminated (may hold no NUL: \u0000 is refused) */
  int64_t integer;
  double floating;
  bool boolean;
  /* ARRAY */
  mcpr__toml_value **items;
  size_t n_items, cap_items;
  /* TABLE */
  mcpr__toml_entry *entries;
  size_t n_entries, cap_entries;
  bool is_inline;       /* { ... }: closed for further keys */
  bool header_defined;  /* a [header] defined it */
  bool dotted_defined;  /* created by a dotted key (a.b = 1) */
  size_t header_end;    /* byte offset just after the header line's newline */
  bool is_table_array;  /* ARRAY made by [[header]] */
};

typedef struct mcpr__toml_error {
  int line, column; /* 1-based; 0 when not tied to a place */
  char message[256];
  bool out_of_memory; /* the input may be fine: an allocation failed */
} mcpr__toml_error;

/*
 * Parse len bytes of TOML. On success *out is a new TABLE (free with
 * mcpr__toml_free) and true is returned; on failure *out is NULL and e says
 * where and what was expected.
 */
bool mcpr__toml_parse(const char *src, size_t len, mcpr__toml_value **out, mcpr__toml_error *e);
void mcpr__toml_free(mcpr__toml_value *v);

/* The entry for key in table t, or NULL (borrowed). */
mcpr__toml_entry *mcpr__toml_find(const mcpr__toml_value *t, const char *key);
/*
 * A key's name for a message: "'name'" quoted, or "(not shown: it looks
 * like a secret)" when it may be a pasted secret rather than a key (longer
 * than MCPR__TOML_KEY_SHOWN_MAX bytes, or starting like an mcpr token or a
 * JWT). Writes into buf (MCPR__TOML_KEY_SHOWN_BUF bytes is enough) and
 * returns it.
 */
#define MCPR__TOML_KEY_SHOWN_MAX 40
#define MCPR__TOML_KEY_SHOWN_BUF (MCPR__TOML_KEY_SHOWN_MAX + 3)
const char *mcpr__toml_key_shown(const char *key, char *buf, size_t n);
/* "string", "integer", ... for messages. */
const char *mcpr__toml_type_name(mcpr__toml_type type);

#endif

/*
 * cli_check.h — checks on what the `mcpr` CLI prints, shared by the end to
 * end tests in tests/cli: NDJSON lines, exact key order, typed fields, the
 * column alignment of pretty tables, and running mcpr on a store file.
 *
 * Every check fails the running cmocka test with the output it looked at,
 * so a test reads as a list of facts about the output.
 */
#ifndef MCPR_TEST_CLI_CHECK_H
#define MCPR_TEST_CLI_CHECK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "fx_store.h"
#include "testutil.h"

/* Line i (0-based) of NDJSON text as a new reference; fails the test when
 * there is no such line or it is not a JSON object. */
json_t *nd_line(const char *text, size_t i);
/* Lines of text (newlines counted). */
size_t nd_count(const char *text);

/* The object's keys in order, comma-joined into buf; returns the length. */
size_t keys_of(json_t *o, char *buf, size_t n);
/* The object's keys are exactly the comma-separated list, in that order. */
void assert_keys(json_t *o, const char *keys);
/* o[key] as a string (borrowed) / integer; fails the test for another type. */
const char *js(json_t *o, const char *key);
int64_t ji(json_t *o, const char *key);
/* o[key] is present and JSON null. */
void assert_null_field(json_t *o, const char *key);

/* The "session_id" of every NDJSON line of out, comma-joined into buf. */
void ids_of(const char *out, char *buf, size_t n);

/*
 * The table whose header line starts with first_header: every row below it
 * (up to a blank line or the end) has its right-aligned columns ending
 * where their header ends and its left-aligned columns starting where
 * theirs start (NULL-terminated lists, either may be NULL). Multi-byte
 * UTF-8 characters count as one column. Returns the number of rows.
 */
size_t assert_table(const char *out, const char *first_header, const char *const *right,
                    const char *const *left);

/* Run $MCPR_BIN --db path args... (args NULL-terminated) into r. */
void run_on(cli_result *r, const char *path, const char *const *args);
/* Run $MCPR_BIN --db path with the words of base, then those of extra
 * (NULL-terminated; extra may be NULL), into r; fails the test unless it
 * exits 0. For tables of cases that share a command. */
void run_ok_on(cli_result *r, const char *path, const char *const *base,
               const char *const *extra);

#define RUN_ON(r, path, ...)                                                       \
  do {                                                                             \
    const char *const a_[] = {__VA_ARGS__, NULL};                                  \
    run_on(r, path, a_);                                                           \
  } while (0)
/* On the fixture store (fx_store.h). */
#define RUN(r, ...) RUN_ON(r, fx_path, __VA_ARGS__)

/* Run and expect exit 0 and nothing on stderr. */
#define RUN_OK(r, ...)                                                             \
  do {                                                                             \
    RUN(r, __VA_ARGS__);                                                           \
    if ((r)->exit_code != 0 || (r)->err_len)                                       \
      fail_msg("exit %d, stderr:\n%s", (r)->exit_code, (r)->err);                  \
  } while (0)

#endif

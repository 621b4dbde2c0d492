/*
 * cmd_proxy_common.h — what every observability command shares: a small
 * table-driven flag parser (GNU-style --flag VALUE, --flag=VALUE, -f, and
 * `--` to end flags), the time-window flags, opening the store for reading
 * with a message a user can act on, and the follow loop's SIGINT flag.
 */
#ifndef MCPR_CLI_CMD_PROXY_COMMON_H
#define MCPR_CLI_CMD_PROXY_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "mcpr/mcpr.h"
#include "mcpr/query.h"

typedef struct cli_opt {
  const char *name;  /* "--tail" */
  char short_name;   /* 'f', or 0 */
  bool takes_value;
  const char **value; /* set when takes_value */
  bool *flag;         /* set when !takes_value */
} cli_opt;

/*
 * Parse argv[1..] (argv[0] is the command). Positionals go to pos[] (at
 * most max_pos; *npos receives the count). Returns -1 when parsing went
 * fine, 0 when --help was printed (exit 0), or 2 after a usage error was
 * printed (unknown flag, missing value, too many arguments).
 */
int cli_parse_args(const mcpr_cli_command *cmd, int argc, char **argv, const cli_opt *opts,
                   const char **pos, int max_pos, int *npos);
/* cli_parse_args for the commands that take at most one positional (a
 * proxy NAME or a session id): *name receives it, or NULL when omitted.
 * name NULL: no positional is allowed. */
int cli_parse_name(const mcpr_cli_command *cmd, int argc, char **argv, const cli_opt *opts,
                   const char **name);
/* cli_parse_name for `[NAME] [--since D] [--json]` (proxy clients, status):
 * *since NULL when not given. */
int cli_parse_name_since_json(const mcpr_cli_command *cmd, int argc, char **argv,
                              const char **name, const char **since, bool *json);

/* A window flag: text (or dflt when NULL; NULL dflt: all time) turned
 * into the cutoff now − duration. Prints the usage error and returns 2 on
 * a bad value, else 0. */
int cli_window(const mcpr_cli_command *cmd, const char *flag, const char *text,
               const char *dflt, int64_t now_ms, int64_t *cutoff_ms);
/* A count flag (--tail, --limit), dflt when text is NULL. */
int cli_count(const mcpr_cli_command *cmd, const char *flag, const char *text, int64_t dflt,
              int64_t *out);

/* Open the store of this run (cli_store_path: --db, the config's [store]
 * path, $MCPR_DB, ~/.mcpr/store.db) for reading; on failure print why and
 * return the exit code (or 0 on success with *q set). When the store holds
 * at least CLI_ROLLUP_HINT_ROWS requests outside its rollups (one the
 * original wrote), a line on stderr says to run `mcpr store rollup`. */
int cli_open_query(const mcpr_cli_ctx *ctx, mcpr_query **q);
#define CLI_ROLLUP_HINT_ROWS 1000000
/* The same without that hint: for `mcpr store rollup` itself. */
int cli_open_query_quiet(const mcpr_cli_ctx *ctx, mcpr_query **q);
/* A query on q failed with err: print why, close q, return the exit code. */
int cli_query_fail(mcpr_query *q, const mcpr_error *err);

/* Install a SIGINT/SIGTERM handler that sets cli_stop (no SA_RESTART, so a
 * sleep wakes). */
extern volatile sig_atomic_t cli_stop;
void cli_install_stop_handler(void);
/* Sleep ms, returning early when cli_stop is set. */
void cli_sleep_ms(int ms);

/* Print log rows (pretty or NDJSON). reverse: last row first. header: print
 * the column names (pretty). steady: fixed minimum widths (follow). */
void cli_print_logs(const mcpr_log_rows *rows, bool json, bool reverse, bool header,
                    bool steady, int64_t now_ms);

/*
 * Follow mode for logs and slow: print rows stored after after_row_id that
 * match f, oldest first, polling until SIGINT/SIGTERM. Returns the exit
 * code (0 on a signal).
 */
int cli_follow(mcpr_query *q, const mcpr_log_filter *f, int64_t after_row_id, bool json);

/* mcpr_query_logs or mcpr_query_slow. */
typedef mcpr_status (*cli_log_fetch)(mcpr_query *q, const mcpr_log_filter *f,
                                     mcpr_log_rows *rows, mcpr_error *err);

/*
 * The body of `proxy logs` and `proxy slow` once their filter f is built:
 * open the store, print the first page fetch returns (reverse: last row
 * first), the line printf(empty_fmt, ...) when there is none (pretty
 * output, not following), then follow when asked. With follow the first page ends at
 * the last row stored when it started, so the follow loop prints no row
 * twice. Returns the exit code.
 */
int cli_show_logs(const mcpr_cli_ctx *ctx, mcpr_log_filter *f, cli_log_fetch fetch, bool json,
                  bool follow, bool reverse, int64_t now_ms, const char *empty_fmt, ...)
    __attribute__((format(printf, 8, 9)));

#endif

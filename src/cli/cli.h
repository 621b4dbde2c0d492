/*
 * cli.h — the `mcpr` program's command table (tmux style): every command is
 * one file defining one mcpr_cli_command, listed once in commands.c.
 * Commands parse their arguments, call the library and format; they hold
 * no SQL and no business rules.
 */
#ifndef MCPR_CLI_H
#define MCPR_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Exit codes of every command. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

typedef struct mcpr_cli_ctx {
  const char *db_path;     /* global --db, or NULL */
  const char *config_path; /* global -c/--config, or NULL: ./mcpr.toml (cli_config.h) */
  const char *prog;        /* "mcpr" */
} mcpr_cli_ctx;

typedef struct mcpr_cli_command {
  const char *group; /* "proxy", "store", ... or NULL for top level */
  const char *name;
  const char *summary; /* one line for `mcpr --help` */
  const char *usage;   /* full help text for `mcpr <cmd> --help` */
  /* argv[0] is the command name; returns an exit code. */
  int (*run)(const mcpr_cli_ctx *ctx, int argc, char **argv);
} mcpr_cli_command;

extern const mcpr_cli_command *const mcpr_cli_commands[];

/* Print "mcpr: <msg>" and a pointer to --help on stderr; returns 2. */
int cli_usage_error(const mcpr_cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print "mcpr: <msg>" on stderr; returns 1. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* True when argv[i] is -h or --help. */
bool cli_is_help(const char *arg);

#endif

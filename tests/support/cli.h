/*
 * cli.h — run the built `mcpr` (or any program) from a test: arguments,
 * extra environment, stdin; capture stdout, stderr and the exit code. Also
 * a background mode for long-running commands (follow): start, read its
 * output as it comes, signal, wait.
 */
#ifndef MCPR_TEST_CLI_H
#define MCPR_TEST_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct cli_result {
  char *out;     /* stdout, NUL-terminated (new string) */
  size_t out_len;
  char *err;     /* stderr */
  size_t err_len;
  int exit_code; /* 128+N when killed by signal N */
} cli_result;

typedef struct cli_spec {
  const char *bin;          /* NULL: $MCPR_BIN */
  const char *const *args;  /* NULL-terminated, without argv[0] */
  const char *const *env;   /* NULL-terminated "K=V" added/overriding; "K=" empties; may be NULL */
  const char *const *unset; /* NULL-terminated names removed from the environment; may be NULL */
  const char *stdin_data;   /* NULL: /dev/null */
  size_t stdin_len;         /* 0 with non-NULL stdin_data: strlen */
  int timeout_ms;           /* kill -9 after this (0: 30000) */
  const char *cwd;          /* working directory of the program; NULL: the test's */
} cli_spec;

/* $MCPR_BIN, the built `mcpr`; fails the test when it is not set. */
const char *cli_bin(void);

/* Run to completion; fails the test if it cannot be started. */
void cli_run(const cli_spec *spec, cli_result *out);
/* Shorthand: $MCPR_BIN with args (NULL-terminated list). */
void cli_runv(cli_result *out, const char *arg0, ...);
void cli_result_free(cli_result *r);

/* Background process with its stdout (and stderr) collected as it runs. */
typedef struct cli_proc {
  pid_t pid;
  int out_fd, err_fd;
  char *out;
  size_t out_len, out_cap;
  char *err;
  size_t err_len, err_cap;
} cli_proc;

void cli_start(const cli_spec *spec, cli_proc *p);
/* Read output until stdout contains needle or timeout_ms passes; true when found. */
bool cli_wait_output(cli_proc *p, const char *needle, int timeout_ms);
/* Send sig, wait (up to timeout_ms, then SIGKILL), collect the rest into r
 * (out/err/exit_code) and free the process state. */
void cli_stop(cli_proc *p, int sig, int timeout_ms, cli_result *r);

/* Occurrences of needle in hay. */
size_t cli_count_substr(const char *hay, const char *needle);

#endif

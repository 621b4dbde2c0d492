/*
 * main.c — `mcpr`: global flags, dispatch to the command table, help.
 */
#include <locale.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "format.h"
#include "mcpr/mcpr.h"

/* "mcpr: <message>\n" on stderr. The message may carry text from a store,
 * a proxy or a file (a session prefix, an event's field): its control
 * characters are escaped (format.h). */
static void put_message(const char *fmt, va_list ap) {
  char small[1024], *text = small;
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(small, sizeof small, fmt, copy);
  va_end(copy);
  if (n >= (int)sizeof small && (text = malloc((size_t)n + 1)) != NULL)
    vsnprintf(text, (size_t)n + 1, fmt, ap);
  fputs("mcpr: ", stderr);
  fmt_put_clean(stderr, text ? text : small);
  fputc('\n', stderr);
  if (text != small)
    free(text);
}

int cli_usage_error(const mcpr_cli_command *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  put_message(fmt, ap);
  va_end(ap);
  /* One line of hint, not the whole help (as clap's "For more
   * information, try '--help'"): the message above is what to fix. */
  if (cmd)
    fprintf(stderr, "Run 'mcpr %s%s%s --help' for its usage.\n", cmd->group ? cmd->group : "",
            cmd->group ? " " : "", cmd->name);
  else
    fputs("Run 'mcpr --help' for the list of commands.\n", stderr);
  return CLI_EXIT_USAGE;
}

int cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  put_message(fmt, ap);
  va_end(ap);
  return CLI_EXIT_FAIL;
}

bool cli_is_help(const char *arg) {
  return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void print_help(FILE *out, const char *group) {
  fprintf(out,
          "mcpr %s — observability for MCP servers\n\n"
          "usage: mcpr [--db PATH] [-c FILE] <command> [args]\n\n"
          "commands:\n",
          mcpr_version());
  for (const mcpr_cli_command *const *c = mcpr_cli_commands; *c; c++) {
    if (group && (!(*c)->group || strcmp((*c)->group, group) != 0))
      continue;
    char name[64];
    snprintf(name, sizeof name, "%s%s%s", (*c)->group ? (*c)->group : "",
             (*c)->group ? " " : "", (*c)->name);
    fprintf(out, "  %-22s %s\n", name, (*c)->summary);
  }
  fputs("\nglobal options (before or after the command):\n"
        "  -c, --config FILE      config file (default: ./mcpr.toml when present)\n"
        "  --db PATH              store file (default: the config's [store] path, else\n"
        "                         $MCPR_DB, else ~/.mcpr/store.db)\n"
        "  -h, --help             this help; 'mcpr help <command>' or\n"
        "                         'mcpr <command> --help' for one command\n"
        "  -V, --version          print the version (mcpr X.Y.Z)\n",
        out);
}

static bool is_group(const char *word) {
  for (const mcpr_cli_command *const *c = mcpr_cli_commands; *c; c++)
    if ((*c)->group && strcmp((*c)->group, word) == 0)
      return true;
  return false;
}

static const mcpr_cli_command *find(const char *group, const char *name) {
  for (const mcpr_cli_command *const *c = mcpr_cli_commands; *c; c++) {
    bool same_group = group ? ((*c)->group && strcmp((*c)->group, group) == 0) : !(*c)->group;
    if (same_group && strcmp((*c)->name, name) == 0)
      return *c;
  }
  return NULL;
}

static void print_usage(const mcpr_cli_command *cmd) {
  fputs(cmd->usage, stdout);
  fputc('\n', stdout);
}

/*
 * `mcpr help [COMMAND…]` and `mcpr GROUP help [COMMAND]`, as clap's help
 * subcommand: the help of what the words name, on stdout, exit 0; words
 * that name nothing are a usage error. group is the group already typed
 * (NULL at top level); words are what follows `help`.
 */
static int help_command(const char *group, int n, char **words) {
  if (!group && n > 0 && is_group(words[0])) {
    group = words[0];
    words++;
    n--;
  } else if (!group && n == 0) {
    print_help(stdout, NULL);
    return CLI_EXIT_OK;
  }
  if (group && n == 0) {
    print_help(stdout, group);
    return CLI_EXIT_OK;
  }
  const mcpr_cli_command *cmd = find(group, words[0]);
  if (!cmd)
    return cli_usage_error(NULL, "no help for unknown command '%s%s%s'", group ? group : "",
                           group ? " " : "", words[0]);
  if (n > 1)
    return cli_usage_error(NULL, "unexpected argument '%s' after 'help %s%s%s'", words[1],
                           group ? group : "", group ? " " : "", words[0]);
  print_usage(cmd);
  return CLI_EXIT_OK;
}

/*
 * Pull the global flags out of argv wherever they stand (before or after
 * the command, as the original's clap `global = true`): --db PATH and
 * -c/--config FILE, in the forms FLAG VALUE and --flag=VALUE. The rest is
 * kept in order in rest[] (*n words). Returns -1, or the exit code after a
 * usage error.
 */
static int take_globals(int argc, char **argv, mcpr_cli_ctx *ctx, char **rest, int *n) {
  static const struct {
    const char *flag;
    size_t off;
    const char *what;
  } globals[] = {
      {"--db", offsetof(mcpr_cli_ctx, db_path), "a path"},
      {"--config", offsetof(mcpr_cli_ctx, config_path), "a file"},
      {"-c", offsetof(mcpr_cli_ctx, config_path), "a file"},
  };
  *n = 0;
  for (int i = 1; i < argc; i++) {
    bool taken = false;
    for (size_t g = 0; g < sizeof globals / sizeof globals[0] && !taken; g++) {
      const char *flag = globals[g].flag;
      size_t len = strlen(flag);
      const char *value;
      if (strcmp(argv[i], flag) == 0) {
        if (i + 1 >= argc)
          return cli_usage_error(NULL, "%s needs %s", flag, globals[g].what);
        value = argv[++i];
      } else if (flag[1] == '-' && strncmp(argv[i], flag, len) == 0 && argv[i][len] == '=') {
        value = argv[i] + len + 1;
      } else {
        continue;
      }
      const char **dst = (const char **)((char *)ctx + globals[g].off);
      if (globals[g].off == offsetof(mcpr_cli_ctx, config_path)) {
        if (!*value)
          return cli_usage_error(NULL, "%s needs a file", flag);
        if (*dst)
          return cli_usage_error(NULL, "-c/--config given twice ('%s' and '%s')", *dst, value);
      }
      *dst = value;
      taken = true;
    }
    if (!taken)
      rest[(*n)++] = argv[i];
  }
  return -1;
}

int main(int argc, char **argv) {
  mcpr_process_init();
  /* Display widths (wcwidth) of the UTF-8 we print, whatever the user's
   * locale; only LC_CTYPE, so numbers keep their '.'. */
  if (!setlocale(LC_CTYPE, "C.UTF-8"))
    setlocale(LC_CTYPE, "");
  mcpr_cli_ctx ctx = {.db_path = NULL, .config_path = NULL, .prog = "mcpr"};
  char **rest = calloc((size_t)argc + 1, sizeof *rest);
  if (!rest)
    return cli_fail("out of memory");
  int n = 0;
  int code = take_globals(argc, argv, &ctx, rest, &n);
  if (code >= 0) {
    free(rest);
    return code;
  }
  if (n == 0) {
    print_help(stderr, NULL);
    code = CLI_EXIT_USAGE;
  } else if (cli_is_help(rest[0])) {
    print_help(stdout, NULL);
    code = CLI_EXIT_OK;
  } else if (strcmp(rest[0], "--version") == 0 || strcmp(rest[0], "-V") == 0) {
    printf("mcpr %s\n", mcpr_version());
    code = CLI_EXIT_OK;
  } else if (strcmp(rest[0], "help") == 0) {
    code = help_command(NULL, n - 1, rest + 1);
  } else if (rest[0][0] == '-') {
    code = cli_usage_error(NULL, "unknown option '%s'", rest[0]);
  } else if (is_group(rest[0])) {
    const char *group = rest[0];
    if (n < 2 || cli_is_help(rest[1])) {
      print_help(n < 2 ? stderr : stdout, group);
      code = n < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    } else if (strcmp(rest[1], "help") == 0) {
      code = help_command(group, n - 2, rest + 2);
    } else {
      const mcpr_cli_command *cmd = find(group, rest[1]);
      code = cmd ? cmd->run(&ctx, n - 1, rest + 1)
                 : cli_usage_error(NULL, "unknown command '%s %s'", group, rest[1]);
    }
  } else {
    const mcpr_cli_command *cmd = find(NULL, rest[0]);
    code = cmd ? cmd->run(&ctx, n, rest) : cli_usage_error(NULL, "unknown command '%s'", rest[0]);
  }
  free(rest);
  return code;
}

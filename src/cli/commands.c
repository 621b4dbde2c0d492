/* commands.c — the command table: adding a command is one file and one line. */
#include "cli.h"

const mcpr_cli_command *const mcpr_cli_commands[] = {
    NULL,
};

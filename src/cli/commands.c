/* commands.c — the command table: adding a command is one file and one line.
 * `mcpr --help` lists them in this order. */
#include "cli.h"

extern const mcpr_cli_command cmd_proxy_logs, cmd_proxy_slow, cmd_proxy_sessions,
    cmd_proxy_session, cmd_proxy_clients, cmd_proxy_status, cmd_proxy_schema;
extern const mcpr_cli_command cmd_store_stats, cmd_store_vacuum, cmd_store_rollup;
extern const mcpr_cli_command cmd_store_copy;
extern const mcpr_cli_command cmd_ingest;
extern const mcpr_cli_command cmd_cloud_status, cmd_cloud_flush;
extern const mcpr_cli_command cmd_config_check, cmd_setup, cmd_proxy_setup;
extern const mcpr_cli_command cmd_proxy_run;
extern const mcpr_cli_command cmd_proxy_list, cmd_proxy_stop, cmd_proxy_reload, cmd_proxy_delete;
extern const mcpr_cli_command cmd_validate, cmd_version;
extern const mcpr_cli_command cmd_dashboard;

const mcpr_cli_command *const mcpr_cli_commands[] = {
    &cmd_proxy_run,      &cmd_proxy_list,     &cmd_proxy_stop,    &cmd_proxy_reload, &cmd_proxy_delete,
    &cmd_proxy_status,   &cmd_proxy_logs,    &cmd_proxy_slow,   &cmd_proxy_sessions,
    &cmd_proxy_session,  &cmd_proxy_clients, &cmd_proxy_schema, &cmd_store_stats,
    &cmd_store_vacuum,   &cmd_store_rollup, &cmd_store_copy, &cmd_ingest,        &cmd_dashboard,        &cmd_cloud_status, &cmd_cloud_flush,
    &cmd_config_check,   &cmd_validate,       &cmd_setup,         &cmd_proxy_setup,   &cmd_version,
    NULL,
};

/* cli_json.h — the NDJSON and key checks now live in tests/support/cli_check.h;
 * this name stays so a test written against it still builds. */
#ifndef MCPR_TEST_CLI_JSON_H
#define MCPR_TEST_CLI_JSON_H
#include "cli_check.h"
#endif

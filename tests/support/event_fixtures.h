/*
 * event_fixtures.h — proxy event lines (SPEC §3) shared by the event codec
 * tests and the store sink's mapping tests.
 */
#ifndef MCPR_TEST_EVENT_FIXTURES_H
#define MCPR_TEST_EVENT_FIXTURES_H

#include <stddef.h>

/* The original mcpr's stderr JSON line, every optional null. */
#define EF_REQUEST_ALL_NULL \
    "{\"type\":\"request\",\"id\":\"0190a0b0-0000-7000-8000-000000000001\",\"ts\":1700000000000," \
    "\"proxy\":\"api\",\"session_id\":null,\"method\":\"POST\",\"path\":null,\"mcp_method\":null," \
    "\"tool\":null,\"resource_uri\":null,\"prompt_name\":null,\"status\":200,\"latency_us\":1500," \
    "\"upstream_us\":null,\"request_size\":null,\"response_size\":null,\"error_code\":null," \
    "\"error_msg\":null,\"client_name\":null,\"client_version\":null,\"note\":null}"

/* Lines as the encoder writes them (decode then encode gives each back
 * byte for byte): request, session_start, session_end, heartbeat,
 * schema_version_created, EF_REQUEST_ALL_NULL, then the original's request
 * with stage_timings and a schema payload holding reals. */
extern const char *const EF_CANONICAL[];
extern const size_t EF_CANONICAL_COUNT;

#endif

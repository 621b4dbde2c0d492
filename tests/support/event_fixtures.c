/* event_fixtures.c — see event_fixtures.h. */
#include "event_fixtures.h"

const char *const EF_CANONICAL[] = {
    "{\"type\":\"request\",\"id\":\"r1\",\"ts\":1700000000000,\"proxy\":\"api\","
    "\"session_id\":\"s1\",\"method\":\"POST\",\"path\":\"/mcp\",\"mcp_method\":\"tools/call\","
    "\"tool\":\"search\",\"resource_uri\":null,\"prompt_name\":null,\"status\":200,"
    "\"latency_us\":1500,\"upstream_us\":1200,\"request_size\":10,\"response_size\":20,"
    "\"error_code\":\"-32601\",\"error_msg\":\"nope \\\"q\\\" é\",\"client_name\":\"cursor\","
    "\"client_version\":\"1.0\",\"note\":\"\",\"stage_timings\":{\"parse_us\":3,\"b\":[1,2]}}",
    "{\"type\":\"session_start\",\"session_id\":\"s1\",\"proxy\":\"api\",\"ts\":1,"
    "\"client_name\":\"claude-desktop\",\"client_version\":null,\"client_platform\":null}",
    "{\"type\":\"session_end\",\"session_id\":\"s1\",\"ts\":2,\"server\":\"my-srv\"}",
    "{\"type\":\"heartbeat\",\"ts\":3,\"proxy\":\"api\",\"mcp_status\":\"up\","
    "\"tunnel_status\":null,\"uptime_secs\":60,\"request_count\":7}",
    "{\"type\":\"schema_version_created\",\"ts\":4,\"upstream_id\":\"api\","
    "\"upstream_url\":\"http://x/mcp\",\"method\":\"tools/list\",\"version\":2,"
    "\"version_id\":\"v2\",\"content_hash\":\"ab\",\"payload\":{\"tools\":[{\"name\":\"a\"}]}}",
    EF_REQUEST_ALL_NULL,
    /* The original with MCPR_STAGE_TIMING=1: serde writes the fields in
     * this same order, stage_timings last. */
    "{\"type\":\"request\",\"id\":\"0190a0b0-0000-7000-8000-000000000002\",\"ts\":1700000000001,"
    "\"proxy\":\"api\",\"session_id\":\"s1\",\"method\":\"POST\",\"path\":\"/mcp\","
    "\"mcp_method\":\"tools/call\",\"tool\":\"search\",\"resource_uri\":null,\"prompt_name\":null,"
    "\"status\":200,\"latency_us\":1500,\"upstream_us\":1200,\"request_size\":10,"
    "\"response_size\":20,\"error_code\":null,\"error_msg\":null,\"client_name\":null,"
    "\"client_version\":null,\"note\":\"passthrough\",\"stage_timings\":[{\"name\":"
    "\"intake_parse\",\"elapsed_us\":42},{\"name\":\"upstream\",\"elapsed_us\":100}]}",
    /* Reals in a payload keep their shortest form (not 0.10000000000000001). */
    "{\"type\":\"schema_version_created\",\"ts\":5,\"upstream_id\":\"api\","
    "\"upstream_url\":\"http://x/mcp\",\"method\":\"tools/list\",\"version\":null,"
    "\"version_id\":null,\"content_hash\":\"cd\",\"payload\":{\"tools\":[{\"name\":\"a\","
    "\"inputSchema\":{\"minimum\":0.1,\"maximum\":16.67,\"default\":5.56,\"step\":1.0,"
    "\"big\":1e300,\"tiny\":1e-5,\"third\":0.3333333333333333,\"sum\":0.30000000000000004}}]}}",
};

const size_t EF_CANONICAL_COUNT = sizeof EF_CANONICAL / sizeof EF_CANONICAL[0];

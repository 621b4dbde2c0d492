/*
 * query_fixture.h — one store with known contents for the query and CLI
 * tests, written through the store API (the writer), with timestamps
 * relative to the time it is built so the default windows see it:
 *
 *   now = build time, t0 = now − 2 min
 *   sessions: sess-alpha-1 (api, claude-desktop 1.0, started 3 h ago, active),
 *             sess-alpha-2 (api, cursor 0.9, ended),
 *             sess-idle    (api, claude-desktop 1.0, started/seen 20 min ago: idle),
 *             sess-beta-1  (web, Visual Studio Code 1.9, started 3 h ago)
 *   requests: search (api, sess-alpha-1) ×100, latency 1..100 µs at t0+i ms,
 *               every 10th an error -32602 (10 errors), bytes_in i, bytes_out 2i;
 *             fetch (web, no session) ×20, latency 1..20 µs, the 20th a timeout;
 *             single (api) ×1, latency 7 µs, no bytes;
 *             tools/list (api) ×3 no tool, latency 1000/2000/3000 µs;
 *             resources/read (api, sess-alpha-2, file:///a.md) ×1, 500 µs;
 *             prompts/get (api, sess-alpha-2, review) ×1, 2000000 µs (slow);
 *             search (api, sess-alpha-1) ×1 three hours ago, 900000 µs.
 *   schema:   api http://up-api initialize + tools/list [search, fetch,
 *             unused_tool]; web http://up-web tools/list [fetch, web_only].
 */
#ifndef MCPR_TEST_QUERY_FIXTURE_H
#define MCPR_TEST_QUERY_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "mcpr/mcpr.h"
#include "testutil.h"

#define FX_HOUR_MS 3600000LL
#define FX_INIT_PAYLOAD                                                                   \
  "{\"protocolVersion\":\"2025-06-18\",\"serverInfo\":{\"name\":\"demo\",\"version\":"    \
  "\"1.2\"},\"capabilities\":{\"tools\":{},\"prompts\":{}}}"
#define FX_API_TOOLS                                                                      \
  "{\"tools\":[{\"name\":\"search\",\"description\":\"Search docs\"},{\"name\":\"fetch\"}," \
  "{\"name\":\"unused_tool\",\"description\":\"Never called\"}]}"
#define FX_WEB_TOOLS "{\"tools\":[{\"name\":\"fetch\"},{\"name\":\"web_only\"}]}"

static inline void fx_record(mcpr_store *s, mcpr_store_event e) {
  assert_int_equal(mcpr_store_record(s, &e), MCPR_OK);
}

static inline void fx_request(mcpr_store *s, int64_t ts, const char *proxy, const char *session,
                              const char *method, const char *tool, int64_t latency_us,
                              mcpr_request_status status, const char *error_code,
                              int64_t bytes_in, int64_t bytes_out) {
  char id[MCPR_UUID_STRLEN + 1];
  mcpr_uuid_v7(ts, id);
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_REQUEST};
  e.u.request = (mcpr_request_event){
      .request_id = id, .ts_ms = ts, .proxy = proxy, .session_id = session,
      .method = method, .tool = tool, .latency_us = latency_us, .status = status,
      .error_code = error_code,
      .error_msg = error_code ? "Invalid params" : (status == MCPR_REQUEST_TIMEOUT ? "timed out" : NULL),
      .bytes_in = bytes_in, .bytes_out = bytes_out};
  if (strcmp(method, "resources/read") == 0)
    e.u.request.resource_uri = "file:///a.md";
  if (strcmp(method, "prompts/get") == 0)
    e.u.request.prompt_name = "review";
  fx_record(s, e);
}

static inline void fx_session(mcpr_store *s, const char *id, const char *proxy, int64_t started,
                              const char *client, const char *version) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SESSION};
  e.u.session = (mcpr_session_event){id, proxy, started, client, version, NULL};
  fx_record(s, e);
}

static inline void fx_schema(mcpr_store *s, int64_t ts, const char *proxy, const char *url,
                             const char *method, const char *payload, const char *hash) {
  mcpr_store_event e = {.kind = MCPR_STORE_EVENT_SCHEMA_VERSION};
  e.u.schema_version = (mcpr_schema_version_event){ts, proxy, url, method, payload, hash};
  fx_record(s, e);
}

/* Build the fixture at path; returns the `now` it was built for. */
static inline int64_t fx_build(const char *path) {
  int64_t now = mcpr_now_ms(), t0 = now - 120000;
  mcpr_store *s = NULL;
  mcpr_error err = {0};
  if (mcpr_store_open(&s, path, NULL, &err) != MCPR_OK)
    fail_msg("cannot open fixture store: %s", err.message);
  fx_session(s, "sess-alpha-1", "api", now - 3 * FX_HOUR_MS - 1000, "claude-desktop", "1.0");
  fx_session(s, "sess-alpha-2", "api", t0 - 500, "cursor", "0.9");
  fx_session(s, "sess-idle", "api", now - 20 * 60000, "claude-desktop", "1.0");
  fx_session(s, "sess-beta-1", "web", now - 3 * FX_HOUR_MS, "Visual Studio Code", "1.9");
  fx_request(s, now - 3 * FX_HOUR_MS, "api", "sess-alpha-1", "tools/call", "search", 900000,
             MCPR_REQUEST_OK, NULL, 1, 1);
  for (int i = 1; i <= 100; i++)
    fx_request(s, t0 + i, "api", "sess-alpha-1", "tools/call", "search", i,
               i % 10 == 0 ? MCPR_REQUEST_ERROR : MCPR_REQUEST_OK,
               i % 10 == 0 ? "-32602" : NULL, i, 2 * i);
  for (int i = 1; i <= 20; i++)
    fx_request(s, t0 + 200 + i, "web", NULL, "tools/call", "fetch", i,
               i == 20 ? MCPR_REQUEST_TIMEOUT : MCPR_REQUEST_OK, NULL, -1, -1);
  fx_request(s, t0 + 300, "api", NULL, "tools/call", "single", 7, MCPR_REQUEST_OK, NULL, -1, -1);
  for (int i = 1; i <= 3; i++)
    fx_request(s, t0 + 400 + i, "api", NULL, "tools/list", NULL, 1000 * i, MCPR_REQUEST_OK, NULL,
               10, 100);
  fx_request(s, t0 + 500, "api", "sess-alpha-2", "resources/read", NULL, 500, MCPR_REQUEST_OK,
             NULL, -1, -1);
  fx_request(s, t0 + 501, "api", "sess-alpha-2", "prompts/get", NULL, 2000000, MCPR_REQUEST_OK,
             NULL, -1, -1);
  mcpr_store_event closed = {.kind = MCPR_STORE_EVENT_SESSION_CLOSED};
  closed.u.session_closed = (mcpr_session_closed_event){"sess-alpha-2", t0 + 600};
  fx_record(s, closed);
  fx_schema(s, t0 + 10, "api", "http://up-api", "initialize", FX_INIT_PAYLOAD, "hash-init");
  fx_schema(s, t0 + 11, "api", "http://up-api", "tools/list", FX_API_TOOLS, "hash-api-tools");
  fx_schema(s, t0 + 12, "web", "http://up-web", "tools/list", FX_WEB_TOOLS, "hash-web-tools");
  mcpr_store_stats st;
  assert_int_equal(mcpr_store_flush(s, 30000, &err), MCPR_OK);
  assert_int_equal(mcpr_store_close(s, &st), MCPR_OK);
  return now;
}

#endif

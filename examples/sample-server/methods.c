/*
 * methods.c — what the sample server answers, method by method.
 *
 * Everything here is synchronous and knows nothing of HTTP: a request goes
 * in, a JSON-RPC response comes out. The two exceptions are spelled out in
 * ss_outcome: the `slow` tool is deferred (the transport runs it on timers
 * so that progress can be streamed), and the `notify` tool pushes messages
 * onto the session's GET stream through ss_session_send.
 *
 * The catalogue (tools, resources, prompts) is fixed, so that a proxy's
 * captured schema and the tests can rely on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

const char *const ss_log_levels[8] = {"debug",   "info",     "notice", "warning",
                                      "error",   "critical", "alert",  "emergency"};

static const char *const supported_protocols[] = {"2025-06-18", "2025-03-26", "2024-11-05"};

#define SLOW_MAX_MS 60000
#define SLOW_MAX_STEPS 100
#define ITEM_ID_MAX 32

/* ---------- JSON-RPC builders ---------- */

json_t *ss_response(json_t *id, json_t *result) {
  if (!result)
    return NULL;
  return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(), "result",
                   result);
}

json_t *ss_error(json_t *id, int code, const char *message) {
  return json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                   "error", "code", code, "message", message);
}

json_t *ss_notification(const char *method, json_t *params) {
  json_t *msg = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
  if (!msg) {
    json_decref(params);
    return NULL;
  }
  if (params && json_object_set_new(msg, "params", params) != 0) {
    json_decref(msg);
    return NULL;
  }
  return msg;
}

static json_t *text_content(const char *text, bool is_error) {
  json_t *result = json_pack("{s:[{s:s, s:s}]}", "content", "type", "text", "text", text);
  if (result && is_error)
    json_object_set_new(result, "isError", json_true());
  return result;
}

/* ---------- initialize ---------- */

bool ss_protocol_supported(const char *version) {
  for (size_t i = 0; i < sizeof supported_protocols / sizeof *supported_protocols; i++)
    if (strcmp(version, supported_protocols[i]) == 0)
      return true;
  return false;
}

json_t *ss_initialize_result(json_t *params, ss_session *session) {
  const char *asked = json_string_value(json_object_get(params, "protocolVersion"));
  const char *version = asked && ss_protocol_supported(asked) ? asked : SS_PROTOCOL_LATEST;
  snprintf(session->protocol_version, sizeof session->protocol_version, "%s", version);
  json_t *caps = json_object_get(params, "capabilities");
  session->client_roots = json_is_object(json_object_get(caps, "roots"));

  return json_pack("{s:s, s:{s:{s:b}, s:{}, s:{}, s:{}}, s:{s:s, s:s, s:s}, s:s}",
                   "protocolVersion", version,
                   "capabilities", "tools", "listChanged", 1, "resources", "prompts", "logging",
                   "serverInfo", "name", "mcpr-sample", "title", "mcpr sample server",
                   "version", MCPR_SAMPLE_VERSION,
                   "instructions", "A sample MCP server for trying mcpr: tools echo, add, fail, "
                   "slow, boom and notify.");
}

/* ---------- tools ---------- */

static json_t *tool_catalogue(void) {
  return json_pack(
      "["
      "{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}}, s:[s]}},"
      "{s:s, s:s, s:{s:s, s:{s:{s:s}, s:{s:s}}, s:[s, s]}},"
      "{s:s, s:s, s:{s:s, s:{}}},"
      "{s:s, s:s, s:{s:s, s:{s:{s:s, s:i, s:i}, s:{s:s, s:i, s:i}}}},"
      "{s:s, s:s, s:{s:s, s:{}}},"
      "{s:s, s:s, s:{s:s, s:{}}}"
      "]",
      "name", "echo", "description", "Returns the text it is given.",
      "inputSchema", "type", "object", "properties", "text", "type", "string", "description",
      "The text to echo back.", "required", "text",

      "name", "add", "description", "Adds two numbers.",
      "inputSchema", "type", "object", "properties", "a", "type", "number", "b", "type", "number",
      "required", "a", "b",

      "name", "fail", "description", "Always answers with a tool error (isError: true).",
      "inputSchema", "type", "object", "properties",

      "name", "slow",
      "description", "Takes ms milliseconds, streaming progress in steps over SSE.",
      "inputSchema", "type", "object", "properties",
      "ms", "type", "integer", "minimum", 0, "maximum", SLOW_MAX_MS,
      "steps", "type", "integer", "minimum", 1, "maximum", SLOW_MAX_STEPS,

      "name", "boom", "description", "Fails with a JSON-RPC error (-32000).",
      "inputSchema", "type", "object", "properties",

      "name", "notify",
      "description", "Sends notifications/tools/list_changed and a server request on the "
                     "session's GET stream.",
      "inputSchema", "type", "object", "properties");
}

/* Cursors are the decimal offset of the next page: opaque to clients. */
static bool parse_cursor(json_t *cursor, size_t total, size_t *offset) {
  if (!cursor) {
    *offset = 0;
    return true;
  }
  const char *text = json_string_value(cursor);
  if (!text || !*text)
    return false;
  errno = 0;
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (errno || *end || v < 0 || (unsigned long long)v > total)
    return false;
  *offset = (size_t)v;
  return true;
}

static json_t *tools_list(json_t *id, json_t *params, const ss_config *config) {
  json_t *all = tool_catalogue(), *page = NULL, *result = NULL;
  size_t offset;
  if (!all)
    return NULL;
  if (!parse_cursor(json_object_get(params, "cursor"), json_array_size(all), &offset)) {
    result = ss_error(id, -32602, "Invalid params: unknown cursor");
    goto out;
  }
  size_t total = json_array_size(all);
  size_t end = config->page_size ? offset + config->page_size : total;
  if (end > total)
    end = total;
  page = json_array();
  if (!page)
    goto out;
  for (size_t i = offset; i < end; i++)
    json_array_append(page, json_array_get(all, i));
  json_t *body = json_pack("{s:O}", "tools", page);
  if (body && end < total) {
    char next[32];
    snprintf(next, sizeof next, "%zu", end);
    json_object_set_new(body, "nextCursor", json_string(next));
  }
  result = ss_response(id, body);
out:
  json_decref(page);
  json_decref(all);
  return result;
}

static json_t *tool_add(json_t *id, json_t *args) {
  json_t *a = json_object_get(args, "a"), *b = json_object_get(args, "b");
  if (!json_is_number(a) || !json_is_number(b))
    return ss_error(id, -32602, "Invalid params: add needs numbers a and b");
  char text[64];
  json_int_t sum;
  if (json_is_integer(a) && json_is_integer(b) &&
      !__builtin_add_overflow(json_integer_value(a), json_integer_value(b), &sum))
    snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, sum);
  else
    snprintf(text, sizeof text, "%.17g", json_number_value(a) + json_number_value(b));
  return ss_response(id, text_content(text, false));
}

/* An integer argument within [lo, hi], or def when absent. */
static bool int_arg(json_t *args, const char *key, int def, int lo, int hi, int *out) {
  json_t *v = json_object_get(args, key);
  if (!v) {
    *out = def;
    return true;
  }
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
    return false;
  *out = (int)json_integer_value(v);
  return true;
}

static json_t *tool_notify(const ss_context *ctx, json_t *id) {
  ss_session *s = ctx->session;
  bool open = s->stream != NULL;
  ss_session_send(ctx->server, s, ss_notification("notifications/tools/list_changed", NULL));

  /* A client that declared roots gets the request a real server would
   * make; any other client gets ping, which every client must answer. */
  const char *method = s->client_roots ? "roots/list" : "ping";
  char request_id[32];
  snprintf(request_id, sizeof request_id, "srv-%" PRIu64, ++s->next_server_request);
  json_t *request = json_pack("{s:s, s:s, s:s}", "jsonrpc", "2.0", "id", request_id,
                              "method", method);
  ss_session_send(ctx->server, s, request);

  char text[200];
  snprintf(text, sizeof text,
           "sent notifications/tools/list_changed and %s (id %s) %s", method, request_id,
           open ? "on the GET stream" : "to the backlog: no GET stream is open");
  return ss_response(id, text_content(text, false));
}

static void tools_call(const ss_context *ctx, json_t *id, json_t *params, ss_outcome *out) {
  const char *name = json_string_value(json_object_get(params, "name"));
  json_t *args = json_object_get(params, "arguments");
  if (!name) {
    out->response = ss_error(id, -32602, "Invalid params: tools/call needs a tool name");
    return;
  }
  if (args && !json_is_object(args)) {
    out->response = ss_error(id, -32602, "Invalid params: arguments must be an object");
    return;
  }

  if (strcmp(name, "echo") == 0) {
    const char *text = json_string_value(json_object_get(args, "text"));
    out->response = text ? ss_response(id, text_content(text, false))
                         : ss_error(id, -32602, "Invalid params: echo needs a string text");
  } else if (strcmp(name, "add") == 0) {
    out->response = tool_add(id, args);
  } else if (strcmp(name, "fail") == 0) {
    out->response = ss_response(id, text_content("fail: this tool always fails", true));
  } else if (strcmp(name, "boom") == 0) {
    out->response = ss_error(id, -32000, "boom");
  } else if (strcmp(name, "notify") == 0) {
    out->response = tool_notify(ctx, id);
  } else if (strcmp(name, "slow") == 0) {
    if (!int_arg(args, "ms", 1000, 0, SLOW_MAX_MS, &out->slow_ms) ||
        !int_arg(args, "steps", 5, 1, SLOW_MAX_STEPS, &out->slow_steps)) {
      out->response = ss_error(id, -32602, "Invalid params: slow takes ms in 0..60000 and "
                                           "steps in 1..100");
      return;
    }
    out->deferred = true;
  } else {
    char msg[160];
    snprintf(msg, sizeof msg, "Unknown tool: %.100s", name);
    out->response = ss_error(id, -32602, msg);
  }
}

json_t *ss_slow_result(json_t *id, int slow_ms, int slow_steps) {
  char text[96];
  snprintf(text, sizeof text, "slow: done after %d ms in %d steps", slow_ms, slow_steps);
  return ss_response(id, text_content(text, false));
}

/* ---------- resources ---------- */

static const char readme_text[] =
    "# mcpr sample server\n\nA small Streamable HTTP MCP server to put behind `mcpr proxy`.\n";
static const char config_text[] = "{\"page_size\": 0, \"keepalive_ms\": 15000}";

static json_t *resources_list(json_t *id) {
  return ss_response(
      id, json_pack("{s:[{s:s, s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}]}", "resources",
                    "uri", "sample://readme", "name", "readme", "title", "Read me",
                    "description", "What this server is.", "mimeType", "text/markdown",
                    "uri", "sample://config", "name", "config", "title", "Configuration",
                    "description", "Defaults of the server.", "mimeType", "application/json"));
}

static json_t *resource_templates_list(json_t *id) {
  return ss_response(id, json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "resourceTemplates",
                                   "uriTemplate", "sample://items/{id}", "name", "item",
                                   "description", "One item by id (letters, digits, - and _).",
                                   "mimeType", "text/plain"));
}

static bool valid_item_id(const char *id) {
  size_t n = strlen(id);
  if (n == 0 || n > ITEM_ID_MAX)
    return false;
  for (const char *p = id; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_'))
      return false;
  return true;
}

static json_t *resources_read(json_t *id, json_t *params) {
  const char *uri = json_string_value(json_object_get(params, "uri"));
  if (!uri)
    return ss_error(id, -32602, "Invalid params: resources/read needs a uri");
  const char *mime = NULL;
  char text[128];
  const char *body = text;
  static const char item_prefix[] = "sample://items/";
  if (strcmp(uri, "sample://readme") == 0) {
    mime = "text/markdown";
    body = readme_text;
  } else if (strcmp(uri, "sample://config") == 0) {
    mime = "application/json";
    body = config_text;
  } else if (strncmp(uri, item_prefix, sizeof item_prefix - 1) == 0 &&
             valid_item_id(uri + sizeof item_prefix - 1)) {
    mime = "text/plain";
    snprintf(text, sizeof text, "item %s", uri + sizeof item_prefix - 1);
  } else {
    json_t *err = ss_error(id, -32002, "Resource not found");
    json_object_set_new(json_object_get(err, "error"), "data", json_pack("{s:s}", "uri", uri));
    return err;
  }
  return ss_response(id, json_pack("{s:[{s:s, s:s, s:s}]}", "contents", "uri", uri,
                                   "mimeType", mime, "text", body));
}

/* ---------- prompts ---------- */

static json_t *prompts_list(json_t *id) {
  return ss_response(id, json_pack("{s:[{s:s, s:s, s:s, s:[{s:s, s:s, s:b}]}]}", "prompts",
                                   "name", "greet", "title", "Greeting",
                                   "description", "Asks the model to greet someone.",
                                   "arguments", "name", "name", "description",
                                   "Who to greet.", "required", 1));
}

static json_t *prompts_get(json_t *id, json_t *params) {
  const char *name = json_string_value(json_object_get(params, "name"));
  if (!name || strcmp(name, "greet") != 0)
    return ss_error(id, -32602, "Invalid params: unknown prompt");
  const char *who = json_string_value(json_object_get(json_object_get(params, "arguments"), "name"));
  if (!who)
    return ss_error(id, -32602, "Invalid params: greet needs the argument name");
  char text[300];
  snprintf(text, sizeof text, "Say hello to %.200s, warmly and briefly.", who);
  return ss_response(id, json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}]}", "description",
                                   "A greeting", "messages", "role", "user", "content", "type",
                                   "text", "text", text));
}

/* ---------- dispatch ---------- */

static json_t *logging_set_level(const ss_context *ctx, json_t *id, json_t *params) {
  const char *level = json_string_value(json_object_get(params, "level"));
  for (int i = 0; level && i < 8; i++) {
    if (strcmp(level, ss_log_levels[i]) == 0) {
      ctx->session->log_level = i;
      return ss_response(id, json_object());
    }
  }
  return ss_error(id, -32602, "Invalid params: unknown logging level");
}

void ss_dispatch(const ss_context *ctx, json_t *request, ss_outcome *out) {
  json_t *id = json_object_get(request, "id");
  const char *method = json_string_value(json_object_get(request, "method"));
  json_t *params = json_object_get(request, "params");
  memset(out, 0, sizeof *out);

  if (params && !json_is_object(params)) {
    out->response = ss_error(id, -32602, "Invalid params: params must be an object");
    return;
  }
  if (strcmp(method, "initialize") == 0)
    out->response = ss_error(id, -32600, "Invalid Request: initialize must be sent alone");
  else if (strcmp(method, "ping") == 0)
    out->response = ss_response(id, json_object());
  else if (strcmp(method, "tools/list") == 0)
    out->response = tools_list(id, params, ctx->config);
  else if (strcmp(method, "tools/call") == 0)
    tools_call(ctx, id, params, out);
  else if (strcmp(method, "resources/list") == 0)
    out->response = resources_list(id);
  else if (strcmp(method, "resources/templates/list") == 0)
    out->response = resource_templates_list(id);
  else if (strcmp(method, "resources/read") == 0)
    out->response = resources_read(id, params);
  else if (strcmp(method, "prompts/list") == 0)
    out->response = prompts_list(id);
  else if (strcmp(method, "prompts/get") == 0)
    out->response = prompts_get(id, params);
  else if (strcmp(method, "logging/setLevel") == 0)
    out->response = logging_set_level(ctx, id, params);
  else
    out->response = ss_error(id, -32601, "Method not found");

  /* Out of memory while building: still answer, so the client is not left
   * waiting (the error itself is small). */
  if (!out->deferred && !out->response)
    out->response = ss_error(id, -32603, "Internal error");
}

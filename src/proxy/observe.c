/*
 * observe.c — JSON-RPC accounting for the proxy (see observe.h).
 *
 * One obs per proxy, one obs_exchange per HTTP exchange, all on the event
 * loop's thread: no locks. An exchange parses its request body once (it
 * is complete and bounded before it is forwarded) into `calls`, one per
 * JSON-RPC message that asks something (a request or a notification).
 * The response is matched to them by id:
 *   - application/json: a bounded copy of the body, parsed at the end;
 *   - text/event-stream: an incremental SSE parser over the bytes already
 *     forwarded; each event's data lines are one JSON-RPC message (or a
 *     batch), and a call's event is emitted the moment its response has
 *     passed, so its latency ends there, not when the stream closes.
 * Calls still unanswered when the exchange ends get their event then, with
 * the final HTTP status (202 for notifications, or the proxy's own error).
 *
 * The session table (Mcp-Session-Id → client name/version from initialize)
 * and the last schema hash per method live in obs and are bounded: past
 * MAX_SESSIONS new sessions are still forwarded and recorded, only their
 * client info is not remembered. A paginated list (tools, resources,
 * resource templates, prompts) is gathered page by page in obs and hashed
 * once whole, so one schema version covers all its pages; a server's
 * notifications/<list>/list_changed drops a gathering under way.
 *
 * Strings that reach events from headers (session ids, the path) are made
 * valid UTF-8 first: the event encoders refuse anything else, and evhttp
 * hands over raw bytes (found by tests/fuzz/fuzz_proxy_observe.c).
 */
#include "observe.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json_scan.h"
#include "mcpr/util.h"

#define SESSION_BUCKETS 1024
#define MAX_SESSIONS 100000
#define ERROR_MSG_MAX 512
#define SPARE_EXCHANGES 1024

/* false: every body is read with jansson (the fuzz target runs both ways
 * and compares the events). */
static bool obs_fast = true;

typedef struct session {
  char *id, *client_name, *client_version;
  struct session *next;
} session;

static const char *const schema_methods[] = {"initialize", "tools/list", "resources/list",
                                             "resources/templates/list", "prompts/list"};
/* The array each list result carries its items in (NULL: not a list). */
static const char *const schema_list_keys[] = {NULL, "tools", "resources", "resourceTemplates",
                                               "prompts"};
#define N_SCHEMA_METHODS (sizeof schema_methods / sizeof schema_methods[0])

/*
 * A paginated list being gathered: the pages seen so far, whose session
 * asked for them, and the cursor the next page must be asked with. Only
 * the whole list is a schema version, so nothing is hashed before the last
 * page (no nextCursor). A page that does not continue it (another cursor,
 * another session, a list_changed in between) drops what was gathered:
 * pages from before and after a change must not be mixed into one version.
 */
typedef struct list_pages {
  json_t *items; /* NULL: none under way */
  char *session, *next_cursor;
  size_t bytes; /* the pages' text so far, bounded by max_response_body */
} list_pages;

struct obs {
  char *proxy_name, *upstream_url;
  mcpr_fanout *fan;
  size_t max_body;
  session *buckets[SESSION_BUCKETS];
  size_t n_sessions;
  char schema_hash[N_SCHEMA_METHODS][65];
  list_pages pages[N_SCHEMA_METHODS];
  obs_stats stats;
  /* Exchanges over, kept for the next (no calloc and free per request),
   * at most SPARE_EXCHANGES. */
  obs_exchange *spare;
  size_t n_spare;
};

typedef struct call {
  char *id;     /* compact JSON text of the id; NULL: a notification */
  char *method; /* NULL: not JSON-RPC (a GET stream, a DELETE) */
  char *tool, *resource_uri, *prompt_name;
  char *client_name, *client_version; /* initialize's params.clientInfo */
  char *cursor;                       /* params.cursor (a list's later page) */
  int64_t request_size;
  bool done;
} call;

typedef struct sse_parser {
  char *line;
  size_t line_len;
  bool line_over; /* the line is longer than the bound: ignored */
  char *data;
  size_t data_len;
  bool data_over, has_data, last_cr;
} sse_parser;

struct obs_exchange {
  obs *o;
  char http_method[16];
  char *path, *req_session, *resp_session;
  int64_t ts_ms, t0_us, t_up_us;
  int status;
  bool sse, json;
  call *calls;
  size_t n_calls, calls_cap;
  const char *first_id; /* a call's id (borrowed from calls) */
  char *body; /* bounded copy of a JSON response */
  size_t body_len;
  bool body_over;
  int64_t response_bytes;
  sse_parser sp;
  obs_exchange *next_spare; /* o->spare */
};

/* --- small helpers --- */

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

/* A copy of a header-derived string (a session id, a path) that events can
 * carry: evhttp hands over raw bytes, the event encoders only take UTF-8,
 * so each byte that is not part of a valid sequence becomes '?'. New. */
static char *text_dup(const char *s) {
  if (!s)
    return NULL;
  size_t len = strlen(s);
  char *out = malloc(len + 1);
  if (!out)
    return NULL;
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < len) {
    size_t ascii = i;
    while (ascii < len && u[ascii] < 0x80)
      ascii++;
    memcpy(out + i, u + i, ascii - i); /* a run of ASCII at once */
    i = ascii;
    if (i == len)
      break;
    size_t n = mcpr__utf8_len(u + i, u + len);
    if (n == 0) {
      out[i++] = '?';
      continue;
    }
    memcpy(out + i, u + i, n);
    i += n;
  }
  out[len] = '\0';
  return out;
}

static char *json_str_dup(json_t *v) {
  return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static unsigned hash_str(const char *s) {
  unsigned h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static session *session_find(obs *o, const char *id) {
  if (!id)
    return NULL;
  for (session *s = o->buckets[hash_str(id) % SESSION_BUCKETS]; s; s = s->next)
    if (strcmp(s->id, id) == 0)
      return s;
  return NULL;
}

static void session_free(session *s) {
  free(s->id);
  free(s->client_name);
  free(s->client_version);
  free(s);
}

static void session_put(obs *o, const char *id, const char *name, const char *version) {
  session *s = session_find(o, id);
  if (s) {
    free(s->client_name);
    free(s->client_version);
    s->client_name = dup_or_null(name);
    s->client_version = dup_or_null(version);
    return;
  }
  if (o->n_sessions >= MAX_SESSIONS || !(s = calloc(1, sizeof *s)))
    return;
  s->id = strdup(id);
  s->client_name = dup_or_null(name);
  s->client_version = dup_or_null(version);
  if (!s->id) {
    session_free(s);
    return;
  }
  unsigned b = hash_str(id) % SESSION_BUCKETS;
  s->next = o->buckets[b];
  o->buckets[b] = s;
  o->n_sessions++;
}

static void session_remove(obs *o, const char *id) {
  for (session **pp = &o->buckets[hash_str(id) % SESSION_BUCKETS]; *pp; pp = &(*pp)->next)
    if (strcmp((*pp)->id, id) == 0) {
      session *s = *pp;
      *pp = s->next;
      session_free(s);
      o->n_sessions--;
      return;
    }
}

static void emit(obs *o, const mcpr_event *ev) {
  if (!o->fan)
    return;
  if (mcpr_fanout_emit(o->fan, ev) == MCPR_OK)
    o->stats.events++;
  else
    o->stats.emit_refused++;
}

/* Copy at most ERROR_MSG_MAX bytes of s, cut at a UTF-8 boundary (new). */
static char *clip_utf8(const char *s) {
  if (!s)
    return NULL;
  size_t n = strlen(s);
  if (n > ERROR_MSG_MAX) {
    n = ERROR_MSG_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  return strndup(s, n);
}

static void pages_reset(list_pages *lp) {
  json_decref(lp->items);
  free(lp->session);
  free(lp->next_cursor);
  memset(lp, 0, sizeof *lp);
}

/* --- obs --- */

obs *obs_new(const char *proxy_name, const char *upstream_url, mcpr_fanout *fan,
             size_t max_response_body) {
  obs *o = calloc(1, sizeof *o);
  if (!o)
    return NULL;
  o->proxy_name = strdup(proxy_name);
  o->upstream_url = strdup(upstream_url);
  if (!o->proxy_name || !o->upstream_url) {
    obs_free(o);
    return NULL;
  }
  o->fan = fan;
  o->max_body = max_response_body;
  return o;
}

void obs_free(obs *o) {
  if (!o)
    return;
  for (size_t b = 0; b < SESSION_BUCKETS; b++)
    while (o->buckets[b]) {
      session *s = o->buckets[b];
      o->buckets[b] = s->next;
      session_free(s);
    }
  for (size_t i = 0; i < N_SCHEMA_METHODS; i++)
    pages_reset(&o->pages[i]);
  for (obs_exchange *x = o->spare, *next; x; x = next) {
    next = x->next_spare;
    free(x->calls);
    free(x);
  }
  free(o->proxy_name);
  free(o->upstream_url);
  free(o);
}

void obs_get_stats(const obs *o, obs_stats *out) {
  *out = o->stats;
  out->sessions = o->n_sessions;
}

/* --- the request side --- */

static void call_release(call *c) {
  free(c->id);
  free(c->method);
  free(c->tool);
  free(c->resource_uri);
  free(c->prompt_name);
  free(c->client_name);
  free(c->client_version);
  free(c->cursor);
}

/* One message of the request body into a call; false when it asks nothing
 * (a client's response to a server request). */
static bool call_from_message(call *c, json_t *m) {
  memset(c, 0, sizeof *c);
  json_t *method = json_object_get(m, "method");
  if (!json_is_string(method))
    return false;
  c->method = strdup(json_string_value(method));
  if (!c->method)
    return false; /* nothing else taken yet: nothing to release */
  json_t *id = json_object_get(m, "id");
  if (id && !json_is_null(id))
    c->id = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
  json_t *params = json_object_get(m, "params");
  const char *mn = json_string_value(method);
  if (json_is_object(params)) {
    if (strcmp(mn, "tools/call") == 0)
      c->tool = json_str_dup(json_object_get(params, "name"));
    else if (strcmp(mn, "prompts/get") == 0)
      c->prompt_name = json_str_dup(json_object_get(params, "name"));
    else if (strncmp(mn, "resources/", 10) == 0 &&
             (strcmp(mn + 10, "read") == 0 || strcmp(mn + 10, "subscribe") == 0 ||
              strcmp(mn + 10, "unsubscribe") == 0))
      c->resource_uri = json_str_dup(json_object_get(params, "uri"));
    else if (strcmp(mn, "initialize") == 0) {
      json_t *ci = json_object_get(params, "clientInfo");
      c->client_name = json_str_dup(json_object_get(ci, "name"));
      c->client_version = json_str_dup(json_object_get(ci, "version"));
    }
    c->cursor = json_str_dup(json_object_get(params, "cursor"));
  }
  return true;
}

/* A copy of a plain string member (NULL when absent or not a string);
 * false when it is a string that must be decoded (ask jansson). */
static bool fast_str_dup(mcpr__js_span v, char **out) {
  const char *s;
  size_t n;
  *out = NULL;
  if (!mcpr__js_is_string(v))
    return true;
  if (!mcpr__js_plain_string(v, &s, &n))
    return false;
  *out = strndup(s, n);
  return *out != NULL;
}

/* The compact JSON text of an id as json_dumps writes it (NULL: absent or
 * null); false when only jansson can tell. */
static bool fast_id(mcpr__js_span id, char **out) {
  const char *s;
  size_t n;
  *out = NULL;
  if (!id.p || mcpr__js_is_null(id))
    return true;
  if (!mcpr__js_plain_integer(id) && !mcpr__js_plain_string(id, &s, &n))
    return false;
  *out = strndup(id.p, id.n);
  return *out != NULL;
}

/*
 * The request body read without jansson: one object whose fields need no
 * decoding, and not an initialize (its client info is read the slow way,
 * once per session). Fills x->calls[0] as call_from_message would, or
 * returns false having taken nothing (then jansson reads the body).
 */
static bool fast_request(obs_exchange *x, const char *body, size_t len) {
  if (!obs_fast || len == 0 || mcpr__js_check(body, len) != MCPR__JS_OK)
    return false;
  static const char *const keys[] = {"method", "id", "params"};
  mcpr__js_span f[3], v[2];
  if (!mcpr__js_members(mcpr__js_root(body, len), keys, 3, f))
    return false;
  const mcpr__js_span method = f[0], id = f[1], params = f[2];
  const char *mn;
  size_t mlen;
  if (!mcpr__js_is_string(method))
    return true; /* asks nothing (a response to a server request) */
  if (!mcpr__js_plain_string(method, &mn, &mlen))
    return false;
  call c = {0};
  if (!(c.method = strndup(mn, mlen)))
    return false;
  bool ok = strcmp(c.method, "initialize") != 0 && fast_id(id, &c.id);
  if (ok && mcpr__js_is_object(params)) {
    char **field = NULL;
    const char *key = NULL;
    if (strcmp(c.method, "tools/call") == 0)
      field = &c.tool, key = "name";
    else if (strcmp(c.method, "prompts/get") == 0)
      field = &c.prompt_name, key = "name";
    else if (strncmp(c.method, "resources/", 10) == 0 &&
             (strcmp(c.method + 10, "read") == 0 || strcmp(c.method + 10, "subscribe") == 0 ||
              strcmp(c.method + 10, "unsubscribe") == 0))
      field = &c.resource_uri, key = "uri";
    const char *const pkeys[] = {"cursor", key};
    ok = mcpr__js_members(params, pkeys, field ? 2 : 1, v) && fast_str_dup(v[0], &c.cursor) &&
         (!field || fast_str_dup(v[1], field));
  }
  if (!ok) {
    call_release(&c);
    return false;
  }
  c.request_size = (int64_t)len;
  x->calls[0] = c;
  x->n_calls = 1;
  return true;
}

/* A cleared exchange: a spare one (its calls kept), else a new one. */
static obs_exchange *exchange_take(obs *o) {
  obs_exchange *x = o->spare;
  if (!x)
    return calloc(1, sizeof *x);
  o->spare = x->next_spare;
  o->n_spare--;
  call *calls = x->calls;
  size_t cap = x->calls_cap;
  memset(x, 0, sizeof *x);
  x->calls = calls;
  x->calls_cap = cap;
  memset(calls, 0, cap * sizeof *calls);
  return x;
}

/* x's own strings are freed: kept for a next exchange, or freed. */
static void exchange_give(obs *o, obs_exchange *x) {
  if (o->n_spare >= SPARE_EXCHANGES || x->calls_cap != 1) {
    free(x->calls);
    free(x);
    return;
  }
  x->next_spare = o->spare;
  o->spare = x;
  o->n_spare++;
}

obs_exchange *obs_begin(obs *o, const char *http_method, const char *path, const char *session_id,
                        const char *body, size_t len, int64_t ts_ms, int64_t now_us) {
  if (!o)
    return NULL;
  obs_exchange *x = exchange_take(o);
  if (!x)
    return NULL;
  x->o = o;
  size_t hm = strnlen(http_method, sizeof x->http_method - 1);
  memcpy(x->http_method, http_method, hm); /* cut as snprintf would; calloc ended it */
  x->path = text_dup(path);
  x->req_session = session_id && *session_id ? text_dup(session_id) : NULL;
  x->ts_ms = ts_ms;
  x->t0_us = now_us;
  x->t_up_us = -1;
  if (!x->calls) {
    if (!(x->calls = calloc(1, sizeof *x->calls))) {
      free(x->path);
      free(x->req_session);
      free(x);
      return NULL;
    }
    x->calls_cap = 1;
  }
  if (fast_request(x, body, len)) {
    if (x->n_calls)
      x->first_id = x->calls[0].id; /* NULL reads as "null" */
    return x;
  }
  json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
  size_t n = json_is_array(root) ? json_array_size(root) : 1;
  if (n > 1) {
    call *more = realloc(x->calls, n * sizeof *x->calls);
    if (!more) {
      json_decref(root);
      free(x->calls);
      free(x->path);
      free(x->req_session);
      free(x);
      return NULL;
    }
    x->calls = more;
    x->calls_cap = n;
    memset(x->calls, 0, n * sizeof *x->calls);
  }
  if (json_is_object(root)) {
    if (call_from_message(&x->calls[0], root)) {
      x->calls[0].request_size = (int64_t)len;
      x->n_calls = 1;
    }
  } else if (json_is_array(root)) {
    for (size_t i = 0; i < n; i++) {
      json_t *m = json_array_get(root, i);
      if (!json_is_object(m) || !call_from_message(&x->calls[x->n_calls], m))
        continue;
      /* each message of a batch is accounted with its own (compact) size */
      char *text = json_dumps(m, JSON_COMPACT);
      x->calls[x->n_calls].request_size = text ? (int64_t)strlen(text) : (int64_t)len;
      free(text);
      x->n_calls++;
    }
  }
  if (x->n_calls == 0 && !(json_is_array(root) || json_is_object(root))) {
    /* not JSON-RPC (a GET stream, a DELETE, a body that does not parse):
     * one event for the HTTP exchange itself */
    memset(&x->calls[0], 0, sizeof x->calls[0]);
    x->calls[0].request_size = (int64_t)len;
    x->n_calls = 1;
  }
  for (size_t i = 0; i < x->n_calls && !x->first_id; i++)
    if (x->calls[i].id)
      x->first_id = x->calls[i].id;
  json_decref(root);
  return x;
}

const char *obs_first_id(const obs_exchange *x) {
  return x && x->first_id ? x->first_id : "null";
}

void obs_upstream_sent(obs_exchange *x, int64_t now_us) {
  if (x)
    x->t_up_us = now_us;
}

/* --- the response side --- */

static void emit_call(obs_exchange *x, call *c, int64_t now_us, int64_t response_size,
                      const char *error_code, const char *error_msg, const char *note) {
  obs *o = x->o;
  if (c->done)
    return;
  c->done = true;
  char id[40];
  mcpr_uuid_v7(x->ts_ms, id);
  const char *sid = x->req_session ? x->req_session : x->resp_session;
  session *s = session_find(o, sid);
  char *msg = clip_utf8(error_msg);
  mcpr_event ev;
  mcpr_event_init(&ev, MCPR_EVENT_REQUEST);
  mcpr_event_request *r = &ev.u.request;
  r->id = id;
  r->ts = x->ts_ms;
  r->proxy = o->proxy_name;
  r->session_id = (char *)sid;
  r->method = x->http_method;
  r->path = x->path;
  r->mcp_method = c->method;
  r->tool = c->tool;
  r->resource_uri = c->resource_uri;
  r->prompt_name = c->prompt_name;
  r->status = x->status >= 100 && x->status <= 999 ? x->status : 502;
  r->latency_us = now_us > x->t0_us ? now_us - x->t0_us : 0;
  if (x->t_up_us >= 0 && now_us >= x->t_up_us)
    r->upstream_us = now_us - x->t_up_us;
  r->request_size = c->request_size;
  if (response_size >= 0)
    r->response_size = response_size;
  r->error_code = (char *)error_code;
  r->error_msg = msg;
  r->client_name = s ? s->client_name : c->client_name;
  r->client_version = s ? s->client_version : c->client_version;
  r->note = (char *)note;
  emit(o, &ev);
  free(msg);
}

static int schema_index(const char *method) {
  for (size_t i = 0; method && i < N_SCHEMA_METHODS; i++)
    if (strcmp(method, schema_methods[i]) == 0)
      return (int)i;
  return -1;
}

/* Hash payload and, when it differs from the last version, emit it. */
static void schema_record(obs *o, int i, const char *method, const char *payload) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  char hex[65];
  if (EVP_Digest(payload, strlen(payload), md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
    return;
  for (unsigned k = 0; k < 32; k++)
    snprintf(hex + 2 * k, 3, "%02x", md[k]);
  if (strcmp(o->schema_hash[i], hex) == 0)
    return;
  snprintf(o->schema_hash[i], sizeof o->schema_hash[i], "%s", hex);
  mcpr_event ev;
  mcpr_event_init(&ev, MCPR_EVENT_SCHEMA_VERSION_CREATED);
  mcpr_event_schema_version *sv = &ev.u.schema_version;
  sv->ts = mcpr_now_ms();
  sv->upstream_id = o->proxy_name;
  sv->upstream_url = o->upstream_url;
  sv->method = (char *)method;
  sv->content_hash = hex;
  sv->payload = (char *)payload;
  emit(o, &ev);
}

/*
 * One page of a list: the first page (no cursor asked) starts a gathering,
 * a page asked with the cursor the last one gave continues it, the last
 * page (no nextCursor) completes it. Returns the merged result to hash
 * (new), or NULL while pages are still missing or the pages do not chain.
 */
static json_t *pages_add(obs_exchange *x, const call *c, int i, json_t *result) {
  list_pages *lp = &x->o->pages[i];
  const char *key = schema_list_keys[i];
  const char *sid = x->req_session ? x->req_session : "";
  json_t *items = json_object_get(result, key);
  const char *next = json_string_value(json_object_get(result, "nextCursor"));
  if (!json_is_array(items)) {
    pages_reset(lp);
    return NULL;
  }
  if (!c->cursor) {
    pages_reset(lp);
    if (!next)
      return json_incref(result); /* the whole list in one page */
    lp->items = json_array();
    lp->session = strdup(sid);
    if (!lp->items || !lp->session) {
      pages_reset(lp);
      return NULL;
    }
  } else if (!lp->items || !lp->next_cursor || strcmp(lp->next_cursor, c->cursor) != 0 ||
             strcmp(lp->session, sid) != 0) {
    pages_reset(lp); /* not the page that continues the gathering */
    return NULL;
  }
  char *text = json_dumps(items, JSON_COMPACT);
  lp->bytes += text ? strlen(text) : 0;
  free(text);
  if (lp->bytes > x->o->max_body || json_array_extend(lp->items, items) != 0) {
    pages_reset(lp); /* a list that big is forwarded, not recorded */
    return NULL;
  }
  free(lp->next_cursor);
  lp->next_cursor = NULL;
  if (next) {
    if (!(lp->next_cursor = strdup(next)))
      pages_reset(lp);
    return NULL;
  }
  /* The last page: its result, with every page's items and no cursor. */
  json_t *merged = json_copy(result);
  if (merged) {
    json_object_del(merged, "nextCursor");
    if (json_object_set(merged, key, lp->items) != 0) {
      json_decref(merged);
      merged = NULL;
    }
  }
  pages_reset(lp);
  return merged;
}

static void schema_seen(obs_exchange *x, const call *c, json_t *result) {
  int i = schema_index(c->method);
  if (i < 0)
    return;
  json_t *whole = schema_list_keys[i] ? pages_add(x, c, i, result) : json_incref(result);
  char *payload = whole ? json_dumps(whole, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if (payload)
    schema_record(x->o, i, c->method, payload);
  free(payload);
  json_decref(whole);
}

/* notifications/{tools,resources,prompts}/list_changed from the server: a
 * gathering of that list's pages under way now mixes two versions, so it
 * is dropped. The next complete list is compared with the last version as
 * always, and recorded only if its content differs (SPEC §2: a version
 * per change of content, not per notification). */
static void list_changed(obs *o, const char *method) {
  static const struct {
    const char *note, *list;
  } map[] = {{"notifications/tools/list_changed", "tools/list"},
             {"notifications/resources/list_changed", "resources/list"},
             {"notifications/resources/list_changed", "resources/templates/list"},
             {"notifications/prompts/list_changed", "prompts/list"}};
  for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
    if (strcmp(method, map[k].note) == 0)
      pages_reset(&o->pages[schema_index(map[k].list)]);
}

static void initialize_succeeded(obs_exchange *x, const call *c) {
  const char *sid = x->resp_session;
  if (!sid)
    return; /* a stateless server: no session to start */
  obs *o = x->o;
  session_put(o, sid, c->client_name, c->client_version);
  mcpr_event ev;
  mcpr_event_init(&ev, MCPR_EVENT_SESSION_START);
  ev.u.session_start.session_id = (char *)sid;
  ev.u.session_start.proxy = o->proxy_name;
  ev.u.session_start.ts = x->ts_ms;
  ev.u.session_start.client_name = c->client_name;
  ev.u.session_start.client_version = c->client_version;
  ev.u.session_start.client_platform =
      c->client_name ? (char *)mcpr_client_platform(c->client_name) : NULL;
  emit(o, &ev);
}

/* The text of a tools/call result's first text content, for error_msg. */
static const char *tool_error_text(json_t *result) {
  json_t *content = json_object_get(result, "content");
  for (size_t i = 0; i < json_array_size(content); i++) {
    json_t *text = json_object_get(json_array_get(content, i), "text");
    if (json_is_string(text))
      return json_string_value(text);
  }
  return "tool returned isError: true";
}

/* error_code and error_msg of a JSON-RPC error object (code: the
 * caller's buffer for the code's text). */
static const char *rpc_error_code(json_t *error, char *code, size_t size, const char **msg) {
  json_t *jc = json_object_get(error, "code");
  *msg = json_string_value(json_object_get(error, "message"));
  if (json_is_integer(jc)) {
    snprintf(code, size, "%lld", (long long)json_integer_value(jc));
    return code;
  }
  if (json_is_string(jc)) {
    snprintf(code, size, "%s", json_string_value(jc));
    return code;
  }
  return "error";
}

/* One JSON-RPC response message from the upstream. */
static void response_message(obs_exchange *x, json_t *m, int64_t size, int64_t now_us) {
  json_t *id = json_object_get(m, "id");
  json_t *result = json_object_get(m, "result");
  json_t *error = json_object_get(m, "error");
  if ((!id || json_is_null(id)) && json_is_object(error)) {
    /* An error the server could not tie to a request (it did not read the
     * body: a refused session, a parse error): it answers every request of
     * this exchange still waiting. */
    char code[32];
    const char *msg = NULL;
    const char *error_code = rpc_error_code(error, code, sizeof code, &msg);
    for (size_t i = 0; i < x->n_calls; i++)
      if (!x->calls[i].done && x->calls[i].id)
        emit_call(x, &x->calls[i], now_us, size, error_code, msg, NULL);
    return;
  }
  if (!id || (!result && !error)) {
    /* a server request or notification: not an answer */
    const char *method = json_string_value(json_object_get(m, "method"));
    if (method && !id)
      list_changed(x->o, method);
    return;
  }
  char *key = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
  call *c = NULL;
  for (size_t i = 0; key && i < x->n_calls; i++)
    if (!x->calls[i].done && x->calls[i].id && strcmp(x->calls[i].id, key) == 0)
      c = &x->calls[i];
  free(key);
  if (!c)
    return;
  char code[32];
  const char *error_code = NULL, *error_msg = NULL;
  if (json_is_object(error)) {
    error_code = rpc_error_code(error, code, sizeof code, &error_msg);
  } else if (json_is_object(result)) {
    if (c->method && strcmp(c->method, "tools/call") == 0 &&
        json_is_true(json_object_get(result, "isError"))) {
      error_code = "tool_error";
      error_msg = tool_error_text(result);
    }
    if (x->status >= 200 && x->status < 300) {
      if (c->method && strcmp(c->method, "initialize") == 0)
        initialize_succeeded(x, c);
      schema_seen(x, c, result);
    }
  }
  emit_call(x, c, now_us, size, error_code, error_msg, NULL);
}

/*
 * One response message read without jansson, as response_message reads
 * it: an answer whose fields need no decoding, to a call that is neither
 * an initialize nor a list whose schema is captured, and not a tool's
 * isError result (its text is read the slow way). Returns false having
 * done nothing when jansson must read it.
 */
static bool fast_response(obs_exchange *x, const char *text, size_t len, int64_t now_us) {
  if (!obs_fast || mcpr__js_check(text, len) != MCPR__JS_OK)
    return false;
  static const char *const keys[] = {"id", "result", "error", "method"};
  mcpr__js_span f[4];
  if (!mcpr__js_members(mcpr__js_root(text, len), keys, 4, f))
    return false;
  const mcpr__js_span id = f[0], result = f[1], error = f[2], method = f[3];
  if ((!id.p || mcpr__js_is_null(id)) && mcpr__js_is_object(error))
    return false; /* an error answering every waiting call: rare */
  if (!id.p || (!result.p && !error.p)) {
    const char *mn;
    size_t mlen;
    char name[64];
    if (id.p || !mcpr__js_is_string(method))
      return true;
    if (!mcpr__js_plain_string(method, &mn, &mlen) || mlen >= sizeof name)
      return false;
    memcpy(name, mn, mlen);
    name[mlen] = '\0';
    list_changed(x->o, name);
    return true;
  }
  const char *s;
  size_t n;
  if (!mcpr__js_plain_integer(id) && !mcpr__js_plain_string(id, &s, &n))
    return false;
  call *c = NULL;
  for (size_t i = 0; i < x->n_calls; i++)
    if (!x->calls[i].done && x->calls[i].id && strlen(x->calls[i].id) == id.n &&
        memcmp(x->calls[i].id, id.p, id.n) == 0)
      c = &x->calls[i];
  if (!c)
    return true;
  char code[32];
  const char *error_code = NULL;
  char *error_msg = NULL;
  if (mcpr__js_is_object(error)) {
    static const char *const ekeys[] = {"code", "message"};
    mcpr__js_span e[2];
    if (!mcpr__js_members(error, ekeys, 2, e) || !fast_str_dup(e[1], &error_msg))
      return false;
    const mcpr__js_span jc = e[0];
    error_code = "error";
    if (mcpr__js_is_string(jc) || (jc.p && (jc.p[0] == '-' || (jc.p[0] >= '0' && jc.p[0] <= '9')))) {
      if (!(mcpr__js_is_string(jc) ? mcpr__js_plain_string(jc, &s, &n)
                                    : (s = jc.p, n = jc.n, mcpr__js_plain_integer(jc)))) {
        free(error_msg);
        return false;
      }
      /* cut as snprintf into code[] cuts */
      n = n < sizeof code - 1 ? n : sizeof code - 1;
      memcpy(code, s, n);
      code[n] = '\0';
      error_code = code;
    }
  } else if (mcpr__js_is_object(result)) {
    bool ok2xx = x->status >= 200 && x->status < 300;
    if (!c->method || (ok2xx && (strcmp(c->method, "initialize") == 0 || schema_index(c->method) >= 0)))
      return false;
    if (strcmp(c->method, "tools/call") == 0) {
      mcpr__js_span is_error;
      if (!mcpr__js_member(result, "isError", &is_error) || mcpr__js_is_true(is_error))
        return false;
    }
  }
  emit_call(x, c, now_us, (int64_t)len, error_code, error_msg, NULL);
  free(error_msg);
  return true;
}

/* A JSON text that is one message or a batch of them. */
static void response_text(obs_exchange *x, const char *text, size_t len, int64_t now_us) {
  if (fast_response(x, text, len, now_us))
    return;
  json_t *root = json_loadb(text, len, 0, NULL);
  if (json_is_object(root)) {
    response_message(x, root, (int64_t)len, now_us);
  } else if (json_is_array(root)) {
    for (size_t i = 0; i < json_array_size(root); i++) {
      json_t *m = json_array_get(root, i);
      if (!json_is_object(m))
        continue;
      char *t = json_dumps(m, JSON_COMPACT);
      response_message(x, m, t ? (int64_t)strlen(t) : (int64_t)len, now_us);
      free(t);
    }
  }
  json_decref(root);
}

void obs_response_start(obs_exchange *x, int status, const char *content_type,
                        const char *session_id, int64_t now_us) {
  (void)now_us;
  if (!x)
    return;
  x->status = status;
  if (session_id && *session_id && !x->resp_session)
    x->resp_session = text_dup(session_id);
  if (content_type && strncasecmp(content_type, "text/event-stream", 17) == 0)
    x->sse = true;
  else if (content_type && strncasecmp(content_type, "application/json", 16) == 0)
    x->json = true;
}

/* --- SSE (WHATWG event stream): lines end in \n, \r\n or \r; a blank
 * line dispatches the event; data lines are joined with \n. --- */

static bool grow_append(char **buf, size_t *len, const char *s, size_t n, size_t max) {
  if (*len + n > max)
    return false;
  char *nb = realloc(*buf, *len + n + 1);
  if (!nb)
    return false;
  memcpy(nb + *len, s, n);
  *len += n;
  nb[*len] = '\0';
  *buf = nb;
  return true;
}

static void sse_line(obs_exchange *x, int64_t now_us) {
  sse_parser *p = &x->sp;
  size_t max = x->o->max_body;
  if (p->line_over)
    return;
  const char *l = p->line ? p->line : "";
  size_t n = p->line_len;
  if (n == 0) {
    if (p->has_data && !p->data_over && p->data_len > 0) {
      size_t dl = p->data_len;
      if (p->data[dl - 1] == '\n')
        dl--;
      response_text(x, p->data, dl, now_us);
    }
    p->data_len = 0;
    p->has_data = p->data_over = false;
    return;
  }
  if (l[0] == ':')
    return; /* a comment */
  const char *colon = memchr(l, ':', n);
  size_t name_len = colon ? (size_t)(colon - l) : n;
  if (name_len != 4 || memcmp(l, "data", 4) != 0)
    return; /* id:, event:, retry: are forwarded; nothing to account for */
  const char *v = colon ? colon + 1 : l + n;
  if (v < l + n && *v == ' ')
    v++;
  p->has_data = true;
  if (!p->data_over && (!grow_append(&p->data, &p->data_len, v, (size_t)(l + n - v), max) ||
                        !grow_append(&p->data, &p->data_len, "\n", 1, max)))
    p->data_over = true;
}

static void sse_feed(obs_exchange *x, const char *d, size_t len, int64_t now_us) {
  sse_parser *p = &x->sp;
  size_t max = x->o->max_body;
  size_t i = 0;
  while (i < len) {
    if (p->last_cr && d[i] == '\n') { /* the \n of a \r\n */
      p->last_cr = false;
      i++;
      continue;
    }
    p->last_cr = false;
    size_t j = i;
    while (j < len && d[j] != '\n' && d[j] != '\r')
      j++;
    if (!p->line_over && !grow_append(&p->line, &p->line_len, d + i, j - i, max))
      p->line_over = true;
    if (j == len)
      break;
    p->last_cr = d[j] == '\r';
    sse_line(x, now_us);
    p->line_len = 0;
    p->line_over = false;
    i = j + 1;
  }
}

void obs_response_data(obs_exchange *x, const char *data, size_t len, int64_t now_us) {
  if (!x)
    return;
  x->response_bytes += (int64_t)len;
  if (x->sse) {
    sse_feed(x, data, len, now_us);
  } else if (!x->body_over) {
    if (!grow_append(&x->body, &x->body_len, data, len, x->o->max_body)) {
      x->body_over = true;
      free(x->body);
      x->body = NULL;
      x->body_len = 0;
    }
  }
}

void obs_end(obs_exchange *x, int status, const char *error_code, const char *error_msg,
             const char *note, int64_t now_us) {
  if (!x)
    return;
  obs *o = x->o;
  x->status = status;
  if (!error_code && x->body && x->body_len && status != 202)
    response_text(x, x->body, x->body_len, now_us);
  if (!error_code && x->sse && x->sp.line_len) {
    /* a stream that ended without the blank line after its last event */
    sse_line(x, now_us);
    x->sp.line_len = 0;
    sse_line(x, now_us);
  }
  const char *left_note = note;
  if (!note && x->body_over)
    left_note = "response over max_response_body_size: not parsed";
  for (size_t i = 0; i < x->n_calls; i++) {
    call *c = &x->calls[i];
    const char *n = left_note;
    if (!n && c->id && !error_code && status < 400 && !c->done)
      n = "no response";
    int64_t size = x->n_calls == 1 || !x->sse ? x->response_bytes : -1;
    /* A request (it has an id) the upstream refused with a 4xx and no
     * JSON-RPC error: failed, as "http_<status>". Notifications, GET and
     * DELETE keep the plain rule (a 405 there means "not offered"). */
    char http_code[16];
    const char *code = error_code;
    if (!code && c->id && !c->done && status >= 400 && status < 500) {
      snprintf(http_code, sizeof http_code, "http_%d", status);
      code = http_code;
    }
    emit_call(x, c, now_us, size, code, error_msg, n);
  }
  /* The session is over when the client deletes it, or when the upstream
   * no longer knows it (404: the client must start a new one). */
  if (x->req_session &&
      ((strcmp(x->http_method, "DELETE") == 0 && status >= 200 && status < 300) || status == 404)) {
    session_remove(o, x->req_session);
    mcpr_event ev;
    mcpr_event_init(&ev, MCPR_EVENT_SESSION_END);
    ev.u.session_end.session_id = x->req_session;
    ev.u.session_end.ts = mcpr_now_ms();
    emit(o, &ev);
  }
  for (size_t i = 0; i < x->n_calls; i++)
    call_release(&x->calls[i]);
  free(x->path);
  free(x->req_session);
  free(x->resp_session);
  free(x->body);
  free(x->sp.line);
  free(x->sp.data);
  exchange_give(o, x);
}

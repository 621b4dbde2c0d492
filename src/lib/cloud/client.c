/*
 * client.c — the cloud API client (SPEC §8) over the HTTP layer + jansson.
 *
 * A client holds nothing but its settings and the last answer's status;
 * each call is one request through src/lib/http, which owns the rules that
 * keep the JWT safe (https://, or http:// only to a loopback host; TLS
 * verified; redirects followed only within the same origin; timeouts; the
 * body capped at MCPR_CLOUD_MAX_BODY_BYTES; the JWT redacted from every
 * text that comes back). What is the client's own: the API's paths and
 * JSON, and the error detail it keeps — cut to 4 KiB on a UTF-8 boundary.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "mcpr/cloud.h"
#include "mcpr/mcpr.h"

struct mcpr_cloud_client {
  char *base_url; /* no trailing slash */
  char *jwt;
  char *user_agent;
  mcpr_cloud_options opts;
  long last_status;
  char last_error_body[MCPR_CLOUD_MAX_ERROR_BODY_BYTES + 1];
};

/* What URLs are called in messages about the client's base URL. */
#define URL_NAME "the cloud URL"

void mcpr_cloud_options_init(mcpr_cloud_options *o) {
  *o = (mcpr_cloud_options){.connect_timeout_ms = 10000, .timeout_ms = 30000, .max_redirects = 5};
}

mcpr_status mcpr_cloud_client_new(mcpr_cloud_client **out, const char *base_url,
                                  const mcpr_cloud_options *opts, mcpr_error *err) {
  *out = NULL;
  mcpr_status st = mcpr__http_global_init(err);
  if (st != MCPR_OK)
    return st;
  if (!base_url || !*base_url)
    return mcpr_error_set(err, MCPR_EINVAL, "no cloud URL given");
  if ((st = mcpr__http_check_url(base_url, URL_NAME, 0, NULL, err)) != MCPR_OK)
    return st;
  mcpr_cloud_client *c = calloc(1, sizeof *c);
  if (!c)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  if (opts)
    c->opts = *opts;
  else
    mcpr_cloud_options_init(&c->opts);
  mcpr_cloud_options defaults;
  mcpr_cloud_options_init(&defaults);
  if (c->opts.connect_timeout_ms <= 0)
    c->opts.connect_timeout_ms = defaults.connect_timeout_ms;
  if (c->opts.timeout_ms <= 0)
    c->opts.timeout_ms = defaults.timeout_ms;
  if (c->opts.max_redirects < 0)
    c->opts.max_redirects = 0;
  c->base_url = strdup(base_url);
  char ua[64];
  snprintf(ua, sizeof ua, "mcpr/%s", mcpr_version());
  c->user_agent = strdup(opts && opts->user_agent ? opts->user_agent : ua);
  c->opts.user_agent = NULL;
  if (!c->base_url || !c->user_agent) {
    mcpr_cloud_client_free(c);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  }
  size_t n = strlen(c->base_url);
  while (n > 0 && c->base_url[n - 1] == '/')
    c->base_url[--n] = '\0';
  *out = c;
  return MCPR_OK;
}

void mcpr_cloud_client_free(mcpr_cloud_client *c) {
  if (!c)
    return;
  free(c->base_url);
  mcpr__http_secret_free(c->jwt);
  free(c->user_agent);
  free(c);
}

mcpr_status mcpr_cloud_client_set_jwt(mcpr_cloud_client *c, const char *jwt, mcpr_error *err) {
  char *copy = NULL;
  if (jwt) {
    if (strpbrk(jwt, "\r\n"))
      return mcpr_error_set(err, MCPR_EINVAL, "the login token contains a line break");
    copy = strdup(jwt);
    if (!copy)
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  }
  mcpr__http_secret_free(c->jwt);
  c->jwt = copy;
  return MCPR_OK;
}

const char *mcpr_cloud_client_base_url(const mcpr_cloud_client *c) { return c->base_url; }
long mcpr_cloud_client_last_http_status(const mcpr_cloud_client *c) { return c->last_status; }
const char *mcpr_cloud_client_last_error_body(const mcpr_cloud_client *c) {
  return c->last_error_body;
}

/* ---- transport ------------------------------------------------------ */

/* Keep at most 4 KiB of the layer's error text (already free of the JWT). */
static void set_error_detail(mcpr_cloud_client *c, const char *text) {
  size_t len = mcpr__http_utf8_cut(text, strlen(text), sizeof c->last_error_body - 1);
  memcpy(c->last_error_body, text, len);
  c->last_error_body[len] = '\0';
}

/*
 * Do one API call. body_json is borrowed (NULL: no body). On a 2xx answer
 * *out is the parsed JSON (new reference) — NULL when out is NULL.
 */
static mcpr_status call(mcpr_cloud_client *c, const char *method, const char *path,
                        json_t *body_json, bool authed, json_t **out, mcpr_error *err) {
  mcpr_status st = MCPR_OK;
  char *url = NULL, *payload = NULL, *auth = NULL;
  char label[1200], jwt_shown[64];
  mcpr__http_response res = {0};
  if (out)
    *out = NULL;
  c->last_status = 0;
  c->last_error_body[0] = '\0';
  if (authed && !c->jwt)
    return mcpr_error_set(err, MCPR_EAUTH, "%s %s needs a login first", method, path);
  size_t ulen = strlen(c->base_url) + strlen(path) + 1;
  url = malloc(ulen);
  if (!url)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  snprintf(url, ulen, "%s%s", c->base_url, path);
  if (body_json) {
    payload = json_dumps(body_json, JSON_COMPACT);
    if (!payload) {
      st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
      goto out;
    }
  }
  if (authed) {
    size_t alen = strlen(c->jwt) + 32;
    auth = malloc(alen);
    if (!auth) {
      st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
      goto out;
    }
    snprintf(auth, alen, "Authorization: Bearer %s", c->jwt);
  }
  const char *headers[4];
  size_t nh = 0;
  headers[nh++] = "Accept: application/json";
  if (payload)
    headers[nh++] = "Content-Type: application/json";
  if (auth)
    headers[nh++] = auth;
  headers[nh] = NULL;
  mcpr__http_secret secret = {
      .value = c->jwt, .shown_as = mcpr_secret_mask(c->jwt, jwt_shown, sizeof jwt_shown)};
  snprintf(label, sizeof label, "%s %.1000s", method, path);
  mcpr__http_request req = {.method = method,
                            .url = url,
                            .headers = headers,
                            .body = payload,
                            .body_len = payload ? strlen(payload) : 0,
                            .secrets = &secret,
                            .n_secrets = c->jwt ? 1 : 0,
                            .max_body_bytes = MCPR_CLOUD_MAX_BODY_BYTES,
                            .connect_timeout_ms = c->opts.connect_timeout_ms,
                            .timeout_ms = c->opts.timeout_ms,
                            .max_redirects = c->opts.max_redirects,
                            .user_agent = c->user_agent,
                            .label = label,
                            .peer = "cloud",
                            .shown_url = c->base_url};
  st = mcpr__http_perform(NULL, &req, &res, err);
  c->last_status = res.status;
  if (st != MCPR_OK)
    goto out;
  if (res.status < 200 || res.status > 299) {
    set_error_detail(c, res.error_text);
    long s = res.status;
    st = mcpr_error_set(err, (s == 401 || s == 403) ? MCPR_EAUTH : MCPR_EHTTP,
                        "%s %s: HTTP %ld: %s", method, path, s, c->last_error_body);
    goto out;
  }
  if (out) {
    json_error_t je;
    *out = res.body_len ? json_loadb(res.body, res.body_len, 0, &je) : NULL;
    if (!*out) {
      st = mcpr_error_set(err, MCPR_EPARSE,
                          "%s %s: the cloud's answer (HTTP %ld) is not valid JSON%s%s", method,
                          path, res.status, res.body_len ? ": " : " (empty body)",
                          res.body_len ? je.text : "");
      goto out;
    }
  }
out:
  mcpr__http_response_release(&res);
  if (auth) /* held the JWT */
    mcpr__http_secret_free(auth);
  free(url);
  free(payload);
  return st;
}

/* ---- typed results -------------------------------------------------- */

/* A string field (numbers become decimal text). NULL if absent or other. */
static char *field(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  char buf[32];
  if (json_is_string(v))
    return strdup(json_string_value(v));
  if (json_is_integer(v)) {
    snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return strdup(buf);
  }
  return NULL;
}

static mcpr_status need(char *value, const char *what, const char *key, mcpr_error *err) {
  if (value)
    return MCPR_OK;
  return mcpr_error_set(err, MCPR_EPARSE, "the cloud's answer to %s has no '%s' string", what,
                        key);
}

/* Escape an id for use as one URL path segment. */
static char *segment(const char *id, mcpr_error *err) {
  if (!id || !*id) {
    mcpr_error_set(err, MCPR_EINVAL, "empty id");
    return NULL;
  }
  char *e = curl_easy_escape(NULL, id, 0);
  if (!e) {
    mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    return NULL;
  }
  char *copy = strdup(e);
  curl_free(e);
  if (!copy)
    mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  return copy;
}

void mcpr_cloud_auth_free(mcpr_cloud_auth *a) {
  if (!a)
    return;
  mcpr__http_secret_free(a->jwt);
  free(a->user.id);
  free(a->user.email);
  free(a->user.name);
  free(a);
}

/* ---------- answers: releasing and reading them ----------
 *
 * Every answer is an object (or an array of objects) read by one *_from
 * function into a caller-zeroed struct (the object check is the caller's,
 * post_item's or get_items'); a list is read item by item into a zeroed
 * array. On failure the struct holds what was read so far, so one release
 * function frees a whole, a partial or an empty one alike. */

typedef void (*item_release)(void *item);
typedef mcpr_status (*item_from)(json_t *o, void *item, const char *what, mcpr_error *err);

static void item_free(void *item, item_release release) {
  if (!item)
    return;
  release(item);
  free(item);
}

static void items_free(void *items, size_t count, size_t item_size, item_release release) {
  for (size_t i = 0; i < count; i++)
    release((char *)items + i * item_size);
  free(items);
}

static void project_release(void *item) {
  mcpr_cloud_project *p = item;
  free(p->id);
  free(p->name);
  free(p->slug);
}
void mcpr_cloud_project_free(mcpr_cloud_project *p) { item_free(p, project_release); }
void mcpr_cloud_project_list_free(mcpr_cloud_project_list *l) {
  if (l)
    items_free(l->items, l->count, sizeof *l->items, project_release);
  free(l);
}

static void server_release(void *item) {
  mcpr_cloud_server *s = item;
  free(s->id);
  free(s->name);
  free(s->slug);
  free(s->project_id);
}
void mcpr_cloud_server_free(mcpr_cloud_server *s) { item_free(s, server_release); }
void mcpr_cloud_server_list_free(mcpr_cloud_server_list *l) {
  if (l)
    items_free(l->items, l->count, sizeof *l->items, server_release);
  free(l);
}

static void endpoint_release(void *item) {
  mcpr_cloud_endpoint *e = item;
  free(e->id);
  free(e->name);
  free(e->status);
  free(e->server_id);
}
void mcpr_cloud_endpoint_free(mcpr_cloud_endpoint *e) { item_free(e, endpoint_release); }
void mcpr_cloud_endpoint_list_free(mcpr_cloud_endpoint_list *l) {
  if (l)
    items_free(l->items, l->count, sizeof *l->items, endpoint_release);
  free(l);
}

void mcpr_cloud_token_free(mcpr_cloud_token *t) {
  if (!t)
    return;
  free(t->id);
  mcpr__http_secret_free(t->token);
  free(t->name);
  free(t);
}

static mcpr_status need_object(json_t *o, const char *what, mcpr_error *err) {
  if (json_is_object(o))
    return MCPR_OK;
  return mcpr_error_set(err, MCPR_EPARSE, "the cloud's answer to %s is not an object", what);
}

/* Two strings every answer of its kind must carry. */
static mcpr_status need2(char *a, const char *key_a, char *b, const char *key_b,
                         const char *what, mcpr_error *err) {
  mcpr_status st = need(a, what, key_a, err);
  if (st == MCPR_OK)
    st = need(b, what, key_b, err);
  return st;
}

static mcpr_status project_from(json_t *o, void *item, const char *what, mcpr_error *err) {
  mcpr_cloud_project *p = item;
  p->id = field(o, "id");
  p->name = field(o, "name");
  p->slug = field(o, "slug");
  return need2(p->id, "id", p->slug, "slug", what, err);
}

static mcpr_status server_from(json_t *o, void *item, const char *what, mcpr_error *err) {
  mcpr_cloud_server *s = item;
  s->id = field(o, "id");
  s->name = field(o, "name");
  s->slug = field(o, "slug");
  s->project_id = field(o, "project_id");
  return need2(s->id, "id", s->slug, "slug", what, err);
}

static mcpr_status endpoint_from(json_t *o, void *item, const char *what, mcpr_error *err) {
  mcpr_cloud_endpoint *e = item;
  e->id = field(o, "id");
  e->name = field(o, "name");
  e->status = field(o, "status");
  e->server_id = field(o, "server_id");
  return need2(e->id, "id", e->name, "name", what, err);
}

static mcpr_status token_from(json_t *o, void *item, const char *what, mcpr_error *err) {
  mcpr_cloud_token *t = item;
  t->id = field(o, "id");
  t->token = field(o, "token");
  t->name = field(o, "name");
  return need(t->token, what, "token", err);
}

static mcpr_status auth_from(json_t *o, void *item, const char *what, mcpr_error *err) {
  mcpr_cloud_auth *a = item;
  a->jwt = field(o, "token");
  json_t *u = json_object_get(o, "user");
  if (json_is_object(u)) {
    a->user.id = field(u, "id");
    a->user.email = field(u, "email");
    a->user.name = field(u, "name");
  }
  return need(a->jwt, what, "token", err);
}

/*
 * POST req (consumed: released here; NULL when the caller could not build
 * it, which fails with bad_req) to path and read the answer into item
 * with from. item NULL (its allocation failed) fails with MCPR_ENOMEM.
 */
static mcpr_status post_item(mcpr_cloud_client *c, const char *path, bool auth, json_t *req,
                             const char *bad_req, void *item, item_from from, const char *what,
                             mcpr_error *err) {
  json_t *res = NULL;
  mcpr_status st = !req    ? mcpr_error_set(err, MCPR_EINVAL, "%s", bad_req)
                   : !item ? mcpr_error_set(err, MCPR_ENOMEM, "out of memory")
                           : call(c, "POST", path, req, auth, &res, err);
  if (st == MCPR_OK)
    st = need_object(res, what, err);
  if (st == MCPR_OK)
    st = from(res, item, what, err);
  json_decref(req);
  json_decref(res);
  return st;
}

/*
 * GET path: a JSON array of noun ("projects"), each item read by from into
 * *items (a new zeroed array of item_size elements). *count counts the
 * items read, a failed one included, so the caller's release frees all.
 */
static mcpr_status get_items(mcpr_cloud_client *c, const char *path, const char *noun,
                             size_t item_size, item_from from, void **items, size_t *count,
                             mcpr_error *err) {
  *items = NULL;
  *count = 0;
  json_t *res = NULL;
  mcpr_status st = call(c, "GET", path, NULL, true, &res, err);
  if (st != MCPR_OK)
    return st;
  if (!json_is_array(res)) {
    st = mcpr_error_set(err, MCPR_EPARSE, "the cloud's list of %s is not a JSON array", noun);
    goto out;
  }
  char *a = calloc(json_array_size(res) + 1, item_size);
  if (!a) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto out;
  }
  *items = a;
  char what[64];
  snprintf(what, sizeof what, "the list of %s", noun);
  for (size_t i = 0; i < json_array_size(res) && st == MCPR_OK; i++, (*count)++) {
    json_t *o = json_array_get(res, i);
    st = need_object(o, what, err);
    if (st == MCPR_OK)
      st = from(o, a + i * item_size, what, err);
  }
out:
  json_decref(res);
  return st;
}

/* "/prefix/<escaped id>/suffix" as a new string. */
static char *build_path(const char *prefix, const char *id, const char *suffix, mcpr_error *err) {
  char *seg = segment(id, err);
  if (!seg)
    return NULL;
  size_t n = strlen(prefix) + strlen(seg) + strlen(suffix) + 1;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%s%s%s", prefix, seg, suffix);
  else
    mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  free(seg);
  return p;
}

/* What build_path's failure returns. */
static mcpr_status path_failed(const mcpr_error *err) { return err ? err->status : MCPR_EINVAL; }

mcpr_status mcpr_cloud_login(mcpr_cloud_client *c, const char *email, char **request_id,
                             mcpr_error *err) {
  *request_id = NULL;
  json_t *req = json_pack("{s:s}", "email", email ? email : "");
  json_t *res = NULL;
  if (!req)
    return mcpr_error_set(err, MCPR_EINVAL, "the email is not valid UTF-8");
  mcpr_status st = call(c, "POST", "/api/auth/cli/login", req, false, &res, err);
  if (st == MCPR_OK) {
    *request_id = json_is_object(res) ? field(res, "request_id") : NULL;
    st = need(*request_id, "the login", "request_id", err);
  }
  json_decref(req);
  json_decref(res);
  return st;
}

mcpr_status mcpr_cloud_verify(mcpr_cloud_client *c, const char *request_id, const char *code,
                              mcpr_cloud_auth **out, mcpr_error *err) {
  *out = NULL;
  json_t *req = json_pack("{s:s, s:s}", "request_id", request_id ? request_id : "", "code",
                          code ? code : "");
  if (!req)
    return mcpr_error_set(err, MCPR_EINVAL, "the code is not valid UTF-8");
  mcpr_cloud_auth *a = calloc(1, sizeof *a);
  mcpr_status st = post_item(c, "/api/auth/cli/verify", false, req, NULL, a, auth_from,
                             "the verification", err);
  if (st == MCPR_OK)
    *out = a;
  else
    mcpr_cloud_auth_free(a);
  return st;
}

/*
 * The list calls allocate their list before asking, so a failure anywhere
 * (out of memory, the request, an item) leaves one thing to release: the
 * list, with the items read so far.
 */
mcpr_status mcpr_cloud_list_projects(mcpr_cloud_client *c, mcpr_cloud_project_list **out,
                                     mcpr_error *err) {
  *out = NULL;
  mcpr_cloud_project_list *l = calloc(1, sizeof *l);
  void *items = NULL;
  mcpr_status st = l ? get_items(c, "/api/projects", "projects", sizeof *l->items, project_from,
                                 &items, &l->count, err)
                     : mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  if (l)
    l->items = items;
  if (st == MCPR_OK)
    *out = l;
  else
    mcpr_cloud_project_list_free(l);
  return st;
}

mcpr_status mcpr_cloud_create_project(mcpr_cloud_client *c, const char *name, const char *slug,
                                      mcpr_cloud_project **out, mcpr_error *err) {
  *out = NULL;
  json_t *req = json_pack("{s:s, s:s}", "name", name ? name : "", "slug", slug ? slug : "");
  if (!req)
    return mcpr_error_set(err, MCPR_EINVAL, "the project name is not valid UTF-8");
  mcpr_cloud_project *p = calloc(1, sizeof *p);
  mcpr_status st =
      post_item(c, "/api/projects", true, req, NULL, p, project_from, "creating a project", err);
  if (st == MCPR_OK)
    *out = p;
  else
    mcpr_cloud_project_free(p);
  return st;
}

mcpr_status mcpr_cloud_list_servers(mcpr_cloud_client *c, const char *project_id,
                                    mcpr_cloud_server_list **out, mcpr_error *err) {
  *out = NULL;
  char *path = build_path("/api/servers/by-project/", project_id, "", err);
  if (!path)
    return path_failed(err);
  mcpr_cloud_server_list *l = calloc(1, sizeof *l);
  void *items = NULL;
  mcpr_status st = l ? get_items(c, path, "servers", sizeof *l->items, server_from, &items,
                                 &l->count, err)
                     : mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  free(path);
  if (l)
    l->items = items;
  if (st == MCPR_OK)
    *out = l;
  else
    mcpr_cloud_server_list_free(l);
  return st;
}

mcpr_status mcpr_cloud_create_server(mcpr_cloud_client *c, const char *project_id,
                                     const char *name, const char *slug, mcpr_cloud_server **out,
                                     mcpr_error *err) {
  *out = NULL;
  char *path = build_path("/api/servers/by-project/", project_id, "", err);
  if (!path)
    return path_failed(err);
  mcpr_cloud_server *s = calloc(1, sizeof *s);
  mcpr_status st = post_item(
      c, path, true, json_pack("{s:s, s:s}", "name", name ? name : "", "slug", slug ? slug : ""),
      "the server name is not valid UTF-8", s, server_from, "creating a server", err);
  free(path);
  if (st == MCPR_OK)
    *out = s;
  else
    mcpr_cloud_server_free(s);
  return st;
}

mcpr_status mcpr_cloud_list_endpoints(mcpr_cloud_client *c, const char *server_id,
                                      mcpr_cloud_endpoint_list **out, mcpr_error *err) {
  *out = NULL;
  char *path = build_path("/api/endpoints/by-server/", server_id, "", err);
  if (!path)
    return path_failed(err);
  mcpr_cloud_endpoint_list *l = calloc(1, sizeof *l);
  void *items = NULL;
  mcpr_status st = l ? get_items(c, path, "endpoints", sizeof *l->items, endpoint_from, &items,
                                 &l->count, err)
                     : mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  free(path);
  if (l)
    l->items = items;
  if (st == MCPR_OK)
    *out = l;
  else
    mcpr_cloud_endpoint_list_free(l);
  return st;
}

mcpr_status mcpr_cloud_create_endpoint(mcpr_cloud_client *c, const char *server_id,
                                       const char *name, mcpr_cloud_endpoint **out,
                                       mcpr_error *err) {
  *out = NULL;
  char *path = build_path("/api/endpoints/by-server/", server_id, "", err);
  if (!path)
    return path_failed(err);
  mcpr_cloud_endpoint *e = calloc(1, sizeof *e);
  mcpr_status st = post_item(c, path, true, json_pack("{s:s}", "name", name ? name : ""),
                             "the endpoint name is not valid UTF-8", e, endpoint_from,
                             "creating an endpoint", err);
  free(path);
  if (st == MCPR_OK)
    *out = e;
  else
    mcpr_cloud_endpoint_free(e);
  return st;
}

mcpr_status mcpr_cloud_create_token(mcpr_cloud_client *c, const char *project_id,
                                    const char *name, mcpr_cloud_token **out, mcpr_error *err) {
  *out = NULL;
  char *path = build_path("/api/projects/", project_id, "/tokens", err);
  if (!path)
    return path_failed(err);
  mcpr_cloud_token *t = calloc(1, sizeof *t);
  mcpr_status st = post_item(c, path, true, json_pack("{s:s}", "name", name ? name : ""),
                             "the token name is not valid UTF-8", t, token_from,
                             "creating a token", err);
  free(path);
  if (st == MCPR_OK)
    *out = t;
  else
    mcpr_cloud_token_free(t);
  return st;
}

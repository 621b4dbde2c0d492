/*
 * client.c — the cloud API client (SPEC §8) over libcurl + jansson.
 *
 * One call = one curl easy handle, used and cleaned up inside the call, so
 * a client holds nothing but its settings and the last answer's status.
 * Rules every call follows, and why:
 *   - TLS verification is set explicitly on (never off), and only http and
 *     https are allowed as protocols;
 *   - http:// is accepted only for loopback hosts: the fake cloud of the
 *     tests runs there, and nothing else should see a JWT in clear text;
 *   - curl never follows redirects itself (it would carry our headers to
 *     any host); we follow a redirect only when it stays on the same
 *     scheme, host and port, and fail clearly otherwise;
 *   - connect and total timeouts on every request;
 *   - bodies are capped at MCPR_CLOUD_MAX_BODY_BYTES while they arrive;
 *     error details are cut to 4 KiB, cleaned of control characters and of
 *     the client's JWT before they reach a message.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
/* curl_global_init is process-wide by curl's design; run it exactly once. */
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

void mcpr_cloud_options_init(mcpr_cloud_options *o) {
  *o = (mcpr_cloud_options){.connect_timeout_ms = 10000, .timeout_ms = 30000, .max_redirects = 5};
}

/* An URL's scheme, host and port (default port filled in), lowercase. */
typedef struct origin {
  char scheme[16];
  char host[256];
  long port;
} origin;

static bool is_loopback_host(const char *host) {
  if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
    return true;
  struct in_addr a;
  if (inet_pton(AF_INET, host, &a) == 1)
    return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

/* Parse url into o; false with err for an URL we refuse. */
static bool parse_origin(const char *url, origin *o, bool allow_query, mcpr_error *err) {
  bool ok = false;
  char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *query = NULL;
  CURLU *u = curl_url();
  if (!u) {
    mcpr_error_set(err, MCPR_ENOMEM, "out of memory parsing a URL");
    return false;
  }
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
    mcpr_error_set(err, MCPR_EINVAL, "'%.200s' is not a valid URL (expected https://host[:port])",
                   url);
    goto out;
  }
  if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user) {
    mcpr_error_set(err, MCPR_EINVAL, "the cloud URL must not carry a user name or password");
    goto out;
  }
  if (!allow_query && curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query) {
    mcpr_error_set(err, MCPR_EINVAL, "the cloud URL must not have a query string");
    goto out;
  }
  for (char *c = scheme; *c; c++)
    *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
  for (char *c = host; *c; c++)
    *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
  if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
    mcpr_error_set(err, MCPR_EINVAL, "the cloud URL must start with https:// (got %.20s://)",
                   scheme);
    goto out;
  }
  if (strcmp(scheme, "http") == 0 && !is_loopback_host(host)) {
    mcpr_error_set(err, MCPR_EINVAL,
                   "refusing plain http:// to %.200s: credentials would travel unencrypted; "
                   "use https:// (http:// is only allowed for localhost)",
                   host);
    goto out;
  }
  snprintf(o->scheme, sizeof o->scheme, "%s", scheme);
  snprintf(o->host, sizeof o->host, "%s", host);
  o->port = strtol(port, NULL, 10);
  ok = true;
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(user);
  curl_free(query);
  curl_url_cleanup(u);
  return ok;
}

mcpr_status mcpr_cloud_client_new(mcpr_cloud_client **out, const char *base_url,
                                  const mcpr_cloud_options *opts, mcpr_error *err) {
  *out = NULL;
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return mcpr_error_set(err, MCPR_ENETWORK, "cannot initialise libcurl: %s",
                          curl_easy_strerror(curl_init_rc));
  if (!base_url || !*base_url)
    return mcpr_error_set(err, MCPR_EINVAL, "no cloud URL given");
  origin o;
  if (!parse_origin(base_url, &o, false, err))
    return err ? err->status : MCPR_EINVAL;
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

static void wipe_free(char *s) {
  if (!s)
    return;
  volatile char *v = s;
  while (*v)
    *v++ = 0;
  free(s);
}

void mcpr_cloud_client_free(mcpr_cloud_client *c) {
  if (!c)
    return;
  free(c->base_url);
  wipe_free(c->jwt);
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
  wipe_free(c->jwt);
  c->jwt = copy;
  return MCPR_OK;
}

const char *mcpr_cloud_client_base_url(const mcpr_cloud_client *c) { return c->base_url; }
long mcpr_cloud_client_last_http_status(const mcpr_cloud_client *c) { return c->last_status; }
const char *mcpr_cloud_client_last_error_body(const mcpr_cloud_client *c) {
  return c->last_error_body;
}

/* ---- transport ------------------------------------------------------ */

typedef struct body {
  char *p;
  size_t n, cap;
  bool too_big;
} body;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  body *b = ud;
  size_t n = size * nmemb;
  if (b->n + n > MCPR_CLOUD_MAX_BODY_BYTES) {
    b->too_big = true;
    return 0; /* curl stops with CURLE_WRITE_ERROR */
  }
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1)
      cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q)
      return 0;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = '\0';
  return n;
}

/* Keep at most 4 KiB of text, printable, without the JWT. */
static void set_error_detail(mcpr_cloud_client *c, const char *text, size_t len) {
  size_t cap = sizeof c->last_error_body - 1;
  /*
   * Redact before cutting: a JWT that starts inside the kept part is
   * wholly inside the scratch copy, so no prefix of it survives the cut.
   */
  size_t jwt_len = c->jwt ? strlen(c->jwt) : 0;
  size_t scratch_len = len < cap + jwt_len ? len : cap + jwt_len;
  char *scratch = malloc(scratch_len + 1);
  if (!scratch) {
    snprintf(c->last_error_body, sizeof c->last_error_body, "(out of memory)");
    return;
  }
  for (size_t i = 0; i < scratch_len; i++) {
    unsigned char ch = (unsigned char)text[i];
    scratch[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
  }
  scratch[scratch_len] = '\0';
  if (c->jwt)
    mcpr_secret_redact(scratch, scratch_len + 1, c->jwt);
  len = strlen(scratch);
  if (len > cap) {
    len = cap;
    while (len > 0 && ((unsigned char)scratch[len] & 0xc0) == 0x80)
      len--; /* cut at a UTF-8 boundary */
  }
  memcpy(c->last_error_body, scratch, len);
  c->last_error_body[len] = '\0';
  free(scratch);
}

static void error_detail_from_body(mcpr_cloud_client *c, const body *b) {
  if (!b->p || !b->n) {
    set_error_detail(c, "(empty body)", 12);
    return;
  }
  json_error_t je;
  json_t *j = json_loadb(b->p, b->n, 0, &je);
  const char *msg = NULL;
  if (j && json_is_object(j)) {
    json_t *m = json_object_get(j, "message");
    json_t *e = json_object_get(j, "error");
    if (json_is_string(m))
      msg = json_string_value(m);
    else if (json_is_string(e))
      msg = json_string_value(e);
    else if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
      msg = json_string_value(json_object_get(e, "message"));
  }
  if (msg)
    set_error_detail(c, msg, strlen(msg));
  else
    set_error_detail(c, b->p, strlen(b->p));
  json_decref(j);
}

/*
 * Do one API call. body_json is borrowed (NULL: no body). On a 2xx answer
 * *out is the parsed JSON (new reference) — NULL when out is NULL.
 */
static mcpr_status call(mcpr_cloud_client *c, const char *method, const char *path,
                        json_t *body_json, bool authed, json_t **out, mcpr_error *err) {
  mcpr_status st = MCPR_OK;
  char *url = NULL, *payload = NULL;
  char errbuf[CURL_ERROR_SIZE];
  body b = {0};
  struct curl_slist *headers = NULL;
  CURL *h = NULL;
  const char *verb = method;
  origin base;
  if (out)
    *out = NULL;
  c->last_status = 0;
  c->last_error_body[0] = '\0';
  if (authed && !c->jwt)
    return mcpr_error_set(err, MCPR_EAUTH, "%s %s needs a login first", method, path);
  if (!parse_origin(c->base_url, &base, false, err))
    return err ? err->status : MCPR_EINVAL;
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
  headers = curl_slist_append(headers, "Accept: application/json");
  if (payload)
    headers = curl_slist_append(headers, "Content-Type: application/json");
  if (authed) {
    size_t alen = strlen(c->jwt) + 32;
    char *auth = malloc(alen);
    if (auth) {
      snprintf(auth, alen, "Authorization: Bearer %s", c->jwt);
      headers = curl_slist_append(headers, auth);
      memset(auth, 0, alen);
      free(auth);
    } else {
      curl_slist_free_all(headers);
      headers = NULL;
    }
  }
  if (!headers) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
    goto out;
  }

  for (int hop = 0;; hop++) {
    h = curl_easy_init();
    if (!h) {
      st = mcpr_error_set(err, MCPR_ENOMEM, "cannot create a curl handle");
      goto out;
    }
    errbuf[0] = '\0';
    free(b.p);
    b = (body){0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* loopback (the tests' fake cloud) never goes through an http_proxy */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.0/8,::1");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MCPR_CLOUD_MAX_BODY_BYTES);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (strcmp(verb, "GET") == 0) {
      curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, verb);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload ? payload : "");
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(payload ? strlen(payload) : 0));
    }
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    c->last_status = status;
    if (rc == CURLE_FILESIZE_EXCEEDED || (rc == CURLE_WRITE_ERROR && b.too_big)) {
      st = mcpr_error_set(err, MCPR_ETOOBIG,
                          "%s %s: the cloud's answer is larger than %d bytes; refusing it",
                          method, path, MCPR_CLOUD_MAX_BODY_BYTES);
      goto out;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      st = mcpr_error_set(err, MCPR_ETIMEDOUT, "%s %s: no answer from %s within %ld ms", method,
                          path, c->base_url, c->opts.timeout_ms);
      goto out;
    }
    if (rc != CURLE_OK) {
      st = mcpr_error_set(err, MCPR_ENETWORK, "%s %s: cannot reach %s: %s", method, path,
                          c->base_url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
      goto out;
    }
    if (status >= 300 && status < 400) {
      char *loc = NULL;
      curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc);
      if (!loc) {
        st = mcpr_error_set(err, MCPR_EHTTP, "%s %s: HTTP %ld without a Location", method, path,
                            status);
        goto out;
      }
      origin to;
      mcpr_error ignored = {0};
      bool same = parse_origin(loc, &to, true, &ignored) && strcmp(to.scheme, base.scheme) == 0 &&
                  strcmp(to.host, base.host) == 0 && to.port == base.port;
      if (!same) {
        st = mcpr_error_set(err, MCPR_EHTTP,
                            "%s %s: the cloud redirected (HTTP %ld) to another host or scheme "
                            "(%.200s); not following it, so your credentials are not sent there. "
                            "Check the cloud URL",
                            method, path, status, to.host[0] ? to.host : "an invalid URL");
        goto out;
      }
      if (hop >= c->opts.max_redirects) {
        st = mcpr_error_set(err, MCPR_EHTTP, "%s %s: too many redirects", method, path);
        goto out;
      }
      char *next = strdup(loc);
      if (!next) {
        st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
        goto out;
      }
      free(url);
      url = next;
      /* 301/302/303 turn a POST into a GET, as browsers and curl do. */
      if (status != 307 && status != 308 && strcmp(verb, "GET") != 0) {
        verb = "GET";
        free(payload);
        payload = NULL;
      }
      curl_easy_cleanup(h);
      h = NULL;
      continue;
    }
    break;
  }

  if (c->last_status < 200 || c->last_status > 299) {
    error_detail_from_body(c, &b);
    long s = c->last_status;
    st = mcpr_error_set(err, (s == 401 || s == 403) ? MCPR_EAUTH : MCPR_EHTTP,
                        "%s %s: HTTP %ld: %s", method, path, s, c->last_error_body);
    goto out;
  }
  if (out) {
    json_error_t je;
    *out = b.n ? json_loadb(b.p, b.n, 0, &je) : NULL;
    if (!*out) {
      st = mcpr_error_set(err, MCPR_EPARSE,
                          "%s %s: the cloud's answer (HTTP %ld) is not valid JSON%s%s", method,
                          path, c->last_status, b.n ? ": " : " (empty body)",
                          b.n ? je.text : "");
      goto out;
    }
  }
out:
  if (h)
    curl_easy_cleanup(h);
  curl_slist_free_all(headers); /* held the JWT: curl copies nothing we must wipe */
  free(url);
  free(payload);
  free(b.p);
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
  wipe_free(a->jwt);
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
  wipe_free(t->token);
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

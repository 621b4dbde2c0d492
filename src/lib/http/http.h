/*
 * http.h — internal: the library's one outbound HTTP layer (over libcurl).
 *
 * Every part of mcpr that talks HTTP to another machine (the cloud API
 * client, the cloud sink, the config check of URLs, and whatever comes
 * next, such as an OTLP exporter) goes through here, so the rules below
 * are decided once:
 *   - which URLs may be used at all (mcpr__http_check_url): https://, or
 *     http:// only when the parsed host is loopback; never a user name or
 *     password in the URL;
 *   - TLS verification always on; only http and https as protocols;
 *     loopback never goes through a proxy;
 *   - curl never follows a redirect itself; the layer follows one only
 *     when it stays on the same scheme, host and port, so headers (the
 *     Authorization among them) never reach another origin;
 *   - a connect timeout and one deadline for the whole request,
 *     redirects included; an optional abort time another thread may set;
 *   - answers are capped while they arrive;
 *   - the secrets a caller names are redacted from every text the layer
 *     gives back (error bodies, error texts, messages).
 *
 * This layer depends on nothing above it (not on cloud, config or sink).
 *
 *   mcpr__http_request req = {.method = "POST", .url = url, .headers = lines,
 *                             .body = json, .body_len = n, .secrets = &tok,
 *                             .n_secrets = 1, .max_redirects = 5};
 *   mcpr__http_response res;
 *   if (mcpr__http_perform(NULL, &req, &res, &err) == MCPR_OK)
 *     ... res.status, res.body, res.error_text, res.retry_after_ms ...
 *   mcpr__http_response_release(&res);
 */
#ifndef MCPR__HTTP_HTTP_H
#define MCPR__HTTP_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcpr/error.h"

#define MCPR__HTTP_DEFAULT_MAX_BODY_BYTES (1024 * 1024)
#define MCPR__HTTP_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define MCPR__HTTP_DEFAULT_TIMEOUT_MS 30000
/* A Retry-After further away than this is read as this. */
#define MCPR__HTTP_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

/* ---- which URLs may be used ------------------------------------------ */

/* An URL's scheme, host and port (default port filled in), lowercase. */
typedef struct mcpr__http_origin {
  char scheme[8];  /* "http" or "https" */
  char host[256];  /* as curl parses it; an IPv6 literal keeps its brackets */
  long port;
} mcpr__http_origin;

/* Flags of mcpr__http_check_url. */
enum {
  /* Allow a query string and a fragment (a request URL); without it the
   * URL is a base that paths are appended to, where either would be a
   * mistake. */
  MCPR__HTTP_URL_ALLOW_QUERY = 1u << 0,
};

/*
 * Whether url may be used: a valid http(s) URL without user name or
 * password whose scheme is https, or http when the parsed host is
 * loopback (mcpr__http_is_loopback_host). name says what the URL is in
 * messages ("cloud.endpoint", "the cloud URL"). MCPR_OK and *origin filled
 * (origin may be NULL); MCPR_EINVAL with a message naming it and saying
 * why; MCPR_ENOMEM.
 */
mcpr_status mcpr__http_check_url(const char *url, const char *name, unsigned flags,
                                 mcpr__http_origin *origin, mcpr_error *err);

/* localhost, 127.0.0.0/8 as an IPv4 literal, ::1 (with or without
 * brackets). Anything else — 127.attacker.example included — is not. */
bool mcpr__http_is_loopback_host(const char *host);

bool mcpr__http_same_origin(const mcpr__http_origin *a, const mcpr__http_origin *b);

/* ---- secrets ---------------------------------------------------------- */

/* A secret to keep out of returned text, and what to show in its place. */
typedef struct mcpr__http_secret {
  const char *value;    /* NULL or shorter than 8 bytes: not redacted */
  const char *shown_as; /* e.g. mcpr_secret_mask()'s text; NULL: "…" */
} mcpr__http_secret;

/*
 * text[0..stop) with every occurrence of each secret replaced by its
 * shown_as; text[stop..len) is only read to recognise whole a secret that
 * starts before stop (stop = len: all of it). New (NUL-terminated;
 * *out_len gets its length when out_len is not NULL), NULL when out of
 * memory.
 */
char *mcpr__http_redact(const char *text, size_t len, size_t stop,
                        const mcpr__http_secret *secrets, size_t n_secrets, size_t *out_len);

/* The longest prefix of s[0..len) that is at most max bytes and does not
 * end inside a UTF-8 sequence. */
size_t mcpr__http_utf8_cut(const char *s, size_t len, size_t max);

/* ---- requests --------------------------------------------------------- */

/* Process-wide libcurl setup, done once (curl_global_init is not thread-safe
 * on its own). Every function here calls it; callers may call it early to
 * report a failure at a better time. */
mcpr_status mcpr__http_global_init(mcpr_error *err);

/* A reusable connection cache (one curl easy handle) for a caller that
 * sends many requests from one thread. */
typedef struct mcpr__http mcpr__http;
mcpr_status mcpr__http_new(mcpr__http **out, mcpr_error *err);
void mcpr__http_free(mcpr__http *h); /* NULL is a no-op */

typedef struct mcpr__http_request {
  const char *method;         /* "GET" (also NULL), "POST", "PUT", ... */
  const char *url;            /* checked with MCPR__HTTP_URL_ALLOW_QUERY */
  const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL;
                                 a line with CR or LF is refused */
  const char *body;           /* NULL: no body */
  size_t body_len;
  const mcpr__http_secret *secrets; /* redacted from everything returned */
  size_t n_secrets;
  size_t max_body_bytes;      /* 0: MCPR__HTTP_DEFAULT_MAX_BODY_BYTES */
  bool cut_body;              /* a longer body: keep its start (body_cut) instead
                                 of failing with MCPR_ETOOBIG */
  long connect_timeout_ms;    /* 0: default */
  long timeout_ms;            /* the whole request, redirects included; 0: default */
  int max_redirects;          /* same-origin redirects followed; 0: none */
  bool keep_method;           /* follow only 307/308 for a request with a body:
                                 a 301/302/303 would turn it into a bodiless GET
                                 whose 200 says nothing of the upload; fail instead */
  const char *user_agent;     /* NULL: "mcpr/<version>" */
  atomic_llong *abort_at_ms;  /* monotonic ms (core/clock.h) after which the
                                 transfer stops; NULL or < 0: never */
  /* For messages: */
  const char *label;          /* starts each message ("GET /api/projects");
                                 NULL: "<method> <url>" */
  const char *peer;           /* who answers, a noun ("cloud"): "the cloud's
                                 answer"; NULL: "server" */
  const char *shown_url;      /* the address named in messages; NULL: url */
} mcpr__http_request;

typedef struct mcpr__http_response {
  long status;            /* of the last answer; 0: none arrived */
  char *body;             /* new, NUL-terminated, NULL when empty; as received
                             for a 2xx answer, else with the secrets redacted */
  size_t body_len;
  bool body_cut;          /* cut_body and the answer was longer */
  char *error_text;       /* new, for a non-2xx answer: the body's `message`
                             (or `error`, or `error.message`) string, else the
                             body text, else "(empty body)"; control
                             characters replaced, secrets redacted, uncut */
  int64_t retry_after_ms; /* from Retry-After (seconds or HTTP-date); -1: none */
  bool aborted;           /* abort_at_ms was reached */
} mcpr__http_response;

/*
 * Send req and read the answer into *res (always initialised; release it
 * with mcpr__http_response_release). h may be NULL (a handle for this
 * request only). MCPR_OK when an HTTP answer arrived, whatever its status;
 * otherwise, with a message starting with the label and free of secrets:
 *   MCPR_EINVAL    the URL or a header was refused (nothing was sent)
 *   MCPR_ENETWORK  no answer (cannot connect, TLS, reset...)
 *   MCPR_ETIMEDOUT the deadline passed, or abort_at_ms (res->aborted)
 *   MCPR_ETOOBIG   the answer is larger than max_body_bytes (not cut_body)
 *   MCPR_EHTTP     a redirect refused: to another origin, without a
 *                  Location, or too many (res->status is the 3xx)
 *   MCPR_ENOMEM
 * 301, 302 and 303 turn a request with a body into a GET, as browsers do
 * (unless keep_method); 307 and 308 keep the method and body.
 */
mcpr_status mcpr__http_perform(mcpr__http *h, const mcpr__http_request *req,
                               mcpr__http_response *res, mcpr_error *err);
void mcpr__http_response_release(mcpr__http_response *res);

/* A Retry-After value (seconds, or an HTTP-date compared with now_ms, Unix
 * ms) as milliseconds from now, capped at MCPR__HTTP_RETRY_AFTER_MAX_MS;
 * -1 when it is neither. */
int64_t mcpr__http_parse_retry_after(const char *value, int64_t now_ms);

/* Zero a secret string (a token, a JWT, an Authorization header) before
 * freeing it, so it does not linger in freed memory. NULL is a no-op. */
void mcpr__http_secret_free(char *secret);

#endif

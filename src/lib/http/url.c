/*
 * url.c — which URLs mcpr may send a request (and a credential) to.
 *
 * The URL is parsed by libcurl's own parser (curl_url), the same code that
 * decides where a transfer connects, and the decision is made on the
 * parsed host, never on the text: "http://127.attacker.example/" has the
 * host 127.attacker.example, and "http://localhost:8080@attacker.example/"
 * has a user name and the host attacker.example. A string-prefix test
 * accepts both as loopback and sends the token in clear text to the
 * attacker; this is why there is one check, here, for every caller.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

static bool is_loopback_v6(const char *host) {
  char buf[64];
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
    host++;
    n -= 2;
  }
  if (n == 0 || n >= sizeof buf)
    return false;
  memcpy(buf, host, n);
  buf[n] = '\0';
  struct in6_addr a;
  /* a zone id ("%lo") makes inet_pton fail: not accepted */
  return inet_pton(AF_INET6, buf, &a) == 1 && memcmp(&a, &in6addr_loopback, sizeof a) == 0;
}

bool mcpr__http_is_loopback_host(const char *host) {
  if (!host || !*host)
    return false;
  if (strcasecmp(host, "localhost") == 0)
    return true;
  struct in_addr a;
  if (inet_pton(AF_INET, host, &a) == 1) /* only a full dotted-quad literal */
    return (ntohl(a.s_addr) >> 24) == 127;
  return is_loopback_v6(host);
}

bool mcpr__http_same_origin(const mcpr__http_origin *a, const mcpr__http_origin *b) {
  return strcmp(a->scheme, b->scheme) == 0 && strcmp(a->host, b->host) == 0 &&
         a->port == b->port;
}

static void lowercase(char *s) {
  for (; *s; s++)
    *s = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
}

/* A part of u, NULL when absent; *oom when curl ran out of memory. */
static char *part(CURLU *u, CURLUPart what, unsigned flags, bool *oom) {
  char *v = NULL;
  CURLUcode rc = curl_url_get(u, what, &v, flags);
  if (rc == CURLUE_OUT_OF_MEMORY)
    *oom = true;
  return rc == CURLUE_OK ? v : NULL;
}

mcpr_status mcpr__http_check_url(const char *url, const char *name, unsigned flags,
                                 mcpr__http_origin *origin, mcpr_error *err) {
  mcpr_status st = MCPR_EINVAL;
  char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *password = NULL;
  char *query = NULL, *fragment = NULL;
  bool oom = false;
  if (!name)
    name = "the URL";
  if (!url || !*url)
    return mcpr_error_set(err, MCPR_EINVAL, "%s is empty (expected https://host[:port])", name);
  CURLU *u = curl_url();
  if (!u)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory parsing %s", name);
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (rc == CURLUE_OK) {
    scheme = part(u, CURLUPART_SCHEME, 0, &oom);
    host = part(u, CURLUPART_HOST, 0, &oom);
    port = part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT, &oom);
    user = part(u, CURLUPART_USER, 0, &oom);
    password = part(u, CURLUPART_PASSWORD, 0, &oom);
    query = part(u, CURLUPART_QUERY, 0, &oom);
    fragment = part(u, CURLUPART_FRAGMENT, 0, &oom);
  }
  if (rc == CURLUE_OUT_OF_MEMORY || oom) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory parsing %s", name);
    goto out;
  }
  if (rc != CURLUE_OK || !scheme || !host || !*host || !port) {
    mcpr_error_set(err, MCPR_EINVAL, "%s '%.200s' is not a valid URL (expected https://host[:port])",
                   name, url);
    goto out;
  }
  if (user || password) {
    mcpr_error_set(err, MCPR_EINVAL, "%s must not carry a user name or password", name);
    goto out;
  }
  if (!(flags & MCPR__HTTP_URL_ALLOW_QUERY) && (query || fragment)) {
    mcpr_error_set(err, MCPR_EINVAL, "%s must not have a query string%s", name,
                   fragment ? " or a fragment ('#')" : "");
    goto out;
  }
  lowercase(scheme);
  lowercase(host);
  if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
    mcpr_error_set(err, MCPR_EINVAL, "%s must start with https:// (got %.20s://)", name, scheme);
    goto out;
  }
  if (strcmp(scheme, "http") == 0 && !mcpr__http_is_loopback_host(host)) {
    mcpr_error_set(err, MCPR_EINVAL,
                   "%s: refusing plain http:// to %.200s: credentials would travel unencrypted; "
                   "use https:// (http:// is only allowed for localhost)",
                   name, host);
    goto out;
  }
  if (strlen(host) >= sizeof origin->host) {
    mcpr_error_set(err, MCPR_EINVAL, "%s has a host name longer than %zu bytes", name,
                   sizeof origin->host - 1);
    goto out;
  }
  if (origin) {
    snprintf(origin->scheme, sizeof origin->scheme, "%s", scheme);
    snprintf(origin->host, sizeof origin->host, "%s", host);
    origin->port = strtol(port, NULL, 10); /* curl gives digits only */
  }
  st = MCPR_OK;
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(user);
  curl_free(password);
  curl_free(query);
  curl_free(fragment);
  curl_url_cleanup(u);
  return st;
}

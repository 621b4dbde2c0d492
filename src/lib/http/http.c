/*
 * http.c — one request under the rules of http.h, over a curl easy handle.
 *
 * A request is a loop of hops. Each hop checks its URL (mcpr__http_check_url),
 * sets the handle up from scratch (curl_easy_reset, so nothing of an earlier
 * request or hop leaks into it), and performs; curl never follows a
 * redirect itself. A 3xx answer's Location, resolved by curl against the
 * hop's URL, is followed only when it passes the same check and has the
 * origin of the first URL — the headers (an Authorization among them) are
 * the caller's and are meant for that origin only.
 *
 * While an answer arrives its body is kept up to max_body_bytes; in
 * cut_body mode a little more is kept (the longest secret's length), so a
 * secret that starts before the cut is whole when it is redacted. The
 * header callback reads Retry-After; the progress callback stops the
 * transfer at abort_at_ms, which another thread may move (the cloud sink's
 * close does).
 *
 * Whatever text goes back — the error body, the error text drawn from it,
 * the message in err (which may quote curl, a URL or a Location) — passes
 * through mcpr__http_redact first; a 2xx body is data and is returned as
 * received.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"
#include "core/buf.h"
#include "http/http.h"
#include "mcpr/util.h"

struct mcpr__http {
  CURL *curl;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;
/* curl_global_init is process-wide by curl's design; run it exactly once. */
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

mcpr_status mcpr__http_global_init(mcpr_error *err) {
  pthread_once(&global_once, global_init);
  if (global_rc != CURLE_OK)
    return mcpr_error_set(err, MCPR_ENETWORK, "cannot initialise libcurl: %s",
                          curl_easy_strerror(global_rc));
  return MCPR_OK;
}

mcpr_status mcpr__http_new(mcpr__http **out, mcpr_error *err) {
  *out = NULL;
  mcpr_status st = mcpr__http_global_init(err);
  if (st != MCPR_OK)
    return st;
  mcpr__http *h = calloc(1, sizeof *h);
  if (h)
    h->curl = curl_easy_init();
  if (!h || !h->curl) {
    free(h);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory creating an HTTP handle");
  }
  *out = h;
  return MCPR_OK;
}

void mcpr__http_free(mcpr__http *h) {
  if (!h)
    return;
  curl_easy_cleanup(h->curl);
  free(h);
}

void mcpr__http_response_release(mcpr__http_response *res) {
  if (!res)
    return;
  free(res->body);
  free(res->error_text);
  res->body = res->error_text = NULL;
  res->body_len = 0;
}

int64_t mcpr__http_parse_retry_after(const char *value, int64_t now_ms) {
  const char *p = value;
  while (*p == ' ' || *p == '\t')
    p++;
  if (*p >= '0' && *p <= '9') {
    int64_t secs = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
      if (secs < MCPR__HTTP_RETRY_AFTER_MAX_MS / 1000)
        secs = secs * 10 + (*p - '0');
    }
    while (*p == ' ' || *p == '\t')
      p++;
    if (*p)
      return -1;
    return secs >= MCPR__HTTP_RETRY_AFTER_MAX_MS / 1000 ? MCPR__HTTP_RETRY_AFTER_MAX_MS
                                                        : secs * 1000;
  }
  time_t at = curl_getdate(p, NULL); /* an HTTP-date */
  if (at <= 0)
    return -1;
  int64_t ms = (int64_t)at * 1000 - now_ms;
  return ms < 0 ? 0 : ms > MCPR__HTTP_RETRY_AFTER_MAX_MS ? MCPR__HTTP_RETRY_AFTER_MAX_MS : ms;
}

/* ---- one transfer ------------------------------------------------------ */

typedef struct transfer {
  const mcpr__http_request *req;
  size_t keep;     /* bytes of the body kept */
  mcpr__buf body; /* what is kept of the answer, at most `keep` bytes */
  uint64_t received;
  bool too_big, oom;
  int64_t retry_after_ms;
} transfer;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  transfer *t = ud;
  size_t n = size * nmemb;
  t->received += n;
  size_t take = n;
  if (t->body.n + n > t->keep) {
    if (!t->req->cut_body) {
      t->too_big = true;
      return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    take = t->keep - t->body.n; /* the rest is read and dropped */
  }
  if (take == 0)
    return n;
  if (!mcpr__buf_add(&t->body, data, take)) {
    t->oom = true;
    return 0;
  }
  return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
  transfer *t = ud;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    t->retry_after_ms = -1; /* a new answer (after a 1xx) starts */
  } else if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
    char v[128];
    size_t len = n - 12 < sizeof v - 1 ? n - 12 : sizeof v - 1;
    memcpy(v, data + 12, len);
    v[len] = '\0';
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' ||
                       v[len - 1] == '\t'))
      v[--len] = '\0';
    t->retry_after_ms = mcpr__http_parse_retry_after(v, mcpr_now_ms());
  }
  return n;
}

static bool abort_due(const mcpr__http_request *req) {
  if (!req->abort_at_ms)
    return false;
  long long at = atomic_load(req->abort_at_ms);
  return at >= 0 && mcpr__mono_ms() >= at;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  (void)a, (void)b, (void)c, (void)d;
  return abort_due(ud) ? 1 : 0;
}

/* ---- messages ---------------------------------------------------------- */

typedef struct names {
  char label[320];
  const char *peer, *shown_url;
} names;

static mcpr_status fail(const mcpr__http_request *req, mcpr_error *err, mcpr_status st,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Set err to the formatted message, cleaned of the request's secrets. */
static mcpr_status fail(const mcpr__http_request *req, mcpr_error *err, mcpr_status st,
                        const char *fmt, ...) {
  if (!err)
    return st;
  char raw[2 * MCPR_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  size_t len = strlen(raw);
  char *clean = mcpr__http_redact(raw, len, len, req->secrets, req->n_secrets, NULL);
  if (clean)
    mcpr_error_set(err, st, "%s", clean);
  else /* the raw text may hold a secret: say less */
    mcpr_error_set(err, st, "HTTP request failed: %s (and out of memory describing it)",
                   mcpr_strerror(st));
  free(clean);
  return st;
}

/* The host of url for a message, or "an invalid URL". */
static void shown_host(const char *url, char *buf, size_t n) {
  char *host = NULL;
  CURLU *u = curl_url();
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host)
    snprintf(buf, n, "%s", host);
  else
    snprintf(buf, n, "an invalid URL");
  curl_free(host);
  curl_url_cleanup(u);
}

/*
 * The error text of a non-2xx body (see http.h). body[0..n) is what was
 * kept; only body[0..stop) is shown. A cut body is not parsed as JSON (it
 * would not be whole).
 */
static char *error_text(const char *body, size_t n, size_t stop, bool cut,
                        const mcpr__http_request *req) {
  const char *text = "(empty body)";
  size_t len = strlen(text);
  json_t *j = NULL;
  if (body && n) {
    text = body;
    len = strlen(body); /* up to a NUL, as text */
    if (!cut) {
      json_error_t je;
      j = json_loadb(body, n, 0, &je);
      const char *msg = NULL;
      if (json_is_object(j)) {
        json_t *m = json_object_get(j, "message");
        json_t *e = json_object_get(j, "error");
        if (json_is_string(m))
          msg = json_string_value(m);
        else if (json_is_string(e))
          msg = json_string_value(e);
        else if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
          msg = json_string_value(json_object_get(e, "message"));
      }
      if (msg) {
        text = msg;
        len = strlen(msg);
        stop = len;
      }
    }
    if (stop > len)
      stop = len;
  } else {
    stop = len;
  }
  char *clean = malloc(len + 1);
  char *out = NULL;
  if (clean) {
    for (size_t i = 0; i < len; i++) {
      unsigned char ch = (unsigned char)text[i];
      clean[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    clean[len] = '\0';
    out = mcpr__http_redact(clean, len, stop, req->secrets, req->n_secrets, NULL);
    free(clean);
  }
  json_decref(j);
  return out;
}

/* ---- the request ------------------------------------------------------- */

static void wipe(char *s) {
  volatile char *v = s;
  while (v && *v)
    *v++ = 0;
}

static void free_headers(struct curl_slist *l) {
  for (struct curl_slist *i = l; i; i = i->next)
    wipe(i->data); /* they may hold a credential */
  curl_slist_free_all(l);
}

static size_t longest_secret(const mcpr__http_request *req) {
  size_t m = 0;
  for (size_t i = 0; i < req->n_secrets; i++) {
    size_t n = req->secrets[i].value ? strlen(req->secrets[i].value) : 0;
    m = n > m ? n : m;
  }
  return m;
}

/* Set the handle up for one hop; nothing is inherited from an earlier use. */
static void setup(CURL *c, const char *url, const char *verb, const char *body, size_t body_len,
                  struct curl_slist *headers, long connect_ms, long timeout_ms, size_t cap,
                  const char *user_agent, transfer *t, char *errbuf) {
  const mcpr__http_request *req = t->req;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_DISALLOW_USERNAME_IN_URL, 1L);
  /* loopback (the tests' fake cloud) never goes through an http_proxy */
  curl_easy_setopt(c, CURLOPT_NOPROXY, "localhost,127.0.0.0/8,::1");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  if (!req->cut_body)
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)cap);
  curl_easy_setopt(c, CURLOPT_USERAGENT, user_agent);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  if (req->abort_at_ms) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)req);
  }
  if (strcmp(verb, "GET") == 0) {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, verb);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
  }
}

mcpr_status mcpr__http_perform(mcpr__http *h, const mcpr__http_request *req,
                               mcpr__http_response *res, mcpr_error *err) {
  memset(res, 0, sizeof *res);
  res->retry_after_ms = -1;
  mcpr_status st = mcpr__http_global_init(err);
  if (st != MCPR_OK)
    return st;
  const char *method = req->method ? req->method : "GET";
  const char *verb = method;
  const char *body = req->body;
  names nm = {.peer = req->peer ? req->peer : "server",
              .shown_url = req->shown_url ? req->shown_url : req->url ? req->url : "(none)"};
  if (req->label)
    snprintf(nm.label, sizeof nm.label, "%s", req->label);
  else
    snprintf(nm.label, sizeof nm.label, "%s %.200s", method, req->url ? req->url : "(none)");
  size_t cap = req->max_body_bytes ? req->max_body_bytes : MCPR__HTTP_DEFAULT_MAX_BODY_BYTES;
  long connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                : MCPR__HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
  long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : MCPR__HTTP_DEFAULT_TIMEOUT_MS;
  char ua[64];
  snprintf(ua, sizeof ua, "mcpr/%s", MCPR_VERSION_STRING);
  char errbuf[CURL_ERROR_SIZE];
  char *url = NULL;
  struct curl_slist *headers = NULL;
  CURL *own = NULL, *c = h ? h->curl : NULL;
  transfer t = {.req = req, .retry_after_ms = -1};
  mcpr__http_origin origin, to;
  mcpr_error uerr = {0};

  if ((st = mcpr__http_check_url(req->url, "the request URL", MCPR__HTTP_URL_ALLOW_QUERY, &origin,
                                 &uerr)) != MCPR_OK) {
    fail(req, err, st, "%s: %s", nm.label, uerr.message);
    goto out;
  }
  for (const char *const *line = req->headers; line && *line; line++) {
    if (strpbrk(*line, "\r\n")) {
      st = fail(req, err, MCPR_EINVAL, "%s: a request header contains a line break", nm.label);
      goto out;
    }
    struct curl_slist *l = curl_slist_append(headers, *line);
    if (!l) {
      st = fail(req, err, MCPR_ENOMEM, "%s: out of memory", nm.label);
      goto out;
    }
    headers = l;
  }
  if (req->body) { /* no "Expect: 100-continue" wait before a large body */
    struct curl_slist *l = curl_slist_append(headers, "Expect:");
    if (!l) {
      st = fail(req, err, MCPR_ENOMEM, "%s: out of memory", nm.label);
      goto out;
    }
    headers = l;
  }
  url = strdup(req->url);
  if (!c)
    c = own = curl_easy_init();
  if (!url || !c) {
    st = fail(req, err, MCPR_ENOMEM, "%s: out of memory", nm.label);
    goto out;
  }
  t.keep = cap;
  if (req->cut_body)
    t.keep += longest_secret(req);
  int64_t deadline_ms = mcpr__mono_ms() + timeout_ms;

  for (int hop = 0;; hop++) {
    int64_t left_ms = deadline_ms - mcpr__mono_ms();
    if (abort_due(req)) {
      res->aborted = true;
      st = fail(req, err, MCPR_ETIMEDOUT, "%s: stopped at the deadline", nm.label);
      goto out;
    }
    if (left_ms <= 0) {
      st = fail(req, err, MCPR_ETIMEDOUT, "%s: no answer from %s within %ld ms", nm.label,
                nm.shown_url, timeout_ms);
      goto out;
    }
    mcpr__buf_release(&t.body);
    t = (transfer){.req = req, .keep = t.keep, .retry_after_ms = -1};
    errbuf[0] = '\0';
    setup(c, url, verb, body, req->body_len, headers, connect_ms < left_ms ? connect_ms : (long)left_ms,
          (long)left_ms, cap, req->user_agent ? req->user_agent : ua, &t, errbuf);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    res->status = status;
    res->retry_after_ms = t.retry_after_ms;
    if (rc == CURLE_FILESIZE_EXCEEDED || (rc == CURLE_WRITE_ERROR && t.too_big)) {
      st = fail(req, err, MCPR_ETOOBIG, "%s: the %s's answer is larger than %zu bytes; refusing it",
                nm.label, nm.peer, cap);
      goto out;
    }
    if ((rc == CURLE_WRITE_ERROR && t.oom) || rc == CURLE_OUT_OF_MEMORY) {
      st = fail(req, err, MCPR_ENOMEM, "%s: out of memory reading the answer", nm.label);
      goto out;
    }
    if (rc == CURLE_ABORTED_BY_CALLBACK) {
      res->aborted = true;
      st = fail(req, err, MCPR_ETIMEDOUT, "%s: stopped at the deadline", nm.label);
      goto out;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      st = fail(req, err, MCPR_ETIMEDOUT, "%s: no answer from %s within %ld ms", nm.label,
                nm.shown_url, timeout_ms);
      goto out;
    }
    if (rc != CURLE_OK) {
      st = fail(req, err, MCPR_ENETWORK, "%s: cannot reach %s: %s", nm.label, nm.shown_url,
                errbuf[0] ? errbuf : curl_easy_strerror(rc));
      goto out;
    }
    if (status < 300 || status >= 400)
      break;
    char *loc = NULL;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
    if (!loc) {
      st = fail(req, err, MCPR_EHTTP, "%s: HTTP %ld without a Location", nm.label, status);
      goto out;
    }
    if (mcpr__http_check_url(loc, "the redirect", MCPR__HTTP_URL_ALLOW_QUERY, &to, NULL) !=
            MCPR_OK ||
        !mcpr__http_same_origin(&to, &origin)) {
      char host[256];
      shown_host(loc, host, sizeof host);
      st = fail(req, err, MCPR_EHTTP,
                "%s: the %s redirected (HTTP %ld) to another host or scheme (%.200s); not "
                "following it, so your credentials are not sent there. Check the %s URL",
                nm.label, nm.peer, status, host, nm.peer);
      goto out;
    }
    if (hop >= req->max_redirects) {
      st = fail(req, err, MCPR_EHTTP, "%s: too many redirects", nm.label);
      goto out;
    }
    if (req->keep_method && status != 307 && status != 308 && strcmp(verb, "GET") != 0) {
      st = fail(req, err, MCPR_EHTTP,
                "%s: the %s answered HTTP %ld (a redirect that would drop the %s body); "
                "only 307/308 are followed here. Check the %s URL",
                nm.label, nm.peer, status, verb, nm.peer);
      goto out;
    }
    char *next = strdup(loc); /* loc belongs to the handle: copy before reuse */
    if (!next) {
      st = fail(req, err, MCPR_ENOMEM, "%s: out of memory", nm.label);
      goto out;
    }
    free(url);
    url = next;
    if (status != 307 && status != 308 && strcmp(verb, "GET") != 0) {
      verb = "GET";
      body = NULL;
    }
  }

  /* An answer arrived. */
  bool cut = t.received > cap;
  size_t shown = t.body.n < cap ? t.body.n : cap;
  res->body_cut = cut;
  if (res->status >= 200 && res->status <= 299) {
    if (t.body.p) {
      t.body.p[shown] = '\0';
      res->body = t.body.p;
      res->body_len = shown;
      t.body.p = NULL;
    }
    st = MCPR_OK;
    goto out;
  }
  res->error_text = error_text(t.body.p, t.body.n, shown, cut, req);
  if (t.body.n)
    res->body =
        mcpr__http_redact(t.body.p, t.body.n, shown, req->secrets, req->n_secrets, &res->body_len);
  if (!res->error_text || (t.body.n && !res->body)) {
    mcpr__http_response_release(res);
    st = fail(req, err, MCPR_ENOMEM, "%s: out of memory reading the answer", nm.label);
    goto out;
  }
  st = MCPR_OK;
out:
  if (own)
    curl_easy_cleanup(own);
  else if (c)
    curl_easy_reset(c); /* it pointed at the headers, errbuf and t: all gone below */
  free_headers(headers);
  free(url);
  mcpr__buf_release(&t.body);
  return st;
}

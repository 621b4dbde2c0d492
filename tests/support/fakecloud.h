/*
 * fakecloud.h — a scripted HTTP server on loopback standing in for the mcpr
 * cloud in tests (API client, `mcpr setup`, the cloud sink).
 *
 *   fakecloud *fc = fc_start(NULL);                 // 127.0.0.1, random port
 *   fc_route(fc, "POST", "/api/auth/cli/login", 200, "{\"request_id\":\"r1\"}");
 *   ... point the code under test at fc_url(fc) ...
 *   assert_int_equal(fc_count(fc, "POST", "/api/auth/cli/login"), 1);
 *   fc_request r;  fc_request_get(fc, 0, &r);  ... r.body, fc_header(&r, "Authorization") ...
 *   fc_request_release(&r);
 *   fc_stop(fc);
 *
 * The server runs a libevent loop on its own thread; every function here
 * is safe to call from the test's thread while requests are being served.
 * Routes match the method and the path (query string ignored); a path
 * ending in '*' matches by prefix. Scripted responses for one route are
 * served in order; the last one is repeated (unless it was `once`).
 * A request with no route gets 404 {"message":"no route for METHOD PATH"}.
 */
#ifndef MCPR_TEST_FAKECLOUD_H
#define MCPR_TEST_FAKECLOUD_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fakecloud fakecloud;

typedef struct fc_response {
  int status;            /* HTTP status */
  const char *body;      /* copied; NULL: empty */
  size_t body_len;       /* 0: strlen(body) */
  const char *headers;   /* extra headers, "Name: value\n" lines (e.g. Retry-After), copied */
  int delay_ms;          /* answer this long after the request arrived */
  bool once;             /* served once, then the next response (or 404) */
  bool echo_auth;        /* echo the request's credentials in the body: "{auth}"
                            becomes its Authorization value ("Bearer tok"),
                            "{token}" the part after "Bearer " (a server that
                            quotes what it was sent, as many do in errors) */
} fc_response;

typedef struct fc_request {
  char method[16];
  char path[1024];    /* without the query string */
  char uri[2048];     /* as sent, with the query */
  char *headers;      /* "Name: value\n" lines as received (new) */
  char *body;         /* NUL-terminated copy (new) */
  size_t body_len;
} fc_request;

/* Start on bind_addr (NULL: "127.0.0.1"), port chosen by the kernel. */
fakecloud *fc_start(const char *bind_addr);
/* Stop the loop, join the thread, free everything. NULL is a no-op. */
void fc_stop(fakecloud *fc);
/* "http://127.0.0.1:PORT" (borrowed, valid until fc_stop). */
const char *fc_url(const fakecloud *fc);
int fc_port(const fakecloud *fc);

void fc_route(fakecloud *fc, const char *method, const char *path, int status, const char *body);
void fc_route_ex(fakecloud *fc, const char *method, const char *path, const fc_response *r);
/* Answer with status (301/302/303/307/308) and `Location: location`. */
void fc_redirect(fakecloud *fc, const char *method, const char *path, int status,
                 const char *location);
/* Forget every route and every logged request. */
void fc_reset(fakecloud *fc);

/* Requests received so far (all, or those matching method and path; NULL = any). */
size_t fc_request_count(fakecloud *fc);
size_t fc_count(fakecloud *fc, const char *method, const char *path);
/* Copy of the i-th request received; false when there is none. */
bool fc_request_get(fakecloud *fc, size_t i, fc_request *out);
void fc_request_release(fc_request *r);
/* Value of header name (case-insensitive) in a request, into buf; NULL if absent. */
const char *fc_header(const fc_request *r, const char *name, char *buf, size_t n);
/* True when any request so far carried header name. */
bool fc_any_request_has_header(fakecloud *fc, const char *name);

#endif

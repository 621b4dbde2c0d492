/*
 * cloud.h — the mcpr cloud API client (SPEC §8): login, projects, servers,
 * endpoints, tokens; the login cache used by `mcpr setup`; secret masking.
 *
 *   mcpr_cloud_client *c = NULL;
 *   if (mcpr_cloud_client_new(&c, "https://api.mcpr.app", NULL, &err) != MCPR_OK) ...
 *   char *request_id = NULL;
 *   mcpr_cloud_login(c, "me@example.com", &request_id, &err);
 *   mcpr_cloud_auth *auth = NULL;
 *   mcpr_cloud_verify(c, request_id, "123456", &auth, &err);
 *   mcpr_cloud_client_set_jwt(c, auth->jwt, &err);
 *   mcpr_cloud_project_list *projects = NULL;
 *   mcpr_cloud_list_projects(c, &projects, &err);
 *   ...
 *   mcpr_cloud_project_list_free(projects);
 *   mcpr_cloud_auth_free(auth);
 *   free(request_id);
 *   mcpr_cloud_client_free(c);
 *
 * Transport rules, for every call: a connect timeout and a total timeout;
 * TLS peer and host verification always on; plain http:// is accepted only
 * for loopback hosts (127.0.0.0/8, ::1, localhost — tests); response bodies
 * are capped at 1 MiB. Redirects are followed by hand and only to the same
 * scheme, host and port, so the bearer JWT never reaches another host; a
 * redirect elsewhere is an error. A non-2xx answer fails with MCPR_EHTTP
 * (MCPR_EAUTH for 401/403) and a message carrying the HTTP status and the
 * body's `message` or `error` field, or the start of the raw body; the
 * client's JWT never appears in a message.
 *
 * A client handle is used by one thread at a time. Every result is *new*
 * and owned by the caller: free it with its _free function (NULL-safe).
 * Ids are kept as text whether the server sends strings or numbers.
 */
#ifndef MCPR_CLOUD_H
#define MCPR_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MCPR_CLOUD_MAX_BODY_BYTES (1024 * 1024)
/* How much of an error body is kept (mcpr_cloud_client_last_error_body). */
#define MCPR_CLOUD_MAX_ERROR_BODY_BYTES 4096

typedef struct mcpr_cloud_client mcpr_cloud_client;

typedef struct mcpr_cloud_options {
  long connect_timeout_ms; /* default 10000 */
  long timeout_ms;         /* whole call, default 30000 */
  int max_redirects;       /* same-origin redirects followed, default 5 */
  const char *user_agent;  /* default "mcpr/<version>" (borrowed during _new) */
} mcpr_cloud_options;

MCPR_API void mcpr_cloud_options_init(mcpr_cloud_options *o);

/*
 * A client for base_url (scheme://host[:port][/prefix], a trailing slash
 * is dropped). Fails with MCPR_EINVAL for a URL that is not https:// (or
 * http:// on loopback). opts may be NULL.
 */
MCPR_API mcpr_status mcpr_cloud_client_new(mcpr_cloud_client **out, const char *base_url,
                                           const mcpr_cloud_options *opts, mcpr_error *err);
MCPR_API void mcpr_cloud_client_free(mcpr_cloud_client *c);
/* The JWT sent as `Authorization: Bearer` on authenticated calls (copied; NULL clears). */
MCPR_API mcpr_status mcpr_cloud_client_set_jwt(mcpr_cloud_client *c, const char *jwt,
                                               mcpr_error *err);
/* The normalised base URL (borrowed). */
MCPR_API const char *mcpr_cloud_client_base_url(const mcpr_cloud_client *c);
/* HTTP status of the last answer, 0 if none arrived (network error). */
MCPR_API long mcpr_cloud_client_last_http_status(const mcpr_cloud_client *c);
/*
 * The last error answer's detail (the `message`/`error` field or the raw
 * body, at most 4 KiB, control characters replaced), "" if none. Borrowed,
 * valid until the next call.
 */
MCPR_API const char *mcpr_cloud_client_last_error_body(const mcpr_cloud_client *c);

typedef struct mcpr_cloud_user {
  char *id, *email, *name; /* name may be NULL */
} mcpr_cloud_user;

typedef struct mcpr_cloud_auth {
  char *jwt; /* secret: never print it (mcpr_secret_mask) */
  mcpr_cloud_user user;
} mcpr_cloud_auth;

typedef struct mcpr_cloud_project {
  char *id, *name, *slug;
} mcpr_cloud_project;

typedef struct mcpr_cloud_project_list {
  size_t count;
  mcpr_cloud_project *items;
} mcpr_cloud_project_list;

typedef struct mcpr_cloud_server {
  char *id, *name, *slug, *project_id; /* project_id may be NULL */
} mcpr_cloud_server;

typedef struct mcpr_cloud_server_list {
  size_t count;
  mcpr_cloud_server *items;
} mcpr_cloud_server_list;

typedef struct mcpr_cloud_endpoint {
  char *id, *name, *status, *server_id; /* status, server_id may be NULL */
} mcpr_cloud_endpoint;

typedef struct mcpr_cloud_endpoint_list {
  size_t count;
  mcpr_cloud_endpoint *items;
} mcpr_cloud_endpoint_list;

typedef struct mcpr_cloud_token {
  char *id, *token, *name; /* token is a secret */
} mcpr_cloud_token;

MCPR_API void mcpr_cloud_auth_free(mcpr_cloud_auth *a);
MCPR_API void mcpr_cloud_project_free(mcpr_cloud_project *p);
MCPR_API void mcpr_cloud_project_list_free(mcpr_cloud_project_list *l);
MCPR_API void mcpr_cloud_server_free(mcpr_cloud_server *s);
MCPR_API void mcpr_cloud_server_list_free(mcpr_cloud_server_list *l);
MCPR_API void mcpr_cloud_endpoint_free(mcpr_cloud_endpoint *e);
MCPR_API void mcpr_cloud_endpoint_list_free(mcpr_cloud_endpoint_list *l);
/* Overwrites the token text with zeros before freeing. */
MCPR_API void mcpr_cloud_token_free(mcpr_cloud_token *t);

/* POST /api/auth/cli/login {email} → *request_id (new string). */
MCPR_API mcpr_status mcpr_cloud_login(mcpr_cloud_client *c, const char *email, char **request_id,
                                      mcpr_error *err);
/* POST /api/auth/cli/verify {request_id, code} → {token, user}. */
MCPR_API mcpr_status mcpr_cloud_verify(mcpr_cloud_client *c, const char *request_id,
                                       const char *code, mcpr_cloud_auth **out, mcpr_error *err);
/* GET /api/projects (JWT). */
MCPR_API mcpr_status mcpr_cloud_list_projects(mcpr_cloud_client *c, mcpr_cloud_project_list **out,
                                              mcpr_error *err);
/* POST /api/projects {name, slug} (JWT). */
MCPR_API mcpr_status mcpr_cloud_create_project(mcpr_cloud_client *c, const char *name,
                                               const char *slug, mcpr_cloud_project **out,
                                               mcpr_error *err);
/* GET /api/servers/by-project/{project_id} (JWT). */
MCPR_API mcpr_status mcpr_cloud_list_servers(mcpr_cloud_client *c, const char *project_id,
                                             mcpr_cloud_server_list **out, mcpr_error *err);
/* POST /api/servers/by-project/{project_id} {name, slug} (JWT). */
MCPR_API mcpr_status mcpr_cloud_create_server(mcpr_cloud_client *c, const char *project_id,
                                              const char *name, const char *slug,
                                              mcpr_cloud_server **out, mcpr_error *err);
/* GET /api/endpoints/by-server/{server_id} (JWT). */
MCPR_API mcpr_status mcpr_cloud_list_endpoints(mcpr_cloud_client *c, const char *server_id,
                                               mcpr_cloud_endpoint_list **out, mcpr_error *err);
/* POST /api/endpoints/by-server/{server_id} {name} (JWT). */
MCPR_API mcpr_status mcpr_cloud_create_endpoint(mcpr_cloud_client *c, const char *server_id,
                                                const char *name, mcpr_cloud_endpoint **out,
                                                mcpr_error *err);
/* POST /api/projects/{project_id}/tokens {name} (JWT) → {id, token, name}. */
MCPR_API mcpr_status mcpr_cloud_create_token(mcpr_cloud_client *c, const char *project_id,
                                             const char *name, mcpr_cloud_token **out,
                                             mcpr_error *err);

/*
 * The `exp` claim (unix seconds) of a JWT, read from its base64url payload
 * without checking the signature (the server does that): good enough to
 * decide whether a cached login is still worth reusing. MCPR_EPARSE when
 * it is not a JWT or has no numeric exp.
 */
MCPR_API mcpr_status mcpr_jwt_exp(const char *jwt, int64_t *exp_s, mcpr_error *err);

/*
 * Masked form of a secret for display: a known prefix ("mcpr_"), "…", and
 * the last 4 characters ("mcpr_…abcd"); secrets shorter than 12 characters
 * show no characters at all ("…"). Writes at most n bytes (NUL included)
 * into buf and returns buf.
 */
MCPR_API char *mcpr_secret_mask(const char *secret, char *buf, size_t n);

/*
 * Replace every occurrence of secret in text (in place, NUL-terminated,
 * capacity cap bytes) by its mask. Secrets shorter than 8 bytes are left
 * alone (too short to be one). Returns the number of replacements.
 */
MCPR_API size_t mcpr_secret_redact(char *text, size_t cap, const char *secret);

/* ---- the login cache (~/.mcpr/auth.json) ----------------------------- */

typedef struct mcpr_cloud_login_cache {
  char *jwt, *email, *cloud_url;
} mcpr_cloud_login_cache;

/*
 * $HOME/.mcpr/auth.json as a new string (free()), NULL with err when HOME
 * is unset.
 */
MCPR_API char *mcpr_cloud_login_cache_path(mcpr_error *err);
/*
 * Read the cache at path. A missing file: MCPR_ENOTFOUND (*out NULL). An
 * unreadable or malformed one: MCPR_EPARSE. *out new.
 */
MCPR_API mcpr_status mcpr_cloud_login_cache_load(const char *path, mcpr_cloud_login_cache **out,
                                                 mcpr_error *err);
/*
 * Write the cache atomically with mode 0600, creating its directory with
 * mode 0700 (and tightening an existing one to 0700).
 */
MCPR_API mcpr_status mcpr_cloud_login_cache_save(const char *path,
                                                 const mcpr_cloud_login_cache *cache,
                                                 mcpr_error *err);
/*
 * True when the cache may be reused for cloud_url at now_s: same URL
 * (trailing slashes ignored) and a JWT whose exp is more than 5 minutes away.
 */
MCPR_API bool mcpr_cloud_login_cache_usable(const mcpr_cloud_login_cache *cache,
                                            const char *cloud_url, int64_t now_s);
MCPR_API void mcpr_cloud_login_cache_free(mcpr_cloud_login_cache *cache);

/* ---- setup: the flow behind `mcpr setup` (SPEC §8) -------------------- */

/*
 * Log in (reusing ~/.mcpr/auth.json when it is for the same cloud URL and
 * its JWT has more than 5 minutes left, else by e-mail code, saving the new
 * login), find or create the project and the server by slug (and the
 * endpoint by name, when one is given), create an ingest token named
 * "mcpr setup: <server> on <host>", and write [cloud] token, server (and
 * endpoint, the base URL, only for a cloud other than the default) into
 * the config with mcpr_config_set_cloud().
 *
 *   mcpr_cloud_setup *s = mcpr_cloud_setup_new(&opts);
 *   if (mcpr_cloud_setup_prepare(s, &err) != MCPR_OK) ...failed_step(s)...
 *   if (!mcpr_cloud_setup_reuses_login(s)) ...an e-mail and a code are needed...
 *   if (mcpr_cloud_setup_run(s, &err) != MCPR_OK) ...failed_step(s)...
 *   mcpr_cloud_setup_free(s);
 *
 * The library prints nothing: what happens is told through note(), what is
 * missing is asked through ask(), and a failure says at which step. Every
 * secret the flow holds (the JWTs, the new token) can be masked out of any
 * text with mcpr_cloud_setup_redact() before the text is shown.
 */
typedef struct mcpr_cloud_setup mcpr_cloud_setup;

/* Where the flow stopped (mcpr_cloud_setup_failed_step()). */
typedef enum mcpr_cloud_setup_step {
  MCPR_SETUP_NONE = 0,
  MCPR_SETUP_CLIENT,           /* the client for cloud_url (MCPR_EINVAL: URL refused) */
  MCPR_SETUP_LOGIN_CACHE_PATH, /* no place for the saved login (HOME unset) */
  MCPR_SETUP_USE_LOGIN,        /* the JWT (saved or new) could not be set */
  MCPR_SETUP_ASK_EMAIL,        /* no e-mail: none given, none answered */
  MCPR_SETUP_LOGIN,            /* POST login */
  MCPR_SETUP_ASK_CODE,         /* no login code */
  MCPR_SETUP_VERIFY,           /* POST verify */
  MCPR_SETUP_LIST_PROJECTS,
  MCPR_SETUP_ASK_PROJECT,      /* no valid project slug answered */
  MCPR_SETUP_CREATE_PROJECT,
  MCPR_SETUP_ASK_SERVER,       /* no valid server slug answered */
  MCPR_SETUP_LIST_SERVERS,
  MCPR_SETUP_CREATE_SERVER,
  MCPR_SETUP_LIST_ENDPOINTS,
  MCPR_SETUP_CREATE_ENDPOINT,
  MCPR_SETUP_CREATE_TOKEN,
  MCPR_SETUP_WRITE_CONFIG,
} mcpr_cloud_setup_step;

typedef enum mcpr_cloud_setup_question {
  MCPR_SETUP_Q_EMAIL = 1, /* about: NULL */
  MCPR_SETUP_Q_CODE,      /* about: the e-mail the code was sent to */
  MCPR_SETUP_Q_PROJECT,   /* def: the first project; every project was noted first */
  MCPR_SETUP_Q_SERVER,    /* def: opts.default_server */
} mcpr_cloud_setup_question;

typedef enum mcpr_cloud_setup_note_kind {
  MCPR_SETUP_NOTE_SAVED_LOGIN = 1, /* reusing it: name = e-mail (may be NULL), path = cache */
  MCPR_SETUP_NOTE_LOGIN_NOT_SAVED, /* a warning: message = why (the flow goes on) */
  MCPR_SETUP_NOTE_LOGGED_IN,       /* name = e-mail */
  MCPR_SETUP_NOTE_PROJECT_CHOICE,  /* before asking for the project: name = one slug */
  MCPR_SETUP_NOTE_PROJECT,         /* name = slug, created or found */
  MCPR_SETUP_NOTE_SERVER,          /* name = slug, created or found */
  MCPR_SETUP_NOTE_ENDPOINT,        /* name = endpoint name, created or found */
  MCPR_SETUP_NOTE_CONFIG_WRITTEN,  /* path = config, token_mask, server = slug */
} mcpr_cloud_setup_note_kind;

/* What note() is told; every pointer is borrowed for the call only. */
typedef struct mcpr_cloud_setup_note {
  mcpr_cloud_setup_note_kind kind;
  const char *name;
  bool created;
  const char *path;
  const char *message;
  const char *token_mask; /* the new token masked (mcpr_secret_mask), never the token */
  const char *server;
} mcpr_cloud_setup_note;

typedef struct mcpr_cloud_setup_options {
  const char *cloud_url;   /* NULL: MCPR_CLOUD_DEFAULT_URL */
  const char *config_path; /* config to write [cloud] into; NULL: ./mcpr.toml */
  /* Given answers (NULL: asked through ask()). project/server are slugs. */
  const char *email, *code, *project, *server, *endpoint;
  const char *default_server;   /* offered when asking for the server (may be NULL) */
  const char *login_cache_path; /* NULL: mcpr_cloud_login_cache_path() */
  int64_t now_s;                /* 0: the clock; when the saved login is judged */
  /*
   * Ask for what is missing: returns a new string (malloc; the flow frees
   * it) or NULL for no answer. def may be NULL. ask NULL: nothing is asked.
   */
  char *(*ask)(void *ctx, mcpr_cloud_setup_question q, const char *about, const char *def);
  void (*note)(void *ctx, const mcpr_cloud_setup_note *n); /* may be NULL */
  void *ctx;
  /*
   * The answer of an earlier mcpr_cloud_login() for this e-mail (a login
   * in two runs: one asks for the code, the next gives it): the code is
   * verified against it and no new code is sent. NULL: log in afresh.
   */
  const char *request_id;
} mcpr_cloud_setup_options;

/* True for a slug mcpr puts in URLs and the config: 1..64 of [A-Za-z0-9_-]. */
MCPR_API bool mcpr_cloud_slug_valid(const char *slug);

/*
 * A new flow for opts, which is borrowed (with every string in it) until
 * mcpr_cloud_setup_free(). NULL when out of memory.
 */
MCPR_API mcpr_cloud_setup *mcpr_cloud_setup_new(const mcpr_cloud_setup_options *opts);
/*
 * Make the client and read the saved login; no network call. On failure
 * mcpr_cloud_setup_failed_step() says where (CLIENT or LOGIN_CACHE_PATH).
 */
MCPR_API mcpr_status mcpr_cloud_setup_prepare(mcpr_cloud_setup *s, mcpr_error *err);
/* After prepare: true when the saved login will be used (no e-mail, no code). */
MCPR_API bool mcpr_cloud_setup_reuses_login(const mcpr_cloud_setup *s);
/*
 * The rest of the flow (after a successful prepare). On failure err says
 * why and mcpr_cloud_setup_failed_step() where; nothing is written to the config
 * unless every call before it succeeded.
 */
MCPR_API mcpr_status mcpr_cloud_setup_run(mcpr_cloud_setup *s, mcpr_error *err);
/* The step that failed (MCPR_SETUP_NONE if none). */
MCPR_API mcpr_cloud_setup_step mcpr_cloud_setup_failed_step(const mcpr_cloud_setup *s);
/*
 * Mask every secret this flow holds (saved or new JWT, new token) in text
 * (in place, capacity cap) with mcpr_secret_redact(). Returns the count.
 */
MCPR_API size_t mcpr_cloud_setup_redact(const mcpr_cloud_setup *s, char *text, size_t cap);
/* NULL is a no-op. */
MCPR_API void mcpr_cloud_setup_free(mcpr_cloud_setup *s);

#ifdef __cplusplus
}
#endif
#endif

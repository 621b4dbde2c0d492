/*
 * setup.c — the flow behind `mcpr setup` (SPEC §8), without a terminal.
 *
 * prepare() makes the client and reads the saved login, so the caller can
 * tell, before any network call, whether an e-mail and a code will be
 * needed. run() then logs in (or reuses the saved login), finds or creates
 * the project, the server and (when asked) the endpoint, creates a token
 * and writes [cloud] into the config: the config is the last thing touched,
 * so a failure anywhere leaves it as it was.
 *
 * Everything the user sees is the caller's: note() is told what happened,
 * ask() is asked for what is missing, and a failure records its step. The
 * secrets (saved JWT, new JWT, new token) stay here; the caller masks them
 * out of whatever it shows with mcpr_cloud_setup_redact(), since an error
 * body from the server could echo one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcpr/cloud.h"
#include "mcpr/config.h"
#include "mcpr/util.h"

struct mcpr_cloud_setup {
  const mcpr_cloud_setup_options *o;
  mcpr_cloud_setup_step step;
  mcpr_cloud_client *client;
  char *cache_path;
  mcpr_cloud_login_cache *cache;
  bool reuse;
  mcpr_cloud_auth *auth;
  mcpr_cloud_token *token;
};

bool mcpr_cloud_slug_valid(const char *s) {
  if (!s || !*s || strlen(s) > 64)
    return false;
  for (const char *c = s; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' ||
          (*c >= 'A' && *c <= 'Z')))
      return false;
  return true;
}

mcpr_cloud_setup *mcpr_cloud_setup_new(const mcpr_cloud_setup_options *opts) {
  if (!opts)
    return NULL;
  mcpr_cloud_setup *s = calloc(1, sizeof *s);
  if (s)
    s->o = opts;
  return s;
}

void mcpr_cloud_setup_free(mcpr_cloud_setup *s) {
  if (!s)
    return;
  mcpr_cloud_token_free(s->token);
  mcpr_cloud_auth_free(s->auth);
  mcpr_cloud_login_cache_free(s->cache);
  mcpr_cloud_client_free(s->client);
  free(s->cache_path);
  free(s);
}

mcpr_cloud_setup_step mcpr_cloud_setup_failed_step(const mcpr_cloud_setup *s) {
  return s ? s->step : MCPR_SETUP_NONE;
}

bool mcpr_cloud_setup_reuses_login(const mcpr_cloud_setup *s) { return s && s->reuse; }

size_t mcpr_cloud_setup_redact(const mcpr_cloud_setup *s, char *text, size_t cap) {
  if (!s)
    return 0;
  size_t n = 0;
  if (s->cache)
    n += mcpr_secret_redact(text, cap, s->cache->jwt);
  if (s->auth)
    n += mcpr_secret_redact(text, cap, s->auth->jwt);
  if (s->token)
    n += mcpr_secret_redact(text, cap, s->token->token);
  return n;
}

static mcpr_status failed(mcpr_cloud_setup *s, mcpr_cloud_setup_step step, mcpr_status st) {
  s->step = step;
  return st;
}

static void note(const mcpr_cloud_setup *s, mcpr_cloud_setup_note n) {
  if (s->o->note)
    s->o->note(s->o->ctx, &n);
}

/* A given answer, else one asked for (*asked is new, the caller frees it). */
static const char *answer(const mcpr_cloud_setup *s, const char *given,
                          mcpr_cloud_setup_question q, const char *about, const char *def,
                          char **asked) {
  if (given)
    return given;
  if (!s->o->ask)
    return NULL;
  *asked = s->o->ask(s->o->ctx, q, about, def);
  return *asked;
}

mcpr_status mcpr_cloud_setup_prepare(mcpr_cloud_setup *s, mcpr_error *err) {
  if (!s)
    return mcpr_error_set(err, MCPR_EINVAL, "no setup");
  const char *url = s->o->cloud_url ? s->o->cloud_url : MCPR_CLOUD_DEFAULT_URL;
  mcpr_status st = mcpr_cloud_client_new(&s->client, url, NULL, err);
  if (st != MCPR_OK)
    return failed(s, MCPR_SETUP_CLIENT, st);
  mcpr_error perr = {0};
  s->cache_path = s->o->login_cache_path ? strdup(s->o->login_cache_path)
                                         : mcpr_cloud_login_cache_path(&perr);
  if (!s->cache_path) {
    if (perr.status == MCPR_OK)
      mcpr_error_set(&perr, MCPR_ENOMEM, "out of memory");
    if (err)
      *err = perr;
    return failed(s, MCPR_SETUP_LOGIN_CACHE_PATH, perr.status);
  }
  /* A saved login that cannot be read is as good as none: log in again. */
  if (mcpr_cloud_login_cache_load(s->cache_path, &s->cache, NULL) != MCPR_OK) {
    mcpr_cloud_login_cache_free(s->cache);
    s->cache = NULL;
  }
  int64_t now_s = s->o->now_s ? s->o->now_s : mcpr_now_ms() / 1000;
  s->reuse = s->cache && mcpr_cloud_login_cache_usable(s->cache, url, now_s);
  return MCPR_OK;
}

static mcpr_status login(mcpr_cloud_setup *s, mcpr_error *err) {
  mcpr_status st;
  if (s->reuse) {
    if ((st = mcpr_cloud_client_set_jwt(s->client, s->cache->jwt, err)) != MCPR_OK)
      return failed(s, MCPR_SETUP_USE_LOGIN, st);
    note(s, (mcpr_cloud_setup_note){.kind = MCPR_SETUP_NOTE_SAVED_LOGIN,
                                    .name = s->cache->email, .path = s->cache_path});
    return MCPR_OK;
  }
  char *asked_email = NULL, *asked_code = NULL, *request_id = NULL;
  const char *email = answer(s, s->o->email, MCPR_SETUP_Q_EMAIL, NULL, NULL, &asked_email);
  if (!email) {
    st = failed(s, MCPR_SETUP_ASK_EMAIL, mcpr_error_set(err, MCPR_EINVAL, "no e-mail address"));
    goto out;
  }
  if (s->o->request_id) {
    if (!(request_id = strdup(s->o->request_id))) {
      st = failed(s, MCPR_SETUP_LOGIN, mcpr_error_set(err, MCPR_ENOMEM, "out of memory"));
      goto out;
    }
  } else if ((st = mcpr_cloud_login(s->client, email, &request_id, err)) != MCPR_OK) {
    failed(s, MCPR_SETUP_LOGIN, st);
    goto out;
  }
  const char *code = answer(s, s->o->code, MCPR_SETUP_Q_CODE, email, NULL, &asked_code);
  if (!code) {
    st = failed(s, MCPR_SETUP_ASK_CODE, mcpr_error_set(err, MCPR_EINVAL, "no login code"));
    goto out;
  }
  if ((st = mcpr_cloud_verify(s->client, request_id, code, &s->auth, err)) != MCPR_OK) {
    failed(s, MCPR_SETUP_VERIFY, st);
    goto out;
  }
  if ((st = mcpr_cloud_client_set_jwt(s->client, s->auth->jwt, err)) != MCPR_OK) {
    failed(s, MCPR_SETUP_USE_LOGIN, st);
    goto out;
  }
  mcpr_cloud_login_cache saved = {
      .jwt = s->auth->jwt,
      .email = s->auth->user.email ? s->auth->user.email : (char *)email,
      .cloud_url = (char *)mcpr_cloud_client_base_url(s->client)};
  mcpr_error serr = {0};
  if (mcpr_cloud_login_cache_save(s->cache_path, &saved, &serr) != MCPR_OK)
    note(s, (mcpr_cloud_setup_note){.kind = MCPR_SETUP_NOTE_LOGIN_NOT_SAVED,
                                    .message = serr.message});
  note(s, (mcpr_cloud_setup_note){.kind = MCPR_SETUP_NOTE_LOGGED_IN, .name = saved.email});
  st = MCPR_OK;
out:
  free(request_id);
  free(asked_email);
  free(asked_code);
  return st;
}

mcpr_status mcpr_cloud_setup_run(mcpr_cloud_setup *s, mcpr_error *err) {
  if (!s || !s->client)
    return mcpr_error_set(err, MCPR_EINVAL, "setup is not prepared");
  mcpr_cloud_project_list *projects = NULL;
  mcpr_cloud_project *new_project = NULL;
  mcpr_cloud_server_list *servers = NULL;
  mcpr_cloud_server *new_server = NULL;
  mcpr_cloud_endpoint_list *endpoints = NULL;
  mcpr_cloud_endpoint *new_endpoint = NULL;
  char *asked_project = NULL, *asked_server = NULL;
  mcpr_status st = login(s, err);
  if (st != MCPR_OK)
    goto out;

  /* Project: find by slug, else create. */
  if ((st = mcpr_cloud_list_projects(s->client, &projects, err)) != MCPR_OK) {
    failed(s, MCPR_SETUP_LIST_PROJECTS, st);
    goto out;
  }
  const char *project_slug = s->o->project;
  if (!project_slug) {
    for (size_t i = 0; i < projects->count; i++)
      note(s, (mcpr_cloud_setup_note){.kind = MCPR_SETUP_NOTE_PROJECT_CHOICE,
                                      .name = projects->items[i].slug});
    project_slug = answer(s, NULL, MCPR_SETUP_Q_PROJECT, NULL,
                          projects->count ? projects->items[0].slug : NULL, &asked_project);
  }
  if (!mcpr_cloud_slug_valid(project_slug)) {
    st = failed(s, MCPR_SETUP_ASK_PROJECT,
                mcpr_error_set(err, MCPR_EINVAL, "no valid project slug"));
    goto out;
  }
  const mcpr_cloud_project *project = NULL;
  for (size_t i = 0; i < projects->count && !project; i++)
    if (strcmp(projects->items[i].slug, project_slug) == 0)
      project = &projects->items[i];
  if (!project) {
    st = mcpr_cloud_create_project(s->client, project_slug, project_slug, &new_project, err);
    if (st != MCPR_OK) {
      failed(s, MCPR_SETUP_CREATE_PROJECT, st);
      goto out;
    }
    project = new_project;
  }
  note(s, (mcpr_cloud_setup_note){.kind = MCPR_SETUP_NOTE_PROJECT, .name = project->slug,
                                  .created = project == new_project});

  /* Server: find by slug in the project, else create. */
  const char *server_slug = s->o->server;
  if (!server_slug)
    server_slug = answer(s, NULL, MCPR_SETUP_Q_SERVER, NULL, s->o->default_server, &asked_server);
  if (!mcpr_cloud_slug_valid(server_slug)) {
    st = failed(s, MCPR_SETUP_ASK_SERVER,
                mcpr_error_set(err, MCPR_EINVAL, "no valid server slug"));
    goto out;
  }
  if ((st = mcpr_cloud_list_servers(s->client, project->id, &servers, err)) != MCPR_OK) {
    failed(s, MCPR_SETUP_LIST_SERVERS, st);
    goto out;
  }
  const mcpr_cloud_server *server = NULL;
  for (size_t i = 0; i < servers->count && !server; i++)
    if (strcmp(servers->items[i].slug, server_slug) == 0)
      server = &servers->items[i];
  if (!server) {
    st = mcpr_cloud_create_server(s->client, project->id, server_slug, server_slug, &new_server,
                                  err);
    if (st != MCPR_OK) {
      failed(s, MCPR_SETUP_CREATE_SERVER, st);
      goto out;
    }
    server = new_server;
  }
  note(s, (mcpr_cloud_setup_note){.kind = MCPR_SETUP_NOTE_SERVER, .name = server->slug,
                                  .created = server == new_server});

  /* Endpoint (tunnel name), only when asked for. */
  if (s->o->endpoint) {
    if ((st = mcpr_cloud_list_endpoints(s->client, server->id, &endpoints, err)) != MCPR_OK) {
      failed(s, MCPR_SETUP_LIST_ENDPOINTS, st);
      goto out;
    }
    const mcpr_cloud_endpoint *ep = NULL;
    for (size_t i = 0; i < endpoints->count && !ep; i++)
      if (strcmp(endpoints->items[i].name, s->o->endpoint) == 0)
        ep = &endpoints->items[i];
    if (!ep) {
      st = mcpr_cloud_create_endpoint(s->client, server->id, s->o->endpoint, &new_endpoint, err);
      if (st != MCPR_OK) {
        failed(s, MCPR_SETUP_CREATE_ENDPOINT, st);
        goto out;
      }
      ep = new_endpoint;
    }
    note(s, (mcpr_cloud_setup_note){.kind = MCPR_SETUP_NOTE_ENDPOINT, .name = ep->name,
                                    .created = ep == new_endpoint});
  }

  /* A token for this server's events, named after it and this host. */
  char host[128] = "host";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  char token_name[256];
  snprintf(token_name, sizeof token_name, "mcpr setup: %s on %s", server->slug, host);
  if ((st = mcpr_cloud_create_token(s->client, project->id, token_name, &s->token, err)) !=
      MCPR_OK) {
    failed(s, MCPR_SETUP_CREATE_TOKEN, st);
    goto out;
  }

  /* [cloud]: endpoint (the ingest URL) only for a cloud other than the
   * default, so a config set up against a staging cloud sends there. */
  const char *base = mcpr_cloud_client_base_url(s->client);
  const char *endpoint_url = strcmp(base, MCPR_CLOUD_DEFAULT_URL) == 0 ? NULL : base;
  const char *config_path = s->o->config_path ? s->o->config_path : MCPR_CONFIG_DEFAULT_PATH;
  st = mcpr_config_set_cloud(config_path, s->token->token, server->slug, endpoint_url, err);
  if (st != MCPR_OK) {
    failed(s, MCPR_SETUP_WRITE_CONFIG, st);
    goto out;
  }
  char mask[64];
  mcpr_secret_mask(s->token->token, mask, sizeof mask);
  note(s, (mcpr_cloud_setup_note){.kind = MCPR_SETUP_NOTE_CONFIG_WRITTEN, .path = config_path,
                                  .token_mask = mask, .server = server->slug});
  s->step = MCPR_SETUP_NONE;

out:
  mcpr_cloud_endpoint_free(new_endpoint);
  mcpr_cloud_endpoint_list_free(endpoints);
  mcpr_cloud_server_free(new_server);
  mcpr_cloud_server_list_free(servers);
  mcpr_cloud_project_free(new_project);
  mcpr_cloud_project_list_free(projects);
  free(asked_project);
  free(asked_server);
  return st;
}

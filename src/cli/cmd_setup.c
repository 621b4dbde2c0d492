/*
 * cmd_setup.c — `mcpr setup`: log in to the mcpr cloud, make sure the
 * project and server exist, create an ingest token and write the [cloud]
 * section of mcpr.toml (SPEC §8).
 *
 * Flow: read the config first (a broken file fails before any network
 * call); reuse ~/.mcpr/auth.json when it is for the same cloud URL and its
 * JWT is valid for more than 5 more minutes, else log in by e-mail code and
 * save the new login; find or create the project and the server (and the
 * endpoint, when --endpoint is given); create a token; write [cloud].
 *
 * What is missing is asked for only when stdin is a terminal. Without one,
 * every missing flag is named at once, before any call is made (exit 2), so
 * CI either runs the whole flow or nothing.
 *
 * Secrets (the JWT, the new token) never reach the terminal: they are shown
 * masked, and every message printed here is passed through redaction of
 * both first, since an error body from the server could echo them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config_warn.h"
#include "mcpr/mcpr.h"

extern const mcpr_cli_command cmd_setup;

typedef struct setup_args {
  const char *config, *cloud_url, *email, *code, *project, *server, *endpoint;
} setup_args;

/* Secrets known to this run, redacted from everything printed. */
typedef struct secrets {
  const char *jwt;
  const char *token;
} secrets;

static void say(const secrets *sec, FILE *out, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(const secrets *sec, FILE *out, const char *prefix, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (sec->jwt)
    mcpr_secret_redact(buf, sizeof buf, sec->jwt);
  if (sec->token)
    mcpr_secret_redact(buf, sizeof buf, sec->token);
  for (char *c = buf; *c; c++)
    if ((unsigned char)*c < 0x20 && *c != '\n')
      *c = '?';
  fprintf(out, "%s%s\n", prefix, buf);
}

static int fail(const secrets *sec, const mcpr_error *err, const char *what) {
  say(sec, stderr, "mcpr: ", "%s: %s", what, err->message);
  return CLI_EXIT_FAIL;
}

/* Ask on the terminal; returns a new string or NULL (EOF / empty). */
static char *prompt(const char *question, const char *def) {
  char line[512];
  if (def)
    fprintf(stderr, "%s [%s]: ", question, def);
  else
    fprintf(stderr, "%s: ", question);
  fflush(stderr);
  if (!fgets(line, sizeof line, stdin))
    return NULL;
  line[strcspn(line, "\r\n")] = '\0';
  if (!line[0])
    return def ? strdup(def) : NULL;
  return strdup(line);
}

static bool parse_args(int argc, char **argv, setup_args *a, int *code) {
  struct {
    const char *flag;
    const char **dst;
  } flags[] = {{"--config", &a->config},   {"--cloud-url", &a->cloud_url},
               {"--email", &a->email},     {"--code", &a->code},
               {"--project", &a->project}, {"--server", &a->server},
               {"--endpoint", &a->endpoint}};
  for (int i = 1; i < argc; i++) {
    if (cli_is_help(argv[i])) {
      printf("%s\n", cmd_setup.usage);
      *code = CLI_EXIT_OK;
      return false;
    }
    bool matched = false;
    for (size_t f = 0; f < sizeof flags / sizeof *flags && !matched; f++) {
      size_t n = strlen(flags[f].flag);
      if (strncmp(argv[i], flags[f].flag, n) != 0 || (argv[i][n] && argv[i][n] != '='))
        continue;
      matched = true;
      const char *v = argv[i][n] == '=' ? argv[i] + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v || !*v) {
        *code = cli_usage_error(&cmd_setup, "%s needs a value", flags[f].flag);
        return false;
      }
      *flags[f].dst = v;
    }
    if (!matched) {
      /* never echo an argument back: it may be a secret pasted in the wrong place */
      *code = cli_usage_error(&cmd_setup, "unexpected argument #%d (see --help)", i);
      return false;
    }
  }
  return true;
}

/* Slugs go into URLs and the config: keep them to a safe alphabet. */
static bool valid_slug(const char *s) {
  if (!s || !*s || strlen(s) > 64)
    return false;
  for (const char *c = s; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' ||
          (*c >= 'A' && *c <= 'Z')))
      return false;
  return true;
}

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  (void)ctx;
  setup_args a = {0};
  int code = CLI_EXIT_OK;
  if (!parse_args(argc, argv, &a, &code))
    return code;
  secrets sec = {0};
  int rc = CLI_EXIT_FAIL;
  mcpr_error err = {0};
  mcpr_config *cfg = NULL;
  mcpr_cloud_client *client = NULL;
  mcpr_cloud_login_cache *cache = NULL;
  mcpr_cloud_auth *auth = NULL;
  mcpr_cloud_project_list *projects = NULL;
  mcpr_cloud_project *new_project = NULL;
  mcpr_cloud_server_list *servers = NULL;
  mcpr_cloud_server *new_server = NULL;
  mcpr_cloud_endpoint_list *endpoints = NULL;
  mcpr_cloud_endpoint *new_endpoint = NULL;
  mcpr_cloud_token *token = NULL;
  char *cache_path = NULL, *request_id = NULL;
  char *asked_email = NULL, *asked_code = NULL, *asked_project = NULL, *asked_server = NULL;
  char mask[64];
  bool tty = isatty(STDIN_FILENO);

  const char *env_url = getenv("MCPR_CLOUD_URL");
  const char *cloud_url = a.cloud_url ? a.cloud_url : env_url && *env_url ? env_url
                                                                          : MCPR_CLOUD_DEFAULT_URL;
  const char *config_path = a.config ? a.config : MCPR_CONFIG_DEFAULT_PATH;

  /* 1. The config must be readable before we change anything. */
  mcpr_status st = mcpr_config_load(config_path, &cfg, &err);
  cli_config_secret_warnings(cfg);
  if (st == MCPR_ENOTFOUND) {
    mcpr_error_clear(&err); /* setup creates it */
  } else if (st != MCPR_OK) {
    if (cfg && cfg->cloud.token)
      mcpr_secret_redact(err.message, sizeof err.message, cfg->cloud.token);
    say(&sec, stderr, "mcpr: ", "%s (fix it, or check it with 'mcpr config check')",
        err.message);
    goto out;
  }

  /* 2. The client: refuses a URL that would send credentials in clear. */
  st = mcpr_cloud_client_new(&client, cloud_url, NULL, &err);
  if (st == MCPR_EINVAL) {
    rc = cli_usage_error(&cmd_setup, "--cloud-url: %s", err.message);
    goto out;
  }
  if (st != MCPR_OK) {
    rc = fail(&sec, &err, "cannot start the cloud client");
    goto out;
  }

  /* 3. A saved login for this cloud, still valid for 5 minutes or more? */
  cache_path = mcpr_cloud_login_cache_path(&err);
  if (!cache_path) {
    rc = fail(&sec, &err, "cannot find the saved login");
    goto out;
  }
  if (mcpr_cloud_login_cache_load(cache_path, &cache, NULL) == MCPR_OK && cache)
    sec.jwt = cache->jwt;
  bool reuse = cache && mcpr_cloud_login_cache_usable(cache, cloud_url, mcpr_now_ms() / 1000);

  /* 4. Without a terminal, name everything missing before any call. */
  if (!tty) {
    char missing[256] = "";
    if (!reuse && !a.email)
      strncat(missing, " --email", sizeof missing - strlen(missing) - 1);
    if (!reuse && !a.code)
      strncat(missing, " --code", sizeof missing - strlen(missing) - 1);
    if (!a.project)
      strncat(missing, " --project", sizeof missing - strlen(missing) - 1);
    if (!a.server)
      strncat(missing, " --server", sizeof missing - strlen(missing) - 1);
    if (missing[0]) {
      rc = cli_usage_error(&cmd_setup,
                           "stdin is not a terminal, so nothing can be asked; missing:%s%s",
                           missing, reuse ? "" : " (no valid saved login for this cloud)");
      goto out;
    }
  }
  if (a.project && !valid_slug(a.project)) {
    rc = cli_usage_error(&cmd_setup, "--project: a slug uses letters, digits, '-' and '_' only");
    goto out;
  }
  if (a.server && !valid_slug(a.server)) {
    rc = cli_usage_error(&cmd_setup, "--server: a slug uses letters, digits, '-' and '_' only");
    goto out;
  }

  if (reuse) {
    st = mcpr_cloud_client_set_jwt(client, cache->jwt, &err);
    if (st != MCPR_OK) {
      rc = fail(&sec, &err, "cannot use the saved login");
      goto out;
    }
    say(&sec, stdout, "", "Using the saved login%s%s (%s)", cache->email ? " for " : "",
        cache->email ? cache->email : "", cache_path);
  } else {
    const char *email = a.email;
    if (!email) {
      asked_email = prompt("E-mail for your mcpr cloud account", NULL);
      email = asked_email;
      if (!email) {
        rc = cli_usage_error(&cmd_setup, "an e-mail address is needed (--email)");
        goto out;
      }
    }
    st = mcpr_cloud_login(client, email, &request_id, &err);
    if (st != MCPR_OK) {
      rc = fail(&sec, &err, "login failed");
      goto out;
    }
    const char *codev = a.code;
    if (!codev) {
      say(&sec, stderr, "", "A login code was sent to %s.", email);
      asked_code = prompt("Code", NULL);
      codev = asked_code;
      if (!codev) {
        rc = cli_usage_error(&cmd_setup, "the login code is needed (--code)");
        goto out;
      }
    }
    st = mcpr_cloud_verify(client, request_id, codev, &auth, &err);
    if (st != MCPR_OK) {
      rc = fail(&sec, &err, "login verification failed");
      goto out;
    }
    sec.jwt = auth->jwt;
    st = mcpr_cloud_client_set_jwt(client, auth->jwt, &err);
    if (st != MCPR_OK) {
      rc = fail(&sec, &err, "cannot use the login");
      goto out;
    }
    mcpr_cloud_login_cache saved = {.jwt = auth->jwt,
                                    .email = auth->user.email ? auth->user.email : (char *)email,
                                    .cloud_url = (char *)mcpr_cloud_client_base_url(client)};
    st = mcpr_cloud_login_cache_save(cache_path, &saved, &err);
    if (st != MCPR_OK)
      say(&sec, stderr, "mcpr: warning: ", "could not save the login: %s", err.message);
    say(&sec, stdout, "", "Logged in as %s", saved.email);
  }

  /* 5. Project: find by slug, else create. */
  st = mcpr_cloud_list_projects(client, &projects, &err);
  if (st != MCPR_OK) {
    rc = fail(&sec, &err, reuse && st == MCPR_EAUTH
                              ? "the saved login was refused (remove ~/.mcpr/auth.json and run "
                                "setup again)"
                              : "cannot list projects");
    goto out;
  }
  const char *project_slug = a.project;
  if (!project_slug) {
    for (size_t i = 0; i < projects->count; i++)
      say(&sec, stderr, "", "  project: %s", projects->items[i].slug);
    asked_project = prompt("Project (slug; created if new)",
                           projects->count ? projects->items[0].slug : NULL);
    project_slug = asked_project;
    if (!valid_slug(project_slug)) {
      rc = cli_usage_error(&cmd_setup, "a project slug is needed (letters, digits, '-', '_')");
      goto out;
    }
  }
  const mcpr_cloud_project *project = NULL;
  for (size_t i = 0; i < projects->count && !project; i++)
    if (strcmp(projects->items[i].slug, project_slug) == 0)
      project = &projects->items[i];
  if (!project) {
    st = mcpr_cloud_create_project(client, project_slug, project_slug, &new_project, &err);
    if (st != MCPR_OK) {
      rc = fail(&sec, &err, "cannot create the project");
      goto out;
    }
    project = new_project;
    say(&sec, stdout, "", "Created project %s", project->slug);
  } else {
    say(&sec, stdout, "", "Project %s", project->slug);
  }

  /* 6. Server: find by slug in the project, else create. */
  const char *server_slug = a.server;
  if (!server_slug) {
    asked_server = prompt("Server (slug; created if new)", cfg && cfg->name ? cfg->name : NULL);
    server_slug = asked_server;
    if (!valid_slug(server_slug)) {
      rc = cli_usage_error(&cmd_setup, "a server slug is needed (letters, digits, '-', '_')");
      goto out;
    }
  }
  st = mcpr_cloud_list_servers(client, project->id, &servers, &err);
  if (st != MCPR_OK) {
    rc = fail(&sec, &err, "cannot list servers");
    goto out;
  }
  const mcpr_cloud_server *server = NULL;
  for (size_t i = 0; i < servers->count && !server; i++)
    if (strcmp(servers->items[i].slug, server_slug) == 0)
      server = &servers->items[i];
  if (!server) {
    st = mcpr_cloud_create_server(client, project->id, server_slug, server_slug, &new_server, &err);
    if (st != MCPR_OK) {
      rc = fail(&sec, &err, "cannot create the server");
      goto out;
    }
    server = new_server;
    say(&sec, stdout, "", "Created server %s", server->slug);
  } else {
    say(&sec, stdout, "", "Server %s", server->slug);
  }

  /* 7. Endpoint (tunnel name), only when asked for. */
  if (a.endpoint) {
    st = mcpr_cloud_list_endpoints(client, server->id, &endpoints, &err);
    if (st != MCPR_OK) {
      rc = fail(&sec, &err, "cannot list endpoints");
      goto out;
    }
    const mcpr_cloud_endpoint *ep = NULL;
    for (size_t i = 0; i < endpoints->count && !ep; i++)
      if (strcmp(endpoints->items[i].name, a.endpoint) == 0)
        ep = &endpoints->items[i];
    if (!ep) {
      st = mcpr_cloud_create_endpoint(client, server->id, a.endpoint, &new_endpoint, &err);
      if (st != MCPR_OK) {
        rc = fail(&sec, &err, "cannot create the endpoint");
        goto out;
      }
      ep = new_endpoint;
      say(&sec, stdout, "", "Created endpoint %s", ep->name);
    } else {
      say(&sec, stdout, "", "Endpoint %s", ep->name);
    }
  }

  /* 8. A token for this server's events. */
  char host[128] = "host";
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  char token_name[256];
  snprintf(token_name, sizeof token_name, "mcpr setup: %s on %s", server->slug, host);
  st = mcpr_cloud_create_token(client, project->id, token_name, &token, &err);
  if (st != MCPR_OK) {
    rc = fail(&sec, &err, "cannot create a token");
    goto out;
  }
  sec.token = token->token;

  /*
   * 9. Write [cloud]. endpoint (the ingest URL the sink posts to) is written
   * only when this cloud is not the default one, so a config set up against
   * a staging cloud sends its events there.
   */
  const char *base = mcpr_cloud_client_base_url(client);
  const char *endpoint_url = strcmp(base, MCPR_CLOUD_DEFAULT_URL) == 0 ? NULL : base;
  st = mcpr_config_set_cloud(config_path, token->token, server->slug, endpoint_url, &err);
  if (st != MCPR_OK) {
    rc = fail(&sec, &err, "cannot write the config");
    goto out;
  }
  say(&sec, stdout, "", "Wrote [cloud] to %s (token %s, server %s; file mode 0600)", config_path,
      mcpr_secret_mask(token->token, mask, sizeof mask), server->slug);
  rc = CLI_EXIT_OK;

out:
  mcpr_cloud_token_free(token);
  mcpr_cloud_endpoint_free(new_endpoint);
  mcpr_cloud_endpoint_list_free(endpoints);
  mcpr_cloud_server_free(new_server);
  mcpr_cloud_server_list_free(servers);
  mcpr_cloud_project_free(new_project);
  mcpr_cloud_project_list_free(projects);
  mcpr_cloud_auth_free(auth);
  mcpr_cloud_login_cache_free(cache);
  mcpr_cloud_client_free(client);
  mcpr_config_free(cfg);
  free(cache_path);
  free(request_id);
  free(asked_email);
  free(asked_code);
  free(asked_project);
  free(asked_server);
  return rc;
}

const mcpr_cli_command cmd_setup = {
    .group = NULL,
    .name = "setup",
    .summary = "connect this proxy to the mcpr cloud and write [cloud] into mcpr.toml",
    .usage =
        "mcpr setup [--config FILE] [--cloud-url URL] [--email E] [--code C]\n"
        "           [--project SLUG] [--server SLUG] [--endpoint NAME]\n"
        "  --config FILE     config to update (default ./mcpr.toml; created if missing)\n"
        "  --cloud-url URL   cloud API (default $MCPR_CLOUD_URL, else https://api.mcpr.app)\n"
        "  --email E         account e-mail; a login code is sent there\n"
        "  --code C          the login code (not needed while ~/.mcpr/auth.json is valid)\n"
        "  --project SLUG    project, created when it does not exist\n"
        "  --server SLUG     server in the project, created when it does not exist\n"
        "  --endpoint NAME   also make sure the server has this endpoint (tunnel name)\n"
        "Asks for what is missing when stdin is a terminal; otherwise every missing flag\n"
        "is an error (exit 2). Writes [cloud] token and server (and endpoint, the ingest\n"
        "URL, for a non-default cloud); a config holding a token is made mode 0600.",
    .run = run,
};

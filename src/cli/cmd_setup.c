/*
 * cmd_setup.c — `mcpr setup`: log in to the mcpr cloud, make sure the
 * project and server exist, create an ingest token and write the [cloud]
 * section of mcpr.toml (SPEC §8).
 *
 * The flow is the library's (mcpr_cloud_setup_*, src/lib/cloud/setup.c).
 * Here: the flags, reading the config first (a broken file fails before
 * any network call), the questions on a terminal, and the messages.
 *
 * What is missing is asked for only when stdin is a terminal. Without one,
 * every missing flag is named at once, before any call is made (exit 2), so
 * CI either runs the whole flow or nothing. The one exception is the login
 * code, which only arrives by e-mail: `--email E` without `--code` asks the
 * cloud to send it and exits 0, keeping the login request beside the saved
 * login (login-request.json, mode 0600); the next run with `--email E
 * --code N` verifies the code against that request and goes on.
 *
 * Secrets (the JWT, the new token) never reach the terminal: they are shown
 * masked, and every message printed here is passed through the flow's
 * redaction first, since an error body from the server could echo them.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config_warn.h"
#include "mcpr/mcpr.h"

extern const mcpr_cli_command cmd_setup;

typedef struct setup_args {
  const char *config, *cloud_url, *email, *code, *project, *server, *endpoint, *output;
} setup_args;

static void say(const mcpr_cloud_setup *flow, FILE *out, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void say(const mcpr_cloud_setup *flow, FILE *out, const char *prefix, const char *fmt, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  mcpr_cloud_setup_redact(flow, buf, sizeof buf);
  for (char *c = buf; *c; c++)
    if ((unsigned char)*c < 0x20 && *c != '\n')
      *c = '?';
  fprintf(out, "%s%s\n", prefix, buf);
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

/* The flow's questions and notes, on the terminal. */
typedef struct ui {
  const mcpr_cloud_setup *flow;
} ui;

static char *ask(void *ctx, mcpr_cloud_setup_question q, const char *about, const char *def) {
  ui *u = ctx;
  switch (q) {
  case MCPR_SETUP_Q_EMAIL:
    return prompt("E-mail for your mcpr cloud account", NULL);
  case MCPR_SETUP_Q_CODE:
    say(u->flow, stderr, "", "A login code was sent to %s.", about);
    return prompt("Code", NULL);
  case MCPR_SETUP_Q_PROJECT:
    return prompt("Project (slug; created if new)", def);
  case MCPR_SETUP_Q_SERVER:
    return prompt("Server (slug; created if new)", def);
  }
  return NULL;
}

static void note(void *ctx, const mcpr_cloud_setup_note *n) {
  const mcpr_cloud_setup *flow = ((ui *)ctx)->flow;
  switch (n->kind) {
  case MCPR_SETUP_NOTE_SAVED_LOGIN:
    say(flow, stdout, "", "Using the saved login%s%s (%s)", n->name ? " for " : "",
        n->name ? n->name : "", n->path);
    break;
  case MCPR_SETUP_NOTE_LOGIN_NOT_SAVED:
    say(flow, stderr, "mcpr: warning: ", "could not save the login: %s", n->message);
    break;
  case MCPR_SETUP_NOTE_LOGGED_IN:
    say(flow, stdout, "", "Logged in as %s", n->name);
    break;
  case MCPR_SETUP_NOTE_PROJECT_CHOICE:
    say(flow, stderr, "", "  project: %s", n->name);
    break;
  case MCPR_SETUP_NOTE_PROJECT:
    say(flow, stdout, "", "%s %s", n->created ? "Created project" : "Project", n->name);
    break;
  case MCPR_SETUP_NOTE_SERVER:
    say(flow, stdout, "", "%s %s", n->created ? "Created server" : "Server", n->name);
    break;
  case MCPR_SETUP_NOTE_ENDPOINT:
    say(flow, stdout, "", "%s %s", n->created ? "Created endpoint" : "Endpoint", n->name);
    break;
  case MCPR_SETUP_NOTE_CONFIG_WRITTEN:
    say(flow, stdout, "", "Wrote [cloud] to %s (token %s, server %s; file mode 0600)", n->path,
        n->token_mask, n->server);
    break;
  }
}

/* The message for a failed step: a usage error (2) or a failure (1). */
static int failure(const mcpr_cloud_setup *flow, const mcpr_error *err) {
  const char *what = NULL;
  switch (mcpr_cloud_setup_failed_step(flow)) {
  case MCPR_SETUP_CLIENT:
    if (err->status == MCPR_EINVAL)
      return cli_usage_error(&cmd_setup, "--cloud-url: %s", err->message);
    what = "cannot start the cloud client";
    break;
  case MCPR_SETUP_ASK_EMAIL:
    return cli_usage_error(&cmd_setup, "an e-mail address is needed (--email)");
  case MCPR_SETUP_ASK_CODE:
    return cli_usage_error(&cmd_setup, "the login code is needed (--code)");
  case MCPR_SETUP_ASK_PROJECT:
    return cli_usage_error(&cmd_setup, "a project slug is needed (letters, digits, '-', '_')");
  case MCPR_SETUP_ASK_SERVER:
    return cli_usage_error(&cmd_setup, "a server slug is needed (letters, digits, '-', '_')");
  case MCPR_SETUP_LOGIN_CACHE_PATH: what = "cannot find the saved login"; break;
  case MCPR_SETUP_USE_LOGIN:
    what = mcpr_cloud_setup_reuses_login(flow) ? "cannot use the saved login"
                                               : "cannot use the login";
    break;
  case MCPR_SETUP_LOGIN: what = "login failed"; break;
  case MCPR_SETUP_VERIFY: what = "login verification failed"; break;
  case MCPR_SETUP_LIST_PROJECTS:
    what = mcpr_cloud_setup_reuses_login(flow) && err->status == MCPR_EAUTH
               ? "the saved login was refused (remove ~/.mcpr/auth.json and run setup again)"
               : "cannot list projects";
    break;
  case MCPR_SETUP_CREATE_PROJECT: what = "cannot create the project"; break;
  case MCPR_SETUP_LIST_SERVERS: what = "cannot list servers"; break;
  case MCPR_SETUP_CREATE_SERVER: what = "cannot create the server"; break;
  case MCPR_SETUP_LIST_ENDPOINTS: what = "cannot list endpoints"; break;
  case MCPR_SETUP_CREATE_ENDPOINT: what = "cannot create the endpoint"; break;
  case MCPR_SETUP_CREATE_TOKEN: what = "cannot create a token"; break;
  case MCPR_SETUP_WRITE_CONFIG: what = "cannot write the config"; break;
  case MCPR_SETUP_NONE: what = "setup failed"; break;
  }
  say(flow, stderr, "mcpr: ", "%s: %s", what, err->message);
  return CLI_EXIT_FAIL;
}

/* ---- a login in two runs (no terminal) ---- */

/* login-request.json beside the saved login (new string), or NULL. */
static char *login_request_path(void) {
  char *auth = mcpr_cloud_login_cache_path(NULL);
  if (!auth)
    return NULL;
  static const char name[] = "login-request.json";
  char *slash = strrchr(auth, '/');
  int dir_len = slash ? (int)(slash - auth) : 1;
  size_t n = (size_t)dir_len + sizeof name + 1;
  char *path = malloc(n);
  if (path)
    snprintf(path, n, "%.*s/%s", dir_len, slash ? auth : ".", name);
  free(auth);
  return path;
}

/* Keep the request a code was sent for, readable by this user only. */
static mcpr_status save_login_request(const char *path, const char *email, const char *cloud_url,
                                      const char *request_id, mcpr_error *err) {
  char *dir = strdup(path);
  if (!dir)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      mcpr_status st = mcpr_error_set(err, MCPR_EIO, "%s: %s", dir, strerror(errno));
      free(dir);
      return st;
    }
  }
  free(dir);
  json_t *o = json_pack("{s:s, s:s, s:s}", "email", email, "cloud_url", cloud_url, "request_id",
                        request_id);
  char *text = o ? json_dumps(o, 0) : NULL;
  json_decref(o);
  if (!text)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory");
  mcpr_status st = MCPR_OK;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  size_t len = strlen(text);
  if (fd < 0 || fchmod(fd, 0600) != 0 || write(fd, text, len) != (ssize_t)len)
    st = mcpr_error_set(err, MCPR_EIO, "%s: %s", path, strerror(errno));
  if (fd >= 0 && close(fd) != 0 && st == MCPR_OK)
    st = mcpr_error_set(err, MCPR_EIO, "%s: %s", path, strerror(errno));
  free(text);
  return st;
}

/* The request kept for this e-mail and cloud (new string), or NULL. */
static char *load_login_request(const char *path, const char *email, const char *cloud_url) {
  json_t *o = json_load_file(path, 0, NULL);
  const char *e = json_string_value(json_object_get(o, "email"));
  const char *u = json_string_value(json_object_get(o, "cloud_url"));
  const char *id = json_string_value(json_object_get(o, "request_id"));
  char *out = e && u && id && *id && strcmp(e, email) == 0 && strcmp(u, cloud_url) == 0
                  ? strdup(id)
                  : NULL;
  json_decref(o);
  return out;
}

/* `--email E` without `--code` and without a terminal: have the code sent. */
static int send_login_code(const char *cloud_url, const char *email, const char *path) {
  mcpr_cloud_client *client = NULL;
  mcpr_error err = {0};
  char *request_id = NULL;
  int rc = CLI_EXIT_FAIL;
  mcpr_status st = mcpr_cloud_client_new(&client, cloud_url, NULL, &err);
  if (st == MCPR_EINVAL) {
    rc = cli_usage_error(&cmd_setup, "--cloud-url: %s", err.message);
    goto out;
  }
  if (st != MCPR_OK) {
    say(NULL, stderr, "mcpr: ", "cannot start the cloud client: %s", err.message);
    goto out;
  }
  if (mcpr_cloud_login(client, email, &request_id, &err) != MCPR_OK) {
    say(NULL, stderr, "mcpr: ", "login failed: %s", err.message);
    goto out;
  }
  if (save_login_request(path, email, cloud_url, request_id, &err) != MCPR_OK) {
    say(NULL, stderr, "mcpr: ", "cannot keep the login request: %s", err.message);
    goto out;
  }
  say(NULL, stdout, "", "A login code was sent to %s.", email);
  say(NULL, stdout, "", "Run setup again with --email %s --code CODE (and --project, --server).",
      email);
  rc = CLI_EXIT_OK;
out:
  free(request_id);
  mcpr_cloud_client_free(client);
  return rc;
}

static bool parse_args(int argc, char **argv, setup_args *a, int *code) {
  struct {
    const char *flag;
    const char **dst;
  } flags[] = {{"--cloud-url", &a->cloud_url},
               {"--email", &a->email},     {"--code", &a->code},
               {"--project", &a->project}, {"--server", &a->server},
               {"--endpoint", &a->endpoint}, {"--output", &a->output}};
  for (int i = 1; i < argc; i++) {
    if (cli_is_help(argv[i])) {
      printf("%s\n", cmd_setup.usage);
      *code = CLI_EXIT_OK;
      return false;
    }
    bool matched = false;
    if (strcmp(argv[i], "-o") == 0) { /* the original's short form of --output */
      if (i + 1 >= argc || !*argv[i + 1]) {
        *code = cli_usage_error(&cmd_setup, "-o needs a value");
        return false;
      }
      a->output = argv[++i];
      continue;
    }
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

static int run(const mcpr_cli_ctx *ctx, int argc, char **argv) {
  setup_args a = {0};
  int code = CLI_EXIT_OK;
  if (!parse_args(argc, argv, &a, &code))
    return code;
  /* The file to write: the global -c/--config, or the original's
   * `proxy setup --output`. */
  if (a.output && ctx->config_path && strcmp(a.output, ctx->config_path) != 0)
    return cli_usage_error(&cmd_setup, "-c/--config and --output name different files");
  a.config = a.output ? a.output : ctx->config_path;
  int rc = CLI_EXIT_FAIL;
  mcpr_error err = {0};
  mcpr_config *cfg = NULL;
  mcpr_cloud_setup *flow = NULL;
  bool tty = isatty(STDIN_FILENO);
  char *request_path = NULL, *request_id = NULL;

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
    say(NULL, stderr, "mcpr: ", "%s (fix it, or check it with 'mcpr config check')",
        err.message);
    goto out;
  }

  /* A code asked for by an earlier run, for this e-mail and this cloud. */
  if (!tty && a.email && a.code && (request_path = login_request_path()) != NULL)
    request_id = load_login_request(request_path, a.email, cloud_url);

  /* 2. The client (refuses a URL that would send credentials in clear) and the saved login. */
  ui u = {0};
  mcpr_cloud_setup_options opts = {
      .cloud_url = cloud_url, .config_path = config_path, .email = a.email, .code = a.code,
      .project = a.project, .server = a.server, .endpoint = a.endpoint,
      .default_server = cfg ? cfg->name : NULL, .ask = tty ? ask : NULL, .note = note, .ctx = &u,
      .request_id = request_id};
  flow = mcpr_cloud_setup_new(&opts);
  if (!flow) {
    rc = cli_fail("out of memory");
    goto out;
  }
  u.flow = flow;
  if (mcpr_cloud_setup_prepare(flow, &err) != MCPR_OK) {
    rc = failure(flow, &err);
    goto out;
  }
  bool reuse = mcpr_cloud_setup_reuses_login(flow);

  /* 3. Without a terminal: the first of two runs has the code sent; else
   * name everything missing before any call. */
  if (!tty && !reuse && a.email && !a.code) {
    if (!(request_path = login_request_path())) {
      rc = cli_fail("cannot find where to keep the login request (is HOME set?)");
      goto out;
    }
    rc = send_login_code(cloud_url, a.email, request_path);
    goto out;
  }
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
  if (a.project && !mcpr_cloud_slug_valid(a.project)) {
    rc = cli_usage_error(&cmd_setup, "--project: a slug uses letters, digits, '-' and '_' only");
    goto out;
  }
  if (a.server && !mcpr_cloud_slug_valid(a.server)) {
    rc = cli_usage_error(&cmd_setup, "--server: a slug uses letters, digits, '-' and '_' only");
    goto out;
  }

  /* 4. Log in, project, server, endpoint, token, [cloud]. */
  if (mcpr_cloud_setup_run(flow, &err) != MCPR_OK) {
    rc = failure(flow, &err);
    goto out;
  }
  if (request_id)
    unlink(request_path); /* used: a code is good once */
  rc = CLI_EXIT_OK;

out:
  free(request_id);
  free(request_path);
  mcpr_cloud_setup_free(flow);
  mcpr_config_free(cfg);
  return rc;
}

static const char SETUP_USAGE[] =
        "mcpr setup [--config FILE] [--cloud-url URL] [--email E] [--code C]\n"
        "           [--project SLUG] [--server SLUG] [--endpoint NAME]\n"
        "mcpr proxy setup …   the same, under the original's name\n"
        "  --config FILE     config to update (default ./mcpr.toml; created if missing)\n"
        "  -o, --output FILE the same, as the original's proxy setup names it\n"
        "  --cloud-url URL   cloud API (default $MCPR_CLOUD_URL, else https://api.mcpr.app)\n"
        "  --email E         account e-mail; a login code is sent there\n"
        "  --code C          the login code (not needed while ~/.mcpr/auth.json is valid)\n"
        "  --project SLUG    project, created when it does not exist\n"
        "  --server SLUG     server in the project, created when it does not exist\n"
        "  --endpoint NAME   also make sure the server has this endpoint (tunnel name)\n"
        "Asks for what is missing when stdin is a terminal; otherwise every missing flag\n"
        "is an error (exit 2), except the code: without a terminal, log in in two runs:\n"
        "  mcpr setup --email E                 the cloud e-mails a code; exits 0\n"
        "  mcpr setup --email E --code N --project P --server S   completes\n"
        "Writes [cloud] token and server (and endpoint, the ingest URL, for a\n"
        "non-default cloud); a config holding a token is made mode 0600.";

const mcpr_cli_command cmd_setup = {
    .group = NULL,
    .name = "setup",
    .summary = "connect this proxy to the mcpr cloud and write [cloud] into mcpr.toml",
    .usage = SETUP_USAGE,
    .run = run,
};

/* The original's name for it (`mcpr proxy setup`, its README's first step). */
const mcpr_cli_command cmd_proxy_setup = {
    .group = "proxy",
    .name = "setup",
    .summary = "the same as 'mcpr setup' (the original's name)",
    .usage = SETUP_USAGE,
    .run = run,
};

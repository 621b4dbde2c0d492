/*
 * config.c — mcpr.toml into an mcpr_config (SPEC §9).
 *
 * The file is parsed into a TOML tree (toml.c), then the tree is checked
 * key by key against what mcpr knows. Every finding becomes a diagnostic
 * with its line, so `mcpr config check` can list them all at once: unknown
 * keys are warnings (a newer mcpr or another tool may use them), values of
 * the wrong type or out of range are errors naming the key. No message
 * quotes a string value or the text of a syntax error (toml.c): the file
 * holds a secret. A file that holds [cloud] token and that group or others
 * may read gets a warning marked secret_at_risk, which every command shows.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include "config/config_internal.h"
#include "config/toml.h"
#include "http/http.h"
#include "mcpr/config.h"
#include "mcpr/store.h"
#include "mcpr/util.h"

static void add_diag(mcpr_config *cfg, mcpr_config_severity sev, int line, int column,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add_diag(mcpr_config *cfg, mcpr_config_severity sev, int line, int column,
                     const char *fmt, ...) {
  if (cfg->n_diags_ == cfg->cap_diags_) {
    size_t cap = cfg->cap_diags_ ? cfg->cap_diags_ * 2 : 8;
    if (cap > 1000)
      return; /* a file with more findings than this is listed in part */
    mcpr_config_diag *d = realloc(cfg->diags_, cap * sizeof *d);
    if (!d) {
      cfg->diags_lost_ = true;
      return;
    }
    cfg->diags_ = d;
    cfg->cap_diags_ = cap;
  }
  mcpr_config_diag *d = &cfg->diags_[cfg->n_diags_++];
  d->severity = sev;
  d->secret_at_risk = false;
  d->line = line;
  d->column = column;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->message, sizeof d->message, fmt, ap);
  va_end(ap);
}

size_t mcpr_config_diag_count(const mcpr_config *cfg) { return cfg ? cfg->n_diags_ : 0; }

const mcpr_config_diag *mcpr_config_diag_at(const mcpr_config *cfg, size_t i) {
  return cfg && i < cfg->n_diags_ ? &cfg->diags_[i] : NULL;
}

size_t mcpr_config_error_count(const mcpr_config *cfg) {
  size_t n = 0;
  for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++)
    n += cfg->diags_[i].severity == MCPR_CONFIG_ERROR;
  return n;
}

void mcpr_config_free(mcpr_config *cfg) {
  if (!cfg)
    return;
  free(cfg->file_path);
  free(cfg->name);
  free(cfg->mcp);
  free(cfg->listen);
  free(cfg->log_format);
  free(cfg->admin_bind);
  for (size_t i = 0; i < cfg->n_allowed_origins; i++)
    free(cfg->allowed_origins[i]);
  free(cfg->allowed_origins);
  free(cfg->store.path);
  free(cfg->store.name);
  free(cfg->store.url);
  free(cfg->cloud.token);
  free(cfg->cloud.server);
  free(cfg->cloud.endpoint);
  free(cfg->diags_);
  free(cfg);
}

static mcpr_config *config_new(const char *file_path) {
  mcpr_config *cfg = calloc(1, sizeof *cfg);
  if (!cfg)
    return NULL;
  cfg->file_path = strdup(file_path ? file_path : MCPR_CONFIG_DEFAULT_PATH);
  if (!cfg->file_path) {
    free(cfg);
    return NULL;
  }
  cfg->store.enabled = true;
  cfg->store.rollup_retention_ms = MCPR_CONFIG_DEFAULT_ROLLUP_RETENTION_MS;
  cfg->cloud.batch_size = MCPR_CONFIG_DEFAULT_BATCH_SIZE;
  cfg->cloud.flush_interval_ms = MCPR_CONFIG_DEFAULT_FLUSH_INTERVAL_MS;
  cfg->drain_timeout_ms = MCPR_CONFIG_DEFAULT_DRAIN_TIMEOUT_MS;
  cfg->connect_timeout_ms = MCPR_CONFIG_DEFAULT_CONNECT_TIMEOUT_MS;
  cfg->request_timeout_ms = MCPR_CONFIG_DEFAULT_REQUEST_TIMEOUT_MS;
  cfg->max_request_body_size = MCPR_CONFIG_DEFAULT_MAX_REQUEST_BODY;
  cfg->max_response_body_size = MCPR_CONFIG_DEFAULT_MAX_RESPONSE_BODY;
  cfg->max_concurrent_upstream = MCPR_CONFIG_DEFAULT_MAX_CONCURRENT_UPSTREAM;
  return cfg;
}

static void wrong_type(mcpr_config *cfg, const char *section, const mcpr__toml_entry *e,
                       const char *want) {
  add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column, "%s%s%s must be %s, not %s",
           section ? section : "", section ? "." : "", e->key, want,
           mcpr__toml_type_name(e->value->type));
}

static bool take_string(mcpr_config *cfg, const char *section, const mcpr__toml_entry *e,
                        char **dst) {
  if (e->value->type != MCPR__TOML_STRING) {
    wrong_type(cfg, section, e, "a string");
    return false;
  }
  char *s = strdup(e->value->string);
  if (!s) {
    cfg->diags_lost_ = true; /* the value is lost: the load must fail */
    return false;
  }
  free(*dst);
  *dst = s;
  return true;
}

static void take_int(mcpr_config *cfg, const char *section, const mcpr__toml_entry *e, int64_t min,
                     int64_t max, int64_t *dst) {
  if (e->value->type != MCPR__TOML_INTEGER) {
    wrong_type(cfg, section, e, "an integer");
    return;
  }
  if (e->value->integer < min || e->value->integer > max) {
    add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column,
             "%s%s%s must be between %lld and %lld, not %lld", section ? section : "",
             section ? "." : "", e->key, (long long)min, (long long)max,
             (long long)e->value->integer);
    return;
  }
  *dst = e->value->integer;
}

static void unknown_key(mcpr_config *cfg, const char *section, const mcpr__toml_entry *e) {
  char kb[MCPR__TOML_KEY_SHOWN_BUF];
  if (mcpr__toml_key_shown(e->key, kb, sizeof kb)[0] != '\'')
    add_diag(cfg, MCPR_CONFIG_WARNING, e->line, e->column, "unknown key %s%s%s (ignored)",
             section ? "in [" : "", section ? section : "", section ? "] " : "");
  else
    add_diag(cfg, MCPR_CONFIG_WARNING, e->line, e->column, "unknown key '%s%s%s' (ignored)",
             section ? section : "", section ? "." : "", e->key);
}

static bool is_table(mcpr_config *cfg, const mcpr__toml_entry *e) {
  if (e->value->type == MCPR__TOML_TABLE)
    return true;
  add_diag(cfg, MCPR_CONFIG_ERROR, e->line, e->column, "%s must be a table ([%s]), not %s", e->key,
           e->key, mcpr__toml_type_name(e->value->type));
  return false;
}

/* A retention period: a string "30d" (an integer and one of s m h d w).
 * *line records where it was set, for the checks between periods. */
static void take_period(mcpr_config *cfg, const mcpr__toml_entry *e, int64_t *dst, int *line,
                        int *column) {
  int64_t ms = 0;
  if (e->value->type != MCPR__TOML_STRING ||
      mcpr_parse_duration_ms(e->key, e->value->string, &ms, NULL) != MCPR_OK) {
    add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column,
             "store.%s must be a duration: an integer and one of s m h d w (e.g. \"30d\")",
             e->key);
    return;
  }
  *dst = ms;
  *line = e->value->line;
  *column = e->value->column;
}

static void check_store(mcpr_config *cfg, const mcpr__toml_value *t) {
  int ret_line = 0, ret_col = 0, err_line = 0, err_col = 0, roll_line = 0, roll_col = 0;
  for (size_t i = 0; i < t->n_entries; i++) {
    const mcpr__toml_entry *e = &t->entries[i];
    if (strcmp(e->key, "retention") == 0) {
      take_period(cfg, e, &cfg->store.retention_ms, &ret_line, &ret_col);
    } else if (strcmp(e->key, "keep_errors") == 0) {
      take_period(cfg, e, &cfg->store.keep_errors_ms, &err_line, &err_col);
    } else if (strcmp(e->key, "rollup_retention") == 0) {
      take_period(cfg, e, &cfg->store.rollup_retention_ms, &roll_line, &roll_col);
    } else if (strcmp(e->key, "enabled") == 0) {
      if (e->value->type != MCPR__TOML_BOOLEAN)
        wrong_type(cfg, "store", e, "a boolean (true or false)");
      else
        cfg->store.enabled = e->value->boolean;
    } else if (strcmp(e->key, "path") == 0 || strcmp(e->key, "name") == 0 ||
               strcmp(e->key, "url") == 0) {
      char **dst = e->key[0] == 'p'   ? &cfg->store.path
                   : e->key[0] == 'u' ? &cfg->store.url
                                      : &cfg->store.name;
      if (take_string(cfg, "store", e, dst) && !**dst) {
        add_diag(cfg, MCPR_CONFIG_ERROR, e->line, e->column,
                 "store.%s cannot be an empty string — remove the key to use the platform "
                 "default, or set a valid %s",
                 e->key, e->key);
        free(*dst);
        *dst = NULL;
      }
    } else {
      unknown_key(cfg, "store", e);
    }
  }
  if (cfg->store.path && cfg->store.url)
    add_diag(cfg, MCPR_CONFIG_ERROR, 0, 0,
             "store.path and store.url are both set — keep one: a file path, or a URL "
             "such as postgresql://host/db");
  const int64_t ret = cfg->store.retention_ms, keep = cfg->store.keep_errors_ms;
  if (err_line && !ret_line)
    add_diag(cfg, MCPR_CONFIG_ERROR, err_line, err_col,
             "store.keep_errors needs store.retention: without it every request is kept "
             "forever");
  else if (err_line && keep < ret)
    add_diag(cfg, MCPR_CONFIG_ERROR, err_line, err_col,
             "store.keep_errors must be at least store.retention (failed requests are kept "
             "longer than the others, never shorter)");
  if (roll_line && ret_line && cfg->store.rollup_retention_ms < (keep > ret ? keep : ret))
    add_diag(cfg, MCPR_CONFIG_ERROR, roll_line, roll_col,
             "store.rollup_retention must be at least store.retention and store.keep_errors "
             "(the rollups count the requests deleted before them)");
}

void mcpr_config_store_options(const mcpr_config *cfg, mcpr_store_options *o) {
  if (!cfg || !cfg->store.retention_ms)
    return;
  o->retention_ms = cfg->store.retention_ms;
  o->keep_errors_ms = cfg->store.keep_errors_ms;
  int64_t floor = o->keep_errors_ms > o->retention_ms ? o->keep_errors_ms : o->retention_ms;
  /* The default never undercuts the raw rows' periods. */
  o->rollup_retention_ms =
      cfg->store.rollup_retention_ms > floor ? cfg->store.rollup_retention_ms : floor;
}

/* The token is sent to cloud.endpoint: the HTTP layer's own check decides
 * whether it may be, so a config that passes here is one the sink accepts. */
static void check_endpoint(mcpr_config *cfg, const mcpr__toml_entry *e) {
  mcpr_error err = {0};
  mcpr_status st = mcpr__http_check_url(cfg->cloud.endpoint, "cloud.endpoint", 0, NULL, &err);
  if (st == MCPR_ENOMEM)
    cfg->diags_lost_ = true; /* the finding is unknown: the load must fail */
  else if (st != MCPR_OK)
    add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column, "%s", err.message);
}

static void check_cloud(mcpr_config *cfg, const mcpr__toml_value *t) {
  for (size_t i = 0; i < t->n_entries; i++) {
    const mcpr__toml_entry *e = &t->entries[i];
    if (strcmp(e->key, "token") == 0)
      take_string(cfg, "cloud", e, &cfg->cloud.token);
    else if (strcmp(e->key, "server") == 0)
      take_string(cfg, "cloud", e, &cfg->cloud.server);
    else if (strcmp(e->key, "endpoint") == 0) {
      if (take_string(cfg, "cloud", e, &cfg->cloud.endpoint))
        check_endpoint(cfg, e);
    } else if (strcmp(e->key, "batch_size") == 0)
      take_int(cfg, "cloud", e, 1, 100000, &cfg->cloud.batch_size);
    else if (strcmp(e->key, "flush_interval_ms") == 0)
      take_int(cfg, "cloud", e, 1, 3600000, &cfg->cloud.flush_interval_ms);
    else
      unknown_key(cfg, "cloud", e);
  }
}

/* A duration: an integer of seconds, or a string with a unit ("30s",
 * "500ms"), between 1 ms and max_ms. */
static void take_duration_ms(mcpr_config *cfg, const mcpr__toml_entry *e, int64_t max_ms,
                             int64_t *dst) {
  int64_t ms = 0;
  if (e->value->type == MCPR__TOML_INTEGER) {
    if (e->value->integer < 1 || e->value->integer > max_ms / 1000) {
      add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column,
               "%s must be between 1 and %lld seconds", e->key, (long long)(max_ms / 1000));
      return;
    }
    ms = e->value->integer * 1000;
  } else if (e->value->type == MCPR__TOML_STRING) {
    int64_t us = 0;
    if (mcpr_parse_threshold_us(e->key, e->value->string, &us, NULL) != MCPR_OK || us < 1000 ||
        us / 1000 > max_ms) {
      add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column,
               "%s must be a duration between 1ms and %llds (e.g. \"30s\", \"500ms\") or an "
               "integer of seconds",
               e->key, (long long)(max_ms / 1000));
      return;
    }
    ms = us / 1000;
  } else {
    wrong_type(cfg, NULL, e, "a duration (\"30s\") or an integer of seconds");
    return;
  }
  *dst = ms;
}

/* A size: an integer of bytes, or a string "N", "NKB|MB|GB" (1000s),
 * "NKiB|MiB|GiB" (1024s), between 1 byte and 1 GiB. */
static void take_size(mcpr_config *cfg, const mcpr__toml_entry *e, int64_t *dst) {
  const int64_t max = INT64_C(1) << 30;
  int64_t n = -1;
  if (e->value->type == MCPR__TOML_INTEGER) {
    n = e->value->integer;
  } else if (e->value->type == MCPR__TOML_STRING) {
    static const struct { const char *unit; int64_t mult; } units[] = {
        {"", 1}, {"B", 1}, {"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000},
        {"KiB", 1024}, {"MiB", 1048576}, {"GiB", 1073741824}};
    const char *s = e->value->string;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end != s && errno == 0 && v >= 0 && v <= max) {
      while (*end == ' ')
        end++;
      for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].unit) == 0 && v <= max / units[i].mult) {
          n = v * units[i].mult;
          break;
        }
    }
  } else {
    wrong_type(cfg, NULL, e, "a size (\"5MB\") or an integer of bytes");
    return;
  }
  if (n < 1 || n > max) {
    add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column,
             "%s must be a size between 1 byte and 1GiB (e.g. \"5MB\", \"512KiB\", or an "
             "integer of bytes)",
             e->key);
    return;
  }
  *dst = n;
}

static void take_allowed_origins(mcpr_config *cfg, const mcpr__toml_entry *e) {
  const mcpr__toml_value *v = e->value;
  if (v->type != MCPR__TOML_ARRAY) {
    wrong_type(cfg, NULL, e, "an array of strings");
    return;
  }
  for (size_t i = 0; i < v->n_items; i++)
    if (v->items[i]->type != MCPR__TOML_STRING) {
      wrong_type(cfg, NULL, e, "an array of strings");
      return;
    }
  char **list = calloc(v->n_items ? v->n_items : 1, sizeof *list);
  if (!list) {
    cfg->diags_lost_ = true;
    return;
  }
  for (size_t i = 0; i < v->n_items; i++)
    if (!(list[i] = strdup(v->items[i]->string))) {
      for (size_t k = 0; k < i; k++)
        free(list[k]);
      free(list);
      cfg->diags_lost_ = true;
      return;
    }
  for (size_t i = 0; i < cfg->n_allowed_origins; i++)
    free(cfg->allowed_origins[i]);
  free(cfg->allowed_origins);
  cfg->allowed_origins = list;
  cfg->n_allowed_origins = v->n_items;
}

static void take_one_of(mcpr_config *cfg, const mcpr__toml_entry *e, const char *const *allowed,
                        const char *shown, char **dst) {
  if (!take_string(cfg, NULL, e, dst))
    return;
  for (const char *const *a = allowed; *a; a++)
    if (strcmp(*dst, *a) == 0)
      return;
  add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column, "%s must be %s", e->key,
           shown);
  free(*dst);
  *dst = NULL;
}

/* The upstream: http:// or https:// and a host (the proxy speaks HTTP to
 * it; a LAN upstream over plain http is allowed, unlike cloud.endpoint). */
static void check_mcp_url(mcpr_config *cfg, const mcpr__toml_entry *e) {
  const char *u = cfg->mcp;
  size_t skip = strncasecmp(u, "http://", 7) == 0 ? 7 : strncasecmp(u, "https://", 8) == 0 ? 8 : 0;
  if (!skip) {
    add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column,
             "mcp must be an http:// or https:// URL (e.g. \"http://127.0.0.1:9000/mcp\")");
    return;
  }
  const char *host = u + skip;
  if (*host == '\0' || *host == '/' || *host == ':' || strchr(host, ' '))
    add_diag(cfg, MCPR_CONFIG_ERROR, e->value->line, e->value->column,
             "mcp must name a host (e.g. \"http://127.0.0.1:9000/mcp\")");
}

size_t mcpr_config_require_proxy(mcpr_config *cfg) {
  if (cfg->mcp)
    return 0;
  add_diag(cfg, MCPR_CONFIG_ERROR, 0, 0,
           "mcp is not set: the proxy needs the upstream MCP server's URL "
           "(mcp = \"http://127.0.0.1:9000/mcp\")");
  return 1;
}

/* Returns true when e is one of the proxy's top-level keys (handled). */
static bool check_proxy_key(mcpr_config *cfg, const mcpr__toml_entry *e) {
  static const char *const log_formats[] = {"json", "pretty", "off", NULL};
  const char *k = e->key;
  if (strcmp(k, "listen") == 0)
    take_string(cfg, NULL, e, &cfg->listen);
  else if (strcmp(k, "admin_bind") == 0)
    take_string(cfg, NULL, e, &cfg->admin_bind);
  else if (strcmp(k, "log_format") == 0)
    take_one_of(cfg, e, log_formats, "\"json\", \"pretty\" or \"off\"", &cfg->log_format);
  else if (strcmp(k, "drain_timeout") == 0)
    take_duration_ms(cfg, e, INT64_C(3600000), &cfg->drain_timeout_ms);
  else if (strcmp(k, "connect_timeout") == 0)
    take_duration_ms(cfg, e, INT64_C(3600000), &cfg->connect_timeout_ms);
  else if (strcmp(k, "request_timeout") == 0)
    take_duration_ms(cfg, e, INT64_C(86400000), &cfg->request_timeout_ms);
  else if (strcmp(k, "max_request_body_size") == 0)
    take_size(cfg, e, &cfg->max_request_body_size);
  else if (strcmp(k, "max_response_body_size") == 0)
    take_size(cfg, e, &cfg->max_response_body_size);
  else if (strcmp(k, "max_concurrent_upstream") == 0)
    take_int(cfg, NULL, e, 1, 100000, &cfg->max_concurrent_upstream);
  else if (strcmp(k, "allowed_origins") == 0)
    take_allowed_origins(cfg, e);
  else
    return false;
  return true;
}

static void check_root(mcpr_config *cfg, const mcpr__toml_value *root) {
  for (size_t i = 0; i < root->n_entries; i++) {
    const mcpr__toml_entry *e = &root->entries[i];
    if (strcmp(e->key, "name") == 0)
      take_string(cfg, NULL, e, &cfg->name);
    else if (strcmp(e->key, "mcp") == 0) {
      if (take_string(cfg, NULL, e, &cfg->mcp))
        check_mcp_url(cfg, e);
    }
    else if (strcmp(e->key, "port") == 0)
      take_int(cfg, NULL, e, 1, 65535, &cfg->port);
    else if (strcmp(e->key, "store") == 0) {
      if (is_table(cfg, e))
        check_store(cfg, e->value);
    } else if (strcmp(e->key, "cloud") == 0) {
      if (is_table(cfg, e))
        check_cloud(cfg, e->value);
    } else if (!check_proxy_key(cfg, e))
      unknown_key(cfg, NULL, e);
  }
}

/* Sort diagnostics by line so they read in file order. */
static int diag_cmp(const void *a, const void *b) {
  const mcpr_config_diag *x = a, *y = b;
  if (x->line != y->line)
    return x->line < y->line ? -1 : 1;
  return x->column < y->column ? -1 : x->column > y->column;
}

/* A finding that could not be recorded must not let the config pass. */
static mcpr_status lost_diag_error(const mcpr_config *cfg, mcpr_error *err) {
  return mcpr_error_set(err, MCPR_ENOMEM, "out of memory checking %s", cfg->file_path);
}

static mcpr_status first_error(const mcpr_config *cfg, mcpr_error *err) {
  for (size_t i = 0; i < cfg->n_diags_; i++) {
    const mcpr_config_diag *d = &cfg->diags_[i];
    if (d->severity == MCPR_CONFIG_ERROR)
      return mcpr_error_set(err, MCPR_EPARSE, "%s:%d:%d: %s", cfg->file_path, d->line, d->column,
                            d->message);
  }
  return MCPR_OK;
}

mcpr_status mcpr__config_from_text(mcpr_config *cfg, const char *text, size_t len,
                                   mcpr_error *err) {
  mcpr__toml_value *root = NULL;
  mcpr__toml_error te;
  if (!mcpr__toml_parse(text, len, &root, &te)) {
    if (te.out_of_memory)
      return mcpr_error_set(err, MCPR_ENOMEM, "out of memory reading %s", cfg->file_path);
    add_diag(cfg, MCPR_CONFIG_ERROR, te.line, te.column, "%s", te.message);
    return cfg->diags_lost_ ? lost_diag_error(cfg, err) : first_error(cfg, err);
  }
  check_root(cfg, root);
  mcpr__toml_free(root);
  if (cfg->diags_lost_)
    return lost_diag_error(cfg, err);
  if (cfg->n_diags_ > 1)
    qsort(cfg->diags_, cfg->n_diags_, sizeof *cfg->diags_, diag_cmp);
  return first_error(cfg, err);
}

mcpr_status mcpr_config_load_string(const char *text, size_t len, const char *source_name,
                                    mcpr_config **out, mcpr_error *err) {
  *out = config_new(source_name);
  if (!*out)
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory reading the config");
  (*out)->file_exists = true;
  return mcpr__config_from_text(*out, text, len, err);
}

mcpr_status mcpr__config_read_file(const char *path, bool missing_ok, char **text, size_t *len,
                                   bool *exists, unsigned *mode, mcpr_error *err) {
  *text = NULL;
  *len = 0;
  *exists = false;
  if (mode)
    *mode = 0;
  mcpr_status st = MCPR_OK;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && missing_ok)
      return MCPR_OK;
    if (errno == ENOENT)
      return mcpr_error_set(err, MCPR_ENOTFOUND, "config file %s does not exist", path);
    return mcpr_error_set(err, MCPR_EIO, "cannot open config file %s: %s", path, strerror(errno));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    st = mcpr_error_set(err, MCPR_EIO, "config file %s is not a regular file", path);
    goto out;
  }
  if (sb.st_size > MCPR__TOML_MAX_BYTES) {
    st = mcpr_error_set(err, MCPR_ETOOBIG, "config file %s is larger than %d bytes", path,
                        MCPR__TOML_MAX_BYTES);
    goto out;
  }
  char *buf = malloc(MCPR__TOML_MAX_BYTES + 2);
  if (!buf) {
    st = mcpr_error_set(err, MCPR_ENOMEM, "out of memory reading %s", path);
    goto out;
  }
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, MCPR__TOML_MAX_BYTES + 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      st = mcpr_error_set(err, MCPR_EIO, "cannot read config file %s: %s", path, strerror(errno));
      free(buf);
      goto out;
    }
    if (r == 0)
      break;
    n += (size_t)r;
    if (n > MCPR__TOML_MAX_BYTES) {
      st = mcpr_error_set(err, MCPR_ETOOBIG, "config file %s is larger than %d bytes", path,
                          MCPR__TOML_MAX_BYTES);
      free(buf);
      goto out;
    }
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  *exists = true;
  if (mode)
    *mode = (unsigned)(sb.st_mode & 07777);
out:
  close(fd);
  return st;
}

/*
 * A token in a file that group or others can read is a token for anyone on
 * the machine: say so, with the fix. (SPEC §8: secrets' files are 0600.)
 * The warning goes first, as a finding about the whole file (line 0).
 */
static void check_token_file_mode(mcpr_config *cfg, unsigned mode) {
  if (!cfg->cloud.token || !(mode & 077))
    return;
  size_t before = cfg->n_diags_;
  add_diag(cfg, MCPR_CONFIG_WARNING, 0, 0,
           "[cloud] token is in a file that %s can read (mode %04o); run: chmod 600 %s",
           (mode & 070) && (mode & 07) ? "group and others"
                           : (mode & 070)            ? "group"
                                                     : "others",
           mode, cfg->file_path);
  if (cfg->n_diags_ == before)
    return;
  mcpr_config_diag d = cfg->diags_[before];
  d.secret_at_risk = true;
  memmove(&cfg->diags_[1], &cfg->diags_[0], before * sizeof d);
  cfg->diags_[0] = d;
}

mcpr_status mcpr_config_load(const char *path, mcpr_config **out, mcpr_error *err) {
  *out = NULL;
  bool explicit_path = path && *path;
  const char *p = explicit_path ? path : MCPR_CONFIG_DEFAULT_PATH;
  char *text = NULL;
  size_t len = 0;
  bool exists = false;
  unsigned mode = 0;
  mcpr_status st = mcpr__config_read_file(p, !explicit_path, &text, &len, &exists, &mode, err);
  if (st != MCPR_OK)
    return st;
  mcpr_config *cfg = config_new(p);
  if (!cfg) {
    free(text);
    return mcpr_error_set(err, MCPR_ENOMEM, "out of memory reading the config");
  }
  cfg->file_exists = exists;
  if (exists)
    st = mcpr__config_from_text(cfg, text, len, err);
  free(text);
  if (exists && st != MCPR_ENOMEM)
    check_token_file_mode(cfg, mode);
  if (st == MCPR_OK && cfg->diags_lost_)
    st = lost_diag_error(cfg, err);
  *out = cfg;
  return st;
}

char *mcpr_config_store_path(const mcpr_config *cfg, const char *override_path, mcpr_error *err) {
  if (override_path && *override_path)
    return mcpr_store_resolve_path(override_path, err);
  if (cfg && cfg->store.url)
    return mcpr_store_resolve_path(cfg->store.url, err);
  const char *path = cfg ? cfg->store.path : NULL;
  if (path && strncmp(path, "~/", 2) == 0) {
    const char *home = getenv("HOME");
    if (!home || !*home) {
      mcpr_error_set(err, MCPR_EINVAL, "store.path starts with ~/ but HOME is not set");
      return NULL;
    }
    size_t n = strlen(home) + strlen(path);
    char *full = malloc(n);
    if (!full) {
      mcpr_error_set(err, MCPR_ENOMEM, "out of memory resolving the store path");
      return NULL;
    }
    snprintf(full, n, "%s/%s", home, path + 2);
    char *out = mcpr_store_resolve_path(full, err);
    free(full);
    return out;
  }
  return mcpr_store_resolve_path(path, err);
}

const char *mcpr_config_cloud_endpoint(const mcpr_config *cfg) {
  return cfg && cfg->cloud.endpoint ? cfg->cloud.endpoint : MCPR_CLOUD_DEFAULT_URL;
}

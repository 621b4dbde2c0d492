/*
 * config.h — mcpr.toml (SPEC §9): reading, validating, and updating the
 * [cloud] section in place.
 *
 *   mcpr_config *cfg = NULL;
 *   mcpr_error err = {0};
 *   mcpr_status st = mcpr_config_load(NULL, &cfg, &err);   // ./mcpr.toml
 *   if (!cfg) { ...err.message... }                         // unreadable
 *   for (size_t i = 0; i < mcpr_config_diag_count(cfg); i++) ...  // warnings, errors
 *   if (st == MCPR_OK) { use cfg->store, cfg->cloud ... }
 *   mcpr_config_free(cfg);
 *
 * The file is a TOML subset read by mcpr's own parser (Debian 12 ships no C
 * TOML library): tables, dotted keys, strings, numbers, booleans, arrays,
 * inline tables, comments. Input is bounded: 1 MiB, 16 KiB per line, 32
 * levels of nesting.
 */
#ifndef MCPR_CONFIG_H
#define MCPR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MCPR_CONFIG_DEFAULT_PATH "mcpr.toml"
#define MCPR_CLOUD_DEFAULT_URL "https://api.mcpr.app"
#define MCPR_CONFIG_DEFAULT_BATCH_SIZE 100
#define MCPR_CONFIG_DEFAULT_FLUSH_INTERVAL_MS 5000
#define MCPR_CONFIG_DEFAULT_PORT 3000
#define MCPR_CONFIG_DEFAULT_ADMIN_BIND "127.0.0.1:9901"
#define MCPR_CONFIG_DEFAULT_DRAIN_TIMEOUT_MS 30000
#define MCPR_CONFIG_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define MCPR_CONFIG_DEFAULT_REQUEST_TIMEOUT_MS 30000
#define MCPR_CONFIG_DEFAULT_MAX_REQUEST_BODY (5 * 1000 * 1000)
#define MCPR_CONFIG_DEFAULT_MAX_RESPONSE_BODY (10 * 1000 * 1000)
#define MCPR_CONFIG_DEFAULT_MAX_CONCURRENT_UPSTREAM 100
#define MCPR_CONFIG_DEFAULT_ROLLUP_RETENTION_MS (INT64_C(400) * 86400000)

typedef enum mcpr_config_severity {
  MCPR_CONFIG_WARNING = 1, /* reported, not fatal (e.g. an unknown key) */
  MCPR_CONFIG_ERROR = 2,   /* the config cannot be used */
} mcpr_config_severity;

/*
 * One finding about the file. line/column are 1-based; 0 = whole file.
 * Messages name keys, never the text of a value (the file holds a token).
 */
typedef struct mcpr_config_diag {
  mcpr_config_severity severity;
  int line;
  int column;
  char message[256];
  /* A secret is exposed (a file holding [cloud] token that group or others
   * can read; the message names the file and the fix, chmod 600): every
   * command that loads the config should show it, not only a check. */
  bool secret_at_risk;
} mcpr_config_diag;

/*
 * The resolved config. Every string is owned by the config (freed by
 * mcpr_config_free) and NULL when the key is absent.
 */
typedef struct mcpr_config {
  char *file_path;  /* the path that was read (or looked for) */
  bool file_exists; /* false: the default file was absent, defaults apply */

  char *name; /* top-level `name` (proxy name) */
  char *mcp;  /* top-level `mcp` (upstream URL) */
  int64_t port; /* top-level `port`; 0 when absent */

  /*
   * The proxy's settings (top level, SPEC §9), defaults filled in at load.
   * Durations are written as an integer of seconds or a string with a unit
   * ("30s", "500ms", "2m"); sizes as an integer of bytes or a string with
   * KB/MB/GB (powers of 1000) or KiB/MiB/GiB.
   */
  char *listen;           /* `listen`: "ADDR" or "ADDR:PORT"; NULL: 127.0.0.1 */
  char *log_format;       /* `log_format`: "json", "pretty" or "off"; NULL: not set */
  char *admin_bind;       /* `admin_bind`: "ADDR:PORT" or "off"; NULL: 127.0.0.1:9901 */
  int64_t drain_timeout_ms;        /* default 30000 */
  int64_t connect_timeout_ms;      /* default 5000 */
  int64_t request_timeout_ms;      /* default 30000 */
  int64_t max_request_body_size;   /* bytes, default 5 MB */
  int64_t max_response_body_size;  /* bytes, default 10 MB */
  int64_t max_concurrent_upstream; /* default 100 */
  /* `allowed_origins`: extra Origin values ("https://app.example.com")
   * accepted beside the loopback ones; "*" accepts any. */
  char **allowed_origins;
  size_t n_allowed_origins;

  struct {
    bool enabled; /* default true */
    char *path;   /* as written in the file (NULL: platform default) */
    char *name;
    /* Retention (durations such as "30d": an integer and one of s m h d
     * w); 0 when absent: requests and sessions are kept forever.
     * keep_errors: requests whose status is not ok are kept this long
     * (at least retention). rollup_retention (default 400d, at least
     * retention and keep_errors; only applied when retention is set):
     * the hourly rollups that keep counting deleted requests. */
    int64_t retention_ms;
    int64_t keep_errors_ms;
    int64_t rollup_retention_ms;
    char *url;    /* a store URL (postgresql://…, sqlite:PATH); NULL: path */
  } store;

  struct {
    char *token;
    char *server;
    char *endpoint; /* ingest base URL; NULL: MCPR_CLOUD_DEFAULT_URL */
    int64_t batch_size;        /* default 100 */
    int64_t flush_interval_ms; /* default 5000 */
  } cloud;

  /* private: use mcpr_config_diag_count / mcpr_config_diag_at */
  mcpr_config_diag *diags_;
  size_t n_diags_, cap_diags_;
  bool diags_lost_; /* a finding could not be recorded (out of memory) */
} mcpr_config;

/*
 * Read and validate the config at path (NULL or "": ./mcpr.toml).
 *
 *   MCPR_OK      read, no errors (there may be warnings); *out is set.
 *                A file holding [cloud] token whose mode lets group or
 *                others read it gets a warning (line 0, first, with
 *                secret_at_risk set) naming the file and `chmod 600 FILE`.
 *   MCPR_EPARSE  a syntax error or invalid values; *out is still set and
 *                holds every diagnostic (err has the first error, with
 *                its line and column), so the caller can list them all.
 *   MCPR_ENOTFOUND  an explicit path does not exist (*out NULL). A missing
 *                default ./mcpr.toml is not an error: defaults, file_exists
 *                false, MCPR_OK.
 *   MCPR_ETOOBIG    the file is larger than 1 MiB (*out NULL).
 *   MCPR_EIO / MCPR_ENOMEM (*out NULL).
 * *out is new: free it with mcpr_config_free().
 */
MCPR_API mcpr_status mcpr_config_load(const char *path, mcpr_config **out, mcpr_error *err);

/*
 * The same from text in memory; source_name is used in messages (may be
 * NULL). file_exists is true.
 */
MCPR_API mcpr_status mcpr_config_load_string(const char *text, size_t len, const char *source_name,
                                             mcpr_config **out, mcpr_error *err);

/* NULL is a no-op. */
MCPR_API void mcpr_config_free(mcpr_config *cfg);

MCPR_API size_t mcpr_config_diag_count(const mcpr_config *cfg);
/* Borrowed; NULL when i is out of range. In file order. */
MCPR_API const mcpr_config_diag *mcpr_config_diag_at(const mcpr_config *cfg, size_t i);
MCPR_API size_t mcpr_config_error_count(const mcpr_config *cfg);
/*
 * What `mcpr validate` asks beyond the file being valid: the keys a proxy
 * cannot run without (mcp). Adds an error finding (line 0) for each one
 * missing; returns how many.
 */
MCPR_API size_t mcpr_config_require_proxy(mcpr_config *cfg);

/*
 * The store this config selects (SPEC §4): store.url, else store.path (a
 * leading "~/" is the home directory), else $MCPR_DB, else ~/.mcpr/store.db — through
 * mcpr_store_resolve_path(). override_path (e.g. the CLI's --db) wins when
 * non-NULL and non-empty. Returns a new string (free()) or NULL with err.
 */
MCPR_API char *mcpr_config_store_path(const mcpr_config *cfg, const char *override_path,
                                      mcpr_error *err);

/* Set the store options this config decides (retention, keep_errors,
 * rollup_retention) in o, which mcpr_store_options_init() filled. */
struct mcpr_store_options;
MCPR_API void mcpr_config_store_options(const mcpr_config *cfg, struct mcpr_store_options *o);

/* cloud.endpoint or MCPR_CLOUD_DEFAULT_URL (borrowed). */
MCPR_API const char *mcpr_config_cloud_endpoint(const mcpr_config *cfg);

/*
 * Set [cloud] token, server and endpoint in the file at path (NULL: ./mcpr.toml),
 * in place: an existing value is replaced where it stands, a missing key is
 * added to the [cloud] table (which is appended when absent); every other
 * line, comment and the order of keys stay as they were. A NULL value
 * leaves that key untouched. A missing file is created. The new file is
 * written beside the old one and renamed over it (atomic), with mode 0600
 * when it holds a token (otherwise the old mode is kept). Fails with
 * MCPR_EPARSE when the current file does not parse (nothing is written).
 */
MCPR_API mcpr_status mcpr_config_set_cloud(const char *path, const char *token, const char *server,
                                           const char *endpoint, mcpr_error *err);

/*
 * The same on text in memory: *out is a new NUL-terminated string with the
 * change applied (free()).
 */
MCPR_API mcpr_status mcpr_config_set_cloud_text(const char *text, size_t len, const char *token,
                                                const char *server, const char *endpoint,
                                                char **out, mcpr_error *err);

#ifdef __cplusplus
}
#endif
#endif

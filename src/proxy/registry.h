/*
 * registry.h — the proxies of this user: one folder per proxy name under
 * ~/.mcpr/proxies/NAME/ (where the original mcpr keeps them), holding
 *
 *   lock.json       while the proxy runs: {name, pid, port, upstream_url,
 *                   listen_addr, started_at, config_path} (mode 0600);
 *                   removed at a clean exit.
 *   reload_request  `mcpr proxy reload` → proxy: "NONCE\nCONFIG_PATH\n"
 *   reload_result   proxy → `mcpr proxy reload`: "NONCE\napplied|rejected\nMESSAGE\n"
 *
 * The folder outlives the proxy: a folder without lock.json is a stopped
 * proxy (as in the original); `mcpr proxy delete` removes it. A lock whose
 * pid is dead, or is not an mcpr process any more (pid reuse), is stale.
 * Folders are 0700, files 0600.
 *
 * Used by `mcpr proxy run` (acquire, release, reload) and by the list,
 * stop, reload, delete and status commands; nothing here prints.
 */
#ifndef MCPR_PROXY_REGISTRY_H
#define MCPR_PROXY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mcpr/error.h"

#define MCPR_REGISTRY_NAME_MAX 64

typedef enum mcpr_proxy_state {
  MCPR_PROXY_STOPPED = 0, /* a folder, no lock */
  MCPR_PROXY_RUNNING = 1, /* a lock held by a live mcpr process */
  MCPR_PROXY_STALE = 2,   /* a lock left by a process that is gone */
} mcpr_proxy_state;

typedef struct mcpr_proxy_entry {
  char name[MCPR_REGISTRY_NAME_MAX + 1];
  mcpr_proxy_state state;
  /* From lock.json; zero/empty when stopped. */
  pid_t pid;
  int port;
  int64_t started_at; /* unix seconds */
  char upstream_url[1024];
  char listen_addr[256];
  char config_path[1024];
} mcpr_proxy_entry;

/* "running", "stale", "stopped". */
const char *mcpr_proxy_state_name(mcpr_proxy_state s);

/* A name usable as a folder: 1–64 of [A-Za-z0-9._-], not starting with '.'. */
bool mcpr_registry_name_ok(const char *name);

/* "http://localhost:PORT" (as the original shows it; [::1] style kept for v6). */
void mcpr_registry_localhost_url(const mcpr_proxy_entry *e, char *buf, size_t size);

/*
 * Take the lock for e->name with e's fields (pid is set to getpid(),
 * started_at to now). A stale lock is replaced. MCPR_EBUSY when a live
 * proxy holds it: *holder (may be NULL) receives its entry.
 */
mcpr_status mcpr_registry_acquire(mcpr_proxy_entry *e, mcpr_proxy_entry *holder, mcpr_error *err);
/* Remove name's lock if this process holds it (clean exit). */
void mcpr_registry_release(const char *name);

/* name's entry; MCPR_ENOTFOUND when there is no such proxy. */
mcpr_status mcpr_registry_get(const char *name, mcpr_proxy_entry *out, mcpr_error *err);
/* Every proxy, sorted by name; *out is new (free()), NULL when none. */
mcpr_status mcpr_registry_list(mcpr_proxy_entry **out, size_t *n, mcpr_error *err);

/*
 * Stop name: SIGTERM, then wait up to timeout_ms for the process to exit
 * and remove the lock. A stale lock is removed (*was->state says which).
 * MCPR_ENOTFOUND: not running (stopped or unknown); MCPR_ETIMEDOUT: still
 * alive after timeout_ms (the lock is kept).
 */
mcpr_status mcpr_registry_stop(const char *name, int timeout_ms, mcpr_proxy_entry *was,
                               mcpr_error *err);

/* Remove name's folder. MCPR_EBUSY while it runs; MCPR_ENOTFOUND if unknown. */
mcpr_status mcpr_registry_delete(const char *name, mcpr_error *err);

/* --- reload handshake (`mcpr proxy reload` ↔ the running proxy) --- */

typedef enum { MCPR_RELOAD_APPLIED = 1, MCPR_RELOAD_REJECTED = 2 } mcpr_reload_outcome;

/* CLI side: write the request (config_path may be empty: the proxy's own). */
mcpr_status mcpr_registry_reload_request(const char *name, uint64_t nonce,
                                         const char *config_path, mcpr_error *err);
/* Proxy side: read the last request and remove it; false when there is none. */
bool mcpr_registry_reload_read_request(const char *name, uint64_t *nonce, char *config_path,
                                       size_t size);
/* Proxy side: write the outcome (atomically: temp file + rename). */
mcpr_status mcpr_registry_reload_result(const char *name, uint64_t nonce,
                                        mcpr_reload_outcome outcome, const char *message);
/* CLI side: true when a result for nonce is there; message receives its text. */
bool mcpr_registry_reload_read_result(const char *name, uint64_t nonce,
                                      mcpr_reload_outcome *outcome, char *message, size_t size);

#endif

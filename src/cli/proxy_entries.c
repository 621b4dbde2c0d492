/* proxy_entries.c — the registry's proxies as JSON and as a table. */
#include "proxy_entries.h"

#include <string.h>
#include <time.h>

#include "format.h"

static json_t *str_or_null(const char *s) { return s && *s ? json_string(s) : json_null(); }

json_t *cli_proxy_entry_json(const mcpr_proxy_entry *e) {
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(e->name));
  json_object_set_new(o, "status", json_string(mcpr_proxy_state_name(e->state)));
  if (e->state == MCPR_PROXY_STOPPED)
    return o;
  json_object_set_new(o, "pid", json_integer(e->pid));
  json_object_set_new(o, "port", json_integer(e->port));
  json_object_set_new(o, "started_at", json_integer(e->started_at));
  json_object_set_new(o, "config_path", str_or_null(e->config_path));
  if (e->state == MCPR_PROXY_RUNNING) {
    char url[64];
    mcpr_registry_localhost_url(e, url, sizeof url);
    json_object_set_new(o, "localhost_url", json_string(url));
    json_object_set_new(o, "tunnel_url", json_null());
    json_object_set_new(o, "upstream_url", str_or_null(e->upstream_url));
  }
  return o;
}

json_t *cli_proxy_entry_status_json(const mcpr_proxy_entry *e) {
  json_t *o = json_object();
  bool has_lock = e->state != MCPR_PROXY_STOPPED;
  char url[64];
  mcpr_registry_localhost_url(e, url, sizeof url);
  json_object_set_new(o, "name", json_string(e->name));
  json_object_set_new(o, "status", json_string(mcpr_proxy_state_name(e->state)));
  json_object_set_new(o, "port", has_lock ? json_integer(e->port) : json_null());
  json_object_set_new(o, "pid", has_lock ? json_integer(e->pid) : json_null());
  json_object_set_new(o, "localhost_url",
                      e->state == MCPR_PROXY_RUNNING ? json_string(url) : json_null());
  return o;
}

void cli_proxy_entries_print(FILE *out, const mcpr_proxy_entry *v, size_t n) {
  static const char *const headers[] = {"NAME", "STATUS", ">PID", ">PORT", "URL", "UPSTREAM",
                                        "STARTED"};
  fmt_table *t = fmt_table_new(7, headers);
  for (size_t i = 0; t && i < n; i++) {
    const mcpr_proxy_entry *e = &v[i];
    bool has_lock = e->state != MCPR_PROXY_STOPPED;
    char pid[32] = "-", port[32] = "-", url[64] = "-", started[64] = "-";
    if (has_lock) {
      snprintf(pid, sizeof pid, "%ld", (long)e->pid);
      snprintf(port, sizeof port, "%d", e->port);
      time_t ts = (time_t)e->started_at;
      struct tm tm;
      if (localtime_r(&ts, &tm))
        strftime(started, sizeof started, "%Y-%m-%d %H:%M:%S", &tm);
    }
    if (e->state == MCPR_PROXY_RUNNING)
      mcpr_registry_localhost_url(e, url, sizeof url);
    const char *state = mcpr_proxy_state_name(e->state);
    fmt_table_cell(t, e->name, NULL);
    fmt_table_cell(t, state,
                   e->state == MCPR_PROXY_RUNNING ? FMT_GREEN
                   : e->state == MCPR_PROXY_STALE ? FMT_YELLOW
                                                  : FMT_DIM);
    fmt_table_cell(t, pid, NULL);
    fmt_table_cell(t, port, NULL);
    fmt_table_cell(t, url, NULL);
    fmt_table_cell(t, has_lock && e->upstream_url[0] ? e->upstream_url : "-", NULL);
    fmt_table_cell(t, started, NULL);
  }
  if (t)
    fmt_table_print(t, out, fmt_use_color(), true);
  fmt_table_free(t);
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "mcpr/util.h"

const char *const bench_gen_tools[] = {
    "search_docs", "get_issue",   "create_issue", "list_files", "read_file", "write_file",
    "run_query",   "get_weather", "send_email",   "summarize",  "translate", "fetch_url",
    NULL,
};
#define N_TOOLS 12

static const char *const CLIENTS[][2] = {
    {"claude-desktop", "0.9.3"}, {"cursor", "1.4.2"},        {"Visual Studio Code", "1.104.0"},
    {"chatgpt", "2025.10"},      {"windsurf", "1.12.0"},     {"GitHub Copilot", "1.300.0"},
    {"claude-code", "2.0.14"},   {"mcp-inspector", "0.16.0"},
};
#define N_CLIENTS 8

static const char *const ERRORS[][2] = {
    {"-32602", "Invalid params: missing required argument 'query'"},
    {"-32603", "Internal error: upstream database connection reset by peer"},
    {"-32601", "Method not found"},
    {"-32000", "Tool execution failed: rate limit exceeded, retry after 30s"},
};

typedef struct session_state {
  char id[64];
  int remaining; /* requests left before it ends; 0: not started */
  bool started;
} session_state;

struct bench_gen {
  uint64_t rng;
  bench_gen_options o;
  session_state *sessions;
  unsigned next_session;
  int64_t ts_us;
  uint64_t serial;
  char request_id[MCPR_UUID_STRLEN + 1];
  char uri[128], errmsg[160];
  mcpr_store_event ev;
  unsigned finish_at;
};

static uint64_t rnd(bench_gen *g) {
  /* splitmix64 */
  uint64_t z = (g->rng += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static double unit(bench_gen *g) { return (double)(rnd(g) >> 11) / 9007199254740992.0; }

/* Log-normal with the given median; clamped. */
static int64_t lognormal(bench_gen *g, double median, double sigma, int64_t lo, int64_t hi) {
  double u1 = unit(g), u2 = unit(g);
  if (u1 < 1e-12)
    u1 = 1e-12;
  double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
  double v = median * exp(sigma * z);
  if (v < (double)lo)
    return lo;
  if (v > (double)hi)
    return hi;
  return (int64_t)v;
}

bench_gen *bench_gen_new(const bench_gen_options *o) {
  bench_gen *g = calloc(1, sizeof *g);
  if (!g)
    return NULL;
  g->o = *o;
  if (!g->o.sessions)
    g->o.sessions = 1;
  if (!g->o.id_prefix)
    g->o.id_prefix = "s";
  if (g->o.step_us <= 0)
    g->o.step_us = 1000;
  g->rng = o->seed * 0x2545F4914F6CDD1Dull + 1;
  g->sessions = calloc(g->o.sessions, sizeof *g->sessions);
  if (!g->sessions) {
    free(g);
    return NULL;
  }
  g->ts_us = o->start_ts_ms * 1000;
  return g;
}

void bench_gen_free(bench_gen *g) {
  if (!g)
    return;
  free(g->sessions);
  free(g);
}

static const mcpr_store_event *make_request(bench_gen *g, session_state *s) {
  int64_t ts_ms = g->ts_us / 1000;
  mcpr_uuid_v7(ts_ms, g->request_id);
  mcpr_request_event *r = &g->ev.u.request;
  memset(&g->ev, 0, sizeof g->ev);
  g->ev.kind = MCPR_STORE_EVENT_REQUEST;
  r->request_id = g->request_id;
  r->ts_ms = ts_ms;
  r->proxy = (rnd(g) % 10) < 8 ? "api-server" : "docs-server";
  r->session_id = s ? s->id : NULL;
  double m = unit(g);
  if (m < 0.78) {
    r->method = "tools/call";
    /* Skewed: a few tools get most calls. */
    unsigned t = (unsigned)(N_TOOLS * unit(g) * unit(g));
    r->tool = bench_gen_tools[t < N_TOOLS ? t : N_TOOLS - 1];
    r->latency_us = lognormal(g, 40000.0 * (1 + t % 4), 1.1, 150, 30000000);
  } else if (m < 0.86) {
    r->method = "tools/list";
    r->latency_us = lognormal(g, 3000, 0.6, 100, 2000000);
  } else if (m < 0.92) {
    r->method = "resources/read";
    snprintf(g->uri, sizeof g->uri, "file:///docs/page-%u.md", (unsigned)(rnd(g) % 200));
    r->resource_uri = g->uri;
    r->latency_us = lognormal(g, 8000, 0.9, 100, 5000000);
  } else if (m < 0.95) {
    r->method = "prompts/get";
    r->prompt_name = (rnd(g) & 1) ? "code_review" : "summarize_thread";
    r->latency_us = lognormal(g, 2000, 0.5, 100, 1000000);
  } else if (m < 0.98) {
    r->method = "resources/list";
    r->latency_us = lognormal(g, 2500, 0.5, 100, 1000000);
  } else {
    r->method = "ping";
    r->latency_us = lognormal(g, 400, 0.4, 50, 100000);
  }
  double st = unit(g);
  if (st < 0.05) {
    unsigned e = (unsigned)(rnd(g) % 4);
    r->status = MCPR_REQUEST_ERROR;
    r->error_code = ERRORS[e][0];
    r->error_msg = ERRORS[e][1];
  } else if (st < 0.065) {
    r->status = MCPR_REQUEST_TIMEOUT;
    r->error_msg = "upstream did not answer within 30s";
    r->latency_us = 30000000;
  } else {
    r->status = MCPR_REQUEST_OK;
  }
  r->bytes_in = lognormal(g, 300, 0.8, 40, 200000);
  r->bytes_out = (rnd(g) % 50) ? lognormal(g, 4000, 1.3, 60, 5000000) : -1;
  return &g->ev;
}

const mcpr_store_event *bench_gen_next(bench_gen *g) {
  g->ts_us += (int64_t)(g->o.step_us * 2 * unit(g)) + 1;
  g->serial++;
  /* 1 in 50 requests carries no session (pre-handshake probes). */
  if (rnd(g) % 50 == 0)
    return make_request(g, NULL);
  session_state *s = &g->sessions[g->next_session];
  g->next_session = (g->next_session + 1) % g->o.sessions;
  if (!s->started) {
    s->started = true;
    s->remaining = (int)lognormal(g, 60, 1.0, 1, 5000);
    snprintf(s->id, sizeof s->id, "%s-%08llx-%04x", g->o.id_prefix,
             (unsigned long long)(rnd(g) & 0xFFFFFFFFull), (unsigned)(g->serial & 0xFFFF));
    memset(&g->ev, 0, sizeof g->ev);
    g->ev.kind = MCPR_STORE_EVENT_SESSION;
    unsigned c = (unsigned)(rnd(g) % N_CLIENTS);
    g->ev.u.session = (mcpr_session_event){s->id, "api-server", g->ts_us / 1000,
                                           CLIENTS[c][0], CLIENTS[c][1], NULL};
    return &g->ev;
  }
  if (s->remaining-- <= 0) {
    s->started = false;
    if (rnd(g) % 10 < 7) {
      memset(&g->ev, 0, sizeof g->ev);
      g->ev.kind = MCPR_STORE_EVENT_SESSION_CLOSED;
      g->ev.u.session_closed = (mcpr_session_closed_event){s->id, g->ts_us / 1000};
      return &g->ev;
    }
  }
  return make_request(g, s);
}

const mcpr_store_event *bench_gen_finish(bench_gen *g) {
  while (g->finish_at < g->o.sessions) {
    session_state *s = &g->sessions[g->finish_at++];
    if (s->started && rnd(g) % 2) {
      s->started = false;
      memset(&g->ev, 0, sizeof g->ev);
      g->ev.kind = MCPR_STORE_EVENT_SESSION_CLOSED;
      g->ev.u.session_closed = (mcpr_session_closed_event){s->id, g->ts_us / 1000};
      return &g->ev;
    }
  }
  return NULL;
}

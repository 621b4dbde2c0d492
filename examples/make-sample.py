#!/usr/bin/env python3
"""Generate examples/sample-traffic.ndjson: an hour of realistic MCP proxy
events (SPEC §3 wire format) for the README demo and the ingest tests.

The output is deterministic: the random generator is seeded and every `ts`
is fixed, spread over the hour before BASE_MS (2026-01-01T00:00:00Z), so
the file never changes between runs. To get events that fall inside
`--since 1h` right now, regenerate with the current time as the base:

    python3 examples/make-sample.py --base now > /tmp/traffic.ndjson
"""
import json
import random
import sys
import time

BASE_MS = 1767225600000  # 2026-01-01T00:00:00Z
PROXY = "docs-api"
UPSTREAM = "http://127.0.0.1:9000/mcp"

CLIENTS = [
    ("claude-desktop", "0.9.2", "claude"),
    ("cursor", "0.42.3", "cursor"),
    ("Visual Studio Code (GitHub Copilot)", "1.95.0", "vscode"),
    ("chatgpt", "2025.11", "chatgpt"),
]
TOOLS = {  # name: (median latency ms, error rate)
    "search_docs": (45, 0.03),
    "get_page": (20, 0.01),
    "run_query": (320, 0.08),
    "create_issue": (150, 0.05),
    "summarize": (900, 0.04),
}
RESOURCES = ["docs://guides/getting-started", "docs://api/reference", "file:///srv/docs/CHANGELOG.md"]
PROMPTS = ["review-pr", "explain-error"]


def uuid7(ts_ms, rnd):
    """A UUIDv7-shaped id: 48-bit ms timestamp, version 7, variant 10."""
    a = rnd.getrandbits(12)
    b = rnd.getrandbits(62)
    v = (ts_ms << 80) | (0x7 << 76) | (a << 64) | (0b10 << 62) | b
    h = f"{v:032x}"
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def request(rnd, ts, sid, client, mcp_method, tool=None, uri=None, prompt=None,
            latency_ms=10, status=200, error=None, note=""):
    lat_us = int(latency_ms * 1000)
    code, msg = error if error else (None, None)
    return {
        "type": "request", "id": uuid7(ts, rnd), "ts": ts, "proxy": PROXY,
        "session_id": sid, "method": "POST", "path": "/mcp", "mcp_method": mcp_method,
        "tool": tool, "resource_uri": uri, "prompt_name": prompt, "status": status,
        "latency_us": lat_us, "upstream_us": max(0, lat_us - rnd.randint(80, 400)),
        "request_size": rnd.randint(120, 900), "response_size": None if status >= 500 else rnd.randint(200, 48000),
        "error_code": code, "error_msg": msg, "client_name": client[0], "client_version": client[1],
        "note": note,
    }


def tools_payload(names):
    return {"tools": [{"name": n, "description": f"{n.replace('_', ' ')}",
                       "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}
                      for n in names]}


def schema_event(rnd, ts, version, names):
    payload = tools_payload(names)
    text = json.dumps(payload, separators=(",", ":"))
    import hashlib
    return {"type": "schema_version_created", "ts": ts, "upstream_id": PROXY, "upstream_url": UPSTREAM,
            "method": "tools/list", "version": version, "version_id": uuid7(ts, rnd),
            "content_hash": hashlib.sha256(text.encode()).hexdigest(), "payload": payload}


def main():
    base = BASE_MS
    if len(sys.argv) == 3 and sys.argv[1] == "--base":
        base = int(time.time() * 1000) if sys.argv[2] == "now" else int(sys.argv[2])
    rnd = random.Random(42)
    start = base - 3600 * 1000
    events = []
    tools_v1 = ["search_docs", "get_page", "run_query", "create_issue"]
    tools_v2 = ["search_docs", "get_page", "run_query", "summarize"]  # +summarize, -create_issue
    events.append(schema_event(rnd, start + 1000, 1, tools_v1))
    switch_ts = start + 35 * 60 * 1000
    events.append(schema_event(rnd, switch_ts, 2, tools_v2))
    events.append({"type": "heartbeat", "ts": start + 30 * 60 * 1000, "proxy": PROXY, "mcp_status": "up",
                   "tunnel_status": "connected", "uptime_secs": 5400, "request_count": 0})

    for n in range(10):
        client = CLIENTS[n % len(CLIENTS)]
        sid = f"sess-{n:02d}-{rnd.getrandbits(32):08x}"
        ts = start + 2000 + n * 330 * 1000 + rnd.randint(0, 60000)
        events.append({"type": "session_start", "session_id": sid, "proxy": PROXY, "ts": ts,
                       "client_name": client[0], "client_version": client[1], "client_platform": client[2]})
        events.append(request(rnd, ts, sid, client, "initialize", latency_ms=rnd.uniform(3, 12)))
        ts += rnd.randint(50, 400)
        events.append(request(rnd, ts, sid, client, "tools/list", latency_ms=rnd.uniform(4, 15)))
        for _ in range(rnd.randint(18, 30)):
            ts += rnd.randint(500, 20000)
            if ts > base - 1000:
                break
            tools = tools_v2 if ts >= switch_ts else tools_v1
            r = rnd.random()
            if r < 0.72:
                tool = rnd.choice(tools)
                med, err_rate = TOOLS[tool]
                lat = rnd.lognormvariate(0, 0.6) * med
                x = rnd.random()
                if x < 0.04:
                    events.append(request(rnd, ts, sid, client, "tools/call", tool=tool, latency_ms=30000,
                                          status=504, error=("-32001", "upstream timed out after 30s"),
                                          note="timeout"))
                elif x < 0.04 + err_rate:
                    err = rnd.choice([("-32602", f"invalid params: missing required argument 'q' for {tool}"),
                                      ("-32603", "internal error: database connection reset")])
                    events.append(request(rnd, ts, sid, client, "tools/call", tool=tool, latency_ms=lat, error=err))
                else:
                    events.append(request(rnd, ts, sid, client, "tools/call", tool=tool, latency_ms=lat))
            elif r < 0.86:
                events.append(request(rnd, ts, sid, client, "resources/read", uri=rnd.choice(RESOURCES),
                                      latency_ms=rnd.uniform(2, 40)))
            elif r < 0.94:
                events.append(request(rnd, ts, sid, client, "prompts/get", prompt=rnd.choice(PROMPTS),
                                      latency_ms=rnd.uniform(1, 8)))
            elif r < 0.97:
                events.append(request(rnd, ts, sid, client, "tools/list", latency_ms=rnd.uniform(4, 15)))
            else:
                events.append(request(rnd, ts, sid, client, "tools/call", tool="delete_everything",
                                      latency_ms=rnd.uniform(1, 3),
                                      error=("-32601", "unknown tool: delete_everything")))
        if n % 3 != 2:  # most sessions close; a few stay open
            events.append({"type": "session_end", "session_id": sid, "ts": ts + rnd.randint(100, 5000)})
    events.sort(key=lambda e: e["ts"])
    for e in events:
        print(json.dumps(e, separators=(",", ":"), ensure_ascii=False))


if __name__ == "__main__":
    main()

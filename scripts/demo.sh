#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine: install what is missing,
# build, put `mcpr proxy run` in front of a sample MCP server
# (examples/sample-server), drive MCP traffic through it with curl, and
# show what the `mcpr` CLI sees in the new store (embedded SQLite); then
# load an hour of sample traffic the same way `mcpr ingest` takes any
# proxy's JSON log, and show the views over it.
#   scripts/demo.sh            store in a temporary directory
#   MCPR_DB=path scripts/demo.sh   store at path (must not exist yet)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mcpr mcpr-sample-server >/dev/null
mcpr=build/mcpr

if [ -z "${MCPR_DB:-}" ]; then
  dir=$(mktemp -d)
  export MCPR_DB="$dir/store.db"
fi
if [ -e "$MCPR_DB" ]; then
  echo "demo: $MCPR_DB exists; pick a new path" >&2
  exit 1
fi

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; "$@"; }

# ---- Live: the proxy in front of a sample MCP server ----
work="${MCPR_DB%/*}"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap 'cleanup; [ -n "${dir:-}" ] && rm -rf "$dir"' EXIT
wait_line() { # file pattern: print the first line matching, waiting up to 10 s
  for _ in $(seq 100); do grep -m1 "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: no '$2' in $1" >&2; cat "$1" >&2; return 1
}
build/mcpr-sample-server --listen 127.0.0.1:0 --quiet > "$work/server.out" &
pids+=($!)
upstream=$(wait_line "$work/server.out" 'listening on' | sed 's/.*listening on //')
"$mcpr" proxy run --mcp "$upstream" --port 0 --name sample --log pretty \
  > "$work/proxy.out" 2> "$work/proxy.log" &
proxy_pid=$!
pids+=($proxy_pid)
wait_line "$work/proxy.out" 'listening on' >/dev/null
cat "$work/proxy.out"
url=$(grep -m1 'listening on' "$work/proxy.out" | sed 's/.*listening on //')

hdr=(-sS -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
rpc() { curl "${hdr[@]}" -H "Mcp-Session-Id: $sid" -d "$1" "$url"; echo; }
printf '\n%s# an MCP client session through the proxy (curl)%s\n' "$bold" "$plain"
curl "${hdr[@]}" -D "$work/headers" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"claude-code","version":"1.0.0"}}}' "$url" >/dev/null
sid=$(grep -i '^mcp-session-id:' "$work/headers" | awk '{print $2}' | tr -d '\r')
rpc '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
rpc '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' >/dev/null
rpc '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":40}}}'
echo "(a long tool call: its progress events stream through as they happen)"
rpc '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"slow","arguments":{"ms":900,"steps":3},"_meta":{"progressToken":"t"}}}'
rpc '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"fail","arguments":{}}}' >/dev/null
rpc '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"boom","arguments":{}}}' >/dev/null
rpc '{"jsonrpc":"2.0","id":7,"method":"resources/list"}' >/dev/null
rpc '{"jsonrpc":"2.0","id":8,"method":"prompts/get","params":{"name":"greet","arguments":{"name":"Ada"}}}' >/dev/null
curl -sS -X DELETE -H "Mcp-Session-Id: $sid" "$url" >/dev/null
kill -TERM "$proxy_pid"; wait "$proxy_pid" || true   # drains its sinks: every event is in the store
printf '\n%s# what the proxy logged (--log pretty)%s\n' "$bold" "$plain"
cat "$work/proxy.log"
step "$mcpr" proxy status
step "$mcpr" proxy logs --tail 10
step "$mcpr" proxy sessions
step "$mcpr" proxy schema

# ---- Replay: an hour of sample traffic through `mcpr ingest` ----
# The bundled sample (examples/sample-traffic.ndjson) is fixed in time
# (the hour before 2026-01-01); its generator rebased on now gives the same
# traffic ending now, so the default windows (--since 1h) show it.
traffic="${MCPR_DB%/*}/traffic.ndjson"
python3 examples/make-sample.py --base now > "$traffic"
step "$mcpr" ingest "$traffic"
step "$mcpr" proxy status
step "$mcpr" proxy logs --tail 10
step "$mcpr" proxy slow --threshold 300ms --limit 5
step "$mcpr" proxy sessions --limit 5
step "$mcpr" proxy clients
step "$mcpr" proxy schema --changes
step "$mcpr" proxy schema --unused
step "$mcpr" store stats
step "$mcpr" proxy logs --status error --tail 3 --json
echo
echo "store: $MCPR_DB (removed on exit unless you set MCPR_DB)"

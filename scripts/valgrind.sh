#!/usr/bin/env bash
# Run every mcpr command once under valgrind memcheck on a small store
# (examples/sample-traffic.ndjson ingested) and fail on any memory error
# or leak (definite, indirect or possible; "still reachable" is not one).
# Last, `mcpr proxy run` in front of mcpr-sample-server, with traffic
# through it and a SIGTERM, under the same checks.
#   scripts/valgrind.sh [BUILD_DIR]     default build-valgrind (plain build)
# An existing BUILD_DIR keeps its configuration (only mcpr and
# mcpr-sample-server are rebuilt);
# a new one is configured as a plain RelWithDebInfo build without tests.
# The commands that talk to the cloud point at a closed loopback port, so
# they fail (exit 1) without the network — still checked for leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-valgrind}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMCPR_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target mcpr mcpr-sample-server >/dev/null
mcpr=$(cd "$build" && pwd)/mcpr
sample_server=$(cd "$build" && pwd)/mcpr-sample-server
work=$(mktemp -d "${TMPDIR:-/tmp}/mcpr-valgrind-XXXXXX")
bg_pids=()
cleanup() {
  for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
db=$work/store.db
export HOME=$work/home MCPR_DB= NO_COLOR=1 MCPR_CLOUD_URL=http://127.0.0.1:9
mkdir -p "$HOME"
cat >"$work/mcpr.toml" <<TOML
name = "docs-api"
[store]
path = "$db"
[cloud]
token = "mcpr_valgrind_0123456789abcdef"
server = "docs"
endpoint = "http://127.0.0.1:9"
TOML

vg=(valgrind --quiet --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible
    --track-origins=yes --child-silent-after-fork=yes)
failed=0
count=0
start=$SECONDS
# run EXPECTED_EXIT[,EXPECTED_EXIT...] ARGS...: one command under valgrind.
run() {
  local want=$1; shift
  local log="$work/vg-$count.log" rc=0
  count=$((count + 1))
  "${vg[@]}" --log-file="$log" "$mcpr" "$@" <"${STDIN:-/dev/null}" >"$work/out" 2>"$work/err" || rc=$?
  if [ "$rc" = 99 ] || [ -s "$log" ]; then
    echo "FAIL (valgrind): mcpr $*" >&2; cat "$log" >&2; failed=1
  elif [[ ",$want," != *",$rc,"* ]]; then
    echo "FAIL (exit $rc, want $want): mcpr $*" >&2; head -5 "$work/err" >&2; failed=1
  else
    printf '  ok  %-4s mcpr %s\n' "$rc" "$*"
  fi
}

echo "=== valgrind: every command on a small store ($mcpr) ==="
run 0 --db "$db" ingest examples/sample-traffic.ndjson
STDIN=examples/sample-traffic.ndjson run 0 --db "$db" ingest -
printf '{"type":"bogus"}\nnot json\n' >"$work/bad.ndjson"
run 1 --db "$db" ingest "$work/bad.ndjson"
printf '{"type":"session_end","session_id":"ghost","ts":1}\n{"type":"session_end","session_id":"","ts":1}\n' >"$work/ends.ndjson"
run 1 --db "$db" ingest "$work/ends.ndjson"
run 0 --help
run 0 help
run 0 help proxy logs
run 0 proxy help
run 0 proxy help schema
run 2 help no-such-command
run 2 --db "$db" proxy logs --tail 0
run 0 --version
run 0 version
run 2 no-such-command
run 0 --db "$db" proxy status --since 52w
run 0 --db "$db" proxy status docs-api --since 52w --json
run 0 --db "$db" proxy logs --since 52w --tail 20
run 0 --db "$db" proxy logs --since 52w --status error --json
COLUMNS=60 run 0 --db "$db" proxy logs --since 52w --tail 20
run 0 -c "$work/mcpr.toml" proxy logs --since 52w --tail 5
run 0 proxy status --since 52w --config "$work/mcpr.toml"
run 1 -c "$work/missing.toml" proxy logs
run 0 --db "$db" proxy slow --since 52w --threshold 1ms
run 0 --db "$db" proxy sessions --since 52w
run 0 --db "$db" proxy sessions --since 52w --json
run 0 --db "$db" proxy session sess-00
run 0 --db "$db" proxy session sess-00 --json
run 0 --db "$db" proxy clients --since 52w
run 0 --db "$db" proxy schema
run 0 --db "$db" proxy schema --json
run 0 --db "$db" proxy schema --changes --json
run 0 --db "$db" proxy schema --unused --since 52w
run 0 --db "$db" store stats
run 0 --db "$db" store stats --json
run 0 --db "$db" store vacuum --before 3650d --dry-run
run 0 --db "$db" store vacuum --before 3650d
run 0 config check --config "$work/mcpr.toml"
# With [cloud]: the events also go to the cloud sink, which cannot reach
# the closed port and spools them (not a failure); status and flush read it.
run 0 --db "$db" ingest --config "$work/mcpr.toml" examples/sample-traffic.ndjson
run 0,1 cloud status --config "$work/mcpr.toml"
run 1 cloud flush --config "$work/mcpr.toml" --timeout 2
run 1 setup --config "$work/setup.toml" --cloud-url http://127.0.0.1:9 --email a@example.com \
  --code 123456 --project p --server s
run 1 proxy setup -o "$work/setup.toml" --cloud-url http://127.0.0.1:9 --email a@example.com
# follow mode: stopped by SIGINT after a moment, as Ctrl-C would.
log="$work/vg-follow.log"; rc=0
timeout -s INT 4 "${vg[@]}" --log-file="$log" "$mcpr" --db "$db" proxy logs -f >/dev/null 2>&1 || rc=$?
if [ "$rc" = 99 ] || [ -s "$log" ]; then
  echo "FAIL (valgrind): mcpr proxy logs -f" >&2; cat "$log" >&2; failed=1
else
  printf '  ok  %-4s mcpr proxy logs -f (SIGINT)\n' "$rc"
fi
count=$((count + 1))

# proxy run: in front of the sample MCP server, a session through it with
# curl (JSON answers, a notification, an SSE tools/call of `slow` whose
# progress streams, DELETE), then SIGTERM as `mcpr proxy stop` sends: the
# drain, the sinks and the store must free everything.
wait_line() { # FILE PATTERN SECONDS: the first line matching, once it is there
  for _ in $(seq $(($3 * 10))); do grep -m1 "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
proxy_case() {
  local log="$work/vg-proxy.log" rc=0 why=
  "$sample_server" --listen 127.0.0.1:0 --quiet >"$work/server.out" 2>/dev/null &
  local server_pid=$!
  bg_pids+=("$server_pid")
  local upstream
  upstream=$(wait_line "$work/server.out" 'listening on' 10 | sed 's/.*listening on //') ||
    { echo "FAIL: mcpr-sample-server did not start" >&2; failed=1; return; }
  "${vg[@]}" --log-file="$log" "$mcpr" --db "$db" proxy run --mcp "$upstream" --port 0 \
    --name valgrind --log json >"$work/proxy.out" 2>"$work/proxy.err" &
  local proxy_pid=$!
  bg_pids+=("$proxy_pid")
  local url
  url=$(wait_line "$work/proxy.out" 'listening on' 60 | sed 's/.*listening on //') ||
    { echo "FAIL: mcpr proxy run did not start" >&2; cat "$work/proxy.err" >&2; failed=1; return; }
  local hdr=(-sS --max-time 30 -H 'Content-Type: application/json'
             -H 'Accept: application/json, text/event-stream')
  curl "${hdr[@]}" -D "$work/headers" -o "$work/r-init" -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"valgrind","version":"1.0"}}}' "$url" || why="initialize failed"
  local sid
  sid=$(grep -i '^mcp-session-id:' "$work/headers" | awk '{print $2}' | tr -d '\r')
  [ -n "$sid" ] || why=${why:-"no Mcp-Session-Id"}
  hdr+=(-H "Mcp-Session-Id: $sid")
  local code
  code=$(curl "${hdr[@]}" -o /dev/null -w '%{http_code}' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$url") || true
  [ "$code" = 202 ] || why=${why:-"notification: HTTP $code, want 202"}
  curl "${hdr[@]}" -o "$work/r-list" -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}' "$url" || true
  grep -q '"slow"' "$work/r-list" || why=${why:-"tools/list: no slow tool"}
  curl "${hdr[@]}" -o "$work/r-add" -d '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":40}}}' "$url" || true
  grep -q '42' "$work/r-add" || why=${why:-"tools/call add: no 42"}
  curl "${hdr[@]}" -D "$work/h-slow" -o "$work/r-slow" -d '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"slow","arguments":{"ms":600,"steps":3},"_meta":{"progressToken":"vg"}}}' "$url" || true
  grep -qi '^content-type: text/event-stream' "$work/h-slow" || why=${why:-"slow: not an SSE stream"}
  grep -q 'notifications/progress' "$work/r-slow" || why=${why:-"slow: no progress event"}
  grep -q 'slow: done' "$work/r-slow" || why=${why:-"slow: no result"}
  curl -sS --max-time 30 -o /dev/null -X DELETE -H "Mcp-Session-Id: $sid" "$url" || true
  kill -TERM "$proxy_pid" 2>/dev/null || true
  wait "$proxy_pid" || rc=$?
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  bg_pids=()
  grep -q '"mcp_method":"tools/call"' "$work/proxy.err" || why=${why:-"no tools/call event logged"}
  if [ "$rc" = 99 ] || [ -s "$log" ]; then
    echo "FAIL (valgrind): mcpr proxy run" >&2; cat "$log" >&2; failed=1
  elif [ "$rc" != 0 ]; then
    echo "FAIL (exit $rc, want 0): mcpr proxy run" >&2; tail -5 "$work/proxy.err" >&2; failed=1
  elif [ -n "$why" ]; then
    echo "FAIL (traffic): mcpr proxy run: $why" >&2; failed=1
  else
    printf '  ok  %-4s mcpr proxy run (sample server, 6 requests incl. SSE, SIGTERM)\n' "$rc"
  fi
}
proxy_case
count=$((count + 1))
echo "=== valgrind: $count runs in $((SECONDS - start)) s: $([ $failed = 0 ] && echo clean || echo FAILED) ==="
exit $failed

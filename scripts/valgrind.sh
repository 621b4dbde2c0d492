#!/usr/bin/env bash
# Run every mcpr command once under valgrind memcheck on a small store
# (examples/sample-traffic.ndjson ingested) and fail on any memory error
# or leak (definite, indirect or possible; "still reachable" is not one).
#   scripts/valgrind.sh [BUILD_DIR]     default build-valgrind (plain build)
# An existing BUILD_DIR keeps its configuration (only mcpr is rebuilt);
# a new one is configured as a plain RelWithDebInfo build without tests.
# The commands that talk to the cloud point at a closed loopback port, so
# they fail (exit 1) without the network — still checked for leaks.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-valgrind}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMCPR_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target mcpr >/dev/null
mcpr=$(cd "$build" && pwd)/mcpr
work=$(mktemp -d "${TMPDIR:-/tmp}/mcpr-valgrind-XXXXXX")
trap 'rm -rf "$work"' EXIT
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
echo "=== valgrind: $count runs in $((SECONDS - start)) s: $([ $failed = 0 ] && echo clean || echo FAILED) ==="
exit $failed

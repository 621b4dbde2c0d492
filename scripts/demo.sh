#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine: install what is missing,
# build, load an hour of sample MCP traffic into a new store (embedded
# SQLite), and show what the `mcpr` CLI sees in it.
#   scripts/demo.sh            store in a temporary directory
#   MCPR_DB=path scripts/demo.sh   store at path (must not exist yet)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mcpr mcpr-bench >/dev/null
mcpr=build/mcpr

if [ -z "${MCPR_DB:-}" ]; then
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  export MCPR_DB="$dir/store.db"
fi
if [ -e "$MCPR_DB" ]; then
  echo "demo: $MCPR_DB exists; pick a new path" >&2
  exit 1
fi

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; "$@"; }

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

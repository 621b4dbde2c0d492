#!/usr/bin/env bash
# Install the Debian 12 packages mcpr needs to build and test, if missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git sqlite3 libsqlite3-dev libjansson-dev
      libcurl4-openssl-dev libssl-dev libevent-dev libh2o-evloop0.13 libcmocka-dev
      libasan8 libubsan1 libtsan2 clang libclang-rt-14-dev python3 valgrind curl
      wrk nginx-light libnginx-mod-stream libpq-dev postgresql-15)
# npm for scripts/interop.sh (its npm ci brings Node 22 itself); any npm will do.
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

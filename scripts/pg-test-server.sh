#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the tests, in a temporary directory.
#
#   scripts/pg-test-server.sh COMMAND [ARGS...]
#       initdb a cluster, start it on a free port of 127.0.0.1, create the
#       database "mcpr_test", run COMMAND with MCPR_TEST_PG_URL set to its
#       URL (and MCPR_TEST_PG_CTL / MCPR_TEST_PG_DATA so a test can restart
#       it), stop the server and remove the directory on exit; exits with
#       COMMAND's status.
#   scripts/pg-test-server.sh          (no command) start it, print
#       `export MCPR_TEST_PG_URL=…` lines, and leave it running: stop it
#       with `scripts/pg-test-server.sh stop DIR`.
#
# As root, the cluster belongs to the `postgres` user (initdb refuses
# root): the directory is chown'ed to it and the server runs as it.
# Authentication is md5 over TCP with a generated password, so the tests
# can check that a wrong password is refused.
set -euo pipefail
bin=${MCPR_PG_BIN:-/usr/lib/postgresql/15/bin}
if [[ ${1:-} == stop ]]; then
  dir=$2
  as=(); [[ $(id -u) -eq 0 ]] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi
for b in initdb pg_ctl postgres; do
  [[ -x $bin/$b ]] || { echo "pg-test-server: $bin/$b not found (apt-get install postgresql-15)" >&2; exit 1; }
done
dir=$(mktemp -d /tmp/mcpr-pg.XXXXXX)
chmod 755 "$dir"
as=()
if [[ $(id -u) -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || { echo "pg-test-server: no 'postgres' user" >&2; exit 1; }
  chown postgres: "$dir"
  as=(runuser -u postgres --)
fi
# A free port: ask the kernel for one.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$password" >"$dir/pw"
[[ ${#as[@]} -gt 0 ]] && chown postgres: "$dir/pw"
"${as[@]}" "$bin/initdb" -D "$dir/data" -U mcpr --pwfile="$dir/pw" -A md5 -E UTF8 \
  --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
CONF
start() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}
stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}
start || { cat "$dir/server.log" >&2; rm -rf "$dir"; exit 1; }
PGPASSWORD=$password "$bin/psql" -q -h 127.0.0.1 -p "$port" -U mcpr -d postgres \
  -c 'CREATE DATABASE mcpr_test' >/dev/null || { stop; rm -rf "$dir"; exit 1; }
url="postgresql://mcpr:$password@127.0.0.1:$port/mcpr_test"
# pg_ctl as the right user, for a test that restarts the server.
cat >"$dir/pg_ctl" <<CTL
#!/usr/bin/env bash
exec ${as[*]} "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 "\$@"
CTL
chmod 755 "$dir/pg_ctl"
if (($# == 0)); then
  echo "export MCPR_TEST_PG_URL='$url'"
  echo "export MCPR_TEST_PG_CTL='$dir/pg_ctl'"
  echo "# stop: $0 stop $dir"
  exit 0
fi
trap 'stop; rm -rf "$dir"' EXIT
export MCPR_TEST_PG_URL=$url MCPR_TEST_PG_CTL=$dir/pg_ctl MCPR_TEST_PG_DATA=$dir/data
set +e
"$@"
rc=$?
exit $rc

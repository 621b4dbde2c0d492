#!/usr/bin/env bash
# bench/proxy.sh — `mcpr proxy run` against no proxy and against nginx.
#
# A script, not a C subcommand of mcpr-bench: everything it measures is
# done by other programs (wrk, nginx, mcpr-sample-server, mcpr), so its
# work is starting them on free ports, feeding them, reading their output
# and stopping them, which is what a shell does.
#
# In one run, on this machine: `tools/call` of `echo` on the sample server
# four ways — direct; through nginx's stream module as a plain TCP relay
# (`relay`: bytes copied both ways, no HTTP parsed — the least any
# user-space proxy adds on this machine: its socket calls and wake-ups);
# through nginx as an HTTP reverse proxy (1 worker, upstream keepalive,
# proxy_buffering off, HTTP/1.1 upstream); and through `mcpr proxy run`
# with its SQLite store — at each connection count (wrk, DURATION seconds
# each);
# then N GET streams held open at once through the proxy (its VmRSS and
# thread count); then the proxy is stopped and the store is checked: every
# JSON-RPC request the proxy received is a row or counted as dropped.
# Ratios are against `direct` measured in the same run: on a shared
# machine only they mean something. The last line is one JSON object.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/proxy.sh [--build DIR] [--duration S] [--conns "1 50"] [--streams N]
                      [--perf FILE] [--no-store] [--keep]
  --build DIR     where mcpr and mcpr-sample-server are (default: build)
  --duration S    seconds of wrk per case (default 10)
  --conns LIST    connection counts (default "1 50")
  --streams N     GET streams held at once through the proxy (default 1000, 0: skip)
  --perf FILE     perf record -g the proxy during its first case into FILE
  --no-store      run the proxy with [store] enabled = false (the store's share of its cost)
  --keep          keep the temp dir (configs, logs, the store)
needs: wrk, nginx (nginx-light, libnginx-mod-stream), python3, sqlite3, curl —
scripts/deps.sh installs them.
EOF
}

BUILD=build DURATION=10 CONNS="1 50" STREAMS=1000 PERF_OUT="" KEEP=0 STORE=1
while (($#)); do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --streams) STREAMS=$2; shift 2 ;;
    --perf) PERF_OUT=$2; shift 2 ;;
    --no-store) STORE=0; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/proxy.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
for tool in wrk nginx python3 sqlite3 curl; do
  command -v "$tool" >/dev/null || { echo "bench/proxy.sh: $tool not found (scripts/deps.sh)" >&2; exit 2; }
done
MCPR=$(realpath "$BUILD/mcpr") SAMPLE=$(realpath "$BUILD/mcpr-sample-server")
if ! [ -x "$MCPR" ] || ! [ -x "$SAMPLE" ]; then
  echo "bench/proxy.sh: build mcpr and mcpr-sample-server in $BUILD first" >&2
  exit 2
fi
# Two sockets per stream in the proxy, one in the server and the client.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d /tmp/mcpr-bench-proxy.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((KEEP)); then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Wait for "PATTERN" in FILE (a program's stdout), for up to 10 s.
wait_for_line() {
  local file=$1 pattern=$2 i
  for ((i = 0; i < 200; i++)); do
    grep -q "$pattern" "$file" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench/proxy.sh: timed out waiting for '$pattern' in $file" >&2
  cat "$file" "${file%.out}.err" >&2 2>/dev/null || true
  exit 1
}

# --- the upstream
"$SAMPLE" --listen 127.0.0.1:0 --quiet >"$TMP/sample.out" 2>"$TMP/sample.err" &
SAMPLE_PID=$!
PIDS+=("$SAMPLE_PID")
wait_for_line "$TMP/sample.out" '^listening on '
DIRECT_URL=$(sed -n 's/^listening on //p' "$TMP/sample.out")
UP_HOSTPORT=$(echo "$DIRECT_URL" | sed -E 's#^http://([^/]+)/.*#\1#')

# --- nginx: a plain reverse proxy, and (stream module) a plain TCP relay;
# everything in TMP
NGINX_PORT=$(free_port) RELAY_PORT=$(free_port)
STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$STREAM_MODULE" ] || { echo "bench/proxy.sh: $STREAM_MODULE not found (libnginx-mod-stream; scripts/deps.sh)" >&2; exit 2; }
mkdir -p "$TMP/nginx"
{
  [ "$(id -u)" -eq 0 ] && echo "user root;" # the worker keeps root's rights: TMP is root's
  cat <<EOF
load_module $STREAM_MODULE;
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
stream {
  server {
    listen 127.0.0.1:$RELAY_PORT;
    proxy_pass $UP_HOSTPORT;
  }
}
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  upstream mcp { server $UP_HOSTPORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
EOF
} >"$TMP/nginx/nginx.conf"
nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" \
  >"$TMP/nginx.out" 2>"$TMP/nginx.err" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
NGINX_URL="http://127.0.0.1:$NGINX_PORT/mcp"
RELAY_URL="http://127.0.0.1:$RELAY_PORT/mcp"

# --- mcpr proxy run, store on, no stderr log
PROXY_NAME=bench
DB="$TMP/store.db"
cat >"$TMP/mcpr.toml" <<EOF
name = "$PROXY_NAME"
mcp = "$DIRECT_URL"
listen = "127.0.0.1:0"
admin_bind = "off"
log_format = "off"
max_concurrent_upstream = $((STREAMS + 100))
[store]
path = "$DB"
enabled = $( ((STORE)) && echo true || echo false)
EOF
"$MCPR" proxy run -c "$TMP/mcpr.toml" >"$TMP/proxy.out" 2>"$TMP/proxy.err" &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_for_line "$TMP/proxy.out" 'listening on '
MCPR_URL=$(sed -n "s/^mcpr proxy '$PROXY_NAME' listening on //p" "$TMP/proxy.out")

# --- one session per way (the proxy records its own)
HDR=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream')
INIT='{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpr-bench","version":"1"}}}'
CALL='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}'
open_session() { # URL -> session id
  local url=$1 sid i
  for ((i = 0; i < 100; i++)); do # nginx may still be starting
    sid=$(curl -s -D - -o /dev/null "${HDR[@]}" -d "$INIT" "$url" |
      awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}' | tr -d '\r') || true
    [ -n "$sid" ] && break
    sleep 0.05
  done
  [ -n "$sid" ] || { echo "bench/proxy.sh: no session from $url" >&2; cat "$TMP"/*.err >&2; exit 1; }
  curl -s -o /dev/null "${HDR[@]}" -H "Mcp-Session-Id: $sid" \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$url"
  reply=$(curl -s "${HDR[@]}" -H "Mcp-Session-Id: $sid" -d "$CALL" "$url")
  case "$reply" in
    *'"result"'*) ;;
    *) echo "bench/proxy.sh: tools/call through $url answered: $reply" >&2; exit 1 ;;
  esac
  echo "$sid"
}
WAYS="direct relay nginx mcpr"
declare -A URL=([direct]=$DIRECT_URL [relay]=$RELAY_URL [nginx]=$NGINX_URL [mcpr]=$MCPR_URL) SID
for way in $WAYS; do SID[$way]=$(open_session "${URL[$way]}"); done
# The process between wrk and the upstream, whose CPU time per request is
# counted: less sensitive to the machine's load than latency is.
NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -1)
declare -A MIDDLE=([direct]="" [relay]=$NGINX_WORKER [nginx]=$NGINX_WORKER [mcpr]=$PROXY_PID)
cpu_us() { # PID -> user+system CPU time in µs
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f", ($14 + $15) * 1e6 / hz}' "/proc/$1/stat"
}
sys_us() { # PID -> system CPU time in µs (the kernel's share: sockets, wakeups)
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.0f", $15 * 1e6 / hz}' "/proc/$1/stat"
}

cat >"$TMP/call.lua" <<EOF
wrk.method = "POST"
wrk.body = '$CALL'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Mcp-Session-Id"] = os.getenv("MCPR_BENCH_SID")
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
EOF

echo "mcpr-bench proxy: tools/call echo, ${DURATION}s per case, wrk 1 thread; $(nproc) cores," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg) before the run (other work on the machine counts)"
declare -A RPS P50 P99 NREQ CPU_MID SYS_MID CPU_UP
MCPR_CALLS=0
first_mcpr=1
for c in $CONNS; do
  for way in $WAYS; do
    perf_pid=""
    if [ "$way" = mcpr ] && ((first_mcpr)) && [ -n "$PERF_OUT" ]; then
      perf record -g -o "$PERF_OUT" -p "$PROXY_PID" >"$TMP/perf.log" 2>&1 &
      perf_pid=$!
      sleep 0.5
    fi
    mid=${MIDDLE[$way]}
    mid0=$([ -n "$mid" ] && cpu_us "$mid" || echo 0) up0=$(cpu_us "$SAMPLE_PID")
    sys0=$([ -n "$mid" ] && sys_us "$mid" || echo 0)
    out=$(MCPR_BENCH_SID=${SID[$way]} wrk -t1 -c"$c" -d"${DURATION}s" -s "$TMP/call.lua" "${URL[$way]}")
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
    read -r _ n dur_us p50 p99 st_err io_err <<<"$(grep '^WRK ' <<<"$out")"
    if ((st_err || io_err)); then
      echo "bench/proxy.sh: $way at $c connections: $st_err non-2xx, $io_err socket errors" >&2
    fi
    RPS[$way,$c]=$(awk -v n="$n" -v d="$dur_us" 'BEGIN{printf "%.0f", n / (d / 1e6)}')
    P50[$way,$c]=$p50 P99[$way,$c]=$p99 NREQ[$way,$c]=$n
    mid1=$([ -n "$mid" ] && cpu_us "$mid" || echo 0) up1=$(cpu_us "$SAMPLE_PID")
    sys1=$([ -n "$mid" ] && sys_us "$mid" || echo 0)
    SYS_MID[$way,$c]=$(awk -v a="$sys0" -v b="$sys1" -v n="$n" 'BEGIN{printf "%.1f", (n > 0 ? (b - a) / n : 0)}')
    CPU_MID[$way,$c]=$(awk -v a="$mid0" -v b="$mid1" -v n="$n" 'BEGIN{printf "%.1f", (n > 0 ? (b - a) / n : 0)}')
    CPU_UP[$way,$c]=$(awk -v a="$up0" -v b="$up1" -v n="$n" 'BEGIN{printf "%.1f", (n > 0 ? (b - a) / n : 0)}')
    [ "$way" = mcpr ] && { MCPR_CALLS=$((MCPR_CALLS + n)); first_mcpr=0; }
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b > 0 ? a / b : 0)}'; }
echo "(proxy CPU: user+system µs of nginx's worker (relay, nginx) or of mcpr per request, of which the kernel's" \
  "(system) in brackets; upstream CPU: the sample server's)"
printf '\n%-6s %5s %9s %8s %8s %8s %8s %16s %10s\n' way conns 'req/s' 'p50 µs' 'p99 µs' 'x direct' \
  '+p50 µs' 'proxy CPU (sys)' 'upstr. CPU'
for c in $CONNS; do
  for way in $WAYS; do
    printf '%-6s %5d %9d %8d %8d %8s %8d %16s %10s\n' "$way" "$c" "${RPS[$way,$c]}" "${P50[$way,$c]}" \
      "${P99[$way,$c]}" "$(ratio "${RPS[$way,$c]}" "${RPS[direct,$c]}")" \
      $((P50[$way,$c] - P50[direct,$c])) "${CPU_MID[$way,$c]} (${SYS_MID[$way,$c]})" "${CPU_UP[$way,$c]}"
  done
done

# --- GET streams held at once through the proxy
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
threads() { find "/proc/$1/task" -mindepth 1 -maxdepth 1 | wc -l; }
RSS_IDLE_KB=$(rss_kb "$PROXY_PID") THREADS_IDLE=$(threads "$PROXY_PID")
STREAMS_OPEN=0 RSS_STREAMS_KB=0 THREADS_STREAMS=0
if ((STREAMS > 0)); then
  # Opens STREAMS sessions through the proxy (one keep-alive connection),
  # then one GET stream per session, each on its own connection; prints
  # how many answered 200 text/event-stream, then holds them until stdin
  # closes.
  mkfifo "$TMP/hold"
  cat >"$TMP/streams.py" <<'EOF'
import http.client, json, resource, socket, sys, urllib.parse
url, n = urllib.parse.urlsplit(sys.argv[1]), int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
init = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "mcpr-bench-streams", "version": "1"}}})
conn = http.client.HTTPConnection(url.hostname, url.port)
sids = []
for i in range(n):
    conn.request("POST", url.path, init, {"Content-Type": "application/json",
                 "Accept": "application/json, text/event-stream"})
    r = conn.getresponse(); r.read()
    sids.append(r.getheader("Mcp-Session-Id"))
socks = []
for sid in sids:
    s = socket.create_connection((url.hostname, url.port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
               "Mcp-Session-Id: %s\r\n\r\n" % (url.path, url.hostname, url.port, sid)).encode())
    socks.append(s)
ok = 0
for s in socks:
    s.settimeout(10)
    head = b""
    try:
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    except OSError:
        pass
    if head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head.lower():
        ok += 1
print(ok, len(sids), flush=True)
sys.stdin.read()
EOF
  python3 "$TMP/streams.py" "$MCPR_URL" "$STREAMS" >"$TMP/streams.out" 2>"$TMP/streams.err" <"$TMP/hold" &
  STREAMS_PY=$!
  PIDS+=("$STREAMS_PY")
  exec 9>"$TMP/hold"
  for ((i = 0; i < 1200; i++)); do [ -s "$TMP/streams.out" ] && break; sleep 0.1; done
  read -r STREAMS_OPEN _ <"$TMP/streams.out" || STREAMS_OPEN=0
  RSS_STREAMS_KB=$(rss_kb "$PROXY_PID") THREADS_STREAMS=$(threads "$PROXY_PID")
  exec 9>&-
  wait "$STREAMS_PY" || true
fi
echo
echo "GET streams through the proxy: $STREAMS_OPEN of $STREAMS open at once;" \
  "proxy VmRSS $((RSS_STREAMS_KB / 1024)) MB with them (idle after the wrk runs: $((RSS_IDLE_KB / 1024)) MB)," \
  "threads $THREADS_STREAMS (idle: $THREADS_IDLE)"

# --- stop the proxy, then check the store
kill -TERM "$PROXY_PID"
wait "$PROXY_PID" || true
STOP_LINE=$(grep "stopped" "$TMP/proxy.err" || true)
num_before() { { grep -oE "[0-9]+ $1" <<<"$STOP_LINE" || echo 0; } | head -1 | cut -d' ' -f1; }
P_REQUESTS=$(num_before requests)
P_REFUSED=$(num_before 'refused by a full sink'); P_REFUSED=${P_REFUSED:-0}
P_NOT_STORED=$(grep -oE 'not stored [0-9]+' <<<"$STOP_LINE" | grep -oE '[0-9]+' || echo 0)
ROWS=$(sqlite3 "$DB" "SELECT count(*) FROM requests WHERE proxy = '$PROXY_NAME'")
ROWS_CALLS=$(sqlite3 "$DB" "SELECT count(*) FROM requests WHERE proxy = '$PROXY_NAME' AND tool = 'echo'")
# Every HTTP request the proxy received is one row (GET streams and the
# notification too). wrk counts only the replies it read, so up to one
# call per connection and case is in the store beyond its count.
EXPECTED=$P_REQUESTS
STORED_PCT=$(awk -v r="$ROWS" -v e="$EXPECTED" 'BEGIN{printf "%.2f", (e > 0 ? 100 * r / e : 0)}')
ACCOUNTED=$((ROWS + P_REFUSED + P_NOT_STORED))
echo "store: $ROWS request rows ($ROWS_CALLS echo calls; wrk read $MCPR_CALLS replies, +1 check call) of $EXPECTED" \
  "HTTP requests the proxy received = $STORED_PCT %; refused by a full sink $P_REFUSED," \
  "not stored $P_NOT_STORED; accounted for: $ACCOUNTED of $EXPECTED"
echo "proxy: $STOP_LINE"

# --- targets and the JSON line
c_lo=$(echo "$CONNS" | awk '{print $1}') c_hi=$(echo "$CONNS" | awk '{print $NF}')
ratio_lo=$(ratio "${RPS[mcpr,$c_lo]}" "${RPS[direct,$c_lo]}")
added_p50=$((P50[mcpr,$c_lo] - P50[direct,$c_lo]))
share_mcpr=$(ratio "${RPS[mcpr,$c_hi]}" "${RPS[direct,$c_hi]}")
share_nginx=$(ratio "${RPS[nginx,$c_hi]}" "${RPS[direct,$c_hi]}")
verdict() { if eval "$1"; then echo met; else echo MISSED; fi; }
echo
echo "targets (ratios from this run):"
echo "  $c_lo conn: mcpr/direct req/s $ratio_lo (>= 0.75: $(verdict "awk 'BEGIN{exit !($ratio_lo >= 0.75)}'"))," \
  "added p50 ${added_p50} µs (<= 15: $(verdict "((added_p50 <= 15))"))"
echo "          (the floor here, a TCP relay parsing nothing: $(ratio "${RPS[relay,$c_lo]}" "${RPS[direct,$c_lo]}")" \
  "of direct, +$((P50[relay,$c_lo] - P50[direct,$c_lo])) µs p50; nginx's HTTP proxy:" \
  "$(ratio "${RPS[nginx,$c_lo]}" "${RPS[direct,$c_lo]}"), +$((P50[nginx,$c_lo] - P50[direct,$c_lo])) µs)"
echo "  $c_hi conn: mcpr/direct $share_mcpr vs nginx/direct $share_nginx ($(verdict "awk 'BEGIN{exit !($share_mcpr >= $share_nginx)}'"))"
echo "  store: $STORED_PCT % stored (>= 95: $(verdict "awk 'BEGIN{exit !($STORED_PCT >= 95)}'")), all accounted for: $(verdict "((ACCOUNTED >= EXPECTED))")"
echo "  streams: $STREAMS_OPEN open, VmRSS $((RSS_STREAMS_KB / 1024)) MB (< 100: $(verdict "((RSS_STREAMS_KB < 100 * 1024))")), threads $THREADS_STREAMS"

json_cases=""
for c in $CONNS; do
  for way in $WAYS; do
    json_cases+="${json_cases:+,}{\"way\":\"$way\",\"conns\":$c,\"requests\":${NREQ[$way,$c]},\"rps\":${RPS[$way,$c]},\"p50_us\":${P50[$way,$c]},\"p99_us\":${P99[$way,$c]},\"proxy_cpu_us_per_req\":${CPU_MID[$way,$c]},\"proxy_sys_us_per_req\":${SYS_MID[$way,$c]},\"upstream_cpu_us_per_req\":${CPU_UP[$way,$c]},\"rps_vs_direct\":$(ratio "${RPS[$way,$c]}" "${RPS[direct,$c]}")}"
  done
done
echo "{\"bench\":\"proxy\",\"duration_s\":$DURATION,\"nproc\":$(nproc),\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"cases\":[$json_cases],\"store\":{\"rows\":$ROWS,\"echo_rows\":$ROWS_CALLS,\"wrk_replies\":$MCPR_CALLS,\"expected\":$EXPECTED,\"stored_pct\":$STORED_PCT,\"refused_full_sink\":$P_REFUSED,\"not_stored\":$P_NOT_STORED},\"streams\":{\"requested\":$STREAMS,\"open\":$STREAMS_OPEN,\"rss_kb\":$RSS_STREAMS_KB,\"rss_idle_kb\":$RSS_IDLE_KB,\"threads\":$THREADS_STREAMS}}"

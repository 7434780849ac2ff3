#!/usr/bin/env bash
# Resident memory per idle keep-alive connection: `marquee origin` against nginx, same file, same
# run (issue 15's target: <= 1 KiB a connection; nginx is the anchor).
#
#   Benchmarks/idle-memory.sh        (env: MARQUEE_BIN, MARQUEE_BIN_B, IDLE=10000, THREADS=2, ROUNDS=2)
#
# Each connection completes one GET of a 1.5 KB playlist (so every connection slot has served a
# response), then stays open and silent (`loadbench.py hold-idle`, 256 in flight at a time). The
# figure is (resident memory with the connections held - before) / IDLE, summed over the server's
# processes (nginx: master and workers). Before the first snapshot each server takes 2 s of wrk
# (16 connections), as a server in service has: that touches the memory every busy server holds
# whatever its connections (Marquee's io_uring receive-buffer ring, 16 MiB a loop by default,
# which 10,000 requests would otherwise walk through and count as theirs; nginx's pools). MARQUEE_BIN_B adds a second marquee build (say, before a
# change) to the same run. Rounds alternate the servers' order. Needs nginx (installed if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE="${IDLE:-10000}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
NGINX_BIN="${NGINX_BIN:-nginx}"
HELPER=Benchmarks/loadbench.py
log() { echo "idle-memory: $*" >&2; }
fail() { log "error: $*"; exit 1; }

if ! command -v "$NGINX_BIN" >/dev/null && [[ "$NGINX_BIN" == nginx ]]; then
  log "installing nginx"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null || apt-get install -y -qq nginx >/dev/null
fi
command -v wrk >/dev/null || { log "installing wrk"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  swift build -c release --product marquee >&2
  MARQUEE_BIN=.build/release/marquee
fi
ulimit -n "$(( IDLE + 4096 > 20000 ? 20000 : IDLE + 4096 ))" 2>/dev/null || true

TMP=$(mktemp -d /tmp/marquee-idle.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; [[ -n "${KEEP:-}" ]] || rm -rf "$TMP"; }
trap cleanup EXIT
MEDIA="$TMP/media"
mkdir -p "$MEDIA/bench"
python3 -c "import sys; sys.stdout.write('#EXTM3U\n' + '#EXTINF:2.0,\nseg.m4s\n' * 90)" | head -c 1536 >"$MEDIA/bench/playlist.m3u8"
PATH_="/bench/playlist.m3u8"
# One client address holds every connection: the per-address cap is off, as for wrk.
printf 'rate_limits:\n  max_connections_per_address: 0\n' >"$TMP/marquee.yaml"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() {  # pid: resident KiB of the process and its children
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$(( total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0) ))
  done
  echo "$total"
}
wait_http() {  # url pid
  for _ in $(seq 1 300); do
    [[ -d /proc/$2 ]] || fail "server exited during startup"
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "server not ready: $1"
}

start_server() {  # name -> sets SERVER_PID SERVER_PORT
  local name=$1
  SERVER_PORT=$(free_port)
  case "$name" in
    nginx)
      mkdir -p "$TMP/nginx"
      python3 "$HELPER" nginx-conf --dir "$TMP/nginx" --root "$MEDIA" --port "$SERVER_PORT" --workers "$THREADS" \
        --worker-connections $(( IDLE + 1024 )) --rlimit-nofile $(( IDLE + 2048 )) >"$TMP/nginx/nginx.conf"
      "$NGINX_BIN" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/stdout.log" 2>&1 &
      ;;
    marquee|marquee-b)
      local bin=$MARQUEE_BIN
      [[ "$name" == marquee-b ]] && bin=$MARQUEE_BIN_B
      "$bin" origin --root "$MEDIA" --listen "127.0.0.1:$SERVER_PORT" --admin "127.0.0.1:$(free_port)" --threads "$THREADS" --no-require-token --config "$TMP/marquee.yaml" \
        >"$TMP/$name.log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_http "http://127.0.0.1:$SERVER_PORT$PATH_" "$SERVER_PID"
}

measure() {  # name round
  local name=$1 round=$2
  start_server "$name"
  wrk -t1 -c16 -d2s "http://127.0.0.1:$SERVER_PORT$PATH_" >/dev/null
  sleep 1
  local before after
  before=$(rss_kib "$SERVER_PID")
  rm -f "$TMP/status"
  python3 "$HELPER" hold-idle --port "$SERVER_PORT" --path "$PATH_" --count "$IDLE" --status "$TMP/status" &
  local holder=$!
  for _ in $(seq 1 1200); do
    grep -q '^READY' "$TMP/status" 2>/dev/null && break
    grep -q '^FAILED' "$TMP/status" 2>/dev/null && fail "$name: $(cat "$TMP/status")"
    sleep 0.1
  done
  grep -q '^READY' "$TMP/status" || fail "$name: idle connections not established"
  sleep 2
  after=$(rss_kib "$SERVER_PID")
  kill -TERM "$holder"; wait "$holder" 2>/dev/null || true
  local alive
  alive=$(awk '/^ALIVE/ {print $2}' "$TMP/status")
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  python3 -c "
import json
print(json.dumps({'server': '$name', 'round': $round, 'idle': $IDLE, 'alive_after': int('${alive:-0}' or 0),
  'rss_before_kib': $before, 'rss_after_kib': $after, 'bytes_per_idle_connection': round(($after - $before) * 1024 / $IDLE)}))" | tee -a "$TMP/results.jsonl"
}

SERVERS=(marquee nginx)
[[ -n "${MARQUEE_BIN_B:-}" ]] && SERVERS=(marquee marquee-b nginx)
for round in $(seq 1 "$ROUNDS"); do
  order=("${SERVERS[@]}")
  if (( round % 2 == 0 )); then order=($(printf '%s\n' "${SERVERS[@]}" | tac)); fi
  for s in "${order[@]}"; do measure "$s" "$round" >/dev/null; done
done
python3 - "$TMP/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| server | idle connections | still open after | bytes per idle connection (median of rounds) | rounds |")
print("|---|---:|---:|---:|---|")
by = {}
for r in rows: by.setdefault(r["server"], []).append(r)
for name, rs in by.items():
    print(f"| {name} | {rs[0]['idle']:,} | {min(r['alive_after'] for r in rs):,} | {statistics.median(r['bytes_per_idle_connection'] for r in rs):,.0f} | "
          + ", ".join(f"{r['bytes_per_idle_connection']:,}" for r in rs) + " |")
PY

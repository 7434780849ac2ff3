#!/usr/bin/env bash
# Edge benchmark: cache hits of `marquee edge` beside `marquee origin` serving the same files from
# disk, nginx proxy_cache and Varnish, all in front of the same `marquee origin`; then the misses:
# 1,000 concurrent requests for one uncached object (how many upstream fetches), the time to
# first byte of a miss at the edge against the origin's own, and the CPU per miss of the edge,
# nginx proxy_cache and Varnish.
#
#   Benchmarks/compare-edge.sh
#
# Scenarios (wrk, interleaved rounds; the order of the four servers rotates each round):
#   playlist  GET /bench/playlist.m3u8 (1,536 bytes)       wrk -t1 -c64
#   segment   GET /bench/segment.m4s   (2,097,152 bytes)   wrk -t1 -c16
#
# Environment (all optional):
#   MARQUEE_BIN=/path     this binary instead of `swift build -c release --product marquee`
#   ROUNDS=3  DURATION=5  WARMUP=2  THREADS=$(nproc)  WRK_THREADS=1  PLAYLIST_CONNS=64  SEGMENT_CONNS=16
#   SERVERS="edge origin nginx varnish"   which to measure
#   SCENARIOS="playlist segment"
#   CLIENTS=1000          concurrent clients of the coalescing run (0 skips it)
#   TTFB_SAMPLES=9        uncached objects timed for the time to first byte (0 skips it)
#   MISS_SAMPLES=40       uncached objects per cache for the CPU per miss (0 skips it)
#   OUT=Benchmarks/results/edge.md
#   MAX_OTHER=0.15 NOISE_RETRIES=2   a run with more CPU used by other processes is repeated
#   KEEP_TMP=1            keep the temporary folder
#
# Everything listens on 127.0.0.1; nothing under /etc or /var is touched. Run it alone: not while a
# build or another benchmark runs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
HELPER="$HERE/loadbench.py"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-$(nproc)}"
WRK_THREADS="${WRK_THREADS:-1}"
PLAYLIST_CONNS="${PLAYLIST_CONNS:-64}"
SEGMENT_CONNS="${SEGMENT_CONNS:-16}"
SERVERS="${SERVERS:-edge origin nginx varnish}"
SCENARIOS="${SCENARIOS:-playlist segment}"
CLIENTS="${CLIENTS:-1000}"
TTFB_SAMPLES="${TTFB_SAMPLES:-9}"
MISS_SAMPLES="${MISS_SAMPLES:-40}"
OUT="${OUT:-$HERE/results/edge.md}"
MAX_OTHER="${MAX_OTHER:-0.15}"
NOISE_RETRIES="${NOISE_RETRIES:-2}"
KEEP_TMP="${KEEP_TMP:-0}"

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'compare-edge: error: %s\n' "$*" >&2; exit 1; }

for v in ROUNDS DURATION WARMUP THREADS WRK_THREADS PLAYLIST_CONNS SEGMENT_CONNS CLIENTS TTFB_SAMPLES MISS_SAMPLES NOISE_RETRIES; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || fail "$v must be a non-negative integer (got '${!v}')"
done
for sv in $SERVERS; do [[ " edge origin nginx varnish " == *" $sv "* ]] || fail "unknown server '$sv' in SERVERS"; done
for sc in $SCENARIOS; do [[ "$sc" == playlist || "$sc" == segment ]] || fail "unknown scenario '$sc' in SCENARIOS"; done

# Tools (Debian): install what is missing.
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
[[ -x /usr/sbin/nginx ]] || need+=(nginx)
[[ -x /usr/sbin/varnishd ]] || need+=(varnish)
if (( ${#need[@]} )); then
  SUDO=""; (( EUID == 0 )) || SUDO="sudo"
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [[ -z "${MARQUEE_BIN:-}" ]]; then
  log "building marquee (release)"
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
fi
[[ -x "$MARQUEE_BIN" ]] || fail "MARQUEE_BIN=$MARQUEE_BIN is not executable"

hard_nofile=$(ulimit -Hn)
if [[ "$hard_nofile" == unlimited ]]; then ulimit -n 1048576 2>/dev/null || true; else ulimit -n "$hard_nofile" 2>/dev/null || true; fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/marquee-edge-bench.XXXXXX")"
chmod 755 "$TMP"
PIDS=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do pkill -KILL -P "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true; done
  if (( KEEP_TMP )) || (( rc != 0 )); then log "temporary files kept in $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_ready() {  # name pid url log
  local start=$SECONDS
  while (( SECONDS - start < 20 )); do
    [[ -d /proc/$2 ]] || { tail -n 20 "$4" >&2 || true; fail "$1 exited during startup"; }
    curl -fsS -o /dev/null --max-time 1 "$3" 2>/dev/null && return 0
    sleep 0.1
  done
  tail -n 20 "$4" >&2 || true
  fail "$1 not ready within 20 s ($3)"
}

# Media: the two benchmark files, and uncached objects for the miss measurements.
MEDIA="$TMP/media"
mkdir -p "$MEDIA"
python3 "$HELPER" make-media "$MEDIA"
mkdir -p "$MEDIA/cold"
head -c 2097152 /dev/urandom >"$MEDIA/cold/coalesce.m4s"
for (( i = 0; i < TTFB_SAMPLES; i++ )); do head -c 2097152 /dev/urandom >"$MEDIA/cold/ttfb-$i.m4s"; done
# The CPU-per-miss objects: the same bytes under a name per server and number (hard links).
head -c 2097152 /dev/urandom >"$MEDIA/cold/miss.m4s"
for sv in edge nginx varnish; do
  for (( i = 0; i < MISS_SAMPLES; i++ )); do ln "$MEDIA/cold/miss.m4s" "$MEDIA/cold/miss-$sv-$i.m4s"; done
done
chmod -R a+rX "$MEDIA"

read -r ORIGIN_PORT ORIGIN_ADMIN EDGE_PORT EDGE_ADMIN NGINX_PORT VARNISH_PORT <<<"$(python3 "$HELPER" free-ports 6)"
export MARQUEE_RATE_LIMITS_MAX_CONNECTIONS_PER_ADDRESS=0
export MARQUEE_BUS_LOG_DIR="$TMP/deliveries"

log "starting marquee origin on $ORIGIN_PORT"
# Playlists fresh for an hour, like the segments: every measured request is a hit on every cache.
MARQUEE_CACHE_CONTROL_MANIFEST="public, max-age=3600" "$MARQUEE_BIN" origin --root "$MEDIA" --listen "127.0.0.1:$ORIGIN_PORT" --admin "127.0.0.1:$ORIGIN_ADMIN" \
  --threads "$THREADS" --no-require-token --no-delivery-records >"$TMP/origin.log" 2>&1 &
ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")
wait_ready origin "$ORIGIN_PID" "http://127.0.0.1:$ORIGIN_ADMIN/readyz" "$TMP/origin.log"

log "starting marquee edge on $EDGE_PORT"
"$MARQUEE_BIN" edge --upstream "http://127.0.0.1:$ORIGIN_PORT" --cache-dir "$TMP/edge-cache" --listen "127.0.0.1:$EDGE_PORT" \
  --admin "127.0.0.1:$EDGE_ADMIN" --threads "$THREADS" --no-require-token --no-delivery-records >"$TMP/edge.log" 2>&1 &
EDGE_PID=$!; PIDS+=("$EDGE_PID")
wait_ready edge "$EDGE_PID" "http://127.0.0.1:$EDGE_ADMIN/readyz" "$TMP/edge.log"

log "starting nginx proxy_cache on $NGINX_PORT"
NGX="$TMP/nginx"
mkdir -p "$NGX/cache"
cat >"$NGX/nginx.conf" <<EOF
user root root;
daemon off;
master_process on;
worker_processes $THREADS;
worker_rlimit_nofile 20000;
pid $NGX/nginx.pid;
error_log $NGX/error.log notice;
events { worker_connections 10240; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $NGX/client_body_temp;
    proxy_temp_path $NGX/proxy_temp;
    fastcgi_temp_path $NGX/fastcgi_temp;
    uwsgi_temp_path $NGX/uwsgi_temp;
    scgi_temp_path $NGX/scgi_temp;
    proxy_cache_path $NGX/cache levels=1:2 keys_zone=edge:64m max_size=4g inactive=1d use_temp_path=off;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive 32; }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            proxy_cache_valid 200 1h;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_cache_lock on;
        }
    }
}
EOF
/usr/sbin/nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$NGX/stdout.log" 2>&1 &
NGINX_PID=$!; PIDS+=("$NGINX_PID")
wait_ready nginx "$NGINX_PID" "http://127.0.0.1:$NGINX_PORT/bench/playlist.m3u8" "$NGX/error.log"

log "starting Varnish on $VARNISH_PORT"
cat >"$TMP/varnish.vcl" <<EOF
vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "$ORIGIN_PORT"; }
sub vcl_backend_response { set beresp.ttl = 1h; set beresp.grace = 1h; }
EOF
/usr/sbin/varnishd -F -j none -n "$TMP/varnish-work" -f "$TMP/varnish.vcl" -a "127.0.0.1:$VARNISH_PORT" \
  -s malloc,1g -p thread_pools="$THREADS" >"$TMP/varnish.log" 2>&1 &
VARNISH_PID=$!; PIDS+=("$VARNISH_PID")
wait_ready varnish "$VARNISH_PID" "http://127.0.0.1:$VARNISH_PORT/bench/playlist.m3u8" "$TMP/varnish.log"

pid_of() { case $1 in edge) echo "$EDGE_PID" ;; origin) echo "$ORIGIN_PID" ;; nginx) echo "$NGINX_PID" ;; varnish) echo "$VARNISH_PID" ;; esac; }
port_of() { case $1 in edge) echo "$EDGE_PORT" ;; origin) echo "$ORIGIN_PORT" ;; nginx) echo "$NGINX_PORT" ;; varnish) echo "$VARNISH_PORT" ;; esac; }
path_of() { [[ $1 == playlist ]] && echo /bench/playlist.m3u8 || echo /bench/segment.m4s; }
conns_of() { [[ $1 == playlist ]] && echo "$PLAYLIST_CONNS" || echo "$SEGMENT_CONNS"; }

# Warm every cache: each object fetched twice through each server.
for sv in $SERVERS; do
  for sc in $SCENARIOS; do
    for _ in 1 2; do curl -fsS -o /dev/null "http://127.0.0.1:$(port_of "$sv")$(path_of "$sc")" || fail "$sv did not serve $(path_of "$sc")"; done
  done
done

RESULTS="$TMP/results.jsonl"
: >"$RESULTS"
read -r -a ALL <<<"$SERVERS"
for sc in $SCENARIOS; do
  log "scenario $sc: $ROUNDS round(s) of ${DURATION} s per server"
  if (( WARMUP > 0 )); then
    for sv in "${ALL[@]}"; do wrk "-t$WRK_THREADS" "-c$(conns_of "$sc")" "-d${WARMUP}s" "http://127.0.0.1:$(port_of "$sv")$(path_of "$sc")" >/dev/null; done
  fi
  for (( r = 1; r <= ROUNDS; r++ )); do
    n=${#ALL[@]}
    for (( k = 0; k < n; k++ )); do
      sv=${ALL[$(( (k + r - 1) % n ))]}
      python3 "$HELPER" measure --scenario "$sc" --server "$sv" --pid "$(pid_of "$sv")" --port "$(port_of "$sv")" \
        --path "$(path_of "$sc")" --file "$MEDIA$(path_of "$sc")" --round "$r" --order "$(( k + 1 ))" \
        --threads "$WRK_THREADS" --connections "$(conns_of "$sc")" --duration "$DURATION" \
        --out "$RESULTS" --max-other "$MAX_OTHER" --retries "$NOISE_RETRIES"
    done
  done
done

# Misses at the edge.
EXTRA="$TMP/extra.json"
edge_fetches() { curl -fsS "http://127.0.0.1:$EDGE_ADMIN/metrics" | awk '$1 == "marquee_cache_fetches_total" { print $2 }'; }
coalesce_json="null"
if (( CLIENTS > 0 )); then
  log "coalescing: $CLIENTS concurrent requests for one uncached object"
  before=$(edge_fetches)
  result=$(python3 "$HELPER" coalesce --port "$EDGE_PORT" --path /cold/coalesce.m4s --file "$MEDIA/cold/coalesce.m4s" --clients "$CLIENTS")
  after=$(edge_fetches)
  coalesce_json=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["upstream_fetches"]=int(float(sys.argv[3]))-int(float(sys.argv[2])); print(json.dumps(d))' "$result" "$before" "$after")
  log "coalescing: $coalesce_json"
fi
ttfb_json="null"
if (( TTFB_SAMPLES > 0 )); then
  log "time to first byte on a miss: $TTFB_SAMPLES objects"
  edge_t=(); origin_t=(); origin_ka=()
  for (( i = 0; i < TTFB_SAMPLES; i++ )); do
    # The origin's own first byte for the object (warm page cache for both), on a fresh connection
    # and on a keep-alive one like the edge's pooled upstream connection; then the edge's miss.
    cat "$MEDIA/cold/ttfb-$i.m4s" >/dev/null
    origin_t+=("$(python3 "$HELPER" ttfb --port "$ORIGIN_PORT" --path "/cold/ttfb-$i.m4s")")
    origin_ka+=("$(python3 "$HELPER" ttfb --port "$ORIGIN_PORT" --path "/cold/ttfb-$i.m4s" --after /cold/coalesce.m4s)")
    edge_t+=("$(python3 "$HELPER" ttfb --port "$EDGE_PORT" --path "/cold/ttfb-$i.m4s")")
  done
  ttfb_json=$(python3 -c 'import json,statistics,sys; n=int(sys.argv[1]); v=[float(x) for x in sys.argv[2:]]; print(json.dumps({"samples": n, "bytes": 2097152, "edge_ms": statistics.median(v[:n]), "origin_ms": statistics.median(v[n:2*n]), "origin_keepalive_ms": statistics.median(v[2*n:])}))' \
    "$TTFB_SAMPLES" "${edge_t[@]}" "${origin_t[@]}" "${origin_ka[@]}")
  log "ttfb: $ttfb_json"
fi
miss_json="null"
if (( MISS_SAMPLES > 0 )); then
  log "CPU per miss: $MISS_SAMPLES uncached objects through each cache"
  cpu_of=()
  for sv in edge nginx varnish; do
    [[ " $SERVERS " == *" $sv "* ]] || continue
    cpu_of+=("\"$sv\": $(python3 "$HELPER" miss-cpu --pid "$(pid_of "$sv")" --port "$(port_of "$sv")" \
      --path "/cold/miss-$sv-{n}.m4s" --file "$MEDIA/cold/miss.m4s" --count "$MISS_SAMPLES")")
  done
  miss_json="{\"count\": $MISS_SAMPLES, \"bytes\": 2097152, $(IFS=,; echo "${cpu_of[*]}")}"
  log "miss cpu: $miss_json"
fi
echo "{\"coalesce\": $coalesce_json, \"ttfb\": $ttfb_json, \"miss_cpu\": $miss_json}" >"$EXTRA"

cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
meta=$(date="$(date -u +%Y-%m-%dT%H:%MZ)" cpus="$(nproc)" cpu_model="$cpu_model" \
  nginx_version="$(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')" \
  varnish_version="$(/usr/sbin/varnishd -V 2>&1 | head -n1 | sed 's/ revision.*//; s/[()]//g')" \
  marquee_rev="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo uncommitted)" rounds="$ROUNDS" threads="$THREADS" \
  wrk_threads="$WRK_THREADS" playlist_conns="$PLAYLIST_CONNS" segment_conns="$SEGMENT_CONNS" duration="$DURATION" \
  python3 -c 'import json, os, sys; print(json.dumps({k: os.environ[k] for k in sys.argv[1:]}))' \
  date cpus cpu_model nginx_version varnish_version marquee_rev rounds threads wrk_threads playlist_conns segment_conns duration)
python3 "$HELPER" edge-report --results "$RESULTS" --out "$OUT" --meta "$meta" --extra "$EXTRA" --other-threshold "$MAX_OTHER"
cp "$RESULTS" "${OUT%.md}.jsonl"
cp "$EXTRA" "${OUT%.md}-misses.json"
log "report written to $OUT"

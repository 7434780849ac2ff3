#!/usr/bin/env bash
# Load benchmark: Marquee vs nginx serving the same HLS files over loopback.
#
#   Benchmarks/compare-nginx.sh
#
# Scenarios (wrk, interleaved A/B rounds, first server alternates per round):
#   playlist  GET /bench/playlist.m3u8 (1,536 bytes)       wrk -t1 -c64 -d10s --latency
#   segment   GET /bench/segment.m4s   (2,097,152 bytes)   wrk -t1 -c16 -d10s --latency
#   idle      the playlist scenario again while IDLE keep-alive connections
#             (each completed one request) are held open -> throughput drop %
#   handshake GET /bench/playlist.m3u8 with Connection: close: a new connection per request,
#             and with TLS=1 a handshake per request                          wrk -t1 -c64
#
# Environment (all optional):
#   MARQUEE_BIN=/path     use this binary instead of `swift build -c release --product marquee`
#   NGINX_BIN=/usr/sbin/nginx
#   ROUNDS=3              rounds per scenario (medians are reported)
#   DURATION=10           default wrk duration in seconds
#   PLAYLIST_DURATION, SEGMENT_DURATION, IDLE_DURATION   per-scenario durations (default DURATION)
#   PLAYLIST_CONNS=64  SEGMENT_CONNS=16                    wrk connections
#   WRK_THREADS=1         wrk threads (keep 1 on a 2-core box: wrk competes with the server)
#   THREADS=$(nproc)      nginx worker_processes and Marquee --threads
#   IDLE=10000            idle connections for the idle scenario; IDLE=0 skips it
#   WARMUP=2              seconds of unmeasured wrk per server and scenario (0 = none)
#   SCENARIOS="playlist segment"
#   OUT=Benchmarks/results/latest.md   where the Markdown report is written
#   KEEP_TMP=1            keep the temporary directory (configs, logs, raw wrk output)
#   TOKENS=1              signed URLs on both sides: Marquee requires a URL token (path placement,
#                         HMAC-SHA256), nginx checks secure_link (MD5 of expiry, URI, secret);
#                         IDLE defaults to 0 in this mode
#   BENCH_DIR=bench       folder (under the media root) the two files are served from; a media
#                         path such as titles/bench/v1 makes Marquee write a delivery record
#                         per response (see Benchmarks/records-overhead.sh)
#   TLS=1                 HTTPS on both sides with the same ECDSA P-256 certificate (made here):
#                         Marquee --tls-cert/--tls-key, nginx `listen ssl`; wrk speaks TLS. IDLE
#                         defaults to 0 in this mode. Typical: TLS=1 SCENARIOS="playlist segment handshake"
#   MARQUEE_ARGS=""       extra arguments for `marquee origin` (e.g. --no-delivery-records)
#   WRK_CPUS, SERVER_CPUS optional taskset CPU lists to pin wrk / both servers (default: no pinning)
#   MAX_OTHER=0.15        a run during which other processes used more CPU cores than this is
#   NOISE_RETRIES=2       discarded and repeated (at most NOISE_RETRIES times)
#
# The machine should be otherwise idle: every run records CPU used by anything
# other than the server and wrk, and the report warns when that was significant.
#
# Everything listens on 127.0.0.1 only; the script never touches /etc/nginx or /var.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
HELPER="$HERE/loadbench.py"

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
PLAYLIST_DURATION="${PLAYLIST_DURATION:-$DURATION}"
SEGMENT_DURATION="${SEGMENT_DURATION:-$DURATION}"
IDLE_DURATION="${IDLE_DURATION:-$PLAYLIST_DURATION}"
PLAYLIST_CONNS="${PLAYLIST_CONNS:-64}"
SEGMENT_CONNS="${SEGMENT_CONNS:-16}"
WRK_THREADS="${WRK_THREADS:-1}"
THREADS="${THREADS:-$(nproc)}"
TOKENS="${TOKENS:-0}"
TLS="${TLS:-0}"
if [[ "$TOKENS" == 1 || "$TLS" == 1 ]]; then IDLE="${IDLE:-0}"; else IDLE="${IDLE:-10000}"; fi
SCHEME=http; [[ "$TLS" == 1 ]] && SCHEME=https
WARMUP="${WARMUP:-2}"
SCENARIOS="${SCENARIOS:-playlist segment}"
OUT="${OUT:-$HERE/results/latest.md}"
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
KEEP_TMP="${KEEP_TMP:-0}"
WRK_CPUS="${WRK_CPUS:-}"
SERVER_CPUS="${SERVER_CPUS:-}"
MAX_OTHER="${MAX_OTHER:-0.15}"
NOISE_RETRIES="${NOISE_RETRIES:-2}"
READY_DEADLINE=15

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'compare-nginx: error: %s\n' "$*" >&2; exit 1; }

for v in ROUNDS DURATION PLAYLIST_DURATION SEGMENT_DURATION IDLE_DURATION PLAYLIST_CONNS \
         SEGMENT_CONNS WRK_THREADS THREADS IDLE WARMUP NOISE_RETRIES; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || fail "$v must be a non-negative integer (got '${!v}')"
done
(( ROUNDS >= 1 )) || fail "ROUNDS must be >= 1"
[[ "$MAX_OTHER" =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "MAX_OTHER must be a number of cores (got '$MAX_OTHER')"
for sc in $SCENARIOS; do
  [[ "$sc" == playlist || "$sc" == segment || "$sc" == handshake ]] || fail "unknown scenario '$sc' in SCENARIOS"
done

# ---------------------------------------------------------------------------
# Tools: install what is missing (Debian).
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
[[ "$TLS" == 1 ]] && ! command -v openssl >/dev/null && need+=(openssl)
[[ -x "$NGINX_BIN" ]] || { [[ "$NGINX_BIN" == /usr/sbin/nginx ]] && need+=(nginx); }
if (( ${#need[@]} )); then
  command -v apt-get >/dev/null || fail "missing tools (${need[*]}) and no apt-get"
  SUDO=""; (( EUID == 0 )) || SUDO="sudo"
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[[ -x "$NGINX_BIN" ]] || fail "nginx binary not found at $NGINX_BIN"
# (Installing the nginx package may start the system service on port 80; this script never uses it.)

# ---------------------------------------------------------------------------
# Marquee binary.
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  command -v swift >/dev/null || fail "swift not found; set MARQUEE_BIN=/path/to/marquee"
  log "building marquee (release)"
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
fi
[[ -x "$MARQUEE_BIN" ]] || fail "MARQUEE_BIN=$MARQUEE_BIN is not executable"

SERVER_PREFIX=()
WRK_PREFIX=()
if [[ -n "$SERVER_CPUS" || -n "$WRK_CPUS" ]]; then
  command -v taskset >/dev/null || fail "WRK_CPUS/SERVER_CPUS need taskset (util-linux)"
  [[ -n "$SERVER_CPUS" ]] && SERVER_PREFIX=(taskset -c "$SERVER_CPUS")
  [[ -n "$WRK_CPUS" ]] && WRK_PREFIX=(taskset -c "$WRK_CPUS")
fi

# Servers, wrk and the idle-connection holder inherit this limit (nginx also
# sets worker_rlimit_nofile). 10,000 idle connections need > 10,000 per process.
hard_nofile=$(ulimit -Hn)
if [[ "$hard_nofile" == unlimited ]]; then ulimit -n 1048576 2>/dev/null || true
else ulimit -n "$hard_nofile" 2>/dev/null || true; fi
nofile=$(ulimit -n)
[[ "$nofile" == unlimited ]] || (( nofile >= IDLE + 1024 )) \
  || log "warning: open-file limit $(ulimit -n) is too low for IDLE=$IDLE idle connections plus load"

PREFLIGHT_BUSY=$(python3 "$HELPER" host-busy 1)
if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 0.2 else 1)" "$PREFLIGHT_BUSY"; then
  log "warning: $PREFLIGHT_BUSY cores were already busy before the benchmark started; results will be noisy"
fi

# ---------------------------------------------------------------------------
# Temp dir, process bookkeeping, cleanup.
TMP="$(mktemp -d "${TMPDIR:-/tmp}/marquee-vs-nginx.XXXXXX")"
chmod 755 "$TMP"
PIDS=()          # every long-running process we started

descendants() {  # print $1 and all its descendants
  local root=$1 pid ppid rest f
  local -A kids=()
  for f in /proc/[0-9]*/stat; do
    { read -r rest <"$f"; } 2>/dev/null || continue
    rest=${rest##*) }; read -r _ ppid _ <<<"$rest"
    pid=${f#/proc/}; pid=${pid%/stat}
    kids[$ppid]+="$pid "
  done
  local todo=("$root") out=() n=0
  while (( ${#todo[@]} )) && (( n++ < 10000 )); do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    out+=("$pid")
    # shellcheck disable=SC2206
    [[ -n "${kids[$pid]:-}" ]] && todo+=(${kids[$pid]})
  done
  echo "${out[@]}"
}

kill_tree() {    # TERM a process and its descendants, wait up to 5 s, then KILL
  local root=$1 pids i
  [[ "$root" =~ ^[0-9]+$ && -d /proc/$root ]] || return 0
  read -r -a pids <<<"$(descendants "$root")"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for (( i = 0; i < 50; i++ )); do
    local alive=0 p
    for p in "${pids[@]}"; do [[ -d /proc/$p ]] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && alive=1; done
    (( alive )) || break
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
  wait "$root" 2>/dev/null || true
}

cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill_tree "$p"; done
  if (( KEEP_TMP )) || (( rc != 0 )); then
    log "temporary files kept in $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

untrack() {      # remove one pid from PIDS
  local keep=() p
  for p in "${PIDS[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# Run a command in the background, record its pid, wait for it (so that a
# signal interrupts the wait and the EXIT trap kills it and its children).
run_tracked() {
  "$@" &
  local pid=$!
  PIDS+=("$pid")
  local rc=0
  wait "$pid" || rc=$?
  untrack "$pid"
  return "$rc"
}

# ---------------------------------------------------------------------------
# Media root.
MEDIA="$TMP/media"
mkdir -p "$MEDIA"
python3 "$HELPER" make-media "$MEDIA"
BENCH_DIR="${BENCH_DIR:-bench}"
[[ "$BENCH_DIR" =~ ^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$ ]] || fail "BENCH_DIR must be a relative path (got '$BENCH_DIR')"
if [[ "$BENCH_DIR" != bench ]]; then
  mkdir -p "$MEDIA/$BENCH_DIR"
  mv "$MEDIA"/bench/* "$MEDIA/$BENCH_DIR/"
  rmdir "$MEDIA/bench"
fi
PLAYLIST_PATH=/$BENCH_DIR/playlist.m3u8
SEGMENT_PATH=/$BENCH_DIR/segment.m4s
read -r -a MARQUEE_EXTRA_ARGS <<<"${MARQUEE_ARGS:-}"

read -r NGINX_PORT MARQUEE_PORT ADMIN_PORT <<<"$(python3 "$HELPER" free-ports 3)"

# Signed URLs (TOKENS=1): each server gets its own form of a URL valid for a day.
SECURE_LINK_SECRET=""
# Public files unless TOKENS=1; one client address holds every connection here, so no per-address cap.
MARQUEE_TOKEN_ARGS=(--no-require-token)
export MARQUEE_RATE_LIMITS_MAX_CONNECTIONS_PER_ADDRESS=0
export MARQUEE_BUS_LOG_DIR="$TMP/deliveries"   # delivery records (media paths only), removed with $TMP
NGINX_PLAYLIST_PATH=$PLAYLIST_PATH
NGINX_SEGMENT_PATH=$SEGMENT_PATH
MARQUEE_PLAYLIST_PATH=$PLAYLIST_PATH
MARQUEE_SEGMENT_PATH=$SEGMENT_PATH
if [[ "$TOKENS" == 1 ]]; then
  head -c 32 /dev/urandom | base64 >"$TMP/bench.key"
  SECURE_LINK_SECRET=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  EXPIRES=$(( $(date +%s) + 86400 ))
  MARQUEE_TOKEN_ARGS=(--token-key "bench:$TMP/bench.key" --require-token)
  NGINX_PLAYLIST_PATH=$(python3 "$HELPER" secure-link --path "$PLAYLIST_PATH" --secret "$SECURE_LINK_SECRET" --expires "$EXPIRES")
  NGINX_SEGMENT_PATH=$(python3 "$HELPER" secure-link --path "$SEGMENT_PATH" --secret "$SECURE_LINK_SECRET" --expires "$EXPIRES")
fi

# HTTPS (TLS=1): one certificate for both servers.
TLS_NGINX_ARGS=()
TLS_MARQUEE_ARGS=()
if [[ "$TLS" == 1 ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/tls-key.pem" \
    -out "$TMP/tls-cert.pem" -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null \
    || fail "openssl could not make the benchmark's certificate"
  TLS_NGINX_ARGS=(--tls-cert "$TMP/tls-cert.pem" --tls-key "$TMP/tls-key.pem")
  TLS_MARQUEE_ARGS=(--tls-cert "$TMP/tls-cert.pem" --tls-key "$TMP/tls-key.pem")
fi

# ---------------------------------------------------------------------------
# nginx.
NGX="$TMP/nginx"
mkdir -p "$NGX"
WORKER_CONNECTIONS=$(( IDLE + 1024 > 10240 ? IDLE + 1024 : 10240 ))
NGINX_RLIMIT_NOFILE="${NGINX_RLIMIT_NOFILE:-20000}"
(( NGINX_RLIMIT_NOFILE > IDLE + 512 )) || NGINX_RLIMIT_NOFILE=$(( IDLE + 2048 ))
python3 "$HELPER" nginx-conf --dir "$NGX" --root "$MEDIA" --port "$NGINX_PORT" \
  --workers "$THREADS" --worker-connections "$WORKER_CONNECTIONS" \
  --rlimit-nofile "$NGINX_RLIMIT_NOFILE" --secure-link-secret "$SECURE_LINK_SECRET" \
  ${TLS_NGINX_ARGS[@]+"${TLS_NGINX_ARGS[@]}"} >"$NGX/nginx.conf"
"$NGINX_BIN" -t -q -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" \
  || fail "generated nginx config is invalid ($NGX/nginx.conf)"

log "starting nginx on 127.0.0.1:$NGINX_PORT ($THREADS workers)"
"${SERVER_PREFIX[@]}" "$NGINX_BIN" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$NGX/stdout.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")

wait_ready() {   # name pid url logfile
  local name=$1 pid=$2 url=$3 logf=$4 start=$SECONDS
  while (( SECONDS - start < READY_DEADLINE )); do
    [[ -d /proc/$pid ]] || { tail -n 30 "$logf" >&2 || true; fail "$name exited during startup"; }
    if curl -kfsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  tail -n 30 "$logf" >&2 || true
  fail "$name not ready within ${READY_DEADLINE}s ($url)"
}
wait_ready nginx "$NGINX_PID" "$SCHEME://127.0.0.1:$NGINX_PORT$NGINX_PLAYLIST_PATH" "$NGX/error.log"

# ---------------------------------------------------------------------------
# Marquee.
log "starting marquee on 127.0.0.1:$MARQUEE_PORT (admin $ADMIN_PORT, $THREADS threads)"
"${SERVER_PREFIX[@]}" "$MARQUEE_BIN" origin --root "$MEDIA" --listen "127.0.0.1:$MARQUEE_PORT" \
  --admin "127.0.0.1:$ADMIN_PORT" --threads "$THREADS" "${MARQUEE_TOKEN_ARGS[@]}" ${TLS_MARQUEE_ARGS[@]+"${TLS_MARQUEE_ARGS[@]}"} \
  ${MARQUEE_EXTRA_ARGS[@]+"${MARQUEE_EXTRA_ARGS[@]}"} \
  >"$TMP/marquee.log" 2>&1 &
MARQUEE_PID=$!
PIDS+=("$MARQUEE_PID")
wait_ready marquee "$MARQUEE_PID" "http://127.0.0.1:$ADMIN_PORT/readyz" "$TMP/marquee.log"
if [[ "$TOKENS" == 1 ]]; then
  sign() { "$MARQUEE_BIN" sign --key-id bench --secret-file "$TMP/bench.key" --scope "/$BENCH_DIR/" --ttl 86400 \
    --session bench-session --mode path --base "" "$1"; }
  MARQUEE_PLAYLIST_PATH=$(sign "$PLAYLIST_PATH")
  MARQUEE_SEGMENT_PATH=$(sign "$SEGMENT_PATH")
  code=$(curl -ks -o /dev/null -w '%{http_code}' "$SCHEME://127.0.0.1:$MARQUEE_PORT$PLAYLIST_PATH")
  [[ "$code" == 403 ]] || fail "marquee served an unsigned request with $code (tokens not enforced)"
  code=$(curl -ks -o /dev/null -w '%{http_code}' "$SCHEME://127.0.0.1:$NGINX_PORT$PLAYLIST_PATH")
  [[ "$code" == 403 ]] || fail "nginx served an unsigned request with $code (secure_link not enforced)"
fi

# ---------------------------------------------------------------------------
# Measurements.
RESULTS="$TMP/results.jsonl"
RAW="$TMP/wrk-raw.txt"
: >"$RESULTS"

pid_of()  { [[ $1 == nginx ]] && echo "$NGINX_PID" || echo "$MARQUEE_PID"; }
port_of() { [[ $1 == nginx ]] && echo "$NGINX_PORT" || echo "$MARQUEE_PORT"; }
path_of() {  # scenario [server]: the URL path the server is asked for (signed with TOKENS=1)
  case "$1:${2:-}" in
    playlist:nginx | handshake:nginx) echo "$NGINX_PLAYLIST_PATH" ;;
    segment:nginx) echo "$NGINX_SEGMENT_PATH" ;;
    playlist:marquee | handshake:marquee) echo "$MARQUEE_PLAYLIST_PATH" ;;
    segment:marquee) echo "$MARQUEE_SEGMENT_PATH" ;;
    playlist: | handshake:) echo "$PLAYLIST_PATH" ;;
    *) echo "$SEGMENT_PATH" ;;
  esac
}
conns_of() { [[ $1 == segment ]] && echo "$SEGMENT_CONNS" || echo "$PLAYLIST_CONNS"; }
dur_of()  { [[ $1 == segment ]] && echo "$SEGMENT_DURATION" || echo "$PLAYLIST_DURATION"; }

order_for_round() { (( $1 % 2 == 1 )) && echo "nginx marquee" || echo "marquee nginx"; }

measure() {  # scenario server round order idle duration [extra measure args...]
  local sc=$1 sv=$2 round=$3 order=$4 idle=$5 dur=$6
  shift 6
  run_tracked python3 "$HELPER" measure --scenario "$sc" --server "$sv" \
    --pid "$(pid_of "$sv")" --port "$(port_of "$sv")" --path "$(path_of "$sc" "$sv")" \
    --file "$MEDIA$(path_of "$sc")" --round "$round" --order "$order" --idle "$idle" \
    --threads "$WRK_THREADS" --connections "$(conns_of "$sc")" --duration "$dur" \
    --out "$RESULTS" --raw "$RAW" --max-other "$MAX_OTHER" --retries "$NOISE_RETRIES" \
    ${WRK_CPUS:+--wrk-cpus "$WRK_CPUS"} $([[ "$TLS" == 1 ]] && echo --tls) $([[ "$sc" == handshake ]] && echo --close) "$@"
}

warmup() {  # scenario
  local sc=$1 sv
  (( WARMUP > 0 )) || return 0
  for sv in nginx marquee; do
    "${WRK_PREFIX[@]}" wrk "-t$WRK_THREADS" "-c$(conns_of "$sc")" "-d${WARMUP}s" \
      "$SCHEME://127.0.0.1:$(port_of "$sv")$(path_of "$sc" "$sv")" >/dev/null \
      || fail "warm-up wrk against $sv failed"
  done
}

for sc in $SCENARIOS; do
  log "scenario $sc: $ROUNDS round(s), wrk -t$WRK_THREADS -c$(conns_of "$sc") -d$(dur_of "$sc")s"
  warmup "$sc"
  for (( r = 1; r <= ROUNDS; r++ )); do
    i=0
    for sv in $(order_for_round "$r"); do
      i=$(( i + 1 ))
      measure "$sc" "$sv" "$r" "$i" 0 "$(dur_of "$sc")"
    done
  done
done

if (( IDLE > 0 )); then
  [[ " $SCENARIOS " == *" playlist "* ]] || fail "IDLE needs the playlist scenario as its baseline"
  log "idle scenario: playlist with $IDLE idle keep-alive connections held open"
  for (( r = 1; r <= ROUNDS; r++ )); do
    i=0
    for sv in $(order_for_round "$r"); do
      i=$(( i + 1 ))
      # Retries for noisy runs happen here rather than inside `measure`: each attempt
      # gets freshly opened idle connections, so the hold time stays far below the
      # servers' idle timeouts (60-65 s).
      for (( attempt = 1; attempt <= NOISE_RETRIES + 1; attempt++ )); do
        status="$TMP/idle-$sv-$r-$attempt.status"
        : >"$status"
        python3 "$HELPER" hold-idle --port "$(port_of "$sv")" --path "$PLAYLIST_PATH" \
          --count "$IDLE" --status "$status" --timeout 120 &
        holder=$!
        PIDS+=("$holder")
        start=$SECONDS
        until grep -q '^READY' "$status"; do
          grep -q '^FAILED' "$status" && fail "idle connections to $sv: $(cat "$status")"
          [[ -d /proc/$holder ]] || fail "idle-connection holder for $sv exited: $(cat "$status")"
          (( SECONDS - start < 150 )) || fail "idle connections to $sv not established in 150s"
          sleep 0.2
        done
        sleep 1   # let the server settle (accept queues drained, responses flushed)
        mrc=0
        extra=(--retries 0 --attempt "$attempt")
        (( attempt <= NOISE_RETRIES )) && extra+=(--reject-noisy)
        measure playlist "$sv" "$r" "$i" "$IDLE" "$IDLE_DURATION" "${extra[@]}" || mrc=$?
        kill -TERM "$holder" 2>/dev/null || true
        wait "$holder" 2>/dev/null || true
        untrack "$holder"
        (( mrc == 0 || mrc == 3 )) || exit "$mrc"
        if (( mrc == 3 )); then
          python3 "$HELPER" wait-quiet --max-busy "$MAX_OTHER" --deadline 30
          continue
        fi
        alive=$(sed -n 's/^ALIVE //p' "$status")
        python3 "$HELPER" annotate-idle --results "$RESULTS" --server "$sv" --round "$r" --alive "${alive:--1}"
        [[ "${alive:-0}" == "$IDLE" ]] || log "warning: only ${alive:-?} of $IDLE idle connections to $sv were still open after the run"
        break
      done
      sleep 1   # let the server reap the closed connections
    done
  done
fi

# Delivery-record counters, when Marquee wrote records (a media BENCH_DIR): the runs must show
# as many records as requests and zero drops.
curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" 2>/dev/null | grep -E '^marquee_(delivery_(records|carrier)|tls_)' \
  >"${OUT%.md}.records.txt" || true

# ---------------------------------------------------------------------------
# Report.
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
marquee_rev=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "uncommitted")
nginx_version=$("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //')
wrk_version=$(wrk --version 2>&1 | head -n1 | awk '{print "wrk " $2}' || true)
meta=$(date="$(date -u +%Y-%m-%dT%H:%MZ)" cpus="$(nproc)" cpu_model="$cpu_model" \
  nginx_version="$nginx_version" wrk_version="$wrk_version" marquee_bin="$MARQUEE_BIN" \
  marquee_rev="$marquee_rev" rounds="$ROUNDS" threads="$THREADS" wrk_threads="$WRK_THREADS" \
  playlist_conns="$PLAYLIST_CONNS" playlist_duration="$PLAYLIST_DURATION" \
  segment_conns="$SEGMENT_CONNS" segment_duration="$SEGMENT_DURATION" idle="$IDLE" \
  preflight_busy="$PREFLIGHT_BUSY" tokens="$TOKENS" tls="$TLS" \
  python3 -c 'import json, os, sys; print(json.dumps({k: os.environ[k] for k in sys.argv[1:]}))' \
  date cpus cpu_model nginx_version wrk_version marquee_bin marquee_rev rounds threads \
  wrk_threads playlist_conns playlist_duration segment_conns segment_duration idle preflight_busy tokens tls)
mkdir -p "$(dirname "$OUT")"
echo
python3 "$HELPER" report --results "$RESULTS" --out "$OUT" --meta "$meta" --other-threshold "$MAX_OTHER"
cp "$RESULTS" "${OUT%.md}.jsonl"
log "report written to $OUT (raw rounds: ${OUT%.md}.jsonl)"

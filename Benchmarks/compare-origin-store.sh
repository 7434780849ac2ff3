#!/usr/bin/env bash
# Serving from S3 through the origin's read-through cache (warm) against serving the same files
# from a folder, and against nginx: requests per second with wrk, interleaved rounds, medians and
# ratios. Every scenario first checks that each server answers 200 with the right bytes, and a
# run whose wrk reports non-2xx responses fails (an earlier script measured 403s).
#
#   Benchmarks/compare-origin-store.sh
#
# Scenarios: playlist  GET /bench/playlist.m3u8 (1,536 bytes)      wrk -t1 -c64
#            segment   GET /bench/segment.m4s   (2,097,152 bytes)  wrk -t1 -c16
#
# Environment (all optional):
#   MARQUEE_BIN=/path   the binary (default: swift build -c release --product marquee)
#   NGINX_BIN=/usr/sbin/nginx
#   ROUNDS=3  DURATION=10  WARMUP=2  THREADS=$(nproc)  WRK_THREADS=1
#   PLAYLIST_CONNS=64  SEGMENT_CONNS=16  SCENARIOS="playlist segment"
#   SERVERS="nginx root store"   which servers to measure
#   OUT=Benchmarks/results/origin-store.md
# Needs the test venv for moto's S3 server (scripts/install-deps bench; scripts/install-deps test
# makes .build/python). Listens on 127.0.0.1 only. Run it on an otherwise idle machine.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
HELPER="$HERE/loadbench.py"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-$(nproc)}"
WRK_THREADS="${WRK_THREADS:-1}"
PLAYLIST_CONNS="${PLAYLIST_CONNS:-64}"
SEGMENT_CONNS="${SEGMENT_CONNS:-16}"
SCENARIOS="${SCENARIOS:-playlist segment}"
SERVERS="${SERVERS:-nginx root store}"
OUT="${OUT:-$HERE/results/origin-store.md}"
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
VENV="$REPO/.build/python"

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'compare-origin-store: error: %s\n' "$*" >&2; exit 1; }
for v in ROUNDS DURATION WARMUP THREADS WRK_THREADS PLAYLIST_CONNS SEGMENT_CONNS; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || fail "$v must be a non-negative integer (got '${!v}')"
done
command -v wrk >/dev/null || fail "wrk is missing: scripts/install-deps bench"
[[ " $SERVERS " != *" nginx "* || -x "$NGINX_BIN" ]] || fail "nginx is missing: scripts/install-deps bench"
[[ " $SERVERS " != *" store "* || -x "$VENV/bin/moto_server" ]] || fail "moto_server is missing: scripts/install-deps test"

if [[ -z "${MARQUEE_BIN:-}" ]]; then
  log "building marquee (release)"
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
fi
[[ -x "$MARQUEE_BIN" ]] || fail "MARQUEE_BIN=$MARQUEE_BIN is not executable"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/marquee-origin-store.XXXXXX")"
chmod 755 "$TMP"
PIDS=()
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  # moto's server does not stop on SIGTERM.
  [[ -z "${MOTO_PID:-}" ]] || kill -KILL "$MOTO_PID" 2>/dev/null || true
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if (( rc != 0 )); then log "temporary files kept in $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

MEDIA="$TMP/media"
mkdir -p "$MEDIA"
python3 "$HELPER" make-media "$MEDIA"
read -r NGINX_PORT ROOT_PORT ROOT_ADMIN STORE_PORT STORE_ADMIN MOTO_PORT <<<"$(python3 "$HELPER" free-ports 6)"

wait_url() {  # name pid url
  local i
  for (( i = 0; i < 300; i++ )); do
    [[ -d /proc/$2 ]] || fail "$1 exited during startup (logs in $TMP)"
    curl -fsS -o /dev/null --max-time 1 "$3" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$1 not ready ($3)"
}

if [[ " $SERVERS " == *" nginx "* ]]; then
  mkdir -p "$TMP/nginx"
  python3 "$HELPER" nginx-conf --dir "$TMP/nginx" --root "$MEDIA" --port "$NGINX_PORT" --workers "$THREADS" \
    --worker-connections 10240 --rlimit-nofile 20000 --secure-link-secret "" >"$TMP/nginx/nginx.conf"
  "$NGINX_BIN" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" >"$TMP/nginx/stdout.log" 2>&1 &
  PIDS+=($!)
  wait_url nginx "$!" "http://127.0.0.1:$NGINX_PORT/bench/playlist.m3u8"
fi
if [[ " $SERVERS " == *" root "* ]]; then
  "$MARQUEE_BIN" origin --root "$MEDIA" --listen "127.0.0.1:$ROOT_PORT" --admin "127.0.0.1:$ROOT_ADMIN" \
    --threads "$THREADS" --no-require-token >"$TMP/root.log" 2>&1 &
  PIDS+=($!)
  wait_url "marquee --root" "$!" "http://127.0.0.1:$ROOT_ADMIN/readyz"
fi
if [[ " $SERVERS " == *" store "* ]]; then
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$TMP/moto.log" 2>&1 &
  MOTO_PID=$!
  PIDS+=("$MOTO_PID")
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
  for (( i = 0; i < 300; i++ )); do curl -s -o /dev/null "http://127.0.0.1:$MOTO_PORT/" && break; sleep 0.1; done
  "$VENV/bin/python" - "$MOTO_PORT" "$MEDIA" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench-secret")
s3.create_bucket(Bucket="bench")
for name in ("playlist.m3u8", "segment.m4s"):
    s3.upload_file(f"{sys.argv[2]}/bench/{name}", "bench", f"bench/{name}")
PY
  "$MARQUEE_BIN" origin --store "s3://bench?endpoint=http://127.0.0.1:$MOTO_PORT&region=us-east-1" \
    --cache-dir "$TMP/cache" --cache-max-bytes 1073741824 --listen "127.0.0.1:$STORE_PORT" \
    --admin "127.0.0.1:$STORE_ADMIN" --threads "$THREADS" --no-require-token >"$TMP/store.log" 2>&1 &
  PIDS+=($!)
  wait_url "marquee --store" "$!" "http://127.0.0.1:$STORE_ADMIN/readyz"
fi

port_of() { case $1 in nginx) echo "$NGINX_PORT" ;; root) echo "$ROOT_PORT" ;; store) echo "$STORE_PORT" ;; esac; }
path_of() { [[ $1 == playlist ]] && echo /bench/playlist.m3u8 || echo /bench/segment.m4s; }
conns_of() { [[ $1 == playlist ]] && echo "$PLAYLIST_CONNS" || echo "$SEGMENT_CONNS"; }
store_fetches() { curl -fsS "http://127.0.0.1:$STORE_ADMIN/metrics" | awk '$1 == "marquee_cache_fetches_total" {print $2}'; }

# Every server answers 200 with the file's bytes (this also warms the store's cache).
for sc in $SCENARIOS; do
  for sv in $SERVERS; do
    code=$(curl -s -o "$TMP/check" -w '%{http_code}' "http://127.0.0.1:$(port_of "$sv")$(path_of "$sc")")
    [[ "$code" == 200 ]] || fail "$sv answered $code for $(path_of "$sc")"
    cmp -s "$TMP/check" "$MEDIA$(path_of "$sc")" || fail "$sv served different bytes for $(path_of "$sc")"
  done
done
[[ " $SERVERS " != *" store "* ]] || FETCHES_WARM=$(store_fetches)

RESULTS="$TMP/results.txt"
: >"$RESULTS"
run_wrk() {  # scenario server seconds -> requests/s (fails on non-2xx)
  local out
  out=$(wrk "-t$WRK_THREADS" "-c$(conns_of "$1")" "-d${3}s" "http://127.0.0.1:$(port_of "$2")$(path_of "$1")")
  if grep -q 'Non-2xx' <<<"$out"; then fail "$2 answered non-2xx during $1: $(grep Non-2xx <<<"$out")"; fi
  awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}
for sc in $SCENARIOS; do
  log "scenario $sc: $ROUNDS round(s) of ${DURATION}s per server ($SERVERS)"
  if (( WARMUP > 0 )); then for sv in $SERVERS; do run_wrk "$sc" "$sv" "$WARMUP" >/dev/null; done; fi
  read -r -a order <<<"$SERVERS"
  for (( r = 1; r <= ROUNDS; r++ )); do
    for sv in "${order[@]}"; do
      rps=$(run_wrk "$sc" "$sv" "$DURATION")
      echo "$sc $sv $r $rps" >>"$RESULTS"
      log "  round $r $sv: $rps req/s"
    done
    order=("${order[@]:1}" "${order[0]}")   # rotate who goes first
  done
done
if [[ " $SERVERS " == *" store "* ]]; then
  [[ "$(store_fetches)" == "$FETCHES_WARM" ]] || fail "the store's cache fetched during the run (not warm)"
fi

mkdir -p "$(dirname "$OUT")"
python3 - "$RESULTS" "$OUT" "$SERVERS" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')" <<'PY'
import sys, statistics, collections
results, out, servers, date, rev = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5]
rps = collections.defaultdict(list)
for line in open(results):
    sc, sv, _, value = line.split()
    rps[(sc, sv)].append(float(value))
scenarios = list(dict.fromkeys(sc for sc, _ in rps))
lines = [f"# Origin: S3 through the cache (warm) vs a folder vs nginx ({date}, marquee {rev})", "",
         "| scenario | " + " | ".join(f"{s} req/s (median)" for s in servers) + " | store/root | store/nginx |",
         "|---|" + "---|" * (len(servers) + 2)]
for sc in scenarios:
    med = {sv: statistics.median(rps[(sc, sv)]) for sv in servers if rps[(sc, sv)]}
    ratio = lambda a, b: f"{med[a] / med[b]:.2f}" if a in med and b in med and med[b] else "-"
    lines.append(f"| {sc} | " + " | ".join(f"{med.get(sv, 0):,.0f}" for sv in servers)
                 + f" | {ratio('store', 'root')} | {ratio('store', 'nginx')} |")
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
log "report written to $OUT"

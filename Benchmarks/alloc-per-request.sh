#!/usr/bin/env bash
# Heap allocations per request of the release server in steady state: counts every malloc of the
# process (LD_PRELOAD counter) before and after a wrk run that follows a warm-up, and divides.
# Each path is first checked to answer 200, and a run with non-2xx responses fails: the files
# once lived under /t/, which the gateway reads as a signed path, so every request was a 403.
# Usage: Benchmarks/alloc-per-request.sh   (env: MARQUEE_BIN, DURATION=5,
#        SOURCE=root | store: serve a folder, or the same files from moto's S3 through the
#        read-through cache, warmed first; store needs the test venv, scripts/install-deps test;
#        TLS=1: over HTTPS with an ECDSA P-256 certificate made here: after the warm-up's
#        handshakes, what a request on an open connection allocates)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps bench
source_kind=${SOURCE:-root}
[[ "$source_kind" == root || "$source_kind" == store ]] || { echo "SOURCE must be root or store" >&2; exit 2; }
bin=${MARQUEE_BIN:-}
if [ -z "$bin" ]; then swift build -c release --product marquee >&2; bin=.build/release/marquee; fi
work=$(mktemp -d)
pids=()
# moto's server does not stop on SIGTERM, hence KILL.
trap 'for p in "${pids[@]}"; do kill -KILL $p 2>/dev/null; done; rm -rf "$work"' EXIT
gcc -O2 -shared -fPIC -o "$work/counter.so" Benchmarks/malloc-counter.c -ldl
# BENCH_DIR=titles/bench/v1 serves a media path, where every response also leaves a delivery record.
bench_dir=${BENCH_DIR:-bench}
mkdir -p "$work/root/$bench_dir"
head -c 1536 /dev/urandom | base64 -w 76 | head -c 1536 > "$work/root/$bench_dir/playlist.m3u8"
head -c 2097152 /dev/urandom > "$work/root/$bench_dir/segment.m4s"
serving=(--root "$work/root")
scheme=http
if [ "${TLS:-0}" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
  serving+=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
  scheme=https
fi
export MARQUEE_BUS_LOG_DIR="$work/deliveries"
if [ "$source_kind" = store ]; then
  moto_port=$(python3 Benchmarks/loadbench.py free-ports 1)
  .build/python/bin/moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do curl -s -o /dev/null "http://127.0.0.1:$moto_port/" && break; sleep 0.1; done
  .build/python/bin/python - "$moto_port" "$work/root" "$bench_dir" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="bench", aws_secret_access_key="bench-secret")
s3.create_bucket(Bucket="bench")
for name in ("playlist.m3u8", "segment.m4s"):
    s3.upload_file(f"{sys.argv[2]}/{sys.argv[3]}/{name}", "bench", f"{sys.argv[3]}/{name}")
PY
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
  serving=(--store "s3://bench?endpoint=http://127.0.0.1:$moto_port&region=us-east-1" --cache-dir "$work/cache")
fi
LD_PRELOAD="$work/counter.so" "$bin" origin "${serving[@]}" --listen 127.0.0.1:0 --admin off --threads 2 --no-require-token \
  >"$work/out" 2>"$work/err" &
pid=$!
pids+=($pid)
for _ in $(seq 1 200); do grep -q listening "$work/out" && break; sleep 0.05; done
port=$(sed -n 's/.*https*:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/out" | head -1)
reading() { kill -USR2 $pid; sleep 0.2; tail -1 "$work/err" | awk '{print $2}'; }
echo "source: $source_kind, $scheme"
for path in "$bench_dir/playlist.m3u8" "$bench_dir/segment.m4s"; do
  code=$(curl -ks -o "$work/check" -w '%{http_code}' "$scheme://127.0.0.1:$port/$path")
  [ "$code" = 200 ] && cmp -s "$work/check" "$work/root/$path" || { echo "$path answered $code (or other bytes); not measuring" >&2; exit 1; }
  wrk -t1 -c32 -d2s "$scheme://127.0.0.1:$port/$path" >/dev/null   # warm-up: pools and caches fill
  # Two runs, 1 s and DURATION: each opens 32 connections, so the difference between them is
  # what requests alone allocate (over TLS a connection's handshake allocates ~24 blocks).
  counts=()
  for seconds in 1 ${DURATION:-5}; do
    before=$(reading)
    out=$(wrk -t1 -c32 -d${seconds}s "$scheme://127.0.0.1:$port/$path")
    after=$(reading)
    if grep -q Non-2xx <<<"$out"; then echo "$path: $(grep Non-2xx <<<"$out")" >&2; exit 1; fi
    counts+=("$(awk '/requests in/{print $1}' <<<"$out") $((after - before)) $after")
  done
  awk -v short="${counts[0]}" -v long="${counts[1]}" -v p="$path" 'BEGIN{
    split(short, s, " "); split(long, l, " ")
    printf "%-18s %9d requests  %6d allocations (process total so far %d)  %.4f per request", p, l[1], l[2], l[3], l[2]/l[1]
    printf "; beyond the connections: %.4f\n", (l[1] > s[1]) ? (l[2]-s[2])/(l[1]-s[1]) : 0 }'
done

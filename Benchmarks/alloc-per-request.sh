#!/usr/bin/env bash
# Heap allocations per request of the release server in steady state: counts every malloc of the
# process (LD_PRELOAD counter) before and after a wrk run that follows a warm-up, and divides.
# Usage: Benchmarks/alloc-per-request.sh   (env: MARQUEE_BIN, DURATION=5)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps bench
bin=${MARQUEE_BIN:-}
if [ -z "$bin" ]; then swift build -c release --product marquee >&2; bin=.build/release/marquee; fi
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
gcc -O2 -shared -fPIC -o "$work/counter.so" Benchmarks/malloc-counter.c -ldl
mkdir -p "$work/root/t"
head -c 1536 /dev/urandom | base64 -w 76 | head -c 1536 > "$work/root/t/playlist.m3u8"
head -c 2097152 /dev/urandom > "$work/root/t/segment.m4s"
LD_PRELOAD="$work/counter.so" "$bin" origin --root "$work/root" --listen 127.0.0.1:0 --admin off --threads 2 \
  >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 200); do grep -q listening "$work/out" && break; sleep 0.05; done
port=$(sed -n 's/.*http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/out" | head -1)
reading() { kill -USR2 $pid; sleep 0.2; tail -1 "$work/err" | awk '{print $2}'; }
for path in t/playlist.m3u8 t/segment.m4s; do
  wrk -t1 -c32 -d2s "http://127.0.0.1:$port/$path" >/dev/null   # warm-up: pools and caches fill
  before=$(reading)
  requests=$(wrk -t1 -c32 -d${DURATION:-5}s "http://127.0.0.1:$port/$path" | awk '/requests in/{print $1}')
  after=$(reading)
  awk -v b="$before" -v a="$after" -v r="$requests" -v p="$path" \
    'BEGIN{printf "%-18s %9d requests  %6d allocations (process total so far %d)  %.4f per request\n", p, r, a-b, a, (a-b)/r}'
done

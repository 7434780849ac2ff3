#!/usr/bin/env bash
# API proxy benchmark: the same catalog service reached directly, through the io_uring gateway
# (`marquee origin --service catalog=...`) and through nginx (proxy_pass with a keep-alive
# upstream pool), over loopback, in interleaved rounds.
#
#   Benchmarks/compare-api-proxy.sh
#
# Scenarios (wrk -t1 -cCONNS -dDURATION):
#   title  GET /api/catalog/titles/<id>            one title, ~700 bytes of JSON
#   list   GET /api/catalog/titles?limit=20        a page of 20 titles, ~14 KB
# Reported per scenario and path: requests/s (median of rounds), p50/p99 latency, and the proxy's
# own CPU per request (user+system of the gateway or of nginx's master and workers, from
# /proc/<pid>/stat), so the proxies are compared by what they cost, not only by what the
# service behind them can answer.
#
# Environment: MARQUEE_BIN (default: swift build -c release), ROUNDS=3, DURATION=10, CONNS=32,
# THREADS=$(nproc) (gateway loops and nginx workers), OUT=Benchmarks/results/api-proxy.md.
# Run it alone: not while a build or another benchmark runs.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
ROUNDS="${ROUNDS:-3}"; DURATION="${DURATION:-10}"; CONNS="${CONNS:-32}"; THREADS="${THREADS:-$(nproc)}"
OUT="${OUT:-$HERE/results/api-proxy.md}"
"$REPO/scripts/install-deps" bench >&2
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$REPO/.build/release/marquee"
fi
TMP="$(mktemp -d /tmp/marquee-api-bench-XXXXXX)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ok() { for _ in $(seq 1 400); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "not ready: $1" >&2; exit 1; }
json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

AUTH=$(free_port); CATALOG=$(free_port); GATEWAY=$(free_port); ADMIN=$(free_port); NGINX=$(free_port)
echo "benchmark passphrase" > "$TMP/pw"
"$MARQUEE_BIN" users add --email pub@bench.example --role publisher --password-file "$TMP/pw" --data "$TMP" >/dev/null
MARQUEE_AUTH_BCRYPT_COST=10 "$MARQUEE_BIN" auth --listen 127.0.0.1:$AUTH --data "$TMP" >"$TMP/auth.log" 2>&1 & pids+=($!)
"$MARQUEE_BIN" catalog --listen 127.0.0.1:$CATALOG --data "$TMP" --auth-url http://127.0.0.1:$AUTH >"$TMP/catalog.log" 2>&1 & pids+=($!)
wait_ok http://127.0.0.1:$AUTH/readyz; wait_ok http://127.0.0.1:$CATALOG/readyz
token=$(curl -fsS -X POST http://127.0.0.1:$AUTH/api/auth/login -H 'Content-Type: application/json' \
  -d '{"email":"pub@bench.example","password":"benchmark passphrase"}' | json_field access_token)
for i in $(seq 1 20); do
  id=$(curl -fsS -X POST http://127.0.0.1:$CATALOG/api/catalog/titles -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"name\":\"Benchmark title $i\",\"description\":\"A title used to measure the API path, number $i of 20.\",\"genres\":[\"drama\",\"bench\"],\"cast\":[\"Ada Lovelace\",\"Grace Hopper\"],\"year\":2000,\"price_per_minute\":3,\"currency\":\"EUR\",\"geo\":{\"mode\":\"deny\",\"countries\":[\"FR\"]}}" | json_field id)
  curl -fsS -o /dev/null -X PUT http://127.0.0.1:$CATALOG/api/catalog/titles/$id/package -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"package_version":"1","renditions":[{"name":"720p","width":1280,"height":720,"bandwidth":2800000,"codecs":"avc1.64001f,mp4a.40.2"},{"name":"360p","width":640,"height":360,"bandwidth":900000,"codecs":"avc1.64001e,mp4a.40.2"}]}'
  curl -fsS -o /dev/null -X POST http://127.0.0.1:$CATALOG/api/catalog/titles/$id/publish -H "Authorization: Bearer $token"
done
mkdir -p "$TMP/media"
"$MARQUEE_BIN" origin --root "$TMP/media" --listen 127.0.0.1:$GATEWAY --admin 127.0.0.1:$ADMIN --threads "$THREADS" --no-require-token \
  --service catalog=http://127.0.0.1:$CATALOG >"$TMP/origin.log" 2>&1 & GATEWAY_PID=$!; pids+=($GATEWAY_PID)
cat >"$TMP/nginx.conf" <<NGINX
worker_processes $THREADS;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream catalog { server 127.0.0.1:$CATALOG; keepalive 32; }
  server {
    listen 127.0.0.1:$NGINX;
    location /api/ {
      proxy_pass http://catalog;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto http;
      proxy_buffering on;
    }
  }
}
NGINX
/usr/sbin/nginx -c "$TMP/nginx.conf" -p "$TMP"
pids+=($(cat "$TMP/nginx.pid"))
wait_ok "http://127.0.0.1:$GATEWAY/api/catalog/titles/$id"; wait_ok "http://127.0.0.1:$NGINX/api/catalog/titles/$id"

cpu_ticks() {  # user+system clock ticks of the processes named by the pid list
  local total=0
  for p in "$@"; do total=$((total + $(awk '{print $14 + $15}' /proc/$p/stat))); done
  echo $total
}
nginx_pids() { echo "$(cat "$TMP/nginx.pid") $(pgrep -P "$(cat "$TMP/nginx.pid")" | tr '\n' ' ')"; }
declare -A PORT=([direct]=$CATALOG [marquee]=$GATEWAY [nginx]=$NGINX)
declare -A PATHS=([title]="/api/catalog/titles/$id" [list]="/api/catalog/titles?limit=20")
RESULTS="$TMP/results.tsv"; : >"$RESULTS"
for scenario in title list; do
  for round in $(seq 1 "$ROUNDS"); do
    order=(direct marquee nginx); (( round % 2 == 0 )) && order=(nginx marquee direct)
    for target in "${order[@]}"; do
      url="http://127.0.0.1:${PORT[$target]}${PATHS[$scenario]}"
      wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null 2>&1  # warm-up
      case $target in marquee) procs="$GATEWAY_PID" ;; nginx) procs="$(nginx_pids)" ;; direct) procs="" ;; esac
      before=0; [[ -n "$procs" ]] && before=$(cpu_ticks $procs)
      out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url")
      after=0; [[ -n "$procs" ]] && after=$(cpu_ticks $procs)
      echo -e "$scenario\t$round\t$target\t$((after - before))\t$(echo "$out" | tr '\n' '|')" >>"$RESULTS"
      echo "$scenario round $round $target: $(echo "$out" | grep Requests/sec)" >&2
    done
  done
done

python3 - "$RESULTS" "$OUT" "$(getconf CLK_TCK)" "$THREADS" "$CONNS" "$DURATION" "$ROUNDS" <<'PY'
import statistics, sys, re
results, out, hz, threads, conns, duration, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]
def ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rows = {}
for line in open(results):
    scenario, round_, target, ticks, raw = line.rstrip("\n").split("\t", 4)
    text = raw.replace("|", "\n")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    p50 = ms(re.search(r"50%\s+(\S+)", text).group(1)); p99 = ms(re.search(r"99%\s+(\S+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    cpu_us = int(ticks) / hz * 1e6 / total if total else 0
    rows.setdefault((scenario, target), []).append((rps, p50, p99, cpu_us, int(errors.group(1)) if errors else 0))
med = lambda xs: statistics.median(xs)
lines = ["# API proxy: direct vs Marquee gateway vs nginx (same catalog service)", "",
         f"wrk -t1 -c{conns} -d{duration}s, {rounds} interleaved rounds, medians; gateway loops = nginx workers = {threads}; "
         "catalog on SQLite (release build). CPU/request is the proxy's own user+system time.", "",
         "| scenario | path | req/s | p50 ms | p99 ms | proxy CPU µs/req | non-2xx |", "|---|---|---|---|---|---|---|"]
for scenario in ("title", "list"):
    for target in ("direct", "marquee", "nginx"):
        r = rows[(scenario, target)]
        lines.append(f"| {scenario} | {target} | {med([x[0] for x in r]):,.0f} | {med([x[1] for x in r]):.2f} | {med([x[2] for x in r]):.2f} | "
                     + (f"{med([x[3] for x in r]):.1f}" if target != "direct" else "–") + f" | {sum(x[4] for x in r)} |")
lines.append("")
for scenario in ("title", "list"):
    m, n, d = rows[(scenario, "marquee")], rows[(scenario, "nginx")], rows[(scenario, "direct")]
    lines.append(f"- {scenario}: Marquee/nginx req/s {med([x[0] for x in m]) / med([x[0] for x in n]):.2f}×, "
                 f"proxy CPU/request {med([x[3] for x in m]) / med([x[3] for x in n]):.2f}×; Marquee/direct req/s {med([x[0] for x in m]) / med([x[0] for x in d]):.2f}×")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

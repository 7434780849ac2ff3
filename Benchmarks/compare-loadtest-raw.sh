#!/usr/bin/env bash
# Load client benchmark: `marquee loadtest --raw` against wrk, hammering the same `marquee origin`
# (a 1.5 KB playlist and a 2 MB segment), interleaved rounds. Issue 16's target: raw mode reaches
# >= 1.0x wrk's request rate at equal or lower client CPU per request.
#
#   Benchmarks/compare-loadtest-raw.sh
#
# Environment (all optional):
#   MARQUEE_BIN=/path   this binary instead of `swift build -c release --product marquee`
#   ROUNDS=3  DURATION=5  CONNS=64  SEGMENT_CONNS=16  SERVER_THREADS=1  OUT=Benchmarks/results/loadtest-raw.md
#
# Both clients run one thread; the server gets SERVER_THREADS loops, so on 2 cores each side has
# one. Client CPU is the client process's user+system time (getrusage of the child). Run it alone:
# not while a build or another benchmark runs.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
HELPER="$HERE/loadbench.py"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-5}"
CONNS="${CONNS:-64}"
SEGMENT_CONNS="${SEGMENT_CONNS:-16}"
SERVER_THREADS="${SERVER_THREADS:-1}"
OUT="${OUT:-$HERE/results/loadtest-raw.md}"
log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'compare-loadtest-raw: error: %s\n' "$*" >&2; exit 1; }
for v in ROUNDS DURATION CONNS SEGMENT_CONNS SERVER_THREADS; do [[ "${!v}" =~ ^[0-9]+$ ]] || fail "$v must be a non-negative integer"; done

command -v wrk >/dev/null || { log "installing wrk"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  log "building marquee (release)"
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
fi
[[ -x "$MARQUEE_BIN" ]] || fail "MARQUEE_BIN=$MARQUEE_BIN is not executable"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/marquee-loadtest-bench.XXXXXX")"
SERVER_PID=""
cleanup() { [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
python3 "$HELPER" make-media "$TMP/media"
read -r PORT ADMIN <<<"$(python3 "$HELPER" free-ports 2)"
MARQUEE_RATE_LIMITS_MAX_CONNECTIONS_PER_ADDRESS=0 "$MARQUEE_BIN" origin --root "$TMP/media" --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN" \
  --threads "$SERVER_THREADS" --no-require-token --no-delivery-records >"$TMP/origin.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN/readyz" 2>/dev/null && break; sleep 0.1; done

# Runs a command; prints "<client cpu seconds>" on the last line of stderr-free output.
measure() {  # name conns path -> "req/s cpu_us_per_req"
  local name=$1 conns=$2 path=$3 url="http://127.0.0.1:$PORT$3"
  if [[ $name == wrk ]]; then
    python3 - "$DURATION" "$conns" "$url" <<'PY'
import resource, subprocess, sys
d, c, url = sys.argv[1:]
out = subprocess.run(["wrk", "-t1", f"-c{c}", f"-d{d}s", url], capture_output=True, text=True, check=True).stdout
u = resource.getrusage(resource.RUSAGE_CHILDREN)
reqs = int(next(l for l in out.splitlines() if "requests in" in l).split()[0])
rps = float(next(l for l in out.splitlines() if l.startswith("Requests/sec")).split()[1])
print(f"{rps:.0f} {(u.ru_utime + u.ru_stime) * 1e6 / max(reqs, 1):.2f}")
PY
  else
    python3 - "$DURATION" "$conns" "$url" "$MARQUEE_BIN" "$TMP/lt.json" <<'PY'
import json, resource, subprocess, sys
d, c, url, binary, out = sys.argv[1:]
subprocess.run([binary, "loadtest", "--raw", "--threads", "1", "--connections", c, "--duration", d, "--json", out, url], capture_output=True, check=True)
u = resource.getrusage(resource.RUSAGE_CHILDREN)
r = json.load(open(out))
print(f"{r['requests_per_second']:.0f} {(u.ru_utime + u.ru_stime) * 1e6 / max(r['requests'], 1):.2f}")
PY
  fi
}

rows=()
for scenario in playlist segment; do
  if [[ $scenario == playlist ]]; then path=/bench/playlist.m3u8; conns=$CONNS; else path=/bench/segment.m4s; conns=$SEGMENT_CONNS; fi
  log "warming $scenario"
  wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$PORT$path" >/dev/null
  for (( r = 1; r <= ROUNDS; r++ )); do
    order="wrk marquee"; (( r % 2 == 0 )) && order="marquee wrk"
    for client in $order; do
      read -r rps cpu <<<"$(measure "$client" "$conns" "$path")"
      log "$scenario round $r $client: $rps req/s, $cpu µs client CPU per request"
      rows+=("$scenario $client $r $rps $cpu")
    done
  done
done

python3 - "$OUT" "$ROUNDS" "$DURATION" "$CONNS" "$SEGMENT_CONNS" "$SERVER_THREADS" "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" "${rows[@]}" <<'PY'
import datetime, os, statistics, subprocess, sys
out, rounds, duration, conns, seg_conns, threads, commit, *rows = sys.argv[1:]
data = {}
for row in rows:
    scenario, client, r, rps, cpu = row.split()
    data.setdefault((scenario, client), []).append((float(rps), float(cpu)))
wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0] if True else ""
lines = ["## Load client: `marquee loadtest --raw` vs wrk", "",
         f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%MZ} · {os.cpu_count()} CPUs · kernel {os.uname().release} · {wrk_version.strip()} · Marquee {commit}", "",
         f"{rounds} interleaved rounds of {duration} s per scenario (the first client alternates), medians; both clients one thread; `marquee origin` with {threads} loop(s) serving the same files; playlist {conns} connections, segment {seg_conns}. Client CPU = the client process's user+system time ÷ its completed requests.", "",
         "| Scenario | Client | req/s | client CPU µs/req |", "|---|---|---:|---:|"]
med = {}
for (scenario, client), values in sorted(data.items()):
    rps = statistics.median(v[0] for v in values); cpu = statistics.median(v[1] for v in values)
    med[(scenario, client)] = (rps, cpu)
    lines.append(f"| {scenario} | {'marquee loadtest --raw' if client == 'marquee' else 'wrk'} | {rps:,.0f} | {cpu:.2f} |")
lines += ["", "| Scenario | req/s (marquee ÷ wrk) | client CPU/req (marquee ÷ wrk) |", "|---|---:|---:|"]
for scenario in ("playlist", "segment"):
    if (scenario, "marquee") in med and (scenario, "wrk") in med:
        m, w = med[(scenario, "marquee")], med[(scenario, "wrk")]
        lines.append(f"| {scenario} | {m[0] / w[0]:.2f}× | {m[1] / w[1]:.2f}× |")
lines += ["", "<details><summary>All rounds</summary>", "", "| Scenario | Client | Round | req/s | client CPU µs/req |", "|---|---|---:|---:|---:|"]
for row in rows:
    scenario, client, r, rps, cpu = row.split()
    lines.append(f"| {scenario} | {client} | {r} | {rps} | {cpu} |")
lines += ["", "</details>", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
log "report written to $OUT"

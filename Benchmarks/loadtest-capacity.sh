#!/usr/bin/env bash
# The most real-time viewers one `marquee origin` holds on this machine with segment p99 under 1 s
# and no stalls: steps of viewers (started over RAMP s) play a 10-minute, 2-rendition HLS title of
# 2 s segments for DURATION s; the steps go up until one fails or the last passes. The origin runs
# with 1 loop, as in the origin benchmarks; both processes may open 20,000 files here, which
# bounds one origin to about 19,900 connections.
#
#   Benchmarks/loadtest-capacity.sh   (env: MARQUEE_BIN, STEPS="2500 5000 10000 15000 17500 19500", RAMP=20, DURATION=60,
#                                       ORIGIN_THREADS=1, OUT=Benchmarks/results/loadtest-capacity.md)
#
# Run it alone: not while a build or another benchmark runs.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
STEPS="${STEPS:-2500 5000 10000 15000 17500 19500}"
RAMP="${RAMP:-20}"
DURATION="${DURATION:-60}"
ORIGIN_THREADS="${ORIGIN_THREADS:-1}"
OUT="${OUT:-$HERE/results/loadtest-capacity.md}"
for v in RAMP DURATION ORIGIN_THREADS; do [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "loadtest-capacity: $v must be a non-negative integer" >&2; exit 1; }; done
for s in $STEPS; do [[ "$s" =~ ^[0-9]+$ ]] || { echo "loadtest-capacity: STEPS must be viewer counts, got $s" >&2; exit 1; }; done
source "$HERE/viewers-title.sh"
viewers_setup "$ORIGIN_THREADS"
python3 - "$MARQUEE_BIN" "$RAMP" "$DURATION" "http://127.0.0.1:$PORT/title/master.m3u8" "$ORIGIN" "$TMP" "$OUT" "$ORIGIN_THREADS" \
  "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" $STEPS <<'PY'
import datetime, json, os, platform, subprocess, sys
binary, ramp, duration, url, origin, tmp, out, origin_threads, commit = sys.argv[1:10]
steps = [int(s) for s in sys.argv[10:]]
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
rows, held = [], 0
for viewers in steps:
    report = os.path.join(tmp, f"{viewers}.json")
    print(f"==> {viewers} viewers over {ramp} s, {duration} s", file=sys.stderr)
    before = cpu(int(origin))
    p = subprocess.run([binary, "loadtest", url, "--viewers", str(viewers), "--ramp", ramp, "--duration", duration, "--json", report],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    origin_cores = (cpu(int(origin)) - before) / int(duration)
    if p.returncode != 0:
        rows.append((viewers, "the load test failed", "", "", "", "", "no"))
        break
    r = json.load(open(report))
    seg = r["by_kind"]["segment"]
    p99_ms = seg["latency_us"]["p99"] / 1000
    kinds = r["by_kind"].values()
    errors = sum(n for kind in kinds for s, n in kind["statuses"].items() if int(s) >= 400) + sum(n for kind in kinds for n in kind["failures"].values())
    ok = r["viewers_started"] == viewers and r["viewers_never_played"] == 0 and r["stalls"] == 0 and errors == 0 and p99_ms < 1000
    rows.append((viewers, r["viewers_started"], r["stalls"], errors, f"{p99_ms:.1f}", f"{origin_cores:.3f}", "yes" if ok else "no"))
    if not ok:
        break
    held = viewers
lines = [f"# The most real-time viewers one origin holds ({datetime.date.today()}, commit {commit})", "",
         f"{os.cpu_count()} CPUs, kernel {platform.release()}; `marquee origin` with {origin_threads} loop(s), a 10-minute 2-rendition HLS title "
         f"(2 s segments); each step starts its viewers over {ramp} s and runs {duration} s. Held: every viewer played, no stall, no error, "
         "segment p99 under 1 s. Reproduce: `Benchmarks/loadtest-capacity.sh`.", "",
         "| viewers | played | stalls | errors | segment p99 ms | origin cores (avg) | held |", "|---:|---:|---:|---:|---:|---:|---|"]
lines += [f"| {' | '.join(str(c) for c in row)} |" for row in rows]
lines += ["", f"**Held: {held:,} viewers**" + (" (the largest step; a process may open 20,000 files here, which bounds one origin's connections)" if held == steps[-1] else "") + "."]
os.makedirs(os.path.dirname(out), exist_ok=True)
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY

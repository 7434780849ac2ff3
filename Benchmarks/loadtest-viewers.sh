#!/usr/bin/env bash
# How many real-time viewers one `marquee loadtest` process holds, and at what CPU: VIEWERS viewers
# (started over RAMP s) play a 10-minute, 2-rendition HLS title of 2 s segments (made here by
# ffmpeg) from `marquee origin` for DURATION s. Reports the load test's and the origin's CPU in the
# steady state (after every viewer's buffer is full) and over the whole run, and the viewers' QoE.
# Issue 16's target: 10,000 viewers at <= 0.5 core.
#
#   Benchmarks/loadtest-viewers.sh     (env: MARQUEE_BIN, VIEWERS=10000, RAMP=30, DURATION=100, OUT=Benchmarks/results/loadtest-viewers.md)
#
# Run it alone: not while a build or another benchmark runs.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VIEWERS="${VIEWERS:-10000}"
RAMP="${RAMP:-30}"
DURATION="${DURATION:-100}"
OUT="${OUT:-$HERE/results/loadtest-viewers.md}"
for v in VIEWERS RAMP DURATION; do [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "loadtest-viewers: $v must be a non-negative integer" >&2; exit 1; }; done
(( DURATION >= RAMP + 40 )) || { echo "loadtest-viewers: DURATION must be at least RAMP + 40 (30 s of buffer fill, then a steady window)" >&2; exit 1; }
source "$HERE/viewers-title.sh"
viewers_setup 1
echo "==> $VIEWERS viewers over $RAMP s, $DURATION s" >&2
python3 - "$MARQUEE_BIN" "$VIEWERS" "$RAMP" "$DURATION" "http://127.0.0.1:$PORT/title/master.m3u8" "$ORIGIN" "$TMP/out.json" "$OUT" \
  "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'PY'
import datetime, json, os, subprocess, sys, time
binary, viewers, ramp, duration, url, origin, json_out, out, commit = sys.argv[1:]
ramp, duration = int(ramp), int(duration)
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
p = subprocess.Popen([binary, "loadtest", "--viewers", viewers, "--ramp", str(ramp), "--duration", str(duration), "--json", json_out, url],
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
t0 = time.time()
marks = []
# Steady: from 30 s after the last viewer started (its buffer is full) to 5 s before the end.
for at in (ramp + 30, duration - 5):
    time.sleep(max(0, at - (time.time() - t0)))
    marks.append((time.time() - t0, cpu(p.pid), cpu(int(origin))))
text, _ = p.communicate()
r = json.load(open(json_out))
(t1, l1, o1), (t2, l2, o2) = marks
steady_load, steady_origin = (l2 - l1) / (t2 - t1), (o2 - o1) / (t2 - t1)
whole = l2 / t2
seg = r["by_kind"]["segment"]
lines = ["## Real-time viewers from one `marquee loadtest` process", "",
         f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%MZ} · {os.cpu_count()} CPUs · kernel {os.uname().release} · Marquee {commit}", "",
         f"{viewers} viewers started over {ramp} s play a 10-minute HLS title (2 renditions, 2 s segments) from `marquee origin` (1 loop) on the same machine for {duration} s; one load-test thread. CPU from /proc/<pid>/stat.", "",
         "| | value |", "|---|---:|",
         f"| viewers played / never started | {r['viewers_started']} / {r['viewers_never_played']} |",
         f"| stalls | {r['stalls']} |",
         f"| segment requests (200s) | {seg['requests']} ({seg['statuses'].get('200', 0)}) |",
         f"| failures (all kinds) | {sum(sum(k['failures'].values()) for k in r['by_kind'].values())} |",
         f"| startup ms p50 / p99 | {r['startup_ms']['p50']:.0f} / {r['startup_ms']['p99']:.0f} |",
         f"| segment latency µs p50 / p99 | {seg['latency_us']['p50']} / {seg['latency_us']['p99']} |",
         f"| **load test CPU, steady state ({t1:.0f}-{t2:.0f} s)** | **{steady_load:.3f} cores** |",
         f"| load test CPU, whole run (ramp and buffer fills included) | {whole:.3f} cores |",
         f"| origin CPU, steady state | {steady_origin:.3f} cores |", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
echo "==> report written to $OUT" >&2

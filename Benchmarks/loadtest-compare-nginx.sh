#!/usr/bin/env bash
# `marquee loadtest --compare`: VIEWERS real-time viewers against `marquee origin` (A) and the same
# number against nginx (B), serving the same 10-minute HLS title, side by side in one run, with
# the B/A ratios and the complete JSON report. Issue 16's target: 1,000 viewers, 20 s, 0 errors.
#
#   Benchmarks/loadtest-compare-nginx.sh   (env: MARQUEE_BIN, VIEWERS=1000, RAMP=10, DURATION=20, THREADS=1,
#                                             OUT=Benchmarks/results/loadtest-compare-nginx.md)
#
# Run it alone: not while a build or another benchmark runs.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VIEWERS="${VIEWERS:-1000}"
RAMP="${RAMP:-10}"
DURATION="${DURATION:-20}"
THREADS="${THREADS:-1}"
OUT="${OUT:-$HERE/results/loadtest-compare-nginx.md}"
for v in VIEWERS RAMP DURATION THREADS; do [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "loadtest-compare-nginx: $v must be a non-negative integer" >&2; exit 1; }; done
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
source "$HERE/viewers-title.sh"
viewers_setup "$THREADS"
read -r NGINX_PORT <<<"$(python3 "$HERE/loadbench.py" free-ports 1)"
mkdir -p "$TMP/nginx"
python3 "$HERE/loadbench.py" nginx-conf --dir "$TMP/nginx" --root "$TMP/media" --port "$NGINX_PORT" --workers "$THREADS" \
  --worker-connections 20000 --rlimit-nofile 20000 >"$TMP/nginx/nginx.conf"
/usr/sbin/nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" &
NGINX=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/title/master.m3u8" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/title/master.m3u8" || { echo "nginx did not start: $(cat "$TMP/nginx/error.log" 2>/dev/null)" >&2; exit 1; }
echo "==> $VIEWERS viewers each against marquee origin and nginx, over $RAMP s, $DURATION s" >&2
"$MARQUEE_BIN" loadtest "http://127.0.0.1:$PORT/title/master.m3u8" --compare "http://127.0.0.1:$NGINX_PORT/title/master.m3u8" \
  --viewers "$VIEWERS" --ramp "$RAMP" --duration "$DURATION" --threads "$THREADS" --json "$TMP/report.json" >"$TMP/report.txt"
python3 - "$TMP/report.json" "$TMP/report.txt" "$OUT" "$VIEWERS" "$RAMP" "$DURATION" "$THREADS" \
  "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$("/usr/sbin/nginx" -v 2>&1 | sed 's/.*: //')" <<'PY'
import datetime, json, os, sys
report, text, out, viewers, ramp, duration, threads, commit, nginx = sys.argv[1:]
r = json.load(open(report))
def errors(side):
    kinds = side["by_kind"].values()
    return sum(n for kind in kinds for s, n in kind["statuses"].items() if int(s) >= 400) + sum(n for kind in kinds for n in kind["failures"].values())
complete = all(k in r for k in ("a", "b", "ratios")) and all(k in r[s] for s in "ab" for k in ("by_kind", "startup_ms", "viewers_started"))
lines = [f"# `marquee loadtest --compare`: marquee origin (A) and nginx (B), {viewers} viewers each", "",
         f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%MZ} · {os.cpu_count()} CPUs · kernel {os.uname().release} · {nginx} · Marquee {commit}", "",
         f"The same 10-minute HLS title (2 renditions, 2 s segments) from both servers ({threads} loop / worker each); {viewers} viewers "
         f"against each at the same time, started over {ramp} s, {duration} s, {threads} load-test thread(s) per target. "
         "Reproduce: `Benchmarks/loadtest-compare-nginx.sh`.", "",
         f"- Errors (statuses ≥ 400 and failed requests): A {errors(r['a'])}, B {errors(r['b'])}; the JSON report is "
         f"{'complete' if complete else 'INCOMPLETE'} (`a`, `b`, `ratios`).", "",
         "```", open(text).read().rstrip(), "```", ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY

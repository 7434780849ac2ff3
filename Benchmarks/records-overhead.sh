#!/usr/bin/env bash
# What delivery records cost the gateway: Benchmarks/compare-nginx.sh on the signed path twice,
# with the files under a media path (titles/bench/v1, so every response leaves a record) and
# without records (--no-delivery-records); nginx serves the same signed files in both runs and is
# the anchor that cancels the machine's drift between them. Reports Marquee's CPU per request
# with and without records, raw and relative to nginx, the records counters (as many as
# requests, zero dropped), and the heap allocations per request with records on.
#
#   Benchmarks/records-overhead.sh                  (env: MARQUEE_BIN, ROUNDS=3, DURATION=10)
#
# Writes Benchmarks/results/records-{on,off}.md and Benchmarks/results/records-overhead.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
fi
export MARQUEE_BIN TOKENS=1 BENCH_DIR=titles/bench/v1
OUT="$HERE/results/records-on.md" MARQUEE_ARGS="" "$HERE/compare-nginx.sh"
OUT="$HERE/results/records-off.md" MARQUEE_ARGS="--no-delivery-records" "$HERE/compare-nginx.sh"
allocs=$(BENCH_DIR=titles/bench/v1 "$HERE/alloc-per-request.sh")
python3 - "$HERE/results" "$allocs" <<'PY'
import json, statistics, sys
from pathlib import Path
results, allocs = Path(sys.argv[1]), sys.argv[2]
def medians(name):
    rows = [json.loads(l) for l in (results / f"records-{name}.jsonl").read_text().splitlines() if l.strip()]
    out = {}
    for sc in sorted({r["scenario"] for r in rows if not r.get("idle")}):
        for sv in ("nginx", "marquee"):
            vals = [r["cpu_us_per_req"] for r in rows if r["scenario"] == sc and r["server"] == sv and not r.get("idle")]
            out[(sc, sv)] = statistics.median(vals)
    return out
on, off = medians("on"), medians("off")
lines = ["## Delivery records on vs off (signed path, files under titles/bench/v1)", "",
         "| Scenario | Marquee CPU µs/req, records on | off | on/off | nginx µs/req (on run / off run) | on/off relative to nginx |",
         "|---|---:|---:|---:|---:|---:|"]
for sc in sorted({k[0] for k in on}):
    m_on, m_off, n_on, n_off = on[(sc, "marquee")], off[(sc, "marquee")], on[(sc, "nginx")], off[(sc, "nginx")]
    lines.append(f"| {sc} | {m_on:.2f} | {m_off:.2f} | {m_on / m_off:.3f}× | {n_on:.2f} / {n_off:.2f} | {(m_on / n_on) / (m_off / n_off):.3f}× |")
records = (results / "records-on.records.txt").read_text() if (results / "records-on.records.txt").exists() else ""
lines += ["", "Records counters at the end of the records-on run:", "", "```", records.strip(), "```", "",
          "Allocations per request with records on (`BENCH_DIR=titles/bench/v1 Benchmarks/alloc-per-request.sh`):", "", "```", allocs.strip(), "```"]
text = "\n".join(lines) + "\n"
(results / "records-overhead.md").write_text(text)
print(text)
PY

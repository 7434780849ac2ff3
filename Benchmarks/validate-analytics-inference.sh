#!/usr/bin/env bash
# Checks analytics' rebuffering against `marquee loadtest`'s own truth, over a real shaped link.
#
# `marquee dev` serves on a veth whose egress (server → viewers) is shaped by `tc ... tbf`; the
# load test's viewers start real playback sessions through the API from a network namespace
# behind it. The link alternates between fast (every rendition plays) and slow (not even the
# lowest does), so viewers stall. Each viewer's player model knows its own stalls; analytics only
# sees the gateway's delivery records (and the CMCD the viewers send). Per session, compared:
#   - inferred rebuffers (from delivery timing alone) against the viewer's stalls: precision and
#     recall of the counts, and the stalled time;
#   - rebuffers from CMCD `bs` (a run of marked requests is one) against the same stalls.
#
#   Benchmarks/validate-analytics-inference.sh   (env: MARQUEE_BIN, VIEWERS=8, DURATION=120,
#                                                 OUT=Benchmarks/results/analytics-inference.md)
#
# Needs root (network namespaces, tc). Takes about 4 minutes. Exit status 1 unless the inference
# finds at least 90% of the viewers' stalls with their stalled time within 15%, and CMCD adds none.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VIEWERS="${VIEWERS:-8}"
DURATION="${DURATION:-120}"
OUT="${OUT:-$HERE/results/analytics-inference.md}"
for v in VIEWERS DURATION; do [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "validate-analytics-inference: $v must be a positive integer" >&2; exit 1; }; done
[[ $(id -u) == 0 ]] || { echo "validate-analytics-inference: needs root (ip netns, tc)" >&2; exit 1; }
need=()
command -v tc >/dev/null || need+=(iproute2)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
if ((${#need[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
fi
exec python3 "$HERE/analytics_inference.py" "$MARQUEE_BIN" "$VIEWERS" "$DURATION" "$OUT" "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"

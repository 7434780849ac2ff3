#!/usr/bin/env bash
# Validates `marquee loadtest`'s viewers against truth: a real link with a scripted bandwidth drop.
# The origin serves on a veth whose egress (server → viewer) is shaped by `tc ... tbf`; the load
# test runs in a network namespace behind it. At DROP_AT s the link drops from 8 Mbit/s.
#
#   A. One viewer of a single-rendition 1 Mbit/s title; the link drops to 200 kbit/s. No ABR can
#      help, so the viewer stalls. Its reported stalls (count and total time) must match the buffer
#      model's arithmetic (startup 4 s, rebuffer 2 s, buffer cap 30 s), computed here from the
#      segment sizes and the link schedule alone.
#   B. One viewer of a 2-rendition title (1 Mbit/s, 250 kbit/s); the link drops to 600 kbit/s,
#      below the top rendition. The viewer climbs to the top while the link is fast, then must
#      switch down (or stall).
#
#   Benchmarks/validate-loadtest-tbf.sh   (env: MARQUEE_BIN, DURATION=100, DROP_AT=20, OUT=Benchmarks/results/loadtest-tbf.md)
#
# Needs root (network namespaces, tc). Takes about 2 × DURATION s. Exit status 1 when a check fails.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DURATION="${DURATION:-100}"
DROP_AT="${DROP_AT:-20}"
OUT="${OUT:-$HERE/results/loadtest-tbf.md}"
for v in DURATION DROP_AT; do [[ "${!v}" =~ ^[0-9]+$ ]] || { echo "validate-loadtest-tbf: $v must be a non-negative integer" >&2; exit 1; }; done
[[ $(id -u) == 0 ]] || { echo "validate-loadtest-tbf: needs root (ip netns, tc)" >&2; exit 1; }
command -v tc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; }
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
fi
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
exec python3 - "$MARQUEE_BIN" "$DURATION" "$DROP_AT" "$OUT" "$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'PY'
import datetime, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

from shaped_link import ShapedLink, retransmitted

binary, duration, drop_at, out, commit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
NS, HOST_IF, NS_IF, HOST_IP, NS_IP = "mq-lt", "mqlt0", "mqlt1", "10.231.0.1", "10.231.0.2"
SEGMENT_MS, SEGMENTS = 2000, 90
FAST = 8_000_000

link = ShapedLink(NS, HOST_IF, NS_IF, HOST_IP, NS_IP).setup()

root = tempfile.mkdtemp(prefix="marquee-tbf.")
origin = None
try:
    # Titles of fixed-size segments: the load test counts bytes, it does not decode.
    def rendition(folder, bits_per_second):
        os.makedirs(os.path.join(root, folder))
        size = bits_per_second * SEGMENT_MS // 8000
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"]
        for i in range(SEGMENTS):
            with open(os.path.join(root, folder, f"seg_{i:03d}.bin"), "wb") as f:
                f.write(os.urandom(size))
            lines += ["#EXTINF:2.000,", f"seg_{i:03d}.bin"]
        open(os.path.join(root, folder, "index.m3u8"), "w").write("\n".join(lines + ["#EXT-X-ENDLIST", ""]))
        return size
    single_size = rendition("single/v0", 1_000_000)
    open(os.path.join(root, "single/master.m3u8"), "w").write("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nv0/index.m3u8\n")
    rendition("abr/hi", 1_000_000)
    rendition("abr/lo", 250_000)
    open(os.path.join(root, "abr/master.m3u8"), "w").write(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000000\nhi/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=250000\nlo/index.m3u8\n")

    port, admin = 18480, 18481
    origin = subprocess.Popen([binary, "origin", "--root", root, "--listen", f"{HOST_IP}:{port}", "--admin", f"127.0.0.1:{admin}",
                               "--threads", "1", "--no-require-token", "--no-delivery-records"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{admin}/readyz", timeout=1)
            break
        except Exception:
            time.sleep(0.1)

    def run(path, low):
        """One viewer for `duration` s; the link is FAST until drop_at, then `low`. Returns the report."""
        link.shape(FAST, "replace")
        before = retransmitted()
        report = os.path.join(root, "report.json")
        p = subprocess.Popen(["ip", "netns", "exec", NS, binary, "loadtest", f"http://{HOST_IP}:{port}{path}", "--viewers", "1",
                              "--duration", str(duration), "--json", report], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        t0 = time.monotonic()
        time.sleep(max(0, drop_at - (time.monotonic() - t0)))
        link.shape(low)
        text, _ = p.communicate()
        assert p.returncode == 0, text
        return json.load(open(report)), retransmitted() - before

    # The buffer model's arithmetic (PlayerModel's rules, one rendition): each segment downloads
    # back to back while the buffer has room for it; the link's rate is what tbf lets through:
    # a 1514-byte frame carries 1448 bytes of the response.
    def expected(size, low):
        bits = (size + 300) * 8 * 1514 / 1448  # the segment, its response head, and framing
        schedule = [(0.0, FAST), (drop_at * 1000.0, low)]
        def download_end(t, remaining):
            for k, (start, rate) in enumerate(schedule):
                end = schedule[k + 1][0] if k + 1 < len(schedule) else float("inf")
                if t >= end:
                    continue
                span = (end - t) * rate / 1000
                if remaining <= span:
                    return t + remaining * 1000 / rate
                remaining -= span
                t = end
        t, phase, buf, index = 0.0, "starting", 0.0, 0
        stalls, stalled, startup = 0, 0.0, None
        run_ms = duration * 1000.0
        def advance(to):
            nonlocal t, phase, buf, stalls, stalled
            if phase == "playing":
                drained = min(buf, to - t)
                buf -= drained
                if buf == 0 and t + drained < to:
                    phase, stalls = "stalled", stalls + 1
                    stalled += to - (t + drained)
            elif phase == "stalled":
                stalled += to - t
            t = to
        while t < run_ms and index < SEGMENTS:
            if phase == "playing" and 30_000 - buf < SEGMENT_MS:
                advance(min(run_ms, t + SEGMENT_MS - (30_000 - buf)))
                continue
            end = download_end(t, bits)
            if end > run_ms:
                break
            advance(end)
            buf += SEGMENT_MS
            index += 1
            if phase == "starting" and buf >= 4000:
                phase, startup = "playing", t
            elif phase == "stalled" and buf >= 2000:
                phase = "playing"
        advance(run_ms)
        return stalls, stalled, startup

    lines = [f"# marquee loadtest against a shaped link ({datetime.date.today()}, commit {commit})", "",
             f"Link: veth + `tc tbf` (server → viewer), {FAST // 1_000_000} Mbit/s, dropped at {drop_at} s; one viewer, {duration} s; "
             f"segments of {SEGMENT_MS // 1000} s. Reproduce: `Benchmarks/validate-loadtest-tbf.sh`.", ""]
    ok = True

    low = 200_000
    report, retransmissions = run("/single/master.m3u8", low)
    want_stalls, want_ms, want_startup = expected(single_size, low)
    got_stalls, got_ms = report["stalls"], report["stalled_ms"]
    a_ok = got_stalls == want_stalls and abs(got_ms - want_ms) <= 500 and report["viewers_started"] == 1
    ok &= a_ok
    lines += [f"## A. Single 1 Mbit/s rendition, link to {low // 1000} kbit/s: {'PASS' if a_ok else 'FAIL'}", "",
              "| | stalls | stalled ms | startup ms |", "|---|---|---|---|",
              f"| buffer-model arithmetic | {want_stalls} | {want_ms:.0f} | {want_startup:.0f} |",
              f"| marquee loadtest reported | {got_stalls} | {got_ms} | {report['startup_ms']['p50']:.0f} |", "",
              f"TCP segments the origin retransmitted during the run: {retransmissions} (the link is meant to be loss-free).", "",
              "Pass: the same stall count, and stalled time within 500 ms (a quarter of a segment).", ""]

    low = 600_000
    report, _ = run("/abr/master.m3u8", low)
    b_ok = report["switches"] >= 2 and report["viewers_started"] == 1
    ok &= b_ok
    lines += [f"## B. Renditions of 1 Mbit/s and 250 kbit/s, link to {low // 1000} kbit/s: {'PASS' if b_ok else 'FAIL'}", "",
              f"Switches {report['switches']} (up to 1 Mbit/s while the link is fast, then down), stalls {report['stalls']} "
              f"({report['stalled_ms']} ms), average bitrate p50 {report['average_bitrate']['p50'] / 1000:.0f} kbit/s.", "",
              "Pass: at least two switches (up, then down below the link).", ""]
    os.makedirs(os.path.dirname(out), exist_ok=True)
    open(out, "w").write("\n".join(lines))
    print("\n".join(lines))
    sys.exit(0 if ok else 1)
finally:
    if origin:
        origin.kill()
    link.teardown()
    shutil.rmtree(root, ignore_errors=True)
PY

"""Analytics' rebuffering against `marquee loadtest`'s truth over a shaped link (see
validate-analytics-inference.sh, which installs what this needs and builds the binary)."""
import datetime, json, os, re, shutil, subprocess, sys, tempfile, threading, time, urllib.request

from shaped_link import ShapedLink

binary, viewers, duration, out, commit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
NS, HOST_IF, NS_IF, HOST_IP, NS_IP = "mq-ai", "mqai0", "mqai1", "10.232.0.1", "10.232.0.2"
PORT = 18580
BASE = f"http://{HOST_IP}:{PORT}"
# The link: fast for the start-up, then slow and fast in turns (seconds). A slow spell outlasts
# what a viewer can have buffered in the fast one before it, so it stalls.
FIRST_FAST, SLOW, FAST = 8, 25, 10


def call(method, path, body=None, token=None):
    request = urllib.request.Request(BASE + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


link = ShapedLink(NS, HOST_IF, NS_IF, HOST_IP, NS_IP).setup()
root = tempfile.mkdtemp(prefix="marquee-inference.")
dev = None
try:
    data = os.path.join(root, "var")
    dev = subprocess.Popen([binary, "dev", "--data", data, "--listen", f"{HOST_IP}:{PORT}", "--demo-seconds", "120"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, playlist, publisher = [], None, None
    deadline = time.monotonic() + 900
    while playlist is None:
        line = dev.stdout.readline()
        if not line or time.monotonic() > deadline:
            raise SystemExit("marquee dev did not come up:\n" + "".join(lines[-40:]))
        lines.append(line)
        if m := re.match(r"publisher: (\S+) password (.+)$", line.strip()):
            publisher = (m.group(1), m.group(2))
        if line.startswith("playlist: "):
            playlist = line.split(" ", 1)[1].strip()
    threading.Thread(target=lambda: [None for _ in dev.stdout], daemon=True).start()  # keep its pipe drained
    title = open(os.path.join(data, "demo-title-id")).read().strip()

    # The renditions' rates decide the link's: fast enough for every viewer at the top rendition,
    # slow enough that the lowest stalls.
    master = urllib.request.urlopen(playlist, timeout=30).read().decode()
    rates = sorted(int(b) for b in re.findall(r"BANDWIDTH=(\d+)", master))
    fast, slow = viewers * rates[-1] * 2, max(32_000, viewers * rates[0] * 0.15)

    link.shape(fast, "replace")
    # The run ends on a fast spell: a stall still on when it ends has no arrival after it for
    # analytics to see (nor a request to carry CMCD `bs`), so it would count against both unfairly.
    schedule = [(0, fast)]
    t = FIRST_FAST
    while t + SLOW + FAST <= duration:
        schedule.append((t, slow))
        schedule.append((t + SLOW, fast))
        t += SLOW + FAST

    def follow_schedule(started):
        for at, rate in schedule[1:]:
            time.sleep(max(0, started + at - time.monotonic()))
            link.shape(rate)

    report_path = os.path.join(root, "report.json")
    started = time.monotonic()
    threading.Thread(target=follow_schedule, args=(started,), daemon=True).start()
    run = link.inside(binary, "loadtest", "--api", BASE, "--title", title, "--viewers", str(viewers), "--ramp", "2",
                      "--duration", str(duration), "--deposit", "100000", "--json", report_path, check=False)
    if run.returncode != 0:
        raise SystemExit("marquee loadtest failed:\n" + run.stdout + run.stderr)
    report = json.load(open(report_path))
    truth = {s["id"]: s for s in report["sessions"]["played"]}
    if not truth:
        raise SystemExit("the load test reported no sessions:\n" + run.stdout)

    # What analytics made of the same sessions, once their last records are in.
    token = call("POST", "/api/auth/login", {"email": publisher[0], "password": publisher[1]})["access_token"]
    seen, previous = {}, None
    for _ in range(60):
        items = call("GET", "/api/analytics/sessions?limit=100", token=token)["items"]
        seen = {s["session_id"]: s for s in items if s["session_id"] in truth}
        state = sorted((k, v["requests"]) for k, v in seen.items())
        if len(seen) == len(truth) and state == previous:
            break
        previous = state
        time.sleep(1)
    missing = sorted(set(truth) - set(seen))

    def precision_recall(found_key):
        tp = fp = fn = 0
        for sid, t in truth.items():
            found = seen.get(sid, {}).get(found_key, 0)
            tp += min(found, t["stalls"])
            fp += max(0, found - t["stalls"])
            fn += max(0, t["stalls"] - found)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        return tp, fp, fn, precision, recall

    inferred = precision_recall("inferred_rebuffers")
    reported = precision_recall("rebuffers")
    truth_stalls = sum(t["stalls"] for t in truth.values())
    truth_ms = sum(t["stalled_ms"] for t in truth.values())
    inferred_ms = sum(seen.get(sid, {}).get("rebuffer_ms", 0) for sid in truth)
    exact = sum(1 for sid, t in truth.items() if seen.get(sid, {}).get("inferred_rebuffers") == t["stalls"])

    lines = [f"# Analytics' rebuffering against `marquee loadtest`'s truth ({datetime.date.today()}, commit {commit})", "",
             f"`marquee dev` behind a veth shaped with `tc tbf`: {fast / 1e6:.1f} Mbit/s, then {SLOW} s at {slow / 1e6:.2f} Mbit/s every "
             f"{SLOW + FAST} s from {FIRST_FAST} s on, {(len(schedule) - 1) // 2} times, fast to the end (renditions {', '.join(f'{r // 1000}' for r in rates)} kbit/s). "
             f"{viewers} viewers (`marquee loadtest --api`, real playback sessions), {duration} s. "
             "Reproduce: `Benchmarks/validate-analytics-inference.sh`.", "",
             "Truth: each viewer's player model (startup 4 s of buffer, resumes at 2 s, 30 s cap). Counts are compared per session: "
             "a true positive is a stall found in a session that had one (min of the two counts).", "",
             "| | stalls | true pos. | false pos. | missed | precision | recall |", "|---|---:|---:|---:|---:|---:|---:|",
             f"| the viewers' own count | {truth_stalls} | | | | | |",
             f"| analytics, inferred from delivery timing | {sum(seen.get(s, {}).get('inferred_rebuffers', 0) for s in truth)} | "
             f"{inferred[0]} | {inferred[1]} | {inferred[2]} | {inferred[3]:.2f} | {inferred[4]:.2f} |",
             f"| analytics, from CMCD `bs` | {sum(seen.get(s, {}).get('rebuffers', 0) for s in truth)} | "
             f"{reported[0]} | {reported[1]} | {reported[2]} | {reported[3]:.2f} | {reported[4]:.2f} |", "",
             f"Sessions: {len(truth)}, of which analytics counted exactly the viewer's stalls in {exact}; missing from analytics: {len(missing)}.",
             f"Stalled time: the viewers {truth_ms / 1000:.1f} s, inferred {inferred_ms / 1000:.1f} s.", "",
             "| session | viewer's stalls | stalled ms | inferred | inferred ms | from CMCD |", "|---|---:|---:|---:|---:|---:|"]
    for sid, t in sorted(truth.items()):
        s = seen.get(sid, {})
        lines.append(f"| `{sid[:12]}` | {t['stalls']} | {t['stalled_ms']} | {s.get('inferred_rebuffers', '—')} | "
                     f"{s.get('rebuffer_ms', 0):.0f} | {s.get('rebuffers', '—')} |")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    open(out, "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))
    # Pass: the inference finds the viewers' stalls and their time (it may split one in two, see
    # docs/analytics.md), and CMCD's count adds none.
    ok = (truth_stalls > 0 and not missing and inferred[4] >= 0.9 and abs(inferred_ms - truth_ms) <= 0.15 * truth_ms
          and reported[3] >= 0.95)
    lines.append("")
    lines.append(f"Pass: {'yes' if ok else 'NO'} (inferred recall at least 0.9, stalled time within 15%, no extra stall from CMCD).")
    open(out, "a").write(lines[-1] + "\n")
    print(lines[-1])
    sys.exit(0 if ok else 1)
finally:
    if dev:
        dev.terminate()
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
    link.teardown()
    shutil.rmtree(root, ignore_errors=True)

"""Gathers what Benchmarks/run-all measured: each report's headline, its status and time, and the
machine's facts, into SUMMARY.md next to the reports, and the same table into the README between
the run-all markers. Headlines are read from the reports each benchmark wrote; a report that does
not have the expected lines says so instead of a figure."""
import argparse, datetime, os, platform, re

DESCRIPTIONS = {
    "origin-vs-nginx": "`marquee origin` vs nginx, same files (compare-nginx.sh)",
    "edge": "edge cache hits vs the origin, nginx proxy_cache, Varnish (compare-edge.sh)",
    "tls": "HTTPS vs nginx's TLS, same certificate (compare-nginx.sh, TLS=1)",
    "billing-records": "billing: delivery records metered per second (metering-throughput.sh)",
    "analytics": "analytics: records rolled up per second, slowest query over them (analytics-throughput.sh)",
    "packaging": "`marquee package` vs the ffmpeg CLI (compare-ffmpeg-package.sh)",
    "loadtest-raw": "`marquee loadtest --raw` vs wrk (compare-loadtest-raw.sh)",
    "loadtest-viewers": "real-time viewers from one load-test process (loadtest-viewers.sh)",
    "loadtest-capacity": "most real-time viewers one origin holds, p99 < 1 s, no stalls (loadtest-capacity.sh)",
    "loadtest-compare": "viewers against the origin and nginx side by side (loadtest-compare-nginx.sh)",
    "loadtest-tbf": "viewers behind a shaped link vs the buffer arithmetic (validate-loadtest-tbf.sh)",
}


def rows(text, pattern):
    return [m.groups() for m in re.finditer(pattern, text, re.M)]


def headline(name, text):
    if name == "origin-vs-nginx":
        found = rows(text, r"^\| (playlist|segment) \([^)]*\) \| ([\d.]+)× \| ([\d.]+)× \|")
        return "; ".join(f"{s}: {r}× nginx's req/s at {c}× its CPU per request" for s, r, c in found)
    if name == "tls":
        found = rows(text, r"^\| (playlist \(1\.5 KB\)|segment \(2 MB\)|playlist, a new connection each) \| ([\d.]+)× \| ([\d.]+)× \|(?:[^|]*\|){2} ([\d.]+)× \|")
        names = {"playlist (1.5 KB)": "playlist", "segment (2 MB)": "segment", "playlist, a new connection each": "handshakes"}
        return "; ".join(
            f"{names[s]}: {r}× nginx's req/s at {c}× its CPU per request" + (f", {g}× its GB/s" if s.startswith("segment") else "")
            for s, r, c, g in found)
    if name == "edge":
        found = rows(text, r"^\| (playlist|segment) \([^)]*\) \| ([^|]+?) \| ([\d.]+)× \| ([\d.]+)× \|")
        return "; ".join(f"{s} hits {r}× {other}'s req/s at {c}× CPU" for s, other, r, c in found)
    if name == "billing-records":
        found = rows(text, r"^\| [^|]+ \| (sqlite|postgresql) \| throughput \|(?:[^|]*\|){3} ([\d,]+) \|")
        return "; ".join(f"{db}: {rate} records/s" for db, rate in found)
    if name == "analytics":
        found = rows(text, r"^\| [^|]+ \| (sqlite|postgres) \| ([\d.]+) h \| ([\d,]+) \|(?:[^|]*\|){2} ([\d,]+) \|(?:[^|]*\|){3} ([\d.]+) \|")
        return "; ".join(f"{db}, sessions over {h} h: {rate} records/s over {n} records, slowest query {q} ms" for db, h, n, rate, q in found)
    if name == "packaging":
        found = rows(text, r"^\| ratio \| ([\d.]+) \|")
        return f"wall time {found[0][0]}× the ffmpeg CLI's" if found else ""
    if name == "loadtest-raw":
        found = rows(text, r"^\| (playlist|segment) \| ([\d.]+)× \| ([\d.]+)× \|")
        return "; ".join(f"{s}: {r}× wrk's req/s at {c}× its client CPU per request" for s, r, c in found)
    if name == "loadtest-viewers":
        viewers = rows(text, r"^\| viewers played / never started \| (\d+) / (\d+) \|")
        cores = rows(text, r"^\| \*\*load test CPU, steady state[^|]*\| \*\*([\d.]+) cores\*\* \|")
        stalls = rows(text, r"^\| stalls \| (\d+) \|")
        if viewers and cores and stalls:
            return f"{viewers[0][0]} viewers played ({viewers[0][1]} never started, {stalls[0][0]} stalls) on {cores[0][0]} cores in the steady state"
        return ""
    if name == "loadtest-capacity":
        found = rows(text, r"^\*\*Held: ([\d,]+) viewers\*\*")
        return f"held {found[0][0]} viewers" if found else ""
    if name == "loadtest-compare":
        found = rows(text, r"^- Errors[^:]*: A (\d+), B (\d+); the JSON report is (\w+)")
        ratio = rows(text, r"^segment latency µs p99\s+(\d+)\s+(\d+)\s+([\d.]+)")
        if not found:
            return ""
        a, b, complete = found[0]
        text = f"errors A {a}, B {b}; JSON {complete}"
        return text + (f"; segment p99 {ratio[0][0]} µs vs {ratio[0][1]} µs" if ratio else "")
    if name == "loadtest-tbf":
        found = rows(text, r"^## ([AB])\. [^:]*: (PASS|FAIL)")
        measured = rows(text, r"^\| marquee loadtest reported \| (\d+) \| (\d+) \|")
        model = rows(text, r"^\| buffer-model arithmetic \| (\d+) \| (\d+) \|")
        text = ", ".join(f"{k} {v}" for k, v in found)
        if measured and model:
            text += f"; stalls {measured[0][0]} ({measured[0][1]} ms) reported vs {model[0][0]} ({model[0][1]} ms) by the arithmetic"
        return text
    return ""


def machine():
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu or 'unknown model'}), {memory or 'unknown memory'}, kernel {platform.release()}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--status", required=True)
    parser.add_argument("--readme", required=True)
    parser.add_argument("--quick", default="0")
    parser.add_argument("--commit", default="unknown")
    args = parser.parse_args()
    quick = args.quick not in ("", "0")
    day = os.path.basename(args.dir.rstrip("/"))
    table = ["| benchmark | result | status | report |", "|---|---|---|---|"]
    for line in open(args.status):
        name, status, seconds = line.rstrip("\n").split("\t")
        report = os.path.join(args.dir, f"{name}.md")
        text = open(report).read() if os.path.exists(report) else ""
        result = headline(name, text) if text else ""
        if status == "ok" and not result:
            result = "(the report has no headline this summary can read)"
        if text:
            link = f"[{name}.md](Benchmarks/results/{day}/{name}.md)"
        elif not status.startswith("skipped"):
            link = f"[log](Benchmarks/results/{day}/{name}.log)"
        else:
            link = ""
        took = "" if status.startswith("skipped") else f", {int(seconds) // 60} min {int(seconds) % 60} s"
        table.append(f"| {DESCRIPTIONS.get(name, name)} | {result or '—'} | {status}{took} | {link} |")
    facts = (f"`Benchmarks/run-all` on {day} ({'QUICK: short runs that check the harness, not figures to publish' if quick else 'full runs'}), "
             f"commit {args.commit}; {machine()}; every benchmark alone on the machine, client and servers sharing its cores.")
    summary = "\n".join([f"# Benchmarks, {day}", "", facts, ""] + [row.replace("Benchmarks/results/" + day + "/", "") for row in table]) + "\n"
    open(os.path.join(args.dir, "SUMMARY.md"), "w").write(summary)
    print(summary)
    if quick:
        print("run-all: QUICK runs leave the README as it is")
        return
    readme = open(args.readme).read()
    begin, end = "<!-- run-all:begin -->", "<!-- run-all:end -->"
    if begin in readme and end in readme:
        block = "\n".join([begin, facts, "", *table, end])
        readme = readme[: readme.index(begin)] + block + readme[readme.index(end) + len(end):]
        open(args.readme, "w").write(readme)
    else:
        print(f"run-all: the README has no {begin} … {end} block; SUMMARY.md only")


if __name__ == "__main__":
    main()

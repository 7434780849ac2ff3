#!/usr/bin/env python3
"""Analytics ingestion and query speed: a synthetic delivery log read by a real `marquee analytics`.

Run by Benchmarks/analytics-throughput.sh (which starts PostgreSQL when asked); on its own:

    python3 Benchmarks/analytics_bench.py --marquee .build/release/marquee --records 10000000 \
        --database sqlite --log /tmp/analytics-log --out result.json

1. Writes the package store and, unless --log already holds one, the delivery log with
   Benchmarks/metering_bench.py's generator (players fetching video and audio in order, with
   playlist reloads, switches, seeks, aborted and ranged responses and refusals), its sessions
   starting over the last --span-hours (a month by default, so the month's queries have a month
   of rows; an hour is a busy audience, thousands watching at once) and over 8 countries.
2. Starts `marquee auth` (an admin and a publisher sign in) and `marquee analytics` on the
   complete log; the clock runs until analytics' committed position reaches the end.
3. Gives every session a viewer and every title the publisher as owner (what billing's lookups
   would do), then times each API query QUERIES times over HTTP, as an admin and as the
   publisher: the dashboard for a day, a week and a month, top titles, one title, the month's
   report, revenue.
4. Checks the rollups against the generator: the day rows hold every record once.
Prints and writes (--out) a JSON summary.
"""

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metering_bench as mb  # noqa: E402

COUNTRIES = [b"DE", b"FR", b"US", b"GB", b"BR", b"JP", b"IN", b"ES"]


def generate(sessions, limit, base_us, span_s):
    """The metering generator's records, each session's country set from its index."""
    for raw in mb.generate(sessions, limit, span_s, base_us):
        rec = bytearray(raw)
        # The session id is at offset 64 (bench-sNNNNN-...): its number picks the country.
        rec[6:8] = COUNTRIES[int(rec[71:76]) % len(COUNTRIES)]
        yield bytes(rec)


def query(database, sql):
    return mb.query(database, sql)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--marquee", required=True)
    ap.add_argument("--database", default="sqlite", help="sqlite, or a postgres:// URL of an empty database")
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--sessions", type=int, default=20_000)
    ap.add_argument("--titles", type=int, default=50)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--span-hours", type=float, default=720,
                    help="sessions start over this many hours before now (720: a month of history for the queries; 1: a busy hour's audience)")
    ap.add_argument("--log", help="the delivery log folder: written when empty, reused otherwise")
    ap.add_argument("--label", default="")
    ap.add_argument("--work")
    ap.add_argument("--out")
    args = ap.parse_args()

    work = args.work or tempfile.mkdtemp(prefix="analytics-bench-")
    os.makedirs(work, exist_ok=True)
    store = os.path.join(work, "store")
    log = args.log or os.path.join(work, "log")
    titles, sessions = mb.plan(argparse.Namespace(seed=args.seed, titles=args.titles, records=args.records, sessions=args.sessions))
    for t in titles:
        t.write(store)
    generated = not (os.path.isdir(log) and any(n.endswith(".log") for n in os.listdir(log)))
    if generated:
        started = time.time()
        span_s = args.span_hours * 3_600
        base_us = int((time.time() - span_s - 3_600) * 1_000_000)
        n = mb.write_log(log, generate(sessions, args.records, base_us, span_s - 3_600 if span_s > 7_200 else span_s))
        print("wrote %d records in %.0f s" % (n, time.time() - started), file=sys.stderr)
    shutil.rmtree(os.path.join(log, "consumers"), ignore_errors=True)
    records = sum((os.path.getsize(os.path.join(log, f)) - mb.HEADER_SIZE) // mb.RECORD.size for f in os.listdir(log) if f.endswith(".log"))

    database = args.database
    if database == "sqlite":
        database = "sqlite://" + os.path.join(work, "analytics.db")
    auth_port, analytics_port = mb.free_port(), mb.free_port()
    with open(os.path.join(work, "kek"), "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    with open(os.path.join(work, "password"), "w") as f:
        f.write("bench-admin-password-0123\n")
    with open(os.path.join(work, "config.yaml"), "w") as f:
        f.write("auth:\n  bcrypt_cost: 10\n  access_token_ttl_s: 86400\n  key_encryption_key_file: %s\nanalytics:\n  batch: %d\n"
                % (os.path.join(work, "kek"), args.batch))
    common = ["--config", os.path.join(work, "config.yaml"), "--data", os.path.join(work, "var")]
    stack = mb.Stack(args, work)
    try:
        for email, role in (("admin@bench.test", "admin"), ("publisher@bench.test", "publisher")):
            subprocess.run([args.marquee, "users", "add", "--email", email, "--role", role, "--password-file", os.path.join(work, "password")] + common,
                           check=True, cwd=work, stdout=subprocess.DEVNULL)
        auth = stack.start("auth", [args.marquee, "auth", "--listen", "127.0.0.1:%d" % auth_port] + common)
        mb.wait_http("http://127.0.0.1:%d/healthz" % auth_port, auth)
        tokens = {}
        for email in ("admin@bench.test", "publisher@bench.test"):
            status, body = mb.http("POST", "http://127.0.0.1:%d/api/auth/login" % auth_port, {"email": email, "password": "bench-admin-password-0123"})
            assert status == 200, (status, body)
            tokens[email] = body["access_token"]
        status, me = mb.http("GET", "http://127.0.0.1:%d/api/auth/me" % auth_port, headers={"Authorization": "Bearer " + tokens["publisher@bench.test"]})
        assert status == 200, (status, me)
        publisher_id = me["id"]

        load_before = os.getloadavg()
        started = time.time()
        analytics = stack.start("analytics", [
            args.marquee, "analytics", "--listen", "127.0.0.1:%d" % analytics_port, "--auth-url", "http://127.0.0.1:%d" % auth_port,
            "--deliveries", log, "--package-store", store, "--database", database] + common)
        url = "http://127.0.0.1:%d" % analytics_port
        mb.wait_http(url + "/healthz", analytics, 120)
        offset_file = os.path.join(log, "consumers", "analytics.offset")
        while mb.read_offset(offset_file) < records:
            if analytics.poll() is not None:
                raise SystemExit("marquee analytics exited with %s" % analytics.returncode)
            time.sleep(0.05)
        ingest_s = time.time() - started
        cpu_s = mb.cpu_seconds(analytics.pid)

        # What billing's lookups would fill in: a viewer per session, the publisher as owner.
        for sql in (
            "UPDATE analytics_sessions SET user_id = 'viewer-' || id, lookup = 'done'",
            "INSERT INTO analytics_viewer_days (title_id, day, user_id) SELECT title_id, (first_media / 86400000000) * 86400, user_id "
            "FROM analytics_sessions WHERE first_media IS NOT NULL ON CONFLICT DO NOTHING",
            "UPDATE analytics_titles SET owner = '%s'" % publisher_id,
        ):
            if database.startswith("sqlite://"):
                import sqlite3
                con = sqlite3.connect(database[len("sqlite://"):])
                con.execute(sql)
                con.commit()
                con.close()
            else:
                subprocess.run(["psql", database, "-q", "-c", sql], check=True, capture_output=True)
        if not database.startswith("sqlite://"):
            subprocess.run(["psql", database, "-q", "-c", "ANALYZE"], check=True, capture_output=True)

        title = titles[0].id
        routes = [
            "/api/analytics/dashboard?range=day", "/api/analytics/dashboard?range=week", "/api/analytics/dashboard?range=month",
            "/api/analytics/top-titles?range=month", "/api/analytics/titles/" + title, "/api/analytics/reports/month",
            "/api/analytics/revenue",
        ]
        timings = {}
        for who in ("admin@bench.test", "publisher@bench.test"):
            headers = {"Authorization": "Bearer " + tokens[who]}
            for route in routes:
                samples = []
                for k in range(args.queries + 2):
                    t0 = time.perf_counter()
                    status, body = mb.http("GET", url + route, headers=headers, timeout=60)
                    elapsed = (time.perf_counter() - t0) * 1000
                    assert status == 200, (route, status, str(body)[:300])
                    if k >= 2:
                        samples.append(elapsed)
                samples.sort()
                timings["%s %s" % (who.split("@")[0], route)] = {
                    "p50_ms": round(mb.percentile(samples, 50), 1), "max_ms": round(samples[-1], 1)}

        # Every record once in the day rows; watch time as the generator's oracle counts it.
        (counted,) = query(database, "SELECT CAST(SUM(requests) AS BIGINT) FROM analytics_rollups WHERE grain = 'day'")[0]
        (watch,) = query(database, "SELECT CAST(SUM(watch_us) AS BIGINT) FROM analytics_rollups WHERE grain = 'day'")[0]
        # The generator's oracle (each session's completed segments) exists when it wrote the log now.
        expected_watch = sum(s.covered() for s in sessions) if generated else None
        (rows,) = query(database, "SELECT COUNT(*) FROM analytics_rollups")[0]
        result = {
            "label": args.label, "database": "sqlite" if database.startswith("sqlite://") else "postgres", "records": records,
            "sessions": args.sessions, "titles": args.titles, "batch": args.batch, "span_hours": args.span_hours, "ingest_s": round(ingest_s, 2),
            "records_per_s": int(records / ingest_s), "analytics_cpu_s": round(cpu_s, 1),
            "analytics_cpu_us_per_record": round(cpu_s / records * 1e6, 2), "rollup_rows": rows,
            "requests_counted": counted, "watch_us": watch, "watch_us_expected": expected_watch,
            "exact": counted == records, "queries": timings, "slowest_query_ms": max(t["max_ms"] for t in timings.values()),
            "load_before": load_before, "load_after": os.getloadavg(),
        }
        print(json.dumps(result, indent=1))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=1)
    finally:
        stack.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

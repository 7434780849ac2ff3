#!/usr/bin/env python3
"""Metering throughput and lag: a synthetic delivery log read by a real `marquee billing`.

Run by Benchmarks/metering-throughput.sh (which starts PostgreSQL when asked); on its own:

    python3 Benchmarks/metering_bench.py --marquee .build/release/marquee --mode throughput \
        --records 1500000 --database sqlite --out result.json

What it does, per run (everything in a scratch folder, removed afterwards unless --keep):
1. Writes a package store of TITLES titles (HLS: two video renditions and one audio rendition of
   2-second segments) that billing reads its timelines from.
2. Starts `marquee auth` (an admin signs in) and `marquee billing` on an empty delivery-log
   folder, deposits to SESSIONS viewers (most with plenty, some with funds for a few minutes
   only, a few not a whole number of minutes), and opens one billed session per viewer through
   `/internal/billing/sessions` with playback's credential.
3. Generates the records (docs/delivery-records.md, layout version 1): every session fetches its
   title's segments in order, video and audio, with playlist reloads, duplicates, re-fetches,
   a rendition switch, seeks back and forward, aborted responses retried, segments fetched in
   two ranges, and refusals. The records of all sessions are interleaved in time, as a gateway
   writes them. The generator keeps the oracle: each session's covered media time (the union
   of its completed segments), hence its minutes, and what its wallet can pay.
4. throughput: the whole log (segments of 100,000 records) is renamed into the folder at once;
   the clock runs until billing's committed offset (`consumers/billing.offset`, written after
   each commit) reaches the end.
   lag: records are appended live at RATE records/s in 10 ms chunks; a record's lag is the time
   from its write to the first observation of a committed offset past it (offset polled every
   2 ms).
5. Checks the ledger against the oracle: every session's covered time, minutes and charge
   transfers (one publisher and one fee transfer per minute, never more), what the viewer paid
   (min(minutes x price, deposit)), what was written off, and that every currency's balances
   sum to zero (debits = credits) and each account's balance equals its transfers.
Prints and writes (--out) a JSON summary.
"""

import argparse
import bisect
import heapq
import json
import os
import random
import secrets
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

RECORD = struct.Struct("<BBHBB2sqIIQQqqBBBBHH128s64s64s192s256s")
assert RECORD.size == 768
HEADER_SIZE = 256
SEGMENT_RECORDS = 100_000
SEG_US = 2_000_000
PRICE = 10
CURRENCY = "EUR"
OWNER = "bench-publisher"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def billed_minutes(covered):
    """SessionCoverage.billedMinutes: ceil(covered / 60 s), a last minute entered by <= 250 ms not counted."""
    if covered <= 0:
        return 0
    minutes = (covered + 59_999_999) // 60_000_000
    if minutes > 1 and covered - (minutes - 1) * 60_000_000 <= 250_000:
        return minutes - 1
    return minutes


def segment_header(first, gateway=b"bench-gw", role=b"edge", region=b"bench"):
    h = bytearray(HEADER_SIZE)
    h[0:8] = b"MQDREC01"
    h[8] = 1
    h[9], h[10], h[11] = len(gateway), len(role), len(region)
    struct.pack_into("<QQ", h, 16, random.getrandbits(64), first)
    h[32:32 + len(role)] = role
    h[48:48 + len(region)] = region
    h[112:112 + len(gateway)] = gateway
    return bytes(h)


def segment_name(first):
    return "deliveries-%020d.log" % first


def encode(end_us, status, sent, size, session, title, version, path, rng=None, aborted=False):
    flags = 8 | 16
    first = last = -1
    if rng is not None:
        flags |= 2
        first, last = rng
    if aborted:
        flags |= 1
    return RECORD.pack(1, 1, status, 1, flags, b"DE", end_us, 1500, 0, sent, size, first, last,
                       len(session), len(title), len(version), len(path), 0, 0,
                       session, title, version, path, b"")


# ---------------------------------------------------------------- the package store

class Title:
    def __init__(self, index, segments):
        self.id = "bench-t%02d" % index
        self.version = "v1"
        self.segments = segments

    def size(self, rendition, i):
        return {"720p": 600_000, "360p": 200_000, "audio": 32_000}[rendition] + (i * 7919) % 4096

    def path(self, rendition, i):
        folder = "audio" if rendition == "audio" else "video/" + rendition
        return "%s/seg_%05d.m4s" % (folder, i)

    def write(self, store):
        root = os.path.join(store, "titles", self.id, self.version)
        for folder in ("video/720p", "video/360p", "audio"):
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0",
                     "#EXT-X-PLAYLIST-TYPE:VOD", '#EXT-X-MAP:URI="init.mp4"']
            for i in range(self.segments):
                lines += ["#EXTINF:2.000,", "seg_%05d.m4s" % i]
            lines.append("#EXT-X-ENDLIST")
            with open(os.path.join(root, folder, "index.m3u8"), "w") as f:
                f.write("\n".join(lines) + "\n")
        with open(os.path.join(root, "master.m3u8"), "w") as f:
            f.write("\n".join([
                "#EXTM3U", "#EXT-X-VERSION:7",
                '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,AUTOSELECT=YES,URI="audio/index.m3u8"',
                '#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,AUDIO="aud"', "video/720p/index.m3u8",
                '#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,AUDIO="aud"', "video/360p/index.m3u8"]) + "\n")


# ---------------------------------------------------------------- sessions and their records

class Session:
    def __init__(self, index, title, steps, deposit, rnd):
        self.index = index
        self.id = "bench-s%05d-%s" % (index, secrets.token_hex(4))
        self.user = "bench-u%05d" % index
        self.title = title
        self.steps = steps
        self.deposit = deposit
        self.rnd = rnd
        self.completed = set()  # segment indices whose bytes all went out (the oracle)

    def covered(self):
        return len(self.completed) * SEG_US

    def minutes(self):
        return billed_minutes(self.covered())

    def events(self, start_s):
        """(simulated time in s, record fields) in the order this session's player fetches."""
        r = self.rnd
        t = self.title
        sid, tid, ver = self.id.encode(), t.id.encode(), t.version.encode()
        rendition = "720p" if r.random() < 0.7 else "360p"
        seg = 0 if r.random() < 0.8 else r.randrange(0, max(1, t.segments // 3))
        now = start_s
        history = []
        yield now, (200, 1500, 1500, sid, tid, ver, b"master.m3u8", None, False)
        for step in range(self.steps):
            if seg >= t.segments:
                break
            if r.random() < 0.02:  # playlist reload
                p = ("video/%s/index.m3u8" % rendition).encode()
                yield now, (200, 90_000, 90_000, sid, tid, ver, p, None, False)
            if r.random() < 0.004:  # a rendition switch
                rendition = "360p" if rendition == "720p" else "720p"
            for kind in (rendition, "audio"):
                path = t.path(kind, seg).encode()
                size = t.size(kind, seg)
                x = r.random()
                if x < 0.01:  # aborted, then fetched again whole
                    sent = r.randrange(1, size)
                    yield now, (200, sent, size, sid, tid, ver, path, None, True)
                    yield now + 0.3, (200, size, size, sid, tid, ver, path, None, False)
                elif x < 0.03:  # two ranges
                    cut = r.randrange(1, size - 1)
                    yield now, (206, cut, size, sid, tid, ver, path, (0, cut - 1), False)
                    yield now + 0.1, (206, size - cut, size, sid, tid, ver, path, (cut, size - 1), False)
                elif x < 0.035:  # refused / not found: nothing delivered
                    yield now, (404 if x < 0.033 else 403, 0, 0, sid, tid, ver, path, None, False)
                    yield now + 0.2, (200, size, size, sid, tid, ver, path, None, False)
                else:
                    yield now, (200, size, size, sid, tid, ver, path, None, False)
                self.completed.add(seg)
                history.append((kind, seg))
            if r.random() < 0.01 and history:  # a duplicate record / re-fetch of a recent segment
                kind, s = history[max(0, len(history) - 1 - r.randrange(0, 10))]
                size = t.size(kind, s)
                yield now + 0.05, (200, size, size, sid, tid, ver, t.path(kind, s).encode(), None, False)
            now += 2.0 + r.uniform(-0.3, 0.3)
            y = r.random()
            if y < 0.003:
                seg = max(0, seg - r.randrange(5, 40))  # seek back
            elif y < 0.005:
                seg += r.randrange(5, 40)  # seek forward (a gap in coverage)
            else:
                seg += 1


def plan(args):
    rnd = random.Random(args.seed)
    titles = [Title(i, rnd.randrange(360, 900)) for i in range(args.titles)]
    per_session = args.records / args.sessions
    sessions = []
    for i in range(args.sessions):
        title = rnd.choice(titles)
        steps = max(10, int(rnd.uniform(0.5, 1.5) * per_session / 2.12))
        x = rnd.random()
        if x < 0.08:
            deposit = PRICE * rnd.randrange(1, 6)  # a few minutes only: the rest is written off
        elif x < 0.10:
            deposit = PRICE * rnd.randrange(1, 6) + rnd.randrange(1, PRICE)  # not a whole minute
        else:
            deposit = 1_000_000
        sessions.append(Session(i, title, steps, deposit, random.Random(rnd.getrandbits(64))))
    return titles, sessions


def generate(sessions, limit, span_s, base_us):
    """Yields encoded records of all sessions interleaved in simulated time, at most `limit`."""
    rnd = random.Random(7)
    heap = []
    for s in sessions:
        it = s.events(rnd.uniform(0, span_s))
        first = next(it, None)
        if first:
            heap.append((first[0], s.index, it, first[1]))
    heapq.heapify(heap)
    n = 0
    while heap and n < limit:
        t, i, it, f = heap[0]
        status, sent, size, sid, tid, ver, path, rng, aborted = f
        yield encode(base_us + int(t * 1_000_000), status, sent, size, sid, tid, ver, path, rng, aborted)
        n += 1
        nxt = next(it, None)
        if nxt:
            heapq.heapreplace(heap, (nxt[0], i, it, nxt[1]))
        else:
            heapq.heappop(heap)


def write_log(folder, records):
    """Writes segments of SEGMENT_RECORDS records; returns how many records."""
    os.makedirs(folder, exist_ok=True)
    n = 0
    f = None
    for rec in records:
        if n % SEGMENT_RECORDS == 0:
            if f:
                f.close()
            f = open(os.path.join(folder, segment_name(n)), "wb", buffering=8 << 20)
            f.write(segment_header(n))
        f.write(rec)
        n += 1
    if f:
        f.close()
    return n


# ---------------------------------------------------------------- services

def http(method, url, body=None, headers=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def wait_http(url, proc, deadline_s=60):
    end = time.time() + deadline_s
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit("%s exited with %s" % (proc.args[:2], proc.returncode))
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            time.sleep(0.1)
    raise SystemExit("no answer from " + url)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


class Stack:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.procs = []

    def start(self, name, argv, env=None):
        log = open(os.path.join(self.work, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.work)
        self.procs.append(p)
        return p

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def up(self, database, deliveries, store):
        a, w = self.args, self.work
        auth_port, billing_port = free_port(), free_port()
        with open(os.path.join(w, "kek"), "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        with open(os.path.join(w, "password"), "w") as f:
            f.write("bench-admin-password-0123\n")
        secret = secrets.token_hex(24)
        with open(os.path.join(w, "playback-credential"), "w") as f:
            f.write(secret + "\n")
        with open(os.path.join(w, "config.yaml"), "w") as f:
            f.write("auth:\n  bcrypt_cost: 10\n  access_token_ttl_s: 86400\n  key_encryption_key_file: %s\n"
                    "billing:\n  max_sessions_per_viewer: 0\n  meter_batch: %d\n  meter_interval_ms: %d\n"
                    % (os.path.join(w, "kek"), a.batch, a.interval_ms))
        common = ["--config", os.path.join(w, "config.yaml"), "--data", os.path.join(w, "var")]
        env = dict(os.environ)
        subprocess.run([a.marquee, "users", "add", "--email", "admin@bench.test", "--role", "admin",
                        "--password-file", os.path.join(w, "password")] + common, check=True, env=env,
                       cwd=w, stdout=subprocess.DEVNULL)
        auth = self.start("auth", [a.marquee, "auth", "--listen", "127.0.0.1:%d" % auth_port] + common, env)
        wait_http("http://127.0.0.1:%d/healthz" % auth_port, auth)
        status, tokens = http("POST", "http://127.0.0.1:%d/api/auth/login" % auth_port,
                              {"email": "admin@bench.test", "password": "bench-admin-password-0123"})
        assert status == 200, (status, tokens)
        self.token = tokens["access_token"]
        self.billing = self.start("billing", [
            a.marquee, "billing", "--listen", "127.0.0.1:%d" % billing_port, "--auth-url", "http://127.0.0.1:%d" % auth_port,
            "--playback-credential-file", os.path.join(w, "playback-credential"), "--deliveries", deliveries,
            "--package-store", store, "--database", database] + common, env)
        self.url = "http://127.0.0.1:%d" % billing_port
        wait_http(self.url + "/healthz", self.billing)
        self.secret = secret

    def open_sessions(self, sessions):
        admin = {"Authorization": "Bearer " + self.token}
        playback = {"Authorization": "Bearer " + self.secret}

        def one(s):
            status, body = http("POST", self.url + "/api/billing/deposits",
                                {"amount": s.deposit, "currency": CURRENCY, "user_id": s.user},
                                dict(admin, **{"Idempotency-Key": "bench-" + s.id}))
            assert status == 201, (status, body)
            status, body = http("POST", self.url + "/internal/billing/sessions", {
                "session_id": s.id, "user_id": s.user, "title_id": s.title.id, "owner": OWNER,
                "package_version": s.title.version, "price_per_minute": PRICE, "currency": CURRENCY}, playback)
            assert status == 201, (status, body)

        errors = []

        def worker(chunk):
            try:
                for s in chunk:
                    one(s)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(sessions[k::4],)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]


# ---------------------------------------------------------------- the ledger against the oracle

def query(database, sql):
    if database.startswith("sqlite://"):
        con = sqlite3.connect(database[len("sqlite://"):])
        try:
            return [tuple(r) for r in con.execute(sql).fetchall()]
        finally:
            con.close()
    out = subprocess.run(["psql", database, "-At", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        rows.append(tuple(int(x) if x.lstrip("-").isdigit() else x for x in line.split("\t")))
    return rows


def verify(database, sessions):
    problems = []
    by_id = {s.id: s for s in sessions}
    rows = query(database, "SELECT id, covered_us, billed_minutes, charged, written_off FROM billing_sessions")
    seen = set()
    expected_minutes = 0
    for sid, covered, minutes, charged, written_off in rows:
        s = by_id.get(sid)
        if s is None:
            continue
        seen.add(sid)
        m = s.minutes()
        expected_minutes += m
        paid = min(m * PRICE, s.deposit)
        if covered != s.covered() or minutes != m or charged != paid or written_off != m * PRICE - paid:
            problems.append("session %s: covered %s/%s minutes %s/%s charged %s/%s written_off %s/%s (got/expected)"
                            % (sid, covered, s.covered(), minutes, m, charged, paid, written_off, m * PRICE - paid))
    missing = len(by_id) - len(seen)
    if missing:
        problems.append("%d sessions missing" % missing)
    charges = query(database, "SELECT session_id, kind, COUNT(*), COUNT(DISTINCT minute), MIN(minute), MAX(minute), SUM(amount) "
                              "FROM billing_transfers WHERE kind IN ('charge_publisher', 'charge_fee') GROUP BY session_id, kind")
    charged_minutes = 0
    per = {}
    for sid, kind, count, distinct, lo, hi, amount in charges:
        per[(sid, kind)] = (count, distinct, lo, hi, amount)
        if kind == "charge_publisher":
            charged_minutes += count
    for s in sessions:
        m = s.minutes()
        for kind, share in (("charge_publisher", PRICE - PRICE * 20 // 100), ("charge_fee", PRICE * 20 // 100)):
            got = per.get((s.id, kind), (0, 0, None, None, 0))
            want = (m, m, 1 if m else None, m if m else None, m * share)
            if tuple(got) != want:
                problems.append("session %s %s: (count, distinct, min, max, amount) %s, expected %s" % (s.id, kind, got, want))
    sums = query(database, "SELECT currency, CAST(SUM(balance) AS BIGINT) FROM billing_accounts GROUP BY currency")
    for currency, total in sums:
        if total != 0:
            problems.append("balances of %s sum to %s, not 0" % (currency, total))
    mismatched = query(database, """
        SELECT a.id, a.balance, COALESCE(c.s, 0) - COALESCE(d.s, 0) FROM billing_accounts a
        LEFT JOIN (SELECT credit_account AS id, CAST(SUM(amount) AS BIGINT) AS s FROM billing_transfers GROUP BY credit_account) c ON c.id = a.id
        LEFT JOIN (SELECT debit_account AS id, CAST(SUM(amount) AS BIGINT) AS s FROM billing_transfers GROUP BY debit_account) d ON d.id = a.id
        WHERE a.balance <> COALESCE(c.s, 0) - COALESCE(d.s, 0)""")
    for row in mismatched[:5]:
        problems.append("account %s balance %s but its transfers make %s" % row)
    return {"sessions": len(seen), "expected_minutes": expected_minutes, "charged_minutes": charged_minutes,
            "written_off_sessions": sum(1 for s in sessions if s.minutes() * PRICE > s.deposit),
            "problems": problems[:20], "problem_count": len(problems), "exact": not problems}


# ---------------------------------------------------------------- runs

def read_offset(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return -1


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--marquee", required=True)
    ap.add_argument("--mode", choices=["throughput", "lag"], default="throughput")
    ap.add_argument("--database", default="sqlite", help="sqlite, or a postgres:// URL of an empty database")
    ap.add_argument("--records", type=int, default=1_500_000)
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--titles", type=int, default=20)
    ap.add_argument("--rate", type=float, default=50_000, help="lag mode: records/s written")
    ap.add_argument("--batch", type=int, default=25000, help="billing.meter_batch")
    ap.add_argument("--interval-ms", type=int, default=200, help="billing.meter_interval_ms")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--work", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", default=None)
    ap.add_argument("--label", default="", help="what was measured (e.g. 'release, main at abc1234'), kept in the result")
    ap.add_argument("--perf", default=None, help="record a perf profile of billing during the run into this file")
    a = ap.parse_args()
    a.marquee = os.path.abspath(a.marquee)
    work = a.work or tempfile.mkdtemp(prefix="metering-bench-")
    os.makedirs(work, exist_ok=True)
    store, log, stage = (os.path.join(work, x) for x in ("media", "log", "stage"))
    os.makedirs(log, exist_ok=True)
    database = a.database if a.database != "sqlite" else "sqlite://" + os.path.join(work, "billing.db")
    stack = Stack(a, work)
    result = {"label": a.label, "mode": a.mode, "database": "sqlite" if database.startswith("sqlite") else "postgresql",
              "records": a.records, "sessions": a.sessions, "titles": a.titles, "meter_batch": a.batch,
              "meter_interval_ms": a.interval_ms}
    try:
        titles, sessions = plan(a)
        for t in titles:
            t.write(store)
        stack.up(database, log, store)
        t0 = time.time()
        stack.open_sessions(sessions)
        result["setup_s"] = round(time.time() - t0, 1)
        base_us = int(time.time() * 1_000_000)
        t0 = time.time()
        n = write_log(stage, generate(sessions, a.records, span_s=600, base_us=base_us))
        result["records"] = n
        result["generate_s"] = round(time.time() - t0, 1)
        offset_file = os.path.join(log, "consumers", "billing.offset")
        pid = stack.billing.pid
        perf = None
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o", a.perf],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        if a.mode == "throughput":
            cpu0 = cpu_seconds(pid)
            start = time.time()
            for name in sorted(os.listdir(stage)):
                os.rename(os.path.join(stage, name), os.path.join(log, name))
            while read_offset(offset_file) < n:
                if stack.billing.poll() is not None:
                    raise SystemExit("billing exited")
                if time.time() - start > a.timeout:
                    raise SystemExit("timed out at offset %d of %d" % (read_offset(offset_file), n))
                time.sleep(0.005)
            elapsed = time.time() - start
            result["elapsed_s"] = round(elapsed, 2)
            result["records_per_s"] = round(n / elapsed)
            result["billing_cpu_s"] = round(cpu_seconds(pid) - cpu0, 2)
            result["billing_cpu_us_per_record"] = round((cpu_seconds(pid) - cpu0) / n * 1e6, 2)
        else:
            source = os.path.join(stage, sorted(os.listdir(stage))[0]) if n <= SEGMENT_RECORDS else None
            # One live segment: concatenate the staged records.
            staged = []
            for name in sorted(os.listdir(stage)):
                with open(os.path.join(stage, name), "rb") as f:
                    f.seek(HEADER_SIZE)
                    staged.append(f.read())
            data = b"".join(staged)
            del staged, source
            writes = []  # (first sequence after the chunk, time written)
            observations = [(0, 0.0)]
            done = threading.Event()

            def poll():
                last = -1
                while not done.is_set():
                    o = read_offset(offset_file)
                    if o != last and o >= 0:
                        observations.append((o, time.time()))
                        last = o
                        if o >= n:
                            return
                    time.sleep(0.002)

            poller = threading.Thread(target=poll)
            fd = os.open(os.path.join(log, segment_name(0)), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.write(fd, segment_header(0))
            cpu0 = cpu_seconds(pid)
            poller.start()
            start = time.time()
            written = 0
            while written < n:
                due = min(n, int((time.time() - start) * a.rate))
                if due > written:
                    os.write(fd, data[written * 768:due * 768])
                    writes.append((due, time.time(), written))
                    written = due
                time.sleep(0.01)
            os.close(fd)
            write_end = time.time()
            poller.join(a.timeout)
            done.set()
            result["write_s"] = round(write_end - start, 2)
            result["written_per_s"] = round(n / (write_end - start))
            result["billing_cpu_s"] = round(cpu_seconds(pid) - cpu0, 2)
            offsets = [o for o, _ in observations]
            lags = []
            for end, tw, first in writes:
                # every record of the chunk [first, end): committed at the first observed offset > seq
                seq = first
                while seq < end:
                    k = bisect.bisect_right(offsets, seq)
                    if k >= len(offsets):
                        raise SystemExit("record %d never committed" % seq)
                    o, tc = observations[k]
                    upto = min(end, o)
                    lags.extend([tc - tw] * (upto - seq))
                    seq = upto
            lags.sort()
            result["lag_p50_ms"] = round(percentile(lags, 50) * 1000, 1)
            result["lag_p99_ms"] = round(percentile(lags, 99) * 1000, 1)
            result["lag_max_ms"] = round(lags[-1] * 1000, 1)
            result["commits_observed"] = len(observations) - 1
        if perf:
            perf.send_signal(2)
            perf.wait()
        result["billing_rss_mb"] = round(int(open("/proc/%d/status" % pid).read().split("VmHWM:")[1].split()[0]) / 1024)
        result["verification"] = verify(database, sessions)
        result["load_during_run"] = os.getloadavg()
    finally:
        stack.stop()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    sys.exit(0 if result["verification"]["exact"] else 1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Helper for Benchmarks/compare-nginx.sh (Marquee vs nginx load benchmark).

Standard library only. Subcommands:

  free-ports N                 print N distinct free TCP ports on 127.0.0.1
  make-media ROOT              write ROOT/bench/playlist.m3u8 (1536 bytes) and
                               ROOT/bench/segment.m4s (2,097,152 random bytes)
  nginx-conf ...               print the generated nginx.conf
  measure ...                  verify one response, sample server CPU, run wrk,
                               sample server CPU again, parse, append a JSON line
  hold-idle ...                open N keep-alive connections, complete one request
                               on each, then hold them idle until SIGTERM
  report ...                   turn the JSON lines into the Markdown report

Every network operation targets 127.0.0.1 and every loop is bounded by a
count or a deadline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

PLAYLIST_BYTES = 1536
SEGMENT_BYTES = 2 * 1024 * 1024
LOOPBACK = "127.0.0.1"


def die(msg: str) -> "NoReturn":  # type: ignore[name-defined]
    print(f"loadbench: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# --------------------------------------------------------------------------
# free-ports


def cmd_secure_link(args: argparse.Namespace) -> None:
    """Print `path?md5=...&expires=...` as nginx's secure_link_md5 expects it."""
    import base64

    digest = hashlib.md5(f"{args.expires}{args.path} {args.secret}".encode()).digest()
    md5 = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    print(f"{args.path}?md5={md5}&expires={args.expires}")


def cmd_free_ports(args: argparse.Namespace) -> None:
    socks = []
    try:
        for _ in range(args.count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# make-media


def hls_playlist(size: int) -> bytes:
    """A realistic live HLS (fMP4/CMAF) media playlist of exactly `size` bytes."""
    head = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:4",
        "#EXT-X-MEDIA-SEQUENCE:184320",
        "#EXT-X-DISCONTINUITY-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="init.mp4"',
    ]
    body = "\n".join(head) + "\n"
    seq = 184320
    t = 1_767_225_600  # 2026-01-01T00:00:00Z
    while True:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t))
        entry = (
            f"#EXT-X-PROGRAM-DATE-TIME:{stamp}.000Z\n"
            f"#EXTINF:4.000,\n"
            f"segment_{seq}.m4s\n"
        )
        # Keep room for a final padding comment line ("#" + "\n" at least).
        if len(body) + len(entry) + 2 > size:
            break
        body += entry
        seq += 1
        t += 4
    pad = size - len(body)
    # A line starting with '#' but not '#EXT' is a comment in HLS.
    body += ("# " + "-" * (pad - 3) + "\n") if pad >= 3 else "#\n"
    data = body.encode("ascii")
    if len(data) != size:
        die(f"internal: playlist is {len(data)} bytes, wanted {size}")
    return data


def cmd_make_media(args: argparse.Namespace) -> None:
    bench = Path(args.root) / "bench"
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "playlist.m3u8").write_bytes(hls_playlist(PLAYLIST_BYTES))
    (bench / "segment.m4s").write_bytes(os.urandom(SEGMENT_BYTES))
    for p in (bench / "playlist.m3u8", bench / "segment.m4s"):
        os.chmod(p, 0o644)
    os.chmod(bench, 0o755)
    os.chmod(args.root, 0o755)


# --------------------------------------------------------------------------
# nginx-conf


def cmd_nginx_conf(args: argparse.Namespace) -> None:
    d = args.dir
    secure_link = ""
    if args.secure_link_secret:
        # The nginx anchor for signed URLs: secure_link with an MD5 over expiry, URI and secret.
        secure_link = f"""
        location / {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "$secure_link_expires$uri {args.secure_link_secret}";
            if ($secure_link = "") {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
        }}"""
    listen = f"listen {LOOPBACK}:{args.port} backlog=4096;"
    if args.tls_cert:
        # HTTPS as Marquee serves it: TLS 1.2-1.3, the same certificate, tickets on (nginx's
        # default), records of 16 KB (ssl_buffer_size's default). No kTLS on this kernel, so no
        # sendfile under TLS for either.
        listen = f"""listen {LOOPBACK}:{args.port} ssl backlog=4096;
        ssl_certificate {args.tls_cert};
        ssl_certificate_key {args.tls_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;"""
    user = ""
    if os.geteuid() == 0:
        # Workers run as the invoking user (same as Marquee); avoids depending
        # on /etc/passwd having nginx's compiled-in default user/group.
        import grp
        import pwd

        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};\n"
    print(
        f"""# Generated by Benchmarks/compare-nginx.sh -- do not edit.
{user}daemon off;
master_process on;
worker_processes {args.workers};
worker_rlimit_nofile {args.rlimit_nofile};
pid {d}/nginx.pid;
error_log {d}/error.log notice;

events {{
    worker_connections {args.worker_connections};
}}

http {{
    types {{
        application/vnd.apple.mpegurl m3u8;
        application/dash+xml          mpd;
        video/iso.segment             m4s;
        video/mp4                     mp4;
        video/mp2t                    ts;
    }}
    default_type application/octet-stream;

    access_log off;
    sendfile on;
    tcp_nopush on;
    open_file_cache max=10000 inactive=60s;
    open_file_cache_valid 60s;
    keepalive_requests 1000000;
    keepalive_timeout 65;

    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;

    server {{
        {listen}
        server_name localhost;
        root {args.root};{secure_link}
    }}
}}
"""
    )


# --------------------------------------------------------------------------
# /proc CPU sampling


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and ')'; fields after the last ')'
    # start at field 3 (state).
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """root and all its descendants (nginx master + workers, etc.)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        f = _stat_fields(int(entry))
        if f is None:
            continue
        children.setdefault(int(f[1]), []).append(int(entry))  # f[1] = ppid (field 4)
    out, todo = [], [root]
    while todo and len(out) < 100_000:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_ticks(root: int) -> tuple[int, int, list[int]]:
    """(utime, stime, pids) summed over root and its descendants, in clock ticks."""
    pids = descendants(root)
    ut = st = 0
    alive = []
    for pid in pids:
        f = _stat_fields(pid)
        if f is None:
            continue
        ut += int(f[11])  # field 14: utime
        st += int(f[12])  # field 15: stime
        alive.append(pid)
    if root not in alive:
        die(f"server process {root} is gone")
    return ut, st, alive


def host_ticks() -> tuple[int, int]:
    """(busy, steal) clock ticks summed over all CPUs, from /proc/stat."""
    f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in f[:8])
    return user + nice + system + irq + softirq, steal


def cmd_host_busy(args: argparse.Namespace) -> None:
    """Print how many cores were busy over the next `seconds` (pre-flight check)."""
    hz = os.sysconf("SC_CLK_TCK")
    b0, _ = host_ticks()
    t0 = time.monotonic()
    time.sleep(args.seconds)
    b1, _ = host_ticks()
    print(f"{(b1 - b0) / hz / (time.monotonic() - t0):.2f}")


# --------------------------------------------------------------------------
# one verified request (response size + correctness check)


def fetch_once(port: int, path: str, timeout: float = 10.0, tls: bool = False) -> tuple[int, int, bytes]:
    """GET path over a fresh connection (HTTPS when `tls`, the certificate unchecked) ->
    (status, header bytes, body)."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as raw:
        s = raw
        if tls:
            import ssl

            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            s = context.wrap_socket(raw, server_hostname="localhost")
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOOPBACK}:{port}\r\n\r\n".encode())
        return read_response(s, deadline, f"port {port}: {path}")


def read_response(s: socket.socket, deadline: float, what: str) -> tuple[int, int, bytes]:
    """One response with a Content-Length body off `s` (which may stay open for the next one)
    -> (status, header bytes, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline or len(buf) > 65536:
            die(f"{what}: no complete response head")
        chunk = s.recv(65536)
        if not chunk:
            die(f"{what}: connection closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    clen = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            clen = int(v.strip())
        if k.strip().lower() == "transfer-encoding":
            die(f"{what}: unexpected Transfer-Encoding on a static file")
    if clen is None:
        die(f"{what}: response has no Content-Length")
    while len(body) < clen:
        if time.monotonic() > deadline:
            die(f"{what}: timed out reading the body")
        chunk = s.recv(1 << 20)
        if not chunk:
            die(f"{what}: connection closed mid-body")
        body += chunk
    return status, len(head) + 4, body[:clen]


# --------------------------------------------------------------------------
# wrk output parsing

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_BIN_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def _ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS[unit]


def parse_wrk(text: str) -> dict:
    r: dict = {}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGTP]?)B read", text, re.M)
    if not m:
        raise ValueError("no 'N requests in T, X read' line")
    r["requests"] = int(m.group(1))
    r["duration_s"] = _ms(m.group(2), m.group(3)) / 1e3
    r["bytes_read_wrk"] = float(m.group(4)) * _BIN_UNITS[m.group(5)]
    m = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    if not m:
        raise ValueError("no 'Requests/sec' line")
    r["rps_wrk"] = float(m.group(1))
    pct = {}
    for m in re.finditer(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M):
        pct[m.group(1)] = _ms(m.group(2), m.group(3))
    if "99" not in pct:
        raise ValueError("no latency distribution (was --latency passed?)")
    r["p50_ms"], r["p99_ms"] = pct.get("50"), pct["99"]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non_2xx"] = int(m.group(1)) if m else 0
    return r


# --------------------------------------------------------------------------
# measure


def cmd_measure(args: argparse.Namespace) -> None:
    expected = Path(args.file).read_bytes()
    if _stat_fields(args.pid) is None or _stat_fields(args.pid)[0] == "Z":
        die(f"{args.server} (pid {args.pid}) is no longer running; see its log in the temp dir")
    try:
        status, head_len, body = fetch_once(args.port, args.path, tls=args.tls)
    except OSError as e:
        die(f"{args.server}: GET {args.path} on port {args.port} failed: {e}")
    if status != 200:
        die(f"{args.server}: GET {args.path} -> {status}, expected 200")
    if body != expected:
        die(
            f"{args.server}: body of {args.path} differs from the file "
            f"({len(body)} bytes, sha256 {hashlib.sha256(body).hexdigest()[:12]} vs "
            f"{len(expected)} bytes, sha256 {hashlib.sha256(expected).hexdigest()[:12]})"
        )
    response_bytes = head_len + len(body)

    url = f"{'https' if args.tls else 'http'}://{LOOPBACK}:{args.port}{args.path}"
    cmd = [
        args.wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
        "--latency", "--timeout", f"{args.timeout}s",
        # A new connection (and, over TLS, a handshake) per request.
        *(["-H", "Connection: close"] if args.close else []), url,
    ]
    if args.wrk_cpus:
        cmd = ["taskset", "-c", args.wrk_cpus, *cmd]
    for attempt in range(1, args.retries + 2):
        rec = run_wrk_once(args, cmd, response_bytes, args.attempt or attempt)
        if rec["other_cpu_cores"] <= args.max_other or attempt > args.retries:
            if args.reject_noisy and rec["other_cpu_cores"] > args.max_other:
                print(
                    f"  {args.scenario:<9} {args.server:<8} round {args.round}: discarded, "
                    f"{rec['other_cpu_cores']:.2f} cores of other load during the run",
                    flush=True,
                )
                sys.exit(3)
            break
        print(
            f"  {args.scenario:<9} {args.server:<8} round {args.round}: discarded, "
            f"{rec['other_cpu_cores']:.2f} cores of other load during the run; retrying",
            flush=True,
        )
        wait_quiet(args.max_other, 30)
    with open(args.out, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    print(
        f"  {args.scenario:<9} {args.server:<8} round {args.round}"
        f"{' (idle ' + str(args.idle) + ')' if args.idle else ''}: "
        f"{rec['rps']:>10.0f} req/s  {rec['cpu_us_per_req']:7.2f} µs CPU/req "
        f"({rec['user_us_per_req']:.2f} user)  p99 {rec['p99_ms']:.3f} ms  "
        f"{rec['gbps']:.3f} GB/s  [cores: server {rec['server_cpu_cores']:.2f}, "
        f"wrk {rec['client_cpu_cores']:.2f}, other {rec['other_cpu_cores']:.2f}]",
        flush=True,
    )


def wait_quiet(max_busy: float, deadline_s: float) -> None:
    """Wait (bounded) until the host is nearly idle for one second."""
    hz = os.sysconf("SC_CLK_TCK")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        b0, _ = host_ticks()
        time.sleep(1)
        b1, _ = host_ticks()
        if (b1 - b0) / hz <= max_busy:
            return


def run_wrk_once(args: argparse.Namespace, cmd: list[str], response_bytes: int, attempt: int) -> dict:
    hz = os.sysconf("SC_CLK_TCK")
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    h0, st0 = host_ticks()
    u0, s0, pids0 = cpu_ticks(args.pid)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    except subprocess.TimeoutExpired:
        die(f"wrk did not finish within {args.duration + 60}s")
    wall = time.monotonic() - t0
    u1, s1, pids1 = cpu_ticks(args.pid)
    h1, st1 = host_ticks()
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu_s = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)

    if args.raw:
        with open(args.raw, "a") as fh:
            fh.write(f"### {args.scenario} {args.server} round {args.round} idle {args.idle} "
                     f"attempt {attempt}\n$ {' '.join(cmd)}\n")
            fh.write(proc.stdout + proc.stderr + "\n")
    if proc.returncode != 0:
        die(f"wrk exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    try:
        w = parse_wrk(proc.stdout)
    except ValueError as e:
        die(f"cannot parse wrk output ({e}):\n{proc.stdout}{proc.stderr}")
    if w["requests"] == 0:
        die(f"{args.server}: wrk completed no requests:\n{proc.stdout}")
    errs = {k: v for k, v in w["socket_errors"].items() if v}
    if w["non_2xx"] or errs:
        die(
            f"{args.server} {args.scenario} round {args.round}: "
            f"non-2xx/3xx={w['non_2xx']} socket errors={errs or 0}\n{proc.stdout}"
        )
    if set(pids1) != set(pids0):
        print(f"loadbench: warning: {args.server} process set changed during the run "
              f"({sorted(pids0)} -> {sorted(pids1)}); CPU of exited processes is lost",
              file=sys.stderr)

    us_per_tick = 1e6 / hz
    n = w["requests"]
    # wrk prints the run time rounded to 10 ms but computes Requests/sec from
    # the exact run time; recover the exact run time from the two.
    if w["rps_wrk"] > 0:
        w["duration_s"] = n / w["rps_wrk"]
    rec = {
        "scenario": args.scenario,
        "server": args.server,
        "round": args.round,
        "order": args.order,
        "idle": args.idle,
        "threads": args.threads,
        "connections": args.connections,
        "duration_arg_s": args.duration,
        "wall_s": wall,
        **w,
        "response_bytes": response_bytes,
        "rps": w["rps_wrk"],
        "gbps": n * response_bytes / w["duration_s"] / 1e9,
        "clk_tck": hz,
        "pids": pids0,
        "utime_ticks": u1 - u0,
        "stime_ticks": s1 - s0,
        "cpu_us_per_req": (u1 - u0 + s1 - s0) * us_per_tick / n,
        "user_us_per_req": (u1 - u0) * us_per_tick / n,
        "server_cpu_cores": (u1 - u0 + s1 - s0) / hz / wall,
        "client_cpu_cores": client_cpu_s / wall,
        "host_busy_cores": (h1 - h0) / hz / wall,
        # CPU used by neither the server nor wrk during the run (other jobs,
        # ksoftirqd, the idle-connection holder, ...). Should be ~0.
        "other_cpu_cores": max(0.0, (h1 - h0 - (u1 - u0 + s1 - s0)) / hz - client_cpu_s) / wall,
        "steal_cores": (st1 - st0) / hz / wall,
        "attempt": attempt,
    }
    return rec


# --------------------------------------------------------------------------
# hold-idle


_stop = False


def _on_term(signum, frame):  # noqa: ARG001
    global _stop
    _stop = True


def cmd_hold_idle(args: argparse.Namespace) -> None:
    """Open N connections, complete one GET on each, hold them idle.

    Writes "READY <n> <seconds>" to the status file once every connection has
    received a full response; on SIGTERM checks how many connections the
    server has kept open, writes "ALIVE <n>", resets all connections (SO_LINGER
    0, so no TIME_WAIT pile-up on the client side) and exits.
    """
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.count + 64
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            die(f"need {need} open files for {args.count} idle connections, hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    status = Path(args.status)
    request = f"GET {args.path} HTTP/1.1\r\nHost: {LOOPBACK}:{args.port}\r\n\r\n".encode()
    ep = select.epoll()
    socks: dict[int, socket.socket] = {}
    state: dict[int, bytearray] = {}  # fd -> received bytes until the response is complete
    done: set[int] = set()
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    opened = 0
    in_flight = 0

    def fail(msg: str) -> None:
        status.write_text(f"FAILED {msg}\n")
        die(msg)

    def response_complete(buf: bytearray) -> bool | None:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).decode("latin-1")
        if not head.startswith("HTTP/1.1 200"):
            fail(f"idle connection got '{head.splitlines()[0]}'")
        m = re.search(r"^content-length:\s*(\d+)", head, re.I | re.M)
        if not m:
            fail("idle connection response has no Content-Length")
        return len(buf) - end - 4 >= int(m.group(1))

    while len(done) < args.count:
        if _stop:
            sys.exit(1)
        if time.monotonic() > deadline:
            fail(f"only {len(done)}/{args.count} idle connections established within {args.timeout}s")
        while opened < args.count and in_flight < args.concurrency:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            err = s.connect_ex((LOOPBACK, args.port))
            if err not in (0, 115):  # EINPROGRESS
                fail(f"connect #{opened}: {os.strerror(err)}")
            socks[s.fileno()] = s
            state[s.fileno()] = bytearray()
            ep.register(s.fileno(), select.EPOLLOUT)
            opened += 1
            in_flight += 1
        for fd, ev in ep.poll(0.5):
            s = socks[fd]
            if ev & select.EPOLLOUT:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(f"connect: {os.strerror(err)} after {len(done)} established")
                s.send(request)  # tiny; fits the empty send buffer
                ep.modify(fd, select.EPOLLIN)
                continue
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                fail(f"{e.strerror} from server after {len(done)} established")
            if not chunk:
                fail(f"server closed a connection after {len(done)} established")
            state[fd] += chunk
            if response_complete(state[fd]):
                ep.unregister(fd)
                del state[fd]
                done.add(fd)
                in_flight -= 1
    elapsed = time.monotonic() - t0
    status.write_text(f"READY {len(done)} {elapsed:.2f}\n")
    print(f"  holding {len(done)} idle keep-alive connections (set up in {elapsed:.1f}s)", flush=True)

    # Hold until told to stop (bounded by --max-hold).
    stop_at = time.monotonic() + args.max_hold
    while not _stop and time.monotonic() < stop_at:
        time.sleep(0.2)

    # Count connections the server kept open: recv on a live idle connection
    # would block (EAGAIN); a closed one returns b"" or raises.
    alive = 0
    for fd in done:
        s = socks[fd]
        try:
            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT):
                alive += 1  # unexpected data, but open
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    with open(status, "a") as fh:
        fh.write(f"ALIVE {alive}\n")
    for s in socks.values():
        s.close()


# --------------------------------------------------------------------------
# report


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def _fmt(x: float, digits: int) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def _ratio(a: float, b: float) -> str:
    return "n/a" if not b or a != a or b != b else f"{a / b:.2f}×"


def cmd_report(args: argparse.Namespace) -> None:
    recs = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    meta = json.loads(args.meta) if args.meta else {}
    servers = ["nginx", "marquee"]
    label = {"nginx": "nginx", "marquee": "Marquee"}
    scen_desc = {
        "playlist": "playlist (1.5 KB)",
        "segment": "segment (2 MB)",
        "handshake": "playlist, a new connection each",
    }

    def clean(r):
        return r.get("other_cpu_cores", 0) <= args.other_threshold

    dropped = []

    def group(scenario, server, idle):
        """Runs of one cell. Noisy runs are left out when at least one clean run exists."""
        rs = [r for r in recs if r["scenario"] == scenario and r["server"] == server and r["idle"] == idle]
        good = [r for r in rs if clean(r)]
        if good and len(good) < len(rs):
            key = (scenario, server, idle)
            if key not in dropped:
                dropped.append(key)
            return good
        return rs

    def mark(scenario, server, idle):
        return "†" if (scenario, server, idle) in dropped else ""

    def med(rs, key):
        return _median([r[key] for r in rs])

    out = []
    out.append("## Load benchmark: Marquee vs nginx\n")
    if meta:
        out.append(
            f"{meta.get('date', '')} · {meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')}) · "
            f"kernel {platform.release()} · {meta.get('nginx_version', 'nginx')} · "
            f"{meta.get('wrk_version', 'wrk')} · Marquee `{meta.get('marquee_bin', '?')}` "
            f"({meta.get('marquee_rev', '?')})\n"
        )
        out.append(
            f"Settings: {meta.get('rounds')} interleaved A/B rounds per scenario (first server alternates), "
            f"medians shown; server threads/workers = {meta.get('threads')}; wrk -t{meta.get('wrk_threads')}; "
            f"playlist -c{meta.get('playlist_conns')} -d{meta.get('playlist_duration')}s; "
            f"segment -c{meta.get('segment_conns')} -d{meta.get('segment_duration')}s; "
            f"idle connections = {meta.get('idle')}.\n"
            + (
                "Signed URLs on both sides: Marquee requires a URL token (path placement, HMAC-SHA256, "
                "session claim); nginx checks secure_link (MD5 of expiry, URI and secret).\n"
                if meta.get("tokens") == "1"
                else ""
            )
            + (
                "HTTPS on both sides: TLS 1.3, ECDSA P-256 certificate, session tickets on; "
                "wrk speaks TLS through OpenSSL.\n"
                if meta.get("tls") == "1"
                else ""
            )
        )
    noisy = [r for r in recs if r.get("other_cpu_cores", 0) > args.other_threshold]
    if noisy:
        worst = max(r["other_cpu_cores"] for r in noisy)
        out.append(
            f"> **Warning:** even after retries, {len(noisy)} of {len(recs)} runs saw other CPU load of more than "
            f"{args.other_threshold:.2f} cores (worst {worst:.2f}) from processes that are neither the server "
            "nor wrk. The machine was not quiet. Cells marked † leave those runs out; "
            "other cells are noisy.\n"
        )
    retried = [r for r in recs if r.get("attempt", 1) > 1]
    if retried:
        out.append(
            f"{len(retried)} run(s) were repeated because other processes used more than "
            f"{args.other_threshold:.2f} cores during the first attempt.\n"
        )
    if meta.get("preflight_busy"):
        out.append(f"Host CPU busy before start: {meta['preflight_busy']} cores.\n")
    out.append("| Scenario | Server | req/s | CPU µs/req | user µs/req | p99 ms | GB/s |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    scenarios = [s for s in ("playlist", "segment", "handshake") if any(r["scenario"] == s for r in recs)]
    for sc in scenarios:
        for sv in servers:
            rs = group(sc, sv, 0)
            if not rs:
                continue
            c = rs[0]["connections"]
            out.append(
                f"| {scen_desc.get(sc, sc)}, c{c} | {label[sv]}{mark(sc, sv, 0)} | {_fmt(med(rs, 'rps'), 0)} | "
                f"{_fmt(med(rs, 'cpu_us_per_req'), 2)} | {_fmt(med(rs, 'user_us_per_req'), 2)} | "
                f"{_fmt(med(rs, 'p99_ms'), 3)} | {_fmt(med(rs, 'gbps'), 3)} |"
            )
    out.append("")
    out.append("### Marquee / nginx ratios\n")
    out.append("Higher is better for req/s and GB/s; lower is better for CPU/req and p99.\n")
    out.append("| Scenario | req/s | CPU/req | user CPU/req | p99 | GB/s |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for sc in scenarios:
        a, b = group(sc, "marquee", 0), group(sc, "nginx", 0)
        if not a or not b:
            continue
        out.append(
            f"| {scen_desc.get(sc, sc)} | {_ratio(med(a, 'rps'), med(b, 'rps'))} | "
            f"{_ratio(med(a, 'cpu_us_per_req'), med(b, 'cpu_us_per_req'))} | "
            f"{_ratio(med(a, 'user_us_per_req'), med(b, 'user_us_per_req'))} | "
            f"{_ratio(med(a, 'p99_ms'), med(b, 'p99_ms'))} | {_ratio(med(a, 'gbps'), med(b, 'gbps'))} |"
        )
    out.append("")

    idle_recs = [r for r in recs if r["idle"]]
    if idle_recs:
        n_idle = idle_recs[0]["idle"]
        out.append(f"### Playlist with {n_idle:,} idle keep-alive connections held open\n")
        out.append(
            "Each idle connection completed one playlist GET and then stayed silent for the whole run. "
            "Target: throughput falls by ≤ 10% versus the run without idle connections.\n"
        )
        out.append(
            "| Server | req/s (no idle) | req/s (idle) | change | CPU µs/req (idle) | p99 ms (idle) "
            "| idle conns still open after | ≤ 10% drop |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---|")
        for sv in servers:
            base, idle = group("playlist", sv, 0), group("playlist", sv, n_idle)
            if not idle:
                continue
            b, i = med(base, "rps"), med(idle, "rps")
            drop = (1 - i / b) * 100 if b else float("nan")
            alive = min((r.get("idle_alive", -1) for r in idle), default=-1)
            out.append(
                f"| {label[sv]} | {_fmt(b, 0)}{mark('playlist', sv, 0)} | {_fmt(i, 0)}{mark('playlist', sv, n_idle)} | "
                f"{_fmt(-drop, 1)}% | "
                f"{_fmt(med(idle, 'cpu_us_per_req'), 2)} | {_fmt(med(idle, 'p99_ms'), 3)} | "
                f"{alive if alive >= 0 else 'n/a'} / {n_idle} | {'yes' if drop <= 10 else 'NO'} |"
            )
        out.append("")

    if dropped:
        out.append(
            f"† Median of the clean runs only: runs with more than {args.other_threshold:.2f} cores of other "
            "load were left out of this cell (they are still listed under All rounds).\n"
        )
    out.append("<details><summary>All rounds</summary>\n")
    out.append("| Scenario | Idle | Server | Round | Order | Requests | Duration s | req/s | "
               "CPU ticks (user+sys) | CPU µs/req | user µs/req | p99 ms | Response B | GB/s | "
               "cores: server | cores: wrk | cores: other |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in recs:
        out.append(
            f"| {r['scenario']} | {r['idle']} | {label[r['server']]} | {r['round']} | {r['order']} | "
            f"{r['requests']} | {r['duration_s']:.2f} | {r['rps']:.0f} | "
            f"{r['utime_ticks']}+{r['stime_ticks']} | {r['cpu_us_per_req']:.2f} | {r['user_us_per_req']:.2f} | "
            f"{r['p99_ms']:.3f} | {r['response_bytes']} | {r['gbps']:.3f} | {r['server_cpu_cores']:.2f} | "
            f"{r['client_cpu_cores']:.2f} | {r['other_cpu_cores']:.2f} |"
        )
    out.append("\n</details>\n")
    out.append(
        "CPU/req = Δ(utime+stime) of every server process (nginx master + workers; the Marquee "
        "process, all threads) from /proc/<pid>/stat around each wrk run × 1e6/CLK_TCK ÷ requests. "
        "GB/s = requests × response bytes (head + body, measured once per run) ÷ wrk's run time, "
        "GB = 1e9 bytes. Client (wrk) and servers share the same cores; \"cores: other\" is host CPU "
        "time (/proc/stat) used by neither during the run.\n"
    )
    text = "\n".join(out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


def cmd_annotate_idle(args: argparse.Namespace) -> None:
    """Attach the hold-idle ALIVE count to the last matching measurement."""
    path = Path(args.results)
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in reversed(recs):
        if r["server"] == args.server and r["idle"] and r["round"] == args.round:
            r["idle_alive"] = args.alive
            break
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


# --------------------------------------------------------------------------
# edge-report and coalesce (Benchmarks/compare-edge.sh)


def cmd_edge_report(args: argparse.Namespace) -> None:
    """Cache hits of the Marquee edge beside Marquee's origin, nginx proxy_cache and Varnish."""
    recs = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    meta = json.loads(args.meta) if args.meta else {}
    extra = json.loads(Path(args.extra).read_text()) if args.extra and Path(args.extra).exists() else {}
    label = {"edge": "Marquee edge", "origin": "Marquee origin (from disk)", "nginx": "nginx proxy_cache", "varnish": "Varnish"}
    scen_desc = {"playlist": "playlist (1.5 KB)", "segment": "segment (2 MB)"}

    def rows(sc, sv):
        rs = [r for r in recs if r["scenario"] == sc and r["server"] == sv]
        good = [r for r in rs if r.get("other_cpu_cores", 0) <= args.other_threshold]
        return good or rs

    def med(rs, key):
        return _median([r[key] for r in rs])

    out = ["## Edge cache hits: Marquee edge vs Marquee origin, nginx proxy_cache and Varnish\n"]
    if meta:
        out.append(
            f"{meta.get('date', '')} · {meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')}) · kernel {platform.release()} · "
            f"{meta.get('nginx_version', '')} · {meta.get('varnish_version', '')} · Marquee {meta.get('marquee_rev', '?')}\n"
        )
        out.append(
            f"{meta.get('rounds')} interleaved rounds per scenario (the order rotates each round), medians; "
            f"{meta.get('threads')} loops / workers / thread pools; wrk -t{meta.get('wrk_threads')}, playlist -c{meta.get('playlist_conns')}, "
            f"segment -c{meta.get('segment_conns')}, {meta.get('duration')} s per run. Every cache was warmed first, so every "
            "measured request is a hit; nginx and Varnish are told to keep the objects an hour whatever the origin's "
            "Cache-Control says, as the Marquee edge does.\n"
        )
    scenarios = [sc for sc in ("playlist", "segment") if any(r["scenario"] == sc for r in recs)]
    servers = [sv for sv in ("edge", "origin", "nginx", "varnish") if any(r["server"] == sv for r in recs)]
    out.append("| Scenario | Server | req/s | CPU µs/req | p99 ms | GB/s |")
    out.append("|---|---|---:|---:|---:|---:|")
    for sc in scenarios:
        for sv in servers:
            rs = rows(sc, sv)
            if rs:
                out.append(
                    f"| {scen_desc[sc]} | {label[sv]} | {_fmt(med(rs, 'rps'), 0)} | {_fmt(med(rs, 'cpu_us_per_req'), 2)} | "
                    f"{_fmt(med(rs, 'p99_ms'), 3)} | {_fmt(med(rs, 'gbps'), 3)} |"
                )
    out.append("")
    out.append("### The edge against each (edge ÷ other)\n")
    out.append("Higher is better for req/s and GB/s, lower for CPU per request.\n")
    out.append("| Scenario | against | req/s | CPU/req | GB/s |")
    out.append("|---|---|---:|---:|---:|")
    for sc in scenarios:
        e = rows(sc, "edge")
        for sv in servers:
            if sv == "edge" or not e or not rows(sc, sv):
                continue
            o = rows(sc, sv)
            out.append(
                f"| {scen_desc[sc]} | {label[sv]} | {_ratio(med(e, 'rps'), med(o, 'rps'))} | "
                f"{_ratio(med(e, 'cpu_us_per_req'), med(o, 'cpu_us_per_req'))} | {_ratio(med(e, 'gbps'), med(o, 'gbps'))} |"
            )
    out.append("")
    if extra:
        out.append("### Misses\n")
        c = extra.get("coalesce")
        if c:
            out.append(
                f"- **Coalescing:** {c['clients']} concurrent requests for one uncached {c['bytes']:,}-byte object made "
                f"**{c['upstream_fetches']}** upstream fetch(es); {c['complete']} of {c['clients']} clients got every byte "
                f"(slowest {c['slowest_ms']:.0f} ms)."
            )
        m = extra.get("miss_cpu")
        if m:
            parts = [f"{name} {m[name]:,.0f} µs" for name in ("edge", "nginx", "varnish") if m.get(name) is not None]
            ratios = [f"{m['edge'] / m[name]:.2f}× {name}'s" for name in ("nginx", "varnish") if m.get(name)]
            out.append(
                f"- **CPU per miss** ({m['count']} uncached {m['bytes']:,}-byte objects one after another, fetched upstream and "
                f"served, each server's process tree): {', '.join(parts)}" + (f": the edge at {' and '.join(ratios)}." if ratios else ".")
            )
        t = extra.get("ttfb")
        if t:
            keepalive = t.get("origin_keepalive_ms")
            out.append(
                f"- **Time to first byte on a miss** (median of {t['samples']} uncached {t['bytes']:,}-byte objects): "
                f"edge {t['edge_ms']:.2f} ms; the origin directly {t['origin_ms']:.2f} ms on a fresh connection"
                + (f" and {keepalive:.2f} ms on a keep-alive connection that just carried a 2 MB response (as the edge's pooled one has)" if keepalive is not None else "")
                + f": the edge adds {t['edge_ms'] - t['origin_ms']:.2f} ms to the first"
                + (f", {t['edge_ms'] - keepalive:.2f} ms to the second" if keepalive is not None else "")
                + ". The edge streams the fill: its first byte leaves once the upstream's head is in, whatever the object's size."
            )
        out.append("")
    out.append("<details><summary>All rounds</summary>\n")
    out.append("| Scenario | Server | Round | Order | req/s | CPU µs/req | p99 ms | GB/s | cores: server | cores: wrk | cores: other |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in recs:
        out.append(
            f"| {r['scenario']} | {r['server']} | {r['round']} | {r['order']} | {r['rps']:.0f} | {r['cpu_us_per_req']:.2f} | "
            f"{r['p99_ms']:.3f} | {r['gbps']:.3f} | {r['server_cpu_cores']:.2f} | {r['client_cpu_cores']:.2f} | {r['other_cpu_cores']:.2f} |"
        )
    out.append("\n</details>\n")
    out.append(
        "CPU/req = Δ(utime+stime) of the server's process tree (Varnish's manager and child, nginx's master and workers) "
        "around each wrk run ÷ requests. The origin behind the caches is idle during hit runs.\n"
    )
    text = "\n".join(out)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


def cmd_coalesce(args: argparse.Namespace) -> None:
    """N clients ask for one object at once, each on its own connection; reports how many got
    it whole and how long the slowest took (the caller counts the upstream fetches)."""
    import selectors

    request = f"GET {args.path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nConnection: close\r\n\r\n".encode()
    socks = []
    for _ in range(args.clients):
        s = socket.create_connection((LOOPBACK, args.port), timeout=30)
        s.setblocking(False)
        socks.append(s)
    sel = selectors.DefaultSelector()
    received = {}
    t0 = time.monotonic()
    for s in socks:
        s.send(request)  # a short request: one send fits in an empty socket buffer
        sel.register(s, selectors.EVENT_READ)
        received[s] = bytearray()
    done_at = {}
    deadline = t0 + args.timeout
    while len(done_at) < len(socks) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                chunk = s.recv(1 << 20)
            except BlockingIOError:
                continue
            if chunk:
                received[s] += chunk
            else:
                sel.unregister(s)
                done_at[s] = time.monotonic()
    expected = Path(args.file).read_bytes()
    complete = 0
    for s in socks:
        data = bytes(received[s])
        head, _, body = data.partition(b"\r\n\r\n")
        if head.startswith(b"HTTP/1.1 200") and body == expected:
            complete += 1
        s.close()
    slowest = (max(done_at.values()) - t0) * 1000 if done_at else float("nan")
    print(json.dumps({"clients": args.clients, "complete": complete, "bytes": len(expected), "slowest_ms": slowest}))


def cmd_miss_cpu(args: argparse.Namespace) -> None:
    """CPU of a cache's process tree per miss: GET each of `count` uncached objects once, one after
    another on fresh connections (each verified whole), around a Δ(utime+stime). Prints µs."""
    hz = os.sysconf("SC_CLK_TCK")
    expected = Path(args.file).read_bytes()
    u0, s0, _ = cpu_ticks(args.pid)
    for i in range(args.count):
        status, _, body = fetch_once(args.port, args.path.replace("{n}", str(i)), timeout=30)
        if status != 200 or body != expected:
            die(f"port {args.port}: miss {i} answered {status} with {len(body)} bytes")
    u1, s1, _ = cpu_ticks(args.pid)
    print(f"{((u1 - u0) + (s1 - s0)) / hz * 1e6 / args.count:.0f}")


def cmd_ttfb(args: argparse.Namespace) -> None:
    """Time to the first response byte of one GET, in ms: on a fresh connection, or with --after
    on a keep-alive connection that has just carried a GET of that path (as an edge's pooled
    upstream connection has), after a short idle pause."""
    s = socket.create_connection((LOOPBACK, args.port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if args.after:
        s.sendall(f"GET {args.after} HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode())
        read_response(s, time.monotonic() + 30, f"port {args.port}: {args.after}")
        time.sleep(0.2)
    t0 = time.perf_counter()
    s.sendall(f"GET {args.path} HTTP/1.1\r\nHost: {LOOPBACK}\r\nConnection: close\r\n\r\n".encode())
    first = s.recv(1)
    t1 = time.perf_counter()
    while s.recv(1 << 20):
        pass
    s.close()
    if not first:
        die(f"port {args.port}: no answer for {args.path}")
    print(f"{(t1 - t0) * 1000:.3f}")


# --------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("free-ports")
    s.add_argument("count", type=int)
    s.set_defaults(fn=cmd_free_ports)

    s = sub.add_parser("secure-link")
    s.add_argument("--path", required=True)
    s.add_argument("--secret", required=True)
    s.add_argument("--expires", type=int, required=True)
    s.set_defaults(fn=cmd_secure_link)

    s = sub.add_parser("make-media")
    s.add_argument("root")
    s.set_defaults(fn=cmd_make_media)

    s = sub.add_parser("nginx-conf")
    s.add_argument("--dir", required=True)
    s.add_argument("--root", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--workers", required=True)
    s.add_argument("--worker-connections", type=int, required=True)
    s.add_argument("--rlimit-nofile", type=int, required=True)
    s.add_argument("--secure-link-secret", default="")
    s.add_argument("--tls-cert", default="", help="serve HTTPS with this PEM chain (and --tls-key)")
    s.add_argument("--tls-key", default="")
    s.set_defaults(fn=cmd_nginx_conf)

    s = sub.add_parser("measure")
    s.add_argument("--wrk", default="wrk")
    s.add_argument("--scenario", required=True)
    s.add_argument("--server", required=True, help="a name for the report: nginx, marquee, or (compare-edge.sh) origin, edge, varnish")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True)
    s.add_argument("--file", required=True, help="file the path maps to (response is verified)")
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--order", type=int, default=0)
    s.add_argument("--idle", type=int, default=0)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--connections", type=int, required=True)
    s.add_argument("--duration", type=int, required=True)
    s.add_argument("--timeout", type=int, default=5)
    s.add_argument("--out", required=True)
    s.add_argument("--raw")
    s.add_argument("--wrk-cpus", help="taskset CPU list for wrk")
    s.add_argument("--max-other", type=float, default=0.15,
                   help="re-run when other processes used more cores than this during the run")
    s.add_argument("--retries", type=int, default=2)
    s.add_argument("--reject-noisy", action="store_true",
                   help="exit 3 without recording when the (last) run was noisy")
    s.add_argument("--attempt", type=int, default=0, help="attempt number to record (caller retries)")
    s.add_argument("--tls", action="store_true", help="the server speaks HTTPS")
    s.add_argument("--close", action="store_true", help="one request per connection (Connection: close)")
    s.set_defaults(fn=cmd_measure)

    s = sub.add_parser("wait-quiet")
    s.add_argument("--max-busy", type=float, default=0.15)
    s.add_argument("--deadline", type=float, default=30)
    s.set_defaults(fn=lambda a: wait_quiet(a.max_busy, a.deadline))

    s = sub.add_parser("host-busy")
    s.add_argument("seconds", type=float)
    s.set_defaults(fn=cmd_host_busy)

    s = sub.add_parser("hold-idle")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--status", required=True)
    s.add_argument("--concurrency", type=int, default=256)
    s.add_argument("--timeout", type=float, default=120)
    s.add_argument("--max-hold", type=float, default=3600)
    s.set_defaults(fn=cmd_hold_idle)

    s = sub.add_parser("annotate-idle")
    s.add_argument("--results", required=True)
    s.add_argument("--server", required=True)
    s.add_argument("--round", type=int, required=True)
    s.add_argument("--alive", type=int, required=True)
    s.set_defaults(fn=cmd_annotate_idle)

    s = sub.add_parser("report")
    s.add_argument("--results", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--meta")
    s.add_argument("--other-threshold", type=float, default=0.15)
    s.set_defaults(fn=cmd_report)

    s = sub.add_parser("edge-report")
    s.add_argument("--results", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--meta")
    s.add_argument("--extra", help="JSON with the coalescing and time-to-first-byte figures")
    s.add_argument("--other-threshold", type=float, default=0.15)
    s.set_defaults(fn=cmd_edge_report)

    s = sub.add_parser("coalesce")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True)
    s.add_argument("--file", required=True)
    s.add_argument("--clients", type=int, default=1000)
    s.add_argument("--timeout", type=float, default=60)
    s.set_defaults(fn=cmd_coalesce)

    s = sub.add_parser("miss-cpu")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True, help="with {n} for the object's number")
    s.add_argument("--file", required=True, help="what every object holds")
    s.add_argument("--count", type=int, default=40)
    s.set_defaults(fn=cmd_miss_cpu)

    s = sub.add_parser("ttfb")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--path", required=True)
    s.add_argument("--after", help="first GET this path on the same connection (keep-alive)")
    s.set_defaults(fn=cmd_ttfb)

    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()

"""A client that takes media as fast as the gateway gives it, to test billing's cut-off against
the worst case rather than a polite player. It reads a session's HLS master playlist and every
media playlist it names, then:

1. fetches, in media-time order, every segment that starts before LEAD seconds;
2. waits IDLE seconds, so any per-session pacing forgives it a full burst again;
3. fetches everything else with WORKERS parallel connections, as fast as it is answered.

It keeps its own truth: a segment counts only when its whole body arrived with status 200.

usage: greedy_client.py MASTER_URL LEAD IDLE WORKERS
Prints one JSON object: covered_seconds (the union of media time received), segments_received,
statuses (count per status), seconds (wall time of step 3)."""
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urljoin


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            body = response.read()
            length = response.headers.get("Content-Length")
            complete = length is None or int(length) == len(body)
            return response.status, body, complete
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, b"", False


def media_playlists(master_url):
    status, body, _ = get(master_url)
    if status != 200:
        raise SystemExit(f"the master playlist answered {status}")
    uris = []
    for line in body.decode().splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-MEDIA") and 'URI="' in line:
            uris.append(re.search(r'URI="([^"]+)"', line).group(1))
        elif line and not line.startswith("#"):
            uris.append(line)
    return [urljoin(master_url, uri) for uri in dict.fromkeys(uris)]


def segments(playlist_url):
    """(start, end, url) of every media segment, from the playlist's own EXTINF durations."""
    status, body, _ = get(playlist_url)
    if status != 200:
        raise SystemExit(f"a media playlist answered {status}")
    found, start, duration = [], 0.0, None
    for line in body.decode().splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:"):].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            found.append((start, start + duration, urljoin(playlist_url, line)))
            start += duration
            duration = None
    return found


def union_seconds(intervals):
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def main(master_url, lead, idle, workers):
    everything = sorted(s for playlist in media_playlists(master_url) for s in segments(playlist))
    received, statuses, lock = [], {}, threading.Lock()

    def fetch(segment):
        status, _, complete = get(segment[2])
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200 and complete:
                received.append((segment[0], segment[1]))

    def run(batch, parallel):
        queue = list(reversed(batch))

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    segment = queue.pop()
                fetch(segment)

        threads = [threading.Thread(target=worker) for _ in range(parallel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run([s for s in everything if s[0] < lead], 1)
    time.sleep(idle)
    started = time.monotonic()
    run([s for s in everything if s[0] >= lead], workers)
    print(json.dumps({
        "covered_seconds": round(union_seconds(received), 3),
        "segments_received": len(received),
        "segments": len(everything),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(time.monotonic() - started, 3),
    }))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))

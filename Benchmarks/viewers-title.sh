# Sourced by the viewer benchmarks (loadtest-viewers.sh, loadtest-capacity.sh,
# loadtest-compare-nginx.sh): the release binary, a 10-minute title, and an origin serving it.
# Expects HERE (the Benchmarks folder) and REPO; sets MARQUEE_BIN, TMP, ORIGIN, PORT, ADMIN.

# All of it: the binary, 20,000 open files, a scratch folder TMP (removed on exit, with the
# origin and any process whose pid the caller puts in NGINX killed), the title in TMP/media, and
# an origin with THREADS loops serving it.
viewers_setup() {
  viewers_binary
  ulimit -n 20000
  TMP="$(mktemp -d "${TMPDIR:-/tmp}/marquee-viewers.XXXXXX")"
  ORIGIN=""; NGINX=""
  trap '[[ -n "$ORIGIN" ]] && kill "$ORIGIN" 2>/dev/null; [[ -n "$NGINX" ]] && kill "$NGINX" 2>/dev/null; rm -rf "$TMP"' EXIT
  viewers_title "$TMP/media"
  viewers_origin "$TMP/media" "$1" "$TMP/origin.log"
}

# MARQUEE_BIN, or the release build of this checkout.
viewers_binary() {
  if [[ -z "${MARQUEE_BIN:-}" ]]; then
    (cd "$REPO" && swift build -c release --product marquee >&2)
    MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
  fi
}

# A 10-minute HLS title in DIR/title: 2 renditions (300 and 100 kbit/s video, each with AAC),
# 2 s fMP4 segments, encoded by ffmpeg (installed when missing).
viewers_title() {
  command -v ffmpeg >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; }
  mkdir -p "$1/title"
  echo "==> encoding a 10-minute title" >&2
  (cd "$1/title" && ffmpeg -v error -y -f lavfi -i testsrc2=size=160x90:rate=10 -f lavfi -i sine=frequency=440 -t 600 \
    -filter_complex "[0:v]split=2[a][b];[b]scale=96x54[b2]" -map "[a]" -map "[b2]" -map 1:a -map 1:a \
    -c:v libx264 -preset ultrafast -g 20 -b:v:0 300k -b:v:1 100k -c:a aac -b:a 32k \
    -f hls -hls_time 2 -hls_segment_type fmp4 -hls_playlist_type vod -master_pl_name master.m3u8 \
    -var_stream_map "v:0,a:0 v:1,a:1" -hls_segment_filename "v%v/seg_%03d.m4s" "v%v/index.m3u8")
}

# `marquee origin` on ROOT with THREADS loops, no token, no per-address connection cap (the load
# comes from one address), its connection limit raised to what 20,000 open files allow (the
# default is 16,384), in the background; waits until it is ready. Logs to LOG.
viewers_origin() {
  read -r PORT ADMIN <<<"$(python3 "$HERE/loadbench.py" free-ports 2)"
  MARQUEE_RATE_LIMITS_MAX_CONNECTIONS_PER_ADDRESS=0 MARQUEE_HTTP_MAX_CONNECTIONS=19900 "$MARQUEE_BIN" origin --root "$1" --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN" \
    --threads "$2" --no-require-token --no-delivery-records >"$3" 2>&1 &
  ORIGIN=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN/readyz" 2>/dev/null && return 0; sleep 0.1; done
  echo "the origin did not start: $(cat "$3")" >&2
  return 1
}

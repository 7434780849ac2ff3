#!/usr/bin/env bash
# A multi-region Marquee network on one machine, in network namespaces (root needed):
#
#   origin region ── 20 ms ── edge eu ── player eu
#                 ── 80 ms ── edge us ── player us
#                 ── 150 ms ─ edge ap ── player ap
#
# - Every link is a veth pair between two namespaces this script creates (no address outside them),
#   shaped with tc's tbf (ORIGIN_RATE between regions, PLAYER_RATE to players). This kernel has no
#   netem, so the inter-region delay comes from deploy/local/delay_relay.py, a userspace relay on
#   each edge's path to the origin (half the round trip each way).
# - The origin serves a packaged test title, only to the edges (`--shield-only`, signed fetches);
#   Redis in the origin region carries purges to every edge.
# - Then, and it exits non-zero if any fails:
#   1. cold: the player of each region plays the title through its own edge (ffmpeg); each
#      object is fetched from the origin once per edge;
#   2. warm: they play again and the origin sees no new fetch;
#   3. outage: the origin is stopped for OUTAGE seconds while the players keep playing the cached
#      title (paced at four times real time): zero failed segment requests;
#   4. purge: a purge on one edge reaches all three, and the next plays fetch from the origin again.
# Everything is torn down at exit, also on failure or Ctrl-C.
#
#   sudo deploy/local/multi-region.sh
#
# Environment: MARQUEE_BIN (default: .build/debug/marquee, built if missing), OUTAGE=60,
# ORIGIN_RATE=200mbit, PLAYER_RATE=50mbit, SECONDS_OF_MEDIA=20, KEEP=1 keeps the work folder.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUTAGE="${OUTAGE:-60}"
ORIGIN_RATE="${ORIGIN_RATE:-200mbit}"
PLAYER_RATE="${PLAYER_RATE:-50mbit}"
SECONDS_OF_MEDIA="${SECONDS_OF_MEDIA:-20}"
KEEP="${KEEP:-0}"
REGIONS=(eu us ap)
RTT_MS=(20 80 150)

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'multi-region: FAILED: %s\n' "$*" >&2; exit 1; }

(( EUID == 0 )) || fail "run as root: network namespaces and tc need it"
for tool in ip tc curl ffmpeg python3 redis-server; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps test installs it)"
done
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  MARQUEE_BIN="$REPO/.build/debug/marquee"
  [[ -x "$MARQUEE_BIN" ]] || (cd "$REPO" && swift build --product marquee >&2)
fi
[[ -x "$MARQUEE_BIN" ]] || fail "MARQUEE_BIN=$MARQUEE_BIN is not executable"

# Names unique to this run (interface names stay within 15 characters).
ID=$(( $$ % 100000 ))
NS_ORIGIN="mq$ID-origin"
ns_edge() { echo "mq$ID-edge-$1"; }
ns_player() { echo "mq$ID-player-$1"; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/marquee-multi-region.XXXXXX")"
chmod 755 "$WORK"

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

cleanup() {
  local rc=$? ns pid
  trap - EXIT INT TERM
  for ns in "$NS_ORIGIN" $(for r in "${REGIONS[@]}"; do ns_edge "$r"; ns_player "$r"; done); do
    if ip netns list | grep -qw "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
    fi
  done
  sleep 0.5
  for ns in "$NS_ORIGIN" $(for r in "${REGIONS[@]}"; do ns_edge "$r"; ns_player "$r"; done); do
    if ip netns list | grep -qw "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  if (( KEEP )) || (( rc != 0 )); then log "work folder kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# The network.
log "namespaces and links (origin $ORIGIN_RATE, players $PLAYER_RATE)"
for ns in "$NS_ORIGIN" $(for r in "${REGIONS[@]}"; do ns_edge "$r"; ns_player "$r"; done); do
  ip netns add "$ns"
  in_ns "$ns" ip link set lo up
done
link() {  # nsA addrA nsB addrB rate name
  local a=$1 aa=$2 b=$3 ba=$4 rate=$5 name=$6
  ip link add "${name}a" netns "$a" type veth peer name "${name}b" netns "$b"
  in_ns "$a" ip addr add "$aa/30" dev "${name}a"
  in_ns "$b" ip addr add "$ba/30" dev "${name}b"
  in_ns "$a" ip link set "${name}a" up
  in_ns "$b" ip link set "${name}b" up
  in_ns "$a" tc qdisc add dev "${name}a" root tbf rate "$rate" burst 256kbit latency 100ms
  in_ns "$b" tc qdisc add dev "${name}b" root tbf rate "$rate" burst 256kbit latency 100ms
}
for i in 0 1 2; do
  r=${REGIONS[$i]}
  link "$NS_ORIGIN" "10.231.$i.1" "$(ns_edge "$r")" "10.231.$i.2" "$ORIGIN_RATE" "mq${ID}o$i"
  link "$(ns_edge "$r")" "10.232.$i.1" "$(ns_player "$r")" "10.232.$i.2" "$PLAYER_RATE" "mq${ID}p$i"
done

# ---------------------------------------------------------------------------
# Media, keys.
log "packaging a ${SECONDS_OF_MEDIA}-second test title"
"$MARQUEE_BIN" test-clip "$WORK/source.mp4" --seconds "$SECONDS_OF_MEDIA" --size 320x180 --fps 25 >"$WORK/clip.log" 2>&1 \
  || fail "marquee test-clip failed: $(tail -3 "$WORK/clip.log")"
"$MARQUEE_BIN" package "$WORK/source.mp4" --out "$WORK/media/titles/demo/v1" --ladder 180 --segment 2 --preset ultrafast \
  >"$WORK/package.log" 2>&1 || fail "marquee package failed: $(tail -3 "$WORK/package.log")"
OBJECTS=$(find "$WORK/media/titles/demo/v1" -type f | wc -l)
secret() { head -c 48 /dev/urandom | base64 | tr -d '\n/+='; }
secret >"$WORK/k1.key"; secret >"$WORK/edge.key"; secret >"$WORK/admin.token"
chmod -R a+rX "$WORK"

# ---------------------------------------------------------------------------
# The origin region: Redis and the origin.
log "origin region: redis and marquee origin --shield-only"
ip netns exec "$NS_ORIGIN" redis-server --bind 10.231.0.1 10.231.1.1 10.231.2.1 127.0.0.1 --port 6379 --save "" --appendonly no \
  --protected-mode no --loglevel warning >"$WORK/redis.log" 2>&1 &
# A package version never changes, so its playlists may be cached as long as its segments; with the
# default (max-age=2, for playlists that change) the edges would revalidate them every 2 s.
start_origin() {  # `ip netns exec` directly, not through a function: $! must be the origin itself
  ip netns exec "$NS_ORIGIN" env MARQUEE_BUS_LOG_DIR="$WORK/deliveries-origin" MARQUEE_GATEWAY_ID=origin MARQUEE_GATEWAY_REGION=origin \
    MARQUEE_CACHE_CONTROL_MANIFEST="public, max-age=600" \
    "$MARQUEE_BIN" origin --root "$WORK/media" --listen 0.0.0.0:8080 --admin 127.0.0.1:9090 --threads 1 \
    --token-key "k1:$WORK/k1.key" --edge-key-file "$WORK/edge.key" --shield-only >>"$WORK/origin.log" 2>&1 &
  ORIGIN_PID=$!
}
start_origin
wait_for() {  # description ns url
  local i
  for (( i = 0; i < 200; i++ )); do
    in_ns "$2" curl -fsS -o /dev/null --max-time 1 "$3" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "$1 did not come up ($3)"
}
wait_for origin "$NS_ORIGIN" http://127.0.0.1:9090/readyz

# ---------------------------------------------------------------------------
# The edge regions: a delay relay to the origin, and the edge.
for i in 0 1 2; do
  r=${REGIONS[$i]}; ns=$(ns_edge "$r"); one_way=$(( RTT_MS[i] / 2 ))
  log "edge region $r: ${RTT_MS[$i]} ms from the origin"
  ip netns exec "$ns" python3 "$HERE/delay_relay.py" 127.0.0.1:8081 "10.231.$i.1:8080" "$one_way" >"$WORK/relay-$r.log" 2>&1 &
  ip netns exec "$ns" env MARQUEE_BUS_LOG_DIR="$WORK/deliveries-$r" MARQUEE_GATEWAY_ID="edge-$r" MARQUEE_GATEWAY_REGION="$r" \
    MARQUEE_REDIS_URL="redis://10.231.$i.1:6379/0" \
    "$MARQUEE_BIN" edge --upstream http://127.0.0.1:8081 --cache-dir "$WORK/cache-$r" --listen 0.0.0.0:8080 \
    --admin 127.0.0.1:9090 --threads 1 --token-key "k1:$WORK/k1.key" --upstream-key-file "$WORK/edge.key" \
    --admin-token-file "$WORK/admin.token" >"$WORK/edge-$r.log" 2>&1 &
done
for r in "${REGIONS[@]}"; do wait_for "edge $r" "$(ns_edge "$r")" http://127.0.0.1:9090/readyz; done

metric() {  # ns name: the sum of a metric's samples on that namespace's admin listener
  in_ns "$1" curl -fsS --max-time 2 http://127.0.0.1:9090/metrics 2>/dev/null \
    | awk -v name="$2" '$1 == name || index($1, name "{") == 1 { sum += $2 } END { printf "%d\n", sum }'
}
errors_5xx() {  # ns
  in_ns "$1" curl -fsS --max-time 2 http://127.0.0.1:9090/metrics 2>/dev/null \
    | awk '$1 ~ /^marquee_http_responses_total\{code="5/ { sum += $2 } END { printf "%d\n", sum }'
}
origin_fetches() { metric "$NS_ORIGIN" marquee_edge_fetches_total; }

url_for() {  # region index
  "$MARQUEE_BIN" sign --key-id k1 --secret-file "$WORK/k1.key" --scope /titles/demo/ --ttl 3600 --mode path \
    --base "http://10.232.$1.1:8080" /titles/demo/v1/master.m3u8
}
# Plays the title in a region's player namespace; prints the milliseconds it took. A second
# argument paces the player (ffmpeg's -readrate: 2 is twice real time) as a viewer would be.
play() {  # region index [readrate]
  local r=${REGIONS[$1]} start end pace=()
  [[ -n "${2:-}" ]] && pace=(-readrate "$2")
  start=$(date +%s%N)
  in_ns "$(ns_player "$r")" ffmpeg -v error -nostdin "${pace[@]}" -i "$(url_for "$1")" -map 0 -c copy -f null - >>"$WORK/player-$r.log" 2>&1 || return 1
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
}

declare -A COLD WARM
# ---------------------------------------------------------------------------
log "1. cold: each region plays through its own edge"
for i in 0 1 2; do COLD[$i]=$(play "$i") || fail "the ${REGIONS[$i]} player could not play (cold): $(tail -3 "$WORK/player-${REGIONS[$i]}.log")"; done
after_cold=$(origin_fetches)
(( after_cold <= 3 * OBJECTS )) || fail "the origin served $after_cold fetches for $OBJECTS objects in 3 regions"
(( after_cold > 0 )) || fail "the origin saw no edge fetch"

log "2. warm: again; the origin sees nothing"
for i in 0 1 2; do WARM[$i]=$(play "$i") || fail "the ${REGIONS[$i]} player could not play (warm)"; done
after_warm=$(origin_fetches)
(( after_warm == after_cold )) || fail "warm plays reached the origin ($after_cold -> $after_warm fetches)"

log "3. outage: the origin stopped for $OUTAGE s; players keep playing"
declare -A BEFORE_5XX
for r in "${REGIONS[@]}"; do BEFORE_5XX[$r]=$(errors_5xx "$(ns_edge "$r")"); done
kill -TERM "$ORIGIN_PID"; wait "$ORIGIN_PID" 2>/dev/null || true
in_ns "$NS_ORIGIN" curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:9090/readyz 2>/dev/null && fail "the origin is still up"
outage_plays=0; outage_failures=0
deadline=$(( SECONDS + OUTAGE ))
while (( SECONDS < deadline )); do
  pids=()
  for i in 0 1 2; do play "$i" 4 >/dev/null & pids+=($!); done
  for pid in "${pids[@]}"; do
    if wait "$pid"; then outage_plays=$(( outage_plays + 1 )); else outage_failures=$(( outage_failures + 1 )); fi
  done
done
failed_segments=0
for r in "${REGIONS[@]}"; do failed_segments=$(( failed_segments + $(errors_5xx "$(ns_edge "$r")") - BEFORE_5XX[$r] )); done
start_origin
wait_for origin "$NS_ORIGIN" http://127.0.0.1:9090/readyz
(( outage_failures == 0 && failed_segments == 0 )) \
  || fail "during the outage $outage_failures of $(( outage_plays + outage_failures )) plays failed, $failed_segments segment requests got 5xx"

log "4. purge: one edge purges the title; every edge hears it and fetches again"
before_purge=$(origin_fetches)
answer=$(in_ns "$(ns_edge eu)" curl -fsS -X POST -H "Authorization: Bearer $(cat "$WORK/admin.token")" \
  "http://127.0.0.1:9090/purge?prefix=/titles/demo/")
[[ "$answer" == *'"published":true'* ]] || fail "the purge was not published: $answer"
for r in "${REGIONS[@]}"; do
  heard=0
  for (( k = 0; k < 100; k++ )); do
    (( $(metric "$(ns_edge "$r")" marquee_cache_purges_received_total) >= 1 )) && { heard=1; break; }
    sleep 0.1
  done
  (( heard )) || fail "the purge did not reach edge $r"
done
for i in 0 1 2; do play "$i" >/dev/null || fail "the ${REGIONS[$i]} player could not play after the purge"; done
after_purge=$(origin_fetches)
(( after_purge >= before_purge + 3 )) || fail "after the purge the origin saw $(( after_purge - before_purge )) fetches"

# ---------------------------------------------------------------------------
echo
echo "multi-region: PASSED"
echo "title: $OBJECTS objects, ${SECONDS_OF_MEDIA} s; links: origin $ORIGIN_RATE, players $PLAYER_RATE"
printf '| region | RTT to origin | cold play | warm play |\n|---|---:|---:|---:|\n'
for i in 0 1 2; do printf '| %s | %d ms | %d ms | %d ms |\n' "${REGIONS[$i]}" "${RTT_MS[$i]}" "${COLD[$i]}" "${WARM[$i]}"; done
echo "origin fetches: $after_cold cold (at most $OBJECTS per edge), +$(( after_warm - after_cold )) warm, +$(( after_purge - before_purge )) after the purge"
echo "outage: $OUTAGE s, $outage_plays plays, $outage_failures failed, $failed_segments failed segment requests"
echo "purge: heard by all 3 edges"

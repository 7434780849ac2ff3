#!/usr/bin/env bash
# Packaging benchmark: `marquee package` against the ffmpeg CLI making the same ladder with the
# same encoder settings in one command (decode once, split, scale, libx264 + AAC, DASH muxer with
# HLS playlists), on the same source, in interleaved rounds. Reports wall time (median), the
# ratio, and each rendition's PSNR against the source (scaled the same way) for both.
#
#   Benchmarks/compare-ffmpeg-package.sh
#
# Environment: MARQUEE_BIN (default: swift build -c release), ROUNDS=2, SECONDS_OF_SOURCE=20,
# PRESET=veryfast, OUT=Benchmarks/results/package.md. Run it alone (no build or other benchmark).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
ROUNDS="${ROUNDS:-2}"; LENGTH="${SECONDS_OF_SOURCE:-20}"; PRESET="${PRESET:-veryfast}"; OUT="${OUT:-$HERE/results/package.md}"
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$REPO/.build/release/marquee"
fi
TMP="$(mktemp -d /tmp/marquee-package-bench-XXXXXX)"
trap 'rm -rf "$TMP"' EXIT
SRC="$TMP/source.mp4"
# A 1080p30 source with fine moving detail (test pattern + temporal noise) and stereo audio.
ffmpeg -nostdin -v error -f lavfi -i "testsrc2=size=1920x1080:rate=30,noise=alls=12:allf=t" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$LENGTH" -ac 2 \
  -c:v libx264 -preset fast -crf 16 -pix_fmt yuv420p -c:a aac -b:a 192k "$SRC"

heights=(1080 720 480 360); widths=(1920 1280 854 640); rates=(6000 3000 1400 730)
ffmpeg_package() {  # the same ladder in one ffmpeg command
  local out=$1 filter="[0:v]split=4[s0][s1][s2][s3]" maps=() i
  for i in 0 1 2 3; do
    filter+=";[s$i]scale=${widths[$i]}:${heights[$i]}:flags=bicubic[v$i]"
    maps+=(-map "[v$i]" -c:v:$i libx264 -b:v:$i "${rates[$i]}k" -maxrate:v:$i "$(( rates[$i] * 11 / 10 ))k" -bufsize:v:$i "$(( rates[$i] * 2 ))k")
  done
  mkdir -p "$out"
  ffmpeg -nostdin -v error -i "$SRC" -filter_complex "$filter" "${maps[@]}" -map 0:a -c:a aac -b:a 128k -ac 2 -ar 48000 \
    -preset "$PRESET" -profile:v high -g 120 -keyint_min 120 -bf 3 -x264-params scenecut=0:open-gop=0 -force_key_frames "expr:gte(t,n_forced*4)" \
    -f dash -seg_duration 4 -use_template 1 -use_timeline 1 -hls_playlist 1 -adaptation_sets "id=0,streams=v id=1,streams=a" \
    "$out/manifest.mpd"
}
marquee_package() { "$MARQUEE_BIN" package "$SRC" --out "$1" --ladder 1080,720,480,360 --segment 4 --preset "$PRESET" >/dev/null 2>&1; }
now() { date +%s.%N; }

declare -a MT FT
for round in $(seq 1 "$ROUNDS"); do
  for who in marquee ffmpeg; do
    [[ $(( round % 2 )) == 0 ]] && who=$([[ $who == marquee ]] && echo ffmpeg || echo marquee)
    rm -rf "$TMP/$who"
    start=$(now)
    if [[ $who == marquee ]]; then marquee_package "$TMP/$who"; else ffmpeg_package "$TMP/$who"; fi
    elapsed=$(echo "$(now) - $start" | bc)
    if [[ $who == marquee ]]; then MT+=("$elapsed"); else FT+=("$elapsed"); fi
    echo "round $round $who: ${elapsed}s" >&2
  done
done

psnr() {  # psnr PACKAGE STREAM_INDEX WIDTH HEIGHT: average PSNR (all planes) of that rendition vs the source
  cat "$1/init-stream$2.m4s" $(ls "$1"/chunk-stream$2-*.m4s | sort) > "$TMP/rendition.mp4"
  ffmpeg -nostdin -v info -i "$TMP/rendition.mp4" -i "$SRC" \
    -lavfi "[1:v]scale=$3:$4:flags=bicubic,setsar=1[ref];[0:v]setsar=1[dist];[dist][ref]psnr" -f null - 2>&1 \
    | sed -n 's/.*PSNR.* average:\([0-9.inf]*\).*/\1/p' | tail -1
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2==1) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
m=$(median "${MT[@]}"); f=$(median "${FT[@]}")
{
  echo "# Packaging: marquee package vs the ffmpeg CLI (same ladder, same x264/AAC settings)"
  echo
  echo "Source: ${LENGTH} s of 1080p30 test pattern with temporal noise + stereo tone; ladder 1080/720/480/360"
  echo "at 6000/3000/1400/730 kb/s (maxrate 110%, bufsize 2 s), libx264 preset $PRESET, High profile, IDR every 4 s,"
  echo "AAC 128 kb/s stereo, 4 s CMAF segments, DASH + HLS. $ROUNDS interleaved rounds, median wall time; release build."
  echo
  echo "| | wall s (median) | rounds |"
  echo "|---|---:|---|"
  echo "| marquee package | $m | ${MT[*]} |"
  echo "| ffmpeg CLI | $f | ${FT[*]} |"
  echo "| ratio | $(echo "scale=3; $m / $f" | bc) | |"
  echo
  echo "| rendition | PSNR marquee dB | PSNR ffmpeg dB | difference |"
  echo "|---|---:|---:|---:|"
  for i in 0 1 2 3; do
    pm=$(psnr "$TMP/marquee" $i "${widths[$i]}" "${heights[$i]}"); pf=$(psnr "$TMP/ffmpeg" $i "${widths[$i]}" "${heights[$i]}")
    echo "| ${heights[$i]}p | $pm | $pf | $(echo "scale=3; $pm - $pf" | bc) |"
  done
} | tee "$OUT"

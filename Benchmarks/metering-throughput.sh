#!/usr/bin/env bash
# Metering throughput and lag: a real `marquee billing` metering a synthetic delivery log
# (Benchmarks/metering_bench.py writes it, keeps the oracle and checks the ledger), on SQLite and
# on a private PostgreSQL server.
#
#   Benchmarks/metering-throughput.sh      (env: MARQUEE_BIN, RECORDS=1500000, SESSIONS=2000,
#                                           LAG_RATE=50000, LAG_RECORDS=1000000, BATCH=25000,
#                                           DATABASES="sqlite postgres", MODES="throughput lag",
#                                           LABEL="release, main at abc1234": what was measured)
#
# throughput: the whole log appears at once; records/s = records / time until billing's committed
# offset reaches the end. lag: records are written live at LAG_RATE records/s; a record's lag is
# from its write to billing's commit of it. Both check exactly-once against the oracle.
# Writes Benchmarks/results/metering-<database>-<mode>.json and Benchmarks/results/metering.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
RECORDS="${RECORDS:-1500000}"
SESSIONS="${SESSIONS:-2000}"
LAG_RATE="${LAG_RATE:-50000}"
LAG_RECORDS="${LAG_RECORDS:-1000000}"
BATCH="${BATCH:-25000}"
DATABASES="${DATABASES:-sqlite postgres}"
LABEL="${LABEL:-}"
MODES="${MODES:-throughput lag}"
if [[ -z "${MARQUEE_BIN:-}" ]]; then
  (cd "$REPO" && swift build -c release --product marquee >&2)
  MARQUEE_BIN="$(cd "$REPO" && swift build -c release --show-bin-path)/marquee"
fi

need=()
command -v python3 >/dev/null || need+=(python3)
[[ " $DATABASES " == *" postgres "* ]] && { [[ -x /usr/lib/postgresql/15/bin/initdb ]] || need+=(postgresql-15); command -v psql >/dev/null || need+=(postgresql-client-15); }
if ((${#need[@]})); then
  apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

SCRATCH="$(mktemp -d -t metering-bench.XXXXXX)"
chmod 755 "$SCRATCH"
# shellcheck source=private-postgres.sh
source "$HERE/private-postgres.sh"
cleanup() {
  stop_postgres
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

mkdir -p "$HERE/results"
for db in $DATABASES; do
  url=sqlite
  if [[ "$db" == postgres ]]; then
    [[ -n "$PG_DATA" ]] || start_postgres
  fi
  for mode in $MODES; do
    if [[ "$db" == postgres ]]; then
      name="bench_${mode}_$$"
      runuser -u postgres -- /usr/lib/postgresql/15/bin/createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres "$name"
      url="postgres://postgres@127.0.0.1:$PG_PORT/$name"
    fi
    n="$RECORDS"; [[ "$mode" == lag ]] && n="$LAG_RECORDS"
    echo "== $db $mode: $n records, $SESSIONS sessions, meter_batch $BATCH (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    python3 "$HERE/metering_bench.py" --marquee "$MARQUEE_BIN" --mode "$mode" --database "$url" --records "$n" \
      --sessions "$SESSIONS" --rate "$LAG_RATE" --batch "$BATCH" --label "$LABEL" --work "$SCRATCH/run-$db-$mode" \
      --out "$HERE/results/metering-$db-$mode.json" >&2 || echo "!! $db $mode: the ledger did not match the oracle (see the JSON)" >&2
  done
done

python3 - "$HERE/results" <<'PY'
import json, sys
from pathlib import Path
results = Path(sys.argv[1])
lines = ["## Metering: records/s and lag (a real `marquee billing`, synthetic delivery log)", "",
         "| build | database | mode | records | sessions | meter_batch | records/s | lag p50 / p99 (ms) | billing CPU µs/record | minutes charged / expected | exact | load (1 min) |",
         "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
for path in sorted(results.glob("metering-*-*.json")):
    r = json.loads(path.read_text())
    v = r["verification"]
    rate = r.get("records_per_s") or r.get("written_per_s")
    lag = f'{r["lag_p50_ms"]} / {r["lag_p99_ms"]}' if "lag_p99_ms" in r else "–"
    cpu = r.get("billing_cpu_us_per_record") or round(r["billing_cpu_s"] / r["records"] * 1e6, 2)
    lines.append(f'| {r.get("label") or "?"} | {r["database"]} | {r["mode"]} | {r["records"]:,} | {r["sessions"]:,} | {r["meter_batch"]} | {rate:,} | {lag} | {cpu} | '
                 f'{v["charged_minutes"]:,} / {v["expected_minutes"]:,} | {"yes" if v["exact"] else "NO: " + str(v["problem_count"])} | {r["load_during_run"][0]:.1f} |')
text = "\n".join(lines) + "\n"
(results / "metering.md").write_text(text)
print(text)
PY

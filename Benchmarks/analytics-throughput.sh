#!/usr/bin/env bash
# Analytics ingestion and query speed: a real `marquee analytics` rolling up a synthetic delivery
# log of RECORDS records (Benchmarks/analytics_bench.py writes it once and reuses it), on SQLite and
# on a private PostgreSQL server, then the API's queries over the result, timed over HTTP.
#
#   Benchmarks/analytics-throughput.sh      (env: MARQUEE_BIN, RECORDS=10000000, SESSIONS=20000,
#                                            TITLES=50, BATCH=100000, QUERIES=20, SPANS="720 1",
#                                            DATABASES="sqlite postgres", LABEL="release, main at abc1234",
#                                            LOGS=DIR to keep the generated logs there between runs)
#
# SPANS: the hours the sessions start over, one log each. 720 is a month of history, about 4
# sessions at a time: what the month's queries need, and the hardest case for ingestion (every
# record lands in rows of its own minute). 1 is a busy hour: about 2,600 viewers at once, the
# traffic that makes 100,000 records a second.
# Targets (issue 17): ingestion >= 100,000 records/s; every query < 100 ms over 10M records.
# Writes Benchmarks/results/analytics-<database>-<span>h.json and Benchmarks/results/analytics.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
RECORDS="${RECORDS:-10000000}"
SESSIONS="${SESSIONS:-20000}"
TITLES="${TITLES:-50}"
BATCH="${BATCH:-100000}"
QUERIES="${QUERIES:-20}"
SPANS="${SPANS:-720 1}"
DATABASES="${DATABASES:-sqlite postgres}"
LABEL="${LABEL:-}"
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

SCRATCH="$(mktemp -d -t analytics-bench.XXXXXX)"
chmod 755 "$SCRATCH"
# shellcheck source=private-postgres.sh
source "$HERE/private-postgres.sh"
cleanup() {
  stop_postgres
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

mkdir -p "$HERE/results"
rm -f "$HERE"/results/analytics-*.json
n=0
for span in $SPANS; do
  for db in $DATABASES; do
    url=sqlite
    if [[ "$db" == postgres ]]; then
      [[ -n "$PG_DATA" ]] || start_postgres
      n=$((n + 1))
      runuser -u postgres -- /usr/lib/postgresql/15/bin/createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres "analytics_$n"
      url="postgres://postgres@127.0.0.1:$PG_PORT/analytics_$n"
    fi
    echo "== $db, sessions over $span h: $RECORDS records, $SESSIONS sessions, batch $BATCH (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    python3 "$HERE/analytics_bench.py" --marquee "$MARQUEE_BIN" --database "$url" --records "$RECORDS" --sessions "$SESSIONS" \
      --titles "$TITLES" --batch "$BATCH" --queries "$QUERIES" --span-hours "$span" --label "$LABEL" --log "${LOGS:-$SCRATCH}/log-$span" \
      --work "$SCRATCH/run-$db" --out "$HERE/results/analytics-$db-${span}h.json" >&2
    rm -rf "$SCRATCH/run-$db"
  done
  [[ -n "${LOGS:-}" ]] || rm -rf "$SCRATCH/log-$span"
done

python3 - "$HERE/results" <<'PY'
import json, sys
from pathlib import Path
results = Path(sys.argv[1])
lines = ["## Analytics: ingestion and queries (a real `marquee analytics`, synthetic delivery log)", "",
         "| build | database | sessions over | records | sessions | batch | records/s | CPU µs/record | rollup rows | every record once | slowest query (ms) | load before |",
         "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
queries = []
for path in sorted(results.glob("analytics-*.json")):
    r = json.loads(path.read_text())
    lines.append(f'| {r.get("label") or "?"} | {r["database"]} | {r["span_hours"]:g} h | {r["records"]:,} | {r["sessions"]:,} | {r["batch"]} | {r["records_per_s"]:,} | '
                 f'{r["analytics_cpu_us_per_record"]} | {r["rollup_rows"]:,} | {"yes" if r["exact"] else "NO"} | {r["slowest_query_ms"]} | {r["load_before"][0]:.1f} |')
    for name, t in r["queries"].items():
        queries.append(f'| {r["database"]}, {r["span_hours"]:g} h | `{name}` | {t["p50_ms"]} | {t["max_ms"]} |')
lines += ["", "Queries over HTTP after ingestion (p50 and slowest of the runs):", "", "| database | caller and query | p50 ms | max ms |", "|---|---|---:|---:|"] + queries
text = "\n".join(lines) + "\n"
(results / "analytics.md").write_text(text)
print(text)
PY

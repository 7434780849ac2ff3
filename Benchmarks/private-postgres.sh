# Sourced by the benchmarks that need PostgreSQL: a private, durable server under $SCRATCH like
# the tests' (Tests/TestSupport/PostgresServer.swift), with fsync on and synchronous_commit off
# (the counterpart of SQLite's WAL with synchronous=NORMAL). Sets PG_DATA and PG_PORT.
#   start_postgres    # once; then createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres NAME
#   stop_postgres     # in the script's cleanup (does nothing if it never started)
PG_DATA=""
PG_PORT=""

start_postgres() {
  mkdir -p "$SCRATCH/pg" && chown postgres:postgres "$SCRATCH/pg"
  PG_DATA="$SCRATCH/pg/data"
  PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$PG_DATA" -A trust -U postgres --locale=C.UTF-8 -E UTF8 >/dev/null
  runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DATA" -l "$SCRATCH/pg/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $SCRATCH/pg -c listen_addresses=127.0.0.1 -c synchronous_commit=off -c shared_buffers=256MB" start >/dev/null
}

stop_postgres() {
  if [[ -n "$PG_DATA" ]]; then runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true; fi
}

#!/usr/bin/env bash
# `make cluster`: 2 web processes and 3 workers on this machine, sharing one PostgreSQL,
# as a multi-machine deployment runs them (README, "Multi-machine deployment").
#
#   CLUSTER_DATABASE_URL  PostgreSQL (PostGIS) database to use, created if missing
#                         (default postgresql+psycopg://postgres@127.0.0.1:5432/tocsin_cluster)
#   CLUSTER_SUBSCRIBERS   demo population on first run (default 20000)
#   CLUSTER_WEB_PORTS     web ports (default "8001 8002"); CLUSTER_WORKERS (default 3)
#   CLUSTER_SECONDS       stop by itself after this many seconds (default: run until Ctrl-C)
#
# Every process gets the same TOCSIN_DATABASE_URL and TOCSIN_SECRET_KEY (a session
# cookie made by one web process is valid on the other, as behind a load balancer).
set -euo pipefail
BIN=${BIN:-.venv/bin}
DB=${CLUSTER_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/tocsin_cluster}
PORTS=${CLUSTER_WEB_PORTS:-"8001 8002"}
WORKERS=${CLUSTER_WORKERS:-3}
LOGS=${CLUSTER_LOGS:-var/cluster}
mkdir -p "$LOGS"

export TOCSIN_DATABASE_URL="$DB"
export TOCSIN_SECRET_KEY=${TOCSIN_SECRET_KEY:-$(cat "$LOGS/secret" 2>/dev/null || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tee "$LOGS/secret")}
export TOCSIN_WORKERS="$WORKERS"   # for the send-time estimates

"$BIN/python" - "$DB" "${CLUSTER_SUBSCRIBERS:-20000}" <<'PY'
import sys

import sqlalchemy as sa

url, n = sys.argv[1], int(sys.argv[2])
base, name = url.rsplit("/", 1)
admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
with admin.connect() as c:
    if not c.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        print(f"created database {name}")
admin.dispose()
db = sa.create_engine(url, isolation_level="AUTOCOMMIT")
with db.connect() as c:
    c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
db.dispose()

from tocsin.authorities.setup import prepare_demo
from tocsin.cli.processes import DEMO_ACCOUNTS, DEMO_AGREEMENTS

setup = prepare_demo(n, DEMO_ACCOUNTS, url=url, agreements=DEMO_AGREEMENTS)
print(f"database ready ({setup.generated} demo subscribers generated now)")
PY

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping ${#pids[@]} processes (SIGTERM: workers drain)"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

for port in $PORTS; do
  "$BIN/tocsin" serve --no-worker --host 127.0.0.1 --port "$port" >"$LOGS/web-$port.log" 2>&1 &
  pids+=($!)
  echo "web    pid $! http://127.0.0.1:$port (log $LOGS/web-$port.log)"
done
for i in $(seq 1 "$WORKERS"); do
  "$BIN/tocsin" worker >"$LOGS/worker-$i.log" 2>&1 &
  pids+=($!)
  echo "worker pid $! (log $LOGS/worker-$i.log)"
done
echo "demo users as for make demo (e.g. beersel / dike-watch-2041); metrics: /metrics"
if [ -n "${CLUSTER_SECONDS:-}" ]; then sleep "$CLUSTER_SECONDS"; else wait; fi

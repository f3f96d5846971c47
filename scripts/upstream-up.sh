#!/usr/bin/env bash
# Start a real upstream Gnocchi 4.7.1 (API + metricd) to compare gnocchi-rs
# against (see docs/upstream-comparison.md and scripts/compare-with-upstream.py).
#
#   scripts/upstream-up.sh [--port 8051] [--workdir DIR] [--metricd-delay S]
#                                                          # install once, start
#   scripts/upstream-up.sh --stop [--workdir DIR]          # stop what it started
#
# - Installs gnocchi[postgresql]==4.7.1 once into ${UPSTREAM_VENV:-/work/upstream-venv}
#   (a venv is reused when it already has gnocchi 4.7.1).
# - Index: PostgreSQL at ${UPSTREAM_PG_HOST:-127.0.0.1}:${UPSTREAM_PG_PORT:-5432}
#   (trust auth, user postgres, falling back to root), database
#   ${UPSTREAM_DB:-gnocchi_upstream_cmp}, dropped and recreated on every start.
# - Storage, incoming and coordination: `file` drivers under WORKDIR
#   (default /tmp/gnocchi-upstream-cmp, wiped on every start).
# - API: upstream's `gnocchi-api` execs uwsgi, which is not installed here, so
#   the WSGI app `gnocchi.rest.wsgi:application` (the very module gnocchi-api
#   hands to uwsgi) is served by Python's wsgiref in a threading server.
#   `[api] auth_mode = basic`: user `admin` is the admin.
# - metricd runs in the background too, with a long processing delay (default
#   120 s): the comparison processes measures itself with `?refresh=true`
#   (synchronous in the API), and a background pass landing between two
#   batches would make back_window and duplicate-timestamp results depend on
#   timing (upstream processes all pending batches of a metric together).
# - PYTHONHASHSEED=${UPSTREAM_PYTHONHASHSEED:-0} for both: upstream iterates an
#   archive policy's aggregation methods as a Python set of str, and which
#   method comes last decides the timespan truncation of every method of a
#   granularity (storage._compute_split_operations keys `oldest_values` by
#   granularity). A fixed seed makes upstream reproducible; a second instance
#   with another seed (see docs/upstream-comparison.md) exposes that noise.
# Pids go to WORKDIR/pids; logs to WORKDIR/api.log and WORKDIR/metricd.log.
set -euo pipefail

VENV=${UPSTREAM_VENV:-/work/upstream-venv}
WORKDIR=/tmp/gnocchi-upstream-cmp
PORT=8051
STOP=0
METRICD_DELAY=120
HASHSEED=${UPSTREAM_PYTHONHASHSEED:-0}
PG_HOST=${UPSTREAM_PG_HOST:-127.0.0.1}
PG_PORT=${UPSTREAM_PG_PORT:-5432}
DB=${UPSTREAM_DB:-gnocchi_upstream_cmp}

while [ $# -gt 0 ]; do
  case "$1" in
    --stop) STOP=1 ;;
    --port) PORT=$2; shift ;;
    --workdir) WORKDIR=$2; shift ;;
    --metricd-delay) METRICD_DELAY=$2; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

log() { echo "[upstream-up] $*"; }

stop_all() {
  local pidfile=$WORKDIR/pids pid
  [ -f "$pidfile" ] || { log "nothing to stop ($pidfile absent)"; return 0; }
  while read -r pid name; do
    [ -n "$pid" ] || continue
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping $name (pid $pid)"
      # metricd is a cotyledon service manager: TERM makes it stop its workers.
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
  done < "$pidfile"
  rm -f "$pidfile"
}

if [ "$STOP" = 1 ]; then
  stop_all
  exit 0
fi

# ---------------------------------------------------------------- install
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '
import importlib.metadata as m, sys
sys.exit(0 if m.version("gnocchi") == "4.7.1" else 1)' 2>/dev/null; then
  log "reusing venv $VENV (gnocchi 4.7.1 present)"
else
  log "creating venv $VENV and installing gnocchi 4.7.1 (about 1 min)"
  python3 -m venv "$VENV"
  # Unpinned dependencies resolve to versions that work on CPython 3.11 with
  # 4.7.1 (checked: numpy 2.4, SQLAlchemy 2.1, pecan 1.8, oslo.* current; no
  # pkg_resources needed). psycopg2-binary avoids building psycopg2 from source.
  # There is no `file` extra: the file drivers need nothing more.
  "$VENV/bin/pip" install -q 'gnocchi[postgresql]==4.7.1' psycopg2-binary
  "$VENV/bin/python" -c 'import gnocchi.rest.app, gnocchi.storage.file, gnocchi.incoming.file, psycopg2'
  log "installed: $("$VENV/bin/pip" list 2>/dev/null | grep -iE '^(gnocchi|numpy|sqlalchemy) ' | tr -s ' ' | paste -sd, -)"
fi

# ---------------------------------------------------------------- fresh state
stop_all
rm -rf "$WORKDIR"
mkdir -p "$WORKDIR"/{storage,incoming,locks}

PG_USER=
for u in postgres root; do
  if psql -h "$PG_HOST" -p "$PG_PORT" -U "$u" -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
    PG_USER=$u; break
  fi
done
[ -n "$PG_USER" ] || { echo "cannot connect to PostgreSQL at $PG_HOST:$PG_PORT as postgres or root" >&2; exit 1; }
log "recreating database $DB on $PG_HOST:$PG_PORT (user $PG_USER)"
psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -q -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" 2>&1 | grep -v 'does not exist, skipping' || true

CONF=$WORKDIR/gnocchi.conf
cat > "$CONF" <<EOF
[DEFAULT]
debug = false
coordination_url = file://$WORKDIR/locks

[indexer]
url = postgresql://$PG_USER@$PG_HOST:$PG_PORT/$DB

[storage]
driver = file
file_basepath = $WORKDIR/storage

[incoming]
driver = file
file_basepath = $WORKDIR/incoming

[api]
auth_mode = basic

[metricd]
workers = 1
metric_processing_delay = $METRICD_DELAY
EOF
log "wrote $CONF"

log "gnocchi-upgrade (creates the index schema and the default archive policies)"
"$VENV/bin/gnocchi-upgrade" --config-file "$CONF" > "$WORKDIR/upgrade.log" 2>&1 \
  || { cat "$WORKDIR/upgrade.log" >&2; exit 1; }

cat > "$WORKDIR/serve.py" <<'EOF'
# Serve gnocchi.rest.wsgi (what gnocchi-api hands to uwsgi) with wsgiref.
import socketserver
import sys
from wsgiref import simple_server

conf, port = sys.argv[1], int(sys.argv[2])
sys.argv = ["gnocchi-api", "--config-file", conf]
from gnocchi.rest.wsgi import application  # noqa: E402


class Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True


class Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("ACCESS %s\n" % (fmt % args))


srv = simple_server.make_server("127.0.0.1", port, application,
                                server_class=Server, handler_class=Handler)
print("gnocchi 4.7.1 API listening on 127.0.0.1:%d" % port, flush=True)
srv.serve_forever()
EOF

if curl -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
  echo "port $PORT is already in use" >&2; exit 1
fi

log "starting API on 127.0.0.1:$PORT (PYTHONHASHSEED=$HASHSEED)"
PYTHONHASHSEED=$HASHSEED setsid "$VENV/bin/python" "$WORKDIR/serve.py" "$CONF" "$PORT" > "$WORKDIR/api.log" 2>&1 < /dev/null &
echo "$! api" >> "$WORKDIR/pids"
log "starting metricd"
PYTHONHASHSEED=$HASHSEED setsid "$VENV/bin/gnocchi-metricd" --config-file "$CONF" > "$WORKDIR/metricd.log" 2>&1 < /dev/null &
echo "$! metricd" >> "$WORKDIR/pids"

for i in $(seq 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -u admin: "http://127.0.0.1:$PORT/v1/" || true)
  [ "$code" = 200 ] && break
  if ! kill -0 "$(head -1 "$WORKDIR/pids" | cut -d' ' -f1)" 2>/dev/null; then
    echo "API died; see $WORKDIR/api.log" >&2; tail -20 "$WORKDIR/api.log" >&2; exit 1
  fi
  sleep 0.5
done
[ "$code" = 200 ] || { echo "API did not answer GET /v1/ in 60 s; see $WORKDIR/api.log" >&2; exit 1; }
log "ready: http://127.0.0.1:$PORT (user admin, basic auth); pids in $WORKDIR/pids"
log "stop with: $0 --stop${WORKDIR:+ --workdir $WORKDIR}"

#!/usr/bin/env bash
# Starts a real Keystone (from PyPI) on 127.0.0.1 for the keystone-mode tests
# (crates/gnocchid/tests/keystone_real.rs). Idempotent install: keystone and
# gunicorn go into a venv cached under ~/.cache/gnocchi-rs/keystone-venv
# (override with KS_VENV); about 30 s the first time, nothing afterwards.
#
#   usage: scripts/keystone-test-up.sh [DIR] [PORT]
#     DIR   state directory (config, SQLite db, fernet keys, logs); default
#           a fresh temporary directory
#     PORT  default 5000
#
# Prints two lines on stdout:
#   export GNOCCHI_TEST_KEYSTONE_URL=http://127.0.0.1:PORT/v3
#   export GNOCCHI_TEST_KEYSTONE_PID=<pid of the server>
# so `eval "$(scripts/keystone-test-up.sh)"` sets up the environment; stop the
# server with `kill "$GNOCCHI_TEST_KEYSTONE_PID"`. The bootstrap admin is
# admin / s3cret in project admin, domain Default (the test's defaults;
# GNOCCHI_TEST_KEYSTONE_ADMIN_PASSWORD overrides the password in the test).
set -euo pipefail

D=${1:-$(mktemp -d -t gnocchi-keystone-XXXXXX)}
PORT=${2:-5000}
V=${KS_VENV:-$HOME/.cache/gnocchi-rs/keystone-venv}
ADMIN_PASSWORD=${GNOCCHI_TEST_KEYSTONE_ADMIN_PASSWORD:-s3cret}

if ! "$V/bin/python" -c "import keystone, gunicorn" >/dev/null 2>&1; then
  echo "installing keystone + gunicorn into $V (about 30 s)" >&2
  mkdir -p "$(dirname "$V")"
  python3 -m venv "$V"
  "$V/bin/pip" install --quiet --disable-pip-version-check keystone gunicorn >&2
fi

mkdir -p "$D"
cat > "$D/keystone.conf" <<CONF
[DEFAULT]
use_stderr = true
[database]
connection = sqlite:///$D/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $D/fernet-keys
[fernet_receipts]
key_repository = $D/fernet-keys
[credential]
key_repository = $D/credential-keys
CONF
# oslo.config parses sys.argv: under gunicorn the workers would exit with
# "unrecognized arguments", hence this wrapper.
cat > "$D/ks_wsgi.py" <<PY
import os, sys
os.environ.setdefault("OS_KEYSTONE_CONFIG_FILES", "$D/keystone.conf")
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa
PY

if [ ! -f "$D/keystone.db" ]; then
  KM="$V/bin/keystone-manage --config-file $D/keystone.conf"
  $KM fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >"$D/setup.log" 2>&1
  $KM credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$D/setup.log" 2>&1
  $KM db_sync >>"$D/setup.log" 2>&1
  $KM bootstrap --bootstrap-password "$ADMIN_PASSWORD" --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "http://127.0.0.1:$PORT/v3/" \
    --bootstrap-public-url "http://127.0.0.1:$PORT/v3/" \
    --bootstrap-internal-url "http://127.0.0.1:$PORT/v3/" >>"$D/setup.log" 2>&1
fi

"$V/bin/gunicorn" --chdir "$D" -b "127.0.0.1:$PORT" -w 2 --threads 4 ks_wsgi:application \
  >"$D/server.log" 2>&1 &
PID=$!
echo "$PID" > "$D/server.pid"
for _ in $(seq 1 120); do
  if curl -s -m 2 -o /dev/null "http://127.0.0.1:$PORT/v3"; then
    echo "export GNOCCHI_TEST_KEYSTONE_URL=http://127.0.0.1:$PORT/v3"
    echo "export GNOCCHI_TEST_KEYSTONE_PID=$PID"
    exit 0
  fi
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.25
done
echo "keystone failed to start; see $D/server.log" >&2
kill "$PID" 2>/dev/null || true
exit 1

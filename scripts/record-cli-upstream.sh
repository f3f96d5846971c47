#!/usr/bin/env bash
# Record what the official Gnocchi CLI prints against upstream Gnocchi 4.7.1,
# for crates/gnocchid/tests/real_clients_gnocchi_cli.rs to compare gnocchid's
# output with:
#
#   scripts/record-cli-upstream.sh [--port 8061] [--workdir /tmp/up-cli]
#
# Starts a fresh upstream (scripts/upstream-up.sh: its own database
# ${UPSTREAM_DB:-gnocchi_cli_cmp}, wiped), runs the very command sequence the
# test runs (crates/gnocchid/tests/gnocchi_cli/commands.txt, through run.py, in
# the gnocchiclient venv of scripts/install-test-peers-clients.sh), writes the
# normalized transcript to crates/gnocchid/tests/gnocchi_cli/upstream-4.7.1.txt
# and stops upstream. Rerun it whenever commands.txt changes.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=8061
WORKDIR=/tmp/up-cli
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift ;;
    --workdir) WORKDIR=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

VENV=${GNOCCHI_TEST_GNOCCHICLIENT_VENV:-/opt/gnocchiclient-venv}
DIR=crates/gnocchid/tests/gnocchi_cli
[ -x "$VENV/bin/gnocchi" ] || bash scripts/install-test-peers-clients.sh

export UPSTREAM_DB=${UPSTREAM_DB:-gnocchi_cli_cmp}
scripts/upstream-up.sh --port "$PORT" --workdir "$WORKDIR"
trap 'scripts/upstream-up.sh --stop --workdir "$WORKDIR"' EXIT
"$VENV/bin/python" "$DIR/run.py" "http://127.0.0.1:$PORT" "$DIR/commands.txt" \
  > "$DIR/upstream-4.7.1.txt.new"
mv "$DIR/upstream-4.7.1.txt.new" "$DIR/upstream-4.7.1.txt"
echo "recorded $DIR/upstream-4.7.1.txt ($(grep -c '^\$ ' "$DIR/upstream-4.7.1.txt") commands)"

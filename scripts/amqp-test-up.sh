#!/usr/bin/env bash
# Starts a real AMQP 1.0 broker on 127.0.0.1 for the gnocchid amqpd tests
# (crates/gnocchid/tests/amqpd_*.rs): the Qpid Proton Python example broker
# (Debian's python3-qpid-proton 0.37 and libqpid-proton11-dev-examples). It
# keeps its queues in memory, answers SASL ANONYMOUS only, and takes
# collectd's amqp1 plugin link (RabbitMQ 3.10's AMQP 1.0 plugin refuses it;
# ../shared/test-peers/ceph-swift-amqp.md). Idempotent install with
# apt-get; nothing to install the second time. Ready in about 1 s.
#
#   usage: scripts/amqp-test-up.sh [DIR] [PORT]
#     DIR   state directory (the broker's log and pid); default a fresh
#           temporary directory
#     PORT  default: a free port
#
# Prints two lines on stdout:
#   export GNOCCHI_TEST_AMQP_URL=127.0.0.1:PORT
#   export GNOCCHI_TEST_AMQP_PID=<pid of the broker>
# so `eval "$(scripts/amqp-test-up.sh)"` sets up the environment; stop the
# broker with `kill "$GNOCCHI_TEST_AMQP_PID"`.
set -euo pipefail

D=${1:-$(mktemp -d -t gnocchi-amqp-XXXXXX)}
PYTHON=/usr/bin/python3
BROKER=/usr/share/proton/examples/python/broker.py

missing=()
"$PYTHON" -c 'import proton' >/dev/null 2>&1 || missing+=(python3-qpid-proton)
[ -f "$BROKER" ] || missing+=(libqpid-proton11-dev-examples)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PORT=${2:-$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
mkdir -p "$D"
"$PYTHON" "$BROKER" -a "127.0.0.1:$PORT" > "$D/broker.log" 2>&1 &
pid=$!
echo "$pid" > "$D/broker.pid"
for _ in $(seq 1 100); do
  if "$PYTHON" -c "import socket,sys; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null; then
    echo "export GNOCCHI_TEST_AMQP_URL=127.0.0.1:$PORT"
    echo "export GNOCCHI_TEST_AMQP_PID=$pid"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
echo "the AMQP broker did not start on port $PORT; log: $D/broker.log" >&2
cat "$D/broker.log" >&2 || true
kill "$pid" 2>/dev/null || true
exit 1

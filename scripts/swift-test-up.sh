#!/usr/bin/env bash
# A throwaway single-node OpenStack Swift for the tests (Debian 12's Swift
# 2.30.1): memcached, the account, container and object servers and a proxy
# with tempauth and the bulk middleware in its pipeline; one replica, a
# directory as the "device", no systemd. Runs in a fresh temporary directory
# on free ports (written into the rings and configs); never touches a system
# Swift. Ready in about 5 s.
#
#   eval "$(scripts/swift-test-up.sh)"       # start; prints export lines:
#       GNOCCHI_TEST_SWIFT_AUTHURL, GNOCCHI_TEST_SWIFT_USER, GNOCCHI_TEST_SWIFT_KEY,
#       GNOCCHI_TEST_SWIFT_MEMCACHED (host:port, for the token-expiry test),
#       SWIFT_TEST_DIR
#   scripts/swift-test-up.sh stop "$SWIFT_TEST_DIR"   # stop by pid, remove the directory
#
# Installs the packages first when missing (apt-get; idempotent):
#   swift swift-proxy swift-object swift-container swift-account memcached python3-swiftclient
# Swift 2.30 reads swift.conf (hash prefix/suffix, policies) only from
# /etc/swift/swift.conf, which Debian's swift package ships.
set -euo pipefail

if [ "${1:-}" = stop ]; then
  D=${2:?usage: $0 stop DIR}
  pids=""
  for n in proxy object container account memcached; do
    f="$D/run/$n.pid"; [ -f "$f" ] || continue; pids="$pids $(cat "$f")"
  done
  if [ -n "$pids" ]; then
    kill $pids 2>/dev/null || true
    for _ in $(seq 1 100); do
      alive=""; for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
      [ -z "$alive" ] && break; sleep 0.1
    done
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
  fi
  case "$D" in /tmp/*|"${TMPDIR:-/tmp}"/*) rm -rf "$D";; esac
  exit 0
fi

need=()
for c in swift-proxy-server swift-object-server swift-container-server swift-account-server memcached; do
  command -v "$c" >/dev/null || need+=("$c")
done
[ -f /etc/swift/swift.conf ] || need+=(swift.conf)
/usr/bin/python3 -c 'import swiftclient' 2>/dev/null || need+=(swiftclient)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
    swift swift-proxy swift-object swift-container swift-account memcached python3-swiftclient >&2
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/gnocchi-swift.XXXXXX")
E="$D/etc"
mkdir -p "$E" "$D/srv/d1" "$D/run" "$D/log"

read -r ACCOUNT CONTAINER OBJECT PROXY MEMCACHED < <(python3 - <<'PY'
import socket
socks, ports = [], []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s); ports.append(s.getsockname()[1])
for s in socks: s.close()
print(*ports)
PY
)

for s in account:$ACCOUNT container:$CONTAINER object:$OBJECT; do
  name=${s%%:*}; p=${s##*:}
  cat > "$E/$name-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $p
workers = 0
swift_dir = $E
devices = $D/srv
mount_check = false
disable_fallocate = true
log_level = WARNING
[pipeline:main]
pipeline = healthcheck $name-server
[app:$name-server]
use = egg:swift#$name
[filter:healthcheck]
use = egg:swift#healthcheck
CONF
done

# Rings: part power 6, 1 replica, one device d1 (the directory $D/srv/d1).
/usr/bin/python3 - "$E" "$ACCOUNT" "$CONTAINER" "$OBJECT" <<'PY'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in zip(('account', 'container', 'object'), map(int, sys.argv[2:5])):
    b = RingBuilder(6, 1, 1)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'device': 'd1',
               'weight': 100, 'replication_ip': '127.0.0.1', 'replication_port': port, 'meta': ''})
    b.rebalance()
    b.save('%s/%s.builder' % (etc, name))
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
PY

cat > "$E/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY
workers = 0
swift_dir = $E
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempauth proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:tempauth]
use = egg:swift#tempauth
user_admin_admin = admin .admin .reseller_admin
user_test_tester = testing .admin
user_test2_tester2 = testing2
token_life = 86400
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
CONF

# tempauth keeps its tokens in memcache.
memcached -l 127.0.0.1 -p "$MEMCACHED" -U 0 -m 32 -t 1 -u "$(id -un)" -P "$D/run/memcached.pid" -d
for n in account container object; do
  setsid "swift-$n-server" "$E/$n-server.conf" >"$D/log/$n.log" 2>&1 < /dev/null & echo $! > "$D/run/$n.pid"
done
setsid swift-proxy-server "$E/proxy-server.conf" >"$D/log/proxy.log" 2>&1 < /dev/null & echo $! > "$D/run/proxy.pid"

for p in $ACCOUNT $CONTAINER $OBJECT $PROXY; do
  ok=
  for _ in $(seq 1 300); do
    if curl -fsS "http://127.0.0.1:$p/healthcheck" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.1
  done
  if [ -z "$ok" ]; then
    echo "swift did not start (port $p); logs in $D/log" >&2
    tail -n 20 "$D"/log/*.log >&2 || true
    "$0" stop "$D"; exit 1
  fi
done
# The first login creates the account (account_autocreate): wait until it works.
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "http://127.0.0.1:$PROXY/auth/v1.0" && break
  sleep 0.1
done

echo "export GNOCCHI_TEST_SWIFT_AUTHURL=http://127.0.0.1:$PROXY/auth/v1.0"
echo "export GNOCCHI_TEST_SWIFT_USER=test:tester"
echo "export GNOCCHI_TEST_SWIFT_KEY=testing"
echo "export GNOCCHI_TEST_SWIFT_MEMCACHED=127.0.0.1:$MEMCACHED"
echo "export SWIFT_TEST_DIR=$D"

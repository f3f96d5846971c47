#!/usr/bin/env bash
# A throwaway single-node Ceph for the tests: 1 monitor + 1 memstore OSD, no
# mgr, no systemd (Debian 12's ceph-mon/ceph-osd 16.2; ready in ~6 s). Runs in
# a fresh temporary directory, on free ports (the monitor's msgr2 and v1
# ports, and an OSD port range), and never touches /etc/ceph or a system
# cluster.
#
#   eval "$(scripts/ceph-test-up.sh)"      # start; prints export lines:
#       CEPH_CONF, GNOCCHI_TEST_CEPH_CONF (what the tests read),
#       GNOCCHI_TEST_CEPH_POOL, CEPH_TEST_DIR, CEPH_TEST_PIDS
#   scripts/ceph-test-up.sh stop "$CEPH_TEST_DIR"   # stop by pid, remove the directory
#
# Installs the packages first when missing (apt-get; idempotent):
#   ceph-mon ceph-osd ceph-common librados-dev python3-rados
# Env: AUTH=none|cephx (default none); POOL (default gnocchi).
set -euo pipefail

if [ "${1:-}" = stop ]; then
  D=${2:?usage: $0 stop DIR}
  for n in osd.0 mon.a; do
    f="$D/run/$n.pid"; [ -f "$f" ] || continue; p=$(cat "$f")
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  case "$D" in /tmp/*|"${TMPDIR:-/tmp}"/*) rm -rf "$D";; esac
  exit 0
fi

need=()
for c in ceph-mon ceph-osd ceph rados; do command -v "$c" >/dev/null || need+=(x); done
[ -e /usr/include/rados/librados.h ] || need+=(x)
/usr/bin/python3 -c 'import rados' 2>/dev/null || need+=(x)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends ceph-mon ceph-osd ceph-common librados-dev python3-rados >&2
fi

AUTH=${AUTH:-none}
POOL=${POOL:-gnocchi}
D=$(mktemp -d "${TMPDIR:-/tmp}/gnocchi-ceph.XXXXXX")
export CEPH_CONF="$D/ceph.conf"

# Free ports: two for the monitor, a range of 20 for the OSD.
read -r MON2 MON1 OSD_MIN < <(python3 - <<'PY'
import socket
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def free_range(n):
    for _ in range(200):
        base = free()
        if base + n > 65535: continue
        ok = True
        for p in range(base, base + n):
            s = socket.socket()
            try: s.bind(("127.0.0.1", p))
            except OSError: ok = False
            finally: s.close()
            if not ok: break
        if ok: return base
    raise SystemExit("no free port range")
a = free(); b = free()
while b == a: b = free()
print(a, b, free_range(20))
PY
)
OSD_MAX=$((OSD_MIN + 19))
ADDR="[v2:127.0.0.1:$MON2,v1:127.0.0.1:$MON1]"

FSID=$(cat /proc/sys/kernel/random/uuid)
mkdir -p "$D/mon.a" "$D/osd.0" "$D/run" "$D/log"
cat > "$CEPH_CONF" <<CONF
[global]
fsid = $FSID
mon host = $ADDR
mon initial members = a
public network = 127.0.0.0/8
ms bind port min = $OSD_MIN
ms bind port max = $OSD_MAX
auth cluster required = $AUTH
auth service required = $AUTH
auth client required = $AUTH
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 2
mon data avail crit = 1
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
keyring = $D/keyring
[mon.a]
mon data = $D/mon.a
[osd.0]
osd data = $D/osd.0
keyring = $D/osd.0/keyring
osd objectstore = memstore
memstore device bytes = 1073741824
osd op num shards = 1
osd op num threads per shard = 2
CONF

fail() { echo "ceph-test-up: $*; logs in $D/log" >&2; "$0" stop "$D" >/dev/null 2>&1 || true; exit 1; }
{
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$FSID" --addv a "$ADDR" "$D/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
  ceph-mon -i a
} >&2 || fail "monitor did not start"
ok=
for _ in $(seq 1 60); do ceph --connect-timeout 2 mon stat >/dev/null 2>&1 && { ok=1; break; }; sleep 0.5; done
[ -n "$ok" ] || fail "monitor not answering"
OSD_UUID=$(cat /proc/sys/kernel/random/uuid); OSD_KEY=$(ceph-authtool --gen-print-key)
echo "{\"cephx_secret\": \"$OSD_KEY\"}" | ceph osd new "$OSD_UUID" -i - >/dev/null
ceph-authtool --create-keyring "$D/osd.0/keyring" --name osd.0 --add-key "$OSD_KEY" >/dev/null
ceph-osd -i 0 --mkfs --osd-uuid "$OSD_UUID" >/dev/null 2>&1 || fail "osd mkfs failed"
ceph-osd -i 0 >/dev/null 2>&1 || fail "osd did not start"
ok=
for _ in $(seq 1 120); do ceph osd stat 2>/dev/null | grep -q ' 1 up' && { ok=1; break; }; sleep 0.5; done
[ -n "$ok" ] || fail "osd not up"
ceph osd pool create "$POOL" 8 8 >/dev/null 2>&1
ceph osd pool application enable "$POOL" gnocchi >/dev/null 2>&1
echo ready | rados -p "$POOL" put __ready - && rados -p "$POOL" rm __ready || fail "pool not writable"

echo "export CEPH_CONF=$CEPH_CONF"
echo "export GNOCCHI_TEST_CEPH_CONF=$CEPH_CONF"
echo "export GNOCCHI_TEST_CEPH_POOL=$POOL"
echo "export CEPH_TEST_DIR=$D"
echo "export CEPH_TEST_PIDS=\"$(cat "$D/run/mon.a.pid") $(cat "$D/run/osd.0.pid")\""

#!/usr/bin/env bash
# Installs the real clients that crates/gnocchid/tests/real_clients_*.rs run
# against our binary. Idempotent: what is already there is left alone. CI
# calls it before the tests; a developer can run it once per machine.
#
#   prometheus 2.42 (Debian)    remote_write to /v1/prometheus/write
#   collectd 5.12 (Debian)      collectd-core, plus libyajl2 that write_http
#                               needs but does not pull in, and
#                               libqpid-proton11 that its amqp1 plugin needs
#                               (the AMQP 1.0 tests; their broker comes from
#                               scripts/amqp-test-up.sh)
#   collectd-gnocchi (PyPI)     the upstream collectd plugin, in a venv made
#                               with Debian's python3.11: collectd's python.so
#                               links that libpython, so the venv must match
#   influxdb (PyPI)             the InfluxDB 1.x Python client (Telegraf is in
#                               no registry we reach; this writes the same
#                               line protocol to /v1/influxdb/write)
#   gnocchiclient 7.2.0         the official `gnocchi` CLI, with
#   + python-openstackclient    `openstack metric ...` (PyPI), in one venv
#
# The tests find the venvs at GNOCCHI_TEST_COLLECTD_VENV,
# GNOCCHI_TEST_INFLUX_VENV and GNOCCHI_TEST_GNOCCHICLIENT_VENV, defaulting to the paths below, and skip (saying
# so) when a client is missing.
set -euo pipefail

COLLECTD_VENV=${GNOCCHI_TEST_COLLECTD_VENV:-/opt/collectd-gnocchi-venv}
INFLUX_VENV=${GNOCCHI_TEST_INFLUX_VENV:-/opt/influx-py-venv}
GNOCCHICLIENT_VENV=${GNOCCHI_TEST_GNOCCHICLIENT_VENV:-/opt/gnocchiclient-venv}
PYTHON=/usr/bin/python3.11

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v collectd >/dev/null 2>&1 || missing+=(collectd-core)
[ -e /usr/lib/x86_64-linux-gnu/libyajl.so.2 ] || ls /usr/lib/*/libyajl.so.2 >/dev/null 2>&1 || missing+=(libyajl2)
ls /usr/lib/*/libqpid-proton.so.11 >/dev/null 2>&1 || missing+=(libqpid-proton11)
[ -x "$PYTHON" ] || missing+=(python3.11)
"$PYTHON" -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3.11-venv)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "prometheus, collectd, libyajl2 and libqpid-proton11 already installed"
fi

# venv_with VENV PACKAGE...: the PyPI packages (pip requirement specifiers) in
# a venv of their own. (`pip show`, not an import, checks them:
# collectd_gnocchi imports `collectd`, which only exists inside collectd.) A
# pinned `name==version` must be installed at that very version.
venv_with() {
  local venv=$1
  shift
  local spec name version ok=1
  if [ -x "$venv/bin/pip" ]; then
    for spec in "$@"; do
      name=${spec%%==*}
      version=$("$venv/bin/pip" show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)

      if [ -z "$version" ] || { [ "$spec" != "$name" ] && [ "$version" != "${spec#*==}" ]; }; then
        ok=0
      fi
    done
  else
    ok=0
  fi
  if [ "$ok" = 1 ]; then
    echo "$* already installed in $venv"
    return
  fi
  echo "installing $* into $venv"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$@"
  for spec in "$@"; do
    "$venv/bin/pip" show -q "${spec%%==*}" >/dev/null
  done
}

venv_with "$COLLECTD_VENV" collectd-gnocchi
venv_with "$INFLUX_VENV" influxdb
venv_with "$GNOCCHICLIENT_VENV" gnocchiclient==7.2.0 python-openstackclient

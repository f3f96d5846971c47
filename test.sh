#!/usr/bin/env bash
# Runs every test of gnocchi-rs: unit, property and integration tests of the
# whole workspace. Tests that need PostgreSQL, MariaDB or Redis read
# GNOCCHI_TEST_POSTGRESQL_URL, GNOCCHI_TEST_MYSQL_URL and GNOCCHI_TEST_REDIS_URL
# and say they are skipped when those are unset. The index's own test suite
# then runs again on each of PostgreSQL and MySQL/MariaDB that is configured
# (GNOCCHI_INDEX_TEST_BACKEND picks the backend; each test gets a database of
# its own, created and dropped through the admin URL). The AMQP 1.0 daemon's
# tests read GNOCCHI_TEST_AMQP_URL (a broker from scripts/amqp-test-up.sh).
#
#   ./test.sh                 # everything
#   ./test.sh -p carbonara    # one crate (any `cargo test` arguments)
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace "$@"
if [ "$#" -gt 0 ]; then
  exit 0
fi
for backend in postgresql mysql; do
  var=GNOCCHI_TEST_POSTGRESQL_URL
  [ "$backend" = mysql ] && var=GNOCCHI_TEST_MYSQL_URL
  if [ -z "${!var:-}" ]; then
    echo "index suite on $backend: skipped ($var unset)"
    continue
  fi
  echo "== index suite on $backend"
  GNOCCHI_INDEX_TEST_BACKEND=$backend cargo test -p gnocchi-index --tests
done

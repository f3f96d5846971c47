#!/usr/bin/env bash
# Runs every test of gnocchi-rs: unit, property and integration tests of the
# whole workspace. Tests that need PostgreSQL, MariaDB or Redis read
# GNOCCHI_TEST_POSTGRESQL_URL, GNOCCHI_TEST_MYSQL_URL and GNOCCHI_TEST_REDIS_URL
# and say they are skipped when those are unset.
#
#   ./test.sh                 # everything
#   ./test.sh -p carbonara    # one crate (any `cargo test` arguments)
set -euo pipefail
cd "$(dirname "$0")"
exec cargo test --workspace "$@"

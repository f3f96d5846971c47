#!/usr/bin/env bash
# Installs the test peers that the storage driver tests start themselves.
# Idempotent: does nothing for what is already installed. CI calls it before
# the tests; a developer can run it once per machine.
#
#   s3s-fs 0.14.1 (S3-compatible server on a directory, verifies SigV4) into
#   ~/.cargo/bin, used by crates/storage/tests/s3_driver.rs. 0.14.1 is the
#   newest release that builds with our rustc (0.17 needs rustc >= 1.96), and
#   the `binary` feature is required for the executable. Takes ~100 s to build.
#
# Redis is not installed here: the Redis driver tests use the server at
# GNOCCHI_TEST_REDIS_URL and skip when it is unset.
set -euo pipefail

S3S_FS_VERSION=0.14.1
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin

have_s3s_fs() {
  local bin=$1
  [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"
}

if have_s3s_fs "$CARGO_BIN/s3s-fs"; then
  echo "s3s-fs $S3S_FS_VERSION already installed: $CARGO_BIN/s3s-fs"
else
  echo "installing s3s-fs $S3S_FS_VERSION into $CARGO_BIN (about 100 s)"
  cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --quiet
  have_s3s_fs "$CARGO_BIN/s3s-fs" || { echo "s3s-fs install failed" >&2; exit 1; }
  echo "installed: $CARGO_BIN/s3s-fs"
fi

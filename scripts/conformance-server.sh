#!/usr/bin/env bash
# Start gnocchid for one conformance file with the index on a network database:
#
#   scripts/conformance-server.sh postgresql|mysql PORT DATADIR BASE_CONF
#   scripts/conformance-server.sh --drop-all postgresql|mysql   # clean up afterwards
#
# The conformance runner starts one fresh server per gabbit file; each needs an
# empty index, so this creates a database named after the port (dropping any
# leftover of an earlier run), appends `[indexer] url` to BASE_CONF (which names
# the other drivers) and execs gnocchid in the foreground. The admin URLs come
# from GNOCCHI_TEST_POSTGRESQL_URL / GNOCCHI_TEST_MYSQL_URL.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

pg() { psql -q -v ON_ERROR_STOP=1 "${GNOCCHI_TEST_POSTGRESQL_URL:?GNOCCHI_TEST_POSTGRESQL_URL is not set}" "$@"; }
my() {
  local admin=${GNOCCHI_TEST_MYSQL_URL:?GNOCCHI_TEST_MYSQL_URL is not set} user pass host port
  # mysql://user[:password]@host[:port]/db -> client flags
  IFS='|' read -r user pass host port < <(python3 -c '
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print(p.username or "root", p.password or "", p.hostname or "127.0.0.1", p.port or 3306, sep="|")' "$admin")
  MYSQL_PWD="$pass" mysql -u "$user" -h "$host" -P "$port" "$@"
}

if [ "$1" = --drop-all ]; then
  case "$2" in
    postgresql)
      for db in $(pg -At -c "SELECT datname FROM pg_database WHERE datname LIKE 'gnocchi\_ci\_%'"); do
        pg -c "DROP DATABASE $db WITH (FORCE)"
      done ;;
    mysql)
      for db in $(my -N -e "SHOW DATABASES LIKE 'gnocchi\_ci\_%'"); do
        my -e "DROP DATABASE $db"
      done ;;
  esac
  exit 0
fi

kind=$1 port=$2 datadir=$3 base=$4
db="gnocchi_ci_$port"
case "$kind" in
  postgresql)
    pg -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" >/dev/null
    url="${GNOCCHI_TEST_POSTGRESQL_URL%/*}/$db"
    ;;
  mysql)
    my -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db CHARACTER SET utf8mb4"
    url="${GNOCCHI_TEST_MYSQL_URL%/*}/$db"
    ;;
  *)
    echo "usage: $0 postgresql|mysql PORT DATADIR BASE_CONF" >&2
    exit 2
    ;;
esac

conf="$datadir/gnocchi.conf"
{ cat "$base"; printf '\n[indexer]\nurl = %s\n' "$url"; } > "$conf"
exec "$root/target/release/gnocchid" --config-file "$conf" --port "$port" \
  --data-dir "$datadir/data" --skip-archive-policies-creation

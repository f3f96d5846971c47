#!/usr/bin/env bash
# gnocchi-bench on the scale-out configuration next to the embedded default.
#
#   scripts/bench-scaleout.sh [--index postgresql|sqlite] [--aggregates s3|redis]
#                             [--rtt MS] [--redis-db N]
#                             [--only WORKLOADS] [--no-embedded] [--s3-disk]
#                             [--conf 'INI TEXT']
#                             [-- extra bench flags]
#
# Starts s3s-fs on a free port in a temporary directory (on tmpfs,
# /dev/shm, unless --s3-disk: see below), creates a fresh
# PostgreSQL database (dropped at the end), writes a gnocchi.conf with
#   [indexer] url = postgresql://postgres@127.0.0.1:5432/<fresh db>
#   [incoming] driver = redis, redis_url = <redis>/10   (WIPED by the bench)
#   [storage]  driver = s3 on s3s-fs
# then runs `gnocchi-bench --only ingest,processing,metricd` with that file and again
# without it (the embedded default), prints both tables, and the two side by
# side. --index sqlite keeps the index embedded (SQLite in the bench's data
# directories): Redis + S3 only. --aggregates redis keeps the aggregates in
# the same (wiped) Redis database instead of S3.
#
# --conf appends its text to that gnocchi.conf (\n for new lines), e.g.
#   --conf '[metricd]\nprocessing_replicas = 1'
#
# --rtt MS puts the backends MS milliseconds of round trip away: a
# gnocchi-delay-proxy (half the RTT each way) in front of s3s-fs, of a
# throwaway redis-server the script starts (on a free port, removed at the
# end) and of PostgreSQL (the machine's server is only proxied, never
# reconfigured). The kernel's netem would do the same, but needs sch_netem,
# which this machine's kernel lacks. --redis-db picks the database wiped on
# the shared Redis (default 10; unused with --rtt). --only is the bench's
# (default ingest,processing,metricd: metricd is 1, 2 and 4 `gnocchid
# metricd` processes, on the scale-out run only); --no-embedded skips the
# embedded run. After the scale-out run the script prints the CPU the peers
# (s3s-fs, Redis, PostgreSQL, the proxies) used meanwhile.
#
# Needs: $CARGO_TARGET_DIR/release (default target/release) gnocchid,
# gnocchi-bench and gnocchi-delay-proxy
# (cargo build --release -p gnocchid -p gnocchi-bench), s3s-fs
# (scripts/install-test-peers.sh), a Redis server (GNOCCHI_BENCH_REDIS_URL,
# default redis://127.0.0.1:6379; database 10 is wiped), psql and a PostgreSQL
# server (GNOCCHI_BENCH_PG, default host 127.0.0.1, user postgres) for
# --index postgresql. Other flags after `--` go to both bench runs, e.g.
#   scripts/bench-scaleout.sh -- --quick
#   scripts/bench-scaleout.sh -- --processing-metrics 2000 --ingest-seconds 5
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

index=postgresql
aggregates=s3
rtt=
redis_db=10
only=ingest,processing,metricd
embedded=1
s3_disk=
s3dir=
conf_extra=
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --index) index=${2:?--index needs postgresql or sqlite}; shift 2 ;;
    --index=*) index=${1#--index=}; shift ;;
    --aggregates) aggregates=${2:?--aggregates needs s3 or redis}; shift 2 ;;
    --rtt) rtt=${2:?--rtt needs milliseconds}; shift 2 ;;
    --redis-db) redis_db=${2:?--redis-db needs a number}; shift 2 ;;
    --only) only=${2:?--only needs workloads}; shift 2 ;;
    --no-embedded) embedded=; shift ;;
    --s3-disk) s3_disk=1; shift ;;
    --conf) conf_extra=${2:?--conf needs ini text}; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,47p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $aggregates in
  s3|redis) ;;
  *) echo "--aggregates must be s3 or redis" >&2; exit 2 ;;
esac
case $index in
  postgresql|sqlite) ;;
  *) echo "--index must be postgresql or sqlite" >&2; exit 2 ;;
esac

release=${CARGO_TARGET_DIR:-$root/target}/release
bench=$release/gnocchi-bench
for bin in gnocchid gnocchi-bench gnocchi-delay-proxy; do
  [ -x "$release/$bin" ] || { echo "build first: cargo build --release -p gnocchid -p gnocchi-bench" >&2; exit 1; }
done
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v s3s-fs >/dev/null || { echo "s3s-fs missing: bash scripts/install-test-peers.sh" >&2; exit 1; }
redis_url=${GNOCCHI_BENCH_REDIS_URL:-redis://127.0.0.1:6379}
redis_url=${redis_url%/}/$redis_db
pg_host=${GNOCCHI_BENCH_PG_HOST:-127.0.0.1}
pg_user=${GNOCCHI_BENCH_PG_USER:-postgres}

work=$(mktemp -d -t gnocchid-bench-scaleout-XXXXXX)
s3pid=
db=
pids=()
cleanup() {
  for pid in $s3pid "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$db" ]; then
    psql -h "$pg_host" -U "$pg_user" -d test -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
  fi
  rm -rf "$work" "$s3dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

s3port=$(free_port)
# s3s-fs writes three files per object (data, attributes, ETag) through a
# blocking pool of hundreds of threads: on this machine's disk that, not the
# S3 protocol, was the limit (load average above 200). Its directory goes on
# tmpfs when there is one (--s3-disk keeps it on disk): a real S3 service's
# storage is not on the metricd host.
if [ -z "$s3_disk" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  s3dir=$(mktemp -d /dev/shm/gnocchid-bench-s3-XXXXXX)
else
  s3dir=$work/s3
  mkdir -p "$s3dir"
fi
s3s-fs --host 127.0.0.1 --port "$s3port" --access-key AKBENCH --secret-key SKBENCH "$s3dir" > "$work/s3s-fs.log" 2>&1 &
s3pid=$!
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  exit 1
}
wait_port "$s3port"
s3_endpoint=127.0.0.1:$s3port
pg_port=5432

# --rtt: a delay proxy in front of every backend, and a Redis of our own.
proxy() { # sets proxy_port
  proxy_port=$(free_port)
  "$release/gnocchi-delay-proxy" "127.0.0.1:$proxy_port" "$1" "$rtt" \
    > "$work/proxy-$proxy_port.log" 2>&1 &
  pids+=($!)
  wait_port "$proxy_port"
}
if [ -n "$rtt" ]; then
  redis_port=$(free_port)
  mkdir -p "$work/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work/redis" > "$work/redis.log" 2>&1 &
  pids+=($!)
  wait_port "$redis_port"
  proxy "127.0.0.1:$redis_port"
  redis_url=redis://127.0.0.1:$proxy_port/1
  proxy "$s3_endpoint"
  s3_endpoint=127.0.0.1:$proxy_port
  proxy "$pg_host:5432"
  pg_proxy=$proxy_port
fi

indexer=
if [ "$index" = postgresql ]; then
  db=gnocchi_bench_$$_$RANDOM
  psql -h "$pg_host" -U "$pg_user" -d test -qc "CREATE DATABASE $db" >/dev/null
  if [ -n "$rtt" ]; then
    indexer="url = postgresql://$pg_user@127.0.0.1:$pg_proxy/$db"
  else
    indexer="url = postgresql://$pg_user@$pg_host:$pg_port/$db"
  fi
fi

conf=$work/gnocchi.conf
if [ "$aggregates" = s3 ]; then
  storage="driver = s3
s3_endpoint_url = http://$s3_endpoint
s3_access_key_id = AKBENCH
s3_secret_access_key = SKBENCH
s3_bucket_prefix = gnocchi"
else
  storage="driver = redis
redis_url = $redis_url"
fi
cat > "$conf" <<CONF
[indexer]
$indexer

[storage]
$storage

[incoming]
driver = redis
redis_url = $redis_url
CONF
if [ -n "$conf_extra" ]; then
  printf '\n%b\n' "$conf_extra" >> "$conf"
fi

# CPU seconds (user + system) of processes, from /proc/PID/stat: the peers
# share the machine's cores with metricd, and are often what limits it.
cpu_seconds() {
  local total=0 pid t
  for pid in "$@"; do
    t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + t))
  done
  echo "$total"
}
# PostgreSQL's connections come and go: those that ended before the second
# reading are not counted.
peer_cpu() { # s3s-fs redis postgres proxies, in clock ticks
  echo "$(cpu_seconds $s3pid) $(cpu_seconds $(pgrep -x redis-server)) $(cpu_seconds $(pgrep -x postgres))" \
    "$(cpu_seconds "${pids[@]}")"
}

echo "== load: $(uptime)"
echo "== scale-out: index $index, incoming $redis_url (wiped), aggregates s3s-fs on $s3_endpoint (data in $s3dir)${rtt:+, $rtt ms RTT through delay proxies}"
cpu_before=$(peer_cpu)
start=$(date +%s.%N)
GNOCCHI_LOG=${GNOCCHI_LOG:-warn} "$bench" --only "$only" --config-file "$conf" \
  --json "$work/scaleout.json" "${extra[@]}" | tee "$work/scaleout.txt"
python3 - "$start" "$(date +%s.%N)" $cpu_before $(peer_cpu) "$(getconf CLK_TCK)" <<'PY'
import sys
start, end = float(sys.argv[1]), float(sys.argv[2])
before, after = sys.argv[3:7], sys.argv[7:11]
hz, wall = float(sys.argv[11]), float(sys.argv[2]) - float(sys.argv[1])
names = ["s3s-fs", "redis-server (all)", "postgres (all)", "delay proxies + own redis"]
parts = [f"{n} {(int(a) - int(b)) / hz:.1f} s ({(int(a) - int(b)) / hz / wall:.2f} cores)"
         for n, b, a in zip(names, before, after)]
print(f"== peers' CPU over the scale-out run ({wall:.0f} s, bench included): " + ", ".join(parts))
PY
if [ -z "$embedded" ]; then
  echo "== load: $(uptime)"
  exit 0
fi
echo
echo "== embedded"
GNOCCHI_LOG=${GNOCCHI_LOG:-warn} "$bench" --only "$only" \
  --json "$work/embedded.json" "${extra[@]}" | tee "$work/embedded.txt"
echo
echo "== load: $(uptime)"
echo
echo "== side by side"
python3 - "$work/embedded.json" "$work/scaleout.json" <<'PY'
import json, sys
emb, sco = (json.load(open(p)) for p in sys.argv[1:3])
name = sco["context"].get("configuration", "scale-out").split(" ")[0]

def fmt(f):
    if f is None:
        return "-"
    v, unit = f["value"], f["unit"]
    if abs(v) >= 1e6:
        s = f"{v / 1e6:.2f}M"
    elif abs(v) >= 1e4:
        s = f"{v / 1e3:.1f}K"
    elif abs(v) >= 100:
        s = f"{v:.0f}"
    else:
        s = f"{v:.2f}"
    return f"{s} {unit}"

keys = list(emb["figures"]) + [k for k in sco["figures"] if k not in emb["figures"]]
rows = [("workload", "embedded", name)]
for k in keys:
    e, s = emb["figures"].get(k), sco["figures"].get(k)
    label = (e or s)["label"]
    if k == "ingest_statsd_datagrams":
        label += " [embedded in both]"
    rows.append((label, fmt(e), fmt(s)))
w = [max(len(r[i]) for r in rows) for i in range(3)]
for i, r in enumerate(rows):
    print(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}")
    if i == 0:
        print("-" * (sum(w) + 4))
PY

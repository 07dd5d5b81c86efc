#!/usr/bin/env bash
# The database's own commit ceiling and the lifecycle benchmark, in the same run, on the same
# PostgreSQL server: pgbench runs one INSERT per transaction at the given concurrency for the
# given time, then bench-lifecycle runs the whole lifecycle at the same concurrency and
# duration; the script prints the ratio of the writing transactions per second the lifecycle
# caused (transaction ids the server assigned: each one, like each pgbench transaction, writes
# and waits for its WAL flush) to pgbench's transactions per second, and Approve's p99, against
# their targets. The ratio of xact_commit (which also counts read-only statements) is printed
# beside it.
#
#   scripts/bench-db-ceiling.sh [--concurrency N] [--duration SECONDS] [--postgres-url URL]
#                               [--no-build] [-- more bench-lifecycle arguments]
#
#   Defaults: 32 users, 30 s, postgres://postgres@127.0.0.1:5432/test (or
#   TRYGGDEL_BENCH_POSTGRES_URL). pgbench's database and the lifecycle's databases are fresh and
#   dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

concurrency=32
duration=30
url="${TRYGGDEL_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
build=1
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --concurrency) concurrency="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --postgres-url) url="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 1 ;;
  esac
done

pgbench="$(command -v pgbench || true)"
if [ -z "$pgbench" ]; then
  pgbench="$(ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ -z "$pgbench" ]; then
  echo "error: pgbench not found (install PostgreSQL's client tools, e.g. postgresql-contrib)" >&2
  exit 1
fi
if ! psql "$url" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  echo "error: PostgreSQL does not answer at $url" >&2
  exit 1
fi

if [ "$build" = "1" ]; then
  cargo build --release --locked -p tryggdel-bench
fi
lifecycle=target/release/bench-lifecycle
[ -x "$lifecycle" ] || { echo "error: $lifecycle is missing: build it with cargo build --release -p tryggdel-bench" >&2; exit 1; }

# The same server, a fresh database for pgbench.
base="${url%%\?*}"
query="${url#"$base"}"
db="tryggdel_bench_pgbench_$$"
db_url="${base%/*}/${db}${query}"
workdir="$(mktemp -d)"
cleanup() {
  psql "$url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$workdir"
}
trap cleanup EXIT
psql "$url" -qc "CREATE DATABASE $db" >/dev/null
psql "$db_url" -qc "CREATE TABLE bench_insert (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now())" >/dev/null
echo "INSERT INTO bench_insert (payload) VALUES ('tryggdel benchmark');" > "$workdir/insert.sql"

threads="$(nproc)"
[ "$threads" -gt "$concurrency" ] && threads="$concurrency"
echo "== database ceiling: pgbench, one INSERT per transaction, $concurrency clients, $threads threads, ${duration} s =="
echo "\$ pgbench -n -M prepared -c $concurrency -j $threads -T $duration -f insert.sql <fresh database>"
"$pgbench" -n -M prepared -c "$concurrency" -j "$threads" -T "$duration" -f "$workdir/insert.sql" "$db_url" | tee "$workdir/pgbench.out"
tps="$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)/\1/p' "$workdir/pgbench.out")"
[ -n "$tps" ] || { echo "error: could not read pgbench's tps" >&2; exit 1; }
psql "$url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null

echo
echo "== the lifecycle: $concurrency users, ${duration} s =="
echo "\$ $lifecycle --concurrency $concurrency --duration $duration --postgres-url <url> ${extra[*]:-}"
status=0
"$lifecycle" --concurrency "$concurrency" --duration "$duration" --postgres-url "$url" "${extra[@]}" | tee "$workdir/lifecycle.out" || status=$?
result="$(grep '^RESULT bench=lifecycle' "$workdir/lifecycle.out" || true)"
[ -n "$result" ] || { echo "error: bench-lifecycle printed no result" >&2; exit 1; }
field() { printf '%s\n' "$result" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
commits="$(field commits_per_s)"
writes="$(field write_xacts_per_s)"
approve_p99="$(field approve_p99_ms)"
rate="$(field lifecycles_per_s)"

echo
echo "== summary (same machine, same PostgreSQL, same run) =="
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1024/1024}' /proc/meminfo) memory"
echo "pgbench one-INSERT transactions/s at $concurrency clients: $tps"
echo "lifecycles/s at $concurrency users: $rate"
echo "writing transactions/s caused by the lifecycle: $writes"
echo "xact_commit/s in the lifecycle's databases (read-only statements included): $commits"
awk -v w="$writes" -v c="$commits" -v t="$tps" -v a="$approve_p99" -v n="$concurrency" 'BEGIN {
  ratio = w / t
  printf "ratio lifecycle writing transactions/s ÷ pgbench tps: %.3f (target ≥ 0.5): %s\n", ratio, (ratio >= 0.5 ? "MET" : sprintf("MISSED by %.0f %%", (0.5 - ratio) / 0.5 * 100))
  printf "(for comparison, xact_commit/s ÷ pgbench tps: %.3f)\n", c / t
  printf "Approve p99: %.2f ms at %d users (target < 25 ms): %s\n", a, n, (a < 25 ? "MET" : sprintf("MISSED by %.1f ms", a - 25))
}'
exit "$status"

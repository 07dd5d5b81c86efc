#!/usr/bin/env bash
# Scale-out: two instances of each service as separate processes against one PostgreSQL, the
# lifecycle load across them, the audit sequencer killed (SIGKILL) and restarted part-way, and
# the databases checked afterwards for lost, duplicated or out-of-order audit entries and
# deliveries sent twice. Fresh databases, dropped at the end.
#
#   scripts/bench-scale-out.sh [bench-scale-out arguments]   e.g. --concurrency 32 --duration 30
#
#   Defaults: postgres://postgres@127.0.0.1:5432/test (or TRYGGDEL_BENCH_POSTGRES_URL); see
#   target/release/bench-scale-out --help for every option.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p tryggdel-bench
exec target/release/bench-scale-out "$@"

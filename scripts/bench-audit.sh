#!/usr/bin/env bash
# The audit log's benchmarks: appends per second through the service with group commit,
# inclusion/consistency proof latency at 1 M and 10 M entries, and export verification next to
# raw SHA-256, on PostgreSQL (fresh databases, dropped at the end).
#
#   scripts/bench-audit.sh [bench-audit arguments]   e.g. --service-proof-sizes 1000000,10000000
#
#   Defaults: postgres://postgres@127.0.0.1:5432/test (or TRYGGDEL_BENCH_POSTGRES_URL); see
#   target/release/bench-audit --help for every option.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p tryggdel-bench
exec target/release/bench-audit "$@"

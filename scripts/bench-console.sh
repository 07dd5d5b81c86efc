#!/usr/bin/env bash
# The console's benchmark: server time (the console's Server-Timing) to render the caseworker's
# list and the decision queue with 10,000 disclosures in the organisation, and Approve (a form
# post) to the row arriving on an open police inbox. Needs a quiet machine.
#
#   scripts/bench-console.sh                      # SQLite files (the embedded default)
#   scripts/bench-console.sh --backend postgres   # fresh databases on 127.0.0.1:5432
#
#   target/release/bench-console --help for every option.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p tryggdel-bench --bin bench-console
exec target/release/bench-console "$@"

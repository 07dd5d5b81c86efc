#!/usr/bin/env bash
# The test command: every test on SQLite, the PostgreSQL suite when a server is reachable, the
# console's browser suite when Chromium and Node are there, and a short chaos run (PostgreSQL
# stopped under load) when the PostgreSQL server binaries are installed.
#
#   TRYGGDEL_TEST_POSTGRES_URL  admin URL of the PostgreSQL server for tests
#                               (default postgres://postgres@127.0.0.1:5432/test); each test
#                               creates its own fresh database there and drops it afterwards.
#   TRYGGDEL_REQUIRE_POSTGRES=1 fail instead of skipping when PostgreSQL is unreachable, or when
#                               the chaos run finds no initdb (CI).
#   TRYGGDEL_REQUIRE_BROWSER=1  fail instead of skipping when the console's browser suite
#                               (tests/browser: Chromium, Node, Playwright) or its OpenID Connect
#                               suite (services/console/tests/oidc: Node, oidc-provider) cannot
#                               run (CI).
#
# The browser suite needs Debian's chromium and the suite's npm packages: as root on Debian
# this installs chromium when it is missing, and runs `npm ci` for the suite when npm is there
# and its packages are missing or older than its lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${TRYGGDEL_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the browser suite"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
    echo "warning: could not install chromium; the browser suite will not run" >&2
fi
installed=tests/browser/node_modules/.package-lock.json
if { [ ! -f "$installed" ] || [ tests/browser/package-lock.json -nt "$installed" ]; } && command -v npm >/dev/null 2>&1; then
  echo "installing the browser suite's npm packages (tests/browser/package-lock.json)"
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null ||
    echo "warning: npm ci failed in tests/browser; the browser suite will not run" >&2
fi
oidc_installed=services/console/tests/oidc/node_modules/.package-lock.json
if { [ ! -f "$oidc_installed" ] || [ services/console/tests/oidc/package-lock.json -nt "$oidc_installed" ]; } && command -v npm >/dev/null 2>&1; then
  echo "installing the OpenID Connect suite's npm packages (services/console/tests/oidc/package-lock.json)"
  npm ci --prefix services/console/tests/oidc --no-audit --no-fund --loglevel=error >/dev/null ||
    echo "warning: npm ci failed in services/console/tests/oidc; the OpenID Connect suite will not run" >&2
fi

admin_url="${TRYGGDEL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
require="${TRYGGDEL_REQUIRE_POSTGRES:-0}"

postgres=0
if command -v psql >/dev/null 2>&1 && psql "$admin_url" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  postgres=1
elif [ "$require" = "1" ]; then
  echo "error: TRYGGDEL_REQUIRE_POSTGRES=1 but PostgreSQL at $admin_url is unreachable" >&2
  exit 1
fi

run_id="$(date +%s)_$$"
cleanup() {
  if [ "$postgres" = "1" ]; then
    psql "$admin_url" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'tryggdel_test_${run_id}_%'" 2>/dev/null |
      while read -r name; do
        [ -n "$name" ] && psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true
      done
  fi
}
trap cleanup EXIT

if [ "$postgres" = "1" ]; then
  export TRYGGDEL_TEST_POSTGRES_URL="$admin_url"
  export TRYGGDEL_TEST_RUN_ID="$run_id"
else
  unset TRYGGDEL_TEST_POSTGRES_URL
fi

log="$(mktemp)"
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
if [ "${PIPESTATUS[0]:-$status}" != "0" ] || grep -q '^test result: FAILED' "$log"; then
  status=1
fi

# A short chaos run: PostgreSQL stopped (fast, then immediate) for 5 s under load, on a
# throw-away cluster of its own (initdb on a free port; never the server above). cargo test built
# the binary; under TRYGGDEL_REQUIRE_POSTGRES=1 a missing initdb fails it, otherwise it says it
# did not run and how to run it. The full run: BENCHMARKS.md, section "Database outages".
chaos_log="$(mktemp)"
if [ -x target/debug/chaos ]; then
  if TRYGGDEL_REQUIRE_POSTGRES="$require" target/debug/chaos --short >"$chaos_log" 2>&1; then
    grep -E '^(chaos|RESULT|  )' "$chaos_log" || true
  else
    cat "$chaos_log"
    echo "chaos run: FAILED (its output is above)"
    status=1
  fi
else
  echo "chaos run: FAILED: target/debug/chaos was not built"
  status=1
fi
rm -f "$chaos_log"

postgres_tests=$(grep -cE '^test postgres::[a-z_:]+ \.\.\. ok$' "$log" || true)
echo
if [ "$postgres" = "1" ]; then
  echo "PostgreSQL suite: ${postgres_tests} tests ran against ${admin_url} (a fresh database each)"
  if [ "$postgres_tests" = "0" ]; then
    echo "error: PostgreSQL was reachable but no PostgreSQL test ran" >&2
    status=1
  fi
else
  echo "NOTE: the PostgreSQL suite did NOT run: no server answered at ${admin_url}."
  echo "      Only SQLite was tested. To run it, start PostgreSQL and run:"
  echo "      TRYGGDEL_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/DB scripts/test.sh"
fi
# tests/tests/browser.rs says one of these lines whether or not libtest captures its output.
if grep -q '^browser suite: passed' "$log"; then
  grep -m1 '^browser suite: passed' "$log"
elif grep -q '^browser suite did NOT run' "$log"; then
  echo "NOTE: the $(grep -m1 '^browser suite did NOT run' "$log")"
elif grep -qE '^test the_console_in_chromium[a-z_]* \.\.\. FAILED$' "$log"; then
  echo "browser suite: FAILED (its output is above)"
else
  echo "NOTE: the browser suite did NOT run: the test run ended before it (tests/tests/browser.rs)."
fi
# services/console/tests/oidc.rs says this line when it could not run.
if grep -q '^OpenID Connect suite did NOT run' "$log"; then
  echo "NOTE: the $(grep -m1 '^OpenID Connect suite did NOT run' "$log")"
fi
rm -f "$log"
exit "$status"

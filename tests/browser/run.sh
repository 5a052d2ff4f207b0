#!/usr/bin/env bash
# The web console in a real browser: builds tokend (debug), starts it on a
# free port with a fresh SQLite database, and runs the Playwright tests
# (playwright-core driving Debian's /usr/bin/chromium, headless) against it.
# They write the screenshots of docs/screenshots/. Access tokens live 6 s,
# so that the console's refresh before expiry happens during the tests.
#
# Needs node, npm and chromium (`apt-get install chromium`); installs the npm
# packages from package-lock.json when they are missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

CHROMIUM="${TOKEND_CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    echo "tests/browser: $CHROMIUM not found: apt-get install chromium" >&2
    exit 1
fi
if [ ! -d "$here/node_modules/playwright-core" ]; then
    (cd "$here" && npm ci --no-audit --no-fund)
fi

cargo build -q --bin tokend
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
admin_password="browser-admin-$RANDOM-$RANDOM"
TOKEND_BIND="127.0.0.1:$port" \
TOKEND_DATA_DIR="$work" \
TOKEND_ADMIN_PASSWORD="$admin_password" \
TOKEND_LOGIN_MAX_FAILURES=3 \
TOKEND_ACCESS_TOKEN_LIFETIME=6s \
TOKEND_CONFIG="$work/none.toml" \
    "$root/target/debug/tokend" serve >"$work/tokend.log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$work/tokend.log" >&2; exit 1; fi
    sleep 0.1
done

cd "$here"
if ! TOKEND_URL="http://127.0.0.1:$port" TOKEND_ADMIN_PASSWORD="$admin_password" \
    TOKEND_CHROMIUM="$CHROMIUM" TOKEND_SCREENSHOTS="$root/docs/screenshots" \
    node --test --test-concurrency=1 console.test.mjs; then
    echo "== tokend's log" >&2
    tail -n 50 "$work/tokend.log" >&2
    exit 1
fi

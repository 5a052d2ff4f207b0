#!/usr/bin/env bash
# Archive under load: fills the registry with dead tokens (bulk insert), then
# archives them through the admin API while wrk keeps refresh and obtain
# busy, and reports how long the archive took and the worst latency token
# issue saw meanwhile, next to the same load without an archive.
#
#   bench/archive.sh                  1 000 000 dead rows, SQLite
#   bench/archive.sh --rows 200000
#   TOKEND_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/archive.sh
#   bench/archive.sh --smoke          20 000 rows on a debug build (CI)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROWS=1000000
BASELINE=5
REFRESH_CONNECTIONS=16
OBTAIN_CONNECTIONS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) PROFILE=dev ROWS=20000 BASELINE=1 ;;
        --rows) ROWS="$2"; shift ;;
        --release) PROFILE=release ;;
        --no-build) BUILD=no ;;
        -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

ensure_wrk
build
fresh_database
create_user

log "filling the registry with $ROWS dead rows"
"$TOOL" fill --user "$BENCH_USER" --rows "$ROWS" --expired-percent 100 2>>"$WORK/cli.log" \
    || die "the registry fill failed (see $WORK/cli.log)"

# Archiving a million rows through the admin API takes longer than the
# default request_timeout (30 s) would let the call run.
export TOKEND_REQUEST_TIMEOUT="${TOKEND_REQUEST_TIMEOUT:-1h}"
start_server
read -r ACCESS REFRESH <<<"$(obtain_pair "$BENCH_USER" "$BENCH_PASSWORD")"
read -r ADMIN_ACCESS _ <<<"$(obtain_pair admin "$ADMIN_PASSWORD")"
export BENCH_ACCESS="$ACCESS" BENCH_REFRESH="$REFRESH"

log "baseline: refresh and obtain without an archive"
wrk -t1 -c"$OBTAIN_CONNECTIONS" -d"$BASELINE"s --timeout 30s -s "$BENCH_DIR/obtain.lua" \
    "$BASE/api/v1/token/obtain" >"$WORK/obtain-base" 2>&1 &
OBTAIN_BASE=$!
BASE_LINE="$(wrk_run refresh /api/v1/token/refresh "$BASELINE" "$REFRESH_CONNECTIONS")"
wait "$OBTAIN_BASE"

log "archive under load"
# wrk stops and reports on SIGINT; 600 s is only an upper bound.
wrk -t1 -c"$REFRESH_CONNECTIONS" -d600s --timeout 30s -s "$BENCH_DIR/refresh.lua" \
    "$BASE/api/v1/token/refresh" >"$WORK/refresh-load" 2>&1 &
REFRESH_WRK=$!
wrk -t1 -c"$OBTAIN_CONNECTIONS" -d600s --timeout 30s -s "$BENCH_DIR/obtain.lua" \
    "$BASE/api/v1/token/obtain" >"$WORK/obtain-load" 2>&1 &
OBTAIN_WRK=$!
sleep 1
START=$(date +%s.%N)
ANSWER="$(curl -fsS --max-time 3600 -H "Authorization: Bearer $ADMIN_ACCESS" \
    -H 'Content-Type: application/json' -d '{}' "$BASE/api/v1/registry/archive")" \
    || die "the archive call failed"
END=$(date +%s.%N)
sleep 1
kill -INT "$REFRESH_WRK" "$OBTAIN_WRK"
wait "$REFRESH_WRK" "$OBTAIN_WRK" || true

LOAD_LINE="$(sed -n 's/^RESULT //p' "$WORK/refresh-load")"
OBTAIN_LINE="$(sed -n 's/^RESULT //p' "$WORK/obtain-load")"
OBTAIN_BASE_LINE="$(sed -n 's/^RESULT //p' "$WORK/obtain-base")"
[ -n "$BASE_LINE" ] && [ -n "$LOAD_LINE" ] && [ -n "$OBTAIN_LINE" ] || die "wrk reported nothing"
ARCHIVED="$(echo "$ANSWER" | sed -nE 's/.*"archived":([0-9]+).*/\1/p')"
SECONDS_TAKEN="$(awk -v a="$START" -v b="$END" 'BEGIN { printf "%.1f", b - a }')"

ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }
row() {
    printf '%-28s %9s %9s %9s %9s %8s\n' "$1" "$(field rps "$2")" "$(ms "$(field p50_us "$2")")" \
        "$(ms "$(field p99_us "$2")")" "$(ms "$(field max_us "$2")")" "$(field errors "$2")"
}

echo
echo "tokend $PROFILE, $DB_NAME: archive of $ROWS dead registry rows under load"
echo "archived $ARCHIVED rows in $SECONDS_TAKEN s" \
    "($(awk -v n="$ARCHIVED" -v s="$SECONDS_TAKEN" 'BEGIN { if (s > 0) printf "%.0f", n / s }') rows/s)"
echo
printf '%-28s %9s %9s %9s %9s %8s\n' load "req/s" "p50 ms" "p99 ms" "max ms" "non-2xx"
row "refresh -c$REFRESH_CONNECTIONS, no archive" "$BASE_LINE"
row "refresh -c$REFRESH_CONNECTIONS, during archive" "$LOAD_LINE"
row "obtain -c$OBTAIN_CONNECTIONS, no archive" "$OBTAIN_BASE_LINE"
row "obtain -c$OBTAIN_CONNECTIONS, during archive" "$OBTAIN_LINE"

[ "$ARCHIVED" = "$ROWS" ] || die "archived $ARCHIVED rows, expected $ROWS"
for line in "$BASE_LINE" "$LOAD_LINE" "$OBTAIN_LINE" "$OBTAIN_BASE_LINE"; do
    [ "$(field errors "$line")" = 0 ] || die "some answers failed"
done

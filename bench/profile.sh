#!/usr/bin/env bash
# Where a refresh's CPU goes: starts a release build on a fresh database,
# loads POST /api/v1/token/refresh with wrk (16 connections, rotation as
# TOKEND_ROTATE_REFRESH_TOKENS says, off by default) while `perf record`
# samples the server, and prints the share of the server's CPU by the
# library or part of tokend it was spent in, then the top symbols.
#
#   bench/profile.sh                 SQLite
#   TOKEND_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/profile.sh
#   bench/profile.sh --seconds 20    sample longer (default 10)
#   ROTATE=true bench/profile.sh     rotation on: each connection follows its own chain
#   PERF_DATA=/tmp/p.data bench/profile.sh   keep the samples
#   PERF_CALL_GRAPH="--call-graph dwarf,16384" bench/profile.sh
#                                    call graphs through libc and SQLite, which
#                                    keep no frame pointers (default -g)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SECONDS_TO_SAMPLE=10
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_TO_SAMPLE="$2"; shift ;;
        --no-build) BUILD=no ;;
        -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
command -v perf >/dev/null || die "perf is missing (Debian's linux-perf package)"

ensure_wrk
build
fresh_database
export TOKEND_ROTATE_REFRESH_TOKENS="${ROTATE:-false}"
create_user
start_server
read -r _ REFRESH <<<"$(obtain_pair "$BENCH_USER" "$BENCH_PASSWORD")"
export BENCH_REFRESH="$REFRESH"
# With rotation, each wrk connection follows a chain of its own, from a
# fresh pair: the warm-up uses its chains up, so the sampled run gets new
# ones (presented again, a rotated token is refused, and that path is not
# the one to profile).
script=refresh
[ "$TOKEND_ROTATE_REFRESH_TOKENS" = true ] && script=rotate
export BENCH_REFRESH_TOKENS=""
[ "$script" = rotate ] && BENCH_REFRESH_TOKENS="$(rotation_chains 16)"
wrk_run "$script" /api/v1/token/refresh 2 16 >/dev/null
[ "$script" = rotate ] && BENCH_REFRESH_TOKENS="$(rotation_chains 16)"
# PERF_DATA=FILE keeps the samples, for perf report of your own.
PERF_DATA="${PERF_DATA:-$WORK/perf.data}"
perf record -q -F 999 ${PERF_CALL_GRAPH:--g} -p "$SERVER_PID" -o "$PERF_DATA" -- sleep "$SECONDS_TO_SAMPLE" \
    2>/dev/null &
PERF=$!
line="$(wrk_run "$script" /api/v1/token/refresh "$SECONDS_TO_SAMPLE" 16)"
wait "$PERF"

echo "refresh on $DB_NAME (rotation $TOKEND_ROTATE_REFRESH_TOKENS): $(field rps "$line") req/s," \
    "p99 $(field p99_us "$line") us, $(field errors "$line") errors"
echo
echo "share of the server's CPU by where it was spent (self time):"
perf report -i "$PERF_DATA" --no-children --sort dso --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | head -n 12
echo
echo "top symbols (self time):"
perf report -i "$PERF_DATA" --no-children --sort sym --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | head -n 25 | cut -c1-120

#!/usr/bin/env bash
# Load benchmark of tokend: starts a release build on a fresh database,
# creates a user, and loads each scenario with wrk (1 thread, 16 connections,
# 10 s after a warm-up). Prints requests/s, p50/p99 latency, failed answers
# and the server's peak RSS per scenario, each throughput as a ratio of
# /health, and whether the targets (issues 7 and 19) are met.
#
#   bench/run.sh                         SQLite
#   TOKEND_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/run.sh
#                                        PostgreSQL (a fresh database is created
#                                        on that server and dropped at the end)
#   bench/run.sh --registry-rows 1000000 also reruns refresh/verify/me after
#                                        bulk-filling the registry (half dead)
#   bench/run.sh --smoke                 1 s per scenario on a debug build: only
#                                        proves the benchmark works (CI)
#   bench/run.sh --no-metrics            the same with metrics off, to compare
#                                        (TOKEND_METRICS=false)
#
# Exits non-zero when a scenario fails or gets error answers; a missed
# performance target is reported, not an error.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=10
WARMUP=3
CONNECTIONS=16
REGISTRY_ROWS=0
ARGON2_SECONDS=5
SMOKE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 PROFILE=dev DURATION=1 WARMUP=0 ARGON2_SECONDS=1 ;;
        --registry-rows) REGISTRY_ROWS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --connections) CONNECTIONS="$2"; shift ;;
        --release) PROFILE=release ;;
        --no-metrics) export TOKEND_METRICS=false ;;
        --no-build) BUILD=no ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

ensure_wrk
build
fresh_database
create_user

CORES="$(nproc)"

start_server
read -r ACCESS REFRESH <<<"$(obtain_pair "$BENCH_USER" "$BENCH_PASSWORD")"
[ -n "$ACCESS" ] && [ -n "$REFRESH" ] || die "no token pair"
export BENCH_ACCESS="$ACCESS" BENCH_REFRESH="$REFRESH"

declare -A RPS P50 P99 ERR RSS CPU STEAL
ORDER=()
FAILED=0

# record NAME LINE RSS CPU_US_PER_REQUEST STEAL_PERCENT
record() {
    local name="$1" line="$2"
    if [ -z "$line" ]; then
        log "bench: scenario $name produced no result"
        FAILED=1
        return
    fi
    ORDER+=("$name")
    RPS[$name]="$(field rps "$line")"
    P50[$name]="$(field p50_us "$line")"
    P99[$name]="$(field p99_us "$line")"
    ERR[$name]="$(field errors "$line")"
    RSS[$name]="$3"
    CPU[$name]="${4:--}"
    STEAL[$name]="${5:--}"
    [ "${ERR[$name]}" = 0 ] || FAILED=1
}

# scenario NAME SCRIPT PATH
scenario() {
    local name="$1" script="$2" path="$3" line
    log "scenario $name"
    [ "$WARMUP" -gt 0 ] && wrk_run "$script" "$path" "$WARMUP" "$CONNECTIONS" >/dev/null
    reset_peak_rss
    local cpu_before machine_before
    cpu_before="$(cpu_ticks)"
    machine_before="$(machine_ticks)"
    line="$(wrk_run "$script" "$path" "$DURATION" "$CONNECTIONS")"
    record "$name" "$line" "$(peak_rss_mib)" \
        "$(cpu_per_request "$cpu_before" "$(cpu_ticks)" "$(field requests "$line")")" \
        "$(steal_share "$machine_before" "$(machine_ticks)")"
}

# `me` while `obtain` saturates password hashing.
me_during_obtain() {
    local name="me+obtain" line
    log "scenario $name"
    reset_peak_rss
    wrk_run obtain /api/v1/token/obtain "$((DURATION + 2))" "$CONNECTIONS" >"$WORK/obtain-bg" &
    local bg=$!
    sleep 1
    line="$(wrk_run me /api/v1/me "$DURATION" "$CONNECTIONS")"
    wait "$bg"
    record "$name" "$line" "$(peak_rss_mib)"
    local obtain_line
    obtain_line="$(cat "$WORK/obtain-bg")"
    OBTAIN_BG_RPS="$(field rps "$obtain_line")"
    [ "$(field errors "$obtain_line")" = 0 ] || FAILED=1
}

scenario health health /health
# The hashing rate of this machine, measured right before and right after
# the obtain scenario (with the server idle) so that both see the same
# machine: a shared virtual machine's speed drifts (117 and 138
# verifications/s one obtain run apart, once), and the ratio takes the mean.
argon2_rate() {
    log "measuring the argon2id verify rate"
    "$TOOL" argon2 --seconds "$ARGON2_SECONDS" | awk '{print $1}'
}
ARGON2_BEFORE="$(argon2_rate)"
scenario obtain obtain /api/v1/token/obtain
ARGON2_AFTER="$(argon2_rate)"
ARGON2_RATE="$(awk -v a="$ARGON2_BEFORE" -v b="$ARGON2_AFTER" 'BEGIN { printf "%.1f", (a + b) / 2 }')"
scenario refresh refresh /api/v1/token/refresh
scenario verify verify /api/v1/token/verify
scenario me me /api/v1/me
me_during_obtain

# Refresh with rotation on: the server restarted with rotation, each wrk
# connection following its own chain from a fresh pair.
rotating_refresh() {
    local name="refresh+rotate" line cpu_before machine_before
    stop_server
    TOKEND_ROTATE_REFRESH_TOKENS=true start_server
    log "scenario $name"
    if [ "$WARMUP" -gt 0 ]; then
        BENCH_REFRESH_TOKENS="$(rotation_chains "$CONNECTIONS")" \
            wrk_run rotate /api/v1/token/refresh "$WARMUP" "$CONNECTIONS" >/dev/null
    fi
    export BENCH_REFRESH_TOKENS
    BENCH_REFRESH_TOKENS="$(rotation_chains "$CONNECTIONS")"
    reset_peak_rss
    cpu_before="$(cpu_ticks)"
    machine_before="$(machine_ticks)"
    line="$(wrk_run rotate /api/v1/token/refresh "$DURATION" "$CONNECTIONS")"
    record "$name" "$line" "$(peak_rss_mib)" \
        "$(cpu_per_request "$cpu_before" "$(cpu_ticks)" "$(field requests "$line")")" \
        "$(steal_share "$machine_before" "$(machine_ticks)")"
    stop_server
    start_server
}
rotating_refresh

if [ "$REGISTRY_ROWS" -gt 0 ]; then
    log "filling the registry with $REGISTRY_ROWS rows"
    "$TOOL" fill --user "$BENCH_USER" --rows "$REGISTRY_ROWS" 2>>"$WORK/cli.log" \
        || die "the registry fill failed (see $WORK/cli.log)"
    for s in refresh verify me; do
        path=/api/v1/me
        [ "$s" = me ] || path="/api/v1/token/$s"
        scenario "$s@$REGISTRY_ROWS" "$s" "$path"
    done
fi

# ---- report ----------------------------------------------------------------
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
# check LABEL VALUE OP LIMIT
check() {
    local verdict
    verdict="$(awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN {
        ok = (op == ">=") ? (v >= l) : (v <= l); print ok ? "met" : "MISSED" }')"
    printf '  %-44s %8s %s %-6s %s\n' "$1" "$2" "$3" "$4" "$verdict"
}

echo
echo "tokend $PROFILE, $DB_NAME, $CORES cores, wrk -t1 -c$CONNECTIONS, ${DURATION}s per scenario after ${WARMUP}s warm-up"
echo "argon2id verify rate of this machine ($CORES threads): $ARGON2_RATE/s (${ARGON2_BEFORE}/s before obtain, ${ARGON2_AFTER}/s after)"
echo
printf '%-20s %10s %9s %9s %8s %13s %12s %8s\n' scenario "req/s" "p50 ms" "p99 ms" "non-2xx" \
    "peak RSS MiB" "CPU us/req" "steal %"
for name in "${ORDER[@]}"; do
    flag=""
    [ "${ERR[$name]}" = 0 ] || flag="  <-- FAILED ANSWERS"
    printf '%-20s %10s %9s %9s %8s %13s %12s %8s%s\n' "$name" "${RPS[$name]}" "$(ms "${P50[$name]}")" \
        "$(ms "${P99[$name]}")" "${ERR[$name]}" "${RSS[$name]}" "${CPU[$name]}" "${STEAL[$name]}" "$flag"
done
echo "(CPU us/req: the server's CPU time per answered request, all cores;"
echo " steal %: the machine's time the hypervisor took meanwhile, from /proc/stat)"
[ -n "${OBTAIN_BG_RPS:-}" ] && echo "(during me+obtain, obtain ran at ${OBTAIN_BG_RPS} req/s)"

H="${RPS[health]:-0}"
echo
echo "throughput as a ratio of /health:"
for name in "${ORDER[@]}"; do
    [ "$name" = health ] && continue
    printf '  %-20s %s\n' "$name" "$(ratio "${RPS[$name]}" "$H")"
done

echo
if [ "$SMOKE" = 1 ]; then
    echo "targets: not judged in smoke mode (debug build, 1 s per scenario)"
else
    echo "targets:"
    # Issue 19's targets: PostgreSQL pays a round trip per statement. The
    # refresh p99 and rotation targets are SQLite's.
    if [ "$DB_NAME" = SQLite ]; then
        READ_TARGET=0.5 REFRESH_TARGET=0.25 ROTATE_TARGET=0.12 P99_TARGET=5
    else
        READ_TARGET=0.25 REFRESH_TARGET=0.06 ROTATE_TARGET="" P99_TARGET=""
    fi
    check "me / health" "$(ratio "${RPS[me]:-0}" "$H")" ">=" "$READ_TARGET"
    check "verify / health" "$(ratio "${RPS[verify]:-0}" "$H")" ">=" "$READ_TARGET"
    check "refresh / health" "$(ratio "${RPS[refresh]:-0}" "$H")" ">=" "$REFRESH_TARGET"
    if [ -n "$P99_TARGET" ]; then
        check "refresh p99 (ms)" "$(ms "${P99[refresh]:-0}")" "<=" "$P99_TARGET"
    fi
    if [ -n "$ROTATE_TARGET" ]; then
        check "refresh with rotation / health" "$(ratio "${RPS[refresh+rotate]:-0}" "$H")" ">=" "$ROTATE_TARGET"
    fi
    check "obtain / argon2id verify rate" "$(ratio "${RPS[obtain]:-0}" "$ARGON2_RATE")" ">=" 0.95
    check "me p99 while obtain saturated (ms)" "$(ms "${P99[me+obtain]:-0}")" "<=" 20
    if [ "$REGISTRY_ROWS" -gt 0 ]; then
        for s in refresh me verify; do
            check "$s with $REGISTRY_ROWS rows / empty registry" \
                "$(ratio "${RPS[$s@$REGISTRY_ROWS]:-0}" "${RPS[$s]:-0}")" ">=" 0.8
        done
    fi
    PEAK="$(for name in "${ORDER[@]}"; do echo "${RSS[$name]}"; done | sort -n | tail -n1)"
    check "peak RSS of the server (MiB)" "$PEAK" "<=" 64
fi

if [ "$FAILED" != 0 ]; then
    echo "bench: some answers failed or a scenario did not run" >&2
    exit 1
fi

# Shared by bench/run.sh and bench/archive.sh: wrk, the build, a fresh
# database, the server and its memory. Source it; it sets no options.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
export BENCH_DIR
export BENCH_USER=bench
export BENCH_PASSWORD=bench-password-1
ADMIN_PASSWORD=admin-password-1

PROFILE=release
WORK=""
SERVER_PID=""
PG_ADMIN_URL=""
PG_DB=""
BASE=""

log() { echo "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# wrk from Debian's package, installed when missing.
ensure_wrk() {
    command -v wrk >/dev/null && return
    log "installing wrk"
    if [ "$(id -u)" -ne 0 ]; then
        die "wrk is missing: install Debian's wrk package (apt-get install wrk)"
    fi
    apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null \
        || die "could not install wrk"
}

# Builds tokend and its benchmark tool (release, or dev with --smoke) and
# sets BIN and TOOL; with BUILD=no, uses the binaries already built.
build() {
    local dir
    dir="$ROOT/target/$([ "$PROFILE" = release ] && echo release || echo debug)"
    BIN="$dir/tokend"
    TOOL="$dir/tokend-bench"
    if [ "${BUILD:-yes}" = no ]; then
        [ -x "$BIN" ] && [ -x "$TOOL" ] || die "no binaries in $dir"
        return
    fi
    local flag=""
    [ "$PROFILE" = release ] && flag="--release"
    log "building tokend and tokend-bench ($PROFILE)"
    (cd "$ROOT" && cargo build -q $flag -p tokend --bin tokend && cargo build -q $flag -p tokend-bench --bin tokend-bench) || die "build failed"
}

# A scratch folder and, with TOKEND_DATABASE_URL, a fresh PostgreSQL database
# on that server (dropped at exit); SQLite otherwise. Exports the server's
# settings.
fresh_database() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/tokend-bench.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    export TOKEND_CONFIG="$WORK/none.toml"
    export TOKEND_DATA_DIR="$WORK/data"
    export TOKEND_BIND=127.0.0.1:0
    export TOKEND_ADMIN_PASSWORD="$ADMIN_PASSWORD"
    export TOKEND_ACCESS_TOKEN_LIFETIME=1h
    export TOKEND_REFRESH_TOKEN_LIFETIME=1d
    export TOKEND_ROTATE_REFRESH_TOKENS=false
    export TOKEND_LOG="${TOKEND_LOG:-warn,tokend::cli=info}"
    if [ -n "${TOKEND_DATABASE_URL:-}" ]; then
        case "$TOKEND_DATABASE_URL" in
            postgres://* | postgresql://*) ;;
            *) die "TOKEND_DATABASE_URL must be a postgres:// URL (SQLite is the default)" ;;
        esac
        command -v psql >/dev/null || die "psql is needed to create the benchmark database"
        PG_ADMIN_URL="$TOKEND_DATABASE_URL"
        PG_DB="tokend_bench_$$"
        psql -q "$PG_ADMIN_URL" -c "CREATE DATABASE $PG_DB" >/dev/null \
            || die "cannot create database $PG_DB"
        export TOKEND_DATABASE_URL="${PG_ADMIN_URL%/*}/$PG_DB"
        DB_NAME=PostgreSQL
    else
        unset TOKEND_DATABASE_URL DATABASE_URL
        DB_NAME=SQLite
    fi
}

cleanup() {
    stop_server
    if [ -n "$PG_DB" ]; then
        psql -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1
    fi
    [ -n "$WORK" ] && rm -rf "$WORK"
}

# The benchmark user (and the admin, created on the first start).
create_user() {
    echo "$BENCH_PASSWORD" | "$BIN" user add "$BENCH_USER" --password-stdin 2>>"$WORK/cli.log" \
        || die "cannot create the benchmark user (see $WORK/cli.log)"
}

# Starts the server on a free port and waits until /health answers; sets
# SERVER_PID and BASE.
start_server() {
    # One log line per request would measure the log file: off unless told.
    TOKEND_LOG="${TOKEND_LOG:-info,tokend::request=warn}" "$BIN" serve 2>"$WORK/server.log" &
    SERVER_PID=$!
    local port=""
    for _ in $(seq 1 100); do
        port="$(sed -n 's/.*tokend listening port=\([0-9]*\).*/\1/p' "$WORK/server.log" | head -n1)"
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server did not start"; }
        sleep 0.1
    done
    [ -n "$port" ] || die "the server did not report its port"
    BASE="http://127.0.0.1:$port"
    for _ in $(seq 1 50); do
        curl -fsS "$BASE/health" >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "the server does not answer /health"
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
}

# Prints the value of a string field of a JSON object (enough for tokens).
json_field() {
    sed -nE "s/.*\"$1\":\"([^\"]*)\".*/\1/p"
}

# obtain USER PASSWORD: prints "access refresh". Sent without a User-Agent,
# as wrk sends its requests: the pair is obtained by the client (the device)
# that refreshes it, as an application's tokens are.
obtain_pair() {
    local body
    body="$(curl -fsS -H 'Content-Type: application/json' -H 'User-Agent:' \
        -d "{\"username\":\"$1\",\"password\":\"$2\"}" "$BASE/api/v1/token/obtain")" \
        || die "obtain failed for $1"
    echo "$(echo "$body" | json_field access) $(echo "$body" | json_field refresh)"
}

# rotation_chains CONNECTIONS: prints the refresh tokens of CONNECTIONS + 1
# fresh pairs of the bench user, comma-separated: with rotation, each wrk
# connection follows a chain of its own (rotate.lua).
rotation_chains() {
    local heads="" pair
    for _ in $(seq 0 "$1"); do
        read -r _ pair <<<"$(obtain_pair "$BENCH_USER" "$BENCH_PASSWORD")"
        heads="$heads${heads:+,}$pair"
    done
    echo "$heads"
}

# Forgets the server's peak RSS so far (Linux: clear_refs 5).
reset_peak_rss() {
    echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || true
}

# The server's peak RSS since the last reset, in MiB.
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status" 2>/dev/null
}

# The server's CPU time so far, in clock ticks (user + system, all threads).
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0
}

# cpu_per_request BEFORE AFTER REQUESTS: server CPU microseconds per request.
cpu_per_request() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1e6 / hz / n; else print "-" }'
}

# The machine's CPU time so far, in clock ticks: "STEAL ALL" (what the
# hypervisor took from this virtual machine, and every state's together).
machine_ticks() {
    awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat 2>/dev/null \
        || echo "0 0"
}

# steal_share BEFORE AFTER: the percentage of the machine's time the
# hypervisor took between two machine_ticks; a figure measured while it was
# high says more about the neighbours than about tokend.
steal_share() {
    awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
        if (y[2] > x[2]) printf "%.1f", (y[1] - x[1]) * 100 / (y[2] - x[2]); else print "-" }'
}

# wrk_run SCRIPT PATH SECONDS CONNECTIONS: runs wrk and prints its RESULT line
# (without the word RESULT).
wrk_run() {
    wrk -t1 -c"$4" -d"$3"s --timeout 10s -s "$BENCH_DIR/$1.lua" "$BASE$2" 2>&1 \
        | sed -n 's/^RESULT //p'
}

# field NAME LINE: the value of NAME=... in a RESULT line.
field() {
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

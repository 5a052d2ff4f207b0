#!/usr/bin/env bash
# What a login costs PostgreSQL on the cores hashing passwords: runs, with
# pgbench at obtain's rate, the statements of a login in three shapes while
# two argon2id threads hash at nice 10 (as tokend's do), and prints
# PostgreSQL's CPU per login (all its processes, user + system).
#
#   TOKEND_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres bench/pg-login-floor.sh
#   ... --rate 105 --seconds 20 --no-build
#
# The shapes:
#   today        tokend's: the pre-count; the admission (one call of
#                tokend_login_admit); the user's row; the forgetting; the
#                pair's rows. Five round trips, three commits.
#   two-calls    the least the schema allows: the admission in one call,
#                then the forgetting and the pair's rows in one call of a
#                function made for this run. Two round trips, two commits.
#   two-commits  two one-row INSERTs, each its own commit: no design that
#                records the attempt before the hash (so that every replica
#                counts it) and the pair after it commits less.
#
# obtain reaches 0.95 × argon2id only if everything a login costs besides
# the hash, tokend's CPU and PostgreSQL's together, stays under about a
# twentieth of a hash (README, Performance).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

RATE=105
SECONDS_EACH=20
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) RATE="$2"; shift ;;
        --seconds) SECONDS_EACH="$2"; shift ;;
        --no-build) BUILD=no ;;
        -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
case "${TOKEND_DATABASE_URL:-}" in
    postgres://* | postgresql://*) ;;
    *) die "set TOKEND_DATABASE_URL to a PostgreSQL server's URL" ;;
esac
command -v pgbench >/dev/null || die "pgbench is missing (Debian's postgresql-client package)"

build
fresh_database
"$BIN" migrate 2>>"$WORK/cli.log" >/dev/null || die "migration failed (see $WORK/cli.log)"
create_user
db() { psql -qAt "$TOKEND_DATABASE_URL" "$@"; }
USER_ID="$(db -c "SELECT id FROM users WHERE username = '$BENCH_USER'")"

# The forgetting and the pair's rows of two-calls, as one function.
db >/dev/null <<SQL
CREATE FUNCTION floor_sign_in(n bigint, m bigint, attempt uuid) RETURNS void
LANGUAGE plpgsql VOLATILE AS \$\$
DECLARE r uuid := md5('r' || n || ':' || m)::uuid;
BEGIN
    DELETE FROM login_failures WHERE username = '$BENCH_USER'
        AND (id = attempt OR (NOT pending AND id < attempt));
    INSERT INTO tokens (id, jti, token_type, parent_id, root_id, user_id, issued_at, expires_at)
    VALUES (r, md5('rj' || n || ':' || m)::uuid, 'refresh', NULL, r, '$USER_ID', now(),
            now() + interval '1 day'),
           (md5('x' || n || ':' || m)::uuid, md5('xj' || n || ':' || m)::uuid, 'access', r, r,
            '$USER_ID', now(), now() + interval '1 hour');
END \$\$;
CREATE TABLE floor_rows (v int);
SQL

# Random ids from two numbers, so that every transaction writes new rows.
IDS='\set n random(1, 2000000000)
\set m random(1, 2000000000)'
ATTEMPT="md5('a' || :n || ':' || :m)::uuid"
ROOT="md5('r' || :n || ':' || :m)::uuid"
ADMIT="SELECT * FROM tokend_login_admit(11, 12, '$BENCH_USER', '127.0.0.1', \
now() - interval '5 minutes', now() - interval '1 minute', $ATTEMPT, now());"

cat >"$WORK/today.sql" <<SQL
$IDS
SELECT * FROM tokend_login_attempts('$BENCH_USER', '127.0.0.1', now() - interval '5 minutes', now() - interval '1 minute');
$ADMIT
SELECT * FROM users WHERE username_key = '$BENCH_USER';
DELETE FROM login_failures WHERE username = '$BENCH_USER' AND (id = $ATTEMPT OR (NOT pending AND id < $ATTEMPT));
INSERT INTO tokens (id, jti, token_type, parent_id, root_id, user_id, issued_at, expires_at) VALUES ($ROOT, md5('rj' || :n || ':' || :m)::uuid, 'refresh', NULL, $ROOT, '$USER_ID', now(), now() + interval '1 day'), (md5('x' || :n || ':' || :m)::uuid, md5('xj' || :n || ':' || :m)::uuid, 'access', $ROOT, $ROOT, '$USER_ID', now(), now() + interval '1 hour');
SQL
cat >"$WORK/two-calls.sql" <<SQL
$IDS
$ADMIT
SELECT floor_sign_in(:n, :m, $ATTEMPT);
SQL
cat >"$WORK/two-commits.sql" <<SQL
INSERT INTO floor_rows VALUES (1);
INSERT INTO floor_rows VALUES (2);
SQL

# PostgreSQL's CPU so far, in clock ticks: every process of the server, and
# the processes of it that ended (the postmaster's children's time).
pg_ticks() {
    local sum=0 pid stat
    for pid in $(pgrep -x postgres); do
        read -r -a stat <"/proc/$pid/stat" 2>/dev/null || continue
        sum=$((sum + stat[13] + stat[14] + stat[15] + stat[16]))
    done
    echo "$sum"
}

echo "PostgreSQL's CPU per login, at $RATE logins a second, two clients," \
    "two argon2id threads hashing at nice 10 ($SECONDS_EACH s each):"
for shape in today two-calls two-commits; do
    db -c "TRUNCATE login_failures" -c "VACUUM ANALYZE login_failures, tokens"
    nice -n 10 "$TOOL" argon2 --threads 2 --seconds $((SECONDS_EACH + 2)) >"$WORK/argon2.out" 2>&1 &
    hashing=$!
    sleep 1
    before="$(pg_ticks)"
    out="$(pgbench -n -M prepared -c 2 -j 1 -R "$RATE" -T "$SECONDS_EACH" \
        -f "$WORK/$shape.sql" "$TOKEND_DATABASE_URL" 2>&1)" || { echo "$out" >&2; die "pgbench failed"; }
    after="$(pg_ticks)"
    wait "$hashing"
    logins="$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')"
    awk -v s="$shape" -v a="$before" -v b="$after" -v n="$logins" -v hz="$(getconf CLK_TCK)" \
        -v h="$(tail -n1 "$WORK/argon2.out")" \
        'BEGIN { printf "  %-12s %.2f ms  (%d logins; argon2id beside it: %s)\n", s, (b - a) * 1000 / hz / n, n, h }'
done

#!/usr/bin/env bash
# Vestibule benchmark: the one command that produces the numbers quoted for this server.
#
#   bench/run.sh
#
# Builds the release binary and examples/hash_cost, starts a private server on a free loopback
# port with a fresh SQLite database and the default (OWASP) argon2id parameters, drives it with
# wrk, and prints a Markdown report on stdout (progress goes to stderr). Only loopback traffic.
# Installs wrk (and curl) from Debian if missing, which needs root.
#
# Knobs (environment variables; defaults in brackets):
#   CARGO_TARGET_DIR          cargo target directory            [$HOME/.cache/vestibule-target]
#   BENCH_DURATION            seconds per wrk measurement       [10]
#   BENCH_THREADS             wrk threads                       [2]
#   BENCH_CONNECTIONS         wrk connections                   [64]
#   BENCH_REGISTRATIONS       registrations to reach in total   [10000]
#   BENCH_REG_BUDGET_SECS     time limit for reaching them      [240]
#   BENCH_HASH_ITERATIONS     hashes timed by hash_cost         [20]
# The argon2 cost is deliberately not a knob: the numbers are for the defaults.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
export BENCH_DIR
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vestibule-target}"
DURATION="${BENCH_DURATION:-10}"
THREADS="${BENCH_THREADS:-2}"
CONNS="${BENCH_CONNECTIONS:-64}"
REG_TARGET="${BENCH_REGISTRATIONS:-10000}"
REG_BUDGET="${BENCH_REG_BUDGET_SECS:-240}"
HASH_ITERATIONS="${BENCH_HASH_ITERATIONS:-20}"
WRK_TIMEOUT=10s

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
# Floating-point arithmetic: calc 'EXPR' [awk -v assignments...].
calc() { local expr="$1"; shift; awk "$@" "BEGIN { printf \"%s\", $expr }" </dev/null; }

# --- 1. Tools -------------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "need ${missing[*]}: run as root or install them (apt-get install ${missing[*]})"
    log "installing ${missing[*]} from Debian"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
command -v cargo >/dev/null || die "cargo not found"

# --- 2. Build -------------------------------------------------------------------------------
log "building release (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$REPO_DIR" && cargo build --release --bin vestibule --example hash_cost) >&2
BIN="$CARGO_TARGET_DIR/release/vestibule"
HASH_COST="$CARGO_TARGET_DIR/release/examples/hash_cost"
[[ -x $BIN && -x $HASH_COST ]] || die "build did not produce $BIN and $HASH_COST"

# --- 3. Server ------------------------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/vestibule-bench.XXXXXX")"
SERVER_PID=""
BG_PID=""
cleanup() {
    local status=$?
    [[ -n $BG_PID ]] && kill "$BG_PID" 2>/dev/null && wait "$BG_PID" 2>/dev/null
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if ((status != 0)) && [[ -s $TMP/server.log ]]; then
        log "server log (last 20 lines):"; tail -n 20 "$TMP/server.log" >&2
    fi
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=""
for _ in $(seq 100); do
    candidate=$((20000 + RANDOM % 40000))
    if port_free "$candidate"; then PORT=$candidate; break; fi
done
[[ -n $PORT ]] || die "no free loopback port found"
URL="http://127.0.0.1:$PORT"

cat >"$TMP/vestibule.toml" <<EOF
server_name = "localhost"
public_baseurl = "$URL/"
listen = ["127.0.0.1:$PORT"]

[database]
url = "sqlite:$TMP/vestibule.db"

[observability]
log_filter = "warn"

# The benchmark measures throughput from one client address: rate limits would only measure
# themselves.
[rate_limits]
enabled = false
EOF

# Environment variables override the file (VESTIBULE_*, RUST_LOG): start from a clean slate so
# the run really uses the defaults.
server_env=(env -u RUST_LOG)
while IFS= read -r name; do server_env+=(-u "$name"); done < <(compgen -e | grep '^VESTIBULE_' || true)

log "starting $BIN on $URL (data in $TMP)"
"${server_env[@]}" "$BIN" --config "$TMP/vestibule.toml" serve >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || die "server exited during startup"
    curl -sf -o /dev/null "$URL/_matrix/client/versions" && break
    ((i < 300)) || die "server did not answer /versions within 30 s"
    sleep 0.1
done
sleep 1
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status"; }
threads() { awk '/^Threads:/ { print $2 }' "/proc/$SERVER_PID/status"; }
RSS_IDLE=$(rss_kib)
THREADS_IDLE=$(threads)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "server up (pid $SERVER_PID), idle RSS $RSS_IDLE KiB"

# --- 4. Measurements ------------------------------------------------------------------------
REGISTERED=0
register_one() { # register_one USER -> prints access token
    local body
    body=$(curl -sf -X POST -H 'Content-Type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"password123\",\"auth\":{\"type\":\"m.login.dummy\"}}" \
        "$URL/_matrix/client/v3/register") || die "registering $1 failed"
    sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p' <<<"$body"
}
BENCH_TOKEN=$(register_one benchwhoami)
[[ -n $BENCH_TOKEN ]] || die "no access_token in the registration response"
register_one benchlogin >/dev/null
REGISTERED=2
export BENCH_TOKEN BENCH_USER=benchlogin BENCH_PASSWORD=password123
curl -sf -o /dev/null -H "Authorization: Bearer $BENCH_TOKEN" "$URL/_matrix/client/v3/account/whoami" \
    || die "whoami with the fresh token failed"

RUN_ID="b$(printf '%04x%04x' $RANDOM $RANDOM)"
PREFIX_SEQ=0
# run_wrk NAME SCRIPT SECONDS: runs wrk, leaves its output in $TMP/NAME.out.
run_wrk() {
    local name=$1 script=$2 secs=$3
    PREFIX_SEQ=$((PREFIX_SEQ + 1))
    BENCH_PREFIX="${RUN_ID}r${PREFIX_SEQ}" \
        wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --timeout "$WRK_TIMEOUT" \
        -s "$BENCH_DIR/$script" "$URL" >"$TMP/$name.out" 2>"$TMP/$name.err" \
        || die "wrk $name failed: $(cat "$TMP/$name.err")"
    grep -q '^RESULT ' "$TMP/$name.out" || die "wrk $name printed no RESULT line: $(cat "$TMP/$name.out" "$TMP/$name.err")"
    if [[ -s $TMP/$name.err ]]; then log "wrk $name stderr: $(head -c 600 "$TMP/$name.err")"; fi
}
# res NAME KEY: a field of NAME's RESULT line.
res() { grep '^RESULT ' "$TMP/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

log "versions: ${DURATION}s"
run_wrk versions versions.lua "$DURATION"
log "whoami: ${DURATION}s"
run_wrk whoami whoami.lua "$DURATION"
log "login: ${DURATION}s"
run_wrk login login.lua "$DURATION"
log "register: ${DURATION}s"
REG_START=$(now)
run_wrk register register.lua "$DURATION"
REGISTERED=$((REGISTERED + $(res register ok)))

log "whoami under a login flood: ${DURATION}s"
PREFIX_SEQ=$((PREFIX_SEQ + 1))
wrk -t"$THREADS" -c"$CONNS" -d"$((DURATION + 4))s" --timeout "$WRK_TIMEOUT" \
    -s "$BENCH_DIR/login.lua" "$URL" >"$TMP/login_flood.out" 2>"$TMP/login_flood.err" &
BG_PID=$!
sleep 2
run_wrk whoami_flood whoami.lua "$DURATION"
wait "$BG_PID" || die "background login wrk failed: $(cat "$TMP/login_flood.err")"
BG_PID=""
grep -q '^RESULT ' "$TMP/login_flood.out" || die "login flood printed no RESULT line"

# Registrations up to REG_TARGET, within REG_BUDGET seconds of filling.
FILL_START=$(now)
FILL_RUNS=0
rate=$(res register ok_rps)
while ((REGISTERED < REG_TARGET)); do
    left=$(calc 'b - (n - s)' -v b="$REG_BUDGET" -v n="$(now)" -v s="$FILL_START")
    if (($(calc '(l < 2)' -v l="$left"))); then
        log "registration budget of ${REG_BUDGET}s used up at $REGISTERED registrations"
        break
    fi
    need=$((REG_TARGET - REGISTERED))
    # Enough seconds for the remaining registrations at the last rate (+5%), within the budget.
    secs=$(calc 'int(d < 2 ? 2 : (d > l ? l : d))' -v d="$(calc 'need / (r > 1 ? r : 1) * 1.05 + 1' -v need="$need" -v r="$rate")" -v l="$left")
    log "registering: $REGISTERED done, $need to go at ~${rate}/s -> ${secs}s run"
    FILL_RUNS=$((FILL_RUNS + 1))
    run_wrk "fill$FILL_RUNS" register.lua "$secs"
    REGISTERED=$((REGISTERED + $(res "fill$FILL_RUNS" ok)))
    got=$(res "fill$FILL_RUNS" ok_rps)
    if (($(calc '(g > 0)' -v g="$got"))); then rate=$got; fi
done
REG_END=$(now)
FILL_SECS=$(calc 'sprintf("%.1f", a - b)' -v a="$REG_END" -v b="$FILL_START")
REG_SECS=$(calc 'sprintf("%.1f", a - b)' -v a="$REG_END" -v b="$REG_START")
sleep 1
RSS_REG=$(rss_kib)
RSS_PEAK=$(hwm_kib)
THREADS_REG=$(threads)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
DB_KIB=$(du -sk "$TMP" | awk '{ print $1 }')
log "$REGISTERED registrations; RSS $RSS_REG KiB (peak $RSS_PEAK KiB)"

# Stop the server before timing hashes so the measurement has the core to itself.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# --- 5. Hash cost ---------------------------------------------------------------------------
log "hash_cost: $HASH_ITERATIONS hashes on one core"
"$HASH_COST" "$HASH_ITERATIONS" >"$TMP/hash_cost.out"
HASH_MS=$(sed -n 's/^HASH_MS=//p' "$TMP/hash_cost.out")
[[ -n $HASH_MS ]] || die "hash_cost printed no HASH_MS"
CORES=$(nproc)
CEILING=$(calc 'sprintf("%.1f", c * 1000 / h)' -v c="$CORES" -v h="$HASH_MS")

# --- 6. Report ------------------------------------------------------------------------------
mib() { calc 'sprintf("%.1f MiB", k / 1024)' -v k="$1"; }
ms() { calc '(v >= 1000 ? sprintf("%.2f s", v / 1000) : sprintf("%.2f ms", v))' -v v="$1"; }
pct() { calc 'sprintf("%.1f%%", 100 * a / b)' -v a="$1" -v b="$2"; }
row() { # row LABEL NAME
    printf '| %s | %s | %s | %s | %s / %s |\n' "$1" "$(res "$2" rps)" "$(ms "$(res "$2" p50_ms)")" \
        "$(ms "$(res "$2" p99_ms)")" "$(res "$2" non2xx)" "$(res "$2" sockerr)"
}
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
GIT_REV=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo "uncommitted")
if ((REGISTERED >= REG_TARGET)); then
    REG_NOTE="$REGISTERED registrations (target $REG_TARGET) in ${REG_SECS} s"
else
    REG_NOTE="only $REGISTERED registrations (target $REG_TARGET not reached: ${REG_BUDGET} s budget) in ${REG_SECS} s"
fi

cat <<EOF
## Vestibule benchmark

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- CPU: $CPU_MODEL; nproc: $CORES; load average before / after the load runs: $LOAD_BEFORE / $LOAD_AFTER
- vestibule $GIT_REV, release build; SQLite; argon2id m=19456 KiB t=2 p=1 (defaults)
- wrk: $THREADS threads, $CONNS connections, ${DURATION} s per run, on the same machine as the server

| endpoint | req/s | p50 | p99 | non-2xx / socket errors |
|---|---|---|---|---|
$(row "GET /_matrix/client/versions" versions)
$(row "GET /_matrix/client/v3/account/whoami" whoami)
$(row "POST /_matrix/client/v3/login" login)
$(row "POST /_matrix/client/v3/register" register)
$(row "whoami during login flood" whoami_flood)
$(row "login (the flood)" login_flood)

- idle RSS after startup: $(mib "$RSS_IDLE") ($THREADS_IDLE threads)
- RSS after $REG_NOTE: $(mib "$RSS_REG") (peak $(mib "$RSS_PEAK"); $THREADS_REG threads; data dir $(mib "$DB_KIB"))
- registration rate sustained while filling: $(calc 'sprintf("%.1f", (r - x) / (f > 0 ? f : 1))' -v r="$REGISTERED" -v x="$((2 + $(res register ok)))" -v f="$FILL_SECS")/s over ${FILL_SECS} s
- password hash (argon2id, one core): $HASH_MS ms
- hash ceiling ($CORES cores / hash time): $CEILING req/s
- login: $(pct "$(res login rps)" "$CEILING") of the hash ceiling; register: $(pct "$(res register rps)" "$CEILING")
- whoami: $(pct "$(res whoami rps)" "$(res versions rps)") of the versions rate
- whoami p99 under login flood vs idle: $(ms "$(res whoami_flood p99_ms)") vs $(ms "$(res whoami p99_ms)") ($(calc 'sprintf("%.1fx", a / b)' -v a="$(res whoami_flood p99_ms)" -v b="$(res whoami p99_ms)"))
EOF

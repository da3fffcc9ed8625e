#!/usr/bin/env bash
# Login under a flood of wrong passwords (security review F8), before and after the bounded
# hashing queue, in one run:
#
#   bench/login_flood.sh
#
# Builds the release binary, then for each queue setting starts a private server (SQLite,
# default argon2id, rate limits off: they stand in for an attacker with many addresses), runs a
# flood of wrong-password logins on BENCH_FLOOD_CONNECTIONS connections spread over
# BENCH_FLOOD_NETWORKS client networks (X-Forwarded-For through a trusted loopback proxy), and
# meanwhile one well-behaved client from its own network, logging in with the right password on
# one connection and waiting the retry_after_ms of a 429. Prints a Markdown table on stdout.
# "before" is the old behaviour: one first-come queue larger than any flood (the server is not
# told about the proxy, so every request is from one network and shares one line, unbounded).
# "after" is the default: two waiting checks per network, networks served in turn, 32 per
# thread in all.
#
# Knobs: CARGO_TARGET_DIR [$HOME/.cache/vestibule-target], BENCH_DURATION [10],
# BENCH_FLOOD_CONNECTIONS [64], BENCH_FLOOD_NETWORKS [16]. Needs wrk and curl (bench/run.sh
# installs them).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
export BENCH_DIR
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vestibule-target}"
DURATION="${BENCH_DURATION:-10}"
FLOOD="${BENCH_FLOOD_CONNECTIONS:-64}"
export BENCH_FLOOD_NETWORKS="${BENCH_FLOOD_NETWORKS:-16}"

log() { printf '[login-flood %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v wrk >/dev/null && command -v curl >/dev/null || die "need wrk and curl"

log "building release"
(cd "$REPO_DIR" && cargo build --release --bin vestibule) >&2
BIN="$CARGO_TARGET_DIR/release/vestibule"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/vestibule-flood.XXXXXX")"
SERVER_PID=""
FLOOD_PID=""
stop_server() {
    [[ -n $FLOOD_PID ]] && { kill "$FLOOD_PID" 2>/dev/null; wait "$FLOOD_PID" 2>/dev/null || true; }
    FLOOD_PID=""
    [[ -n $SERVER_PID ]] && { kill -TERM "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
    SERVER_PID=""
}
trap 'stop_server; rm -rf "$TMP"' EXIT

res() { grep '^RESULT ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# measure NAME HASH_QUEUE PER_NETWORK TRUSTED_PROXIES: one server, one flood, one well-behaved
# client; results in $TMP/NAME/.
measure() {
    local name=$1 queue=$2 per_network=$3 proxies=$4 port
    port=$((20000 + RANDOM % 40000))
    local url="http://127.0.0.1:$port" dir="$TMP/$name"
    mkdir -p "$dir"
    cat >"$dir/vestibule.toml" <<CONF
server_name = "localhost"
public_baseurl = "$url/"
listen = ["127.0.0.1:$port"]
[database]
url = "sqlite:$dir/vestibule.db"
[observability]
log_filter = "warn"
metrics_enabled = false
[password]
hash_queue = $queue
hash_queue_per_network = $per_network
[http]
max_connections_per_ip = 1000
trusted_proxies = $proxies
[rate_limits]
enabled = false
CONF
    env -u RUST_LOG "$BIN" --config "$dir/vestibule.toml" serve >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        curl -sf -o /dev/null "$url/_matrix/client/versions" && break
        sleep 0.1
    done
    curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
        -d '{"username":"owner","password":"password123","auth":{"type":"m.login.dummy"}}' \
        "$url/_matrix/client/v3/register" || die "registering the owner failed"
    log "$name: flood of $FLOOD connections from $BENCH_FLOOD_NETWORKS networks, one well-behaved client, ${DURATION}s"
    wrk -t2 -c"$FLOOD" -d"$((DURATION + 4))s" --timeout 30s -s "$BENCH_DIR/login_flood.lua" "$url" \
        >"$dir/flood.out" 2>/dev/null &
    FLOOD_PID=$!
    sleep 2
    wrk -t1 -c1 -d"${DURATION}s" --timeout 30s -s "$BENCH_DIR/login_client.lua" "$url" \
        >"$dir/client.out" 2>/dev/null || die "the well-behaved client's wrk failed"
    wait "$FLOOD_PID" || true
    FLOOD_PID=""
    stop_server
    grep -q '^RESULT ' "$dir/client.out" || die "$name: no RESULT from the client"
}

measure before 1000000 1000000 '[]'
measure after 0 2 '["127.0.0.1/32"]'

row() {
    local c="$TMP/$1/client.out" f="$TMP/$1/flood.out"
    printf '| %s | %s | %s ms | %s ms | %s | %s | %s |\n' "$2" "$(res "$c" requests)" \
        "$(res "$c" p50_ms)" "$(res "$c" p99_ms)" "$(res "$c" ok)" "$(res "$c" non2xx)" \
        "$(res "$f" rps)"
}
cat <<REPORT
## Login under a flood of wrong passwords

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); nproc $(nproc); vestibule $(git -C "$REPO_DIR" rev-parse --short HEAD)
- flood: $FLOOD connections of wrong-password logins from $BENCH_FLOOD_NETWORKS networks; client: 1 connection from its own network, right password, waits retry_after_ms after a 429; ${DURATION} s

| hashing queue | client attempts | client p50 | client p99 | signed in | refused (429) | flood req/s |
|---|---|---|---|---|---|---|
$(row before "before: one first-come line, unbounded")
$(row after "after: a line per network, bounded (defaults)")
REPORT

#!/usr/bin/env bash
# Memory growth with traffic: the server's RSS idle, then after 10 s and after 20 s of
# /versions at 64 connections, with metrics on (the default) and nobody scraping them.
#
#   bench/rss_growth.sh
#
# A server whose RSS keeps rising from the first 10 s to the second keeps something per request.
# Knobs: CARGO_TARGET_DIR [$HOME/.cache/vestibule-target]. Needs wrk and curl.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vestibule-target}"
(cd "$REPO_DIR" && cargo build --release --bin vestibule) >&2
BIN="$CARGO_TARGET_DIR/release/vestibule"

DIR="$(mktemp -d "${TMPDIR:-/tmp}/vestibule-rss.XXXXXX")"
PORT=$((20000 + RANDOM % 20000))
METRICS_PORT=$((40000 + RANDOM % 20000))
cat >"$DIR/vestibule.toml" <<CONF
server_name = "localhost"
public_baseurl = "http://127.0.0.1:$PORT/"
listen = ["127.0.0.1:$PORT"]
[database]
url = "sqlite:$DIR/vestibule.db"
[observability]
log_filter = "warn"
metrics_listen = "127.0.0.1:$METRICS_PORT"
[http]
max_connections_per_ip = 1000
CONF
env -u RUST_LOG "$BIN" --config "$DIR/vestibule.toml" serve >"$DIR/server.log" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/_matrix/client/versions" && break
    sleep 0.1
done
rss() { awk '/^VmRSS:/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
sleep 1
IDLE=$(rss)
rps() { wrk -t2 -c64 -d10s "http://127.0.0.1:$PORT/_matrix/client/versions" | awk '/Requests\/sec/ { print $2 }'; }
FIRST_RPS=$(rps); sleep 6; AFTER_10=$(rss)
SECOND_RPS=$(rps); sleep 6; AFTER_20=$(rss)
echo "| idle | after 10 s of /versions | after 20 s | req/s (first, second run) |"
echo "|---|---|---|---|"
echo "| $IDLE | $AFTER_10 | $AFTER_20 | $FIRST_RPS, $SECOND_RPS |"

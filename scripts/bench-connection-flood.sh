#!/usr/bin/env bash
# bench-connection-flood.sh - issue 9 item 5: a `vnet serve` (HTTPS, its own process, on a free
# loopback port) flooded with idle TCP connections, idle TLS sessions and slow-loris clients
# that reconnect as soon as they are closed, while well-behaved clients measure p50/p99 latency
# (a new TLS connection per request, and a kept-alive one), before and during the flood.
# The attackers and the measuring clients are crates/api/examples/connection_flood.rs.
#
#   bash scripts/bench-connection-flood.sh
#   (env: PROFILE=debug|release  IDLE=4000 TLS_IDLE=500 LORIS=500 CAP=1000 CLIENTS=4
#         REQUESTS=200 HEADER_TIMEOUT=2 IDLE_TIMEOUT=5 RECONNECT_MS=10)
#
# The server's descriptor limit is raised to its hard limit by `vnet serve` itself; the
# attackers need IDLE + TLS_IDLE + LORIS descriptors in this shell's limit.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-debug}
IDLE=${IDLE:-4000}; TLS_IDLE=${TLS_IDLE:-500}; LORIS=${LORIS:-500}; CAP=${CAP:-1000}
CLIENTS=${CLIENTS:-4}; REQUESTS=${REQUESTS:-200}
HEADER_TIMEOUT=${HEADER_TIMEOUT:-2}; IDLE_TIMEOUT=${IDLE_TIMEOUT:-5}; RECONNECT_MS=${RECONNECT_MS:-10}
flag=(); [ "$PROFILE" = release ] && flag=(--release)
cargo build -q "${flag[@]}" -p vnet -p api --example connection_flood
BIN=target/$PROFILE
TMP=$(mktemp -d /tmp/vnet-flood.XXXXXX)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ulimit -n "$(ulimit -Hn)"
"$BIN/vnet" serve --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" \
    --max-connections "$CAP" --header-timeout "$HEADER_TIMEOUT" --tls-handshake-timeout "$HEADER_TIMEOUT" \
    --idle-timeout "$IDLE_TIMEOUT" >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do grep -q "vnet API listening on" "$TMP/server.log" && break; sleep 0.1; done
grep -q "vnet API listening on" "$TMP/server.log" || { cat "$TMP/server.log"; exit 1; }
grep "connections:" "$TMP/server.log" || true
echo "server: $PROFILE build, cap $CAP, header/handshake timeout ${HEADER_TIMEOUT}s, idle timeout ${IDLE_TIMEOUT}s"
"$BIN/examples/connection_flood" --port "$PORT" --ca "$TMP/data/ca.pem" \
    --idle "$IDLE" --tls-idle "$TLS_IDLE" --loris "$LORIS" --clients "$CLIENTS" --requests "$REQUESTS" \
    --reconnect-ms "$RECONNECT_MS"
echo "server descriptors open after the flood: $(ls /proc/$SERVER_PID/fd | wc -l)"

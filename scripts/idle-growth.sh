#!/usr/bin/env bash
# Measures how much an idle four-validator network grows on disk: starts `medledger dev
# --nodes 4` on loopback, lets the demo settle, then adds up the four nodes' chain.redb and
# consensus/ before and after MINUTES of idleness and prints bytes per block and per day.
#
#   scripts/idle-growth.sh [MINUTES] [HEARTBEAT_MS]     # defaults: 10 minutes, 60000 ms
#
# Uses target/release/medledger (built if missing). Stops by itself after MINUTES.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
heartbeat_ms=${2:-60000}
api_port=${IDLE_API_PORT:-28480}
binary=target/release/medledger
[ -x "$binary" ] || cargo build --release --locked -p medledger-cli

work=$(mktemp -d)
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$binary" dev --nodes 4 --data-dir "$work/d" --listen "127.0.0.1:$api_port" \
    --empty-block-interval-ms "$heartbeat_ms" >"$work/dev.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do grep -q "Press Ctrl-C" "$work/dev.log" && break; sleep 1; done
grep -q "Press Ctrl-C" "$work/dev.log" || { cat "$work/dev.log"; echo "dev did not start" >&2; exit 1; }

bytes() {
    du -sb --apparent-size "$work"/d/chain.redb "$work"/d/consensus \
        "$work"/d/node-*/chain.redb "$work"/d/node-*/consensus | awk '{ total += $1 } END { print total }'
}
height() {
    curl -sf "http://127.0.0.1:$api_port/v1/status" | sed -E 's/.*"height":([0-9]+).*/\1/'
}

sleep 5
start_bytes=$(bytes); start_height=$(height); start=$(date +%s)
sleep $((minutes * 60))
end_bytes=$(bytes); end_height=$(height); seconds=$(( $(date +%s) - start ))

blocks=$((end_height - start_height))
grown=$((end_bytes - start_bytes))
echo "heartbeat ${heartbeat_ms} ms, ${seconds} s idle: ${blocks} blocks, four nodes grew ${grown} bytes"
if [ "$blocks" -gt 0 ]; then
    echo "bytes per block (four nodes): $((grown / blocks))"
fi
echo "bytes per day (four nodes, extrapolated): $((grown * 86400 / seconds))"

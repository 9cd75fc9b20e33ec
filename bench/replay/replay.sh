#!/usr/bin/env bash
# Replay benchmark: herald (release, default configuration with --recovery) pinned to CPU 0, the
# Node client fleet (Debian's node-ws) pinned to CPU 1; N clients drop, M events are published,
# all N come back at once. Prints one JSON line per run.
#
#   bench/replay/replay.sh [N] [M] [STORE]     defaults: 1000 1000 sqlite (STORE: sqlite or memory)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
n=${1:-1000}
m=${2:-1000}
store=${3:-sqlite}
port=${PORT:-8185}
(cd "$root" && swift build -c release --product herald --scratch-path .build-release) >&2
folder=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$folder"' EXIT
taskset -c "${SERVER_CPU:-0}" "$root/.build-release/release/herald" serve --auth none --port "$port" \
    --queue-path "$folder/queue.sqlite" --recovery --recovery-store "$store" --log-level warning > "$folder/herald.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
taskset -c "${LOADGEN_CPU:-1}" node "$here/replay.js" "http://127.0.0.1:$port" "$n" "$m" "$server"

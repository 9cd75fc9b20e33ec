#!/usr/bin/env bash
# Fan-out benchmark driver: starts a server pinned to one CPU, drives herald-loadgen pinned to the
# other, sweeps client counts and publish rates, measures idle memory, prints one table.
#
#   ./bench.sh [--name NAME] [--port PORT] [--quick] -- SERVER COMMAND...
#
# The server command must listen on 127.0.0.1:PORT and serve /socket.io/ (WebSocket) and
# POST /api/emit. Examples:
#   ./bench.sh --name raw --port 8090 -- .build/release/raw-broadcast-server --port 8090
#   ./bench.sh --name python-socketio --port 8091 -- peers/.venv/bin/python peers/python_socketio_server.py --port 8091
#   ./bench.sh --name herald --port 8080 -- /work/main/.build/release/herald     (once it has /api/emit)
#   ./bench.sh --name herald --port 8080 --no-start        (a server that is already running)
#
# Environment (defaults = full run, well under 20 minutes; --quick = under 2 minutes):
#   NS="1000 5000 10000"      client counts for the rate sweep
#   RATES="1 2 5 10 20 30 50 75 100 150 200 300 500 1000"   msg/s, ascending; a sweep stops at saturation:
#                              received < 99 % of expected, or p99 latency > P99_LIMIT_MS
#   P99_LIMIT_MS=1000
#   DURATION=5  DRAIN=3        seconds of publishing, max seconds of waiting for stragglers
#   IDLE_NS="10000 19000"      idle-memory measurements (19000 uses 2 loadgen processes)
#   PER_PROCESS=15000          clients per loadgen process (the fd cap is 20,000 per process)
#   SERVER_CPU=0 LOADGEN_CPU=1 taskset CPU lists
#   BEARER=key                 sent as Authorization: Bearer on /api/emit
#   LOADGEN_ARGS="..."         extra herald-loadgen arguments (e.g. --path /socket.io/ --emit-path /api/emit)
#   OUT=results/NAME-TIMESTAMP.jsonl   one JSON line per run
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name=server
port=8080
quick=0
start=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --name) name="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        --no-start) start=0; shift ;;
        --) shift; break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
if [[ $start == 1 && $# -eq 0 ]]; then
    echo "usage: $0 [--name NAME] [--port PORT] [--quick] -- SERVER COMMAND..." >&2
    exit 2
fi
if [[ $quick == 1 ]]; then
    : "${NS:=1000 5000}" "${RATES:=5 20 50}" "${DURATION:=3}" "${DRAIN:=2}" "${IDLE_NS:=5000}"
fi
NS="${NS:-1000 5000 10000}"
RATES="${RATES:-1 2 5 10 20 30 50 75 100 150 200 300 500 1000}"
P99_LIMIT_MS="${P99_LIMIT_MS:-1000}"
DURATION="${DURATION:-5}"
DRAIN="${DRAIN:-3}"
IDLE_NS="${IDLE_NS-10000 19000}"
PER_PROCESS="${PER_PROCESS:-15000}"
SERVER_CPU="${SERVER_CPU:-0}"
LOADGEN_CPU="${LOADGEN_CPU:-1}"
LOADGEN="${LOADGEN:-$here/.build/release/herald-loadgen}"
LOADGEN_ARGS="${LOADGEN_ARGS:-}"
mkdir -p "$here/results"
OUT="${OUT:-$here/results/$name-$(date +%Y%m%d-%H%M%S).jsonl}"
: > "$OUT"

if [[ ! -x "$LOADGEN" ]]; then
    (cd "$here" && swift build -c release --product herald-loadgen)
fi

server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

# The server is started afresh for each idle-memory measurement (so that memory kept by the
# allocator from earlier runs does not hide the per-connection cost) and once for the sweep.
SERVER_CMD=("$@")
start_server() {
    [[ $start == 1 ]] || return 0
    if port_open; then echo "port $port is already in use" >&2; exit 1; fi
    taskset -c "$SERVER_CPU" "${SERVER_CMD[@]}" >> "$OUT.server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
        port_open && break
        kill -0 "$server_pid" 2>/dev/null || { echo "server exited; log: $OUT.server.log" >&2; cat "$OUT.server.log" >&2; exit 1; }
        sleep 0.1
    done
    port_open || { echo "server did not listen on $port within 30 s" >&2; exit 1; }
    sleep 1
}
stop_server() {
    [[ $start == 1 ]] || return 0
    cleanup
    server_pid=""
    for _ in $(seq 1 50); do port_open || break; sleep 0.1; done
}

auth=()
[[ -n "${BEARER:-}" ]] && auth=(--bearer "$BEARER")

# run_loadgen N ARGS... : runs one bounded loadgen invocation, appends its JSON line to $OUT and
# echoes it. The PID is found by the listening port (works through wrapper scripts).
run_loadgen() {
    local n="$1"; shift
    local procs=$(( (n + PER_PROCESS - 1) / PER_PROCESS ))
    (( procs < 1 )) && procs=1
    local line
    # hard bound: connect (<= 60 s) + settle + duration + drain + slack
    line=$(timeout $(( 180 + ${DURATION%.*} + ${DRAIN%.*} )) \
        taskset -c "$LOADGEN_CPU" "$LOADGEN" --url "http://127.0.0.1:$port" -n "$n" --processes "$procs" \
        --label "$name" --quiet "${auth[@]}" $LOADGEN_ARGS "$@" | tail -n 1) || true
    if [[ "$line" == \{* ]]; then
        echo "$line" >> "$OUT"
        echo "$line"
    else
        echo "{\"label\":\"$name\",\"clients\":$n,\"error\":\"loadgen failed\"}" | tee -a "$OUT"
    fi
}

field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=d.get(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

echo "== $name on port $port; results in $OUT" >&2
for n in $IDLE_NS; do
    echo "-- idle memory, $n clients (fresh server)" >&2
    start_server
    run_loadgen "$n" --idle --settle 3 > /dev/null
    stop_server
done

start_server

for n in $NS; do
    for r in $RATES; do
        echo "-- $n clients, $r msg/s for $DURATION s" >&2
        line=$(run_loadgen "$n" --rate "$r" --duration "$DURATION" --drain "$DRAIN")
        ratio=$(field "$line" received_ratio)
        p99=$(field "$line" lat_p99_ms)
        if [[ -z "$ratio" ]] || python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.99 or float(sys.argv[2]) > float(sys.argv[3]) else 1)" "$ratio" "${p99:-0}" "$P99_LIMIT_MS"; then
            echo "   saturated at $n clients × $r msg/s (received ratio $ratio, p99 ${p99} ms)" >&2
            break
        fi
        sleep 1
    done
done

python3 "$here/scripts/bench_table.py" "$OUT"

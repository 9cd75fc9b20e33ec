#!/usr/bin/env bash
# Cluster fan-out: N clients on node B, an open-loop publisher, three ways side by side:
#   single  B alone (no cluster), publishes on B;
#   local   B in a two-node cluster over PostgreSQL, publishes on B (its own clients, plus the publish);
#   cross   the same cluster, publishes on A: every event reaches B's clients through PostgreSQL.
#   rlocal, rcross  local and cross with --recovery: each broadcast is sequenced (offset, event row and
#           notification in one transaction) and reaches every node's clients, B's own too, once it is back.
# Then B alone with a queue, two ways (each publish is committed to the queue, then consumed and broadcast):
#   embedded  the default embedded queue (SQLite);
#   outbox    --queue postgres: the publish inserts into the outbox table, LISTEN wakes the consumer.
# The herald nodes share CPU 0, the load generator has CPU 1, PostgreSQL is not pinned. Besides the load
# generator's figures (latency from the publish to each client, B's CPU per delivery), each run
# reports the CPU PostgreSQL spent per broadcast.
#
#   scripts/with-postgres bench/cluster.sh            (NS="10 1000 5000" RATES="10 100 500" by default)
#
# Needs the release builds: swift build -c release --product herald --scratch-path .build-release
# (from the project root) and, in bench/, swift build -c release --product herald-loadgen.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
herald=${HERALD:-$root/.build-release/release/herald}
loadgen=${LOADGEN:-$here/.build/release/herald-loadgen}
NS=${NS:-10 1000 5000}
RATES=${RATES:-10 100 500}
DURATION=${DURATION:-4}
DRAIN=${DRAIN:-2}
: "${HERALD_TEST_POSTGRES_URL:?run through scripts/with-postgres}"
mkdir -p "$here/results"
out=${OUT:-$here/results/cluster-$(date +%Y%m%d-%H%M%S).jsonl}
: >"$out"

pids=()
stop_nodes() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap stop_nodes EXIT

# start_node PORT [ARGS…]: a herald node on CPU 0 listening on PORT.
start_node() {
    local port=$1
    shift
    taskset -c 0 "$herald" serve --auth none "${queue[@]}" --port "$port" --log-level warning "$@" >>"$out.nodes.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
        sleep 0.1
    done
    echo "cluster.sh: the node on $port did not start; log: $out.nodes.log" >&2
    exit 1
}

# wait_nodes PORT COUNT: until the node on PORT sees COUNT nodes.
wait_nodes() {
    for _ in $(seq 1 200); do
        curl -s "http://127.0.0.1:$1/readyz" | grep -q "listening, $2 nodes" && return 0
        sleep 0.1
    done
    echo "cluster.sh: the node on $1 did not see $2 nodes" >&2
    exit 1
}

# "pid ticks" of every PostgreSQL process (CPU ticks, user + system).
postgres_ticks() {
    awk '$2 == "(postgres)" { print $1, $14 + $15 }' /proc/[0-9]*/stat 2>/dev/null | tr '\n' ' '
}

# measure LABEL PUBLISH_PORT: one loadgen run per N and rate against B (port 8291).
measure() {
    local label=$1 publish=$2 n rate before after line
    for n in $NS; do
        for rate in $RATES; do
            before=$(postgres_ticks)
            line=$(taskset -c 1 "$loadgen" --url http://127.0.0.1:8291 --publish-url "http://127.0.0.1:$publish" -n "$n" \
                --rate "$rate" --duration "$DURATION" --drain "$DRAIN" --label "$label" --quiet | tail -n 1)
            after=$(postgres_ticks)
            echo "$line" | python3 -c '
import json, os, sys
run = json.loads(sys.stdin.read())
def ticks(text):
    words = text.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
before, after = ticks(sys.argv[1]), ticks(sys.argv[2])
# The processes alive at the end: what they spent since the start (all of it if they are new).
spent = sum(value - before.get(pid, 0) for pid, value in after.items())
run["postgres_cpu_us_per_broadcast"] = spent * 1e6 / os.sysconf("SC_CLK_TCK") / max(1, run.get("sent", 0))
print(json.dumps(run))' "$before" "$after" | tee -a "$out" >&2
        done
    done
}

queue=(--queue none)
cluster=(--cluster postgres --postgres-url "$HERALD_TEST_POSTGRES_URL" --cluster-channel-prefix "bench-$$")
start_node 8291
measure single 8291
stop_nodes
start_node 8290 "${cluster[@]}"
start_node 8291 "${cluster[@]}"
wait_nodes 8291 2
measure local 8291
measure cross 8290
stop_nodes
start_node 8290 "${cluster[@]}" --recovery
start_node 8291 "${cluster[@]}" --recovery
wait_nodes 8291 2
measure rlocal 8291
measure rcross 8290
stop_nodes
files=$(mktemp -d)
queue=(--queue-path "$files/queue.sqlite")
start_node 8291
measure embedded 8291
stop_nodes
rm -rf "$files"
queue=(--queue postgres --postgres-url "$HERALD_TEST_POSTGRES_URL" --outbox-table "bench_outbox_$$")
start_node 8291
measure outbox 8291
stop_nodes

python3 - "$out" <<'PY'
import json, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
print(f"\n{'run':<8}{'clients':>8}{'msg/s':>7}{'received %':>11}{'deliv/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'B µs/d':>8}{'B wait s':>9}{'PG µs/bcast':>12}")
for r in runs:
    if "error" in r or "lat_p50_ms" not in r:
        print(f"{r.get('label', '?'):<8} error: {r}")
        continue
    print(f"{r['label']:<8}{r['clients']:>8}{r['rate']:>7.0f}{r['received_ratio'] * 100:>11.2f}{r['deliveries_per_s']:>10.0f}"
          f"{r['lat_p50_ms']:>9.2f}{r['lat_p99_ms']:>9.2f}{r.get('server_cpu_us_per_delivery') or 0:>8.2f}"
          f"{r.get('server_runqueue_wait_s') or 0:>9.2f}"
          + (f"{r['postgres_cpu_us_per_broadcast']:>12.1f}" if r["label"] not in ("single", "embedded") else f"{'—':>12}"))
print("B µs/d: node B's CPU per delivery; B wait s: seconds node B was runnable but waiting for its CPU (the nodes share\n"
      "CPU 0, PostgreSQL runs where the scheduler puts it); PG µs/bcast: PostgreSQL's CPU (all its processes, in 10 ms ticks) per published message")
PY

"""Connection state recovery across the nodes of a cluster over PostgreSQL: a client whose node
dies comes back on another node and gets every event it missed, whichever node published it.
"""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from herald_process import SECRET, Herald, RawReader, connect, token, wait_until

POSTGRES_URL = os.environ.get("HERALD_TEST_POSTGRES_URL")

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="run through scripts/test (needs PostgreSQL)")


def nodes(count, *args):
    """`count` herald nodes with recovery, in a cluster of their own (a channel prefix no other
    test uses), each seeing the others."""
    prefix = f"test-{time.time_ns()}"
    started = [Herald("--jwt-secret", SECRET, "--recovery", "--queue", "none", "--cluster", "postgres", "--postgres-url", POSTGRES_URL,
                      "--cluster-channel-prefix", prefix, "--cluster-heartbeat-interval", "1", "--cluster-heartbeat-timeout", "3",
                      *args) for _ in range(count)]
    for node in started:
        wait_until(lambda: node.status("/readyz")[1]["checks"].get("cluster") == f"postgres: listening, {count} nodes", 20,
                   f"{node.url} to see {count} nodes")
    return started


def publish(node, values, room):
    batch = [{"event": "item_added", "data": value, "to": [room]} for value in values]
    assert node.post("/api/emit/batch", json.dumps(batch)) == 202


def test_a_client_whose_node_is_killed_recovers_on_another_node_with_every_event_once_in_order():
    """Both nodes publish in turn to the client's room and to another room; then the other node
    goes on alone while the client's node is SIGKILLed. Back on the other node, the client has its
    id and rooms again and every event of its room once, in order: those its node wrote, those the
    other node published while it was away, and none of the other room's."""
    first, second = nodes(2)
    try:
        claims = {"sub": "1", "rooms": ["mine"], "exp": int(time.time()) + 600}
        ws, hello = connect(first.url, {"token": token(claims)})
        reader = RawReader(ws)
        total = 400

        def publish_block(node, start):
            publish(node, [{"n": n} for n in range(start, start + 10)], "mine")
            publish(node, [{"other": n} for n in range(start, start + 10)], "theirs")

        for start in range(0, 100, 10):
            publish_block(first if start % 20 else second, start)
        failures = []

        def produce():
            try:
                for start in range(100, total, 10):
                    publish_block(second, start)
                    time.sleep(0.01)
            except Exception as error:
                failures.append(error)

        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        wait_until(lambda: len(reader.received()) >= 150, 30, "150 events before the kill")
        first.signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        reader.thread.join(timeout=10)
        before = reader.received()
        assert [event[1]["n"] for event in before] == list(range(len(before)))

        back, again = connect(second.url, {"token": token(claims), "pid": hello["pid"], "offset": before[-1][-1]})
        assert again == hello, f"not recovered after {len(before)} events"
        after_reader = RawReader(back)
        producer.join(timeout=60)
        assert not producer.is_alive() and not failures, failures
        after = after_reader.wait_for(total - len(before), timeout=30)
        everything = before + after
        assert [event[1].get("n") for event in everything] == list(range(total))
        offsets = [int(event[-1]) for event in everything]
        assert offsets == sorted(set(offsets)), "each event once, in the order of its offset"
        assert 'herald_recoveries_total{outcome="recovered"} 1\n' in second.get("/metrics")
        back.close()
    finally:
        first.stop()
        second.stop()


POSTGRES_CTL = os.environ.get("HERALD_TEST_POSTGRES_CTL")


@pytest.mark.skipif(not POSTGRES_CTL, reason="run through scripts/test (needs a PostgreSQL it may stop)")
def test_a_node_whose_postgres_is_gone_still_stops_on_sigterm_and_says_what_it_could_not_write():
    """PostgreSQL stops under a node with a connected client; SIGTERM still stops the node, with
    status 0, bounded waits (the goodbye, the client's last session, the connections) instead of
    waiting for a database that does not come back, and warnings naming what was not written."""
    first, second = nodes(2)
    try:
        second.stop()
        ws, _ = connect(first.url, {"token": token({"sub": "1", "exp": int(time.time()) + 600})})
        subprocess.run([POSTGRES_CTL, "stop"], check=True, stdout=subprocess.DEVNULL)
        try:
            first.signal(signal.SIGTERM)
            assert first.process.wait(timeout=60) == 0
        finally:
            subprocess.run([POSTGRES_CTL, "start"], check=True, stdout=subprocess.DEVNULL)
        first.log.seek(0)
        log = first.log.read()
        assert "The recovery store did not take the last sessions within 10 s" in log
        assert "herald stopped" in log
        ws.close()
    finally:
        first.stop()
        second.stop()

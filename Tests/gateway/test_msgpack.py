"""herald --parser msgpack, with python-socketio clients of serializer='msgpack': queue messages
(JSON) reach them as MessagePack, a client of the other format is refused, and in a cluster one
broadcast reaches a msgpack node's clients and a JSON node's clients alike."""
import json
import os
import time

import pytest
import socketio

from herald_process import Herald, Listener, wait_until

POSTGRES_URL = os.environ.get("HERALD_TEST_POSTGRES_URL")
ITEM = {"id": 1, "name": "lampe \u00e9t\u00e9", "tags": ["a", "b,c"], "price": 2.5, "big": 2 ** 40, "gone": None, "ok": True}


def emit(node, data, event="item_added"):
    assert node.post("/api/emit", json.dumps({"event": event, "data": data})) == 202


def test_queue_messages_reach_msgpack_clients_and_json_clients_are_refused(tmp_path):
    herald = Herald("--auth", "none", "--parser", "msgpack", cwd=tmp_path)
    try:
        listener = Listener(herald.url, serializer="msgpack")
        emit(herald, ITEM)
        emit(herald, [1, "two"], event="pair")
        assert listener.wait(2) == [["item_added", ITEM], ["pair", [1, "two"]]]
        listener.client.disconnect()

        plain = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            plain.connect(herald.url, transports=["websocket"], wait_timeout=3)
        plain.disconnect()
    finally:
        herald.stop()


@pytest.mark.skipif(not POSTGRES_URL, reason="run through scripts/test (needs PostgreSQL)")
def test_one_broadcast_reaches_a_msgpack_node_and_a_json_node_of_one_cluster(tmp_path):
    cluster = ["--auth", "none", "--cluster", "postgres", "--postgres-url", POSTGRES_URL,
               "--cluster-channel-prefix", f"msgpack-{time.time_ns()}", "--cluster-heartbeat-interval", "1"]
    (tmp_path / "a").mkdir()
    plain = Herald(*cluster, cwd=tmp_path / "a")
    packed = Herald(*cluster, "--parser", "msgpack", "--queue", "none")
    try:
        for node in (plain, packed):
            wait_until(lambda: node.status("/readyz")[1]["checks"].get("cluster") == "postgres: listening, 2 nodes", 20,
                       f"{node.url} to see 2 nodes")
        json_client = Listener(plain.url)
        msgpack_client = Listener(packed.url, serializer="msgpack")
        # Through the JSON node's embedded queue, and through the msgpack node's publish API.
        emit(plain, ITEM)
        assert json_client.wait(1) == msgpack_client.wait(1) == [["item_added", ITEM]]
        emit(packed, {"n": 2}, event="second")
        assert json_client.wait(2)[1] == msgpack_client.wait(2)[1] == ["second", {"n": 2}]
    finally:
        plain.stop()
        packed.stop()

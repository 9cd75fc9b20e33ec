"""The herald executable end to end: queue → herald → python-socketio clients, and a drain on SIGTERM.

Needs HERALD_BIN_PATH (the built herald) and HERALD_TEST_SQS_ENDPOINT (moto), both set by
scripts/test.
"""
import json
import os
import re
import tempfile
import time

import boto3
import pytest
import socketio

from herald_process import BIN, Herald, Listener, RawReader, connect

ENDPOINT = os.environ.get("HERALD_TEST_SQS_ENDPOINT")

pytestmark = pytest.mark.skipif(not (ENDPOINT and BIN), reason="run through scripts/test (needs moto and the built herald)")


def delivered(herald):
    """The messages herald handed to the broadcast path before it stopped, from its last log line."""
    found = re.findall(r"messages=(\d+).*herald stopped", herald.output())
    assert found, "herald did not log its stop:\n" + herald.output()
    return int(found[-1])


@pytest.fixture
def sqs():
    return boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def test_messages_from_sqs_reach_clients_with_exactly_their_data(sqs):
    queue_url = sqs.create_queue(QueueName=f"herald-e2e-{time.time_ns()}")["QueueUrl"]
    herald = Herald("--auth", "none", "--queue", "sqs", "--sqs-endpoint", ENDPOINT, "--sqs-queue-url", queue_url,
                    "--namespaces", "/,/orders", "--default-event", "item_added")
    try:
        main, orders = Listener(herald.url), Listener(herald.url, "/orders")
        data = {"id": 7, "name": "ünïcode ✓", "price": 12.5, "tags": ["a", "b"], "nested": {"ok": True, "none": None}}
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"event": "item_added", "data": data}))
        sqs.send_message(QueueUrl=queue_url, MessageBody='{"sku": "x-1"}', MessageAttributes={
            "herald-event": {"DataType": "String", "StringValue": "price_changed"}})
        sqs.send_message(QueueUrl=queue_url, MessageBody='[1, 2, 3]')
        sqs.send_message(QueueUrl=queue_url, MessageBody='{"order": 9}', MessageAttributes={
            "herald-event": {"DataType": "String", "StringValue": "order_placed"},
            "herald-namespace": {"DataType": "String", "StringValue": "/orders"}})
        sqs.send_message(QueueUrl=queue_url, MessageBody="this is not JSON")

        received = main.wait(3)
        assert sorted(received, key=json.dumps) == sorted(
            [["item_added", data], ["price_changed", {"sku": "x-1"}], ["item_added", [1, 2, 3]]], key=json.dumps)
        assert orders.wait(1) == [["order_placed", {"order": 9}]]

        # The counter exists (at 0) from the start: wait for the discard itself.
        discarded = r'herald_queue_discarded_total\{[^}]*\} 1'
        deadline = time.time() + 15
        while time.time() < deadline and not re.search(discarded, herald.get("/metrics")):
            time.sleep(0.2)
        metrics = herald.get("/metrics")
        assert re.search(discarded, metrics), metrics
        assert re.search(r'herald_queue_handed_off_total\{[^}]*\} 4', metrics), metrics
        assert "herald_messages_broadcast_total 4\n" in metrics
        deadline = time.time() + 10  # deletes leave in batches, within about a second
        while True:
            attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
            left = int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
            if left == 0 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert left == 0, attributes
        assert json.loads(herald.get("/readyz"))["checks"]["queue"] == "sqs: reachable"
        main.client.disconnect()
        orders.client.disconnect()
        assert herald.terminate() == 0
    finally:
        herald.stop()


def test_sigterm_drains_the_embedded_queue_without_losing_or_repeating_a_message_and_keeps_order():
    total = 3000
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "queue.sqlite")
        first = Herald("--auth", "none", "--queue-path", path, "--drain-period", "0")
        try:
            # A raw WebSocket client: the python-socketio client dispatches each message on a
            # thread of its own, so the order it reports is not the order on the wire.
            ws, _ = connect(first.url)
            listener = RawReader(ws)
            for start in range(0, total, 500):
                batch = [{"event": "n", "data": i, "id": f"m{i}"} for i in range(start, start + 500)]
                assert first.post("/api/emit/batch", json.dumps(batch)) == 202
            # The SIGTERM must land mid-stream: once the client has the first messages.
            listener.wait_for(20)
            assert first.terminate() == 0
            delivered_first = delivered(first)
        finally:
            first.stop()
        listener.thread.join(timeout=10)
        seen = [event[1] for event in listener.received()]
        assert len(seen) == len(set(seen)), "a client saw a message twice"
        assert seen == list(range(len(seen))), "published messages were delivered out of order"
        # The server closes the connection right after the last hand-offs: the client sees a prefix.
        assert 20 <= len(seen) <= delivered_first
        assert delivered_first < total, "the whole stream was delivered before the SIGTERM took effect"

        second = Herald("--auth", "none", "--queue-path", path)
        try:
            deadline = time.time() + 30
            while time.time() < deadline:
                if json.loads(second.get("/readyz"))["checks"]["queue"] == "embedded: 0 waiting, 0 in flight":
                    break
                time.sleep(0.1)
            assert second.terminate() == 0
            delivered_second = delivered(second)
        finally:
            second.stop()
        assert delivered_first + delivered_second == total, "messages were lost or handed off twice across the restart"


def test_client_events_are_forwarded_to_an_upstream_queue(sqs):
    upstream = sqs.create_queue(QueueName=f"herald-upstream-{time.time_ns()}")["QueueUrl"]
    herald = Herald("--auth", "none", "--queue", "none", "--sqs-endpoint", ENDPOINT, "--upstream-events", "item_removed",
                    "--upstream-queue-url", upstream)
    try:
        client = socketio.Client(reconnection=False)
        client.connect(herald.url, transports=["websocket"], wait_timeout=10)
        assert client.call("item_removed", {"id": 5}, timeout=10) == {"queued": True}
        client.emit("ignored_event", {"x": 1})
        client.disconnect()
        messages = sqs.receive_message(QueueUrl=upstream, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
        assert len(messages) == 1
        body = json.loads(messages[0]["Body"])
        assert body["event"] == "item_removed" and body["args"] == [{"id": 5}] and body["namespace"] == "/"
        assert isinstance(body["socket"], str) and body["socket"]
        assert herald.terminate() == 0
    finally:
        herald.stop()

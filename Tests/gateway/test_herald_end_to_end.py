"""The herald executable end to end: queue → herald → python-socketio clients, and a drain on SIGTERM.

Needs HERALD_BIN_PATH (the built herald) and HERALD_TEST_SQS_ENDPOINT (moto), both set by
scripts/test.
"""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

import boto3
import pytest
import socketio

ENDPOINT = os.environ.get("HERALD_TEST_SQS_ENDPOINT")
BIN = os.environ.get("HERALD_BIN_PATH")
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}

pytestmark = pytest.mark.skipif(not (ENDPOINT and BIN), reason="run through scripts/test (needs moto and the built herald)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Herald:
    """A herald process on a free port, with its log kept for the test to read."""

    def __init__(self, *args):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        env = dict(os.environ, **AWS)
        self.process = subprocess.Popen(
            [os.path.join(BIN, "herald"), "serve", "--port", str(self.port), *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail("herald did not start:\n" + self.output())
                time.sleep(0.05)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return response.read().decode()

    def post(self, path, body):
        request = urllib.request.Request(self.url + path, data=body.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status

    def output(self):
        self.log.flush()
        with open(self.log.name) as log:
            return log.read()

    def terminate(self):
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        return code

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def delivered(self):
        found = re.findall(r"delivered=(\d+).*herald stopped", self.output())
        assert found, "herald did not log its stop:\n" + self.output()
        return int(found[-1])


class Listener:
    """A python-socketio client collecting every event of a namespace."""

    def __init__(self, url, namespace="/"):
        self.events = []
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self.record, namespace=namespace)
        self.client.connect(url, transports=["websocket"], namespaces=[namespace], wait_timeout=10)

    def record(self, event, *args):
        with self.lock:
            self.events.append([event, *args])

    def wait(self, count, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.events) >= count:
                    return list(self.events)
            time.sleep(0.02)
        with self.lock:
            return list(self.events)


@pytest.fixture
def sqs():
    return boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def test_messages_from_sqs_reach_clients_with_exactly_their_data(sqs):
    queue_url = sqs.create_queue(QueueName=f"herald-e2e-{time.time_ns()}")["QueueUrl"]
    herald = Herald("--queue", "sqs", "--sqs-endpoint", ENDPOINT, "--sqs-queue-url", queue_url,
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

        deadline = time.time() + 15
        while time.time() < deadline and "herald_queue_discarded_total" not in herald.get("/metrics"):
            time.sleep(0.2)
        metrics = herald.get("/metrics")
        assert re.search(r'herald_queue_discarded_total\{[^}]*\} 1', metrics), metrics
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
        first = Herald("--queue-path", path)
        try:
            listener = Listener(first.url)
            for start in range(0, total, 500):
                batch = [{"event": "n", "data": i, "id": f"m{i}"} for i in range(start, start + 500)]
                assert first.post("/api/emit/batch", json.dumps(batch)) == 202
            time.sleep(0.2)
            assert first.terminate() == 0
            delivered_first = first.delivered()
        finally:
            first.stop()
        seen = [event[1] for event in listener.events]
        assert len(seen) == len(set(seen)), "a client saw a message twice"
        assert seen == list(range(len(seen))), "published messages were delivered out of order"
        # The server closes the connection right after the last hand-offs; the python client may
        # drop events it had not dispatched yet when it sees the close, so it sees a prefix.
        assert 0 < len(seen) <= delivered_first

        second = Herald("--queue-path", path)
        try:
            deadline = time.time() + 30
            while time.time() < deadline:
                if json.loads(second.get("/readyz"))["checks"]["queue"] == "embedded: 0 waiting, 0 in flight":
                    break
                time.sleep(0.1)
            assert second.terminate() == 0
            delivered_second = second.delivered()
        finally:
            second.stop()
        assert 0 < delivered_first < total, f"the SIGTERM came {'after' if delivered_first == total else 'before'} the stream"
        assert delivered_first + delivered_second == total


def test_client_events_are_forwarded_to_an_upstream_queue(sqs):
    upstream = sqs.create_queue(QueueName=f"herald-upstream-{time.time_ns()}")["QueueUrl"]
    herald = Herald("--queue", "none", "--sqs-endpoint", ENDPOINT, "--upstream-events", "item_removed",
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

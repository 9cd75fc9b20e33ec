"""Tracing: herald exports OTLP/HTTP spans to a collector (a stub here) for queue receive →
hand-off → broadcast → delete, with the SQS message attribute `traceparent` as their parent, and
for upstream forwarding."""
import base64
import http.server
import json
import os
import threading
import time

import boto3
import pytest
import socketio

from herald_process import Herald, wait_until

ENDPOINT = os.environ.get("HERALD_TEST_SQS_ENDPOINT")
pytestmark = pytest.mark.skipif(not ENDPOINT, reason="run through scripts/test (needs moto)")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Collector:
    """An OTLP/HTTP (JSON) receiver of spans, which also answers as the upstream webhook."""

    def __init__(self):
        self.spans = []
        self.lock = threading.Lock()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    document = json.loads(body)
                    with collector.lock:
                        for resource in document.get("resourceSpans", []):
                            service = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}["service.name"]
                            for scope in resource.get("scopeSpans", []):
                                for span in scope.get("spans", []):
                                    collector.spans.append(dict(span, service=service["stringValue"]))
                    answer = b"{}"
                else:
                    answer = json.dumps({"ok": True}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def named(self, name):
        with self.lock:
            return [s for s in self.spans if s["name"] == name]


def hex_id(value):
    """An OTLP JSON id: hex as the OTLP spec writes it, or base64 as protobuf's JSON mapping does."""
    if all(c in "0123456789abcdef" for c in value) and len(value) in (16, 32):
        return value
    return base64.b64decode(value).hex()


def test_spans_of_a_queue_message_and_of_an_upstream_forward_are_exported_with_their_links():
    sqs = boto3.client("sqs", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    queue_url = sqs.create_queue(QueueName=f"herald-tracing-{time.time_ns()}")["QueueUrl"]
    collector = Collector()
    herald = Herald("--auth", "none", "--queue", "sqs", "--sqs-endpoint", ENDPOINT, "--sqs-queue-url", queue_url,
                    "--otel-endpoint", collector.url, "--otel-protocol", "http/json", "--otel-service-name", "herald-test",
                    "--upstream-events", "order", "--webhook-url", collector.url + "/hook")
    try:
        client = socketio.Client(reconnection=False)
        received = []
        client.on("item_added", lambda data: received.append(data))
        client.connect(herald.url, transports=["websocket"], wait_timeout=10)
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"event": "item_added", "data": {"id": 1}}), MessageAttributes={
            "traceparent": {"DataType": "String", "StringValue": f"00-{TRACE_ID}-{PARENT_ID}-01"}})
        wait_until(lambda: received == [{"id": 1}], 15, "the message")
        assert client.call("order", {"sku": "lamp"}, timeout=10) == {"ok": True}
        # The delete is confirmed within a second or so; the exporter flushes on SIGTERM.
        wait_until(lambda: int(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessagesNotVisible"]) == 0, 15, "the delete")
        client.disconnect()
        assert herald.terminate() == 0
    finally:
        herald.stop()
        collector.server.shutdown()

    receive, = collector.named("queue receive")
    hand_off, = collector.named("hand-off")
    broadcast, = collector.named("broadcast")
    delete, = collector.named("delete")
    forward, = collector.named("upstream forward")
    assert {s["service"] for s in collector.spans} == {"herald-test"}
    # One trace, the producer's: receive is the child of its traceparent; the rest are receive's.
    assert {hex_id(s["traceId"]) for s in (receive, hand_off, broadcast, delete)} == {TRACE_ID}
    assert hex_id(receive["parentSpanId"]) == PARENT_ID
    assert hex_id(hand_off["parentSpanId"]) == hex_id(receive["spanId"])
    assert hex_id(broadcast["parentSpanId"]) == hex_id(hand_off["spanId"])
    assert hex_id(delete["parentSpanId"]) == hex_id(receive["spanId"])
    # The message's span lasts until its delete is confirmed.
    assert int(receive["endTimeUnixNano"]) >= int(delete["endTimeUnixNano"]) >= int(broadcast["endTimeUnixNano"])
    attributes = {a["key"]: a["value"] for a in broadcast["attributes"]}
    assert attributes["socket.io.event"] == {"stringValue": "item_added"}
    # The forward is a trace of its own (client events carry no trace context).
    assert hex_id(forward["traceId"]) != TRACE_ID and not forward.get("parentSpanId")

"""herald nodes in one cluster over PostgreSQL, end to end: several `herald serve --cluster
postgres` processes on one PostgreSQL server (scripts/with-postgres) consuming one SQS queue
(moto, scripts/with-moto) as competing consumers, with real WebSocket clients on every node.
"""
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from herald_process import AWS, Herald, Listener, wait_until

# Competing consumers of one FIFO queue need receives that are atomic, as SQS's are.
SQS_ENDPOINT = os.environ.get("HERALD_TEST_SQS_ATOMIC_ENDPOINT")
POSTGRES_URL = os.environ.get("HERALD_TEST_POSTGRES_URL")
POSTGRES_CTL = os.environ.get("HERALD_TEST_POSTGRES_CTL")
READERS = os.path.join(os.path.dirname(__file__), "cluster_readers.py")

pytestmark = pytest.mark.skipif(not (SQS_ENDPOINT and POSTGRES_URL), reason="run through scripts/test (needs moto and PostgreSQL)")


def sqs():
    import boto3
    return boto3.client("sqs", endpoint_url=SQS_ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def nodes(count, *args):
    """`count` herald nodes of a cluster of their own (a channel prefix no other test uses),
    started, and each seeing the others."""
    prefix = f"test-{time.time_ns()}"
    started = [Herald("--auth", "none", "--cluster", "postgres", "--postgres-url", POSTGRES_URL,
                      "--cluster-channel-prefix", prefix, "--cluster-heartbeat-interval", "1",
                      "--cluster-heartbeat-timeout", "3", *args) for _ in range(count)]
    for node in started:
        wait_until(lambda: node.status("/readyz")[1]["checks"].get("cluster") == f"postgres: listening, {count} nodes", 20,
                   f"{node.url} to see {count} nodes")
    return started


def queue_counts(client, url):
    attributes = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def start_readers(cluster, per_node, total):
    readers = [subprocess.Popen([sys.executable, READERS, node.url, str(per_node), str(total), "120"],
                                stdout=subprocess.PIPE, text=True) for node in cluster]
    for reader in readers:
        assert reader.stdout.readline().strip() == "ready"
    return readers


def sessions_of(readers):
    sessions = []
    for reader in readers:
        sessions += json.loads(reader.stdout.readline())
        reader.wait(timeout=30)
    return sessions


def assert_every_session_got_everything_once(sessions, total):
    incomplete = [s for s in sessions if s["events"] != total or s["distinct"] != total]
    assert not incomplete, f"{len(incomplete)} clients missed messages, e.g. {incomplete[:3]}"
    assert sum(s["duplicates"] for s in sessions) == 0


def assert_every_session_got_everything_once_in_order(sessions, total):
    assert_every_session_got_everything_once(sessions, total)
    assert sum(s["out_of_order"] for s in sessions) == 0


def assert_every_node_counted_everything(cluster, total, per_node):
    """Each node's figures count every broadcast its clients got, the other nodes' too."""
    stats = [json.loads(node.get("/api/stats")) for node in cluster]
    assert [(s["messages"], s["deliveries"]) for s in stats] == [(total, total * per_node)] * len(cluster), stats


def assert_every_node_took_a_share_and_counted_everything(cluster, total, per_node):
    """The nodes competed for the queue: each handed off some of its `total` messages."""
    taken = [metric(node, "herald_queue_handed_off_total") for node in cluster]
    assert sum(taken) == total and all(share > 0 for share in taken), taken
    assert_every_node_counted_everything(cluster, total, per_node)


def test_three_nodes_share_one_fifo_queue_and_every_client_gets_every_message_once_in_group_order():
    """3 nodes, 300 clients (100 per node), 1,000 messages in 10 FIFO groups through one SQS
    queue: whichever node takes a message, every client of every node receives it exactly once,
    each group in order, and the queue is empty at the end. (moto's cost per call grows with the
    number of messages a queue has seen, so the 10,000-message run is the publish test below.)"""
    client = sqs()
    url = client.create_queue(QueueName=f"herald-cluster-{time.time_ns()}.fifo",
                              Attributes={"FifoQueue": "true", "VisibilityTimeout": "10"})["QueueUrl"]
    groups, per_group, per_node = 10, 100, 100
    total = groups * per_group
    cluster = nodes(3, "--queue", "sqs", "--sqs-endpoint", SQS_ENDPOINT, "--sqs-queue-url", url)
    readers = []
    try:
        readers = start_readers(cluster, per_node, total)
        for start in range(0, total, 10):
            client.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "MessageGroupId": f"g{n % groups}", "MessageDeduplicationId": str(n),
                 "MessageBody": json.dumps({"event": "item", "data": {"g": n % groups, "s": n // groups}})}
                for n in range(start, start + 10)
            ])
        sessions = sessions_of(readers)
        assert len(sessions) == 3 * per_node
        assert_every_session_got_everything_once_in_order(sessions, total)
        wait_until(lambda: queue_counts(client, url) == (0, 0), 30, "the queue to be empty")
        # Each node took a share of the queue: they compete for it.
        assert_every_node_took_a_share_and_counted_everything(cluster, total, per_node)
    finally:
        for reader in readers:
            reader.kill()
        for node in cluster:
            node.stop()


def test_ten_thousand_messages_published_on_three_nodes_reach_every_client_of_every_node_once():
    """3 nodes, 300 clients, 10,000 messages published through the publish API, each node
    publishing its own ordered stream: every client of every node receives all 10,000 once,
    each node's stream in its order."""
    per_node, batch = 100, 100
    streams = [3334, 3333, 3333]
    total = sum(streams)
    cluster = nodes(3, "--queue", "none")
    readers = []
    try:
        readers = start_readers(cluster, per_node, total)
        failures = []

        def publish(index):
            try:
                for start in range(0, streams[index], batch):
                    body = [{"event": "item", "data": {"g": index, "s": s}}
                            for s in range(start, min(start + batch, streams[index]))]
                    assert cluster[index].post("/api/emit/batch", json.dumps(body)) == 202
            except Exception as error:
                failures.append(error)

        publishers = [threading.Thread(target=publish, args=(index,)) for index in range(3)]
        for publisher in publishers:
            publisher.start()
        for publisher in publishers:
            publisher.join()
        assert not failures, failures
        sessions = sessions_of(readers)
        assert len(sessions) == 3 * per_node
        # The readers keep up, or what follows fails for them rather than for herald.
        assert [metric(node, "herald_slow_client_disconnects_total") for node in cluster] == [0, 0, 0]
        assert_every_session_got_everything_once_in_order(sessions, total)
        assert_every_node_counted_everything(cluster, total, per_node)
    finally:
        for reader in readers:
            reader.kill()
        for node in cluster:
            node.stop()


def metric(node, name):
    """The sum of a Prometheus metric's series on `node`'s /metrics."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in node.get("/metrics").splitlines()
               if line.startswith(name) and line[len(name)] in " {")


@pytest.mark.skipif(not POSTGRES_CTL, reason="run through scripts/with-postgres (needs its ctl)")
@pytest.mark.parametrize("recovery", [False, True], ids=["plain", "recovery"])
def test_postgres_stopped_mid_stream_queue_messages_stay_queued_and_every_client_gets_them_once_it_is_back(recovery):
    """2 nodes on one SQS queue; PostgreSQL stops while messages stream, then starts again: the
    messages whose publish to the cluster failed are not deleted and come again, the nodes listen
    again and see each other by themselves. Without recovery, every message reaches every client
    of the node that took it, and the other node's clients unless it was published while that
    node was not listening yet (README, Cluster: what is notified meanwhile is not received);
    every message sent once both listen again reaches every client. With recovery, a node reads
    back what it missed: every client gets every message, once."""
    client = sqs()
    url = client.create_queue(QueueName=f"herald-cluster-{time.time_ns()}", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    per_node, phase = 10, 100
    total = 3 * phase
    cluster = nodes(2, "--queue", "sqs", "--sqs-endpoint", SQS_ENDPOINT, "--sqs-queue-url", url, *(["--recovery"] if recovery else []))
    readers = []

    def send(first):
        for start in range(first, first + phase, 10):
            client.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "MessageBody": json.dumps({"event": "item", "data": {"g": 0, "s": n}})}
                for n in range(start, start + 10)
            ])

    try:
        readers = start_readers(cluster, per_node, total)
        send(0)
        subprocess.run([POSTGRES_CTL, "stop"], check=True, stdout=subprocess.DEVNULL)
        try:
            send(phase)
            wait_until(lambda: all(metric(node, "socketio_cluster_publish_failures_total") > 0 for node in cluster), 60,
                       "both nodes to fail publishing to the stopped PostgreSQL")
        finally:
            subprocess.run([POSTGRES_CTL, "start"], check=True, stdout=subprocess.DEVNULL)
        for node in cluster:
            wait_until(lambda: node.status("/readyz")[1]["checks"].get("cluster") == "postgres: listening, 2 nodes", 30,
                       f"{node.url} to listen again and see the other node")
        send(2 * phase)
        per_reader = [json.loads(reader.stdout.readline()) for reader in readers]
        for reader in readers:
            reader.wait(timeout=30)
        assert [len(sessions) for sessions in per_reader] == [per_node, per_node]
        if recovery:
            for sessions in per_reader:
                assert_every_session_got_everything_once(sessions, total)
        missed = [set(), set()]
        for node, sessions in enumerate(per_reader):
            for session in sessions:
                gaps = {sequence for _, sequence in session["gaps"]}
                assert session["distinct"] + len(gaps) == total, f"a client of node {node} missed the last messages: {session}"
                assert all(sequence < 2 * phase for sequence in gaps), f"missed after both listened again: {session}"
                missed[node] |= gaps
        assert not missed[0] & missed[1], f"messages that reached neither node's clients: {sorted(missed[0] & missed[1])}"
        wait_until(lambda: queue_counts(client, url) == (0, 0), 30, "the queue to be empty")
        # Messages came again because their publish failed, and the nodes reconnected.
        assert sum(metric(node, "herald_queue_retried_total") for node in cluster) > 0
        assert all(metric(node, "socketio_cluster_reconnects_total") > 0 for node in cluster)
    finally:
        for reader in readers:
            reader.kill()
        for node in cluster:
            node.stop()

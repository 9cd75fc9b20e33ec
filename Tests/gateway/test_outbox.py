"""The PostgreSQL outbox as herald's queue (`--queue postgres`), end to end: producers insert rows
inside their own transactions with psql, herald nodes consume the table, and real WebSocket
clients receive the events (scripts/with-postgres provides the server).
"""
import json
import os
import subprocess
import time

import pytest

from herald_process import Herald, wait_until
from test_cluster import (assert_every_node_took_a_share_and_counted_everything, assert_every_session_got_everything_once_in_order,
                          metric, nodes, sessions_of, start_readers)

POSTGRES_URL = os.environ.get("HERALD_TEST_POSTGRES_URL")
PSQL = os.environ.get("HERALD_TEST_PSQL")

pytestmark = pytest.mark.skipif(not (POSTGRES_URL and PSQL), reason="run through scripts/test (needs PostgreSQL)")


def psql(sql):
    """Runs SQL through psql, stopping at the first error; returns its unaligned output."""
    done = subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", POSTGRES_URL], input=sql,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def producers(table, keys, per_key, transaction):
    """One psql process per key, all at once, each inserting its key's rows in order,
    `transaction` rows per transaction: {"g": key, "s": sequence number}."""
    running = []
    for key in range(keys):
        script = []
        for start in range(0, per_key, transaction):
            rows = ", ".join(
                "('{}', 'g{}')".format(json.dumps({"event": "item", "data": {"g": key, "s": s}}), key)
                for s in range(start, min(start + transaction, per_key)))
            script.append(f"BEGIN; INSERT INTO {table} (body, key) VALUES {rows}; COMMIT;")
        running.append(subprocess.Popen([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", POSTGRES_URL], stdin=subprocess.PIPE,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        running[-1].stdin.write("\n".join(script))
        running[-1].stdin.close()
    for producer in running:
        assert producer.wait(timeout=300) == 0, producer.stderr.read()


def counts(table):
    return psql(f"SELECT (SELECT count(*) FROM {table}), (SELECT count(*) FROM {table}_dead_letters)")


def test_ten_thousand_rows_from_concurrent_producers_reach_every_client_once_in_key_order_and_none_is_left():
    """8 producers insert 10,000 rows at once (each its own key, 25 rows per transaction) while
    10 clients listen: every client receives every row once, each key's rows in insertion
    order; a row herald cannot route goes to the dead-letter table after its receives; the
    outbox is empty at the end."""
    table = f"outbox_{time.time_ns()}"
    keys, per_key, clients = 8, 1250, 10
    total = keys * per_key
    node = Herald("--auth", "none", "--queue", "postgres", "--postgres-url", POSTGRES_URL, "--outbox-table", table,
                  "--outbox-max-receives", "3")
    readers = []
    try:
        wait_until(lambda: node.status("/readyz")[0] == 200, 20, "herald to be ready")
        readers = start_readers([node], clients, total)
        psql(f"INSERT INTO {table} (body) VALUES ('not an envelope')")
        producers(table, keys, per_key, 25)
        sessions = sessions_of(readers)
        assert len(sessions) == clients
        assert_every_session_got_everything_once_in_order(sessions, total)
        wait_until(lambda: counts(table) == "0|1", 30, "the outbox to be empty and the unroutable row dead-lettered")
        assert psql(f"SELECT body, receive_count FROM {table}_dead_letters") == "not an envelope|3"
        assert json.loads(node.get("/api/stats"))["messages"] == total
        assert node.status("/readyz")[1]["checks"]["queue"] == "postgres: 0 waiting, 0 in flight, 1 dead letters"
    finally:
        for reader in readers:
            reader.kill()
        node.stop()


def test_two_cluster_nodes_compete_for_one_outbox_and_every_client_of_both_gets_each_row_once():
    """2 cluster nodes consume one outbox while 4 producers insert 2,000 rows: each row is taken
    by one node, published to the other, and reaches every client of both once, in key order
    (whichever node took the row before); both nodes took a share, and nothing is left."""
    table = f"outbox_{time.time_ns()}"
    keys, per_key, per_node = 4, 500, 20
    total = keys * per_key
    cluster = nodes(2, "--queue", "postgres", "--outbox-table", table)
    readers = []
    try:
        readers = start_readers(cluster, per_node, total)
        producers(table, keys, per_key, 10)
        sessions = sessions_of(readers)
        assert len(sessions) == 2 * per_node
        assert_every_session_got_everything_once_in_order(sessions, total)
        wait_until(lambda: counts(table) == "0|0", 30, "the outbox to be empty")
        # Each hand-off waited for what the other node published before it, and none gave up.
        assert all(metric(node, 'socketio_cluster_barriers_total{outcome="passed"}') > 0 for node in cluster)
        assert [metric(node, 'socketio_cluster_barriers_total{outcome="timed_out"}') for node in cluster] == [0, 0]
        assert_every_node_took_a_share_and_counted_everything(cluster, total, per_node)
    finally:
        for reader in readers:
            reader.kill()
        for node in cluster:
            node.stop()

"""Hostile clients: each case attacks a herald with small limits while a bystander client keeps
receiving every message published meanwhile; the attacker gets the clear close reason or HTTP
status, the metric counts it, and the process's descriptors come back to where they were."""
import json
import os
import re
import socket
import threading
import time

import pytest
import websocket

from herald_process import Herald, Listener, connect, wait_until


def descriptors(herald):
    return len(os.listdir(f"/proc/{herald.process.pid}/fd"))


def metric(herald, name, **labels):
    """A counter of /metrics, 0 when it is not there yet."""
    label = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(label) + r"\}" if labels else "") + r" (\d+)"
    found = re.search(pattern, herald.get("/metrics"))
    return int(found.group(1)) if found else 0


class Bystander:
    """A client that must get every message published while an attack goes on, in order."""

    def __init__(self, herald):
        self.herald = herald
        self.listener = Listener(herald.url)
        self.sent = 0
        self.running = True
        self.thread = threading.Thread(target=self.publish, daemon=True)
        self.thread.start()

    def publish(self):
        while self.running:
            self.herald.post("/api/emit", json.dumps({"event": "tick", "data": self.sent}))
            self.sent += 1
            time.sleep(0.01)

    def check(self):
        """Stops publishing (once it published through the attack) and checks that every message
        arrived, in order."""
        wait_until(lambda: self.sent >= 20, 10, "the bystander's publishes")
        self.running = False
        self.thread.join()
        events = self.listener.wait(self.sent, timeout=20)
        assert [e[1] for e in events] == list(range(self.sent)), f"the bystander missed messages: got {len(events)} of {self.sent}"


@pytest.fixture
def herald(tmp_path):
    server = Herald("--auth", "none", "--queue", "none", "--max-attachments", "4", cwd=tmp_path)
    yield server
    server.stop()


def attack_closes_with(herald, packet, reason, opcode=websocket.ABNF.OPCODE_TEXT):
    """Sends one packet on a session of its own; the server must close it, counting `reason`."""
    before = metric(herald, "herald_disconnections_total", reason=reason)
    ws, _ = connect(herald.url)
    ws.send(packet, opcode)
    ws.settimeout(10)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            if ws.recv() in ("", None):
                raise ConnectionError("closed")
    wait_until(lambda: metric(herald, "herald_disconnections_total", reason=reason) == before + 1, 10, f"a '{reason}' close")


@pytest.mark.parametrize("name, packet", [
    ("deeply nested JSON", '42["e",' + "[" * 10_000 + "]" * 10_000 + "]"),
    ("10,000 binary attachments announced", '4510000-["e",{"_placeholder":true,"num":0}]'),
    ("an ack id past Int64", '4299999999999999999999999["e"]'),
    ("a reserved event name", '42["disconnect"]'),
    ("invalid UTF-8 in a text frame", b'42["\xff\xfe"]'),
    ("a packet for a namespace never joined", '42/nowhere,["e"]'),
])
def test_malformed_packets_close_the_attacker_and_spare_the_bystander(herald, name, packet):
    bystander = Bystander(herald)
    baseline = descriptors(herald)
    for _ in range(5):
        attack_closes_with(herald, packet, "parse error" if "namespace" not in name else "forced close")
    bystander.check()
    wait_until(lambda: descriptors(herald) <= baseline, 10, "the attacker's descriptors to be released")


def test_a_gigabyte_content_length_is_refused_without_reading_it(herald):
    bystander = Bystander(herald)
    baseline = descriptors(herald)
    polling_sid = json.loads(herald.get("/socket.io/?EIO=4&transport=polling")[1:])["sid"]
    with socket.create_connection(("127.0.0.1", herald.port), timeout=10) as raw:
        raw.sendall((f"POST /socket.io/?EIO=4&transport=polling&sid={polling_sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: text/plain\r\nContent-Length: 1073741824\r\n\r\n4hello").encode())
        answer = raw.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    bystander.check()
    wait_until(lambda: descriptors(herald) <= baseline, 10, "the descriptors to be released")


def test_a_polling_get_held_open_without_reading_costs_one_descriptor_until_it_goes(herald):
    bystander = Bystander(herald)
    baseline = descriptors(herald)
    sid = json.loads(herald.get("/socket.io/?EIO=4&transport=polling")[1:])["sid"]
    holders = []
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", herald.port), timeout=10)
        raw.sendall(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        holders.append(raw)
    for raw in holders:
        raw.close()
    bystander.check()
    wait_until(lambda: descriptors(herald) <= baseline, 15, "the held GETs' descriptors to be released")


def test_a_websocket_that_never_reads_is_disconnected_as_a_slow_client(tmp_path):
    herald = Herald("--auth", "none", "--queue", "none", cwd=tmp_path)
    try:
        bystander = Bystander(herald)
        baseline = descriptors(herald)
        before = metric(herald, "herald_disconnections_total", reason="slow client")
        # A client that connects, then never reads: its socket buffers fill with big broadcasts.
        ws, _ = connect(herald.url)
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        big = "x" * 200_000
        deadline = time.time() + 30
        while metric(herald, "herald_disconnections_total", reason="slow client") == before and time.time() < deadline:
            herald.post("/api/emit", json.dumps({"event": "big", "data": big}))
        assert metric(herald, "herald_disconnections_total", reason="slow client") == before + 1
        assert metric(herald, "herald_slow_client_disconnects_total") >= 1
        bystander.running = False
        bystander.thread.join()

        # The bystander reads: it got every tick, in order, among the big messages.
        def ticks():
            with bystander.listener.lock:
                return [e[1] for e in bystander.listener.events if e[0] == "tick"]
        wait_until(lambda: len(ticks()) == bystander.sent, 30, "every tick")
        assert ticks() == list(range(bystander.sent))
        ws.sock.close()
        wait_until(lambda: descriptors(herald) <= baseline, 15, "the slow client's descriptor to be released")
    finally:
        herald.stop()


def test_a_flood_of_handshakes_from_one_address_is_refused_past_its_limit_and_others_connect(tmp_path):
    herald = Herald("--auth", "none", "--queue", "none", "--max-handshakes-per-address", "20", cwd=tmp_path)
    try:
        bystander = Bystander(herald)  # from 127.0.0.1
        answers = []
        started = time.monotonic()
        for _ in range(60):  # from 127.0.0.2, faster than 2 per second
            with socket.create_connection(("127.0.0.1", herald.port), timeout=10, source_address=("127.0.0.2", 0)) as raw:
                raw.sendall(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                answers.append(raw.recv(4096).decode(errors="replace"))
        elapsed = time.monotonic() - started
        accepted = [a for a in answers if a.startswith("HTTP/1.1 200")]
        refused = [a for a in answers if a.startswith("HTTP/1.1 429")]
        # The burst of 20, and what the bucket refilled (2 per second) while the flood went on.
        assert 20 <= len(accepted) <= 20 + 2 * elapsed + 1, (len(accepted), elapsed)
        assert len(accepted) + len(refused) == 60, [a.split("\r\n")[0] for a in answers]
        assert '{"code":3,"message":"Too many connections from this address"}' in refused[0]
        assert metric(herald, "herald_handshakes_refused_total") == len(refused)
        # Another address is not limited by the first one's flood.
        other = Listener(herald.url)
        assert other.client.connected
        bystander.check()
    finally:
        herald.stop()

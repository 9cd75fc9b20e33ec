"""Hostile clients: each case attacks a herald with small limits while a bystander client keeps
receiving every message published meanwhile; the attacker gets the clear close reason or HTTP
status, the metric counts it, and the process's descriptors and memory come back to where they
were."""
import json
import os
import re
import socket
import threading
import time

import pytest
import websocket

from herald_process import Herald, Listener, connect, next_packet, wait_until


def descriptors(herald):
    return len(os.listdir(f"/proc/{herald.process.pid}/fd"))


def resident_mib(herald):
    with open(f"/proc/{herald.process.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


class Baseline:
    """The server's descriptors and resident memory before an attack. Afterwards the descriptors
    must come back to that count, and the memory within `slack` MiB of it: what the allocator
    keeps for reuse, far below what an attack that was buffered would leave (every case sends at
    least that much, or announces it)."""

    def __init__(self, herald, slack=48):
        self.herald = herald
        self.slack = slack
        self.descriptors = descriptors(herald)
        self.resident = resident_mib(herald)

    def check(self, timeout=15):
        wait_until(lambda: descriptors(self.herald) <= self.descriptors, timeout, "the attack's descriptors to be released")
        resident = resident_mib(self.herald)
        assert resident <= self.resident + self.slack, f"resident memory grew from {self.resident:.0f} to {resident:.0f} MiB"


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
    baseline = Baseline(herald)
    for _ in range(5):
        attack_closes_with(herald, packet, "parse error" if "namespace" not in name else "forced close")
    bystander.check()
    baseline.check()


def test_a_gigabyte_content_length_is_refused_without_reading_it(herald):
    bystander = Bystander(herald)
    baseline = Baseline(herald)
    polling_sid = json.loads(herald.get("/socket.io/?EIO=4&transport=polling")[1:])["sid"]
    with socket.create_connection(("127.0.0.1", herald.port), timeout=10) as raw:
        raw.sendall((f"POST /socket.io/?EIO=4&transport=polling&sid={polling_sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: text/plain\r\nContent-Length: 1073741824\r\n\r\n4hello").encode())
        answer = raw.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    bystander.check()
    baseline.check()


def test_a_polling_get_held_open_without_reading_costs_one_descriptor_until_it_goes(herald):
    bystander = Bystander(herald)
    baseline = Baseline(herald)
    sid = json.loads(herald.get("/socket.io/?EIO=4&transport=polling")[1:])["sid"]
    holders = []
    for _ in range(20):
        raw = socket.create_connection(("127.0.0.1", herald.port), timeout=10)
        raw.sendall(f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        holders.append(raw)
    for raw in holders:
        raw.close()
    bystander.check()
    baseline.check()


def test_a_websocket_that_never_reads_is_disconnected_as_a_slow_client(tmp_path):
    herald = Herald("--auth", "none", "--queue", "none", cwd=tmp_path)
    try:
        bystander = Bystander(herald)
        baseline = Baseline(herald)
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
        baseline.check()
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


def test_events_past_the_rate_limit_disconnect_the_sender_and_not_a_client_within_it(tmp_path):
    herald = Herald("--auth", "none", "--queue", "none", "--max-events-per-second", "10", cwd=tmp_path)
    try:
        bystander = Bystander(herald)
        baseline = Baseline(herald)
        # Within the limit: 15 events over 2 s against a burst of 10 refilled at 10 per second.
        polite, _ = connect(herald.url)
        for _ in range(15):
            polite.send('42["chat","hi"]')
            time.sleep(0.13)
        # Past it: 11 events in one write, read together. The 11th disconnects the sender from
        # the namespace, as a server disconnect (`41`); its Engine.IO session stays open.
        flooder, _ = connect(herald.url)
        flooder.sock.sendall(b"".join(websocket_frame(0x1, b'42["chat","hi"]') for _ in range(11)))
        assert packets_until(flooder, "41")[-1] == "41"
        wait_until(lambda: metric(herald, "herald_event_rate_disconnects_total") == 1, 10, "the rate limit's disconnect")
        flooder.send("40")  # the session is still open: the namespace can be joined again
        assert packets_until(flooder, "40")[-1].startswith('40{"sid":')
        # The polite client was not disconnected: it still gets the bystander's ticks.
        assert "41" not in packets_until(polite, '42["tick"')
        bystander.check()
        polite.close()
        flooder.close()
        baseline.check()
    finally:
        herald.stop()


def packets_until(ws, prefix, timeout=10):
    """The packets a session receives until one that starts with `prefix` (pings answered)."""
    packets = [next_packet(ws, timeout)]
    while not packets[-1].startswith(prefix):
        packets.append(next_packet(ws, timeout))
    return packets


def websocket_frame(opcode, payload, fin=True, rsv=0, masked=True, length=None):
    """A client frame written by hand, so that it can break the rules."""
    length = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 1 << 16:
        head += bytes([mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + length.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def raw_websocket(herald):
    """A WebSocket session opened on a plain socket, past the Engine.IO open packet."""
    raw = socket.create_connection(("127.0.0.1", herald.port), timeout=10)
    raw.sendall(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: aGVyYWxkLWhvc3RpbGUhIQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return raw, answer.split(b"\r\n\r\n", 1)[1]


def close_code(raw, received):
    """Reads until the server closes: the code of its close frame (None without one)."""
    while True:
        try:
            chunk = raw.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        received += chunk
    while len(received) >= 2:
        opcode, length = received[0] & 0x0F, received[1] & 0x7F
        start = 2 + (2 if length == 126 else 8 if length == 127 else 0)
        if length >= 126:
            length = int.from_bytes(received[2:start], "big")
        if opcode == 0x8:
            return int.from_bytes(received[start:start + 2], "big") if length >= 2 else None
        received = received[start + length:]
    return None


@pytest.mark.parametrize("frame, code", [
    pytest.param(lambda: websocket_frame(0x3, b"4x"), 1002, id="an unknown opcode"),
    pytest.param(lambda: websocket_frame(0x1, b'42["e"]', rsv=0b100), 1002, id="a reserved bit set"),
    pytest.param(lambda: websocket_frame(0x1, b'42["e"]', masked=False), 1002, id="an unmasked client frame"),
    pytest.param(lambda: websocket_frame(0x9, b"ping", fin=False), 1002, id="a fragmented control frame"),
    pytest.param(lambda: websocket_frame(0x9, b"p" * 126), 1002, id="a control frame past 125 bytes"),
    pytest.param(lambda: websocket_frame(0x1, b"", length=1 << 62), 1009, id="a frame announcing 2^62 bytes"),
    pytest.param(lambda: websocket_frame(0x1, b"4" + b"x" * 1_100_000), 1009, id="a frame past the 1 MB buffer limit"),
    pytest.param(lambda: websocket_frame(0x0, b"42"), 1002, id="a continuation with no frame to continue"),
    pytest.param(lambda: websocket_frame(0x1, b"4", fin=False) + websocket_frame(0x1, b"2"), 1002, id="a new message inside a fragmented one"),
])
def test_malformed_websocket_frames_are_closed_with_the_protocol_code(herald, frame, code):
    bystander = Bystander(herald)
    baseline = Baseline(herald)
    errors = metric(herald, "herald_disconnections_total", reason="transport error")
    for _ in range(3):
        raw, received = raw_websocket(herald)
        with raw:
            raw.sendall(frame())
            assert close_code(raw, received) == code
    wait_until(lambda: metric(herald, "herald_disconnections_total", reason="transport error") == errors + 3, 10,
               "three sessions closed as transport errors")
    bystander.check()
    baseline.check()

"""herald stays bounded under clients that stop reading and refuses what it must not serve.

Runs the real herald executable (HERALD_BIN_PATH, set by scripts/test) and talks to it over raw
sockets where a python-socketio client would behave too well: WebSocket clients that never read,
a polling session that never polls, browsers of other origins.
"""
import base64
import json
import os
import socket
import struct
import time
import urllib.error
import urllib.request

import pytest

from herald_process import BIN, Herald, Listener, wait_until

pytestmark = pytest.mark.skipif(not BIN, reason="run through scripts/test (needs the built herald)")


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def resident_bytes(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def http(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body.encode() if body is not None else None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def masked_text_frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def websocket_handshake(port, origin=None, receive_buffer=None):
    """Opens a raw WebSocket to herald's Socket.IO endpoint; returns the socket and the status line."""
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return sock, head.split(b"\r\n", 1)[0].decode()


def test_clients_that_stop_reading_are_dropped_and_give_back_their_descriptors():
    herald = Herald("--auth", "none", "--queue", "none")
    stuck = []
    try:
        pid = herald.process.pid
        bystander = Listener(herald.url)
        baseline_descriptors = descriptors(pid)
        baseline_rss = resident_bytes(pid)

        for _ in range(200):
            sock, status = websocket_handshake(herald.port, receive_buffer=4096)
            assert status == "HTTP/1.1 101 Switching Protocols"
            sock.sendall(masked_text_frame("40"))
            stuck.append(sock)
        wait_until(lambda: descriptors(pid) >= baseline_descriptors + 200, 20, "200 stuck clients to connect")
        wait_until(lambda: json.loads(herald.get("/api/stats"))["clients"] == 201, 20, "200 stuck clients to join /")

        data = "x" * (256 * 1024)
        published = 60
        for index in range(published):
            # The bystander reads, but on a loaded machine slowly: publishing waits until it is
            # within 8 messages (2 MB), so that only the stuck clients pass the 4 MB limit.
            assert bystander.wait_until(lambda listener: len(listener.events) >= index - 8, timeout=60)
            assert herald.post("/api/emit", json.dumps({"event": "big", "data": {"n": index, "pad": data}})) == 202

        # Each stuck client has far more than the 4 MB limit queued: herald closes them all, even
        # though none will ever read its close frame.
        wait_until(lambda: descriptors(pid) <= baseline_descriptors + 2, 30, "the stuck clients' descriptors to be released")
        received = bystander.wait(published, timeout=60)
        assert [event[1]["n"] for event in received] == list(range(published))
        assert resident_bytes(pid) < baseline_rss + 96 * 1024 * 1024
        assert json.loads(herald.get("/api/stats"))["clients"] == 1
    finally:
        for sock in stuck:
            sock.close()
        herald.stop()


def test_a_polling_session_that_never_polls_is_closed_once_its_buffer_passes_the_byte_limit():
    herald = Herald("--auth", "none", "--queue", "none")
    try:
        base = f"{herald.url}/socket.io/?EIO=4&transport=polling"
        status, _, body = http("GET", base)
        assert status == 200
        sid = json.loads(body[1:])["sid"]
        assert http("POST", f"{base}&sid={sid}", "40")[0] == 200
        status, _, body = http("GET", f"{base}&sid={sid}")
        assert status == 200 and body.startswith("40{")

        # Five messages of 900 kB: 4.5 MB waiting for a GET that never comes, past the 4 MB limit.
        for index in range(5):
            assert herald.post("/api/emit", json.dumps({"event": "big", "data": {"n": index, "pad": "y" * 900_000}})) == 202
        status, _, body = http("GET", f"{base}&sid={sid}")
        assert (status, json.loads(body)) == (400, {"code": 1, "message": "Session ID unknown"})
    finally:
        herald.stop()


def test_by_default_only_pages_of_herald_s_own_origin_may_open_sessions():
    herald = Herald("--auth", "none", "--queue", "none")
    try:
        handshake = f"{herald.url}/socket.io/?EIO=4&transport=polling"
        status, _, body = http("GET", handshake, headers={"Origin": "https://evil.example"})
        assert (status, json.loads(body)) == (403, {"code": 4, "message": "Forbidden"})
        status, headers, _ = http("GET", handshake, headers={"Origin": f"http://127.0.0.1:{herald.port}"})
        assert status == 200 and "Access-Control-Allow-Origin" not in headers
        assert http("GET", handshake)[0] == 200

        sock, status = websocket_handshake(herald.port, origin="https://evil.example")
        sock.close()
        assert status == "HTTP/1.1 400 Bad Request"
        sock, status = websocket_handshake(herald.port, origin=f"http://127.0.0.1:{herald.port}")
        sock.close()
        assert status == "HTTP/1.1 101 Switching Protocols"
    finally:
        herald.stop()


def test_listed_origins_may_connect_over_both_transports_with_credentials_when_allowed():
    herald = Herald("--auth", "none", "--queue", "none", "--allowed-origins", "https://app.example", "--allow-credentials", "true")
    try:
        handshake = f"{herald.url}/socket.io/?EIO=4&transport=polling"
        status, headers, _ = http("GET", handshake, headers={"Origin": "https://app.example"})
        assert status == 200
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert headers["Access-Control-Allow-Credentials"] == "true"
        assert headers["Vary"] == "Origin"
        status, headers, _ = http("OPTIONS", handshake, headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert "POST" in headers["Access-Control-Allow-Methods"]
        assert http("GET", handshake, headers={"Origin": "https://other.example"})[0] == 403

        sock, status = websocket_handshake(herald.port, origin="https://app.example")
        sock.close()
        assert status == "HTTP/1.1 101 Switching Protocols"
        sock, status = websocket_handshake(herald.port, origin="https://other.example")
        sock.close()
        assert status == "HTTP/1.1 400 Bad Request"
    finally:
        herald.stop()

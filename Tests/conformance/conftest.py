"""Fixtures for the protocol conformance tests: a running conformance-server and raw clients.

The tests speak Engine.IO and Socket.IO on the wire (HTTP requests and WebSocket frames), so
that they check the exact bytes the official clients and protocol suites depend on.
"""
import os
import socket
import subprocess
import time

import pytest
import requests
import websocket

PING_INTERVAL = 0.3
PING_TIMEOUT = 0.2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    """Starts `conformance-server` (from HERALD_BIN_PATH, set by scripts/test) on a free port."""
    bin_path = os.environ.get("HERALD_BIN_PATH")
    if not bin_path:
        pytest.fail("HERALD_BIN_PATH is not set: run the tests with scripts/test")
    port = free_port()
    process = subprocess.Popen(
        [os.path.join(bin_path, "conformance-server"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            requests.get(f"{base}/engine.io/?EIO=4&transport=polling", timeout=1)
            break
        except requests.ConnectionError:
            if time.time() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("conformance-server did not start")
            time.sleep(0.05)
    yield base
    process.terminate()
    process.wait(timeout=10)


class Client:
    """Raw Engine.IO requests against one mount path of the server."""

    def __init__(self, base, path):
        self.base = base
        self.path = path

    def url(self, sid=None, transport="polling", eio="4"):
        query = f"EIO={eio}&transport={transport}"
        if sid:
            query += f"&sid={sid}"
        return f"{self.base}{self.path}?{query}"

    def handshake(self):
        response = requests.get(self.url(), timeout=5)
        assert response.status_code == 200, response.text
        assert response.text.startswith("0")
        import json

        return json.loads(response.text[1:])["sid"]

    def get(self, sid, timeout=5):
        return requests.get(self.url(sid), timeout=timeout)

    def post(self, sid, body):
        return requests.post(self.url(sid), data=body, timeout=5)

    def ws_url(self, sid=None, eio="4", transport="websocket"):
        return self.url(sid, transport=transport, eio=eio).replace("http://", "ws://")

    def websocket(self, sid=None, **kwargs):
        return websocket.create_connection(self.ws_url(sid, **kwargs), timeout=5)


@pytest.fixture
def engine(server):
    return Client(server, "/engine.io/")


@pytest.fixture
def sio(server):
    return Client(server, "/socket.io/")


@pytest.fixture(params=["/engine.io/", "/socket.io/"])
def any_engine(server, request):
    """Engine.IO behaviour holds on both mounts: the bare echo server and the Socket.IO server."""
    return Client(server, request.param)


def recv(ws):
    """The next data frame: str for text, bytes for binary."""
    return ws.recv()


def closed(ws, within=3.0):
    """Whether the server closes the WebSocket within `within` seconds (data frames ignored)."""
    ws.settimeout(within)
    deadline = time.time() + within
    try:
        while time.time() < deadline:
            opcode, _ = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return True
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        return True
    except websocket.WebSocketTimeoutException:
        return False
    return False


def recv_skipping_pings(ws):
    """The next data frame that is not a ping; pings are answered on the way."""
    while True:
        message = recv(ws)
        if message != "2":
            return message
        ws.send("3")


def connect(sio, packet="40"):
    """A WebSocket session connected to the main namespace; returns it after the `auth` event."""
    ws = sio.websocket()
    recv(ws)
    ws.send(packet)
    assert recv(ws).startswith("40")
    assert recv(ws).startswith('42["auth"')
    return ws

"""The herald executable as the gateway tests run it: started on a free port, or run to its exit.

Needs HERALD_BIN_PATH (the built herald), set by scripts/test.
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest
import socketio
import websocket

BIN = os.environ.get("HERALD_BIN_PATH")
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
SECRET = "a-test-secret-of-at-least-32-bytes!"


def executable():
    return os.path.join(BIN, "herald")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, cwd=None, timeout=30):
    """Runs herald to its exit: (exit status, stdout, stderr). HERALD_* variables of the test
    environment are left out, so that only the arguments configure it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    done = subprocess.run([executable(), *args], capture_output=True, text=True, cwd=cwd, env=dict(env, **AWS),
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout, done.stderr


def token(claims, secret=SECRET):
    """An HS256 JWT with `claims`."""
    def encode(part):
        return base64.urlsafe_b64encode(part).rstrip(b"=").decode()
    header = encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = encode(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{encode(signature)}"


def wait_until(condition, timeout, what):
    """Checks `condition` every 50 ms until it holds; fails after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Herald:
    """A herald process on a free port (or `port`), with its log kept for the test to read."""

    def __init__(self, *args, port=None, cwd=None, port_flag=True, scheme="http", verify=None):
        """`port_flag` False leaves the port to the arguments' configuration file (`port`, then, names it);
        `scheme` https, with the CA file `verify`, is for a herald serving TLS."""
        self.port = port or free_port()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [executable(), "serve", *(["--port", str(self.port)] if port_flag else []), *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, **AWS), cwd=cwd, stdin=subprocess.DEVNULL,
        )
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.context = ssl.create_default_context(cafile=verify) if verify else None
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1, context=self.context)
                return
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail("herald did not start:\n" + self.output())
                time.sleep(0.05)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=5, context=self.context) as response:
            return response.read().decode()

    def status(self, path):
        """The status and JSON body of a GET, whatever the status."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5, context=self.context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def post(self, path, body):
        request = urllib.request.Request(self.url + path, data=body.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
            return response.status

    def output(self):
        self.log.flush()
        with open(self.log.name) as log:
            return log.read()

    def signal(self, number=signal.SIGTERM):
        self.process.send_signal(number)

    def terminate(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Listener:
    """A python-socketio client collecting every event of a namespace, and its disconnects."""

    def __init__(self, url, namespace="/", auth=None, reconnection=False, serializer="default"):
        self.events = []
        self.disconnects = []
        self.connects = 0
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.client = socketio.Client(reconnection=reconnection, reconnection_delay=0.2, reconnection_delay_max=0.5,
                                      serializer=serializer)
        self.client.on("*", self.record, namespace=namespace)
        self.client.on("connect", self.connected, namespace=namespace)
        self.client.on("disconnect", self.disconnected, namespace=namespace)
        self.client.connect(url, transports=["websocket"], namespaces=[namespace], auth=auth, wait_timeout=10)

    def record(self, event, *args):
        with self.changed:
            self.events.append([event, *args])
            self.changed.notify_all()

    def connected(self):
        with self.changed:
            self.connects += 1
            self.changed.notify_all()

    def disconnected(self, reason):
        with self.changed:
            self.disconnects.append((time.monotonic(), reason))
            self.changed.notify_all()

    def wait_until(self, condition, timeout=15):
        """Waits until `condition(self)` holds (checked on every event); returns whether it did."""
        with self.changed:
            return self.changed.wait_for(lambda: condition(self), timeout=timeout)

    def wait(self, count, timeout=15):
        self.wait_until(lambda listener: len(listener.events) >= count, timeout)
        with self.lock:
            return list(self.events)


class RawReader:
    """Reads a raw WebSocket session's events (`42…` packets, decoded) on a thread until the
    connection ends, in the order they arrive: unlike the python-socketio client, which hands each
    message to a thread of its own and so may reorder them."""

    def __init__(self, ws):
        self.ws = ws
        # The connection's timeout is for the handshake: a quiet stretch (a killed herald's rows
        # waiting out their visibility timeout) must not end the reading.
        ws.settimeout(None)
        self.events = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        try:
            while True:
                text = self.ws.recv()
                if not text:
                    return
                if text == "2":
                    self.ws.send("3")
                elif text.startswith("42"):
                    with self.lock:
                        self.events.append(json.loads(text[2:]))
        except Exception:
            return

    def received(self):
        with self.lock:
            return list(self.events)

    def wait_for(self, count, timeout=30):
        wait_until(lambda: len(self.received()) >= count, timeout, f"{count} events")
        return self.received()


def open_session(url, auth=None):
    """Opens a WebSocket session and sends CONNECT for `/`: the socket and the server's reply."""
    ws = websocket.create_connection(url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket", timeout=10)
    assert ws.recv().startswith("0")
    ws.send("40" + (json.dumps(auth) if auth else ""))
    return ws, next_packet(ws)


def connect(url, auth=None):
    ws, reply = open_session(url, auth)
    assert reply.startswith("40"), reply
    return ws, json.loads(reply[2:])


def next_packet(ws, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = ws.recv()
        if text == "2":
            ws.send("3")
            continue
        return text
    raise TimeoutError(f"no packet within {timeout} s")

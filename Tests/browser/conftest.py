"""Fixtures for the browser tests: a running `herald serve` and a headless Chromium driven over
the DevTools protocol (CDP) with websocket-client.

Chromium comes from Debian (`apt-get install chromium fonts-dejavu-core`); set HERALD_CHROMIUM
to use another binary. Every process started here is stopped at teardown, even on failure.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests
import websocket

WAIT = 15.0  # seconds: the bound of every wait in these tests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(process, group=False):
    """Stops a process we started (and, with `group`, the process group it leads): SIGTERM, then
    SIGKILL after a grace period."""
    if process.poll() is None:
        try:
            if group:
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.terminate()
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    if group:
        # The browser's helpers (zygote, renderer, GPU process) share its process group.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    elif process.poll() is None:
        process.kill()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


class Herald:
    def __init__(self, base, process, log_path):
        self.base = base
        self.process = process
        self.log_path = log_path

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def emit(self, envelope):
        """POST /api/emit with compact JSON, so the feed's preview is predictable."""
        body = json.dumps(envelope, separators=(",", ":"))
        response = requests.post(
            f"{self.base}/api/emit", data=body, headers={"Content-Type": "application/json"}, timeout=5
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 1}


@pytest.fixture
def herald(tmp_path):
    """`herald serve` with its defaults (no auth, no API key, namespace /) on a free port."""
    bin_path = os.environ.get("HERALD_BIN_PATH")
    if not bin_path:
        pytest.fail("HERALD_BIN_PATH is not set: run the tests with scripts/test "
                    "or HERALD_BIN_PATH=$(swift build --show-bin-path)")
    binary = os.path.join(bin_path, "herald")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no herald binary at {binary}: run swift build first")
    port = free_port()
    log_path = tmp_path / "herald.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [binary, "serve", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Herald(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                if requests.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"herald did not start (exit status {process.poll()}):\n{server.log()}")
            time.sleep(0.05)
        yield server
    finally:
        stop(process)


class CDPError(Exception):
    pass


class Page:
    """A CDP session with one page target: commands by id; events kept for inspection."""

    def __init__(self, ws_url):
        # Chromium refuses DevTools WebSocket connections that carry an Origin it does not allow.
        self.ws = websocket.create_connection(ws_url, timeout=WAIT, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass

    def send(self, method, timeout=WAIT, **params):
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CDPError(f"no answer to {method} within {timeout} s")
            self.ws.settimeout(remaining)
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise CDPError(f"evaluating {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def exceptions(self):
        """The uncaught JavaScript exceptions the page reported so far."""
        return [e["params"]["exceptionDetails"] for e in self.events if e["method"] == "Runtime.exceptionThrown"]

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


@pytest.fixture
def page():
    """A blank page in a fresh headless Chromium, with the Page and Runtime domains enabled."""
    chromium = os.environ.get("HERALD_CHROMIUM", "chromium")
    if not shutil.which(chromium):
        pytest.fail(f"{chromium} not found: install Debian's chromium (apt-get install chromium "
                    "fonts-dejavu-core) or set HERALD_CHROMIUM")
    profile = tempfile.mkdtemp(prefix="herald-chromium-")
    process = subprocess.Popen(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--window-size=1200,900",
            "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
            f"--user-data-dir={profile}", "about:blank",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    session = None
    try:
        active_port = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + WAIT
        port = None
        while port is None:
            try:
                with open(active_port) as f:
                    first = f.readline().strip()
                if first.isdigit():
                    port = int(first)
            except OSError:
                pass
            if port is None:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Chromium did not open its DevTools port (exit status {process.poll()})")
                time.sleep(0.05)
        target = None
        while target is None:
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                target = next((t for t in targets if t.get("type") == "page"), None)
            except (requests.ConnectionError, ValueError):
                pass
            if target is None:
                if time.monotonic() > deadline:
                    pytest.fail("Chromium has no page target")
                time.sleep(0.05)
        session = Page(target["webSocketDebuggerUrl"])
        session.send("Page.enable")
        session.send("Runtime.enable")
        yield session
    finally:
        if session is not None:
            session.close()
        stop(process, group=True)
        shutil.rmtree(profile, ignore_errors=True)

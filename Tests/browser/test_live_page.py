"""The live page at `/`, in a real browser: it shows herald's figures and keeps them current.

Three python-socketio clients connect, events are published through the HTTP API, and the
figures are read off the page's DOM in headless Chromium, which must show the right numbers and
then update them in place as clients leave and more events arrive.

Chromium comes from Debian (`apt-get install chromium fonts-dejavu-core`); set HERALD_CHROMIUM
to use another binary. The page is driven over the DevTools protocol (CDP) with websocket-client.
Every process started here is stopped at teardown, even on failure. (No conftest.py here: the
conformance tests import theirs as `conftest`, and a second one would shadow it in a joint run.)
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests
import socketio
import websocket

WAIT = 15.0  # seconds: the bound of every wait in these tests


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-4000:]
    except OSError:
        return ""


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
        return tail(self.log_path)

    key = None

    def emit(self, envelope):
        """POST /api/emit with compact JSON, so the feed's preview is predictable."""
        body = json.dumps(envelope, separators=(",", ":"))
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        response = requests.post(f"{self.base}/api/emit", data=body, headers=headers, timeout=5)
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 1}


def start_herald(tmp_path, *arguments):
    """Starts `herald serve --auth none` on a free port with `arguments`; returns it once /healthz answers."""
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
            [binary, "serve", "--auth", "none", "--port", str(port), "--queue-path", str(tmp_path / "queue.sqlite"), *arguments],
            stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Herald(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + WAIT
    while True:
        try:
            if requests.get(f"{server.base}/healthz", timeout=1).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"herald did not start (exit status {process.poll()}):\n{server.log()}")
        time.sleep(0.05)


@pytest.fixture
def herald(tmp_path):
    """`herald serve` with its defaults (no auth, no API key, namespace /) on a free port."""
    server = start_herald(tmp_path)
    try:
        yield server
    finally:
        stop(server.process)


OPERATIONS_KEY = "ops-key-for-the-live-page"


@pytest.fixture
def herald_with_key(tmp_path):
    """`herald serve` whose operations endpoints require OPERATIONS_KEY."""
    server = start_herald(tmp_path, "--api-key", OPERATIONS_KEY)
    server.key = OPERATIONS_KEY
    try:
        yield server
    finally:
        stop(server.process)


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

    def post(self, method, **params):
        """Sends a command without waiting for its answer; returns its id."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        return self.next_id

    def receive(self, deadline):
        """The next message from the browser (an answer or an event), or a CDPError at `deadline`."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CDPError("no message from the browser in time")
        self.ws.settimeout(remaining)
        message = json.loads(self.ws.recv())
        if "method" in message:
            self.events.append(message)
        return message

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
def page(tmp_path):
    """A blank page in a fresh headless Chromium, with the Page and Runtime domains enabled."""
    chromium = os.environ.get("HERALD_CHROMIUM", "chromium")
    if not shutil.which(chromium):
        pytest.fail(f"{chromium} not found: install Debian's chromium (apt-get install chromium "
                    "fonts-dejavu-core) or set HERALD_CHROMIUM")
    profile = tempfile.mkdtemp(prefix="herald-chromium-")
    log_path = tmp_path / "chromium.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--window-size=1200,900",
            "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
            f"--user-data-dir={profile}", "about:blank",
        ],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
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
                    pytest.fail(f"Chromium did not open its DevTools port (exit status {process.poll()}):\n"
                                f"{tail(log_path)}")
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


SCREENSHOT = os.environ.get("HERALD_SCREENSHOT", "/tmp/herald-live-page.png")

# Everything the test reads off the page, in one evaluation.
READ_PAGE = """(() => {
  const text = id => { const e = document.getElementById(id); return e ? e.textContent : null; };
  const rows = id => Array.from(document.querySelectorAll("#" + id + " > tr"),
                                tr => Array.from(tr.cells, td => td.textContent));
  return {
    url: location.href,
    marker: window.__heraldTestMarker === undefined ? null : window.__heraldTestMarker,
    status: text("status"), clients: text("clients"), rate: text("rate"),
    messages: text("messages"), deliveries: text("deliveries"), received: text("received"), lag: text("lag"),
    rooms: rows("rooms"), feed: rows("feed"),
  };
})()"""


def wait_for_page(page, condition, what):
    """Reads the page until `condition(state)` holds; fails with the last state after WAIT s."""
    deadline = time.monotonic() + WAIT
    while True:
        state = page.evaluate(READ_PAGE)
        if state and condition(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what} within {WAIT} s; it shows:\n"
                                 f"{json.dumps(state, indent=2, ensure_ascii=False)}")
        time.sleep(0.1)


def connect_clients(base, count):
    clients = []
    for _ in range(count):
        client = socketio.Client(reconnection=False)
        clients.append(client)
        client.connect(base, transports=["websocket"], wait_timeout=WAIT)
    return clients


def disconnect_clients(clients):
    """Teardown: disconnects every client; one the server already dropped may raise, which says
    nothing about the test's outcome."""
    for client in clients:
        try:
            client.disconnect()
        except Exception:
            pass


def test_the_live_page_shows_the_figures_and_updates_them_in_place(herald, page):
    clients = []
    try:
        clients = connect_clients(herald.base, 3)
        for n in range(5):
            envelope = {"event": "item_added", "data": {"n": n}}
            if n == 2:
                envelope["to"] = "room-x"
            herald.emit(envelope)

        navigation = page.send("Page.navigate", url=herald.base + "/")
        assert "errorText" not in navigation, navigation

        state = wait_for_page(
            page, lambda s: s["url"] == herald.base + "/" and s["status"] == "live" and s["messages"] == "5",
            "status 'live' with 5 messages",
        )
        assert state["clients"] == "3"
        assert state["messages"] == "5"
        # Four went to everyone (3 clients each), the one to room-x reached nobody.
        assert state["deliveries"] == "12"
        assert state["received"] == "0"  # the clients sent nothing
        # Published messages go through the embedded queue: the lag is how old the last one was
        # when it was handed off, in seconds.
        assert 0 <= float(state["lag"]) < 5
        assert state["rooms"] == []  # nobody joined a room (each socket's own room is not listed)

        feed = state["feed"]
        assert len(feed) == 5, feed
        assert all(len(row) == 5 for row in feed), feed
        assert [row[4] for row in feed] == ["3", "3", "0", "3", "3"]
        for time_text, event, to, data, _ in feed:
            assert re.search(r"\d{1,2}:\d{2}:\d{2}", time_text), time_text
            assert event == "item_added"
        # Newest first; the data column previews the JSON argument array as published.
        assert [row[3] for row in feed] == [f'[{{"n":{n}}}]' for n in (4, 3, 2, 1, 0)]
        assert [row[2] for row in feed] == ["everyone", "everyone", "room-x", "everyone", "everyone"]

        # A reload would lose this; updates must happen in place.
        marker = uuid.uuid4().hex
        page.evaluate(f"window.__heraldTestMarker = {json.dumps(marker)}")

        clients[-1].disconnect()
        for n in (5, 6):
            herald.emit({"event": "item_added", "data": {"n": n}})

        state = wait_for_page(
            page,
            lambda s: s["clients"] == "2" and s["messages"] == "7" and s["rate"] != "–",
            "2 clients, 7 messages and a rate",
        )
        assert state["marker"] == marker, "the page was reloaded instead of updated in place"
        assert state["url"] == herald.base + "/"
        assert state["status"] == "live"
        assert re.fullmatch(r"\d+\.\d", state["rate"]), state["rate"]
        assert state["received"] == "0"
        assert [row[3] for row in state["feed"]] == [f'[{{"n":{n}}}]' for n in (6, 5, 4, 3, 2, 1, 0)]
        assert page.exceptions() == []

        page.screenshot(SCREENSHOT)
    except BaseException:
        # For the post-mortem: what the browser showed, and what herald logged.
        try:
            page.screenshot(SCREENSHOT)
            print(f"screenshot of the page: {SCREENSHOT}")
        except Exception as error:
            print(f"no screenshot: {error}")
        print(f"herald's log:\n{herald.log()}")
        raise
    finally:
        disconnect_clients(clients)


def test_the_live_page_asks_for_the_key_and_then_works_with_the_stored_login(herald_with_key, page):
    herald = herald_with_key
    # Without the key the operations endpoints answer 401 with a Basic challenge; health stays open.
    for path in ("/", "/api/stats", "/metrics"):
        response = requests.get(herald.base + path, timeout=5)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["WWW-Authenticate"] == 'Basic realm="herald"'
    assert requests.get(herald.base + "/healthz", timeout=5).status_code == 200
    assert requests.get(herald.base + "/api/stats", auth=("anyone", "wrong"), timeout=5).status_code == 401
    assert requests.get(herald.base + "/api/stats", auth=("anyone", herald.key), timeout=5).status_code == 200

    clients = []
    try:
        clients = connect_clients(herald.base, 2)
        for n in range(3):
            herald.emit({"event": "item_added", "data": {"n": n}})

        # The browser meets the challenge on the page itself and logs in as a person would at its
        # prompt; only the page's own request is intercepted, its fetches of /api/stats are not.
        page.send("Fetch.enable", handleAuthRequests=True, patterns=[{"urlPattern": herald.base + "/"}])
        navigation = page.post("Page.navigate", url=herald.base + "/")
        challenges = []
        navigated = False
        deadline = time.monotonic() + WAIT
        while not (navigated and challenges):
            message = page.receive(deadline)
            if message.get("id") == navigation:
                assert "error" not in message and "errorText" not in message.get("result", {}), message
                navigated = True
            elif message.get("method") == "Fetch.requestPaused":
                page.post("Fetch.continueRequest", requestId=message["params"]["requestId"])
            elif message.get("method") == "Fetch.authRequired":
                challenges.append(message["params"]["authChallenge"])
                page.post("Fetch.continueWithAuth", requestId=message["params"]["requestId"],
                          authChallengeResponse={"response": "ProvideCredentials",
                                                 "username": "operator", "password": herald.key})
        page.send("Fetch.disable")
        assert [(c["scheme"].lower(), c["realm"]) for c in challenges] == [("basic", "herald")]

        state = wait_for_page(
            page, lambda s: s["status"] == "live" and s["messages"] == "3" and s["clients"] == "2",
            "status 'live' with 2 clients and 3 messages (its fetches of /api/stats authorized)",
        )
        assert state["deliveries"] == "6"
        assert page.exceptions() == []
    except BaseException:
        print(f"herald's log:\n{herald.log()}")
        raise
    finally:
        disconnect_clients(clients)

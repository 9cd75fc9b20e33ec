"""The herald command line and process: settings, refusals to start, the queue lock, the drain on
SIGTERM, and `herald publish`. Each test runs the built herald executable.

Needs HERALD_BIN_PATH (the built herald), set by scripts/test.
"""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import socketio

from herald_process import BIN, SECRET, Herald, Listener, free_port, run, token

pytestmark = pytest.mark.skipif(not BIN, reason="run through scripts/test (needs the built herald)")

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def readme_keys():
    """The keys of the README's configuration table."""
    with open(README) as readme:
        text = readme.read()
    table = text[text.index("## Configuration"):text.index("\n## ", text.index("## Configuration") + 1)]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.MULTILINE)


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


# Settings and the command line


@pytest.mark.parametrize("args, message", [
    (["serve", "--pollers", "-1"], "herald: pollers (from --pollers): '-1' is not a whole number in 1...64"),
    (["serve", "--pollers=-1"], "herald: pollers (from --pollers): '-1' is not a whole number in 1...64"),
    (["--pollers", "-1"], "herald: pollers (from --pollers): '-1' is not a whole number in 1...64"),
    (["serve", "--colour", "red"], "herald: unknown flag '--colour' (herald serve --help lists every setting)"),
    (["--colour=red"], "herald: unknown flag '--colour' (herald serve --help lists every setting)"),
    (["serve", "-x"], "herald: unknown flag '-x': settings are given as --key value (herald serve --help lists them)"),
    (["serve", "8080"], "herald: unexpected argument '8080': settings are given as --key value (herald serve --help lists them)"),
    (["serve", "--port"], "herald: port (from --port): needs a value, <0...65535>"),
    (["serve", "--allow-credentials", "maybe"], "herald: unexpected argument 'maybe': settings are given as --key value (herald serve --help lists them)"),
    (["serve", "--allow-credentials=maybe"], "herald: allow-credentials (from --allow-credentials): 'maybe' is not true or false"),
    (["serve", "--listen-backlog", "0"], "herald: listen-backlog (from --listen-backlog): '0' is not a whole number in 1...65535"),
    (["serve", "--auth", "none", "--recovery-window", "60"],
     "herald: recovery-window (from --recovery-window): is set, but recovery is off: turn recovery on (--recovery) or remove recovery-window"),
    (["serve", "--auth", "none", "--recovery", "--recovery-window", "0"],
     "herald: recovery-window (from --recovery-window): '0' is not a whole number in 1...86400"),
    (["serve", "--auth", "none", "--recovery-store", "memory"],
     "herald: recovery-store (from --recovery-store): is set, but recovery is off: turn recovery on (--recovery) or remove recovery-store"),
    (["serve", "--auth", "none", "--recovery-max-replay", "10"],
     "herald: recovery-max-replay (from --recovery-max-replay): is set, but recovery is off: turn recovery on (--recovery) or remove recovery-max-replay"),
    (["serve", "--auth", "none", "--recovery", "--recovery-max-log-mb", "0"],
     "herald: recovery-max-log-mb (from --recovery-max-log-mb): '0' is not a whole number in 1...65536"),
    (["serve", "--auth", "none", "--otel-protocol", "http/json"],
     "herald: otel-protocol (from --otel-protocol): is set, but otel-endpoint is not: give the collector's URL or remove otel-protocol"),
    (["serve", "--auth", "none", "--otel-endpoint", "collector:4318"],
     "herald: otel-endpoint (from --otel-endpoint): 'collector:4318' is not an http(s) URL"),
    (["serve", "--auth", "none", "--parser", "cbor"],
     "herald: parser (from --parser): 'cbor' is not one of json, msgpack"),
    (["serve", "--auth", "none", "--recovery", "--recovery-store", "disk"],
     "herald: recovery-store (from --recovery-store): 'disk' is not one of sqlite, postgres, memory"),
    (["serve", "--auth", "none", "--recovery", "--recovery-store", "postgres"],
     "herald: postgres-url: required with recovery-store = postgres (postgres://user[:password]@host[:port]/database)"),
    (["serve", "--auth", "none", "--recovery", "--recovery-store", "postgres", "--postgres-url", "postgres://u@127.0.0.1/d",
      "--recovery-path", "r.sqlite"],
     "herald: recovery-path (from --recovery-path): is set, but recovery-store is postgres: remove recovery-path or use recovery-store = sqlite"),
    (["serve", "--auth", "none", "--recovery", "--recovery-store", "sqlite", "--cluster", "postgres", "--postgres-url", "postgres://u@127.0.0.1/d"],
     "herald: recovery-store (from --recovery-store): is sqlite, but in a cluster recovery keeps its events and sessions in PostgreSQL, "
     "so that any node recovers any client: use recovery-store = postgres (the default with cluster = postgres) or remove it"),
    (["serve", "--auth", "none", "--postgres-url", "postgres://u@127.0.0.1/d"],
     "herald: postgres-url (from --postgres-url): is set, but none of cluster, queue and recovery-store is postgres: add --cluster postgres, --queue postgres or --recovery-store postgres, or remove postgres-url"),
    (["serve", "--auth", "none", "--recovery", "--recovery-path", "r.sqlite"],
     "herald: recovery-path (from --recovery-path): is set, but with the embedded queue recovery lives in the queue's file "
     "(queue-path), so that an event and its queue message commit together: remove recovery-path"),
    (["serve", "--auth", "none", "--recovery", "--recovery-store", "memory", "--queue", "none", "--recovery-path", "r.sqlite"],
     "herald: recovery-path (from --recovery-path): is set, but recovery-store is memory: remove recovery-path or use recovery-store = sqlite"),
    (["serve", "--max-attachments", "-3"], "herald: max-attachments (from --max-attachments): '-3' is not a whole number in 0...10000"),
    (["serve", "--auth", "none", "--drain-period", "30"],
     "herald: drain-period (from --drain-period): 30 s is not shorter than shutdown-deadline (30 s), which covers the drain "
     "and the close: lower drain-period or raise shutdown-deadline"),
    (["serve", "--auth", "none", "--allowed-origins", "https://app.example.com/path"],
     "herald: allowed-origins (from --allowed-origins): 'https://app.example.com/path' is not an origin (scheme://host[:port], no path) or '*'"),
    (["serve", "--queue", "sqs", "--sqs-queue-url", "not a url"], "herald: sqs-queue-url (from --sqs-queue-url): 'not a url' is not an http(s) URL"),
    (["serve", "--auth", "none", "--jwt-secret", SECRET],
     "herald: auth (from --auth): 'none' turns client authentication off, but jwt-secret (from --jwt-secret) is set: remove one of them"),
])
def test_a_bad_command_line_exits_2_with_one_line_naming_the_key(args, message, tmp_path):
    status, stdout, stderr = run(*args, cwd=tmp_path)
    assert (status, lines(stderr)) == (2, [message])
    assert os.listdir(tmp_path) == [], "herald opened its queue before refusing"


def test_version_prints_the_version_and_exits_0():
    for args in (["--version"], ["serve", "--version"]):
        status, stdout, stderr = run(*args)
        assert (status, stdout, stderr) == (0, "herald 0.1.0\n", ""), args


def test_help_lists_every_setting_of_the_readme_with_its_help():
    keys = readme_keys()
    assert "drain-period" in keys and "max-pending-events" in keys and len(keys) >= 30
    for args in (["serve", "--help"], ["--help"]):
        status, stdout, stderr = run(*args)
        assert status == 0, stderr
        text = stdout.splitlines()
        for key in keys:
            listed = [index for index, line in enumerate(text) if line.strip().startswith(f"--{key} <")]
            assert len(listed) == 1, f"{args}: --{key} is not listed once:\n{stdout}"
            help_line = text[listed[0] + 1]
            assert help_line.startswith("      ") and len(help_line.split()) >= 2, f"--{key} has no help: {help_line!r}"
        helped = [line.split()[0][2:] for line in text if line.startswith("  --") and " <" in line]
        assert sorted(helped) == sorted(keys), f"--help and the README's table differ: {set(helped) ^ set(keys)}"
        drain = [line for line in text if line.strip().startswith("--drain-period <")]
        assert drain == ["  --drain-period <seconds>  (default: 5)"], drain


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path):
    config = tmp_path / "herald.toml"
    config.write_text('pollers = 70\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    cases = [
        ([], {}, "herald: pollers (from %s:1): '70' is not a whole number in 1...64" % config),
        ([], {"HERALD_POLLERS": "65"}, "herald: pollers (from HERALD_POLLERS): '65' is not a whole number in 1...64"),
        (["--pollers", "66"], {"HERALD_POLLERS": "65"}, "herald: pollers (from --pollers): '66' is not a whole number in 1...64"),
    ]
    for args, extra, expected in cases:
        done = subprocess.run([os.path.join(BIN, "herald"), "serve", "--config", str(config), *args], capture_output=True,
                              text=True, env=dict(env, **extra), cwd=tmp_path, timeout=30)
        assert (done.returncode, lines(done.stderr)) == (2, [expected]), (args, extra)


# Client authentication


def test_jwt_auth_without_a_key_refuses_to_start(tmp_path):
    message = ("herald: auth (from default): 'jwt' needs a key to verify client tokens: set jwt-secret, jwt-public-keys "
               "or jwks (--auth none runs without client authentication)")
    for args in ([], ["serve"], ["serve", "--auth", "jwt"]):
        status, _, stderr = run(*args, cwd=tmp_path)
        assert (status, lines(stderr)) == (2, [message.replace("default", "--auth") if "--auth" in args else message]), args
    assert os.listdir(tmp_path) == []


def test_auth_none_starts_warns_and_lets_any_client_connect(tmp_path):
    herald = Herald("--auth", "none", "--queue", "none")
    try:
        client = socketio.Client(reconnection=False)
        client.connect(herald.url, transports=["websocket"], wait_timeout=10)
        assert client.connected
        client.disconnect()
        warnings = [line for line in herald.output().splitlines() if "warning" in line]
        assert len(warnings) == 1 and "auth = none: client authentication is off, any client may connect" in warnings[0], herald.output()
        assert "api-key=none" in herald.output() and "publish-key" not in herald.output()
        assert herald.terminate() == 0
    finally:
        herald.stop()


# Start-up failures: one line, exit 2, nothing left open


@pytest.fixture
def busy_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("queue", [["--queue-path", "queue.sqlite"], ["--queue", "none"]])
def test_a_busy_port_exits_2_with_one_line_and_no_crash(busy_port, queue, tmp_path):
    status, _, stderr = run("serve", "--jwt-secret", SECRET, "--port", str(busy_port), *queue, cwd=tmp_path)
    assert (status, lines(stderr)) == (2, [f"herald: cannot listen on 127.0.0.1:{busy_port}: address already in use; choose another --port"])


@pytest.mark.parametrize("args, message", [
    (["--jwt-public-keys", "/nonexistent/keys.pem"],
     "herald: jwt-public-keys (from --jwt-public-keys): cannot read /nonexistent/keys.pem (no such file); give a PEM file of RS256/ES256 public keys"),
    (["--jwks", "/nonexistent/keys.json"],
     "herald: jwks (from --jwks): cannot read /nonexistent/keys.json (no such file); give a JWKS file or an https URL"),
    (["--jwt-secret", SECRET, "--queue-path", "/nonexistent/queue.sqlite"],
     "herald: queue-path (from --queue-path): cannot lock /nonexistent/queue.sqlite.lock: No such file or directory; "
     "give a --queue-path in a directory herald may write to"),
    (["--jwt-secret", SECRET, "--queue-path", "/etc/hostname/queue.sqlite"],
     "herald: queue-path (from --queue-path): cannot lock /etc/hostname/queue.sqlite.lock: Not a directory; "
     "give a --queue-path in a directory herald may write to"),
])
def test_a_failed_start_up_step_exits_2_with_one_line(args, message, tmp_path):
    status, _, stderr = run("serve", "--port", str(free_port()), *args, cwd=tmp_path)
    assert (status, lines(stderr)) == (2, [message])


def test_a_key_file_herald_cannot_parse_exits_2_with_one_line(tmp_path):
    keys = tmp_path / "keys.pem"
    keys.write_text("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n")
    status, _, stderr = run("serve", "--port", str(free_port()), "--jwt-public-keys", str(keys), cwd=tmp_path)
    assert status == 2 and len(lines(stderr)) == 1, stderr
    assert stderr.startswith("herald: jwt-public-keys (from --jwt-public-keys): cannot load the keys that verify client tokens: "), stderr


# One process per embedded queue


def test_a_second_herald_on_the_same_queue_file_exits_2_and_the_first_keeps_every_message(tmp_path):
    first = Herald("--auth", "none", "--queue-path", "shared.sqlite", cwd=tmp_path)
    try:
        status, _, stderr = run("serve", "--auth", "none", "--port", str(free_port()), "--queue-path", "shared.sqlite", cwd=tmp_path)
        assert status == 2
        assert [line for line in lines(stderr) if "warning" not in line] == [
            "herald: queue-path (from --queue-path): shared.sqlite is used by another herald process; "
            "give each instance its own --queue-path"]
        listener = Listener(first.url)
        batch = [{"event": "n", "data": i} for i in range(200)]
        assert first.post("/api/emit/batch", json.dumps(batch)) == 202
        # python-socketio runs each event's handler in its own task: compare the set.
        assert sorted(event[1] for event in listener.wait(200)) == list(range(200))
        listener.client.disconnect()
        assert first.terminate() == 0
    finally:
        first.stop()
    # The lock goes with the process: the file serves the next herald.
    again = Herald("--auth", "none", "--queue-path", "shared.sqlite", cwd=tmp_path)
    assert again.terminate() == 0


# The drain on SIGTERM


def test_sigterm_answers_readyz_503_for_the_drain_period_then_closes_clients_so_they_reconnect_elsewhere(tmp_path):
    herald = Herald("--auth", "none", "--queue-path", "queue.sqlite", "--drain-period", "3", cwd=tmp_path)
    port = herald.port
    listener = Listener(herald.url, reconnection=True)
    second = None
    try:
        assert herald.status("/readyz")[0] == 200
        signalled = time.monotonic()
        herald.signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while herald.status("/readyz")[0] != 503:
            assert time.monotonic() < deadline, "/readyz did not turn 503 after SIGTERM"
            time.sleep(0.02)
        status, body = herald.status("/readyz")
        assert (status, body["ready"], body["checks"]["server"]) == (503, False, "shutting down")
        # During the drain the client stays connected and messages still reach it.
        assert listener.client.connected and listener.disconnects == []
        assert herald.post("/api/emit", json.dumps({"event": "during_drain", "data": 1})) == 202
        assert listener.wait_until(lambda client: ["during_drain", 1] in client.events, timeout=2)
        assert listener.disconnects == []
        # Then herald closes the connection without a DISCONNECT packet: the client sees a
        # transport close (not "io server disconnect") and reconnects.
        assert listener.wait_until(lambda client: client.disconnects, timeout=10), "the client was not disconnected"
        closed_at, reason = listener.disconnects[0]
        assert closed_at - signalled >= 2.5, "clients were closed before the drain period ended"
        assert reason in ("transport close", "transport error"), reason
        assert herald.process.wait(timeout=15) == 0
        second = Herald("--auth", "none", "--queue", "none", port=port)
        assert listener.wait_until(lambda client: client.connects == 2, timeout=10), "the client did not reconnect"
        assert second.post("/api/emit", json.dumps({"event": "after", "data": 2})) == 202
        assert listener.wait_until(lambda client: ["after", 2] in client.events, timeout=5)
    finally:
        listener.client.disconnect()
        herald.stop()
        if second:
            second.stop()


# herald publish


def publish(*args, url):
    return run("publish", *args, "--url", url)


def test_publish_reaches_rooms_except_the_left_out_with_volatile_and_id(tmp_path):
    herald = Herald("--jwt-secret", SECRET, "--queue-path", "queue.sqlite", cwd=tmp_path)
    try:
        a = Listener(herald.url, auth={"token": token({"sub": "a", "rooms": ["team"]})})
        b = Listener(herald.url, auth={"token": token({"sub": "b", "rooms": ["team"]})})
        assert publish("ev", '{"n": 1}', "--to", "team", "--except", "user:a", "--id", "x1", url=herald.url)[:2] == (0, "{\"accepted\":1}\n")
        assert publish("ev", '{"n": 1}', "--to", "team", "--id", "x1", url=herald.url)[0] == 0
        assert publish("ev", '{"n": 2}', "--to", "team", "--volatile", url=herald.url)[0] == 0
        assert b.wait_until(lambda client: ["ev", {"n": 2}] in client.events)
        assert a.wait_until(lambda client: ["ev", {"n": 2}] in client.events)
        assert b.events == [["ev", {"n": 1}], ["ev", {"n": 2}]], "the duplicate id was delivered again"
        assert a.events == [["ev", {"n": 2}]], "--except did not leave user:a out"
    finally:
        herald.stop()


def test_publish_to_a_dead_url_prints_one_line_and_exits_2():
    port = free_port()
    status, stdout, stderr = publish("ev", "{}", url=f"http://127.0.0.1:{port}")
    assert (status, stdout) == (2, "")
    assert lines(stderr) == [
        f"herald publish: cannot reach herald at http://127.0.0.1:{port}: Connection refused (is herald running? set --url or HERALD_URL)"]


@pytest.mark.parametrize("args, error", [
    (["ev", "{not json"], "Error: the data is not valid JSON: {not json"),
    (["ev"], "Error: Missing expected argument '<json>'"),
    (["ev", "{}", "--url", "nowhere"], "Error: --url 'nowhere' is not an http(s) URL"),
])
def test_a_malformed_publish_argument_prints_the_publish_usage(args, error):
    status, _, stderr = run("publish", *args)
    assert status == 2
    assert stderr.splitlines()[0] == error
    assert "Usage: herald publish <event> <json>" in stderr and "herald serve" not in stderr, stderr

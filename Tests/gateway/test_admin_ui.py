"""The official Socket.IO Admin UI's server protocol, spoken by herald --admin-ui: a
python-socketio client on /admin, as the UI, logs in with a bcrypt-checked password, receives
`config` and `server_stats` with the right shapes and counts, and its `join` and `_disconnect`
act on real clients."""
import json
import os
import threading
import time

import bcrypt
import pytest
import socketio

from herald_process import Herald, Listener, run, wait_until

PASSWORD = "s3cret, really"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


class AdminUI:
    """A client on /admin recording what the server sends it, as the UI would show it."""

    def __init__(self, url, auth):
        self.received = {}
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        self.client.on("*", self.record, namespace="/admin")
        self.client.connect(url, namespaces=["/admin"], transports=["websocket"], auth=auth, wait_timeout=10)

    def record(self, event, *args):
        with self.lock:
            self.received.setdefault(event, []).append(list(args))

    def all(self, event):
        with self.lock:
            return list(self.received.get(event, []))

    def first(self, event):
        wait_until(lambda: self.all(event), 10, f"'{event}'")
        return self.all(event)[0]

    def stats_where(self, condition):
        """The first server_stats for which `condition` holds (they come every 2 s)."""
        found = []
        wait_until(lambda: found or [found.append(s[0]) for s in self.all("server_stats") if condition(s[0])] and found, 15,
                   "server_stats matching the condition")
        return found[0]

    def emit(self, *args):
        self.client.emit(args[0], tuple(args[1:]), namespace="/admin")


def start(*args):
    return Herald("--auth", "none", "--queue", "none", "--admin-ui", "--admin-ui-password-hash", HASH, *args)


def publish(herald, room, data):
    assert herald.post("/api/emit", json.dumps({"event": "news", "data": data, "to": [room]})) == 202


def test_the_ui_sees_config_and_stats_and_acts_on_real_clients():
    herald = start("--admin-ui-server-id", "node-a")
    try:
        alice, bob = Listener(herald.url), Listener(herald.url)
        ui = AdminUI(herald.url, {"username": "admin", "password": PASSWORD})
        assert len(ui.first("session")[0]) == 16
        features = ui.first("config")[0]["supportedFeatures"]
        assert set(features) == {"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS"}

        stats = ui.stats_where(lambda s: {"name": "/", "socketsCount": 2} in s["namespaces"])
        assert stats["serverId"] == "node-a"
        assert stats["pid"] == herald.process.pid and isinstance(stats["hostname"], str) and stats["uptime"] > 0
        assert stats["clientsCount"] == 3 and stats["pollingClientsCount"] == 0  # alice, bob and the UI
        assert {"name": "/admin", "socketsCount": 1} in stats["namespaces"]
        events = [e for s in ui.all("server_stats") for e in s[0]["aggregatedEvents"]]
        assert all(set(e) <= {"timestamp", "type", "subType", "count"} and e["timestamp"] % 1000 == 0 for e in events)
        assert sum(e["count"] for e in events if e["type"] == "rawConnection") == 3
        assert any(e["type"] == "bytesOut" and e["count"] > 0 for e in events)

        # join: alice joins "vip"; a publish to it reaches her only.
        ui.emit("join", "/", "vip", alice.client.get_sid("/"))
        wait_until(lambda: publish(herald, "vip", {"n": 1}) or alice.events, 10, "alice in vip")
        assert bob.events == []
        # leave: alice leaves it again.
        ui.emit("leave", "/", "vip", alice.client.get_sid("/"))
        wait_until(lambda: herald.post("/api/emit", json.dumps({"event": "probe", "to": ["vip"]})) == 202
                   and json.loads(herald.get("/api/stats"))["deliveries"] == len(alice.events), 10, "alice out of vip")

        # _disconnect: bob's socket is disconnected by the server.
        ui.emit("_disconnect", "/", False, bob.client.get_sid("/"))
        wait_until(lambda: bob.disconnects, 10, "bob disconnected")
        ui.stats_where(lambda s: {"name": "/", "socketsCount": 1} in s["namespaces"])
        ui.client.disconnect()
    finally:
        herald.stop()


def test_a_wrong_password_is_refused_with_the_references_message():
    herald = start()
    try:
        refusals = []
        client = socketio.Client(reconnection=False)
        client.on("connect_error", lambda data: refusals.append(data), namespace="/admin")
        with pytest.raises(socketio.exceptions.ConnectionError):
            client.connect(herald.url, namespaces=["/admin"], transports=["websocket"],
                           auth={"username": "admin", "password": "guess"}, wait_timeout=5)
        assert refusals and refusals[0]["message"] == "invalid credentials"
    finally:
        herald.stop()


def test_development_mode_shows_sockets_and_their_room_changes():
    herald = start("--admin-ui-mode", "development")
    try:
        alice = Listener(herald.url)
        ui = AdminUI(herald.url, {"username": "admin", "password": PASSWORD})
        sockets = ui.first("all_sockets")[0]
        mine = [s for s in sockets if s["id"] == alice.client.get_sid("/")]
        assert len(mine) == 1 and mine[0]["nsp"] == "/" and mine[0]["transport"] == "websocket"
        assert set(mine[0]) == {"id", "clientId", "transport", "nsp", "data", "handshake", "rooms"}
        assert mine[0]["rooms"] == [mine[0]["id"]] and len(mine[0]["clientId"]) == 12
        assert {"address", "headers", "query", "issued", "secure", "time", "url", "xdomain"} <= set(mine[0]["handshake"])

        bob = Listener(herald.url)
        sid = bob.client.get_sid("/")
        wait_until(lambda: [e for e in ui.all("socket_connected") if e[0]["id"] == sid], 10, "bob's socket_connected")
        connected = [e for e in ui.all("socket_connected") if e[0]["id"] == sid][0]
        assert connected[0]["nsp"] == "/" and connected[1].endswith("Z")

        ui.emit("join", "/", "vip", sid)
        wait_until(lambda: [e for e in ui.all("room_joined") if e[:3] == ["/", "vip", sid]], 10, "room_joined")
        ui.emit("leave", "/", "vip", sid)
        wait_until(lambda: [e for e in ui.all("room_left") if e[:3] == ["/", "vip", sid]], 10, "room_left")

        bob.client.disconnect()
        wait_until(lambda: [e for e in ui.all("socket_disconnected") if e[1] == sid], 10, "bob's socket_disconnected")
        disconnected = [e for e in ui.all("socket_disconnected") if e[1] == sid][0]
        assert disconnected[0] == "/" and disconnected[2] in {"client namespace disconnect", "transport close"}
    finally:
        herald.stop()


def test_read_only_offers_no_actions_and_ignores_them():
    herald = start("--admin-ui-read-only")
    try:
        alice = Listener(herald.url)
        ui = AdminUI(herald.url, {"username": "admin", "password": PASSWORD})
        assert ui.first("config")[0]["supportedFeatures"] == ["AGGREGATED_EVENTS"]
        ui.emit("_disconnect", "/", True, alice.client.get_sid("/"))
        # The UI's next statistics still count alice: the request was not acted on.
        before = len(ui.all("server_stats"))
        wait_until(lambda: len(ui.all("server_stats")) >= before + 2, 10, "two more server_stats")
        stats = ui.all("server_stats")[-1][0]
        assert {"name": "/", "socketsCount": 1} in stats["namespaces"] and alice.disconnects == []
    finally:
        herald.stop()


@pytest.mark.parametrize("args, message", [
    (["--admin-ui"], "herald: admin-ui (from --admin-ui): the Admin UI needs a login: set admin-ui-password-hash"),
    (["--admin-ui-password-hash", HASH], "herald: admin-ui-password-hash (from --admin-ui-password-hash): is set, but admin-ui is off"),
    (["--admin-ui", "--admin-ui-password-hash", "s3cret"],
     "herald: admin-ui-password-hash (from --admin-ui-password-hash): is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)"),
    (["--admin-ui", "--admin-ui-auth", "none", "--admin-ui-password-hash", HASH],
     "herald: admin-ui-auth (from --admin-ui-auth): 'none' turns the Admin UI's login off, but admin-ui-password-hash is set"),
    (["--admin-ui", "--admin-ui-auth", "none", "--namespaces", "/,/admin"],
     "herald: namespaces (from --namespaces): '/admin' is the Admin UI's namespace: serve your clients on another one"),
])
def test_wrong_admin_ui_settings_are_named(args, message):
    status, _, err = run("serve", "--auth", "none", "--queue", "none", "--port", "0", *args)
    assert status == 2
    assert err.strip().startswith(message), err


@pytest.mark.skipif(not os.environ.get("HERALD_TEST_POSTGRES_URL"), reason="run through scripts/test (needs PostgreSQL)")
def test_in_a_cluster_the_ui_hears_every_node_and_acts_on_another_nodes_client():
    cluster = ["--cluster", "postgres", "--postgres-url", os.environ["HERALD_TEST_POSTGRES_URL"],
               "--cluster-channel-prefix", f"admin-{time.time_ns()}", "--cluster-heartbeat-interval", "1"]
    first, second = start(*cluster), start(*cluster)
    try:
        for node in (first, second):
            wait_until(lambda: node.status("/readyz")[1]["checks"].get("cluster") == "postgres: listening, 2 nodes", 20,
                       f"{node.url} to see 2 nodes")
        bob = Listener(second.url)
        ui = AdminUI(first.url, {"username": "admin", "password": PASSWORD})
        wait_until(lambda: len({s[0]["serverId"] for s in ui.all("server_stats")}) == 2, 15, "stats of both nodes")
        ui.emit("_disconnect", "/", False, bob.client.get_sid("/"))
        wait_until(lambda: bob.disconnects, 10, "bob, on the other node, disconnected")
    finally:
        first.stop()
        second.stop()

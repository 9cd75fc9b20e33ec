"""python-socketio client scenarios driven by the Swift interop tests.

    python client.py URL TRANSPORTS SCENARIO [SERIALIZER]

TRANSPORTS is "polling", "websocket" or "polling,websocket" (upgrade); SERIALIZER is python-socketio's
("default", or "msgpack" for a server of the msgpack parser). Each scenario prints one
JSON object with what the client observed; the Swift test checks it. Bytes are written as
{"$bytes": "<hex>"} so that JSON can carry them.
"""
import json
import sys
import threading
import time

import socketio

import recording
from recording import TIMEOUT, plain, wait_for_upgrade

URL, TRANSPORTS, SCENARIO = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
SERIALIZER = sys.argv[4] if len(sys.argv) > 4 else "default"


class Recorder(recording.Recorder):
    """Every event of a namespace, through python-socketio 5's catch-all handler."""

    def __init__(self, client, namespace="/"):
        super().__init__()
        client.on("*", self.record, namespace=namespace)


def connect(client, **kwargs):
    client.connect(URL, transports=TRANSPORTS, wait_timeout=TIMEOUT, **kwargs)
    wait_for_upgrade(client, TRANSPORTS)


def basic():
    client = socketio.Client(serializer=SERIALIZER)
    recorder = Recorder(client)
    client.on("question", lambda *args: ("answer to", *args))
    connect(client, auth={"token": "abc", "n": 1})
    result = {"transport": client.transport(), "sid": client.sid}
    result["auth"] = recorder.wait("auth")
    client.emit("echo", ("text", 42, {"nested": [1, None, True]}, b"\x00\x01\xfe\xff"))
    result["echo"] = recorder.wait("echo-back")
    result["ack"] = client.call("ack-me", ("x", b"\x07"), timeout=TIMEOUT)
    client.emit("ask-me")
    result["answer_seen_by_server"] = recorder.wait("answer-received")
    client.disconnect()
    return result


def custom_namespace():
    client = socketio.Client(serializer=SERIALIZER)
    recorder = Recorder(client, namespace="/custom")
    connect(client, namespaces=["/custom"], auth={"who": "custom"})
    result = {"namespaces": list(client.namespaces.keys())}
    result["welcome"] = recorder.wait("welcome")
    client.disconnect()
    return result


def rooms():
    clients = {}
    recorders = {}
    for name, room in (("a", "red"), ("b", "blue"), ("c", "red")):
        client = socketio.Client(serializer=SERIALIZER)
        recorders[name] = Recorder(client)
        connect(client, auth={"room": room})
        recorders[name].wait("auth")
        clients[name] = client
    clients["a"].emit("broadcast", {"room": "red", "text": "hello red"})
    for name in clients:
        recorders[name].wait("done")
    result = {name: recorders[name].events.get("room-message", []) for name in clients}
    for client in clients.values():
        client.disconnect()
    return result


def server_disconnect():
    client = socketio.Client(serializer=SERIALIZER)
    reasons = []
    gone = threading.Event()

    @client.event
    def disconnect(reason=None):
        reasons.append(str(reason))
        gone.set()

    recorder = Recorder(client)
    connect(client)
    recorder.wait("auth")
    client.emit("kick-me")
    if not gone.wait(TIMEOUT):
        raise TimeoutError("the server did not disconnect the client")
    return {"disconnected": True, "reasons": reasons, "connected_after": client.connected}


def refused():
    client = socketio.Client(serializer=SERIALIZER, reconnection=False)
    errors = []
    client.on("connect_error", lambda data: errors.append(data), namespace="/private")
    try:
        client.connect(URL, transports=TRANSPORTS, namespaces=["/private"], auth={"token": "wrong"}, wait_timeout=TIMEOUT)
        outcome = "connected"
    except socketio.exceptions.ConnectionError as error:
        outcome = str(error)
    client.disconnect()
    return {"outcome": outcome, "errors": errors}


def broadcast_ack():
    clients = {}
    for name, room in (("a", "ack-room"), ("b", "ack-room"), ("c", "elsewhere")):
        client = socketio.Client(serializer=SERIALIZER)
        recorder = Recorder(client)
        client.on("poll-question", lambda question, name=name: ("yes from " + name, question))
        connect(client, auth={"room": room})
        recorder.wait("auth")
        clients[name] = (client, recorder)
    requester, recorder = clients["c"]
    requester.emit("start-broadcast-ack")
    answers = recorder.wait("broadcast-answers")
    for client, _ in clients.values():
        client.disconnect()
    return {"answers": answers}


def ack_timeout():
    client = socketio.Client(serializer=SERIALIZER)
    recorder = Recorder(client)

    def slow(*args):
        time.sleep(1.5)
        return "too late"

    client.on("slow-question", slow)
    connect(client)
    recorder.wait("auth")
    client.emit("start-slow-question")
    outcome = recorder.wait("slow-outcome")
    client.disconnect()
    return {"outcome": outcome}


def dynamic_namespace():
    client = socketio.Client(serializer=SERIALIZER)
    recorder = Recorder(client, namespace="/team-42")
    connect(client, namespaces=["/team-42"])
    welcome = recorder.wait("welcome")
    client.disconnect()
    refused = socketio.Client(serializer=SERIALIZER, reconnection=False)
    errors = []
    refused.on("connect_error", lambda data: errors.append(data), namespace="/other")
    try:
        refused.connect(URL, transports=TRANSPORTS, namespaces=["/other"], wait_timeout=TIMEOUT)
    except socketio.exceptions.ConnectionError:
        pass
    refused.disconnect()
    return {"welcome": welcome, "errors": errors}


def catch_all():
    client = socketio.Client(serializer=SERIALIZER)
    recorder = Recorder(client)
    connect(client)
    recorder.wait("auth")
    client.emit("alpha", 1)
    client.emit("beta", {"b": 2})
    client.emit("report")
    seen = recorder.wait("seen")
    client.disconnect()
    return {"seen": seen}


SCENARIOS = {
    "broadcast-ack": broadcast_ack,
    "ack-timeout": ack_timeout,
    "dynamic-namespace": dynamic_namespace,
    "catch-all": catch_all,
    "basic": basic,
    "custom-namespace": custom_namespace,
    "rooms": rooms,
    "server-disconnect": server_disconnect,
    "refused": refused,
}

if __name__ == "__main__":
    print(json.dumps(plain(SCENARIOS[SCENARIO]())))

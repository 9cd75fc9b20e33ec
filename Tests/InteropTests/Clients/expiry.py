"""A python-socketio client that connects with a JWT and stays until the server ends its session.

    python expiry.py URL --token JWT [--transports T] [--namespaces /,/other] [--timeout S]

It records the events it receives and what the client library reports when the server ends the
session: the `connect_error` data (and when it came, as Unix time), any `disconnect` reason, and
whether the Engine.IO connection was closed afterwards.

It waits until every namespace got its `connect_error` (or the timeout).

Prints one JSON object: {"connected": bool, "events": [[args...], ...], "error": data or null,
"error_time": float or null (the first `connect_error`), "errors": {namespace: data},
"disconnect_reasons": [...], "closed": bool}.
"""
import argparse
import json
import threading
import time

import socketio

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("--token", required=True)
parser.add_argument("--transports", default="websocket")
parser.add_argument("--event", default="item_added")
parser.add_argument("--namespaces", default="/")
parser.add_argument("--timeout", type=float, default=20)
args = parser.parse_args()

client = socketio.Client(reconnection=False)
namespaces = args.namespaces.split(",")
result = {"connected": False, "events": [], "error": None, "error_time": None, "errors": {}, "disconnect_reasons": [], "closed": False}
ended = threading.Event()


def on_event(*data):
    result["events"].append(list(data))


def on_connect_error(namespace, data):
    if result["error"] is None:
        result["error"] = data
        result["error_time"] = time.time()
    result["errors"][namespace] = data
    if len(result["errors"]) == len(namespaces):
        ended.set()


def on_disconnect(reason=None):
    result["disconnect_reasons"].append(str(reason))


for namespace in namespaces:
    client.on(args.event, on_event, namespace=namespace)
    client.on("connect_error", lambda data, namespace=namespace: on_connect_error(namespace, data), namespace=namespace)
    client.on("disconnect", on_disconnect, namespace=namespace)

client.connect(args.url, transports=args.transports.split(","), namespaces=namespaces, auth={"token": args.token}, wait_timeout=10)
result["connected"] = True
ended.wait(args.timeout)
# The server closes the Engine.IO connection once the session's last socket ended.
deadline = time.monotonic() + 10
while client.eio.state == "connected" and time.monotonic() < deadline:
    time.sleep(0.02)
result["closed"] = client.eio.state != "connected"
client.disconnect()
print(json.dumps(result))

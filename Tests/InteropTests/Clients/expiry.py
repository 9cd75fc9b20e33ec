"""A python-socketio client that connects with a JWT and stays until the server ends its session.

    python expiry.py URL --token JWT [--transports T] [--timeout S]

It records the events it receives and what the client library reports when the server ends the
session: the `connect_error` data (and when it came, as Unix time), any `disconnect` reason, and
whether the Engine.IO connection was closed afterwards.

Prints one JSON object: {"connected": bool, "events": [[args...], ...], "error": data or null,
"error_time": float or null, "disconnect_reasons": [...], "closed": bool}.
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
parser.add_argument("--timeout", type=float, default=20)
args = parser.parse_args()

client = socketio.Client(reconnection=False)
result = {"connected": False, "events": [], "error": None, "error_time": None, "disconnect_reasons": [], "closed": False}
ended = threading.Event()


@client.on(args.event)
def on_event(*data):
    result["events"].append(list(data))


@client.on("connect_error")
def on_connect_error(data):
    result["error"] = data
    result["error_time"] = time.time()
    ended.set()


@client.on("disconnect")
def on_disconnect(reason=None):
    result["disconnect_reasons"].append(str(reason))
    ended.set()


client.connect(args.url, transports=args.transports.split(","), auth={"token": args.token}, wait_timeout=10)
result["connected"] = True
ended.wait(args.timeout)
# The server closes the Engine.IO connection once the session's last socket ended.
deadline = time.monotonic() + 10
while client.eio.state == "connected" and time.monotonic() < deadline:
    time.sleep(0.02)
result["closed"] = client.eio.state != "connected"
client.disconnect()
print(json.dumps(result))

"""A python-socketio client that connects (optionally with a JWT) and collects events.

    python listen.py URL --transports T --namespace NS [--token JWT] --event NAME --count N --timeout S [--answer JSON]

With --answer, each event asking for an acknowledgement is answered with that value.

Prints one JSON object: {"connected": bool, "error": <connect_error data or null>, "events": [[args...], ...]}.
"""
import argparse
import json
import threading
import time

import socketio

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("--transports", default="websocket")
parser.add_argument("--namespace", default="/")
parser.add_argument("--token")
parser.add_argument("--event", default="item_added")
parser.add_argument("--count", type=int, default=1)
parser.add_argument("--timeout", type=float, default=10)
parser.add_argument("--answer")
args = parser.parse_args()

client = socketio.Client(reconnection=False)
events = []
errors = []
done = threading.Event()


def on_event(*data):
    events.append(list(data))
    if len(events) >= args.count:
        done.set()
    return json.loads(args.answer) if args.answer is not None else None


client.on(args.event, on_event, namespace=args.namespace)
client.on("connect_error", lambda data: errors.append(data), namespace=args.namespace)

result = {"connected": False, "error": None, "events": events}
try:
    client.connect(
        args.url,
        transports=args.transports.split(","),
        namespaces=[args.namespace],
        auth={"token": args.token} if args.token else None,
        wait_timeout=10,
    )
    result["connected"] = True
    done.wait(args.timeout)
    client.disconnect()
except socketio.exceptions.ConnectionError as error:
    result["error"] = errors[0] if errors else str(error)
print(json.dumps(result))

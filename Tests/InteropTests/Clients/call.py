"""Connects (optionally with a JWT), emits events asking for acknowledgements, prints them.

    python call.py URL EVENT JSON_DATA [EVENT JSON_DATA ...] [--token JWT] [--timeout S]

The events are emitted one after the other without waiting for their acknowledgements. In the
data, {"$bytes": "<hex>"} stands for a binary value. Prints {"ack": <first ack>, "acks": [...]}.
"""
import argparse
import json
import threading

import socketio

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("calls", nargs="+", help="EVENT JSON_DATA pairs")
parser.add_argument("--token")
parser.add_argument("--timeout", type=float, default=10)
args = parser.parse_args()
if len(args.calls) % 2:
    parser.error("give each event its JSON data")


def decode(value):
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


client = socketio.Client(reconnection=False)
client.connect(args.url, transports=["websocket"], auth={"token": args.token} if args.token else None, wait_timeout=10)
calls = list(zip(args.calls[::2], args.calls[1::2]))
acks = [None] * len(calls)
done = [threading.Event() for _ in calls]


def callback(index):
    def answered(*data):
        acks[index] = data[0] if len(data) == 1 else list(data)
        done[index].set()
    return answered


for index, (event, data) in enumerate(calls):
    client.emit(event, decode(json.loads(data)), callback=callback(index))
for index, event in enumerate(done):
    if not event.wait(args.timeout):
        raise SystemExit(f"no acknowledgement for '{calls[index][0]}' within {args.timeout} s")
client.disconnect()
print(json.dumps({"ack": acks[0], "acks": acks}))

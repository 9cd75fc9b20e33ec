"""Connects (optionally with a JWT), emits one event asking for an acknowledgement, prints it.

    python call.py URL EVENT JSON_DATA [--token JWT]
"""
import argparse
import json

import socketio

parser = argparse.ArgumentParser()
parser.add_argument("url")
parser.add_argument("event")
parser.add_argument("data")
parser.add_argument("--token")
args = parser.parse_args()

client = socketio.Client(reconnection=False)
client.connect(args.url, transports=["websocket"], auth={"token": args.token} if args.token else None, wait_timeout=10)
answer = client.call(args.event, json.loads(args.data), timeout=10)
client.disconnect()
print(json.dumps({"ack": answer}))

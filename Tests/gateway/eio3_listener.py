"""A python-socketio 4.x client (Engine.IO v3) for the gateway tests, run by the <venv>-eio3 Python:

    python eio3_listener.py URL TRANSPORT EVENTS

Connects (the token, if any, in URL's query), prints "ready" once in the main namespace, then
prints a JSON object: the first EVENTS events received, or the connection error."""
import json
import sys
import threading

import socketio

url, transport, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = socketio.Client(reconnection=False)
events, errors, done = [], [], threading.Event()


@client.on("item_added")
def item_added(data):
    events.append(data)
    if len(events) >= count:
        done.set()


@client.on("connect_error")
def connect_error(data):
    errors.append(data)
    done.set()


@client.on("connect")
def connected():
    print("ready", flush=True)


try:
    client.connect(url, transports=[transport])
except socketio.exceptions.ConnectionError as error:
    print(json.dumps({"error": str(error)}), flush=True)
    sys.exit(0)
done.wait(15)
print(json.dumps({"events": events, "errors": errors, "connected": client.connected}), flush=True)
client.disconnect()

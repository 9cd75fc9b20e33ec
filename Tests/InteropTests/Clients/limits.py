"""python-socketio client scenarios for the server's limits, driven by LimitsTests.swift.

    python limits.py URL namespaces NAME,NAME,...   connects to the namespaces, then disconnects
    python limits.py URL flood COUNT                emits 'block', then COUNT 'tick' events, and
                                                    waits for the server to disconnect it
Each prints one JSON object with what the client observed.
"""
import json
import sys
import threading

import socketio

URL, SCENARIO = sys.argv[1], sys.argv[2]
TIMEOUT = 10
client = socketio.Client(reconnection=False)

if SCENARIO == "namespaces":
    names = sys.argv[3].split(",")
    try:
        client.connect(URL, namespaces=names, transports=["websocket"], wait_timeout=TIMEOUT)
        connected = sorted(client.namespaces)
        client.disconnect()
        print(json.dumps({"connected": connected}))
    except socketio.exceptions.ConnectionError as error:
        print(json.dumps({"refused": str(error)}))
elif SCENARIO == "flood":
    disconnected = threading.Event()
    client.on("disconnect", lambda *reason: disconnected.set())
    client.connect(URL, transports=["websocket"], wait_timeout=TIMEOUT)
    client.emit("block")
    for index in range(int(sys.argv[3])):
        client.emit("tick", index)
    print(json.dumps({"disconnected": disconnected.wait(TIMEOUT)}))
    client.disconnect()
else:
    raise SystemExit(f"unknown scenario {SCENARIO}")

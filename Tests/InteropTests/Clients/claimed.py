"""Connects COUNT times with a token, and at each connect publishes at once to the token's room.

    python claimed.py URL TOKEN ROOM COUNT

Prints {"received": N}: how many of the COUNT publishes reached the client that had just connected.
"""
import json
import sys
import threading

import requests
import socketio

URL, TOKEN, ROOM, COUNT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
received = 0
http = requests.Session()
for index in range(COUNT):
    client = socketio.Client(reconnection=False)
    arrived = threading.Event()
    client.on("claimed", lambda data, expected=index: arrived.set() if data == expected else None)
    client.connect(URL, auth={"token": TOKEN}, transports=["websocket"], wait_timeout=10)
    answer = http.post(f"{URL}/api/emit", json={"event": "claimed", "to": [ROOM], "data": index}, timeout=10)
    answer.raise_for_status()
    if arrived.wait(2):
        received += 1
    client.disconnect()
print(json.dumps({"received": received}))

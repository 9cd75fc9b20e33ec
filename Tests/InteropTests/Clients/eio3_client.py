"""python-socketio 4.x (Engine.IO v3, Socket.IO protocol v4) scenarios driven by the Swift interop
tests; run by the Python of the <venv>-eio3 virtualenv.

    python eio3_client.py URL TRANSPORTS SCENARIO

Prints one JSON object with what the client observed. Bytes are written as {"$bytes": "<hex>"}.
"""
import json
import sys
import time

import socketio

from recording import TIMEOUT, Recorder, plain, wait_for_upgrade

URL, TRANSPORTS, SCENARIO = sys.argv[1], sys.argv[2].split(","), sys.argv[3]

def basic():
    client = socketio.Client(reconnection=False)
    main, custom = Recorder(), Recorder()
    # python-socketio 4.x has no catch-all handler: each event gets its own.
    for event in ("auth", "echo-back", "answer-received"):
        client.on(event, main.handler(event))
    client.on("welcome", custom.handler("welcome"), namespace="/custom")
    client.on("question", lambda *args: ("answer to", *args))
    client.connect(URL, transports=TRANSPORTS, namespaces=["/", "/custom"])
    wait_for_upgrade(client, TRANSPORTS)
    result = {"transport": client.transport(), "sid": client.sid}
    result["auth"] = main.wait("auth")
    result["welcome"] = custom.wait("welcome")
    client.emit("echo", ("text", 42, {"nested": [1, None, True]}, b"\x00\x01\xfe\xff"))
    result["echo"] = main.wait("echo-back")
    result["ack"] = client.call("ack-me", ("x", b"\x07"), timeout=TIMEOUT)
    client.emit("ask-me")
    result["answer_seen_by_server"] = main.wait("answer-received")
    # Longer than the server's ping interval and timeout together (2 s + 2 s): the session stays
    # up only if the server answers the client's pings and counts them as signs of life.
    time.sleep(5)
    result["connected_after_pings"] = client.connected
    client.disconnect()
    return result


def refused():
    client = socketio.Client(reconnection=False)
    try:
        client.connect(URL, transports=TRANSPORTS)
        return {"connected": True}
    except socketio.exceptions.ConnectionError as error:
        return {"connected": False, "error": str(error)}


SCENARIOS = {"basic": basic, "refused": refused}

if __name__ == "__main__":
    print(json.dumps(plain(SCENARIOS[SCENARIO]())))
    sys.stdout.flush()

"""Clients of one herald node for the cluster tests: opens N WebSocket sessions on `/` and reads
each one's events on a thread of its own, in the order they arrive (a raw Engine.IO/Socket.IO
reader: python-socketio's client hands each message to a thread of its own and may reorder).

    python cluster_readers.py URL N EXPECTED TIMEOUT

Prints "ready" once every session is connected, then, when each session has EXPECTED distinct events or
TIMEOUT seconds passed, one JSON line: per session the number of events, of duplicates and of
events out of order within their group, up to 1000 [group, sequence] pairs missing below the
highest sequence seen of their group, and the last sequence number seen of each group (events
are {"g": group, "s": sequence number}).
"""
import json
import sys
import threading
import time

import websocket

url, count, expected, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])


class Session:
    def __init__(self):
        self.ws = websocket.create_connection(url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket", timeout=30)
        assert self.ws.recv().startswith("0")
        self.ws.send("40")
        while True:
            reply = self.ws.recv()
            if reply != "2":
                break
            self.ws.send("3")
        assert reply.startswith("40"), reply
        self.events = 0
        self.seen = set()
        self.duplicates = 0
        self.out_of_order = 0
        self.last = {}
        self.done = threading.Event()

    def read(self):
        try:
            while len(self.seen) < expected:
                text = self.ws.recv()
                if text == "2":
                    self.ws.send("3")
                    continue
                if not text.startswith('42["item"'):
                    continue
                item = json.loads(text[2:])[1]
                group, sequence = item["g"], item["s"]
                self.events += 1
                if (group, sequence) in self.seen:
                    self.duplicates += 1
                self.seen.add((group, sequence))
                if sequence <= self.last.get(group, -1):
                    self.out_of_order += 1
                self.last[group] = sequence
        except Exception:
            pass
        self.done.set()


def gaps(session):
    """Up to 1000 [group, sequence] pairs missing below each group's highest sequence seen."""
    highest = {}
    for group, sequence in session.seen:
        highest[group] = max(sequence, highest.get(group, -1))
    missing = []
    for group, top in sorted(highest.items()):
        missing += [[group, n] for n in range(top) if (group, n) not in session.seen]
    return missing[:1000]


sessions = [Session() for _ in range(count)]
print("ready", flush=True)
for session in sessions:
    threading.Thread(target=session.read, daemon=True).start()
deadline = time.monotonic() + timeout
for session in sessions:
    session.done.wait(max(0, deadline - time.monotonic()))
print(json.dumps([
    {"events": s.events, "distinct": len(s.seen), "duplicates": s.duplicates, "out_of_order": s.out_of_order,
     "gaps": gaps(s),
     "last": {str(group): sequence for group, sequence in sorted(s.last.items())}} for s in sessions
]), flush=True)

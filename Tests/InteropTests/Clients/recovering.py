"""Speaks connection state recovery on the wire as the JavaScript client does (socket.io 4.6+):
it keeps the `pid` of the CONNECT reply and the last string argument of each event (its offset),
loses its connection without leaving, and comes back with `{pid, offset}`.

    python recovering.py URL

The server under test serves /publish (broadcasts tagged events) and /gone (answers once a socket
id has left). Prints one JSON object with what each scenario saw.
"""
import json
import sys
import time

import requests
import websocket

URL = sys.argv[1]
http = requests.Session()


def connect(namespace="/", auth=None):
    ws = websocket.create_connection(URL.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket", timeout=10)
    opening = ws.recv()
    assert opening.startswith("0"), opening
    prefix = "40" if namespace == "/" else f"40{namespace},"
    ws.send(prefix + (json.dumps(auth) if auth is not None else ""))
    reply = next_packet(ws)
    assert reply.startswith(prefix), reply
    return ws, json.loads(reply[len(prefix):])


def next_packet(ws, timeout=10):
    """The next packet that is not a ping (pings are answered); fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no packet within {timeout} s")
        text = ws.recv()
        if text == "2":
            ws.send("3")
            continue
        return text


def events(ws, count, namespace="/"):
    prefix = "42" if namespace == "/" else f"42{namespace},"
    received = []
    for _ in range(count):
        text = next_packet(ws)
        assert text.startswith(prefix), text
        received.append(json.loads(text[len(prefix):]))
    return received


def publish(tag, count, room=None, except_room=None, namespace="/", volatile=False, ack=False, wait=False):
    params = {"tag": tag, "count": count, "namespace": namespace}
    if volatile:
        params["volatile"] = "1"
    if ack:
        params["ack"] = "1"
    if wait:
        params["wait"] = "1"
    if room:
        params["room"] = room
    if except_room:
        params["except"] = except_room
    http.get(f"{URL}/publish", params=params, timeout=10).raise_for_status()


def drop(ws, sid, namespace="/"):
    """Loses the connection (no DISCONNECT, no close frame) and waits until the server saw it."""
    ws.shutdown()
    http.get(f"{URL}/gone", params={"sid": sid, "namespace": namespace}, timeout=15).raise_for_status()


result = {}

# 1. Away for a while: missed events come back in order, only those of the socket's rooms.
first, hello = connect()
welcome = events(first, 1)
publish("before", 3, room="members")
before = events(first, 3)
drop(first, hello["sid"])
publish("away", 5, room="members")
publish("other-room", 2, room="elsewhere")
publish("excepted", 2, except_room="members")
second, back = connect(auth={"pid": hello["pid"], "offset": before[-1][-1]})
replayed = events(second, 6)
publish("after", 2, room="members")
after = events(second, 2)
second.close()
result["first"] = {"hello": hello, "welcome": welcome, "before": before}
result["back"] = back
result["replayed"] = replayed
result["after"] = after

# 2. An unknown pid gets a new session.
third, fresh = connect(auth={"pid": "not-a-session", "offset": before[-1][-1]})
result["unknown"] = {"hello": fresh, "welcome": events(third, 1)}

# 3. A client that left on purpose has no session to come back to.
third.send("41")
http.get(f"{URL}/gone", params={"sid": fresh["sid"], "namespace": "/"}, timeout=15).raise_for_status()
third.close()
fourth, again = connect(auth={"pid": fresh["pid"], "offset": result["unknown"]["welcome"][0][-1]})
result["left"] = {"hello": again, "welcome": events(fourth, 1)}
fourth.close()

# 4. A client that received no event (so has no offset) still gets what it missed.
quiet, quiet_hello = connect("/quiet")
drop(quiet, quiet_hello["sid"], "/quiet")
publish("quiet-away", 2, namespace="/quiet")
quiet_again, quiet_back = connect("/quiet", auth={"pid": quiet_hello["pid"]})
result["quiet"] = {"hello": quiet_hello, "back": quiet_back, "replayed": events(quiet_again, 2, "/quiet")}
quiet_again.close()

# 5. Over HTTP long-polling: a client that stops polling (its session times out) comes back too.
class Polling:
    def __init__(self):
        self.http = requests.Session()
        opening = self.http.get(f"{URL}/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=10).text
        assert opening.startswith("0"), opening
        self.sid = json.loads(opening[1:])["sid"]
        self.pending = []

    def send(self, packet):
        answer = self.http.post(f"{URL}/socket.io/", params={"EIO": "4", "transport": "polling", "sid": self.sid}, data=packet, timeout=10)
        assert answer.text == "ok", answer.text

    def next_packet(self):
        while not self.pending:
            body = self.http.get(f"{URL}/socket.io/", params={"EIO": "4", "transport": "polling", "sid": self.sid}, timeout=15).text
            for packet in body.split("\x1e"):
                if packet == "2":
                    self.send("3")
                elif packet.startswith("4"):
                    self.pending.append(packet[1:])
        return self.pending.pop(0)

    def connect(self, auth=None):
        self.send("40" + (json.dumps(auth) if auth is not None else ""))
        reply = self.next_packet()
        assert reply.startswith("0"), reply
        return json.loads(reply[1:])

    def events(self, count):
        received = []
        while len(received) < count:
            packet = self.next_packet()
            assert packet.startswith("2["), packet
            received.append(json.loads(packet[1:]))
        return received


polling = Polling()
polling_hello = polling.connect()
polling_welcome = polling.events(1)
publish("polling-before", 1, room="members")
polling_before = polling.events(1)
http.get(f"{URL}/gone", params={"sid": polling_hello["sid"], "namespace": "/"}, timeout=15).raise_for_status()
publish("polling-away", 2, room="members")
polling_again = Polling()
polling_back = polling_again.connect({"pid": polling_hello["pid"], "offset": polling_before[-1][-1]})
result["polling"] = {"hello": polling_hello, "back": polling_back, "replayed": polling_again.events(3), "welcome": polling_welcome}

# 6. The rules of /rules: what carries an offset and is replayed, data and middleware, the replay
# limit, and a server-side disconnect.
def packet(ws, prefix):
    text = next_packet(ws)
    assert text.startswith(prefix), text
    return text[len(prefix):]


rules, rules_hello = connect("/rules")
rules_result = {"sid": rules_hello["sid"], "hello": events(rules, 1, "/rules")[0][1:]}
publish("v", 1, namespace="/rules", volatile=True)
rules_result["volatile"] = events(rules, 1, "/rules")[0]
publish("a", 1, namespace="/rules", ack=True)
asked = packet(rules, "42/rules,")
ack_id = asked[:asked.index("[")]
assert ack_id.isdigit(), asked
rules.send(f"43/rules,{ack_id}[]")
rules_result["asked"] = json.loads(asked[len(ack_id):])
publish("n", 1, namespace="/rules")
rules_result["plain"] = events(rules, 1, "/rules")[0]
drop(rules, rules_hello["sid"], "/rules")
publish("v2", 1, namespace="/rules", volatile=True)
publish("a2", 1, namespace="/rules", ack=True, wait=True)
publish("n2", 1, namespace="/rules")
rules_back, rules_result["back"] = connect("/rules", auth={"pid": rules_hello["pid"], "offset": rules_result["plain"][-1]})
rules_result["replayed"] = events(rules_back, 2, "/rules")

drop(rules_back, rules_hello["sid"], "/rules")
publish("many", 25, namespace="/rules")
over, over_back = connect("/rules", auth={"pid": rules_hello["pid"], "offset": rules_result["replayed"][-1][-1]})
rules_result["over_limit"] = {"back": over_back, "hello": events(over, 1, "/rules")[0][1:]}

http.get(f"{URL}/kick", params={"sid": over_back["sid"], "namespace": "/rules"}, timeout=10).raise_for_status()
rules_result["kicked"] = {"sid": over_back["sid"], "disconnect": next_packet(over)}
http.get(f"{URL}/gone", params={"sid": over_back["sid"], "namespace": "/rules"}, timeout=15).raise_for_status()
over.close()
kicked_back_ws, kicked_back = connect("/rules", auth={"pid": over_back["pid"], "offset": rules_result["over_limit"]["hello"][-1]})
rules_result["kicked"]["back"] = kicked_back
kicked_back_ws.close()
result["rules"] = rules_result

print(json.dumps(result))

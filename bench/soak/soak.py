"""The soak: a herald under churn for a bounded time, with every message accounted for.

Thousands of clients connect over WebSocket (a small client written here on asyncio streams, so
that one process holds them all), answer pings, emit events, drop their transports at random and
come back with connection state recovery; a few read slowly; some stay away past the recovery
window, and some leave for good while new ones arrive. Meanwhile the publish API streams
numbered messages through herald's queue.

At the end each client's messages are accounted for: delivered live, recovered (replayed after a
reconnection), or expired (missed while away in a session that could not be recovered). Any
other missing message is lost, and the soak fails. It also samples herald's resident memory
(the slope after warm-up), its descriptors and its internal tables (the gauges of /metrics).

    python soak.py --url http://127.0.0.1:PORT --pid PID --minutes N [--clients C] [--rate R]
"""
import argparse
import asyncio
import base64
import json
import os
import random
import re
import struct
import sys
import time

EVENT = "item_added"


class Closed(Exception):
    pass


class WebSocket:
    """A client WebSocket on asyncio streams: masked frames out, text frames in."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host, port, path):
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise Closed(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        return cls(reader, writer)

    def send(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        length = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + struct.pack(">H", length))
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def receive(self):
        """The next text message (None when the server closed)."""
        message = b""
        while True:
            try:
                b0, b1 = await self.reader.readexactly(2)
                length = b1 & 0x7F
                if length == 126:
                    (length,) = struct.unpack(">H", await self.reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack(">Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None
            opcode = b0 & 0x0F
            if opcode == 0x8:
                return None
            if opcode in (0x1, 0x0):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def drop(self):
        """Ends the TCP connection without a close frame, as a lost network does."""
        transport = self.writer.transport
        transport.abort()


class Ledger:
    """What the publisher had accepted, and when."""

    def __init__(self):
        self.accepted_at = []  # by sequence number
        self.refused = 0

    def accepted_since(self, moment):
        """The first sequence number accepted after `moment`."""
        low, high = 0, len(self.accepted_at)
        while low < high:
            middle = (low + high) // 2
            if self.accepted_at[middle] <= moment:
                low = middle + 1
            else:
                high = middle
        return low


class Client:
    def __init__(self, soak, number, slow=False):
        self.soak = soak
        self.number = number
        self.slow = slow
        self.received = {}  # sequence -> how it came: "live" or "recovered"
        self.duplicates = 0
        self.out_of_order = 0
        self.pid = None
        self.sid = None
        self.offset = None
        self.first_connected = None
        # (disconnected at, reconnected at) of each reconnection that got a new session
        self.expired_spans = []
        self.reconnections = 0
        self.recovered_reconnections = 0
        self.disconnected_at = None
        self.websocket = None
        self.reconnected_at = 0.0
        self.received_tail = -1  # the highest sequence number received

    async def connect(self):
        ws = await WebSocket.open(self.soak.host, self.soak.port, "/socket.io/?EIO=4&transport=websocket")
        opened = await ws.receive()
        if not opened or not opened.startswith("0"):
            raise Closed(f"no open packet: {opened!r}")
        auth = {"pid": self.pid, "offset": self.offset} if self.pid and self.offset else None
        ws.send("40" + (json.dumps(auth) if auth else ""))
        while True:
            reply = await ws.receive()
            if reply is None:
                raise Closed("closed before CONNECT")
            if reply == "2":
                ws.send("3")
                continue
            if reply.startswith("40"):
                break
            if reply.startswith("44"):
                raise Closed(f"refused: {reply}")
        answer = json.loads(reply[2:])
        now = time.monotonic()
        recovered = self.sid is not None and answer["sid"] == self.sid
        if self.first_connected is None:
            self.first_connected = now
        elif recovered:
            self.recovered_reconnections += 1
        else:
            self.expired_spans.append((self.disconnected_at, now))
        if self.disconnected_at is not None:
            self.reconnections += 1
        self.sid, self.pid = answer["sid"], answer.get("pid")
        self.reconnected_at = now
        self.websocket = ws

    async def read(self):
        ws = self.websocket
        while True:
            text = await ws.receive()
            if text is None:
                return
            if text == "2":
                ws.send("3")
            elif text.startswith("42"):
                arguments = json.loads(text[2:])
                if arguments[0] != EVENT:
                    continue
                sequence = arguments[1]["seq"]
                self.offset = arguments[-1]
                if sequence in self.received:
                    self.duplicates += 1
                    continue
                if sequence < self.received_tail:
                    self.out_of_order += 1
                accepted = self.soak.ledger.accepted_at
                replayed = self.reconnections and sequence < len(accepted) and accepted[sequence] < self.reconnected_at
                self.received[sequence] = "recovered" if replayed else "live"
                self.received_tail = max(sequence, self.received_tail)
            elif text.startswith("41"):
                return
            if self.slow and random.random() < 0.002:
                # A slow reader: stops reading for a while, and the server's buffers fill.
                await asyncio.sleep(random.uniform(2, 8))

    async def live(self, until):
        rng = random.Random(self.number)
        while not self.soak.stopping.is_set():
            try:
                await self.connect()
            except (Closed, OSError) as error:
                self.soak.connect_failures += 1
                self.soak.last_failure = str(error)
                await asyncio.sleep(rng.uniform(0.5, 2))
                continue
            reader = asyncio.ensure_future(self.read())
            emitter = asyncio.ensure_future(self.emit(rng))
            stopping = asyncio.ensure_future(self.soak.stopping.wait())
            # Until the end of the load a session lasts a random time; after it, until the soak stops.
            remaining = until - time.monotonic()
            stay = min(rng.expovariate(1 / self.soak.mean_session), remaining) if remaining > 0 else None
            done, _ = await asyncio.wait([reader, stopping], timeout=stay, return_when=asyncio.FIRST_COMPLETED)
            emitter.cancel()
            stopping.cancel()
            if self.soak.stopping.is_set():
                reader.cancel()
                self.websocket.drop()
                return
            if reader not in done:
                # Drops its transport, as a phone going through a tunnel.
                self.websocket.drop()
                reader.cancel()
            else:
                self.soak.server_closes += 1
            self.disconnected_at = time.monotonic()
            away = rng.random()
            if away < self.soak.expire_share:
                await asyncio.sleep(self.soak.window + rng.uniform(1, 5))  # past the recovery window
            else:
                await asyncio.sleep(rng.uniform(0.05, 3))

    async def emit(self, rng):
        try:
            while True:
                await asyncio.sleep(rng.uniform(1, 10))
                self.websocket.send('42["chat",{"from":%d}]' % self.number)
        except (asyncio.CancelledError, ConnectionError, RuntimeError):
            return


class Soak:
    def __init__(self, arguments):
        match = re.match(r"http://([^:/]+):(\d+)", arguments.url)
        self.host, self.port = match.group(1), int(match.group(2))
        self.pid = arguments.pid
        self.arguments = arguments
        self.ledger = Ledger()
        self.window = arguments.recovery_window
        self.mean_session = arguments.mean_session
        self.expire_share = arguments.expire_share
        self.connect_failures = 0
        self.server_closes = 0
        self.last_failure = ""
        self.samples = []  # (seconds since start, resident MiB, descriptors)
        self.stopping = None

    # herald's side

    def resident_mib(self):
        with open(f"/proc/{self.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

    def descriptors(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def descriptor_targets(self):
        targets = []
        for fd in os.listdir(f"/proc/{self.pid}/fd"):
            try:
                targets.append(os.readlink(f"/proc/{self.pid}/fd/{fd}"))
            except OSError:
                pass
        return targets

    async def http(self, method, path, body=None):
        reader, writer = await asyncio.open_connection(self.host, self.port)
        data = body.encode() if body else b""
        writer.write((f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data)
        answer = await reader.read()
        writer.close()
        head, _, rest = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), rest.decode(errors="replace")

    async def gauges(self):
        _, text = await self.http("GET", "/metrics")
        values = {}
        for line in text.splitlines():
            if line.startswith("herald_") and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    # the load

    async def publish(self, until):
        interval = 1 / self.arguments.rate
        next_at = time.monotonic()
        while time.monotonic() < until:
            sequence = len(self.ledger.accepted_at)
            body = json.dumps({"event": EVENT, "data": {"seq": sequence}})
            moment = time.monotonic()
            status, _ = await self.http("POST", "/api/emit", body)
            if 200 <= status < 300:
                self.ledger.accepted_at.append(moment)
            else:
                self.ledger.refused += 1
            next_at += interval
            await asyncio.sleep(max(0, next_at - time.monotonic()))

    async def sample(self, started, until):
        while time.monotonic() < until:
            self.samples.append((time.monotonic() - started, self.resident_mib(), self.descriptors()))
            await asyncio.sleep(self.arguments.sample_every)

    async def progress(self, started, until, clients):
        while time.monotonic() < until:
            await asyncio.sleep(30)
            connected = sum(1 for c in clients if c.websocket is not None and not c.websocket.writer.is_closing())
            print(f"soak: {time.monotonic() - started:6.0f} s, {len(self.ledger.accepted_at)} messages accepted, "
                  f"{connected} clients connected, resident {self.resident_mib():.0f} MiB, {self.descriptors()} descriptors",
                  file=sys.stderr, flush=True)

    async def run(self):
        self.stopping = asyncio.Event()
        arguments = self.arguments
        baseline_descriptors = self.descriptors()
        self.baseline_targets = self.descriptor_targets()
        baseline_resident = self.resident_mib()
        started = time.monotonic()
        until = started + arguments.minutes * 60
        clients = []
        # Clients arrive over the first tenth of the run (at most 30 s), then churn.
        tasks = []
        arrival = min(30, arguments.minutes * 6)
        for number in range(arguments.clients):
            client = Client(self, number, slow=number < arguments.slow)
            clients.append(client)
            tasks.append(asyncio.ensure_future(client.live(until)))
            await asyncio.sleep(arrival / arguments.clients)
        publisher = asyncio.ensure_future(self.publish(until))
        sampler = asyncio.ensure_future(self.sample(started, until))
        reporter = asyncio.ensure_future(self.progress(started, until, clients))
        await publisher
        await sampler
        reporter.cancel()
        last = len(self.ledger.accepted_at) - 1

        # Every client comes back (after its away time) and catches up to the last message.
        catch_up_deadline = time.monotonic() + self.window + 30
        while time.monotonic() < catch_up_deadline:
            behind = [c for c in clients if c.received_tail < last]
            if not behind:
                break
            await asyncio.sleep(1)
        self.stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return self.report(clients, last, baseline_descriptors, baseline_resident, started)

    def report(self, clients, last, baseline_descriptors, baseline_resident, started):
        ledger = self.ledger
        delivered = recovered = expired = lost = duplicates = out_of_order = 0
        lost_examples = []
        for client in clients:
            if client.first_connected is None:
                continue
            first = ledger.accepted_since(client.first_connected)
            for sequence in range(first, last + 1):
                how = client.received.get(sequence)
                if how == "live":
                    delivered += 1
                elif how == "recovered":
                    recovered += 1
                elif any(away - 1 <= ledger.accepted_at[sequence] <= back for away, back in client.expired_spans):
                    expired += 1
                else:
                    lost += 1
                    if len(lost_examples) < 5:
                        lost_examples.append((client.number, sequence))
            duplicates += client.duplicates
            out_of_order += client.out_of_order
        warm = [s for s in self.samples if s[0] >= self.samples[-1][0] * 0.2] if self.samples else []
        slope = 0.0
        if len(warm) >= 2:
            mean_t = sum(s[0] for s in warm) / len(warm)
            mean_r = sum(s[1] for s in warm) / len(warm)
            slope = sum((s[0] - mean_t) * (s[1] - mean_r) for s in warm) / max(1e-9, sum((s[0] - mean_t) ** 2 for s in warm)) * 60
        return {
            "minutes": self.arguments.minutes,
            "clients": self.arguments.clients,
            "slow_clients": self.arguments.slow,
            "rate": self.arguments.rate,
            "messages_accepted": len(ledger.accepted_at),
            "publishes_refused": ledger.refused,
            "deliveries_live": delivered,
            "deliveries_recovered": recovered,
            "expired": expired,
            "lost": lost,
            "lost_examples": lost_examples,
            "duplicates": duplicates,
            "out_of_order": out_of_order,
            "reconnections": sum(c.reconnections for c in clients),
            "recovered_reconnections": sum(c.recovered_reconnections for c in clients),
            "new_session_reconnections": sum(len(c.expired_spans) for c in clients),
            "server_closes": self.server_closes,
            "connect_failures": self.connect_failures,
            "last_connect_failure": self.last_failure,
            "resident_mib_start": round(baseline_resident, 1),
            "resident_mib_after_warmup": round(warm[0][1], 1) if warm else None,
            "resident_mib_end": round(self.samples[-1][1], 1) if self.samples else None,
            "resident_slope_mib_per_minute": round(slope, 3),
            "descriptors_start": baseline_descriptors,
            "descriptors_peak": max((s[2] for s in self.samples), default=None),
        }


TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "04": "FIN_WAIT1", "05": "FIN_WAIT2"}


def describe_socket(target):
    """A descriptor's target, with its TCP ports and state when it is a TCP socket."""
    found = re.match(r"socket:\[(\d+)\]", target)
    if not found:
        return target
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[9] == found.group(1):
                local, remote = (int(fields[i].split(":")[1], 16) for i in (1, 2))
                return f"{target} tcp :{local} -> :{remote} {TCP_STATES.get(fields[3], fields[3])}"
    return target


async def settle(soak, result):
    """After the clients left: the descriptors come back, and the tables empty once the recovery
    window passed."""
    deadline = time.monotonic() + soak.window + 30
    while True:
        # Descriptors first: the connection that reads /metrics is then a second old, closed.
        descriptors = soak.descriptors()
        gauges = await soak.gauges()
        tables = {name: value for name, value in gauges.items()
                  if name.startswith(("herald_connected_clients", "herald_namespace_clients", "herald_recovery_kept_sessions",
                                      "herald_broadcast_backlog_bytes"))}
        if (all(value == 0 for value in tables.values()) and descriptors <= result["descriptors_start"]) or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    result["descriptors_end"] = descriptors
    if descriptors > result["descriptors_start"]:
        opened = soak.descriptor_targets()
        for target in soak.baseline_targets:
            if target in opened:
                opened.remove(target)
        result["descriptors_opened"] = [describe_socket(target) for target in sorted(opened)]
    result["tables_end"] = tables
    result["recovery_log_events_end"] = gauges.get("herald_recovery_log_events")
    result["resident_mib_settled"] = round(soak.resident_mib(), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True, help="herald's process, for its memory and descriptors")
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--slow", type=int, default=5, help="clients that stop reading now and then")
    parser.add_argument("--rate", type=float, default=5, help="messages published per second")
    parser.add_argument("--recovery-window", type=float, default=20, help="herald's recovery-window, in seconds")
    parser.add_argument("--mean-session", type=float, default=60, help="mean seconds a client stays before it drops")
    parser.add_argument("--expire-share", type=float, default=0.05, help="share of drops that stay away past the window")
    parser.add_argument("--sample-every", type=float, default=5)
    arguments = parser.parse_args()
    soak = Soak(arguments)

    async def everything():
        result = await soak.run()
        await settle(soak, result)
        return result

    result = asyncio.run(everything())
    print(json.dumps(result, indent=2))
    problems = []
    if result["lost"]:
        problems.append(f"{result['lost']} messages lost")
    if result["out_of_order"]:
        problems.append(f"{result['out_of_order']} messages out of order")
    if result["descriptors_end"] > result["descriptors_start"]:
        problems.append(f"descriptors {result['descriptors_start']} -> {result['descriptors_end']}")
    if any(result["tables_end"].values()):
        problems.append(f"tables not empty: {result['tables_end']}")
    if problems:
        print("soak: FAILED: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)
    print("soak: every message accounted for", file=sys.stderr)


if __name__ == "__main__":
    main()

"""What the client scenarios share: events recorded per name, and bytes made JSON."""
import threading
import time

TIMEOUT = 10


def plain(value):
    """`value` with bytes as {"$bytes": "<hex>"}, so that JSON can carry them."""
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Recorder:
    """Collects events per name and lets the scenario wait for them."""

    def __init__(self):
        self.events = {}
        self.condition = threading.Condition()

    def record(self, event, *args):
        with self.condition:
            self.events.setdefault(event, []).append(list(args))
            self.condition.notify_all()

    def handler(self, event):
        """A handler recording `event` (for clients without a catch-all handler)."""
        return lambda *args: self.record(event, *args)

    def wait(self, event, count=1):
        deadline = time.time() + TIMEOUT
        with self.condition:
            while len(self.events.get(event, [])) < count:
                left = deadline - time.time()
                if left <= 0:
                    raise TimeoutError(f"no '{event}' event within {TIMEOUT}s")
                self.condition.wait(left)
            return self.events[event][count - 1]


def wait_for_upgrade(client, transports):
    """Waits until a client that may upgrade (polling and websocket) is on WebSocket."""
    if "websocket" in transports and "polling" in transports:
        deadline = time.time() + TIMEOUT
        while client.transport() != "websocket" and time.time() < deadline:
            time.sleep(0.02)

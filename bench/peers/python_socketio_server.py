"""python-socketio comparison peer for the herald fan-out benchmark.

python-socketio AsyncServer (async_mode="asgi") under uvicorn, Socket.IO on /socket.io/, plus
POST /api/emit (raw ASGI) taking {"event": <name>, "data": <json>} and doing
`await sio.emit(event, data)` to every client, answering 202. Versions are pinned by
setup-python.sh. Run: peers/.venv/bin/python peers/python_socketio_server.py --port 8091
"""
import argparse
import json
import warnings

import socketio
import uvicorn

parser = argparse.ArgumentParser()
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8091)
parser.add_argument("--key", default=None, help="require 'Authorization: Bearer <key>' on /api/emit")
args = parser.parse_args()

# herald's defaults: pingInterval 25 s, pingTimeout 20 s.
sio = socketio.AsyncServer(
    async_mode="asgi",
    ping_interval=25,
    ping_timeout=20,
    cors_allowed_origins=[],
    logger=False,
    engineio_logger=False,
)


async def _send(send, status, body=b""):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def emit_app(scope, receive, send):
    """Everything that is not /socket.io/ comes here (ASGIApp's other_asgi_app)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] != "/api/emit" or scope["method"] != "POST":
        await _send(send, 404)
        return
    if args.key is not None:
        auth = dict(scope["headers"]).get(b"authorization", b"")
        if auth != b"Bearer " + args.key.encode():
            await _send(send, 401)
            return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        envelope = json.loads(b"".join(chunks))
        event = envelope["event"]
        data = envelope.get("data")
    except (ValueError, KeyError, TypeError):
        await _send(send, 400, b'{"error":"bad envelope"}')
        return
    await sio.emit(event, data)
    await _send(send, 202)


app = socketio.ASGIApp(sio, other_asgi_app=emit_app, socketio_path="socket.io")

if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools", ws="websockets", backlog=4096)

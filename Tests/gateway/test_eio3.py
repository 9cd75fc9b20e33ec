"""herald --allow-eio3: python-socketio 4.x clients (Engine.IO v3), as deployed apps on
socket.io-client 2.x connect during a migration, authenticate with a token in the query and
receive queue messages; without the flag they get the reference's refusal."""
import json
import os
import subprocess
import urllib.request

import pytest

from herald_process import SECRET, Herald, token

PYTHON = os.environ.get("HERALD_TEST_PYTHON_EIO3")
LISTENER = os.path.join(os.path.dirname(__file__), "eio3_listener.py")
pytestmark = pytest.mark.skipif(not PYTHON, reason="run through scripts/test (installs python-socketio 4.x)")


def listen(url, transport, count):
    return subprocess.Popen([PYTHON, LISTENER, url, transport, str(count)], stdout=subprocess.PIPE, text=True)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_a_v3_client_with_a_token_receives_queue_messages(tmp_path, transport):
    herald = Herald("--allow-eio3", "--jwt-secret", SECRET, "--queue", "none")
    try:
        reader = listen(f"{herald.url}?token={token({'sub': 'ada', 'rooms': ['orders']})}", transport, 2)
        assert reader.stdout.readline().strip() == "ready"
        for n in (1, 2):
            envelope = {"event": "item_added", "data": {"n": n, "name": "lampe \u00e9t\u00e9 \U0001F4A1"}, "to": ["orders"]}
            assert herald.post("/api/emit", json.dumps(envelope)) == 202
        result = json.loads(reader.stdout.readline())
        reader.wait(timeout=20)
        assert result["events"] == [{"n": 1, "name": "lampe \u00e9t\u00e9 \U0001F4A1"}, {"n": 2, "name": "lampe \u00e9t\u00e9 \U0001F4A1"}]
    finally:
        herald.stop()


def test_a_v3_client_without_a_token_is_refused_with_a_message():
    herald = Herald("--allow-eio3", "--jwt-secret", SECRET, "--queue", "none")
    try:
        reader = listen(herald.url, "websocket", 1)
        result = json.loads(reader.stdout.readline())
        reader.wait(timeout=20)
        # The v4 protocol's ERROR packet carries the message as a string.
        assert result == {"events": [], "errors": ["authentication required: send a JWT as the query parameter token"], "connected": False}
    finally:
        herald.stop()


def test_without_allow_eio3_a_v3_client_gets_unsupported_protocol_version():
    herald = Herald("--auth", "none", "--queue", "none")
    try:
        reader = listen(herald.url, "polling", 1)
        result = json.loads(reader.stdout.readline())
        reader.wait(timeout=20)
        assert "400" in result["error"], result
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(herald.url + "/socket.io/?EIO=3&transport=polling", timeout=5)
        assert refused.value.code == 400
        assert json.loads(refused.value.read()) == {"code": 5, "message": "Unsupported protocol version"}
    finally:
        herald.stop()

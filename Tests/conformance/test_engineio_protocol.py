"""Engine.IO v4, as the official engine.io-protocol test suite checks it, from the specification."""
import json
import threading
import time

import pytest
import requests
import websocket

from conftest import PING_INTERVAL, PING_TIMEOUT, closed, recv


# --- handshake -----------------------------------------------------------------------------------


def test_polling_handshake_opens_a_session(any_engine):
    response = requests.get(any_engine.url(), timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text[0] == "0"
    handshake = json.loads(response.text[1:])
    assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert isinstance(handshake["sid"], str) and handshake["sid"]
    assert handshake["upgrades"] == ["websocket"]
    assert handshake["pingInterval"] == 300
    assert handshake["pingTimeout"] == 200
    assert handshake["maxPayload"] == 1000000


@pytest.mark.parametrize(
    "query, code, message",
    [
        ("EIO=abc&transport=polling", 5, "Unsupported protocol version"),
        ("EIO=3&transport=polling", 5, "Unsupported protocol version"),
        ("transport=polling", 5, "Unsupported protocol version"),
        ("EIO=4&transport=abc", 0, "Transport unknown"),
        ("EIO=4", 0, "Transport unknown"),
        ("EIO=4&transport=websocket", 3, "Bad request"),
        ("EIO=4&transport=polling&sid=unknown", 1, "Session ID unknown"),
    ],
)
def test_polling_handshake_errors_have_the_reference_codes(any_engine, query, code, message):
    response = requests.get(f"{any_engine.base}{any_engine.path}?{query}", timeout=5)
    assert response.status_code == 400
    assert response.json() == {"code": code, "message": message}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_a_handshake_must_be_a_get(any_engine, method):
    response = requests.request(method, any_engine.url(), timeout=5)
    assert response.status_code == 400
    assert response.json() == {"code": 2, "message": "Bad handshake method"}


def test_websocket_handshake_opens_a_session(any_engine):
    ws = any_engine.websocket()
    message = recv(ws)
    assert message[0] == "0"
    handshake = json.loads(message[1:])
    assert set(handshake) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert handshake["upgrades"] == []
    assert handshake["pingInterval"] == 300 and handshake["pingTimeout"] == 200
    ws.close()


@pytest.mark.parametrize("kwargs", [{"eio": "abc"}, {"transport": "abc"}])
def test_websocket_handshake_errors_refuse_the_upgrade(any_engine, kwargs):
    with pytest.raises(websocket.WebSocketBadStatusException):
        any_engine.websocket(**kwargs)


# --- messages ------------------------------------------------------------------------------------


def test_polling_messages_are_echoed_text_and_binary(engine):
    sid = engine.handshake()
    response = engine.post(sid, "4hello\x1ebAQID\x1e4é€")
    assert (response.status_code, response.text) == (200, "ok")
    assert engine.get(sid).text == "4hello\x1ebAQID\x1e4é€"


def test_websocket_messages_are_echoed_text_and_binary(engine):
    ws = engine.websocket()
    recv(ws)
    ws.send("4hello")
    assert recv(ws) == "4hello"
    ws.send_binary(b"\x01\x02\x03")
    assert recv(ws) == b"\x01\x02\x03"
    ws.close()


def test_a_long_poll_waits_for_data(engine):
    sid = engine.handshake()
    # Answer the first ping: the next is a whole ping interval (300 ms) away, so the poll below
    # can only be answered by the message.
    assert engine.get(sid).text == "2"
    engine.post(sid, "3")
    result = {}
    poller = threading.Thread(target=lambda: result.setdefault("body", engine.get(sid).text))
    poller.start()
    poller.join(0.1)
    assert poller.is_alive(), f"the poll was answered with {result.get('body')!r} while nothing was queued"
    engine.post(sid, "4late")
    poller.join(5)
    assert result["body"] == "4late"


# --- heartbeat -----------------------------------------------------------------------------------


def test_polling_ping_pong_keeps_the_session(any_engine):
    sid = any_engine.handshake()
    for _ in range(3):
        assert any_engine.get(sid).text == "2"
        assert any_engine.post(sid, "3").text == "ok"


def test_polling_session_closes_after_ping_timeout(any_engine):
    sid = any_engine.handshake()
    time.sleep(PING_INTERVAL + PING_TIMEOUT + 0.1)
    response = any_engine.get(sid)
    assert response.status_code == 400
    assert response.json() == {"code": 1, "message": "Session ID unknown"}


def test_websocket_ping_pong_keeps_the_session(any_engine):
    ws = any_engine.websocket()
    recv(ws)
    for _ in range(3):
        assert recv(ws) == "2"
        ws.send("3")
    ws.close()


def test_websocket_session_closes_after_ping_timeout(any_engine):
    ws = any_engine.websocket()
    recv(ws)
    assert closed(ws, within=2)


# --- close ---------------------------------------------------------------------------------------


def test_polling_close_packet_releases_the_poll_with_a_noop_and_ends_the_session(any_engine):
    sid = any_engine.handshake()
    result = {}
    poller = threading.Thread(target=lambda: result.setdefault("poll", any_engine.get(sid)))
    poller.start()
    time.sleep(0.05)
    assert any_engine.post(sid, "1").text == "ok"
    poller.join(5)
    assert (result["poll"].status_code, result["poll"].text) == (200, "6")
    assert any_engine.get(sid).status_code == 400


def test_websocket_close_packet_closes_the_connection(any_engine):
    ws = any_engine.websocket()
    recv(ws)
    ws.send("1")
    assert closed(ws)


# --- upgrade -------------------------------------------------------------------------------------


def upgrade(client):
    """Upgrades a new polling session; its poller answers pings until the noop releases it."""
    sid = client.handshake()
    polls = []

    def poll():
        while True:
            body = client.get(sid).text
            polls.append(body)
            if body == "6":
                return
            client.post(sid, "3")

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.05)
    ws = client.websocket(sid)
    ws.send("2probe")
    assert recv(ws) == "3probe"
    poller.join(5)
    assert polls[-1] == "6" and all(body == "2" for body in polls[:-1])
    ws.send("5")
    time.sleep(0.05)  # let the upgrade packet arrive before the caller makes other requests
    return sid, ws


def test_polling_upgrades_to_websocket(engine):
    sid, ws = upgrade(engine)
    ws.send("4after upgrade")
    assert recv(ws) == "4after upgrade"
    ws.close()


def test_packets_queued_during_an_upgrade_leave_over_the_websocket(sio):
    sid = sio.handshake()
    sio.post(sid, "40")
    ws = sio.websocket(sid)
    ws.send("2probe")
    assert recv(ws) == "3probe"
    ws.send("5")
    received = [recv(ws), recv(ws)]
    assert received[0].startswith("40{")
    assert received[1] == '42["auth",{}]'
    ws.close()


def test_http_requests_with_the_same_sid_are_refused_after_upgrade(any_engine):
    sid, ws = upgrade(any_engine)
    assert any_engine.get(sid).status_code == 400
    assert any_engine.post(sid, "4x").status_code == 400
    ws.close()


def test_a_second_websocket_with_the_same_sid_is_closed_after_upgrade(any_engine):
    sid, ws = upgrade(any_engine)
    second = any_engine.websocket(sid)
    assert closed(second)
    ws.close()


def test_the_upgraded_session_carries_on_after_a_refused_second_websocket(engine):
    sid, ws = upgrade(engine)
    assert closed(engine.websocket(sid))
    ws.send("4still here")
    assert recv(ws) == "4still here"
    ws.close()


def test_an_upgrade_that_never_completes_leaves_the_polling_session_working(engine):
    sid = engine.handshake()
    ws = engine.websocket(sid)
    ws.send("4not a probe")
    assert closed(ws)
    engine.post(sid, "4polling")
    assert engine.get(sid).text == "4polling"


# --- CORS ----------------------------------------------------------------------------------------


def test_polling_answers_carry_cors_headers_and_preflights_are_answered(any_engine):
    response = requests.get(any_engine.url(), headers={"Origin": "http://example.test"}, timeout=5)
    assert response.headers["access-control-allow-origin"] == "*"
    preflight = requests.options(
        any_engine.url(),
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
        timeout=5,
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type"

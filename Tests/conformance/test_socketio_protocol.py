"""Socket.IO v5, as the official socket.io-protocol test suite checks it, from the specification."""
import json

import pytest

from conftest import closed, connect, recv, recv_skipping_pings


@pytest.mark.parametrize(
    "packet, prefix, auth_event",
    [
        ("40", "40", '42["auth",{}]'),
        ('40{"token":"123"}', "40", '42["auth",{"token":"123"}]'),
        ("40/custom,", "40/custom,", '42/custom,["auth",{}]'),
        ('40/custom,{"token":"abc"}', "40/custom,", '42/custom,["auth",{"token":"abc"}]'),
    ],
)
def test_connecting_to_a_namespace_returns_a_socket_id_then_the_auth_event(sio, packet, prefix, auth_event):
    ws = sio.websocket()
    engine_sid = json.loads(recv(ws)[1:])["sid"]
    ws.send(packet)
    answer = recv(ws)
    assert answer.startswith(prefix)
    handshake = json.loads(answer[len(prefix):])
    assert set(handshake) == {"sid"}
    assert isinstance(handshake["sid"], str) and handshake["sid"] != engine_sid
    assert recv(ws) == auth_event
    ws.close()


def test_an_unknown_namespace_is_refused(sio):
    ws = sio.websocket()
    recv(ws)
    ws.send("40/random")
    assert recv(ws) == '44/random,{"message":"Invalid namespace"}'
    ws.close()


def test_an_invalid_handshake_closes_the_connection(sio):
    ws = sio.websocket()
    recv(ws)
    ws.send("4abc")
    assert closed(ws)


def test_no_handshake_within_the_connect_timeout_closes_the_connection(sio):
    ws = sio.websocket()
    recv(ws)
    # Answer pings so that only the connect timeout (1 s) can close the session.
    ws.settimeout(3)
    import time

    deadline = time.time() + 3
    while time.time() < deadline:
        try:
            message = ws.recv()
        except Exception:
            return
        if message == "2":
            ws.send("3")
        elif message == "":
            return
    pytest.fail("the connection was not closed")


def test_disconnecting_from_the_main_namespace_keeps_the_engine_session(sio):
    ws = connect(sio)
    ws.send("41")
    assert recv(ws) == "2"
    ws.close()


def test_disconnecting_from_a_custom_namespace_leaves_the_main_one_working(sio):
    ws = connect(sio)
    ws.send("40/custom")
    assert recv_skipping_pings(ws).startswith("40/custom,")
    assert recv_skipping_pings(ws) == '42/custom,["auth",{}]'
    ws.send("41/custom")
    ws.send('42["message","message to main namespace"]')
    assert recv_skipping_pings(ws) == '42["message-back","message to main namespace"]'
    ws.close()


def test_a_plain_text_event_is_echoed(sio):
    ws = connect(sio)
    ws.send('42["message",1,"2",{"3":[true]}]')
    assert recv_skipping_pings(ws) == '42["message-back",1,"2",{"3":[true]}]'
    ws.close()


def test_an_event_with_binary_attachments_is_echoed(sio):
    ws = connect(sio)
    ws.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    ws.send_binary(bytes([1, 2, 3]))
    ws.send_binary(bytes([4, 5, 6]))
    assert recv_skipping_pings(ws) == '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert recv_skipping_pings(ws) == bytes([1, 2, 3])
    assert recv_skipping_pings(ws) == bytes([4, 5, 6])
    ws.close()


def test_an_event_with_an_ack_is_answered(sio):
    ws = connect(sio)
    ws.send('42456["message-with-ack",1,"2",{"3":[false]}]')
    assert recv_skipping_pings(ws) == '43456[1,"2",{"3":[false]}]'
    ws.close()


def test_an_event_with_binary_attachments_and_an_ack_is_answered_with_a_binary_ack(sio):
    ws = connect(sio)
    ws.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    ws.send_binary(bytes([1, 2, 3]))
    ws.send_binary(bytes([4, 5, 6]))
    assert recv_skipping_pings(ws) == '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]'
    assert recv_skipping_pings(ws) == bytes([1, 2, 3])
    assert recv_skipping_pings(ws) == bytes([4, 5, 6])
    ws.close()


@pytest.mark.parametrize(
    "packet",
    [
        "4abc",  # unknown packet type
        "42{}",  # invalid payload format
        '42abc["message-with-ack",1,"2",{"3":[false]}]',  # invalid ack id
    ],
)
def test_an_invalid_packet_closes_the_connection(sio, packet):
    ws = connect(sio)
    ws.send(packet)
    assert closed(ws)


def test_the_whole_exchange_works_over_polling(sio):
    sid = sio.handshake()
    assert sio.post(sid, '40{"token":"p"}').text == "ok"
    packets = []
    while len(packets) < 2:
        packets += [p for p in sio.get(sid).text.split("\x1e") if p != "2"]
    assert packets[0].startswith("40{\"sid\":")
    assert packets[1] == '42["auth",{"token":"p"}]'
    sio.post(sid, '451-["message",{"_placeholder":true,"num":0}]\x1ebAQID')
    packets = []
    while len(packets) < 2:
        packets += [p for p in sio.get(sid).text.split("\x1e") if p != "2"]
    assert packets == ['451-["message-back",{"_placeholder":true,"num":0}]', "bAQID"]

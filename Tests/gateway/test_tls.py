"""TLS in process: herald serves https and wss with --tls-cert/--tls-key, python-socketio clients
connect over both transports, and a SIGHUP with a renewed certificate reaches new connections
while the open ones stay up."""
import hashlib
import json
import shutil
import signal
import socket
import ssl

import pytest
import requests
import socketio

from certificates import CertificateAuthority
from herald_process import Herald, free_port, run, wait_until


def client(ca, transports):
    session = requests.Session()
    session.verify = ca
    # A CA bundle of the environment (REQUESTS_CA_BUNDLE) would win over the session's.
    session.trust_env = False
    recorder = []
    sio = socketio.Client(reconnection=False, http_session=session)
    sio.on("*", lambda event, *args: recorder.append([event, *args]))
    return sio, recorder


def served_certificate(port):
    """The SHA-256 of the certificate a new TLS connection to herald is shown."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def fingerprint(pem):
    with open(pem) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def emit(herald, ca, data):
    session = requests.Session()
    session.trust_env = False
    response = session.post(herald.url + "/api/emit", data=json.dumps({"event": "item_added", "data": data}), verify=ca, timeout=5)
    assert response.status_code == 202


@pytest.fixture
def authority(tmp_path):
    return CertificateAuthority(str(tmp_path))


def start(tmp_path, authority):
    cert, key = authority.issue("first")
    shutil.copy(cert, tmp_path / "served.pem")
    shutil.copy(key, tmp_path / "served.key")
    return Herald("--auth", "none", "--queue", "none", "--tls-cert", str(tmp_path / "served.pem"),
                  "--tls-key", str(tmp_path / "served.key"), scheme="https", verify=authority.pem)


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
def test_clients_connect_over_https_and_wss(tmp_path, authority, transports):
    herald = start(tmp_path, authority)
    try:
        sio, events = client(authority.pem, transports)
        sio.connect(herald.url, transports=transports, wait_timeout=10)
        if transports == ["polling", "websocket"]:
            wait_until(lambda: sio.transport() == "websocket", 10, "the upgrade to wss")
        emit(herald, authority.pem, {"n": 1})
        wait_until(lambda: events == [["item_added", {"n": 1}]], 10, "the event over TLS")
        sio.disconnect()
        # Plain http on the TLS port gets no answer it could take for one.
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{herald.port}/healthz", timeout=5)
    finally:
        herald.stop()


def test_sighup_serves_a_renewed_certificate_to_new_connections_and_keeps_open_ones(tmp_path, authority):
    herald = start(tmp_path, authority)
    try:
        first = fingerprint(tmp_path / "served.pem")
        assert served_certificate(herald.port) == first
        old, old_events = client(authority.pem, ["websocket"])
        old.connect(herald.url, transports=["websocket"], wait_timeout=10)

        cert, key = authority.issue("second")
        shutil.copy(cert, tmp_path / "served.pem")
        shutil.copy(key, tmp_path / "served.key")
        herald.signal(signal.SIGHUP)
        wait_until(lambda: "TLS certificate reloaded" in herald.output(), 10, "the reload")
        assert served_certificate(herald.port) == fingerprint(cert) != first

        fresh, fresh_events = client(authority.pem, ["websocket"])
        fresh.connect(herald.url, transports=["websocket"], wait_timeout=10)
        emit(herald, authority.pem, {"n": 2})
        wait_until(lambda: old_events == fresh_events == [["item_added", {"n": 2}]], 10, "the event on both connections")

        # A broken pair is refused and the renewed one stays.
        (tmp_path / "served.key").write_text("not a key\n")
        herald.signal(signal.SIGHUP)
        wait_until(lambda: "TLS certificate not reloaded" in herald.output(), 10, "the refused reload")
        assert served_certificate(herald.port) == fingerprint(cert)
        assert herald.process.poll() is None
        old.disconnect()
        fresh.disconnect()
    finally:
        herald.stop()


def test_wrong_tls_settings_are_named(tmp_path, authority):
    cert, key = authority.issue("one")
    other_cert, other_key = authority.issue("other")
    cases = [
        (["--tls-cert", cert], "herald: tls-cert (from --tls-cert): is set, but tls-key is not: give the certificate's private key too"),
        (["--tls-key", key], "herald: tls-key (from --tls-key): is set, but tls-cert is not: give the certificate of the key too"),
        (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", key],
         "herald: tls-cert (from --tls-cert): cannot read /nonexistent/cert.pem (no such file); give a PEM certificate chain"),
        (["--tls-cert", key, "--tls-key", key], f"herald: tls-cert (from --tls-cert): {key} holds no PEM certificate"),
        (["--tls-cert", cert, "--tls-key", cert], f"herald: tls-cert (from --tls-cert): {cert} holds no PEM private key"),
        (["--tls-cert", cert, "--tls-key", other_key],
         f"herald: tls-cert (from --tls-cert): the key of {other_key} is not the key of {cert}'s certificate"),
    ]
    for args, message in cases:
        status, _, err = run("serve", "--auth", "none", "--queue", "none", "--port", str(free_port()), *args)
        assert status == 2, (args, err)
        assert err.strip().startswith(message), (args, err)

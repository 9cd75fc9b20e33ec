"""JWKS over HTTPS: herald takes its token keys from an identity provider it trusts by a private
CA, follows a key rotation by `kid`, and refetches at a bounded rate."""
import base64
import http.server
import json
import ssl
import tempfile
import threading
import time

import pytest
import socketio
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from certificates import CertificateAuthority
from herald_process import Herald, run


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    """A P-256 key with a `kid`: its public JWK, and ES256 tokens it signs."""

    def __init__(self, kid):
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())

    def jwk(self):
        numbers = self.key.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
                "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big"))}

    def token(self, claims, kid=None):
        header = b64(json.dumps({"alg": "ES256", "typ": "JWT", "kid": kid or self.kid}).encode())
        payload = b64(json.dumps(claims).encode())
        der = self.key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        r, s = utils.decode_dss_signature(der)
        return f"{header}.{payload}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class Provider:
    """An HTTPS server of a JWKS, with a certificate of its own CA; counts the fetches."""

    def __init__(self, directory):
        self.keys = []
        self.fetches = 0
        self.lock = threading.Lock()
        ca = CertificateAuthority(directory)
        cert, key = ca.issue("server")
        self.ca = ca.pem
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with provider.lock:
                    provider.fetches += 1
                    body = json.dumps({"keys": [k.jwk() for k in provider.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, *keys):
        with self.lock:
            self.keys = list(keys)

    def fetch_count(self):
        with self.lock:
            return self.fetches

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    with tempfile.TemporaryDirectory() as directory:
        provider = Provider(directory)
        yield provider
        provider.close()


def connect(herald, token):
    """Connects with `token`: None when accepted, else the connect_error message."""
    client = socketio.Client(reconnection=False)
    refusals = []
    client.on("connect_error", lambda data: refusals.append((data or {}).get("message")))
    try:
        client.connect(herald.url, transports=["websocket"], auth={"token": token}, wait_timeout=10)
        client.disconnect()
        return None
    except socketio.exceptions.ConnectionError as error:
        return refusals[0] if refusals else str(error)


def test_keys_follow_a_rotation_by_kid(provider):
    first, second = SigningKey("k1"), SigningKey("k2")
    provider.publish(first)
    herald = Herald("--queue", "none", "--jwks", provider.url, "--jwks-ca-file", provider.ca)
    try:
        claims = {"sub": "ada", "exp": int(time.time()) + 300}
        assert connect(herald, first.token(claims)) is None
        assert provider.fetch_count() == 1

        # The provider rotates to k2: the first token naming k2 makes herald fetch again at once.
        provider.publish(first, second)
        assert connect(herald, second.token(claims)) is None
        assert provider.fetch_count() == 2

        # A token signed by k2 but claiming k1 is refused on its signature, and fetches nothing.
        assert connect(herald, second.token(claims, kid="k1")) == "invalid token: bad signature"
        # Invented kids within the refetch interval fetch nothing more either.
        for n in range(5):
            assert connect(herald, second.token(claims, kid=f"forged-{n}")) == f"invalid token: unknown key id 'forged-{n}'"
        assert provider.fetch_count() == 2
        assert connect(herald, first.token(claims)) is None
    finally:
        herald.stop()


def test_a_provider_without_the_trusted_ca_stops_the_start(provider):
    provider.publish(SigningKey("k1"))
    status, _, err = run("serve", "--queue", "none", "--port", "0", "--jwks", provider.url)
    assert status == 2
    assert err.startswith("herald: jwks (from --jwks): cannot load the keys that verify client tokens:"), err
    assert provider.url in err
    assert provider.fetch_count() == 0


def test_an_unreachable_provider_stops_the_start():
    status, _, err = run("serve", "--queue", "none", "--port", "0", "--jwks", "https://127.0.0.1:9/jwks.json")
    assert status == 2
    assert "cannot load the keys that verify client tokens" in err and "127.0.0.1:9" in err, err


@pytest.mark.parametrize("args, message", [
    (["--jwks", "http://127.0.0.1/jwks.json"],
     "herald: jwks (from --jwks): 'http://127.0.0.1/jwks.json' is plain http: keys fetched without TLS could be anyone's; use https"),
    (["--jwt-secret", "x" * 32, "--jwks-ca-file", "/etc/hostname"],
     "herald: jwks-ca-file (from --jwks-ca-file): is set, but jwks is not an https URL: the certificates would trust nothing"),
    (["--jwks", "https://127.0.0.1/jwks.json", "--jwks-ca-file", "/nonexistent/ca.pem"],
     "herald: jwks-ca-file (from --jwks-ca-file): cannot read /nonexistent/ca.pem (no such file); give a PEM file of CA certificates"),
])
def test_wrong_jwks_settings_are_named(args, message):
    status, _, err = run("serve", "--queue", "none", "--port", "0", *args)
    assert status == 2
    assert err.strip() == message

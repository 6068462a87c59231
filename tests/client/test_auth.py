"""Client authentication: our ClientAuth against our ServerAuth, header by header, entirely in memory."""

from __future__ import annotations

import base64
import datetime
import importlib.util
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from openmi.client.auth import ClientAuth, ClientAuthError, tls_channel_bindings
from openmi.wsman_server.auth import AuthStep, ConnectionAuth, ServerAuth
from openmi.wsman_server.users import UserStore

SOAP_TYPE = "application/soap+xml;charset=UTF-8"
SOAP = b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body>hi</s:Body></s:Envelope>"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> UserStore:
    s = UserStore(tmp_path_factory.mktemp("users") / "users.json")
    s.add("alice", "Secret1!")
    return s


def www_authenticate(step: AuthStep) -> str | None:
    values = [v for k, v in step.headers if k == "WWW-Authenticate"]
    return ", ".join(values) if values else None


def run(conn: ConnectionAuth, client: ClientAuth, *, preemptive: bool = True) -> AuthStep:
    """What the session transport does: handshake legs with empty bodies until the server lets one through."""
    value = client.initial_header() if preemptive else client.step(www_authenticate(conn.authenticate({})))
    while True:
        step = conn.authenticate({"authorization": value} if value is not None else {})
        if step.status == 200:
            client.step(www_authenticate(step))
            return step
        value = client.step(www_authenticate(step))


@pytest.mark.parametrize("scheme", ["NTLM", "Negotiate", "Ntlmdomain", "NegoWithCreds"])
@pytest.mark.parametrize("preemptive", [True, False], ids=["preemptive", "after-401"])
def test_handshake_and_encryption_against_our_server(store: UserStore, scheme: str, preemptive: bool) -> None:
    conn = ServerAuth(store, https=False, allow_unencrypted=False).connection()
    client = ClientAuth(scheme, "alice", "Secret1!", hostname="server", encryption=True)
    step = run(conn, client, preemptive=preemptive)
    assert step.user is not None and step.user.name == "alice"
    assert client.complete
    for i in range(3):
        ctype, body = client.seal_body(SOAP_TYPE, SOAP * (i + 1))
        assert ctype.startswith("multipart/encrypted;") and SOAP not in body
        assert conn.authenticate({}).user is not None
        assert conn.open_body(ctype, body) == (SOAP_TYPE, SOAP * (i + 1))
        rtype, reply = conn.seal_body(SOAP_TYPE, b"<reply/>")
        assert client.open_body(rtype, reply) == (SOAP_TYPE, b"<reply/>")


def test_wrong_password_raises(store: UserStore) -> None:
    conn = ServerAuth(store, https=False, allow_unencrypted=False).connection()
    client = ClientAuth("Negotiate", "alice", "wrong", hostname="server", encryption=True)
    with pytest.raises(ClientAuthError, match="rejected"):
        run(conn, client)


def test_domain_is_sent(store: UserStore) -> None:
    conn = ServerAuth(store, https=False, allow_unencrypted=False).connection()
    step = run(conn, ClientAuth("NTLM", "alice", "Secret1!", domain="WORKGROUP", encryption=True))
    assert step.user is not None and step.user.name == "alice"


def test_ntlm_word_follows_a_server_that_offers_only_ntlm(store: UserStore) -> None:
    server = ServerAuth(store, https=True, allow_unencrypted=False, schemes=("NTLM",))
    client = ClientAuth("NTLM", "alice", "Secret1!")
    first = client.step(www_authenticate(server.connection().authenticate({})))
    assert first is not None and first.startswith("NTLM ")
    assert ClientAuth("NTLM", "alice", "x").step("Negotiate, NTLM").startswith("Negotiate ")  # type: ignore[union-attr]


def test_basic(store: UserStore) -> None:
    client = ClientAuth("Basic", "alice", "Secret1!")
    assert client.protocol is None
    value = client.initial_header()
    assert value == "Basic " + base64.b64encode(b"alice:Secret1!").decode()
    conn = ServerAuth(store, https=True, allow_unencrypted=False).connection()
    assert conn.authenticate({"authorization": value}).user is not None
    assert client.step(None) is None and client.complete
    assert client.seal_body(SOAP_TYPE, SOAP) == (SOAP_TYPE, SOAP)
    assert client.open_body(SOAP_TYPE, SOAP) == (SOAP_TYPE, SOAP)
    bad = ClientAuth("Basic", "alice", "wrong")
    step = conn.authenticate({"authorization": bad.initial_header() or ""})
    with pytest.raises(ClientAuthError, match="rejected"):
        bad.step(www_authenticate(step))
    with pytest.raises(ValueError, match="cannot encrypt"):
        ClientAuth("Basic", "alice", "x", encryption=True)
    with pytest.raises(ValueError, match="unsupported"):
        ClientAuth("Digest", "alice", "x")


def test_credssp_chunks_large_messages(store: UserStore) -> None:
    conn = ServerAuth(store, https=False, allow_unencrypted=False, schemes=("CredSSP",)).connection()
    client = ClientAuth("CredSSP", "alice", "Secret1!", hostname="server", encryption=True)
    assert run(conn, client).user is not None
    big = SOAP * 300
    ctype, body = client.seal_body(SOAP_TYPE, big)
    assert ctype.startswith('multipart/x-multi-encrypted;protocol="application/HTTP-CredSSP-session-encrypted"')
    assert conn.open_body(ctype, body) == (SOAP_TYPE, big)
    assert client.open_body(*conn.seal_body(SOAP_TYPE, big)) == (SOAP_TYPE, big)


def test_plaintext_reply_on_an_encrypting_connection_is_refused(store: UserStore) -> None:
    conn = ServerAuth(store, https=False, allow_unencrypted=False).connection()
    client = ClientAuth("NTLM", "alice", "Secret1!", encryption=True)
    run(conn, client)
    with pytest.raises(ClientAuthError, match="plaintext"):
        client.open_body(SOAP_TYPE, b"<forged/>")
    assert client.open_body(None, b"") == (None, b"")


def test_tampered_reply_is_refused(store: UserStore) -> None:
    conn = ServerAuth(store, https=False, allow_unencrypted=False).connection()
    client = ClientAuth("Negotiate", "alice", "Secret1!", encryption=True)
    run(conn, client)
    rtype, reply = conn.seal_body(SOAP_TYPE, SOAP)
    with pytest.raises(ClientAuthError, match="decrypt"):
        client.open_body(rtype, reply[:-30] + bytes([reply[-30] ^ 1]) + reply[-29:])


def test_garbage_server_token_is_an_error() -> None:
    client = ClientAuth("NTLM", "alice", "x")
    client.initial_header()
    with pytest.raises(ClientAuthError):
        client.step("Negotiate " + base64.b64encode(b"NTLMSSP\x00\x02garbage").decode())
    other = ClientAuth("NTLM", "alice", "x")
    other.initial_header()
    with pytest.raises(ClientAuthError, match="malformed"):
        other.step("Negotiate ###")


@pytest.mark.skipif(importlib.util.find_spec("gssapi") is not None, reason="GSSAPI present: Kerberos may work")
def test_kerberos_without_gssapi_says_so() -> None:
    with pytest.raises(ClientAuthError, match="Kerberos"):
        ClientAuth("Kerberos", "alice@EXAMPLE.COM", "x", hostname="server", encryption=True)


def test_tls_channel_bindings(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA384()))
    der = cert.public_bytes(serialization.Encoding.DER)
    digest = hashes.Hash(hashes.SHA384())
    digest.update(der)
    assert tls_channel_bindings(der).application_data == b"tls-server-end-point:" + digest.finalize()

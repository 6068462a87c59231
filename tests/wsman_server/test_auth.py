"""Server authentication: real pyspnego client contexts against our server contexts, bytes in and bytes out.

Covers Basic (with its cache), NTLM and Negotiate handshakes against a UserStore, WinRM message encryption in both
directions with pypsrp's and pywinrm's own framing code, and every form of bad Authorization header (none of which
may ever yield a user).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import spnego
from pypsrp.encryption import WinRMEncryption
from requests_ntlm.requests_ntlm import ShimSessionSecurity
from spnego._ntlm_raw.crypto import compute_response_v1, lmowfv1
from spnego._ntlm_raw.messages import Authenticate, Challenge, NegotiateFlags
from winrm.encryption import Encryption as PywinrmEncryption

from openmi.wsman_server import auth as server_auth
from openmi.wsman_server.auth import AuthError, AuthStep, ConnectionAuth, ServerAuth, unauthenticated_identify
from openmi.wsman_server.users import UserStore

SOAP = b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>hello</s:Body></s:Envelope>'
SOAP_TYPE = "application/soap+xml;charset=UTF-8"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> UserStore:
    s = UserStore(tmp_path_factory.mktemp("users") / "users.json")
    s.add("alice", "Secret1!", rights={"root/cimv2": "rw", "root/interop": "r"})
    s.add("bob", "Hunter2?", ntlm=False)
    return s


def http_server(store: UserStore, **kw: object) -> ServerAuth:
    return ServerAuth(store, https=False, allow_unencrypted=False, **kw)  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + b64(f"{user}:{password}".encode())}


def server_token(step: AuthStep, word: str) -> bytes | None:
    for name, value in step.headers:
        if name == "WWW-Authenticate" and value.startswith(word + " "):
            return base64.b64decode(value.split(" ", 1)[1])
    return None


def handshake(conn: ConnectionAuth, client: spnego.ContextProxy, word: str) -> AuthStep:
    """Run a handshake to its end: each leg is a request with an Authorization header and an empty body."""
    out = client.step()
    while True:
        assert out is not None
        step = conn.authenticate({"authorization": f"{word} {b64(out)}"})
        token = server_token(step, word)
        if step.status != 401 or token is None:
            if step.status == 200 and token is not None:
                client.step(token)  # the final Negotiate leg (mechListMIC) rides on the 200
            return step
        out = client.step(token)


def ntlm_client(user: str = "alice", password: str = "Secret1!", protocol: str = "ntlm") -> spnego.ContextProxy:
    return spnego.client(user, password, hostname="server", service="HTTP", protocol=protocol,
                         options=spnego.NegotiateOptions.wrapping_winrm)


# -- no header, bad headers: never a user ------------------------------------------------------------------------

def negotiate_type3_from_another_connection(store: UserStore) -> str:
    conn = http_server(store).connection()
    client = ntlm_client(protocol="negotiate")
    step = conn.authenticate({"authorization": "Negotiate " + b64(client.step() or b"")})
    type3 = client.step(server_token(step, "Negotiate"))
    return "Negotiate " + b64(type3 or b"")


BAD_HEADERS: list[tuple[str, dict[str, str] | None, tuple[int, ...]]] = [
    ("no header", {}, (401,)),
    ("empty", {"authorization": ""}, (401,)),
    ("blank", {"authorization": "   "}, (401,)),
    ("Basic without token", {"authorization": "Basic"}, (400,)),
    ("Basic bad base64", {"authorization": "Basic !!!not-base64!!!"}, (400,)),
    ("Basic no colon", {"authorization": "Basic " + b64(b"alice")}, (400,)),
    ("Basic empty password", basic("alice", ""), (401,)),
    ("Basic unknown user", basic("mallory", "Secret1!"), (401,)),
    ("Basic wrong password", basic("alice", "secret1!"), (401,)),
    ("unknown scheme", {"authorization": "Digest username=alice"}, (401,)),
    ("certificate scheme", {"authorization": "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"},
     (401,)),
    ("NTLM garbage", {"authorization": "NTLM " + b64(b"NTLMSSP\x00garbage" + os.urandom(40))}, (401,)),
    ("Negotiate garbage", {"authorization": "Negotiate " + b64(os.urandom(64))}, (401,)),
    ("NTLM empty token", {"authorization": "NTLM "}, (401,)),
    ("NTLM bad base64", {"authorization": "NTLM ***"}, (400,)),
    ("Negotiate replayed on a new connection", None, (401,)),
]


@pytest.mark.parametrize("https", [True, False], ids=["https", "http-allow-unencrypted"])
@pytest.mark.parametrize(("name", "headers", "statuses"), BAD_HEADERS, ids=[b[0] for b in BAD_HEADERS])
def test_bad_authorization_never_yields_a_user(store: UserStore, https: bool, name: str,
                                               headers: dict[str, str] | None, statuses: tuple[int, ...]) -> None:
    server = ServerAuth(store, https=https, allow_unencrypted=True)
    if headers is None:
        headers = {"authorization": negotiate_type3_from_another_connection(store)}
    conn = server.connection()
    step = conn.authenticate(headers)
    assert step.user is None
    assert step.status in statuses, step.reason
    if step.status == 401:
        assert ("WWW-Authenticate", "Negotiate") in step.headers
        assert ("WWW-Authenticate", 'Basic realm="openmi"') in step.headers
    # and the connection is no more authenticated afterwards
    assert conn.authenticate({}).user is None


def test_auth_step_carries_a_user_exactly_when_it_proceeds(store: UserStore) -> None:
    alice = store.get("alice")
    with pytest.raises(ValueError):
        AuthStep(200)
    with pytest.raises(ValueError):
        AuthStep(401, user=alice)


def test_challenge_lists_only_usable_schemes(store: UserStore) -> None:
    assert http_server(store).challenge() == (("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM"))
    https = ServerAuth(store, https=True, allow_unencrypted=False, realm="wsman", schemes=("Basic",))
    assert https.challenge() == (("WWW-Authenticate", 'Basic realm="wsman"'),)
    with pytest.raises(ValueError, match="no usable"):
        http_server(store, schemes=("Basic",))
    with pytest.raises(ValueError, match="unsupported"):
        http_server(store, schemes=("Digest",))


def test_scheme_not_configured_is_refused(store: UserStore) -> None:
    server = ServerAuth(store, https=True, allow_unencrypted=False, schemes=("Basic",))
    client = ntlm_client()
    step = server.connection().authenticate({"authorization": "NTLM " + b64(client.step() or b"")})
    assert step.user is None and step.status == 401


def test_unauthenticated_identify_header() -> None:
    assert unauthenticated_identify({"wsmanidentify": "unauthenticated"})
    assert unauthenticated_identify({"wsmanidentify": " Unauthenticated "})
    assert not unauthenticated_identify({})
    assert not unauthenticated_identify({"wsmanidentify": "yes"})


# -- Basic -------------------------------------------------------------------------------------------------------

def test_basic_over_https(store: UserStore) -> None:
    conn = ServerAuth(store, https=True, allow_unencrypted=False).connection()
    step = conn.authenticate(basic("ALICE", "Secret1!"))
    assert step.status == 200 and step.user is not None and step.user.name == "alice"
    assert conn.open_body(SOAP_TYPE, SOAP) == (SOAP_TYPE, SOAP)
    assert conn.seal_body(SOAP_TYPE, SOAP) == (SOAP_TYPE, SOAP)
    assert conn.authenticate({}).user is None  # Basic authenticates requests, not the connection


def test_basic_over_plain_http_needs_allow_unencrypted(store: UserStore) -> None:
    step = http_server(store).connection().authenticate(basic("alice", "Secret1!"))
    assert step.user is None and step.status == 401
    conn = ServerAuth(store, https=False, allow_unencrypted=True).connection()
    step = conn.authenticate(basic("alice", "Secret1!"))
    assert step.user is not None
    assert conn.open_body(SOAP_TYPE, SOAP) == (SOAP_TYPE, SOAP)


def test_basic_latin1_credentials_as_requests_sends_them(tmp_path: Path) -> None:
    s = UserStore(tmp_path / "users.json")
    s.add("zoë", "pässwörd", ntlm=False)
    conn = ServerAuth(s, https=True, allow_unencrypted=False).connection()
    header = {"authorization": "Basic " + b64("zoë:pässwörd".encode("latin-1"))}
    assert conn.authenticate(header).user is not None
    assert conn.authenticate(basic("zoë", "pässwörd")).user is not None  # UTF-8 too


def test_basic_cache_makes_repeats_cheap(store: UserStore, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ServerAuth(store, https=True, allow_unencrypted=False)
    calls: list[str] = []
    verify = store.verify

    def counting(name: str, password: str) -> object:
        calls.append(name)
        return verify(name, password)

    monkeypatch.setattr(store, "verify", counting)
    assert server.connection().authenticate(basic("alice", "Secret1!")).user is not None
    started = time.perf_counter()
    for _ in range(50):  # new connections: the per-connection memory does not help, the cache does
        assert server.connection().authenticate(basic("alice", "Secret1!")).user is not None
    assert time.perf_counter() - started < 0.5
    assert calls == ["alice"]
    assert server.connection().authenticate(basic("alice", "wrong")).user is None
    assert calls == ["alice", "alice"]  # failures are never cached


def test_basic_cache_expires_and_follows_password_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = UserStore(tmp_path / "users.json")
    s.add("carol", "first-pass", ntlm=False)
    server = ServerAuth(s, https=True, allow_unencrypted=False)
    conn = server.connection()
    assert conn.authenticate(basic("carol", "first-pass")).user is not None
    s.add("carol", "second-pass", ntlm=False, replace=True)
    assert conn.authenticate(basic("carol", "first-pass")).user is None  # same connection, same header
    assert server.connection().authenticate(basic("carol", "first-pass")).user is None
    assert server.connection().authenticate(basic("carol", "second-pass")).user is not None
    s.remove("carol")
    assert server.connection().authenticate(basic("carol", "second-pass")).user is None
    s.add("carol", "third-pass", ntlm=False)
    assert server.connection().authenticate(basic("carol", "third-pass")).user is not None
    monkeypatch.setattr(server_auth, "BASIC_CACHE_TTL", -1.0)
    assert server.connection().authenticate(basic("carol", "third-pass")).user is not None  # re-verified


# -- NTLM / Negotiate --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["NTLM", "Negotiate"])
def test_handshake_right_password(store: UserStore, word: str) -> None:
    conn = http_server(store).connection()
    client = ntlm_client(protocol=word.lower())
    step = handshake(conn, client, word)
    assert step.status == 200, step.reason
    assert step.user is not None and step.user.name == "alice"
    assert client.complete
    assert conn.scheme == word
    # later requests on the connection carry no Authorization header
    again = conn.authenticate({})
    assert again.user is not None and again.user.name == "alice"
    # another connection is not authenticated
    assert http_server(store).connection().authenticate({}).user is None


@pytest.mark.parametrize("word", ["NTLM", "Negotiate"])
@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("mallory", "Secret1!"), ("bob", "Hunter2?")],
                         ids=["wrong-password", "unknown-user", "user-without-nt-hash"])
def test_handshake_refused(store: UserStore, word: str, user: str, password: str) -> None:
    conn = http_server(store).connection()
    step = handshake(conn, ntlm_client(user, password, word.lower()), word)
    assert step.status == 401 and step.user is None
    assert conn.authenticate({}).user is None


def test_raw_ntlm_in_a_negotiate_header_as_pypsrp_sends_it(store: UserStore) -> None:
    conn = http_server(store).connection()
    step = handshake(conn, ntlm_client(), "Negotiate")
    assert step.user is not None and step.user.name == "alice"


def test_domain_qualified_names(store: UserStore) -> None:
    for name in ("WORKGROUP\\alice", "alice@example.com"):
        step = handshake(http_server(store).connection(), ntlm_client(name), "NTLM")
        assert step.user is not None and step.user.name == "alice", name


def test_lm_only_response_is_refused(store: UserStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyspnego accepts an LM-only answer; with an all-zero LM hash anybody could compute it. Ours is secret."""

    def attack(conn: ConnectionAuth) -> AuthStep:
        client = ntlm_client()
        step = conn.authenticate({"authorization": "NTLM " + b64(client.step() or b"")})
        challenge = Challenge.unpack(server_token(step, "NTLM") or b"")
        flags = challenge.flags & ~NegotiateFlags.extended_session_security
        _, lm, _ = compute_response_v1(flags, b"\x00" * 16, b"\x00" * 16, challenge.server_challenge, b"\x00" * 8)
        message = Authenticate(flags, lm, b"", domain_name="", username="alice", encrypted_session_key=os.urandom(16))
        return conn.authenticate({"authorization": "NTLM " + b64(message.pack())})

    assert attack(http_server(store).connection()).user is None
    # the test has teeth: with the LM hash pyspnego uses when a file gives none, the attack gets through
    monkeypatch.setattr(server_auth, "_LM_NEVER", b"\x00" * 16)
    assert attack(http_server(store).connection()).user is not None
    monkeypatch.setattr(server_auth, "_LM_NEVER", lmowfv1("whatever"))
    assert attack(http_server(store).connection()).user is None


def test_two_servers_two_stores(tmp_path: Path, store: UserStore) -> None:
    other = UserStore(tmp_path / "other.json")
    other.add("alice", "Other-pass")
    assert handshake(http_server(other).connection(), ntlm_client(), "NTLM").user is None
    assert handshake(http_server(store).connection(), ntlm_client(), "NTLM").user is not None
    assert handshake(http_server(other).connection(), ntlm_client("alice", "Other-pass"), "NTLM").user is not None


def test_hook_leaves_other_pyspnego_acceptors_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   store: UserStore) -> None:
    http_server(store)  # installs the hook
    creds = tmp_path / "ntlm.txt"
    creds.write_text(":dave:Pass-word\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(creds))
    acceptor = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
    client = spnego.client("dave", "Pass-word", protocol="ntlm")
    acceptor.step(client.step(acceptor.step(client.step())))
    assert acceptor.complete and acceptor.client_principal == "dave"
    # and our server does not consult that file
    assert handshake(http_server(store).connection(), ntlm_client("dave", "Pass-word"), "NTLM").user is None


def test_new_authorization_restarts_the_connection(store: UserStore) -> None:
    conn = http_server(store).connection()
    assert handshake(conn, ntlm_client(), "NTLM").user is not None
    assert conn.authenticate({"authorization": "NTLM " + b64(b"garbage")}).user is None
    assert conn.authenticate({}).user is None
    assert handshake(conn, ntlm_client(), "NTLM").user is not None


def test_user_rights(store: UserStore) -> None:
    alice = handshake(http_server(store).connection(), ntlm_client(), "NTLM").user
    assert alice is not None
    assert alice.can("root/cimv2", write=True)
    assert alice.can("root/interop", write=False) and not alice.can("root/interop", write=True)
    assert not alice.can("root/other", write=False)


# -- message encryption ------------------------------------------------------------------------------------------

@pytest.fixture(params=["NTLM", "Negotiate"])
def sealed(request: pytest.FixtureRequest, store: UserStore) -> Iterator[tuple[ConnectionAuth, spnego.ContextProxy]]:
    conn = http_server(store).connection()
    client = ntlm_client(protocol=request.param.lower())
    assert handshake(conn, client, request.param).user is not None
    yield conn, client


def test_pypsrp_encryption_both_ways(sealed: tuple[ConnectionAuth, spnego.ContextProxy]) -> None:
    conn, client = sealed
    theirs = WinRMEncryption(client, WinRMEncryption.SPNEGO)
    for i in range(3):  # several messages: the sealing state advances in step on both sides
        media, payload = theirs.wrap_message(SOAP + str(i).encode())
        ctype = f'{media};protocol="{WinRMEncryption.SPNEGO}";boundary="Encrypted Boundary"'
        assert conn.authenticate({}).user is not None
        assert conn.open_body(ctype, payload) == (SOAP_TYPE, SOAP + str(i).encode())
        out_type, out = conn.seal_body(SOAP_TYPE, b"<reply/>" * (i + 1))
        assert out_type == ('multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";'
                            'boundary="Encrypted Boundary"')
        assert theirs.unwrap_message(out, "Encrypted Boundary") == b"<reply/>" * (i + 1)


def test_an_omi_style_sealed_request_gets_an_omi_style_answer(
        sealed: tuple[ConnectionAuth, spnego.ContextProxy]) -> None:
    """OMI's client writes the part headers without the tab and pads the plaintext with NULs to 16 octets; it
    finds the parts of the answer only when they have no tab either. The server answers in the request's
    style, and the next tabbed request gets tabs again."""
    from openmi.protocol.wsman import encryption

    conn, client = sealed
    padded = SOAP + b"\0" * (-len(SOAP) % 16)
    ctype, body = encryption.encrypt(client, padded, indent="")
    assert conn.authenticate({}).user is not None
    assert conn.open_body(ctype, body) == (SOAP_TYPE, SOAP)
    _, answer = conn.seal_body(SOAP_TYPE, b"<reply/>")
    assert b"\r\nContent-Type: application/octet-stream\r\n" in answer and b"\t" not in answer[:200]
    assert encryption.decrypt(client, ctype, answer).body == b"<reply/>"
    ctype, body = encryption.encrypt(client, SOAP)  # (WinRM's style)
    assert conn.authenticate({}).user is not None and conn.open_body(ctype, body)[1] == SOAP
    _, answer = conn.seal_body(SOAP_TYPE, b"<reply/>")
    assert b"\tContent-Type: application/octet-stream" in answer


def test_pywinrm_encryption_both_ways(store: UserStore) -> None:
    conn = http_server(store).connection()
    client = ntlm_client()
    assert handshake(conn, client, "NTLM").user is not None

    class Auth(requests.auth.AuthBase):  # what pywinrm reads of requests-ntlm's HttpNtlmAuth after a handshake
        session_security = ShimSessionSecurity(client)

        def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
            return r

    session = requests.Session()
    session.auth = Auth()
    theirs = PywinrmEncryption(session, "ntlm")
    prepared = theirs.prepare_encrypted_request(session, "http://server:5985/wsman", SOAP)
    assert conn.open_body(prepared.headers["Content-Type"], prepared.body) == (SOAP_TYPE, SOAP)  # type: ignore[arg-type]

    out_type, out = conn.seal_body(SOAP_TYPE, b"<reply/>")
    response = requests.Response()
    response._content = out
    response.headers["Content-Type"] = out_type
    response.request = prepared
    assert theirs.parse_encrypted_response(response) == b"<reply/>"


def test_type3_arrives_with_the_first_encrypted_request(store: UserStore) -> None:
    conn = http_server(store).connection()
    client = ntlm_client()
    step = conn.authenticate({"authorization": "NTLM " + b64(client.step() or b"")})
    type3 = client.step(server_token(step, "NTLM"))
    ctype, body = WinRMEncryption(client, WinRMEncryption.SPNEGO).wrap_message(SOAP)
    step = conn.authenticate({"authorization": "NTLM " + b64(type3 or b"")})
    assert step.status == 200 and step.user is not None
    full_type = f'{ctype};protocol="{WinRMEncryption.SPNEGO}";boundary="Encrypted Boundary"'
    assert conn.open_body(full_type, body) == (SOAP_TYPE, SOAP)


def test_empty_handshake_post_is_fine_and_not_sealed(sealed: tuple[ConnectionAuth, spnego.ContextProxy]) -> None:
    conn, _ = sealed
    assert conn.open_body(None, b"") == (None, b"")
    assert conn.seal_body(SOAP_TYPE, b"") == (SOAP_TYPE, b"")


def test_plaintext_refused_when_encryption_is_required(sealed: tuple[ConnectionAuth, spnego.ContextProxy]) -> None:
    conn, _ = sealed
    with pytest.raises(AuthError, match="unencrypted"):
        conn.open_body(SOAP_TYPE, SOAP)


def test_plaintext_allowed_when_configured(store: UserStore) -> None:
    for server in (ServerAuth(store, https=False, allow_unencrypted=True),
                   ServerAuth(store, https=True, allow_unencrypted=False)):
        conn = server.connection()
        client = ntlm_client()
        assert handshake(conn, client, "NTLM").user is not None
        assert conn.open_body(SOAP_TYPE, SOAP) == (SOAP_TYPE, SOAP)
        assert conn.seal_body(SOAP_TYPE, SOAP) == (SOAP_TYPE, SOAP)  # mirrors the plaintext request
        # an encrypted request is answered encrypted (OMI and WinRM mirror the request)
        theirs = WinRMEncryption(client, WinRMEncryption.SPNEGO)
        media, payload = theirs.wrap_message(SOAP)
        conn.open_body(f'{media};protocol="{WinRMEncryption.SPNEGO}";boundary="Encrypted Boundary"', payload)
        out_type, out = conn.seal_body(SOAP_TYPE, b"<r/>")
        assert out_type.startswith("multipart/encrypted")
        assert theirs.unwrap_message(out, "Encrypted Boundary") == b"<r/>"


def test_tampered_body_is_refused_and_drops_the_connection(
        sealed: tuple[ConnectionAuth, spnego.ContextProxy]) -> None:
    conn, client = sealed
    media, payload = WinRMEncryption(client, WinRMEncryption.SPNEGO).wrap_message(SOAP)
    ctype = f'{media};protocol="{WinRMEncryption.SPNEGO}";boundary="Encrypted Boundary"'
    tampered = payload[:-40] + bytes([payload[-40] ^ 0x01]) + payload[-39:]
    with pytest.raises(AuthError, match="rejected"):
        conn.open_body(ctype, tampered)
    assert conn.authenticate({}).user is None


def test_encrypted_body_without_a_context_is_refused(store: UserStore) -> None:
    conn = ServerAuth(store, https=True, allow_unencrypted=False).connection()
    assert conn.authenticate(basic("alice", "Secret1!")).user is not None
    ctype = 'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
    with pytest.raises(AuthError):
        conn.open_body(ctype, b"--Encrypted Boundary--\r\n")


def test_credssp_handshake_and_chunked_encryption(store: UserStore) -> None:
    server = ServerAuth(store, https=False, allow_unencrypted=False, schemes=("Negotiate", "CredSSP"))
    conn = server.connection()
    client = spnego.client("alice", "Secret1!", hostname="server", protocol="credssp")
    step = handshake(conn, client, "CredSSP")
    assert step.status == 200 and step.user is not None and step.user.name == "alice"
    big = SOAP * 400  # > 16 KiB: multipart/x-multi-encrypted
    theirs = WinRMEncryption(client, WinRMEncryption.CREDSSP)
    media, payload = theirs.wrap_message(big)
    assert media == "multipart/x-multi-encrypted"
    assert conn.open_body(f'{media};protocol="{WinRMEncryption.CREDSSP}";boundary="Encrypted Boundary"',
                          payload) == (SOAP_TYPE, big)
    out_type, out = conn.seal_body(SOAP_TYPE, big)
    assert out_type.startswith('multipart/x-multi-encrypted;protocol="application/HTTP-CredSSP-session-encrypted"')
    assert theirs.unwrap_message(out, "Encrypted Boundary") == big


def test_credssp_wrong_password(store: UserStore) -> None:
    server = ServerAuth(store, https=True, allow_unencrypted=False, schemes=("CredSSP",))
    conn = server.connection()
    client = spnego.client("alice", "nope", hostname="server", protocol="credssp")
    with pytest.raises(spnego.exceptions.SpnegoError):  # the acceptor's error TSRequest, sent with a 401
        handshake(conn, client, "CredSSP")
    assert conn.authenticate({}).user is None

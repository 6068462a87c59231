"""The authentication and rights matrices of issue 16, kept: every malformed Authorization form against every
operation (Basic over HTTPS, NTLM over HTTP), keep-alive sequences that change credentials mid-connection,
request smuggling, and every write by a read-only user across namespace spellings. None may run anything."""

from __future__ import annotations

import base64
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import spnego

import openmi
from openmi import MIType
from openmi.protocol import wsman
from openmi.wsman_server.users import UserStore
from tests.wsman_server.conftest import Running, start

from .support import (
    CREATE,
    DELETE,
    ENUMERATE,
    GET,
    PASSWORD,
    PULL,
    PUT,
    RELEASE,
    SOAP,
    WMI,
    basic,
    envelope,
    https,
    plain,
    post,
    selector,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def watched_body(pid: int = 1) -> str:
    return f'<p:Sample_Watched xmlns:p="{WMI}Sample_Watched"><p:Id>{pid}</p:Id></p:Sample_Watched>'


OPERATIONS: dict[str, bytes] = {
    "get": envelope(GET, "Sample_Watched", selector("Id", "1")),
    "put": envelope(PUT, "Sample_Watched", selector("Id", "1"), body=watched_body()),
    "create": envelope(CREATE, "Sample_Watched", body=watched_body(2)),
    "delete": envelope(DELETE, "Sample_Watched", selector("Id", "1")),
    "enumerate": envelope(ENUMERATE, "Sample_Watched", body="<n:Enumerate><w:OptimizeEnumeration/></n:Enumerate>"),
    "pull": envelope(PULL, "Sample_Watched", body="<n:Pull><n:EnumerationContext>uuid:x</n:EnumerationContext>"
                                                   "</n:Pull>"),
    "release": envelope(RELEASE, "Sample_Watched", body="<n:Release><n:EnumerationContext>uuid:x"
                                                         "</n:EnumerationContext></n:Release>"),
    "invoke": envelope(WMI + "Sample_Watched/Add", "Sample_Watched",
                       body=f'<p:Add_INPUT xmlns:p="{WMI}Sample_Watched"><p:A>1</p:A><p:B>2</p:B></p:Add_INPUT>'),
    "identify": wsman.build_request(wsman.IdentifyRequest()),
}

NTLM_NEGOTIATE = spnego.client("alice", PASSWORD, hostname="server", protocol="ntlm").step() or b""

AUTH_FORMS: list[str | None] = [
    None, "", " ", "Basic", "Basic ", "basic", "Basic  ", "Basic =", "Basic ====", "Basic !!!notbase64",
    "Basic " + b64(b"alice"), "Basic " + b64(b":"), "Basic " + b64(b"alice:"), "Basic " + b64(b":" + PASSWORD.encode()),
    basic("nobody"), basic("alice", "wrong"), basic("alice", PASSWORD + " "), basic("ALICE ", PASSWORD),
    basic("alice", PASSWORD + "\x00"), basic("alice", PASSWORD.upper()),
    "Basic " + b64(f"alice:{PASSWORD}".encode())[:-2],
    "Basic " + b64(f"alice:{PASSWORD}".encode()) + "x", "Basic\t" + b64(f"alice:{PASSWORD}".encode()).lower(),
    "Bearer abc", "Digest username=alice", "Kerberos " + b64(b"x"), "CredSSP " + b64(b"x"), "NTLM", "NTLM ",
    "NTLM garbage", "NTLM " + b64(b"NTLMSSP\x00\x03" + b"\x00" * 60), "NTLM " + b64(NTLM_NEGOTIATE) + "==",
    "Negotiate", "Negotiate TlRMTVNTUAADAAAA", "Negotiate " + b64(b"\x00" * 40), "Negotiate " + b64(b"\x60\x82\xff"),
    "Basic " + "A" * 20000, "NTLM " + "A" * 20000,
]

# Forms a server may answer with 400 instead of 401; neither may run the request.
REFUSED = (400, 401, 503)


def fresh(r: Running, secure: bool) -> object:
    return https(r) if secure else plain(r)


@pytest.mark.parametrize("secure", [True, False], ids=["https", "http"])
def test_every_authorization_form_against_every_operation(served: Running, secure: bool) -> None:
    conn = fresh(served, secure)
    for form in AUTH_FORMS:
        for op, body in OPERATIONS.items():
            headers = {} if form is None else {"Authorization": form}
            try:
                status, h, _ = post(conn, body, headers)  # type: ignore[arg-type]
            except (ConnectionError, OSError):
                conn, status, h = fresh(served, secure), 400, {"connection": "close"}
            assert status in REFUSED, (form and form[:40], op, status)
            if h.get("connection") == "close" or status == 400:
                conn = fresh(served, secure)
    assert served.recorder.calls == []


def ntlm_connection(r: Running, user: str = "alice", password: str = PASSWORD) -> tuple[object, spnego.ContextProxy]:
    """A plain HTTP connection after a completed NTLM handshake (the handshake's empty POSTs)."""
    conn = plain(r)
    client = spnego.client(user, password, hostname="127.0.0.1", protocol="ntlm",
                           options=spnego.NegotiateOptions.wrapping_winrm)
    token = client.step()
    while True:
        assert token is not None
        status, h, _ = post(conn, b"", {"Authorization": "NTLM " + b64(token)})
        if status != 401:
            assert status == 200
            return conn, client
        token = client.step(base64.b64decode(h["www-authenticate"].split()[-1]))


def test_keep_alive_sequences_never_carry_old_credentials(served_unencrypted: Running) -> None:
    r = served_unencrypted
    conn = plain(r)
    get = OPERATIONS["get"]
    assert post(conn, get, {"Authorization": basic()})[0] == 200
    assert post(conn, get, {})[0] == 401  # Basic authenticates requests, not connections
    assert post(conn, get, {"Authorization": basic("alice", "wrong")})[0] == 401
    assert post(conn, get, {"Authorization": basic("reader")})[0] == 200
    status, _, data = post(conn, OPERATIONS["delete"], {"Authorization": basic("reader")})
    assert status == 500 and b"AccessDenied" in data  # the reader's rights, not alice's from before
    assert r.recorder.calls == ["get", "get"]
    # an NTLM connection, then new (bad) credentials on it: the connection is no longer alice's
    conn2, _ = ntlm_connection(r)
    for form in ("Basic " + b64(b"x:y"), "NTLM garbage", "Negotiate " + b64(b"\x00" * 8), "Bearer x"):
        conn2, _ = ntlm_connection(r)
        status, h, _ = post(conn2, OPERATIONS["delete"], {"Authorization": form})
        assert status in REFUSED
        if h.get("connection") != "close" and status != 400:
            status, _, _ = post(conn2, OPERATIONS["delete"], {})
            assert status in REFUSED, form
    assert r.recorder.calls == ["get", "get"]


def raw(r: Running, data: bytes) -> bytes:
    """Send raw bytes to the HTTPS port and read until the server closes or 2 s pass."""
    ctx = ssl.create_default_context(cafile=str(r.cert))
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", r.https_port), timeout=10),
                           server_hostname="127.0.0.1")
    sock.sendall(data)
    sock.settimeout(2)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (TimeoutError, OSError):
        pass
    sock.close()
    return out


def test_smuggling_never_runs_an_unauthenticated_request(served: Running) -> None:
    inner = OPERATIONS["delete"]
    smuggled = (f"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Type: {SOAP}\r\nContent-Length: {len(inner)}\r\n\r\n"
                ).encode() + inner
    outer = OPERATIONS["get"]
    attempts = [
        # the second request rides in the first one's body by Content-Length/Transfer-Encoding disagreement
        (f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: {basic('alice', 'wrong')}\r\nContent-Type: {SOAP}\r\n"
         f"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode() + smuggled,
        # two Content-Length headers
        (f"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Type: {SOAP}\r\nContent-Length: {len(outer)}\r\n"
         f"Content-Length: 0\r\n\r\n").encode() + outer + smuggled,
        # an authenticated request whose body hides a second, unauthenticated one
        (f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()}\r\nContent-Type: {SOAP}\r\n"
         f"Content-Length: {len(outer) + len(smuggled)}\r\n\r\n").encode() + outer + smuggled,
        # obsolete line folding (unfolded to a space, RFC 9112 §5.2) carrying wrong credentials
        (f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: Basic\r\n {basic('alice', 'x').split()[1]}\r\n"
         f"Content-Type: {SOAP}\r\nContent-Length: {len(inner)}\r\n\r\n").encode() + inner,
        # a folded line that would make a header of its own if a reader took it for one
        (f"POST /wsman HTTP/1.1\r\nHost: x\r\nX-Note: a\r\n Authorization: {basic()}\r\n"
         f"Content-Type: {SOAP}\r\nContent-Length: {len(inner)}\r\n\r\n").encode() + inner,
        # a pipelined unauthenticated request after an authenticated one
        (f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()}\r\nContent-Type: {SOAP}\r\n"
         f"Content-Length: {len(outer)}\r\n\r\n").encode() + outer + smuggled,
    ]
    for data in attempts:
        raw(served, data)
    assert "delete" not in served.recorder.calls


# --- the namespace-rights matrix ----------------------------------------------------------------------------------

SPELLINGS = ["root/cimv2", "ROOT/CIMV2", "root\\cimv2", "/root/cimv2", "root/cimv2/", "Root\\CIMv2\\",
             "root//cimv2", " root/cimv2", "root/cimv2 ", "root/./cimv2", "root/test/../cimv2", "root/Test",
             "root/test", "ROOT\\TEST", "root/test/", "root", "", "*", "root/*", "interop", "root/interop"]


@pytest.fixture
def rights_server(tmp_path: Path) -> Iterator[Running]:
    store = UserStore(tmp_path / "users.json")
    store.add("allreader", PASSWORD, rights={"*": "r"})
    store.add("testonly", PASSWORD, rights={"root/test": "rw"})  # nothing at all elsewhere
    store.add("cimreader", PASSWORD, rights={"root/cimv2": "r", "root/test": "rw"})
    r = start(tmp_path)
    r.engine.define_class("root/test", openmi.Class("Sample_Watched", properties=[
        openmi.Property("Id", MIType.UINT32, key=True)]))
    yield r
    r.server.stop()
    r.engine.close()


def dmtf(action: str, namespace: str, sels: str = "", body: str = "") -> bytes:
    uri = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/Sample_Watched"
    ss = f'<w:SelectorSet><w:Selector Name="__cimnamespace">{namespace}</w:Selector>{sels}</w:SelectorSet>'
    return envelope(action, uri, ss, body)


@pytest.mark.parametrize("user", ["allreader", "cimreader", "testonly"])
def test_no_write_without_the_right_in_any_namespace_spelling(rights_server: Running, user: str) -> None:
    r = rights_server
    conn = https(r)
    auth = {"Authorization": basic(user)}
    body = '<p:Sample_Watched xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/Sample_Watched">' \
           "<p:Id>3</p:Id></p:Sample_Watched>"
    writes = 0
    for ns in SPELLINGS:
        for action, sels, b in ((DELETE, '<w:Selector Name="Id">1</w:Selector>', ""),
                                (CREATE, "", body), (PUT, '<w:Selector Name="Id">3</w:Selector>', body),
                                (WMI.replace("root/cimv2/", "") + "Sample_Watched/Add", "", "")):
            for req in (dmtf(action, ns, sels, b),
                        envelope(action, f"http://schemas.microsoft.com/wbem/wsman/1/wmi/{ns}/Sample_Watched",
                                 f"<w:SelectorSet>{sels}</w:SelectorSet>" if sels else "", b)):
                status, _, _data = post(conn, req, auth)
                if status == 200:
                    writes += 1
                    allowed = (user in ("testonly", "cimreader")
                               and ns.strip().replace("\\", "/").strip("/").lower() == "root/test")
                    assert allowed, (user, ns, action)
    # a write that succeeded went to root/test only; the provider of root/cimv2 never saw a write
    assert not [c for c in r.recorder.calls if c in ("delete", "Add")]
    if user == "allreader":
        assert writes == 0

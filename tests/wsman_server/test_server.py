"""openmi serve through a real socket: authentication is never skipped, bad input gets the right answer
and the server keeps serving, authorization per namespace, Identify, keep-alive, concurrency, shutdown,
and the captured OMI requests."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIResult
from openmi.protocol import wsman

from .conftest import PASSWORD, Running, sample_engine, start

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SOAP = "application/soap+xml;charset=UTF-8"
WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"


def basic(user: str = "alice", password: str = PASSWORD) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def envelope(action: str, cls: str, selectors: str = "", body: str = "", extra: str = "") -> bytes:
    return f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
<s:Header><a:To>http://localhost/wsman</a:To><w:ResourceURI s:mustUnderstand="true">{WMI}{cls}</w:ResourceURI>
<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
<a:Action s:mustUnderstand="true">{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>
{extra}{selectors}</s:Header><s:Body>{body}</s:Body></s:Envelope>""".encode()


DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"


def watched(pid: int = 1) -> str:
    return f'<w:SelectorSet><w:Selector Name="Id">{pid}</w:Selector></w:SelectorSet>'


def https(r: Running) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context(cafile=str(r.cert))
    return http.client.HTTPSConnection("127.0.0.1", r.https_port, context=ctx, timeout=10)


def post(conn: http.client.HTTPConnection, body: bytes, headers: dict[str, str] | None = None,
         path: str = "/wsman") -> tuple[int, dict[str, str], bytes]:
    h = {"Content-Type": SOAP}
    h.update(headers or {})
    conn.request("POST", path, body, h)
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


BAD_AUTH = [
    None, "", "Basic", "Basic ", "Basic !!!notbase64", "Basic " + base64.b64encode(b"alice").decode(),
    basic("nobody"), basic("alice", "wrong"), basic("alice", ""), "Bearer abc", "Digest username=alice",
    "NTLM garbage", "Negotiate TlRMTVNTUAADAAAA", "Negotiate " + base64.b64encode(b"\x00" * 40).decode(),
]


@pytest.mark.parametrize("header", BAD_AUTH, ids=lambda h: repr(h)[:30])
def test_bad_authorization_is_never_executed(served: Running, header: str | None) -> None:
    conn = https(served)
    headers = {} if header is None else {"Authorization": header}
    for action in (DELETE, GET):
        status, h, _body = post(conn, envelope(action, "Sample_Watched", watched()), headers)
        assert status in (400, 401), (header, status)
        if status == 401:
            assert "www-authenticate" in h
        if h.get("connection") == "close" or status == 400:
            conn = https(served)
    assert served.recorder.calls == []
    # the same request with good credentials runs
    status, _, _ = post(https(served), envelope(DELETE, "Sample_Watched", watched()), {"Authorization": basic()})
    assert status == 200 and served.recorder.calls == ["delete"]


def test_negotiate_token_replayed_on_a_new_connection(served: Running) -> None:
    import spnego

    client = spnego.client("alice", PASSWORD, hostname="127.0.0.1", protocol="ntlm",
                           options=spnego.NegotiateOptions.wrapping_winrm)
    c1 = http.client.HTTPConnection("127.0.0.1", served.http_port, timeout=10)
    t1 = client.step()
    assert t1 is not None
    status, h, _ = post(c1, b"", {"Authorization": "Negotiate " + base64.b64encode(t1).decode()})
    assert status == 401
    challenge = base64.b64decode(h["www-authenticate"].split()[-1])
    t3 = client.step(challenge)
    assert t3 is not None
    # the final leg, stolen and sent on another connection, must not authenticate anything
    c2 = http.client.HTTPConnection("127.0.0.1", served.http_port, timeout=10)
    status, _, _ = post(c2, envelope(DELETE, "Sample_Watched", watched()),
                        {"Authorization": "Negotiate " + base64.b64encode(t3).decode()})
    assert status in (400, 401)
    assert served.recorder.calls == []


def test_plain_http_basic_is_refused_unless_allowed(served: Running, tmp_path: Path) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.http_port, timeout=10)
    status, h, _ = post(conn, envelope(DELETE, "Sample_Watched", watched()), {"Authorization": basic()})
    assert status == 401 and "Basic" not in h.get("www-authenticate", "")
    assert served.recorder.calls == []
    r = start(tmp_path / "open", allow_unencrypted=True) if (tmp_path / "open").mkdir() is None else None
    assert r is not None
    try:
        conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=10)
        status, _, _ = post(conn, envelope(DELETE, "Sample_Watched", watched()), {"Authorization": basic()})
        assert status == 200 and r.recorder.calls == ["delete"]
    finally:
        r.server.stop()
        r.engine.close()


def test_unauthenticated_identify(served: Running) -> None:
    body = wsman.build_request(wsman.IdentifyRequest())
    conn = http.client.HTTPConnection("127.0.0.1", served.http_port, timeout=10)
    status, _, data = post(conn, body, {"WSMANIDENTIFY": "unauthenticated"})
    assert status == 200
    r = wsman.parse_response(data, SOAP, wsman.IdentifyRequest())
    assert isinstance(r, wsman.IdentifyResponse) and r.product_vendor == "openmi" and r.product_version is None
    # the header does not open the door for anything else
    status, _, _ = post(conn, envelope(DELETE, "Sample_Watched", watched()), {"WSMANIDENTIFY": "unauthenticated"})
    assert status == 401
    assert served.recorder.calls == []
    # authenticated Identify tells the version
    status, _, data = post(https(served), body, {"Authorization": basic()})
    r = wsman.parse_response(data, SOAP, wsman.IdentifyRequest())
    assert isinstance(r, wsman.IdentifyResponse) and r.product_version


def test_write_needs_the_right(served: Running) -> None:
    conn = https(served)
    reader = {"Authorization": basic("reader")}
    status, _, data = post(conn, envelope(DELETE, "Sample_Watched", watched()), reader)
    assert status == 500
    with pytest.raises(openmi.MIError) as ei:
        wsman.parse_response(data, SOAP, wsman.DeleteRequest())
    assert ei.value.result == MIResult.ACCESS_DENIED
    assert served.recorder.calls == []
    status, _, _ = post(conn, envelope(GET, "Sample_Watched", watched()), reader)
    assert status == 200 and served.recorder.calls == ["get"]


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("not xml", b"this is not XML at all", SOAP),
    ("dtd", b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b"<s>&b;</s>", SOAP),
    ("external entity", b'<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]><s>&x;</s>',
     SOAP),
    ("deep nesting", b"<a>" * 100000 + b"</a>" * 100000, SOAP),
    ("unknown action", envelope("http://example.org/NoSuchAction", "Sample_Person"), SOAP),
    ("soap 1.1", b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>', SOAP),
    ("missing message id", envelope(GET, "Sample_Person").replace(b"<a:MessageID>", b"<a:X>").replace(
        b"</a:MessageID>", b"</a:X>"), SOAP),
]


@pytest.mark.parametrize("name,body,ctype", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies_get_a_fault_and_the_server_goes_on(served: Running, name: str, body: bytes, ctype: str) -> None:
    conn = https(served)
    status, _h, data = post(conn, body, {"Authorization": basic(), "Content-Type": ctype})
    assert status in (400, 413, 500), name
    if status == 500:
        assert b"Fault" in data
        assert b"/etc/passwd" not in data and b"root:" not in data
    conn = https(served)
    status, _, _ = post(conn, envelope(GET, "Sample_Watched", watched()), {"Authorization": basic()})
    assert status == 200


def test_wrong_content_type_and_method_and_path(served: Running) -> None:
    conn = https(served)
    status, _, _ = post(conn, envelope(GET, "Sample_Watched", watched()), {"Authorization": basic(),
                                                                          "Content-Type": "text/plain"})
    assert status == 415
    conn.request("GET", "/wsman", headers={"Authorization": basic()})
    assert conn.getresponse().status in (401, 405)
    conn = https(served)
    status, _, _ = post(conn, b"x", {"Authorization": basic()}, path="/other")
    assert status == 404
    assert served.recorder.calls == []


def test_envelope_over_the_cap(served: Running) -> None:
    big = envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Create", "Sample_Person",
                   body="<p:X xmlns:p='u'>" + "A" * 3_000_000 + "</p:X>")
    conn = https(served)
    try:
        status, _, _ = post(conn, big, {"Authorization": basic()})
    except (ConnectionError, http.client.HTTPException, ssl.SSLError):
        status = 413  # the server may close while we still send
    assert status in (413, 500)
    status, _, _ = post(https(served), envelope(GET, "Sample_Watched", watched()), {"Authorization": basic()})
    assert status == 200


def test_max_envelope_size_too_small_for_the_answer(served: Running) -> None:
    app = openmi.Application()
    s = app.new_session(server=served.engine)
    s.create(openmi.Instance("Sample_Person", {"Id": 1, "Name": "x" * 20000}))
    body = envelope(GET, "Sample_Person", watched(1), extra='<w:MaxEnvelopeSize s:mustUnderstand="true">8192'
                                                            '</w:MaxEnvelopeSize>')
    status, _, data = post(https(served), body, {"Authorization": basic()})
    assert status == 500 and b"EncodingLimit" in data
    app.close()


def test_keep_alive_and_single_write(served: Running) -> None:
    sock = socket.create_connection(("127.0.0.1", served.https_port))
    ctx = ssl.create_default_context(cafile=str(served.cert))
    tls = ctx.wrap_socket(sock, server_hostname="127.0.0.1")
    body = envelope(GET, "Sample_Watched", watched())
    for _ in range(3):
        req = (f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()}\r\nContent-Type: {SOAP}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        tls.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            data += tls.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(
            b"content-length")))
        while len(rest) < length:
            rest += tls.recv(65536)
        assert head.startswith(b"HTTP/1.1 200")
    tls.close()
    assert served.recorder.calls == ["get"] * 3


def test_slow_provider_does_not_block_others(tmp_path: Path) -> None:
    engine, recorder = sample_engine()
    gate = threading.Event()

    class Slow:
        def get_instance(self, ctx: Any, ns: str, inst: openmi.Instance) -> openmi.Instance:
            gate.wait(10)
            return inst

    engine.define_class("root/cimv2", openmi.Class("Sample_Slow", properties=[
        openmi.Property("Id", openmi.MIType.UINT32, key=True)]))
    engine.register_provider("root/cimv2", "Sample_Slow", Slow())
    r = start(tmp_path, engine=engine, recorder=recorder)
    try:
        slow = threading.Thread(target=lambda: post(https(r), envelope(GET, "Sample_Slow", watched()),
                                                    {"Authorization": basic()}), name="openmi-test-slow")
        slow.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        status, _, _ = post(https(r), envelope(GET, "Sample_Watched", watched()), {"Authorization": basic()})
        assert status == 200 and time.monotonic() - t0 < 3
        gate.set()
        slow.join(10)
    finally:
        gate.set()
        r.server.stop()
        engine.close()


def test_graceful_shutdown(tmp_path: Path) -> None:
    engine, recorder = sample_engine()
    gate = threading.Event()
    started = threading.Event()

    class Slow:
        def get_instance(self, ctx: Any, ns: str, inst: openmi.Instance) -> openmi.Instance:
            started.set()
            gate.wait(10)
            return inst

    engine.define_class("root/cimv2", openmi.Class("Sample_Slow", properties=[
        openmi.Property("Id", openmi.MIType.UINT32, key=True)]))
    engine.register_provider("root/cimv2", "Sample_Slow", Slow())
    r = start(tmp_path, engine=engine, recorder=recorder)
    results: list[int] = []
    idle = https(r)
    assert post(idle, envelope(GET, "Sample_Watched", watched()), {"Authorization": basic()})[0] == 200
    t = threading.Thread(target=lambda: results.append(
        post(https(r), envelope(GET, "Sample_Slow", watched()), {"Authorization": basic()})[0]),
        name="openmi-test-inflight")
    t.start()
    assert started.wait(5)
    stopper = threading.Thread(target=r.server.stop, name="openmi-test-stop")
    stopper.start()
    time.sleep(0.3)
    gate.set()
    t.join(10)
    stopper.join(15)
    assert results == [200]  # the request in flight finished
    with pytest.raises(OSError):
        https(r).request("POST", "/wsman", b"")
        https(r).getresponse()
    engine.close()


def test_shutting_down_answer(served: Running) -> None:
    from openmi.wsman_server.http import HTTPRequest

    body = envelope(GET, "Sample_Watched", watched())
    conn = served.server.service.connection("test", True)
    resp = conn.shutting_down(HTTPRequest("POST", "/wsman", "HTTP/1.1", {"content-type": SOAP}, body))
    with pytest.raises(openmi.MIError) as ei:
        wsman.parse_response(resp.body, SOAP, wsman.GetRequest(message_id="x"))
    assert ei.value.result == MIResult.SERVER_IS_SHUTTING_DOWN


def omi_engine() -> openmi.Server:
    engine = openmi.Server(":memory:")
    engine.define_class("root/cimv2", openmi.Class("OMIPeer_Item", properties=[
        openmi.Property("Name", openmi.MIType.STRING, key=True), openmi.Property("Value", openmi.MIType.STRING),
        openmi.Property("Size", openmi.MIType.UINT32)]))
    return engine


def test_captured_omi_requests(tmp_path: Path) -> None:
    """Our server answers OMI's captured requests with responses the same codec reads as OMI's own."""
    engine = omi_engine()
    _, recorder = sample_engine()
    r = start(tmp_path, engine=engine, recorder=recorder)
    expected = {"03": "ok", "04": MIResult.ALREADY_EXISTS, "05": "ok", "06": "ok", "07": "ok", "08": "ok",
                "09": MIResult.NOT_FOUND, "10": MIResult.NOT_FOUND, "11": MIResult.INVALID_CLASS}
    try:
        conn = https(r)
        for step, want in expected.items():
            path = next((FIXTURES / "omi").glob(f"pyclient-{step}-*-request.xml"))
            body = path.read_bytes()
            req = wsman.parse_request(body, SOAP)
            status, _, data = post(conn, body, {"Authorization": basic()})
            theirs = (path.parent / path.name.replace("-request", "-response")).read_bytes()
            if want == "ok":
                assert status == 200, (step, data[:500])
                ours = wsman.parse_response(data, SOAP, req)
                reference = wsman.parse_response(theirs, SOAP, req)
                assert type(ours) is type(reference), step
            else:
                assert status == 500, step
                with pytest.raises(openmi.MIError) as ours_e:
                    wsman.parse_response(data, SOAP, req)
                with pytest.raises(openmi.MIError) as theirs_e:
                    wsman.parse_response(theirs, SOAP, req)
                assert ours_e.value.result == theirs_e.value.result == want, step
    finally:
        r.server.stop()
        engine.close()


@pytest.mark.parametrize("size", [b"-1", b"+5", b"0x5", b"1_0", b"zz", b"123456789"])
def test_bad_chunk_sizes_are_refused_before_reading(served: Running, size: bytes) -> None:
    status = b"413" if size == b"123456789" else b"400"  # well-formed, but 4.9 GB: over the body limit
    sock = socket.create_connection(("127.0.0.1", served.https_port))
    tls = ssl.create_default_context(cafile=str(served.cert)).wrap_socket(sock, server_hostname="127.0.0.1")
    tls.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n" + b"A" * 100)
    answer = tls.recv(200)
    tls.close()
    assert answer.startswith(b"HTTP/1.1 " + status)

"""HTTP/1.1 framing with bytes in and requests/responses out, no sockets: protocol/http.py's server and
client channels (h11 underneath) — Content-Length, chunked, bodies over the limit, keep-alive, pipelining,
malformed heads and every malformed Content-Length (issue 16 item 9), and the client rules both of
openmi's clients share (a response without Content-Length runs to the close; a declared body over the
limit is refused)."""

from __future__ import annotations

import pytest

from openmi.protocol.http import (
    CLOSED,
    NEED_DATA,
    BadRequest,
    BadResponse,
    ClientChannel,
    HTTPRequest,
    HTTPResponse,
    ServerChannel,
    error_response,
    tunnel_answer,
    tunnel_request,
)

HEAD = b"POST /wsman HTTP/1.1\r\nHost: h\r\nContent-Type: application/soap+xml\r\n"


def server_read(data: bytes, max_body: int = 1000) -> HTTPRequest:
    chan = ServerChannel(max_header_bytes=4096, max_body_bytes=max_body)
    chan.feed(data)
    result = chan.next_request()
    assert isinstance(result, HTTPRequest), result
    return result


def server_refusal(data: bytes, max_body: int = 1000) -> BadRequest:
    chan = ServerChannel(max_header_bytes=4096, max_body_bytes=max_body)
    chan.feed(data)
    with pytest.raises(BadRequest) as info:
        chan.next_request()
    return info.value


# --- the server side --------------------------------------------------------------------------------------
def test_content_length_body() -> None:
    req = server_read(HEAD + b"Content-Length: 5\r\nX-Two: a\r\nx-two: b\r\n\r\nhello")
    assert (req.method, req.path, req.version, req.body) == ("POST", "/wsman", "HTTP/1.1", b"hello")
    assert type(req.body) is bytes
    assert req.headers["content-type"] == "application/soap+xml"
    assert req.headers["x-two"] == "a, b"  # names lower-cased, repeats joined


def test_chunked_body_with_extensions_and_trailers() -> None:
    req = server_read(HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
                      b"3;name=v\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert req.body == b"hello"


@pytest.mark.parametrize("framing", [b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                                     b"Content-Length: 5\r\n\r\nhello"])
def test_bytes_arrive_one_at_a_time(framing: bytes) -> None:
    data = HEAD + framing
    follows = HEAD + b"Content-Length: 3\r\n\r\nbye"
    chan = ServerChannel()
    for i in range(len(data) - 1):
        chan.feed(data[i:i + 1])
        assert chan.next_request() is NEED_DATA
        assert chan.pending
    chan.feed(data[-1:] + follows[:10])  # the last byte comes with the start of the next request
    req = chan.next_request()
    assert isinstance(req, HTTPRequest) and req.body == b"hello"
    chan.respond(HTTPResponse(200))
    assert chan.pending and chan.next_request() is NEED_DATA
    chan.feed(follows[10:])
    req = chan.next_request()
    assert isinstance(req, HTTPRequest) and req.body == b"bye"


@pytest.mark.parametrize("value", [
    "²",  # a Unicode digit: str.isdigit() says yes, int() says no
    "٣",  # Arabic-Indic three
    "+5", "-5", "5.0", "0x5", "5e0", "1 2", "5\t5", "five", "",
    "9" * 21,  # more digits than any real body
    "9" * 5000,  # more than Python's int() accepts from text
])
def test_malformed_content_length_is_a_400(value: str) -> None:
    for raw in {value.encode("utf-8"), value.encode("latin-1", "ignore")}:
        exc = server_refusal(HEAD + b"Content-Length: " + raw + b"\r\n\r\nhello")
        assert exc.status == 400
    exc = server_refusal(HEAD + b"Content-Length: " + value.encode("utf-8") + b"\r\n\r\nhello")
    assert exc.status == 400
    assert "Content-Length" in str(exc)


@pytest.mark.parametrize("lines", [
    b"Content-Length: 5\r\nContent-Length: 6\r\n",  # duplicates that disagree
    b"Content-Length: 5, 6\r\n",
    b"Content-Length: 5\r\nContent-Length: 05\r\n",
])
def test_disagreeing_content_lengths_are_a_400(lines: bytes) -> None:
    exc = server_refusal(HEAD + lines + b"\r\nhello")
    assert exc.status == 400


def test_agreeing_duplicate_content_lengths_and_surrounding_spaces_are_accepted() -> None:
    assert server_read(HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello").body == b"hello"
    assert server_read(HEAD + b"Content-Length:   5  \r\n\r\nhello").body == b"hello"


def test_a_declared_body_over_the_limit_is_refused_before_it_arrives() -> None:
    exc = server_refusal(HEAD + b"Content-Length: 1001\r\n\r\n", max_body=1000)
    assert exc.status == 413
    huge = server_refusal(HEAD + b"Content-Length: 99999999999999999999\r\n\r\n")  # 20 digits: well-formed
    assert huge.status == 413
    assert server_read(HEAD + b"Content-Length: 1000\r\n\r\n" + b"x" * 1000, max_body=1000).body == b"x" * 1000


def test_a_chunked_body_over_the_limit_is_refused() -> None:
    chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
    exc = server_refusal(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 2, max_body=1500)
    assert exc.status == 413
    # a single chunk that declares more than the limit is refused before its bytes are awaited
    exc = server_refusal(HEAD + b"Transfer-Encoding: chunked\r\n\r\n123456789\r\nAAAA")
    assert exc.status == 413


@pytest.mark.parametrize("size", [b"-1", b"+5", b"0x5", b"1_0", b"zz", b" \r\n"])
def test_malformed_chunk_sizes_are_a_400(size: bytes) -> None:
    exc = server_refusal(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n")
    assert exc.status == 400


@pytest.mark.parametrize("head, status", [
    (b"POST /wsman HTTP/1.1\r\nHost: h\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n", 400),  # space in name
    (b"POST /wsman HTTP/1.1\r\nHost: h\r\n: x\r\nContent-Length: 0\r\n\r\n", 400),  # empty name
    (b"POST /wsman HTTP/1.1\r\nHost: h\r\nNoColon\r\nContent-Length: 0\r\n\r\n", 400),
    (b"POST /wsman HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n", 400),  # NUL in a value
    (b"POST /wsman HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400),  # HTTP/1.1 needs Host
    (b"POST /wsman\r\n\r\n", 400),  # no version
    (b"POST /wsman HTTP/2.0\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 505),
    (b"POST /wsman HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"POST /wsman HTTP/1.1\r\nHost: h\r\n\r\n", 411),  # a POST that says nothing of its length
    (b"POST /wsman HTTP/1.1\r\nHost: h\r\nAuthorization: Basic\r\n eDp5\r\nContent-Length: 0\r\n\r\n", 400),
    (b"POST /wsman HTTP/1.1\nHost: h\nX: a\n\tb\nContent-Length: 0\n\n", 400),  # folded, bare LF ends
    (b"POST /wsman HTTP/1.1\r\nHost: h\r\nX: " + b"a" * 5000 + b"\r\n\r\n", 431),
])
def test_malformed_heads(head: bytes, status: int) -> None:
    assert server_refusal(head).status == status


def test_keep_alive_and_pipelining() -> None:
    one = HEAD + b"Content-Length: 3\r\n\r\none"
    two = HEAD + b"Content-Length: 3\r\n\r\ntwo"
    chan = ServerChannel()
    chan.feed(one + two)  # both at once: the second waits in the buffer until the first is answered
    first = chan.next_request()
    assert isinstance(first, HTTPRequest) and first.body == b"one"
    with pytest.raises(RuntimeError):  # answers go in order: the second is read once the first is answered
        chan.next_request()
    out = chan.respond(HTTPResponse(200, b"1", [("Content-Type", "text/plain")]))
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\n1")
    assert b"Content-Length: 1\r\n" in out and b"Server: openmi\r\n" in out
    assert chan.reusable and chan.pending
    second = chan.next_request()
    assert isinstance(second, HTTPRequest) and second.body == b"two"
    chan.respond(HTTPResponse(200, b"2"))
    assert chan.reusable and not chan.pending
    chan.feed(b"")
    assert chan.next_request() is CLOSED


def test_connection_close_and_http_10_end_the_connection() -> None:
    for head in (HEAD + b"Connection: close\r\n", b"POST /wsman HTTP/1.0\r\n"):
        chan = ServerChannel()
        chan.feed(head + b"Content-Length: 2\r\n\r\nhi")
        assert isinstance(chan.next_request(), HTTPRequest)
        out = chan.respond(HTTPResponse(200, b"ok"))
        assert b"Connection: close" in out or b"connection: close" in out.lower()
        assert not chan.reusable


def test_a_response_that_closes() -> None:
    chan = ServerChannel()
    chan.feed(HEAD + b"Content-Length: 2\r\n\r\nhi")
    assert isinstance(chan.next_request(), HTTPRequest)
    out = chan.respond(HTTPResponse(401, b"", [("WWW-Authenticate", "Basic")], close=True))
    assert out.startswith(b"HTTP/1.1 401 Unauthorized\r\n") and b"Connection: close\r\n" in out
    assert not chan.reusable


def test_expect_100_continue() -> None:
    chan = ServerChannel()
    chan.feed(HEAD + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert chan.next_request() is NEED_DATA
    assert chan.wants_continue
    assert chan.continue_bytes().startswith(b"HTTP/1.1 100 ")
    assert not chan.wants_continue
    chan.feed(b"hi")
    req = chan.next_request()
    assert isinstance(req, HTTPRequest) and req.body == b"hi"


def test_a_close_in_the_middle_of_a_request_is_refused() -> None:
    chan = ServerChannel()
    chan.feed(HEAD + b"Content-Length: 10\r\n\r\nabc")
    assert chan.next_request() is NEED_DATA
    chan.feed(b"")
    with pytest.raises(BadRequest) as info:
        chan.next_request()
    assert info.value.status == 400


def test_error_response_bytes() -> None:
    out = error_response(503, "too many connections", [("Retry-After", "1")])
    assert out == (b"HTTP/1.1 503 Service Unavailable\r\nServer: openmi\r\nContent-Type: text/plain\r\n"
                   b"Retry-After: 1\r\nContent-Length: 20\r\nConnection: close\r\n\r\ntoo many connections")


# --- the memory of heads: the same verdict as h11, for less ----------------------------------------------
def warm(head: bytes, body: bytes) -> ServerChannel:
    """A channel that has read (through h11) and answered one request with ``head``."""
    chan = ServerChannel(max_header_bytes=4096, max_body_bytes=1000)
    chan.feed(head + body)
    assert isinstance(chan.next_request(), HTTPRequest)
    chan.respond(HTTPResponse(200))
    return chan


def outcome(chan: ServerChannel, data: bytes) -> object:
    chan.feed(data)
    try:
        result = chan.next_request()
    except BadRequest as exc:
        return ("refused", exc.status)
    return result


TEMPLATE = HEAD + b"Authorization: Basic eDp5\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"


@pytest.mark.parametrize("variant", [
    TEMPLATE.replace(b"Length: 5", b"Length: 12") + b"hello, world",  # another length: remembered
    TEMPLATE.replace(b"Length: 5", b"Length:   0012 ") + b"hello, world",
    TEMPLATE.replace(b"Length: 5", b"Length: 0"),
    TEMPLATE.replace(b"Length: 5", b"Length: 1001"),  # over the limit
    TEMPLATE.replace(b"Length: 5", b"Length: \xb2"),  # malformed: never remembered
    TEMPLATE.replace(b"Length: 5", b"Length: 5\r\nContent-Length: 6"),
    TEMPLATE.replace(b"Length: 5", b"Length: 5, 6") + b"hello!",
    TEMPLATE.replace(b"Length: 5", b"Length: 99999999999999999999999"),
    TEMPLATE.replace(b"Length: 5\r\n", b"Length: 5\r\n \r\n") + b"hello",  # a folded line
    TEMPLATE.replace(b"Basic eDp5", b"Basic eDp6") + b"hello",  # another byte elsewhere: h11 reads it
    TEMPLATE.replace(b"HTTP/1.1", b"HTTP/1.0") + b"hello",
    TEMPLATE.replace(b"\r\n\r\n", b"\r\n\n") + b"hello",
    TEMPLATE.replace(b"Expect: 100-continue\r\n", b"Transfer-Encoding: chunked\r\n") + b"5\r\nhello\r\n0\r\n\r\n",
])
def test_a_remembered_head_reads_as_h11_reads_it(variant: bytes) -> None:
    fresh = ServerChannel(max_header_bytes=4096, max_body_bytes=1000)
    remembered = warm(TEMPLATE, b"hello")
    assert outcome(remembered, variant) == outcome(fresh, variant)
    assert fresh.wants_continue == remembered.wants_continue


def test_a_remembered_head_skips_h11() -> None:
    chan = warm(TEMPLATE, b"hello")
    req = outcome(chan, TEMPLATE.replace(b"Length: 5", b"Length: 7") + b"goodbye")
    assert isinstance(req, HTTPRequest) and req.body == b"goodbye" and req.headers["content-length"] == "7"
    assert chan._conn is None  # no h11 state was made for it
    assert chan.wants_continue is False  # the body is in: nothing to wait for (the shell asks only on NEED_DATA)


def test_remembered_heads_are_bounded() -> None:
    chan = ServerChannel()
    for i in range(20):
        head = HEAD + f"X-N: {i}\r\nContent-Length: 1\r\n\r\n".encode()
        chan.feed(head + b"x")
        assert isinstance(chan.next_request(), HTTPRequest)
        chan.respond(HTTPResponse(200))
    assert len(chan._heads) <= 4


# --- the client side (both of openmi's clients read responses through this) ----------------------------
def client(max_body: int = 1000) -> ClientChannel:
    chan = ClientChannel("host:5985", max_body)
    out = chan.request("POST", "/wsman", {"Content-Type": "application/soap+xml", "Content-Length": "999"}, b"abc")
    assert out.startswith(b"POST /wsman HTTP/1.1\r\nHost: host:5985\r\n")
    assert out.endswith(b"Content-Length: 3\r\n\r\nabc") and out.count(b"Content-Length") == 1
    return chan


def test_client_content_length_and_keep_alive() -> None:
    chan = client()
    chan.feed(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nContent-Length: 5\r\n\r\nhel")
    assert chan.next_response() is NEED_DATA
    chan.feed(b"lo")
    assert chan.next_response() == (200, {"content-type": "application/soap+xml", "content-length": "5"}, b"hello")
    assert chan.reusable


def test_client_body_in_pieces_then_the_next_exchange() -> None:
    chan = client()
    data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    for i in range(len(data) - 1):
        chan.feed(data[i:i + 1])
        assert chan.next_response() is NEED_DATA and chan.started
    chan.feed(data[-1:])
    assert chan.next_response() == (200, {"content-length": "5"}, b"hello")
    assert chan.reusable and not chan.started
    chan.request("POST", "/wsman", {}, b"again")
    chan.feed(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    assert chan.next_response() == (204, {"content-length": "0", "connection": "close"}, b"")
    assert not chan.reusable
    with pytest.raises(RuntimeError):
        chan.request("POST", "/wsman", {}, b"")


def test_client_chunked() -> None:
    chan = client()
    chan.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n")
    reply = chan.next_response()
    assert reply != NEED_DATA and reply[2] == b"hello"  # type: ignore[index]
    assert chan.reusable


def test_client_response_without_content_length_runs_to_the_close() -> None:
    chan = client()
    chan.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhel")
    assert chan.next_response() is NEED_DATA  # not an empty body: the body ends when the server closes
    chan.feed(b"lo")
    assert chan.next_response() is NEED_DATA
    chan.feed(b"")
    assert chan.next_response() == (200, {"content-type": "text/plain"}, b"hello")
    assert not chan.reusable


def test_client_refuses_a_declared_body_over_its_limit() -> None:
    chan = client(max_body=1000)
    chan.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n")
    with pytest.raises(BadResponse, match="1001"):
        chan.next_response()
    chan = client(max_body=1000)
    chan.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n")
    with pytest.raises(BadResponse):
        chan.next_response()


def test_client_refuses_an_unbounded_body_over_its_limit() -> None:
    chan = client(max_body=1000)
    chan.feed(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 600)
    assert chan.next_response() is NEED_DATA
    chan.feed(b"x" * 600)
    with pytest.raises(BadResponse, match="limit"):
        chan.next_response()


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
    b"SMTP ready\r\n\r\n",
])
def test_client_refuses_malformed_responses(data: bytes) -> None:
    chan = client()
    chan.feed(data)
    with pytest.raises(BadResponse, match="malformed"):
        chan.next_response()


def test_client_close_before_any_answer_is_a_reset_and_a_truncated_body_is_not() -> None:
    chan = client()
    chan.feed(b"")
    with pytest.raises(ConnectionResetError):  # a dead kept-alive connection: idempotent requests retry
        chan.next_response()
    chan = client()
    chan.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert chan.next_response() is NEED_DATA
    chan.feed(b"")
    with pytest.raises(BadResponse):
        chan.next_response()


def test_client_skips_100_continue_and_reads_connection_close() -> None:
    chan = client()
    chan.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n"
              b"Content-Length: 0\r\n\r\n")
    reply = chan.next_response()
    assert reply != NEED_DATA and reply[0] == 500  # type: ignore[index]
    assert not chan.reusable


def test_client_never_splits_a_header() -> None:
    chan = ClientChannel("host:5985", 1000)
    for bad in ({"X": "a\r\nInjected: yes"}, {"X": "a\nb"}, {"X\r\nY": "a"}, {"X": "a\x00"}):
        with pytest.raises(ValueError, match="line break"):
            chan.request("POST", "/wsman", bad, b"")


def test_server_never_splits_a_header() -> None:
    chan = ServerChannel()
    chan.feed(HEAD + b"Content-Length: 0\r\n\r\n")
    assert isinstance(chan.next_request(), HTTPRequest)
    with pytest.raises(ValueError, match="line break"):
        chan.respond(HTTPResponse(200, b"", [("WWW-Authenticate", "Basic\r\nSet-Cookie: x")]))


def test_tunnel_through_a_proxy() -> None:
    data, state = tunnel_request("server", 5986)
    assert data.startswith(b"CONNECT server:5986 HTTP/1.1\r\n")
    assert tunnel_answer(state, b"HTTP/1.1 200 Connection") is None
    assert tunnel_answer(state, b" established\r\n\r\n") == (200, "Connection established", b"")
    data, state = tunnel_request("server", 5986)
    status, reason, _ = tunnel_answer(state, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n") or (0, "", b"")
    assert (status, reason) == (403, "Forbidden")

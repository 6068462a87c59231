"""HTTP/1.1 framing as data, for both sides: bytes in, whole requests or responses out (h11 underneath).

No sockets here. The server's :class:`ServerChannel` and the clients' :class:`ClientChannel` each hold
h11 state for one TCP connection; the I/O shells (wsman_server/http.py, client/wire.py) only move bytes
and keep time. Every framing rule — Content-Length, chunked bodies, keep-alive, pipelining, size limits,
malformed heads — is decided here and tested with plain bytes (tests/protocol/test_http_framing.py).

h11 parses every message that comes in: that is the untrusted side, where framing bugs become attacks.
What goes out — a response the server made, a request the client made, each with a body of known length
and headers from our own code — is written by a few lines here (header values checked for line breaks),
because h11's writer and its per-event bookkeeping cost more than the whole of the rest of the framing on
every request (bench/bench_server.py measures the server's CPU per request).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import h11

REASONS: Final = {
    100: "Continue", 200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
    415: "Unsupported Media Type", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported"}

NEED_DATA: Final = h11.NEED_DATA  # "feed me more bytes"
CLOSED: Final = h11.ConnectionClosed  # the peer closed between messages (a clean end)
_END: Final = h11.EndOfMessage()



@dataclass(slots=True)
class HTTPRequest:
    method: str
    path: str
    version: str
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes
    peer: str = ""
    secure: bool = False


@dataclass(slots=True)
class HTTPResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False


class BadRequest(Exception):
    """A request the server must refuse with ``status`` (and then close the connection)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BadResponse(Exception):
    """A response a client cannot use: malformed, or larger than its limit."""


def _headers_dict(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        prev = out.get(key)
        out[key] = text if prev is None else f"{prev}, {text}"
    return out


def error_response(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> bytes:
    """The bytes of a plain-text refusal that closes the connection (written by hand: it must work even
    when the request was too broken for h11 to answer it)."""
    body = message.encode("utf-8", "replace")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers or ())
    return (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\nServer: openmi\r\nContent-Type: text/plain\r\n"
            f"{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1") + body


class ServerChannel:
    """One server-side connection: feed it bytes, take whole requests, hand it responses to frame.

    h11 reads every request head and every chunked body, and decides how a body is framed; a body of a
    given Content-Length is then just that many bytes, counted here (h11 would spend two more events
    on it). A response is written by :meth:`respond` from parts the server made itself.

    A client on a kept-alive connection sends the same head again and again, but for the digits of
    Content-Length. The channel remembers what h11 made of a few heads, keyed by the head's bytes with
    those digits cut out: a head equal to one h11 accepted in every byte but a valid Content-Length is
    the same request with another length, and costs a dictionary lookup instead of h11's parse
    (bench/bench_server.py: the server's CPU per request). The memory is per connection and small.
    """

    __slots__ = ("_answering", "_body", "_buf", "_conn", "_continued", "_eof", "_expect", "_headers", "_heads",
                 "_keep", "_key", "_left", "_length", "_max_body", "_max_head", "_parts", "_request", "_reusable",
                 "_size")

    def __init__(self, max_header_bytes: int = 64 * 1024, max_body_bytes: int = 1024 * 1024) -> None:
        self._max_head = max_header_bytes
        self._max_body = max_body_bytes
        self._buf = bytearray()  # a head arriving, before h11 or the memory of heads has read it
        self._conn: h11.Connection | None = None  # h11, once it reads this request
        self._key: bytes | None = None  # the head h11 is reading, as remembered (see _head_key)
        self._heads: dict[bytes, _Head] = {}
        self._request: _Head | None = None  # the request being read
        self._headers: dict[str, str] = {}
        self._length: int | None = None  # its Content-Length, while the body is counted here
        self._body = bytearray()  # (counted body) what has arrived
        self._eof = False  # the peer closed
        self._parts: list[bytes] = []  # (chunked body) the chunks so far
        self._size = 0
        self._expect = False  # the client waits for 100 Continue before its body
        self._continued = False
        self._keep = True  # the request in hand allows the connection to go on
        self._answering = False  # a request was handed out and awaits respond()
        self._left: tuple[bytes, bool] = (b"", False)  # the bytes after that request, and whether EOF followed
        self._reusable = True

    def feed(self, data: bytes) -> None:
        """Bytes read from the peer; ``b""`` means it closed its side."""
        if not data:
            self._eof = True
        if self._length is not None:
            self._body += data
        elif self._conn is not None:
            self._conn.receive_data(data)
        else:
            self._buf += data

    @property
    def pending(self) -> bool:
        """Bytes of a next request are already buffered (a pipelined request, or a partial one)."""
        return (self._request is not None or bool(self._buf)
                or (self._conn is not None and bool(self._conn.trailing_data[0])))

    @property
    def wants_continue(self) -> bool:
        """The client sent ``Expect: 100-continue`` and waits for the interim answer before its body."""
        return self._expect and not self._continued

    def continue_bytes(self) -> bytes:
        self._continued = True
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    def next_request(self) -> HTTPRequest | type[h11.NEED_DATA] | type[h11.ConnectionClosed]:
        """A whole request, :data:`NEED_DATA`, or :data:`CLOSED`; raises :class:`BadRequest`. Call it
        again only after :meth:`respond` has answered the request it returned."""
        if self._answering:
            raise RuntimeError("answer the request before reading the next one")
        if self._length is not None:
            return self._counted()
        if self._conn is None:
            early = self._head()
            if early is not None:
                return early
        conn = self._conn
        assert conn is not None
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise BadRequest(exc.error_status_hint, f"malformed request: {exc}") from None
            except ValueError:  # not an h11 rule, but still the client's bytes (a number int() refuses)
                raise BadRequest(400, "malformed request") from None
            kind = type(event)
            if kind is h11.Request:
                self._start(event)  # type: ignore[arg-type]
                if self._length is not None:  # the body is counted from here on
                    left, _ = conn.trailing_data
                    self._body = bytearray(left)
                    return self._counted()
            elif kind is h11.Data:
                data = event.data  # type: ignore[union-attr]
                self._size += len(data)
                if self._size > self._max_body:
                    raise BadRequest(413, f"the body exceeds the limit of {self._max_body} bytes")
                self._parts.append(data)
            elif kind is h11.EndOfMessage:
                body = b"".join(self._parts)
                self._parts = []
                self._size = 0
                left, _ = conn.trailing_data
                return self._complete(body, left)
            elif event is h11.NEED_DATA:
                if self._request is not None:
                    self._check_chunk()
                return h11.NEED_DATA
            elif kind is h11.ConnectionClosed:
                return CLOSED
            else:  # PAUSED: a protocol switch proposed (Upgrade); we answer it like any request
                raise BadRequest(400, "protocol switches are not supported")

    def _head(self) -> HTTPRequest | type[h11.NEED_DATA] | type[h11.ConnectionClosed] | None:
        """Read a head from the buffer by memory, or hand the buffer to h11 (None)."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if self._eof:
                if not buf:
                    return CLOSED
            elif len(buf) <= self._max_head and buf.find(b"\n\n") < 0:
                return h11.NEED_DATA
            blank = _BLANK_LINE.search(buf)
            if blank is not None and _folded(buf[:blank.end()]):
                raise BadRequest(400, "malformed request: obsolete line folding")
        else:
            head = bytes(buf[:end + 4])
            if _folded(head):
                raise BadRequest(400, "malformed request: obsolete line folding")
            cut = _head_key(head)
            if cut is not None:
                key, digits = cut
                known = self._heads.get(key)
                if known is not None and len(head) <= self._max_head:
                    length = int(digits)
                    if length > self._max_body:
                        raise BadRequest(413, f"the body ({length} bytes) exceeds the limit of {self._max_body}")
                    headers = dict(known.headers)
                    headers["content-length"] = digits.decode("ascii")
                    self._request = known
                    self._headers = headers
                    self._keep = known.keep
                    self._expect = known.expect
                    self._length = length
                    self._body = bytearray(buf[end + 4:])
                    self._buf = bytearray()
                    return self._counted()
                self._key = key
        conn = self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self._max_head)
        conn.receive_data(bytes(buf))
        if self._eof:
            conn.receive_data(b"")
        self._buf = bytearray()
        return None

    def _counted(self) -> HTTPRequest | type[h11.NEED_DATA]:
        n = self._length
        assert n is not None
        buf = self._body
        if len(buf) < n:
            if self._eof:
                raise BadRequest(400, "the connection closed in the middle of a request")
            return h11.NEED_DATA
        body, left = bytes(buf[:n]), bytes(buf[n:])
        self._body = bytearray()
        self._length = None
        return self._complete(body, left)

    def _complete(self, body: bytes, left: bytes) -> HTTPRequest:
        req = self._request
        assert req is not None
        self._request = None
        self._expect = False
        self._left = (left, self._eof)
        self._answering = True
        return HTTPRequest(req.method, req.target, req.version, self._headers, body)

    def _check_chunk(self) -> None:
        """Refuse a chunk whose declared size alone passes the limit, before waiting for its bytes.
        h11 keeps the size of the chunk being read in its reader and has no public word for it."""
        assert self._conn is not None
        left = getattr(self._conn._reader, "_bytes_in_chunk", 0)
        if isinstance(left, int) and self._size + left > self._max_body:
            raise BadRequest(413, f"a chunk of the body passes the limit of {self._max_body} bytes")

    def _start(self, req: h11.Request) -> None:
        if req.http_version not in (b"1.1", b"1.0"):
            raise BadRequest(505, f"unsupported HTTP version {req.http_version.decode('latin-1')}")
        length = None
        chunked = False
        keep = req.http_version == b"1.1"  # HTTP/1.0 keep-alive is not offered (as h11)
        size = len(req.method) + len(req.target) + 12  # h11 bounds only a head that arrives in pieces
        headers: dict[str, str] = {}
        for raw, value in req.headers.raw_items():  # (iterating Headers itself is several times slower)
            size += len(raw) + len(value) + 4
            lname = raw.lower()
            if lname == b"content-length":
                length = int(value)  # h11 has checked: ASCII digits only, at most 20 of them, no disagreement
            elif lname == b"transfer-encoding":
                chunked = True  # h11 accepts "chunked" alone and answers 501 for the rest
            elif lname == b"connection" and b"close" in (t.strip() for t in value.lower().split(b",")):
                keep = False
            key = lname.decode("latin-1")
            text = value.decode("latin-1")
            prev = headers.get(key)
            headers[key] = text if prev is None else f"{prev}, {text}"
        if size > self._max_head:
            raise BadRequest(431, f"the request head passes the limit of {self._max_head} bytes")
        if length is not None and length > self._max_body:
            raise BadRequest(413, f"the body ({length} bytes) exceeds the limit of {self._max_body}")
        if length is None and not chunked and req.method in (b"POST", b"PUT"):
            raise BadRequest(411, "a POST needs Content-Length or chunked encoding")
        head = _Head(req.method.decode("ascii"), req.target.decode("latin-1"),
                     "HTTP/" + req.http_version.decode("ascii"), headers, keep,
                     self._conn is not None and self._conn.they_are_waiting_for_100_continue)
        self._request = head
        self._headers = headers
        self._keep = keep
        self._expect = head.expect
        if not chunked:  # h11 frames a body by Transfer-Encoding first, then Content-Length, else none
            self._length = length or 0
            if (self._key is not None and length is not None and len(self._heads) < _REMEMBERED_HEADS
                    and len(self._key) <= _REMEMBERED_HEAD_BYTES):
                self._heads[self._key] = head
        self._key = None

    def respond(self, response: HTTPResponse) -> bytes:
        """The bytes of ``response`` to the request :meth:`next_request` returned; afterwards
        :attr:`reusable` says whether the connection goes on."""
        if not self._answering:
            raise RuntimeError("no whole request to answer")
        self._answering = False
        close = response.close or not self._keep
        fields = "".join(f"{k}: {v}\r\n" for k, v in response.headers)
        n = len(response.headers)
        if fields.count("\n") != n or fields.count("\r") != n or "\0" in fields:  # never split a header
            raise ValueError(f"a response header holds a line break or NUL: {response.headers!r}")
        ending = "Connection: close\r\n\r\n" if close else "\r\n"
        head = (f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}\r\nServer: openmi\r\n"
                f"{fields}Content-Length: {len(response.body)}\r\n{ending}")
        self._reusable = not close
        if not close:  # the next request starts from the bytes left over
            left, self._eof = self._left
            self._left = (b"", False)
            self._buf = bytearray(left)
            self._conn = None
            self._continued = False
        return head.encode("latin-1") + response.body

    @property
    def reusable(self) -> bool:
        """The last exchange left the connection open for another request."""
        return self._reusable


_REMEMBERED_HEADS: Final = 4  # per connection: a client alternates between a few kinds of request
_REMEMBERED_HEAD_BYTES: Final = 8192


@dataclass(slots=True, frozen=True)
class _Head:
    """What h11 made of a request head (Content-Length aside)."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    keep: bool
    expect: bool


def _head_key(head: bytes) -> tuple[bytes, bytes] | None:
    """The head with its Content-Length value cut out, and that value's digits; None unless the head has
    one Content-Length line, a valid value, and ends where h11 sees it end (its first empty line)."""
    low = head.lower()
    at = low.find(b"\r\ncontent-length:")
    if at < 0 or low.find(b"\r\ncontent-length:", at + 1) >= 0:
        return None
    if head.find(b"\n\n") >= 0 or head.find(b"\n\r\n") != len(head) - 3:
        return None  # h11 ends a head at LF LF or LF CR LF: make sure that is this head's end
    start = at + 17
    end = head.find(b"\r\n", start)
    digits = head[start:end].strip(b" \t")
    if not _DIGITS.fullmatch(digits):
        return None
    return head[:start] + head[end:], digits


_DIGITS: Final = re.compile(rb"[0-9]{1,20}")  # as h11 checks a Content-Length
_BLANK_LINE: Final = re.compile(rb"\n\r?\n")  # where h11 ends a head


def _folded(head: bytes | bytearray) -> bool:
    """An obsolete line fold (a header line continued on a line that starts with a space or tab). h11
    would join it to the line before; RFC 9112 §5.2 lets a server refuse it instead, and we do: a header
    that means one thing to us and another to a proxy in front is how requests are smuggled."""
    return head.find(b"\n ") >= 0 or head.find(b"\n\t") >= 0


class ClientChannel:
    """One client-side connection: frame requests, feed it bytes, take whole responses.

    h11 reads each response head and every chunked or close-delimited body; a body of a given
    Content-Length is counted here. A response without Content-Length or chunked encoding runs to the
    end of the connection (RFC 9112 §6.3), and no response may declare or carry more than
    ``max_body_bytes``.
    """

    __slots__ = ("_body", "_conn", "_eof", "_host", "_host_text", "_keep", "_left", "_length", "_max_body",
                 "_max_head", "_parts", "_response", "_sent", "_size")

    def __init__(self, host: str, max_body_bytes: int, max_header_bytes: int = 64 * 1024) -> None:
        self._max_head = max_header_bytes
        self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_header_bytes)
        self._host = host.encode("ascii")  # the Host header: an IDNA name or an address, and a port
        self._host_text = self._host.decode("ascii")
        self._sent: dict[tuple[str, str], h11.Request] = {}
        self._max_body = max_body_bytes
        self._response: h11.Response | None = None  # the response being read
        self._length: int | None = None  # its Content-Length, while the body is counted here
        self._body = bytearray()
        self._parts: list[bytes] = []
        self._size = 0
        self._eof = False
        self._keep = True
        self._left = b""  # bytes that came after the last response

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        """The bytes of one request (Host and Content-Length added; a caller's Content-Length is ignored)."""
        if not self.reusable:
            raise RuntimeError("the connection cannot carry another request")
        items = [(k, v) for k, v in headers.items() if k.lower() not in ("content-length", "host")]
        fields = "".join(f"{k}: {v}\r\n" for k, v in items)
        n = len(items)
        if fields.count("\n") != n or fields.count("\r") != n or "\0" in fields:  # never split a header
            raise ValueError(f"a request header holds a line break or NUL: {headers!r}")
        # a fresh h11 state per exchange; it only needs to know a request of this method went out to
        # read the answer (HEAD and CONNECT answers are framed differently): one event, made once
        event = self._sent.get((method, target))
        if event is None:
            event = self._sent[(method, target)] = h11.Request(
                method=method, target=target, headers=[(b"Host", self._host), (b"Content-Length", b"0")])
        conn = self._conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=self._max_head)
        conn.send(event)
        conn.send(_END)
        if self._left:
            conn.receive_data(self._left)
            self._left = b""
        return (f"{method} {target} HTTP/1.1\r\nHost: {self._host_text}\r\n{fields}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body

    def feed(self, data: bytes) -> None:
        if not data:
            self._eof = True
        if self._length is None:
            self._conn.receive_data(data)
        else:
            self._body += data

    @property
    def started(self) -> bool:
        """Some bytes of the response have arrived (a close before that means a dead kept-alive connection)."""
        return self._response is not None or bool(self._conn.trailing_data[0])

    def next_response(self) -> tuple[int, dict[str, str], bytes] | type[h11.NEED_DATA]:
        """(status, lower-case headers, body) or :data:`NEED_DATA`; raises :class:`BadResponse`, or
        ``ConnectionResetError`` when the server closed before answering at all."""
        if self._length is not None:
            return self._counted()
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                if self._eof and not self.started:
                    raise ConnectionResetError("the server closed the connection") from None
                raise BadResponse(f"malformed HTTP response: {exc}") from None
            except ValueError:
                raise BadResponse("malformed HTTP response") from None
            kind = type(event)
            if kind is h11.Response:
                self._start(event)  # type: ignore[arg-type]
                if self._length is not None:
                    left, _ = conn.trailing_data
                    self._body = bytearray(left)
                    return self._counted()
            elif kind is h11.Data:
                data = event.data  # type: ignore[union-attr]
                self._size += len(data)
                if self._size > self._max_body:
                    raise BadResponse(f"the response body exceeds the client's limit of {self._max_body} bytes")
                self._parts.append(data)
            elif kind is h11.EndOfMessage:
                body = b"".join(self._parts)
                self._parts = []
                self._size = 0
                self._keep = conn.our_state is h11.DONE and conn.their_state is h11.DONE
                self._left = conn.trailing_data[0]
                return self._complete(body)
            elif event is h11.NEED_DATA:
                return h11.NEED_DATA
            elif kind is h11.ConnectionClosed:
                if self._response is None:
                    raise ConnectionResetError("the server closed the connection")
                raise BadResponse("the connection closed in the middle of the response")
            # InformationalResponse (100 Continue) and PAUSED need nothing

    def _counted(self) -> tuple[int, dict[str, str], bytes] | type[h11.NEED_DATA]:
        n = self._length
        assert n is not None
        buf = self._body
        if len(buf) < n:
            if self._eof:
                raise BadResponse("the connection closed in the middle of the response")
            return h11.NEED_DATA
        body, self._left = bytes(buf[:n]), bytes(buf[n:])
        self._body = bytearray()
        self._length = None
        return self._complete(body)

    def _complete(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        resp = self._response
        assert resp is not None
        self._response = None
        return resp.status_code, _headers_dict(resp.headers.raw_items()), body

    def _start(self, resp: h11.Response) -> None:
        length = None
        chunked = False
        keep = resp.http_version == b"1.1"
        for name, value in resp.headers.raw_items():
            lname = name.lower()
            if lname == b"content-length":
                length = int(value)
                if length > self._max_body:
                    raise BadResponse(f"the response declares {length} bytes, over the client's limit "
                                      f"of {self._max_body}")
            elif lname == b"transfer-encoding":
                chunked = True
            elif lname == b"connection" and b"close" in (t.strip() for t in value.lower().split(b",")):
                keep = False
        self._response = resp
        # h11 frames: no body for 204 and 304, then Transfer-Encoding, then Content-Length, else to the close
        if length is not None and not chunked and resp.status_code not in (204, 304):
            self._length = length
            self._keep = keep

    @property
    def reusable(self) -> bool:
        """The last exchange left the connection open for another request."""
        return not self._eof and self._keep and self._response is None


def tunnel_request(host: str, port: int) -> tuple[bytes, h11.Connection]:
    """The CONNECT request that opens a tunnel through an HTTP proxy, and the h11 state that reads the
    proxy's answer (see :func:`tunnel_answer`)."""
    conn = h11.Connection(h11.CLIENT)
    target = f"{host}:{port}".encode("idna" if not host.isascii() else "ascii")
    data = conn.send(h11.Request(method="CONNECT", target=target, headers=[(b"Host", target)])) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    return data, conn


def tunnel_answer(conn: h11.Connection, data: bytes) -> tuple[int, str, bytes] | None:
    """Feed the proxy's bytes: None until its answer is complete, then (status, reason, bytes that
    already belong to the tunnel)."""
    conn.receive_data(data)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise BadResponse(f"the proxy sent a malformed answer: {exc}") from None
    if event is h11.NEED_DATA:
        if data == b"":
            raise ConnectionResetError("the proxy closed the connection")
        return None
    if isinstance(event, h11.Response):
        return event.status_code, event.reason.decode("latin-1"), conn.trailing_data[0]
    raise BadResponse(f"the proxy sent {type(event).__name__} instead of an answer")

"""A small HTTP/1.1 server for WS-Management: keep-alive, one thread per connection, TLS, limits.

It knows nothing of SOAP: each connection gets a handler object from a factory, and the handler turns
an :class:`HTTPRequest` into an :class:`HTTPResponse`. Each response is written with one ``sendall``
on a socket with TCP_NODELAY set, so a client with delayed ACKs never waits on a split write.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, cast

log = logging.getLogger("openmi.wsman_server")

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
           415: "Unsupported Media Type", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable", 505: "HTTP Version Not Supported"}


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


class ConnectionHandler(Protocol):
    def handle(self, request: HTTPRequest) -> HTTPResponse: ...

    def shutting_down(self, request: HTTPRequest) -> HTTPResponse: ...

    def closed(self) -> None: ...


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Limits:
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 1024 * 1024
    idle_timeout: float = 120.0  # between requests on a keep-alive connection
    read_timeout: float = 30.0  # for the rest of a request once it has started
    max_connections: int = 256


@dataclass
class Listener:
    host: str
    port: int
    tls: ssl.SSLContext | None = None
    sock: socket.socket | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/wsman"


class HTTPServer:
    """Serves the listeners until :meth:`shutdown`; ``start()`` returns once every port is bound."""

    def __init__(self, listeners: list[Listener], handler_factory: Callable[[str, bool], ConnectionHandler],
                 limits: Limits | None = None) -> None:
        self.listeners = listeners
        self.factory = handler_factory
        self.limits = limits or Limits()
        self._threads: list[threading.Thread] = []
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._busy: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)

    # --- lifetime ------------------------------------------------------------------------------
    def start(self) -> None:
        for lst in self.listeners:
            family = socket.AF_INET6 if ":" in lst.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((lst.host, lst.port))
            except OSError as exc:
                sock.close()
                raise OSError(exc.errno, f"cannot listen on {lst.host}:{lst.port}: {exc.strerror}") from None
            sock.listen(128)
            sock.settimeout(0.2)
            lst.port = sock.getsockname()[1]
            lst.sock = sock
        for lst in self.listeners:
            t = threading.Thread(target=self._accept_loop, args=(lst,), name=f"openmi-accept-{lst.port}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    @property
    def urls(self) -> list[str]:
        return [lst.url for lst in self.listeners]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish (up to ``timeout``), close every connection."""
        self._stopping.set()
        for t in self._threads:
            t.join(2)
        for lst in self.listeners:
            if lst.sock is not None:
                lst.sock.close()
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy and time.monotonic() < deadline:
                self._idle.wait(max(0.0, deadline - time.monotonic()))
            conns = list(self._conns.items())
        for sock, _ in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, t in conns:
            t.join(2)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # --- accepting --------------------------------------------------------------------------
    def _accept_loop(self, lst: Listener) -> None:
        assert lst.sock is not None
        while not self._stopping.is_set():
            try:
                conn, addr = lst.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.05)
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                too_many = len(self._conns) >= self.limits.max_connections
            if too_many:
                self._refuse(conn)
                continue
            t = threading.Thread(target=self._serve, args=(conn, addr, lst), name="openmi-conn", daemon=True)
            with self._lock:
                self._conns[conn] = t
            t.start()

    def _refuse(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall(_head(503, [("Retry-After", "1")], 0, close=True))
        except OSError:
            pass
        finally:
            conn.close()

    # --- one connection -----------------------------------------------------------------------
    def _serve(self, raw: socket.socket, addr: tuple[str, int] | tuple[str, int, int, int], lst: Listener) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        sock: socket.socket = raw
        handler: ConnectionHandler | None = None
        try:
            if lst.tls is not None:
                raw.settimeout(self.limits.read_timeout)
                try:
                    sock = lst.tls.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    log.info("TLS handshake with %s failed: %s", peer, exc)
                    return
                with self._lock:
                    self._conns[sock] = self._conns.pop(raw)
            handler = self.factory(peer, lst.tls is not None)
            rfile = cast(BinaryIO, sock.makefile("rb", buffering=65536))
            while True:
                sock.settimeout(self.limits.idle_timeout)
                try:
                    request = self._read_request(rfile, sock, peer, lst.tls is not None)
                except BadRequest as exc:
                    self._send(sock, HTTPResponse(exc.status, str(exc).encode(), [("Content-Type", "text/plain")],
                                                  close=True))
                    return
                except (TimeoutError, OSError, ValueError):
                    return
                if request is None:
                    return
                with self._lock:
                    self._busy.add(sock)
                try:
                    if self._stopping.is_set():
                        response = handler.shutting_down(request)
                        response.close = True
                    else:
                        try:
                            response = handler.handle(request)
                        except Exception:  # the handler's own bug must not kill the connection silently
                            log.exception("request from %s failed", peer)
                            response = HTTPResponse(500, b"internal error", [("Content-Type", "text/plain")],
                                                    close=True)
                    keep = not response.close and _keep_alive(request) and not self._stopping.is_set()
                    response.close = not keep
                    self._send(sock, response)
                finally:
                    with self._lock:
                        self._busy.discard(sock)
                        self._idle.notify_all()
                if not keep:
                    return
        finally:
            if handler is not None:
                try:
                    handler.closed()
                except Exception:
                    log.exception("closing the handler of %s failed", peer)
            with self._lock:
                self._conns.pop(sock, None)
                self._conns.pop(raw, None)
            try:
                sock.close()
            except OSError:
                pass

    def _read_request(self, rfile: BinaryIO, sock: socket.socket, peer: str, secure: bool) -> HTTPRequest | None:
        limits = self.limits
        line = rfile.readline(limits.max_header_bytes + 1)
        while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between requests (RFC 9112 §2.2)
            line = rfile.readline(limits.max_header_bytes + 1)
        if not line:
            return None
        sock.settimeout(limits.read_timeout)
        if len(line) > limits.max_header_bytes or not line.endswith(b"\n"):
            raise BadRequest(431, "request line too long")
        try:
            method, target, version = line.decode("latin-1").rstrip("\r\n").split(" ")
        except ValueError:
            raise BadRequest(400, "malformed request line") from None
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise BadRequest(505, f"unsupported HTTP version {version!r}")
        headers: dict[str, str] = {}
        total = len(line)
        while True:
            h = rfile.readline(limits.max_header_bytes + 1)
            total += len(h)
            if total > limits.max_header_bytes:
                raise BadRequest(431, "request headers too large")
            if h in (b"\r\n", b"\n"):
                break
            if not h:
                return None
            name, sep, value = h.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest(400, "malformed header line")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        te = headers.get("transfer-encoding", "").lower()
        if te:
            if te != "chunked":
                raise BadRequest(501, f"transfer encoding {te!r} is not supported")
            body = self._read_chunked(rfile)
        else:
            length_text = headers.get("content-length")
            if length_text is None:
                if method in ("POST", "PUT"):
                    raise BadRequest(411, "a POST needs Content-Length or chunked encoding")
                length = 0
            else:
                if not length_text.isdigit():
                    raise BadRequest(400, "bad Content-Length")
                length = int(length_text)
            if length > limits.max_body_bytes:
                raise BadRequest(413, f"the body ({length} bytes) exceeds the limit of {limits.max_body_bytes}")
            if headers.get("expect", "").lower() == "100-continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = rfile.read(length) if length else b""
            if len(body) != length:
                return None
        return HTTPRequest(method, target, version, headers, body, peer, secure)

    def _read_chunked(self, rfile: BinaryIO) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            token = rfile.readline(1024).split(b";")[0].strip()
            if not _CHUNK_SIZE.fullmatch(token):  # hex digits only: no sign, no prefix, no underscores
                raise BadRequest(400, "bad chunk size")
            n = int(token, 16)
            if n == 0:
                for _ in range(64):  # trailer lines, bounded
                    if rfile.readline(1024) in (b"\r\n", b"\n", b""):
                        return b"".join(parts)
                raise BadRequest(431, "too many trailer lines")
            size += n
            if size > self.limits.max_body_bytes:
                raise BadRequest(413, f"the body exceeds the limit of {self.limits.max_body_bytes} bytes")
            chunk = rfile.read(n)
            if len(chunk) != n or rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest(400, "truncated or malformed chunk")
            parts.append(chunk)

    @staticmethod
    def _send(sock: socket.socket, response: HTTPResponse) -> None:
        data = _head(response.status, response.headers, len(response.body), response.close) + response.body
        sock.sendall(data)


def _keep_alive(request: HTTPRequest) -> bool:
    conn = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in conn
    return "close" not in conn


def _head(status: int, headers: list[tuple[str, str]], length: int, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", "Server: openmi"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

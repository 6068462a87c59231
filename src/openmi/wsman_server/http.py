"""A small HTTP/1.1 server for WS-Management: keep-alive, one thread per connection, TLS, limits.

It knows nothing of SOAP: each connection gets a handler object from a factory, and the handler turns
an :class:`HTTPRequest` into an :class:`HTTPResponse`. Framing is ../protocol/http.py's (h11, no I/O);
this module moves bytes and keeps time. Each response is written with one ``sendall`` on a socket with
TCP_NODELAY set, so a client with delayed ACKs never waits on a split write.

Slow clients cannot hold the server (issue 16, Slowloris): a request must arrive whole — head and body —
within ``request_timeout`` of its first byte, however slowly it trickles; a kept-alive connection may
sit idle ``idle_timeout`` between requests; one client address holds at most
``max_connections_per_address`` anonymous connections (not yet authenticated); and
``reserved_connections`` of the slots are only for connections that have carried an authenticated
request. Past either bound a new connection takes the place of the oldest anonymous one not being
served (of its own address, for the per-address bound), so a valid client always gets in, and once
authenticated it is never displaced (see :meth:`HTTPServer._admit`).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..protocol.http import CLOSED, BadRequest, HTTPRequest, HTTPResponse, ServerChannel, error_response

__all__ = ["BadRequest", "ConnectionHandler", "HTTPRequest", "HTTPResponse", "HTTPServer", "Limits", "Listener"]

log = logging.getLogger("openmi.wsman_server")


class ConnectionHandler(Protocol):
    """One connection's request handler. It may carry ``authenticated = True`` once a request on its
    connection passed authentication: the connection then holds a reserved slot and is never displaced."""

    def handle(self, request: HTTPRequest) -> HTTPResponse: ...

    def shutting_down(self, request: HTTPRequest) -> HTTPResponse: ...

    def closed(self) -> None: ...


@dataclass
class Limits:
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 1024 * 1024
    idle_timeout: float = 120.0  # between requests on a keep-alive connection
    request_timeout: float = 30.0  # for a whole request (head and body) from its first byte; the TLS handshake too
    max_connections: int = 256
    max_connections_per_address: int = 64  # anonymous connections one client address may hold
    reserved_connections: int = 32  # of max_connections: only for connections that have authenticated


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


# A connection is displaced only once it has sat for this long sending nothing, or sending one request,
# or idle after an answer: a valid client's fresh connection, or its request read by a busy server, must
# not lose its slot to a flood in the moment before the request is parsed.
FRESH_GRACE = 2.0


class _Slot:
    """One accepted connection, as the accounting of slots sees it."""

    __slots__ = ("busy", "evicted", "host", "since", "sock", "started", "trusted", "used")

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock = sock
        self.host = host
        self.trusted = False  # has carried an authenticated request
        self.busy = False  # a request is being handled or answered
        self.evicted = False
        self.since = time.monotonic()  # accepted, or last answered
        self.started: float | None = None  # the first byte of a request still incomplete arrived then
        self.used = False  # has been answered at least once

    def displace_rank(self) -> tuple[int, float]:
        """Which anonymous connection goes first when a slot is needed: one that has been sending a
        request for longest (Slowloris), then one idle longest after an answer, then one that has sent
        nothing yet, oldest first."""
        started = self.started
        if started is not None:
            return 0, started
        return (1 if self.used else 2), self.since

    def displaceable(self, now: float) -> bool:
        """Anonymous, not being served, and in its present state — sending nothing, sending a request,
        idle after an answer — for more than FRESH_GRACE seconds."""
        started = self.started
        return (not self.trusted and not self.busy and not self.evicted
                and now - (self.since if started is None else started) > FRESH_GRACE)


class HTTPServer:
    """Serves the listeners until :meth:`shutdown`; ``start()`` returns once every port is bound."""

    def __init__(self, listeners: list[Listener], handler_factory: Callable[[str, bool], ConnectionHandler],
                 limits: Limits | None = None) -> None:
        self.listeners = listeners
        self.factory = handler_factory
        self.limits = limits or Limits()
        self._threads: list[threading.Thread] = []
        self._slots: dict[_Slot, threading.Thread] = {}  # insertion order: oldest first
        self._per_host: dict[str, int] = {}  # anonymous connections per client address
        self._anonymous = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._idle = threading.Condition(self._lock)

    # --- lifetime ------------------------------------------------------------------------------
    def start(self) -> None:
        for lst in self.listeners:
            if lst.sock is not None:  # bound already, shared by several worker processes (workers.py)
                lst.sock.settimeout(0.2)
                continue
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
            while any(slot.busy for slot in self._slots) and time.monotonic() < deadline:
                self._idle.wait(max(0.0, deadline - time.monotonic()))
            conns = list(self._slots.items())
        for slot, _ in conns:
            _hang_up(slot.sock)
        for _, t in conns:
            t.join(2)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def connection_counts(self) -> tuple[int, int]:
        """(connections held, of which anonymous): for tests and monitoring."""
        with self._lock:
            return len(self._slots), self._anonymous

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
            slot = _Slot(conn, addr[0])
            admitted, victim = self._admit(slot)
            if victim is not None:
                _hang_up(victim.sock)  # its thread sees the connection end and leaves
            if not admitted:
                self._refuse(conn)
                continue
            t = threading.Thread(target=self._serve, args=(slot, addr, lst), name="openmi-conn", daemon=True)
            with self._lock:
                self._slots[slot] = t
            t.start()

    def _admit(self, slot: _Slot) -> tuple[bool, _Slot | None]:
        """Count a new connection in; (admitted, the connection it displaced).

        A new connection is anonymous. When its address already holds ``max_connections_per_address``
        anonymous connections, it takes the place of one of them that only holds its slot (see
        :meth:`_Slot.displaceable`, :meth:`_Slot.displace_rank`). When the anonymous slots (or all
        slots) are taken, it takes the place of such a connection of any address, and is refused (503)
        when there is none. Connections that only hold a slot — slow, trickling or idle — are what the
        bounds are for: a flood of them from one address keeps a bounded share and renews only its own,
        and a valid client, even one behind the same address, gets in.
        """
        lim = self.limits
        with self._lock:
            victim = None
            if self._per_host.get(slot.host, 0) >= lim.max_connections_per_address:
                victim = self._oldest_idle(slot.host)  # (all busy: only the server-wide bounds apply)
            if victim is None and (self._anonymous >= lim.max_connections - lim.reserved_connections
                                   or len(self._slots) >= lim.max_connections):
                victim = self._oldest_idle(None)
                if victim is None:
                    return False, None
            if victim is not None:
                self._forget(victim)
                victim.evicted = True
            self._slots[slot] = threading.current_thread()  # replaced by the connection's thread
            self._per_host[slot.host] = self._per_host.get(slot.host, 0) + 1
            self._anonymous += 1
            return True, victim

    def _oldest_idle(self, host: str | None) -> _Slot | None:
        """The anonymous connection (of ``host``, if given) not being served that goes first (see
        :meth:`_Slot.displace_rank`), or None (the lock is held)."""
        now = time.monotonic()
        candidates = (s for s in self._slots if s.displaceable(now) and (host is None or s.host == host))
        return min(candidates, key=_Slot.displace_rank, default=None)

    def _trust(self, slot: _Slot, trusted: bool) -> None:
        """A connection authenticated, or stopped being (the lock is held): anonymous counts follow."""
        if slot.trusted is trusted:
            return
        if not slot.evicted and slot in self._slots:
            step = -1 if trusted else 1
            self._anonymous += step
            n = self._per_host.get(slot.host, 0) + step
            if n > 0:
                self._per_host[slot.host] = n
            else:
                self._per_host.pop(slot.host, None)
        slot.trusted = trusted

    def _forget(self, slot: _Slot) -> None:
        """Drop a connection from the accounting (the lock is held)."""
        if self._slots.pop(slot, None) is None or slot.trusted:
            return
        n = self._per_host.get(slot.host, 0) - 1
        if n > 0:
            self._per_host[slot.host] = n
        else:
            self._per_host.pop(slot.host, None)
        self._anonymous -= 1

    def _refuse(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall(error_response(503, "too many connections", [("Retry-After", "1")]))
        except OSError:
            pass
        finally:
            conn.close()

    # --- one connection -----------------------------------------------------------------------
    def _serve(self, slot: _Slot, addr: tuple[str, int] | tuple[str, int, int, int], lst: Listener) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        raw = sock = slot.sock
        lim = self.limits
        handler: ConnectionHandler | None = None
        try:
            if lst.tls is not None:
                raw.settimeout(lim.request_timeout)
                try:
                    sock = lst.tls.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    log.info("TLS handshake with %s failed: %s", peer, exc)
                    return
                with self._lock:
                    slot.sock = sock
                if slot.evicted:
                    return
            handler = self.factory(peer, lst.tls is not None)
            chan = ServerChannel(lim.max_header_bytes, lim.max_body_bytes)
            secure = lst.tls is not None
            while True:
                request = self._read_request(sock, chan, slot)
                if request is None:
                    return
                request.peer = peer
                request.secure = secure
                with self._lock:
                    if slot.evicted:
                        return
                    slot.busy = True
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
                        if self._stopping.is_set():
                            response.close = True
                    trusted = bool(getattr(handler, "authenticated", False))
                    if trusted is not slot.trusted:  # authenticated now, or no longer (a removed user)
                        with self._lock:
                            self._trust(slot, trusted)
                    sock.settimeout(lim.request_timeout)
                    sock.sendall(chan.respond(response))
                finally:
                    with self._lock:
                        slot.busy = False
                        slot.used = True
                        slot.since = time.monotonic()
                        self._idle.notify_all()
                if not chan.reusable:
                    return
        except OSError:
            return  # the peer went away, or the connection was displaced or shut down
        finally:
            if handler is not None:
                try:
                    handler.closed()
                except Exception:
                    log.exception("closing the handler of %s failed", peer)
            with self._lock:
                self._forget(slot)
            try:
                sock.close()
            except OSError:
                pass

    def _read_request(self, sock: socket.socket, chan: ServerChannel, slot: _Slot) -> HTTPRequest | None:
        """The next whole request, or None when the connection should end (closed, idle too long, too
        slow, or refused with an error response already written)."""
        lim = self.limits
        now = time.monotonic()
        # a request's clock starts with its first byte; bytes already buffered (pipelining) start it now
        ready = chan.pending
        deadline = now + lim.request_timeout if ready else None
        slot.started = now if ready else None
        idle_until = now + lim.idle_timeout
        while True:
            if ready:  # (asking h11 about an empty buffer costs a parse attempt: skip it)
                try:
                    result = chan.next_request()
                except BadRequest as exc:
                    _reply_and_close(sock, exc.status, str(exc))
                    return None
                if isinstance(result, HTTPRequest):
                    slot.started = None
                    return result
                if result is CLOSED:
                    return None
                if chan.wants_continue:
                    sock.settimeout(lim.request_timeout)
                    sock.sendall(chan.continue_bytes())
            left = (idle_until if deadline is None else deadline) - time.monotonic()
            if left <= 0:
                if deadline is not None:
                    _reply_and_close(sock, 408, "the request did not arrive in time")
                return None
            sock.settimeout(left)  # a deadline, not a per-recv timeout: trickling bytes do not extend it
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if deadline is not None:
                    _reply_and_close(sock, 408, "the request did not arrive in time")
                return None
            if deadline is None and data:
                slot.started = time.monotonic()
                deadline = slot.started + lim.request_timeout
            chan.feed(data)
            ready = True


def _reply_and_close(sock: socket.socket, status: int, message: str) -> None:
    try:
        sock.settimeout(1.0)
        sock.sendall(error_response(status, message))
    except OSError:
        pass


def _hang_up(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass

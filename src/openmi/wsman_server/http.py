"""A small HTTP/1.1 server for WS-Management: keep-alive, one event loop, TLS, limits.

It knows nothing of SOAP: each connection gets a handler object from a factory, and the handler turns
an :class:`HTTPRequest` into an :class:`HTTPResponse`. Framing is ../protocol/http.py's (h11, no I/O);
this module moves bytes and keeps time.

**One loop, no thread per connection.** One thread — the *leader* — waits on every socket at once
(:mod:`selectors`: epoll on Linux), accepts, reads, frames, and runs each whole request's handler itself,
then writes the response with one ``send`` on a socket with TCP_NODELAY set (so a client with delayed
ACKs never waits on a split write). Idle and trickling connections cost no thread, and busy connections
do not contend for the GIL: one thread runs Python at a time anyway, and here it does so without a
thread switch per request.

**A slow request never stalls the others.** A watchdog looks at the leader every ``TICK`` seconds;
when one request (a slow provider, a Pull waiting for events, a password being hashed, a client reading
its answer slowly) has held it for more than ``SLOW`` seconds, the watchdog makes a new thread the
leader and takes that connection out of the loop. The old leader finishes the request, hands the
connection back to the loop, and ends. So a request costs a thread only while it is slow, and the
threads in use are bounded by the connections being served, as before — but the common, fast request
costs no thread switch at all.

Slow clients cannot hold the server (issue 16, Slowloris): a request must arrive whole — head and body —
within ``request_timeout`` of its first byte, however slowly it trickles (the TLS handshake too); a
kept-alive connection may sit idle ``idle_timeout`` between requests; one client address holds at most
``max_connections_per_address`` anonymous connections (not yet authenticated); and
``reserved_connections`` of the slots are only for connections that have carried an authenticated
request. Past either bound a new connection takes the place of the oldest anonymous one not being
served (of its own address, for the per-address bound), so a valid client always gets in, and once
authenticated it is never displaced (see :meth:`HTTPServer._admit`).
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..protocol.http import CLOSED, BadRequest, HTTPRequest, HTTPResponse, ServerChannel, error_response
from .quotas import ConnectionShares

__all__ = ["BadRequest", "ConnectionHandler", "HTTPRequest", "HTTPResponse", "HTTPServer", "Limits", "Listener"]

log = logging.getLogger("openmi.wsman_server")


class ConnectionHandler(Protocol):
    """One connection's request handler. It may carry ``authenticated = True`` once a request on its
    connection passed authentication: the connection then holds a reserved slot and is never displaced.
    Its methods are called by one thread at a time, not always the same one."""

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
    # connections one wake-up accepts before serving: 1 when several worker processes share the listening
    # sockets, so that each takes the connections that come while it is free (one would take a whole burst)
    accept_batch: int = 64
    # seconds the loop looks again for the next request before it sleeps, while requests come close together
    # (0: it sleeps at once); see HTTPServer._wait_ready
    busy_poll: float = 0.0001


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
TICK = 0.005  # how often the watchdog looks at the leader
SLOW = 0.01  # a request holding the leader longer than this gets a thread of its own
SWEEP = 0.25  # how often the leader looks for connections past their deadlines
DEFER = 0.002  # how long a worker holding more connections than another leaves new ones to the others
_WAKE = object()  # the selector key of the loop's wake-up socket


class _Slot:
    """One accepted connection: its socket, its framing and handler, and how the limits see it."""

    __slots__ = ("busy", "chan", "closed", "evicted", "handler", "handshaking", "host", "listener", "out", "peer",
                 "since", "sock", "started", "trusted", "used", "writing")

    def __init__(self, sock: socket.socket, host: str, peer: str, listener: Listener) -> None:
        self.sock = sock
        self.host = host
        self.peer = peer
        self.listener = listener
        self.chan: ServerChannel | None = None
        self.handler: ConnectionHandler | None = None
        self.handshaking = False  # (TLS) the handshake is under way
        self.writing = False  # (TLS handshake) waits until the socket can be written
        self.closed = False
        self.out = False  # taken out of the loop by the watchdog (a thread of its own serves it)
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
                 limits: Limits | None = None, balance: tuple[ConnectionShares, int, int] | None = None) -> None:
        """``balance``: (the shared counts, this worker's slot, how many workers) when worker processes share
        the listening sockets: a worker that holds more connections than another lets it take new ones."""
        self.listeners = listeners
        self._balance = balance
        self._paused_until: float | None = None  # not accepting until then: another worker holds fewer
        self._forced = False  # a pause ran out: the next connection is taken whoever holds fewer
        self.factory = handler_factory
        self.limits = limits or Limits()
        self._close_together = True  # the last pause between requests was short (see _wait_ready)
        self._slots: dict[_Slot, None] = {}  # insertion order: oldest first
        self._per_host: dict[str, int] = {}  # anonymous connections per client address
        self._anonymous = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # no new connections; new requests are told the server stops
        self._closing = False  # the loop ends
        self._idle = threading.Condition(self._lock)
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._returned: deque[_Slot] = deque()  # connections a former leader hands back to the loop
        # the leadership (under _lock): its generation, the connection the leader is serving, since when
        self._generation = 0
        self._current: _Slot | None = None
        self._span: float | None = None
        self._threads: set[threading.Thread] = set()  # leaders, former leaders finishing a request
        self._watchdog: threading.Thread | None = None
        if balance is not None:
            balance[0].set(balance[1], 0)  # (a restarted worker holds nothing yet)

    # --- lifetime ------------------------------------------------------------------------------
    def bind(self) -> None:
        """Bind and listen on every listener not bound yet (port 0 picks a free port); OSError naming the
        address when one cannot be. Connections wait in the backlog until :meth:`start`."""
        for lst in self.listeners:
            if lst.sock is not None:
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
            lst.port = sock.getsockname()[1]
            lst.sock = sock

    def start(self) -> None:
        self.bind()
        for lst in self.listeners:
            # (a socket bound already is shared by several worker processes, workers.py: each accepts
            # what it can, and the others see BlockingIOError)
            assert lst.sock is not None
            lst.sock.setblocking(False)
            self._sel.register(lst.sock, selectors.EVENT_READ, lst)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _WAKE)
        if not self._lead_in_new_thread(self._generation):
            raise RuntimeError("cannot start the HTTP loop's thread")
        self._watchdog = threading.Thread(target=self._watch, name="openmi-http-watchdog", daemon=True)
        self._watchdog.start()

    @property
    def urls(self) -> list[str]:
        return [lst.url for lst in self.listeners]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish (up to ``timeout``), close every connection."""
        self._stopping.set()
        self._wake()
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(slot.busy for slot in self._slots) and time.monotonic() < deadline:
                self._idle.wait(max(0.0, min(0.1, deadline - time.monotonic())))
            self._closing = True
        self._wake()
        if self._watchdog is not None:
            self._watchdog.join(2)
        for t in self._live_threads():
            if t is not threading.current_thread():
                t.join(2)
        # the loop has ended: what is still in the selector, or handed back to it, is closed here; a
        # connection a thread still holds (a request past the grace time) is hung up, and that thread closes it
        with self._lock:
            slots = list(self._slots)
            back = list(self._returned)
            self._returned.clear()
            current = self._current
        for slot in back:
            self._close(slot)
        for slot in slots:
            if slot.closed:
                continue
            if self._registered(slot) and slot is not current:
                self._close(slot)
            else:
                _hang_up(slot.sock)
        for t in self._live_threads():
            if t is not threading.current_thread():
                t.join(2)
        for lst in self.listeners:
            if lst.sock is not None:
                lst.sock.close()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def connection_counts(self) -> tuple[int, int]:
        """(connections held, of which anonymous): for tests and monitoring."""
        with self._lock:
            return len(self._slots), self._anonymous

    def _live_threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # full (a wake-up is pending anyway), or closed by shutdown

    # --- the leader ---------------------------------------------------------------------------
    def _lead_in_new_thread(self, generation: int) -> bool:
        """A thread that leads as ``generation``; False (logged) when no thread can be started now."""
        t = threading.Thread(target=self._lead, args=(generation,), name="openmi-http", daemon=True)
        with self._lock:
            self._threads.add(t)
        try:
            t.start()
        except RuntimeError as exc:  # ("can't start new thread": out of threads or memory)
            with self._lock:
                self._threads.discard(t)
            log.error("cannot start a thread for the HTTP loop (%s); trying again", exc)
            return False
        return True

    def _lead(self, generation: int) -> None:
        """The loop: wait on every socket, serve what is ready; until shutdown, or until the watchdog
        makes another thread the leader while this one serves a slow request."""
        try:
            stopped = False
            next_sweep = time.monotonic() + SWEEP
            while True:
                try:
                    until = next_sweep if self._paused_until is None else min(next_sweep, self._paused_until)
                    events = self._wait_ready(until)
                    if self._paused_until is not None:
                        self._resume_accepting(stopped)
                    for key, _ in events:
                        data = key.data
                        if data is _WAKE:
                            if not self._woken():
                                return  # shutdown
                            if not stopped and self._stopping.is_set():
                                stopped = True
                                self._stop_accepting()
                        elif isinstance(data, Listener):
                            if not stopped and not self._defer_accepting():
                                self._accept(data)
                        elif not self._step(data, generation):
                            return  # no longer the leader
                    if time.monotonic() >= next_sweep:
                        self._sweep()
                        next_sweep = time.monotonic() + SWEEP
                except Exception:  # a bug here must not end the loop silently: say so, and keep serving
                    if self._closing:
                        return  # (the selector was closed under a leader that came back late)
                    log.exception("the HTTP loop failed")
                    time.sleep(0.01)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _wait_ready(self, until: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for something to be ready until ``until``. While requests follow each other closely (the
        last pause was short), look again for ``busy_poll`` seconds before sleeping: a client that sends its next
        request as soon as it has the answer finds the loop awake, which saves the wake-up (on a virtual machine
        the sleeping core's wake-up and cold caches cost more than serving a small request). A pause longer than
        four such looks stops it until requests come close together again."""
        spin = self.limits.busy_poll
        if spin > 0 and self._close_together:
            end = min(time.monotonic() + spin, until)
            while True:
                events = self._sel.select(0)
                if events:
                    return events
                if time.monotonic() >= end:
                    break
        slept = time.monotonic()
        events = self._sel.select(max(0.0, until - slept))  # (returns at once when something is ready)
        self._close_together = spin > 0 and time.monotonic() - slept < 4 * spin
        return events

    def _woken(self) -> bool:
        """Read the wake-up bytes, take back the connections handed back; False when the loop ends."""
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            if self._closing:
                return False
            back = list(self._returned)
            self._returned.clear()
        for slot in back:
            if not slot.closed:
                self._back_in(slot)
        return True

    def _back_in(self, slot: _Slot) -> None:
        """A connection handed back: into the loop again (even if the selector thought it was there)."""
        with self._lock:
            slot.out = False
            try:
                self._sel.register(slot.sock, _events(slot), slot)
            except KeyError:  # (a stale entry: the map said registered, epoll did not know the socket)
                try:
                    self._sel.unregister(slot.sock)
                except (KeyError, ValueError):
                    pass
                self._sel.register(slot.sock, _events(slot), slot)

    def _defer_accepting(self) -> bool:
        """Whether to leave the connection waiting on the shared listeners to a worker that holds fewer: then
        this one stops watching them for DEFER seconds (or until it no longer holds more)."""
        if self._balance is None:
            return False
        if self._forced:  # a pause ran out with this worker still ahead: the others are busy, take one
            self._forced = False
            return False
        if not self._ahead():
            return False
        self._paused_until = time.monotonic() + DEFER
        self._stop_accepting()
        return True

    def _ahead(self) -> bool:
        """Whether this worker holds more connections than another (see ``balance``)."""
        assert self._balance is not None
        shares, _, workers = self._balance
        return len(self._slots) > shares.fewest(workers)

    def _resume_accepting(self, stopped: bool) -> None:
        """Watch the listeners again once the pause ran out or this worker no longer holds more."""
        assert self._paused_until is not None
        expired = time.monotonic() >= self._paused_until
        if not expired and self._ahead():
            return
        self._paused_until = None
        self._forced = expired
        if stopped or self._stopping.is_set():
            return
        for lst in self.listeners:
            if lst.sock is not None:
                try:
                    self._sel.register(lst.sock, selectors.EVENT_READ, lst)
                except KeyError:  # (registered already)
                    pass

    def _stop_accepting(self) -> None:
        for lst in self.listeners:
            if lst.sock is not None:
                try:
                    self._sel.unregister(lst.sock)
                except (KeyError, ValueError):
                    pass

    def _step(self, slot: _Slot, generation: int) -> bool:
        """Serve what a ready connection sent; False when this thread is no longer the leader."""
        with self._lock:
            if self._generation != generation:
                return False
            self._current = slot
            self._span = time.monotonic()
        try:
            self._serve(slot)
        except Exception:  # the server's own bug: say so, drop only this connection
            log.exception("serving %s failed", slot.peer)
            self._close(slot)
        finally:
            with self._lock:
                demoted = self._generation != generation
                if not demoted:
                    self._current = self._span = None
                closing = self._closing
        if closing and not demoted and not slot.closed:  # (served past shutdown's grace: nobody else closes it)
            self._close(slot)
        if demoted:  # the watchdog took this connection out of the loop: hand it back
            if not slot.closed:
                with self._lock:
                    closing = self._closing
                    if not closing:
                        self._returned.append(slot)
                if closing:  # (the loop has ended)
                    self._close(slot)
                else:
                    self._wake()
            return False
        return True

    def _watch(self) -> None:
        """Every TICK: has one request held the leader for more than SLOW? Then another thread leads."""
        vacant: int | None = None  # a generation whose leader could not be started yet
        while True:
            time.sleep(TICK)
            if vacant is not None:
                if self._closing:
                    return
                if self._lead_in_new_thread(vacant):
                    vacant = None
                continue
            with self._lock:
                if self._closing:
                    return
                span = self._span
                if span is None or time.monotonic() - span < SLOW:
                    continue
                self._generation += 1
                generation = self._generation
                slot = self._current
                self._current = self._span = None
                if slot is not None and not slot.closed:
                    slot.out = True  # (out of the loop until handed back: see _want, _woken)
                    try:
                        self._sel.unregister(slot.sock)
                    except (KeyError, ValueError):
                        pass
            if not self._lead_in_new_thread(generation):
                vacant = generation  # the former leader hands its connection back; the next tick retries

    # --- accepting ----------------------------------------------------------------------------
    def _accept(self, lst: Listener) -> None:
        assert lst.sock is not None
        for _ in range(self.limits.accept_batch):  # then let the connections already in get a turn
            try:
                conn, addr = lst.sock.accept()
            except (BlockingIOError, InterruptedError):
                return  # (or another worker process took it)
            except OSError as exc:
                log.warning("accepting on port %s failed: %s", lst.port, exc)
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            slot = _Slot(conn, addr[0], f"{addr[0]}:{addr[1]}", lst)
            admitted, victim = self._admit(slot)
            if victim is not None:
                _hang_up(victim.sock)  # the loop (or the thread serving it) sees it end and closes it
            if not admitted:
                _refuse(conn, plain=lst.tls is None)
                continue
            if lst.tls is not None:
                try:
                    slot.sock = lst.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                except (ssl.SSLError, OSError) as exc:
                    log.info("TLS with %s failed: %s", slot.peer, exc)
                    self._close(slot)
                    continue
                slot.handshaking = True
                slot.started = time.monotonic()  # the handshake has request_timeout to finish
            else:
                self._open(slot)
            self._sel.register(slot.sock, selectors.EVENT_READ, slot)

    def _open(self, slot: _Slot) -> None:
        lim = self.limits
        slot.chan = ServerChannel(lim.max_header_bytes, lim.max_body_bytes)
        slot.handler = self.factory(slot.peer, slot.listener.tls is not None)

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
            self._slots[slot] = None
            self._per_host[slot.host] = self._per_host.get(slot.host, 0) + 1
            self._anonymous += 1
            if self._balance is not None:
                self._balance[0].set(self._balance[1], len(self._slots))
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
        if slot not in self._slots:
            return  # (forgotten already: displaced)
        del self._slots[slot]
        if self._balance is not None:
            self._balance[0].set(self._balance[1], len(self._slots))
        if slot.trusted:
            return
        n = self._per_host.get(slot.host, 0) - 1
        if n > 0:
            self._per_host[slot.host] = n
        else:
            self._per_host.pop(slot.host, None)
        self._anonymous -= 1

    # --- one connection -----------------------------------------------------------------------
    def _serve(self, slot: _Slot) -> None:
        """Read what arrived on a ready connection; answer every whole request in it."""
        if slot.evicted:
            self._close(slot)
            return
        if slot.handshaking:
            self._handshake(slot)
            return
        sock, chan = slot.sock, slot.chan
        assert chan is not None
        data = _receive(sock)
        if data is None:
            return  # (a wake-up with nothing to read: TLS records not yet whole)
        if slot.started is None and data:
            slot.started = time.monotonic()
        chan.feed(data)
        while True:
            try:
                result = chan.next_request()
            except BadRequest as exc:
                _say(sock, error_response(exc.status, str(exc)))
                self._close(slot)
                return
            if result is CLOSED:
                self._close(slot)
                return
            if not isinstance(result, HTTPRequest):  # NEED_DATA
                if chan.wants_continue and not self._send(slot, chan.continue_bytes()):
                    self._close(slot)
                return
            if not self._answer(slot, result):
                return
            if not chan.pending:  # (asking h11 about an empty buffer costs a parse attempt: skip it)
                return

    def _answer(self, slot: _Slot, request: HTTPRequest) -> bool:
        """Handle one request and write its response; False when the connection ended."""
        chan, handler = slot.chan, slot.handler
        assert chan is not None and handler is not None
        slot.started = None
        request.peer = slot.peer
        request.secure = slot.listener.tls is not None
        with self._lock:
            evicted = slot.evicted
            slot.busy = not evicted
        if evicted:
            self._close(slot)
            return False
        try:
            if self._stopping.is_set():
                response = handler.shutting_down(request)
                response.close = True
            else:
                try:
                    response = handler.handle(request)
                except Exception:  # the handler's own bug must not kill the connection silently
                    log.exception("request from %s failed", slot.peer)
                    response = HTTPResponse(500, b"internal error", [("Content-Type", "text/plain")], close=True)
                if self._stopping.is_set():
                    response.close = True
            trusted = bool(getattr(handler, "authenticated", False))
            if trusted is not slot.trusted:  # authenticated now, or no longer (a removed user)
                with self._lock:
                    self._trust(slot, trusted)
            sent = self._send(slot, chan.respond(response))
        finally:
            with self._lock:
                slot.busy = False
                slot.used = True
                slot.since = time.monotonic()
                if self._stopping.is_set():
                    self._idle.notify_all()
        if not sent or not chan.reusable:
            self._close(slot)
            return False
        if chan.pending:  # a pipelined request's clock starts now
            slot.started = time.monotonic()
        return True

    def _send(self, slot: _Slot, data: bytes) -> bool:
        """Write all of ``data``: one ``send`` when the socket takes it (the common case), else wait for
        the peer up to request_timeout (the watchdog gives the loop to another thread meanwhile)."""
        sock = slot.sock
        try:
            n = sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            n = 0  # (TLS: the same bytes are written again, as OpenSSL asks)
        except OSError:
            return False
        if n == len(data):
            return True
        try:
            sock.settimeout(self.limits.request_timeout)
            sock.sendall(memoryview(data)[n:])
            sock.setblocking(False)
        except OSError:
            return False
        return True

    def _handshake(self, slot: _Slot) -> None:
        sock = slot.sock
        assert isinstance(sock, ssl.SSLSocket)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(slot, writing=False)
            return
        except ssl.SSLWantWriteError:
            self._want(slot, writing=True)
            return
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake with %s failed: %s", slot.peer, exc)
            self._close(slot)
            return
        self._want(slot, writing=False)
        slot.handshaking = False
        slot.started = None
        slot.since = time.monotonic()
        self._open(slot)
        if sock.pending():  # the client's first request came with its last handshake record
            self._serve(slot)

    def _want(self, slot: _Slot, writing: bool) -> None:
        if slot.writing is not writing:
            slot.writing = writing
            with self._lock:  # (not while the watchdog takes it out of the loop)
                if not slot.out:
                    try:
                        self._sel.modify(slot.sock, _events(slot), slot)
                    except (KeyError, ValueError):
                        pass  # (out of the loop: handed back with the events it waits for)

    def _registered(self, slot: _Slot) -> bool:
        try:
            self._sel.get_key(slot.sock)
        except (KeyError, ValueError, RuntimeError):
            return False
        return True

    def _close(self, slot: _Slot) -> None:
        """End a connection: out of the loop and the accounting, its handler told, its socket closed."""
        if slot.closed:
            return
        slot.closed = True
        try:
            self._sel.unregister(slot.sock)
        except (KeyError, ValueError, RuntimeError):
            pass  # (not in the loop: a thread of its own served it, or the selector is closed)
        if slot.handler is not None:
            try:
                slot.handler.closed()
            except Exception:
                log.exception("closing the handler of %s failed", slot.peer)
        with self._lock:
            self._forget(slot)
        try:
            slot.sock.close()
        except OSError:
            pass

    def _sweep(self) -> None:
        """Close the connections past their deadlines: a request (or TLS handshake) not whole within
        request_timeout of its first byte (408), a kept-alive connection idle for idle_timeout."""
        lim = self.limits
        now = time.monotonic()
        with self._lock:
            slots = [s for s in self._slots if not s.busy]
        for slot in slots:
            if slot.closed or not self._registered(slot):
                continue  # (a thread of its own serves it)
            started = slot.started
            if started is not None:
                if now - started > lim.request_timeout:
                    if not slot.handshaking:
                        _say(slot.sock, error_response(408, "the request did not arrive in time"))
                    self._close(slot)
            elif now - slot.since > lim.idle_timeout:
                self._close(slot)


def _events(slot: _Slot) -> int:
    return selectors.EVENT_WRITE if slot.writing else selectors.EVENT_READ


def _receive(sock: socket.socket) -> bytes | None:
    """What a ready socket holds: bytes (``b""``: the peer closed, or the connection is gone), or None
    (nothing yet)."""
    try:
        data = sock.recv(65536)
    except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return None
    except OSError:
        return b""
    if data and isinstance(sock, ssl.SSLSocket):
        parts = [data]
        while (n := sock.pending()) > 0:  # decrypted bytes the selector cannot see
            try:
                parts.append(sock.recv(n))
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError:
                return b""
        data = b"".join(parts)
    return data


def _say(sock: socket.socket, data: bytes) -> None:
    """A last word before closing, if the socket takes it at once (a peer that does not read gets none)."""
    try:
        sock.send(data)
    except OSError:
        pass


def _refuse(conn: socket.socket, plain: bool) -> None:
    """No room: a 503 on a plain connection (a TLS client could not read it before its handshake), then close."""
    if plain:
        _say(conn, error_response(503, "too many connections", [("Retry-After", "1")]))
    conn.close()


def _hang_up(sock: socket.socket) -> None:
    """Make a connection end for whoever reads it next (TLS: under its TLS layer, which stays whole)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass

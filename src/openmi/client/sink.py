"""An event sink: the small HTTP listener a remote session opens for a push-mode subscription
(``SubscriptionDeliveryOptions(DeliveryType.PUSH, …)``), where the server POSTs events, heartbeats and
SubscriptionEnd.

Each sink serves one subscription at a path with a random token (``/openmi-sink/<token>``): a POST
elsewhere gets 404, so a stray or guessed delivery does not reach the subscriber. A delivery that asks for
an acknowledgement (PushWithAck, Events) is answered with an Ack only once the message was read and queued;
one that cannot be read gets a SOAP fault. Messages are handed to the subscription's plan in arrival order
with :meth:`EventSink.get`. Deliveries come without credentials (WS-Man push delivery has its own
authentication profiles, not supported here): the token in the URL is what keeps others out.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import threading
import time
import uuid

from ..cim.errors import MIError
from ..cim.types import MIResult
from ..protocol.http import NEED_DATA, BadRequest, HTTPRequest, HTTPResponse, ServerChannel
from ..protocol.wsman import build_fault, content_type
from ..protocol.wsman import eventing as ev
from ..protocol.wsman.faults import WSManFault

log = logging.getLogger("openmi.client")

MAX_DELIVERY = 16 * 1024 * 1024  # one event batch; the server's envelope limit is far below
MAX_QUEUED = 10_000  # messages received and not yet read: past this, deliveries are refused (the server retries)


class EventSink:
    """A listener on ``host``:``port`` (0: any free port) that queues what the server delivers."""

    def __init__(self, host: str, port: int = 0, *, advertise: str | None = None) -> None:
        self.token = uuid.uuid4().hex
        self.path = f"/openmi-sink/{self.token}"
        self._sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.settimeout(0.5)
        bound = self._sock.getsockname()
        name = advertise or host
        shown = f"[{name}]" if ":" in name else name
        self.url = f"http://{shown}:{bound[1]}{self.path}"
        self._queue: collections.deque[ev.SinkMessage] = collections.deque()
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []  # aget()s waiting
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        t = threading.Thread(target=self._accept, name=f"openmi-sink-{self.token[:8]}", daemon=True)
        t.start()
        self._threads.append(t)

    # --- the subscriber's side ----------------------------------------------------------------------------
    def get(self, timeout: float) -> ev.SinkMessage | None:
        """The next message, or None when ``timeout`` passes (or the sink is closed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._queue and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self._queue.popleft() if self._queue else None

    async def aget(self, timeout: float) -> ev.SinkMessage | None:
        """:meth:`get` for a coroutine: waits on its event loop, holding no thread."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._queue or self._closed:
                return self._queue.popleft() if self._queue else None
            fut: asyncio.Future[None] = loop.create_future()
            waiter = (loop, fut)
            self._waiters.append(waiter)
        try:
            await asyncio.wait([fut], timeout=timeout)
        finally:
            with self._cond:
                with contextlib.suppress(ValueError):  # (woken: the waker took it off the list already)
                    self._waiters.remove(waiter)
        with self._cond:
            return self._queue.popleft() if self._queue else None

    def _wake_locked(self) -> None:
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            with contextlib.suppress(RuntimeError):  # (that loop is closed: nobody waits there any more)
                loop.call_soon_threadsafe(_set_result, fut)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wake_locked()
            conns = list(self._conns)
        try:
            self._sock.close()
        except OSError:
            pass
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(2)

    # --- the server's side ----------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                if self._closed:
                    conn.close()
                    return
                self._conns.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads = [x for x in self._threads if x.is_alive()] + [t]

    def _serve(self, conn: socket.socket) -> None:
        chan = ServerChannel(max_body_bytes=MAX_DELIVERY)
        conn.settimeout(60)
        try:
            while not self._closed:
                try:
                    req = chan.next_request()
                except BadRequest as exc:
                    conn.sendall(chan.respond(HTTPResponse(exc.status, b"", [], close=True)))
                    return
                if req is NEED_DATA:
                    data = conn.recv(65536)
                    chan.feed(data)
                    if not data and not chan.pending:
                        return
                    continue
                if not isinstance(req, HTTPRequest):
                    return  # the connection closed
                conn.sendall(chan.respond(self._handle(req)))
                if not chan.reusable:
                    return
        except OSError:
            return
        finally:
            with self._cond:
                self._conns.discard(conn)
            conn.close()

    def _handle(self, req: HTTPRequest) -> HTTPResponse:
        if req.path.split("?", 1)[0] != self.path:
            return HTTPResponse(404, b"", [])
        if req.method != "POST":
            return HTTPResponse(405, b"", [("Allow", "POST")])
        try:
            msg = ev.parse_sink_message(req.body, req.headers.get("content-type"))
        except (WSManFault, MIError, ValueError) as exc:
            err = exc if isinstance(exc, MIError) else MIError(MIResult.INVALID_PARAMETER, str(exc))
            status, data = build_fault(None, err)
            return HTTPResponse(status, data, [("Content-Type", content_type())])
        with self._cond:
            if self._closed or len(self._queue) >= MAX_QUEUED:
                full = self._closed
            else:
                self._queue.append(msg)
                self._wake_locked()
                full = None
        if full is not None:  # not read: the server retries (or gives up if we are gone)
            return HTTPResponse(503, b"", [("Retry-After", "1")])
        if msg.ack_requested:
            return HTTPResponse(200, ev.build_ack(msg.message_id), [("Content-Type", content_type())])
        return HTTPResponse(200, b"", [])


def _set_result(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def local_address(host: str, port: int) -> str:
    """The local address a connection to ``host``:``port`` would leave from (where the server can reach us)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError:
        return "127.0.0.1"
    for family, _, _, _, addr in infos:
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.connect(addr)
            return str(s.getsockname()[0])
        except OSError:
            continue
        finally:
            s.close()
    return "127.0.0.1"

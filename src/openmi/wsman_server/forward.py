"""Worker-to-worker forwarding for ``openmi serve --workers N``: a Pull lands where its context lives.

An enumeration or a subscription is state in the worker that opened it (a running engine stream, a queue
of events). A client's next Pull may come on another connection, which the kernel may hand to another
worker. So each worker names its contexts with its slot (``urn:uuid:…-w<slot>``) and listens on a Unix
socket in a directory private to this ``openmi serve`` (mode 0700, made by the supervisor). A worker that
receives a Pull, Release, Unsubscribe or Renew for another worker's context hands it there: the decrypted
envelope and the user it authenticated (name and rights; the owner checks them as for its own requests),
and sends back the owner's answer, sealed as its own. If the owner is gone (it died and was restarted: its
contexts died with it), the request is answered here, as an unknown context.

The frame on the socket: a 4-octet big-endian length, then that many octets of JSON header, then the
body's length and the body. One request per connection.

Indications cross workers as they cross any processes sharing the repository file: a subscription lives in
one worker, but the delete it watches for may be served by another, or by a command run beside the server
(:mod:`openmi.engine.filevents`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol import wsman
from ..protocol.wsman import eventing as ev
from .users import User

if TYPE_CHECKING:
    from .service import WSManService

log = logging.getLogger("openmi.wsman_server")

#: what a context identifier (or a WS-Man bookmark) ends with: its worker's slot, or (hosts.py) its server's id
TAG = re.compile(r"-(?:w(\d{1,4})|h([0-9a-f]{12}))$")
_LEN = struct.Struct(">I")
_MAX_FRAME = 64 << 20  # a forwarded body is an envelope this server accepted: far below this
_TIMEOUT = 3600.0  # a forwarded Pull may long-poll (a subscription's heartbeat); the owner bounds it


class Unanswered(Exception):
    """A forwarded request reached its owner whole, but no answer came back (the owner stopped, or the link
    broke): the owner may have acted on it, so it must not be answered as if the context were unknown."""


@dataclass(frozen=True)
class Peers:
    """This worker's slot and the directory where every worker of this ``openmi serve`` listens."""

    slot: int
    directory: str
    count: int = 1  # how many workers there are (slots 0 … count-1)

    @property
    def suffix(self) -> str:
        """What this worker's context identifiers end with."""
        return f"-w{self.slot}"

    def socket_path(self, slot: int) -> str:
        return os.path.join(self.directory, f"w{slot}.sock")

    def owner(self, req: wsman.Request) -> int | None:
        """The slot of the other worker that holds the context this request continues, or None (here, or none)."""
        m = TAG.search(continued_context(req) or "")
        if m is None or m.group(1) is None:
            return None
        slot = int(m.group(1))
        return None if slot == self.slot else slot

    def forward(self, slot: int, body: bytes, content_type: str | None, user: User | None,
                plain: bool = False) -> tuple[int, bytes] | None:
        """Send a request to the worker in ``slot``: its (HTTP status, body), or None when it did not get the
        request (then nobody acted on it); :class:`Unanswered` when it got it but did not answer."""
        try:
            got = self.call(slot, request_header(content_type, user, plain), body, sent_whole=True)
        except Unanswered:
            log.warning("worker %d took a forwarded request and did not answer", slot)
            raise
        if got is None:
            log.info("worker %d cannot be reached: the request is answered here", slot)
        return got

    def call(self, slot: int, header: dict[str, Any], body: bytes = b"", timeout: float = _TIMEOUT,
             sent_whole: bool = False) -> tuple[int, bytes] | None:
        """One exchange with the worker in ``slot``: (status, data), or None when it cannot be reached. With
        ``sent_whole``, a request sent whole that gets no answer raises :class:`Unanswered` (a worker acts
        only on a whole frame, so one that did not go out whole was not acted on)."""
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError:  # (out of descriptors: answered here, as for a worker that cannot be reached)
            return None
        with s:
            try:
                s.settimeout(timeout)
                s.connect(self.socket_path(slot))
                s.sendall(frame(header, body))
            except OSError:
                return None
            try:  # the frame went out whole: from here the worker may act on it
                s.shutdown(socket.SHUT_WR)
                return read_answer(s)
            except (OSError, ValueError) as exc:
                if sent_whole:
                    raise Unanswered(f"worker {slot} did not answer: {exc}") from exc
                return None


def continued_context(req: wsman.Request) -> str | None:
    """The enumeration or subscription context a request continues (Pull, Release, Unsubscribe, Renew,
    GetStatus), or the bookmark a Subscribe resumes from (the events after it are kept where it was
    issued), or None."""
    if isinstance(req, (wsman.PullRequest, wsman.ReleaseRequest)):
        return req.context
    if isinstance(req, (ev.UnsubscribeRequest, ev.RenewRequest, ev.GetStatusRequest)):
        return req.identifier
    if isinstance(req, ev.SubscribeRequest):
        return req.bookmark
    return None


# --- the frame (workers over Unix sockets, hosts over TLS: hosts.py) ------------------------------------
def request_header(content_type: str | None, user: User | None, plain: bool = False) -> dict[str, Any]:
    """A forwarded request's header: its Content-Type, the user it authenticated (name and rights) and whether
    its client reads OMI's shapes (wsman.Request.plain_values: the HTTP headers that told it stay here)."""
    header: dict[str, Any] = {"ctype": content_type,
                              "user": None if user is None else {"name": user.name, "rights": user.rights}}
    if plain:
        header["plain"] = True
    return header


def header_user(header: dict[str, Any]) -> User | None:
    """The user a forwarded request's header names (the receiver checks its rights as for its own)."""
    who = header.get("user")
    return None if who is None else User(str(who["name"]), "", rights=dict(who["rights"]))


def frame(header: dict[str, Any], body: bytes) -> bytes:
    return framed(json.dumps(header).encode(), body)


def framed(head: bytes, body: bytes) -> bytes:
    """The frame of a header already encoded (as it was read: what a signature covers)."""
    return _LEN.pack(len(head)) + head + _LEN.pack(len(body)) + body


def read_frame(s: socket.socket, max_header: int = _MAX_FRAME, max_body: int = _MAX_FRAME,
               deadline: float | None = None) -> tuple[bytes, bytes]:
    """(header bytes, body) of a request frame, each within its bound (and all by ``deadline``)."""
    head = _read(s, _LEN.unpack(_read(s, 4, 4, deadline))[0], max_header, deadline)
    return head, _read(s, _LEN.unpack(_read(s, 4, 4, deadline))[0], max_body, deadline)


def answer(status: int, data: bytes) -> bytes:
    return _LEN.pack(status) + _LEN.pack(len(data)) + data


def read_answer(s: socket.socket) -> tuple[int, bytes]:
    status = _LEN.unpack(_read(s, 4))[0]
    return status, _read(s, _LEN.unpack(_read(s, 4))[0])


def _read(s: socket.socket, n: int, limit: int = _MAX_FRAME, deadline: float | None = None) -> bytes:
    """``n`` octets (at most ``limit``; all by ``deadline`` when one is given): else ValueError, TimeoutError."""
    if n > limit:
        raise ValueError(f"a part of {n} octets (at most {limit})")
    out = bytearray()
    while len(out) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the frame did not arrive in time")
            s.settimeout(left)
        chunk = s.recv(min(n - len(out), 1 << 20))
        if not chunk:
            raise ValueError("the frame ended early")
        out += chunk
    return bytes(out)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    block_on_close = False


class PeerListener:
    """The Unix socket where this worker answers the requests other workers forward to it."""

    def __init__(self, peers: Peers, service: WSManService) -> None:
        self.peers = peers
        path = peers.socket_path(peers.slot)
        Path(path).unlink(missing_ok=True)  # a restarted worker takes its slot's socket over
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                listener._serve(self.request)

        self._server = _Server(path, Handler)
        os.chmod(path, 0o600)
        self._service = service
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"openmi-peer-{peers.slot}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self, s: socket.socket) -> None:
        try:
            head, body = read_frame(s)
            header: dict[str, Any] = json.loads(head)
            status, data = self._service.answer(body, header.get("ctype"), header_user(header),
                                                plain=bool(header.get("plain")))
            s.sendall(answer(status, data))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # the other worker then answers it itself
            log.info("a request forwarded by another worker failed: %s", exc)
        except Exception:  # a bug: logged once, and the other worker answers the request itself
            log.exception("answering a request forwarded by another worker failed")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        Path(self.peers.socket_path(self.peers.slot)).unlink(missing_ok=True)

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..protocol import wsman
from ..protocol.wsman import eventing as ev
from .users import User

if TYPE_CHECKING:
    from .service import WSManService

log = logging.getLogger("openmi.wsman_server")

_TAG = re.compile(r"-w(\d{1,4})$")
_LEN = struct.Struct(">I")
_MAX_FRAME = 64 << 20  # a forwarded body is an envelope this server accepted: far below this
_TIMEOUT = 3600.0  # a forwarded Pull may long-poll (a subscription's heartbeat); the owner bounds it


@dataclass(frozen=True)
class Peers:
    """This worker's slot and the directory where every worker of this ``openmi serve`` listens."""

    slot: int
    directory: str

    @property
    def suffix(self) -> str:
        """What this worker's context identifiers end with."""
        return f"-w{self.slot}"

    def socket_path(self, slot: int) -> str:
        return os.path.join(self.directory, f"w{slot}.sock")

    def owner(self, req: wsman.Request) -> int | None:
        """The slot of the other worker that holds the context this request continues, or None (here, or none)."""
        if isinstance(req, (wsman.PullRequest, wsman.ReleaseRequest)):
            context = req.context
        elif isinstance(req, (ev.UnsubscribeRequest, ev.RenewRequest, ev.GetStatusRequest)):
            context = req.identifier
        else:
            return None
        m = _TAG.search(context or "")
        if m is None:
            return None
        slot = int(m.group(1))
        return None if slot == self.slot else slot

    def forward(self, slot: int, body: bytes, content_type: str | None, user: User | None) -> tuple[int, bytes] | None:
        """Send a request to the worker in ``slot``: its (HTTP status, body), or None when it cannot be reached."""
        header = json.dumps({"ctype": content_type, "user": None if user is None else
                             {"name": user.name, "rights": user.rights}}).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(_TIMEOUT)
                s.connect(self.socket_path(slot))
                s.sendall(_LEN.pack(len(header)) + header + _LEN.pack(len(body)) + body)
                s.shutdown(socket.SHUT_WR)
                status = _LEN.unpack(_read(s, 4))[0]
                data = _read(s, _LEN.unpack(_read(s, 4))[0])
        except (OSError, ValueError) as exc:
            log.info("worker %d cannot be reached (%s): the request is answered here", slot, exc)
            return None
        return status, data


def _read(s: socket.socket, n: int) -> bytes:
    if n > _MAX_FRAME:
        raise ValueError(f"a frame of {n} octets")
    out = bytearray()
    while len(out) < n:
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
            header: dict[str, Any] = json.loads(_read(s, _LEN.unpack(_read(s, 4))[0]))
            body = _read(s, _LEN.unpack(_read(s, 4))[0])
            who = header.get("user")
            user = None if who is None else User(str(who["name"]), "", rights=dict(who["rights"]))
            status, data = self._service.answer(body, header.get("ctype"), user)
            s.sendall(_LEN.pack(status) + _LEN.pack(len(data)) + data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("a request forwarded by another worker failed: %s", exc)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        Path(self.peers.socket_path(self.peers.slot)).unlink(missing_ok=True)

"""Host-to-host forwarding for the servers of one PostgreSQL repository: a Pull lands where its context lives.

Several ``openmi serve`` hosts (each worker of each, in fact) may share one repository in PostgreSQL, behind
a load balancer that need not keep a client on one host. An enumeration or a subscription is state in the
server that opened it (a running engine stream, a queue of events), so each server names its contexts with
an id of its own (``urn:uuid:…-h<id>``) and listens on a TCP port of its own (``peer_bind``, an ephemeral
port) with TLS under its HTTPS certificate. It registers where it listens — address, port and the SHA-256
of its certificate — in the repository (meta key ``peer:<id>``), and takes it back when it stops.

A server that receives a Pull, Release, Unsubscribe, Renew or GetStatus for another server's context
connects there, checks that the certificate is the one registered, and sends the decrypted envelope and the
user it authenticated (name and rights; the owner checks them as for its own requests), with an HMAC-SHA256
under a secret kept in the repository (the first server makes it; any server that can open the repository
can read it, and only those can have a request served as a user). It relays the owner's answer, sealed as
its own. An owner that cannot be reached (stopped, crashed) leaves the request to be answered here, as an
unknown context.

The frame is forward.py's (a 4-octet length, JSON header, a 4-octet length, the body), followed by the
32-octet HMAC of everything before it; the answer is the status, a length and the body. One request per
connection: these are the few requests a load balancer sent to the wrong host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

from ..protocol import wsman
from .forward import (
    _TIMEOUT,
    TAG,
    Unanswered,
    _read,
    answer,
    continued_context,
    frame,
    framed,
    header_user,
    read_answer,
    read_frame,
    request_header,
)
from .users import User

if TYPE_CHECKING:
    from ..engine.repository import Storage
    from .service import WSManService

log = logging.getLogger("openmi.wsman_server")

_MAC = 32
# what one forwarded request may be, before its signature is checked: a JSON header of a few names, the
# envelope this server's own limits accepted; the whole request must arrive within _ARRIVAL seconds; at
# most _CONNECTIONS are served at once (the peer port is reachable by whoever reaches the host)
_MAX_HEADER = 64 * 1024
_MAX_BODY = 16 << 20
_ARRIVAL = 30.0
_CONNECTIONS = 32


class HostPeers:
    """This server among the servers of one PostgreSQL repository (see the module's docstring)."""

    def __init__(self, storage: Storage, bind: str, address: str | None, cert_file: str, key_file: str) -> None:
        self.storage = storage
        self.id = secrets.token_hex(6)
        self._secret = bytes.fromhex(storage.claim_meta("peer_secret", secrets.token_hex(32)))
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self._tls.load_cert_chain(cert_file, key_file)
        with open(cert_file, encoding="ascii") as f:
            self._fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        self._sock = socket.create_server((bind, 0), family=family)
        self._sock.settimeout(0.5)
        self.port = self._sock.getsockname()[1]
        wildcard = bind in ("", "0.0.0.0", "::")
        self.address = address or (socket.getfqdn() if wildcard else bind)
        self.service: WSManService | None = None
        self._where: dict[str, tuple[str, int, str]] = {}  # other servers' ids → (address, port, fingerprint)
        self._serving = threading.BoundedSemaphore(_CONNECTIONS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"openmi-hosts-{self.id}", daemon=True)

    @property
    def suffix(self) -> str:
        """What this server's context identifiers end with."""
        return f"-h{self.id}"

    def start(self, service: WSManService) -> None:
        self.service = service
        self._thread.start()
        self.storage.set_meta(f"peer:{self.id}", json.dumps(
            {"address": self.address, "port": self.port, "sha256": self._fingerprint}))

    def stop(self) -> None:
        try:
            self.storage.delete_meta(f"peer:{self.id}")
        except Exception:  # the repository may be gone already: the record only misleads until a Pull fails
            log.exception("could not unregister this server's peer address")
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._sock.close()

    # --- forwarding -----------------------------------------------------------------------------------
    def owner(self, req: wsman.Request) -> str | None:
        """The id of the other server that holds the context this request continues, or None."""
        m = TAG.search(continued_context(req) or "")
        if m is None or m.group(2) is None or m.group(2) == self.id:
            return None
        return m.group(2)

    def forward(self, host: str, body: bytes, content_type: str | None,
                user: User | None, plain: bool = False) -> tuple[int, bytes] | None:
        """Send a request to the server ``host``: its (HTTP status, body), or None when it did not get the
        request (then nobody acted on it); :class:`Unanswered` when it got it whole but did not answer."""
        where = self._locate(host)
        if where is None:
            log.info("server %s is not registered: the request is answered here", host)
            return None
        address, port, fingerprint = where
        request = frame(request_header(content_type, user, plain), body)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE  # (the certificate is checked against the registered fingerprint)
        try:
            with socket.create_connection((address, port), timeout=3.0) as raw, \
                    client.wrap_socket(raw, server_hostname=address) as s:
                der = s.getpeercert(binary_form=True) or b""
                if not hmac.compare_digest(hashlib.sha256(der).hexdigest(), fingerprint):
                    log.warning("server %s at %s:%d shows another certificate than it registered; not forwarding",
                                host, address, port)
                    return None
                s.settimeout(_TIMEOUT)
                s.sendall(request + hmac.new(self._secret, request, hashlib.sha256).digest())
                try:
                    status, data = read_answer(s)
                except (OSError, ValueError) as exc:  # (a peer acts only on a whole, signed request: this one was)
                    log.warning("server %s at %s:%d took a forwarded request and did not answer (%s)", host,
                                address, port, exc)
                    raise Unanswered(f"server {host} did not answer: {exc}") from exc
        except (OSError, ValueError) as exc:
            self._where.pop(host, None)  # (it may have moved: read the record again next time)
            log.info("server %s at %s:%d cannot be reached (%s): the request is answered here", host, address,
                     port, exc)
            return None
        return status, data

    def _locate(self, host: str) -> tuple[str, int, str] | None:
        where = self._where.get(host)
        if where is None:
            record = self.storage.meta(f"peer:{host}")
            if not record:
                return None
            try:
                d = json.loads(record)
                where = (str(d["address"]), int(d["port"]), str(d["sha256"]))
            except (ValueError, KeyError, TypeError):
                log.warning("the peer record of server %s is unreadable", host)
                return None
            self._where[host] = where
        return where

    # --- answering ------------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    return
                log.warning("accepting a forwarded request failed: %s", exc)
                time.sleep(0.1)  # (out of descriptors …: not a busy loop)
                continue
            if not self._serving.acquire(blocking=False):
                conn.close()  # as many as it serves at once: the sender answers the request itself
                continue
            try:
                threading.Thread(target=self._serve, args=(conn, addr), name="openmi-hosts-conn",
                                 daemon=True).start()
            except RuntimeError as exc:
                self._serving.release()
                conn.close()
                log.warning("cannot serve a forwarded request: %s", exc)

    def _serve(self, raw: socket.socket, addr: Any) -> None:
        deadline = time.monotonic() + _ARRIVAL
        try:
            raw.settimeout(_ARRIVAL)
            with self._tls.wrap_socket(raw, server_side=True) as s:
                head, body = read_frame(s, _MAX_HEADER, _MAX_BODY, deadline)
                mac = _read(s, _MAC, _MAC, deadline)
                if not hmac.compare_digest(mac, hmac.new(self._secret, framed(head, body), hashlib.sha256).digest()):
                    log.warning("a forwarded request from %s carries a wrong signature; refused", addr[0])
                    return
                header: dict[str, Any] = json.loads(head)
                assert self.service is not None
                s.settimeout(_TIMEOUT)
                status, data = self.service.answer(body, header.get("ctype"), header_user(header),
                                                   plain=bool(header.get("plain")))
                s.sendall(answer(status, data))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # the other server then answers it itself
            log.info("a request forwarded by %s failed: %s", addr[0], exc)
        except Exception:  # a bug: logged, and the other server answers the request itself
            log.exception("answering a request forwarded by %s failed", addr[0])
        finally:
            raw.close()
            self._serving.release()


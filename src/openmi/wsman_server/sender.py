"""A small blocking HTTP client for what the server itself sends: event deliveries to a subscriber's
NotifyTo address and SubscriptionEnd to its EndTo address (WS-Eventing push modes).

One :class:`Sender` keeps one kept-alive connection to one sink, frames requests with the shared h11 layer
(:class:`openmi.protocol.http.ClientChannel`) and reconnects once when a kept-alive connection turns out to
be dead. Sinks are reached without credentials (the subscription's NotifyTo names where, not who).
"""

from __future__ import annotations

import socket
import ssl
import threading
from urllib.parse import urlsplit

from ..protocol.http import NEED_DATA, BadResponse, ClientChannel

MAX_SINK_ANSWER = 1024 * 1024  # an Ack is a few hundred bytes; a fault a few KB


class SinkError(Exception):
    """A delivery did not reach the sink, or the sink's answer could not be read."""


class Sender:
    """POSTs to one sink URL, on one kept-alive connection (thread-safe: one request at a time)."""

    def __init__(self, url: str, timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> None:
        u = urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"a sink address is an http(s) URL, not {url!r}")
        self.url = url
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        self.timeout = timeout
        self.tls = tls if tls is not None else (ssl.create_default_context() if u.scheme == "https" else None)
        self._sock: socket.socket | None = None
        self._chan: ClientChannel | None = None
        self._lock = threading.Lock()
        self._closed = False

    def post(self, body: bytes, content_type: str) -> tuple[int, str | None, bytes]:
        """(status, content type, body) of the sink's answer; :class:`SinkError` if it cannot be had."""
        headers = {"Content-Type": content_type, "User-Agent": "openmi"}
        with self._lock:
            if self._closed:
                raise SinkError("the sender is closed")
            for attempt in range(2):
                reused = self._sock is not None
                try:
                    sock, chan = self._connection()
                    sock.sendall(chan.request("POST", self.path, headers, body))
                    status, hdrs, data = self._read(sock, chan)
                except (OSError, BadResponse) as exc:
                    self._drop()
                    if reused and attempt == 0 and isinstance(exc, (ConnectionResetError, BrokenPipeError)):
                        continue  # a kept-alive connection the sink had closed: once more on a new one
                    raise SinkError(f"cannot deliver to {self.url}: {exc}") from None
                if not chan.reusable:
                    self._drop()
                return status, hdrs.get("content-type"), data
        raise SinkError(f"cannot deliver to {self.url}")

    def _connection(self) -> tuple[socket.socket, ClientChannel]:
        if self._sock is None or self._chan is None:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            try:
                sock = self.tls.wrap_socket(raw, server_hostname=self.host) if self.tls is not None else raw
            except BaseException:
                raw.close()
                raise
            sock.settimeout(self.timeout)
            self._sock, self._chan = sock, ClientChannel(self.host, MAX_SINK_ANSWER)
        return self._sock, self._chan

    @staticmethod
    def _read(sock: socket.socket, chan: ClientChannel) -> tuple[int, dict[str, str], bytes]:
        while True:
            got = chan.next_response()
            if got is not NEED_DATA:
                assert isinstance(got, tuple)
                return got
            chan.feed(sock.recv(65536))

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = self._chan = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop()

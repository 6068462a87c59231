"""A loopback server that answers like OMI on the wire: the HTTP header and the body in two separate
writes on a socket without TCP_NODELAY, so the body waits under Nagle's algorithm until the client has
acknowledged the header (tests/fixtures/omi/README.md). Every POST gets OMI's recorded Delete response,
its RelatesTo set to the request's MessageID. Used by tests/client/test_split_write.py and
bench/bench_splitwrite.py."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "omi"
DELETE_RESPONSE = (FIXTURES / "pyclient-08-delete-item-response.xml").read_bytes()
_MESSAGE_ID = re.compile(rb"<(?:\w+:)?MessageID[^>]*>([^<]+)<")
_RELATES_TO = re.compile(rb"(<(?:\w+:)?RelatesTo[^>]*>)[^<]*(<)")


class SplitWriteServer:
    """Serves until :meth:`close`; ``requests`` counts the POSTs answered."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        t = threading.Thread(target=self._accept, name="split-write-accept", daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            # TCP_NODELAY deliberately left off, as OMI leaves it
            t = threading.Thread(target=self._serve, args=(conn,), name="split-write-conn", daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
                length = int(m.group(1)) if m else 0
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                request, buf = buf[:length], buf[length:]
                body = DELETE_RESPONSE
                mid = _MESSAGE_ID.search(request)
                if mid:
                    body = _RELATES_TO.sub(rb"\g<1>" + mid.group(1) + rb"\g<2>", body)
                with self._lock:  # counted before the answer goes out: the client may read the count at once
                    self.requests += 1
                # OMI's header, as recorded: no reason phrase, then the body in a write of its own
                conn.sendall(b"HTTP/1.1 200\r\nContent-Length: %d\r\nConnection: Keep-Alive\r\n"
                             b"Content-Type: application/soap+xml;charset=UTF-8\r\n\r\n" % len(body))
                conn.sendall(body)
        except OSError:
            return
        finally:
            conn.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (a bare close does not)
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)

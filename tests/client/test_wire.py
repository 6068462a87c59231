"""Both of openmi's HTTP connections (blocking and asyncio) read the same answers the same way, from a
loopback server that sends canned bytes: a response without Content-Length runs to the close, chunked
bodies, a declared body over the client's limit is refused with a clear error, a malformed answer is an
MIError, and a kept-alive connection the server closed is reported as retryable."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from openmi.cim.errors import MIError
from openmi.client import wire


class Canned:
    """Answers each request on each connection with the next canned reply, then closes if told to."""

    def __init__(self, replies: list[tuple[bytes, bool]]) -> None:
        self.replies = replies
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, name="test-canned", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.replies:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while self.replies:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    if not data:
                        break
                    reply, close = self.replies.pop(0)
                    conn.sendall(reply)
                    if close:
                        conn.shutdown(socket.SHUT_WR)
                        break

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


def endpoint(port: int) -> wire.Endpoint:
    return wire.Endpoint("127.0.0.1", port, "/wsman", None, 10.0, lambda: None, "no authentication")


def both(port: int) -> Iterator[tuple[str, object]]:
    """(name, the answer or the exception) from each kind of connection, one request each."""
    def blocking() -> object:
        conn = wire.Connection(endpoint(port))
        try:
            return conn.exchange(b"<x/>", {})
        except Exception as exc:  # the outcome is what is compared
            return exc
        finally:
            conn.close()

    async def run() -> object:
        conn = wire.AsyncConnection(endpoint(port))
        try:
            return await conn.exchange(b"<x/>", {})
        except Exception as exc:
            return exc
        finally:
            conn.close()

    yield "blocking", blocking()
    yield "asyncio", asyncio.run(run())


@pytest.mark.parametrize("reply, body", [
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<no length/>", b"<no length/>"),  # to the close
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<a/\r\n1\r\n>\r\n0\r\n\r\n", b"<a/>"),
    (b"HTTP/1.1 200\r\nContent-Length: 4\r\n\r\n<a/>", b"<a/>"),  # no reason phrase, as OMI writes it
])
def test_both_clients_read_the_same_body(reply: bytes, body: bytes) -> None:
    for name, outcome in both_with(reply):
        assert isinstance(outcome, tuple), (name, outcome)
        assert outcome[0] == 200 and outcome[2] == body, name


def both_with(reply: bytes) -> list[tuple[str, object]]:
    server = Canned([(reply, True), (reply, True)])
    try:
        return list(both(server.port))
    finally:
        server.close()


def test_both_clients_refuse_a_declared_body_over_the_limit() -> None:
    too_big = wire.MAX_RESPONSE_BYTES + 1
    for name, outcome in both_with(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n<a/>" % too_big):
        assert isinstance(outcome, MIError), (name, outcome)
        assert str(too_big) in str(outcome) and "limit" in str(outcome), name


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n<a/>",
    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n<a/>",
    b"NOT HTTP AT ALL\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n<a/>",  # closed in the middle of the body
])
def test_both_clients_report_a_malformed_answer(reply: bytes) -> None:
    for name, outcome in both_with(reply):
        assert isinstance(outcome, MIError), (name, outcome)
        assert "127.0.0.1" in str(outcome), name


def test_a_close_before_any_answer_is_retryable_for_both() -> None:
    server = Canned([(b"", True), (b"", True)])
    try:
        for name, outcome in both(server.port):
            assert isinstance(outcome, wire.RETRYABLE), (name, outcome)
    finally:
        server.close()

"""HTTP for remote sessions: one kept-alive connection, blocking or asyncio, and the authentication of
each connection written once, as a generator of POSTs that both kinds of connection drive.

A connection authenticates once (NTLM/Negotiate/Kerberos legs on empty POSTs, as WinRM clients do;
Basic on every request), then seals and opens message bodies when the scheme encrypts.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Generator
from typing import Any

from ..cim.errors import MIError
from ..cim.types import MIResult
from ..protocol.http import NEED_DATA, BadResponse, ClientChannel, tunnel_answer, tunnel_request
from ..protocol.wsman.envelope import CLIENT_LIMITS

Post = tuple[bytes, dict[str, str]]  # body, headers
Reply = tuple[int, dict[str, str], bytes]  # status, lower-case headers, body
Answer = tuple[int, "str | None", bytes]  # status, content type, plaintext body

# a dead kept-alive connection shows as one of these when the request is written or the answer awaited
RETRYABLE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, asyncio.IncompleteReadError)

# the largest response body a client reads: the largest envelope it accepts, with room for sealing
MAX_RESPONSE_BYTES = CLIENT_LIMITS.max_envelope + 1024 * 1024


class Endpoint:
    """Where a connection goes and how it authenticates (shared by a session's connections)."""

    def __init__(self, host: str, port: int, path: str, tls: ssl.SSLContext | None, timeout: float,
                 auth_factory: Any, auth_name: str, proxy: tuple[str, int] | None = None) -> None:
        self.proxy = proxy  # an HTTP proxy reached with CONNECT (a tunnel; the proxy sees no plaintext under TLS)
        self.host = host
        self.port = port
        self.path = path
        self.tls = tls
        self.timeout = timeout
        self.auth_factory = auth_factory
        self.auth_name = auth_name
        name = host if host.isascii() else host.encode("idna").decode("ascii")
        self.host_header = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"

    def io_error(self, exc: BaseException) -> MIError:
        """A clear MIError naming the host and what went wrong on the wire."""
        where = f"{self.host}:{self.port}"
        if isinstance(exc, MIError):
            return exc
        if isinstance(exc, (ssl.SSLCertVerificationError, ssl.SSLError)):
            why = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
            return MIError(MIResult.FAILED, f"TLS with {where} failed: {why}")
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return MIError(MIResult.FAILED, f"{where} did not answer within {self.timeout:g} s")
        if isinstance(exc, ConnectionRefusedError):
            return MIError(MIResult.FAILED, f"cannot connect to {where}: connection refused")
        if isinstance(exc, socket.gaierror):
            return MIError(MIResult.FAILED, f"cannot resolve {self.host}: {exc.strerror}")
        if isinstance(exc, RETRYABLE):
            return MIError(MIResult.FAILED, f"the connection to {where} was lost ({type(exc).__name__})")
        return MIError(MIResult.FAILED, f"cannot talk to {where}: {exc}")


class _AuthState:
    """One connection's authentication, as a generator of POSTs (no I/O here)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.auth = endpoint.auth_factory()
        self.basic: str | None = None
        self.authenticated = False

    @property
    def ready(self) -> bool:
        """Whether the next request goes out as one POST (no authentication leg before it): what lets a
        connection write a request and read its answer later (:meth:`Connection.begin`)."""
        return self.auth is None or self.auth.scheme == "Basic" or self.authenticated

    def fresh(self) -> _AuthState:
        """The state for a new connection: the same one until a connection-bound handshake (NTLM, Kerberos:
        their security context belongs to the TCP connection) has been made, then a new one. Basic's
        header holds for any connection."""
        if not self.authenticated or self.auth is None or self.auth.scheme == "Basic":
            return self
        return _AuthState(self.endpoint)

    def exchange(self, body: bytes, headers: dict[str, str]) -> Generator[Post, Reply, Answer]:
        from .auth import ClientAuthError

        ep = self.endpoint
        try:
            send = dict(headers)
            ctype = send.pop("Content-Type", "application/soap+xml;charset=UTF-8")
            auth = self.auth
            if auth is not None:
                if auth.scheme == "Basic":
                    if self.basic is None:
                        self.basic = auth.initial_header()
                    send["Authorization"] = self.basic or ""
                elif not self.authenticated:
                    token = auth.initial_header()
                    for _ in range(8):
                        status, rheaders, _ = yield b"", {"Content-Type": ctype, "Authorization": token or ""}
                        challenge = rheaders.get("www-authenticate")
                        if status >= 500:  # e.g. 503 from a server going down: not an answer to the handshake
                            raise MIError(MIResult.FAILED, f"{ep.host} answered HTTP {status} during the "
                                                           f"{ep.auth_name} handshake")
                        if status != 401:
                            if challenge:
                                auth.step(challenge)  # the server's last leg (mutual authentication)
                            self.authenticated = True
                            break
                        token = auth.step(challenge)
                        if token is None:
                            break
                    if not self.authenticated:
                        raise MIError(MIResult.ACCESS_DENIED,
                                      f"{ep.host} refused the credentials for {ep.auth_name}")
                ctype, body = auth.seal_body(ctype, body)
            send["Content-Type"] = ctype
            status, rheaders, data = yield body, send
            if status == 401:
                self.authenticated = False
                raise MIError(MIResult.ACCESS_DENIED,
                              f"{ep.host} refused the credentials (HTTP 401): the user name or password is wrong, "
                              f"or the account may not use {ep.auth_name}")
            rtype = rheaders.get("content-type")
            if auth is not None:
                rtype, data = auth.open_body(rtype, data)
            return status, rtype, data
        except ClientAuthError as exc:
            raise MIError(MIResult.ACCESS_DENIED, f"authentication with {ep.host} failed: {exc}") from None


def _tune(sock: socket.socket | Any) -> None:
    """TCP_NODELAY, so our own request never waits on Nagle's algorithm."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass  # not TCP (a test's socketpair), or an OS that refuses: correctness does not depend on it


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


def quickack(sock: socket.socket | Any) -> None:
    """Ask Linux to acknowledge what arrives next at once instead of delaying the ACK ~40 ms.

    A server that writes its header and body in two writes without TCP_NODELAY (OMI does) holds the
    body under Nagle's algorithm until the header is acknowledged; a client in delayed-ACK mode would
    then stall each round trip. Linux drops quick-ACK mode on its own, so this is re-armed after each
    request is sent and after each read; elsewhere there is no such switch and nothing is done.
    """
    if _QUICKACK is not None and QUICKACK_ENABLED:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except (OSError, AttributeError):
            pass


QUICKACK_ENABLED = True  # a switch for bench/bench_splitwrite.py, to show the difference


class Connection:
    """A blocking kept-alive connection: a socket under a :class:`ClientChannel`."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.sock: socket.socket | None = None
        self.chan: ClientChannel | None = None
        self.state = _AuthState(endpoint)
        self.used = False
        self._steps: Generator[Post, Reply, Answer] | None = None  # the exchange begun, its answer unread

    def exchange(self, body: bytes, headers: dict[str, str]) -> Answer:
        if self._steps is not None:
            raise RuntimeError("the connection has a request whose answer is unread")
        if self.sock is None:
            self.state = self.state.fresh()  # a new TCP connection: NTLM/Kerberos shake hands again
        steps = self.state.exchange(body, headers)
        try:
            post = next(steps)
            while True:
                post = steps.send(self._post(*post))
        except StopIteration as done:
            self.used = True
            return done.value  # type: ignore[no-any-return]

    @property
    def pending(self) -> bool:
        """A request was written by :meth:`begin` and its answer not read yet."""
        return self._steps is not None

    def begin(self, body: bytes, headers: dict[str, str]) -> bool:
        """Write a request without waiting for its answer, which :meth:`finish` reads: the caller works
        (parses the previous answer) while the server does. Only on an open connection whose request is
        one POST (authenticated, or Basic, or none): False, and nothing written, otherwise.

        The body is sealed here and the answer opened in ``finish``, so with one request outstanding the
        sealed messages keep their order (NTLM/Kerberos sequence numbers). A failure to write closes the
        connection and raises, as :meth:`exchange` would."""
        if self.sock is None or self.chan is None or self._steps is not None or not self.state.ready:
            return False
        steps = self.state.exchange(body, headers)
        body, headers = next(steps)  # a ready state's first POST is the request itself
        self._send(body, headers)
        self._steps = steps
        return True

    def finish(self) -> Answer:
        """The answer to the request :meth:`begin` wrote (errors as from :meth:`exchange`)."""
        steps, self._steps = self._steps, None
        if steps is None:
            raise RuntimeError("finish() without begin()")
        try:
            steps.send(self._receive())
        except StopIteration as done:
            self.used = True
            return done.value  # type: ignore[no-any-return]
        # the authentication steps end once the request is answered: another POST asked for is a bug here
        self.close()
        raise RuntimeError("the authentication asked for another POST after the request was answered")

    def _connect(self) -> tuple[socket.socket, ClientChannel]:
        ep = self.endpoint
        host, port = ep.proxy or (ep.host, ep.port)
        sock = socket.create_connection((host, port), timeout=ep.timeout)
        try:
            _tune(sock)
            if ep.proxy is not None:
                data, tunnel = tunnel_request(ep.host, ep.port)
                sock.sendall(data)
                while (answer := tunnel_answer(tunnel, sock.recv(65536))) is None:
                    pass
                _tunnel_opened(ep, answer)
            if ep.tls is not None:
                sock = ep.tls.wrap_socket(sock, server_hostname=ep.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.chan = ClientChannel(ep.host_header, MAX_RESPONSE_BYTES)
        return sock, self.chan

    def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        self._send(body, headers)
        return self._receive()

    def _send(self, body: bytes, headers: dict[str, str]) -> None:
        if self.sock is None or self.chan is None:
            sock, chan = self._connect()
        else:
            sock, chan = self.sock, self.chan
        try:
            sock.sendall(chan.request("POST", self.endpoint.path, headers, body))
            quickack(sock)
        except BaseException:
            self.close()
            raise

    def _receive(self) -> Reply:
        sock, chan = self.sock, self.chan
        if sock is None or chan is None:  # closed since the request was written (an abort closes nothing)
            raise ConnectionAbortedError("the connection was closed before its answer was read")
        try:
            reply = chan.next_response() if chan.started else NEED_DATA  # (nothing buffered: read first)
            while reply is NEED_DATA:
                chan.feed(sock.recv(65536))
                quickack(sock)
                reply = chan.next_response()
        except BadResponse as exc:
            self.close()
            raise MIError(MIResult.FAILED, f"{self.endpoint.host}: {exc}") from None
        except BaseException:
            self.close()
            raise
        if not chan.reusable:
            self.close()
        return reply  # type: ignore[return-value]

    def abort(self) -> None:
        """Cut the connection from another thread: an exchange blocked on it fails at once."""
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        sock, self.sock, self.chan, self._steps = self.sock, None, None, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass


class AsyncConnection:
    """The same connection on asyncio streams: no thread per operation."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.state = _AuthState(endpoint)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.chan: ClientChannel | None = None
        self.sock: Any = None  # the transport's socket, for TCP options
        self.loop = asyncio.get_running_loop()  # streams belong to one event loop
        self.used = False
        self._steps: Generator[Post, Reply, Answer] | None = None  # the exchange begun, its answer unread

    def begin(self, body: bytes, headers: dict[str, str]) -> bool:
        """:meth:`Connection.begin` on streams: hand the request to the transport now (it writes what the
        socket takes at once) and read the answer later with :meth:`finish`; False, nothing written, on a
        connection that must connect or authenticate first."""
        if self.writer is None or self.writer.is_closing() or self.chan is None or self._steps is not None \
                or not self.state.ready:
            return False
        steps = self.state.exchange(body, headers)
        body, headers = next(steps)  # a ready state's first POST is the request itself
        try:
            self.writer.write(self.chan.request("POST", self.endpoint.path, headers, body))
        except BaseException:
            self.close()
            raise
        self._steps = steps
        return True

    async def finish(self) -> Answer:
        """The answer to the request :meth:`begin` handed over (errors as from :meth:`exchange`)."""
        steps, self._steps = self._steps, None
        if steps is None:
            raise RuntimeError("finish() without begin()")
        try:
            steps.send(await asyncio.wait_for(self._receive(), self.endpoint.timeout))
        except StopIteration as done:
            self.used = True
            return done.value  # type: ignore[no-any-return]
        self.close()
        raise RuntimeError("the authentication asked for another POST after the request was answered")

    async def exchange(self, body: bytes, headers: dict[str, str]) -> Answer:
        if self._steps is not None:
            raise RuntimeError("the connection has a request whose answer is unread")
        if self.writer is None or self.writer.is_closing():
            self.state = self.state.fresh()  # a new TCP connection: NTLM/Kerberos shake hands again
        steps = self.state.exchange(body, headers)
        try:
            post = next(steps)
            while True:
                reply = await asyncio.wait_for(self._post(*post), self.endpoint.timeout)
                post = steps.send(reply)
        except StopIteration as done:
            self.used = True
            return done.value  # type: ignore[no-any-return]

    async def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        if self.writer is None or self.writer.is_closing() or self.chan is None:
            await self._connect()
        writer, chan = self.writer, self.chan
        assert writer is not None and chan is not None
        try:
            writer.write(chan.request("POST", self.endpoint.path, headers, body))
            await writer.drain()
        except BaseException:
            self.close()
            raise
        return await self._receive()

    async def _receive(self) -> Reply:
        reader, chan = self.reader, self.chan
        if reader is None or chan is None:  # closed since the request was handed over
            raise ConnectionAbortedError("the connection was closed before its answer was read")
        try:
            quickack(self.sock)
            reply = chan.next_response() if chan.started else NEED_DATA
            while reply is NEED_DATA:
                chan.feed(await reader.read(65536))
                quickack(self.sock)
                reply = chan.next_response()
        except BadResponse as exc:
            self.close()
            raise MIError(MIResult.FAILED, f"{self.endpoint.host}: {exc}") from None
        except BaseException:
            self.close()
            raise
        if not chan.reusable:
            self.close()
        return reply  # type: ignore[return-value]

    async def _connect(self) -> None:
        self.close()
        ep = self.endpoint
        if ep.proxy is None:
            self.reader, self.writer = await asyncio.open_connection(
                ep.host, ep.port, ssl=ep.tls, server_hostname=ep.host if ep.tls is not None else None)
        else:
            self.reader, self.writer = await asyncio.open_connection(*ep.proxy)
            try:
                await self._tunnel()
            except BaseException:
                self.close()
                raise
        self.sock = self.writer.get_extra_info("socket")
        _tune(self.sock)
        self.chan = ClientChannel(ep.host_header, MAX_RESPONSE_BYTES)

    async def _tunnel(self) -> None:
        ep = self.endpoint
        assert self.reader is not None and self.writer is not None
        data, tunnel = tunnel_request(ep.host, ep.port)
        self.writer.write(data)
        await self.writer.drain()
        while (answer := tunnel_answer(tunnel, await self.reader.read(65536))) is None:
            pass
        _tunnel_opened(ep, answer)
        if ep.tls is not None:
            start_tls = getattr(self.writer, "start_tls", None)  # Python 3.11+
            if start_tls is None:
                raise MIError(MIResult.NOT_SUPPORTED, "HTTPS through a proxy from asyncio needs Python 3.11")
            await start_tls(ep.tls, server_hostname=ep.host)

    def close(self) -> None:
        writer, self.writer, self.chan, self._steps = self.writer, None, None, None
        if writer is not None:
            if self.loop.is_closed():  # its loop is gone: the transport closes its socket when collected
                return
            try:
                writer.close()
            except RuntimeError:
                pass


def _tunnel_opened(ep: Endpoint, answer: tuple[int, str, bytes]) -> None:
    status, reason, early = answer
    assert ep.proxy is not None
    if not 200 <= status < 300:
        raise MIError(MIResult.FAILED, f"the proxy {ep.proxy[0]}:{ep.proxy[1]} refused a tunnel to "
                                       f"{ep.host}:{ep.port} ({status} {reason})".rstrip())
    if early:  # nothing may come from the far end before we speak (TLS or HTTP: the client talks first)
        raise MIError(MIResult.FAILED, f"the proxy {ep.proxy[0]}:{ep.proxy[1]} sent bytes before the tunnel "
                                       "was used")

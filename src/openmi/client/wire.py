"""HTTP for remote sessions: one kept-alive connection, blocking or asyncio, and the authentication of
each connection written once, as a generator of POSTs that both kinds of connection drive.

A connection authenticates once (NTLM/Negotiate/Kerberos legs on empty POSTs, as WinRM clients do;
Basic on every request), then seals and opens message bodies when the scheme encrypts.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import ssl
from collections.abc import Generator
from typing import Any

from ..cim.errors import MIError
from ..cim.types import MIResult

Post = tuple[bytes, dict[str, str]]  # body, headers
Reply = tuple[int, dict[str, str], bytes]  # status, lower-case headers, body
Answer = tuple[int, "str | None", bytes]  # status, content type, plaintext body

RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError,
             asyncio.IncompleteReadError)


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


class Connection:
    """A blocking kept-alive connection (http.client)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        host, port = endpoint.proxy or (endpoint.host, endpoint.port)
        if endpoint.tls is not None:
            self.http: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=endpoint.timeout, context=endpoint.tls)
        else:
            self.http = http.client.HTTPConnection(host, port, timeout=endpoint.timeout)
        if endpoint.proxy is not None:
            self.http.set_tunnel(endpoint.host, endpoint.port)
        self.state = _AuthState(endpoint)
        self.used = False

    def exchange(self, body: bytes, headers: dict[str, str]) -> Answer:
        steps = self.state.exchange(body, headers)
        try:
            post = next(steps)
            while True:
                post = steps.send(self._post(*post))
        except StopIteration as done:
            self.used = True
            return done.value  # type: ignore[no-any-return]

    def _post(self, body: bytes, headers: dict[str, str]) -> Reply:
        self.http.request("POST", self.endpoint.path, body, headers)
        resp = self.http.getresponse()
        data = resp.read()
        rheaders = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.http.close()
        return resp.status, rheaders, data

    def abort(self) -> None:
        """Cut the connection from another thread: an exchange blocked on it fails at once."""
        sock = self.http.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.http.close()


class AsyncConnection:
    """The same connection on asyncio streams: no thread per operation."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.state = _AuthState(endpoint)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.loop = asyncio.get_running_loop()  # streams belong to one event loop
        self.used = False

    async def exchange(self, body: bytes, headers: dict[str, str]) -> Answer:
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
        ep = self.endpoint
        if self.writer is None or self.writer.is_closing():
            await self._connect()
        assert self.reader is not None and self.writer is not None
        head = [f"POST {ep.path} HTTP/1.1", f"Host: {ep.host}:{ep.port}", f"Content-Length: {len(body)}"]
        head.extend(f"{k}: {v}" for k, v in headers.items() if k.lower() != "content-length")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise MIError(MIResult.FAILED, f"{ep.host} sent a malformed HTTP status line")
        status = int(parts[1])
        rheaders: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            key = k.strip().lower()
            rheaders[key] = f"{rheaders[key]}, {v.strip()}" if key in rheaders else v.strip()
        if rheaders.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(chunks)
        else:
            data = await self.reader.readexactly(int(rheaders.get("content-length", "0")))
        if rheaders.get("connection", "").lower() == "close":
            self.close()
        return status, rheaders, data

    async def _connect(self) -> None:
        ep = self.endpoint
        if ep.proxy is None:
            self.reader, self.writer = await asyncio.open_connection(
                ep.host, ep.port, ssl=ep.tls, server_hostname=ep.host if ep.tls is not None else None)
            return
        self.reader, self.writer = await asyncio.open_connection(*ep.proxy)
        self.writer.write(f"CONNECT {ep.host}:{ep.port} HTTP/1.1\r\nHost: {ep.host}:{ep.port}\r\n\r\n".encode())
        await self.writer.drain()
        status = (await self.reader.readline()).split(b" ", 2)
        while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        if len(status) < 2 or status[1] != b"200":
            self.close()
            said = b" ".join(status[1:]).decode(errors="replace").strip()
            raise MIError(MIResult.FAILED, f"the proxy {ep.proxy[0]}:{ep.proxy[1]} refused a tunnel to "
                                           f"{ep.host}:{ep.port} ({said})")
        if ep.tls is not None:
            start_tls = getattr(self.writer, "start_tls", None)  # Python 3.11+
            if start_tls is None:
                self.close()
                raise MIError(MIResult.NOT_SUPPORTED, "HTTPS through a proxy from asyncio needs Python 3.11")
            await start_tls(ep.tls, server_hostname=ep.host)

    def close(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            if self.loop.is_closed():  # its loop is gone: the transport closes its socket when collected
                return
            try:
                writer.close()
            except RuntimeError:
                pass

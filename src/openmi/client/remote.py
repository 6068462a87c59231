"""Remote sessions: the MI operations carried over WS-Management (to openmi serve, OMI or WinRM).

A request record becomes a *plan* (:func:`openmi.protocol.wsman.operations.plan`, driven by the table of
operation kinds that the WS-Man server uses too): a generator that asks for WS-Man exchanges and hands
back results, written once. ``execute`` drives it over blocking connections, ``execute_async`` over asyncio streams
(no thread per operation). Enumerations are Enumerate (optimized) then Pull, handed on as they arrive
so memory stays flat; a stream closed early sends Release. With :data:`PULL_AHEAD`, ``execute`` sends each
Pull after the first before parsing the page that named its context (``execute_async`` too).
Connections are pooled per session and authenticated once each; only idempotent requests (Get, Enumerate,
Pull, Identify) are retried, once, when a kept-alive connection turns out to be dead.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple

from ..cim import requests as rq
from ..cim.cancel import CancelToken
from ..cim.errors import MIError
from ..cim.namespaces import normalize_namespace
from ..cim.types import MIResult
from ..protocol import wsman
from ..protocol.wsman import operations as kinds
from .classes import ClassCache
from .options import AuthType, DestinationOptions
from .wire import RETRYABLE, Answer, AsyncConnection, Connection, Endpoint

# Whether an enumeration sends its next Pull before parsing the current page (see WSManTransport._pull_ahead).
# The server then works on one page more than a reader that stopped has taken: a reader that lags holds its
# operation's buffer plus the page being handed on, and one more page waits unread on the connection.
PULL_AHEAD = True

# What a connection may raise: MIError from authentication, the rest from the wire or a garbled answer.
_WIRE_ERRORS = (MIError, OSError, TimeoutError, ValueError, EOFError, http.client.HTTPException)


class WSManTransport:
    """A session's way to a WS-Man destination."""

    def __init__(self, destination: str, options: DestinationOptions) -> None:
        host, _, port = destination.rpartition(":") if destination.count(":") == 1 else ("", "", "")
        host = host or destination
        if port.isdigit():
            options = options.clone()
            options.port = int(port)
        self.host = host
        self.options = options
        path = options.url_prefix or "/wsman"
        self.to = f"{options.transport}://{host}:{options.port}{path}"
        self.style = wsman.UriStyle.WMI if options.uri_style == "wmi" else wsman.UriStyle.DMTF
        creds = options.credentials[0] if options.credentials else None
        tls = self._tls_context() if options.transport == "https" else None
        self.endpoint = Endpoint(host, options.port, path, tls, options.timeout or 60.0, self._new_auth,
                                 creds.auth_type if creds else "no authentication", _proxy(options.proxy))
        self._new_auth()  # bad credentials fail when the session is made, not at the first operation
        self._idle: list[Connection] = []
        self._aidle: list[AsyncConnection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.classes = ClassCache()  # declarations that type results (options.type_results)

    def _tls_context(self) -> ssl.SSLContext:
        o = self.options
        try:
            ctx = ssl.create_default_context(cafile=o.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise MIError(MIResult.INVALID_PARAMETER, f"cannot read the CA file {o.ca_file}: {exc}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if o.skip_cn_check or o.skip_ca_check:
            ctx.check_hostname = False
        if o.skip_ca_check:
            ctx.verify_mode = ssl.CERT_NONE
        if o.cert_file:
            ctx.load_cert_chain(o.cert_file, o.key_file)
        return ctx

    def _new_auth(self) -> Any:
        creds = self.options.credentials[0] if self.options.credentials else None
        if creds is None or creds.auth_type in (AuthType.NONE, AuthType.CLIENT_CERTS):
            return None
        from .auth import ClientAuth, ClientAuthError

        scheme = {AuthType.BASIC: "basic", AuthType.NTLM: "ntlm", AuthType.NEGO_WITH_CREDS: "negotiate",
                  AuthType.KERBEROS: "kerberos", AuthType.DEFAULT: "negotiate",
                  AuthType.CREDSSP: "credssp"}.get(creds.auth_type)
        if scheme is None:
            raise MIError(MIResult.NOT_SUPPORTED, f"authentication {creds.auth_type} is not supported")
        enc = self.options.encryption
        plain_http = self.options.transport == "http"
        if enc == "always" and scheme == "basic" and plain_http:
            raise MIError(MIResult.INVALID_PARAMETER,
                          "Basic authentication cannot encrypt messages; use HTTPS, NTLM, Negotiate or Kerberos")
        encrypt = scheme != "basic" and plain_http and enc != "never"
        try:
            return ClientAuth(scheme, creds.username or "", creds.password or "", domain=creds.domain,
                              hostname=self.host, encryption=encrypt)
        except (ClientAuthError, ValueError) as exc:
            raise MIError(MIResult.INVALID_PARAMETER, f"cannot authenticate to {self.host}: {exc}") from None

    def may_block(self, request: rq.Request) -> bool:
        return True  # every request is a network round trip

    def drop_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the idle connections that belong to ``loop`` (it is about to end; call it on that loop)."""
        with self._lock:
            gone = [c for c in self._aidle if c.loop is loop]
            self._aidle = [c for c in self._aidle if c.loop is not loop]
        for c in gone:
            c.close()

    def close(self) -> None:
        self.classes.clear()
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            aidle, self._aidle = self._aidle, []
        for c in idle:
            c.close()
        for a in aidle:
            a.close()

    # --- building a request and reading its answer (shared by both drivers) -------------------------
    def _prepare(self, req: wsman.Request, ctx: CancelToken | None) -> tuple[bytes, dict[str, str]]:
        o = self.options
        req.to = self.to
        req.uri_style = self.style
        req.max_envelope_size = o.max_envelope_size or None
        req.locale = o.ui_locale
        req.data_locale = o.data_locale
        if ctx is not None:
            left = ctx.seconds_left
            if left is not None:
                req.operation_timeout = max(left, 0.001)
        body = wsman.build_request(req, wrap_datetimes=self.style == wsman.UriStyle.WMI)
        headers = wsman.request_headers(req)
        if o.packet_encoding == "utf-16":
            body = _to_utf16(body)
            headers["Content-Type"] = "application/soap+xml;charset=UTF-16"
        return body, headers

    def _answer(self, req: wsman.Request, status: int, ctype: str | None, data: bytes) -> wsman.Response:
        if not data:
            raise MIError(MIResult.FAILED, f"{self.host} answered HTTP {status} with no body")
        # classes this session already holds type the answer as it is read (the rest are typed after)
        try:
            return wsman.parse_response(data, ctype, req,
                                        class_lookup=self.classes.get if self.options.type_results else None)
        except wsman.WSManFault as fault:
            if self.style is wsman.UriStyle.WMI and fault.result == MIResult.INVALID_NAMESPACE:
                fault.message += (" (a server that takes DMTF resource URIs with __cimnamespace, as OMI does, needs "
                                  "DestinationOptions(uri_style='dmtf') or OPENMI_URI_STYLE=dmtf)")
            raise

    def _take(self) -> Connection:
        with self._lock:
            if self._closed:
                raise MIError(MIResult.FAILED, "the session is closed")
            if self._idle:
                return self._idle.pop()
        return Connection(self.endpoint)

    def _give(self, conn: Connection | AsyncConnection) -> None:
        """Pool a connection that answered whole (at most 8 of each kind per session), else close it."""
        with self._lock:
            if not self._closed:
                if isinstance(conn, AsyncConnection):
                    if len(self._aidle) < 8:
                        self._aidle.append(conn)
                        return
                elif len(self._idle) < 8:
                    self._idle.append(conn)
                    return
        conn.close()

    def _broken(self, conn: Connection | AsyncConnection, exc: BaseException, can_retry: bool) -> None:
        """Drop a connection that failed: return to try again (a dead kept-alive connection under an
        idempotent request), else raise the MIError that names host and cause."""
        conn.close()
        if isinstance(exc, MIError):
            raise exc
        if can_retry and isinstance(exc, RETRYABLE):
            return
        raise self.endpoint.io_error(exc) from None

    def send(self, req: wsman.Request, ctx: CancelToken | None = None,
             inflight: _InFlight | None = None) -> wsman.Response:
        """One WS-Man exchange on a pooled blocking connection. The connection in use is kept in
        ``inflight`` meanwhile, so that cancelling the operation can cut it (abandoning the request)."""
        return self._answer(req, *self._exchange(req, ctx, inflight))

    def _exchange(self, req: wsman.Request, ctx: CancelToken | None, inflight: _InFlight | None,
                  ahead: _Ahead | None = None) -> Answer:
        """The raw answer to ``req`` (retried once on a dead kept-alive connection when idempotent). With
        ``ahead``, ``req`` was already written (or failed to be) on that connection: reading its answer is
        the first attempt, so an early Pull fails, retries and is cut exactly as one sent now."""
        body, headers = self._prepare(req, ctx) if ahead is None else (ahead.body, ahead.headers)
        attempts = 2 if kinds.is_idempotent(req) else 1
        for attempt in range(attempts):
            error: BaseException | None = None
            if ahead is not None:
                conn, error, written, ahead = ahead.conn, ahead.error, True, None
                reused = True  # it has just answered the page that named this Pull's context
            else:
                conn, written = self._take(), False
                reused = conn.used
            healthy = True
            try:
                if error is not None:  # writing the early request failed: that is this attempt's failure
                    raise error
                if written:
                    status, ctype, data = conn.finish()
                else:
                    if inflight is not None:
                        inflight.add(conn)  # raises the cancellation if the operation was already cut
                    status, ctype, data = conn.exchange(body, headers)
            except _WIRE_ERRORS as exc:
                if inflight is not None and inflight.is_cut:  # cut by cancel or timeout: that is the error
                    conn.close()
                    raise inflight.error() from exc
                self._broken(conn, exc, attempt + 1 < attempts and reused)
                continue
            except BaseException:
                conn.close()
                raise
            finally:
                if inflight is not None:
                    healthy = inflight.remove(conn)
            if healthy:
                self._give(conn)
            else:  # cut by a cancel as the answer came: never reuse it
                conn.close()
            return status, ctype, data
        raise AssertionError("unreachable")

    # --- enumerations overlapped: the next Pull goes out before the current page is parsed -------------
    def _page(self, req: wsman.Request, ctx: CancelToken, inflight: _InFlight,
              ahead: _Ahead | None) -> tuple[wsman.Request, Answer, _Ahead | None]:
        """The raw answer to an enumeration's Enumerate or Pull ``req`` (the request actually sent, the
        answer, and the next Pull already sent, if any). An early Pull that is the one the plan asks for
        answers it; one that is not (a page that the quick read and the parser saw differently) is settled
        and ``req`` sent as usual."""
        if ahead is not None and kinds.same_pull(ahead.req, req):
            sent: wsman.Request = ahead.req
            answer = self._exchange(sent, ctx, inflight, ahead)
        elif ahead is not None:
            # the quick read and the parser saw the page differently: the early Pull may have taken a page the
            # plan will never hand on, so stop (releasing what the server holds) rather than skip it silently
            release = self._settle(ahead, inflight)
            if release is not None:
                self._release(release)
            raise _read_two_ways()
        else:
            sent = req
            answer = self._exchange(sent, ctx, inflight)
        return sent, answer, self._pull_ahead(sent, answer, ctx, inflight)

    def _pull_ahead(self, sent: wsman.Request, answer: Answer, ctx: CancelToken,
                    inflight: _InFlight) -> _Ahead | None:
        """Send the Pull that follows the page ``answer`` holds, before that page is parsed, when a quick
        read of its bytes finds the context and no end (None otherwise: the plan's Pull goes out as usual).
        It goes on the connection that just answered (the pool's last), so that the server serves it while
        this client parses and hands on the page; never once the operation is cancelled.

        Only a Pull's page is overlapped, not the Enumerate's: the first page is where a session fetches the
        class declarations that type its results (GetClass), and those keep going out before the first
        Pull, in the order peers (and recorded replays of them) have always seen."""
        pull = _next_pull(sent, answer, ctx)
        if pull is None or inflight.is_cut:
            return None
        try:
            body, headers = self._prepare(pull, ctx)
            conn = self._take()
        except MIError:  # (the session closed meanwhile …): the plan's own Pull meets the error, after the page
            return None
        try:
            inflight.add(conn)
        except MIError:  # cancelled just now: send nothing more (the plan raises the cancellation)
            self._give(conn)
            return None
        error: BaseException | None = None
        try:
            begun = conn.begin(body, headers)
        except _WIRE_ERRORS as exc:  # the connection is closed; the plan's Pull meets this error (and retries)
            begun, error = True, exc
        except BaseException:
            inflight.remove(conn)
            conn.close()
            raise
        if not begun:  # a connection that must connect or authenticate first: the plan's Pull goes as usual
            inflight.remove(conn)
            self._give(conn)
            return None
        return _Ahead(pull, conn, body, headers, error)

    def _settle(self, ahead: _Ahead, inflight: _InFlight) -> wsman.Request | None:
        """Finish an early Pull the plan did not take (the enumeration stopped or failed meanwhile): read
        its answer so that the connection goes back to the pool whole, or drop the connection if the
        operation was cut or the answer cannot be read. Returns the Release the enumeration then needs:
        that of the context its answer names, or of the one the Pull named when the answer says nothing
        clear (a Release of a finished enumeration only draws a fault, which is ignored)."""
        conn = ahead.conn
        fallback = kinds.release_request(ahead.req, ahead.req.context)
        if ahead.error is not None or inflight.is_cut:
            inflight.remove(conn)
            conn.close()
            return fallback
        try:
            answer = conn.finish()
        except _WIRE_ERRORS:  # never pooled half-read; the server may hold the context still
            inflight.remove(conn)
            conn.close()
            return fallback
        except BaseException:
            inflight.remove(conn)
            conn.close()
            raise
        if inflight.remove(conn):
            self._give(conn)
        else:
            conn.close()
        return self._release_after(ahead.req, answer)

    async def send_async(self, req: wsman.Request, ctx: CancelToken | None = None) -> wsman.Response:
        """One WS-Man exchange on a pooled asyncio connection."""
        return self._answer(req, *await self._exchange_async(req, ctx))

    def _take_async(self) -> AsyncConnection:
        with self._lock:
            if self._closed:
                raise MIError(MIResult.FAILED, "the session is closed")
            loop = asyncio.get_running_loop()
            mine = [c for c in self._aidle if c.loop is loop]
            for stale in [c for c in self._aidle if c.loop.is_closed()]:
                self._aidle.remove(stale)
                stale.close()
            if mine:
                self._aidle.remove(mine[-1])
                return mine[-1]
        return AsyncConnection(self.endpoint)

    async def _exchange_async(self, req: wsman.Request, ctx: CancelToken | None,
                              ahead: _AsyncAhead | None = None) -> Answer:
        """The raw answer to ``req`` on a pooled asyncio connection (retried once on a dead kept-alive
        connection when idempotent); with ``ahead``, ``req`` was handed to that connection already, and
        reading its answer is the first attempt (as in :meth:`_exchange`)."""
        body, headers = self._prepare(req, ctx) if ahead is None else (ahead.body, ahead.headers)
        attempts = 2 if kinds.is_idempotent(req) else 1
        for attempt in range(attempts):
            if ahead is not None:
                conn, written, ahead = ahead.conn, True, None
                reused = True  # it has just answered the page that named this Pull's context
            else:
                conn, written = self._take_async(), False
                reused = conn.used
            try:
                status, ctype, data = await (conn.finish() if written else conn.exchange(body, headers))
            except _WIRE_ERRORS as exc:
                self._broken(conn, exc, attempt + 1 < attempts and reused)
                continue
            except BaseException:  # cancelled mid-exchange: the connection is in an unknown state
                conn.close()
                raise
            self._give(conn)
            return status, ctype, data
        raise AssertionError("unreachable")

    async def _page_async(self, req: wsman.Request, ctx: CancelToken,
                          ahead: _AsyncAhead | None) -> tuple[wsman.Request, Answer, _AsyncAhead | None]:
        """:meth:`_page` for an event loop: the next Pull is handed to the connection before the page is
        parsed, and the server serves it while this loop parses, types and hands on the page."""
        if ahead is not None and kinds.same_pull(ahead.req, req):
            sent: wsman.Request = ahead.req
            answer = await self._exchange_async(sent, ctx, ahead)
        elif ahead is not None:  # the quick read and the parser disagree: stop rather than skip a page
            release = await self._settle_async(ahead)
            if release is not None:
                try:
                    await self.send_async(release)
                except MIError:
                    pass  # (the enumeration fails anyway, with the error below)
            raise _read_two_ways()
        else:
            sent = req
            answer = await self._exchange_async(sent, ctx)
        return sent, answer, self._pull_ahead_async(sent, answer, ctx)

    def _pull_ahead_async(self, sent: wsman.Request, answer: Answer, ctx: CancelToken) -> _AsyncAhead | None:
        pull = _next_pull(sent, answer, ctx)
        if pull is None:
            return None
        try:
            body, headers = self._prepare(pull, ctx)
            conn = self._take_async()
        except MIError:  # (the session closed meanwhile): the plan's own Pull meets the error
            return None
        try:
            begun = conn.begin(body, headers)
        except _WIRE_ERRORS:  # (closed by begin): the plan's own Pull goes as usual, on another connection
            return None
        if not begun:
            self._give(conn)
            return None
        return _AsyncAhead(pull, conn, body, headers)

    def _release_after(self, pull: wsman.PullRequest, answer: Answer) -> wsman.Request | None:
        """The Release an enumeration needs after an early ``pull`` the plan did not take was answered: that
        of the context the answer names, of the one the Pull named when the answer says nothing clear (a
        fault, an unreadable page: a Release of a finished enumeration only draws a fault, which is
        ignored), or none when the answer ended the enumeration."""
        status, _, data = answer
        context = _peek_page(data, True) if status == 200 else None
        if context is not None:
            return kinds.release_request(pull, context)
        try:
            reply = self._answer(pull, *answer)
        except MIError:
            return kinds.release_request(pull, pull.context)
        return kinds.still_open(pull, reply, None)

    async def _settle_async(self, ahead: _AsyncAhead) -> wsman.Request | None:
        """:meth:`_settle` for an event loop: read the early Pull's answer (the connection goes back whole)
        and say which context to Release."""
        conn = ahead.conn
        fallback = kinds.release_request(ahead.req, ahead.req.context)
        try:
            answer = await conn.finish()
        except _WIRE_ERRORS:
            conn.close()
            return fallback
        except BaseException:
            conn.close()
            raise
        self._give(conn)
        return self._release_after(ahead.req, answer)

    def identify(self) -> wsman.IdentifyResponse:
        r = self.send(wsman.IdentifyRequest())
        assert isinstance(r, wsman.IdentifyResponse)
        return r

    # --- typed results: class declarations fetched once per session ------------------------------
    def _got_class(self, namespace: str, name: str, r: wsman.Response | None) -> None:
        cls = r.cls if isinstance(r, wsman.GetClassResponse) else None
        if cls is not None:
            cls.namespace = namespace or None
        self.classes.put(namespace, name, cls)

    def _typed(self, item: Any, request: rq.Request, ctx: CancelToken,
               inflight: _InFlight | None = None) -> Any:
        """A result typed with its class declarations, fetching the ones this session lacks."""
        ns = None if isinstance(request, rq.TestConnection) else normalize_namespace(request.namespace)
        while need := self.classes.missing(item, ns, request):
            for cns, name in need:
                try:
                    r: wsman.Response | None = self.send(kinds.get_class_request(cns or None, name), ctx, inflight)
                except wsman.WSManFault:  # the server will not say: values stay as the wire gave them
                    r = None
                self._got_class(cns, name, r)
        return self.classes.typed(item, ns, request)

    async def _typed_async(self, item: Any, request: rq.Request, ctx: CancelToken) -> Any:
        ns = None if isinstance(request, rq.TestConnection) else normalize_namespace(request.namespace)
        while need := self.classes.missing(item, ns, request):
            for cns, name in need:
                try:
                    r: wsman.Response | None = await self.send_async(kinds.get_class_request(cns or None, name), ctx)
                except wsman.WSManFault:
                    r = None
                self._got_class(cns, name, r)
        return self.classes.typed(item, ns, request)

    # --- the two drivers of a plan ---------------------------------------------------------------
    def _release(self, req: wsman.Request) -> None:
        """Send the Release or Unsubscribe a stream owes the server, even when the session was closed
        meanwhile (on a connection of its own then): otherwise the server holds it until it expires."""
        try:
            with self._lock:
                closed = self._closed
            if not closed:
                self.send(req)
                return
            body, headers = self._prepare(req, None)
            conn = Connection(self.endpoint)
            try:
                conn.exchange(body, headers)
            finally:
                conn.close()
        except _WIRE_ERRORS:
            pass

    def _sink(self, destination: str | None, port: int | None) -> Any:
        """The listener a push-mode subscription's events are delivered to."""
        from .sink import EventSink, local_address

        host = destination or local_address(self.host, self.options.port)
        try:
            return EventSink(host, port or 0)
        except OSError as exc:
            raise MIError(MIResult.INVALID_PARAMETER,
                          f"cannot listen for pushed events on {host}:{port or 0}: {exc.strerror or exc}") from None

    def _wait_cap(self) -> float:
        """How long a subscription's Pull may wait on the server: well under this session's read timeout."""
        return max(1.0, (self.options.timeout or 60.0) * 0.5)

    def _for_wire(self, request: rq.Request) -> rq.Request:
        """The request as this destination takes it. A WQL ``ASSOCIATORS OF`` / ``REFERENCES OF`` query sent
        with DMTF resource URIs goes as the association filter (an AssociatorInstances / ReferenceInstances):
        OMI answers the query form INVALID_QUERY, and openmi serve takes both; WinRM (WMI URIs) takes the
        query as it is. Schema forms and qualifier filters, which the association filter cannot say, go as
        written."""
        if self.style is not wsman.UriStyle.DMTF or type(request) is not rq.QueryInstances:
            return request
        from ..cim.objectpath import parse_object_path
        from ..cim.query import AssocQuery, QueryError, dialect_name, parse

        if dialect_name(request.dialect) != "WQL" or not isinstance(request.query, str):
            return request
        try:
            q = parse(request.query, "WQL")
            if not isinstance(q, AssocQuery) or q.class_defs_only or q.schema_only or q.required_qualifier \
                    or q.required_assoc_qualifier:
                return request
            source = parse_object_path(q.object_path)
        except (QueryError, ValueError, MIError):
            return request  # (the server says what is wrong with it)
        namespace = source.namespace or request.namespace
        if q.kind == "associators":
            return rq.AssociatorInstances(
                namespace, instance=source, assoc_class=q.assoc_class, result_class=q.result_class, role=q.role,
                result_role=q.result_role, keys_only=q.keys_only, flags=request.flags, options=request.options,
                resource_uri=request.resource_uri, resource_uri_prefix=request.resource_uri_prefix)
        return rq.ReferenceInstances(
            namespace, instance=source, result_class=q.result_class, role=q.role, keys_only=q.keys_only,
            flags=request.flags, options=request.options, resource_uri=request.resource_uri,
            resource_uri_prefix=request.resource_uri_prefix)

    def execute(self, request: rq.Request, ctx: CancelToken) -> Iterator[Any]:
        plan = kinds.plan(self._for_wire(request), ctx, self.options.max_elements, self._wait_cap())
        reply: Any = None
        failed: MIError | None = None
        open_enum: wsman.Request | None = None
        # an enumeration's pages overlap (the next Pull is on its way while this one is parsed); a
        # subscription's Pull may wait long on the server for events, and is sent only when asked for
        pages = PULL_AHEAD and not isinstance(request, rq.Subscribe)
        ahead: _Ahead | None = None
        inflight = _InFlight(ctx)
        woken = threading.Event()
        ctx.register_cancel(inflight.cut)
        ctx.register_cancel(lambda _reason: woken.set())
        try:
            while True:
                try:
                    if failed is not None:  # the plan hears what went wrong (a subscription reconnects)
                        err, failed = failed, None
                        kind, obj = plan.throw(err)
                    else:
                        kind, obj = plan.send(reply)
                except StopIteration:
                    return
                reply = None
                if kind == "send":
                    try:
                        if pages and isinstance(obj, (wsman.EnumerateRequest, wsman.PullRequest)):
                            taken, ahead = ahead, None
                            obj, answer, ahead = self._page(obj, ctx, inflight, taken)
                            reply = self._answer(obj, *answer)
                        else:
                            reply = self.send(obj, ctx, inflight)
                    except MIError as exc:
                        failed = exc
                        continue
                    open_enum = kinds.still_open(obj, reply, open_enum)
                elif kind == "sleep":
                    woken.wait(obj)
                elif kind == "listen":
                    reply = self._sink(*obj)
                elif kind == "recv":
                    reply = obj[0].get(obj[1])
                elif isinstance(obj, rq.IndicationItem):
                    if obj.machine_id is None:  # WS-Man names no origin in a Pull: the host that sent it
                        obj = obj._replace(machine_id=self.host)
                    yield obj._replace(instance=self._typed(obj.instance, request, ctx, inflight)) \
                        if self.options.type_results else obj
                elif self.options.type_results and obj is not rq.STARTED:
                    yield self._typed(obj, request, ctx, inflight)
                else:
                    yield obj
        finally:
            plan.close()
            if ahead is not None:  # a Pull went out early: its answer is read, and names the context to release
                open_enum = self._settle(ahead, inflight)
            if open_enum is not None:  # stopped early: let the server drop the enumeration or subscription
                self._release(open_enum)

    async def execute_async(self, request: rq.Request, ctx: CancelToken) -> AsyncIterator[Any]:
        plan = kinds.plan(self._for_wire(request), ctx, self.options.max_elements, self._wait_cap())
        reply: Any = None
        failed: MIError | None = None
        open_enum: wsman.Request | None = None
        pages = PULL_AHEAD and not isinstance(request, rq.Subscribe)  # (as in execute)
        ahead: _AsyncAhead | None = None
        try:
            while True:
                try:
                    if failed is not None:
                        err, failed = failed, None
                        kind, obj = plan.throw(err)
                    else:
                        kind, obj = plan.send(reply)
                except StopIteration:
                    return
                reply = None
                if kind == "send":
                    try:
                        if pages and isinstance(obj, (wsman.EnumerateRequest, wsman.PullRequest)):
                            taken, ahead = ahead, None
                            obj, answer, ahead = await self._page_async(obj, ctx, taken)
                            reply = self._answer(obj, *answer)
                        else:
                            reply = await self.send_async(obj, ctx)
                    except MIError as exc:
                        failed = exc
                        continue
                    open_enum = kinds.still_open(obj, reply, open_enum)
                elif kind == "sleep":
                    await asyncio.sleep(obj)
                elif kind == "listen":
                    reply = self._sink(*obj)
                elif kind == "recv":
                    reply = await obj[0].aget(obj[1])  # (waits on this loop: no thread per push subscription)
                elif isinstance(obj, rq.IndicationItem):
                    if obj.machine_id is None:
                        obj = obj._replace(machine_id=self.host)
                    yield obj._replace(instance=await self._typed_async(obj.instance, request, ctx)) \
                        if self.options.type_results else obj
                elif self.options.type_results and obj is not rq.STARTED:
                    yield await self._typed_async(obj, request, ctx)
                else:
                    yield obj
        finally:
            plan.close()
            if ahead is not None:  # a Pull went out early: read its answer; it names the context to release
                if ctx.cancelled:  # (cut short: drop its connection, do not wait for its page)
                    ahead.conn.close()
                    open_enum = kinds.release_request(ahead.req, ahead.req.context)
                else:
                    open_enum = await self._settle_async(ahead)
            if open_enum is not None:
                try:
                    await self.send_async(open_enum)
                except MIError:
                    pass


def _next_pull(sent: wsman.Request, answer: Answer, ctx: CancelToken) -> wsman.PullRequest | None:
    """The Pull that follows the page ``answer`` holds, when ``sent`` was a Pull, a quick read of the page's
    bytes finds its context and no end, and the operation is not cancelled; else None."""
    status, _, data = answer
    if status != 200 or not isinstance(sent, wsman.PullRequest) or ctx.cancelled:
        return None
    context = _peek_page(data, True)
    return None if context is None else kinds.next_pull(sent, context)


def _read_two_ways() -> MIError:
    """The error of an enumeration whose early Pull the plan did not take: the quick read and the parser saw
    the page differently, so the early Pull may have taken a page the plan will never hand on; the enumeration
    stops (after its Release) rather than skip it silently."""
    return MIError(MIResult.FAILED, "an enumeration page read two ways (the next Pull went out for another context "
                                    "than the page names): the enumeration stops rather than skip a page")


class _AsyncAhead(NamedTuple):
    """A Pull handed to an asyncio connection before the page naming its context was parsed."""

    req: wsman.PullRequest
    conn: AsyncConnection
    body: bytes
    headers: dict[str, str]


class _Ahead(NamedTuple):
    """A Pull written before the page naming its context was parsed; its answer not read yet."""

    req: wsman.PullRequest
    conn: Connection
    body: bytes
    headers: dict[str, str]
    error: BaseException | None  # writing it failed (the connection is closed): the Pull's first attempt failed


# A quick, strict read of an enumeration page's raw bytes: the context that the Pull after it needs and
# whether the page ends the enumeration, before the page is parsed. It matches only what openmi, OMI and
# WinRM write, in its place: the response's first child right after the Body's start tag, and the closing
# tags at the very end of the message; anything else (a fault, UTF-16, an entity or an element in the
# context, a comment at the end, EndOfSequence away from the end) is doubt, and the plan's own Pull goes
# out after the page is parsed. What is read is only a guess: the early Pull serves the plan only if the
# parsed page asks for the same one.
_P = rb"(?:[A-Za-z_][\w.-]*:)?"  # any prefix (or none): the parser does not check namespaces here either
_ATTRS = rb"(?:\s[^<>]*)?"
_HEAD = re.compile(
    rb"<" + _P + rb"Body" + _ATTRS + rb">\s*<" + _P + rb"(PullResponse|EnumerateResponse)" + _ATTRS + rb">\s*"
    rb"(?:<" + _P + rb"Expires" + _ATTRS + rb">[^<]*</" + _P + rb"Expires\s*>\s*)?"
    rb"<" + _P + rb"EnumerationContext" + _ATTRS + rb">([^<&\r]*)</" + _P + rb"EnumerationContext\s*>")
_TAIL = re.compile(
    rb"(?:(</" + _P + rb"(?:Items|EnumerationContext)\s*>)|<" + _P + rb"EndOfSequence\s*/>|<" + _P
    + rb"EndOfSequence\s*></" + _P + rb"EndOfSequence\s*>)\s*</" + _P + rb"(PullResponse|EnumerateResponse)\s*>"
    rb"\s*</" + _P + rb"Body\s*>\s*</" + _P + rb"Envelope\s*>\s*\Z")
_HEAD_WITHIN = 64 * 1024  # the SOAP header before the body: WinRM's and OMI's take a few KiB
_TAIL_WITHIN = 1024


def _peek_page(data: bytes, pull: bool) -> str | None:
    """The context a PullResponse (``pull``) or EnumerateResponse in ``data`` names if it does not end the
    enumeration; None when it ends it, names none, or the bytes are not plainly such a page."""
    head = _HEAD.search(data, 0, _HEAD_WITHIN)
    if head is None:
        return None
    name = b"PullResponse" if pull else b"EnumerateResponse"
    tail = _TAIL.search(data, max(head.end(2), len(data) - _TAIL_WITHIN))
    if tail is None or tail.group(1) is None or head.group(1) != name or tail.group(2) != name:
        return None
    context = head.group(2).strip()
    try:
        return context.decode("ascii") or None
    except UnicodeDecodeError:  # a context beyond ASCII: leave it to the parser (no early Pull)
        return None


class _InFlight:
    """The connection one operation's request is waiting on, so that cancel can cut it."""

    def __init__(self, token: CancelToken) -> None:
        self._token = token
        self._lock = threading.Lock()
        self._conns: list[Connection] = []
        self._cut = False

    def add(self, conn: Connection) -> None:
        with self._lock:
            if not self._cut:
                self._conns.append(conn)
                return
        raise self.error()  # cancelled before it was sent: never send it

    @property
    def is_cut(self) -> bool:
        return self._cut

    def error(self) -> MIError:
        return self._token.cancellation_error()

    def remove(self, conn: Connection) -> bool:
        """Done with ``conn``; False if cancel cut it meanwhile (it must not be reused)."""
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
            return not self._cut

    def cut(self, reason: object = None) -> None:
        with self._lock:
            self._cut = True
            conns = list(self._conns)
        for conn in conns:
            conn.abort()


def _proxy(proxy: str | None) -> tuple[str, int] | None:
    """``http://host:port`` (or ``host:port``) of an HTTP proxy that allows CONNECT."""
    if not proxy:
        return None
    from urllib.parse import urlsplit

    u = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if u.scheme != "http" or not u.hostname:
        raise MIError(MIResult.INVALID_PARAMETER, f"the proxy must be http://host:port, not {proxy!r}")
    if u.username or u.password:
        raise MIError(MIResult.NOT_SUPPORTED, "proxy credentials are not supported")
    return u.hostname, u.port or 8080


def _to_utf16(body: bytes) -> bytes:
    text = body.decode("utf-8")
    if text.startswith("<?xml"):
        text = text.split("?>", 1)[1]
    return '<?xml version="1.0" encoding="UTF-16"?>'.encode("utf-16") + text.encode("utf-16-le")

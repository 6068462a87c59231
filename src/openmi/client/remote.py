"""Remote sessions: the MI operations carried over WS-Management (to openmi serve, OMI or WinRM).

``WSManTransport.execute`` turns an engine request into WS-Man requests through the shared codec and
yields the results as they arrive: an enumeration is Enumerate (optimized) then Pull until the end, so
memory stays flat whatever the count, and closing the stream early sends Release. Connections are
pooled per session and authenticated once each; only idempotent requests (Get, Enumerate, Pull,
Identify) are retried, once, when a kept-alive connection turns out to be dead.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.types import MIResult, OperationFlags
from ..engine import requests as rq
from ..engine.context import Context
from ..protocol import wsman
from ..protocol.wsman.values import instance_selectors
from .options import AuthType, DestinationOptions

_IDEMPOTENT = (wsman.GetRequest, wsman.EnumerateRequest, wsman.PullRequest, wsman.IdentifyRequest)
_RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class _Connection:
    """One kept-alive HTTP(S) connection and its authentication state."""

    def __init__(self, transport: WSManTransport) -> None:
        self.t = transport
        opts = transport.options
        timeout = opts.timeout or 60.0
        if opts.transport == "https":
            self.http: http.client.HTTPConnection = http.client.HTTPSConnection(
                transport.host, opts.port, timeout=timeout, context=transport.tls_context())
        else:
            self.http = http.client.HTTPConnection(transport.host, opts.port, timeout=timeout)
        self.auth = transport.new_auth()
        self.basic: str | None = None
        self.authenticated = False
        self.used = False

    def close(self) -> None:
        self.http.close()

    def exchange(self, body: bytes, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
        """POST a request (authenticating this connection first if needed) → status, content type, body."""
        from .auth import ClientAuthError

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
                    self._handshake(ctype)
                ctype, body = auth.seal_body(ctype, body)
            send["Content-Type"] = ctype
            status, rheaders, data = self._post(body, send)
            if status == 401:
                self.authenticated = False
                raise MIError(MIResult.ACCESS_DENIED,
                              f"{self.t.host} refused the credentials (HTTP 401): the user name or password is wrong, "
                              f"or the account may not use {self.t.auth_name}")
            rtype = rheaders.get("content-type")
            if auth is not None:
                rtype, data = auth.open_body(rtype, data)
            self.used = True
            return status, rtype, data
        except ClientAuthError as exc:
            self.close()
            raise MIError(MIResult.ACCESS_DENIED, f"authentication with {self.t.host} failed: {exc}") from None
        except (ssl.SSLCertVerificationError, ssl.SSLError) as exc:
            self.close()
            raise MIError(MIResult.FAILED, f"TLS with {self.t.host}:{self.t.options.port} failed: "
                                           f"{getattr(exc, 'verify_message', None) or exc}") from None
        except TimeoutError:
            self.close()
            raise MIError(MIResult.FAILED, f"{self.t.host}:{self.t.options.port} did not answer within "
                                           f"{self.http.timeout} s") from None
        except ConnectionRefusedError:
            self.close()
            raise MIError(MIResult.FAILED, f"cannot connect to {self.t.host}:{self.t.options.port}: "
                                           f"connection refused") from None
        except socket.gaierror as exc:
            self.close()
            raise MIError(MIResult.FAILED, f"cannot resolve {self.t.host}: {exc.strerror}") from None

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.http.request("POST", self.t.path, body, headers)
        resp = self.http.getresponse()
        data = resp.read()
        rheaders = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self.http.close()
        return resp.status, rheaders, data

    def _handshake(self, ctype: str) -> None:
        """NTLM/Negotiate/Kerberos legs on empty POSTs, as WinRM clients do, until the server says 200."""
        assert self.auth is not None
        token = self.auth.initial_header()
        for _ in range(8):
            h = {"Content-Type": ctype, "Authorization": token or ""}
            status, rheaders, _ = self._post(b"", h)
            challenge = rheaders.get("www-authenticate")
            if status != 401:
                if challenge:
                    self.auth.step(challenge)  # the server's last leg (mutual authentication)
                self.authenticated = True
                return
            token = self.auth.step(challenge)
            if token is None:
                break
        raise MIError(MIResult.ACCESS_DENIED, f"{self.t.host} refused the credentials for {self.t.auth_name}")


class WSManTransport:
    """A session's way to a WS-Man destination."""

    def __init__(self, destination: str, options: DestinationOptions) -> None:
        host, _, port = destination.rpartition(":") if destination.count(":") == 1 else ("", "", "")
        self.host = host or destination
        if port.isdigit():
            options = options.clone()
            options.port = int(port)
        self.options = options
        self.path = options.url_prefix or "/wsman"
        self.to = f"{options.transport}://{self.host}:{options.port}{self.path}"
        self.style = wsman.UriStyle.WMI if options.uri_style == "wmi" else wsman.UriStyle.DMTF
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._closed = False
        creds = options.credentials[0] if options.credentials else None
        self.auth_name = creds.auth_type if creds else "no authentication"

    # --- connections ----------------------------------------------------------------------------
    def tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            o = self.options
            ctx = ssl.create_default_context(cafile=o.ca_file)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if o.skip_cn_check or o.skip_ca_check:
                ctx.check_hostname = False
            if o.skip_ca_check:
                ctx.verify_mode = ssl.CERT_NONE
            if o.cert_file:
                ctx.load_cert_chain(o.cert_file, o.key_file)
            self._tls = ctx
        return self._tls

    def new_auth(self) -> Any:
        creds = self.options.credentials[0] if self.options.credentials else None
        if creds is None or creds.auth_type in (AuthType.NONE, AuthType.CLIENT_CERTS):
            return None
        from .auth import ClientAuth

        scheme = {AuthType.BASIC: "basic", AuthType.NTLM: "ntlm", AuthType.NEGO_WITH_CREDS: "negotiate",
                  AuthType.KERBEROS: "kerberos", AuthType.DEFAULT: "negotiate"}.get(creds.auth_type)
        if scheme is None:
            raise MIError(MIResult.NOT_SUPPORTED, f"authentication {creds.auth_type} is not supported")
        enc = self.options.encryption
        encrypt = scheme != "basic" and self.options.transport == "http" and enc != "never"
        if enc == "always" and scheme == "basic" and self.options.transport == "http":
            raise MIError(MIResult.INVALID_PARAMETER,
                          "Basic authentication cannot encrypt messages; use HTTPS, NTLM, Negotiate or Kerberos")
        from .auth import ClientAuthError

        try:
            return ClientAuth(scheme, creds.username or "", creds.password or "", domain=creds.domain,
                              hostname=self.host, encryption=encrypt)
        except (ClientAuthError, ValueError) as exc:
            raise MIError(MIResult.INVALID_PARAMETER, f"cannot authenticate to {self.host}: {exc}") from None

    def _take(self) -> _Connection:
        with self._lock:
            if self._closed:
                raise MIError(MIResult.FAILED, "the session is closed")
            if self._idle:
                return self._idle.pop()
        return _Connection(self)

    def _give(self, conn: _Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < 8:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    # --- one WS-Man exchange ---------------------------------------------------------------------
    def send(self, req: wsman.Request, ctx: Context | None = None) -> wsman.Response:
        o = self.options
        req.to = self.to
        req.uri_style = self.style
        if o.max_envelope_size:
            req.max_envelope_size = o.max_envelope_size
        if o.ui_locale:
            req.locale = o.ui_locale
        if o.data_locale:
            req.data_locale = o.data_locale
        if ctx is not None:
            left = ctx.seconds_left
            if left is not None:
                req.operation_timeout = max(left, 0.001)
            if ctx.options and not req.option_set:
                req.option_set = {k: v for k, v in ctx.options.items() if not k.startswith("__MI_")}
            uri = ctx.options.get("__MI_OPERATIONOPTIONS_RESOURCE_URI") if ctx.options else None
            if uri:
                req.resource_uri = uri
        body = wsman.build_request(req, wrap_datetimes=self.style == wsman.UriStyle.WMI)
        if o.packet_encoding == "utf-16":
            body = _to_utf16(body)
        headers = wsman.request_headers(req)
        if o.packet_encoding == "utf-16":
            headers["Content-Type"] = "application/soap+xml;charset=UTF-16"
        attempts = 2 if isinstance(req, _IDEMPOTENT) else 1
        for attempt in range(attempts):
            conn = self._take()
            reused = conn.used
            try:
                status, ctype, data = conn.exchange(body, headers)
            except _RETRYABLE as exc:
                conn.close()
                if attempt + 1 < attempts and reused:
                    continue
                raise MIError(MIResult.FAILED, f"the connection to {self.host}:{o.port} was lost: {exc}") from None
            except MIError:
                conn.close()
                raise
            except OSError as exc:
                conn.close()
                raise MIError(MIResult.FAILED, f"cannot talk to {self.host}:{o.port}: {exc}") from None
            self._give(conn)
            if status not in (200, 400, 500) and not data:
                raise MIError(MIResult.FAILED, f"{self.host} answered HTTP {status} with no body")
            return wsman.parse_response(data, ctype, req)
        raise AssertionError("unreachable")

    def identify(self) -> wsman.IdentifyResponse:
        r = self.send(wsman.IdentifyRequest())
        assert isinstance(r, wsman.IdentifyResponse)
        return r

    # --- the Transport protocol ---------------------------------------------------------------------
    def execute(self, request: rq.Request, ctx: Context) -> Iterator[Any]:
        ctx.check()
        if isinstance(request, rq.TestConnection):
            if request.flags:
                raise MIError(MIResult.INVALID_PARAMETER, "TestConnection takes no flags")
            self.identify()
            return
        if isinstance(request, (rq.GetClass, rq.EnumerateClasses)):
            raise MIError(MIResult.NOT_SUPPORTED, f"{request.name} is not available over WS-Management")
        if isinstance(request, rq.DeleteInstance) and request.flags:
            raise MIError(MIResult.INVALID_PARAMETER, f"DeleteInstance takes no flags (got {request.flags:#x})")
        ns = _namespace(request.namespace)
        if isinstance(request, rq.EnumerateInstances):
            yield from self._enumerate(request, ns, ctx)
            return
        if isinstance(request, rq.Invoke):
            target = request.instance
            class_name = request.class_name or (target.class_name if target is not None else None)
            if not class_name or not request.method_name:
                raise MIError(MIResult.INVALID_PARAMETER, "Invoke needs a class name and a method name")
            params = request.parameters
            if isinstance(params, dict):
                params = Instance("__parameters", params)
            r = self.send(wsman.InvokeRequest(namespace=ns, class_name=class_name, method=request.method_name,
                                              selectors=instance_selectors(target) if target is not None else {},
                                              parameters=params), ctx)
            assert isinstance(r, wsman.InvokeResponse)
            yield r.parameters if r.parameters is not None else Instance("__parameters")
            return
        inst = getattr(request, "instance", None)
        if not isinstance(inst, Instance):
            raise MIError(MIResult.INVALID_PARAMETER, f"{request.name} needs an openmi.Instance")
        sel = instance_selectors(inst)
        if isinstance(request, rq.GetInstance):
            r = self.send(wsman.GetRequest(namespace=ns, class_name=inst.class_name, selectors=sel), ctx)
            assert isinstance(r, wsman.GetResponse)
            yield _in(r.instance, ns)
        elif isinstance(request, rq.DeleteInstance):
            self.send(wsman.DeleteRequest(namespace=ns, class_name=inst.class_name, selectors=sel), ctx)
        elif isinstance(request, rq.CreateInstance):
            r = self.send(wsman.CreateRequest(namespace=ns, class_name=inst.class_name, instance=inst), ctx)
            assert isinstance(r, wsman.CreateResponse)
            yield _in(r.instance_name, ns) if r.instance_name is not None else inst.keys_only()
        elif isinstance(request, rq.ModifyInstance):
            r = self.send(wsman.PutRequest(namespace=ns, class_name=inst.class_name, selectors=sel, instance=inst),
                          ctx)
            assert isinstance(r, wsman.PutResponse)
            yield _in(r.instance, ns) if r.instance is not None else inst
        else:
            raise MIError(MIResult.NOT_SUPPORTED, f"{request.name} is not available over WS-Management")

    def _enumerate(self, request: rq.EnumerateInstances, ns: str | None, ctx: Context) -> Iterator[Instance]:
        if not request.class_name:
            raise MIError(MIResult.INVALID_PARAMETER, "EnumerateInstances needs a class name")
        poly = None
        if request.flags & OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY == \
                OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY:
            poly = wsman.PolymorphismMode.EXCLUDE_SUBCLASS_PROPERTIES
        elif request.flags & OperationFlags.POLYMORPHISM_SHALLOW:
            poly = wsman.PolymorphismMode.NONE
        batch = max(1, self.options.max_elements)
        mode = wsman.EnumerationMode.EPR if request.keys_only else wsman.EnumerationMode.OBJECTS
        r = self.send(wsman.EnumerateRequest(namespace=ns, class_name=request.class_name, optimize=True,
                                             max_elements=batch, mode=mode, polymorphism=poly), ctx)
        assert isinstance(r, wsman.EnumerateResponse)
        context = None if r.end_of_sequence else r.context
        try:
            yield from self._items(r, ns)
            while context:
                ctx.check()
                p = self.send(wsman.PullRequest(namespace=ns, class_name=request.class_name, context=context,
                                                max_elements=batch), ctx)
                assert isinstance(p, wsman.EnumerateResponse)
                context = None if p.end_of_sequence else (p.context or context)
                yield from self._items(p, ns)
        finally:
            if context:  # stopped early (cancel, close, error): tell the server to let go
                try:
                    self.send(wsman.ReleaseRequest(namespace=ns, class_name=request.class_name, context=context))
                except MIError:
                    pass

    @staticmethod
    def _items(r: wsman.EnumerateResponse, ns: str | None) -> Iterator[Instance]:
        items = r.items if r.items else r.eprs
        for item in items:
            yield _in(item, ns)


def _in(inst: Instance, ns: str | None) -> Instance:
    if inst.namespace is None and ns:
        inst.namespace = ns
    return inst


def _namespace(namespace: str | None) -> str | None:
    from ..engine.names import normalize_namespace

    return normalize_namespace(namespace)


def _to_utf16(body: bytes) -> bytes:
    text = body.decode("utf-8")
    if text.startswith("<?xml"):
        text = text.split("?>", 1)[1]
    return '<?xml version="1.0" encoding="UTF-16"?>'.encode("utf-16") + text.encode("utf-16-le")

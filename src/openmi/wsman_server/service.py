"""The WS-Management service: HTTP requests in, the engine's answers out, through the shared codec.

Each WS-Man request becomes one engine request record through the table of operation kinds that remote
sessions use too (:mod:`openmi.protocol.wsman.operations`); Enumerate/Pull/Release keep the engine's
result stream open in an enumeration context that expires and is bounded per user. Authentication and
message encryption belong to :mod:`openmi.wsman_server.auth`; who may read or write which namespace is
checked here, before the engine runs anything.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..cim import requests as rq
from ..cim.cancel import CancelToken
from ..cim.classes import Class
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.namespaces import DEFAULT_NAMESPACE, normalize_namespace
from ..cim.types import MIResult
from ..engine.server import Server
from ..protocol import wsman
from ..protocol.wsman import eventing as ev
from ..protocol.wsman import operations as kinds
from ..protocol.wsman.faults import protocol_fault
from ..protocol.wsman.values import instance_wire_size
from . import identity
from .eventing import EventingConfig, SubscriptionStore
from .forward import Unanswered
from .http import HTTPRequest, HTTPResponse
from .quotas import QuotaFull, SharedQuotas

if TYPE_CHECKING:
    from .auth import ConnectionAuth, ServerAuth
    from .forward import Peers
    from .hosts import HostPeers
from .users import User

log = logging.getLogger("openmi.wsman_server")

_PATHS = ("/wsman", "/wsman/", "/wsman-anon/identify")
_PROFILES = (  # DSP0226 security profile URIs
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/basic",
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/basic",
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos",
)


_NOT_AN_IDENTIFY = protocol_fault("wsman:SchemaValidationError",
                                  "The unauthenticated request is not a readable Identify.")


@dataclass
class ServiceConfig:
    max_envelope_size: int = 512_000
    enumeration_expiry: float = 600.0  # seconds an idle enumeration context lives
    max_enumerations_per_user: int = 64
    default_max_elements: int = 1  # DSP0226: one item per Pull when MaxElements is absent
    max_elements_cap: int = 10_000
    not_found: str = "unreachable"  # or "selectors" (WinRM-like wsman:InvalidSelectors)
    eventing: EventingConfig = field(default_factory=EventingConfig)
    # whose answer shapes a client gets (wsman.Request.plain_values): "auto" OMI's to a client that names no
    # User-Agent (OMI's own), WinRM's to the others; "winrm" or "omi": those to every client
    client_shapes: str = "auto"


@dataclass
class _Enumeration:
    id: str
    user: str | None
    results: Iterator[Any]  # instances, or what the kind streams (classes)
    ctx: CancelToken
    mode: wsman.EnumerationMode
    namespace: str | None
    pending: list[Any] = field(default_factory=list)
    expires: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False
    kind: kinds.OperationKind | None = None  # how a page of results goes into a response
    request: wsman.EnumerateRequest | None = None  # the Enumerate (a Pull does not repeat its options)

    def put_back(self, items: list[Any]) -> None:
        """Items a page could not carry: first in line for the next Pull."""
        self.pending[:0] = items

    def close(self) -> None:
        self.ctx.cancel()
        close = getattr(self.results, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # a provider's cleanup failing must not break Release
                log.exception("closing enumeration %s failed", self.id)


class EnumerationStore:
    """Open enumeration contexts: expiring, bounded per user, closed on release or expiry."""

    def __init__(self, expiry: float, per_user: int, quotas: SharedQuotas | None = None, slot: int = 0) -> None:
        """``quotas``: the per-user counts the workers of one ``openmi serve`` share (``slot``: this one's)."""
        self.expiry = expiry
        self.per_user = per_user
        self.quotas = quotas
        self.slot = slot
        self._items: dict[str, _Enumeration] = {}
        self._lock = threading.Lock()

    def add(self, e: _Enumeration) -> str:
        self._sweep()
        with self._lock:
            if self.quotas is None:
                mine = sum(1 for x in self._items.values() if x.user == e.user)
                over = mine if mine >= self.per_user else None
            else:
                try:
                    over = self.quotas.claim("enumeration", e.user, self.slot, self.per_user)
                except QuotaFull:
                    raise MIError(MIResult.SERVER_LIMITS_EXCEEDED,
                                  "too many users hold open enumerations; try again later") from None
            if over is not None:
                raise MIError(MIResult.SERVER_LIMITS_EXCEEDED,
                              f"too many open enumerations ({over}); release or finish some first")
            e.expires = time.monotonic() + self.expiry
            self._items[e.id] = e
        return e.id

    def _gone(self, e: _Enumeration) -> None:
        """A context left the store (the lock is held): the user's count follows."""
        if self.quotas is not None:
            self.quotas.release("enumeration", e.user, self.slot)

    def take(self, context: str, user: str | None) -> _Enumeration:
        self._sweep()
        with self._lock:
            e = self._items.get(context)
        if e is None or e.user != user:
            raise MIError(MIResult.INVALID_ENUMERATION_CONTEXT,
                          f"the enumeration context {context!r} is not valid (unknown, finished or expired)")
        return e

    def remove(self, context: str) -> None:
        with self._lock:
            e = self._items.pop(context, None)
            if e is not None:
                self._gone(e)
        if e is not None:
            e.close()

    def touch(self, e: _Enumeration) -> None:
        e.expires = time.monotonic() + self.expiry

    def _sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            dead = [k for k, e in self._items.items() if e.expires < now]
            gone = [self._items.pop(k) for k in dead]
            for e in gone:
                self._gone(e)
        for e in gone:
            e.close()

    def close_all(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), {}
            for e in items:
                self._gone(e)
        for e in items:
            e.close()

    def __len__(self) -> int:
        return len(self._items)


class WSManService:
    """Serves WS-Man requests from one engine. ``auth`` None (tests only) skips authentication."""

    def __init__(self, engine: Server, auth: ServerAuth | tuple[ServerAuth, ServerAuth] | None,
                 config: ServiceConfig | None = None, peers: Peers | None = None,
                 quotas: SharedQuotas | None = None, hosts: HostPeers | None = None) -> None:
        """``auth`` is one ServerAuth, or a pair (for plain HTTP, for HTTPS), or None (tests only); ``peers``:
        the other workers of ``openmi serve --workers`` (requests for their contexts are forwarded);
        ``quotas``: the per-user counts of contexts they share; ``hosts``: the other servers of one PostgreSQL
        repository (requests for their contexts are forwarded; this server's contexts are named by its id)."""
        self.engine = engine
        self.peers = peers
        self.hosts = hosts
        self.context_suffix = hosts.suffix if hosts is not None else peers.suffix if peers is not None else ""
        self.auth = auth
        self.config = config or ServiceConfig()
        self.limits = wsman.Limits(max_envelope=self.config.max_envelope_size, not_found=self.config.not_found)
        slot = peers.slot if peers is not None else 0
        if quotas is not None:
            quotas.reset(slot)  # (a restarted worker: the contexts counted in its slot died with its predecessor)
        self.enumerations = EnumerationStore(self.config.enumeration_expiry, self.config.max_enumerations_per_user,
                                             quotas, slot)
        self.subscriptions = SubscriptionStore(engine, self.config.eventing, suffix=self.context_suffix,
                                               quotas=quotas, slot=slot)
        self.machine = socket.gethostname()
        self._ids = itertools.count(1)

    def connection(self, peer: str, secure: bool) -> WSManConnection:
        return WSManConnection(self, peer, secure)

    def auth_for(self, secure: bool) -> ServerAuth | None:
        if isinstance(self.auth, tuple):
            return self.auth[1] if secure else self.auth[0]
        return self.auth

    def begin_shutdown(self) -> None:
        """Before the listeners stop: end the subscriptions (Pulls answer EndpointUnavailable, push subscribers
        hear SubscriptionEnd with SourceShuttingDown) so that no long-polling Pull holds the shutdown up."""
        self.subscriptions.begin_shutdown()

    def close(self) -> None:
        self.subscriptions.close()
        self.enumerations.close_all()

    # --- class information for the codec ------------------------------------------------------
    def lookup_class(self, namespace: str | None, class_name: str) -> Class | None:
        found = self.engine.lookup_class(namespace, class_name)
        if found is None and class_name.lower() == identity.CLASS_NAME.lower() and \
                (namespace or "").strip("/").lower() == identity.NAMESPACE:
            return identity.IDENTIFY_CLASS
        return found

    # --- one WS-Man request --------------------------------------------------------------------
    def dispatch(self, req: wsman.Request, user: User | None) -> tuple[int, bytes]:
        """HTTP status and body answering a parsed request (faults included); never raises for CIM errors."""
        try:
            self._authorize(req, user)
            if isinstance(req, (wsman.CreateRequest, wsman.PutRequest)) and req.instance is not None:
                self._check_servable(req, req.instance)
            response = self._run(req, user)
            if isinstance(response, bytes):  # an enumeration's page, built while its items were fitted
                return 200, response
            return 200, wsman.build_response(req, response, limits=self.limits)
        except MIError as err:
            return 500, self.fault(req, err)

    def answer(self, body: bytes, content_type: str | None, user: User | None,
               plain: bool = False) -> tuple[int, bytes]:
        """HTTP status and body answering an envelope another worker authenticated and forwarded here
        (``plain``: its client reads OMI's shapes, as the forwarding worker saw)."""
        try:
            req = wsman.parse_request(body, content_type, class_lookup=self.lookup_class, limits=self.limits)
        except wsman.WSManFault as exc:
            return 500, self.fault(None, exc)
        req.plain_values = plain
        return self.dispatch(req, user)

    def fault(self, req: wsman.Request | None, err: MIError) -> bytes:
        _, body = wsman.build_fault(req, err, machine=self.machine, limits=self.limits)
        return body

    def _check_servable(self, req: wsman.Request, inst: Instance) -> None:
        """Refuse up front a write of an instance that no response could carry (it could never be read back).

        The measure is the instance as a Get would write it (UTF-8) plus room for the envelope and its key
        EPR, against the server's envelope cap. A cheap bound skips the measuring for ordinary instances.
        """
        cap = self.limits.max_envelope
        if _rough_wire_bound(inst) + _ENVELOPE_ROOM <= cap:
            return
        size = instance_wire_size(inst, req.uri_style, req.namespace) + _ENVELOPE_ROOM
        if size > cap:
            raise protocol_fault(
                "wsman:EncodingLimit",
                f"{_describe(inst)} would take {size} octets in a response, over this service's envelope limit "
                f"of {cap}: it could never be read back, so it is not written.", "MaxEnvelopeSizeExceeded")

    def _authorize(self, req: wsman.Request, user: User | None) -> None:
        if user is None or isinstance(req, wsman.IdentifyRequest):
            return
        self._authorize_namespace(req.namespace or DEFAULT_NAMESPACE, not kinds.is_read_only(req), user)

    def _authorize_namespace(self, namespace: str, write: bool, user: User) -> None:
        if not user.can(namespace, write):
            what = "write to" if write else "read"
            raise MIError(MIResult.ACCESS_DENIED, f"user {user.name} may not {what} namespace {namespace}")

    def _run(self, req: wsman.Request, user: User | None) -> wsman.Response | bytes:
        if isinstance(req, wsman.IdentifyRequest):
            return wsman.IdentifyResponse(
                product_vendor="openmi", product_version=None if req.unauthenticated else f"openmi {__version__}",
                security_profiles=list(_PROFILES), fault_includes_cim_error=True)
        if isinstance(req, (ev.SubscribeRequest, ev.UnsubscribeRequest, ev.RenewRequest, ev.GetStatusRequest)):
            return self._eventing(req, user)
        if isinstance(req, wsman.PullRequest):
            if self.subscriptions.owns(req.context):
                return self.subscriptions.pull(
                    req, _name(user), lambda items, make, put_back: self._fitted(
                        req, items, False, lambda its, _end: make(its), put_back,
                        "The subscription goes on without it.")[0])
            return self._pull(req, user)
        if isinstance(req, wsman.ReleaseRequest):
            if self.subscriptions.owns(req.context):  # releasing a subscription's context ends it
                self.subscriptions.unsubscribe(req.context, _name(user))
                return wsman.ReleaseResponse()
            self.enumerations.take(req.context, _name(user))
            self.enumerations.remove(req.context)
            return wsman.ReleaseResponse()
        token = CancelToken(req.operation_timeout)
        kind = kinds.for_wsman(req)
        assert kind.record is not None
        record = kind.record(req, self.lookup_class)
        if user is not None and record.namespace and record.namespace != req.namespace:
            # the association filter's source EPR names its own namespace: the user must be able to read it
            self._authorize_namespace(record.namespace, not kind.read_only, user)
        if kind.streamed:
            return self._enumerate(req, kind, record, user, token)
        assert kind.response is not None
        results = list(self._execute(record, token, user))
        return kind.response(req, results, self.lookup_class)

    def _execute(self, record: rq.Request, token: CancelToken, user: User | None) -> Iterator[Any]:
        """The engine's results, or OMI's identity instance when the request asks for it (see identity.py)."""
        if identity.asks_identity(self.engine, record):
            return identity.answer(self.engine, record,
                                   (lambda ns: True) if user is None else (lambda ns: user.can(ns, False)))
        return self.engine.execute(record, token, user=_name(user))

    # --- subscriptions (WS-Eventing) ----------------------------------------------------------------
    def _eventing(self, req: wsman.Request, user: User | None) -> wsman.Response:
        if isinstance(req, ev.SubscribeRequest):
            return self.subscriptions.subscribe(req, _name(user))
        if isinstance(req, ev.UnsubscribeRequest):
            self.subscriptions.unsubscribe(req.identifier, _name(user))
            return ev.UnsubscribeResponse()
        if isinstance(req, ev.RenewRequest):
            raise protocol_fault("wse:UnableToRenew",
                                 "Subscriptions cannot be renewed; subscribe again (with the last bookmark).")
        raise protocol_fault("wsa:ActionNotSupported", "GetStatus is not supported.", "ActionMismatch")

    # --- enumerations ---------------------------------------------------------------------------
    def _enumerate(self, req: wsman.Request, kind: kinds.OperationKind, record: rq.Request, user: User | None,
                   token: CancelToken) -> wsman.Response | bytes:
        assert isinstance(req, wsman.EnumerateRequest)
        results: Iterator[Any] = self._execute(record, token, user)
        if kind.narrow is not None:
            results = kind.narrow(req, results)
        if user is not None and isinstance(record, (rq.AssociatorInstances, rq.QueryInstances)):
            results = _readable(results, user)
        e = _Enumeration(uuid.uuid4().urn + self.context_suffix, _name(user), results, token, req.mode, req.namespace,
                         kind=kind, request=req)
        return self._start(req, e)

    def _page(self, e: _Enumeration, items: list[Any], response: wsman.EnumerateResponse) -> None:
        """A page of results in an Enumerate or Pull response, as the kind writes them (instances: items)."""
        if e.kind is not None and e.kind.page is not None:
            e.kind.page(e.request, items, response, self.lookup_class)

    def _start(self, req: wsman.EnumerateRequest, e: _Enumeration) -> wsman.Response | bytes:
        try:
            if not req.optimize:
                self._prime(e)
                return self._make_page(req, e, [], False, self.enumerations.add(e))
            items, end = self._take(e, req.max_elements or self.config.default_max_elements, None)
            data, end = self._fitted(req, items, end,
                                     lambda its, last: self._make_page(req, e, its, last, None if last else e.id),
                                     e.put_back)
            if not end:
                self.enumerations.add(e)  # (refused over the user's bound: closed below, not left running)
        except BaseException:
            e.close()
            raise
        if end:
            e.close()
        return data

    def _make_page(self, req: wsman.Request, e: _Enumeration, items: list[Any], end: bool,
                   context: str | None) -> wsman.EnumerateResponse:
        """One page of an enumeration: an EnumerateResponse, or a PullResponse answering a Pull."""
        if isinstance(req, wsman.PullRequest):
            r: wsman.EnumerateResponse = wsman.PullResponse(context=context, items=items, end_of_sequence=end,
                                                            mode=e.mode)
        else:
            assert isinstance(req, wsman.EnumerateRequest)
            r = wsman.EnumerateResponse(context=context, items=items, end_of_sequence=end, mode=req.mode)
        self._page(e, items, r)
        return r

    def _fitted(self, req: wsman.Request, items: list[Any], end: bool,
                make: Callable[[list[Any], bool], wsman.Response], put_back: Callable[[list[Any]], None],
                after: str = "The enumeration ends here.") -> tuple[bytes, bool]:
        """The bytes of the page carrying as many of ``items`` as fit the envelope, and whether it ends the
        enumeration (or subscription's stream). Items that do not fit are put back, in order, for the next
        Pull; an item that cannot be sent even alone fails the request with a fault naming it (never dropped
        silently)."""
        while True:
            try:
                return wsman.build_response(req, make(items, end), limits=self.limits), end
            except wsman.WSManFault as fault:
                if fault.fault.subcode is None or fault.fault.subcode[1] != "EncodingLimit" or not items:
                    raise
                if len(items) == 1:
                    raise protocol_fault(
                        "wsman:EncodingLimit",
                        f"{_describe(items[0])} cannot be sent: alone it makes a response over the maximum envelope "
                        f"size ({fault.fault.reason}). {after}", "MaxEnvelopeSizeExceeded",
                    ) from None
                keep = len(items) // 2
                put_back(items[keep:])
                items, end = items[:keep], False

    def _prime(self, e: _Enumeration) -> None:
        """Run the request up to its first result, so that errors (bad class …) fail the Enumerate."""
        try:
            first = next(e.results)
        except StopIteration:
            e.done = True
            return
        e.pending.append(first)

    def _take(self, e: _Enumeration, max_elements: int, max_time: float | None) -> tuple[list[Any], bool]:
        n = max(1, min(max_elements, self.config.max_elements_cap))
        deadline = None if max_time is None else time.monotonic() + max_time
        items: list[Any] = []
        while e.pending and len(items) < n:
            items.append(e.pending.pop(0))
        while len(items) < n and not e.done:
            if deadline is not None and items and time.monotonic() >= deadline:
                break
            try:
                items.append(next(e.results))
            except StopIteration:
                e.done = True
        return items, e.done and not e.pending

    def _pull(self, req: wsman.PullRequest, user: User | None) -> bytes:
        e = self.enumerations.take(req.context, _name(user))
        with e.lock:
            try:
                items, end = self._take(e, req.max_elements or self.config.default_max_elements, req.max_time)
                data, end = self._fitted(req, items, end, lambda its, last: self._make_page(
                    req, e, its, last, None if last else req.context), e.put_back)
            except MIError:
                self.enumerations.remove(req.context)
                raise
            if end:
                self.enumerations.remove(req.context)
            else:
                self.enumerations.touch(e)
            return data


_ENVELOPE_ROOM = 4096  # the envelope's headers, the Items wrapper, an EPR of the keys next to the object


def _rough_wire_bound(inst: Instance) -> int:
    """An upper bound of the instance's size on the wire, without writing it: 6 octets a character covers the
    worst escape (``\\r`` → ``&#13;``) and 4-octet UTF-8; each element adds its tags and attributes."""
    def chars(value: Any) -> int:
        if isinstance(value, str):
            return len(value)
        if isinstance(value, list):
            return sum(chars(v) for v in value) + 64 * len(value)
        if isinstance(value, Instance):
            return sum(chars(el.value) + 2 * len(el.name) + 128 for el in value.elements) + 256
        return 64
    return 6 * chars(inst)


def _describe(item: Any) -> str:
    """``the instance Class.Key='value'`` (values cut short), or ``the class Name``, to name an item in a fault."""
    if isinstance(item, rq.IndicationItem):
        return f"the indication {item.instance.class_name} (bookmark {item.bookmark})"
    if not isinstance(item, Instance):
        return f"the class {getattr(item, 'name', item)}"
    keys = item.key_elements or item.elements[:3]
    named = ",".join(f"{el.name}={str(el.value)[:64]!r}" for el in keys)
    return f"the instance {item.class_name}{'.' + named if named else ''}"


def _readable(results: Iterator[Any], user: User) -> Iterator[Any]:
    """The results in namespaces the user may read: an association may lead into another namespace (the
    source's namespace was checked before the request ran; a far end elsewhere is left out, not shown)."""
    for item in results:
        ns = getattr(item, "namespace", None)
        if not ns or user.can(normalize_namespace(ns), False):
            yield item


def _name(user: User | None) -> str | None:
    return user.name.lower() if user is not None else None


def _mid_handshake(request: HTTPRequest) -> bool:
    """A request of a connection-based authentication handshake, or a sealed body."""
    authz = request.headers.get("authorization", "").lstrip().lower()
    ctype = request.headers.get("content-type", "").lower()
    return authz.startswith(("negotiate", "ntlm", "kerberos", "credssp")) or "encrypted" in ctype


class WSManConnection:
    """One TCP connection: its authentication state, and the HTTP handling of each request."""

    def __init__(self, service: WSManService, peer: str, secure: bool) -> None:
        self.service = service
        self.peer = peer
        self.secure = secure
        self.server_auth = service.auth_for(secure)
        self.auth: ConnectionAuth | None = self.server_auth.connection(peer) if self.server_auth is not None else None
        # True once a request here passed authentication (or none is required): the HTTP layer then keeps
        # this connection in a reserved slot, out of reach of anonymous connection floods
        self.authenticated = self.server_auth is None

    def handle(self, request: HTTPRequest) -> HTTPResponse:
        try:
            return self._handle(request)
        except Exception as exc:  # last resort: a SOAP fault, one log line (a client must not flood the log)
            log.error("request from %s failed: %s: %s", self.peer, type(exc).__name__, str(exc)[:200])
            log.debug("request from %s failed", self.peer, exc_info=True)
            err = MIError(MIResult.FAILED, "the service could not process the request (internal error)")
            return HTTPResponse(500, self.service.fault(None, err), [("Content-Type", wsman.content_type())],
                                close=True)

    def _handle(self, request: HTTPRequest) -> HTTPResponse:
        path = request.path.split("?", 1)[0]
        if path not in _PATHS:
            return HTTPResponse(404, b"", [])
        if request.method != "POST":
            return HTTPResponse(405, b"", [("Allow", "POST")])
        headers = request.headers
        anonymous = headers.get("wsmanidentify", "").strip().lower() == "unauthenticated"
        content_type = headers.get("content-type")
        body = request.body
        user: User | None = None
        if self.auth is not None and not anonymous:
            step = self.auth.authenticate(headers)
            if step.user is None:
                self.authenticated = False  # (a removed user's connection leaves its reserved slot)
                return HTTPResponse(step.status, b"", list(step.headers), close=step.status not in (401, 503))
            user = step.user
            self.authenticated = True
            try:
                content_type, body = self.auth.open_body(content_type, body)
            except Exception as exc:  # a body we cannot decrypt or that must have been encrypted
                log.info("refused a body from %s: %s", self.peer, exc)
                return HTTPResponse(getattr(exc, "status", 400), b"", list(step.headers), close=True)
            reply_headers = list(step.headers)
        else:
            reply_headers = []
        if not body:
            if self.auth is not None and user is not None:  # the handshake's own empty POST
                return HTTPResponse(200, b"", reply_headers)
            return HTTPResponse(400, b"", [])
        if content_type is None or not content_type.lower().startswith("application/soap+xml"):
            return HTTPResponse(415, b"", reply_headers)
        req: wsman.Request | None
        try:
            if anonymous and self.server_auth is not None:
                # Without credentials only an Identify is read, and no more of it than an Identify needs:
                # anything else is refused before the envelope is parsed (no cache, no class lookup).
                req = wsman.parse_identify(body, content_type, wsmanidentify=headers.get("wsmanidentify"),
                                           limits=self.service.limits)
                if req is None:
                    return HTTPResponse(401, b"", list(self.server_auth.challenge()))
            else:
                anonymous = False
                req = wsman.parse_request(body, content_type, wsmanidentify=headers.get("wsmanidentify"),
                                          class_lookup=self.service.lookup_class, limits=self.service.limits)
                shapes = self.service.config.client_shapes
                if shapes == "omi" or (shapes == "auto" and "user-agent" not in headers):  # (OMI's client)
                    req.plain_values = True
        except wsman.WSManFault as exc:
            # to an anonymous client one fixed answer: nothing it sends is echoed or cached
            fault = _NOT_AN_IDENTIFY if anonymous else exc
            return self._reply(None, 500, self.service.fault(None, fault), reply_headers, fault)
        hosts = self.service.hosts
        host = hosts.owner(req) if hosts is not None else None
        try:
            if host is not None:  # the context lives in another server of the same PostgreSQL repository
                assert hosts is not None
                got = hosts.forward(host, body, content_type, user, req.plain_values)
                if got is not None:
                    return self._reply(req, got[0], got[1], reply_headers, None)
            peers = self.service.peers
            slot = peers.owner(req) if peers is not None else None
            if slot is not None:  # the context lives in another worker: it answers
                assert peers is not None
                got = peers.forward(slot, body, content_type, user, req.plain_values)
                if got is not None:
                    return self._reply(req, got[0], got[1], reply_headers, None)
        except Unanswered as exc:  # it may have acted (a page taken, a subscription ended): say the result is unknown
            err = MIError(MIResult.FAILED, f"the server holding this context took the request but did not answer "
                                           f"({exc}); whether it acted is unknown")
            status, data = wsman.build_fault(req, err, machine=self.service.machine, limits=self.service.limits)
            return self._reply(req, status, data, reply_headers, err)
        status, data = self.service.dispatch(req, user)
        return self._reply(req, status, data, reply_headers, None)

    def _reply(self, req: wsman.Request | None, status: int, data: bytes, headers: list[tuple[str, str]],
               error: Exception | None) -> HTTPResponse:
        ctype = wsman.response_content_type(req, error)
        if self.auth is not None and data and not (isinstance(req, wsman.IdentifyRequest) and req.unauthenticated):
            ctype, data = self.auth.seal_body(ctype, data)
        return HTTPResponse(status, data, [*headers, ("Content-Type", ctype)])

    def shutting_down(self, request: HTTPRequest) -> HTTPResponse:
        err = MIError(MIResult.SERVER_IS_SHUTTING_DOWN, "the server is shutting down")
        if self.auth is not None and not self.authenticated and _mid_handshake(request):
            # an NTLM/Negotiate handshake cut short: a plaintext SOAP fault is not something that client could
            # trust (it expects sealed answers), so plain HTTP 503 says "come back later"
            return HTTPResponse(503, b"", [("Retry-After", "1")], close=True)
        req: wsman.Request | None = None
        ctype, body = request.headers.get("content-type"), request.body
        sealed = False
        if self.auth is not None and self.authenticated:
            try:  # on an encrypting connection the answer is sealed too, or the client cannot read it
                ctype, body = self.auth.open_body(ctype, body)
                sealed = True
            except Exception:
                sealed = False
        try:
            req = wsman.parse_request(body, ctype, limits=self.service.limits)
        except Exception:
            req = None
        data = self.service.fault(req, err)
        out_type = wsman.response_content_type(req)
        if sealed and self.auth is not None:
            out_type, data = self.auth.seal_body(out_type, data)
        return HTTPResponse(500, data, [("Content-Type", out_type)], close=True)

    def closed(self) -> None:
        return None


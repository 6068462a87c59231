"""WS-Eventing over WS-Management (DSP0226 §10, MS-WSMV §3.1.4.1.30), sans I/O: the messages of a
subscription, as typed objects and bytes, for both ends.

- Requests (the server's ``parse_request`` and the client's ``build_request`` handle them through
  :mod:`.request_codec`): :class:`SubscribeRequest` (delivery mode Pull, Push, PushWithAck or Events;
  NotifyTo/EndTo; Expires as an xs:duration or an xs:dateTime; Heartbeats; a WQL/CQL filter;
  SendBookmarks and Bookmark; MaxElements/MaxTime for Events; ConnectionRetry), :class:`UnsubscribeRequest`
  and :class:`RenewRequest` / :class:`GetStatusRequest` (the subscription manager's ``e:Identifier``
  comes in a header).
- Responses (:mod:`.response_codec`): :class:`SubscribeResponse` (the SubscriptionManager EPR with its
  Identifier, the enumeration context of a Pull subscription, Expires) and :class:`UnsubscribeResponse`.
  OMI's shape (``ReferenceProperties``, no Address, a decimal id) is read as well as DSP0226's.
- What an event source sends to a sink (Push, PushWithAck, Events): :class:`EventMessage` (one event, a
  batch, a heartbeat, with ``wsman:AckRequested`` and ``wsman:Bookmark``), SubscriptionEnd, and the sink's
  Ack: :func:`build_event_message` / :func:`parse_sink_message` / :func:`build_ack` / :func:`parse_ack`.

A Pull subscription's events come in ordinary PullResponses (:class:`~.responses.PullResponse` with a
``bookmark``), as plain instances the way OMI writes them; a ``wsman:Event`` wrapper is read too.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final

from lxml import etree

from openmi.cim.errors import MIError
from openmi.cim.instance import Instance
from openmi.cim.types import MIResult

from . import namespaces as ns
from .envelope import CLIENT_LIMITS, Limits, format_timeout, parse_envelope, serialize
from .faults import WSManFault, append_result_error, protocol_fault, read_fault, read_result_error
from .requests import Filter, Request, new_message_id
from .responses import Response
from .uri import DMTF_WILDCARD, UriStyle, resource_uri
from .values import MAX_NESTING, element_to_instance, instance_to_element, parse_duration, parse_wire_datetime, text_of

if TYPE_CHECKING:
    _Elem = etree._Element
else:
    _Elem = Any

_SubElement = etree.SubElement

# --- URIs ----------------------------------------------------------------------------------------------
_WSE = "http://schemas.xmlsoap.org/ws/2004/08/eventing/"
_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman/"

MODE_PUSH: Final = _WSE + "DeliveryModes/Push"
MODE_PUSH_WITH_ACK: Final = _WSMAN + "PushWithAck"
MODE_EVENTS: Final = _WSMAN + "Events"
MODE_PULL: Final = _WSMAN + "Pull"
MODES: Final = (MODE_PULL, MODE_PUSH, MODE_PUSH_WITH_ACK, MODE_EVENTS)

ACTION_SUBSCRIBE: Final = _WSE + "Subscribe"
ACTION_SUBSCRIBE_RESPONSE: Final = _WSE + "SubscribeResponse"
ACTION_UNSUBSCRIBE: Final = _WSE + "Unsubscribe"
ACTION_UNSUBSCRIBE_RESPONSE: Final = _WSE + "UnsubscribeResponse"
ACTION_RENEW: Final = _WSE + "Renew"
ACTION_GET_STATUS: Final = _WSE + "GetStatus"
ACTION_SUBSCRIPTION_END: Final = _WSE + "SubscriptionEnd"
ACTION_EVENT: Final = _WSMAN + "Event"
ACTION_EVENTS: Final = _WSMAN + "Events"
ACTION_HEARTBEAT: Final = _WSMAN + "Heartbeat"
ACTION_ACK: Final = _WSMAN + "Ack"
ACTION_DROPPED_EVENTS: Final = _WSMAN + "DroppedEvents"

STATUS_SOURCE_SHUTTING_DOWN: Final = _WSE + "SourceShuttingDown"
STATUS_SOURCE_CANCELLING: Final = _WSE + "SourceCancelling"
STATUS_DELIVERY_FAILURE: Final = _WSE + "DeliveryFailure"

#: the reserved bookmark that asks for every event the source still keeps (MS-WSMV's ReadExistingEvents)
BOOKMARK_EARLIEST: Final = _WSMAN + "bookmark/earliest"

MACHINE_ID_NS: Final = "http://schemas.microsoft.com/wbem/wsman/1/machineid"

E_SUBSCRIBE: Final = ns.q(ns.WSE, "Subscribe")
E_SUBSCRIBE_RESPONSE: Final = ns.q(ns.WSE, "SubscribeResponse")
E_UNSUBSCRIBE: Final = ns.q(ns.WSE, "Unsubscribe")
E_RENEW: Final = ns.q(ns.WSE, "Renew")
E_DELIVERY: Final = ns.q(ns.WSE, "Delivery")
E_NOTIFY_TO: Final = ns.q(ns.WSE, "NotifyTo")
E_END_TO: Final = ns.q(ns.WSE, "EndTo")
E_EXPIRES: Final = ns.q(ns.WSE, "Expires")
E_FILTER: Final = ns.q(ns.WSE, "Filter")
E_IDENTIFIER: Final = ns.q(ns.WSE, "Identifier")
E_SUBSCRIPTION_MANAGER: Final = ns.q(ns.WSE, "SubscriptionManager")
E_SUBSCRIPTION_END: Final = ns.q(ns.WSE, "SubscriptionEnd")
E_STATUS: Final = ns.q(ns.WSE, "Status")
E_REASON: Final = ns.q(ns.WSE, "Reason")
W_HEARTBEATS: Final = ns.q(ns.WSMAN, "Heartbeats")
W_CONNECTION_RETRY: Final = ns.q(ns.WSMAN, "ConnectionRetry")
W_CONTENT_ENCODING: Final = ns.q(ns.WSMAN, "ContentEncoding")
W_MAX_TIME: Final = ns.q(ns.WSMAN, "MaxTime")
W_SEND_BOOKMARKS: Final = ns.q(ns.WSMAN, "SendBookmarks")
W_BOOKMARK: Final = ns.q(ns.WSMAN, "Bookmark")
W_EVENTS: Final = ns.q(ns.WSMAN, "Events")
W_EVENT: Final = ns.q(ns.WSMAN, "Event")
W_ACK_REQUESTED: Final = ns.q(ns.WSMAN, "AckRequested")
M_MACHINE_ID: Final = ns.q(MACHINE_ID_NS, "MachineID")

_DIALECTS: Final = {
    ns.DIALECT_WQL.lower(): ns.DIALECT_WQL, ns.DIALECT_CQL.lower(): ns.DIALECT_CQL,
    "wql": ns.DIALECT_WQL, "cql": ns.DIALECT_CQL, "dmtf:cql": ns.DIALECT_CQL,
}

#: the longest Expires or Heartbeats we take literally (longer: never expires; ~3 years)
MAX_EXPIRES: Final = 100_000_000.0
MIN_HEARTBEAT: Final = 0.05


# --- requests -----------------------------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class EndpointReference:
    """A WS-Addressing EPR as WS-Eventing uses it: an address and the reference parameters (Clark name →
    text) that every message sent to it carries as headers (``e:Identifier`` among them)."""

    address: str
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def identifier(self) -> str | None:
        return self.parameters.get(E_IDENTIFIER)


@dataclass(kw_only=True, slots=True)
class SubscribeRequest(Request):
    """``wse:Subscribe``. ``expires`` and ``heartbeat`` are seconds (``expires`` measured from when the
    request was read: an xs:dateTime is turned into seconds from now); ``connection_retry`` is (interval in
    seconds, total attempts); ``max_elements``/``max_time`` batch Events-mode deliveries, and
    ``delivery_max_envelope`` (the Delivery's own ``wsman:MaxEnvelopeSize``) bounds each event message."""

    ACTION: ClassVar[str] = ACTION_SUBSCRIBE
    delivery_mode: str = MODE_PULL
    notify_to: EndpointReference | None = None
    end_to: EndpointReference | None = None
    expires: float | None = None
    heartbeat: float | None = None
    filter: Filter | None = None
    send_bookmarks: bool = False
    bookmark: str | None = None
    max_elements: int | None = None
    max_time: float | None = None
    delivery_max_envelope: int | None = None
    connection_retry: tuple[float, int] | None = None
    content_encoding: str | None = None

    def effective_resource_uri(self) -> str | None:
        """The URI given, the class's, or the namespace's wildcard (``…/wmi/<ns>/*`` or DMTF's ``…/wscim/1/*``)."""
        if self.resource_uri:
            return self.resource_uri
        if self.class_name and self.class_name != "*":
            return resource_uri(self.namespace, self.class_name, self.uri_style)
        if self.uri_style is UriStyle.WMI and self.namespace:
            return resource_uri(self.namespace, "*", self.uri_style)
        return DMTF_WILDCARD


@dataclass(kw_only=True, slots=True)
class UnsubscribeRequest(Request):
    """``wse:Unsubscribe``: ``identifier`` is the ``e:Identifier`` header the SubscribeResponse gave."""

    ACTION: ClassVar[str] = ACTION_UNSUBSCRIBE
    identifier: str = ""


@dataclass(kw_only=True, slots=True)
class RenewRequest(Request):
    """``wse:Renew`` (answered ``wse:UnableToRenew``, as WinRM does)."""

    ACTION: ClassVar[str] = ACTION_RENEW
    identifier: str = ""
    expires: float | None = None


@dataclass(kw_only=True, slots=True)
class GetStatusRequest(Request):
    """``wse:GetStatus`` (answered ``wsa:ActionNotSupported``, as OMI does)."""

    ACTION: ClassVar[str] = ACTION_GET_STATUS
    identifier: str = ""


# --- responses ------------------------------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class SubscribeResponse(Response):
    """``wse:SubscribeResponse``: the subscription manager (``address`` and ``identifier``, with the resource
    URI among its reference parameters), the enumeration ``context`` to Pull from (Pull mode), and when it
    ``expires`` (seconds; None: not said)."""

    identifier: str = ""
    address: str = ns.ANONYMOUS
    resource_uri: str | None = None
    context: str | None = None
    expires: float | None = None
    # where the subscription starts (openmi, with SendBookmarks): a ``wsman:Bookmark`` header, so that a client
    # that must subscribe again before its first event resumes from there (others ignore the header)
    bookmark: str | None = None


@dataclass(kw_only=True, slots=True)
class UnsubscribeResponse(Response):
    pass


# --- reading a Subscribe body (server) --------------------------------------------------------------------------


def _text(el: _Elem) -> str:
    return (el.text or "").strip()


def read_epr(el: _Elem) -> EndpointReference:
    """``NotifyTo``/``EndTo``/``SubscriptionManager``: the address and the reference parameters (or
    properties, the older name OMI writes)."""
    addr = el.find(ns.A_ADDRESS)
    address = _text(addr) if addr is not None else ""
    params: dict[str, str] = {}
    for holder in (el.find(ns.A_REFERENCE_PARAMETERS), el.find(ns.A_REFERENCE_PROPERTIES)):
        if holder is None:
            continue
        for p in holder:
            if isinstance(p.tag, str):
                params[p.tag] = _inner(p)
    return EndpointReference(address=address, parameters=params)


def _inner(el: _Elem) -> str:
    """An element's content as text: its text, or its children serialized (an XML bookmark)."""
    kids = [c for c in el if isinstance(c.tag, str)]
    if not kids:
        return _text(el)
    return "".join(etree.tostring(c, encoding="unicode", with_tail=False) for c in kids)


def _expires(text: str, what: str = "Expires") -> float | None:
    """An xs:duration, or an xs:dateTime from now, in seconds; None when it is longer than MAX_EXPIRES."""
    text = text.strip()
    if len(text) > 64:
        raise protocol_fault("wse:InvalidExpirationTime", f"{what} is too long ({len(text)} characters).")
    if text.startswith(("P", "-P")):
        try:
            seconds = parse_duration(text).total_seconds()
        except ValueError as exc:
            raise protocol_fault("wse:InvalidExpirationTime", f"{what} {text!r} is not valid: {exc}") from None
    else:
        try:
            when = parse_wire_datetime(text)
        except ValueError:
            when = None
        if not isinstance(when, _dt.datetime):
            raise protocol_fault("wse:InvalidExpirationTime",
                                 f"{what} must be an xs:duration or an xs:dateTime, not {text!r}.")
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        seconds = (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds()
        if seconds <= 0:
            raise protocol_fault("wse:InvalidExpirationTime", f"{what} {text!r} is in the past.")
    if seconds <= 0:
        raise protocol_fault("wse:InvalidExpirationTime", f"{what} must be greater than zero, not {text!r}.")
    return None if seconds > MAX_EXPIRES else seconds


def _heartbeat(el: _Elem) -> float:
    text = _text(el)
    if not text.startswith("P"):
        raise protocol_fault("wsman:UnsupportedFeature", "Heartbeat must be xs:duration.", "Heartbeats")
    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError as exc:
        raise protocol_fault("wsman:UnsupportedFeature", f"Heartbeats {text!r}: {exc}", "Heartbeats") from None
    if seconds < MIN_HEARTBEAT:
        raise protocol_fault("wsman:UnsupportedFeature",
                             f"Heartbeats must be at least {MIN_HEARTBEAT} s, not {text!r}.", "Heartbeats")
    return min(seconds, MAX_EXPIRES)


def _positive_int(el: _Elem, what: str) -> int:
    try:
        n = int(_text(el))
    except ValueError:
        n = 0
    if n < 1:
        raise protocol_fault("wsman:SchemaValidationError", f"{what} must be a positive integer, not {_text(el)!r}.")
    return n


def _subscribe_filter(el: _Elem) -> Filter:
    raw = (el.get("Dialect") or "").strip()
    dialect = _DIALECTS.get(raw.lower())
    if dialect is None:
        raise protocol_fault("wse:FilteringRequestedUnavailable",
                             f"The filter dialect {raw or '(XPath, the default)'!r} is not supported for "
                             f"subscriptions; use WQL ({ns.DIALECT_WQL}) or CQL ({ns.DIALECT_CQL}).",
                             result=MIResult.NOT_SUPPORTED)
    query = text_of(el).strip()
    if not query:
        raise protocol_fault("wse:EventSourceUnableToProcess", "The filter holds no query.",
                             result=MIResult.INVALID_QUERY)
    return Filter(dialect=dialect, query=query)


def _delivery(el: _Elem, req: SubscribeRequest) -> None:
    mode = (el.get("Mode") or MODE_PUSH).strip()  # WS-Eventing: Push when no Mode is given
    if mode not in MODES:
        raise protocol_fault("wse:DeliveryModeRequestedUnavailable",
                             f"The delivery mode {mode!r} is not supported (Pull, Push, PushWithAck, Events).",
                             result=MIResult.NOT_SUPPORTED)
    req.delivery_mode = mode
    for c in el:
        tag = c.tag
        if not isinstance(tag, str):
            continue
        if tag == E_NOTIFY_TO:
            req.notify_to = read_epr(c)
        elif tag == W_HEARTBEATS:
            req.heartbeat = _heartbeat(c)
        elif tag == W_CONNECTION_RETRY:
            total_text = (c.get("Total") or "0").strip()
            try:
                total = int(total_text)
                interval = parse_duration(_text(c) or "PT0S").total_seconds()
            except ValueError:
                raise protocol_fault("wsman:InternalError",
                                     f"ConnectionRetry {_text(c)!r} Total={total_text!r} is not valid.") from None
            if (total == 0) != (interval == 0) or total < 0:
                # MS-WSMV: the interval and @Total are both zero or both non-zero
                raise protocol_fault("wsman:InternalError",
                                     "ConnectionRetry and its Total must be both zero or both non-zero.")
            req.connection_retry = (interval, total) if total else None
        elif tag == ns.W_MAX_ELEMENTS:
            req.max_elements = _positive_int(c, "MaxElements")
        elif tag == W_MAX_TIME:
            req.max_time = _heartbeat_like(c, "MaxTime")
        elif tag == W_CONTENT_ENCODING:
            req.content_encoding = _text(c)
        elif tag == ns.W_MAX_ENVELOPE_SIZE:
            req.delivery_max_envelope = _positive_int(c, "MaxEnvelopeSize")
        elif tag in (ns.W_LOCALE, ns.P_DATA_LOCALE, ns.q(ns.WSMAN, "Auth")):
            continue
        elif c.get(ns.S_MUST_UNDERSTAND) in ("true", "1"):
            raise protocol_fault("wsman:UnsupportedFeature",
                                 f"The delivery option {etree.QName(c).localname} is not supported.")
    if mode != MODE_PULL:
        if req.notify_to is None or not req.notify_to.address:
            raise protocol_fault("wsman:EventDeliverToUnusable",
                                 f"The delivery mode {mode.rpartition('/')[2]} needs a NotifyTo address.",
                                 "UnusableAddress", result=MIResult.INVALID_PARAMETER)
        addr = req.notify_to.address.lower()
        if not addr.startswith(("http://", "https://")):
            raise protocol_fault("wsman:EventDeliverToUnusable",
                                 f"The NotifyTo address {req.notify_to.address!r} is not an http(s) URL.",
                                 "UnusableAddress", result=MIResult.INVALID_PARAMETER)


def _heartbeat_like(el: _Elem, what: str) -> float:
    try:
        seconds = parse_duration(_text(el)).total_seconds()
    except ValueError as exc:
        raise protocol_fault("wsman:SchemaValidationError", f"{what} {_text(el)!r}: {exc}") from None
    if seconds <= 0:
        raise protocol_fault("wsman:SchemaValidationError", f"{what} must be greater than zero.")
    return min(seconds, MAX_EXPIRES)


def parse_subscribe(first: _Elem | None, common: dict[str, Any]) -> SubscribeRequest:
    """The body of a Subscribe (``common``: the header fields of the request)."""
    if first is None or first.tag != E_SUBSCRIBE:
        raise protocol_fault("wsman:SchemaValidationError", "The body must be wse:Subscribe.")
    req = SubscribeRequest(**common)
    delivery = first.find(E_DELIVERY)
    if delivery is None:
        raise protocol_fault("wsman:SchemaValidationError", "wse:Subscribe needs wse:Delivery.")
    for c in first:
        tag = c.tag
        if not isinstance(tag, str):
            continue
        if tag == E_DELIVERY:
            _delivery(c, req)
        elif tag == E_END_TO:
            req.end_to = read_epr(c)
        elif tag == E_EXPIRES:
            req.expires = _expires(_text(c))
        elif tag in (ns.W_FILTER, E_FILTER):
            req.filter = _subscribe_filter(c)
        elif tag == W_SEND_BOOKMARKS:
            req.send_bookmarks = True
        elif tag == W_BOOKMARK:
            value = _inner(c)
            if not value:
                raise protocol_fault("wsman:InvalidBookmark", "The bookmark is empty.", "Invalid",
                                     result=MIResult.INVALID_PARAMETER)
            req.bookmark = value
        elif c.get(ns.S_MUST_UNDERSTAND) in ("true", "1"):
            raise protocol_fault("wsman:UnsupportedFeature",
                                 f"The Subscribe option {etree.QName(c).localname} is not supported.")
    return req


def parse_manager_request(kind: type[Request], first: _Elem | None, identifier: str | None,
                          common: dict[str, Any]) -> Request:
    """Unsubscribe, Renew or GetStatus: the subscription named by the ``e:Identifier`` header."""
    if not identifier:
        raise protocol_fault("wsa:MessageInformationHeaderRequired",
                             f"{kind.__name__[:-7]} needs the e:Identifier header of the subscription.")
    if kind is RenewRequest:
        expires = first.find(E_EXPIRES) if first is not None else None
        return RenewRequest(identifier=identifier, expires=_expires(_text(expires)) if expires is not None
                            else None, **common)
    if kind is GetStatusRequest:
        return GetStatusRequest(identifier=identifier, **common)
    return UnsubscribeRequest(identifier=identifier, **common)


MANAGER_REQUESTS: Final[dict[str, type[Request]]] = {
    ACTION_UNSUBSCRIBE: UnsubscribeRequest, ACTION_RENEW: RenewRequest, ACTION_GET_STATUS: GetStatusRequest,
}


# --- writing a Subscribe (client) -------------------------------------------------------------------------------


def wire_bookmark(bookmark: str | None) -> str | None:
    """mi.h's reserved bookmarks on the wire: OLDEST is ``…/bookmark/earliest``, NEWEST is no bookmark."""
    from openmi.cim.requests import BOOKMARK_NEWEST, BOOKMARK_OLDEST

    if bookmark is None or bookmark == BOOKMARK_NEWEST:
        return None
    if bookmark == BOOKMARK_OLDEST:
        return BOOKMARK_EARLIEST
    return bookmark


def mi_bookmark(bookmark: str | None) -> str | None:
    """A bookmark read from the wire, in mi.h's terms (``…/bookmark/earliest`` is BOOKMARK_OLDEST)."""
    from openmi.cim.requests import BOOKMARK_OLDEST

    if bookmark == BOOKMARK_EARLIEST:
        return BOOKMARK_OLDEST
    return bookmark


def _append_epr(parent: _Elem, epr: EndpointReference) -> None:
    _SubElement(parent, ns.A_ADDRESS).text = epr.address
    if epr.parameters:
        rp = _SubElement(parent, ns.A_REFERENCE_PARAMETERS)
        for tag, text in epr.parameters.items():
            _SubElement(rp, tag).text = text


def append_subscribe(body: _Elem, req: SubscribeRequest) -> None:
    """The body of a Subscribe in WinRM's order (spec §4.4): Delivery (NotifyTo, Heartbeats, ConnectionRetry,
    MaxElements, MaxTime, ContentEncoding), EndTo, Expires, Filter, SendBookmarks, Bookmark."""
    sub = _SubElement(body, E_SUBSCRIBE, nsmap={"e": ns.WSE})
    if req.end_to is not None:
        _append_epr(_SubElement(sub, E_END_TO), req.end_to)
    d = _SubElement(sub, E_DELIVERY, Mode=req.delivery_mode)
    if req.notify_to is not None:
        _append_epr(_SubElement(d, E_NOTIFY_TO), req.notify_to)
    if req.heartbeat is not None:
        _SubElement(d, W_HEARTBEATS).text = format_timeout(req.heartbeat)
    if req.connection_retry is not None:
        interval, total = req.connection_retry
        _SubElement(d, W_CONNECTION_RETRY, Total=str(total)).text = format_timeout(interval)
    if req.max_elements is not None:
        _SubElement(d, ns.W_MAX_ELEMENTS).text = str(req.max_elements)
    if req.max_time is not None:
        _SubElement(d, W_MAX_TIME).text = format_timeout(req.max_time)
    if req.delivery_max_envelope is not None:
        _SubElement(d, ns.W_MAX_ENVELOPE_SIZE).text = str(req.delivery_max_envelope)
    if req.content_encoding:
        _SubElement(d, W_CONTENT_ENCODING).text = req.content_encoding
    if req.expires is not None:
        _SubElement(sub, E_EXPIRES).text = format_timeout(req.expires)
    if req.filter is not None and req.filter.query is not None:
        _SubElement(sub, ns.W_FILTER, Dialect=req.filter.dialect).text = req.filter.query
    if req.send_bookmarks:
        _SubElement(sub, W_SEND_BOOKMARKS)
    if req.bookmark:
        _SubElement(sub, W_BOOKMARK).text = req.bookmark


def append_manager_request(header: _Elem, body: _Elem, req: Request) -> None:
    """Unsubscribe / Renew / GetStatus: the Identifier header and the (almost empty) body."""
    ident = getattr(req, "identifier", "")
    _SubElement(header, E_IDENTIFIER, nsmap={"e": ns.WSE}).text = ident
    tag = {UnsubscribeRequest: E_UNSUBSCRIBE, RenewRequest: E_RENEW}.get(type(req), ns.q(ns.WSE, "GetStatus"))
    el = _SubElement(body, tag, nsmap={"e": ns.WSE})
    if isinstance(req, RenewRequest) and req.expires is not None:
        _SubElement(el, E_EXPIRES).text = format_timeout(req.expires)


# --- SubscribeResponse ------------------------------------------------------------------------------------


def append_subscribe_response(body: _Elem, r: SubscribeResponse) -> None:
    """DSP0226's shape: the manager EPR (Address, ReferenceParameters with ResourceURI and Identifier),
    Expires, and the enumeration context of a Pull subscription."""
    sr = _SubElement(body, E_SUBSCRIBE_RESPONSE, nsmap={"e": ns.WSE})
    mgr = _SubElement(sr, E_SUBSCRIPTION_MANAGER)
    _SubElement(mgr, ns.A_ADDRESS).text = r.address
    rp = _SubElement(mgr, ns.A_REFERENCE_PARAMETERS)
    if r.resource_uri:
        _SubElement(rp, ns.W_RESOURCE_URI).text = r.resource_uri
    _SubElement(rp, E_IDENTIFIER).text = r.identifier
    if r.expires is not None:
        _SubElement(sr, E_EXPIRES).text = format_timeout(r.expires)
    if r.context is not None:
        _SubElement(sr, ns.N_ENUMERATION_CONTEXT).text = r.context


def read_subscribe_response(first: _Elem | None, meta: dict[str, Any]) -> SubscribeResponse:
    """DSP0226's SubscribeResponse, or OMI's (ReferenceProperties, no Address; the context id doubles as the
    Identifier)."""
    if first is None or first.tag != E_SUBSCRIBE_RESPONSE:
        raise MIError(MIResult.FAILED, "The answer to Subscribe holds no SubscribeResponse.")
    r = SubscribeResponse(**meta)
    for c in first:
        if c.tag == E_SUBSCRIPTION_MANAGER:
            epr = read_epr(c)
            r.address = epr.address or ns.ANONYMOUS
            r.identifier = epr.parameters.get(E_IDENTIFIER, "")
            r.resource_uri = epr.parameters.get(ns.W_RESOURCE_URI)
        elif c.tag == E_EXPIRES:
            try:
                r.expires = _expires(_text(c))
            except WSManFault:
                r.expires = None  # a source's odd Expires does not make its subscription unusable
        elif c.tag == ns.N_ENUMERATION_CONTEXT:
            r.context = _text(c) or None
    if not r.identifier and r.context:
        r.identifier = r.context
    if not r.identifier:
        raise MIError(MIResult.FAILED, "The SubscribeResponse names no subscription (no e:Identifier).")
    return r


# --- what a source sends to a sink (Push, PushWithAck, Events) --------------------------------------------


@dataclass(kw_only=True, slots=True)
class EventMessage:
    """One message from an event source to a sink: ``events`` (one for Push/PushWithAck, a batch for
    Events, none for a heartbeat); ``action`` is Event, Events or Heartbeat; ``ack_requested`` asks the sink
    to answer with an Ack; ``headers`` are the NotifyTo EPR's reference parameters, copied in;
    ``bookmark`` is that of the last event."""

    to: str
    action: str = ACTION_EVENT
    events: list[Instance] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    ack_requested: bool = False
    bookmark: str | None = None
    machine_id: str | None = None
    message_id: str = field(default_factory=new_message_id)
    style: UriStyle = UriStyle.DMTF
    namespace: str | None = None
    dropped: int = 0  # DroppedEvents: how many were lost

    @property
    def identifier(self) -> str | None:
        return self.headers.get(E_IDENTIFIER)


@dataclass(kw_only=True, slots=True)
class SubscriptionEnd:
    """``wse:SubscriptionEnd`` sent to the EndTo address: why the subscription is over. ``result``: the MI
    result that ended it, carried after the Reason as an ``OMI_Error`` (an extension element WS-Eventing
    allows there) so that an MI client ends the subscription with that very result; WS-Eventing's Status
    alone tells only shutting down / cancelling / delivery failure."""

    to: str
    identifier: str
    status: str = STATUS_SOURCE_SHUTTING_DOWN
    reason: str = ""
    result: int | None = None
    manager_address: str = ns.ANONYMOUS
    headers: dict[str, str] = field(default_factory=dict)
    message_id: str = field(default_factory=new_message_id)


def _source_envelope(to: str, action: str, message_id: str, headers: dict[str, str]) -> tuple[_Elem, _Elem, _Elem]:
    root = etree.Element(ns.S_ENVELOPE, nsmap={**ns.NSMAP, "e": ns.WSE})
    header = _SubElement(root, ns.S_HEADER)
    _SubElement(header, ns.A_TO).text = to
    _SubElement(header, ns.A_ACTION, {ns.S_MUST_UNDERSTAND: "true"}).text = action
    _SubElement(header, ns.A_MESSAGE_ID).text = message_id
    _SubElement(_SubElement(header, ns.A_REPLY_TO), ns.A_ADDRESS).text = ns.ANONYMOUS
    for tag, text in headers.items():
        _SubElement(header, tag).text = text
    return root, header, _SubElement(root, ns.S_BODY)


def build_event_message(m: EventMessage, *, wrap_datetimes: bool = True) -> bytes:
    """The bytes of an event delivery: Push puts the event instance in the body, Events wraps each in
    ``wsman:Event`` inside ``wsman:Events``; a heartbeat has an empty body."""
    root, header, body = _source_envelope(m.to, m.action, m.message_id, m.headers)
    if m.ack_requested:
        _SubElement(header, W_ACK_REQUESTED)
    if m.bookmark:
        _SubElement(header, W_BOOKMARK).text = m.bookmark
    if m.machine_id:
        _SubElement(header, M_MACHINE_ID, nsmap={"m": MACHINE_ID_NS}).text = m.machine_id
    if m.action == ACTION_EVENTS:
        events = _SubElement(body, W_EVENTS)
        for inst in m.events:
            ev = _SubElement(events, W_EVENT, Action=ACTION_EVENT)
            instance_to_element(inst, style=m.style, namespace=m.namespace, parent=ev, wrap_datetimes=wrap_datetimes)
    elif m.action == ACTION_DROPPED_EVENTS:
        _SubElement(body, ns.q(ns.WSMAN, "DroppedEvents"), Action=ACTION_EVENT).text = str(m.dropped)
    else:
        for inst in m.events[:1]:
            instance_to_element(inst, style=m.style, namespace=m.namespace, parent=body, wrap_datetimes=wrap_datetimes)
    return serialize(root)


def build_subscription_end(m: SubscriptionEnd) -> bytes:
    root, _, body = _source_envelope(m.to, ACTION_SUBSCRIPTION_END, m.message_id, m.headers)
    end = _SubElement(body, E_SUBSCRIPTION_END)
    mgr = _SubElement(end, E_SUBSCRIPTION_MANAGER)
    _SubElement(mgr, ns.A_ADDRESS).text = m.manager_address
    _SubElement(_SubElement(mgr, ns.A_REFERENCE_PARAMETERS), E_IDENTIFIER).text = m.identifier
    _SubElement(end, E_STATUS).text = m.status
    if m.reason:
        _SubElement(end, E_REASON, {ns.XML_LANG: "en-US"}).text = m.reason
    if m.result is not None:
        append_result_error(end, m.result, m.reason)
    return serialize(root)


def build_ack(relates_to: str, to: str = ns.ANONYMOUS) -> bytes:
    """The sink's Ack of a delivery that asked for one (MS-WSMV §4.6.4: RelatesTo, an empty body)."""
    root = etree.Element(ns.S_ENVELOPE, nsmap=ns.NSMAP)
    header = _SubElement(root, ns.S_HEADER)
    _SubElement(header, ns.A_TO).text = to
    _SubElement(header, ns.A_ACTION).text = ACTION_ACK
    _SubElement(header, ns.A_MESSAGE_ID).text = new_message_id()
    _SubElement(header, ns.A_RELATES_TO).text = relates_to
    _SubElement(root, ns.S_BODY)
    return serialize(root)


def parse_ack(body: bytes, content_type: str | None, expected: str, limits: Limits = CLIENT_LIMITS) -> None:
    """Check the sink's answer to a delivery with AckRequested: an Ack relating to ``expected``; a fault
    (``wsman:DeliveryRefused`` …) raises :class:`WSManFault`, anything else MIError(FAILED)."""
    _, header, body_el, _ = parse_envelope(body, content_type, limits)
    action = relates = None
    for c in header if header is not None else ():
        if c.tag == ns.A_ACTION:
            action = _text(c)
        elif c.tag == ns.A_RELATES_TO:
            relates = _text(c)
    first = next((c for c in body_el if isinstance(c.tag, str)), None) if body_el is not None else None
    if first is not None and first.tag == ns.S_FAULT:
        raise WSManFault(read_fault(first, action), relates_to=relates)
    if action != ACTION_ACK:
        raise MIError(MIResult.FAILED, f"the event sink answered {action or 'no action'} instead of an Ack")
    if relates is None or relates.lower() != expected.lower():
        raise MIError(MIResult.FAILED, f"the event sink's Ack relates to {relates}, not to {expected}")


@dataclass(kw_only=True, slots=True)
class SinkMessage:
    """What a sink received: events (with the batch's bookmark), a heartbeat, or a SubscriptionEnd."""

    action: str
    message_id: str
    identifier: str | None
    events: list[Instance] = field(default_factory=list)
    bookmark: str | None = None
    machine_id: str | None = None
    ack_requested: bool = False
    end_status: str | None = None
    end_reason: str | None = None
    end_result: MIResult | int | None = None  # the MI result a SubscriptionEnd carried (its OMI_Error)
    end_error: Instance | None = None
    headers: dict[str, str] = field(default_factory=dict)


def parse_sink_message(body: bytes, content_type: str | None, *, limits: Limits = CLIENT_LIMITS) -> SinkMessage:
    """A message posted to an event sink → :class:`SinkMessage`; :class:`WSManFault` if it is unreadable."""
    _, header, body_el, _ = parse_envelope(body, content_type, limits)
    action = message_id = None
    bookmark = machine = None
    ack = False
    headers: dict[str, str] = {}
    for c in header if header is not None else ():
        tag = c.tag
        if not isinstance(tag, str):
            continue
        if tag == ns.A_ACTION:
            action = _text(c)
        elif tag == ns.A_MESSAGE_ID:
            message_id = _text(c)
        elif tag == W_ACK_REQUESTED:
            ack = True
        elif tag == W_BOOKMARK:
            bookmark = _inner(c) or None
        elif tag == M_MACHINE_ID:
            machine = _text(c) or None
        elif tag not in (ns.A_TO, ns.A_REPLY_TO, ns.A_RELATES_TO):
            headers[tag] = _inner(c)
    if not action:
        raise protocol_fault("wsa:MessageInformationHeaderRequired", "The message has no wsa:Action header.")
    msg = SinkMessage(action=action, message_id=message_id or "", identifier=headers.get(E_IDENTIFIER),
                      bookmark=bookmark, machine_id=machine, ack_requested=ack, headers=headers)
    first = next((c for c in body_el if isinstance(c.tag, str)), None) if body_el is not None else None
    if action == ACTION_SUBSCRIPTION_END:
        if first is None or first.tag != E_SUBSCRIPTION_END:
            raise protocol_fault("wsman:SchemaValidationError", "SubscriptionEnd needs a wse:SubscriptionEnd body.")
        msg.end_status = (first.findtext(E_STATUS) or "").strip() or None
        msg.end_reason = (first.findtext(E_REASON) or "").strip() or None
        carried = read_result_error(first)
        if carried is not None:
            msg.end_result, msg.end_error = carried
        mgr = first.find(E_SUBSCRIPTION_MANAGER)
        if mgr is not None and msg.identifier is None:
            msg.identifier = read_epr(mgr).identifier
        return msg
    if first is None:
        return msg  # a heartbeat
    if first.tag == W_EVENTS:
        for ev in first:
            if ev.tag == W_EVENT:
                inner = next((c for c in ev if isinstance(c.tag, str)), None)
                if inner is not None:
                    msg.events.append(element_to_instance(inner, None))
    elif first.tag == W_EVENT:
        inner = next((c for c in first if isinstance(c.tag, str)), None)
        if inner is not None:
            msg.events.append(element_to_instance(inner, None))
    elif first.tag != ns.q(ns.WSMAN, "DroppedEvents"):
        msg.events.append(element_to_instance(first, None))
    return msg


def event_item(el: _Elem) -> _Elem:
    """The instance element of a PullResponse item, unwrapping ``wsman:Event`` (a source may wrap events)."""
    depth = 0
    while el.tag == W_EVENT and depth < MAX_NESTING:
        inner = next((c for c in el if isinstance(c.tag, str)), None)
        if inner is None:
            break
        el, depth = inner, depth + 1
    return el


def end_status_result(status: str | None, carried: MIResult | int | None = None) -> MIResult | int:
    """The MI result a SubscriptionEnd stands for: the one it carried (openmi's), else its status's (OMI's
    client table: each is an error)."""
    if carried is not None and carried != MIResult.OK:
        return carried
    if status == STATUS_SOURCE_SHUTTING_DOWN:
        return MIResult.SERVER_IS_SHUTTING_DOWN
    return MIResult.FAILED

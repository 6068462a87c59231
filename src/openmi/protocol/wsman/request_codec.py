"""Requests ⇄ bytes: the server's ``parse_request`` and the client's ``build_request``.

Every header of §2 of the notes is handled: mustUnderstand is honoured for the headers we implement,
faulted with ``s:MustUnderstand`` for the ones we do not, and ignored for ``wsmv:OperationID`` (a
robust-connection retransmission we do not support) and the session headers; ``wsman:Locale`` and
``wsmv:DataLocale`` marked mustUnderstand draw ``wsman:UnsupportedFeature``.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from copy import deepcopy
from typing import TYPE_CHECKING, Any, Final

from lxml import etree

from openmi.cim.errors import MIError
from openmi.cim.instance import Instance
from openmi.cim.types import MIResult

from . import eventing as ev
from . import namespaces as ns
from .envelope import (
    SERVER_LIMITS,
    Limits,
    append_option_set,
    format_timeout,
    must_understand,
    parse_envelope,
    parse_timeout,
    read_option_set,
)
from .faults import WSManFault, protocol_fault
from .requests import (
    CLASS_NAME_SELECTOR,
    CLASS_NAMES_ONLY_OPTION,
    REQUEST_TYPES,
    AssociationFilter,
    CreateRequest,
    DeleteRequest,
    EnumerateClassesRequest,
    EnumerateRequest,
    EnumerationMode,
    Filter,
    GetClassRequest,
    GetRequest,
    IdentifyRequest,
    InvokeRequest,
    PolymorphismMode,
    PullRequest,
    PutRequest,
    ReleaseRequest,
    Request,
)
from .uri import (
    CIMNAMESPACE_SELECTOR,
    CIMXML_SCHEMA_URI,
    UriStyle,
    is_class_schema_uri,
    needs_cimnamespace_selector,
    parse_resource_uri,
    resolve_namespace,
)
from .values import (
    ClassLookup,
    Selectors,
    WireError,
    append_epr,
    append_selector_set,
    element_to_instance,
    epr_to_instance,
    instance_to_element,
    parameters_class,
    read_selector_set,
    text_of,
)

if TYPE_CHECKING:
    _Elem = etree._Element
else:
    _Elem = Any

_SubElement = etree.SubElement

_IGNORED_HEADERS: Final = frozenset({
    ns.P_SESSION_ID, ns.P_OPERATION_ID, ns.P_SEQUENCE_ID, ns.A_RELATES_TO, ns.q(ns.WSMV, "SequenceID"),
})


def wire_fault(exc: WireError) -> WSManFault:
    """The fault for a body or selector set we cannot read."""
    if exc.kind == "selectors":
        return protocol_fault("wsman:InvalidSelectors", str(exc), exc.detail, result=MIResult.INVALID_PARAMETER)
    if exc.kind == "depth":
        return protocol_fault("wsman:EncodingLimit", str(exc), result=MIResult.SERVER_LIMITS_EXCEEDED)
    if exc.kind == "schema":
        return protocol_fault("wsman:SchemaValidationError", str(exc))
    return protocol_fault("wxf:InvalidRepresentation", str(exc), "InvalidValues", result=MIResult.TYPE_MISMATCH)


class _Header:
    __slots__ = ("action", "data_locale", "identifier", "locale", "max_envelope_size", "message_id", "operation_id",
                 "operation_timeout", "options", "options_mu", "reply_to", "resource_uri", "selectors",
                 "session_id", "to")

    def __init__(self) -> None:
        self.to: str | None = None
        self.action: str | None = None
        self.message_id: str | None = None
        self.resource_uri: str | None = None
        self.reply_to: str = ns.ANONYMOUS
        self.max_envelope_size: int | None = None
        self.operation_timeout: float | None = None
        self.locale: str | None = None
        self.data_locale: str | None = None
        self.session_id: str | None = None
        self.operation_id: str | None = None
        self.selectors: Selectors = {}
        self.options: dict[str, Any] = {}
        self.options_mu = False
        self.identifier: str | None = None


def _text(el: _Elem) -> str:
    return (el.text or "").strip()


def _read_header(header: _Elem | None, h: _Header) -> None:
    if header is None:
        return
    for child in header:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == ns.A_ACTION:
            h.action = _text(child)
        elif tag == ns.A_MESSAGE_ID:
            h.message_id = _text(child)
        elif tag == ns.W_RESOURCE_URI:
            h.resource_uri = _text(child)
        elif tag == ns.A_TO:
            h.to = _text(child)
        elif tag == ns.W_SELECTOR_SET:
            h.selectors = read_selector_set(child)
        elif tag in (ns.A_REPLY_TO, ns.A_FAULT_TO):
            addr = child.findtext(ns.A_ADDRESS)
            if addr is not None and addr.strip() != ns.ANONYMOUS:
                raise protocol_fault("wsman:UnsupportedFeature",
                                     f"Only the anonymous {etree.QName(child).localname} address is supported.",
                                     "AddressingMode")
            if tag == ns.A_REPLY_TO and addr is not None:
                h.reply_to = addr.strip()
        elif tag == ns.W_MAX_ENVELOPE_SIZE:
            try:
                h.max_envelope_size = int(_text(child))
            except ValueError:
                raise protocol_fault("wsa:InvalidMessageInformationHeader",
                                     f"MaxEnvelopeSize must be a number of octets, not {_text(child)!r}.") from None
        elif tag == ns.W_OPERATION_TIMEOUT:
            h.operation_timeout = parse_timeout(child.text or "")
        elif tag in (ns.W_LOCALE, ns.P_DATA_LOCALE):
            if must_understand(child):
                raise protocol_fault("wsman:UnsupportedFeature",
                                     f"{etree.QName(child).localname} must not be marked mustUnderstand.", "Locale")
            lang = child.get(ns.XML_LANG)
            if tag == ns.W_LOCALE:
                h.locale = lang
            else:
                h.data_locale = lang
        elif tag == ns.W_OPTION_SET:
            h.options = read_option_set(child)
            h.options_mu = must_understand(child)
        elif tag in _IGNORED_HEADERS:
            if tag == ns.P_SESSION_ID:
                h.session_id = _text(child)
            elif tag == ns.P_OPERATION_ID:
                h.operation_id = _text(child)
        elif tag == ev.E_IDENTIFIER:
            h.identifier = _text(child)
        elif tag == ns.W_FRAGMENT_TRANSFER and must_understand(child):
            raise protocol_fault("wsman:UnsupportedFeature", "Fragment-level transfer is not supported.",
                                 "FragmentLevelAccess")
        elif must_understand(child):
            qn = etree.QName(child)
            raise protocol_fault("s:MustUnderstand", f"The header {qn.localname} ({qn.namespace}) is not understood.",
                                 not_understood=(qn.namespace or "", qn.localname))


def _first_child(el: _Elem | None) -> _Elem | None:
    if el is None:
        return None
    for c in el:
        if isinstance(c.tag, str):
            return c
    return None


def parse_request(
    body: bytes,
    content_type: str | None = None,
    *,
    wsmanidentify: str | None = None,
    class_lookup: ClassLookup | None = None,
    limits: Limits = SERVER_LIMITS,
) -> Request:
    """Bytes of a request → a typed Request, or a :class:`WSManFault` to answer with.

    ``wsmanidentify`` is the value of the HTTP ``WSMANIDENTIFY`` header, if any. ``class_lookup``
    (``(namespace, class_name) -> Class | None``) types instance bodies and method parameters; without
    it their values stay text.
    """
    _, header, body_el, encoding = parse_envelope(body, content_type, limits)
    h = _Header()
    try:
        _read_header(header, h)
        first = _first_child(body_el)
        if h.action is None or h.action == ns.ACTION_IDENTIFY:
            if first is not None and first.tag == ns.ID_IDENTIFY:
                unauth = (wsmanidentify or "").strip().lower() == "unauthenticated"
                return IdentifyRequest(message_id=h.message_id or "", to=h.to, unauthenticated=unauth,
                                       encoding=encoding)
            raise protocol_fault("wsa:MessageInformationHeaderRequired", "The request has no wsa:Action header.")
        if not h.message_id:
            raise protocol_fault("wsa:MessageInformationHeaderRequired", "The request has no wsa:MessageID header.")
        return _typed_request(h, first, encoding, class_lookup, limits)
    except WireError as exc:
        f = wire_fault(exc)
        f.relates_to, f.encoding = h.message_id, encoding
        raise f from None
    except WSManFault as f:
        f.relates_to, f.encoding = h.message_id, encoding
        raise
    except MIError as exc:  # a namespace the one namespace rule refuses (resource URI or __cimnamespace)
        bad = protocol_fault("wsa:DestinationUnreachable", exc.message, "InvalidResourceURI", result=exc.result)
        bad.relates_to, bad.encoding = h.message_id, encoding
        raise bad from None
    except (ArithmeticError, ValueError, TypeError, LookupError, RecursionError) as exc:
        # A value no reader above anticipated (a number past a C limit, …): still the client's input, so a
        # fault, never an exception escaping the codec. MemoryError and the like are not the client's doing.
        unread = protocol_fault("wxf:InvalidRepresentation",
                                f"The request could not be read: {type(exc).__name__}: {str(exc)[:200]}",
                                "InvalidValues", result=MIResult.INVALID_PARAMETER)
        unread.relates_to, unread.encoding = h.message_id, encoding
        raise unread from None


MAX_IDENTIFY_ENVELOPE: Final = 16 * 1024
"""The largest body read from a client that has not authenticated (an Identify is under 1 KB)."""


def parse_identify(body: bytes, content_type: str | None = None, *, wsmanidentify: str | None = None,
                   limits: Limits = SERVER_LIMITS) -> IdentifyRequest | None:
    """An unauthenticated request → its IdentifyRequest, or None if it is anything else.

    Reads no more than an Identify needs: bodies over MAX_IDENTIFY_ENVELOPE are not parsed at all, and of the
    headers only the Action and MessageID are looked at, so nothing a client without credentials sends reaches
    a cache or a class lookup. Raises :class:`WSManFault` for an Identify-sized body that is not SOAP.
    """
    if len(body) > MAX_IDENTIFY_ENVELOPE:
        return None
    small = dataclasses.replace(limits, max_envelope=min(MAX_IDENTIFY_ENVELOPE, limits.max_envelope))
    _, header, body_el, encoding = parse_envelope(body, content_type, small)
    action = message_id = None
    for child in header if header is not None else ():
        if child.tag == ns.A_ACTION:
            action = _text(child)
        elif child.tag == ns.A_MESSAGE_ID:
            message_id = _text(child)
    first = _first_child(body_el)
    if (action is not None and action != ns.ACTION_IDENTIFY) or first is None or first.tag != ns.ID_IDENTIFY:
        return None
    unauth = (wsmanidentify or "").strip().lower() == "unauthenticated"
    return IdentifyRequest(message_id=message_id or "", unauthenticated=unauth, encoding=encoding)


def _typed_request(
    h: _Header, first: _Elem | None, encoding: str, lookup: ClassLookup | None, limits: Limits,
) -> Request:
    if not h.resource_uri:
        raise protocol_fault("wsa:DestinationUnreachable", "The request has no wsman:ResourceURI header.",
                             "InvalidResourceURI", result=MIResult.INVALID_PARAMETER)
    if h.max_envelope_size is not None:
        if h.max_envelope_size < limits.min_envelope:
            raise protocol_fault("wsman:EncodingLimit",
                                 f"MaxEnvelopeSize must be at least {limits.min_envelope} octets.",
                                 "MinimumEnvelopeLimit")
        h.max_envelope_size = min(h.max_envelope_size, limits.max_envelope)
    ref = parse_resource_uri(h.resource_uri)
    cimns = h.selectors.pop(CIMNAMESPACE_SELECTOR, None)
    if isinstance(cimns, Instance):
        raise protocol_fault("wsman:InvalidSelectors", "__cimnamespace must be text.", "TypeMismatch")
    default = limits.default_namespace if ref.style is not UriStyle.OTHER else None
    namespace = resolve_namespace(ref, cimns, default)
    common: dict[str, Any] = dict(
        message_id=h.message_id, to=h.to, resource_uri=h.resource_uri, namespace=namespace,
        class_name=ref.class_name, selectors=h.selectors, operation_timeout=h.operation_timeout,
        max_envelope_size=h.max_envelope_size, locale=h.locale, data_locale=h.data_locale,
        option_set=h.options, option_set_must_understand=h.options_mu, reply_to=h.reply_to,
        session_id=h.session_id, operation_id=h.operation_id, uri_style=ref.style, encoding=encoding,
    )
    action = h.action or ""
    kind = REQUEST_TYPES.get(action)
    if is_class_schema_uri(h.resource_uri):
        return _class_request(kind, action, first, namespace, common)
    if kind is GetRequest and CLASS_NAME_SELECTOR in h.selectors and h.resource_uri.rstrip().endswith(
            "/cim-schema/2/*"):  # GetClass in the WS-CIM format, as OMI answers it
        raise protocol_fault("wsman:UnsupportedFeature", "GetClass is not supported in the WS-CIM format; use the "
                             f"resource URI {CIMXML_SCHEMA_URI}.")
    if kind is GetRequest or kind is DeleteRequest:
        return kind(**common)
    if kind is PutRequest or kind is CreateRequest:
        inst = None
        if first is not None:
            cls = lookup(namespace, etree.QName(first).localname) if lookup is not None else None
            inst = element_to_instance(first, cls, namespace=namespace, class_lookup=lookup)
        elif kind is PutRequest:
            raise protocol_fault("wxf:InvalidRepresentation", "Put needs the instance in the body.", "MissingValues")
        else:
            raise protocol_fault("wxf:InvalidRepresentation", "Create needs the instance in the body.",
                                 "MissingValues")
        return kind(instance=inst, **common)
    if kind is EnumerateRequest:
        return _enumerate(first, namespace, common)
    if kind is PullRequest or kind is ReleaseRequest:
        return _typed_pull_release(kind, first, common)
    if action == ev.ACTION_SUBSCRIBE:
        return ev.parse_subscribe(first, common)
    manager = ev.MANAGER_REQUESTS.get(action)
    if manager is not None:
        return ev.parse_manager_request(manager, first, h.identifier, common)
    method = _method_from_action(action, h.resource_uri, ref.class_name)
    if method is None:
        raise protocol_fault("wsa:ActionNotSupported", f"The action {action!r} is not supported.", "ActionMismatch")
    params = None
    if first is not None:
        pcls = None
        if lookup is not None and ref.class_name:
            cls = lookup(namespace, ref.class_name)
            m = cls.methods.get(method) if cls is not None else None
            pcls = parameters_class(m) if m is not None else None
        params = element_to_instance(first, pcls, namespace=namespace, class_lookup=lookup,
                                     class_name="__parameters")
    else:
        params = Instance.from_elements("__parameters", {}, namespace=namespace)
    return InvokeRequest(method=method, parameters=params, action_uri=action, **common)


def _typed_pull_release(kind: type[Request], first: _Elem | None, common: dict[str, Any]) -> Request:
    if kind is PullRequest:
        ctx = _context(first, ns.N_PULL)
        return PullRequest(context=ctx, max_elements=_positive(first, ns.N_MAX_ELEMENTS),
                           max_time=_max_time(first), max_characters=_positive(first, ns.N_MAX_CHARACTERS),
                           **common)
    return ReleaseRequest(context=_context(first, ns.N_RELEASE), **common)


def _class_request(kind: type[Request] | None, action: str, first: _Elem | None, namespace: str | None,
                   common: dict[str, Any]) -> Request:
    """GetClass (Get) and EnumerateClasses (Enumerate) on the CIM-XML schema URI; Pull and Release of
    a class enumeration; any other action there is not supported."""
    selectors = common["selectors"]
    name = selectors.pop(CLASS_NAME_SELECTOR, None)
    if isinstance(name, Instance):
        raise protocol_fault("wsman:InvalidSelectors", "ClassName must be text.", "TypeMismatch")
    name = name.strip() if name else None
    if selectors and kind is not PullRequest and kind is not ReleaseRequest:
        raise protocol_fault("wsman:InvalidSelectors",
                             f"The class schema URI takes the selectors __cimnamespace and ClassName only, not "
                             f"{', '.join(sorted(selectors))}.", "UnexpectedSelectors")
    if kind is GetRequest:
        if not name:
            raise protocol_fault("wsman:InvalidSelectors", "GetClass needs the ClassName selector.",
                                 "InsufficientSelectors")
        common["class_name"] = name
        return GetClassRequest(**common)
    if kind is EnumerateRequest:
        common["class_name"] = name
        req = _enumerate(first, namespace, common)
        if req.mode is not EnumerationMode.OBJECTS or req.filter is not None:
            raise protocol_fault("wsman:UnsupportedFeature",
                                 "EnumerateClasses takes no filter and no EnumerationMode.", "FilteringRequired"
                                 if req.filter is not None else "EnumerationMode")
        names_only = req.option_set.get(CLASS_NAMES_ONLY_OPTION)
        return EnumerateClassesRequest(
            deep=req.polymorphism is not PolymorphismMode.NONE,
            names_only=(names_only.strip().lower() in ("true", "1")) if isinstance(names_only, str)
            else bool(names_only),
            optimize=req.optimize, max_elements=req.max_elements, polymorphism=req.polymorphism,
            expires=req.expires, **common)
    if kind is PullRequest or kind is ReleaseRequest:
        common["class_name"] = name
        return _typed_pull_release(kind, first, common)
    raise protocol_fault("wsa:ActionNotSupported",
                         f"The class schema URI supports GetClass (Get) and EnumerateClasses (Enumerate), not "
                         f"{action!r}.", "ActionMismatch")


def _method_from_action(action: str, resource_uri: str, class_name: str | None) -> str | None:
    """``<ResourceURI>/<Method>`` (WMI style) or ``…/<Class>/<Method>`` (OMI's DMTF style)."""
    if action.startswith("http://schemas.xmlsoap.org/ws/"):
        return None
    base = resource_uri.rstrip("/") + "/"
    if action.startswith(base):
        rest = action[len(base):]
        return rest if rest and "/" not in rest else None
    head, _, method = action.rpartition("/")
    if method and class_name and head.rpartition("/")[2].lower() == class_name.lower():
        return method
    return None


def _context(first: _Elem | None, expected: str) -> str:
    if first is None or first.tag != expected:
        raise protocol_fault("wsman:SchemaValidationError", f"The body must be {etree.QName(expected).localname}.")
    ctx = first.findtext(ns.N_ENUMERATION_CONTEXT)
    if not ctx or not ctx.strip():
        raise protocol_fault("wsen:InvalidEnumerationContext", "The request has no enumeration context.")
    return ctx.strip()


def _positive(parent: _Elem | None, tag: str) -> int | None:
    el = parent.find(tag) if parent is not None else None
    if el is None:
        return None
    try:
        n = int(_text(el))
    except ValueError:
        n = 0
    if n < 1:
        raise protocol_fault("wsman:SchemaValidationError",
                             f"{etree.QName(tag).localname} must be a positive integer, not {_text(el)!r}.")
    return n


def _max_time(parent: _Elem | None) -> float | None:
    el = parent.find(ns.N_MAX_TIME) if parent is not None else None
    if el is None:
        return None
    seconds = parse_timeout(el.text or "", "MaxTime")
    if seconds <= 0:
        raise protocol_fault("wsen:InvalidExpirationTime", "MaxTime must be greater than zero.")
    return seconds


_MODES: Final = {m.value: m for m in EnumerationMode if m.value}
_POLY: Final = {m.value: m for m in PolymorphismMode}


def _enumerate(first: _Elem | None, namespace: str | None, common: dict[str, Any]) -> EnumerateRequest:
    if first is None or first.tag != ns.N_ENUMERATE:
        raise protocol_fault("wsman:SchemaValidationError", "The body must be wsen:Enumerate.")
    req = EnumerateRequest(**common)
    for c in first:
        tag = c.tag
        if not isinstance(tag, str):
            continue
        if tag == ns.W_OPTIMIZE_ENUMERATION:
            req.optimize = True
        elif tag == ns.W_MAX_ELEMENTS:
            req.max_elements = _positive(first, ns.W_MAX_ELEMENTS)
        elif tag == ns.W_ENUMERATION_MODE:
            mode = _MODES.get(_text(c))
            if mode is None:
                raise protocol_fault("wsman:UnsupportedFeature", f"EnumerationMode {_text(c)!r} is not supported.",
                                     "EnumerationMode")
            req.mode = mode
        elif tag == ns.B_POLYMORPHISM_MODE:
            poly = _POLY.get(_text(c))
            if poly is None:
                raise protocol_fault("wsmb:PolymorphismModeNotSupported",
                                     f"PolymorphismMode {_text(c)!r} is not supported.")
            req.polymorphism = poly
        elif tag in (ns.W_FILTER, ns.N_FILTER):
            req.filter = _filter(c, namespace)
        elif tag == ns.N_EXPIRES:
            req.expires = _text(c)
        elif must_understand(c):
            raise protocol_fault("wsman:UnsupportedFeature",
                                 f"The Enumerate option {etree.QName(c).localname} is not supported.")
    return req


_DIALECTS: Final = {d.lower(): d for d in (ns.DIALECT_WQL, ns.DIALECT_CQL, ns.DIALECT_SELECTOR, ns.DIALECT_ASSOCIATION)}
_ASSOC_ASSOCIATED: Final = ns.q(ns.WSMB, "AssociatedInstances")
_ASSOC_ASSOCIATION: Final = ns.q(ns.WSMB, "AssociationInstances")


def _filter(el: _Elem, namespace: str | None) -> Filter:
    raw = (el.get("Dialect") or "").strip()
    dialect = _DIALECTS.get(raw.lower())
    if dialect is None:
        raise protocol_fault("wsen:FilterDialectRequestedUnavailable",
                             f"The filter dialect {raw or '(XPath, the default)'!r} is not supported.")
    if dialect in (ns.DIALECT_WQL, ns.DIALECT_CQL):
        query = text_of(el).strip()
        if not query:
            raise protocol_fault("wsen:CannotProcessFilter", "The filter holds no query.",
                                 result=MIResult.INVALID_QUERY)
        return Filter(dialect=dialect, query=query)
    if dialect == ns.DIALECT_SELECTOR:
        return Filter(dialect=dialect, selectors=read_selector_set(el.find(ns.W_SELECTOR_SET)))
    assoc = el.find(_ASSOC_ASSOCIATED)
    associators = assoc is not None
    if assoc is None:
        assoc = el.find(_ASSOC_ASSOCIATION)
    obj = assoc.find(ns.q(ns.WSMB, "Object")) if assoc is not None else None
    if assoc is None or obj is None:
        raise protocol_fault("wsen:CannotProcessFilter", "The association filter names no source object.",
                             result=MIResult.INVALID_QUERY)

    def opt(local: str) -> str | None:
        v = assoc.findtext(ns.q(ns.WSMB, local)) if assoc is not None else None
        return v.strip() if v and v.strip() else None

    return Filter(dialect=dialect, association=AssociationFilter(
        object=epr_to_instance(obj, namespace), associators=associators,
        association_class=opt("AssociationClassName"), result_class=opt("ResultClassName"),
        role=opt("Role"), result_role=opt("ResultRole"),
    ))


# --- client side --------------------------------------------------------------------------------

_MU: Final = {ns.S_MUST_UNDERSTAND: "true"}


def _template() -> _Elem:
    """To, ResourceURI, ReplyTo/Address, Action, MaxEnvelopeSize, MessageID; texts filled per request."""
    root = etree.Element(ns.S_ENVELOPE, nsmap=ns.NSMAP)
    header = _SubElement(root, ns.S_HEADER)
    _SubElement(header, ns.A_TO)
    _SubElement(header, ns.W_RESOURCE_URI, _MU)
    _SubElement(_SubElement(header, ns.A_REPLY_TO), ns.A_ADDRESS, _MU).text = ns.ANONYMOUS
    _SubElement(header, ns.A_ACTION, _MU)
    _SubElement(header, ns.W_MAX_ENVELOPE_SIZE, _MU)
    _SubElement(header, ns.A_MESSAGE_ID)
    _SubElement(root, ns.S_BODY)
    return root


_TEMPLATE: Final = _template()  # copied, not rebuilt: declaring namespaces and attributes is the slow part
_NOT_MU: Final = {ns.S_MUST_UNDERSTAND: "false"}
_IDENTIFY_NSMAP: Final = {"s": ns.SOAP, "wsmid": ns.WSMID}


def build_request(request: Request, *, wrap_datetimes: bool = False) -> bytes:
    """A typed Request → UTF-8 bytes to POST.

    Datetimes go bare by default (OMI misreads the ``cim:Datetime`` wrapper); pass
    ``wrap_datetimes=True`` for WinRM. ``__cimnamespace`` is added for DMTF-style URIs.
    """
    if isinstance(request, IdentifyRequest):
        root = etree.Element(ns.S_ENVELOPE, nsmap=_IDENTIFY_NSMAP)
        _SubElement(root, ns.S_HEADER)
        _SubElement(_SubElement(root, ns.S_BODY), ns.ID_IDENTIFY)
        return etree.tostring(root)
    root = deepcopy(_TEMPLATE)
    header = root[0]
    uri = request.effective_resource_uri()
    if not uri:
        raise ValueError("a request needs a resource URI or a class name")
    header[0].text = request.to or "http://localhost:5985/wsman"
    header[1].text = uri
    if request.reply_to != ns.ANONYMOUS:
        header[2][0].text = request.reply_to
    header[3].text = request.action
    header[5].text = request.message_id
    if request.max_envelope_size is not None:
        header[4].text = str(request.max_envelope_size)
    else:
        del header[4]
    if request.locale:
        _SubElement(header, ns.W_LOCALE, {ns.XML_LANG: request.locale, **_NOT_MU})
    if request.data_locale:
        _SubElement(header, ns.P_DATA_LOCALE, {ns.XML_LANG: request.data_locale, **_NOT_MU})
    if request.session_id:
        _SubElement(header, ns.P_SESSION_ID, _NOT_MU).text = request.session_id
    style = parse_resource_uri(uri).style
    cimns = request.namespace if needs_cimnamespace_selector(style) and request.namespace else None
    if request.selectors or cimns:
        append_selector_set(header, request.selectors, style, cimns)
    if request.option_set:
        append_option_set(header, request.option_set, request.option_set_must_understand)
    if request.operation_timeout is not None:
        _SubElement(header, ns.W_OPERATION_TIMEOUT).text = format_timeout(request.operation_timeout)
    body = root[1]
    if isinstance(request, ev.SubscribeRequest):
        ev.append_subscribe(body, request)
    elif isinstance(request, (ev.UnsubscribeRequest, ev.RenewRequest, ev.GetStatusRequest)):
        ev.append_manager_request(header, body, request)
    else:
        _append_request_body(body, request, uri, style, wrap_datetimes)
    return etree.tostring(root)


def _append_request_body(body: _Elem, request: Request, uri: str, style: Any, wrap: bool) -> None:
    if isinstance(request, (PutRequest, CreateRequest)):
        if request.instance is not None:
            instance_to_element(request.instance, style=style, namespace=request.namespace, parent=body,
                                wrap_datetimes=wrap)
    elif isinstance(request, EnumerateRequest):
        en = _SubElement(body, ns.N_ENUMERATE)
        if request.optimize:
            _SubElement(en, ns.W_OPTIMIZE_ENUMERATION)
        if request.max_elements is not None:
            _SubElement(en, ns.W_MAX_ELEMENTS).text = str(request.max_elements)
        if request.mode is not EnumerationMode.OBJECTS:
            _SubElement(en, ns.W_ENUMERATION_MODE).text = request.mode.value
        if request.polymorphism is not None:
            _SubElement(en, ns.B_POLYMORPHISM_MODE).text = request.polymorphism.value
        if request.filter is not None:
            _append_filter(en, request.filter, style)
        if request.expires:
            _SubElement(en, ns.N_EXPIRES).text = request.expires
    elif isinstance(request, PullRequest):
        pull = _SubElement(body, ns.N_PULL)
        _SubElement(pull, ns.N_ENUMERATION_CONTEXT).text = request.context
        if request.max_time is not None:
            _SubElement(pull, ns.N_MAX_TIME).text = format_timeout(request.max_time)
        if request.max_elements is not None:
            _SubElement(pull, ns.N_MAX_ELEMENTS).text = str(request.max_elements)
        if request.max_characters is not None:
            _SubElement(pull, ns.N_MAX_CHARACTERS).text = str(request.max_characters)
    elif isinstance(request, ReleaseRequest):
        _SubElement(_SubElement(body, ns.N_RELEASE), ns.N_ENUMERATION_CONTEXT).text = request.context
    elif isinstance(request, InvokeRequest):
        params = request.parameters or Instance.from_elements("__parameters", {}, namespace=request.namespace)
        instance_to_element(params, style=style, namespace=request.namespace, parent=body,
                            tag=f"{request.method}_INPUT", uri=uri, wrap_datetimes=wrap)


def _append_filter(parent: _Elem, f: Filter, style: Any) -> None:
    el = _SubElement(parent, ns.W_FILTER, Dialect=f.dialect)
    if f.query is not None:
        el.text = f.query
    elif f.selectors is not None:
        append_selector_set(el, f.selectors, style)
    elif f.association is not None:
        a = f.association
        kind = _ASSOC_ASSOCIATED if a.associators else _ASSOC_ASSOCIATION
        ael = _SubElement(el, kind)
        append_epr(_SubElement(ael, ns.q(ns.WSMB, "Object")), a.object, style)
        for local, value in (("AssociationClassName", a.association_class), ("Role", a.role),
                             ("ResultClassName", a.result_class), ("ResultRole", a.result_role)):
            if value:
                _SubElement(ael, ns.q(ns.WSMB, local)).text = value


try:
    _version = importlib.metadata.version("openmi")
except importlib.metadata.PackageNotFoundError:  # (run from a source tree that was not installed)
    _version = "dev"

#: who openmi's client says it is (a server may shape its answers by it: OMI's does, and openmi serve tells OMI's
#: client, which names none, by its absence)
USER_AGENT = f"openmi/{_version}"


def request_headers(request: Request) -> dict[str, str]:
    """The HTTP headers a request needs besides authentication and Content-Length."""
    headers = {"Content-Type": "application/soap+xml;charset=UTF-8", "User-Agent": USER_AGENT}
    if isinstance(request, IdentifyRequest) and request.unauthenticated:
        headers["WSMANIDENTIFY"] = "unauthenticated"
    return headers


"""Responses ⇄ bytes: the server's ``build_response``/``build_fault`` and the client's ``parse_response``.

Writing follows WinRM's shapes and echoes the request's URI style and encoding. Reading is tolerant
of real peers: Items/EndOfSequence in either enumeration namespace, numeric or ``uuid:`` contexts,
OMI's IdentifyResponse in the SOAP namespace, empty PutResponse bodies, invoke actions with or
without ``Response``, UTF-16 bodies; a fault from any peer becomes a :class:`WSManFault`.
"""

from __future__ import annotations

import dataclasses
import re
from copy import deepcopy
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from lxml import etree

from openmi.cim.errors import MIError
from openmi.cim.instance import Element, Instance
from openmi.cim.types import MIResult, MIType

from . import eventing as ev
from . import namespaces as ns
from .classxml import CLASS_TAG, ClassOptions, class_from_element, class_to_element, derivation_of
from .envelope import CLIENT_LIMITS, SERVER_LIMITS, Limits, parse_envelope, serialize
from .faults import _OWN_ERROR_CLASSES, Fault, WSManFault, append_fault, fault_for_error, protocol_fault, read_fault
from .request_codec import wire_fault
from .requests import (
    CreateRequest,
    DeleteRequest,
    EnumerateRequest,
    EnumerationMode,
    GetClassRequest,
    GetRequest,
    IdentifyRequest,
    InvokeRequest,
    PullRequest,
    PutRequest,
    ReleaseRequest,
    Request,
    new_message_id,
)
from .responses import (
    CreateResponse,
    DeleteResponse,
    EnumerateResponse,
    GetClassResponse,
    GetResponse,
    IdentifyResponse,
    InvokeResponse,
    PullResponse,
    PutResponse,
    ReleaseResponse,
    Response,
)
from .uri import CIMNAMESPACE_SELECTOR
from .values import (
    ClassLookup,
    WireError,
    append_epr,
    element_to_instance,
    epr_to_instance,
    format_wire_scalar,
    fragment_to_element,
    instance_to_element,
    key_elements,
    parameters_class,
    read_selector_set,
)

if TYPE_CHECKING:
    _Elem = etree._Element
else:
    _Elem = Any

_SubElement = etree.SubElement
_IDENTIFY_NSMAP: Final = {"s": ns.SOAP, "wsmid": ns.WSMID}


def _template() -> _Elem:
    root = etree.Element(ns.S_ENVELOPE, {ns.XML_LANG: "en-US"}, nsmap=ns.NSMAP)
    header = _SubElement(root, ns.S_HEADER)
    for tag in (ns.A_ACTION, ns.A_MESSAGE_ID, ns.A_TO, ns.A_RELATES_TO):
        _SubElement(header, tag)
    header[2].text = ns.ANONYMOUS
    _SubElement(root, ns.S_BODY)
    return root


# Copying a prebuilt envelope is several times faster than building one (namespace declarations).
_TEMPLATE: Final = _template()


def _envelope(action: str, relates_to: str | None, message_id: str | None = None) -> tuple[_Elem, _Elem, _Elem]:
    root = deepcopy(_TEMPLATE)
    header = root[0]
    header[0].text = action
    header[1].text = message_id or new_message_id()
    if relates_to:
        header[3].text = relates_to
    else:
        del header[3]
    return root, header, root[1]


def _response_action(request: Request) -> str:
    if isinstance(request, InvokeRequest):
        return request.action + "Response"
    return ns.RESPONSE_ACTIONS.get(request.action, request.action + "Response")


def build_response(
    request: Request, response: Response, *, wrap_datetimes: bool = True, limits: Limits = SERVER_LIMITS,
) -> bytes:
    """The bytes answering ``request`` with ``response``, in the request's encoding.

    Raises a :class:`WSManFault` (``wsman:EncodingLimit``) when the answer would exceed the
    request's MaxEnvelopeSize (or the server's cap); answer that with :func:`build_fault`.
    """
    if isinstance(request, IdentifyRequest):
        return serialize(_identify(request, response), request.encoding)
    if request.plain_values:
        wrap_datetimes = False
    if type(response) in _EMPTY_BODIED and request.encoding == "utf-8" and _FAST and (
            not isinstance(response, PutResponse) or response.instance is None):
        fast = _from_template(_response_action(request), request.message_id, response.message_id, limits,
                              request.max_envelope_size)
        if fast is not None:
            return fast
    elif isinstance(response, (GetResponse, PutResponse)) and request.encoding == "utf-8" and _FAST:
        fast = _instance_from_template(request, response, limits)  # (a Put answered with the instance)
        if fast is not None:
            return fast
    elif type(response) is CreateResponse and request.encoding == "utf-8" and _FAST:
        fast = _created_from_template(request, response, limits)
        if fast is not None:
            return fast
    elif isinstance(response, EnumerateResponse) and request.encoding == "utf-8" and _FAST:
        fast = _page_from_template(request, response, limits)
        if fast is not None:
            return fast
    root, _, body = _envelope(_response_action(request), request.message_id, response.message_id)
    style = request.uri_style
    namespace = request.namespace
    try:
        if isinstance(response, GetClassResponse):
            class_to_element(response.cls, ClassOptions.from_option_set(request.option_set),
                             derivation=response.derivation, parent=body)
        elif isinstance(response, GetResponse):
            instance_to_element(response.instance, style=style, namespace=namespace, parent=body,
                                wrap_datetimes=wrap_datetimes)
        elif isinstance(response, PutResponse):
            if response.instance is not None:
                instance_to_element(response.instance, style=style, namespace=namespace, parent=body,
                                    wrap_datetimes=wrap_datetimes)
        elif isinstance(response, CreateResponse):
            name = response.instance_name
            if name is None:
                raise ValueError("a CreateResponse needs instance_name")
            if name.namespace is None and namespace:
                name = Instance.from_elements(name.class_name, name.elements, namespace=namespace)
            append_epr(_SubElement(body, ns.X_RESOURCE_CREATED), name, style, response.address)
        elif isinstance(response, EnumerateResponse):
            _enumeration(body, request, response, wrap_datetimes)
            if isinstance(response, PullResponse) and response.bookmark:
                _SubElement(root[0], ev.W_BOOKMARK).text = response.bookmark
        elif isinstance(response, ev.SubscribeResponse):
            ev.append_subscribe_response(body, response)
            if response.bookmark:
                _SubElement(root[0], ev.W_BOOKMARK).text = response.bookmark
        elif isinstance(response, InvokeResponse):
            params = response.parameters or Instance.from_elements("__parameters", {}, namespace=namespace)
            method = response.method or (request.method if isinstance(request, InvokeRequest) else "")
            instance_to_element(params, style=style, namespace=namespace, parent=body, tag=f"{method}_OUTPUT",
                                uri=request.effective_resource_uri(), wrap_datetimes=wrap_datetimes)
    except WireError as exc:
        raise _answering(wire_fault(exc), request) from None
    data = serialize(root, request.encoding)
    cap = min(request.max_envelope_size or limits.max_envelope, limits.max_envelope)
    if len(data) > cap:
        raise _answering(protocol_fault(
            "wsman:EncodingLimit", f"The response ({len(data)} octets) exceeds the maximum envelope size ({cap}).",
            "MaxEnvelopeSizeExceeded",
        ), request)
    return data


# --- byte templates ----------------------------------------------------------------------------------
# Delete, Release and a Put answered without the instance carry nothing but the envelope's headers, so
# their bytes are the full writer's own output for the action with two texts cut in: rendered once per
# action with marker texts, split there, then joined with each answer's MessageID and RelatesTo. Answers
# carrying one instance (Get, a Put answered with it) and Create's EPR are rendered the same way once per
# shape (class, property or key names, URI style, namespace), with a marker per value. Only texts whose
# escaping is known take this way (byte-identical by construction); tests compare both paths.

_FAST = True  # tests turn it off to compare with the full path
_EMPTY_BODIED: Final = frozenset({DeleteResponse, ReleaseResponse, PutResponse})
_MARK_ID: Final = "openmi-template-message-id"
_MARK_RELATES: Final = "openmi-template-relates-to"
_PLAIN_TEXT: Final = re.compile(r"[!-%'-;=?-~]+")  # printable ASCII that lxml writes as it is (no &, <, >, spaces)


@lru_cache(maxsize=64)
def _body_less_template(action: str) -> tuple[bytes, bytes, bytes] | None:
    root, _, _ = _envelope(action, _MARK_RELATES, _MARK_ID)
    data = serialize(root, "utf-8")
    if data.count(_MARK_ID.encode()) != 1 or data.count(_MARK_RELATES.encode()) != 1:
        return None  # a marker text elsewhere in the envelope: no template for this action
    head, _, rest = data.partition(_MARK_ID.encode())
    middle, _, tail = rest.partition(_MARK_RELATES.encode())
    return head, middle, tail


def _from_template(action: str, relates_to: str | None, message_id: str | None, limits: Limits,
                   max_envelope: int | None) -> bytes | None:
    """The bytes of a body-less answer, or None when the full writer must make them (a text that needs
    escaping, no RelatesTo, an action too long to keep a template for, a size over the cap)."""
    if not relates_to or len(action) > 1024 or _PLAIN_TEXT.fullmatch(relates_to) is None:
        return None
    mid = message_id or new_message_id()
    if message_id is not None and _PLAIN_TEXT.fullmatch(message_id) is None:
        return None
    parts = _body_less_template(action)
    if parts is None:
        return None
    head, middle, tail = parts
    data = b"".join((head, mid.encode(), middle, relates_to.encode(), tail))
    if len(data) > min(max_envelope or limits.max_envelope, limits.max_envelope):
        return None  # the full writer raises the EncodingLimit fault
    return data


def _answering(f: WSManFault, request: Request) -> WSManFault:
    f.relates_to, f.encoding = request.message_id, request.encoding
    return f


def _identify(request: IdentifyRequest, response: Response) -> _Elem:
    r = response if isinstance(response, IdentifyResponse) else IdentifyResponse()
    root = etree.Element(ns.S_ENVELOPE, nsmap=_IDENTIFY_NSMAP)
    _SubElement(root, ns.S_HEADER)
    ir = _SubElement(_SubElement(root, ns.S_BODY), ns.ID_IDENTIFY_RESPONSE)
    _SubElement(ir, ns.q(ns.WSMID, "ProtocolVersion")).text = r.protocol_version
    _SubElement(ir, ns.q(ns.WSMID, "ProductVendor")).text = r.product_vendor
    if r.product_version is not None and not request.unauthenticated:
        _SubElement(ir, ns.q(ns.WSMID, "ProductVersion")).text = r.product_version
    if r.security_profiles and not request.unauthenticated:
        sp = _SubElement(ir, ns.q(ns.WSMID, "SecurityProfiles"))
        for p in r.security_profiles:
            _SubElement(sp, ns.q(ns.WSMID, "SecurityProfileName")).text = p
    if r.fault_includes_cim_error:
        _SubElement(ir, ns.q(ns.WSMB, "Capability_FaultIncludesCIMError"), nsmap={"wsmb": ns.WSMB})
    return root


def _enumeration(body: _Elem, request: Request, response: EnumerateResponse, wrap: bool) -> None:
    pull = isinstance(response, PullResponse)
    el = _SubElement(body, ns.N_PULL_RESPONSE if pull else ns.N_ENUMERATE_RESPONSE)
    if response.context is not None and not (pull and response.end_of_sequence):
        _SubElement(el, ns.N_ENUMERATION_CONTEXT).text = response.context
    optimize = isinstance(request, EnumerateRequest) and request.optimize
    if not pull and not optimize:
        return
    mode = response.mode
    if mode is None:
        mode = request.mode if isinstance(request, EnumerateRequest) else EnumerationMode.OBJECTS
    items = _SubElement(el, ns.N_ITEMS if pull else ns.W_ITEMS)
    style, namespace = request.uri_style, request.namespace
    for inst in response.items:
        if mode is EnumerationMode.OBJECT_AND_EPR:
            item = _SubElement(items, ns.W_ITEM)
            instance_to_element(inst, style=style, namespace=namespace, parent=item, wrap_datetimes=wrap)
            append_epr(_SubElement(item, ns.A_EPR), _named(inst, namespace), style)
        elif mode is EnumerationMode.EPR:
            append_epr(_SubElement(items, ns.A_EPR), _named(inst, namespace), style)
        elif response.fragments:
            fragment_to_element(inst, items, style, namespace)
        else:
            instance_to_element(inst, style=style, namespace=namespace, parent=items, wrap_datetimes=wrap)
    if response.classes:
        options = response.class_options or ClassOptions.from_option_set(request.option_set)
        for cls in response.classes:
            class_to_element(cls, options, derivation=response.derivations.get(cls.name.lower(), ()), parent=items)
    if response.end_of_sequence:
        _SubElement(el, ns.N_END_OF_SEQUENCE if pull else ns.W_END_OF_SEQUENCE)


def _named(inst: Instance, namespace: str | None) -> Instance:
    if inst.namespace or not namespace:
        return inst
    return Instance.from_elements(inst.class_name, inst.elements, namespace=namespace)


def build_fault(
    request: Request | None, error: MIError, *, machine: str | None = None, limits: Limits = SERVER_LIMITS,
) -> tuple[int, bytes]:
    """``(HTTP status, body)`` of the fault answering ``request`` (or a request that could not be
    parsed: a WSManFault from ``parse_request`` knows its MessageID and encoding)."""
    fault = _clipped(fault_for_error(error, not_found=limits.not_found))
    relates_to: str | None
    if request is not None:
        relates_to, encoding = request.message_id, request.encoding
    else:
        relates_to = error.relates_to if isinstance(error, WSManFault) else None
        encoding = error.encoding if isinstance(error, WSManFault) else "utf-8"
    if _FAST and encoding == "utf-8":
        data = _fault_from_template(fault, machine, relates_to)
        if data is not None:
            return 500, data
    if fault.cim_errors or len(fault.reason) + len(fault.wsman_message or "") > MAX_CACHED_FAULT_TEXT:
        root = _fault_envelope(fault, machine)
    else:  # the common faults repeat: build each once, then copy it
        root = deepcopy(_cached_fault_envelope(
            fault.action, fault.code, fault.subcode, fault.reason, fault.detail, fault.wsman_code,
            fault.wsman_message, fault.result, fault.not_understood, machine))
    header = root[0]
    header[1].text = new_message_id()
    if relates_to:
        header[3].text = relates_to
    else:
        del header[3]
    return 500, serialize(root, encoding)


# --- Get answers: an instance of plain scalars ---------------------------------------------------------
# The envelope and the instance's element structure come from the full writer, rendered once per shape
# (action, class URI, property names, which are NULL) with marker texts; each answer fills in its values,
# escaped as lxml writes text (&, <, > and CR as references, the rest of non-ASCII as &#N;). Strings,
# integers, booleans and reals only: datetimes, references, embedded instances and arrays, and texts with
# characters XML cannot carry, take the full writer.

_SIMPLE_TYPES: Final = frozenset(int(t) for t in (
    MIType.STRING, MIType.BOOLEAN, MIType.UINT8, MIType.SINT8, MIType.UINT16, MIType.SINT16, MIType.UINT32,
    MIType.SINT32, MIType.UINT64, MIType.SINT64, MIType.REAL32, MIType.REAL64, MIType.CHAR16))
_BAD_TEXT: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES: Final = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_VALUE_MARKS: Final = re.compile(b"(openmi-template-(?:message-id|relates-to|v[0-9]+))")


def _instance_from_template(request: Request, response: GetResponse | PutResponse, limits: Limits) -> bytes | None:
    """The bytes of an answer that carries one instance (Get, a Put answered with it), or None when the full
    writer must make them (an array, an embedded object, a datetime, a text it would replace …)."""
    inst = response.instance
    fill = _header_texts(request, response)
    got = _shape_and_texts(inst) if isinstance(inst, Instance) and fill is not None else None
    if got is None:
        return None
    assert inst is not None and fill is not None
    shape, texts = got
    namespace = request.namespace
    template = _get_template(_response_action(request), request.uri_style, namespace or inst.namespace,
                             inst.class_name, shape)
    return None if template is None else _capped(_joined(template, fill, texts), request, limits)


def _shape_and_texts(inst: Instance) -> tuple[tuple[tuple[str, bool], ...], list[bytes]] | None:
    """An instance's shape (names, and which are null) and its values as element text, or None when a value
    is one the templates do not cover."""
    shape: list[tuple[str, bool]] = []
    texts: list[bytes] = []
    for el in inst.elements:
        value = el.value
        if value is not None:
            text = _template_text(value, el.type)
            if text is None:
                return None
            texts.append(text)
        shape.append((el.name, value is None))
    return tuple(shape), texts


def _template_text(value: object, mitype: MIType) -> bytes | None:
    """A scalar as the full writer writes it in element text, or None when only the full writer knows."""
    t = int(mitype)
    if t not in _SIMPLE_TYPES or isinstance(value, (list, Instance)):
        return None
    text = format_wire_scalar(value, t)
    if _BAD_TEXT.search(text) is not None:
        return None
    return text.translate(_ESCAPES).encode("ascii", "xmlcharrefreplace")


def _header_texts(request: Request, response: Response, context: str | None = None) -> dict[bytes, bytes] | None:
    """What a template's header markers become (MessageID, RelatesTo, the enumeration context), or None when
    one of them is a text that needs escaping (the full writer then writes the answer)."""
    relates_to = request.message_id
    if not relates_to or any(t is not None and _PLAIN_TEXT.fullmatch(t) is None
                             for t in (relates_to, response.message_id, context)):
        return None
    fill = {_MARK_ID_B: (response.message_id or new_message_id()).encode(), _MARK_RELATES_B: relates_to.encode()}
    if context is not None:
        fill[_MARK_CONTEXT_B] = context.encode()
    return fill


def _joined(pieces: tuple[bytes, ...], fill: dict[bytes, bytes], texts: list[bytes]) -> bytes:
    """A template's pieces with each marker replaced: a header text from ``fill``, else a value (``…-v<N>``)."""
    out = list(pieces)
    for i in range(1, len(out), 2):
        piece = out[i]
        out[i] = fill[piece] if piece in fill else texts[int(piece[17:])]
    return b"".join(out)


def _capped(data: bytes, request: Request, limits: Limits) -> bytes | None:
    """``data`` within the envelope cap, else None: the full writer raises the EncodingLimit fault."""
    return data if len(data) <= min(request.max_envelope_size or limits.max_envelope, limits.max_envelope) else None


def _marked(namespace: str | None, class_name: str,
            shape: tuple[tuple[str, bool], ...]) -> tuple[Instance, int] | None:
    """An instance of ``shape`` (names, and which are null) whose values are marker texts ``…-v<N>``, and
    how many; None when a name would clash with the markers (two names differing in case only, or a marker)."""
    if "openmi-template-" in class_name or any("openmi-template-" in name for name, _ in shape):
        return None
    elements: dict[str, Element] = {}
    n = 0
    for name, null in shape:
        value = None
        if not null:
            value = f"openmi-template-v{n}"
            n += 1
        elements[name.lower()] = Element(name, value, MIType.STRING)
    if len(elements) != len(shape):
        return None
    return Instance.from_elements(class_name, elements, namespace=namespace), n


@lru_cache(maxsize=256)
def _get_template(action: str, style: Any, namespace: str | None, class_name: str,
                  shape: tuple[tuple[str, bool], ...]) -> tuple[bytes, ...] | None:
    made = _marked(namespace, class_name, shape)
    if made is None:
        return None
    marked, n = made
    root, _, body = _envelope(action, _MARK_RELATES, _MARK_ID)
    instance_to_element(marked, style=style, namespace=namespace, parent=body)
    pieces = _VALUE_MARKS.split(serialize(root, "utf-8"))
    if len(pieces) != 2 * (n + 2) + 1 or b"openmi-template-" in b"".join(pieces[0::2]):
        return None  # a marker text elsewhere (in the resource URI …): no template for this shape
    return tuple(pieces)


def _created_from_template(request: Request, response: CreateResponse, limits: Limits) -> bytes | None:
    """The bytes of a CreateResponse (the new instance's EPR, its keys as selectors), or None when the
    full writer must make them (a reference key, a text it would replace …)."""
    name = response.instance_name
    fill = _header_texts(request, response)
    if name is None or fill is None:
        return None
    keys: list[str] = []
    texts: list[bytes] = []
    for el in key_elements(name):
        if el.value is None:
            continue
        text = _template_text(el.value, el.type)
        if text is None:
            return None
        keys.append(el.name)
        texts.append(text)
    namespace = name.namespace if name.namespace is not None else (request.namespace or None)
    template = _created_template(_response_action(request), request.uri_style, namespace, name.class_name,
                                 tuple(keys), response.address)
    return None if template is None else _capped(_joined(template, fill, texts), request, limits)


@lru_cache(maxsize=256)
def _created_template(action: str, style: Any, namespace: str | None, class_name: str, keys: tuple[str, ...],
                      address: str) -> tuple[bytes, ...] | None:
    made = _marked(namespace, class_name, tuple((k, False) for k in keys))  # (every one names it: its keys)
    if made is None:
        return None
    marked, _ = made
    root, _, body = _envelope(action, _MARK_RELATES, _MARK_ID)
    append_epr(_SubElement(body, ns.X_RESOURCE_CREATED), marked, style, address)
    pieces = _VALUE_MARKS.split(serialize(root, "utf-8"))
    if len(pieces) != 2 * (len(keys) + 2) + 1 or b"openmi-template-" in b"".join(pieces[0::2]):
        return None
    return tuple(pieces)


def _page_from_template(request: Request, response: EnumerateResponse, limits: Limits) -> bytes | None:
    """The bytes of an Enumerate or Pull page of instances, written in one pass: the page's envelope and
    each item from byte templates (one per item shape), or None when the full writer must make them (EPR
    modes, fragments, classes, a subscription's bookmark, an item the templates do not cover, …)."""
    pull = isinstance(response, PullResponse)
    optimize = isinstance(request, EnumerateRequest) and request.optimize
    mode = response.mode
    if mode is None:
        mode = request.mode if isinstance(request, EnumerateRequest) else EnumerationMode.OBJECTS
    if ((not pull and not optimize) or mode is not EnumerationMode.OBJECTS or response.fragments
            or response.classes or not response.items or (isinstance(response, PullResponse) and response.bookmark)):
        return None
    context = None if pull and response.end_of_sequence else response.context
    fill = _header_texts(request, response, context)
    if fill is None:
        return None
    style, namespace = request.uri_style, request.namespace
    page = _page_template(_response_action(request), pull, context is not None, response.end_of_sequence, style,
                          namespace)
    if page is None:
        return None
    out: list[bytes] = []
    for inst in response.items:
        got = _shape_and_texts(inst) if isinstance(inst, Instance) else None
        if got is None:
            return None
        shape, texts = got
        item = _item_template(style, namespace or inst.namespace, inst.class_name, shape)
        if item is None:
            return None
        out.append(_joined(item, fill, texts))
    head, tail = page
    return _capped(b"".join([_joined(head, fill, []), *out, tail]), request, limits)


_MARK_CONTEXT: Final = "openmi-template-context"
_MARK_ID_B: Final = _MARK_ID.encode()
_MARK_RELATES_B: Final = _MARK_RELATES.encode()
_MARK_CONTEXT_B: Final = _MARK_CONTEXT.encode()
_PAGE_MARKS: Final = re.compile(b"(openmi-template-(?:message-id|relates-to|context))")
_PLACEHOLDER: Final = "OpenmiTemplateItem"


@lru_cache(maxsize=64)
def _page_template(action: str, pull: bool, has_context: bool, end: bool, style: Any,
                   namespace: str | None) -> tuple[tuple[bytes, ...], bytes] | None:
    """A page as the full writer writes it with one placeholder item: the pieces before the item (split at
    the marker texts) and the bytes after it."""
    mark = Instance.from_elements(_PLACEHOLDER, {}, namespace=namespace)
    context = _MARK_CONTEXT if has_context else None
    request: Request
    if pull:
        request = PullRequest(message_id=_MARK_RELATES, uri_style=style, namespace=namespace)
        response: EnumerateResponse = PullResponse(context=context, items=[mark], end_of_sequence=end)
    else:
        request = EnumerateRequest(message_id=_MARK_RELATES, uri_style=style, namespace=namespace, optimize=True)
        response = EnumerateResponse(context=context, items=[mark], end_of_sequence=end)
    root, _, body = _envelope(action, _MARK_RELATES, _MARK_ID)
    _enumeration(body, request, response, True)
    data = serialize(root, "utf-8")
    item = _item_template(style, namespace, _PLACEHOLDER, ())
    if item is None or len(item) != 1 or data.count(item[0]) != 1:
        return None
    before, _, after = data.partition(item[0])
    head = tuple(_PAGE_MARKS.split(before))
    if len(head) != 2 * (2 + has_context) + 1 or b"openmi-template-" in b"".join(head[0::2]) + after:
        return None  # a marker text elsewhere (the namespace …): no template for this page
    return head, after


@lru_cache(maxsize=256)
def _item_template(style: Any, namespace: str | None, class_name: str,
                   shape: tuple[tuple[str, bool], ...]) -> tuple[bytes, ...] | None:
    """One item of a page as the full writer writes it inside the envelope (split at its value markers)."""
    made = _marked(namespace, class_name, shape)
    if made is None:
        return None
    marked, n = made
    root, _, body = _envelope("urn:x", None, "urn:x")
    instance_to_element(marked, style=style, namespace=namespace, parent=body)
    data = serialize(root, "utf-8")
    start, end = data.find(b"<s:Body>"), data.rfind(b"</s:Body>")
    if start < 0 or end < 0:
        return None
    pieces = _VALUE_MARKS.split(data[start + len(b"<s:Body>"):end])
    if len(pieces) != 2 * n + 1 or b"openmi-template-" in b"".join(pieces[0::2]):
        return None
    return tuple(pieces)


# --- fault templates ----------------------------------------------------------------------------------
# A fault's bytes are the full writer's for its fixed parts (action, codes, detail, the CIM error's other
# values, the machine), rendered once with marker texts where the per-request texts go (MessageID,
# RelatesTo, Reason, the WSManFault Message, the CIM error's Message), then filled in. Texts that would
# need escaping, a foreign CIM error, NotUnderstood, another encoding: the full writer.

_MARK_REASON: Final = "openmi-template-reason"
_MARK_WSMAN: Final = "openmi-template-wsman-message"
_MARK_CIM: Final = "openmi-template-cim-message"
_MARKS: Final = re.compile(b"(openmi-template-[a-z-]+)")
_SPACED_TEXT: Final = re.compile(r"[ !-%'-;=?-~]+")  # printable ASCII and spaces lxml writes as they are
_SCALAR_TYPES: Final = (str, int, type(None))


def _fault_from_template(fault: Fault, machine: str | None, relates_to: str | None) -> bytes | None:
    if (not relates_to or fault.not_understood is not None or len(fault.cim_errors) > 1
            or _PLAIN_TEXT.fullmatch(relates_to) is None or _SPACED_TEXT.fullmatch(fault.reason) is None
            or (fault.wsman_message is not None and _SPACED_TEXT.fullmatch(fault.wsman_message) is None)):
        return None
    own_key: tuple[Any, ...] | None = None
    cim_message = None
    if fault.cim_errors:
        own = fault.cim_errors[0]
        if own.class_name.lower() not in _OWN_ERROR_CLASSES:
            return None
        parts: list[Any] = [own.class_name, own.namespace]
        for el in own.elements:
            value = el.value
            if el.name.lower() == "message":
                if not isinstance(value, str) or _SPACED_TEXT.fullmatch(value) is None:
                    return None
                cim_message = value
                value = None
            elif isinstance(value, list):
                if not all(type(v) is str and "openmi-template-" not in v for v in value):
                    return None
                value = ("list", *value)
            elif type(value) not in _SCALAR_TYPES or (type(value) is str and "openmi-template-" in value):
                return None
            parts.append((el.name, int(el.type), el._flags, value))
        if cim_message is None:
            return None
        own_key = tuple(parts)
    template = _fault_template(fault.action, fault.code, fault.subcode, fault.detail, fault.wsman_code,
                               fault.wsman_message is not None, fault.result, own_key, machine)
    if template is None:
        return None
    texts = {_MARK_ID.encode(): new_message_id().encode(), _MARK_RELATES.encode(): relates_to.encode(),
             _MARK_REASON.encode(): fault.reason.encode(), _MARK_WSMAN.encode(): (fault.wsman_message or "").encode(),
             _MARK_CIM.encode(): (cim_message or "").encode()}
    return b"".join([texts.get(p, p) if i % 2 else p for i, p in enumerate(template)])


@lru_cache(maxsize=256)
def _fault_template(action: str, code: str, subcode: tuple[str, str] | None, detail: str | None,
                    wsman_code: int | None, has_wsman_message: bool, result: MIResult | int | None,
                    own_key: tuple[Any, ...] | None, machine: str | None) -> tuple[bytes, ...] | None:
    """The bytes of such a fault split at its marker texts: literal parts at even indexes, markers between."""
    errors: list[Instance] = []
    if own_key is not None:
        class_name, namespace, *elements = own_key
        own = Instance.from_elements(class_name, {}, namespace=namespace)
        for name, t, flags, value in elements:
            if name.lower() == "message":
                value = _MARK_CIM
            elif isinstance(value, tuple):
                value = list(value[1:])
            own.put_element(Element(name, value, MIType(t), flags))
        errors.append(own)
    fault = Fault(subcode=subcode, reason=_MARK_REASON, code=code, detail=detail, action=action,
                  wsman_code=wsman_code, wsman_message=_MARK_WSMAN if has_wsman_message else None,
                  cim_errors=errors, result=result)
    root = _fault_envelope(fault, machine)
    header = root[0]
    header[1].text = _MARK_ID
    header[3].text = _MARK_RELATES
    pieces = _MARKS.split(serialize(root, "utf-8"))
    known = {_MARK_ID.encode(), _MARK_RELATES.encode(), _MARK_REASON.encode(), _MARK_WSMAN.encode(),
             _MARK_CIM.encode()}
    if any(p not in known for p in pieces[1::2]):
        return None
    return tuple(pieces)


MAX_FAULT_TEXT: Final = 2048
"""A fault's Reason and Message are cut to this many characters: they may quote what a client sent."""
MAX_CACHED_FAULT_TEXT: Final = 1024
"""Faults whose texts are longer than this are built each time: the cache holds 256 small envelopes at most."""


def _clipped(fault: Fault) -> Fault:
    """The fault with its Reason and Message cut to MAX_FAULT_TEXT characters (a copy if it changes)."""
    def clip(text: str) -> str:
        return text if len(text) <= MAX_FAULT_TEXT else f"{text[:MAX_FAULT_TEXT]}… ({len(text)} characters)"

    if len(fault.reason) <= MAX_FAULT_TEXT and len(fault.wsman_message or "") <= MAX_FAULT_TEXT:
        return fault
    message = clip(fault.wsman_message) if fault.wsman_message is not None else None
    return dataclasses.replace(fault, reason=clip(fault.reason), wsman_message=message)


def _fault_envelope(fault: Fault, machine: str | None) -> _Elem:
    root, header, body = _envelope(fault.action, "-", "-")
    if fault.not_understood is not None:
        uri, local = fault.not_understood
        nu = _SubElement(header, ns.q(ns.SOAP, "NotUnderstood"), nsmap={"nu": uri} if uri else None)
        nu.set("qname", f"nu:{local}" if uri else local)
    append_fault(body, fault, machine=machine)
    return root


@lru_cache(maxsize=256)
def _cached_fault_envelope(
    action: str, code: str, subcode: tuple[str, str] | None, reason: str, detail: str | None,
    wsman_code: int | None, wsman_message: str | None, result: MIResult | int | None,
    not_understood: tuple[str, str] | None, machine: str | None,
) -> _Elem:
    fault = Fault(subcode=subcode, reason=reason, code=code, detail=detail, action=action, wsman_code=wsman_code,
                  wsman_message=wsman_message, result=result, not_understood=not_understood)
    return _fault_envelope(fault, machine)


# --- client side ------------------------------------------------------------------------------------

def _first(el: _Elem | None) -> _Elem | None:
    if el is None:
        return None
    for c in el:
        if isinstance(c.tag, str):
            return c
    return None


def _local(el: _Elem) -> str:
    return str(el.tag).rpartition("}")[2]


def parse_response(
    body: bytes,
    content_type: str | None,
    expected: Request,
    *,
    class_lookup: ClassLookup | None = None,
    limits: Limits = CLIENT_LIMITS,
) -> Response:
    """Bytes of the answer to ``expected`` → its typed Response.

    A SOAP fault (from openmi, OMI or WinRM) raises :class:`WSManFault`, an MIError whose
    ``result`` is the MI result the fault stands for. An answer that is not the one expected
    (wrong RelatesTo, missing body) raises MIError(FAILED).
    """
    _, header, body_el, _ = parse_envelope(body, content_type, limits)
    action = message_id = relates_to = bookmark = None
    if header is not None:
        for child in header:
            if child.tag == ns.A_ACTION:
                action = (child.text or "").strip()
            elif child.tag == ns.A_MESSAGE_ID:
                message_id = (child.text or "").strip()
            elif child.tag == ns.A_RELATES_TO:
                relates_to = (child.text or "").strip()
            elif child.tag == ev.W_BOOKMARK:
                bookmark = ev._inner(child) or None
    first = _first(body_el)
    if first is not None and first.tag == ns.S_FAULT:
        try:
            fault = read_fault(first, action)
        except (ArithmeticError, ValueError, TypeError, LookupError, RecursionError) as exc:
            raise MIError(MIResult.FAILED, f"The peer's fault cannot be read: {type(exc).__name__}: "
                                           f"{str(exc)[:200]}") from None
        raise WSManFault(fault, relates_to=relates_to)
    if relates_to and expected.message_id and relates_to.lower() != expected.message_id.lower():
        raise MIError(MIResult.FAILED, f"The response relates to {relates_to}, not to {expected.message_id}.")
    meta: dict[str, Any] = {"message_id": message_id or "", "relates_to": relates_to, "action": action}
    try:
        r = _typed_response(expected, first, meta, class_lookup)
        if isinstance(r, PullResponse):
            r.bookmark = bookmark
            r.heartbeat = action == ev.ACTION_HEARTBEAT or (not r.items and not r.end_of_sequence)
        elif isinstance(r, ev.SubscribeResponse):
            r.bookmark = bookmark
        return r
    except WireError as exc:
        raise MIError(MIResult.FAILED, f"The response cannot be read: {exc}") from None
    except (ArithmeticError, ValueError, TypeError, LookupError, RecursionError) as exc:
        # whatever a reader did not anticipate is still the peer's doing: an MIError, never another exception
        raise MIError(MIResult.FAILED, f"The response cannot be read: {type(exc).__name__}: {str(exc)[:200]}") \
            from None


def _typed_response(
    expected: Request, first: _Elem | None, meta: dict[str, Any], lookup: ClassLookup | None,
) -> Response:
    namespace = expected.namespace
    if isinstance(expected, IdentifyRequest):
        return _read_identify(first, meta)
    if isinstance(expected, GetClassRequest):
        if first is None or _local(first) != CLASS_TAG:  # DSP0201 puts it in no namespace; tolerate one
            raise MIError(MIResult.FAILED, "The answer to GetClass holds no CLASS element.")
        return GetClassResponse(cls=class_from_element(first, namespace), derivation=derivation_of(first), **meta)
    if isinstance(expected, GetRequest):
        if first is None:
            raise MIError(MIResult.FAILED, "The GetResponse holds no instance.")
        return GetResponse(instance=_instance(first, namespace, lookup), **meta)
    if isinstance(expected, PutRequest):
        return PutResponse(instance=_instance(first, namespace, lookup) if first is not None else None, **meta)
    if isinstance(expected, CreateRequest):
        if first is None or _local(first) != "ResourceCreated":
            raise MIError(MIResult.FAILED, "The CreateResponse holds no ResourceCreated EPR.")
        return _read_created(first, namespace, meta)
    if isinstance(expected, (DeleteRequest, ReleaseRequest)):
        return (DeleteResponse if isinstance(expected, DeleteRequest) else ReleaseResponse)(**meta)
    if isinstance(expected, (EnumerateRequest, PullRequest)):
        return _read_enumeration(expected, first, meta, lookup)
    if isinstance(expected, ev.SubscribeRequest):
        return ev.read_subscribe_response(first, meta)
    if isinstance(expected, (ev.UnsubscribeRequest, ev.RenewRequest, ev.GetStatusRequest)):
        return ev.UnsubscribeResponse(**meta)
    if isinstance(expected, InvokeRequest):
        pcls = None
        if lookup is not None and expected.class_name:
            cls = lookup(namespace, expected.class_name)
            m = cls.methods.get(expected.method) if cls is not None else None
            pcls = parameters_class(m, output=True) if m is not None else None
        params = (element_to_instance(first, pcls, namespace=namespace, class_lookup=lookup,
                                      class_name="__parameters")
                  if first is not None else Instance.from_elements("__parameters", {}, namespace=namespace))
        return InvokeResponse(method=expected.method, parameters=params, **meta)
    raise TypeError(f"no response is known for {type(expected).__name__}")


def _instance(el: _Elem, namespace: str | None, lookup: ClassLookup | None, keys: frozenset[str] = frozenset(),
              ) -> Instance:
    cls = lookup(namespace, _local(el)) if lookup is not None else None
    return element_to_instance(el, cls, namespace=namespace, class_lookup=lookup, keys=keys)


def _read_identify(first: _Elem | None, meta: dict[str, Any]) -> IdentifyResponse:
    if first is None or _local(first) != "IdentifyResponse":  # OMI puts it in the SOAP namespace
        raise MIError(MIResult.FAILED, "The answer to Identify holds no IdentifyResponse.")
    r = IdentifyResponse(**meta)
    for c in first:
        if not isinstance(c.tag, str):
            continue
        local = _local(c)
        if local == "ProtocolVersion":
            r.protocol_version = (c.text or "").strip()
        elif local == "ProductVendor":
            r.product_vendor = (c.text or "").strip()
        elif local == "ProductVersion":
            r.product_version = (c.text or "").strip()
        elif local == "SecurityProfiles":
            r.security_profiles = [(p.text or "").strip() for p in c if isinstance(p.tag, str)]
        elif local == "Capability_FaultIncludesCIMError":
            r.fault_includes_cim_error = True
    return r


def _read_created(el: _Elem, namespace: str | None, meta: dict[str, Any]) -> CreateResponse:
    rp = el.find(ns.A_REFERENCE_PARAMETERS)
    uri = rp.findtext(ns.W_RESOURCE_URI) if rp is not None else None
    selectors = read_selector_set(rp.find(ns.W_SELECTOR_SET)) if rp is not None else {}
    selectors.pop(CIMNAMESPACE_SELECTOR, None)  # it names the namespace, as in requests
    name = epr_to_instance(el, namespace) if uri else None
    if name is not None and not name.class_name:
        name = None
    address = (el.findtext(ns.A_ADDRESS) or ns.ANONYMOUS).strip()
    return CreateResponse(instance_name=name, resource_uri=uri.strip() if uri else None, selectors=selectors,
                          address=address, **meta)


_ITEMS: Final = (ns.W_ITEMS, ns.N_ITEMS)
_ENDS: Final = (ns.W_END_OF_SEQUENCE, ns.N_END_OF_SEQUENCE)


def _read_enumeration(
    expected: Request, first: _Elem | None, meta: dict[str, Any], lookup: ClassLookup | None,
) -> EnumerateResponse:
    pull = isinstance(expected, PullRequest)
    want = "PullResponse" if pull else "EnumerateResponse"
    if pull and first is None and meta.get("action") == ev.ACTION_HEARTBEAT:
        return PullResponse(**meta)  # a subscription's heartbeat as its own message
    if first is None or _local(first) != want:
        raise MIError(MIResult.FAILED, f"The answer holds no {want}.")
    r: EnumerateResponse = PullResponse(**meta) if pull else EnumerateResponse(**meta)
    namespace = expected.namespace
    for c in first:
        tag = c.tag
        if not isinstance(tag, str):
            continue
        if tag == ns.N_ENUMERATION_CONTEXT:
            r.context = (c.text or "").strip() or None
        elif tag in _ITEMS:
            for item in c:
                if isinstance(item.tag, str):
                    _read_item(item, namespace, lookup, r)
        elif tag in _ENDS:
            r.end_of_sequence = True
    return r


def _read_item(item: _Elem, namespace: str | None, lookup: ClassLookup | None, r: EnumerateResponse) -> None:
    if item.tag == CLASS_TAG:  # EnumerateClasses: a DSP0201 class, in no XML namespace
        r.classes.append(class_from_element(item, namespace))
        return
    if item.tag == ns.A_EPR:
        only = epr_to_instance(item, namespace)
        r.items.append(only)
        r.eprs.append(only)
        r.mode = EnumerationMode.EPR
        return
    if item.tag == ns.W_ITEM:
        epr_el = item.find(ns.A_EPR)
        inst_el = next((c for c in item if isinstance(c.tag, str) and c.tag != ns.A_EPR), None)
        epr = epr_to_instance(epr_el, namespace) if epr_el is not None else None
        if inst_el is None:
            if epr is not None:
                r.items.append(epr)
                r.eprs.append(epr)
            return
        keys = frozenset(e.name.lower() for e in epr.elements) if epr is not None else frozenset()
        inst = _instance(inst_el, epr.namespace if epr is not None and epr.namespace else namespace, lookup, keys)
        r.items.append(inst)
        if epr is not None:
            r.eprs.append(epr)
        r.mode = EnumerationMode.OBJECT_AND_EPR
        return
    if item.tag == ev.W_EVENT:  # a source that wraps events (DSP0226's Events form) in a PullResponse
        item = ev.event_item(item)
    r.items.append(_instance(item, namespace, lookup))


"""SOAP faults ⇄ MI results: the table of §6 of the protocol notes, both directions.

A fault we send carries the MI result three ways, so every client recovers it: the WS-Man subcode,
an ``f:WSManFault`` with a Windows error ``Code`` (WMI's HRESULT where one exists, as WinRM sends
for WMI errors), and a CIM_Error-shaped ``OMI_Error`` with ``CIMStatusCode`` and
``MessageID = OMI:MI_Result:<n>`` (OMI's client reads only that element, after the WSManFault).
A fault we receive becomes an MI result from, in order: a CIM error's ``CIMStatusCode`` or OMI
``MessageID``, a WMI ``error_Code``, the ``WSManFault`` ``Code``, the subcode (and its faultDetail).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from lxml import etree

from openmi.cim.cimerror import CIM_ERROR, OPENMI_ERROR, error_instance
from openmi.cim.classes import Class, resolve_class
from openmi.cim.errors import MIError
from openmi.cim.instance import Instance
from openmi.cim.types import MIResult, MIType

from . import namespaces as ns
from .uri import resource_uri
from .values import WireError, append_value, element_to_instance, format_wire_scalar, text_of

if TYPE_CHECKING:
    _Elem = etree._Element
else:
    _Elem = Any

R = MIResult


class Subcode(NamedTuple):
    """What a fault subcode means: its SOAP Code, fault Action, MI result and usual WSManFault Code."""

    namespace: str
    local: str
    code: str
    action: str
    result: MIResult
    wsman_code: int


def _wbem(n: int) -> int:
    """A WMI HRESULT ``0x80041000 + n`` (WBEM_E_*)."""
    return 0x80041000 + n


# ERROR_WSMAN_* values used below (winerror.h).
WSMAN_RESOURCE_NOT_FOUND: Final = 2150858752
WSMAN_ACTION_NOT_SUPPORTED: Final = 2150858771
WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER: Final = 2150858778
WSMAN_INVALID_ENUMERATION_CONTEXT: Final = 2150858779
WSMAN_ENVELOPE_TOO_LARGE: Final = 2150858790
WSMAN_TIMED_OUT: Final = 2150858793
WSMAN_INVALID_PARAMETER: Final = 2150858810
WSMAN_INVALID_RESOURCE_URI: Final = 2150858811
WSMAN_QUOTA_LIMIT: Final = 2150858815
WSMAN_SCHEMA_VALIDATION: Final = 2150858817
WSMAN_UNSUPPORTED_FEATURE: Final = 2150858818
WSMAN_MAX_ENVELOPE_SIZE: Final = 2150858823
WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED: Final = 2150858824
WSMAN_SERVICE_ENVELOPE_LIMIT: Final = 2150858825
WSMAN_INVALID_XML_VALUES: Final = 2150858838
WSMAN_INSUFFICIENT_SELECTORS: Final = 2150858842
WSMAN_UNEXPECTED_SELECTORS: Final = 2150858843
WSMAN_INVALID_SELECTOR_VALUE: Final = 2150858845
WSMAN_AMBIGUOUS_SELECTORS: Final = 2150858846
WSMAN_DUPLICATE_SELECTORS: Final = 2150858847
WSMAN_LOCALE_NOT_SUPPORTED: Final = 2150858855
WSMAN_MUSTUNDERSTAND_ON_LOCALE: Final = 2150858887
WSMAN_CANNOT_PROCESS_FILTER: Final = 2150859042
WIN32_ACCESS_DENIED: Final = 5


def _sub(prefix: str, local: str, code: str, result: MIResult, wsman_code: int) -> tuple[str, Subcode]:
    uri, action = _PREFIXES[prefix]
    return f"{prefix}:{local}", Subcode(uri, local, code, action, result, wsman_code)


# The Action each subcode's fault is sent with. OMI's client parses a fault only under five Actions (notes
# §6.4), and its list dates the enumeration and transfer ones 2004/08 where the specs say 2004/09: a fault
# sent under either spelling of those two is "Internal error parsing Wsman fault message" there. So
# wsen: and wxf: faults go out under the wsman fault Action, which every client accepts; their subcodes stay
# what WinRM sends. (Reading, any Action is accepted.)
_PREFIXES: Final = {
    "wsa": (ns.WSA, ns.FAULT_ACTION_WSA),
    "wsman": (ns.WSMAN, ns.FAULT_ACTION_WSMAN),
    "wsen": (ns.WSEN, ns.FAULT_ACTION_WSMAN),
    "wxf": (ns.WXF, ns.FAULT_ACTION_WSMAN),
    "wse": (ns.WSE, ns.FAULT_ACTION_WSE),
    "wsmb": (ns.WSMB, ns.FAULT_ACTION_WSMAN),
    "s": (ns.SOAP, ns.FAULT_ACTION_WSA),
}

SUBCODES: Final[dict[str, Subcode]] = dict([
    _sub("wsa", "DestinationUnreachable", "Sender", R.NOT_FOUND, WSMAN_RESOURCE_NOT_FOUND),
    _sub("wsa", "ActionNotSupported", "Sender", R.NOT_SUPPORTED, WSMAN_ACTION_NOT_SUPPORTED),
    _sub("wsa", "InvalidMessageInformationHeader", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wsa", "MessageInformationHeaderRequired", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wsa", "EndpointUnavailable", "Receiver", R.SERVER_IS_SHUTTING_DOWN, _wbem(0x33)),
    _sub("wsman", "AccessDenied", "Sender", R.ACCESS_DENIED, WIN32_ACCESS_DENIED),
    _sub("wsman", "AlreadyExists", "Sender", R.ALREADY_EXISTS, _wbem(0x19)),
    _sub("wsman", "CannotProcessFilter", "Sender", R.INVALID_QUERY, WSMAN_CANNOT_PROCESS_FILTER),
    _sub("wsman", "Concurrency", "Sender", R.FAILED, _wbem(0x01)),
    _sub("wsman", "EncodingLimit", "Sender", R.SERVER_LIMITS_EXCEEDED, WSMAN_ENVELOPE_TOO_LARGE),
    _sub("wsman", "InternalError", "Receiver", R.FAILED, _wbem(0x01)),
    _sub("wsman", "InvalidOptions", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wsman", "InvalidParameter", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wsman", "InvalidSelectors", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_SELECTOR_VALUE),
    _sub("wsman", "QuotaLimit", "Sender", R.SERVER_LIMITS_EXCEEDED, WSMAN_QUOTA_LIMIT),
    _sub("wsman", "SchemaValidationError", "Sender", R.INVALID_PARAMETER, WSMAN_SCHEMA_VALIDATION),
    _sub("wsman", "TimedOut", "Receiver", R.FAILED, WSMAN_TIMED_OUT),
    _sub("wsman", "UnsupportedFeature", "Sender", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wsman", "FragmentDialectNotSupported", "Receiver", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wsen", "CannotProcessFilter", "Sender", R.INVALID_QUERY, WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER),
    _sub("wsen", "FilterDialectRequestedUnavailable", "Sender", R.QUERY_LANGUAGE_NOT_SUPPORTED, _wbem(0x18)),
    _sub("wsen", "FilteringNotSupported", "Sender", R.FILTERED_ENUMERATION_NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wsen", "InvalidEnumerationContext", "Receiver", R.INVALID_ENUMERATION_CONTEXT,
         WSMAN_INVALID_ENUMERATION_CONTEXT),
    _sub("wsen", "InvalidExpirationTime", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wsen", "UnsupportedExpirationType", "Sender", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wsen", "TimedOut", "Receiver", R.FAILED, WSMAN_TIMED_OUT),
    _sub("wxf", "InvalidRepresentation", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_XML_VALUES),
    _sub("wse", "DeliveryModeRequestedUnavailable", "Sender", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wse", "InvalidExpirationTime", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wse", "UnsupportedExpirationType", "Sender", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wse", "FilteringNotSupported", "Sender", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wse", "FilteringRequestedUnavailable", "Sender", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wse", "EventSourceUnableToProcess", "Receiver", R.FAILED, _wbem(0x01)),
    _sub("wse", "UnableToRenew", "Receiver", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("wse", "InvalidMessage", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wsman", "InvalidBookmark", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wsman", "DeliveryRefused", "Receiver", R.FAILED, _wbem(0x01)),
    _sub("wsman", "EventDeliverToUnusable", "Sender", R.INVALID_PARAMETER, WSMAN_INVALID_PARAMETER),
    _sub("wsmb", "PolymorphismModeNotSupported", "Receiver", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("s", "MustUnderstand", "MustUnderstand", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
    _sub("s", "VersionMismatch", "VersionMismatch", R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE),
])

_BY_QNAME: Final = {(s.namespace, s.local): s for s in SUBCODES.values()}
_BY_LOCAL: Final[dict[str, Subcode]] = {}
for _s in SUBCODES.values():  # a local name in two namespaces (wsen/wse InvalidExpirationTime): the first
    _BY_LOCAL.setdefault(_s.local, _s)
del _s


class _Emit(NamedTuple):
    subcode: str
    detail: str | None
    wsman_code: int


# MI result → what our server sends (§6.5 of the notes).
RESULT_FAULTS: Final[dict[MIResult, _Emit]] = {
    R.FAILED: _Emit("wsman:InternalError", None, _wbem(0x01)),
    R.ACCESS_DENIED: _Emit("wsman:AccessDenied", None, WIN32_ACCESS_DENIED),
    R.INVALID_NAMESPACE: _Emit("wsa:DestinationUnreachable", "InvalidResourceURI", _wbem(0x0E)),
    R.INVALID_PARAMETER: _Emit("wsman:InvalidParameter", None, _wbem(0x08)),
    R.INVALID_CLASS: _Emit("wsa:DestinationUnreachable", "InvalidResourceURI", _wbem(0x10)),
    R.NOT_FOUND: _Emit("wsa:DestinationUnreachable", None, _wbem(0x02)),
    R.NOT_SUPPORTED: _Emit("wsman:UnsupportedFeature", None, _wbem(0x0C)),
    R.CLASS_HAS_CHILDREN: _Emit("wsman:InternalError", None, _wbem(0x25)),
    R.CLASS_HAS_INSTANCES: _Emit("wsman:InternalError", None, _wbem(0x26)),
    R.INVALID_SUPERCLASS: _Emit("wsman:InternalError", None, _wbem(0x0D)),
    R.ALREADY_EXISTS: _Emit("wsman:AlreadyExists", None, _wbem(0x19)),
    R.NO_SUCH_PROPERTY: _Emit("wsman:InvalidParameter", None, _wbem(0x31)),
    R.TYPE_MISMATCH: _Emit("wsman:InvalidParameter", None, _wbem(0x05)),
    R.QUERY_LANGUAGE_NOT_SUPPORTED: _Emit("wsen:FilterDialectRequestedUnavailable", None, _wbem(0x18)),
    # the WSManFault code WinRM sends with a bad WQL Enumerate (notes §1.4 of the query research)
    R.INVALID_QUERY: _Emit("wsen:CannotProcessFilter", None, WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER),
    R.METHOD_NOT_AVAILABLE: _Emit("wsa:ActionNotSupported", None, _wbem(0x55)),
    R.METHOD_NOT_FOUND: _Emit("wsa:ActionNotSupported", None, _wbem(0x2E)),
    R.NAMESPACE_NOT_EMPTY: _Emit("wsman:InternalError", None, _wbem(0x01)),
    R.INVALID_ENUMERATION_CONTEXT: _Emit("wsen:InvalidEnumerationContext", None, WSMAN_INVALID_ENUMERATION_CONTEXT),
    R.INVALID_OPERATION_TIMEOUT: _Emit("wsman:UnsupportedFeature", "OperationTimeout", WSMAN_UNSUPPORTED_FEATURE),
    R.PULL_HAS_BEEN_ABANDONED: _Emit("wsman:InternalError", None, _wbem(0x01)),
    R.PULL_CANNOT_BE_ABANDONED: _Emit("wsman:InternalError", None, _wbem(0x01)),
    R.FILTERED_ENUMERATION_NOT_SUPPORTED: _Emit("wsen:FilteringNotSupported", None, WSMAN_UNSUPPORTED_FEATURE),
    R.CONTINUATION_ON_ERROR_NOT_SUPPORTED: _Emit("wsman:UnsupportedFeature", None, WSMAN_UNSUPPORTED_FEATURE),
    R.SERVER_LIMITS_EXCEEDED: _Emit("wsman:QuotaLimit", None, WSMAN_QUOTA_LIMIT),
    R.SERVER_IS_SHUTTING_DOWN: _Emit("wsa:EndpointUnavailable", None, _wbem(0x33)),
}

# Windows error codes seen in WSManFault Code or MSFT_WmiError.error_Code → MI result.
CODE_RESULTS: Final[dict[int, MIResult]] = {
    _wbem(0x01): R.FAILED, _wbem(0x02): R.NOT_FOUND, _wbem(0x03): R.ACCESS_DENIED, _wbem(0x04): R.FAILED,
    _wbem(0x05): R.TYPE_MISMATCH, _wbem(0x08): R.INVALID_PARAMETER, _wbem(0x0C): R.NOT_SUPPORTED,
    _wbem(0x0D): R.INVALID_SUPERCLASS, _wbem(0x0E): R.INVALID_NAMESPACE, _wbem(0x0F): R.INVALID_PARAMETER,
    _wbem(0x10): R.INVALID_CLASS, _wbem(0x17): R.INVALID_QUERY, _wbem(0x18): R.QUERY_LANGUAGE_NOT_SUPPORTED,
    _wbem(0x19): R.ALREADY_EXISTS, _wbem(0x25): R.CLASS_HAS_CHILDREN, _wbem(0x26): R.CLASS_HAS_INSTANCES,
    _wbem(0x2E): R.METHOD_NOT_FOUND, _wbem(0x2F): R.INVALID_PARAMETER, _wbem(0x31): R.NO_SUCH_PROPERTY,
    _wbem(0x33): R.SERVER_IS_SHUTTING_DOWN, _wbem(0x55): R.METHOD_NOT_AVAILABLE,
    WIN32_ACCESS_DENIED: R.ACCESS_DENIED, 0x80070005: R.ACCESS_DENIED,
    WSMAN_RESOURCE_NOT_FOUND: R.NOT_FOUND, WSMAN_RESOURCE_NOT_FOUND & 0xFFFF: R.NOT_FOUND,
    WSMAN_INVALID_RESOURCE_URI: R.NOT_FOUND,
    WSMAN_ACTION_NOT_SUPPORTED: R.NOT_SUPPORTED, WSMAN_UNSUPPORTED_FEATURE: R.NOT_SUPPORTED,
    WSMAN_LOCALE_NOT_SUPPORTED: R.NOT_SUPPORTED, WSMAN_MUSTUNDERSTAND_ON_LOCALE: R.NOT_SUPPORTED,
    WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER: R.INVALID_QUERY, WSMAN_CANNOT_PROCESS_FILTER: R.INVALID_QUERY,
    WSMAN_INVALID_ENUMERATION_CONTEXT: R.INVALID_ENUMERATION_CONTEXT,
    WSMAN_INVALID_PARAMETER: R.INVALID_PARAMETER, WSMAN_SCHEMA_VALIDATION: R.INVALID_PARAMETER,
    WSMAN_INVALID_XML_VALUES: R.INVALID_PARAMETER,
    WSMAN_INSUFFICIENT_SELECTORS: R.INVALID_PARAMETER, WSMAN_UNEXPECTED_SELECTORS: R.INVALID_PARAMETER,
    WSMAN_INVALID_SELECTOR_VALUE: R.INVALID_PARAMETER, WSMAN_AMBIGUOUS_SELECTORS: R.INVALID_PARAMETER,
    WSMAN_DUPLICATE_SELECTORS: R.INVALID_PARAMETER,
    WSMAN_QUOTA_LIMIT: R.SERVER_LIMITS_EXCEEDED, WSMAN_ENVELOPE_TOO_LARGE: R.SERVER_LIMITS_EXCEEDED,
    WSMAN_MAX_ENVELOPE_SIZE: R.SERVER_LIMITS_EXCEEDED, WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED: R.SERVER_LIMITS_EXCEEDED,
    WSMAN_SERVICE_ENVELOPE_LIMIT: R.SERVER_LIMITS_EXCEEDED, WSMAN_TIMED_OUT: R.FAILED,
}

# faultDetail URIs that refine what a subcode means on the client side.
_DETAIL_RESULTS: Final[dict[tuple[str, str], MIResult]] = {
    ("DestinationUnreachable", "InvalidResourceURI"): R.INVALID_CLASS,
    ("InvalidSelectors", ""): R.NOT_FOUND,
}

# The detail-specific WSManFault codes we send.
_DETAIL_CODES: Final[dict[str, int]] = {
    "MinimumEnvelopeLimit": WSMAN_MAX_ENVELOPE_SIZE,
    "MaxEnvelopeSizeExceeded": WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED,
    "MaxEnvelopeSize": WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED,
    "ServiceEnvelopeLimit": WSMAN_SERVICE_ENVELOPE_LIMIT,
    "InsufficientSelectors": WSMAN_INSUFFICIENT_SELECTORS,
    "UnexpectedSelectors": WSMAN_UNEXPECTED_SELECTORS,
    "AmbiguousSelectors": WSMAN_AMBIGUOUS_SELECTORS,
    "DuplicateSelectors": WSMAN_DUPLICATE_SELECTORS,
    "InvalidResourceURI": WSMAN_INVALID_RESOURCE_URI,
    "Locale": WSMAN_MUSTUNDERSTAND_ON_LOCALE,
}

OMI_MESSAGE_ID_PREFIX: Final = "OMI:MI_Result:"


@dataclass(slots=True)
class Fault:
    """A SOAP fault as data: what both sides read and write.

    ``subcode`` is ``(namespace URI, local name)``; ``detail`` the full faultDetail URI;
    ``wsman_code``/``machine``/``wsman_message`` come from ``f:WSManFault`` (``provider_codes`` from
    WSManFaults nested in ProviderFault); ``cim_errors`` are the CIM_Error-shaped detail instances;
    ``result`` is the MI result the fault stands for.
    """

    subcode: tuple[str, str] | None
    reason: str = ""
    code: str = "Sender"
    detail: str | None = None
    action: str = ns.FAULT_ACTION_WSMAN
    wsman_code: int | None = None
    machine: str | None = None
    wsman_message: str | None = None
    provider_codes: list[int] = field(default_factory=list)
    cim_errors: list[Instance] = field(default_factory=list)
    not_understood: tuple[str, str] | None = None
    result: MIResult | int | None = None

    @property
    def subcode_name(self) -> str | None:
        """``wsman:InvalidSelectors`` style name of the subcode, with our conventional prefix."""
        if self.subcode is None:
            return None
        for prefix, (uri, _) in _PREFIXES.items():
            if uri == self.subcode[0]:
                return f"{prefix}:{self.subcode[1]}"
        return self.subcode[1]

    @property
    def detail_name(self) -> str | None:
        """The last segment of the faultDetail URI (``InvalidResourceURI``)."""
        return self.detail.rstrip("/").rpartition("/")[2] if self.detail else None

    @property
    def message(self) -> str:
        for err in self.cim_errors:
            msg = err.get("Message")
            if isinstance(msg, str) and msg:
                return msg
        return self.wsman_message or self.reason


class WSManFault(MIError):
    """A WS-Man fault as an MIError: ``result`` is the MI result, ``fault`` the full fault.

    The server raises it from ``parse_request`` for protocol errors (``relates_to`` and
    ``encoding`` say how to answer); the client gets it from ``parse_response``.
    """

    def __init__(self, fault: Fault, *, relates_to: str | None = None, encoding: str = "utf-8") -> None:
        if fault.result is None:
            fault.result = fault_to_result(fault)
        super().__init__(fault.result, fault.message, fault.cim_errors[0] if fault.cim_errors else None)
        self.fault = fault
        self.relates_to = relates_to
        self.encoding = encoding

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.fault, self.relates_to, self.encoding))


def _rebuild(fault: Fault, relates_to: str | None, encoding: str) -> WSManFault:
    return WSManFault(fault, relates_to=relates_to, encoding=encoding)


def protocol_fault(
    name: str, reason: str, detail: str | None = None, *, result: MIResult | int | None = None,
    not_understood: tuple[str, str] | None = None,
) -> WSManFault:
    """A fault for a protocol-level problem: ``name`` is a key of :data:`SUBCODES`
    (``"wsman:EncodingLimit"``), ``detail`` the last segment of a faultDetail URI."""
    sub = SUBCODES[name]
    code = _DETAIL_CODES.get(detail, sub.wsman_code) if detail else sub.wsman_code
    fault = Fault(
        subcode=(sub.namespace, sub.local), reason=reason, code=sub.code,
        detail=ns.FAULT_DETAIL + detail if detail else None, action=sub.action, wsman_code=code,
        not_understood=not_understood, result=result if result is not None else sub.result,
    )
    return WSManFault(fault)


def fault_for_error(err: MIError, *, not_found: str = "unreachable") -> Fault:
    """The fault our server sends for an MIError (a WSManFault keeps its own).

    ``not_found="selectors"`` answers NOT_FOUND with ``wsman:InvalidSelectors`` (WinRM-like)
    instead of ``wsa:DestinationUnreachable`` (OMI-like).
    """
    if isinstance(err, WSManFault):
        return err.fault
    try:
        result: MIResult | int = MIResult(err.result)
    except ValueError:
        result = int(err.result)
    emit = RESULT_FAULTS.get(result, RESULT_FAULTS[R.FAILED]) if isinstance(result, MIResult) \
        else RESULT_FAULTS[R.FAILED]
    subname = emit.subcode
    if result == R.NOT_FOUND and not_found == "selectors":
        subname = "wsman:InvalidSelectors"
    sub = SUBCODES[subname]
    details = [err.details] if isinstance(err.details, Instance) else []
    return Fault(
        subcode=(sub.namespace, sub.local), reason=err.message, code=sub.code,
        detail=ns.FAULT_DETAIL + emit.detail if emit.detail else None, action=sub.action,
        wsman_code=emit.wsman_code, wsman_message=err.message, cim_errors=details, result=result,
    )


# --- fault → MI result (client side) --------------------------------------------------------------

def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip(), 0) if value.strip().lower().startswith("0x") else int(value.strip())
        except ValueError:
            return None
    return None


def _result(n: int) -> MIResult | int:
    try:
        return MIResult(n)
    except ValueError:
        return n


def fault_to_result(fault: Fault) -> MIResult | int:
    """The MI result a fault stands for, whichever peer sent it (see the module docstring)."""
    for err in fault.cim_errors:
        code = _int(err.get("CIMStatusCode"))
        if code:
            return _result(code)
        mid = err.get("MessageID")
        if isinstance(mid, str) and mid.startswith(OMI_MESSAGE_ID_PREFIX):
            code = _int(mid[len(OMI_MESSAGE_ID_PREFIX):])
            if code:
                return _result(code)
    for err in fault.cim_errors:  # MSFT_WmiError: a Windows code unless error_Type says MI
        code = _int(err.get("error_Code"))
        kind = err.get("error_Type")
        if code is not None and code in CODE_RESULTS and not (isinstance(kind, str) and kind.upper() == "MI"):
            return CODE_RESULTS[code]
    for code in (fault.wsman_code, *fault.provider_codes):
        if code is not None and code in CODE_RESULTS:
            return CODE_RESULTS[code]
    if fault.subcode is not None:
        sub = _BY_QNAME.get(fault.subcode) or _BY_LOCAL.get(fault.subcode[1])
        if sub is not None:
            refined = _DETAIL_RESULTS.get((sub.local, fault.detail_name or ""))
            return refined if refined is not None else sub.result
    if fault.code in ("MustUnderstand", "VersionMismatch", "DataEncodingUnknown"):
        return R.NOT_SUPPORTED
    return R.FAILED


# --- XML ------------------------------------------------------------------------------------------

_SubElement = etree.SubElement
_ERROR_CLASS: Final[Class] = resolve_class(OPENMI_ERROR, CIM_ERROR)
_OWN_ERROR_CLASSES: Final = frozenset({"openmi_error", "omi_error"})
_HINT_NAMES: Final[dict[int, str]] = {
    MIType.BOOLEAN: "cim:cimBoolean", MIType.UINT8: "cim:cimUnsignedByte", MIType.SINT8: "cim:cimByte",
    MIType.UINT16: "cim:cimUnsignedShort", MIType.SINT16: "cim:cimShort", MIType.UINT32: "cim:cimUnsignedInt",
    MIType.SINT32: "cim:cimInt", MIType.UINT64: "cim:cimUnsignedLong", MIType.SINT64: "cim:cimLong",
    MIType.REAL32: "cim:cimFloat", MIType.REAL64: "cim:cimDouble", MIType.CHAR16: "cim:cimChar16",
    MIType.DATETIME: "cim:cimDateTime", MIType.STRING: "cim:cimString",
}


def _prefix_for(el: _Elem, uri: str, fallback: str) -> tuple[str, dict[str, str] | None]:
    for prefix, bound in el.nsmap.items():
        if bound == uri and prefix:
            return prefix, None
    return fallback, {fallback: uri}


@lru_cache(maxsize=64)
def _base_error(result: int) -> Instance:
    """Our CIM error instance for ``result`` (shared and never changed: the writer overrides fields)."""
    return error_instance(result, "")


def _append_cim_error(
    detail: _Elem, inst: Instance, class_name: str | None = None, overrides: dict[str, Any] | None = None,
) -> None:
    """Write a CIM error instance as OMI does: IsCIM_Error and an ``xsi:type`` hint per property.

    ``overrides`` replaces the values of the named (lower-case) properties.
    """
    name = class_name or inst.class_name
    uri = resource_uri(inst.namespace, name)
    root = _SubElement(detail, ns.q(uri, name), {ns.B_IS_CIM_ERROR: "true"}, nsmap={"p": uri})
    prefix = "{" + uri + "}"
    for el in inst.elements:
        t = int(el.type)
        value = el.value if overrides is None else overrides.get(el.name.lower(), el.value)
        if value is None:
            _SubElement(root, prefix + el.name, _NIL)
            continue
        scalar = t & 0x0F
        hint = _HINT_NAMES.get(scalar)
        if hint is None:  # references and embedded instances: the general writer
            append_value(root, prefix + el.name, value, t)
            continue
        attrib = {ns.XSI_TYPE: hint}
        for item in value if isinstance(value, list) else (value,):
            _SubElement(root, prefix + el.name, attrib).text = format_wire_scalar(item, scalar)


_NIL: Final = {ns.XSI_NIL: "true"}


def append_fault(body: _Elem, fault: Fault, *, machine: str | None = None, lang: str = "en-US") -> _Elem:
    """Write ``s:Fault`` into ``body``: Code/Subcode, Reason, then Detail with FaultDetail,
    ``f:WSManFault`` and the CIM error(s), in the order OMI's client needs."""
    f = _SubElement(body, ns.S_FAULT)
    code = _SubElement(f, ns.q(ns.SOAP, "Code"))
    spfx, _ = _prefix_for(body, ns.SOAP, "s")
    _SubElement(code, ns.q(ns.SOAP, "Value")).text = f"{spfx}:{fault.code}"
    if fault.subcode is not None and fault.subcode[0] != ns.SOAP:
        sc = _SubElement(code, ns.q(ns.SOAP, "Subcode"))
        pfx, nsmap = _prefix_for(body, fault.subcode[0], "sc")
        _SubElement(sc, ns.q(ns.SOAP, "Value"), nsmap=nsmap).text = f"{pfx}:{fault.subcode[1]}"
    reason = _SubElement(f, ns.q(ns.SOAP, "Reason"))
    text = _SubElement(reason, ns.q(ns.SOAP, "Text"), {ns.XML_LANG: lang})
    text.text = fault.reason
    detail = _SubElement(f, ns.q(ns.SOAP, "Detail"))
    if fault.detail:
        _SubElement(detail, ns.W_FAULT_DETAIL).text = fault.detail
    wf = _SubElement(detail, ns.F_WSMAN_FAULT, nsmap={"f": ns.WSMANFAULT})
    wf.set("Code", str(fault.wsman_code if fault.wsman_code is not None else _wbem(0x01)))
    wf.set("Machine", machine or fault.machine or "")
    _SubElement(wf, ns.F_MESSAGE).text = fault.wsman_message or fault.reason
    result = fault.result if fault.result is not None else fault_to_result(fault)
    own: Instance | None = None
    for err in fault.cim_errors:
        if err.class_name.lower() in _OWN_ERROR_CLASSES:
            own = err
        else:
            _append_cim_error(detail, err)
    if result:
        status = int(result)
        base = own if own is not None else _base_error(status)
        overrides: dict[str, Any] = {"messageid": f"{OMI_MESSAGE_ID_PREFIX}{status}", "cimstatuscode": status}
        if own is None or own.get("Message") is None:
            overrides["message"] = fault.message
        _append_cim_error(detail, base, "OMI_Error", overrides)
    return f


def append_result_error(parent: _Elem, result: int, message: str) -> None:
    """An ``OMI_Error`` standing for ``result`` (MI_Result) with ``message``, as a fault's detail carries it:
    a message that is not a fault (a SubscriptionEnd) says the same to a client that reads it."""
    status = int(result)
    _append_cim_error(parent, _base_error(status), "OMI_Error",
                      {"messageid": f"{OMI_MESSAGE_ID_PREFIX}{status}", "cimstatuscode": status, "message": message})


def read_result_error(parent: _Elem) -> tuple[MIResult | int, Instance] | None:
    """The first CIM error among ``parent``'s children with a CIMStatusCode: (the MI result, the instance)."""
    for c in parent:
        if isinstance(c.tag, str) and _is_cim_error(c):
            err = _read_cim_error(c)
            code = _int(err.get("CIMStatusCode")) if "CIMStatusCode" in err else None
            if code is not None:
                return _result(code), err
    return None


def _resolve_qname(el: _Elem, text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    prefix, _, local = text.strip().rpartition(":")
    uri = el.nsmap.get(prefix or None)
    return (uri or "", local)


def _message_text(wf: _Elem) -> tuple[str | None, list[int]]:
    """The innermost message of a WSManFault (ProviderFault may nest another), and nested codes."""
    codes: list[int] = []
    msg = wf.find(ns.F_MESSAGE)
    if msg is None:
        return None, codes
    texts: list[str] = []
    for inner in msg.iter(ns.F_WSMAN_FAULT):
        c = _int(inner.get("Code"))
        if c is not None:
            codes.append(c)
        inner_msg = inner.find(ns.F_MESSAGE)
        if inner_msg is not None and inner_msg.text and inner_msg.text.strip():
            texts.append(inner_msg.text.strip())
    own = (msg.text or "").strip()
    if texts:
        return texts[-1], codes
    if own:
        return own, codes
    joined = " ".join(text_of(msg).split())
    return joined or None, codes


def read_fault(fault_el: _Elem, action: str | None = None) -> Fault:
    """Read an ``s:Fault`` element (from any peer) into a :class:`Fault` with its MI result."""
    code_el = fault_el.find(ns.q(ns.SOAP, "Code"))
    code = "Receiver"
    subcode: tuple[str, str] | None = None
    if code_el is not None:
        v = code_el.find(ns.q(ns.SOAP, "Value"))
        if v is not None and v.text:
            code = v.text.strip().rpartition(":")[2]
        sv = code_el.find(f"{ns.q(ns.SOAP, 'Subcode')}/{ns.q(ns.SOAP, 'Value')}")
        if sv is not None:
            subcode = _resolve_qname(sv, sv.text)
    reason = ""
    text_el = fault_el.find(f"{ns.q(ns.SOAP, 'Reason')}/{ns.q(ns.SOAP, 'Text')}")
    if text_el is not None:
        reason = text_of(text_el).strip()
    fault = Fault(subcode=subcode, reason=reason, code=code, action=action or ns.FAULT_ACTION_WSMAN)
    detail = fault_el.find(ns.q(ns.SOAP, "Detail"))
    if detail is not None:
        for child in detail:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            if tag == ns.W_FAULT_DETAIL:
                fault.detail = (child.text or "").strip() or None
            elif tag == ns.F_WSMAN_FAULT:
                fault.wsman_code = _int(child.get("Code"))
                fault.machine = child.get("Machine")
                fault.wsman_message, fault.provider_codes = _message_text(child)
            elif _is_cim_error(child):
                fault.cim_errors.append(_read_cim_error(child))
        if not fault.cim_errors:  # WinRM nests MSFT_WmiError inside WSManFault/Message/ProviderFault
            for el in detail.iter(ns.F_WSMAN_FAULT):
                for inner in el.iterdescendants():
                    if isinstance(inner.tag, str) and not inner.tag.startswith(_F_PREFIX) and _is_cim_error(inner):
                        fault.cim_errors.append(_read_cim_error(inner))
                break
    fault.result = fault_to_result(fault)
    return fault


_F_PREFIX: Final = "{" + ns.WSMANFAULT + "}"


def _read_cim_error(el: _Elem) -> Instance:
    name = str(el.tag).rpartition("}")[2]
    try:
        return element_to_instance(el, _ERROR_CLASS, class_name=name)
    except WireError:  # a peer's CIM error whose values do not fit CIM_Error's types: keep them as sent
        return element_to_instance(el, None, class_name=name)


def _is_cim_error(el: _Elem) -> bool:
    if el.get(ns.B_IS_CIM_ERROR) in ("true", "1"):
        return True
    local = el.tag.rpartition("}")[2]
    if local in ("CIM_Error", "OMI_Error", "MSFT_WmiError", "OpenMI_Error"):
        return True
    return any(isinstance(c.tag, str) and c.tag.endswith("}CIMStatusCode") for c in el)


def with_result(fault: Fault, result: MIResult | int) -> Fault:
    """A copy of ``fault`` standing for ``result``."""
    return dataclasses.replace(fault, result=result)

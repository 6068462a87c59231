"""SOAP 1.2 envelopes ⇄ bytes: character encodings, the hardened parser, size limits, common headers.

Reading accepts UTF-8 and UTF-16 (BOM, ``charset``, or sniffed from the first bytes) and refuses,
each with its own fault: bodies over the size cap, other charsets, DTDs and entity declarations
(billion laughs, external entities), nesting past libxml2's bound, bodies that are not XML, and
envelopes that are not SOAP 1.2. Writing produces UTF-8 without a declaration, or UTF-16LE with a
BOM when the request came in UTF-16.
"""

from __future__ import annotations

import codecs
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

from lxml import etree

from openmi.cim.types import MIResult

from . import namespaces as ns
from .faults import WSManFault, protocol_fault
from .values import parse_duration

if TYPE_CHECKING:
    _Elem = etree._Element
else:
    _Elem = Any


@dataclass(frozen=True, slots=True)
class Limits:
    """What one side accepts.

    ``max_envelope``: the largest body read, and the cap on responses whatever MaxEnvelopeSize asks
    (WinRM's default MaxEnvelopeSizekb is 500). ``min_envelope``: the smallest MaxEnvelopeSize a
    request may ask for (MS-WSMV). ``default_namespace``: the namespace of a DMTF-style URI without
    ``__cimnamespace``. ``not_found``: ``"unreachable"`` (OMI-like wsa:DestinationUnreachable) or
    ``"selectors"`` (WinRM-like wsman:InvalidSelectors) for NOT_FOUND faults.
    """

    max_envelope: int = 512_000
    min_envelope: int = 8192
    default_namespace: str | None = "root/cimv2"
    not_found: str = "unreachable"


SERVER_LIMITS: Final = Limits()
CLIENT_LIMITS: Final = Limits(max_envelope=64 * 1024 * 1024)

_local = threading.local()


def _parser() -> etree.XMLParser:
    """One hardened parser per thread: no entities, no network, no DTD, no huge trees.

    The bytes it sees are always UTF-8 (UTF-16 is transcoded first), so the encoding is forced and
    an XML declaration cannot switch it.
    """
    p: etree.XMLParser | None = getattr(_local, "parser", None)
    if p is None:
        p = etree.XMLParser(
            encoding="utf-8", resolve_entities=False, no_network=True, load_dtd=False,
            dtd_validation=False, huge_tree=False, collect_ids=False, remove_pis=True,
        )
        _local.parser = p
    return p


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


_UTF8_TYPES: Final = frozenset({
    None, "application/soap+xml;charset=UTF-8", "application/soap+xml;charset=utf-8",
    "application/soap+xml; charset=UTF-8", "application/soap+xml; charset=utf-8", "application/soap+xml",
})
_UTF16: Final = {"utf-16": "utf-16", "utf16": "utf-16", "utf-16le": "utf-16-le", "utf-16be": "utf-16-be"}


def decode(body: bytes, content_type: str | None) -> tuple[bytes, str]:
    """The body as UTF-8 bytes and the encoding it came in (``utf-8`` or ``utf-16``)."""
    if content_type in _UTF8_TYPES and body[:1] == b"<" and body[1:2] != b"\x00":  # the common case
        return body, "utf-8"
    if body[:3] == codecs.BOM_UTF8:
        return body[3:], "utf-8"
    charset = _charset(content_type)
    codec: str | None = None
    if body[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        codec = "utf-16"
    elif charset in _UTF16:
        codec = _UTF16[charset]
        if codec == "utf-16":  # no BOM: sniff the byte order from the leading '<'
            codec = "utf-16-be" if body[:2] == b"\x00<" else "utf-16-le"
    elif charset in (None, "utf-8", "utf8"):
        if body[:2] == b"<\x00":
            codec = "utf-16-le"
        elif body[:2] == b"\x00<":
            codec = "utf-16-be"
        else:
            return body, "utf-8"
    else:
        raise protocol_fault("wsman:EncodingLimit", f"The character set {charset!r} is not supported; "
                             "use UTF-8 or UTF-16.", "CharacterSet")
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        raise protocol_fault("wsman:EncodingLimit", f"The body is not valid {codec}: {exc}", "CharacterSet") from None
    return text.lstrip("\ufeff").encode("utf-8"), "utf-16"


def parse_envelope(
    body: bytes, content_type: str | None, limits: Limits = SERVER_LIMITS,
) -> tuple[_Elem, _Elem | None, _Elem | None, str]:
    """Bytes → (Envelope, Header, Body, encoding), or a :class:`WSManFault` saying what is wrong."""
    if len(body) > limits.max_envelope:
        raise protocol_fault(
            "wsman:EncodingLimit",
            f"The envelope is {len(body)} bytes; this service accepts at most {limits.max_envelope}.",
            "ServiceEnvelopeLimit",
        )
    data, encoding = decode(body, content_type)
    try:
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise protocol_fault("wsman:SchemaValidationError",
                                 "Document type declarations and entity declarations are not accepted.")
        if not data or data.isspace():
            raise protocol_fault("wsman:SchemaValidationError", "The request body is empty.")
        try:
            root = etree.fromstring(data, _parser())
        except etree.XMLSyntaxError as exc:
            msg = str(exc)
            if "depth" in msg.lower():
                raise protocol_fault("wsman:EncodingLimit", f"The XML nests too deeply: {msg}",
                                     result=MIResult.SERVER_LIMITS_EXCEEDED) from None
            raise protocol_fault("wsman:SchemaValidationError", f"The body is not well-formed XML: {msg}") from None
        if root.tag != ns.S_ENVELOPE:
            if root.tag == ns.q(ns.SOAP11, "Envelope"):
                raise protocol_fault("s:VersionMismatch", "Only SOAP 1.2 envelopes are accepted.")
            raise protocol_fault("wsman:SchemaValidationError", "The body is not a SOAP 1.2 envelope.")
        header = body_el = None
        for child in root:
            if child.tag == ns.S_HEADER:
                header = child
            elif child.tag == ns.S_BODY:
                body_el = child
    except WSManFault as f:
        f.encoding = encoding
        raise
    return root, header, body_el, encoding


def serialize(root: _Elem, encoding: str = "utf-8") -> bytes:
    """The envelope as bytes in ``encoding`` (UTF-16 gets a BOM and little-endian order)."""
    if encoding == "utf-16":
        return codecs.BOM_UTF16_LE + etree.tostring(root, encoding="unicode").encode("utf-16-le")
    return etree.tostring(root)


def content_type(encoding: str = "utf-8") -> str:
    """The Content-Type of a body in ``encoding`` (charset as the first parameter, for OMI)."""
    return "application/soap+xml;charset=UTF-16" if encoding == "utf-16" else "application/soap+xml;charset=UTF-8"


def must_understand(el: _Elem) -> bool:
    """``s:mustUnderstand`` true (an unprefixed attribute, as pywinrm sends, does not count)."""
    return el.get(ns.S_MUST_UNDERSTAND) in ("true", "1")


MAX_TIMEOUT_TEXT: Final = 64
"""The longest xs:duration text read for OperationTimeout and MaxTime (``P99999999DT23H59M59.999999S`` is 27)."""
MAX_TIMEOUT_SECONDS: Final = 100_000_000.0
"""Longer timeouts (about three years) are taken as this: past it a timer would overflow the OS wait."""


def parse_timeout(text: str, what: str = "OperationTimeout") -> float:
    """An xs:duration header value in seconds; a fault if it is not one.

    Valid short texts are cached (clients repeat theirs); nothing longer than MAX_TIMEOUT_TEXT is read or cached,
    and a fault quotes at most that much of the text.
    """
    text = text.strip()
    if len(text) > MAX_TIMEOUT_TEXT:
        raise protocol_fault("wsa:InvalidMessageInformationHeader",
                             f"{what} must be a non-negative xs:duration, not a text of {len(text)} "
                             f"characters ({text[:MAX_TIMEOUT_TEXT]!r}…).", "InvalidTimeout")
    return _parse_timeout(text, what)


@lru_cache(maxsize=256)
def _parse_timeout(text: str, what: str) -> float:
    try:
        return min(parse_duration(text).total_seconds(), MAX_TIMEOUT_SECONDS)
    except ValueError:
        raise protocol_fault("wsa:InvalidMessageInformationHeader",
                             f"{what} must be a non-negative xs:duration, not {text!r}.",
                             "InvalidTimeout") from None


def format_timeout(seconds: float) -> str:
    """Seconds → xs:duration as Windows clients write it (``PT60.000S``)."""
    return f"PT{seconds:.3f}S"


def read_option_set(el: _Elem) -> dict[str, Any]:
    """``w:OptionSet`` → ``{name: value}``; ``Type`` xs:boolean/integers give bool/int, a repeated
    name gives a list, ``xsi:nil`` gives None."""
    out: dict[str, Any] = {}
    for o in el.iterchildren(ns.W_OPTION):
        name = o.get("Name")
        if not name:
            continue
        value: Any
        if o.get(ns.XSI_NIL) in ("true", "1"):
            value = None
        else:
            text = o.text or ""
            typ = (o.get("Type") or "").rpartition(":")[2].lower()
            value = text
            if typ == "boolean":
                value = text.strip().lower() in ("true", "1")
            elif typ in _INT_TYPES:
                try:
                    value = int(text.strip())
                except ValueError:
                    value = text
        if name in out:
            prev = out[name]
            out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[name] = value
    return out


_INT_TYPES: Final = frozenset({"int", "integer", "long", "short", "byte", "unsignedint", "unsignedlong",
                               "unsignedshort", "unsignedbyte"})


def append_option_set(parent: _Elem, options: dict[str, Any], must_understand: bool = False) -> _Elem:
    """Write ``w:OptionSet``: bool → xs:boolean, int → xs:int/xs:long, list → one Option per item."""
    os_el = etree.SubElement(parent, ns.W_OPTION_SET)
    if must_understand:
        os_el.set(ns.S_MUST_UNDERSTAND, "true")
    for name, value in options.items():
        for item in value if isinstance(value, list) else [value]:
            o = etree.SubElement(os_el, ns.W_OPTION, Name=name)
            if item is None:
                o.set(ns.XSI_NIL, "true")
            elif isinstance(item, bool):
                o.set("Type", "xs:boolean")
                o.text = "true" if item else "false"
            elif isinstance(item, int):
                o.set("Type", "xs:int" if -(2**31) <= item < 2**31 else "xs:long")
                o.text = str(item)
            else:
                o.text = str(item)
    return os_el

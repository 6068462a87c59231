"""CIM instances ⇄ WS-Man XML (DSP0230 as WinRM and OMI write it), selectors and EPRs.

Reading: with a :class:`~openmi.cim.classes.Class` the property types come from the class; without
one, text stays a string unless the wire says more (``xsi:nil``, repeated elements → arrays, a
``cim:Datetime``/``cim:Interval`` wrapper → datetime, EPR parts → reference, child elements →
embedded instance, a ``cim:cim…`` ``xsi:type`` hint → that type). Writing: null as ``xsi:nil``,
arrays as repeated elements, datetimes wrapped or bare, references as EPR parts, embedded instances
with a fresh prefix and ``xsi:type``.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from lxml import etree

from openmi.cim.classes import Class, Method, Property
from openmi.cim.instance import Element, Instance
from openmi.cim.objectpath import Reference, new_reference
from openmi.cim.types import INTEGER_RANGES, MIFlag, MIType
from openmi.cim.values import coerce_scalar, parse_datetime, parse_scalar

from . import namespaces as ns
from .uri import (
    CIMNAMESPACE_SELECTOR,
    UriStyle,
    needs_cimnamespace_selector,
    parse_resource_uri,
    resolve_namespace,
    resource_uri,
)

if TYPE_CHECKING:
    _Elem = etree._Element
else:
    _Elem = Any

ClassLookup = Callable[[str | None, str], "Class | None"]
"""``(namespace, class_name) -> Class | None``: how the codec asks the caller for class declarations."""

Selectors = dict[str, "str | Instance"]

MAX_NESTING: Final = 32
"""How deep embedded instances and references may nest inside one value."""


class WireError(ValueError):
    """A value, selector set or body that cannot be read.

    ``kind`` says which fault it becomes: ``"value"`` (a value that does not fit its type),
    ``"selectors"`` (``detail`` names the wsman faultDetail), ``"depth"`` (nesting too deep) or
    ``"schema"`` (an element that is missing or malformed).
    """

    def __init__(self, message: str, kind: str = "value", detail: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.detail = detail


# --- scalar text forms ----------------------------------------------------------------------------

_TZ = r"(Z|[+-]\d{2}:\d{2})?"
_XS_DATETIME = re.compile(r"^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?" + _TZ + "$")
_XS_DATE = re.compile(r"^(\d{4,})-(\d{2})-(\d{2})" + _TZ + "$")
_XS_TIME = re.compile(r"^(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?" + _TZ + "$")
_XS_DURATION = re.compile(
    r"^(-)?P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d*)?|\.\d+)S)?)?$"
)


def _tz(text: str | None) -> _dt.timezone:
    if not text or text == "Z":
        return _dt.timezone.utc
    sign = -1 if text[0] == "-" else 1
    return _dt.timezone(sign * _dt.timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _micro(fraction: str | None) -> int:
    return int((fraction or "0")[:6].ljust(6, "0"))


def parse_duration(text: str) -> _dt.timedelta:
    """Parse an xs:duration (``PT60S``, ``PT60.000S``, ``P1DT2H``); negative ones are rejected.

    Years and months count as 365 and 30 days, as CIM intervals have no calendar.
    """
    m = _XS_DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not an xs:duration")
    neg, years, months, days, hours, minutes, seconds = m.groups()
    if neg:
        raise ValueError(f"{text!r} is negative")
    whole, _, frac = (seconds or "0").partition(".")
    try:
        return _dt.timedelta(
            days=int(years or 0) * 365 + int(months or 0) * 30 + int(days or 0),
            hours=int(hours or 0), minutes=int(minutes or 0), seconds=int(whole or 0),
            microseconds=_micro(frac),
        )
    except OverflowError:  # past timedelta.max (about 2.7 million years): a value error like any other
        raise ValueError(f"{text.strip()[:64]!r} is longer than the longest interval (999999999 days)") from None


def format_duration(value: _dt.timedelta) -> str:
    """An xs:duration with zero parts left out (``PT1M40S``, ``P2D``, ``PT0S``), as OMI writes it."""
    total = value.days * 86400 + value.seconds
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    out = ["P"]
    if days:
        out.append(f"{days}D")
    time = []
    if hours:
        time.append(f"{hours}H")
    if minutes:
        time.append(f"{minutes}M")
    if seconds or value.microseconds or not (days or hours or minutes):
        frac = f".{value.microseconds:06d}" if value.microseconds else ""
        time.append(f"{seconds}{frac}S")
    if time:
        out.append("T")
        out.extend(time)
    return "".join(out)


def parse_wire_datetime(text: str) -> _dt.datetime | _dt.timedelta:
    """A CIM datetime as WS-Man carries it: xs:dateTime, xs:duration, xs:date, xs:time, or the
    25-character CIM form. A timestamp without a zone is taken as UTC. Raises ValueError for anything else,
    out-of-range fields and years past 9999 included."""
    try:
        return _parse_wire_datetime(text)
    except OverflowError:  # a year past what the C library takes: out of range like any other
        raise ValueError(f"{text.strip()[:64]!r} is out of range") from None


def _parse_wire_datetime(text: str) -> _dt.datetime | _dt.timedelta:
    s = text.strip()
    m = _XS_DATETIME.match(s)
    if m:
        y, mo, d, h, mi, sec, frac, tz = m.groups()
        return _dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), _micro(frac), tzinfo=_tz(tz))
    if s.startswith(("P", "-P")):
        return parse_duration(s)
    m = _XS_DATE.match(s)
    if m:
        y, mo, d, tz = m.groups()
        return _dt.datetime(int(y), int(mo), int(d), tzinfo=_tz(tz))
    m = _XS_TIME.match(s)
    if m:
        h, mi, sec, frac, tz = m.groups()
        return _dt.datetime(1, 1, 1, int(h), int(mi), int(sec), _micro(frac), tzinfo=_tz(tz))
    return parse_datetime(s)


def format_wire_datetime(value: _dt.datetime | _dt.timedelta) -> str:
    """xs:duration for an interval; ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)`` for a timestamp."""
    if isinstance(value, _dt.timedelta):
        return format_duration(value)
    base = f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        base += f".{value.microsecond:06d}"
    off = value.utcoffset()
    if not off:
        return base + "Z"
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return f"{base}{sign}{hh:02d}:{mm:02d}"


_STRING_CODE: Final = int(MIType.STRING)
_KEY_BIT: Final = int(MIFlag.KEY)
_INT_CODES: Final = {int(t): r for t, r in INTEGER_RANGES.items()}


def parse_wire_scalar(text: str, mitype: MIType, name: str | None = None) -> Any:
    """Text of one scalar value → its Python form for ``mitype`` (booleans in any case, reals in
    xs:double spelling, char16 also as OMI's numeric code point). Raises :class:`WireError`."""
    code = int(mitype) & 0x0F
    if code == _STRING_CODE:
        return text
    rng = _INT_CODES.get(code)
    if rng is not None:  # the common case of a typed answer: a plain decimal integer (no enum arithmetic)
        digits = text.strip()
        if digits.isascii() and (digits.isdigit() or (digits[:1] == "-" and digits[1:].isdigit())):
            v = int(digits)
            if rng[0] <= v <= rng[1]:
                return v
    t = MIType(code)
    try:
        if t == MIType.STRING:
            return text
        if t == MIType.DATETIME:
            return parse_wire_datetime(text)
        if t in (MIType.REAL32, MIType.REAL64):
            return coerce_scalar(float(text.strip()), t, name)
        if t == MIType.CHAR16:
            s = text if len(text) == 1 else text.strip()
            if len(s) > 1 and s.isdigit():
                return coerce_scalar(int(s), t, name)
            return coerce_scalar(s, t, name)
        return parse_scalar(text, t, name)
    except (ValueError, TypeError) as exc:
        label = f"property {name!r}" if name else "value"
        raise WireError(f"{label}: {text!r} is not a valid {t.cim_name} ({exc})") from None


def format_wire_scalar(value: Any, mitype: int) -> str:
    """The WS-Man text of one scalar value (the inverse of :func:`parse_wire_scalar`)."""
    t = mitype & 0x0F
    if t == MIType.STRING:
        return str(value)
    if t == MIType.BOOLEAN:
        return "true" if value else "false"
    if t == MIType.DATETIME:
        return format_wire_datetime(value)
    if t == MIType.REAL32 or t == MIType.REAL64:
        f = float(value)
        if math.isfinite(f):
            return repr(f)
        return "NaN" if math.isnan(f) else ("INF" if f > 0 else "-INF")
    return str(value)


# xsi:type hints (Windows MI and OMI put them on CIM_Error properties); prefixes are not resolved.
_HINTS: Final[dict[str, MIType]] = {}
for _names, _t in (
    (("cimBoolean", "boolean"), MIType.BOOLEAN),
    (("cimByte", "byte"), MIType.SINT8),
    (("cimUnsignedByte", "unsignedByte"), MIType.UINT8),
    (("cimShort", "short"), MIType.SINT16),
    (("cimUnsignedShort", "unsignedShort"), MIType.UINT16),
    (("cimInt", "int"), MIType.SINT32),
    (("cimUnsignedInt", "unsignedInt"), MIType.UINT32),
    (("cimLong", "long"), MIType.SINT64),
    (("cimUnsignedLong", "unsignedLong"), MIType.UINT64),
    (("cimFloat", "float"), MIType.REAL32),
    (("cimDouble", "double"), MIType.REAL64),
    (("cimChar16",), MIType.CHAR16),
    (("cimDateTime", "dateTime", "duration"), MIType.DATETIME),
    (("cimString", "string"), MIType.STRING),
):
    for _n in _names:
        _HINTS[_n.lower()] = _t


def _hint(el: _Elem) -> MIType | None:
    t = el.get(ns.XSI_TYPE)
    if not t:
        return None
    return _HINTS.get(t.rpartition(":")[2].lower())


# --- reading ----------------------------------------------------------------------------------------

_DATETIME_WRAPPERS: Final = frozenset(
    {ns.q(ns.CIM, n) for n in ("Datetime", "Interval", "Date", "Time", "CIM_DateTime")} | {"CIM_DateTime"}
    # WinRM's wsman:XmlFragment projections wrap datetimes in unqualified Datetime/Interval elements
    | {"Datetime", "Interval"}
)
_EPR_PARTS: Final = frozenset({ns.A_ADDRESS, ns.A_REFERENCE_PARAMETERS, ns.A_REFERENCE_PROPERTIES})
_TRUE: Final = frozenset({"true", "1", "TRUE", "True"})
_CIM_PREFIX: Final = "{" + ns.CIM + "}"
_CIM_LOCATION: Final = ns.q(ns.CIM, "Location")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(el: _Elem) -> list[_Elem]:
    return [c for c in el if isinstance(c.tag, str)]


def is_nil(el: _Elem) -> bool:
    return el.get(ns.XSI_NIL) in _TRUE


def read_selector_set(el: _Elem | None, depth: int = 0) -> Selectors:
    """``w:SelectorSet`` → ``{name: text}`` (the text exactly as sent); a selector wrapping an EPR gives a
    key-only Instance."""
    out: Selectors = {}
    if el is None:
        return out
    if depth > MAX_NESTING:
        raise WireError("references nest too deeply", "depth")
    for s in el:
        if s.tag != ns.W_SELECTOR:
            continue
        name = s.get("Name")
        if not name:
            raise WireError("a selector has no Name", "selectors", "InvalidValue")
        if name in out:
            raise WireError(f"selector {name!r} appears twice", "selectors", "DuplicateSelectors")
        if len(s):
            epr = s.find(ns.A_EPR)
            if epr is None:
                raise WireError(f"selector {name!r} holds elements but no EndpointReference", "selectors",
                                "InvalidValue")
            out[name] = epr_to_instance(epr, depth=depth + 1)
        elif name == CIMNAMESPACE_SELECTOR:
            out[name] = (s.text or "").strip()  # a namespace, not a key: spacing around it means nothing
        else:
            # DSP0226: a selector's value is the key property's value, so it is kept exactly as sent (an
            # instance body keeps ' x ' too, and both must name the same instance); numbers and the like
            # ignore the spacing when they are parsed for their type.
            out[name] = s.text or ""
    return out


def epr_to_instance(el: _Elem, default_namespace: str | None = None, depth: int = 0) -> Reference:
    """An EPR (``a:Address`` + ``a:ReferenceParameters``, wrapped or bare) → a :class:`Reference`."""
    if depth > MAX_NESTING:
        raise WireError("references nest too deeply", "depth")
    rp = el.find(ns.A_REFERENCE_PARAMETERS)
    if rp is None:
        rp = el.find(ns.A_REFERENCE_PROPERTIES)
    if rp is None:
        inner = el.find(ns.A_EPR)
        if inner is not None:
            return epr_to_instance(inner, default_namespace, depth + 1)
        raise WireError("an endpoint reference has no ReferenceParameters", "schema")
    uri = rp.findtext(ns.W_RESOURCE_URI)
    if not uri:
        raise WireError("an endpoint reference has no ResourceURI", "schema")
    selectors = read_selector_set(rp.find(ns.W_SELECTOR_SET), depth + 1)
    cimns = selectors.pop(CIMNAMESPACE_SELECTOR, None)
    ref = parse_resource_uri(uri)
    namespace = resolve_namespace(ref, cimns if isinstance(cimns, str) else None, default_namespace)
    elements: dict[str, Element] = {}
    for name, value in selectors.items():
        t = MIType.REFERENCE if isinstance(value, Instance) else MIType.STRING
        elements[name.lower()] = Element(name, value, t, MIFlag.KEY)
    return new_reference(ref.class_name or "", namespace, elements)


def _class_of(el: _Elem, fallback: str) -> str:
    t = el.get(ns.XSI_TYPE)
    if t:
        local = t.rpartition(":")[2]
        if local.endswith("_Type") and len(local) > 5:
            return local[:-5]
    for c in el:
        if isinstance(c.tag, str) and c.tag[0] == "{":
            cls = parse_resource_uri(c.tag[1:].partition("}")[0]).class_name
            if cls and cls != "*":
                return cls
            break
    return fallback


def _root_class(el: _Elem) -> str:
    t = el.get(ns.XSI_TYPE)
    if t:
        local = t.rpartition(":")[2]
        if local.endswith("_Type") and len(local) > 5:
            return local[:-5]
    return _local(el.tag)


def element_to_instance(
    el: _Elem,
    cls: Class | None = None,
    *,
    namespace: str | None = None,
    class_lookup: ClassLookup | None = None,
    class_name: str | None = None,
    keys: frozenset[str] = frozenset(),
    depth: int = 0,
) -> Instance:
    """An instance element (``<p:Class>…</p:Class>``) → Instance, typed by ``cls`` when given.

    Properties the class does not declare are kept with wire-inferred types, so the caller can
    reject them; those named in ``keys`` (lower case) are marked KEY. ``cim:``-namespaced children
    (WinRM's ``cim:Location``) are not properties.
    """
    if depth > MAX_NESTING:
        raise WireError(f"instances nest deeper than {MAX_NESTING} levels", "depth")
    name = class_name or (cls.name if cls is not None else _root_class(el))
    groups: dict[str, list[_Elem]] = {}
    for child in el:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag.startswith(_CIM_PREFIX):
            if tag == _CIM_LOCATION and not keys:  # WinRM's own EPR of the instance names its keys
                keys = frozenset(k.lower() for k in read_selector_set(
                    child.find(f"{ns.A_REFERENCE_PARAMETERS}/{ns.W_SELECTOR_SET}"), depth + 1))
            continue
        groups.setdefault(_local(tag), []).append(child)
    elements: dict[str, Element] = {}
    props = cls.properties if cls is not None else None
    for pname, items in groups.items():
        prop = props.get(pname) if props is not None else None
        if prop is not None:
            value = _read_typed(items, prop.type, prop.name, prop.embedded_class, namespace, class_lookup, depth)
            key = _KEY_BIT if pname.lower() in keys else int(prop.flags) & _KEY_BIT  # ints: a hot path
            elements[prop.name.lower()] = Element(prop.name, value, prop.type, key)
        else:
            value, t = _read_untyped(items, pname, namespace, class_lookup, depth)
            low = pname.lower()
            elements[low] = Element(pname, value, t, MIFlag.KEY if low in keys else 0)
    return Instance.from_elements(name, elements, namespace=namespace)


def _read_typed(
    items: list[_Elem], t: MIType, name: str, embedded: str | None,
    namespace: str | None, lookup: ClassLookup | None, depth: int,
) -> Any:
    if t & 0x10:
        if len(items) == 1 and is_nil(items[0]):
            return None
        scalar = MIType(t & 0x0F)
        return [_read_one(i, scalar, name, embedded, namespace, lookup, depth) for i in items if not is_nil(i)]
    if len(items) > 1:
        raise WireError(f"property {name!r} is a scalar but appears {len(items)} times")
    item = items[0]
    if is_nil(item):
        return None
    return _read_one(item, t, name, embedded, namespace, lookup, depth)


def _read_one(
    el: _Elem, t: MIType, name: str, embedded: str | None,
    namespace: str | None, lookup: ClassLookup | None, depth: int,
) -> Any:
    if t == MIType.REFERENCE:
        if len(el) == 0:
            raise WireError(f"property {name!r} is a reference but holds no endpoint reference")
        ref = epr_to_instance(el, namespace, depth + 1)
        return _typed_reference(ref, namespace, lookup, depth + 1) if lookup is not None else ref
    if t == MIType.INSTANCE:
        cname = _class_of(el, embedded or name)
        ecls = lookup(namespace, cname) if lookup is not None else None
        return element_to_instance(el, ecls, namespace=namespace, class_lookup=lookup, class_name=cname,
                                   depth=depth + 1)
    if t == MIType.DATETIME:
        for c in el:
            if isinstance(c.tag, str) and c.tag in _DATETIME_WRAPPERS:
                return parse_wire_scalar(c.text or "", t, name)
    return parse_wire_scalar(el.text or "", t, name)


def _read_untyped(
    items: list[_Elem], name: str, namespace: str | None, lookup: ClassLookup | None, depth: int,
) -> tuple[Any, MIType]:
    if len(items) == 1:
        return _untyped_one(items[0], name, namespace, lookup, depth)
    present = [i for i in items if not is_nil(i)]
    read = [_untyped_one(i, name, namespace, lookup, depth) for i in present]
    kinds = {t for _, t in read}
    if len(kinds) == 1:
        return [v for v, _ in read], MIType(kinds.pop() | 0x10)
    # no items, or mixed kinds in one array: keep them all as text
    return [text_of(i) for i in present], MIType.STRINGA


def text_of(el: _Elem) -> str:
    """All the text inside an element (not its tail)."""
    return "".join(t for t in el.itertext() if isinstance(t, str))


def _untyped_one(
    el: _Elem, name: str, namespace: str | None, lookup: ClassLookup | None, depth: int,
) -> tuple[Any, MIType]:
    hint = _hint(el)
    if is_nil(el):
        return None, hint if hint is not None else MIType.STRING
    kids = _children(el)
    if kids:
        first = kids[0].tag
        if first in _DATETIME_WRAPPERS:
            try:
                return parse_wire_datetime(kids[0].text or ""), MIType.DATETIME
            except ValueError:
                return kids[0].text or "", MIType.STRING
        if first in _EPR_PARTS:
            return epr_to_instance(el, namespace, depth + 1), MIType.REFERENCE
        if first == ns.A_EPR:
            return epr_to_instance(kids[0], namespace, depth + 1), MIType.REFERENCE
        cname = _class_of(el, name)
        ecls = lookup(namespace, cname) if lookup is not None else None
        inst = element_to_instance(el, ecls, namespace=namespace, class_lookup=lookup, class_name=cname,
                                   depth=depth + 1)
        return inst, MIType.INSTANCE
    text = el.text or ""
    if hint is None and not text.strip():
        cname = _class_of(el, "")
        if cname:  # xsi:type names a class and nothing is inside: an embedded instance with no properties
            ecls = lookup(namespace, cname) if lookup is not None else None
            return element_to_instance(el, ecls, namespace=namespace, class_lookup=lookup, class_name=cname,
                                       depth=depth + 1), MIType.INSTANCE
    if hint is not None and hint != MIType.STRING:
        try:
            return parse_wire_scalar(text, hint, name), hint
        except WireError:
            return text, MIType.STRING
    return text, MIType.STRING


def apply_class(inst: Instance, cls: Class, class_lookup: ClassLookup | None = None) -> Instance:
    """Retype an instance read without its class: text → the declared types, key flags from the class.

    Elements the class does not declare are kept unchanged.
    """
    elements: dict[str, Element] = {}
    for el in inst.elements:
        prop = cls.properties.get(el.name)
        if prop is None:
            elements[el.name.lower()] = el
            continue
        value = _retype(el.value, el.type, prop, inst.namespace, class_lookup)
        elements[prop.name.lower()] = Element(prop.name, value, prop.type, prop.flags & MIFlag.KEY)
    if isinstance(inst, Reference):  # a reference stays one (its elements are the keys)
        for el in elements.values():
            el._flags |= int(MIFlag.KEY)
        out = new_reference(inst.class_name, inst.namespace, elements)
        out.server_name = inst.server_name
        return out
    return Instance.from_elements(inst.class_name, elements, namespace=inst.namespace)


def _retype(value: Any, have: MIType, prop: Property, namespace: str | None, lookup: ClassLookup | None) -> Any:
    want = prop.type
    if value is None:
        return None
    if want & 0x10:
        items = value if isinstance(value, list) else [value]
        return [_retype_one(v, MIType(want & 0x0F), prop, namespace, lookup) for v in items]
    if isinstance(value, list):
        if len(value) != 1:
            raise WireError(f"property {prop.name!r} is a scalar but holds {len(value)} values")
        value = value[0]
    return _retype_one(value, want, prop, namespace, lookup)


def _retype_one(value: Any, t: MIType, prop: Property, namespace: str | None, lookup: ClassLookup | None) -> Any:
    if isinstance(value, str):
        if t in (MIType.REFERENCE, MIType.INSTANCE):
            raise WireError(f"property {prop.name!r} needs an instance, not text")
        return parse_wire_scalar(value, t, prop.name)
    if isinstance(value, Instance):
        if t == MIType.INSTANCE and lookup is not None:
            ecls = lookup(namespace, value.class_name)
            if ecls is not None:
                return apply_class(value, ecls, lookup)
        if t == MIType.REFERENCE and lookup is not None:
            return _typed_reference(value, namespace, lookup)
        if t in (MIType.REFERENCE, MIType.INSTANCE):
            return value
        raise WireError(f"property {prop.name!r} is {t.cim_name}, not an instance")
    try:
        return coerce_scalar(value, t, prop.name)
    except (TypeError, ValueError) as exc:
        raise WireError(str(exc)) from None


def _typed_reference(ref: Instance, namespace: str | None, lookup: ClassLookup, depth: int = 0) -> Instance:
    """A reference read from an EPR (selector values are text), its keys typed by the class it names when
    that class is known; a value the type cannot read stays text."""
    rcls = lookup(ref.namespace or namespace, ref.class_name) if depth <= MAX_NESTING else None
    if rcls is None:
        return ref
    elements: dict[str, Element] = {}
    for el in ref.elements:
        prop = rcls.properties.get(el.name)
        value, t = el.value, el.type
        if prop is not None:
            pt = prop.type
            if isinstance(value, str) and not pt.is_array and pt.scalar not in (
                    MIType.STRING, MIType.REFERENCE, MIType.INSTANCE):
                try:
                    value, t = parse_wire_scalar(value, pt, prop.name), pt
                except (WireError, ValueError, TypeError):
                    pass
            elif isinstance(value, Instance) and pt == MIType.REFERENCE:
                value = _typed_reference(value, ref.namespace or namespace, lookup, depth + 1)
        elements[el.name.lower()] = Element(prop.name if prop is not None else el.name, value, t, MIFlag.KEY)
    out = new_reference(ref.class_name, ref.namespace, elements)
    out.server_name = ref.server_name
    return out


def parameters_class(method: Method, output: bool = False) -> Class:
    """A class whose properties are a method's in-parameters (or out-parameters + ReturnValue)."""
    props = [
        Property(p.name, p.type, embedded_class=p.embedded_class, reference_class=p.reference_class)
        for p in method.parameters.values() if (p.out if output else p.in_)
    ]
    if output and "ReturnValue" not in method.parameters:
        props.append(Property("ReturnValue", method.return_type))
    return Class("__parameters", properties=props)


# --- writing ----------------------------------------------------------------------------------------

_SubElement = etree.SubElement
_CIM_DATETIME: Final = ns.q(ns.CIM, "Datetime")
_CIM_INTERVAL: Final = ns.q(ns.CIM, "Interval")
_NIL: Final = {ns.XSI_NIL: "true"}
_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _set_text(el: _Elem, text: str) -> None:
    try:
        el.text = text
    except ValueError:  # control characters XML 1.0 cannot carry, even as references
        el.text = _BAD_XML_CHARS.sub("\ufffd", text)


def key_elements(inst: Instance) -> list[Element]:
    """The elements that name an instance: its keys, or every non-null element if none is marked."""
    keys = inst.key_elements
    if keys:
        return keys
    return [el for el in inst.elements if el.value is not None and not isinstance(el.value, list)]


def instance_selectors(inst: Instance) -> Selectors:
    """An instance's keys as selectors (text, or a key-only Instance for a reference key)."""
    out: Selectors = {}
    for el in key_elements(inst):
        if el.value is None:
            continue
        out[el.name] = el.value if isinstance(el.value, Instance) else format_wire_scalar(el.value, el.type)
    return out


def append_selector_set(
    parent: _Elem, selectors: Mapping[str, str | Instance], style: UriStyle = UriStyle.DMTF,
    namespace: str | None = None,
) -> _Elem:
    """Append ``w:SelectorSet`` (with ``__cimnamespace`` first when given)."""
    ss = _SubElement(parent, ns.W_SELECTOR_SET)
    if namespace:
        _SubElement(ss, ns.W_SELECTOR, Name=CIMNAMESPACE_SELECTOR).text = namespace
    for name, value in selectors.items():
        s = _SubElement(ss, ns.W_SELECTOR, Name=name)
        if isinstance(value, Instance):
            append_epr(_SubElement(s, ns.A_EPR), value, style)
        else:
            _set_text(s, value)
    return ss


def append_epr(
    parent: _Elem, inst: Instance, style: UriStyle = UriStyle.DMTF, address: str = ns.ANONYMOUS,
) -> _Elem:
    """Append the parts of an EPR naming ``inst`` (``a:Address``, ``a:ReferenceParameters``)."""
    _SubElement(parent, ns.A_ADDRESS).text = address
    rp = _SubElement(parent, ns.A_REFERENCE_PARAMETERS)
    _SubElement(rp, ns.W_RESOURCE_URI).text = resource_uri(inst.namespace, inst.class_name, style)
    namespace = inst.namespace if needs_cimnamespace_selector(style) else None
    append_selector_set(rp, instance_selectors(inst), style, namespace)
    return parent


def instance_to_element(
    inst: Instance,
    *,
    style: UriStyle = UriStyle.DMTF,
    namespace: str | None = None,
    parent: _Elem | None = None,
    tag: str | None = None,
    uri: str | None = None,
    wrap_datetimes: bool = True,
) -> _Elem:
    """Write an instance as ``<p:Class xmlns:p="<class URI>">`` with one child per property.

    ``tag`` names the element (``Method_INPUT``) instead of the class and ``uri`` gives its XML
    namespace instead of the class resource URI; ``namespace`` overrides the instance's own CIM
    namespace for WMI-style URIs.
    """
    uri = uri or resource_uri(namespace or inst.namespace, inst.class_name, style)
    name = ns.q(uri, tag or inst.class_name)
    root = etree.Element(name, nsmap={"p": uri}) if parent is None else _SubElement(parent, name, nsmap={"p": uri})
    _write_properties(root, inst, uri, style, namespace or inst.namespace, wrap_datetimes, 0)
    return root


def _write_properties(
    root: _Elem, inst: Instance, uri: str, style: UriStyle, namespace: str | None, wrap: bool, depth: int,
) -> None:
    if depth > MAX_NESTING:
        raise WireError(f"instances nest deeper than {MAX_NESTING} levels", "depth")
    prefix = "{" + uri + "}"
    for el in inst.elements:
        tag = prefix + el.name
        value = el.value
        t = int(el.type)
        if value is None:
            _SubElement(root, tag, _NIL)
        elif isinstance(value, list):
            scalar = t & 0x0F
            for item in value:
                _write_value(root, tag, item, scalar, style, namespace, wrap, depth)
        else:
            _write_value(root, tag, value, t & 0x0F, style, namespace, wrap, depth)


def append_value(
    parent: _Elem, tag: str, value: Any, mitype: int, style: UriStyle = UriStyle.DMTF,
    namespace: str | None = None, wrap_datetimes: bool = True,
) -> None:
    """Append the element(s) ``tag`` for one property value: nil, one per array item, or one."""
    if value is None:
        _SubElement(parent, tag, _NIL)
        return
    for item in value if isinstance(value, list) else (value,):
        _write_value(parent, tag, item, mitype & 0x0F, style, namespace, wrap_datetimes, 0)


def _write_value(
    parent: _Elem, tag: str, value: Any, t: int, style: UriStyle, namespace: str | None, wrap: bool, depth: int,
) -> None:
    if t == MIType.STRING:
        _set_text(_SubElement(parent, tag), value)
    elif t == MIType.REFERENCE:
        ref = value if value.namespace or not namespace else _with_namespace(value, namespace)
        append_epr(_SubElement(parent, tag), ref, style)
    elif t == MIType.INSTANCE:
        prefix = f"p{depth + 1}"
        euri = resource_uri(value.namespace or namespace, value.class_name, style)
        sub = _SubElement(parent, tag, {ns.XSI_TYPE: f"{prefix}:{value.class_name}_Type"}, nsmap={prefix: euri})
        _write_properties(sub, value, euri, style, value.namespace or namespace, wrap, depth + 1)
    elif t == MIType.DATETIME and wrap:
        sub = _SubElement(parent, tag)
        w = _CIM_INTERVAL if isinstance(value, _dt.timedelta) else _CIM_DATETIME
        _SubElement(sub, w).text = format_wire_datetime(value)
    else:
        _SubElement(parent, tag).text = format_wire_scalar(value, t)


def _with_namespace(inst: Instance, namespace: str) -> Instance:
    out = Instance.from_elements(inst.class_name, inst.elements, namespace=namespace)
    return out


def instance_wire_size(inst: Instance, style: UriStyle = UriStyle.DMTF, namespace: str | None = None) -> int:
    """Octets of the instance as written in a response body (UTF-8, escaped), without the envelope around it."""
    return len(etree.tostring(instance_to_element(inst, style=style, namespace=namespace)))


def fragment_to_element(inst: Instance, parent: _Elem, style: UriStyle, namespace: str | None) -> _Elem:
    """An instance as WinRM writes a projection: ``<wsman:XmlFragment>`` holding one unqualified element per
    property, in alphabetical order without case, datetimes in an unqualified ``<Datetime>``."""
    root = _SubElement(parent, ns.W_XML_FRAGMENT)
    for el in sorted(inst.elements, key=lambda e: e.name.casefold()):
        value = el.value
        t = int(el.type) & 0x0F
        if value is not None and t == MIType.DATETIME:
            for item in value if isinstance(value, list) else (value,):
                wrapper = "Interval" if isinstance(item, _dt.timedelta) else "Datetime"
                _SubElement(_SubElement(root, el.name), wrapper).text = format_wire_datetime(item)
            continue
        append_value(root, el.name, value, int(el.type), style, namespace or inst.namespace, wrap_datetimes=False)
    return root


def instances_to_elements(
    parent: _Elem, instances: Iterable[Instance], style: UriStyle, namespace: str | None, wrap: bool = True,
) -> None:
    """Append one element per instance to ``parent``."""
    for inst in instances:
        instance_to_element(inst, style=style, namespace=namespace, parent=parent, wrap_datetimes=wrap)

"""CIM classes ⇄ DSP0201 ``<CLASS>`` elements: the body of a GetClass answer and the items of
EnumerateClasses over WS-Man (the cim-xml resource URI), as Windows MI and OMI exchange them.

Sans I/O and independent of the envelope, so a CIM-XML endpoint can use it as it is. Writing follows
OMI (its MI_XML serializer, :func:`openmi.cim.mof.mixml.class_element`): qualifiers, inherited elements,
class origins and the inheritance chain only when the GetClass options ask for them. Reading is tolerant
of what real peers send: qualifier names in any case (OMI writes ``key``), flavors left out (the standard
declaration's flavor is taken then), embedded instances as an ``EmbeddedInstance``/``EmbeddedObject``
qualifier or attribute, char16 as the character or its code, and a class with or without its inherited
elements (``PROPAGATED``/``CLASSORIGIN`` mark them when present).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from lxml import etree

from openmi.cim.classes import Class, Method, Parameter, Property, Qualifier
from openmi.cim.instance import Element, Instance
from openmi.cim.mof import mixml
from openmi.cim.mof.standard import standard_qualifier
from openmi.cim.names import NamedItems
from openmi.cim.types import MIFlag, MIType
from openmi.cim.values import parse_scalar

from .values import WireError

if TYPE_CHECKING:
    _Elem = etree._Element
else:
    _Elem = Any

CLASS_TAG: Final = "CLASS"

#: GetClass options (wsman.md §3.10); Windows MI may prefix them with ``wmi:``.
OPTION_QUALIFIERS: Final = "IncludeQualifiers"
OPTION_INHERITED_ELEMENTS: Final = "IncludeInheritedElements"
OPTION_CLASS_ORIGIN: Final = "IncludeClassOrigin"
OPTION_INHERITANCE_HIERARCHY: Final = "IncludeInheritanceHierarchy"
OPTION_PRECISE_ARRAYS: Final = "msftwinrm:UsePreciseArrays"


_OPTION_NAMES: Final = frozenset(n.lower() for n in (OPTION_QUALIFIERS, OPTION_INHERITED_ELEMENTS, OPTION_CLASS_ORIGIN,
                                                      OPTION_INHERITANCE_HIERARCHY, OPTION_PRECISE_ARRAYS))


def _truth(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


@dataclass(frozen=True, slots=True)
class ClassOptions:
    """What a class body carries. A server honours what the request's OptionSet asks for (each option
    absent means false, as OMI reads them); a client asks for everything, so that one round trip gives a
    class it can type instances with."""

    qualifiers: bool = False
    inherited_elements: bool = False
    class_origin: bool = False
    inheritance_hierarchy: bool = False

    @classmethod
    def full(cls) -> ClassOptions:
        return cls(True, True, True, True)

    @classmethod
    def from_option_set(cls, options: Mapping[str, Any]) -> ClassOptions:
        found: dict[str, bool] = {}
        for name, value in options.items():
            low = name.lower()
            if low.startswith("wmi:"):
                low = low[4:]
            found[low] = _truth(value)
        return cls(found.get(OPTION_QUALIFIERS.lower(), False), found.get(OPTION_INHERITED_ELEMENTS.lower(), False),
                   found.get(OPTION_CLASS_ORIGIN.lower(), False),
                   found.get(OPTION_INHERITANCE_HIERARCHY.lower(), False))

    def option_set(self) -> dict[str, Any]:
        """The OptionSet that asks for this (only the true ones, as Windows MI sends them)."""
        out: dict[str, Any] = {}
        for on, name in ((self.inheritance_hierarchy, OPTION_INHERITANCE_HIERARCHY),
                         (self.inherited_elements, OPTION_INHERITED_ELEMENTS),
                         (self.qualifiers, OPTION_QUALIFIERS), (self.class_origin, OPTION_CLASS_ORIGIN)):
            if on:
                out[name] = True
        return out

    @staticmethod
    def is_class_option(name: str) -> bool:
        """Whether an OptionSet entry is one of these (so not a custom option for a provider)."""
        low = name.lower()
        return (low[4:] if low.startswith("wmi:") else low) in _OPTION_NAMES

    @property
    def flags(self) -> int:
        """The MI_Serializer flags these options mean."""
        return ((mixml.INCLUDE_QUALIFIERS if self.qualifiers else 0)
                | (mixml.INCLUDE_INHERITED_ELEMENTS if self.inherited_elements else 0)
                | (mixml.INCLUDE_CLASS_ORIGIN if self.class_origin else 0)
                | (mixml.INCLUDE_INHERITANCE_HIERARCHY if self.inheritance_hierarchy else 0))


# --- writing -------------------------------------------------------------------------------------------

def class_to_element(cls: Class, options: ClassOptions = ClassOptions(), *, derivation: Sequence[str] = (),
                     parent: _Elem | None = None) -> _Elem:
    """``cls`` (resolved: inherited elements marked ``propagated``) as a ``<CLASS>`` element, appended to
    ``parent`` when one is given. ``derivation`` is the superclass chain, nearest first.

    Raises :class:`WireError` for what CIM-XML cannot carry (a reference array property).
    """
    try:
        el = mixml.class_element(cls, options.flags, derivation)
    except ValueError as exc:
        raise WireError(str(exc), "value") from None
    if parent is not None:
        parent.append(el)
    return el


# --- reading -------------------------------------------------------------------------------------------

_PROPERTY_TAGS: Final = frozenset({"PROPERTY", "PROPERTY.ARRAY", "PROPERTY.REFERENCE", "PROPERTY.REFARRAY"})
_PARAMETER_TAGS: Final = frozenset({"PARAMETER", "PARAMETER.ARRAY", "PARAMETER.REFERENCE", "PARAMETER.REFARRAY"})
_DEFAULT_FLAVOR: Final = MIFlag.ENABLEOVERRIDE | MIFlag.TOSUBCLASS


def _local(el: _Elem) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(el: _Elem) -> Iterable[_Elem]:
    return (c for c in el if isinstance(c.tag, str))


def _attr(el: _Elem, name: str) -> str | None:
    v = el.get(name)
    if v is None:  # attribute names are case-sensitive in XML; peers differ (EmbeddedObject/EMBEDDEDOBJECT)
        low = name.lower()
        for k, val in el.attrib.items():
            if isinstance(k, str) and k.rsplit("}", 1)[-1].lower() == low:
                return str(val)
    return None if v is None else str(v)


def _required(el: _Elem, name: str, where: str) -> str:
    v = _attr(el, name)
    if not v:
        raise WireError(f"{where}: <{_local(el)}> has no {name}", "schema")
    return v


def _type(text: str | None, where: str, array: bool = False) -> MIType:
    if not text:
        raise WireError(f"{where} has no TYPE", "schema")
    try:
        return MIType.from_cim_name(text, array)
    except ValueError:
        raise WireError(f"{where}: unknown CIM type {text!r}", "schema") from None


def _scalar(text: str | None, t: MIType, where: str) -> Any:
    s = MIType(int(t) & 0x0F)
    text = text or ""
    if s == MIType.CHAR16 and len(text) != 1 and text.strip().isdigit():
        return chr(int(text.strip()))  # MI_XML writes a char16 as its code
    if s in (MIType.INSTANCE, MIType.REFERENCE):
        return None  # embedded defaults and reference defaults carry no meaning a client needs
    try:
        return parse_scalar(text, s, where)
    except (TypeError, ValueError) as exc:
        raise WireError(f"{where}: {exc}", "value") from None


def _value(el: _Elem, t: MIType, where: str) -> Any:
    """The value of a QUALIFIER or PROPERTY element (None when it has none)."""
    for child in _children(el):
        tag = _local(child)
        if tag == "VALUE":
            return _scalar(child.text, t, where)
        if tag == "VALUE.ARRAY":
            return [_scalar(v.text, t, where) for v in _children(child) if _local(v) == "VALUE"]
        if tag == "VALUE.REFERENCE":
            return _reference(child, where)
        if tag == "VALUE.REFARRAY":
            return [_reference(v, where) for v in _children(child) if _local(v) == "VALUE.REFERENCE"]
    return None


def _reference(vr: _Elem, where: str) -> Instance | None:
    """A default reference value: the INSTANCENAME inside, keys as text."""
    for name in vr.iter("{*}INSTANCENAME", "INSTANCENAME"):
        elements: dict[str, Element] = {}
        for kb in _children(name):
            if _local(kb) == "KEYBINDING":
                key = _attr(kb, "NAME") or ""
                kv = next((c for c in _children(kb) if _local(c) == "KEYVALUE"), None)
                elements[key.lower()] = Element(key, kv.text if kv is not None else None, MIType.STRING,
                                                int(MIFlag.KEY))
        return Instance.from_elements(_required(name, "CLASSNAME", where), elements)
    return None


def _qualifiers(el: _Elem, where: str) -> NamedItems[Qualifier]:
    out: NamedItems[Qualifier] = NamedItems()
    for q in _children(el):
        if _local(q) != "QUALIFIER":
            continue
        name = _required(q, "NAME", where)
        qwhere = f"{where}, qualifier {name}"
        array = any(_local(c) == "VALUE.ARRAY" for c in _children(q))
        t = _type(_attr(q, "TYPE"), qwhere, array)
        value = _value(q, t, qwhere)
        std = standard_qualifier(name)
        flavor = int(std.flavor) if std is not None else int(_DEFAULT_FLAVOR)
        spelled = std.name if std is not None and name.lower() == std.name.lower() else name
        overridable, tosubclass, translatable = (_attr(q, a) for a in ("OVERRIDABLE", "TOSUBCLASS", "TRANSLATABLE"))
        if overridable is not None:
            flavor &= ~int(MIFlag.ENABLEOVERRIDE | MIFlag.DISABLEOVERRIDE)
            flavor |= int(MIFlag.DISABLEOVERRIDE if overridable.lower() == "false" else MIFlag.ENABLEOVERRIDE)
        if tosubclass is not None:
            flavor &= ~int(MIFlag.TOSUBCLASS | MIFlag.RESTRICTED)
            flavor |= int(MIFlag.RESTRICTED if tosubclass.lower() == "false" else MIFlag.TOSUBCLASS)
        if translatable is not None:
            flavor = (flavor | int(MIFlag.TRANSLATABLE)) if translatable.lower() == "true" \
                else flavor & ~int(MIFlag.TRANSLATABLE)
        qual = Qualifier(spelled, value, t, MIFlag(flavor))
        qual.propagated = _truth(_attr(q, "PROPAGATED") or "false")
        out.add(qual)
    return out


def _embedded(el: _Elem, quals: NamedItems[Qualifier]) -> tuple[bool, str | None]:
    """(is an embedded instance or object, the embedded class when one is named)."""
    q = quals.get("EmbeddedInstance")
    if q is not None and q.value:
        return True, str(q.value)
    q = quals.get("EmbeddedObject")
    if q is not None and q.value:
        return True, None
    attr = _attr(el, "EmbeddedObject")
    if attr is not None and attr.lower() in ("instance", "object"):
        return True, _attr(el, "EmbeddedClassName")
    return False, None


def _typed(el: _Elem, tag: str, quals: NamedItems[Qualifier], where: str) -> tuple[MIType, str | None, str | None]:
    """(type, reference class, embedded class) of a PROPERTY* or PARAMETER* element."""
    array = tag.endswith((".ARRAY", ".REFARRAY"))
    if tag.endswith((".REFERENCE", ".REFARRAY")):
        return (MIType.REFERENCEA if array else MIType.REFERENCE), _attr(el, "REFERENCECLASS"), None
    t = _type(_attr(el, "TYPE") or _attr(el, "PARAMTYPE"), where, array)
    embedded, embedded_class = _embedded(el, quals)
    if embedded and t.scalar in (MIType.STRING, MIType.INSTANCE):
        t = MIType.INSTANCEA if array else MIType.INSTANCE
        return t, None, embedded_class
    return t, None, None


def _array_size(el: _Elem) -> int | None:
    v = _attr(el, "ARRAYSIZE")
    return int(v) if v and v.isdigit() else None


def _property(el: _Elem, tag: str, cname: str) -> Property:
    name = _required(el, "NAME", f"class {cname}")
    where = f"property {cname}.{name}"
    quals = _qualifiers(el, where)
    t, ref_class, embedded_class = _typed(el, tag, quals, where)
    value = _value(el, t, where) if t.scalar not in (MIType.INSTANCE, MIType.REFERENCE) else None
    if value is not None and t.is_array and not isinstance(value, list):
        raise WireError(f"{where}: an array property has a single value", "value")
    p = Property(name, t, value=value, qualifiers=quals, reference_class=ref_class, embedded_class=embedded_class,
                 class_origin=_attr(el, "CLASSORIGIN"), propagated=_truth(_attr(el, "PROPAGATED") or "false"),
                 array_size=_array_size(el))
    return p


def _parameter(el: _Elem, tag: str, where: str) -> Parameter:
    name = _required(el, "NAME", where)
    pwhere = f"parameter {name} of {where}"
    quals = _qualifiers(el, pwhere)
    t, ref_class, embedded_class = _typed(el, tag, quals, pwhere)
    return Parameter(name, t, qualifiers=quals, reference_class=ref_class, embedded_class=embedded_class,
                     array_size=_array_size(el))


def _method(el: _Elem, cname: str) -> Method:
    name = _required(el, "NAME", f"class {cname}")
    where = f"method {cname}.{name}"
    quals = _qualifiers(el, where)
    type_text = _attr(el, "TYPE")
    rtype = _type(type_text, where) if type_text else MIType.UINT32
    embedded, _ = _embedded(el, quals)
    if embedded and rtype == MIType.STRING:
        rtype = MIType.INSTANCE
    params: list[Parameter] = []
    seen: set[str] = set()
    for c in _children(el):
        tag = _local(c)
        if tag in _PARAMETER_TAGS:
            prm = _parameter(c, tag, where)
            if prm.name.lower() in seen:
                raise WireError(f"{where}: parameter {prm.name} appears twice", "schema")
            seen.add(prm.name.lower())
            params.append(prm)
    return Method(name, rtype, params, qualifiers=quals, class_origin=_attr(el, "CLASSORIGIN"),
                  propagated=_truth(_attr(el, "PROPAGATED") or "false"))


def class_from_element(el: _Elem, namespace: str | None = None) -> Class:
    """A ``<CLASS>`` element as a :class:`Class` (its elements marked as the element marks them).

    Raises :class:`WireError` (kind ``"schema"`` or ``"value"``) naming what is malformed.
    """
    if _local(el) != CLASS_TAG:
        raise WireError(f"expected a <CLASS> element, found <{_local(el)}>", "schema")
    name = _required(el, "NAME", "a class")
    props: list[Property] = []
    methods: list[Method] = []
    seen: set[str] = set()
    for c in _children(el):
        tag = _local(c)
        if tag in _PROPERTY_TAGS:
            item: Property | Method = _property(c, tag, name)
        elif tag == "METHOD":
            item = _method(c, name)
        else:
            continue
        low = item.name.lower()
        if low in seen:
            raise WireError(f"class {name}: {item.name} appears twice", "schema")
        seen.add(low)
        if isinstance(item, Property):
            props.append(item)
        else:
            methods.append(item)
    return Class(name, _attr(el, "SUPERCLASS") or None, props, qualifiers=_qualifiers(el, f"class {name}"),
                 methods=methods, namespace=namespace)


def derivation_of(el: _Elem) -> list[str]:
    """The superclass chain a ``<CLASS>`` element's DERIVATION attribute lists (nearest first)."""
    text = _attr(el, "DERIVATION") or ""
    return [p.strip() for p in text.split(",") if p.strip()]


def has_inherited_elements(cls: Class) -> bool:
    """Whether a class read from the wire lists what it inherits (a root class always does)."""
    if not cls.superclass:
        return True
    return any(p.propagated for p in cls.properties.values()) or any(m.propagated for m in cls.methods.values())


def class_from_xml(text: str | bytes, namespace: str | None = None) -> Class:
    """Parse ``<CLASS>…</CLASS>`` text (no DTD, no entities, no network)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(text.encode("utf-8") if isinstance(text, str) else text, parser)
    except etree.XMLSyntaxError as exc:
        raise WireError(f"malformed CLASS XML: {exc}", "schema") from None
    return class_from_element(root, namespace)


def class_to_xml(cls: Class, options: ClassOptions = ClassOptions(), *, derivation: Sequence[str] = ()) -> str:
    return etree.tostring(class_to_element(cls, options, derivation=derivation), encoding="unicode")

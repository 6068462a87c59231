"""MI_XML: the XML form MI_Serializer writes for classes and instances (CIM-XML elements, DSP0201 style).

A class becomes ``<CLASS>`` with ``QUALIFIER``, ``PROPERTY[.ARRAY|.REFERENCE]`` and ``METHOD``/``PARAMETER``
children; an instance becomes ``<INSTANCE>`` with its properties, references as ``VALUE.REFERENCE``
(``INSTANCENAME`` and key values) and embedded instances as escaped ``INSTANCE`` text inside ``VALUE``.
Flags follow MI_Serializer: CLASS_DEEP / INSTANCE_WITH_CLASS = 1, INCLUDE_CLASS_ORIGIN = 0x100,
INCLUDE_INHERITANCE_HIERARCHY = 0x200, INCLUDE_INHERITED_ELEMENTS = 0x400, INCLUDE_QUALIFIERS = 0x800.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any

from lxml import etree

from ..classes import Class, Method, Parameter, Property, Qualifier
from ..instance import Element, Instance
from ..types import MIFlag, MIType
from ..values import format_datetime, parse_scalar

CLASS_DEEP = 0x1
INSTANCE_WITH_CLASS = 0x1
INCLUDE_CLASS_ORIGIN = 0x100
INCLUDE_INHERITANCE_HIERARCHY = 0x200
INCLUDE_INHERITED_ELEMENTS = 0x400
INCLUDE_QUALIFIERS = 0x800

# Element flags that MI_XML writes as boolean qualifiers when the qualifier set does not hold them.
_FLAG_QUALIFIERS = (
    (MIFlag.KEY, "key"), (MIFlag.REQUIRED, "required"), (MIFlag.STATIC, "static"),
    (MIFlag.EXPENSIVE, "expensive"), (MIFlag.READONLY, "read"), (MIFlag.IN, "in"), (MIFlag.OUT, "out"),
    (MIFlag.ABSTRACT, "abstract"), (MIFlag.TERMINAL, "terminal"), (MIFlag.ASSOCIATION, "association"),
    (MIFlag.INDICATION, "indication"),
)


def to_mi_xml(obj: Class | Instance, flags: int = 0, *, derivation: Sequence[str] = (),
              classes: Iterable[Class] = ()) -> str:
    """Serialize a class or an instance as MI_XML text.

    ``derivation`` lists the superclass chain (nearest first) for INCLUDE_INHERITANCE_HIERARCHY.
    For an instance with INSTANCE_WITH_CLASS, ``classes`` are the class declarations to send before it
    (superclasses first); the instance's own class (``inst.cls``) is used when none are given.
    """
    if isinstance(obj, Class):
        el = class_element(obj, flags, derivation)
    elif isinstance(obj, Instance):
        el = instance_element(obj) if not flags & INSTANCE_WITH_CLASS else _instance_with_class(obj, flags, classes)
    else:
        raise TypeError(f"to_mi_xml takes a Class or an Instance, not {type(obj).__name__}")
    return etree.tostring(el, encoding="unicode")


# --- values ------------------------------------------------------------------------------------------

def _scalar_text(value: Any, t: int) -> str:
    s = t & 0x0F
    if s == MIType.BOOLEAN:
        return "true" if value else "false"
    if s == MIType.REAL32:
        return f"{float(value):.7e}"
    if s == MIType.REAL64:
        return f"{float(value):.16e}"
    if s == MIType.CHAR16:
        return str(ord(value)) if isinstance(value, str) else str(int(value))
    if s == MIType.DATETIME:
        return format_datetime(value) if isinstance(value, (_dt.datetime, _dt.timedelta)) else str(value)
    if s == MIType.INSTANCE:
        return etree.tostring(instance_element(value), encoding="unicode")
    return str(value)


def _value(parent: etree._Element, value: Any, t: int, namespace: str | None = None) -> None:
    s = t & 0x0F
    if s == MIType.REFERENCE:
        if t & 0x10:
            arr = etree.SubElement(parent, "VALUE.REFARRAY")
            for v in value:
                _reference(arr, v, namespace)
        else:
            _reference(parent, value, namespace)
        return
    if t & 0x10:
        arr = etree.SubElement(parent, "VALUE.ARRAY")
        for v in value:
            etree.SubElement(arr, "VALUE").text = _scalar_text(v, s)
        return
    etree.SubElement(parent, "VALUE").text = _scalar_text(value, s)


def _type_name(t: int) -> str:
    s = MIType(t & 0x0F)
    return "string" if s == MIType.INSTANCE else s.cim_name


def _namespace_path(parent: etree._Element, namespace: str) -> None:
    local = etree.SubElement(parent, "LOCALNAMESPACEPATH")
    for part in namespace.replace("\\", "/").split("/"):
        if part:
            etree.SubElement(local, "NAMESPACE", NAME=part)


def _key_value(parent: etree._Element, el: Element, namespace: str | None) -> None:
    t = MIType(el.type)
    if t == MIType.REFERENCE:
        _reference(parent, el.value, namespace)
        return
    kind = {MIType.BOOLEAN: "boolean", MIType.STRING: "string", MIType.CHAR16: "string",
            MIType.DATETIME: "string"}.get(t, "numeric")
    kv = etree.SubElement(parent, "KEYVALUE", VALUETYPE=kind, TYPE=_type_name(t))
    kv.text = _scalar_text(el.value, t) if t != MIType.CHAR16 else str(el.value)


def _instance_name(parent: etree._Element, ref: Instance, namespace: str | None) -> None:
    name = etree.SubElement(parent, "INSTANCENAME", CLASSNAME=ref.class_name)
    keys = ref.key_elements
    if len(keys) == 1:
        _key_value(name, keys[0], namespace)
        return
    for el in keys:
        kb = etree.SubElement(name, "KEYBINDING", NAME=el.name)
        _key_value(kb, el, namespace)


def _reference(parent: etree._Element, ref: Instance, namespace: str | None) -> None:
    vr = etree.SubElement(parent, "VALUE.REFERENCE")
    ns = ref.namespace if ref.namespace and (namespace is None or ref.namespace.lower() != namespace.lower()) \
        else None
    if ns and ref.server_name:
        path = etree.SubElement(vr, "INSTANCEPATH")
        nsp = etree.SubElement(path, "NAMESPACEPATH")
        etree.SubElement(nsp, "HOST").text = ref.server_name
        _namespace_path(nsp, ns)
        _instance_name(path, ref, ns)
    elif ns:
        path = etree.SubElement(vr, "LOCALINSTANCEPATH")
        _namespace_path(path, ns)
        _instance_name(path, ref, ns)
    else:
        _instance_name(vr, ref, namespace)


# --- qualifiers --------------------------------------------------------------------------------------

def _qualifiers(parent: etree._Element, quals: Iterable[Qualifier], flags: int, inherited: bool,
                embedded: tuple[bool, str | None] | None = None) -> None:
    names: set[str] = set()
    for q in quals:
        if inherited and q.flavor & MIFlag.RESTRICTED:
            continue
        names.add(q.name.lower())
        attrs = {"NAME": q.name, "TYPE": _type_name(q.type)}
        if q.flavor & MIFlag.DISABLEOVERRIDE:
            attrs["OVERRIDABLE"] = "false"
        if q.flavor & MIFlag.RESTRICTED:
            attrs["TOSUBCLASS"] = "false"
        if q.flavor & MIFlag.TRANSLATABLE:
            attrs["TRANSLATABLE"] = "true"
        if q.propagated:
            attrs["PROPAGATED"] = "true"
        qe = etree.SubElement(parent, "QUALIFIER", attrs)
        if q.value is not None:
            _value(qe, q.value, q.type)
    if embedded is not None and embedded[0]:
        cls_name = embedded[1]
        if cls_name is None and "embeddedobject" not in names:
            qe = etree.SubElement(parent, "QUALIFIER", NAME="EmbeddedObject", TYPE="boolean")
            etree.SubElement(qe, "VALUE").text = "true"
        elif cls_name is not None and "embeddedinstance" not in names:
            qe = etree.SubElement(parent, "QUALIFIER", NAME="EmbeddedInstance", TYPE="string")
            etree.SubElement(qe, "VALUE").text = cls_name
    for bit, word in _FLAG_QUALIFIERS:
        if flags & bit and word not in names:
            qe = etree.SubElement(parent, "QUALIFIER", NAME=word, TYPE="boolean")
            etree.SubElement(qe, "VALUE").text = "true"


# --- classes -----------------------------------------------------------------------------------------

def class_element(cls: Class, flags: int = 0, derivation: Sequence[str] = ()) -> etree._Element:
    attrs = {"NAME": cls.name}
    if cls.superclass:
        attrs["SUPERCLASS"] = cls.superclass
    if flags & INCLUDE_INHERITANCE_HIERARCHY:
        attrs["DERIVATION"] = ",".join(derivation or ([cls.superclass] if cls.superclass else []))
    root = etree.Element("CLASS", attrs)
    deep = bool(flags & (CLASS_DEEP | INCLUDE_INHERITED_ELEMENTS))
    with_quals = bool(flags & INCLUDE_QUALIFIERS)
    if with_quals:
        class_flags = 0
        for q, bit in (("Abstract", MIFlag.ABSTRACT), ("Association", MIFlag.ASSOCIATION),
                       ("Indication", MIFlag.INDICATION)):
            qq = cls.qualifiers.get(q)
            if qq is not None and qq.value:
                class_flags |= bit
        _qualifiers(root, [q for q in cls.qualifiers.values() if deep or not q.propagated], class_flags, False)
    for p in cls.properties.values():
        if p.propagated and not deep:
            continue
        _property(root, cls, p, flags)
    for m in cls.methods.values():
        if m.propagated and not deep:
            continue
        _method(root, m, flags)
    return root


def _property(root: etree._Element, cls: Class, p: Property, flags: int) -> None:
    t = int(p.type)
    if t == MIType.REFERENCEA:
        raise ValueError(f"{cls.name}.{p.name}: MI_XML has no form for a reference array property")
    tag = "PROPERTY.REFERENCE" if t == MIType.REFERENCE else "PROPERTY.ARRAY" if t & 0x10 else "PROPERTY"
    attrs = {"NAME": p.name}
    if t == MIType.REFERENCE:
        if p.reference_class:
            attrs["REFERENCECLASS"] = p.reference_class
    else:
        attrs["TYPE"] = _type_name(t)
    if t & 0x10 and p.array_size:
        attrs["ARRAYSIZE"] = str(p.array_size)
    if flags & INCLUDE_CLASS_ORIGIN and p.class_origin:
        attrs["CLASSORIGIN"] = p.class_origin
    if p.propagated:
        attrs["PROPAGATED"] = "true"
    pe = etree.SubElement(root, tag, attrs)
    if flags & INCLUDE_QUALIFIERS:
        embedded = (True, p.embedded_class) if (t & 0x0F) == MIType.INSTANCE else None
        _qualifiers(pe, p.qualifiers.values(), int(p.flags), p.propagated, embedded)
    if p.value is not None:
        _value(pe, p.value, t, cls.namespace)


def _parameter(me: etree._Element, prm: Parameter, flags: int) -> None:
    t = int(prm.type)
    if t == MIType.REFERENCE:
        tag = "PARAMETER.REFERENCE"
    elif t == MIType.REFERENCEA:
        tag = "PARAMETER.REFARRAY"
    elif t & 0x10:
        tag = "PARAMETER.ARRAY"
    else:
        tag = "PARAMETER"
    attrs = {"NAME": prm.name}
    if (t & 0x0F) == MIType.REFERENCE:
        if prm.reference_class:
            attrs["REFERENCECLASS"] = prm.reference_class
    else:
        attrs["TYPE"] = _type_name(t)
    if t & 0x10 and prm.array_size:
        attrs["ARRAYSIZE"] = str(prm.array_size)
    pe = etree.SubElement(me, tag, attrs)
    if flags & INCLUDE_QUALIFIERS:
        embedded = (True, prm.embedded_class) if (t & 0x0F) == MIType.INSTANCE else None
        _qualifiers(pe, prm.qualifiers.values(), int(prm.flags) & int(MIFlag.IN | MIFlag.OUT), False, embedded)


def _method(root: etree._Element, m: Method, flags: int) -> None:
    attrs = {"NAME": m.name, "TYPE": _type_name(m.return_type)}
    if flags & INCLUDE_CLASS_ORIGIN and m.class_origin:
        attrs["CLASSORIGIN"] = m.class_origin
    if m.propagated:
        attrs["PROPAGATED"] = "true"
    me = etree.SubElement(root, "METHOD", attrs)
    if flags & INCLUDE_QUALIFIERS:
        _qualifiers(me, m.qualifiers.values(), int(MIFlag.STATIC) if m.is_static else 0, m.propagated)
    for prm in m.parameters.values():
        _parameter(me, prm, flags)


# --- instances ---------------------------------------------------------------------------------------

def instance_element(inst: Instance) -> etree._Element:
    root = etree.Element("INSTANCE", CLASSNAME=inst.class_name)
    cls = inst.cls
    for el in inst.elements:
        t = int(el.type)
        if t == MIType.REFERENCEA:
            raise ValueError(f"{inst.class_name}.{el.name}: MI_XML has no form for a reference array property")
        tag = "PROPERTY.REFERENCE" if t == MIType.REFERENCE else "PROPERTY.ARRAY" if t & 0x10 else "PROPERTY"
        attrs = {"NAME": el.name}
        if t != MIType.REFERENCE:
            attrs["TYPE"] = _type_name(t)
        if (t & 0x0F) == MIType.INSTANCE:
            p = cls.properties.get(el.name) if cls is not None else None
            embedded = p.embedded_class if p is not None else None
            if embedded:
                attrs["EmbeddedObject"] = "instance"
                attrs["EmbeddedClassName"] = embedded
            else:
                attrs["EmbeddedObject"] = "object"
        if not el.flags & MIFlag.NOT_MODIFIED:
            attrs["MODIFIED"] = "TRUE"
        pe = etree.SubElement(root, tag, attrs)
        if el.value is not None:
            _value(pe, el.value, t, inst.namespace)
    return root


def _instance_with_class(inst: Instance, flags: int, classes: Iterable[Class]) -> etree._Element:
    cim = etree.Element("CIM", CIMVERSION="2.6.0", DTDVERSION="2.3.1")
    group = etree.SubElement(etree.SubElement(cim, "DECLARATION"), "DECLGROUP")
    if inst.namespace:
        if inst.server_name:
            nsp = etree.SubElement(group, "NAMESPACEPATH")
            etree.SubElement(nsp, "HOST").text = inst.server_name
            _namespace_path(nsp, inst.namespace)
        else:
            _namespace_path(group, inst.namespace)
    decls = list(classes) or ([inst.cls] if inst.cls is not None else [])
    for c in decls:
        etree.SubElement(group, "VALUE.OBJECT").append(class_element(c, flags & ~CLASS_DEEP))
    etree.SubElement(group, "VALUE.OBJECT").append(instance_element(inst))
    return cim


# --- reading an instance back (what GetText_(1) gives, passed as an embedded-instance argument) ----------------

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_MAX_DEPTH = 32


def instance_from_mi_xml(text: str | bytes, cls: Class | None = None) -> Instance:
    """The inverse of :func:`instance_element`: a DSP0201 ``<INSTANCE>`` (MI_XML, WMI's CIM DTD 2.0 text)
    as an Instance, typed by ``cls`` where given, else by the TYPE attributes. ValueError when it is not one."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not an <INSTANCE>: {exc}") from None
    if root.tag == "CIM":  # an INSTANCE_WITH_CLASS document: the instance is the last declaration's
        found = root.findall(".//INSTANCE")
        if not found:
            raise ValueError("the CIM document holds no <INSTANCE>")
        root = found[-1]
    return _read_instance(root, cls, 0)


def _read_instance(el: etree._Element, cls: Class | None, depth: int) -> Instance:
    if el.tag != "INSTANCE":
        raise ValueError(f"expected <INSTANCE>, found <{el.tag}>")
    if depth > _MAX_DEPTH:
        raise ValueError(f"embedded instances nest deeper than {_MAX_DEPTH}")
    class_name = el.get("CLASSNAME")
    if not class_name:
        raise ValueError("<INSTANCE> has no CLASSNAME")
    elements: dict[str, Element] = {}
    for p in el:
        if p.tag not in ("PROPERTY", "PROPERTY.ARRAY", "PROPERTY.REFERENCE"):
            continue
        name = p.get("NAME")
        if not name:
            raise ValueError(f"a property of {class_name} has no NAME")
        declared = cls.properties.get(name) if cls is not None else None
        if declared is not None:
            t = MIType(declared.type)
        elif p.tag == "PROPERTY.REFERENCE":
            t = MIType.REFERENCE
        else:
            tname = p.get("TYPE") or "string"
            embedded = p.get("EmbeddedObject") or p.get("EMBEDDEDOBJECT")
            scalar = MIType.INSTANCE if embedded else MIType.from_cim_name(tname)
            t = MIType(int(scalar) | (0x10 if p.tag == "PROPERTY.ARRAY" else 0))
        flags = int(declared.flags & MIFlag.KEY) if declared is not None else 0
        elements[name.lower()] = Element(declared.name if declared is not None else name,
                                         _read_value(p, t, depth), t, flags)
    out = Instance.from_elements(class_name, elements)
    return out


def _read_value(p: etree._Element, t: MIType, depth: int) -> Any:
    s = MIType(int(t) & 0x0F)
    if s == MIType.REFERENCE:
        vr = p.find("VALUE.REFERENCE")
        return _read_reference(vr) if vr is not None else None
    if int(t) & 0x10:
        arr = p.find("VALUE.ARRAY")
        if arr is None:
            return None
        return [_read_scalar(v.text or "", s, depth) for v in arr.findall("VALUE")]
    v = p.find("VALUE")
    return None if v is None else _read_scalar(v.text or "", s, depth)


def _read_scalar(text: str, s: MIType, depth: int) -> Any:
    if s == MIType.INSTANCE:
        inner = etree.fromstring(text.encode("utf-8"), _PARSER)
        return _read_instance(inner, None, depth + 1)
    if s == MIType.CHAR16 and text.isdigit():
        return chr(int(text))
    if s == MIType.BOOLEAN:
        return text.strip().lower() == "true"
    return parse_scalar(text, s)


def _read_reference(vr: etree._Element) -> Instance:
    name = vr.find(".//INSTANCENAME")
    if name is None or not name.get("CLASSNAME"):
        raise ValueError("a reference without INSTANCENAME")
    ns_parts = [n.get("NAME", "") for n in vr.findall(".//NAMESPACE")]
    elements: dict[str, Element] = {}
    for kb in name.findall("KEYBINDING"):
        kv = kb.find("KEYVALUE")
        key = kb.get("NAME") or ""
        if kv is not None:
            elements[key.lower()] = Element(key, _key_text(kv), _key_type(kv), MIFlag.KEY)
    if not elements:
        kv = name.find("KEYVALUE")
        if kv is not None:
            raise ValueError("a single KEYVALUE reference names no key property")
    inst = Instance.from_elements(name.get("CLASSNAME", ""), elements,
                                  namespace="/".join(p for p in ns_parts if p) or None)
    return inst


def _key_type(kv: etree._Element) -> MIType:
    t = kv.get("TYPE")
    if t:
        return MIType.from_cim_name(t)
    return {"boolean": MIType.BOOLEAN, "numeric": MIType.SINT64}.get(kv.get("VALUETYPE", "string"), MIType.STRING)


def _key_text(kv: etree._Element) -> Any:
    t = _key_type(kv)
    return parse_scalar(kv.text or "", t) if t != MIType.STRING else (kv.text or "")

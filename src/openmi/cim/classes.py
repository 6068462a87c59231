"""CIM class declarations: qualifiers, properties, methods and parameters (what MI_Class exposes).

A :class:`Class` as a user writes it holds only its own (local) elements and names its superclass.
:func:`resolve_class` joins it with its resolved superclass: the result lists inherited elements too,
each marked with the class it came from, and carries the qualifiers that propagate.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .names import NamedItems
from .types import MIFlag, MIType
from .values import coerce

@dataclass
class Qualifier:
    """A qualifier value on a class, property, method or parameter."""

    name: str
    value: Any = True
    type: MIType = MIType.BOOLEAN
    flavor: MIFlag = MIFlag.ENABLEOVERRIDE | MIFlag.TOSUBCLASS
    propagated: bool = False

    def __post_init__(self) -> None:
        self.type = MIType(self.type)
        self.flavor = MIFlag(self.flavor)

    @property
    def propagates(self) -> bool:
        return not (self.flavor & MIFlag.RESTRICTED)


@dataclass
class QualifierDecl:
    """A qualifier type declaration (``Qualifier Key : boolean = false, Scope(property, reference)``)."""

    name: str
    type: MIType = MIType.BOOLEAN
    default: Any = None
    scope: MIFlag = MIFlag.ANY
    flavor: MIFlag = MIFlag.ENABLEOVERRIDE | MIFlag.TOSUBCLASS
    array_size: int | None = None

    def __post_init__(self) -> None:
        self.type = MIType(self.type)
        self.scope = MIFlag(self.scope)
        self.flavor = MIFlag(self.flavor)


def qualifier_set(items: Iterable[Qualifier] | Mapping[str, Any] | None) -> NamedItems[Qualifier]:
    """Build a qualifier set from Qualifier objects or a ``{name: value}`` mapping."""
    if items is None:
        return NamedItems()
    if isinstance(items, NamedItems):
        return items
    if isinstance(items, Mapping):
        out: NamedItems[Qualifier] = NamedItems()
        for name, value in items.items():
            out.add(_qualifier_from_value(name, value))
        return out
    return NamedItems(items)


def _qualifier_from_value(name: str, value: Any) -> Qualifier:
    if isinstance(value, Qualifier):
        return value
    if isinstance(value, bool):
        return Qualifier(name, value, MIType.BOOLEAN)
    if isinstance(value, int):
        return Qualifier(name, value, MIType.SINT32)
    if isinstance(value, float):
        return Qualifier(name, value, MIType.REAL64)
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return Qualifier(name, list(value), MIType.SINT32A)
        return Qualifier(name, [str(v) for v in value], MIType.STRINGA)
    return Qualifier(name, value, MIType.STRING)


def _qualifier_true(quals: NamedItems[Qualifier], name: str) -> bool:
    q = quals.get(name)
    return bool(q is not None and q.value)


class Property:
    """A property of a class: its type, default value, key flag, qualifiers and origin."""

    __slots__ = ("name", "type", "value", "flags", "qualifiers", "reference_class", "embedded_class",
                 "class_origin", "propagated", "array_size")

    def __init__(
        self,
        name: str,
        type: MIType,
        key: bool = False,
        value: Any = None,
        *,
        qualifiers: Iterable[Qualifier] | Mapping[str, Any] | None = None,
        reference_class: str | None = None,
        embedded_class: str | None = None,
        flags: int = 0,
        class_origin: str | None = None,
        propagated: bool = False,
        array_size: int | None = None,
    ) -> None:
        self.name = name
        self.type = MIType(type)
        self.qualifiers = qualifier_set(qualifiers)
        f = MIFlag(flags) | MIFlag.PROPERTY
        if self.type.scalar == MIType.REFERENCE:
            f = (f & ~MIFlag.PROPERTY) | MIFlag.REFERENCE
        if key or _qualifier_true(self.qualifiers, "Key"):
            f |= MIFlag.KEY
        if _qualifier_true(self.qualifiers, "Required"):
            f |= MIFlag.REQUIRED
        self.flags = f
        self.value = coerce(value, self.type, name) if value is not None else None
        self.reference_class = reference_class
        if embedded_class is None:
            q = self.qualifiers.get("EmbeddedInstance")
            embedded_class = str(q.value) if q is not None and q.value else None
        self.embedded_class = embedded_class
        self.class_origin = class_origin
        self.propagated = propagated
        self.array_size = array_size

    @property
    def key(self) -> bool:
        return bool(self.flags & MIFlag.KEY)

    def clone(self) -> Property:
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Property):
            return NotImplemented
        return (
            self.name.lower() == other.name.lower() and self.type == other.type and self.value == other.value
            and self.key == other.key and self.qualifiers == other.qualifiers
            and _lower(self.reference_class) == _lower(other.reference_class)
        )

    def __repr__(self) -> str:
        key = ", key=True" if self.key else ""
        return f"Property({self.name!r}, {self.type.name}{key})"


class Parameter:
    """A method parameter; ``in_``/``out`` come from the In and Out qualifiers (In by default)."""

    __slots__ = ("name", "type", "qualifiers", "reference_class", "embedded_class", "flags", "array_size")

    def __init__(
        self,
        name: str,
        type: MIType,
        *,
        in_: bool | None = None,
        out: bool | None = None,
        qualifiers: Iterable[Qualifier] | Mapping[str, Any] | None = None,
        reference_class: str | None = None,
        embedded_class: str | None = None,
        array_size: int | None = None,
    ) -> None:
        self.name = name
        self.type = MIType(type)
        self.qualifiers = qualifier_set(qualifiers)
        if in_ is None:
            q = self.qualifiers.get("In")
            in_ = bool(q.value) if q is not None else not _qualifier_true(self.qualifiers, "Out")
        if out is None:
            out = _qualifier_true(self.qualifiers, "Out")
        self.flags = MIFlag.PARAMETER | (MIFlag.IN if in_ else 0) | (MIFlag.OUT if out else 0)
        self.reference_class = reference_class
        if embedded_class is None:
            q = self.qualifiers.get("EmbeddedInstance")
            embedded_class = str(q.value) if q is not None and q.value else None
        self.embedded_class = embedded_class
        self.array_size = array_size

    @property
    def in_(self) -> bool:
        return bool(self.flags & MIFlag.IN)

    @property
    def out(self) -> bool:
        return bool(self.flags & MIFlag.OUT)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Parameter):
            return NotImplemented
        return (self.name.lower() == other.name.lower() and self.type == other.type
                and self.flags == other.flags and self.qualifiers == other.qualifiers
                and _lower(self.reference_class) == _lower(other.reference_class))

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, {self.type.name}, in_={self.in_}, out={self.out})"


class Method:
    """An extrinsic method: return type, parameters and qualifiers."""

    __slots__ = ("name", "return_type", "parameters", "qualifiers", "class_origin", "propagated")

    def __init__(
        self,
        name: str,
        return_type: MIType = MIType.UINT32,
        parameters: Iterable[Parameter] = (),
        *,
        qualifiers: Iterable[Qualifier] | Mapping[str, Any] | None = None,
        class_origin: str | None = None,
        propagated: bool = False,
    ) -> None:
        self.name = name
        self.return_type = MIType(return_type)
        self.parameters: NamedItems[Parameter] = NamedItems(parameters)
        self.qualifiers = qualifier_set(qualifiers)
        self.class_origin = class_origin
        self.propagated = propagated

    @property
    def is_static(self) -> bool:
        return _qualifier_true(self.qualifiers, "Static")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Method):
            return NotImplemented
        return (self.name.lower() == other.name.lower() and self.return_type == other.return_type
                and self.parameters == other.parameters and self.qualifiers == other.qualifiers)

    def __repr__(self) -> str:
        return f"Method({self.name!r}, {self.return_type.name}, {list(self.parameters)})"


class Class:
    """A CIM class. ``properties``, ``methods`` and ``qualifiers`` are case-insensitive mappings."""

    def __init__(
        self,
        name: str,
        superclass: str | None = None,
        properties: Iterable[Property] = (),
        *,
        qualifiers: Iterable[Qualifier] | Mapping[str, Any] | None = None,
        methods: Iterable[Method] = (),
        namespace: str | None = None,
        server_name: str | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a class needs a name")
        self.name = name
        self.superclass = superclass or None
        self.properties: NamedItems[Property] = NamedItems(properties)
        self.methods: NamedItems[Method] = NamedItems(methods)
        self.qualifiers = qualifier_set(qualifiers)
        self.namespace = namespace
        self.server_name = server_name
        for p in self.properties.values():
            if p.class_origin is None:
                p.class_origin = name
        for m in self.methods.values():
            if m.class_origin is None:
                m.class_origin = name

    # MI_Class's accessors
    @property
    def class_name(self) -> str:
        return self.name

    @property
    def key_properties(self) -> list[Property]:
        return [p for p in self.properties.values() if p.key]

    @property
    def is_abstract(self) -> bool:
        return _qualifier_true(self.qualifiers, "Abstract")

    @property
    def is_association(self) -> bool:
        return _qualifier_true(self.qualifiers, "Association")

    @property
    def is_indication(self) -> bool:
        return _qualifier_true(self.qualifiers, "Indication")

    @property
    def local_properties(self) -> list[Property]:
        return [p for p in self.properties.values() if not p.propagated]

    @property
    def local_methods(self) -> list[Method]:
        return [m for m in self.methods.values() if not m.propagated]

    def clone(self) -> Class:
        return copy.deepcopy(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Class):
            return NotImplemented
        return (
            self.name.lower() == other.name.lower()
            and _lower(self.superclass) == _lower(other.superclass)
            and self.properties == other.properties
            and self.methods == other.methods
            and self.qualifiers == other.qualifiers
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sup = f" : {self.superclass}" if self.superclass else ""
        return f"Class({self.name}{sup}, properties={list(self.properties)})"


def _lower(s: str | None) -> str | None:
    return s.lower() if s else None


def _inherit_qualifiers(parent: NamedItems[Qualifier], own: NamedItems[Qualifier]) -> NamedItems[Qualifier]:
    out: NamedItems[Qualifier] = NamedItems()
    for q in parent.values():
        if q.propagates and q.name not in own and q.name.lower() not in _NOT_INHERITED:
            out.add(Qualifier(q.name, copy.deepcopy(q.value), q.type, q.flavor, propagated=True))
    for q in own.values():
        out.add(q)
    return out


# Qualifiers that DSP0004 declares Restricted: they describe one class, never its subclasses.
_NOT_INHERITED = frozenset({"abstract", "deprecated", "experimental", "version", "umlpackagepath"})


def resolve_class(cls: Class, parent: Class | None) -> Class:
    """Join a class as declared with its resolved superclass.

    The result lists the superclass's properties and methods first (marked ``propagated``; an element
    the subclass redeclares keeps its place but takes the subclass's declaration, with the parent's
    propagating qualifiers), then the new ones. The input is not changed.
    """
    out = Class(cls.name, cls.superclass, namespace=cls.namespace, server_name=cls.server_name)
    own_props = cls.properties
    own_methods = cls.methods
    if parent is None:
        out.qualifiers = qualifier_set(list(cls.qualifiers.values()))
        for p in own_props.values():
            q = copy.deepcopy(p)
            q.class_origin = cls.name
            q.propagated = False
            out.properties.add(q)
        for m in own_methods.values():
            mm = copy.deepcopy(m)
            mm.class_origin = cls.name
            mm.propagated = False
            out.methods.add(mm)
        return out
    out.qualifiers = _inherit_qualifiers(parent.qualifiers, cls.qualifiers)
    for pp in parent.properties.values():
        mine = own_props.get(pp.name)
        if mine is None:
            q = copy.deepcopy(pp)
            q.propagated = True
            out.properties.add(q)
        else:
            q = copy.deepcopy(mine)
            q.qualifiers = _inherit_qualifiers(pp.qualifiers, mine.qualifiers)
            if pp.key:
                q.flags |= MIFlag.KEY
            q.class_origin = cls.name
            q.propagated = False
            out.properties.add(q)
    for p in own_props.values():
        if p.name not in out.properties:
            q = copy.deepcopy(p)
            q.class_origin = cls.name
            q.propagated = False
            out.properties.add(q)
    for pm in parent.methods.values():
        mine_m = own_methods.get(pm.name)
        if mine_m is None:
            mm = copy.deepcopy(pm)
            mm.propagated = True
        else:
            mm = copy.deepcopy(mine_m)
            mm.qualifiers = _inherit_qualifiers(pm.qualifiers, mine_m.qualifiers)
            mm.class_origin = cls.name
            mm.propagated = False
        out.methods.add(mm)
    for m in own_methods.values():
        if m.name not in out.methods:
            mm = copy.deepcopy(m)
            mm.class_origin = cls.name
            mm.propagated = False
            out.methods.add(mm)
    return out


def declared_class(resolved: Class) -> Class:
    """The class as it would be declared: only local elements and non-propagated qualifiers."""
    out = Class(resolved.name, resolved.superclass, namespace=resolved.namespace,
                server_name=resolved.server_name)
    out.qualifiers = NamedItems(q for q in resolved.qualifiers.values() if not q.propagated)
    for p in resolved.local_properties:
        q = copy.deepcopy(p)
        q.qualifiers = NamedItems(x for x in p.qualifiers.values() if not x.propagated)
        out.properties.add(q)
    for m in resolved.local_methods:
        mm = copy.deepcopy(m)
        mm.qualifiers = NamedItems(x for x in m.qualifiers.values() if not x.propagated)
        out.methods.add(mm)
    return out

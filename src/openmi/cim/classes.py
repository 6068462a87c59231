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

_KEY = int(MIFlag.KEY)


@dataclass(slots=True)
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

    @classmethod
    def _trusted(cls, name: str, value: Any, type: MIType, flavor: MIFlag) -> Qualifier:
        """Build from parts already checked and already enums (the MOF compiler's fast path)."""
        q = cls.__new__(cls)
        q.name = name
        q.value = value
        q.type = type
        q.flavor = flavor
        q.propagated = False
        return q


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

    __slots__ = (
        "array_size",
        "class_origin",
        "embedded_class",
        "flags",
        "name",
        "propagated",
        "qualifiers",
        "reference_class",
        "type",
        "value",
    )

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

    @classmethod
    def _trusted(cls, name: str, type: MIType, value: Any, qualifiers: NamedItems[Qualifier], flags: MIFlag,
                 reference_class: str | None, embedded_class: str | None, array_size: int | None) -> Property:
        """Build from parts already checked (the MOF compiler's fast path): ``value`` fits ``type`` and
        ``flags`` already says PROPERTY or REFERENCE, KEY and REQUIRED as the qualifiers do."""
        p = cls.__new__(cls)
        p.name = name
        p.type = type
        p.qualifiers = qualifiers
        p.flags = flags
        p.value = value
        p.reference_class = reference_class
        p.embedded_class = embedded_class
        p.class_origin = None
        p.propagated = False
        p.array_size = array_size
        return p

    @property
    def key(self) -> bool:
        return bool(int(self.flags) & _KEY)  # a plain int: no enum arithmetic on a hot path

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

    __slots__ = ("array_size", "embedded_class", "flags", "name", "qualifiers", "reference_class", "type")

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

    @classmethod
    def _trusted(cls, name: str, type: MIType, qualifiers: NamedItems[Qualifier], flags: MIFlag,
                 reference_class: str | None, embedded_class: str | None, array_size: int | None) -> Parameter:
        """Build from parts already checked (the MOF compiler's fast path); ``flags`` holds PARAMETER, IN, OUT."""
        p = cls.__new__(cls)
        p.name = name
        p.type = type
        p.qualifiers = qualifiers
        p.flags = flags
        p.reference_class = reference_class
        p.embedded_class = embedded_class
        p.array_size = array_size
        return p

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

    __slots__ = ("class_origin", "name", "parameters", "propagated", "qualifiers", "return_type")

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


_RESTRICTED = int(MIFlag.RESTRICTED)
_DISABLEOVERRIDE = int(MIFlag.DISABLEOVERRIDE)
_KEYBIT = int(MIFlag.KEY)

# Qualifiers that DSP0004 declares Restricted: they describe one class, never its subclasses. Listed so
# that a qualifier built without its declaration's flavor (Qualifier("Abstract")) still stays put.
_NOT_INHERITED = frozenset({"abstract", "deprecated", "experimental", "version", "umlpackagepath", "override"})


def _copy_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, list):
        return [v.clone() if hasattr(v, "keys_only") else v for v in value]
    if hasattr(value, "keys_only"):  # an Instance (reference or embedded default)
        return value.clone()
    return value


def _named(items: dict[str, Any]) -> NamedItems[Any]:
    """A NamedItems over a ready ``{lower name: item}`` dict (skips the per-item checks of __init__)."""
    out: NamedItems[Any] = NamedItems.__new__(NamedItems)
    out._items = items
    return out


_new_qualifier = Qualifier.__new__


def _qualifier_copy(q: Qualifier, propagated: bool) -> Qualifier:
    # Qualifier values are scalars or lists of scalars (never instances): a list copy is enough.
    c = _new_qualifier(Qualifier)
    c.name = q.name
    v = q.value
    c.value = v[:] if type(v) is list else v
    c.type = q.type
    c.flavor = q.flavor
    c.propagated = propagated
    return c


def _own_qualifiers(own: NamedItems[Qualifier]) -> NamedItems[Qualifier]:
    return _named({k: _qualifier_copy(q, False) for k, q in own._items.items()})


def _inherit_qualifiers(parent: NamedItems[Qualifier], own: NamedItems[Qualifier] | None) -> NamedItems[Qualifier]:
    """The qualifiers of an element: those the parent's element passes down (ToSubclass), marked
    ``propagated``, then the element's own. A parent qualifier with flavor DisableOverride keeps its value."""
    items: dict[str, Qualifier] = {}
    own_items = own._items if own is not None else {}
    for k, q in parent._items.items():
        fl = int(q.flavor)
        if fl & _RESTRICTED or k in _NOT_INHERITED:
            continue
        mine = own_items.get(k)
        if mine is not None and not (fl & _DISABLEOVERRIDE and mine.value != q.value):
            continue
        items[k] = q if q.propagated else _qualifier_copy(q, True)  # an inherited one passes on as is
    for k, q in own_items.items():
        if k not in items:
            items[k] = _qualifier_copy(q, False)
    return _named(items)


def _copy_property(p: Property, qualifiers: NamedItems[Qualifier], flags: MIFlag, origin: str | None,
                   propagated: bool) -> Property:
    q = Property._trusted(p.name, p.type, _copy_value(p.value), qualifiers, flags, p.reference_class,
                          p.embedded_class, p.array_size)
    q.class_origin = origin
    q.propagated = propagated
    return q


def _copy_method(m: Method, parent: Method | None, origin: str | None, propagated: bool) -> Method:
    pitems: dict[str, Parameter] = {}
    for k, prm in m.parameters._items.items():
        inherited = parent.parameters._items.get(k) if parent is not None else None
        quals = (_inherit_qualifiers(inherited.qualifiers, prm.qualifiers) if inherited is not None
                 else _own_qualifiers(prm.qualifiers))
        pitems[k] = Parameter._trusted(prm.name, prm.type, quals, prm.flags, prm.reference_class,
                                       prm.embedded_class, prm.array_size)
    out = Method.__new__(Method)
    out.name = m.name
    out.return_type = m.return_type
    out.parameters = _named(pitems)
    out.qualifiers = (_inherit_qualifiers(parent.qualifiers, m.qualifiers) if parent is not None
                      else _own_qualifiers(m.qualifiers))
    out.class_origin = origin
    out.propagated = propagated
    return out


def _propagate_property(p: Property) -> Property:
    """A parent's (resolved) property as its subclass inherits it: restricted qualifiers stay behind.
    One the parent itself inherited is already in that form and is shared, not copied."""
    if p.propagated:
        return p
    return _copy_property(p, _inherit_qualifiers(p.qualifiers, None), p.flags, p.class_origin, True)


def _propagate_method(m: Method) -> Method:
    if m.propagated:
        return m
    out = _copy_method(m, None, m.class_origin, True)
    out.qualifiers = _inherit_qualifiers(m.qualifiers, None)
    return out


def resolve_class(cls: Class, parent: Class | None) -> Class:
    """Join a class as declared with its resolved superclass.

    The result lists the superclass's properties and methods first (marked ``propagated``), then the
    new ones. An element the subclass redeclares (with or without the Override qualifier) keeps its
    place but takes the subclass's declaration; it inherits the parent element's qualifiers whose flavor
    is ToSubclass (marked ``propagated``), and a parent qualifier whose flavor is DisableOverride keeps
    its value. A key property stays a key. Restricted qualifiers (Abstract, Override, Deprecated ...)
    never pass down. Neither input is changed.

    Classes in a repository are read-only by contract, so what the result takes unchanged is shared,
    not copied: the declared class's new elements and qualifiers, and what the parent itself inherited
    (propagated properties, methods, qualifiers). That keeps resolving a schema of thousands of classes
    fast and small. Use ``Class.clone()`` for a copy to change.
    """
    out = Class(cls.name, cls.superclass, namespace=cls.namespace, server_name=cls.server_name)
    name = cls.name
    own_props = cls.properties._items
    own_methods = cls.methods._items
    props = out.properties._items
    methods = out.methods._items
    if parent is None:
        out.qualifiers = _named(dict(cls.qualifiers._items))
    else:
        out.qualifiers = _inherit_qualifiers(parent.qualifiers, cls.qualifiers)
        for k, pp in parent.properties._items.items():
            mine = own_props.get(k)
            if mine is None:
                props[k] = _propagate_property(pp)
            else:
                flags = mine.flags
                if int(pp.flags) & _KEYBIT and not int(flags) & _KEYBIT:
                    flags = MIFlag(int(flags) | _KEYBIT)
                props[k] = _copy_property(mine, _inherit_qualifiers(pp.qualifiers, mine.qualifiers), flags, name,
                                          False)
        for k, pm in parent.methods._items.items():
            mine_m = own_methods.get(k)
            methods[k] = _propagate_method(pm) if mine_m is None else _copy_method(mine_m, pm, name, False)
    for k, p in own_props.items():
        if k not in props:
            props[k] = p if (p.class_origin == name and not p.propagated) else _copy_property(
                p, p.qualifiers, p.flags, name, False)
    for k, m in own_methods.items():
        if k not in methods:
            methods[k] = m if (m.class_origin == name and not m.propagated) else _copy_method(m, None, name, False)
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

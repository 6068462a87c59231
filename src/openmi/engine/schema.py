"""The class registry of one namespace, kept in memory: resolved classes, their subclasses, and the
per-class facts the hot paths need (key layout, property types) computed once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..cim.classes import Class, Property, QualifierDecl
from ..cim.errors import MIError
from ..cim.instance import Element, Instance, stored_element
from ..cim.types import INTEGER_RANGES, MIFlag, MIResult, MIType
from ..cim.values import coerce, parse_scalar
from .encoding import key_string, value_from_json

_INT_RANGES = INTEGER_RANGES
_KEY = int(MIFlag.KEY)
_DATETIME = int(MIType.DATETIME)
_REFERENCE = int(MIType.REFERENCE)
_INSTANCE = int(MIType.INSTANCE)


class ClassInfo:
    """A resolved class and what serving its instances needs."""

    __slots__ = (
        "abstract",
        "cls",
        "declared",
        "defaults",
        "is_association",
        "key_items",
        "key_root",
        "keys",
        "layout",
        "lineage",
        "low",
        "name",
        "plain_layout",
        "props",
        "provider",
        "ref_props",
    )

    def __init__(self, declared: Class, resolved: Class) -> None:
        self.declared = declared
        self.cls = resolved
        self.name = resolved.name
        self.low = resolved.name.lower()
        self.props: dict[str, Property] = {p.name.lower(): p for p in resolved.properties.values()}
        self.keys: list[Property] = [p for p in resolved.properties.values() if p.key]
        self.key_items: list[tuple[str, Property]] = [(p.name.lower(), p) for p in self.keys]
        # (lower name, name, type, stored flags, needs decoding) for building instances from rows
        self.layout: list[tuple[str, str, MIType, int, bool]] = [
            (p.name.lower(), p.name, p.type, int(p.flags) & _KEY,
             (int(p.type) & 0x0F) in (_DATETIME, _REFERENCE, _INSTANCE))
            for p in resolved.properties.values()
        ]
        # the same for values already decoded (a write's own values): never run the JSON decoders on them
        self.plain_layout: list[tuple[str, str, MIType, int, bool]] = [
            (low, name, t, flags, False) for low, name, t, flags, _ in self.layout]
        self.provider: Any = None
        self.abstract = resolved.is_abstract
        self.defaults: list[tuple[str, Any, int]] = [
            (p.name, p.value, int(p.type)) for p in resolved.properties.values() if p.value is not None]
        self.is_association = resolved.is_association
        # the scalar references of an association: what its instances are indexed by
        self.ref_props: list[Property] = [p for p in resolved.properties.values()
                                          if p.type == MIType.REFERENCE] if self.is_association else []
        # this class and its superclasses, lower-cased (set by Namespace.add, which knows the parent)
        self.lineage: frozenset[str] = frozenset((self.low,))
        # the highest superclass with the same keys: every class under it names an instance the same way,
        # so a reference through any of them finds the same association index entries
        self.key_root = self.low

    def is_a(self, class_low: str) -> bool:
        """True when this class is ``class_low`` or one of its subclasses."""
        return class_low in self.lineage

    # --- instances from stored rows ----------------------------------------------------------------
    def from_row(self, namespace: str, values: dict[str, Any], keys_only: bool = False,
                 layout: list[tuple[str, str, MIType, int, bool]] | None = None) -> Instance:
        elements: dict[str, Element] = {}
        get = values.get
        for low, name, t, flags, decode in layout or self.layout:
            if keys_only and not flags:
                continue
            v = get(name)
            if v is not None and decode:
                v = value_from_json(v, t)
            elements[low] = stored_element(name, v, t, flags)
        return Instance.from_elements(self.name, elements, namespace=namespace)

    # --- inbound instances -----------------------------------------------------------------------
    def convert(self, el: Element, prop: Property) -> Any:
        """The element's value in the property's type, or TYPE_MISMATCH naming both."""
        value = el.value
        pt = prop.type
        if value is None or el.type is pt:
            return value
        if type(value) is int and pt in _INT_RANGES:
            lo, hi = _INT_RANGES[pt]
            if lo <= value <= hi:
                return value
        try:
            if isinstance(value, str) and pt != MIType.STRING and not pt.is_array:
                return parse_scalar(value, pt, prop.name)
            if isinstance(value, list) and pt.is_array:
                return [parse_scalar(v, pt.scalar, prop.name) if isinstance(v, str) and pt.scalar != MIType.STRING
                        else coerce(v, pt.scalar, prop.name) for v in value]
            if pt.scalar in (MIType.REFERENCE, MIType.INSTANCE) and el.type.scalar in (MIType.REFERENCE,
                                                                                       MIType.INSTANCE):
                return coerce(value, pt, prop.name)
            if el.type.scalar == MIType.BOOLEAN or pt.scalar == MIType.BOOLEAN:
                raise TypeError("boolean")
            return coerce(value, pt, prop.name)
        except (TypeError, ValueError):
            raise MIError(MIResult.TYPE_MISMATCH,
                          f"property {prop.name!r} of class {self.name} is {pt.name}; the value {value!r:.80} "
                          f"given as {MIType(el.type).name} does not fit") from None

    def key_of(self, inst: Instance, namespace: str) -> tuple[str, dict[str, tuple[Any, int]]]:
        """Check an instance name against the class: its key string and typed key values."""
        props = self.props
        elements = inst._elements
        for low in elements:
            if low not in props:
                raise MIError(MIResult.NO_SUCH_PROPERTY,
                              f"class {self.name} in namespace {namespace} has no property {elements[low].name!r}")
        if not self.keys:
            raise MIError(MIResult.INVALID_CLASS,
                          f"class {self.name} in namespace {namespace} has no key properties, so it has no instances "
                          f"to address")
        values: dict[str, tuple[Any, int]] = {}
        parts: list[tuple[Any, int]] = []
        for low, p in self.key_items:
            el = elements.get(low)
            if el is None or el.value is None:
                raise MIError(MIResult.INVALID_PARAMETER,
                              f"key property {p.name!r} of class {self.name} is missing")
            v = self.convert(el, p)
            pair = (v, p.type)
            values[p.name] = pair
            parts.append(pair)
        return key_string(parts), values

    def values_of(self, inst: Instance, namespace: str) -> dict[str, tuple[Any, int]]:
        """Every element of an inbound instance in the class's types (NO_SUCH_PROPERTY/TYPE_MISMATCH)."""
        out: dict[str, tuple[Any, int]] = {}
        props = self.props
        for low, el in inst._elements.items():
            p = props.get(low)
            if p is None:
                raise MIError(MIResult.NO_SUCH_PROPERTY,
                              f"class {self.name} in namespace {namespace} has no property {el.name!r}")
            out[p.name] = (self.convert(el, p), int(p.type))
        return out

    def describe_keys(self, values: dict[str, tuple[Any, int]]) -> str:
        return ",".join(f"{n}={v!r}" for n, (v, _) in values.items())


class Namespace:
    """The classes, qualifier declarations and providers of one namespace."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = name.lower()  # how the repository stores it
        self.classes: dict[str, ClassInfo] = {}
        self.children: dict[str, list[str]] = {"": []}
        self.qualifiers: dict[str, QualifierDecl] = {}
        self.seq = 0  # the definition order of the last class stored
        # compiled queries by (dialect, text); they depend on the classes, so any class change empties it
        self.queries: dict[tuple[str, ...], Any] = {}
        self._associations: list[ClassInfo] | None = None
        # association classes that can link a source, by (source, assoc_class, role, result_class): see
        # engine.associations; cleared whenever the registry changes
        self.link_cache: dict[tuple[str, str, str, str], list[ClassInfo]] = {}

    #: bumped whenever the classes of any namespace change: what a server derives from all of them (whether
    #: any association class exists) is computed again only then
    version = 0

    def changed(self) -> None:
        """Forget what was derived from the class registry (after classes were added, removed or restored)."""
        Namespace.version += 1
        self._associations = None
        self.link_cache.clear()

    def associations(self) -> list[ClassInfo]:
        """The association classes, in definition order (computed once per change of the registry)."""
        if self._associations is None:
            self._associations = [c for c in self.classes.values() if c.is_association]
        return self._associations

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def get(self, class_name: str | None) -> ClassInfo:
        info = self.classes.get(class_name.lower()) if isinstance(class_name, str) else None
        if info is None:
            raise MIError(MIResult.INVALID_CLASS, f"class {class_name!r} does not exist in namespace {self.name}")
        return info

    def add(self, declared: Class, resolved: Class) -> ClassInfo:
        low = declared.name.lower()
        old = self.classes.get(low)
        info = ClassInfo(declared, resolved)
        self.queries.clear()
        if old is not None:
            info.provider = old.provider
        parent_info = self.classes.get((declared.superclass or "").lower())
        if parent_info is not None:
            info.lineage = parent_info.lineage | {low}
            if parent_info.keys and [p.name.lower() for p in parent_info.keys] == [p.name.lower() for p in info.keys]:
                info.key_root = parent_info.key_root
        self.classes[low] = info
        self.changed()
        parent = (declared.superclass or "").lower()
        siblings = self.children.setdefault(parent, [])
        if low not in siblings:
            siblings.append(low)
        self.children.setdefault(low, [])
        return info

    def remove(self, class_name: str) -> None:
        info = self.get(class_name)
        self.queries.clear()
        parent = (info.declared.superclass or "").lower()
        self.children.get(parent, []).remove(info.low)
        self.children.pop(info.low, None)
        del self.classes[info.low]
        self.changed()

    def descendants(self, low: str, deep: bool = True) -> Iterator[ClassInfo]:
        """Subclasses of ``low`` ("" for the roots) in definition order, depth first."""
        # a snapshot of each level: another thread may define or delete classes meanwhile
        for child in tuple(self.children.get(low, ())):
            info = self.classes.get(child)
            if info is None:
                continue
            yield info
            if deep:
                yield from self.descendants(child)

"""Typed results for remote sessions: a per-session cache of class declarations fetched with GetClass
over WS-Man, and the typing of instances with them, as Windows MI does over WinRM.

WS-Man carries values as text; without the class a client cannot tell ``7`` (uint32) from ``"7"``, a
datetime from a string, or which properties are keys. A remote session asks the server for each class
once (:class:`ClassCache`), then types what comes back: the instance, the embedded instances and
references inside it (their keys too), and a method's out-parameters. Where the server refuses GetClass
(a fault), the class is remembered as unknown and values stay as the wire gave them. A class sent
without its inherited elements (a server that ignores IncludeInheritedElements) is completed from its
superclasses, fetched the same way.

The cache does no I/O itself: :meth:`ClassCache.missing` names the classes an item needs, the session's
driver (blocking or asyncio) fetches them with :func:`openmi.protocol.wsman.operations.get_class_request`,
and :meth:`ClassCache.typed` applies them.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from ..cim.classes import Class, resolve_class
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.types import MIFlag, MIResult
from ..protocol.wsman.classxml import has_inherited_elements
from ..protocol.wsman.values import WireError, apply_class, parameters_class

_KEY: Final = int(MIFlag.KEY)
MAX_DEPTH: Final = 16  # nesting of embedded instances and references followed when typing

Key = tuple[str, str]


def _key(namespace: str | None, name: str) -> Key:
    return ((namespace or "").lower(), name.lower())


class ClassCache:
    """Class declarations a session has fetched, by (namespace, class name); None marks a class the
    server would not give. Shared by the session's operations (thread-safe); :meth:`clear` on close."""

    def __init__(self) -> None:
        self._classes: dict[Key, Class | None] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._classes.clear()

    def get(self, namespace: str | None, name: str) -> Class | None:
        return self._classes.get(_key(namespace, name))

    def put(self, namespace: str | None, name: str, cls: Class | None) -> None:
        with self._lock:
            self._classes[_key(namespace, name)] = cls

    # --- what an item needs ------------------------------------------------------------------------
    def missing(self, item: Any, namespace: str | None, record: Any = None) -> list[Key]:
        """The classes (namespace, name) not yet cached that typing ``item`` needs, in fetch order. Call
        again after fetching: a class may name superclasses or other classes in turn."""
        out: list[Key] = []
        seen: set[Key] = set()

        def want(ns: str | None, name: str | None) -> None:
            if not name or name.startswith("__"):
                return
            k = _key(ns, name)
            if k in seen:
                return
            seen.add(k)
            if k not in self._classes:
                out.append((ns or "", name))
                return
            cls = self._classes[k]
            if cls is not None and not has_inherited_elements(cls) and cls.superclass:
                want(ns, cls.superclass)

        def walk(inst: Instance, ns: str | None, depth: int) -> None:
            if depth > MAX_DEPTH:
                return
            here = inst.namespace or ns
            want(here, inst.class_name)
            for el in inst._elements.values():
                v = el.value
                if isinstance(v, Instance):
                    walk(v, here, depth + 1)
                elif type(v) is list:
                    for x in v:
                        if isinstance(x, Instance):
                            walk(x, here, depth + 1)

        if isinstance(item, Class):
            if getattr(record, "class_names_only", False):
                return out  # names only: nothing to complete
            if not has_inherited_elements(item) and item.superclass:
                want(item.namespace or namespace, item.superclass)
        elif isinstance(item, Instance):
            if item.class_name == "__parameters" and record is not None:
                want(namespace, getattr(record, "class_name", None) or _target_class(record))
            walk(item, namespace, 0)
        return out

    def complete(self, cls: Class | None, namespace: str | None, depth: int = 0) -> Class | None:
        """``cls`` with its inherited elements (joined from cached superclasses when the server left them
        out); unchanged when a superclass is unknown."""
        if cls is None or has_inherited_elements(cls) or not cls.superclass or depth > 64:
            return cls
        parent = self.complete(self.get(namespace, cls.superclass), namespace, depth + 1)
        if parent is None:
            return cls
        out = resolve_class(cls, parent)
        out.namespace = cls.namespace
        return out

    def ready(self, item: Any, namespace: str | None) -> bool:
        """Whether ``item`` is already what :meth:`typed` would make of it: an instance the codec read
        with its (complete) class, holding no nested instances. The common case, checked cheaply."""
        if not isinstance(item, Instance):
            return False
        cls = self._classes.get(_key(item.namespace or namespace, item.class_name))
        if cls is None or not has_inherited_elements(cls):
            return False
        for el in item._elements.values():
            v = el.value
            if isinstance(v, Instance) or (type(v) is list and v and isinstance(v[0], Instance)):
                return False
        return _typed_already(item, cls)

    # --- typing ------------------------------------------------------------------------------------
    def typed(self, item: Any, namespace: str | None, record: Any = None) -> Any:
        """``item`` typed with the cached classes: an instance's values in their declared types and its
        keys marked; an invoke's out-parameters typed by the method; a class completed. Raises MIError
        (FAILED) naming the property when a value does not fit the type its class declares."""
        if isinstance(item, Class):
            if getattr(record, "class_names_only", False):
                return item
            done = self.complete(item, item.namespace or namespace)
            return done if done is not None else item
        if not isinstance(item, Instance):
            return item
        try:
            if item.class_name == "__parameters" and record is not None:
                return self._parameters(item, namespace, record)
            return self._instance(item, namespace, 0)
        except WireError as exc:
            raise MIError(MIResult.FAILED, f"{item.class_name}: a value does not fit the class the server "
                                           f"declares: {exc}") from None

    def _class(self, namespace: str | None, name: str) -> Class | None:
        return self.complete(self.get(namespace, name), namespace)

    def _instance(self, inst: Instance, namespace: str | None, depth: int) -> Instance:
        here = inst.namespace or namespace
        if depth < MAX_DEPTH:
            for el in inst._elements.values():  # nested ones first: apply_class keeps instance values as they are
                v = el.value
                if isinstance(v, Instance) or (type(v) is list and v and isinstance(v[0], Instance)):
                    el.value = self._nested(v, here, depth)
        cls = self._class(here, inst.class_name)
        if cls is None or _typed_already(inst, cls):
            return inst
        out = apply_class(inst, cls)
        out.server_name = inst.server_name
        return out

    def _nested(self, value: Any, namespace: str | None, depth: int) -> Any:
        if isinstance(value, Instance):
            return self._instance(value, namespace, depth + 1)
        if isinstance(value, list) and any(isinstance(v, Instance) for v in value):
            return [self._instance(v, namespace, depth + 1) if isinstance(v, Instance) else v for v in value]
        return value

    def _parameters(self, params: Instance, namespace: str | None, record: Any) -> Instance:
        cls = self._class(namespace, getattr(record, "class_name", None) or _target_class(record) or "")
        method = cls.methods.get(getattr(record, "method_name", None) or "") if cls is not None else None
        for el in params.elements:
            el.value = self._nested(el.value, namespace, 0)
        if method is None:
            return params
        return apply_class(params, parameters_class(method, output=True))


def _typed_already(inst: Instance, cls: Class) -> bool:
    """Whether every element has its property's type and key flag (the codec read it with the class)."""
    props = cls.properties._items  # a hot path: the raw {lower name: property} dict, int flags
    for low, el in inst._elements.items():
        p = props.get(low)
        if p is None or el.type is not p.type or (el._flags & _KEY) != (int(p.flags) & _KEY):
            return False
    return True


def _target_class(record: Any) -> str | None:
    target = getattr(record, "instance", None)
    return target.class_name if isinstance(target, Instance) else None


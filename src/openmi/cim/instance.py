"""Instance: a CIM instance (MI_Instance) as an ordered, case-insensitive mapping of typed elements.

An element has a name, a value, an MI type and flags (``KEY`` …). A *dynamic* instance
(``Application.new_instance``) takes any element; one made from a class (``new_instance_from_class``)
starts with the class's properties and their defaults and takes only those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import MIError
from .types import MIFlag, MIResult, MIType
from .values import coerce, format_scalar, infer_type, values_equal

if TYPE_CHECKING:
    from .classes import Class


_NOT_NULL = ~int(MIFlag.NULL)
_KEY = int(MIFlag.KEY)
_I = TypeVar("_I", bound="Instance")


class Element:
    """One element of an instance: name, value, MI type and flags (``MIFlag.NULL`` when the value is None)."""

    __slots__ = ("_flags", "name", "type", "value")

    def __init__(self, name: str, value: Any, type: MIType, flags: int = 0) -> None:
        self.name = name
        self.value = value
        self.type = type
        self._flags = int(flags) & _NOT_NULL

    @property
    def flags(self) -> MIFlag:
        f = MIFlag(self._flags)
        return f | MIFlag.NULL if self.value is None else f

    @property
    def key(self) -> bool:
        return bool(self._flags & MIFlag.KEY)

    def __iter__(self) -> Iterator[Any]:  # name, value, type, flags: unpacks like MI_Instance_GetElement
        return iter((self.name, self.value, self.type, self.flags))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return (self.name.lower() == other.name.lower() and self.type == other.type
                and self.key == other.key and values_equal(self.value, other.value))

    def __repr__(self) -> str:
        key = " key" if self.key else ""
        return f"Element({self.name!r}, {self.value!r}, {MIType(self.type).name}{key})"


_new_element = object.__new__


def stored_element(name: str, value: Any, type: MIType, flags: int) -> Element:
    """An Element from parts already in shape (``flags`` an int holding no ``MIFlag.NULL``), as the repository
    builds thousands per enumeration: the same object as ``Element(...)`` gives, without the checks."""
    el: Element = _new_element(Element)
    el.name = name
    el.value = value
    el.type = type
    el._flags = flags
    return el


def layout_elements(layout: Iterable[tuple[str, str, MIType]], get: Callable[[str], Any]) -> dict[str, Element]:
    """Elements (flags 0) for each ``(lower-case name, name, type)`` of a layout, each value ``get(name)`` and
    already in shape: a dict for :meth:`Instance.from_elements`. The engine's indication instances use it,
    a dozen elements each; one loop with no call per element costs a quarter less than ``stored_element``."""
    out: dict[str, Element] = {}
    for low, name, t in layout:
        out[low] = el = _new_element(Element)
        el.name = name
        el.value = get(name)
        el.type = t
        el._flags = 0
    return out


class Instance(MutableMapping[str, Any]):
    """A CIM instance. ``inst["Name"]`` reads and writes element values; names ignore case."""

    __slots__ = ("_cls", "_elements", "class_name", "namespace", "server_name")

    def __init__(
        self,
        class_name: str,
        properties: Mapping[str, Any] | None = None,
        *,
        namespace: str | None = None,
        server_name: str | None = None,
        cls: Class | None = None,
    ) -> None:
        if not isinstance(class_name, str) or not class_name:
            raise ValueError("an instance needs a class name")
        self.class_name = class_name
        self.namespace = namespace
        self.server_name = server_name
        self._elements: dict[str, Element] = {}
        self._cls = cls
        if cls is not None:
            for p in cls.properties.values():
                value = p.value
                if isinstance(value, list):
                    value = list(value)
                self._elements[p.name.lower()] = Element(p.name, value, p.type, p.flags & MIFlag.KEY)
        if properties:
            for name, value in properties.items():
                self[name] = value

    @classmethod
    def from_elements(cls: type[_I], class_name: str, elements: Iterable[Element] | dict[str, Element] = (), *,
                      namespace: str | None = None) -> _I:
        """A dynamic instance holding ``elements`` as they are: already typed, so nothing is coerced.

        The fast path of the repository and the codecs. ``elements`` may be a dict keyed by each
        element's lower-cased name, which the instance then adopts (no copy): pass one nobody else
        changes. An element named twice keeps the last.
        """
        inst = cls.__new__(cls)
        inst.class_name = class_name
        inst.namespace = namespace
        inst.server_name = None
        inst._elements = elements if isinstance(elements, dict) else {el.name.lower(): el for el in elements}
        inst._cls = None
        return inst


    # --- MI_Instance functions ----------------------------------------------------------------
    def add_element(self, name: str, value: Any, type: MIType | int | None = None, flags: int = 0) -> None:
        """Add an element (MI_Instance_AddElement); ALREADY_EXISTS if the name is taken."""
        if not isinstance(name, str) or not name:
            raise ValueError("an element needs a name")
        low = name.lower()
        if low in self._elements:
            raise MIError(MIResult.ALREADY_EXISTS, f"element {name!r} already exists in {self.class_name}")
        if self._cls is not None and name not in self._cls.properties:
            raise MIError(MIResult.NO_SUCH_PROPERTY, f"class {self._cls.name} has no property {name!r}")
        t = MIType(type) if type is not None else self._type_for(name, value)
        self._elements[low] = Element(name, coerce(value, t, name), t, int(flags))

    def put_element(self, element: Element) -> None:
        """Add an element, or replace the one of the same name, as given (typed already; not coerced).

        An instance made from a class still takes only the class's properties (NO_SUCH_PROPERTY).
        """
        if self._cls is not None and element.name not in self._cls.properties:
            raise MIError(MIResult.NO_SUCH_PROPERTY, f"class {self._cls.name} has no property {element.name!r}")
        self._elements[element.name.lower()] = element

    def set_element(self, name: str, value: Any, type: MIType | int | None = None) -> None:
        """Change an existing element's value (MI_Instance_SetElement); the type must match if given."""
        el = self._elements.get(name.lower())
        if el is None:
            raise MIError(MIResult.NO_SUCH_PROPERTY, f"{self.class_name} has no element {name!r}")
        if type is not None and MIType(type) != el.type:
            raise TypeError(f"element {name!r} is {MIType(el.type).name}, not {MIType(type).name}")
        el.value = coerce(value, el.type, el.name)

    def get_element(self, name: str) -> Element:
        el = self._elements.get(name.lower())
        if el is None:
            raise KeyError(name)
        return el

    def clear_element(self, name: str) -> None:
        """Set an element to NULL (MI_Instance_ClearElement)."""
        self.get_element(name).value = None

    @property
    def elements(self) -> list[Element]:
        return list(self._elements.values())

    @property
    def element_count(self) -> int:
        return len(self._elements)

    def get_class_name(self) -> str:
        return self.class_name

    @property
    def cls(self) -> Class | None:
        """The class this instance was made from, if any."""
        return self._cls

    # --- mapping protocol ---------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        el = self._elements.get(name.lower()) if isinstance(name, str) else None
        if el is None:
            raise KeyError(name)
        return el.value

    def __setitem__(self, name: str, value: Any) -> None:
        el = self._elements.get(name.lower())
        if el is not None:
            el.value = coerce(value, el.type, el.name)
            return
        self.add_element(name, value, None, self._flags_for(name))

    def __delitem__(self, name: str) -> None:
        del self._elements[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (el.name for el in self._elements.values())

    def __len__(self) -> int:
        return len(self._elements)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._elements

    # --- keys and paths ------------------------------------------------------------------------
    @property
    def key_elements(self) -> list[Element]:
        return [el for el in self._elements.values() if el._flags & _KEY]

    def keys_only(self) -> Instance:
        """A copy holding only the key elements (an instance name)."""
        return Instance.from_elements(
            self.class_name,
            {k: Element(el.name, _copy_value(el.value), el.type, el._flags)
             for k, el in self._elements.items() if el._flags & _KEY},
            namespace=self.namespace,
        )

    @property
    def path(self) -> str:
        """``Class.Key1="v",Key2=5`` (WMI style; namespace-qualified when the namespace is set)."""
        keys = ",".join(f"{el.name}={_path_value(el)}" for el in self.key_elements)
        rel = f"{self.class_name}.{keys}" if keys else self.class_name
        return f"{self.namespace}:{rel}" if self.namespace else rel

    def clone(self) -> Instance:
        inst = Instance.from_elements(
            self.class_name,
            {k: Element(el.name, _copy_value(el.value), el.type, el._flags) for k, el in self._elements.items()},
            namespace=self.namespace,
        )
        inst.server_name = self.server_name
        inst._cls = self._cls
        return inst

    def __copy__(self) -> Instance:
        return self.clone()

    def __deepcopy__(self, memo: dict[int, Any]) -> Instance:
        return self.clone()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instance):
            return NotImplemented
        return (self.class_name.lower() == other.class_name.lower()
                and self._elements.keys() == other._elements.keys()
                and all(el == other._elements[k] for k, el in self._elements.items()))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        body = ", ".join(f"{el.name}={el.value!r}" for el in self._elements.values())
        return f"Instance({self.class_name}{': ' if body else ''}{body})"

    # --- internals ---------------------------------------------------------------------------
    def _type_for(self, name: str, value: Any) -> MIType:
        if self._cls is not None:
            p = self._cls.properties.get(name)
            if p is not None:
                return p.type
        return infer_type(value, name)

    def _flags_for(self, name: str) -> int:
        if self._cls is not None:
            p = self._cls.properties.get(name)
            if p is not None:
                return int(p.flags & MIFlag.KEY)
        return 0


def _copy_value(value: Any) -> Any:
    if isinstance(value, list):
        return [v.clone() if isinstance(v, Instance) else v for v in value]
    if isinstance(value, Instance):
        return value.clone()
    return value


_EMBEDDED = frozenset({MIType.REFERENCE, MIType.INSTANCE})
_QUOTED = frozenset({MIType.STRING, MIType.CHAR16, MIType.DATETIME})
_NOT_PLAIN = _QUOTED | {MIType.BOOLEAN}


def _path_value(el: Element) -> str:
    v = el.value
    if v is None:
        return "NULL"
    t = el.type
    if type(v) is int and t not in _NOT_PLAIN:  # the common integer key
        return str(v)
    t = MIType(t)
    if t in _EMBEDDED and isinstance(v, Instance):
        inner = v.path.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{inner}"'
    if t in _QUOTED:
        s = format_scalar(v, t).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'
    if t == MIType.BOOLEAN:
        return "TRUE" if v else "FALSE"
    return format_scalar(v, t)

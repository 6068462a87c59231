"""Reference values and object paths: the one parser and printer of instance paths in openmi.

A reference property holds a :class:`Reference`: the path of one instance (server, namespace, class and
key bindings). It is an :class:`Instance` holding only keys, so everything that reads instances reads it
too, and it adds ``.keys`` (the key bindings as a mapping) and the path forms.

Paths parse and print in two forms:

- WMI (MS-WMI §2.2.2, ``__PATH``/``__RELPATH``): ``\\\\server\\root\\cimv2:Class.Key="v",N=5``,
  namespace-relative ``root\\cimv2:Class.Key="v"``, relative ``Class.Key="v"``, singleton ``Class=@``;
- DMTF (DSP0004 object paths, the form MOF and CIM-XML tools write): ``//server/root/cimv2:Class.Key="v"``.

String keys are in double quotes with ``\\"`` and ``\\\\`` escapes (so a quoted key may hold commas, dots,
colons and whole nested paths); numbers, ``TRUE``/``FALSE`` stand bare. :func:`parse_object_path` reads
either form (and single-quoted strings); which separator the namespace uses does not matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, KeysView, Mapping
from typing import Any

from .instance import Element, Instance
from .types import INTEGER_RANGES, MIFlag, MIType
from .values import format_scalar, values_equal

_KEY = int(MIFlag.KEY)
_NS_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class KeyBindings(Mapping[str, Any]):
    """A reference's key bindings: ``{name: value}``, names case-insensitive, in path order.

    Calling it (``ref.keys()``) gives the key names, as ``Mapping.keys()`` does for any Instance.
    """

    __slots__ = ("_elements",)

    def __init__(self, elements: dict[str, Element]) -> None:
        self._elements = elements

    def __getitem__(self, name: str) -> Any:
        el = self._elements.get(name.lower()) if isinstance(name, str) else None
        if el is None:
            raise KeyError(name)
        return el.value

    def __iter__(self) -> Iterator[str]:
        return (el.name for el in self._elements.values())

    def __len__(self) -> int:
        return len(self._elements)

    def __call__(self) -> KeysView[str]:
        return KeysView(self)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{el.name!r}: {el.value!r}" for el in self._elements.values()) + "}"


class Reference(Instance):
    """The value of a reference property: the path of one instance (its keys only).

    ``ref.class_name``, ``ref.namespace``, ``ref.server_name``, ``ref.keys`` (a mapping), ``ref.path``
    (``root/cimv2:Class.Key="v"``), ``str(ref)`` (the WMI form, ``\\\\server\\root\\cimv2:…`` when a
    server is known), :meth:`wmi_path` and :meth:`dmtf_path`. ``Reference.parse(text)`` reads either form.
    """

    __slots__ = ()

    @classmethod
    def of(cls, inst: Instance) -> Reference:
        """The path of ``inst``: its key elements (every element when none is marked as a key)."""
        if type(inst) is Reference:
            return inst
        src = inst._elements
        keyed = {k: el for k, el in src.items() if el._flags & _KEY}
        chosen = keyed or src
        elements = {k: Element(el.name, _ref_value(el.value, el.type), el.type, _KEY) for k, el in chosen.items()}
        ref = new_reference(inst.class_name, inst.namespace, elements)
        ref.server_name = inst.server_name
        return ref

    @classmethod
    def parse(cls, text: str) -> Reference:
        return parse_object_path(text)

    @property
    def keys(self) -> KeyBindings:  # a mapping that is also callable, so Mapping.keys() keeps working
        return KeyBindings(self._elements)

    def wmi_path(self) -> str:
        """``\\\\server\\root\\cimv2:Class.Key="v"`` (as much of it as is known)."""
        return format_object_path(self, "wmi")

    def dmtf_path(self) -> str:
        """``//server/root/cimv2:Class.Key="v"`` (as much of it as is known)."""
        return format_object_path(self, "dmtf")

    def keys_only(self) -> Reference:
        return self.clone()

    def clone(self) -> Reference:
        ref = new_reference(
            self.class_name, self.namespace,
            {k: Element(el.name, el.value.clone() if isinstance(el.value, Instance) else el.value, el.type,
                        el._flags) for k, el in self._elements.items()})
        ref.server_name = self.server_name
        return ref

    def __eq__(self, other: object) -> bool:
        """Two paths are equal when they name the same instance: class (any case), key values, and the
        namespace when both give one. Key types do not matter (a parsed ``N=5`` equals a uint32 5)."""
        if not isinstance(other, Instance):
            return NotImplemented
        o = Reference.of(other)
        if self.class_name.lower() != o.class_name.lower():
            return False
        if self.namespace and o.namespace and self.namespace.lower() != o.namespace.lower():
            return False
        mine, theirs = self._elements, o._elements
        return mine.keys() == theirs.keys() and all(values_equal(el.value, theirs[k].value)
                                                    for k, el in mine.items())

    __hash__ = None

    def __str__(self) -> str:
        return self.wmi_path()

    def __repr__(self) -> str:
        return f"Reference({self.wmi_path()!r})"


def new_reference(class_name: str, namespace: str | None, elements: dict[str, Element]) -> Reference:
    """A Reference from elements already checked (``{lower name: Element}``, each a key)."""
    return Reference.from_elements(class_name, elements, namespace=namespace)


def _ref_value(value: Any, t: int) -> Any:
    if isinstance(value, Instance) and (t & 0x0F) == MIType.REFERENCE:
        return Reference.of(value)
    return value


def as_reference(value: Any) -> Any:
    """A reference value in its canonical form: any Instance becomes a :class:`Reference`."""
    if isinstance(value, Instance) and type(value) is not Reference:
        return Reference.of(value)
    return value


# --- printing -------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def key_text(el: Element, style: str = "wmi") -> str:
    """One key value as a path writes it."""
    v = el.value
    if v is None:
        return "NULL"
    t = MIType(el.type).scalar
    if isinstance(v, Instance):
        return _quote(format_object_path(v, style))
    if t == MIType.BOOLEAN:
        return "TRUE" if v else "FALSE"
    if t in (MIType.STRING, MIType.CHAR16, MIType.DATETIME):
        return _quote(format_scalar(v, t))
    return format_scalar(v, t)


def relative_path(inst: Instance, style: str = "wmi") -> str:
    """``Class.K1="v",K2=5``; ``Class=@`` for an instance of a keyless (singleton) class."""
    keys = [el for el in inst._elements.values() if el._flags & _KEY]
    if not keys:
        return f"{inst.class_name}=@"
    return inst.class_name + "." + ",".join(f"{el.name}={key_text(el, style)}" for el in keys)


def format_object_path(inst: Instance, style: str = "wmi") -> str:
    """The path of an instance (its key elements) in the WMI (``\\\\srv\\ns:…``) or DMTF (``//srv/ns:…``) form."""
    if style not in ("wmi", "dmtf"):
        raise ValueError(f"an object path style is 'wmi' or 'dmtf', not {style!r}")
    rel = relative_path(inst, style)
    ns = inst.namespace
    server = inst.server_name
    if style == "wmi":
        ns_text = ns.replace("/", "\\") if ns else None
        if server:
            return f"\\\\{server}\\{ns_text or 'root'}:{rel}" if ns_text else f"\\\\{server}:{rel}"
        return f"{ns_text}:{rel}" if ns_text else rel
    ns_text = ns.replace("\\", "/") if ns else None
    if server:
        return f"//{server}/{ns_text}:{rel}" if ns_text else f"//{server}:{rel}"
    return f"{ns_text}:{rel}" if ns_text else rel


# --- parsing --------------------------------------------------------------------------------------


def _fail(text: str, why: str) -> ValueError:
    return ValueError(f"{text!r} is not an object path: {why}")


def _find_unquoted(s: str, chars: str, start: int = 0) -> int:
    """Index of the first of ``chars`` outside double or single quotes, or -1."""
    quote = ""
    i = start
    n = len(s)
    while i < n:
        c = s[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in chars:
            return i
        i += 1
    return -1


def _is_name(s: str) -> bool:
    return bool(s) and (s[0].isalpha() or s[0] == "_") and all(c.isalnum() or c == "_" for c in s)


def parse_object_path(text: str) -> Reference:
    """Parse a WMI or DMTF object path into a :class:`Reference` (``ValueError`` naming what is wrong).

    Key values come back as strings (quoted), ``SINT64``/``REAL64`` numbers, or booleans; the engine gives
    them the types the class declares.
    """
    if not isinstance(text, str):
        raise TypeError(f"an object path is a string, not {type(text).__name__}")
    s = text.strip()
    server: str | None = None
    if s[:2] in ("\\\\", "//"):
        # the server runs to the namespace's first separator (it may carry a port: //host:5985/root…)
        end = min((i for i in (s.find("\\", 2), s.find("/", 2)) if i >= 0), default=-1)
        if end < 0:
            end = _find_unquoted(s, ":", 2)
        if end < 0:
            raise _fail(text, "a path that names a server needs a namespace or class after it")
        server = s[2:end]
        s = s[end + 1:] if s[end] != ":" else s[end:]
        if not server:
            raise _fail(text, "the server name is empty")
    namespace: str | None = None
    colon = _find_unquoted(s, ":")
    first_key = _find_unquoted(s, ".=")
    if colon >= 0 and (first_key < 0 or colon < first_key):
        raw_ns = s[:colon]
        namespace = raw_ns.replace("\\", "/").strip("/") or None
        s = s[colon + 1:]
        if namespace is not None and not all(_NS_SEGMENT.match(part) for part in namespace.split("/")):
            raise _fail(text, f"{raw_ns!r} is not a namespace")
    sep = _find_unquoted(s, ".=")
    class_name = (s if sep < 0 else s[:sep]).strip()
    if not _is_name(class_name):
        raise _fail(text, "it names no class" if not class_name else f"{class_name!r} is not a class name")
    elements: dict[str, Element] = {}
    if sep >= 0 and s[sep] == "=":
        if s[sep + 1:].strip() != "@":
            raise _fail(text, "after 'Class=' only '@' (a singleton) may follow")
    elif sep >= 0:
        _parse_keys(text, s[sep + 1:], elements)
        if not elements:
            raise _fail(text, "no key bindings after the '.'")
    ref = new_reference(class_name, namespace, elements)
    ref.server_name = server
    return ref


def _parse_keys(text: str, s: str, elements: dict[str, Element]) -> None:
    pos, n = 0, len(s)
    while pos < n:
        eq = s.find("=", pos)
        if eq < 0:
            raise _fail(text, f"the key binding {s[pos:]!r} has no '='")
        name = s[pos:eq].strip()
        if not _is_name(name):
            raise _fail(text, f"{name!r} is not a property name")
        if name.lower() in elements:
            raise _fail(text, f"key {name} is given twice")
        i = eq + 1
        while i < n and s[i].isspace():
            i += 1
        if i < n and s[i] in "\"'":
            quote = s[i]
            buf: list[str] = []
            i += 1
            while i < n and s[i] != quote:
                if s[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(s[i])
                i += 1
            if i >= n:
                raise _fail(text, f"the value of key {name} has no closing {quote}")
            value: Any = "".join(buf)
            mitype = MIType.STRING
            i += 1
            while i < n and s[i].isspace():
                i += 1
        else:
            end = s.find(",", i)
            end = n if end < 0 else end
            value, mitype = _bare_value(text, name, s[i:end].strip())
            i = end
        elements[name.lower()] = Element(name, value, mitype, _KEY)
        if i < n:
            if s[i] != ",":
                raise _fail(text, f"expected ',' after the value of key {name}, found {s[i:]!r}")
            i += 1
            if i >= n:
                raise _fail(text, "it ends with ','")
        pos = i


def _bare_value(text: str, name: str, raw: str) -> tuple[Any, MIType]:
    low = raw.lower()
    if low == "true":
        return True, MIType.BOOLEAN
    if low == "false":
        return False, MIType.BOOLEAN
    try:
        v = int(raw, 16) if low.startswith(("0x", "-0x", "+0x")) else int(raw, 10)
        return v, (MIType.UINT64 if v > INTEGER_RANGES[MIType.SINT64][1] else MIType.SINT64)
    except ValueError:
        pass
    try:
        return float(raw), MIType.REAL64
    except ValueError:
        raise _fail(text, f"the value {raw!r} of key {name} is neither quoted nor a number or boolean") from None

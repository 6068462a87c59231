"""omicli's brace syntax for instances: ``{ Sample_Person Id 7 Name "Ada" Tags [ a b ] Owner { X_Ref Key 1 } }``.

After ``{`` comes the class name, then name/value pairs. A plain value is a string, ``[ a b ]`` a string
array, a nested ``{ … }`` an instance (a reference where names are keys). Where an instance names
another (``keys=True``, omicli's instance-name contexts) every property is a key unless its name is
prefixed with ``*``. Input is either one string (quotes group words) or an argv list (one token per
word, as omicli receives it).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..instance import Element, Instance
from ..types import MIFlag, MIType
from ..values import format_scalar


class BraceError(ValueError):
    """Malformed brace syntax; ``position`` is the 1-based column (string input) or argument index (argv)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


_SPECIAL = frozenset("{}[]")


def _split(text: str) -> list[tuple[str, bool, int]]:
    """(token, was quoted, 1-based column) for each word; ``{ } [ ]`` stand alone unless quoted."""
    out: list[tuple[str, bool, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c in _SPECIAL:
            out.append((c, False, start + 1))
            i += 1
            continue
        if c in "\"'":
            quote = c
            i += 1
            buf = []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(text[i])
                i += 1
            if i >= n:
                raise BraceError(f"column {start + 1}: the quoted value has no closing {quote}", start + 1)
            i += 1
            out.append(("".join(buf), True, start + 1))
            continue
        while i < n and not text[i].isspace() and text[i] not in _SPECIAL:
            i += 1
        out.append((text[start:i], False, start + 1))
    return out


class _Reader:
    def __init__(self, tokens: list[tuple[str, bool, int]], argv: bool) -> None:
        self.tokens = tokens
        self.i = 0
        self.argv = argv

    def _where(self, index: int) -> tuple[str, int]:
        if index >= len(self.tokens):
            pos = (len(self.tokens) + 1) if self.argv else (self.tokens[-1][2] + len(self.tokens[-1][0])
                                                             if self.tokens else 1)
            return ("argument" if self.argv else "column") + f" {pos}", pos
        pos = index + 1 if self.argv else self.tokens[index][2]
        return ("argument" if self.argv else "column") + f" {pos}", pos

    def fail(self, expected: str, index: int | None = None) -> BraceError:
        i = self.i if index is None else index
        where, pos = self._where(i)
        found = f"{self.tokens[i][0]!r}" if i < len(self.tokens) else "the end"
        return BraceError(f"{where}: expected {expected}, found {found}", pos)

    def peek(self) -> tuple[str, bool, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def is_punct(self, ch: str) -> bool:
        t = self.peek()
        return t is not None and not t[1] and t[0] == ch

    def instance(self, keys: bool) -> Instance:
        if not self.is_punct("{"):
            raise self.fail("'{'")
        self.i += 1
        t = self.peek()
        if t is None or t[1] or not t[0] or t[0] in _SPECIAL or not (t[0][0].isalpha() or t[0][0] == "_"):
            raise self.fail("a class name")
        class_name = t[0]
        self.i += 1
        elements: dict[str, Element] = {}
        while True:
            t = self.peek()
            if t is None:
                raise self.fail("a property name or '}'")
            if not t[1] and t[0] == "}":
                self.i += 1
                return Instance.from_elements(class_name, elements)
            if t[1] or t[0] in _SPECIAL:
                raise self.fail("a property name or '}'")
            name = t[0]
            is_key = keys
            if name.startswith("*"):
                name, is_key = name[1:], False
            if not name or not (name[0].isalpha() or name[0] == "_"):
                raise self.fail("a property name")
            if name.lower() in elements:
                raise self.fail(f"a property other than {name} (it is given twice)")
            self.i += 1
            value, mitype = self.value(keys)
            elements[name.lower()] = Element(name, value, mitype, MIFlag.KEY if is_key else 0)

    def value(self, keys: bool) -> tuple[object, MIType]:
        t = self.peek()
        if t is None:
            raise self.fail("a value")
        if not t[1] and t[0] == "{":
            return self.instance(keys), (MIType.REFERENCE if keys else MIType.INSTANCE)
        if not t[1] and t[0] == "[":
            self.i += 1
            items: list[object] = []
            kind: MIType | None = None
            while True:
                t = self.peek()
                if t is None:
                    raise self.fail("a value or ']'")
                if not t[1] and t[0] == "]":
                    self.i += 1
                    break
                if not t[1] and t[0] == "{":
                    this = MIType.REFERENCE if keys else MIType.INSTANCE
                    item: object = self.instance(keys)
                else:
                    if not t[1] and t[0] in _SPECIAL:
                        raise self.fail("a value or ']'")
                    this = MIType.STRING
                    item = t[0]
                    self.i += 1
                if kind is not None and kind != this:
                    raise self.fail("array items of one kind (all strings or all instances)", self.i - 1)
                kind = this
                items.append(item)
            return items, (kind or MIType.STRING).array
        if not t[1] and t[0] in _SPECIAL:
            raise self.fail("a value")
        self.i += 1
        return t[0], MIType.STRING


def parse_brace(source: str | Sequence[str], keys: bool = True) -> Instance:
    """Read an instance written in brace syntax, from one string or an argv list.

    Raises :class:`BraceError` naming the column (string) or argument number (argv) at fault.
    """
    if isinstance(source, str):
        reader = _Reader(_split(source), argv=False)
    else:
        reader = _Reader([(str(word), False, 0) for word in source], argv=True)
    inst = reader.instance(keys)
    if reader.i != len(reader.tokens):
        raise reader.fail("the end (the instance is complete)")
    return inst


def _word(text: str) -> str:
    if text and not any(c.isspace() or c in "{}[]\"'\\" for c in text) and not text.startswith("*"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value_words(value: object, t: MIType) -> str:
    s = MIType(t & 0x0F)
    if s in (MIType.INSTANCE, MIType.REFERENCE):
        if t & 0x10:
            return "[ " + " ".join(format_brace(v) for v in value) + " ]"  # type: ignore[attr-defined]
        return format_brace(value)  # type: ignore[arg-type]
    if t & 0x10:
        return "[ " + " ".join(_word(format_scalar(v, s)) for v in value) + " ]"  # type: ignore[attr-defined]
    return _word(format_scalar(value, s))


def format_brace(inst: Instance) -> str:
    """The brace form of an instance: key elements plain, other elements prefixed with ``*``.

    NULL elements are left out (the syntax has no NULL). When the instance has no keys at all, no
    name is prefixed.
    """
    any_key = any(el.key for el in inst.elements)
    parts = ["{", _word(inst.class_name)]
    for el in inst.elements:
        if el.value is None:
            continue
        name = el.name if (el.key or not any_key) else "*" + el.name
        parts.append(name)
        parts.append(_value_words(el.value, MIType(el.type)))
    parts.append("}")
    return " ".join(parts)

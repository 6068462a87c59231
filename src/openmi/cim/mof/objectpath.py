"""Object paths written as strings in MOF (``"CIM_Disk.DeviceID=\\"C:\\",Sys=5"``): parse into key-only Instances.

Accepted forms: ``[//host/][namespace:]Class[.Key=value{,Key=value}]`` with string values in double
quotes (``\\"`` and ``\\\\`` escapes), numbers, TRUE/FALSE, and ``Class=@`` for a singleton.
"""

from __future__ import annotations

import re
from typing import Any

from ..instance import Element, Instance
from ..types import MIFlag, MIType

_KEY_RE = re.compile(r'\s*([^\W\d]\w*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(,|$)', re.S)


def parse_object_path(text: str) -> Instance:
    """Parse an object path into an Instance holding only its keys (ValueError when malformed)."""
    s = text.strip()
    server = None
    if s.startswith("//"):
        end = s.find("/", 2)
        if end < 0:
            raise ValueError(f"{text!r}: a path that names a host needs a namespace or class after it")
        server, s = s[2:end], s[end + 1:]
    namespace = None
    dot = s.find(".")
    colon = s.find(":", 0, dot if dot >= 0 else len(s))
    if colon >= 0:
        namespace, s = s[:colon], s[colon + 1:]
    dot = s.find(".")
    if dot < 0:
        class_name, keys = s, ""
        if "=" in s:
            class_name, _, rest = s.partition("=")
            if rest.strip() != "@":
                raise ValueError(f"{text!r} is not an object path")
    else:
        class_name, keys = s[:dot], s[dot + 1:]
    class_name = class_name.strip()
    if not class_name or not (class_name[0].isalpha() or class_name[0] == "_"):
        raise ValueError(f"{text!r} is not an object path: it names no class")
    elements: dict[str, Element] = {}
    pos = 0
    while pos < len(keys):
        m = _KEY_RE.match(keys, pos)
        if m is None:
            raise ValueError(f"{text!r}: cannot read a key binding at {keys[pos:]!r}")
        name, raw = m.group(1), m.group(2)
        value, mitype = _key_value(raw, text)
        elements[name.lower()] = Element(name, value, mitype, MIFlag.KEY)
        pos = m.end()
    inst = Instance.from_elements(class_name, elements, namespace=namespace)
    inst.server_name = server
    return inst


def _key_value(raw: str, text: str) -> tuple[Any, MIType]:
    raw = raw.strip()
    if raw.startswith('"'):
        body = re.sub(r"\\(.)", r"\1", raw[1:-1])
        return body, MIType.STRING
    low = raw.lower()
    if low == "true":
        return True, MIType.BOOLEAN
    if low == "false":
        return False, MIType.BOOLEAN
    try:
        if low.startswith(("0x", "-0x", "+0x")):
            return int(raw, 16), MIType.SINT64
        return int(raw), MIType.SINT64
    except ValueError:
        pass
    try:
        return float(raw), MIType.REAL64
    except ValueError:
        raise ValueError(f"{text!r}: {raw!r} is not a key value") from None


def format_object_path(inst: Instance) -> str:
    """The inverse of :func:`parse_object_path` (keys only)."""
    return inst.path if inst.server_name is None else f"//{inst.server_name}/{inst.path}"

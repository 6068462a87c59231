"""How classes, qualifier declarations and instance values are stored: compact JSON, typed by the class.

Instance rows keep only non-NULL values by property name (types come from the class); embedded
instances and references carry their own element types since their class may not be known.
"""

from __future__ import annotations

import datetime as _dt
import json
import json.encoder
import json.scanner
from typing import Any

from ..cim.classes import Class, Method, Parameter, Property, Qualifier, QualifierDecl
from ..cim.instance import Element, Instance
from ..cim.objectpath import Reference, new_reference
from ..cim.types import MIFlag, MIType
from ..cim.values import format_datetime, infer_type, parse_datetime

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True, check_circular=False)
_c_encode = getattr(json.encoder, "c_make_encoder", None)
if _c_encode is not None:
    # JSONEncoder.encode builds this C encoder again on every call; built once, a small row encodes in
    # about half the time (the same text: same separators, NaN allowed, no ASCII escaping)
    _c_encode = _c_encode(None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)

    def _dumps(value: Any) -> str:
        return "".join(_c_encode(value, 0))  # type: ignore[misc]
else:  # pragma: no cover - a Python without the C accelerator
    _dumps = _encoder.encode  # type: ignore[assignment]
_loads = json.loads

_DATETIME = MIType.DATETIME
_REFERENCE = MIType.REFERENCE
_INSTANCE = MIType.INSTANCE
_KEY = int(MIFlag.KEY)


def value_to_json(value: Any, t: int) -> Any:
    s = t & 0x0F
    if s == _DATETIME:
        if t & 0x10:
            return [format_datetime(v) for v in value]
        return format_datetime(value)
    if s == _REFERENCE or s == _INSTANCE:
        if t & 0x10:
            return [instance_to_json(v) for v in value]
        return instance_to_json(value)
    return value


def value_from_json(data: Any, t: int) -> Any:
    s = t & 0x0F
    if s == _DATETIME:
        if t & 0x10:
            return [parse_datetime(v) for v in data]
        return parse_datetime(data)
    if s == _REFERENCE:
        if t & 0x10:
            return [reference_from_json(v) for v in data]
        return reference_from_json(data)
    if s == _INSTANCE:
        if t & 0x10:
            return [instance_from_json(v) for v in data]
        return instance_from_json(data)
    if t & 0x10:
        return list(data)
    return data


def instance_to_json(inst: Instance) -> dict[str, Any]:
    return {
        "c": inst.class_name,
        "n": inst.namespace,
        "e": [[el.name, int(el.type), int(el._flags), None if el.value is None else value_to_json(el.value, el.type)]
              for el in inst._elements.values()],
    }


def instance_from_json(data: dict[str, Any]) -> Instance:
    elements: dict[str, Element] = {}
    for name, t, flags, value in data["e"]:
        mt = MIType(t)
        elements[name.lower()] = Element(name, None if value is None else value_from_json(value, mt), mt, flags)
    return Instance.from_elements(data["c"], elements, namespace=data.get("n"))


def reference_from_json(data: dict[str, Any]) -> Reference:
    elements: dict[str, Element] = {}
    for name, t, _flags, value in data["e"]:
        mt = MIType(t)
        if value is not None and (t & 0x0F) in (_DATETIME, _REFERENCE, _INSTANCE):
            value = value_from_json(value, mt)
        elements[name.lower()] = Element(name, value, mt, _KEY)
    return new_reference(data["c"], data.get("n"), elements)


def typed_value_to_json(value: Any) -> list[Any] | None:
    """A value whose type only the value itself tells (a method's return value as a provider gave it), with
    that type: ``[type, value]`` as :func:`value_to_json` writes it (None for NULL). A value no MI type fits
    travels as its text: CIM_InstMethodCall's ReturnValue, its one use, is a string anyway."""
    if value is None:
        return None
    try:
        t = int(infer_type(value))
    except TypeError:
        return [int(MIType.STRING), str(value)]
    return [t, value_to_json(value, t)]


def typed_value_from_json(data: list[Any] | None) -> Any:
    """The value :func:`typed_value_to_json` wrote (ValueError/TypeError for anything else)."""
    if data is None:
        return None
    t, value = data
    return None if value is None else value_from_json(value, MIType(t))


def encode_values(values: dict[str, tuple[Any, int]]) -> str:
    """Row data: ``{name: value}`` for the non-NULL values of a class-typed instance."""
    return _dumps({n: value_to_json(v, t) for n, (v, t) in values.items() if v is not None})


# The stored rows are this module's own compact JSON: scanned directly, without json.loads's wrapper
# layers (its whitespace checks) — a third of decoding a small row.
_scan_once: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def decode_values(text: str) -> dict[str, Any]:
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:  # not JSON where it starts: let json.loads say what is wrong
        return _loads(text)  # type: ignore[no-any-return]
    if end != len(text):  # trailing text: the same
        return _loads(text)  # type: ignore[no-any-return]
    return value  # type: ignore[no-any-return]


# --- classes ------------------------------------------------------------------------------------


def _quals(qs: Any) -> list[list[Any]]:
    return [[q.name, int(q.type), None if q.value is None else value_to_json(q.value, q.type), int(q.flavor)]
            for q in qs.values()]


def _unquals(data: list[list[Any]]) -> list[Qualifier]:
    return [Qualifier(n, None if v is None else value_from_json(v, t), MIType(t), MIFlag(f)) for n, t, v, f in data]


def class_to_json(cls: Class) -> str:
    """The class as declared (local elements only)."""
    props = []
    for p in cls.properties.values():
        props.append({
            "n": p.name, "t": int(p.type), "k": p.key,
            "v": None if p.value is None else value_to_json(p.value, p.type),
            "q": _quals(p.qualifiers), "r": p.reference_class, "e": p.embedded_class, "a": p.array_size,
        })
    methods = []
    for m in cls.methods.values():
        methods.append({
            "n": m.name, "t": int(m.return_type), "q": _quals(m.qualifiers),
            "p": [{"n": a.name, "t": int(a.type), "i": a.in_, "o": a.out, "q": _quals(a.qualifiers),
                   "r": a.reference_class, "e": a.embedded_class, "a": a.array_size} for a in m.parameters.values()],
        })
    return _dumps({"n": cls.name, "s": cls.superclass, "q": _quals(cls.qualifiers), "p": props, "m": methods})


def class_from_json(text: str) -> Class:
    d = _loads(text)
    props = [
        Property(p["n"], MIType(p["t"]), p["k"], None if p["v"] is None else value_from_json(p["v"], p["t"]),
                 qualifiers=_unquals(p["q"]), reference_class=p["r"], embedded_class=p["e"], array_size=p["a"])
        for p in d["p"]
    ]
    methods = [
        Method(m["n"], MIType(m["t"]), [
            Parameter(a["n"], MIType(a["t"]), in_=a["i"], out=a["o"], qualifiers=_unquals(a["q"]),
                      reference_class=a["r"], embedded_class=a["e"], array_size=a["a"]) for a in m["p"]
        ], qualifiers=_unquals(m["q"]))
        for m in d["m"]
    ]
    return Class(d["n"], d["s"], props, qualifiers=_unquals(d["q"]), methods=methods)


def qualifier_decl_to_json(q: QualifierDecl) -> str:
    return _dumps({"n": q.name, "t": int(q.type), "v": None if q.default is None else value_to_json(q.default, q.type),
                   "s": int(q.scope), "f": int(q.flavor), "a": q.array_size})


def qualifier_decl_from_json(text: str) -> QualifierDecl:
    d = _loads(text)
    return QualifierDecl(d["n"], MIType(d["t"]), None if d["v"] is None else value_from_json(d["v"], d["t"]),
                         MIFlag(d["s"]), MIFlag(d["f"]), d["a"])


def key_string(values: list[tuple[Any, int]]) -> str:
    """The canonical text of an instance's key values, in the class's key order."""
    if len(values) == 1:
        return _key_part(*values[0])
    return _dumps([_key_part(v, t) for v, t in values])


def _key_part(value: Any, t: int) -> str:
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (_dt.datetime, _dt.timedelta)):
        return format_datetime(value)
    if isinstance(value, Instance):
        return _dumps(sorted([el.name.lower(), _key_part(el.value, el.type)] for el in value.key_elements))
    return str(value)

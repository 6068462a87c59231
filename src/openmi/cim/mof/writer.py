"""Write qualifier declarations, classes and instances as MOF text that the compiler reads back equal.

A class is written as declared: its own elements and the qualifiers it states (propagated ones are
left out). Flavors are written only where they differ from the qualifier's declaration, so pass the
declarations (``qualifier_decls``) to keep explicit flavors; without them no flavor is written.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..classes import Class, Method, Parameter, Property, Qualifier, QualifierDecl
from ..instance import Instance
from ..types import MIFlag, MIType
from ..values import format_datetime
from .lexer import escape
from .objectpath import format_object_path

INDENT = "    "

_FLAVOR_WORDS = (
    (MIFlag.DISABLEOVERRIDE, "DisableOverride", "EnableOverride"),
    (MIFlag.RESTRICTED, "Restricted", "ToSubclass"),
)

DeclSource = Mapping[str, QualifierDecl] | Iterable[QualifierDecl] | None


def to_mof(obj: Class | Instance | QualifierDecl, *, qualifier_decls: DeclSource = None) -> str:
    """The MOF text of a class, an instance or a qualifier declaration (ending in a newline)."""
    decls = _decl_map(qualifier_decls)
    if isinstance(obj, QualifierDecl):
        return qualifier_decl_mof(obj)
    if isinstance(obj, Class):
        return class_mof(obj, decls)
    if isinstance(obj, Instance):
        return instance_mof(obj)
    raise TypeError(f"to_mof takes a Class, Instance or QualifierDecl, not {type(obj).__name__}")


def _decl_map(src: DeclSource) -> dict[str, QualifierDecl]:
    if src is None:
        return {}
    if isinstance(src, Mapping):
        return {k.lower(): v for k, v in src.items()}
    return {d.name.lower(): d for d in src}


# --- values ------------------------------------------------------------------------------------------

def string_literal(text: str) -> str:
    return f'"{escape(text)}"'


def scalar_mof(value: Any, t: MIType, indent: str = "") -> str:
    s = MIType(t & 0x0F)
    if s == MIType.STRING:
        return string_literal(str(value))
    if s == MIType.BOOLEAN:
        return "true" if value else "false"
    if s == MIType.CHAR16:
        return f"'{escape(str(value))}'"
    if s == MIType.DATETIME:
        if isinstance(value, (_dt.datetime, _dt.timedelta)):
            return string_literal(format_datetime(value))
        return string_literal(str(value))
    if s in (MIType.REAL32, MIType.REAL64):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"MOF has no literal for the real value {f!r}")
        text = repr(f)
        return text if ("." in text or "e" in text) else text + ".0"
    if s == MIType.REFERENCE:
        if isinstance(value, Instance):
            return string_literal(format_object_path(value))
        return string_literal(str(value))
    if s == MIType.INSTANCE:
        if not isinstance(value, Instance):
            raise TypeError(f"an embedded instance value must be an Instance, not {type(value).__name__}")
        return instance_mof(value, indent=indent, nested=True)
    return str(int(value))


def value_mof(value: Any, t: MIType, indent: str = "") -> str:
    if value is None:
        return "NULL"
    if t & 0x10:
        return "{" + ", ".join(scalar_mof(v, t, indent) for v in value) + "}"
    return scalar_mof(value, t, indent)


# --- qualifiers --------------------------------------------------------------------------------------

def _flavor_words(q: Qualifier, decls: dict[str, QualifierDecl]) -> list[str]:
    decl = decls.get(q.name.lower())
    if decl is None:
        return []
    words = []
    for on, on_word, off_word in _FLAVOR_WORDS:
        mine, theirs = bool(q.flavor & on), bool(decl.flavor & on)
        if mine != theirs:
            words.append(on_word if mine else off_word)
    if q.flavor & MIFlag.TRANSLATABLE and not decl.flavor & MIFlag.TRANSLATABLE:
        words.append("Translatable")
    return words


def qualifier_mof(q: Qualifier, decls: dict[str, QualifierDecl]) -> str:
    if q.type == MIType.BOOLEAN and q.value is True:
        text = q.name
    elif q.type & 0x10 and q.value is not None:
        text = q.name + " " + value_mof(q.value, q.type)
    else:
        text = f"{q.name}({value_mof(q.value, q.type)})"
    flavors = _flavor_words(q, decls)
    return text + (" : " + " ".join(flavors) if flavors else "")


def qualifier_list_mof(quals: Iterable[Qualifier], decls: dict[str, QualifierDecl], indent: str,
                       inline: bool = False) -> str:
    own = [q for q in quals if not q.propagated]
    if not own:
        return ""
    parts = [qualifier_mof(q, decls) for q in own]
    if inline:
        return "[" + ", ".join(parts) + "] "
    if sum(len(p) for p in parts) < 60:
        return indent + "[" + ", ".join(parts) + "]\n"
    sep = ",\n" + indent + " "
    return indent + "[" + sep.join(parts) + "]\n"


def qualifier_decl_mof(d: QualifierDecl) -> str:
    t = MIType(d.type)
    arr = ""
    if t.is_array:
        arr = f"[{d.array_size}]" if d.array_size else "[]"
    text = f"Qualifier {d.name} : {t.cim_name}{arr}"
    if d.default is not None:
        text += " = " + value_mof(d.default, t)
    scope = int(d.scope)
    if scope & int(MIFlag.ANY) == int(MIFlag.ANY):
        scopes = ["any"]
    else:
        scopes = [w for w, bit in (("class", MIFlag.CLASS), ("association", MIFlag.ASSOCIATION),
                                   ("indication", MIFlag.INDICATION), ("property", MIFlag.PROPERTY),
                                   ("reference", MIFlag.REFERENCE), ("method", MIFlag.METHOD),
                                   ("parameter", MIFlag.PARAMETER)) if scope & bit]
    text += ",\n" + INDENT + "Scope(" + ", ".join(scopes) + ")"
    flavors = ["DisableOverride" if d.flavor & MIFlag.DISABLEOVERRIDE else "EnableOverride",
               "Restricted" if d.flavor & MIFlag.RESTRICTED else "ToSubclass"]
    if d.flavor & MIFlag.TRANSLATABLE:
        flavors.append("Translatable")
    text += ",\n" + INDENT + "Flavor(" + ", ".join(flavors) + ");\n"
    return text


# --- classes -----------------------------------------------------------------------------------------

def _type_and_name(t: MIType, name: str, ref_class: str | None, array_size: int | None) -> str:
    s = MIType(t & 0x0F)
    if s == MIType.REFERENCE:
        head = f"{ref_class or 'CIM_ManagedElement'} REF {name}"
    elif s == MIType.INSTANCE:
        head = f"string {name}"
    else:
        head = f"{s.cim_name} {name}"
    if t & 0x10:
        head += f"[{array_size}]" if array_size else "[]"
    return head


def _embedded_quals(quals: list[Qualifier], t: MIType, embedded: str | None) -> list[Qualifier]:
    """An embedded-instance element needs its EmbeddedInstance/EmbeddedObject qualifier in MOF."""
    if (t & 0x0F) != MIType.INSTANCE:
        return quals
    names = {q.name.lower() for q in quals if not q.propagated}
    if "embeddedinstance" in names or "embeddedobject" in names:
        return quals
    if embedded:
        return [*quals, Qualifier("EmbeddedInstance", embedded, MIType.STRING, MIFlag.ENABLEOVERRIDE |
                                  MIFlag.TOSUBCLASS)]
    return [*quals, Qualifier("EmbeddedObject", True, MIType.BOOLEAN, MIFlag.DISABLEOVERRIDE |
                              MIFlag.TOSUBCLASS)]


def property_mof(p: Property, decls: dict[str, QualifierDecl], indent: str = INDENT) -> str:
    quals = _embedded_quals(list(p.qualifiers.values()), p.type, p.embedded_class)
    if p.key and not any(q.name.lower() == "key" for q in quals):
        quals = [Qualifier("Key", True, MIType.BOOLEAN, MIFlag.DISABLEOVERRIDE | MIFlag.TOSUBCLASS), *quals]
    text = qualifier_list_mof(quals, decls, indent)
    line = indent + _type_and_name(p.type, p.name, p.reference_class, p.array_size)
    if p.value is not None:
        line += " = " + value_mof(p.value, p.type, indent)
    return text + line + ";\n"


def parameter_mof(p: Parameter, decls: dict[str, QualifierDecl]) -> str:
    quals = _embedded_quals(list(p.qualifiers.values()), p.type, p.embedded_class)
    # The compiler reads Out as false and In as "not Out" when they are absent; state what differs.
    names = {q.name.lower() for q in quals}
    fixed = MIFlag.DISABLEOVERRIDE | MIFlag.TOSUBCLASS
    if p.out and "out" not in names:
        quals = [*quals, Qualifier("Out", True, MIType.BOOLEAN, fixed)]
    if "in" not in names and p.in_ != (not p.out):
        quals = [*quals, Qualifier("In", p.in_, MIType.BOOLEAN, fixed)]
    return qualifier_list_mof(quals, decls, "", inline=True) + _type_and_name(p.type, p.name, p.reference_class,
                                                                            p.array_size)


def method_mof(m: Method, decls: dict[str, QualifierDecl], indent: str = INDENT) -> str:
    text = qualifier_list_mof(m.qualifiers.values(), decls, indent)
    rt = MIType(m.return_type)
    params = [parameter_mof(p, decls) for p in m.parameters.values()]
    joined = ", ".join(params)
    if len(joined) > 70:
        joined = "\n" + ",\n".join(indent * 2 + p for p in params)
    return text + f"{indent}{rt.cim_name} {m.name}({joined});\n"


def class_mof(cls: Class, decls: dict[str, QualifierDecl] | None = None) -> str:
    decls = decls or {}
    head = qualifier_list_mof(cls.qualifiers.values(), decls, "")
    head += f"class {cls.name}" + (f" : {cls.superclass}" if cls.superclass else "") + "\n{\n"
    body = []
    for p in cls.properties.values():
        if not p.propagated:
            body.append(property_mof(p, decls))
    for m in cls.methods.values():
        if not m.propagated:
            body.append(method_mof(m, decls))
    return head + "\n".join(body) + "};\n"


# --- instances ---------------------------------------------------------------------------------------

def instance_mof(inst: Instance, indent: str = "", nested: bool = False) -> str:
    """``instance of C { P = v; ... };`` — NULL elements are left out unless the class default differs."""
    inner = indent + INDENT
    lines = []
    cls = inst.cls
    for el in inst.elements:
        if el.value is None:
            p = cls.properties.get(el.name) if cls is not None else None
            if p is None or p.value is None:
                continue
        lines.append(f"{inner}{el.name} = {value_mof(el.value, MIType(el.type), inner)};\n")
    text = f"instance of {inst.class_name}\n{indent}{{\n" + "".join(lines) + indent + "}"
    return text if nested else text + ";\n"

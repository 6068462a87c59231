"""How the command line shows results: omicli's block per instance (coloured on a terminal), one JSON
object per line for scripts, or MOF."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from ..cim.classes import Class
from ..cim.instance import Instance
from ..cim.types import MIType
from ..cim.values import format_datetime, format_scalar


def instance_json(inst: Instance) -> dict[str, Any]:
    """Stable, typed JSON: ``class``, ``namespace``, ``properties`` (name → value), ``types`` (name → CIM
    type, ``[]`` for arrays), ``keys``; datetimes as CIM text, references/embedded instances nested."""
    props: dict[str, Any] = {}
    types: dict[str, str] = {}
    for el in inst.elements:
        t = MIType(el.type)
        types[el.name] = t.cim_name + ("[]" if t.is_array else "")
        props[el.name] = _json_value(el.value, t)
    return {"class": inst.class_name, "namespace": inst.namespace, "properties": props, "types": types,
            "keys": [el.name for el in inst.key_elements]}


def _json_value(value: Any, t: MIType) -> Any:
    if value is None:
        return None
    if t.is_array:
        return [_json_value(v, t.scalar) for v in value]
    if isinstance(value, Instance):
        return instance_json(value)
    if isinstance(value, (_dt.datetime, _dt.timedelta)):
        return format_datetime(value)
    if isinstance(value, float) and value != value:
        return "NaN"
    return value


def class_json(cls: Class) -> dict[str, Any]:
    return {
        "class": cls.name, "superclass": cls.superclass, "namespace": cls.namespace,
        "qualifiers": {q.name: _json_value(q.value, q.type) for q in cls.qualifiers.values()},
        "properties": {p.name: {"type": p.type.cim_name + ("[]" if p.type.is_array else ""), "key": p.key,
                                "default": _json_value(p.value, p.type), "origin": p.class_origin,
                                **({"reference_class": p.reference_class} if p.reference_class else {})}
                       for p in cls.properties.values()},
        "methods": {m.name: {"return_type": m.return_type.cim_name,
                             "parameters": {a.name: {"type": a.type.cim_name + ("[]" if a.type.is_array else ""),
                                                     "in": a.in_, "out": a.out} for a in m.parameters.values()}}
                    for m in cls.methods.values()},
    }


class Printer:
    """Writes results in the chosen format; ``quiet`` prints nothing but errors."""

    def __init__(self, fmt: str = "text", quiet: bool = False, show_nulls: bool = False,
                 stream: IO[str] | None = None) -> None:
        self.fmt = fmt
        self.quiet = quiet
        self.show_nulls = show_nulls
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)

    def instance(self, inst: Instance) -> None:
        if self.quiet:
            return
        if self.fmt == "json":
            self.stream.write(json.dumps(instance_json(inst), ensure_ascii=False) + "\n")
        elif self.fmt == "mof":
            from ..cim.mof import to_mof

            self.stream.write(to_mof(inst) + "\n")
        else:
            self.console.print("\n".join(self._block(inst, "")), markup=True)

    def cls(self, cls: Class, names_only: bool = False) -> None:
        if self.quiet:
            return
        if names_only:
            if self.fmt == "json":
                self.stream.write(json.dumps({"class": cls.name, "superclass": cls.superclass}) + "\n")
            else:
                self.stream.write(cls.name + (f" : {cls.superclass}" if cls.superclass else "") + "\n")
            return
        if self.fmt == "json":
            self.stream.write(json.dumps(class_json(cls), ensure_ascii=False) + "\n")
        else:
            from ..cim.classes import declared_class
            from ..cim.mof import to_mof

            self.stream.write(to_mof(declared_class(cls) if self.fmt == "mof" else cls) + "\n")

    def line(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text + "\n")

    def _block(self, inst: Instance, indent: str) -> list[str]:
        head = f"instance of {inst.namespace + ':' if inst.namespace else ''}{inst.class_name}"
        lines = [f"{indent}[bold]{escape(head)}[/]", f"{indent}{{"]
        inner = indent + "    "
        for el in inst.elements:
            if el.value is None and not self.show_nulls:
                continue
            key = "[cyan][Key][/] " if el.key else ""
            t = MIType(el.type)
            if isinstance(el.value, Instance):
                lines.append(f"{inner}{key}{escape(el.name)}=")
                lines.extend(self._block(el.value, inner))
            elif t.is_array and t.scalar in (MIType.INSTANCE, MIType.REFERENCE) and el.value is not None:
                lines.append(f"{inner}{key}{escape(el.name)}=")
                for v in el.value:
                    lines.extend(self._block(v, inner))
            else:
                lines.append(f"{inner}{key}{escape(el.name)}={escape(_text(el.value, t))}")
        lines.append(f"{indent}}}")
        return lines


def _text(value: Any, t: MIType) -> str:
    if value is None:
        return "NULL"
    if t.is_array:
        return "{" + ", ".join(_text(v, t.scalar) for v in value) + "}"
    return format_scalar(value, t)

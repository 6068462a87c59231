"""CIM values in Python: checking and converting a Python value for an MI type, and text forms.

Canonical Python forms: boolean → ``bool``; integers → ``int`` (range-checked); real32/real64 →
``float``; char16 → a one-character ``str``; datetime → ``datetime.datetime`` (timestamp) or
``datetime.timedelta`` (interval); string → ``str``; reference → :class:`openmi.Reference` (an
Instance holding a path; an Instance or a path string given for a reference becomes one); embedded
instance → :class:`openmi.Instance`; arrays → ``list`` of the scalar form. ``None`` is NULL for every type.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import struct
from typing import Any

from .types import INTEGER_RANGES, MIType

_REAL32_MAX = 3.4028234663852886e38

_TIMESTAMP_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.(\d{6})([+-])(\d{3})$")
_INTERVAL_RE = re.compile(r"^(\d{8})(\d{2})(\d{2})(\d{2})\.(\d{6}):000$")


def _instance_type() -> type:
    from .instance import Instance

    return Instance


def _as_reference(value: Any) -> Any:
    from .objectpath import as_reference

    return as_reference(value)


def _label(name: str | None) -> str:
    return f"element {name!r}" if name else "value"


def coerce(value: Any, mitype: MIType, name: str | None = None) -> Any:
    """Check ``value`` against ``mitype`` and return its canonical form.

    Raises ``TypeError`` for a value of the wrong Python type and ``ValueError`` for one out of
    range, each naming the element.
    """
    if value is None:
        return None
    if mitype & 0x10:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{_label(name)} is of type {mitype.name} and needs a list, not {type(value).__name__}")
        scalar = MIType(mitype & 0x0F)
        out = []
        for i, item in enumerate(value):
            if item is None:
                raise TypeError(f"{_label(name)}[{i}] is None; arrays of {scalar.name} hold no NULL items")
            out.append(coerce_scalar(item, scalar, f"{name}[{i}]" if name else f"[{i}]"))
        return out
    return coerce_scalar(value, mitype, name)


def coerce_scalar(value: Any, mitype: MIType, name: str | None = None) -> Any:
    t = mitype
    if t == MIType.STRING:
        if isinstance(value, str):
            return value
    elif MIType.UINT8 <= t <= MIType.SINT64:
        if isinstance(value, int) and not isinstance(value, bool):
            lo, hi = INTEGER_RANGES[t]
            if not lo <= value <= hi:
                raise ValueError(f"{_label(name)} is {t.name}, and {value} is outside {lo}..{hi}")
            return int(value)
    elif t == MIType.BOOLEAN:
        if isinstance(value, bool):
            return value
    elif t in (MIType.REAL32, MIType.REAL64):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            f = float(value)
            if t == MIType.REAL32 and math.isfinite(f):
                if abs(f) > _REAL32_MAX:
                    raise ValueError(f"{_label(name)} is REAL32, and {value} is outside its range")
                f = struct.unpack("<f", struct.pack("<f", f))[0]
            return f
    elif t == MIType.CHAR16:
        if isinstance(value, str):
            if len(value) != 1 or ord(value) > 0xFFFF:
                raise ValueError(f"{_label(name)} is CHAR16 and needs exactly one UCS-2 character, not {value!r}")
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"{_label(name)} is CHAR16, and {value} is outside 0..65535")
            return chr(value)
    elif t == MIType.DATETIME:
        if isinstance(value, (_dt.datetime, _dt.timedelta)):
            if isinstance(value, _dt.timedelta) and value < _dt.timedelta(0):
                raise ValueError(f"{_label(name)} is a CIM interval and cannot be negative")
            return value
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except ValueError as exc:
                raise ValueError(f"{_label(name)}: {exc}") from None
    elif t == MIType.REFERENCE:
        if isinstance(value, _instance_type()):
            return _as_reference(value)  # a reference holds a path: the keys, as an openmi.Reference
        if isinstance(value, str):
            from .objectpath import parse_object_path

            try:
                return parse_object_path(value)
            except ValueError as exc:
                raise ValueError(f"{_label(name)}: {exc}") from None
    elif t == MIType.INSTANCE:
        if isinstance(value, _instance_type()):
            return value
    else:  # pragma: no cover - every scalar tag is handled above
        raise ValueError(f"{mitype!r} is not a scalar MI type")
    raise TypeError(f"{_label(name)} is of type {t.name}; {type(value).__name__} {value!r:.60} does not fit")


def infer_type(value: Any, name: str | None = None) -> MIType:
    """The MI type a bare Python value gets in a dynamic instance."""
    if isinstance(value, bool):
        return MIType.BOOLEAN
    if isinstance(value, int):
        if value > INTEGER_RANGES[MIType.SINT64][1]:
            return MIType.UINT64
        return MIType.SINT64
    if isinstance(value, float):
        return MIType.REAL64
    if isinstance(value, str):
        return MIType.STRING
    if isinstance(value, (_dt.datetime, _dt.timedelta)):
        return MIType.DATETIME
    if isinstance(value, _instance_type()):
        from .objectpath import Reference

        return MIType.REFERENCE if isinstance(value, Reference) else MIType.INSTANCE  # (a path, not an object)
    if isinstance(value, (list, tuple)):
        if not value:
            return MIType.STRINGA
        return infer_type(value[0], name).array
    raise TypeError(f"cannot infer an MI type for {_label(name)} from {type(value).__name__}")


# --- text forms -----------------------------------------------------------------------------------


def parse_datetime(text: str) -> _dt.datetime | _dt.timedelta:
    """Parse a CIM datetime: ``yyyymmddhhmmss.mmmmmmsutc`` or ``ddddddddhhmmss.mmmmmm:000``."""
    s = text.strip()
    m = _TIMESTAMP_RE.match(s)
    if m:
        year, month, day, hour, minute, second, micro, sign, utc = m.groups()
        offset = int(utc) * (-1 if sign == "-" else 1)
        try:
            return _dt.datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), int(micro),
                tzinfo=_dt.timezone(_dt.timedelta(minutes=offset)),
            )
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a valid CIM timestamp ({exc})") from None
    m = _INTERVAL_RE.match(s)
    if m:
        days, hours, minutes, seconds, micro = (int(g) for g in m.groups())
        if hours > 23 or minutes > 59 or seconds > 59:
            raise ValueError(f"{text!r} is not a valid CIM interval")
        return _dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, microseconds=micro)
    raise ValueError(
        f"{text!r} is not a CIM datetime (yyyymmddhhmmss.mmmmmm+utc or ddddddddhhmmss.mmmmmm:000)"
    )


def format_datetime(value: _dt.datetime | _dt.timedelta) -> str:
    """The CIM text form of a timestamp or interval."""
    if isinstance(value, _dt.timedelta):
        total = value.days * 86400 + value.seconds
        days, rest = divmod(total, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{days:08d}{hours:02d}{minutes:02d}{seconds:02d}.{value.microseconds:06d}:000"
    off = value.utcoffset()
    minutes_off = int(off.total_seconds() // 60) if off is not None else 0
    sign = "-" if minutes_off < 0 else "+"
    return (
        f"{value.year:04d}{value.month:02d}{value.day:02d}{value.hour:02d}{value.minute:02d}"
        f"{value.second:02d}.{value.microsecond:06d}{sign}{abs(minutes_off):03d}"
    )


def parse_scalar(text: str, mitype: MIType, name: str | None = None) -> Any:
    """Convert the text form of a scalar (as omicli and WS-Man send it) to the MI type.

    Raises ``ValueError`` naming the element when the text is not a value of that type.
    """
    t = MIType(mitype & 0x0F)
    s = text.strip()
    try:
        if t == MIType.STRING:
            return text
        if t == MIType.BOOLEAN:
            low = s.lower()
            if low in ("true", "1"):
                return True
            if low in ("false", "0"):
                return False
            raise ValueError("not a boolean")
        if t.is_integer:
            low = s.lower()
            if low.startswith(("0x", "-0x", "+0x")):
                v = int(s, 16)
            else:
                v = int(s, 10)
            return coerce_scalar(v, t, name)
        if t in (MIType.REAL32, MIType.REAL64):
            return coerce_scalar(float(s), t, name)
        if t == MIType.CHAR16:
            return coerce_scalar(text, t, name)
        if t == MIType.DATETIME:
            return parse_datetime(s)
        if t == MIType.REFERENCE:
            from .objectpath import parse_object_path

            return parse_object_path(s)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{_label(name)}: {text!r} is not a {t.name} value ({exc})") from None
    raise TypeError(f"{_label(name)}: a {t.name} value cannot be given as text")


def format_scalar(value: Any, mitype: MIType) -> str:
    """The text form of a scalar value (the inverse of :func:`parse_scalar`)."""
    t = MIType(mitype & 0x0F)
    if t == MIType.BOOLEAN:
        return "true" if value else "false"
    if t == MIType.DATETIME:
        return format_datetime(value)
    if t in (MIType.REAL32, MIType.REAL64):
        return repr(float(value))
    return str(value)


def values_equal(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to itself (so round trips of reals compare)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def is_instance_value(value: Any) -> bool:
    return isinstance(value, _instance_type())

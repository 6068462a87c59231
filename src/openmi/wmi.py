"""The ``wmi`` module on openmi: scripts written for Windows WMI run unchanged on Linux and macOS.

``import openmi.wmi as wmi`` and code written for either dialect runs: PyMI's ``wmi`` package (os-win's
``path_()``, ``put()``, ``Delete_()``, ``GetText_(1)``, ``watch_for(raw_wql=…)``, out-parameters sorted by
name) and Tim Golden's classic module (``wmi.WMI("host")``, ``namespace=``, ``watch_for(
notification_type=…, wmi_class=…, **where)``, ``references()``, ``x_access_denied``, ``from_time``/``to_time``,
events with ``.event_type``/``.timestamp``/``.previous``). It talks WS-Management (WinRM) to a Windows host or
to ``openmi serve``, or uses the embedded openmi server for the local machine.

Where the two dialects disagree, one rule each (README, "Coming from PyMI / wmi"):

- The first positional argument of :func:`WMI` is a moniker when it looks like one (``winmgmts:…``,
  ``//…``, ``\\\\…``, anything with ``/``, ``\\`` or ``:``, or a name starting with ``root``), else a
  computer name: ``WMI("server1")`` connects to server1 (Tim Golden), ``WMI("root/virtualization/v2")`` opens
  that namespace (PyMI).
- A datetime property is a :class:`WMIDateTime`: the DMTF string Tim Golden's code slices and hands to
  :func:`to_time`, which also answers ``.year``, ``.date()``, ``.datetime`` … as PyMI's datetime did.
- Setting a property by attribute changes the local copy; ``put()`` writes it (PyMI's rule, which os-win
  relies on). ``set(**kw)`` and ``put()`` work for both.
"""

from __future__ import annotations

import ctypes
import datetime as _dt
import logging
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from . import mi
from .cim.classes import Class as _Class
from .cim.errors import MIError
from .cim.instance import Instance as _Instance
from .cim.mof.mixml import instance_from_mi_xml
from .cim.mof.objectpath import parse_object_path
from .cim.types import MIResult, MIType
from .cim.values import format_datetime, parse_datetime

log = logging.getLogger("openmi.wmi")

__version__ = "1.5.1+openmi"
DEFAULT_OPERATION_TIMEOUT: float | None = None
WBEM_E_PROVIDER_NOT_CAPABLE = 0x80041024
WBEM_E_TIMED_OUT = 0x80043001
E_ACCESSDENIED = 0x80070005


# --- errors -----------------------------------------------------------------------------------------


def signed_to_unsigned(value: int) -> int:
    return ctypes.c_uint32(value).value


def unsigned_to_signed(value: int) -> int:
    """32-bit HRESULT as Python's COM layer gives it: negative for failures (right on 64-bit Linux too)."""
    return ctypes.c_int32(value).value


class com_error(Exception):
    """pywintypes.com_error's shape: ``args = (hresult, strerror, excepinfo, argerror)`` and attributes;
    ``excepinfo = (wcode, source, description, helpfile, helpcontext, scode)``."""

    def __init__(self, hresult: int, strerror: str | None, excepinfo: tuple[Any, ...] | None,
                 argerror: int | None = None) -> None:
        super().__init__(hresult, strerror, excepinfo, argerror)
        self.hresult = hresult
        self.strerror = strerror
        self.excepinfo = excepinfo
        self.argerror = argerror


class x_wmi(Exception):
    """Every wmi error: ``info`` (text) and ``com_error`` (the HRESULT and message, as on Windows)."""

    def __init__(self, info: str = "", com_error: com_error | None = None) -> None:
        super().__init__(info, com_error)
        self.info = info
        self.com_error = com_error

    def __str__(self) -> str:
        return f"<x_wmi: {self.info} {self.com_error or ''}>".replace(" >", ">")


class x_wmi_invalid_query(x_wmi):
    pass


class x_wmi_timed_out(x_wmi):
    pass


class x_access_denied(x_wmi):
    pass


class x_wmi_no_namespace(x_wmi):
    pass


class x_wmi_authentication(x_wmi):
    pass


class x_wmi_uninitialised_thread(x_wmi):
    pass


class x_wmi_invalid_moniker(x_wmi):
    pass


_BY_HRESULT: dict[int, type[x_wmi]] = {
    0x80041017: x_wmi_invalid_query,
    0x80041018: x_wmi_invalid_query,
    WBEM_E_TIMED_OUT: x_wmi_timed_out,
    0x80041003: x_access_denied,
    E_ACCESSDENIED: x_access_denied,
    0x8004100E: x_wmi_no_namespace,
}


def _x(exc: mi.error | MIError, info: str | None = None) -> x_wmi:
    """An MI failure as the x_wmi a Windows script expects (subclass chosen by the HRESULT)."""
    if isinstance(exc, MIError):
        try:
            mi._raise(exc)
        except mi.error as e:
            exc = e
    assert isinstance(exc, mi.error)
    d = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {"error_code": 0x80041001, "message": str(exc)}
    code = int(str(d.get("error_code", 0) or 0)) & 0xFFFFFFFF
    if isinstance(exc, mi.timeouterror):
        code = WBEM_E_TIMED_OUT
    msg = str(d.get("message", ""))
    hresult = unsigned_to_signed(code)
    err = com_error(hresult, msg, (0, None, msg, None, None, hresult), None)
    cls = _BY_HRESULT.get(code, x_wmi)
    return cls(info or msg, err)


# --- datetimes ---------------------------------------------------------------------------------------


class WMIDateTime(str):
    """A datetime property: the DMTF text (``20240131120000.000000+000``) that also behaves like the
    datetime it stands for (``.year``, ``.date()``, ``.datetime`` …); an interval's ``.datetime`` is a timedelta."""

    __slots__ = ("_value",)
    _value: _dt.datetime | _dt.timedelta

    def __new__(cls, value: _dt.datetime | _dt.timedelta | str) -> WMIDateTime:
        if isinstance(value, str):
            text, parsed = value, parse_datetime(value)
        else:
            text, parsed = format_datetime(value), value
        out = super().__new__(cls, text)
        out._value = parsed
        return out

    @property
    def datetime(self) -> _dt.datetime | _dt.timedelta:
        return self._value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._value, name)


def from_time(year: int | None = None, month: int | None = None, day: int | None = None,
              hours: int | None = None, minutes: int | None = None, seconds: int | None = None,
              microseconds: int | None = None, timezone: int | None = None) -> str:
    """A DMTF datetime string; a part left out is written as asterisks (WMI's "any")."""

    def part(v: int | None, width: int) -> str:
        return "*" * width if v is None else str(v).rjust(width, "0")

    tz = "***" if timezone is None else str(abs(timezone)).rjust(3, "0")
    sign = "-" if timezone is not None and timezone < 0 else "+"
    return (part(year, 4) + part(month, 2) + part(day, 2) + part(hours, 2) + part(minutes, 2) + part(seconds, 2)
            + "." + part(microseconds, 6) + sign + tz)


def to_time(wmi_time: str | _dt.datetime) -> tuple[Any, ...]:
    """``(year, month, day, hours, minutes, seconds, microseconds, timezone)``, None for a starred part;
    a datetime object is accepted too."""
    if isinstance(wmi_time, WMIDateTime):
        wmi_time = str(wmi_time)
    if isinstance(wmi_time, _dt.datetime):
        off = wmi_time.utcoffset()
        tz = None if off is None else int(off.total_seconds() // 60)
        return (wmi_time.year, wmi_time.month, wmi_time.day, wmi_time.hour, wmi_time.minute, wmi_time.second,
                wmi_time.microsecond, tz)

    def field(s: str) -> int | None:
        return None if not s or "*" in s else int(s)

    s = wmi_time
    return (field(s[0:4]), field(s[4:6]), field(s[6:8]), field(s[8:10]), field(s[10:12]), field(s[12:14]),
            field(s[15:21]), (None if "*" in s[22:25] else (-1 if s[21:22] == "-" else 1) * int(s[22:25] or 0)))


# --- monikers ------------------------------------------------------------------------------------------

_SECURITY = re.compile(r"^\s*\{(?P<body>[^}]*)\}\s*!?", re.S)


class Moniker:
    """A parsed WMI moniker: ``winmgmts:[{security}!][//server[/namespace]][:Class[.Key=v,…|=@]]``
    (backslashes or slashes before the object path)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.security: dict[str, str] = {}
        self.privileges: list[str] = []
        self.server: str | None = None
        self.namespace: str | None = None
        self.path: _Instance | None = None  # a class (no keys) or an instance name
        self.class_name: str | None = None
        self._parse(text)

    def _parse(self, text: str) -> None:
        s = text.strip()
        if s.lower().startswith("winmgmts:"):
            s = s[len("winmgmts:"):]
        m = _SECURITY.match(s)
        if m is not None:
            self._security(m.group("body"))
            s = s[m.end():]
        if s.startswith("!"):
            s = s[1:]
        objpath = ""
        if s[:2] in ("//", "\\\\"):
            s = s[2:]
            sep = re.search(r"[/\\:]", s)
            if sep is None:
                self.server, s = s, ""
            else:
                self.server, s = s[:sep.start()], s[sep.start():]
            if s.startswith(("/", "\\")):
                s = s[1:]
            elif s and not s.startswith(":"):
                raise x_wmi_invalid_moniker(f"cannot read the moniker {text!r}")
        # the namespace runs to the first ':' that is not inside a key's quotes (there is none before the path)
        colon = s.find(":")
        if colon >= 0:
            ns, objpath = s[:colon], s[colon + 1:]
        else:
            ns = s
        ns = ns.replace("\\", "/").strip("/")
        if ns:
            self.namespace = ns
        if objpath:
            try:
                inst = parse_object_path(objpath)
            except ValueError as exc:
                raise x_wmi_invalid_moniker(f"cannot read the object path in the moniker {text!r}: {exc}") from None
            self.path = inst
            self.class_name = inst.class_name
        if not self.server and not self.namespace and not objpath and text.strip().lower() not in ("", "winmgmts:"):
            if not s:
                return
            raise x_wmi_invalid_moniker(f"cannot read the moniker {text!r}")

    def _security(self, body: str) -> None:
        for part in _split_top(body):
            part = part.strip()
            if not part:
                continue
            if part.startswith("("):
                self.privileges.extend(p.strip() for p in part.strip("()").split(",") if p.strip())
            elif "=" in part:
                k, _, v = part.partition("=")
                self.security[k.strip().lower()] = v.strip()
            else:
                self.security[part.lower()] = ""
        if self.security or self.privileges:
            log.debug("moniker security settings ignored over WS-Management: %s %s", self.security, self.privileges)


def _split_top(body: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return out


def _looks_like_moniker(text: str) -> bool:
    t = text.strip()
    return (t.lower().startswith(("winmgmts:", "root")) or t.startswith(("//", "\\\\"))
            or any(c in t for c in "/\\:{"))


# --- WQL ------------------------------------------------------------------------------------------------


def _wql_value(value: Any) -> str:
    """A value as a WQL literal: strings quoted with every quote and backslash escaped; numbers bare."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    if value is None:
        return "NULL"
    s = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{s}'"


def _where(where: Mapping[str, Any], prefix: str = "") -> str:
    return " AND ".join(f"{prefix}{k} = {_wql_value(v)}" for k, v in where.items())


def _select(class_name: str, fields: Iterable[str], where: Mapping[str, Any]) -> str:
    cols = ", ".join(fields) or "*"
    q = f"SELECT {cols} FROM {class_name}"
    if where:
        q += " WHERE " + _where(where)
    return q


# --- the connection ------------------------------------------------------------------------------------

_APP_LOCK = threading.Lock()
_APP: mi.Application | None = None


def _application() -> mi.Application:
    global _APP
    with _APP_LOCK:
        if _APP is None:
            _APP = mi.Application("openmi.wmi")
        return _APP


def _wrap_value(conn: _Connection, value: Any, mitype: int) -> Any:
    """An mi value as the wmi module hands it out."""
    if value is None:
        return None
    scalar = mitype & 0x0F
    if isinstance(value, tuple):
        if scalar == MIType.REFERENCE:
            return tuple(v.get_path() if isinstance(v, mi.Instance) else v for v in value)
        return tuple(_wrap_value(conn, v, scalar) for v in value)
    if isinstance(value, mi.Instance):
        if scalar == MIType.REFERENCE:
            return value.get_path()
        return _Instance_(conn, value)
    if scalar == MIType.DATETIME and isinstance(value, (_dt.datetime, _dt.timedelta)):
        return WMIDateTime(value)
    return value


class _Connection:
    """A WMI namespace on one machine (PyMI's ``_Connection``, Tim Golden's ``_wmi_namespace``)."""

    _session: mi.Session
    _namespace: str
    _computer: str | None
    _timeout: float | None
    _classes: dict[str, mi.Class | None]
    _lock: threading.Lock

    def __init__(self, session: mi.Session, namespace: str, computer: str | None,
                 operation_timeout: float | None) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_namespace", namespace)
        object.__setattr__(self, "_computer", computer)
        object.__setattr__(self, "_timeout", operation_timeout)
        object.__setattr__(self, "_classes", {})
        object.__setattr__(self, "_lock", threading.Lock())

    def _host_name(self) -> str | None:
        """The computer's name as a path writes it (a URL's host name)."""
        c = self._computer
        if c and "://" in c:
            from urllib.parse import urlsplit

            return urlsplit(c).hostname
        return c

    # --- calls with errors as x_wmi
    def _options(self, operation_options: Mapping[str, Any] | None = None) -> mi.OperationOptions | None:
        timeout = self._timeout
        custom: list[Mapping[str, Any]] = []
        if operation_options:
            timeout = operation_options.get("operation_timeout", timeout)
            custom = list(operation_options.get("custom_options", []))
        if timeout is None and not custom:
            return None
        opts = _application().create_operation_options()
        if timeout is not None:
            opts.set_timeout(_dt.timedelta(seconds=float(timeout)))
        for c in custom:
            opts.set_custom_option(c["name"], c["value_type"], c["value"], c.get("must_comply", True))
        return opts

    def _drain(self, op: mi.Operation, reader: str = "get_next_instance") -> list[Any]:
        out = []
        try:
            with op:
                while True:
                    item = getattr(op, reader)()
                    if item is None:
                        break
                    out.append(item.clone())
        except mi.error as exc:
            raise _x(exc) from exc
        return out

    # --- PyMI's _Connection surface
    def query(self, wql: str, instance_of: str | None = None, fields: Iterable[str] = (),
              operation_options: Mapping[str, Any] | None = None) -> list[_Instance_]:
        """Run a WQL query; a list of instances."""
        try:
            op = self._session.exec_query(self._namespace, wql, operation_options=self._options(operation_options))
        except mi.error as exc:
            raise _x(exc) from exc
        return [_Instance_(self, i) for i in self._drain(op)]

    def get_class(self, class_name: str) -> mi.Class | None:
        key = class_name.lower()
        with self._lock:
            if key in self._classes:
                return self._classes[key]
        try:
            classes = self._drain(self._session.get_class(self._namespace, class_name), "get_next_class")
        except x_wmi as exc:
            if exc.com_error is not None and signed_to_unsigned(exc.com_error.hresult) == 0x80041010:
                raise
            log.debug("GetClass %s failed (%s); going on without its declaration", class_name, exc)
            classes = [None]
        cls = classes[0] if classes else None
        with self._lock:
            self._classes[key] = cls
        return cls

    def get_instance(self, class_name: str, key: Mapping[str, Any]) -> _Instance_:
        inst = _Instance(class_name, dict(key), namespace=self._namespace)
        return self._get(inst)

    def _get(self, key_instance: _Instance) -> _Instance_:
        op = self._session.get_instance(key_instance.namespace or self._namespace, mi.Instance._wrap(key_instance))
        found = self._drain(op)
        if not found:
            raise x_wmi(f"no {key_instance.class_name} instance at {key_instance.path}")
        return _Instance_(self, found[0])

    def get_associators(self, instance: _Instance_, wmi_association_class: str = "", wmi_result_class: str = "",
                        operation_options: Mapping[str, Any] | None = None, *, role: str = "",
                        result_role: str = "", keys_only: bool = False) -> list[_Instance_]:
        try:
            op = self._session.get_associators(self._namespace, instance._mi, wmi_association_class,
                                               wmi_result_class, role, result_role, keys_only,
                                               self._options(operation_options))
        except mi.error as exc:
            raise _x(exc) from exc
        return [_Instance_(self, i) for i in self._drain(op)]

    def get_references(self, instance: _Instance_, wmi_class: str = "", role: str = "") -> list[_Instance_]:
        s = self._session.openmi_session
        try:
            op = s.reference_instances(self._namespace, instance._mi.openmi_instance,
                                       result_class=wmi_class or None, role=role or None)
        except MIError as exc:
            raise _x(exc) from exc
        return [_Instance_(self, i) for i in self._drain(mi.Operation._wrap(op))]

    def invoke_method(self, target: _Instance_ | _Class_, method_name: str, *args: Any,
                      **kwargs: Any) -> tuple[Any, ...]:
        return _Method(self, target, method_name)(*args, **kwargs)

    def new_instance_from_class(self, cls: _Class_) -> _Instance_:
        mcls = cls._mi_class
        if mcls is None:
            inst = _Instance(cls._name, namespace=None)
            return _Instance_(self, mi.Instance._wrap(inst))
        inst = _Instance(cls._name, cls=mcls.openmi_class)
        inst.namespace = None  # not yet on the server: put() creates it
        return _Instance_(self, mi.Instance._wrap(inst))

    def create_instance(self, instance: _Instance_, operation_options: Mapping[str, Any] | None = None) -> None:
        try:
            self._session.create_instance(self._namespace, instance._mi, self._options(operation_options))
        except mi.error as exc:
            raise _x(exc) from exc

    def modify_instance(self, instance: _Instance_, operation_options: Mapping[str, Any] | None = None) -> None:
        try:
            self._session.modify_instance(self._namespace, instance._mi, self._options(operation_options))
        except mi.error as exc:
            raise _x(exc) from exc

    def delete_instance(self, instance: _Instance_, operation_options: Mapping[str, Any] | None = None) -> None:
        try:
            self._session.delete_instance(self._namespace, instance._mi, self._options(operation_options))
        except mi.error as exc:
            raise _x(exc) from exc

    def watch_for(self, raw_wql: str | None = None, notification_type: str = "operation",
                  wmi_class: str | None = None, delay_secs: float = 1, fields: Iterable[str] = (),
                  **where: Any) -> _EventWatcher:
        """Watch for events: ``raw_wql``, or Tim Golden's arguments built into the WQL for you."""
        if raw_wql is None:
            if not wmi_class:
                raise x_wmi("watch_for needs raw_wql or wmi_class")
            raw_wql = _event_query(self, wmi_class, notification_type, delay_secs, fields, where)
        return _EventWatcher(self, raw_wql)

    def serialize_instance(self, instance: _Instance_) -> str:
        return _application().create_serializer().serialize_instance(instance._mi)

    # --- Tim Golden's extras
    def instances(self, class_name: str) -> list[_Instance_]:
        return self.query(f"SELECT * FROM {class_name}")

    def new(self, class_name: str, **kwargs: Any) -> _Instance_:
        out: _Instance_ = getattr(self, class_name).new(**kwargs)
        return out

    new_instance_of = new

    def get(self, moniker: str) -> Any:
        return _from_moniker(self, Moniker(moniker))

    # conn.Win32_Process → the class
    def __getattr__(self, name: str) -> _Class_:
        if name.startswith("__") or name.startswith("_"):
            raise AttributeError(name)
        return _Class_(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a WMI namespace has no settable attribute {name!r}")

    def __repr__(self) -> str:
        return f"<_wmi_namespace: {self._computer or '.'}:{self._namespace}>"


def _event_query(conn: _Connection, wmi_class: str, notification_type: str, delay_secs: float,
                 fields: Iterable[str], where: Mapping[str, Any]) -> str:
    kind = (notification_type or "operation").lower()
    if kind not in ("operation", "creation", "deletion", "modification"):
        raise x_wmi(f"notification_type is creation, deletion, modification or operation, not {notification_type!r}")
    extrinsic = False
    cls = conn.get_class(wmi_class)
    if cls is not None:
        extrinsic = _is_extrinsic(conn, cls.openmi_class)
    if extrinsic:
        return _select(wmi_class, fields, where)
    cols = ", ".join(sorted({"TargetInstance", *fields})) if fields else "*"
    q = f"SELECT {cols} FROM __Instance{notification_type.capitalize()}Event WITHIN {delay_secs:g} " \
        f"WHERE TargetInstance ISA '{wmi_class}'"
    if where:
        q += " AND " + _where(where, "TargetInstance.")
    return q


def _is_extrinsic(conn: _Connection, cls: _Class) -> bool:
    seen = 0
    c: _Class | None = cls
    while c is not None and seen < 64:
        if c.name.lower() == "__extrinsicevent" or c.qualifiers.get("Indication") is not None:
            return True
        if not c.superclass:
            return False
        parent = conn.get_class(c.superclass)
        c = parent.openmi_class if parent is not None else None
        seen += 1
    return False


class _Class_:
    """A WMI class (``conn.Win32_Process``): call it to query, ``.new()``, static methods, ``watch_for``."""

    def __init__(self, conn: _Connection, name: str) -> None:
        self._conn = conn
        self._name = name
        self._cached: mi.Class | bool | None = False

    @property
    def _mi_class(self) -> mi.Class | None:
        if self._cached is False:
            self._cached = self._conn.get_class(self._name)
        return self._cached  # type: ignore[return-value]

    def __call__(self, *fields_list: Any, operation_options: Mapping[str, Any] | None = None,
                 **where: Any) -> list[_Instance_]:
        fields: list[str] = []
        for f in fields_list:
            if isinstance(f, (list, tuple)):
                fields.extend(f)
            else:
                raise ValueError("Invalid argument")  # PyMI's message: positional arguments are field lists
        return self._conn.query(_select(self._name, fields, where), operation_options=operation_options)

    def query(self, fields: Iterable[str] = (), **where: Any) -> list[_Instance_]:
        return self._conn.query(_select(self._name, list(fields), where))

    def instances(self) -> list[_Instance_]:
        return self._conn.query(f"SELECT * FROM {self._name}")

    def new(self, **kwargs: Any) -> _Instance_:
        inst = self._conn.new_instance_from_class(self)
        for k, v in kwargs.items():
            setattr(inst, k, v)
        return inst

    new_instance = new
    SpawnInstance_ = new

    def watch_for(self, notification_type: str = "operation", delay_secs: float = 1, fields: Iterable[str] = (),
                  raw_wql: str | None = None, **where: Any) -> _EventWatcher:
        return self._conn.watch_for(raw_wql, notification_type, self._name, delay_secs, fields, **where)

    @property
    def properties(self) -> dict[str, None]:
        c = self._mi_class
        return {p.name: None for p in c.openmi_class.properties.values()} if c is not None else {}

    @property
    def methods(self) -> dict[str, None]:
        c = self._mi_class
        return {m.name: None for m in c.openmi_class.methods.values()} if c is not None else {}

    @property
    def keys(self) -> list[str]:
        c = self._mi_class
        return [p.name for p in c.openmi_class.properties.values() if p.key] if c is not None else []

    def derivation(self) -> tuple[str, ...]:
        out: list[str] = []
        c = self._mi_class
        while c is not None and c.openmi_class.superclass:
            out.append(c.openmi_class.superclass)
            c = self._conn.get_class(c.openmi_class.superclass)
        return tuple(out)

    def __getattr__(self, name: str) -> _Method:
        if name.startswith("_"):
            raise AttributeError(name)
        c = self._mi_class
        if c is not None and name not in c.openmi_class.methods:
            raise AttributeError(f"class {self._name} has no method or attribute {name!r}")
        return _Method(self._conn, self, name)

    def __repr__(self) -> str:
        return f"<_wmi_class: {self._name}>"


class _Method:
    """A method of a class or an instance: call with keywords (or positionally, in parameter order); the
    out-parameters come back as a tuple sorted by name."""

    def __init__(self, conn: _Connection, target: _Instance_ | _Class_, name: str) -> None:
        self._conn = conn
        self._target = target
        self._name = name

    def _class(self) -> mi.Class | None:
        if isinstance(self._target, _Class_):
            return self._target._mi_class
        return self._conn.get_class(self._target._mi.get_class_name())

    def __call__(self, *args: Any, keep_bool_ret_vals: bool = False, operation_options: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> tuple[Any, ...]:
        cls = self._class()
        params = _Instance("__parameters")
        method = cls.openmi_class.methods.get(self._name) if cls is not None else None
        if cls is not None and method is None:
            raise AttributeError(f"{cls.get_class_name()} has no method {self._name!r}")
        ins = [p for p in method.parameters.values() if p.in_] if method is not None else []
        if args:
            if len(args) > len(ins):
                raise TypeError(f"{self._name} takes {len(ins)} positional parameter(s), got {len(args)}")
            for param, v in zip(ins, args):
                kwargs.setdefault(param.name, v)
        for k, v in kwargs.items():
            p = method.parameters.get(k) if method is not None else None
            if method is not None and (p is None or not p.in_):
                raise AttributeError(f"{self._name} has no input parameter {k!r}")
            v = _unwrap(self._conn, v, p.type if p is not None else None)
            if p is not None:
                params.add_element(p.name, v, p.type)
            else:
                params[k] = v
        target = self._target
        try:
            if isinstance(target, _Instance_):
                op = self._conn._session.invoke_method(target._mi, self._name, mi.Instance._wrap(params),
                                                       self._conn._options(operation_options))
            else:
                if cls is None:
                    ocls = _Class(target._name, namespace=self._conn._namespace)
                    mcls = mi.Class._wrap(ocls)
                else:
                    mcls = cls
                    if mcls.get_namespace() is None:
                        mcls.openmi_class.namespace = self._conn._namespace
                op = self._conn._session.invoke_method(mcls, self._name, mi.Instance._wrap(params),
                                                       self._conn._options(operation_options))
        except mi.error as exc:
            raise _x(exc) from exc
        results = self._conn._drain(op)
        if not results:
            return ()
        out = results[0]
        items = []
        for i in range(len(out)):
            name, t, value = out.get_element(i)
            if name == "ReturnValue" and t == MIType.BOOLEAN and value is True and not keep_bool_ret_vals:
                continue
            items.append((name, _wrap_value(self._conn, value, t)))
        items.sort(key=lambda kv: kv[0])
        return tuple(v for _, v in items)

    def __repr__(self) -> str:
        return f"<function {self._name}>"


def _unwrap(conn: _Connection, value: Any, mitype: MIType | None) -> Any:
    """A Python value going into a method call or a property."""
    if isinstance(value, _Instance_):
        inst = value._mi.openmi_instance
        if mitype is not None and (int(mitype) & 0x0F) == MIType.REFERENCE:
            return inst.keys_only()
        return inst
    if isinstance(value, WMIDateTime):
        return value.datetime
    if mitype is not None and int(mitype) == MIType.INSTANCE and isinstance(value, str) \
            and value.lstrip().startswith(("<INSTANCE", "<CIM", "<?xml")):
        # os-win passes GetText_(1) to an [EmbeddedInstance] parameter: the text is the instance
        try:
            return instance_from_mi_xml(value)
        except ValueError as exc:
            raise x_wmi(f"cannot read the embedded instance text: {exc}") from None
    if isinstance(value, (list, tuple)):
        scalar = MIType(int(mitype) & 0x0F) if mitype is not None else None
        return [_unwrap(conn, v, scalar) for v in value]
    if mitype is not None and (int(mitype) & 0x0F) == MIType.REFERENCE and isinstance(value, str):
        return _resolve_path(conn, value)._mi.openmi_instance.keys_only()
    if mitype is not None and int(mitype) == MIType.BOOLEAN and isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return value


def _resolve_path(conn: _Connection, path: str) -> _Instance_:
    m = Moniker(path)
    if m.path is None:
        raise x_wmi(f"{path!r} names no instance")
    key = m.path
    key.namespace = m.namespace or conn._namespace
    return conn._get(key)


class _Path:
    """``inst.path()``: the parts of an instance path."""

    def __init__(self, inst: _Instance_) -> None:
        full = inst.path_()
        self.Path = full
        oinst = inst._mi.openmi_instance
        rel = oinst.path
        self.RelPath = rel.split(":", 1)[1] if oinst.namespace else rel
        self.Class = inst._mi.get_class_name()
        self.Namespace = (inst._mi.get_namespace() or "").replace("/", "\\")
        self.Server = inst._mi.get_server_name() or "."
        self.IsClass = False
        self.DisplayName = "WINMGMTS:{authenticationLevel=pktPrivacy,impersonationLevel=impersonate}!" + full

    def __str__(self) -> str:
        return self.Path


class _Instance_:
    """An instance (PyMI's ``_Instance``, Tim Golden's ``_wmi_object``)."""

    _conn: _Connection
    _mi: mi.Instance
    previous: _Instance_ | None
    event_type: str | None
    timestamp: _dt.datetime | None

    def __init__(self, conn: _Connection, inst: mi.Instance) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_mi", inst)
        object.__setattr__(self, "previous", None)
        object.__setattr__(self, "event_type", None)
        object.__setattr__(self, "timestamp", None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        inst = self._mi
        if name in inst:
            _name, t, value = inst.get_element(name)
            if (t & 0x0F) == MIType.REFERENCE and not t & 0x10 and isinstance(value, mi.Instance):
                return _resolve_path(self._conn, value.get_path()) if value.get_path() else \
                    self._conn._get(value.openmi_instance)
            return _wrap_value(self._conn, value, t)
        cls = self._conn.get_class(inst.get_class_name())
        if cls is not None and name in cls.openmi_class.methods:
            return _Method(self._conn, self, name)
        if cls is not None and name in cls.openmi_class.properties:
            return None
        raise AttributeError(f"{inst.get_class_name()} has no property or method {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("previous", "event_type", "timestamp"):
            object.__setattr__(self, name, value)
            return
        inst = self._mi.openmi_instance
        cls = inst.cls
        p = cls.properties.get(name) if cls is not None else None
        t = p.type if p is not None else (inst.get_element(name).type if name in inst else None)
        try:
            inst[p.name if p is not None else name] = _unwrap(self._conn, value, t)
        except MIError as exc:
            raise _x(exc) from exc

    def set(self, **kwargs: Any) -> None:
        for k, v in kwargs.items():
            setattr(self, k, v)

    def put(self, operation_options: Mapping[str, Any] | None = None) -> None:
        """Write the instance: create it if it came from ``new()``, else modify it."""
        if not self._mi.get_path():
            self._mi.openmi_instance.namespace = None
            self._conn.create_instance(self, operation_options)
            self._mi.openmi_instance.namespace = self._conn._namespace
        else:
            self._conn.modify_instance(self, operation_options)

    Put_ = put

    def Delete_(self, operation_options: Mapping[str, Any] | None = None) -> None:
        self._conn.delete_instance(self, operation_options)

    def path_(self) -> str:
        """``\\\\SERVER\\root\\cimv2:Class.Key="v"`` (SERVER: the computer connected to)."""
        p = self._mi.get_path()
        host = self._conn._host_name()
        if p.startswith("\\\\.\\") and host:
            p = "\\\\" + host + p[3:]
        return p

    def path(self) -> _Path:
        return _Path(self)

    @property
    def Path_(self) -> _Path:
        return _Path(self)

    def GetText_(self, text_format: int = 1) -> str:
        """The instance as DSP0201 (CIM-XML) ``<INSTANCE>`` text, as WMI's CIM DTD 2.0 format gives it."""
        return self._conn.serialize_instance(self)

    def associators(self, wmi_association_class: str = "", wmi_result_class: str = "",
                    operation_options: Mapping[str, Any] | None = None) -> list[_Instance_]:
        return self._conn.get_associators(self, wmi_association_class, wmi_result_class, operation_options)

    def references(self, wmi_class: str = "") -> list[_Instance_]:
        return self._conn.get_references(self, wmi_class)

    @property
    def properties(self) -> dict[str, None]:
        return {name: None for name in self._mi}

    @property
    def id(self) -> str:
        return self.path_().lower()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Instance_) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __lt__(self, other: _Instance_) -> bool:
        return self.id < other.id

    def __str__(self) -> str:
        lines = [f"instance of {self._mi.get_class_name()}", "{"]
        for name in self._mi:
            lines.append(f"\t{name} = {getattr(self, name)!r};")
        lines.append("};")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<_wmi_object: {self.path_() or self._mi.get_class_name()}>"


class _EventWatcher:
    """``watcher(timeout_ms=-1)`` waits for the next event (forever by default) and raises
    :class:`x_wmi_timed_out` when ``timeout_ms`` passes first."""

    def __init__(self, conn: _Connection, wql: str) -> None:
        self._conn = conn
        self.wql = wql
        s = conn._session.openmi_session
        subscribe = getattr(s, "subscribe", None)
        if subscribe is None:
            raise x_wmi("subscriptions are not available in this openmi")
        from .cim.types import OperationFlags

        self._op = subscribe(conn._namespace, "WQL", wql, flags=int(OperationFlags.REPORT_OPERATION_STARTED))
        # a watcher a script drops without closing still ends its subscription (a remote one: Unsubscribe)
        self._closer = weakref.finalize(self, self._op.close)
        first = self._op.get_indication()  # live once this comes: events from now on are seen
        if first.result != MIResult.OK:
            self._op.close()
            raise _x(MIError(first.result, first.error_message, first.error_details))

    def __call__(self, timeout_ms: int = -1) -> _Instance_:
        timeout = None if timeout_ms is None or timeout_ms < 0 else timeout_ms / 1000.0
        try:
            r = self._op.get_indication(timeout=timeout)
        except TimeoutError:
            raise x_wmi_timed_out("no event arrived in time") from None
        if r.result != MIResult.OK:
            raise _x(MIError(r.result, r.error_message, r.error_details))
        if r.instance is None:
            if not r.more_results:
                self.close()
                raise x_wmi("No more events")
            return self(timeout_ms)
        return _event(self._conn, r.instance)

    def close(self) -> None:
        self._closer()

    def __enter__(self) -> _EventWatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _event(conn: _Connection, event: _Instance) -> _Instance_:
    name = event.class_name.lower()
    target = None
    for prop in ("TargetInstance", "SourceInstance"):
        if prop in event and isinstance(event[prop], _Instance):
            target = event[prop]
            break
    if target is None:  # an extrinsic event: the event itself
        out = _Instance_(conn, mi.Instance._wrap(event))
        out.event_type = "extrinsic"
    else:
        out = _Instance_(conn, mi.Instance._wrap(target))
        m = re.match(r"__instance(\w+)event$", name) or re.match(r"cim_inst(\w+)$", name)
        kind = m.group(1) if m else "operation"
        out.event_type = {"modification": "modification", "creation": "creation", "deletion": "deletion"}.get(
            kind, kind)
        prev = event["PreviousInstance"] if "PreviousInstance" in event else None
        if isinstance(prev, _Instance):
            out.previous = _Instance_(conn, mi.Instance._wrap(prev))
    stamp = None
    if "TIME_CREATED" in event and event["TIME_CREATED"] is not None:
        stamp = _dt.datetime(1601, 1, 1) + _dt.timedelta(microseconds=int(event["TIME_CREATED"]) // 10)
    elif "IndicationTime" in event and isinstance(event["IndicationTime"], _dt.datetime):
        stamp = event["IndicationTime"].replace(tzinfo=None)
    out.timestamp = stamp
    return out


def _from_moniker(conn: _Connection, m: Moniker) -> Any:
    if m.path is None:
        return conn
    if not m.path.elements and "=@" not in m.text:
        return _Class_(conn, m.path.class_name)
    key = m.path
    key.namespace = m.namespace or conn._namespace
    return conn._get(key)


# --- connecting ----------------------------------------------------------------------------------------


def WMI(computer_or_moniker: str = "", impersonation_level: str = "", authentication_level: str = "",
        authority: str = "", privileges: Any = None, moniker: str = "", wmi: Any = None, namespace: str = "",
        suffix: str = "", user: str = "", password: str = "", find_classes: bool = False, debug: bool = False,
        *, computer: str = "", locale_name: str | None = None, user_cert_thumbprint: str = "",
        auth_type: str | None = None, operation_timeout: float | None = None, transport: str | None = None,
        protocol: str | None = None, port: int | None = None, uri_style: str | None = None) -> Any:
    """Connect to WMI: a namespace (``_wmi_namespace``), or the class or instance a moniker names.

    ``computer`` (or a first argument that is not a moniker) is a host reached over WinRM: ``http://HOST:5985``
    unless ``transport=mi.MI_TRANSPORT_HTTPS`` or a full ``http(s)://`` URL says otherwise; omitted or
    ``"."`` means this machine's openmi server. ``user="DOMAIN\\\\name"`` with ``password`` authenticates
    with NTLM and message encryption (``auth_type`` picks Basic, Kerberos, CredSSP …). ``uri_style="dmtf"``
    reaches a server that takes DMTF resource URIs, such as OMI (default: WinRM's, or ``OPENMI_URI_STYLE``)."""
    first = computer_or_moniker or ""
    if first and not moniker and not computer:
        if _looks_like_moniker(first):
            moniker = first
        else:
            computer = first
    if privileges:
        log.debug("privileges %r are accepted and ignored over WS-Management", privileges)
    if impersonation_level or authentication_level or authority:
        log.debug("impersonation/authentication settings are accepted and ignored over WS-Management")
    m = Moniker(moniker) if moniker else None
    host = computer or (m.server if m is not None else None) or ""
    ns = namespace or (m.namespace if m is not None else None) or "root/cimv2"
    ns = ns.replace("\\", "/").strip("/")
    if not ns.lower().startswith("root"):
        ns = "root/" + ns
    if suffix:
        ns = f"{ns}/{suffix.strip('/')}"
    app = _application()
    opts: mi.DestinationOptions | None = None
    if host not in ("", ".", "localhost") or user or transport or port or uri_style:
        opts = app.create_destination_options()
        if transport:
            opts.set_transport(transport)
        if uri_style:
            try:
                opts.set_uri_style(uri_style)
            except ValueError as exc:
                raise x_wmi(str(exc)) from None
        if port:
            opts._obj.port = int(port)
        if locale_name:
            opts.set_ui_locale(locale_name)
        if operation_timeout is not None:
            opts.set_timeout(_dt.timedelta(seconds=float(operation_timeout)))
        if user or user_cert_thumbprint:
            domain, name = _split_user(user)
            opts.add_credentials(auth_type or (mi.MI_AUTH_TYPE_NTLM if not user_cert_thumbprint else
                                               mi.MI_AUTH_TYPE_CLIENT_CERTS), domain, name, password,
                                 user_cert_thumbprint)
    elif user:
        raise x_wmi_authentication("a user and password can only be given for a remote computer")
    target = host if host not in ("", "localhost") else "."
    try:
        session = app.create_session(protocol or "", target, opts)
    except mi.error as exc:
        raise _x(exc) from exc
    conn = _Connection(session, ns, host if host not in ("", ".") else None, operation_timeout)
    if m is not None and m.path is not None:
        return _from_moniker(conn, m)
    return conn


connect = WMI


def _split_user(user: str) -> tuple[str, str]:
    if "\\" in user:
        d, _, n = user.partition("\\")
        return d, n
    if "/" in user:
        d, _, n = user.partition("/")
        return d, n
    if "@" in user:
        n, _, d = user.partition("@")
        return d, n
    return "", user


def construct_moniker(computer: str | None = None, impersonation_level: str = "", authentication_level: str = "",
                      authority: str = "", privileges: Iterable[str] | None = None, namespace: str | None = None,
                      suffix: str | None = None) -> str:
    security = []
    if impersonation_level:
        security.append(f"impersonationLevel={impersonation_level}")
    if authentication_level:
        security.append(f"authenticationLevel={authentication_level}")
    if authority:
        security.append(f"authority=\"{authority}\"")
    if privileges:
        security.append("(" + ", ".join(privileges) + ")")
    out = "winmgmts:"
    if security:
        out += "{" + ",".join(security) + "}!"
    ns = namespace or "root/cimv2"
    if not ns.lower().startswith("root"):
        ns = "root/" + ns
    out += f"//{computer or '.'}/{ns}"
    if suffix:
        out += f":{suffix}"
    return out


def Registry(computer: str | None = None, impersonation_level: str = "Impersonate",
             authentication_level: str = "Default", authority: str | None = None,
             privileges: Iterable[str] | None = None, moniker: str | None = None) -> Any:
    """The StdRegProv class of root/default (Tim Golden's deprecated helper)."""
    return WMI(computer or "", namespace="root/default").StdRegProv


_wmi_namespace = _Connection
_wmi_class = _Class_
_wmi_object = _Instance_
_wmi_watcher = _EventWatcher

"""PyMI's ``mi`` module on openmi: the same classes, methods, keywords and constants, on any OS.

Code written for cloudbase's PyMI (``import mi``) runs with ``from openmi import mi``. Everything here is
a thin layer over openmi's own Application → Session → Operation; nothing is implemented twice.

Where PyMI is wrong, this module is right (README, "Coming from PyMI / wmi"):

- ``mi_error.MI_RESULT_*`` carry mi.h's values; PyMI's are off by two from NAMESPACE_NOT_EMPTY (20) on.
- ``error.args[0]["error_code"]`` is the WBEM HRESULT that matches the MI result (NOT_FOUND →
  0x80041002) when the server sent none, so HRESULT checks keep working; PyMI leaves it 0.
- Elements can be added to an instance and set by attribute (PyMI raises SystemError on attribute writes).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from .cim.classes import Class as _Class
from .cim.errors import MIError
from .cim.instance import Instance as _Instance
from .cim.types import MIResult, MIType
from .client.application import Application as _Application
from .client.operation import Operation as _Operation
from .client.options import AuthType as _Auth
from .client.options import DestinationOptions as _DestinationOptions
from .client.options import OperationOptions as _OperationOptions
from .client.session import Session as _Session

log = logging.getLogger("openmi.mi")

# --- constants ----------------------------------------------------------------------------------------

PROTOCOL_WINRM = "WINRM"
PROTOCOL_WMIDCOM = "WMIDCOM"

MI_BOOLEAN, MI_UINT8, MI_SINT8, MI_UINT16, MI_SINT16, MI_UINT32, MI_SINT32, MI_UINT64, MI_SINT64 = range(9)
MI_REAL32, MI_REAL64, MI_CHAR16, MI_DATETIME, MI_STRING, MI_REFERENCE, MI_INSTANCE = range(9, 16)
MI_ARRAY = 16
MI_BOOLEANA = 16
MI_UINT8A, MI_SINT8A, MI_UINT16A, MI_SINT16A, MI_UINT32A, MI_SINT32A, MI_UINT64A, MI_SINT64A = range(17, 25)
MI_REAL32A, MI_REAL64A, MI_CHAR16A, MI_DATETIMEA, MI_STRINGA, MI_REFERENCEA, MI_INSTANCEA = range(25, 32)

MI_AUTH_TYPE_DEFAULT = _Auth.DEFAULT
MI_AUTH_TYPE_NONE = _Auth.NONE
MI_AUTH_TYPE_DIGEST = _Auth.DIGEST
MI_AUTH_TYPE_NEGO_WITH_CREDS = _Auth.NEGO_WITH_CREDS
MI_AUTH_TYPE_NEGO_NO_CREDS = _Auth.NEGO_NO_CREDS
MI_AUTH_TYPE_BASIC = _Auth.BASIC
MI_AUTH_TYPE_KERBEROS = _Auth.KERBEROS
MI_AUTH_TYPE_CLIENT_CERTS = _Auth.CLIENT_CERTS
MI_AUTH_TYPE_NTLM = _Auth.NTLM
MI_AUTH_TYPE_CREDSSP = _Auth.CREDSSP
MI_AUTH_TYPE_ISSUER_CERT = _Auth.ISSUER_CERT

MI_TRANSPORT_HTTP = "HTTP"
MI_TRANSPORT_HTTPS = "HTTPS"

#: the WBEM HRESULT (WbemErrorEnum) that stands for each MI result
WBEM_HRESULTS: dict[MIResult, int] = {
    MIResult.OK: 0,
    MIResult.FAILED: 0x80041001,
    MIResult.ACCESS_DENIED: 0x80041003,
    MIResult.INVALID_NAMESPACE: 0x8004100E,
    MIResult.INVALID_PARAMETER: 0x80041008,
    MIResult.INVALID_CLASS: 0x80041010,
    MIResult.NOT_FOUND: 0x80041002,
    MIResult.NOT_SUPPORTED: 0x8004100C,
    MIResult.CLASS_HAS_CHILDREN: 0x80041025,
    MIResult.CLASS_HAS_INSTANCES: 0x80041026,
    MIResult.INVALID_SUPERCLASS: 0x8004100D,
    MIResult.ALREADY_EXISTS: 0x80041019,
    MIResult.NO_SUCH_PROPERTY: 0x80041031,
    MIResult.TYPE_MISMATCH: 0x80041005,
    MIResult.QUERY_LANGUAGE_NOT_SUPPORTED: 0x80041018,
    MIResult.INVALID_QUERY: 0x80041017,
    MIResult.METHOD_NOT_AVAILABLE: 0x80041055,
    MIResult.METHOD_NOT_FOUND: 0x8004102E,
    MIResult.NAMESPACE_NOT_EMPTY: 0x80041001,
    MIResult.INVALID_ENUMERATION_CONTEXT: 0x80041008,
    MIResult.INVALID_OPERATION_TIMEOUT: 0x80041008,
    MIResult.PULL_HAS_BEEN_ABANDONED: 0x80041032,
    MIResult.PULL_CANNOT_BE_ABANDONED: 0x80041001,
    MIResult.FILTERED_ENUMERATION_NOT_SUPPORTED: 0x8004100C,
    MIResult.CONTINUATION_ON_ERROR_NOT_SUPPORTED: 0x8004100C,
    MIResult.SERVER_LIMITS_EXCEEDED: 0x8004106C,
    MIResult.SERVER_IS_SHUTTING_DOWN: 0x80041033,
}
WMI_ERR_TIMEOUT = 0x00040004


class _MiErrorConstants:
    """``mi.mi_error``: every MI_RESULT_* with mi.h's value."""

    def __init__(self) -> None:
        for r in MIResult:
            setattr(self, r.mi_name, int(r))

    def __repr__(self) -> str:
        return "<openmi.mi.mi_error>"


mi_error = _MiErrorConstants()


class error(Exception):
    """``mi.error``: ``args[0]`` is ``{"error_code": int, "mi_result": int, "message": str}``."""


class timeouterror(error):
    """``mi.timeouterror``: the operation timed out (error_code 0x00040004)."""


for _e in (error, timeouterror):
    _e.__module__ = "PyMI"


class _NoSuchElement(error, AttributeError):
    """An unknown element read by attribute: both ``mi.error`` (as PyMI raises) and AttributeError (so that
    ``hasattr``/``getattr(x, n, default)`` work)."""


def _error_info(exc: MIError) -> dict[str, Any]:
    result = exc.result if isinstance(exc.result, MIResult) else MIResult.FAILED
    code = 0
    details = exc.details
    if details is not None and "error_Code" in details and details["error_Code"] is not None:
        kind = str(details["error_Type"]).upper() if details.get("error_Type") else ""
        if kind in ("HRESULT", "WIN32", "WMI"):  # a Windows code (MSFT_WmiError); "MI" codes are MI results
            try:
                code = int(details["error_Code"])
            except (TypeError, ValueError):
                code = 0
            if kind == "WIN32" and code and code < 0x10000:
                code = 0x80070000 | code  # HRESULT_FROM_WIN32
    if not code:
        code = WBEM_HRESULTS.get(result, 0x80041001)
    return {"error_code": code & 0xFFFFFFFF, "mi_result": int(result), "message": exc.message or result.mi_name}


def _raise(exc: MIError) -> NoReturn:
    info = _error_info(exc)
    timed_out = info["error_code"] == WMI_ERR_TIMEOUT or "timed out" in (exc.message or "")
    if timed_out:
        info["error_code"] = WMI_ERR_TIMEOUT
        raise timeouterror(info) from exc
    raise error(info) from exc


# --- values -------------------------------------------------------------------------------------------


def _to_py(value: Any, mitype: int) -> Any:
    """openmi's value as PyMI hands it out."""
    if value is None:
        return None
    if isinstance(value, list):
        scalar = mitype & 0x0F
        return tuple(_to_py(v, scalar) for v in value)
    if isinstance(value, _Instance):
        return Instance._wrap(value)
    if hasattr(value, "class_name") and hasattr(value, "keys") and (mitype & 0x0F) == MI_REFERENCE:
        return Instance._wrap(_reference_instance(value))
    if isinstance(value, _dt.datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=None)  # PyMI drops the UTC offset
    return value


def _reference_instance(ref: Any) -> _Instance:
    """A reference value (however openmi types it) as the key instance it names."""
    if isinstance(ref, _Instance):
        return ref
    keys = ref.keys if not callable(ref.keys) else ref.keys()
    inst = _Instance(ref.class_name, dict(keys), namespace=getattr(ref, "namespace", None))
    return inst


def _from_py(value: Any) -> Any:
    if isinstance(value, (Instance, Class)):
        return value._obj
    if isinstance(value, tuple):
        return [_from_py(v) for v in value]
    if isinstance(value, list):
        return [_from_py(v) for v in value]
    return value


# --- objects ------------------------------------------------------------------------------------------


class _Wrapper:
    __slots__ = ("_obj",)
    _obj: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise error({"error_code": 0, "mi_result": int(MIResult.FAILED),
                     "message": f"A {type(self).__name__} object cannot be allocated directly."})

    @classmethod
    def _wrap(cls, obj: Any) -> Any:
        w = object.__new__(cls)
        object.__setattr__(w, "_obj", obj)
        return w


class Instance(_Wrapper):
    """``mi.Instance``: elements by name or index, as items or attributes; ``get_element`` → (name, type, value)."""

    __slots__ = ()
    _obj: _Instance

    def _element(self, key: str | int) -> Any:
        inst = self._obj
        if isinstance(key, int) and not isinstance(key, bool):
            els = inst.elements
            if not -len(els) <= key < len(els):
                raise IndexError(f"element index {key} out of range ({len(els)} elements)")
            return els[key]
        if not isinstance(key, str):
            raise TypeError(f"an element is named by a string or an index, not {type(key).__name__}")
        if key not in inst:
            raise error({"error_code": WBEM_HRESULTS[MIResult.NO_SUCH_PROPERTY],
                         "mi_result": int(MIResult.NO_SUCH_PROPERTY),
                         "message": f"{inst.class_name} has no element {key!r}"})
        return inst.get_element(key)

    def __getitem__(self, key: str | int) -> Any:
        el = self._element(key)
        return _to_py(el.value, int(el.type))

    def __setitem__(self, key: str | int, value: Any) -> None:
        inst = self._obj
        name = self._element(key).name if isinstance(key, int) and not isinstance(key, bool) else str(key)
        try:
            inst[name] = _from_py(value)
        except MIError as exc:
            _raise(exc)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            el = self._element(name)
        except error as exc:
            raise _NoSuchElement(*exc.args) from None
        return _to_py(el.value, int(el.type))

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __len__(self) -> int:
        return self._obj.element_count

    def __iter__(self) -> Iterator[str]:
        return iter([el.name for el in self._obj.elements])

    def __contains__(self, name: object) -> bool:
        return name in self._obj

    def get_element(self, key: str | int) -> tuple[str, int, Any]:
        el = self._element(key)
        return el.name, int(el.type), _to_py(el.value, int(el.type))

    def get_class_name(self) -> str:
        return self._obj.class_name

    def get_namespace(self) -> str | None:
        return self._obj.namespace

    def get_server_name(self) -> str | None:
        return self._obj.server_name

    def get_class(self) -> Class | None:
        cls = self._obj.cls
        return Class._wrap(cls) if cls is not None else None

    def get_path(self) -> str:
        """``\\\\SERVER\\root\\cimv2:Class.Key="v"``; "" for an instance that came from no server."""
        inst = self._obj
        if inst.namespace is None and inst.server_name is None:
            return ""
        server = inst.server_name or "."
        ns = (inst.namespace or "root/cimv2").replace("/", "\\")
        rel = inst.path.split(":", 1)[1] if inst.namespace else inst.path
        return f"\\\\{server}\\{ns}:{rel}"

    def clone(self) -> Instance:
        return Instance._wrap(self._obj.clone())  # type: ignore[no-any-return]

    @property
    def openmi_instance(self) -> _Instance:
        """The openmi.Instance underneath (not in PyMI)."""
        return self._obj

    def __repr__(self) -> str:
        return f"<mi.Instance {self._obj.path}>"


class Class(_Wrapper):
    """``mi.Class``: default values by name or index; the class's name, namespace and server."""

    __slots__ = ()
    _obj: _Class

    def __getitem__(self, key: str | int) -> Any:
        props = list(self._obj.properties.values())
        if isinstance(key, int) and not isinstance(key, bool):
            p = props[key]
        elif isinstance(key, str) and key in self._obj.properties:
            p = self._obj.properties[key]
        else:
            raise error({"error_code": WBEM_HRESULTS[MIResult.NO_SUCH_PROPERTY],
                         "mi_result": int(MIResult.NO_SUCH_PROPERTY),
                         "message": f"class {self._obj.name} has no element {key!r}"})
        return _to_py(p.value, int(p.type))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except error as exc:
            raise _NoSuchElement(*exc.args) from None

    def __len__(self) -> int:
        return len(self._obj.properties)

    def get_class_name(self) -> str:
        return self._obj.name

    def get_namespace(self) -> str | None:
        return self._obj.namespace

    def get_server_name(self) -> str | None:
        return self._obj.server_name

    def clone(self) -> Class:
        return Class._wrap(self._obj.clone())  # type: ignore[no-any-return]

    @property
    def openmi_class(self) -> _Class:
        """The openmi.Class underneath (not in PyMI)."""
        return self._obj

    def __repr__(self) -> str:
        return f"<mi.Class {self._obj.name}>"


class Operation(_Wrapper):
    """``mi.operation``: ``get_next_instance()`` (or class, or indication) until it returns None."""

    __slots__ = ()
    _obj: _Operation

    def _next(self, reader: Callable[[], Any]) -> Any:
        op = self._obj
        if not op.more_results:
            return None
        r = reader()
        if r.result != MIResult.OK:
            _raise(MIError(r.result, r.error_message, r.error_details))
        item = r[0]
        while item is None and r.more_results:  # an empty "operation started" result, or a final empty one
            r = reader()
            if r.result != MIResult.OK:
                _raise(MIError(r.result, r.error_message, r.error_details))
            item = r[0]
        return item

    def get_next_instance(self) -> Instance | None:
        item = self._next(self._obj.get_instance)
        return Instance._wrap(item) if item is not None else None

    def get_next_class(self) -> Class | None:
        item = self._next(self._obj.get_class)
        return Class._wrap(item) if item is not None else None

    def get_next_indication(self) -> Instance | None:
        reader = getattr(self._obj, "get_indication", None)
        if reader is None:
            raise error({"error_code": WBEM_HRESULTS[MIResult.NOT_SUPPORTED],
                         "mi_result": int(MIResult.NOT_SUPPORTED), "message": "this operation has no indications"})
        item = self._next(reader)
        return Instance._wrap(item) if item is not None else None

    def has_more_results(self) -> bool:
        return bool(self._obj.more_results)

    def cancel(self) -> None:
        self._obj.cancel()

    def close(self) -> None:
        self._obj.close()

    def __enter__(self) -> Operation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OperationOptions(_Wrapper):
    """``mi.operationoptions``: a timeout and custom options."""

    __slots__ = ()
    _obj: _OperationOptions

    def clone(self) -> OperationOptions:
        return OperationOptions._wrap(self._obj.clone())  # type: ignore[no-any-return]

    def get_timeout(self) -> _dt.timedelta | None:
        return self._obj.get_timeout()

    def set_timeout(self, timeout: _dt.timedelta) -> None:
        if not isinstance(timeout, _dt.timedelta):
            raise TypeError("the timeout is a datetime.timedelta")
        self._obj.set_timeout(timeout)

    def set_custom_option(self, name: str, value_type: int, value: Any, must_comply: bool = True) -> None:
        self._obj.set_custom_option(name, value, MIType(value_type), must_comply)


class DestinationOptions(_Wrapper):
    """``mi.destinationoptions``: transport, timeout, locale and credentials for a remote session.

    Not in PyMI (which uses the Windows certificate store): ``set_ca_file(path)`` and
    ``set_skip_ca_check(bool)``; ``OPENMI_CAFILE`` in the environment gives the default CA file. Nor (it only
    speaks to WMI): ``set_uri_style("dmtf")`` for a server such as OMI, also from ``OPENMI_URI_STYLE``.
    """

    __slots__ = ()
    _obj: _DestinationOptions

    def clone(self) -> DestinationOptions:
        return DestinationOptions._wrap(self._obj.clone())  # type: ignore[no-any-return]

    def get_ui_locale(self) -> str | None:
        return self._obj.ui_locale

    def set_ui_locale(self, locale_name: str) -> None:
        self._obj.ui_locale = locale_name

    def get_transport(self) -> str:
        return self._obj.transport.upper()

    def set_transport(self, transport: str) -> None:
        t = str(transport).lower()
        if t not in ("http", "https"):
            raise ValueError(f"the transport is mi.MI_TRANSPORT_HTTP or mi.MI_TRANSPORT_HTTPS, not {transport!r}")
        explicit_port = self._obj.port not in (5985, 5986)
        self._obj.transport = t
        if not explicit_port:
            self._obj.port = 5986 if t == "https" else 5985

    def get_timeout(self) -> _dt.timedelta | None:
        t = self._obj.timeout
        return None if t is None else _dt.timedelta(seconds=t)

    def set_timeout(self, timeout: _dt.timedelta) -> None:
        if not isinstance(timeout, _dt.timedelta):
            raise TypeError("the timeout is a datetime.timedelta")
        self._obj.timeout = timeout.total_seconds()

    def add_credentials(self, auth_type: str, domain: str = "", username: str = "", password: str = "",
                        cert_thumbprint: str = "") -> None:
        if cert_thumbprint:
            self._obj.add_credentials(_Auth.CLIENT_CERTS, cert_thumbprint=cert_thumbprint)
            return
        if auth_type == _Auth.DEFAULT and username:
            auth_type = _Auth.NTLM  # Negotiate without Kerberos tickets: NTLM, with message encryption
        self._obj.add_credentials(auth_type, username or None, password or None, domain or None)

    def set_ca_file(self, path: str) -> None:
        self._obj.ca_file = path

    def get_uri_style(self) -> str:
        return self._obj.uri_style

    def set_uri_style(self, style: str) -> None:
        """``"wmi"`` (WinRM's resource URIs, the default unless OPENMI_URI_STYLE says otherwise) or ``"dmtf"``
        (DMTF URIs with a ``__cimnamespace`` selector: OMI, openmi)."""
        if style not in ("wmi", "dmtf"):
            raise ValueError(f"the URI style is 'wmi' or 'dmtf', not {style!r}")
        self._obj.uri_style = style

    def set_skip_ca_check(self, skip: bool) -> None:
        self._obj.skip_ca_check = bool(skip)


class Serializer(_Wrapper):
    """``mi.Serializer``: instances and classes as MI_XML text."""

    __slots__ = ()

    def serialize_instance(self, instance: Instance, include_class: bool = False) -> str:
        from .cim.mof.mixml import to_mi_xml

        inst = instance._obj
        flags = 1 if include_class else 0
        out = to_mi_xml(inst, flags)
        return out.decode() if isinstance(out, bytes) else str(out)

    def serialize_class(self, mi_class: Class, deep: bool = False) -> str:
        from .cim.mof.mixml import to_mi_xml

        out = to_mi_xml(mi_class._obj, 1 if deep else 0)
        return out.decode() if isinstance(out, bytes) else str(out)

    def __enter__(self) -> Serializer:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class Session(_Wrapper):
    """``mi.Session``: PyMI's operations; each returns an ``mi.Operation`` or, for writes, runs to the end."""

    __slots__ = ()
    _obj: _Session

    @staticmethod
    def _opts(operation_options: OperationOptions | None) -> _OperationOptions | None:
        return operation_options._obj if operation_options is not None else None

    def exec_query(self, ns: str, query: str, dialect: str = "WQL",
                   operation_options: OperationOptions | None = None) -> Operation:
        op = self._obj.query_instances(ns, dialect, query, options=self._opts(operation_options))
        return Operation._wrap(op)  # type: ignore[no-any-return]

    def get_instance(self, ns: str, key_instance: Instance) -> Operation:
        return Operation._wrap(self._obj.get_instance(ns, key_instance._obj))  # type: ignore[no-any-return]

    def get_class(self, ns: str, class_name: str) -> Operation:
        return Operation._wrap(self._obj.get_class(ns, class_name))  # type: ignore[no-any-return]

    def get_associators(self, ns: str, instance: Instance, assoc_class: str = "", result_class: str = "",
                        role: str = "", result_role: str = "", keys_only: bool = False,
                        operation_options: OperationOptions | None = None) -> Operation:
        op = self._obj.associator_instances(
            ns, instance._obj, assoc_class=assoc_class or None, result_class=result_class or None,
            role=role or None, result_role=result_role or None, keys_only=keys_only,
            options=self._opts(operation_options))
        return Operation._wrap(op)  # type: ignore[no-any-return]

    def invoke_method(self, target: Instance | Class, method_name: str, inbound_params: Instance | None = None,
                      operation_options: OperationOptions | None = None) -> Operation:
        params = inbound_params._obj if inbound_params is not None and len(inbound_params) else None
        opts = self._opts(operation_options)
        if isinstance(target, Instance):
            inst = target._obj
            op = self._obj.invoke(inst.namespace, inst.class_name, method_name, inst, params, options=opts)
        elif isinstance(target, Class):
            cls = target._obj
            op = self._obj.invoke(cls.namespace, cls.name, method_name, None, params, options=opts)
        else:
            raise TypeError(f"invoke_method's target is an mi.Instance or an mi.Class, not {type(target).__name__}")
        return Operation._wrap(op)  # type: ignore[no-any-return]

    def _write(self, op: _Operation) -> None:
        with op:
            r = op.get_instance()
            while r.more_results and r.result == MIResult.OK:
                r = op.get_instance()
            if r.result != MIResult.OK:
                _raise(MIError(r.result, r.error_message, r.error_details))

    def create_instance(self, ns: str, instance: Instance, operation_options: OperationOptions | None = None) -> None:
        self._write(self._obj.create_instance(ns, instance._obj, options=self._opts(operation_options)))

    def modify_instance(self, ns: str, instance: Instance, operation_options: OperationOptions | None = None) -> None:
        self._write(self._obj.modify_instance(ns, instance._obj, options=self._opts(operation_options)))

    def delete_instance(self, ns: str, instance: Instance, operation_options: OperationOptions | None = None) -> None:
        self._write(self._obj.delete_instance(ns, instance._obj, options=self._opts(operation_options)))

    def subscribe(self, ns: str, query: str, indication_result: Callable[..., Any] | None = None,
                  operation_options: OperationOptions | None = None, dialect: str = "WQL") -> Operation:
        subscribe = getattr(self._obj, "subscribe", None)
        if subscribe is None:
            raise error({"error_code": WBEM_HRESULTS[MIResult.NOT_SUPPORTED],
                         "mi_result": int(MIResult.NOT_SUPPORTED), "message": "subscriptions are not available"})
        callbacks = None
        if indication_result is not None:
            from .client.options import OperationCallbacks

            cb = indication_result

            def deliver(_op: Any, _ctx: Any, instance: Any, bookmark: Any, machine_id: Any, more: bool,
                        result: Any, message: Any, details: Any, *rest: Any) -> None:
                cb(Instance._wrap(instance) if instance is not None else None, bookmark, machine_id, more,
                   int(result), message, Instance._wrap(details) if details is not None else None)

            callbacks = OperationCallbacks(**{"indication_result": deliver})
        op = subscribe(ns, dialect, query, options=self._opts(operation_options), callbacks=callbacks)
        return Operation._wrap(op)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._obj.close()

    @property
    def openmi_session(self) -> _Session:
        """The openmi.Session underneath (not in PyMI)."""
        return self._obj

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOCAL = (None, "", ".", "localhost")
_LOCAL_SERVER: Any = None


def set_local_server(server: Any) -> None:
    """The embedded :class:`openmi.Server` that ``computer_name="."`` reaches (not in PyMI; None: the
    default embedded server, or ``OPENMI_WMI_LOCAL``)."""
    global _LOCAL_SERVER
    _LOCAL_SERVER = server


class Application:
    """``mi.Application(app_id="")``: makes sessions, instances, options and serializers.

    ``computer_name`` ``"."`` (or empty) is the local openmi server: the embedded default server, or
    ``OPENMI_WMI_LOCAL`` (a WS-Man URL such as ``https://127.0.0.1:5986/wsman``) when it is set.
    Another name is a WinRM endpoint (``http://NAME:5985/wsman``, ``https`` on 5986 with
    MI_TRANSPORT_HTTPS); a full ``http(s)://host:port/path`` URL is taken as it is.
    """

    def __init__(self, app_id: str = "") -> None:
        self._app = _Application(app_id)

    def create_session(self, protocol: str = "", computer_name: str = ".",
                       destination_options: DestinationOptions | None = None) -> Session:
        proto = (protocol or "").upper()
        if proto == PROTOCOL_WMIDCOM:
            log.debug("protocol WMIDCOM: openmi speaks WS-Management (WinRM) instead")
        elif proto not in ("", PROTOCOL_WINRM):
            raise error({"error_code": WBEM_HRESULTS[MIResult.INVALID_PARAMETER],
                         "mi_result": int(MIResult.INVALID_PARAMETER), "message": f"unknown protocol {protocol!r}"})
        opts = destination_options._obj.clone() if destination_options is not None else None
        target: str | None = computer_name
        if target in _LOCAL:
            target = None if _LOCAL_SERVER is not None else os.environ.get("OPENMI_WMI_LOCAL") or None
            if target is None:
                try:
                    return Session._wrap(  # type: ignore[no-any-return,unused-ignore]
                        self._app.new_session(server=_LOCAL_SERVER) if _LOCAL_SERVER is not None
                        else self._app.new_session())
                except MIError as exc:
                    _raise(exc)
        host, opts = _destination(str(target), opts)
        try:
            return Session._wrap(self._app.new_session(host, "WINRM", opts))  # type: ignore[no-any-return]
        except MIError as exc:
            _raise(exc)

    def create_instance(self, class_name: str) -> Instance:
        return Instance._wrap(_Instance(class_name))  # type: ignore[no-any-return]

    def create_instance_from_class(self, class_name: str, mi_class: Class) -> Instance:
        cls = mi_class._obj
        inst = _Instance(class_name, namespace=cls.namespace, cls=cls)
        return Instance._wrap(inst)  # type: ignore[no-any-return]

    def create_method_params(self, mi_class: Class, method_name: str) -> Instance:
        cls = mi_class._obj
        method = cls.methods.get(method_name)
        if method is None:
            raise error({"error_code": WBEM_HRESULTS[MIResult.METHOD_NOT_FOUND],
                         "mi_result": int(MIResult.METHOD_NOT_FOUND),
                         "message": f"class {cls.name} has no method {method_name!r}"})
        params = _Instance("__parameters")
        for p in method.parameters.values():
            if p.in_:
                params.add_element(p.name, None, p.type)
        return Instance._wrap(params)  # type: ignore[no-any-return]

    def create_serializer(self) -> Serializer:
        return Serializer._wrap(None)  # type: ignore[no-any-return]

    def create_operation_options(self) -> OperationOptions:
        return OperationOptions._wrap(_OperationOptions())  # type: ignore[no-any-return]

    def create_destination_options(self) -> DestinationOptions:
        opts = _DestinationOptions()
        ca = os.environ.get("OPENMI_CAFILE")
        if ca:
            opts.ca_file = ca
        return DestinationOptions._wrap(opts)  # type: ignore[no-any-return]

    def close(self) -> None:
        self._app.close()

    @property
    def openmi_application(self) -> _Application:
        """The openmi.Application underneath (not in PyMI)."""
        return self._app

    def __enter__(self) -> Application:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _destination(target: str, opts: _DestinationOptions | None) -> tuple[str, _DestinationOptions]:
    """A computer name or URL as (host[:port], destination options)."""
    from urllib.parse import urlsplit

    if opts is None:
        opts = _DestinationOptions()
        ca = os.environ.get("OPENMI_CAFILE")
        if ca:
            opts.ca_file = ca
    if "://" in target:
        u = urlsplit(target)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise error({"error_code": WBEM_HRESULTS[MIResult.INVALID_PARAMETER],
                         "mi_result": int(MIResult.INVALID_PARAMETER),
                         "message": f"{target!r} is not an http(s)://host[:port][/path] URL"})
        opts.transport = u.scheme
        opts.port = u.port or (5986 if u.scheme == "https" else 5985)
        if u.path and u.path != "/":
            opts.url_prefix = u.path
        return u.hostname, opts
    return target, opts

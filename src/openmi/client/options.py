"""Operation options, destination options and operation callbacks (MI_OperationOptions,
MI_DestinationOptions, MI_OperationCallbacks)."""

from __future__ import annotations

import datetime as _dt
import enum
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..cim.types import MIType
from ..cim.values import coerce, infer_type


def _seconds(value: float | _dt.timedelta | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        secs = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        secs = float(value)
    else:
        raise TypeError(f"{what} is seconds (a number) or a datetime.timedelta, not {type(value).__name__}")
    if secs <= 0:
        raise ValueError(f"{what} must be positive, not {secs}")
    return secs


@dataclass
class CustomOption:
    name: str
    value: Any
    type: MIType
    must_comply: bool = False


class OperationOptions:
    """Per-operation options: the timeout, custom options for the provider, WS-Man resource URI overrides.

    ``must_understand=True`` asks the server to fail an operation whose options it cannot honour.
    """

    def __init__(self, timeout: float | _dt.timedelta | None = None, *, must_understand: bool = False,
                 resource_uri: str | None = None, resource_uri_prefix: str | None = None) -> None:
        self.timeout = timeout
        self.must_understand = bool(must_understand)
        self.resource_uri = resource_uri
        self.resource_uri_prefix = resource_uri_prefix
        self.custom_options: dict[str, CustomOption] = {}

    @property
    def timeout(self) -> float | None:
        """Seconds; None means the destination's default."""
        return self._timeout

    @timeout.setter
    def timeout(self, value: float | _dt.timedelta | None) -> None:
        self._timeout = _seconds(value, "the operation timeout")

    def set_timeout(self, value: float | _dt.timedelta) -> None:
        self.timeout = value

    def get_timeout(self) -> _dt.timedelta | None:
        return None if self._timeout is None else _dt.timedelta(seconds=self._timeout)

    def set_custom_option(self, name: str, value: Any, type: MIType | None = None, must_comply: bool = False) -> None:
        """A named, typed option a provider reads from ``ctx.options`` (sent as ``wsman:OptionSet`` remotely)."""
        if not isinstance(name, str) or not name:
            raise ValueError("a custom option needs a name")
        t = MIType(type) if type is not None else infer_type(value, name)
        self.custom_options[name] = CustomOption(name, coerce(value, t, name), t, bool(must_comply))

    def get_custom_option(self, name: str) -> Any:
        return self.custom_options[name].value

    def clone(self) -> OperationOptions:
        out = OperationOptions(self._timeout, must_understand=self.must_understand, resource_uri=self.resource_uri,
                               resource_uri_prefix=self.resource_uri_prefix)
        out.custom_options = dict(self.custom_options)
        return out

    def __repr__(self) -> str:
        return f"OperationOptions(timeout={self._timeout}, custom_options={list(self.custom_options)})"


class AuthType:
    """MI_AUTH_TYPE_* strings."""

    DEFAULT = "Default"
    NONE = "None"
    DIGEST = "Digest"
    NEGO_WITH_CREDS = "NegoWithCreds"
    NEGO_NO_CREDS = "NegoNoCreds"
    NEGOTIATE = "NegoWithCreds"
    BASIC = "Basic"
    KERBEROS = "Kerberos"
    CLIENT_CERTS = "ClientCerts"
    NTLM = "Ntlmdomain"
    CREDSSP = "CredSSP"
    ISSUER_CERT = "IssuerCert"


@dataclass
class Credentials:
    auth_type: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    domain: str | None = None
    cert_thumbprint: str | None = None


class DestinationOptions:
    """How to reach a remote destination over WS-Management (see the remote-session documentation)."""

    def __init__(self, transport: str = "http", port: int | None = None, *, encryption: str = "auto",
                 uri_style: str | None = None, timeout: float | _dt.timedelta | None = None, ca_file: str | None = None,
                 skip_ca_check: bool = False, skip_cn_check: bool = False, proxy: str | None = None,
                 max_envelope_size: int = 512000, data_locale: str | None = None, ui_locale: str | None = None,
                 packet_encoding: str = "utf-8", max_elements: int = 100, cert_file: str | None = None,
                 key_file: str | None = None, url_prefix: str = "/wsman", type_results: bool = True) -> None:
        transport = transport.lower()
        if transport not in ("http", "https"):
            raise ValueError(f"transport is 'http' or 'https', not {transport!r}")
        if encryption not in ("auto", "always", "never"):
            raise ValueError(f"encryption is 'auto', 'always' or 'never', not {encryption!r}")
        if uri_style is None:  # WinRM's, unless OPENMI_URI_STYLE says otherwise (as on the command line)
            uri_style = os.environ.get("OPENMI_URI_STYLE", "").strip().lower() or "wmi"
            if uri_style not in ("wmi", "dmtf"):
                raise ValueError(f"OPENMI_URI_STYLE is 'wmi' or 'dmtf', not {uri_style!r}")
        if uri_style not in ("wmi", "dmtf"):
            raise ValueError(f"uri_style is 'wmi' or 'dmtf', not {uri_style!r}")
        enc = packet_encoding.lower().replace("-", "").replace("_", "")
        if enc not in ("utf8", "utf16", "default"):
            raise ValueError(f"packet_encoding is 'utf-8' or 'utf-16', not {packet_encoding!r}")
        self.transport = transport
        self.port = port if port is not None else (5986 if transport == "https" else 5985)
        self.encryption = encryption
        self.uri_style = uri_style
        self.timeout = _seconds(timeout, "the destination timeout")
        self.ca_file = ca_file
        self.skip_ca_check = bool(skip_ca_check)
        self.skip_cn_check = bool(skip_cn_check)
        self.proxy = proxy
        self.max_envelope_size = int(max_envelope_size)
        self.data_locale = data_locale
        self.ui_locale = ui_locale
        self.packet_encoding = "utf-16" if enc == "utf16" else "utf-8"
        self.max_elements = int(max_elements)
        self.cert_file = cert_file
        self.key_file = key_file
        self.url_prefix = url_prefix
        # Fetch each class once per session (GetClass) and type results with it, as Windows MI does;
        # False leaves values as the wire gives them (text) and sends no GetClass.
        self.type_results = bool(type_results)
        self.credentials: list[Credentials] = []

    def add_credentials(self, auth_type: str, username: str | None = None, password: str | None = None,
                        domain: str | None = None, cert_thumbprint: str | None = None) -> None:
        self.credentials.append(Credentials(auth_type, username, password, domain, cert_thumbprint))

    def clone(self) -> DestinationOptions:
        import copy

        return copy.deepcopy(self)


Callback = Callable[..., Any]


@dataclass
class OperationCallbacks:
    """Callbacks for one operation, with mi.h's parameter order:

    - ``instance_result(operation, context, instance, more_results, result, error_message, error_details)``
    - ``class_result(operation, context, cls, more_results, result, error_message, error_details)``
    - ``indication_result(operation, context, instance, bookmark, machine_id, more_results, result,
      error_message, error_details)``
      (with ``MANUAL_ACK_RESULTS`` both take an eighth argument, ``result_acknowledgement()``, to be called
      before the next result comes)
    - ``write_message(operation, context, channel, message)``
    - ``write_progress(operation, context, activity, current_operation, status_description,
      percent_complete, seconds_remaining)``
    - ``write_error(operation, context, error_instance) -> ResponseType | bool`` (continue?)
    - ``prompt_user(operation, context, message, prompt_type) -> ResponseType | bool``

    The operation is asynchronous when the result callback of its kind is set; ``context`` is echoed.
    """

    instance_result: Callback | None = None
    class_result: Callback | None = None
    indication_result: Callback | None = None
    write_message: Callback | None = None
    write_progress: Callback | None = None
    write_error: Callback | None = None
    prompt_user: Callback | None = None
    context: Any = None


class DeliveryType(enum.IntEnum):
    """MI_SubscriptionDeliveryType: how a remote server hands over events (Pull, or Push to a listener)."""

    PULL = 1
    PUSH = 2


#: SubscriptionDeliveryOptions' push_mode spellings → the delivery a remote session asks for
PUSH_MODES = {"push": "push", "pushwithack": "push-with-ack", "events": "events"}


class SubscriptionDeliveryOptions:
    """MI_SubscriptionDeliveryOptions: delivery mode, heartbeat interval, expiration, bookmark, and the
    bound on events held for a subscriber that reads slower than they come.

    ``expiration`` is seconds from the start, a ``timedelta``, or an absolute ``datetime``;
    ``heartbeat`` is seconds (remote Pull: how long a Pull waits before an empty answer says "still here");
    ``bookmark`` resumes after an event a subscription delivered before, or BOOKMARK_OLDEST/NEWEST.

    PUSH (remote sessions): the server POSTs events to a listener this session opens on ``destination``
    (default: the local address facing the server) and ``port`` (default: any free port). ``push_mode``
    picks the WS-Man delivery mode: "PushWithAck" (the default: each event acknowledged), "Push", or
    "Events" (batches of up to ``max_elements`` events gathered for up to ``max_latency`` seconds).
    """

    def __init__(self, delivery_type: DeliveryType = DeliveryType.PULL, *,
                 heartbeat: float | _dt.timedelta | None = None,
                 expiration: float | _dt.timedelta | _dt.datetime | None = None, bookmark: str | None = None,
                 max_latency: float | _dt.timedelta | None = None, queue_size: int = 10_000,
                 destination: str | None = None, port: int | None = None, push_mode: str = "PushWithAck",
                 max_elements: int | None = None) -> None:
        self.delivery_type = DeliveryType(delivery_type)
        self.heartbeat = _seconds(heartbeat, "the heartbeat interval")
        self.expiration = expiration
        self.bookmark = bookmark
        self.max_latency = _seconds(max_latency, "the maximum latency")
        if not isinstance(queue_size, int) or isinstance(queue_size, bool) or queue_size < 1:
            raise ValueError(f"queue_size is a positive number of events, not {queue_size!r}")
        self.queue_size = queue_size
        self.destination = destination
        self.port = port
        mode = PUSH_MODES.get(push_mode.lower().replace("-", "").replace("_", "")) if isinstance(push_mode, str) \
            else None
        if mode is None:
            raise ValueError(f"push_mode is Push, PushWithAck or Events, not {push_mode!r}")
        self.push_mode = mode
        if max_elements is not None and (not isinstance(max_elements, int) or max_elements < 1):
            raise ValueError(f"max_elements is a positive number of events, not {max_elements!r}")
        self.max_elements = max_elements

    @property
    def delivery(self) -> str:
        """The delivery a remote session asks for: "pull", "push", "push-with-ack" or "events"."""
        return "pull" if self.delivery_type == DeliveryType.PULL else self.push_mode

    def expiration_seconds(self) -> float | None:
        """Seconds from now until the subscription expires (None: never)."""
        e = self.expiration
        if e is None:
            return None
        if isinstance(e, _dt.datetime):
            now = _dt.datetime.now(e.tzinfo) if e.tzinfo is not None else _dt.datetime.now()
            return max(0.0, (e - now).total_seconds())
        return _seconds(e, "the expiration")

    def clone(self) -> SubscriptionDeliveryOptions:
        import copy

        return copy.copy(self)

    def __repr__(self) -> str:
        return (f"SubscriptionDeliveryOptions({self.delivery_type.name}, heartbeat={self.heartbeat}, "
                f"expiration={self.expiration!r}, bookmark={self.bookmark!r})")

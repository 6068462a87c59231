"""The request records: one frozen record per MI operation kind, built in one step.

Whoever starts an operation (a session, the WS-Man server) builds one of these with everything the
operation needs — namespace, flags, options, WS-Man resource URI overrides — and hands it to whatever
runs it (the engine, a remote session), with a :class:`~openmi.cim.cancel.CancelToken`. The answer is a
stream of results (instances or classes) that ends with success or an :class:`MIError`.

A record checks its own flags when built (unknown bits, and the kinds that take none), so every
consumer can rely on them; everything else (namespace, instance, class) is checked where it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

from .errors import MIError
from .instance import Instance
from .query import asks_for_classes
from .types import MIResult, OperationFlags

#: Every MI_OPERATIONFLAGS_* bit an operation may carry (0x100 only within POLYMORPHISM_DEEP_BASE_PROPS_ONLY).
KNOWN_FLAGS = 0
for _flag in OperationFlags.__members__.values():  # the multi-bit members too
    KNOWN_FLAGS |= int(_flag)
del _flag

NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Request:
    """What every operation carries.

    ``options`` are the custom operation options (name → value) a provider reads as ``ctx.options``
    and a remote session sends as the WS-Man OptionSet. ``resource_uri`` and ``resource_uri_prefix``
    (MI_OperationOptions_SetResourceUri/-Prefix) choose the WS-Man resource URI of a remote operation;
    the embedded engine ignores them.
    """

    namespace: str | None = None
    _: KW_ONLY  # only the namespace may be given by position: ``GetInstance("root/cimv2", instance=name)``
    flags: int = 0
    options: Mapping[str, Any] = field(default_factory=lambda: NO_OPTIONS)
    resource_uri: str | None = None
    resource_uri_prefix: str | None = None

    #: "instance" (results are instances) or "class"
    result_kind: ClassVar[str] = "instance"
    #: True when the operation has at most one result, delivered with the final status
    single: ClassVar[bool] = True
    #: the MI function's name, used in messages
    name: ClassVar[str] = "Operation"
    #: mi.h: the operation takes flags = 0 and nothing else
    takes_no_flags: ClassVar[bool] = False

    def __post_init__(self) -> None:
        flags = self.flags
        if type(flags) is not int:
            if not isinstance(flags, int) or isinstance(flags, bool):
                raise MIError(MIResult.INVALID_PARAMETER, f"operation flags must be an int, not {flags!r}")
            flags = int(flags)
            object.__setattr__(self, "flags", flags)
        if flags:
            if self.takes_no_flags:
                raise MIError(MIResult.INVALID_PARAMETER,
                              f"{self.name} takes no flags (flags must be 0, got {flags:#x})")
            if flags & ~KNOWN_FLAGS:
                raise MIError(MIResult.INVALID_PARAMETER, f"unknown operation flags {flags:#x}")
        if self.options is not NO_OPTIONS and type(self.options) is not MappingProxyType:
            object.__setattr__(self, "options", MappingProxyType(dict(self.options)) if self.options else NO_OPTIONS)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetInstance(Request):
    instance: Instance | None = None
    name: ClassVar[str] = "GetInstance"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateInstance(Request):
    instance: Instance | None = None
    name: ClassVar[str] = "CreateInstance"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModifyInstance(Request):
    instance: Instance | None = None
    name: ClassVar[str] = "ModifyInstance"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteInstance(Request):
    instance: Instance | None = None
    name: ClassVar[str] = "DeleteInstance"
    takes_no_flags: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class EnumerateInstances(Request):
    class_name: str | None = None
    keys_only: bool = False
    single: ClassVar[bool] = False
    name: ClassVar[str] = "EnumerateInstances"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryInstances(Request):
    """MI_Session_QueryInstances: ``dialect`` "WQL"/"CQL" (or a WS-Man dialect URI) and the query text."""

    dialect: str | None = None
    query: str | None = None
    single: ClassVar[bool] = False
    name: ClassVar[str] = "QueryInstances"

    @property
    def result_kind(self) -> str:  # type: ignore[override]
        """"class" for a schema query (``ASSOCIATORS OF … WHERE ClassDefsOnly`` / ``SchemaOnly``), whose
        results are class definitions, read with ``get_class()``; "instance" otherwise."""
        return "class" if asks_for_classes(self.query, self.dialect) else "instance"


@dataclass(frozen=True, slots=True, kw_only=True)
class AssociatorInstances(Request):
    """The instances associated with ``instance`` (MI_Session_AssociatorInstances); every filter optional."""

    instance: Instance | None = None
    assoc_class: str | None = None
    result_class: str | None = None
    role: str | None = None
    result_role: str | None = None
    keys_only: bool = False
    single: ClassVar[bool] = False
    name: ClassVar[str] = "AssociatorInstances"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferenceInstances(Request):
    """The association instances that refer to ``instance`` (MI_Session_ReferenceInstances);
    ``result_class`` names an association class."""

    instance: Instance | None = None
    result_class: str | None = None
    role: str | None = None
    keys_only: bool = False
    single: ClassVar[bool] = False
    name: ClassVar[str] = "ReferenceInstances"


@dataclass(frozen=True, slots=True, kw_only=True)
class Invoke(Request):
    class_name: str | None = None
    method_name: str | None = None
    instance: Instance | None = None
    parameters: Instance | Mapping[str, Any] | None = None
    name: ClassVar[str] = "Invoke"


@dataclass(frozen=True, slots=True, kw_only=True)
class GetClass(Request):
    class_name: str | None = None
    result_kind: ClassVar[str] = "class"
    name: ClassVar[str] = "GetClass"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnumerateClasses(Request):
    class_name: str | None = None
    class_names_only: bool = False
    result_kind: ClassVar[str] = "class"
    single: ClassVar[bool] = False
    name: ClassVar[str] = "EnumerateClasses"


@dataclass(frozen=True, slots=True, kw_only=True)
class TestConnection(Request):
    name: ClassVar[str] = "TestConnection"
    takes_no_flags: ClassVar[bool] = True

    __test__ = False  # not a pytest test class


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(Request):
    """MI_Session_Subscribe: a WQL/CQL event query; the stream of indications runs until cancelled, until
    ``expiration`` seconds have passed (then it ends with OK), or until a final error.

    ``bookmark`` resumes after an event delivered before (or BOOKMARK_OLDEST / BOOKMARK_NEWEST);
    ``queue_size`` bounds the events held for a subscriber that reads slower than they come.

    A remote session also reads how the server hands events over: ``delivery`` "pull" (the default),
    "push", "push-with-ack" or "events" (batches of ``max_elements`` gathered for up to ``max_latency``
    seconds), pushed to a listener on ``destination``:``port`` (None: the local address facing the server,
    any free port). The embedded engine ignores them."""

    dialect: str | None = None
    query: str | None = None
    bookmark: str | None = None
    expiration: float | None = None
    heartbeat: float | None = None
    queue_size: int = 10_000
    delivery: str = "pull"
    destination: str | None = None
    port: int | None = None
    max_latency: float | None = None
    max_elements: int | None = None
    result_kind: ClassVar[str] = "indication"
    single: ClassVar[bool] = False
    name: ClassVar[str] = "Subscribe"


#: mi.h's reserved bookmarks (MI_SUBSCRIBE_BOOKMARK_OLDEST / _NEWEST): every event a server still keeps,
#: or only those that come next
BOOKMARK_OLDEST = "MI_SUBSCRIBE_BOOKMARK_OLDEST"
BOOKMARK_NEWEST = "MI_SUBSCRIBE_BOOKMARK_NEWEST"


class IndicationItem(NamedTuple):
    """One result of a subscription: the indication, the bookmark to resume after it, and the machine
    that raised it."""

    instance: Instance
    bookmark: str | None
    machine_id: str | None


class _Started:
    """What a producer yields first to say its request was accepted and is live
    (MI_OPERATIONFLAGS_REPORT_OPERATION_STARTED); readers never see it as a result."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STARTED"


STARTED = _Started()


class Idle:
    """What a producer that waits for things to happen (a subscription) yields when nothing is ready, instead
    of blocking: the consumer calls ``wait(timeout)`` — on whichever thread suits it: the reader's own, so an
    event reaches it with no hand-off between threads — which returns once something may have arrived, the
    stream was woken (a cancel), or ``timeout`` seconds (None: the producer's own bound) have passed; then
    it reads the stream on. Readers never see it as a result."""

    __slots__ = ("wait",)

    def __init__(self, wait: Callable[[float | None], None]) -> None:
        self.wait = wait

    def __repr__(self) -> str:
        return "IDLE"

"""Indications inside the engine: what happened, in commit order, to whoever subscribed.

A write that commits publishes one :class:`Event` to the namespace's :class:`IndicationHub` while the
repository lock is still held, so events are numbered in commit order. Each :class:`Subscription` has a
bounded queue: the writer never waits for a subscriber, and a subscriber that falls too far behind ends
with an error that says how many events it lost instead of growing without bound. Events are kept in a
bounded window per namespace while anyone listens (and for a while after), so a subscriber that comes back
with the bookmark of the last event it saw resumes right after it. What a WITHIN poll finds for one
subscription is numbered and kept too, as that subscription's own (its bookmarks say so: see
:meth:`IndicationHub.subscribe`); a provider's own bookmark (``Event.mark``) is its business, not the window's.

An event is built as an indication instance only for the subscriptions that want it, once per
representation: DMTF's ``CIM_InstCreation`` … (``SourceInstance``) or WMI's ``__InstanceCreationEvent`` …
(``TargetInstance``).

The servers of one repository (``openmi serve --workers``, hosts on one PostgreSQL) hand each other the events a
request served by one of them produced, so a subscriber connected to any of them hears it (see
``Server.link_events``). What travels: the repository's own writes (as the stored rows: :meth:`Event.rows`);
the engine's CIM_InstMethodCall of an Invoke; and what a provider posts (lifecycle events, indications) while
running inside a request the engine serves (as the instances: :func:`event_message`, ``shared``). What a
provider posts from its own threads (a monitor started in ``load`` or ``enable_indications``) does not
travel: every server with subscribers runs the provider's indication support itself, so the others would
hear it twice. An event received from another server (``relayed``) is not handed on again.
"""

from __future__ import annotations

import collections
import datetime as _dt
import enum
import itertools
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..cim.classes import Class, Property
from ..cim.errors import MIError
from ..cim.instance import Instance, layout_elements
from ..cim.requests import BOOKMARK_NEWEST, BOOKMARK_OLDEST
from ..cim.types import MIResult, MIType
from .encoding import decode_values, instance_from_json, instance_to_json, typed_value_from_json, typed_value_to_json

log = logging.getLogger("openmi.engine")



class Lifecycle(enum.IntFlag):
    """MI_LIFECYCLE_INDICATION_* : which instance changes a lifecycle subscription wants."""

    NONE = 0
    CREATE = 1
    MODIFY = 2
    DELETE = 4
    READ = 8
    METHODCALL = 16
    ALL = 31


# --- the indication classes every namespace knows -------------------------------------------------

_S, _DT, _U16, _U64, _B, _I, _S64 = (MIType.STRING, MIType.DATETIME, MIType.UINT16, MIType.UINT64,
                                     MIType.BOOLEAN, MIType.INSTANCE, MIType.SINT64)


def _cls(name: str, parent: str | None, props: Iterable[tuple[str, MIType]], abstract: bool = False) -> Class:
    quals: dict[str, Any] = {"Indication": True}
    if abstract:
        quals["Abstract"] = True
    return Class(name, parent, [Property(n, t) for n, t in props], qualifiers=quals)


def _builtin_classes() -> dict[str, Class]:
    from ..cim.classes import resolve_class

    declared = [
        _cls("CIM_Indication", None, [("IndicationIdentifier", _S), ("CorrelatedIndications", MIType.STRINGA),
                                      ("IndicationTime", _DT), ("PerceivedSeverity", _U16), ("OtherSeverity", _S),
                                      ("IndicationFilterName", _S), ("SequenceContext", _S),
                                      ("SequenceNumber", _S64)], abstract=True),
        _cls("CIM_InstIndication", "CIM_Indication", [("SourceInstance", _I), ("SourceInstanceModelPath", _S),
                                                      ("SourceInstanceHost", _S)], abstract=True),
        _cls("CIM_InstCreation", "CIM_InstIndication", []),
        _cls("CIM_InstDeletion", "CIM_InstIndication", []),
        _cls("CIM_InstRead", "CIM_InstIndication", []),
        _cls("CIM_InstModification", "CIM_InstIndication", [("PreviousInstance", _I)]),
        _cls("CIM_InstMethodCall", "CIM_InstIndication", [("MethodName", _S), ("MethodParameters", _I),
                                                          ("ReturnValue", _S), ("PreCall", _B)]),
        _cls("__Event", None, [("SECURITY_DESCRIPTOR", MIType.UINT8A), ("TIME_CREATED", _U64)], abstract=True),
        _cls("__InstanceOperationEvent", "__Event", [("TargetInstance", _I)], abstract=True),
        _cls("__InstanceCreationEvent", "__InstanceOperationEvent", []),
        _cls("__InstanceDeletionEvent", "__InstanceOperationEvent", []),
        _cls("__InstanceModificationEvent", "__InstanceOperationEvent", [("PreviousInstance", _I)]),
        _cls("__MethodInvocationEvent", "__InstanceOperationEvent", [("Method", _S), ("Parameters", _I),
                                                                    ("PreCall", _B)]),
        _cls("__ExtrinsicEvent", "__Event", [], abstract=True),
        _cls("__AggregateEvent", "__Event", [("NumberOfEvents", MIType.UINT32), ("Representative", _I)]),
    ]
    out: dict[str, Class] = {}
    for c in declared:
        parent = out[c.superclass.lower()] if c.superclass else None
        out[c.name.lower()] = resolve_class(c, parent)
    return out


BUILTIN_CLASSES: dict[str, Class] = _builtin_classes()

# FROM class → (the changes it stands for, WMI representation?)
LIFECYCLE_CLASSES: dict[str, tuple[Lifecycle, bool]] = {
    "cim_instindication": (Lifecycle.ALL, False),
    "cim_instcreation": (Lifecycle.CREATE, False),
    "cim_instmodification": (Lifecycle.MODIFY, False),
    "cim_instdeletion": (Lifecycle.DELETE, False),
    "cim_instread": (Lifecycle.READ, False),
    "cim_instmethodcall": (Lifecycle.METHODCALL, False),
    "__instanceoperationevent": (Lifecycle.CREATE | Lifecycle.MODIFY | Lifecycle.DELETE, True),
    "__instancecreationevent": (Lifecycle.CREATE, True),
    "__instancemodificationevent": (Lifecycle.MODIFY, True),
    "__instancedeletionevent": (Lifecycle.DELETE, True),
    "__methodinvocationevent": (Lifecycle.METHODCALL, True),
}

_CIM_NAMES: dict[int, str] = {
    Lifecycle.CREATE: "CIM_InstCreation", Lifecycle.MODIFY: "CIM_InstModification",
    Lifecycle.DELETE: "CIM_InstDeletion", Lifecycle.READ: "CIM_InstRead", Lifecycle.METHODCALL: "CIM_InstMethodCall"}
_WMI_NAMES: dict[int, str] = {
    Lifecycle.CREATE: "__InstanceCreationEvent", Lifecycle.MODIFY: "__InstanceModificationEvent",
    Lifecycle.DELETE: "__InstanceDeletionEvent", Lifecycle.METHODCALL: "__MethodInvocationEvent"}
_time_now = time.time
_EPOCH_1601 = _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc)


class RowClass(Protocol):
    """What an event made of a stored row needs of its class (engine.schema.ClassInfo)."""

    low: str

    def from_row(self, namespace: str, values: dict[str, Any]) -> Instance: ...


class Event:
    """One thing that happened: an instance change (lifecycle) or an indication a provider posted.

    A writer makes it cheaply, holding the lock that orders its write: the changed instance may be given
    as the stored row (``row``: the class — its ``from_row`` builds the instance, its ``low`` names it — and the
    row's JSON; for a modification ``previous_row``, the JSON before) and is built only when a subscriber reads
    it, on the subscriber's thread; ``source_low`` is what the subscriptions' pre-check reads. (Events are kept
    by the thousand in the retention window: the class itself, long-lived, is held rather than a bound method
    or a tuple per event, objects the garbage collector would have to walk.) An event made of
    rows travels to the other servers of the repository, and so does one made of instances that a request
    produced (``shared``: the engine's method call, a provider's post inside a request; see the module's
    docstring); ``relayed``: it came from another server (and goes no further).

    ``mark`` is the bookmark a provider gave with the indication it posted (``post_indication(inst, bookmark)``):
    its subscribers get it instead of the engine's own (OMI hands the provider's bookmark to the client), and a
    subscription started with it hands it back to the provider's ``subscribe`` hook. ``stream`` is 0 for an event
    published to every subscription of the namespace; for one a WITHIN poll found for one subscription only
    (:meth:`IndicationHub.deliver`), the polled stream it belongs to (see :meth:`IndicationHub.subscribe`).
    """

    __slots__ = ("_as_cim", "_as_wmi", "_data", "_info", "_prev_row", "_previous", "_source", "_stamp", "_time",
                 "change", "epoch", "extrinsic", "mark", "method", "namespace", "parameters", "pre_call", "relayed",
                 "return_value", "seq", "shared", "source_low", "stream")

    def __init__(self, namespace: str, *, change: int = 0, source: Instance | None = None,
                 previous: Instance | None = None, extrinsic: Instance | None = None, method: str | None = None,
                 parameters: Instance | None = None, return_value: Any = None, pre_call: bool = False,
                 row: tuple[RowClass, str] | None = None,
                 previous_row: str | None = None, relayed: bool = False, shared: bool = False,
                 mark: str | None = None) -> None:
        self.namespace = namespace
        self.mark = mark
        self.stream = 0
        self.change = int(change)
        self._source = source
        self._info: RowClass | None = row[0] if row is not None else None
        self._data: str | None = row[1] if row is not None else None
        self._previous = previous
        self._prev_row = previous_row
        self.relayed = relayed
        self.shared = shared
        self.extrinsic = extrinsic
        self.method = method
        self.parameters = parameters
        self.return_value = return_value
        self.pre_call = pre_call
        self._stamp = _time_now()  # (the datetime is made when a subscriber or another server asks for it)
        self._time: _dt.datetime | None = None
        self.seq = 0
        self.epoch = ""
        inst = extrinsic if extrinsic is not None else source
        self.source_low = row[0].low if row is not None else inst.class_name.lower() if inst is not None else ""
        self._as_cim: Instance | None = None
        self._as_wmi: Instance | None = None

    @property
    def time(self) -> _dt.datetime:
        """When it happened (UTC)."""
        t = self._time
        if t is None:
            t = self._time = _dt.datetime.fromtimestamp(self._stamp, _dt.timezone.utc)
        return t

    @time.setter
    def time(self, value: _dt.datetime) -> None:
        self._time = value

    @property
    def source(self) -> Instance | None:
        """The changed instance (built from the stored row the first time it is asked for)."""
        src = self._source
        info, data = self._info, self._data
        if src is None and info is not None and data is not None:
            src = self._source = info.from_row(self.namespace, decode_values(data))
        return src

    @property
    def previous(self) -> Instance | None:
        """A modification's instance before the change (built from its row the first time it is asked for)."""
        prev = self._previous
        if prev is None and self._prev_row is not None and self._info is not None:
            prev = self._previous = self._info.from_row(self.namespace, decode_values(self._prev_row))
        return prev

    @property
    def rows(self) -> tuple[str, str, str | None] | None:
        """(class name lower-cased, row JSON, previous row JSON) of an event made of stored rows, else None."""
        if self._info is None or self._data is None:
            return None
        return self._info.low, self._data, self._prev_row

    @property
    def travels(self) -> bool:
        """Whether the other servers of the repository should hear this event: the repository's own change (made
        of rows) or one a request produced (``shared``), unless it came from one of them."""
        return not self.relayed and (self._info is not None or self.shared)

    @property
    def bookmark(self) -> str:
        """Where a subscription resumes after this event (``epoch:seq``; empty until the hub numbers it)."""
        return f"{self.epoch}:{self.seq}" if self.epoch else ""

    @property
    def source_class(self) -> str:
        """The class of the changed instance (or of a posted indication)."""
        inst = self.extrinsic if self.extrinsic is not None else self.source
        return inst.class_name if inst is not None else ""

    def instance(self, wmi: bool = False, host: str = "") -> Instance:
        """This event as an indication instance (built once per representation, then shared: do not change it)."""
        if self.extrinsic is not None:
            return self.extrinsic
        if wmi:
            if self._as_wmi is None:
                self._as_wmi = self._build_wmi()
            return self._as_wmi
        if self._as_cim is None:
            self._as_cim = self._build_cim(host)
        return self._as_cim

    def _build_cim(self, host: str) -> Instance:
        source = self.source
        assert source is not None
        name = _CIM_NAMES[self.change]
        values: dict[str, Any] = {
            "IndicationIdentifier": self.bookmark or f"openmi:{uuid.uuid4().hex}",
            "IndicationTime": self.time, "SequenceNumber": self.seq, "SourceInstance": source,
            "SourceInstanceModelPath": _model_path(source, self.namespace),
            "SourceInstanceHost": host or None,
        }
        if self.change == Lifecycle.MODIFY:
            values["PreviousInstance"] = self.previous
        elif self.change == Lifecycle.METHODCALL:
            values["MethodName"] = self.method
            values["MethodParameters"] = self.parameters
            values["ReturnValue"] = None if self.return_value is None else str(self.return_value)
            values["PreCall"] = self.pre_call
        return _typed(name, self.namespace, values)

    def _build_wmi(self) -> Instance:
        source = self.source
        assert source is not None
        name = _WMI_NAMES.get(self.change)
        if name is None:
            raise MIError(MIResult.NOT_SUPPORTED, f"{Lifecycle(self.change).name} has no WMI event class")
        values: dict[str, Any] = {
            "TargetInstance": source,
            "TIME_CREATED": (self.time - _EPOCH_1601) // _dt.timedelta(microseconds=1) * 10,
        }
        if self.change == Lifecycle.MODIFY:
            values["PreviousInstance"] = self.previous
        elif self.change == Lifecycle.METHODCALL:
            values["Method"] = self.method
            values["Parameters"] = self.parameters
            values["PreCall"] = self.pre_call
        return _typed(name, self.namespace, values)


# --- events made of instances, between the servers of a repository -------------------------------------


def event_message(event: Event) -> dict[str, Any]:
    """An event made of instances as a JSON-ready message for another server of the repository (the form
    :meth:`Server.link_events` sends; :func:`event_from_message` reads it). The instances keep every element's
    type and flags (the repository's own encoding: embedded instances and references included)."""
    def inst(i: Instance | None) -> dict[str, Any] | None:
        return None if i is None else instance_to_json(i)

    message: dict[str, Any] = {
        "ns": event.namespace, "change": event.change, "time": event.time.isoformat(),
        "inst": {"source": inst(event.source), "previous": inst(event.previous), "extrinsic": inst(event.extrinsic),
                 "method": event.method, "parameters": inst(event.parameters),
                 "return": typed_value_to_json(event.return_value), "pre_call": event.pre_call}}
    if event.mark:
        message["bookmark"] = event.mark  # a provider's bookmark: what the subscribers there get too (see Event)
    return message


def event_from_message(namespace: str, message: dict[str, Any]) -> Event:
    """The event another server sent with :func:`event_message`, as received here (``relayed``). Raises
    ValueError (or KeyError/TypeError) for a message that is not one: the receiver logs and drops it, and a
    subscriber never meets an event it cannot build."""
    body = message["inst"]
    if not isinstance(body, dict):
        raise ValueError("the event's instances are not an object")

    def inst(name: str) -> Instance | None:
        data = body.get(name)
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"the event's {name} is not an instance")
        return instance_from_json(data)

    change = int(message["change"])
    extrinsic = inst("extrinsic")
    source = inst("source")
    if extrinsic is None:
        if change not in _CIM_NAMES:
            raise ValueError(f"{change} is not a lifecycle change")
        if source is None:
            raise ValueError("a lifecycle event without its SourceInstance")
    method = body.get("method")
    mark = message.get("bookmark")
    event = Event(namespace, change=change, source=source, previous=inst("previous"), extrinsic=extrinsic,
                  method=None if method is None else str(method), parameters=inst("parameters"),
                  return_value=typed_value_from_json(body.get("return")), pre_call=bool(body.get("pre_call")),
                  relayed=True, mark=mark if isinstance(mark, str) and mark else None)
    stamp = message.get("time")
    if stamp:
        event.time = _dt.datetime.fromisoformat(str(stamp))
    return event


def _typed(class_name: str, namespace: str, values: dict[str, Any]) -> Instance:
    """An indication instance of a built-in class: every property of the class, typed as declared (the
    values are the engine's own, already of those types: nothing to coerce)."""
    return Instance.from_elements(class_name, layout_elements(_LAYOUTS[class_name], values.get), namespace=namespace)


# each built-in indication class's properties: (lower-case name, name, type)
_LAYOUTS: dict[str, list[tuple[str, str, MIType]]] = {
    c.name: [(p.name.lower(), p.name, p.type) for p in c.properties.values()] for c in BUILTIN_CLASSES.values()}


def _model_path(inst: Instance, namespace: str) -> str:
    path = inst.path
    return path if inst.namespace else f"{namespace}:{path}"


# --- subscriptions ----------------------------------------------------------------------------------

#: while a subscription's events flow (one came for it in the last BUSY seconds) its subscriber naps at most NAP
#: seconds between looks instead of being woken for each event: a delivery then waits at most NAP, the writer pays
#: no wake-up per event and the subscriber takes what came in one go (bench/bench_indications.py: one
#: subscriber costs a delete 2.75× instead of 4.4×, ten keep up with 13,000 deletes/s instead of 5,000).
#: An event after a quiet moment wakes the subscriber at once.
BUSY = 0.002
NAP = 0.002

Accept = Callable[[Event], bool]

#: the engine's bookmarks: ``epoch:seq`` (IndicationHub.epoch, Event.seq), ``.stream`` for a polled subscription's
_ISSUED = re.compile(r"([0-9a-f]{12}):([0-9]+)(?:\.([0-9]+))?")


class LostBookmark(MIError):
    """INVALID_PARAMETER for a bookmark of the engine's own that this server cannot resume from: one it did not
    issue (another server's, or its own before a restart) or one older than the events it keeps. WS-Man
    answers it wsman:InvalidBookmark, on which a client may subscribe again from the newest event; any other
    refusal (a provider's) is final."""

    def __init__(self, message: str) -> None:
        super().__init__(MIResult.INVALID_PARAMETER, message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,))


class Subscription:
    """One subscriber's queue. ``accept`` is the cheap pre-check run on the writer's thread (change kind,
    source class); the full WHERE clause is the subscriber's business, on its own thread."""

    def __init__(self, hub: IndicationHub, namespace: str, accept: Accept, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a subscription's queue holds at least one event")
        self.hub = hub
        self.namespace = namespace
        self.accept = accept
        self.capacity = capacity
        self._queue: collections.deque[Event] = collections.deque()
        # The one consumer sleeps on a "bell": a lock held while nobody has rung. A writer rings it only when
        # the consumer sleeps deeply (nothing happened for a while), so an event costs no system call while
        # events flow: then the consumer naps (NAP seconds at most) and takes what came meanwhile at once.
        self._bell = threading.Lock()
        self._bell.acquire()
        self._sleeping = False
        self._last = -BUSY  # when an event last came for this subscription (time.monotonic())
        self.dropped = 0
        self.closed = False
        self.id = next(hub._ids)
        self.plan: Any = None  # what the subscription asked for (engine.subscriptions.SubscriptionPlan)
        # the polled stream it continues (IndicationHub.subscribe): its own id unless it resumed one
        self.stream = self.id
        self.polls = False  # whether a WITHIN poll delivers to it (then its bookmarks name its stream)
        self.start: str | None = None  # the engine's place it started from (set by the hub; None: the oldest)

    def start_bookmark(self) -> str | None:
        """Where this subscription stands before its first event: resuming from it gets what it would have
        had (a polled one's stream included); None when it started from the oldest kept event."""
        if self.start is None:
            return None
        return f"{self.start}.{self.stream}" if self.polls else self.start

    def bookmark_of(self, event: Event) -> str:
        """The bookmark this subscriber gets with an event: the provider's own when it gave one (``mark``);
        else the engine's ``epoch:seq``, which a polled subscription's extends with its stream
        (``epoch:seq.stream``), so that resuming from it also replays what its polls found after it."""
        if event.mark:
            return event.mark
        mark = event.bookmark
        return f"{mark}.{self.stream}" if self.polls and mark else mark

    def offer(self, event: Event) -> None:
        """Called by the hub with the hub's lock held: never blocks. Only the hub appends (under its lock),
        so the checks need no lock of their own; a consumer sleeping in :meth:`get`/:meth:`wait` is woken."""
        try:
            if not self.accept(event):
                return
        except Exception:  # a broken filter must not break the write that published
            log.exception("subscription %s: its filter failed on event %s", self.id, event.seq)
            return
        if self.closed:
            return
        if self.dropped or len(self._queue) >= self.capacity:
            self.dropped += 1
        else:
            self._queue.append(event)
        self._last = self.hub.last_publish  # (set by the hub just before it offers)
        if self._sleeping:  # a deep sleep: ring (a nap ends by itself)
            self._ring()

    def _ring(self) -> None:
        self._sleeping = False
        try:
            self._bell.release()
        except RuntimeError:  # rung already, not yet heard
            pass

    def _sleep(self, timeout: float | None) -> None:
        """Sleep until rung or ``timeout``; while this subscription's events flow (one came in the last BUSY
        seconds), nap instead: at most NAP seconds, unrung, so the writers go on undisturbed and the events
        that came meanwhile are taken in one go. A ring heard late only makes the next sleep return at once."""
        if time.monotonic() - self._last < BUSY:
            if self._queue or self.closed:
                return
            self._bell.acquire(True, NAP if timeout is None else max(0.0, min(timeout, NAP)))
            return
        self._sleeping = True
        if self._queue or self.closed:  # (an event offered before we said we sleep is seen here)
            self._sleeping = False
            return
        self._bell.acquire(True, -1 if timeout is None else max(0.0, timeout))
        self._sleeping = False

    def _replay(self, events: Iterable[Event], stream: int = 0) -> None:
        """Queue the kept events it accepts: those published to every subscriber, and those a poll found for
        the polled ``stream`` it resumes (no other subscription's)."""
        for e in events:
            if (not e.stream or e.stream == stream) and self.accept(e):
                self._queue.append(e)

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or None once ``timeout`` passes (or the subscription is closed). Raises MIError
        SERVER_LIMITS_EXCEEDED once the events it still holds are read after it fell behind. One consumer
        reads a subscription."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                return self._queue.popleft()
            except IndexError:
                pass
            if self.dropped:
                raise MIError(MIResult.SERVER_LIMITS_EXCEEDED,
                              f"the subscription fell behind and {self.dropped} event(s) were dropped "
                              f"(its queue holds {self.capacity}); subscribe again with the last bookmark "
                              f"to resume")
            if self.closed:
                return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._sleep(left)

    def poll(self) -> Event | None:
        """The next event if one is queued, else None, without waiting (raises as :meth:`get` does)."""
        try:
            return self._queue.popleft()
        except IndexError:
            return self.get(0)

    def wait(self, timeout: float | None, stop: Callable[[], bool] | None = None) -> None:
        """Wait until an event is queued, the subscription is closed or woken, or ``timeout`` passes; not at
        all once ``stop()`` is true (a :meth:`wake` after that check rings the bell, so none is missed)."""
        if self._queue or self.closed or self.dropped or (stop is not None and stop()):
            return
        self._sleep(timeout)

    def wake(self) -> None:
        """Make a sleeping consumer look again (e.g. after a cancel)."""
        self._ring()

    def close(self) -> None:
        self.closed = True
        self._queue.clear()
        self._ring()
        self.hub._remove(self)

    def __len__(self) -> int:
        return len(self._queue)


class IndicationHub:
    """The events of one server, by namespace (keys lower-cased), with a bounded retention window."""

    def __init__(self, retention: int = 10_000, linger: float = 300.0) -> None:
        self.retention = retention
        self.linger = linger
        self.epoch = uuid.uuid4().hex[:12]
        self.host = socket.gethostname()
        self._lock = threading.Lock()
        self._seq = 0
        self._subs: dict[str, list[Subscription]] = {}
        self._kept: dict[str, collections.deque[Event]] = {}
        # per namespace, the sequence number after which its window holds every event of that namespace: where
        # its keeping began (its first subscription), raised as the window drops its oldest events. A bookmark
        # at or after it resumes exactly, whatever the other namespaces numbered meanwhile.
        self._floor: dict[str, int] = {}
        self._quiet_since: dict[str, float] = {}  # namespace → when its last subscriber left
        self._ids = itertools.count(1)
        self.last_publish = -BUSY  # when the last event was published (time.monotonic())
        # Linking the servers of one repository (openmi serve --workers): ``relay(namespace_key, event)`` hands
        # an event that travels (Event.travels) to the servers that watch its namespace (``remote``: namespace
        # key → their ids); ``on_watch(namespace_key, watching)`` tells them when this one starts or stops watching.
        self.relay: Callable[[str, Event], None] | None = None
        self.on_watch: Callable[[str, bool], None] | None = None
        self.remote: dict[str, set[int]] = {}
        # the link's look at who watches elsewhere, called first by each watching() (cheap when nothing changed:
        # see openmi.engine.filevents); never called under the hub's lock
        self.refresh: Callable[[], None] | None = None

    def watching(self, namespace_key: str) -> bool:
        """Whether events of this namespace are wanted now (a subscriber, or a recent one that may come
        back with a bookmark, or another server of the repository). Writers skip building events when nobody
        watches."""
        if self.refresh is not None:
            self.refresh()
        return namespace_key in self.remote or self.keeps(namespace_key)

    def relays(self, namespace_key: str) -> bool:
        """Whether an event of this namespace that travels would now go to another server (it is linked to
        them and one of them watches): a poster decides only then whether its event travels."""
        return self.relay is not None and namespace_key in self.remote

    def keeps(self, namespace_key: str) -> bool:
        """Whether this server wants the namespace's events: a subscriber here, or one that left less than
        ``linger`` seconds ago and may come back with a bookmark (the window must then hold every event,
        so the other servers of the repository go on handing theirs over until the linger ends)."""
        if namespace_key in self._subs:
            return True
        since = self._quiet_since.get(namespace_key)
        if since is None:
            return False
        if time.monotonic() - since < self.linger:
            return True
        with self._lock:
            ended = namespace_key not in self._subs and self._quiet_since.get(namespace_key) == since
            if ended:
                del self._quiet_since[namespace_key]
                self._kept.pop(namespace_key, None)
                self._floor.pop(namespace_key, None)
        if ended and self.on_watch is not None:
            self.on_watch(namespace_key, False)
        return False

    def publish(self, namespace_key: str, event: Event) -> None:
        """Number the event, keep it, hand it to every subscription of the namespace. The caller holds
        the lock that orders the write it reports (so events come in commit order)."""
        with self._lock:
            self._seq += 1
            event.seq = self._seq
            event.epoch = self.epoch
            self.last_publish = time.monotonic()
            self._keep(namespace_key, event)
            subs = self._subs.get(namespace_key)
            if subs:
                for s in subs:
                    s.offer(event)
            if self.relay is not None and event.travels and namespace_key in self.remote:
                try:
                    self.relay(namespace_key, event)
                except Exception:  # the write is committed whatever the other servers hear
                    log.exception("relaying event %s failed", event.seq)

    def deliver(self, sub: Subscription, event: Event) -> None:
        """Number an event meant for one subscription only (a WITHIN poll's finding), keep it as one of that
        subscription's stream (replayed only to a subscription resuming that stream: see :meth:`subscribe`),
        and queue it."""
        with self._lock:
            self._seq += 1
            event.seq = self._seq
            event.epoch = self.epoch
            event.stream = sub.stream
            self.last_publish = time.monotonic()
            self._keep(sub.namespace, event)
            sub.offer(event)

    def _keep(self, namespace_key: str, event: Event) -> None:
        """Keep a numbered event in its namespace's window (the hub's lock held)."""
        kept = self._kept.get(namespace_key)
        if kept is None:
            kept = self._kept[namespace_key] = collections.deque(maxlen=self.retention)
        elif len(kept) == kept.maxlen:  # the oldest goes: a bookmark before it can no longer resume exactly
            self._floor[namespace_key] = max(self._floor.get(namespace_key, 0), kept[0].seq)
        kept.append(event)

    def subscribe(self, namespace_key: str, accept: Accept, *, capacity: int = 10_000,
                  bookmark: str | None = None) -> Subscription:
        """A live subscription; with a bookmark, the retained events after it are queued first
        (BOOKMARK_OLDEST: every retained event published to all; BOOKMARK_NEWEST or None: only what comes next).

        A bookmark is one this server issued (:meth:`issued`): ``epoch:seq``, a place in its sequence of events,
        or ``epoch:seq.stream`` from a WITHIN-polled subscription. What a poll finds is numbered in the same
        sequence but is one subscription's alone: it is kept as that subscription's *stream* and replayed only to
        a subscription resuming from a bookmark of that stream, which then continues the stream (unless the
        stream is still live elsewhere: then it starts its own). Such a subscription's new polls start from what
        exists when it starts (as WMI's do), so a change made while nothing polled is not reported."""
        sub = Subscription(self, namespace_key, accept, capacity)
        with self._lock:
            if bookmark and bookmark != BOOKMARK_NEWEST:
                kept = self._kept.get(namespace_key, collections.deque())
                if bookmark == BOOKMARK_OLDEST:
                    sub._replay(kept)
                else:
                    seq, stream = self._seq_of(bookmark)
                    # exact from the namespace's floor on (without one, only if nothing at all happened since)
                    floor = self._floor.get(namespace_key)
                    if seq > self._seq or (seq < floor if floor is not None else seq != self._seq):
                        raise LostBookmark(f"the bookmark {bookmark!r} is outside the events this server still "
                                           f"keeps (the last {self.retention} per namespace, while someone "
                                           f"subscribes)")
                    sub._replay((e for e in kept if e.seq > seq), stream)
                    if stream and not any(s.stream == stream for s in self._subs.get(namespace_key, ())):
                        sub.stream = stream
                    sub.start = f"{self.epoch}:{seq}"
            else:
                sub.start = f"{self.epoch}:{self._seq}"
            subs = self._subs.setdefault(namespace_key, [])
            subs.append(sub)
            first = len(subs) == 1
            self._quiet_since.pop(namespace_key, None)
            self._floor.setdefault(namespace_key, self._seq)  # kept from now on, while someone watches
        if first and self.on_watch is not None:
            self.on_watch(namespace_key, True)
        return sub

    @staticmethod
    def issued(bookmark: str) -> bool:
        """Whether a bookmark is the engine's own, of this server or of another (or of this one before it
        restarted): ``epoch:seq[.stream]`` or one of mi.h's reserved BOOKMARK_OLDEST / BOOKMARK_NEWEST. Any
        other is a provider's (``post_indication(inst, bookmark)``)."""
        return bookmark in (BOOKMARK_OLDEST, BOOKMARK_NEWEST) or _ISSUED.fullmatch(bookmark) is not None

    def _seq_of(self, bookmark: str) -> tuple[int, int]:
        """(seq, polled stream or 0) of a bookmark this server issued; INVALID_PARAMETER for any other."""
        m = _ISSUED.fullmatch(bookmark)
        if m is None or m.group(1) != self.epoch:
            raise LostBookmark(f"the bookmark {bookmark!r} was not issued by this server (or it has restarted since)")
        return int(m.group(2)), int(m.group(3) or 0)

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.namespace)
            if subs is None or sub not in subs:
                return
            subs.remove(sub)
            last = not subs
            if last:
                del self._subs[sub.namespace]
                self._quiet_since[sub.namespace] = time.monotonic()
        if last and self.linger <= 0 and self.on_watch is not None:
            self.on_watch(sub.namespace, False)  # (else when the linger ends: see keeps)

    def subscribed(self, namespace_key: str) -> bool:
        """Whether subscriptions of this server watch the namespace now."""
        return namespace_key in self._subs

    def watched(self) -> list[str]:
        """The namespace keys this server's subscriptions watch now."""
        with self._lock:
            return list(self._subs)

    def wanted(self) -> list[str]:
        """The namespace keys whose events this server wants from the others: those watched, and those whose
        last subscriber left less than ``linger`` seconds ago (see :meth:`keeps`)."""
        now = time.monotonic()
        with self._lock:
            return [*self._subs, *(k for k, since in self._quiet_since.items()
                                   if k not in self._subs and now - since < self.linger)]

    def set_remote(self, peer: int, namespace_key: str, watching: bool) -> None:
        """Another server (``peer``) started or stopped watching a namespace."""
        with self._lock:
            if watching:
                self.remote.setdefault(namespace_key, set()).add(peer)
            else:
                peers = self.remote.get(namespace_key)
                if peers is not None:
                    peers.discard(peer)
                    if not peers:
                        del self.remote[namespace_key]

    def lost(self, namespace_key: str, count: int) -> None:
        """Events of this namespace that another server produced did not reach this one (its link could not
        hand them over): every subscription of the namespace ends as one that fell behind, saying how many."""
        with self._lock:
            subs = list(self._subs.get(namespace_key, ()))
            for s in subs:
                s.dropped += count
        for s in subs:
            s._ring()

    def forget_peer(self, peer: int) -> None:
        """Another server is gone: stop relaying to it."""
        with self._lock:
            for key in [k for k, peers in self.remote.items() if peer in peers]:
                self.remote[key].discard(peer)
                if not self.remote[key]:
                    del self.remote[key]

    def subscriptions(self, namespace_key: str | None = None) -> list[Subscription]:
        with self._lock:
            if namespace_key is not None:
                return list(self._subs.get(namespace_key, ()))
            return [s for subs in self._subs.values() for s in subs]

    def close(self) -> None:
        for s in self.subscriptions():
            s.close()

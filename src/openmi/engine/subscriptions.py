"""Subscriptions: what an event query asks for, and where its events come from.

:func:`plan_subscription` reads a WQL/CQL event query the way OMI and WMI do (spec §1.5, §4.2):

- ``FROM CIM_InstCreation`` … / ``__InstanceCreationEvent`` … (lifecycle): the changes of the instances
  named by the one ``SourceInstance ISA 'Class'`` (``TargetInstance`` for WMI's classes) of the WHERE
  clause, or of every class when there is no WHERE. They come from the engine's own writes to repository
  classes, from providers that post lifecycle events (:class:`LifecycleContext`), or, for a provider class
  that does neither, from WMI's WITHIN polling (:class:`Poller`), which such a query must then ask for.
- ``FROM`` an ``[Indication]`` class: what the providers of that class (and its subclasses) post with
  ``post_indication``, between ``enable_indications`` and ``disable_indications`` (the server's first
  subscription, its last), each subscription told to the provider in between with its optional ``subscribe``
  and ``unsubscribe`` hooks (OMI's model: see :func:`subscribe`). A bookmark the provider posts with is the
  one its subscribers get, and goes back to its ``subscribe`` when a subscription starts with it.

The resulting :class:`SubscriptionPlan` has a cheap ``accept(event)`` for the writer's thread and the full
filter ``instance(event)`` (WHERE and projection) for the subscriber's.

What a provider posts reaches the other servers of the repository (``openmi serve --workers``, hosts on one
PostgreSQL) only when a request produced it: posted by code running while the engine serves a request on
this thread (inside the provider's create/modify/delete/get/enumerate/query/associators/invoke, directly or
from a generator the engine is stepping: :func:`serving_request`). Only one server serves a request, so its
subscribers elsewhere would otherwise miss the event. What a provider posts from its own threads (a monitor
started in ``load`` or ``enable_indications``), or from ``enable_indications``/``disable_indications``
themselves, stays on this server: every server with subscribers runs the provider's indication support
itself, and handing it on would deliver it twice.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cim import requests as rq
from ..cim.cimerror import error_instance
from ..cim.classes import Class
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.query import And, CompiledQuery, Expr, Isa, Not, Or, QueryError, SelectQuery, compile_query, parse
from ..cim.query import dialect_name as _dialect_name
from ..cim.types import MIResult, MIType
from .indications import BUILTIN_CLASSES, LIFECYCLE_CLASSES, Event, IndicationHub, Lifecycle, Subscription

if TYPE_CHECKING:
    from types import FrameType

    from .context import Context
    from .schema import ClassInfo, Namespace
    from .server import Server

log = logging.getLogger("openmi.engine")


def serving_request() -> bool:
    """Whether the calling thread is serving a request for the engine, outside a subscription's own stream:
    ``Server.execute`` (the one entry of every request) is running on it, below the caller, and no Subscribe
    handler lies between (that one calls ``enable_indications``/``disable_indications``: a provider's
    indication support, which every server with subscribers runs itself).

    The thread's stack says it, whatever the engine's path to the provider was: the provider's plain method,
    or a generator of results the engine steps. (A mark set around the provider's call would have to be set
    at each of the handlers' call sites: they call the plain method themselves and only then hand its result
    to ``operations._run_provider``.) A provider's own thread starts a stack of its own, so what it posts
    never counts, even when a request started the thread. Read only when another server listens."""
    from .server import Server

    execute = Server.execute.__code__
    stream = subscribe.__code__
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code is execute:
            return True
        if code is stream:
            return False
        frame = frame.f_back
    return False


class LifecycleContext:
    """What a provider uses to report changes to the instances of its class (OMI's
    MI_LifecycleIndicationContext). Call ``set_supported_types`` (in ``load``) to say which changes it
    reports; then ``post_create``/``post_modify``/``post_delete``/``post_read``/``post_method_call`` from any
    thread. ``types`` says which of them someone currently wants (0: nobody, skip the work).

    A post made while the provider serves a request (inside its create_instance, invoke, …, on the thread
    the engine called it on) reaches the subscribers of the repository's other servers too, as the
    repository's own changes do; one made from the provider's own threads stays on this server, whose
    subscribers alone it is for: each server runs the provider's monitoring itself (see the module's
    docstring)."""

    def __init__(self, server: Server, namespace: str, class_name: str) -> None:
        self._server = server
        self.namespace = namespace
        self.class_name = class_name
        self.supported = Lifecycle.NONE

    def set_supported_types(self, types: int) -> None:
        self.supported = Lifecycle(int(types) & int(Lifecycle.ALL))

    @property
    def types(self) -> Lifecycle:
        hub = self._server.indications
        if not hub.watching(self.namespace.lower()):
            return Lifecycle.NONE
        wanted = Lifecycle.NONE
        for s in hub.subscriptions(self.namespace.lower()):
            plan = getattr(s, "plan", None)
            if isinstance(plan, SubscriptionPlan):
                wanted |= plan.kinds
        return wanted & self.supported

    def _post(self, change: Lifecycle, source: Instance, **extra: Any) -> None:
        if not isinstance(source, Instance):
            raise TypeError(f"a lifecycle event is about an openmi.Instance, not {type(source).__name__}")
        if not self.supported & change:
            raise MIError(MIResult.NOT_SUPPORTED,
                          f"the provider of {self.class_name} did not declare {change.name} events "
                          f"(set_supported_types)")
        hub = self._server.indications
        key = self.namespace.lower()
        if not hub.watching(key):
            return
        src = source.clone()
        if src.namespace is None:
            src.namespace = self.namespace
        shared = hub.relays(key) and serving_request()  # (the stack is read only when another server listens)
        hub.publish(key, Event(self.namespace, change=change, source=src, shared=shared, **extra))

    def post_create(self, instance: Instance) -> None:
        self._post(Lifecycle.CREATE, instance)

    def post_modify(self, original: Instance, modified: Instance) -> None:
        self._post(Lifecycle.MODIFY, modified, previous=original.clone())

    def post_delete(self, original: Instance) -> None:
        self._post(Lifecycle.DELETE, original)

    def post_read(self, instance: Instance) -> None:
        self._post(Lifecycle.READ, instance)

    def post_method_call(self, instance: Instance, method_name: str, parameters: Instance | None = None,
                         return_value: Any = None, pre_call: bool = False) -> None:
        self._post(Lifecycle.METHODCALL, instance, method=method_name,
                   parameters=parameters.clone() if parameters is not None else None,
                   return_value=return_value, pre_call=pre_call)


class ProviderContext:
    """The long-lived context a provider gets in ``load(ctx)``: its lifecycle context and the way to
    post indications of an ``[Indication]`` class it serves."""

    def __init__(self, server: Server, namespace: str, class_name: str) -> None:
        self._server = server
        self.namespace = namespace
        self.class_name = class_name
        self.lifecycle = LifecycleContext(server, namespace, class_name)

    def post_indication(self, instance: Instance, bookmark: str | None = None) -> None:
        """Deliver an indication to the subscriptions whose filter it passes (any thread).

        ``bookmark``: where the provider would resume after this indication. Its subscribers get it as the
        indication's bookmark instead of the engine's own (OMI's MI_Context_PostIndication), and a subscription
        started with it hands it to the provider's ``subscribe`` hook (see :func:`subscribe`), which resumes as
        it sees fit: the engine does not replay what it kept for a provider's bookmark. Without one, subscribers
        get the engine's bookmark, which resumes from the events the engine keeps.

        Posted while the provider serves a request (on the thread the engine called its create_instance,
        invoke, … on), it also goes to the other servers of the repository, whose subscriptions take it as
        their filters say; posted from the provider's own thread (its monitor, started in ``load`` or
        ``enable_indications``) or from ``enable_indications`` itself, it stays here: each server with
        subscribers of the class runs the provider's indication support itself, and would hear it twice."""
        if not isinstance(instance, Instance):
            raise TypeError(f"an indication is an openmi.Instance, not {type(instance).__name__}")
        if bookmark is not None and not isinstance(bookmark, str):
            raise TypeError(f"an indication's bookmark is a str, not {type(bookmark).__name__}")
        hub = self._server.indications
        key = self.namespace.lower()
        if not hub.watching(key):
            return
        inst = instance.clone()
        if inst.namespace is None:
            inst.namespace = self.namespace
        shared = hub.relays(key) and serving_request()
        hub.publish(key, Event(self.namespace, extrinsic=inst, shared=shared, mark=bookmark or None))


@dataclass
class SubscriptionPlan:
    """What one subscription wants, decided once when it starts."""

    namespace: str
    query: SelectQuery
    compiled: CompiledQuery
    wmi: bool                      # events as __Instance*Event (TargetInstance) rather than CIM_Inst*
    kinds: Lifecycle               # the lifecycle changes wanted (NONE for an indication class)
    targets: frozenset[str] | None  # lower-case source classes (None: every class)
    indication_classes: frozenset[str] = frozenset()
    polled: list[ClassInfo] = field(default_factory=list)
    extrinsic_providers: list[ClassInfo] = field(default_factory=list)
    host: str = ""

    def __post_init__(self) -> None:
        self._kinds = int(self.kinds)  # plain ints: the writer's pre-check runs once per event and subscription

    def accept(self, event: Event) -> bool:
        """The cheap part of the filter, run by the writer: change kind and source class."""
        if event.extrinsic is not None:
            return event.source_low in self.indication_classes
        if not event.change & self._kinds:
            return False
        targets = self.targets
        return targets is None or event.source_low in targets

    def instance(self, event: Event) -> Instance | None:
        """The indication this subscription delivers for an event it accepted, or None if WHERE rejects it."""
        inst = event.instance(self.wmi, self.host)
        if not self.compiled.matches(inst):
            return None
        return self.compiled.project(inst)


def _isa_nodes(expr: Expr | None, in_or: bool = False) -> Iterator[tuple[Isa, bool]]:
    if expr is None:
        return
    if isinstance(expr, Isa):
        yield expr, in_or
    elif isinstance(expr, Or):
        for e in expr.operands:
            yield from _isa_nodes(e, True)
    elif isinstance(expr, And):
        for e in expr.operands:
            yield from _isa_nodes(e, in_or)
    elif isinstance(expr, Not):
        yield from _isa_nodes(expr.operand, True)  # a negated ISA cannot pick a source either


def plan_subscription(server: Server, ns: Namespace, dialect: str | None, text: str | None) -> SubscriptionPlan:
    """Check an event query and decide where its events come from. Raises MIError as OMI does (spec §4.2):
    INVALID_QUERY for a missing dialect or query or a bad query, NOT_SUPPORTED for a dialect other than WQL and
    CQL, an ISA inside OR, or a source class that produces none of the events asked for, NOT_FOUND when
    nothing can produce such events."""
    if not isinstance(dialect, str) or not dialect.strip():
        raise MIError(MIResult.INVALID_QUERY, "a subscription needs a query language (WQL or CQL)")
    if not text or not isinstance(text, str):
        raise MIError(MIResult.INVALID_QUERY, "a subscription needs a query")
    d = _dialect_name(dialect)
    if d not in ("WQL", "CQL"):
        raise MIError(MIResult.NOT_SUPPORTED,
                      f"subscriptions take WQL or CQL queries, not the dialect {dialect!r}")
    try:
        query = parse(text, d)
    except QueryError as exc:
        raise MIError(MIResult.INVALID_QUERY, str(exc)) from None
    if not isinstance(query, SelectQuery):
        raise MIError(MIResult.INVALID_QUERY, "a subscription's query is a SELECT of an indication class")

    def lookup(name: str) -> Class | None:
        info = ns.classes.get(name.lower())
        if info is not None:
            return info.cls
        return BUILTIN_CLASSES.get(name.lower())

    from_low = query.class_name.lower()
    from_cls = lookup(query.class_name)
    if from_cls is None:
        raise MIError(MIResult.INVALID_QUERY, f"column {query.class_column}: class {query.class_name} does not "
                      f"exist in namespace {ns.name}")
    try:
        compiled = compile_query(query, from_cls, lookup=lookup)
    except QueryError as exc:
        raise MIError(MIResult.INVALID_QUERY, str(exc)) from None
    _check_group_by(query, from_cls, ns)
    host = server.indications.host
    if from_low in LIFECYCLE_CLASSES:
        kinds, wmi = LIFECYCLE_CLASSES[from_low]
        return _lifecycle_plan(server, ns, query, compiled, kinds, wmi, host)
    if from_cls.qualifiers.get("Indication") is None:
        raise MIError(MIResult.INVALID_QUERY,
                      f"column {query.class_column}: {from_cls.name} is not an indication class")
    classes = {from_low} | {c.low for c in ns.descendants(from_low)} if from_low in ns.classes else {from_low}
    providers = [ns.classes[c] for c in classes if c in ns.classes and ns.classes[c].provider is not None
                 and hasattr(ns.classes[c].provider, "enable_indications")]
    if not providers:
        raise MIError(MIResult.NOT_FOUND,
                      f"no provider in namespace {ns.name} produces indications of {from_cls.name}")
    return SubscriptionPlan(ns.name, query, compiled, False, Lifecycle.NONE, None, frozenset(classes),
                            extrinsic_providers=providers, host=host)


def _wmi_error(result: MIResult, hresult: int, message: str) -> MIError:
    """``result`` with WMI's HRESULT for the same case in its details (the wmi and mi modules raise with it)."""
    details = error_instance(result, message)
    details["error_Type"] = "HRESULT"
    details["error_Code"] = hresult
    return MIError(result, message, details)


def _check_group_by(query: SelectQuery, event_class: Class, ns: Namespace) -> None:
    """GROUP WITHIN … BY names properties of the event class, or properties of the instance it carries (of the
    class ISA names); INVALID_QUERY otherwise, and for an embedded object itself (WMI's
    WBEM_E_AGGREGATING_BY_OBJECT: it cannot be grouped by)."""
    isa = next((n.class_name for n, _ in _isa_nodes(query.where)), None)
    isa_info = ns.classes.get(isa.lower()) if isa is not None else None
    for ref in query.group_by:
        prop = event_class.properties.get(ref.name)
        if prop is None:
            raise MIError(MIResult.INVALID_QUERY, f"column {ref.column}: GROUP BY {ref.text}: {event_class.name} "
                          f"has no property {ref.name}")
        embedded = prop.type.scalar == MIType.INSTANCE
        if embedded and not ref.steps:
            raise _wmi_error(MIResult.INVALID_QUERY, WBEM_E_AGGREGATING_BY_OBJECT,
                             f"column {ref.column}: GROUP BY {ref.text}: an embedded object cannot be grouped by; "
                             f"name one of its properties (e.g. {ref.name}.Name)")
        if embedded and isa_info is not None and ref.steps and not ref.steps[0].scope \
                and ref.steps[0].name not in isa_info.cls.properties \
                and not any(ref.steps[0].name in d.cls.properties for d in ns.descendants(isa_info.low)):
            raise MIError(MIResult.INVALID_QUERY, f"column {ref.column}: GROUP BY {ref.text}: {isa_info.name} "
                          f"has no property {ref.steps[0].name}")


def _lifecycle_plan(server: Server, ns: Namespace, query: SelectQuery, compiled: CompiledQuery,
                    kinds: Lifecycle, wmi: bool, host: str) -> SubscriptionPlan:
    source_names = ("targetinstance", "previousinstance") if wmi else ("sourceinstance", "previousinstance")
    isas = list(_isa_nodes(query.where))
    for node, in_or in isas:
        if in_or:
            raise MIError(MIResult.NOT_SUPPORTED, f"column {node.column}: the ISA operator within OR (or NOT) "
                          f"cannot choose the source of lifecycle indications")
        if node.operand.steps or node.operand.name.lower() not in source_names:
            raise MIError(MIResult.INVALID_QUERY,
                          f"column {node.column}: ISA applies to {'TargetInstance' if wmi else 'SourceInstance'} "
                          f"here, not {node.operand.name}")
        if node.operand.name.lower() == "previousinstance" and kinds != Lifecycle.MODIFY:
            raise MIError(MIResult.INVALID_QUERY,
                          f"column {node.column}: only modification events have a PreviousInstance")
    if query.where is not None and not isas:
        raise MIError(MIResult.NOT_SUPPORTED, "a lifecycle subscription with a WHERE clause names its source "
                      f"with {'TargetInstance' if wmi else 'SourceInstance'} ISA 'Class'")
    targets: frozenset[str] | None = None
    infos: list[ClassInfo]
    if isas:
        names = {n.class_name.lower() for n, _ in isas}
        if len(names) > 1:
            raise MIError(MIResult.NOT_SUPPORTED, "a lifecycle subscription names exactly one source class with ISA")
        node = isas[0][0]
        info = ns.classes.get(node.class_name.lower())
        if info is None:
            raise MIError(MIResult.NOT_FOUND, f"column {node.class_column}: class {node.class_name} does not exist "
                          f"in namespace {ns.name}, so it has no lifecycle indications")
        infos = [info, *ns.descendants(info.low)]
        targets = frozenset(i.low for i in infos)
    else:
        infos = list(ns.classes.values())
    polled: list[ClassInfo] = []
    producible = Lifecycle.NONE  # what the named classes can produce between them
    for info in infos:
        if info.provider is None:
            producible |= _REPOSITORY_EVENTS
            continue  # the repository: the engine's own writes publish
        # a method call is the engine's own to report (its Invoke publishes CIM_InstMethodCall whoever serves the
        # class): only instance changes need the provider's reports, or polling
        producible |= Lifecycle.METHODCALL
        changes = kinds & (Lifecycle.CREATE | Lifecycle.MODIFY | Lifecycle.DELETE | Lifecycle.READ)
        if not changes:
            continue
        lc = _provider_lifecycle(server, ns, info)
        reported = lc.supported & changes if lc is not None else Lifecycle.NONE
        producible |= reported
        if reported == changes:
            continue
        if not changes & ~reported & _POLLABLE:
            continue  # only reads are missing: polling cannot see a read (see the check below)
        if hasattr(info.provider, "enumerate_instances"):
            producible |= _POLLABLE
        else:
            if targets is not None:
                raise MIError(MIResult.NOT_SUPPORTED,
                              f"the provider of {info.name} reports no instance changes and cannot be polled")
            continue
        polled.append(info)
    if targets is not None and not kinds & producible:  # OMI: the class's supported types exclude the one asked for
        node = isas[0][0]
        raise MIError(MIResult.NOT_SUPPORTED,
                      f"column {node.class_column}: {node.class_name} (with its subclasses) produces no "
                      f"{query.class_name} events: the repository reports creations, modifications, deletions and "
                      f"method calls; a provider, what it declares with lifecycle.set_supported_types and what "
                      f"WITHIN polling finds")
    if polled and targets is not None and query.within is None:
        listed = ", ".join(i.name for i in polled)
        raise _wmi_error(MIResult.NOT_SUPPORTED, WBEMESS_E_REGISTRATION_TOO_PRECISE,
                         f"the provider of {listed} does not report instance changes: ask for polling with WITHIN "
                         f"(e.g. SELECT * FROM {query.class_name} WITHIN 5 WHERE …)")
    if targets is None:
        polled = []  # no source named: only what the engine and reporting providers publish
    return SubscriptionPlan(ns.name, query, compiled, wmi, kinds, targets, polled=polled, host=host)


#: what the engine reports of a repository class: its own Create, Modify, Delete and Invoke (never a read)
_REPOSITORY_EVENTS = Lifecycle.CREATE | Lifecycle.MODIFY | Lifecycle.DELETE | Lifecycle.METHODCALL
#: WMI's HRESULT for GROUP BY an embedded object ("An aggregation was requested by an embedded object")
WBEM_E_AGGREGATING_BY_OBJECT = 0x8004105D
#: WMI's HRESULT for an intrinsic event query that needs WITHIN and has none ("A WITHIN clause was not used")
WBEMESS_E_REGISTRATION_TOO_PRECISE = 0x80042002
#: what WITHIN polling can find of a provider's class: new, changed and vanished instances
_POLLABLE = Lifecycle.CREATE | Lifecycle.MODIFY | Lifecycle.DELETE


def _provider_lifecycle(server: Server, ns: Namespace, info: ClassInfo) -> LifecycleContext | None:
    ctx = server.provider_context(ns.name, info.name)
    return ctx.lifecycle if ctx is not None else None


# --- WITHIN polling --------------------------------------------------------------------------------------


class _Polled:
    __slots__ = ("classes", "interval", "previous", "sub")

    def __init__(self, sub: Subscription, classes: list[ClassInfo], interval: float) -> None:
        self.sub = sub
        self.classes = classes
        self.interval = interval
        self.previous: dict[str, Instance] | None = None


class Poller:
    """WMI's polling for providers that cannot report changes: every WITHIN interval, enumerate the classes
    again, compare with the previous round by instance path, and hand the subscription creation, deletion and
    modification events (spec §1.5). One thread per server polls every such subscription."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._lock = threading.Condition(threading.Lock())
        self._due: list[tuple[float, int, _Polled]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, sub: Subscription, classes: list[ClassInfo], interval: float) -> None:
        p = _Polled(sub, classes, max(0.05, float(interval)))
        try:
            p.previous = self._snapshot(sub.namespace, classes)  # the baseline: what exists at subscribe time
        except MIError:
            raise
        with self._lock:
            if self._closed:
                raise MIError(MIResult.SERVER_IS_SHUTTING_DOWN, "the server is closed")
            heapq.heappush(self._due, (time.monotonic() + p.interval, next(self._ids), p))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="openmi-poller", daemon=True)
                self._thread.start()
            self._lock.notify()

    def _snapshot(self, namespace: str, classes: list[ClassInfo]) -> dict[str, Instance]:
        from ..engine.context import Context

        out: dict[str, Instance] = {}
        for info in classes:
            fn = getattr(info.provider, "enumerate_instances", None)
            if fn is None:
                continue
            ctx = Context()
            ctx.server = self._server
            ctx.namespace = namespace
            result = fn(ctx, namespace, info.name, False)
            for inst in (result if result is not None else ()):
                if isinstance(inst, Instance):
                    if inst.namespace is None:
                        inst.namespace = namespace
                    try:  # the class's keys name the instance, whatever flags the provider set
                        key, _ = info.key_of(inst, namespace)
                    except MIError:
                        key = inst.path.lower()
                    out[f"{info.low}\0{key}"] = inst
        return out

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._lock.wait(wait)
                if self._closed:
                    return
                _, _, p = heapq.heappop(self._due)
            if p.sub.closed:
                continue
            try:
                self._poll(p)
            except Exception:  # a provider failing one round must not stop the others
                log.exception("polling %s failed", ", ".join(c.name for c in p.classes))
            with self._lock:
                if not p.sub.closed and not self._closed:
                    heapq.heappush(self._due, (time.monotonic() + p.interval, next(self._ids), p))

    def _poll(self, p: _Polled) -> None:
        current = self._snapshot(p.sub.namespace, p.classes)
        previous = p.previous or {}
        ns = p.sub.namespace
        hub: IndicationHub = self._server.indications
        for path, inst in current.items():
            old = previous.get(path)
            if old is None:
                hub.deliver(p.sub, Event(ns, change=Lifecycle.CREATE, source=inst))
            elif old != inst:
                hub.deliver(p.sub, Event(ns, change=Lifecycle.MODIFY, source=inst, previous=old))
        for path, inst in previous.items():
            if path not in current:
                hub.deliver(p.sub, Event(ns, change=Lifecycle.DELETE, source=inst))
        p.previous = current

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._due.clear()
            self._lock.notify_all()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(10)


def aggregate(plan: SubscriptionPlan, events: list[tuple[Instance, str]],
              having: Callable[[Instance], bool] | None) -> list[Instance]:
    """GROUP WITHIN … BY … HAVING: one __AggregateEvent per group of the window's events."""
    groups: dict[tuple[Any, ...], list[Instance]] = {}
    by = plan.query.group_by
    for inst, _bookmark in events:
        key = tuple(_path_value(inst, ref.name, [s.name for s in ref.steps]) for ref in by)
        groups.setdefault(key, []).append(inst)
    out = []
    cls = BUILTIN_CLASSES["__aggregateevent"]
    for members in groups.values():
        agg = Instance("__AggregateEvent", namespace=plan.namespace, cls=cls)
        agg["NumberOfEvents"] = len(members)
        agg["Representative"] = members[0]
        stamp = _dt.datetime.now(_dt.timezone.utc) - _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc)
        agg["TIME_CREATED"] = stamp // _dt.timedelta(microseconds=1) * 10
        if having is None or having(agg):
            out.append(agg)
    return out


def _path_value(inst: Instance, name: str, steps: list[str]) -> Any:
    value: Any = inst[name] if name in inst else None
    for s in steps:
        if not isinstance(value, Instance) or s not in value:
            return None
        value = value[s]
    if isinstance(value, str):
        return value.casefold()
    return value


# --- the Subscribe operation ------------------------------------------------------------------------------


class EnabledProviders:
    """How many subscriptions use each indication-class provider (EnableIndications on the first,
    DisableIndications after the last), per server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count: dict[tuple[str, str], int] = {}
        # set once the first subscription's enable_indications has returned (or failed: ``failed``): a
        # subscription that comes meanwhile waits for it, so its ``subscribe`` hook never runs before it
        self.ready: dict[tuple[str, str], _Enabled] = {}


class _Enabled(threading.Event):
    failed: BaseException | None = None


def _enable(server: Server, ns: Namespace, infos: list[ClassInfo], ctx: Context) -> list[ClassInfo]:
    state = server.enabled_providers
    done: list[ClassInfo] = []
    try:
        for info in infos:
            key = (ns.key, info.low)
            with state.lock:
                first = state.count.get(key, 0) == 0
                state.count[key] = state.count.get(key, 0) + 1
                gate: _Enabled | None
                if first:
                    gate = state.ready[key] = _Enabled()
                else:
                    gate = state.ready.get(key)
            done.append(info)
            if first:
                assert gate is not None
                pctx = server.provider_context(ns.name, info.name)
                try:
                    info.provider.enable_indications(pctx if pctx is not None else ctx, ns.name, info.name)
                except BaseException as exc:
                    gate.failed = exc
                    raise
                finally:
                    gate.set()
            elif gate is not None:
                while not gate.wait(0.1):  # the first subscription's enable_indications is still running
                    ctx.check()
                if gate.failed is not None:
                    raise MIError(MIResult.FAILED, f"enable_indications of the provider of {info.name} failed: "
                                  f"{type(gate.failed).__name__}: {gate.failed}") from gate.failed
    except BaseException:
        _disable(server, ns, done, ctx)
        raise
    return done


def _disable(server: Server, ns: Namespace, infos: list[ClassInfo], ctx: Context) -> None:
    state = server.enabled_providers
    for info in infos:
        key = (ns.key, info.low)
        with state.lock:
            n = state.count.get(key, 0) - 1
            if n <= 0:
                state.count.pop(key, None)
                state.ready.pop(key, None)
            else:
                state.count[key] = n
        if n <= 0:
            fn = getattr(info.provider, "disable_indications", None)
            if fn is not None:
                try:
                    pctx = server.provider_context(ns.name, info.name)
                    fn(pctx if pctx is not None else ctx, ns.name, info.name)
                except Exception:  # the subscription is over whatever the provider says
                    log.exception("disable_indications of %s failed", info.name)


@dataclass(frozen=True)
class SubscriptionFilter:
    """The event query a provider's ``subscribe`` hook is given (OMI's MI_Filter): ``dialect`` "WQL" or "CQL",
    ``expression`` the query's text as the subscriber wrote it."""

    dialect: str
    expression: str


def _provider_call(info: ClassInfo, hook: str, fn: Callable[..., Any], *args: Any) -> None:
    """Run a provider's ``subscribe`` hook; what it raises fails the Subscribe with an MIError naming it."""
    try:
        fn(*args)
    except MIError as exc:
        raise MIError(exc.result, f"the provider of {info.name} refused the subscription ({hook}): {exc.message}",
                      exc.details) from exc
    except NotImplementedError as exc:
        raise MIError(MIResult.NOT_SUPPORTED, f"the provider of {info.name} does not support the subscription "
                      f"({hook}){': ' + str(exc) if str(exc) else ''}") from exc
    except Exception as exc:
        log.error("%s of %s failed", hook, info.name, exc_info=exc)
        raise MIError(MIResult.FAILED, f"the provider of {info.name} failed the subscription ({hook}): "
                      f"{type(exc).__name__}: {exc}") from exc


def _subscribe_providers(server: Server, ns: Namespace, infos: list[ClassInfo], plan: SubscriptionPlan,
                         bookmark: str | None, subscription_id: int, ctx: Context) -> list[ClassInfo]:
    """Call the ``subscribe`` hook of each provider that has one (after its ``enable_indications``); the
    providers that were told. If one fails, those told before it are told ``unsubscribe`` and the error
    (an MIError naming the provider) propagates."""
    done: list[ClassInfo] = []
    filt = SubscriptionFilter(plan.query.dialect, plan.query.text)
    try:
        for info in infos:
            fn = getattr(info.provider, "subscribe", None)
            if not callable(fn):
                continue
            pctx = server.provider_context(ns.name, info.name)
            _provider_call(info, "subscribe", fn, pctx if pctx is not None else ctx, ns.name, info.name, filt,
                           bookmark, subscription_id)
            done.append(info)
    except BaseException:
        _unsubscribe_providers(server, ns, done, subscription_id, ctx)
        raise
    return done


def _unsubscribe_providers(server: Server, ns: Namespace, infos: list[ClassInfo], subscription_id: int,
                           ctx: Context) -> None:
    """Tell the providers whose ``subscribe`` accepted the subscription that it ended (before their
    ``disable_indications``); what they raise is logged: the subscription is over whatever they say."""
    for info in reversed(infos):
        fn = getattr(info.provider, "unsubscribe", None)
        if not callable(fn):
            continue
        try:
            pctx = server.provider_context(ns.name, info.name)
            fn(pctx if pctx is not None else ctx, ns.name, info.name, subscription_id)
        except Exception:
            log.exception("unsubscribe of %s failed", info.name)


def subscribe(server: Server, ns: Namespace, req: rq.Subscribe, ctx: Context) -> Iterator[Any]:
    """The engine's handler for Subscribe: STARTED once the subscription is live, then one
    :class:`IndicationItem` per matching event until cancelled or expired.

    For an ``[Indication]`` class it runs OMI's provider model (spec §4.2), for each provider of the class
    (and of its subclasses): ``enable_indications(ctx, namespace, class_name)`` when the server's first
    subscription to it starts, then, if the provider has one, ``subscribe(ctx, namespace, class_name, filter,
    bookmark, subscription_id)`` for this subscription — ``filter`` a :class:`SubscriptionFilter` (its
    ``dialect`` and ``expression``), ``bookmark`` the one the subscriber gave when it is not the engine's own
    (a provider's, from ``post_indication``; else None), ``subscription_id`` an integer unique on this server.
    When the subscription ends: ``unsubscribe(ctx, namespace, class_name, subscription_id)``, then
    ``disable_indications`` after the last. A ``subscribe`` that raises fails this Subscribe (its MIError's
    code, NOT_SUPPORTED for NotImplementedError, FAILED for anything else, naming the provider), before it
    is live, and leaves nothing enabled for it. ``ctx`` is the provider's long-lived context (``load``'s).

    A bookmark that is not the engine's (:meth:`IndicationHub.issued`) goes to the providers' ``subscribe``
    hooks only, and the subscription starts with what comes next; when no provider of the query has such a
    hook (or the query is not about an indication class) it is INVALID_PARAMETER."""
    plan = plan_subscription(server, ns, req.dialect, req.query)
    if req.queue_size < 1:
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"a subscription's queue holds at least 1 event, not {req.queue_size}")
    hub = server.indications
    engine_mark, provider_mark = req.bookmark, None
    if req.bookmark and not hub.issued(req.bookmark):
        if not any(callable(getattr(i.provider, "subscribe", None)) for i in plan.extrinsic_providers):
            taker = ("no provider of " + ", ".join(i.name for i in plan.extrinsic_providers) + " takes bookmarks "
                     "(it has no subscribe hook)") if plan.extrinsic_providers else \
                "no provider of the query's events takes bookmarks"
            raise MIError(MIResult.INVALID_PARAMETER,
                          f"the bookmark {req.bookmark!r} was not issued by this server, and {taker}")
        engine_mark, provider_mark = None, req.bookmark
    sub = hub.subscribe(ns.key, plan.accept, capacity=req.queue_size, bookmark=engine_mark)
    sub.plan = plan
    sub.polls = bool(plan.polled) and plan.query.within is not None
    enabled: list[ClassInfo] = []
    subscribed: list[ClassInfo] = []
    try:
        enabled = _enable(server, ns, plan.extrinsic_providers, ctx)
        subscribed = _subscribe_providers(server, ns, enabled, plan, provider_mark, sub.id, ctx)
        if plan.polled and plan.query.within is not None:
            server.poller.add(sub, plan.polled, plan.query.within)
        ctx.register_cancel(lambda _reason: sub.wake())
        start = sub.start_bookmark()
        if start is not None:
            ctx.host.subscription_started(start)  # (openmi serve hands it to the client: see Host)
        yield rq.STARTED
        machine = hub.host
        deadline = None if req.expiration is None else time.monotonic() + req.expiration
        group = plan.query.group_within
        having = _having(plan) if group is not None else None
        window: list[tuple[Instance, str]] = []
        window_end = None if group is None else time.monotonic() + group

        def wait(timeout: float | None) -> None:
            """Idle: wait for an event, a cancel, or the next of this stream's own deadlines."""
            bound = 1.0 if timeout is None else timeout
            if deadline is not None or window_end is not None:
                now = time.monotonic()
                bound = min([bound, *(t - now for t in (deadline, window_end) if t is not None)])
            if bound > 0 and not ctx.cancelled:  # (a deadline that passed cancels here, outside sub's lock)
                sub.wait(bound, lambda: token.cancel_called)

        token = ctx.token
        idle = rq.Idle(wait)
        timed = deadline is not None or window_end is not None
        accept = plan.instance
        while True:
            if ctx.cancelled:
                raise ctx.cancellation_error()
            if timed and deadline is not None and time.monotonic() >= deadline:
                return
            event = sub.poll()
            if event is not None:
                inst = accept(event)
                if inst is not None:
                    if group is None:
                        yield rq.IndicationItem(inst, sub.bookmark_of(event), machine)
                    else:
                        window.append((inst, sub.bookmark_of(event)))
            if window_end is not None and time.monotonic() >= window_end:
                for agg in aggregate(plan, window, having):
                    yield rq.IndicationItem(agg, window[-1][1] if window else None, machine)
                window = []
                window_end = time.monotonic() + (group or 0)
            if event is None:
                yield idle  # nothing queued: the consumer waits (on its own thread), then reads on
    finally:
        sub.close()
        _unsubscribe_providers(server, ns, subscribed, sub.id, ctx)
        _disable(server, ns, enabled, ctx)


def _having(plan: SubscriptionPlan) -> Callable[[Instance], bool] | None:
    q = plan.query
    if q.having is None:
        return None
    agg = SelectQuery(q.dialect, q.text, None, "__AggregateEvent", q.class_column, where=q.having)
    try:
        return compile_query(agg, BUILTIN_CLASSES["__aggregateevent"]).matches
    except QueryError as exc:
        raise MIError(MIResult.INVALID_QUERY, f"HAVING: {exc}") from None

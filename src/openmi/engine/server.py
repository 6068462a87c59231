"""The embedded CIM server: namespaces, the class registry, providers and the instance repository.

``Server.execute(request, ctx)`` is the one entry every front end uses (the in-process session and the
WS-Man server alike): it checks the namespace, finds the handler, and streams the results, ending with
success or an :class:`MIError` that always carries a CIM_Error-shaped details instance.
"""

from __future__ import annotations

import datetime
import gc
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..cim import requests as rq
from ..cim.cancel import CancelToken
from ..cim.cimerror import error_instance
from ..cim.classes import Class, QualifierDecl, resolve_class
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.namespaces import DEFAULT_NAMESPACE, INTEROP_NAMESPACE, normalize_namespace
from ..cim.types import MIResult
from . import associations as _associations  # noqa: F401  (registers its handlers)
from . import refindex
from .context import Context
from .encoding import class_from_json, class_to_json, qualifier_decl_from_json, qualifier_decl_to_json
from .indications import Event, IndicationHub, event_from_message, event_message
from .operations import HANDLERS
from .pgrepository import is_postgres_url
from .repository import Repository, Storage, open_repository
from .schema import Namespace
from .subscriptions import EnabledProviders, Poller, ProviderContext

_NEVER_BLOCK = (rq.TestConnection, rq.GetClass, rq.EnumerateClasses)
_ONE_CLASS = (rq.GetInstance, rq.CreateInstance, rq.ModifyInstance, rq.DeleteInstance)

log = logging.getLogger("openmi.engine")


def default_repository_path() -> Path:
    """Where the default embedded server keeps its repository: ``$OPENMI_REPOSITORY``, else
    ``$XDG_DATA_HOME/openmi/repository.db`` (``~/.local/share/openmi/repository.db``)."""
    env = os.environ.get("OPENMI_REPOSITORY")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "openmi" / "repository.db"


class Server:
    """An in-process CIM server. ``Server(":memory:")`` keeps nothing; ``Server(path)`` persists to a
    SQLite file; ``Server("postgresql://user@host/db")`` to PostgreSQL, shared with other servers;
    ``Server()`` uses :func:`default_repository_path`. ``shared=True`` lets other processes open the same
    SQLite file (``openmi serve --workers``).

    When other servers may change the schema (PostgreSQL, a shared file), each request first compares the
    repository's schema generation with the one this registry was read at and reloads the registry when
    it moved; each schema change claims the generation in its own transaction.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, durability: str = "normal",
                 shared: bool = False) -> None:
        self.path = str(path) if path is not None else str(default_repository_path())
        self.repository: Storage = open_repository(self.path, durability, shared=shared)
        self._generation = self.repository.generation()
        self._shared = self._generation is not None
        self.indications = IndicationHub()
        self._pg_events: Any = None
        self._file_events: Any = None
        if isinstance(self.repository, Repository) and self.repository.listeners() is not None:
            # the processes sharing this file share their events (openmi.engine.filevents)
            from .filevents import FileEventLink

            self._file_events = link = FileEventLink(self, self.repository)
            self._link(link.send, link.announce, False)
            self.indications.refresh = link.refresh
        if is_postgres_url(self.path):  # the servers of one PostgreSQL repository share their events
            from .pgevents import PgEventLink

            try:
                self._pg_events = PgEventLink(self, self.path)
                self._pg_events.start()
            except BaseException:
                if self._pg_events is not None:
                    self._pg_events.close()
                self.repository.close()
                raise
        self.poller = Poller(self)
        self.enabled_providers = EnabledProviders()  # indication providers in use, per (namespace, class)
        self._provider_contexts: dict[tuple[str, str], ProviderContext] = {}
        self._lock = threading.RLock()
        self._namespaces: dict[str, Namespace] = {}
        self._associations = False  # whether some namespace has an association class, as of …
        self._associations_seen = -1  # … this Namespace.version
        self._ns_cache: dict[str, Namespace] = {}  # the names callers use, as given
        self._provided: dict[str, int] = {}  # namespace key -> providers registered there (at most)
        self._closed = False
        try:
            self._load()
            for ns in (DEFAULT_NAMESPACE, INTEROP_NAMESPACE):
                if ns.lower() not in self._namespaces:
                    self.create_namespace(ns)
            if self.repository.meta("links") is None:  # written before the association index existed
                refindex.rebuild(self)
                self.repository.set_meta("links", "1")
            self._add_standard_qualifiers()
        except BaseException:
            self.repository.close()
            raise

    def _add_standard_qualifiers(self, namespaces: Iterable[Namespace] | None = None) -> None:
        """Every namespace holds the standard qualifier declarations (DSP0004), as WMI's do: one made
        before openmi declared them gets those it lacks (its own declarations stay as they are).
        ``namespaces`` None checks them all (on open)."""
        from ..cim.mof.standard import standard_qualifiers

        with self._lock:
            targets = list(self._namespaces.values()) if namespaces is None else list(namespaces)
            missing = [(ns, q) for ns in targets for q in standard_qualifiers()
                       if q.name.lower() not in ns.qualifiers]
            if not missing:
                return
            with self.repository.transaction():
                self._claim()
                for ns, q in missing:
                    self.repository.put_qualifier(ns.name, q.name, qualifier_decl_to_json(q))
            for ns, q in missing:
                ns.qualifiers[q.name.lower()] = q

    # --- events shared with the other servers of the repository ----------------------------------------
    def link_events(self, send: Callable[[int, dict[str, Any]], None], announce: Callable[[str, bool], None], *,
                    broadcast: bool = False) -> None:
        """Share events with the other servers of this repository (``openmi serve --workers``):
        ``send(peer, message)`` carries an event (a JSON-ready dict) to a peer that watches its namespace (see
        :meth:`receive_event`); ``announce(namespace_key, watching)`` tells the peers when this server's
        subscriptions start or stop watching a namespace (they then call ``indications.set_remote``). With
        ``broadcast`` (a medium every peer hears, PostgreSQL's NOTIFY) an event is sent once, as ``send(-1, …)``.
        A PostgreSQL repository links its servers itself (:mod:`openmi.engine.pgevents`), and so do the
        processes sharing a SQLite file (:mod:`openmi.engine.filevents`): a link made here takes that one's place.

        What travels is what a request served here produced, which no other server hears by itself: the
        repository's own changes (create, modify, delete: sent as the class and the stored rows), the
        CIM_InstMethodCall of an Invoke, and what a provider posts while serving a request (sent as the
        instances, typed: :func:`~openmi.engine.indications.event_message`). What a provider posts from its
        own threads stays here: each server with subscribers runs the provider's indication support itself."""
        self._drop_file_link()
        self._link(send, announce, broadcast)

    def _link(self, send: Callable[[int, dict[str, Any]], None], announce: Callable[[str, bool], None],
              broadcast: bool) -> None:
        hub = self.indications

        def relay(namespace_key: str, event: Event) -> None:
            rows = event.rows
            if rows is not None:
                message = {"ns": event.namespace, "change": event.change, "cls": rows[0], "data": rows[1],
                           "prev": rows[2], "time": event.time.isoformat()}
            else:
                message = event_message(event)
            if broadcast:
                send(-1, message)
                return
            for peer in list(hub.remote.get(namespace_key, ())):
                send(peer, message)

        hub.relay = relay
        hub.on_watch = announce

    def unlink_events(self) -> None:
        """Stop sharing events with the other servers (the link is closing)."""
        self._drop_file_link()
        self.indications.relay = None
        self.indications.on_watch = None

    def _drop_file_link(self) -> None:
        """Close the link through the shared file (another link takes its place, or none)."""
        link, self._file_events = self._file_events, None
        if link is not None:
            self.indications.refresh = None
            self.indications.relay = None
            self.indications.on_watch = None
            link.close()

    def receive_event(self, m: dict[str, Any]) -> None:
        """An event another server of the repository produced: delivered to the subscriptions here (each takes
        it only if its filter accepts it, as for an event of this server). A message that is not an event
        (malformed, or of a form this server does not know) is logged and dropped."""
        try:
            ns_name = str(m["ns"])
            rows = "cls" in m
            if not rows and "inst" not in m:
                raise ValueError(f"an event message has rows ('cls') or instances ('inst'); this has {sorted(m)}")
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("dropped an event from another server that is not one: %s", exc)
            return
        if not self.indications.keeps(ns_name.lower()):
            return  # nobody here listens to that namespace (any more, nor may come back with a bookmark)
        try:
            if self._shared and rows:
                self._sync()  # the class may be newer than this server's registry
            ns = self.namespace(ns_name)
        except MIError:
            return  # (a namespace deleted meanwhile: nobody here can watch it)
        try:
            if rows:
                info = ns.classes.get(str(m["cls"]))
                if info is None:
                    return
                event = Event(ns.name, change=int(m["change"]), row=(info, str(m["data"])),
                              previous_row=m.get("prev"), relayed=True)
                if m.get("time"):
                    event.time = datetime.datetime.fromisoformat(str(m["time"]))
            else:
                event = event_from_message(ns.name, m)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("dropped a malformed event from another server (namespace %s): %s", ns_name, exc)
            return
        self.indications.publish(ns.key, event)

    # --- the registry other servers may change ---------------------------------------------------
    def _sync(self) -> None:
        """Reload the class registry when another server changed the schema since it was read."""
        if self._shared and self.repository.generation() != self._generation:
            with self._lock:
                generation = self.repository.generation()
                if generation != self._generation:
                    self._reload(generation)

    def _claim(self) -> None:
        """In a transaction about to change the schema: claim the generation (other servers' schema
        changes wait) and catch up first if another server moved it; the new generation is ours once
        the transaction commits."""
        if not self._shared:
            return
        before = self.repository.claim_schema()
        if before != self._generation:
            self._reload(before)

        def committed() -> None:
            self._generation = before + 1
        self.repository.after_commit(committed)

    def _reload(self, generation: int | None) -> None:
        """Under the lock: read the registry again, keeping the Namespace and ClassInfo objects whose
        definition did not change (requests in flight hold them) and the providers registered here."""
        old = dict(self._namespaces)
        self._namespaces.clear()
        self._ns_cache.clear()
        self._load(old)
        self._provided = {}
        for ns in self._namespaces.values():
            n = sum(1 for info in ns.classes.values() if info.provider is not None)
            if n:
                self._provided[ns.key] = n
        self._generation = generation
        log.info("class registry reloaded at schema generation %s", generation)

    def _load(self, previous: dict[str, Namespace] | None = None) -> None:
        for name in self.repository.namespaces():
            before = previous.get(name.lower()) if previous else None
            ns = Namespace(name)
            self._namespaces[name.lower()] = ns
            for text in self.repository.qualifiers(name):
                q = qualifier_decl_from_json(text)
                ns.qualifiers[q.name.lower()] = q
            ns.seq = self.repository.max_class_seq(name)
            for text in self.repository.classes(name):
                declared = class_from_json(text)
                kept = before.classes.get(declared.name.lower()) if before is not None else None
                if kept is not None and kept.declared == declared and (
                        not declared.superclass or ns.classes.get(declared.superclass.lower())
                        is before.classes.get(declared.superclass.lower())):  # type: ignore[union-attr]
                    ns.classes[kept.low] = kept  # the same object: in-flight requests stay valid
                    parent_low = (declared.superclass or "").lower()
                    ns.children.setdefault(parent_low, []).append(kept.low)
                    ns.children.setdefault(kept.low, [])
                    continue
                parent = ns.classes[declared.superclass.lower()].cls if declared.superclass else None
                info = ns.add(declared, resolve_class(declared, parent))
                if kept is not None:
                    info.provider = kept.provider
            if before is not None:  # the namespace object requests hold stays the live one
                before.classes, before.children, before.qualifiers, before.seq = (
                    ns.classes, ns.children, ns.qualifiers, ns.seq)
                before.changed()
                self._namespaces[name.lower()] = before

    # --- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                if self._pg_events is not None:
                    self._pg_events.close()
                self._drop_file_link()
                self.poller.close()
                self.indications.close()
                self.repository.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"openmi.Server({self.path!r})"

    # --- namespaces --------------------------------------------------------------------------
    def namespace(self, name: str | None) -> Namespace:
        ns = self._ns_cache.get(name)  # type: ignore[arg-type]
        if ns is not None:
            return ns
        norm = normalize_namespace(name)
        with self._lock:  # filled under the lock that delete_namespace empties it under: no resurrection
            ns = self._namespaces.get(norm.lower())
            if ns is None:
                raise MIError(MIResult.INVALID_NAMESPACE, f"namespace {norm} does not exist")
            if len(self._ns_cache) > 256:
                self._ns_cache.clear()
            if name is None or len(name) <= 256:  # bounded in bytes too: a client's odd spellings are not kept
                self._ns_cache[name] = ns  # type: ignore[index]
        return ns

    def _live(self, ns: Namespace) -> None:
        """Under the lock: the namespace a request looked up has not been deleted meanwhile."""
        if self._namespaces.get(ns.key) is not ns:
            raise MIError(MIResult.INVALID_NAMESPACE, f"namespace {ns.name} does not exist")

    @property
    def namespaces(self) -> list[str]:
        self._sync()
        with self._lock:
            return sorted(ns.name for ns in self._namespaces.values())

    def create_namespace(self, name: str) -> None:
        norm = normalize_namespace(name)
        self._sync()
        with self._lock:
            if norm.lower() in self._namespaces:
                return
            with self.repository.transaction():
                self._claim()
                if norm.lower() in self._namespaces:  # another server made it meanwhile
                    return
                self.repository.add_namespace(norm)
                created = self._namespaces[norm.lower()] = Namespace(norm)
                self._add_standard_qualifiers([created])

    def delete_namespace(self, name: str) -> None:
        """Remove an empty namespace (NAMESPACE_NOT_EMPTY while it holds classes)."""
        self._sync()
        ns = self.namespace(name)
        with self._lock, self.repository.transaction():
            self._claim()
            self._live(ns)
            if ns.classes:
                raise MIError(MIResult.NAMESPACE_NOT_EMPTY, f"namespace {ns.name} still has {len(ns.classes)} classes")
            self.repository.remove_namespace(ns.name)
            del self._namespaces[ns.name.lower()]
            self._ns_cache.clear()

    def has_associations(self) -> bool:
        """True when some namespace has an association class (so deletes keep the association index); asked
        at every delete, so computed again only after a class registry changed."""
        version = Namespace.version
        if self._associations_seen != version:
            self._associations = any(ns.associations() for ns in list(self._namespaces.values()))
            self._associations_seen = version
        return self._associations

    # --- classes -------------------------------------------------------------------------------
    def define_class(self, namespace: str | None, cls: Class, *, replace: bool = False) -> Class:
        """Add a class (as declared: own elements, superclass by name) and return it resolved.

        Defining an identical class again is a no-op; a different one needs ``replace=True`` and no
        subclasses. Errors: INVALID_NAMESPACE, INVALID_SUPERCLASS, ALREADY_EXISTS, CLASS_HAS_CHILDREN.
        """
        return self.define_classes(namespace, [cls], replace=replace)[0]

    def define_classes(self, namespace: str | None, classes: Iterable[Class], *, replace: bool = False,
                       qualifiers: Iterable[QualifierDecl] = (), copy: bool = True) -> list[Class]:
        """Define several classes (and qualifier declarations) in one transaction: all or none.

        The classes are copied in and the resolved ones copied out, so neither side can change the
        other's; ``copy=False`` (for objects nobody else holds, such as a MOF compile's) skips both.
        """
        if not isinstance(classes, (list, tuple)):
            classes = list(classes)
        for c in classes:
            if not isinstance(c, Class):
                raise TypeError(f"define_class takes openmi.Class objects, not {type(c).__name__}")
        self._sync()
        ns = self.namespace(namespace)
        with self._lock:
            self._live(ns)
            snapshot_classes = dict(ns.classes)
            snapshot_children = {k: list(v) for k, v in ns.children.items()}
            snapshot_quals = dict(ns.qualifiers)
            out: list[Class] = []
            try:
                with self.repository.transaction():
                    self._claim()
                    self._live(ns)
                    for q in qualifiers:
                        ns.qualifiers[q.name.lower()] = q
                        self.repository.put_qualifier(ns.name, q.name, qualifier_decl_to_json(q))
                    for cls in classes:
                        out.append(self._define_one(ns, cls, replace, copy))
                    self._check_references(ns, classes)
            except BaseException:
                ns.classes = snapshot_classes
                ns.changed()
                ns.children = snapshot_children
                ns.qualifiers = snapshot_quals
                if self._shared:  # a reload may have run inside: read the registry afresh next time
                    self._generation = -1
                raise
            return [c.clone() for c in out] if copy else out

    def _define_one(self, ns: Namespace, cls: Class, replace: bool, copy: bool = True) -> Class:
        low = cls.name.lower()
        existing = ns.classes.get(low)
        if existing is not None:
            if existing.declared == cls:
                return existing.cls
            if not replace:
                raise MIError(MIResult.ALREADY_EXISTS,
                              f"class {cls.name} already exists in namespace {ns.name} with another definition")
            if ns.children.get(low):
                raise MIError(MIResult.CLASS_HAS_CHILDREN,
                              f"class {cls.name} in namespace {ns.name} has subclasses and cannot be replaced")
            ns.remove(cls.name)
        parent = None
        if cls.superclass:
            pinfo = ns.classes.get(cls.superclass.lower())
            if pinfo is None:
                raise MIError(MIResult.INVALID_SUPERCLASS,
                              f"superclass {cls.superclass} of class {cls.name} does not exist in namespace {ns.name}")
            parent = pinfo.cls
        declared = cls.clone() if copy else cls
        declared.namespace = None
        try:
            resolved = resolve_class(declared, parent)
        except ValueError as exc:
            raise MIError(MIResult.INVALID_PARAMETER, f"class {cls.name}: {exc}") from None
        resolved.namespace = ns.name
        ns.add(declared, resolved)
        seq = ns.next_seq()
        if self.repository.persistent:  # a memory-only repository keeps its classes in the registry alone
            self.repository.put_class(ns.name, cls.name, class_to_json(declared), seq)
        return resolved

    def _check_references(self, ns: Namespace, classes: Iterable[Class]) -> None:
        for cls in classes:
            for p in cls.properties.values():
                if p.reference_class and p.reference_class.lower() not in ns.classes:
                    raise MIError(MIResult.INVALID_CLASS,
                                  f"reference {cls.name}.{p.name} names class {p.reference_class}, which does not "
                                  f"exist in namespace {ns.name}")

    def delete_class(self, namespace: str | None, class_name: str) -> None:
        self._sync()
        ns = self.namespace(namespace)
        with self._lock, self.repository.transaction():  # create_instance inserts under this lock too
            self._claim()
            self._live(ns)
            info = ns.get(class_name)
            if ns.children.get(info.low):
                raise MIError(MIResult.CLASS_HAS_CHILDREN, f"class {info.name} has subclasses")
            if self.repository.count(ns.name.lower(), info.low):
                raise MIError(MIResult.CLASS_HAS_INSTANCES, f"class {info.name} has instances")
            self.repository.remove_class(ns.name, info.name)
            ns.remove(info.name)

    def get_class(self, namespace: str | None, class_name: str) -> Class:
        self._sync()
        out = self.namespace(namespace).get(class_name).cls.clone()
        return out

    def lookup_class(self, namespace: str | None, class_name: str) -> Class | None:
        """The resolved class, shared and not copied (read it, never change it), or None."""
        try:
            ns = self.namespace(namespace)
        except MIError:
            return None
        info = ns.classes.get(class_name.lower())
        return info.cls if info is not None else None

    def classes(self, namespace: str | None = None) -> list[str]:
        self._sync()
        ns = self.namespace(namespace)
        with self._lock:
            return [c.name for c in ns.classes.values()]

    def qualifier_declarations(self, namespace: str | None = None) -> list[QualifierDecl]:
        ns = self.namespace(namespace)
        with self._lock:
            return list(ns.qualifiers.values())

    def new_instance(self, namespace: str | None, class_name: str) -> Instance:
        """An instance with the class's properties and their defaults (MI_Application_NewInstanceFromClass)."""
        info = self.namespace(namespace).get(class_name)
        return Instance(info.name, namespace=info.cls.namespace, cls=info.cls)

    # --- providers ------------------------------------------------------------------------------
    def register_provider(self, namespace: str | None, class_name: str, provider: Any) -> None:
        """Serve a class with a Python object instead of the repository (see the provider API in README)."""
        ns = self.namespace(namespace)
        info = ns.get(class_name)
        load = getattr(provider, "load", None)
        if load is not None:  # OMI's Load: where a provider gets its lifecycle and indication context
            ctx = ProviderContext(self, ns.name, info.name)
            load(ctx)
            self._provider_contexts[(ns.key, info.low)] = ctx
        else:
            self._provider_contexts.pop((ns.key, info.low), None)
        with self._lock:
            self._live(ns)
            if info.provider is None:
                self._provided[ns.key] = self._provided.get(ns.key, 0) + 1
            info.provider = provider

    def unregister_provider(self, namespace: str | None, class_name: str) -> None:
        ns = self.namespace(namespace)
        info = ns.get(class_name)
        with self._lock:
            if info.provider is not None:
                self._provided[ns.key] = self._provided.get(ns.key, 1) - 1
            info.provider = None
            self._provider_contexts.pop((ns.key, info.low), None)

    def provider_context(self, namespace: str | None, class_name: str) -> ProviderContext | None:
        """The context a provider got in its ``load`` (None if it has no ``load``)."""
        ns = self.namespace(namespace)
        return self._provider_contexts.get((ns.key, class_name.lower()))

    # --- serving requests -----------------------------------------------------------------------
    def may_block(self, request: rq.Request) -> bool:
        """Whether serving ``request`` may wait on something outside the repository: a provider serves
        its class (or, for an enumeration, a class it covers), or it invokes a method. A client runs
        such requests on a worker thread and the rest in the caller's own."""
        t = type(request)
        if t is rq.Subscribe:  # a subscription waits for events
            return True
        if not self._provided:  # no provider anywhere: only the repository answers
            return False
        if t is rq.Invoke:
            return True
        if t in _NEVER_BLOCK:
            return False
        try:
            ns = self.namespace(request.namespace)
        except MIError:
            return False  # it fails at once
        if not self._provided.get(ns.key):
            return False
        if t in _ONE_CLASS:
            inst = getattr(request, "instance", None)
            info = ns.classes.get(inst.class_name.lower()) if isinstance(inst, Instance) else None
            return info is not None and info.provider is not None
        if t is rq.EnumerateInstances:
            name = getattr(request, "class_name", None)
            info = ns.classes.get(name.lower()) if isinstance(name, str) else None
            if info is None:
                return False
            return info.provider is not None or any(d.provider is not None for d in ns.descendants(info.low))
        return True  # associations, queries: any class of the namespace may answer

    def execute(self, request: rq.Request, token: CancelToken | Context | None = None, *,
                user: str | None = None) -> Iterator[Any]:
        """Run a request: yields its results; raises MIError (with details) when it fails.

        ``token`` is the operation's cancellation token (its ``host`` hears the provider's messages);
        the provider sees it wrapped in a :class:`Context` with the request's options and ``user``.
        """
        if isinstance(token, Context):
            ctx = token
        else:
            ctx = Context(token, options=request.options, user=user)
        try:
            if self._closed:
                raise MIError(MIResult.SERVER_IS_SHUTTING_DOWN, "the server is closed")
            if self._shared:
                self._sync()
            handler = HANDLERS.get(type(request))
            if handler is None:
                raise MIError(MIResult.NOT_SUPPORTED, f"{type(request).__name__} is not an operation this server knows")
            ns = self.namespace(request.namespace) if not isinstance(request, rq.TestConnection) else None
            ctx.server = self
            ctx.namespace = ns.name if ns is not None else None
            ctx.check()
            yield from handler(self, ns, request, ctx)  # type: ignore[arg-type]
            if ctx.token.cancelled:
                raise ctx.cancellation_error()
        except MIError as exc:
            if exc.details is None:
                exc.details = error_instance(exc.result, exc.message, source=type(request).__name__)
            raise
        except Exception as exc:  # a provider's bug must end the operation, not the caller
            message = f"{request.name} failed: {type(exc).__name__}: {exc}"
            log.error("%s in namespace %s failed", request.name, request.namespace, exc_info=exc)
            raise MIError(MIResult.FAILED, message, error_instance(MIResult.FAILED, message)) from exc

    # --- MOF --------------------------------------------------------------------------------
    def compile_mof(self, source: str | os.PathLike[str], namespace: str = DEFAULT_NAMESPACE,
                    include_dirs: Iterable[str | os.PathLike[str]] = ()) -> Any:
        """Compile MOF (a path or MOF text) into the repository in one transaction; see openmi.cim.mof."""
        from ..cim import mof

        ns_default = normalize_namespace(namespace)

        def class_lookup(ns_name: str, name: str) -> Class | None:
            ns = self._namespaces.get(normalize_namespace(ns_name).lower())
            info = ns.classes.get(name.lower()) if ns is not None else None
            return info.cls if info is not None else None

        def qualifier_lookup(ns_name: str, name: str) -> QualifierDecl | None:
            ns = self._namespaces.get(normalize_namespace(ns_name).lower())
            if ns is None:  # a namespace the MOF creates starts with the standard declarations
                return mof.standard_lookup(ns_name, name)
            return ns.qualifiers.get(name.lower())

        result = mof.compile_mof(source, namespace=ns_default, include_dirs=tuple(include_dirs),
                                 class_lookup=class_lookup, qualifier_lookup=qualifier_lookup)
        self.load(result)
        return result

    def _put_from_mof(self, namespace: str, inst: Instance) -> None:
        """A MOF instance, as mofcomp puts it: created, or, when it exists already, updated with the MOF's
        values (so that the same MOF compiled again, as ``openmi serve --mof-file`` does at each start, is no
        error; the compiler refuses one instance declared twice in one MOF)."""
        try:
            for _ in self.execute(rq.CreateInstance(namespace=namespace, instance=inst)):
                pass
        except MIError as exc:
            if exc.result != MIResult.ALREADY_EXISTS:
                raise
            for _ in self.execute(rq.ModifyInstance(namespace=namespace, instance=inst)):
                pass

    def load(self, result: Any) -> None:
        """Load a compiled MOF result (qualifier declarations, classes, instances) atomically; an instance that
        exists already is updated with the MOF's values (mofcomp's create-or-update)."""
        by_ns: dict[str, tuple[list[QualifierDecl], list[Class], list[Instance]]] = {}
        for ns_name, q in result.qualifier_decls:
            by_ns.setdefault(normalize_namespace(ns_name), ([], [], []))[0].append(q)
        for ns_name, c in result.classes:
            by_ns.setdefault(normalize_namespace(ns_name), ([], [], []))[1].append(c)
        for ns_name, i in result.instances:
            by_ns.setdefault(normalize_namespace(ns_name), ([], [], []))[2].append(i)
        collecting = gc.isenabled()
        gc.disable()  # thousands of new objects that all live on: collection passes would only cost time
        self._sync()
        with self._lock:
            restore = self._snapshot()
            try:
                with self.repository.transaction():
                    self._claim()
                    for ns_name, (quals, classes, instances) in by_ns.items():
                        self.create_namespace(ns_name)
                        quals = self._new_qualifiers(ns_name, quals)
                        self.define_classes(ns_name, classes, qualifiers=quals, copy=False)
                        for inst in instances:
                            self._put_from_mof(ns_name, inst)
            except BaseException:
                restore()
                if self._shared:
                    self._generation = -1
                raise
            finally:
                if collecting:
                    gc.enable()

    def _new_qualifiers(self, ns_name: str, quals: list[QualifierDecl]) -> list[QualifierDecl]:
        """The declarations of a MOF the namespace lacks. One it holds stays as held when the MOF's
        agrees with it (a narrower scope, say) and is a MOFError when it conflicts."""
        from ..cim.errors import MOFError
        from ..cim.mof.standard import conflicts

        held = self.namespace(ns_name).qualifiers
        out: list[QualifierDecl] = []
        errors: list[str] = []
        for q in quals:
            old = held.get(q.name.lower())
            if old is None:
                out.append(q)
            elif diffs := conflicts(old, q):
                errors.append(f"qualifier {q.name} conflicts with the declaration that namespace {ns_name} holds: "
                              f"here {'; '.join(diffs)}")
        if errors:
            raise MOFError(errors)
        return out

    def _snapshot(self) -> Callable[[], None]:
        """A way back to the class registry as it is now (after a rolled-back batch)."""
        names = dict(self._namespaces)
        state = {k: (dict(ns.classes), {c: list(v) for c, v in ns.children.items()}, dict(ns.qualifiers), ns.seq)
                 for k, ns in names.items()}

        def restore() -> None:
            Namespace.version += 1  # (namespaces the batch made go too: what was derived from them is stale)
            self._namespaces.clear()
            self._namespaces.update(names)
            self._ns_cache.clear()
            for k, (classes, children, qualifiers, seq) in state.items():
                ns = names[k]
                ns.classes, ns.children, ns.qualifiers, ns.seq = classes, children, qualifiers, seq
                ns.changed()
        return restore

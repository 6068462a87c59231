"""One handler per request kind: each turns a request into a stream of results.

A handler receives the namespace (already checked), the request and the context; it yields
instances or classes and raises :class:`MIError` to end with a failure. A class with a provider is
served by the provider's method of the same name; other classes by the repository.
"""

from __future__ import annotations

import copy
import functools
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..cim import requests as rq
from ..cim.classes import Class, Property
from ..cim.errors import MIError
from ..cim.instance import Element, Instance
from ..cim.query import AssocQuery, CompiledQuery, compile_query, dialect_name, parse
from ..cim.types import MIFlag, MIResult, MIType, OperationFlags
from ..cim.values import coerce, infer_type
from . import subscriptions
from .context import Context
from .encoding import decode_values, encode_values, key_string
from .indications import BUILTIN_CLASSES, Event, Lifecycle
from .query import ProviderQuery
from .querysql import row_filter
from .refindex import check_references, instance_target
from .schema import ClassInfo, Namespace

if TYPE_CHECKING:
    from .server import Server

Handler = Callable[["Server", Namespace, Any, Context], Iterator[Any]]

_SHALLOW = int(OperationFlags.POLYMORPHISM_SHALLOW)
_BASE_PROPS_ONLY = int(OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY)
_CREATE, _MODIFY, _DELETE = int(Lifecycle.CREATE), int(Lifecycle.MODIFY), int(Lifecycle.DELETE)


def _inbound(req: Any, what: str) -> Instance:
    inst = req.instance
    if inst is None:
        raise MIError(MIResult.INVALID_PARAMETER, f"{req.name} needs an instance ({what}); none was given")
    if not isinstance(inst, Instance):
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"{req.name} needs an openmi.Instance, not {type(inst).__name__}")
    return inst


def _provider_method(info: ClassInfo, method: str) -> Callable[..., Any] | None:
    if info.provider is None:
        return None
    fn = getattr(info.provider, method, None)
    if fn is None:
        raise MIError(MIResult.NOT_SUPPORTED,
                      f"the provider of class {info.name} does not implement {method}")
    return fn  # type: ignore[no-any-return]


def _run_provider(ctx: Context, result: Any) -> Iterator[Any]:
    """A provider method may return a value, an iterable of results, or be a generator."""
    if result is None:
        return
    if isinstance(result, (Instance, Class, dict)):
        yield result
        return
    try:
        it = iter(result)
    except TypeError:
        yield result
        return
    for item in it:
        ctx.check()
        yield item


def _provided_instance(info: ClassInfo, ns: Namespace, item: Any, what: str) -> Instance:
    if not isinstance(item, Instance):
        raise MIError(MIResult.FAILED,
                      f"the provider of class {info.name} returned {type(item).__name__} from {what}, not an Instance")
    if item.namespace is None:
        item.namespace = ns.name
    return item


def _key_instance(info: ClassInfo, ns: Namespace, values: dict[str, tuple[Any, int]]) -> Instance:
    elements = {n.lower(): Element(n, v, MIType(t), MIFlag.KEY) for n, (v, t) in values.items()}
    return Instance.from_elements(info.name, elements, namespace=ns.name)


def _not_found(info: ClassInfo, ns: Namespace, values: dict[str, tuple[Any, int]]) -> MIError:
    """NOT_FOUND for an instance name, in words: its class, its keys and the namespace looked in."""
    return MIError(MIResult.NOT_FOUND,
                   f"no instance of {info.name} with {info.describe_keys(values)} in namespace {ns.name}")


def _locate(server: Server, ns: Namespace, info: ClassInfo, inst: Instance) -> tuple[ClassInfo, str, str]:
    """Find the stored row an instance name addresses: its class (the named one or a subclass), key and data."""
    key, values = info.key_of(inst, ns.name)
    repo = server.repository
    nsk = ns.key
    data = repo.get(nsk, info.low, key)
    if data is not None:
        return info, key, data
    for sub in ns.descendants(info.low):
        if sub.provider is None:
            data = repo.get(nsk, sub.low, key)
            if data is not None:
                return sub, key, data
    raise _not_found(info, ns, values)


# --- instance operations -------------------------------------------------------------------------


def get_instance(server: Server, ns: Namespace, req: rq.GetInstance, ctx: Context) -> Iterator[Instance]:
    inst = _inbound(req, "the class and keys of the instance to get")
    info = ns.get(inst.class_name)
    fn = _provider_method(info, "get_instance")
    if fn is not None:
        _, values = info.key_of(inst, ns.name)
        for item in _run_provider(ctx, fn(ctx, ns.name, _key_instance(info, ns, values))):
            yield _provided_instance(info, ns, item, "get_instance")
            return
        raise _not_found(info, ns, values)
    found, _key, data = _locate(server, ns, info, inst)
    yield found.from_row(ns.name, decode_values(data))


def delete_instance(server: Server, ns: Namespace, req: rq.DeleteInstance, ctx: Context) -> Iterator[Instance]:
    inst = _inbound(req, "the class and keys of the instance to delete")
    info = ns.get(inst.class_name)
    fn = _provider_method(info, "delete_instance")
    if fn is not None:
        _, values = info.key_of(inst, ns.name)
        for _item in _run_provider(ctx, fn(ctx, ns.name, _key_instance(info, ns, values))):
            pass
        return
    key, values = info.key_of(inst, ns.name)
    repo = server.repository
    ctx.check()
    assoc = server.has_associations()
    with repo.transaction() if assoc else repo.lock:
        if _delete_row(server, ns, info, key, assoc):
            return
    raise _not_found(info, ns, values)
    yield  # pragma: no cover - makes this a generator


def _delete_row(server: Server, ns: Namespace, info: ClassInfo, key: str, assoc: bool) -> bool:
    """Delete the stored instance of ``info`` (or a repository subclass) with ``key``; False if none.

    Association instances that refer to it are deleted too (``assoc``: some association class exists),
    each as an ordinary delete (with its own deletion event; its own referrers go as well): the repository
    never keeps an association whose end it deleted. The caller holds the repository lock (a transaction
    when associations exist).
    """
    repo = server.repository
    watched = server.indications.watching(ns.key)
    found: ClassInfo | None = None
    # the named class first, then its subclasses (only looked up when the named class has no such row)
    candidates = itertools.chain((info,), ns.descendants(info.low)) if ns.children.get(info.low) else (info,)
    for c in candidates:
        if c.provider is not None:
            continue
        if watched:  # the row's values become the CIM_InstDeletion's SourceInstance, read as it goes
            data = repo.delete_returning(ns.key, c.low, key)
            if data is not None:  # the SourceInstance is built from the row when a subscriber reads it
                _publish_after_commit(server, ns, Event(ns.name, change=_DELETE, row=(c, data)))
                found = c
                break
        elif repo.delete(ns.key, c.low, key):
            found = c
            break
    if found is None:
        return False
    if assoc:
        if found.is_association:
            repo.remove_refs(ns.key, found.low, key)
        for ans, acls, akey, _role, _data in repo.referencing(instance_target(ns, found, key)):
            ans_ns = server.namespace(ans)
            ainfo = ans_ns.classes.get(acls)
            if ainfo is not None and ainfo.provider is None:
                _delete_row(server, ans_ns, ainfo, akey, assoc)
    return True


def create_instance(server: Server, ns: Namespace, req: rq.CreateInstance, ctx: Context) -> Iterator[Instance]:
    inst = _inbound(req, "the new instance")
    info = ns.get(inst.class_name)
    fn = _provider_method(info, "create_instance")
    if fn is not None:  # keys may be left to the provider (server-assigned keys)
        yield _provider_write(info, ns, inst, ctx, fn, "create_instance")
        return
    if info.abstract:
        raise MIError(MIResult.INVALID_CLASS, f"class {info.name} is abstract and cannot have instances")
    values = info.values_of(inst, ns.name)
    for name, default, t in info.defaults:  # class defaults for what the caller left out
        if name not in values:
            values[name] = (_copy(default), t)
    # an association's references are checked and typed before its key (they are its keys) is made
    entries = check_references(server, ns, info, values) if info.is_association else []
    key_parts = []
    for p in info.keys:
        v = values.get(p.name, (None, 0))[0]
        if v is None:
            raise MIError(MIResult.INVALID_PARAMETER, f"key property {p.name!r} of class {info.name} is missing")
        key_parts.append((v, int(p.type)))
    if not info.keys:
        raise MIError(MIResult.INVALID_CLASS, f"class {info.name} has no key properties; its instances "
                      f"could not be addressed")
    key = key_string(key_parts)
    data = encode_values(values)
    ctx.check()
    repo = server.repository
    hub = server.indications
    watched = hub.watching(ns.key)
    # delete_class counts instances under the server lock: it and this insert never interleave
    with server._lock, repo.transaction() if info.is_association else repo.lock:
        if ns.classes.get(info.low) is not info:
            server._live(ns)
            raise MIError(MIResult.INVALID_CLASS, f"class {info.name} in namespace {ns.name} was deleted or redefined "
                          f"while the instance was being created")
        if not repo.insert(ns.key, info.low, key, data):
            keys = ",".join(f"{p.name}={v!r}" for p, (v, _) in zip(info.keys, key_parts))
            raise MIError(MIResult.ALREADY_EXISTS,
                          f"an instance of {info.name} with {keys} already exists in namespace {ns.name}")
        if info.is_association:
            repo.add_refs(ns.key, info.low, key, entries)
        plain = {n: v for n, (v, _) in values.items()}
        if watched:  # the SourceInstance is built from the row when a subscriber reads it
            _publish_after_commit(server, ns, Event(ns.name, change=_CREATE, row=(info, data)))
    yield info.from_row(ns.name, plain, layout=info.plain_layout)


def modify_instance(server: Server, ns: Namespace, req: rq.ModifyInstance, ctx: Context) -> Iterator[Instance]:
    inst = _inbound(req, "the keys and new values")
    info = ns.get(inst.class_name)
    fn = _provider_method(info, "modify_instance")
    if fn is not None:
        info.key_of(inst, ns.name)  # the instance to change must be named in full
        yield _provider_write(info, ns, inst, ctx, fn, "modify_instance")
        return
    changes = info.values_of(inst, ns.name)
    repo = server.repository
    nsk = ns.key
    with repo.transaction():
        found, key, data = _locate(server, ns, info, inst)
        current = found.from_row(ns.name, decode_values(data))
        values = {el.name: (el.value, int(el.type)) for el in current.elements}
        for name, (v, t) in changes.items():
            prop = found.props[name.lower()]
            if prop.key:
                continue
            values[prop.name] = (v, t)
        entries = check_references(server, ns, found, values) if found.is_association else []
        ctx.check()
        new_data = encode_values(values)
        repo.update(nsk, found.low, key, new_data)
        if found.is_association:
            repo.remove_refs(nsk, found.low, key)
            repo.add_refs(nsk, found.low, key, entries)
        if server.indications.watching(nsk):
            _publish_after_commit(server, ns, Event(ns.name, change=_MODIFY, row=(found, new_data),
                                                    previous_row=data))
    yield found.from_row(ns.name, {n: v for n, (v, _) in values.items()}, layout=found.plain_layout)


def enumerate_instances(server: Server, ns: Namespace, req: rq.EnumerateInstances,
                        ctx: Context) -> Iterator[Instance]:
    if not req.class_name or not isinstance(req.class_name, str):
        raise MIError(MIResult.INVALID_PARAMETER, "EnumerateInstances needs a class name")
    info = ns.get(req.class_name)
    classes = [info]
    if not req.flags & _SHALLOW or (req.flags & _BASE_PROPS_ONLY) == _BASE_PROPS_ONLY:
        classes.extend(ns.descendants(info.low))
    base_only = (req.flags & _BASE_PROPS_ONLY) == _BASE_PROPS_ONLY
    repo = server.repository
    nsk = ns.key
    keys_only = bool(req.keys_only)
    for c in classes:
        if c.provider is not None:
            fn = _provider_method(c, "enumerate_instances")
            assert fn is not None
            for item in _run_provider(ctx, fn(ctx, ns.name, c.name, keys_only)):
                yield _provided_instance(c, ns, item, "enumerate_instances")
            continue
        layout = info.layout if base_only else c.layout
        for _key, data in repo.scan(nsk, c.low):
            if ctx.token.cancelled:
                raise ctx.cancellation_error()
            out = c.from_row(ns.name, decode_values(data), keys_only, layout)
            if base_only:
                out.class_name = c.name
            yield out


_QUERY_CACHE_SIZE = 256


class Prepared:
    """A query ready to run in a namespace: its dialect, compiled form, and the SQL pre-filter for the stored
    rows of each class it scans (made on first use)."""

    __slots__ = ("_row_sql", "compiled", "dialect")

    def __init__(self, dialect: str, compiled: CompiledQuery) -> None:
        self.dialect = dialect
        self.compiled = compiled
        self._row_sql: dict[str, tuple[str, tuple[Any, ...]] | None] = {}

    def row_sql(self, stored: ClassInfo) -> tuple[str, tuple[Any, ...]] | None:
        key = stored.low
        if key not in self._row_sql:
            self._row_sql[key] = row_filter(self.compiled.cls, self.compiled.condition, stored.cls)
        return self._row_sql[key]


# Integer literals outside quotes: ``WHERE Id = 7`` and ``WHERE Id = 8`` share one template.
_INT_LITERAL = re.compile(r"(?<![\w.$])-?\d+(?![\w.])")


class _KeyTemplate:
    """A keyed query with its integer key values taken out (``SELECT * FROM X WHERE Id = ?``): the same
    text with other numbers is answered by the keyed lookup without being parsed and compiled again."""

    __slots__ = ("keys", "prepared")

    def __init__(self, prepared: Prepared, keys: list[Property]) -> None:
        self.prepared = prepared
        self.keys = keys  # the key property each literal (in text order) fixes

    def bind(self, ns: Namespace, numbers: list[str]) -> Prepared | None:
        """The query for these numbers, or None to go the whole way (a value out of its key's range, a
        provider now serving a class in scope: the full path gives the same answer or the right error)."""
        cq = self.prepared.compiled
        info = ns.classes.get(cq.class_name.lower())
        if info is None or info.provider is not None or any(d.provider is not None
                                                            for d in ns.descendants(info.low)):
            return None
        values: dict[str, Any] = {}
        for p, text in zip(self.keys, numbers):
            try:
                values[p.name] = coerce(int(text), p.type, p.name)
            except (TypeError, ValueError, MIError):
                return None
        bound = copy.copy(cq)
        bound.key_values = values
        return Prepared(self.prepared.dialect, bound)


def _key_template(out: Prepared, numbers: list[str]) -> _KeyTemplate | None:
    """A template for a query decided by an integer-keyed lookup alone, its literals exactly the keys."""
    cq = out.compiled
    kv = cq.key_values
    if not cq.key_exhaustive or kv is None or len(numbers) != len(kv) or len(set(kv.values())) != len(kv):
        return None
    by_value = {v: name for name, v in kv.items() if isinstance(v, int) and not isinstance(v, bool)}
    keys: list[Property] = []
    for text in numbers:
        name = by_value.get(int(text))
        prop = cq.cls.properties.get(name) if name is not None else None
        if prop is None or not prop.type.is_integer:
            return None
        keys.append(prop)
    return _KeyTemplate(out, keys)


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _QUERY_CACHE_SIZE:
        try:                  # drop the oldest; another thread may be changing the dict at the same time
            cache.pop(next(iter(cache)), None)
        except (RuntimeError, StopIteration):
            pass
    cache[key] = value


def compile_for(ns: Namespace, dialect: str | None, text: str | None) -> Prepared | AssocQuery:
    """Parse and check a QueryInstances query in a namespace: (dialect, compiled query) or MIError
    (QUERY_LANGUAGE_NOT_SUPPORTED for the dialect, INVALID_QUERY for the text). The namespace keeps the
    last few hundred compiled queries, so a query asked again (a poll, a loop) is not parsed again, and
    the templates of integer-keyed lookups, so ``WHERE Id = 8`` after ``WHERE Id = 7`` is not either.
    ``ASSOCIATORS OF`` / ``REFERENCES OF`` come back as parsed: engine.associations answers them."""
    cache = ns.queries
    if not isinstance(dialect, str) or not isinstance(text, str):
        return _compile_for(ns, dialect, text)
    hit = cache.get((dialect, text))
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    numbers: list[str] = []
    template = None
    if "'" not in text and '"' not in text:
        numbers = _INT_LITERAL.findall(text)
        if numbers:
            template = ("template", dialect, _INT_LITERAL.sub("?", text))
            t = cache.get(template)
            if isinstance(t, _KeyTemplate):
                bound = t.bind(ns, numbers)
                if bound is not None:
                    return bound
    out = _compile_for(ns, dialect, text)
    _remember(cache, (dialect, text), out)
    if template is not None and template not in cache and isinstance(out, Prepared):
        kt = _key_template(out, numbers)
        if kt is not None:
            _remember(cache, template, kt)
    return out


def _compile_for(ns: Namespace, dialect: str | None, text: str | None) -> Prepared | AssocQuery:
    d = dialect_name(dialect)
    if d is None or d == "selectorFilter":
        raise MIError(MIResult.QUERY_LANGUAGE_NOT_SUPPORTED,
                      f"query dialect {dialect!r} is not supported; use WQL or CQL")
    if not text or not isinstance(text, str):
        raise MIError(MIResult.INVALID_QUERY, "QueryInstances needs a query expression")
    q = parse(text, d)
    if isinstance(q, AssocQuery):
        return q
    if q.is_event_query:
        raise MIError(MIResult.INVALID_QUERY, "WITHIN and GROUP WITHIN belong to event queries (Subscribe), "
                      "not QueryInstances")
    info = ns.classes.get(q.class_name.lower())
    if info is None:  # as WMI (WBEM_E_INVALID_CLASS) and OMI answer it
        raise MIError(MIResult.INVALID_CLASS,
                      f"column {q.class_column}: unknown class '{q.class_name}' in namespace {ns.name}")

    def lookup(name: str) -> Class | None:
        found = ns.classes.get(name.lower())
        return found.cls if found is not None else None

    return Prepared(d, compile_query(q, info.cls, lookup=lookup))


def query_instances(server: Server, ns: Namespace, req: rq.QueryInstances,
                    ctx: Context) -> Iterator[Instance | Class]:
    """Dispatch like EnumerateInstances (polymorphism, providers, repository), filtering with one compiled
    predicate: key equality is a keyed lookup, other conditions run on stored rows before an instance is
    built; the selected properties plus the keys come back. ``ASSOCIATORS OF`` / ``REFERENCES OF`` go to
    the association code (their schema forms answer classes)."""
    prepared = compile_for(ns, req.dialect, req.query)
    if isinstance(prepared, AssocQuery):
        from .associations import assoc_query  # (that module builds on this one)

        yield from assoc_query(server, ns, prepared, req, ctx)
        return
    dialect, cq = prepared.dialect, prepared.compiled
    info = ns.get(cq.class_name)
    classes = [info]
    if not req.flags & _SHALLOW or (req.flags & _BASE_PROPS_ONLY) == _BASE_PROPS_ONLY:
        classes.extend(ns.descendants(info.low))
    base_only = (req.flags & _BASE_PROPS_ONLY) == _BASE_PROPS_ONLY
    project = cq.project
    for c in classes:
        if c.provider is not None:
            for inst in _provider_query(c, ns, dialect, cq, ctx):
                yield project(inst)
            continue
        layout = info.layout if base_only else c.layout
        for out in _repository_query(server, ns, c, prepared, layout, ctx):
            if base_only:
                out.class_name = c.name
            yield project(out)


def _provider_query(c: ClassInfo, ns: Namespace, dialect: str, cq: CompiledQuery, ctx: Context) -> Iterator[Instance]:
    matches = cq.matches
    fn = getattr(c.provider, "query_instances", None)
    if fn is not None:
        pq = ProviderQuery(dialect, cq.query.text, cq.query, cq)
        first = True
        try:
            result = fn(ctx, ns.name, c.name, pq)
            for item in _run_provider(ctx, result):
                first = False
                inst = _provided_instance(c, ns, item, "query_instances")
                if pq.filtered or matches(inst):
                    yield inst
            if result is not None:
                return
        except MIError as exc:
            if exc.result != MIResult.NOT_SUPPORTED or not first:
                raise
    enum = _provider_method(c, "enumerate_instances")
    assert enum is not None
    for item in _run_provider(ctx, enum(ctx, ns.name, c.name, False)):
        inst = _provided_instance(c, ns, item, "enumerate_instances")
        if matches(inst):
            yield inst


def _repository_query(server: Server, ns: Namespace, c: ClassInfo, prepared: Prepared,
                      layout: list[tuple[str, str, MIType, int, bool]], ctx: Context) -> Iterator[Instance]:
    repo = server.repository
    cq = prepared.compiled
    rows: Any
    looked_up = False
    if cq.key_values is not None:
        try:
            key = key_string([(cq.key_values[p.name], int(p.type)) for p in c.keys])
        except KeyError:      # a subclass with other keys than the FROM class: scan it
            rows = repo.scan(ns.key, c.low)
        else:
            data = repo.get(ns.key, c.low, key)
            rows = () if data is None else ((key, data),)
            looked_up = True
    elif cq.key_text is not None and len(c.keys) == 1:
        rows = repo.scan_key_nocase(ns.key, c.low, cq.key_text)
    else:
        row_sql = prepared.row_sql(c)
        rows = repo.scan(ns.key, c.low, *row_sql) if row_sql is not None else repo.scan(ns.key, c.low)
    if looked_up and cq.key_exhaustive:     # the lookup alone decided
        for _key, data in rows:
            yield c.from_row(ns.name, decode_values(data), False, layout)
        return
    row_ok = cq.row_predicate
    matches = cq.matches
    name = c.name
    nsname = ns.name
    from_row = c.from_row
    for _key, data in rows:
        if ctx.token.cancelled:
            raise ctx.cancellation_error()
        values = decode_values(data)
        if row_ok is not None:
            if row_ok(values, name):
                yield from_row(nsname, values, False, layout)
        else:
            inst = from_row(nsname, values, False, layout)
            if matches(inst):
                yield inst


def invoke(server: Server, ns: Namespace, req: rq.Invoke, ctx: Context) -> Iterator[Instance]:
    class_name = req.class_name or (req.instance.class_name if isinstance(req.instance, Instance) else None)
    if not class_name or not req.method_name:
        raise MIError(MIResult.INVALID_PARAMETER, "Invoke needs a class name (or an instance) and a method name")
    info = ns.get(class_name)
    method = info.cls.methods.get(req.method_name)
    if method is None:
        raise MIError(MIResult.METHOD_NOT_FOUND,
                      f"class {info.name} in namespace {ns.name} has no method {req.method_name!r}")
    target: Instance | None = None
    if req.instance is not None:
        if not isinstance(req.instance, Instance):
            raise MIError(MIResult.INVALID_PARAMETER, "the instance to invoke a method on must be an openmi.Instance")
        _, keys = info.key_of(req.instance, ns.name)
        target = _key_instance(info, ns, keys)
    elif not method.is_static:
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"method {info.name}.{method.name} is not static; give the instance to invoke it on")
    params = _in_parameters(info, method.name, req.parameters)
    fn = _provider_method(info, "invoke")
    if fn is None:
        raise MIError(MIResult.NOT_SUPPORTED,
                      f"class {info.name} has no provider, so its method {method.name} cannot run")
    results = list(_run_provider(ctx, fn(ctx, ns.name, info.name, method.name, target, params)))
    out = _out_parameters(info, method.name, results[-1] if results else None)
    if server.indications.watching(ns.key):
        # shared: only this server serves the call, so the subscribers of the repository's other servers
        # hear of it only if it travels to them
        source = target if target is not None else Instance.from_elements(info.name, namespace=ns.name)
        server.indications.publish(ns.key, Event(
            ns.name, change=Lifecycle.METHODCALL, source=source.clone(), method=method.name,
            parameters=params.clone(), return_value=out["ReturnValue"] if "ReturnValue" in out else None,
            shared=True))
    yield out


def _in_parameters(info: ClassInfo, method_name: str, parameters: Instance | Mapping[str, Any] | None) -> Instance:
    method = info.cls.methods[method_name]
    out = Instance.from_elements("__PARAMETERS", {})
    if parameters is None:
        return out
    items: list[tuple[str, Any, MIType | None]]
    if isinstance(parameters, Instance):
        items = [(el.name, el.value, el.type) for el in parameters.elements]
    elif isinstance(parameters, Mapping):
        items = [(n, v, None) for n, v in parameters.items()]
    else:
        raise MIError(MIResult.INVALID_PARAMETER, "method parameters must be an Instance or a mapping")
    for name, value, t in items:
        param = method.parameters.get(name)
        if param is None or not param.in_:
            raise MIError(MIResult.INVALID_PARAMETER,
                          f"method {info.name}.{method.name} has no input parameter {name!r}")
        el = Element(name, value, t if t is not None else (infer_type(value) if value is not None else param.type))
        prop = Property(param.name, param.type)
        out.put_element(Element(param.name, info.convert(el, prop), param.type, 0))
    return out


def _out_parameters(info: ClassInfo, method_name: str, result: Any) -> Instance:
    method = info.cls.methods[method_name]
    out = Instance.from_elements("__PARAMETERS", {})
    if isinstance(result, Instance):
        items: list[tuple[str, Any]] = [(el.name, el.value) for el in result.elements]
    elif isinstance(result, Mapping):
        items = list(result.items())
    else:
        items = [("ReturnValue", result)]
    for name, value in items:
        if name.lower() in ("returnvalue", "mireturn"):
            t = method.return_type
            name = "ReturnValue"
        else:
            param = method.parameters.get(name)
            if param is None or not param.out:
                raise MIError(MIResult.FAILED,
                              f"the provider of {info.name} returned {name!r}, which is not an output parameter "
                              f"of {method.name}")
            t = param.type
            name = param.name
        try:
            v = coerce(value, t, name)
        except (TypeError, ValueError) as exc:
            raise MIError(MIResult.FAILED, f"the provider of {info.name}.{method.name} returned a bad value: {exc}"
                          ) from None
        out.put_element(Element(name, v, t, MIFlag.OUT))
    return out


def test_connection(server: Server, ns: Namespace, req: rq.TestConnection, ctx: Context) -> Iterator[Instance]:
    ctx.check()
    return iter(())


test_connection.__test__ = False  # type: ignore[attr-defined]


# --- class operations ------------------------------------------------------------------------------


def get_class(server: Server, ns: Namespace, req: rq.GetClass, ctx: Context) -> Iterator[Class]:
    """A class of the namespace, or one of the indication classes every namespace knows (CIM_InstDeletion,
    __InstanceDeletionEvent, …: a remote subscriber types what it receives with them)."""
    if isinstance(req.class_name, str) and req.class_name.lower() not in ns.classes:
        builtin = BUILTIN_CLASSES.get(req.class_name.lower())
        if builtin is not None:
            yield class_copy(builtin, ns)
            return
    yield class_copy(ns.get(req.class_name).cls, ns)


def class_copy(cls: Class, ns: Namespace) -> Class:
    """A class as an operation answers it: a copy the caller may change, naming its namespace."""
    out = cls.clone()
    out.namespace = ns.name
    return out


def enumerate_classes(server: Server, ns: Namespace, req: rq.EnumerateClasses, ctx: Context) -> Iterator[Class]:
    if req.class_name:
        start = ns.get(req.class_name).low
    else:
        start = ""
    deep = not req.flags & _SHALLOW
    for info in ns.descendants(start, deep):
        ctx.check()
        if req.class_names_only:
            yield Class(info.name, info.cls.superclass, namespace=ns.name)
        else:
            yield class_copy(info.cls, ns)


HANDLERS: dict[type, Handler] = {
    rq.GetInstance: get_instance,
    rq.CreateInstance: create_instance,
    rq.ModifyInstance: modify_instance,
    rq.DeleteInstance: delete_instance,
    rq.EnumerateInstances: enumerate_instances,
    rq.QueryInstances: query_instances,
    rq.Invoke: invoke,
    rq.TestConnection: test_connection,
    rq.GetClass: get_class,
    rq.EnumerateClasses: enumerate_classes,
    rq.Subscribe: subscriptions.subscribe,
}


# --- helpers -------------------------------------------------------------------------------------


def _publish_after_commit(server: Server, ns: Namespace, event: Event) -> None:
    repo = server.repository
    if not repo.in_transaction():  # the write committed on its own: now, under the lock the caller holds
        server.indications.publish(ns.key, event)
        return
    repo.after_commit(functools.partial(server.indications.publish, ns.key, event))



def _provider_write(info: ClassInfo, ns: Namespace, inst: Instance, ctx: Context, fn: Callable[..., Any],
                    what: str) -> Instance:
    """Hand a typed copy of the inbound instance to a provider's create/modify; its result, or the copy."""
    typed = _typed_instance(info, ns, info.values_of(inst, ns.name))
    produced = None
    for item in _run_provider(ctx, fn(ctx, ns.name, typed)):
        produced = _provided_instance(info, ns, item, what)
    return produced if produced is not None else typed


def _typed_instance(info: ClassInfo, ns: Namespace, values: dict[str, tuple[Any, int]]) -> Instance:
    elements = {}
    for name, (v, t) in values.items():
        prop = info.props[name.lower()]
        elements[name.lower()] = Element(prop.name, v, MIType(t), int(prop.flags & MIFlag.KEY))
    return Instance.from_elements(info.name, elements, namespace=ns.name)


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, Instance):
        return value.clone()
    return value

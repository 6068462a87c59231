"""AssociatorInstances and ReferenceInstances: walking the CIM graph from one instance.

The source must exist (NOT_FOUND otherwise). The association classes considered are those whose
references can point at the source's class (or a superclass of it), narrowed by ``assoc_class`` (that
class and its subclasses) and ``role`` (the property the source is referred to by, any case):

- a class stored in the repository answers from the association index (``refindex``): one index range
  for the source, never a scan;
- a class served by a provider answers through the provider's ``associator_instances`` /
  ``reference_instances`` when it has them (OMI's model: one call per association class; a
  NOT_SUPPORTED from one class does not fail the request), else from its ``enumerate_instances``,
  following the references.

For associators, every other reference of a matching association instance is a far end (n-ary
associations too; in a reflexive one the role decides which end is the source). ``result_role`` and
``result_class`` (the far end's class or a subclass) filter them. Each far end is returned once
(DSP0200's set semantics; WMI instead returns one per association), in a deterministic order: association
classes in definition order, then their instances by key. Far ends are fetched from whichever provider
or repository serves their class; one that does not exist is skipped and reported through
``write_error`` (NOT_FOUND) — the operation fails with it only if the client answers that it should stop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..cim import requests as rq
from ..cim.classes import Class
from ..cim.errors import MIError
from ..cim.instance import Element, Instance
from ..cim.objectpath import parse_object_path
from ..cim.query import AssocQuery, QueryError
from ..cim.types import MIFlag, MIResult, MIType
from .context import Context
from .encoding import decode_values, reference_from_json
from .operations import HANDLERS, _inbound, _run_provider, class_copy, get_instance
from .refindex import SEP, instance_target, target_key, target_namespace
from .schema import ClassInfo, Namespace

if TYPE_CHECKING:
    from .server import Server

_KEY = int(MIFlag.KEY)


def _name(value: Any, what: str) -> str | None:
    """An optional class or property name: None and "" mean "any"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MIError(MIResult.INVALID_PARAMETER, f"{what} must be a string, not {type(value).__name__}")
    return value


def _assoc_filter(ns: Namespace, name: str | None, what: str) -> ClassInfo | None:
    if name is None:
        return None
    info = ns.get(name)  # INVALID_CLASS when unknown
    if not info.is_association:
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"{what} {info.name} is not an association class (it has no Association qualifier)")
    return info


class _Source:
    """The source instance: its class as stored (or as a provider gave it), its keys and target key."""

    __slots__ = ("info", "namespace", "target", "values")

    def __init__(self, info: ClassInfo, namespace: str, values: dict[str, tuple[Any, int]], target: str) -> None:
        self.info = info
        self.namespace = namespace
        self.values = values
        self.target = target

    def key_instance(self) -> Instance:
        """The source's name as a provider receives it (built only when a provider is asked)."""
        return _key_instance(self.info.name, self.namespace, self.values)


def _key_instance(class_name: str, namespace: str, values: dict[str, tuple[Any, int]]) -> Instance:
    return Instance.from_elements(class_name, {n.lower(): Element(n, v, MIType(t), _KEY)
                                               for n, (v, t) in values.items()}, namespace=namespace)


def _source(server: Server, ns: Namespace, req: Any, ctx: Context) -> _Source:
    inst = _inbound(req, "the source instance, with its keys")
    info = ns.get(inst.class_name)
    key, values = info.key_of(inst, ns.name)  # INVALID_PARAMETER / NO_SUCH_PROPERTY / TYPE_MISMATCH
    if info.provider is None:
        found = _stored_class(server, ns, info, key)
        if found is None:
            raise MIError(MIResult.NOT_FOUND,
                          f"no instance of {info.name} with {info.describe_keys(values)} in namespace {ns.name}")
        return _Source(found, ns.name, values, instance_target(ns, found, key))
    found = info
    if getattr(info.provider, "get_instance", None) is not None:  # it must exist, as for GetInstance
        key_inst = _key_instance(info.name, ns.name, values)
        got = next(get_instance(server, ns, rq.GetInstance(ns.name, instance=key_inst), ctx))
        found = ns.classes.get(got.class_name.lower(), info)
    return _Source(found, ns.name, values, instance_target(ns, found, key))


def _stored_class(server: Server, ns: Namespace, info: ClassInfo, key: str) -> ClassInfo | None:
    """The repository class (``info`` or a subclass) that holds an instance with ``key``, if any."""
    repo = server.repository
    if repo.exists(ns.key, info.low, key):
        return info
    for sub in ns.descendants(info.low):
        if sub.provider is None and repo.exists(ns.key, sub.low, key):
            return sub
    return None


def _candidates(ns: Namespace, source: ClassInfo, assoc: ClassInfo | None, role: str | None,
                result: ClassInfo | None) -> list[ClassInfo]:
    """The association classes that can link the source (the "registered" ones, in OMI's words)."""
    cache_key = (source.low, assoc.low if assoc else "", role.lower() if role else "", result.low if result else "")
    cached = ns.link_cache.get(cache_key)
    if cached is not None:
        return cached
    out = []
    role_low = role.lower() if role is not None else None
    for a in ns.associations():
        if assoc is not None and not a.is_a(assoc.low):
            continue
        ends = [p for p in a.ref_props if p.reference_class is None or p.reference_class.lower() in source.lineage
                or _is_sub(ns, p.reference_class, source)]
        if role_low is not None:
            ends = [p for p in ends if p.name.lower() == role_low]
        if not ends:
            continue
        if result is not None:
            others = [q for q in a.ref_props if any(q is not p for p in ends)]
            if not any(q.reference_class is None or _related(ns, q.reference_class, result) for q in others):
                continue
        out.append(a)
    if len(ns.link_cache) > 4096:
        ns.link_cache.clear()
    ns.link_cache[cache_key] = out
    return out


def _is_sub(ns: Namespace, class_name: str, base: ClassInfo) -> bool:
    c = ns.classes.get(class_name.lower())
    return c is not None and c.is_a(base.low)


def _related(ns: Namespace, class_name: str, result: ClassInfo) -> bool:
    """The far end declared as ``class_name`` can be a ``result``: one is a subclass of the other."""
    c = ns.classes.get(class_name.lower())
    return c is not None and (c.is_a(result.low) or result.is_a(c.low))


def _stored_rows(server: Server, ns: Namespace, src: _Source,
                 classes: list[ClassInfo]) -> dict[str, list[tuple[str, list[str], str]]]:
    """The stored association instances referring to the source: ``{class: [(key, roles, data)]}``."""
    wanted = {a.low for a in classes if a.provider is None}
    out: dict[str, list[tuple[str, list[str], str]]] = {}
    if not wanted:
        return out
    for _ns, cls, key, role, data in server.repository.referencing(src.target, ns.key):
        if cls not in wanted:
            continue
        rows = out.setdefault(cls, [])
        if rows and rows[-1][0] == key:
            rows[-1][1].append(role)
        else:
            rows.append((key, [role], data))
    return out


def _stored_far_ends(server: Server, ns: Namespace, src: _Source, classes: list[ClassInfo]
                     ) -> dict[str, list[tuple[str, list[str], dict[str, tuple[str, str, str, str | None]]]]]:
    """The stored association instances referring to the source with their other ends, from one statement:
    ``{class: [(key, the source's roles, {other role: (target, namespace, class, row or None)})]}``."""
    wanted = {a.low for a in classes if a.provider is None}
    out: dict[str, list[tuple[str, list[str], dict[str, tuple[str, str, str, str | None]]]]] = {}
    if not wanted:
        return out
    for cls, key, srole, orole, target, tns, tcls, data in server.repository.far_ends(src.target, ns.key):
        if cls not in wanted:
            continue
        rows = out.setdefault(cls, [])
        if not rows or rows[-1][0] != key:
            rows.append((key, [], {}))
        _, sroles, others = rows[-1]
        if not sroles or sroles[-1] != srole:
            sroles.append(srole)
        others[orole] = (target, tns, tcls, data)
    return out


def _association_refs(server: Server, ns: Namespace, a: ClassInfo, key: str) -> dict[str, Any]:
    """The references of one stored association instance, decoded from its row."""
    data = server.repository.get(ns.key, a.low, key)
    if data is None:
        return {}
    row = decode_values(data)
    return {p.name: reference_from_json(row[p.name]) for p in a.ref_props if row.get(p.name) is not None}


def _provider_links(server: Server, ns: Namespace, a: ClassInfo, src: _Source,
                    ctx: Context) -> Iterator[tuple[Instance, list[str]]]:
    """A provider's association instances that refer to the source, with the roles it has in each, found
    by enumerating them (the provider has no associator_instances/reference_instances of its own)."""
    fn = getattr(a.provider, "enumerate_instances", None)
    if fn is None:
        return
    for item in _run_provider(ctx, fn(ctx, ns.name, a.name, False)):
        if not isinstance(item, Instance):
            raise MIError(MIResult.FAILED, f"the provider of class {a.name} returned {type(item).__name__} from "
                                           f"enumerate_instances, not an Instance")
        roles = []
        for p in a.ref_props:
            v = item.get(p.name)
            if isinstance(v, Instance) and target_key(server, ns, v) == src.target:
                roles.append(p.name.lower())
        if roles:
            if item.namespace is None:
                item.namespace = ns.name
            yield item, roles


def _fetch(server: Server, ns: Namespace, ref: Instance, ctx: Context) -> Instance | None:
    """The instance a far-end reference names, from whoever serves its class; None (reported) if missing."""
    tns = ns
    try:
        if ref.namespace:
            tns = server.namespace(ref.namespace)
        return next(get_instance(server, tns, rq.GetInstance(tns.name, instance=ref), ctx))
    except MIError as exc:
        if exc.result not in (MIResult.NOT_FOUND, MIResult.INVALID_CLASS, MIResult.INVALID_NAMESPACE):
            raise
        _missing(ctx, ref, exc.message)
        return None


def _missing(ctx: Context, ref: Instance, why: str) -> None:
    """Report a far end that does not exist (a non-terminating error); fail if the client says stop."""
    message = f"an association refers to {ref.path}, which does not exist: {why}"
    if not ctx.write_error(MIResult.NOT_FOUND, message):
        raise MIError(MIResult.NOT_FOUND, message) from None


def _stored_row(server: Server, ns: Namespace, info: ClassInfo, key: str) -> tuple[ClassInfo, str] | None:
    repo = server.repository
    data = repo.get(ns.key, info.low, key)
    if data is not None:
        return info, data
    for sub in ns.descendants(info.low):
        if sub.provider is None:
            data = repo.get(ns.key, sub.low, key)
            if data is not None:
                return sub, data
    return None


ClassTest = Callable[[ClassInfo], bool]


def associator_instances(server: Server, ns: Namespace, req: rq.AssociatorInstances, ctx: Context,
                         assoc_ok: ClassTest | None = None) -> Iterator[Instance]:
    """``assoc_ok`` narrows the association classes further (WQL's RequiredAssocQualifier)."""
    assoc = _assoc_filter(ns, _name(req.assoc_class, "assoc_class"), "assoc_class")
    result_name = _name(req.result_class, "result_class")
    result = ns.get(result_name) if result_name is not None else None
    role = _name(req.role, "role")
    result_role = _name(req.result_role, "result_role")
    src = _source(server, ns, req, ctx)
    classes = _candidates(ns, src.info, assoc, role, result)
    if assoc_ok is not None:
        classes = [a for a in classes if assoc_ok(a)]
    stored = _stored_far_ends(server, ns, src, classes)
    role_low = role.lower() if role else None
    rrole_low = result_role.lower() if result_role else None
    keys_only = bool(req.keys_only)
    seen: set[str] = set()

    def far_ends(a: ClassInfo, inst: Mapping[str, Any], roles: list[str]) -> Iterator[Instance]:
        if role_low is not None:
            roles = [r for r in roles if r == role_low]
            if not roles:
                return
        for p in a.ref_props:
            low = p.name.lower()
            if rrole_low is not None and low != rrole_low:
                continue
            if all(r == low for r in roles):  # the source's own end (unless it also plays another role)
                continue
            ref = inst.get(p.name)
            if not isinstance(ref, Instance):
                continue
            yield from emit(ref)

    def emit(ref: Instance) -> Iterator[Instance]:
        # the common case, a far end stored in the repository: one key computation, one row read
        tns = target_namespace(server, ns, ref)
        tinfo = tns.classes.get(ref.class_name.lower()) if tns is not None else None
        if tns is not None and tinfo is not None and tinfo.keys and tinfo.provider is None:
            try:
                key, _ = tinfo.key_of(ref, tns.name)
            except MIError:
                key = None
            if key is not None:
                tk = f"{tns.key}{SEP}{tinfo.key_root}{SEP}{key}"
                if tk in seen:
                    return
                seen.add(tk)
                row = _stored_row(server, tns, tinfo, key)
                if row is None:
                    _missing(ctx, ref, f"no instance of {tinfo.name} with those keys in namespace {tns.name}")
                    return
                found, data = row
                yield from finish(found.from_row(tns.name, decode_values(data)))
                return
        tk = target_key(server, ns, ref)
        if tk in seen:
            return
        seen.add(tk)
        far = _fetch(server, ns, ref, ctx)
        if far is None:
            return
        yield from finish(far)

    def finish(far: Instance) -> Iterator[Instance]:
        if result is not None:
            fns = server.namespace(far.namespace) if far.namespace else ns
            finfo = fns.classes.get(far.class_name.lower())
            if finfo is None or not finfo.is_a(result.low):
                return
        yield far.keys_only() if keys_only else far

    for a in classes:
        ctx.check()
        if a.provider is None:
            for key, sroles, others in stored.get(a.low, ()):
                ctx.check()
                roles = [r for r in sroles if r == role_low] if role_low is not None else sroles
                if not roles:
                    continue
                refs: dict[str, Any] | None = None
                for p in a.ref_props:
                    low = p.name.lower()
                    if (rrole_low is not None and low != rrole_low) or all(r == low for r in roles):
                        continue
                    other = others.get(low)
                    if other is None:
                        continue
                    target, tns_key, tcls, data = other
                    if target in seen:
                        continue
                    if data is not None:  # the far end's row came with the index: the common case
                        tns = server.namespace(tns_key)
                        finfo = tns.classes.get(tcls)
                        if finfo is not None and finfo.provider is None:
                            seen.add(target)
                            yield from finish(finfo.from_row(tns.name, decode_values(data)))
                            continue
                    if refs is None:  # named through a superclass, served by a provider, or missing
                        refs = _association_refs(server, ns, a, key)
                    ref = refs.get(p.name)
                    if isinstance(ref, Instance):
                        yield from emit(ref)
            continue
        fn = getattr(a.provider, "associator_instances", None)
        if fn is None:
            for inst, roles in _provider_links(server, ns, a, src, ctx):
                yield from far_ends(a, inst, roles)
            continue
        try:
            for item in _run_provider(ctx, fn(ctx, ns.name, a.name, src.key_instance(), req.result_class or
                                              None, role, result_role, keys_only)):
                if not isinstance(item, Instance):
                    raise MIError(MIResult.FAILED, f"the provider of class {a.name} returned "
                                                   f"{type(item).__name__} from associator_instances")
                if item.namespace is None:
                    item.namespace = ns.name
                tk = target_key(server, ns, item)
                if tk in seen:
                    continue
                seen.add(tk)
                yield from finish(item)
        except MIError as exc:
            if exc.result != MIResult.NOT_SUPPORTED:  # NOT_SUPPORTED for one class: the others still answer
                raise


def reference_instances(server: Server, ns: Namespace, req: rq.ReferenceInstances, ctx: Context,
                        assoc_ok: ClassTest | None = None) -> Iterator[Instance]:
    """``assoc_ok`` narrows the association classes further (WQL's RequiredQualifier)."""
    assoc = _assoc_filter(ns, _name(req.result_class, "result_class"), "result_class")
    role = _name(req.role, "role")
    src = _source(server, ns, req, ctx)
    classes = _candidates(ns, src.info, assoc, role, None)
    if assoc_ok is not None:
        classes = [a for a in classes if assoc_ok(a)]
    stored = _stored_rows(server, ns, src, classes)
    role_low = role.lower() if role else None
    keys_only = bool(req.keys_only)

    def plays(roles: list[str]) -> bool:
        return role_low is None or role_low in roles

    for a in classes:
        ctx.check()
        if a.provider is None:
            for _key, roles, data in stored.get(a.low, ()):
                if plays(roles):
                    ctx.check()
                    yield a.from_row(ns.name, decode_values(data), keys_only)
            continue
        fn = getattr(a.provider, "reference_instances", None)
        if fn is None:
            for inst, roles in _provider_links(server, ns, a, src, ctx):
                if plays(roles):
                    yield inst.keys_only() if keys_only else inst
            continue
        try:
            for item in _run_provider(ctx, fn(ctx, ns.name, a.name, src.key_instance(), role, keys_only)):
                if not isinstance(item, Instance):
                    raise MIError(MIResult.FAILED, f"the provider of class {a.name} returned "
                                                   f"{type(item).__name__} from reference_instances")
                if item.namespace is None:
                    item.namespace = ns.name
                yield item.keys_only() if keys_only else item
        except MIError as exc:
            if exc.result != MIResult.NOT_SUPPORTED:
                raise


# --- WQL: ASSOCIATORS OF {path} WHERE … and REFERENCES OF {path} WHERE … through QueryInstances -----------


def _has_qualifier(info: ClassInfo, name: str) -> bool:
    q = info.cls.qualifiers.get(name)
    return q is not None and q.value not in (None, False)


def assoc_query(server: Server, ns: Namespace, q: AssocQuery, req: rq.QueryInstances,
                ctx: Context) -> Iterator[Instance | Class]:
    """Answer a parsed ``ASSOCIATORS OF`` / ``REFERENCES OF`` query (the keyword rules were checked by the
    parser) with AssociatorInstances / ReferenceInstances. The path in braces names the source, relative
    or with its namespace; ``KeysOnly`` gives instance names. ``ClassDefsOnly`` and ``SchemaOnly`` answer
    class definitions (the client reads them with ``get_class()``): ClassDefsOnly the classes of the
    instances the data query finds, SchemaOnly (the path names a class) the classes the schema links to
    it. Each class once, in the order first found."""
    try:
        path = parse_object_path(q.object_path)
    except ValueError as exc:
        raise QueryError(str(exc), q.path_column) from None
    target_ns = server.namespace(path.namespace) if path.namespace else ns
    if q.schema_only:
        if path.key_elements:
            raise QueryError(f"SchemaOnly takes a class in the braces, not an instance ({q.object_path})",
                             q.path_column)
        yield from _schema_query(target_ns, q, target_ns.get(path.class_name), ctx)
        return
    if q.class_defs_only:
        yield from _class_defs(server, target_ns, _data_query(server, target_ns, q, req, path, ctx))
        return
    yield from _data_query(server, target_ns, q, req, path, ctx)


def _data_query(server: Server, target_ns: Namespace, q: AssocQuery, req: rq.QueryInstances, path: Instance,
                ctx: Context) -> Iterator[Instance]:
    source = path.clone()
    source.namespace = None
    source.server_name = None
    keys_only = q.keys_only
    if q.kind == "associators":
        need_assoc = q.required_assoc_qualifier
        need_result = q.required_qualifier
        ar = rq.AssociatorInstances(target_ns.name, flags=req.flags, options=req.options, instance=source,
                                    assoc_class=q.assoc_class, result_class=q.result_class, role=q.role,
                                    result_role=q.result_role, keys_only=keys_only)
        results = associator_instances(server, target_ns, ar, ctx,
                                       (lambda a: _has_qualifier(a, need_assoc)) if need_assoc else None)
        for inst in results:
            if need_result:
                fns = server.namespace(inst.namespace) if inst.namespace else target_ns
                finfo = fns.classes.get(inst.class_name.lower())
                if finfo is None or not _has_qualifier(finfo, need_result):
                    continue
            yield inst
        return
    need = q.required_qualifier
    rr = rq.ReferenceInstances(target_ns.name, flags=req.flags, options=req.options, instance=source,
                               result_class=q.result_class, role=q.role, keys_only=keys_only)
    yield from reference_instances(server, target_ns, rr, ctx, (lambda a: _has_qualifier(a, need)) if need else None)


def _class_defs(server: Server, ns: Namespace, results: Iterator[Instance]) -> Iterator[Class]:
    """ClassDefsOnly: the class of each result, once, in the order first found."""
    seen: set[tuple[str, str]] = set()
    for inst in results:
        cns = server.namespace(inst.namespace) if inst.namespace else ns
        key = (cns.name.lower(), inst.class_name.lower())
        if key in seen:
            continue
        seen.add(key)
        yield class_copy(cns.get(inst.class_name).cls, cns)


def _schema_query(ns: Namespace, q: AssocQuery, source: ClassInfo, ctx: Context) -> Iterator[Class]:
    """SchemaOnly: from the schema alone, the association classes that can refer to ``source`` (REFERENCES
    OF), or the classes at their other ends (ASSOCIATORS OF), filtered by the query's keywords (a class
    keyword takes that class or a subclass; a role names the reference property; a required qualifier
    must be present and not false)."""
    role = q.role.lower() if q.role else None
    result = ns.get(q.result_class) if q.result_class else None
    if q.kind == "references":
        for a in _candidates(ns, source, None, q.role, None):
            ctx.check()
            if result is not None and not a.is_a(result.low):
                continue
            if q.required_qualifier and not _has_qualifier(a, q.required_qualifier):
                continue
            yield class_copy(a.cls, ns)
        return
    assoc = _assoc_filter(ns, q.assoc_class, "AssocClass") if q.assoc_class else None
    result_role = q.result_role.lower() if q.result_role else None
    seen: set[str] = set()
    for a in _candidates(ns, source, assoc, q.role, None):
        ctx.check()
        if q.required_assoc_qualifier and not _has_qualifier(a, q.required_assoc_qualifier):
            continue
        ends = [p for p in a.ref_props if (p.reference_class is None or p.reference_class.lower() in source.lineage
                                           or _is_sub(ns, p.reference_class, source))
                and (role is None or p.name.lower() == role)]
        for far in a.ref_props:
            if far.reference_class is None or all(far is p for p in ends):
                continue
            if result_role is not None and far.name.lower() != result_role:
                continue
            info = ns.classes.get(far.reference_class.lower())
            if info is None or info.low in seen:
                continue
            if result is not None and not info.is_a(result.low):
                continue
            if q.required_qualifier and not _has_qualifier(info, q.required_qualifier):
                continue
            seen.add(info.low)
            yield class_copy(info.cls, ns)


HANDLERS[rq.AssociatorInstances] = associator_instances
HANDLERS[rq.ReferenceInstances] = reference_instances

"""One handler per request kind: each turns a request into a stream of results.

A handler receives the namespace (already checked), the request and the context; it yields
instances or classes and raises :class:`MIError` to end with a failure. A class with a provider is
served by the provider's method of the same name; other classes by the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..cim import requests as rq
from ..cim.classes import Class, Property
from ..cim.errors import MIError
from ..cim.instance import Element, Instance
from ..cim.types import MIFlag, MIResult, MIType, OperationFlags
from ..cim.values import coerce, infer_type
from .context import Context
from .encoding import decode_values, encode_values, key_string
from .indications import Event, Lifecycle
from .schema import ClassInfo, Namespace

if TYPE_CHECKING:
    from .server import Server

Handler = Callable[["Server", Namespace, Any, Context], Iterator[Any]]

_SHALLOW = int(OperationFlags.POLYMORPHISM_SHALLOW)
_BASE_PROPS_ONLY = int(OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY)


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
    raise MIError(MIResult.NOT_FOUND,
                  f"no instance of {info.name} with {info.describe_keys(values)} in namespace {ns.name}")


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
        raise MIError(MIResult.NOT_FOUND,
                      f"no instance of {info.name} with {info.describe_keys(values)} in namespace {ns.name}")
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
    nsk = ns.key
    repo = server.repository
    ctx.check()
    if server.indications.watching(nsk):
        if _delete_watched(server, ns, info, key):
            return
    elif repo.delete(nsk, info.low, key):
        return
    else:
        for sub in ns.descendants(info.low):
            if sub.provider is None and repo.delete(nsk, sub.low, key):
                return
    raise MIError(MIResult.NOT_FOUND,
                  f"no instance of {info.name} with {info.describe_keys(values)} in namespace {ns.name}")
    yield  # pragma: no cover - makes this a generator


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
    ctx.check()
    repo = server.repository
    hub = server.indications
    watched = hub.watching(ns.key)
    with repo.lock:
        if not repo.insert(ns.key, info.low, key, encode_values(values)):
            keys = ",".join(f"{p.name}={v!r}" for p, (v, _) in zip(info.keys, key_parts))
            raise MIError(MIResult.ALREADY_EXISTS,
                          f"an instance of {info.name} with {keys} already exists in namespace {ns.name}")
        if watched:
            created = info.from_row(ns.name, {n: v for n, (v, _) in values.items()}, layout=_plain_layout(info))
            _publish_after_commit(server, ns, Event(ns.name, change=Lifecycle.CREATE, source=created))
    yield info.from_row(ns.name, {n: v for n, (v, _) in values.items()}, layout=_plain_layout(info))


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
        ctx.check()
        repo.update(nsk, found.low, key, encode_values(values))
        if server.indications.watching(nsk):
            after = found.from_row(ns.name, {n: v for n, (v, _) in values.items()}, layout=_plain_layout(found))
            _publish_after_commit(server, ns, Event(ns.name, change=Lifecycle.MODIFY, source=after,
                                                    previous=current))
    yield found.from_row(ns.name, {n: v for n, (v, _) in values.items()}, layout=_plain_layout(found))


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
            if ctx.cancelled:
                raise ctx.cancellation_error()
            out = c.from_row(ns.name, decode_values(data), keys_only, layout)
            if base_only:
                out.class_name = c.name
            yield out


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
        source = target if target is not None else Instance.from_elements(info.name, namespace=ns.name)
        server.indications.publish(ns.key, Event(
            ns.name, change=Lifecycle.METHODCALL, source=source.clone(), method=method.name,
            parameters=params.clone(), return_value=out["ReturnValue"] if "ReturnValue" in out else None))
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
    info = ns.get(req.class_name)
    out = info.cls.clone()
    out.namespace = ns.name
    yield out


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
            out = info.cls.clone()
            out.namespace = ns.name
            yield out


HANDLERS: dict[type, Handler] = {
    rq.GetInstance: get_instance,
    rq.CreateInstance: create_instance,
    rq.ModifyInstance: modify_instance,
    rq.DeleteInstance: delete_instance,
    rq.EnumerateInstances: enumerate_instances,
    rq.Invoke: invoke,
    rq.TestConnection: test_connection,
    rq.GetClass: get_class,
    rq.EnumerateClasses: enumerate_classes,
}


# --- helpers -------------------------------------------------------------------------------------


def _delete_watched(server: Server, ns: Namespace, info: ClassInfo, key: str) -> bool:
    """Delete while someone watches the namespace: the row's values become the CIM_InstDeletion's
    SourceInstance, read by the same statement that deletes it."""
    repo = server.repository
    with repo.lock:
        for c in (info, *(sub for sub in ns.descendants(info.low) if sub.provider is None)):
            data = repo.delete_returning(ns.key, c.low, key)
            if data is not None:
                old = c.from_row(ns.name, decode_values(data))
                _publish_after_commit(server, ns, Event(ns.name, change=Lifecycle.DELETE, source=old))
                return True
    return False


def _publish_after_commit(server: Server, ns: Namespace, event: Event) -> None:
    hub = server.indications
    key = ns.key
    server.repository.after_commit(lambda: hub.publish(key, event))



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


def _plain_layout(info: ClassInfo) -> list[tuple[str, str, MIType, int, bool]]:
    # values already decoded: never run the JSON decoders on them
    return [(low, name, t, flags, False) for low, name, t, flags, _ in info.layout]


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, Instance):
        return value.clone()
    return value

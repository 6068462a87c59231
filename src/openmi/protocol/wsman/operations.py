"""The table of operation kinds over WS-Management: one declaration per kind, used by both ends.

A remote session (``openmi.client.remote``) turns a request record into WS-Man requests and their
answers into results with :func:`plan`; the WS-Man server (``openmi.wsman_server.service``) finds the
declaration of a parsed request with :func:`for_wsman`, builds the engine's request record with
``kind.record`` and answers with ``kind.response``. Each translation is written once, here, and the
two directions of a kind sit side by side so that one is visibly the inverse of the other.

Adding an operation kind:

1. its frozen request record in :mod:`openmi.cim.requests`;
2. its engine handler in ``openmi.engine.operations.HANDLERS``;
3. one :class:`OperationKind` below, added to ``KINDS``: the record type, the WS-Man request and
   response types, ``read_only``/``idempotent``, and the four translations —
   ``request`` (record → WS-Man request, client), ``results`` (WS-Man response → results, client),
   ``record`` (WS-Man request → record, server), ``response`` (results → WS-Man response, server).
   ``accepts`` tells kinds apart that share a WS-Man request type (Enumerate with different filters).
   A ``streamed`` kind's request is an Enumerate: both ends run Enumerate/Pull/Release for it
   generically, and ``results`` reads each Enumerate and Pull response; ``page`` (server) puts a page of
   results into an Enumerate or Pull response when they are not instances. Both server translations
   get the server's class lookup (keys are typed with it; GetClass's answer reads the inheritance
   chain from it). ``fixed_uri`` marks a kind whose requests address a fixed resource URI (the
   CIM-XML schema URI of the class operations), which the resource URI options then leave alone.

The round trip of every declaration is tested in ``tests/protocol/test_wsman_operations.py``.
Identify, Pull and Release are protocol messages rather than operation kinds: the server answers them
itself; the client's TestConnection is Identify.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from openmi.cim import requests as rq
from openmi.cim.cancel import CancelToken
from openmi.cim.classes import Class
from openmi.cim.errors import MIError
from openmi.cim.instance import Element, Instance
from openmi.cim.namespaces import normalize_namespace
from openmi.cim.query import QueryError, SelectQuery, dialect_name, parse
from openmi.cim.types import MIFlag, MIResult, MIType, OperationFlags
from openmi.cim.values import coerce_scalar

from . import eventing as ev
from . import namespaces as wns
from .classxml import ClassOptions
from .faults import WSManFault
from .requests import (
    CLASS_NAMES_ONLY_OPTION,
    AssociationFilter,
    CreateRequest,
    DeleteRequest,
    EnumerateClassesRequest,
    EnumerateRequest,
    EnumerationMode,
    Filter,
    GetClassRequest,
    GetRequest,
    IdentifyRequest,
    InvokeRequest,
    PolymorphismMode,
    PullRequest,
    PutRequest,
    ReleaseRequest,
    Request,
)
from .responses import (
    CreateResponse,
    DeleteResponse,
    EnumerateResponse,
    GetClassResponse,
    GetResponse,
    IdentifyResponse,
    InvokeResponse,
    PullResponse,
    PutResponse,
    Response,
)
from .uri import CIMXML_SCHEMA_URI, UriStyle
from .values import ClassLookup, WireError, instance_selectors, parse_wire_scalar

# A plan yields ("send", WS-Man request) and receives the response, or yields ("item", result); a subscription
# also yields ("sleep", seconds), ("listen", (host, port)) → an event sink, ("recv", (sink, seconds)) → a message.
Plan = Generator[tuple[str, Any], Any, None]


@dataclass(frozen=True, slots=True)
class OperationKind:
    """One operation kind over WS-Man (see the module's docstring for the recipe)."""

    record_type: type[rq.Request]
    request_type: type[Request]
    response_type: type[Response]
    read_only: bool
    idempotent: bool
    #: client: the record (namespace already normalized to ``ns``) → the WS-Man request to send
    request: Callable[[Any, str | None], Request]
    #: client: one WS-Man response → the results it holds
    results: Callable[[Any, Any, str | None], Iterable[Any]]
    #: server: the parsed WS-Man request → the engine's record (None: the server answers it itself)
    record: Callable[[Any, ClassLookup | None], rq.Request] | None
    #: server: (the request, the engine's results, the class lookup) → the WS-Man response (unused for
    #: streamed kinds)
    response: Callable[[Any, list[Any], ClassLookup], Response] | None
    #: results arrive through Enumerate/Pull (handled generically by both ends)
    streamed: bool = False
    #: server: whether this kind serves a request of ``request_type`` (filters tell Enumerates apart)
    accepts: Callable[[Any], bool] | None = None
    #: server, streamed kinds: (the Enumerate request, a page of results, the response to fill, the class
    #: lookup) — None: the results are instances, written as items
    page: Callable[[Any, list[Any], EnumerateResponse, ClassLookup], None] | None = None
    #: server, streamed kinds: narrow the engine's result stream as the request asks (a selector filter)
    narrow: Callable[[Any, Iterator[Any]], Iterator[Any]] | None = None
    #: client: the requests address a fixed resource URI: OperationOptions' resource URI (prefix) does not apply
    fixed_uri: bool = False

    @property
    def name(self) -> str:
        return self.record_type.name

    @property
    def single(self) -> bool:
        return self.record_type.single


# --- shared pieces of the translations ---------------------------------------------------------


def _base(req: Request) -> dict[str, Any]:
    """What every record built from a WS-Man request carries."""
    return {"namespace": req.namespace, "options": req.option_set or rq.NO_OPTIONS}


def _instance_of(record: Any) -> Instance:
    inst = record.instance
    if not isinstance(inst, Instance):
        what = "none was given" if inst is None else f"not {type(inst).__name__}"
        raise MIError(MIResult.INVALID_PARAMETER, f"{record.name} needs an openmi.Instance ({what})")
    return inst


def _in(inst: Instance, ns: str | None) -> Instance:
    """A result read from the wire, with the namespace the request addressed when it names none."""
    if inst.namespace is None and ns:
        inst.namespace = ns
    return inst


def class_name_of(req: Request) -> str:
    """The class a WS-Man request addresses, or INVALID_CLASS naming its resource URI."""
    if not req.class_name:
        raise MIError(MIResult.INVALID_CLASS, f"the resource URI {req.resource_uri!r} names no class")
    return req.class_name


def selector_instance(req: Request, lookup: ClassLookup | None) -> Instance:
    """The selectors of a WS-Man request as an instance name, typed by the class where the text allows.

    This is the one place wire text becomes typed key values (the engine then sees values already in
    their property's type). A value the class's type cannot read stays text: the engine answers
    TYPE_MISMATCH naming the key and its type.
    """
    return typed_key_instance(class_name_of(req), req.namespace, req.selectors, lookup)


def typed_key_instance(class_name: str, namespace: str | None, selectors: Mapping[str, Any],
                       lookup: ClassLookup | None) -> Instance:
    """Selector values (text, or a reference) as an instance name, typed by the class where the text allows."""
    cls = lookup(namespace, class_name) if lookup is not None else None
    props = cls.properties if cls is not None else None
    elements: dict[str, Element] = {}
    for name, value in selectors.items():
        if isinstance(value, Instance):
            elements[name.lower()] = Element(name, value, MIType.REFERENCE, MIFlag.KEY)
            continue
        prop = props.get(name) if props is not None else None
        typed: Any = value
        t = MIType.STRING
        pt = prop.type if prop is not None else None
        if pt is not None and pt not in _TEXT_KEYS and not pt.is_array:
            try:
                if pt.is_integer and value.isascii() and value.isdigit():  # the common key: fast
                    typed = coerce_scalar(int(value), pt, name)
                else:
                    typed = parse_wire_scalar(value, pt, name)
                t = pt
            except (WireError, ValueError, TypeError):
                typed = value
        elements[name.lower()] = Element(name, typed, t, MIFlag.KEY)
    return Instance.from_elements(class_name, elements, namespace=namespace)


# Keys whose wire text is already their value (strings) or that no text can give (references, instances).
_TEXT_KEYS = frozenset({MIType.STRING, MIType.REFERENCE, MIType.INSTANCE})


def _body_instance(req: PutRequest | CreateRequest) -> Instance:
    inst: Instance | None = req.instance
    if inst is None:
        raise MIError(MIResult.INVALID_PARAMETER, f"the {type(req).__name__[:-7]} request has no instance body")
    class_name = class_name_of(req)
    if not inst.class_name or inst.class_name.lower() != class_name.lower():
        inst.class_name = class_name
    return inst


def _first(results: list[Any]) -> Any:
    return results[0] if results else None


# --- the declarations -----------------------------------------------------------------------------

GET_INSTANCE = OperationKind(
    rq.GetInstance, GetRequest, GetResponse, read_only=True, idempotent=True,
    request=lambda r, ns: GetRequest(namespace=ns, class_name=_instance_of(r).class_name,
                                     selectors=instance_selectors(_instance_of(r))),
    results=lambda r, resp, ns: (_in(resp.instance, ns),),
    record=lambda req, lookup: rq.GetInstance(instance=selector_instance(req, lookup), **_base(req)),
    response=lambda req, results, lookup: GetResponse(instance=_first(results)),
)

DELETE_INSTANCE = OperationKind(
    rq.DeleteInstance, DeleteRequest, DeleteResponse, read_only=False, idempotent=False,
    request=lambda r, ns: DeleteRequest(namespace=ns, class_name=_instance_of(r).class_name,
                                        selectors=instance_selectors(_instance_of(r))),
    results=lambda r, resp, ns: (),
    record=lambda req, lookup: rq.DeleteInstance(instance=selector_instance(req, lookup), **_base(req)),
    response=lambda req, results, lookup: DeleteResponse(),
)

CREATE_INSTANCE = OperationKind(
    rq.CreateInstance, CreateRequest, CreateResponse, read_only=False, idempotent=False,
    request=lambda r, ns: CreateRequest(namespace=ns, class_name=_instance_of(r).class_name,
                                        instance=_instance_of(r)),
    # the new instance's name (a peer that sends no EPR back: the keys the client gave)
    results=lambda r, resp, ns: (_in(resp.instance_name, ns) if resp.instance_name is not None
                                 else _instance_of(r).keys_only(),),
    record=lambda req, lookup: rq.CreateInstance(instance=_body_instance(req), **_base(req)),
    response=lambda req, results, lookup: CreateResponse(instance_name=_first(results).keys_only()),
)


def _modify_record(req: PutRequest, lookup: ClassLookup | None) -> rq.ModifyInstance:
    inst = _body_instance(req)
    for el in selector_instance(req, lookup).elements:  # the selectors name the instance: they win
        inst.put_element(el)
    return rq.ModifyInstance(instance=inst, **_base(req))


MODIFY_INSTANCE = OperationKind(
    rq.ModifyInstance, PutRequest, PutResponse, read_only=False, idempotent=False,
    request=lambda r, ns: PutRequest(namespace=ns, class_name=_instance_of(r).class_name,
                                     selectors=instance_selectors(_instance_of(r)), instance=_instance_of(r)),
    # OMI answers an empty body when its provider posts no instance: the client's instance stands
    results=lambda r, resp, ns: (_in(resp.instance, ns) if resp.instance is not None else _instance_of(r),),
    record=_modify_record,
    response=lambda req, results, lookup: PutResponse(instance=_first(results)),
)


def _invoke_request(r: rq.Invoke, ns: str | None) -> InvokeRequest:
    target = r.instance
    if target is not None and not isinstance(target, Instance):
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"the instance to invoke a method on must be an openmi.Instance, not {type(target).__name__}")
    class_name = r.class_name or (target.class_name if target is not None else None)
    if not class_name or not r.method_name:
        raise MIError(MIResult.INVALID_PARAMETER, "Invoke needs a class name (or an instance) and a method name")
    params = r.parameters
    if params is not None and not isinstance(params, Instance):
        params = Instance("__parameters", params)
    return InvokeRequest(namespace=ns, class_name=class_name, method=r.method_name,
                         selectors=instance_selectors(target) if target is not None else {}, parameters=params)


INVOKE = OperationKind(
    rq.Invoke, InvokeRequest, InvokeResponse, read_only=False, idempotent=False,
    request=_invoke_request,
    results=lambda r, resp, ns: (resp.parameters if resp.parameters is not None else Instance("__parameters"),),
    record=lambda req, lookup: rq.Invoke(
        class_name=req.class_name, method_name=req.method, parameters=req.parameters,
        instance=selector_instance(req, lookup) if req.selectors else None, **_base(req)),
    response=lambda req, results, lookup: InvokeResponse(method=req.method, parameters=_first(results)),
)

_SHALLOW = int(OperationFlags.POLYMORPHISM_SHALLOW)
_BASE_ONLY = int(OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY)


def _polymorphism(flags: int) -> PolymorphismMode | None:
    if flags & _BASE_ONLY == _BASE_ONLY:
        return PolymorphismMode.EXCLUDE_SUBCLASS_PROPERTIES
    if flags & _SHALLOW:
        return PolymorphismMode.NONE
    return None


def _polymorphism_flags(mode: PolymorphismMode | None) -> int:
    if mode == PolymorphismMode.NONE:
        return _SHALLOW
    if mode == PolymorphismMode.EXCLUDE_SUBCLASS_PROPERTIES:
        return _BASE_ONLY
    return 0


def _enumerate_request(r: rq.EnumerateInstances, ns: str | None) -> EnumerateRequest:
    if not r.class_name or not isinstance(r.class_name, str):
        raise MIError(MIResult.INVALID_PARAMETER, "EnumerateInstances needs a class name")
    return EnumerateRequest(namespace=ns, class_name=r.class_name, polymorphism=_polymorphism(r.flags),
                            mode=EnumerationMode.EPR if r.keys_only else EnumerationMode.OBJECTS)


def stream_items(r: Any, resp: EnumerateResponse, ns: str | None) -> Iterable[Instance]:
    """The instances of one Enumerate or Pull response (key-only ones in EPR mode)."""
    return (_in(item, ns) for item in (resp.items if resp.items else resp.eprs))


def _selector_filtered(req: EnumerateRequest, results: Iterator[Instance]) -> Iterator[Instance]:
    """The instances a selector filter keeps (DSP0226 §8.3: every selector equals the property)."""
    f = req.filter
    if f is None or f.dialect != wns.DIALECT_SELECTOR:
        return results
    wanted = {k.lower(): v for k, v in (f.selectors or {}).items()}
    return (inst for inst in results if all(_selector_matches(inst, k, v) for k, v in wanted.items()))


def _selector_matches(inst: Instance, name: str, wanted: str | Instance) -> bool:
    if name not in inst:
        return False
    el = inst.get_element(name)
    if isinstance(wanted, Instance):
        return isinstance(el.value, Instance) and el.value.keys_only() == wanted.keys_only()
    if el.value is None:
        return False
    if el.type == MIType.STRING:
        return bool(el.value == wanted)
    try:
        return bool(el.value == parse_wire_scalar(wanted, el.type, name))
    except (WireError, ValueError, TypeError):
        return False


ENUMERATE_INSTANCES = OperationKind(
    rq.EnumerateInstances, EnumerateRequest, EnumerateResponse, read_only=True, idempotent=True,
    request=_enumerate_request,
    results=stream_items,
    record=lambda req, lookup: rq.EnumerateInstances(
        class_name=class_name_of(req), keys_only=req.mode == EnumerationMode.EPR,
        flags=_polymorphism_flags(req.polymorphism), **_base(req)),
    response=None,
    streamed=True,
    # a selector filter narrows the stream; query and association filters are other kinds
    accepts=lambda req: req.filter is None or req.filter.dialect == wns.DIALECT_SELECTOR,
    narrow=_selector_filtered,
)

# --- QueryInstances: an Enumerate with a WQL or CQL filter --------------------------------------------

_QUERY_DIALECTS = {"WQL": wns.DIALECT_WQL, "CQL": wns.DIALECT_CQL}
_DIALECT_NAMES = {v: k for k, v in _QUERY_DIALECTS.items()}
# The FROM class of a query the client cannot parse itself (a peer may know more of CQL than we do)
_FROM = re.compile(r"\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def query_class(text: str, dialect: str) -> tuple[str, SelectQuery | None]:
    """The class a query selects from, and the parsed query when it parses here."""
    try:
        q = parse(text, dialect)
    except QueryError as exc:
        m = _FROM.search(text)
        if m is None:
            raise exc from None
        return m.group(1), None
    if not isinstance(q, SelectQuery):  # ASSOCIATORS OF / REFERENCES OF name no FROM class: the wildcard URI
        return "*", None
    return q.class_name, q


def _query_request(r: rq.QueryInstances, ns: str | None) -> EnumerateRequest:
    dialect = dialect_name(r.dialect)
    if dialect not in _QUERY_DIALECTS:
        raise MIError(MIResult.QUERY_LANGUAGE_NOT_SUPPORTED,
                      f"query dialect {r.dialect!r} is not supported over WS-Management; use WQL or CQL")
    if not r.query or not isinstance(r.query, str):
        raise MIError(MIResult.INVALID_QUERY, "QueryInstances needs a query expression")
    class_name, _ = query_class(r.query, dialect)
    # The class URI (DMTF style, with __cimnamespace) names the FROM class; in the WMI style the request
    # goes to the namespace's * URI instead (EnumerateRequest.effective_resource_uri).
    return EnumerateRequest(namespace=ns, class_name=class_name, polymorphism=_polymorphism(r.flags),
                            filter=Filter(dialect=_QUERY_DIALECTS[dialect], query=r.query))


def _query_items(r: rq.QueryInstances, resp: EnumerateResponse, ns: str | None) -> Iterable[Instance | Class]:
    """The instances of one response; a projection read from ``wsman:XmlFragment`` items (WinRM) gets
    the FROM class's name, which the fragment does not carry."""
    if resp.classes:  # a schema query (ClassDefsOnly, SchemaOnly) answers classes
        yield from (_class_in(c, ns) for c in resp.classes)
    fragment_class: str | None = None
    for item in stream_items(r, resp, ns):
        if item.class_name == "XmlFragment":
            if fragment_class is None:
                fragment_class, _ = query_class(r.query or "", dialect_name(r.dialect) or "WQL")
            item.class_name = fragment_class
        yield item


def _query_record(req: EnumerateRequest, lookup: ClassLookup | None) -> rq.QueryInstances:
    f = req.filter
    assert f is not None and f.query is not None
    dialect = _DIALECT_NAMES[f.dialect]
    uri_class = req.class_name
    if uri_class and uri_class != "*":       # a class URI: the query must select from that class (as OMI)
        try:
            q = parse(f.query, dialect)
        except QueryError:
            pass                             # the engine reports what is wrong with the text
        else:
            if isinstance(q, SelectQuery) and q.class_name.lower() != uri_class.lower():
                raise QueryError(f"the query selects from {q.class_name}, but the resource URI names {uri_class}",
                                 q.class_column)
    return rq.QueryInstances(dialect=dialect, query=f.query, flags=_polymorphism_flags(req.polymorphism),
                             **_base(req))


def _query_page(req: EnumerateRequest, results: list[Any], response: EnumerateResponse,
                lookup: ClassLookup) -> None:
    """A page of query results: a query that selects properties (``SELECT a, b``) asked for in the WMI
    style is answered as WinRM answers it, with ``wsman:XmlFragment`` items (to a client that reads OMI's
    shapes, ``plain_values``, in the class's element); a schema query's classes
    (``ClassDefsOnly``, ``SchemaOnly``) as DSP0201 ``<CLASS>`` items, as EnumerateClasses writes them."""
    if results and isinstance(results[0], Class):
        _put_classes(response, results, ClassOptions.full(), lookup, req.namespace)
        return
    f = req.filter
    if req.uri_style is not UriStyle.WMI or req.plain_values or f is None or not f.query:
        return
    try:
        q = parse(f.query, _DIALECT_NAMES.get(f.dialect, "WQL"))
    except QueryError:
        return
    response.fragments = isinstance(q, SelectQuery) and q.properties is not None


QUERY_INSTANCES = OperationKind(
    rq.QueryInstances, EnumerateRequest, EnumerateResponse, read_only=True, idempotent=True,
    request=_query_request,
    results=_query_items,
    record=_query_record,
    response=None,
    streamed=True,
    accepts=lambda req: req.filter is not None and req.filter.dialect in _DIALECT_NAMES,
    page=_query_page,
)


# --- associations: an Enumerate with the association filter on the namespace's wildcard URI ------------


def _association_request(r: rq.AssociatorInstances | rq.ReferenceInstances, ns: str | None) -> EnumerateRequest:
    """The association filter (wsman.md §3.8) with the source as an EPR, as openmi, OMI and WinRM take it."""
    source = r.instance
    if not isinstance(source, Instance):
        what = "none was given" if source is None else f"not {type(source).__name__}"
        raise MIError(MIResult.INVALID_PARAMETER, f"{r.name} needs the source instance, an openmi.Instance ({what})")
    obj = source.keys_only() if source.key_elements else source.clone()
    obj.namespace = ns
    if isinstance(r, rq.AssociatorInstances):
        assoc = AssociationFilter(object=obj, associators=True, association_class=r.assoc_class or None,
                                  result_class=r.result_class or None, role=r.role or None,
                                  result_role=r.result_role or None)
    else:
        assoc = AssociationFilter(object=obj, associators=False, result_class=r.result_class or None,
                                  role=r.role or None)
    return EnumerateRequest(namespace=ns, class_name="*", polymorphism=_polymorphism(r.flags),
                            filter=Filter(dialect=wns.DIALECT_ASSOCIATION, association=assoc),
                            mode=EnumerationMode.EPR if r.keys_only else EnumerationMode.OBJECTS)


def _association_of(req: EnumerateRequest) -> AssociationFilter:
    assert req.filter is not None and req.filter.association is not None
    return req.filter.association


def _association_base(req: EnumerateRequest, lookup: ClassLookup | None) -> dict[str, Any]:
    """The source EPR says where (with or without ``__cimnamespace``); the header's URI may be any wildcard or
    class URI. The source travels without its namespace: the record's namespace is where it is."""
    a = _association_of(req)
    namespace = a.object.namespace or req.namespace
    source = typed_key_instance(a.object.class_name, namespace, {el.name: el.value for el in a.object.elements},
                                lookup)
    source.namespace = None
    return {"namespace": namespace, "options": req.option_set, "instance": source,
            "keys_only": req.mode == EnumerationMode.EPR, "flags": _polymorphism_flags(req.polymorphism)}


def _accepts_association(associators: bool) -> Callable[[Any], bool]:
    def accepts(req: Any) -> bool:
        f = req.filter
        return f is not None and f.association is not None and f.association.associators is associators
    return accepts


ASSOCIATOR_INSTANCES = OperationKind(
    rq.AssociatorInstances, EnumerateRequest, EnumerateResponse, read_only=True, idempotent=True,
    request=_association_request,
    results=stream_items,
    record=lambda req, lookup: rq.AssociatorInstances(
        assoc_class=_association_of(req).association_class, result_class=_association_of(req).result_class,
        role=_association_of(req).role, result_role=_association_of(req).result_role,
        **_association_base(req, lookup)),
    response=None,
    streamed=True,
    accepts=_accepts_association(True),
)

REFERENCE_INSTANCES = OperationKind(
    rq.ReferenceInstances, EnumerateRequest, EnumerateResponse, read_only=True, idempotent=True,
    request=_association_request,
    results=stream_items,
    record=lambda req, lookup: rq.ReferenceInstances(
        result_class=_association_of(req).result_class, role=_association_of(req).role,
        **_association_base(req, lookup)),
    response=None,
    streamed=True,
    accepts=_accepts_association(False),
)

TEST_CONNECTION = OperationKind(
    rq.TestConnection, IdentifyRequest, IdentifyResponse, read_only=True, idempotent=True,
    request=lambda r, ns: IdentifyRequest(),
    results=lambda r, resp, ns: (),
    record=None,  # Identify describes the server, not a CIM operation: the server answers it itself
    response=None,
)

# --- classes: the CIM-XML schema URI, a DSP0201 <CLASS> body ---------------------------------------------


def _classes_of(resp: EnumerateResponse, ns: str | None) -> Iterator[Class]:
    """The classes of a class enumeration's page. A server that answers with instances instead (OMI 1.9 takes
    the Enumerate of the class URI for an instance enumeration of ClassName) does not enumerate classes: that
    is NOT_SUPPORTED, not an empty success."""
    if resp.items:
        first = resp.items[0]
        what = getattr(first, "class_name", type(first).__name__)
        raise MIError(MIResult.NOT_SUPPORTED, f"the server answered the class enumeration with instances (of "
                      f"{what}), not classes: it does not enumerate classes over WS-Management")
    return (_class_in(c, ns) for c in resp.classes)


def _class_in(cls: Class, ns: str | None) -> Class:
    if cls.namespace is None and ns:
        cls.namespace = ns
    return cls


def derivation(lookup: ClassLookup, namespace: str | None, cls: Class) -> list[str]:
    """The superclass chain of a class, nearest first (DSP0201 DERIVATION)."""
    out: list[str] = []
    sup = cls.superclass
    while sup and len(out) < 256:
        parent = lookup(namespace, sup)
        if parent is None:
            break
        out.append(parent.name)
        sup = parent.superclass
    return out


def get_class_request(namespace: str | None, class_name: str) -> GetClassRequest:
    """The GetClass that fetches all of a class (qualifiers, inherited elements, class origins): one round
    trip gives a class that types the results of the operations that use it, keys included."""
    return GetClassRequest(namespace=namespace, class_name=class_name, option_set=ClassOptions.full().option_set())


def _get_class_request(r: rq.GetClass, ns: str | None) -> GetClassRequest:
    if not r.class_name or not isinstance(r.class_name, str):
        raise MIError(MIResult.INVALID_PARAMETER, "GetClass needs a class name")
    return get_class_request(ns, r.class_name)


def _get_class_response(req: GetClassRequest, results: list[Any], lookup: ClassLookup) -> GetClassResponse:
    cls = _first(results)
    chain = derivation(lookup, req.namespace, cls) \
        if ClassOptions.from_option_set(req.option_set).inheritance_hierarchy else []
    return GetClassResponse(cls=cls, derivation=chain)


def _class_base(req: Request) -> dict[str, Any]:
    """What a class record carries: the options that ask what the class body holds stay in WS-Man."""
    return {"namespace": req.namespace,
            "options": {k: v for k, v in req.option_set.items()
                        if not ClassOptions.is_class_option(k) and k.lower() != CLASS_NAMES_ONLY_OPTION.lower()}}


GET_CLASS = OperationKind(
    rq.GetClass, GetClassRequest, GetClassResponse, read_only=True, idempotent=True,
    request=_get_class_request,
    results=lambda r, resp, ns: (_class_in(resp.cls, ns),),
    record=lambda req, lookup: rq.GetClass(class_name=req.class_name, **_class_base(req)),
    response=_get_class_response,
    fixed_uri=True,
)


def _enumerate_classes_request(r: rq.EnumerateClasses, ns: str | None) -> EnumerateClassesRequest:
    return EnumerateClassesRequest(
        namespace=ns, class_name=r.class_name or None, resource_uri=CIMXML_SCHEMA_URI,
        deep=not r.flags & _SHALLOW, names_only=r.class_names_only,
        option_set={} if r.class_names_only else ClassOptions.full().option_set())


def _class_page(req: EnumerateClassesRequest, results: list[Any], response: EnumerateResponse,
                lookup: ClassLookup) -> None:
    _put_classes(response, results, ClassOptions.from_option_set(req.option_set), lookup, req.namespace)


def _put_classes(response: EnumerateResponse, classes: list[Class], options: ClassOptions, lookup: ClassLookup,
                 namespace: str | None) -> None:
    """A page of classes: DSP0201 ``<CLASS>`` items carrying what ``options`` ask for."""
    response.items = []
    response.classes = classes
    response.class_options = options
    if options.inheritance_hierarchy:
        response.derivations = {c.name.lower(): derivation(lookup, c.namespace or namespace, c) for c in classes}


ENUMERATE_CLASSES = OperationKind(
    rq.EnumerateClasses, EnumerateClassesRequest, EnumerateResponse, read_only=True, idempotent=True,
    request=_enumerate_classes_request,
    results=lambda r, resp, ns: _classes_of(resp, ns),
    record=lambda req, lookup: rq.EnumerateClasses(
        class_name=req.class_name, class_names_only=req.names_only, flags=0 if req.deep else _SHALLOW,
        **_class_base(req)),
    response=None,
    streamed=True,
    page=_class_page,
    fixed_uri=True,
)

KINDS: tuple[OperationKind, ...] = (
    GET_INSTANCE, DELETE_INSTANCE, CREATE_INSTANCE, MODIFY_INSTANCE, INVOKE, ENUMERATE_INSTANCES, QUERY_INSTANCES,
    TEST_CONNECTION, GET_CLASS, ENUMERATE_CLASSES, ASSOCIATOR_INSTANCES, REFERENCE_INSTANCES,
)

_BY_RECORD: dict[type[rq.Request], OperationKind] = {k.record_type: k for k in KINDS}
_BY_REQUEST: dict[type[Request], list[OperationKind]] = {}
for _k in KINDS:
    if _k.record is not None:
        _BY_REQUEST.setdefault(_k.request_type, []).append(_k)
del _k

# What the server's access check and the client's retry need of every WS-Man message, including the
# protocol messages that are not operation kinds.
# Subscribing reads (events are observations); its manager's messages concern the caller's own subscription.
_READ_ONLY: dict[type[Request], bool] = {
    PullRequest: True, ReleaseRequest: True, IdentifyRequest: True, ev.SubscribeRequest: True,
    ev.UnsubscribeRequest: True, ev.RenewRequest: True, ev.GetStatusRequest: True}
_IDEMPOTENT: dict[type[Request], bool] = {
    PullRequest: True, ReleaseRequest: False, IdentifyRequest: True, ev.SubscribeRequest: False,
    ev.UnsubscribeRequest: False, ev.RenewRequest: False, ev.GetStatusRequest: True}
for _k in KINDS:
    _READ_ONLY[_k.request_type] = _READ_ONLY.get(_k.request_type, True) and _k.read_only
    _IDEMPOTENT[_k.request_type] = _IDEMPOTENT.get(_k.request_type, True) and _k.idempotent
del _k


def for_record(record: rq.Request) -> OperationKind:
    """The declaration of a request record; NOT_SUPPORTED for a kind WS-Man does not carry."""
    kind = _BY_RECORD.get(type(record))
    if kind is None:
        raise MIError(MIResult.NOT_SUPPORTED, f"{record.name} is not available over WS-Management")
    return kind


def for_wsman(req: Request) -> OperationKind:
    """The declaration serving a parsed WS-Man request; the MI error to answer when none does."""
    for kind in _BY_REQUEST.get(type(req), ()):
        if kind.accepts is None or kind.accepts(req):
            return kind
    f = getattr(req, "filter", None)
    if f is not None:
        raise MIError(MIResult.FILTERED_ENUMERATION_NOT_SUPPORTED, f"the filter dialect {f.dialect} is not supported")
    raise MIError(MIResult.NOT_SUPPORTED, f"{type(req).__name__} is not supported")


def is_read_only(req: Request) -> bool:
    """Whether a WS-Man request only reads (a user with read access may send it)."""
    return _READ_ONLY.get(type(req), False)


def is_idempotent(req: Request) -> bool:
    """Whether sending a WS-Man request twice is harmless (a client may retry it on a dead connection)."""
    return _IDEMPOTENT.get(type(req), False)


# --- the client's plan: one record as WS-Man exchanges ----------------------------------------------


def _address(kind: OperationKind, wreq: Request, record: rq.Request) -> Request:
    """Options and resource URI overrides every request of an operation carries."""
    if record.options:  # the caller's options join those the kind sends (GetClass's IncludeQualifiers …)
        wreq.option_set = {**wreq.option_set, **record.options}
    if kind.fixed_uri:
        return wreq
    if record.resource_uri:
        wreq.resource_uri = record.resource_uri
    elif record.resource_uri_prefix and wreq.class_name:
        wreq.resource_uri = f"{record.resource_uri_prefix.rstrip('/')}/{wreq.class_name}"
    return wreq


def plan(record: rq.Request, token: CancelToken, batch: int = 1, wait_cap: float = 60.0) -> Plan:
    """Run ``record`` as WS-Man exchanges: yields ``("send", request)`` and expects the response back (or
    the error of the exchange, thrown in), ``("item", result)`` for each result, and ``("sleep", seconds)``
    to be resumed that much later (sooner when cancelled). ``batch`` is the MaxElements of an enumeration
    or a subscription's Pull; ``wait_cap`` bounds how long a subscription's Pull may wait for events
    (keep it under the connection's read timeout).

    Stopped early (closed) in the middle of an enumeration, the driver sends the Release of the
    enumeration context still open (see :func:`still_open`).
    """
    token.check()
    if isinstance(record, rq.Subscribe):
        yield from subscribe_plan(record, token, batch, wait_cap)
        return
    kind = for_record(record)
    ns = None if kind is TEST_CONNECTION else normalize_namespace(record.namespace)
    wreq = _address(kind, kind.request(record, ns), record)
    if not kind.streamed:
        r = yield "send", wreq
        for item in kind.results(record, r, ns):
            yield "item", item
        return
    assert isinstance(wreq, EnumerateRequest)
    wreq.optimize = True
    wreq.max_elements = max(1, batch)
    sent: EnumerateRequest | PullRequest = wreq
    r = yield "send", wreq
    while True:
        assert isinstance(r, EnumerateResponse)
        for item in kind.results(record, r, ns):
            yield "item", item
        if r.end_of_sequence or not r.context:
            return
        token.check()
        sent = next_pull(sent, r.context)
        r = yield "send", sent


def next_pull(sent: EnumerateRequest | PullRequest, context: str) -> PullRequest:
    """The Pull that continues an enumeration after the page answering ``sent`` (its Enumerate or the
    previous Pull) named ``context``. A remote driver may build it itself to send it before that page is
    parsed; it then sends it only if the plan asks for an equal one (see :func:`same_pull`)."""
    # ``sent`` has been sent, so its URI style is the session's: Pull (and Release, see still_open) address
    # the resource the Enumerate addressed, as WinRM requires
    return PullRequest(namespace=sent.namespace, class_name=sent.class_name,
                       resource_uri=sent.effective_resource_uri(), option_set=sent.option_set,
                       context=context, max_elements=sent.max_elements)


def same_pull(a: Request, b: Request) -> bool:
    """Whether two Pulls ask the same of the server (message IDs aside)."""
    return isinstance(a, PullRequest) and isinstance(b, PullRequest) and \
        (a.context, a.namespace, a.class_name, a.resource_uri, a.option_set, a.max_elements) == \
        (b.context, b.namespace, b.class_name, b.resource_uri, b.option_set, b.max_elements)


def release_request(req: Request, context: str) -> ReleaseRequest:
    """The Release of the enumeration ``context`` that ``req`` (its Enumerate or a Pull) continues."""
    return ReleaseRequest(namespace=req.namespace, class_name=req.class_name,
                          resource_uri=req.effective_resource_uri(), context=context)


def still_open(req: Request, reply: Response | None, current: Request | None) -> Request | None:
    """The Release (an enumeration) or Unsubscribe (a subscription) to send if the stream stops now (None
    once it has ended)."""
    if isinstance(reply, ev.SubscribeResponse):
        return ev.UnsubscribeRequest(namespace=req.namespace, class_name=req.class_name,
                                     resource_uri=req.effective_resource_uri(), identifier=reply.identifier)
    if isinstance(current, ev.UnsubscribeRequest):
        ended = isinstance(reply, EnumerateResponse) and reply.end_of_sequence
        return None if ended else current
    if isinstance(reply, EnumerateResponse):
        if reply.end_of_sequence or not reply.context:
            return None
        return release_request(req, reply.context)
    return current


# --- subscriptions: WS-Eventing Subscribe, then Pull until cancelled ------------------------------------------

#: how long a subscription's Pull waits for events when the caller gave no heartbeat interval
DEFAULT_PULL_WAIT = 30.0
#: after a dropped connection: how long (seconds) to keep subscribing again before giving up, and the pauses
RECONNECT_FOR = 60.0
RECONNECT_PAUSES = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)

def _subscribe_dialect(dialect: str | None) -> str:
    if not dialect or not isinstance(dialect, str):
        raise MIError(MIResult.INVALID_QUERY, "Subscribe needs a query dialect (WQL or CQL)")
    d = dialect.strip()
    if d.upper() == "WQL" or d.lower() == wns.DIALECT_WQL.lower():
        return wns.DIALECT_WQL
    if d.upper() in ("CQL", "DMTF:CQL") or d.lower() == wns.DIALECT_CQL.lower():
        return wns.DIALECT_CQL
    raise MIError(MIResult.NOT_SUPPORTED, f"the query dialect {dialect!r} is not supported for Subscribe (WQL, CQL)")


#: how long a Subscribe may take at the server (its w:OperationTimeout, as WinRM's clients send one)
SUBSCRIBE_TIMEOUT = 60.0

log = logging.getLogger("openmi.wsman")


def subscribe_request(record: rq.Subscribe, ns: str | None, heartbeat: float, bookmark: str | None,
                      expires: float | None) -> ev.SubscribeRequest:
    """The Subscribe a remote session sends: Pull mode in WinRM's shape (spec §4.4) on the namespace's
    wildcard URI, the query as a WQL/CQL filter, SendBookmarks, the bookmark to resume after, and the
    subscription's time left (``expires``)."""
    if not record.query or not isinstance(record.query, str):
        raise MIError(MIResult.INVALID_QUERY, "Subscribe needs a query")
    return ev.SubscribeRequest(
        namespace=ns, class_name="*", delivery_mode=ev.MODE_PULL, heartbeat=heartbeat, expires=expires,
        filter=Filter(dialect=_subscribe_dialect(record.dialect), query=record.query), send_bookmarks=True,
        bookmark=ev.wire_bookmark(bookmark), content_encoding="UTF-8", operation_timeout=SUBSCRIBE_TIMEOUT)


def _expiry(record: rq.Subscribe) -> Callable[[], float | None]:
    """The subscription's time left, counted from now: what a Subscribe sent again asks for."""
    import time as _time

    if record.expiration is None:
        return lambda: None
    deadline = _time.monotonic() + record.expiration
    return lambda: max(1.0, deadline - _time.monotonic())


def _reconnectable(exc: MIError) -> bool:
    """An error after which subscribing again may work: the connection or the server went away (a fault that
    describes the request itself is final)."""
    if isinstance(exc, WSManFault):
        return exc.result in (MIResult.SERVER_IS_SHUTTING_DOWN, MIResult.INVALID_ENUMERATION_CONTEXT)
    return exc.result == MIResult.FAILED and exc.details is None


def subscribe_plan(record: rq.Subscribe, token: CancelToken, batch: int, wait_cap: float) -> Plan:
    """Subscribe (Pull mode), report STARTED, then Pull with a long poll of the heartbeat interval, handing on
    each event as an :class:`~openmi.cim.requests.IndicationItem` with its bookmark. A dropped connection or
    a server restart is survived by subscribing again with the last bookmark (for up to RECONNECT_FOR
    seconds); an expired subscription ends with OK. The driver sends Unsubscribe when the stream stops
    early (see :func:`still_open`)."""
    ns = normalize_namespace(record.namespace)
    if record.delivery != "pull":
        yield from push_plan(record, token, ns)
        return
    wait = min(record.heartbeat or DEFAULT_PULL_WAIT, max(1.0, wait_cap))
    bookmark = record.bookmark
    left = _expiry(record)
    sub = subscribe_request(record, ns, wait, bookmark, record.expiration)
    r = yield "send", sub
    assert isinstance(r, ev.SubscribeResponse)
    bookmark = _started_at(r, bookmark)
    yield "item", rq.STARTED
    context, machine = r.context, None
    while True:
        token.check()
        if not context:
            raise MIError(MIResult.NOT_SUPPORTED, "the server gave no enumeration context to Pull events from")
        pull = PullRequest(namespace=ns, class_name="*", resource_uri=sub.effective_resource_uri(),
                           context=context, max_elements=max(1, batch), operation_timeout=wait)
        try:
            pr = yield "send", pull
        except MIError as exc:
            if token.cancelled or not _reconnectable(exc):
                raise
            r, bookmark = yield from _resubscribe(
                token, lambda mark: subscribe_request(record, ns, wait, mark, left()), bookmark, exc)
            context = r.context
            continue
        assert isinstance(pr, EnumerateResponse)
        page = pr.bookmark if isinstance(pr, PullResponse) else None
        for i, inst in enumerate(pr.items):
            last = i == len(pr.items) - 1
            mark = ev.mi_bookmark(page) if last and page and page != ev.BOOKMARK_EARLIEST else None
            yield "item", rq.IndicationItem(_in(inst, ns), mark, machine)
        if page and page != ev.BOOKMARK_EARLIEST:
            # the last event's bookmark; a heartbeat's (openmi sends one) is where this subscription stands
            # before its first event, so a reconnection then loses nothing either
            bookmark = ev.mi_bookmark(page)
        if pr.end_of_sequence:
            return  # expired: the stream ends with OK
        context = pr.context or context  # a Heartbeat message names no context: the same one goes on


def _resubscribe(token: CancelToken, again: Callable[[str | None], ev.SubscribeRequest], bookmark: str | None,
                 first: MIError) -> Generator[tuple[str, Any], Any, tuple[ev.SubscribeResponse, str | None]]:
    """Subscribe again (``again(bookmark)``: the Subscribe resuming after ``bookmark``) after a dropped
    connection or a server restart; the first error if it does not come back within RECONNECT_FOR seconds.
    Returns the response and the bookmark to resume from from now on (:func:`_started_at`).

    A server that answers InvalidBookmark has restarted: the events it kept went with it (openmi keeps them
    in memory). The subscription then goes on from the server's newest event, with a warning on the
    ``openmi.wsman`` logger that events between the bookmark and the restart may be missing."""
    import time as _time

    give_up = _time.monotonic() + RECONNECT_FOR
    attempt = 0
    while True:
        pause = RECONNECT_PAUSES[min(attempt, len(RECONNECT_PAUSES) - 1)]
        attempt += 1
        if _time.monotonic() + pause > give_up:
            raise first
        yield "sleep", pause
        token.check()
        try:
            r = yield "send", again(bookmark)
        except MIError as exc:
            if token.cancelled:
                raise
            if bookmark is not None and _invalid_bookmark(exc):
                log.warning("the server no longer keeps the events after bookmark %s (it restarted): the "
                            "subscription goes on from its newest event; events in between may be missing", bookmark)
                bookmark = None
                attempt = 0
                continue
            if not _reconnectable(exc):
                raise
            continue
        assert isinstance(r, ev.SubscribeResponse)
        return r, _started_at(r, bookmark)


def _started_at(r: ev.SubscribeResponse, bookmark: str | None) -> str | None:
    """The bookmark to resume from after a SubscribeResponse: where the server says the subscription starts
    (openmi says so), else the one it resumed after."""
    if r.bookmark and r.bookmark != ev.BOOKMARK_EARLIEST:
        return ev.mi_bookmark(r.bookmark)
    return bookmark


def _invalid_bookmark(exc: MIError) -> bool:
    subcode = exc.fault.subcode if isinstance(exc, WSManFault) else None
    return subcode is not None and subcode[1] == "InvalidBookmark"


#: the heartbeat interval a push subscription asks for when its options name none (three silent ones: the server
#: is taken for gone and subscribed to again)
PUSH_HEARTBEAT = 60.0

_PUSH_MODES = {"push": ev.MODE_PUSH, "push-with-ack": ev.MODE_PUSH_WITH_ACK, "events": ev.MODE_EVENTS}


def push_plan(record: rq.Subscribe, token: CancelToken, ns: str | None) -> Plan:
    """A push-mode subscription: open a listener (``("listen", (host, port))`` → the driver's event sink),
    Subscribe with it as NotifyTo and EndTo, report STARTED, then hand on what the server delivers
    (``("recv", (sink, seconds))`` → the next message or None). It ends with OK at its expiration, or with the
    MI result of a SubscriptionEnd the server sends. A server that stops (SubscriptionEnd SourceShuttingDown)
    or falls silent for three heartbeat intervals (PUSH_HEARTBEAT when the options name none) is subscribed
    to again, to the same listener, resuming after
    the last bookmark, as a Pull subscription does after a dropped connection (for up to RECONNECT_FOR
    seconds; then the stop or the silence is the final error); a silent one is first unsubscribed, as far
    as it can be reached, so that it does not go on delivering beside the new one."""
    import time as _time

    mode = _PUSH_MODES.get(record.delivery)
    if mode is None:
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"the delivery {record.delivery!r} is not one of pull, push, push-with-ack, events")
    sink = yield "listen", (record.destination, record.port)
    try:
        events = mode == ev.MODE_EVENTS
        # heartbeats even when none were asked for: a server that died without a SubscriptionEnd is noticed
        heartbeat = record.heartbeat or PUSH_HEARTBEAT
        deadline = None if record.expiration is None else _time.monotonic() + record.expiration
        left = _expiry(record)
        bookmark = record.bookmark

        def subscribe(mark: str | None, first: bool = False) -> ev.SubscribeRequest:
            """The Subscribe: the first one as asked, one again after ``mark`` for what time is left."""
            return ev.SubscribeRequest(
                namespace=ns, class_name="*", delivery_mode=mode, notify_to=ev.EndpointReference(address=sink.url),
                end_to=ev.EndpointReference(address=sink.url), heartbeat=heartbeat,
                expires=record.expiration if first else left(),
                filter=Filter(dialect=_subscribe_dialect(record.dialect), query=record.query or ""),
                send_bookmarks=True, bookmark=ev.wire_bookmark(mark),
                max_elements=record.max_elements if events else None,
                max_time=record.max_latency if events else None, operation_timeout=SUBSCRIBE_TIMEOUT)

        if not record.query:
            raise MIError(MIResult.INVALID_QUERY, "Subscribe needs a query")
        sub = subscribe(bookmark, first=True)
        r = yield "send", sub
        bookmark = _started_at(r, bookmark)
        yield "item", rq.STARTED
        last_heard = _time.monotonic()
        silent = 3 * heartbeat + 5
        while True:
            token.check()
            now = _time.monotonic()
            if deadline is not None and now >= deadline:
                return  # expired: WS-Eventing sends no SubscriptionEnd for that
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - now))
            msg = yield "recv", (sink, wait)
            if msg is None:
                if silent is not None and _time.monotonic() - last_heard > silent:
                    lost = MIError(MIResult.FAILED, f"the server sent neither events nor heartbeats for {silent:g} s")
                    gone = still_open(sub, r, None)
                    if gone is not None:
                        try:  # (as far as it can be reached: it must not deliver beside the new one)
                            yield "send", gone
                        except MIError:
                            pass
                    r, bookmark = yield from _resubscribe(token, subscribe, bookmark, lost)
                    last_heard = _time.monotonic()
                continue
            last_heard = _time.monotonic()
            if msg.action == ev.ACTION_SUBSCRIPTION_END:
                ended = MIError(ev.end_status_result(msg.end_status, msg.end_result),
                                f"the server ended the subscription ({(msg.end_status or '').rpartition('/')[2]}"
                                f"{': ' + msg.end_reason if msg.end_reason else ''})", msg.end_error)
                if ended.result != MIResult.SERVER_IS_SHUTTING_DOWN or token.cancelled:
                    raise ended
                r, bookmark = yield from _resubscribe(token, subscribe, bookmark, ended)  # (it may come back)
                last_heard = _time.monotonic()
                continue
            mark = ev.mi_bookmark(msg.bookmark) if msg.bookmark and msg.bookmark != ev.BOOKMARK_EARLIEST else None
            if mark is not None:  # (a heartbeat's, from openmi: where the subscription stands before any event)
                bookmark = mark
            for i, inst in enumerate(msg.events):
                last = i == len(msg.events) - 1
                yield "item", rq.IndicationItem(_in(inst, ns), mark if last else None, msg.machine_id)
    finally:
        sink.close()

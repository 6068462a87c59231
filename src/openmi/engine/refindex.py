"""The association index: what a stored association instance refers to, kept in the same transaction as
the instance row, so that finding the associations of one instance is one index range and never a scan.

A reference is indexed under its *target key*: the target's namespace, the highest class that names its
instances by the same keys (``ClassInfo.key_root``) and the canonical key string. So a reference written
through a superclass (``CIM_System.Name="x"`` — with CreationClassName) and the instance's own class
find the same entries. References are checked when an association instance is written: the class they
name must exist and be the property's reference class (or a subclass), and every key must be given;
they are stored with the key types that class declares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..cim.classes import Property
from ..cim.errors import MIError
from ..cim.instance import Element, Instance
from ..cim.objectpath import Reference, new_reference
from ..cim.types import MIFlag, MIResult, MIType
from .encoding import key_string
from .schema import ClassInfo, Namespace

if TYPE_CHECKING:
    from .server import Server

SEP = "\x1f"
_KEY = int(MIFlag.KEY)


def _loose_key(ref: Instance) -> str:
    """The key text of a path whose class is not known here: its key values by sorted name."""
    return key_string([(el.value, int(el.type)) for _, el in sorted(ref._elements.items())])


def target_namespace(server: Server, ns: Namespace, ref: Instance) -> Namespace | None:
    """The namespace a reference points into (the association's own when the path names none)."""
    if not ref.namespace:
        return ns
    try:
        return server.namespace(ref.namespace)
    except MIError:
        return None


def target_parts(server: Server, ns: Namespace, ref: Instance) -> tuple[str, str, str, str]:
    """(target key, namespace key, class, key string) of the instance ``ref`` names: the normalized path the
    index is keyed by, and the stored row the path names directly."""
    tns = target_namespace(server, ns, ref)
    low = ref.class_name.lower()
    if tns is None:
        nsk = (ref.namespace or "").replace("\\", "/").lower()
        loose = _loose_key(ref)
        return f"{nsk}{SEP}{low}{SEP}{loose}", nsk, low, loose
    info = tns.classes.get(low)
    if info is not None and info.keys:
        try:
            key, _ = info.key_of(ref, tns.name)
            return f"{tns.key}{SEP}{info.key_root}{SEP}{key}", tns.key, low, key
        except MIError:
            pass
    loose = _loose_key(ref)
    return f"{tns.key}{SEP}{low}{SEP}{loose}", tns.key, low, loose


def target_key(server: Server, ns: Namespace, ref: Instance) -> str:
    """The normalized path of the instance ``ref`` names, as the index stores it."""
    return target_parts(server, ns, ref)[0]


def instance_target(ns: Namespace, info: ClassInfo, key: str) -> str:
    """The target key of a stored instance (its class and key string already known)."""
    return f"{ns.key}{SEP}{info.key_root}{SEP}{key}"


Entry = tuple[str, str, str, str, str]  # (target key, lower-cased role, target namespace, class, key)


def check_reference(server: Server, ns: Namespace, info: ClassInfo, prop: Property,
                    ref: Instance) -> tuple[Reference, Entry]:
    """An association's reference as it is stored (the named class exists and fits, the keys are typed)
    and its index entry."""
    where = f"reference {info.name}.{prop.name}"
    tns = target_namespace(server, ns, ref)
    if tns is None:
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"{where} points into namespace {ref.namespace}, which does not exist")
    tinfo = tns.classes.get(ref.class_name.lower())
    if tinfo is None:
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"{where} names class {ref.class_name}, which does not exist in namespace {tns.name}")
    if prop.reference_class and tns is ns and not tinfo.is_a(prop.reference_class.lower()):
        raise MIError(MIResult.TYPE_MISMATCH,
                      f"{where} must name an instance of {prop.reference_class}; {tinfo.name} is not one")
    try:
        key, values = tinfo.key_of(ref, tns.name)
    except MIError as exc:
        raise MIError(exc.result, f"{where}: {exc.message}") from None
    out = new_reference(tinfo.name, ref.namespace,
                        {n.lower(): Element(n, v, MIType(t), _KEY) for n, (v, t) in values.items()})
    out.server_name = ref.server_name
    entry = (f"{tns.key}{SEP}{tinfo.key_root}{SEP}{key}", prop.name.lower(), tns.key, tinfo.low, key)
    return out, entry


def check_references(server: Server, ns: Namespace, info: ClassInfo,
                     values: dict[str, tuple[Any, int]]) -> list[Entry]:
    """Check and type, in place, the references of an association instance about to be written; its
    index entries."""
    entries = []
    for p in info.ref_props:
        pair = values.get(p.name)
        if pair is not None and pair[0] is not None:
            ref, entry = check_reference(server, ns, info, p, pair[0])
            values[p.name] = (ref, pair[1])
            entries.append(entry)
    return entries


def index_entries(server: Server, ns: Namespace, info: ClassInfo,
                  values: dict[str, tuple[Any, int]]) -> list[Entry]:
    """(target key, lower-cased role, target namespace, class, key) for each reference of an association
    instance."""
    out = []
    for p in info.ref_props:
        pair = values.get(p.name)
        if pair is not None and pair[0] is not None:
            target, tns, tcls, tkey = target_parts(server, ns, pair[0])
            out.append((target, p.name.lower(), tns, tcls, tkey))
    return out


def rebuild(server: Server) -> None:
    """Index every stored association instance (a repository written before the index existed)."""
    from .encoding import decode_values

    repo = server.repository
    with repo.transaction():
        for name in server.namespaces:
            ns = server.namespace(name)
            for info in ns.associations():
                for key, data in list(repo.scan(ns.key, info.low)):
                    row = decode_values(data)
                    inst = info.from_row(ns.name, row)
                    values = {el.name: (el.value, int(el.type)) for el in inst._elements.values()}
                    repo.remove_refs(ns.key, info.low, key)
                    repo.add_refs(ns.key, info.low, key, index_entries(server, ns, info, values))

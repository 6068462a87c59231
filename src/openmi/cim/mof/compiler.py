"""The MOF compiler: checks what the parser read and turns it into QualifierDecls, Classes and Instances.

:func:`compile_mof` follows includes, resolves qualifier flavors from their declarations, checks that
superclasses and referenced classes exist, that overrides name an inherited element and keep its type,
that DisableOverride qualifiers are not changed, that values fit their types, and that aliases resolve.
It returns everything or raises :class:`~openmi.cim.errors.MOFError` listing every problem; it never
touches a repository (callers pass lookups for what one already holds).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..classes import Class, Method, Parameter, Property, Qualifier, QualifierDecl
from ..errors import MOFError
from ..instance import Element, Instance
from ..names import NamedItems
from ..objectpath import Reference, parse_object_path
from ..types import INTEGER_RANGES, MIFlag, MIType
from ..values import coerce_scalar, parse_datetime
from .lexer import Source
from .parser import (
    NO_VALUE,
    AliasRef,
    Char16,
    Parser,
    RawClass,
    RawInstance,
    RawMethod,
    RawParameter,
    RawProperty,
    RawQualifier,
    RawQualifierDecl,
)
from .standard import conflicts, standard_qualifier

ClassLookup = Callable[[str, str], "Class | None"]
QualifierLookup = Callable[[str, str], "QualifierDecl | None"]


@dataclass
class MOFResult:
    """What a MOF compilation produced, each paired with its namespace.

    ``classes`` are as declared (local elements only) and ordered so that every superclass and
    referenced class comes before the classes that use it.
    """

    qualifier_decls: list[tuple[str, QualifierDecl]] = field(default_factory=list)
    classes: list[tuple[str, Class]] = field(default_factory=list)
    instances: list[tuple[str, Instance]] = field(default_factory=list)


def _no_class(namespace: str, name: str) -> Class | None:
    return None


def standard_lookup(namespace: str, name: str) -> QualifierDecl | None:
    """The standard qualifier declarations (DSP0004), which every namespace starts with."""
    return standard_qualifier(name)


def compile_mof(
    source: str | os.PathLike[str],
    *,
    namespace: str = "root/cimv2",
    include_dirs: Iterable[str | os.PathLike[str]] = (),
    class_lookup: ClassLookup = _no_class,
    qualifier_lookup: QualifierLookup = standard_lookup,
) -> MOFResult:
    """Compile MOF from a file (a PathLike, or a str naming a file) or from MOF text.

    ``class_lookup(namespace, name)`` and ``qualifier_lookup(namespace, name)`` return what a repository
    already holds (classes resolved, with inherited elements), so the MOF may build on it; by default the
    namespaces hold the standard qualifier declarations only. A qualifier declaration that disagrees with
    one the namespace holds is an error (one that agrees is accepted and returned). Raises
    :class:`MOFError` with every ``file:line:column: message`` found; nothing is returned then.
    """
    comp = _Compiler(namespace, [os.fspath(d) for d in include_dirs], class_lookup, qualifier_lookup)
    # Everything a compile allocates stays alive until it returns: collection passes over the growing
    # heap would find nothing and cost a third of the time on the CIM Schema.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        if isinstance(source, os.PathLike) or _looks_like_path(source):
            path = os.fspath(source)
            comp.compile_file(path, path, None, -1)
        else:
            comp.compile_text(source, "<string>")
        return comp.finish()
    finally:
        if gc_was_on:
            gc.enable()


def _looks_like_path(text: str) -> bool:
    if "\n" in text or "{" in text or ";" in text:
        return False
    return os.path.isfile(text) or text.strip().lower().endswith(".mof")


# --- tables ----------------------------------------------------------------------------------------

TYPE_NAMES: dict[str, MIType] = {
    "boolean": MIType.BOOLEAN, "uint8": MIType.UINT8, "sint8": MIType.SINT8, "uint16": MIType.UINT16,
    "sint16": MIType.SINT16, "uint32": MIType.UINT32, "sint32": MIType.SINT32, "uint64": MIType.UINT64,
    "sint64": MIType.SINT64, "real32": MIType.REAL32, "real64": MIType.REAL64, "char16": MIType.CHAR16,
    "datetime": MIType.DATETIME, "string": MIType.STRING, "object": MIType.INSTANCE,
}

SCOPES: dict[str, MIFlag] = {
    "class": MIFlag.CLASS, "association": MIFlag.ASSOCIATION, "indication": MIFlag.INDICATION,
    "property": MIFlag.PROPERTY, "reference": MIFlag.REFERENCE, "method": MIFlag.METHOD,
    "parameter": MIFlag.PARAMETER, "any": MIFlag.ANY,
}

_SCOPE_WORDS = {MIFlag.CLASS: "a class", MIFlag.PROPERTY: "a property", MIFlag.REFERENCE: "a reference",
                MIFlag.METHOD: "a method", MIFlag.PARAMETER: "a parameter"}
_CLASS_SCOPES = int(MIFlag.CLASS | MIFlag.ASSOCIATION | MIFlag.INDICATION)

_DEFAULT_FLAVOR = MIFlag.ENABLEOVERRIDE | MIFlag.TOSUBCLASS
_DISABLE = int(MIFlag.DISABLEOVERRIDE)
_KEY = int(MIFlag.KEY)
_S_PROPERTY = int(MIFlag.PROPERTY)
_S_REFERENCE = int(MIFlag.REFERENCE)
_S_METHOD = int(MIFlag.METHOD)
_S_PARAMETER = int(MIFlag.PARAMETER)
_REQUIRED = int(MIFlag.REQUIRED)
_RESTRICTED = int(MIFlag.RESTRICTED)
_STRING = MIType.STRING
_STRINGA = MIType.STRINGA
_BOOLEAN = MIType.BOOLEAN
_ARRAY_OF = {t: t.array for t in MIType}
_MISSING: Any = object()
_IN = int(MIFlag.IN)
_OUT = int(MIFlag.OUT)
_RANGES = {int(t): r for t, r in INTEGER_RANGES.items()}
_FLAGS: dict[int, MIFlag] = {}


def _flags(bits: int) -> MIFlag:
    """MIFlag for ``bits``, cached (building a composite IntFlag is slow and these repeat)."""
    f = _FLAGS.get(bits)
    if f is None:
        f = _FLAGS[bits] = MIFlag(bits)
    return f


def apply_flavors(base: int, names: Iterable[str]) -> MIFlag:
    """Flavor bits after applying MOF flavor keywords to ``base`` (each keyword replaces its opposite)."""
    f = int(base)
    for n in names:
        low = n.lower()
        if low == "enableoverride":
            f = (f & ~MIFlag.DISABLEOVERRIDE) | MIFlag.ENABLEOVERRIDE
        elif low == "disableoverride":
            f = (f & ~MIFlag.ENABLEOVERRIDE) | MIFlag.DISABLEOVERRIDE
        elif low == "tosubclass":
            f = (f & ~MIFlag.RESTRICTED) | MIFlag.TOSUBCLASS
        elif low == "restricted":
            f = (f & ~MIFlag.TOSUBCLASS) | MIFlag.RESTRICTED
        elif low == "translatable":
            f |= MIFlag.TRANSLATABLE
        elif low == "toinstance":
            f |= MIFlag.TOINSTANCE
    return MIFlag(f)


class ValueMismatch(Exception):
    """A MOF value that does not fit the type it is given to."""


def describe_value(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "boolean " + ("true" if v else "false")
    if isinstance(v, Char16):
        return f"char16 {v!r}"
    if isinstance(v, str):
        return f'string "{v[:40]}"' + ("..." if len(v) > 40 else "")
    if isinstance(v, int):
        return f"integer {v}"
    if isinstance(v, float):
        return f"real {v!r}"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, AliasRef):
        return f"alias ${v.name}"
    if isinstance(v, RawInstance):
        return f"instance of {v.class_name}"
    return type(v).__name__


def type_word(t: int) -> str:
    mt = MIType(t)
    return mt.cim_name + ("[]" if mt.is_array else "")


def convert_scalar(v: Any, t: int) -> Any:
    """``v`` (a MOF literal) as a value of scalar type ``t``; raises ValueMismatch."""
    if t == MIType.STRING:
        if isinstance(v, str):
            return str(v) if type(v) is not str else v
    elif MIType.UINT8 <= t <= MIType.SINT64:
        if type(v) is int:
            lo, hi = _RANGES[t]
            if lo <= v <= hi:
                return v
            raise ValueMismatch(f"{v} is outside the range of {type_word(t)} ({lo}..{hi})")
    elif t == MIType.BOOLEAN:
        if type(v) is bool:
            return v
    elif t == MIType.REAL32 or t == MIType.REAL64:
        if type(v) is float or type(v) is int:
            try:
                return coerce_scalar(float(v), MIType(t))
            except ValueError as exc:
                raise ValueMismatch(str(exc)) from None
    elif t == MIType.CHAR16:
        if isinstance(v, str) and len(v) == 1:
            return str(v)
        if type(v) is int and 0 <= v <= 0xFFFF:
            return chr(v)
    elif t == MIType.DATETIME:
        if isinstance(v, str) and not isinstance(v, Char16):
            try:
                return parse_datetime(v)
            except ValueError as exc:
                raise ValueMismatch(str(exc)) from None
    raise ValueMismatch(f"expected {type_word(t)}, found {describe_value(v)}")


def convert_value(v: Any, t: int) -> Any:
    """``v`` as a value of type ``t`` (arrays element by element); NULL stays None."""
    if v is None:
        return None
    if t & 0x10:
        if not isinstance(v, list):
            raise ValueMismatch(f"expected an array of {MIType(t).cim_name}, found {describe_value(v)}")
        s = t & 0x0F
        return [convert_scalar(x, s) for x in v]
    if isinstance(v, list):
        raise ValueMismatch(f"expected {type_word(t)}, found an array")
    return convert_scalar(v, t)


_fast_qualifier = Qualifier._trusted


class _QualInfo:
    """A qualifier declaration as the compiler uses it, with its bits ready."""

    __slots__ = ("array", "decl", "flavor", "scope", "type")

    def __init__(self, decl: QualifierDecl) -> None:
        self.decl = decl
        self.type = decl.type
        self.array = decl.type.is_array
        self.scope = int(decl.scope)
        self.flavor = decl.flavor


class _ClassEntry:
    """A class declared in this compilation: where it came from and, once checked, its inherited view."""

    __slots__ = ("cls", "deps", "effective", "keys", "ns", "own_quals", "quals", "raw", "source", "state")

    def __init__(self, ns: str, cls: Class, raw: RawClass, source: Source) -> None:
        self.ns = ns
        self.cls = cls
        self.raw = raw
        self.source = source
        self.deps: list[tuple[str, int]] = []  # (referenced class name, token index)
        self.effective: dict[str, tuple[Property, bool, str]] | None = None
        self.quals: dict[str, Qualifier] | None = None
        self.keys = False
        self.state = 0  # topological sort: 0 new, 1 visiting, 2 done


class _View:
    """The inherited view of any class (declared here or looked up): properties and class qualifiers."""

    __slots__ = ("abstract", "cls", "keys", "methods", "props", "quals")

    def __init__(self, cls: Class, props: dict[str, tuple[Property, bool, str]],
                 methods: dict[str, tuple[Method, str]], quals: dict[str, Qualifier], keys: bool) -> None:
        self.cls = cls
        self.props = props
        self.methods = methods
        self.quals = quals
        self.keys = keys
        q = cls.qualifiers.get("Abstract")  # Restricted: only the class's own Abstract counts
        self.abstract = bool(q is not None and q.value and not q.propagated)


class _Fixup:
    __slots__ = ("alias", "element", "index", "instance_ref", "pos", "source")

    def __init__(self, element: Element, index: int | None, alias: AliasRef, instance_ref: bool,
                 source: Source) -> None:
        self.element = element
        self.index = index
        self.alias = alias
        self.instance_ref = instance_ref
        self.source = source
        self.pos = alias.index


class _Compiler:
    def __init__(self, namespace: str, include_dirs: list[str], class_lookup: ClassLookup,
                 qualifier_lookup: QualifierLookup) -> None:
        self.default_ns = namespace
        self.ns = namespace
        self.include_dirs = include_dirs
        self.class_lookup = class_lookup
        self.qualifier_lookup = qualifier_lookup
        self.errors: list[tuple[int, int, str]] = []
        self.sources: list[Source] = []
        self.include_stack: list[str] = []
        self.locale: str | None = None
        self.qdecls: dict[tuple[str, str], _QualInfo] = {}
        self.qdecl_list: list[tuple[str, QualifierDecl]] = []
        self.qdecl_where: dict[tuple[str, str], tuple[Source, int]] = {}
        self.classes: dict[tuple[str, str], _ClassEntry] = {}
        self.class_order: list[_ClassEntry] = []
        self.raw_instances: list[tuple[str, RawInstance, Source]] = []
        self.views: dict[tuple[str, str], _View | None] = {}
        self.flavor_cache: dict[tuple[int, tuple[str, ...]], MIFlag] = {}
        self._source_seq: dict[int, int] = {}
        self.qfast: dict[str, dict[str, _QualInfo | None]] = {}  # {namespace: {name as written: info}}
        self.aliases: dict[str, tuple[Instance, Source, int]] = {}
        self.fixups: list[_Fixup] = []

    # --- errors ------------------------------------------------------------------------------
    def error(self, source: Source, index: int, message: str) -> None:
        seq = self._source_seq.get(id(source))
        if seq is None:
            seq = self._source_seq[id(source)] = len(self._source_seq)
        self.errors.append((seq, index, f"{source.where(index) if index >= 0 else source.name}: {message}"))

    # --- sources -----------------------------------------------------------------------------
    def compile_text(self, text: str, name: str, path: str | None = None) -> None:
        reload = None
        if path is not None:
            def reload() -> str:
                with open(path, "rb") as fh:
                    return _decode(fh.read())
        source = Source(name, text, path, reload)
        self.sources.append(source)
        self._source_seq.setdefault(id(source), len(self._source_seq))
        saved_ns = self.ns
        Parser(source, self).parse()
        self.ns = saved_ns
        source.release()

    def compile_file(self, path: str, name: str, including: Source | None, index: int) -> None:
        real = os.path.normcase(os.path.abspath(path))
        if real in self.include_stack:
            chain = " -> ".join(os.path.basename(p) for p in [*self.include_stack, real])
            assert including is not None
            self.error(including, index, f"include cycle: {chain}")
            return
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            if including is None:
                self.errors.append((-1, 0, f"{name}: cannot read MOF file ({exc.strerror or exc})"))
            else:
                self.error(including, index, f"cannot read include file {name!r} ({exc.strerror or exc})")
            return
        self.include_stack.append(real)
        try:
            self.compile_text(_decode(data), name, path)
        finally:
            self.include_stack.pop()

    def _find_include(self, source: Source, target: str) -> tuple[str | None, list[str]]:
        if os.path.isabs(target):
            return (target if os.path.isfile(target) else None), [os.path.dirname(target)]
        dirs: list[str] = []
        if source.path is not None:
            dirs.append(os.path.dirname(source.path) or ".")
        dirs.extend(self.include_dirs)
        if source.path is None:
            dirs.append(".")
        for d in dirs:
            candidate = os.path.join(d, target)
            if os.path.isfile(candidate):
                return candidate, dirs
        return None, dirs

    # --- handler: pragmas --------------------------------------------------------------------
    def pragma(self, source: Source, name: str, index: int, args: list[tuple[Any, int]]) -> None:
        low = name.lower()
        strings = [a for a, _ in args if isinstance(a, str)]
        if low == "include":
            if len(args) != 1 or not strings:
                self.error(source, index, "#pragma include needs one file name in quotes")
                return
            target = strings[0]
            found, searched = self._find_include(source, target)
            if found is None:
                self.error(source, args[0][1],
                           f"include file {target!r} not found (searched {', '.join(searched) or 'nothing'})")
                return
            self.compile_file(found, found, source, args[0][1])
        elif low == "namespace":
            if not strings:
                self.error(source, index, "#pragma namespace needs a namespace name in quotes")
                return
            # Pegasus spells it ("__set", "root/x") / ("__reset"); DMTF just ("root/x").
            if strings[0].lower() == "__reset":
                self.ns = self.default_ns
            else:
                self.ns = strings[-1].strip("/") or self.default_ns
        elif low == "locale":
            if strings:
                self.locale = strings[0]
        # Other pragmas (instancelocale, source, nonlocal, comment ...) say nothing MI keeps.

    # --- handler: qualifier declarations ------------------------------------------------------
    def qualifier_decl(self, source: Source, raw: RawQualifierDecl) -> None:
        base = TYPE_NAMES.get(raw.type_name.lower())
        if base is None or base == MIType.INSTANCE:
            self.error(source, raw.type_index, f"expected a qualifier type (boolean, string, uint32 ...), "
                                               f"found {raw.type_name!r}")
            return
        mitype = base.array if raw.array is not None else base
        default = None
        if raw.default is not NO_VALUE:
            try:
                default = convert_value(raw.default, mitype)
            except ValueMismatch as exc:
                self.error(source, raw.default_index, f"default value of qualifier {raw.name}: {exc}")
                return
        scope = 0
        for word, idx in raw.scopes:
            bit = SCOPES.get(word.lower())
            if bit is None:
                self.error(source, idx, f"expected a scope (class, association, indication, property, reference, "
                                        f"method, parameter, any), found {word!r}")
                return
            scope |= bit
        for word, idx in raw.flavors:
            if word.lower() not in ("enableoverride", "disableoverride", "tosubclass", "restricted",
                                    "translatable", "toinstance"):
                self.error(source, idx, f"expected a flavor (EnableOverride, DisableOverride, ToSubclass, "
                                        f"Restricted, Translatable), found {word!r}")
                return
        flavor = apply_flavors(_DEFAULT_FLAVOR, [w for w, _ in raw.flavors])
        decl = QualifierDecl(raw.name, mitype, default, MIFlag(scope), flavor,
                             raw.array if raw.array else None)
        key = (self.ns.lower(), raw.name.lower())
        old = self.qdecls.get(key)
        if old is not None and key in self.qdecl_where:
            if old.decl != decl:
                src, idx = self.qdecl_where[key]
                self.error(source, raw.index, f"qualifier {raw.name} is declared again, differently "
                                              f"(first at {src.where(idx)})")
            return
        held = self.qualifier_lookup(self.ns, raw.name)
        if held is not None:
            diffs = conflicts(held, decl)
            if diffs:
                std = standard_qualifier(raw.name)
                whose = "the standard (DSP0004) declaration" if std is not None and not conflicts(std, held) \
                    else "the declaration"
                self.error(source, raw.index, f"qualifier {raw.name} conflicts with {whose} that namespace "
                                              f"{self.ns} holds: here {'; '.join(diffs)}")
                return
        self.qdecls[key] = _QualInfo(decl)
        self.qfast.clear()
        self.qdecl_where[key] = (source, raw.index)
        self.qdecl_list.append((self.ns, decl))

    def _qual_info(self, ns: str, name: str) -> _QualInfo | None:
        key = (ns.lower(), name.lower())
        info = self.qdecls.get(key)
        if info is None and key not in self.qdecls:
            decl = self.qualifier_lookup(ns, name)
            info = _QualInfo(decl) if decl is not None else None
            self.qdecls[key] = info  # type: ignore[assignment]  # None caches "not declared"
        return info

    def _qualifiers(self, source: Source, raws: list[RawQualifier] | None, scope: int, what: str,
                    ) -> NamedItems[Qualifier]:
        out: NamedItems[Qualifier] = NamedItems()
        if not raws:
            return out
        items = out._items
        ns = self.ns
        fast = self.qfast.get(ns)
        if fast is None:
            fast = self.qfast[ns] = {}
        for name, value, flavors, index in raws:
            info = fast.get(name, _MISSING)
            if info is _MISSING:
                info = fast[name] = self._qual_info(ns, name)
            if info is None:
                self.error(source, index, f"unknown qualifier {name} (no qualifier declaration for it in "
                                          f"namespace {ns})")
                continue
            if not info.scope & scope:
                self.error(source, index, f"qualifier {info.decl.name} cannot be used on {what} "
                                          f"(its scope is {_scope_words(info.scope)})")
                continue
            t = info.type
            if value is NO_VALUE:
                if t == MIType.BOOLEAN:
                    value = True
                else:
                    self.error(source, index, f"qualifier {info.decl.name} is of type {type_word(t)} and needs a "
                                              f"value")
                    continue
            else:
                tv = type(value)
                if info.array and tv is not list and value is not None:
                    value = [value]
                    tv = list
                # Most qualifier values are strings and string arrays that need no conversion.
                if not ((t == _STRING and tv is str) or (t == _BOOLEAN and tv is bool)
                        or (t == _STRINGA and tv is list and all(type(x) is str for x in value))):
                    try:
                        value = convert_value(value, t)
                    except ValueMismatch as exc:
                        self.error(source, index, f"value of qualifier {info.decl.name}: {exc}")
                        continue
            flavor = info.flavor
            if flavors:
                ck = (int(flavor), tuple(f.lower() for f in flavors))
                fl = self.flavor_cache.get(ck)
                if fl is None:
                    fl = self.flavor_cache[ck] = apply_flavors(flavor, flavors)
                flavor = fl
            low = name.lower()
            if low in items:
                self.error(source, index, f"qualifier {info.decl.name} is given twice on {what}")
                continue
            items[low] = _fast_qualifier(info.decl.name, value, t, flavor)
        return out

    # --- handler: classes --------------------------------------------------------------------
    def class_decl(self, source: Source, raw: RawClass) -> None:
        ns = self.ns
        key = (ns.lower(), raw.name.lower())
        first = self.classes.get(key)
        if first is not None:
            self.error(source, raw.index, f"duplicate class {raw.name} (first declared at "
                                          f"{first.source.where(first.raw.index)})")
            return
        if raw.superclass is not None and raw.superclass.lower() == raw.name.lower():
            self.error(source, raw.super_index, f"class {raw.name} cannot be its own superclass")
            raw.superclass = None
        quals = self._qualifiers(source, raw.quals, _CLASS_SCOPES, f"class {raw.name}")
        if raw.keyword == "association" and "association" not in quals:
            info = self._qual_info(ns, "Association")
            flavor = info.flavor if info is not None else MIFlag.DISABLEOVERRIDE | MIFlag.TOSUBCLASS
            quals._items["association"] = _fast_qualifier("Association", True, MIType.BOOLEAN, flavor)
        deps: list[tuple[str, int]] = []
        props: list[Property] = []
        methods: list[Method] = []
        seen: dict[str, int] = {}
        for feat in raw.features:
            low = feat.name.lower()
            if low in seen:
                self.error(source, feat.index, f"{raw.name}.{feat.name} is declared twice in the class")
                continue
            seen[low] = feat.index
            if isinstance(feat, RawProperty):
                p = self._property(source, raw.name, feat, deps)
                if p is not None:
                    props.append(p)
            else:
                m = self._method(source, raw.name, feat, deps)
                if m is not None:
                    methods.append(m)
        cls = Class(raw.name, raw.superclass, props, qualifiers=quals, methods=methods, namespace=ns)
        raw.quals = None  # later checks need only names and positions: let the raw values go
        for feat in raw.features:
            feat.quals = None
            if isinstance(feat, RawMethod):
                feat.params = []
            else:
                feat.default = None
        entry = _ClassEntry(ns, cls, raw, source)
        entry.deps = deps
        self.classes[key] = entry
        self.class_order.append(entry)

    def _element_type(self, source: Source, type_name: str, type_index: int, ref: bool, array: int | None,
                      quals: NamedItems[Qualifier], what: str, deps: list[tuple[str, int]],
                      ) -> tuple[MIType, str | None, str | None] | None:
        """(MI type, reference class, embedded class) of a property, parameter or method result."""
        if ref:
            if type_name.lower() in TYPE_NAMES:
                self.error(source, type_index, f"{what}: REF needs a class name, not {type_name}")
                return None
            deps.append((type_name, type_index))
            t = MIType.REFERENCEA if array is not None else MIType.REFERENCE
            return t, type_name, None
        base = TYPE_NAMES.get(type_name.lower())
        if base is None:
            self.error(source, type_index, f"{what}: expected a data type (boolean, string, uint32 ...) or a "
                                           f"class name followed by REF, found {type_name!r}")
            return None
        embedded = None
        if quals:
            q = quals._items.get("embeddedinstance")
            if q is not None and q.value:
                if base != MIType.STRING:
                    self.error(source, type_index, f"{what}: EmbeddedInstance needs type string, not {type_name}")
                    return None
                base = MIType.INSTANCE
                embedded = str(q.value)
                deps.append((embedded, type_index))
            else:
                q = quals._items.get("embeddedobject")
                if q is not None and q.value:
                    if base != MIType.STRING:
                        self.error(source, type_index, f"{what}: EmbeddedObject needs type string, not "
                                                       f"{type_name}")
                        return None
                    base = MIType.INSTANCE
        return (_ARRAY_OF[base] if array is not None else base), None, embedded

    def _property(self, source: Source, cname: str, raw: RawProperty, deps: list[tuple[str, int]]
                  ) -> Property | None:
        what = f"property {cname}.{raw.name}"
        quals = self._qualifiers(source, raw.quals, _S_REFERENCE if raw.ref else _S_PROPERTY, what)
        typed = self._element_type(source, raw.type_name, raw.type_index, raw.ref, raw.array, quals, what, deps)
        if typed is None:
            return None
        t, ref_class, embedded = typed
        value = None
        if raw.default is not NO_VALUE and raw.default is not None:
            try:
                value = self._class_value(raw.default, t)
            except ValueMismatch as exc:
                self.error(source, raw.default_index, f"default value of {what}: {exc}")
                return None
        bits = _S_REFERENCE if raw.ref else _S_PROPERTY
        if quals:
            items = quals._items
            q = items.get("key")
            if q is not None and q.value:
                bits |= _KEY
            q = items.get("required")
            if q is not None and q.value:
                bits |= _REQUIRED
        return Property._trusted(raw.name, t, value, quals, _flags(bits), ref_class, embedded, raw.array or None)

    def _class_value(self, v: Any, t: int) -> Any:
        """A default value in a class: constants, object paths for references; no aliases."""
        s = t & 0x0F
        if s == MIType.REFERENCE:
            if t & 0x10:
                if not isinstance(v, list):
                    raise ValueMismatch(f"expected an array of references, found {describe_value(v)}")
                return [self._path_value(x) for x in v]
            return self._path_value(v)
        if s == MIType.INSTANCE:
            raise ValueMismatch("an embedded instance property cannot have a default value in a class")
        return convert_value(v, t)

    def _path_value(self, v: Any) -> Instance:
        if not isinstance(v, str) or isinstance(v, Char16):
            raise ValueMismatch(f"expected an object path string or an alias, found {describe_value(v)}")
        try:
            return parse_object_path(v)
        except ValueError as exc:
            raise ValueMismatch(str(exc)) from None

    def _method(self, source: Source, cname: str, raw: RawMethod, deps: list[tuple[str, int]]) -> Method | None:
        what = f"method {cname}.{raw.name}"
        quals = self._qualifiers(source, raw.quals, _S_METHOD, what)
        typed = self._element_type(source, raw.type_name, raw.type_index, raw.ref, None, quals, what, deps)
        if typed is None:
            return None
        params: list[Parameter] = []
        seen: set[str] = set()
        ok = True
        for rp in raw.params:
            pwhat = f"parameter {rp.name} of {cname}.{raw.name}"
            if rp.name.lower() in seen:
                self.error(source, rp.index, f"{pwhat} is declared twice")
                ok = False
                continue
            seen.add(rp.name.lower())
            param = self._parameter(source, rp, pwhat, deps)
            if param is None:
                ok = False
            else:
                params.append(param)
        if not ok:
            return None
        return Method(raw.name, typed[0], params, qualifiers=quals)

    def _parameter(self, source: Source, raw: RawParameter, what: str, deps: list[tuple[str, int]]
                   ) -> Parameter | None:
        quals = self._qualifiers(source, raw.quals, _S_PARAMETER, what)
        typed = self._element_type(source, raw.type_name, raw.type_index, raw.ref, raw.array, quals, what, deps)
        if typed is None:
            return None
        t, ref_class, embedded = typed
        items = quals._items
        q_in = items.get("in")
        q_out = items.get("out")
        out = bool(q_out is not None and q_out.value)
        in_ = bool(q_in.value) if q_in is not None else not out
        bits = _S_PARAMETER | (_IN if in_ else 0) | (_OUT if out else 0)
        return Parameter._trusted(raw.name, t, quals, _flags(bits), ref_class, embedded, raw.array or None)

    # --- handler: instances ------------------------------------------------------------------
    def instance_decl(self, source: Source, raw: RawInstance) -> None:
        self.raw_instances.append((self.ns, raw, source))

    # --- final checks --------------------------------------------------------------------------
    def finish(self) -> MOFResult:
        result = MOFResult(qualifier_decls=self.qdecl_list)
        for entry in self.class_order:
            self._check_superclass(entry)
        ordered: list[_ClassEntry] = []
        for entry in self.class_order:
            self._visit(entry, ordered)
        for entry in ordered:
            self._check_class(entry)
        result.classes = [(e.ns, e.cls) for e in ordered]
        result.instances = self._instances()
        if self.errors:
            self.errors.sort(key=lambda e: (e[0], e[1]))
            raise MOFError([m for _, _, m in self.errors])
        return result

    def _check_superclass(self, entry: _ClassEntry) -> None:
        sup = entry.cls.superclass
        if sup is None:
            return
        ns = entry.ns
        target = self.classes.get((ns.lower(), sup.lower()))
        if target is None and self.class_lookup(ns, sup) is None:
            self.error(entry.source, entry.raw.super_index,
                       f"class {entry.cls.name}: superclass {sup} is not declared (in this MOF or namespace {ns})")
            entry.cls.superclass = None  # check the rest of the class as a root
            return
        # A cycle of superclasses inside this compilation: report it once, on the class that closes it.
        seen = {entry.cls.name.lower()}
        cur = target
        while cur is not None and cur.cls.superclass is not None:
            low = cur.cls.superclass.lower()
            if low in seen:
                self.error(entry.source, entry.raw.super_index,
                           f"class {entry.cls.name}: the superclass chain through {sup} loops back to itself")
                entry.cls.superclass = None
                return
            seen.add(cur.cls.name.lower())
            cur = self.classes.get((ns.lower(), low))

    def _visit(self, entry: _ClassEntry, out: list[_ClassEntry]) -> None:
        """Depth-first: superclass and referenced classes first (reference cycles are broken, not errors)."""
        if entry.state:
            return
        entry.state = 1
        nsl = entry.ns.lower()
        sup = entry.cls.superclass
        if sup is not None:
            target = self.classes.get((nsl, sup.lower()))
            if target is not None:
                self._visit(target, out)
        for name, _ in entry.deps:
            target = self.classes.get((nsl, name.lower()))
            if target is not None and target.state == 0:
                self._visit(target, out)
        entry.state = 2
        out.append(entry)

    def view(self, ns: str, name: str) -> _View | None:
        """The inherited view of a class from this compilation or from the repository."""
        key = (ns.lower(), name.lower())
        if key in self.views:
            return self.views[key]
        entry = self.classes.get(key)
        if entry is not None:
            self._check_class(entry)
            return self.views.get(key)
        cls = self.class_lookup(ns, name)
        v = None
        if cls is not None:
            props = {p.name.lower(): (p, p.key, p.class_origin or cls.name) for p in cls.properties.values()}
            methods = {m.name.lower(): (m, m.class_origin or cls.name) for m in cls.methods.values()}
            quals = {q.name.lower(): q for q in cls.qualifiers.values()}
            v = _View(cls, props, methods, quals, any(k for _, k, _ in props.values()))
        self.views[key] = v
        return v

    def _exists(self, ns: str, name: str) -> bool:
        key = (ns.lower(), name.lower())
        return key in self.classes or self.view(ns, name) is not None

    def _check_class(self, entry: _ClassEntry) -> None:
        key = (entry.ns.lower(), entry.cls.name.lower())
        if key in self.views:
            return
        self.views[key] = None  # guards against loops while the parent's view is built
        cls, source, ns = entry.cls, entry.source, entry.ns
        parent = self.view(ns, cls.superclass) if cls.superclass else None
        for name, idx in entry.deps:
            if not self._exists(ns, name):
                self.error(source, idx, f"class {cls.name}: class {name} is not declared (in this MOF or "
                                        f"namespace {ns})")
        if parent is None:
            props: dict[str, tuple[Property, bool, str]] = {}
            methods: dict[str, tuple[Method, str]] = {}
            quals: dict[str, Qualifier] = {}
            has_keys = False
        else:
            props = dict(parent.props)
            methods = dict(parent.methods)
            quals = {k: q for k, q in parent.quals.items() if not int(q.flavor) & _RESTRICTED}
            has_keys = parent.keys
        raw_index = {f.name.lower(): f for f in entry.raw.features}
        if parent is not None:
            self._check_overridable(source, entry.raw.index, f"class {cls.name}", parent.quals, cls.qualifiers)
        quals.update((k, q) for k, q in cls.qualifiers._items.items())
        for low, p in cls.properties._items.items():
            inherited = props.get(low)
            raw_feat = raw_index[low]
            ov = p.qualifiers._items.get("override")
            if ov is not None and ov.value:
                target = str(ov.value).lower()
                if parent is None or target not in parent.props:
                    self.error(source, raw_feat.index, f"property {cls.name}.{p.name}: Override names "
                                                       f"{ov.value!r}, which no superclass of {cls.name} has")
                elif target != low:
                    self.error(source, raw_feat.index, f"property {cls.name}.{p.name}: Override names a "
                                                       f"different property ({ov.value!r})")
            if inherited is not None:
                ip, ikey, _ = inherited
                if ip.type != p.type:
                    self.error(source, raw_feat.index, f"property {cls.name}.{p.name} is {type_word(p.type)} "
                                                       f"but overrides {ip.class_origin}.{ip.name} of type "
                                                       f"{type_word(ip.type)}")
                self._check_overridable(source, raw_feat.index, f"property {cls.name}.{p.name}",
                                        self._inherited_quals(ns, cls.superclass, low, "p"), p.qualifiers)
                props[low] = (p, ikey or p.key, cls.name)
            else:
                if p.key and has_keys:
                    self.error(source, raw_feat.index,
                               f"property {cls.name}.{p.name}: a subclass cannot add a key property when its "
                               f"superclass {cls.superclass} already has keys")
                props[low] = (p, p.key, cls.name)
        if any(k for _, k, _ in props.values()):
            has_keys = True
        for low, m in cls.methods._items.items():
            raw_feat = raw_index[low]
            ov = m.qualifiers._items.get("override")
            if ov is not None and ov.value and (parent is None or str(ov.value).lower() not in parent.methods):
                self.error(source, raw_feat.index, f"method {cls.name}.{m.name}: Override names {ov.value!r}, "
                                                   f"which no superclass of {cls.name} has")
            inherited_m = methods.get(low)
            if inherited_m is not None:
                self._check_overridable(source, raw_feat.index, f"method {cls.name}.{m.name}",
                                        self._inherited_quals(ns, cls.superclass, low, "m"), m.qualifiers)
            methods[low] = (m, cls.name)
        self.views[key] = _View(cls, props, methods, quals, has_keys)

    def _inherited_quals(self, ns: str, cname: str | None, element: str, kind: str) -> dict[str, Qualifier]:
        """The qualifiers an element inherits from class ``cname`` (propagating ones, down the chain)."""
        out: dict[str, Qualifier] = {}
        chain: list[NamedItems[Qualifier]] = []
        while cname:
            entry = self.classes.get((ns.lower(), cname.lower()))
            cls = entry.cls if entry is not None else self.class_lookup(ns, cname)
            if cls is None:
                break
            items = cls.properties if kind == "p" else cls.methods
            el = items.get(element)
            if el is not None:
                chain.append(el.qualifiers)
            if entry is None:
                break  # a repository class is resolved: its element already carries inherited qualifiers
            cname = cls.superclass
        for qs in reversed(chain):
            for k, q in qs._items.items():
                if not int(q.flavor) & _RESTRICTED:
                    out[k] = q
                else:
                    out.pop(k, None)
        return out

    def _check_overridable(self, source: Source, index: int, what: str, inherited: dict[str, Qualifier],
                           own: NamedItems[Qualifier]) -> None:
        for k, q in own._items.items():
            p = inherited.get(k)
            if p is not None and int(p.flavor) & _DISABLE and p.value != q.value:
                self.error(source, index, f"{what}: qualifier {q.name} cannot be overridden (it has flavor "
                                          f"DisableOverride and value {p.value!r}; found {q.value!r})")

    # --- instances ---------------------------------------------------------------------------
    def _instances(self) -> list[tuple[str, Instance]]:
        out: list[tuple[str, Instance]] = []
        seen_paths: dict[str, tuple[Source, int]] = {}
        made: list[tuple[str, Instance, RawInstance, Source]] = []
        for ns, raw, source in self.raw_instances:
            inst = self._instance(ns, raw, source, top=True)
            if inst is None:
                continue
            if raw.alias is not None:
                low = raw.alias.lower()
                if low in self.aliases:
                    _, fsrc, fidx = self.aliases[low]
                    self.error(source, raw.alias_index, f"alias ${raw.alias} is already defined at "
                                                        f"{fsrc.where(fidx)}")
                else:
                    self.aliases[low] = (inst, source, raw.alias_index)
            made.append((ns, inst, raw, source))
        for fix in self.fixups:
            target = self.aliases.get(fix.alias.name.lower())
            if target is None:
                self.error(fix.source, fix.pos, f"alias ${fix.alias.name} is not defined")
                continue
            value = target[0].clone() if fix.instance_ref else Reference.of(target[0])
            if fix.index is None:
                fix.element.value = value
            else:
                fix.element.value[fix.index] = value
        for ns, inst, raw, source in made:
            if inst.key_elements:
                path = f"{ns.lower()}:{inst.path.lower()}"
                first = seen_paths.get(path)
                if first is not None:
                    shown = inst.path.removeprefix(f"{ns}:")
                    self.error(source, raw.index, f"instance {shown} is declared twice (first at "
                                                  f"{first[0].where(first[1])})")
                    continue
                seen_paths[path] = (source, raw.index)
            out.append((ns, inst))
        return out

    def _instance(self, ns: str, raw: RawInstance, source: Source, top: bool) -> Instance | None:
        view = self.view(ns, raw.class_name)
        if view is None:
            self.error(source, raw.index, f"instance of {raw.class_name}: class {raw.class_name} is not declared "
                                          f"(in this MOF or namespace {ns})")
            return None
        if top and view.abstract:
            self.error(source, raw.index, f"instance of {view.cls.name}: the class is abstract")
            return None
        elements: dict[str, Element] = {}
        for low, (p, key, _) in view.props.items():
            value = p.value
            if isinstance(value, list):
                value = list(value)
            elements[low] = Element(p.name, value, p.type, _KEY if key else 0)
        assigned: set[str] = set()
        ok = True
        for name, value, name_index, value_index in raw.props:
            low = name.lower()
            entry = view.props.get(low)
            if entry is None:
                self.error(source, name_index, f"instance of {view.cls.name}: class {view.cls.name} has no "
                                               f"property {name}")
                ok = False
                continue
            if low in assigned:
                self.error(source, name_index, f"instance of {view.cls.name}: property {name} is set twice")
                ok = False
                continue
            assigned.add(low)
            el = elements[low]
            try:
                el.value = self._instance_value(ns, value, entry[0], el, source)
            except ValueMismatch as exc:
                self.error(source, value_index, f"instance of {view.cls.name}, property {entry[0].name}: {exc}")
                ok = False
        if not ok:
            return None
        if top:
            missing = [el.name for el in elements.values() if el._flags & _KEY and el.value is None
                       and not self._pending(el)]
            if missing:
                self.error(source, raw.index, f"instance of {view.cls.name}: key propert"
                                              f"{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)} "
                                              f"{'have' if len(missing) > 1 else 'has'} no value")
                return None
        return Instance.from_elements(view.cls.name, elements, namespace=ns)

    def _pending(self, el: Element) -> bool:
        return any(f.element is el for f in self.fixups)

    def _instance_value(self, ns: str, v: Any, p: Property, el: Element, source: Source) -> Any:
        t = int(p.type)
        s = t & 0x0F
        if v is None:
            return None
        if s == MIType.REFERENCE or s == MIType.INSTANCE:
            if t & 0x10:
                if not isinstance(v, list):
                    raise ValueMismatch(f"expected an array of {MIType(s).cim_name}, found {describe_value(v)}")
                out = []
                for i, x in enumerate(v):
                    out.append(self._object_value(ns, x, s, p, el, i, source))
                return out
            if isinstance(v, list):
                raise ValueMismatch(f"expected {type_word(t)}, found an array")
            return self._object_value(ns, v, s, p, el, None, source)
        return convert_value(v, t)

    def _object_value(self, ns: str, v: Any, s: int, p: Property, el: Element, index: int | None,
                      source: Source) -> Any:
        if isinstance(v, AliasRef):
            target = self.aliases.get(v.name.lower())
            if target is not None:
                return target[0].clone() if s == MIType.INSTANCE else Reference.of(target[0])
            self.fixups.append(_Fixup(el, index, v, s == MIType.INSTANCE, source))
            return None
        if s == MIType.REFERENCE:
            return self._typed_path(ns, self._path_value(v))
        if isinstance(v, RawInstance):
            inst2 = self._instance(ns, v, source, top=False)
            if inst2 is None:
                raise ValueMismatch(f"the embedded instance of {v.class_name} has errors")
            if p.embedded_class and not self._derives(ns, inst2.class_name, p.embedded_class):
                raise ValueMismatch(f"expected an instance of {p.embedded_class}, found one of {inst2.class_name}")
            return inst2
        raise ValueMismatch(f"expected an embedded instance (instance of ...) or an alias, found "
                            f"{describe_value(v)}")

    def _typed_path(self, ns: str, ref: Instance) -> Instance:
        """Give a parsed object path's keys the types the referenced class declares."""
        view = self.view(ref.namespace or ns, ref.class_name)
        if view is None:
            return ref
        for el in ref.elements:
            entry = view.props.get(el.name.lower())
            if entry is None:
                raise ValueMismatch(f"class {view.cls.name} has no property {el.name} (in the object path)")
            t = int(entry[0].type)
            if t == MIType.REFERENCE and isinstance(el.value, str):  # a reference key: a nested, quoted path
                try:
                    el.value = self._typed_path(ref.namespace or ns, parse_object_path(el.value))
                except ValueError as exc:
                    raise ValueMismatch(str(exc)) from None
                el.type = MIType.REFERENCE
            elif el.type != t and t & 0x0F not in (MIType.REFERENCE, MIType.INSTANCE):
                el.value = convert_value(el.value, t) if t != MIType.STRING else str(el.value)
                el.type = entry[0].type
        return ref

    def _derives(self, ns: str, name: str, base: str) -> bool:
        seen = 0
        cur: str | None = name
        while cur is not None and seen < 100:
            if cur.lower() == base.lower():
                return True
            v = self.view(ns, cur)
            cur = v.cls.superclass if v is not None else None
            seen += 1
        return False


def _scope_words(scope: int) -> str:
    if scope == int(MIFlag.ANY):
        return "any"
    names = [n for n, bit in SCOPES.items() if n != "any" and scope & bit]
    return ", ".join(names) or "nothing"


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")

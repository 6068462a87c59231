"""From a parsed query and its class to one compiled predicate and a projection.

:func:`compile_query` checks the query against the FROM class (unknown property, operator that does
not fit the type, array compared, … → :class:`QueryError` with the column) and turns the WHERE clause
into a single Python function, generated as source and compiled once, so filtering an instance costs a
few attribute reads and comparisons, not a walk of the tree. Two forms are built: one over
:class:`~openmi.cim.Instance` (``matches``) and, when every property the condition reads is a plain
scalar, one over the repository's stored form ``{property name: JSON value}`` (``row_predicate``), so
rows that do not match are never turned into instances.

Comparison rules are WMI's: strings compare without case (each character folded on its own, see
:func:`~openmi.cim.query.like.fold`); integers and reals compare across types;
a boolean compares with TRUE/FALSE or 0/1 (``=``/``<>`` only); datetimes compare as points in time (a
DMTF string constant is parsed); arrays, embedded objects and reference ordering do not compare. NULL
follows OMI: ``p = c`` is false and ``p <> c`` true when ``p`` is NULL, ``NULL = NULL`` is true, and an
ordering against NULL is unknown — and unknown never matches, even under NOT (three-valued logic, done
by pushing NOT down to the leaves).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..classes import Class, Property
from ..instance import Instance
from ..objectpath import Reference, parse_object_path, relative_path
from ..types import MIFlag, MIType
from ..values import parse_datetime
from .errors import QueryError
from .like import compile_like, fold
from .tree import (
    And,
    Comparison,
    Expr,
    Isa,
    IsNull,
    Like,
    Literal,
    Not,
    Or,
    PathStep,
    PropertyRef,
    SelectQuery,
)

ClassLookup = Callable[[str], "Class | None"]

# The system properties WMI gives every instance, and their types.
SYSTEM_PROPERTIES: dict[str, MIType] = {
    "__CLASS": MIType.STRING, "__SUPERCLASS": MIType.STRING, "__DYNASTY": MIType.STRING,
    "__DERIVATION": MIType.STRINGA, "__GENUS": MIType.SINT32, "__NAMESPACE": MIType.STRING,
    "__PATH": MIType.STRING, "__RELPATH": MIType.STRING, "__SERVER": MIType.STRING,
    "__PROPERTY_COUNT": MIType.SINT32,
}

_KEY = int(MIFlag.KEY)
_NEGATE = {"=": "<>", "<>": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_PYOP = {"=": "==", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_UTC = _dt.timezone.utc

# Type categories: how values of an MI type compare.
_STRING, _INT, _REAL, _BOOL, _DATETIME, _REF, _OBJECT, _ARRAY = (
    "string", "integer", "real", "boolean", "datetime", "reference", "object", "array")


def _category_of(t: MIType) -> str:
    if t.is_array:
        return _ARRAY
    if t in (MIType.STRING, MIType.CHAR16):
        return _STRING
    if t.is_integer:
        return _INT
    if t in (MIType.REAL32, MIType.REAL64):
        return _REAL
    if t == MIType.BOOLEAN:
        return _BOOL
    if t == MIType.DATETIME:
        return _DATETIME
    if t == MIType.REFERENCE:
        return _REF
    return _OBJECT


_CATEGORIES = {int(t): _category_of(t) for t in MIType}


def _category(t: MIType | int) -> str:
    return _CATEGORIES[int(t)]


# --- runtime helpers the generated code calls --------------------------------------------------------


def datetime_key(v: Any) -> tuple[int, Any]:
    """A value that orders CIM datetimes: timestamps by instant (naive ones taken as UTC), then intervals."""
    if isinstance(v, _dt.datetime):
        return (0, v if v.tzinfo is not None else v.replace(tzinfo=_UTC))
    return (1, v)


def _relpath(inst: Instance) -> str:
    return relative_path(inst, "wmi")


def _same_reference(v: Any, ref: Reference) -> bool:
    """Whether a reference value names the instance ``ref`` names (class and keys; namespace when both have one)."""
    return isinstance(v, Instance) and Reference.of(v) == ref


class _Missing:
    """An embedded path that does not resolve: neither a value nor NULL, so no test on it matches."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class _Walk:
    steps: tuple[tuple[str, str | None], ...]       # (property name, scope class) folded
    derivation: Callable[[str], tuple[str, ...]]

    def __call__(self, value: Any) -> tuple[Any, MIType | None]:
        t: MIType | None = None
        for name, scope in self.steps:
            if not isinstance(value, Instance):
                return MISSING, None
            if scope is not None and scope not in self.derivation(value.class_name):
                return MISSING, None
            el = value._elements.get(name)
            if el is None:
                return MISSING, None
            value, t = el.value, MIType(el.type)
        return value, t


def _make_derivation(lookup: ClassLookup | None) -> Callable[[str], tuple[str, ...]]:
    """class name → the folded names of it and its superclasses (cached; unknown classes are just themselves)."""
    cache: dict[str, tuple[str, ...]] = {}

    def derivation(name: str) -> tuple[str, ...]:
        key = name.casefold()
        hit = cache.get(key)
        if hit is not None:
            return hit
        out = [key]
        seen = {key}
        cur = lookup(name) if lookup is not None else None
        while cur is not None and cur.superclass:
            sup = cur.superclass.casefold()
            if sup in seen:
                break
            seen.add(sup)
            out.append(sup)
            cur = lookup(cur.superclass) if lookup is not None else None
        cache[key] = tuple(out)
        return cache[key]

    return derivation


# --- literal conversion (shared by compile time and run time) ----------------------------------------


class _Mismatch(Exception):
    """A constant that does not fit a property's type (compile time: INVALID_QUERY; run time: no match)."""


def _convert(lit: Literal, category: str, op: str, what: str) -> Any:
    """The constant as the value the comparison uses for a property of ``category``."""
    k, v = lit.kind, lit.value
    if category == _ARRAY:
        raise _Mismatch(f"{what} is an array; WQL does not compare arrays")
    if category == _OBJECT:
        raise _Mismatch(f"{what} is an embedded object; compare one of its properties "
                        f"({what.strip(chr(39))}.Name) or use ISA")
    if category == _BOOL:
        if op not in ("=", "<>"):
            raise _Mismatch(f"{what} is a boolean; it compares with = or <> only")
        if k == "boolean":
            return bool(v)
        if k == "integer" and v in (0, 1, -1):
            return v != 0
        if k == "string" and isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        raise _Mismatch(f"{what} is a boolean; {_show(lit)} is not TRUE, FALSE, 0 or 1")
    if category == _REF:
        if op not in ("=", "<>"):
            raise _Mismatch(f"{what} is a reference; it compares with = or <> only")
        if k == "string":
            try:
                return parse_object_path(str(v))
            except ValueError as exc:
                raise _Mismatch(f"{what} is a reference; {exc}") from None
        raise _Mismatch(f"{what} is a reference; compare it with an object path in quotes")
    if category == _STRING:
        if k == "string":
            return fold(str(v))
        raise _Mismatch(f"{what} is a string; {_show(lit)} is not (put it in quotes)")
    if category in (_INT, _REAL):
        if k in ("integer", "real"):
            return float(v) if category == _REAL else v  # type: ignore[arg-type]
        if k == "string":
            s = str(v).strip()
            try:
                return int(s, 10) if category == _INT else float(s)
            except ValueError:
                try:
                    return float(s)
                except ValueError:
                    raise _Mismatch(f"{what} is a number; {_show(lit)} is not one") from None
        raise _Mismatch(f"{what} is a number; {_show(lit)} is not one")
    if category == _DATETIME:
        if k == "string":
            try:
                return datetime_key(parse_datetime(str(v)))
            except ValueError:
                raise _Mismatch(f"{what} is a datetime; {_show(lit)} is not a DMTF datetime "
                                "(yyyymmddHHMMSS.mmmmmmsUUU or ddddddddHHMMSS.mmmmmm:000)") from None
        raise _Mismatch(f"{what} is a datetime; compare it with a DMTF datetime string")
    raise _Mismatch(f"{what} cannot be compared")  # pragma: no cover


def _show(lit: Literal) -> str:
    if lit.kind == "string":
        return repr(lit.value)
    if lit.kind == "boolean":
        return "TRUE" if lit.value else "FALSE"
    return str(lit.value)


def _literal_category(lit: Literal) -> str:
    return {"string": _STRING, "integer": _INT, "real": _REAL, "boolean": _BOOL}.get(lit.kind, _STRING)


def _normalize(value: Any, category: str) -> Any:
    """A property value in the form constants were converted to."""
    if category == _STRING:
        return fold(value) if isinstance(value, str) else fold(str(value))
    if category == _DATETIME:
        return datetime_key(value)
    return value


def _compare(op: str, a: Any, b: Any) -> bool:
    try:
        if op == "=":
            return bool(a == b)
        if op == "<>":
            return bool(a != b)
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def dynamic_compare(op: str, negated: bool, value: Any, mitype: MIType | None, lit: Literal) -> bool:
    """A comparison whose property type is known only at run time (embedded paths): same rules, no errors."""
    if value is MISSING:
        return False
    if negated:
        op = _NEGATE[op]
    if value is None:
        return op == "<>"
    cat = _category(mitype) if mitype is not None else _literal_category(lit)
    try:
        c = _convert(lit, cat, op, "value")
    except _Mismatch:
        return False
    if cat == _REF:
        hit = _same_reference(value, c)
        return hit if op == "=" else not hit
    return _compare(op, _normalize(value, cat), c)


def dynamic_like(negated: bool, value: Any, mitype: MIType | None, matcher: Callable[[str], bool]) -> bool:
    if value is MISSING:
        return False
    if value is None or not isinstance(value, str):
        return negated
    return matcher(value) != negated


# --- the compiled query --------------------------------------------------------------------------------


class CompiledQuery:
    """A query checked against its class, with its condition compiled once.

    - ``matches(instance)``: whether an instance (of the class or a subclass) satisfies WHERE.
    - ``row_predicate``: ``f(row, class_name)`` over the repository's stored ``{name: JSON value}`` form, or
      ``None`` when the condition needs a whole instance (embedded objects, references, system paths).
    - ``key_values``: ``{key property: value}`` when WHERE fixes every key of the class by equality at its
      top level (``Id = 7 AND …``), so a store can look the instance up instead of scanning; the full
      condition must still be checked on what it finds.
    - ``key_text``: for a class with one string key fixed by ``Key = 'text'`` (any case matches), the
      folded text (:func:`~openmi.cim.query.like.fold`), so a store can narrow its scan before checking.
    - ``properties``: the selected property names as the class spells them (``None`` for ``SELECT *``);
      ``project(instance)`` keeps those plus the keys.
    """

    def __init__(self, query: SelectQuery, cls: Class, *, lookup: ClassLookup | None = None) -> None:
        self.query = query
        self.cls = cls
        self.class_name = cls.name
        self._derivation = _make_derivation(lookup)
        self._lookup = lookup
        self.properties = self._select_list(query)
        self._keep = (None if self.properties is None
                      else frozenset(p.lower() for p in self.properties))
        self.condition: Expr | None = query.where
        gen = _Generator(self)
        gen._body(query.where)             # checks every leaf against the class now; compiling waits for use
        self._gen = gen
        self._matches: Callable[[Instance], bool] | None = None
        self._row: Callable[[Mapping[str, Any], str], bool] | None = None
        self.key_values: dict[str, Any] | None = gen.key_values(query.where)
        self.key_text: str | None = None if self.key_values is not None else gen.key_text(query.where)
        #: True when WHERE is nothing but the key equalities of ``key_values``: the looked-up row matches
        self.key_exhaustive = self.key_values is not None and gen.key_exhaustive

    @property
    def matches(self) -> Callable[[Instance], bool]:
        """``f(instance) -> bool``, compiled on first use."""
        fn = self._matches
        if fn is None:
            fn = self._matches = self._gen.instance_function(self.condition)
        return fn

    @property
    def row_predicate(self) -> Callable[[Mapping[str, Any], str], bool] | None:
        """``f(row, class_name) -> bool`` over stored rows, compiled on first use; None when rows cannot say."""
        if not self._gen.row_ok:
            return None
        fn = self._row
        if fn is None:
            fn = self._row = self._gen.row_function(self.condition)
        return fn

    @property
    def source(self) -> str:
        """The Python source compiled so far (for debugging and tests)."""
        return self._gen.source

    def _select_list(self, q: SelectQuery) -> tuple[str, ...] | None:
        if q.properties is None:
            return None
        out: list[str] = []
        for ref in q.properties:
            if ref.is_system:
                if ref.name.upper() not in SYSTEM_PROPERTIES:
                    raise QueryError(f"unknown system property '{ref.name}'", ref.column)
                continue
            p = self.cls.properties.get(ref.name)
            if p is None:
                raise QueryError(f"unknown property '{ref.name}' of {self.cls.name}", ref.column)
            if p.name not in out:
                out.append(p.name)
        return tuple(out)

    def project(self, inst: Instance) -> Instance:
        """The instance with only the selected properties and the keys (itself for ``SELECT *``)."""
        keep = self._keep
        if keep is None:
            return inst
        elements = {k: el for k, el in inst._elements.items() if k in keep or el._flags & MIFlag.KEY}
        out = Instance.from_elements(inst.class_name, elements, namespace=inst.namespace)
        out.server_name = inst.server_name
        return out

    def derivation(self, class_name: str) -> tuple[str, ...]:
        return self._derivation(class_name)


@dataclass
class _Ref:
    """A property read by the condition: where it comes from and what it is."""

    var: str
    name: str            # the class's spelling, or the system property name
    type: MIType | None  # None: only known at run time
    system: bool = False


class _Generator:
    """Turns a checked condition into Python source (two variants) and compiles it."""

    def __init__(self, cq: CompiledQuery) -> None:
        self.cq = cq
        self.cls = cq.cls
        self.consts: dict[str, Any] = {
            "_MISSING": MISSING, "_dtk": datetime_key, "_sameref": _same_reference, "_dyn": dynamic_compare,
            "_dynlike": dynamic_like, "_pdt": parse_datetime, "_Instance": Instance,
            "_fold": fold,
        }
        self.refs: dict[str, _Ref] = {}
        self.row_ok = True
        self.source = ""
        self.body: str | None = None
        self.key_exhaustive = False

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    # --- operands -----------------------------------------------------------------------------
    def prop(self, ref: PropertyRef) -> _Ref:
        """The variable holding a top-level property (checked against the class)."""
        if ref.is_system:
            up = ref.name.upper()
            t = SYSTEM_PROPERTIES.get(up)
            if t is None:
                raise QueryError(f"unknown system property '{ref.name}'", ref.column)
            key = up
            if up != "__CLASS":
                self.row_ok = False
            r = self.refs.get(key)
            if r is None:
                r = self.refs[key] = _Ref(f"p{len(self.refs)}", up, t, system=True)
            return r
        p = self.cls.properties.get(ref.name)
        if p is None:
            raise QueryError(f"unknown property '{ref.name}' of {self.cls.name}", ref.column)
        key = p.name.lower()
        r = self.refs.get(key)
        if r is None:
            r = self.refs[key] = _Ref(f"p{len(self.refs)}", p.name, p.type)
            if _category(p.type) in (_REF, _OBJECT, _ARRAY):
                self.row_ok = False
        return r

    def walk(self, ref: PropertyRef, r: _Ref) -> tuple[str, MIType | None]:
        """Code for an embedded path ``Prop.Sub…``: a (value, type) pair, checked statically where possible."""
        self.row_ok = False
        if r.type is None or _category(r.type) not in (_OBJECT, _REF):
            raise QueryError(f"'{ref.name}' is not an embedded object, so it has no property "
                             f"'{ref.steps[0].name}'", ref.steps[0].column)
        prop = self.cls.properties.get(ref.name)
        known: Class | None = None
        if prop is not None and self.cq._lookup is not None:
            declared = prop.embedded_class or prop.reference_class
            if declared:
                known = self.cq._lookup(declared)
        static_type: MIType | None = None
        steps: list[tuple[str, str | None]] = []
        for i, step in enumerate(ref.steps):
            known, static_type = self._step(step, known, i == len(ref.steps) - 1)
            steps.append((step.name.lower(), step.scope.casefold() if step.scope else None))
        fn = _Walk(tuple(steps), self.cq._derivation)
        return f"{self.const(fn)}({r.var})", static_type

    def _step(self, step: PathStep, known: Class | None, last: bool) -> tuple[Class | None, MIType | None]:
        lookup = self.cq._lookup
        if step.scope is not None and lookup is not None:
            scope = lookup(step.scope)
            if scope is None:
                raise QueryError(f"unknown class '{step.scope}'", step.column)
            known = scope
        if known is None:
            return None, None
        p: Property | None = known.properties.get(step.name)
        if p is None:
            raise QueryError(f"unknown property '{step.name}' of {known.name}", step.column)
        if not last:
            if _category(p.type) not in (_OBJECT, _REF):
                raise QueryError(f"'{step.name}' is not an embedded object", step.column)
            declared = p.embedded_class or p.reference_class
            return (lookup(declared) if (declared and lookup is not None) else None), p.type
        return None, p.type

    # --- leaves -------------------------------------------------------------------------------
    def expr(self, e: Expr, neg: bool) -> str:
        if isinstance(e, Not):
            return self.expr(e.operand, not neg)
        if isinstance(e, (And, Or)):
            joiner = " and " if isinstance(e, And) != neg else " or "
            return "(" + joiner.join(self.expr(x, neg) for x in e.operands) + ")"
        if isinstance(e, Comparison):
            return self.comparison(e, neg)
        if isinstance(e, Like):
            return self.like(e, neg)
        if isinstance(e, IsNull):
            return self.is_null(e, neg)
        return self.isa(e, neg)

    def is_null(self, e: IsNull, neg: bool) -> str:
        want_null = e.negated == neg   # IS NULL (not negated twice)
        if isinstance(e.operand, Literal):
            return repr((e.operand.kind == "null") == want_null)
        r = self.prop(e.operand)
        if e.operand.steps:
            code, _ = self.walk(e.operand, r)
            v = f"{self.const(_is_missing_or)}({code}, {want_null})"
            return v
        return f"({r.var} is None)" if want_null else f"({r.var} is not None)"

    def isa(self, e: Isa, neg: bool) -> str:
        r = self.prop(e.operand)
        if e.operand.steps:
            code, t = self.walk(e.operand, r)
            if t is not None and _category(t) not in (_OBJECT, _REF):
                raise QueryError(f"'{e.operand.text}' is not an embedded object; ISA tests embedded objects",
                                 e.column)
            value = f"{code}[0]"
        else:
            if r.type is None or _category(r.type) not in (_OBJECT, _REF):
                raise QueryError(f"'{e.operand.text}' is not an embedded object; ISA tests embedded objects",
                                 e.column)
            value = r.var
        self.row_ok = False
        fn = self.const(_Isa(e.class_name.casefold(), self.cq._derivation))
        return f"(not {fn}({value}))" if neg else f"{fn}({value})"

    def like(self, e: Like, neg: bool) -> str:
        if isinstance(e.operand, Literal):
            if e.operand.kind != "string":
                raise QueryError("LIKE needs a string on its left", e.column)
            return repr(compile_like(e.pattern)(str(e.operand.value)) != neg)
        r = self.prop(e.operand)
        matcher = self.const(compile_like(e.pattern))
        if e.operand.steps:
            code, t = self.walk(e.operand, r)
            if t is None or _category(t) == _STRING:
                return f"{self.const(_like_pair)}({code}, {neg}, {matcher})"
            lit = Literal(e.pattern, "string", e.pattern_column)
            return self.comparison(Comparison("=", e.operand, lit, e.column), neg)
        assert r.type is not None
        cat = _category(r.type)
        if cat != _STRING:
            if cat in (_ARRAY, _OBJECT, _REF) or any(ch in e.pattern for ch in "%_["):
                raise QueryError(f"'{e.operand.text}' is not a string; LIKE with wildcards needs a string "
                                 "property", e.column)
            # WMI: LIKE on a non-string property is "=" with the pattern as the constant
            lit = Literal(e.pattern, "string", e.pattern_column)
            return self.comparison(Comparison("=", e.operand, lit, e.column), neg)
        v = r.var
        return f"({v} is None or not {matcher}({v}))" if neg else f"({v} is not None and {matcher}({v}))"

    def comparison(self, e: Comparison, neg: bool) -> str:
        op = _NEGATE[e.op] if neg else e.op
        left, right = e.left, e.right
        if isinstance(left, Literal) and isinstance(right, Literal):
            return repr(_fold_constants(e, op))
        if isinstance(left, Literal):           # constant on the left: mirror it
            left, right = right, left
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
        assert isinstance(left, PropertyRef)
        lref = self.prop(left)
        if isinstance(right, PropertyRef):
            return self.prop_vs_prop(e, op, left, lref, right)
        lit = right
        if left.steps:
            code, t = self.walk(left, lref)
            if t is not None:
                try:
                    _convert(lit, _category(t), op, left.text)
                except _Mismatch as exc:
                    raise QueryError(str(exc), lit.column) from None
            return f"_dyn({op!r}, False, *{code}, {self.const(lit)})"
        assert lref.type is not None
        cat = _category(lref.type)
        try:
            c = _convert(lit, cat, op, f"'{left.text}'")
        except _Mismatch as exc:
            raise QueryError(str(exc), lit.column) from None
        v = lref.var
        if cat == _REF:
            hit = f"_sameref({v}, {self.const(c)})"
            return f"({v} is not None and {hit})" if op == "=" else f"({v} is None or not {hit})"
        cname = self.const(c)
        if cat == _STRING:
            val = f"_fold({v})"
        elif cat == _DATETIME:
            val = f"_dtk({v})"
        else:
            val = v
        test = f"{val} {_PYOP[op]} {cname}"
        if op == "<>":
            return f"({v} is None or {test})"
        if cat == _DATETIME and op != "=":      # a timestamp and an interval do not order: unknown
            return f"({v} is not None and _dtk({v})[0] == {cname}[0] and {test})"
        return f"({v} is not None and {test})"

    def prop_vs_prop(self, e: Comparison, op: str, left: PropertyRef, lref: _Ref, right: PropertyRef) -> str:
        rref = self.prop(right)
        if left.steps or right.steps:
            raise QueryError("an embedded property can only be compared with a constant", e.column)
        assert lref.type is not None and rref.type is not None
        lc, rc = _category(lref.type), _category(rref.type)
        for c, ref in ((lc, left), (rc, right)):
            if c in (_ARRAY, _OBJECT, _REF):
                raise QueryError(f"'{ref.text}' cannot be compared with another property", ref.column)
        if lc != rc and {lc, rc} != {_INT, _REAL}:
            raise QueryError(f"'{left.text}' ({lc}) and '{right.text}' ({rc}) do not compare", e.column)
        if lc == _BOOL and op not in ("=", "<>"):
            raise QueryError("booleans compare with = or <> only", e.column)
        fl = {"string": "_fold({})", "datetime": "_dtk({})"}.get(lc, "{}")
        a, b = lref.var, rref.var
        test = f"{fl.format(a)} {_PYOP[op]} {fl.format(b)}"
        if op == "=":
            return f"(({a} is None and {b} is None) or ({a} is not None and {b} is not None and {test}))"
        if op == "<>":
            return f"(({a} is None) != ({b} is None) or ({a} is not None and {b} is not None and {test}))"
        return f"({a} is not None and {b} is not None and {test})"

    # --- whole functions ----------------------------------------------------------------------
    def _body(self, where: Expr | None) -> str:
        if self.body is None:
            self.body = "True" if where is None else self.expr(where, False)
        return self.body

    def instance_function(self, where: Expr | None) -> Callable[[Instance], bool]:
        body = self._body(where)
        lines = ["def _match(inst):"]
        if any(not r.system for r in self.refs.values()):
            lines.append("    E = inst._elements")
        for r in self.refs.values():
            if r.system:
                lines.append(f"    {r.var} = {self.const(_system_getter(r.name, self.cq))}(inst)")
            else:
                lines.append(f"    e = E.get({r.name.lower()!r}); {r.var} = None if e is None else e.value")
        lines.append(f"    return {body}")
        return self._compile(lines, "_match")

    def row_function(self, where: Expr | None) -> Callable[[Mapping[str, Any], str], bool] | None:
        body = self._body(where)
        if not self.row_ok:
            return None
        lines = ["def _row(R, C):"]
        for r in self.refs.values():
            if r.system:        # only __CLASS reaches here
                lines.append(f"    {r.var} = C")
                continue
            lines.append(f"    {r.var} = R.get({r.name!r})")
            if r.type is not None and _category(r.type) == _DATETIME:
                lines.append(f"    if {r.var} is not None: {r.var} = _pdt({r.var})")
        lines.append(f"    return {body}")
        return self._compile(lines, "_row")

    def _compile(self, lines: list[str], name: str) -> Callable[..., bool]:
        src = "\n".join(lines)
        self.source += src + "\n"
        scope: dict[str, Any] = dict(self.consts)
        exec(compile(src, f"<query {self.cq.query.text[:60]!r}>", "exec"), scope)
        return scope[name]  # type: ignore[no-any-return]

    def key_values(self, where: Expr | None) -> dict[str, Any] | None:
        keys = [p for p in self.cls.properties.values() if int(p.flags) & _KEY]
        if where is None or not keys:
            return None
        conjuncts = where.operands if isinstance(where, And) else (where,)
        found: dict[str, Any] = {}
        self.key_exhaustive = True
        for c in conjuncts:
            if not isinstance(c, Comparison) or c.op != "=":
                self.key_exhaustive = False
                continue
            prop_side, lit_side = c.left, c.right
            if isinstance(prop_side, Literal):
                prop_side, lit_side = lit_side, prop_side
            if not isinstance(prop_side, PropertyRef) or not isinstance(lit_side, Literal) or prop_side.steps \
                    or prop_side.is_system:
                self.key_exhaustive = False
                continue
            p = self.cls.properties.get(prop_side.name)
            if p is None or not int(p.flags) & _KEY:
                self.key_exhaustive = False
                continue
            v = _exact_key_value(lit_side, p.type)
            if v is _NO_KEY:
                self.key_exhaustive = False
                continue
            if p.name in found and found[p.name] != v:
                return None
            found[p.name] = v
        if all(k.name in found for k in keys):
            return {k.name: found[k.name] for k in keys}
        return None

    def key_text(self, where: Expr | None) -> str | None:
        keys = [p for p in self.cls.properties.values() if int(p.flags) & _KEY]
        if where is None or len(keys) != 1 or keys[0].type != MIType.STRING:
            return None
        key = keys[0].name.lower()
        for c in (where.operands if isinstance(where, And) else (where,)):
            if not isinstance(c, Comparison) or c.op != "=":
                continue
            a, b = (c.left, c.right) if isinstance(c.left, PropertyRef) else (c.right, c.left)
            if isinstance(a, PropertyRef) and not a.steps and a.name.lower() == key and isinstance(b, Literal) \
                    and b.kind == "string":
                return fold(str(b.value))
        return None


_NO_KEY: Any = object()


def _exact_key_value(lit: Literal, t: MIType) -> Any:
    """The one stored key value an equality with ``lit`` can match, or _NO_KEY when there may be several
    (a string with letters matches every case variant) or none can be named."""
    cat = _category(t)
    try:
        v = _convert(lit, cat, "=", "key")
    except _Mismatch:
        return _NO_KEY
    if cat == _INT:
        if isinstance(v, float):
            return int(v) if v.is_integer() else _NO_KEY
        return v
    if cat == _STRING:
        s = str(lit.value)
        if t == MIType.CHAR16 and len(s) != 1:
            return _NO_KEY
        return s if s.upper() == s.lower() == s.casefold() else _NO_KEY
    if cat == _BOOL:
        return v
    return _NO_KEY


def _fold_constants(e: Comparison, op: str) -> bool:
    a, b = e.left, e.right
    assert isinstance(a, Literal) and isinstance(b, Literal)
    if a.kind == "null" or b.kind == "null":
        both = a.kind == b.kind
        return both if op == "=" else (not both if op == "<>" else False)
    cat = _literal_category(a)
    try:
        bv = _convert(b, cat, op, _show(a))
    except _Mismatch as exc:
        raise QueryError(str(exc), b.column) from None
    av = _convert(a, cat, op, _show(a))
    return _compare(op, av, bv)


def _is_missing_or(pair: tuple[Any, MIType | None], want_null: bool) -> bool:
    value = pair[0]
    if value is MISSING:
        return False
    return (value is None) == want_null


def _like_pair(pair: tuple[Any, MIType | None], neg: bool, matcher: Callable[[str], bool]) -> bool:
    return dynamic_like(neg, pair[0], pair[1], matcher)


@dataclass(frozen=True, slots=True)
class _Isa:
    class_name: str          # folded
    derivation: Callable[[str], tuple[str, ...]]

    def __call__(self, value: Any) -> bool:
        return isinstance(value, Instance) and self.class_name in self.derivation(value.class_name)


def _system_getter(name: str, cq: CompiledQuery) -> Callable[[Instance], Any]:
    lookup = cq._lookup

    def spelled(n: str) -> str:
        c = lookup(n) if lookup is not None else None
        return c.name if c is not None else n

    if name == "__CLASS":
        return lambda inst: inst.class_name
    if name == "__NAMESPACE":
        return lambda inst: inst.namespace
    if name == "__SERVER":
        return lambda inst: inst.server_name
    if name == "__RELPATH":
        return _relpath
    if name == "__PATH":
        def path(inst: Instance) -> str | None:
            if inst.namespace is None:
                return None
            ns = inst.namespace.replace("/", "\\")
            return f"\\\\{inst.server_name or '.'}\\{ns}:{relative_path(inst, 'wmi')}"
        return path
    if name == "__GENUS":
        return lambda inst: 2
    if name == "__PROPERTY_COUNT":
        return lambda inst: len(inst._elements)

    def chain(inst: Instance) -> list[str]:
        c = lookup(inst.class_name) if lookup is not None else None
        out = []
        while c is not None and c.superclass:
            out.append(spelled(c.superclass))
            c = lookup(c.superclass) if lookup is not None else None
        return out

    if name == "__SUPERCLASS":
        return lambda inst: next(iter(chain(inst)), None)
    if name == "__DYNASTY":
        return lambda inst: (chain(inst) or [inst.class_name])[-1]
    return chain  # __DERIVATION


def compile_query(query: SelectQuery, cls: Class, *, lookup: ClassLookup | None = None) -> CompiledQuery:
    """Check ``query`` against ``cls`` (its resolved FROM class) and compile it.

    ``lookup(name)`` finds other classes of the namespace (resolved, or None): it makes ISA and
    ``__SUPERCLASS``/``__DERIVATION`` see superclasses and lets embedded paths be checked statically.
    Raises :class:`QueryError` for what does not fit the class.
    """
    if query.class_name.casefold() != cls.name.casefold():
        raise QueryError(f"the query selects from {query.class_name}, not {cls.name}", query.class_column)
    return CompiledQuery(query, cls, lookup=lookup)


__all__ = ["MISSING", "SYSTEM_PROPERTIES", "ClassLookup", "CompiledQuery", "compile_query", "datetime_key",
           "dynamic_compare"]

"""Push a query's condition into SQLite as a pre-filter on the stored rows (a JSON object per instance).

The SQL is a *superset* test: every row the query matches passes it, and the compiled predicate then
decides on the few rows that do. So only what SQLite answers exactly as WQL does is translated — numbers
and booleans compared with constants, string equality and LIKE (SQLite folds ASCII letters only, so rows
holding one of the two non-ASCII characters that fold to ASCII pass too, and a non-ASCII constant only
needs non-ASCII values), IS [NOT] NULL — and anything else becomes "true". NOT is pushed to the
leaves first, as the compiler does, so a negated leaf is its opposite comparison.

SQLite 3.40's JSON functions reject the NaN and Infinity the row encoder writes for non-finite reals, so
rows holding those words skip the JSON test (``CASE``, evaluated lazily) and go to the predicate — for classes
whose rows can hold reals at all.
"""

from __future__ import annotations

from typing import Any

from ..cim.classes import Class
from ..cim.query import And, Comparison, Expr, IsNull, Like, Literal, Not, Or, PropertyRef
from ..cim.query.like import fold, fold_pattern
from ..cim.types import MIType

_NEGATE = {"=": "<>", "<>": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_MIRROR = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
_SAFE_INT = 2**53           # SQLite reads bigger JSON integers as reals; compare only where that is exact
_NON_ASCII = "GLOB '*[^ -~]*'"
# The only non-ASCII characters whose folded form is ASCII (see openmi.cim.query.like.fold): a row holding
# one may equal an ASCII constant without SQLite's NOCASE knowing; a test on the raw row text is cheap.
_FOLDS_TO_ASCII = "instr(data, '\u017f') OR instr(data, '\u212a')"
_TRUE = ("1", ())


_MAY_HOLD_NON_FINITE = frozenset(int(t) for t in (MIType.REAL32, MIType.REAL64, MIType.INSTANCE, MIType.REFERENCE))


def row_filter(cls: Class, where: Expr | None, stored: Class | None = None) -> tuple[str, tuple[Any, ...]] | None:
    """``(sql, params)`` to AND into a scan of ``data`` rows, or None when nothing can be pushed down.

    ``cls`` is the class the query names; ``stored`` the class whose rows are scanned (a subclass, for a
    polymorphic query). Only when the stored rows can hold reals (directly or inside embedded objects)
    does the filter first let rows with NaN/Infinity through untested."""
    if where is None:
        return None
    sql, params = _expr(cls, where, False)
    if sql == "1":
        return None
    rows_of = stored if stored is not None else cls
    if any(int(p.type) & 0x0F in _MAY_HOLD_NON_FINITE for p in rows_of.properties.values()):
        sql = f"CASE WHEN instr(data, 'NaN') OR instr(data, 'Infinity') THEN 1 ELSE ({sql}) END"
    return (f"({sql})", params)


def _expr(cls: Class, e: Expr, neg: bool) -> tuple[str, tuple[Any, ...]]:
    if isinstance(e, Not):
        return _expr(cls, e.operand, not neg)
    if isinstance(e, (And, Or)):
        conj = isinstance(e, And) != neg
        parts = [_expr(cls, x, neg) for x in e.operands]
        if conj:
            parts = [p for p in parts if p[0] != "1"]
            if not parts:
                return _TRUE
        elif any(p[0] == "1" for p in parts):
            return _TRUE
        joiner = " AND " if conj else " OR "
        return ("(" + joiner.join(p[0] for p in parts) + ")", tuple(v for p in parts for v in p[1]))
    if isinstance(e, IsNull):
        col = _column(cls, e.operand)
        if col is None:
            return _TRUE
        want_null = e.negated == neg
        return (f"({col[0]} IS NULL)" if want_null else f"({col[0]} IS NOT NULL)", ())
    if isinstance(e, Comparison):
        return _comparison(cls, e, neg)
    if isinstance(e, Like):
        return _like(cls, e, neg)
    return _TRUE


def _column(cls: Class, operand: Any) -> tuple[str, MIType] | None:
    if not isinstance(operand, PropertyRef) or operand.steps or operand.is_system:
        return None
    p = cls.properties.get(operand.name)
    if p is None or p.type.is_array:
        return None
    return f"json_extract(data, '$.\"{p.name}\"')", p.type


def _comparison(cls: Class, e: Comparison, neg: bool) -> tuple[str, tuple[Any, ...]]:
    op = _NEGATE[e.op] if neg else e.op
    left, right = e.left, e.right
    if isinstance(left, Literal):
        left, right = right, left
        op = _MIRROR.get(op, op)
    if not isinstance(right, Literal):
        return _TRUE
    col = _column(cls, left)
    if col is None:
        return _TRUE
    expr, t = col
    c = _constant(right, t)
    if c is None:
        return _TRUE
    if isinstance(c, str):                       # string equality, without case
        if op not in ("=", "<>"):
            return _TRUE
        if not c.isascii():      # only a value with non-ASCII characters folds to it
            return (f"({expr} {_NON_ASCII})", ()) if op == "=" else _TRUE
        if op == "=":
            return f"({expr} = ? COLLATE NOCASE OR {_FOLDS_TO_ASCII})", (c,)
        return f"({expr} IS NULL OR NOT ({expr} = ? COLLATE NOCASE) OR {_FOLDS_TO_ASCII})", (c,)
    if op == "<>":
        return f"({expr} IS NULL OR {expr} <> ?)", (c,)
    return f"({expr} {op} ?)", (c,)


def _constant(lit: Literal, t: MIType) -> Any:
    """The constant as SQLite compares it with the stored JSON value, or None when it cannot."""
    v = lit.value
    if t == MIType.STRING:
        return fold(v) if lit.kind == "string" and isinstance(v, str) else None
    if t == MIType.BOOLEAN:
        if lit.kind == "boolean":
            return 1 if v else 0
        if lit.kind == "integer" and v in (0, 1, -1):
            return 1 if v else 0
        return None
    if t.is_integer or t in (MIType.REAL32, MIType.REAL64):
        if lit.kind in ("integer", "real") and isinstance(v, (int, float)) and not isinstance(v, bool) \
                and abs(v) < _SAFE_INT:
            return v
        return None
    return None


def _like(cls: Class, e: Like, neg: bool) -> tuple[str, tuple[Any, ...]]:
    col = _column(cls, e.operand)
    if col is None or col[1] != MIType.STRING or "[" in e.pattern:
        return _TRUE
    expr = col[0]
    pattern = fold_pattern(e.pattern)
    # SQLite's LIKE folds ASCII letters only: rows that may fold otherwise go to the predicate either way
    guard = _FOLDS_TO_ASCII if pattern.isascii() else f"{expr} {_NON_ASCII}"
    if neg:
        return f"({expr} IS NULL OR NOT ({expr} LIKE ?) OR {guard})", (pattern,)
    return f"({expr} LIKE ? OR {guard})", (pattern,)

"""WQL and CQL: parse a query into a typed tree, check it against a class, compile it to a predicate.

Sans-I/O and reusable by the client, the engine and the subscription machinery::

    from openmi.cim.query import parse, compile_query, QueryError

    q = parse("SELECT Name FROM Sample_Person WHERE Id > 5 AND Name LIKE 'A%'", "WQL")
    cq = compile_query(q, person_class, lookup=lambda name: classes.get(name))
    hits = [cq.project(i) for i in instances if cq.matches(i)]

- :func:`parse` (text, dialect) → :class:`SelectQuery` (data and event queries) or :class:`AssocQuery`
  (``ASSOCIATORS OF`` / ``REFERENCES OF``); :class:`QueryError` (MI_RESULT_INVALID_QUERY, message
  ``column N: …``) for any bad text, never another exception.
- :func:`compile_query` (query, class) → :class:`CompiledQuery`: ``matches(instance)``, ``row_predicate``,
  ``key_values``, ``properties`` and ``project(instance)``.
- :func:`dialect_name` maps MI and WS-Man dialect names to "WQL"/"CQL"/"selectorFilter" (None if unknown).
- :func:`like` / :func:`compile_like`: WQL LIKE matching, linear time.
"""

from __future__ import annotations

import functools

from .compiler import SYSTEM_PROPERTIES, ClassLookup, CompiledQuery, compile_query
from .errors import QueryError
from .lexer import MAX_QUERY_LENGTH
from .like import compile_like, like
from .parser import MAX_NESTING, parse
from .tree import (
    And,
    AssocQuery,
    Comparison,
    Expr,
    Isa,
    IsNull,
    Like,
    Literal,
    Not,
    Operand,
    Or,
    PathStep,
    PropertyRef,
    Query,
    SelectQuery,
)

# mi.h's dialect names (MI_QUERY_DIALECT_*)
MI_QUERY_DIALECT_WQL = "WQL"
MI_QUERY_DIALECT_CQL = "CQL"
MI_QUERY_DIALECT_SELECTOR = "selectorFilter"

# WS-Management's dialect URIs for the same
WSMAN_DIALECT_WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
WSMAN_DIALECT_CQL = "http://schemas.dmtf.org/wbem/cql/1/dsp0202.pdf"
WSMAN_DIALECT_SELECTOR = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"

_DIALECTS = {
    "wql": MI_QUERY_DIALECT_WQL, WSMAN_DIALECT_WQL.lower(): MI_QUERY_DIALECT_WQL,
    "cql": MI_QUERY_DIALECT_CQL, "dmtf:cql": MI_QUERY_DIALECT_CQL, WSMAN_DIALECT_CQL.lower(): MI_QUERY_DIALECT_CQL,
    "selectorfilter": MI_QUERY_DIALECT_SELECTOR, WSMAN_DIALECT_SELECTOR.lower(): MI_QUERY_DIALECT_SELECTOR,
}


def dialect_name(dialect: str | None) -> str | None:
    """"WQL", "CQL" or "selectorFilter" for an MI or WS-Man dialect name (any case), else None."""
    if not isinstance(dialect, str):
        return None
    return _DIALECTS.get(dialect.strip().lower())


def asks_for_classes(query: object, dialect: object = "WQL") -> bool:
    """Whether a query's results are class definitions rather than instances: ``ASSOCIATORS OF`` /
    ``REFERENCES OF`` with ``ClassDefsOnly`` or ``SchemaOnly``. Any other text (a SELECT, a query that
    does not parse) is an instance query; the engine reports what is wrong with it."""
    if not isinstance(query, str) or not isinstance(dialect, str):
        return False
    head = query.lstrip()[:11].upper()
    if not (head.startswith("ASSOCIATORS") or head.startswith("REFERENCES")):
        return False
    return _asks_for_classes(query, dialect_name(dialect) or "WQL")


@functools.lru_cache(maxsize=256)
def _asks_for_classes(query: str, dialect: str) -> bool:
    try:
        q = parse(query, dialect)
    except QueryError:
        return False
    return isinstance(q, AssocQuery) and (q.class_defs_only or q.schema_only)


__all__ = [
    "MAX_NESTING",
    "MAX_QUERY_LENGTH",
    "MI_QUERY_DIALECT_CQL",
    "MI_QUERY_DIALECT_SELECTOR",
    "MI_QUERY_DIALECT_WQL",
    "SYSTEM_PROPERTIES",
    "WSMAN_DIALECT_CQL",
    "WSMAN_DIALECT_SELECTOR",
    "WSMAN_DIALECT_WQL",
    "And",
    "AssocQuery",
    "ClassLookup",
    "Comparison",
    "CompiledQuery",
    "Expr",
    "IsNull",
    "Isa",
    "Like",
    "Literal",
    "Not",
    "Operand",
    "Or",
    "PathStep",
    "PropertyRef",
    "Query",
    "QueryError",
    "SelectQuery",
    "asks_for_classes",
    "compile_like",
    "compile_query",
    "dialect_name",
    "like",
    "parse",
]

"""The typed tree a WQL/CQL query parses into: plain frozen data, with the column of every token.

A data query (``SELECT … FROM … WHERE …``) and an event query (``… WITHIN n … GROUP WITHIN n BY … HAVING …``)
are both a :class:`SelectQuery`; ``ASSOCIATORS OF`` / ``REFERENCES OF`` are an :class:`AssocQuery`. The
WHERE clause is an :data:`Expr`: AND/OR hold two or more operands (flattened), NOT one, and the leaves are
comparisons, LIKE, IS [NOT] NULL and ISA tests on :class:`PropertyRef` and :class:`Literal` operands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as _Lit


@dataclass(frozen=True, slots=True)
class PathStep:
    """One ``.Name`` (or ``.Class::Name``) step into an embedded instance."""

    name: str
    scope: str | None = None   # the ``Class`` of ``Class::Name``: the embedded instance must be one
    column: int = 0


@dataclass(frozen=True, slots=True)
class PropertyRef:
    """A property (``Name``, ``__CLASS``) and the steps into embedded instances (``Prop.Sub``)."""

    name: str
    column: int
    steps: tuple[PathStep, ...] = ()

    @property
    def text(self) -> str:
        out = self.name
        for s in self.steps:
            out += f".{s.scope}::{s.name}" if s.scope else f".{s.name}"
        return out

    @property
    def is_system(self) -> bool:
        return self.name.startswith("__")


LiteralKind = _Lit["string", "integer", "real", "boolean", "null"]


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: ``str``, ``int``, ``float``, ``bool`` or ``None`` (NULL), with the kind it was written as."""

    value: str | int | float | bool | None
    kind: LiteralKind
    column: int


Operand = PropertyRef | Literal

ComparisonOp = _Lit["=", "<>", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Comparison:
    """``left op right``; ``!=`` is written ``<>`` in the tree."""

    op: ComparisonOp
    left: Operand
    right: Operand
    column: int          # of the operator


@dataclass(frozen=True, slots=True)
class Like:
    """``operand LIKE 'pattern'`` (WQL only; ``%`` ``_`` ``[set]`` ``[^set]`` ``[a-z]``)."""

    operand: Operand
    pattern: str
    column: int
    pattern_column: int


@dataclass(frozen=True, slots=True)
class IsNull:
    """``operand IS [NOT] NULL`` (also what ``= NULL`` and ``<> NULL`` parse into)."""

    operand: Operand
    negated: bool
    column: int


@dataclass(frozen=True, slots=True)
class Isa:
    """``operand ISA Class`` / ``ISA "Class"``: the embedded instance is of that class or a subclass."""

    operand: PropertyRef
    class_name: str
    column: int
    class_column: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    column: int


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


Expr = Comparison | Like | IsNull | Isa | Not | And | Or


@dataclass(frozen=True, slots=True)
class SelectQuery:
    """``SELECT props FROM class [WITHIN n] [WHERE expr] [GROUP WITHIN n [BY props] [HAVING expr]]``.

    ``properties`` is ``None`` for ``SELECT *``. ``within``/``group_within`` are seconds.
    """

    dialect: str                       # "WQL" or "CQL"
    text: str
    properties: tuple[PropertyRef, ...] | None
    class_name: str
    class_column: int
    where: Expr | None = None
    within: float | None = None
    group_within: float | None = None
    group_by: tuple[PropertyRef, ...] = ()
    having: Expr | None = None

    @property
    def is_event_query(self) -> bool:
        return self.within is not None or self.group_within is not None


@dataclass(frozen=True, slots=True)
class AssocQuery:
    """``ASSOCIATORS OF {path} WHERE …`` or ``REFERENCES OF {path} WHERE …`` (WMI's keyword form).

    Values are ``None`` when the keyword was not given. ``object_path`` is the text between the braces.
    """

    dialect: str
    text: str
    kind: _Lit["associators", "references"]
    object_path: str
    path_column: int
    assoc_class: str | None = None
    result_class: str | None = None
    role: str | None = None
    result_role: str | None = None
    required_qualifier: str | None = None
    required_assoc_qualifier: str | None = None
    class_defs_only: bool = False
    keys_only: bool = False
    schema_only: bool = False


Query = SelectQuery | AssocQuery

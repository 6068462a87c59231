"""The WQL/CQL parser: tokens → :mod:`tree` (recursive descent, with a bound on nesting).

Precedence is WMI's and OMI's: NOT binds tightest, then AND, then OR (``NOT A > 1 OR B < 1 AND C > 3`` is
``(NOT (A > 1)) OR ((B < 1) AND (C > 3))``). CQL is the same language without LIKE, event clauses or
``ASSOCIATORS OF``/``REFERENCES OF`` (OMI's CQL subset). Every failure is a :class:`QueryError` naming
the column; nothing else escapes, whatever the text.
"""

from __future__ import annotations

from typing import NoReturn

from .errors import QueryError
from .lexer import Token, tokenize
from .tree import (
    And,
    AssocQuery,
    Comparison,
    ComparisonOp,
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

# How deep parentheses and NOTs may nest; far beyond any real query, far below Python's recursion limit.
MAX_NESTING = 100
# WQL's reserved words: none of them can name a class or property.
RESERVED = frozenset({"SELECT", "FROM", "WHERE", "NOT", "AND", "OR", "NULL", "TRUE", "FALSE", "LIKE", "ISA", "IS"})
_COMPARISONS = frozenset({"=", "<>", "<", "<=", ">", ">="})
_DIALECTS = {"WQL": "WQL", "CQL": "CQL", "DMTF:CQL": "CQL"}

# ASSOCIATORS OF / REFERENCES OF keywords: name → (field, takes "= value")
_ASSOC_KEYWORDS: dict[str, tuple[str, bool]] = {
    "ASSOCCLASS": ("assoc_class", True),
    "RESULTCLASS": ("result_class", True),
    "ROLE": ("role", True),
    "RESULTROLE": ("result_role", True),
    "REQUIREDQUALIFIER": ("required_qualifier", True),
    "REQUIREDASSOCQUALIFIER": ("required_assoc_qualifier", True),
    "CLASSDEFSONLY": ("class_defs_only", False),
    "KEYSONLY": ("keys_only", False),
    "SCHEMAONLY": ("schema_only", False),
}
_NOT_FOR_REFERENCES = frozenset({"ASSOCCLASS", "RESULTROLE", "REQUIREDASSOCQUALIFIER"})


def parse(text: str, dialect: str = "WQL") -> Query:
    """Parse a WQL or CQL query (``dialect`` "WQL", "CQL" or "DMTF:CQL", any case).

    Raises :class:`QueryError` (INVALID_QUERY) for any text that is not a query, and ``ValueError`` for
    a dialect that is neither (callers map that to QUERY_LANGUAGE_NOT_SUPPORTED first).
    """
    d = _DIALECTS.get(dialect.upper()) if isinstance(dialect, str) else None
    if d is None:
        raise ValueError(f"unknown query dialect {dialect!r}")
    if not isinstance(text, str):
        raise QueryError("the query must be text")
    return _Parser(text, d).query()


class _Parser:
    def __init__(self, text: str, dialect: str) -> None:
        self.text = text
        self.dialect = dialect
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    # --- token helpers ---------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        t = self.tokens[self.pos]
        if t.kind != "end":
            self.pos += 1
        return t

    def at_end(self) -> bool:
        return self.tokens[self.pos].kind == "end"

    def at_word(self, word: str) -> bool:
        return self.tokens[self.pos].word == word

    def at_op(self, op: str) -> bool:
        t = self.tokens[self.pos]
        return t.kind == "op" and t.text == op

    def expect_word(self, word: str) -> Token:
        if not self.at_word(word):
            self.fail(f"expected {word}")
        return self.advance()

    def expect_op(self, op: str) -> Token:
        if not self.at_op(op):
            self.fail(f"expected '{op}'")
        return self.advance()

    def fail(self, what: str) -> NoReturn:
        raise QueryError(f"{what}, found {_describe(self.tok)}", self.tok.column)

    def name(self, what: str) -> Token:
        """An identifier that is not a reserved word."""
        t = self.tokens[self.pos]
        if t.kind != "ident" or t.word in RESERVED:
            self.fail(f"expected {what}")
        self.pos += 1
        return t

    # --- statements --------------------------------------------------------------------------
    def query(self) -> Query:
        if self.at_word("SELECT"):
            q: Query = self.select()
        elif self.at_word("ASSOCIATORS") or self.at_word("REFERENCES"):
            if self.dialect != "WQL":
                raise QueryError(f"{self.tok.text.upper()} OF is WQL, not {self.dialect}", self.tok.column)
            q = self.assoc()
        else:
            self.fail("expected SELECT" + (", ASSOCIATORS OF or REFERENCES OF" if self.dialect == "WQL" else ""))
        if self.tok.kind != "end":
            self.fail("expected the end of the query")
        return q

    def select(self) -> SelectQuery:
        self.advance()
        props: tuple[PropertyRef, ...] | None
        if self.at_op("*"):
            self.advance()
            props = None
        else:
            items = [self.property_ref()]
            while self.at_op(","):
                self.advance()
                items.append(self.property_ref())
            props = tuple(items)
        self.expect_word("FROM")
        cls = self.name("a class name")
        if self.at_op(","):
            raise QueryError("a query selects from one class only", self.tok.column)
        within = group_within = None
        group_by: tuple[PropertyRef, ...] = ()
        where = having = None
        if self.at_word("WITHIN"):
            within = self.interval()
        if self.at_word("WHERE"):
            self.advance()
            where = self.expression()
        if self.at_word("GROUP"):
            self.event_only()
            self.advance()
            if not self.at_word("WITHIN"):
                self.fail("expected WITHIN after GROUP")
            group_within = self.interval()
            if self.at_word("BY"):
                self.advance()
                items = [self.property_ref()]
                while self.at_op(","):
                    self.advance()
                    items.append(self.property_ref())
                group_by = tuple(items)
            if self.at_word("HAVING"):
                self.advance()
                having = self.expression()
        elif self.at_word("HAVING") or self.at_word("BY"):
            raise QueryError(f"{self.tok.text.upper()} needs GROUP WITHIN before it", self.tok.column)
        return SelectQuery(self.dialect, self.text, props, cls.text, cls.column, where, within, group_within,
                           group_by, having)

    def event_only(self) -> None:
        if self.dialect != "WQL":
            raise QueryError(f"{self.tok.text.upper()} is WQL event-query syntax, not {self.dialect}", self.tok.column)

    def interval(self) -> float:
        """``WITHIN n``: seconds, a positive integer or real."""
        self.event_only()
        self.advance()
        t = self.tok
        if t.kind not in ("integer", "real") or t.value is None:
            self.fail("expected a number of seconds after WITHIN")
        seconds = float(t.value)
        if not 0 < seconds <= 4294967.295:
            raise QueryError(f"WITHIN {t.text}: the interval must be more than 0 and at most 4294967.295 "
                             "seconds", t.column)
        self.advance()
        return seconds

    def assoc(self) -> AssocQuery:
        kind_tok = self.advance()
        kind = "associators" if kind_tok.is_word("ASSOCIATORS") else "references"
        self.expect_word("OF")
        path = self.tok
        if path.kind != "path":
            self.fail("expected an object path in braces, {Class.Key=\"value\"}")
        if not path.text:
            raise QueryError("the object path between the braces is empty", path.column)
        self.advance()
        fields: dict[str, str | bool] = {}
        if self.at_word("WHERE"):
            self.advance()
            if self.at_end():
                self.fail("expected a keyword after WHERE")
            while not self.at_end():
                t = self.tok
                word = t.text.upper() if t.kind == "ident" else ""
                spec = _ASSOC_KEYWORDS.get(word)
                if spec is None or (kind == "references" and word in _NOT_FOR_REFERENCES):
                    if t.is_word("AND") or t.is_word("OR"):
                        raise QueryError(f"{word}: the keywords of {kind.upper()} OF are separated by spaces, "
                                         "not AND/OR", t.column)
                    self.fail(f"expected a {kind.upper()} OF keyword")
                field, takes_value = spec
                if field in fields:
                    raise QueryError(f"{t.text} is given twice", t.column)
                self.advance()
                if takes_value:
                    if self.tok.kind == "op" and self.tok.text != "=":
                        raise QueryError(f"{t.text} takes '=' only, not '{self.tok.text}'", self.tok.column)
                    self.expect_op("=")
                    fields[field] = self.name(f"a name after {t.text} =").text
                else:
                    fields[field] = True
            cols = {k: True for k in fields}
            if cols.get("class_defs_only") and "result_class" in cols:
                raise QueryError("ClassDefsOnly and ResultClass cannot be used together", kind_tok.column)
            if cols.get("class_defs_only") and cols.get("keys_only"):
                raise QueryError("ClassDefsOnly and KeysOnly cannot be used together", kind_tok.column)
            if cols.get("schema_only") and cols.get("class_defs_only"):
                raise QueryError("SchemaOnly and ClassDefsOnly cannot be used together", kind_tok.column)
        return AssocQuery(self.dialect, self.text, kind, path.text, path.column, **fields)  # type: ignore[arg-type]

    # --- expressions ---------------------------------------------------------------------------
    def expression(self) -> Expr:
        items = [self.conjunction()]
        while self.at_word("OR"):
            self.advance()
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Expr:
        items = [self.unary()]
        while self.at_word("AND"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Expr:
        t = self.tok
        if t.is_word("NOT") or self.at_op("("):
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise QueryError(f"the condition nests deeper than {MAX_NESTING} levels", t.column)
            self.advance()
            if t.is_word("NOT"):
                e: Expr = Not(self.unary(), t.column)
            else:
                e = self.expression()
                self.expect_op(")")
            self.depth -= 1
            return e
        return self.predicate()

    def predicate(self) -> Expr:
        left = self.operand()
        t = self.tok
        if t.kind == "op" and t.text in _COMPARISONS:
            self.advance()
            right = self.operand()
            op: ComparisonOp = t.text  # type: ignore[assignment]
            for side, other in ((left, right), (right, left)):
                if isinstance(side, Literal) and side.kind == "null" and not (
                        isinstance(other, Literal) and other.kind == "null"):
                    if op == "=":
                        return IsNull(other, False, t.column)
                    if op == "<>":
                        return IsNull(other, True, t.column)
                    raise QueryError(f"NULL cannot be compared with '{op}'; use = NULL, <> NULL or IS [NOT] NULL",
                                     t.column)
            if op not in ("=", "<>") and (_is_null(left) or _is_null(right)):
                raise QueryError(f"NULL cannot be compared with '{op}'", t.column)
            return Comparison(op, left, right, t.column)
        if t.is_word("IS"):
            self.advance()
            negated = False
            if self.at_word("NOT"):
                self.advance()
                negated = True
            if not self.at_word("NULL"):
                self.fail("expected NULL after IS" + (" NOT" if negated else ""))
            self.advance()
            return IsNull(left, negated, t.column)
        if t.is_word("LIKE") or (t.is_word("NOT") and self.tokens[self.pos + 1].is_word("LIKE")):
            negated = t.is_word("NOT")
            if negated:
                self.advance()
            like = self.advance()
            if self.dialect != "WQL":
                raise QueryError(f"LIKE is not supported in {self.dialect}", like.column)
            pat = self.tok
            if pat.kind != "string":
                self.fail("expected a quoted pattern after LIKE")
            self.advance()
            e: Expr = Like(left, pat.text, like.column, pat.column)
            return Not(e, t.column) if negated else e
        if t.is_word("ISA"):
            self.advance()
            if not isinstance(left, PropertyRef):
                raise QueryError("ISA needs a property on its left", t.column)
            c = self.tok
            if c.kind == "string":
                if not c.text or not all(ch == "_" or ch.isalnum() for ch in c.text):
                    raise QueryError(f"{c.text!r} is not a class name", c.column)
                self.advance()
                return Isa(left, c.text, t.column, c.column)
            name = self.name("a class name after ISA")
            return Isa(left, name.text, t.column, name.column)
        self.fail("expected a comparison operator, LIKE, IS or ISA")

    def operand(self) -> Operand:
        t = self.tok
        if t.kind == "string":
            self.advance()
            return Literal(t.text, "string", t.column)
        if t.kind == "integer":
            self.advance()
            return Literal(t.value, "integer", t.column)
        if t.kind == "real":
            self.advance()
            return Literal(t.value, "real", t.column)
        if t.is_word("TRUE") or t.is_word("FALSE"):
            self.advance()
            return Literal(t.is_word("TRUE"), "boolean", t.column)
        if t.is_word("NULL"):
            self.advance()
            return Literal(None, "null", t.column)
        if t.kind == "ident" and t.word not in RESERVED:
            return self.property_ref()
        self.fail("expected a property or a constant")

    def property_ref(self) -> PropertyRef:
        first = self.name("a property name")
        steps: list[PathStep] = []
        while self.at_op("."):
            self.advance()
            part = self.name("a property name after '.'")
            if self.at_op("::"):
                self.advance()
                sub = self.name("a property name after '::'")
                steps.append(PathStep(sub.text, part.text, part.column))
            else:
                steps.append(PathStep(part.text, None, part.column))
            if len(steps) > MAX_NESTING:
                raise QueryError(f"the property path is deeper than {MAX_NESTING} levels", part.column)
        return PropertyRef(first.text, first.column, tuple(steps))


def _is_null(o: Operand) -> bool:
    return isinstance(o, Literal) and o.kind == "null"


def _describe(t: Token) -> str:
    if t.kind == "end":
        return "the end of the query"
    if t.kind == "string":
        return f"the string {t.text!r}"
    if t.kind == "path":
        return "an object path in braces"
    return f"'{t.text}'"

"""Property tests: whatever the text, the parser raises only QueryError, and compiled queries never crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from openmi import Class, Instance, MIType, Property
from openmi.cim.query import QueryError, SelectQuery, compile_query, parse

WORDS = ["SELECT", "*", "FROM", "WHERE", "NOT", "AND", "OR", "(", ")", "=", "<>", "!=", "<", ">=", "LIKE", "IS",
         "NULL", "TRUE", "FALSE", "ISA", ".", "::", ",", "'a%'", '"x\\"y"', "1", "-2.5", "A", "B", "C", "X",
         "WITHIN", "GROUP", "BY", "HAVING", "ASSOCIATORS", "REFERENCES", "OF", "{X.A=1}", "KeysOnly", "Role",
         "__CLASS", "'", "{", "[", "1e", "\\"]

CLS = Class("X", properties=[Property("A", MIType.SINT32, key=True), Property("B", MIType.STRING),
                             Property("C", MIType.BOOLEAN), Property("D", MIType.INSTANCE),
                             Property("E", MIType.DATETIME), Property("F", MIType.REAL64)])
INST = Instance("X", {"A": 1, "B": "b", "C": True, "D": Instance("Y", {"Q": 1})}, cls=CLS)


def _try(text: str, dialect: str) -> None:
    try:
        q = parse(text, dialect)
    except QueryError as exc:
        assert exc.message
        return
    if isinstance(q, SelectQuery) and q.class_name == "X":
        try:
            c = compile_query(q, CLS)
        except QueryError:
            return
        assert c.matches(INST) in (True, False)


@settings(max_examples=600, deadline=None)
@given(st.text(max_size=120), st.sampled_from(["WQL", "CQL"]))
def test_any_text_raises_only_query_error(text: str, dialect: str) -> None:
    _try(text, dialect)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=25), st.sampled_from(["WQL", "CQL"]))
def test_token_soup_raises_only_query_error(words: list[str], dialect: str) -> None:
    _try("SELECT * FROM X WHERE " + " ".join(words), dialect)
    _try(" ".join(words), dialect)

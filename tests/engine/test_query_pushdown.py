"""The repository's SQL pre-filter never changes an answer: queries over stored rows give exactly what the
compiled predicate gives over the same instances, for awkward values (NULL, NaN, infinities, non-ASCII
text whose case SQLite cannot fold, big integers, booleans)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import openmi
from openmi import MIType
from openmi.cim.query import compile_query, parse
from openmi.engine.querysql import row_filter

CLS = openmi.Class("Sample_Mix", properties=[
    openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("S", MIType.STRING),
    openmi.Property("N", MIType.SINT64), openmi.Property("U", MIType.UINT64), openmi.Property("R", MIType.REAL64),
    openmi.Property("B", MIType.BOOLEAN), openmi.Property("D", MIType.DATETIME)])

STRINGS = [None, "", "abc", "ABC", "Straße", "STRASSE", "ÉCOLE", "école", "\u212a", "k", "a_b", "a%b", "NaN",
           "Infinity", "x'y", 'q"uote', "\u212aelvin", "Kelvin", "ſtrasse"]
NUMBERS = [None, 0, 1, -1, 7, 2**53 + 1, -(2**62)]
UNSIGNED = [None, 0, 5, 2**64 - 1, 2**53]
REALS = [None, 0.0, 1.5, -2.25, math.nan, math.inf, -math.inf, 7.0]
BOOLS = [None, True, False]

ROWS = list(itertools.islice(zip(itertools.cycle(STRINGS), itertools.cycle(NUMBERS), itertools.cycle(UNSIGNED),
                                 itertools.cycle(REALS), itertools.cycle(BOOLS)), 120))


@pytest.fixture(scope="module")
def mixed() -> tuple[openmi.Session, list[openmi.Instance]]:
    srv = openmi.Server(":memory:")
    srv.define_class("root/cimv2", CLS)
    app = openmi.Application()
    s = app.new_session(server=srv)
    for i, (st_, n, u, r, b) in enumerate(ROWS):
        inst = openmi.Instance("Sample_Mix", {"Id": i}, cls=CLS)
        for name, v in (("S", st_), ("N", n), ("U", u), ("R", r), ("B", b)):
            if v is not None:
                inst[name] = v
        s.create(inst)
    everything = s.enumerate("Sample_Mix")
    yield s, everything
    app.close()
    srv.close()


LEAVES = [
    "S = 'abc'", "S = 'strasse'", "S = 'École'", "S = 'k'", "S = 'KELVIN'", "S LIKE 'kel%'", "S <> 'kelvin'",
    "S LIKE 'É%'", "S = 'straße'", "S <> 'abc'", "S LIKE 'a%'", "S LIKE '%SSE'",
    "S LIKE 'a_b'", "S LIKE '%[%]%'", "NOT S LIKE 'A%'", "S IS NULL", "S IS NOT NULL", "S = 'nan'",
    "N = 7", "N > 0", "N <= -1", "N <> 1", "N = 9007199254740993", "U > 4", "U = 18446744073709551615",
    "R > 1", "R = 7", "R < 0", "R <> 1.5", "R IS NULL", "B = TRUE", "B = 0", "B <> 1", "N = 7.0", "R = '1.5'",
    "D IS NULL", "S < 'b'",
]
QUERIES = [*LEAVES, *(f"NOT ({a})" for a in LEAVES),
           *(f"{a} AND {b}" for a, b in zip(LEAVES, LEAVES[5:])),
           *(f"({a}) OR NOT ({b})" for a, b in zip(LEAVES, LEAVES[3:]))]


def ids(xs: list[openmi.Instance]) -> list[int]:
    return sorted(x["Id"] for x in xs)


@pytest.mark.parametrize("where", QUERIES)
def test_pushdown_agrees_with_the_predicate(mixed: tuple[openmi.Session, list[openmi.Instance]], where: str) -> None:
    s, everything = mixed
    q = parse(f"SELECT * FROM Sample_Mix WHERE {where}")
    cq = compile_query(q, CLS)  # type: ignore[arg-type]
    expected = ids([i for i in everything if cq.matches(i)])
    assert ids(s.query(f"SELECT * FROM Sample_Mix WHERE {where}")) == expected


def test_what_is_pushed_down() -> None:
    def sql(where: str) -> str | None:
        f = row_filter(CLS, parse(f"SELECT * FROM Sample_Mix WHERE {where}").where)  # type: ignore[union-attr]
        return None if f is None else f[0]

    assert "json_extract(data, '$.\"N\"') = ?" in (sql("N = 7") or "")
    assert sql("S < 'b'") is None                    # string ordering: the predicate alone
    assert sql("D IS NULL") is not None
    assert sql("S < 'b' OR N = 1") is None           # one side unknown: the whole OR is
    assert sql("S < 'b' AND N = 1") is not None      # one side known: AND keeps it
    assert sql("N = 36028797018963968") is None      # beyond 2**53: SQLite would compare reals


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(LEAVES), min_size=1, max_size=4), st.lists(st.sampled_from(["AND", "OR"]),
                                                                           min_size=3, max_size=3),
       st.lists(st.booleans(), min_size=4, max_size=4))
def test_random_combinations(mixed: tuple[openmi.Session, list[openmi.Instance]], leaves: list[str],
                             joins: list[str], nots: list[bool]) -> None:
    s, everything = mixed
    where = ""
    for i, leaf in enumerate(leaves):
        part = f"NOT ({leaf})" if nots[i] else f"({leaf})"
        where = part if not where else f"{where} {joins[i - 1]} {part}"
    cq = compile_query(parse(f"SELECT * FROM Sample_Mix WHERE {where}"), CLS)  # type: ignore[arg-type]
    assert ids(s.query(f"SELECT * FROM Sample_Mix WHERE {where}")) == ids([i for i in everything if cq.matches(i)])


def test_the_awkward_rows_are_found(mixed: tuple[openmi.Session, list[openmi.Instance]]) -> None:
    s, _ = mixed
    # case folds a character at a time (as WMI compares): ß stays ß, ſ is s, the Kelvin sign is k
    assert {i["S"] for i in s.query("SELECT * FROM Sample_Mix WHERE S = 'strasse'")} == {"STRASSE", "ſtrasse"}
    assert {i["S"] for i in s.query("SELECT * FROM Sample_Mix WHERE S = 'STRAßE'")} == {"Straße"}
    assert {i["S"] for i in s.query("SELECT * FROM Sample_Mix WHERE S = 'école'")} == {"ÉCOLE", "école"}
    assert {i["S"] for i in s.query("SELECT * FROM Sample_Mix WHERE S = 'KELVIN'")} == {"Kelvin", "\u212aelvin"}
    assert {i["S"] for i in s.query("SELECT * FROM Sample_Mix WHERE S = 'k'")} == {"k", "\u212a"}
    assert {i["S"] for i in s.query("SELECT * FROM Sample_Mix WHERE S LIKE '%SSE'")} == {"STRASSE", "ſtrasse"}
    assert {i["S"] for i in s.query("SELECT * FROM Sample_Mix WHERE S LIKE 'stra_e'")} == {"Straße"}
    assert {i["N"] for i in s.query("SELECT * FROM Sample_Mix WHERE N = 9007199254740993")} == {2**53 + 1}
    assert {i["U"] for i in s.query("SELECT * FROM Sample_Mix WHERE U = 18446744073709551615")} == {2**64 - 1}
    assert {i["R"] for i in s.query("SELECT * FROM Sample_Mix WHERE R > 1")} == {1.5, math.inf, 7.0}
    assert len(s.query("SELECT * FROM Sample_Mix WHERE R <> 1.5")) > 0


def test_subclass_rows_with_non_finite_reals() -> None:
    """The base class has no reals, a subclass does: its rows (NaN in their JSON) still filter right."""
    srv = openmi.Server(":memory:")
    try:
        srv.define_class("root/cimv2", openmi.Class("Sample_Base", properties=[
            openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("S", MIType.STRING)]))
        srv.define_class("root/cimv2", openmi.Class("Sample_Sub", "Sample_Base", [openmi.Property("R", MIType.REAL64)]))
        with openmi.Application() as app:
            s = app.new_session(server=srv)
            s.create(openmi.Instance("Sample_Base", {"Id": 1, "S": "abc"}))
            s.create(openmi.Instance("Sample_Sub", {"Id": 2, "S": "ABC", "R": math.nan}))
            s.create(openmi.Instance("Sample_Sub", {"Id": 3, "S": "xyz", "R": math.inf}))
            assert ids(s.query("SELECT * FROM Sample_Base WHERE S = 'abc'")) == [1, 2]
            assert ids(s.query("SELECT * FROM Sample_Base WHERE S <> 'abc'")) == [3]
            assert ids(s.query("SELECT * FROM Sample_Sub WHERE R > 1")) == [3]
    finally:
        srv.close()

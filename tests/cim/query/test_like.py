"""WQL LIKE: OMI's TestLike vectors (spec §1.6), WMI's bracket rules, and linear time on hostile patterns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openmi.cim.query import compile_like, like

VECTORS = [
    ("", "", True), ("", "x", False), ("_", "Y", True), ("_", "xx", False),
    ("_%_%_%%%%", "abc", True), ("_%_%_%%%%", "xyzp", True), ("_%_%_%%%%", "___", True),
    ("_%_%_%%%%", "xx", False), ("_%_%_%%%%", "", False),
    ("%", "", True), ("x", "xx", False), ("[xy]", "y", True), ("[xy]", "xy", False),
    ("[^xy]", "z", True), ("[^xy]", "x", False), ("[c-e]", "d", True), ("[c-e]", "f", False),
    ("[^c-e]", "B", True), ("foo%", "foox", True), ("foo%", "xfoo", False), ("%foo", "xfoo", True),
    ("%foo%", "xfoox", True), ("%foo%", "xfox", False), ("foo%bat", "fooxbat", True),
    ("foo%bat", "foobatx", False),
    # case-insensitive, WMI brackets, no escape character
    ("S_R%", "string", True), ("%END", "Begin_%End", True), ("begin_%END", "Begin_%End", True),
    ("%[_][_]%", "__CLASS", True), ("%[_][_]%", "_CLASS", False), ("[%]", "%", True), ("[[]", "[", True),
    ("[a=f]", "C", True), ("[a=f]", "g", False), ("[^]", "^", True), ("[^]", "a", False),
    ("[-a]", "-", True), ("[a-]", "-", True), ("x[ab", "xa", False), ("x[^ab", "xz", True),
    ("x[^ab", "x", False), ("a%b%c", "aXbYc", True), ("a%b%c", "acb", False), ("%b_", "abc", True),
    ("ÄB%", "äbc", True), ("%\\%", "C:\\dir\\", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), VECTORS)
def test_like_vectors(pattern: str, text: str, expected: bool) -> None:
    assert like(pattern, text) is expected


def test_no_blowup_on_hostile_patterns() -> None:
    # OMI's own stress case: a 40-term a%a%… pattern against 54 "a"s, plus bigger ones; each is a few
    # thousand steps at most, so the test finishes at once or the matcher is exponential.
    pat = "a%" * 40 + "b"
    assert not like(pat, "a" * 54)
    m = compile_like("%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%a%_b")
    assert not m("a" * 5000)
    assert m("a" * 5000 + "xb")
    m = compile_like("%[a]%[a]%[a]%[a]%[a]%[a]%[a]%[a]%[a]%[a]%[a]%[a]%c")
    assert not m("a" * 3000)


def _reference(pattern: str, text: str) -> bool:
    """A plainly recursive (exponential, fine for short inputs) matcher with the same rules, to check the
    linear-time one against."""
    from openmi.cim.query.like import _items, _Set

    items = _items(pattern)

    def fold(c: str) -> str:
        f = c.casefold()
        return f if len(f) == 1 else c.lower()

    t = [fold(c) for c in text]

    def go(i: int, j: int) -> bool:
        if i == len(items):
            return j == len(t)
        it = items[i]
        if it == "%":
            return any(go(i + 1, k) for k in range(j, len(t) + 1))
        if j == len(t):
            return False
        if it == "_":
            return go(i + 1, j + 1)
        if isinstance(it, _Set):
            return it.matches(t[j]) and go(i + 1, j + 1)
        return it[1:] == t[j] and go(i + 1, j + 1)

    return go(0, 0)


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet="ab%_[]^-=Ab", max_size=8), st.text(alphabet="abAB-^=", max_size=8))
def test_like_agrees_with_a_reference(pattern: str, text: str) -> None:
    assert compile_like(pattern)(text) == _reference(pattern, text)

"""WQL LIKE matching in linear time: ``%`` any run, ``_`` one character, ``[set]``, ``[^set]``, ``[a-z]``.

Matching ignores case (both sides are case-folded per character) and never backtracks: a pattern of
only literals and ``%`` is matched with left-most ``str.find`` steps, anything else by stepping a set
of pattern positions over the text (an NFA), so the cost is at most text length × pattern length.
Bracket rules follow WMI: ``[a-f]`` and ``[a=f]`` are ranges, ``[^]`` is a caret, ``-`` first or last
is itself; an unclosed ``[`` matches nothing and an unclosed ``[^`` matches any one character (OMI).
There is no escape character: ``[%]``, ``[_]`` and ``[[]`` match those characters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Set:
    chars: frozenset[str]
    ranges: tuple[tuple[str, str], ...]
    negated: bool

    def matches(self, c: str) -> bool:
        hit = c in self.chars or any(lo <= c <= hi for lo, hi in self.ranges)
        return hit != self.negated


_ANY_RUN = "%"
_ANY_ONE = "_"
_NEVER = _Set(frozenset(), (), False)
_ALWAYS = _Set(frozenset(), (), True)

_Item = str | _Set        # "%" / "_" markers, a one-character literal (folded), or a set


def _fold(c: str) -> str:
    f = c.casefold()
    return f if len(f) == 1 else c.lower()


def _items(pattern: str) -> list[_Item]:
    out: list[_Item] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "%":
            if not out or out[-1] != _ANY_RUN:   # "%%" is "%"
                out.append(_ANY_RUN)
            i += 1
        elif c == "_":
            out.append(_ANY_ONE)
            i += 1
        elif c == "[":
            i = _bracket(pattern, i + 1, out)
        else:
            out.append("L" + _fold(c))
            i += 1
    return out


def _bracket(pattern: str, i: int, out: list[_Item]) -> int:
    n = len(pattern)
    negated = False
    if i < n and pattern[i] == "^":
        if i + 1 < n and pattern[i + 1] == "]":          # "[^]" is a caret (WMI)
            out.append("L^")
            return i + 2
        negated = True
        i += 1
    end = pattern.find("]", i)
    if end < 0:                                          # unclosed: "[" never, "[^" any one character
        out.append(_ALWAYS if negated else _NEVER)
        return n
    body = pattern[i:end]
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    j = 0
    while j < len(body):
        if j + 2 < len(body) and body[j + 1] in "-=":
            lo, hi = _fold(body[j]), _fold(body[j + 2])
            ranges.append((lo, hi) if lo <= hi else (hi, lo))
            j += 3
        else:
            chars.add(_fold(body[j]))
            j += 1
    out.append(_Set(frozenset(chars), tuple(ranges), negated))
    return end + 1


def compile_like(pattern: str) -> Callable[[str], bool]:
    """A matcher ``f(text) -> bool`` for a LIKE pattern, built once and used for every value."""
    items = _items(pattern)
    if any(isinstance(it, _Set) and it is _NEVER for it in items):
        return lambda text: False
    if all(it == _ANY_RUN or (isinstance(it, str) and it.startswith("L")) for it in items):
        return _literal_runs(items)
    return _nfa(items)


def fold_pattern(pattern: str) -> str:
    """The pattern with each character case-folded as the matcher folds it (for stores that match LIKE
    themselves with ASCII-only case folding)."""
    return "".join(_fold(c) for c in pattern)


def like(pattern: str, text: str) -> bool:
    """Whether ``text`` matches the LIKE ``pattern`` (compile once with :func:`compile_like` for many texts)."""
    return compile_like(pattern)(text)


def fold(text: str) -> str:
    """``text`` with each character's case folded on its own, as WQL compares strings (and WMI does, a
    character at a time): ``ß`` stays one character, so it is not ``ss``. Only two non-ASCII characters
    fold to ASCII ones: ``ſ`` (U+017F, to ``s``) and the Kelvin sign (U+212A, to ``k``)."""
    f = text.casefold()
    if len(f) == len(text):  # every character folded to one: the same as folding one at a time
        return f
    return "".join(_fold(c) for c in text)


_fold_text = fold


def _literal_runs(items: list[_Item]) -> Callable[[str], bool]:
    """Literals and ``%`` only: left-most matching of each run is exact, no backtracking needed."""
    runs: list[str] = [""]
    for it in items:
        if it == _ANY_RUN:
            runs.append("")
        else:
            runs[-1] += str(it)[1:]
    if len(runs) == 1:
        whole = runs[0]
        return lambda text: _fold_text(text) == whole
    head, middle, tail = runs[0], runs[1:-1], runs[-1]
    need = len(head) + len(tail) + sum(len(m) for m in middle)

    def match(text: str) -> bool:
        t = _fold_text(text)
        if len(t) < need or not t.startswith(head) or not t.endswith(tail):
            return False
        pos = len(head)
        stop = len(t) - len(tail)
        for m in middle:
            k = t.find(m, pos, stop)
            if k < 0:
                return False
            pos = k + len(m)
        return True

    return match


def _nfa(items: list[_Item]) -> Callable[[str], bool]:
    m = len(items)
    # closure[k]: positions reachable from k by skipping "%" items (a "%" may match nothing)
    closure: list[tuple[int, ...]] = []
    for k in range(m + 1):
        reach = [k]
        j = k
        while j < m and items[j] == _ANY_RUN:
            j += 1
            reach.append(j)
        closure.append(tuple(reach))
    start = frozenset(closure[0])

    def match(text: str) -> bool:
        states = start
        for ch in _fold_text(text):
            nxt: set[int] = set()
            for k in states:
                if k == m:
                    continue
                it = items[k]
                if it == _ANY_RUN:
                    nxt.update(closure[k])           # "%" stays and may consume more
                elif it == _ANY_ONE or (isinstance(it, _Set) and it.matches(ch)) or (
                        isinstance(it, str) and it[1:] == ch):
                    nxt.update(closure[k + 1])
            if not nxt:
                return False
            states = frozenset(nxt)
        return m in states

    return match

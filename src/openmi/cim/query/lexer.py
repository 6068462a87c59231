"""The WQL/CQL lexer: query text → tokens, each with its 1-based column.

Keywords ignore case. Strings take either quote and backslash escapes (``\\\\``, ``\\"``, ``\\'``,
``\\n``, ``\\r``, ``\\t``; any other ``\\c`` is ``c``, as OMI's lexer does, so ``"begin\\_\\%"`` is
``begin_%``). Numbers are decimal integers or reals (``1.5``, ``.5``, ``1e3``, ``1.5E-3``), with an
optional sign directly in front. ``{…}`` (an object path in ``ASSOCIATORS OF``) is one token.
"""

from __future__ import annotations

import re
from typing import Literal

from .errors import QueryError

MAX_QUERY_LENGTH = 16384

TokenKind = Literal["ident", "string", "integer", "real", "op", "path", "end"]

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_DIGITS = "0123456789"  # ASCII only: str.isdigit() also takes "¹", which int() refuses


class Token:
    """One token: its kind, its text (identifiers as written, strings unescaped), its 1-based column, a
    number's value, and an identifier's upper-case spelling (how keywords are matched)."""

    __slots__ = ("column", "kind", "text", "value", "word")

    def __init__(self, kind: TokenKind, text: str, column: int, value: int | float | None = None,
                 word: str = "") -> None:
        self.kind = kind
        self.text = text
        self.column = column
        self.value = value
        self.word = word

    def is_word(self, word: str) -> bool:
        """True for an identifier spelling ``word`` in any case."""
        return self.word == word

    def __repr__(self) -> str:
        return f"Token({self.kind}, {self.text!r}, column {self.column})"


def _ident_char(c: str) -> bool:
    return c == "_" or c.isalnum()


# One match per step: leading blanks, then an identifier or an operator (anything else is decided by hand).
_STEP = re.compile(r"\s*(?:(?P<ident>[^\W\d]\w*)|(?P<op><=|>=|<>|!=|::|[=<>(),.*]))?")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens ending with an ``end`` token; raises :class:`QueryError`."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is {len(text)} characters long; the limit is {MAX_QUERY_LENGTH}")
    tokens: list[Token] = []
    append = tokens.append
    step = _STEP.match
    i = 0
    n = len(text)
    while True:
        m = step(text, i)
        assert m is not None  # every group is optional: the pattern always matches
        kind = m.lastgroup
        if kind is not None:
            start = m.start(kind)
            word = m.group(kind)
            if kind == "ident":
                append(Token("ident", word, start + 1, None, word.upper()))
                i = m.end()
                continue
            if not (word == "." and start + 1 < n and text[start + 1] in _DIGITS):
                append(Token("op", "<>" if word == "!=" else word, start + 1))
                i = m.end()
                continue
        i = m.end() if kind is None else m.start(kind)
        if i >= n:
            break
        c = text[i]
        if c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS) or (
                c in "+-" and i + 1 < n and (text[i + 1] in _DIGITS
                                             or (text[i + 1] == "." and i + 2 < n and text[i + 2] in _DIGITS))):
            i = _number(text, i, tokens)
        elif c in "\"'":
            i = _string(text, i, tokens)
        elif c == "{":
            i = _path(text, i, tokens)
        else:
            raise QueryError(f"unexpected character {c!r}", i + 1)
    append(Token("end", "", n + 1))
    return tokens


def _number(text: str, i: int, tokens: list[Token]) -> int:
    n = len(text)
    start = i
    if text[i] in "+-":
        i += 1
    while i < n and text[i] in _DIGITS:
        i += 1
    real = False
    if i < n and text[i] == ".":
        real = True
        i += 1
        while i < n and text[i] in _DIGITS:
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j] in _DIGITS:
            real = True
            i = j
            while i < n and text[i] in _DIGITS:
                i += 1
    if i < n and _ident_char(text[i]):
        raise QueryError(f"malformed number {text[start:i + 1]!r}", start + 1)
    s = text[start:i]
    if real:
        tokens.append(Token("real", s, start + 1, float(s)))
    else:
        tokens.append(Token("integer", s, start + 1, int(s)))
    return i


def _string(text: str, i: int, tokens: list[Token]) -> int:
    quote = text[i]
    start = i
    i += 1
    out: list[str] = []
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        if c == quote:
            tokens.append(Token("string", "".join(out), start + 1))
            return i + 1
        out.append(c)
        i += 1
    raise QueryError("unterminated string", start + 1)


def _path(text: str, i: int, tokens: list[Token]) -> int:
    """``{object path}``: up to the matching ``}``, skipping quoted key values (which may hold braces)."""
    start = i
    i += 1
    n = len(text)
    quote: str | None = None
    while i < n:
        c = text[i]
        if quote is not None:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "}":
            tokens.append(Token("path", text[start + 1:i].strip(), start + 1))
            return i + 1
        i += 1
    raise QueryError("'{' without a matching '}'", start + 1)

"""The WQL/CQL lexer: query text → tokens, each with its 1-based column.

Keywords ignore case. Strings take either quote and backslash escapes (``\\\\``, ``\\"``, ``\\'``,
``\\n``, ``\\r``, ``\\t``; any other ``\\c`` is ``c``, as OMI's lexer does, so ``"begin\\_\\%"`` is
``begin_%``). Numbers are decimal integers or reals (``1.5``, ``.5``, ``1e3``, ``1.5E-3``), with an
optional sign directly in front. ``{…}`` (an object path in ``ASSOCIATORS OF``) is one token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import QueryError

MAX_QUERY_LENGTH = 16384

TokenKind = Literal["ident", "string", "integer", "real", "op", "path", "end"]

_OPERATORS = ("<=", ">=", "<>", "!=", "::", "=", "<", ">", "(", ")", ",", ".", "*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_DIGITS = "0123456789"  # ASCII only: str.isdigit() also takes "¹", which int() refuses


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str              # identifiers as written, strings unescaped, operators as written
    column: int
    value: int | float | None = None

    def is_word(self, word: str) -> bool:
        """True for an identifier spelling ``word`` in any case (how keywords are matched)."""
        return self.kind == "ident" and self.text.upper() == word


def _ident_start(c: str) -> bool:
    return c == "_" or c.isalpha()


def _ident_char(c: str) -> bool:
    return c == "_" or c.isalnum()


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens ending with an ``end`` token; raises :class:`QueryError`."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"the query is {len(text)} characters long; the limit is {MAX_QUERY_LENGTH}")
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        col = i + 1
        if c.isspace():
            i += 1
            continue
        if _ident_start(c):
            j = i + 1
            while j < n and _ident_char(text[j]):
                j += 1
            tokens.append(Token("ident", text[i:j], col))
            i = j
            continue
        if c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS) or (
                c in "+-" and i + 1 < n and (text[i + 1] in _DIGITS
                                             or (text[i + 1] == "." and i + 2 < n and text[i + 2] in _DIGITS))):
            i = _number(text, i, tokens)
            continue
        if c in "\"'":
            i = _string(text, i, tokens)
            continue
        if c == "{":
            i = _path(text, i, tokens)
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", "<>" if op == "!=" else op, col))
                i += len(op)
                break
        else:
            raise QueryError(f"unexpected character {c!r}", col)
    tokens.append(Token("end", "", n + 1))
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

"""The MOF lexer: one compiled regular expression that turns MOF text into a flat list of token strings.

A token's kind is read from its first character (``"`` string, ``'`` char16, digit or sign number,
letter identifier or keyword, ``$`` alias, ``#pragma``, punctuation). Comments and whitespace never
become tokens. Offsets are not kept: when an error needs a line and column, :meth:`Source.where`
lexes again with ``finditer`` (errors are rare, tokens are many).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable

# Everything the MOF grammar uses as a terminal. The leading group skips whitespace and comments;
# the last two alternatives catch any other single character (reported by the parser as unexpected)
# and the end of the text (an empty token that the parser reads as end of file).
TOKEN_RE = re.compile(
    r"""(?:\s+|//[^\n]*|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/)*(
      "[^"\\\n]*(?:\\.[^"\\\n]*)*"
    | [^\W\d]\w*
    | [{}()\[\];,:=]
    | '(?:\\(?:[xX][0-9A-Fa-f]{1,4}|[^\n])|[^'\\\n])'
    | [+-]?(?:0[xX][0-9A-Fa-f]+|[01]+[bB](?!\w)|\d*\.\d+(?:[eE][+-]?\d+)?|\d+(?:[eE][+-]?\d+)?)
    | \$[^\W\d]\w*
    | \#[ \t]*pragma(?!\w)
    | \S
    | \Z
    )""",
    re.S | re.X,
)

EOF_TOKEN = ""


def tokenize(text: str) -> list[str]:
    """Split MOF text into tokens; the list always ends with one empty string (end of file)."""
    toks = TOKEN_RE.findall(text)
    while toks and not toks[-1]:
        toks.pop()
    toks.append(EOF_TOKEN)
    return toks


_ESCAPE_RE = re.compile(r"\\(?:[xX]([0-9A-Fa-f]{1,4})|(.))", re.S)
_SIMPLE_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "'": "'", "\\": "\\"}


class EscapeError(ValueError):
    """A backslash sequence that MOF does not define."""


def _unescape_one(m: re.Match[str]) -> str:
    hexdigits, ch = m.group(1), m.group(2)
    if hexdigits is not None:
        return chr(int(hexdigits, 16))
    out = _SIMPLE_ESCAPES.get(ch)
    if out is None:
        raise EscapeError(f"unknown escape sequence '\\{ch}'")
    return out


def unescape(body: str) -> str:
    """Replace MOF escape sequences (``\\n``, ``\\"``, ``\\x41`` …) in a string or char16 body."""
    if "\\" not in body:
        return body
    return _ESCAPE_RE.sub(_unescape_one, body)


_ESCAPE_OUT = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "'": "\\'",
               "\\": "\\\\"}
_NEEDS_ESCAPE_RE = re.compile(r"""[\\"'\x00-\x1f\x7f]""")


def _escape_one(m: re.Match[str]) -> str:
    ch = m.group(0)
    return _ESCAPE_OUT.get(ch) or f"\\x{ord(ch):04X}"


def escape(text: str) -> str:
    """The MOF spelling of a string body (the inverse of :func:`unescape`)."""
    return _NEEDS_ESCAPE_RE.sub(_escape_one, text)


class Source:
    """One MOF text being compiled: its name for messages, its text and its tokens."""

    __slots__ = ("_lines", "_offsets", "_reload", "name", "path", "text", "tokens")

    def __init__(self, name: str, text: str, path: str | None = None,
                 reload: Callable[[], str] | None = None) -> None:
        self.name = name
        self.path = path
        self.text = text
        self.tokens = tokenize(text)
        self._offsets: list[int] | None = None
        self._lines: list[int] | None = None
        self._reload = reload

    def release(self) -> None:
        """Drop the tokens, and the text when it can be read again: positions are rarely needed later."""
        self.tokens = []
        if self._reload is not None:
            self.text = ""

    def _full_text(self) -> str:
        if not self.text and self._reload is not None:
            self.text = self._reload()
        return self.text

    def offset(self, index: int) -> int:
        """The character offset where token ``index`` starts."""
        if self._offsets is None:
            self._offsets = [m.start(1) for m in TOKEN_RE.finditer(self._full_text())]
        offs = self._offsets
        if index < len(offs):
            return offs[index]
        return len(self.text)

    def line_col(self, index: int) -> tuple[int, int]:
        """1-based line and column of token ``index``."""
        pos = self.offset(index)
        if self._lines is None:
            self._lines = [m.start() for m in re.finditer("\n", self._full_text())]
        line = bisect_right(self._lines, pos - 1)
        start = self._lines[line - 1] + 1 if line else 0
        return line + 1, pos - start + 1

    def where(self, index: int) -> str:
        line, col = self.line_col(index)
        return f"{self.name}:{line}:{col}"


def describe(token: str) -> str:
    """How a token is named in a message: ``'foo'`` or ``end of file``."""
    if token == EOF_TOKEN:
        return "end of file"
    if len(token) > 40:
        token = token[:37] + "..."
    return repr(token) if token[0] != "'" else f'"{token}"'

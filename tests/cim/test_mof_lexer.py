"""The MOF lexer: token kinds, comments, escapes, and line:column for messages."""

from __future__ import annotations

import pytest

from openmi.cim.mof.lexer import EscapeError, Source, escape, tokenize, unescape
from openmi.cim.mof.parser import parse_number


def test_tokens_skip_comments_and_whitespace() -> None:
    text = '// line\nclass /* block\n ** still */ A { string S = "x\\"y"; };'
    assert tokenize(text) == ["class", "A", "{", "string", "S", "=", '"x\\"y"', ";", "}", ";", ""]


def test_literal_tokens() -> None:
    toks = tokenize("0x1F -12 1.5e3 .5 101b 017 'c' '\\x41' $alias #pragma TRUE")
    assert toks[:-1] == ["0x1F", "-12", "1.5e3", ".5", "101b", "017", "'c'", "'\\x41'", "$alias", "#pragma", "TRUE"]


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("-42", -42), ("+7", 7), ("0x1F", 31), ("-0X10", -16), ("017", 15), ("0", 0),
    ("101b", 5), ("-11B", -3), ("1.5", 1.5), ("-2.5e2", -250.0), (".25", 0.25),
])
def test_numbers(text: str, value: float) -> None:
    assert parse_number(tokenize(text)[0]) == value


def test_escapes_round_trip() -> None:
    assert unescape(r"a\tb\n\"q\" \\ \x41\X263A") == 'a\tb\n"q" \\ A\u263a'
    s = 'tab\there "quoted" back\\slash \x01'
    assert unescape(escape(s)) == s
    with pytest.raises(EscapeError):
        unescape(r"bad \q")


def test_unknown_characters_become_single_tokens() -> None:
    assert tokenize('class @ "unterminated\n') == ["class", "@", '"', "unterminated", ""]


def test_where_reports_line_and_column() -> None:
    src = Source("f.mof", "class A\n{\n   string  S;\n};\n")
    idx = src.tokens.index("S")
    assert src.where(idx) == "f.mof:3:12"
    assert src.where(len(src.tokens) - 1) == "f.mof:5:1"

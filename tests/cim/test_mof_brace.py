"""omicli's brace syntax ⇄ Instance, from a string and from argv, with errors that point at the token."""

from __future__ import annotations

import pytest

from openmi import MIType
from openmi.cim.mof import BraceError, format_brace, parse_brace

TEXT = '{ Sample_Person Id 7 Name "Ada L" Tags [ a b ] Owner { X_Ref Key 1 } *Note x }'


def test_parse_string() -> None:
    inst = parse_brace(TEXT)
    assert inst.class_name == "Sample_Person"
    assert inst["Id"] == "7" and inst["Name"] == "Ada L" and inst["Tags"] == ["a", "b"]
    assert inst.get_element("Tags").type == MIType.STRINGA
    owner = inst.get_element("Owner")
    assert owner.type == MIType.REFERENCE and owner.key and owner.value["Key"] == "1"
    assert inst.get_element("Id").key and not inst.get_element("Note").key


def test_parse_argv_is_the_same() -> None:
    argv = ["{", "Sample_Person", "Id", "7", "Name", "Ada L", "Tags", "[", "a", "b", "]", "Owner", "{", "X_Ref",
            "Key", "1", "}", "*Note", "x", "}"]
    assert parse_brace(argv) == parse_brace(TEXT)


def test_without_keys_nested_is_embedded_instance() -> None:
    inst = parse_brace("{ A B { C D e } L [ { C D f } ] }", keys=False)
    assert inst.get_element("B").type == MIType.INSTANCE and not inst.get_element("B").key
    assert inst.get_element("L").type == MIType.INSTANCEA and inst["L"][0]["D"] == "f"


def test_format_round_trip() -> None:
    inst = parse_brace(TEXT)
    assert format_brace(inst) == TEXT.replace('"Ada L"', '"Ada L"')
    assert parse_brace(format_brace(inst)) == inst
    tricky = parse_brace(['{', 'A', 'k', 'has "quotes" and {braces}', 'e', '', '}'])
    assert parse_brace(format_brace(tricky)) == tricky


@pytest.mark.parametrize(("text", "message"), [
    ("{ A k }", "column 7: expected a value, found '}'"),
    ("{ A k [ 1 }", "column 11: expected a value or ']', found '}'"),
    ("A k 1", "column 1: expected '{', found 'A'"),
    ("{ 5 }", "column 3: expected a class name, found '5'"),
    ('{ A k "x }', 'column 7: the quoted value has no closing "'),
    ("{ A k 1 } extra", "column 11: expected the end (the instance is complete), found 'extra'"),
    ("{ A k 1", "column 8: expected a property name or '}', found the end"),
])
def test_errors_point_at_the_column(text: str, message: str) -> None:
    with pytest.raises(BraceError) as exc:
        parse_brace(text)
    assert str(exc.value) == message


def test_argv_errors_point_at_the_argument() -> None:
    with pytest.raises(BraceError) as exc:
        parse_brace(["{", "A", "k", "}"])
    assert str(exc.value) == "argument 4: expected a value, found '}'"
    assert exc.value.position == 4

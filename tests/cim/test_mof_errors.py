"""Bad MOF: every error names file:line:column, what was expected and what was found; several at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmi import MOFError
from openmi.cim.mof import compile_mof

from .mof_samples import QUALIFIERS

Q_LINES = QUALIFIERS.count("\n")


def errors(text: str, **kw: object) -> list[str]:
    with pytest.raises(MOFError) as exc:
        compile_mof(text, **kw)  # type: ignore[arg-type]
    return exc.value.errors


def test_unknown_qualifier() -> None:
    assert errors(QUALIFIERS + "class A {\n  [Colour(\"red\")] string S;\n};") == [
        f"<string>:{Q_LINES + 2}:4: unknown qualifier Colour (no qualifier declaration for it in namespace "
        "root/cimv2)"]


def test_unknown_superclass() -> None:
    assert errors(QUALIFIERS + "class A : Nowhere { };") == [
        f"<string>:{Q_LINES + 1}:11: class A: superclass Nowhere is not declared (in this MOF or namespace "
        "root/cimv2)"]


def test_duplicate_class() -> None:
    assert errors(QUALIFIERS + "class A { };\nclass a { };") == [
        f"<string>:{Q_LINES + 2}:7: duplicate class a (first declared at <string>:{Q_LINES + 1}:7)"]


def test_wrong_type_of_default_value() -> None:
    errs = errors(QUALIFIERS + 'class A {\n  uint32 N = "five";\n  string S = 5;\n  uint8 B = 300;\n};')
    assert errs == [
        f'<string>:{Q_LINES + 2}:14: default value of property A.N: expected uint32, found string "five"',
        f"<string>:{Q_LINES + 3}:14: default value of property A.S: expected string, found integer 5",
        f"<string>:{Q_LINES + 4}:13: default value of property A.B: 300 is outside the range of uint8 (0..255)",
    ]


def test_include_that_does_not_exist(tmp_path: Path) -> None:
    top = tmp_path / "top.mof"
    top.write_text('// nothing else\n#pragma include ("missing.mof")\n')
    assert errors(top) == [f"{top}:2:18: include file 'missing.mof' not found (searched {tmp_path})"]


def test_cycle_of_includes(tmp_path: Path) -> None:
    (tmp_path / "a.mof").write_text('#pragma include ("b.mof")\n')
    (tmp_path / "b.mof").write_text('\n#pragma include ("a.mof")\n')
    a = tmp_path / "a.mof"
    assert errors(a) == [f"{tmp_path / 'b.mof'}:2:18: include cycle: a.mof -> b.mof -> a.mof"]


def test_syntax_errors_say_expected_and_found_and_keep_going() -> None:
    text = QUALIFIERS + (
        "class A {\n"
        "  string S\n"          # missing ;
        "  uint32 N;\n"
        "};\n"
        "class B { [Key] string K = ; };\n"
        "instance A { };\n"
        "class C { string T; };\n"
    )
    errs = errors(text)
    assert errs == [
        f"<string>:{Q_LINES + 3}:3: expected '(', '[', '=' or ';' after the property name, found 'uint32'",
        f"<string>:{Q_LINES + 5}:28: expected a value, found ';'",
        f"<string>:{Q_LINES + 6}:10: expected 'of' after 'instance', found 'A'",
    ]


def test_semantic_errors_are_all_reported() -> None:
    text = QUALIFIERS + (
        "class A { [Key] string Id; [Key(\"yes\")] string X; [Description(1)] string Y; };\n"
        "class B : A { [Override(\"Nope\")] string Z; [Key] string Extra; };\n"
        "class C { Missing REF R; [Abstract] string P; };\n"
        "instance of A { Id = \"1\"; Q = 2; };\n"
        "instance of A { Id = 5; };\n"
        "instance of Nowhere { };\n"
        "instance of A { Id = \"1\"; X = $ghost; };\n"
    )
    errs = errors(text)
    n = Q_LINES
    assert errs == [
        f"<string>:{n + 1}:29: value of qualifier Key: expected boolean, found string \"yes\"",
        f"<string>:{n + 1}:52: value of qualifier Description: expected string, found integer 1",
        f"<string>:{n + 2}:41: property B.Z: Override names 'Nope', which no superclass of B has",
        f"<string>:{n + 2}:57: property B.Extra: a subclass cannot add a key property when its superclass A "
        "already has keys",
        f"<string>:{n + 3}:11: class C: class Missing is not declared (in this MOF or namespace root/cimv2)",
        f"<string>:{n + 3}:27: qualifier Abstract cannot be used on property C.P (its scope is class, "
        "association, indication)",
        f"<string>:{n + 4}:27: instance of A: class A has no property Q",
        f"<string>:{n + 5}:22: instance of A, property Id: expected string, found integer 5",
        f"<string>:{n + 6}:13: instance of Nowhere: class Nowhere is not declared (in this MOF or namespace "
        "root/cimv2)",
        f"<string>:{n + 7}:31: instance of A, property X: expected string, found alias $ghost",
    ]


def test_disable_override_and_type_change() -> None:
    text = QUALIFIERS + (
        "class A { [Key] string Id; uint32 N; };\n"
        "class B : A { [Key(false)] string Id; [Override(\"N\")] string N; };\n"
    )
    n = Q_LINES
    assert errors(text) == [
        f"<string>:{n + 2}:35: property B.Id: qualifier Key cannot be overridden (it has flavor DisableOverride "
        "and value True; found False)",
        f"<string>:{n + 2}:62: property B.N is string but overrides A.N of type uint32",
    ]


def test_duplicate_elements_aliases_and_instances() -> None:
    text = QUALIFIERS + (
        "class A { [Key] string Id; string Id; };\n"
        "instance of A as $x { Id = \"1\"; };\n"
        "instance of A as $x { Id = \"1\"; };\n"
        "instance of A { };\n"
    )
    n = Q_LINES
    assert errors(text) == [
        f"<string>:{n + 1}:35: A.Id is declared twice in the class",
        f"<string>:{n + 3}:13: instance A.Id=\"1\" is declared twice (first at <string>:{n + 2}:13)",
        f"<string>:{n + 3}:18: alias $x is already defined at <string>:{n + 2}:18",
        f"<string>:{n + 4}:13: instance of A: key property Id has no value",
    ]


def test_unterminated_string_and_bad_escape() -> None:
    n = Q_LINES
    errs = errors(QUALIFIERS + 'class A { string S = "abc;\n};\nclass B { string T = "\\q"; };')
    assert errs[0] == f"<string>:{n + 1}:22: expected a value, found '\"'"
    assert errs[-1] == f"<string>:{n + 3}:22: unknown escape sequence '\\q'"


def test_unknown_file() -> None:
    assert errors("no/such/file.mof") == ["no/such/file.mof: cannot read MOF file (No such file or directory)"]


def test_abstract_class_cannot_have_instances() -> None:
    n = Q_LINES
    assert errors(QUALIFIERS + "[Abstract] class A { [Key] string Id; };\ninstance of A { Id = \"x\"; };") == [
        f"<string>:{n + 2}:13: instance of A: the class is abstract"]


def test_undefined_alias() -> None:
    from .mof_samples import PERSON

    n = PERSON.count("\n")
    assert errors(PERSON + 'instance of Sample_Knows { Knower = $ghost; Known = "Sample_Person.Name=\\"x\\""; };') == [
        f"<string>:{n + 1}:37: alias $ghost is not defined"]

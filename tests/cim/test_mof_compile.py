"""Compiling MOF: qualifier declarations, classes, instances, pragmas and literals, checked object by object."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from openmi import Class, MIFlag, MIType, MOFError, Property, QualifierDecl
from openmi.cim.classes import resolve_class
from openmi.cim.mof import compile_mof

from .mof_samples import PERSON, QUALIFIERS


def classes(text: str, **kw: object) -> dict[str, Class]:
    return {c.name: c for _, c in compile_mof(text, **kw).classes}  # type: ignore[arg-type]


def test_qualifier_declarations() -> None:
    r = compile_mof(QUALIFIERS)
    decls = {d.name: d for _, d in r.qualifier_decls}
    key = decls["Key"]
    assert key.type == MIType.BOOLEAN and key.default is False
    assert key.scope == MIFlag.PROPERTY | MIFlag.REFERENCE
    assert key.flavor == MIFlag.DISABLEOVERRIDE | MIFlag.TOSUBCLASS
    assert decls["ValueMap"].type == MIType.STRINGA and decls["ValueMap"].default is None
    assert decls["Description"].flavor == MIFlag.ENABLEOVERRIDE | MIFlag.TOSUBCLASS | MIFlag.TRANSLATABLE
    assert decls["Description"].scope == MIFlag.ANY
    assert decls["Abstract"].flavor == MIFlag.ENABLEOVERRIDE | MIFlag.RESTRICTED
    assert all(ns == "root/cimv2" for ns, _ in r.qualifier_decls)


def test_qualifier_declaration_array_size_and_default_flavor() -> None:
    r = compile_mof('Qualifier Q : sint32[4] = {1, 2}, Scope(class, property);')
    d = r.qualifier_decls[0][1]
    assert (d.type, d.array_size, d.default) == (MIType.SINT32A, 4, [1, 2])
    assert d.flavor == MIFlag.ENABLEOVERRIDE | MIFlag.TOSUBCLASS


def test_class_elements_types_and_literals() -> None:
    c = classes(PERSON)["Sample_Person"]
    assert c.superclass == "Sample_Named"
    p = c.properties
    assert list(p) == ["Name", "Age", "Tags", "Scores", "Initial", "Born", "Alive", "Mood", "Mode", "Bits",
                       "Friend", "Anything", "State"]
    assert p["Age"].type == MIType.UINT32 and p["Age"].value == 32
    assert p["Tags"].type == MIType.STRINGA and p["Tags"].array_size is None
    assert p["Scores"].type == MIType.REAL64A and p["Scores"].array_size == 3
    assert p["Scores"].value == [1.5, -2.0, 300.0]
    assert p["Initial"].type == MIType.CHAR16 and p["Initial"].value == "A"
    assert p["Born"].value == dt.datetime(1915, 12, 10, tzinfo=dt.timezone.utc)
    assert p["Alive"].value is True and p["Mood"].value == -5
    assert p["Mode"].value == 0o755 and p["Bits"].value == 10
    assert p["Friend"].type == MIType.INSTANCE and p["Friend"].embedded_class == "Sample_Named"
    assert p["Anything"].type == MIType.INSTANCE and p["Anything"].embedded_class is None
    assert p["State"].qualifiers["ValueMap"].value == ["0", "1"]
    assert p["State"].qualifiers["Values"].type == MIType.STRINGA
    # qualifiers as written, flavors from their declarations; Override stays on the declared class
    name = p["Name"]
    assert list(name.qualifiers) == ["Override", "Description"]
    assert name.qualifiers["Description"].flavor & MIFlag.TRANSLATABLE
    assert not name.key  # the key flag comes from the superclass when the class is resolved


def test_methods_and_parameters() -> None:
    m = classes(PERSON)["Sample_Person"].methods["Greet"]
    assert m.return_type == MIType.UINT32 and m.is_static
    whom, reply, echo = m.parameters.values()
    assert (whom.in_, whom.out) == (True, False)
    assert (reply.in_, reply.out) == (False, True)
    assert (echo.in_, echo.out) == (False, True)
    assert echo.type == MIType.INSTANCEA and echo.embedded_class == "Sample_Named"
    assert whom.qualifiers["Description"].value == "whom"


def test_association_references() -> None:
    c = classes(PERSON)["Sample_Knows"]
    assert c.is_association
    knower = c.properties["Knower"]
    assert knower.type == MIType.REFERENCE and knower.reference_class == "Sample_Person" and knower.key
    assert knower.flags & MIFlag.REFERENCE


def test_classes_come_superclass_and_referenced_first() -> None:
    text = QUALIFIERS + """
    [Association] class B_Assoc { [Key] A_Thing REF Left; [Key] C_Thing REF Right; };
    class C_Thing : A_Thing { };
    class A_Thing { [Key] string Id; };
    """
    order = [c.name for _, c in compile_mof(text).classes]
    assert order.index("A_Thing") < order.index("C_Thing") < order.index("B_Assoc")


def test_resolution_inherits_keys_and_propagates_qualifiers() -> None:
    cs = classes(PERSON)
    named = resolve_class(cs["Sample_Named"], None)
    person = resolve_class(cs["Sample_Person"], named)
    assert person.properties["Name"].key  # Key propagates (ToSubclass) and stays a key
    assert person.properties["Name"].qualifiers["Key"].propagated
    assert person.properties["Name"].qualifiers["MaxLen"].value == 32  # inherited from the overridden one
    assert person.properties["Name"].qualifiers["Description"].value == "The full name"
    assert "Override" in person.properties["Name"].qualifiers  # its own
    assert not person.is_abstract  # Abstract is Restricted
    assert person.qualifiers["Description"].value == "A person"
    assert person.properties["Note"].propagated and person.properties["Note"].value == "none"


def test_instances_aliases_and_references() -> None:
    r = compile_mof(PERSON + """
    instance of Sample_Person as $Ada { Name = "Ada"; Age = 36; Tags = {"math", "engines"}; };
    instance of Sample_Person as $Bab { Name = "Charles"; Friend = instance of Sample_Person { Name = "X"; }; };
    instance of Sample_Knows { Knower = $Ada; Known = $Bab; };
    instance of Sample_Knows { Knower = "Sample_Person.Name=\\"Charles\\""; Known = $Later; };
    instance of Sample_Person as $Later { Name = "Later"; };
    """)
    insts = [i for _, i in r.instances]
    ada = insts[0]
    assert ada["Age"] == 36 and ada["Note"] == "none"  # class defaults fill what the MOF leaves out
    assert ada.get_element("Name").key and ada.get_element("Age").type == MIType.UINT32
    assert insts[1]["Friend"]["Name"] == "X"
    knows = insts[2]
    assert knows["Knower"].class_name == "Sample_Person" and knows["Knower"]["Name"] == "Ada"
    assert [e.name for e in knows["Knower"].elements] == ["Name"]  # a reference holds only keys
    assert insts[3]["Knower"]["Name"] == "Charles"
    assert insts[3]["Known"]["Name"] == "Later"  # an alias defined after its use


def test_string_concatenation_and_escapes() -> None:
    c = classes(QUALIFIERS + 'class A { [Description("one " "two\\n" "\\"three\\"")] string S = "a\\x41"; };')["A"]
    assert c.properties["S"].qualifiers["Description"].value == 'one two\n"three"'
    assert c.properties["S"].value == "aA"


def test_scalar_value_for_array_qualifier_is_wrapped() -> None:
    c = classes(QUALIFIERS + 'class A { [Deprecated("B.S")] string S; };')["A"]
    assert c.properties["S"].qualifiers["Deprecated"].value == ["B.S"]


def test_explicit_flavor_overrides_declaration() -> None:
    c = classes(QUALIFIERS + 'class A { [Description("x") : Restricted DisableOverride] string S; };')["A"]
    assert c.properties["S"].qualifiers["Description"].flavor == (
        MIFlag.DISABLEOVERRIDE | MIFlag.RESTRICTED | MIFlag.TRANSLATABLE)


def test_include_relative_to_including_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "qualifiers.mof").write_text(QUALIFIERS)
    (tmp_path / "sub" / "a.mof").write_text('#pragma include ("b.mof")\nclass A : B { };\n')
    (tmp_path / "sub" / "b.mof").write_text("class B { [Key] string Id; };\n")
    top = tmp_path / "top.mof"
    top.write_text('#pragma locale ("en_US")\n#pragma include ("qualifiers.mof")\n#pragma include ("sub/a.mof")\n')
    r = compile_mof(top)
    assert [c.name for _, c in r.classes] == ["B", "A"]
    assert compile_mof(str(top)).classes[0][1].name == "B"  # a str naming a file is a path too


def test_include_dirs_are_searched(tmp_path: Path) -> None:
    (tmp_path / "qualifiers.mof").write_text(QUALIFIERS)
    r = compile_mof('#pragma include ("qualifiers.mof")\nclass A { [Key] string Id; };', include_dirs=[tmp_path])
    assert r.classes[0][1].properties["Id"].key


def test_namespace_pragma() -> None:
    r = compile_mof(QUALIFIERS + '#pragma namespace ("root/other")\n' + QUALIFIERS + "class A { };",
                    namespace="root/default")
    assert r.classes == [("root/other", r.classes[0][1])]
    assert {ns for ns, _ in r.qualifier_decls} == {"root/default", "root/other"}


def test_lookups_let_mof_build_on_the_repository() -> None:
    base = Class("Repo_Base", properties=[Property("Id", MIType.STRING, key=True)])
    key_decl = QualifierDecl("Key", MIType.BOOLEAN, False, MIFlag.PROPERTY | MIFlag.REFERENCE,
                             MIFlag.DISABLEOVERRIDE | MIFlag.TOSUBCLASS)

    def cls(ns: str, name: str) -> Class | None:
        return base if name.lower() == "repo_base" else None

    def qual(ns: str, name: str) -> QualifierDecl | None:
        return key_decl if name.lower() == "key" else None

    r = compile_mof('class Repo_Child : Repo_Base { [Key] string Id; };\n'
                    'instance of Repo_Child { Id = "x"; };', class_lookup=cls, qualifier_lookup=qual)
    assert [c.name for _, c in r.classes] == ["Repo_Child"]
    assert r.qualifier_decls == []
    assert r.instances[0][1].get_element("Id").key


def test_association_keyword_and_class_alias() -> None:
    c = classes(QUALIFIERS + "association Sample_A as $x { [Key] Sample_B REF B; };\n"
                             "class Sample_B { [Key] string K; };")
    assert c["Sample_A"].is_association


def test_failed_compile_returns_nothing() -> None:
    with pytest.raises(MOFError) as exc:
        compile_mof(QUALIFIERS + "class A { [Key] string Id; };\nclass B : Missing { };")
    assert len(exc.value.errors) == 1

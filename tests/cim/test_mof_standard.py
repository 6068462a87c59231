"""The standard qualifier declarations (DSP0004): MOF with [Key] and no declarations compiles; a MOF's own
declaration of a standard qualifier is accepted when it agrees and is an error when it conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmi import MIFlag, MIType, MOFError
from openmi.cim.mof import compile_mof, standard_qualifiers
from openmi.cim.mof.standard import conflicts

from .mof_schema import SchemaUnavailable, cim_schema_mof

PERSON = "class Sample_Person { [Key] uint32 Id; string Name; };"


def test_key_without_declarations_compiles() -> None:
    r = compile_mof(PERSON)
    (ns, cls), = r.classes
    assert ns == "root/cimv2" and cls.properties["Id"].key and not cls.properties["Name"].key
    assert r.qualifier_decls == []  # the MOF declared none


def test_every_dsp0004_qualifier_is_declared() -> None:
    names = {q.name.lower() for q in standard_qualifiers()}
    for name in ("Key", "Abstract", "Association", "Indication", "Description", "In", "Out", "Static", "Required",
                 "Override", "EmbeddedInstance", "EmbeddedObject", "ValueMap", "Values", "MaxLen", "MinLen",
                 "MaxValue", "MinValue", "Deprecated", "Experimental", "Read", "Write", "Octetstring", "Propagated",
                 "Weak", "Terminal", "ArrayType", "Aggregate", "Aggregation", "Composition", "Counter", "Gauge",
                 "DisplayName", "Units", "PUnit", "ModelCorrespondence", "MappingStrings", "Exception", "Version",
                 "UMLPackagePath", "Correlatable", "Reference", "IsPUnit", "BitMap", "BitValues", "ClassConstraint",
                 "MethodConstraint", "PropertyConstraint", "NullValue", "Invisible", "Large", "Provider", "Schema",
                 "Source", "SourceType", "Syntax", "SyntaxType", "TriggerType", "UnknownValues", "UnsupportedValues",
                 "Alias", "Delete", "DN", "Expensive", "Ifdeleted", "Indexed", "NonLocal", "NonLocalType", "Min",
                 "Max", "Structure", "Revision", "XMLNamespaceName", "PropertyUsage", "DisplayDescription"):
        assert name.lower() in names, name
    key = {q.name: q for q in standard_qualifiers()}["Key"]
    assert (key.type, key.default, key.scope, key.flavor) == (
        MIType.BOOLEAN, False, MIFlag.PROPERTY | MIFlag.REFERENCE, MIFlag.DISABLEOVERRIDE | MIFlag.TOSUBCLASS)


def test_standard_qualifiers_are_fresh_copies() -> None:
    a = standard_qualifiers()
    a[0].name = "Changed"
    assert standard_qualifiers()[0].name != "Changed"


def test_standard_qualifiers_work_with_their_meaning() -> None:
    r = compile_mof("""
        [Abstract, Description("base")] class Sample_Base { [Key, MaxLen(16)] string Id; };
        [Association] class Sample_Link { [Key] Sample_Base REF A; [Key] Sample_Base REF B; };
        class Sample_Proc : Sample_Base {
            [Static] uint32 Run([In] string What, [Out, EmbeddedInstance("Sample_Base")] string Result);
            [ValueMap {"0", "1"}, Values {"Off", "On"}] uint16 State;
        };""")
    c = {cls.name: cls for _, cls in r.classes}
    assert c["Sample_Base"].is_abstract and c["Sample_Link"].is_association
    run = c["Sample_Proc"].methods["Run"]
    assert run.is_static and run.parameters["What"].in_ and run.parameters["Result"].out
    assert run.parameters["Result"].type == MIType.INSTANCE and run.parameters["Result"].embedded_class == "Sample_Base"


def test_agreeing_declaration_is_accepted_and_returned() -> None:
    r = compile_mof("Qualifier Key : boolean = false, Scope(property, reference), "
                    "Flavor(DisableOverride, ToSubclass);\n"
                    "Qualifier Static : boolean = false, Scope(method), Flavor(DisableOverride, ToSubclass);\n"
                    "Qualifier Description : string = null, Scope(any);\n" + PERSON)
    assert [d.name for _, d in r.qualifier_decls] == ["Key", "Static", "Description"]
    assert r.classes[0][1].properties["Id"].key


def test_conflicting_declaration_is_a_clear_error() -> None:
    with pytest.raises(MOFError) as exc:
        compile_mof("Qualifier Key : string = null, Scope(property, class), Flavor(EnableOverride, ToSubclass);\n"
                    + PERSON)
    assert exc.value.errors == [
        "<string>:1:11: qualifier Key conflicts with the standard (DSP0004) declaration that namespace root/cimv2 "
        "holds: here type string, not boolean; Scope(class, property) includes class, outside Scope(property, "
        "reference); Flavor(EnableOverride, ToSubclass), not Flavor(DisableOverride, ToSubclass)"]


@pytest.mark.parametrize(("decl", "says"), [
    ("Qualifier In : boolean = false, Scope(parameter), Flavor(DisableOverride, ToSubclass);",
     "default false, not true"),
    ("Qualifier Abstract : boolean = false, Scope(class, association, indication);",
     "Flavor(EnableOverride, ToSubclass), not Flavor(EnableOverride, Restricted)"),
    ("Qualifier ValueMap : string, Scope(property, method, parameter);", "type string, not string[]"),
    ("Qualifier MaxLen : uint32[2], Scope(property, method, parameter);", "type uint32[], not uint32"),
])
def test_each_kind_of_conflict(decl: str, says: str) -> None:
    with pytest.raises(MOFError) as exc:
        compile_mof(decl)
    assert says in exc.value.errors[0]


def test_conflicts_of_an_agreeing_declaration_are_empty() -> None:
    for q in standard_qualifiers():
        assert conflicts(q, q) == []


@pytest.mark.slow
def test_cim_schema_declarations_agree_with_the_standard_ones() -> None:
    try:
        top = cim_schema_mof()
    except SchemaUnavailable as exc:
        pytest.skip(f"cannot obtain the CIM Schema 2.49 from pywbem's sdist: {exc}")
    std = {q.name.lower(): q for q in standard_qualifiers()}
    for name in ("qualifiers.mof", "qualifiers_optional.mof"):
        r = compile_mof(Path(top).parent / name, qualifier_lookup=lambda ns, n: None)
        for _, d in r.qualifier_decls:
            assert d == std[d.name.lower()], d.name  # the very same declaration, not just an agreeing one

"""The DSP0201 CLASS codec: classes round-trip with every kind of element, reading tolerates what OMI and
CIM-XML peers write, malformed classes are refused naming what is wrong, and the GetClass options."""

from __future__ import annotations

import pytest

import openmi
from openmi import MIFlag, MIType
from openmi.protocol.wsman.classxml import (
    ClassOptions,
    class_from_xml,
    class_to_xml,
    has_inherited_elements,
)
from openmi.protocol.wsman.values import WireError

MOF = """
[Abstract, Description("a part"), Version("1.0")] class X_Part {
    [Key, MaxLen(16)] string Id; string Tags[] = {"a", "b"}; datetime Born = "20240102030405.000000+000";
    [ValueMap {"0", "1"}, Values {"Off", "On"}] uint16 State; sint64 Big = -9000000000; boolean Flag = true;
};
[Association] class X_Link { [Key] X_Part REF A; [Key] X_Part REF B; };
class X_Widget : X_Part {
    [Description("grit")] uint16 Grit = 80;
    [EmbeddedInstance("X_Part")] string Inner;
    [EmbeddedInstance("X_Part")] string Many[];
    [EmbeddedObject] string Anything;
    X_Part REF Link;
    char16 C = 'x'; real32 R32 = 1.5; real64 R64 = -2.25; uint8 Bytes[4];
    [Static] uint32 Polish([In] uint16 Grit, [Out, EmbeddedInstance("X_Part")] string Result,
                           [In] X_Part REF Target, [In] string Names[]);
    [EmbeddedInstance("X_Part")] string Make();
};
"""


@pytest.fixture(scope="module")
def engine() -> openmi.Server:
    srv = openmi.Server(":memory:")
    srv.compile_mof(MOF)
    return srv


@pytest.mark.parametrize("name", ["X_Part", "X_Link", "X_Widget"])
def test_round_trip_with_everything(engine: openmi.Server, name: str) -> None:
    cls = engine.get_class("root/cimv2", name)
    back = class_from_xml(class_to_xml(cls, ClassOptions.full()), "root/cimv2")
    assert back == cls
    for p in cls.properties.values():
        q = back.properties[p.name]
        assert (q.class_origin, q.propagated, q.embedded_class, q.reference_class, q.array_size) == (
            p.class_origin, p.propagated, p.embedded_class, p.reference_class, p.array_size), p.name
        for qual in p.qualifiers.values():
            assert back.properties[p.name].qualifiers[qual.name].flavor == qual.flavor
    assert has_inherited_elements(back)


def test_values_and_types(engine: openmi.Server) -> None:
    w = class_from_xml(class_to_xml(engine.get_class("root/cimv2", "X_Widget"), ClassOptions.full()))
    p = w.properties
    assert p["Id"].key and p["Id"].qualifiers["MaxLen"].value == 16
    assert p["Tags"].value == ["a", "b"] and p["Big"].value == -9000000000 and p["Flag"].value is True
    assert p["Born"].value == engine.get_class("root/cimv2", "X_Part").properties["Born"].value
    assert (p["C"].value, p["R32"].value, p["R64"].value) == ("x", 1.5, -2.25)
    assert (p["Inner"].type, p["Inner"].embedded_class) == (MIType.INSTANCE, "X_Part")
    assert (p["Many"].type, p["Anything"].type, p["Anything"].embedded_class) == (
        MIType.INSTANCEA, MIType.INSTANCE, None)
    assert (p["Link"].type, p["Link"].reference_class) == (MIType.REFERENCE, "X_Part")
    assert (p["Bytes"].type, p["Bytes"].array_size) == (MIType.UINT8A, 4)
    assert p["State"].qualifiers["Values"].value == ["Off", "On"]
    m = w.methods["Polish"]
    assert m.is_static and m.parameters["Grit"].in_ and m.parameters["Result"].out
    assert m.parameters["Result"].type == MIType.INSTANCE and m.parameters["Target"].type == MIType.REFERENCE
    assert m.parameters["Names"].type == MIType.STRINGA
    assert w.methods["Make"].return_type == MIType.INSTANCE
    assert "Abstract" not in w.qualifiers and w.qualifiers["Description"].propagated


def test_options_shape_the_body(engine: openmi.Server) -> None:
    cls = engine.get_class("root/cimv2", "X_Widget")
    local = class_from_xml(class_to_xml(cls))
    assert "Id" not in local.properties and not local.properties["Grit"].qualifiers
    assert not has_inherited_elements(local)
    deep = class_to_xml(cls, ClassOptions(inherited_elements=True))
    assert 'NAME="Id"' in deep and "QUALIFIER" not in deep and "CLASSORIGIN" not in deep
    assert 'DERIVATION="X_Part"' in class_to_xml(cls, ClassOptions(inheritance_hierarchy=True),
                                                   derivation=["X_Part"])


def test_options_from_and_to_an_option_set() -> None:
    o = ClassOptions.from_option_set({"IncludeQualifiers": True, "wmi:IncludeClassOrigin": "true",
                                      "includeinheritedelements": "1", "IncludeInheritanceHierarchy": "false",
                                      "msftwinrm:UsePreciseArrays": True})
    assert o == ClassOptions(qualifiers=True, inherited_elements=True, class_origin=True)
    assert ClassOptions.from_option_set({}) == ClassOptions()
    assert ClassOptions.from_option_set(ClassOptions.full().option_set()) == ClassOptions.full()


def test_reading_what_peers_write() -> None:
    cls = class_from_xml("""<CLASS NAME="P_Thing" SUPERCLASS="P_Base" DERIVATION="P_Base, CIM_Root">
        <QUALIFIER NAME="description" TYPE="string" TOSUBCLASS="false"><VALUE>d</VALUE></QUALIFIER>
        <PROPERTY NAME="Id" TYPE="string" PROPAGATED="true" CLASSORIGIN="P_Base">
            <QUALIFIER NAME="key" TYPE="boolean"><VALUE>true</VALUE></QUALIFIER></PROPERTY>
        <PROPERTY NAME="Obj" TYPE="string" EmbeddedObject="instance" EmbeddedClassName="P_Base"/>
        <PROPERTY NAME="Any" TYPE="string" EMBEDDEDOBJECT="object"/>
        <PROPERTY NAME="C1" TYPE="char16"><VALUE>65</VALUE></PROPERTY>
        <PROPERTY NAME="C2" TYPE="char16"><VALUE>7</VALUE></PROPERTY>
        <PROPERTY.ARRAY NAME="Empty" TYPE="uint32"/>
        <METHOD NAME="Go"><PARAMETER.REFARRAY NAME="Refs" REFERENCECLASS="P_Base"/></METHOD>
    </CLASS>""")
    assert cls.superclass == "P_Base" and cls.properties["Id"].key and cls.properties["Id"].propagated
    key = cls.properties["Id"].qualifiers["Key"]
    assert key.name == "Key" and key.flavor == MIFlag.DISABLEOVERRIDE | MIFlag.TOSUBCLASS
    assert cls.qualifiers["Description"].flavor == MIFlag.ENABLEOVERRIDE | MIFlag.RESTRICTED | MIFlag.TRANSLATABLE
    assert (cls.properties["Obj"].type, cls.properties["Obj"].embedded_class) == (MIType.INSTANCE, "P_Base")
    assert cls.properties["Any"].type == MIType.INSTANCE
    assert (cls.properties["C1"].value, cls.properties["C2"].value) == ("A", "7")
    assert cls.properties["Empty"].type == MIType.UINT32A and cls.properties["Empty"].value is None
    go = cls.methods["Go"]
    assert go.return_type == MIType.UINT32 and go.parameters["Refs"].type == MIType.REFERENCEA


@pytest.mark.parametrize(("xml", "says"), [
    ("<INSTANCE CLASSNAME='X'/>", "expected a <CLASS> element, found <INSTANCE>"),
    ("<CLASS/>", "a class: <CLASS> has no NAME"),
    ("<CLASS NAME='X'><PROPERTY NAME='P'/></CLASS>", "property X.P has no TYPE"),
    ("<CLASS NAME='X'><PROPERTY NAME='P' TYPE='uint33'/></CLASS>", "property X.P: unknown CIM type 'uint33'"),
    ("<CLASS NAME='X'><PROPERTY NAME='P' TYPE='uint8'><VALUE>300</VALUE></PROPERTY></CLASS>", "property X.P"),
    ("<CLASS NAME='X'><PROPERTY NAME='P' TYPE='uint8'/><PROPERTY NAME='p' TYPE='uint8'/></CLASS>",
     "class X: p appears twice"),
    ("<CLASS NAME='X'><METHOD NAME='M'><PARAMETER NAME='A' TYPE='uint8'/><PARAMETER NAME='a' TYPE='sint8'/>"
     "</METHOD></CLASS>", "method X.M: parameter a appears twice"),
    ("<CLASS NAME='X'><PROPERTY NAME='P' TYPE='string'><QUALIFIER NAME='Q'/></PROPERTY></CLASS>",
     "property X.P, qualifier Q has no TYPE"),
    ("<CLASS NAME='X'", "malformed CLASS XML"),
    ("<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><CLASS NAME='&e;'/>", "external entity"),
])
def test_malformed_classes_are_refused(xml: str, says: str) -> None:
    with pytest.raises(WireError) as exc:
        class_from_xml(xml)
    assert says in str(exc.value)


def test_getclass_response_round_trip_and_a_namespaced_class(engine: openmi.Server) -> None:
    from openmi.protocol import wsman

    req = wsman.GetClassRequest(namespace="root/cimv2", class_name="X_Widget",
                                option_set=ClassOptions.full().option_set())
    parsed = wsman.parse_request(wsman.build_request(req), "application/soap+xml;charset=UTF-8")
    assert isinstance(parsed, wsman.GetClassRequest) and parsed.class_name == "X_Widget"
    cls = engine.get_class("root/cimv2", "X_Widget")
    data = wsman.build_response(parsed, wsman.GetClassResponse(cls=cls, derivation=["X_Part"]))
    r = wsman.parse_response(data, "application/soap+xml;charset=UTF-8", req)
    assert isinstance(r, wsman.GetClassResponse) and r.cls == cls and r.derivation == ["X_Part"]
    # a peer that puts CLASS in an XML namespace is read all the same
    odd = data.replace(b"<CLASS ", b'<c:CLASS xmlns:c="urn:example" ').replace(b"</CLASS>", b"</c:CLASS>")
    assert odd != data
    r = wsman.parse_response(odd, "application/soap+xml;charset=UTF-8", req)
    assert isinstance(r, wsman.GetClassResponse) and r.cls.name == "X_Widget"

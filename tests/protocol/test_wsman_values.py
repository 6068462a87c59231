"""CIM values on the wire (§5 of the notes): nil, arrays, datetimes, references, embedded instances, typing."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from lxml import etree

from openmi.cim import Class, Instance, MIError, MIResult, MIType, Property
from openmi.cim.classes import Method, Parameter
from openmi.protocol.wsman import (
    GetRequest,
    UriStyle,
    WSManFault,
    apply_class,
    build_request,
    instance_selectors,
    parse_request,
    parse_resource_uri,
    resource_uri,
)
from openmi.protocol.wsman.uri import resolve_namespace
from openmi.protocol.wsman.values import (
    WireError,
    element_to_instance,
    format_wire_datetime,
    instance_to_element,
    parameters_class,
    parse_wire_datetime,
    parse_wire_scalar,
)

URI = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X_Widget"
NS = (f'xmlns:p="{URI}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
      'xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" '
      'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
      'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"')

WIDGET = Class("X_Widget", properties=[
    Property("Id", MIType.UINT32, key=True),
    Property("Label", MIType.STRING),
    Property("Tags", MIType.STRINGA),
    Property("Enabled", MIType.BOOLEAN),
    Property("Ratio", MIType.REAL64),
    Property("Initial", MIType.CHAR16),
    Property("Created", MIType.DATETIME),
    Property("Delay", MIType.DATETIME),
    Property("Sizes", MIType.UINT16A),
    Property("Owner", MIType.REFERENCE, reference_class="X_Person"),
    Property("Spec", MIType.INSTANCE, embedded_class="X_Spec"),
])
SPEC = Class("X_Spec", properties=[Property("Weight", MIType.SINT64)])


def lookup(namespace: str | None, name: str) -> Class | None:
    return {"x_widget": WIDGET, "x_spec": SPEC}.get(name.lower())


def el(body: str) -> etree._Element:
    return etree.fromstring(f"<p:X_Widget {NS}>{body}</p:X_Widget>")


OWNER_EPR = (
    "<a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address>"
    "<a:ReferenceParameters>"
    "<w:ResourceURI>http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X_Person</w:ResourceURI>"
    '<w:SelectorSet><w:Selector Name="__cimnamespace">root/people</w:Selector>'
    '<w:Selector Name="Name">Ada</w:Selector></w:SelectorSet></a:ReferenceParameters>'
)
FULL = (
    "<p:Id>42</p:Id><p:Label></p:Label><p:Tags>a</p:Tags><p:Tags>b</p:Tags><p:Enabled>TRUE</p:Enabled>"
    "<p:Ratio>INF</p:Ratio><p:Initial>65</p:Initial>"
    "<p:Created><cim:Datetime>2024-05-01T10:15:30.123456+02:00</cim:Datetime></p:Created>"
    "<p:Delay>P0DT0H1M40S</p:Delay><p:Sizes>7</p:Sizes>"
    f"<p:Owner>{OWNER_EPR}</p:Owner>"
    '<p:Spec xmlns:p1="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X_Spec" xsi:type="p1:X_Spec_Type">'
    "<p1:Weight>-5</p1:Weight></p:Spec>"
)


def test_typed_reading() -> None:
    inst = element_to_instance(el(FULL), WIDGET, namespace="root/acme", class_lookup=lookup)
    assert inst.class_name == "X_Widget" and inst.namespace == "root/acme"
    assert inst["Id"] == 42 and [e.name for e in inst.key_elements] == ["Id"]
    assert inst["Label"] == ""  # empty element: empty string, not null
    assert inst["Tags"] == ["a", "b"]
    assert inst["Enabled"] is True
    assert math.isinf(inst["Ratio"])
    assert inst["Initial"] == "A"  # OMI writes char16 as its code point
    tz = dt.timezone(dt.timedelta(hours=2))
    assert inst["Created"] == dt.datetime(2024, 5, 1, 10, 15, 30, 123456, tzinfo=tz)
    assert inst["Delay"] == dt.timedelta(seconds=100)
    assert inst["Sizes"] == [7]  # a one-item array looks like a scalar on the wire
    owner = inst["Owner"]
    assert (owner.class_name, owner.namespace, dict(owner)) == ("X_Person", "root/people", {"Name": "Ada"})
    spec = inst["Spec"]
    assert spec.class_name == "X_Spec" and spec["Weight"] == -5


def test_untyped_reading_infers_what_the_wire_says() -> None:
    inst = element_to_instance(el(FULL))
    types = {e.name: e.type for e in inst.elements}
    assert types["Id"] == MIType.STRING and inst["Id"] == "42"
    assert types["Tags"] == MIType.STRINGA
    assert types["Created"] == MIType.DATETIME
    assert types["Delay"] == MIType.STRING  # bare text stays text without a class
    assert types["Owner"] == MIType.REFERENCE
    assert types["Spec"] == MIType.INSTANCE and inst["Spec"].class_name == "X_Spec"
    assert inst["Spec"]["Weight"] == "-5"


def test_nil_and_empty() -> None:
    inst = element_to_instance(el('<p:Label xsi:nil="true"/><p:Tags xsi:nil="true"/><p:Id>1</p:Id>'), WIDGET)
    assert inst["Label"] is None and inst["Tags"] is None
    untyped = element_to_instance(el('<p:Label xsi:nil="true"/>'))
    assert untyped["Label"] is None


def test_xsi_type_hints_without_class() -> None:
    inst = element_to_instance(el('<p:Code xsi:type="cim:cimUnsignedInt">6</p:Code>'
                                  '<p:Flag xsi:type="x:cimBoolean">true</p:Flag>'
                                  '<p:Bad xsi:type="cim:cimUnsignedInt">six</p:Bad>'))
    assert inst["Code"] == 6 and inst.get_element("Code").type == MIType.UINT32
    assert inst["Flag"] is True  # the hint's prefix is not resolved
    assert inst["Bad"] == "six"  # a lying hint falls back to text


@pytest.mark.parametrize("wrapper", ["Datetime", "Date", "Time", "CIM_DateTime"])
def test_datetime_wrappers(wrapper: str) -> None:
    text = {"Datetime": "2024-05-01T10:15:30Z", "Date": "2024-05-01", "Time": "10:15:30Z",
            "CIM_DateTime": "20240501101530.000000+000"}[wrapper]
    inst = element_to_instance(el(f"<p:Created><cim:{wrapper}>{text}</cim:{wrapper}></p:Created>"), WIDGET)
    assert isinstance(inst["Created"], dt.datetime)


def test_interval_wrapper() -> None:
    inst = element_to_instance(el("<p:Delay><cim:Interval>PT1M40S</cim:Interval></p:Delay>"))
    assert inst["Delay"] == dt.timedelta(seconds=100)


@pytest.mark.parametrize(("text", "value"), [
    ("2024-05-01T10:15:30Z", dt.datetime(2024, 5, 1, 10, 15, 30, tzinfo=dt.timezone.utc)),
    ("2024-05-01T10:15:30", dt.datetime(2024, 5, 1, 10, 15, 30, tzinfo=dt.timezone.utc)),
    ("2024-05-01T10:15:30.5-05:30", dt.datetime(2024, 5, 1, 10, 15, 30, 500000,
                                                tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30)))),
    ("P1DT2H3M4.000005S", dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5)),
    ("PT0S", dt.timedelta(0)),
    ("20240501101530.000000+060", dt.datetime(2024, 5, 1, 10, 15, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ("00000001020304.000000:000", dt.timedelta(days=1, hours=2, minutes=3, seconds=4)),
])
def test_parse_wire_datetime(text: str, value: dt.datetime | dt.timedelta) -> None:
    assert parse_wire_datetime(text) == value


@pytest.mark.parametrize("value", [
    dt.datetime(2024, 5, 1, 10, 15, 30, tzinfo=dt.timezone.utc),
    dt.datetime(2024, 5, 1, 10, 15, 30, 1, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
    dt.timedelta(0), dt.timedelta(days=3), dt.timedelta(seconds=100.25), dt.timedelta(days=1, hours=5),
])
def test_wire_datetime_round_trip(value: dt.datetime | dt.timedelta) -> None:
    assert parse_wire_datetime(format_wire_datetime(value)) == value


def test_formats() -> None:
    assert format_wire_datetime(dt.timedelta(seconds=100)) == "PT1M40S"
    assert format_wire_datetime(dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)) == "2024-01-02T03:04:05Z"


@pytest.mark.parametrize(("text", "t", "value"), [
    ("true", MIType.BOOLEAN, True), ("FALSE", MIType.BOOLEAN, False), ("1", MIType.BOOLEAN, True),
    (" 42 ", MIType.UINT8, 42), ("-1", MIType.SINT64, -1), ("0x10", MIType.UINT16, 16),
    ("-INF", MIType.REAL32, -math.inf), ("1.5", MIType.REAL64, 1.5), ("x", MIType.CHAR16, "x"),
    ("  spaced  ", MIType.STRING, "  spaced  "),
])
def test_parse_wire_scalar(text: str, t: MIType, value: object) -> None:
    assert parse_wire_scalar(text, t) == value


@pytest.mark.parametrize(("text", "t"), [("256", MIType.UINT8), ("yes", MIType.BOOLEAN), ("1.5", MIType.UINT32),
                                         ("tomorrow", MIType.DATETIME), ("-PT1S", MIType.DATETIME)])
def test_bad_scalars(text: str, t: MIType) -> None:
    with pytest.raises(WireError):
        parse_wire_scalar(text, t, "P")


def test_type_mismatch_names_the_property() -> None:
    with pytest.raises(WireError, match="'Id'"):
        element_to_instance(el("<p:Id>forty-two</p:Id>"), WIDGET)
    with pytest.raises(WireError):
        element_to_instance(el("<p:Id>1</p:Id><p:Id>2</p:Id>"), WIDGET)


def test_undeclared_properties_are_kept_for_the_caller() -> None:
    inst = element_to_instance(el("<p:Id>1</p:Id><p:Extra>x</p:Extra>"), WIDGET)
    assert inst["Extra"] == "x"


def test_write_read_round_trip_typed() -> None:
    owner = Instance.from_elements("X_Person", namespace="root/people")
    owner.add_element("Name", "Ada", MIType.STRING, 1 << 12)
    spec = Instance("X_Spec", {"Weight": -5})
    src = Instance("X_Widget", cls=WIDGET)
    for k, v in {"Id": 42, "Label": "<&>", "Tags": ["a", "b"], "Enabled": False, "Ratio": math.nan, "Initial": "é",
                 "Created": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc), "Delay": dt.timedelta(minutes=2),
                 "Sizes": [1, 2, 3], "Owner": owner, "Spec": spec}.items():
        src[k] = v
    for wrap in (True, False):
        xml = instance_to_element(src, namespace="root/acme", wrap_datetimes=wrap)
        back = element_to_instance(etree.fromstring(etree.tostring(xml)), WIDGET, namespace="root/acme",
                                   class_lookup=lookup)
        assert back["Id"] == 42 and back["Label"] == "<&>" and back["Tags"] == ["a", "b"]
        assert back["Enabled"] is False and math.isnan(back["Ratio"]) and back["Initial"] == "é"
        assert back["Created"] == src["Created"] and back["Delay"] == src["Delay"]
        assert back["Sizes"] == [1, 2, 3] and back["Label"] == "<&>"
        assert dict(back["Owner"]) == {"Name": "Ada"} and back["Owner"].namespace == "root/people"
        assert back["Spec"]["Weight"] == -5
        assert back["Spec"].class_name == "X_Spec"


def test_null_array_is_one_nil_element_and_empty_array_nothing() -> None:
    src = Instance("X_Widget", cls=WIDGET)
    src["Tags"] = None
    src["Sizes"] = []
    xml = instance_to_element(src)
    tags = xml.findall(f"{{{URI}}}Tags")
    assert len(tags) == 1 and tags[0].get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
    assert xml.findall(f"{{{URI}}}Sizes") == []


def test_control_characters_do_not_break_writing() -> None:
    xml = instance_to_element(Instance("X", {"S": "a\x01b"}))
    assert xml[0].text == "a\ufffdb"


def test_apply_class_retypes_text() -> None:
    raw = element_to_instance(el("<p:Id>7</p:Id><p:Sizes>3</p:Sizes><p:Enabled>true</p:Enabled><p:Other>z</p:Other>"))
    typed = apply_class(raw, WIDGET)
    assert typed["Id"] == 7 and typed["Sizes"] == [3] and typed["Enabled"] is True and typed["Other"] == "z"
    assert [e.name for e in typed.key_elements] == ["Id"]
    with pytest.raises(WireError):
        apply_class(element_to_instance(el("<p:Id>x</p:Id>")), WIDGET)


def test_instance_selectors() -> None:
    inst = Instance("X_Widget", {"Id": 5, "Label": "l"}, cls=WIDGET)
    assert instance_selectors(inst) == {"Id": "5"}
    assert instance_selectors(Instance("Dyn", {"A": True})) == {"A": "true"}


def test_parameters_class() -> None:
    m = Method("Create", MIType.UINT32, [Parameter("CommandLine", MIType.STRING),
                                         Parameter("ProcessId", MIType.UINT32, in_=False, out=True)])
    assert list(parameters_class(m).properties) == ["CommandLine"]
    assert list(parameters_class(m, output=True).properties) == ["ProcessId", "ReturnValue"]


# --- resource URIs ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("uri", "style", "namespace", "cls"), [
    ("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service", UriStyle.WMI, "root/cimv2",
     "Win32_Service"),
    ("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*", UriStyle.WMI, "root/cimv2", "*"),
    ("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/standardcimv2/MSFT_NetAdapter", UriStyle.WMI,
     "root/standardcimv2", "MSFT_NetAdapter"),
    ("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ComputerSystem", UriStyle.DMTF, None,
     "CIM_ComputerSystem"),
    ("http://schemas.microsoft.com/wbem/wscim/1/cim-schema/2/OMI_Identify", UriStyle.DMTF, None, "OMI_Identify"),
    ("http://schemas.dmtf.org/wbem/wscim/1/*", UriStyle.DMTF, None, "*"),
    ("http://schemas.dmtf.org/wbem/cim-xml/2/cim-schema/2/*", UriStyle.DMTF, None, "*"),
    ("http://schemas.microsoft.com/wbem/wsman/1/config/service/certmapping", UriStyle.OTHER, None, "certmapping"),
])
def test_resource_uris(uri: str, style: UriStyle, namespace: str | None, cls: str) -> None:
    ref = parse_resource_uri(uri)
    assert (ref.style, ref.namespace, ref.class_name) == (style, namespace, cls)


def test_resource_uri_building_and_namespace_resolution() -> None:
    assert resource_uri("root\\cimv2", "Win32_Service", UriStyle.WMI) == \
        "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"
    assert resource_uri("root/cimv2", "CIM_X") == "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_X"
    wmi = parse_resource_uri("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/X")
    assert resolve_namespace(wmi, None, "interop") == "root/cimv2"
    assert resolve_namespace(wmi, "root/other", "interop") == "root/other"  # __cimnamespace wins
    dmtf = parse_resource_uri("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X")
    assert resolve_namespace(dmtf, None, "interop") == "interop"


@pytest.mark.parametrize(("cimnamespace", "words"), [
    ("//host/root/cimv2", "names a machine"),
    ("\\\\host\\root", "names a machine"),
    ("root//cimv2", "empty segment"),
    ("root/cim v2", "illegal character"),
])
def test_the_one_namespace_rule_guards_the_wire(cimnamespace: str, words: str) -> None:
    """__cimnamespace and a WMI resource URI path follow the engine's namespace rule: a refusal is a fault
    naming the namespace, never a different namespace than the peer meant."""
    dmtf = parse_resource_uri("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X")
    with pytest.raises(MIError, match=words):
        resolve_namespace(dmtf, cimnamespace, "interop")
    body = build_request(GetRequest(class_name="X", selectors={"Id": "1", "__cimnamespace": cimnamespace}))
    with pytest.raises(WSManFault) as info:
        parse_request(body)
    assert info.value.result == MIResult.INVALID_PARAMETER and words in str(info.value)
    assert info.value.relates_to  # the fault answers the request
    wmi = parse_resource_uri("http://schemas.microsoft.com/wbem/wsman/1/wmi/root//cimv2/X")
    with pytest.raises(MIError, match="empty segment"):
        resolve_namespace(wmi, None, "interop")
    assert resolve_namespace(parse_resource_uri("http://schemas.microsoft.com/wbem/wsman/1/wmi/root\\cimv2/X"),
                             None, None) == "root/cimv2"


def test_an_embedded_instance_with_no_properties_reads_back_as_one() -> None:
    """An embedded instance with no elements is written as an empty element typed by xsi:type (the
    CIM_InstMethodCall of a static method has such a SourceInstance: the class, no instance): it reads back
    as an empty instance of that class, typed by the declaration when the class is known, not as text."""
    from openmi import Class, Instance, MIType, Property
    from openmi.protocol.wsman.values import element_to_instance, instance_to_element

    outer = Instance("Sample_Call")
    outer.add_element("Source", Instance.from_elements("Sample_Watched", {}), MIType.INSTANCE)
    outer.add_element("Note", "", MIType.STRING)
    el = instance_to_element(outer)
    back = element_to_instance(el)
    src = back.get_element("Source")
    assert src.type == MIType.INSTANCE and isinstance(src.value, Instance)
    assert src.value.class_name == "Sample_Watched" and len(src.value) == 0
    assert back.get_element("Note").value == ""  # an empty string stays a string
    cls = Class("Sample_Call", properties=[Property("Source", MIType.INSTANCE), Property("Note", MIType.STRING)])
    typed = element_to_instance(el, cls, class_lookup=lambda ns, name: cls if name == "Sample_Call" else None)
    assert isinstance(typed["Source"], Instance) and typed["Source"].class_name == "Sample_Watched"

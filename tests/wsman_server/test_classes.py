"""GetClass and EnumerateClasses served over WS-Man as Windows MI and OMI ask for them: the OMI captures
replayed against openmi serve, answers compared structurally with OMI's, the options of wsman.md §3.10,
class enumerations streamed with Pull, and the faults for an unknown class or namespace."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import openmi
from openmi import MIResult
from openmi.protocol import wsman

from .conftest import Running, start
from .test_server import FIXTURES, SOAP, basic, https, post

CIMXML = "http://schemas.dmtf.org/wbem/cim-xml/2/cim-schema/2/*"
GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
ENUMERATE = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
PULL = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"

MOF = """
class OMIPeer_Item { [Key] string Name; string Value; uint32 Size; };
[Abstract, Description("a part")] class X_Part { [Key, MaxLen(16)] string Id; string Tags[]; datetime Born; };
class X_Widget : X_Part {
    [Description("grit")] uint16 Grit = 80;
    [EmbeddedInstance("X_Part")] string Inner;
    X_Part REF Link;
    [Static] uint32 Polish([In] uint16 Grit, [Out, EmbeddedInstance("X_Part")] string Result);
};
class X_Gadget : X_Widget { boolean On; };
class X_Bolt : X_Part { real32 Length; };
"""


def class_engine() -> openmi.Server:
    engine = openmi.Server(":memory:")
    engine.compile_mof(MOF)
    return engine


@pytest.fixture
def served_classes(tmp_path: Path) -> Iterator[Running]:
    from .conftest import Recorder

    engine = class_engine()
    r = start(tmp_path, engine=engine, recorder=Recorder())
    yield r
    r.server.stop()
    engine.close()


def envelope(action: str, selectors: dict[str, str], options: dict[str, str] | None = None, body: str = "") -> bytes:
    sel = "".join(f'<w:Selector Name="{k}">{v}</w:Selector>' for k, v in selectors.items())
    opt = "".join(f'<w:Option Name="{k}" Type="xs:boolean">{v}</w:Option>' for k, v in (options or {}).items())
    return f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
 xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"
 xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd">
<s:Header><a:To>http://localhost/wsman</a:To><w:ResourceURI s:mustUnderstand="true">{CIMXML}</w:ResourceURI>
<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
<a:Action s:mustUnderstand="true">{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>
{'<w:SelectorSet>' + sel + '</w:SelectorSet>' if sel else ''}{'<w:OptionSet>' + opt + '</w:OptionSet>' if opt else ''}
</s:Header><s:Body>{body}</s:Body></s:Envelope>""".encode()


def exchange(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, Any]:
    status, _, data = post(conn, body, {"Authorization": basic()})
    try:
        req = wsman.parse_request(body, SOAP)
    except wsman.WSManFault:  # a request the server must refuse: only its fault is read
        req = wsman.GetRequest()
    try:
        return status, wsman.parse_response(data, SOAP, req)
    except openmi.MIError as exc:
        return status, exc


def body_element(data: bytes) -> Any:
    root = etree.fromstring(data)
    return root.find("{http://www.w3.org/2003/05/soap-envelope}Body")[0]


def shape(el: Any) -> Any:
    """What a CLASS element says, independent of spelling: element kinds, names, types, qualifier values
    (qualifier names in any case, flavor attributes aside) and default values."""
    out: list[Any] = []
    for c in el:
        tag = c.tag
        if tag == "QUALIFIER":
            out.append(("QUALIFIER", c.get("NAME").lower(), c.get("TYPE"), [v.text for v in c.iter("VALUE")]))
        elif tag in ("VALUE", "VALUE.ARRAY"):
            out.append((tag, [v.text for v in c.iter("VALUE")]))
        else:
            out.append((tag, c.get("NAME"), c.get("TYPE"), c.get("REFERENCECLASS"), sorted(shape(c), key=repr)))
    return sorted(out, key=repr)


def test_omi_getclass_capture_replayed(served_classes: Running) -> None:
    conn = https(served_classes)
    body = (FIXTURES / "omi" / "curl-getclass-omipeer_item-request.xml").read_bytes()
    status, _, data = post(conn, body, {"Authorization": basic()})
    assert status == 200, data[:400]
    theirs = body_element((FIXTURES / "omi" / "curl-getclass-omipeer_item-response.xml").read_bytes())
    ours = body_element(data)
    assert ours.tag == theirs.tag == "CLASS"
    assert dict(ours.attrib) == dict(theirs.attrib) == {"NAME": "OMIPeer_Item"}
    assert shape(ours) == shape(theirs)
    action = etree.fromstring(data).findtext("{*}Header/{*}Action")
    assert action == "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse"
    r = wsman.parse_response(data, SOAP, wsman.parse_request(body, SOAP))
    assert isinstance(r, wsman.GetClassResponse) and r.cls.properties["Name"].key


def test_omi_missing_class_capture_replayed(served_classes: Running) -> None:
    conn = https(served_classes)
    body = (FIXTURES / "omi" / "curl-getclass-missing-request.xml").read_bytes()
    status, _, data = post(conn, body, {"Authorization": basic()})
    assert status == 500
    theirs = (FIXTURES / "omi" / "curl-getclass-missing-response.xml").read_bytes()
    req = wsman.parse_request(body, SOAP)
    with pytest.raises(wsman.WSManFault) as ours:
        wsman.parse_response(data, SOAP, req)
    with pytest.raises(wsman.WSManFault) as reference:
        wsman.parse_response(theirs, SOAP, req)
    assert ours.value.result == reference.value.result == MIResult.INVALID_CLASS
    assert ours.value.fault.subcode == reference.value.fault.subcode == (wsman.namespaces.WSA,
                                                                         "DestinationUnreachable")
    assert ours.value.details is not None and ours.value.details["CIMStatusCode"] == 5
    assert "No_Such_Class" in ours.value.message


def test_unknown_namespace_is_status_3(served_classes: Running) -> None:
    status, r = exchange(https(served_classes), envelope(GET, {"__cimnamespace": "root/nowhere",
                                                                "ClassName": "X_Part"}))
    assert status == 500 and isinstance(r, wsman.WSManFault)
    assert r.result == MIResult.INVALID_NAMESPACE and r.details is not None and r.details["CIMStatusCode"] == 3


def test_getclass_options(served_classes: Running) -> None:
    conn = https(served_classes)
    sel = {"__cimnamespace": "root/cimv2", "ClassName": "X_Gadget"}
    _, data = post(conn, envelope(GET, sel), {"Authorization": basic()})[::2]
    plain = body_element(data)
    assert dict(plain.attrib) == {"NAME": "X_Gadget", "SUPERCLASS": "X_Widget"}
    assert [c.get("NAME") for c in plain] == ["On"]  # local elements only, no qualifiers
    full = {"IncludeQualifiers": "true", "IncludeInheritedElements": "true", "IncludeClassOrigin": "true",
            "wmi:IncludeInheritanceHierarchy": "true"}
    request = envelope(GET, sel, full)
    _, data = post(conn, request, {"Authorization": basic()})[::2]
    el = body_element(data)
    assert el.get("DERIVATION") == "X_Widget,X_Part"
    assert [c.get("NAME") for c in el if c.tag.startswith("PROPERTY")] == [
        "Id", "Tags", "Born", "Grit", "Inner", "Link", "On"]
    grit = el.find("PROPERTY[@NAME='Grit']")
    assert (grit.get("CLASSORIGIN"), grit.get("PROPAGATED"), grit.findtext("VALUE")) == ("X_Widget", "true", "80")
    assert el.find("PROPERTY[@NAME='Id']/QUALIFIER[@NAME='Key']").get("OVERRIDABLE") == "false"
    assert el.find("PROPERTY.REFERENCE[@NAME='Link']").get("REFERENCECLASS") == "X_Part"
    assert el.find("PROPERTY[@NAME='Inner']/QUALIFIER[@NAME='EmbeddedInstance']").findtext("VALUE") == "X_Part"
    polish = el.find("METHOD[@NAME='Polish']")
    assert [p.get("NAME") for p in polish.iter("PARAMETER")] == ["Grit", "Result"]
    assert el.find("QUALIFIER[@NAME='Abstract']") is None  # Restricted: X_Part's alone
    # the codec reads it back to the class the engine holds
    r = wsman.parse_response(data, SOAP, wsman.parse_request(request, SOAP))
    assert isinstance(r, wsman.GetClassResponse) and r.derivation == ["X_Widget", "X_Part"]
    assert r.cls == served_classes.engine.get_class("root/cimv2", "X_Gadget")


def test_getclass_needs_a_class_name_and_refuses_other_actions(served_classes: Running) -> None:
    conn = https(served_classes)
    status, r = exchange(conn, envelope(GET, {"__cimnamespace": "root/cimv2"}))
    assert status == 500 and isinstance(r, wsman.WSManFault)
    assert r.fault.subcode == (wsman.namespaces.WSMAN, "InvalidSelectors")
    status, r = exchange(conn, envelope(DELETE, {"__cimnamespace": "root/cimv2", "ClassName": "X_Part"}))
    assert status == 500 and isinstance(r, wsman.WSManFault)
    assert r.fault.subcode == (wsman.namespaces.WSA, "ActionNotSupported")
    assert "X_Part" in served_classes.engine.classes("root/cimv2")
    status, r = exchange(conn, envelope(GET, {"__cimnamespace": "root/cimv2", "ClassName": "X_Part", "Id": "1"}))
    assert status == 500 and isinstance(r, wsman.WSManFault)
    assert r.fault.subcode == (wsman.namespaces.WSMAN, "InvalidSelectors")


def _enumerate_all(conn: http.client.HTTPConnection, selectors: dict[str, str], enum_body: str,
                   options: dict[str, str] | None = None) -> tuple[list[Any], int]:
    status, r = exchange(conn, envelope(ENUMERATE, selectors, options, f"<n:Enumerate>{enum_body}</n:Enumerate>"))
    assert status == 200, r
    classes = list(r.classes)
    pulls = 0
    while not r.end_of_sequence:
        pull = (f"<n:Pull><n:EnumerationContext>{r.context}</n:EnumerationContext>"
                "<n:MaxElements>2</n:MaxElements></n:Pull>")
        status, r = exchange(conn, envelope(PULL, {"__cimnamespace": selectors["__cimnamespace"]}, None, pull))
        assert status == 200, r
        assert isinstance(r, wsman.PullResponse) and not r.items
        classes.extend(r.classes)
        pulls += 1
    return classes, pulls


def test_enumerate_classes_streams_with_pull(served_classes: Running) -> None:
    conn = https(served_classes)
    ns = {"__cimnamespace": "root/cimv2"}
    every, pulls = _enumerate_all(conn, ns, "")
    assert pulls >= 3  # not optimized, two per Pull: streamed, not in one answer
    names = [c.name for c in every]
    assert {"OMIPeer_Item", "X_Part", "X_Widget", "X_Gadget", "X_Bolt"} <= set(names)
    assert names.index("X_Part") < names.index("X_Widget") < names.index("X_Gadget")
    deep, _ = _enumerate_all(conn, {**ns, "ClassName": "X_Part"},
                             "<w:OptimizeEnumeration/><w:MaxElements>1</w:MaxElements>",
                             {"IncludeInheritedElements": "true", "IncludeQualifiers": "true"})
    assert [c.name for c in deep] == ["X_Widget", "X_Gadget", "X_Bolt"]
    assert deep[1] == served_classes.engine.get_class("root/cimv2", "X_Gadget")
    shallow, _ = _enumerate_all(conn, {**ns, "ClassName": "X_Part"}, "<b:PolymorphismMode>None</b:PolymorphismMode>")
    assert [c.name for c in shallow] == ["X_Widget", "X_Bolt"]
    names_only, _ = _enumerate_all(conn, {**ns, "ClassName": "X_Widget"}, "", {"ClassNamesOnly": "true"})
    assert [(c.name, c.superclass, list(c.properties)) for c in names_only] == [("X_Gadget", "X_Widget", [])]


def test_enumerate_classes_of_an_unknown_root(served_classes: Running) -> None:
    status, r = exchange(https(served_classes), envelope(ENUMERATE, {"__cimnamespace": "root/cimv2",
                                                                     "ClassName": "No_Such"}, None,
                                                         "<n:Enumerate/>"))
    assert status == 500 and isinstance(r, wsman.WSManFault) and r.result == MIResult.INVALID_CLASS


def test_getclass_in_the_ws_cim_format_is_not_supported(served_classes: Running) -> None:
    body = envelope(GET, {"__cimnamespace": "root/cimv2", "ClassName": "X_Part"}).replace(
        CIMXML.encode(), b"http://schemas.dmtf.org/wbem/ws-cim/1/cim-schema/2/*")
    status, r = exchange(https(served_classes), body)
    assert status == 500 and isinstance(r, wsman.WSManFault)
    assert r.fault.subcode == (wsman.namespaces.WSMAN, "UnsupportedFeature") and "WS-CIM" in r.message

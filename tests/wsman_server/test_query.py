"""WQL/CQL over WS-Management against a real ``openmi serve`` on loopback: our remote sessions in both URI
styles, independent clients (pywinrm, pypsrp), OMI's recorded requests replayed, and the faults."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.wsman import NAMESPACES, WSMan

import openmi
from openmi import AuthType, DestinationOptions, MIResult, MIType, OperationFlags
from openmi.wsman_server.config import ServeConfig

from .conftest import PASSWORD, Running, start

WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"
WQL = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
WSEN = NAMESPACES["wsen"]
WSMAN = NAMESPACES["wsman"]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OMI_FAULT_ACTIONS = {  # the Actions OMI's client parses a fault under (notes §6.4)
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/enumeration/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/eventing/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/transfer/fault",
}


@pytest.fixture
def people(tmp_path: Path) -> Iterator[Running]:
    r = start(tmp_path, allow_unencrypted=True)
    e = r.engine
    e.define_class("root/cimv2", openmi.Class("Sample_Employee", "Sample_Person", [
        openmi.Property("Dept", MIType.STRING)]))
    e.define_class("root/cimv2", openmi.Class("OMIPeer_Item", properties=[
        openmi.Property("Name", MIType.STRING, key=True), openmi.Property("Value", MIType.STRING),
        openmi.Property("Size", MIType.UINT32)]))
    with openmi.Application() as app:
        s = app.new_session(server=e)
        for i in range(1, 8):
            s.create(openmi.Instance("Sample_Person", {
                "Id": i, "Name": ["Ada", "alan", "Grace", "Edsger", "Barbara", "Ken", "x<&y"][i - 1],
                "Tags": ["t"], "Born": dt.datetime(1900 + i, 1, 1, tzinfo=dt.timezone.utc)}))
        s.create(openmi.Instance("Sample_Employee", {"Id": 10, "Name": "Emp", "Dept": "Ops"}))
        for name, size in (("qa", 3), ("qb", 9), ("other", 20)):
            s.create(openmi.Instance("OMIPeer_Item", {"Name": name, "Value": "v", "Size": size}))
    yield r
    r.server.stop()
    r.engine.close()


def remote(app: openmi.Application, r: Running, style: str) -> openmi.Session:
    o = DestinationOptions("http", r.http_port, encryption="never", max_elements=2, uri_style=style)
    o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    return app.new_session("127.0.0.1", "WINRM", o)


def ids(xs: list[openmi.Instance]) -> list[int]:
    return sorted(int(x["Id"]) for x in xs)


@pytest.mark.parametrize("style", ["wmi", "dmtf"])
def test_remote_queries(people: Running, style: str) -> None:
    with openmi.Application() as app:
        s = remote(app, people, style)
        assert ids(s.query("SELECT * FROM Sample_Person WHERE Id > 2 AND Name <> 'x<&y'")) == [3, 4, 5, 6, 10]
        assert ids(s.query("SELECT * FROM Sample_Person WHERE Name LIKE 'A%'")) == [1, 2]
        assert ids(s.query("SELECT * FROM Sample_Person WHERE Name = 'x<&y'")) == [7]
        assert ids(s.query("SELECT * FROM Sample_Person WHERE Born < '19030101000000.000000+000'")) == [1, 2]
        assert ids(s.query("SELECT * FROM Sample_Person WHERE Id > 5", dialect="CQL")) == [6, 7, 10]
        shallow = s.query("SELECT * FROM Sample_Person WHERE Id > 5", flags=OperationFlags.POLYMORPHISM_SHALLOW)
        assert ids(shallow) == [6, 7]
        deep = s.query("SELECT * FROM Sample_Person WHERE Id = 10")
        assert [(i.class_name, i["Dept"]) for i in deep] == [("Sample_Employee", "Ops")]
        proj = s.query("SELECT Name, Born FROM Sample_Person WHERE Id <= 2")
        assert sorted(i["Name"] for i in proj) == ["Ada", "alan"]
        assert all(i.class_name == "Sample_Person" and set(i) == {"Id", "Name", "Born"} for i in proj)
        assert {i["Born"] for i in proj} == {dt.datetime(1901, 1, 1, tzinfo=dt.timezone.utc),
                                             dt.datetime(1902, 1, 1, tzinfo=dt.timezone.utc)}
        with s.query_instances("root/cimv2", "WQL", "SELECT * FROM Sample_Person WHERE Nmae = 1") as op:
            res = op.get_instance()
        assert res.result == MIResult.INVALID_QUERY
        assert res.error_message == "column 35: unknown property 'Nmae' of Sample_Person"
        with s.query_instances("root/cimv2", "WQL", "SELECT * FROM Nope") as op:
            assert op.get_instance().result == MIResult.INVALID_CLASS  # (as WMI and OMI answer it)
        with s.query_instances("root/nowhere", "WQL", "SELECT * FROM Sample_Person") as op:
            assert op.get_instance().result == MIResult.INVALID_NAMESPACE


# --- raw requests: what the server sends back, byte for byte ------------------------------------------


def envelope(port: int, uri: str, filter_xml: str, *, cimnamespace: str | None = None, optimize: bool = True) -> str:
    sel = (f'<w:SelectorSet><w:Selector Name="__cimnamespace">{cimnamespace}</w:Selector></w:SelectorSet>'
           if cimnamespace else "")
    opt = "<w:OptimizeEnumeration/><w:MaxElements>50</w:MaxElements>" if optimize else ""
    return f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
  xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="{WSMAN}" xmlns:n="{WSEN}">
 <s:Header>
  <a:To>http://127.0.0.1:{port}/wsman</a:To>
  <w:ResourceURI s:mustUnderstand="true">{uri}</w:ResourceURI>
  <a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
  <a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate</a:Action>
  <w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize>
  <a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>
  <w:OperationTimeout>PT20S</w:OperationTimeout>{sel}
 </s:Header>
 <s:Body><n:Enumerate>{opt}{filter_xml}</n:Enumerate></s:Body>
</s:Envelope>"""


def wql(text: str, dialect: str = WQL) -> str:
    return f'<w:Filter Dialect="{dialect}">{text.replace("&", "&amp;").replace("<", "&lt;")}</w:Filter>'


def post(r: Running, body: str | bytes) -> tuple[int, bytes]:
    from winrm.exceptions import WSManFaultError as WinRMFault
    from winrm.protocol import Protocol

    p = Protocol(endpoint=f"http://127.0.0.1:{r.http_port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    try:
        return 200, p.send_message(body if isinstance(body, str) else body.decode())
    except WinRMFault as exc:
        return exc.code, exc.response.encode() if isinstance(exc.response, str) else exc.response


def fault_parts(data: bytes) -> dict[str, object]:
    root = ET.fromstring(data)
    soap = "{http://www.w3.org/2003/05/soap-envelope}"
    detail = root.find(f".//{soap}Detail")
    assert detail is not None
    kids = [c.tag.rpartition("}")[2] for c in detail]
    omi = next(c for c in detail if c.tag.endswith("}OMI_Error"))
    return {
        "action": root.findtext(".//{http://schemas.xmlsoap.org/ws/2004/08/addressing}Action"),
        "subcode": root.findtext(f".//{soap}Subcode/{soap}Value"),
        "detail": kids,
        "message_id": omi.findtext("{*}MessageID"),
        "status": omi.findtext("{*}CIMStatusCode"),
        "message": omi.findtext("{*}Message"),
    }


def test_pywinrm_wql_enumerate_on_the_star_uri(people: Running) -> None:
    """pywinrm sends what WinRM clients send: the namespace * URI, the FROM class decides."""
    status, data = post(people, envelope(people.http_port, WMI + "*",
                                         wql("SELECT Name,Id FROM Sample_Person WHERE Id < 3 OR Name = 'x<&y'")))
    assert status == 200
    root = ET.fromstring(data)
    frags = root.findall(f".//{{{WSMAN}}}Items/{{{WSMAN}}}XmlFragment")
    # WinRM's projection: unqualified properties, alphabetical, keys included
    assert [[(c.tag, c.text) for c in f] for f in frags] == [
        [("Id", "1"), ("Name", "Ada")], [("Id", "2"), ("Name", "alan")], [("Id", "7"), ("Name", "x<&y")]]
    assert root.find(f".//{{{WSMAN}}}EndOfSequence") is not None
    # SELECT * comes back as the class element
    status, data = post(people, envelope(people.http_port, WMI + "*", wql("SELECT * FROM Sample_Employee")))
    assert status == 200 and b"/wmi/root/cimv2/Sample_Employee" in data and b"<p:Dept>Ops</p:Dept>" in data


def test_pypsrp_wql_enumerate_and_pull(people: Running) -> None:
    w = WSMan("127.0.0.1", port=people.http_port, username="alice", password=PASSWORD, ssl=False, auth="basic",
              encryption="never")
    body = ET.Element(f"{{{WSEN}}}Enumerate")
    f = ET.SubElement(body, f"{{{WSMAN}}}Filter", Dialect=WQL)
    f.text = "SELECT * FROM Sample_Person WHERE Name LIKE '%a%' AND Id <> 5"
    resp = w.enumerate(WMI + "*", body)
    context = resp.findtext(f".//{{{WSEN}}}EnumerationContext")
    names: list[str | None] = []
    while context:
        pull = ET.Element(f"{{{WSEN}}}Pull")
        ET.SubElement(pull, f"{{{WSEN}}}EnumerationContext").text = context
        ET.SubElement(pull, f"{{{WSEN}}}MaxElements").text = "2"
        p = w.pull(WMI + "*", pull)
        names += [e.text for e in p.iter(f"{{{WMI}Sample_Person}}Name")]
        end = p.find(f".//{{{WSEN}}}EndOfSequence")
        context = None if end is not None else p.findtext(f".//{{{WSEN}}}EnumerationContext")
    assert sorted(n or "" for n in names) == ["Ada", "Grace", "alan"]
    bad = ET.Element(f"{{{WSEN}}}Enumerate")
    ET.SubElement(bad, f"{{{WSMAN}}}Filter", Dialect=WQL).text = "SELECT * FROM Sample_Person WHERE Id >"
    with pytest.raises(WSManFaultError) as ei:
        w.enumerate(WMI + "*", bad)
    assert ei.value.code == 2150858778          # what WinRM sends for a bad WQL Enumerate
    assert "column 39: expected a property" in str(ei.value.reason)


@pytest.mark.parametrize(("filter_xml", "uri", "subcode", "status", "words"), [
    (wql("SELECT * FROM Sample_Person WHERE Nmae = 1"), WMI + "*", "CannotProcessFilter", "15",
     "column 35: unknown property 'Nmae'"),
    (wql("SELECT * FROM Sample_Person WHERE"), WMI + "Sample_Person", "CannotProcessFilter", "15", "column 34"),
    (wql("SELECT * FROM OMIPeer_Item"), WMI + "Sample_Person", "CannotProcessFilter", "15",
     "selects from OMIPeer_Item, but the resource URI names Sample_Person"),
    (wql("SELECT * FROM Sample_Person WHERE Name LIKE 'a%'", "http://schemas.dmtf.org/wbem/cql/1/dsp0202.pdf"),
     WMI + "*", "CannotProcessFilter", "15", "LIKE is not supported in CQL"),
    ('<w:Filter Dialect="http://example.com/XQL">SELECT * FROM Sample_Person</w:Filter>', WMI + "*",
     "FilterDialectRequestedUnavailable", "14", "http://example.com/XQL"),
    ('<w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL"> </w:Filter>', WMI + "*",
     "CannotProcessFilter", "15", "holds no query"),
])
def test_query_faults_parse_in_every_client(people: Running, filter_xml: str, uri: str, subcode: str, status: str,
                                            words: str) -> None:
    code, data = post(people, envelope(people.http_port, uri, filter_xml))
    assert code == 500
    parts = fault_parts(data)
    assert parts["action"] in OMI_FAULT_ACTIONS          # OMI's client reads it (not "…/enumeration/fault")
    assert str(parts["subcode"]).endswith(":" + subcode)  # the wsen: subcode WinRM clients expect
    detail = parts["detail"]
    assert isinstance(detail, list) and detail.index("WSManFault") < detail.index("OMI_Error")
    assert parts["status"] == status and parts["message_id"] == f"OMI:MI_Result:{status}"
    assert words in str(parts["message"])


def test_omi_recorded_query_requests_replayed(people: Running) -> None:
    """OMI's own WQL requests (class URI plus __cimnamespace) against openmi serve."""
    def replay(stem: str) -> tuple[int, bytes]:
        body = (FIXTURES / "omi" / f"{stem}-request.xml").read_text()
        return post(people, body.replace("127.0.0.1:15985", f"127.0.0.1:{people.http_port}"))

    code, data = replay("curl-wql-filter")
    assert code == 200
    items = ET.fromstring(data).find(f".//{{{WSMAN}}}Items")
    assert items is not None and [c.findtext("{*}Name") for c in items] == ["other", "qb"]
    code, data = replay("curl-wql-projection")        # DMTF style: the class element, selected + keys
    items = ET.fromstring(data).find(f".//{{{WSMAN}}}Items")
    assert items is not None
    assert [[g.tag.rpartition("}")[2] for g in c] for c in items] == [["Name"], ["Name"]]
    assert b"XmlFragment" not in data
    code, data = replay("curl-wql-invalid-query")
    assert code == 500 and fault_parts(data)["status"] == "15"
    code, data = replay("curl-unknown-dialect")
    assert code == 500 and fault_parts(data)["status"] == "14"


def test_selector_filter_and_wildcards(people: Running) -> None:
    sel = ('<w:Filter Dialect="http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"><w:SelectorSet>'
           '<w:Selector Name="Name">Grace</w:Selector></w:SelectorSet></w:Filter>')
    code, data = post(people, envelope(people.http_port, WMI + "Sample_Person", sel))
    assert code == 200 and data.count(b"<p:Name>") == 1 and b"Grace" in data
    # DMTF's wildcard URI with __cimnamespace: the FROM class decides too
    code, data = post(people, envelope(people.http_port, "http://schemas.dmtf.org/wbem/wscim/1/*",
                                       wql("SELECT * FROM OMIPeer_Item WHERE Size < 5"), cimnamespace="root/cimv2"))
    assert code == 200 and b"<p:Name>qa</p:Name>" in data and b"qb" not in data
    # not optimized: the context first, the items in Pulls (errors still fail the Enumerate itself)
    code, data = post(people, envelope(people.http_port, WMI + "*", wql("SELECT * FROM Sample_Person WHERE Id = 99"),
                                       optimize=False))
    assert code == 200 and b"EnumerationContext" in data
    code, data = post(people, envelope(people.http_port, WMI + "*", wql("SELECT * FROM Nope"), optimize=False))
    assert code == 500 and fault_parts(data)["status"] == "5"  # INVALID_CLASS, as OMI answers it


def test_omis_client_gets_omis_shapes(people: Running) -> None:
    """OMI's own client (omicli) names no User-Agent and reads OMI's shapes: datetimes as plain text, a query's
    selected properties in the class's element. Every other client (pywinrm here, which names itself) gets
    WinRM's: ``cim:Datetime`` wrappers and ``wsman:XmlFragment`` items for a WMI-style query."""
    import base64
    import http.client

    body = envelope(people.http_port, WMI + "*", wql("SELECT Name, Born FROM Sample_Person WHERE Id = 1"))
    code, winrm_like = post(people, body)
    assert code == 200 and b"XmlFragment" in winrm_like and b"Datetime>" in winrm_like
    conn = http.client.HTTPConnection("127.0.0.1", people.http_port, timeout=30)
    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    conn.request("POST", "/wsman", body.encode(), {  # (http.client adds no User-Agent, as OMI's client)
        "Authorization": f"Basic {auth}", "Content-Type": "application/soap+xml;charset=UTF-8"})
    reply = conn.getresponse()
    omi_like = reply.read()
    conn.close()
    assert reply.status == 200 and b"XmlFragment" not in omi_like and b"Datetime>" not in omi_like
    assert re.search(rb"<p:Sample_Person [^>]*>.*<p:Born>1901-01-01T00:00:00Z</p:Born>", omi_like), omi_like[-600:]


def test_omis_shapes_survive_forwarding(people: Running) -> None:
    """A request another worker (or host) forwards carries whether its client reads OMI's shapes, since the
    HTTP headers that told it stay with the worker that took the connection."""
    from openmi.protocol import wsman
    from openmi.wsman_server.forward import header_user, request_header

    req = wsman.GetRequest(namespace="root/cimv2", class_name="Sample_Person", selectors={"Id": "1"},
                           uri_style=wsman.UriStyle.DMTF)
    body = wsman.build_request(req)
    user = people.server.users.get("alice")
    for plain in (False, True):
        header = request_header("application/soap+xml;charset=UTF-8", user, plain)
        status, data = people.server.service.answer(body, header["ctype"], header_user(header),
                                                    plain=bool(header.get("plain")))
        assert status == 200 and b"1901-01-01T00:00:00Z" in data
        assert (b"Datetime>" in data) is not plain


@pytest.mark.parametrize(("shapes", "wrapped"), [("auto", False), ("winrm", True), ("omi", False)])
def test_client_shapes_configuration(tmp_path: Path, shapes: str, wrapped: bool) -> None:
    """``client_shapes`` decides for every client when "auto" (by the User-Agent) is not wanted; here a client
    that names no User-Agent reads a datetime."""
    import base64
    import http.client

    from openmi.protocol import wsman

    r = start(tmp_path, allow_unencrypted=True, client_shapes=shapes)
    try:
        with openmi.Application() as app:
            app.new_session(server=r.engine).create(openmi.Instance("Sample_Person", {
                "Id": 1, "Born": dt.datetime(1901, 1, 1, tzinfo=dt.timezone.utc)}))
        body = wsman.build_request(wsman.GetRequest(namespace="root/cimv2", class_name="Sample_Person",
                                                    selectors={"Id": "1"}, uri_style=wsman.UriStyle.DMTF))
        conn = http.client.HTTPConnection("127.0.0.1", r.http_port, timeout=30)
        auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        conn.request("POST", "/wsman", body, {"Authorization": f"Basic {auth}",
                                              "Content-Type": "application/soap+xml;charset=UTF-8"})
        reply = conn.getresponse()
        data = reply.read()
        conn.close()
        assert reply.status == 200 and b"1901-01-01T00:00:00Z" in data
        assert (b"Datetime>" in data) is wrapped
    finally:
        r.server.stop()
        r.engine.close()
    with pytest.raises(ValueError, match="client_shapes"):
        ServeConfig().set("client_shapes", "both")

"""Both halves of the codec against each other: what the client builds the server parses, and what the
server builds the client parses, for every operation."""

from __future__ import annotations

import codecs
import datetime as dt

import pytest
from lxml import etree

import openmi
from openmi.cim import Class, Instance, MIFlag, MIResult, MIType, Property
from openmi.cim.classes import Method, Parameter
from openmi.protocol.wsman import (
    AssociationFilter,
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    DeleteResponse,
    EnumerateRequest,
    EnumerateResponse,
    EnumerationMode,
    Filter,
    GetRequest,
    GetResponse,
    IdentifyRequest,
    IdentifyResponse,
    InvokeRequest,
    InvokeResponse,
    PolymorphismMode,
    PullRequest,
    PullResponse,
    PutRequest,
    PutResponse,
    ReleaseRequest,
    ReleaseResponse,
    Request,
    UriStyle,
    WSManFault,
    build_request,
    build_response,
    parse_request,
    parse_response,
    request_headers,
)
from openmi.protocol.wsman import namespaces as ns

WIDGET = Class("X_Widget", properties=[
    Property("Id", MIType.UINT32, key=True),
    Property("Label", MIType.STRING),
    Property("When", MIType.DATETIME),
], methods=[Method("Polish", MIType.UINT32, [Parameter("Grit", MIType.UINT16),
                                             Parameter("Done", MIType.BOOLEAN, in_=False, out=True)])])


def lookup(namespace: str | None, name: str) -> Class | None:
    return WIDGET if name.lower() == "x_widget" else None


def widget(i: int = 42, label: str = "left") -> Instance:
    inst = Instance("X_Widget", cls=WIDGET, namespace="root/acme")
    inst["Id"] = i
    inst["Label"] = label
    inst["When"] = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    return inst


def common(style: UriStyle = UriStyle.DMTF) -> dict[str, object]:
    return dict(namespace="root/acme", class_name="X_Widget", uri_style=style, to="http://srv:5985/wsman",
                max_envelope_size=153600, operation_timeout=30.0, locale="en-US", data_locale="de-DE",
                session_id="uuid:S", option_set={"IncludeQualifiers": True, "Depth": 2, "Name": "x"})


def server_sees(req: Request, **kw: object) -> Request:
    data = build_request(req, **kw)  # type: ignore[arg-type]
    return parse_request(data, request_headers(req)["Content-Type"], class_lookup=lookup)


@pytest.mark.parametrize("style", [UriStyle.DMTF, UriStyle.WMI])
def test_headers_round_trip(style: UriStyle) -> None:
    req = GetRequest(selectors={"Id": "42"}, **common(style))  # type: ignore[arg-type]
    got = server_sees(req)
    assert isinstance(got, GetRequest)
    for attr in ("message_id", "to", "namespace", "class_name", "selectors", "operation_timeout",
                 "max_envelope_size", "locale", "data_locale", "session_id", "option_set", "uri_style"):
        assert getattr(got, attr) == getattr(req, attr), attr
    assert got.resource_uri == req.effective_resource_uri()


def test_reference_selector_round_trip() -> None:
    ref = Instance.from_elements("X_Person", namespace="root/people")
    ref.add_element("Name", "Ada", MIType.STRING, MIFlag.KEY)
    got = server_sees(DeleteRequest(selectors={"Owner": ref, "Id": "1"}, **common()))  # type: ignore[arg-type]
    owner = got.selectors["Owner"]
    assert isinstance(owner, Instance) and owner.namespace == "root/people" and dict(owner) == {"Name": "Ada"}


@pytest.mark.parametrize("kind", [PutRequest, CreateRequest])
@pytest.mark.parametrize("wrap", [False, True])
def test_instance_bodies_typed_by_the_server(kind: type[PutRequest] | type[CreateRequest], wrap: bool) -> None:
    req = kind(instance=widget(), selectors={"Id": "42"} if kind is PutRequest else {},
               **common())  # type: ignore[arg-type]
    got = server_sees(req, wrap_datetimes=wrap)
    assert isinstance(got, kind) and got.instance is not None
    assert got.instance == widget()
    assert [e.name for e in got.instance.key_elements] == ["Id"]


def test_enumerate_round_trip() -> None:
    ref = Instance.from_elements("X_Person", namespace="root/people")
    ref.add_element("Name", "Ada", MIType.STRING, MIFlag.KEY)
    for flt in (Filter(dialect=ns.DIALECT_WQL, query="SELECT * FROM X_Widget WHERE Id > 3"),
                Filter(dialect=ns.DIALECT_SELECTOR, selectors={"Label": "left"}),
                Filter(dialect=ns.DIALECT_ASSOCIATION, association=AssociationFilter(
                    object=ref, associators=False, association_class="X_Owns", role="Owner",
                    result_class="X_Widget", result_role="Thing"))):
        req = EnumerateRequest(optimize=True, max_elements=50, mode=EnumerationMode.OBJECT_AND_EPR,
                               polymorphism=PolymorphismMode.NONE, filter=flt, expires="PT10M",
                               **common())  # type: ignore[arg-type]
        got = server_sees(req)
        assert isinstance(got, EnumerateRequest)
        assert (got.optimize, got.max_elements, got.mode, got.polymorphism, got.expires) == \
            (True, 50, EnumerationMode.OBJECT_AND_EPR, PolymorphismMode.NONE, "PT10M")
        assert got.filter is not None and got.filter.dialect == flt.dialect
        assert got.filter.query == flt.query and got.filter.selectors == flt.selectors
        if flt.association is not None:
            a = got.filter.association
            assert a is not None and not a.associators and dict(a.object) == {"Name": "Ada"}
            assert (a.association_class, a.role, a.result_class, a.result_role) == \
                ("X_Owns", "Owner", "X_Widget", "Thing")


def test_pull_release_invoke_identify_round_trip() -> None:
    pull = server_sees(PullRequest(context="uuid:C", max_elements=5, max_time=2.5, max_characters=1000,
                                   **common()))  # type: ignore[arg-type]
    assert isinstance(pull, PullRequest)
    assert (pull.context, pull.max_elements, pull.max_time, pull.max_characters) == ("uuid:C", 5, 2.5, 1000)
    rel = server_sees(ReleaseRequest(context="17", **common()))  # type: ignore[arg-type]
    assert isinstance(rel, ReleaseRequest) and rel.context == "17"
    params = Instance.from_elements("__parameters")
    params.add_element("Grit", "120", MIType.STRING)
    inv = server_sees(InvokeRequest(method="Polish", parameters=params, selectors={"Id": "1"},
                                    **common(UriStyle.WMI)))  # type: ignore[arg-type]
    assert isinstance(inv, InvokeRequest) and inv.method == "Polish" and inv.parameters is not None
    assert inv.parameters["Grit"] == 120  # typed from the method's parameter
    # an openmi.Reference parameter travels as an EPR (what OMI and WinRM read as a REF parameter)
    data = build_request(InvokeRequest(method="Polish", parameters=Instance("__parameters", {
        "rf": openmi.Reference("MSFT_Person", {"Key": 10})}), selectors={"Id": "1"}, **common()))  # type: ignore[arg-type]
    assert b"ReferenceParameters" in data and b"<a:Address" in data
    ident = IdentifyRequest(unauthenticated=True)
    assert request_headers(ident)["WSMANIDENTIFY"] == "unauthenticated"
    got = parse_request(build_request(ident), wsmanidentify="unauthenticated")
    assert isinstance(got, IdentifyRequest) and got.unauthenticated


def test_dmtf_invoke_action_like_omi() -> None:
    req = InvokeRequest(method="Polish", action_uri="http://srv/wbem/wscim/1/cim-schema/2/X_Widget/Polish",
                        **common())  # type: ignore[arg-type]
    got = server_sees(req)
    assert isinstance(got, InvokeRequest) and got.method == "Polish"


# --- server → client ---------------------------------------------------------------------------------

def client_sees(req: Request, resp: object, **kw: object) -> object:
    server_req = server_sees(req)
    data = build_response(server_req, resp, **kw)  # type: ignore[arg-type]
    return parse_response(data, None, req, class_lookup=lookup)


@pytest.mark.parametrize("style", [UriStyle.DMTF, UriStyle.WMI])
def test_get_put_create_delete(style: UriStyle) -> None:
    req = GetRequest(selectors={"Id": "42"}, **common(style))  # type: ignore[arg-type]
    got = client_sees(req, GetResponse(instance=widget()))
    assert isinstance(got, GetResponse) and got.instance == widget()
    assert got.relates_to == req.message_id and got.action == ns.ACTION_GET + "Response"
    put = client_sees(PutRequest(instance=widget(), selectors={"Id": "42"}, **common(style)),  # type: ignore[arg-type]
                      PutResponse(instance=widget(label="right")))
    assert isinstance(put, PutResponse) and put.instance is not None and put.instance["Label"] == "right"
    empty = client_sees(PutRequest(instance=widget(), **common(style)), PutResponse())  # type: ignore[arg-type]
    assert isinstance(empty, PutResponse) and empty.instance is None
    created = client_sees(CreateRequest(instance=widget(), **common(style)),  # type: ignore[arg-type]
                          CreateResponse(instance_name=widget().keys_only()))
    assert isinstance(created, CreateResponse) and created.selectors == {"Id": "42"}
    assert created.instance_name is not None and created.instance_name.namespace == "root/acme"
    assert isinstance(client_sees(DeleteRequest(**common(style)), DeleteResponse()),  # type: ignore[arg-type]
                      DeleteResponse)


@pytest.mark.parametrize("mode", list(EnumerationMode))
def test_enumeration_modes(mode: EnumerationMode) -> None:
    req = EnumerateRequest(optimize=True, max_elements=10, mode=mode, **common())  # type: ignore[arg-type]
    items = [widget(1), widget(2)]
    got = client_sees(req, EnumerateResponse(context="uuid:CTX", items=items, end_of_sequence=False))
    assert isinstance(got, EnumerateResponse) and got.context == "uuid:CTX" and not got.end_of_sequence
    if mode is EnumerationMode.EPR:
        assert [dict(i) for i in got.items] == [{"Id": "1"}, {"Id": "2"}]
        assert got.mode is EnumerationMode.EPR
    else:
        assert got.items == items
    if mode is EnumerationMode.OBJECT_AND_EPR:
        assert len(got.eprs) == 2 and got.eprs[0].namespace == "root/acme"


def test_unoptimized_enumerate_then_pulls() -> None:
    req = EnumerateRequest(**common())  # type: ignore[arg-type]
    got = client_sees(req, EnumerateResponse(context="7"))
    assert isinstance(got, EnumerateResponse) and got.items == [] and got.context == "7"
    pull = PullRequest(context="7", max_elements=1, **common())  # type: ignore[arg-type]
    p1 = client_sees(pull, PullResponse(context="8", items=[widget(1)]))
    assert isinstance(p1, PullResponse) and p1.context == "8" and p1.items == [widget(1)]
    p2 = client_sees(pull, PullResponse(context="8", items=[widget(2)], end_of_sequence=True,
                                        mode=EnumerationMode.OBJECT_AND_EPR))
    assert isinstance(p2, PullResponse) and p2.end_of_sequence and p2.context is None
    assert len(p2.eprs) == 1
    assert isinstance(client_sees(ReleaseRequest(context="8", **common()), ReleaseResponse()),  # type: ignore[arg-type]
                      ReleaseResponse)


def test_invoke_response() -> None:
    out = Instance.from_elements("__parameters")
    out.add_element("Done", True, MIType.BOOLEAN)
    out.add_element("ReturnValue", 0, MIType.UINT32)
    req = InvokeRequest(method="Polish", selectors={"Id": "1"}, **common(UriStyle.WMI))  # type: ignore[arg-type]
    server_req = server_sees(req)
    data = build_response(server_req, InvokeResponse(method="Polish", parameters=out))
    root = etree.fromstring(data)
    assert root.findtext(f"{ns.S_HEADER}/{ns.A_ACTION}") == req.action + "Response"
    assert etree.QName(root.find(ns.S_BODY)[0]).localname == "Polish_OUTPUT"  # type: ignore[index]
    got = parse_response(data, None, req, class_lookup=lookup)
    assert isinstance(got, InvokeResponse) and got.parameters is not None
    assert got.parameters["Done"] is True and got.parameters["ReturnValue"] == 0


def test_identify_response() -> None:
    resp = IdentifyResponse(product_vendor="openmi", product_version="0.1",
                            security_profiles=[ns.SECPROFILE_HTTP_BASIC], fault_includes_cim_error=True)
    got = client_sees(IdentifyRequest(), resp)
    assert isinstance(got, IdentifyResponse)
    assert (got.product_vendor, got.product_version, got.security_profiles, got.fault_includes_cim_error) == \
        ("openmi", "0.1", [ns.SECPROFILE_HTTP_BASIC], True)
    anon = parse_request(build_request(IdentifyRequest()), wsmanidentify="unauthenticated")
    got = parse_response(build_response(anon, resp), None, IdentifyRequest())
    assert isinstance(got, IdentifyResponse) and got.product_version is None  # not told to strangers


def test_utf16_request_gets_utf16_response() -> None:
    req = GetRequest(selectors={"Id": "42"}, **common())  # type: ignore[arg-type]
    server_req = parse_request(build_request(req).decode().encode("utf-16"), "application/soap+xml;charset=UTF-16",
                               class_lookup=lookup)
    data = build_response(server_req, GetResponse(instance=widget(label="Größe")))
    assert data.startswith(codecs.BOM_UTF16_LE)
    got = parse_response(data, "application/soap+xml;charset=UTF-16", req, class_lookup=lookup)
    assert isinstance(got, GetResponse) and got.instance["Label"] == "Größe"


def test_response_over_max_envelope_size_is_a_fault() -> None:
    req = GetRequest(selectors={"Id": "42"}, **common())  # type: ignore[arg-type]
    req.max_envelope_size = 8192
    server_req = server_sees(req)
    with pytest.raises(WSManFault) as info:
        build_response(server_req, GetResponse(instance=widget(label="x" * 10000)))
    assert info.value.fault.detail_name == "MaxEnvelopeSizeExceeded"
    assert info.value.relates_to == req.message_id


def test_client_checks_relates_to() -> None:
    req = GetRequest(selectors={"Id": "42"}, **common())  # type: ignore[arg-type]
    data = build_response(server_sees(req), GetResponse(instance=widget()))
    other = GetRequest(selectors={"Id": "42"}, **common())  # type: ignore[arg-type]
    with pytest.raises(Exception) as info:
        parse_response(data, None, other)
    assert getattr(info.value, "result", None) == MIResult.FAILED


def test_booleans_and_contexts_from_omi_are_read() -> None:
    body = (b'<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:wsen="http://schemas.xmlsoap.org/ws/2004/09/enumeration">'
            b"<SOAP-ENV:Body><wsen:PullResponse><wsen:EnumerationContext>12</wsen:EnumerationContext><wsen:Items>"
            b'<p:X_Widget xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X_Widget"><p:Id>3</p:Id>'
            b"<p:Flag>TRUE</p:Flag></p:X_Widget></wsen:Items></wsen:PullResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>")
    flag_class = Class("X_Widget", properties=[Property("Id", MIType.UINT32, key=True),
                                               Property("Flag", MIType.BOOLEAN)])
    got = parse_response(body, None, PullRequest(context="11", namespace="root/acme", class_name="X_Widget"),
                         class_lookup=lambda n, c: flag_class)
    assert isinstance(got, PullResponse) and got.context == "12" and got.items[0]["Flag"] is True

"""Every request and response fixture (real OMI traffic, WinRM messages after MS-WSMV §4) through the codec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openmi.cim import MIFlag, MIResult, MIType
from openmi.protocol.wsman import (
    CreateRequest,
    CreateResponse,
    DeleteRequest,
    DeleteResponse,
    EnumerateRequest,
    EnumerateResponse,
    Filter,
    GetClassRequest,
    GetClassResponse,
    GetRequest,
    GetResponse,
    IdentifyRequest,
    IdentifyResponse,
    InvokeRequest,
    InvokeResponse,
    PullRequest,
    PullResponse,
    PutRequest,
    PutResponse,
    Request,
    UriStyle,
    WSManFault,
    parse_request,
    parse_response,
)
from openmi.protocol.wsman import namespaces as ns

CT = "application/soap+xml;charset=UTF-8"

# file stem → (request type, namespace, class, selectors, extra attributes to check)
REQUESTS: dict[str, tuple[type[Request] | type[WSManFault], str | None, str | None, dict[str, str],
                          dict[str, Any]]] = {
    "omi/curl-identify": (IdentifyRequest, None, None, {}, {}),
    "omi/pyclient-01-identify": (IdentifyRequest, None, None, {}, {}),
    "omi/curl-enumerate-omi_identify": (EnumerateRequest, "root/omi", "OMI_Identify", {},
                                        {"optimize": True, "max_elements": 32000, "operation_timeout": 60.0}),
    "omi/pyclient-02-enumerate-omi_identify": (EnumerateRequest, "root/omi", "OMI_Identify", {},
                                               {"optimize": True, "max_elements": 32000}),
    "omi/pyclient-03-create-item": (CreateRequest, "root/cimv2", "OMIPeer_Item", {}, {}),
    "omi/pyclient-04-create-item-duplicate": (CreateRequest, "root/cimv2", "OMIPeer_Item", {}, {}),
    "omi/pyclient-05-get-item": (GetRequest, "root/cimv2", "OMIPeer_Item", {"Name": "cap1"},
                                 {"max_envelope_size": 512000, "locale": "en-US", "uri_style": UriStyle.DMTF}),
    "omi/pyclient-06-put-item": (PutRequest, "root/cimv2", "OMIPeer_Item", {"Name": "cap1"}, {}),
    "omi/pyclient-07-enumerate-item": (EnumerateRequest, "root/cimv2", "OMIPeer_Item", {}, {"optimize": True}),
    "omi/pyclient-08-delete-item": (DeleteRequest, "root/cimv2", "OMIPeer_Item", {"Name": "cap1"},
                                    {"message_id": "uuid:00000000-0000-0000-0000-000000000008"}),
    "omi/pyclient-09-delete-item-again-notfound": (DeleteRequest, "root/cimv2", "OMIPeer_Item", {"Name": "cap1"}, {}),
    "omi/pyclient-10-get-item-notfound": (GetRequest, "root/cimv2", "OMIPeer_Item", {"Name": "cap1"}, {}),
    "omi/pyclient-11-get-unknown-class": (GetRequest, "root/cimv2", "OMIPeer_NoSuchClass", {"Name": "x"}, {}),
    "omi/pyclient-12-enumerate-plain-omi_identify": (EnumerateRequest, "root/omi", "OMI_Identify", {},
                                                     {"optimize": False, "max_elements": None}),
    "omi/pyclient-13-pull-omi_identify": (PullRequest, "root/omi", "OMI_Identify", {},
                                          {"context": "3779461120", "max_elements": 10}),
    "omi/pyclient-14-enumerate-omi_identify-dmtf-uri": (EnumerateRequest, "root/omi", "OMI_Identify", {}, {}),
    "omi/pyclient-15-get-msft_person-9999-cimerror": (GetRequest, "root/test", "MSFT_Person", {"Key": "9999"}, {}),
    "omi/curl-getclass-omipeer_item": (GetClassRequest, "root/cimv2", "OMIPeer_Item", {"ClassName": "OMIPeer_Item"},
                                       {"option_set": {"IncludeQualifiers": True}}),
    "omi/curl-getclass-missing": (GetClassRequest, "root/cimv2", "No_Such_Class", {"ClassName": "No_Such_Class"},
                                  {}),
    "omi/curl-wql-filter": (EnumerateRequest, "root/cimv2", "OMIPeer_Item", {},
                            {"filter": Filter(dialect=ns.DIALECT_WQL,
                                              query="SELECT * FROM OMIPeer_Item WHERE Size > 5"),
                             "uri_style": UriStyle.DMTF, "optimize": True, "max_elements": 32}),
    "omi/curl-wql-projection": (EnumerateRequest, "root/cimv2", "OMIPeer_Item", {},
                                {"filter": Filter(dialect=ns.DIALECT_WQL,
                                                  query="SELECT Name FROM OMIPeer_Item WHERE Name LIKE 'q%'")}),
    "omi/curl-wql-invalid-query": (EnumerateRequest, "root/cimv2", "OMIPeer_Item", {}, {}),
    # an unknown dialect: our server refuses it while parsing (OMI answers a bare HTTP 500)
    "omi/curl-unknown-dialect": (WSManFault, None, None, {},
                                 {"subcode_name": "wsen:FilterDialectRequestedUnavailable",
                                  "result": MIResult.QUERY_LANGUAGE_NOT_SUPPORTED}),
    "winrm-spec/03-get": (GetRequest, "root/mynamespace", "myclass", {"id": "1"},
                          {"uri_style": UriStyle.WMI, "max_envelope_size": 51200, "operation_timeout": 60.0}),
    "winrm-spec/07-get-invalid-class": (GetRequest, "root/cimv2", "win32_nosuchclass", {}, {}),
    "winrm-spec/09-put": (PutRequest, "root/mynamespace", "myclass", {"id": "1"}, {}),
    "winrm-spec/10-create-config": (CreateRequest, None, "certmapping",
                                    {"Issuer": "5600a015ca5e8a26f638b74e819ae92096da5c8c",
                                     "Subject": "*@example.test", "URI": "*"},
                                    {"uri_style": UriStyle.OTHER, "max_envelope_size": 153600}),
    "winrm-spec/12-delete-config": (DeleteRequest, None, "certmapping",
                                    {"Issuer": "1212131238d84023982e381f2", "Subject": "*.example.test",
                                     "URI": "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"}, {}),
    "winrm-spec/15-enumerate": (EnumerateRequest, "root/mynamespace", "myclass", {}, {"optimize": False}),
    "winrm-spec/16-pull": (PullRequest, "root/mynamespace", "myclass", {},
                           {"context": "uuid:BF79D353-84FD-5F6C-A2D5-C05A6A021FEF", "max_elements": 1}),
    "winrm-spec/17-pull": (PullRequest, "root/mynamespace", "myclass", {},
                           {"context": "uuid:C38F92F6-2FAF-560C-BF2B-CDCCB86F0A31"}),
    "winrm-spec/22-enumerate-selectorfilter": (EnumerateRequest, "root/cimv2", "Win32_Service", {}, {}),
    "winrm-spec/23-invoke-win32process-create": (InvokeRequest, "root/cimv2", "Win32_Process", {},
                                                 {"method": "Create"}),
}


def _read(fixtures_dir: Path, stem: str, kind: str) -> bytes:
    return (fixtures_dir / f"{stem}-{kind}.xml").read_bytes()


def test_every_request_fixture_is_listed(fixtures_dir: Path) -> None:
    found = {f"{p.parent.name}/{p.name[:-len('-request.xml')]}" for p in fixtures_dir.glob("*/*-request.xml")}
    assert found == set(REQUESTS)


@pytest.mark.parametrize("stem", sorted(REQUESTS))
def test_request_fixture_parses(fixtures_dir: Path, stem: str) -> None:
    kind, namespace, class_name, selectors, extra = REQUESTS[stem]
    if kind is WSManFault:
        with pytest.raises(WSManFault) as info:
            parse_request(_read(fixtures_dir, stem, "request"), CT)
        assert info.value.fault.subcode_name == extra["subcode_name"] and info.value.result == extra["result"]
        assert info.value.relates_to == "uuid:7D1B2A40-1111-2222-3333-444455556666"
        return
    req = parse_request(_read(fixtures_dir, stem, "request"), CT)
    assert type(req) is kind
    assert req.namespace == namespace
    assert req.class_name == class_name
    assert req.selectors == selectors
    for attr, value in extra.items():
        assert getattr(req, attr) == value, attr


def test_request_bodies(fixtures_dir: Path) -> None:
    create = parse_request(_read(fixtures_dir, "omi/pyclient-03-create-item", "request"), CT)
    assert isinstance(create, CreateRequest) and create.instance is not None
    assert create.instance.class_name == "OMIPeer_Item"
    assert dict(create.instance) == {"Name": "cap1", "Value": "hello", "Size": "7"}
    put = parse_request(_read(fixtures_dir, "winrm-spec/09-put", "request"), CT)
    assert isinstance(put, PutRequest) and put.instance is not None
    assert dict(put.instance) == {"Data1": "Test Message", "id": "1"}  # cim:Location is not a property
    config = parse_request(_read(fixtures_dir, "winrm-spec/10-create-config", "request"), CT)
    assert isinstance(config, CreateRequest) and config.instance is not None
    assert config.instance.class_name == "certmapping"
    invoke = parse_request(_read(fixtures_dir, "winrm-spec/23-invoke-win32process-create", "request"), CT)
    assert isinstance(invoke, InvokeRequest) and invoke.parameters is not None
    assert dict(invoke.parameters) == {"CommandLine": "notepad.exe", "CurrentDirectory": "C:\\"}
    assert invoke.action == "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Process/Create"
    sel = parse_request(_read(fixtures_dir, "winrm-spec/22-enumerate-selectorfilter", "request"), CT)
    assert isinstance(sel, EnumerateRequest) and sel.filter is not None
    assert sel.filter.dialect == ns.DIALECT_SELECTOR
    assert sel.filter.selectors == {"StartMode": "Auto", "State": "Stopped"}


def _response(fixtures_dir: Path, stem: str, request_stem: str | None = None) -> Any:
    req = parse_request(_read(fixtures_dir, request_stem or stem, "request"), CT)
    return parse_response(_read(fixtures_dir, stem, "response"), CT, req)


@pytest.mark.parametrize("stem", ["omi/curl-identify", "omi/pyclient-01-identify"])
def test_omi_identify_response(fixtures_dir: Path, stem: str) -> None:
    r = _response(fixtures_dir, stem)
    assert isinstance(r, IdentifyResponse)
    assert r.product_vendor == "Open Management Infrastructure"
    assert r.product_version == "1.9.1-0"
    assert r.protocol_version == ns.WSMAN
    assert r.security_profiles == ["http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/basic"]
    assert r.fault_includes_cim_error


def test_omi_https_identify_response(fixtures_dir: Path) -> None:
    r = _response(fixtures_dir, "omi/curl-https-identify", "omi/curl-identify")
    assert isinstance(r, IdentifyResponse) and r.product_version == "1.9.1-0"


@pytest.mark.parametrize("stem", ["omi/pyclient-02-enumerate-omi_identify", "omi/curl-enumerate-omi_identify",
                                  "omi/pyclient-14-enumerate-omi_identify-dmtf-uri"])
def test_omi_optimized_enumerate(fixtures_dir: Path, stem: str) -> None:
    r = _response(fixtures_dir, stem)
    assert isinstance(r, EnumerateResponse) and not isinstance(r, PullResponse)
    assert r.end_of_sequence  # wsman:EndOfSequence inside EnumerateResponse
    assert r.context is not None and r.context.isdigit()  # OMI's numeric contexts
    (item,) = r.items
    assert item.class_name == "OMI_Identify" and item.namespace == "root/omi"
    assert item["ProductVersionString"] == "1.9.1-0"
    assert item["ConfigNameSpaces"] == ["root-test", "interop", "root-check", "root-cimv2", "root-omi"]


def test_omi_transfer_responses(fixtures_dir: Path) -> None:
    created = _response(fixtures_dir, "omi/pyclient-03-create-item")
    assert isinstance(created, CreateResponse)
    assert created.resource_uri == "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/OMIPeer_Item"
    assert created.selectors == {"Name": "cap1"}
    assert created.instance_name is not None and created.instance_name.class_name == "OMIPeer_Item"
    assert created.instance_name.namespace == "root/cimv2" and created.instance_name["Name"] == "cap1"
    got = _response(fixtures_dir, "omi/pyclient-05-get-item")
    assert isinstance(got, GetResponse) and dict(got.instance) == {"Name": "cap1", "Value": "hello", "Size": "7"}
    assert got.relates_to == "uuid:00000000-0000-0000-0000-000000000005"
    put = _response(fixtures_dir, "omi/pyclient-06-put-item")
    assert isinstance(put, PutResponse) and put.instance is not None and put.instance["Size"] == "99"
    enum = _response(fixtures_dir, "omi/pyclient-07-enumerate-item")
    assert isinstance(enum, EnumerateResponse) and [i["Name"] for i in enum.items] == ["cap1"]
    assert isinstance(_response(fixtures_dir, "omi/pyclient-08-delete-item"), DeleteResponse)


def test_omi_unoptimized_enumerate_then_pull(fixtures_dir: Path) -> None:
    first = _response(fixtures_dir, "omi/pyclient-12-enumerate-plain-omi_identify")
    assert isinstance(first, EnumerateResponse)
    assert first.items == [] and not first.end_of_sequence and first.context == "3779461120"
    pulled = _response(fixtures_dir, "omi/pyclient-13-pull-omi_identify")
    assert isinstance(pulled, PullResponse) and pulled.end_of_sequence
    assert [i.class_name for i in pulled.items] == ["OMI_Identify"]


@pytest.mark.parametrize(("stem", "result", "message"), [
    ("omi/pyclient-04-create-item-duplicate", MIResult.ALREADY_EXISTS,
     "The operation cannot be invoked because an object already exists."),
    ("omi/pyclient-09-delete-item-again-notfound", MIResult.NOT_FOUND, "The requested object cannot be found."),
    ("omi/pyclient-10-get-item-notfound", MIResult.NOT_FOUND, "The requested object cannot be found."),
    ("omi/pyclient-11-get-unknown-class", MIResult.INVALID_CLASS, "The specified class does not exist."),
    ("omi/curl-getclass-missing", MIResult.INVALID_CLASS, "The specified class does not exist."),
    ("omi/pyclient-15-get-msft_person-9999-cimerror", MIResult.SERVER_IS_SHUTTING_DOWN, "This is a test CIM Error"),
    ("winrm-spec/07-get-invalid-class", MIResult.NOT_FOUND,
     "The WS-Management service cannot process the request. The service cannot find the resource identified "
     "by the resource URI and selectors."),
])
def test_fault_fixtures(fixtures_dir: Path, stem: str, result: MIResult, message: str) -> None:
    with pytest.raises(WSManFault) as info:
        _response(fixtures_dir, stem)
    assert info.value.result == result
    assert info.value.message == message


def test_omi_getclass_response(fixtures_dir: Path) -> None:
    r = _response(fixtures_dir, "omi/curl-getclass-omipeer_item")
    assert isinstance(r, GetClassResponse) and r.derivation == []
    cls = r.cls
    assert (cls.name, cls.superclass, cls.namespace) == ("OMIPeer_Item", None, "root/cimv2")
    assert [(p.name, p.type, p.key) for p in cls.properties.values()] == [
        ("Name", MIType.STRING, True), ("Value", MIType.STRING, False), ("Size", MIType.UINT32, False)]
    key = cls.properties["Name"].qualifiers["Key"]  # OMI writes "key" without flavors: the standard ones
    assert key.value is True and key.flavor == MIFlag.DISABLEOVERRIDE | MIFlag.TOSUBCLASS


def test_omi_fault_details(fixtures_dir: Path) -> None:
    with pytest.raises(WSManFault) as info:
        _response(fixtures_dir, "omi/pyclient-15-get-msft_person-9999-cimerror")
    f = info.value.fault
    assert f.subcode == (ns.WSMAN, "InternalError") and f.code == "Receiver"
    assert f.action == ns.FAULT_ACTION_WSMAN
    assert info.value.details is not None and info.value.details.class_name == "CIM_Error"
    assert info.value.details["CIMStatusCode"] == 28
    with pytest.raises(WSManFault) as info:
        _response(fixtures_dir, "omi/pyclient-09-delete-item-again-notfound")
    assert info.value.fault.subcode == (ns.WSA, "DestinationUnreachable")
    assert info.value.details is not None and info.value.details["MessageID"] == "OMI:MI_Result:6"


def test_winrm_fault_details(fixtures_dir: Path) -> None:
    with pytest.raises(WSManFault) as info:
        _response(fixtures_dir, "winrm-spec/07-get-invalid-class")
    f = info.value.fault
    assert f.subcode is not None and f.subcode[1] == "DestinationUnreachable"  # prefix 'a' is undeclared there
    assert f.wsman_code == 32768 and f.provider_codes == [32768]
    assert f.machine == "http://localhost:80/wsman"
    assert f.detail_name == "ResourceNotFound"


def test_winrm_responses(fixtures_dir: Path) -> None:
    got = _response(fixtures_dir, "winrm-spec/03-get")
    assert isinstance(got, GetResponse)
    assert got.instance.class_name == "myclass" and got.instance.namespace == "root/mynamespace"
    assert dict(got.instance) == {"Data1": "Hello World", "id": "1"}
    assert [e.name for e in got.instance.key_elements] == ["id"]  # from cim:Location
    put = _response(fixtures_dir, "winrm-spec/09-put")
    assert isinstance(put, PutResponse) and put.instance is not None and put.instance["Data1"] == "Test Message"
    created = _response(fixtures_dir, "winrm-spec/10-create-config")
    assert isinstance(created, CreateResponse)
    assert created.selectors == {"URI": "*", "Subject": "*@example.test",
                                 "Issuer": "5600a015ca5e8a26f638b74e819ae92096da5c8c"}
    assert isinstance(_response(fixtures_dir, "winrm-spec/12-delete-config"), DeleteResponse)
    invoked = _response(fixtures_dir, "winrm-spec/23-invoke-win32process-create")
    assert isinstance(invoked, InvokeResponse) and invoked.parameters is not None
    assert dict(invoked.parameters) == {"ProcessId": "4000", "ReturnValue": "0"}


def test_winrm_enumeration_sequence(fixtures_dir: Path) -> None:
    first = _response(fixtures_dir, "winrm-spec/15-enumerate")
    assert isinstance(first, EnumerateResponse) and first.items == []
    assert first.context == "uuid:BF79D353-84FD-5F6C-A2D5-C05A6A021FEF"
    second = _response(fixtures_dir, "winrm-spec/16-pull")
    assert isinstance(second, PullResponse) and not second.end_of_sequence
    assert second.context == "uuid:C38F92F6-2FAF-560C-BF2B-CDCCB86F0A31"
    third = _response(fixtures_dir, "winrm-spec/17-pull")
    assert isinstance(third, PullResponse) and third.end_of_sequence and third.context is None
    assert [i["id"] for i in second.items + third.items] == ["1", "2"]


def test_omi_query_responses(fixtures_dir: Path) -> None:
    r = _response(fixtures_dir, "omi/curl-wql-filter")
    assert isinstance(r, EnumerateResponse) and r.end_of_sequence
    assert [(i.class_name, i["Name"], i["Size"]) for i in r.items] == [("OMIPeer_Item", "qb", "9")]
    # OMI keeps the class element for a projection and drops the properties not selected
    r = _response(fixtures_dir, "omi/curl-wql-projection")
    assert isinstance(r, EnumerateResponse)
    assert [dict(i) for i in r.items] == [{"Name": "qa"}, {"Name": "qb"}]
    with pytest.raises(WSManFault) as info:
        _response(fixtures_dir, "omi/curl-wql-invalid-query")
    assert info.value.result == MIResult.INVALID_QUERY
    assert info.value.fault.subcode == (ns.WSMAN, "InternalError")
    assert info.value.message == "The query is not valid for the specified query language."

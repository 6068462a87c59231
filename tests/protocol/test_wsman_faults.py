"""Faults: every MI result survives our server → our client, each of the three carriers alone maps right,
and faults shaped like OMI's and WinRM's become the right MI result."""

from __future__ import annotations

import pickle

import pytest
from lxml import etree

from openmi.cim import Instance, MIError, MIResult
from openmi.protocol.wsman import (
    DeleteRequest,
    Fault,
    GetRequest,
    Limits,
    WSManFault,
    build_fault,
    fault_to_result,
    parse_request,
    parse_response,
)
from openmi.protocol.wsman import namespaces as ns
from openmi.protocol.wsman.faults import CODE_RESULTS, RESULT_FAULTS, SUBCODES, protocol_fault

REQ = GetRequest(message_id="uuid:ABC", namespace="root/acme", class_name="X_Widget", selectors={"Id": "1"})
ALL = [r for r in MIResult if r != MIResult.OK]


def fault_body(result: MIResult, message: str = "boom", **kw: object) -> bytes:
    status, body = build_fault(REQ, MIError(result, message), **kw)  # type: ignore[arg-type]
    assert status == 500
    return body


def client_fault(body: bytes) -> WSManFault:
    with pytest.raises(WSManFault) as info:
        parse_response(body, "application/soap+xml;charset=UTF-8", REQ)
    return info.value


@pytest.mark.parametrize("result", ALL)
def test_every_result_round_trips(result: MIResult) -> None:
    f = client_fault(fault_body(result, "it broke"))
    assert f.result == result
    assert f.message == "it broke"
    assert f.relates_to == "uuid:ABC"
    assert f.details is not None and f.details["CIMStatusCode"] == int(result)


def _strip(body: bytes, *locals_: str) -> bytes:
    root = etree.fromstring(body)
    detail = root.find(f"{ns.S_BODY}/{ns.S_FAULT}/{ns.q(ns.SOAP, 'Detail')}")
    assert detail is not None
    for child in list(detail):
        if etree.QName(child).localname in locals_:
            detail.remove(child)
    return etree.tostring(root)


@pytest.mark.parametrize("result", ALL)
def test_wsman_fault_code_alone(result: MIResult) -> None:
    f = client_fault(_strip(fault_body(result), "OMI_Error"))
    code = RESULT_FAULTS[result].wsman_code
    assert f.fault.wsman_code == code
    assert f.result == CODE_RESULTS.get(code, f.result)
    if sum(1 for e in RESULT_FAULTS.values() if e.wsman_code == code) == 1:
        assert f.result == result  # a code used for one result only names it exactly


@pytest.mark.parametrize("result", ALL)
def test_subcode_alone(result: MIResult) -> None:
    f = client_fault(_strip(fault_body(result), "OMI_Error", "WSManFault"))
    emit = RESULT_FAULTS[result]
    sub = SUBCODES[emit.subcode]
    assert f.fault.subcode == (sub.namespace, sub.local)
    expected = MIResult.INVALID_CLASS if emit.detail == "InvalidResourceURI" else sub.result
    assert f.result == expected


def test_omi_compatible_detail_layout() -> None:
    root = etree.fromstring(fault_body(MIResult.ALREADY_EXISTS, "dup"))
    assert root.findtext(f"{ns.S_HEADER}/{ns.A_ACTION}") == ns.FAULT_ACTION_WSMAN
    fault = root.find(f"{ns.S_BODY}/{ns.S_FAULT}")
    assert fault is not None
    value = fault.find(f"{ns.q(ns.SOAP, 'Code')}/{ns.q(ns.SOAP, 'Subcode')}/{ns.q(ns.SOAP, 'Value')}")
    assert value is not None and value.text is not None
    prefix, _, local = value.text.partition(":")
    assert (value.nsmap[prefix], local) == (ns.WSMAN, "AlreadyExists")
    detail = fault.find(ns.q(ns.SOAP, "Detail"))
    assert detail is not None
    names = [etree.QName(c).localname for c in detail]
    assert names.index("WSManFault") < names.index("OMI_Error")  # OMI's client reads them in order
    wsf = detail.find(ns.F_WSMAN_FAULT)
    assert wsf is not None and etree.QName(wsf[0]).localname == "Message"  # Message first, as OMI requires
    assert wsf.get("Code") == str(0x80041019)
    omi = detail.find(ns.q("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/OMI_Error", "OMI_Error"))
    assert omi is not None and omi.get(ns.B_IS_CIM_ERROR) == "true"
    assert omi.findtext(ns.q("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/OMI_Error", "MessageID")) == \
        "OMI:MI_Result:11"


def test_not_found_styles() -> None:
    f = client_fault(fault_body(MIResult.NOT_FOUND))
    assert f.fault.subcode == (ns.WSA, "DestinationUnreachable") and f.fault.action == ns.FAULT_ACTION_WSA
    f = client_fault(fault_body(MIResult.NOT_FOUND, limits=Limits(not_found="selectors")))
    assert f.fault.subcode == (ns.WSMAN, "InvalidSelectors") and f.result == MIResult.NOT_FOUND
    f = client_fault(_strip(fault_body(MIResult.NOT_FOUND, limits=Limits(not_found="selectors")),
                            "OMI_Error", "WSManFault"))
    assert f.result == MIResult.NOT_FOUND


def test_provider_error_instance_is_kept_and_comes_first() -> None:
    details = Instance.from_elements("MSFT_MyError")
    details.add_element("CIMStatusCode", 6)
    details.add_element("Message", "no such widget")
    details.add_element("Extra", "x")
    _, body = build_fault(REQ, MIError(MIResult.NOT_FOUND, "no such widget", details))
    f = client_fault(body)
    assert f.result == MIResult.NOT_FOUND and f.details is not None
    assert f.details.class_name == "MSFT_MyError" and f.details["Extra"] == "x"
    assert [e.class_name for e in f.fault.cim_errors] == ["MSFT_MyError", "OMI_Error"]


def test_protocol_fault_from_parse_request_answers_with_relates_to() -> None:
    env = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
           b'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"><s:Header>'
           b"<a:Action>urn:nope</a:Action><a:MessageID>uuid:77</a:MessageID>"
           b'<w:ResourceURI xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">'
           b"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X</w:ResourceURI>"
           b"</s:Header><s:Body/></s:Envelope>")
    with pytest.raises(WSManFault) as info:
        parse_request(env)
    status, body = build_fault(None, info.value)
    assert status == 500
    root = etree.fromstring(body)
    assert root.findtext(f"{ns.S_HEADER}/{ns.A_RELATES_TO}") == "uuid:77"
    assert root.findtext(f"{ns.S_HEADER}/{ns.A_ACTION}") == ns.FAULT_ACTION_WSA
    back = client_fault_for(body, "uuid:77")
    assert back.fault.subcode == (ns.WSA, "ActionNotSupported") and back.result == MIResult.NOT_SUPPORTED
    assert back.fault.detail_name == "ActionMismatch"


def client_fault_for(body: bytes, message_id: str) -> WSManFault:
    with pytest.raises(WSManFault) as info:
        parse_response(body, None, DeleteRequest(message_id=message_id, class_name="X"))
    return info.value


WINRM_WMI_FAULT = """<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
 <s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action>
 <a:RelatesTo>uuid:ABC</a:RelatesTo></s:Header>
 <s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode>
 </s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot process the request.</s:Text></s:Reason>
 <s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="{code}" Machine="srv">
 <f:Message><f:ProviderFault provider="WMI Provider" path="%systemroot%\\system32\\WsmWmiPl.dll">
 <f:WSManFault Code="{code}" Machine="srv"><f:Message>Not found </f:Message></f:WSManFault>
 {wmierror}</f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"""
WMI_ERROR = """<p:MSFT_WmiError b:IsCIM_Error="true" xmlns:b="http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"
 xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/MSFT_WmiError"
 xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <p:CIMStatusCode xsi:type="cim:cimUnsignedInt">{status}</p:CIMStatusCode>
 <p:Message xsi:type="cim:cimString">{message}</p:Message>
 <p:error_Code xsi:type="cim:cimUnsignedInt">2147749890</p:error_Code>
 <p:error_Type xsi:type="cim:cimString">HRESULT</p:error_Type></p:MSFT_WmiError>"""


def test_winrm_wmi_code_only() -> None:
    body = WINRM_WMI_FAULT.format(code=0x80041002, wmierror="").encode()
    f = client_fault(body)
    assert f.result == MIResult.NOT_FOUND  # 0x80041002 = WBEM_E_NOT_FOUND
    assert f.message == "Not found"


def test_winrm_wmi_error_detail() -> None:
    body = WINRM_WMI_FAULT.format(code=2150858752,
                                  wmierror=WMI_ERROR.format(status=5, message="Invalid class")).encode()
    f = client_fault(body)
    assert f.result == MIResult.INVALID_CLASS  # CIMStatusCode first
    assert f.message == "Invalid class"


def test_pywinrm_style_access_denied() -> None:
    body = WINRM_WMI_FAULT.format(code=5, wmierror="").encode().replace(b"w:InternalError", b"w:AccessDenied")
    assert client_fault(body).result == MIResult.ACCESS_DENIED


def test_fault_to_result_fallbacks() -> None:
    assert fault_to_result(Fault(subcode=None, code="MustUnderstand")) == MIResult.NOT_SUPPORTED
    assert fault_to_result(Fault(subcode=None)) == MIResult.FAILED
    assert fault_to_result(Fault(subcode=("urn:unknown", "Weird"))) == MIResult.FAILED
    assert fault_to_result(Fault(subcode=("", "InvalidEnumerationContext"))) == MIResult.INVALID_ENUMERATION_CONTEXT
    omi = Instance.from_elements("OMI_Error")
    omi.add_element("MessageID", "OMI:MI_Result:15")
    assert fault_to_result(Fault(subcode=None, cim_errors=[omi])) == MIResult.INVALID_QUERY
    mi_typed = Instance.from_elements("OpenMI_Error")
    mi_typed.add_element("error_Code", 5)
    mi_typed.add_element("error_Type", "MI")
    assert fault_to_result(Fault(subcode=None, cim_errors=[mi_typed])) == MIResult.FAILED


def test_protocol_faults_carry_their_result() -> None:
    f = protocol_fault("wsman:EncodingLimit", "too big", "MaxEnvelopeSizeExceeded")
    assert f.result == MIResult.SERVER_LIMITS_EXCEEDED and f.fault.wsman_code == 2150858824
    _, body = build_fault(REQ, f)
    back = client_fault(body)
    assert back.result == MIResult.SERVER_LIMITS_EXCEEDED
    assert back.fault.detail == ns.FAULT_DETAIL + "MaxEnvelopeSizeExceeded"


def test_wsmanfault_pickles() -> None:
    f = client_fault(fault_body(MIResult.ACCESS_DENIED))
    g = pickle.loads(pickle.dumps(f))
    assert isinstance(g, WSManFault) and g.result == MIResult.ACCESS_DENIED and g.relates_to == "uuid:ABC"
    assert isinstance(g, MIError)


def test_unknown_result_numbers_survive() -> None:
    f = client_fault(fault_body(MIResult.FAILED).replace(b">1</p:CIMStatusCode>", b">1000</p:CIMStatusCode>"))
    assert f.result == 1000


# The five Actions OMI's client parses a fault under (notes §6.4: its table dates enumeration and transfer
# 2004/08); any other Action is "Internal error parsing Wsman fault message" there.
OMI_FAULT_ACTIONS = {
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/enumeration/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/eventing/fault",
    "http://schemas.xmlsoap.org/ws/2004/08/transfer/fault",
}


@pytest.mark.parametrize("result", ALL)
def test_every_result_fault_has_an_action_omi_reads(result: MIResult) -> None:
    root = etree.fromstring(fault_body(result))
    assert root.findtext(f"{ns.S_HEADER}/{ns.A_ACTION}") in OMI_FAULT_ACTIONS


@pytest.mark.parametrize("name", sorted(SUBCODES))
def test_every_protocol_fault_has_an_action_omi_reads(name: str) -> None:
    status, body = build_fault(REQ, protocol_fault(name, "why"))
    root = etree.fromstring(body)
    assert status == 500 and root.findtext(f"{ns.S_HEADER}/{ns.A_ACTION}") in OMI_FAULT_ACTIONS

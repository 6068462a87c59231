"""Envelope rules: encodings, size caps, hostile XML, SOAP version, and every header of §2 of the notes."""

from __future__ import annotations

import codecs
import re

import pytest
from lxml import etree

from openmi.cim import MIError, MIResult
from openmi.protocol.wsman import (
    DeleteRequest,
    GetRequest,
    IdentifyRequest,
    Limits,
    WSManFault,
    build_fault,
    parse_request,
    parse_response,
    response_content_type,
)
from openmi.protocol.wsman import namespaces as ns
from openmi.protocol.wsman.envelope import content_type, format_timeout, serialize

HEAD = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">'
)
URI = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X_Widget"


def envelope(extra: str = "", action: str = ns.ACTION_DELETE, body: str = "", *,
             uri: str | None = URI, message_id: str | None = "uuid:1") -> str:
    parts = [HEAD, "<s:Header>", "<a:To>http://h:5985/wsman</a:To>"]
    if uri is not None:
        parts.append(f'<w:ResourceURI s:mustUnderstand="true">{uri}</w:ResourceURI>')
    parts.append('<a:ReplyTo><a:Address s:mustUnderstand="true">'
                 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>')
    if action:
        parts.append(f'<a:Action s:mustUnderstand="true">{action}</a:Action>')
    if message_id is not None:
        parts.append(f"<a:MessageID>{message_id}</a:MessageID>")
    parts.append('<w:SelectorSet><w:Selector Name="__cimnamespace">root/acme</w:Selector>'
                 '<w:Selector Name="Id">42</w:Selector></w:SelectorSet>')
    parts.append(extra)
    parts.append(f"</s:Header><s:Body>{body}</s:Body></s:Envelope>")
    return "".join(parts)


def fault_of(data: bytes | str, ct: str | None = None) -> WSManFault:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(WSManFault) as info:
        parse_request(raw, ct)
    return info.value


def test_plain_delete() -> None:
    req = parse_request(envelope().encode(), "application/soap+xml;charset=UTF-8")
    assert isinstance(req, DeleteRequest)
    assert (req.namespace, req.class_name, req.selectors) == ("root/acme", "X_Widget", {"Id": "42"})
    assert req.encoding == "utf-8" and req.message_id == "uuid:1"


# --- encodings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "ct"), [
    (codecs.BOM_UTF16_LE + envelope().encode("utf-16-le"), "application/soap+xml;charset=UTF-16"),
    (codecs.BOM_UTF16_BE + envelope().encode("utf-16-be"), None),
    (envelope().encode("utf-16-le"), "application/soap+xml;charset=utf-16"),
    (envelope().encode("utf-16-be"), "application/soap+xml; charset=UTF-16"),
    (envelope().encode("utf-16-le"), None),  # sniffed from '<\0'
    (('<?xml version="1.0" encoding="UTF-16"?>' + envelope()).encode("utf-16"), "application/soap+xml;charset=UTF-16"),
])
def test_utf16_requests(data: bytes, ct: str | None) -> None:
    req = parse_request(data, ct)
    assert isinstance(req, DeleteRequest) and req.selectors == {"Id": "42"}
    assert req.encoding == "utf-16"
    assert response_content_type(req) == "application/soap+xml;charset=UTF-16"


def test_utf8_bom_and_declaration() -> None:
    data = codecs.BOM_UTF8 + ('<?xml version="1.0" encoding="utf-8"?>' + envelope()).encode()
    req = parse_request(data, "application/soap+xml;charset=UTF-8")
    assert req.encoding == "utf-8"


def test_non_ascii_text_survives_utf16() -> None:
    body = envelope().replace(">42<", ">Größe✓<").encode("utf-16")
    req = parse_request(body, "application/soap+xml;charset=UTF-16")
    assert req.selectors["Id"] == "Größe✓"


def test_fault_answers_in_utf16() -> None:
    req = parse_request(envelope().encode("utf-16"), "application/soap+xml;charset=UTF-16")
    status, body = build_fault(req, MIError(MIResult.NOT_FOUND, "gone"))
    assert status == 500 and body.startswith(codecs.BOM_UTF16_LE)
    with pytest.raises(WSManFault) as info:
        parse_response(body, "application/soap+xml;charset=UTF-16", req)
    assert info.value.result == MIResult.NOT_FOUND


def test_unsupported_charset() -> None:
    f = fault_of(envelope(), "application/soap+xml;charset=ISO-8859-1")
    assert f.fault.subcode == (ns.WSMAN, "EncodingLimit") and f.fault.detail_name == "CharacterSet"


def test_bad_utf16() -> None:
    f = fault_of(b"\xff\xfe<\x00\x00\xd8", None)
    assert f.fault.detail_name == "CharacterSet"


def test_content_type_strings() -> None:
    assert content_type() == "application/soap+xml;charset=UTF-8"
    assert response_content_type(None) == "application/soap+xml;charset=UTF-8"


def test_serialize_utf16_has_bom() -> None:
    root = etree.Element(ns.S_ENVELOPE)
    assert serialize(root, "utf-16").startswith(codecs.BOM_UTF16_LE)


# --- hostile and broken input --------------------------------------------------------------------------

def test_envelope_over_cap() -> None:
    data = envelope(extra="<!-- " + "x" * 600_000 + " -->").encode()
    f = fault_of(data)
    assert f.fault.subcode == (ns.WSMAN, "EncodingLimit") and f.fault.detail_name == "ServiceEnvelopeLimit"
    assert f.result == MIResult.SERVER_LIMITS_EXCEEDED
    # a configurable cap
    with pytest.raises(WSManFault):
        parse_request(envelope().encode(), None, limits=Limits(max_envelope=100))


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    + envelope().replace(">42<", ">&lol3;<")
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    + envelope().replace(">42<", ">&xxe;<")
)
DOCTYPE_ONLY = '<!DOCTYPE s:Envelope SYSTEM "http://example.invalid/x.dtd">' + envelope()


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY, DOCTYPE_ONLY])
def test_dtds_are_refused(data: str) -> None:
    f = fault_of(data)
    assert f.fault.subcode == (ns.WSMAN, "SchemaValidationError")
    assert "declaration" in f.fault.reason


def test_dtd_refused_in_utf16_too() -> None:
    f = fault_of(BILLION_LAUGHS.encode("utf-16"), "application/soap+xml;charset=UTF-16")
    assert f.fault.subcode == (ns.WSMAN, "SchemaValidationError")
    assert f.encoding == "utf-16"


def test_deep_nesting() -> None:
    deep = "<x>" * 400 + "</x>" * 400
    f = fault_of(envelope(body=deep))
    assert f.fault.subcode == (ns.WSMAN, "EncodingLimit")
    assert f.result == MIResult.SERVER_LIMITS_EXCEEDED


def test_deep_embedded_instances() -> None:
    nested = ""
    for _ in range(40):
        nested = f'<p:E xmlns:p="{URI}"><p:Inner>{nested or "leaf"}</p:Inner></p:E>'
    f = fault_of(envelope(action=ns.ACTION_CREATE, body=nested))
    assert f.fault.subcode == (ns.WSMAN, "EncodingLimit")
    assert f.relates_to == "uuid:1"


@pytest.mark.parametrize("data", [b"", b"   ", b"not xml at all", b"<s:Envelope", b"\x00\x01\x02"])
def test_not_xml(data: bytes) -> None:
    f = fault_of(data)
    assert f.fault.subcode in ((ns.WSMAN, "SchemaValidationError"), (ns.WSMAN, "EncodingLimit"))


def test_not_an_envelope() -> None:
    f = fault_of("<hello/>")
    assert f.fault.subcode == (ns.WSMAN, "SchemaValidationError")


def test_soap11_is_a_version_mismatch() -> None:
    f = fault_of('<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>')
    assert f.fault.code == "VersionMismatch"
    assert f.result == MIResult.NOT_SUPPORTED


def test_prefixes_do_not_matter() -> None:
    data = re.sub(r"\b(xmlns:)?s([:=])", r"\1soapy\2", envelope())
    data = re.sub(r"\b(xmlns:)?a([:=])", r"\1addr\2", data)
    assert "soapy:Envelope" in data and "addr:MessageID" in data
    assert isinstance(parse_request(data.encode()), DeleteRequest)


def test_wrong_namespace_with_right_prefix_is_not_a_header() -> None:
    data = envelope(message_id=None, extra='<a:MessageID xmlns:a="urn:other">uuid:9</a:MessageID>')
    f = fault_of(data)
    assert f.fault.subcode == (ns.WSA, "MessageInformationHeaderRequired")


# --- headers ----------------------------------------------------------------------------------------------

def test_identify_without_action() -> None:
    data = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
            b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>")
    req = parse_request(data)
    assert isinstance(req, IdentifyRequest) and not req.unauthenticated
    req = parse_request(data, wsmanidentify="unauthenticated")
    assert isinstance(req, IdentifyRequest) and req.unauthenticated


def test_missing_action_without_identify_body() -> None:
    f = fault_of(envelope(action=""))
    assert f.fault.subcode == (ns.WSA, "MessageInformationHeaderRequired")


def test_missing_message_id() -> None:
    f = fault_of(envelope(message_id=None))
    assert f.fault.subcode == (ns.WSA, "MessageInformationHeaderRequired")


def test_missing_resource_uri() -> None:
    f = fault_of(envelope(uri=None))
    assert f.fault.subcode == (ns.WSA, "DestinationUnreachable")
    assert f.fault.detail_name == "InvalidResourceURI"
    assert f.relates_to == "uuid:1"


def test_unknown_action() -> None:
    f = fault_of(envelope(action="http://schemas.xmlsoap.org/ws/2004/08/eventing/SubscriptionEnd"))
    assert f.fault.subcode == (ns.WSA, "ActionNotSupported")
    assert f.fault.action == ns.FAULT_ACTION_WSA
    assert f.result == MIResult.NOT_SUPPORTED


def test_reply_to_must_be_anonymous() -> None:
    data = envelope().replace("http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous", "http://evil/")
    f = fault_of(data)
    assert f.fault.subcode == (ns.WSMAN, "UnsupportedFeature") and f.fault.detail_name == "AddressingMode"


def test_fault_to_must_be_anonymous() -> None:
    f = fault_of(envelope('<a:FaultTo><a:Address>http://elsewhere/</a:Address></a:FaultTo>'))
    assert f.fault.detail_name == "AddressingMode"


def test_unknown_must_understand_header() -> None:
    f = fault_of(envelope('<x:Thing xmlns:x="urn:x" s:mustUnderstand="true">1</x:Thing>'))
    assert f.fault.code == "MustUnderstand"
    assert f.fault.not_understood == ("urn:x", "Thing")
    _, body = build_fault(None, f)
    root = etree.fromstring(body)
    nu = root.find(f"{ns.S_HEADER}/{ns.q(ns.SOAP, 'NotUnderstood')}")
    assert nu is not None
    prefix, _, local = nu.get("qname", "").partition(":")
    assert local == "Thing" and nu.nsmap[prefix] == "urn:x"
    assert root.findtext(f"{ns.S_HEADER}/{ns.A_RELATES_TO}") == "uuid:1"


def test_unknown_header_without_must_understand_is_ignored() -> None:
    assert isinstance(parse_request(envelope('<x:Thing xmlns:x="urn:x">1</x:Thing>').encode()), DeleteRequest)


def test_unprefixed_must_understand_is_not_must_understand() -> None:  # as pywinrm sends it
    assert isinstance(parse_request(envelope('<x:Thing xmlns:x="urn:x" mustUnderstand="true"/>').encode()),
                      DeleteRequest)


def test_operation_id_is_tolerated_even_if_must_understand() -> None:
    req = parse_request(envelope(
        '<p:OperationID s:mustUnderstand="true">uuid:op</p:OperationID>'
        '<p:SequenceId s:mustUnderstand="false">2</p:SequenceId>'
        '<p:SessionId s:mustUnderstand="false">uuid:sess</p:SessionId>').encode())
    assert req.operation_id == "uuid:op" and req.session_id == "uuid:sess"


@pytest.mark.parametrize("header", [
    '<w:Locale xml:lang="de-DE" s:mustUnderstand="true"/>',
    '<p:DataLocale xml:lang="de-DE" s:mustUnderstand="true"/>',
])
def test_locales_must_not_be_must_understand(header: str) -> None:
    f = fault_of(envelope(header))
    assert f.fault.subcode == (ns.WSMAN, "UnsupportedFeature") and f.fault.detail_name == "Locale"


def test_locales() -> None:
    req = parse_request(envelope('<w:Locale xml:lang="de-DE" s:mustUnderstand="false"/>'
                                 '<p:DataLocale xml:lang="fr-FR"/>').encode())
    assert (req.locale, req.data_locale) == ("de-DE", "fr-FR")


def test_fragment_transfer_is_unsupported() -> None:
    f = fault_of(envelope('<w:FragmentTransfer s:mustUnderstand="true">Name</w:FragmentTransfer>'))
    assert f.fault.detail_name == "FragmentLevelAccess"


@pytest.mark.parametrize(("text", "seconds"), [("PT60S", 60.0), ("PT60.000S", 60.0), ("PT1M30.5S", 90.5),
                                                ("P1DT1H", 90000.0), ("PT0S", 0.0)])
def test_operation_timeout(text: str, seconds: float) -> None:
    req = parse_request(envelope(f"<w:OperationTimeout>{text}</w:OperationTimeout>").encode())
    assert req.operation_timeout == seconds


@pytest.mark.parametrize("text", ["-PT5S", "2024-01-01T00:00:00Z", "60", "P", "PT"])
def test_bad_operation_timeout(text: str) -> None:
    f = fault_of(envelope(f"<w:OperationTimeout>{text}</w:OperationTimeout>"))
    assert f.fault.subcode == (ns.WSA, "InvalidMessageInformationHeader")
    assert f.fault.detail_name == "InvalidTimeout"


def test_format_timeout() -> None:
    assert format_timeout(60) == "PT60.000S"


def test_max_envelope_size() -> None:
    req = parse_request(envelope('<w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize>').encode())
    assert req.max_envelope_size == 153600
    req = parse_request(envelope('<w:MaxEnvelopeSize>99999999</w:MaxEnvelopeSize>').encode())
    assert req.max_envelope_size == 512000  # clamped to the server's own maximum
    f = fault_of(envelope('<w:MaxEnvelopeSize s:mustUnderstand="true">4096</w:MaxEnvelopeSize>'))
    assert f.fault.subcode == (ns.WSMAN, "EncodingLimit") and f.fault.detail_name == "MinimumEnvelopeLimit"
    f = fault_of(envelope("<w:MaxEnvelopeSize>lots</w:MaxEnvelopeSize>"))
    assert f.fault.subcode == (ns.WSA, "InvalidMessageInformationHeader")


def test_option_set() -> None:
    req = parse_request(envelope(
        '<w:OptionSet s:mustUnderstand="true">'
        '<w:Option Name="IncludeQualifiers" Type="xs:boolean">TRUE</w:Option>'
        '<w:Option Name="Depth" Type="xs:unsignedInt">3</w:Option>'
        '<w:Option Name="msftwinrm:UsePreciseArrays">yes</w:Option>'
        '<w:Option Name="List">a</w:Option><w:Option Name="List">b</w:Option>'
        '<w:Option Name="Null" xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>'
        "</w:OptionSet>").encode())
    assert req.option_set == {"IncludeQualifiers": True, "Depth": 3, "msftwinrm:UsePreciseArrays": "yes",
                              "List": ["a", "b"], "Null": None}
    assert req.option_set_must_understand


def test_selectors_as_keys() -> None:
    data = envelope().replace(
        '<w:Selector Name="Id">42</w:Selector>',
        '<w:Selector Name="Antecedent"><a:EndpointReference>'
        "<a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address>"
        "<a:ReferenceParameters>"
        "<w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service</w:ResourceURI>"
        '<w:SelectorSet><w:Selector Name="Name">WinRM</w:Selector></w:SelectorSet>'
        "</a:ReferenceParameters></a:EndpointReference></w:Selector>")
    req = parse_request(data.encode())
    ref = req.selectors["Antecedent"]
    assert not isinstance(ref, str)
    assert (ref.class_name, ref.namespace, dict(ref)) == ("Win32_Service", "root/cimv2", {"Name": "WinRM"})
    assert [e.name for e in ref.key_elements] == ["Name"]


def test_duplicate_selectors() -> None:
    data = envelope().replace('<w:Selector Name="Id">42</w:Selector>',
                              '<w:Selector Name="Id">42</w:Selector><w:Selector Name="Id">43</w:Selector>')
    f = fault_of(data)
    assert f.fault.subcode == (ns.WSMAN, "InvalidSelectors") and f.fault.detail_name == "DuplicateSelectors"


def test_default_namespace_for_dmtf_uris() -> None:
    data = envelope().replace('<w:Selector Name="__cimnamespace">root/acme</w:Selector>', "")
    assert parse_request(data.encode()).namespace == "root/cimv2"
    assert parse_request(data.encode(), limits=Limits(default_namespace="interop")).namespace == "interop"


def test_backslash_namespace_is_normalized() -> None:
    data = envelope().replace(">root/acme<", ">root\\acme<")
    assert parse_request(data.encode()).namespace == "root/acme"


def test_get_fast_path_has_no_body() -> None:
    req = parse_request(envelope(action=ns.ACTION_GET).encode())
    assert isinstance(req, GetRequest)

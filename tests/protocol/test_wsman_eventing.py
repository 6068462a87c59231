"""The WS-Eventing codec, bytes in / objects out: the Subscribe shapes of spec §4.4 (OMI's test request, the
Windows client's, txwinrm's WinRM request, push and batched modes), Unsubscribe/Renew, OMI's and DSP0226's
SubscribeResponse, PullResponses with bookmarks or ``wsman:Event`` wrappers, and what a source sends to a
sink (events, heartbeats, SubscriptionEnd) with the sink's Ack; every fault the parser raises."""

from __future__ import annotations

import datetime as dt

import pytest

from openmi import Instance, MIError, MIResult
from openmi.cim.requests import BOOKMARK_NEWEST, BOOKMARK_OLDEST
from openmi.protocol import wsman
from openmi.protocol.wsman import eventing as ev
from openmi.protocol.wsman import namespaces as ns
from openmi.protocol.wsman.requests import Filter

ENV = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
       b'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
       b'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
       b'xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd" '
       b'xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" '
       b'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration">')


def request(body: str, *, uri: str = "http://schemas.dmtf.org/wbem/wscim/1/*",
            action: str = ev.ACTION_SUBSCRIBE, extra_headers: str = "",
            selectors: str = '<w:SelectorSet><w:Selector Name="__cimnamespace">root/cimv2</w:Selector></w:SelectorSet>'
            ) -> bytes:
    return ENV + (
        f'<s:Header><a:To>http://lnx01:5985/wsman</a:To>'
        f'<w:ResourceURI s:mustUnderstand="true">{uri}</w:ResourceURI>'
        f'<a:ReplyTo><a:Address s:mustUnderstand="true">'
        f'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>'
        f'<a:Action s:mustUnderstand="true">{action}</a:Action>'
        f'<a:MessageID>uuid:08564A3B-4E90-4571-5B2C-1A49ACD1E8FF</a:MessageID>'
        f'<w:OperationTimeout>PT60S</w:OperationTimeout>{selectors}{extra_headers}</s:Header>'
        f'<s:Body>{body}</s:Body></s:Envelope>').encode()


def parse(data: bytes) -> wsman.Request:
    return wsman.parse_request(data, "application/soap+xml;charset=UTF-8")


def fault_of(data: bytes) -> wsman.WSManFault:
    with pytest.raises(wsman.WSManFault) as info:
        parse(data)
    return info.value


# --- Subscribe: the shapes of spec §4.4 ----------------------------------------------------------------


def test_wsman_md_pull_subscribe() -> None:
    r = parse(request(
        '<e:Subscribe><e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull">'
        '<w:Heartbeats>PT60S</w:Heartbeats><w:ContentEncoding>UTF-8</w:ContentEncoding></e:Delivery>'
        '<e:Expires>PT3600S</e:Expires>'
        '<w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">SELECT * FROM X_WidgetAlert</w:Filter>'
        '</e:Subscribe>',
        uri="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X_WidgetAlert",
        selectors='<w:SelectorSet><w:Selector Name="__cimnamespace">root/acme</w:Selector></w:SelectorSet>'))
    assert isinstance(r, ev.SubscribeRequest)
    assert r.delivery_mode == ev.MODE_PULL and r.heartbeat == 60 and r.expires == 3600
    assert r.namespace == "root/acme" and r.class_name == "X_WidgetAlert"
    assert r.filter == Filter(dialect=ns.DIALECT_WQL, query="SELECT * FROM X_WidgetAlert")
    assert r.content_encoding == "UTF-8" and not r.send_bookmarks and r.bookmark is None


def test_omi_test_request_with_text_inside_delivery() -> None:
    """OMI's test_wsman.cpp: odd text content inside e:Delivery, no heartbeat, no Expires."""
    r = parse(request(
        '<e:Subscribe><e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull">http://linux-22kv:22000'
        '</e:Delivery><w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">Select * from L_IndicationC3'
        '</w:Filter></e:Subscribe>',
        uri="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/R_IndicationC3"))
    assert isinstance(r, ev.SubscribeRequest)
    assert r.delivery_mode == ev.MODE_PULL and r.heartbeat is None and r.expires is None
    assert r.filter is not None and r.filter.query == "Select * from L_IndicationC3"


def test_windows_client_shape_with_locales() -> None:
    r = parse(request(
        '<e:Subscribe><e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull">'
        '<w:Heartbeats>PT60.000S</w:Heartbeats><w:Locale xml:lang="en-US" s:mustUnderstand="false"/>'
        '<p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/><w:ContentEncoding>UTF-16</w:ContentEncoding>'
        '</e:Delivery><e:Expires>PT60.000S</e:Expires>'
        '<w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">Select * from My_Alarm</w:Filter>'
        '</e:Subscribe>'))
    assert isinstance(r, ev.SubscribeRequest)
    assert r.heartbeat == 60 and r.expires == 60 and r.content_encoding == "UTF-16"


def test_txwinrm_shape_send_bookmarks_and_a_huge_expires() -> None:
    """The WinRM request of spec §4.4 (txwinrm): a 119-year Expires means "never"; SendBookmarks."""
    r = parse(request(
        '<e:Subscribe><e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull">'
        '<w:Heartbeats>PT5.000S</w:Heartbeats>'
        '<w:Locale s:mustUnderstand="false" xml:lang="en-US"/><p:DataLocale s:mustUnderstand="false" xml:lang="en-US"/>'
        '<w:ContentEncoding>UTF-8</w:ContentEncoding></e:Delivery><e:Expires>PT3759670629.777S</e:Expires>'
        '<w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">SELECT * FROM CIM_InstDeletion</w:Filter>'
        '<w:SendBookmarks/></e:Subscribe>',
        uri="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*", selectors=""))
    assert isinstance(r, ev.SubscribeRequest)
    assert r.heartbeat == 5 and r.expires is None and r.send_bookmarks
    assert r.namespace == "root/cimv2" and r.class_name == "*"


def test_expires_as_datetime_and_bookmarks() -> None:
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = parse(request(
        f'<e:Subscribe><e:Delivery Mode="{ev.MODE_PULL}"/><e:Expires>{when}</e:Expires>'
        f'<w:Filter Dialect="{ns.DIALECT_CQL}">SELECT * FROM CIM_InstCreation</w:Filter>'
        f'<w:SendBookmarks/><w:Bookmark>{ev.BOOKMARK_EARLIEST}</w:Bookmark></e:Subscribe>'))
    assert isinstance(r, ev.SubscribeRequest)
    assert r.expires is not None and 3500 < r.expires <= 3600
    assert r.filter is not None and r.filter.dialect == ns.DIALECT_CQL
    assert r.bookmark == ev.BOOKMARK_EARLIEST and ev.mi_bookmark(r.bookmark) == BOOKMARK_OLDEST


def test_xml_bookmark_is_kept_as_xml() -> None:
    r = parse(request(
        f'<e:Subscribe><e:Delivery Mode="{ev.MODE_PULL}"/>'
        f'<w:Filter Dialect="{ns.DIALECT_WQL}">SELECT * FROM A</w:Filter>'
        '<w:Bookmark><BookmarkList><Bookmark Channel="x" RecordId="7"/></BookmarkList></w:Bookmark></e:Subscribe>'))
    assert isinstance(r, ev.SubscribeRequest) and r.bookmark is not None
    assert r.bookmark.startswith("<BookmarkList") and 'RecordId="7"' in r.bookmark


def test_push_modes_with_notify_to_end_to_and_batching() -> None:
    """MS-WSMV §4.4's Events form: EndTo, NotifyTo with an Identifier, MaxElements, MaxTime, ConnectionRetry."""
    r = parse(request(
        '<e:Subscribe><e:EndTo><a:Address>http://sink:80/end</a:Address><a:ReferenceProperties>'
        '<e:Identifier>uuid:END</e:Identifier></a:ReferenceProperties></e:EndTo>'
        f'<e:Delivery Mode="{ev.MODE_EVENTS}"><e:NotifyTo><a:Address>http://sink:80/events</a:Address>'
        '<a:ReferenceProperties><e:Identifier>uuid:SINK</e:Identifier></a:ReferenceProperties></e:NotifyTo>'
        '<w:MaxElements>20</w:MaxElements><w:MaxTime>PT2.5S</w:MaxTime>'
        '<w:MaxEnvelopeSize Policy="Notify">153600</w:MaxEnvelopeSize>'
        '<w:ConnectionRetry Total="4">PT10S</w:ConnectionRetry></e:Delivery>'
        f'<w:Filter Dialect="{ns.DIALECT_WQL}">SELECT * FROM CIM_InstDeletion</w:Filter></e:Subscribe>'))
    assert isinstance(r, ev.SubscribeRequest)
    assert r.delivery_mode == ev.MODE_EVENTS and r.max_elements == 20 and r.max_time == 2.5
    assert r.notify_to is not None and r.notify_to.address == "http://sink:80/events"
    assert r.notify_to.identifier == "uuid:SINK"
    assert r.end_to is not None and r.end_to.address == "http://sink:80/end" and r.end_to.identifier == "uuid:END"
    assert r.connection_retry == (10.0, 4)


@pytest.mark.parametrize("mode", [ev.MODE_PUSH, ev.MODE_PUSH_WITH_ACK, ev.MODE_EVENTS, ev.MODE_PULL])
def test_every_mode_round_trips(mode: str) -> None:
    push = mode != ev.MODE_PULL
    sent = ev.SubscribeRequest(
        namespace="root/cimv2", class_name="*", delivery_mode=mode, heartbeat=7.5, expires=120,
        filter=Filter(dialect=ns.DIALECT_WQL, query="SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'A'"),
        send_bookmarks=True, bookmark="abc:12",
        notify_to=ev.EndpointReference(address="http://127.0.0.1:9/sink",
                                       parameters={ev.E_IDENTIFIER: "uuid:X"}) if push else None,
        end_to=ev.EndpointReference(address="http://127.0.0.1:9/end") if push else None,
        max_elements=5 if mode == ev.MODE_EVENTS else None, max_time=0.5 if mode == ev.MODE_EVENTS else None,
        connection_retry=(1.0, 2) if push else None, delivery_max_envelope=65536 if push else None)
    got = parse(wsman.build_request(sent))
    assert isinstance(got, ev.SubscribeRequest)
    for name in ("delivery_mode", "heartbeat", "expires", "filter", "send_bookmarks", "bookmark", "notify_to",
                 "end_to", "max_elements", "max_time", "connection_retry", "namespace", "delivery_max_envelope"):
        assert getattr(got, name) == getattr(sent, name), name
    assert got.effective_resource_uri() == "http://schemas.dmtf.org/wbem/wscim/1/*"


def test_wmi_style_wildcard_uri() -> None:
    sent = ev.SubscribeRequest(namespace="root/cimv2", class_name="*", uri_style=wsman.UriStyle.WMI,
                               filter=Filter(dialect=ns.DIALECT_WQL, query="SELECT * FROM A"))
    assert sent.effective_resource_uri() == "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"
    assert b"__cimnamespace" not in wsman.build_request(sent)


def test_reserved_bookmarks_on_the_wire() -> None:
    assert ev.wire_bookmark(BOOKMARK_OLDEST) == ev.BOOKMARK_EARLIEST
    assert ev.wire_bookmark(BOOKMARK_NEWEST) is None and ev.wire_bookmark(None) is None
    assert ev.wire_bookmark("e:5") == "e:5" and ev.mi_bookmark("e:5") == "e:5"


# --- Subscribe faults ----------------------------------------------------------------------------------


def _sub(delivery: str, rest: str = f'<w:Filter Dialect="{ns.DIALECT_WQL}">SELECT * FROM A</w:Filter>') -> bytes:
    return request(f"<e:Subscribe>{delivery}{rest}</e:Subscribe>")


@pytest.mark.parametrize("data, subcode, detail, result", [
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"><w:Heartbeats>2030-01-01T00:00:00Z</w:Heartbeats></e:Delivery>'),
     "UnsupportedFeature", "Heartbeats", MIResult.NOT_SUPPORTED),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"><w:ConnectionRetry Total="0">PT5S</w:ConnectionRetry></e:Delivery>'),
     "InternalError", None, MIResult.FAILED),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"/>', f'<w:Filter Dialect="{ns.DIALECT_WQL}">SELECT * FROM A</w:Filter>'
          '<w:Bookmark/>'), "InvalidBookmark", "Invalid", MIResult.INVALID_PARAMETER),
    (_sub('<e:Delivery Mode="http://example.com/Carrier-Pigeon"/>'), "DeliveryModeRequestedUnavailable", None,
     MIResult.NOT_SUPPORTED),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"/>', '<w:Filter Dialect="http://www.w3.org/TR/1999/REC-xpath-19991116">'
          '/a</w:Filter>'), "FilteringRequestedUnavailable", None, MIResult.NOT_SUPPORTED),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"/>', f'<w:Filter Dialect="{ns.DIALECT_WQL}">  </w:Filter>'),
     "EventSourceUnableToProcess", None, MIResult.INVALID_QUERY),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PUSH}"/>'), "EventDeliverToUnusable", "UnusableAddress",
     MIResult.INVALID_PARAMETER),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PUSH}"><e:NotifyTo><a:Address>mailto:x@y</a:Address></e:NotifyTo>'
          '</e:Delivery>'), "EventDeliverToUnusable", "UnusableAddress", MIResult.INVALID_PARAMETER),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"/>', '<e:Expires>P-1D</e:Expires>'), "InvalidExpirationTime", None,
     MIResult.INVALID_PARAMETER),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"/>', '<e:Expires>2001-01-01T00:00:00Z</e:Expires>'),
     "InvalidExpirationTime", None, MIResult.INVALID_PARAMETER),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"/>', '<e:Expires>tomorrow</e:Expires>'), "InvalidExpirationTime",
     None, MIResult.INVALID_PARAMETER),
    (_sub(f'<e:Delivery Mode="{ev.MODE_PULL}"><w:Extra s:mustUnderstand="true"/></e:Delivery>'),
     "UnsupportedFeature", None, MIResult.NOT_SUPPORTED),
    (request("<e:Subscribe/>"), "SchemaValidationError", None, MIResult.INVALID_PARAMETER),
])
def test_subscribe_faults(data: bytes, subcode: str, detail: str | None, result: MIResult) -> None:
    f = fault_of(data)
    assert f.fault.subcode is not None and f.fault.subcode[1] == subcode
    assert f.fault.detail_name == detail
    assert f.result == result
    assert f.relates_to == "uuid:08564A3B-4E90-4571-5B2C-1A49ACD1E8FF"
    # the fault we would send names the result three ways, with an Action OMI's client accepts
    status, body = wsman.build_fault(None, f)
    assert status == 500 and f"OMI:MI_Result:{int(result)}".encode() in body
    assert f.fault.action in (ns.FAULT_ACTION_WSMAN, ns.FAULT_ACTION_WSA, ns.FAULT_ACTION_WSEN,
                              ns.FAULT_ACTION_WXF, ns.FAULT_ACTION_WSE)
    with pytest.raises(wsman.WSManFault) as back:  # and our client reads the same result back
        wsman.parse_response(body, None, wsman.GetRequest(message_id=f.relates_to or "", class_name="A"))
    assert back.value.result == result


# --- the subscription manager --------------------------------------------------------------------------


def test_omi_unsubscribe_sample() -> None:
    r = parse(request("<e:Unsubscribe/>", action=ev.ACTION_UNSUBSCRIBE,
                      extra_headers="<e:Identifier>5B0D2C7E-0F7A-4E55-9C0E-2F1E6A4D1A01</e:Identifier>"))
    assert isinstance(r, ev.UnsubscribeRequest) and r.identifier == "5B0D2C7E-0F7A-4E55-9C0E-2F1E6A4D1A01"


def test_unsubscribe_without_identifier_is_refused() -> None:
    f = fault_of(request("<e:Unsubscribe/>", action=ev.ACTION_UNSUBSCRIBE))
    assert f.fault.subcode is not None and f.fault.subcode[1] == "MessageInformationHeaderRequired"


def test_renew_and_get_status_parse() -> None:
    r = parse(request("<e:Renew><e:Expires>PT10M</e:Expires></e:Renew>", action=ev.ACTION_RENEW,
                      extra_headers="<e:Identifier>uuid:1</e:Identifier>"))
    assert isinstance(r, ev.RenewRequest) and r.identifier == "uuid:1" and r.expires == 600
    g = parse(request("<e:GetStatus/>", action=ev.ACTION_GET_STATUS,
                      extra_headers="<e:Identifier>uuid:1</e:Identifier>"))
    assert isinstance(g, ev.GetStatusRequest)


def test_manager_requests_round_trip() -> None:
    for sent in (ev.UnsubscribeRequest(namespace="root/cimv2", class_name="*", identifier="uuid:AB"),
                 ev.RenewRequest(namespace="root/cimv2", class_name="*", identifier="uuid:AB", expires=30)):
        got = parse(wsman.build_request(sent))
        assert type(got) is type(sent) and got.identifier == "uuid:AB"  # type: ignore[attr-defined]


# --- SubscribeResponse ------------------------------------------------------------------------------------

_EXPECTED = ev.SubscribeRequest(message_id="uuid:1", namespace="root/cimv2", class_name="*")


def _response(body: str, headers: str = "") -> bytes:
    return ENV + (
        f"<s:Header><a:Action>{ev.ACTION_SUBSCRIBE_RESPONSE}</a:Action><a:MessageID>uuid:2</a:MessageID>"
        f"<a:RelatesTo>uuid:1</a:RelatesTo>{headers}</s:Header><s:Body>{body}</s:Body></s:Envelope>").encode()


def test_omi_subscribe_response_bytes() -> None:
    """OMI's exact bytes (spec §4.4): ReferenceProperties, no Address, the decimal id twice."""
    r = wsman.parse_response(_response(
        '<e:SubscribeResponse><e:SubscriptionManager><a:ReferenceProperties><w:ResourceURI>'
        'http://schemas.dmtf.org/wbem/wscim/1/*</w:ResourceURI><e:Identifier>42</e:Identifier>'
        '</a:ReferenceProperties></e:SubscriptionManager><n:EnumerationContext>42</n:EnumerationContext>'
        '</e:SubscribeResponse>'), None, _EXPECTED)
    assert isinstance(r, ev.SubscribeResponse)
    assert r.identifier == "42" and r.context == "42" and r.address == ns.ANONYMOUS and r.expires is None
    assert r.resource_uri == "http://schemas.dmtf.org/wbem/wscim/1/*"


def test_dsp0226_subscribe_response_round_trip() -> None:
    sent = ev.SubscribeResponse(identifier="uuid:2A786C5D", address="http://lnx01:5985/wsman",
                                resource_uri="http://schemas.dmtf.org/wbem/wscim/1/*", context="uuid:2A786C5D",
                                expires=3600)
    got = wsman.parse_response(wsman.build_response(_EXPECTED, sent), None, _EXPECTED)
    assert isinstance(got, ev.SubscribeResponse)
    assert (got.identifier, got.address, got.resource_uri, got.context, got.expires, got.bookmark) == \
        ("uuid:2A786C5D", "http://lnx01:5985/wsman", "http://schemas.dmtf.org/wbem/wscim/1/*", "uuid:2A786C5D", 3600,
         None)
    sent.bookmark = "0123456789ab:41"  # (openmi's: where the subscription starts, a wsman:Bookmark header)
    data = wsman.build_response(_EXPECTED, sent)
    assert b"<w:Bookmark>0123456789ab:41</w:Bookmark></s:Header>" in data
    got = wsman.parse_response(data, None, _EXPECTED)
    assert isinstance(got, ev.SubscribeResponse) and got.bookmark == "0123456789ab:41"


def test_subscribe_response_without_identifier_fails() -> None:
    with pytest.raises(MIError) as info:
        wsman.parse_response(_response("<e:SubscribeResponse/>"), None, _EXPECTED)
    assert info.value.result == MIResult.FAILED


# --- Pull pages of a subscription --------------------------------------------------------------------------

_PULL = wsman.PullRequest(message_id="uuid:1", namespace="root/cimv2", class_name="*", context="c")
_DELETION = ('<p:CIM_InstDeletion xmlns:p="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_InstDeletion">'
             '<p:IndicationIdentifier>id-1</p:IndicationIdentifier></p:CIM_InstDeletion>')


def _pull_response(items: str, headers: str = "", action: str = ns.ACTION_PULL + "Response") -> bytes:
    return ENV + (
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:2</a:MessageID>"
        f"<a:RelatesTo>uuid:1</a:RelatesTo>{headers}</s:Header><s:Body><n:PullResponse>"
        f"<n:EnumerationContext>c</n:EnumerationContext><n:Items>{items}</n:Items></n:PullResponse>"
        f"</s:Body></s:Envelope>").encode()


def test_pull_response_with_bookmark_header_plain_item() -> None:
    r = wsman.parse_response(_pull_response(_DELETION, "<w:Bookmark>ep:9</w:Bookmark>"), None, _PULL)
    assert isinstance(r, wsman.PullResponse)
    assert r.bookmark == "ep:9" and not r.heartbeat
    assert [i.class_name for i in r.items] == ["CIM_InstDeletion"] and r.items[0]["IndicationIdentifier"] == "id-1"


def test_pull_response_with_wsman_event_wrappers() -> None:
    r = wsman.parse_response(_pull_response(f'<w:Event Action="{ev.ACTION_EVENT}">{_DELETION}</w:Event>' * 2),
                             None, _PULL)
    assert isinstance(r, wsman.PullResponse)
    assert [i.class_name for i in r.items] == ["CIM_InstDeletion"] * 2 and r.bookmark is None


def test_empty_pull_response_is_a_heartbeat() -> None:
    r = wsman.parse_response(_pull_response(""), None, _PULL)
    assert isinstance(r, wsman.PullResponse) and r.heartbeat and not r.items
    hb = ENV + (f"<s:Header><a:Action>{ev.ACTION_HEARTBEAT}</a:Action><a:MessageID>uuid:2</a:MessageID>"
                "<a:RelatesTo>uuid:1</a:RelatesTo></s:Header><s:Body/></s:Envelope>").encode()
    r = wsman.parse_response(hb, None, _PULL)
    assert isinstance(r, wsman.PullResponse) and r.heartbeat and not r.end_of_sequence


def test_pull_response_bookmark_written() -> None:
    out = wsman.build_response(_PULL, wsman.PullResponse(context="c", items=[Instance("CIM_InstDeletion", {
        "IndicationIdentifier": "x"})], bookmark="ep:3"))
    assert b"<w:Bookmark>ep:3</w:Bookmark>" in out
    back = wsman.parse_response(out, None, _PULL)
    assert isinstance(back, wsman.PullResponse) and back.bookmark == "ep:3"


# --- source → sink -----------------------------------------------------------------------------------------


def _event(i: int) -> Instance:
    return Instance("CIM_InstDeletion", {"IndicationIdentifier": f"id-{i}",
                                         "SourceInstance": Instance("Sample_Person", {"Id": i})})


@pytest.mark.parametrize("action, n", [(ev.ACTION_EVENT, 1), (ev.ACTION_EVENTS, 3), (ev.ACTION_HEARTBEAT, 0)])
def test_event_messages_round_trip(action: str, n: int) -> None:
    m = ev.EventMessage(to="http://127.0.0.1:1/sink", action=action, events=[_event(i) for i in range(n)],
                        headers={ev.E_IDENTIFIER: "uuid:S"}, ack_requested=True, bookmark="ep:7" if n else None,
                        machine_id="srv01", namespace="root/cimv2")
    data = ev.build_event_message(m)
    got = ev.parse_sink_message(data, "application/soap+xml;charset=UTF-8")
    assert got.action == action and got.identifier == "uuid:S" and got.ack_requested
    assert got.message_id == m.message_id and got.machine_id == "srv01"
    assert [e["IndicationIdentifier"] for e in got.events] == [f"id-{i}" for i in range(n)]
    assert got.bookmark == m.bookmark
    if n:
        assert got.events[0]["SourceInstance"]["Id"] == "0"  # untyped off the wire
    if action == ev.ACTION_EVENTS:
        assert data.count(b'Action="http://schemas.dmtf.org/wbem/wsman/1/wsman/Event"') == 3


def test_ms_wsmv_events_delivery_bytes() -> None:
    """MS-WSMV §4.6.3's batched delivery, with MachineID, Identifier and AckRequested headers."""
    data = ENV + (
        f'<s:Header><a:To>http://sink:80/events</a:To><a:Action>{ev.ACTION_EVENTS}</a:Action>'
        '<a:MessageID>uuid:EV-1</a:MessageID><m:MachineID xmlns:m="http://schemas.microsoft.com/wbem/wsman/1/'
        'machineid" s:mustUnderstand="false">srv01.example.com</m:MachineID>'
        '<e:Identifier>uuid:SINK</e:Identifier><w:AckRequested/></s:Header><s:Body><w:Events>'
        f'<w:Event Action="{ev.ACTION_EVENT}">{_DELETION}</w:Event></w:Events></s:Body></s:Envelope>').encode()
    got = ev.parse_sink_message(data, None)
    assert got.machine_id == "srv01.example.com" and got.identifier == "uuid:SINK" and got.ack_requested
    assert [e.class_name for e in got.events] == ["CIM_InstDeletion"]


def test_subscription_end_round_trip() -> None:
    m = ev.SubscriptionEnd(to="http://127.0.0.1:1/end", identifier="uuid:SUB", reason="bye",
                           manager_address="http://srv:5985/wsman")
    got = ev.parse_sink_message(ev.build_subscription_end(m), None)
    assert got.action == ev.ACTION_SUBSCRIPTION_END and got.identifier == "uuid:SUB"
    assert got.end_status == ev.STATUS_SOURCE_SHUTTING_DOWN and got.end_reason == "bye"
    assert ev.end_status_result(got.end_status) == MIResult.SERVER_IS_SHUTTING_DOWN
    assert ev.end_status_result(ev.STATUS_DELIVERY_FAILURE) == MIResult.FAILED
    assert got.end_result is None  # (a SubscriptionEnd that carries no MI result: OMI's, WinRM's)


def test_subscription_end_carries_its_mi_result() -> None:
    m = ev.SubscriptionEnd(to="http://c/sink", identifier="uuid:SUB", status=ev.STATUS_SOURCE_CANCELLING,
                           reason="3 event(s) were dropped", result=MIResult.SERVER_LIMITS_EXCEEDED)
    got = ev.parse_sink_message(ev.build_subscription_end(m), None)
    assert got.end_status == ev.STATUS_SOURCE_CANCELLING and got.end_result == MIResult.SERVER_LIMITS_EXCEEDED
    assert got.end_error is not None and got.end_error["Message"] == "3 event(s) were dropped"
    assert ev.end_status_result(got.end_status, got.end_result) == MIResult.SERVER_LIMITS_EXCEEDED


def test_ack() -> None:
    data = ev.build_ack("uuid:EV-1")
    ev.parse_ack(data, None, "uuid:EV-1")
    with pytest.raises(MIError, match="relates to"):
        ev.parse_ack(data, None, "uuid:OTHER")
    refused = wsman.build_fault(None, wsman.WSManFault(ev_fault("wsman:DeliveryRefused")))[1]
    with pytest.raises(wsman.WSManFault) as info:
        ev.parse_ack(refused, None, "uuid:EV-1")
    assert info.value.fault.subcode == (ns.WSMAN, "DeliveryRefused")


def ev_fault(name: str) -> wsman.Fault:
    from openmi.protocol.wsman.faults import protocol_fault

    return protocol_fault(name, "no more, thanks").fault


def test_unreadable_sink_message_is_a_fault() -> None:
    with pytest.raises(wsman.WSManFault):
        ev.parse_sink_message(b"<nope/>", None)
    with pytest.raises(wsman.WSManFault):
        ev.parse_sink_message(ENV + b"<s:Header/><s:Body/></s:Envelope>", None)


def test_pull_plan_subscribes_again_for_the_time_left_and_after_a_restart() -> None:
    """The remote Pull subscription, driven step by step: its Subscribe carries an OperationTimeout; a
    heartbeat's bookmark (openmi sends one) is where it stands before any event; after a dropped connection
    it subscribes again from there for the time left, not its whole expiration again; a server that no longer
    knows the bookmark (it restarted) gets a Subscribe from its newest event instead of ending it."""
    from openmi.cim import requests as rq
    from openmi.cim.cancel import CancelToken
    from openmi.protocol.wsman import operations as ops
    from openmi.protocol.wsman.faults import protocol_fault

    record = rq.Subscribe("root/cimv2", dialect="WQL", query="SELECT * FROM CIM_InstDeletion", expiration=100.0,
                          heartbeat=1.0)
    plan = ops.subscribe_plan(record, CancelToken(), 10, 60.0)
    kind, sub = next(plan)
    assert kind == "send" and isinstance(sub, ev.SubscribeRequest)
    assert sub.expires == 100.0 and sub.operation_timeout == ops.SUBSCRIBE_TIMEOUT and sub.bookmark is None
    assert plan.send(ev.SubscribeResponse(identifier="uuid:S", context="uuid:S")) == ("item", rq.STARTED)
    kind, pull = next(plan)
    assert kind == "send" and isinstance(pull, wsman.PullRequest)
    kind, pull = plan.send(wsman.PullResponse(context="uuid:S", heartbeat=True, bookmark="E1:5"))
    assert kind == "send" and isinstance(pull, wsman.PullRequest)
    assert plan.throw(MIError(MIResult.FAILED, "the connection was reset"))[0] == "sleep"
    kind, again = next(plan)
    assert kind == "send" and isinstance(again, ev.SubscribeRequest)
    assert again.bookmark == ev.wire_bookmark("E1:5")
    assert again.expires is not None and again.expires < 100.0
    gone = protocol_fault("wsman:InvalidBookmark", "not issued by this server", "Expired",
                          result=MIResult.INVALID_PARAMETER)
    assert plan.throw(gone)[0] == "sleep"
    kind, third = next(plan)
    assert kind == "send" and isinstance(third, ev.SubscribeRequest) and third.bookmark is None
    plan.close()


def test_push_plan_asks_for_heartbeats_when_none_are_given() -> None:
    """A push subscription with no heartbeat in its options still asks the server for heartbeats, so that a
    server that died without a SubscriptionEnd is noticed (three silent intervals) and subscribed to again."""
    from openmi.cim import requests as rq
    from openmi.cim.cancel import CancelToken
    from openmi.protocol.wsman import operations as ops

    class Sink:
        url = "http://127.0.0.1:9/sink/token"
        closed = False

        def close(self) -> None:
            self.closed = True

    record = rq.Subscribe("root/cimv2", dialect="WQL", query="SELECT * FROM CIM_InstDeletion", delivery="push")
    plan = ops.subscribe_plan(record, CancelToken(), 10, 60.0)
    assert next(plan)[0] == "listen"
    sink = Sink()
    kind, sub = plan.send(sink)
    assert kind == "send" and isinstance(sub, ev.SubscribeRequest)
    assert sub.heartbeat == ops.PUSH_HEARTBEAT and sub.notify_to is not None and sub.notify_to.address == sink.url
    plan.close()
    assert sink.closed

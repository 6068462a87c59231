"""The byte templates of the body-less answers (Delete, Release, Put without the instance) and of faults
against the full writer: the same bytes for every message id and text, and the full writer wherever a
template cannot vouch for the result (texts needing escapes, UTF-16, no RelatesTo, an envelope over the cap)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openmi.cim.cimerror import error_instance
from openmi.cim.errors import MIError
from openmi.cim.instance import Element, Instance
from openmi.cim.types import MIFlag, MIResult, MIType
from openmi.protocol import wsman
from openmi.protocol.wsman import namespaces as ns
from openmi.protocol.wsman import response_codec
from openmi.protocol.wsman.envelope import SERVER_LIMITS, Limits
from openmi.protocol.wsman.faults import WSManFault, protocol_fault

URI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Bench_Item"


def _both(req: wsman.Request, resp: wsman.Response, limits: Limits = SERVER_LIMITS) -> tuple[bytes, bytes]:
    fast = wsman.build_response(req, resp, limits=limits)
    response_codec._FAST = False
    try:
        full = wsman.build_response(req, resp, limits=limits)
    finally:
        response_codec._FAST = True
    return fast, full


def _requests(message_id: str) -> list[tuple[wsman.Request, wsman.Response]]:
    common = {"message_id": message_id, "resource_uri": URI, "selectors": {"Id": "1"}}
    return [
        (wsman.DeleteRequest(**common), wsman.DeleteResponse(message_id="uuid:AAAA")),
        (wsman.ReleaseRequest(context="uuid:ctx", **common), wsman.ReleaseResponse(message_id="uuid:BBBB")),
        (wsman.PutRequest(instance=Instance("Bench_Item", {"Id": 1}), **common),
         wsman.PutResponse(message_id="uuid:CCCC")),
    ]


@pytest.mark.parametrize("message_id", [
    "uuid:6C1E4B8A-2F3D-4E5F-8A9B-0C1D2E3F4A5B", "urn:uuid:1", "x", "a&b", "a<b>c", " padded ", "tab\there",
    "é-non-ascii", "cr\rlf", "",
])
def test_templates_write_the_full_writers_bytes(message_id: str) -> None:
    for req, resp in _requests(message_id):
        fast, full = _both(req, resp)
        assert fast == full


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=60))
def test_templates_match_for_any_message_id(message_id: str) -> None:
    for req, resp in _requests(message_id):
        try:
            fast, full = _both(req, resp)
        except ValueError:  # a text lxml itself refuses (control characters): both paths refuse
            response_codec._FAST = False
            try:
                with pytest.raises(ValueError):
                    wsman.build_response(req, resp)
            finally:
                response_codec._FAST = True
            continue
        assert fast == full


def test_a_fresh_message_id_each_time() -> None:
    req = wsman.DeleteRequest(message_id="uuid:1", resource_uri=URI)
    a = wsman.build_response(req, wsman.DeleteResponse())
    b = wsman.build_response(req, wsman.DeleteResponse())
    assert a != b
    parsed = wsman.parse_response(a, None, req)
    assert isinstance(parsed, wsman.DeleteResponse) and parsed.relates_to == "uuid:1"
    assert parsed.message_id.startswith("uuid:")


def test_utf16_and_the_envelope_cap_take_the_full_writer() -> None:
    req = wsman.DeleteRequest(message_id="uuid:1", resource_uri=URI, encoding="utf-16")
    data = wsman.build_response(req, wsman.DeleteResponse(message_id="uuid:2"))
    assert data.startswith(b"\xff\xfe")
    tiny = wsman.DeleteRequest(message_id="uuid:" + "1" * 600, resource_uri=URI, max_envelope_size=500)
    with pytest.raises(WSManFault) as err:
        wsman.build_response(tiny, wsman.DeleteResponse())
    assert err.value.fault.subcode is not None and err.value.fault.subcode[1] == "EncodingLimit"


def test_put_with_an_instance_is_written_in_full() -> None:
    req = wsman.PutRequest(message_id="uuid:1", resource_uri=URI, instance=Instance("Bench_Item", {"Id": 1}))
    resp = wsman.PutResponse(message_id="uuid:2", instance=Instance("Bench_Item", {"Id": 1, "Name": "x"}))
    fast, full = _both(req, resp)
    assert fast == full and b"Name" in fast


# --- faults ------------------------------------------------------------------------------------------

def _faults_both(req: wsman.Request | None, err: MIError, machine: str | None = "host") -> tuple[bytes, bytes]:
    _, fast = wsman.build_fault(req, err, machine=machine)
    response_codec._FAST = False
    try:
        _, full = wsman.build_fault(req, err, machine=machine)
    finally:
        response_codec._FAST = True
    return _without_message_id(fast), _without_message_id(full)


def _without_message_id(data: bytes) -> bytes:
    """The fault with its fresh MessageID blanked (each answer gets its own)."""
    head, sep, rest = data.partition(b"MessageID>uuid:")
    assert sep, data[:300]
    return head + sep + rest[36:]


def _engine_error(result: MIResult, message: str, source: str | None = "GetInstance") -> MIError:
    return MIError(result, message, error_instance(result, message, source=source))


@pytest.mark.parametrize("result", [MIResult.NOT_FOUND, MIResult.ALREADY_EXISTS, MIResult.ACCESS_DENIED,
                                    MIResult.INVALID_CLASS, MIResult.FAILED, MIResult.TYPE_MISMATCH])
@pytest.mark.parametrize("message", ["no instance of Bench_Item with Id=5 in namespace root/cimv2", "x",
                                     "quotes ' and \" and spaces  ", "a & b < c", "é", "tab\tin it"])
def test_fault_templates_write_the_full_writers_bytes(result: MIResult, message: str) -> None:
    req = wsman.GetRequest(message_id="uuid:6C1E4B8A-2F3D-4E5F-8A9B-0C1D2E3F4A5B", resource_uri=URI)
    fast, full = _faults_both(req, _engine_error(result, message))
    assert fast == full
    fast, full = _faults_both(req, MIError(result, message))  # no details instance
    assert fast == full


def test_protocol_faults_and_unparsed_requests_match() -> None:
    req = wsman.DeleteRequest(message_id="uuid:1", resource_uri=URI)
    for f in (protocol_fault("wsman:EncodingLimit", "too big", "MaxEnvelopeSizeExceeded"),
              protocol_fault("wsa:ActionNotSupported", "The action 'x' is not supported.", "ActionMismatch"),
              protocol_fault("s:MustUnderstand", "not understood", not_understood=("urn:x", "Y"))):
        assert _faults_both(req, f)[0] == _faults_both(req, f)[1]
        f.relates_to = "uuid:2"
        fast, full = _faults_both(None, f, machine=None)
        assert fast == full


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80),
       st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_fault_templates_match_for_any_texts(message: str, message_id: str) -> None:
    req = wsman.GetRequest(message_id=message_id, resource_uri=URI)
    try:
        fast, full = _faults_both(req, _engine_error(MIResult.NOT_FOUND, message))
    except ValueError:  # a text lxml refuses: the full writer's refusal, whichever path
        return
    assert fast == full


def test_a_marker_text_in_the_error_takes_the_full_writer() -> None:
    req = wsman.GetRequest(message_id="uuid:1", resource_uri=URI)
    err = _engine_error(MIResult.NOT_FOUND, "openmi-template-reason", source="openmi-template-cim-message")
    fast, full = _faults_both(req, err)
    assert fast == full
    with pytest.raises(WSManFault) as parsed:
        wsman.parse_response(wsman.build_fault(req, err)[1], None, req)
    assert parsed.value.result == MIResult.NOT_FOUND and "openmi-template-reason" in parsed.value.message


def test_the_common_fault_and_delete_answer_take_the_templates() -> None:
    """The comparisons above would pass with no template at all: the plain cases must really use them."""
    err = _engine_error(MIResult.NOT_FOUND, "no instance of Bench_Item with Id=5 in namespace root/cimv2")
    fault = response_codec.fault_for_error(err)
    assert response_codec._fault_from_template(fault, "host", "uuid:1") is not None
    assert response_codec._from_template(ns.RESPONSE_ACTIONS[ns.ACTION_DELETE], "uuid:1", None, SERVER_LIMITS,
                                         None) is not None


# --- Get answers ----------------------------------------------------------------------------------------

def _get_both(inst: Instance, style: wsman.UriStyle = wsman.UriStyle.WMI, message_id: str = "uuid:1",
              namespace: str | None = "root/cimv2") -> tuple[bytes, bytes]:
    req = wsman.GetRequest(message_id=message_id, resource_uri=URI, namespace=namespace, uri_style=style)
    return _both(req, wsman.GetResponse(message_id="uuid:2", instance=inst))


_SCALARS = st.one_of(
    st.tuples(st.just(MIType.STRING), st.text(max_size=30)),
    st.tuples(st.just(MIType.UINT32), st.integers(0, 2**32 - 1)),
    st.tuples(st.just(MIType.SINT64), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(MIType.BOOLEAN), st.booleans()),
    st.tuples(st.just(MIType.REAL64), st.floats()),
    st.tuples(st.just(MIType.STRING), st.none()),
    st.tuples(st.just(MIType.STRINGA), st.lists(st.text(max_size=5), max_size=3)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SCALARS, min_size=0, max_size=6), st.sampled_from(list(wsman.UriStyle)))
def test_get_templates_write_the_full_writers_bytes(values: list[tuple[MIType, object]],
                                                    style: wsman.UriStyle) -> None:
    elements = {f"p{i}": Element(f"P{i}", v, t, int(MIFlag.KEY) if i == 0 else 0)
                for i, (t, v) in enumerate(values)}
    inst = Instance.from_elements("Bench_Item", elements, namespace="root/cimv2")
    fast, full = _get_both(inst, style)
    assert fast == full


def test_get_templates_cover_odd_texts_and_fall_back_for_the_rest() -> None:
    for text in ("plain", "a & b <c> \"q\" 'q'", "é ü 😀", "cr\r\nlf\ttab", "\x7f\x85", "bad \x01 char", ""):
        inst = Instance.from_elements("Bench_Item", {"id": Element("Id", 5, MIType.UINT32, int(MIFlag.KEY)),
                                                     "name": Element("Name", text, MIType.STRING)},
                                      namespace="root/cimv2")
        fast, full = _get_both(inst)
        assert fast == full, text
    when = Instance.from_elements("Bench_Item", {"t": Element("T", datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
                                                              MIType.DATETIME)}, namespace="root/cimv2")
    fast, full = _get_both(when)
    assert fast == full
    plain = Instance.from_elements("Bench_Item", {"id": Element("Id", 5, MIType.UINT32, int(MIFlag.KEY)),
                                                  "name": Element("Name", "item5", MIType.STRING)},
                                   namespace="root/cimv2")
    req = wsman.GetRequest(message_id="uuid:1", resource_uri=URI, namespace="root/cimv2",
                           uri_style=wsman.UriStyle.WMI)
    assert response_codec._instance_from_template(req, wsman.GetResponse(instance=plain), SERVER_LIMITS) is not None
    parsed = wsman.parse_response(wsman.build_response(req, wsman.GetResponse(instance=plain)), None, req)
    assert isinstance(parsed, wsman.GetResponse) and parsed.instance is not None
    assert parsed.instance["Name"] == "item5" and parsed.relates_to == "uuid:1"


# --- Put answered with the instance, Create answers -------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(_SCALARS, min_size=1, max_size=5), st.sampled_from(list(wsman.UriStyle)))
def test_put_templates_write_the_full_writers_bytes(values: list[tuple[MIType, object]],
                                                    style: wsman.UriStyle) -> None:
    elements = {f"p{i}": Element(f"P{i}", v, t, int(MIFlag.KEY) if i == 0 else 0)
                for i, (t, v) in enumerate(values)}
    inst = Instance.from_elements("Bench_Item", elements, namespace="root/cimv2")
    req = wsman.PutRequest(message_id="uuid:1", resource_uri=URI, namespace="root/cimv2", uri_style=style,
                           instance=inst)
    fast, full = _both(req, wsman.PutResponse(message_id="uuid:2", instance=inst))
    assert fast == full


_KEYS = st.one_of(
    st.tuples(st.just(MIType.STRING), st.text(max_size=30)),
    st.tuples(st.just(MIType.UINT32), st.integers(0, 2**32 - 1)),
    st.tuples(st.just(MIType.SINT64), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just(MIType.BOOLEAN), st.booleans()),
    st.tuples(st.just(MIType.STRING), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_KEYS, min_size=1, max_size=4), st.sampled_from(list(wsman.UriStyle)),
       st.sampled_from(["root/cimv2", None, "Root/Other_NS"]), st.sampled_from([ns.ANONYMOUS, "http://h:5985/wsman"]),
       st.booleans())
def test_create_templates_write_the_full_writers_bytes(keys: list[tuple[MIType, object]], style: wsman.UriStyle,
                                                       namespace: str | None, address: str, named: bool) -> None:
    elements = {f"k{i}": Element(f"K{i}", v, t, int(MIFlag.KEY)) for i, (t, v) in enumerate(keys)}
    elements["name"] = Element("Name", "not a key", MIType.STRING)
    name = Instance.from_elements("Bench_Item", elements, namespace=namespace if named else None)
    req = wsman.CreateRequest(message_id="uuid:1", resource_uri=URI, namespace=namespace, uri_style=style,
                              instance=name)
    fast, full = _both(req, wsman.CreateResponse(message_id="uuid:2", instance_name=name, address=address))
    assert fast == full


def test_create_takes_the_template_and_reads_back() -> None:
    name = Instance.from_elements("Bench_Item", {"id": Element("Id", 7, MIType.UINT32, int(MIFlag.KEY))},
                                  namespace="root/cimv2")
    req = wsman.CreateRequest(message_id="uuid:1", resource_uri=URI, namespace="root/cimv2",
                              uri_style=wsman.UriStyle.WMI, instance=name)
    resp = wsman.CreateResponse(instance_name=name)
    assert response_codec._created_from_template(req, resp, SERVER_LIMITS) is not None
    parsed = wsman.parse_response(wsman.build_response(req, resp), None, req)
    assert isinstance(parsed, wsman.CreateResponse) and parsed.instance_name is not None
    assert parsed.instance_name["Id"] in (7, "7") and parsed.relates_to == "uuid:1"
    ref = Instance.from_elements("Bench_Link", {"a": Element("A", name, MIType.REFERENCE, int(MIFlag.KEY))},
                                 namespace="root/cimv2")  # a reference key: the full writer
    assert response_codec._created_from_template(req, wsman.CreateResponse(instance_name=ref), SERVER_LIMITS) is None


def test_put_with_the_instance_takes_the_template() -> None:
    inst = Instance.from_elements("Bench_Item", {"id": Element("Id", 7, MIType.UINT32, int(MIFlag.KEY)),
                                                 "name": Element("Name", "seven", MIType.STRING)},
                                  namespace="root/cimv2")
    req = wsman.PutRequest(message_id="uuid:1", resource_uri=URI, namespace="root/cimv2", instance=inst)
    assert response_codec._instance_from_template(req, wsman.PutResponse(instance=inst), SERVER_LIMITS) is not None
    parsed = wsman.parse_response(wsman.build_response(req, wsman.PutResponse(instance=inst)), None, req)
    assert isinstance(parsed, wsman.PutResponse) and parsed.instance is not None and parsed.instance["Name"] == "seven"


# --- Enumerate and Pull pages ---------------------------------------------------------------------------

_ITEM_VALUES = st.one_of(
    st.tuples(st.just(MIType.STRING), st.text(max_size=12)),
    st.tuples(st.just(MIType.UINT32), st.integers(0, 2**32 - 1)),
    st.tuples(st.just(MIType.BOOLEAN), st.booleans()),
    st.tuples(st.just(MIType.REAL64), st.floats()),
    st.tuples(st.just(MIType.STRING), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_ITEM_VALUES, min_size=1, max_size=4), min_size=0, max_size=5),
       st.sampled_from(list(wsman.UriStyle)), st.booleans(), st.booleans(), st.booleans(),
       st.sampled_from(["uuid:ctx-1", None, "a b"]), st.sampled_from(["root/cimv2", None]))
def test_page_templates_write_the_full_writers_bytes(rows: list[list[tuple[MIType, object]]], style: wsman.UriStyle,
                                                     pull: bool, optimize: bool, end: bool, context: str | None,
                                                     namespace: str | None) -> None:
    items = [Instance.from_elements("Bench_Item" if i % 2 else "Other_Item",
                                    {f"p{j}": Element(f"P{j}", v, t, int(MIFlag.KEY) if j == 0 else 0)
                                     for j, (t, v) in enumerate(row)}, namespace="root/cimv2")
             for i, row in enumerate(rows)]
    req: wsman.Request
    if pull:
        req = wsman.PullRequest(message_id="uuid:1", resource_uri=URI, namespace=namespace, uri_style=style,
                                context="uuid:ctx-1")
        resp: wsman.EnumerateResponse = wsman.PullResponse(message_id="uuid:2", context=context, items=items,
                                                           end_of_sequence=end)
    else:
        req = wsman.EnumerateRequest(message_id="uuid:1", resource_uri=URI, namespace=namespace, uri_style=style,
                                     optimize=optimize)
        resp = wsman.EnumerateResponse(message_id="uuid:2", context=context, items=items, end_of_sequence=end)
    fast, full = _both(req, resp)
    assert fast == full


def test_a_plain_page_takes_the_templates_and_reads_back() -> None:
    items = [Instance.from_elements("Bench_Item", {"id": Element("Id", i, MIType.UINT32, int(MIFlag.KEY)),
                                                   "name": Element("Name", f"item & {i}", MIType.STRING),
                                                   "none": Element("None", None, MIType.STRING)},
                                    namespace="root/cimv2") for i in range(3)]
    req = wsman.PullRequest(message_id="uuid:1", resource_uri=URI, namespace="root/cimv2",
                            uri_style=wsman.UriStyle.WMI, context="uuid:ctx")
    resp = wsman.PullResponse(context="uuid:ctx", items=items)
    assert response_codec._page_from_template(req, resp, SERVER_LIMITS) is not None
    parsed = wsman.parse_response(wsman.build_response(req, resp), None, req)
    assert isinstance(parsed, wsman.PullResponse) and parsed.context == "uuid:ctx" and not parsed.end_of_sequence
    assert [(x["Id"], x["Name"]) for x in parsed.items] == [(str(i), f"item & {i}") for i in range(3)]  # (untyped)
    tiny = wsman.PullRequest(message_id="uuid:1", resource_uri=URI, namespace="root/cimv2", context="uuid:ctx",
                             max_envelope_size=600)  # over the cap: the full writer says so
    with pytest.raises(WSManFault) as err:
        wsman.build_response(tiny, resp)
    assert err.value.fault.subcode is not None and err.value.fault.subcode[1] == "EncodingLimit"

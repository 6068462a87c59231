"""The table of operation kinds drives both ends: for every declaration, a request record goes the
client's way to bytes and comes back the server's way as the same record, and the engine's results go
the server's way to bytes and come back the client's way as the same results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator
from typing import Any

import pytest

from openmi.cim import Class, Element, Instance, MIError, MIFlag, MIResult, MIType, OperationFlags, Property
from openmi.cim import requests as rq
from openmi.cim.cancel import CancelToken
from openmi.cim.classes import Method, Parameter, resolve_class
from openmi.cim.mof import compile_mof
from openmi.protocol.wsman import (
    EnumerateRequest,
    EnumerateResponse,
    Filter,
    IdentifyRequest,
    IdentifyResponse,
    PullRequest,
    ReleaseRequest,
    Request,
    Response,
    UriStyle,
    build_request,
    build_response,
    parse_request,
    parse_response,
    request_headers,
    response_content_type,
)
from openmi.protocol.wsman import namespaces as wns
from openmi.protocol.wsman import operations as kinds
from openmi.protocol.wsman.uri import CIMXML_SCHEMA_URI

WIDGET = Class("X_Widget", properties=[
    Property("Id", MIType.UINT32, key=True),
    Property("Label", MIType.STRING),
    Property("When", MIType.DATETIME),
], methods=[Method("Polish", MIType.UINT32, [Parameter("Grit", MIType.UINT16),
                                             Parameter("Done", MIType.BOOLEAN, in_=False, out=True)])])
NS = "root/acme"

def _classes() -> tuple[Class, Class]:
    """Classes as a repository holds them (declared in MOF, resolved): what GetClass carries."""
    declared = {c.name: c for _, c in compile_mof("""
        [Description("a widget")] class X_Widget { [Key] uint32 Id; string Label; datetime When;
            uint32 Polish([In] uint16 Grit, [Out] boolean Done); };
        class X_Gadget : X_Widget { [Units("lumen")] real32 Shine = 1.5; };""").classes}
    widget = resolve_class(declared["X_Widget"], None)
    return widget, resolve_class(declared["X_Gadget"], widget)


CLASS_WIDGET, GADGET = _classes()


LINK = Class("X_Link", properties=[
    Property("Left", MIType.REFERENCE, key=True, reference_class="X_Widget"),
    Property("Right", MIType.REFERENCE, key=True, reference_class="X_Widget"),
    Property("Weight", MIType.UINT32),
], qualifiers={"Association": True})


def lookup(namespace: str | None, name: str) -> Class | None:
    # GADGET derives from X_Widget
    return {"x_widget": WIDGET, "x_gadget": GADGET, "x_link": LINK}.get(name.lower())


def widget(i: int = 42, label: str = "left") -> Instance:
    inst = Instance("X_Widget", cls=WIDGET, namespace=NS)
    inst["Id"] = i
    inst["Label"] = label
    inst["When"] = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    return inst


def grit(n: int) -> Instance:
    return Instance.from_elements("__parameters", [Element("Grit", n, MIType.UINT16)])


def epr(i: int) -> Instance:
    """An instance name as an EPR brings it back: the selector values are text (no class types them)."""
    return Instance.from_elements("X_Widget", [Element("Id", str(i), MIType.STRING, MIFlag.KEY)], namespace=NS)


def link(a: int, b: int) -> Instance:
    """An association instance: its references travel as EPRs and come back as openmi.Reference."""
    inst = Instance("X_Link", cls=LINK, namespace=NS)
    inst["Left"] = widget(a).keys_only()
    inst["Right"] = widget(b).keys_only()
    inst["Weight"] = 7
    return inst


def epr_link(a: int, b: int) -> Instance:
    """An association's name as an EPR brings it back: untyped text keys, references inside."""
    return Instance.from_elements("X_Link", [Element("Left", epr(a), MIType.REFERENCE, MIFlag.KEY),
                                             Element("Right", epr(b), MIType.REFERENCE, MIFlag.KEY)], namespace=NS)


def out_params() -> Instance:
    return Instance.from_elements("__parameters", [Element("ReturnValue", 0, MIType.UINT32),
                                                   Element("Done", True, MIType.BOOLEAN)])


OPTIONS = {"Depth": 2, "Verbose": True}
SHALLOW = int(OperationFlags.POLYMORPHISM_SHALLOW)

# One sample per operation kind: (record, the engine's results, the results the client reads back).
SAMPLES: dict[type[rq.Request], list[tuple[rq.Request, list[Any], list[Any]]]] = {
    rq.GetInstance: [(rq.GetInstance(namespace=NS, instance=widget().keys_only(), options=OPTIONS),
                      [widget()], [widget()])],
    rq.DeleteInstance: [(rq.DeleteInstance(namespace=NS, instance=widget().keys_only()), [], [])],
    rq.CreateInstance: [(rq.CreateInstance(namespace=NS, instance=widget()), [widget()], [epr(42)])],
    rq.ModifyInstance: [(rq.ModifyInstance(namespace=NS, instance=widget(label="right")),
                         [widget(label="right")], [widget(label="right")])],
    rq.Invoke: [
        (rq.Invoke(namespace=NS, class_name="X_Widget", method_name="Polish", instance=widget().keys_only(),
                   parameters=grit(3)), [out_params()], [out_params()]),
        (rq.Invoke(namespace=NS, class_name="X_Widget", method_name="Polish", parameters=grit(1)),
         [out_params()], [out_params()]),
    ],
    rq.EnumerateInstances: [
        (rq.EnumerateInstances(namespace=NS, class_name="X_Widget", flags=SHALLOW, options=OPTIONS),
         [widget(1), widget(2)], [widget(1), widget(2)]),
        (rq.EnumerateInstances(namespace=NS, class_name="X_Widget", keys_only=True),
         [widget(1).keys_only()], [epr(1)]),
        (rq.EnumerateInstances(namespace=NS, class_name="X_Widget",
                               flags=int(OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY)), [], []),
    ],
    rq.QueryInstances: [
        (rq.QueryInstances(namespace=NS, dialect="WQL", query="SELECT * FROM X_Widget WHERE Label <> 'a<&>b'",
                           options=OPTIONS), [widget(1), widget(2)], [widget(1), widget(2)]),
        (rq.QueryInstances(namespace=NS, dialect="CQL", query="SELECT Label FROM X_Widget WHERE Id > 1",
                           flags=SHALLOW), [widget(2)], [widget(2)]),
    ],
    rq.AssociatorInstances: [
        (rq.AssociatorInstances(namespace=NS, instance=widget().keys_only(), assoc_class="X_Link",
                                result_class="X_Widget", role="Left", result_role="Right", options=OPTIONS),
         [widget(1), widget(2)], [widget(1), widget(2)]),
        (rq.AssociatorInstances(namespace=NS, instance=widget().keys_only(), keys_only=True),
         [widget(1).keys_only()], [epr(1)]),
    ],
    rq.ReferenceInstances: [
        (rq.ReferenceInstances(namespace=NS, instance=widget(1).keys_only(), result_class="X_Link", role="Left"),
         [link(1, 2)], [link(1, 2)]),
        (rq.ReferenceInstances(namespace=NS, instance=widget(1).keys_only(), keys_only=True),
         [link(1, 2).keys_only()], [epr_link(1, 2)]),
    ],
    rq.TestConnection: [(rq.TestConnection(), [], [])],
    rq.GetClass: [(rq.GetClass(namespace=NS, class_name="X_Gadget", options=OPTIONS), [GADGET], [GADGET])],
    rq.EnumerateClasses: [
        (rq.EnumerateClasses(namespace=NS), [CLASS_WIDGET, GADGET], [CLASS_WIDGET, GADGET]),
        (rq.EnumerateClasses(namespace=NS, class_name="X_Widget", flags=SHALLOW), [GADGET], [GADGET]),
        (rq.EnumerateClasses(namespace=NS, class_name="X_Widget", class_names_only=True),
         [Class("X_Gadget", "X_Widget")], [Class("X_Gadget", "X_Widget")]),
    ],
}

CASES = [pytest.param(kind, sample, id=f"{kind.name}-{i}")
         for kind in kinds.KINDS for i, sample in enumerate(SAMPLES.get(kind.record_type, []))]

Plan = Generator[tuple[str, Any], "Response | None", None]


def test_every_declaration_has_samples() -> None:
    assert {k.record_type for k in kinds.KINDS} == set(SAMPLES)
    assert len({k.record_type for k in kinds.KINDS}) == len(kinds.KINDS)


def _first_send(plan: Plan) -> Request:
    what, req = next(plan)
    assert what == "send"
    assert isinstance(req, Request)
    return req


def _over_the_wire(req: Request) -> Request:
    data = build_request(req)
    return parse_request(data, request_headers(req)["Content-Type"], class_lookup=lookup)


def _read_back(plan: Plan, sent: Request, response: Response, parsed: Request) -> list[Any]:
    data = build_response(parsed, response)
    got = parse_response(data, response_content_type(parsed), sent, class_lookup=lookup)
    assert isinstance(got, type(response))
    out: list[Any] = []
    try:
        step = plan.send(got)
        while True:
            what, item = step
            assert what == "item", f"a finished answer asked for another exchange: {item!r}"
            out.append(item)
            step = next(plan)
    except StopIteration:
        return out


@pytest.mark.parametrize(("kind", "sample"), CASES)
def test_declaration_round_trips(kind: kinds.OperationKind, sample: tuple[rq.Request, list[Any], list[Any]]) -> None:
    record, results, expected = sample
    assert kinds.for_record(record) is kind
    plan = kinds.plan(record, CancelToken(), batch=10)
    sent = _first_send(plan)
    assert isinstance(sent, kind.request_type)
    parsed = _over_the_wire(sent)
    assert isinstance(parsed, kind.request_type)
    if kind.record is None:  # Identify: the server answers it itself
        assert isinstance(parsed, IdentifyRequest)
        assert _read_back(plan, sent, IdentifyResponse(product_vendor="openmi"), parsed) == []
        return
    assert kinds.for_wsman(parsed) is kind
    assert kind.record(parsed, lookup) == record
    if kind.streamed:
        page = EnumerateResponse(items=list(results), end_of_sequence=True)
        if kind.page is not None:
            kind.page(parsed, list(results), page, lookup)
        response: Response = page
    else:
        assert kind.response is not None
        response = kind.response(parsed, list(results), lookup)
    got = _read_back(plan, sent, response, parsed)
    assert got == expected
    assert all(getattr(x, "namespace", NS) in (NS, None) for x in got)
    assert [x.class_name for x in got] == [x.class_name for x in expected]


def test_enumeration_pulls_until_the_end_and_releases_when_stopped() -> None:
    record = rq.EnumerateInstances(namespace=NS, class_name="X_Widget", resource_uri_prefix="http://example.org/cim")
    plan = kinds.plan(record, CancelToken(), batch=2)
    first = _first_send(plan)
    assert isinstance(first, EnumerateRequest) and first.optimize and first.max_elements == 2
    assert first.resource_uri == "http://example.org/cim/X_Widget"
    reply = EnumerateResponse(items=[widget(1), widget(2)], context="ctx-1")
    release = kinds.still_open(first, reply, None)
    assert isinstance(release, ReleaseRequest)
    assert (release.namespace, release.class_name, release.resource_uri, release.context) == \
        (NS, "X_Widget", first.resource_uri, "ctx-1")
    assert kinds.still_open(first, EnumerateResponse(items=[], end_of_sequence=True), release) is None
    assert plan.send(reply) == ("item", widget(1))
    assert next(plan) == ("item", widget(2))
    what, pull = next(plan)
    assert what == "send" and isinstance(pull, PullRequest)
    assert (pull.context, pull.max_elements, pull.resource_uri) == ("ctx-1", 2, first.resource_uri)
    # the server sees the prefixed URI and still finds class and namespace
    parsed = _over_the_wire(pull)
    assert (parsed.class_name, parsed.namespace) == ("X_Widget", NS)
    with pytest.raises(StopIteration):
        plan.send(EnumerateResponse(items=[], end_of_sequence=True))


def test_resource_uri_overrides_and_options_reach_the_wire() -> None:
    record = rq.GetInstance(namespace=NS, instance=widget().keys_only(), options={"Depth": 2},
                            resource_uri="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/acme/X_Widget")
    sent = _first_send(kinds.plan(record, CancelToken()))
    assert sent.resource_uri == record.resource_uri and sent.option_set == {"Depth": 2}
    parsed = _over_the_wire(sent)
    assert (parsed.namespace, parsed.class_name, parsed.option_set) == (NS, "X_Widget", {"Depth": 2})
    # resource_uri wins over the prefix
    both = rq.GetInstance(namespace=NS, instance=widget().keys_only(), resource_uri=record.resource_uri,
                          resource_uri_prefix="http://example.org/cim")
    assert _first_send(kinds.plan(both, CancelToken())).resource_uri == record.resource_uri


@pytest.mark.parametrize(("record", "result", "words"), [
    (rq.ReferenceInstances(namespace=NS), MIResult.INVALID_PARAMETER, "ReferenceInstances needs the source instance"),
    (rq.GetClass(namespace=NS), MIResult.INVALID_PARAMETER, "GetClass needs a class name"),
    (rq.GetInstance(namespace=NS), MIResult.INVALID_PARAMETER, "GetInstance needs an openmi.Instance"),
    (rq.EnumerateInstances(namespace=NS), MIResult.INVALID_PARAMETER, "needs a class name"),
    (rq.Invoke(namespace=NS, class_name="X_Widget"), MIResult.INVALID_PARAMETER, "method name"),
    (rq.GetInstance(namespace="//host/root", instance=widget()), MIResult.INVALID_PARAMETER, "names a machine"),
])
def test_client_side_refusals(record: rq.Request, result: MIResult, words: str) -> None:
    with pytest.raises(MIError) as info:
        next(kinds.plan(record, CancelToken()))
    assert info.value.result == result and words in str(info.value)


def test_a_cancelled_token_sends_nothing() -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(MIError, match="cancelled"):
        next(kinds.plan(rq.TestConnection(), token))


@pytest.mark.parametrize(("flt", "result"), [
    (Filter(dialect=wns.DIALECT_ASSOCIATION), MIResult.FILTERED_ENUMERATION_NOT_SUPPORTED),
])
def test_server_side_enumerate_filters_without_a_kind(flt: Filter, result: MIResult) -> None:
    with pytest.raises(MIError) as info:
        kinds.for_wsman(EnumerateRequest(namespace=NS, class_name="X_Widget", filter=flt))
    assert info.value.result == result


def test_read_only_and_idempotent_cover_every_message() -> None:
    for kind in kinds.KINDS:
        req = kind.request_type()
        assert kinds.is_read_only(req) == kind.read_only
        assert kinds.is_idempotent(req) == kind.idempotent
    assert kinds.is_read_only(PullRequest()) and kinds.is_idempotent(PullRequest())
    assert kinds.is_read_only(ReleaseRequest()) and not kinds.is_idempotent(ReleaseRequest())
    assert not kinds.is_read_only(Request())  # unknown: treated as a write, never retried
    assert not kinds.is_idempotent(Request())


def test_selector_keys_are_typed_once_by_the_class() -> None:
    parsed = _over_the_wire(_first_send(kinds.plan(rq.GetInstance(namespace=NS, instance=widget()), CancelToken())))
    name = kinds.selector_instance(parsed, lookup)
    assert name.get_element("Id").type == MIType.UINT32 and name["Id"] == 42 and name.get_element("Id").key
    untyped = kinds.selector_instance(parsed, None)
    assert untyped.get_element("Id").type == MIType.STRING and untyped["Id"] == "42"
    bad = parse_request(build_request(kinds.GET_INSTANCE.request(
        rq.GetInstance(instance=Instance("X_Widget", {"Id": "x"})), NS)), class_lookup=lookup)
    kept = kinds.selector_instance(bad, lookup)  # unreadable text stays text: the engine names the mismatch
    assert kept.get_element("Id").type == MIType.STRING and kept["Id"] == "x"


def test_class_kinds_keep_the_schema_uri_and_pull_from_it() -> None:
    prefix = "http://example.org/wbem"
    get = _first_send(kinds.plan(rq.GetClass(namespace=NS, class_name="X_Widget", resource_uri_prefix=prefix,
                                             resource_uri=f"{prefix}/X_Other"), CancelToken()))
    assert get.effective_resource_uri() == CIMXML_SCHEMA_URI  # the resource URI options are for instances
    plan = kinds.plan(rq.EnumerateClasses(namespace=NS, class_name="X_Widget", resource_uri_prefix=prefix),
                      CancelToken(), batch=1)
    first = _first_send(plan)
    assert first.effective_resource_uri() == CIMXML_SCHEMA_URI
    reply = EnumerateResponse(context="c-1")
    release = kinds.still_open(first, reply, None)
    assert release is not None and release.effective_resource_uri() == CIMXML_SCHEMA_URI
    what, pull = plan.send(reply)
    assert what == "send" and isinstance(pull, PullRequest)
    assert pull.effective_resource_uri() == CIMXML_SCHEMA_URI and pull.context == "c-1"


def test_queries_address_the_class_or_the_namespace_star() -> None:
    record = rq.QueryInstances(namespace=NS, dialect="WQL", query="select * from X_Widget where Id < 3")
    dmtf = _first_send(kinds.plan(record, CancelToken()))
    assert isinstance(dmtf, EnumerateRequest) and dmtf.filter is not None
    assert dmtf.effective_resource_uri() == "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/X_Widget"
    assert b"__cimnamespace" in build_request(dmtf)
    # the WMI style (WinRM): the namespace's * URI, and the Pull goes there too
    plan = kinds.plan(record, CancelToken(), batch=1)
    wmi = _first_send(plan)
    wmi.uri_style = UriStyle.WMI
    star = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/acme/*"
    assert wmi.effective_resource_uri() == star
    data = build_request(wmi)
    assert star.encode() in data and b"Id &lt; 3" in data      # the query text is XML-escaped
    parsed = parse_request(data, "application/soap+xml;charset=UTF-8", class_lookup=lookup)
    assert parsed.class_name == "*" and kinds.for_wsman(parsed) is kinds.QUERY_INSTANCES
    assert kinds.QUERY_INSTANCES.record is not None
    assert kinds.QUERY_INSTANCES.record(parsed, lookup) == record
    assert plan.send(EnumerateResponse(items=[widget(1)], context="c1")) == ("item", widget(1))
    what, pull = next(plan)
    assert what == "send" and isinstance(pull, PullRequest) and pull.resource_uri == star
    release = kinds.still_open(wmi, EnumerateResponse(items=[], context="c1"), None)
    assert release is not None and release.resource_uri == star


@pytest.mark.parametrize(("record", "result", "words"), [
    (rq.QueryInstances(namespace=NS, dialect="XPath", query="SELECT * FROM X_Widget"),
     MIResult.QUERY_LANGUAGE_NOT_SUPPORTED, "'XPath' is not supported"),
    (rq.QueryInstances(namespace=NS, dialect="WQL", query=""), MIResult.INVALID_QUERY, "needs a query"),
    (rq.QueryInstances(namespace=NS, dialect="WQL", query="SELECT *"), MIResult.INVALID_QUERY, "expected FROM"),
])
def test_query_refusals_before_sending(record: rq.Request, result: MIResult, words: str) -> None:
    with pytest.raises(MIError) as info:
        next(kinds.plan(record, CancelToken()))
    assert info.value.result == result and words in str(info.value)


def test_associators_of_goes_as_a_query_to_the_wildcard_uri() -> None:
    # WQL's ASSOCIATORS OF has no FROM class: the namespace's * URI, the text as the WQL filter (WinRM and
    # openmi serve answer it; the server hands it to its association engine)
    text = 'ASSOCIATORS OF {X_Widget.Id=1} WHERE AssocClass = X_Link'
    record = rq.QueryInstances(namespace=NS, dialect="WQL", query=text)
    sent = _first_send(kinds.plan(record, CancelToken()))
    assert isinstance(sent, EnumerateRequest) and sent.class_name == "*"
    assert sent.filter is not None and sent.filter.query == text
    parsed = _over_the_wire(sent)
    assert kinds.for_wsman(parsed) is kinds.QUERY_INSTANCES
    assert kinds.QUERY_INSTANCES.record is not None
    assert kinds.QUERY_INSTANCES.record(parsed, lookup) == record


def test_a_query_this_side_cannot_parse_still_goes_to_its_class() -> None:
    # a peer may know CQL functions we do not: the FROM class is enough to address the request
    record = rq.QueryInstances(namespace=NS, dialect="CQL",
                               query="SELECT * FROM X_Widget WHERE UPPERCASE(Label) = 'LEFT'")
    sent = _first_send(kinds.plan(record, CancelToken()))
    assert sent.class_name == "X_Widget"


def test_server_checks_the_class_uri_against_from() -> None:
    req = EnumerateRequest(namespace=NS, class_name="X_Gadget",
                           filter=Filter(dialect=wns.DIALECT_WQL, query="SELECT * FROM X_Widget"))
    assert kinds.QUERY_INSTANCES.record is not None
    with pytest.raises(MIError) as info:
        kinds.QUERY_INSTANCES.record(req, lookup)
    assert info.value.result == MIResult.INVALID_QUERY
    assert "column 15: the query selects from X_Widget, but the resource URI names X_Gadget" in str(info.value)


def test_projections_as_winrm_writes_them() -> None:
    """WMI-style answers to SELECT a, b: wsman:XmlFragment items, unqualified and in alphabetical order."""
    record = rq.QueryInstances(namespace=NS, dialect="WQL", query="SELECT When, Label FROM X_Widget")
    plan = kinds.plan(record, CancelToken(), batch=5)
    sent = _first_send(plan)
    sent.uri_style = UriStyle.WMI
    parsed = _over_the_wire(sent)
    proj = Instance.from_elements("X_Widget", [widget(7).get_element(n) for n in ("Label", "Id", "When")],
                                  namespace=NS)
    data = build_response(parsed, EnumerateResponse(items=[proj], end_of_sequence=True, fragments=True))
    text = data.decode()
    assert "<w:XmlFragment><Id>7</Id><Label>left</Label><When><Datetime>2024-05-01T10:00:00Z</Datetime>" \
           "</When></w:XmlFragment>" in text.replace("wsman:", "w:")
    got = _read_back(plan, sent, EnumerateResponse(items=[proj], end_of_sequence=True, fragments=True), parsed)
    assert [(i.class_name, dict(i)) for i in got] == [
        ("X_Widget", {"Id": "7", "Label": "left", "When": dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)})]


def test_a_selector_filter_narrows_an_instance_enumeration() -> None:
    owner = Instance.from_elements("X_Person", [Element("Name", "Ada", MIType.STRING, MIFlag.KEY)])
    things = [widget(1, "left"), widget(2, "right"), widget(3, "left")]
    things[2] = Instance.from_elements("X_Widget", [*things[2].elements, Element("Owner", owner, MIType.REFERENCE)])
    wire = EnumerateRequest(namespace=NS, class_name="X_Widget", filter=Filter(
        dialect=wns.DIALECT_SELECTOR, selectors={"label": "left", "Id": "3"}))
    parsed = _over_the_wire(wire)
    kind = kinds.for_wsman(parsed)
    assert kind is kinds.ENUMERATE_INSTANCES and kind.narrow is not None
    assert [w["Id"] for w in kind.narrow(parsed, iter(things))] == [3]  # text read in the property's type
    by_ref = EnumerateRequest(namespace=NS, class_name="X_Widget", filter=Filter(
        dialect=wns.DIALECT_SELECTOR, selectors={"Owner": owner}))
    assert [w["Id"] for w in kind.narrow(_over_the_wire(by_ref), iter(things))] == [3]
    nothing = EnumerateRequest(namespace=NS, class_name="X_Widget", filter=Filter(
        dialect=wns.DIALECT_SELECTOR, selectors={"Missing": "x", "Id": "not a number"}))
    assert list(kind.narrow(_over_the_wire(nothing), iter(things))) == []
    unfiltered = _over_the_wire(EnumerateRequest(namespace=NS, class_name="X_Widget"))
    assert len(list(kind.narrow(unfiltered, iter(things)))) == 3


def test_a_class_enumeration_answered_with_instances_is_not_supported() -> None:
    """OMI 1.9 answers the Enumerate of the class URI with instances of ClassName (it does not enumerate
    classes over WS-Man): that ends the operation NOT_SUPPORTED, never an empty success."""
    from openmi.protocol.wsman import EnumerateResponse
    from openmi.protocol.wsman import operations as kinds

    page = EnumerateResponse(items=[Instance("MSFT_Person", {"Key": 2})], end_of_sequence=True)
    with pytest.raises(MIError) as info:
        list(kinds.ENUMERATE_CLASSES.results(None, page, "root/cimv2"))
    assert info.value.result == MIResult.NOT_SUPPORTED and "MSFT_Person" in info.value.message
    assert list(kinds.ENUMERATE_CLASSES.results(None, EnumerateResponse(end_of_sequence=True), "root/cimv2")) == []

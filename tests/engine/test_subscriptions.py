"""Event queries: which events a subscription wants and where they come from (spec §1.5, §4.2)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from openmi import Class, Instance, MIError, MIResult, MIType, Property, Server
from openmi.cim import requests as rq
from openmi.engine.indications import Event, Lifecycle
from openmi.engine.subscriptions import ProviderContext, plan_subscription


def _server() -> Server:
    srv = Server(":memory:")
    srv.define_class("root/cimv2", Class("Sample_Base", properties=[Property("Id", MIType.UINT32, key=True),
                                                                    Property("Name", MIType.STRING)]))
    srv.define_class("root/cimv2", Class("Sample_Person", "Sample_Base", [Property("Age", MIType.UINT32)]))
    srv.define_class("root/cimv2", Class("Sample_Other", properties=[Property("Id", MIType.UINT32, key=True)]))
    return srv


def _plan(srv: Server, text: str, dialect: str = "WQL"):  # type: ignore[no-untyped-def]
    return plan_subscription(srv, srv.namespace("root/cimv2"), dialect, text)


def _code(srv: Server, text: str, dialect: str = "WQL") -> MIResult:
    with pytest.raises(MIError) as info:
        _plan(srv, text, dialect)
    return info.value.result


def test_lifecycle_queries_pick_kinds_sources_and_representation() -> None:
    srv = _server()
    p = _plan(srv, "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Base'")
    assert p.kinds == Lifecycle.DELETE and not p.wmi
    assert p.targets == frozenset({"sample_base", "sample_person"})
    w = _plan(srv, "SELECT * FROM __InstanceOperationEvent WITHIN 1 WHERE TargetInstance ISA \"Sample_Person\"")
    assert w.wmi and w.kinds == Lifecycle.CREATE | Lifecycle.MODIFY | Lifecycle.DELETE
    assert w.targets == frozenset({"sample_person"})
    every = _plan(srv, "select * from CIM_InstIndication")
    assert every.targets is None and every.kinds == Lifecycle.ALL


def test_the_filter_applies_the_where_clause_to_the_event() -> None:
    srv = _server()
    p = _plan(srv, "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Sample_Base' "
                   "AND TargetInstance.Name = 'ada'")
    ada = Event("root/cimv2", change=Lifecycle.CREATE, source=Instance("Sample_Person", {"Id": 1, "Name": "Ada"}))
    bob = Event("root/cimv2", change=Lifecycle.CREATE, source=Instance("Sample_Person", {"Id": 2, "Name": "Bob"}))
    other = Event("root/cimv2", change=Lifecycle.CREATE, source=Instance("Sample_Other", {"Id": 3}))
    gone = Event("root/cimv2", change=Lifecycle.DELETE, source=Instance("Sample_Person", {"Id": 1, "Name": "Ada"}))
    assert p.accept(ada) and p.accept(bob)
    assert not p.accept(other) and not p.accept(gone)
    hit = p.instance(ada)
    assert hit is not None and hit.class_name == "__InstanceCreationEvent" and hit["TargetInstance"]["Id"] == 1
    assert p.instance(bob) is None


def test_the_rules_of_omi_for_lifecycle_queries() -> None:
    srv = _server()
    assert _code(srv, "SELECT * FROM CIM_InstRead WHERE SourceInstance ISA NON_EXIST_CLASS") == MIResult.NOT_FOUND
    assert _code(srv, "SELECT * FROM CIM_InstRead WHERE (SourceInstance ISA Sample_Base) OR (2>1)") == \
        MIResult.NOT_SUPPORTED
    assert _code(srv, "SELECT * FROM CIM_InstRead WHERE (UnknownProperty ISA Sample_Base)") == MIResult.INVALID_QUERY
    assert _code(srv, "SELECT * FROM CIM_InstCreation WHERE SourceInstanceHost <> NULL") == MIResult.NOT_SUPPORTED
    assert _code(srv, "SELECT * FROM CIM_InstCreation WHERE PreviousInstance ISA Sample_Base") == \
        MIResult.INVALID_QUERY
    ok = _plan(srv, "select * from CIM_InstModification where (SourceInstance isa Sample_Base) "
                    "AND (PreviousInstance <> NULL)", "CQL")
    assert ok.kinds == Lifecycle.MODIFY


def test_dialects_and_bad_queries() -> None:
    srv = _server()
    assert _code(srv, "SELECT * FROM CIM_InstCreation", "XPath") == MIResult.NOT_SUPPORTED
    assert _code(srv, "SELEKT * FROM CIM_InstCreation") == MIResult.INVALID_QUERY
    assert _code(srv, "SELECT * FROM Sample_Person") == MIResult.INVALID_QUERY  # not an indication class
    assert _code(srv, "SELECT * FROM No_Such_Class") == MIResult.INVALID_QUERY
    assert _code(srv, "ASSOCIATORS OF {Sample_Person.Id=1}") == MIResult.INVALID_QUERY


class _Polled:
    """A provider that cannot report changes: it can only be enumerated."""

    def __init__(self) -> None:
        self.items = {1: "Ada"}
        self.lock = threading.Lock()

    def enumerate_instances(self, ctx: object, ns: str, cls: str, keys_only: bool) -> list[Instance]:
        with self.lock:
            return [Instance(cls, {"Id": k, "Name": v}) for k, v in self.items.items()]


def test_a_provider_class_that_cannot_report_changes_needs_within_and_is_polled() -> None:
    srv = _server()
    prov = _Polled()
    srv.register_provider("root/cimv2", "Sample_Other", prov)
    srv.define_class("root/cimv2", Class("Sample_Polled", properties=[Property("Id", MIType.UINT32, key=True),
                                                                      Property("Name", MIType.STRING)]))
    srv.register_provider("root/cimv2", "Sample_Polled", prov)
    assert _code(srv, "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Sample_Polled'") == \
        MIResult.NOT_SUPPORTED
    p = _plan(srv, "SELECT * FROM __InstanceOperationEvent WITHIN 0.05 WHERE TargetInstance ISA 'Sample_Polled'")
    assert [i.name for i in p.polled] == ["Sample_Polled"]
    sub = srv.indications.subscribe("root/cimv2", p.accept)
    srv.poller.add(sub, p.polled, 0.05)
    with prov.lock:
        prov.items[2] = "Bob"
        prov.items[1] = "Ann"
    got: dict[Lifecycle, Event] = {}
    while len(got) < 2:
        e = sub.get(30)
        assert e is not None, "the poller found no change"
        got[e.change] = e
    assert got[Lifecycle.CREATE].source["Name"] == "Bob"  # type: ignore[index]
    assert got[Lifecycle.MODIFY].previous["Name"] == "Ada"  # type: ignore[index]
    with prov.lock:
        del prov.items[2]
    e = sub.get(30)
    assert e is not None and e.change == Lifecycle.DELETE and e.source["Id"] == 2  # type: ignore[index]
    sub.close()
    srv.close()


class _Reporting:
    """A provider that reports its own changes through the lifecycle context it got in load()."""

    def load(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        ctx.lifecycle.set_supported_types(Lifecycle.CREATE | Lifecycle.DELETE)

    def enumerate_instances(self, ctx: object, ns: str, cls: str, keys_only: bool) -> list[Instance]:
        return []


def test_a_reporting_provider_needs_no_within_and_its_posts_reach_subscribers() -> None:
    srv = _server()
    prov = _Reporting()
    srv.register_provider("root/cimv2", "Sample_Other", prov)
    p = _plan(srv, "SELECT * FROM CIM_InstCreation WHERE SourceInstance ISA 'Sample_Other'")
    assert p.polled == []
    assert prov.ctx.lifecycle.types == Lifecycle.NONE  # nobody listens yet
    sub = srv.indications.subscribe("root/cimv2", p.accept)
    sub.plan = p
    assert prov.ctx.lifecycle.types == Lifecycle.CREATE
    prov.ctx.lifecycle.post_create(Instance("Sample_Other", {"Id": 9}))
    e = sub.get(0)
    assert e is not None and p.instance(e) is not None
    with pytest.raises(MIError) as info:
        prov.ctx.lifecycle.post_modify(Instance("Sample_Other", {"Id": 9}), Instance("Sample_Other", {"Id": 9}))
    assert info.value.result == MIResult.NOT_SUPPORTED


class _Alarms:
    """An [Indication] class's provider (OMI's EnableIndications / PostIndication)."""

    def load(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        self.enabled = 0

    def enable_indications(self, ctx: object, ns: str, cls: str) -> None:
        self.enabled += 1

    def disable_indications(self, ctx: object, ns: str, cls: str) -> None:
        self.enabled -= 1


def test_indication_classes_need_a_provider_and_get_what_it_posts() -> None:
    srv = _server()
    srv.define_class("root/cimv2", Class("Sample_Alarm", properties=[Property("Severity", MIType.UINT16)],
                                         qualifiers={"Indication": True}))
    assert _code(srv, "SELECT * FROM Sample_Alarm") == MIResult.NOT_FOUND
    prov = _Alarms()
    srv.register_provider("root/cimv2", "Sample_Alarm", prov)
    p = _plan(srv, "SELECT * FROM Sample_Alarm WHERE Severity > 2")
    sub = srv.indications.subscribe("root/cimv2", p.accept)
    prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 1}))
    prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 5}))
    delivered = []
    while (e := sub.get(0)) is not None:
        inst = p.instance(e)
        if inst is not None:
            delivered.append(inst["Severity"])
    assert delivered == [5]


def test_repository_writes_reach_a_planned_subscription() -> None:
    srv = _server()
    p = _plan(srv, "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Base'")
    sub = srv.indications.subscribe("root/cimv2", p.accept)
    list(srv.execute(rq.CreateInstance("root/cimv2", instance=Instance("Sample_Person", {"Id": 4, "Name": "x"}))))
    list(srv.execute(rq.CreateInstance("root/cimv2", instance=Instance("Sample_Other", {"Id": 4}))))
    list(srv.execute(rq.DeleteInstance("root/cimv2", instance=Instance("Sample_Other", {"Id": 4}))))
    list(srv.execute(rq.DeleteInstance("root/cimv2", instance=Instance("Sample_Person", {"Id": 4}))))
    e = sub.get(0)
    assert e is not None and sub.get(0) is None
    ind = p.instance(e)
    assert ind is not None and ind.class_name == "CIM_InstDeletion" and ind["SourceInstance"]["Name"] == "x"


# --- the engine's Subscribe handler --------------------------------------------------------------------

from openmi.cim.cancel import CancelToken  # noqa: E402


def _next(stream: Iterator[object]) -> object:
    """The stream's next result, waiting through its Idle items as a consumer does."""
    while True:
        item = next(stream)
        if not isinstance(item, rq.Idle):
            return item
        item.wait(1.0)


def test_subscribe_streams_started_then_matching_indications_until_cancelled() -> None:
    srv = _server()
    token = CancelToken()
    stream = srv.execute(rq.Subscribe("root/cimv2", dialect="WQL", query=(
        "SELECT * FROM CIM_InstCreation WHERE SourceInstance ISA 'Sample_Base' AND SourceInstance.Name <> 'skip'")),
        token)
    assert _next(stream) is rq.STARTED  # live: events from now on are delivered
    for i, name in ((1, "skip"), (2, "Ada")):
        list(srv.execute(rq.CreateInstance("root/cimv2", instance=Instance("Sample_Person",
                                                                              {"Id": i, "Name": name}))))
    item = _next(stream)
    assert isinstance(item, rq.IndicationItem)
    assert item.instance.class_name == "CIM_InstCreation" and item.instance["SourceInstance"]["Name"] == "Ada"
    assert item.bookmark and item.machine_id
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(_final(stream)))
    t.start()
    token.cancel()
    t.join(30)
    assert not t.is_alive()
    assert isinstance(got[0], MIError) and got[0].result == MIResult.FAILED and "cancelled" in str(got[0])
    assert srv.indications.subscriptions() == []  # closed with the stream


def _final(stream: object) -> object:
    try:
        for _ in stream:  # type: ignore[attr-defined]
            pass
    except MIError as exc:
        return exc
    return None


def test_subscribe_expires_with_ok_and_resumes_from_a_bookmark() -> None:
    srv = _server()
    q = "SELECT * FROM __InstanceDeletionEvent WHERE TargetInstance ISA 'Sample_Base'"
    first = srv.execute(rq.Subscribe("root/cimv2", dialect="WQL", query=q), CancelToken())
    assert _next(first) is rq.STARTED
    for i in (1, 2, 3):
        list(srv.execute(rq.CreateInstance("root/cimv2", instance=Instance("Sample_Base", {"Id": i}))))
        list(srv.execute(rq.DeleteInstance("root/cimv2", instance=Instance("Sample_Base", {"Id": i}))))
    one = _next(first)
    first.close()  # the subscriber went away after the first event
    again = srv.execute(rq.Subscribe("root/cimv2", dialect="WQL", query=q, bookmark=one.bookmark,
                                     expiration=0.2), CancelToken())
    items = [x for x in again if x is not rq.STARTED and not isinstance(x, rq.Idle)]
    assert [x.instance["TargetInstance"]["Id"] for x in items] == [2, 3]
    assert all(x.instance.class_name == "__InstanceDeletionEvent" for x in items)


def test_group_within_gives_aggregate_events_that_pass_having() -> None:
    srv = _server()
    stream = srv.execute(rq.Subscribe("root/cimv2", dialect="WQL", query=(
        "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Sample_Base' "
        "GROUP WITHIN 0.3 BY TargetInstance.Name HAVING NumberOfEvents > 1")), CancelToken())
    assert _next(stream) is rq.STARTED
    for i, name in ((1, "a"), (2, "A"), (3, "b")):
        list(srv.execute(rq.CreateInstance("root/cimv2", instance=Instance("Sample_Base", {"Id": i, "Name": name}))))
    agg = _next(stream)
    stream.close()
    assert agg.instance.class_name == "__AggregateEvent" and agg.instance["NumberOfEvents"] == 2
    assert agg.instance["Representative"]["TargetInstance"]["Name"] == "a"


def test_indication_class_providers_are_enabled_once_and_disabled_after_the_last() -> None:
    srv = _server()
    srv.define_class("root/cimv2", Class("Sample_Alarm", properties=[Property("Severity", MIType.UINT16)],
                                         qualifiers={"Indication": True}))
    prov = _Alarms()
    srv.register_provider("root/cimv2", "Sample_Alarm", prov)
    a = srv.execute(rq.Subscribe("root/cimv2", dialect="CQL", query="SELECT * FROM Sample_Alarm"), CancelToken())
    b = srv.execute(rq.Subscribe("root/cimv2", dialect="WQL", query="SELECT * FROM Sample_Alarm"), CancelToken())
    _next(a), _next(b)
    assert prov.enabled == 1
    prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 4}))
    assert _next(a).instance["Severity"] == 4 and _next(b).instance["Severity"] == 4
    a.close()
    assert prov.enabled == 1
    b.close()
    assert prov.enabled == 0


def test_a_missing_dialect_or_query_is_invalid_query_as_omi_answers() -> None:
    srv = _server()
    assert _code(srv, "SELECT * FROM CIM_InstCreation", None) == MIResult.INVALID_QUERY  # type: ignore[arg-type]
    assert _code(srv, "SELECT * FROM CIM_InstCreation", " ") == MIResult.INVALID_QUERY
    assert _code(srv, "", "WQL") == MIResult.INVALID_QUERY
    assert _code(srv, "", "XPath") == MIResult.INVALID_QUERY  # (the missing query is checked first, as OMI does)
    stream = srv.execute(rq.Subscribe("root/cimv2", dialect=None, query="SELECT * FROM CIM_InstCreation"),
                         CancelToken())
    with pytest.raises(MIError) as info:
        next(stream)
    assert info.value.result == MIResult.INVALID_QUERY and "query language" in info.value.message


class _Reader:
    """A provider that reports reads of its instances (and nothing else)."""

    def load(self, ctx: ProviderContext) -> None:
        ctx.lifecycle.set_supported_types(Lifecycle.READ)


def test_an_event_kind_the_source_class_cannot_produce_is_not_supported() -> None:
    srv = _server()
    # the repository reports no reads (OMI: the class's supported types exclude the one asked for)
    assert _code(srv, "SELECT * FROM CIM_InstRead WHERE SourceInstance ISA 'Sample_Person'") == \
        MIResult.NOT_SUPPORTED
    assert _plan(srv, "SELECT * FROM CIM_InstIndication WHERE SourceInstance ISA 'Sample_Person'").kinds == \
        Lifecycle.ALL  # (some of ALL it does produce)
    # polling finds no reads either
    srv.define_class("root/cimv2", Class("Sample_Polled", properties=[Property("Id", MIType.UINT32, key=True)]))
    srv.register_provider("root/cimv2", "Sample_Polled", _Polled())
    assert _code(srv, "SELECT * FROM CIM_InstRead WITHIN 1 WHERE SourceInstance ISA 'Sample_Polled'") == \
        MIResult.NOT_SUPPORTED
    # a provider that declares reads is fine, and needs no polling for them
    srv.define_class("root/cimv2", Class("Sample_Read", properties=[Property("Id", MIType.UINT32, key=True)]))
    srv.register_provider("root/cimv2", "Sample_Read", _Reader())
    p = _plan(srv, "SELECT * FROM CIM_InstRead WHERE SourceInstance ISA 'Sample_Read'")
    assert p.kinds == Lifecycle.READ and p.polled == []


def test_group_by_names_properties_not_objects() -> None:
    """GROUP WITHIN … BY: a property of the event class or of the instance it carries (the ISA class's, any
    case); an unknown one is INVALID_QUERY, and so is an embedded object itself, with WMI's HRESULT
    (WBEM_E_AGGREGATING_BY_OBJECT) in its details for the mi and wmi modules."""
    srv = _server()
    head = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Sample_Person' GROUP WITHIN 1 BY "
    assert _plan(srv, head + "TargetInstance.Name").query.group_within == 1
    assert _plan(srv, head + "targetinstance.name").query.group_by
    assert _code(srv, head + "TargetInstance.Nope") == MIResult.INVALID_QUERY
    assert _code(srv, head + "Nope") == MIResult.INVALID_QUERY
    with pytest.raises(MIError) as info:
        _plan(srv, head + "TargetInstance")
    assert info.value.result == MIResult.INVALID_QUERY and "embedded object" in info.value.message
    assert info.value.details is not None and info.value.details["error_Code"] == 0x8004105D
    from openmi import mi

    assert mi._error_info(info.value)["error_code"] == 0x8004105D


def test_a_query_that_needs_within_carries_wmis_hresult() -> None:
    srv = _server()
    srv.define_class("root/cimv2", Class("Sample_Polled", properties=[Property("Id", MIType.UINT32, key=True)]))
    srv.register_provider("root/cimv2", "Sample_Polled", _Polled())
    with pytest.raises(MIError) as info:
        _plan(srv, "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Sample_Polled'")
    assert info.value.result == MIResult.NOT_SUPPORTED and "WITHIN" in info.value.message
    assert info.value.details is not None and info.value.details["error_Code"] == 0x80042002

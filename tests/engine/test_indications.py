"""The engine's indication hub: commit-ordered events, bounded queues, bookmarks, event instances."""

from __future__ import annotations

import threading

import pytest

from openmi.cim import Instance, MIError, MIResult
from openmi.engine.indications import (
    BOOKMARK_OLDEST,
    BUILTIN_CLASSES,
    Event,
    IndicationHub,
    Lifecycle,
)


def _person(i: int, name: str = "Ada") -> Instance:
    inst = Instance("Sample_Person", {"Id": i, "Name": name}, namespace="root/cimv2")
    return inst


def _deleted(i: int) -> Event:
    return Event("root/cimv2", change=Lifecycle.DELETE, source=_person(i))


def test_events_arrive_in_publish_order_with_increasing_bookmarks() -> None:
    hub = IndicationHub()
    sub = hub.subscribe("root/cimv2", lambda e: True)
    for i in range(5):
        hub.publish("root/cimv2", _deleted(i))
    got = [sub.get(0) for _ in range(5)]
    assert [e.source["Id"] for e in got if e is not None and e.source is not None] == [0, 1, 2, 3, 4]
    seqs = [e.seq for e in got if e is not None]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert sub.get(0) is None


def test_only_the_namespace_and_accepted_events_are_queued() -> None:
    hub = IndicationHub()
    sub = hub.subscribe("root/cimv2", lambda e: e.change == Lifecycle.CREATE)
    hub.publish("root/other", Event("root/other", change=Lifecycle.CREATE, source=_person(1)))
    hub.publish("root/cimv2", _deleted(2))
    hub.publish("root/cimv2", Event("root/cimv2", change=Lifecycle.CREATE, source=_person(3)))
    e = sub.get(0)
    assert e is not None and e.source is not None and e.source["Id"] == 3
    assert sub.get(0) is None


def test_a_subscriber_that_falls_behind_gets_what_it_has_then_an_error_counting_the_loss() -> None:
    hub = IndicationHub()
    sub = hub.subscribe("root/cimv2", lambda e: True, capacity=3)
    for i in range(10):
        hub.publish("root/cimv2", _deleted(i))
    assert [sub.get(0).source["Id"] for _ in range(3)] == [0, 1, 2]  # type: ignore[union-attr]
    with pytest.raises(MIError) as info:
        sub.get(0)
    assert info.value.result == MIResult.SERVER_LIMITS_EXCEEDED
    assert "7 event(s) were dropped" in str(info.value)


def test_a_failing_filter_does_not_break_the_publisher() -> None:
    hub = IndicationHub()

    def broken(e: Event) -> bool:
        raise KeyError("oops")

    sub = hub.subscribe("root/cimv2", broken)
    hub.publish("root/cimv2", _deleted(1))  # no exception reaches the writer
    assert sub.get(0) is None


def test_resume_after_a_bookmark_and_from_the_oldest_retained() -> None:
    hub = IndicationHub(retention=100)
    first = hub.subscribe("root/cimv2", lambda e: True)
    for i in range(6):
        hub.publish("root/cimv2", _deleted(i))
    seen = [first.get(0) for _ in range(3)]
    mark = seen[-1].bookmark  # type: ignore[union-attr]
    first.close()  # the connection dropped
    hub.publish("root/cimv2", _deleted(6))  # while nobody listened, but within the linger time
    again = hub.subscribe("root/cimv2", lambda e: True, bookmark=mark)
    ids = []
    while (e := again.get(0)) is not None:
        ids.append(e.source["Id"])  # type: ignore[index]
    assert ids == [3, 4, 5, 6]
    oldest = hub.subscribe("root/cimv2", lambda e: True, bookmark=BOOKMARK_OLDEST)
    assert len(oldest) == 7


def test_a_start_bookmark_resumes_whatever_other_namespaces_numbered() -> None:
    """Where a subscription started (its start_bookmark, what openmi serve's SubscribeResponse carries) resumes it
    exactly even after events of other namespaces took sequence numbers, and before any event of its own was
    kept; a bookmark from before its namespace was watched is refused."""
    hub = IndicationHub(retention=100)
    hub.subscribe("root/b", lambda e: True)  # someone watches another namespace
    before = f"{hub.epoch}:0"
    hub.publish("root/b", Event("root/b", extrinsic=Instance("X")))
    sub = hub.subscribe("root/cimv2", lambda e: True)
    mark = sub.start_bookmark()
    assert mark == f"{hub.epoch}:1"
    hub.publish("root/b", Event("root/b", extrinsic=Instance("X")))
    sub.close()  # (the client went away before its first event)
    hub.publish("root/cimv2", _deleted(1))
    again = hub.subscribe("root/cimv2", lambda e: True, bookmark=mark)
    assert again.start_bookmark() == mark  # (resumed: it stands where it was asked to)
    got = again.get(0)
    assert got is not None and got.source["Id"] == 1  # type: ignore[index]
    with pytest.raises(MIError):  # root/cimv2 was not watched then: what happened in it is not known
        hub.subscribe("root/cimv2", lambda e: True, bookmark=before)


def test_bookmarks_from_elsewhere_or_too_old_are_refused() -> None:
    hub = IndicationHub(retention=2)
    sub = hub.subscribe("root/cimv2", lambda e: True)
    for i in range(5):
        hub.publish("root/cimv2", _deleted(i))
    first = sub.get(0)
    assert first is not None
    with pytest.raises(MIError) as old:
        hub.subscribe("root/cimv2", lambda e: True, bookmark=first.bookmark)
    assert old.value.result == MIResult.INVALID_PARAMETER
    with pytest.raises(MIError) as foreign:
        IndicationHub().subscribe("root/cimv2", lambda e: True, bookmark=first.bookmark)
    assert "not issued by this server" in str(foreign.value)


def test_watching_lasts_while_subscribed_and_for_the_linger_time() -> None:
    hub = IndicationHub(linger=0.0)
    assert not hub.watching("root/cimv2")
    sub = hub.subscribe("root/cimv2", lambda e: True)
    assert hub.watching("root/cimv2")
    sub.close()
    assert not hub.watching("root/cimv2")  # linger 0: forgotten at once
    lingering = IndicationHub(linger=3600.0)
    lingering.subscribe("root/cimv2", lambda e: True).close()
    assert lingering.watching("root/cimv2")


def test_close_wakes_a_waiting_reader() -> None:
    hub = IndicationHub()
    sub = hub.subscribe("root/cimv2", lambda e: True)
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(sub.get(None)))
    t.start()
    sub.close()
    t.join(30)
    assert not t.is_alive() and out == [None]


def test_publishers_on_many_threads_lose_nothing_and_keep_one_order() -> None:
    hub = IndicationHub()
    subs = [hub.subscribe("root/cimv2", lambda e: True, capacity=100_000) for _ in range(3)]
    lock = threading.Lock()  # stands for the repository lock that orders commits

    def writer(base: int) -> None:
        for i in range(500):
            with lock:
                hub.publish("root/cimv2", _deleted(base + i))

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    orders = []
    for s in subs:
        seq = []
        while (e := s.get(0)) is not None:
            seq.append(e.seq)
        orders.append(seq)
    assert len(orders[0]) == 2000 and orders[0] == sorted(orders[0])
    assert orders[0] == orders[1] == orders[2]


def test_event_instances_in_both_representations() -> None:
    src = _person(7, "Ada")
    prev = _person(7, "Bob")
    e = Event("root/cimv2", change=Lifecycle.MODIFY, source=src, previous=prev)
    hub = IndicationHub()
    hub.publish("root/cimv2", e)
    cim = e.instance()
    assert cim.class_name == "CIM_InstModification"
    assert cim["SourceInstance"]["Name"] == "Ada" and cim["PreviousInstance"]["Name"] == "Bob"
    assert cim["IndicationIdentifier"] == e.bookmark
    assert cim["SourceInstanceModelPath"].startswith("root/cimv2:Sample_Person")
    assert cim["IndicationTime"] == e.time
    assert e.instance() is cim  # built once
    wmi = e.instance(wmi=True)
    assert wmi.class_name == "__InstanceModificationEvent"
    assert wmi["TargetInstance"]["Name"] == "Ada" and wmi["PreviousInstance"]["Name"] == "Bob"
    assert wmi["TIME_CREATED"] > 130_000_000_000_000_000  # 100-ns ticks since 1601: after 2013


def test_builtin_classes_form_both_hierarchies() -> None:
    assert BUILTIN_CLASSES["cim_instdeletion"].superclass == "CIM_InstIndication"
    assert "SourceInstance" in BUILTIN_CLASSES["cim_instdeletion"].properties
    assert "TargetInstance" in BUILTIN_CLASSES["__instancedeletionevent"].properties
    assert BUILTIN_CLASSES["cim_indication"].is_abstract


# --- the engine's own writes publish lifecycle events ------------------------------------------------

from openmi import Class, Property, Server  # noqa: E402
from openmi.cim import MIType  # noqa: E402
from openmi.cim import requests as rq  # noqa: E402
from openmi.cim.classes import Method, Parameter  # noqa: E402


def _server() -> Server:
    srv = Server(":memory:")
    srv.define_class("root/cimv2", Class("Sample_Person", properties=[
        Property("Id", MIType.UINT32, key=True), Property("Name", MIType.STRING)]))
    return srv


def _run(srv: Server, req: rq.Request) -> list[object]:
    return list(srv.execute(req))


def _drain(sub: object) -> list[Event]:
    out = []
    while (e := sub.get(0)) is not None:  # type: ignore[attr-defined]
        out.append(e)
    return out


def test_create_modify_delete_publish_in_commit_order() -> None:
    srv = _server()
    sub = srv.indications.subscribe("root/cimv2", lambda e: True)
    _run(srv, rq.CreateInstance("root/cimv2", instance=Instance("Sample_Person", {"Id": 1, "Name": "Ada"})))
    _run(srv, rq.ModifyInstance("root/cimv2", instance=Instance("Sample_Person", {"Id": 1, "Name": "Bea"})))
    _run(srv, rq.DeleteInstance("root/cimv2", instance=Instance("Sample_Person", {"Id": 1})))
    events = _drain(sub)
    assert [e.change for e in events] == [Lifecycle.CREATE, Lifecycle.MODIFY, Lifecycle.DELETE]
    created, modified, deleted = events
    assert created.source is not None and created.source["Name"] == "Ada"
    assert modified.previous is not None and modified.previous["Name"] == "Ada"
    assert modified.source is not None and modified.source["Name"] == "Bea"
    assert deleted.source is not None and deleted.source["Name"] == "Bea"  # copied before the delete
    assert deleted.instance().class_name == "CIM_InstDeletion"
    assert deleted.instance()["SourceInstance"]["Id"] == 1


def test_failed_writes_and_unwatched_namespaces_publish_nothing() -> None:
    srv = _server()
    srv.create_namespace("root/other")
    srv.define_class("root/other", Class("Sample_Person", properties=[Property("Id", MIType.UINT32, key=True)]))
    sub = srv.indications.subscribe("root/cimv2", lambda e: True)
    _run(srv, rq.CreateInstance("root/other", instance=Instance("Sample_Person", {"Id": 1})))
    with pytest.raises(MIError):
        _run(srv, rq.DeleteInstance("root/cimv2", instance=Instance("Sample_Person", {"Id": 9})))
    _run(srv, rq.CreateInstance("root/cimv2", instance=Instance("Sample_Person", {"Id": 2})))
    with pytest.raises(MIError):
        _run(srv, rq.CreateInstance("root/cimv2", instance=Instance("Sample_Person", {"Id": 2})))
    assert [e.source["Id"] for e in _drain(sub)] == [2]  # type: ignore[index]


def test_a_rolled_back_mof_load_publishes_nothing_and_a_committed_one_publishes_each_instance() -> None:
    srv = _server()
    sub = srv.indications.subscribe("root/cimv2", lambda e: True)
    bad = "instance of Sample_Person { Id = 5; };\ninstance of Sample_Person { Id = 5; };\n"
    with pytest.raises(MIError):
        srv.compile_mof(bad)
    assert _drain(sub) == []
    srv.compile_mof("instance of Sample_Person { Id = 6; };\ninstance of Sample_Person { Id = 7; };\n")
    assert [e.source["Id"] for e in _drain(sub)] == [6, 7]  # type: ignore[index]


def test_invoke_publishes_a_method_call() -> None:
    srv = Server(":memory:")
    srv.define_class("root/cimv2", Class("Sample_Calc", properties=[Property("Id", MIType.UINT32, key=True)],
                                         methods=[Method("Add", MIType.UINT32, [
                                             Parameter("A", MIType.UINT32, in_=True)],
                                             qualifiers={"Static": True})]))

    class Calc:
        def invoke(self, ctx: object, ns: str, cls: str, method: str, inst: object, params: Instance) -> int:
            return int(params["A"]) + 1

    srv.register_provider("root/cimv2", "Sample_Calc", Calc())
    sub = srv.indications.subscribe("root/cimv2", lambda e: True)
    _run(srv, rq.Invoke("root/cimv2", class_name="Sample_Calc", method_name="Add", parameters={"A": 41}))
    (e,) = _drain(sub)
    assert e.change == Lifecycle.METHODCALL and e.method == "Add" and e.return_value == 42
    ind = e.instance()
    assert ind.class_name == "CIM_InstMethodCall" and ind["ReturnValue"] == "42" and ind["PreCall"] is False
    assert ind["MethodParameters"]["A"] == 41

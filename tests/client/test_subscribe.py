"""Session.subscribe on the embedded server: the same Operation, read synchronously, with callbacks and
from asyncio; cancel, close, expiration, bookmarks; the errors of issue 13."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

import openmi
from openmi import (
    BOOKMARK_OLDEST,
    Class,
    DeliveryType,
    Instance,
    MIResult,
    MIType,
    OperationCallbacks,
    OperationFlags,
    Property,
    SubscriptionDeliveryOptions,
)

NS = "root/cimv2"
DELETIONS = "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'"


@pytest.fixture
def session() -> Iterator[openmi.Session]:
    srv = openmi.Server(":memory:")
    srv.define_class(NS, Class("Sample_Person", properties=[Property("Id", MIType.UINT32, key=True),
                                                            Property("Name", MIType.STRING)]))
    with openmi.Application() as app:
        yield app.new_session(server=srv)
    srv.close()


def _person(i: int, name: str = "Ada") -> Instance:
    return Instance("Sample_Person", {"Id": i, "Name": name})


def test_a_delete_is_observed_as_cim_instdeletion(session: openmi.Session) -> None:
    session.create(_person(7))
    with session.subscribe(NS, "WQL", DELETIONS, flags=OperationFlags.REPORT_OPERATION_STARTED) as op:
        started = op.get_indication()
        assert started.instance is None and started.more_results and started.result == MIResult.OK
        session.delete(_person(7))
        r = op.get_indication()
        assert r.result == MIResult.OK and r.more_results
        assert r.instance is not None and r.instance.class_name == "CIM_InstDeletion"
        assert r.instance["SourceInstance"]["Name"] == "Ada"  # copied before the delete
        assert r.bookmark and r.machine_id
        with pytest.raises(TimeoutError):
            op.get_indication(timeout=0.05)  # nothing else happened: the subscription goes on
        op.cancel()
        final = op.get_indication()
        assert not final.more_results and final.result == MIResult.FAILED and final.instance is None


def test_no_indication_after_the_final_result(session: openmi.Session) -> None:
    op = session.subscribe(NS, "WQL", DELETIONS)
    op.cancel()
    final = op.get_indication()
    assert not final.more_results
    session.create(_person(1))
    session.delete(_person(1))
    assert op.get_indication() == final  # repeated, never an event after the end
    op.close()


def test_callbacks_have_mi_h_shape_and_a_final_result(session: openmi.Session) -> None:
    got: list[tuple[object, ...]] = []
    done = threading.Event()

    def on_indication(op: object, context: object, instance: Instance | None, bookmark: str | None,
                      machine_id: str | None, more: bool, result: MIResult, message: str | None,
                      details: Instance | None) -> None:
        got.append((context, instance.class_name if instance is not None else None, bool(bookmark), more, result))
        if not more:
            done.set()
        elif instance is not None:
            op.cancel()  # type: ignore[attr-defined]

    op = session.subscribe(NS, "WQL", "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Sample_Person'",
                           callbacks=OperationCallbacks(indication_result=on_indication, context="ctx"),
                           flags=OperationFlags.REPORT_OPERATION_STARTED)
    while not got:  # the started result says the subscription is live
        threading.Event().wait(0.01)
    session.create(_person(3))
    assert done.wait(30)
    op.close()
    assert got[0] == ("ctx", None, False, True, MIResult.OK)
    assert got[1] == ("ctx", "__InstanceCreationEvent", True, True, MIResult.OK)
    assert got[-1][3:] == (False, MIResult.FAILED)


def test_asyncio_reads_the_same_stream(session: openmi.Session) -> None:
    async def main() -> list[str]:
        names = []
        op = session.subscribe(NS, "WQL", "SELECT * FROM __InstanceCreationEvent WITHIN 1 "
                                          "WHERE TargetInstance ISA 'Sample_Person'",
                               flags=OperationFlags.REPORT_OPERATION_STARTED)
        first = await op.get_indication_async()
        assert first.instance is None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: [session.create(_person(i, f"p{i}")) for i in (1, 2)])
        async for ev in op:
            names.append(ev["TargetInstance"]["Name"])
            if len(names) == 2:
                break
        op.close()
        return names

    assert asyncio.run(main()) == ["p1", "p2"]


def test_expiration_ends_the_subscription_with_ok(session: openmi.Session) -> None:
    opts = SubscriptionDeliveryOptions(DeliveryType.PULL, expiration=0.1)
    with session.subscribe(NS, "WQL", DELETIONS, delivery_options=opts) as op:
        assert list(op) == []  # iteration ends when the subscription does
        assert op.error is None


def _live(session: openmi.Session, query: str, **kw: object) -> openmi.Operation:
    """A subscription that is live when this returns: its first (started) result has been read."""
    op = session.subscribe(NS, "WQL", query, flags=OperationFlags.REPORT_OPERATION_STARTED, **kw)  # type: ignore[arg-type]
    first = op.get_indication(timeout=30)
    assert first.instance is None and first.more_results, first
    return op


def test_a_bookmark_resumes_after_the_last_event_seen(session: openmi.Session) -> None:
    op = _live(session, DELETIONS)
    for i in range(4):
        session.create(_person(i))
        session.delete(_person(i))
    seen = [op.get_indication() for _ in range(2)]
    op.close()
    again = session.subscribe(NS, "WQL", DELETIONS, delivery_options=SubscriptionDeliveryOptions(
        bookmark=seen[-1].bookmark, expiration=0.2))
    assert [e["SourceInstance"]["Id"] for e in again] == [2, 3]
    oldest = session.subscribe(NS, "WQL", DELETIONS, delivery_options=SubscriptionDeliveryOptions(
        bookmark=BOOKMARK_OLDEST, expiration=0.2))
    assert [e["SourceInstance"]["Id"] for e in oldest] == [0, 1, 2, 3]


@pytest.mark.parametrize(("dialect", "query", "result"), [
    ("XPath", DELETIONS, MIResult.NOT_SUPPORTED),
    ("WQL", "SELECT * FROM CIM_InstDeletion WHERE", MIResult.INVALID_QUERY),
    ("WQL", "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person' OR 1 = 1",
     MIResult.NOT_SUPPORTED),
    ("WQL", "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'No_Such'", MIResult.NOT_FOUND),
])
def test_errors_as_issue_13_lists_them(session: openmi.Session, dialect: str, query: str, result: MIResult) -> None:
    with session.subscribe(NS, dialect, query) as op:
        r = op.get_indication()
    assert r.result == result and not r.more_results and r.error_message


def test_a_slow_subscriber_ends_with_a_count_of_what_it_lost(session: openmi.Session) -> None:
    op = _live(session, DELETIONS, delivery_options=SubscriptionDeliveryOptions(queue_size=2))
    for i in range(300):
        session.create(_person(i))
        session.delete(_person(i))
    results = []
    while True:
        r = op.get_indication(timeout=30)
        results.append(r)
        if not r.more_results:
            break
    op.close()
    final = results[-1]
    assert final.result == MIResult.SERVER_LIMITS_EXCEEDED and "dropped" in (final.error_message or "")
    delivered = [r.instance["SourceInstance"]["Id"] for r in results[:-1] if r.instance is not None]
    assert delivered == list(range(len(delivered)))  # what came, came in order and without gaps


def test_reading_a_subscription_as_instances_is_refused(session: openmi.Session) -> None:
    with session.subscribe(NS, "WQL", DELETIONS) as op, pytest.raises(openmi.MIError) as info:
        op.get_instance()
    assert "get_indication" in str(info.value)


def test_synchronous_readers_hold_no_pool_thread() -> None:
    """A subscription read with get_indication() waits for events on its reader's own thread: more live
    subscriptions than the pool has threads all hear every event (and a pool-bound one, with callbacks,
    still gets a thread)."""
    srv = openmi.Server(":memory:")
    srv.define_class(NS, Class("Sample_Person", properties=[Property("Id", MIType.UINT32, key=True),
                                                            Property("Name", MIType.STRING)]))
    heard: list[int] = []
    live, done = threading.Event(), threading.Event()

    def on_result(op: object, ctx: object, inst: Instance | None, *rest: object) -> None:
        if inst is None:
            live.set()  # REPORT_OPERATION_STARTED: the subscription is live
        else:
            heard.append(inst["SourceInstance"]["Id"])
            if len(heard) == 3:
                done.set()

    with openmi.Application(max_threads=2) as app:
        s = app.new_session(server=srv)
        ops = [s.subscribe(NS, "WQL", DELETIONS, flags=OperationFlags.REPORT_OPERATION_STARTED) for _ in range(6)]
        for op in ops:
            assert op.get_indication(timeout=30).result == MIResult.OK  # live
        cb = s.subscribe(NS, "WQL", DELETIONS, callbacks=OperationCallbacks(indication_result=on_result),
                         flags=OperationFlags.REPORT_OPERATION_STARTED)
        assert live.wait(30)
        for i in range(3):
            s.create(_person(i))
        for i in range(3):
            s.delete(_person(i))
        for op in ops:
            got = [op.get_indication(timeout=30).instance["SourceInstance"]["Id"] for _ in range(3)]
            assert got == [0, 1, 2]
        assert done.wait(30) and heard == [0, 1, 2]
        for op in [*ops, cb]:
            op.cancel()
            op.close()
    srv.close()

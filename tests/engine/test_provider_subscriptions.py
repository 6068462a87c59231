"""OMI's provider model for indications through the public API (spec §4.2): enable_indications, then a
provider's subscribe / unsubscribe hooks per subscription, disable_indications after the last; the bookmarks
a provider posts with; resuming a WITHIN-polled subscription from its bookmark."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import openmi
from openmi import (
    BOOKMARK_OLDEST,
    Class,
    Instance,
    MIError,
    MIResult,
    MIType,
    OperationFlags,
    Property,
    SubscriptionDeliveryOptions,
)
from openmi.engine.indications import Event, event_from_message, event_message
from openmi.engine.subscriptions import ProviderContext

NS = "root/cimv2"
ALARMS = "SELECT * FROM Sample_Alarm WHERE Severity > 2"
STARTED = OperationFlags.REPORT_OPERATION_STARTED


class _Alarms:
    """An [Indication] class's provider with OMI's four entry points; it records what the engine calls."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail

    def load(self, ctx: ProviderContext) -> None:
        self.ctx = ctx

    def enable_indications(self, ctx: ProviderContext, ns: str, cls: str) -> None:
        assert ctx is self.ctx
        self.calls.append(("enable", ns, cls))

    def disable_indications(self, ctx: ProviderContext, ns: str, cls: str) -> None:
        self.calls.append(("disable", ns, cls))

    def subscribe(self, ctx: ProviderContext, ns: str, cls: str, filter: Any, bookmark: str | None,
                  subscription_id: int) -> None:
        assert ctx is self.ctx
        self.calls.append(("subscribe", ns, cls, filter.dialect, filter.expression, bookmark, subscription_id))
        if self.fail is not None:
            raise self.fail

    def unsubscribe(self, ctx: ProviderContext, ns: str, cls: str, subscription_id: int) -> None:
        self.calls.append(("unsubscribe", ns, cls, subscription_id))


class _Plain:
    """A provider with enable/disable only (no subscribe hook)."""

    def load(self, ctx: ProviderContext) -> None:
        self.ctx = ctx

    def enable_indications(self, ctx: ProviderContext, ns: str, cls: str) -> None:
        pass


def _server(provider: object) -> openmi.Server:
    srv = openmi.Server(":memory:")
    srv.define_class(NS, Class("Sample_Alarm", properties=[Property("Severity", MIType.UINT16)],
                               qualifiers={"Indication": True}))
    srv.define_class(NS, Class("Sample_Person", properties=[Property("Id", MIType.UINT32, key=True)]))
    srv.register_provider(NS, "Sample_Alarm", provider)
    return srv


@pytest.fixture
def alarms() -> Iterator[tuple[openmi.Session, _Alarms]]:
    prov = _Alarms()
    srv = _server(prov)
    with openmi.Application() as app:
        yield app.new_session(server=srv), prov
    srv.close()


def _live(session: openmi.Session, query: str = ALARMS, dialect: str = "WQL",
          bookmark: str | None = None) -> openmi.Operation:
    opts = SubscriptionDeliveryOptions(bookmark=bookmark) if bookmark is not None else None
    op = session.subscribe(NS, dialect, query, delivery_options=opts, flags=STARTED)
    first = op.get_indication(timeout=30)
    assert first.result == MIResult.OK and first.more_results and first.instance is None, first.error_message
    return op


def _end(op: openmi.Operation) -> None:
    op.cancel()
    while op.get_indication(timeout=30).more_results:
        pass
    op.close()


def _refused(session: openmi.Session, query: str, bookmark: str | None = None) -> openmi.IndicationResult:
    opts = SubscriptionDeliveryOptions(bookmark=bookmark) if bookmark is not None else None
    with session.subscribe(NS, "WQL", query, delivery_options=opts, flags=STARTED) as op:
        r = op.get_indication(timeout=30)
    assert not r.more_results and r.result != MIResult.OK
    return r


# --- subscribe / unsubscribe -----------------------------------------------------------------------------


def test_each_subscription_is_told_to_the_provider_between_enable_and_disable(
        alarms: tuple[openmi.Session, _Alarms]) -> None:
    session, prov = alarms
    a = _live(session)
    assert prov.calls[0] == ("enable", NS, "Sample_Alarm")
    kind, ns, cls, dialect, text, mark, id_a = prov.calls[1]
    assert (kind, ns, cls, dialect, text, mark) == ("subscribe", NS, "Sample_Alarm", "WQL", ALARMS, None)
    assert isinstance(id_a, int)
    b = _live(session, "select * from Sample_Alarm", "CQL")
    assert len(prov.calls) == 3  # no second enable
    assert prov.calls[2][:6] == ("subscribe", NS, "Sample_Alarm", "CQL", "select * from Sample_Alarm", None)
    id_b = prov.calls[2][6]
    assert id_b != id_a
    prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 4}))
    assert a.get_indication(timeout=30).instance["Severity"] == 4
    assert b.get_indication(timeout=30).instance["Severity"] == 4
    _end(a)
    assert prov.calls[3:] == [("unsubscribe", NS, "Sample_Alarm", id_a)]  # b still listens: no disable
    _end(b)
    assert prov.calls[4:] == [("unsubscribe", NS, "Sample_Alarm", id_b), ("disable", NS, "Sample_Alarm")]


def test_a_provider_without_the_hooks_works_as_before() -> None:
    prov = _Plain()
    srv = _server(prov)
    with openmi.Application() as app:
        session = app.new_session(server=srv)
        op = _live(session)
        prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 1}))
        prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 3}))
        r = op.get_indication(timeout=30)
        assert r.instance["Severity"] == 3 and r.bookmark
        _end(op)
    srv.close()


@pytest.mark.parametrize(("error", "result", "words"), [
    (MIError(MIResult.NOT_SUPPORTED, "no such filter here"), MIResult.NOT_SUPPORTED, "no such filter here"),
    (MIError(MIResult.ACCESS_DENIED, "not for you"), MIResult.ACCESS_DENIED, "not for you"),
    (NotImplementedError(), MIResult.NOT_SUPPORTED, "does not support"),
    (RuntimeError("boom"), MIResult.FAILED, "RuntimeError: boom"),
])
def test_a_subscribe_hook_that_raises_fails_the_subscribe_and_leaves_nothing_enabled(
        error: BaseException, result: MIResult, words: str) -> None:
    prov = _Alarms(fail=error)
    srv = _server(prov)
    with openmi.Application() as app:
        session = app.new_session(server=srv)
        r = _refused(session, ALARMS)
        assert r.result == result
        assert "Sample_Alarm" in (r.error_message or "") and words in (r.error_message or "")
        assert [c[0] for c in prov.calls] == ["enable", "subscribe", "disable"]  # no unsubscribe: never subscribed
        assert srv.indications.subscriptions() == []
        assert srv.enabled_providers.count == {}
        prov.fail = None  # the next subscription starts from scratch: enabled again
        op = _live(session)
        assert [c[0] for c in prov.calls] == ["enable", "subscribe", "disable", "enable", "subscribe"]
        _end(op)
    srv.close()


def test_a_failing_subscribe_beside_a_live_subscription_does_not_disable_the_provider(
        alarms: tuple[openmi.Session, _Alarms]) -> None:
    session, prov = alarms
    a = _live(session)
    prov.fail = MIError(MIResult.NOT_SUPPORTED, "not this one")
    assert _refused(session, "SELECT * FROM Sample_Alarm").result == MIResult.NOT_SUPPORTED
    assert [c[0] for c in prov.calls] == ["enable", "subscribe", "subscribe"]
    prov.fail = None
    prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 9}))
    assert a.get_indication(timeout=30).instance["Severity"] == 9  # the first one goes on
    _end(a)
    assert [c[0] for c in prov.calls] == ["enable", "subscribe", "subscribe", "unsubscribe", "disable"]


# --- the provider's bookmarks ----------------------------------------------------------------------------


def test_a_posted_bookmark_is_the_one_delivered_and_resumes_through_the_provider(
        alarms: tuple[openmi.Session, _Alarms]) -> None:
    session, prov = alarms
    op = _live(session)
    prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 5}), bookmark="alarm-log:17")
    prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 6}))
    marked, plain = op.get_indication(timeout=30), op.get_indication(timeout=30)
    assert marked.instance["Severity"] == 5 and marked.bookmark == "alarm-log:17"
    assert plain.instance["Severity"] == 6 and plain.bookmark and plain.bookmark != "alarm-log:17"
    _end(op)
    # a provider's bookmark goes to its subscribe hook; the engine replays nothing for it
    again = _live(session, bookmark="alarm-log:17")
    assert prov.calls[-1][0] == "subscribe" and prov.calls[-1][5] == "alarm-log:17"
    with pytest.raises(TimeoutError):
        again.get_indication(timeout=0.1)
    _end(again)
    # the engine's own bookmark resumes from what the engine kept; the provider is given none
    resumed = _live(session, bookmark=_engine_bookmark(session, prov))
    assert prov.calls[-1][0] == "subscribe" and prov.calls[-1][5] is None
    _end(resumed)


def _engine_bookmark(session: openmi.Session, prov: _Alarms) -> str:
    """An engine bookmark: what a subscriber gets with an indication posted without one."""
    op = _live(session)
    prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 7}))
    mark = op.get_indication(timeout=30).bookmark
    _end(op)
    assert mark
    return mark


def test_an_engine_bookmark_replays_kept_indications_after_it(alarms: tuple[openmi.Session, _Alarms]) -> None:
    session, prov = alarms
    op = _live(session)
    for sev in (3, 4, 5):
        prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": sev}))
    first = op.get_indication(timeout=30)
    _end(op)
    again = _live(session, bookmark=first.bookmark)
    assert [again.get_indication(timeout=30).instance["Severity"] for _ in range(2)] == [4, 5]
    assert prov.calls[-1][5] is None
    _end(again)


def test_a_provider_bookmark_nobody_can_take_is_invalid_parameter() -> None:
    prov = _Plain()
    srv = _server(prov)
    with openmi.Application() as app:
        session = app.new_session(server=srv)
        r = _refused(session, ALARMS, bookmark="alarm-log:17")
        assert r.result == MIResult.INVALID_PARAMETER
        assert "alarm-log:17" in (r.error_message or "") and "Sample_Alarm" in (r.error_message or "")
        lifecycle = "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'"
        r = _refused(session, lifecycle, bookmark="alarm-log:17")
        assert r.result == MIResult.INVALID_PARAMETER and "alarm-log:17" in (r.error_message or "")
        assert srv.indications.subscriptions() == [] and srv.enabled_providers.count == {}
    srv.close()


def test_a_stale_engine_bookmark_is_not_handed_to_the_provider(alarms: tuple[openmi.Session, _Alarms]) -> None:
    session, prov = alarms
    r = _refused(session, ALARMS, bookmark="0123456789ab:42")  # another server's (or before a restart)
    assert r.result == MIResult.INVALID_PARAMETER and "not issued by this server" in (r.error_message or "")
    assert prov.calls == []


def test_a_provider_bookmark_travels_to_the_other_servers() -> None:
    ev = Event(NS, extrinsic=Instance("Sample_Alarm", {"Severity": 2}, namespace=NS), mark="alarm-log:3")
    assert event_from_message(NS, event_message(ev)).mark == "alarm-log:3"
    plain = Event(NS, extrinsic=Instance("Sample_Alarm", {"Severity": 2}, namespace=NS))
    message = event_message(plain)
    assert "bookmark" not in message and event_from_message(NS, message).mark is None


def test_post_indication_checks_the_bookmark_type(alarms: tuple[openmi.Session, _Alarms]) -> None:
    _, prov = alarms
    with pytest.raises(TypeError):
        prov.ctx.post_indication(Instance("Sample_Alarm", {"Severity": 2}), bookmark=17)  # type: ignore[arg-type]


# --- resuming a WITHIN-polled subscription ---------------------------------------------------------------


class _Polled:
    """A provider that cannot report changes: it can only be enumerated (WMI's WITHIN polling)."""

    def __init__(self) -> None:
        self.items: dict[int, str] = {}
        self.lock = threading.Lock()

    def enumerate_instances(self, ctx: object, ns: str, cls: str, keys_only: bool) -> list[Instance]:
        with self.lock:
            return [Instance(cls, {"Id": k, "Name": v}) for k, v in self.items.items()]

    def add(self, i: int) -> None:
        with self.lock:
            self.items[i] = f"p{i}"


POLLED = "SELECT * FROM __InstanceCreationEvent WITHIN 0.05 WHERE TargetInstance ISA 'Sample_Polled'"


@pytest.fixture
def polled() -> Iterator[tuple[openmi.Session, _Polled]]:
    prov = _Polled()
    srv = openmi.Server(":memory:")
    srv.define_class(NS, Class("Sample_Polled", properties=[Property("Id", MIType.UINT32, key=True),
                                                            Property("Name", MIType.STRING)]))
    srv.register_provider(NS, "Sample_Polled", prov)
    with openmi.Application() as app:
        yield app.new_session(server=srv), prov
    srv.close()


def _created(op: openmi.Operation) -> tuple[int, str]:
    r = op.get_indication(timeout=30)
    assert r.instance is not None, r.error_message
    assert r.bookmark
    return r.instance["TargetInstance"]["Id"], r.bookmark


def test_a_polled_subscription_resumes_from_its_bookmark(polled: tuple[openmi.Session, _Polled]) -> None:
    session, prov = polled
    op = _live(session, POLLED)
    prov.add(1)
    one, mark1 = _created(op)
    prov.add(2)
    two, mark2 = _created(op)
    assert (one, two) == (1, 2)
    _end(op)
    # from the first event's bookmark: what the poll found after it (2), then new findings; never 1 again
    again = _live(session, POLLED, bookmark=mark1)
    assert _created(again)[0] == 2
    prov.add(3)
    three, mark3 = _created(again)
    assert three == 3
    with pytest.raises(TimeoutError):
        again.get_indication(timeout=0.2)
    _end(again)
    # from the last bookmark: only what comes after it
    last = _live(session, POLLED, bookmark=mark3)
    prov.add(4)
    assert _created(last)[0] == 4
    with pytest.raises(TimeoutError):
        last.get_indication(timeout=0.2)
    _end(last)
    # and mark2 still resumes (the stream goes on through the subscriptions that resumed it)
    fourth = _live(session, POLLED, bookmark=mark2)
    assert [_created(fourth)[0] for _ in range(2)] == [3, 4]
    _end(fourth)


def test_what_a_poll_found_is_replayed_to_no_other_subscription(polled: tuple[openmi.Session, _Polled]) -> None:
    session, prov = polled
    op = _live(session, POLLED)
    prov.add(1)
    _, mark = _created(op)
    _end(op)
    everything = "SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Sample_Polled'"
    oldest = session.subscribe(NS, "WQL", everything.replace("WHERE", "WITHIN 0.05 WHERE"),
                               delivery_options=SubscriptionDeliveryOptions(bookmark=BOOKMARK_OLDEST))
    with pytest.raises(TimeoutError):  # the kept event was the first subscription's own
        oldest.get_indication(timeout=0.2)
    _end(oldest)
    assert mark.count(".") == 1  # a polled subscription's bookmark names its stream


def test_a_second_subscription_waits_for_the_first_ones_enable_indications() -> None:
    """The subscribe hook of a subscription that starts while the first one's enable_indications still runs
    comes only after it returned, as OMI's model has it (enable first, then each subscribe)."""

    class SlowEnable(_Alarms):
        def __init__(self) -> None:
            super().__init__()
            self.go = threading.Event()
            self.entered = threading.Event()

        def enable_indications(self, ctx: ProviderContext, ns: str, cls: str) -> None:
            self.calls.append(("enabling",))
            self.entered.set()
            assert self.go.wait(30)
            self.calls.append(("enable", ns, cls))

    provider = SlowEnable()
    srv = _server(provider)
    with openmi.Application() as app:
        s = app.new_session(server=srv)
        first = s.subscribe(NS, "WQL", ALARMS, flags=STARTED)  # (starts when called, on the pool)
        assert provider.entered.wait(30)
        second = s.subscribe(NS, "WQL", ALARMS, flags=STARTED)
        threading.Event().wait(0.3)  # the second is waiting now, not calling its hook
        assert [c[0] for c in provider.calls] == ["enabling"]
        provider.go.set()
        assert first.get_indication(timeout=30).result == MIResult.OK
        assert second.get_indication(timeout=30).result == MIResult.OK
        assert [c[0] for c in provider.calls] == ["enabling", "enable", "subscribe", "subscribe"]
        first.close()
        second.close()
    srv.close()

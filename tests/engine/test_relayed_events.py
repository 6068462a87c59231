"""Events a request produced reach the subscribers of the repository's other servers (issue #13).

Two servers on one SQLite file, linked by hand through ``Server.link_events`` (as openmi.engine.filevents
links the processes sharing a file): each event a JSON datagram handed to the other on a thread of its own,
each watch announced at once. What a request served by one produces (the engine's CIM_InstMethodCall of an
Invoke, a provider's lifecycle event or indication posted inside its create_instance or invoke) is heard on
the other, typed as it was posted; what a provider posts from its own thread, or from enable_indications,
stays where it was posted.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIResult, MIType
from openmi.engine.indications import Lifecycle
from openmi.engine.subscriptions import ProviderContext

NS = "root/cimv2"
SCHEMA = """
class Sample_Note { [Key] string Id; uint32 Size; };
class Sample_Person { [Key] uint32 Id; string Name; };
class Sample_Item {
    [Key] uint32 Id;
    uint32 Size;
    datetime Seen;
    [EmbeddedInstance("Sample_Note")] string Note;
};
class Sample_Calc {
    [Key] uint32 Id;
    [Static] uint32 Add([In] uint32 A, [In] uint32 B, [In, EmbeddedInstance("Sample_Note")] string Note);
    [Static] uint32 Raise([In] uint16 Severity);
};
[Indication] class Sample_Alarm { uint16 Severity; string Origin; };
"""


class _Wire:
    """One direction of the link: messages travel as JSON text and are received on a thread of their own,
    as a worker's datagram socket has them received (never under the sender's locks)."""

    def __init__(self, to: openmi.Server, name: str) -> None:
        self.to = to
        self.sent: list[dict[str, Any]] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"test-wire-{name}", daemon=True)
        self._thread.start()

    def send(self, peer: int, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self._q.put(json.dumps(message))

    def _run(self) -> None:
        while (text := self._q.get()) is not None:
            self.to.receive_event(json.loads(text))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(10)


def _link(a: openmi.Server, b: openmi.Server) -> tuple[_Wire, _Wire]:
    """Link two servers both ways: ``a`` knows ``b`` as peer 2, ``b`` knows ``a`` as peer 1."""
    to_b, to_a = _Wire(b, "to-b"), _Wire(a, "to-a")
    a.link_events(to_b.send, lambda key, on: b.indications.set_remote(1, key, on))
    b.link_events(to_a.send, lambda key, on: a.indications.set_remote(2, key, on))
    return to_a, to_b


class Calc:
    """Sample_Calc's provider: Add returns the sum; Raise posts an alarm (inside the request) first."""

    def __init__(self, alarms: Alarms) -> None:
        self.alarms = alarms

    def invoke(self, ctx: object, ns: str, cls: str, method: str, target: Any, params: openmi.Instance) -> Any:
        if method == "Raise":
            self.alarms.post(params["Severity"], "invoke")
            return 0
        return params["A"] + params["B"]


class Items:
    """Sample_Item's provider: keeps its items and reports each create itself (inside create_instance)."""

    def __init__(self) -> None:
        self.items: dict[int, openmi.Instance] = {}

    def load(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        ctx.lifecycle.set_supported_types(Lifecycle.CREATE)

    def create_instance(self, ctx: object, ns: str, inst: openmi.Instance) -> openmi.Instance:
        self.items[inst["Id"]] = inst
        self.ctx.lifecycle.post_create(inst)
        return inst

    def enumerate_instances(self, ctx: object, ns: str, cls: str, keys_only: bool) -> list[openmi.Instance]:
        return list(self.items.values())


class Alarms:
    """Sample_Alarm's provider; it posts one alarm when indications are enabled (its own support, as a
    monitor's first report would be)."""

    def load(self, ctx: ProviderContext) -> None:
        self.ctx = ctx

    def post(self, severity: int, origin: str) -> None:
        alarm = openmi.Instance("Sample_Alarm")
        alarm.add_element("Severity", severity, MIType.UINT16)
        alarm.add_element("Origin", origin, MIType.STRING)
        self.ctx.post_indication(alarm)

    def enable_indications(self, ctx: object, ns: str, cls: str) -> None:
        self.post(9, "enable")

    def disable_indications(self, ctx: object, ns: str, cls: str) -> None:
        self.post(9, "disable")


class Side:
    """One server with its providers and a session on it."""

    def __init__(self, server: openmi.Server, app: openmi.Application) -> None:
        self.server = server
        self.alarms = Alarms()
        self.items = Items()
        server.register_provider(NS, "Sample_Alarm", self.alarms)
        server.register_provider(NS, "Sample_Item", self.items)
        server.register_provider(NS, "Sample_Calc", Calc(self.alarms))
        self.session = app.new_session(server=server)

    def subscribe(self, query: str) -> openmi.Operation:
        op = self.session.subscribe(NS, "WQL", query, flags=openmi.OperationFlags.REPORT_OPERATION_STARTED)
        started = op.get_indication(timeout=30)
        assert started.result == MIResult.OK and started.instance is None
        return op


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Side, Side, tuple[_Wire, _Wire]]]:
    db = tmp_path / "shared.db"
    with openmi.Server(db, shared=True) as first:
        first.compile_mof(SCHEMA)
    with openmi.Server(db, shared=True) as a, openmi.Server(db, shared=True) as b, openmi.Application() as app:
        wires = _link(a, b)
        try:
            yield Side(a, app), Side(b, app), wires
        finally:
            a.unlink_events()
            b.unlink_events()
            for w in wires:
                w.close()


def _next(op: openmi.Operation) -> openmi.Instance:
    got = op.get_indication(timeout=30)
    assert got.instance is not None, got
    return got.instance


def _nothing_more(op: openmi.Operation) -> None:
    with pytest.raises(TimeoutError):
        op.get_indication(timeout=0.3)


def test_an_invoke_on_one_server_reaches_the_method_call_subscribers_of_the_other(
        pair: tuple[Side, Side, tuple[_Wire, _Wire]]) -> None:
    a, b, _ = pair
    note = openmi.Instance("Sample_Note")
    note.add_element("Id", "n1", MIType.STRING, openmi.MIFlag.KEY)
    note.add_element("Size", 12, MIType.UINT32)
    with a.subscribe("SELECT * FROM CIM_InstMethodCall") as cim, \
            a.subscribe("SELECT * FROM __MethodInvocationEvent") as wmi:
        out = b.session.invoke_method("Sample_Calc", "Add", {"A": 40, "B": 2, "Note": note})
        assert out["ReturnValue"] == 42
        ind = _next(cim)
        assert ind.class_name == "CIM_InstMethodCall"
        assert ind["MethodName"] == "Add" and ind["ReturnValue"] == "42" and ind["PreCall"] is False
        assert ind["SourceInstance"].class_name == "Sample_Calc"
        params = ind["MethodParameters"]
        assert params["A"] == 40 and params.get_element("A").type == MIType.UINT32
        assert params["Note"] == note and params.get_element("Note").type == MIType.INSTANCE
        assert params["Note"].get_element("Size").type == MIType.UINT32
        w = _next(wmi)
        assert w.class_name == "__MethodInvocationEvent" and w["Method"] == "Add"
        assert w["TargetInstance"].class_name == "Sample_Calc" and w["Parameters"]["B"] == 2
        # each once: a call served by a is heard there only (b watches nothing, so nothing travels back)
        a.session.invoke_method("Sample_Calc", "Add", {"A": 1, "B": 1})
        assert _next(cim)["ReturnValue"] == "2"
        _nothing_more(cim)


def test_a_provider_post_inside_create_instance_reaches_the_other_server_typed(
        pair: tuple[Side, Side, tuple[_Wire, _Wire]]) -> None:
    a, b, _ = pair
    seen = _dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=_dt.timezone.utc)
    note = openmi.Instance("Sample_Note", {"Id": "n2", "Size": 7}, cls=a.server.get_class(NS, "Sample_Note"))
    item = openmi.Instance("Sample_Item", {"Id": 5, "Size": 4096, "Seen": seen, "Note": note})
    with a.subscribe("SELECT * FROM CIM_InstCreation WHERE SourceInstance ISA 'Sample_Item'") as op:
        b.session.create(item)
        assert 5 in b.items.items and 5 not in a.items.items  # served by b alone
        src = _next(op)["SourceInstance"]
        assert src.class_name == "Sample_Item" and src["Id"] == 5
        assert src["Size"] == 4096 and src.get_element("Size").type == MIType.UINT32
        assert src["Seen"] == seen and src.get_element("Seen").type == MIType.DATETIME
        embedded = src["Note"]
        assert isinstance(embedded, openmi.Instance) and embedded.class_name == "Sample_Note"
        assert embedded["Size"] == 7 and embedded.get_element("Size").type == MIType.UINT32
        assert src.get_element("Id").key
        _nothing_more(op)


def test_indications_travel_only_when_a_request_posted_them(
        pair: tuple[Side, Side, tuple[_Wire, _Wire]]) -> None:
    """An alarm posted inside b's Invoke reaches a's subscriber (through a's own filter); one posted by the
    provider's own thread on b, or by its enable_indications (b's subscriber enabled it), does not: a runs
    the provider's indication support itself."""
    a, b, (to_a, _) = pair
    with a.subscribe("SELECT * FROM Sample_Alarm WHERE Severity > 2") as op:
        assert _next(op)["Origin"] == "enable"  # a's provider, enabled for a's subscriber, posted it
        with b.subscribe("SELECT * FROM Sample_Alarm") as local:
            assert _next(local)["Origin"] == "enable"  # b's, for b's subscribers alone
            monitor = threading.Thread(target=b.alarms.post, args=(8, "monitor"))
            monitor.start()
            monitor.join(10)
            assert _next(local)["Origin"] == "monitor"
            b.session.invoke_method("Sample_Calc", "Raise", {"Severity": 1})  # a's filter rejects it
            b.session.invoke_method("Sample_Calc", "Raise", {"Severity": 5})
            got = _next(op)
            assert got.class_name == "Sample_Alarm" and got["Origin"] == "invoke" and got["Severity"] == 5
            assert got.get_element("Severity").type == MIType.UINT16
            _nothing_more(op)
            assert [_next(local)["Severity"] for _ in range(2)] == [1, 5]
        _nothing_more(op)  # b's disable_indications posted too, for b alone
    origins = [m["inst"]["extrinsic"] for m in to_a.sent if "inst" in m and m["inst"]["extrinsic"]]
    assert sorted(e["e"][1][3] for e in origins) == ["invoke", "invoke"]  # what b handed to a: the two Raises


def test_repository_changes_still_travel_as_rows(pair: tuple[Side, Side, tuple[_Wire, _Wire]]) -> None:
    a, b, (to_a, _) = pair
    with a.subscribe("SELECT * FROM CIM_InstIndication WHERE SourceInstance ISA 'Sample_Person'") as op:
        b.session.create(openmi.Instance("Sample_Person", {"Id": 1, "Name": "one"}))
        b.session.delete(openmi.Instance("Sample_Person", {"Id": 1}))
        got = [_next(op) for _ in range(2)]
        assert [g.class_name for g in got] == ["CIM_InstCreation", "CIM_InstDeletion"]
        assert got[0]["SourceInstance"]["Name"] == "one"
    assert [sorted(m) for m in to_a.sent] == [["change", "cls", "data", "ns", "prev", "time"]] * 2


def test_a_message_that_is_not_an_event_is_logged_and_dropped(
        pair: tuple[Side, Side, tuple[_Wire, _Wire]], caplog: pytest.LogCaptureFixture) -> None:
    a, b, _ = pair
    bad: list[Any] = [
        ["not", "a", "dict"],
        {"ns": NS, "change": 1},  # neither rows nor instances
        {"ns": NS, "change": 1, "inst": "x"},
        {"ns": NS, "change": 1, "inst": {"source": {"c": "Sample_Calc", "e": [["A", 99999, 0, 1]]}}},
        {"ns": NS, "change": 77, "inst": {"source": {"c": "Sample_Calc", "e": []}}},
        {"ns": NS, "change": 1, "inst": {}},  # a lifecycle event without its instance
        {"ns": NS, "change": 16, "inst": {"source": {"c": "Sample_Calc", "e": []}, "return": [1]}},
        {"ns": NS, "change": 0, "inst": {"extrinsic": ["Sample_Alarm"]}},
    ]
    with a.subscribe("SELECT * FROM CIM_InstIndication") as op, caplog.at_level(logging.WARNING, "openmi.engine"):
        for m in bad:
            a.server.receive_event(m)
        _nothing_more(op)
        assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == len(bad)
        # and the receiver still works
        b.session.invoke_method("Sample_Calc", "Add", {"A": 2, "B": 3})
        assert _next(op)["ReturnValue"] == "5"

"""Remote subscriptions read with get_indication() or through callbacks wait on the application's one event loop
thread, not on its worker pool: a pool of one thread serves ten live subscriptions (and other operations) at
once, callbacks still come from pool steps, in order, with MANUAL_ACK honoured, and closing the application
ends them all (Unsubscribe sent, the loop thread gone)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import (
    AuthType,
    DestinationOptions,
    Instance,
    MIResult,
    OperationCallbacks,
    OperationFlags,
    SubscriptionDeliveryOptions,
)

from .conftest import PASSWORD, Running, start

NS = "root/cimv2"
DELETIONS = "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'"
STARTED = OperationFlags.REPORT_OPERATION_STARTED
WAIT = 30.0  # generous: nothing here asserts speed


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    r = start(tmp_path, allow_unencrypted=True)
    yield r
    r.server.stop()
    r.engine.close()


def remote(app: openmi.Application, r: Running) -> openmi.Session:
    o = DestinationOptions("http", r.http_port)
    o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    return app.new_session("127.0.0.1", "WINRM", o)


def person(i: int) -> Instance:
    return Instance("Sample_Person", {"Id": i, "Name": f"p{i}"})


def wait_for(cond: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("openmi-pool")]


def test_ten_synchronous_subscriptions_on_a_pool_of_one(served: Running) -> None:
    """Ten subscriptions, each with its Pull waiting on the server, and a pool of one thread: every one hears
    the delete, a Get on the same application is served meanwhile, and no pool thread is held while they wait
    (on the pool each would hold its thread for a whole Pull, and the other nine would starve)."""
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(3):
        eng.create(person(i))
    with openmi.Application(max_threads=1) as app:
        s = remote(app, served)
        ops = [s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) for _ in range(10)]
        for op in ops:
            assert op.get_indication(timeout=WAIT).result == MIResult.OK  # live
        assert len(served.server.service.subscriptions) == 10
        wait_for(lambda: app._pool.threads == 0, "the pool to have no thread while ten subscriptions wait")
        assert s.get(person(1))["Name"] == "p1"  # the pool (one thread) is free for other work
        eng.delete(person(2))
        for op in ops:
            r = op.get_indication(timeout=WAIT)
            assert r.instance is not None and r.instance["SourceInstance"]["Id"] == 2
        assert [t.name for t in threading.enumerate()].count("openmi-events") == 1  # one loop thread for all
        for op in ops:
            op.close()
        wait_for(lambda: len(served.server.service.subscriptions) == 0, "ten Unsubscribes")
    local.close()


def test_callbacks_come_from_pool_steps(served: Running) -> None:
    """Three subscriptions with callbacks on a pool of one thread: each hears every delete, from a pool thread
    (never the event loop's own), and each ends with one final callback after cancel."""
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(20):
        eng.create(person(i))
    got: list[tuple[object, int | None, bool, MIResult]] = []
    threads: set[str] = set()

    def on_indication(op: object, context: object, instance: Instance | None, bookmark: str | None,
                      machine_id: str | None, more: bool, result: MIResult, message: str | None,
                      details: Instance | None) -> None:
        threads.add(threading.current_thread().name)
        got.append((context, instance["SourceInstance"]["Id"] if instance is not None else None, more, result))

    with openmi.Application(max_threads=1) as app:
        s = remote(app, served)
        ops = [s.subscribe(NS, "WQL", DELETIONS, flags=STARTED,
                           callbacks=OperationCallbacks(indication_result=on_indication, context=k))
               for k in range(3)]
        wait_for(lambda: len(got) == 3, "three started results")
        for i in range(20):
            eng.delete(person(i))
        wait_for(lambda: len(got) == 3 + 60, "every event to every subscription")
        for op in ops:
            op.cancel()
        wait_for(lambda: len(got) == 3 + 60 + 3, "three final results")
        for op in ops:
            op.close()
    assert all(name.startswith("openmi-pool") for name in threads), threads  # never the loop's own thread
    for k in range(3):
        mine = [g[1:] for g in got if g[0] == k]
        assert mine[0] == (None, True, MIResult.OK)  # started
        assert [g[0] for g in mine[1:-1]] == list(range(20))  # in commit order
        assert mine[-1] == (None, False, MIResult.FAILED)  # cancelled
    local.close()


def test_callback_order_per_subscription(served: Running) -> None:
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(30):
        eng.create(person(i))
    got: list[int] = []
    final = threading.Event()

    def on_indication(op: object, context: object, instance: Instance | None, bookmark: str | None,
                      machine_id: str | None, more: bool, result: MIResult, message: str | None,
                      details: Instance | None) -> None:
        if instance is not None:
            got.append(instance["SourceInstance"]["Id"])
        if not more:
            final.set()

    with openmi.Application(max_threads=2) as app:
        s = remote(app, served)
        op = s.subscribe(NS, "WQL", DELETIONS, callbacks=OperationCallbacks(indication_result=on_indication),
                         delivery_options=SubscriptionDeliveryOptions(max_elements=7))
        wait_for(lambda: len(served.server.service.subscriptions) == 1, "the subscription")
        for i in range(30):
            eng.delete(person(i))
        wait_for(lambda: len(got) == 30, "30 events")
        op.cancel()
        assert final.wait(WAIT)
        op.close()
    assert got == list(range(30))
    local.close()


def test_manual_ack_holds_the_next_callback(served: Running) -> None:
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(5):
        eng.create(person(i))
    got: list[int] = []
    acks: list[object] = []
    final = threading.Event()

    def on_indication(op: object, context: object, instance: Instance | None, bookmark: str | None,
                      machine_id: str | None, more: bool, result: MIResult, message: str | None,
                      details: Instance | None, ack: object) -> None:
        if instance is not None:
            got.append(instance["SourceInstance"]["Id"])
        acks.append(ack)
        if not more:
            final.set()

    with openmi.Application() as app:
        s = remote(app, served)
        op = s.subscribe(NS, "WQL", DELETIONS, flags=OperationFlags.MANUAL_ACK_RESULTS,
                         callbacks=OperationCallbacks(indication_result=on_indication))
        wait_for(lambda: len(served.server.service.subscriptions) == 1, "the subscription")
        for i in range(5):
            eng.delete(person(i))
        wait_for(lambda: len(got) == 1, "the first event")
        time.sleep(0.3)  # events 2-5 have arrived meanwhile; none is delivered before the first is acknowledged
        assert got == [0]
        for n in range(1, 5):
            acks[-1]()  # type: ignore[operator]
            wait_for(lambda n=n: len(got) == n + 1, f"event {n + 1} after the acknowledgement")
        assert got == [0, 1, 2, 3, 4]
        op.cancel()
        acks[-1]()  # type: ignore[operator]
        assert final.wait(WAIT)
        op.close()
    local.close()


def test_closing_the_application_ends_its_subscriptions(served: Running) -> None:
    app = openmi.Application()
    s = remote(app, served)
    ops = [s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) for _ in range(3)]
    for op in ops:
        assert op.get_indication(timeout=WAIT).result == MIResult.OK
    app.close()  # (the autouse fixture checks the loop thread is gone)
    for op in ops:
        r = op.get_indication(timeout=WAIT)
        assert not r.more_results and r.result == MIResult.FAILED
    assert not any(t.name == "openmi-events" for t in threading.enumerate())
    wait_for(lambda: len(served.server.service.subscriptions) == 0, "the Unsubscribes close sent")


def test_a_callback_may_close_its_session(served: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """A callback that closes the session (which waits for its operations to finish) does not wait for its own
    delivery: the session closes, the final result follows, nothing hangs."""
    from openmi.client import session as session_module

    monkeypatch.setattr(session_module, "CLOSE_GRACE", 120.0)  # a wait for itself would outlast WAIT
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    eng.create(person(1))
    seen: list[str] = []
    final = threading.Event()
    holder: dict[str, openmi.Session] = {}

    def on_indication(op: object, context: object, instance: Instance | None, bookmark: str | None,
                      machine_id: str | None, more: bool, result: MIResult, message: str | None,
                      details: Instance | None) -> None:
        if instance is not None:
            seen.append("event")
            holder["s"].close()
            seen.append("closed")
        if not more:
            seen.append(result.name)
            final.set()

    with openmi.Application() as app:
        s = holder["s"] = remote(app, served)
        s.subscribe(NS, "WQL", DELETIONS, callbacks=OperationCallbacks(indication_result=on_indication))
        wait_for(lambda: len(served.server.service.subscriptions) == 1, "the subscription")
        eng.delete(person(1))
        assert final.wait(WAIT)
    assert seen == ["event", "closed", "FAILED"]
    local.close()


def test_the_loop_thread_ends_when_idle_and_comes_back(served: Running) -> None:
    """Like pool threads, the event loop thread ends a moment after its last subscription (an application that
    lives as long as the process, as the wmi module's does, keeps no thread for nothing), and the next
    remote subscription starts it again."""
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    eng.create(person(5))

    def loop_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "openmi-events")

    with openmi.Application() as app:
        s = remote(app, served)
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) as op:
            assert op.get_indication(timeout=WAIT).result == MIResult.OK
            assert loop_threads() == 1
        wait_for(lambda: loop_threads() == 0, "the idle loop thread to end")
        assert s._transport._aidle == []  # its connections (streams of the loop that ended) were closed with it
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) as op:
            assert op.get_indication(timeout=WAIT).result == MIResult.OK
            assert loop_threads() == 1
            eng.delete(person(5))
            r = op.get_indication(timeout=WAIT)
            assert r.instance is not None and r.instance["SourceInstance"]["Id"] == 5
    local.close()


def test_an_unacknowledged_callback_holds_the_buffer_at_its_bound(served: Running,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """MANUAL_ACK with a callback that does not acknowledge: the producer pauses once the operation's buffer is
    full, and no more events are pulled from the server meanwhile (they stay there), instead of the buffer
    growing for as long as the acknowledgement is held."""
    from openmi.client import operation as operation_module

    monkeypatch.setattr(operation_module, "BUFFER", 8)
    monkeypatch.setattr(operation_module, "_LOW", 4)
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(40):
        eng.create(person(i))
    got: list[object] = []

    def on_indication(op: object, context: object, instance: Instance | None, bookmark: str | None,
                      machine_id: str | None, more: bool, result: MIResult, message: str | None,
                      details: Instance | None, ack: object) -> None:
        got.append(ack)  # never acknowledged (until the end)

    with openmi.Application() as app:
        s = remote(app, served)
        op = s.subscribe(NS, "WQL", DELETIONS, flags=OperationFlags.MANUAL_ACK_RESULTS,
                         callbacks=OperationCallbacks(indication_result=on_indication))
        wait_for(lambda: len(served.server.service.subscriptions) == 1, "the subscription")
        for i in range(40):
            eng.delete(person(i))
        wait_for(lambda: len(op._buf) >= 8, "the buffer to fill")
        time.sleep(1.0)  # (not a measurement: time for a producer that does not pause to pull the rest)
        assert len(got) == 1 and len(op._buf) <= 8, len(op._buf)
        op.cancel()
        got[-1]()  # type: ignore[operator]
        op.close()
    local.close()


def test_a_served_file_changed_by_a_local_command_reaches_a_remote_subscriber(tmp_path: Path) -> None:
    """``openmi serve`` on a file, and ``openmi di`` on the same file in another terminal: the server's remote
    subscriber hears that delete (openmi.engine.filevents)."""
    import os
    import subprocess
    import sys

    from ..cli.conftest import clean_env

    db = tmp_path / "served.db"
    engine = openmi.Server(db, shared=True)
    engine.compile_mof("class Sample_Person { [Key] uint32 Id; string Name; };")
    with openmi.Application() as app:
        app.new_session(server=engine).create(person(7))
    r = start(tmp_path, allow_unencrypted=True, engine=engine, recorder=object())  # type: ignore[arg-type]
    try:
        with openmi.Application() as app, remote(app, r).subscribe(NS, "WQL", DELETIONS) as op:
            env = clean_env(tmp_path)
            env["OPENMI_REPOSITORY"] = str(db)
            done = subprocess.run([sys.executable, "-m", "openmi", "di", NS, "{", "Sample_Person", "Id", "7", "}"],
                                  env=env, capture_output=True, text=True, timeout=WAIT)
            assert done.returncode == 0, done.stderr
            got = op.get_indication()
            assert got.instance["SourceInstance"]["Name"] == "p7"
            assert os.path.exists(f"{db}-writers")
    finally:
        r.server.stop()
        engine.close()

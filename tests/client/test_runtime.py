"""The operation runtime (issue 9 §1): an operation runs from the moment it is started, read or not;
blocking work overlaps on the Application's bounded pool (or an event loop); results go through a
bounded buffer; cancel and close reach running providers and requests in flight; REPORT_OPERATION_STARTED
and MANUAL_ACK_RESULTS. Overlap is proved with barriers (they break unless everything runs at once),
never with wall-clock thresholds."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import openmi
from openmi import DestinationOptions, MIResult, OperationFlags
from openmi.client.operation import BUFFER, CHUNK
from openmi.protocol import wsman
from tests.conftest import person

HANG_GUARD = 20.0  # seconds after which a wait counts as a hang (only reached when the code is wrong)


def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run fn on a thread; fail (instead of hanging the suite) if it does not return."""
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()), name="test-watchdog", daemon=True)
    t.start()
    t.join(HANG_GUARD)
    assert not t.is_alive(), "the call hung"
    return out[0]


def _until(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + HANG_GUARD
    while not cond():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.005)


class SlowProvider:
    """Sample_Person served by a provider whose calls wait until they are cancelled (or released)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.cancelled: list[openmi.CancellationReason] = []  # what its cancel callback heard
        self.saw_cancel = False  # it stopped because ctx.cancelled said so
        self.finished = threading.Event()

    def _wait(self, ctx: openmi.Context) -> None:
        ctx.register_cancel(self.cancelled.append)
        self.started.set()
        deadline = time.monotonic() + HANG_GUARD
        while not ctx.cancelled and not self.release.is_set() and time.monotonic() < deadline:
            time.sleep(0.002)
        self.saw_cancel = ctx.cancelled
        self.finished.set()

    def delete_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> None:
        self._wait(ctx)

    def get_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> openmi.Instance:
        self._wait(ctx)
        return inst

    def enumerate_instances(self, ctx: openmi.Context, ns: str, cls: str, keys_only: bool) -> Iterator[openmi.Instance]:
        yield openmi.Instance("Sample_Person", {"Id": 1})
        self._wait(ctx)


@pytest.fixture
def slow(server: openmi.Server) -> SlowProvider:
    prov = SlowProvider()
    server.register_provider("root/cimv2", "Sample_Person", prov)
    return prov


# --- starting, cancelling, closing -------------------------------------------------------------------


def test_operation_runs_without_a_reader_and_sees_cancel(app: openmi.Application, session: openmi.Session,
                                                         slow: SlowProvider) -> None:
    op = session.get_instance(None, person(app, 1))  # nobody ever reads it
    assert slow.started.wait(HANG_GUARD)
    assert not slow.finished.is_set()
    op.cancel(openmi.CancellationReason.SHUTDOWN)
    assert slow.finished.wait(HANG_GUARD)
    assert slow.saw_cancel and slow.cancelled == [openmi.CancellationReason.SHUTDOWN]
    assert op.get_instance().result == MIResult.FAILED
    op.close()


def test_closed_unread_delete_is_cancelled_not_left_running(app: openmi.Application, session: openmi.Session,
                                                            slow: SlowProvider) -> None:
    op = session.delete_instance(None, person(app, 1))
    assert slow.started.wait(HANG_GUARD)
    _in_thread(op.close)  # returns at once, though the provider is still inside delete_instance
    assert slow.finished.wait(HANG_GUARD)
    assert slow.saw_cancel and slow.cancelled == [openmi.CancellationReason.NONE]
    assert op.get_instance().result == MIResult.FAILED  # a closed operation repeats its final result


def test_close_of_an_unread_finished_operation_frees_it(app: openmi.Application, session: openmi.Session) -> None:
    session.create(person(app, 5))
    op = session.delete_instance(None, person(app, 5))  # repository work: done inside the call
    op.close()
    assert session.enumerate("Sample_Person") == []
    assert op not in session._operations


def test_timeout_counts_from_the_start(app: openmi.Application, session: openmi.Session,
                                       slow: SlowProvider) -> None:
    op = session.delete_instance(None, person(app, 1), options=openmi.OperationOptions(timeout=0.2))
    assert slow.finished.wait(HANG_GUARD)  # the provider timed out with nobody reading
    assert slow.saw_cancel and slow.cancelled == [openmi.CancellationReason.TIMEOUT]
    r = op.get_instance()
    assert r.result == MIResult.FAILED and "timed out" in (r.error_message or "")
    op.close()


def test_the_timeout_fires_though_nobody_polls(app: openmi.Application, session: openmi.Session,
                                               server: openmi.Server) -> None:
    heard: list[openmi.CancellationReason] = []

    class Deaf:  # never looks at ctx.cancelled: only its cancel callback can stop it
        def delete_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> None:
            stop = threading.Event()
            ctx.register_cancel(lambda reason: (heard.append(reason), stop.set()))
            stop.wait(HANG_GUARD)

    server.register_provider("root/cimv2", "Sample_Person", Deaf())
    op = session.delete_instance(None, person(app, 1), options=openmi.OperationOptions(timeout=0.2))
    r = _in_thread(op.get_instance)
    op.close()
    assert r.result == MIResult.FAILED and "timed out" in (r.error_message or "")
    assert heard == [openmi.CancellationReason.TIMEOUT]


def test_progress_restarts_the_timeout(app: openmi.Application, session: openmi.Session,
                                       server: openmi.Server) -> None:
    seen: list[tuple[float, float]] = []

    class Patient:
        def delete_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> None:
            for _ in range(3):  # three times half the timeout: longer than the timeout in all
                while (ctx.seconds_left or 0.0) > 0.75:
                    time.sleep(0.005)
                before = ctx.seconds_left or 0.0
                ctx.write_progress("waiting", percent_complete=50)
                seen.append((before, ctx.seconds_left or 0.0))

    server.register_provider("root/cimv2", "Sample_Person", Patient())
    with session.delete_instance(None, person(app, 1), options=openmi.OperationOptions(timeout=1.5)) as op:
        r = op.get_instance()
    assert r.result == MIResult.OK, r.error_message
    assert len(seen) == 3 and all(after > before for before, after in seen)


def test_session_close_does_not_wait_for_each_operation_in_turn(app: openmi.Application,
                                                                server: openmi.Server) -> None:
    provs = []
    s = app.new_session(server=server)
    for i in range(4):
        name = f"Slow{i}"
        server.define_class("root/cimv2", openmi.Class(name, "Sample_Person"))
        prov = SlowProvider()
        server.register_provider("root/cimv2", name, prov)
        provs.append(prov)
        s.delete_instance(None, openmi.Instance(name, {"Id": 1}))
    for prov in provs:
        assert prov.started.wait(HANG_GUARD)
    _in_thread(s.close)
    assert all(p.cancelled == [openmi.CancellationReason.NONE] for p in provs)


# --- overlap on the bounded pool -----------------------------------------------------------------------


def test_twenty_slow_providers_run_side_by_side(app: openmi.Application, session: openmi.Session,
                                                server: openmi.Server) -> None:
    barrier = threading.Barrier(20, timeout=HANG_GUARD)  # breaks unless all 20 are inside at once

    class Meeting:
        def get_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> openmi.Instance:
            barrier.wait()
            return inst

    server.register_provider("root/cimv2", "Sample_Person", Meeting())
    ops = [session.get_instance(None, person(app, i)) for i in range(20)]
    results = [op.get_instance() for op in ops]  # read one after another, after all have started
    assert [r.result for r in results] == [MIResult.OK] * 20
    assert [r.instance["Id"] for r in results if r.instance is not None] == list(range(20))
    for op in ops:
        op.close()


def test_the_pool_is_bounded(server: openmi.Server) -> None:
    with pytest.raises(ValueError):
        openmi.Application(max_threads=0)
    with pytest.raises(TypeError):
        openmi.Application(max_threads="4")  # type: ignore[arg-type]
    lock = threading.Lock()
    running = [0, 0]  # now, peak
    gate = threading.Barrier(3, timeout=HANG_GUARD)

    class Counting:
        def get_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> openmi.Instance:
            with lock:
                running[0] += 1
                running[1] = max(running[1], running[0])
            try:
                if inst["Id"] < 3:
                    gate.wait()  # the first three meet: the pool does run three at once
                return inst
            finally:
                with lock:
                    running[0] -= 1

    server.register_provider("root/cimv2", "Sample_Person", Counting())
    with openmi.Application(max_threads=3) as app:
        assert app.max_threads == 3
        s = app.new_session(server=server)
        ops = [s.get_instance(None, person(app, i)) for i in range(12)]
        assert [op.get_instance().result for op in ops] == [MIResult.OK] * 12
        assert app._pool.threads <= 3
    assert running[1] == 3


# --- the bounded buffer ------------------------------------------------------------------------------


def test_a_lagging_reader_pauses_the_provider(app: openmi.Application, session: openmi.Session,
                                              server: openmi.Server) -> None:
    total = 1_000_000
    produced = [0]
    inst = openmi.Instance("Sample_Person", {"Id": 1})

    class Million:
        def enumerate_instances(self, ctx: openmi.Context, ns: str, cls: str, keys_only: bool
                                ) -> Iterator[openmi.Instance]:
            for _ in range(total):
                produced[0] += 1
                yield inst

    server.register_provider("root/cimv2", "Sample_Person", Million())
    ahead = BUFFER + CHUNK  # the most a producer may run ahead of its reader
    op = session.enumerate_instances(None, "Sample_Person")
    _until(lambda: not op._busy)  # nobody reads: the producer fills the buffer and pauses
    assert 0 < produced[0] <= ahead
    read = 0
    worst = 0
    while True:
        r = op.get_instance()
        if not r.more_results:
            break
        read += 1
        if read % 100_000 == 0:  # lag now and then: the producer pauses instead of running on
            _until(lambda: not op._busy or op._done)
        worst = max(worst, produced[0] - read)
    op.close()
    assert r.result == MIResult.OK and read == total
    assert worst <= ahead


# --- REPORT_OPERATION_STARTED and MANUAL_ACK_RESULTS --------------------------------------------------


def test_report_operation_started(app: openmi.Application, session: openmi.Session, slow: SlowProvider) -> None:
    op = session.get_instance(None, person(app, 1), flags=OperationFlags.REPORT_OPERATION_STARTED)
    first = op.get_instance()  # comes while the provider is still running
    assert first == (None, True, MIResult.OK, None, None)
    assert not slow.finished.is_set()
    slow.release.set()
    last = op.get_instance()
    assert last.result == MIResult.OK and not last.more_results and last.instance is not None
    op.close()
    got: list[tuple[Any, bool]] = []
    done = threading.Event()

    def cb(op: Any, ctx: Any, inst: Any, more: bool, result: MIResult, *rest: Any) -> None:
        got.append((inst, more))
        if not more:
            done.set()

    with session.enumerate_instances(None, "Sample_Person", flags=OperationFlags.REPORT_OPERATION_STARTED,
                                     callbacks=openmi.OperationCallbacks(instance_result=cb)):
        assert done.wait(HANG_GUARD)
    assert got[0] == (None, True)
    assert got[-1] == (None, False)


def test_manual_ack_holds_the_next_result(app: openmi.Application, session: openmi.Session) -> None:
    for i in range(3):
        session.create(person(app, i))
    calls: list[tuple[Any, bool, MIResult]] = []
    acks: list[Callable[[], MIResult]] = []
    arrived = threading.Semaphore(0)

    def cb(op: Any, ctx: Any, inst: Any, more: bool, result: MIResult, msg: Any, details: Any,
           result_acknowledgement: Callable[[], MIResult]) -> None:
        calls.append((inst, more, result))
        acks.append(result_acknowledgement)
        arrived.release()

    op = session.enumerate_instances(None, "Sample_Person", flags=OperationFlags.MANUAL_ACK_RESULTS,
                                     callbacks=openmi.OperationCallbacks(instance_result=cb))
    for expected in range(4):  # three instances, then the final result
        assert arrived.acquire(timeout=HANG_GUARD)
        time.sleep(0.05)  # room for a wrongly delivered next result to show up
        assert len(calls) == expected + 1
        assert acks[-1]() == MIResult.OK
        assert acks[-1]() == MIResult.OK  # acknowledging twice changes nothing
    assert [c[1] for c in calls] == [True, True, True, False]
    assert calls[-1][2] == MIResult.OK
    op.close()
    assert op._wait_settled(HANG_GUARD)


def test_automatic_ack_passes_no_acknowledgement(app: openmi.Application, session: openmi.Session) -> None:
    got: list[int] = []
    done = threading.Event()

    def cb(*args: Any) -> None:
        got.append(len(args))
        done.set()

    with session.test_connection(callbacks=openmi.OperationCallbacks(instance_result=cb)):
        assert done.wait(HANG_GUARD)
    assert got == [7]


# --- remote operations: slow loopback peers ----------------------------------------------------------------


class Peer:
    """A tiny WS-Man peer on a loopback port: each POST is parsed with the codec and ``answer`` decides
    (it may block; None hangs up without a reply)."""

    def __init__(self, answer: Callable[[wsman.Request], wsman.Response | None]) -> None:
        self.answer = answer
        self.requests: list[wsman.Request] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.conns: list[socket.socket] = []
        t = threading.Thread(target=self._accept, name="test-peer-accept", daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name="test-peer", daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            while True:
                line = f.readline()
                if not line:
                    return
                length = 0
                ctype = None
                while (h := f.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = h.decode("latin-1").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                    elif name.strip().lower() == "content-type":
                        ctype = value.strip()
                req = wsman.parse_request(f.read(length), ctype)
                self.requests.append(req)
                resp = self.answer(req)
                if resp is None:
                    return
                data = wsman.build_response(req, resp)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(data) + data)

    def close(self) -> None:
        self.stopping.set()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(HANG_GUARD)
        self.sock.close()

    def session(self, app: openmi.Application, **kw: Any) -> openmi.Session:
        return app.new_session("127.0.0.1", "WINRM", DestinationOptions("http", self.port, type_results=False, **kw))


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for p in made:
        p.close()


def _identify_at(barrier: threading.Barrier) -> Callable[[wsman.Request], wsman.Response | None]:
    def answer(req: wsman.Request) -> wsman.Response | None:
        barrier.wait()  # breaks unless every host has a request in flight at once
        return wsman.IdentifyResponse(product_vendor="slow")
    return answer


def test_twenty_slow_hosts_side_by_side(peers: list[Peer]) -> None:
    barrier = threading.Barrier(20, timeout=HANG_GUARD)
    peers.extend(Peer(_identify_at(barrier)) for _ in range(20))
    with openmi.Application() as app:
        ops = [p.session(app).test_connection() for p in peers]
        results = [op.get_instance().result for op in ops]
    assert results == [MIResult.OK] * 20


def test_twenty_slow_hosts_from_asyncio_without_threads(peers: list[Peer]) -> None:
    barrier = threading.Barrier(20, timeout=HANG_GUARD)
    peers.extend(Peer(_identify_at(barrier)) for _ in range(20))
    with openmi.Application() as app:
        sessions = [p.session(app) for p in peers]

        async def main() -> list[MIResult]:
            ops = [s.test_connection() for s in sessions]
            results = await asyncio.gather(*(op.get_instance_async() for op in ops))
            return [r.result for r in results]

        assert asyncio.run(main()) == [MIResult.OK] * 20
        assert app._pool.threads == 0  # everything ran on the event loop


def _held_get(peer_got: threading.Event, hold: threading.Event) -> Callable[[wsman.Request], wsman.Response | None]:
    def answer(req: wsman.Request) -> wsman.Response | None:
        peer_got.set()
        hold.wait(HANG_GUARD)
        return None
    return answer


def test_cancel_abandons_a_remote_request_in_flight(peers: list[Peer]) -> None:
    got, hold = threading.Event(), threading.Event()
    peers.append(Peer(_held_get(got, hold)))
    with openmi.Application() as app:
        op = peers[0].session(app).get_instance(None, openmi.Instance("Sample_Person", {"Id": 1}))
        assert got.wait(HANG_GUARD)  # the request is on the wire; the peer will not answer
        op.cancel()
        r = _in_thread(op.get_instance)
        hold.set()
    assert r.result == MIResult.FAILED and "cancel" in (r.error_message or "")


def test_a_timeout_abandons_a_remote_request_in_flight(peers: list[Peer]) -> None:
    got, hold = threading.Event(), threading.Event()
    peers.append(Peer(_held_get(got, hold)))
    with openmi.Application() as app:
        s = peers[0].session(app)  # the connection itself would wait 60 s for an answer
        op = s.get_instance(None, openmi.Instance("Sample_Person", {"Id": 1}),
                            options=openmi.OperationOptions(timeout=0.3))
        r = _in_thread(op.get_instance)
        hold.set()
        op.close()
    assert got.is_set()
    assert r.result == MIResult.FAILED and "timed out" in (r.error_message or "")


def test_cancel_from_asyncio_abandons_the_request(peers: list[Peer]) -> None:
    got, hold = threading.Event(), threading.Event()
    peers.append(Peer(_held_get(got, hold)))
    with openmi.Application() as app:
        s = peers[0].session(app)

        async def main() -> openmi.InstanceResult:
            op = s.get_instance(None, openmi.Instance("Sample_Person", {"Id": 1}))
            while not got.is_set():
                await asyncio.sleep(0.005)
            op.cancel()
            return await asyncio.wait_for(op.get_instance_async(), HANG_GUARD)

        r = asyncio.run(main())
        hold.set()
    assert r.result == MIResult.FAILED and "cancel" in (r.error_message or "")


def _endless(pulls: list[int], pulled: threading.Event, hold: threading.Event | None,
             released: list[str]) -> Callable[[wsman.Request], wsman.Response | None]:
    """An enumeration without end, ten instances per answer; Pulls hang while ``hold`` is set up."""
    def answer(req: wsman.Request) -> wsman.Response | None:
        items = [openmi.Instance("Sample_Person", {"Id": i}) for i in range(10)]
        if isinstance(req, wsman.EnumerateRequest):
            return wsman.EnumerateResponse(context="uuid:endless", items=items)
        if isinstance(req, wsman.PullRequest):
            pulls.append(1)
            pulled.set()
            if hold is not None:
                hold.wait(HANG_GUARD)
                return None
            return wsman.PullResponse(context="uuid:endless", items=items)
        if isinstance(req, wsman.ReleaseRequest):
            released.append(req.context or "")
            return wsman.ReleaseResponse()
        return None
    return answer


def test_cancel_of_a_remote_enumeration_sends_release(peers: list[Peer]) -> None:
    pulls: list[int] = []
    released: list[str] = []
    pulled, hold = threading.Event(), threading.Event()
    peers.append(Peer(_endless(pulls, pulled, hold, released)))
    with openmi.Application() as app:
        op = peers[0].session(app, max_elements=10).enumerate_instances(None, "Sample_Person")
        assert op.get_instance().instance is not None
        assert pulled.wait(HANG_GUARD)  # the producer went on with a Pull that hangs
        op.cancel()

        def drain() -> openmi.InstanceResult:
            while (r := op.get_instance()).more_results:
                pass
            return r

        r = _in_thread(drain)
        assert r.result == MIResult.FAILED
        assert op._wait_settled(HANG_GUARD)
        hold.set()
    assert released == ["uuid:endless"]


def test_a_lagging_reader_pauses_the_pull_loop(peers: list[Peer]) -> None:
    pulls: list[int] = []
    released: list[str] = []
    pulled = threading.Event()
    peers.append(Peer(_endless(pulls, pulled, None, released)))
    with openmi.Application() as app:
        op = peers[0].session(app, max_elements=10).enumerate_instances(None, "Sample_Person")
        read = 0
        for _ in range(3):
            _until(lambda: not op._busy)  # the buffer is full: no more Pulls until the reader drains it
            sent = len(pulls)
            # the buffer, the page being handed on, and one page more on its way (the next Pull goes out
            # before a page is parsed: client/remote.py PULL_AHEAD)
            assert 10 * (sent + 1) <= read + BUFFER + 20
            for _ in range(BUFFER):
                assert op.get_instance().more_results
                read += 1
        op.close()
        assert op._wait_settled(HANG_GUARD)
    assert released == ["uuid:endless"]

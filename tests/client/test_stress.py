"""Thread safety under load (issue 9 §4): 16 threads run mixed operations on one Application — instance
operations, enumerations read every way, slow providers cancelled and closed unread, classes and
namespaces defined and deleted, sessions closed under other threads' feet — for OPENMI_STRESS_SECONDS
(30 by default, as issue 9 asks). No exception, no deadlock, every callback's final result exactly once,
and afterwards a repository with no instance of a class or namespace that no longer exists."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openmi
from openmi import MIResult, MIType
from tests.conftest import person_class

THREADS = 16
SECONDS = float(os.environ.get("OPENMI_STRESS_SECONDS", "30"))
NAMESPACES = [f"root/stress{k}" for k in range(3)]

OK = MIResult.OK
GONE = {MIResult.INVALID_NAMESPACE, MIResult.INVALID_CLASS}  # someone deleted it meanwhile
CLOSED = MIResult.INVALID_PARAMETER  # the session was closed by another thread before the operation started
CANCELLED = MIResult.FAILED  # ... or while it ran (closing a session cancels what runs in it)


class Slow:
    """Yields a few instances slowly and stops when cancelled."""

    def enumerate_instances(self, ctx: openmi.Context, ns: str, cls: str, keys_only: bool) -> Iterator[Any]:
        for i in range(5):
            if ctx.cancelled:
                return
            time.sleep(0.002)
            yield openmi.Instance("Stress_Slow", {"Id": i})

    def get_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> openmi.Instance:
        time.sleep(0.002)
        return inst


class Stress:
    def __init__(self, server: openmi.Server, app: openmi.Application) -> None:
        self.server = server
        self.app = app
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.shared = app.new_session(server=server)
        self.finals: dict[int, int] = {}  # callback operation -> final results delivered
        self.callback_ops: list[openmi.Operation] = []
        self.handoff: list[openmi.Operation] = []  # operations another thread may close
        self.deadline = time.monotonic() + SECONDS
        self.counts: dict[str, int] = {}

    def fail(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def expect(self, what: str, got: MIResult, allowed: set[MIResult]) -> None:
        if got not in allowed:
            self.fail(f"{what}: {got!r} not in {sorted(allowed)}")

    def drain(self, op: openmi.Operation, what: str, allowed: set[MIResult]) -> None:
        """Read to the final result, which must come exactly once (then repeat)."""
        reader = op.get_class if op.kind == "class" else op.get_instance
        while True:
            r = reader()
            if not r.more_results:
                break
        if r.result not in allowed:
            self.fail(f"{what}: {r.result!r} ({r.error_message}) not in {sorted(allowed)}")
        again = reader()
        if again.more_results or again.result != r.result:
            self.fail(f"{what}: the final result changed on a second read")

    # --- the operations --------------------------------------------------------------------------
    def instance_ops(self, rng: random.Random, s: openmi.Session) -> None:
        inst = openmi.Instance("Sample_Person", {"Id": rng.randrange(200), "Name": "x"})
        choice = rng.randrange(4)
        if choice == 0:
            with s.create_instance(None, inst) as op:
                self.drain(op, "create", {OK, MIResult.ALREADY_EXISTS, CLOSED, CANCELLED})
        elif choice == 1:
            with s.get_instance(None, inst.keys_only()) as op:
                self.drain(op, "get", {OK, MIResult.NOT_FOUND, CLOSED, CANCELLED})
        elif choice == 2:
            with s.delete_instance(None, inst.keys_only()) as op:
                self.drain(op, "delete", {OK, MIResult.NOT_FOUND, CLOSED, CANCELLED})
        else:
            inst["Name"] = "y"
            with s.modify_instance(None, inst) as op:
                self.drain(op, "modify", {OK, MIResult.NOT_FOUND, CLOSED, CANCELLED})

    def enumerations(self, rng: random.Random, s: openmi.Session) -> None:
        cls = rng.choice(["Sample_Person", "Stress_Slow"])
        how = rng.randrange(4)
        if how == 0:
            with s.enumerate_instances(None, cls) as op:
                self.drain(op, "enumerate", {OK, CLOSED, CANCELLED})
        elif how == 1:  # read a little, then close it unfinished
            op = s.enumerate_instances(None, cls)
            op.get_instance()
            op.close()
        elif how == 2:  # callbacks: the final result exactly once, whatever happens
            def cb(op: openmi.Operation, ctx: Any, inst: Any, more: bool, result: MIResult, *rest: Any) -> None:
                if not more:
                    with self.lock:
                        self.finals[id(op)] = self.finals.get(id(op), 0) + 1
            op = s.enumerate_instances(None, cls, callbacks=openmi.OperationCallbacks(instance_result=cb))
            with self.lock:
                self.callback_ops.append(op)
                self.finals.setdefault(id(op), 0)
            if rng.random() < 0.5:
                op.cancel()
            op.close()
        else:  # hand it to another thread to close while this one reads
            op = s.enumerate_instances(None, "Stress_Slow")
            with self.lock:
                self.handoff.append(op)
            self.drain(op, "enumerate (closed by another thread)", {OK, CLOSED, CANCELLED})
            op.close()

    def close_someone_elses(self, rng: random.Random) -> None:
        with self.lock:
            op = self.handoff.pop(rng.randrange(len(self.handoff))) if self.handoff else None
        if op is not None:
            op.close()

    def asyncio_ops(self, rng: random.Random, s: openmi.Session) -> None:
        async def main() -> None:
            async for _ in s.enumerate_instances(None, "Stress_Slow"):
                pass
            op = s.get_instance(None, openmi.Instance("Stress_Slow", {"Id": 1}))
            with self.lock:
                self.handoff.append(op)  # another thread may close it while this await waits
            r = await op.get_instance_async()
            self.expect("async get", r.result, {OK, CLOSED, CANCELLED})
            op.close()

        try:
            asyncio.run(main())
        except openmi.MIError as exc:
            self.expect("async enumerate", exc.result, {CLOSED, CANCELLED})

    def schema_ops(self, rng: random.Random, s: openmi.Session, me: int) -> None:
        ns = rng.choice(NAMESPACES)
        srv = self.server
        name = f"Tmp_{me}_{rng.randrange(3)}"
        step = rng.randrange(5)
        try:
            if step == 0:
                srv.create_namespace(ns)
            elif step == 1:
                srv.define_class(ns, openmi.Class(name, properties=[openmi.Property("K", MIType.UINT32, key=True)]))
            elif step == 2:
                with s.create_instance(ns, openmi.Instance(name, {"K": rng.randrange(3)})) as op:
                    self.drain(op, "create in a temporary class",
                               {OK, MIResult.ALREADY_EXISTS, CLOSED, CANCELLED} | GONE)
            elif step == 3:
                for inst in s.enumerate(name, namespace=ns):
                    with s.delete_instance(ns, inst) as op:
                        self.drain(op, "delete in a temporary class",
                                   {OK, MIResult.NOT_FOUND, CLOSED, CANCELLED} | GONE)
                srv.delete_class(ns, name)
            else:
                srv.delete_namespace(ns)
        except openmi.MIError as exc:
            allowed = GONE | {MIResult.CLASS_HAS_INSTANCES, MIResult.NAMESPACE_NOT_EMPTY, MIResult.ALREADY_EXISTS,
                              CLOSED, CANCELLED}
            self.expect(f"schema step {step}", exc.result, allowed)

    # --- a worker ---------------------------------------------------------------------------------
    def run(self, me: int) -> None:
        rng = random.Random(me)
        own = self.app.new_session(server=self.server)
        try:
            while time.monotonic() < self.deadline:
                s = self.shared if rng.random() < 0.3 else own
                pick = rng.randrange(100)
                if pick < 35:
                    self.instance_ops(rng, s)
                elif pick < 60:
                    self.enumerations(rng, s)
                elif pick < 68:
                    self.close_someone_elses(rng)
                elif pick < 75:
                    self.asyncio_ops(rng, s)
                elif pick < 92:
                    self.schema_ops(rng, s, me)
                elif pick < 96:
                    own.close()
                    own = self.app.new_session(server=self.server)
                else:
                    old, self.shared = self.shared, self.app.new_session(server=self.server)
                    old.close()  # others may be using it right now
                key = ("instance", "enumerate", "handoff", "asyncio", "schema", "close")[
                    0 if pick < 35 else 1 if pick < 60 else 2 if pick < 68 else 3 if pick < 75 else 4 if pick < 92
                    else 5]
                with self.lock:
                    self.counts[key] = self.counts.get(key, 0) + 1
        except Exception as exc:  # anything escaping is a bug
            import traceback

            self.fail(f"thread {me}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        finally:
            own.close()


def test_sixteen_threads_of_mixed_operations(tmp_path: Path) -> None:
    path = tmp_path / "stress.db"
    server = openmi.Server(path)
    server.define_class("root/cimv2", person_class())
    server.define_class("root/cimv2", openmi.Class("Stress_Slow", properties=[
        openmi.Property("Id", MIType.UINT32, key=True)]))
    server.register_provider("root/cimv2", "Stress_Slow", Slow())
    app = openmi.Application(max_threads=8)
    stress = Stress(server, app)
    threads = [threading.Thread(target=stress.run, args=(i,), name=f"stress-{i}", daemon=True)
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 60)
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"deadlock: {hung} never finished"
    app.close()
    for op in stress.callback_ops:
        assert op._wait_settled(30)
    assert not stress.errors, "\n".join(stress.errors[:20])
    wrong = {k: v for k, v in stress.finals.items() if v != 1}
    assert not wrong, f"{len(wrong)} callback operations got their final result {set(wrong.values())} times"
    assert len(stress.callback_ops) > 0 and all(stress.counts.get(k) for k in
                                                ("instance", "enumerate", "handoff", "asyncio", "schema", "close"))
    # no resurrected namespace: what the registry lists is exactly what resolves
    for ns in NAMESPACES:
        listed = ns in server.namespaces
        try:
            server.namespace(ns)
            resolves = True
        except openmi.MIError:
            resolves = False
        assert listed == resolves, ns
    classes = {(ns.lower(), c.lower()) for ns in server.namespaces for c in server.classes(ns)}
    server.close()
    # and no instance row left behind for a class or namespace that is gone
    with sqlite3.connect(path) as db:
        rows = set(db.execute("SELECT DISTINCT ns, cls FROM instances"))
    assert rows <= classes, rows - classes

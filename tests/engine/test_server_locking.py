"""The engine's registry under races (issue 9 §4), each race forced into its worst interleaving: a
namespace lookup that straddles delete_namespace, and a create_instance whose insert straddles
delete_class. A hook pauses the first thread inside the critical step and lets the second one try to
run to its end meanwhile; whatever the interleaving, the outcome must be consistent."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import openmi
from openmi import MIResult, MIType

PAUSE = 0.3  # how long the first thread lets the other one try to get ahead (not a timed assertion)


class _PausingDict(dict[str, Any]):
    """The server's namespace table, pausing the first lookup of ``name`` until ``other`` is done."""

    def __init__(self, data: dict[str, Any], name: str, inside: threading.Event, other_done: threading.Event):
        super().__init__(data)
        self.name, self.inside, self.other_done = name, inside, other_done

    def get(self, key: str, default: Any = None) -> Any:
        value = super().get(key, default)
        if key == self.name and not self.inside.is_set():
            self.inside.set()
            self.other_done.wait(PAUSE)
        return value


def test_a_lookup_racing_delete_namespace_does_not_resurrect_it() -> None:
    with openmi.Server(":memory:") as srv:
        srv.create_namespace("root/doomed")
        inside, deleted = threading.Event(), threading.Event()
        srv._namespaces = _PausingDict(srv._namespaces, "root/doomed", inside, deleted)

        def delete() -> None:
            inside.wait(10)
            srv.delete_namespace("root/doomed")
            deleted.set()

        t = threading.Thread(target=delete, name="test-deleter")
        t.start()
        try:
            srv.namespace("root/doomed")  # straddles the deletion
        except openmi.MIError as exc:
            assert exc.result == MIResult.INVALID_NAMESPACE
        t.join(10)
        assert deleted.is_set()
        for _ in range(2):  # neither the cache nor the registry brings it back
            try:
                srv.namespace("root/doomed")
                raise AssertionError("the deleted namespace resolves again")
            except openmi.MIError as exc:
                assert exc.result == MIResult.INVALID_NAMESPACE
        assert "root/doomed" not in srv.namespaces


def test_create_instance_racing_delete_class_leaves_no_orphan(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    srv = openmi.Server(path)
    srv.define_class("root/cimv2", openmi.Class("Race_Thing", properties=[
        openmi.Property("K", MIType.UINT32, key=True)]))
    inside, deleted = threading.Event(), threading.Event()
    hub = srv.indications
    watching = hub.watching

    def pausing(*args: Any) -> Any:  # create_instance asks this just before it writes
        if not inside.is_set():
            inside.set()
            deleted.wait(PAUSE)  # let delete_class try to finish first
        return watching(*args)

    hub.watching = pausing  # type: ignore[method-assign]
    outcome: list[MIResult] = []

    def delete() -> None:
        inside.wait(10)
        try:
            srv.delete_class("root/cimv2", "Race_Thing")
            outcome.append(MIResult.OK)
        except openmi.MIError as exc:
            outcome.append(exc.result)
        deleted.set()

    t = threading.Thread(target=delete, name="test-deleter")
    t.start()
    with openmi.Application() as app:
        s = app.new_session(server=srv)
        with s.create_instance("root/cimv2", openmi.Instance("Race_Thing", {"K": 1})) as op:
            created = op.get_instance().result
    t.join(10)
    # either the instance came first (and the class keeps it) or the deletion did (and the create failed)
    assert (created, outcome[0]) in ((MIResult.OK, MIResult.CLASS_HAS_INSTANCES), (MIResult.INVALID_CLASS, MIResult.OK))
    srv.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT cls FROM instances").fetchall()
        classes = {r[0] for r in db.execute("SELECT name FROM classes")}
    assert all(cls in classes for (cls,) in rows), "an instance row outlived its class"

"""Local-session speed against pywbem_mock, measured in the same run on the same class and count.

openmi's repository is a SQLite file (persistent); pywbem_mock's is in memory. Prints per-operation
times and the ratio (how many times faster openmi is). Targets (issue 15): delete ≥ 3×, create ≥ 10×,
get ≥ 15×, enumerate per instance ≥ 50×. Wall time; on a shared, loaded machine the CPU columns (the
process's own CPU time for the same loops) say more, as waiting for a core hits both sides unevenly.

    .venv/bin/python bench/bench_local.py [N] [ROUNDS]
"""

from __future__ import annotations

import gc
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pywbem
import pywbem_mock

import openmi
from openmi import MIFlag, MIType

MOF = """
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
class Sample_Person { [Key] uint32 Id; string Name; uint32 Age; string Email; };
"""


def timed(out: dict[str, float], op: str, n: int, fn: Callable[[], object]) -> None:
    """Record ``fn``'s wall time and CPU time (this process's) per item as ``out[op]``, ``out[op + "/cpu"]``."""
    gc.collect()
    c0 = time.process_time()
    t0 = time.perf_counter()
    fn()
    out[op] = (time.perf_counter() - t0) / n
    out[op + "/cpu"] = (time.process_time() - c0) / n


def run_openmi(n: int, tmp: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    with openmi.Server(tmp / "bench.db") as srv, openmi.Application() as app:
        srv.define_class("root/cimv2", openmi.Class("Sample_Person", properties=[
            openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Name", MIType.STRING),
            openmi.Property("Age", MIType.UINT32), openmi.Property("Email", MIType.STRING)]))
        s = app.new_session(server=srv)
        insts = []
        for i in range(n):
            inst = app.new_instance("Sample_Person")
            inst.add_element("Id", i, MIType.UINT32, MIFlag.KEY)
            inst.add_element("Name", f"name{i}", MIType.STRING)
            inst.add_element("Age", 30, MIType.UINT32)
            inst.add_element("Email", f"p{i}@example.org", MIType.STRING)
            insts.append(inst)
        keys = [i.keys_only() for i in insts]

        def create() -> None:
            for inst in insts:
                with s.create_instance("root/cimv2", inst) as op:
                    assert op.get_instance().result == 0

        def get() -> None:
            for k in keys:
                with s.get_instance("root/cimv2", k) as op:
                    assert op.get_instance().result == 0

        def enumerate_() -> None:
            count = 0
            with s.enumerate_instances("root/cimv2", "Sample_Person") as op:
                while True:
                    r = op.get_instance()
                    count += r.instance is not None
                    if not r.more_results:
                        break
            assert count == n

        def delete() -> None:
            for k in keys:
                with s.delete_instance("root/cimv2", k) as op:
                    assert op.get_instance().result == 0

        timed(out, "create", n, create)
        timed(out, "get", n, get)
        timed(out, "enumerate", n, enumerate_)
        timed(out, "delete", n, delete)
    return out


def run_pywbem(n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    conn = pywbem_mock.FakedWBEMConnection(default_namespace="root/cimv2")
    conn.compile_mof_string(MOF, namespace="root/cimv2")
    insts = [pywbem.CIMInstance("Sample_Person", properties={
        "Id": pywbem.Uint32(i), "Name": f"name{i}", "Age": pywbem.Uint32(30), "Email": f"p{i}@example.org"})
        for i in range(n)]
    paths: list[pywbem.CIMInstanceName] = []
    timed(out, "create", n, lambda: paths.extend(conn.CreateInstance(i) for i in insts))
    timed(out, "get", n, lambda: [conn.GetInstance(p) for p in paths])
    timed(out, "enumerate", n, lambda: conn.EnumerateInstances("Sample_Person"))
    timed(out, "delete", n, lambda: [conn.DeleteInstance(p) for p in paths])
    return out


def run_sqlite(n: int, tmp: Path) -> dict[str, float]:
    """SQLite alone, as openmi's repository sets it up (a WAL file, synchronous=NORMAL, the table's layout): a
    keyed read, and a keyed delete committed on its own, in a loop: the floor under openmi's get and delete."""
    out: dict[str, float] = {}
    db = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE instances(ns TEXT NOT NULL, cls TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, "
               "PRIMARY KEY(ns, cls, key)) WITHOUT ROWID")
    keys = [f"{i}" for i in range(n)]
    with db:
        db.executemany("INSERT INTO instances VALUES('root/cimv2', 'sample_person', ?, ?)",
                       [(k, f'{{"Id":{k},"Name":"name{k}","Age":30,"Email":"p{k}@example.org"}}') for k in keys])

    def get() -> None:
        for k in keys:
            db.execute("SELECT data FROM instances WHERE ns=? AND cls=? AND key=?",
                       ("root/cimv2", "sample_person", k)).fetchone()

    def delete() -> None:
        for k in keys:
            db.execute("DELETE FROM instances WHERE ns=? AND cls=? AND key=?", ("root/cimv2", "sample_person", k))

    timed(out, "get", n, get)
    timed(out, "delete", n, delete)
    db.close()
    return out


TARGETS = {"create": 10.0, "get": 15.0, "enumerate": 50.0, "delete": 3.0}


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {op: min(r[op] for r in runs) for op in runs[0]}


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    ours_runs, theirs_runs, floor_runs = [], [], []
    for _ in range(rounds):  # interleaved, best of each, so machine noise hits both alike
        with tempfile.TemporaryDirectory() as tmp:
            ours_runs.append(run_openmi(n, Path(tmp)))
            floor_runs.append(run_sqlite(n, Path(tmp)))
        theirs_runs.append(run_pywbem(n))
    ours, theirs, floor = best(ours_runs), best(theirs_runs), best(floor_runs)
    print(f"local session vs pywbem_mock, {n} instances, best of {rounds} rounds "
          f"(openmi: SQLite file; pywbem_mock: in memory)")
    print(f"{'operation':<12}{'openmi µs':>12}{'pywbem_mock µs':>16}{'ratio':>9}{'target':>8}"
          f"{'CPU: openmi':>14}{'pywbem_mock':>13}{'ratio':>8}")
    for op in ("create", "get", "enumerate", "delete"):
        ratio = theirs[op] / ours[op]
        cpu = op + "/cpu"
        mark = "ok" if ratio >= TARGETS[op] else "MISSED"
        print(f"{op:<12}{ours[op] * 1e6:>12.1f}{theirs[op] * 1e6:>16.1f}{ratio:>8.1f}×{TARGETS[op]:>7.0f}× {mark:<6}"
              f"{ours[cpu] * 1e6:>8.1f}{theirs[cpu] * 1e6:>13.1f}{theirs[cpu] / ours[cpu]:>7.1f}×")
    print("SQLite alone (the same file settings and table, in a loop): the floor under openmi's own figures")
    for op, what in (("get", "keyed read"), ("delete", "keyed delete, each committed")):
        need = theirs[op] / TARGETS[op]
        left = "less than SQLite alone" if need < floor[op] else f"{(need - floor[op]) * 1e6:.1f} µs left for openmi"
        print(f"  {what:<30}{floor[op] * 1e6:>8.1f} µs; openmi adds {(ours[op] - floor[op]) * 1e6:5.1f} µs; "
              f"the {TARGETS[op]:.0f}× target needs ≤ {need * 1e6:.1f} µs in all ({left})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Associators and references: the association index against a GetInstance, and against pywbem_mock.

1. Scale: a repository file holding N association instances (default 1,000,000: B_Link between
   N/10 B_Node instances, each node linked to its next 10) plus one B_Probe linked to one node. Times
   AssociatorInstances and ReferenceInstances of the probe (1 result each) against a GetInstance of the
   probe, through the same local session, and AssociatorInstances of a busy node (20 far ends) per result.
   Target (issue 12): associators of one instance ≤ 3× a GetInstance — the index, not a scan.
2. Peer: the same Associators and References on a few-thousand-instance model (M nodes, 3 links each) in
   openmi and pywbem_mock (which scans every instance per request). Target: ≥ 10× faster.

    .venv/bin/python bench/bench_assoc.py [N] [M] [REPEAT]
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pywbem
import pywbem_mock

import openmi
from openmi.cim import requests as rq

MOF = """
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
Qualifier Association : boolean = false, Scope(association), Flavor(DisableOverride, ToSubclass);
class B_Node { [Key] uint32 Id; string Name; };
class B_Probe { [Key] string Name; };
[Association] class B_Link { [Key] B_Node REF Left; [Key] B_Node REF Right; uint32 Weight; };
[Association] class B_ProbeOf { [Key] B_Probe REF Probe; [Key] B_Node REF Node; };
"""


def best_of(repeat: int, fn: Callable[[], object], n: int = 1) -> float:
    """Seconds per call: the best of ``repeat`` timings of ``n`` calls."""
    out = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t0) / n)
    return min(out)


def node_ref(i: int) -> openmi.Instance:
    return openmi.Instance("B_Node", {"Id": i})


def populate(srv: openmi.Server, nodes: int, links: int) -> None:
    """``links`` B_Link instances: node i links to i+1 … i+links/nodes (mod nodes), through the engine's
    create path in one transaction (what a MOF load does)."""
    per = max(1, links // nodes)
    t0 = time.perf_counter()
    with srv.repository.transaction():
        for i in range(nodes):
            for _ in srv.execute(rq.CreateInstance("root/cimv2", instance=openmi.Instance(
                    "B_Node", {"Id": i, "Name": f"node{i}"}))):
                pass
        done = 0
        for j in range(1, per + 1):
            for i in range(nodes):
                if done == links:
                    break
                link = openmi.Instance("B_Link", {"Left": node_ref(i), "Right": node_ref((i + j) % nodes),
                                                  "Weight": j})
                for _ in srv.execute(rq.CreateInstance("root/cimv2", instance=link)):
                    pass
                done += 1
                if done % 100_000 == 0:
                    print(f"  {done:,} association instances ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        for _ in srv.execute(rq.CreateInstance("root/cimv2", instance=openmi.Instance("B_Probe", {"Name": "probe"}))):
            pass
        for _ in srv.execute(rq.CreateInstance("root/cimv2", instance=openmi.Instance(
                "B_ProbeOf", {"Probe": openmi.Instance("B_Probe", {"Name": "probe"}), "Node": node_ref(0)}))):
            pass


def scale(n: int, repeat: int) -> bool:
    nodes = max(2, n // 10)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "assoc.db"
        with openmi.Server(path) as srv:
            srv.compile_mof(MOF)
            t0 = time.perf_counter()
            populate(srv, nodes, n)
            load = time.perf_counter() - t0
        with openmi.Server(path) as srv, openmi.Application() as app:  # reopened: nothing cached from the load
            s = app.new_session(server=srv)
            probe = openmi.Instance("B_Probe", {"Name": "probe"})
            busy = node_ref(nodes // 2)

            def get() -> None:
                with s.get_instance("root/cimv2", probe) as op:
                    assert op.get_instance().result == 0

            def associators(src: openmi.Instance, want: int) -> Callable[[], None]:
                def run() -> None:
                    with s.associator_instances("root/cimv2", src) as op:
                        got = list(op)
                    assert len(got) == want, len(got)
                return run

            def references() -> None:
                with s.reference_instances("root/cimv2", probe) as op:
                    assert len(list(op)) == 1

            calls = 2000
            t_get = best_of(repeat, get, calls)
            t_assoc = best_of(repeat, associators(probe, 1), calls)
            t_refs = best_of(repeat, references, calls)
            per = max(1, n // nodes)
            t_busy = best_of(repeat, associators(busy, 2 * per), calls // 10)
    ratio = t_assoc / t_get
    print(f"scale: {n:,} B_Link association instances among {nodes:,} nodes in a SQLite file "
          f"(loaded in {load:.0f} s, {n / load:,.0f}/s with the index)")
    print(f"  GetInstance of the probe            {t_get * 1e6:9.1f} µs")
    print(f"  AssociatorInstances of the probe    {t_assoc * 1e6:9.1f} µs  = {ratio:.2f}× GetInstance "
          f"(target ≤ 3×: {'ok' if ratio <= 3 else 'MISSED'})")
    print(f"  ReferenceInstances of the probe     {t_refs * 1e6:9.1f} µs  = {t_refs / t_get:.2f}× GetInstance")
    print(f"  AssociatorInstances of a busy node  {t_busy * 1e6:9.1f} µs  ({2 * per} results, "
          f"{t_busy / (2 * per) * 1e6:.1f} µs each = {t_busy / (2 * per) / t_get:.2f}× GetInstance per result)")
    return ratio <= 3


def peer(m: int, repeat: int) -> bool:
    links_per = 3
    sources = list(range(0, m, max(1, m // 10)))  # 10 sources spread over the model
    # openmi: a memory repository, like pywbem_mock's
    with openmi.Server(":memory:") as srv, openmi.Application() as app:
        srv.compile_mof(MOF)
        populate(srv, m, m * links_per)
        s = app.new_session(server=srv)
        want = {i: len(s.associators(node_ref(i))) for i in sources}

        def ours_assoc() -> None:
            for i in sources:
                with s.associator_instances("root/cimv2", node_ref(i)) as op:
                    assert len(list(op)) == want[i]

        def ours_refs() -> None:
            for i in sources:
                with s.reference_instances("root/cimv2", node_ref(i)) as op:
                    assert len(list(op)) == 2 * links_per + (i == 0)

        o_assoc = best_of(repeat, ours_assoc) / len(sources)
        o_refs = best_of(repeat, ours_refs) / len(sources)

    conn = pywbem_mock.FakedWBEMConnection(default_namespace="root/cimv2")
    conn.compile_mof_string(MOF, namespace="root/cimv2")

    def path(i: int) -> pywbem.CIMInstanceName:
        return pywbem.CIMInstanceName("B_Node", keybindings={"Id": pywbem.Uint32(i)}, namespace="root/cimv2")

    objs: list[pywbem.CIMInstance] = []
    for i in range(m):
        objs.append(pywbem.CIMInstance("B_Node", properties={"Id": pywbem.Uint32(i), "Name": f"node{i}"},
                                       path=path(i)))
    for j in range(1, links_per + 1):
        for i in range(m):
            props = {"Left": path(i), "Right": path((i + j) % m), "Weight": pywbem.Uint32(j)}
            objs.append(pywbem.CIMInstance("B_Link", properties=props, path=pywbem.CIMInstanceName(
                "B_Link", keybindings={"Left": path(i), "Right": path((i + j) % m)}, namespace="root/cimv2")))
    conn.add_cimobjects(objs, namespace="root/cimv2")

    def theirs_assoc() -> None:
        for i in sources:
            got = conn.Associators(path(i))
            assert len(got) == want[i] - (i == 0), (len(got), want[i])  # (no probe in pywbem's model)

    def theirs_refs() -> None:
        for i in sources:
            assert len(conn.References(path(i))) == 2 * links_per

    # pywbem_mock scans every instance per call (about a second each here): timed once
    t_assoc = best_of(1, theirs_assoc) / len(sources)
    t_refs = best_of(1, theirs_refs) / len(sources)
    total = m * (1 + links_per)
    print(f"peer: {total:,} instances ({m:,} nodes, {m * links_per:,} links), {len(sources)} sources, "
          f"openmi best of {repeat}, pywbem_mock once; both in memory")
    print(f"{'operation':<14}{'openmi µs':>12}{'pywbem_mock µs':>16}{'ratio':>9}{'target':>8}")
    ok = True
    for name, ours, theirs in (("Associators", o_assoc, t_assoc), ("References", o_refs, t_refs)):
        ratio = theirs / ours
        ok = ok and ratio >= 10
        print(f"{name:<14}{ours * 1e6:>12.1f}{theirs * 1e6:>16.1f}{ratio:>8.1f}×{10:>7}× "
              f"{'ok' if ratio >= 10 else 'MISSED'}")
    return ok


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    a = peer(m, repeat)
    b = scale(n, repeat)
    return 0 if a and b else 1


if __name__ == "__main__":
    sys.exit(main())

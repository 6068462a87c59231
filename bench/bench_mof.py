"""Benchmark: compile the whole DMTF CIM Schema 2.49 (1,631 classes) with openmi and with pywbem's MOFCompiler.

Each contender runs in its own subprocess (best of --repeat wall times; then once more under tracemalloc
for peak memory, and ru_maxrss of that process):

* ``openmi``: ``openmi.cim.mof.compile_mof`` — every class checked (superclasses, references, overrides,
  flavors, value types) and kept as declared, like the peer's repository.
* ``pywbem``: ``pywbem.MOFCompiler(pywbem.MOFWBEMConnection())`` — pywbem's compiler into its in-memory
  repository, which also keeps classes as declared.
* ``openmi+resolve``: the above plus ``resolve_class`` of every class into a dict (inherited elements
  joined in, as the engine stores them).
* ``openmi-server`` (informational): ``openmi.Server(":memory:").compile_mof`` — the whole engine load.

The schema comes from pywbem's sdist exactly as the tests obtain it (tests/cim/mof_schema.py).
Usage: ``python bench/bench_mof.py [--repeat N] [--no-server]``. Target: openmi ≤ 0.2 × pywbem.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

TARGET = 0.2


def _run_openmi(mof: Path) -> int:
    from openmi.cim.mof import compile_mof

    return len(compile_mof(mof).classes)


def _run_openmi_resolve(mof: Path) -> int:
    from openmi.cim.classes import Class, resolve_class
    from openmi.cim.mof import compile_mof

    result = compile_mof(mof)
    repo: dict[str, Class] = {}
    for _, cls in result.classes:
        parent = repo[cls.superclass.lower()] if cls.superclass else None
        repo[cls.name.lower()] = resolve_class(cls, parent)
    return len(repo)


def _run_server(mof: Path) -> int:
    import openmi

    server = openmi.Server(":memory:")
    try:
        return len(server.compile_mof(mof).classes)
    finally:
        server.close()


def _run_pywbem(mof: Path) -> int:
    import pywbem

    conn = pywbem.MOFWBEMConnection()
    compiler = pywbem.MOFCompiler(conn, search_paths=[str(mof.parent)], verbose=False)
    compiler.compile_file(str(mof), "root/cimv2")
    return len(conn.classes["root/cimv2"])


RUNNERS = {"openmi": _run_openmi, "openmi+resolve": _run_openmi_resolve, "openmi-server": _run_server,
           "pywbem": _run_pywbem}


def _prepare(name: str) -> None:
    """Import what the contender needs before the clock starts."""
    if name == "pywbem":
        import pywbem  # noqa: F401
    else:
        import openmi
        import openmi.cim.mof  # noqa: F401


def worker(name: str, mode: str, mof: Path) -> None:
    _prepare(name)
    run = RUNNERS[name]
    if mode == "memory":
        tracemalloc.start()
        count = run(mof)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
        print(json.dumps({"classes": count, "peak": peak, "rss": rss}))
        return
    t0 = time.perf_counter()
    count = run(mof)
    print(json.dumps({"classes": count, "seconds": time.perf_counter() - t0}))


def _child(name: str, mode: str, mof: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--worker", name, "--mode", mode, "--mof", str(mof)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{name} ({mode}) failed:\n{proc.stderr[-3000:]}")
    data: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-server", action="store_true", help="skip the informational openmi.Server run")
    ap.add_argument("--worker", choices=sorted(RUNNERS))
    ap.add_argument("--mode", choices=["time", "memory"], default="time")
    ap.add_argument("--mof", type=Path)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.mode, args.mof)
        return

    from tests.cim.mof_schema import SchemaUnavailable, cim_schema_mof

    try:
        mof = cim_schema_mof()
    except SchemaUnavailable as exc:
        raise SystemExit(f"cannot obtain the CIM Schema 2.49: {exc}") from exc
    names = ["openmi", "openmi+resolve", "pywbem"] + ([] if args.no_server else ["openmi-server"])
    results: dict[str, dict[str, float]] = {}
    for name in names:
        times = [_child(name, "time", mof) for _ in range(max(1, args.repeat))]
        mem = _child(name, "memory", mof)
        results[name] = {"classes": times[0]["classes"], "seconds": min(t["seconds"] for t in times),
                         "peak": mem["peak"], "rss": mem["rss"]}
    print(f"CIM Schema 2.49 ({mof.name}), best of {args.repeat}, Python {sys.version.split()[0]}")
    print(f"{'':15}{'classes':>8}{'wall s':>9}{'peak MiB':>10}{'maxrss MiB':>12}")
    for name, r in results.items():
        print(f"{name:15}{int(r['classes']):>8}{r['seconds']:>9.3f}{r['peak'] / 2**20:>10.1f}"
              f"{r['rss'] / 2**20:>12.1f}")
    ratio = results["openmi"]["seconds"] / results["pywbem"]["seconds"]
    mem_ratio = results["openmi"]["peak"] / results["pywbem"]["peak"]
    print(f"ratio openmi/pywbem: time {ratio:.3f} (target <= {TARGET}), peak memory {mem_ratio:.3f}")
    base = results["pywbem"]["seconds"]
    print(f"ratio openmi+resolve/pywbem: time {results['openmi+resolve']['seconds'] / base:.3f}")
    if "openmi-server" in results:
        print(f"ratio openmi-server/pywbem (whole engine load, informational): "
              f"{results['openmi-server']['seconds'] / base:.3f}")
    if any(int(r["classes"]) != 1631 for r in results.values()):
        raise SystemExit("a contender did not load 1,631 classes")


if __name__ == "__main__":
    main()

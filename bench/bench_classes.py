"""Classes over WS-Man and typed remote results, against one ``openmi serve`` in the same run (Basic over
HTTP, one connection):

- GetClass round trips per second: our client (the answer read into an openmi.Class) against pypsrp's
  WSMan client sending the same Get on the CIM-XML schema URI (it hands back the raw XML);
- the cost of typing remote results: an Enumerate of many instances with ``type_results`` on (the class
  fetched once, every value typed) and off (values as the wire gives them), as a ratio.

    .venv/bin/python bench/bench_classes.py [N] [ENUM_COUNT]
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_remote import PASSWORD, populate, serve  # noqa: E402

import openmi  # noqa: E402
from openmi.wsman_server.users import UserStore  # noqa: E402

CIMXML = "http://schemas.dmtf.org/wbem/cim-xml/2/cim-schema/2/*"


def session(port: int, typed: bool) -> openmi.Session:
    o = openmi.DestinationOptions("http", port, encryption="never", max_elements=500, type_results=typed)
    o.add_credentials(openmi.AuthType.BASIC, "bench", PASSWORD)
    return openmi.Application().new_session("127.0.0.1", "WINRM", o)


def getclass_ours(port: int, n: int) -> float:
    s = session(port, True)
    with s.get_class("root/cimv2", "Bench_Item") as op:  # connect and authenticate outside the timing
        assert op.get_class().cls is not None
    t0 = time.perf_counter()
    for _ in range(n):
        with s.get_class("root/cimv2", "Bench_Item") as op:
            r = op.get_class()
            assert r.cls is not None and r.cls.properties["Id"].key
    rate = n / (time.perf_counter() - t0)
    s.close()
    return rate


def getclass_pypsrp(port: int, n: int) -> float:
    from pypsrp.wsman import OptionSet, SelectorSet, WSMan

    w = WSMan("127.0.0.1", port=port, username="bench", password=PASSWORD, ssl=False, auth="basic",
              encryption="never")
    sel = SelectorSet()
    sel.add_option("__cimnamespace", "root/cimv2")
    sel.add_option("ClassName", "Bench_Item")
    opts = OptionSet()
    for name in ("IncludeInheritanceHierarchy", "IncludeInheritedElements", "IncludeQualifiers",
                 "IncludeClassOrigin"):
        opts.add_option(name, "true")
    body = w.get(CIMXML, selector_set=sel, option_set=opts)
    assert body.find(".//CLASS") is not None, "pypsrp got no CLASS back"
    t0 = time.perf_counter()
    for _ in range(n):
        w.get(CIMXML, selector_set=sel, option_set=opts)
    return n / (time.perf_counter() - t0)


def enumerate_rate(port: int, typed: bool, count: int) -> float:
    s = session(port, typed)
    with s.get_class("root/cimv2", "Bench_Item") as op:  # connect outside the timing
        op.get_class()
    gc.collect()
    t0 = time.perf_counter()
    n = 0
    with s.enumerate_instances("root/cimv2", "Bench_Item") as op:
        for inst in op:
            n += 1
            last = inst
    rate = n / (time.perf_counter() - t0)
    assert n == count, (n, count)
    assert isinstance(last["Size"], int) == typed
    s.close()
    return rate


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    enum_count = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    tmp = Path(tempfile.mkdtemp(prefix="openmi-bench-"))
    repo, users = tmp / "repo.db", tmp / "users.json"
    UserStore(users).add("bench", PASSWORD, ntlm=False)
    populate(repo, enum_count)
    server, port = serve(repo, users, tmp)
    try:
        ours = max(getclass_ours(port, n) for _ in range(3))
        theirs = max(getclass_pypsrp(port, n) for _ in range(3))
        rates: dict[bool, float] = {}
        for typed_run in (False, True) * 5:  # alternated, best of 5 each: the machine's load moves
            rates[typed_run] = max(rates.get(typed_run, 0.0), enumerate_rate(port, typed_run, enum_count))
        plain, typed = rates[False], rates[True]
    finally:
        server.terminate()
        server.wait(30)
    print(f"GetClass round trips/s, Basic over HTTP, 1 connection, {n} requests, best of 3, same openmi serve")
    print(f"{'':<22}{'openmi':>10}{'pypsrp':>10}{'ratio':>8}")
    print(f"{'GetClass':<22}{ours:>10.0f}{theirs:>10.0f}{ours / theirs:>7.2f}×   (pypsrp does not parse the class)")
    print(f"Enumerate {enum_count} instances, instances/s, best of 5 (alternated)")
    print(f"{'':<22}{'typed':>10}{'untyped':>10}{'ratio':>8}")
    print(f"{'type_results':<22}{typed:>10.0f}{plain:>10.0f}{typed / plain:>7.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Remote sessions against pypsrp's WSMan client, both talking to the same ``openmi serve`` in the same run
(Basic over HTTP, one connection): DeleteInstance and GetInstance round trips per second. Then an
Enumerate of many instances with our client: instances per second (a run without tracemalloc) and the
client's peak Python memory (a second run with it) at two counts (it must not grow with the count).
Targets: ≥ 2× pypsrp (issue 5); Enumerate ≥ 30,000 instances/s end to end (issue 15).

    .venv/bin/python bench/bench_remote.py [N] [ENUM_COUNT]
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import openmi  # noqa: E402
from openmi.wsman_server.users import UserStore  # noqa: E402

PASSWORD = "bench-Pa55"
WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"


def serve(repo: Path, users: Path, tmp: Path) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"))
    p = subprocess.Popen([sys.executable, "-m", "openmi", "serve", "--repository", str(repo), "--users", str(users),
                          "--http-port", "0", "--https-port", "none", "--allow-unencrypted"],
                         stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    port = int(p.stdout.readline().rsplit(":", 1)[1].split("/")[0])
    return p, port


def populate(repo: Path, count: int, offset: int = 0) -> None:
    with openmi.Server(repo) as srv, openmi.Application() as app:
        if "Bench_Item" not in srv.classes():
            srv.define_class("root/cimv2", openmi.Class("Bench_Item", properties=[
                openmi.Property("Id", openmi.MIType.UINT32, key=True), openmi.Property("Name", openmi.MIType.STRING),
                openmi.Property("Size", openmi.MIType.UINT64)]))
        s = app.new_session(server=srv)
        with srv.repository.transaction():
            for i in range(offset, offset + count):
                s.create(openmi.Instance("Bench_Item", {"Id": i, "Name": f"item number {i}", "Size": i * 3}))


def ours(port: int) -> openmi.Session:
    o = openmi.DestinationOptions("http", port, encryption="never", max_elements=500)
    o.add_credentials(openmi.AuthType.BASIC, "bench", PASSWORD)
    return openmi.Application().new_session("127.0.0.1", "WINRM", o)


def bench_ours(port: int, ids: range) -> tuple[float, float]:
    s = ours(port)
    keys = [openmi.Instance("Bench_Item", {"Id": i}) for i in ids]
    s.get(keys[0])  # connect and authenticate outside the timing
    t0 = time.perf_counter()
    for k in keys:
        with s.get_instance("root/cimv2", k) as op:
            assert op.get_instance().result == 0
    get = len(keys) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for k in keys:
        with s.delete_instance("root/cimv2", k) as op:
            assert op.get_instance().result == 0
    delete = len(keys) / (time.perf_counter() - t0)
    s.close()
    return get, delete


def bench_pypsrp(port: int, ids: range) -> tuple[float, float]:
    from pypsrp.wsman import SelectorSet, WSMan

    w = WSMan("127.0.0.1", port=port, username="bench", password=PASSWORD, ssl=False, auth="basic",
              encryption="never")
    uri = WMI + "Bench_Item"

    def sel(i: int) -> SelectorSet:
        s = SelectorSet()
        s.add_option("Id", str(i))
        return s

    w.get(uri, selector_set=sel(ids[0]))
    t0 = time.perf_counter()
    for i in ids:
        w.get(uri, selector_set=sel(i))
    get = len(ids) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in ids:
        w.delete(uri, selector_set=sel(i))
    delete = len(ids) / (time.perf_counter() - t0)
    return get, delete


def _enumerate_all(port: int, count: int) -> None:
    s = ours(port)
    n = 0
    with s.enumerate_instances("root/cimv2", "Bench_Item") as op:
        for _ in op:
            n += 1
    assert n == count, (n, count)
    s.close()


def bench_enumerate(port: int, count: int) -> tuple[float, float]:
    """(instances/s, client peak MiB), from two runs: tracemalloc slows the client several times over, so
    the rate is measured without it and the memory in a second run with it."""
    gc.collect()
    t0 = time.perf_counter()
    _enumerate_all(port, count)
    rate = count / (time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    _enumerate_all(port, count)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return rate, peak / 2**20


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    enum_count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="openmi-bench-"))
    repo, users = tmp / "repo.db", tmp / "users.json"
    UserStore(users).add("bench", PASSWORD, ntlm=False)
    populate(repo, 2 * n)
    server, port = serve(repo, users, tmp)
    try:
        o_get, o_del = bench_ours(port, range(0, n))
        p_get, p_del = bench_pypsrp(port, range(n, 2 * n))
    finally:
        server.terminate()
        server.wait(30)
    print(f"round trips/s, Basic over HTTP, 1 connection, {n} requests each, same openmi serve")
    print(f"{'':<14}{'openmi':>10}{'pypsrp':>10}{'ratio':>8}")
    print(f"{'GetInstance':<14}{o_get:>10.0f}{p_get:>10.0f}{o_get / p_get:>7.2f}×")
    print(f"{'DeleteInstance':<14}{o_del:>10.0f}{p_del:>10.0f}{o_del / p_del:>7.2f}×   (target ≥ 2×)")
    small = max(1000, enum_count // 10)
    populate(repo, enum_count)
    server, port = serve(repo, users, tmp)
    try:
        # the first 'small' ids enumerate in the same class: measure at two counts with the same client
        rate_all, peak_all = bench_enumerate(port, enum_count)
    finally:
        server.terminate()
        server.wait(30)
    repo2 = tmp / "small.db"
    populate(repo2, small)
    server, port = serve(repo2, users, tmp)
    try:
        rate_small, peak_small = bench_enumerate(port, small)
    finally:
        server.terminate()
        server.wait(30)
    print(f"Enumerate {enum_count:,} instances: {rate_all:,.0f} instances/s, client peak {peak_all:.1f} MiB; "
          f"{small:,} instances: {rate_small:,.0f}/s, peak {peak_small:.1f} MiB "
          f"(peak ratio {peak_all / peak_small:.2f} for {enum_count / small:.0f}× the count)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The PostgreSQL repository against SQLite, measured in one run on a PostgreSQL this script starts itself
(Debian's server binaries, as the tests do: tests/pgcluster.py).

1. The local API, µs per operation (create, get, delete, enumerate per instance) on ``Server(file)`` and
   on ``Server("postgresql://…")``, and the ratio.
2. WS-Man Delete and Get round trips/s: one ``openmi serve`` on SQLite against two ``openmi serve`` (one
   worker each, as two hosts would run) on one PostgreSQL, the same connections spread over them.
3. Writes/s (keyed insert + delete, each its own transaction) from N writer processes on one SQLite file
   (shared WAL mode) and on PostgreSQL: where the single SQLite writer becomes the limit.

    .venv/bin/python bench/bench_postgres.py [OPERATIONS]
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_server as bs  # noqa: E402

import openmi  # noqa: E402


def local_costs(url: str, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with openmi.Server(url) as srv, openmi.Application() as app:
        srv.define_class("root/cimv2", openmi.Class("Bench_Local", properties=[
            openmi.Property("Id", openmi.MIType.UINT32, key=True), openmi.Property("Name", openmi.MIType.STRING)]))
        s = app.new_session(server=srv)
        t = time.perf_counter()
        for i in range(n):
            s.create(openmi.Instance("Bench_Local", {"Id": i, "Name": f"n{i}"}))
        out["create"] = (time.perf_counter() - t) / n
        t = time.perf_counter()
        for i in range(n):
            s.get(openmi.Instance("Bench_Local", {"Id": i}))
        out["get"] = (time.perf_counter() - t) / n
        t = time.perf_counter()
        got = len(s.enumerate("Bench_Local"))
        out["enumerate (per instance)"] = (time.perf_counter() - t) / got
        t = time.perf_counter()
        for i in range(n):
            s.delete(openmi.Instance("Bench_Local", {"Id": i}))
        out["delete"] = (time.perf_counter() - t) / n
    return out


def _writer(url: str, slot: int, seconds: float, start: object, out: object) -> None:
    from openmi.engine.repository import open_repository

    r = open_repository(url, shared=True)
    start.wait(60)  # type: ignore[attr-defined]
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        key = f"{slot}-{n}"
        r.insert("root/w", "c", key, '{"x":1}')
        r.delete("root/w", "c", key)
        n += 2
    out.put(n)  # type: ignore[attr-defined]
    r.close()


def writers(url: str, procs: int, seconds: float = 2.0) -> float:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    ps = [ctx.Process(target=_writer, args=(url, i, seconds, start, out)) for i in range(procs)]
    for p in ps:
        p.start()
    time.sleep(1.5)  # every writer has opened its repository
    start.set()
    total = sum(out.get(timeout=120) for _ in ps)
    for p in ps:
        p.join()
    return total / seconds


_DELETE = bs.delete_request


def request(action: str, port: int, pid: int) -> bytes:
    # the same length (Content-Length is already written): the padding goes between elements
    new = f"/transfer/{action}</a:Action>".encode()
    return _DELETE(port, pid).replace(b"/transfer/Delete</a:Action>", new.ljust(len(b"/transfer/Delete</a:Action>")))


def remote(ports: list[int], conns: int, per_conn: int, base: int, action: str) -> float:
    """Round trips/s with ``conns`` connections spread over the servers' ports."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    saved = bs.delete_request
    bs.delete_request = lambda port, pid: request(action, port, pid)  # type: ignore[assignment]
    try:
        procs = [ctx.Process(target=bs.client, args=(ports[i % len(ports)], base + i * per_conn, per_conn, q))
                 for i in range(conns)]
        for p in procs:
            p.start()
        results = [q.get(timeout=60) for _ in procs]
        for p in procs:
            p.join()
    finally:
        bs.delete_request = saved
    assert sum(r[1] for r in results) == 0, "non-200 answers"
    return conns * per_conn / max(r[0] for r in results)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    from tests.pgcluster import Cluster

    from openmi.wsman_server.users import UserStore

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a killed bench still stops its PostgreSQL (finally)
    cluster = Cluster()
    tmp = Path(tempfile.mkdtemp(prefix="openmi-bench-pg-"))
    try:
        sqlite_url, pg_url = str(tmp / "local.db"), cluster.schema_url()
        lite, pg = local_costs(sqlite_url, n), local_costs(pg_url, n)
        print(f"Local API, {n} instances, µs per operation")
        print(f"{'':<26}{'SQLite':>10}{'PostgreSQL':>12}{'PG / SQLite':>13}")
        for k in lite:
            print(f"{k:<26}{lite[k] * 1e6:>10.1f}{pg[k] * 1e6:>12.1f}{pg[k] / lite[k]:>13.1f}")

        # WS-Man: 1 server on SQLite vs 2 servers on one PostgreSQL
        conns, per_conn = 4, max(200, n // 4)
        total = conns * per_conn * 2 + 400
        users = tmp / "users.json"
        UserStore(users).add("bench", bs.PASSWORD, ntlm=False)
        env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"))
        served_url = cluster.schema_url()
        rates: dict[str, tuple[float, float]] = {}
        for label, repo, servers in (("1 server, SQLite", str(tmp / "served.db"), 1),
                                     ("2 servers, one PostgreSQL", served_url, 2)):
            with openmi.Server(repo) as srv, openmi.Application() as app:
                srv.define_class("root/cimv2", openmi.Class("Bench_Item", properties=[
                    openmi.Property("Id", openmi.MIType.UINT32, key=True),
                    openmi.Property("Name", openmi.MIType.STRING)]))
                s = app.new_session(server=srv)
                with srv.repository.transaction():
                    for i in range(total):
                        s.create(openmi.Instance("Bench_Item", {"Id": i, "Name": f"item{i}"}))
            procs = [bs.serve(Path(repo) if servers == 1 else repo, users, env, 1)  # type: ignore[arg-type]
                     for _ in range(servers)]
            ports = [p for _, p in procs]
            try:
                remote(ports, len(ports), 20, total - 100, "Get")  # warm up (one scrypt per server)
                get = remote(ports, conns, per_conn, 0, "Get")
                delete = remote(ports, conns, per_conn, 0, "Delete")
            finally:
                for proc, _ in procs:
                    proc.terminate()
                    proc.wait(30)
            rates[label] = (get, delete)
        print(f"\nWS-Man round trips/s, Basic, keep-alive, {conns} connections × {per_conn} requests, "
              f"{os.cpu_count()} cores")
        print(f"{'':<28}{'Get':>10}{'Delete':>10}")
        for label, (g, d) in rates.items():
            print(f"{label:<28}{g:>10.0f}{d:>10.0f}")
        a, b = rates["2 servers, one PostgreSQL"], rates["1 server, SQLite"]
        print(f"{'PostgreSQL pair / SQLite':<28}{a[0] / b[0]:>10.2f}{a[1] / b[1]:>10.2f}")

        print("\nWrites/s (insert + delete, one transaction each) from N processes")
        print(f"{'processes':<12}{'SQLite WAL':>12}{'PostgreSQL':>12}")
        for procs_n in (1, 2, 4):
            w_lite = writers(str(tmp / f"w{procs_n}.db"), procs_n)
            w_pg = writers(cluster.schema_url(), procs_n)
            print(f"{procs_n:<12}{w_lite:>12.0f}{w_pg:>12.0f}")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

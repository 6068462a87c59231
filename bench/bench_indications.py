"""Indications: what a subscription costs and how fast events travel (issue 13), each figure printed with the
peer it is measured against in the same run.

In-process (an embedded server, ``:memory:``):

- Delete → CIM_InstDeletion delivered to a subscriber: p50 and p99 latency of one delete at a time (3 ms
  apart: while events flow faster a subscriber naps up to ``openmi.engine.indications.NAP`` between looks),
  against the delete's own duration;
- the cost a subscription adds to each delete: N deletes with one subscriber reading, against N unwatched
  deletes (target: at most 1.5×);
- deletes per second with 10 subscribers, each of which must receive every event (no loss), against the
  unwatched rate (target: 10,000 deletes/s sustained).

Over WS-Man (``openmi serve`` in this process, Basic over HTTP):

- events per second to one remote Pull subscriber, against the items per second a remote enumeration of
  the same instances reaches;
- the server's memory with 100 idle subscriptions (Subscribed, nobody pulling), in an ``openmi serve``
  subprocess: RSS before and after, per subscription, against 100 idle enumeration contexts.

    .venv/bin/python bench/bench_indications.py [N] [latency cost fanout remote memory]
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import openmi  # noqa: E402
from openmi import OperationFlags  # noqa: E402

DELETIONS = "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Bench_Item'"
PASSWORD = "bench-Pa55"


def engine(n: int) -> tuple[openmi.Server, openmi.Application, openmi.Session]:
    srv = openmi.Server(":memory:")
    srv.define_class("root/cimv2", openmi.Class("Bench_Item", properties=[
        openmi.Property("Id", openmi.MIType.UINT32, key=True), openmi.Property("Name", openmi.MIType.STRING)]))
    app = openmi.Application()
    s = app.new_session(server=srv)
    fill(srv, s, n)
    return srv, app, s


def fill(srv: openmi.Server, s: openmi.Session, n: int, offset: int = 0) -> None:
    with srv.repository.transaction():
        for i in range(offset, offset + n):
            s.create(openmi.Instance("Bench_Item", {"Id": i, "Name": f"item {i}"}))


def keys(n: int, offset: int = 0) -> list[openmi.Instance]:
    return [openmi.Instance("Bench_Item", {"Id": i}) for i in range(offset, offset + n)]


class Reader:
    """A subscriber on its own thread: counts indications (and the time each arrived)."""

    def __init__(self, s: openmi.Session, expect: int, stamp: bool = False) -> None:
        self.op = s.subscribe("root/cimv2", "WQL", DELETIONS, flags=OperationFlags.REPORT_OPERATION_STARTED,
                              delivery_options=openmi.SubscriptionDeliveryOptions(queue_size=max(10_000, expect)))
        assert self.op.get_indication(timeout=30).result == openmi.MIResult.OK  # live
        self.expect = expect
        self.count = 0
        self.times: list[float] = []
        self.stamp = stamp
        self.error: str | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.count < self.expect:
            r = self.op.get_indication(timeout=60)
            if r.instance is None:
                self.error = r.error_message or f"ended early ({r.result.name})"
                break
            self.count += 1
            if self.stamp:
                self.times.append(time.perf_counter())
        self.done.set()

    def close(self) -> None:
        self.op.cancel()
        self.op.close()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def latency(n: int) -> None:
    srv, app, s = engine(n)
    plain = []
    for k in keys(n // 2):
        t0 = time.perf_counter()
        s.delete(k)
        plain.append(time.perf_counter() - t0)
    r = Reader(s, n - n // 2, stamp=True)
    lat = []
    for i, k in enumerate(keys(n - n // 2, n // 2)):
        time.sleep(0.003)  # an event after a quiet moment (in a stream a subscriber naps: ≤ NAP later)
        t0 = time.perf_counter()
        s.delete(k)
        while len(r.times) <= i and not r.done.is_set():
            time.sleep(0)  # the reader thread stamps the arrival
        lat.append(r.times[i] - t0)
    r.close()
    print(f"delete → CIM_InstDeletion to an in-process subscriber ({len(lat)} deletes, one at a time, 3 ms apart):")
    print(f"  latency p50 {pct(lat, 50) * 1e6:8.1f} µs   p99 {pct(lat, 99) * 1e6:8.1f} µs")
    print(f"  the delete alone p50 {pct(plain, 50) * 1e6:8.1f} µs   p99 {pct(plain, 99) * 1e6:8.1f} µs   "
          f"(latency / delete at p50: {pct(lat, 50) / pct(plain, 50):.2f}×)")
    app.close()
    srv.close()


def cost(n: int, rounds: int = 3) -> None:
    """Three loops of n deletes: unwatched; with one subscriber reading on its own thread meanwhile (what a
    delete costs the process); with one live subscriber that reads only after the loop (the writer's own
    share: building and queueing the event)."""
    unwatched, watched, queued = [], [], []
    for _ in range(rounds):
        srv, app, s = engine(3 * n)
        gc.collect()
        t0 = time.perf_counter()
        for k in keys(n):
            s.delete(k)
        unwatched.append((time.perf_counter() - t0) / n)
        r = Reader(s, n)
        t0 = time.perf_counter()
        for k in keys(n, n):
            s.delete(k)
        watched.append((time.perf_counter() - t0) / n)
        r.done.wait(120)
        assert r.count == n and r.error is None, (r.count, r.error)
        r.close()
        op = s.subscribe("root/cimv2", "WQL", DELETIONS, flags=OperationFlags.REPORT_OPERATION_STARTED,
                         delivery_options=openmi.SubscriptionDeliveryOptions(queue_size=2 * n))
        assert op.get_indication(timeout=30).result == openmi.MIResult.OK
        t0 = time.perf_counter()
        for k in keys(n, 2 * n):
            s.delete(k)
        queued.append((time.perf_counter() - t0) / n)
        got = sum(1 for _ in range(n) if op.get_indication(timeout=60).instance is not None)
        assert got == n, got
        op.cancel()
        op.close()
        app.close()
        srv.close()
    u, w, q = min(unwatched), min(watched), min(queued)
    print(f"the cost a subscription adds to a delete ({n} deletes, best of {rounds}):")
    print(f"  unwatched {u * 1e6:7.1f} µs/delete   one subscriber {w * 1e6:7.1f} µs/delete   "
          f"ratio {w / u:.2f}× (target ≤ 1.5×)")
    print(f"  the writer's own share (the subscriber reads after the loop) {q * 1e6:7.1f} µs/delete   "
          f"ratio {q / u:.2f}×")


def fan_out(n: int, subscribers: int = 10) -> None:
    srv, app, s = engine(2 * n)
    t0 = time.perf_counter()
    for k in keys(n):
        s.delete(k)
    unwatched = n / (time.perf_counter() - t0)
    readers = [Reader(s, n) for _ in range(subscribers)]
    t0 = time.perf_counter()
    for k in keys(n, n):
        s.delete(k)
    write_rate = n / (time.perf_counter() - t0)
    for r in readers:
        r.done.wait(300)
    all_in = n / (time.perf_counter() - t0)
    lost = [n - r.count for r in readers]
    errors = [r.error for r in readers if r.error]
    for r in readers:
        r.close()
    print(f"{subscribers} in-process subscribers, {n} deletes from one writer:")
    print(f"  deletes/s {write_rate:9.0f} (unwatched {unwatched:9.0f}: {write_rate / unwatched:.2f}×); "
          f"every subscriber had every event at {all_in:9.0f} events/s each")
    print(f"  lost: {sum(lost)} ({'none' if not any(lost) else lost}); errors: {errors or 'none'}; "
          f"target 10,000 deletes/s: {'met' if write_rate >= 10_000 else 'NOT met'}")
    app.close()
    srv.close()


def remote_pull(n: int) -> None:
    from openmi.wsman_server.config import ServeConfig
    from openmi.wsman_server.run import WSManServer
    from openmi.wsman_server.users import UserStore

    with tempfile.TemporaryDirectory() as tmp:
        users = Path(tmp) / "users.json"
        UserStore(users).add("bench", PASSWORD)
        srv, app, s = engine(2 * n)
        server = WSManServer(ServeConfig(http_port=0, https_port=None, users=str(users), allow_unencrypted=True),
                             engine=srv)
        server.start()
        o = openmi.DestinationOptions("http", server.port("http"), encryption="never", max_elements=500)
        o.add_credentials(openmi.AuthType.BASIC, "bench", PASSWORD)
        with openmi.Application() as rapp:
            rs = rapp.new_session("127.0.0.1", "WINRM", o)
            t0 = time.perf_counter()
            got = sum(1 for _ in rs.enumerate_instances("root/cimv2", "Bench_Item"))
            enum_rate = got / (time.perf_counter() - t0)
            r = Reader(rs, n)
            t0 = time.perf_counter()
            for k in keys(n):
                s.delete(k)
            r.done.wait(300)
            rate = r.count / (time.perf_counter() - t0)
            assert r.count == n and r.error is None, (r.count, r.error)
            r.close()
        server.stop()
        app.close()
        srv.close()
    print(f"over WS-Man Pull (Basic over HTTP, MaxElements 500), {n} deletes:")
    print(f"  events/s to one remote subscriber {rate:8.0f}   remote enumeration items/s {enum_rate:8.0f}   "
          f"ratio {rate / enum_rate:.2f}×")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def idle_memory(count: int = 100) -> None:
    from openmi.protocol import wsman
    from openmi.protocol.wsman import eventing as ev
    from openmi.protocol.wsman import namespaces as wns
    from openmi.protocol.wsman.requests import Filter
    from openmi.wsman_server.users import UserStore

    with tempfile.TemporaryDirectory() as tmp:
        users = Path(tmp) / "users.json"
        UserStore(users).add("bench", PASSWORD)
        repo = Path(tmp) / "repo.db"
        with openmi.Server(repo) as srv, openmi.Application() as app:
            srv.define_class("root/cimv2", openmi.Class("Bench_Item", properties=[
                openmi.Property("Id", openmi.MIType.UINT32, key=True), openmi.Property("Name", openmi.MIType.STRING)]))
            fill(srv, app.new_session(server=srv), 200)
        env = dict(os.environ, XDG_CONFIG_HOME=str(Path(tmp) / "config"))
        p = subprocess.Popen([sys.executable, "-m", "openmi", "serve", "--repository", str(repo), "--users",
                              str(users), "--http-port", "0", "--https-port", "none", "--allow-unencrypted",
                              "--workers", "1"],  # one process: the one whose memory is read
                             stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert p.stdout is not None
            port = int(p.stdout.readline().rsplit(":", 1)[1].split("/")[0])
            import base64
            import http.client

            auth = "Basic " + base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

            def post(req: wsman.Request) -> bytes:
                req.to = f"http://127.0.0.1:{port}/wsman"
                conn.request("POST", "/wsman", wsman.build_request(req),
                             {"Content-Type": "application/soap+xml;charset=UTF-8", "Authorization": auth})
                resp = conn.getresponse()
                data = resp.read()
                assert resp.status == 200, data[:300]
                return data

            post(wsman.EnumerateRequest(namespace="root/cimv2", class_name="Bench_Item", optimize=True,
                                        max_elements=1))  # warm up: imports, caches, one enumeration
            time.sleep(0.5)
            base = _rss_kb(p.pid)
            for _ in range(50):
                post(wsman.EnumerateRequest(namespace="root/cimv2", class_name="Bench_Item", optimize=True,
                                            max_elements=1))
            time.sleep(0.5)
            enums = _rss_kb(p.pid)
            for _ in range(count):
                post(ev.SubscribeRequest(namespace="root/cimv2", class_name="*", heartbeat=60, filter=Filter(
                    dialect=wns.DIALECT_WQL, query=DELETIONS)))
            time.sleep(1.0)
            subs = _rss_kb(p.pid)
            threads = len(os.listdir(f"/proc/{p.pid}/task"))
        finally:
            p.terminate()
            p.wait(30)
    per_sub = (subs - enums) / count
    per_enum = (enums - base) / 50
    print(f"openmi serve with {count} idle subscriptions (subscribed, nobody pulling):")
    print(f"  RSS {base / 1024:.1f} MB at rest, +{(enums - base) / 1024:.1f} MB with 50 open enumerations, "
          f"+{(subs - enums) / 1024:.1f} MB with {count} subscriptions ({threads} threads in the process)")
    print(f"  per subscription {per_sub:.0f} KB   per enumeration context {per_enum:.0f} KB")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    parts = set(sys.argv[2:]) or {"latency", "cost", "fanout", "remote", "memory"}
    if "latency" in parts:
        latency(min(n, 4_000))
    if "cost" in parts:
        cost(min(n, 10_000))
    if "fanout" in parts:
        fan_out(n)
    if "remote" in parts:
        remote_pull(min(n, 5_000))
    if "memory" in parts:
        idle_memory()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""openmi's client against a server that writes the HTTP header and body separately without TCP_NODELAY,
as OMI does (issue 10 §3): Delete round trips per second with TCP_QUICKACK re-armed (the default on
Linux), with it switched off (the ~40 ms delayed-ACK stall per request), and against ``openmi serve``
in the same run. Targets: ≥ 40× the ~21/s of the stalled client, and within 2× of the rate against
openmi serve. Blocking and asyncio clients both.

    .venv/bin/python bench/bench_splitwrite.py [REQUESTS]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.client.split_write_server import SplitWriteServer  # noqa: E402

import openmi  # noqa: E402
from openmi.client import wire  # noqa: E402
from openmi.wsman_server.users import UserStore  # noqa: E402

PASSWORD = "bench-Pa55"


def session(app: openmi.Application, port: int, style: str) -> openmi.Session:
    o = openmi.DestinationOptions("http", port, uri_style=style, encryption="never")
    o.add_credentials(openmi.AuthType.BASIC, "bench", PASSWORD)
    return app.new_session("127.0.0.1", "WINRM", o)


def deletes(port: int, cls: str, ids: range, style: str) -> float:
    with openmi.Application() as app:
        s = session(app, port, style)
        keys = [openmi.Instance(cls, {"Id" if cls == "Bench_Item" else "Name": i}) for i in ids]
        with s.test_connection() as op:  # connect and authenticate outside the timing
            op.get_instance()
        t0 = time.perf_counter()
        for k in keys:
            with s.delete_instance("root/cimv2", k) as op:
                assert op.get_instance().result == 0
        rate = len(keys) / (time.perf_counter() - t0)
        s.close()
    return rate


def deletes_async(port: int, cls: str, ids: range, style: str) -> float:
    async def run() -> float:
        with openmi.Application() as app:
            s = session(app, port, style)
            keys = [openmi.Instance(cls, {"Id" if cls == "Bench_Item" else "Name": i}) for i in ids]
            op = s.test_connection()
            await op.get_instance_async()
            op.close()
            t0 = time.perf_counter()
            for k in keys:
                op = s.delete_instance("root/cimv2", k)
                assert (await op.get_instance_async()).result == 0
                op.close()
            rate = len(keys) / (time.perf_counter() - t0)
            s.close()
        return rate

    return asyncio.run(run())


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    stalled_n = max(20, min(100, n // 20))  # each costs ~40 ms
    tmp = Path(tempfile.mkdtemp(prefix="openmi-bench-"))
    repo, users = tmp / "repo.db", tmp / "users.json"
    UserStore(users).add("bench", PASSWORD, ntlm=False)
    with openmi.Server(repo) as srv, openmi.Application() as app:
        srv.define_class("root/cimv2", openmi.Class("Bench_Item", properties=[
            openmi.Property("Id", openmi.MIType.UINT32, key=True)]))
        s = app.new_session(server=srv)
        with srv.repository.transaction():
            for i in range(2 * n):
                s.create(openmi.Instance("Bench_Item", {"Id": i}))
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"))
    server = subprocess.Popen([sys.executable, "-m", "openmi", "serve", "--repository", str(repo), "--users",
                               str(users), "--http-port", "0", "--https-port", "none", "--allow-unencrypted"],
                              stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdout is not None
    port = int(server.stdout.readline().rsplit(":", 1)[1].split("/")[0])
    split = SplitWriteServer()
    try:
        for name, fn in (("blocking", deletes), ("asyncio", deletes_async)):
            wire.QUICKACK_ENABLED = True
            fast = fn(split.port, "OMIPeer_Item", range(n), "dmtf")
            wire.QUICKACK_ENABLED = False
            slow = fn(split.port, "OMIPeer_Item", range(stalled_n), "dmtf")
            wire.QUICKACK_ENABLED = True
            first = 0 if name == "blocking" else n
            ours = fn(port, "Bench_Item", range(first, first + n), "wmi")
            print(f"{name:<9} split-write server: {fast:7.0f}/s with TCP_QUICKACK, {slow:5.1f}/s without "
                  f"({fast / slow:5.1f}×); openmi serve: {ours:6.0f}/s (split-write / openmi serve "
                  f"{fast / ours:4.2f}, target ≥ 0.5)")
    finally:
        split.close()
        server.terminate()
        server.wait(30)
    print(f"Delete round trips, Basic over HTTP, one kept-alive connection, {n} requests "
          f"({stalled_n} without TCP_QUICKACK); targets: ≥ 40× the ~21/s stalled rate (≥ 840/s), "
          "within 2× of openmi serve")
    return 0


if __name__ == "__main__":
    sys.exit(main())

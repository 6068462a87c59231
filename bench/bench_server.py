"""DeleteInstance round trips per second against ``openmi serve`` over loopback, keep-alive, Basic auth,
with 1 and 8 connections; the same minimal client against a bare ``http.server`` endpoint that answers a
fixed response (the cost of HTTP alone), measured in the same run. Also the server's CPU per request.

Each connection is its own client process (so the client's GIL does not limit the server). For scale
(issue 4): OMI serves about 4,000 Delete round trips/s on one connection, 8,000 on eight, at ~100 µs of
server CPU per request; the target is at least half of OMI's rate on one connection.

    .venv/bin/python bench/bench_server.py [REQUESTS_PER_CONNECTION]
    .venv/bin/python bench/bench_server.py --workers 1,2 --connections 1,4,8,16 [--requests N]

The second form is the scale-out curve: ``openmi serve --workers N`` for each N, each number of
connections in turn, round trips/s and the CPU per request of the supervisor and its workers together.
"""

from __future__ import annotations

import base64
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"
PASSWORD = "bench-Pa55"

BARE_SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = open(sys.argv[1], "rb").read()
import socket
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.wfile.write(RESPONSE)  # one write, as openmi does: no delayed-ACK stall
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def delete_request(port: int, pid: int) -> bytes:
    body = f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:To>http://127.0.0.1:{port}/wsman</a:To><w:ResourceURI s:mustUnderstand="true">{WMI}Bench_Item</w:ResourceURI><a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete</a:Action><w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID><w:OperationTimeout>PT60S</w:OperationTimeout><w:SelectorSet><w:Selector Name="Id">{pid}</w:Selector></w:SelectorSet></s:Header><s:Body/></s:Envelope>""".encode()  # noqa: E501
    auth = base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    head = (f"POST /wsman HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def client(port: int, first: int, count: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """One keep-alive connection sending ``count`` Deletes; reports (seconds, non-200 answers)."""
    requests = [delete_request(port, first + i) for i in range(count)]
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    bad = 0
    buf = b""
    t0 = time.perf_counter()
    for req in requests:
        sock.sendall(req)
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, buf = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        while len(buf) < length:
            buf += sock.recv(65536)
        buf = buf[length:]
        if not head.startswith(b"HTTP/1.1 200"):
            bad += 1
    out.put((time.perf_counter() - t0, bad))
    sock.close()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_clients(port: int, conns: int, per_conn: int, base: int, server_pid: int) -> tuple[float, float, int]:
    ctx = mp.get_context("fork")
    q: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=client, args=(port, base + i * per_conn, per_conn, q)) for i in range(conns)]
    cpu0 = cpu_seconds(server_pid)
    for p in procs:
        p.start()
    results = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    cpu = cpu_seconds(server_pid) - cpu0
    total = conns * per_conn
    rate = total / max(r[0] for r in results)
    return rate, cpu / total, int(sum(r[1] for r in results))


def serve(repo: Path, users: Path, env: dict[str, str], workers: int,
          extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], int]:
    """``openmi serve --workers N`` on a free port; the process and the port."""
    server = subprocess.Popen(
        [sys.executable, "-m", "openmi", "serve", "--repository", str(repo), "--users", str(users), "--http-port", "0",
         "--https-port", "none", "--allow-unencrypted", "--workers", str(workers), *extra],
        stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdout is not None
    line = server.stdout.readline()
    return server, int(line.split("://", 1)[1].split(":")[1].split("/")[0])


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children alive now (the workers of a supervisor)."""
    kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    total = 0.0
    for p in [pid, *map(int, kids)]:
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def sweep(workers: list[int], connections: list[int], per_conn: int) -> int:
    """Delete round trips/s for each number of workers × connections, in one run (issue 15 §4's curve)."""
    sys.path.insert(0, str(ROOT / "src"))
    import openmi
    from openmi.wsman_server.users import UserStore

    tmp = Path(tempfile.mkdtemp(prefix="openmi-bench-"))
    repo, users = tmp / "repo.db", tmp / "users.json"
    total = per_conn * sum(connections) * len(workers) + 50 * sum(max(n, 2) for n in workers)
    with openmi.Server(repo) as srv, openmi.Application() as app:
        srv.define_class("root/cimv2", openmi.Class("Bench_Item", properties=[
            openmi.Property("Id", openmi.MIType.UINT32, key=True), openmi.Property("Name", openmi.MIType.STRING)]))
        s = app.new_session(server=srv)
        with srv.repository.transaction():
            for i in range(total):
                s.create(openmi.Instance("Bench_Item", {"Id": i, "Name": f"item{i}"}))
    UserStore(users).add("bench", PASSWORD, ntlm=False)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"))
    rows: dict[int, list[tuple[float, float]]] = {}
    base, bad = 0, 0
    for n in workers:
        server, port = serve(repo, users, env, n)
        try:
            run_clients(port, max(n, 2), 50, base, server.pid)  # warm up every worker (one scrypt each)
            base += max(n, 2) * 50
            for conns in connections:
                cpu0 = tree_cpu(server.pid)
                rate, _, b = run_clients(port, conns, per_conn, base, server.pid)
                cpu = (tree_cpu(server.pid) - cpu0) / (conns * per_conn)
                base += conns * per_conn
                bad += b
                rows.setdefault(n, []).append((rate, cpu))
        finally:
            server.terminate()
            server.wait(60)
    print(f"DeleteInstance over WS-Man, Basic, keep-alive, {per_conn} requests per connection, "
          f"{os.cpu_count()} cores (non-200 answers: {bad})")
    print(f"{'connections':<24}" + "".join(f"{c:>10}" for c in connections))
    for n in workers:
        print(f"{f'{n} worker(s) round trips/s':<24}" + "".join(f"{r:>10.0f}" for r, _ in rows[n]))
        print(f"{f'{n} worker(s) CPU µs/req':<24}" + "".join(f"{c * 1e6:>10.0f}" for _, c in rows[n]))
    if 1 in rows:
        for n in workers:
            if n != 1:
                print(f"{f'{n} workers / 1 worker':<24}" + "".join(
                    f"{a[0] / b_[0]:>10.2f}" for a, b_ in zip(rows[n], rows[1])))
    return 0 if bad == 0 else 1


def main() -> int:
    if "--workers" in sys.argv or "--connections" in sys.argv:
        import argparse

        p = argparse.ArgumentParser(description="the workers × connections sweep")
        p.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
        p.add_argument("--connections", default="1,4,8,16", help="comma-separated (default 1,4,8,16)")
        p.add_argument("--requests", type=int, default=1000, help="requests per connection (default 1000)")
        a = p.parse_args()
        return sweep([int(x) for x in a.workers.split(",")], [int(x) for x in a.connections.split(",")], a.requests)
    per_conn = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    sys.path.insert(0, str(ROOT / "src"))
    import openmi
    from openmi.wsman_server.users import UserStore

    tmp = Path(tempfile.mkdtemp(prefix="openmi-bench-"))
    repo, users = tmp / "repo.db", tmp / "users.json"
    total = per_conn * (1 + 8)
    with openmi.Server(repo) as srv, openmi.Application() as app:
        srv.define_class("root/cimv2", openmi.Class("Bench_Item", properties=[
            openmi.Property("Id", openmi.MIType.UINT32, key=True), openmi.Property("Name", openmi.MIType.STRING)]))
        s = app.new_session(server=srv)
        with srv.repository.transaction():
            for i in range(total):
                s.create(openmi.Instance("Bench_Item", {"Id": i, "Name": f"item{i}"}))
    UserStore(users).add("bench", PASSWORD, ntlm=False)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"))
    server, port = serve(repo, users, env, 1)
    fixed = tmp / "fixed.xml"
    bare = None
    try:
        # warm up: the first Basic check costs one scrypt; the cache serves the rest
        rate1, cpu1, bad1 = run_clients(port, 1, per_conn, 0, server.pid)
        rate8, cpu8, bad8 = run_clients(port, 8, per_conn, per_conn, server.pid)
        fixed.write_bytes(b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/>'
                          b"<s:Body/></s:Envelope>")
        bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(fixed)], stdout=subprocess.PIPE, text=True)
        assert bare.stdout is not None
        bport = int(bare.stdout.readline())
        brate1, bcpu1, _ = run_clients(bport, 1, per_conn, 0, bare.pid)
        brate8, bcpu8, _ = run_clients(bport, 8, per_conn, 0, bare.pid)
    finally:
        server.terminate()
        server.wait(30)
        if bare is not None:
            bare.terminate()
            bare.wait(10)
    print(f"DeleteInstance over WS-Man, Basic, keep-alive, {per_conn} requests per connection "
          f"(non-200 answers: {bad1 + bad8})")
    print(f"{'':<28}{'1 connection':>16}{'8 connections':>16}")
    print(f"{'openmi serve (round trips/s)':<28}{rate1:>16.0f}{rate8:>16.0f}")
    print(f"{'bare http.server (fixed)':<28}{brate1:>16.0f}{brate8:>16.0f}")
    print(f"{'openmi / bare':<28}{rate1 / brate1:>16.2f}{rate8 / brate8:>16.2f}")
    print(f"{'server CPU per request µs':<28}{cpu1 * 1e6:>16.0f}{cpu8 * 1e6:>16.0f}")
    print(f"{'bare CPU per request µs':<28}{bcpu1 * 1e6:>16.0f}{bcpu8 * 1e6:>16.0f}")
    print(f"against OMI's ~4,000/s on one connection: {rate1 / 4000:.2f}× (target ≥ 0.5×)")
    return 0 if bad1 + bad8 == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

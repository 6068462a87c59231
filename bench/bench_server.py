"""DeleteInstance round trips per second against ``openmi serve`` over loopback, keep-alive, Basic auth,
with 1 and 8 connections; the same minimal client against a bare ``http.server`` endpoint that answers a
fixed response (the cost of HTTP alone), measured in the same run. Also the server's CPU per request.

Each connection is its own client process: bench/loadgen.c, built with the system's C compiler so the clients
take little of the cores the server runs on (the Python client below when there is no compiler, or with
``--client python``).

    .venv/bin/python bench/bench_server.py [REQUESTS_PER_CONNECTION]
    .venv/bin/python bench/bench_server.py --workers 1,2 --connections 1,4,8,16 [--requests N] [--client c|python]
    .venv/bin/python bench/bench_server.py --stages
    bash bench/omi/build.sh OMI_SOURCE OMI_OUT    # once: Microsoft's OMI 1.9.1 with a Bench_Item provider
    .venv/bin/python bench/bench_server.py --omi OMI_OUT [--workers N] [--action Get] [--requests N] [--rounds R]

The second form is the scale-out curve: ``openmi serve --workers N`` for each N, each number of
connections in turn, round trips/s and the CPU per request of the supervisor and its workers together.
The third: where a Get's and a Delete's server CPU goes, stage by stage (warm loops in one process).
The fourth: openmi against OMI (issue 15's peer), the same C clients and request bytes, one connection and
eight, rounds alternating. OMI's source is github.com/microsoft/omi (tag v1.9.1-0); build.sh installs its
build packages, builds it with bench/omi/omi-bind-address.patch (so that it listens on 127.0.0.1 only) and
registers bench/omi/Bench_Item.c, a stateless provider (every Delete succeeds, a Get answers the key's item).

On a virtual machine the server CPU per request on one connection depends on whether the cores sit idle
between round trips: a core that halts while the server waits for the next request is slow to wake (the
wake-up, and code that then runs from cold caches, count as the server's CPU). Measured here: about 170 µs per
Delete when nothing else runs, about 100 µs when the client and the server share one core or the machine is
busy with other work. Run it on an otherwise idle machine for the comparable figure.
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
from typing import Any

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


def delete_request(port: int, pid: int, action: str = "Delete") -> bytes:
    namespace = '<w:Selector Name="__cimnamespace">root/cimv2</w:Selector>' if CLIENT["cimnamespace"] else ""
    body = f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:To>http://127.0.0.1:{port}/wsman</a:To><w:ResourceURI s:mustUnderstand="true">{WMI}Bench_Item</w:ResourceURI><a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/{action}</a:Action><w:MaxEnvelopeSize s:mustUnderstand="true">512000</w:MaxEnvelopeSize><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID><w:OperationTimeout>PT60S</w:OperationTimeout><w:SelectorSet>{namespace}<w:Selector Name="Id">{pid}</w:Selector></w:SelectorSet></s:Header><s:Body/></s:Envelope>""".encode()  # noqa: E501
    auth = base64.b64encode(f"bench:{PASSWORD}".encode()).decode()
    head = (f"POST /wsman HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def client(port: int, first: int, count: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """One keep-alive connection sending ``count`` Deletes; reports (seconds, non-200 answers)."""
    requests = [delete_request(port, first + i, CLIENT["action"]) for i in range(count)]
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


LOADGEN_SOURCE = ROOT / "bench" / "loadgen.c"
_loadgen: list[str | None] = []


def loadgen() -> str | None:
    """The C load generator (bench/loadgen.c) built once into a temporary directory; None without a C compiler
    (the Python client is used then, and the output says so)."""
    if not _loadgen:
        exe = Path(tempfile.mkdtemp(prefix="openmi-loadgen-")) / "loadgen"
        try:
            subprocess.run(["cc", "-O2", "-o", str(exe), str(LOADGEN_SOURCE)], check=True, capture_output=True)
            _loadgen.append(str(exe))
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"(no C compiler: {exc}; the clients are Python processes)", file=sys.stderr)
            _loadgen.append(None)
    return _loadgen[0]


# "kind" "c": bench/loadgen.c when it builds, "python": the client() above; "action": the request sent
# "cimnamespace": the namespace also as a __cimnamespace selector (OMI needs it: it has no default namespace)
CLIENT: dict[str, Any] = {"kind": "c", "action": "Delete", "cimnamespace": False}


def run_clients(port: int, conns: int, per_conn: int, base: int, server_pid: int) -> tuple[float, float, int]:
    exe = loadgen() if CLIENT["kind"] == "c" else None
    if exe is not None:
        return run_c_clients(exe, port, conns, per_conn, base, server_pid)
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


def run_c_clients(exe: str, port: int, conns: int, per_conn: int, base: int,
                  server_pid: int) -> tuple[float, float, int]:
    """``run_clients`` with the C load generator: one process per connection, the same Delete requests."""
    import struct

    files = []
    for i in range(conns):
        path = Path(tempfile.mkstemp(prefix="openmi-loadgen-", suffix=".bin")[1])
        with path.open("wb") as f:
            for k in range(per_conn):
                req = delete_request(port, base + i * per_conn + k, CLIENT["action"])
                f.write(struct.pack(">I", len(req)) + req)
        files.append(path)
    cpu0 = cpu_seconds(server_pid)
    procs = [subprocess.Popen([exe, str(port), str(path)], stdout=subprocess.PIPE, text=True) for path in files]
    outs = [p.communicate(timeout=600)[0].split() for p in procs]
    cpu = cpu_seconds(server_pid) - cpu0
    for path in files:
        path.unlink()
    if any(p.returncode != 0 or len(o) != 2 for p, o in zip(procs, outs)):
        raise RuntimeError(f"a load generator failed: {[(p.returncode, o) for p, o in zip(procs, outs)]}")
    total = conns * per_conn
    return total / max(float(o[0]) for o in outs), cpu / total, sum(int(o[1]) for o in outs)


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
    """CPU seconds of a process and its descendants alive now (the workers of a supervisor; OMI's omiengine and
    omiagent under omiserver)."""
    parents: dict[int, list[int]] = {}
    for line in subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.splitlines():
        child, parent = map(int, line.split())
        parents.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(parents.get(p, ()))
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def bench_repository(items: int) -> tuple[Path, Path, Path]:
    """A temporary directory with a repository holding Bench_Item 0 … items-1 and a users file with the bench
    user (Basic only): (the directory, the repository, the users file)."""
    sys.path.insert(0, str(ROOT / "src"))
    import openmi
    from openmi.wsman_server.users import UserStore

    tmp = Path(tempfile.mkdtemp(prefix="openmi-bench-"))
    repo, users = tmp / "repo.db", tmp / "users.json"
    with openmi.Server(repo) as srv, openmi.Application() as app:
        srv.define_class("root/cimv2", openmi.Class("Bench_Item", properties=[
            openmi.Property("Id", openmi.MIType.UINT32, key=True), openmi.Property("Name", openmi.MIType.STRING)]))
        s = app.new_session(server=srv)
        with srv.repository.transaction():
            for i in range(items):
                s.create(openmi.Instance("Bench_Item", {"Id": i, "Name": f"item{i}"}))
    UserStore(users).add("bench", PASSWORD, ntlm=False)
    return tmp, repo, users


def sweep(workers: list[int], connections: list[int], per_conn: int) -> int:
    """Delete round trips/s for each number of workers × connections, in one run (issue 15 §4's curve)."""
    sys.path.insert(0, str(ROOT / "src"))

    total = per_conn * sum(connections) * len(workers) + 50 * sum(max(n, 2) for n in workers)
    tmp, repo, users = bench_repository(total)
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
    client = "C (bench/loadgen.c)" if CLIENT["kind"] == "c" and loadgen() is not None else "Python"
    print(f"{CLIENT['action']}Instance over WS-Man, Basic, keep-alive, {per_conn} requests per connection, "
          f"{os.cpu_count()} cores, {client} clients (non-200 answers: {bad})")
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


def get_request(port: int, pid: int) -> bytes:
    """The Delete request with the Get action: the same envelope, answered with the instance."""
    return delete_request(port, pid, "Get")


def stages(n: int = 3000) -> None:
    """Where one request's server CPU goes, stage by stage, each in a warm loop in this process (the same code
    ``openmi serve`` runs; a served request costs more than the sum: its code runs cold after each wait for the
    network, and the socket calls come on top). Delete and Get, Basic on every request."""
    sys.path.insert(0, str(ROOT / "src"))
    from openmi.protocol import wsman
    from openmi.protocol.http import HTTPResponse, ServerChannel
    from openmi.wsman_server.config import ServeConfig
    from openmi.wsman_server.run import WSManServer

    _, repo, users = bench_repository(n)
    server = WSManServer(ServeConfig(repository=str(repo), users=str(users), http_port=0, https_port=None,
                                     allow_unencrypted=True))
    conn = server.service.connection("127.0.0.1", False)
    ctype = "application/soap+xml;charset=UTF-8"
    rows = []
    try:
        for name, make in (("Get", get_request), ("Delete", delete_request)):
            raws = [make(5985, i) for i in range(n)]
            chan = ServerChannel()
            chan.feed(raws[0])
            first = chan.next_request()
            assert not isinstance(first, type), first
            chan.respond(conn.handle(first))  # one scrypt: the cache serves the rest
            stage = ["HTTP request framing", "authentication (Basic, cached)", "envelope parse (lxml, headers)",
                     "engine + answer (template)", "HTTP response framing"]
            t = dict.fromkeys(stage, 0.0)
            clock = time.perf_counter  # (one thread, warm, nothing else running here: its time is CPU time)
            answers = []
            for raw in raws[1:]:
                c0 = clock()
                chan.feed(raw)
                r = chan.next_request()
                c1 = clock()
                user = conn.auth.authenticate(r.headers).user  # type: ignore[union-attr]
                c2 = clock()
                parsed = wsman.parse_request(r.body, ctype, class_lookup=server.service.lookup_class,  # type: ignore[union-attr]
                                             limits=server.service.limits)
                c3 = clock()
                status, data = server.service.dispatch(parsed, user)
                c4 = clock()
                chan.respond(HTTPResponse(status, data, [("Content-Type", ctype)]))
                c5 = clock()
                for k, (a, b) in zip(stage, ((c0, c1), (c1, c2), (c2, c3), (c3, c4), (c4, c5))):
                    t[k] += b - a
                answers.append(status)
            rows.append((name, {k: v / (n - 1) for k, v in t.items()}))
            assert all(status == 200 for status in answers), name
    finally:
        server.engine.close()
    print(f"server CPU per request by stage (warm loops in one process, {n - 1} requests, µs):")
    print(f"{'stage':<34}" + "".join(f"{name:>10}" for name, _ in rows))
    for stage in rows[0][1]:
        print(f"{stage:<34}" + "".join(f"{d[stage] * 1e6:>10.1f}" for _, d in rows))
    print(f"{'sum':<34}" + "".join(f"{sum(d.values()) * 1e6:>10.1f}" for _, d in rows))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_omi(outdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """OMI's omiserver built by bench/omi/build.sh, on a free loopback port; the process and the port."""
    port = free_port()
    proc = subprocess.Popen(["bash", str(ROOT / "bench" / "omi" / "run.sh"), str(outdir), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"OMI did not start on port {port}: {err.strip()[-500:]}") from None
            time.sleep(0.1)


def against_omi(outdir: Path, per_conn: int, rounds: int, workers: int) -> int:
    """The same C clients and request bytes (with __cimnamespace, which OMI needs) against ``openmi serve`` and
    OMI (bench/omi/: build.sh builds it with a Bench_Item provider, run.sh starts it), one connection and
    eight, rounds alternating between the two; the best round of each. Server CPU per request is the whole
    process tree's: openmi's supervisor and workers, OMI's omiserver, omiengine (HTTP) and omiagent (the
    provider)."""
    sys.path.insert(0, str(ROOT / "src"))

    CLIENT["cimnamespace"] = True
    conns_list = (1, 8)
    total = per_conn * sum(conns_list) * rounds + 100
    tmp, repo, users = bench_repository(total)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp / "config"))
    best: dict[tuple[str, int], tuple[float, float]] = {}
    bad = 0
    base = 100
    ours, port = serve(repo, users, env, workers)
    omi = None
    try:
        omi, omi_port = start_omi(outdir)
        for server_pid, p in ((ours.pid, port), (omi.pid, omi_port)):
            run_clients(p, 2, 50, 0, server_pid)  # warm up: openmi's one scrypt, OMI's agent and provider
        for _ in range(rounds):
            for name, server_pid, p in (("openmi", ours.pid, port), ("OMI", omi.pid, omi_port)):
                for conns in conns_list:
                    cpu0 = tree_cpu(server_pid)
                    rate, _, b = run_clients(p, conns, per_conn, base, server_pid)
                    cpu = (tree_cpu(server_pid) - cpu0) / (conns * per_conn)
                    if name == "openmi":
                        base += conns * per_conn
                    bad += b
                    if rate > best.get((name, conns), (0.0, 0.0))[0]:
                        best[name, conns] = (rate, cpu)
    finally:
        ours.terminate()
        ours.wait(30)
        if omi is not None:
            omi.terminate()
            omi.wait(30)
    version = (outdir / "omi.version").read_text().split()
    omi_name = "OMI " + ".".join(v.split("=")[1] for v in version[:3]) if len(version) >= 3 else "OMI"
    print(f"{CLIENT['action']}Instance over WS-Man, Basic on every request, keep-alive, {per_conn} requests per "
          f"connection, the same C clients and request bytes for both; best of {rounds} alternating rounds; "
          f"openmi serve --workers {workers} (non-200 answers: {bad})")
    print(f"{'':<32}" + "".join(f"{f'{c} connection(s)':>18}" for c in conns_list))
    for name, label in (("openmi", "openmi serve"), ("OMI", omi_name)):
        print(f"{label + ' round trips/s':<32}" + "".join(f"{best[name, c][0]:>18.0f}" for c in conns_list))
    print(f"{'openmi / OMI':<32}" + "".join(f"{best['openmi', c][0] / best['OMI', c][0]:>18.2f}" for c in conns_list))
    for name, label in (("openmi", "openmi CPU µs/request"), ("OMI", "OMI CPU µs/request (3 processes)")):
        print(f"{label:<32}" + "".join(f"{best[name, c][1] * 1e6:>18.0f}" for c in conns_list))
    return 0 if bad == 0 else 1


def main() -> int:
    if "--omi" in sys.argv:
        import argparse

        p = argparse.ArgumentParser(description="openmi serve against OMI (bench/omi/build.sh OMI_SRC OUTDIR first)")
        p.add_argument("--omi", required=True, type=Path, help="OMI's build directory (build.sh's OUTDIR)")
        p.add_argument("--requests", type=int, default=2000, help="requests per connection (default 2000)")
        p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
        p.add_argument("--workers", type=int, default=1, help="openmi serve --workers (default 1)")
        p.add_argument("--action", choices=("Delete", "Get"), default="Delete", help="the request (default Delete)")
        a = p.parse_args()
        CLIENT["action"] = a.action
        if loadgen() is None:
            print("the OMI comparison needs a C compiler (bench/loadgen.c)", file=sys.stderr)
            return 2
        return against_omi(a.omi, a.requests, a.rounds, a.workers)
    if "--stages" in sys.argv:
        stages()
        return 0
    if "--workers" in sys.argv or "--connections" in sys.argv:
        import argparse

        p = argparse.ArgumentParser(description="the workers × connections sweep")
        p.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
        p.add_argument("--connections", default="1,4,8,16", help="comma-separated (default 1,4,8,16)")
        p.add_argument("--requests", type=int, default=1000, help="requests per connection (default 1000)")
        p.add_argument("--client", choices=("c", "python"), default="c",
                       help="the load generator: bench/loadgen.c (default; Python if no C compiler) or Python")
        p.add_argument("--action", choices=("Delete", "Get"), default="Delete", help="the request (default Delete)")
        a = p.parse_args()
        CLIENT["kind"], CLIENT["action"] = a.client, a.action
        return sweep([int(x) for x in a.workers.split(",")], [int(x) for x in a.connections.split(",")], a.requests)
    per_conn = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    sys.path.insert(0, str(ROOT / "src"))

    total = per_conn * (1 + 8)
    tmp, repo, users = bench_repository(total)
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
    print("against OMI: bench/bench_server.py --omi OMI_OUT (OMI built by bench/omi/build.sh)")
    return 0 if bad1 + bad8 == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

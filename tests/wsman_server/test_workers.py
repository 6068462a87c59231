"""``openmi serve --workers 2``: two processes on one port and one SQLite file. Concurrent clients create,
enumerate (several Pulls), get and delete across the workers; a class defined mid-run by another process
is served by both; concurrent deletes of one instance give exactly one OK; a killed worker is restarted;
SIGTERM stops everything."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import AuthType, DestinationOptions, MIError, MIResult, MIType
from openmi.wsman_server.users import UserStore

from ..cli.conftest import clean_env, openmi_exe

PASSWORD = "Secr3t-pw!"
MOF = "class Sample_Person { [Key] uint32 Id; string Name; };\n"


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int, db: Path) -> None:
        self.proc, self.port, self.db = proc, port, db

    def session(self, app: openmi.Application) -> openmi.Session:
        o = DestinationOptions("http", self.port, encryption="never", max_elements=3)
        o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
        return app.new_session("127.0.0.1", "WINRM", o)

    def workers(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        return sorted(int(p) for p in out.stdout.split())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as served:
        yield served


@contextlib.contextmanager
def serving(tmp_path: Path, *extra: str) -> Iterator[Served]:
    env = clean_env(tmp_path)
    users = tmp_path / "users.json"
    UserStore(users).add("alice", PASSWORD)
    (tmp_path / "sample.mof").write_text(MOF)
    db = tmp_path / "served.db"
    proc = subprocess.Popen(
        [*openmi_exe(), "serve", "--workers", "2", "--repository", str(db), "--users", str(users),
         "--http-port", "0", "--https-port", "none", "--allow-unencrypted", "--mof-file", str(tmp_path / "sample.mof"),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr.read())
    assert proc.stderr.readline() == "openmi: 2 workers\n"
    port = int(line.split("://", 1)[1].split(":")[1].split("/")[0])
    served = Served(proc, port, db)
    for _ in range(600):  # the supervisor speaks before it forks: wait until both workers exist
        if len(served.workers()) == 2:
            break
        threading.Event().wait(0.1)
    try:
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        proc.stdout.close()
        proc.stderr.close()


def _run_threads(n: int, target: object) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrapped(i: int) -> None:
        try:
            target(i)  # type: ignore[operator]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return errors


def test_two_workers_serve_one_repository(served: Served) -> None:
    assert len(served.workers()) == 2
    with openmi.Application() as app:
        def client(i: int) -> None:
            s = served.session(app)
            ids = range(i * 100, i * 100 + 8)
            for pid in ids:
                s.create(openmi.Instance("Sample_Person", {"Id": pid, "Name": f"p{pid}"}))
            mine = {int(x["Id"]) for x in s.enumerate("Sample_Person") if int(x["Id"]) in ids}
            assert mine == set(ids)  # 3 per Pull: several Pulls on the client's connection
            for pid in ids:
                assert s.get(openmi.Instance("Sample_Person", {"Id": pid}))["Name"] == f"p{pid}"
                s.delete(openmi.Instance("Sample_Person", {"Id": pid}))

        assert _run_threads(6, client) == []

        # a class defined mid-run by another process sharing the file: both workers serve it at once
        with openmi.Server(served.db, shared=True) as other:
            other.define_class("root/cimv2", openmi.Class("Sample_Late", properties=[
                openmi.Property("K", MIType.STRING, key=True)]))

        def late(i: int) -> None:
            s = served.session(app)
            s.create(openmi.Instance("Sample_Late", {"K": f"k{i}"}))
            assert f"k{i}" in {x["K"] for x in s.enumerate("Sample_Late")}

        assert _run_threads(6, late) == []

        # concurrent deletes of one instance, each client on its own connection: exactly one OK
        for round_ in range(3):
            served.session(app).create(openmi.Instance("Sample_Person", {"Id": 9000 + round_}))
            results: list[MIResult] = []
            barrier = threading.Barrier(6)

            def delete(i: int, pid: int = 9000 + round_, barrier: threading.Barrier = barrier,
                       results: list[MIResult] = results) -> None:
                s = served.session(app)
                s.test_connection().get_instance()  # connected before the race starts
                barrier.wait(60)
                try:
                    s.delete(openmi.Instance("Sample_Person", {"Id": pid}))
                    results.append(MIResult.OK)
                except MIError as exc:
                    results.append(exc.result)

            assert _run_threads(6, delete) == []
            assert sorted(results) == [MIResult.OK] + [MIResult.NOT_FOUND] * 5


def test_a_killed_worker_is_restarted_and_sigterm_stops_all(served: Served) -> None:
    before = served.workers()
    os.kill(before[0], signal.SIGKILL)
    with openmi.Application() as app:
        s = served.session(app)
        for i in range(20):  # served meanwhile by the survivor, then by both
            s.create(openmi.Instance("Sample_Person", {"Id": i}))
    for _ in range(600):
        now = served.workers()
        if len(now) == 2 and before[0] not in now:
            break
        threading.Event().wait(0.1)
    now = served.workers()
    assert len(now) == 2 and before[0] not in now and before[1] in now
    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(60) == 0
    assert served.proc.stderr is not None
    assert re.search(rf"worker \d \(pid {before[0]}\) exited \(killed by signal 9\); restarting it",
                     served.proc.stderr.read())
    for pid in now:  # the workers went with the supervisor
        assert not os.path.exists(f"/proc/{pid}") or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def _post(port: int, req: object) -> object:
    """One WS-Man request on a new TCP connection (so on whichever worker the kernel hands it to)."""
    import base64
    import http.client

    from openmi.protocol import wsman

    body = wsman.build_request(req)  # type: ignore[arg-type]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        conn.request("POST", "/wsman", body, {"Content-Type": "application/soap+xml;charset=UTF-8",
                                              "Authorization": f"Basic {auth}"})
        r = conn.getresponse()
        return wsman.parse_response(r.read(), r.getheader("Content-Type"), req)  # type: ignore[arg-type]
    finally:
        conn.close()


def test_a_pull_on_any_worker_continues_the_enumeration(served: Served) -> None:
    """Each Pull on a connection of its own: about half land on the worker that does not hold the context,
    which hands them to the one that does. Every enumeration reads every instance once; a Release on any
    worker ends it (a Pull after that is refused)."""
    from openmi.protocol import wsman

    with openmi.Application() as app:
        s = served.session(app)
        for i in range(12):
            s.create(openmi.Instance("Sample_Person", {"Id": i, "Name": f"p{i}"}))
    for round_ in range(4):
        first = _post(served.port, wsman.EnumerateRequest(namespace="root/cimv2", class_name="Sample_Person",
                                                          optimize=True, max_elements=1))
        assert isinstance(first, wsman.EnumerateResponse)
        context, got = first.context, [int(x["Id"]) for x in first.items]
        assert context and re.search(r"-w[01]$", context), context  # the worker that holds it
        while context is not None:
            page = _post(served.port, wsman.PullRequest(namespace="root/cimv2", class_name="Sample_Person",
                                                        context=context, max_elements=1))
            assert isinstance(page, wsman.PullResponse)
            got += [int(x["Id"]) for x in page.items]
            context = None if page.end_of_sequence else page.context
            if round_ == 3 and len(got) == 4:  # the last round is released half way, from any worker
                _post(served.port, wsman.ReleaseRequest(namespace="root/cimv2", class_name="Sample_Person",
                                                        context=context))
                for _ in range(4):
                    with pytest.raises(MIError) as info:
                        _post(served.port, wsman.PullRequest(namespace="root/cimv2", class_name="Sample_Person",
                                                             context=context, max_elements=1))
                    assert info.value.result == MIResult.INVALID_ENUMERATION_CONTEXT
                break
        else:
            assert sorted(got) == list(range(12))


def test_a_subscription_is_pulled_and_ended_through_any_worker(served: Served) -> None:
    """A Pull-mode subscription lives in one worker; Pulls and the Unsubscribe on connections of their own
    reach it whichever worker takes them."""
    from openmi.protocol import wsman
    from openmi.protocol.wsman import eventing as ev
    from openmi.protocol.wsman import namespaces as wns

    with openmi.Application() as app:
        s = served.session(app)
        for i in range(6):
            s.create(openmi.Instance("Sample_Person", {"Id": 500 + i}))
        sub = _post(served.port, ev.SubscribeRequest(
            namespace="root/cimv2", class_name="*", delivery_mode=ev.MODE_PULL, heartbeat=0.5,
            filter=wsman.Filter(dialect=wns.DIALECT_WQL,
                                query="SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'")))
        assert isinstance(sub, ev.SubscribeResponse) and sub.context and re.search(r"-w[01]$", sub.context)
        for i in range(6):
            s.delete(openmi.Instance("Sample_Person", {"Id": 500 + i}))
        got: list[int] = []
        for _ in range(60):
            page = _post(served.port, wsman.PullRequest(namespace="root/cimv2", class_name="*", context=sub.context,
                                                        max_elements=1, operation_timeout=0.5))
            assert isinstance(page, wsman.PullResponse)
            got += [int(x["SourceInstance"]["Id"]) for x in page.items]
            if len(got) == 6:
                break
        assert got == [500 + i for i in range(6)]
        _post(served.port, ev.UnsubscribeRequest(namespace="root/cimv2", class_name="*", identifier=sub.context))
        with pytest.raises(MIError):  # gone, whichever worker is asked
            for _ in range(4):
                _post(served.port, wsman.PullRequest(namespace="root/cimv2", class_name="*", context=sub.context,
                                                     max_elements=1, operation_timeout=0.5))


def test_changes_through_any_worker_reach_every_subscriber(served: Served) -> None:
    """Subscribers on connections of their own (so on either worker) each hear every delete, whichever worker
    served it: the workers tell each other what they watch and hand each other the events."""
    n_subs, n_events = 4, 12
    with openmi.Application() as app:
        served.session(app).create(openmi.Instance("Sample_Person", {"Id": 700}))
        subs = []
        for _ in range(n_subs):
            s = served.session(app)  # a session of its own: its own connections
            op = s.subscribe("root/cimv2", "WQL", "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA "
                             "'Sample_Person'", flags=openmi.OperationFlags.REPORT_OPERATION_STARTED)
            assert op.get_indication(timeout=60).result == MIResult.OK  # live
            subs.append(op)
        for i in range(n_events):
            s = served.session(app)  # each change on a new connection: either worker serves it
            s.create(openmi.Instance("Sample_Person", {"Id": 800 + i}))
            s.delete(openmi.Instance("Sample_Person", {"Id": 800 + i}))
        for op in subs:
            got = [op.get_indication(timeout=60).instance["SourceInstance"]["Id"] for _ in range(n_events)]
            assert sorted(int(x) for x in got) == [800 + i for i in range(n_events)]
            op.cancel()
            op.close()


def test_the_command_line_works_on_the_file_while_it_is_served(served: Served, tmp_path: Path) -> None:
    """`openmi mof compile` and `openmi ci` on the repository a running `openmi serve` shares: both succeed,
    and the served class and instance are seen over WS-Man at once (the workers' generation check)."""
    env = clean_env(tmp_path)
    (tmp_path / "late.mof").write_text("class Sample_Cli { [Key] string K; string V; };\n")
    r = subprocess.run([*openmi_exe(), "mof", "compile", str(tmp_path / "late.mof"), "--repository", str(served.db)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*openmi_exe(), "ci", "root/cimv2", "{", "Sample_Cli", "K", "a", "*V", "from the cli", "}",
                        "--repository", str(served.db)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    with openmi.Application() as app:
        for _ in range(4):  # new sessions: either worker
            got = served.session(app).enumerate("Sample_Cli")
            assert [(x["K"], x["V"]) for x in got] == [("a", "from the cli")]


def _post_many(port: int, req: object, times: int) -> tuple[list[object], list[MIError]]:
    """The same request ``times`` times, each on a new connection: (the answers, the refusals)."""
    answers: list[object] = []
    refused: list[MIError] = []
    for _ in range(times):
        try:
            answers.append(_post(port, req))
        except MIError as exc:
            refused.append(exc)
    return answers, refused


def test_per_user_bounds_count_every_worker(tmp_path: Path) -> None:
    """max_enumerations_per_user and max_subscriptions_per_user bound a user across the workers (each
    request on a new connection, so on either worker): the bound's count, and not twice it, is open at
    once; one more is refused with the bound named; releasing one makes room again."""
    from openmi.protocol import wsman
    from openmi.protocol.wsman import eventing as ev
    from openmi.protocol.wsman import namespaces as wns

    conf = tmp_path / "serve.conf"
    conf.write_text("max_enumerations_per_user = 4\nmax_subscriptions_per_user = 3\n")
    with serving(tmp_path, "--config", str(conf)) as served:
        with openmi.Application() as app:
            s = served.session(app)
            for i in range(3):
                s.create(openmi.Instance("Sample_Person", {"Id": 900 + i}))
        enumerate_ = wsman.EnumerateRequest(namespace="root/cimv2", class_name="Sample_Person", optimize=True,
                                            max_elements=1)
        opened, refused = _post_many(served.port, enumerate_, 16)
        contexts = [r.context for r in opened if isinstance(r, wsman.EnumerateResponse) and r.context]
        assert len(contexts) == 4 and len(refused) == 12
        assert all(e.result == MIResult.SERVER_LIMITS_EXCEEDED and "(4)" in e.message for e in refused)
        _post(served.port, wsman.ReleaseRequest(namespace="root/cimv2", class_name="Sample_Person",
                                                context=contexts[0]))
        r = _post(served.port, enumerate_)  # room for one again, on whichever worker
        assert isinstance(r, wsman.EnumerateResponse) and r.context

        subscribe = ev.SubscribeRequest(
            namespace="root/cimv2", class_name="*", delivery_mode=ev.MODE_PULL, heartbeat=5,
            filter=wsman.Filter(dialect=wns.DIALECT_WQL,
                                query="SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'"))
        live, sub_refused = _post_many(served.port, subscribe, 12)
        subs = [r.identifier for r in live if isinstance(r, ev.SubscribeResponse)]
        assert len(subs) == 3 and len(sub_refused) == 9
        assert all(e.result == MIResult.SERVER_LIMITS_EXCEEDED and "(3)" in e.message for e in sub_refused)
        _post(served.port, ev.UnsubscribeRequest(namespace="root/cimv2", class_name="*", identifier=subs[0]))
        assert isinstance(_post(served.port, subscribe), ev.SubscribeResponse)


def test_a_bookmark_resumes_on_whichever_worker_is_asked(served: Served) -> None:
    """A subscriber that lost its subscription comes back with its last bookmark on a new connection (so on
    either worker): the Subscribe is handed to the worker that issued the bookmark, and the events after it
    are all there — also those the other worker committed after the subscriber left."""
    from openmi.protocol import wsman
    from openmi.protocol.wsman import eventing as ev
    from openmi.protocol.wsman import namespaces as wns

    def subscribe(bookmark: str | None = None) -> str:
        sub = _post(served.port, ev.SubscribeRequest(
            namespace="root/cimv2", class_name="*", delivery_mode=ev.MODE_PULL, heartbeat=0.5, send_bookmarks=True,
            bookmark=bookmark, filter=wsman.Filter(
                dialect=wns.DIALECT_WQL,
                query="SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'")))
        assert isinstance(sub, ev.SubscribeResponse) and sub.context
        return sub.context

    def pull(context: str, count: int) -> tuple[list[int], str | None]:
        got: list[int] = []
        mark = None
        for _ in range(60):
            page = _post(served.port, wsman.PullRequest(namespace="root/cimv2", class_name="*", context=context,
                                                        max_elements=10, operation_timeout=0.5))
            assert isinstance(page, wsman.PullResponse)
            got += [int(x["SourceInstance"]["Id"]) for x in page.items]
            mark = page.bookmark or mark
            if len(got) >= count:
                break
        return got, mark

    def unsubscribe(context: str) -> None:
        _post(served.port, ev.UnsubscribeRequest(namespace="root/cimv2", class_name="*", identifier=context))

    with openmi.Application() as app:
        s = served.session(app)
        for i in range(9):
            s.create(openmi.Instance("Sample_Person", {"Id": 700 + i}))
    first = subscribe()

    def delete(ids: range) -> None:
        for i in ids:  # each on a new connection: either worker commits it
            with openmi.Application() as app:
                served.session(app).delete(openmi.Instance("Sample_Person", {"Id": 700 + i}))

    delete(range(3))
    got, mark = pull(first, 3)
    assert got == [700, 701, 702] and mark is not None and mark.endswith(first[-3:])  # the worker's tag
    unsubscribe(first)
    delete(range(3, 6))  # while nobody listens
    for _ in range(4):  # back with the bookmark, each time on a new connection
        again = subscribe(mark)
        assert again[-3:] == first[-3:]  # handed to the worker that keeps the events
        got, _ = pull(again, 3)
        assert got == [703, 704, 705]
        unsubscribe(again)


def _identify_with_basic() -> bytes:
    """An authenticated Identify as raw HTTP (a connection that carried one is an authenticated one)."""
    import base64

    auth = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    body = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
            b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"><s:Header/>'
            b"<s:Body><wsmid:Identify/></s:Body></s:Envelope>")
    return (f"POST /wsman HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def test_connection_bounds_are_the_servers_not_each_workers(tmp_path: Path) -> None:
    """``max_connections`` bounds the server: with two workers each holds half. Ten authenticated kept-alive
    connections, each answered before the next opens: at most four are served (per worker they would be
    eight), the rest refused with 503."""
    import socket

    (tmp_path / "serve.conf").write_text("max_connections = 4\nreserved_connections = 1\n")
    with serving(tmp_path, "--config", str(tmp_path / "serve.conf")) as served:
        request = _identify_with_basic()
        kept, statuses = [], []
        try:
            for _ in range(10):
                sock = socket.create_connection(("127.0.0.1", served.port), timeout=60)
                sock.sendall(request)
                answer = b""
                while b"\r\n\r\n" not in answer:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
                statuses.append(int(answer.split(b" ", 2)[1]) if answer else 0)
                kept.append(sock)
        finally:
            for sock in kept:
                sock.close()
        assert 1 <= statuses.count(200) <= 4, statuses
        assert set(statuses) <= {200, 503}, statuses


def _established(pid: int, port: int) -> int:
    """How many TCP connections to ``port`` the process ``pid`` holds (from /proc: its socket inodes)."""
    inodes = set()
    for name in ("tcp", "tcp6"):
        with open(f"/proc/net/{name}") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # local port, ESTABLISHED
                    inodes.add(fields[9])
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in {f"socket:[{i}]" for i in inodes}:
                held += 1
    return held


def test_connections_spread_over_the_workers(served: Served) -> None:
    """Workers share the listening socket and take one connection per wake-up (and one that holds more than
    another leaves the next to it: test_http_limits), so a burst of eight connections, each then kept alive,
    does not land on the first worker to wake (which, accepting whatever waited, took all of them)."""
    import socket

    request = _identify_with_basic()
    socks = [socket.create_connection(("127.0.0.1", served.port), timeout=60) for _ in range(8)]  # the burst
    try:
        for sock in socks:
            sock.sendall(request)
        for sock in socks:
            answer = b""
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                assert chunk, "closed without an answer"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
        counts = [_established(pid, served.port) for pid in served.workers()]
        assert sum(counts) == 8, counts
        assert min(counts) >= 2, counts
    finally:
        for sock in socks:
            sock.close()

"""``openmi serve --workers 2``: a method call is heard by a subscriber whichever worker serves it (issue #13).

A subscription lives in one worker; each Invoke comes on a connection of its own, so either worker may serve
it. The worker that serves it publishes the CIM_InstMethodCall and, when the other watches the namespace,
hands it over: the subscriber hears every call exactly once.

``openmi serve`` loads MOF, not Python providers, so the test starts it through a small launcher that gives
each worker's engine (made by ``openmi.wsman_server.workers``) Sample_Calc's provider before serving; the
rest is the real command: the supervisor, the forked workers, the event link of their shared file and the HTTP front.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import MIResult, MIType, OperationFlags
from openmi.wsman_server.users import UserStore

from ..cli.conftest import clean_env
from .test_workers import PASSWORD, Served, _post

MOF = "class Sample_Calc { [Key] uint32 Id; uint32 Who([In] uint32 N); };\n"

# Sample_Calc's provider answers a call with the pid of the worker that served it.
LAUNCHER = '''
import os
import sys

import openmi
from openmi.cli.main import main
from openmi.wsman_server import workers


class Calc:
    def invoke(self, ctx, ns, cls, method, target, params):
        return os.getpid()


class Engine(openmi.Server):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.lookup_class("root/cimv2", "Sample_Calc") is not None:  # (the supervisor's first look has none)
            self.register_provider("root/cimv2", "Sample_Calc", Calc())


workers.Server = Engine
sys.exit(main(sys.argv[1:]))
'''


@contextlib.contextmanager
def serving(tmp_path: Path) -> Iterator[Served]:
    env = clean_env(tmp_path)
    users = tmp_path / "users.json"
    UserStore(users).add("alice", PASSWORD)
    (tmp_path / "calc.mof").write_text(MOF)
    (tmp_path / "launch.py").write_text(LAUNCHER)
    db = tmp_path / "served.db"
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "launch.py"), "serve", "--workers", "2", "--repository", str(db),
         "--users", str(users), "--http-port", "0", "--https-port", "none", "--allow-unencrypted",
         "--mof-file", str(tmp_path / "calc.mof")],
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
            proc.terminate()
            proc.wait(60)
        proc.stdout.close()
        proc.stderr.close()


def _who(port: int, n: int) -> int:
    """Sample_Calc(Id=n).Who(N=n) on a TCP connection of its own (either worker may take it): the pid of the
    worker that served it."""
    from openmi.protocol import wsman

    params = openmi.Instance("__PARAMETERS")
    params.add_element("N", n, MIType.UINT32)
    answer = _post(port, wsman.InvokeRequest(namespace="root/cimv2", class_name="Sample_Calc", method="Who",
                                             selectors={"Id": str(n)}, parameters=params))
    assert isinstance(answer, wsman.InvokeResponse) and answer.parameters is not None
    return int(answer.parameters["ReturnValue"])


def test_every_method_call_is_heard_once_whichever_worker_serves_it(tmp_path: Path) -> None:
    with serving(tmp_path) as served, openmi.Application() as app:
        workers = set(served.workers())
        assert len(workers) == 2
        s = served.session(app)
        with s.subscribe("root/cimv2", "WQL", "SELECT * FROM CIM_InstMethodCall",
                         flags=OperationFlags.REPORT_OPERATION_STARTED) as op:
            started = op.get_indication(timeout=60)
            assert started.result == MIResult.OK and started.instance is None
            served_by: dict[int, int] = {}
            n = 0
            while n < 24 or set(served_by.values()) != workers:  # until both served some
                assert n < 400, f"one worker took every connection: {set(served_by.values())}"
                served_by[n] = _who(served.port, n)
                n += 1
            heard: dict[int, int] = {}
            for _ in range(len(served_by)):
                got = op.get_indication(timeout=60)
                assert got.result == MIResult.OK and got.instance is not None, got.error_message
                ind = got.instance
                assert ind.class_name == "CIM_InstMethodCall" and ind["MethodName"] == "Who"
                n = int(ind["MethodParameters"]["N"])
                assert int(ind["SourceInstance"]["Id"]) == n
                assert n not in heard, f"call {n} heard twice"
                heard[n] = int(ind["ReturnValue"])
            assert heard == served_by  # every call, each once, with the answer of the worker that served it
            with pytest.raises(TimeoutError):
                op.get_indication(timeout=1.0)

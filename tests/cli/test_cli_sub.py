"""``openmi sub``: omicli's subscription verb, locally and against a served host — indications printed as they
come (``--json`` one per line), ending at ``--count``, ``--timeout`` or Ctrl-C (a real SIGINT to a real
process, which then unsubscribes), and the exit status of a subscription that fails."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import openmi
from openmi.wsman_server.run import WSManServer

from .conftest import CLI, PASSWORD, clean_env, openmi_exe

DELETIONS = "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'"
WAIT = 30.0


def _delete_when_subscribed(served: WSManServer, ids: list[int]) -> threading.Thread:
    """Once the server holds a subscription, delete these people through its engine."""
    def run() -> None:
        deadline = time.monotonic() + WAIT
        while len(served.service.subscriptions) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        with openmi.Application() as app:
            s = app.new_session(server=served.engine)
            for i in ids:
                s.delete(openmi.Instance("Sample_Person", {"Id": i}))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _people(served: WSManServer, ids: list[int]) -> None:
    with openmi.Application() as app:
        s = app.new_session(server=served.engine)
        for i in ids:
            s.create(openmi.Instance("Sample_Person", {"Id": i, "Name": f"p{i}"}))


def test_sub_json_until_count(remote: CLI, served: WSManServer) -> None:
    _people(served, [1, 2, 3])
    t = _delete_when_subscribed(served, [2, 1])
    r = remote("sub", "root/cimv2", "--querylang", "WQL", "--queryexpr", DELETIONS, "--json", "--count", "2")
    t.join(WAIT)
    assert r.code == 0, r.err
    lines = [json.loads(x) for x in r.out.splitlines()]
    assert [x["class"] for x in lines] == ["CIM_InstDeletion"] * 2
    assert [x["properties"]["SourceInstance"]["properties"]["Id"] for x in lines] == [2, 1]
    _gone(served)  # closing the operation unsubscribed


def test_sub_text_and_verbose_bookmark(remote: CLI, served: WSManServer) -> None:
    _people(served, [5])
    t = _delete_when_subscribed(served, [5])
    r = remote("sub", "root/cimv2", "--queryexpr", DELETIONS, "--count", "1", "-v", "--heartbeat", "1")
    t.join(WAIT)
    assert r.code == 0, r.err
    assert "CIM_InstDeletion" in r.out and "p5" in r.out
    assert "openmi: bookmark: " in r.err


def test_sub_timeout_with_nothing_to_say(remote: CLI) -> None:
    r = remote("sub", "root/cimv2", "--queryexpr", DELETIONS, "--timeout", "0.5", "--heartbeat", "0.2")
    assert (r.code, r.out) == (0, "")


def test_sub_errors(remote: CLI, sample: CLI) -> None:
    r = remote("sub", "root/cimv2", "--queryexpr", "SELECT FROM WHERE")
    assert r.code == 15 and "MI_RESULT_INVALID_QUERY" in r.err
    r = remote("sub", "root/cimv2", "--querylang", "CQL", "--queryexpr",
               "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA No_Such_Class")
    assert r.code == 6, r.err
    r = remote("sub", "root/cimv2", "--querylang", "XPath", "--queryexpr", "/a")
    assert r.code == 4 and "XPath" in r.err
    r = remote("sub", "root/cimv2")
    assert r.code == 4 and "--queryexpr" in r.err
    r = remote("sub", "root/cimv2", "--queryexpr", DELETIONS, "--timeout", "0")
    assert r.code == 4


def test_sub_local(sample: CLI) -> None:
    """On the embedded server: the same subscription runs (nothing happens in this process meanwhile)."""
    r = sample("sub", "root/cimv2", "--queryexpr", DELETIONS, "--timeout", "0.3")
    assert (r.code, r.out) == (0, "")
    r = sample("sub", "root/cimv2", "--queryexpr",
               "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person' OR 1=1")
    assert r.code == 7, r.err  # ISA inside OR: NOT_SUPPORTED
    r = sample("sub", "root/cimv2", "--queryexpr", DELETIONS, "--bookmark", "nonsense", "--timeout", "5")
    assert r.code == 4 and "bookmark" in r.err


def test_sub_until_ctrl_c(served: WSManServer, tmp_path: Path) -> None:
    """A real process, interrupted: it exits 0 after printing what came, and the server's subscription goes."""
    _people(served, [9])
    env = clean_env(tmp_path)
    env.update(OPENMI_PASSWORD=PASSWORD)
    proc = subprocess.Popen(
        [*openmi_exe(), "sub", "root/cimv2", "--queryexpr", DELETIONS, "--json", "--hostname", "127.0.0.1",
         "--port", str(served.port("http")), "-u", "alice", "--encryption", "none", "--heartbeat", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        _delete_when_subscribed(served, [9]).join(WAIT)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed and flushed as it came
        assert json.loads(line)["properties"]["SourceInstance"]["properties"]["Id"] == 9
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _gone(served)


def _gone(served: WSManServer) -> None:
    deadline = time.monotonic() + WAIT
    while len(served.service.subscriptions) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(served.service.subscriptions) == 0

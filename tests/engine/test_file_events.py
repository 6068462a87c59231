"""Events cross the processes that share one repository file (issue #13): a write committed by one process
reaches the subscribers of another — ``openmi sub`` in one terminal and ``openmi di`` in another, a served
file changed by a local command, a script beside a running server (openmi.engine.filevents).

Real processes throughout: the writers are ``python -c`` children or the ``openmi`` command; a listener held
still with SIGSTOP is a listener whose buffer fills; a dead process's entry is one a killed child left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import MIResult

NS = "root/cimv2"
MOF = "class Sample_P { [Key] uint32 Id; string Name; uint32 Size; };"
DELETIONS = "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_P'"
WAIT = 30.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="shared repository files are for POSIX systems")


def _run(path: Path, code: str) -> None:
    """Run ``code`` in another Python process with ``srv`` (the repository, shared) and ``s`` (a session)."""
    prog = ("import openmi\n"
            f"with openmi.Server({str(path)!r}, shared=True) as srv, openmi.Application() as app:\n"
            "    s = app.new_session(server=srv)\n"
            + "".join(f"    {line}\n" for line in code.splitlines()))
    subprocess.run([sys.executable, "-c", prog], check=True, timeout=WAIT)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "repo.db"
    with openmi.Server(path, shared=True) as srv, openmi.Application() as app:
        srv.compile_mof(MOF, NS)
        s = app.new_session(server=srv)
        for i in range(1, 6):
            s.create(openmi.Instance("Sample_P", {"Id": i, "Name": f"p{i}", "Size": i}), namespace=NS)
    yield path


def _entries(path: Path) -> list[str]:
    d = Path(str(path) + "-events")
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def _until_listening(path: Path) -> None:
    """Wait until a process says in the file's events directory that it listens (a subscription went live)."""
    deadline = time.monotonic() + WAIT
    while not any(n.endswith(".ns") for n in _entries(path)):
        assert time.monotonic() < deadline, "no subscriber went live"
        time.sleep(0.02)


def test_another_process_changes_reach_a_subscriber_in_commit_order(repo: Path) -> None:
    with openmi.Server(repo, shared=True) as srv, openmi.Application() as app:
        s = app.new_session(server=srv)
        q = "SELECT * FROM CIM_InstIndication WHERE SourceInstance ISA 'Sample_P'"
        with s.subscribe(NS, "WQL", q) as op:
            _until_listening(repo)  # this process says it listens
            _run(repo, "s.delete(openmi.Instance('Sample_P', {'Id': 2}), namespace='root/cimv2')\n"
                       "s.modify(openmi.Instance('Sample_P', {'Id': 3, 'Size': 30}), namespace='root/cimv2')\n"
                       "s.create(openmi.Instance('Sample_P', {'Id': 9, 'Name': 'new'}), namespace='root/cimv2')")
            got = [op.get_indication() for _ in range(3)]
            assert [r.instance.class_name for r in got] == ["CIM_InstDeletion", "CIM_InstModification",
                                                           "CIM_InstCreation"]
            assert got[0].instance["SourceInstance"]["Name"] == "p2"
            assert got[1].instance["SourceInstance"]["Size"] == 30
            assert got[1].instance["PreviousInstance"]["Size"] == 3
            assert got[2].instance["SourceInstance"]["Name"] == "new"
            assert all(r.bookmark for r in got)
    assert _entries(repo) == []  # … and no longer once it closed


def test_an_event_too_large_for_a_datagram_travels_whole(repo: Path) -> None:
    big = "x" * 300_000
    _run(repo, "s.create(openmi.Instance('Sample_P', {'Id': 50, 'Name': 'x' * 300_000}), namespace='root/cimv2')")
    with openmi.Server(repo, shared=True) as srv, openmi.Application() as app:
        s = app.new_session(server=srv)
        with s.subscribe(NS, "WQL", DELETIONS) as op:
            _until_listening(repo)
            _run(repo, "s.delete(openmi.Instance('Sample_P', {'Id': 50}), namespace='root/cimv2')")
            r = op.get_indication()
            assert r.instance["SourceInstance"]["Name"] == big
            assert not [n for n in _entries(repo) if n.endswith(".big")]  # the receiver removed the file


def test_an_entry_left_by_a_dead_process_is_removed(repo: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    child.kill()
    child.wait()
    d = Path(str(repo) + "-events")
    d.mkdir(exist_ok=True)
    stale = d / f"{child.pid}-deadbeef00.ns"
    stale.write_text(json.dumps([NS]))
    (d / f"{child.pid}-deadbeef00.ev").write_text("")
    _run(repo, "s.delete(openmi.Instance('Sample_P', {'Id': 1}), namespace='root/cimv2')")
    assert _entries(repo) == []


def test_a_listener_that_stops_reading_hears_how_many_it_lost(repo: Path, tmp_path: Path) -> None:
    """A subscriber process held still (SIGSTOP): its socket's buffer fills, the writer gives up on it after a
    moment instead of waiting, and once it reads again its subscription ends saying how many it missed."""
    _run(repo, "for i in range(100, 112):\n"
               "    s.create(openmi.Instance('Sample_P', {'Id': i, 'Name': 'y' * 60000}), namespace='root/cimv2')")
    out = tmp_path / "out.txt"
    prog = ("import openmi, sys\n"
            f"with openmi.Server({str(repo)!r}, shared=True) as srv, openmi.Application() as app:\n"
            "    s = app.new_session(server=srv)\n"
            f"    with s.subscribe('root/cimv2', 'WQL', {DELETIONS!r}) as op:\n"
            "        print('live', flush=True)\n"
            "        n = 0\n"
            "        while (r := op.get_indication()).more_results:\n"
            "            n += 1\n"
            f"        open({str(out)!r}, 'w').write(f'{{n}} {{int(r.result)}} {{r.error_message}}')\n")
    child = subprocess.Popen([sys.executable, "-c", prog], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "live\n"
        _until_listening(repo)
        child.send_signal(signal.SIGSTOP)
        _run(repo, "for i in range(100, 111):\n"
                   "    s.delete(openmi.Instance('Sample_P', {'Id': i}), namespace='root/cimv2')")
        child.send_signal(signal.SIGCONT)
        _run(repo, "s.delete(openmi.Instance('Sample_P', {'Id': 111}), namespace='root/cimv2')")
        child.wait(WAIT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    taken, code, message = out.read_text().split(" ", 2)
    assert int(code) == MIResult.SERVER_LIMITS_EXCEEDED
    lost = int(message.split(" event(s) were dropped")[0].rsplit(" ", 1)[1])
    assert lost > 0 and int(taken) + lost >= 11, message  # every delete is either read or counted lost


def test_openmi_sub_hears_openmi_di_of_another_terminal(repo: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENMI_")}
    env.update(OPENMI_REPOSITORY=str(repo), XDG_CONFIG_HOME=str(tmp_path / "config"))
    exe = [sys.executable, "-m", "openmi"]
    sub = subprocess.Popen([*exe, "sub", NS, "--querylang", "WQL", "--queryexpr", DELETIONS, "--json",
                            "--count", "1", "--timeout", str(WAIT)], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        _until_listening(repo)
        done = subprocess.run([*exe, "di", NS, "{", "Sample_P", "Id", "4", "}"], env=env, capture_output=True,
                              text=True, timeout=WAIT)
        assert done.returncode == 0, done.stderr
        out, err = sub.communicate(timeout=WAIT)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert sub.returncode == 0, err
    event = json.loads(out)
    assert event["class"] == "CIM_InstDeletion"
    assert event["properties"]["SourceInstance"]["properties"]["Name"] == "p4"

"""Crash consistency: SIGKILL a process in the middle of concurrent writes, then check the repository.

A round starts ``openmi serve`` (or an embedded-API writer process), lets writers create and delete
instances, kills the process with SIGKILL at a random moment, and checks, on the repository file it left:
``PRAGMA integrity_check`` is ok; every acknowledged create is there (unless its delete was sent: a delete
the kill cut short may or may not have committed); every acknowledged delete is gone; every instance present
is whole (its Name is exactly what its writer wrote for its Id); nothing appears that no writer sent. Used by
test_crash.py (a few rounds) and ``make stress`` (many).
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import openmi

from .support import CREATE, DELETE, ServeProcess, basic, envelope, person, post, selector


@dataclass
class Ledger:
    """What the writers sent and what the server acknowledged."""

    sent: set[int] = field(default_factory=set)
    created: set[int] = field(default_factory=set)
    deleting: set[int] = field(default_factory=set)  # deletes sent: gone or not, both are right until acknowledged
    deleted: set[int] = field(default_factory=set)
    #: deletes sent: until acknowledged, the instance may or may not be there after a crash
    deleting: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def name_of(pid: int) -> str:
    """The Name written for an Id: long enough that a torn row could not pass for a whole one."""
    return f"person-{pid}-" + "x" * (pid % 97) + f"-end-{pid}"


def check(repository: Path, ledger: Ledger) -> int:
    """Assert the repository is consistent with what was acknowledged; the number of instances found."""
    db = sqlite3.connect(repository)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    with openmi.Server(repository) as engine, openmi.Application() as app:
        found = {int(i["Id"]): i["Name"] for i in app.new_session(server=engine).enumerate("Sample_Person")}
    for pid, name in found.items():
        assert pid in ledger.sent, f"instance {pid} was never sent"
        assert name == name_of(pid), f"instance {pid} is torn: {name!r}"
    lost = (ledger.created - ledger.deleted - ledger.deleting) - set(found)
    assert not lost, f"acknowledged creates lost: {sorted(lost)[:10]}"
    resurrected = ledger.deleted & set(found)
    assert not resurrected, f"acknowledged deletes undone: {sorted(resurrected)[:10]}"
    return len(found)


def serve_round(tmp: Path, ledger: Ledger, round_no: int, writers: int = 4, seconds: float = 1.0) -> int:
    """Round ``round_no`` (< 4000) against ``openmi serve`` on ``tmp``'s repository, adding to ``ledger`` (kept
    across the rounds on one repository); the number of instances found after the crash."""
    rng = random.Random(round_no)
    repository = tmp / "repository.db"
    server = ServeProcess(tmp, repository)
    stop = threading.Event()
    base = round_no * 1_000_000  # ids unique across rounds: writer w uses base + w * 100,000 + i

    def writer(w: int) -> None:
        conn = server.connection(timeout=10)
        i = 0
        mine: list[int] = []
        while not stop.is_set():
            i += 1
            if mine and rng.random() < 0.3:
                pid = mine.pop(rng.randrange(len(mine)))
                body = envelope(DELETE, "Sample_Person", selector("Id", str(pid)))
                kind = "delete"
                with ledger.lock:
                    ledger.deleting.add(pid)
            else:
                pid = base + w * 100_000 + i
                body = envelope(CREATE, "Sample_Person", body=person(pid, name_of(pid)))
                kind = "create"
                with ledger.lock:
                    ledger.sent.add(pid)
            try:
                status, _, _ = post(conn, body, {"Authorization": basic()})
            except OSError:
                return  # the server is gone
            except Exception:
                return
            if status == 200:
                with ledger.lock:
                    (ledger.created if kind == "create" else ledger.deleted).add(pid)
                if kind == "create":
                    mine.append(pid)
            else:
                raise AssertionError(f"{kind} {pid} answered {status}")

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(seconds * (0.5 + rng.random()))
    server.kill()
    stop.set()
    for t in threads:
        t.join(30)
    return check(repository, ledger)


EMBEDDED_WRITER = r"""
import sys, threading, openmi
from openmi import MIType
path, durability, writers, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
engine = openmi.Server(path, durability=durability)
if "Sample_Person" not in engine.classes("root/cimv2"):
    engine.define_class("root/cimv2", openmi.Class("Sample_Person", properties=[
        openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Name", MIType.STRING)]))
app = openmi.Application()
out = threading.Lock()
def name_of(pid):
    return f"person-{pid}-" + "x" * (pid % 97) + f"-end-{pid}"
def say(line):
    with out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
def writer(w):
    s = app.new_session(server=engine)
    mine, i = [], 0
    while True:
        i += 1
        if mine and i % 3 == 0:
            pid = mine.pop(0)
            say(f"X {pid}")
            s.delete(openmi.Instance("Sample_Person", {"Id": pid}))
            say(f"D {pid}")
        else:
            pid = base + w * 100000 + i
            say(f"S {pid}")
            s.create(openmi.Instance("Sample_Person", {"Id": pid, "Name": name_of(pid)}))
            say(f"C {pid}")
            mine.append(pid)
say("ready")
for w in range(writers):
    threading.Thread(target=writer, args=(w,), daemon=True).start()
threading.Event().wait()
"""


def embedded_round(tmp: Path, ledger: Ledger, round_no: int, durability: str = "normal", writers: int = 4,
                   seconds: float = 1.0) -> int:
    """Round ``round_no`` of the embedded API in a child process, killed with SIGKILL while it writes."""
    rng = random.Random(round_no)
    repository = tmp / f"embedded-{durability}.db"
    base = round_no * 1_000_000
    proc = subprocess.Popen([sys.executable, "-c", EMBEDDED_WRITER, str(repository), durability, str(writers),
                             str(base)], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + seconds * (0.5 + rng.random())
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    while time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait(30)
    reader.join(30)
    proc.stdout.close()
    for line in lines:
        if not line.endswith("\n"):
            continue  # cut by the kill: not a complete acknowledgement
        kind, _, pid = line.strip().partition(" ")
        {"S": ledger.sent, "C": ledger.created, "X": ledger.deleting, "D": ledger.deleted}[kind].add(int(pid))
    return check(repository, ledger)

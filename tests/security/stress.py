"""``make stress``: N clients of mixed operations for M minutes against one ``openmi serve``, then crash rounds.

    python -m tests.security.stress [--clients 16] [--minutes 2] [--crash-rounds 20]

Each client keeps one connection (Basic over plain HTTP with --allow-unencrypted) and loops over Create, Get,
Put, an optimized Enumerate (Released when not finished), Delete and Identify on its own instances. Reported:
operations and throughput, p50/p99 latency per operation, errors (anything but the expected answer; must be
0), and the server's RSS every few seconds (it must plateau). Then ``--crash-rounds`` rounds of SIGKILL during
concurrent writes, against ``openmi serve`` and the embedded API (normal and full durability), each checked
for lost acknowledged writes, resurrected deletes, torn rows and ``PRAGMA integrity_check``.
Exit status 0 only if there were no errors.
"""

from __future__ import annotations

import argparse
import http.client
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from openmi.protocol import wsman

from .crash import Ledger, embedded_round, serve_round
from .support import (
    CREATE,
    DELETE,
    ENUMERATE,
    GET,
    PUT,
    RELEASE,
    ServeProcess,
    basic,
    envelope,
    person,
    post,
    rss_bytes,
    selector,
)

_CONTEXT = re.compile(rb"<n:EnumerationContext>([^<]+)</n:EnumerationContext>")


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def add(self, op: str, seconds: float) -> None:
        with self.lock:
            self.latency.setdefault(op, []).append(seconds)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


def client(server: ServeProcess, n: int, stop: threading.Event, stats: Stats) -> None:
    rng = random.Random(n)
    conn = server.connection(timeout=60)
    auth = {"Authorization": basic()}
    mine: list[int] = []
    i = 0

    def call(op: str, body: bytes, headers: dict[str, str], want: int = 200) -> bytes | None:
        nonlocal conn
        t0 = time.perf_counter()
        try:
            status, h, data = post(conn, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            stats.error(f"{op}: {type(exc).__name__}: {exc}")
            conn = server.connection(timeout=60)
            return None
        stats.add(op, time.perf_counter() - t0)
        if status != want:
            stats.error(f"{op}: HTTP {status} {data[:200]!r}")
            return None
        if h.get("connection") == "close":
            conn = server.connection(timeout=60)
        return data

    while not stop.is_set():
        i += 1
        roll = rng.random()
        if roll < 0.25 or not mine:
            pid = n * 10_000_000 + i
            if call("create", envelope(CREATE, "Sample_Person", body=person(pid, f"c{n}-{i}")), auth) is not None:
                mine.append(pid)
        elif roll < 0.55:
            call("get", envelope(GET, "Sample_Person", selector("Id", str(rng.choice(mine)))), auth)
        elif roll < 0.70:
            pid = rng.choice(mine)
            call("put", envelope(PUT, "Sample_Person", selector("Id", str(pid)), body=person(pid, f"p{i}")), auth)
        elif roll < 0.80:
            data = call("enumerate", envelope(ENUMERATE, "Sample_Person", body=(
                "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>20</w:MaxElements></n:Enumerate>")), auth)
            m = _CONTEXT.search(data or b"")
            if m:
                call("release", envelope(RELEASE, "Sample_Person", body=(
                    f"<n:Release><n:EnumerationContext>{m.group(1).decode()}</n:EnumerationContext></n:Release>")),
                    auth)
        elif roll < 0.92:
            pid = mine.pop(rng.randrange(len(mine)))
            call("delete", envelope(DELETE, "Sample_Person", selector("Id", str(pid))), auth)
        else:
            call("identify", wsman.build_request(wsman.IdentifyRequest()), {"WSMANIDENTIFY": "unauthenticated"})


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def load(tmp: Path, clients: int, minutes: float) -> int:
    server = ServeProcess(tmp / "load")
    stats = Stats()
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(server, n, stop, stats), daemon=True) for n in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    rss: list[tuple[float, int]] = []
    try:
        while time.monotonic() - start < minutes * 60:
            rss.append((time.monotonic() - start, rss_bytes(server.pid)))
            time.sleep(min(5.0, max(1.0, minutes * 60 / 24)))
        rss.append((time.monotonic() - start, rss_bytes(server.pid)))
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        elapsed = time.monotonic() - start
        server.stop()
    total = sum(len(v) for v in stats.latency.values())
    every = [x for v in stats.latency.values() for x in v]
    print(f"load: {clients} clients, {elapsed:.0f} s, {total} operations, {total / elapsed:.0f} ops/s, "
          f"p50 {percentile(every, 0.5) * 1000:.1f} ms, p99 {percentile(every, 0.99) * 1000:.1f} ms, "
          f"errors {len(stats.errors)}")
    for op, v in sorted(stats.latency.items()):
        print(f"  {op:9s} {len(v):7d}  p50 {percentile(v, 0.5) * 1000:7.1f} ms  "
              f"p99 {percentile(v, 0.99) * 1000:7.1f} ms  mean {statistics.fmean(v) * 1000:7.1f} ms")
    print("  RSS (MB) over time: " + ", ".join(f"{t:.0f}s={b / 2**20:.0f}" for t, b in rss))
    third = max(1, len(rss) // 3)
    middle = max(b for _, b in rss[third:2 * third] or rss)
    last = max(b for _, b in rss[2 * third:] or rss)
    plateau = last <= middle * 1.10 + 8 * 2**20
    print(f"  RSS plateau: {'yes' if plateau else 'NO'} (middle third max {middle / 2**20:.0f} MB, "
          f"last third max {last / 2**20:.0f} MB)")
    for e in stats.errors[:10]:
        print("  error:", e)
    return len(stats.errors) + (0 if plateau else 1)


def crashes(tmp: Path, rounds: int) -> int:
    failures = 0
    for kind in ("serve", "embedded-normal", "embedded-full"):
        ledger = Ledger()
        found = 0
        t0 = time.monotonic()
        for r in range(rounds):
            try:
                if kind == "serve":
                    found = serve_round(tmp / kind, ledger, r, writers=8, seconds=1.5)
                else:
                    found = embedded_round(tmp / kind, ledger, r, kind.split("-")[1], writers=8, seconds=1.0)
            except AssertionError as exc:
                failures += 1
                print(f"  {kind} round {r}: FAILED: {exc}")
        print(f"crash {kind}: {rounds} SIGKILL rounds in {time.monotonic() - t0:.0f} s; acknowledged creates "
              f"{len(ledger.created)}, deletes {len(ledger.deleted)}, instances at the end {found}; "
              f"lost 0, resurrected 0, torn 0 unless reported above; integrity_check ok every round")
    return failures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--crash-rounds", type=int, default=20)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="openmi-stress-") as d:
        tmp = Path(d)
        errors = load(tmp, args.clients, args.minutes) if args.minutes > 0 else 0
        errors += crashes(tmp, args.crash_rounds) if args.crash_rounds > 0 else 0
    print("stress:", "ok" if errors == 0 else f"{errors} problems")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Issue 16 item 3: wrong passwords cannot be turned into a memory or CPU weapon.

scrypt runs in a pool of HASH_WORKERS; failures back off per client address and per user name; a success is
cached so a client that has logged in is served throughout a flood.
"""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from openmi.wsman_server import auth as server_auth
from openmi.wsman_server import users as users_module
from openmi.wsman_server.auth import FailureThrottle, ServerAuth, SharedAuthState, SharedFailureThrottle, Throttled
from openmi.wsman_server.users import UserStore

from .support import GET, ServeProcess, basic, envelope, post, rss_bytes, selector


def test_throttle_backs_off_after_free_failures_and_forgets() -> None:
    t = FailureThrottle(free=3, first=10.0, longest=40.0, memory=600.0, size=100)
    for _ in range(2):
        assert t.wait("a") == 0
        t.failed("a")
    assert t.wait("a") == 0  # two failures are free
    t.failed("a")  # the third backs off
    assert 9 < t.wait("a") <= 10
    t.failed("a")
    assert 19 < t.wait("a") <= 20
    for _ in range(10):
        t.failed("a")
    assert 39 < t.wait("a") <= 40  # capped
    assert t.wait("b") == 0  # per key
    t.succeeded("a")
    assert t.wait("a") == 0


def test_throttle_is_bounded() -> None:
    t = FailureThrottle(free=1, first=100.0, size=50)
    for i in range(1000):
        t.failed(f"k{i}")
    assert len(t) == 50
    assert t.wait("k999") > 0 and t.wait("k0") == 0  # the oldest were forgotten


@pytest.mark.parametrize("make", [
    lambda: FailureThrottle(free=3, first=10.0, longest=40.0, memory=600.0, size=100),
    lambda: SharedFailureThrottle(free=3, first=10.0, longest=40.0, memory=600.0, size=100),
], ids=["in-process", "across-workers"])
def test_both_throttles_back_off_alike(make: Any) -> None:
    t = make()
    for _ in range(2):
        t.failed("a")
    assert t.wait("a") == 0
    t.failed("a")
    assert 9 < t.wait("a") <= 10
    for _ in range(10):
        t.failed("a")
    assert 39 < t.wait("a") <= 40
    assert t.wait("b") == 0
    t.succeeded("a")
    assert t.wait("a") == 0


def test_the_shared_throttle_and_hashing_slots_span_forked_workers() -> None:
    """What one worker process records, another sees (openmi serve --workers N): a flood spread over the
    workers backs off as it would against one process, and the hashing slots are counted across them (a
    slot a worker holds is taken for the others until it lets go, or dies)."""
    import os

    shared = SharedAuthState.create()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker: five failures for one address, and it holds one hashing slot
        code = 1
        try:
            for _ in range(server_auth.FREE_FAILURES):
                shared.throttle.failed("10.0.0.9")
            shared.hashing.acquire()
            shared.logins.put(b"k" * 32, time.monotonic() + 60, b"d" * 16, time.monotonic())  # a login it checked
            os.write(ready_w, b"x")
            os.read(go_r, 1)  # (holding the slot until told)
            code = 0
        finally:
            os._exit(code)
    assert os.read(ready_r, 1) == b"x"
    assert shared.throttle.wait("10.0.0.9") > 0 and shared.throttle.wait("10.0.0.8") == 0
    assert len(shared.throttle) == 1
    taken = 0
    while shared.hashing.acquire(timeout=0.05):
        taken += 1
    assert taken == server_auth.HASH_WORKERS - 1  # the other process holds one
    for _ in range(taken):
        shared.hashing.release()
    os.write(go_w, b"x")
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    taken = 0
    while shared.hashing.acquire(timeout=0.05):
        taken += 1
    assert taken == server_auth.HASH_WORKERS  # a worker that is gone holds none
    for fd in (ready_r, ready_w, go_r, go_w):
        os.close(fd)
    assert shared.logins.get(b"k" * 32, time.monotonic()) == b"d" * 16  # its login is known here
    assert shared.logins.get(b"k" * 32, time.monotonic() + 120) is None  # until it expires
    assert shared.logins.get(b"x" * 32, time.monotonic()) is None


def test_the_shared_throttle_is_bounded() -> None:
    t = SharedFailureThrottle(free=1, first=100.0, size=64)
    for i in range(1000):
        t.failed(f"k{i}")
    assert len(t) <= 64
    assert t.wait("k999") > 0


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    s = UserStore(tmp_path / "users.json")
    s.add("alice", "Secret1!")
    return s


def test_hashing_pool_bounds_concurrent_scrypt(store: UserStore, monkeypatch: pytest.MonkeyPatch) -> None:
    active = peak = 0
    lock = threading.Lock()
    real = users_module.check_password

    def counting(password: str, stored: str) -> bool:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            return real(password, stored)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(users_module, "check_password", counting)
    server = ServerAuth(store, https=True, allow_unencrypted=False)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        try:
            user = server.verify_basic("alice", f"wrong{i}", f"10.0.{i}.1")  # distinct addresses: no backoff
            outcomes.append("ok" if user else "wrong")
        except Throttled:
            outcomes.append("503")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak <= server_auth.HASH_WORKERS
    assert len(outcomes) == 24 and "ok" not in outcomes


def test_address_and_user_backoff(store: UserStore) -> None:
    server = ServerAuth(store, https=True, allow_unencrypted=False)
    for i in range(server_auth.FREE_FAILURES):
        assert server.verify_basic("alice", f"wrong{i}", "10.1.1.1") is None
    with pytest.raises(Throttled) as ei:
        server.verify_basic("alice", "Secret1!", "10.1.1.1")  # even the right password waits its turn
    assert ei.value.retry_after > 0
    with pytest.raises(Throttled):
        server.verify_basic("alice", "Secret1!", "10.2.2.2")  # the user backs off from any address
    assert server.verify_basic("nobody", "x", "10.2.2.2") is None  # another name from another address: looked at
    # names that do not exist back off alike (a backoff does not tell which users exist)
    for i in range(server_auth.FREE_FAILURES):
        assert server.verify_basic("ghost", f"w{i}", f"10.3.3.{i}") is None
    with pytest.raises(Throttled):
        server.verify_basic("ghost", "w", "10.4.4.4")


def test_a_cached_success_skips_hash_and_backoff(store: UserStore, monkeypatch: pytest.MonkeyPatch) -> None:
    server = ServerAuth(store, https=True, allow_unencrypted=False)
    assert server.verify_basic("alice", "Secret1!", "10.1.1.1") is not None
    for i in range(server_auth.FREE_FAILURES + 3):
        try:
            server.verify_basic("alice", f"wrong{i}", "10.1.1.1")
        except Throttled:
            pass
    monkeypatch.setattr(users_module, "check_password", lambda *a: pytest.fail("hashed a cached success"))
    assert server.verify_basic("alice", "Secret1!", "10.1.1.1") is not None


def test_128_wrong_password_clients_against_a_running_server(tmp_path: Path) -> None:
    server = ServeProcess(tmp_path)
    try:
        good = server.connection()
        get = envelope(GET, "Sample_Person", selector("Id", "1"))
        status, _, _ = post(good, get, {"Authorization": basic()})  # logs in once: the success is cached
        assert status == 500  # no such instance: a fault, after authentication
        stop = threading.Event()
        counts = {"401": 0, "503": 0, "other": 0, "requests": 0}
        lock = threading.Lock()
        started = threading.Barrier(129)

        def attacker(i: int) -> None:  # from two addresses of their own, 64 connections each (the per-address cap)
            source = f"127.0.0.{2 + i % 2}"
            conn = server.connection(timeout=60, source=source)
            started.wait()
            while not stop.is_set():
                try:
                    status, h, _ = post(conn, get, {"Authorization": basic("alice", f"wrong-{i}-{time.monotonic()}")})
                except (OSError, http.client.HTTPException):
                    conn = server.connection(timeout=60, source=source)
                    continue
                with lock:
                    counts["requests"] += 1
                    counts[str(status) if status in (401, 503) else "other"] += 1
                if h.get("connection") == "close":
                    conn = server.connection(timeout=60, source=source)

        threads = [threading.Thread(target=attacker, args=(i,)) for i in range(128)]
        for t in threads:
            t.start()
        started.wait()
        peak = 0
        served = []
        try:
            deadline = time.monotonic() + 4.0  # the attack runs at least this long
            while time.monotonic() < deadline or len(served) < 5:
                # a new connection each time: the server-wide cache, not the connection; from an address of its
                # own, since the attackers hold every connection slot their two addresses may have
                good = server.connection(source="127.0.0.4")
                status, _, _ = post(good, get, {"Authorization": basic()})
                served.append(status)
                peak = max(peak, rss_bytes(server.pid))
                time.sleep(0.2)
                if len(served) > 200:
                    break
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        assert set(served) == {500}, served  # every request of the valid client was authenticated and answered
        assert counts["other"] == 0 and counts["requests"] > 128
        assert counts["503"] > 0  # the flood was throttled, not hashed
        assert peak < 300 * 2**20, f"server RSS peaked at {peak / 2**20:.0f} MB"
    finally:
        server.stop()


def test_the_same_credentials_at_once_are_hashed_once(store: UserStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = users_module.check_password

    def counting(password: str, stored: str) -> bool:
        nonlocal calls
        calls += 1
        time.sleep(0.2)  # hold the first check so that the others arrive while it runs
        return real(password, stored)

    monkeypatch.setattr(users_module, "check_password", counting)
    server = ServerAuth(store, https=True, allow_unencrypted=False)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(server.verify_basic("alice", "Secret1!", "10.0.0.1")))
               for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 16 and all(u is not None for u in got)
    assert calls < 16  # a burst of new connections by one client costs about one hash, not sixteen

"""SharedQuotas: per-user counts the worker processes of one ``openmi serve`` keep together."""

from __future__ import annotations

import os

import pytest

from openmi.wsman_server.quotas import QuotaFull, SharedQuotas


def test_counts_are_shared_across_processes_and_a_restarted_slot_starts_afresh() -> None:
    q = SharedQuotas(size=256)
    pid = os.fork()
    if pid == 0:  # "worker 1" takes two
        ok = q.claim("enumeration", "bob", 1, 3) is None and q.claim("enumeration", "bob", 1, 3) is None
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert q.total("enumeration", "bob") == 2
    assert q.claim("enumeration", "bob", 0, 3) is None  # worker 0 takes the third
    assert q.claim("enumeration", "bob", 0, 3) == 3  # the fourth: refused, with the total
    assert q.claim("subscription", "bob", 0, 3) is None  # other kinds and users count apart
    assert q.claim("enumeration", "eve", 0, 3) is None
    q.reset(1)  # worker 1 died and was restarted: its contexts died with it
    assert q.total("enumeration", "bob") == 1
    q.release("enumeration", "bob", 0)
    assert q.total("enumeration", "bob") == 0
    q.release("enumeration", "bob", 0)  # (one release too many changes nothing)
    assert q.total("enumeration", "bob") == 0


def test_a_full_table_says_so() -> None:
    q = SharedQuotas(size=4)
    for user in range(4):
        assert q.claim("enumeration", f"u{user}", 0, 10) is None
    with pytest.raises(QuotaFull):
        q.claim("enumeration", "u-last", 0, 10)
    assert q.total("enumeration", "u0") == 1  # (each record counted once)


def _die_holding(hold: object) -> None:
    """Fork a process that takes ``hold`` (a callable) and is killed while holding it."""
    import signal

    pid = os.fork()
    if pid == 0:
        hold()  # type: ignore[operator]
        os.kill(os.getpid(), signal.SIGKILL)  # (never released)
    os.waitpid(pid, 0)


def test_a_worker_killed_holding_a_shared_lock_does_not_keep_it() -> None:
    """The shared tables' lock and the hashing slots: a worker SIGKILLed while it holds them (the kernel
    drops its record locks) leaves them to the others; before, every worker waited forever."""
    import threading

    from openmi.wsman_server.plock import ProcessLock, ProcessSemaphore

    lock = ProcessLock()
    _die_holding(lock.__enter__)
    got = threading.Event()

    def take() -> None:
        with lock:
            got.set()

    t = threading.Thread(target=take)
    t.start()
    t.join(30)
    assert got.is_set()

    slots = ProcessSemaphore(2)
    _die_holding(lambda: slots.acquire() and slots.acquire())
    assert slots.acquire(timeout=10) and slots.acquire(timeout=10)  # both slots free again
    assert not slots.acquire(timeout=0.05)  # (and there are only two)
    slots.release()
    slots.release()


def test_process_semaphore_bounds_threads_of_one_process_too() -> None:
    import threading

    from openmi.wsman_server.plock import ProcessSemaphore

    slots = ProcessSemaphore(2)
    held: list[bool] = []

    def hold() -> None:
        held.append(slots.acquire(timeout=0.2))

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(held) == [False, True, True]


def test_two_shared_locks_taken_by_threads_of_two_workers_never_fail() -> None:
    """The kernel counts a process's threads as one owner of its record locks, so two workers each holding
    one lock in one thread and waiting for the other's in another looks like a deadlock to it (EDEADLK),
    though no thread waits on itself: the lock asks again instead of failing the request."""
    import threading
    import time

    from openmi.wsman_server.plock import ProcessLock

    a, b = ProcessLock(), ProcessLock()

    def worker(first: ProcessLock, second: ProcessLock, delay: float) -> bool:
        ok: list[bool] = []

        def hold() -> None:
            with first:
                time.sleep(0.6)

        def take() -> None:
            time.sleep(delay)
            try:
                with second:
                    ok.append(True)
            except OSError:
                ok.append(False)

        threads = [threading.Thread(target=hold), threading.Thread(target=take)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return ok == [True]

    pid = os.fork()
    if pid == 0:
        os._exit(0 if worker(b, a, 0.3) else 1)
    mine = worker(a, b, 0.15)
    _, status = os.waitpid(pid, 0)
    assert mine and os.WEXITSTATUS(status) == 0


def test_connection_shares_leave_out_a_worker_that_is_gone() -> None:
    """The counts of connections each worker holds: the fewest decides who takes the next one; a worker that
    died (GONE until its successor starts) is never the fewest, and slots past the table take no part."""
    from openmi.wsman_server.quotas import ConnectionShares

    shares = ConnectionShares(4)
    shares.set(0, 3)
    shares.set(1, 5)
    assert shares.fewest(2) == 3
    shares.set(0, ConnectionShares.GONE)  # worker 0 died: nobody waits for it to accept
    assert shares.fewest(2) == 5
    shares.set(0, 0)  # its successor starts with none
    assert shares.fewest(2) == 0
    shares.set(9, 1)  # past the table: ignored
    assert shares.get(9) == 0 and shares.fewest(10) == 0

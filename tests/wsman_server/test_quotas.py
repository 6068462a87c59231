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

"""SIGKILL during concurrent writes loses no acknowledged write and leaves nothing half-written (issue 16):
``openmi serve``, the embedded API, and the embedded API with ``durability="full"``. A few rounds here; many
with ``make stress``."""

from __future__ import annotations

from pathlib import Path

import pytest

from .crash import Ledger, embedded_round, serve_round


def test_sigkill_openmi_serve_during_concurrent_writes(tmp_path: Path) -> None:
    ledger = Ledger()
    for round_no in range(3):  # the same repository through three crashes
        serve_round(tmp_path, ledger, round_no, writers=4, seconds=1.0)
        assert ledger.created, "no write was acknowledged before the kill"


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_sigkill_the_embedded_api_during_concurrent_writes(tmp_path: Path, durability: str) -> None:
    ledger = Ledger()
    for round_no in range(2):
        embedded_round(tmp_path, ledger, round_no, durability, writers=4, seconds=0.8)
        assert ledger.created

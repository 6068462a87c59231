"""Shared fixtures for the WS-Man codec tests: where the captured and spec-shaped traffic lives."""

from __future__ import annotations

from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_FIXTURES = _REPO / "tests" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``tests/fixtures`` (omi/ and winrm-spec/): recorded traffic kept in the repository."""
    return _FIXTURES

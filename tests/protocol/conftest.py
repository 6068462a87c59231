"""Shared fixtures for the WS-Man codec tests: where the captured and spec-shaped traffic lives."""

from __future__ import annotations

from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_FIXTURES = _REPO.parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """``<repo>/../shared/fixtures`` (omi/ and winrm-spec/); the test is skipped when it is absent."""
    if not (_FIXTURES / "omi").is_dir() or not (_FIXTURES / "winrm-spec").is_dir():
        pytest.skip(f"protocol fixtures not found at {_FIXTURES}")
    return _FIXTURES

"""Shared fixtures: an embedded server with a sample class, an application, a session."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import MIType


def person_class() -> openmi.Class:
    return openmi.Class("Sample_Person", properties=[
        openmi.Property("Id", MIType.UINT32, key=True),
        openmi.Property("Name", MIType.STRING),
        openmi.Property("Tags", MIType.STRINGA),
    ])


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    for t in set(threading.enumerate()) - before:
        if t.name.startswith("openmi"):
            t.join(5)
            assert not t.is_alive(), f"thread {t.name} leaked"


@pytest.fixture(autouse=True)
def _private_default_repository(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Application.new_session() without a server uses the user's repository; keep tests off it.
    monkeypatch.setenv("OPENMI_REPOSITORY", str(tmp_path_factory.mktemp("default") / "repository.db"))


@pytest.fixture
def server(tmp_path: object) -> Iterator[openmi.Server]:
    srv = openmi.Server(":memory:")
    srv.define_class("root/cimv2", person_class())
    yield srv
    srv.close()


@pytest.fixture
def app() -> Iterator[openmi.Application]:
    a = openmi.Application()
    yield a
    a.close()


@pytest.fixture
def session(app: openmi.Application, server: openmi.Server) -> openmi.Session:
    return app.new_session(server=server)


def person(app: openmi.Application, pid: int, name: str | None = None) -> openmi.Instance:
    inst = app.new_instance("Sample_Person")
    inst.add_element("Id", pid, MIType.UINT32, openmi.MIFlag.KEY)
    if name is not None:
        inst["Name"] = name
    return inst


# --- the repository backends: one suite, run on SQLite and on a real PostgreSQL ---------------------------

@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[object]:
    from tests.pgcluster import Cluster

    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def repository_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's repository lives: a SQLite file, or an empty schema of the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "repo.db")
    cluster = request.getfixturevalue("pg_cluster")
    return str(cluster.schema_url())

"""Running the ``openmi`` command in-process: ``openmi.cli.main.main(argv)`` with stdout, stderr and the
exit status captured, a repository and a configuration folder of the test's own, and no OPENMI_*
settings leaking in from the environment of the test run."""

from __future__ import annotations

import io
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import openmi
from openmi.cli.main import main
from openmi.wsman_server.config import ServeConfig
from openmi.wsman_server.run import WSManServer
from openmi.wsman_server.tls import create_self_signed
from openmi.wsman_server.users import UserStore

MOF = """
class Sample_Person { [Key] uint32 Id; string Name; string Tags[]; datetime Born; };
class Sample_Employee : Sample_Person { string Dept; };
"""

PASSWORD = "Cli-pa55word"


@dataclass
class Result:
    code: int
    out: str
    err: str


CLI = Callable[..., Result]


def openmi_exe() -> list[str]:
    """The installed ``openmi`` executable of this virtualenv (or ``python -m openmi``)."""
    exe = shutil.which("openmi", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "openmi"]


def clean_env(tmp_path: Path) -> dict[str, str]:
    """An environment for a subprocess: the test's repository and configuration, no OPENMI_* else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENMI_")}
    env.update(OPENMI_REPOSITORY=str(tmp_path / "repo.db"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               COLUMNS="200")
    return env


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CLI:
    """``cli("ei", "root/cimv2", "X", stdin=...)`` → Result(code, out, err)."""
    for key in list(os.environ):
        if key.startswith("OPENMI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OPENMI_REPOSITORY", str(tmp_path / "repo.db"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*argv: str, stdin: str | None = None) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin or ""))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)
    return run


@pytest.fixture
def sample(cli: CLI, tmp_path: Path) -> CLI:
    """``cli`` on a repository holding Sample_Person and Sample_Employee (loaded with ``mof compile``)."""
    mof = tmp_path / "sample.mof"
    mof.write_text(MOF)
    r = cli("mof", "compile", str(mof))
    assert r.code == 0, r.err
    assert "2 classes" in r.out
    return cli


@pytest.fixture
def served(tmp_path: Path) -> Iterator[WSManServer]:
    users = tmp_path / "users.json"
    store = UserStore(users)
    store.add("alice", PASSWORD)
    store.add("reader", PASSWORD, rights={"root/cimv2": "r"})
    create_self_signed(tmp_path / "server.crt", tmp_path / "server.key", ["localhost", "127.0.0.1"])
    engine = openmi.Server(tmp_path / "served.db")
    engine.compile_mof(MOF)
    server = WSManServer(ServeConfig(http_port=0, https_port=0, users=str(users), allow_unencrypted=True,
                                     cert_file=str(tmp_path / "server.crt"), key_file=str(tmp_path / "server.key"),
                                     shutdown_timeout=5.0), engine=engine)
    server.start()
    yield server
    server.stop()
    engine.close()


@pytest.fixture
def remote(cli: CLI, served: WSManServer, monkeypatch: pytest.MonkeyPatch) -> CLI:
    """``cli`` with OPENMI_* pointing at the served host over plain HTTP as alice."""
    monkeypatch.setenv("OPENMI_HOSTNAME", "127.0.0.1")
    monkeypatch.setenv("OPENMI_PORT", str(served.port("http")))
    monkeypatch.setenv("OPENMI_USER", "alice")
    monkeypatch.setenv("OPENMI_PASSWORD", PASSWORD)
    monkeypatch.setenv("OPENMI_ENCRYPTION", "none")
    return cli

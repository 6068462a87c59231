"""A real PostgreSQL for the tests: Debian's server binaries, ``initdb`` in a temporary directory as a
non-root user (made with useradd when the tests run as root), ``pg_ctl start`` on a free loopback port,
stopped at the end of the session. Each test gets its own schema, so tests never see each other's rows."""

from __future__ import annotations

import getpass
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_USER = "openmi-pg"  # the system account the cluster runs as when the tests run as root


def _bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.access(os.path.join(candidate, "initdb"), os.X_OK):
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One PostgreSQL server for the session; :meth:`schema_url` hands each test an empty schema."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL's server binaries are missing (scripts/test-deps.sh installs "
                               "Debian's postgresql package)")
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="openmi-pg-"))
        self.port = _free_port()
        self._prefix: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                pwd.getpwnam(PG_USER)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                               check=True, capture_output=True)
            shutil.chown(self.dir, PG_USER)
            self._prefix = ["runuser", "-u", PG_USER, "--"]
            self.user = PG_USER
        else:
            self.user = getpass.getuser()
        self.data = self.dir / "data"
        self._run("initdb", "-D", str(self.data), "-U", "openmi", "-A", "trust", "-E", "UTF8", "--locale=C",
                  "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "-t", "60", "start")
        self._names = itertools.count(1)
        self.url = f"postgresql://openmi@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run([*self._prefix, str(self.bindir / tool), *args], capture_output=True, text=True,
                              cwd=self.dir)
        if proc.returncode:
            log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
            raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip()} {log[-2000:]}")

    def schema_url(self) -> str:
        """A URL whose connections work in a new, empty schema of their own."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

"""``openmi serve --workers N``: N server processes on the same listening sockets and the same repository.

The supervisor (this process) binds every listener once, then forks the workers; each inherits the
listening sockets and accepts from them (pre-fork shared accept: it works for port 0 and on every POSIX
system, and a connection still queued when a worker dies stays in the shared queue for the others). Each
worker has its own engine on the repository, opened shared (SQLite in multi-process WAL mode, or
PostgreSQL), and reads the users file, certificates and configuration itself. MOF files given at start
are compiled once, by the supervisor, before any worker starts.

An enumeration or subscription lives in the worker that opened it; a Pull for it that lands on another
worker is forwarded there over a Unix socket (``forward.py``), so contexts work whichever connection and
so whichever worker the next request comes on; and the changes one worker commits reach the subscriptions
of the others.

The supervisor restarts a worker that dies (its open connections are reset by the kernel, so the clients
of requests it had in flight get an error, never a silent success), and on SIGTERM or SIGINT stops them
all: each worker finishes its requests in flight (``shutdown_timeout``) and exits; one that does not is
killed. A worker dies with the supervisor (PR_SET_PDEATHSIG on Linux, else a check of its parent).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from ..engine.server import Server
from .auth import SharedAuthState
from .config import ServeConfig
from .forward import Peers
from .http import Listener

log = logging.getLogger("openmi.wsman_server")

_RESTART_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)  # seconds before restarting a worker that keeps dying
# A worker that dies this soon after it started, this many times in a row, cannot start: give up.
_EARLY_DEATH, _EARLY_DEATHS = 5.0, 3


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def bind_listeners(cfg: ServeConfig, tls: Callable[[], ssl.SSLContext] | None) -> list[Listener]:
    """The listening sockets every worker shares (port 0 resolved here, once)."""
    listeners: list[Listener] = []
    specs: list[tuple[int, Callable[[], ssl.SSLContext] | None]] = []
    if cfg.http_port is not None:
        specs.append((cfg.http_port, None))
    if cfg.https_port is not None:
        specs.append((cfg.https_port, tls))
    try:
        for port, make_tls in specs:
            family = socket.AF_INET6 if ":" in cfg.bind else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((cfg.bind, port))
            except OSError as exc:
                sock.close()
                raise OSError(exc.errno, f"cannot listen on {cfg.bind}:{port}: {exc.strerror}") from None
            sock.listen(512)
            sock.set_inheritable(True)
            listeners.append(Listener(cfg.bind, sock.getsockname()[1], None, sock))
            if make_tls is not None:
                listeners[-1].tls = make_tls()
    except BaseException:
        for lst in listeners:
            if lst.sock is not None:
                lst.sock.close()
        raise
    return listeners


class Supervisor:
    """Runs and watches the worker processes of one ``openmi serve``."""

    def __init__(self, cfg: ServeConfig, workers: int) -> None:
        if workers < 1:
            raise ValueError("--workers must be at least 1")
        if cfg.repository == ":memory:":
            raise ValueError("--workers above 1 needs a repository file or a postgresql:// URL, not :memory:")
        self.cfg = cfg
        self.workers = workers
        self._children: dict[int, int] = {}  # pid -> worker slot
        self._started: dict[int, float] = {}  # pid -> when it was forked
        self.failed = False
        self._deaths: dict[int, int] = {}  # slot -> deaths in a row (for the restart backoff)
        self._stop = threading.Event()
        self.listeners: list[Listener] = []
        # where the workers listen for the requests other workers forward to them (see forward.py)
        self.peer_dir = tempfile.mkdtemp(prefix="openmi-workers-")  # mode 0700: this user's only
        # the login throttles and password-hashing slots, shared: a flood is throttled as by one process
        self.shared_auth = SharedAuthState.create()

    def prepare(self) -> list[str]:
        """Before forking: make the certificate, bind the listeners, then load the MOF files once; the URLs."""
        from .run import certificate_paths, check_config

        check_config(self.cfg)
        tls = None
        if self.cfg.https_port is not None:
            cert, key = certificate_paths(self.cfg)
            self.cfg.cert_file, self.cfg.key_file = cert, key

            def tls() -> ssl.SSLContext:
                from .tls import server_context
                return server_context(cert, key)
        self.listeners = bind_listeners(self.cfg, tls)
        try:  # last: a start that failed above (a certificate, a port) left the repository as it was
            with Server(self.cfg.repository, shared=True) as engine:
                for path in self.cfg.mof:
                    engine.compile_mof(path)
        except BaseException:
            for lst in self.listeners:
                if lst.sock is not None:
                    lst.sock.close()
            self.listeners = []
            raise
        return [lst.url for lst in self.listeners]

    def run(self) -> int:
        """Start the workers and supervise them until SIGTERM or SIGINT; then stop them all."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self._stop.set())
        for slot in range(self.workers):
            self._spawn(slot)
        try:
            while not self._stop.is_set():
                self._reap(restart=True)
                self._stop.wait(0.2)
        finally:
            self._shutdown()
        return 1 if self.failed else 0

    def _spawn(self, slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                code = _worker(self.cfg, self.listeners, Peers(slot, self.peer_dir, self.workers), self.shared_auth)
            except BaseException:
                log.exception("worker %d failed", slot)
            finally:
                os._exit(code)
        self._children[pid] = slot
        self._started[pid] = time.monotonic()
        log.info("worker %d started (pid %d)", slot, pid)

    def _reap(self, restart: bool) -> None:
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = self._children.pop(pid, None)
            started = self._started.pop(pid, 0.0)
            if slot is None:
                continue
            self.shared_auth.connections.set(slot, self.shared_auth.connections.GONE)  # (no connection waits for it)
            if restart and not self._stop.is_set():
                early = time.monotonic() - started < _EARLY_DEATH
                deaths = self._deaths.get(slot, 0) if early else 0
                self._deaths[slot] = deaths + 1
                if early and deaths + 1 >= _EARLY_DEATHS:
                    print(f"openmi: worker {slot} (pid {pid}) exited ({_status(status)}) {deaths + 1} times right "
                          f"after starting; stopping", file=sys.stderr, flush=True)
                    self.failed = True
                    self._stop.set()
                    return
                print(f"openmi: worker {slot} (pid {pid}) exited ({_status(status)}); restarting it",
                      file=sys.stderr, flush=True)
                time.sleep(_RESTART_BACKOFF[min(deaths, len(_RESTART_BACKOFF) - 1)])
                self._spawn(slot)

    def _shutdown(self) -> None:
        for pid in list(self._children):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.cfg.shutdown_timeout + 5.0
        while self._children and time.monotonic() < deadline:
            self._reap(restart=False)
            time.sleep(0.05)
        for pid in list(self._children):
            _signal(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self._children.pop(pid, None)
        for lst in self.listeners:
            if lst.sock is not None:
                lst.sock.close()
        shutil.rmtree(self.peer_dir, ignore_errors=True)


def _worker(cfg: ServeConfig, listeners: list[Listener], peers: Peers, shared_auth: SharedAuthState) -> int:
    """One worker: its own engine on the shared repository, serving the inherited sockets until SIGTERM."""
    from .run import WSManServer

    parent = os.getppid()
    _die_with_parent()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cfg.mof = []  # compiled once by the supervisor
    engine = Server(cfg.repository, shared=True)
    try:
        server = WSManServer(cfg, engine=engine, listeners=listeners, peers=peers, shared_auth=shared_auth)
        server.start()
        try:
            while not stop.wait(0.5):
                if os.getppid() != parent:  # the supervisor is gone (where PDEATHSIG is not available)
                    break
        finally:
            server.stop()
    finally:
        engine.close()
    return 0


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: a supervisor that crashed takes its workers along
        except (OSError, AttributeError):
            pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.WEXITSTATUS(status)}"

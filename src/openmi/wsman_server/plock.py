"""Locks the worker processes of one ``openmi serve`` share, that a worker's death cannot leave held.

A ``multiprocessing`` lock (a POSIX semaphore) held by a process that is killed stays held for good: every
other worker then waits forever for it. These locks are POSIX record locks (``fcntl.lockf``) on an
unlinked temporary file made before the workers fork: the kernel releases a process's record locks when it
dies. A record lock belongs to a process, not a thread, so a thread lock orders the threads of each process
first. Only where ``os.fork`` exists (the workers are forked).
"""

from __future__ import annotations

import os
import random
import tempfile
import threading
import time
from types import TracebackType

from ..engine import recordlock


class ProcessLock:
    """A mutex over the threads of every process that inherited it."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # (unlinked at once: only the inherited descriptor names it)
        self._threads = threading.Lock()

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            recordlock.lock(self._file.fileno())
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            recordlock.unlock(self._file.fileno())
        finally:
            self._threads.release()


class ProcessSemaphore:
    """``slots`` holders at once over every process that inherited it (one record lock per slot)."""

    _POLL = 0.005  # seconds between looks while every slot is taken

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._file = tempfile.TemporaryFile()
        self._mine: dict[int, list[int]] = {}  # thread id → the slots it holds (in this process)
        self._local = threading.Lock()
        self._pid = os.getpid()

    def acquire(self, timeout: float | None = None) -> bool:
        import fcntl

        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.get_ident()
        while True:
            with self._local:
                if self._pid != os.getpid():  # (a forked child: its parent's holders are not its own)
                    self._mine, self._pid = {}, os.getpid()
                taken = {slot for held in self._mine.values() for slot in held}
                for slot in random.sample(range(self.slots), self.slots):
                    if slot in taken:
                        continue  # (this process holds it already, for another thread)
                    try:
                        fcntl.lockf(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot)
                    except OSError:
                        continue  # another process holds it
                    self._mine.setdefault(me, []).append(slot)
                    return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self._POLL)

    def release(self) -> None:
        import fcntl

        with self._local:
            me = threading.get_ident()
            held = self._mine[me]
            slot = held.pop()
            if not held:
                del self._mine[me]
            fcntl.lockf(self._file.fileno(), fcntl.LOCK_UN, 1, slot)

"""Exclusive POSIX record locks (``fcntl.lockf``) on a file several processes hold open: the kernel hands the
lock to the next waiter the moment it is released, and drops it when its holder dies, so a killed process
never leaves it held. A record lock belongs to a process, not a thread: callers order their own threads first.
Only where ``fcntl`` exists (POSIX: the processes that share files are forked workers)."""

from __future__ import annotations

import errno
import time

try:
    import fcntl
except ImportError:  # (not POSIX: nothing here is called there)
    fcntl = None  # type: ignore[assignment]


def lock(fd: int) -> None:
    """Wait for the exclusive lock on the whole file ``fd``."""
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            return
        except OSError as exc:
            # the kernel counts a process's locks (and threads) together: a wait here while this process holds
            # another record lock that the holder of this one now asks for looks like a cycle to it, though
            # nobody waits on itself. Not a deadlock: ask again in a moment
            if exc.errno != errno.EDEADLK:
                raise
        time.sleep(0.0005)


def unlock(fd: int) -> None:
    fcntl.lockf(fd, fcntl.LOCK_UN)

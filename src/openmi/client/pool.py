"""The worker pool an Application runs blocking operation work on: a bounded set of daemon threads.

Operations hand it short steps (produce a chunk of results, deliver callbacks), never a whole
operation, so a paused producer holds no thread. Threads start on demand up to ``max_threads`` and
end after a short idle time, or as soon as the queue is empty once the pool is closed.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger("openmi.client")

DEFAULT_MAX_THREADS = 32  # enough for 20 slow providers or hosts to run side by side
_IDLE_SECONDS = 2.0
_ids = itertools.count(1)


class WorkerPool:
    """At most ``max_threads`` threads running submitted steps in order of submission."""

    def __init__(self, max_threads: int = DEFAULT_MAX_THREADS, name: str = "openmi-pool") -> None:
        if isinstance(max_threads, bool) or not isinstance(max_threads, int):
            raise TypeError(f"max_threads must be an int, not {type(max_threads).__name__}")
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, not {max_threads}")
        self.max_threads = max_threads
        self.name = name
        self._tasks: deque[Callable[[], None]] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._threads = 0
        self._idle = 0
        self._closed = False

    def submit(self, task: Callable[[], None]) -> None:
        """Run ``task()`` on a pool thread. Also accepted after close, so work in flight can finish."""
        with self._cond:
            self._tasks.append(task)
            if len(self._tasks) > self._idle and self._threads < self.max_threads:
                self._threads += 1
                t = threading.Thread(target=self._work, name=f"{self.name}-{next(_ids)}", daemon=True)
                t.start()
            else:
                self._cond.notify()

    @property
    def threads(self) -> int:
        """How many threads the pool has right now."""
        return self._threads

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._tasks:
                    if self._closed:
                        self._threads -= 1
                        return
                    self._idle += 1
                    woke = self._cond.wait(_IDLE_SECONDS)
                    self._idle -= 1
                    if not woke and not self._tasks:
                        self._threads -= 1
                        return
                task = self._tasks.popleft()
            try:
                task()
            except Exception:  # steps handle their own errors; this is a bug in openmi, not the caller's
                log.exception("an operation step failed on %s", threading.current_thread().name)

    def close(self) -> None:
        """Let the threads end once the queue is empty (steps already queued still run)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


_default: WorkerPool | None = None
_default_lock = threading.Lock()


def default_pool() -> WorkerPool:
    """The pool of sessions made without an Application."""
    global _default
    with _default_lock:
        if _default is None:
            _default = WorkerPool(name="openmi-pool-default")
        return _default

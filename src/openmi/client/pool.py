"""The worker pool an Application runs blocking operation work on: a bounded set of daemon threads.

Operations hand it short steps (produce a chunk of results, deliver callbacks), never a whole
operation, so a paused producer holds no thread. Threads start on demand up to ``max_threads`` and
end after a short idle time, or as soon as the queue is empty once the pool is closed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

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

    def take(self, task: Callable[[], None]) -> bool:
        """Remove ``task`` if no thread has started it yet (the caller then runs it itself)."""
        with self._cond:
            try:
                self._tasks.remove(task)
            except ValueError:
                return False
            return True

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


class DeadlineWatch:
    """One thread that fires operations' timeouts when nobody is polling them (a provider waiting on
    its cancel callback, a request in flight): at each deadline it asks the operation's token, which
    cancels with TIMEOUT if progress has not restarted it. The thread ends when nothing is watched."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, weakref.ref[Any]]] = []
        self._cond = threading.Condition(threading.Lock())
        self._running = False
        self._seq = itertools.count()

    def watch(self, op: Any, deadline: float) -> None:
        """Call ``op._deadline_passed()`` at ``deadline`` (unless ``op._done`` by then)."""
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), weakref.ref(op)))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="openmi-deadlines", daemon=True).start()
            else:
                self._cond.notify()

    def forget(self) -> None:
        """An operation ended: drop the entries of finished operations (so an idle thread can end)."""
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                live = [e for e in self._heap if (op := e[2]()) is not None and not op._done]
                if len(live) != len(self._heap):
                    heapq.heapify(live)
                    self._heap = live
                if not self._heap:  # nothing to watch: end (the next watch starts a thread again)
                    self._running = False
                    return
                due, _, ref = self._heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            op = ref()
            if op is not None:
                try:
                    op._deadline_passed()
                except Exception:  # a bug in openmi: the watch must go on for the others
                    log.exception("firing the timeout of %r failed", op)


deadlines = DeadlineWatch()

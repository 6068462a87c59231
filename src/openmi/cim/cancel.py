"""The cancellation and deadline token of one operation, and the listener it reports to.

The caller of an operation holds the token to stop it (``cancel``); whatever runs the operation — the
embedded engine, a provider through the engine's ``Context``, a remote session's exchanges — polls
``cancelled``, registers cancel callbacks and reads ``seconds_left``. Client, engine and WS-Man server
all use this one type, so none of them needs another's internals.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .errors import MIError
from .instance import Instance
from .types import CancellationReason, MIResult, PromptType

log = logging.getLogger("openmi")

# Cancellation is rare; one lock for all tokens keeps starting an operation cheap.
_CANCEL_LOCK = threading.Lock()


class Host:
    """Who hears what a provider reports while an operation runs. The defaults answer as MI does when
    the client registered no callback: messages are dropped, prompts and errors are answered "yes, go on"."""

    def write_message(self, channel: int, message: str) -> None:
        return None

    def write_progress(self, activity: str, current_operation: str, status_description: str,
                       percent_complete: int, seconds_remaining: int) -> None:
        return None

    def write_error(self, error: Instance) -> bool:
        return True

    def prompt_user(self, message: str, prompt_type: PromptType) -> bool:
        return True

    def subscription_started(self, bookmark: str) -> None:
        """A subscription is live, and ``bookmark`` resumes it from where it stands before its first event
        (the WS-Man service tells its client, so that a reconnection then loses nothing)."""
        return None


class CancelToken:
    """Cancellation, a deadline, and (optionally) the :class:`Host` of one operation.

    ``timeout`` (seconds) counts from the token's creation; ``restart()`` starts it again (a provider's
    progress report does, as Windows documents for SetTimeout). ``host`` is carried along so that a
    transport can hand the caller's listener to whatever runs the operation.
    """

    __slots__ = ("_callbacks", "_cancelled", "_deadline", "host", "reason", "timeout")

    def __init__(self, timeout: float | None = None, *, host: Host | None = None) -> None:
        self.timeout = timeout
        self.host = host
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._cancelled = False
        self.reason: CancellationReason | None = None
        self._callbacks: list[Callable[[CancellationReason], None]] = []

    @property
    def cancelled(self) -> bool:
        """True once the caller cancelled or the deadline passed (whoever runs the operation should stop)."""
        if self._cancelled:
            return True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.cancel(CancellationReason.TIMEOUT)
            return True
        return False

    @property
    def cancel_called(self) -> bool:
        """Whether :meth:`cancel` has run, without checking the deadline (so, unlike ``cancelled``, it runs
        no callback and may be asked under any lock)."""
        return self._cancelled

    def cancel(self, reason: CancellationReason = CancellationReason.NONE) -> None:
        """Cancel (once; later calls do nothing) and run the registered callbacks."""
        with _CANCEL_LOCK:
            if self._cancelled:
                return
            self._cancelled = True
            self.reason = CancellationReason(reason)
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            try:
                cb(self.reason)
            except Exception:  # one failing callback must not keep the others or the canceller from running
                log.exception("a cancel callback failed")

    def register_cancel(self, callback: Callable[[CancellationReason], None]) -> None:
        """Call ``callback(reason)`` when the operation is cancelled (at once if it already is)."""
        with _CANCEL_LOCK:
            if not self._cancelled:
                self._callbacks.append(callback)
                return
        callback(self.reason or CancellationReason.NONE)

    @property
    def deadline(self) -> float | None:
        """The ``time.monotonic()`` at which the operation times out, or None."""
        return self._deadline

    @property
    def seconds_left(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def restart(self) -> None:
        """Start the timeout again from now (nothing without a timeout or once cancelled)."""
        if self.timeout is not None and not self._cancelled:
            self._deadline = time.monotonic() + self.timeout

    def check(self) -> None:
        """Raise the operation's final error if it was cancelled or timed out."""
        # ``cancelled`` spelt out: this runs once per result of every operation
        if not self._cancelled:
            if self._deadline is None or time.monotonic() < self._deadline:
                return
            self.cancel(CancellationReason.TIMEOUT)
        raise self.cancellation_error()

    def cancellation_error(self) -> MIError:
        """The error an operation ends with once cancelled: FAILED, naming the timeout or the reason."""
        if self.reason == CancellationReason.TIMEOUT and self.timeout is not None:
            return MIError(MIResult.FAILED, f"the operation timed out after {self.timeout:g} s")
        reason = self.reason.name.lower() if self.reason is not None else "none"
        return MIError(MIResult.FAILED, f"the operation was cancelled (reason: {reason})")

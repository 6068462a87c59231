"""The context a request runs in: cancellation, timeout, and the channel back to the caller.

A provider receives it as ``ctx`` (OMI's MI_Context): it polls ``ctx.cancelled``, registers cancel
callbacks, writes messages and progress, reports non-terminating errors and asks ShouldProcess
questions. Who is listening — the client's callbacks, or a WS-Man server — is the :class:`Host`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..cim.cimerror import error_instance
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.types import CancellationReason, MIResult, PromptType

if TYPE_CHECKING:
    from .server import Server


class Host:
    """Receives what a provider reports while a request runs. The defaults answer as MI does when the
    client registered no callback: messages are dropped, prompts and errors are answered "yes, go on"."""

    def write_message(self, channel: int, message: str) -> None:
        return None

    def write_progress(self, activity: str, current_operation: str, status_description: str,
                       percent_complete: int, seconds_remaining: int) -> None:
        return None

    def write_error(self, error: Instance) -> bool:
        return True

    def prompt_user(self, message: str, prompt_type: PromptType) -> bool:
        return True


_DEFAULT_HOST = Host()
# Cancellation is rare; one lock for all contexts keeps starting a request cheap.
_CANCEL_LOCK = threading.Lock()


class Context:
    """One running request, as a provider sees it."""

    __slots__ = (
        "_callbacks",
        "_cancelled",
        "_deadline",
        "_timeout",
        "host",
        "namespace",
        "options",
        "reason",
        "server",
        "user",
    )

    def __init__(self, *, timeout: float | None = None, host: Host | None = None,
                 options: dict[str, Any] | None = None, user: str | None = None) -> None:
        self.host = host or _DEFAULT_HOST
        self.options: dict[str, Any] = options if options is not None else {}
        self.user = user
        self.server: Server | None = None
        self.namespace: str | None = None
        self._timeout = timeout
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._cancelled = False
        self.reason: CancellationReason | None = None
        self._callbacks: list[Callable[[CancellationReason], None]] = []

    # --- cancellation ------------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        """True once the caller cancelled or the timeout passed (a provider should then stop)."""
        if self._cancelled:
            return True
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self.cancel(CancellationReason.TIMEOUT)
            return True
        return False

    def cancel(self, reason: CancellationReason = CancellationReason.NONE) -> None:
        with _CANCEL_LOCK:
            if self._cancelled:
                return
            self._cancelled = True
            self.reason = CancellationReason(reason)
            callbacks = list(self._callbacks)
        for cb in callbacks:
            try:
                cb(self.reason)
            except Exception:  # a provider's cancel callback must not break the caller
                pass

    def register_cancel(self, callback: Callable[[CancellationReason], None]) -> None:
        """Call ``callback(reason)`` when the request is cancelled (at once if it already is)."""
        with _CANCEL_LOCK:
            if not self._cancelled:
                self._callbacks.append(callback)
                return
        callback(self.reason or CancellationReason.NONE)

    @property
    def seconds_left(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def check(self) -> None:
        """Raise the operation's final error if it was cancelled or timed out."""
        if self.cancelled:
            raise self.cancellation_error()

    def cancellation_error(self) -> MIError:
        if self.reason == CancellationReason.TIMEOUT:
            return MIError(MIResult.FAILED, f"the operation timed out after {self._timeout:g} s")
        reason = self.reason.name.lower() if self.reason else "none"
        return MIError(MIResult.FAILED, f"the operation was cancelled (reason: {reason})")

    # --- the extension callbacks (MI_Context_Write* and friends) -------------------------------
    def write_message(self, channel: int, message: str) -> None:
        self.host.write_message(int(channel), str(message))

    def write_warning(self, message: str) -> None:
        self.write_message(0, message)

    def write_verbose(self, message: str) -> None:
        self.write_message(1, message)

    def write_debug(self, message: str) -> None:
        self.write_message(2, message)

    def write_progress(self, activity: str, current_operation: str = "", status_description: str = "",
                       percent_complete: int = 0, seconds_remaining: int = 0) -> None:
        # Each progress report restarts the operation timeout (as Windows documents for SetTimeout).
        if self._timeout is not None and not self._cancelled:
            self._deadline = time.monotonic() + self._timeout
        self.host.write_progress(activity, current_operation, status_description,
                                 int(percent_complete), int(seconds_remaining))

    def write_error(self, error: Instance | int, message: str | None = None) -> bool:
        """Report a non-terminating error; returns True if the client wants the provider to go on."""
        if not isinstance(error, Instance):
            error = error_instance(int(error), message or MIResult(int(error)).description)
        return bool(self.host.write_error(error))

    def prompt_user(self, message: str, prompt_type: PromptType = PromptType.NORMAL) -> bool:
        return bool(self.host.prompt_user(message, PromptType(prompt_type)))

    def should_process(self, target: str, action: str) -> bool:
        """ShouldProcess: may the provider perform ``action`` on ``target``?"""
        return self.prompt_user(f'Performing operation "{action}" on Target "{target}".', PromptType.NORMAL)

    def should_continue(self, message: str) -> bool:
        return self.prompt_user(message, PromptType.CRITICAL)

    # --- factories --------------------------------------------------------------------------
    def new_instance(self, class_name: str) -> Instance:
        """An instance of a class of this request's namespace, with the class's properties."""
        if self.server is None:
            return Instance(class_name)
        return self.server.new_instance(self.namespace, class_name)

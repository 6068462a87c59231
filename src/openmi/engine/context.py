"""The context a request runs in, as a provider sees it (OMI's MI_Context).

It wraps the operation's :class:`~openmi.cim.cancel.CancelToken` (held by whoever started the
operation) with what only the engine knows: the server, the namespace, the options, the user, and the
:class:`~openmi.cim.cancel.Host` that hears messages, progress, non-terminating errors and prompts.
A provider polls ``ctx.cancelled``, registers cancel callbacks, writes messages and progress, reports
non-terminating errors and asks ShouldProcess questions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..cim.cancel import CancelToken, Host
from ..cim.cimerror import error_instance
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.requests import NO_OPTIONS
from ..cim.types import CancellationReason, MIResult, PromptType

if TYPE_CHECKING:
    from .server import Server

__all__ = ["Context", "Host"]

_DEFAULT_HOST = Host()


class Context:
    """One running request, as a provider sees it."""

    __slots__ = ("check", "host", "namespace", "options", "server", "token", "user")

    #: Raise the operation's final error if it was cancelled or timed out (the token's own ``check``).
    check: Callable[[], None]

    def __init__(self, token: CancelToken | None = None, *, timeout: float | None = None, host: Host | None = None,
                 options: Mapping[str, Any] | None = None, user: str | None = None) -> None:
        self.token = token if token is not None else CancelToken(timeout)
        self.check = self.token.check  # bound once: providers and handlers call it per result
        self.host = host or self.token.host or _DEFAULT_HOST
        self.options: Mapping[str, Any] = options if options is not None else NO_OPTIONS
        self.user = user
        self.server: Server | None = None
        self.namespace: str | None = None

    # --- cancellation (the token's) ------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        """True once the caller cancelled or the timeout passed (a provider should then stop)."""
        return self.token.cancelled

    @property
    def reason(self) -> CancellationReason | None:
        return self.token.reason

    def cancel(self, reason: CancellationReason = CancellationReason.NONE) -> None:
        self.token.cancel(reason)

    def register_cancel(self, callback: Callable[[CancellationReason], None]) -> None:
        """Call ``callback(reason)`` when the request is cancelled (at once if it already is)."""
        self.token.register_cancel(callback)

    @property
    def seconds_left(self) -> float | None:
        return self.token.seconds_left

    def cancellation_error(self) -> MIError:
        return self.token.cancellation_error()

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
        self.token.restart()
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

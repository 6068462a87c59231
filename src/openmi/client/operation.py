"""Operation: one running request, read as a stream of results.

The stream is pulled from the session's transport one result at a time. Three readers share it:
``get_instance()``/``get_class()`` pull synchronously on the caller's thread; callbacks make a worker
thread pull and deliver; ``await op`` / ``async for`` pull from an executor so the event loop never
blocks. Whatever the reader, the final result comes exactly once and is repeated to later reads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from ..cim.cancel import CancelToken, Host
from ..cim.cimerror import error_instance
from ..cim.classes import Class
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.requests import Request
from ..cim.types import CancellationReason, MIResult, PromptType, ResponseType
from .options import OperationCallbacks

if TYPE_CHECKING:
    from .session import Session


class InstanceResult(NamedTuple):
    instance: Instance | None
    more_results: bool
    result: MIResult
    error_message: str | None
    error_details: Instance | None


class ClassResult(NamedTuple):
    cls: Class | None
    more_results: bool
    result: MIResult
    error_message: str | None
    error_details: Instance | None


_Raw = tuple[Any, bool, MIResult, "str | None", "Instance | None"]


class _CallbackHost(Host):
    """Forwards what the provider reports to the operation's callbacks."""

    def __init__(self, op: Operation, callbacks: OperationCallbacks | None) -> None:
        self._op = op
        self._cb = callbacks
        self._sticky: bool | None = None  # a "to all" answer

    def write_message(self, channel: int, message: str) -> None:
        if self._cb is not None and self._cb.write_message is not None:
            self._cb.write_message(self._op, self._cb.context, channel, message)

    def write_progress(self, activity: str, current_operation: str, status_description: str,
                       percent_complete: int, seconds_remaining: int) -> None:
        if self._cb is not None and self._cb.write_progress is not None:
            self._cb.write_progress(self._op, self._cb.context, activity, current_operation, status_description,
                                    percent_complete, seconds_remaining)

    def write_error(self, error: Instance) -> bool:
        if self._cb is None or self._cb.write_error is None:
            return True
        return self._answer(self._cb.write_error(self._op, self._cb.context, error), remember=False)

    def prompt_user(self, message: str, prompt_type: PromptType) -> bool:
        if self._sticky is not None:
            return self._sticky
        if self._cb is None or self._cb.prompt_user is None:
            return True
        return self._answer(self._cb.prompt_user(self._op, self._cb.context, message, prompt_type), remember=True)

    def _answer(self, answer: Any, remember: bool) -> bool:
        if answer is None:
            return True
        if isinstance(answer, ResponseType) or (isinstance(answer, int) and not isinstance(answer, bool)):
            r = ResponseType(int(answer))
            yes = r in (ResponseType.YES, ResponseType.YES_TO_ALL)
            if remember and r in (ResponseType.YES_TO_ALL, ResponseType.NO_TO_ALL):
                self._sticky = yes
            return yes
        return bool(answer)


class Operation:
    """A running MI operation (MI_Operation). Close it when done; it is also a context manager."""

    __slots__ = (
        "__weakref__",
        "_aloop",
        "_asource",
        "_callbacks",
        "_closed",
        "_ctx",
        "_final",
        "_pull",
        "_request",
        "_result_callback",
        "_session",
        "_setup_error",
        "_single",
        "_source",
        "_thread",
        "kind",
    )

    def __init__(self, session: Session, request: Request, timeout: float | None,
                 callbacks: OperationCallbacks | None, setup_error: MIError | None = None) -> None:
        self._session = session
        self._request = request
        self._single = request.single
        self.kind = request.result_kind
        self._callbacks = callbacks
        self._ctx = CancelToken(timeout, host=_CallbackHost(self, callbacks) if callbacks is not None else None)
        self._setup_error = setup_error
        self._source: Iterator[Any] | None = None
        self._asource: Any = None  # an async iterator, when read from asyncio over WS-Man
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._final: _Raw | None = None
        self._pull = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        result_cb = None
        if callbacks is not None:
            result_cb = callbacks.class_result if self.kind == "class" else callbacks.instance_result
        self._result_callback = result_cb
        if result_cb is not None:
            self._thread = threading.Thread(target=self._deliver, name=f"openmi-{request.name}", daemon=True)
            self._thread.start()

    # --- pulling the stream ------------------------------------------------------------------
    def _next(self) -> _Raw:
        with self._pull:
            if self._final is not None:
                return self._final
            if self._setup_error is not None:
                return self._finish(None, self._setup_error)
            try:
                if self._source is None:
                    self._ctx.check()
                    self._source = self._session._transport.execute(self._request, self._ctx)
                try:
                    item = next(self._source)
                except StopIteration:
                    return self._finish(None, None)
                if not self._single:
                    return (item, True, MIResult.OK, None, None)
                for _extra in self._source:  # a single-result operation: read on to the final status
                    pass
                return self._finish(item, None)
            except Exception as exc:
                return self._fail(exc)

    def _finish(self, item: Any, error: MIError | None) -> _Raw:
        if error is None:
            self._final = (item, False, MIResult.OK, None, None)
        else:
            result = error.result if isinstance(error.result, MIResult) else MIResult.FAILED
            details = error.details if error.details is not None else error_instance(error.result, error.message)
            self._final = (None, False, result, error.message, details)
        source, self._source = self._source, None
        if source is not None and hasattr(source, "close"):
            source.close()
        return self._final

    def _fail(self, exc: Exception) -> _Raw:
        """End with the error; anything but an MIError (a transport's bug, a peer's garbage) is FAILED."""
        if not isinstance(exc, MIError):
            exc = MIError(MIResult.FAILED, f"{type(exc).__name__}: {exc}")
        return self._finish(None, exc)

    @staticmethod
    def _item(raw: _Raw) -> tuple[Any, bool]:
        """A result as the iterators hand it on: (item, more), or the final error raised."""
        item, more, result, message, details = raw
        if result != MIResult.OK:
            raise MIError(result, message, details)
        return item, more

    def _deliver(self) -> None:
        cb = self._result_callback
        assert cb is not None
        context = self._callbacks.context if self._callbacks is not None else None
        while True:
            item, more, result, message, details = self._next()
            try:
                cb(self, context, item, more, result, message, details)
            except Exception:  # a failing callback must not stop the final result from being delivered
                if more:
                    self.cancel()
            if not more:
                return

    def _check_sync(self, kind: str) -> None:
        if self._result_callback is not None:
            raise MIError(MIResult.INVALID_PARAMETER,
                          "this operation delivers its results to callbacks; it cannot also be read with get_*()")
        if self.kind != kind:
            other = "get_class" if self.kind == "class" else "get_instance"
            raise MIError(MIResult.INVALID_PARAMETER, f"this operation returns {self.kind}es; read it with {other}()"
                          if self.kind == "class" else f"this operation returns instances; read it with {other}()")

    # --- the synchronous reader ------------------------------------------------------------------
    def get_instance(self) -> InstanceResult:
        """The next result: ``(instance, more_results, result, error_message, error_details)``."""
        self._check_sync("instance")
        return InstanceResult(*self._next())

    def get_class(self) -> ClassResult:
        self._check_sync("class")
        return ClassResult(*self._next())

    @property
    def more_results(self) -> bool:
        return self._final is None

    def __iter__(self) -> Iterator[Any]:
        """Yield every instance (or class); raise MIError if the operation fails."""
        self._check_sync(self.kind)
        while True:
            item, more = self._item(self._next())
            if item is not None:
                yield item
            if not more:
                return

    # --- the asyncio reader --------------------------------------------------------------------
    async def _anext(self) -> _Raw:
        if self._final is not None:
            return self._final
        execute_async = getattr(self._session._transport, "execute_async", None)
        if execute_async is None:  # the in-process engine: pull on a worker so the loop never blocks
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self._next)
        try:
            return await self._anext_native(execute_async)
        finally:
            if self._final is not None and self._asource is not None:
                src, self._asource = self._asource, None
                await src.aclose()

    async def _anext_native(self, execute_async: Any) -> _Raw:
        """A transport with its own asyncio path (WS-Man): no thread at all."""
        if self._setup_error is not None:
            return self._finish(None, self._setup_error)
        try:
            if self._asource is None:
                self._ctx.check()
                self._asource = execute_async(self._request, self._ctx)
                self._aloop = asyncio.get_running_loop()
            try:
                item = await self._asource.__anext__()
            except StopAsyncIteration:
                return self._finish(None, None)
            if not self._single:
                return (item, True, MIResult.OK, None, None)
            async for _extra in self._asource:
                pass
            return self._finish(item, None)
        except Exception as exc:
            return self._fail(exc)

    async def get_instance_async(self) -> InstanceResult:
        self._check_sync("instance")
        return InstanceResult(*(await self._anext()))

    async def get_class_async(self) -> ClassResult:
        self._check_sync("class")
        return ClassResult(*(await self._anext()))

    async def __aiter__(self) -> AsyncIterator[Any]:
        self._check_sync(self.kind)
        while True:
            item, more = self._item(await self._anext())
            if item is not None:
                yield item
            if not more:
                return

    async def _complete(self) -> Any:
        items = [item async for item in self]
        if self._single:
            return items[0] if items else None
        return items

    def __await__(self) -> Any:
        """``await op``: the single result (None for Delete) or the list of results; MIError on failure."""
        return self._complete().__await__()

    # --- cancel and close --------------------------------------------------------------------
    def cancel(self, reason: CancellationReason = CancellationReason.NONE) -> None:
        """Ask the operation to stop; it ends with FAILED unless it has already finished."""
        self._ctx.cancel(reason)

    @property
    def cancelled(self) -> bool:
        return self._ctx.cancelled

    def close(self) -> None:
        """Release the operation. Never blocks: an unfinished operation is cancelled first."""
        if self._closed:
            return
        self._closed = True
        src, self._asource = self._asource, None
        if src is not None and self._aloop is not None and not self._aloop.is_closed():
            # the asyncio stream's own cleanup (WS-Man Release) runs on its loop
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._aloop:
                self._aloop.create_task(src.aclose())
            else:
                asyncio.run_coroutine_threadsafe(src.aclose(), self._aloop)
        if self._final is None:
            self.cancel()
            if self._pull.acquire(blocking=False):  # nobody is reading right now: end it here
                try:
                    if self._final is None:
                        self._finish(None, self._ctx.cancellation_error())
                finally:
                    self._pull.release()
        self._session._forget(self)

    def _join(self, timeout: float | None = None) -> None:
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def session(self) -> Session:
        return self._session

    def __enter__(self) -> Operation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("finished" if self._final is not None else "running")
        return f"<openmi.Operation {self._request.name} {state}>"

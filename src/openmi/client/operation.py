"""Operation: one running request and the bounded buffer its results go through (MI_Operation).

An operation runs from the moment the session method returns, read or not, as in mi.h; reading only
collects results. Who produces them depends on what the request needs (the session decides):

- *inline*: cheap repository work (a single-result Get/Create/Modify/Delete served by the repository)
  runs to its end inside the call.
- *reader*: a repository enumeration produces a first chunk inside the call; later chunks are produced
  by a synchronous reader on its own thread when it has drained the buffer (or by the pool for the
  other readers).
- *pool*: anything that may block (a provider, a network round trip) is stepped in chunks on the
  Application's bounded worker pool; a step stops when the buffer is full and the reader re-schedules
  it once it has drained half, so a paused producer holds no thread.
- *loop*: a remote operation started inside a running event loop is a task on that loop (the
  transport's asyncio driver), pausing on an asyncio event: no thread at all.

A producer that waits for things to happen (an in-process subscription) yields ``Idle`` when nothing is
ready instead of blocking. A synchronous reader then waits for the next event on its own thread and steps
the producer there (the event reaches it with no hand-off between threads); callbacks and asyncio readers
have the pool thread wait instead.

Three readers share the buffer: ``get_instance()``/``get_class()`` (and iteration) on the caller's
thread; callbacks, delivered from the pool; ``await op`` / ``async for``, woken through the event loop.
Whatever the reader, the final result comes exactly once to a callback and is repeated to later
synchronous reads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from ..cim.cancel import CancelToken, Host
from ..cim.cimerror import error_instance
from ..cim.classes import Class
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.requests import STARTED, Idle, IndicationItem, Request
from ..cim.types import CancellationReason, MIResult, OperationFlags, PromptType, ResponseType
from .options import OperationCallbacks
from .pool import deadlines

if TYPE_CHECKING:
    from .pool import WorkerPool
    from .session import Session

log = logging.getLogger("openmi.client")

BUFFER = 256  # results an operation holds for a lagging reader before its producer pauses
_LOW = BUFFER // 2  # a paused producer resumes once the reader has drained down to this
CHUNK = 64  # results one pool step produces before it gives the thread back

# how an operation's results are produced; BACKGROUND starts as LOOP on the application's own event loop thread
INLINE, READER, POOL, LOOP, BACKGROUND = "inline", "reader", "pool", "loop", "background"

_MANUAL_ACK = int(OperationFlags.MANUAL_ACK_RESULTS)
_REPORT_STARTED = int(OperationFlags.REPORT_OPERATION_STARTED)


class InstanceResult(NamedTuple):
    instance: Instance | None
    more_results: bool
    result: MIResult
    error_message: str | None
    error_details: Instance | None


def failed_error(exc: BaseException) -> MIError:
    """What an exception that is not an MIError (a transport's bug, a peer's garbage) ends an operation with:
    FAILED, naming it, keeping it as the cause."""
    error = MIError(MIResult.FAILED, f"{type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


class ClassResult(NamedTuple):
    cls: Class | None
    more_results: bool
    result: MIResult
    error_message: str | None
    error_details: Instance | None


class IndicationResult(NamedTuple):
    """A subscription's result (MI_Operation_GetIndication): the indication, the bookmark to resume after
    it, the machine that raised it, and the MI result triple."""

    instance: Instance | None
    bookmark: str | None
    machine_id: str | None
    more_results: bool
    result: MIResult
    error_message: str | None
    error_details: Instance | None


def _indication(raw: _Raw) -> IndicationResult:
    item = raw[0]
    if isinstance(item, IndicationItem):
        return IndicationResult(item.instance, item.bookmark, item.machine_id, *raw[1:])
    return IndicationResult(None, None, None, *raw[1:])


_Raw = tuple[Any, bool, MIResult, "str | None", "Instance | None"]
_STARTED: _Raw = (None, True, MIResult.OK, None, None)


class _CallbackHost(Host):
    """Forwards what the provider reports to the operation's callbacks. A callback that raises is
    logged and fails the operation (the provider sees it cancelled; a prompt counts as "no")."""

    def __init__(self, op: Operation, callbacks: OperationCallbacks) -> None:
        self._op = op
        self._cb = callbacks
        self._sticky: bool | None = None  # a "to all" answer

    def _call(self, name: str, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        try:
            return True, fn(self._op, self._cb.context, *args)
        except Exception as exc:
            self._op._callback_failed(name, exc)
            return False, None

    def write_message(self, channel: int, message: str) -> None:
        if self._cb.write_message is not None:
            self._call("write_message", self._cb.write_message, channel, message)

    def write_progress(self, activity: str, current_operation: str, status_description: str,
                       percent_complete: int, seconds_remaining: int) -> None:
        if self._cb.write_progress is not None:
            self._call("write_progress", self._cb.write_progress, activity, current_operation, status_description,
                       percent_complete, seconds_remaining)

    def write_error(self, error: Instance) -> bool:
        if self._cb.write_error is None:
            return True
        ok, answer = self._call("write_error", self._cb.write_error, error)
        return ok and self._answer(answer, remember=False)

    def prompt_user(self, message: str, prompt_type: PromptType) -> bool:
        if self._sticky is not None:
            return self._sticky
        if self._cb.prompt_user is None:
            return True
        ok, answer = self._call("prompt_user", self._cb.prompt_user, message, prompt_type)
        return ok and self._answer(answer, remember=True)

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


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Operation:
    """A running MI operation (MI_Operation). Close it when done; it is also a context manager."""

    __slots__ = (
        "__weakref__",
        "_acked",
        "_awaiting_ack",
        "_buf",
        "_busy",
        "_callbacks",
        "_closed",
        "_cond",
        "_ctx",
        "_delivered",
        "_delivering",
        "_done",
        "_error",
        "_failure",
        "_final",
        "_final_read",
        "_idle",
        "_kicked",
        "_lock",
        "_loop",
        "_manual_ack",
        "_mode",
        "_pool",
        "_redeliver",
        "_request",
        "_result_callback",
        "_runner",
        "_self_fed",
        "_session",
        "_settled",
        "_single",
        "_source",
        "_task",
        "_transport",
        "_waiters",
        "_waiting",
        "_wake_task",
        "_watched",
        "kind",
    )

    def __init__(self, session: Session, request: Request, timeout: float | None,
                 callbacks: OperationCallbacks | None, setup_error: MIError | None = None) -> None:
        self._session = session
        self._transport: Any = session._transport
        self._request = request
        self._single = request.single
        self.kind = request.result_kind
        self._callbacks = callbacks
        # the timeout counts from here: the moment the operation starts
        self._ctx = CancelToken(timeout, host=_CallbackHost(self, callbacks) if callbacks is not None else None)
        self._lock = threading.Lock()
        self._cond: threading.Condition | None = None  # made when a reader first has to wait
        self._buf: deque[_Raw] = deque()
        self._final: _Raw | None = None
        self._error: MIError | None = None
        self._failure: MIError | None = None  # a callback failed: the operation ends with this
        self._source: Any = None
        self._final_read = False
        self._busy = False  # a step of the producer is running or scheduled
        self._idle: Idle | None = None  # the producer waits for events: how to wait for the next one
        self._done = False  # the producer has ended (its stream closed)
        self._settled = False  # done, and with callbacks the final result was delivered
        self._waiting = 0  # readers waiting for a result
        self._mode = INLINE
        self._pool: WorkerPool = session._pool
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_task: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None  # the loop driver (held: a loop keeps only weak refs)
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._runner: int | None = None  # the thread stepping the producer right now
        self._closed = False
        self._watched = False  # its deadline is on the deadline watch
        self._manual_ack = False
        self._awaiting_ack = False
        self._acked = 0  # how many results the callback has acknowledged (manual ack)
        self._delivered = 0  # how many results went to the callback; -1 once the final one has
        # a producer on an event loop with callbacks: deliveries are pool steps of their own (see _kick_locked)
        self._kicked = False
        self._delivering = False  # such a delivery step is scheduled or running
        self._redeliver = False  # more came while it ran: it goes round again
        result_cb = None
        if callbacks is not None:
            result_cb = getattr(callbacks, self._cb_name())
        self._result_callback = result_cb
        # an in-process subscription read with get_indication(): its reader steps the producer itself (see
        # _wait_here); set once the producer shows it waits with Idle. A remote one blocks on the network
        # instead: stepped by its reader, it would hold the results it already has until a chunk filled (and
        # not honour the reader's timeout), so the pool steps that
        self._self_fed = False
        if setup_error is not None:
            self._end(None, setup_error)

    # --- starting ------------------------------------------------------------------------------
    def _launch(self, mode: str) -> None:
        """Start producing (called once by the session, right after it made the operation)."""
        pool = self._pool
        self._mode = mode
        flags = self._request.flags
        if self._result_callback is not None and flags & _MANUAL_ACK:
            self._manual_ack = True
        if self._done:  # a setup error: nothing to run
            if self._result_callback is not None:
                self._busy = True
                pool.submit(self._pump)
            return
        if flags & _REPORT_STARTED and self.kind != "indication":  # a subscription says so once it is live
            self._buf.append(_STARTED)
        deadline = self._ctx.deadline
        if deadline is not None and mode != INLINE:  # the timeout fires even if nobody polls it
            self._watched = True
            deadlines.watch(self, deadline)
        if mode == INLINE:
            self._run_inline()
        elif mode == READER:
            self._busy = True
            self._runner = threading.get_ident()
            try:
                self._produce(CHUNK)
            finally:
                self._runner = None
            with self._lock:
                self._busy = False
                self._settle_locked()
                if not self._done and self._ctx.cancelled:  # cancelled meanwhile: finish it on the pool
                    self._schedule_locked()
        elif mode == LOOP:
            loop = asyncio.get_running_loop()
            self._loop = loop
            self._busy = True
            self._task = loop.create_task(self._arun(loop))
        elif mode == BACKGROUND:
            self._run_in_background()
        else:
            self._busy = True
            pool.submit(self._pump)

    def _run_in_background(self) -> None:
        """A remote subscription read on threads (get_indication, callbacks): its network waits run on the
        application's event loop thread, with every other such subscription, so it holds no pool thread while
        its Pull waits for events; callbacks are still delivered by short pool steps."""
        self._busy = True
        self._kicked = self._result_callback is not None

        def make(loop: asyncio.AbstractEventLoop) -> Coroutine[Any, Any, None]:
            self._loop = loop
            self._mode = LOOP
            return self._arun(loop)

        try:
            self._session._run_in_loop(make)
        except RuntimeError:  # the application is closing (its loop is gone): the pool runs it
            self._mode = POOL
            self._kicked = False
            self._loop = None
            self._pool.submit(self._pump)

    def _run_inline(self) -> None:
        first = None
        try:
            self._ctx.check()
            for item in self._transport.execute(self._request, self._ctx):
                if first is None:
                    first = item
        except Exception as exc:
            self._end(None, exc)
            return
        # success, before anyone else can have read or waited: no lock, nobody to wake
        if self._final is None:
            self._final = (first, False, MIResult.OK, None, None)
        self._done = self._settled = True

    # --- producing ------------------------------------------------------------------------------
    def _produce(self, limit: int) -> None:
        """Step the producer: up to ``limit`` results, or until the buffer is full, or to its end.
        Only the holder of the producing role (``_busy``) calls this, never under ``_lock``."""
        if self._done:
            return
        ctx = self._ctx
        buf = self._buf
        try:
            if ctx.cancelled:
                raise ctx.cancellation_error()
            src = self._source
            if src is None:
                src = self._source = iter(self._transport.execute(self._request, ctx))
            if self._single:
                first = None
                for item in src:
                    if first is None:
                        first = item
                self._end(first, None)
                return
            n = 0
            deliver = self._result_callback is not None
            self._idle = None
            for item in src:
                if item.__class__ is Idle:  # nothing ready: whoever reads next waits (see _pump, _next_slow)
                    self._idle = item
                    self._self_fed = self._result_callback is None
                    return
                if item is STARTED:  # the producer's own "accepted and live" (a subscription)
                    if not self._request.flags & _REPORT_STARTED:
                        continue
                    item = None
                buf.append((item, True, MIResult.OK, None, None))
                if deliver:  # callbacks hear each result as it comes (unless one awaits its acknowledgement)
                    self._deliver()
                elif self._waiting:  # a reader waits for this one: wake it now, not at the end of the chunk
                    with self._lock:
                        self._notify_locked()
                n += 1
                if n >= limit or len(buf) >= BUFFER:
                    return
            self._end(None, None)
        except Exception as exc:
            self._end(None, exc)

    def _end(self, item: Any, exc: BaseException | None) -> None:
        """The producer is done: record the final result (unless close already did) and release it."""
        source, self._source = self._source, None
        if source is not None and hasattr(source, "close"):
            try:
                source.close()  # a remote enumeration sends Release here
            except Exception as close_exc:  # cleanup failing must not hide the result
                log.warning("closing the result stream of %s failed: %s", self._request.name, close_exc)
        with self._lock:
            self._done = True
            if self._watched:
                deadlines.forget()  # the watch may let go of it now
            if self._final is not None:  # closed while it ran: the result was already decided
                self._settle_locked()
                return
            error: MIError | None = None
            if self._failure is not None:
                error = self._failure
            elif exc is not None:
                if self._ctx.cancelled and not isinstance(exc, MIError):
                    error = self._ctx.cancellation_error()  # e.g. the connection was cut to abandon it
                    error.__cause__ = exc
                elif isinstance(exc, MIError):
                    error = exc
                else:  # a transport's bug or a peer's garbage: FAILED, keeping the cause
                    error = failed_error(exc)
            if error is None:
                self._final = (item, False, MIResult.OK, None, None)
            else:
                result = error.result if isinstance(error.result, MIResult) else MIResult.FAILED
                details = error.details if error.details is not None else error_instance(error.result, error.message)
                self._error = error
                self._final = (None, False, result, error.message, details)
            self._notify_locked()
            self._settle_locked()

    def _deadline_passed(self) -> None:
        """The deadline watch: time is up, unless progress restarted the timeout meanwhile."""
        if self._done:
            return
        if self._ctx.cancelled:  # cancels with TIMEOUT: the provider's callbacks, a request in flight
            with self._lock:
                if not self._done:
                    self._schedule_locked()
        elif self._ctx.deadline is not None:
            deadlines.watch(self, self._ctx.deadline)

    # --- scheduling -------------------------------------------------------------------------------
    def _schedule_locked(self) -> None:
        """Have the producer (or the callback delivery) take another step. Caller holds ``_lock``."""
        if self._busy or self._settled:
            return
        if self._done and (self._result_callback is None or self._awaiting_ack or self._delivered < 0):
            return
        self._busy = True
        if self._mode == LOOP and self._wake_task is not None:
            try:
                assert self._loop is not None
                self._loop.call_soon_threadsafe(self._wake_task)
                return
            except RuntimeError:  # its loop is closed: finish the operation on the pool
                self._mode = POOL
        self._pool.submit(self._pump)

    def _pump(self) -> None:
        """One step on the pool: produce a chunk, deliver callbacks, then re-schedule or pause."""
        self._runner = threading.get_ident()
        try:
            idle = self._idle
            if idle is not None and not self._buf and (self._result_callback is not None or self._waiters) \
                    and not self._ctx.cancelled:
                idle.wait(1.0)  # callbacks and asyncio readers have no thread of their own to wait on
            if not self._done and (len(self._buf) < BUFFER or self._ctx.cancelled):
                # a callback hears each event as it comes; a reader is woken per result by _produce itself
                self._produce(1 if self.kind == "indication" and self._result_callback is not None else CHUNK)
            if self._result_callback is not None:
                self._deliver()
        finally:
            self._runner = None
        with self._lock:
            self._busy = False
            more = not self._done and (len(self._buf) < BUFFER or self._ctx.cancelled)
            if self._idle is not None and self._result_callback is None and not self._waiters \
                    and not self._ctx.cancelled:
                more = False  # waiting for events: a synchronous reader waits on its own thread
            if self._result_callback is not None:
                more = more or (not self._awaiting_ack and self._delivered >= 0
                                and (bool(self._buf) or self._final is not None))
            self._notify_locked()
            self._settle_locked()
            if more:
                self._schedule_locked()

    def _settle_locked(self) -> None:
        if self._settled or not self._done or self._busy:
            return
        if self._result_callback is not None and self._delivered >= 0:
            return  # the final callback is still to come
        self._settled = True
        self._notify_locked()

    def _notify_locked(self) -> None:
        if self._cond is not None:
            self._cond.notify_all()
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for loop, fut in waiters:
                try:
                    loop.call_soon_threadsafe(_wake, fut)
                except RuntimeError:  # that loop is closed; nobody waits there any more
                    pass

    # --- the loop driver (remote operations started inside a running event loop) -------------------
    async def _arun(self, loop: asyncio.AbstractEventLoop) -> None:
        task = asyncio.current_task()
        self._task = task  # (held: a loop keeps only weak references to its tasks)
        wake = asyncio.Event()
        self._wake_task = wake.set
        ctx = self._ctx

        def on_cancel(reason: CancellationReason) -> None:
            if task is not None:
                try:
                    loop.call_soon_threadsafe(task.cancel)
                except RuntimeError:  # its loop is closed: the task is gone with it
                    pass

        ctx.register_cancel(on_cancel)
        first = None
        agen = None
        try:
            ctx.check()
            agen = self._transport.execute_async(self._request, ctx)
            async for item in agen:
                if item is STARTED:
                    if not self._request.flags & _REPORT_STARTED:
                        continue
                    item = None
                if self._single:
                    if first is None:
                        first = item
                    continue
                with self._lock:
                    self._buf.append((item, True, MIResult.OK, None, None))
                    self._notify_locked()
                    if self._kicked:
                        self._kick_locked()
                    pause = len(self._buf) >= BUFFER and self._final is None
                    if pause:
                        wake.clear()
                        self._busy = False
                if pause:
                    await wake.wait()  # a reader drained the buffer (or cancel wakes us with CancelledError)
                    if self._final is not None:  # closed meanwhile
                        break
        except asyncio.CancelledError as exc:
            if agen is not None:
                await agen.aclose()
            error = ctx.cancellation_error() if ctx.cancelled else \
                MIError(MIResult.FAILED, "the event loop running the operation was closed before it finished")
            error.__cause__ = exc
            self._end(None, error)
        except Exception as exc:
            if agen is not None:
                await agen.aclose()
            self._end(None, exc)
        else:
            if agen is not None:
                await agen.aclose()
            self._end(first, None)
        finally:
            with self._lock:
                self._busy = False
                self._wake_task = None
                if self._kicked:
                    self._kick_locked()  # the final callback
                else:
                    self._mode = POOL  # anything left to do (nothing, normally) is the pool's
                self._settle_locked()

    # --- callbacks --------------------------------------------------------------------------------
    def _kick_locked(self) -> None:
        """Have a pool step deliver what is buffered to the callbacks (``_lock`` held): one step at a time, so
        callbacks come in order; a producer on an event loop never runs them itself."""
        if self._delivering:
            self._redeliver = True
            return
        self._delivering = True
        self._pool.submit(self._deliver_step)

    def _deliver_step(self) -> None:
        self._runner = threading.get_ident()  # (a callback that closes its session must not wait for itself)
        try:
            self._deliver_rounds()
        finally:
            self._runner = None

    def _deliver_rounds(self) -> None:
        while True:
            try:
                self._deliver()
            finally:
                with self._lock:
                    again = self._redeliver
                    self._redeliver = False
                    if not again:
                        self._delivering = False
                    if not self._done and (len(self._buf) < BUFFER or self._ctx.cancelled):
                        self._schedule_locked()  # a producer paused on a full buffer goes on once it has room
                    self._settle_locked()
            if not again:
                return

    def _deliver(self) -> None:
        """Hand buffered results to the result callback (on the pool, holding the producing role)."""
        cb = self._result_callback
        assert cb is not None
        context = self._callbacks.context if self._callbacks is not None else None
        while True:
            with self._lock:
                if self._awaiting_ack or self._delivered < 0:
                    return
                if self._failure is not None and self._buf:
                    self._buf.clear()  # a callback failed: what is left goes, the final FAILED follows
                if self._buf:
                    raw = self._buf.popleft()
                elif self._final is not None:
                    raw = self._final
                    if self._failure is not None and raw[2] == MIResult.OK:
                        raw = self._failed_raw(self._failure)
                else:
                    return
                final = not raw[1]
                seq = self._delivered + 1
                self._delivered = -1 if final else seq
                if self._manual_ack:
                    self._awaiting_ack = True
            args: tuple[Any, ...] = (self, context, *(_indication(raw) if self.kind == "indication" else raw))
            if self._manual_ack:
                args = (*args, self._acknowledgement(seq))
            try:
                cb(*args)
            except Exception as exc:
                if final:
                    log.error("the %s callback of %s raised on the final result", self._cb_name(),
                              self._request.name, exc_info=exc)
                else:
                    self._callback_failed(self._cb_name(), exc)
            if final:
                with self._lock:
                    self._settle_locked()
                return

    def _cb_name(self) -> str:
        return {"class": "class_result", "indication": "indication_result"}.get(self.kind, "instance_result")

    def _acknowledgement(self, seq: int) -> Callable[[], MIResult]:
        def result_acknowledgement() -> MIResult:
            """Let the next result come (MI_OPERATIONFLAGS_MANUAL_ACK_RESULTS)."""
            with self._lock:
                if seq <= self._acked:
                    return MIResult.OK  # acknowledged already
                self._acked = seq
                self._awaiting_ack = False
                if self._kicked:
                    self._kick_locked()
                else:
                    self._schedule_locked()
            return MIResult.OK
        return result_acknowledgement

    def _failed_raw(self, error: MIError) -> _Raw:
        details = error.details if error.details is not None else error_instance(error.result, error.message)
        return (None, False, MIResult(error.result), error.message, details)

    def _callback_failed(self, name: str, exc: BaseException) -> None:
        """A callback raised: log it with its traceback and fail the operation (cancelling the producer)."""
        log.error("the %s callback of %s raised; the operation is cancelled", name, self._request.name,
                  exc_info=exc)
        failure = MIError(MIResult.FAILED, f"the {name} callback raised {type(exc).__name__}: {exc}")
        failure.__cause__ = exc
        with self._lock:
            if self._failure is None:
                self._failure = failure
        self.cancel()

    # --- the synchronous reader ------------------------------------------------------------------
    def _next(self, timeout: float | None = None) -> _Raw:
        buf = self._buf
        if not buf:
            final = self._final
            if final is not None:  # set once, never changed: no lock needed to read it
                self._final_read = True
                return final
            return self._next_slow(timeout)
        try:
            raw = buf.popleft()  # the common case: a result is waiting (deque ops are atomic)
        except IndexError:
            return self._next_slow(timeout)
        if len(buf) <= _LOW and not self._busy and not self._done and self._mode != READER and not self._self_fed:
            with self._lock:
                self._schedule_locked()
        return raw

    def _next_slow(self, timeout: float | None = None) -> _Raw:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self._buf:
                    raw = self._buf.popleft()
                    if len(self._buf) <= _LOW and self._mode != READER and not self._self_fed:
                        self._schedule_locked()
                    return raw
                if self._final is not None:
                    self._final_read = True
                    return self._final
                if not self._busy:
                    if self._mode == READER and not self._ctx.cancelled:
                        self._step_here()  # repository work: produce on this thread
                        continue
                    if self._self_fed and not self._waiters and not self._ctx.cancelled:
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            raise TimeoutError(f"no result of {self._request.name} within {timeout:g} s")
                        self._wait_here(self._idle, left)  # a subscription's reader steps it on this thread
                        continue
                    self._schedule_locked()
                if self._mode == POOL and self._busy and self.kind != "indication" and self._pool.take(self._pump):
                    # this reader would only wait for a pool thread to run the step: run it here instead (a
                    # remote round trip then costs no hand-off between threads); a subscription's step waits
                    # for events, which would not honour the reader's timeout, so it stays on the pool
                    self._lock.release()
                    try:
                        self._pump()
                    finally:
                        self._lock.acquire()
                    continue
                if self._mode == LOOP and self._loop is not None and _running_loop() is self._loop:
                    raise RuntimeError("a blocking read on the event loop that runs this operation would never "
                                       "return; use await op.get_instance_async(), async for, or await op")
                if self._cond is None:
                    self._cond = threading.Condition(self._lock)
                self._waiting += 1
                try:
                    if deadline is None:
                        self._cond.wait()
                    else:
                        left = deadline - time.monotonic()
                        if left <= 0 or not self._cond.wait(left):
                            if not self._buf and self._final is None:
                                raise TimeoutError(f"no result of {self._request.name} within {timeout:g} s")
                finally:
                    self._waiting -= 1

    def _wait_here(self, idle: Idle | None, timeout: float | None) -> None:
        """Step a subscription on the calling thread, first waiting for its next event if it is idle (``_lock``
        held on entry and exit): its synchronous reader gets each event from the writer with no other thread."""
        self._step_here(CHUNK, idle, timeout)

    def _step_here(self, limit: int = BUFFER, idle: Idle | None = None, timeout: float | None = None) -> None:
        """Produce up to ``limit`` results on the calling thread, after waiting on ``idle`` if given (``_lock``
        held on entry and exit)."""
        self._busy = True
        self._runner = threading.get_ident()
        self._lock.release()
        try:
            if idle is not None:
                idle.wait(timeout)
            self._produce(limit)
        finally:
            self._lock.acquire()
            self._runner = None
            self._busy = False
            self._settle_locked()
            self._notify_locked()
            if not self._done and self._ctx.cancelled:  # cancelled meanwhile: finish it on the pool
                self._schedule_locked()

    def _check_sync(self, kind: str) -> None:
        if self._result_callback is not None:
            raise MIError(MIResult.INVALID_PARAMETER,
                          "this operation delivers its results to callbacks; it cannot also be read with get_*()")
        if self.kind != kind:
            what = {"class": "classes", "indication": "indications"}.get(self.kind, "instances")
            raise MIError(MIResult.INVALID_PARAMETER,
                          f"this operation returns {what}; read it with get_{self.kind}()")

    def _item(self, raw: _Raw) -> tuple[Any, bool]:
        """A result as the iterators hand it on: (item, more), or the final error raised with its cause."""
        item, more, result, message, details = raw
        if result != MIResult.OK:
            cause = self._error.__cause__ if self._error is not None else None
            raise MIError(result, message, details) from cause
        return item, more

    def get_instance(self) -> InstanceResult:
        """The next result: ``(instance, more_results, result, error_message, error_details)``."""
        self._check_sync("instance")
        return InstanceResult(*self._next())

    def get_class(self) -> ClassResult:
        self._check_sync("class")
        return ClassResult(*self._next())

    def get_indication(self, timeout: float | None = None) -> IndicationResult:
        """A subscription's next result (MI_Operation_GetIndication); waits for one, or for ``timeout``
        seconds and then raises TimeoutError (the subscription goes on)."""
        self._check_sync("indication")
        return _indication(self._next(timeout))

    @property
    def more_results(self) -> bool:
        """False once the final result has been read."""
        return not self._final_read

    @property
    def error(self) -> MIError | None:
        """The MIError the operation ended with, once it has (its ``__cause__`` is a provider's or the
        transport's original exception), else None."""
        if self._error is not None:
            return self._error
        return self._failure if self._final is not None and self._result_callback is not None else None

    def __iter__(self) -> Iterator[Any]:
        """Yield every instance (or class, or indication instance); raise MIError if the operation fails."""
        self._check_sync(self.kind)
        while True:
            item, more = self._item(self._next())
            if isinstance(item, IndicationItem):
                item = item.instance
            if item is not None:
                yield item
            if not more:
                return

    # --- the asyncio reader --------------------------------------------------------------------
    async def _anext(self) -> _Raw:
        loop: asyncio.AbstractEventLoop | None = None
        while True:
            with self._lock:
                if self._buf:
                    raw = self._buf.popleft()
                    if len(self._buf) <= _LOW:
                        self._schedule_locked()
                    return raw
                if self._final is not None:
                    self._final_read = True
                    return self._final
                self._schedule_locked()
                if loop is None:
                    loop = asyncio.get_running_loop()
                fut: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, fut))
                self._waiting += 1
            try:
                await fut
            finally:
                with self._lock:
                    self._waiting -= 1

    async def get_instance_async(self) -> InstanceResult:
        self._check_sync("instance")
        return InstanceResult(*(await self._anext()))

    async def get_class_async(self) -> ClassResult:
        self._check_sync("class")
        return ClassResult(*(await self._anext()))

    async def get_indication_async(self) -> IndicationResult:
        self._check_sync("indication")
        return _indication(await self._anext())

    async def __aiter__(self) -> AsyncIterator[Any]:
        self._check_sync(self.kind)
        while True:
            item, more = self._item(await self._anext())
            if isinstance(item, IndicationItem):
                item = item.instance
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
        """Ask the operation to stop; it ends with FAILED unless it has already finished. A provider that
        is running sees ``ctx.cancelled`` and its cancel callbacks; a remote request in flight is abandoned."""
        self._ctx.cancel(reason)
        with self._lock:
            if not self._done:
                self._schedule_locked()  # a paused producer must step once more to end (and send Release)

    @property
    def cancelled(self) -> bool:
        return self._ctx.cancelled

    def close(self) -> None:
        """Release the operation. Never blocks: an unfinished operation is cancelled first; with callbacks
        it still finishes in the background and its final callback still comes."""
        if self._closed:
            return
        self._closed = True
        if self._final is None:
            self.cancel()
        elif not self._buf:  # finished and drained (the common case): nothing to free or wake
            self._session._forget(self)
            return
        if self._result_callback is None:
            with self._lock:
                if self._final is None:  # readers blocked on another thread get this final result
                    error = self._ctx.cancellation_error()
                    self._error = error
                    self._final = self._failed_raw(error)
                self._buf.clear()
                self._notify_locked()
        self._session._forget(self)

    def _wait_settled(self, timeout: float | None) -> bool:
        """Wait until the producer is done (and the final callback delivered); False on timeout."""
        if self._runner == threading.get_ident():
            return self._settled
        if self._mode == LOOP and self._loop is not None and _running_loop() is self._loop:
            return self._settled  # it needs this very thread's loop to finish: waiting would only stall
        with self._lock:
            if self._cond is None:
                self._cond = threading.Condition(self._lock)
            return self._cond.wait_for(lambda: self._settled, timeout)

    def _join(self, timeout: float | None = None) -> None:
        self._wait_settled(timeout)

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


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None

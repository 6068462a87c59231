"""Application: the factory for sessions, instances and options (MI_Application)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from ..cim.classes import Class
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.types import MIResult
from ..engine.server import Server
from .options import DestinationOptions, OperationOptions
from .pool import DEFAULT_MAX_THREADS, WorkerPool
from .session import CLOSE_GRACE, LocalTransport, Session, Transport

_LOCAL_NAMES = (None, "", ".", "localhost")
_LOOP_STOP_GRACE = 5.0  # seconds the event loop thread gets to finish what is left at close
_LOOP_IDLE = 2.0  # seconds the event loop thread lives on with nothing to run (then a new one starts on demand)
log = logging.getLogger("openmi.client")


#: the applications not closed yet: those still open when the interpreter exits are closed then, so that their
#: remote subscriptions are unsubscribed and their enumerations released rather than left to expire at the server
_OPEN: weakref.WeakSet[Application] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for app in list(_OPEN):
        try:
            app.close()
        except Exception:  # (one application's trouble must not keep the others open)
            log.exception("closing an application at exit failed")


class Application:
    """One per program is the intent. ``close()`` closes every session it made; a context manager.

    Operations that may block (providers, remote hosts) run on one pool of at most ``max_threads``
    threads shared by all the application's sessions."""

    def __init__(self, app_id: str = "", *, max_threads: int = DEFAULT_MAX_THREADS) -> None:
        self.app_id = app_id
        self._pool = WorkerPool(max_threads, name="openmi-pool")
        self._sessions: set[Session] = set()
        self._lock = threading.Lock()
        self._default_server: Server | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_tasks = 0  # operations running on it
        self._loop_idle_since = 0.0
        _OPEN.add(self)

    def new_session(self, destination: str | None = None, protocol: str | None = None,
                    options: DestinationOptions | None = None, *, server: Server | None = None) -> Session:
        """A session to ``server`` (an embedded Server), to the default embedded server (no destination),
        or to a remote host over WS-Management (``protocol="WINRM"``)."""
        if self._closed:
            raise MIError(MIResult.INVALID_PARAMETER, "the application is closed")
        transport: Transport
        timeout = options.timeout if isinstance(options, DestinationOptions) else None
        if server is not None:
            if not isinstance(server, Server):
                raise TypeError(f"server must be an openmi.Server, not {type(server).__name__}")
            transport = LocalTransport(server)
        elif destination in _LOCAL_NAMES and protocol in (None, "", "OPENMI_LOCAL"):
            transport = LocalTransport(self._default())
        else:
            transport = self._remote(destination, protocol, options)
        session = Session(self, transport, destination, protocol, timeout)
        with self._lock:
            self._sessions.add(session)
        return session

    def _remote(self, destination: str | None, protocol: str | None, options: DestinationOptions | None) -> Transport:
        proto = (protocol or "WINRM").upper()
        if proto not in ("WINRM", "MI_REMOTE_WSMAN", "WSMAN"):
            raise MIError(MIResult.INVALID_PARAMETER,
                          f"unknown protocol {protocol!r}; openmi speaks WINRM (WS-Management) to remote hosts")
        if not destination:
            raise MIError(MIResult.INVALID_PARAMETER, "a remote session needs a destination host")
        try:
            from .remote import WSManTransport
        except ImportError as exc:
            raise MIError(MIResult.NOT_SUPPORTED, f"remote sessions are not available: {exc}") from None
        return WSManTransport(destination, options or DestinationOptions())

    def _default(self) -> Server:
        with self._lock:
            if self._default_server is None or self._default_server.closed:
                self._default_server = Server()
            return self._default_server

    def _run_in_loop(self, make: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]]) -> None:
        """Run ``make(loop)`` as a task of the application's event loop: one thread, started on demand, that
        runs every remote subscription read with get_indication() or through callbacks. A subscription spends
        its life waiting on the network, so on the pool each would hold a thread (and the pool's bound would
        starve the rest). The thread ends after _LOOP_IDLE seconds with nothing to run, as pool threads do.
        RuntimeError once the application closed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the application is closed")
            loop = self._loop
            if loop is None:
                loop = asyncio.new_event_loop()
                t = threading.Thread(target=self._run_loop, args=(loop,), name="openmi-events", daemon=True)
                t.start()
                self._loop, self._loop_thread = loop, t
            future = asyncio.run_coroutine_threadsafe(make(loop), loop)
            self._loop_tasks += 1
        future.add_done_callback(self._loop_task_done)

    def _loop_task_done(self, _future: object) -> None:
        with self._lock:
            self._loop_tasks -= 1
            self._loop_idle_since = time.monotonic()

    async def _stop_when_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            await asyncio.sleep(_LOOP_IDLE / 4)
            with self._lock:
                if self._loop is not loop:
                    return  # (closing: close stops it)
                if self._loop_tasks == 0 and time.monotonic() - self._loop_idle_since >= _LOOP_IDLE:
                    self._loop = self._loop_thread = None  # the next subscription starts a new one
                    loop.stop()
                    return

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            watch = loop.create_task(self._stop_when_idle(loop))
            loop.run_forever()
            watch.cancel()
            left = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in left:  # (close waited for the operations: anything left is cut short)
                t.cancel()
            if left:
                loop.run_until_complete(asyncio.wait(left, timeout=_LOOP_STOP_GRACE))
            with self._lock:
                sessions = list(self._sessions)
            for s in sessions:  # their idle connections on this loop's streams close with it
                drop = getattr(s._transport, "drop_loop", None)
                if drop is not None:
                    drop(loop)
            loop.run_until_complete(asyncio.sleep(0))  # (the transports finish closing)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        except Exception:  # the loop's own failure: say so; the operations it ran end as their tasks did
            log.exception("the application's event loop failed")
        finally:
            loop.close()

    def _forget(self, session: Session) -> None:
        with self._lock:
            self._sessions.discard(session)

    # --- factories -------------------------------------------------------------------------------
    def new_instance(self, class_name: str) -> Instance:
        """A dynamic instance: any element may be added (MI_Application_NewInstance)."""
        return Instance(class_name)

    def new_instance_from_class(self, class_name: str, cls: Class) -> Instance:
        """An instance with the class's properties, types, keys and defaults."""
        if not isinstance(cls, Class):
            raise TypeError(f"cls must be an openmi.Class, not {type(cls).__name__}")
        return Instance(class_name, namespace=cls.namespace, cls=cls)

    def new_parameter_set(self) -> Instance:
        return Instance("__PARAMETERS")

    def new_operation_options(self, must_understand: bool = False, **kwargs: Any) -> OperationOptions:
        return OperationOptions(must_understand=must_understand, **kwargs)

    def new_destination_options(self, **kwargs: Any) -> DestinationOptions:
        return DestinationOptions(**kwargs)

    # --- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions = list(self._sessions)
        _OPEN.discard(self)
        deadline = time.monotonic() + CLOSE_GRACE
        stopping = [(s, s._shutdown()) for s in sessions]  # cancel everything first, then wait once
        for s, ops in stopping:
            if ops is not None:
                s._finish(ops, deadline)
        with self._lock:
            loop, thread = self._loop, self._loop_thread
            self._loop = self._loop_thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_LOOP_STOP_GRACE * 2)
            if thread.is_alive():
                log.error("the application's event loop did not stop within %s s", _LOOP_STOP_GRACE * 2)
        self._pool.close()
        if self._default_server is not None:
            self._default_server.close()

    @property
    def max_threads(self) -> int:
        """The most threads the application's operations run on at once."""
        return self._pool.max_threads

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Application:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

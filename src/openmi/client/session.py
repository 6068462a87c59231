"""Session: one destination and the operations run against it (MI_Session).

Every operation method returns an :class:`Operation` at once and never raises for CIM errors: the
outcome, good or bad, is the operation's final result. The convenience methods (``get``, ``delete`` …)
run an operation to its end and raise :class:`MIError` instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from ..cim import requests as rq
from ..cim.cancel import CancelToken
from ..cim.classes import Class
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.types import MIResult
from .operation import BACKGROUND, INLINE, LOOP, POOL, READER, Operation, failed_error
from .options import OperationCallbacks, OperationOptions, SubscriptionDeliveryOptions
from .pool import WorkerPool, default_pool

if TYPE_CHECKING:
    from ..engine.server import Server
    from .application import Application

# How long closing a session (or application) waits, in all, for cancelled operations to wind down.
CLOSE_GRACE = 5.0


class Transport(Protocol):
    """Carries requests to a destination and streams the results back."""

    def execute(self, request: rq.Request, token: CancelToken) -> Iterator[Any]: ...

    def may_block(self, request: rq.Request) -> bool:
        """Whether serving ``request`` may wait (a provider, the network): it then runs on the pool."""
        ...

    def close(self) -> None: ...


class LocalTransport:
    """The in-process transport: requests go straight to an embedded server."""

    def __init__(self, server: Server, owned: bool = False) -> None:
        self.server = server
        self.owned = owned

    def execute(self, request: rq.Request, token: CancelToken) -> Iterator[Any]:
        return self.server.execute(request, token)

    def may_block(self, request: rq.Request) -> bool:
        return self.server.may_block(request)

    def close(self) -> None:
        if self.owned:
            self.server.close()


def _option_fields(options: OperationOptions) -> dict[str, Any]:
    """What OperationOptions put into a request record (the timeout goes to the operation's token)."""
    fields: dict[str, Any] = {}
    if options.custom_options:
        fields["options"] = {name: o.value for name, o in options.custom_options.items()}
    if options.resource_uri:
        fields["resource_uri"] = options.resource_uri
    if options.resource_uri_prefix:
        fields["resource_uri_prefix"] = options.resource_uri_prefix
    return fields


# set while a convenience method starts the operation it reads synchronously at once
_blocking = threading.local()


class Session:
    """Operations against one destination. A context manager; ``close()`` cancels what still runs."""

    def __init__(self, application: Application | None, transport: Transport, destination: str | None = None,
                 protocol: str | None = None, timeout: float | None = None) -> None:
        self._application = application
        self._pool: WorkerPool = application._pool if application is not None else default_pool()
        self._transport = transport
        self._async = getattr(transport, "execute_async", None) is not None
        self.destination = destination
        self.protocol = protocol
        self._timeout = timeout
        self._operations: set[Operation] = set()
        self._lock = threading.Lock()
        self._closed = False

    # --- the operation factory -------------------------------------------------------------------
    def _start(self, kind: type[rq.Request], options: OperationOptions | None, callbacks: OperationCallbacks | None,
               flags: int, **fields: Any) -> Operation:
        """Build the request record in one step (flags and options included) and start it.

        A CIM-level problem (a closed session, bad flags or options) does not raise: it becomes the
        operation's final result.
        """
        if options is None and callbacks is None and flags == 0:  # the common case
            op = Operation(self, kind(**fields), self._timeout, None)
            with self._lock:
                closed = self._closed
                if not closed:
                    self._operations.add(op)
            if closed:
                op = Operation(self, kind(), None, None, MIError(MIResult.INVALID_PARAMETER, "the session is closed"))
        else:
            op = self._make(kind, options, callbacks, flags, fields)
        mode = self._mode(op)
        if mode is INLINE and flags == 0 and not op._done:
            op._run_inline()  # cheap repository work: done before the call returns
        else:
            op._launch(mode)
        return op

    def _make(self, kind: type[rq.Request], options: OperationOptions | None, callbacks: OperationCallbacks | None,
              flags: int, fields: dict[str, Any]) -> Operation:
        timeout = self._timeout
        with self._lock:
            closed = self._closed
        try:
            if closed:
                raise MIError(MIResult.INVALID_PARAMETER, "the session is closed")
            if options is not None and not isinstance(options, OperationOptions):
                raise MIError(MIResult.INVALID_PARAMETER,
                              f"options must be openmi.OperationOptions, not {type(options).__name__}")
            if callbacks is not None and not isinstance(callbacks, OperationCallbacks):
                raise MIError(MIResult.INVALID_PARAMETER,
                              f"callbacks must be openmi.OperationCallbacks, not {type(callbacks).__name__}")
            if options is not None:
                fields.update(_option_fields(options))
                if options.timeout is not None:
                    timeout = options.timeout
            request = kind(flags=flags, **fields)
            setup_error: MIError | None = None
        except MIError as exc:
            request, setup_error = kind(), exc
        op = Operation(self, request, timeout, callbacks if isinstance(callbacks, OperationCallbacks) else None,
                       setup_error)
        with self._lock:
            late = self._closed and not closed  # the session closed while this operation started
            if not late and setup_error is None:
                self._operations.add(op)
        if late:
            return Operation(self, kind(), None, None, MIError(MIResult.INVALID_PARAMETER, "the session is closed"))
        return op

    def _mode(self, op: Operation) -> str:
        """How the operation's results are produced (see openmi.client.operation)."""
        if op._done:
            return INLINE
        request = op._request
        on_loop = self._async and not getattr(_blocking, "on", False) and asyncio._get_running_loop() is not None
        if self._async and request.result_kind == "indication" and self._application is not None and \
                (op._result_callback is not None or not on_loop):
            # a remote subscription waits on the network for as long as it lives: the application's event loop
            # thread waits for all of them, so none holds a pool thread (callbacks are still pool steps)
            return BACKGROUND
        if op._result_callback is not None:
            return POOL  # callbacks are delivered from the pool, never inside the call
        if on_loop:
            return LOOP
        if self._transport.may_block(request):
            return POOL
        return INLINE if request.single else READER

    def _run_in_loop(self, make: Callable[[asyncio.AbstractEventLoop], Coroutine[Any, Any, None]]) -> None:
        """A task on the application's event loop thread (see Application._run_in_loop); RuntimeError once
        it closed."""
        if self._application is None:
            raise RuntimeError("no application")
        self._application._run_in_loop(make)

    def _forget(self, op: Operation) -> None:
        self._operations.discard(op)  # one set operation: atomic under the GIL

    # --- MI_Session_* ----------------------------------------------------------------------------
    def get_instance(self, namespace: str | None, instance: Instance | None, *, options: OperationOptions | None = None,
                     callbacks: OperationCallbacks | None = None, flags: int = 0) -> Operation:
        return self._start(rq.GetInstance, options, callbacks, flags, namespace=namespace, instance=instance)

    def create_instance(self, namespace: str | None, instance: Instance | None, *,
                        options: OperationOptions | None = None, callbacks: OperationCallbacks | None = None,
                        flags: int = 0) -> Operation:
        return self._start(rq.CreateInstance, options, callbacks, flags, namespace=namespace, instance=instance)

    def modify_instance(self, namespace: str | None, instance: Instance | None, *,
                        options: OperationOptions | None = None, callbacks: OperationCallbacks | None = None,
                        flags: int = 0) -> Operation:
        return self._start(rq.ModifyInstance, options, callbacks, flags, namespace=namespace, instance=instance)

    def delete_instance(self, namespace: str | None, instance: Instance | None, *,
                        options: OperationOptions | None = None, callbacks: OperationCallbacks | None = None,
                        flags: int = 0) -> Operation:
        """MI_Session_DeleteInstance: flags must be 0; the final result carries no instance."""
        return self._start(rq.DeleteInstance, options, callbacks, flags, namespace=namespace, instance=instance)

    def enumerate_instances(self, namespace: str | None, class_name: str, keys_only: bool = False, *,
                            options: OperationOptions | None = None, callbacks: OperationCallbacks | None = None,
                            flags: int = 0) -> Operation:
        return self._start(rq.EnumerateInstances, options, callbacks, flags, namespace=namespace, class_name=class_name,
                           keys_only=keys_only)

    def query_instances(self, namespace: str | None, dialect: str, query: str, *,
                        options: OperationOptions | None = None, callbacks: OperationCallbacks | None = None,
                        flags: int = 0) -> Operation:
        """MI_Session_QueryInstances: ``dialect`` is "WQL" or "CQL" (MI_QUERY_DIALECT_*); results stream like
        an enumeration's. An unknown dialect ends with QUERY_LANGUAGE_NOT_SUPPORTED, a bad query with
        INVALID_QUERY (the message names the column)."""
        return self._start(rq.QueryInstances, options, callbacks, flags, namespace=namespace, dialect=dialect,
                           query=query)

    def get_class(self, namespace: str | None, class_name: str, *, options: OperationOptions | None = None,
                  callbacks: OperationCallbacks | None = None, flags: int = 0) -> Operation:
        return self._start(rq.GetClass, options, callbacks, flags, namespace=namespace, class_name=class_name)

    def enumerate_classes(self, namespace: str | None, class_name: str | None = None,
                          class_names_only: bool = False, *, options: OperationOptions | None = None,
                          callbacks: OperationCallbacks | None = None, flags: int = 0) -> Operation:
        return self._start(rq.EnumerateClasses, options, callbacks, flags, namespace=namespace, class_name=class_name,
                           class_names_only=class_names_only)

    def invoke(self, namespace: str | None, class_name: str | None, method_name: str,
               instance: Instance | None = None, parameters: Instance | Mapping[str, Any] | None = None, *,
               options: OperationOptions | None = None, callbacks: OperationCallbacks | None = None,
               flags: int = 0) -> Operation:
        """Run an extrinsic method; the result instance holds ``ReturnValue`` and the out-parameters."""
        params = dict(parameters) if isinstance(parameters, Mapping) and not isinstance(parameters, Instance) \
            else parameters
        return self._start(rq.Invoke, options, callbacks, flags, namespace=namespace, class_name=class_name,
                           method_name=method_name, instance=instance, parameters=params)

    def associator_instances(self, namespace: str | None, instance: Instance | None, assoc_class: str | None = None,
                             result_class: str | None = None, role: str | None = None,
                             result_role: str | None = None, keys_only: bool = False, *,
                             options: OperationOptions | None = None, callbacks: OperationCallbacks | None = None,
                             flags: int = 0) -> Operation:
        """MI_Session_AssociatorInstances: the instances linked to ``instance`` by association instances;
        every filter is optional (None or "" for any)."""
        return self._start(rq.AssociatorInstances, options, callbacks, flags, namespace=namespace, instance=instance,
                           assoc_class=assoc_class, result_class=result_class, role=role, result_role=result_role,
                           keys_only=keys_only)

    def reference_instances(self, namespace: str | None, instance: Instance | None, result_class: str | None = None,
                            role: str | None = None, keys_only: bool = False, *,
                            options: OperationOptions | None = None, callbacks: OperationCallbacks | None = None,
                            flags: int = 0) -> Operation:
        """MI_Session_ReferenceInstances: the association instances that refer to ``instance``
        (``result_class`` names an association class)."""
        return self._start(rq.ReferenceInstances, options, callbacks, flags, namespace=namespace, instance=instance,
                           result_class=result_class, role=role, keys_only=keys_only)

    def subscribe(self, namespace: str | None, dialect: str, query: str, *,
                  delivery_options: SubscriptionDeliveryOptions | None = None, options: OperationOptions | None = None,
                  callbacks: OperationCallbacks | None = None, flags: int = 0) -> Operation:
        """MI_Session_Subscribe: a WQL/CQL event query; the operation streams indications (read them with
        ``get_indication()``, ``indication_result`` callbacks, iteration or ``async for``) until it is
        cancelled or closed, its delivery options' expiration passes, or it fails. With
        MI_OPERATIONFLAGS_REPORT_OPERATION_STARTED the first result, with no instance, says it is live."""
        d = delivery_options
        if d is not None and not isinstance(d, SubscriptionDeliveryOptions):
            raise TypeError(f"delivery_options must be openmi.SubscriptionDeliveryOptions, not {type(d).__name__}")
        fields: dict[str, Any] = {}
        if d is not None:
            fields = {"bookmark": d.bookmark, "expiration": d.expiration_seconds(), "heartbeat": d.heartbeat,
                      "queue_size": d.queue_size, "delivery": d.delivery, "destination": d.destination,
                      "port": d.port, "max_latency": d.max_latency, "max_elements": d.max_elements}
        return self._start(rq.Subscribe, options, callbacks, flags, namespace=namespace, dialect=dialect, query=query,
                           **fields)

    def test_connection(self, *, callbacks: OperationCallbacks | None = None, flags: int = 0) -> Operation:
        return self._start(rq.TestConnection, None, callbacks, flags)

    def identify(self) -> Instance:
        """Who the destination is: WS-Man Identify remotely (vendor, version, protocol), openmi's own locally."""
        ident = getattr(self._transport, "identify", None)
        if ident is None:
            from .. import __version__

            return Instance("OpenMI_Identify", {"ProductVendor": "openmi", "ProductVersion": __version__,
                                                "ProtocolVersion": "embedded"})
        r = ident()
        return Instance("WSMan_Identify", {"ProductVendor": r.product_vendor, "ProductVersion": r.product_version,
                                           "ProtocolVersion": r.protocol_version,
                                           "SecurityProfiles": list(r.security_profiles)})

    # --- convenience: run to the end, raise MIError on failure ----------------------------------------
    def _direct(self, kind: type[rq.Request], **fields: Any) -> list[Any] | None:
        """A single-result request the engine answers at once (repository work, no timeout): run it here, with
        no Operation to buffer one result; None when it needs one (a provider, the network, a timeout, an
        event loop to run on). The same results and the same MIError (with its details) either way."""
        if self._timeout is not None or self._closed or not isinstance(self._transport, LocalTransport):
            return None
        request = kind(**fields)
        if self._transport.may_block(request):
            return None
        first = None
        try:
            for item in self._transport.execute(request, CancelToken()):
                if first is None:
                    first = item
        except MIError:
            raise
        except Exception as exc:  # a bug below us: FAILED keeping the cause, as an Operation reports it
            raise failed_error(exc) from exc
        return [] if first is None else [first]

    def _run(self, start: Callable[[], Operation]) -> list[Any]:
        """Start an operation that this thread reads at once (so never as a task of its event loop)."""
        _blocking.on = True
        try:
            op = start()
        finally:
            _blocking.on = False
        with op:
            return list(op)

    def get(self, instance: Instance, *, namespace: str | None = None,
            options: OperationOptions | None = None) -> Instance:
        out = self._direct(rq.GetInstance, namespace=namespace, instance=instance) if options is None else None
        if out is None:
            out = self._run(lambda: self.get_instance(namespace, instance, options=options))
        return out[0]  # type: ignore[no-any-return]

    def create(self, instance: Instance, *, namespace: str | None = None,
               options: OperationOptions | None = None) -> Instance:
        out = self._direct(rq.CreateInstance, namespace=namespace, instance=instance) if options is None else None
        if out is None:
            out = self._run(lambda: self.create_instance(namespace, instance, options=options))
        return out[0]  # type: ignore[no-any-return]

    def modify(self, instance: Instance, *, namespace: str | None = None,
               options: OperationOptions | None = None) -> Instance:
        out = self._direct(rq.ModifyInstance, namespace=namespace, instance=instance) if options is None else None
        if out is None:
            out = self._run(lambda: self.modify_instance(namespace, instance, options=options))
        return out[0]  # type: ignore[no-any-return]

    def delete(self, instance: Instance, *, namespace: str | None = None,
               options: OperationOptions | None = None) -> None:
        if options is not None or self._direct(rq.DeleteInstance, namespace=namespace, instance=instance) is None:
            self._run(lambda: self.delete_instance(namespace, instance, options=options))

    def enumerate(self, class_name: str, *, namespace: str | None = None, keys_only: bool = False,
                  options: OperationOptions | None = None, flags: int = 0) -> list[Instance]:
        return self._run(lambda: self.enumerate_instances(namespace, class_name, keys_only, options=options,
                                                          flags=flags))

    def associators(self, instance: Instance, *, assoc_class: str | None = None, result_class: str | None = None,
                    role: str | None = None, result_role: str | None = None, keys_only: bool = False,
                    namespace: str | None = None, options: OperationOptions | None = None) -> list[Instance]:
        """The associated instances as a list (raises MIError); the namespace defaults to the instance's."""
        ns = namespace if namespace is not None else instance.namespace if isinstance(instance, Instance) else None
        return self._run(lambda: self.associator_instances(ns, instance, assoc_class, result_class, role,
                                                           result_role, keys_only, options=options))

    def references(self, instance: Instance, *, result_class: str | None = None, role: str | None = None,
                   keys_only: bool = False, namespace: str | None = None,
                   options: OperationOptions | None = None) -> list[Instance]:
        """The association instances referring to ``instance``, as a list (raises MIError)."""
        ns = namespace if namespace is not None else instance.namespace if isinstance(instance, Instance) else None
        return self._run(lambda: self.reference_instances(ns, instance, result_class, role, keys_only,
                                                          options=options))

    def query(self, query: str, *, namespace: str | None = None, dialect: str = "WQL",
              options: OperationOptions | None = None, flags: int = 0) -> list[Instance]:
        """Run a WQL (or CQL) query to the end: the matching instances, or MIError."""
        return self._run(lambda: self.query_instances(namespace, dialect, query, options=options, flags=flags))

    def invoke_method(self, target: Instance | str, method_name: str,
                      parameters: Instance | Mapping[str, Any] | None = None, *, namespace: str | None = None,
                      options: OperationOptions | None = None) -> Instance:
        """Invoke on an instance, or a static method when ``target`` is a class name."""
        if isinstance(target, Instance):
            out = self._run(lambda: self.invoke(namespace, target.class_name, method_name, target, parameters,
                                                options=options))
        else:
            out = self._run(lambda: self.invoke(namespace, target, method_name, None, parameters, options=options))
        return out[0]  # type: ignore[no-any-return]

    def classes(self, class_name: str | None = None, *, namespace: str | None = None,
                names_only: bool = False) -> list[Class]:
        return self._run(lambda: self.enumerate_classes(namespace, class_name, names_only))

    # --- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Cancel and close every operation still open, give them (all together, at most
        ``CLOSE_GRACE`` seconds) to wind down, and release the transport. Callbacks still get their
        final result."""
        ops = self._shutdown()
        if ops is not None:
            self._finish(ops, time.monotonic() + CLOSE_GRACE)

    def _shutdown(self) -> list[Operation] | None:
        """Stop taking operations and cancel the open ones; returns them (None if already closed)."""
        with self._lock:
            if self._closed:
                return None
            self._closed = True
            ops = list(self._operations)
        for op in ops:
            op.close()
        return ops

    def _finish(self, ops: list[Operation], deadline: float) -> None:
        for op in ops:  # they were all cancelled together: the waits overlap
            op._wait_settled(max(0.0, deadline - time.monotonic()))
        self._transport.close()
        if self._application is not None:
            self._application._forget(self)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def application(self) -> Application | None:
        return self._application

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.destination or "local"
        return f"<openmi.Session {where}{' closed' if self._closed else ''}>"

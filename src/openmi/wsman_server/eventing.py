"""WS-Eventing subscriptions of the WS-Man server: each one runs the engine's Subscribe and hands its
indications over in the delivery mode the subscriber chose.

- **Pull**: the SubscribeResponse carries an enumeration context; each Pull on it waits (up to the heartbeat
  interval, the Pull's MaxTime and its OperationTimeout) for events and answers them as a PullResponse, with
  the last event's ``wsman:Bookmark`` when SendBookmarks was asked; with nothing to say it answers an empty
  PullResponse (OMI's heartbeat). Release of the context ends the subscription like Unsubscribe.
- **Push / PushWithAck / Events**: a delivery thread POSTs to the NotifyTo address (one event per message,
  or batches of MaxElements gathered for up to MaxTime), asks for an Ack (PushWithAck, Events), sends
  Heartbeat messages, retries per ConnectionRetry, and after that gives up: SubscriptionEnd
  (DeliveryFailure) to EndTo. A ``wsman:DeliveryRefused`` from the sink cancels it without SubscriptionEnd.

A Pull subscription holds no thread: each Pull steps the engine's stream itself, whose per-subscription
queue holds the events between Pulls (and ends a subscriber that falls behind with SERVER_LIMITS_EXCEEDED);
a push subscription has its delivery thread. A subscription ends on Unsubscribe/Release, at its Expires (a
Pull then sees EndOfSequence), when no Pull came for the idle limit, on a final error (the next Pull gets it
as a fault), and on graceful shutdown (Pulls get ``wsa:EndpointUnavailable``, push subscribers a SubscriptionEnd with
SourceShuttingDown). Each user may hold a bounded number of live subscriptions.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..cim import requests as rq
from ..cim.cancel import CancelToken, Host
from ..cim.errors import MIError
from ..cim.types import MIResult
from ..engine.indications import LostBookmark
from ..engine.server import Server
from ..protocol import wsman
from ..protocol.wsman import eventing as ev
from ..protocol.wsman import namespaces as wns
from ..protocol.wsman.faults import WSManFault, protocol_fault
from .forward import TAG
from .quotas import QuotaFull, SharedQuotas
from .sender import Sender, SinkError

log = logging.getLogger("openmi.wsman_server")


@dataclass
class EventingConfig:
    max_subscriptions_per_user: int = 128
    idle_limit: float = 600.0  # seconds a Pull subscription lives with no Pull
    default_heartbeat: float = 30.0  # how long a Pull waits when the subscription asked for no heartbeats
    default_max_elements: int = 1
    max_elements_cap: int = 10_000
    buffer: int = 10_000  # indications a subscription holds for its subscriber (more: it ends, saying how many)
    push_timeout: float = 10.0  # seconds a sink has to answer a delivery
    push_retries: tuple[float, int] = (1.0, 3)  # (interval, attempts) when the Subscribe gives no ConnectionRetry
    default_max_time: float = 1.0  # Events mode: how long a batch gathers when MaxTime is not given


_DIALECTS = {wns.DIALECT_WQL: "WQL", wns.DIALECT_CQL: "CQL"}


# a Pull's page writer: (the indications taken, how to make a page of some of them, how to put the rest
# back) → the bytes of the page that fits the envelope (the service's, which knows the envelope limits)
Fit = Callable[[list[rq.IndicationItem], Callable[[list[rq.IndicationItem]], wsman.Response],
                Callable[[list[rq.IndicationItem]], None]], bytes]


class _Started(Host):
    """Hears where a subscription starts (Host.subscription_started)."""

    bookmark: str | None = None

    def subscription_started(self, bookmark: str) -> None:
        self.bookmark = bookmark


class _Live:
    """One live WS-Man subscription."""

    def __init__(self, store: SubscriptionStore, request: ev.SubscribeRequest, user: str | None,
                 token: CancelToken, results: Iterator[Any]) -> None:
        self.store = store
        self.id = uuid.uuid4().urn + store.suffix
        self.request = request
        self.user = user
        self.token = token
        self.results: Iterator[Any] | None = results
        self.stepping = threading.Lock()  # held by the one reader stepping the engine's stream
        self.cond = threading.Condition(threading.Lock())
        self.error: MIError | None = None
        self.finished = False  # the engine's stream ended (Expires passed)
        self.closed = False  # unsubscribed, dropped, or the server is stopping
        self.shutting_down = False
        self.touched = time.monotonic()
        self.pulling = 0  # Pulls waiting now (a subscription being pulled is never idle)
        self.deliverer: threading.Thread | None = None
        self.sender: Sender | None = None
        # taken from the engine but not sent: a Pull whose page did not fit the envelope puts the rest back,
        # and the next reader sends them first (under its own lock: a Pull putting back never waits for another
        # one that is waiting for events)
        self.held: list[rq.IndicationItem] = []
        self._held_lock = threading.Lock()
        # the bookmark of the last page sent, or of where it started: what a heartbeat carries (SendBookmarks)
        self.mark: str | None = None

    @property
    def pull(self) -> bool:
        return self.request.delivery_mode == ev.MODE_PULL

    # --- engine → subscriber --------------------------------------------------------------------------
    def take(self, n: int, wait: float, gather: float = 0.0) -> list[rq.IndicationItem]:
        """Up to ``n`` indications, waiting up to ``wait`` seconds for the first and then up to ``gather``
        seconds more for the rest (Events batches).

        The reader — a Pull's request, or a push subscription's delivery thread — steps the engine's
        stream itself: it holds the events (a bounded queue, ``Subscribe.queue_size``: a subscriber that
        stops reading is ended with an error saying how many it lost), and says when it has none by
        yielding an ``Idle`` to wait on. So a subscription between Pulls holds no thread."""
        deadline = time.monotonic() + wait
        until: float | None = None  # (gathering) the batch closes then
        items: list[rq.IndicationItem] = []
        if not self.stepping.acquire(timeout=max(0.0, wait)):
            return items  # another reader of the same subscription had it all along
        try:
            with self._held_lock:
                if self.held:
                    items, self.held = self.held[:n], self.held[n:]
            results = self.results
            while results is not None and len(items) < n and not self._over():
                try:
                    item = next(results)
                except StopIteration:
                    with self.cond:
                        self.finished = True
                    break
                except MIError as exc:
                    with self.cond:
                        if not self.closed:
                            self.error = exc
                    break
                except Exception as exc:  # an engine bug: the subscriber hears FAILED rather than nothing
                    log.exception("subscription %s failed", self.id)
                    with self.cond:
                        self.error = MIError(MIResult.FAILED,
                                             f"the subscription failed: {type(exc).__name__}: {exc}")
                    break
                if isinstance(item, rq.IndicationItem):
                    items.append(item)
                    if until is None and gather > 0:
                        until = time.monotonic() + gather
                elif isinstance(item, rq.Idle):
                    if items and until is None:
                        break  # (a Pull answers with what it has)
                    left = (deadline if until is None else until) - time.monotonic()
                    if left <= 0:
                        break
                    item.wait(left)  # returns early for an event, an unsubscribe or the shutdown
        finally:
            if self.closed and self.results is not None:  # (closed while this reader stepped it: see close)
                results, self.results = self.results, None
                close = getattr(results, "close", None)
                if close is not None:
                    close()
            self.stepping.release()
        return items

    def put_back(self, items: list[rq.IndicationItem]) -> None:
        """Indications a Pull took but could not send (its page was over the envelope size): the next
        reader gets them first, in order."""
        with self._held_lock:
            self.held[:0] = items

    def _over(self) -> bool:
        return self.closed or self.finished or self.error is not None

    def close(self) -> None:
        """End it: the engine's subscription is cancelled (a reader waiting in it wakes and leaves) and
        then closed, which lets go of its events and tells providers it is gone."""
        with self.cond:
            already = self.closed
            self.closed = True
            self.cond.notify_all()
        self.token.cancel()
        if already and self.results is None:
            return
        if self.stepping.acquire(timeout=10.0):
            try:
                results, self.results = self.results, None
                if results is not None:
                    close = getattr(results, "close", None)
                    if close is not None:
                        close()
            finally:
                self.stepping.release()
        else:  # (a reader stuck in a provider: it closes the stream when it comes back, see take)
            log.warning("subscription %s: its reader did not leave; it closes the subscription when it does", self.id)

    # --- push delivery ------------------------------------------------------------------------------
    def _deliver(self) -> None:
        req = self.request
        cfg = self.store.config
        assert req.notify_to is not None
        self.sender = Sender(req.notify_to.address, cfg.push_timeout)
        events = req.delivery_mode == ev.MODE_EVENTS
        ack = req.delivery_mode in (ev.MODE_PUSH_WITH_ACK, ev.MODE_EVENTS)
        n = max(1, min(req.max_elements or (100 if events else 1), cfg.max_elements_cap)) if events else 1
        gather = (req.max_time or cfg.default_max_time) if events else 0.0
        try:
            while True:
                items = self.take(n, req.heartbeat or 3600.0, gather)
                if items:
                    msg, body = self._batch(items, events, ack)
                    if not self._send(msg, ack, body):
                        return
                    if msg.bookmark and msg.bookmark != ev.BOOKMARK_EARLIEST:
                        self.mark = msg.bookmark
                    continue
                with self.cond:
                    closed, shutting, finished, error = self.closed, self.shutting_down, self.finished, self.error
                if shutting:
                    self._end(ev.STATUS_SOURCE_SHUTTING_DOWN, "the server is shutting down",
                              MIResult.SERVER_IS_SHUTTING_DOWN)
                    return
                if closed:
                    return
                if error is not None:
                    self._end(ev.STATUS_SOURCE_CANCELLING, error.message, error.result)
                    return
                if finished:
                    return  # expired: WS-Eventing announces no SubscriptionEnd for that (the subscriber knows)
                if req.heartbeat is not None and not self._send(ev.EventMessage(
                        to=req.notify_to.address, action=ev.ACTION_HEARTBEAT,
                        headers=dict(req.notify_to.parameters), ack_requested=ack,
                        bookmark=self.mark if req.send_bookmarks else None), ack):
                    return
        finally:
            self.sender.close()
            self.store.forget(self)

    def _batch(self, items: list[rq.IndicationItem], events: bool, ack: bool) -> tuple[ev.EventMessage, bytes]:
        """The event message for ``items`` and its bytes. With a MaxEnvelopeSize in the Delivery, an Events
        batch over it carries the first half and puts the rest back for the next message, until it fits (one
        event over it alone is still sent: the subscriber's own limit decides about it)."""
        req = self.request
        assert req.notify_to is not None
        while True:
            msg = ev.EventMessage(
                to=req.notify_to.address, action=ev.ACTION_EVENTS if events else ev.ACTION_EVENT,
                events=[i.instance for i in items], headers=dict(req.notify_to.parameters),
                ack_requested=ack, bookmark=self.store.page_bookmark(items) if req.send_bookmarks else None,
                machine_id=items[-1].machine_id, style=req.uri_style, namespace=req.namespace)
            body = ev.build_event_message(msg)
            cap = req.delivery_max_envelope
            if cap is None or len(body) <= cap or len(items) == 1:
                return msg, body
            keep = len(items) // 2
            self.put_back(items[keep:])
            items = items[:keep]

    def _send(self, msg: ev.EventMessage, ack: bool, body: bytes | None = None) -> bool:
        """Deliver with retries; False once the subscription is over (given up, refused, closed)."""
        assert self.sender is not None
        if body is None:
            body = ev.build_event_message(msg)
        retry = self.request.connection_retry or self.store.config.push_retries
        interval, attempts = retry
        last: Exception | None = None
        for attempt in range(max(1, attempts) + 1):
            if self.closed and not self.shutting_down:
                return False
            if attempt:
                with self.cond:
                    self.cond.wait(interval)
            try:
                status, ctype, data = self.sender.post(body, wsman.content_type())
                if status >= 300:
                    if data and ctype and "soap" in ctype.lower():
                        ev.parse_ack(data, ctype, msg.message_id)  # raises the sink's fault
                    raise SinkError(f"the sink answered HTTP {status}")
                if ack:
                    ev.parse_ack(data, ctype, msg.message_id)
                return True
            except WSManFault as fault:
                if fault.fault.subcode is not None and fault.fault.subcode[1] == "DeliveryRefused":
                    log.info("subscription %s: the sink refused delivery; cancelled", self.id)
                    self.close()  # MS-WSMV: cancelled without a SubscriptionEnd
                    return False
                last = fault
            except (SinkError, MIError) as exc:
                last = exc
        log.info("subscription %s: delivery to %s failed (%s); ending it", self.id, self.sender.url, last)
        self._end(ev.STATUS_DELIVERY_FAILURE, f"delivery failed: {last}")
        self.close()
        return False

    def _end(self, status: str, reason: str, result: int | None = None) -> None:
        """SubscriptionEnd to the EndTo address, if the subscriber gave one (with the MI result that ended
        the subscription, when one did)."""
        end_to = self.request.end_to
        if end_to is None or not end_to.address:
            return
        msg = ev.SubscriptionEnd(to=end_to.address, identifier=self.id, status=status, reason=reason, result=result,
                                 manager_address=self.request.to or wns.ANONYMOUS, headers=dict(end_to.parameters))
        try:
            sender = self.sender if self.sender is not None and self.sender.url == end_to.address else \
                Sender(end_to.address, self.store.config.push_timeout)
            sender.post(ev.build_subscription_end(msg), wsman.content_type())
            if sender is not self.sender:
                sender.close()
        except (SinkError, ValueError) as exc:
            log.info("subscription %s: SubscriptionEnd to %s failed: %s", self.id, end_to.address, exc)




class SubscriptionStore:
    """The live subscriptions of one WS-Man service."""

    def __init__(self, engine: Server, config: EventingConfig | None = None, *, suffix: str = "",
                 quotas: SharedQuotas | None = None, slot: int = 0) -> None:
        """``quotas``: the per-user counts the workers of one ``openmi serve`` share (``slot``: this one's)."""
        self.engine = engine
        self.config = config or EventingConfig()
        self.suffix = suffix  # what its identifiers end with (the worker's tag under openmi serve --workers)
        self.quotas = quotas
        self.slot = slot
        self._items: dict[str, _Live] = {}
        self._lock = threading.Lock()
        self._stopping = False

    def __len__(self) -> int:
        return len(self._items)

    def owns(self, context: str) -> bool:
        return context in self._items

    def page_bookmark(self, items: list[rq.IndicationItem]) -> str:
        """The bookmark of a page: the last event's, tagged as this server's contexts are (a Subscribe that
        resumes from it is handed to the worker or host that keeps the events), or the reserved earliest
        one when it has none (OMI)."""
        mark = items[-1].bookmark
        return mark + self.suffix if mark else ev.BOOKMARK_EARLIEST

    # --- Subscribe ---------------------------------------------------------------------------------
    def subscribe(self, req: ev.SubscribeRequest, user: str | None) -> ev.SubscribeResponse:
        if self._stopping:
            raise MIError(MIResult.SERVER_IS_SHUTTING_DOWN, "the server is shutting down")
        self._sweep()
        self._claim(user)
        try:
            return self._subscribe(req, user)
        except BaseException:
            self._release(user)
            raise

    def _claim(self, user: str | None) -> None:
        limit = self.config.max_subscriptions_per_user
        if self.quotas is None:
            with self._lock:
                mine = sum(1 for s in self._items.values() if s.user == user)
            over = mine if mine >= limit else None
        else:
            try:
                over = self.quotas.claim("subscription", user, self.slot, limit)
            except QuotaFull:
                raise protocol_fault("wsman:QuotaLimit", "too many users hold live subscriptions; try again later",
                                     result=MIResult.SERVER_LIMITS_EXCEEDED) from None
        if over is not None:
            raise protocol_fault("wsman:QuotaLimit",
                                 f"too many live subscriptions ({over}); unsubscribe from some first",
                                 result=MIResult.SERVER_LIMITS_EXCEEDED)

    def _release(self, user: str | None) -> None:
        """A subscription claimed for ``user`` is gone (or never started)."""
        if self.quotas is not None:
            self.quotas.release("subscription", user, self.slot)

    def _subscribe(self, req: ev.SubscribeRequest, user: str | None) -> ev.SubscribeResponse:
        record = rq.Subscribe(req.namespace, dialect=self._dialect(req), query=self._query(req),
                              bookmark=ev.mi_bookmark(TAG.sub("", req.bookmark or "") or None),
                              expiration=req.expires, heartbeat=req.heartbeat, options=req.option_set,
                              queue_size=self.config.buffer)
        # where it stands before its first event, as the engine says once it is live (the SubscribeResponse and
        # heartbeats carry it: a client that reconnects before any event resumes from there)
        started = _Started()
        token = CancelToken(host=started)
        results = self.engine.execute(record, token, user=user)
        try:
            first = next(results)  # STARTED once the subscription is live; errors fail the Subscribe
        except StopIteration:
            first = None
        except MIError as exc:
            if isinstance(exc, LostBookmark):
                raise protocol_fault("wsman:InvalidBookmark", exc.message, "Expired",
                                     result=MIResult.INVALID_PARAMETER) from None
            raise
        live = _Live(self, req, user, token, results)
        live.mark = None if started.bookmark is None else started.bookmark + self.suffix
        if first is None:
            live.finished = True
        with self._lock:
            self._items[live.id] = live
        if not live.pull:
            live.deliverer = threading.Thread(target=live._deliver, name=f"openmi-delivery-{live.id[9:17]}",
                                              daemon=True)
            try:
                live.deliverer.start()
            except BaseException:  # (no thread to deliver with: it never was; subscribe() releases the claim)
                with self._lock:
                    self._items.pop(live.id, None)
                live.close()
                raise
        return ev.SubscribeResponse(identifier=live.id, address=req.to or wns.ANONYMOUS,
                                    resource_uri=req.effective_resource_uri(),
                                    context=live.id if live.pull else None, expires=req.expires,
                                    bookmark=live.mark if req.send_bookmarks else None)

    @staticmethod
    def _dialect(req: ev.SubscribeRequest) -> str:
        if req.filter is None:
            return "WQL"
        return _DIALECTS.get(req.filter.dialect, req.filter.dialect)

    @staticmethod
    def _query(req: ev.SubscribeRequest) -> str:
        if req.filter is not None and req.filter.query:
            return req.filter.query
        cls = req.class_name
        if not cls or cls == "*":
            raise protocol_fault("wse:EventSourceUnableToProcess",
                                 "A subscription to the namespace's wildcard URI needs a WQL or CQL filter.",
                                 result=MIResult.INVALID_QUERY)
        return f"SELECT * FROM {cls}"  # a subscription to an indication class's URI: all of its indications

    # --- Pull ------------------------------------------------------------------------------------------
    def pull(self, req: wsman.PullRequest, user: str | None, fit: Fit) -> wsman.Response | bytes:
        """A subscription's Pull: the indications waiting (up to MaxElements, within the heartbeat), or a
        heartbeat. ``fit(items, make, put_back)`` writes the page carrying as many as fit the envelope and
        puts the rest back for the next Pull."""
        live = self._get(req.context, user)
        cfg = self.config
        if live.closed and live.shutting_down:
            raise MIError(MIResult.SERVER_IS_SHUTTING_DOWN, "the server is shutting down")
        waits = [live.request.heartbeat or cfg.default_heartbeat]
        if req.max_time is not None:
            waits.append(req.max_time)
        if req.operation_timeout is not None:
            waits.append(max(0.0, req.operation_timeout * 0.9))  # answer before the client gives up
        n = max(1, min(req.max_elements or cfg.default_max_elements, cfg.max_elements_cap))
        live.touched = time.monotonic()
        with live.cond:
            live.pulling += 1
        try:
            items = live.take(n, min(waits))
        finally:
            with live.cond:
                live.pulling -= 1
            live.touched = time.monotonic()
        send_bookmarks = live.request.send_bookmarks
        if items:
            marks: list[str] = []  # the bookmark of the page that went out (the last one made)

            def page(its: list[rq.IndicationItem]) -> wsman.Response:
                marks[:] = [self.page_bookmark(its)]
                return wsman.PullResponse(context=live.id, items=[i.instance for i in its],
                                          bookmark=marks[0] if send_bookmarks else None)
            data = fit(items, page, live.put_back)
            if marks[0] != ev.BOOKMARK_EARLIEST:
                live.mark = marks[0]
            return data
        with live.cond:
            error, finished, closed, shutting = live.error, live.finished, live.closed, live.shutting_down
        if shutting:
            raise MIError(MIResult.SERVER_IS_SHUTTING_DOWN, "the server is shutting down")
        if error is not None:
            self._remove(live)
            raise error
        if finished:
            self._remove(live)
            return wsman.PullResponse(context=None, end_of_sequence=True)
        if closed:
            raise MIError(MIResult.INVALID_ENUMERATION_CONTEXT, f"the subscription {req.context} has ended")
        return wsman.PullResponse(context=live.id, heartbeat=True, bookmark=live.mark if send_bookmarks else None)

    # --- the subscription manager ---------------------------------------------------------------------
    def unsubscribe(self, identifier: str, user: str | None) -> None:
        self._remove(self._get(identifier, user))

    def _get(self, identifier: str, user: str | None) -> _Live:
        self._sweep()
        with self._lock:
            live = self._items.get(identifier)
        if live is None or live.user != user:
            raise protocol_fault("wsa:DestinationUnreachable",
                                 f"no subscription {identifier!r} (unknown, ended, or expired)",
                                 result=MIResult.INVALID_ENUMERATION_CONTEXT)
        return live

    def _remove(self, live: _Live) -> None:
        with self._lock:
            gone = self._items.pop(live.id, None)
        if gone is not None:
            self._release(live.user)
        live.close()

    def forget(self, live: _Live) -> None:
        """A push subscription whose delivery thread has ended."""
        self._remove(live)

    def _sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [s for s in self._items.values()
                    if s.pull and now - s.touched > self.config.idle_limit and not s.pulling]
            for s in idle:
                self._items.pop(s.id, None)
        for s in idle:
            self._release(s.user)
        for s in idle:
            log.info("subscription %s dropped: no Pull for %.0f s", s.id, self.config.idle_limit)
            s.close()

    # --- shutdown ----------------------------------------------------------------------------------------
    def begin_shutdown(self) -> None:
        """Graceful shutdown: waiting Pulls answer EndpointUnavailable, push subscribers get a
        SubscriptionEnd with SourceShuttingDown; no new subscriptions."""
        self._stopping = True
        with self._lock:
            items = list(self._items.values())
        for s in items:
            with s.cond:
                s.shutting_down = True
                s.closed = True
                s.cond.notify_all()
            s.token.cancel()  # a reader waiting for events wakes
        for s in items:
            if s.deliverer is not None:
                s.deliverer.join(self.config.push_timeout + 1)

    def close(self) -> None:
        self._stopping = True
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for s in items:
            self._release(s.user)
            s.close()

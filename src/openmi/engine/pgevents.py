"""Indications across the servers of one PostgreSQL repository, with LISTEN/NOTIFY.

Each server (an ``openmi.Server`` on a ``postgresql://`` URL: another host, or a worker of ``openmi serve``)
listens on the channel ``openmi_events`` on a connection of its own. When its subscriptions start or stop
watching a namespace it says so on the channel; a server that commits a create, modify or delete in a
namespace another server watches notifies the event (the class and the stored rows, or the typed
instances of a method call or of what a provider posted while serving a request, as
:meth:`Server.link_events` makes it) once, for all of them; a server that starts says hello and the others
answer with what they watch. A server ignores its own messages.

PostgreSQL carries at most 8,000 octets per notification: an event whose rows are larger is written to
``openmi_event_payloads`` and the notification names its row, which each receiver reads (rows older than
``_PAYLOAD_LIFE`` seconds are deleted by the next large event). The news that a server watches travels as
fast as a notification, so a change committed elsewhere in the first moments of a new subscription
(milliseconds) may not reach it. Bookmarks
are per server (its window); a server whose last subscriber of a namespace left goes on wanting its events
for the hub's linger, so a subscriber that comes back with a bookmark to that server misses none.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Server

log = logging.getLogger("openmi.engine")

CHANNEL = "openmi_events"
_MAX_PAYLOAD = 7_900  # PostgreSQL's limit is 8,000 octets
_PAYLOAD_LIFE = 300  # seconds a large event's row is kept for the receivers to read


class PgEventLink:
    """This server's side of the events shared over PostgreSQL (see the module's docstring)."""

    def __init__(self, server: Server, url: str) -> None:
        import psycopg

        self.server = server
        self.id = uuid.uuid4().hex[:16]
        self._peers: dict[str, int] = {}  # other servers' ids → the numbers the hub knows them by
        self._listen = psycopg.connect(url, autocommit=True)
        try:
            self._listen.execute(f"LISTEN {CHANNEL}")
            self._send = psycopg.connect(url, autocommit=True)
        except BaseException:
            self._listen.close()
            raise
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="openmi-pg-events", daemon=True)

    def start(self) -> None:
        self.server.link_events(self._relay, self._announce, broadcast=True)
        self._thread.start()
        self._notify({"t": "hello"})

    def close(self) -> None:
        self.server.unlink_events()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for conn in (self._listen, self._send):
            try:
                conn.close()
            except Exception as exc:  # closing what may be broken already: say so, and close the other
                log.info("closing a PostgreSQL connection of the event link failed: %s", exc)

    # --- sending ------------------------------------------------------------------------------------
    def _notify(self, message: dict[str, Any]) -> None:
        text = json.dumps({**message, "from": self.id})
        try:
            with self._send_lock:
                if len(text.encode()) > _MAX_PAYLOAD:  # too large to travel in the notification: by reference
                    row = self._send.execute("INSERT INTO openmi_event_payloads(payload) VALUES(%s) RETURNING id",
                                             (text,)).fetchone()
                    self._send.execute("DELETE FROM openmi_event_payloads WHERE at < now() - make_interval("
                                       "secs => %s)", (_PAYLOAD_LIFE,))
                    assert row is not None  # (RETURNING gives the new row)
                    text = json.dumps({"t": "ref", "id": int(row[0]), "from": self.id})
                self._send.execute("SELECT pg_notify(%s, %s)", (CHANNEL, text))
        except Exception as exc:  # the write is committed whatever the other servers hear
            log.warning("cannot notify the other servers: %s", exc)

    def _payload(self, ref: int) -> str | None:
        """A large event's message, by the row its notification names (None once it is gone)."""
        with self._send_lock:
            row = self._send.execute("SELECT payload FROM openmi_event_payloads WHERE id=%s", (ref,)).fetchone()
        return None if row is None else str(row[0])

    def _relay(self, peer: int, message: dict[str, Any]) -> None:
        self._notify({"t": "event", "event": message})

    def _announce(self, namespace_key: str, watching: bool) -> None:
        self._notify({"t": "watch", "ns": namespace_key, "on": watching})

    # --- receiving ----------------------------------------------------------------------------------
    def _peer(self, sender: str) -> int:
        n = self._peers.get(sender)
        if n is None:
            n = self._peers[sender] = len(self._peers) + 1
        return n

    def _run(self) -> None:
        hub = self.server.indications
        while not self._stop.is_set():
            try:
                for note in self._listen.notifies(timeout=0.5):
                    self._handle(note.payload, hub)
                    if self._stop.is_set():
                        return
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("listening for the other servers' events failed: %s", exc)
                self._stop.wait(1.0)

    def _handle(self, text: str, hub: Any) -> None:
        try:
            m = json.loads(text)
            sender = str(m["from"])
            if sender == self.id:
                return
            if m["t"] == "ref":
                payload = self._payload(int(m["id"]))
                if payload is None:
                    log.warning("a large event of server %s was gone before it could be read", sender)
                    return
                m = json.loads(payload)
            kind = m["t"]
            if kind == "event":
                self.server.receive_event(m["event"])
            elif kind == "watch":
                hub.set_remote(self._peer(sender), str(m["ns"]), bool(m["on"]))
            elif kind == "hello":
                hub.forget_peer(self._peer(sender))
                for key in hub.wanted():
                    self._announce(key, True)
        except Exception:  # one bad message must not stop the others
            log.exception("a notification from another server could not be read")

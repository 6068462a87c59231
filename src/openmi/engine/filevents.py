"""Indications among the processes that share one SQLite file (``Server(path, shared=True)``).

``openmi serve`` (each of its workers), the command line's local verbs and any program that opens a repository
file shared are servers of one repository: a delete done by ``openmi di`` in one terminal is an event for the
``openmi sub`` running in another, or for a subscriber of the served file. Each process hands the others the
events a request served by it produced, as the servers of one PostgreSQL repository do with NOTIFY
(:meth:`Server.link_events` says what travels).

How: a process whose subscriptions watch a namespace listens on a Unix datagram socket ``<name>.ev`` in the
directory ``<file>-events`` (mode 0700), and writes the namespaces it watches to ``<name>.ns`` beside it
(``<name>`` is its process id and a random part). Then it counts the change in ``<file>-writers``
(:meth:`Repository.bump_listeners`, under the writers' lock), which every process sharing the file maps: a
writer looks at that count before each write (one read of memory) and reads the directory again only when it
moved. An event goes as a JSON datagram to each process that watches its namespace; one too large for a
datagram goes as a file in the directory, named in the datagram. A listener whose receive buffer stays full
for 50 ms misses the event (and those after it, until it reads again), and its subscriptions of that namespace
end as ones that fell behind, saying how many were lost (the writer notes each in ``<name>.lost``, which the
listener reads when it reads again). A process that died without removing its entry
is removed by the next one that reads the directory. A socket path longer than the system allows is reached
through a short link in the temporary directory.

Where no ``<file>-writers`` exists (a system without ``fork``, or one where it cannot be opened) nothing is
linked: each process then hears only its own events.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .repository import Repository
    from .server import Server

log = logging.getLogger("openmi.engine")

_DGRAM_MAX = 200_000  # a datagram on a Unix socket (the default socket buffer holds about 208 KiB)
_SUN_PATH_MAX = 100  # what every system takes in a socket address (Linux 108, the BSDs and macOS 104)
_RETRIES = 50  # a full receive buffer drains in a moment: wait up to ~50 ms, never block
_LOOK_LOST = 0.1  # how often a busy listener looks whether events failed to reach it (an idle one: at each pause)


class FileEventLink:
    """This process's side of the events shared through one repository file (see the module's docstring)."""

    def __init__(self, server: Server, repository: Repository) -> None:
        self.server = server
        self.repository = repository
        self.directory = repository.path + "-events"
        self.name = f"{os.getpid()}-{uuid.uuid4().hex[:10]}"
        self._lock = threading.Lock()  # the directory's view and this process's entry
        self._seen: int | None = -1  # the listeners count the view was read at (-1: never read)
        self._peers: dict[str, int] = {}  # entry name → peer id (hub.remote)
        self._watch: dict[int, frozenset[str]] = {}  # peer id → the namespaces it watches
        self._paths: dict[int, str] = {}  # peer id → its socket
        self._names: dict[int, str] = {}  # peer id → its entry's name
        self._stalled: set[int] = set()  # peers whose buffer stayed full at the last event
        self._ids = itertools.count(1)
        self._files = itertools.count(1)
        self._watched: set[str] = set()  # the namespaces this process's subscriptions watch
        self._tx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._tx.setblocking(False)
        self._tx_lock = threading.Lock()
        self._rx: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    # --- who listens -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the directory again if the listeners count moved since (called before each write)."""
        if self.repository.listeners() != self._seen:
            self._reload()

    def _reload(self) -> None:
        hub = self.server.indications
        with self._lock:
            if self._closed:
                return
            count = self.repository.listeners()  # read first: a change after it is seen at the next write
            found: dict[str, frozenset[str]] = {}
            try:
                names = os.listdir(self.directory)
            except FileNotFoundError:
                names = []
            except OSError as exc:
                log.warning("cannot read %s (%s): other processes' subscribers miss this one's events",
                            self.directory, exc.strerror)
                names = []
            for entry in names:
                if not entry.endswith(".ns") or entry[:-3] == self.name:
                    continue
                name = entry[:-3]
                if not _alive(name):
                    self._remove_entry(name)
                    continue
                try:
                    with open(os.path.join(self.directory, entry), encoding="utf-8") as f:
                        keys = json.load(f)
                    found[name] = frozenset(str(k) for k in keys)
                except FileNotFoundError:
                    continue  # (it stopped listening meanwhile)
                except (OSError, ValueError, TypeError) as exc:
                    log.warning("ignored %s: %s", os.path.join(self.directory, entry), exc)
            for name in [n for n in self._peers if n not in found]:
                peer = self._peers.pop(name)
                self._paths.pop(peer, None)
                self._names.pop(peer, None)
                self._watch.pop(peer, None)
                self._stalled.discard(peer)
                hub.forget_peer(peer)
            for name, keys in found.items():
                known = self._peers.get(name)
                if known is None:
                    known = self._peers[name] = next(self._ids)
                peer = known
                self._names[peer] = name
                try:
                    self._paths[peer] = self._address(name)
                except OSError as exc:
                    log.warning("cannot reach the process of %s (%s): its subscribers miss this one's events",
                                name, exc)
                    continue
                before = self._watch.get(peer, frozenset())
                for key in keys - before:
                    hub.set_remote(peer, key, True)
                for key in before - keys:
                    hub.set_remote(peer, key, False)
                self._watch[peer] = keys
            self._seen = count

    def _remove_entry(self, name: str) -> None:
        """Remove what a process that is gone left (its entry, its socket)."""
        for suffix in (".ns", ".ev", ".lost", ".lost.taken"):
            try:
                os.unlink(os.path.join(self.directory, name + suffix))
            except FileNotFoundError:
                pass
            except OSError as exc:  # (never fails the write that found it)
                log.warning("cannot remove %s: %s", name + suffix, exc)

    def _address(self, name: str) -> str:
        """Where to reach the socket of entry ``name``: in the directory, or through a short link to it."""
        path = os.path.join(self.directory, name + ".ev")
        if len(os.fsencode(path)) <= _SUN_PATH_MAX:
            return path
        real = os.path.realpath(self.directory)
        link = os.path.join(tempfile.gettempdir(), "openmi-ev-" + hashlib.sha256(os.fsencode(real)).hexdigest()[:16])
        try:
            os.symlink(real, link)
        except FileExistsError:
            if os.path.realpath(link) != real:
                raise OSError(errno.EEXIST, f"{link} exists and does not lead to {real}") from None
        return os.path.join(link, name + ".ev")

    # --- this process's subscriptions -----------------------------------------------------------------
    def announce(self, namespace_key: str, watching: bool) -> None:
        """This process's subscriptions started (or stopped) watching a namespace: say so in the directory,
        then count the change, so every write that commits after this hands its event over."""
        with self._lock:
            if self._closed:
                return
            if watching:
                self._watched.add(namespace_key)
            else:
                self._watched.discard(namespace_key)
            try:
                if self._watched:
                    self._listen()
                    tmp = os.path.join(self.directory, self.name + ".tmp")
                    with open(tmp, "w", encoding="utf-8") as f:
                        json.dump(sorted(self._watched), f)
                    os.replace(tmp, os.path.join(self.directory, self.name + ".ns"))
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.directory, self.name + ".ns"))
            except OSError as exc:
                log.warning("cannot listen for other processes' events in %s (%s): subscribers here hear only "
                            "this process's changes", self.directory, exc)
                return
        self.repository.bump_listeners()

    def _listen(self) -> None:
        """Bind this process's socket and start receiving (once; the link's lock held)."""
        if self._rx is not None:
            return
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        path = self._address(self.name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            rx.bind(path)
            os.chmod(path, 0o600)
            rx.settimeout(0.5)
        except OSError:
            rx.close()
            raise
        self._rx = rx
        self._thread = threading.Thread(target=self._receive, name="openmi-file-events", daemon=True)
        self._thread.start()

    # --- sending (under the hub's lock: never blocks for long, never calls back into the hub) ---------------
    def send(self, peer: int, message: dict[str, Any]) -> None:
        path = self._paths.get(peer)
        if path is None:
            return
        key = str(message.get("ns", "")).lower()
        data = json.dumps(message).encode()
        if len(data) > _DGRAM_MAX:  # too large for a datagram: as a file the receiver reads and removes
            try:
                name = os.path.join(self.directory, f"{self.name}-{next(self._files)}.big")
                with open(name, "wb") as f:
                    f.write(data)
                data = json.dumps({"file": os.path.basename(name)}).encode()
            except OSError as exc:
                log.warning("cannot hand a large event to another process (%s)", exc)
                self._miss(peer, key)
                return
        if not self._send_bytes(peer, path, data):
            self._miss(peer, key)

    def _miss(self, peer: int, key: str) -> None:
        """An event a listener did not get: say so where it looks (``<its name>.lost``, a line per event), so
        that its subscriptions of the namespace end as ones that fell behind, even if this process ends first."""
        name = self._names.get(peer)
        if name is None:
            return
        try:
            with open(os.path.join(self.directory, name + ".lost"), "a", encoding="utf-8") as f:
                f.write(json.dumps(key) + "\n")
        except OSError as exc:
            log.warning("cannot tell another process that its subscribers missed an event: %s", exc)

    def _send_bytes(self, peer: int, path: str, data: bytes) -> bool:
        # a full receive buffer drains in a moment: wait up to ~50 ms, never block; a listener that did not
        # drain it last time gets one try until it takes one again (the writers do not wait on it each time)
        tries = 1 if peer in self._stalled else _RETRIES
        for _ in range(tries):
            try:
                with self._tx_lock:
                    self._tx.sendto(data, path)
                self._stalled.discard(peer)
                return True
            except BlockingIOError:
                time.sleep(0.001)
            except (FileNotFoundError, ConnectionRefusedError):
                # nobody listens there: that process is gone (a listener binds before it writes its entry and
                # removes the entry first when it stops). Its entry goes, and the directory is read again
                self._paths.pop(peer, None)
                name = self._names.get(peer)
                if name is not None:
                    self._remove_entry(name)
                self._seen = -1
                return True
            except OSError as exc:
                log.warning("cannot hand an event to another process: %s", exc)
                return False
        if peer not in self._stalled:
            self._stalled.add(peer)
            log.warning("another process does not take events (its buffer stays full): its subscribers miss them")
        return False

    # --- receiving ------------------------------------------------------------------------------------
    def _receive(self) -> None:
        rx = self._rx
        assert rx is not None
        lost = os.path.join(self.directory, self.name + ".lost")
        looked = time.monotonic()
        while not self._stop.is_set():
            try:
                data = rx.recv(_DGRAM_MAX + 16)
            except TimeoutError:
                self._take_lost(lost)
                continue
            except OSError:
                return
            self._handle(data)
            if time.monotonic() - looked > _LOOK_LOST:
                # what came before the writers gave up on this process is taken first: a subscriber then reads
                # every event that reached it before it hears how many did not
                rx.settimeout(0)  # (MSG_DONTWAIT alone still waits out a socket's timeout)
                try:
                    while True:
                        try:
                            data = rx.recv(_DGRAM_MAX + 16)
                        except (BlockingIOError, TimeoutError):
                            break
                        except OSError:
                            return
                        self._handle(data)
                finally:
                    if not self._stop.is_set():
                        rx.settimeout(0.5)
                self._take_lost(lost)
                looked = time.monotonic()

    def _handle(self, data: bytes) -> None:
        try:
            m = json.loads(data)
            if "file" in m:
                path = os.path.join(self.directory, os.path.basename(str(m["file"])))
                with open(path, "rb") as f:
                    m = json.loads(f.read())
                os.unlink(path)
            self.server.receive_event(m)
        except Exception:  # one bad message must not stop the others
            log.exception("an event from another process could not be read")

    def _take_lost(self, lost: str) -> None:
        """The events other processes could not hand over (see :meth:`_miss`): the subscriptions of their
        namespaces end as ones that fell behind."""
        taking = lost + ".taken"
        try:
            os.replace(lost, taking)
        except FileNotFoundError:
            return
        try:
            with open(taking, encoding="utf-8") as f:
                counts: dict[str, int] = {}
                for line in f:
                    key = str(json.loads(line))
                    counts[key] = counts.get(key, 0) + 1
            os.unlink(taking)
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s: %s", taking, exc)
            return
        hub = self.server.indications
        for key, n in counts.items():
            log.warning("%d event(s) of %s did not reach this process (it did not read them in time)", n, key)
            hub.lost(key, n)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listening = self._rx is not None
            if listening:
                self._remove_entry(self.name)
                self._stop.set()
        if listening:
            self.repository.bump_listeners()
            assert self._thread is not None and self._rx is not None
            if self._thread is not threading.current_thread():
                self._thread.join(5)
            self._rx.close()
        self._tx.close()


def _alive(name: str) -> bool:
    """Whether the process of an entry (``<pid>-…``) is still running (one of another user counts)."""
    try:
        pid = int(name.split("-", 1)[0])
    except ValueError:
        return True  # (not one of ours: left alone)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True

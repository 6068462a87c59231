"""The persistent repository: namespaces, class and qualifier declarations and instances in SQLite, and
the interface (:class:`Storage`) the engine uses for it and for PostgreSQL (engine.pgrepository).

One connection, guarded by a lock, serves every thread of the process. By default a repository file
belongs to one process at a time (SQLite's exclusive locking mode), so a second server on the same file
gets a clear error instead of a silently stale class cache; ``shared=True`` (``openmi serve --workers N``)
lets several processes use the file in WAL mode instead, writers waiting for each other (busy timeout),
and schema changes bump a generation number each process checks per request. Each write is its own
transaction unless it runs inside :meth:`Repository.transaction`; a write has returned only once SQLite
has committed it.
"""

from __future__ import annotations

import logging
import mmap
import os
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..cim.errors import MIError
from ..cim.types import MIResult
from . import recordlock

log = logging.getLogger("openmi.engine")

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS namespaces(ns TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS qualifiers(ns TEXT NOT NULL, name TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY(ns, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS classes(ns TEXT NOT NULL, name TEXT NOT NULL, seq INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY(ns, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instances(ns TEXT NOT NULL, cls TEXT NOT NULL, key TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY(ns, cls, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links(target TEXT NOT NULL, ns TEXT NOT NULL, cls TEXT NOT NULL, key TEXT NOT NULL,
    role TEXT NOT NULL, tns TEXT NOT NULL, tcls TEXT NOT NULL, tkey TEXT NOT NULL,
    PRIMARY KEY(target, ns, cls, key, role)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS links_by_association ON links(ns, cls, key);
DROP TABLE IF EXISTS refs;
"""
# links: one row per reference an association instance (ns, cls, key) holds in property ``role``, keyed by
# the normalized path of the instance it points to (``target``, see engine.refindex), with the row that
# path names directly (tns, tcls, tkey). Finding the associations of one instance is one index range, and
# its far ends come in the same statement: never a scan. (``refs`` was its first, shorter form.) The joins
# are CROSS JOINs: SQLite then keeps the written order, driving every lookup from the ``target`` range.

# How many rows an enumeration reads per round; the lock is released between rounds.
PAGE = 512
# How long a writer of a shared file waits for the others before failing (SQLite's busy handler retries).
SHARED_BUSY_TIMEOUT = 30.0
_HINT = struct.Struct("<Q")
_HINT_SIZE = 16  # <file>-writers: the schema count, then the listeners count (see Repository.listeners)


class Storage(Protocol):
    """What the engine needs of a repository; :class:`Repository` (SQLite) and
    :class:`~openmi.engine.pgrepository.PostgresRepository` implement it with the same semantics."""

    path: str
    persistent: bool

    @property
    def lock(self) -> threading.RLock: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def in_transaction(self) -> bool: ...
    def after_commit(self, callback: Callable[[], None]) -> None: ...
    def close(self) -> None: ...
    def meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def claim_meta(self, key: str, value: str) -> str: ...
    def delete_meta(self, key: str) -> None: ...
    def generation(self) -> int | None: ...
    def claim_schema(self) -> int: ...
    def namespaces(self) -> list[str]: ...
    def add_namespace(self, name: str) -> None: ...
    def remove_namespace(self, name: str) -> None: ...
    def classes(self, namespace: str) -> list[str]: ...
    def put_class(self, namespace: str, name: str, data: str, seq: int) -> None: ...
    def max_class_seq(self, namespace: str) -> int: ...
    def remove_class(self, namespace: str, name: str) -> None: ...
    def qualifiers(self, namespace: str) -> list[str]: ...
    def put_qualifier(self, namespace: str, name: str, data: str) -> None: ...
    def get(self, ns: str, cls: str, key: str) -> str | None: ...
    def exists(self, ns: str, cls: str, key: str) -> bool: ...
    def insert(self, ns: str, cls: str, key: str, data: str) -> bool: ...
    def update(self, ns: str, cls: str, key: str, data: str) -> bool: ...
    def delete_returning(self, ns: str, cls: str, key: str) -> str | None: ...
    def delete(self, ns: str, cls: str, key: str) -> bool: ...
    def scan(self, ns: str, cls: str, where: str = "", params: tuple[Any, ...] = ()) -> Iterator[tuple[str, str]]: ...
    def scan_key_nocase(self, ns: str, cls: str, folded: str) -> list[tuple[str, str]]: ...
    def count(self, ns: str, cls: str) -> int: ...
    def delete_class_instances(self, ns: str, cls: str) -> None: ...
    def add_refs(self, ns: str, cls: str, key: str, refs: list[tuple[str, str, str, str, str]]) -> None: ...
    def remove_refs(self, ns: str, cls: str, key: str) -> None: ...
    def referencing(self, target: str, ns: str | None = None) -> list[tuple[str, str, str, str, str]]: ...
    def far_ends(self, target: str, ns: str) -> list[tuple[str, str, str, str, str, str, str, str | None]]: ...


def open_repository(path: str, durability: str = "normal", *, shared: bool = False) -> Storage:
    """The repository ``path`` names: a ``postgresql://`` URL, else a SQLite file (or ``:memory:``)."""
    from .pgrepository import PostgresRepository, is_postgres_url

    if is_postgres_url(path):
        return PostgresRepository(path)
    return Repository(path, durability, shared=shared)


class CommitListeners:
    """What runs after a commit, shared by both repositories: each keeps ``_lock`` (held around writes),
    ``_depth`` (open transaction nesting) and ``_on_commit``, and calls :meth:`_committed` at its outer COMMIT
    (clearing ``_on_commit`` on ROLLBACK)."""

    _lock: threading.RLock
    _depth: int
    _on_commit: list[Callable[[], None]]

    def in_transaction(self) -> bool:
        """Whether a transaction is open (read by the thread that holds ``lock``: then it is that thread's)."""
        return self._depth > 0

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current write is committed: now when no transaction is open (each
        write commits on its own), else at the outer COMMIT (never, if it rolls back). Callbacks run with
        the lock held, in commit order; the caller should hold ``lock`` across its write and this call."""
        with self._lock:
            if self._depth == 0:
                callback()
            else:
                self._on_commit.append(callback)

    def _committed(self) -> None:
        callbacks, self._on_commit = self._on_commit, []
        for cb in callbacks:
            try:
                cb()
            except Exception:  # the write is committed whatever a listener does
                log.exception("a commit listener failed")


class Repository(CommitListeners):
    """SQLite storage. Namespace and class names are stored lower-cased as keys."""

    def __init__(self, path: str | os.PathLike[str] = ":memory:", durability: str = "normal", *,
                 shared: bool = False) -> None:
        self.path = str(path)
        self.persistent = self.path != ":memory:"
        self.shared = shared and self.persistent
        self._data_version = -1
        self._generation = 0
        self._claimed: int | None = None
        if durability not in ("normal", "full"):
            raise ValueError("durability is 'normal' (survives a crash of this process) or 'full' (power loss too)")
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._writers: int | None = None  # the descriptor of <file>-writers on a shared file (see _writing)
        # its first 16 octets, mapped: a count of schema changes, bumped under the writers' lock after each
        # commits, so that a request finds "nothing changed" with one read of memory (see generation); then a
        # count of changes to who listens for events (see listeners)
        self._hint: mmap.mmap | None = None
        self._hint_seen = -1
        self._depth = 0
        self._on_commit: list[Callable[[], None]] = []
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                       timeout=SHARED_BUSY_TIMEOUT if self.shared else 1.0)
            db = self._db
            if self.path != ":memory:" and not self.shared:
                db.execute("PRAGMA locking_mode=EXCLUSIVE")
            if self.path != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA synchronous={durability.upper()}")
            db.execute("BEGIN IMMEDIATE")  # processes opening a shared file together create the layout once
            try:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta VALUES('schema', ?)", (SCHEMA_VERSION,))
                elif row[0] != SCHEMA_VERSION:
                    raise MIError(MIResult.FAILED, f"repository {self.path} has layout {row[0]}, this openmi reads "
                                  f"{SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise MIError(MIResult.FAILED, f"cannot open the repository {self.path}: {exc}"
                          + (" (another process is using it)" if "locked" in str(exc) else "")) from None
        except sqlite3.DatabaseError as exc:
            raise MIError(MIResult.FAILED, f"{self.path} is not an openmi repository: {exc}") from None
        if self.shared and hasattr(os, "fork"):  # (processes that share a file are forked workers: POSIX)
            try:
                self._writers = os.open(self.path + "-writers", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                if os.fstat(self._writers).st_size < _HINT_SIZE:
                    os.ftruncate(self._writers, _HINT_SIZE)
                self._hint = mmap.mmap(self._writers, _HINT_SIZE)
            except OSError as exc:  # (another user's file: SQLite's own waiting orders the writers then)
                log.warning("cannot open %s-writers (%s): writers of %s wait as SQLite makes them", self.path,
                            exc.strerror, self.path)
                if self._writers is not None:
                    os.close(self._writers)
                    self._writers = None

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._writing():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (key, value))

    def claim_meta(self, key: str, value: str) -> str:
        """The value of ``key``: ``value`` if nobody set one before (then it is stored), else the first one."""
        with self._writing():
            self._db.execute("INSERT OR IGNORE INTO meta VALUES(?, ?)", (key, value))
            return str(self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()[0])

    def delete_meta(self, key: str) -> None:
        with self._writing():
            self._db.execute("DELETE FROM meta WHERE key=?", (key,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
            if self._hint is not None:
                self._hint.close()
                self._hint = None
            if self._writers is not None:
                os.close(self._writers)
                self._writers = None

    def generation(self) -> int | None:
        """The schema generation, when other processes may move it (a shared file), else None: nobody
        but this process changes the schema. Cheap when nothing was committed elsewhere (data_version)."""
        if not self.shared:
            return None
        hint = self._hint
        if hint is not None:  # the processes sharing the file count their schema changes in <file>-writers
            seen = _HINT.unpack_from(hint)[0]
            if seen == self._hint_seen:
                return self._generation
        with self._lock:
            # the count read before the check (a change after it is then seen next time), and published only
            # once the generation it stands for is: a thread that finds it unchanged reads that generation
            count = _HINT.unpack_from(hint)[0] if hint is not None else -1
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._data_version = version
                row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
                self._generation = int(row[0]) if row is not None else 0
            self._hint_seen = count
            return self._generation

    def listeners(self) -> int | None:
        """How many times the processes sharing this file changed who listens for its events (see
        :mod:`openmi.engine.filevents`): one read of memory; None when there is no ``<file>-writers`` (not shared)."""
        hint = self._hint
        return None if hint is None else int(_HINT.unpack_from(hint, 8)[0])

    def bump_listeners(self) -> None:
        """Count a change to who listens (after it is made), under the writers' lock: a write that commits after
        this reads the new count when it asks who listens."""
        with self._shared_write():
            hint = self._hint
            if hint is not None:
                _HINT.pack_into(hint, 8, _HINT.unpack_from(hint, 8)[0] + 1)

    def claim_schema(self) -> int:
        """Inside a transaction that changes the schema: bump the generation (once per transaction) and
        return the one before it. BEGIN IMMEDIATE already keeps other processes' writers out."""
        if self._claimed is None:
            row = self._db.execute(
                "INSERT INTO meta VALUES('generation', '1') ON CONFLICT(key) DO UPDATE "
                "SET value=CAST(CAST(value AS INTEGER) + 1 AS TEXT) RETURNING value").fetchone()
            self._claimed = int(row[0]) - 1
            self._data_version = -1  # this connection's own commits leave data_version as it was: read again
        return self._claimed

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all of them are committed, or none (nested calls join the outer one)."""
        with self._lock:
            if self._depth == 0:
                self._lock_writers()
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                except BaseException:
                    self._unlock_writers()
                    raise
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._on_commit.clear()
                    self._claimed = None
                    try:
                        self._db.execute("ROLLBACK")
                    finally:
                        self._unlock_writers()
                raise
            self._depth -= 1
            if self._depth == 0:
                schema = self._claimed is not None
                self._claimed = None
                try:
                    self._db.execute("COMMIT")
                    if schema and self._hint is not None:  # (still under the writers' lock: one bump at a time)
                        _HINT.pack_into(self._hint, 0, _HINT.unpack_from(self._hint)[0] + 1)
                finally:
                    self._unlock_writers()
                self._committed()

    def _writing(self) -> AbstractContextManager[Any]:
        """Hold the locks for one write: this process's threads one at a time and, on a file other processes
        write too (``openmi serve --workers``), the processes one at a time, unless a transaction holds them
        already. Between processes this is a record lock on ``<file>-writers`` that the kernel hands to the
        next writer the moment it is released (and drops if its holder dies): left to SQLite, a writer that
        finds the file busy sleeps a millisecond or more, and its worker serves nothing meanwhile."""
        return self._lock if self._writers is None else self._shared_write()

    @contextmanager
    def _shared_write(self) -> Iterator[None]:
        with self._lock:
            if self._depth:
                yield
                return
            self._lock_writers()
            try:
                yield
            finally:
                self._unlock_writers()

    def _lock_writers(self) -> None:
        """Take the writers' record lock, waiting in the kernel, which hands it over the moment its holder
        releases it. (Asking again at pauses instead, to be able to give up, measured a quarter less
        throughput with two workers deleting.) A writer of another process that never finishes its write
        holds this one up as long, as SQLite's own write lock would (for SQLite's busy timeout, then it
        failed): openmi's writes are short, and a MOF load holds it only as long as it takes."""
        if self._writers is not None:
            recordlock.lock(self._writers)

    def _unlock_writers(self) -> None:
        if self._writers is not None:
            recordlock.unlock(self._writers)

    @property
    def lock(self) -> threading.RLock:
        """The lock every read and write takes; hold it to keep a write and what follows it in order."""
        return self._lock

    # --- namespaces, classes, qualifiers ----------------------------------------------------
    def namespaces(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM namespaces ORDER BY ns")]

    def add_namespace(self, name: str) -> None:
        with self._writing():
            self._db.execute("INSERT OR IGNORE INTO namespaces VALUES(?, ?)", (name.lower(), name))

    def remove_namespace(self, name: str) -> None:
        ns = name.lower()
        with self.transaction():
            for table in ("links", "instances", "classes", "qualifiers"):
                self._db.execute(f"DELETE FROM {table} WHERE ns=?", (ns,))
            self._db.execute("DELETE FROM namespaces WHERE ns=?", (ns,))

    def classes(self, namespace: str) -> list[str]:
        """Declared classes of a namespace as stored JSON, in the order they were defined."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM classes WHERE ns=? ORDER BY seq", (namespace.lower(),))
            return [r[0] for r in rows]

    def put_class(self, namespace: str, name: str, data: str, seq: int) -> None:
        """Store a class declaration; ``seq`` orders the classes as they were defined."""
        with self._writing():
            self._db.execute("INSERT OR REPLACE INTO classes VALUES(?, ?, ?, ?)",
                             (namespace.lower(), name.lower(), seq, data))

    def max_class_seq(self, namespace: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM classes WHERE ns=?", (namespace.lower(),))
            return int(row.fetchone()[0])

    def remove_class(self, namespace: str, name: str) -> None:
        with self._writing():
            self._db.execute("DELETE FROM classes WHERE ns=? AND name=?", (namespace.lower(), name.lower()))

    def qualifiers(self, namespace: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT data FROM qualifiers WHERE ns=?", (namespace.lower(),))]

    def put_qualifier(self, namespace: str, name: str, data: str) -> None:
        with self._writing():
            self._db.execute("INSERT OR REPLACE INTO qualifiers VALUES(?, ?, ?)",
                             (namespace.lower(), name.lower(), data))

    # --- instances ------------------------------------------------------------------------------
    def get(self, ns: str, cls: str, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM instances WHERE ns=? AND cls=? AND key=?",
                                   (ns, cls, key)).fetchone()
        return None if row is None else str(row[0])

    def exists(self, ns: str, cls: str, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM instances WHERE ns=? AND cls=? AND key=?",
                                    (ns, cls, key)).fetchone() is not None

    def insert(self, ns: str, cls: str, key: str, data: str) -> bool:
        """Add an instance row; False if one with that key exists."""
        with self._writing():
            try:
                self._db.execute("INSERT INTO instances VALUES(?, ?, ?, ?)", (ns, cls, key, data))
            except sqlite3.IntegrityError:
                return False
            return True

    def update(self, ns: str, cls: str, key: str, data: str) -> bool:
        with self._writing():
            cur = self._db.execute("UPDATE instances SET data=? WHERE ns=? AND cls=? AND key=?", (data, ns, cls, key))
            return cur.rowcount == 1

    def delete_returning(self, ns: str, cls: str, key: str) -> str | None:
        """Remove an instance row and return what it held (None if there was no such row)."""
        with self._writing():
            row = self._db.execute("DELETE FROM instances WHERE ns=? AND cls=? AND key=? RETURNING data",
                                   (ns, cls, key)).fetchone()
        return None if row is None else str(row[0])

    def delete(self, ns: str, cls: str, key: str) -> bool:
        """Remove an instance row; True only for the caller that removed it."""
        with self._writing():
            cur = self._db.execute("DELETE FROM instances WHERE ns=? AND cls=? AND key=?", (ns, cls, key))
            return cur.rowcount == 1

    def scan(self, ns: str, cls: str, where: str = "", params: tuple[Any, ...] = ()) -> Iterator[tuple[str, str]]:
        """All (key, data) rows of one class, read a page at a time so memory stays flat. ``where`` is an
        extra SQL condition on the row (the query engine's pre-filter, over ``data``) with its parameters."""
        cond = f" AND {where}" if where else ""
        last = ""
        first = True
        while True:
            with self._lock:
                if first:
                    rows = self._db.execute(
                        f"SELECT key, data FROM instances WHERE ns=? AND cls=?{cond} ORDER BY key LIMIT ?",
                        (ns, cls, *params, PAGE)).fetchall()
                    first = False
                else:
                    rows = self._db.execute(
                        f"SELECT key, data FROM instances WHERE ns=? AND cls=? AND key>?{cond} ORDER BY key LIMIT ?",
                        (ns, cls, last, *params, PAGE)).fetchall()
            yield from rows
            if len(rows) < PAGE:
                return
            last = rows[-1][0]

    def scan_key_nocase(self, ns: str, cls: str, folded: str) -> list[tuple[str, str]]:
        """The rows whose (single, string) key may equal ``folded`` without case (folded one character at a
        time): keys equal to it under SQLite's ASCII case folding, plus keys holding one of the two
        non-ASCII characters that fold to ASCII; for a non-ASCII ``folded``, the keys with non-ASCII
        characters. A superset, read in SQLite without decoding a row; the caller checks each one."""
        with self._lock:
            if folded.isascii():
                return self._db.execute(
                    "SELECT key, data FROM instances WHERE ns=? AND cls=? AND (key=? COLLATE NOCASE "
                    "OR instr(key, '\u017f') OR instr(key, '\u212a'))", (ns, cls, folded)).fetchall()
            return self._db.execute(
                "SELECT key, data FROM instances WHERE ns=? AND cls=? AND key GLOB '*[^ -~]*'",
                (ns, cls)).fetchall()

    def count(self, ns: str, cls: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM instances WHERE ns=? AND cls=?", (ns, cls)).fetchone()[0])

    def delete_class_instances(self, ns: str, cls: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM links WHERE ns=? AND cls=?", (ns, cls))
            self._db.execute("DELETE FROM instances WHERE ns=? AND cls=?", (ns, cls))

    # --- the association index ---------------------------------------------------------------------
    def add_refs(self, ns: str, cls: str, key: str, refs: list[tuple[str, str, str, str, str]]) -> None:
        """Index an association instance by its references: (target, role, tns, tcls, tkey) each."""
        if refs:
            with self._writing():
                self._db.executemany("INSERT OR IGNORE INTO links VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                                     [(target, ns, cls, key, role, tns, tcls, tkey)
                                      for target, role, tns, tcls, tkey in refs])

    def remove_refs(self, ns: str, cls: str, key: str) -> None:
        with self._writing():
            self._db.execute("DELETE FROM links WHERE ns=? AND cls=? AND key=?", (ns, cls, key))

    def referencing(self, target: str, ns: str | None = None) -> list[tuple[str, str, str, str, str]]:
        """(ns, cls, key, role, data) of the stored association instances that reference ``target`` (in
        namespace ``ns``, or any), ordered by association class, key and role."""
        with self._lock:
            if ns is None:
                rows = self._db.execute(
                    "SELECT r.ns, r.cls, r.key, r.role, i.data FROM links r CROSS JOIN instances i "
                    "ON i.ns=r.ns AND i.cls=r.cls AND i.key=r.key WHERE r.target=? "
                    "ORDER BY r.ns, r.cls, r.key, r.role", (target,)).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT r.ns, r.cls, r.key, r.role, i.data FROM links r CROSS JOIN instances i "
                    "ON i.ns=r.ns AND i.cls=r.cls AND i.key=r.key WHERE r.target=? AND r.ns=? "
                    "ORDER BY r.cls, r.key, r.role", (target, ns)).fetchall()
        return rows

    def far_ends(self, target: str, ns: str) -> list[tuple[str, str, str, str, str, str, str, str | None]]:
        """For each stored association instance in ``ns`` that references ``target``, in order of class, key and
        the source's role: (cls, key, source role, other role, other target, its namespace and class, and the
        row that other reference names directly, or None when it names a superclass or nothing stored) — one
        statement."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.cls, r.key, r.role, o.role, o.target, o.tns, o.tcls, f.data FROM links r "
                "CROSS JOIN links o ON o.ns=r.ns AND o.cls=r.cls AND o.key=r.key "
                "LEFT JOIN instances f ON f.ns=o.tns AND f.cls=o.tcls AND f.key=o.tkey "
                "WHERE r.target=? AND r.ns=?", (target, ns)).fetchall()
        if len(rows) > 1:  # sorted here: SQLite's ORDER BY over this join costs more than the query itself
            rows.sort(key=lambda row: (row[0], row[1], row[2]))
        return rows

"""The repository in PostgreSQL: several openmi servers (processes, hosts) share one set of namespaces,
classes and instances.

The same interface and semantics as the SQLite :class:`~openmi.engine.repository.Repository`: a write has
returned once PostgreSQL committed it; :meth:`PostgresRepository.transaction` groups writes all or none
(nested calls join the outer one); a keyed delete is True for exactly one caller however many servers race
for the row (PostgreSQL's row lock decides). Connections come from a pool (psycopg 3 + psycopg_pool): reads
and single writes take any free connection, so readers of one process run in parallel; a transaction
keeps one connection for its thread until it ends. The layout is created on first use and versioned in
``openmi_migrations`` (one row per applied step, applied under an advisory lock so that servers starting
together do not race). Schema changes (namespaces, classes, qualifier declarations) bump a generation
number that each server compares per request, so a class defined through one server is seen by all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..cim.errors import MIError
from ..cim.types import MIResult
from . import repository as _sqlite

log = logging.getLogger("openmi.engine")

# Each step runs once per database, in order; a database at a later step than this openmi knows is refused.
_MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta(key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE namespaces(ns TEXT COLLATE "C" PRIMARY KEY, name TEXT COLLATE "C" NOT NULL);
    CREATE TABLE qualifiers(ns TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY(ns, name));
    CREATE TABLE classes(ns TEXT COLLATE "C" NOT NULL, name TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
        data TEXT NOT NULL, PRIMARY KEY(ns, name));
    CREATE TABLE instances(ns TEXT COLLATE "C" NOT NULL, cls TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL, data TEXT NOT NULL, PRIMARY KEY(ns, cls, key));
    CREATE TABLE links(target TEXT COLLATE "C" NOT NULL, ns TEXT COLLATE "C" NOT NULL, cls TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL, role TEXT COLLATE "C" NOT NULL, tns TEXT COLLATE "C" NOT NULL,
        tcls TEXT COLLATE "C" NOT NULL, tkey TEXT COLLATE "C" NOT NULL, PRIMARY KEY(target, ns, cls, key, role));
    CREATE INDEX links_by_association ON links(ns, cls, key);
    INSERT INTO meta VALUES('generation', '0');
    """,
    # the events too large for a notification: the notification names the row (engine.pgevents)
    """
    CREATE TABLE openmi_event_payloads(id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL DEFAULT now(),
        payload TEXT NOT NULL);
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)
_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"
_MIGRATION_LOCK = 0x6F70656E6D69  # pg_advisory_xact_lock key: "openmi"


def is_postgres_url(path: str) -> bool:
    return path.startswith(("postgresql://", "postgres://"))


class PostgresRepository(_sqlite.CommitListeners):
    """PostgreSQL storage behind the repository interface. Namespace and class names are stored lower-cased."""

    persistent = True

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise MIError(MIResult.FAILED, f"a PostgreSQL repository needs psycopg 3 and psycopg_pool: {exc}") from None
        self._psycopg = psycopg
        self.path = url
        self._lock = threading.RLock()
        self._depth = 0
        self._tx: Any = None  # the connection of the open transaction (its thread holds the lock)
        self._claimed: int | None = None
        self._on_commit: list[Callable[[], None]] = []
        try:  # one connection first: a wrong URL or a server that is down fails now, with PostgreSQL's words
            psycopg.connect(url, connect_timeout=10).close()
            self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, kwargs={"autocommit": True},
                                        name="openmi-pg", open=False)
            self._pool.open(wait=True, timeout=10.0)
        except Exception as exc:
            raise MIError(MIResult.FAILED, f"cannot open the repository {_safe(url)}: {_first_line(exc)}") from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def _migrate(self) -> None:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS openmi_migrations(version INTEGER PRIMARY KEY, "
                         "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM openmi_migrations").fetchone()
            have = int(row[0]) if row else 0
            if have > SCHEMA_VERSION:
                raise MIError(MIResult.FAILED, f"repository {_safe(self.path)} has layout {have}, this openmi reads "
                              f"up to {SCHEMA_VERSION}")
            for version in range(have + 1, SCHEMA_VERSION + 1):
                conn.execute(_MIGRATIONS[version - 1])
                conn.execute("INSERT INTO openmi_migrations(version) VALUES(%s)", (version,))
                log.info("repository %s: applied layout step %d", _safe(self.path), version)

    # --- connections ----------------------------------------------------------------------------
    @contextmanager
    def _conn(self) -> Iterator[Any]:
        """The open transaction's connection for its own thread, else a pooled one (autocommit)."""
        tx = self._tx
        if tx is not None and self._depth and self._lock._is_owned():  # type: ignore[attr-defined]
            yield tx
            return
        with self._pool.connection() as conn:
            yield conn

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        with self._conn() as conn:
            try:
                return conn.execute(sql, params)
            except self._psycopg.DataError as exc:  # text with NUL, say: the caller's value, named
                raise _refused(exc) from None

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with self._conn() as conn:
            try:
                rows: list[Any] = conn.execute(sql, params).fetchall()
                return rows
            except self._psycopg.DataError as exc:  # text with NUL, say: the caller's value, named
                raise _refused(exc) from None

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    # --- lifetime, meta, transactions -------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key=%s", (key,))
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._exec("INSERT INTO meta VALUES(%s, %s) ON CONFLICT(key) DO UPDATE SET value=EXCLUDED.value", (key, value))

    def claim_meta(self, key: str, value: str) -> str:
        """The value of ``key``: ``value`` if no server set one before (then it is stored), else the first one
        (servers racing to set it all read the one that won)."""
        self._exec("INSERT INTO meta VALUES(%s, %s) ON CONFLICT(key) DO NOTHING", (key, value))
        return str(self._one("SELECT value FROM meta WHERE key=%s", (key,))[0])

    def delete_meta(self, key: str) -> None:
        self._exec("DELETE FROM meta WHERE key=%s", (key,))

    def close(self) -> None:
        with self._lock:
            self._pool.close()

    @property
    def lock(self) -> threading.RLock:
        """Orders this process's writes and their after-commit callbacks (other servers are ordered by
        PostgreSQL's row locks)."""
        return self._lock

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes: all of them are committed, or none (nested calls join the outer one)."""
        with self._lock:
            if self._depth == 0:
                conn = self._pool.getconn()
                try:
                    conn.execute("BEGIN")
                except BaseException:
                    self._pool.putconn(conn)
                    raise
                self._tx = conn
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._end("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._end("COMMIT")
                self._committed()

    def _end(self, verb: str) -> None:
        conn, self._tx = self._tx, None
        self._claimed = None
        try:
            conn.execute(verb)
        except BaseException:
            self._on_commit.clear()
            if verb == "COMMIT":
                raise MIError(MIResult.FAILED, "the repository could not commit the transaction") from None
            raise
        finally:
            if verb == "ROLLBACK":
                self._on_commit.clear()
            self._pool.putconn(conn)

    # --- the schema generation --------------------------------------------------------------------
    def generation(self) -> int | None:
        """The schema generation other servers may have moved (read per request)."""
        row = self._one("SELECT value FROM meta WHERE key='generation'")
        return int(row[0]) if row else 0

    def claim_schema(self) -> int:
        """Inside a transaction that changes the schema: take the schema row lock (other servers' schema
        changes wait for this transaction) and return the generation before it (once per transaction)."""
        if self._claimed is None:
            row = self._one("UPDATE meta SET value=(value::bigint + 1)::text WHERE key='generation' RETURNING value")
            self._claimed = int(row[0]) - 1
        return self._claimed

    # --- namespaces, classes, qualifiers ----------------------------------------------------
    def namespaces(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT name FROM namespaces ORDER BY ns")]

    def add_namespace(self, name: str) -> None:
        self._exec("INSERT INTO namespaces VALUES(%s, %s) ON CONFLICT DO NOTHING", (name.lower(), name))

    def remove_namespace(self, name: str) -> None:
        ns = name.lower()
        with self.transaction():
            for table in ("links", "instances", "classes", "qualifiers", "namespaces"):
                self._exec(f"DELETE FROM {table} WHERE ns=%s", (ns,))

    def classes(self, namespace: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT data FROM classes WHERE ns=%s ORDER BY seq", (namespace.lower(),))]

    def put_class(self, namespace: str, name: str, data: str, seq: int) -> None:
        self._exec("INSERT INTO classes VALUES(%s, %s, %s, %s) ON CONFLICT(ns, name) DO UPDATE "
                   "SET seq=EXCLUDED.seq, data=EXCLUDED.data", (namespace.lower(), name.lower(), seq, data))

    def max_class_seq(self, namespace: str) -> int:
        return int(self._one("SELECT COALESCE(MAX(seq), 0) FROM classes WHERE ns=%s", (namespace.lower(),))[0])

    def remove_class(self, namespace: str, name: str) -> None:
        self._exec("DELETE FROM classes WHERE ns=%s AND name=%s", (namespace.lower(), name.lower()))

    def qualifiers(self, namespace: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT data FROM qualifiers WHERE ns=%s ORDER BY name",
                                         (namespace.lower(),))]

    def put_qualifier(self, namespace: str, name: str, data: str) -> None:
        self._exec("INSERT INTO qualifiers VALUES(%s, %s, %s) ON CONFLICT(ns, name) DO UPDATE SET data=EXCLUDED.data",
                   (namespace.lower(), name.lower(), data))

    # --- instances ------------------------------------------------------------------------------
    def get(self, ns: str, cls: str, key: str) -> str | None:
        row = self._one("SELECT data FROM instances WHERE ns=%s AND cls=%s AND key=%s", (ns, cls, key))
        return None if row is None else str(row[0])

    def exists(self, ns: str, cls: str, key: str) -> bool:
        return self._one("SELECT 1 FROM instances WHERE ns=%s AND cls=%s AND key=%s", (ns, cls, key)) is not None

    def insert(self, ns: str, cls: str, key: str, data: str) -> bool:
        """Add an instance row; False if one with that key exists (the transaction stays usable)."""
        cur = self._exec("INSERT INTO instances VALUES(%s, %s, %s, %s) ON CONFLICT DO NOTHING", (ns, cls, key, data))
        return bool(cur.rowcount == 1)

    def update(self, ns: str, cls: str, key: str, data: str) -> bool:
        cur = self._exec("UPDATE instances SET data=%s WHERE ns=%s AND cls=%s AND key=%s", (data, ns, cls, key))
        return bool(cur.rowcount == 1)

    def delete_returning(self, ns: str, cls: str, key: str) -> str | None:
        row = self._one("DELETE FROM instances WHERE ns=%s AND cls=%s AND key=%s RETURNING data", (ns, cls, key))
        return None if row is None else str(row[0])

    def delete(self, ns: str, cls: str, key: str) -> bool:
        """Remove an instance row; True only for the caller (of any server) that removed it."""
        cur = self._exec("DELETE FROM instances WHERE ns=%s AND cls=%s AND key=%s", (ns, cls, key))
        return bool(cur.rowcount == 1)

    def scan(self, ns: str, cls: str, where: str = "", params: tuple[Any, ...] = ()) -> Iterator[tuple[str, str]]:
        """All (key, data) rows of one class in key order, a page per round trip (memory stays flat).

        ``where`` is the query engine's pre-filter, written in SQLite's SQL (engine.querysql); it is only a
        superset test that the compiled predicate repeats on every row, so here every row of the class is
        read and the predicate alone decides (same results, without the pushdown's saving)."""
        last: str | None = None
        while True:
            page = _sqlite.PAGE
            if last is None:
                rows = self._rows("SELECT key, data FROM instances WHERE ns=%s AND cls=%s ORDER BY key LIMIT %s",
                                  (ns, cls, page))
            else:
                rows = self._rows("SELECT key, data FROM instances WHERE ns=%s AND cls=%s AND key>%s "
                                  "ORDER BY key LIMIT %s", (ns, cls, last, page))
            yield from ((r[0], r[1]) for r in rows)
            if len(rows) < page:
                return
            last = rows[-1][0]

    def scan_key_nocase(self, ns: str, cls: str, folded: str) -> list[tuple[str, str]]:
        """A superset of the rows whose single string key equals ``folded`` without case (see SQLite's): keys
        equal under ASCII folding, and every key with a non-ASCII character (PostgreSQL's lower() follows
        the database's locale, so ASCII folding is spelled out with translate)."""
        rows = self._rows("SELECT key, data FROM instances WHERE ns=%s AND cls=%s AND "
                          "(translate(key, %s, %s)=translate(%s, %s, %s) OR key ~ '[^ -~]') ORDER BY key",
                          (ns, cls, _UPPER, _LOWER, folded, _UPPER, _LOWER))
        return [(r[0], r[1]) for r in rows]

    def count(self, ns: str, cls: str) -> int:
        return int(self._one("SELECT COUNT(*) FROM instances WHERE ns=%s AND cls=%s", (ns, cls))[0])

    def delete_class_instances(self, ns: str, cls: str) -> None:
        with self.transaction():
            self._exec("DELETE FROM links WHERE ns=%s AND cls=%s", (ns, cls))
            self._exec("DELETE FROM instances WHERE ns=%s AND cls=%s", (ns, cls))

    # --- the association index ---------------------------------------------------------------------
    def add_refs(self, ns: str, cls: str, key: str, refs: list[tuple[str, str, str, str, str]]) -> None:
        """Index an association instance by its references: (target, role, tns, tcls, tkey) each."""
        if refs:
            with self._conn() as conn, conn.cursor() as cur:
                cur.executemany("INSERT INTO links VALUES(%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                [(target, ns, cls, key, role, tns, tcls, tkey)
                                 for target, role, tns, tcls, tkey in refs])

    def remove_refs(self, ns: str, cls: str, key: str) -> None:
        self._exec("DELETE FROM links WHERE ns=%s AND cls=%s AND key=%s", (ns, cls, key))

    def referencing(self, target: str, ns: str | None = None) -> list[tuple[str, str, str, str, str]]:
        if ns is None:
            rows = self._rows(
                "SELECT r.ns, r.cls, r.key, r.role, i.data FROM links r JOIN instances i "
                "ON i.ns=r.ns AND i.cls=r.cls AND i.key=r.key WHERE r.target=%s "
                "ORDER BY r.ns, r.cls, r.key, r.role", (target,))
        else:
            rows = self._rows(
                "SELECT r.ns, r.cls, r.key, r.role, i.data FROM links r JOIN instances i "
                "ON i.ns=r.ns AND i.cls=r.cls AND i.key=r.key WHERE r.target=%s AND r.ns=%s "
                "ORDER BY r.cls, r.key, r.role", (target, ns))
        return [tuple(r) for r in rows]


    def far_ends(self, target: str, ns: str) -> list[tuple[str, str, str, str, str, str, str, str | None]]:
        """For each stored association instance in ``ns`` referencing ``target``: its class, key, the source's
        role, the other role, target, namespace and class, and the row that reference names (or None)."""
        rows = self._rows(
            "SELECT r.cls, r.key, r.role, o.role, o.target, o.tns, o.tcls, f.data FROM links r "
            "JOIN links o ON o.ns=r.ns AND o.cls=r.cls AND o.key=r.key "
            "LEFT JOIN instances f ON f.ns=o.tns AND f.cls=o.tcls AND f.key=o.tkey "
            "WHERE r.target=%s AND r.ns=%s ORDER BY r.cls, r.key, r.role, o.target, o.role", (target, ns))
        return [tuple(r) for r in rows]

def _refused(exc: BaseException) -> MIError:
    return MIError(MIResult.INVALID_PARAMETER, f"the repository refused a value: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    head, sep, tail = url.partition("://")
    if sep and "@" in tail:
        cred, _, rest = tail.rpartition("@")
        user = cred.split(":", 1)[0]
        return f"{head}://{user}@{rest}"
    return url

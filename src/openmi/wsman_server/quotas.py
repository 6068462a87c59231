"""Per-user bounds the workers of one ``openmi serve --workers N`` count together: open enumeration
contexts and live subscriptions.

Each worker holds its own contexts, but a user's bound is the server's, not each worker's: with N workers
counting apart, a user could hold N times as many. :class:`SharedQuotas` is a fixed table in anonymous
shared memory (made before the workers fork, under a process-shared lock that a dead worker cannot keep,
plock.py): one record per (kind, user, worker slot) with that worker's count, so a worker that dies and is
restarted clears its own records (its contexts died with it) without touching the others'. Users are
stored as keyed 8-octet digests.
"""

from __future__ import annotations

import hashlib
import mmap
import secrets
import struct

from .plock import ProcessLock


class QuotaFull(Exception):
    """The table has no room for one more (kind, user, worker) record (thousands of users at once)."""


class SharedQuotas:
    """Counts per (kind, user) summed over the workers; each worker changes only its own slot's count."""

    _RECORD = struct.Struct("<QHxxI")  # digest of (kind, user), worker slot, count
    _PROBES = 64

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._probes = min(self._PROBES, size)  # (a window never wraps onto itself)
        self._mem = mmap.mmap(-1, size * self._RECORD.size)  # MAP_SHARED | MAP_ANONYMOUS: inherited by fork
        self._lock = ProcessLock()
        self._salt = secrets.token_bytes(16)

    def _digest(self, kind: str, user: str | None) -> int:
        text = f"{kind}\0{'' if user is None else user}"
        d = int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8,
                                           key=self._salt).digest(), "little")
        return d or 1  # 0 marks a record never used

    def claim(self, kind: str, user: str | None, slot: int, limit: int) -> int | None:
        """Count one more for ``user`` in this worker ``slot``, unless the user holds ``limit`` already
        across all workers: then that total (nothing counted). Raises :class:`QuotaFull`."""
        digest = self._digest(kind, user)
        rec, mem = self._RECORD, self._mem
        start = digest % self.size
        with self._lock:
            total, mine, free = 0, None, None
            for i in range(self._probes):
                at = (start + i) % self.size
                d, s, count = rec.unpack_from(mem, at * rec.size)
                if d == digest and count:
                    total += count
                if d == digest and s == slot:
                    mine = (at, count)
                elif free is None and (d == 0 or count == 0):
                    free = at
            if total >= limit:
                return total
            if mine is not None:
                rec.pack_into(mem, mine[0] * rec.size, digest, slot, mine[1] + 1)
            elif free is not None:
                rec.pack_into(mem, free * rec.size, digest, slot, 1)
            else:
                raise QuotaFull("the per-user table is full")
        return None

    def release(self, kind: str, user: str | None, slot: int) -> None:
        """One fewer for ``user`` in this worker ``slot``."""
        digest = self._digest(kind, user)
        rec, mem = self._RECORD, self._mem
        start = digest % self.size
        with self._lock:
            for i in range(self._probes):
                at = (start + i) % self.size
                d, s, count = rec.unpack_from(mem, at * rec.size)
                if d == digest and s == slot and count:
                    rec.pack_into(mem, at * rec.size, digest, slot, count - 1)
                    return

    def reset(self, slot: int) -> None:
        """A worker (re)starting in ``slot``: the counts of the worker it replaces are void."""
        rec, mem = self._RECORD, self._mem
        with self._lock:
            for at in range(self.size):
                d, s, count = rec.unpack_from(mem, at * rec.size)
                if d and s == slot and count:
                    rec.pack_into(mem, at * rec.size, d, s, 0)

    def total(self, kind: str, user: str | None) -> int:
        digest = self._digest(kind, user)
        rec, mem = self._RECORD, self._mem
        start = digest % self.size
        with self._lock:
            return sum(c for i in range(self._probes)
                       for d, _, c in [rec.unpack_from(mem, ((start + i) % self.size) * rec.size)] if d == digest)


class ConnectionShares:
    """How many connections each worker holds, in shared memory (made before the workers fork): each worker
    writes only its own count (one aligned 4-octet store: a reader never sees half of one) and reads the
    others', so a worker holding more than another leaves the next connection to it. The workers share their
    listening sockets, and the first to wake would otherwise take a whole burst of connections."""

    def __init__(self, slots: int = 256) -> None:
        self.slots = slots
        self._mem = mmap.mmap(-1, 4 * slots)  # MAP_SHARED | MAP_ANONYMOUS: inherited by fork

    GONE = 0xFFFFFFFF  # the count of a worker that died and is not back yet: never the fewest

    def set(self, slot: int, count: int) -> None:
        if 0 <= slot < self.slots:  # (a worker past the table takes no part: it accepts as it can)
            struct.pack_into("<I", self._mem, 4 * slot, min(count, self.GONE))

    def get(self, slot: int) -> int:
        return int(struct.unpack_from("<I", self._mem, 4 * slot)[0]) if 0 <= slot < self.slots else 0

    def fewest(self, workers: int) -> int:
        """The fewest connections any of workers 0 … ``workers`` - 1 holds."""
        return int(min(struct.unpack_from(f"<{min(workers, self.slots)}I", self._mem, 0)))

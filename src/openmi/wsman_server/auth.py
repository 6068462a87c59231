"""Server-side authentication and WinRM message encryption, sans I/O: headers and bodies in, decisions out.

One :class:`ServerAuth` per server, one :class:`ConnectionAuth` per TCP connection (NTLM, Negotiate and, if enabled,
CredSSP authenticate the connection, and the security context they leave encrypts its messages; Basic authenticates
each request). The only way to obtain a :class:`~openmi.wsman_server.users.User`
is an :class:`AuthStep` with status 200 from :meth:`ConnectionAuth.authenticate`,
which a missing, empty, malformed or wrong ``Authorization`` header never produces.

How NTLM gets the NT hashes: pyspnego's NTLM acceptor looks credentials up through two module functions of
``spnego._ntlm`` (``_get_credential_file``/``_get_credential``, normally backed by the file named in
``NTLM_USER_FILE``). They are wrapped once per process; the wrappers answer from a :class:`contextvars.ContextVar`
that is set only while one of our connections steps its context, and fall through to pyspnego otherwise. So the NT
hash comes straight from the :class:`UserStore` in memory: no plaintext or hash file is written, no process-wide
environment is changed, each server has its own store, and other pyspnego users in the process are unaffected.
The LM hash handed to pyspnego is a random secret, so an LM-only response (which pyspnego would otherwise check
against a known all-zero hash) can never match. A connection is accepted only if the user our lookup served is
the principal pyspnego authenticated; if a future pyspnego stops calling the hook, NTLM fails closed (and the
handshake tests fail).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import hashlib
import hmac
import math
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import spnego
from spnego import NegotiateOptions

from ..protocol.wsman import encryption
from .plock import ProcessLock, ProcessSemaphore
from .quotas import ConnectionShares, SharedQuotas
from .users import User, UserStore, password_problem

__all__ = ["AuthError", "AuthStep", "ConnectionAuth", "FailureThrottle", "ServerAuth", "SharedAuthState",
           "SharedFailureThrottle", "Throttled", "unauthenticated_identify"]

SCHEMES = ("Negotiate", "NTLM", "Basic")  # the default; "CredSSP" may be added (it delegates the password to us)
_CANONICAL = {s.lower(): s for s in (*SCHEMES, "CredSSP")}
# scheme → pyspnego protocol, options, and the encryption protocol string of its sealed bodies. Only pyspnego's own
# NTLM (inside Negotiate and CredSSP too) can verify against the UserStore; Kerberos would need a keytab and a
# principal mapping, so it is not offered (a GSSAPI Kerberos login is refused: no user was looked up).
_SPNEGO_PROTOCOLS = {"Negotiate": ("negotiate", NegotiateOptions.use_negotiate, encryption.SPNEGO),
                     "NTLM": ("ntlm", NegotiateOptions.use_ntlm, encryption.SPNEGO),
                     "CredSSP": ("credssp", NegotiateOptions.none, encryption.CREDSSP)}

BASIC_CACHE_TTL = 300.0
BASIC_CACHE_SIZE = 4096
_CACHE_KEY = secrets.token_bytes(32)  # per process: cached Basic credentials are never stored in a usable form

# Password hashing is the one thing an unauthenticated client can make expensive (scrypt: ~16 MiB and tens of
# milliseconds per attempt), so it runs in a small pool, and repeated failures back off per client address and
# per user. A success is cached, so a client that has logged in keeps being served during a flood.
HASH_WORKERS = 2  # scrypt computations at once (memory: HASH_WORKERS × 16 MiB)
HASH_WAIT = 5.0  # seconds an attempt waits for a hashing slot before it is answered 503
FREE_FAILURES = 5  # the failure (per address, per user) that starts the backoff
BACKOFF_FIRST = 1.0  # seconds of the first backoff; doubled per further failure …
BACKOFF_MAX = 30.0  # … up to this
FAILURE_MEMORY = 600.0  # seconds after the last failure when an address or user is forgotten
TRACKED_MAX = 10_000  # addresses and users tracked at most (the oldest are forgotten first)


class Throttled(Exception):
    """Too many recent failures, or every hashing slot busy: answer 503 with ``Retry-After``."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _backoff_until(t: FailureThrottle | SharedFailureThrottle, count: int, now: float) -> float:
    """When the backoff of a key with ``count`` failures ends: the ``free``-th failure earns ``first`` seconds,
    each further one doubles it, up to ``longest``."""
    over = count - t.free
    return now + min(t.longest, t.first * 2 ** min(over, 16)) if over >= 0 else now


class FailureThrottle:
    """Failures per key (a client address, a user name) and the backoff they earn; bounded, thread-safe."""

    def __init__(self, free: int = FREE_FAILURES, first: float = BACKOFF_FIRST, longest: float = BACKOFF_MAX,
                 memory: float = FAILURE_MEMORY, size: int = TRACKED_MAX) -> None:
        self.free, self.first, self.longest, self.memory, self.size = free, first, longest, memory, size
        self._failures: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # key → (count, last, until)
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds ``key`` must still wait before its next attempt is looked at (0: go ahead)."""
        now = time.monotonic()
        with self._lock:
            entry = self._failures.get(key)
            if entry is None:
                return 0.0
            if now - entry[1] > self.memory:
                del self._failures[key]
                return 0.0
            return max(0.0, entry[2] - now)

    def failed(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            count, last, _ = self._failures.pop(key, (0, now, now))
            if now - last > self.memory:
                count = 0
            count += 1
            self._failures[key] = (count, now, _backoff_until(self, count, now))
            while len(self._failures) > self.size:
                self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)


class SharedFailureThrottle:
    """A :class:`FailureThrottle` the worker processes of one ``openmi serve --workers N`` share: made before
    they fork, in anonymous shared memory under a process-shared lock (plock.py), so a password flood is throttled the
    same whichever worker each attempt lands on.

    A fixed table of ``size`` records (key digest, failures, last failure, backoff end) with open addressing
    (``_PROBES`` slots per key); a full neighbourhood forgets its oldest record, as the in-process throttle
    forgets its oldest key. Keys are stored as 8-octet keyed digests (no client text in the table).
    """

    _RECORD = struct.Struct("<QIxxxxdd")
    _PROBES = 16

    def __init__(self, free: int = FREE_FAILURES, first: float = BACKOFF_FIRST, longest: float = BACKOFF_MAX,
                 memory: float = FAILURE_MEMORY, size: int = 16_384) -> None:
        import mmap

        self.free, self.first, self.longest, self.memory, self.size = free, first, longest, memory, size
        self._mem = mmap.mmap(-1, size * self._RECORD.size)  # MAP_SHARED | MAP_ANONYMOUS: inherited by fork
        self._lock = ProcessLock()
        self._salt = secrets.token_bytes(16)

    def _digest(self, key: str) -> int:
        d = int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8,
                                           key=self._salt).digest(), "little")
        return d or 1  # 0 marks an empty record

    def _find(self, digest: int, now: float) -> tuple[int, tuple[int, int, float, float] | None]:
        """The record of ``digest`` (its slot and fields), or the slot to take for it (None)."""
        rec, mem = self._RECORD, self._mem
        start = digest % self.size
        victim, victim_last = start, math.inf
        for i in range(self._PROBES):
            slot = (start + i) % self.size
            fields = rec.unpack_from(mem, slot * rec.size)
            if fields[0] == digest:
                return slot, fields
            if fields[0] == 0:
                return slot, None
            last = fields[2] if now - fields[2] <= self.memory else -math.inf  # forgotten ones go first
            if last < victim_last:
                victim, victim_last = slot, last
        return victim, None

    def wait(self, key: str) -> float:
        now = time.monotonic()
        digest = self._digest(key)
        with self._lock:
            _, fields = self._find(digest, now)
        if fields is None or now - fields[2] > self.memory:
            return 0.0
        return max(0.0, fields[3] - now)

    def failed(self, key: str) -> None:
        now = time.monotonic()
        digest = self._digest(key)
        with self._lock:
            slot, fields = self._find(digest, now)
            count = fields[1] if fields is not None and now - fields[2] <= self.memory else 0
            count += 1
            self._RECORD.pack_into(self._mem, slot * self._RECORD.size, digest, count, now,
                                   _backoff_until(self, count, now))

    def succeeded(self, key: str) -> None:
        now = time.monotonic()
        digest = self._digest(key)
        with self._lock:
            slot, fields = self._find(digest, now)
            if fields is not None:
                self._RECORD.pack_into(self._mem, slot * self._RECORD.size, digest, 0, 0.0, 0.0)

    def __len__(self) -> int:
        now = time.monotonic()
        rec = self._RECORD
        with self._lock:
            return sum(1 for i in range(self.size)
                       if (f := rec.unpack_from(self._mem, i * rec.size))[0] and f[1] and now - f[2] <= self.memory)


class SharedCredentialCache:
    """The Basic success cache the workers of one ``openmi serve`` share, so a client that logged in on one
    worker is served by all during a flood (no scrypt, no hashing slot). A fixed table in shared memory:
    the cache key (an HMAC of name and password under the key the workers inherit), the expiry, and a
    digest of the user's stored password hash at the time (a changed password voids the entry)."""

    _RECORD = struct.Struct("<16sd16s")
    _PROBES = 8

    def __init__(self, size: int = BASIC_CACHE_SIZE) -> None:
        import mmap

        self.size = size
        self._mem = mmap.mmap(-1, size * self._RECORD.size)
        self._lock = ProcessLock()

    def _slots(self, key: bytes) -> Iterator[int]:
        start = int.from_bytes(key[:8], "little") % self.size
        return ((start + i) % self.size for i in range(self._PROBES))

    def get(self, key: bytes, now: float) -> bytes | None:
        """The password-hash digest remembered for ``key``, while it has not expired."""
        k = key[:16]
        rec = self._RECORD
        with self._lock:
            for slot in self._slots(key):
                got, expiry, digest = rec.unpack_from(self._mem, slot * rec.size)
                if got == k:
                    return digest if expiry > now else None
        return None

    def put(self, key: bytes, expiry: float, digest: bytes, now: float) -> None:
        k = key[:16]
        rec = self._RECORD
        with self._lock:
            victim, oldest = None, math.inf
            for slot in self._slots(key):
                got, exp, _ = rec.unpack_from(self._mem, slot * rec.size)
                if got == k or exp <= now:
                    victim = slot
                    break
                if exp < oldest:
                    victim, oldest = slot, exp
            assert victim is not None
            rec.pack_into(self._mem, victim * rec.size, k, expiry, digest[:16])


def _password_digest(stored: str) -> bytes:
    return hashlib.sha256(stored.encode("utf-8")).digest()[:16]


@dataclass(frozen=True)
class SharedAuthState:
    """What the workers of one ``openmi serve`` share about logins: the backoffs per client address and per
    user, the password-hashing slots (HASH_WORKERS at once in all of them) and the Basic success cache; and,
    shared the same way, each user's count of open enumerations and subscriptions. Made before the workers
    fork."""

    throttle: SharedFailureThrottle
    user_throttle: SharedFailureThrottle
    hashing: ProcessSemaphore
    logins: SharedCredentialCache
    quotas: SharedQuotas  # (not a login matter, but shared the same way) the per-user counts of open contexts
    connections: ConnectionShares  # (the same) how many connections each worker holds

    @classmethod
    def create(cls) -> SharedAuthState:

        return cls(SharedFailureThrottle(), SharedFailureThrottle(), ProcessSemaphore(HASH_WORKERS),
                   SharedCredentialCache(), SharedQuotas(), ConnectionShares())


class _Flight:
    """One password check in progress, and its outcome for the attempts with the same credentials."""

    __slots__ = ("done", "throttled", "user")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.user: User | None = None
        self.throttled: Throttled | None = None


class AuthError(Exception):
    """A request body that must not be executed; answer ``status`` and close the connection."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class AuthStep:
    """What to do with one request: proceed as ``user`` (status 200) or answer ``status`` with ``headers``.

    ``headers`` must be sent with whatever response goes out for this request, a 200 included (the last
    Negotiate leg rides on it). ``reason`` is for the log, never for the client.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    reason: str = ""
    user: User | None = None

    def __post_init__(self) -> None:
        if (self.status == 200) != (self.user is not None):
            raise ValueError("an AuthStep carries a user exactly when it lets the request proceed")


def unauthenticated_identify(headers: Mapping[str, str]) -> bool:
    """Whether a request asks for an unauthenticated Identify (``WSMANIDENTIFY: unauthenticated``).

    The HTTP layer may then answer an Identify, and nothing else, without calling :meth:`ConnectionAuth.authenticate`
    (and without ``open_body``/``seal_body``: such a request is never encrypted).
    """
    return headers.get("wsmanidentify", "").strip().lower() == "unauthenticated"


class ServerAuth:
    """Authentication policy and credential cache of one server."""

    def __init__(self, users: UserStore, *, https: bool, allow_unencrypted: bool, realm: str = "openmi",
                 schemes: tuple[str, ...] = SCHEMES, shared: SharedAuthState | None = None) -> None:
        """``shared``: the throttles and hashing slots of all the workers of one ``openmi serve`` (else this
        server's own)."""
        unknown = [s for s in schemes if s.lower() not in _CANONICAL]
        if unknown:
            supported = list(_CANONICAL.values())
            raise ValueError(f"unsupported authentication scheme(s) {unknown}; the server supports {supported}")
        if '"' in realm or "\\" in realm:
            raise ValueError("the realm may not contain quotes or backslashes")
        self.users = users
        self.https = https
        self.allow_unencrypted = allow_unencrypted
        self.realm = realm
        self.schemes = tuple(_CANONICAL[s.lower()] for s in schemes)
        # WinRM's AllowUnencrypted=false: over plain HTTP only schemes that can seal messages are usable.
        self.usable = tuple(s for s in self.schemes if s != "Basic" or https or allow_unencrypted)
        if not self.usable:
            raise ValueError("no usable authentication scheme: Basic over plain HTTP needs allow_unencrypted")
        self._cache: dict[bytes, tuple[float, str, str]] = {}
        self._cache_lock = threading.Lock()
        self._inflight: dict[bytes, _Flight] = {}  # credentials being hashed now → their outcome, when known
        self._hashing: Any
        self.throttle: FailureThrottle | SharedFailureThrottle
        self.user_throttle: FailureThrottle | SharedFailureThrottle
        self._logins = shared.logins if shared is not None else None
        if shared is not None:
            self._hashing, self.throttle, self.user_throttle = shared.hashing, shared.throttle, shared.user_throttle
        else:
            self._hashing = threading.BoundedSemaphore(HASH_WORKERS)
            self.throttle = FailureThrottle()  # per client address
            self.user_throttle = FailureThrottle()  # per user name (any name, hashed: no user enumeration, bounded)
        if any(s in _SPNEGO_PROTOCOLS for s in self.usable):
            _install_ntlm_hook()

    @property
    def encryption_required(self) -> bool:
        """Whether a request body on this server must arrive sealed (plain HTTP without allow_unencrypted)."""
        return not self.https and not self.allow_unencrypted

    def connection(self, peer: str = "") -> ConnectionAuth:
        """The authentication state of a new connection from ``peer`` (``host:port``; the host is throttled)."""
        return ConnectionAuth(self, peer)

    def challenge(self) -> tuple[tuple[str, str], ...]:
        """The ``WWW-Authenticate`` headers of a 401 that starts a handshake."""
        return tuple(("WWW-Authenticate", f'Basic realm="{self.realm}"' if s == "Basic" else s) for s in self.usable)

    def verify_basic(self, name: str, password: str, address: str = "") -> User | None:
        """The user if the password is right; a success is remembered for BASIC_CACHE_TTL seconds.

        The cache key is an HMAC of (name, password) under a per-process random key; an entry is honoured only
        while the user still exists with the same stored password hash. Anything not in the cache is hashed in
        the bounded pool, after the backoff of ``address`` and of the user: raises :class:`Throttled` instead.
        """
        n, p = name.lower().encode("utf-8"), password.encode("utf-8")
        key = hmac.new(_CACHE_KEY, struct.pack(">I", len(n)) + n + p, hashlib.sha256).digest()
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            user = self.users.get(hit[1])
            if user is not None and hmac.compare_digest(user.password, hit[2]):
                return user
        if self._logins is not None:  # a login another worker checked
            remembered = self._logins.get(key, now)
            if remembered is not None:
                user = self.users.get(name)
                if user is not None and hmac.compare_digest(_password_digest(user.password), remembered):
                    return user
        # The same credentials arriving together (a client opening several connections at once) are hashed once:
        # the first attempt leads, the others wait for its outcome.
        with self._cache_lock:
            flight = self._inflight.get(key)
            leading = flight is None
            if flight is None:
                flight = self._inflight[key] = _Flight()
        if not leading:
            if not flight.done.wait(HASH_WAIT + 60.0):
                raise Throttled("another attempt with these credentials is still being checked", 1.0)
            if flight.throttled is not None:
                raise flight.throttled
            return flight.user
        try:
            flight.user = self._verify(name, password, address, key, now)
            return flight.user
        except Throttled as exc:
            flight.throttled = exc
            raise
        finally:
            with self._cache_lock:
                self._inflight.pop(key, None)
            flight.done.set()

    def _verify(self, name: str, password: str, address: str, key: bytes, now: float) -> User | None:
        # Every name is tracked, existing or not (a backoff must not tell which users exist), under a digest:
        # a key is 32 bytes whatever the client sent.
        user_key = hashlib.sha256(name.lower().encode("utf-8")).hexdigest()[:32]
        self._check_backoff(address, user_key, name)
        if not self._hashing.acquire(timeout=HASH_WAIT):
            raise Throttled("every password-hashing slot is busy", 1.0)
        try:
            self._check_backoff(address, user_key, name)  # failures recorded while this attempt waited count too
            user = self.users.verify(name, password)
        finally:
            self._hashing.release()
        if user is None:
            self.throttle.failed(address)
            self.user_throttle.failed(user_key)
            return None
        self.throttle.succeeded(address)
        self.user_throttle.succeeded(user_key)
        with self._cache_lock:
            if len(self._cache) >= BASIC_CACHE_SIZE:
                stale = [k for k, v in self._cache.items() if v[0] <= now]
                for k in stale or list(self._cache)[:BASIC_CACHE_SIZE // 4]:  # oldest first (insertion order)
                    del self._cache[k]
            self._cache[key] = (now + BASIC_CACHE_TTL, user.name, user.password)
        if self._logins is not None:
            self._logins.put(key, now + BASIC_CACHE_TTL, _password_digest(user.password), now)
        return user

    def _check_backoff(self, address: str, user_key: str, name: str) -> None:
        wait = max(self.throttle.wait(address), self.user_throttle.wait(user_key))
        if wait > 0:
            raise Throttled(f"backing off after repeated failures (user {name[:64]!r}, address {address})", wait)

    def _new_context(self, scheme: str) -> spnego.ContextProxy:
        protocol, options, _ = _SPNEGO_PROTOCOLS[scheme]
        return spnego.server(service="HTTP", protocol=protocol, options=options)


class ConnectionAuth:
    """The authentication state of one connection. Not thread-safe: one request at a time, in order."""

    def __init__(self, server: ServerAuth, peer: str = "") -> None:
        self._server = server
        self._address = peer.rpartition(":")[0] if ":" in peer else peer  # host without the port
        self._context: spnego.ContextProxy | None = None
        self._scheme: str | None = None
        self._lookup: _NTLMLookup | None = None
        self._user: User | None = None  # set only by a completed NTLM/Negotiate handshake
        self._basic: tuple[str, User] | None = None  # last verified Basic token on this connection
        self._sealed_request = False
        self._indent = "\t"  # how the last sealed request indented its part headers (see encryption)

    @property
    def scheme(self) -> str | None:
        """The scheme that authenticated this connection (NTLM/Negotiate) or its last request (Basic)."""
        return self._scheme

    def authenticate(self, headers: Mapping[str, str]) -> AuthStep:
        """Check one request's credentials (``headers`` keyed by lower-case name)."""
        value = headers.get("authorization")
        if value is None:
            if self._user is not None:  # NTLM/Negotiate: the connection stays authenticated …
                return self._connection_user()
            self._reset()
            return self._deny("no Authorization header")
        # New credentials replace whatever this connection had (as OMI does), unless they continue a handshake.
        scheme_word, _, token = value.strip().partition(" ")
        scheme = _CANONICAL.get(scheme_word.lower())
        token = token.strip()
        if scheme is None or scheme not in self._server.usable:
            self._reset()
            return self._deny(f"scheme {scheme_word[:20]!r} not accepted" if scheme_word else "empty Authorization")
        if scheme == "Basic":
            return self._authenticate_basic(token)
        return self._authenticate_spnego(scheme, token)

    def open_body(self, content_type: str | None, body: bytes) -> tuple[str | None, bytes]:
        """The request body in plaintext and its content type; call after a 200 from :meth:`authenticate`.

        Raises :class:`AuthError` when a required encryption is missing or the body does not decrypt and verify.
        """
        if encryption.is_encrypted(content_type):
            assert content_type is not None
            if self._context is None or self._user is None:
                self._sealed_request = False
                raise AuthError("encrypted body on a connection without a security context")
            try:
                plain = encryption.decrypt(self._context, content_type, body)
            except Exception as e:  # any failure to unwrap untrusted bytes means: do not execute
                self._reset()  # the sealing state (RC4 stream, sequence numbers) is no longer trustworthy
                raise AuthError(f"encrypted body rejected: {e}") from e
            if plain.protocol != self._sealing_protocol():
                self._reset()
                raise AuthError(f"encryption protocol {plain.protocol} does not match {self._scheme}")
            self._sealed_request = True
            self._indent = plain.indent  # the answer's part headers as the request's (OMI's client needs that)
            return plain.content_type, plain.body
        self._sealed_request = False
        if body and self._server.encryption_required:
            raise AuthError("unencrypted request on plain HTTP; this server requires message encryption")
        return content_type, body

    def seal_body(self, content_type: str, body: bytes) -> tuple[str, bytes]:
        """The response body as sent: sealed when the request was, or when the server requires encryption."""
        if not body or self._context is None or self._user is None:
            return content_type, body
        if not (self._sealed_request or self._server.encryption_required):
            return content_type, body
        return encryption.encrypt(self._context, body, protocol=self._sealing_protocol(), content_type=content_type,
                                  indent=self._indent)

    def _sealing_protocol(self) -> str:
        return _SPNEGO_PROTOCOLS[self._scheme][2] if self._scheme in _SPNEGO_PROTOCOLS else encryption.SPNEGO

    def _connection_user(self) -> AuthStep:
        """… as the user is now: removed, or given a new password, it loses the connection; its rights are
        whatever the users file says at this request (the file is re-read within a second of a change)."""
        assert self._user is not None
        was = self._user
        user = self._server.users.get(was.name)
        if user is None or user.nt_hash != was.nt_hash:
            scheme = self._scheme
            self._reset()
            why = "was removed" if user is None else "has a new password"
            return self._deny(f"{scheme} connection of {was.name}: the user {why}")
        self._user = user
        return AuthStep(200, (), f"{self._scheme} connection", user)

    def _deny(self, reason: str, status: int = 401) -> AuthStep:
        return AuthStep(status, self._server.challenge() if status == 401 else (), reason)

    def _reset(self) -> None:
        self._context = self._scheme = self._lookup = self._user = self._basic = None
        self._sealed_request = False

    def _authenticate_basic(self, token: str) -> AuthStep:
        memo = self._basic
        if memo is not None and hmac.compare_digest(memo[0].encode(), token.encode()):
            user = self._server.users.get(memo[1].name)
            if user is not None and hmac.compare_digest(user.password, memo[1].password):
                return AuthStep(200, (), "Basic (connection)", user)
        self._reset()
        try:
            raw = base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return self._deny("Basic token is not base64", 400)
        if not raw:
            return self._deny("Basic token is empty", 400)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")  # requests encodes Basic credentials in Latin-1
        name, colon, password = text.partition(":")
        if not colon:
            return self._deny("Basic credentials lack a colon", 400)
        if not name or not password:
            return self._deny("Basic credentials with an empty user or password")
        problem = password_problem(password)
        if problem:  # never hashed: see users.password_problem
            self._server.throttle.failed(self._address)
            return self._deny(f"Basic: {problem} ({name[:64]!r})")
        try:
            user = self._server.verify_basic(name, password, self._address)
        except Throttled as exc:
            return AuthStep(503, (("Retry-After", str(max(1, math.ceil(exc.retry_after)))),), f"Basic: {exc}")
        if user is None:
            return self._deny(f"Basic: wrong user name or password for {name[:64]!r}")
        self._scheme, self._basic = "Basic", (token, user)
        return AuthStep(200, (), "Basic", user)

    def _authenticate_spnego(self, scheme: str, token_b64: str) -> AuthStep:
        try:
            token = base64.b64decode(token_b64, validate=True)
        except (binascii.Error, ValueError):
            self._reset()
            return self._deny(f"{scheme} token is not base64", 400)
        if not token:
            self._reset()
            return self._deny(f"{scheme} token is empty")
        if self._context is None or self._scheme != scheme or self._user is not None:
            self._reset()
            self._lookup = _NTLMLookup(self._server.users)
            with _ntlm_store(self._lookup):
                self._context = self._server._new_context(scheme)
            self._scheme = scheme
        context, lookup = self._context, self._lookup
        assert context is not None and lookup is not None
        try:
            with _ntlm_store(lookup):
                out = context.step(token)
        except Exception as e:  # pyspnego's parsers raise many kinds of errors on garbage; all mean "no"
            self._reset()
            return self._deny(f"{scheme} token rejected: {type(e).__name__}: {e}")
        reply = (("WWW-Authenticate", f"{scheme} {base64.b64encode(out).decode()}"),) if out else ()
        if not context.complete:
            if not reply:
                self._reset()
                return self._deny(f"{scheme} handshake stalled")
            return AuthStep(401, reply, f"{scheme} challenge")
        user, principal = lookup.user, context.client_principal
        if user is None or principal is None or principal.rpartition("\\")[2].lower() != user.name.lower():
            self._reset()
            return self._deny(f"{scheme}: authenticated principal {principal!r} is not a user of this server")
        self._user = user
        return AuthStep(200, reply, f"{scheme} ({context.negotiated_protocol})", user)


# -- NTLM credentials from the UserStore (see the module docstring) ---------------------------------------------

_LM_NEVER = secrets.token_bytes(16)
_STORE_MARK = "<openmi user store>"
_current_store: contextvars.ContextVar[_NTLMLookup | None] = contextvars.ContextVar("openmi_ntlm_store", default=None)
_hook_lock = threading.Lock()
_hook_installed = False


class _NTLMLookup:
    """Serves NT hashes to pyspnego for one connection's handshake and remembers whom it served."""

    def __init__(self, users: UserStore) -> None:
        self._users = users
        self.user: User | None = None

    def credential(self, domain: str | None, username: str | None) -> tuple[str | None, str | None, bytes, bytes]:
        user = self._users.get(username) if username else None
        if user is None and username and "@" in username:  # UPN form: local accounts, any realm, like any domain
            user = self._users.get(username.rpartition("@")[0])
        if user is None or not user.nt_hash:
            self.user = None
            # An unknown user costs the same as a wrong password: verification runs and fails on a random hash.
            return domain, username, _LM_NEVER, secrets.token_bytes(16)
        self.user = user
        return domain, user.name, _LM_NEVER, bytes.fromhex(user.nt_hash)


@contextlib.contextmanager
def _ntlm_store(lookup: _NTLMLookup) -> Iterator[None]:
    token = _current_store.set(lookup)
    try:
        yield
    finally:
        _current_store.reset(token)


def _install_ntlm_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        import spnego._ntlm as ntlm_impl

        original_file: Callable[[], str | None] = ntlm_impl._get_credential_file
        original_get: Callable[..., Any] = ntlm_impl._get_credential

        def credential_file() -> str | None:
            return _STORE_MARK if _current_store.get() is not None else original_file()

        def credential(store: str | None, domain: str | None = None, username: str | None = None) -> Any:
            lookup = _current_store.get()
            if lookup is None or store != _STORE_MARK:
                return original_get(store, domain, username)
            return lookup.credential(domain, username)

        setattr(ntlm_impl, "_get_credential_file", credential_file)  # noqa: B010 - patching a private module
        setattr(ntlm_impl, "_get_credential", credential)  # noqa: B010
        _hook_installed = True

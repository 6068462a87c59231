"""The user file: who may log in to ``openmi serve`` and what each may do in which namespace.

Passwords are kept as salted scrypt hashes (Basic). NTLM needs the NT hash (MD4 of the password), which
is as good as the password for NTLM itself, so it is stored only when the user is created with
``ntlm=True`` (the default) and the file is written with mode 0600. Rights are per namespace: ``r``
(read) or ``rw`` (read and write); ``*`` stands for every namespace.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def default_users_path() -> Path:
    env = os.environ.get("OPENMI_USERS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "openmi" / "users.json"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be a password here, or None.

    Control characters are refused (NUL above all: scrypt's HMAC pads its key with NULs, so ``pw`` and
    ``pw\\0`` would verify alike); they cannot be typed at a prompt anyway.
    """
    if not password:
        return "the password is empty"
    m = _CONTROL.search(password)
    if m:
        return f"the password contains a control character (U+{ord(m.group()):04X})"
    return None


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def nt_hash(password: str) -> str:
    """MD4 of the UTF-16LE password, hex (what NTLM verifies against)."""
    from spnego._ntlm_raw.crypto import md4  # type: ignore[attr-defined]  # OpenSSL 3 may lack MD4

    return md4(password.encode("utf-16-le")).hex()


RIGHTS = ("r", "rw")


@dataclass
class User:
    name: str
    password: str  # scrypt hash
    nt_hash: str | None = None
    rights: dict[str, str] = field(default_factory=lambda: {"*": "rw"})

    def can(self, namespace: str, write: bool) -> bool:
        right = self.rights.get(namespace.lower()) or self.rights.get("*")
        if right is None:
            return False
        return right == "rw" if write else right in RIGHTS


class UserStore:
    """The users of one server, read from a JSON file (re-read when the file changes)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_users_path()
        self._users: dict[str, User] = {}
        self._stamp: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) of the file last read
        self._checked: float | None = None
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        now = time.monotonic()
        if self._checked is not None and now - self._checked < 1.0:
            return  # changes to the file are seen within a second; no stat per request
        self._checked = now
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._users, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._stamp == stamp:
            return
        data = json.loads(self.path.read_text("utf-8") or "{}")
        users = {}
        for name, u in data.get("users", {}).items():
            users[name.lower()] = User(name, u["password"], u.get("nt_hash"), dict(u.get("rights", {"*": "rw"})))
        self._users, self._stamp = users, stamp

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"users": {u.name: {"password": u.password, "nt_hash": u.nt_hash, "rights": u.rights}
                          for u in self._users.values()}}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        st = self.path.stat()
        self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        self._checked = time.monotonic()

    def get(self, name: str) -> User | None:
        with self._lock:
            self._load()
            return self._users.get(name.lower())

    def names(self) -> list[str]:
        with self._lock:
            self._load()
            return sorted(u.name for u in self._users.values())

    def users(self) -> list[User]:
        with self._lock:
            self._load()
            return list(self._users.values())

    def add(self, name: str, password: str, *, rights: dict[str, str] | None = None, ntlm: bool = True,
            replace: bool = False) -> User:
        if not name or ":" in name or any(c.isspace() for c in name):
            raise ValueError(f"{name!r} is not a valid user name (no spaces or colons)")
        problem = password_problem(password)
        if problem:
            raise ValueError(problem)
        for ns, right in (rights or {}).items():
            if right not in RIGHTS:
                raise ValueError(f"right {right!r} for {ns} must be 'r' or 'rw'")
        with self._lock:
            self._load()
            if name.lower() in self._users and not replace:
                raise ValueError(f"user {name} exists already")
            user = User(name, hash_password(password), nt_hash(password) if ntlm else None,
                        {k.lower(): v for k, v in (rights or {"*": "rw"}).items()})
            self._users[name.lower()] = user
            self._save()
            return user

    def remove(self, name: str) -> None:
        with self._lock:
            self._load()
            if name.lower() not in self._users:
                raise KeyError(f"no user {name}")
            del self._users[name.lower()]
            self._save()

    def verify(self, name: str, password: str) -> User | None:
        """The user if the password is right, else None (constant work either way).

        A password with control characters is refused without hashing (it can never have been stored).
        """
        if password_problem(password):
            return None
        user = self.get(name)
        if user is None:
            check_password(password, _DUMMY)  # same cost as a real check: no user enumeration by timing
            return None
        return user if check_password(password, user.password) else None


_DUMMY = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

"""``openmi serve`` configuration: a file of ``key = value`` lines (as omiserver.conf), every key also a
command-line flag, and the defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "openmi"


@dataclass
class ServeConfig:
    repository: str | None = None  # None: the user's default repository
    bind: str = "127.0.0.1"
    http_port: int | None = 5985  # None: no HTTP listener
    https_port: int | None = 5986  # None: no HTTPS listener
    users: str | None = None  # None: the user's default users file
    mof: list[str] = field(default_factory=list)
    allow_unencrypted: bool = False
    cert_file: str | None = None  # None: <config dir>/server.crt, created on first use
    key_file: str | None = None
    max_envelope_size: int = 512_000
    max_connections: int = 256
    max_connections_per_address: int = 64  # anonymous (not yet authenticated) connections per client address
    reserved_connections: int = 32  # of max_connections, kept for connections that have authenticated
    request_timeout: float = 30.0  # seconds for a whole request (head and body) from its first byte
    idle_timeout: float = 120.0  # seconds a kept-alive connection may wait for its next request
    enumeration_expiry: float = 600.0
    max_enumerations_per_user: int = 64
    max_subscriptions_per_user: int = 128  # live WS-Eventing subscriptions one user may hold
    subscription_idle_limit: float = 600.0  # seconds a Pull subscription lives with nobody pulling
    subscription_buffer: int = 10_000  # events one subscription holds for a slow subscriber (more: it ends)
    # the answer shapes clients get: "auto" (OMI's plain datetimes and class elements to a client that names no
    # User-Agent, as OMI's own; WinRM's cim:Datetime and XmlFragment to the others), "winrm" or "omi" for all
    client_shapes: str = "auto"
    shutdown_timeout: float = 10.0
    # microseconds the server looks again for a client's next request before its loop sleeps, while requests
    # come close together (saves the wake-up, the most of a small request's cost on one connection); 0: sleep
    busy_poll_us: int = 100
    # hosts on one PostgreSQL repository hand each other the Pulls of the contexts they hold (hosts.py):
    peer_bind: str | None = None  # where this server listens for them (an ephemeral TLS port); None: bind
    peer_address: str | None = None  # how the other hosts reach it; None: peer_bind, or this host's name

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def set(self, key: str, value: Any) -> None:
        """Set a key from text (config file) or a typed value (flag)."""
        name = key.strip().lower().replace("-", "_")
        if name not in self.keys():
            raise ValueError(f"unknown configuration key {name!r} (known: {', '.join(self.keys())})")
        current = getattr(self, name)
        if not isinstance(value, str):
            setattr(self, name, value)
            return
        text = value.strip()
        if name == "mof":
            self.mof.extend(p.strip() for p in text.split(",") if p.strip())
        elif name in ("http_port", "https_port"):
            setattr(self, name, None if text.lower() in ("", "none", "off", "no") else _int(name, text))
        elif name == "client_shapes":
            if text.lower() not in ("auto", "winrm", "omi"):
                raise ValueError(f"client_shapes is auto, winrm or omi, not {text!r}")
            self.client_shapes = text.lower()
        elif isinstance(current, bool):
            low = text.lower()
            if low not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
                raise ValueError(f"{name} must be true or false, not {text!r}")
            setattr(self, name, low in ("true", "yes", "1", "on"))
        elif name in ("max_envelope_size", "max_connections", "max_enumerations_per_user",
                      "max_connections_per_address", "reserved_connections", "max_subscriptions_per_user",
                      "subscription_buffer", "busy_poll_us"):
            number = _int(name, text)
            if name == "subscription_buffer" and number < 1:
                raise ValueError("subscription_buffer must hold at least 1 event")
            if name == "busy_poll_us" and not 0 <= number <= 10_000:
                raise ValueError(f"busy_poll_us is 0 … 10000 microseconds, not {number}")
            setattr(self, name, number)
        elif name in ("enumeration_expiry", "shutdown_timeout", "request_timeout", "idle_timeout",
                      "subscription_idle_limit"):
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"{name} must be a number of seconds, not {text!r}") from None
            if not seconds > 0 or seconds == float("inf"):
                raise ValueError(f"{name} must be a positive number of seconds, not {text!r}")
            setattr(self, name, seconds)
        else:
            setattr(self, name, text or None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ServeConfig:
        cfg = cls()
        p = Path(path)
        try:
            lines = p.read_text("utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"cannot read the configuration {p}: {exc.strerror}") from None
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{p}:{n}: expected 'key = value', found {line!r}")
            try:
                cfg.set(key, value)
            except ValueError as exc:
                raise ValueError(f"{p}:{n}: {exc}") from None
        return cfg


def _int(name: str, text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if v < 0:
        raise ValueError(f"{name} cannot be negative")
    return v

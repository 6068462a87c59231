"""Where the `wmi` idioms run: the embedded server, and `openmi serve` over Basic/HTTPS and NTLM/HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from openmi import mi
from openmi import wmi as wmi_module
from openmi.wsman_server.config import ServeConfig
from openmi.wsman_server.run import WSManServer
from openmi.wsman_server.tls import create_self_signed
from openmi.wsman_server.users import UserStore

from .win32 import win32_engine

PASSWORD = "Secr3t-pw!"


class Target:
    """One way to reach the Win32 classes: ``connect(**kw)`` calls ``wmi.WMI`` as a script would."""

    def __init__(self, name: str, providers: dict[str, Any], connect: Callable[..., Any], host: str | None) -> None:
        self.name = name
        self.providers = providers
        self.connect = connect
        self.host = host


def _serve(tmp: Path) -> tuple[WSManServer, Any, dict[str, Any], Path]:
    engine, providers = win32_engine()
    users = tmp / "users.json"
    store = UserStore(users)
    store.add("alice", PASSWORD)
    store.add("reader", PASSWORD, rights={"root/cimv2": "r", "root/default": "r"})
    cert, key = tmp / "server.crt", tmp / "server.key"
    create_self_signed(cert, key, ["localhost", "127.0.0.1"])
    config = ServeConfig(http_port=0, https_port=0, users=str(users), cert_file=str(cert), key_file=str(key),
                         allow_unencrypted=False, shutdown_timeout=5.0)
    server = WSManServer(config, engine=engine)
    server.start()
    return server, engine, providers, cert


@pytest.fixture(params=["local", "basic-https", "ntlm-http"])
def target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    yield from _target(request.param, tmp_path, monkeypatch)


@pytest.fixture(params=["basic-https", "ntlm-http"])
def remote_target(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    yield from _target(request.param, tmp_path, monkeypatch)


def _target(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    if kind == "local":
        engine, providers = win32_engine()
        mi.set_local_server(engine)
        try:
            yield Target("local", providers, lambda *a, **kw: wmi_module.WMI(*a, **kw), None)
        finally:
            mi.set_local_server(None)
            engine.close()
        return
    server, engine, providers, cert = _serve(tmp_path)
    monkeypatch.setenv("OPENMI_CAFILE", str(cert))
    if kind == "basic-https":
        url = f"https://127.0.0.1:{server.port('https')}/wsman"
        auth = mi.MI_AUTH_TYPE_BASIC
    else:
        url = f"http://127.0.0.1:{server.port('http')}/wsman"
        auth = None  # a user and a password: NTLM with message encryption

    def connect(*args: Any, **kw: Any) -> Any:
        kw.setdefault("computer", url)
        kw.setdefault("user", "EXAMPLE\\alice")
        kw.setdefault("password", PASSWORD)
        if auth is not None:
            kw.setdefault("auth_type", auth)
        return wmi_module.WMI(*args, **kw)

    try:
        yield Target(kind, providers, connect, url)
    finally:
        server.stop()
        engine.close()

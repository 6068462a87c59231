"""Server configuration, enumeration contexts that expire and are bounded, TLS versions."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest

import openmi
from openmi import MIResult
from openmi.engine.context import Context
from openmi.protocol import wsman
from openmi.server.config import ServeConfig
from openmi.server.service import EnumerationStore, _Enumeration

from .conftest import Running


def test_config_file(tmp_path: Path) -> None:
    f = tmp_path / "openmi.conf"
    f.write_text("# comment\nhttp_port = 0\nhttps-port = none\nallow_unencrypted = true\nbind = 127.0.0.1\n"
                 "mof = a.mof, b.mof\nmax_envelope_size = 1024000\n")
    cfg = ServeConfig.load(f)
    assert (cfg.http_port, cfg.https_port, cfg.allow_unencrypted, cfg.mof) == (0, None, True, ["a.mof", "b.mof"])
    assert cfg.max_envelope_size == 1024000
    f.write_text("http_port = many\n")
    with pytest.raises(ValueError, match=r"openmi.conf:1: http_port must be a whole number"):
        ServeConfig.load(f)
    f.write_text("colour = blue\n")
    with pytest.raises(ValueError, match="unknown configuration key 'colour'"):
        ServeConfig.load(f)
    f.write_text("just words\n")
    with pytest.raises(ValueError, match="expected 'key = value'"):
        ServeConfig.load(f)


def _enum(user: str) -> _Enumeration:
    return _Enumeration(f"uuid:{time.monotonic_ns()}", user, iter([]), Context(), wsman.EnumerationMode.OBJECTS, None)


def test_enumeration_contexts_are_bounded_and_expire() -> None:
    store = EnumerationStore(expiry=0.2, per_user=2)
    a, b = _enum("alice"), _enum("alice")
    store.add(a)
    store.add(b)
    with pytest.raises(openmi.MIError) as ei:
        store.add(_enum("alice"))
    assert ei.value.result == MIResult.SERVER_LIMITS_EXCEEDED
    store.add(_enum("bob"))  # the bound is per user
    with pytest.raises(openmi.MIError) as ei:
        store.take(a.id, "bob")  # another user's context is not yours
    assert ei.value.result == MIResult.INVALID_ENUMERATION_CONTEXT
    time.sleep(0.3)
    with pytest.raises(openmi.MIError) as ei:
        store.take(a.id, "alice")
    assert ei.value.result == MIResult.INVALID_ENUMERATION_CONTEXT
    assert len(store) == 0 and a.ctx.cancelled  # expired contexts are closed, their requests cancelled


def test_old_tls_is_refused(served: Running) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    import socket

    with socket.create_connection(("127.0.0.1", served.https_port)) as sock, pytest.raises((ssl.SSLError, OSError)):
        with ctx.wrap_socket(sock) as tls:
            tls.sendall(b"POST /wsman HTTP/1.1\r\n\r\n")
            tls.recv(10)


def test_proxy_is_refused_clearly() -> None:
    o = openmi.DestinationOptions("http", 5985, proxy="http://proxy:3128")
    with openmi.Application() as app, pytest.raises(openmi.MIError) as ei:
        app.new_session("host", "WINRM", o)
    assert ei.value.result == MIResult.NOT_SUPPORTED and "proxy" in ei.value.message

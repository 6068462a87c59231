"""Server configuration, enumeration contexts that expire and are bounded, TLS versions."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import pytest

import openmi
from openmi import MIResult
from openmi.cim.cancel import CancelToken
from openmi.protocol import wsman
from openmi.wsman_server.config import ServeConfig
from openmi.wsman_server.service import EnumerationStore, _Enumeration

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
    return _Enumeration(f"uuid:{time.monotonic_ns()}", user, iter([]), CancelToken(), wsman.EnumerationMode.OBJECTS,
                        None)


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


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on loopback that counts the tunnels it opened."""

    def __init__(self) -> None:
        import socket
        import threading

        self.tunnels: list[bytes] = []
        self.open: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        t = threading.Thread(target=self._accept, name="openmi-test-proxy")
        t.start()
        self.threads.append(t)

    def _accept(self) -> None:
        import socket
        import threading

        while not self.stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            target = head.split(b" ")[1]
            self.tunnels.append(target)
            host, port = target.rsplit(b":", 1)
            upstream = socket.create_connection((host.decode(), int(port)))
            self.open += [client, upstream]
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pipe, args=(a, b), name="openmi-test-pipe")
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pipe(a: object, b: object) -> None:
        import socket

        assert isinstance(a, socket.socket) and isinstance(b, socket.socket)
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        import socket

        self.stop.set()
        self.sock.close()
        for s in self.open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)


def test_sessions_through_an_http_proxy(served: Running) -> None:
    import asyncio

    from .conftest import PASSWORD

    proxy = ConnectProxy()
    try:
        with openmi.Application() as app:
            for transport, port in (("https", served.https_port), ("http", served.http_port)):
                o = openmi.DestinationOptions(transport, port, ca_file=str(served.cert), proxy=f"http://127.0.0.1:{proxy.port}")
                o.add_credentials(openmi.AuthType.BASIC if transport == "https" else openmi.AuthType.NTLM, "alice",
                                  PASSWORD)
                s = app.new_session("127.0.0.1", "WINRM", o)
                assert s.get(openmi.Instance("Sample_Watched", {"Id": 4}))["Id"] in (4, "4")

                async def main(session: openmi.Session = s) -> object:
                    return await session.get_instance(None, openmi.Instance("Sample_Watched", {"Id": 5}))

                assert asyncio.run(main()) is not None
                s.close()
        assert len(proxy.tunnels) >= 4 and all(t.startswith(b"127.0.0.1:") for t in proxy.tunnels)
    finally:
        proxy.close()
    with pytest.raises(openmi.MIError) as ei:
        openmi.Application().new_session("h", "WINRM", openmi.DestinationOptions(proxy="socks5://p:1"))
    assert ei.value.result == MIResult.INVALID_PARAMETER


SERVED_MOF = """class Sample_Served { [Key] uint32 Id; string Name; };
instance of Sample_Served { Id = 1; Name = "%s"; };
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_mof_files_load_at_every_start_and_only_when_the_start_succeeds(tmp_path: Path, workers: int) -> None:
    """``openmi serve --mof-file`` loads its MOF at each start: the second start on the same repository is no
    ALREADY_EXISTS (mofcomp's create-or-update), and a start that fails (here: an HTTPS certificate that does
    not exist) leaves the repository without the MOF."""
    from openmi.wsman_server.run import WSManServer
    from openmi.wsman_server.users import UserStore
    from openmi.wsman_server.workers import Supervisor

    db, mof, users = tmp_path / "repo.db", tmp_path / "served.mof", tmp_path / "users.json"
    UserStore(users).add("alice", "Secr3t-pw!")

    def start(name: str, **extra: object) -> None:
        mof.write_text(SERVED_MOF % name)
        cfg = ServeConfig(repository=str(db), users=str(users), http_port=0, https_port=None,
                          allow_unencrypted=True, mof=[str(mof)])
        for k, v in extra.items():
            setattr(cfg, k, v)
        if workers == 1:
            server = WSManServer(cfg)
            server.stop()  # (never started: closes its sockets and its engine)
            return
        sup = Supervisor(cfg, workers)
        sup.prepare()
        for lst in sup.listeners:
            assert lst.sock is not None
            lst.sock.close()

    def stored() -> list[tuple[int, str]]:
        with openmi.Server(str(db)) as srv, openmi.Application() as app:
            if "Sample_Served" not in srv.classes("root/cimv2"):
                return []
            return [(i["Id"], i["Name"]) for i in app.new_session(server=srv).enumerate("Sample_Served")]

    with pytest.raises(Exception, match="nowhere"):
        start("first", https_port=0, cert_file=str(tmp_path / "nowhere.crt"), key_file=str(tmp_path / "nowhere.key"))
    assert stored() == []  # the failed start loaded nothing
    with socket.socket() as taken:  # a port in use
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(OSError, match="cannot listen"):
            start("first", http_port=taken.getsockname()[1])
    assert stored() == []
    start("one")
    start("one")  # the same MOF again
    start("uno")  # and changed: the instance is updated
    assert stored() == [(1, "uno")]

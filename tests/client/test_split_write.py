"""Both clients against a server that splits its header and body like OMI (issue 10 §3): each Delete is
answered and read whole, over one kept-alive connection, with TCP_QUICKACK re-armed on Linux and without
it. Speed lives in bench/bench_splitwrite.py; this only proves the answers are right."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

import openmi
from openmi import AuthType, DestinationOptions
from openmi.client import wire
from tests.client.split_write_server import SplitWriteServer


@pytest.fixture
def split() -> Iterator[SplitWriteServer]:
    s = SplitWriteServer()
    yield s
    s.close()


def options(port: int) -> DestinationOptions:
    o = DestinationOptions("http", port, uri_style="dmtf", encryption="never")
    o.add_credentials(AuthType.BASIC, "user", "password")
    return o


@pytest.mark.parametrize("quickack", [True, False])
def test_blocking_client_against_split_writes(split: SplitWriteServer, quickack: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "QUICKACK_ENABLED", quickack)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(split.port))
        for i in range(5):
            with s.delete_instance("root/cimv2", openmi.Instance("OMIPeer_Item", {"Name": f"i{i}"})) as op:
                assert op.get_instance().result == openmi.MIResult.OK
        s.close()
    assert split.requests == 5


def test_asyncio_client_against_split_writes(split: SplitWriteServer) -> None:
    async def run() -> None:
        with openmi.Application() as app:
            s = app.new_session("127.0.0.1", "WINRM", options(split.port))
            for i in range(5):
                op = s.delete_instance("root/cimv2", openmi.Instance("OMIPeer_Item", {"Name": f"a{i}"}))
                assert (await op.get_instance_async()).result == openmi.MIResult.OK
                op.close()
            s.close()

    asyncio.run(run())
    assert split.requests == 5


def test_both_connections_set_nodelay(split: SplitWriteServer) -> None:
    ep = wire.Endpoint("127.0.0.1", split.port, "/wsman", None, 10.0, lambda: None, "none")
    conn = wire.Connection(ep)
    status, _, data = conn.exchange(b"<x/>", {"Content-Type": "application/soap+xml;charset=UTF-8"})
    assert status == 200 and b"DeleteResponse" in data
    assert conn.sock is not None and conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    conn.close()

    async def run() -> None:
        aconn = wire.AsyncConnection(ep)
        status, _, data = await aconn.exchange(b"<x/>", {})
        assert status == 200 and b"DeleteResponse" in data
        assert aconn.sock is not None and aconn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        aconn.close()

    asyncio.run(run())

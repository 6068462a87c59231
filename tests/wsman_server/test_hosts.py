"""Two ``openmi serve`` hosts on one real PostgreSQL repository: a Pull, Release or Unsubscribe sent to the
host that does not hold the context is handed to the one that does (TLS, checked against the certificate
it registered, signed with the repository's secret), as a load balancer without affinity needs."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import MIError, MIResult, MIType
from openmi.protocol import wsman
from openmi.protocol.wsman import eventing as ev
from openmi.protocol.wsman import namespaces as wns

from .conftest import Recorder, Running, start
from .test_workers import _post

NS = "root/cimv2"


@pytest.fixture
def hosts(pg_cluster: object, tmp_path: Path) -> Iterator[tuple[Running, Running]]:
    url = str(pg_cluster.schema_url())  # type: ignore[attr-defined]
    with openmi.Server(url) as setup:
        setup.define_class(NS, openmi.Class("Sample_Person", properties=[
            openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Name", MIType.STRING)]))
    running = []
    try:
        for _ in range(2):
            running.append(start(tmp_path, allow_unencrypted=True, engine=openmi.Server(url, shared=True),
                                 recorder=Recorder()))
        with openmi.Application() as app:
            s = app.new_session(server=running[0].engine)
            for i in range(9):
                s.create(openmi.Instance("Sample_Person", {"Id": i, "Name": f"p{i}"}))
        yield running[0], running[1]
    finally:
        for r in running:
            r.server.stop()
            r.engine.close()


def enumerate_on(r: Running) -> str:
    first = _post(r.http_port, wsman.EnumerateRequest(namespace=NS, class_name="Sample_Person", optimize=True,
                                                      max_elements=1))
    assert isinstance(first, wsman.EnumerateResponse) and first.context
    assert first.context.endswith(r.server.service.context_suffix)
    return first.context


def test_pulls_on_either_host_continue_the_enumeration(hosts: tuple[Running, Running]) -> None:
    a, b = hosts
    assert re.search(r"-h[0-9a-f]{12}$", a.server.service.context_suffix)
    assert a.server.service.context_suffix != b.server.service.context_suffix
    context: str | None = enumerate_on(a)
    got = 1
    turn = 0
    while context is not None:
        page = _post((b, a)[turn % 2].http_port, wsman.PullRequest(namespace=NS, class_name="Sample_Person",
                                                                   context=context, max_elements=2))
        assert isinstance(page, wsman.PullResponse)
        got += len(page.items)
        context = None if page.end_of_sequence else page.context
        turn += 1
    assert got == 9

    context = enumerate_on(b)  # released through the other host: gone on both
    _post(a.http_port, wsman.ReleaseRequest(namespace=NS, class_name="Sample_Person", context=context))
    for r in (a, b):
        with pytest.raises(MIError) as info:
            _post(r.http_port, wsman.PullRequest(namespace=NS, class_name="Sample_Person", context=context))
        assert info.value.result == MIResult.INVALID_ENUMERATION_CONTEXT


def test_a_subscription_is_pulled_and_ended_through_the_other_host(hosts: tuple[Running, Running]) -> None:
    a, b = hosts
    sub = _post(a.http_port, ev.SubscribeRequest(
        namespace=NS, class_name="*", delivery_mode=ev.MODE_PULL, heartbeat=0.5,
        filter=wsman.Filter(dialect=wns.DIALECT_WQL,
                            query="SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'")))
    assert isinstance(sub, ev.SubscribeResponse) and sub.context
    with openmi.Application() as app:  # the delete is committed by the other host's engine
        app.new_session(server=b.engine).delete(openmi.Instance("Sample_Person", {"Id": 4}))
    got: list[int] = []
    for _ in range(40):
        page = _post(b.http_port, wsman.PullRequest(namespace=NS, class_name="*", context=sub.context,
                                                    max_elements=5, operation_timeout=1.0))
        assert isinstance(page, wsman.PullResponse)
        got += [int(x["SourceInstance"]["Id"]) for x in page.items]
        if got:
            break
    assert got == [4]
    _post(b.http_port, ev.UnsubscribeRequest(namespace=NS, class_name="*", identifier=sub.context))
    assert len(a.server.service.subscriptions) == 0


def test_a_forged_or_orphaned_request_is_not_served(hosts: tuple[Running, Running]) -> None:
    a, b = hosts
    context = enumerate_on(a)
    peers = a.server._hosts
    assert peers is not None
    record = json.loads(b.engine.repository.meta(f"peer:{peers.id}") or "{}")
    assert record["port"] == peers.port
    # a Release signed with the wrong key: the owner answers nothing and the context lives on
    release = wsman.build_request(wsman.ReleaseRequest(namespace=NS, class_name="Sample_Person", context=context))
    head = json.dumps({"ctype": None, "user": {"name": "alice", "rights": {}}}).encode()
    frame = len(head).to_bytes(4, "big") + head + len(release).to_bytes(4, "big") + release
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", record["port"]), timeout=30) as raw, \
            tls.wrap_socket(raw) as s:
        s.sendall(frame + hmac.new(b"not the secret", frame, hashlib.sha256).digest())
        assert s.recv(16) == b""
    page = _post(b.http_port, wsman.PullRequest(namespace=NS, class_name="Sample_Person", context=context))
    assert isinstance(page, wsman.PullResponse) and page.items
    # the owner stops: its record goes, and the other host answers for the context itself
    a.server.stop()
    assert b.engine.repository.meta(f"peer:{peers.id}") is None
    with pytest.raises(MIError) as info:
        _post(b.http_port, wsman.PullRequest(namespace=NS, class_name="Sample_Person", context=context))
    assert info.value.result == MIResult.INVALID_ENUMERATION_CONTEXT

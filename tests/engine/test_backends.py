"""The engine on both repository backends (SQLite file, real PostgreSQL), one suite: all-or-nothing MOF
loads, the association index, exactly one OK among concurrent deletes through two servers, and class and
namespace changes made through one server seen by another (the schema generation checked per request).
Two servers on one SQLite file share it (``shared=True``, as ``openmi serve --workers`` does)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

import openmi
from openmi import MIError, MIResult, MIType
from openmi.cim.errors import MOFError

from .test_associations import SCHEMA, disk, paths

PERSON = """
class Sample_Person { [Key] uint32 Id; string Name; };
instance of Sample_Person { Id = 1; Name = "one"; };
"""


@pytest.fixture
def two(repository_url: str) -> Iterator[tuple[openmi.Server, openmi.Server]]:
    a = openmi.Server(repository_url, shared=True)
    b = openmi.Server(repository_url, shared=True)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def app() -> Iterator[openmi.Application]:
    a = openmi.Application()
    yield a
    a.close()


def test_a_mof_load_is_all_or_nothing(repository_url: str) -> None:
    with openmi.Server(repository_url) as srv:
        with pytest.raises((MOFError, MIError)):
            srv.compile_mof(PERSON + 'instance of Sample_Person { Id = 2; };\ninstance of Sample_Person { Id = 2; };')
        assert "Sample_Person" not in srv.classes("root/cimv2")
    with openmi.Server(repository_url) as srv:  # nothing of it was stored either
        assert "Sample_Person" not in srv.classes("root/cimv2")
        srv.compile_mof(PERSON)
    with openmi.Server(repository_url) as srv:
        assert [i["Name"] for i in openmi.Application().new_session(server=srv).enumerate("Sample_Person")] == ["one"]


def test_a_mof_compiled_again_updates_its_instances(repository_url: str, app: openmi.Application) -> None:
    """mofcomp's create-or-update: the same MOF compiled again (``openmi serve --mof-file`` at each start) is
    no error, and an instance it changes is updated; one instance declared twice in one MOF is still an error."""
    with openmi.Server(repository_url) as srv:
        srv.compile_mof(PERSON)
        srv.compile_mof(PERSON)
        srv.compile_mof(PERSON.replace('Name = "one"', 'Name = "uno"') + 'instance of Sample_Person { Id = 3; };')
        s = app.new_session(server=srv)
        assert sorted((i["Id"], i["Name"]) for i in s.enumerate("Sample_Person")) == [(1, "uno"), (3, None)]
        with pytest.raises(MOFError, match="declared twice"):
            srv.compile_mof('instance of Sample_Person { Id = 4; };\ninstance of Sample_Person { Id = 4; };')
        assert sorted(i["Id"] for i in s.enumerate("Sample_Person")) == [1, 3]  # (nothing of it stored)


def test_the_association_index(repository_url: str, app: openmi.Application) -> None:
    with openmi.Server(repository_url) as srv:
        srv.compile_mof(SCHEMA)
        s = app.new_session(server=srv)
        assert paths(s.associators(disk("d1"), assoc_class="S_Component")) == [
            "S_Partition.DiskId=d1,Index=0", "S_BigPartition.DiskId=d1,Index=1"]
        s.delete(openmi.Instance("S_Partition", {"DiskId": "d1", "Index": 0}))  # its associations go with it
        assert paths(s.references(disk("d2"), result_class="S_Component")) == []
    with openmi.Server(repository_url) as srv:  # the index is stored, not rebuilt
        s = app.new_session(server=srv)
        assert paths(s.associators(disk("d1"), assoc_class="S_Component")) == ["S_BigPartition.DiskId=d1,Index=1"]


def test_a_class_defined_through_one_server_is_seen_by_the_other(
        two: tuple[openmi.Server, openmi.Server], app: openmi.Application) -> None:
    a, b = two
    sa, sb = app.new_session(server=a), app.new_session(server=b)
    a.compile_mof(PERSON)
    assert [i["Id"] for i in sb.enumerate("Sample_Person")] == [1]  # b's registry caught up per request
    b.create_namespace("root/other")
    assert "root/other" in a.namespaces
    a.define_class("root/other", openmi.Class("O_Thing", properties=[openmi.Property("K", MIType.STRING, key=True)]))
    sb.create(openmi.Instance("O_Thing", {"K": "x"}), namespace="root/other")
    assert [i["K"] for i in sa.enumerate("O_Thing", namespace="root/other")] == ["x"]
    sa.delete(openmi.Instance("O_Thing", {"K": "x"}), namespace="root/other")
    b.delete_class("root/other", "O_Thing")
    with pytest.raises(MIError) as exc:
        sa.enumerate("O_Thing", namespace="root/other")
    assert exc.value.result == MIResult.INVALID_CLASS
    a.delete_namespace("root/other")
    assert "root/other" not in b.namespaces


def test_schema_changes_racing_on_two_servers_lose_nothing(two: tuple[openmi.Server, openmi.Server]) -> None:
    a, b = two
    errors: list[BaseException] = []

    def define(srv: openmi.Server, prefix: str) -> None:
        try:
            for i in range(8):
                srv.define_class("root/cimv2", openmi.Class(f"{prefix}_{i}", properties=[
                    openmi.Property("Id", MIType.UINT32, key=True)]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=define, args=(a, "A")), threading.Thread(target=define, args=(b, "B"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    want = {f"{p}_{i}" for p in "AB" for i in range(8)}
    assert want <= set(a.classes("root/cimv2")) and want <= set(b.classes("root/cimv2"))
    with openmi.Server(a.path, shared=True) as c:  # and all of them are stored
        assert want <= set(c.classes("root/cimv2"))


def test_concurrent_deletes_through_two_servers_give_exactly_one_ok(
        two: tuple[openmi.Server, openmi.Server], app: openmi.Application) -> None:
    a, b = two
    a.compile_mof(PERSON)
    sessions = [app.new_session(server=srv) for srv in (a, b, a, b)]
    for round_ in range(3):
        sessions[0].create(openmi.Instance("Sample_Person", {"Id": 100 + round_}))
        barrier = threading.Barrier(len(sessions))
        results: list[MIResult] = []

        def delete(s: openmi.Session, pid: int = 100 + round_, barrier: threading.Barrier = barrier,
                   results: list[MIResult] = results) -> None:
            barrier.wait(30)
            try:
                s.delete(openmi.Instance("Sample_Person", {"Id": pid}))
                results.append(MIResult.OK)
            except MIError as exc:
                results.append(exc.result)

        threads = [threading.Thread(target=delete, args=(s,)) for s in sessions]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results) == [MIResult.OK] + [MIResult.NOT_FOUND] * 3


def _subscribed_across(a: openmi.Server, sb: openmi.Session) -> openmi.Operation:
    """A subscription through ``sb`` to Sample_Person's lifecycle, live, and known to server ``a`` (the news
    that another server watches travels as a notification)."""
    import time

    op = sb.subscribe("root/cimv2", "WQL", "SELECT * FROM CIM_InstIndication WHERE SourceInstance ISA "
                      "'Sample_Person'", flags=openmi.OperationFlags.REPORT_OPERATION_STARTED)
    assert op.get_indication(timeout=30).result == MIResult.OK
    deadline = time.monotonic() + 30
    while not a.indications.watching("root/cimv2") and time.monotonic() < deadline:
        time.sleep(0.01)
    return op


def test_changes_through_one_server_reach_the_subscribers_of_another(pg_cluster: object) -> None:
    """Two servers on one PostgreSQL (two hosts): a subscription on one hears the creates, modifications and
    deletes committed through the other (LISTEN/NOTIFY), each once, with the rows as they were."""
    import time

    url = str(pg_cluster.schema_url())  # type: ignore[attr-defined]
    with openmi.Server(url) as a, openmi.Server(url) as b, openmi.Application() as app:
        a.compile_mof("class Sample_Person { [Key] uint32 Id; string Name; };")
        sa, sb = app.new_session(server=a), app.new_session(server=b)
        with _subscribed_across(a, sb) as op:
            sa.create(openmi.Instance("Sample_Person", {"Id": 1, "Name": "one"}))
            sa.modify(openmi.Instance("Sample_Person", {"Id": 1, "Name": "uno"}))
            sa.delete(openmi.Instance("Sample_Person", {"Id": 1}))
            got = [op.get_indication(timeout=30).instance for _ in range(3)]
            assert [g.class_name for g in got] == ["CIM_InstCreation", "CIM_InstModification", "CIM_InstDeletion"]
            assert got[0]["SourceInstance"]["Name"] == "one"
            assert got[1]["SourceInstance"]["Name"] == "uno" and got[1]["PreviousInstance"]["Name"] == "one"
            assert got[2]["SourceInstance"]["Id"] == 1
            with pytest.raises(TimeoutError):  # each once: b's own copy is not echoed back, a hears nothing twice
                op.get_indication(timeout=0.5)
        # b's subscriber left, but may come back with a bookmark: a goes on notifying b for b's linger, so
        # b's window misses nothing; the first event after the linger tells b to let go, and a forgets b
        assert a.indications.remote
        b.indications.linger = 0.2
        time.sleep(0.3)
        sa.create(openmi.Instance("Sample_Person", {"Id": 2, "Name": "two"}))
        deadline = time.monotonic() + 30
        while a.indications.remote and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not a.indications.remote


def test_an_event_larger_than_a_notification_reaches_the_other_server(pg_cluster: object) -> None:
    """PostgreSQL carries at most 8,000 octets per notification: a change whose rows are larger (here 20 KB
    of text, created and then deleted) still reaches a subscriber on another server, whole and in order."""
    url = str(pg_cluster.schema_url())  # type: ignore[attr-defined]
    big = "x" * 20_000
    with openmi.Server(url) as a, openmi.Server(url) as b, openmi.Application() as app:
        a.compile_mof("class Sample_Person { [Key] uint32 Id; string Name; };")
        sa, sb = app.new_session(server=a), app.new_session(server=b)
        with _subscribed_across(a, sb) as op:
            sa.create(openmi.Instance("Sample_Person", {"Id": 1, "Name": big}))
            sa.delete(openmi.Instance("Sample_Person", {"Id": 1}))
            got = [op.get_indication(timeout=30).instance for _ in range(2)]
            assert [g.class_name for g in got] == ["CIM_InstCreation", "CIM_InstDeletion"]
            assert got[0]["SourceInstance"]["Name"] == big and got[1]["SourceInstance"]["Name"] == big

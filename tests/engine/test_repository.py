"""engine.repository: the store on its own — transactions (all or none, nested joins outer), keyed
instance rows, class order, namespaces added and removed, paged scans, exactly one winner among concurrent
deletes (threads and processes) — run on SQLite and on a real PostgreSQL (the ``repository_url`` fixture);
and the clear errors for a file that is not a repository, has another layout, or is in use."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIError, MIResult, MIType
from openmi.engine import repository as repository_module
from openmi.engine.pgrepository import is_postgres_url
from openmi.engine.repository import Repository, Storage, open_repository


@pytest.fixture
def repo(repository_url: str) -> Iterator[Storage]:
    r = open_repository(repository_url)
    yield r
    r.close()


def test_transaction_commits_all_writes(repository_url: str) -> None:
    r = open_repository(repository_url)
    with r.transaction():
        assert r.insert("root/a", "c", "1", '{"Id":1}')
        assert r.insert("root/a", "c", "2", '{"Id":2}')
    r.close()
    r = open_repository(repository_url)  # committed: stored for the next opener
    assert [k for k, _ in r.scan("root/a", "c")] == ["1", "2"]
    r.close()


def test_an_exception_rolls_back_every_write_of_the_transaction(repository_url: str) -> None:
    r = open_repository(repository_url)
    r.insert("root/a", "c", "0", "{}")
    with pytest.raises(RuntimeError, match="boom"):
        with r.transaction():
            r.insert("root/a", "c", "1", "{}")
            r.update("root/a", "c", "0", '{"changed":true}')
            r.put_class("root/a", "C", "{}", 1)
            r.add_namespace("root/b")
            raise RuntimeError("boom")
    assert [k for k, _ in r.scan("root/a", "c")] == ["0"]
    assert r.get("root/a", "c", "0") == "{}"
    assert r.classes("root/a") == [] and "root/b" not in r.namespaces()
    # the repository is usable after a rollback: the next transaction commits
    with r.transaction():
        assert not r.insert("root/a", "c", "0", "{}")  # a taken key inside a transaction leaves it usable
        r.insert("root/a", "c", "1", "{}")
    r.close()
    r = open_repository(repository_url)
    assert [k for k, _ in r.scan("root/a", "c")] == ["0", "1"]
    r.close()


def test_nested_transactions_join_the_outer_one(repo: Storage) -> None:
    with pytest.raises(RuntimeError):
        with repo.transaction():
            with repo.transaction():
                repo.insert("root/a", "c", "inner", "{}")
            assert repo.get("root/a", "c", "inner") == "{}"  # visible inside, not yet committed
            raise RuntimeError("outer fails")
    assert repo.get("root/a", "c", "inner") is None  # the inner write went with the outer rollback
    with repo.transaction():
        with pytest.raises(KeyError):
            with repo.transaction():
                repo.insert("root/a", "c", "kept", "{}")
                raise KeyError("inner fails, outer goes on")
        repo.insert("root/a", "c", "after", "{}")
    assert [k for k, _ in repo.scan("root/a", "c")] == ["after", "kept"]


def test_a_transaction_excludes_other_threads_until_it_ends(repo: Storage) -> None:
    inside, release, seen = threading.Event(), threading.Event(), []

    def writer() -> None:
        with repo.transaction():
            repo.insert("root/a", "c", "1", "{}")
            inside.set()
            release.wait(30)
            repo.insert("root/a", "c", "2", "{}")

    t = threading.Thread(target=writer)
    t.start()
    inside.wait(30)

    def reader() -> None:
        seen.append([k for k, _ in repo.scan("root/a", "c")])

    r = threading.Thread(target=reader)
    r.start()
    if is_postgres_url(repo.path):  # MVCC: the reader goes on with what was committed before
        r.join(30)
        assert seen == [[]]
    else:
        r.join(0.2)
        assert r.is_alive() and seen == []  # waiting for the lock: never sees half a transaction
    release.set()
    t.join(30)
    r.join(30)
    assert seen[-1] == [] if is_postgres_url(repo.path) else seen == [["1", "2"]]
    assert [k for k, _ in repo.scan("root/a", "c")] == ["1", "2"]


def test_keyed_rows(repo: Storage) -> None:
    assert repo.insert("root/a", "c", "7", "seven")
    assert not repo.insert("root/a", "c", "7", "again")  # the key is taken
    assert repo.get("root/a", "c", "7") == "seven"
    # namespace, class and key together address a row
    assert repo.insert("root/b", "c", "7", "other namespace")
    assert repo.insert("root/a", "d", "7", "other class")
    assert repo.get("root/b", "c", "7") == "other namespace" and repo.get("root/a", "d", "7") == "other class"
    assert repo.get("root/a", "c", "8") is None
    assert repo.update("root/a", "c", "7", "changed") and repo.get("root/a", "c", "7") == "changed"
    assert not repo.update("root/a", "c", "8", "nothing to change")
    assert repo.get("root/a", "c", "8") is None  # update never inserts
    assert repo.delete("root/a", "c", "7")
    assert not repo.delete("root/a", "c", "7")  # only the caller that removed it gets True
    assert repo.get("root/a", "c", "7") is None and repo.get("root/b", "c", "7") == "other namespace"


def test_concurrent_deletes_of_one_row_have_exactly_one_winner(repo: Storage) -> None:
    for round_ in range(5):
        key = f"k{round_}"
        assert repo.insert("root/a", "c", key, "{}")
        barrier = threading.Barrier(6)
        results: list[bool] = []

        def delete(key: str = key, barrier: threading.Barrier = barrier, results: list[bool] = results) -> None:
            barrier.wait(30)
            results.append(repo.delete("root/a", "c", key))

        threads = [threading.Thread(target=delete) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results) == [False] * 5 + [True]


def _delete_in_another_process(url: str, key: str, start: Any, out: Any) -> None:
    r = open_repository(url, shared=True)
    try:
        start.wait(60)
        out.put((os.getpid(), r.delete("root/a", "c", key)))
    finally:
        r.close()


def test_concurrent_deletes_across_processes_have_exactly_one_winner(repository_url: str) -> None:
    """Each process its own repository object (its own connections), as --workers or many hosts have."""
    owner = open_repository(repository_url, shared=True)
    ctx = multiprocessing.get_context("fork")  # the children never touch the connections they inherit
    try:
        for round_ in range(2):
            key = f"p{round_}"
            assert owner.insert("root/a", "c", key, "{}")
            start, out = ctx.Event(), ctx.Queue()
            procs = [ctx.Process(target=_delete_in_another_process, args=(repository_url, key, start, out))
                     for _ in range(3)]
            for p in procs:
                p.start()
            start.set()
            results = [out.get(timeout=120)[1] for _ in procs]
            for p in procs:
                p.join(60)
                assert p.exitcode == 0
            assert sorted(results) == [False, False, True]
            assert owner.get("root/a", "c", key) is None
    finally:
        owner.close()


def test_count_and_class_wide_delete(repo: Storage) -> None:
    for k in "abc":
        repo.insert("root/a", "c", k, "{}")
    repo.insert("root/a", "d", "a", "{}")
    assert repo.count("root/a", "c") == 3 and repo.count("root/a", "nothing") == 0
    repo.delete_class_instances("root/a", "c")
    assert repo.count("root/a", "c") == 0 and repo.count("root/a", "d") == 1


def test_scan_reads_pages_in_key_order(repo: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository_module, "PAGE", 3)
    keys = [f"{i:02d}" for i in range(10)] + ["B", "a", "\u00e9"]  # byte order on both backends
    for k in reversed(keys):
        repo.insert("root/a", "c", k, f'"{k}"')
    repo.insert("root/a", "other", "00", "{}")
    assert list(repo.scan("root/a", "c")) == [(k, f'"{k}"') for k in keys]
    # exactly a page: the scan ends after an empty round
    monkeypatch.setattr(repository_module, "PAGE", 5)
    assert [k for k, _ in repo.scan("root/a", "c")] == keys
    assert list(repo.scan("root/a", "none")) == []


def test_scan_lets_writers_in_between_pages(repo: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repository_module, "PAGE", 2)
    for k in "abcd":
        repo.insert("root/a", "c", k, "{}")
    it = repo.scan("root/a", "c")
    assert [next(it)[0], next(it)[0]] == ["a", "b"]
    done = threading.Event()

    def write() -> None:  # would block forever if the scan held the lock between pages
        repo.insert("root/a", "c", "e", "{}")
        done.set()

    t = threading.Thread(target=write)
    t.start()
    assert done.wait(30)
    t.join()
    assert [k for k, _ in it] == ["c", "d", "e"]  # later pages continue after the last key read


def test_classes_keep_their_definition_order(repo: Storage) -> None:
    repo.put_class("root/A", "Zeta", '"z"', 1)
    repo.put_class("root/a", "alpha", '"a"', 2)
    repo.put_class("ROOT/A", "Mid", '"m"', 3)
    assert repo.classes("root/a") == ['"z"', '"a"', '"m"']  # by seq, names and namespaces caseless
    assert repo.max_class_seq("root/a") == 3 and repo.max_class_seq("root/empty") == 0
    repo.put_class("root/a", "ZETA", '"z2"', 4)  # redefined: replaced, and ordered by its new seq
    assert repo.classes("root/a") == ['"a"', '"m"', '"z2"']
    repo.remove_class("root/a", "MID")
    assert repo.classes("root/a") == ['"a"', '"z2"']


def test_qualifier_declarations(repo: Storage) -> None:
    repo.put_qualifier("root/a", "Key", "1")
    repo.put_qualifier("root/a", "KEY", "2")  # same name, caseless: replaced
    repo.put_qualifier("root/b", "Key", "3")
    assert repo.qualifiers("root/a") == ["2"] and repo.qualifiers("ROOT/B") == ["3"]


def test_namespaces_added_and_removed(repo: Storage) -> None:
    repo.add_namespace("root/Zed")
    repo.add_namespace("root/alpha")
    repo.add_namespace("ROOT/ZED")  # already there: the first spelling stays
    assert repo.namespaces() == ["root/alpha", "root/Zed"]
    for ns in ("root/zed", "root/alpha"):
        repo.put_class(ns, "C", "{}", 1)
        repo.put_qualifier(ns, "Q", "{}")
        repo.insert(ns, "c", "1", "{}")
    repo.remove_namespace("root/ZED")
    assert repo.namespaces() == ["root/alpha"]
    assert repo.classes("root/zed") == [] and repo.qualifiers("root/zed") == []
    assert repo.count("root/zed", "c") == 0
    # the other namespace keeps everything
    assert repo.classes("root/alpha") == ["{}"] and repo.count("root/alpha", "c") == 1


def test_a_string_key_without_case_finds_its_rows(repo: Storage) -> None:
    for k in ("Alpha", "ALPHA", "beta", "\u00c9t\u00e9"):
        repo.insert("root/a", "c", k, f'"{k}"')
    keys = {k for k, _ in repo.scan_key_nocase("root/a", "c", "alpha")}
    assert {"Alpha", "ALPHA"} <= keys and "beta" not in keys  # a superset: non-ASCII keys may come along


def test_the_association_index(repo: Storage) -> None:
    repo.insert("root/a", "assoc", "1", '"one"')
    repo.insert("root/a", "assoc", "2", '"two"')
    repo.insert("root/a", "c", "x", '"x"')
    repo.add_refs("root/a", "assoc", "1", [("t:x", "Left", "root/a", "c", "x"), ("t:y", "Right", "root/a", "c", "y")])
    repo.add_refs("root/a", "assoc", "2", [("t:x", "Right", "root/a", "c", "x")] * 2)  # indexed once
    assert repo.referencing("t:x") == [("root/a", "assoc", "1", "Left", '"one"'),
                                       ("root/a", "assoc", "2", "Right", '"two"')]
    assert repo.referencing("t:x", "root/b") == []
    # the far ends of t:x's associations come with them: assoc 1's Right names a row that is not stored
    assert repo.far_ends("t:x", "root/a") == [("assoc", "1", "Left", "Left", "t:x", "root/a", "c", '"x"'),
                                              ("assoc", "1", "Left", "Right", "t:y", "root/a", "c", None),
                                              ("assoc", "2", "Right", "Right", "t:x", "root/a", "c", '"x"')]
    assert repo.exists("root/a", "c", "x") and not repo.exists("root/a", "c", "y")
    repo.remove_refs("root/a", "assoc", "1")
    assert [r[2] for r in repo.referencing("t:x", "root/a")] == ["2"]
    assert repo.referencing("t:y") == []


def test_after_commit_callbacks_run_in_commit_order(repo: Storage) -> None:
    order: list[str] = []
    with repo.lock:
        repo.insert("root/a", "c", "1", "{}")
        repo.after_commit(lambda: order.append("alone"))  # no transaction: at once
    with repo.transaction():
        repo.insert("root/a", "c", "2", "{}")
        repo.after_commit(lambda: order.append("first"))
        with repo.transaction():
            repo.after_commit(lambda: order.append("second"))
        assert order == ["alone"]  # not before the outer COMMIT
    with pytest.raises(RuntimeError), repo.transaction():
        repo.after_commit(lambda: order.append("rolled back"))
        raise RuntimeError
    assert order == ["alone", "first", "second"]


def test_the_schema_generation_moves_once_per_schema_transaction(repository_url: str) -> None:
    a, b = open_repository(repository_url, shared=True), open_repository(repository_url, shared=True)
    try:
        start = a.generation()
        assert start is not None and b.generation() == start
        with a.transaction():
            assert a.claim_schema() == start and a.claim_schema() == start  # once per transaction
        assert a.generation() == b.generation() == start + 1
        with pytest.raises(RuntimeError), b.transaction():
            b.claim_schema()
            raise RuntimeError
        assert a.generation() == start + 1  # rolled back with its transaction
    finally:
        a.close()
        b.close()


def test_memory_repository(tmp_path: Path) -> None:
    r = Repository()
    assert not r.persistent and r.path == ":memory:"
    r.insert("root/a", "c", "1", "{}")
    assert r.count("root/a", "c") == 1
    r.close()


def test_bad_durability_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        Repository(tmp_path / "x.db", durability="sometimes")


def test_a_second_opener_of_the_file_gets_a_clear_error(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repo.db")
    with pytest.raises(MIError) as exc:
        Repository(repo.path)
    repo.close()
    assert exc.value.result == MIResult.FAILED
    assert "another process is using it" in exc.value.message and repo.path in exc.value.message


def test_a_file_that_is_not_a_repository(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(MIError) as exc:
        Repository(junk)
    assert exc.value.result == MIResult.FAILED and "is not an openmi repository" in exc.value.message


def test_a_repository_of_another_layout(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    Repository(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema'")
    db.commit()
    db.close()
    with pytest.raises(MIError) as exc:
        Repository(path)
    assert "has layout 99" in exc.value.message and repository_module.SCHEMA_VERSION in exc.value.message


def test_a_failed_class_batch_leaves_no_rows_and_no_classes(tmp_path: Path) -> None:
    """Server.define_classes over the repository: one transaction, the registry restored with it."""
    path = tmp_path / "repo.db"
    with openmi.Server(path) as srv:
        srv.define_class("root/cimv2", openmi.Class("Sample_Base", properties=[
            openmi.Property("Id", MIType.UINT32, key=True)]))
        with pytest.raises(MIError) as exc:
            srv.define_classes("root/cimv2", [
                openmi.Class("Sample_Good", "Sample_Base"),
                openmi.Class("Sample_Orphan", "No_Such_Parent")])
        assert exc.value.result == MIResult.INVALID_SUPERCLASS
        assert "Sample_Good" not in srv.classes("root/cimv2")
    with openmi.Server(path) as srv:  # nothing of the batch reached the file
        names = srv.classes("root/cimv2")
        assert "Sample_Base" in names and "Sample_Good" not in names


def test_postgresql_layout_is_created_once_and_versioned(pg_cluster: Any) -> None:
    import psycopg

    from openmi.engine import pgrepository

    url = pg_cluster.schema_url()
    open_repository(url).close()
    open_repository(url).close()  # the second opener applies nothing again
    steps = [(v,) for v in range(1, pgrepository.SCHEMA_VERSION + 1)]
    with psycopg.connect(url) as conn:  # each step once
        assert conn.execute("SELECT version FROM openmi_migrations ORDER BY version").fetchall() == steps
        # a database of an earlier layout gets the later steps on its next opening
        conn.execute("DROP TABLE openmi_event_payloads")
        conn.execute("DELETE FROM openmi_migrations WHERE version = 2")
    open_repository(url).close()
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM openmi_migrations ORDER BY version").fetchall() == steps
        assert conn.execute("SELECT count(*) FROM openmi_event_payloads").fetchone() == (0,)
        conn.execute("INSERT INTO openmi_migrations(version) VALUES(99)")
    with pytest.raises(MIError) as exc:
        open_repository(url)
    assert "has layout 99" in exc.value.message and "openmi@" in exc.value.message


def test_postgresql_refuses_a_nul_in_a_key_with_a_clear_error(pg_cluster: Any) -> None:
    r = open_repository(pg_cluster.schema_url())
    try:
        with pytest.raises(MIError) as exc:
            r.insert("root/a", "c", "a\x00b", "{}")
        assert exc.value.result == MIResult.INVALID_PARAMETER and "refused" in exc.value.message
        assert r.insert("root/a", "c", "ab", "{}")  # the pool's connection is still good
    finally:
        r.close()


def test_an_unreachable_postgresql_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MIError) as exc:
        open_repository(f"postgresql://nobody:secret@127.0.0.1:{port}/db?connect_timeout=2")
    assert exc.value.result == MIResult.FAILED and "cannot open the repository" in exc.value.message
    assert "secret" not in exc.value.message


def _hold_writers(path: str, locked: Any, release: Any) -> None:
    import fcntl

    fd = os.open(path + "-writers", os.O_RDWR)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    locked.set()
    release.wait(60)
    fcntl.lockf(fd, fcntl.LOCK_UN)
    os.close(fd)


def test_writers_of_a_shared_file_take_turns_on_its_writers_lock(tmp_path: Path) -> None:
    """On a file several processes write (``openmi serve --workers``) each write first takes the record lock on
    ``<file>-writers``: a write waits while another process holds it (the kernel hands it over on release,
    where SQLite would make the writer sleep), and goes through once it is released."""
    path = str(tmp_path / "shared.db")
    repo = Repository(path, shared=True)
    try:
        repo.add_namespace("root/cimv2")
        repo.insert("root/cimv2", "c", "k1", "{}")
        ctx = multiprocessing.get_context("fork")
        locked, release = ctx.Event(), ctx.Event()
        holder = ctx.Process(target=_hold_writers, args=(path, locked, release))
        holder.start()
        try:
            assert locked.wait(30)
            done = threading.Event()
            writer = threading.Thread(target=lambda: (repo.delete("root/cimv2", "c", "k1"), done.set()))
            writer.start()
            assert not done.wait(0.3)  # (not a measurement: the write is held while the other process writes)
            release.set()
            assert done.wait(30)
            writer.join(30)
        finally:
            release.set()
            holder.join(30)
        assert repo.get("root/cimv2", "c", "k1") is None
        with repo.transaction():  # a transaction takes it once, for all its writes
            repo.insert("root/cimv2", "c", "k2", "{}")
            repo.insert("root/cimv2", "c", "k3", "{}")
        assert repo.count("root/cimv2", "c") == 2
    finally:
        repo.close()



def test_the_schema_generation_is_read_from_shared_memory_until_it_moves(tmp_path: Path) -> None:
    """Processes sharing a file count their schema changes in ``<file>-writers`` (mapped): a request that finds
    the count unchanged asks SQLite nothing; a schema change another connection commits moves it, and the next
    look reads the new generation."""
    path = str(tmp_path / "shared.db")
    a, b = Repository(path, shared=True), Repository(path, shared=True)
    try:
        before = b.generation()
        statements: list[str] = []
        b._db.set_trace_callback(statements.append)
        for _ in range(3):
            assert b.generation() == before
        assert statements == []  # nothing changed: no SQL at all
        with a.transaction():
            a.claim_schema()
            a.add_namespace("root/new")
        assert b.generation() == (before or 0) + 1
        assert statements  # (the count moved: the generation was read from the file)
        statements.clear()
        assert b.generation() == (before or 0) + 1 and statements == []
    finally:
        a.close()
        b.close()

"""omicli's ``a`` (associators, ``-ac -rc -r -rr``) and ``r`` (references, ``-rc -r``) verbs: the source in
brace syntax, on the embedded server and over WS-Man (--hostname); the exit status is the MI_Result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi.wsman_server.config import ServeConfig
from openmi.wsman_server.run import WSManServer
from openmi.wsman_server.users import UserStore

from .conftest import CLI

MOF = """
class S_Disk { [Key] string Id; string Label; };
class S_Partition { [Key] string DiskId; [Key] uint32 Index; };
[Association] class S_DiskPartition { [Key] S_Disk REF GroupComponent; [Key] S_Partition REF PartComponent; };
[Association] class S_DiskLink { [Key] S_Disk REF Left; [Key] S_Disk REF Right; };
instance of S_Disk as $d1 { Id = "d1"; Label = "first"; };
instance of S_Disk as $d2 { Id = "d2"; };
instance of S_Partition as $p0 { DiskId = "d1"; Index = 0; };
instance of S_DiskPartition { GroupComponent = $d1; PartComponent = $p0; };
instance of S_DiskLink { Left = $d1; Right = $d2; };
"""
D1 = ["{", "S_Disk", "Id", "d1", "}"]
PASSWORD = "Cli-pa55word"


def classes(out: str) -> list[str]:
    return [json.loads(line)["class"] for line in out.splitlines()]


def check(cli: CLI) -> None:
    r = cli("a", "root/cimv2", *D1, "--json")
    assert r.code == 0, r.err
    assert classes(r.out) == ["S_Partition", "S_Disk"]
    r = cli("a", "root/cimv2", *D1, "-ac", "S_DiskLink", "-r", "Left", "-rr", "Right", "--json")
    assert r.code == 0 and [json.loads(x)["properties"]["Id"] for x in r.out.splitlines()] == ["d2"]
    r = cli("a", "root/cimv2", *D1, "-rc", "S_Partition", "--json")
    assert r.code == 0 and classes(r.out) == ["S_Partition"]
    r = cli("r", "root/cimv2", *D1, "--json")
    assert r.code == 0 and classes(r.out) == ["S_DiskPartition", "S_DiskLink"]
    r = cli("r", "root/cimv2", *D1, "-rc", "S_DiskLink", "-r", "right")
    assert r.code == 0 and r.out == ""
    r = cli("r", "root/cimv2", *D1, "-rc", "S_DiskLink", "-r", "left")
    assert r.code == 0 and "instance of root/cimv2:S_DiskLink" in r.out
    assert cli("a", "root/cimv2", "{", "S_Disk", "Id", "nope", "}").code == 6
    assert cli("a", "root/cimv2", *D1, "-ac", "S_Nope").code == 5
    assert cli("r", "root/nowhere", *D1).code == 3
    r = cli("a", "root/cimv2")
    assert r.code == 4 and "source instance is missing" in r.err
    # schema queries answer class definitions, printed as classes
    r = cli("wql", "root/cimv2", 'ASSOCIATORS OF {S_Disk.Id="d1"} WHERE ClassDefsOnly', "--json")
    assert r.code == 0 and classes(r.out) == ["S_Partition", "S_Disk"], r.err
    assert "properties" in json.loads(r.out.splitlines()[0]) and "superclass" in json.loads(r.out.splitlines()[0])
    r = cli("wql", "root/cimv2", "REFERENCES OF {S_Partition} WHERE SchemaOnly")
    assert r.code == 0 and r.out.startswith("[Association") and "class S_DiskPartition" in r.out, r.out
    r = cli("wql", "root/cimv2", 'REFERENCES OF {S_Disk.Id="d1"} WHERE SchemaOnly')
    assert r.code == 15 and "SchemaOnly takes a class" in r.err


def test_local(cli: CLI, tmp_path: Path) -> None:
    mof = tmp_path / "assoc.mof"
    mof.write_text(MOF)
    assert cli("mof", "compile", str(mof)).code == 0
    check(cli)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[WSManServer]:
    users = tmp_path / "users.json"
    UserStore(users).add("alice", PASSWORD)
    engine = openmi.Server(":memory:")
    engine.compile_mof(MOF)
    server = WSManServer(ServeConfig(http_port=0, https_port=None, users=str(users), allow_unencrypted=True,
                                     shutdown_timeout=5.0), engine=engine)
    server.start()
    yield server
    server.stop()
    engine.close()


def test_over_wsman(cli: CLI, served: WSManServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in (("HOSTNAME", "127.0.0.1"), ("PORT", str(served.port("http"))), ("USER", "alice"),
                 ("PASSWORD", PASSWORD), ("ENCRYPTION", "none")):
        monkeypatch.setenv(f"OPENMI_{k}", v)
    check(cli)

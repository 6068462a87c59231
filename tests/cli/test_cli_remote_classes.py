"""``openmi gc`` / ``ec`` over WS-Man, and remote results typed with the server's classes: ``ei --json``
against ``openmi serve`` shows ``"Id": 7`` as uint32 and the keys, as it does locally."""

from __future__ import annotations

import json

from openmi.wsman_server.run import WSManServer

from .conftest import CLI


def test_get_and_enumerate_classes_over_wsman(remote: CLI, served: WSManServer) -> None:
    r = remote("gc", "root/cimv2", "Sample_Employee", "--mof", "--hostname", "127.0.0.1")
    assert r.code == 0, r.err
    text = " ".join(r.out.split())
    assert text.startswith("class Sample_Employee : Sample_Person {") and "string Dept;" in text
    r = remote("ec", "root/cimv2", "--names-only")
    assert r.code == 0 and {"Sample_Person", "Sample_Employee"} <= set(r.out.split()), r.out
    r = remote("ec", "root/cimv2", "Sample_Person", "--mof")
    assert r.code == 0 and "class Sample_Employee : Sample_Person" in r.out and "class Sample_Person\n" not in r.out
    r = remote("gc", "root/cimv2", "No_Such_Class")
    assert r.code == 5 and "No_Such_Class" in r.err
    r = remote("gc", "root/nowhere", "Sample_Person")
    assert r.code == 3


def test_remote_json_is_typed_by_the_class(remote: CLI) -> None:
    r = remote("ci", "root/cimv2", "{", "Sample_Person", "Id", "7", "*Name", "Ada", "*Tags", "[", "a", "b", "]",
               "*Born", "20240102030405.000000+000", "}")
    assert r.code == 0, r.err
    r = remote("ei", "root/cimv2", "Sample_Person", "--json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    got = got[0] if isinstance(got, list) else got
    assert got["properties"]["Id"] == 7 and got["properties"]["Tags"] == ["a", "b"]
    assert got["properties"]["Born"] == "20240102030405.000000+000"
    assert got["types"] == {"Id": "uint32", "Name": "string", "Tags": "string[]", "Born": "datetime"}
    assert got["keys"] == ["Id"]

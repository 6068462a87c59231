"""``openmi wql`` / ``openmi cql`` (and omicli's ``ei --querylang/--queryexpr``), on the embedded repository and
against ``openmi serve``: results as text or JSON, the exit status the query's MI_Result."""

from __future__ import annotations

import json

from openmi.wsman_server.run import WSManServer

from .conftest import CLI


def _people(cli: CLI) -> None:
    for i, name in enumerate(["Ada", "alan", "Grace"], start=1):
        r = cli("ci", "root/cimv2", "{", "Sample_Person", "Id", str(i), "*Name", name, "}")
        assert r.code == 0, r.err
    r = cli("ci", "root/cimv2", "{", "Sample_Employee", "Id", "10", "*Name", "Emp", "*Dept", "Ops", "}")
    assert r.code == 0, r.err


def _check(cli: CLI) -> None:
    r = cli("wql", "root/cimv2", "SELECT Name FROM Sample_Person WHERE Name LIKE 'a%'", "--json")
    assert r.code == 0, r.err
    got = [json.loads(line) for line in r.out.splitlines()]       # one JSON object per instance
    assert sorted(g["properties"]["Name"] for g in got) == ["Ada", "alan"]
    assert all(set(g["properties"]) == {"Id", "Name"} for g in got)     # selected + keys
    r = cli("wql", "root/cimv2", "SELECT * FROM Sample_Person WHERE Id > 2")
    assert r.code == 0 and "Name=Grace" in r.out and "Dept=Ops" in r.out
    r = cli("wql", "root/cimv2", "SELECT * FROM Sample_Person WHERE Id > 2", "-shallow")
    assert r.code == 0 and "Grace" in r.out and "Ops" not in r.out
    r = cli("cql", "root/cimv2", "SELECT * FROM Sample_Person WHERE Id = 2", "--json")
    assert r.code == 0 and json.loads(r.out)["properties"]["Name"] == "alan"
    r = cli("ei", "root/cimv2", "Sample_Person", "--querylang", "WQL", "--queryexpr",
            "SELECT * FROM Sample_Person WHERE Name = 'grace'", "--json")
    assert r.code == 0 and json.loads(r.out)["properties"]["Id"] in (3, "3")
    # errors: the MI_Result is the exit status, the message names the column
    r = cli("wql", "root/cimv2", "SELECT * FROM Sample_Person WHERE Nmae = 'x'")
    assert r.code == 15 and "column 35: unknown property 'Nmae' of Sample_Person" in r.err
    r = cli("cql", "root/cimv2", "SELECT * FROM Sample_Person WHERE Name LIKE 'a%'")
    assert r.code == 15 and "LIKE is not supported in CQL" in r.err
    r = cli("wql", "root/cimv2", "SELECT * FROM Nope")
    assert r.code == 5 and "unknown class 'Nope'" in r.err  # INVALID_CLASS, as omicli shows OMI's answer
    r = cli("ei", "root/cimv2", "Sample_Person", "--querylang", "XQL", "--queryexpr", "SELECT * FROM Sample_Person")
    assert r.code == 14
    r = cli("wql", "root/nowhere", "SELECT * FROM Sample_Person")
    assert r.code == 3


def test_wql_and_cql_locally(sample: CLI) -> None:
    _people(sample)
    _check(sample)
    r = sample("ei", "root/cimv2", "Sample_Person", "--querylang", "WQL")
    assert r.code == 4 and "go together" in r.err
    r = sample("wql", "root/cimv2")
    assert r.code == 4


def test_wql_and_cql_over_wsman(remote: CLI, served: WSManServer) -> None:
    _people(remote)
    _check(remote)

"""QueryInstances through the public API on an embedded server: dispatch, filtering, projection, errors,
providers, and the repository's keyed lookups."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIResult, MIType, OperationFlags
from tests.conftest import person


@pytest.fixture
def people(app: openmi.Application, server: openmi.Server, session: openmi.Session) -> openmi.Session:
    server.define_class("root/cimv2", openmi.Class("Sample_Employee", "Sample_Person", [
        openmi.Property("Dept", MIType.STRING), openmi.Property("Salary", MIType.REAL64),
        openmi.Property("Hired", MIType.DATETIME), openmi.Property("Active", MIType.BOOLEAN)]))
    for i, name in enumerate(["Ada", "alan", "Grace", "Edsger", None], start=1):
        session.create(person(app, i, name))
    for i, (dept, pay, active) in enumerate([("Ops", 10.5, True), ("Dev", 20, False), ("ops", 30, True)],
                                            start=10):
        e = app.new_instance("Sample_Employee")
        e.add_element("Id", i, MIType.UINT32, openmi.MIFlag.KEY)
        e["Name"] = f"E{i}"
        e["Dept"] = dept
        e["Salary"] = float(pay)
        e["Active"] = active
        e["Hired"] = dt.datetime(2020, 1, i, tzinfo=dt.timezone.utc)
        session.create(e)
    return session


def ids(instances: list[openmi.Instance]) -> list[int]:
    return sorted(i["Id"] for i in instances)


def test_query_api_and_operation(people: openmi.Session) -> None:
    with people.query_instances("root/cimv2", "WQL", "SELECT Name FROM Sample_Person WHERE Id > 2") as op:
        got = list(op)
    assert ids(got) == [3, 4, 5, 10, 11, 12]
    assert all(set(i) == {"Id", "Name"} for i in got)   # projection: selected + keys
    assert ids(people.query("SELECT * FROM Sample_Person WHERE Name LIKE 'A%'")) == [1, 2]
    assert ids(people.query("select * from sample_person where name = 'ADA' or NAME = 'grace'")) == [1, 3]
    assert ids(people.query("SELECT * FROM Sample_Person WHERE Name IS NULL")) == [5]
    assert ids(people.query("SELECT * FROM Sample_Person WHERE Name = NULL")) == [5]
    assert ids(people.query("SELECT * FROM Sample_Person WHERE NOT Name LIKE '%a%'")) == [4, 5, 10, 11, 12]
    assert ids(people.query("SELECT * FROM Sample_Person", dialect="CQL")) == [1, 2, 3, 4, 5, 10, 11, 12]
    assert ids(people.query("SELECT * FROM Sample_Person WHERE Id >= 3 AND Id < 11", dialect="DMTF:CQL")) == \
        [3, 4, 5, 10]
    # the final result follows the instances, as for enumerate
    with people.query_instances(None, openmi.MI_QUERY_DIALECT_WQL, "SELECT * FROM Sample_Person WHERE Id = 1") as op:
        r1 = op.get_instance()
        r2 = op.get_instance()
    assert r1.instance is not None and r1.more_results and not r2.more_results and r2.result == MIResult.OK


def test_subclass_properties_and_types(people: openmi.Session) -> None:
    q = people.query
    assert ids(q("SELECT * FROM Sample_Employee WHERE Dept = 'OPS'")) == [10, 12]
    assert ids(q("SELECT * FROM Sample_Employee WHERE Salary > 15")) == [11, 12]
    assert ids(q("SELECT * FROM Sample_Employee WHERE Salary = 20")) == [11]
    assert ids(q("SELECT * FROM Sample_Employee WHERE Active = 1")) == [10, 12]
    assert ids(q("SELECT * FROM Sample_Employee WHERE Active <> TRUE")) == [11]
    assert ids(q("SELECT * FROM Sample_Employee WHERE Hired > '20200110120000.000000+000'")) == [11, 12]
    assert ids(q("SELECT * FROM Sample_Employee WHERE Hired = '20200111000000.000000+000'")) == [11]
    assert ids(q("SELECT * FROM Sample_Person WHERE __CLASS = 'sample_employee'")) == [10, 11, 12]
    assert ids(q("SELECT * FROM Sample_Person WHERE __PATH LIKE '%Employee.Id=1_'")) == [10, 11, 12]
    got = q("SELECT Dept FROM Sample_Employee WHERE Id = 12")
    assert [dict(i) for i in got] == [{"Id": 12, "Dept": "ops"}] and got[0].class_name == "Sample_Employee"


def test_polymorphism_flags(people: openmi.Session) -> None:
    text = "SELECT * FROM Sample_Person WHERE Id > 3"
    assert ids(people.query(text)) == [4, 5, 10, 11, 12]
    assert ids(people.query(text, flags=OperationFlags.POLYMORPHISM_SHALLOW)) == [4, 5]
    base = people.query(text, flags=OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY)
    assert ids(base) == [4, 5, 10, 11, 12] and all("Dept" not in i for i in base)
    assert {i.class_name for i in base} == {"Sample_Person", "Sample_Employee"}


@pytest.mark.parametrize(("dialect", "query", "result", "message"), [
    ("XPath", "SELECT * FROM Sample_Person", MIResult.QUERY_LANGUAGE_NOT_SUPPORTED, "'XPath' is not supported"),
    ("selectorFilter", "x", MIResult.QUERY_LANGUAGE_NOT_SUPPORTED, "use WQL or CQL"),
    ("WQL", "SELECT * FROM Sample_Person WHERE Nmae = 'x'", MIResult.INVALID_QUERY,
     "column 35: unknown property 'Nmae' of Sample_Person"),
    ("WQL", "SELECT Name FROM Sample_Person WHERE Id > 5 AND Nmae = 1", MIResult.INVALID_QUERY,
     "column 49: unknown property 'Nmae' of Sample_Person"),
    ("WQL", "SELECT * FROM Nope", MIResult.INVALID_CLASS, "column 15: unknown class 'Nope' in namespace root/cimv2"),
    ("WQL", "SELECT * FROM Sample_Person WHERE Tags = 'a'", MIResult.INVALID_QUERY, "is an array"),
    ("WQL", "SELECT * FROM Sample_Person WHERE Id = 'x'", MIResult.INVALID_QUERY, "is a number"),
    ("WQL", "SELECT * FROM Sample_Person WHERE", MIResult.INVALID_QUERY, "column 34: expected a property"),
    ("CQL", "SELECT * FROM Sample_Person WHERE Name LIKE 'a%'", MIResult.INVALID_QUERY, "LIKE is not supported"),
    ("WQL", "", MIResult.INVALID_QUERY, "needs a query expression"),
    ("WQL", "SELECT * FROM Sample_Person WITHIN 5", MIResult.INVALID_QUERY, "event queries"),
])
def test_errors(session: openmi.Session, dialect: str, query: str, result: MIResult, message: str) -> None:
    with session.query_instances("root/cimv2", dialect, query) as op:
        r = op.get_instance()
    assert r.result == result and r.instance is None
    assert message in (r.error_message or "")
    with pytest.raises(openmi.MIError) as ei:
        session.query(query, dialect=dialect)
    assert ei.value.result == result


def test_namespace_errors(session: openmi.Session) -> None:
    with pytest.raises(openmi.MIError) as ei:
        session.query("SELECT * FROM Sample_Person", namespace="root/nope")
    assert ei.value.result == MIResult.INVALID_NAMESPACE


class Listing:
    """A provider serving Sample_Person from a list; optionally able to filter on Id itself."""

    def __init__(self, app: openmi.Application, capable: str) -> None:
        self.rows = [person(app, i, n) for i, n in [(1, "Ada"), (2, "Bob"), (3, "Cy")]]
        self.capable = capable
        self.queries: list[openmi.ProviderQuery] = []
        self.enumerated = 0

    def enumerate_instances(self, ctx: openmi.Context, ns: str, cls: str, keys_only: bool) -> Any:
        self.enumerated += 1
        return [r.clone() for r in self.rows]

    def query_instances(self, ctx: openmi.Context, ns: str, cls: str, query: openmi.ProviderQuery) -> Any:
        self.queries.append(query)
        if self.capable == "no":
            return None
        if self.capable == "raise":
            raise openmi.MIError(MIResult.NOT_SUPPORTED, "cannot filter")
        if self.capable == "filters":
            query.filtered = True
            return [r.clone() for r in self.rows if query.matches(r) and r["Id"] != 2]
        return [r.clone() for r in self.rows]   # returns everything, leaves filtering to the engine


@pytest.mark.parametrize("capable", ["no", "raise", "filters", "unfiltered"])
def test_providers(app: openmi.Application, server: openmi.Server, session: openmi.Session, capable: str) -> None:
    prov = Listing(app, capable)
    server.register_provider("root/cimv2", "Sample_Person", prov)
    got = session.query("SELECT Name FROM Sample_Person WHERE Id >= 2")
    q = prov.queries[0]
    assert q.dialect == "WQL" and q.text.endswith("Id >= 2") and q.tree.class_name == "Sample_Person"
    assert q.properties == ("Name",)
    if capable == "filters":        # the engine trusts a provider that says it filtered
        assert ids(got) == [3] and prov.enumerated == 0
    else:
        assert ids(got) == [2, 3]
        assert prov.enumerated == (1 if capable in ("no", "raise") else 0)
    assert all(set(i) == {"Id", "Name"} for i in got)


def test_provider_without_query_instances(app: openmi.Application, server: openmi.Server,
                                          session: openmi.Session) -> None:
    class Plain:
        def enumerate_instances(self, ctx: openmi.Context, ns: str, cls: str, keys_only: bool) -> Any:
            yield person(app, 1, "Ada")
            yield person(app, 2, "Bob")

    server.register_provider("root/cimv2", "Sample_Person", Plain())
    assert [i["Name"] for i in session.query("SELECT * FROM Sample_Person WHERE Name <> 'ada'")] == ["Bob"]


def test_key_lookups_and_case(app: openmi.Application, server: openmi.Server, session: openmi.Session) -> None:
    server.define_class("root/cimv2", openmi.Class("Sample_Named", properties=[
        openmi.Property("Name", MIType.STRING, key=True), openmi.Property("N", MIType.UINT32)]))
    for n, name in enumerate(["Alpha", "beta", "ÉCOLE", "Straße", "42", "\u212aelvin", "ſon"]):
        i = app.new_instance("Sample_Named")
        i.add_element("Name", name, MIType.STRING, openmi.MIFlag.KEY)
        i["N"] = n
        session.create(i)
    q = session.query
    assert [i["N"] for i in q("SELECT * FROM Sample_Named WHERE Name = 'alpha'")] == [0]
    assert [i["N"] for i in q("SELECT * FROM Sample_Named WHERE Name = 'BETA'")] == [1]
    assert [i["N"] for i in q("SELECT * FROM Sample_Named WHERE Name = 'école'")] == [2]
    assert [i["N"] for i in q("SELECT * FROM Sample_Named WHERE Name = 'STRAßE'")] == [3]
    assert q("SELECT * FROM Sample_Named WHERE Name = 'STRASSE'") == []     # ß is not ss, a character at a time
    assert [i["N"] for i in q("SELECT * FROM Sample_Named WHERE Name = 'kelvin'")] == [5]
    assert [i["N"] for i in q("SELECT * FROM Sample_Named WHERE Name = 'SON'")] == [6]
    assert [i["N"] for i in q("SELECT * FROM Sample_Named WHERE Name = '42'")] == [4]
    assert q("SELECT * FROM Sample_Named WHERE Name = 'gamma'") == []
    for i in range(20, 25):
        session.create(person(app, i, f"P{i}"))
    assert [i["Name"] for i in q("SELECT * FROM Sample_Person WHERE Id = 22")] == ["P22"]
    assert [i["Name"] for i in q("SELECT * FROM Sample_Person WHERE 23 = Id AND Name LIKE 'p%'")] == ["P23"]
    assert q("SELECT * FROM Sample_Person WHERE Id = 22 AND Name = 'nope'") == []
    assert q("SELECT * FROM Sample_Person WHERE Id = 99") == []


def test_embedded_objects_are_filtered_as_instances(app: openmi.Application, server: openmi.Server,
                                                    session: openmi.Session) -> None:
    server.define_class("root/cimv2", openmi.Class("Sample_Box", properties=[
        openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Content", MIType.INSTANCE)]))
    for i, inner in enumerate([person(app, 7, "Ada"), openmi.Instance("Other", {"X": 1}), None]):
        box = app.new_instance("Sample_Box")
        box.add_element("Id", i, MIType.UINT32, openmi.MIFlag.KEY)
        if inner is not None:
            box["Content"] = inner
        session.create(box)
    q = session.query
    assert ids(q("SELECT * FROM Sample_Box WHERE Content ISA Sample_Person")) == [0]
    assert ids(q("SELECT * FROM Sample_Box WHERE Content.Name = 'ada'")) == [0]
    assert ids(q("SELECT * FROM Sample_Box WHERE Content.Sample_Person::Id = 7")) == [0]
    assert ids(q("SELECT * FROM Sample_Box WHERE Content IS NULL")) == [2]
    assert ids(q("SELECT * FROM Sample_Box WHERE NOT Content ISA 'Sample_Person'")) == [1, 2]


def test_persistent_repository_and_async(tmp_path: Path, app: openmi.Application) -> None:
    srv = openmi.Server(tmp_path / "r.db")
    try:
        srv.define_class("root/cimv2", openmi.Class("Sample_Person", properties=[
            openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Name", MIType.STRING)]))
        s = app.new_session(server=srv)
        for i in range(1, 1201):        # more than one page of the repository's scan
            s.create(person(app, i, f"N{i % 7}"))
        assert len(s.query("SELECT Id FROM Sample_Person WHERE Name = 'n3'")) == len(
            [i for i in range(1, 1201) if i % 7 == 3])

        async def run() -> list[openmi.Instance]:
            return await s.query_instances(None, "WQL", "SELECT * FROM Sample_Person WHERE Id <= 3")  # type: ignore[no-any-return]

        assert ids(asyncio.run(run())) == [1, 2, 3]
    finally:
        srv.close()


def test_compiled_queries_follow_class_changes(app: openmi.Application, server: openmi.Server,
                                               session: openmi.Session) -> None:
    text = "SELECT * FROM Sample_Thing WHERE Extra = 1"
    server.define_class("root/cimv2", openmi.Class("Sample_Thing", properties=[
        openmi.Property("Id", MIType.UINT32, key=True)]))
    with pytest.raises(openmi.MIError, match="unknown property 'Extra'"):
        session.query(text)
    server.define_class("root/cimv2", openmi.Class("Sample_Thing", properties=[
        openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Extra", MIType.UINT32)]), replace=True)
    assert session.query(text) == []
    session.create(openmi.Instance("Sample_Thing", {"Id": 1, "Extra": 1}))
    assert ids(session.query(text)) == [1]
    assert ids(session.query(text)) == [1]          # asked again: the namespace's compiled copy
    session.delete(openmi.Instance("Sample_Thing", {"Id": 1}))
    server.delete_class("root/cimv2", "Sample_Thing")
    with pytest.raises(openmi.MIError, match="unknown class 'Sample_Thing'"):
        session.query(text)


def test_the_compiled_query_cache_stays_bounded(app: openmi.Application, server: openmi.Server,
                                                session: openmi.Session) -> None:
    session.create(person(app, 1, "Ada"))
    for i in range(300):
        assert len(session.query(f"SELECT * FROM Sample_Person WHERE Id < {i + 2}")) == 1
    ns = server.namespace("root/cimv2")
    assert len(ns.queries) == 256
    assert ("WQL", "SELECT * FROM Sample_Person WHERE Id < 301") in ns.queries

"""Integer-keyed queries that differ only in their numbers share one compiled template (issue 11's speed rule:
a key-equality query costs about a GetInstance), with the same answers and errors as the full path."""

from __future__ import annotations

import pytest

import openmi
from openmi import Class, Instance, MIError, MIType, Property
from openmi.engine.operations import _KeyTemplate, compile_for

NS = "root/cimv2"


@pytest.fixture
def session() -> openmi.Session:
    srv = openmi.Server(":memory:")
    srv.define_class(NS, Class("T_Item", properties=[Property("Id", MIType.UINT32, key=True),
                                                     Property("Name", MIType.STRING)]))
    srv.define_class(NS, Class("T_Sub", "T_Item", [Property("Extra", MIType.SINT8)]))
    app = openmi.Application()
    s = app.new_session(server=srv)
    for i in range(20):
        s.create(Instance("T_Item" if i % 2 else "T_Sub", {"Id": i, "Name": f"n{i}"}))
    return s


def test_templates_answer_as_the_full_path(session: openmi.Session) -> None:
    srv = session._transport.server  # type: ignore[attr-defined]
    ns = srv.namespace(NS)
    for i in [*range(-2, 25), 4294967295, 4294967296, 99999999999999999999]:
        q = f"SELECT Name FROM T_Item WHERE Id = {i}"
        try:
            got = [(x.class_name, x["Id"], x["Name"]) for x in session.query(q, namespace=NS)]
        except MIError as exc:
            got = [("error", int(exc.result), "")]
        ns.queries.clear()  # the same query through the full parse-and-compile path
        try:
            want = [(x.class_name, x["Id"], x["Name"]) for x in session.query(q, namespace=NS)]
        except MIError as exc:
            want = [("error", int(exc.result), "")]
        assert got == want, q
        session.query("SELECT Name FROM T_Item WHERE Id = 3", namespace=NS)  # the template is back
    assert any(isinstance(v, _KeyTemplate) for v in ns.queries.values())


def test_only_integer_keyed_lookups_become_templates(session: openmi.Session) -> None:
    ns = session._transport.server.namespace(NS)  # type: ignore[attr-defined]
    for q in ("SELECT * FROM T_Item WHERE Id > 3", "SELECT * FROM T_Item WHERE Id = 3 OR Id = 4",
              "SELECT * FROM T_Item WHERE Name = 'n3'", "SELECT * FROM T_Item WHERE Id = 3 AND Name = 'x'"):
        compile_for(ns, "WQL", q)
    assert not any(isinstance(v, _KeyTemplate) for v in ns.queries.values())


def test_a_provider_registered_later_is_not_bypassed(session: openmi.Session) -> None:
    srv = session._transport.server  # type: ignore[attr-defined]
    assert [x["Id"] for x in session.query("SELECT * FROM T_Item WHERE Id = 5", namespace=NS)] == [5]

    class Provider:
        def enumerate_instances(self, ctx: object, ns: str, cls: str, keys_only: bool) -> list[Instance]:
            return [Instance(cls, {"Id": 6, "Name": "from the provider"})]

    srv.register_provider(NS, "T_Sub", Provider())
    got = session.query("SELECT * FROM T_Item WHERE Id = 6", namespace=NS)
    assert [x["Name"] for x in got] == ["from the provider"]

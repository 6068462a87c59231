"""The other session operations follow DeleteInstance's pattern: get, create, modify, enumerate, invoke,
classes, test_connection; sync, callbacks and asyncio readers; providers."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIResult, MIType
from tests.conftest import person, person_class


def test_create_get_modify_enumerate(app: openmi.Application, session: openmi.Session) -> None:
    created = session.create(person(app, 1, "Ada"))
    assert created["Id"] == 1 and created["Name"] == "Ada" and created["Tags"] is None
    with session.create_instance(None, person(app, 1, "Again")) as op:
        r = op.get_instance()
    assert r.result == MIResult.ALREADY_EXISTS and "Id=1" in r.error_message
    got = session.get(person(app, 1))
    assert got["Name"] == "Ada" and got.get_element("Id").key and got.namespace == "root/cimv2"
    change = person(app, 1)
    change["Tags"] = ["a", "b"]
    modified = session.modify(change)
    assert modified["Name"] == "Ada" and modified["Tags"] == ["a", "b"]
    assert session.get(person(app, 1))["Tags"] == ["a", "b"]
    with session.modify_instance(None, person(app, 2, "x")) as op:
        assert op.get_instance().result == MIResult.NOT_FOUND
    session.create(person(app, 2, "Bob"))
    names = sorted(i["Name"] for i in session.enumerate("Sample_Person"))
    assert names == ["Ada", "Bob"]
    keys = session.enumerate("Sample_Person", keys_only=True)
    assert all(list(k) == ["Id"] for k in keys)


def test_get_single_result_carries_the_instance(app: openmi.Application, session: openmi.Session) -> None:
    session.create(person(app, 1, "Ada"))
    with session.get_instance("root/cimv2", person(app, 1)) as op:
        r = op.get_instance()
        assert r.instance is not None and r.instance["Name"] == "Ada"
        assert r.more_results is False and r.result == MIResult.OK
        assert op.get_instance().instance is r.instance


def test_enumerate_streams_then_final(app: openmi.Application, session: openmi.Session) -> None:
    for i in range(3):
        session.create(person(app, i))
    with session.enumerate_instances("root/cimv2", "Sample_Person") as op:
        results = []
        while True:
            r = op.get_instance()
            results.append(r)
            if not r.more_results:
                break
    assert [r.more_results for r in results] == [True, True, True, False]
    assert results[-1].instance is None and results[-1].result == MIResult.OK


def test_enumerate_polymorphism(app: openmi.Application, server: openmi.Server, session: openmi.Session) -> None:
    server.define_class("root/cimv2", openmi.Class("Sample_Employee", "Sample_Person",
                                                   [openmi.Property("Dept", MIType.STRING)]))
    session.create(person(app, 1))
    emp = app.new_instance("Sample_Employee")
    emp.add_element("Id", 2, MIType.UINT32, openmi.MIFlag.KEY)
    emp["Dept"] = "Ops"
    session.create(emp)
    deep = session.enumerate("Sample_Person")
    assert sorted((i.class_name, i["Id"]) for i in deep) == [("Sample_Employee", 2), ("Sample_Person", 1)]
    shallow = session.enumerate("Sample_Person", flags=openmi.OperationFlags.POLYMORPHISM_SHALLOW)
    assert [i.class_name for i in shallow] == ["Sample_Person"]
    base = session.enumerate("Sample_Person", flags=openmi.OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY)
    assert all("Dept" not in i for i in base) and len(base) == 2


def test_enumerate_errors(session: openmi.Session) -> None:
    with session.enumerate_instances(None, "Nope") as op:
        assert op.get_instance().result == MIResult.INVALID_CLASS
    with pytest.raises(openmi.MIError) as ei:
        session.enumerate("Sample_Person", namespace="root/none")
    assert ei.value.result == MIResult.INVALID_NAMESPACE


def test_create_type_checks(app: openmi.Application, session: openmi.Session) -> None:
    bad = person(app, 1)
    bad.add_element("Name", 5, MIType.UINT32)
    with pytest.raises(openmi.MIError) as ei:
        session.create(bad)
    assert ei.value.result == MIResult.TYPE_MISMATCH and "Name" in ei.value.message
    unknown = person(app, 1)
    unknown["Height"] = 2
    with pytest.raises(openmi.MIError) as ei:
        session.create(unknown)
    assert ei.value.result == MIResult.NO_SUCH_PROPERTY
    nokey = app.new_instance("Sample_Person")
    nokey["Name"] = "x"
    with pytest.raises(openmi.MIError) as ei:
        session.create(nokey)
    assert ei.value.result == MIResult.INVALID_PARAMETER


def test_results_are_independent_of_the_repository(app: openmi.Application, session: openmi.Session,
                                                   server: openmi.Server) -> None:
    original = person(app, 1, "Ada")
    original["Tags"] = ["x"]
    created = session.create(original)
    original["Name"] = "changed"
    created["Name"] = "changed too"
    got = session.get(person(app, 1))
    got["Tags"].append("mutated")
    assert session.get(person(app, 1))["Name"] == "Ada"
    assert session.get(person(app, 1))["Tags"] == ["x"]
    cls = session.get_class_result = server.get_class(None, "Sample_Person")
    cls.properties["Name"].value = "tampered"
    assert server.get_class(None, "Sample_Person").properties["Name"].value is None


def test_classes(session: openmi.Session, server: openmi.Server) -> None:
    server.define_class("root/cimv2", openmi.Class("Sample_Employee", "Sample_Person", [
        openmi.Property("Dept", MIType.STRING)], qualifiers={"Description": "someone employed"},
        methods=[openmi.Method("Promote", MIType.UINT32, [openmi.Parameter("Level", MIType.UINT8)])]))
    with session.get_class("root/cimv2", "sample_employee") as op:
        r = op.get_class()
    c = r.cls
    assert r.result == MIResult.OK and r.more_results is False
    assert c is not None and c.name == "Sample_Employee" and c.superclass == "Sample_Person"
    assert list(c.properties) == ["Id", "Name", "Tags", "Dept"]
    assert c.properties["Id"].key and c.properties["Id"].class_origin == "Sample_Person"
    assert c.qualifiers["Description"].value == "someone employed"
    assert c.methods["Promote"].parameters["Level"].type == MIType.UINT8
    with session.get_class(None, "Nope") as op:
        assert op.get_class().result == MIResult.INVALID_CLASS
    names = [x.name for x in session.classes()]
    assert names[:2] == ["Sample_Person", "Sample_Employee"]
    assert [x.name for x in session.classes("Sample_Person")] == ["Sample_Employee"]
    with session.enumerate_classes(None, None, True) as op:
        first = op.get_class()
        assert first.more_results and first.cls is not None and not first.cls.properties
    with session.get_class(None, "Sample_Person") as op, pytest.raises(openmi.MIError):
        op.get_instance()  # class results are read with get_class


def test_test_connection(app: openmi.Application, session: openmi.Session) -> None:
    with session.test_connection() as op:
        assert op.get_instance() == (None, False, MIResult.OK, None, None)
    with session.test_connection(flags=1) as op:
        assert op.get_instance().result == MIResult.INVALID_PARAMETER


class Calculator:
    """A provider with methods, instances from memory and every hook of the provider API."""

    def __init__(self) -> None:
        self.items = {1: "one", 2: "two"}

    def enumerate_instances(self, ctx: openmi.Context, namespace: str, class_name: str, keys_only: bool) -> Any:
        for k, v in self.items.items():
            inst = ctx.new_instance(class_name)
            inst["Id"] = k
            if not keys_only:
                inst["Name"] = v
            yield inst

    def get_instance(self, ctx: openmi.Context, namespace: str, instance: openmi.Instance) -> openmi.Instance:
        k = instance["Id"]
        if k not in self.items:
            raise openmi.MIError(MIResult.NOT_FOUND, f"no item {k}")
        inst = ctx.new_instance("Sample_Calc")
        inst["Id"] = k
        inst["Name"] = self.items[k]
        return inst

    def create_instance(self, ctx: openmi.Context, namespace: str, instance: openmi.Instance) -> None:
        self.items[instance["Id"]] = instance["Name"]

    def invoke(self, ctx: openmi.Context, namespace: str, class_name: str, method_name: str,
               instance: openmi.Instance | None, parameters: openmi.Instance) -> Any:
        if method_name == "Add":
            return {"ReturnValue": 0, "Sum": parameters["A"] + parameters["B"]}
        return len(self.items)


@pytest.fixture
def calc(server: openmi.Server) -> Calculator:
    server.define_class("root/cimv2", openmi.Class("Sample_Calc", properties=[
        openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Name", MIType.STRING)], methods=[
        openmi.Method("Add", MIType.UINT32, [openmi.Parameter("A", MIType.SINT32), openmi.Parameter("B", MIType.SINT32),
                                             openmi.Parameter("Sum", MIType.SINT64, in_=False, out=True)],
                      qualifiers={"Static": True}),
        openmi.Method("Count", MIType.UINT32, [])]))
    prov = Calculator()
    server.register_provider("root/cimv2", "Sample_Calc", prov)
    return prov


def test_provider_serves_a_class(app: openmi.Application, session: openmi.Session, calc: Calculator) -> None:
    assert sorted(i["Name"] for i in session.enumerate("Sample_Calc")) == ["one", "two"]
    key = app.new_instance("Sample_Calc")
    key.add_element("Id", 2, MIType.UINT32, openmi.MIFlag.KEY)
    assert session.get(key)["Name"] == "two"
    key["Id"] = 9
    with pytest.raises(openmi.MIError) as ei:
        session.get(key)
    assert ei.value.result == MIResult.NOT_FOUND
    new = app.new_instance("Sample_Calc")
    new.add_element("Id", 3, MIType.UINT32, openmi.MIFlag.KEY)
    new["Name"] = "three"
    session.create(new)
    assert calc.items[3] == "three"
    with session.delete_instance(None, new) as op:
        assert op.get_instance().result == MIResult.NOT_SUPPORTED


def test_invoke(app: openmi.Application, session: openmi.Session, calc: Calculator) -> None:
    out = session.invoke_method("Sample_Calc", "Add", {"A": 2, "B": "40"})
    assert out["ReturnValue"] == 0 and out["Sum"] == 42
    assert out.get_element("Sum").type == MIType.SINT64
    target = app.new_instance("Sample_Calc")
    target.add_element("Id", 1, MIType.UINT32, openmi.MIFlag.KEY)
    assert session.invoke_method(target, "Count")["ReturnValue"] == 2
    with session.invoke(None, "Sample_Calc", "Count") as op:  # not static, no instance
        assert op.get_instance().result == MIResult.INVALID_PARAMETER
    with session.invoke(None, "Sample_Calc", "Nope") as op:
        assert op.get_instance().result == MIResult.METHOD_NOT_FOUND
    with session.invoke(None, "Sample_Calc", "Add", parameters={"C": 1}) as op:
        assert op.get_instance().result == MIResult.INVALID_PARAMETER
    with session.invoke(None, "Sample_Calc", "Add", parameters={"A": "x"}) as op:
        assert op.get_instance().result == MIResult.TYPE_MISMATCH


def test_invoke_without_provider_is_not_supported(session: openmi.Session, server: openmi.Server) -> None:
    server.define_class("root/cimv2", openmi.Class("Sample_Static", methods=[
        openmi.Method("Ping", MIType.UINT32, qualifiers={"Static": True})]))
    with session.invoke(None, "Sample_Static", "Ping") as op:
        assert op.get_instance().result == MIResult.NOT_SUPPORTED


def test_custom_options_reach_the_provider(app: openmi.Application, session: openmi.Session,
                                           server: openmi.Server) -> None:
    seen: dict[str, Any] = {}

    class P:
        def get_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> openmi.Instance:
            seen.update(ctx.options)
            return inst

    server.register_provider(None, "Sample_Person", P())
    opts = app.new_operation_options()
    opts.set_custom_option("Verbose", True)
    opts.set_custom_option("Level", 3, MIType.UINT8)
    session.get(person(app, 1), options=opts)
    assert seen == {"Verbose": True, "Level": 3}


def test_enumerate_with_callbacks(app: openmi.Application, session: openmi.Session) -> None:
    for i in range(5):
        session.create(person(app, i))
    got: list[tuple[Any, bool, MIResult]] = []
    done = threading.Event()

    def cb(op: Any, ctx: Any, inst: Any, more: bool, result: MIResult, msg: Any, det: Any) -> None:
        got.append((inst["Id"] if inst is not None else None, more, result))
        if not more:
            done.set()

    op = session.enumerate_instances(None, "Sample_Person", callbacks=openmi.OperationCallbacks(instance_result=cb))
    assert done.wait(5)
    op.close()
    op._join(5)
    assert got == [(0, True, MIResult.OK), (1, True, MIResult.OK), (2, True, MIResult.OK), (3, True, MIResult.OK),
                   (4, True, MIResult.OK), (None, False, MIResult.OK)]


def test_asyncio_readers(app: openmi.Application, session: openmi.Session) -> None:
    for i in range(4):
        session.create(person(app, i))

    async def main() -> tuple[list[int], list[Any], Any]:
        ids = [i["Id"] async for i in session.enumerate_instances(None, "Sample_Person")]
        both = await asyncio.gather(session.get_instance(None, person(app, 1)),
                                    session.get_instance(None, person(app, 2)))
        try:
            await session.get_instance(None, person(app, 99))
        except openmi.MIError as exc:
            err = exc.result
        return ids, both, err

    ids, both, err = asyncio.run(main())
    assert ids == [0, 1, 2, 3]
    assert [b["Id"] for b in both] == [1, 2]
    assert err == MIResult.NOT_FOUND


def test_operation_iteration_raises_on_failure(app: openmi.Application, session: openmi.Session) -> None:
    with session.get_instance(None, person(app, 5)) as op, pytest.raises(openmi.MIError) as ei:
        list(op)
    assert ei.value.result == MIResult.NOT_FOUND


def test_default_session_persists_in_user_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data" / "openmi.db"
    monkeypatch.setenv("OPENMI_REPOSITORY", str(path))
    with openmi.Application() as app:
        s = app.new_session()
        s.application  # noqa: B018
        srv = app._default()
        srv.define_class("root/cimv2", person_class())
        s.create(person(app, 1, "Ada"))
    assert path.exists()
    with openmi.Application() as app:
        assert app.new_session().get(person(app, 1))["Name"] == "Ada"


def test_second_server_on_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with openmi.Server(path) as srv:
        srv.define_class(None, person_class())  # takes the write lock
        with pytest.raises(openmi.MIError) as ei:
            openmi.Server(path)
        assert "another process" in ei.value.message or "locked" in ei.value.message


def test_define_class_rules(server: openmi.Server) -> None:
    server.define_class(None, person_class())  # identical: no-op
    with pytest.raises(openmi.MIError) as ei:
        server.define_class(None, openmi.Class("Sample_Person", properties=[openmi.Property("X", MIType.UINT8)]))
    assert ei.value.result == MIResult.ALREADY_EXISTS
    with pytest.raises(openmi.MIError) as ei:
        server.define_class(None, openmi.Class("Sample_Orphan", "No_Parent"))
    assert ei.value.result == MIResult.INVALID_SUPERCLASS
    with pytest.raises(openmi.MIError) as ei:
        server.define_class("root/nowhere", openmi.Class("X"))
    assert ei.value.result == MIResult.INVALID_NAMESPACE
    server.create_namespace("root/test")
    server.define_class("root/test", openmi.Class("X"))
    with pytest.raises(openmi.MIError) as ei:
        server.delete_namespace("root/test")
    assert ei.value.result == MIResult.NAMESPACE_NOT_EMPTY


def test_failed_batch_loads_nothing(tmp_path: Path) -> None:
    with openmi.Server(tmp_path / "r.db") as srv:
        with pytest.raises(openmi.MIError):
            srv.define_classes(None, [person_class(), openmi.Class("Bad", "Missing")])
        assert "Sample_Person" not in srv.classes()
    with openmi.Server(tmp_path / "r.db") as srv:
        assert "Sample_Person" not in srv.classes()

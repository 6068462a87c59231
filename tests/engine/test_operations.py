"""engine.operations: each request handler on its own (called directly with a namespace and a context),
its results and each error result it can end with; repository-backed and provider-backed classes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

import openmi
from openmi import MIError, MIResult, MIType
from openmi.cim import requests as rq
from openmi.cim.classes import Class, Method, Parameter, Property
from openmi.cim.types import CancellationReason, OperationFlags
from openmi.engine.context import Context
from openmi.engine.operations import HANDLERS

NS = "root/cimv2"


class Calc:
    """Sample_Calc's provider: Add returns ReturnValue and Sum; Bad returns a name Add does not declare."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def invoke(self, ctx: Context, ns: str, cls: str, method: str, target: Any, params: openmi.Instance) -> Any:
        self.calls.append((method, target, {el.name: el.value for el in params.elements}))
        if method == "Add":
            return {"ReturnValue": 0, "Sum": params["A"] + params["B"]}
        if method == "Bad":
            return {"Nope": 1}
        if method == "Wrong":
            return {"ReturnValue": "not a number"}
        return 7  # a bare value is the return value


class Procs:
    """Sample_Proc's provider: get, enumerate, create, modify and delete, recording what it received."""

    def __init__(self) -> None:
        self.rows: dict[int, str] = {1: "init", 2: "sh"}
        self.received: list[openmi.Instance] = []

    def get_instance(self, ctx: Context, ns: str, inst: openmi.Instance) -> Iterator[openmi.Instance]:
        self.received.append(inst)
        if inst["Handle"] in self.rows:
            yield self._make(ctx, inst["Handle"])

    def enumerate_instances(self, ctx: Context, ns: str, cls: str, keys_only: bool) -> Iterator[openmi.Instance]:
        for h in sorted(self.rows):
            yield self._make(ctx, h)

    def create_instance(self, ctx: Context, ns: str, inst: openmi.Instance) -> None:
        self.received.append(inst)
        self.rows[inst["Handle"]] = inst["Name"]

    def delete_instance(self, ctx: Context, ns: str, inst: openmi.Instance) -> None:
        self.received.append(inst)
        if inst["Handle"] not in self.rows:
            raise MIError(MIResult.NOT_FOUND, f"no process {inst['Handle']}")
        del self.rows[inst["Handle"]]

    def _make(self, ctx: Context, h: int) -> openmi.Instance:
        out = ctx.new_instance("Sample_Proc")
        out["Handle"] = h
        out["Name"] = self.rows[h]
        return out


class Broken:
    """A provider that returns what is not an instance."""

    def enumerate_instances(self, ctx: Context, ns: str, cls: str, keys_only: bool) -> list[object]:
        return ["not an instance"]


@pytest.fixture
def server() -> Iterator[openmi.Server]:
    srv = openmi.Server(":memory:")
    srv.define_classes(NS, [
        Class("Sample_Person", properties=[
            Property("Id", MIType.UINT32, key=True), Property("Name", MIType.STRING),
            Property("Tags", MIType.STRINGA), Property("Born", MIType.DATETIME),
            Property("Level", MIType.UINT8, value=3)]),
        Class("Sample_Employee", "Sample_Person", [Property("Dept", MIType.STRING)]),
        Class("Sample_Manager", "Sample_Employee", [Property("Reports", MIType.UINT32)]),
        Class("Sample_Abstract", qualifiers={"Abstract": True},
              properties=[Property("Id", MIType.UINT32, key=True)]),
        Class("Sample_Keyless", properties=[Property("Name", MIType.STRING)]),
        Class("Sample_Calc", properties=[Property("Id", MIType.UINT32, key=True)], methods=[
            Method("Add", MIType.UINT32, [Parameter("A", MIType.SINT32), Parameter("B", MIType.SINT32),
                                          Parameter("Sum", MIType.SINT64, in_=False, out=True)],
                   qualifiers={"Static": True}),
            Method("Bad", MIType.UINT32, [], qualifiers={"Static": True}),
            Method("Wrong", MIType.UINT32, [], qualifiers={"Static": True}),
            Method("Reset", MIType.UINT32, [])]),
        Class("Sample_Proc", properties=[Property("Handle", MIType.UINT32, key=True),
                                         Property("Name", MIType.STRING)]),
        Class("Sample_Broken", properties=[Property("Id", MIType.UINT32, key=True)]),
    ])
    srv.register_provider(NS, "Sample_Calc", Calc())
    srv.register_provider(NS, "Sample_Proc", Procs())
    srv.register_provider(NS, "Sample_Broken", Broken())
    yield srv
    srv.close()


def run(server: openmi.Server, req: rq.Request, ctx: Context | None = None) -> list[Any]:
    """Call the request's handler directly (no Server.execute around it)."""
    return list(HANDLERS[type(req)](server, server.namespace(NS), req, ctx or Context()))


def fails(server: openmi.Server, req: rq.Request, result: MIResult, text: str = "",
          ctx: Context | None = None) -> MIError:
    with pytest.raises(MIError) as exc:
        run(server, req, ctx)
    assert exc.value.result == result, exc.value.message
    assert text in exc.value.message
    return exc.value


def person(pid: int, cls: str = "Sample_Person", **props: Any) -> openmi.Instance:
    return openmi.Instance(cls, {"Id": pid, **props})


def create(server: openmi.Server, inst: openmi.Instance) -> openmi.Instance:
    [out] = run(server, rq.CreateInstance(NS, instance=inst))
    return out  # type: ignore[no-any-return]


def enum(server: openmi.Server, cls: str, **kw: Any) -> list[openmi.Instance]:
    return run(server, rq.EnumerateInstances(NS, class_name=cls, **kw))


def test_every_request_kind_has_a_handler() -> None:
    kinds = {rq.GetInstance, rq.CreateInstance, rq.ModifyInstance, rq.DeleteInstance, rq.EnumerateInstances,
             rq.Invoke, rq.TestConnection, rq.GetClass, rq.EnumerateClasses}
    assert kinds <= set(HANDLERS)


# --- create ------------------------------------------------------------------------------------------


def test_create_types_values_fills_defaults_and_returns_the_stored_instance(server: openmi.Server) -> None:
    out = create(server, person(7, Name="Ada", Tags=["a"], Born="18151210000000.000000+000", Id="7"))
    assert (out.class_name, out.namespace) == ("Sample_Person", NS)
    assert out["Id"] == 7 and out["Level"] == 3  # typed key; the class default filled in
    assert out["Born"] == dt.datetime(1815, 12, 10, tzinfo=dt.timezone.utc)
    [got] = run(server, rq.GetInstance(NS, instance=person(7)))
    assert {el.name: el.value for el in got.elements} == {el.name: el.value for el in out.elements}


def test_create_errors_write_nothing(server: openmi.Server) -> None:
    create(server, person(1))
    fails(server, rq.CreateInstance(NS, instance=person(1, Name="again")), MIResult.ALREADY_EXISTS,
          "an instance of Sample_Person with Id=1 already exists in namespace root/cimv2")
    fails(server, rq.CreateInstance(NS, instance=person(2, "Sample_Abstract")), MIResult.INVALID_CLASS,
          "class Sample_Abstract is abstract")
    fails(server, rq.CreateInstance(NS, instance=openmi.Instance("Sample_Keyless", {"Name": "x"})),
          MIResult.INVALID_CLASS, "has no key properties")
    fails(server, rq.CreateInstance(NS, instance=openmi.Instance("Sample_Person", {"Name": "no key"})),
          MIResult.INVALID_PARAMETER, "key property 'Id' of class Sample_Person is missing")
    fails(server, rq.CreateInstance(NS, instance=person(3, Colour="red")), MIResult.NO_SUCH_PROPERTY, "'Colour'")
    fails(server, rq.CreateInstance(NS, instance=person(3, Level=1000)), MIResult.TYPE_MISMATCH, "'Level'")
    fails(server, rq.CreateInstance(NS, instance=person(3, "No_Such_Class")), MIResult.INVALID_CLASS,
          "'No_Such_Class' does not exist")
    fails(server, rq.CreateInstance(NS), MIResult.INVALID_PARAMETER, "CreateInstance needs an instance")
    fails(server, rq.CreateInstance(NS, instance={"Id": 1}), MIResult.INVALID_PARAMETER,  # type: ignore[arg-type]
          "needs an openmi.Instance, not dict")
    assert [p["Id"] for p in enum(server, "Sample_Person")] == [1]
    assert enum(server, "Sample_Person")[0]["Name"] is None  # the failed "again" changed nothing


def test_create_after_cancel_writes_nothing(server: openmi.Server) -> None:
    ctx = Context()
    ctx.cancel(CancellationReason.NONE)
    fails(server, rq.CreateInstance(NS, instance=person(5)), MIResult.FAILED, "cancelled", ctx)
    assert enum(server, "Sample_Person") == []


# --- get, modify, delete ------------------------------------------------------------------------------


def test_get_finds_an_instance_stored_under_a_subclass(server: openmi.Server) -> None:
    create(server, person(9, "Sample_Manager", Dept="Ops", Reports=4))
    [got] = run(server, rq.GetInstance(NS, instance=person(9)))
    assert got.class_name == "Sample_Manager" and got["Reports"] == 4
    [got] = run(server, rq.GetInstance(NS, instance=person(9, "Sample_Employee")))
    assert got["Dept"] == "Ops"


def test_get_errors(server: openmi.Server) -> None:
    fails(server, rq.GetInstance(NS, instance=person(1)), MIResult.NOT_FOUND,
          "no instance of Sample_Person with Id=1 in namespace root/cimv2")
    create(server, person(2))
    fails(server, rq.GetInstance(NS, instance=person(2, "Sample_Employee")), MIResult.NOT_FOUND)  # not upwards
    fails(server, rq.GetInstance(NS), MIResult.INVALID_PARAMETER, "GetInstance needs an instance")
    fails(server, rq.GetInstance(NS, instance=openmi.Instance("Sample_Person", {"Name": "x"})),
          MIResult.INVALID_PARAMETER, "key property 'Id'")


def test_modify_changes_the_values_given_and_keeps_the_rest(server: openmi.Server) -> None:
    create(server, person(9, "Sample_Employee", Name="Ada", Dept="R&D"))
    [out] = run(server, rq.ModifyInstance(NS, instance=person(9, Name="Grace")))  # addressed via the parent
    assert out.class_name == "Sample_Employee" and (out["Name"], out["Dept"]) == ("Grace", "R&D")
    [out] = run(server, rq.ModifyInstance(NS, instance=person(9, "Sample_Employee", Dept="Ops", Level=5)))
    assert (out["Name"], out["Dept"], out["Level"]) == ("Grace", "Ops", 5)
    [got] = run(server, rq.GetInstance(NS, instance=person(9)))
    assert (got["Name"], got["Dept"], got["Level"]) == ("Grace", "Ops", 5)


def test_modify_errors_and_rollback(server: openmi.Server) -> None:
    fails(server, rq.ModifyInstance(NS, instance=person(1, Name="x")), MIResult.NOT_FOUND, "Id=1")
    create(server, person(1, Name="Ada"))
    fails(server, rq.ModifyInstance(NS, instance=person(1, Nope="x")), MIResult.NO_SUCH_PROPERTY)
    fails(server, rq.ModifyInstance(NS, instance=person(1, Level=-1)), MIResult.TYPE_MISMATCH)
    fails(server, rq.ModifyInstance(NS), MIResult.INVALID_PARAMETER, "ModifyInstance needs an instance")
    ctx = Context()
    ctx.cancel(CancellationReason.NONE)  # cancelled inside the transaction: the row is left as it was
    fails(server, rq.ModifyInstance(NS, instance=person(1, Name="Grace")), MIResult.FAILED, "cancelled", ctx)
    assert run(server, rq.GetInstance(NS, instance=person(1)))[0]["Name"] == "Ada"


def test_delete_removes_the_row_once(server: openmi.Server) -> None:
    create(server, person(1))
    create(server, person(2, "Sample_Manager"))
    assert run(server, rq.DeleteInstance(NS, instance=person(2))) == []  # found under the subclass
    assert run(server, rq.DeleteInstance(NS, instance=person(1))) == []
    fails(server, rq.DeleteInstance(NS, instance=person(1)), MIResult.NOT_FOUND,
          "no instance of Sample_Person with Id=1 in namespace root/cimv2")
    assert enum(server, "Sample_Person") == []


def test_delete_errors(server: openmi.Server) -> None:
    create(server, person(1))
    ctx = Context()
    ctx.cancel(CancellationReason.NONE)
    fails(server, rq.DeleteInstance(NS, instance=person(1)), MIResult.FAILED, "cancelled", ctx)
    assert len(enum(server, "Sample_Person")) == 1  # still there
    fails(server, rq.DeleteInstance(NS), MIResult.INVALID_PARAMETER, "DeleteInstance needs an instance")
    fails(server, rq.DeleteInstance(NS, instance=person(1, "Nope")), MIResult.INVALID_CLASS)
    fails(server, rq.DeleteInstance(NS, instance=person(1, Extra=1)), MIResult.NO_SUCH_PROPERTY)


# --- enumerate -------------------------------------------------------------------------------------------


def test_enumerate_deep_shallow_and_keys_only(server: openmi.Server) -> None:
    create(server, person(3, "Sample_Manager", Reports=2))
    create(server, person(1, Name="Ada"))
    create(server, person(2, "Sample_Employee", Dept="Ops"))
    deep = enum(server, "Sample_Person")
    assert [(p.class_name, p["Id"]) for p in deep] == [
        ("Sample_Person", 1), ("Sample_Employee", 2), ("Sample_Manager", 3)]  # class by class, definition order
    shallow = enum(server, "Sample_Person", flags=int(OperationFlags.POLYMORPHISM_SHALLOW))
    assert [p["Id"] for p in shallow] == [1]
    keys = enum(server, "Sample_Employee", keys_only=True)
    assert [[el.name for el in p.elements] for p in keys] == [["Id"], ["Id"]]
    base = enum(server, "Sample_Person", flags=int(OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY))
    assert [p.class_name for p in base] == ["Sample_Person", "Sample_Employee", "Sample_Manager"]
    assert all(sorted(el.name for el in p.elements) == ["Born", "Id", "Level", "Name", "Tags"] for p in base)


def test_enumerate_errors(server: openmi.Server) -> None:
    fails(server, rq.EnumerateInstances(NS), MIResult.INVALID_PARAMETER, "EnumerateInstances needs a class name")
    fails(server, rq.EnumerateInstances(NS, class_name="Nope"), MIResult.INVALID_CLASS, "'Nope'")
    for i in range(3):
        create(server, person(i))
    ctx = Context()
    it = HANDLERS[rq.EnumerateInstances](server, server.namespace(NS),
                                         rq.EnumerateInstances(NS, class_name="Sample_Person"), ctx)
    assert next(it)["Id"] == 0
    ctx.cancel(CancellationReason.NONE)  # cancelled mid-way: the stream ends with FAILED
    with pytest.raises(MIError) as exc:
        next(it)
    assert exc.value.result == MIResult.FAILED and "cancelled" in exc.value.message


# --- providers -------------------------------------------------------------------------------------------


def test_provider_backed_class(server: openmi.Server) -> None:
    procs: Procs = server.namespace(NS).get("Sample_Proc").provider
    assert [(p["Handle"], p["Name"]) for p in enum(server, "Sample_Proc")] == [(1, "init"), (2, "sh")]
    [got] = run(server, rq.GetInstance(NS, instance=openmi.Instance("Sample_Proc", {"Handle": "2"})))
    assert got["Name"] == "sh" and got.namespace == NS
    assert procs.received[-1]["Handle"] == 2  # the provider gets the key typed by the class
    fails(server, rq.GetInstance(NS, instance=openmi.Instance("Sample_Proc", {"Handle": 9})), MIResult.NOT_FOUND,
          "no instance of Sample_Proc with Handle=9")
    [made] = run(server, rq.CreateInstance(NS, instance=openmi.Instance("Sample_Proc", {"Handle": "5", "Name": "x"})))
    assert procs.rows[5] == "x" and made["Handle"] == 5  # the typed copy, as the provider returned nothing
    assert run(server, rq.DeleteInstance(NS, instance=openmi.Instance("Sample_Proc", {"Handle": 5}))) == []
    fails(server, rq.DeleteInstance(NS, instance=openmi.Instance("Sample_Proc", {"Handle": 5})), MIResult.NOT_FOUND,
          "no process 5")
    fails(server, rq.ModifyInstance(NS, instance=openmi.Instance("Sample_Proc", {"Handle": 1, "Name": "y"})),
          MIResult.NOT_SUPPORTED, "the provider of class Sample_Proc does not implement modify_instance")


def test_a_provider_returning_a_non_instance_fails(server: openmi.Server) -> None:
    fails(server, rq.EnumerateInstances(NS, class_name="Sample_Broken"), MIResult.FAILED,
          "the provider of class Sample_Broken returned str from enumerate_instances, not an Instance")
    fails(server, rq.GetInstance(NS, instance=openmi.Instance("Sample_Broken", {"Id": 1})), MIResult.NOT_SUPPORTED,
          "does not implement get_instance")


# --- invoke ------------------------------------------------------------------------------------------------


def test_invoke_types_parameters_both_ways(server: openmi.Server) -> None:
    [out] = run(server, rq.Invoke(NS, class_name="Sample_Calc", method_name="Add", parameters={"A": "2", "B": 40}))
    assert out.class_name == "__PARAMETERS"
    assert {el.name: (el.value, el.type) for el in out.elements} == {
        "ReturnValue": (0, MIType.UINT32), "Sum": (42, MIType.SINT64)}
    calc: Calc = server.namespace(NS).get("Sample_Calc").provider
    assert calc.calls[-1] == ("Add", None, {"A": 2, "B": 40})
    # an instance method gets its target typed; a bare return value is ReturnValue
    [out] = run(server, rq.Invoke(NS, method_name="Reset", instance=openmi.Instance("Sample_Calc", {"Id": "3"})))
    assert out["ReturnValue"] == 7
    assert calc.calls[-1][1]["Id"] == 3


def test_invoke_errors(server: openmi.Server) -> None:
    fails(server, rq.Invoke(NS, class_name="Sample_Calc"), MIResult.INVALID_PARAMETER, "needs a class name")
    fails(server, rq.Invoke(NS, class_name="Sample_Calc", method_name="Nope"), MIResult.METHOD_NOT_FOUND,
          "class Sample_Calc in namespace root/cimv2 has no method 'Nope'")
    fails(server, rq.Invoke(NS, class_name="Sample_Calc", method_name="Reset"), MIResult.INVALID_PARAMETER,
          "method Sample_Calc.Reset is not static")
    fails(server, rq.Invoke(NS, class_name="Sample_Calc", method_name="Add", parameters={"Sum": 1}),
          MIResult.INVALID_PARAMETER, "has no input parameter 'Sum'")
    fails(server, rq.Invoke(NS, class_name="Sample_Calc", method_name="Add", parameters={"A": "x"}),
          MIResult.TYPE_MISMATCH)
    fails(server, rq.Invoke(NS, class_name="Sample_Calc", method_name="Add", parameters=[1]),  # type: ignore[arg-type]
          MIResult.INVALID_PARAMETER, "must be an Instance or a mapping")
    fails(server, rq.Invoke(NS, class_name="Sample_Calc", method_name="Bad"), MIResult.FAILED,
          "returned 'Nope', which is not an output parameter of Bad")
    fails(server, rq.Invoke(NS, class_name="Sample_Calc", method_name="Wrong"), MIResult.FAILED,
          "the provider of Sample_Calc.Wrong returned a bad value")
    server.define_class(NS, Class("Sample_NoProvider", methods=[Method("Go", qualifiers={"Static": True})]))
    fails(server, rq.Invoke(NS, class_name="Sample_NoProvider", method_name="Go"), MIResult.NOT_SUPPORTED,
          "class Sample_NoProvider has no provider, so its method Go cannot run")


# --- classes and test connection ---------------------------------------------------------------------------


def test_get_class_returns_a_copy_in_the_namespace(server: openmi.Server) -> None:
    [cls] = run(server, rq.GetClass(NS, class_name="sample_employee"))
    assert (cls.name, cls.superclass, cls.namespace) == ("Sample_Employee", "Sample_Person", NS)
    assert list(cls.properties) == ["Id", "Name", "Tags", "Born", "Level", "Dept"]
    cls.properties["Dept"].value = "changed"  # the caller's copy, not the registry's
    assert run(server, rq.GetClass(NS, class_name="Sample_Employee"))[0].properties["Dept"].value is None
    fails(server, rq.GetClass(NS, class_name="Nope"), MIResult.INVALID_CLASS)


def test_enumerate_classes(server: openmi.Server) -> None:
    names = [c.name for c in run(server, rq.EnumerateClasses(NS, class_names_only=True))]
    assert names[:3] == ["Sample_Person", "Sample_Employee", "Sample_Manager"]
    under = run(server, rq.EnumerateClasses(NS, class_name="Sample_Person"))
    assert [(c.name, c.superclass) for c in under] == [("Sample_Employee", "Sample_Person"),
                                                       ("Sample_Manager", "Sample_Employee")]
    assert "Reports" in under[1].properties  # full classes unless names only
    shallow = run(server, rq.EnumerateClasses(NS, class_name="Sample_Person",
                                              flags=int(OperationFlags.POLYMORPHISM_SHALLOW)))
    assert [c.name for c in shallow] == ["Sample_Employee"]
    only = run(server, rq.EnumerateClasses(NS, class_name="Sample_Person", class_names_only=True))
    assert all(not c.properties for c in only)
    fails(server, rq.EnumerateClasses(NS, class_name="Nope"), MIResult.INVALID_CLASS)


def test_test_connection_yields_nothing_or_fails_when_cancelled(server: openmi.Server) -> None:
    assert run(server, rq.TestConnection()) == []
    ctx = Context()
    ctx.cancel(CancellationReason.NONE)
    fails(server, rq.TestConnection(), MIResult.FAILED, "cancelled", ctx)

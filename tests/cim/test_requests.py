"""Request records: frozen, built in one step, and checking their own flags."""

from __future__ import annotations

import dataclasses

import pytest

from openmi.cim import Instance, MIError, MIResult, OperationFlags
from openmi.cim import requests as rq

ALL_KINDS: list[type[rq.Request]] = [
    rq.GetInstance, rq.CreateInstance, rq.ModifyInstance, rq.DeleteInstance, rq.EnumerateInstances,
    rq.Invoke, rq.GetClass, rq.EnumerateClasses, rq.TestConnection,
]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_records_are_frozen(kind: type[rq.Request]) -> None:
    record = kind("root/cimv2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.namespace = "root/other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        record.options["x"] = 1  # type: ignore[index]


def test_options_are_copied_in_and_cannot_change_after() -> None:
    given = {"Depth": 2}
    record = rq.GetInstance("root/cimv2", instance=Instance("X"), options=given)
    given["Depth"] = 3
    assert dict(record.options) == {"Depth": 2}
    assert rq.GetInstance("root/cimv2", options={}).options is rq.NO_OPTIONS


@pytest.mark.parametrize("kind", [rq.DeleteInstance, rq.TestConnection])
def test_delete_and_test_connection_take_no_flags(kind: type[rq.Request]) -> None:
    with pytest.raises(MIError) as info:
        kind(flags=int(OperationFlags.POLYMORPHISM_SHALLOW))
    assert info.value.result == MIResult.INVALID_PARAMETER
    assert f"{kind.name} takes no flags" in info.value.message


@pytest.mark.parametrize("flags", [0x1000, 0x10000, -1])
def test_unknown_flags_are_refused(flags: int) -> None:
    with pytest.raises(MIError, match="unknown operation flags") as info:
        rq.GetInstance(flags=flags)
    assert info.value.result == MIResult.INVALID_PARAMETER


@pytest.mark.parametrize("flags", [None, "1", 1.0, True])
def test_flags_must_be_an_int(flags: object) -> None:
    with pytest.raises(MIError, match="must be an int"):
        rq.GetInstance(flags=flags)  # type: ignore[arg-type]


def test_every_known_flag_is_taken() -> None:
    for flag in OperationFlags.__members__.values():
        assert rq.EnumerateInstances(class_name="X", flags=int(flag)).flags == int(flag)
    combined = rq.EnumerateInstances(flags=OperationFlags.POLYMORPHISM_DEEP_BASE_PROPS_ONLY | OperationFlags.NO_RTTI)
    assert type(combined.flags) is int and combined.flags == 0x0580


def test_kinds_say_how_they_answer() -> None:
    assert [k.single for k in ALL_KINDS] == [True, True, True, True, False, True, True, False, True]
    assert {k.result_kind for k in ALL_KINDS if k.name.endswith("Class") or k.name.endswith("Classes")} == {"class"}
    assert rq.EnumerateInstances.result_kind == "instance"

"""Every MI type round-trips through an instance and the repository, with range and type checks."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIType
from openmi.cim.values import coerce, format_datetime, parse_datetime

UTC5 = dt.timezone(dt.timedelta(hours=-5))
REF = openmi.Instance("Sample_Ref", {"Key": 1})
EMB = openmi.Instance("Sample_Embedded", {"Text": "inside", "N": 3})

SAMPLES: list[tuple[MIType, Any]] = [
    (MIType.BOOLEAN, True),
    (MIType.UINT8, 255),
    (MIType.SINT8, -128),
    (MIType.UINT16, 65535),
    (MIType.SINT16, -32768),
    (MIType.UINT32, 2**32 - 1),
    (MIType.SINT32, -(2**31)),
    (MIType.UINT64, 2**64 - 1),
    (MIType.SINT64, -(2**63)),
    (MIType.REAL32, 1.5),
    (MIType.REAL64, math.pi),
    (MIType.CHAR16, "Ж"),
    (MIType.DATETIME, dt.datetime(2024, 2, 29, 13, 14, 15, 123456, tzinfo=UTC5)),
    (MIType.DATETIME, dt.timedelta(days=12345, hours=1, minutes=2, seconds=3, microseconds=4)),
    (MIType.STRING, "héllo \"world\" <&>"),
    (MIType.REFERENCE, REF),
    (MIType.INSTANCE, EMB),
]

ARRAYS: list[tuple[MIType, Any]] = [(t.array, [v, v]) for t, v in SAMPLES]

OUT_OF_RANGE = [
    (MIType.UINT8, 256), (MIType.UINT8, -1), (MIType.SINT8, 128), (MIType.SINT8, -129),
    (MIType.UINT16, 65536), (MIType.SINT16, 32768), (MIType.UINT32, 2**32), (MIType.SINT32, 2**31),
    (MIType.UINT64, 2**64), (MIType.UINT64, -1), (MIType.SINT64, 2**63), (MIType.REAL32, 1e39),
    (MIType.CHAR16, "ab"), (MIType.CHAR16, 70000), (MIType.DATETIME, "2024-01-01"),
    (MIType.DATETIME, dt.timedelta(seconds=-1)), (MIType.UINT8A, [1, 300]),
]

WRONG_TYPE = [
    (MIType.UINT32, "7"), (MIType.UINT32, 7.0), (MIType.UINT32, True), (MIType.BOOLEAN, 1),
    (MIType.STRING, 5), (MIType.REAL64, "1.0"), (MIType.REFERENCE, 5), (MIType.INSTANCE, {"a": 1}),
    (MIType.UINT32A, 5), (MIType.STRINGA, "abc"), (MIType.UINT32A, [1, None]),
]


@pytest.mark.parametrize("mitype,value", SAMPLES + ARRAYS, ids=lambda x: getattr(x, "name", None) or "")
def test_round_trip_through_repository(tmp_path: Path, mitype: MIType, value: Any) -> None:
    cls = openmi.Class("Sample_Value", properties=[
        openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("V", mitype)])
    path = tmp_path / "r.db"
    with openmi.Server(path) as srv, openmi.Application() as app:
        srv.define_class("root/cimv2", cls)
        s = app.new_session(server=srv)
        inst = app.new_instance("Sample_Value")
        inst.add_element("Id", 1, MIType.UINT32, openmi.MIFlag.KEY)
        inst.add_element("V", value, mitype)
        s.create(inst)
    with openmi.Server(path) as srv, openmi.Application() as app:
        got = app.new_session(server=srv).get(inst)
        el = got.get_element("V")
        assert el.type == mitype
        assert el.value == value
        assert got == inst


@pytest.mark.parametrize("mitype,value", OUT_OF_RANGE)
def test_out_of_range_raises_value_error_naming_the_element(mitype: MIType, value: Any) -> None:
    inst = openmi.Instance("X")
    with pytest.raises(ValueError, match="'Size"):
        inst.add_element("Size", value, mitype)


@pytest.mark.parametrize("mitype,value", WRONG_TYPE)
def test_wrong_python_type_raises_type_error_naming_the_element(mitype: MIType, value: Any) -> None:
    inst = openmi.Instance("X")
    with pytest.raises(TypeError, match="'Size"):
        inst.add_element("Size", value, mitype)


def test_setitem_uses_the_element_type() -> None:
    inst = openmi.Instance("X")
    inst.add_element("N", 1, MIType.UINT8)
    inst["n"] = 200
    assert inst["N"] == 200
    with pytest.raises(ValueError, match="'N'"):
        inst["N"] = 256
    with pytest.raises(TypeError, match="'N'"):
        inst["N"] = "text"


def test_inferred_types() -> None:
    inst = openmi.Instance("X", {"s": "a", "i": 1, "b": False, "f": 1.0, "d": dt.timedelta(1), "l": [1, 2]})
    assert [el.type for el in inst.elements] == [MIType.STRING, MIType.SINT64, MIType.BOOLEAN, MIType.REAL64,
                                                 MIType.DATETIME, MIType.SINT64A]
    # a path is a reference (an invoke's REF parameter goes out as an EPR), another instance an embedded object
    ref = openmi.Reference("MSFT_Person", {"Key": 10})
    more = openmi.Instance("X", {"r": ref, "rs": [ref], "e": openmi.Instance("Y", {"a": 1})})
    assert [el.type for el in more.elements] == [MIType.REFERENCE, MIType.REFERENCEA, MIType.INSTANCE]


def test_instance_from_class_types_values() -> None:
    cls = openmi.Class("C", properties=[openmi.Property("Id", MIType.UINT16, key=True),
                                        openmi.Property("Name", MIType.STRING, value="dflt")])
    app = openmi.Application()
    inst = app.new_instance_from_class("C", cls)
    assert inst["Name"] == "dflt" and inst["Id"] is None
    assert inst.get_element("Id").key
    inst["Id"] = 3
    assert inst.get_element("Id").type == MIType.UINT16
    with pytest.raises(openmi.MIError) as ei:
        inst["Nope"] = 1
    assert ei.value.result == openmi.MIResult.NO_SUCH_PROPERTY


def test_datetime_text_forms() -> None:
    ts = parse_datetime("20240102030405.000006+060")
    assert isinstance(ts, dt.datetime) and ts.utcoffset() == dt.timedelta(hours=1)
    assert format_datetime(ts) == "20240102030405.000006+060"
    iv = parse_datetime("00000010020304.500000:000")
    assert iv == dt.timedelta(days=10, hours=2, minutes=3, seconds=4, microseconds=500000)
    assert format_datetime(iv) == "00000010020304.500000:000"
    assert coerce("20240102030405.000006-300", MIType.DATETIME) == parse_datetime("20240102030405.000006-300")
    for bad in ("20241302030405.000000+000", "00000000250000.000000:000", "yesterday"):
        with pytest.raises(ValueError):
            parse_datetime(bad)


def test_null_element_flags() -> None:
    inst = openmi.Instance("X")
    inst.add_element("N", None, MIType.UINT32)
    assert inst.get_element("N").flags & openmi.MIFlag.NULL
    name, value, mitype, _flags = inst.get_element("N")
    assert (name, value, mitype) == ("N", None, MIType.UINT32)


def test_duplicate_element_is_already_exists() -> None:
    inst = openmi.Instance("X", {"a": 1})
    with pytest.raises(openmi.MIError) as ei:
        inst.add_element("A", 2, MIType.UINT8)
    assert ei.value.result == openmi.MIResult.ALREADY_EXISTS


def test_result_codes_are_mi_h_values() -> None:
    assert [r.value for r in openmi.MIResult] == list(range(18)) + list(range(20, 29))
    assert openmi.MIResult.SERVER_IS_SHUTTING_DOWN == 28
    assert len(openmi.MIType) == 32 and openmi.MIType.INSTANCEA == openmi.MIType.INSTANCE | 0x10
    assert openmi.MIFlag.KEY == 0x1000 and openmi.MIFlag.NULL == 1 << 29

"""Checking and compiling queries against a class: OMI's Test14/Test16 vectors (spec §1.6) and WMI's rules (§1.3)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from openmi import Class, Instance, MIResult, MIType, Property
from openmi.cim.query import CompiledQuery, QueryError, SelectQuery, compile_query, parse

VOLUME = Class("CIM_StorageVolume", properties=[Property("Id", MIType.UINT32, key=True),
                                                 Property("Count", MIType.UINT32)])
SPECIAL = Class("CIM_SpecialVolume", "CIM_StorageVolume", [Property("Extra", MIType.STRING)])
T = Class("Test", properties=[
    Property("Key", MIType.UINT32, key=True),
    Property("Sint8S", MIType.SINT8), Property("Uint8S", MIType.UINT8), Property("Uint64S", MIType.UINT64),
    Property("Real32S", MIType.REAL32), Property("Real64S", MIType.REAL64), Property("Char16S", MIType.CHAR16),
    Property("DatetimeS", MIType.DATETIME), Property("StringS", MIType.STRING), Property("StringL", MIType.STRING),
    Property("NullStr", MIType.STRING), Property("BoolS", MIType.BOOLEAN), Property("Tags", MIType.STRINGA),
    Property("SourceInstance", MIType.INSTANCE, qualifiers={"EmbeddedInstance": "CIM_StorageVolume"}),
    Property("Anything", MIType.INSTANCE),
    Property("Other", MIType.REFERENCE, reference_class="CIM_StorageVolume"),
])
CLASSES = {c.name.lower(): c for c in (VOLUME, SPECIAL, T)}


def lookup(name: str) -> Class | None:
    c = CLASSES.get(name.lower())
    if c is None:
        return None
    if c.superclass:   # resolved: inherited properties too
        base = lookup(c.superclass)
        assert base is not None
        return Class(c.name, c.superclass, [*base.properties.values(), *c.properties.values()])
    return c


def instance() -> Instance:
    vol = Instance("CIM_StorageVolume", {"Id": 1, "Count": 10}, cls=VOLUME)
    return Instance("Test", {
        "Key": 1, "Sint8S": -8, "Uint8S": 8, "Uint64S": 64, "Real32S": 32.0, "Real64S": 64.0, "Char16S": "x",
        "DatetimeS": "20101231120000.123456+360", "StringS": "STRING", "StringL": "Begin_%End",
        "BoolS": True, "Tags": ["a", "b"], "SourceInstance": vol, "Anything": vol,
        "Other": Instance("CIM_StorageVolume", {"Id": 3}, cls=VOLUME, namespace="root/cimv2"),
    }, cls=T, namespace="root/test")


def cq(where: str, cls: Class = T) -> CompiledQuery:
    q = parse(f"SELECT * FROM {cls.name} WHERE {where}")
    assert isinstance(q, SelectQuery)
    return compile_query(q, cls, lookup=lookup)


def check(where: str, inst: Instance | None = None) -> int:
    """OMI's encoding: 0 = match, 1 = no match, -1 = error."""
    try:
        c = cq(where)
    except QueryError:
        return -1
    i = inst or instance()
    got = c.matches(i)
    if c.row_predicate is not None:   # the stored-row form must agree with the instance form
        row = {el.name: _json(el.value, el.type) for el in i.elements if el.value is not None}
        assert c.row_predicate(row, i.class_name) == got, where
    return 0 if got else 1


def _json(v: Any, t: MIType) -> Any:
    from openmi.engine.encoding import value_to_json
    return value_to_json(v, t)


TEST16 = [
    ("Sint8S = -8", 0), ("Uint64S = 64", 0), ("Real32S = 32.0", 0), ("Real64S = 65.0", 1),
    ('StringS = "STRING"', 0), ('DatetimeS = "20101231120000.123456+360"', 0),
    ('DatetimeS <> "20101231120000.123456+360"', 1), ("NullStr = NULL", 0), ("DatetimeS <> NULL", 0),
    ("DatetimeS != NULL", 0), ("NullStr = NullStr", 0), ("NULL = NULL", 0), ('StringS LIKE "s_r%"', 0),
    ('StringL like "%END"', 0), ('StringL like "begin%"', 0), ('StringL like "begin\\_\\%END"', 0),
    ("SourceInstance ISA CIM_StorageVolume", 0), ("NOT SourceInstance ISA CIM_StorageVolume", 1),
    ("SourceInstance ISA CIM_XYZ", 1), ("SourceInstance.CIM_StorageVolume::Count = 10", 0),
    ("SourceInstance.Count = 10", 0), ("SourceInstance.Count = 11", 1),
    ("SourceInstance.CIM_StorageVolume::Count = 11", 1), ("SourceInstance.NoSuchClass::Count = 10", -1),
    ("Sint8S = -8 AND SourceInstance.CIM_StorageVolume::Count = 10", 0),
    # the same through an embedded object whose class the schema does not declare: checked at run time
    ("Anything.Count = 10", 0), ("Anything.Count = 11", 1), ("Anything.Count > 9", 0),
    ("Anything.CIM_StorageVolume::Count = 10", 0), ("Anything.CIM_SpecialVolume::Count = 10", 1),
    ("Anything.NoSuchProp = 10", 1), ("NOT Anything.NoSuchProp = 10", 1), ("Anything.Count IS NOT NULL", 0),
]


@pytest.mark.parametrize(("where", "expected"), TEST16)
def test_omi_test16(where: str, expected: int) -> None:
    assert check(where) == expected


# Test14's lookup (A=1, B="B", C=TRUE, D=1.5, E=NULL) as a class; X ISA Y through an embedded Y.
T14 = Class("T14", properties=[Property("A", MIType.SINT32, key=True), Property("B", MIType.STRING),
                               Property("C", MIType.BOOLEAN), Property("D", MIType.REAL64),
                               Property("E", MIType.STRING), Property("X", MIType.INSTANCE)])
TEST14 = [
    ("A > 1", 1), ("A > 0", 0), ("A = 1", 0), ("A = 0", 1), ("A <> 0", 0), ("A >= 0", 0), ("A <= 1", 0),
    ('A = 1 AND B = "B"', 0), ("C = TRUE", 0), ("D >= 1.0", 0), ("E = NULL", 0), ("A <> NULL", 0),
    ("E <> NULL", 1), ("A = NULL", 1), ("X ISA Y", 0),
]


@pytest.mark.parametrize(("where", "expected"), TEST14)
def test_omi_test14(where: str, expected: int) -> None:
    i = Instance("T14", {"A": 1, "B": "B", "C": True, "D": 1.5, "X": Instance("Y", {"Z": 1})}, cls=T14)
    c = compile_query(parse(f"SELECT * FROM T14 WHERE {where}"), T14)  # type: ignore[arg-type]
    assert (0 if c.matches(i) else 1) == expected
    assert compile_query(parse("SELECT * FROM T14"), T14).matches(i)  # type: ignore[arg-type]


WMI_RULES = [
    # case-insensitive strings and ordering
    ("StringS = 'string'", 0), ("StringS <> 'String'", 1), ("StringS > 'strinf'", 0), ("StringS < 'STRINH'", 0),
    ("'string' = StringS", 0), ("Char16S = 'X'", 0),
    # numbers across types; a quoted number for a numeric property
    ("Uint8S = 8.0", 0), ("Uint8S < 8.5", 0), ("Real64S = 64", 0), ("Real64S > 63", 0), ("Uint8S = '8'", 0),
    ("8 = Uint8S", 0), ("9 > Uint8S", 0), ("Uint8S >= Sint8S", 0), ("Real32S < Real64S", 0),
    # booleans: TRUE/FALSE, 1/0, 'true'
    ("BoolS = TRUE", 0), ("BoolS = 1", 0), ("BoolS = 0", 1), ("BoolS <> FALSE", 0), ("BoolS = 'True'", 0),
    # datetimes compare as instants: 12:00 at +360 is 06:00 UTC
    ("DatetimeS = '20101231060000.123456+000'", 0), ("DatetimeS > '20101231055959.000000+000'", 0),
    ("DatetimeS < '20101231055959.000000+000'", 1),
    # NULL: = false, <> true; ordering unknown, and unknown stays unmatched under NOT
    ("NullStr = 'x'", 1), ("NullStr <> 'x'", 0), ("NullStr < 'x'", 1), ("NOT NullStr < 'x'", 1),
    ("NullStr IS NULL", 0), ("NullStr IS NOT NULL", 1), ("NOT NullStr IS NULL", 1), ("NullStr LIKE '%'", 1),
    ("NOT NullStr LIKE 'a%'", 0), ("Tags IS NOT NULL", 0),
    # logic and precedence
    ("NOT Uint8S > 1 OR Sint8S < 0 AND StringS = 'x'", 1), ("NOT (Uint8S > 1 OR Sint8S < 0) OR BoolS = 1", 0),
    ("NOT NOT Uint8S = 8", 0), ("(Uint8S = 8 OR Uint8S = 9) AND NOT (StringS LIKE '%z%')", 0),
    ("2 > 1", 0), ("1 > 2", 1), ("'a' LIKE 'A'", 0),
    # system properties
    ("__CLASS = 'test'", 0), ("__CLASS = 'Other'", 1), ("__GENUS = 2", 0), ("__NAMESPACE = 'root/test'", 0),
    ("__RELPATH = 'Test.Key=1'", 0), ("__PATH LIKE '%:Test.Key=1'", 0), ("__SERVER IS NULL", 0),
    ("__SUPERCLASS IS NULL", 0), ("__PROPERTY_COUNT = 16", 0),
    # references compare with = and <> against a path
    ("Other = 'CIM_StorageVolume.Id=3'", 0), ("Other = 'root/cimv2:cim_storagevolume.id=3'", 0),
    ("Other <> 'CIM_StorageVolume.Id=4'", 0), ("Other = '\\\\\\\\srv\\\\root\\\\cimv2:CIM_StorageVolume.Id=3'", 0),
    ("Other = 'root/other:CIM_StorageVolume.Id=3'", 1),
    # LIKE on a number without wildcards is "="
    ("Uint8S LIKE '8'", 0),
]


@pytest.mark.parametrize(("where", "expected"), WMI_RULES)
def test_wmi_rules(where: str, expected: int) -> None:
    assert check(where) == expected


@pytest.mark.parametrize(("where", "column", "message"), [
    ("Nmae = 'x'", 26, "unknown property 'Nmae' of Test"),
    ("StringS = 5", 36, "is a string; 5 is not"),
    ("Uint8S = 'eight'", 35, "is a number; 'eight' is not one"),
    ("Uint8S = TRUE", 35, "is a number; TRUE is not one"),
    ("BoolS < TRUE", 34, "boolean; it compares with = or <> only"),
    ("BoolS >= 0", 35, "boolean; it compares with = or <> only"),
    ("BoolS = 2", 34, "is not TRUE, FALSE, 0 or 1"),
    ("Tags = 'a'", 33, "is an array; WQL does not compare arrays"),
    ("SourceInstance = 'x'", 43, "is an embedded object"),
    ("Other < 'x'", 34, "reference; it compares with = or <> only"),
    ("Other = 'X.'", 34, "is not an object path: no key bindings"),
    ("DatetimeS = 'yesterday'", 38, "is not a DMTF datetime"),
    ("DatetimeS = 5", 38, "compare it with a DMTF datetime string"),
    ("StringS LIKE 5", None, "expected a quoted pattern"),
    ("Uint8S LIKE '8%'", 33, "LIKE with wildcards needs a string"),
    ("StringS ISA Foo", 34, "not an embedded object"),
    ("StringS.Len = 1", 34, "not an embedded object, so it has no property 'Len'"),
    ("SourceInstance.Nope = 1", 41, "unknown property 'Nope' of CIM_StorageVolume"),
    ("SourceInstance.Count = 'x'", 49, "is a number"),
    ("__FOO = 1", 26, "unknown system property '__FOO'"),
    ("StringS = Uint8S", 34, "do not compare"),
    ("Tags = Tags", 26, "cannot be compared with another property"),
    ("SourceInstance.Count = Uint8S", 47, "embedded property can only be compared with a constant"),
    ("'a' = 1", 32, "is a string; 1 is not"),
])
def test_type_errors_point_at_the_token(where: str, column: int | None, message: str) -> None:
    with pytest.raises(QueryError) as ei:
        cq(where)
    assert ei.value.result == MIResult.INVALID_QUERY
    assert message in ei.value.reason
    if column is not None:
        assert ei.value.column == column, ei.value.message


def test_select_list_and_projection() -> None:
    q = parse("SELECT stringS, Uint8S, __PATH FROM Test")
    assert isinstance(q, SelectQuery)
    c = compile_query(q, T)
    assert c.properties == ("StringS", "Uint8S")
    p = c.project(instance())
    assert list(p) == ["Key", "Uint8S", "StringS"] and p["StringS"] == "STRING" and p.namespace == "root/test"
    assert compile_query(parse("SELECT * FROM Test"), T).project(instance()) is not None  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="column 13: unknown property 'Nmae' of Test"):
        compile_query(parse("SELECT Key, Name FROM Test".replace("Name", "Nmae")), T)  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="selects from Other, not Test"):
        compile_query(parse("SELECT * FROM Other"), T)  # type: ignore[arg-type]


def test_key_values_for_lookup() -> None:
    assert cq("Key = 7").key_values == {"Key": 7}
    assert cq("Uint8S > 1 AND 7 = Key").key_values == {"Key": 7}
    assert cq("Key = 7.0").key_values == {"Key": 7}
    assert cq("Key = '7'").key_values == {"Key": 7}
    assert cq("Key = 7.5").key_values is None
    assert cq("Key = 7 OR Key = 8").key_values is None
    assert cq("NOT Key = 7").key_values is None
    assert cq("Key > 7").key_values is None
    assert cq("Key = 7 AND Key = 8").key_values is None
    named = Class("Named", properties=[Property("Name", MIType.STRING, key=True),
                                       Property("N", MIType.UINT8, key=True)])
    c = compile_query(parse("SELECT * FROM Named WHERE Name = '42' AND N = 1"), named)  # type: ignore[arg-type]
    assert c.key_values == {"Name": "42", "N": 1}
    # a name with letters matches every case variant: no single stored key to look up
    c = compile_query(parse("SELECT * FROM Named WHERE Name = 'Ada' AND N = 1"), named)  # type: ignore[arg-type]
    assert c.key_values is None


def test_polymorphic_instances_and_isa_through_superclasses() -> None:
    special = Instance("CIM_SpecialVolume", {"Id": 2, "Count": 10, "Extra": "e"})
    i = instance()
    i["Anything"] = special
    assert check("Anything ISA CIM_StorageVolume", i) == 0
    assert check("Anything ISA 'CIM_SpecialVolume'", i) == 0
    assert check("Anything.CIM_StorageVolume::Count = 10", i) == 0
    v = compile_query(parse("SELECT * FROM CIM_StorageVolume WHERE __SUPERCLASS = 'cim_storagevolume' "  # type: ignore[arg-type]
                            "AND __DERIVATION IS NOT NULL AND __DYNASTY = 'CIM_StorageVolume'"),
                      VOLUME, lookup=lookup)
    assert v.matches(special)
    assert not v.matches(Instance("CIM_StorageVolume", {"Id": 1}))


def test_naive_datetimes_compare_as_utc() -> None:
    i = instance()
    i["DatetimeS"] = dt.datetime(2010, 12, 31, 6, 0, 0, 123456)
    assert check("DatetimeS = '20101231060000.123456+000'", i) == 0
    i["DatetimeS"] = dt.timedelta(days=1)
    assert check("DatetimeS = '00000001000000.000000:000'", i) == 0
    assert check("DatetimeS > '20101231060000.123456+000'", i) == 1
    assert check("NOT DatetimeS > '20101231060000.123456+000'", i) == 1


def test_row_predicate_only_for_plain_properties() -> None:
    assert cq("StringS = 'x' AND __CLASS = 'Test'").row_predicate is not None
    assert cq("SourceInstance.Count = 1").row_predicate is None
    assert cq("__PATH = 'x'").row_predicate is None
    assert cq("Other = 'x'").row_predicate is None

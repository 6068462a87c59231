"""The WQL/CQL parser: the shapes of spec §1.6 (OMI's test_wql.cpp), WMI's forms, and its errors."""

from __future__ import annotations

import pytest

from openmi import MIResult
from openmi.cim.query import (
    MAX_NESTING,
    MAX_QUERY_LENGTH,
    And,
    AssocQuery,
    Comparison,
    Expr,
    Isa,
    IsNull,
    Like,
    Literal,
    Not,
    Or,
    PropertyRef,
    QueryError,
    SelectQuery,
    dialect_name,
    parse,
)


def postfix(e: Expr | None) -> str:
    """OMI's postfix notation for a condition, to compare with test_wql.cpp's expectations."""
    if e is None:
        return ""
    if isinstance(e, Comparison):
        return f"{_op(e.left)} {_op(e.right)} {e.op}"
    if isinstance(e, Not):
        return f"{postfix(e.operand)} NOT"
    if isinstance(e, (And, Or)):
        word = "AND" if isinstance(e, And) else "OR"
        out = postfix(e.operands[0])
        for x in e.operands[1:]:
            out += f" {postfix(x)} {word}"
        return out
    if isinstance(e, IsNull):
        return f"{_op(e.operand)} NULL {'<>' if e.negated else '='}"
    if isinstance(e, Like):
        return f"{_op(e.operand)} {e.pattern!r} LIKE"
    assert isinstance(e, Isa)
    return f"{e.operand.text} {e.class_name} ISA"


def _op(o: PropertyRef | Literal) -> str:
    if isinstance(o, PropertyRef):
        return o.text
    if o.kind == "boolean":
        return "TRUE" if o.value else "FALSE"
    if o.kind == "null":
        return "NULL"
    return repr(o.value) if o.kind == "string" else str(o.value)


def sel(text: str, dialect: str = "WQL") -> SelectQuery:
    q = parse(text, dialect)
    assert isinstance(q, SelectQuery)
    return q


def test_omi_precedence_vectors() -> None:
    q = sel("SELECT A,B,C FROM X WHERE NOT A > 1 OR B < 1 AND C > 3")
    assert [p.name for p in q.properties or ()] == ["A", "B", "C"]
    assert postfix(q.where) == "A 1 > NOT B 1 < C 3 > AND OR"
    assert postfix(sel("SELECT A,B,C FROM X WHERE (A>10) AND (A<30) OR (B>40)").where) == \
        "A 10 > A 30 < AND B 40 > OR"
    assert postfix(sel("SELECT A,B,C FROM X WHERE (A>10) OR (A<30) AND (B>40)").where) == \
        "A 10 > A 30 < B 40 > AND OR"


def test_omi_literal_vectors() -> None:
    q = sel("SELECT * FROM CLASS1")
    assert q.properties is None and q.where is None and q.class_name == "CLASS1"
    w = sel('SELECT Name FROM Animal WHERE Name = "Fido"').where
    assert isinstance(w, Comparison) and w.right == Literal("Fido", "string", 38)
    w = sel("SELECT * FROM X WHERE NAME='Wilma \"F\"'").where
    assert isinstance(w, Comparison) and w.right.value == 'Wilma "F"'  # type: ignore[union-attr]
    w = sel('select * from x where a = "one \\"two\\" three"').where
    assert isinstance(w, Comparison) and w.right.value == 'one "two" three'  # type: ignore[union-attr]
    w = sel("SELECT * FROM X WHERE A > 1.0").where
    assert isinstance(w, Comparison) and w.right == Literal(1.0, "real", 27)
    assert postfix(sel("SELECT * FROM X WHERE A = TRUE").where) == "A TRUE ="
    assert postfix(sel("SELECT * FROM X WHERE NOT A = TRUE").where) == "A TRUE = NOT"


@pytest.mark.parametrize("text", [
    "select * from CIM_Indication where",
    "SELECT * FROM",
    "SELECT FROM X",
    "SELECT * FROM X WHERE A >",
    "SELECT * FROM X WHERE A = 'unterminated",
    "SELECT * FROM X WHERE (A = 1",
    "SELECT * FROM X WHERE A = 1)",
    "SELECT * FROM X, Y",
    "SELECT * FROM X WHERE A && B",
    "SELECT * FROM X WHERE A = 1e",
    "SELECT * FROM X WHERE 1e3x = 2",
    "SELECT * FROM X WHERE A IS 5",
    "SELECT * FROM X WHERE A >= NULL",
    "SELECT * FROM X WHERE A LIKE 5",
    "SELECT * FROM X WHERE 5 ISA Y",
    "SELECT * FROM SELECT",
    "DELETE FROM X",
    "",
])
def test_syntax_errors_are_invalid_query(text: str) -> None:
    with pytest.raises(QueryError) as ei:
        parse(text)
    assert ei.value.result == MIResult.INVALID_QUERY


def test_error_points_at_the_column() -> None:
    with pytest.raises(QueryError) as ei:
        parse("SELECT * FROM X WHERE A = 1 AND B ~ 2")
    assert ei.value.column == 35
    assert str(ei.value.message).startswith("column 35: unexpected character '~'")
    with pytest.raises(QueryError, match=r"column 26: expected a property or a constant, found the end"):
        parse("SELECT * FROM X WHERE A =")


def test_cql_refuses_like_and_wql_only_forms() -> None:
    with pytest.raises(QueryError, match="LIKE is not supported in CQL"):
        parse('SELECT * from A WHERE StringS LIKE "s_r%"', "CQL")
    with pytest.raises(QueryError, match="ASSOCIATORS OF is WQL"):
        parse("ASSOCIATORS OF {X.Id=1}", "CQL")
    with pytest.raises(QueryError, match="WITHIN is WQL"):
        parse("SELECT * FROM X WITHIN 5", "DMTF:CQL")
    q = sel("SELECT * FROM CIM_Indication WHERE A = 1 AND B IS NOT NULL", "cql")
    assert q.dialect == "CQL"
    with pytest.raises(ValueError):
        parse("SELECT * FROM X", "XPath")


def test_wmi_forms() -> None:
    w = sel("SELECT * FROM X WHERE A IS NULL OR B IS NOT NULL").where
    assert postfix(w) == "A NULL = B NULL <> OR"
    w = sel("SELECT * FROM X WHERE A = NULL AND NULL <> B AND C != 2").where
    assert postfix(w) == "A NULL = B NULL <> AND C 2 <> AND"
    w = sel("SELECT * FROM X WHERE NULL = NULL").where
    assert isinstance(w, Comparison) and w.left.kind == w.right.kind == "null"  # type: ignore[union-attr]
    for text in ('SELECT * FROM X WHERE T ISA "Win32_Service"', "SELECT * FROM X WHERE T ISA Win32_Service"):
        w = sel(text).where
        assert isinstance(w, Isa) and w.class_name == "Win32_Service" and w.operand.name == "T"
    w = sel("SELECT * FROM X WHERE SourceInstance.CIM_StorageVolume::Count = 10 AND P.Q.R <> 'x'").where
    assert isinstance(w, And)
    first, second = w.operands
    assert isinstance(first, Comparison) and isinstance(first.left, PropertyRef)
    assert first.left.steps[0].scope == "CIM_StorageVolume" and first.left.steps[0].name == "Count"
    assert isinstance(second, Comparison) and isinstance(second.left, PropertyRef)
    assert second.left.text == "P.Q.R"
    w = sel("SELECT * FROM X WHERE __CLASS = 'Device' AND __GENUS = 2").where
    assert postfix(w) == "__CLASS 'Device' = __GENUS 2 = AND"
    w = sel("SELECT * FROM X WHERE A NOT LIKE '%[_][_]%' AND B > -5 AND C < +.5 AND D >= 1.5E3").where
    assert postfix(w) == "A '%[_][_]%' LIKE NOT B -5 > AND C 0.5 < AND D 1500.0 >= AND"
    w = sel("SELECT * FROM X WHERE a = 'it\\'s' AND b = \"C:\\\\dir\" AND c = 'x\\ny'").where
    assert isinstance(w, And)
    assert [c.right.value for c in w.operands] == ["it's", "C:\\dir", "x\ny"]  # type: ignore[union-attr]
    q = sel("select name , state from Win32_Service where startmode = 'Auto'")
    assert [p.name for p in q.properties or ()] == ["name", "state"]


def test_event_query_forms() -> None:
    q = sel("SELECT * FROM __InstanceModificationEvent WITHIN 600 WHERE TargetInstance ISA \"Win32_LogicalDisk\" "
            "AND TargetInstance.FreeSpace < 1000000")
    assert q.within == 600.0 and q.is_event_query
    assert postfix(q.where) == "TargetInstance Win32_LogicalDisk ISA TargetInstance.FreeSpace 1000000 < AND"
    q = sel("SELECT * FROM EmailEvent GROUP WITHIN 300 HAVING NumberOfEvents > 5")
    assert q.group_within == 300.0 and postfix(q.having) == "NumberOfEvents 5 >"
    q = sel('SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA "Win32_NTLogEvent" GROUP WITHIN 600 '
            "BY TargetInstance.SourceName HAVING NumberOfEvents > 25")
    assert [p.text for p in q.group_by] == ["TargetInstance.SourceName"] and q.within is None
    q = sel("SELECT * FROM __InstanceCreationEvent WITHIN 0.5 WHERE TargetInstance ISA 'X'")
    assert q.within == 0.5
    for bad in ("SELECT * FROM E WITHIN 0", "SELECT * FROM E WITHIN x", "SELECT * FROM E GROUP 5",
                "SELECT * FROM E HAVING NumberOfEvents > 1", "SELECT * FROM E WITHIN 9999999"):
        with pytest.raises(QueryError):
            parse(bad)


def test_assoc_forms() -> None:
    q = parse('ASSOCIATORS OF {Win32_LogicalDisk.DeviceID="C:"}')
    assert isinstance(q, AssocQuery) and q.kind == "associators" and q.object_path == 'Win32_LogicalDisk.DeviceID="C:"'
    q = parse('associators of {Win32_LogicalDisk.DeviceID="C:}"} WHERE AssocClass = Win32_SystemDevices '
              "ResultRole = GroupComponent Role=PartComponent RequiredQualifier = Dynamic KeysOnly")
    assert isinstance(q, AssocQuery)
    assert (q.object_path, q.assoc_class, q.result_role, q.role, q.required_qualifier, q.keys_only) == \
        ('Win32_LogicalDisk.DeviceID="C:}"', "Win32_SystemDevices", "GroupComponent", "PartComponent", "Dynamic",
         True)
    q = parse("REFERENCES OF {X.Id=1} WHERE ResultClass = Assoc Role = Left ClassDefsOnly".replace(
        " ClassDefsOnly", ""))
    assert isinstance(q, AssocQuery) and q.kind == "references" and q.result_class == "Assoc" and q.role == "Left"
    q = parse("ASSOCIATORS OF {myClass} WHERE SchemaOnly")
    assert isinstance(q, AssocQuery) and q.schema_only
    for bad, why in [
        ("ASSOCIATORS OF {X.Id=1} WHERE AssocClass = A AND Role = B", "not AND/OR"),
        ("ASSOCIATORS OF {X.Id=1} WHERE RequiredQualifier <> Dynamic", "takes '=' only"),
        ("ASSOCIATORS OF {X.Id=1} WHERE Role = A Role = B", "given twice"),
        ("ASSOCIATORS OF {X.Id=1} WHERE ClassDefsOnly ResultClass = C", "cannot be used together"),
        ("REFERENCES OF {X.Id=1} WHERE AssocClass = A", "expected a REFERENCES OF keyword"),
        ("ASSOCIATORS OF X.Id=1", "object path in braces"),
        ("ASSOCIATORS OF {X.Id=1", "without a matching"),
        ("ASSOCIATORS OF {}", "empty"),
        ("ASSOCIATORS OF {X} WHERE", "expected a keyword"),
        ("ASSOCIATORS {X}", "expected OF"),
    ]:
        with pytest.raises(QueryError, match=why):
            parse(bad)


def test_limits() -> None:
    long = "SELECT * FROM X WHERE A = '" + "x" * MAX_QUERY_LENGTH + "'"
    with pytest.raises(QueryError, match="limit is 16384"):
        parse(long)
    deep = "SELECT * FROM X WHERE " + "(" * (MAX_NESTING + 1) + "A = 1" + ")" * (MAX_NESTING + 1)
    with pytest.raises(QueryError, match="nests deeper"):
        parse(deep)
    nots = "SELECT * FROM X WHERE " + "NOT " * 3000 + "A = 1"
    with pytest.raises(QueryError, match="nests deeper"):
        parse(nots)
    ok = "SELECT * FROM X WHERE " + "(" * MAX_NESTING + "A = 1" + ")" * MAX_NESTING
    assert postfix(sel(ok).where) == "A 1 ="
    wide = "SELECT * FROM X WHERE " + " OR ".join(f"A = {i}" for i in range(1000))
    w = sel(wide).where
    assert isinstance(w, Or) and len(w.operands) == 1000


def test_dialect_names() -> None:
    assert dialect_name("wql") == "WQL"
    assert dialect_name("http://schemas.microsoft.com/wbem/wsman/1/WQL") == "WQL"
    assert dialect_name("HTTP://schemas.dmtf.org/wbem/cql/1/dsp0202.pdf") == "CQL"
    assert dialect_name("DMTF:CQL") == "CQL"
    assert dialect_name("http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter") == "selectorFilter"
    assert dialect_name("XPath") is None and dialect_name(None) is None

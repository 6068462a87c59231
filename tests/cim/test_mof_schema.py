"""The real thing: the DMTF CIM Schema 2.49 compiles with no error, 1,631 classes, and round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmi import MIType
from openmi.cim.classes import Class, resolve_class
from openmi.cim.mof import MOFResult, compile_mof, to_mof

from .mof_schema import CLASS_COUNT, SchemaUnavailable, cim_schema_mof

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def schema_mof() -> Path:
    try:
        return cim_schema_mof()
    except SchemaUnavailable as exc:
        pytest.skip(f"cannot obtain the CIM Schema 2.49 from pywbem's sdist: {exc}")


@pytest.fixture(scope="module")
def schema(schema_mof: Path) -> MOFResult:
    return compile_mof(schema_mof)


@pytest.fixture(scope="module")
def resolved(schema: MOFResult) -> dict[str, Class]:
    out: dict[str, Class] = {}
    for _, c in schema.classes:
        out[c.name.lower()] = resolve_class(c, out[c.superclass.lower()] if c.superclass else None)
    return out


def test_compiles_every_class(schema: MOFResult) -> None:
    assert len(schema.classes) == CLASS_COUNT
    assert len({c.name.lower() for _, c in schema.classes}) == CLASS_COUNT
    assert {ns for ns, _ in schema.classes} == {"root/cimv2"}
    assert len(schema.qualifier_decls) == 70
    seen: set[str] = set()
    for _, c in schema.classes:  # superclasses first, so the engine can resolve in this order
        assert c.superclass is None or c.superclass.lower() in seen
        seen.add(c.name.lower())


def test_resolution(resolved: dict[str, Class]) -> None:
    cs = resolved["cim_computersystem"]
    assert sorted(p.name for p in cs.key_properties) == ["CreationClassName", "Name"]
    assert cs.properties["Name"].class_origin == "CIM_System"
    assert not cs.is_abstract and resolved["cim_system"].is_abstract
    assert "Override" not in cs.properties["ElementName"].qualifiers or \
        not cs.properties["ElementName"].qualifiers["Override"].propagated
    assert cs.properties["Caption"].propagated and cs.properties["Caption"].qualifiers["MaxLen"].value == 64
    assoc = resolved["cim_systemdevice"]
    assert assoc.is_association and assoc.properties["GroupComponent"].type == MIType.REFERENCE
    assert assoc.properties["GroupComponent"].reference_class == "CIM_System"
    assert assoc.properties["GroupComponent"].key  # Key propagates through Override


def test_round_trip(schema: MOFResult) -> None:
    decls = [d for _, d in schema.qualifier_decls]
    text = "".join(to_mof(d) for d in decls) + "\n".join(to_mof(c, qualifier_decls=decls) for _, c in schema.classes)
    again = compile_mof(text)
    assert again.qualifier_decls == schema.qualifier_decls
    assert again.classes == schema.classes

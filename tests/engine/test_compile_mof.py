"""End to end: Server.compile_mof loads the DMTF CIM Schema 2.49 and small MOFs in one transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import openmi
from openmi import MOFError

from ..cim.mof_samples import PERSON
from ..cim.mof_schema import CLASS_COUNT, SchemaUnavailable, cim_schema_mof


@pytest.fixture
def server() -> Iterator[openmi.Server]:
    srv = openmi.Server(":memory:")
    yield srv
    srv.close()


def test_compile_and_load_instances(server: openmi.Server) -> None:
    server.compile_mof(PERSON + """
    instance of Sample_Person as $a { Name = "Ada"; Age = 36; };
    instance of Sample_Person as $b { Name = "Bab"; };
    instance of Sample_Knows { Knower = $a; Known = $b; };
    """, namespace="root/sample")
    person = server.get_class("root/sample", "Sample_Person")
    assert person.properties["Name"].key and person.properties["Note"].propagated
    assert "Sample_Knows" in server.classes("root/sample")


def test_failing_compile_loads_nothing(server: openmi.Server) -> None:
    before = server.classes("root/cimv2")
    with pytest.raises(MOFError) as exc:
        server.compile_mof(PERSON + "class Broken : Missing { };")
    assert "superclass Missing is not declared" in str(exc.value)
    assert server.classes("root/cimv2") == before


def test_second_mof_builds_on_the_first(server: openmi.Server) -> None:
    server.compile_mof(PERSON)
    server.compile_mof("class Sample_Child : Sample_Person { string Extra; };")
    child = server.get_class("root/cimv2", "Sample_Child")
    assert child.properties["Name"].key and child.properties["Extra"].class_origin == "Sample_Child"


@pytest.mark.slow
def test_cim_schema_2_49(server: openmi.Server) -> None:
    try:
        mof = cim_schema_mof()
    except SchemaUnavailable as exc:
        pytest.skip(f"cannot obtain the CIM Schema 2.49 from pywbem's sdist: {exc}")
    before = {n.lower() for n in server.classes("root/cimv2")}
    result = server.compile_mof(mof)
    names = {n.lower() for n in server.classes("root/cimv2")}
    assert len(result.classes) == CLASS_COUNT
    assert names - before == {c.name.lower() for _, c in result.classes}
    cs = server.get_class("root/cimv2", "CIM_ComputerSystem")
    assert sorted(p.name for p in cs.key_properties) == ["CreationClassName", "Name"]

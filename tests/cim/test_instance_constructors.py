"""The public ways to build an Instance from typed elements (the repository's, codecs' and service's path)."""

from __future__ import annotations

import pytest

from openmi.cim import Class, Element, Instance, MIError, MIFlag, MIResult, MIType, Property
from openmi.cim.objectpath import Reference


def test_from_elements_takes_elements_as_they_are() -> None:
    els = [Element("Id", "7", MIType.STRING, MIFlag.KEY), Element("Size", 2, MIType.UINT8)]
    inst = Instance.from_elements("X_Thing", els, namespace="root/x")
    assert (inst.class_name, inst.namespace, inst.cls) == ("X_Thing", "root/x", None)
    assert inst["id"] == "7" and inst.get_element("ID").type == MIType.STRING  # not coerced, names ignore case
    assert [e.name for e in inst.key_elements] == ["Id"]
    assert Instance.from_elements("X_Thing").elements == []


def test_from_elements_adopts_a_dict_and_keeps_the_last_of_a_name() -> None:
    mapping = {"id": Element("Id", 1, MIType.UINT32, MIFlag.KEY)}
    inst = Instance.from_elements("X_Thing", mapping)
    inst["Id"] = 2
    assert mapping["id"].value == 2  # adopted, not copied: the fast path
    twice = Instance.from_elements("X_Thing", [Element("A", 1, MIType.UINT8), Element("a", 2, MIType.UINT8)])
    assert len(twice) == 1 and twice["A"] == 2


def test_from_elements_builds_the_subclass_it_is_called_on() -> None:
    ref = Reference.from_elements("X_Thing", {"id": Element("Id", 1, MIType.UINT32, MIFlag.KEY)}, namespace="root/x")
    assert type(ref) is Reference and ref.namespace == "root/x"


def test_put_element_adds_or_replaces_as_given() -> None:
    inst = Instance("X_Thing", {"Id": 1})
    inst.put_element(Element("id", "one", MIType.STRING, MIFlag.KEY))
    assert inst.get_element("Id").type == MIType.STRING and inst["Id"] == "one" and inst.get_element("Id").key
    inst.put_element(Element("Extra", None, MIType.DATETIME))
    assert inst.get_element("Extra").flags & MIFlag.NULL
    bound = Instance("X_Thing", cls=Class("X_Thing", properties=[Property("Id", MIType.UINT32, key=True)]))
    with pytest.raises(MIError) as info:
        bound.put_element(Element("Nope", 1, MIType.UINT8))
    assert info.value.result == MIResult.NO_SUCH_PROPERTY and "Nope" in info.value.message
    bound.put_element(Element("Id", 9, MIType.UINT32, MIFlag.KEY))
    assert bound["Id"] == 9

"""engine.schema: a namespace's class registry (lookups, definition order, subclasses, seq) and what a
ClassInfo computes for serving instances (keys, layout, defaults, typing inbound values)."""

from __future__ import annotations

import datetime as dt

import pytest

import openmi
from openmi import MIError, MIFlag, MIResult, MIType
from openmi.cim.classes import Class, Property, resolve_class
from openmi.engine.encoding import key_string
from openmi.engine.schema import ClassInfo, Namespace


def person() -> Class:
    return Class("Sample_Person", properties=[
        Property("Id", MIType.UINT32, key=True), Property("Site", MIType.STRING, key=True),
        Property("Name", MIType.STRING), Property("Tags", MIType.STRINGA),
        Property("Born", MIType.DATETIME), Property("Level", MIType.UINT8, value=3),
        Property("Active", MIType.BOOLEAN)])


def info_of(cls: Class, parent: Class | None = None) -> ClassInfo:
    return ClassInfo(cls, resolve_class(cls, parent))


def registry() -> Namespace:
    """root ← a, b; a ← a1, a2; a1 ← a1x (defined in that order)."""
    ns = Namespace("root/Test")
    for name, parent in (("Root", None), ("A", "Root"), ("B", "Root"), ("A1", "A"), ("A2", "A"), ("A1x", "A1"),
                         ("Other", None)):
        declared = Class(name, parent)
        ns.add(declared, resolve_class(declared, ns.classes[parent.lower()].cls if parent else None))
    return ns


# --- Namespace ------------------------------------------------------------------------------------


def test_lookups_are_caseless_and_unknown_names_are_invalid_class() -> None:
    ns = registry()
    assert ns.get("a1X").name == "A1x" and ns.key == "root/test" and ns.name == "root/Test"
    for missing in ("Nope", None, ""):
        with pytest.raises(MIError) as exc:
            ns.get(missing)
        assert exc.value.result == MIResult.INVALID_CLASS
        assert f"class {missing!r} does not exist in namespace root/Test" == exc.value.message


def test_descendants_in_definition_order_deep_and_shallow() -> None:
    ns = registry()
    assert [c.name for c in ns.descendants("root")] == ["A", "A1", "A1x", "A2", "B"]
    assert [c.name for c in ns.descendants("root", deep=False)] == ["A", "B"]
    assert [c.name for c in ns.descendants("")] == ["Root", "A", "A1", "A1x", "A2", "B", "Other"]
    assert [c.name for c in ns.descendants("", deep=False)] == ["Root", "Other"]
    assert list(ns.descendants("a1x")) == [] and list(ns.descendants("unknown")) == []


def test_remove_unlinks_the_class_from_its_parent() -> None:
    ns = registry()
    ns.remove("A2")
    assert [c.name for c in ns.descendants("a")] == ["A1", "A1x"]
    assert "a2" not in ns.classes and "a2" not in ns.children
    with pytest.raises(MIError):
        ns.remove("A2")


def test_redefining_a_class_keeps_its_provider_and_its_place() -> None:
    ns = registry()
    provider = object()
    ns.get("B").provider = provider
    again = Class("B", "Root", [Property("Extra", MIType.STRING)])
    info = ns.add(again, resolve_class(again, ns.get("Root").cls))
    assert info.provider is provider and "extra" in info.props
    assert [c.name for c in ns.descendants("root", deep=False)] == ["A", "B"]  # not listed twice


def test_seq_counts_definitions() -> None:
    ns = Namespace("root/x")
    assert (ns.next_seq(), ns.next_seq(), ns.seq) == (1, 2, 2)


# --- ClassInfo ------------------------------------------------------------------------------------


def test_what_a_class_info_computes() -> None:
    info = info_of(person())
    assert (info.name, info.low) == ("Sample_Person", "sample_person")
    assert [p.name for p in info.keys] == ["Id", "Site"]
    assert [low for low, _ in info.key_items] == ["id", "site"]
    assert info.defaults == [("Level", 3, int(MIType.UINT8))]
    assert not info.abstract and info.provider is None
    layout = {name: (t, flags, decode) for _, name, t, flags, decode in info.layout}
    assert layout["Id"] == (MIType.UINT32, int(MIFlag.KEY), False)
    assert layout["Name"] == (MIType.STRING, 0, False)
    assert layout["Born"][2] is True  # datetimes are decoded from their stored text
    abstract = info_of(Class("Sample_Abstract", qualifiers={"Abstract": True}))
    assert abstract.abstract


def test_key_of_types_the_keys_and_makes_one_key_string() -> None:
    info = info_of(person())
    key, values = info.key_of(openmi.Instance("Sample_Person", {"Id": "7", "Site": "lab"}), "root/x")
    assert values == {"Id": (7, MIType.UINT32), "Site": ("lab", MIType.STRING)}
    assert key == key_string([(7, int(MIType.UINT32)), ("lab", int(MIType.STRING))])
    # the same instance name given with other types or case gives the same key
    key2, _ = info.key_of(openmi.Instance("Sample_Person", {"site": "lab", "ID": 7}), "root/x")
    assert key2 == key


@pytest.mark.parametrize(("props", "result", "text"), [
    ({"Id": 7}, MIResult.INVALID_PARAMETER, "key property 'Site' of class Sample_Person is missing"),
    ({"Id": 7, "Site": (None, MIType.STRING)}, MIResult.INVALID_PARAMETER, "key property 'Site'"),
    ({"Id": 7, "Site": "x", "Colour": "red"}, MIResult.NO_SUCH_PROPERTY,
     "class Sample_Person in namespace root/x has no property 'Colour'"),
    ({"Id": -1, "Site": "x"}, MIResult.TYPE_MISMATCH, "property 'Id' of class Sample_Person is UINT32"),
    ({"Id": "seven", "Site": "x"}, MIResult.TYPE_MISMATCH, "'seven'"),
])
def test_key_of_errors(props: dict[str, object], result: MIResult, text: str) -> None:
    inst = openmi.Instance("Sample_Person")
    for name, value in props.items():
        if isinstance(value, tuple):  # a NULL, with its type
            inst.add_element(name, value[0], value[1])
        else:
            inst[name] = value
    with pytest.raises(MIError) as exc:
        info_of(person()).key_of(inst, "root/x")
    assert exc.value.result == result and text in exc.value.message


def test_a_class_without_keys_has_no_instance_names() -> None:
    info = info_of(Class("Sample_Keyless", properties=[Property("Name", MIType.STRING)]))
    with pytest.raises(MIError) as exc:
        info.key_of(openmi.Instance("Sample_Keyless", {"Name": "x"}), "root/x")
    assert exc.value.result == MIResult.INVALID_CLASS and "has no key properties" in exc.value.message


def test_values_of_converts_every_element_to_the_class_type() -> None:
    info = info_of(person())
    born = dt.datetime(1815, 12, 10, tzinfo=dt.timezone.utc)
    inst = openmi.Instance("Sample_Person", {"Id": "7", "Site": "lab", "Tags": ["a", "b"], "Level": "9",
                                             "Born": "18151210000000.000000+000", "Active": True})
    values = info.values_of(inst, "root/x")
    assert values["Id"] == (7, int(MIType.UINT32)) and values["Level"] == (9, int(MIType.UINT8))
    assert values["Tags"] == (["a", "b"], int(MIType.STRINGA)) and values["Born"][0] == born
    assert values["Active"] == (True, int(MIType.BOOLEAN))
    with pytest.raises(MIError) as exc:  # 300 does not fit a uint8
        info.values_of(openmi.Instance("Sample_Person", {"Level": 300}), "root/x")
    assert exc.value.result == MIResult.TYPE_MISMATCH and "Level" in exc.value.message
    with pytest.raises(MIError) as exc:  # a number is not a boolean, and a boolean not a number
        info.values_of(openmi.Instance("Sample_Person", {"Active": 1}), "root/x")
    assert exc.value.result == MIResult.TYPE_MISMATCH
    with pytest.raises(MIError) as exc:
        info.values_of(openmi.Instance("Sample_Person", {"Level": True}), "root/x")
    assert exc.value.result == MIResult.TYPE_MISMATCH
    with pytest.raises(MIError) as exc:
        info.values_of(openmi.Instance("Sample_Person", {"Nope": 1}), "root/x")
    assert exc.value.result == MIResult.NO_SUCH_PROPERTY


def test_from_row_builds_typed_instances() -> None:
    info = info_of(person())
    row = {"Id": 7, "Site": "lab", "Name": "Ada", "Born": "18151210000000.000000+000"}
    inst = info.from_row("root/x", row)
    assert (inst.class_name, inst.namespace) == ("Sample_Person", "root/x")
    assert [el.name for el in inst.elements] == ["Id", "Site", "Name", "Tags", "Born", "Level", "Active"]
    assert inst["Born"] == dt.datetime(1815, 12, 10, tzinfo=dt.timezone.utc)
    assert inst["Tags"] is None  # absent from the row: NULL
    assert [el.name for el in inst.key_elements] == ["Id", "Site"]
    keys = info.from_row("root/x", row, keys_only=True)
    assert [el.name for el in keys.elements] == ["Id", "Site"]


def test_describe_keys() -> None:
    info = info_of(person())
    _, values = info.key_of(openmi.Instance("Sample_Person", {"Id": 7, "Site": "lab"}), "root/x")
    assert info.describe_keys(values) == "Id=7,Site='lab'"

"""MI_XML (MI_Serializer's XML form) for classes and instances."""

from __future__ import annotations

from lxml import etree

from openmi.cim.classes import resolve_class
from openmi.cim.mof import compile_mof, to_mi_xml
from openmi.cim.mof.mixml import (
    INCLUDE_CLASS_ORIGIN,
    INCLUDE_INHERITED_ELEMENTS,
    INCLUDE_QUALIFIERS,
    INSTANCE_WITH_CLASS,
)

from .mof_samples import PERSON

R = compile_mof(PERSON + """
instance of Sample_Person as $a { Name = "Ada"; Scores = {1.5, 2, 3}; Initial = 'B'; };
instance of Sample_Knows { Knower = $a; Known = $a; };
""")
CLASSES = {c.name: c for _, c in R.classes}


def test_class_shallow_without_qualifiers() -> None:
    root = etree.fromstring(to_mi_xml(CLASSES["Sample_Person"]))
    assert root.tag == "CLASS" and root.get("NAME") == "Sample_Person" and root.get("SUPERCLASS") == "Sample_Named"
    assert root.find("QUALIFIER") is None
    scores = root.find("PROPERTY.ARRAY[@NAME='Scores']")
    assert scores.get("TYPE") == "real64" and scores.get("ARRAYSIZE") == "3"
    assert [v.text for v in scores.findall("VALUE.ARRAY/VALUE")] == ["1.5000000000000000e+00",
                                                                     "-2.0000000000000000e+00",
                                                                     "3.0000000000000000e+02"]
    assert root.find("PROPERTY[@NAME='Initial']/VALUE").text == "65"  # char16 as its number
    greet = root.find("METHOD[@NAME='Greet']")
    assert greet.get("TYPE") == "uint32"
    assert greet.find("PARAMETER.ARRAY[@NAME='Echo']").get("TYPE") == "string"


def test_class_qualifiers_and_flavors() -> None:
    root = etree.fromstring(to_mi_xml(CLASSES["Sample_Knows"], INCLUDE_QUALIFIERS))
    assert root.find("QUALIFIER[@NAME='Association']").get("OVERRIDABLE") == "false"
    ref = root.find("PROPERTY.REFERENCE[@NAME='Knower']")
    assert ref.get("REFERENCECLASS") == "Sample_Person" and ref.get("TYPE") is None
    assert ref.find("QUALIFIER[@NAME='Key']/VALUE").text == "true"
    named = etree.fromstring(to_mi_xml(CLASSES["Sample_Named"], INCLUDE_QUALIFIERS))
    assert named.find("QUALIFIER[@NAME='Abstract']").get("TOSUBCLASS") == "false"
    desc = named.find("PROPERTY[@NAME='Name']/QUALIFIER[@NAME='Description']")
    assert desc.get("TRANSLATABLE") == "true" and desc.find("VALUE").text == "The name"


def test_resolved_class_deep_with_origin() -> None:
    named = resolve_class(CLASSES["Sample_Named"], None)
    person = resolve_class(CLASSES["Sample_Person"], named)
    shallow = etree.fromstring(to_mi_xml(person))
    assert shallow.find("PROPERTY[@NAME='Note']") is None  # inherited, not written without the flag
    deep = etree.fromstring(to_mi_xml(person, INCLUDE_INHERITED_ELEMENTS | INCLUDE_CLASS_ORIGIN | INCLUDE_QUALIFIERS))
    note = deep.find("PROPERTY[@NAME='Note']")
    assert note.get("PROPAGATED") == "true" and note.get("CLASSORIGIN") == "Sample_Named"
    assert note.find("VALUE").text == "none"


def test_instance_with_reference_and_embedded() -> None:
    knows = R.instances[1][1]
    root = etree.fromstring(to_mi_xml(knows))
    assert root.tag == "INSTANCE" and root.get("CLASSNAME") == "Sample_Knows"
    ref = root.find("PROPERTY.REFERENCE[@NAME='Knower']")
    assert ref.get("MODIFIED") == "TRUE"
    kv = ref.find("VALUE.REFERENCE/INSTANCENAME/KEYVALUE")
    assert ref.find("VALUE.REFERENCE/INSTANCENAME").get("CLASSNAME") == "Sample_Person"
    assert (kv.get("VALUETYPE"), kv.get("TYPE"), kv.text) == ("string", "string", "Ada")


def test_embedded_instance_value_is_escaped_xml() -> None:
    r = compile_mof(PERSON + 'instance of Sample_Person { Name = "A"; Anything = instance of Sample_Person '
                             '{ Name = "<in>"; }; };')
    root = etree.fromstring(to_mi_xml(r.instances[0][1]))
    prop = root.find("PROPERTY[@NAME='Anything']")
    assert prop.get("EmbeddedObject") == "object"
    inner = etree.fromstring(prop.find("VALUE").text)
    assert inner.find("PROPERTY[@NAME='Name']/VALUE").text == "<in>"


def test_instance_with_class() -> None:
    ada = R.instances[0][1]
    text = to_mi_xml(ada, INSTANCE_WITH_CLASS, classes=[CLASSES["Sample_Named"], CLASSES["Sample_Person"]])
    root = etree.fromstring(text)
    group = root.find("DECLARATION/DECLGROUP")
    assert [n.text if n.tag != "NAMESPACE" else n.get("NAME") for n in group.find("LOCALNAMESPACEPATH")] == [
        "root", "cimv2"]
    objs = group.findall("VALUE.OBJECT")
    assert [o[0].tag for o in objs] == ["CLASS", "CLASS", "INSTANCE"]

"""Writing MOF back: compile → to_mof → compile gives equal qualifier declarations, classes and instances."""

from __future__ import annotations

from openmi import Class, Instance, MIType, Property
from openmi.cim.mof import compile_mof, to_mof

from .mof_samples import PERSON, QUALIFIERS


def test_round_trip_classes_and_decls() -> None:
    first = compile_mof(PERSON + 'class X { [Description("tab\\tquote\\"") : Restricted] string S; };')
    decls = [d for _, d in first.qualifier_decls]
    text = "".join(to_mof(d) for d in decls) + "\n".join(to_mof(c, qualifier_decls=decls)
                                                      for _, c in first.classes)
    second = compile_mof(text)
    assert second.qualifier_decls == first.qualifier_decls
    assert second.classes == first.classes
    assert [c.name for _, c in second.classes] == [c.name for _, c in first.classes]


def test_round_trip_instances() -> None:
    body = """
    instance of Sample_Person as $Ada { Name = "Ada \\"the\\" Countess"; Tags = {"a", "b"}; Scores = {1.25, 2, 3};
        Initial = '\\n'; Born = "19151210000000.000000+060"; Friend = instance of Sample_Person { Name = "In"; }; };
    instance of Sample_Knows { Knower = $Ada; Known = "Sample_Person.Name=\\"Ada \\\\\\"the\\\\\\" Countess\\""; };
    """
    first = compile_mof(PERSON + body)
    text = "\n".join(to_mof(i) for _, i in first.instances)
    second = compile_mof(PERSON + text)
    assert second.instances == first.instances
    assert second.instances[1][1]["Known"]["Name"] == 'Ada "the" Countess'


def test_class_written_from_python_objects() -> None:
    cls = Class("Py_Thing", properties=[Property("Id", MIType.UINT32, key=True), Property("Blob", MIType.INSTANCE,
                                                                                          embedded_class="Py_Thing")])
    text = to_mof(cls)
    assert "[Key]" in text and 'EmbeddedInstance("Py_Thing")' in text
    again = compile_mof(QUALIFIERS + text).classes[0][1]
    assert again.properties["Id"].key and again.properties["Blob"].embedded_class == "Py_Thing"


def test_instance_text() -> None:
    inst = Instance("Py_Thing", {"Id": 5, "Name": "x"})
    assert to_mof(inst) == 'instance of Py_Thing\n{\n    Id = 5;\n    Name = "x";\n};\n'

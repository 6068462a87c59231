"""Object paths in the WMI and DMTF forms, and reference values as openmi.Reference."""

from __future__ import annotations

import pytest

import openmi
from openmi import MIType, Reference
from openmi.cim.objectpath import format_object_path, parse_object_path


def test_wmi_full_path() -> None:
    r = parse_object_path(r'\\srv1\root\cimv2:Win32_Service.Name="WinRM",N=5')
    assert (r.server_name, r.namespace, r.class_name) == ("srv1", "root/cimv2", "Win32_Service")
    assert dict(r.keys) == {"Name": "WinRM", "N": 5}
    assert r.keys["name"] == "WinRM"  # key names ignore case
    assert r.wmi_path() == r'\\srv1\root\cimv2:Win32_Service.Name="WinRM",N=5'
    assert r.dmtf_path() == '//srv1/root/cimv2:Win32_Service.Name="WinRM",N=5'
    assert str(r) == r.wmi_path()


def test_relative_namespace_relative_and_singleton() -> None:
    r = Reference.parse('Sample_Disk.Id="d1"')
    assert (r.namespace, r.server_name, r.class_name, dict(r.keys)) == (None, None, "Sample_Disk", {"Id": "d1"})
    assert r.path == 'Sample_Disk.Id="d1"'
    r = Reference.parse(r'root\interop:X.K=TRUE')
    assert r.namespace == "root/interop" and r.keys["K"] is True
    s = Reference.parse("Sample_Config=@")
    assert s.class_name == "Sample_Config" and len(s.keys) == 0
    assert s.wmi_path() == "Sample_Config=@"
    d = Reference.parse("//h.example.com:5985/root/cimv2:C.K=-0x10")
    assert d.server_name == "h.example.com:5985" and d.keys["K"] == -16


def test_quoted_keys_with_commas_dots_colons_and_escapes() -> None:
    text = r'C.A="x,y.z:w",B="say \"hi\" \\ back",C=1.5'
    r = Reference.parse(text)
    assert r.keys["A"] == "x,y.z:w"
    assert r.keys["B"] == 'say "hi" \\ back'
    assert r.keys["C"] == 1.5
    assert Reference.parse(r.wmi_path()) == r
    assert r.wmi_path() == text


def test_nested_reference_key_round_trips() -> None:
    inner = Reference.parse(r'\\s\root\cimv2:Win32_Directory.Name="C:\\"')
    outer = openmi.Instance("Win32_Link")
    outer.add_element("Ref", inner, MIType.REFERENCE, openmi.MIFlag.KEY)
    text = format_object_path(outer)
    assert text == r'Win32_Link.Ref="\\\\s\\root\\cimv2:Win32_Directory.Name=\"C:\\\\\""'
    back = parse_object_path(text)
    assert Reference.parse(back.keys["Ref"]) == inner  # the nested path comes back as its text


@pytest.mark.parametrize("bad", [
    "", ".K=1", "C.", "C.K", "C.K=", 'C.K="open', "C.K=1,", "C.K=1 2", "C=5", "C.K=1,K=2", "C.K=abc",
    "\\\\:C.K=1", "1C.K=1",
])
def test_malformed_paths_say_why(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an object path"):
        parse_object_path(bad)


def test_reference_values_are_typed_objects() -> None:
    disk = openmi.Instance("Sample_Disk", namespace="root/cimv2")
    disk.add_element("Id", "d1", MIType.STRING, openmi.MIFlag.KEY)
    disk.add_element("Label", "x", MIType.STRING)
    link = openmi.Instance("Sample_Link")
    link.add_element("Disk", disk, MIType.REFERENCE)
    ref = link["Disk"]
    assert isinstance(ref, Reference) and isinstance(ref, openmi.Instance)
    assert (ref.class_name, ref.namespace, dict(ref.keys)) == ("Sample_Disk", "root/cimv2", {"Id": "d1"})
    assert "Label" not in ref  # a reference holds the keys only
    assert list(ref.keys()) == ["Id"]  # still a Mapping: keys() gives the names
    assert ref.path == 'root/cimv2:Sample_Disk.Id="d1"'
    link["Disk"] = 'Sample_Disk.Id="d2"'  # a path string is read as a reference
    assert link["Disk"].keys["Id"] == "d2"
    with pytest.raises(ValueError, match="not an object path"):
        link["Disk"] = "Sample_Disk.Id="
    with pytest.raises(TypeError):
        link["Disk"] = 5


def test_reference_equality_is_path_equality() -> None:
    a = Reference.parse('root/cimv2:C.K=5')
    b = openmi.Instance("c", {"K": 5})
    assert a == b and b == a  # class name in any case; namespace only compared when both give one
    assert a != Reference.parse("root/other:C.K=5")
    assert a != Reference.parse("C.K=6")

"""AssociatorInstances and ReferenceInstances through the public API: repository, index, providers, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIResult, MIType, Reference
from openmi.engine.repository import Repository

from ..cim.mof_samples import QUALIFIERS

SCHEMA = QUALIFIERS + """
class S_Disk { [Key] string Id; string Label; };
class S_Partition { [Key] string DiskId; [Key] uint32 Index; };
class S_BigPartition : S_Partition { uint64 Size; };
class S_Volume { [Key] string Name; };
[Association] class S_Component { [Key] S_Disk REF GroupComponent; [Key] S_Partition REF PartComponent; };
[Association] class S_DiskPartition : S_Component {
    [Key, Override("GroupComponent")] S_Disk REF GroupComponent;
    [Key, Override("PartComponent")] S_Partition REF PartComponent; };
[Association] class S_DiskLink { [Key] S_Disk REF Left; [Key] S_Disk REF Right; };
[Association] class S_Triple { [Key] S_Disk REF Disk; [Key] S_Partition REF Part; [Key] S_Volume REF Vol; };
instance of S_Disk as $d1 { Id = "d1"; Label = "one, with a comma"; };
instance of S_Disk as $d2 { Id = "d2"; };
instance of S_Disk as $d3 { Id = "d3"; };
instance of S_Partition as $p0 { DiskId = "d1"; Index = 0; };
instance of S_BigPartition as $p1 { DiskId = "d1"; Index = 1; Size = 100; };
instance of S_Volume as $v { Name = "C:"; };
instance of S_DiskPartition { GroupComponent = $d1; PartComponent = $p0; };
instance of S_DiskPartition {
    GroupComponent = "S_Disk.Id=\\"d1\\""; PartComponent = "root/cimv2:S_BigPartition.DiskId=\\"d1\\",Index=1"; };
instance of S_Component { GroupComponent = $d2; PartComponent = $p0; };
instance of S_DiskLink { Left = $d1; Right = $d2; };
instance of S_DiskLink { Left = $d3; Right = $d1; };
instance of S_DiskLink { Left = $d1; Right = $d1; };
instance of S_Triple { Disk = $d1; Part = $p1; Vol = $v; };
"""


def disk(i: str) -> openmi.Instance:
    return openmi.Instance("S_Disk", {"Id": i})


def paths(items: list[openmi.Instance]) -> list[str]:
    return [f"{i.class_name}.{','.join(f'{k}={i[k]}' for k in i if i.get_element(k).key)}" for i in items]


@pytest.fixture
def srv() -> Iterator[openmi.Server]:
    s = openmi.Server(":memory:")
    s.compile_mof(SCHEMA)
    yield s
    s.close()


@pytest.fixture
def session(srv: openmi.Server, app: openmi.Application) -> openmi.Session:
    return app.new_session(server=srv)


def test_associators_each_far_end_once_in_a_fixed_order(session: openmi.Session) -> None:
    got = session.associators(disk("d1"))
    # association classes in definition order (S_Component, S_DiskPartition, S_DiskLink, S_Triple), each
    # class's instances in key order ((d1,d1) < (d1,d2) < (d3,d1)); the second S_BigPartition is dropped
    assert paths(got) == [
        "S_Partition.DiskId=d1,Index=0", "S_BigPartition.DiskId=d1,Index=1", "S_Disk.Id=d1",
        "S_Disk.Id=d2", "S_Disk.Id=d3", "S_Volume.Name=C:"]
    assert got[1]["Size"] == 100  # far ends are whole instances of their own class
    assert paths(session.associators(disk("d1"))) == paths(got)  # deterministic


def test_assoc_class_takes_subclasses(session: openmi.Session) -> None:
    assert paths(session.associators(disk("d1"), assoc_class="S_Component")) == [
        "S_Partition.DiskId=d1,Index=0", "S_BigPartition.DiskId=d1,Index=1"]
    assert paths(session.associators(disk("d2"), assoc_class="s_component")) == ["S_Partition.DiskId=d1,Index=0"]
    assert paths(session.associators(disk("d2"), assoc_class="S_DiskPartition")) == []


def test_result_class_takes_subclasses(session: openmi.Session) -> None:
    assert paths(session.associators(disk("d1"), result_class="S_BigPartition")) == [
        "S_BigPartition.DiskId=d1,Index=1"]
    assert paths(session.associators(disk("d1"), result_class="S_Partition")) == [
        "S_Partition.DiskId=d1,Index=0", "S_BigPartition.DiskId=d1,Index=1"]


def test_reflexive_association_resolved_by_role(session: openmi.Session) -> None:
    # d1 is Left of (d1,d2) and (d1,d1); Right of (d3,d1) and (d1,d1)
    assert paths(session.associators(disk("d1"), assoc_class="S_DiskLink", role="Left")) == [
        "S_Disk.Id=d1", "S_Disk.Id=d2"]
    assert paths(session.associators(disk("d1"), assoc_class="S_DiskLink", role="right")) == [
        "S_Disk.Id=d1", "S_Disk.Id=d3"]
    assert paths(session.associators(disk("d1"), assoc_class="S_DiskLink", result_role="LEFT")) == [
        "S_Disk.Id=d1", "S_Disk.Id=d3"]
    assert paths(session.associators(disk("d2"), role="Left")) == []


def test_n_ary_every_other_reference_is_a_far_end(session: openmi.Session) -> None:
    assert paths(session.associators(disk("d1"), assoc_class="S_Triple")) == [
        "S_BigPartition.DiskId=d1,Index=1", "S_Volume.Name=C:"]
    vol = openmi.Instance("S_Volume", {"Name": "C:"})
    assert paths(session.associators(vol)) == ["S_Disk.Id=d1", "S_BigPartition.DiskId=d1,Index=1"]
    assert paths(session.associators(vol, result_role="Part")) == ["S_BigPartition.DiskId=d1,Index=1"]


def test_keys_only(session: openmi.Session) -> None:
    got = session.associators(disk("d2"), keys_only=True)
    assert [dict(i) for i in got] == [{"DiskId": "d1", "Index": 0}, {"Id": "d1"}]
    refs = session.references(disk("d2"), keys_only=True)
    assert all(set(r) == {"GroupComponent", "PartComponent"} or set(r) == {"Left", "Right"} for r in refs)


def test_references_with_filters(session: openmi.Session) -> None:
    refs = session.references(disk("d1"))
    assert [r.class_name for r in refs] == ["S_DiskPartition", "S_DiskPartition", "S_DiskLink", "S_DiskLink",
                                            "S_DiskLink", "S_Triple"]
    link = refs[2]
    assert isinstance(link["Left"], Reference) and link["Left"].keys["Id"] in ("d1", "d3")
    assert [r.class_name for r in session.references(disk("d1"), result_class="S_Component")] == [
        "S_DiskPartition", "S_DiskPartition"]
    rights = session.references(disk("d1"), role="Right")
    assert [(r["Left"].keys["Id"], r["Right"].keys["Id"]) for r in rights] == [("d1", "d1"), ("d3", "d1")]


def test_operation_streams_like_any_other(session: openmi.Session) -> None:
    with session.associator_instances("root/cimv2", disk("d2")) as op:
        first = op.get_instance()
        assert first.more_results and first.instance is not None
        rest = list(op)
    assert len(rest) == 1


@pytest.mark.parametrize("kwargs,result", [
    ({"instance": None}, MIResult.INVALID_PARAMETER),
    ({"namespace": "root/nowhere"}, MIResult.INVALID_NAMESPACE),
    ({"instance": openmi.Instance("S_Nope", {"Id": "d1"})}, MIResult.INVALID_CLASS),
    ({"assoc_class": "S_Nope"}, MIResult.INVALID_CLASS),
    ({"result_class": "S_Nope"}, MIResult.INVALID_CLASS),
    ({"assoc_class": "S_Disk"}, MIResult.INVALID_PARAMETER),
    ({"instance": openmi.Instance("S_Disk", {"Label": "x"})}, MIResult.INVALID_PARAMETER),
    ({"instance": openmi.Instance("S_Partition", {"DiskId": "d1", "Index": "zero"})}, MIResult.TYPE_MISMATCH),
    ({"instance": openmi.Instance("S_Disk", {"Id": "nope"})}, MIResult.NOT_FOUND),
])
@pytest.mark.parametrize("verb", ["associator_instances", "reference_instances"])
def test_errors(session: openmi.Session, verb: str, kwargs: dict[str, Any], result: MIResult) -> None:
    args: dict[str, Any] = {"namespace": "root/cimv2", "instance": disk("d1")}
    args.update(kwargs)
    if verb == "reference_instances":
        if "assoc_class" in args:
            args["result_class"] = args.pop("assoc_class")
        elif "result_class" in args and args["result_class"] == "S_Nope":
            pass
    op = getattr(session, verb)(**args)
    with op:
        r = op.get_instance()
    assert r.result == result, r.error_message
    assert r.error_message


def test_index_is_used_not_a_scan(session: openmi.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scan(*a: object) -> Iterator[tuple[str, str]]:
        raise AssertionError("associators scanned a class")
    monkeypatch.setattr(Repository, "scan", no_scan)
    assert len(session.associators(disk("d1"))) == 6
    assert len(session.references(disk("d1"))) == 6


def test_deleting_an_end_deletes_its_associations(session: openmi.Session) -> None:
    session.delete(openmi.Instance("S_Partition", {"DiskId": "d1", "Index": 0}))
    assert paths(session.associators(disk("d2"))) == ["S_Disk.Id=d1"]
    assert [r.class_name for r in session.enumerate("S_Component")] == ["S_DiskPartition"]
    # deleting an association instance itself takes it out of the index
    link = session.references(disk("d2"))[0]
    session.delete(link)
    assert session.associators(disk("d2")) == []


def test_dangling_reference_is_reported_and_skipped(srv: openmi.Server, session: openmi.Session) -> None:
    # an association may be written before its far end exists; asked for then, the end is skipped
    session.create(openmi.Instance("S_DiskLink", {"Left": 'S_Disk.Id="d2"', "Right": 'S_Disk.Id="ghost"'}))
    errors: list[openmi.Instance] = []

    def on_error(op: object, ctx: object, err: openmi.Instance) -> bool:
        errors.append(err)
        return True

    cbs = openmi.OperationCallbacks(write_error=on_error)
    with session.associator_instances(None, disk("d2"), callbacks=cbs) as op:
        got = list(op)
    assert paths(got) == ["S_Partition.DiskId=d1,Index=0", "S_Disk.Id=d1"]
    assert len(errors) == 1 and "ghost" in errors[0]["Message"] and errors[0]["CIMStatusCode"] == 6

    cbs = openmi.OperationCallbacks(write_error=lambda op, ctx, err: openmi.ResponseType.NO)
    with session.associator_instances(None, disk("d2"), callbacks=cbs) as op:
        r = None
        for r in iter(op.get_instance, None):
            if not r.more_results:
                break
    assert r is not None and r.result == MIResult.NOT_FOUND


def test_association_writes_check_their_references(session: openmi.Session) -> None:
    cases = [
        ({"Left": 'S_Nope.Id="d1"', "Right": 'S_Disk.Id="d2"'}, MIResult.INVALID_PARAMETER),
        ({"Left": 'S_Volume.Name="C:"', "Right": 'S_Disk.Id="d2"'}, MIResult.TYPE_MISMATCH),
        ({"Left": 'S_Disk.Label="x"', "Right": 'S_Disk.Id="d2"'}, MIResult.INVALID_PARAMETER),
        ({"Left": 'other/ns:S_Disk.Id="d1"', "Right": 'S_Disk.Id="d2"'}, MIResult.INVALID_PARAMETER),
    ]
    for props, result in cases:
        with pytest.raises(openmi.MIError) as exc:
            session.create(openmi.Instance("S_DiskLink", props))
        assert exc.value.result == result, exc.value
    # a reference naming a superclass with the right keys finds the instance all the same
    session.create(openmi.Instance("S_Component", {"GroupComponent": 'S_Disk.Id="d3"',
                                                   "PartComponent": 'S_Partition.DiskId="d1",Index=1'}))
    assert paths(session.associators(disk("d3"), assoc_class="S_Component")) == ["S_BigPartition.DiskId=d1,Index=1"]
    big = openmi.Instance("S_BigPartition", {"DiskId": "d1", "Index": 1})
    assert "S_Disk.Id=d3" in paths(session.associators(big))


def test_index_persists_and_is_rebuilt_for_older_repositories(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with openmi.Server(path) as srv:
        srv.compile_mof(SCHEMA)
    with openmi.Server(path) as srv, openmi.Application() as app:
        assert len(app.new_session(server=srv).associators(disk("d1"))) == 6
        # as a repository from before the index: no index rows, no marker
        srv.repository._db.execute("DELETE FROM links")
        srv.repository._db.execute("DELETE FROM meta WHERE key='links'")
    with openmi.Server(path) as srv, openmi.Application() as app:
        assert len(app.new_session(server=srv).associators(disk("d1"))) == 6


# --- providers ----------------------------------------------------------------------------------


class DiskLinks:
    """An association provider with OMI's associator/reference entry points."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def associator_instances(self, ctx: openmi.Context, ns: str, assoc_class: str, source: openmi.Instance,
                             result_class: str | None, role: str | None, result_role: str | None,
                             keys_only: bool) -> Iterator[openmi.Instance]:
        self.calls.append(("a", assoc_class, source["Id"], result_class, role, result_role, keys_only))
        if source["Id"] == "d1":
            out = ctx.new_instance("S_Volume")
            out["Name"] = "from-provider"
            yield out

    def reference_instances(self, ctx: openmi.Context, ns: str, assoc_class: str, source: openmi.Instance,
                            role: str | None, keys_only: bool) -> Iterator[openmi.Instance]:
        self.calls.append(("r", assoc_class, source["Id"], role, keys_only))
        raise openmi.MIError(MIResult.NOT_SUPPORTED, "no references here")


class Volumes:
    def get_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> openmi.Instance | None:
        if inst["Name"] in ("C:", "P:"):
            out = ctx.new_instance("S_Volume")
            out["Name"] = inst["Name"]
            return out
        return None


class EnumeratedLinks:
    """An association provider with enumerate_instances only: the engine follows the references."""

    def enumerate_instances(self, ctx: openmi.Context, ns: str, class_name: str,
                            keys_only: bool) -> Iterator[openmi.Instance]:
        for d, v in (("d1", "P:"), ("d2", "C:"), ("d1", "C:")):
            inst = ctx.new_instance(class_name)
            inst["Disk"] = openmi.Instance("S_Disk", {"Id": d})
            inst["Vol"] = openmi.Instance("S_Volume", {"Name": v})
            yield inst


PROVIDED = """
[Association] class S_VolumeOf { [Key] S_Disk REF Disk; [Key] S_Volume REF Vol; };
[Association] class S_Mounted { [Key] S_Disk REF Disk; [Key] S_Volume REF Vol; };
"""


def test_association_providers(srv: openmi.Server, session: openmi.Session) -> None:
    srv.compile_mof(PROVIDED)

    links = DiskLinks()
    srv.register_provider("root/cimv2", "S_VolumeOf", links)
    srv.register_provider("root/cimv2", "S_Mounted", EnumeratedLinks())
    srv.register_provider("root/cimv2", "S_Volume", Volumes())
    got = session.associators(disk("d1"), result_class="S_Volume", role="disk")
    # S_Triple (defined first) has the stored C:; S_VolumeOf's provider answers itself; S_Mounted's instances
    # are followed and the volumes fetched from their provider: P:, and C: again (returned once)
    assert [i["Name"] for i in got] == ["C:", "from-provider", "P:"]
    assert links.calls == [("a", "S_VolumeOf", "d1", "S_Volume", "disk", None, False)]
    # reference_instances: NOT_SUPPORTED from one provider does not fail the request
    refs = session.references(disk("d1"))
    assert [r.class_name for r in refs].count("S_Mounted") == 2
    assert links.calls[-1] == ("r", "S_VolumeOf", "d1", None, False)
    # the source of a provider-served class must exist
    with pytest.raises(openmi.MIError) as exc:
        session.associators(openmi.Instance("S_Volume", {"Name": "Z:"}))
    assert exc.value.result == MIResult.NOT_FOUND
    vol = session.associators(openmi.Instance("S_Volume", {"Name": "C:"}), assoc_class="S_Mounted")
    assert paths(vol) == ["S_Disk.Id=d2", "S_Disk.Id=d1"]


def test_type_of_reference_values_read_back(session: openmi.Session) -> None:
    link = session.references(disk("d3"))[0]
    left = link["Left"]
    assert isinstance(left, Reference)
    assert left.class_name == "S_Disk" and dict(left.keys) == {"Id": "d3"}
    assert link.get_element("Left").type == MIType.REFERENCE


# --- the CIM Schema ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cim_schema_associations_load_populate_and_walk(app: openmi.Application) -> None:
    from ..cim.mof_schema import SchemaUnavailable, cim_schema_mof

    try:
        schema = cim_schema_mof()
    except SchemaUnavailable as exc:
        pytest.skip(f"cannot obtain the CIM Schema 2.49 from pywbem's sdist: {exc}")
    with openmi.Server(":memory:") as srv:
        srv.compile_mof(schema)
        assocs = [c for c in (srv.lookup_class(None, n) for n in srv.classes()) if c is not None and c.is_association]
        assert len(assocs) > 300  # the schema's hundreds of association classes
        srv.compile_mof('''
instance of CIM_ComputerSystem as $cs { CreationClassName = "CIM_ComputerSystem"; Name = "host1"; };
instance of CIM_LogicalDisk as $disk { SystemCreationClassName = "CIM_ComputerSystem"; SystemName = "host1";
    CreationClassName = "CIM_LogicalDisk"; DeviceID = "C:"; };
instance of CIM_LogicalDisk as $disk2 { SystemCreationClassName = "CIM_ComputerSystem"; SystemName = "host1";
    CreationClassName = "CIM_LogicalDisk"; DeviceID = "D:"; };
instance of CIM_SystemDevice { GroupComponent = $cs; PartComponent = $disk; };
instance of CIM_SystemDevice {
    GroupComponent = "CIM_ComputerSystem.CreationClassName=\\"CIM_ComputerSystem\\",Name=\\"host1\\"";
    PartComponent = "CIM_LogicalDisk.SystemCreationClassName=\\"CIM_ComputerSystem\\",SystemName=\\"host1\\","
                    "CreationClassName=\\"CIM_LogicalDisk\\",DeviceID=\\"D:\\""; };
''')
        s = app.new_session(server=srv)
        cs = openmi.Instance("CIM_ComputerSystem", {"CreationClassName": "CIM_ComputerSystem", "Name": "host1"})
        disks = s.associators(cs, assoc_class="CIM_Component", result_class="CIM_StorageExtent",
                              role="GroupComponent", result_role="PartComponent")
        assert sorted(d["DeviceID"] for d in disks) == ["C:", "D:"]
        # walked back from a disk, named through a superclass that holds the keys
        disk = openmi.Instance("CIM_LogicalDevice", {"SystemCreationClassName": "CIM_ComputerSystem",
                                                     "SystemName": "host1", "CreationClassName": "CIM_LogicalDisk",
                                                     "DeviceID": "C:"})
        assert [i["Name"] for i in s.associators(disk, assoc_class="CIM_SystemComponent")] == ["host1"]
        refs = s.references(cs, result_class="CIM_SystemDevice")
        assert [r["PartComponent"].keys["DeviceID"] for r in refs] == ["C:", "D:"]


def test_cascaded_deletes_raise_their_own_deletion_events(srv: openmi.Server, session: openmi.Session) -> None:
    from openmi.engine.indications import Lifecycle

    sub = srv.indications.subscribe("root/cimv2", lambda e: e.change == Lifecycle.DELETE)
    try:
        session.delete(openmi.Instance("S_Disk", {"Id": "d2"}))
        deleted = []
        while (e := sub.get(timeout=0)) is not None:
            deleted.append(e.source_class)
    finally:
        sub.close()
    # the disk, then the association instances that referred to it (S_Component and S_DiskLink (d1,d2))
    assert deleted == ["S_Disk", "S_Component", "S_DiskLink"]


# --- WQL: ASSOCIATORS OF / REFERENCES OF through QueryInstances ------------------------------------------


def wql(session: openmi.Session, text: str) -> list[openmi.Instance]:
    with session.query_instances("root/cimv2", "WQL", text) as op:
        return list(op)


@pytest.mark.parametrize(("query", "expected"), [
    ('ASSOCIATORS OF {S_Disk.Id="d1"}', None),  # the same as associator_instances with no filter
    ('associators of {S_Disk.Id="d1"} where AssocClass = S_DiskLink Role = Left',
     ["S_Disk.Id=d1", "S_Disk.Id=d2"]),
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE ResultClass = S_BigPartition', ["S_BigPartition.DiskId=d1,Index=1"]),
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE ResultRole = Right AssocClass = S_DiskLink',
     ["S_Disk.Id=d1", "S_Disk.Id=d2"]),
    ('ASSOCIATORS OF {root/cimv2:S_Volume.Name="C:"} WHERE ResultRole = Part', ["S_BigPartition.DiskId=d1,Index=1"]),
    ('ASSOCIATORS OF {S_Disk.Id="d2"} WHERE RequiredAssocQualifier = Association AssocClass = S_Component',
     ["S_Partition.DiskId=d1,Index=0"]),
    ('ASSOCIATORS OF {S_Disk.Id="d2"} WHERE RequiredQualifier = Abstract', []),
])
def test_wql_associators_of(session: openmi.Session, query: str, expected: list[str] | None) -> None:
    got = paths(wql(session, query))
    assert got == (paths(session.associators(disk("d1"))) if expected is None else expected)


def test_wql_references_of_and_keys_only(session: openmi.Session) -> None:
    refs = wql(session, 'REFERENCES OF {S_Disk.Id="d1"} WHERE ResultClass = S_DiskLink Role = Right')
    assert [(r["Left"].keys["Id"], r["Right"].keys["Id"]) for r in refs] == [("d1", "d1"), ("d3", "d1")]
    names = wql(session, 'ASSOCIATORS OF {S_Disk.Id="d2"} WHERE KeysOnly')
    assert [dict(i) for i in names] == [{"DiskId": "d1", "Index": 0}, {"Id": "d1"}]


# --- schema queries: ClassDefsOnly (the classes of the results) and SchemaOnly (from the schema alone) ---


def classes(session: openmi.Session, text: str) -> list[str]:
    with session.query_instances("root/cimv2", "WQL", text) as op:
        out = []
        while True:
            r = op.get_class()
            if r.result != MIResult.OK:
                raise openmi.MIError(r.result, r.error_message)
            if r.cls is not None:
                assert r.cls.namespace == "root/cimv2"
                out.append(r.cls.name)
            if not r.more_results:
                return out


@pytest.mark.parametrize(("query", "expected"), [
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE ClassDefsOnly', ["S_Partition", "S_BigPartition", "S_Disk", "S_Volume"]),
    ('ASSOCIATORS OF {S_Disk.Id="d2"} WHERE ClassDefsOnly', ["S_Partition", "S_Disk"]),
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE ClassDefsOnly AssocClass = S_DiskLink', ["S_Disk"]),
    ('REFERENCES OF {S_Disk.Id="d1"} WHERE ClassDefsOnly', ["S_DiskPartition", "S_DiskLink", "S_Triple"]),
    ('REFERENCES OF {S_Disk.Id="d3"} WHERE classdefsonly', ["S_DiskLink"]),
    ("ASSOCIATORS OF {S_Disk} WHERE SchemaOnly", ["S_Partition", "S_Disk", "S_Volume"]),
    ("ASSOCIATORS OF {S_Disk} WHERE SchemaOnly Role = Left", ["S_Disk"]),
    ("ASSOCIATORS OF {S_Disk} WHERE SchemaOnly AssocClass = S_Triple ResultRole = Vol", ["S_Volume"]),
    ("ASSOCIATORS OF {S_Disk} WHERE SchemaOnly ResultClass = S_Partition", ["S_Partition"]),
    ("ASSOCIATORS OF {S_BigPartition} WHERE SchemaOnly", ["S_Disk", "S_Volume"]),
    ("ASSOCIATORS OF {S_Volume} WHERE SchemaOnly RequiredQualifier = Abstract", []),
    ("REFERENCES OF {S_Disk} WHERE SchemaOnly", ["S_Component", "S_DiskPartition", "S_DiskLink", "S_Triple"]),
    ("REFERENCES OF {S_Disk} WHERE SchemaOnly ResultClass = S_Component", ["S_Component", "S_DiskPartition"]),
    ("REFERENCES OF {root/cimv2:S_Partition} WHERE SchemaOnly Role = Part", ["S_Triple"]),
])
def test_schema_queries_answer_classes(session: openmi.Session, query: str, expected: list[str]) -> None:
    assert classes(session, query) == expected


def test_schema_query_classes_are_whole_and_read_as_classes(session: openmi.Session) -> None:
    got = session.query('ASSOCIATORS OF {S_Disk.Id="d2"} WHERE ClassDefsOnly')
    assert [type(c) for c in got] == [openmi.Class, openmi.Class]
    assert got[0].properties["Index"].type == MIType.UINT32
    with session.query_instances("root/cimv2", "WQL", "REFERENCES OF {S_Disk} WHERE SchemaOnly") as op:
        with pytest.raises(openmi.MIError, match="read it with get_class"):
            op.get_instance()


@pytest.mark.parametrize(("query", "result", "message"), [
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE SchemaOnly', MIResult.INVALID_QUERY, "takes a class in the braces"),
    ("ASSOCIATORS OF {S_Nope} WHERE SchemaOnly", MIResult.INVALID_CLASS, "S_Nope"),
    ("ASSOCIATORS OF {S_Disk} WHERE SchemaOnly AssocClass = S_Disk", MIResult.INVALID_PARAMETER, "not an association"),
    ('ASSOCIATORS OF {S_Disk.Id="nope"} WHERE ClassDefsOnly', MIResult.NOT_FOUND, "nope"),
])
def test_schema_query_errors(session: openmi.Session, query: str, result: MIResult, message: str) -> None:
    with pytest.raises(openmi.MIError) as ei:
        classes(session, query)
    assert ei.value.result == result and message in ei.value.message


@pytest.mark.parametrize(("query", "result"), [
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE AssocClass = S_DiskLink AND Role = Left', MIResult.INVALID_QUERY),
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE Role = Left Role = Right', MIResult.INVALID_QUERY),
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE ClassDefsOnly ResultClass = S_Disk', MIResult.INVALID_QUERY),
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE Role <> Left', MIResult.INVALID_QUERY),
    ('ASSOCIATORS OF {S_Disk.Id=}', MIResult.INVALID_QUERY),
    ('ASSOCIATORS OF {S_Disk.Id="nope"}', MIResult.NOT_FOUND),
    ('ASSOCIATORS OF {S_Nope.Id="d1"}', MIResult.INVALID_CLASS),
    ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE AssocClass = S_Nope', MIResult.INVALID_CLASS),
    ('REFERENCES OF {S_Disk.Id="d1"} WHERE ResultRole = Left', MIResult.INVALID_QUERY),
])
def test_wql_association_errors(session: openmi.Session, query: str, result: MIResult) -> None:
    with session.query_instances("root/cimv2", "WQL", query) as op:
        r = op.get_instance()
        while r.more_results:
            r = op.get_instance()
    assert r.result == result, r.error_message

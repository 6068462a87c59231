"""Associators and references over WS-Management: our client against ``openmi serve`` for every filter
combination, in both URI styles and EPR mode, references as EPRs, and pypsrp sending a raw association
Enumerate."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypsrp.wsman import NAMESPACES, WSMan

import openmi
from openmi import AuthType, DestinationOptions, MIResult, Reference
from openmi.cim import requests as rq
from openmi.protocol.wsman import operations as kinds

from ..engine.test_associations import SCHEMA
from .conftest import PASSWORD, Running, start


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    engine = openmi.Server(":memory:")
    engine.compile_mof(SCHEMA)
    from .conftest import Recorder

    r = start(tmp_path, allow_unencrypted=True, engine=engine, recorder=Recorder())
    yield r
    r.server.stop()
    r.engine.close()


def remote(app: openmi.Application, r: Running, style: str = "wmi") -> openmi.Session:
    o = DestinationOptions("http", r.http_port, encryption="never", max_elements=2, uri_style=style)
    o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    return app.new_session("127.0.0.1", "WINRM", o)


def shape(items: list[openmi.Instance]) -> list[str]:
    """Class and key values as text (the client reads untyped values as strings)."""
    out = []
    for i in items:
        keys = []
        for el in i.elements:
            v = el.value
            if isinstance(v, openmi.Instance):
                v = ",".join(f"{k}={v[k]!s}" for k in sorted(v, key=str.lower))
            keys.append(f"{el.name.lower()}={v}")
        out.append(f"{i.class_name}:{';'.join(sorted(keys))}")
    return out


DISKS = ["d1", "d2", "d3"]
ASSOC = [None, "S_Component", "S_DiskLink", "S_Triple"]
RESULT = [None, "S_Partition", "S_BigPartition", "S_Disk"]
ROLE = [None, "GroupComponent", "left", "Right"]
RROLE = [None, "PartComponent", "Left", "vol"]


@pytest.mark.parametrize("style", ["wmi", "dmtf"])
def test_every_filter_combination_matches_the_local_answer(served: Running, style: str) -> None:
    with openmi.Application() as app:
        local = app.new_session(server=served.engine)
        s = remote(app, served, style)
        checked = 0
        for d, a, rc, ro, rr in itertools.product(DISKS, ASSOC, RESULT, ROLE, RROLE):
            if (rc is not None) + (ro is not None) + (rr is not None) > 2:
                continue  # keep the run short: every pair of filters, every single one, none
            disk = openmi.Instance("S_Disk", {"Id": d})
            want = local.associators(disk, assoc_class=a, result_class=rc, role=ro, result_role=rr)
            got = s.associators(disk, assoc_class=a, result_class=rc, role=ro, result_role=rr)
            assert shape(got) == shape(want), (d, a, rc, ro, rr)
            checked += bool(want)
        for d, rc, ro, keys_only in itertools.product(DISKS, ASSOC, ROLE, (False, True)):
            disk = openmi.Instance("S_Disk", {"Id": d})
            want = local.references(disk, result_class=rc, role=ro, keys_only=keys_only)
            got = s.references(disk, result_class=rc, role=ro, keys_only=keys_only)
            assert shape(got) == shape(want), (d, rc, ro, keys_only)
        assert checked > 50


def test_references_come_back_as_references(served: Running) -> None:
    with openmi.Application() as app:
        s = remote(app, served, "dmtf")
        links = s.references(openmi.Instance("S_Disk", {"Id": "d3"}))
        assert len(links) == 1
        left = links[0]["Left"]
        assert isinstance(left, Reference)
        assert (left.class_name, left.namespace, dict(left.keys)) == ("S_Disk", "root/cimv2", {"Id": "d3"})
        # EPR mode: the associators' names only
        names = s.associators(openmi.Instance("S_Disk", {"Id": "d1"}), keys_only=True, result_class="S_Partition")
        assert shape(names) == ["S_Partition:diskid=d1;index=0", "S_BigPartition:diskid=d1;index=1"]


def test_errors_travel_as_faults(served: Running) -> None:
    with openmi.Application() as app:
        s = remote(app, served)
        cases = [
            ({"instance": openmi.Instance("S_Disk", {"Id": "nope"})}, MIResult.NOT_FOUND),
            ({"instance": openmi.Instance("S_Nope", {"Id": "d1"})}, MIResult.INVALID_CLASS),
            ({"assoc_class": "S_Nope"}, MIResult.INVALID_CLASS),
            ({"namespace": "root/nowhere"}, MIResult.INVALID_NAMESPACE),
        ]
        for kwargs, result in cases:
            args = {"namespace": "root/cimv2", "instance": openmi.Instance("S_Disk", {"Id": "d1"})} | kwargs
            with s.associator_instances(**args) as op:  # type: ignore[arg-type]
                r = op.get_instance()
            assert r.result == result, (kwargs, r.error_message)


def test_async_streams(served: Running) -> None:
    import asyncio

    async def main() -> list[str]:
        with openmi.Application() as app:
            s = remote(app, served)
            out = []
            async for inst in s.associator_instances("root/cimv2", openmi.Instance("S_Disk", {"Id": "d1"})):
                out.append(inst.class_name)
            return out

    assert asyncio.run(main()) == ["S_Partition", "S_BigPartition", "S_Disk", "S_Disk", "S_Disk", "S_Volume"]


WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"
WSMB = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"
WSEN = NAMESPACES["wsen"]
WSMAN = NAMESPACES["wsman"]
WSA = NAMESPACES["wsa"]


def local(el: ET.Element) -> str:
    return el.tag.rpartition("}")[2]


def association_body(kind: str, disk_id: str, **filters: str) -> ET.Element:
    """The Enumerate body WinRM's ``winrm enumerate wmicimv2/* -dialect:association`` sends (wsman.md §3.8)."""
    en = ET.Element(f"{{{WSEN}}}Enumerate")
    ET.SubElement(en, f"{{{WSMAN}}}OptimizeEnumeration")
    ET.SubElement(en, f"{{{WSMAN}}}MaxElements").text = "32"
    flt = ET.SubElement(en, f"{{{WSMAN}}}Filter",
                        Dialect="http://schemas.dmtf.org/wbem/wsman/1/cimbinding/associationFilter")
    a = ET.SubElement(flt, f"{{{WSMB}}}{kind}")
    obj = ET.SubElement(a, f"{{{WSMB}}}Object")
    ET.SubElement(obj, f"{{{WSA}}}Address").text = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
    rp = ET.SubElement(obj, f"{{{WSA}}}ReferenceParameters")
    ET.SubElement(rp, f"{{{WSMAN}}}ResourceURI").text = WMI + "S_Disk"
    ss = ET.SubElement(rp, f"{{{WSMAN}}}SelectorSet")
    ET.SubElement(ss, f"{{{WSMAN}}}Selector", Name="Id").text = disk_id
    for name, value in filters.items():
        ET.SubElement(a, f"{{{WSMB}}}{name}").text = value
    return en


def test_pypsrp_raw_association_enumerate(served: Running) -> None:
    w = WSMan("127.0.0.1", port=served.http_port, username="alice", password=PASSWORD, ssl=False, auth="basic",
              encryption="never")
    resp = w.enumerate(WMI + "*", association_body("AssociatedInstances", "d1", AssociationClassName="S_Component",
                                                    ResultClassName="S_Partition", Role="GroupComponent",
                                                    ResultRole="PartComponent"))
    items = resp.find(f".//{{{WSMAN}}}Items")
    assert items is not None
    got = [(local(c), next(x.text for x in c if local(x) == "Index")) for c in items]
    assert got == [("S_Partition", "0"), ("S_BigPartition", "1")]
    assert resp.find(f".//{{{WSEN}}}EndOfSequence") is not None or resp.find(f".//{{{WSMAN}}}EndOfSequence") is not None
    # References: the association instances, their reference properties as EPRs
    resp = w.enumerate(WMI + "*", association_body("AssociationInstances", "d3"))
    items = resp.find(f".//{{{WSMAN}}}Items")
    assert items is not None and len(items) == 1
    link = items[0]
    assert local(link) == "S_DiskLink"
    left = next(c for c in link if local(c) == "Left")
    assert left.find(f"{{{WSA}}}Address") is not None
    sel = left.find(f".//{{{WSMAN}}}Selector[@Name='Id']")
    assert sel is not None and sel.text == "d3"
    assert left.findtext(f".//{{{WSMAN}}}ResourceURI", "").endswith("/S_Disk")


@pytest.mark.skipif(not any(k.record_type is rq.QueryInstances for k in kinds.KINDS),
                    reason="QueryInstances has no WS-Man declaration yet (the query work lands it)")
def test_wql_associators_of_over_wsman(served: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """The query goes as it is with WMI URIs (WinRM takes it), as the association filter with DMTF URIs (OMI
    refuses the query form; openmi serve takes both); the answers are the same."""
    seen: list[str] = []
    execute = served.engine.execute

    def spy(request: rq.Request, *args: object, **kw: object) -> object:
        seen.append(type(request).__name__)
        return execute(request, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(served.engine, "execute", spy)
    with openmi.Application() as app:
        local = app.new_session(server=served.engine)
        for style in ("wmi", "dmtf"):
            s = remote(app, served, style)
            q = 'ASSOCIATORS OF {S_Disk.Id="d1"} WHERE AssocClass = S_DiskLink Role = Left'
            seen.clear()
            with s.query_instances("root/cimv2", "WQL", q) as op:
                got = list(op)
            assert seen[0] == ("QueryInstances" if style == "wmi" else "AssociatorInstances"), seen
            assert shape(got) == shape(local.associators(openmi.Instance("S_Disk", {"Id": "d1"}),
                                                         assoc_class="S_DiskLink", role="Left"))
            seen.clear()
            with s.query_instances("root/cimv2", "WQL", 'REFERENCES OF {S_Disk.Id="d3"}') as op:
                links = list(op)
            assert [x.class_name for x in links] == ["S_DiskLink"]
            assert seen[0] == ("QueryInstances" if style == "wmi" else "ReferenceInstances"), seen
            with s.query_instances("root/cimv2", "WQL", 'ASSOCIATORS OF {S_Disk.Id="d1"} WHERE Role = A AND') as op:
                r = op.get_instance()
            assert r.result == MIResult.INVALID_QUERY


def test_schema_queries_over_wsman_answer_classes(served: Running) -> None:
    """ClassDefsOnly and SchemaOnly travel as DSP0201 classes in the Enumerate/Pull items (two per page here),
    whole: the client reads them with get_class() and gets what the engine holds."""
    with openmi.Application() as app:
        local = app.new_session(server=served.engine)
        for style in ("wmi", "dmtf"):
            s = remote(app, served, style)
            for q in ('ASSOCIATORS OF {S_Disk.Id="d1"} WHERE ClassDefsOnly',
                      "REFERENCES OF {S_Disk} WHERE SchemaOnly", "ASSOCIATORS OF {S_BigPartition} WHERE SchemaOnly"):
                got = s.query(q)
                want = local.query(q)
                assert [c.name for c in got] == [c.name for c in want] and got, q
                assert all(isinstance(c, openmi.Class) and c.namespace == "root/cimv2" for c in got)
                assert [sorted(c.properties) for c in got] == [sorted(c.properties) for c in want]
                assert [c.superclass for c in got] == [c.superclass for c in want]
            with s.query_instances("root/cimv2", "WQL", 'ASSOCIATORS OF {S_Disk.Id="x"} WHERE ClassDefsOnly') as op:
                r = op.get_class()
            assert r.result == MIResult.NOT_FOUND and r.cls is None


def test_namespaces_the_user_may_not_read_stay_closed(tmp_path: Path) -> None:
    engine = openmi.Server(":memory:")
    engine.create_namespace("root/secret")
    engine.compile_mof('class S_Thing { [Key] string Id; }; instance of S_Thing { Id = "v1"; };',
                       namespace="root/secret")
    engine.compile_mof("""
class S_Disk { [Key] string Id; };
class S_Thing { [Key] string Id; };
[Association] class S_Stored { [Key] S_Disk REF Disk; [Key] S_Thing REF Thing; };
instance of S_Disk { Id = "d1"; };
instance of S_Stored { Disk = "S_Disk.Id=\\"d1\\""; Thing = "root/secret:S_Thing.Id=\\"v1\\""; };
""")
    from .conftest import Recorder

    r = start(tmp_path, allow_unencrypted=True, engine=engine, recorder=Recorder())
    try:
        with openmi.Application() as app:
            def session(user: str) -> openmi.Session:
                o = DestinationOptions("http", r.http_port, encryption="never", uri_style="dmtf")
                o.add_credentials(AuthType.BASIC, user, PASSWORD)
                return app.new_session("127.0.0.1", "WINRM", o)

            d1 = openmi.Instance("S_Disk", {"Id": "d1"})
            here = app.new_session(server=engine).associators(d1, namespace="root/cimv2")
            assert [(i.class_name, i.namespace) for i in here] == [("S_Thing", "root/secret")]
            # (an instance body over WS-Man carries no namespace: the client gives it the request's)
            assert [i["Id"] for i in session("alice").associators(d1, namespace="root/cimv2")] == ["v1"]
            # EPR mode (keys_only) names the far end's own namespace (__cimnamespace)
            names = session("alice").associators(d1, namespace="root/cimv2", keys_only=True)
            assert [(i.class_name, i.namespace, i["Id"]) for i in names] == [("S_Thing", "root/secret", "v1")]
            # "reader" may read root/cimv2 only: the far end in root/secret is left out
            assert session("reader").associators(d1, namespace="root/cimv2") == []
        # and a source EPR in root/secret under a root/cimv2 resource URI is refused
        w = WSMan("127.0.0.1", port=r.http_port, username="reader", password=PASSWORD, ssl=False, auth="basic",
                  encryption="never")
        body = association_body("AssociationInstances", "v1")
        uri = body.find(f".//{{{WSMAN}}}ResourceURI")
        assert uri is not None
        uri.text = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/secret/S_Thing"
        from pypsrp.exceptions import WSManFaultError

        with pytest.raises(WSManFaultError) as info:
            w.enumerate(WMI + "*", body)
        assert "may not read namespace root/secret" in str(info.value.reason) or "AccessDenied" in str(info.value)
    finally:
        r.server.stop()
        engine.close()

"""Classes over WS-Man from a remote session, and remote results typed with them: our client against
``openmi serve`` (blocking and asyncio), a per-session cache that fetches each class once and is dropped
on close, the option that turns the lookup off, a server that refuses GetClass, and one that leaves the
inherited elements out."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import AuthType, DestinationOptions, MIResult, MIType
from openmi.client.remote import WSManTransport
from openmi.protocol import wsman
from tests.wsman_server.conftest import PASSWORD, Recorder, Running, start

MOF = """
class X_Part { [Key] uint32 Id; [Key] string Kind; };
class X_Thing {
    [Key] uint32 Id; string Name; uint8 Small; sint64 Big; real64 Ratio; boolean On; char16 Letter;
    datetime Born; datetime Span; uint16 Counts[]; string Tags[];
    X_Part REF Part; [EmbeddedInstance("X_Part")] string Inner; [EmbeddedInstance("X_Part")] string Inners[];
};
class X_Tool { [Key] uint32 Id;
    [Static] uint32 Measure([In] uint32 Times, [Out] uint64 Total, [Out] datetime When,
                            [Out, EmbeddedInstance("X_Part")] string Made);
};
class X_Special : X_Thing { string Extra; };
"""


class Measurer:
    def enumerate_instances(self, ctx: Any, ns: str, cls: str, keys_only: bool) -> list[openmi.Instance]:
        return []

    def invoke(self, ctx: Any, ns: str, cls: str, method: str, inst: Any, params: openmi.Instance) -> Any:
        made = ctx.new_instance("X_Part")
        made["Id"], made["Kind"] = 3, "bolt"
        return {"ReturnValue": 0, "Total": params["Times"] * 2**40, "When": dt.datetime(2024, 5, 6, tzinfo=dt.UTC),
                "Made": made}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    engine = openmi.Server(":memory:")
    engine.compile_mof(MOF)
    engine.compile_mof("""
        instance of X_Part as $p { Id = 1; Kind = "nut"; };
        instance of X_Thing { Id = 7; Name = "seven"; Small = 255; Big = -9000000000; Ratio = 0.5; On = true;
            Letter = 'q'; Born = "20240102030405.000000+000"; Span = "00000001020304.000000:000";
            Counts = {1, 2, 3}; Tags = {"a", "b"}; Part = $p;
            Inner = instance of X_Part { Id = 2; Kind = "washer"; };
            Inners = { instance of X_Part { Id = 4; Kind = "a"; }, instance of X_Part { Id = 5; Kind = "b"; } }; };
        instance of X_Special { Id = 8; Extra = "more"; };
    """)
    engine.register_provider("root/cimv2", "X_Tool", Measurer())
    r = start(tmp_path, engine=engine, recorder=Recorder())
    yield r
    r.server.stop()
    engine.close()


def options(r: Running, **kw: Any) -> DestinationOptions:
    o = DestinationOptions("https", r.https_port, ca_file=str(r.cert), max_elements=2, **kw)
    o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    return o


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[wsman.Request]:
    """Every WS-Man request remote sessions send (blocking and asyncio)."""
    log: list[wsman.Request] = []
    send, send_async = WSManTransport.send, WSManTransport.send_async

    def counting(self: WSManTransport, req: wsman.Request, *args: Any) -> wsman.Response:
        log.append(req)
        return send(self, req, *args)

    async def counting_async(self: WSManTransport, req: wsman.Request, ctx: Any = None) -> wsman.Response:
        log.append(req)
        return await send_async(self, req, ctx)

    monkeypatch.setattr(WSManTransport, "send", counting)
    monkeypatch.setattr(WSManTransport, "send_async", counting_async)
    return log


def _getclasses(log: list[wsman.Request]) -> list[str]:
    return [r.class_name or "" for r in log if isinstance(r, wsman.GetClassRequest)]


def check_thing(t: openmi.Instance) -> None:
    assert t["Id"] == 7 and t.get_element("Id").type == MIType.UINT32 and t.get_element("Id").key
    assert [e.name for e in t.key_elements] == ["Id"]
    assert (t["Small"], t["Big"], t["Ratio"], t["On"], t["Letter"]) == (255, -9000000000, 0.5, True, "q")
    assert t["Born"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert t["Span"] == dt.timedelta(days=1, hours=2, minutes=3, seconds=4)
    assert t["Counts"] == [1, 2, 3] and t.get_element("Counts").type == MIType.UINT16A
    part = t["Part"]
    assert t.get_element("Part").type == MIType.REFERENCE and part.class_name == "X_Part"
    assert part["Id"] == 1 and part.get_element("Id").type == MIType.UINT32 and part["Kind"] == "nut"
    inner = t["Inner"]
    assert t.get_element("Inner").type == MIType.INSTANCE and inner["Id"] == 2 and inner.get_element("Id").key
    assert [i["Id"] for i in t["Inners"]] == [4, 5]


def test_typed_results_from_openmi_serve(served: Running, sent: list[wsman.Request]) -> None:
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served))
        check_thing(s.get(openmi.Instance("X_Thing", {"Id": 7})))
        items = {i["Id"]: i for i in s.enumerate("X_Thing")}  # polymorphic: X_Special's class fetched too
        check_thing(items[7])
        assert items[8].class_name == "X_Special" and items[8]["Extra"] == "more" and items[8]["Id"] == 8
        out = s.invoke_method("X_Tool", "Measure", {"Times": 3})
        assert out["ReturnValue"] == 0 and out["Total"] == 3 * 2**40
        assert out.get_element("Total").type == MIType.UINT64
        assert out["When"] == dt.datetime(2024, 5, 6, tzinfo=dt.UTC) and out["Made"]["Id"] == 3
        keys = s.enumerate("X_Thing", keys_only=True)
        assert sorted(k["Id"] for k in keys) == [7, 8]
        # each class once per session, however many results and operations used it
        assert sorted(_getclasses(sent)) == ["X_Part", "X_Special", "X_Thing", "X_Tool"]
        s.close()
        s = app.new_session("127.0.0.1", "WINRM", options(served))  # a new session asks again
        s.get(openmi.Instance("X_Thing", {"Id": 7}))
        assert sorted(_getclasses(sent)).count("X_Thing") == 2


def test_the_lookup_can_be_turned_off(served: Running, sent: list[wsman.Request]) -> None:
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served, type_results=False))
        t = s.get(openmi.Instance("X_Thing", {"Id": 7}))
        assert t["Id"] == "7" and t["Name"] == "seven" and not t.key_elements
        assert _getclasses(sent) == []


def test_a_server_that_refuses_getclass(served: Running, sent: list[wsman.Request],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from openmi.wsman_server.service import WSManService

    run = WSManService._run

    def refuse(self: WSManService, req: wsman.Request, user: Any) -> wsman.Response:
        if isinstance(req, wsman.GetClassRequest):
            raise openmi.MIError(MIResult.NOT_SUPPORTED, "no classes here")
        return run(self, req, user)

    monkeypatch.setattr(WSManService, "_run", refuse)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served))
        t = s.get(openmi.Instance("X_Thing", {"Id": 7}))
        assert t["Id"] == "7" and t["Small"] == "255"  # as the wire gave them
        s.get(openmi.Instance("X_Thing", {"Id": 7}))
        assert _getclasses(sent) == ["X_Thing", "X_Part"]  # each asked once: the refusal is remembered too
        with s.get_class("root/cimv2", "X_Thing") as op:
            r = op.get_class()
        assert r.result == MIResult.NOT_SUPPORTED and r.error_message == "no classes here"


def test_get_and_enumerate_classes(served: Running) -> None:
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served))
        with s.get_class("root/cimv2", "X_Special") as op:
            r = op.get_class()
        assert r.result == MIResult.OK
        assert r.cls == served.engine.get_class("root/cimv2", "X_Special") and r.cls.namespace == "root/cimv2"
        assert r.cls.properties["Id"].key and r.cls.properties["Id"].class_origin == "X_Thing"
        every = s.classes()
        assert [c.name for c in every][-4:] == ["X_Part", "X_Thing", "X_Special", "X_Tool"]
        assert every[-2] == served.engine.get_class("root/cimv2", "X_Special")
        assert [c.name for c in s.classes("X_Thing")] == ["X_Special"]
        names = s.classes(names_only=True)
        assert {c.name for c in names} >= {"X_Part", "X_Thing", "X_Special"} and not names[-2].properties
        with s.enumerate_classes("root/cimv2", "X_Part", flags=openmi.OperationFlags.POLYMORPHISM_SHALLOW) as op:
            assert op.get_class().cls is None  # X_Part has no subclasses
        for ns, name, want in (("root/cimv2", "Nope", MIResult.INVALID_CLASS),
                               ("root/nowhere", "X_Part", MIResult.INVALID_NAMESPACE)):
            with s.get_class(ns, name) as op:
                got = op.get_class()
            assert got.result == want and got.error_details is not None
            assert got.error_details["CIMStatusCode"] == int(want)


def test_asyncio_session_is_typed_too(served: Running, sent: list[wsman.Request]) -> None:
    async def main() -> tuple[list[openmi.Instance], openmi.Class | None]:
        with openmi.Application() as app:
            s = app.new_session("127.0.0.1", "WINRM", options(served))
            items = [i async for i in s.enumerate_instances("root/cimv2", "X_Thing")]
            op = s.get_class("root/cimv2", "X_Thing")
            cls = (await op.get_class_async()).cls
            op.close()
            return items, cls

    items, cls = asyncio.run(main())
    check_thing(next(i for i in items if i["Id"] == 7))
    assert cls is not None and cls.properties["Part"].reference_class == "X_Part"


def test_classes_without_inherited_elements_are_completed(served: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    # a server that ignores IncludeInheritedElements: the client joins the superclass it fetches itself
    real = wsman.ClassOptions.from_option_set

    def local_only(options: Any) -> wsman.ClassOptions:
        o = real(options)
        return wsman.ClassOptions(o.qualifiers, False, o.class_origin, o.inheritance_hierarchy)

    monkeypatch.setattr(wsman.ClassOptions, "from_option_set", staticmethod(local_only))
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", options(served))
        with s.get_class("root/cimv2", "X_Special") as op:
            cls = op.get_class().cls
        assert cls is not None and list(cls.properties)[:2] == ["Id", "Name"] and cls.properties["Id"].key
        assert cls.properties["Id"].propagated and cls.properties["Extra"].class_origin == "X_Special"
        special = s.get(openmi.Instance("X_Special", {"Id": 8}))
        assert special["Id"] == 8 and special.get_element("Id").key


def test_get_class_from_recorded_omi_answers() -> None:
    from tests.client.test_remote import FIXTURES, Replay

    replay = Replay()
    try:
        with openmi.Application() as app:
            s = replay.session(app, "dmtf")
            replay.queue = [FIXTURES / "omi" / "curl-getclass-omipeer_item-response.xml",
                            FIXTURES / "omi" / "curl-getclass-missing-response.xml"]
            with s.get_class("root/cimv2", "OMIPeer_Item") as op:
                r = op.get_class()
            assert r.result == MIResult.OK and r.cls is not None and r.cls.namespace == "root/cimv2"
            assert [(p.name, p.type, p.key) for p in r.cls.properties.values()] == [
                ("Name", MIType.STRING, True), ("Value", MIType.STRING, False), ("Size", MIType.UINT32, False)]
            with s.get_class("root/cimv2", "No_Such_Class") as op:
                r = op.get_class()
            assert r.result == MIResult.INVALID_CLASS and r.error_message == "The specified class does not exist."
            assert r.error_details is not None and r.error_details["CIMStatusCode"] == 5
        sent = replay.seen[0]  # the shape OMI's capture has: cim-xml URI, both selectors, asking for qualifiers
        for part in (b"http://schemas.dmtf.org/wbem/cim-xml/2/cim-schema/2/*", b'Name="__cimnamespace">root/cimv2<',
                     b'Name="ClassName">OMIPeer_Item<', b'Name="IncludeQualifiers"',
                     b"http://schemas.xmlsoap.org/ws/2004/09/transfer/Get<"):
            assert part in sent, part
    finally:
        replay.http.shutdown(2)

"""Remote sessions over WS-Management: every operation against ``openmi serve`` with each auth scheme,
asyncio without threads, Release on early close, recorded OMI and WinRM answers replayed from a loopback
server, and the failures a network brings (closed port, silence, reset, TLS, wrong password)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import AuthType, DestinationOptions, MIResult, OperationOptions
from openmi.wsman_server.http import HTTPRequest, HTTPResponse, HTTPServer, Listener
from tests.wsman_server.conftest import PASSWORD, Running, start

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    r = start(tmp_path, allow_unencrypted=True)
    yield r
    r.server.stop()
    r.engine.close()


def destinations(r: Running) -> dict[str, DestinationOptions]:
    out = {}
    o = DestinationOptions("https", r.https_port, ca_file=str(r.cert), max_elements=3)
    o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    out["basic-https"] = o
    for name, auth in (("ntlm-http", AuthType.NTLM), ("negotiate-http", AuthType.NEGO_WITH_CREDS)):
        o = DestinationOptions("http", r.http_port, max_elements=3)
        o.add_credentials(auth, "alice", PASSWORD)
        out[name] = o
    o = DestinationOptions("http", r.http_port, encryption="never", max_elements=3)
    o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    out["basic-http-unencrypted"] = o
    o = DestinationOptions("https", r.https_port, ca_file=str(r.cert), packet_encoding="utf-16", max_elements=3)
    o.add_credentials(AuthType.NTLM, "alice", PASSWORD)
    out["ntlm-https-utf16"] = o
    return out


@pytest.mark.parametrize("which", ["basic-https", "ntlm-http", "negotiate-http", "basic-http-unencrypted",
                                   "ntlm-https-utf16"])
def test_every_operation(served: Running, which: str) -> None:
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", destinations(served)[which])
        with s.test_connection() as op:
            assert op.get_instance().result == MIResult.OK
        for i in range(7):
            created = s.create(openmi.Instance("Sample_Person", {"Id": i, "Name": f"n{i}", "Tags": ["x", "y"]}))
            assert created["Id"] in (i, str(i))
        got = s.get(openmi.Instance("Sample_Person", {"Id": 3}))
        assert got["Name"] == "n3" and got["Tags"] == ["x", "y"]
        changed = openmi.Instance("Sample_Person", {"Id": 3})
        changed["Name"] = "changed"
        s.modify(changed)
        assert s.get(openmi.Instance("Sample_Person", {"Id": 3}))["Name"] == "changed"
        names = sorted(i["Name"] for i in s.enumerate("Sample_Person"))  # 7 items, 3 per Pull
        assert len(names) == 7 and "changed" in names
        keys = s.enumerate("Sample_Person", keys_only=True)
        assert len(keys) == 7
        out = s.invoke_method("Sample_Watched", "Add", {"A": 40, "B": 2})
        assert str(out["Sum"]) == "42"
        with s.delete_instance("root/cimv2", openmi.Instance("Sample_Person", {"Id": 3})) as op:
            assert op.get_instance() == (None, False, MIResult.OK, None, None)
        with s.delete_instance("root/cimv2", openmi.Instance("Sample_Person", {"Id": 3})) as op:
            r = op.get_instance()
        assert r.result == MIResult.NOT_FOUND and "Id=3" in (r.error_message or "")
        assert r.error_details is not None and r.error_details["CIMStatusCode"] == 6
        with s.get_instance("root/cimv2", openmi.Instance("No_Such", {"Id": 1})) as op:
            assert op.get_instance().result == MIResult.INVALID_CLASS
        with s.get_instance("root/nowhere", openmi.Instance("Sample_Person", {"Id": 1})) as op:
            assert op.get_instance().result == MIResult.INVALID_NAMESPACE
        with s.delete_instance("root/cimv2", openmi.Instance("Sample_Person", {"Id": 1}), flags=1) as op:
            assert op.get_instance().result == MIResult.INVALID_PARAMETER


def test_reader_rights_over_the_wire(served: Running) -> None:
    o = DestinationOptions("https", served.https_port, ca_file=str(served.cert))
    o.add_credentials(AuthType.BASIC, "reader", PASSWORD)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", o)
        with s.delete_instance(None, openmi.Instance("Sample_Watched", {"Id": 1})) as op:
            assert op.get_instance().result == MIResult.ACCESS_DENIED
        assert s.get(openmi.Instance("Sample_Watched", {"Id": 1}))["Id"] in (1, "1")


def test_wrong_password_is_access_denied(served: Running) -> None:
    for auth, transport, port in ((AuthType.BASIC, "https", served.https_port),
                                  (AuthType.NTLM, "http", served.http_port)):
        o = DestinationOptions(transport, port, ca_file=str(served.cert))
        o.add_credentials(auth, "alice", "wrong")
        with openmi.Application() as app, app.new_session("127.0.0.1", "WINRM", o).test_connection() as op:
            r = op.get_instance()
        assert r.result == MIResult.ACCESS_DENIED, auth
        assert "127.0.0.1" in (r.error_message or "")
    assert served.recorder.calls == []


class _Options:
    """A Sample_Watched provider that keeps the options each get_instance saw."""

    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []

    def get_instance(self, ctx: openmi.Context, ns: str, inst: openmi.Instance) -> openmi.Instance:
        self.seen.append(dict(ctx.options))
        out = ctx.new_instance("Sample_Watched")
        out["Id"] = inst["Id"]
        return out


def test_operation_options_reach_the_server(served: Running) -> None:
    provider = _Options()
    served.engine.register_provider("root/cimv2", "Sample_Watched", provider)
    wanted = openmi.Instance("Sample_Watched", {"Id": 5})
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", destinations(served)["basic-https"])
        o = OperationOptions()
        o.set_custom_option("Depth", 2)
        o.set_custom_option("Verbose", True)
        assert s.get(wanted, options=o)["Id"] in (5, "5")
        assert provider.seen[-1] == {"Depth": 2, "Verbose": True}
        # MI_OperationOptions_SetResourceUriPrefix: prefix + "/" + class, the namespace in __cimnamespace
        for prefix in ("http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2", "http://example.org/wbem/"):
            assert s.get(wanted, options=OperationOptions(resource_uri_prefix=prefix))["Id"] in (5, "5")
        # a prefix is really used: one the server cannot map to a class fails as that class
        with s.get_instance(None, wanted, options=OperationOptions(
                resource_uri_prefix="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/nowhere")) as op:
            assert op.get_instance().result == MIResult.INVALID_NAMESPACE
        # SetResourceUri wins over the prefix and over the instance's class
        uri = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/No_Such"
        with s.get_instance(None, wanted, options=OperationOptions(
                resource_uri=uri, resource_uri_prefix="http://example.org/wbem")) as op:
            assert op.get_instance().result == MIResult.INVALID_CLASS
    assert len(provider.seen) == 3


def test_close_early_sends_release(served: Running) -> None:
    with openmi.Application() as app:
        local = app.new_session(server=served.engine)
        for i in range(400):  # more than an operation buffers for a reader that lags: its Pulls pause
            local.create(openmi.Instance("Sample_Person", {"Id": i}))
        s = app.new_session("127.0.0.1", "WINRM", destinations(served)["basic-https"])
        op = s.enumerate_instances("root/cimv2", "Sample_Person")
        first = op.get_instance()
        assert first.more_results and first.instance is not None
        while op._busy:  # the producer fills the buffer, then pauses with the enumeration still open
            time.sleep(0.005)
        assert len(served.server.service.enumerations) == 1
        op.close()  # never blocks: the producer, paused on a full buffer, is cancelled and sends Release
        op._join(5)
        assert len(served.server.service.enumerations) == 0
        op2 = s.enumerate_instances("root/cimv2", "Sample_Person")
        op2.get_instance()
        op2.cancel()
        while op2.get_instance().more_results:
            pass
        assert op2.get_instance().result == MIResult.FAILED
        op2.close()
        assert len(served.server.service.enumerations) == 0


def test_asyncio_without_threads(served: Running) -> None:
    with openmi.Application() as app:
        local = app.new_session(server=served.engine)
        for i in range(10):
            local.create(openmi.Instance("Sample_Person", {"Id": i, "Name": f"a{i}"}))
        sessions = [app.new_session("127.0.0.1", "WINRM", destinations(served)[k])
                    for k in ("basic-https", "ntlm-http", "basic-http-unencrypted")]

        async def main() -> tuple[list[object], object]:
            loop = asyncio.get_running_loop()
            gets = [s.get_instance(None, openmi.Instance("Sample_Person", {"Id": i % 10}))
                    for s in sessions for i in range(10)]
            results = await asyncio.gather(*gets)
            counts = []
            for s in sessions:
                counts.append(len([x async for x in s.enumerate_instances(None, "Sample_Person")]))
            assert counts == [10, 10, 10]
            return list(results), loop._default_executor  # type: ignore[attr-defined]

        results, executor = asyncio.run(main())
        assert len(results) == 30 and all(r["Name"].startswith("a") for r in results)  # type: ignore[index]
        assert executor is None  # nothing ran on a worker thread: no thread per operation


# --- recorded peers, replayed from a loopback server ---------------------------------------------------


class Replay:
    """Answers each POST with the next recorded response, its RelatesTo set to the request's MessageID."""

    def __init__(self) -> None:
        self.queue: list[Path] = []
        self.seen: list[bytes] = []
        self.http = HTTPServer([Listener("127.0.0.1", 0)], lambda peer, secure: self)
        self.http.start()
        self.port = self.http.listeners[0].port

    def handle(self, request: HTTPRequest) -> HTTPResponse:
        self.seen.append(request.body)
        path = self.queue.pop(0)
        body = path.read_bytes()
        mid = re.search(rb"<(?:\w+:)?MessageID[^>]*>([^<]+)<", request.body)
        if mid:
            body = re.sub(rb"(<(?:\w+:)?RelatesTo[^>]*>)[^<]*(<)", rb"\g<1>" + mid.group(1) + rb"\g<2>", body)
        status = 500 if b"Fault>" in body else 200
        return HTTPResponse(status, body, [("Content-Type", "application/soap+xml;charset=UTF-8")])

    def shutting_down(self, request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(503)

    def closed(self) -> None:
        return None

    def session(self, app: openmi.Application, style: str) -> openmi.Session:
        return app.new_session("127.0.0.1", "WINRM", DestinationOptions("http", self.port, uri_style=style))


@pytest.fixture
def replay() -> Iterator[Replay]:
    r = Replay()
    yield r
    r.http.shutdown(2)


def omi(step: str) -> Path:
    return next((FIXTURES / "omi").glob(f"pyclient-{step}-*-response.xml"))


def winrm(name: str) -> Path:
    return FIXTURES / "winrm-spec" / f"{name}-response.xml"




def test_recorded_omi_answers(replay: Replay) -> None:
    with openmi.Application() as app:
        s = replay.session(app, "dmtf")
        item = openmi.Instance("OMIPeer_Item", {"Name": "alpha"})
        getclass = FIXTURES / "omi" / "curl-getclass-omipeer_item-response.xml"
        missing = FIXTURES / "omi" / "curl-getclass-missing-response.xml"  # OMI_Identify: values stay text
        replay.queue = [omi("05"), getclass, omi("09"), omi("04"), omi("11"), omi("02"), missing, omi("12"),
                        omi("13"), omi("01")]
        got = s.get(item, namespace="root/cimv2")
        assert got.class_name == "OMIPeer_Item" and got["Name"]
        assert got.get_element("Size").type == openmi.MIType.UINT32 and isinstance(got["Size"], int)
        with s.delete_instance("root/cimv2", item) as op:
            r = op.get_instance()
        assert r.result == MIResult.NOT_FOUND and r.error_details is not None
        assert r.error_details["CIMStatusCode"] == 6
        with s.create_instance("root/cimv2", item) as op:
            assert op.get_instance().result == MIResult.ALREADY_EXISTS
        with s.get_instance("root/cimv2", openmi.Instance("Nope", {"K": 1})) as op:
            assert op.get_instance().result == MIResult.INVALID_CLASS
        ids = s.enumerate("OMI_Identify", namespace="root/omi")
        assert len(ids) == 1 and ids[0]["ProductName"]
        ids = s.enumerate("OMI_Identify", namespace="root/omi")  # context first, then a Pull
        assert len(ids) == 1
        with s.test_connection() as op:
            assert op.get_instance().result == MIResult.OK
        assert b"__cimnamespace" in replay.seen[1] and b"ClassName" in replay.seen[1]  # the GetClass
        assert b"OptimizeEnumeration" in replay.seen[5] and len(replay.seen) == 10


def test_recorded_winrm_answers(replay: Replay) -> None:
    with openmi.Application() as app:
        s = replay.session(app, "wmi")
        key = openmi.Instance("myclass", {"id": 1})
        refused = winrm("07-get-invalid-class")  # the answer to GetClass: values stay as the wire gave them
        replay.queue = [winrm("03-get"), refused, winrm("07-get-invalid-class"), winrm("09-put"),
                        winrm("12-delete-config"), winrm("15-enumerate"), winrm("16-pull"), winrm("17-pull"),
                        winrm("23-invoke-win32process-create"), refused]
        got = s.get(key, namespace="root/mynamespace")
        assert got.class_name == "myclass"
        with s.get_instance("root/cimv2", openmi.Instance("Nope", {"id": 1})) as op:
            r = op.get_instance()
        assert r.result == MIResult.NOT_FOUND
        s.modify(got, namespace="root/mynamespace")
        with s.delete_instance("root/cimv2", key) as op:
            assert op.get_instance().result == MIResult.OK
        items = s.enumerate("myclass", namespace="root/mynamespace")
        assert len(items) == 2
        out = s.invoke_method("Win32_Process", "Create", {"CommandLine": "notepad.exe"}, namespace="root/cimv2")
        assert str(out["ReturnValue"]) == "0" and str(out["ProcessId"]) == "4000"
        assert b"/wmi/root/mynamespace/myclass" in replay.seen[0] and b"cim-xml" in replay.seen[1]
        assert b"__cimnamespace" in replay.seen[1]  # GetClass has the one shape whatever the URI style


# --- failures on the wire -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _noop_result(port: int, **kw: object) -> openmi.InstanceResult:
    o = DestinationOptions(kw.pop("transport", "http"), port, **kw)  # type: ignore[arg-type]
    with openmi.Application() as app, app.new_session("127.0.0.1", "WINRM", o).test_connection() as op:
        return op.get_instance()


def test_closed_port() -> None:
    r = _noop_result(_free_port())
    assert r.result == MIResult.FAILED and "refused" in (r.error_message or "") and "127.0.0.1" in r.error_message


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        t0 = time.monotonic()
        r = _noop_result(listener.getsockname()[1], timeout=0.5)
        assert time.monotonic() - t0 < 5
    # the socket's timeout and the operation's (the session's timeout) are the same here: either may say it
    assert r.result == MIResult.FAILED and ("did not answer" in (r.error_message or "")
                                            or "timed out" in (r.error_message or ""))


def test_reset_connection() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)

        def slam() -> None:  # read the request, then hang up without a word
            conn, _ = listener.accept()
            conn.recv(65536)
            conn.close()

        t = threading.Thread(target=slam, name="openmi-test-slam")
        t.start()
        r = _noop_result(listener.getsockname()[1], timeout=5)
        t.join(5)
    assert r.result == MIResult.FAILED and "127.0.0.1" in (r.error_message or "")


def test_tls_failure_without_the_ca(served: Running) -> None:
    r = _noop_result(served.https_port, transport="https")
    assert r.result == MIResult.FAILED and "TLS" in (r.error_message or "")
    ok = _noop_result(served.https_port, transport="https", skip_ca_check=True)
    assert ok.result in (MIResult.OK, MIResult.ACCESS_DENIED)


def test_garbage_from_a_peer_fails_the_operation_once() -> None:
    """A peer that answers with garbage: FAILED, reported once, never a later OK; callbacks get it too."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        stop = threading.Event()

        def garbage() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                conn.recv(65536)
                conn.sendall(b"garbage\r\n\r\n")
                conn.close()

        t = threading.Thread(target=garbage, name="openmi-test-garbage")
        t.start()
        try:
            o = DestinationOptions("http", listener.getsockname()[1])
            with openmi.Application() as app:
                s = app.new_session("127.0.0.1", "WINRM", o)
                op = s.delete_instance(None, openmi.Instance("X", {"Id": 1}))
                first = op.get_instance()
                assert first.result == MIResult.FAILED and "127.0.0.1" in (first.error_message or "")
                assert op.get_instance() == first
                op.close()
                got: list[MIResult] = []
                done = threading.Event()

                def cb(op: object, ctx: object, inst: object, more: bool, result: MIResult, *rest: object) -> None:
                    got.append(result)
                    done.set()

                op = s.delete_instance(None, openmi.Instance("X", {"Id": 1}),
                                       callbacks=openmi.OperationCallbacks(instance_result=cb))
                assert done.wait(10)
                op.close()
                op._join(5)
                assert got == [MIResult.FAILED]

                async def main() -> openmi.InstanceResult:
                    with s.delete_instance(None, openmi.Instance("X", {"Id": 1})) as aop:
                        return await aop.get_instance_async()

                assert asyncio.run(main()).result == MIResult.FAILED
        finally:
            stop.set()
            t.join(5)


def test_async_early_close_sends_release(served: Running) -> None:
    with openmi.Application() as app:
        local = app.new_session(server=served.engine)
        for i in range(20):
            local.create(openmi.Instance("Sample_Person", {"Id": i}))
        s = app.new_session("127.0.0.1", "WINRM", destinations(served)["basic-https"])

        async def main() -> None:
            for _ in range(3):
                op = s.enumerate_instances(None, "Sample_Person")
                async for _item in op:
                    break
                op.close()
            await asyncio.sleep(0.3)

        asyncio.run(main())
        assert len(served.server.service.enumerations) == 0


def test_recorded_query_answers(replay: Replay) -> None:
    """query_instances against OMI's recorded WQL answers (DMTF style) and WinRM-shaped ones (WMI style)."""
    with openmi.Application() as app:
        s = replay.session(app, "dmtf")
        # the first answer's class is fetched once (GetClass) to type the results, as for any operation
        replay.queue = [FIXTURES / "omi" / f"curl-{n}-response.xml" for n in (
            "wql-filter", "getclass-omipeer_item", "wql-projection", "wql-invalid-query")]
        got = s.query("SELECT * FROM OMIPeer_Item WHERE Size > 5", namespace="root/cimv2")
        assert [(i.class_name, i["Name"], i["Size"]) for i in got] == [("OMIPeer_Item", "qb", 9)]
        got = s.query("SELECT Name FROM OMIPeer_Item WHERE Name LIKE 'q%'", namespace="root/cimv2")
        assert [dict(i) for i in got] == [{"Name": "qa"}, {"Name": "qb"}]
        with s.query_instances("root/cimv2", "WQL", "SELECT * FROM OMIPeer_Item WHERE Nope = 1") as op:
            r = op.get_instance()
        assert r.result == MIResult.INVALID_QUERY
        sent = replay.seen[0].decode()
        assert "/cim-schema/2/OMIPeer_Item<" in sent and "__cimnamespace" in sent and "Size &gt; 5" in sent
        assert "http://schemas.microsoft.com/wbem/wsman/1/WQL" in sent

        w = app.new_session("127.0.0.1", "WINRM", DestinationOptions("http", replay.port, uri_style="wmi",
                                                                     type_results=False))
        replay.queue = [winrm("24-enumerate-wql-projection"), winrm("25-enumerate-wql-cannotprocessfilter")]
        text = "SELECT Name,ProcessId,CreationDate,Roles FROM Win32_Process WHERE Name <> 'a&b'"
        procs = w.query(text, namespace="root/cimv2")
        assert [i.class_name for i in procs] == ["Win32_Process", "Win32_Process"]
        assert dict(procs[0]) == {"CreationDate": dt.datetime(2013, 4, 9, 15, 42, 20, 412400, tzinfo=dt.timezone.utc),
                                  "Name": "svchost.exe", "ProcessId": "612", "Roles": ["LM_Workstation", "LM_Server"]}
        assert procs[1]["CreationDate"] is None and procs[1]["Name"] == "System"
        with w.query_instances("root/cimv2", "WQL", "SELECT * FROM Win32_Process WHERE") as op:
            r = op.get_instance()
        assert r.result == MIResult.INVALID_QUERY
        sent = replay.seen[4].decode()
        assert "/wmi/root/cimv2/*<" in sent and "Name &lt;&gt; 'a&amp;b'" in sent

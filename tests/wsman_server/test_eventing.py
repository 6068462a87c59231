"""WS-Eventing against a real ``openmi serve`` on loopback: our client's subscribe (Pull mode, heartbeats,
cancel → Unsubscribe, expiry, bookmarks, reconnection after a restart, errors), raw pywinrm Subscribe +
Pull + Unsubscribe in WinRM's shape, and the server's limits (per-user cap, Renew, graceful shutdown)."""

from __future__ import annotations

import datetime
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import (
    BOOKMARK_OLDEST,
    AuthType,
    DestinationOptions,
    Instance,
    MIResult,
    MIType,
    OperationFlags,
    SubscriptionDeliveryOptions,
)

from .conftest import PASSWORD, Running, sample_engine, start

NS = "root/cimv2"
DELETIONS = "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'"
STARTED = OperationFlags.REPORT_OPERATION_STARTED
WAIT = 30.0  # generous: a loaded 2-core machine; nothing here asserts speed


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    r = start(tmp_path, allow_unencrypted=True)
    yield r
    r.server.stop()
    r.engine.close()


def remote(app: openmi.Application, r: Running, *, https: bool = False, user: str = "alice",
           timeout: float | None = None) -> openmi.Session:
    if https:
        o = DestinationOptions("https", r.https_port, ca_file=str(r.cert))
        o.add_credentials(AuthType.BASIC, user, PASSWORD)
    else:
        o = DestinationOptions("http", r.http_port)
        o.add_credentials(AuthType.NTLM, user, PASSWORD)
    if timeout is not None:
        o.timeout = timeout
    return app.new_session("127.0.0.1", "WINRM", o)


def person(i: int, name: str = "Ada") -> Instance:
    return Instance("Sample_Person", {"Id": i, "Name": name})


def wait_for(cond: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("https", [False, True], ids=["ntlm-http", "basic-https"])
def test_delete_observed_remotely(served: Running, https: bool) -> None:
    local = openmi.Application()
    try:
        eng = local.new_session(server=served.engine)
        eng.create(person(7))
        with openmi.Application() as app:
            s = remote(app, served, https=https)
            with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED,
                             delivery_options=SubscriptionDeliveryOptions(heartbeat=0.5)) as op:
                started = op.get_indication(timeout=WAIT)
                assert started.instance is None and started.more_results and started.result == MIResult.OK
                assert len(served.server.service.subscriptions) == 1
                time.sleep(1.2)  # two heartbeats pass with nothing: the subscription goes on
                with pytest.raises(TimeoutError):
                    op.get_indication(timeout=0.01)
                eng.delete(person(7))
                r = op.get_indication(timeout=WAIT)
                assert r.result == MIResult.OK and r.more_results and r.instance is not None
                assert r.instance.class_name == "CIM_InstDeletion"
                src = r.instance["SourceInstance"]
                assert src.class_name == "Sample_Person" and src["Name"] == "Ada" and src["Id"] == 7  # typed
                # the indication's own properties are typed too (GetClass knows the built-in indication classes)
                assert isinstance(r.instance["IndicationTime"], datetime.datetime)
                assert isinstance(r.instance["SequenceNumber"], int) and r.instance["SequenceNumber"] > 0
                assert r.instance.get_element("SequenceNumber").type == MIType.SINT64
                assert r.bookmark and r.machine_id == "127.0.0.1"
                op.cancel()
                final = op.get_indication(timeout=WAIT)
                assert not final.more_results and final.result == MIResult.FAILED
            wait_for(lambda: len(served.server.service.subscriptions) == 0, "Unsubscribe")
    finally:
        local.close()


def test_many_events_in_order_without_loss(served: Running) -> None:
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(60):
        eng.create(person(i, f"p{i}"))
    with openmi.Application() as app:
        s = remote(app, served)
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) as op:
            op.get_indication(timeout=WAIT)
            for i in range(60):
                eng.delete(person(i))
            got = [op.get_indication(timeout=WAIT) for _ in range(60)]
        assert [g.instance["SourceInstance"]["Id"] for g in got if g.instance is not None] == list(range(60))
        assert got[-1].bookmark  # the last event of a page carries the page's bookmark
    local.close()


def test_a_stream_of_deletes_reaches_a_reading_thread_whole(tmp_path: Path) -> None:
    """Thousands of events while a thread reads them as they come (get_indication on its own thread, the
    writer never waiting), in pages of up to 500: every one arrives, in order."""
    n = 5000
    served = start(tmp_path, allow_unencrypted=True)
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    with served.engine.repository.transaction():
        for i in range(n):
            eng.create(person(i))
    got: list[int] = []
    with openmi.Application() as app:
        o = DestinationOptions("http", served.http_port, encryption="never", max_elements=500)
        o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
        s = app.new_session("127.0.0.1", "WINRM", o)
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) as op:
            op.get_indication(timeout=WAIT)

            def read() -> None:
                while len(got) < n:
                    r = op.get_indication(timeout=WAIT)
                    if r.instance is None:
                        return
                    got.append(r.instance["SourceInstance"]["Id"])

            t = threading.Thread(target=read)
            t.start()
            for i in range(n):
                eng.delete(person(i))
            t.join(120)
            assert not t.is_alive(), f"{len(got)} of {n} events arrived"
    assert got == list(range(n))
    local.close()
    served.server.stop()
    served.engine.close()


def test_async_iteration(served: Running) -> None:
    import asyncio

    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    eng.create(person(1))
    eng.create(person(2))

    async def main(s: openmi.Session) -> list[int]:
        seen: list[int] = []
        op = s.subscribe(NS, "WQL", "SELECT * FROM __InstanceDeletionEvent WHERE TargetInstance ISA 'Sample_Person'",
                         flags=STARTED)
        first = await op.get_indication_async()
        assert first.instance is None
        threading.Thread(target=lambda: (eng.delete(person(1)), eng.delete(person(2)))).start()
        async for ev in op:
            seen.append(ev["TargetInstance"]["Id"])
            if len(seen) == 2:
                break
        op.cancel()
        return seen

    with openmi.Application() as app:
        assert asyncio.run(main(remote(app, served))) == [1, 2]
    wait_for(lambda: len(served.server.service.subscriptions) == 0, "the asyncio subscription's Unsubscribe")
    local.close()


def test_expiration_ends_with_ok(served: Running) -> None:
    with openmi.Application() as app:
        s = remote(app, served)
        with s.subscribe(NS, "WQL", DELETIONS, delivery_options=SubscriptionDeliveryOptions(
                expiration=0.5, heartbeat=0.2)) as op:
            final = op.get_indication(timeout=WAIT)
            assert final.instance is None and not final.more_results and final.result == MIResult.OK
    wait_for(lambda: len(served.server.service.subscriptions) == 0, "the expired subscription to go")


def test_bookmark_resumes_after_close(served: Running) -> None:
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(4):
        eng.create(person(i))
    with openmi.Application() as app:
        s = remote(app, served)
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) as op:
            op.get_indication(timeout=WAIT)
            eng.delete(person(0))
            mark = op.get_indication(timeout=WAIT).bookmark
        assert mark
        eng.delete(person(1))  # while nobody listens
        eng.delete(person(2))
        with s.subscribe(NS, "WQL", DELETIONS, delivery_options=SubscriptionDeliveryOptions(bookmark=mark)) as op:
            got = [op.get_indication(timeout=WAIT).instance["SourceInstance"]["Id"] for _ in range(2)]
        assert got == [1, 2]
        with s.subscribe(NS, "WQL", DELETIONS,
                         delivery_options=SubscriptionDeliveryOptions(bookmark=BOOKMARK_OLDEST)) as op:
            got = [op.get_indication(timeout=WAIT).instance["SourceInstance"]["Id"] for _ in range(3)]
        assert got == [0, 1, 2]
        with s.subscribe(NS, "WQL", DELETIONS,
                         delivery_options=SubscriptionDeliveryOptions(bookmark="nonsense:1")) as op:
            final = op.get_indication(timeout=WAIT)
        assert final.result == MIResult.INVALID_PARAMETER and "bookmark" in (final.error_message or "")
    local.close()


@pytest.mark.parametrize("dialect, query, result", [
    ("XPath", "/a", MIResult.NOT_SUPPORTED),
    ("WQL", "SELECT FROM WHERE", MIResult.INVALID_QUERY),
    ("WQL", "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person' OR 1=1",
     MIResult.NOT_SUPPORTED),
    ("WQL", "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'No_Such_Class'", MIResult.NOT_FOUND),
])
def test_errors_come_back_with_their_mi_result(served: Running, dialect: str, query: str, result: MIResult) -> None:
    with openmi.Application() as app:
        s = remote(app, served)
        with s.subscribe(NS, dialect, query, flags=STARTED) as op:
            r = op.get_indication(timeout=WAIT)
        assert r.result == result and not r.more_results, r.error_message
    assert len(served.server.service.subscriptions) == 0


def test_reader_may_subscribe(served: Running) -> None:
    with openmi.Application() as app:
        s = remote(app, served, user="reader")
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) as op:
            assert op.get_indication(timeout=WAIT).result == MIResult.OK


def test_reconnects_with_the_last_bookmark_after_a_restart(tmp_path: Path) -> None:
    """The server stops (Pulls hear EndpointUnavailable) and comes back on the same port with the same
    engine: the client subscribes again with its last bookmark, and the deletes made meanwhile arrive."""
    r = start(tmp_path, allow_unencrypted=True)
    port = r.http_port
    local = openmi.Application()
    eng = local.new_session(server=r.engine)
    for i in range(5):
        eng.create(person(i))
    second: Running | None = None
    try:
        with openmi.Application() as app:
            s = remote(app, r)
            with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED,
                             delivery_options=SubscriptionDeliveryOptions(heartbeat=0.5)) as op:
                op.get_indication(timeout=WAIT)
                eng.delete(person(0))
                assert op.get_indication(timeout=WAIT).instance["SourceInstance"]["Id"] == 0
                r.server.stop()
                eng.delete(person(1))  # while the server is down
                eng.delete(person(2))
                second = start(tmp_path, allow_unencrypted=True, engine=r.engine, recorder=r.recorder,
                               http_port=port)
                eng.delete(person(3))
                results = [op.get_indication(timeout=WAIT) for _ in range(3)]
                assert all(x.instance is not None for x in results), results
                assert [x.instance["SourceInstance"]["Id"] for x in results] == [1, 2, 3]
                op.cancel()
    finally:
        if second is not None:
            second.server.stop()
        local.close()
        r.engine.close()


def test_a_reconnection_before_the_first_event_loses_nothing(served: Running, tmp_path: Path) -> None:
    """The SubscribeResponse says where the subscription starts (a wsman:Bookmark header): a client whose
    server went away before any event resumes from there, so the deletes made meanwhile still arrive."""
    port = served.http_port
    second: Running | None = None
    with openmi.Application() as app:
        eng = app.new_session(server=served.engine)
        for i in range(4):
            eng.create(person(i))
        s = remote(app, served)
        try:
            with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED,
                             delivery_options=SubscriptionDeliveryOptions(heartbeat=0.5)) as op:
                op.get_indication(timeout=WAIT)
                served.server.stop()
                eng.delete(person(1))  # while the server is down, before the client saw any event
                eng.delete(person(2))
                second = start(tmp_path, allow_unencrypted=True, engine=served.engine, recorder=served.recorder,
                               http_port=port)
                eng.delete(person(3))
                got = [op.get_indication(timeout=WAIT) for _ in range(3)]
                assert [g.instance["SourceInstance"]["Id"] for g in got if g.instance is not None] == [1, 2, 3]
                op.cancel()
        finally:
            if second is not None:
                second.server.stop()


def test_goes_on_after_a_restart_that_lost_its_events(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A real restart (a new engine on the same repository file): the server no longer keeps the events after
    the client's bookmark and answers InvalidBookmark. The client subscribes from the newest event instead of
    ending, says so on the openmi.wsman logger, and the events after the restart arrive."""
    db = str(tmp_path / "repo.db")
    first_engine, recorder = sample_engine(db)
    r = start(tmp_path, allow_unencrypted=True, engine=first_engine, recorder=recorder)
    port = r.http_port
    second: Running | None = None
    with openmi.Application() as app:
        eng = app.new_session(server=first_engine)
        for i in range(3):
            eng.create(person(i))
        s = remote(app, r)
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED,
                         delivery_options=SubscriptionDeliveryOptions(heartbeat=0.5)) as op:
            op.get_indication(timeout=WAIT)
            eng.delete(person(0))
            assert op.get_indication(timeout=WAIT).instance["SourceInstance"]["Id"] == 0
            r.server.stop()
            eng.close()
            first_engine.close()
            second_engine = openmi.Server(db)
            try:
                second = start(tmp_path, allow_unencrypted=True, engine=second_engine, recorder=recorder,
                               http_port=port)
                wait_for(lambda: len(second.server.service.subscriptions) == 1,  # type: ignore[union-attr]
                         "the client to subscribe again")
                with app.new_session(server=second_engine) as again:
                    again.delete(person(1))
                got = op.get_indication(timeout=WAIT)
                assert got.instance is not None and got.instance["SourceInstance"]["Id"] == 1
                assert any("no longer keeps the events after bookmark" in m for m in caplog.messages)
                op.cancel()
            finally:
                if second is not None:
                    second.server.stop()
                second_engine.close()


def test_a_dropped_wmi_watcher_unsubscribes(served: Running) -> None:
    """A ``watch_for`` watcher a script lets go of (no close) still sends Unsubscribe: the server holds no
    subscription for it afterwards."""
    import gc

    from openmi import wmi

    c = wmi.WMI(computer=f"http://127.0.0.1:{served.http_port}/wsman", user="alice", password=PASSWORD)
    w = c.watch_for(raw_wql=DELETIONS)
    wait_for(lambda: len(served.server.service.subscriptions) == 1, "the watcher's subscription")
    del w
    gc.collect()
    wait_for(lambda: len(served.server.service.subscriptions) == 0, "the dropped watcher's Unsubscribe")


def test_subscriptions_left_open_are_unsubscribed_at_exit(served: Running, tmp_path: Path) -> None:
    """A program that exits with a remote subscription still open (no close, no with): its application is
    closed at exit, which sends Unsubscribe, rather than leaving the subscription to expire at the server."""
    import subprocess
    import sys

    script = tmp_path / "leave_open.py"
    script.write_text(f"""
import openmi
o = openmi.DestinationOptions("http", {served.http_port})
o.add_credentials(openmi.AuthType.NTLM, "alice", {PASSWORD!r})
s = openmi.Application().new_session("127.0.0.1", "WINRM", o)
op = s.subscribe("root/cimv2", "WQL", {DELETIONS!r}, flags=openmi.OperationFlags.REPORT_OPERATION_STARTED)
op.get_indication(timeout=30)
print("live", flush=True)
""")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "live" in out.stdout, out.stderr
    wait_for(lambda: len(served.server.service.subscriptions) == 0, "the Unsubscribe sent at exit")


def test_per_user_cap_and_renew(tmp_path: Path) -> None:
    r = start(tmp_path, allow_unencrypted=True, max_subscriptions_per_user=2)  # a ServeConfig key
    try:
        with openmi.Application() as app:
            s = remote(app, r)
            ops = [s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) for _ in range(2)]
            for op in ops:
                assert op.get_indication(timeout=WAIT).result == MIResult.OK
            with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) as third:
                r3 = third.get_indication(timeout=WAIT)
            assert r3.result == MIResult.SERVER_LIMITS_EXCEEDED and "too many" in (r3.error_message or "")
            with remote(app, r, user="reader").subscribe(NS, "WQL", DELETIONS, flags=STARTED) as other:
                assert other.get_indication(timeout=WAIT).result == MIResult.OK  # the cap is per user
            for op in ops:
                op.close()
    finally:
        r.server.stop()
        r.engine.close()


def test_graceful_shutdown_ends_waiting_pulls(tmp_path: Path) -> None:
    """stop() does not wait for a long-polling Pull: the Pull hears EndpointUnavailable at once."""
    r = start(tmp_path, allow_unencrypted=True)
    try:
        with openmi.Application() as app:
            s = remote(app, r, timeout=120)
            with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED,
                             delivery_options=SubscriptionDeliveryOptions(heartbeat=60)) as op:
                op.get_indication(timeout=WAIT)
                time.sleep(0.3)  # a Pull is waiting on the server now
                t0 = time.monotonic()
                r.server.stop()
                stopped_in = time.monotonic() - t0
                op.cancel()
            assert stopped_in < r.server.config.shutdown_timeout  # not held up by the 60 s Pull
            assert len(r.server.service.subscriptions) == 0
    finally:
        r.engine.close()


# --- raw clients in WinRM's shape -------------------------------------------------------------------------

WILDCARD = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*"


def _envelope(port: int, action: str, body: str, headers: str = "") -> str:
    return f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
  xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
  xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
  xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
  xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing"
  xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration">
 <s:Header>
  <a:To>http://127.0.0.1:{port}/wsman</a:To>
  <w:ResourceURI s:mustUnderstand="true">{WILDCARD}</w:ResourceURI>
  <a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
  <a:Action s:mustUnderstand="true">{action}</a:Action>
  <w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize>
  <a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>
  <w:Locale xml:lang="en-US" s:mustUnderstand="false"/>
  <p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>
  <w:OperationTimeout>PT5.000S</w:OperationTimeout>{headers}
 </s:Header>
 <s:Body>{body}</s:Body>
</s:Envelope>"""


def test_pywinrm_raw_subscribe_pull_unsubscribe(served: Running) -> None:
    from winrm.exceptions import WSManFaultError as WinRMFault
    from winrm.protocol import Protocol

    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    eng.create(person(3, "Grace"))
    port = served.http_port
    p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    subscribe = _envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe", f"""
  <e:Subscribe>
   <e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull">
    <w:Heartbeats>PT1.000S</w:Heartbeats>
    <w:Locale s:mustUnderstand="false" xml:lang="en-US"/><p:DataLocale s:mustUnderstand="false" xml:lang="en-US"/>
    <w:ContentEncoding>UTF-8</w:ContentEncoding>
   </e:Delivery>
   <e:Expires>PT3759670629.777S</e:Expires>
   <w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">{DELETIONS}</w:Filter>
   <w:SendBookmarks/>
  </e:Subscribe>""")
    resp = p.send_message(subscribe).decode()
    assert "SubscribeResponse" in resp
    context = re.search(r"<n:EnumerationContext>([^<]+)<", resp).group(1)  # type: ignore[union-attr]
    identifier = re.search(r"<e:Identifier>([^<]+)<", resp).group(1)  # type: ignore[union-attr]
    assert context == identifier

    def pull() -> str:
        return p.send_message(_envelope(port, "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull", f"""
  <n:Pull><n:EnumerationContext>{context}</n:EnumerationContext><n:MaxElements>32000</n:MaxElements></n:Pull>"""
                                        )).decode()

    beat = pull()  # nothing happened within the heartbeat: an empty PullResponse, the context stays
    assert "PullResponse" in beat and "CIM_InstDeletion" not in beat and context in beat
    eng.delete(person(3))
    page = pull()
    assert "CIM_InstDeletion" in page and "Grace" in page
    assert re.search(r"<w:Bookmark>[^<]+:\d+</w:Bookmark>", page)
    unsub = _envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Unsubscribe", "<e:Unsubscribe/>",
                      f"<e:Identifier>{identifier}</e:Identifier>")
    assert "UnsubscribeResponse" in p.send_message(unsub).decode()
    with pytest.raises(WinRMFault) as ei:
        pull()
    assert ei.value.code == 500
    renew = _envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Renew", "<e:Renew/>",
                      f"<e:Identifier>{identifier}</e:Identifier>")
    with pytest.raises(WinRMFault) as ei:
        p.send_message(renew)
    assert ei.value.fault_subcode is not None and ei.value.fault_subcode.endswith("UnableToRenew")
    local.close()


def _raw_pull_subscribe(p: Any, port: int) -> str:
    """A Pull-mode Subscribe to the deletions sent as WinRM's clients do (heartbeats every second); its context."""
    resp = p.send_message(_envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe", f"""
  <e:Subscribe>
   <e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull"><w:Heartbeats>PT1.000S</w:Heartbeats></e:Delivery>
   <w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">{DELETIONS}</w:Filter>
  </e:Subscribe>""")).decode()
    return re.search(r"<n:EnumerationContext>([^<]+)<", resp).group(1)  # type: ignore[union-attr, no-any-return]


def _raw_pull(p: Any, port: int, context: str, max_elements: int) -> str:
    return p.send_message(_envelope(port, "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull", f"""
  <n:Pull><n:EnumerationContext>{context}</n:EnumerationContext><n:MaxElements>{max_elements}</n:MaxElements></n:Pull>"""
                                    )).decode()  # type: ignore[no-any-return]


def test_a_raw_pull_page_is_cut_to_the_envelope_and_the_rest_follows(served: Running) -> None:
    """WinRM asks for up to 32000 events a Pull with a 153600-octet envelope: a page carries what fits, the
    events left over come first in the next Pull, and none is lost or repeated."""
    from winrm.protocol import Protocol

    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(300):
        eng.create(person(i, "x" * 900))
    port = served.http_port
    p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    context = _raw_pull_subscribe(p, port)
    for i in range(300):
        eng.delete(person(i))
    got: list[int] = []
    pages = 0
    while len(got) < 300 and pages < 50:
        page = _raw_pull(p, port, context, 32000)
        assert len(page.encode()) <= 153600
        got += [int(x) for x in re.findall(r"<p\d*:Id>(\d+)</p\d*:Id>", page)]
        pages += 1
    assert got == list(range(300))  # in order, none lost, none twice
    assert pages > 1  # (300 such events do not fit one envelope)
    local.close()


def test_subscription_buffer_bounds_what_a_subscriber_may_leave_unread(tmp_path: Path) -> None:
    """``subscription_buffer`` (configuration): a subscriber that leaves more events than that unread is ended
    with SERVER_LIMITS_EXCEEDED saying how many it lost, after the events it was kept."""
    from winrm.exceptions import WSManFaultError as WinRMFault
    from winrm.protocol import Protocol

    r = start(tmp_path, allow_unencrypted=True, subscription_buffer=5)
    local = openmi.Application()
    try:
        eng = local.new_session(server=r.engine)
        for i in range(8):
            eng.create(person(i))
        port = r.http_port
        p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                     password=PASSWORD, message_encryption="never")
        context = _raw_pull_subscribe(p, port)
        for i in range(8):
            eng.delete(person(i))
        page = _raw_pull(p, port, context, 100)
        assert [int(x) for x in re.findall(r"<p\d*:Id>(\d+)</p\d*:Id>", page)] == list(range(5))
        with pytest.raises(WinRMFault) as ei:
            _raw_pull(p, port, context, 100)
        assert "3 event(s) were dropped (its queue holds 5)" in str(ei.value.reason)
        assert ei.value.fault_subcode == "w:QuotaLimit" and "<p:CIMStatusCode xsi:type=\"cim:cimUnsignedInt\">27<" \
            in str(ei.value.response)  # SERVER_LIMITS_EXCEEDED
    finally:
        local.close()
        r.server.stop()
        r.engine.close()


def test_large_events_reach_our_client_whole(served: Running) -> None:
    """Events whose page would exceed our client's envelope size come over several Pulls, all of them."""
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(120):
        eng.create(person(i, "x" * 8000))
    with openmi.Application() as app:
        s = remote(app, served)
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED) as op:
            op.get_indication(timeout=WAIT)
            for i in range(120):
                eng.delete(person(i))
            got = [op.get_indication(timeout=WAIT) for _ in range(120)]
    assert [g.instance["SourceInstance"]["Id"] for g in got if g.instance is not None] == list(range(120))
    local.close()


def test_pywinrm_raw_subscribe_fault(served: Running) -> None:
    """An independent client sees our faults: a bad query in a Subscribe is CannotProcessFilter/INVALID_QUERY."""
    from winrm.exceptions import WSManFaultError as WinRMFault
    from winrm.protocol import Protocol

    port = served.http_port
    p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    bad = _envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe", """
  <e:Subscribe><e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull"/>
   <w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">SELECT FROM</w:Filter></e:Subscribe>""")
    with pytest.raises(WinRMFault) as ei:
        p.send_message(bad)
    assert ei.value.code == 500
    assert ei.value.fault_subcode is not None and ei.value.fault_subcode.endswith("CannotProcessFilter")
    assert "OMI:MI_Result:15" in ei.value.response


@pytest.mark.parametrize(("bookmark", "invalid_bookmark"), [
    ("0123456789ab:5", True),   # the engine's form, from another server or before a restart: InvalidBookmark
    ("provider-mark-7", False),  # a provider's: refused (nobody takes it here), but not "the server restarted"
])
def test_only_a_lost_engine_bookmark_is_invalid_bookmark(served: Running, bookmark: str,
                                                         invalid_bookmark: bool) -> None:
    """wsman:InvalidBookmark (on which a client subscribes again from the newest event) answers only an engine
    bookmark this server cannot resume from; any other refusal of a bookmark is an ordinary fault."""
    from winrm.exceptions import WSManFaultError as WinRMFault
    from winrm.protocol import Protocol

    port = served.http_port
    p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    with pytest.raises(WinRMFault) as ei:
        p.send_message(_envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe", f"""
  <e:Subscribe><e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull"/>
   <w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">{DELETIONS}</w:Filter>
   <w:SendBookmarks/><w:Bookmark>{bookmark}</w:Bookmark></e:Subscribe>"""))
    assert "OMI:MI_Result:4" in ei.value.response  # INVALID_PARAMETER either way
    assert (ei.value.fault_subcode or "").endswith("InvalidBookmark") is invalid_bookmark


def test_the_start_bookmark_of_a_polled_subscription_names_its_stream(served: Running) -> None:
    """A WITHIN-polled subscription's SubscribeResponse bookmark names its polled stream (epoch:seq.stream),
    so that resuming from it before the first event also replays what its polls found meanwhile; a lifecycle
    subscription's is the plain epoch:seq."""
    from winrm.protocol import Protocol

    port = served.http_port
    p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    marks = []
    for query in ("SELECT * FROM __InstanceCreationEvent WITHIN 1 WHERE TargetInstance ISA 'Sample_Watched'",
                  DELETIONS):
        resp = p.send_message(_envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe", f"""
  <e:Subscribe><e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull"/>
   <w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">{query}</w:Filter><w:SendBookmarks/>
  </e:Subscribe>""")).decode()
        marks.append(re.search(r"<w:Bookmark>([^<]+)</w:Bookmark>", resp).group(1))  # type: ignore[union-attr]
    assert re.fullmatch(r"[0-9a-f]{12}:\d+\.\d+", marks[0]), marks
    assert re.fullmatch(r"[0-9a-f]{12}:\d+", marks[1]), marks


# --- push modes: the server POSTs to a listener the client opens ---------------------------------------------


@pytest.mark.parametrize("mode", ["Push", "PushWithAck", "Events"])
def test_push_modes_our_client_our_server(served: Running, mode: str) -> None:
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(6):
        eng.create(person(i, f"p{i}"))
    d = SubscriptionDeliveryOptions(openmi.DeliveryType.PUSH, push_mode=mode, destination="127.0.0.1",
                                    heartbeat=0.5, max_elements=4, max_latency=0.2)
    with openmi.Application() as app:
        s = remote(app, served)
        with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED, delivery_options=d) as op:
            assert op.get_indication(timeout=WAIT).result == MIResult.OK
            live = next(iter(served.server.service.subscriptions._items.values()))
            assert live.request.delivery_mode.endswith(mode) and live.request.notify_to is not None
            assert live.request.notify_to.address.startswith("http://127.0.0.1:")
            time.sleep(1.2)  # heartbeats only: nothing is reported
            with pytest.raises(TimeoutError):
                op.get_indication(timeout=0.01)
            for i in range(6):
                eng.delete(person(i))
            got = [op.get_indication(timeout=WAIT) for _ in range(6)]
            assert [g.instance["SourceInstance"]["Id"] for g in got if g.instance is not None] == list(range(6))
            assert got[-1].bookmark and got[-1].machine_id
            op.cancel()
            assert op.get_indication(timeout=WAIT).result == MIResult.FAILED
        wait_for(lambda: len(served.server.service.subscriptions) == 0, "Unsubscribe")
    local.close()


def test_push_subscription_end_on_shutdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A graceful stop sends SubscriptionEnd (SourceShuttingDown) to the EndTo address: the push subscriber tries
    to subscribe again (the server may be restarting), and once that fails for the reconnection window it
    ends with SERVER_IS_SHUTTING_DOWN."""
    from openmi.protocol.wsman import operations as kinds

    monkeypatch.setattr(kinds, "RECONNECT_FOR", 1.0)  # (60 s by default)
    r = start(tmp_path, allow_unencrypted=True)
    try:
        with openmi.Application() as app:
            s = remote(app, r)
            d = SubscriptionDeliveryOptions(openmi.DeliveryType.PUSH, destination="127.0.0.1")
            with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED, delivery_options=d) as op:
                assert op.get_indication(timeout=WAIT).result == MIResult.OK
                r.server.stop()
                final = op.get_indication(timeout=WAIT)
                assert final.result == MIResult.SERVER_IS_SHUTTING_DOWN and not final.more_results
                assert "SourceShuttingDown" in (final.error_message or "")
    finally:
        r.engine.close()


@pytest.mark.parametrize("mode", ["push", "pushwithack"])
def test_push_subscription_comes_back_after_a_restart(tmp_path: Path, mode: str) -> None:
    """The server stops (its SubscriptionEnd says SourceShuttingDown) and comes back on the same port with the
    same engine: the push subscriber subscribes again, to the same listener, after its last bookmark, and the
    deletes made meanwhile arrive, once each."""
    r = start(tmp_path, allow_unencrypted=True)
    port = r.http_port
    local = openmi.Application()
    eng = local.new_session(server=r.engine)
    for i in range(5):
        eng.create(person(i))
    second: Running | None = None
    try:
        with openmi.Application() as app:
            s = remote(app, r)
            d = SubscriptionDeliveryOptions(openmi.DeliveryType.PUSH, push_mode=mode, destination="127.0.0.1")
            with s.subscribe(NS, "WQL", DELETIONS, flags=STARTED, delivery_options=d) as op:
                assert op.get_indication(timeout=WAIT).result == MIResult.OK
                eng.delete(person(0))
                assert op.get_indication(timeout=WAIT).instance["SourceInstance"]["Id"] == 0
                r.server.stop()
                eng.delete(person(1))  # while the server is down
                eng.delete(person(2))
                second = start(tmp_path, allow_unencrypted=True, engine=r.engine, recorder=r.recorder,
                               http_port=port)
                eng.delete(person(3))
                results = [op.get_indication(timeout=WAIT) for _ in range(3)]
                assert all(x.instance is not None for x in results), results
                assert [x.instance["SourceInstance"]["Id"] for x in results] == [1, 2, 3]
                with pytest.raises(TimeoutError):  # nothing twice
                    op.get_indication(timeout=0.5)
                op.cancel()
            wait_for(lambda: len(second.server.service.subscriptions) == 0, "the Unsubscribe of the new one")
    finally:
        if second is not None:
            second.server.stop()
        local.close()
        r.engine.close()


def test_push_expiration_ends_with_ok(served: Running) -> None:
    with openmi.Application() as app:
        s = remote(app, served)
        d = SubscriptionDeliveryOptions(openmi.DeliveryType.PUSH, destination="127.0.0.1", expiration=0.5)
        with s.subscribe(NS, "WQL", DELETIONS, delivery_options=d) as op:
            final = op.get_indication(timeout=WAIT)
            assert final.instance is None and not final.more_results and final.result == MIResult.OK


class _Sink:
    """A loopback event sink under the test's control: answers each delivery as told, records what came."""

    def __init__(self, answer: str) -> None:
        from openmi.wsman_server.http import HTTPServer, Listener

        self.answer = answer
        self.seen: list[bytes] = []
        self.got = threading.Event()
        self.http = HTTPServer([Listener("127.0.0.1", 0)], lambda peer, secure: self)
        self.http.start()
        self.url = f"http://127.0.0.1:{self.http.listeners[0].port}/sink"

    def handle(self, request: object) -> object:
        from openmi.protocol.wsman import build_fault
        from openmi.protocol.wsman.faults import protocol_fault
        from openmi.wsman_server.http import HTTPResponse

        self.seen.append(request.body)  # type: ignore[attr-defined]
        self.got.set()
        if self.answer == "slow" and b"SubscriptionEnd" not in request.body:  # type: ignore[attr-defined]
            time.sleep(0.3)  # a subscriber that takes its time over each event
        if self.answer in ("ack", "slow"):
            from openmi.protocol.wsman import eventing as ev

            msg = ev.parse_sink_message(request.body, None)  # type: ignore[attr-defined]
            body = ev.build_ack(msg.message_id) if msg.ack_requested else b""
            return HTTPResponse(200, body, [("Content-Type", "application/soap+xml;charset=UTF-8")])
        if self.answer == "refuse":
            status, body = build_fault(None, protocol_fault("wsman:DeliveryRefused", "no more"))
            return HTTPResponse(status, body, [("Content-Type", "application/soap+xml;charset=UTF-8")])
        return HTTPResponse(503, b"")

    def shutting_down(self, request: object) -> object:
        from openmi.wsman_server.http import HTTPResponse

        return HTTPResponse(503)

    def closed(self) -> None:
        return None


def _raw_push_subscribe(r: Running, sink: _Sink, mode: str, retry: str = "") -> str:
    from winrm.protocol import Protocol

    port = r.http_port
    p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    return p.send_message(_envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe", f"""
  <e:Subscribe>
   <e:EndTo><a:Address>{sink.url}/end</a:Address></e:EndTo>
   <e:Delivery Mode="{mode}">
    <e:NotifyTo><a:Address>{sink.url}</a:Address>
     <a:ReferenceProperties><e:Identifier>uuid:MY-SINK</e:Identifier></a:ReferenceProperties></e:NotifyTo>
    {retry}
   </e:Delivery>
   <w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">{DELETIONS}</w:Filter>
  </e:Subscribe>""")).decode()


def test_delivery_refused_cancels_without_subscription_end(served: Running) -> None:
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    eng.create(person(1))
    sink = _Sink("refuse")
    try:
        resp = _raw_push_subscribe(served, sink, "http://schemas.dmtf.org/wbem/wsman/1/wsman/PushWithAck")
        assert "SubscribeResponse" in resp and "EnumerationContext" not in resp
        eng.delete(person(1))
        assert sink.got.wait(WAIT)
        wait_for(lambda: len(served.server.service.subscriptions) == 0, "the refused subscription to be cancelled")
        assert len(sink.seen) == 1 and b"uuid:MY-SINK" in sink.seen[0]  # the NotifyTo parameters come back
        assert b"SubscriptionEnd" not in b"".join(sink.seen)
    finally:
        sink.http.shutdown(2)
        local.close()


def test_failing_sink_retries_then_subscription_end(served: Running) -> None:
    """Each delivery is retried as ConnectionRetry says; then the subscription ends with a SubscriptionEnd
    (DeliveryFailure) to EndTo."""
    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    eng.create(person(1))
    sink = _Sink("busy")
    try:
        _raw_push_subscribe(served, sink, "http://schemas.xmlsoap.org/ws/2004/08/eventing/DeliveryModes/Push",
                            '<w:ConnectionRetry Total="2">PT0.1S</w:ConnectionRetry>')
        eng.delete(person(1))
        wait_for(lambda: len(served.server.service.subscriptions) == 0, "the failing subscription to end")
        deliveries = [b for b in sink.seen if b"SubscriptionEnd" not in b]
        ends = [b for b in sink.seen if b"SubscriptionEnd" in b]
        assert len(deliveries) == 3  # the first attempt and two retries
        assert len(ends) == 1 and b"DeliveryFailure" in ends[0]
    finally:
        sink.http.shutdown(2)
        local.close()


def test_a_push_subscriber_that_falls_behind_hears_server_limits_exceeded(tmp_path: Path) -> None:
    """A push subscription whose sink is slower than the events: past ``subscription_buffer`` unsent events it
    ends with a SubscriptionEnd (SourceCancelling) that carries the MI result, SERVER_LIMITS_EXCEEDED, and the
    number lost; our client's reader of such a message gets that result, not a bare FAILED."""
    from openmi.protocol.wsman import eventing as ev

    r = start(tmp_path, allow_unencrypted=True, subscription_buffer=3)
    local = openmi.Application()
    sink = _Sink("slow")
    try:
        eng = local.new_session(server=r.engine)
        for i in range(12):
            eng.create(person(i))
        _raw_push_subscribe(r, sink, "http://schemas.dmtf.org/wbem/wsman/1/wsman/PushWithAck")
        for i in range(12):
            eng.delete(person(i))
        wait_for(lambda: any(b"SubscriptionEnd" in b for b in list(sink.seen)), "the SubscriptionEnd")
        end = ev.parse_sink_message(next(b for b in sink.seen if b"SubscriptionEnd" in b), None)
        assert end.end_status == ev.STATUS_SOURCE_CANCELLING and "dropped" in (end.end_reason or "")
        assert end.end_result == MIResult.SERVER_LIMITS_EXCEEDED and end.end_error is not None
        assert ev.end_status_result(end.end_status, end.end_result) == MIResult.SERVER_LIMITS_EXCEEDED
    finally:
        sink.http.shutdown(2)
        local.close()
        r.server.stop()
        r.engine.close()


def test_events_mode_batches_by_max_elements(served: Running) -> None:
    """Events mode: a batch of MaxElements events in one wsman:Events message (MaxTime long enough to fill
    it), acknowledged by the sink; the NotifyTo Identifier and the batch's bookmark come with it."""
    from openmi.protocol.wsman import eventing as ev

    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(5):
        eng.create(person(i))
    sink = _Sink("ack")
    try:
        _raw_push_subscribe(served, sink, "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events",
                            "<w:MaxElements>5</w:MaxElements><w:MaxTime>PT20S</w:MaxTime>")
        for i in range(5):
            eng.delete(person(i))
        assert sink.got.wait(WAIT)
        assert len(sink.seen) == 1
        msg = ev.parse_sink_message(sink.seen[0], None)
        assert msg.action == ev.ACTION_EVENTS and msg.ack_requested and msg.identifier == "uuid:MY-SINK"
        assert [e["SourceInstance"]["Id"] for e in msg.events] == ["0", "1", "2", "3", "4"]
    finally:
        sink.http.shutdown(2)
        local.close()


def test_events_mode_batches_fit_the_delivery_max_envelope_size(served: Running) -> None:
    """Events mode with a MaxEnvelopeSize in the Delivery: a batch that would exceed it goes in several
    messages, each within it, every event once and in order."""
    from openmi.protocol.wsman import eventing as ev

    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    for i in range(12):
        eng.create(person(i, "x" * 3000))
    sink = _Sink("ack")
    try:
        _raw_push_subscribe(served, sink, "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events",
                            "<w:MaxElements>12</w:MaxElements><w:MaxTime>PT5S</w:MaxTime>"
                            "<w:MaxEnvelopeSize>16384</w:MaxEnvelopeSize>")
        for i in range(12):
            eng.delete(person(i))
        wait_for(lambda: sum(len(ev.parse_sink_message(b, None).events) for b in list(sink.seen)) >= 12,
                 "all 12 events at the sink")
        assert len(sink.seen) > 1 and all(len(b) <= 16384 for b in sink.seen)
        ids = [e["SourceInstance"]["Id"] for b in sink.seen for e in ev.parse_sink_message(b, None).events]
        assert ids == [str(i) for i in range(12)]
    finally:
        sink.http.shutdown(2)
        local.close()


def test_subscribe_on_a_class_uri_without_filter(served: Running) -> None:
    """A Subscribe addressed to an indication class's URI with no filter: every indication of that class."""
    from winrm.protocol import Protocol

    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    eng.create(person(4, "Edsger"))
    port = served.http_port
    p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    body = _envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe", """
  <e:Subscribe><e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull">
   <w:Heartbeats>PT1S</w:Heartbeats></e:Delivery></e:Subscribe>""").replace(
        WILDCARD, "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_InstDeletion").replace(
        "</s:Header>", '<w:SelectorSet><w:Selector Name="__cimnamespace">root/cimv2</w:Selector></w:SelectorSet>'
                       "</s:Header>")
    resp = p.send_message(body).decode()
    context = re.search(r"<n:EnumerationContext>([^<]+)<", resp).group(1)  # type: ignore[union-attr]
    eng.delete(person(4))
    pull = _envelope(port, "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull",
                     f"<n:Pull><n:EnumerationContext>{context}</n:EnumerationContext></n:Pull>").replace(
        WILDCARD, "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_InstDeletion")
    page = p.send_message(pull).decode()
    assert "CIM_InstDeletion" in page and "Edsger" in page
    local.close()


def test_pull_subscriptions_hold_no_thread_between_pulls(served: Running) -> None:
    """Twenty live Pull subscriptions (raw pywinrm, in WinRM's shape) add no thread to the server: each
    Pull steps its subscription's events itself. Then one delete reaches all twenty, and Unsubscribe
    closes each (the engine lets go of them)."""
    from winrm.protocol import Protocol

    local = openmi.Application()
    eng = local.new_session(server=served.engine)
    eng.create(person(4, "Hedy"))
    port = served.http_port
    p = Protocol(endpoint=f"http://127.0.0.1:{port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    subscribe = _envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe", f"""
  <e:Subscribe>
   <e:Delivery Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull"><w:Heartbeats>PT1.000S</w:Heartbeats></e:Delivery>
   <w:Filter Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL">{DELETIONS}</w:Filter>
  </e:Subscribe>""")

    def new() -> str:
        resp = p.send_message(subscribe).decode()
        return re.search(r"<n:EnumerationContext>([^<]+)<", resp).group(1)  # type: ignore[union-attr]

    def unsubscribe(context: str) -> None:
        p.send_message(_envelope(port, "http://schemas.xmlsoap.org/ws/2004/08/eventing/Unsubscribe",
                                 "<e:Unsubscribe/>", f"<e:Identifier>{context}</e:Identifier>"))

    unsubscribe(new())  # (a first one warms the connection and the server's pools)
    assert served.engine.indications.watched() == []
    before = threading.active_count()
    contexts = [new() for _ in range(20)]
    assert threading.active_count() - before <= 2  # (one pool thread may start; one per subscription would be 20)
    eng.delete(person(4))
    for context in contexts:
        page = p.send_message(_envelope(port, "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull", f"""
  <n:Pull><n:EnumerationContext>{context}</n:EnumerationContext><n:MaxElements>10</n:MaxElements></n:Pull>""")).decode()
        assert page.count("CIM_InstDeletion") >= 1 and "Hedy" in page
    assert len(served.engine.indications.watched()) == 1
    for context in contexts:
        unsubscribe(context)
    assert len(served.server.service.subscriptions) == 0
    assert served.engine.indications.watched() == []  # every engine subscription closed


def test_a_static_method_call_is_heard_remotely(served: Running) -> None:
    """CIM_InstMethodCall of a static method: its SourceInstance is the class with no instance (an embedded
    instance with no properties on the wire), which the client reads as such, not as text."""
    with openmi.Application() as app:
        s = remote(app, served)
        query = "SELECT * FROM CIM_InstMethodCall WHERE SourceInstance ISA 'Sample_Watched'"
        with s.subscribe(NS, "WQL", query, flags=STARTED) as op:
            assert op.get_indication(timeout=WAIT).result == MIResult.OK
            assert s.invoke_method("Sample_Watched", "Add", {"A": 2, "B": 3})["Sum"] == 5
            r = op.get_indication(timeout=WAIT)
            assert r.result == MIResult.OK and r.instance is not None, r.error_message
            assert r.instance["MethodName"] == "Add"
            src = r.instance["SourceInstance"]
            assert isinstance(src, Instance) and src.class_name == "Sample_Watched"

"""A remote subscription against a WinRM-shaped peer, replayed from a loopback server (tests/fixtures/winrm-spec
30–33): the request our client sends in WinRM's shape (the WMI wildcard URI, Pull mode, Heartbeats,
SendBookmarks, a WQL filter), a heartbeat answer that ends nothing, ``wsman:Event``-wrapped events with an XML
bookmark, and the Unsubscribe a cancel sends with the manager's Identifier."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import DestinationOptions, MIResult, OperationFlags, SubscriptionDeliveryOptions
from openmi.wsman_server.http import HTTPRequest, HTTPResponse, HTTPServer, Listener

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "winrm-spec"
WAIT = 30.0


class WinRMPeer:
    """Answers Subscribe, Pull and Unsubscribe with the recorded shapes, each RelatesTo set to the request's
    MessageID. The third Pull is held until ``release`` is set (a long poll with nothing to say)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.pulls = 0
        self.release = threading.Event()
        self.http = HTTPServer([Listener("127.0.0.1", 0)], lambda peer, secure: self)
        self.http.start()
        self.port = self.http.listeners[0].port

    def handle(self, request: HTTPRequest) -> HTTPResponse:
        body = request.body.decode()
        self.seen.append(body)
        action = re.search(r"<a:Action[^>]*>([^<]+)<", body).group(1)  # type: ignore[union-attr]
        if action.endswith("/Subscribe"):
            name = "30-subscribe-pull-response"
        elif action.endswith("/Pull"):
            self.pulls += 1
            if self.pulls == 1:
                name = "31-pull-heartbeat-response"
            elif self.pulls == 2:
                name = "32-pull-events-response"
            else:
                self.release.wait(WAIT)
                name = "31-pull-heartbeat-response"
        elif action.endswith("/Unsubscribe"):
            name = "33-unsubscribe-response"
        else:
            return HTTPResponse(500, b"unexpected " + action.encode())
        data = (FIXTURES / f"{name}.xml").read_bytes()
        mid = re.search(r"<a:MessageID>([^<]+)<", body).group(1).encode()  # type: ignore[union-attr]
        data = re.sub(rb"(<a:RelatesTo>)[^<]*(<)", rb"\g<1>" + mid + rb"\g<2>", data)
        return HTTPResponse(200, data, [("Content-Type", "application/soap+xml;charset=UTF-8")])

    def shutting_down(self, request: HTTPRequest) -> HTTPResponse:
        return HTTPResponse(503)

    def closed(self) -> None:
        return None


@pytest.fixture
def peer() -> Iterator[WinRMPeer]:
    p = WinRMPeer()
    yield p
    p.release.set()
    p.http.shutdown(2)


def test_winrm_shaped_subscription(peer: WinRMPeer) -> None:
    query = "SELECT * FROM __InstanceDeletionEvent WITHIN 5 WHERE TargetInstance ISA 'Win32_Service'"
    o = DestinationOptions("http", peer.port, uri_style="wmi", type_results=False)
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", o)
        with s.subscribe("root/cimv2", "WQL", query, flags=OperationFlags.REPORT_OPERATION_STARTED,
                         delivery_options=SubscriptionDeliveryOptions(heartbeat=5)) as op:
            started = op.get_indication(timeout=WAIT)
            assert started.instance is None and started.more_results and started.result == MIResult.OK
            first, second = op.get_indication(timeout=WAIT), op.get_indication(timeout=WAIT)
            for r in (first, second):
                assert r.instance is not None and r.instance.class_name == "__InstanceDeletionEvent"
                assert r.machine_id == "127.0.0.1"
            assert [r.instance["TargetInstance"]["Name"] for r in (first, second)] == ["Spooler", "W32Time"]
            assert first.bookmark is None  # a page's bookmark belongs to its last event
            assert second.bookmark is not None and 'RecordId="2"' in second.bookmark
            op.cancel()
            peer.release.set()
            final = op.get_indication(timeout=WAIT)
            assert not final.more_results and final.result == MIResult.FAILED
    subscribe = peer.seen[0]
    assert "<w:ResourceURI s:mustUnderstand=\"true\">http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*" \
        in subscribe
    assert "__cimnamespace" not in subscribe
    assert 'Mode="http://schemas.dmtf.org/wbem/wsman/1/wsman/Pull"' in subscribe
    assert "<w:Heartbeats>PT5.000S</w:Heartbeats>" in subscribe and "<w:SendBookmarks/>" in subscribe
    assert 'Dialect="http://schemas.microsoft.com/wbem/wsman/1/WQL"' in subscribe and "WITHIN 5" in subscribe
    pulls = [b for b in peer.seen if "/enumeration/Pull<" in b]
    assert len(pulls) >= 2  # the heartbeat, the events (a third may be under way when cancel comes)
    assert all("uuid:0B3C1AA9-7E0D-4F6B-8C1E-5D2A9E7F3B10</n:EnumerationContext>" in b for b in pulls)
    assert all("/wmi/root/cimv2/*</w:ResourceURI>" in b for b in pulls)
    unsubscribe = [b for b in peer.seen if "/eventing/Unsubscribe<" in b]
    assert len(unsubscribe) == 1
    assert "<e:Identifier" in unsubscribe[0] and "uuid:0B3C1AA9-7E0D-4F6B-8C1E-5D2A9E7F3B10</e:Identifier>" \
        in unsubscribe[0]

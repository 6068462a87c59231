"""Enumerate and Pull through a real socket honour MaxElements: exactly that many items per answer while
more remain, and one item when MaxElements is absent (DSP0226's default), for Pull and for an optimized
Enumerate alike."""

from __future__ import annotations

import base64
import http.client
import uuid

from lxml import etree

import openmi
from openmi import MIType

from .conftest import PASSWORD, Running

WSEN = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
RESOURCE = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/Sample_Person"
COUNT = 5


def envelope(action: str, body: str) -> bytes:
    return f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="{WSMAN}" xmlns:n="{WSEN}">
<s:Header><a:To>http://localhost/wsman</a:To><w:ResourceURI s:mustUnderstand="true">{RESOURCE}</w:ResourceURI>
<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
<a:Action s:mustUnderstand="true">{WSEN}/{action}</a:Action><a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>
</s:Header><s:Body>{body}</s:Body></s:Envelope>""".encode()


class Client:
    def __init__(self, served: Running) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", served.http_port, timeout=30)
        self.auth = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()

    def send(self, action: str, body: str) -> tuple[int, str | None, bool]:
        """(items in the answer, the enumeration context to go on with, end of sequence)."""
        self.conn.request("POST", "/wsman", envelope(action, body),
                          {"Content-Type": "application/soap+xml;charset=UTF-8", "Authorization": self.auth})
        resp = self.conn.getresponse()
        data = resp.read()
        assert resp.status == 200, data
        root = etree.fromstring(data)
        items = root.find(f".//{{{WSEN}}}Items")
        if items is None:
            items = root.find(f".//{{{WSMAN}}}Items")
        ctx = root.find(f".//{{{WSEN}}}EnumerationContext")
        end = any(root.find(f".//{{{ns}}}EndOfSequence") is not None for ns in (WSEN, WSMAN))
        return (0 if items is None else len(items)), (ctx.text if ctx is not None else None), end

    def pull(self, context: str, max_elements: int | None) -> tuple[int, str | None, bool]:
        limit = "" if max_elements is None else f"<n:MaxElements>{max_elements}</n:MaxElements>"
        return self.send("Pull", f"<n:Pull><n:EnumerationContext>{context}</n:EnumerationContext>{limit}</n:Pull>")


def people(served: Running) -> Client:
    with openmi.Application() as app:
        s = app.new_session(server=served.engine)
        for i in range(COUNT):
            inst = app.new_instance("Sample_Person")
            inst.add_element("Id", i, MIType.UINT32, openmi.MIFlag.KEY)
            s.create(inst)
    return Client(served)


def test_pull_without_max_elements_gives_one_item(served_unencrypted: Running) -> None:
    client = people(served_unencrypted)
    n, ctx, end = client.send("Enumerate", "<n:Enumerate/>")
    assert (n, end) == (0, False) and ctx
    rounds = []
    while not end:
        assert ctx is not None
        n, ctx, end = client.pull(ctx, None)
        rounds.append(n)
    # one per Pull; the end comes with the last item or (as the server cannot know it yet) in an empty answer
    assert rounds[:COUNT] == [1] * COUNT and rounds[COUNT:] in ([], [0]) and ctx is None


def test_pull_gives_max_elements_items(served_unencrypted: Running) -> None:
    client = people(served_unencrypted)
    _, ctx, _ = client.send("Enumerate", "<n:Enumerate/>")
    assert ctx is not None
    n, ctx, end = client.pull(ctx, 2)
    assert (n, end) == (2, False) and ctx
    n, ctx2, end = client.pull(ctx, 1)
    assert (n, end) == (1, False) and ctx2 == ctx  # the same context goes on
    n, ctx, end = client.pull(ctx, 100)  # more than remain: the rest, and the end
    assert (n, ctx, end) == (2, None, True)


def test_optimized_enumerate_honours_max_elements_and_defaults_to_one(served_unencrypted: Running) -> None:
    client = people(served_unencrypted)
    n, ctx, end = client.send("Enumerate", "<n:Enumerate><w:OptimizeEnumeration/></n:Enumerate>")
    assert (n, end) == (1, False) and ctx
    n, ctx, end = client.send("Enumerate", "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>3</w:MaxElements>"
                                           "</n:Enumerate>")
    assert (n, end) == (3, False) and ctx
    assert ctx is not None
    assert client.pull(ctx, 3) == (2, None, True)
    n, ctx, end = client.send("Enumerate", "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>9</w:MaxElements>"
                                           "</n:Enumerate>")
    assert (n, ctx, end) == (COUNT, None, True)  # everything in the first answer: no context to pull on

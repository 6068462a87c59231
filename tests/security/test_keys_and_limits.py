"""Issue 16 items 6 and 7: string keys are compared exactly as stored, in selectors and bodies alike; an
instance no response could carry is not written, and an enumeration never drops an item silently."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree

import openmi
from openmi import AuthType, DestinationOptions, MIResult, MIType
from openmi.protocol import wsman
from openmi.protocol.wsman.values import read_selector_set

from .support import (
    CREATE,
    DELETE,
    ENUMERATE,
    GET,
    PULL,
    PUT,
    SOAP,
    WMI,
    Running,
    basic,
    envelope,
    https,
    post,
    selector,
)

NAMED = openmi.Class("Sample_Named", properties=[openmi.Property("Name", MIType.STRING, key=True),
                                                  openmi.Property("Note", MIType.STRING)])


def named_body(name: str, note: str) -> str:
    return (f'<p:Sample_Named xmlns:p="{WMI}Sample_Named"><p:Name>{name}</p:Name><p:Note>{note}</p:Note>'
            "</p:Sample_Named>")


@pytest.fixture
def named(served: Running) -> Running:
    served.engine.define_class("root/cimv2", NAMED)
    return served


def call(r: Running, body: bytes, expected: wsman.Request) -> wsman.Response:
    _, h, data = post(https(r), body, {"Authorization": basic()})
    assert h["content-type"].startswith("application/soap+xml")
    m = re.search(rb"<a:MessageID>([^<]+)</a:MessageID>", body)
    assert m is not None
    expected.message_id = m.group(1).decode()
    return wsman.parse_response(data, SOAP, expected)


def names(r: Running) -> list[str]:
    with openmi.Application() as app:
        return sorted(i["Name"] for i in app.new_session(server=r.engine).enumerate("Sample_Named"))


# --- 6: whitespace in string keys is significant, in selectors as in bodies ---------------------------------------


def test_selector_values_are_kept_exactly() -> None:
    ss = etree.fromstring(
        '<w:SelectorSet xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">'
        '<w:Selector Name="Name"> x </w:Selector><w:Selector Name="Id">\n 7 \n</w:Selector>'
        '<w:Selector Name="__cimnamespace"> root/test </w:Selector></w:SelectorSet>')
    assert read_selector_set(ss) == {"Name": " x ", "Id": "\n 7 \n", "__cimnamespace": "root/test"}


def test_create_get_delete_with_spaces_in_the_key_over_raw_wsman(named: Running) -> None:
    created = call(named, envelope(CREATE, "Sample_Named", body=named_body(" x ", "spaced")), wsman.CreateRequest())
    assert isinstance(created, wsman.CreateResponse) and created.instance_name is not None
    assert created.instance_name["Name"] == " x "  # the EPR names what was stored
    call(named, envelope(CREATE, "Sample_Named", body=named_body("x", "plain")), wsman.CreateRequest())
    assert names(named) == [" x ", "x"]  # two instances
    got = call(named, envelope(GET, "Sample_Named", selector("Name", " x ")), wsman.GetRequest())
    assert isinstance(got, wsman.GetResponse) and got.instance["Note"] == "spaced"
    got = call(named, envelope(GET, "Sample_Named", selector("Name", "x")), wsman.GetRequest())
    assert isinstance(got, wsman.GetResponse) and got.instance["Note"] == "plain"
    with pytest.raises(openmi.MIError) as ei:
        call(named, envelope(GET, "Sample_Named", selector("Name", "  x")), wsman.GetRequest())
    assert ei.value.result == MIResult.NOT_FOUND
    call(named, envelope(DELETE, "Sample_Named", selector("Name", " x ")), wsman.DeleteRequest())
    assert names(named) == ["x"]  # Delete ' x ' removed ' x ' and nothing else


def test_numeric_keys_still_ignore_spacing(served: Running) -> None:
    body = f'<p:Sample_Person xmlns:p="{WMI}Sample_Person"><p:Id>4</p:Id><p:Name>four</p:Name></p:Sample_Person>'
    call(served, envelope(CREATE, "Sample_Person", body=body), wsman.CreateRequest())
    got = call(served, envelope(GET, "Sample_Person", selector("Id", "\n  4  \n")), wsman.GetRequest())
    assert isinstance(got, wsman.GetResponse) and got.instance["Name"] == "four"


@pytest.mark.parametrize("auth", [AuthType.BASIC, AuthType.NTLM])
def test_remote_session_round_trips_a_spaced_key(named: Running, auth: str) -> None:
    o = DestinationOptions("https", named.https_port, ca_file=str(named.cert))
    o.add_credentials(auth, "alice", "Secr3t-pw!")
    with openmi.Application() as app:
        s = app.new_session("127.0.0.1", "WINRM", o)
        for key in (" x ", "x", "\tx"):
            s.create(openmi.Instance("Sample_Named", {"Name": key, "Note": repr(key)}))
        for key in (" x ", "x", "\tx"):
            assert s.get(openmi.Instance("Sample_Named", {"Name": key}))["Note"] == repr(key)
        s.modify(openmi.Instance("Sample_Named", {"Name": " x ", "Note": "changed"}))
        assert s.get(openmi.Instance("Sample_Named", {"Name": "x"}))["Note"] == "'x'"
        s.delete(openmi.Instance("Sample_Named", {"Name": " x "}))
        assert sorted(i["Name"] for i in s.enumerate("Sample_Named")) == ["\tx", "x"]


# --- 7: what cannot be sent is not written, and never dropped from an enumeration -------------------------------


def test_a_write_whose_reply_could_not_fit_is_refused(named: Running) -> None:
    with pytest.raises(openmi.MIError) as ei:  # 200 KB of '>' is 800 KB escaped, over the 512,000 limit
        call(named, envelope(CREATE, "Sample_Named", body=named_body("big", ">" * 200_000)), wsman.CreateRequest())
    assert ei.value.result == MIResult.SERVER_LIMITS_EXCEEDED and "could never be read back" in str(ei.value)
    assert isinstance(ei.value, wsman.WSManFault) and ei.value.fault.subcode_name == "wsman:EncodingLimit"
    assert names(named) == []
    # what fits is written and can be read back, and a Put that would not fit is refused alike
    call(named, envelope(CREATE, "Sample_Named", body=named_body("ok", ">" * 100_000)), wsman.CreateRequest())
    got = call(named, envelope(GET, "Sample_Named", selector("Name", "ok")), wsman.GetRequest())
    assert isinstance(got, wsman.GetResponse) and got.instance["Note"] == ">" * 100_000
    with pytest.raises(openmi.MIError) as ei:
        call(named, envelope(PUT, "Sample_Named", selector("Name", "ok"), body=named_body("ok", ">" * 150_000)),
             wsman.PutRequest())
    assert ei.value.result == MIResult.SERVER_LIMITS_EXCEEDED
    got = call(named, envelope(GET, "Sample_Named", selector("Name", "ok")), wsman.GetRequest())
    assert isinstance(got, wsman.GetResponse) and got.instance["Note"] == ">" * 100_000


def test_optimized_enumerate_and_pulls_carry_every_item_whatever_their_size(named: Running) -> None:
    with openmi.Application() as app:
        local = app.new_session(server=named.engine)
        for i in range(8):
            local.create(openmi.Instance("Sample_Named", {"Name": f"n{i}", "Note": str(i) * 100_000}))
    o = DestinationOptions("https", named.https_port, ca_file=str(named.cert), max_elements=8)
    o.add_credentials(AuthType.BASIC, "alice", "Secr3t-pw!")
    with openmi.Application() as app:
        got = [i["Name"] for i in app.new_session("127.0.0.1", "WINRM", o).enumerate("Sample_Named")]
    assert sorted(got) == [f"n{i}" for i in range(8)]  # each exactly once, over several Pulls


def test_a_small_max_envelope_size_gets_fewer_items_per_pull(named: Running) -> None:
    with openmi.Application() as app:
        local = app.new_session(server=named.engine)
        for i in range(6):
            local.create(openmi.Instance("Sample_Named", {"Name": f"n{i}", "Note": "z" * 3000}))
    small = '<w:MaxEnvelopeSize s:mustUnderstand="true">8192</w:MaxEnvelopeSize>'
    first = call(named, envelope(ENUMERATE, "Sample_Named", extra=small, body=(
        "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>6</w:MaxElements></n:Enumerate>")),
        wsman.EnumerateRequest(optimize=True))
    assert isinstance(first, wsman.EnumerateResponse) and 1 <= len(first.items) < 6 and first.context
    seen = [i["Name"] for i in first.items]
    context = first.context
    while context:
        r = call(named, envelope(PULL, "Sample_Named", extra=small, body=(
            f"<n:Pull><n:EnumerationContext>{context}</n:EnumerationContext><n:MaxElements>6</n:MaxElements>"
            "</n:Pull>")), wsman.PullRequest(context=context))
        assert isinstance(r, wsman.PullResponse) and r.items
        seen += [i["Name"] for i in r.items]
        context = None if r.end_of_sequence else r.context
    assert sorted(seen) == [f"n{i}" for i in range(6)]


class Huge:
    """A provider whose second instance no envelope can carry."""

    def enumerate_instances(self, ctx: Any, ns: str, cls: str, keys_only: bool) -> Iterator[openmi.Instance]:
        for i, size in ((1, 10), (2, 700_000), (3, 10)):
            inst = ctx.new_instance("Sample_Huge")
            inst["Id"] = i
            inst["Blob"] = "b" * size
            yield inst


def test_an_item_that_cannot_be_sent_fails_the_pull_naming_it(served: Running) -> None:
    served.engine.define_class("root/cimv2", openmi.Class("Sample_Huge", properties=[
        openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Blob", MIType.STRING)]))
    served.engine.register_provider("root/cimv2", "Sample_Huge", Huge())
    start = call(served, envelope(ENUMERATE, "Sample_Huge", body="<n:Enumerate/>"), wsman.EnumerateRequest())
    assert isinstance(start, wsman.EnumerateResponse) and start.context

    def pull() -> wsman.Response:
        return call(served, envelope(PULL, "Sample_Huge", body=(
            f"<n:Pull><n:EnumerationContext>{start.context}</n:EnumerationContext></n:Pull>")),
            wsman.PullRequest(context=start.context or ""))

    first = pull()
    assert isinstance(first, wsman.PullResponse) and [i["Id"] for i in first.items] in ([1], ["1"])
    with pytest.raises(openmi.MIError) as ei:
        pull()
    assert ei.value.result == MIResult.SERVER_LIMITS_EXCEEDED
    assert "Sample_Huge.Id=2" in str(ei.value) or "Sample_Huge.Id='2'" in str(ei.value)
    with pytest.raises(openmi.MIError) as ei:
        pull()  # the enumeration ended with the fault: nothing after the item is handed out as if it were next
    assert ei.value.result == MIResult.INVALID_ENUMERATION_CONTEXT

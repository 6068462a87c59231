"""Independent clients from PyPI and Debian against a real ``openmi serve`` on loopback:
pypsrp's WSMan (Basic over HTTPS, NTLM over HTTP with message encryption), pywinrm, Debian's wsl."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan

import openmi
from openmi import MIResult

from .conftest import PASSWORD, Running

WMI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/"
NS = "{" + WMI + "Sample_Person}"
P = NS + "Sample_Person"


def pypsrp_clients(r: Running) -> list[tuple[str, WSMan]]:
    return [
        ("basic-https", WSMan("127.0.0.1", port=r.https_port, username="alice", password=PASSWORD, ssl=True,
                              auth="basic", cert_validation=str(r.cert), encryption="never")),
        ("ntlm-http-encrypted", WSMan("127.0.0.1", port=r.http_port, username="alice", password=PASSWORD, ssl=False,
                                      auth="ntlm", encryption="always")),
    ]


def person_body(pid: int, name: str) -> ET.Element:
    el = ET.Element(P)
    ET.SubElement(el, NS + "Id").text = str(pid)
    ET.SubElement(el, NS + "Name").text = name
    return el


def selectors(pid: int) -> SelectorSet:
    s = SelectorSet()
    s.add_option("Id", str(pid))
    return s


@pytest.mark.parametrize("which", ["basic-https", "ntlm-http-encrypted"])
def test_pypsrp_every_operation(served: Running, which: str) -> None:
    w = dict(pypsrp_clients(served))[which]
    uri = WMI + "Sample_Person"
    created = w.create(uri, person_body(1, "Ada"))
    assert "ResourceCreated" in ET.tostring(created).decode()
    got = w.get(uri, selector_set=selectors(1))
    assert got.find(f".//{P}").find(NS + "Name").text == "Ada"  # type: ignore[union-attr]
    put = w.put(uri, person_body(1, "Grace"), selector_set=selectors(1))
    assert "Grace" in ET.tostring(put).decode()
    for i in range(2, 6):
        w.create(uri, person_body(i, f"p{i}"))
    # Enumerate (not optimized) then Pull until the end
    enum_body = ET.Element("{{{}}}Enumerate".format(NAMESPACES["wsen"]))
    resp = w.enumerate(uri, enum_body)
    ctx = resp.find(".//{{{}}}EnumerationContext".format(NAMESPACES["wsen"]))
    assert ctx is not None and ctx.text
    names = []
    context = ctx.text
    while context:
        pull = ET.Element("{{{}}}Pull".format(NAMESPACES["wsen"]))
        ET.SubElement(pull, "{{{}}}EnumerationContext".format(NAMESPACES["wsen"])).text = context
        ET.SubElement(pull, "{{{}}}MaxElements".format(NAMESPACES["wsen"])).text = "2"
        p = w.pull(uri, pull)
        names += [e.text for e in p.iter(NS + "Name")]
        nxt = p.find(".//{{{}}}EnumerationContext".format(NAMESPACES["wsen"]))
        end = p.find(".//{{{}}}EndOfSequence".format(NAMESPACES["wsen"]))
        context = None if end is not None or nxt is None else nxt.text
    assert sorted(names) == ["Grace", "p2", "p3", "p4", "p5"]
    w.delete(uri, selector_set=selectors(1))
    with pytest.raises(WSManFaultError) as ei:
        w.delete(uri, selector_set=selectors(1))
    assert "Sample_Person" in str(ei.value.reason) or "Id" in str(ei.value)
    # Invoke a static method with _INPUT / _OUTPUT
    inp = ET.Element(f"{{{WMI}Sample_Watched}}Add_INPUT")
    ET.SubElement(inp, f"{{{WMI}Sample_Watched}}A").text = "40"
    ET.SubElement(inp, f"{{{WMI}Sample_Watched}}B").text = "2"
    out = w.invoke(WMI + "Sample_Watched/Add", WMI + "Sample_Watched", inp)
    assert out.find(f".//{{{WMI}Sample_Watched}}Sum").text == "42"  # type: ignore[union-attr]
    assert out.find(f".//{{{WMI}Sample_Watched}}ReturnValue").text == "0"  # type: ignore[union-attr]


def test_pypsrp_wrong_password_is_refused(served: Running) -> None:
    from pypsrp.exceptions import AuthenticationError

    for auth, port, ssl, enc in (("basic", served.https_port, True, "never"), ("ntlm", served.http_port, False,
                                                                              "always")):
        w = WSMan("127.0.0.1", port=port, username="alice", password="wrong", ssl=ssl, auth=auth,
                  cert_validation=False, encryption=enc)
        with pytest.raises((AuthenticationError, WSManFaultError, Exception)):
            w.get(WMI + "Sample_Watched", selector_set=selectors(1))
    assert served.recorder.calls == []


def test_pywinrm_raw_delete(served_unencrypted: Running) -> None:
    from winrm.exceptions import WSManFaultError as WinRMFault
    from winrm.protocol import Protocol

    r = served_unencrypted
    app = openmi.Application()
    s = app.new_session(server=r.engine)
    s.create(openmi.Instance("Sample_Person", {"Id": 7, "Name": "Ada"}))
    p = Protocol(endpoint=f"http://127.0.0.1:{r.http_port}/wsman", transport="basic", username="alice",
                 password=PASSWORD, message_encryption="never")
    envelope = f"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
  xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
  xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
 <s:Header>
  <a:To>http://127.0.0.1:{r.http_port}/wsman</a:To>
  <w:ResourceURI s:mustUnderstand="true">{WMI}Sample_Person</w:ResourceURI>
  <a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>
  <a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete</a:Action>
  <w:MaxEnvelopeSize s:mustUnderstand="true">153600</w:MaxEnvelopeSize>
  <a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>
  <w:OperationTimeout>PT20S</w:OperationTimeout>
  <w:SelectorSet><w:Selector Name="Id">7</w:Selector></w:SelectorSet>
 </s:Header>
 <s:Body/>
</s:Envelope>"""
    resp = p.send_message(envelope)
    assert b"DeleteResponse" in resp or b"transfer/DeleteResponse" in resp
    assert s.enumerate("Sample_Person") == []
    with pytest.raises(WinRMFault) as ei:  # the same Delete again: a fault, HTTP 500
        p.send_message(envelope.replace("uuid:", "uuid:1"))
    assert ei.value.code == 500
    assert ei.value.fault_subcode == "a:DestinationUnreachable"
    assert ei.value.wsman_fault_code == 0x80041002  # WBEM_E_NOT_FOUND, as WinRM reports WMI's NOT_FOUND
    assert "Id=7" in str(ei.value)
    app.close()


@pytest.mark.skipif(shutil.which("wsl") is None, reason="Debian's wsl is not installed (scripts/test-deps.sh)")
def test_debian_wsl_enumerates(served_unencrypted: Running, tmp_path: Path) -> None:
    r = served_unencrypted
    app = openmi.Application()
    s = app.new_session(server=r.engine)
    for i in range(3):
        s.create(openmi.Instance("Sample_Person", {"Id": i, "Name": f"wsl{i}"}))
    env = dict(os.environ, WSENDPOINT=f"127.0.0.1:{r.http_port}", WSUSER="alice", WSPASS=PASSWORD, WSNOSSL="1",
               WSAUTOMATED="1", KEEPHISTORY="0", OUTLEVEL="2", HOME=str(tmp_path))
    p = subprocess.run(["wsl", "enum", "Sample_Person"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    for i in range(3):
        assert f"wsl{i}" in p.stdout
    assert "EndOfSequence" in p.stdout
    app.close()


def test_our_client_against_our_server(served: Running) -> None:
    """The MI API over WS-Man, Basic over HTTPS with the server's CA, and NTLM with encryption."""
    app = openmi.Application()
    for opts in (openmi.DestinationOptions("https", served.https_port, ca_file=str(served.cert)),
                 openmi.DestinationOptions("http", served.http_port)):
        auth = openmi.AuthType.BASIC if opts.transport == "https" else openmi.AuthType.NTLM
        opts.add_credentials(auth, "alice", PASSWORD)
        s = app.new_session("127.0.0.1", "WINRM", opts)
        s.create(openmi.Instance("Sample_Person", {"Id": 1, "Name": "Ada"}))
        assert s.get(openmi.Instance("Sample_Person", {"Id": 1}))["Name"] == "Ada"
        with s.delete_instance("root/cimv2", openmi.Instance("Sample_Person", {"Id": 1})) as op:
            assert op.get_instance() == (None, False, MIResult.OK, None, None)
        with s.delete_instance("root/cimv2", openmi.Instance("Sample_Person", {"Id": 1})) as op:
            r = op.get_instance()
        assert r.result == MIResult.NOT_FOUND and r.error_details is not None
        assert r.error_details["CIMStatusCode"] == 6
        s.close()
    app.close()

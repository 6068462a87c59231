"""The `wmi` idioms against WinRM's answer shapes (tests/fixtures/winrm-spec), replayed from a loopback
server: a WQL query answered with WinRM's XmlFragment projection, its CannotProcessFilter fault, and
Win32_Process.Create's out-parameters — from a server that will not answer GetClass."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmi import wmi
from tests.client.test_remote import Replay, winrm

# What a WinRM that does not serve GetClass answers: the action is not supported, so values stay text.
NO_GETCLASS = b"""<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header>
<a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action>
<a:MessageID>uuid:00000000-0000-0000-0000-0000000000AA</a:MessageID>
<a:RelatesTo>uuid:00000000-0000-0000-0000-000000000000</a:RelatesTo></s:Header>
<s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>a:ActionNotSupported</s:Value>
</s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The action is not supported by the service.</s:Text>
</s:Reason></s:Fault></s:Body></s:Envelope>"""


@pytest.fixture
def replay(tmp_path: Path) -> Iterator[tuple[Replay, Path]]:
    r = Replay()
    refusal = tmp_path / "no-getclass-response.xml"
    refusal.write_bytes(NO_GETCLASS)
    yield r, refusal
    r.http.shutdown(2)


def test_query_projection_fault_and_a_static_method_against_winrm_shapes(replay: tuple[Replay, Path]) -> None:
    r, refusal = replay
    c = wmi.WMI(computer=f"http://127.0.0.1:{r.port}/wsman")
    r.queue = [winrm("24-enumerate-wql-projection"), refusal]
    procs = c.query("SELECT Name, ProcessId, CreationDate, Roles FROM Win32_Process")
    assert [p.Name for p in procs] == ["svchost.exe", "System"]
    assert str(procs[0].ProcessId) == "612" and procs[1].CreationDate is None
    sent = r.seen[0]
    assert b"/wmi/root/cimv2/*" in sent and b"http://schemas.microsoft.com/wbem/wsman/1/WQL" in sent
    assert b"SELECT Name, ProcessId, CreationDate, Roles FROM Win32_Process" in sent

    r.queue = [winrm("25-enumerate-wql-cannotprocessfilter")]
    with pytest.raises(wmi.x_wmi_invalid_query) as bad:
        c.query("SELECT Nmae FROM Win32_Process")
    assert ctypes.c_uint(bad.value.com_error.excepinfo[5]).value == 0x80041017

    r.queue = [refusal, winrm("23-invoke-win32process-create")]
    pid, rv = c.Win32_Process.Create(CommandLine="notepad.exe")  # sorted by name: ProcessId, ReturnValue
    assert int(pid) == 4000 and int(rv) == 0
    invoke = r.seen[-1]
    assert b"/wmi/root/cimv2/Win32_Process/Create" in invoke and b"notepad.exe" in invoke


def test_keyword_filters_are_escaped_on_the_wire(replay: tuple[Replay, Path]) -> None:
    r, refusal = replay
    c = wmi.WMI(computer=f"http://127.0.0.1:{r.port}/wsman")
    r.queue = [winrm("24-enumerate-wql-projection"), refusal]
    c.Win32_Process(Name="it's \\ here")
    assert b"WHERE Name = 'it\\'s \\\\ here'" in r.seen[0]

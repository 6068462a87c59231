"""The most common `wmi` idioms (spec pymi-wmi.md §A.3), written as real scripts write them, against the
embedded server and against `openmi serve` over Basic/HTTPS and NTLM/HTTP with message encryption."""

from __future__ import annotations

import ctypes
import datetime as _dt

import pytest

from openmi import wmi

from .conftest import Target


def test_1_2_3_connect_and_list_processes_by_attribute(target: Target) -> None:
    c = target.connect()
    procs = c.Win32_Process()
    assert {p.Name for p in procs} >= {"notepad.exe", "explorer.exe"}
    for p in procs:
        assert isinstance(p.ProcessId, int) and p.Handle == str(p.ProcessId)
    (np,) = c.Win32_Process(Name="notepad.exe")
    assert np.CommandLine == "notepad.exe"
    assert [p.ProcessId for p in c.Win32_Process(name="notepad.exe")] == [np.ProcessId]  # lower-case key


def test_4_5_create_then_terminate_a_process(target: Target) -> None:
    c = target.connect()
    pid, rv = c.Win32_Process.Create(CommandLine="calc.exe")  # out-parameters sorted by name
    assert rv == 0 and isinstance(pid, int)
    (proc,) = c.Win32_Process(ProcessId=pid)
    result, = proc.Terminate()
    assert result == 0
    assert pid in [p for p, _ in target.providers["Win32_Process"].terminated]
    assert c.Win32_Process(ProcessId=pid) == []
    assert proc.GetOwner() == ("EXAMPLE", 0, "alice")  # Domain, ReturnValue, User


def test_6_services_by_two_keywords_and_their_methods(target: Target) -> None:
    c = target.connect()
    (fax,) = c.Win32_Service(StartMode="Manual", State="Stopped")
    assert fax.Name == "Fax"
    assert fax.StartService() == (0,)
    assert c.Win32_Service(Name="Fax")[0].State == "Running"
    assert fax.StopService() == (0,)
    running = {s.Name for s in c.Win32_Service(State="Running")}
    assert running == {"Spooler", "RpcSs"}


def test_keyword_values_with_quotes_are_escaped(target: Target) -> None:
    c = target.connect()
    (odd,) = c.Win32_Service(Name="Odd'Name")
    assert odd.DisplayName == "A name with a quote"


def test_7_disks_with_uint64_values(target: Target) -> None:
    c = target.connect()
    fixed = c.Win32_LogicalDisk(DriveType=3)
    assert sorted(d.DeviceID for d in fixed) == ["C:", "E:"]
    c_drive = next(d for d in fixed if d.DeviceID == "C:")
    assert c_drive.FreeSpace == 123_456_789_012 and c_drive.Size == 500_000_000_000


def test_8_9_operating_system_singleton_style(target: Target) -> None:
    c = target.connect()
    os_ = c.Win32_OperatingSystem()[0]
    assert os_.Version == "10.0.20348" and os_.Caption.startswith("Microsoft Windows Server")
    installed = os_.InstallDate
    assert isinstance(installed, str) and installed.startswith("20230506070809")  # Tim Golden: a string …
    assert installed.year == 2023 and installed.datetime.month == 5  # … that answers like PyMI's datetime
    assert wmi.to_time(installed)[:6] == (2023, 5, 6, 7, 8, 9)
    assert os_.Reboot() == (0,)


def test_10_arrays_come_back_as_tuples(target: Target) -> None:
    c = target.connect()
    (nic,) = c.Win32_NetworkAdapterConfiguration(IPEnabled=True)
    assert nic.IPAddress == ("192.0.2.10", "fe80::1")
    assert [n.Description for n in c.Win32_NetworkAdapterConfiguration(IPEnabled=False)] == ["Loopback"]


def test_12_raw_wql_with_a_field_list(target: Target) -> None:
    c = target.connect()
    rows = c.query("SELECT Name, State FROM Win32_Service WHERE StartMode = 'Auto'")
    assert sorted(r.Name for r in rows) == ["RpcSs", "Spooler"]
    fields = c.Win32_Service(["Name"], State="Stopped")
    assert sorted(f.Name for f in fields) == ["Fax", "Odd'Name"]


def test_16_monikers(target: Target) -> None:
    if target.host is None:
        c = wmi.WMI(moniker="//./root/cimv2")
        (spooler_ns,) = c.Win32_Service(Name="Spooler")
        assert spooler_ns.State == "Running"
        one = wmi.WMI(moniker='winmgmts:{impersonationLevel=impersonate}!//./root/cimv2:Win32_Service.Name="Spooler"')
        assert one.DisplayName == "Print Spooler"
        assert wmi.WMI("root/cimv2").Win32_Service(Name="Fax")[0].Name == "Fax"  # a namespace, not a host
    else:
        one = target.connect(moniker='root/cimv2:Win32_Service.Name="Spooler"')
        assert one.DisplayName == "Print Spooler"


def test_17_registry_through_stdregprov_in_root_default(target: Target) -> None:
    r = target.connect(namespace="root/default").StdRegProv
    result, names = r.EnumKey(hDefKey=0x80000002, sSubKeyName="SOFTWARE")
    assert result == 0 and names == ("Microsoft", "Python", "openmi")
    (result,) = r.EnumKey(hDefKey=0x80000002, sSubKeyName="NOPE")[:1]
    assert result == 2


def test_22_an_embedded_instance_argument(target: Target) -> None:
    c = target.connect()
    startup = c.Win32_ProcessStartup.new(ShowWindow=0)  # Tim Golden: keywords to new()
    startup.Title = "hidden"  # PyMI: attributes afterwards
    _pid, rv = c.Win32_Process.Create(CommandLine="hidden.exe", ProcessStartupInformation=startup)
    assert rv == 0
    got = target.providers["Win32_Process"].startups[-1]
    assert got["ShowWindow"] == 0 and got["Title"] == "hidden"


def test_23_associators_and_references(target: Target) -> None:
    c = target.connect()
    (spooler,) = c.Win32_Service(Name="Spooler")
    linked = spooler.associators(wmi_association_class="Win32_DependentService")
    assert sorted(s.Name for s in linked) == ["Fax", "RpcSs"]
    assert sorted(s.Name for s in spooler.associators(wmi_result_class="Win32_Service")) == ["Fax", "RpcSs"]
    refs = spooler.references()
    assert len(refs) == 2 and all(r._mi.get_class_name() == "Win32_DependentService" for r in refs)
    ant = {r.Antecedent.Name for r in refs}  # a reference property reads as the object it names
    assert ant == {"RpcSs", "Spooler"}


def test_24_errors_carry_the_signed_wbem_hresult(target: Target) -> None:
    c = target.connect()
    with pytest.raises(wmi.x_wmi) as info:
        c.get_instance("Win32_Service", {"Name": "NoSuchService"})
    err = info.value.com_error
    assert err is not None and ctypes.c_uint(err.excepinfo[5]).value == 0x80041002
    assert err.hresult == -2147217406 and err.excepinfo[2]
    with pytest.raises(wmi.x_wmi_invalid_query):
        c.query("SELECT Nope FROM Win32_Service")
    with pytest.raises(wmi.x_wmi) as cls_err:
        c.query("SELECT * FROM No_Such_Class")
    assert ctypes.c_uint(cls_err.value.com_error.excepinfo[5]).value in (0x80041010, 0x80041017)


def test_access_denied_is_its_own_exception(remote_target: Target) -> None:
    c = remote_target.connect(user="reader")
    (fax,) = c.Win32_Service(Name="Fax")
    with pytest.raises(wmi.x_access_denied) as info:
        fax.StartService()
    assert ctypes.c_uint(info.value.com_error.hresult).value == 0x80041003


def test_os_win_path_round_trip_and_put(target: Target) -> None:
    c = target.connect()
    (spooler,) = c.Win32_Service(Name="Spooler")
    path = spooler.path_()
    assert path.startswith("\\\\") and path.endswith(':Win32_Service.Name="Spooler"')
    again = wmi.WMI(moniker=path) if target.host is None else target.connect(moniker=path.split("\\", 3)[3])
    assert again.Name == "Spooler"
    p = spooler.path()
    assert p.Class == "Win32_Service" and p.RelPath == 'Win32_Service.Name="Spooler"'


def test_os_win_put_creates_then_modifies_and_delete_removes(target: Target) -> None:
    c = target.connect()
    env = c.Win32_Environment.new()
    env.Name, env.UserName, env.VariableValue = "OPENMI_TEST", "<SYSTEM>", "1"
    env.put()  # it came from new(): CreateInstance
    (got,) = c.Win32_Environment(Name="OPENMI_TEST")
    assert got.VariableValue == "1"
    got.VariableValue = "2"  # a local change …
    assert c.Win32_Environment(Name="OPENMI_TEST")[0].VariableValue == "1"
    got.put()  # … that put() writes: ModifyInstance
    assert c.Win32_Environment(Name="OPENMI_TEST")[0].VariableValue == "2"
    got.Delete_()
    assert c.Win32_Environment(Name="OPENMI_TEST") == []


def test_get_text_is_cim_xml_that_round_trips_as_an_embedded_instance(target: Target) -> None:
    c = target.connect()
    (disk,) = c.Win32_LogicalDisk(DeviceID="C:")
    text = disk.GetText_(1)
    assert text.startswith("<INSTANCE") and 'CLASSNAME="Win32_LogicalDisk"' in text and "C:" in text
    # os-win: build settings, pass their GetText_(1) as an [EmbeddedInstance] argument
    startup = c.Win32_ProcessStartup.new()
    startup.ShowWindow = 7
    startup.Title = 'quoted "title" & <angle>'
    _pid, rv = c.Win32_Process.Create(CommandLine="vm.exe", ProcessStartupInformation=startup.GetText_(1))
    assert rv == 0
    got = target.providers["Win32_Process"].startups[-1]
    assert got.class_name == "Win32_ProcessStartup" and got["ShowWindow"] == 7
    assert got["Title"] == 'quoted "title" & <angle>'


def test_time_helpers() -> None:
    assert wmi.from_time(2024, 1, 31) == "20240131******.******+***"
    assert wmi.from_time(2024, 1, 31, 12, 0, 0, 0, 60) == "20240131120000.000000+060"
    assert wmi.to_time("20240131120000.000000+060") == (2024, 1, 31, 12, 0, 0, 0, 60)
    assert wmi.to_time(_dt.datetime(2024, 1, 31, tzinfo=_dt.timezone.utc))[:3] == (2024, 1, 31)


def test_first_positional_argument_rule() -> None:
    assert wmi._looks_like_moniker("root/cimv2") and wmi._looks_like_moniker("winmgmts:")
    assert wmi._looks_like_moniker("//server/root/cimv2") and wmi._looks_like_moniker("\\\\server\\root")
    assert not wmi._looks_like_moniker("server1") and not wmi._looks_like_moniker("vodev1.example.com")


def test_monikers_parse_as_windows_writes_them() -> None:
    m = wmi.Moniker('winmgmts:{impersonationLevel=impersonate,(Security, !RemoteShutdown)}!//srv/root/cimv2:'
                    'Win32_Directory.Name="c:\\\\windows,x"')
    assert m.server == "srv" and m.namespace == "root/cimv2" and m.class_name == "Win32_Directory"
    assert m.path is not None and m.path["Name"] == "c:\\windows,x"
    assert m.security == {"impersonationlevel": "impersonate"} and m.privileges == ["Security", "!RemoteShutdown"]
    single = wmi.Moniker("winmgmts:root/cimv2:Win32_OperatingSystem=@")
    assert single.class_name == "Win32_OperatingSystem" and single.namespace == "root/cimv2"
    back = wmi.Moniker('\\\\HOST\\root\\cimv2:Win32_Service.Name="Spooler"')
    assert back.server == "HOST" and back.namespace == "root/cimv2" and back.path["Name"] == "Spooler"  # type: ignore[index]


# --- watching for events (idioms 18-21; os-win's watch_for(raw_wql=…) with a timeout) ------------------------


def test_18_tim_golden_watch_for_builds_the_query(target: Target) -> None:
    c = target.connect()
    watcher = c.watch_for(notification_type="Creation", wmi_class="Win32_Process", delay_secs=0.1, Name="calc.exe")
    c.Win32_Process.Create(CommandLine="other.exe")  # filtered out by Name
    pid, _ = c.Win32_Process.Create(CommandLine="calc.exe")
    ev = watcher(timeout_ms=30_000)
    assert ev.ProcessId == pid and ev.Name == "calc.exe"
    assert ev.event_type == "creation" and isinstance(ev.timestamp, _dt.datetime)
    watcher.close()


def test_19_20_raw_wql_and_the_timeout(target: Target) -> None:
    c = target.connect()
    w = c.watch_for(raw_wql="SELECT * FROM __InstanceDeletionEvent WITHIN 0.1 WHERE TargetInstance ISA 'Win32_Process'")
    with pytest.raises(wmi.x_wmi_timed_out):
        w(timeout_ms=300)  # nothing happened yet: PyMI returned at once here, we wait and then raise
    (np,) = c.Win32_Process(Name="notepad.exe")
    np.Terminate()
    ev = w(timeout_ms=30_000)
    assert ev.event_type == "deletion" and ev.Name == "notepad.exe"
    w.close()


def test_21_class_level_watch_for_modification_carries_previous(target: Target) -> None:
    c = target.connect()
    w = c.Win32_Service.watch_for(notification_type="Modification", delay_secs=0.1)
    (fax,) = c.Win32_Service(Name="Fax")
    fax.StartService()
    ev = w(timeout_ms=30_000)
    assert ev.event_type == "modification" and ev.Name == "Fax"
    assert ev.State == "Running" and ev.previous is not None and ev.previous.State == "Stopped"
    w.close()


def test_watch_for_a_class_that_cannot_be_watched_is_an_x_wmi(target: Target) -> None:
    c = target.connect()
    with pytest.raises(wmi.x_wmi) as ei:  # no WITHIN, and its provider cannot report changes
        c.watch_for(raw_wql="SELECT * FROM __InstanceCreationEvent WHERE TargetInstance ISA 'Win32_Process'")
    assert ei.value.com_error is not None  # WMI's WBEMESS_E_REGISTRATION_TOO_PRECISE, as a script checks it
    assert ei.value.com_error.hresult & 0xFFFFFFFF == 0x80042002

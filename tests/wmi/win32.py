"""Win32-shaped classes served by Python providers: what the `wmi` idiom tests talk to.

Win32_Process (Create/Terminate), Win32_Service (StartService/StopService, a dependency association),
Win32_LogicalDisk, Win32_OperatingSystem (one instance, Reboot), Win32_NetworkAdapterConfiguration,
Win32_ProcessStartup (an embedded-instance argument), and StdRegProv in root/default (out-parameters).
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Any

import openmi
from openmi import Class, Instance, Method, MIError, MIResult, MIType, Parameter, Property

T = MIType


def _p(name: str, t: MIType, key: bool = False, **kw: Any) -> Property:
    return Property(name, t, key, **kw)


def define(engine: openmi.Server) -> None:
    ns = "root/cimv2"
    engine.define_class(ns, Class("CIM_ManagedSystemElement", properties=[_p("Caption", T.STRING),
                                                                          _p("Name", T.STRING)]))
    engine.define_class(ns, Class("Win32_ProcessStartup", properties=[_p("ShowWindow", T.UINT16),
                                                                      _p("Title", T.STRING)]))
    engine.define_class(ns, Class("Win32_Process", "CIM_ManagedSystemElement", [
        _p("Handle", T.STRING, True), _p("ProcessId", T.UINT32), _p("CommandLine", T.STRING),
        _p("CreationDate", T.DATETIME), _p("WorkingSetSize", T.UINT64)], methods=[
        Method("Create", T.UINT32, [Parameter("CommandLine", T.STRING, in_=True),
                                    Parameter("CurrentDirectory", T.STRING, in_=True),
                                    Parameter("ProcessStartupInformation", T.INSTANCE, in_=True,
                                              embedded_class="Win32_ProcessStartup"),
                                    Parameter("ProcessId", T.UINT32, in_=False, out=True)],
               qualifiers={"Static": True}),
        Method("Terminate", T.UINT32, [Parameter("Reason", T.UINT32, in_=True)]),
        Method("GetOwner", T.UINT32, [Parameter("Domain", T.STRING, in_=False, out=True),
                                      Parameter("User", T.STRING, in_=False, out=True)])]))
    engine.define_class(ns, Class("Win32_Service", "CIM_ManagedSystemElement", [
        _p("Name", T.STRING, True), _p("State", T.STRING), _p("StartMode", T.STRING), _p("DisplayName", T.STRING)],
        methods=[Method("StartService", T.UINT32), Method("StopService", T.UINT32)]))
    engine.define_class(ns, Class("Win32_DependentService", properties=[
        Property("Antecedent", T.REFERENCE, True, reference_class="Win32_Service"),
        Property("Dependent", T.REFERENCE, True, reference_class="Win32_Service")],
        qualifiers={"Association": True}))
    engine.define_class(ns, Class("Win32_LogicalDisk", "CIM_ManagedSystemElement", [
        _p("DeviceID", T.STRING, True), _p("DriveType", T.UINT32), _p("FreeSpace", T.UINT64), _p("Size", T.UINT64)]))
    engine.define_class(ns, Class("Win32_OperatingSystem", "CIM_ManagedSystemElement", [
        _p("Name", T.STRING, True), _p("Version", T.STRING), _p("InstallDate", T.DATETIME),
        _p("TotalVisibleMemorySize", T.UINT64)], methods=[Method("Reboot", T.UINT32)]))
    engine.define_class(ns, Class("Win32_NetworkAdapterConfiguration", properties=[
        _p("Index", T.UINT32, True), _p("Description", T.STRING), _p("IPEnabled", T.BOOLEAN),
        _p("IPAddress", T.STRINGA)]))
    engine.define_class(ns, Class("Win32_Environment", properties=[  # served by the repository: put() writes it
        _p("Name", T.STRING, True), _p("UserName", T.STRING, True), _p("VariableValue", T.STRING)]))
    engine.create_namespace("root/default")
    engine.define_class("root/default", Class("StdRegProv", methods=[
        Method("EnumKey", T.UINT32, [Parameter("hDefKey", T.UINT32, in_=True),
                                     Parameter("sSubKeyName", T.STRING, in_=True),
                                     Parameter("sNames", T.STRINGA, in_=False, out=True)],
               qualifiers={"Static": True})]))


class Processes:
    """Win32_Process: an in-memory process table."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.table: dict[int, dict[str, Any]] = {}
        self.next_pid = 100
        self.startups: list[Instance] = []
        self.terminated: list[tuple[int, int]] = []
        for cmd in ("System Idle", "notepad.exe", "explorer.exe"):
            self.spawn(cmd)

    def spawn(self, command_line: str) -> int:
        with self.lock:
            pid = self.next_pid
            self.next_pid += 4
            self.table[pid] = {"CommandLine": command_line, "Name": command_line.split()[0],
                               "CreationDate": _dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=_dt.timezone.utc),
                               "WorkingSetSize": 1024 * pid}
            return pid

    def _inst(self, ctx: Any, pid: int) -> Instance:
        row = self.table[pid]
        out = ctx.new_instance("Win32_Process")
        out["Handle"] = str(pid)
        out["ProcessId"] = pid
        out["Caption"] = row["Name"]
        for k in ("Name", "CommandLine", "CreationDate", "WorkingSetSize"):
            out[k] = row[k]
        return out  # type: ignore[no-any-return]

    def enumerate_instances(self, ctx: Any, ns: str, cls: str, keys_only: bool) -> list[Instance]:
        with self.lock:
            pids = sorted(self.table)
        return [self._inst(ctx, p) for p in pids if p in self.table]

    def get_instance(self, ctx: Any, ns: str, inst: Instance) -> Instance:
        pid = int(inst["Handle"])
        with self.lock:
            if pid not in self.table:
                raise MIError(MIResult.NOT_FOUND, f"no process {pid}")
        return self._inst(ctx, pid)

    def invoke(self, ctx: Any, ns: str, cls: str, method: str, inst: Instance | None, params: Instance) -> Any:
        if method == "Create":
            startup = params["ProcessStartupInformation"] if "ProcessStartupInformation" in params else None
            if startup is not None:
                self.startups.append(startup)
            pid = self.spawn(params["CommandLine"])
            return {"ReturnValue": 0, "ProcessId": pid}
        if method == "Terminate":
            assert inst is not None
            pid = int(inst["Handle"])
            with self.lock:
                if pid not in self.table:
                    return 2
                del self.table[pid]
                self.terminated.append((pid, params["Reason"] if "Reason" in params else 0))
            return 0
        if method == "GetOwner":
            return {"ReturnValue": 0, "User": "alice", "Domain": "EXAMPLE"}
        raise MIError(MIResult.METHOD_NOT_FOUND, method)


class Services:
    """Win32_Service plus its dependency association (Win32_DependentService)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.table = {
            "Spooler": {"State": "Running", "StartMode": "Auto", "DisplayName": "Print Spooler"},
            "RpcSs": {"State": "Running", "StartMode": "Auto", "DisplayName": "Remote Procedure Call (RPC)"},
            "Fax": {"State": "Stopped", "StartMode": "Manual", "DisplayName": "Fax"},
            "Odd'Name": {"State": "Stopped", "StartMode": "Disabled", "DisplayName": "A name with a quote"},
        }
        self.depends = [("RpcSs", "Spooler"), ("Spooler", "Fax")]  # (antecedent, dependent)

    def _inst(self, ctx: Any, name: str) -> Instance:
        out = ctx.new_instance("Win32_Service")
        out["Name"] = name
        out["Caption"] = self.table[name]["DisplayName"]
        for k, v in self.table[name].items():
            out[k] = v
        return out  # type: ignore[no-any-return]

    def enumerate_instances(self, ctx: Any, ns: str, cls: str, keys_only: bool) -> list[Instance]:
        with self.lock:
            return [self._inst(ctx, n) for n in sorted(self.table)]

    def get_instance(self, ctx: Any, ns: str, inst: Instance) -> Instance:
        name = inst["Name"]
        with self.lock:
            if name not in self.table:
                raise MIError(MIResult.NOT_FOUND, f"no service {name}")
            return self._inst(ctx, name)

    def invoke(self, ctx: Any, ns: str, cls: str, method: str, inst: Instance | None, params: Instance) -> Any:
        assert inst is not None
        with self.lock:
            row = self.table[inst["Name"]]
            if method == "StartService":
                if row["State"] == "Running":
                    return 10  # already running
                row["State"] = "Running"
                return 0
            if method == "StopService":
                row["State"] = "Stopped"
                return 0
        raise MIError(MIResult.METHOD_NOT_FOUND, method)


class Dependencies:
    """Win32_DependentService instances, read by the engine to walk the association."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def enumerate_instances(self, ctx: Any, ns: str, cls: str, keys_only: bool) -> list[Instance]:
        out = []
        for a, d in self.services.depends:
            link = ctx.new_instance("Win32_DependentService")
            link["Antecedent"] = Instance("Win32_Service", {"Name": a}, namespace=ns)
            link["Dependent"] = Instance("Win32_Service", {"Name": d}, namespace=ns)
            out.append(link)
        return out


class Fixed:
    """A provider of a fixed set of instances (disks, the OS, adapters)."""

    def __init__(self, cls: str, rows: list[dict[str, Any]], methods: dict[str, Any] | None = None) -> None:
        self.cls = cls
        self.rows = rows
        self.methods = methods or {}
        self.calls: list[str] = []

    def enumerate_instances(self, ctx: Any, ns: str, cls: str, keys_only: bool) -> list[Instance]:
        out = []
        for row in self.rows:
            inst = ctx.new_instance(self.cls)
            for k, v in row.items():
                inst[k] = v
            out.append(inst)
        return out

    def get_instance(self, ctx: Any, ns: str, inst: Instance) -> Instance:
        for cand in self.enumerate_instances(ctx, ns, self.cls, False):
            if all(cand[e.name] == e.value for e in inst.key_elements):
                return cand
        raise MIError(MIResult.NOT_FOUND, f"no such {self.cls}")

    def invoke(self, ctx: Any, ns: str, cls: str, method: str, inst: Instance | None, params: Instance) -> Any:
        self.calls.append(method)
        fn = self.methods.get(method)
        if fn is None:
            raise MIError(MIResult.METHOD_NOT_FOUND, method)
        return fn(params)


def registry_enum_key(params: Instance) -> dict[str, Any]:
    keys = {"SOFTWARE": ["Microsoft", "Python", "openmi"], "SYSTEM": ["CurrentControlSet"]}
    names = keys.get(params["sSubKeyName"])
    if names is None:
        return {"ReturnValue": 2}
    return {"ReturnValue": 0, "sNames": names}


def win32_engine(path: str = ":memory:") -> tuple[openmi.Server, dict[str, Any]]:
    """An engine serving every class above; the providers come back by class name for the tests to inspect."""
    engine = openmi.Server(path)
    define(engine)
    services = Services()
    providers: dict[str, Any] = {
        "Win32_Process": Processes(),
        "Win32_Service": services,
        "Win32_DependentService": Dependencies(services),
        "Win32_LogicalDisk": Fixed("Win32_LogicalDisk", [
            {"DeviceID": "C:", "DriveType": 3, "FreeSpace": 123_456_789_012, "Size": 500_000_000_000},
            {"DeviceID": "D:", "DriveType": 5, "FreeSpace": 0, "Size": 700_000_000},
            {"DeviceID": "E:", "DriveType": 3, "FreeSpace": 42, "Size": 1_000_000}]),
        "Win32_OperatingSystem": Fixed("Win32_OperatingSystem", [
            {"Name": "Microsoft Windows Server 2022|C:\\Windows|\\Device\\Harddisk0\\Partition2",
             "Version": "10.0.20348", "Caption": "Microsoft Windows Server 2022 Standard",
             "InstallDate": _dt.datetime(2023, 5, 6, 7, 8, 9, tzinfo=_dt.timezone.utc),
             "TotalVisibleMemorySize": 16_777_216}], {"Reboot": lambda p: 0}),
        "Win32_NetworkAdapterConfiguration": Fixed("Win32_NetworkAdapterConfiguration", [
            {"Index": 1, "Description": "Ethernet", "IPEnabled": True, "IPAddress": ["192.0.2.10", "fe80::1"]},
            {"Index": 2, "Description": "Loopback", "IPEnabled": False, "IPAddress": None}]),
    }
    for cls, prov in providers.items():
        engine.register_provider("root/cimv2", cls, prov)
    reg = Fixed("StdRegProv", [], {"EnumKey": registry_enum_key})
    engine.register_provider("root/default", "StdRegProv", reg)
    providers["StdRegProv"] = reg
    return engine, providers

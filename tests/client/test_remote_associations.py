"""Associators and references against WinRM's shape (wsman.md §3.8), replayed from a loopback server: what
our client sends (the association filter on the namespace's wildcard URI, the source as an EPR) and how it
reads WinRM's answers (Enumerate + Pull, references as bare EPR parts)."""

from __future__ import annotations

import re

import openmi
from openmi import Reference

from .test_remote import Replay, replay, winrm  # noqa: F401  (the fixture)

WSMB = rb"http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"


def test_winrm_associators_and_references(replay: Replay) -> None:  # noqa: F811
    with openmi.Application() as app:
        s = replay.session(app, "wmi")
        winrm_svc = openmi.Instance("Win32_Service", {"Name": "WinRM"})
        refused = winrm("07-get-invalid-class")  # the answer to the client's GetClass: values stay text
        replay.queue = [winrm("38-associators"), refused, winrm("38-associators-pull")]
        got = s.associators(winrm_svc, namespace="root/cimv2", assoc_class="Win32_DependentService",
                            result_class="Win32_Service", role="Dependent", result_role="Antecedent")
        assert [g["Name"] for g in got] == ["HTTP", "RpcSs"]
        sent = replay.seen[0]
        assert b"/wmi/root/cimv2/*</" in sent  # the wildcard URI
        assert b"cimbinding/associationFilter" in sent and WSMB in sent
        assert re.search(rb"<\w+:AssociatedInstances>\s*<\w+:Object>", sent)
        assert b"/wmi/root/cimv2/Win32_Service</" in sent and b">WinRM</" in sent
        for tag, value in ((b"AssociationClassName", b"Win32_DependentService"), (b"ResultClassName", b"Win32_Service"),
                           (b"Role", b"Dependent"), (b"ResultRole", b"Antecedent")):
            assert re.search(rb"<\w+:" + tag + rb">" + value + rb"</", sent), tag
        assert b"cim-xml" in replay.seen[1] and b"Pull" in replay.seen[2]

        replay.queue = [winrm("38-references"), refused]
        links = s.references(winrm_svc, namespace="root/cimv2", result_class="Win32_DependentService")
        assert len(links) == 1
        ante, dep = links[0]["Antecedent"], links[0]["Dependent"]
        assert isinstance(ante, Reference) and isinstance(dep, Reference)
        assert (ante.class_name, ante.namespace, ante.keys["Name"]) == ("Win32_Service", "root/cimv2", "HTTP")
        assert dep.keys["Name"] == "WinRM"
        assert links[0]["TypeOfDependency"] is None
        assert re.search(rb"<\w+:AssociationInstances>", replay.seen[3])

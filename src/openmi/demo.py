"""``make demo``: a narrated tour of the MI API on the embedded server (``python -m openmi.demo``).

It defines a class, creates a few instances, enumerates them, deletes one with ``delete_instance``
and shows the NOT_FOUND that a second delete gets. The repository is a file in a temporary folder.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

import openmi
from openmi import MIFlag, MIType


def main() -> int:
    console = Console()
    say = console.print
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "demo.db"
        say(f"[bold]openmi {openmi.__version__}[/] — the MI API on an embedded CIM server\n")
        say(f"1. Start an embedded server persisted to [cyan]{repo.name}[/] and define a class:")
        with openmi.Server(repo) as srv, openmi.Application() as app:
            srv.define_class("root/cimv2", openmi.Class("Sample_Person", properties=[
                openmi.Property("Id", MIType.UINT32, key=True),
                openmi.Property("Name", MIType.STRING),
                openmi.Property("Languages", MIType.STRINGA),
            ]))
            cls = srv.get_class("root/cimv2", "Sample_Person")
            decls = [f"{'[Key] ' if p.key else ''}{p.type.cim_name} {p.name}{'[]' if p.type.is_array else ''}"
                     for p in cls.properties.values()]
            say(f"   class {cls.name}: " + ", ".join(decls))

            session = app.new_session(server=srv)
            say("\n2. Create three instances with [green]session.create_instance[/]:")
            for pid, name, langs in [(1, "Ada", ["Analytical Engine"]), (2, "Grace", ["COBOL", "FLOW-MATIC"]),
                                     (3, "Barbara", ["CLU"])]:
                inst = app.new_instance("Sample_Person")
                inst.add_element("Id", pid, MIType.UINT32, MIFlag.KEY)
                inst["Name"] = name
                inst["Languages"] = langs
                with session.create_instance("root/cimv2", inst) as op:
                    r = op.get_instance()
                    say(f"   created {r.instance.path if r.instance else '?'} → {r.result.mi_name}")

            say("\n3. Enumerate them (each [green]get_instance()[/] returns one until more_results is False):")
            table = Table("Id", "Name", "Languages")
            with session.enumerate_instances("root/cimv2", "Sample_Person") as op:
                while True:
                    r = op.get_instance()
                    if r.instance is not None:
                        table.add_row(str(r.instance["Id"]), r.instance["Name"], ", ".join(r.instance["Languages"]))
                    if not r.more_results:
                        break
            console.print(table)

            target = app.new_instance("Sample_Person")
            target.add_element("Id", 2, MIType.UINT32, MIFlag.KEY)
            say("4. Delete Sample_Person.Id=2 with [green]session.delete_instance[/]:")
            with session.delete_instance("root/cimv2", target) as op:
                r = op.get_instance()
            say(f"   instance={r.instance}, more_results={r.more_results}, result={r.result.mi_name}")
            left = [i["Name"] for i in session.enumerate("Sample_Person")]
            say(f"   left in the repository: {', '.join(left)}")

            say("\n5. Delete it again: the operation ends with NOT_FOUND and CIM_Error-shaped details:")
            with session.delete_instance("root/cimv2", target) as op:
                r = op.get_instance()
            say(f"   result={r.result.mi_name} ({int(r.result)})")
            say(f"   error_message: {r.error_message}")
            if r.error_details is not None:
                d = r.error_details
                say(f"   error_details: instance of {d.class_name} {{ CIMStatusCode = {d['CIMStatusCode']}; "
                    f"MessageID = \"{d['MessageID']}\"; Message = \"{d['Message']}\" }}")
            ok = r.result == openmi.MIResult.NOT_FOUND and left == ["Ada", "Barbara"]
        say("\n[bold green]Demo finished.[/]" if ok else "\n[bold red]Demo did not end as expected.[/]")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

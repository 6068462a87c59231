"""``make demo``: a narrated tour of the whole system (``python -m openmi.demo``).

Part 1, the MI API on the embedded server: define a class, create a few instances, enumerate them,
delete one with ``delete_instance`` while a subscription prints the CIM_InstDeletion it causes, and show
the NOT_FOUND that a second delete gets.

Part 2, the same over WS-Management: make a user and a self-signed certificate with the ``openmi``
command, start ``openmi serve`` on a free loopback HTTPS port, connect a remote session that checks the
server's certificate against the one just made, run the same steps through WS-Man (the subscription
over WS-Eventing Pull), show the
NOT_FOUND fault arriving as ``MIResult.NOT_FOUND`` with its CIM_Error details, get the same NOT_FOUND
from ``openmi di --hostname …`` (exit status 6), and stop the server.

Everything lives in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

import openmi
from openmi import MIFlag, MIType

PEOPLE = [(1, "Ada", ["Analytical Engine"]), (2, "Grace", ["COBOL", "FLOW-MATIC"]), (3, "Barbara", ["CLU"])]

MOF = "class Sample_Person { [Key] uint32 Id; string Name; string Languages[]; };\n"

DELETIONS = "SELECT * FROM CIM_InstDeletion WHERE SourceInstance ISA 'Sample_Person'"

Say = Callable[..., None]


def tour(console: Console, app: openmi.Application, session: openmi.Session, where: str, step: int,
         again: str) -> bool:
    """Create, enumerate, delete and delete again through ``session``; True if each did what it should."""
    say = console.print
    say(f"\n{step}. Create three instances with [green]session.create_instance[/]:")
    for pid, name, langs in PEOPLE:
        inst = app.new_instance("Sample_Person")
        inst.add_element("Id", pid, MIType.UINT32, MIFlag.KEY)
        inst["Name"] = name
        inst["Languages"] = langs
        with session.create_instance("root/cimv2", inst) as op:
            r = op.get_instance()
        say(f"   created Sample_Person.Id={pid} ({name}) → {r.result.mi_name}")

    say(f"\n{step + 1}. Enumerate them (each [green]get_instance()[/] returns one until more_results is False):")
    table = Table("Id", "Name", "Languages")
    with session.enumerate_instances("root/cimv2", "Sample_Person") as op:
        while True:
            r = op.get_instance()
            if r.instance is not None:
                langs = r.instance["Languages"] or []
                table.add_row(str(r.instance["Id"]), r.instance["Name"],
                              ", ".join(langs) if isinstance(langs, list) else str(langs))
            if not r.more_results:
                break
    console.print(table)

    target = app.new_instance("Sample_Person")
    target.add_element("Id", 2, MIType.UINT32, MIFlag.KEY)
    say(f"{step + 2}. Delete Sample_Person.Id=2 with [green]session.delete_instance[/]; a subscription")
    say("   ([green]session.subscribe[/]) watches for the CIM_InstDeletion it causes:")
    say(f"   [dim]{escape(DELETIONS)}[/]")
    watch = session.subscribe("root/cimv2", "WQL", DELETIONS, flags=openmi.OperationFlags.REPORT_OPERATION_STARTED)
    seen = None
    try:
        watch.get_indication(timeout=30)  # the first result: the subscription is live
        with session.delete_instance("root/cimv2", target) as op:
            r = op.get_instance()
        say(f"   instance={r.instance}, more_results={r.more_results}, result={r.result.mi_name}")
        ev = watch.get_indication(timeout=30)
        seen = ev.instance
        if seen is not None:
            src = seen["SourceInstance"]
            say(f"   [green]get_indication()[/]: {seen.class_name} of {src.class_name}.Id={src['Id']} ({src['Name']})")
            say(f"   (its bookmark {ev.bookmark} resumes a later subscription after it)")
    finally:
        watch.cancel()
        watch.close()
    deleted = r.result == openmi.MIResult.OK and seen is not None and seen.class_name == "CIM_InstDeletion" \
        and seen["SourceInstance"]["Name"] == "Grace"
    left = sorted(str(i["Name"]) for i in session.enumerate("Sample_Person"))
    say(f"   left {where}: {', '.join(left)}")

    say(f"\n{step + 3}. Delete it again: {again}")
    with session.delete_instance("root/cimv2", target) as op:
        r = op.get_instance()
    say(f"   result=MIResult.{r.result.name} ({int(r.result)})")
    say(f"   error_message: {escape(r.error_message or '')}")
    d = r.error_details
    if d is not None:
        say(f"   error_details: instance of {d.class_name} {{ CIMStatusCode = {d['CIMStatusCode']}; "
            f"MessageID = \"{escape(str(d['MessageID']))}\"; Message = \"{escape(str(d['Message']))}\" }}")
    return (deleted and left == ["Ada", "Barbara"] and r.result == openmi.MIResult.NOT_FOUND and d is not None
            and str(d["CIMStatusCode"]) == "6")


def embedded(console: Console, tmp: Path) -> bool:
    say = console.print
    repo = tmp / "demo.db"
    say("[bold]Part 1 — the MI API on an embedded CIM server[/]\n")
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
        say(f"   class {cls.name}: " + escape(", ".join(decls)))
        session = app.new_session(server=srv)
        return tour(console, app, session, "in the repository", 2,
                    "the operation ends with NOT_FOUND and CIM_Error details:")


def _openmi(console: Console, args: list[str], shown: list[str], stdin: str | None = None) -> None:
    """Run the ``openmi`` command as a user would, showing it (with short names for the temporary files)."""
    console.print(f"   [dim]$[/] openmi {escape(' '.join(shown))}")
    r = subprocess.run([sys.executable, "-m", "openmi", *args], input=stdin, capture_output=True, text=True,
                       timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"openmi {' '.join(shown)} exited with {r.returncode}: {r.stderr.strip()}")


def served(console: Console, tmp: Path) -> bool:
    say = console.print
    say("\n[bold]Part 2 — the same over WS-Management: openmi serve and a remote session[/]\n")
    users, cert, key, mof = tmp / "users.json", tmp / "server.crt", tmp / "server.key", tmp / "person.mof"
    password = secrets.token_urlsafe(12)
    mof.write_text(MOF)
    say("6. Make a user (scrypt-hashed), a self-signed certificate and a MOF file in a temporary folder:")
    _openmi(console, ["user", "add", "demo", "--password-stdin", "--users", str(users)],
            ["user", "add", "demo", "--password-stdin", "--users", "users.json"], stdin=password + "\n")
    _openmi(console, ["cert", "create", "--cert-file", str(cert), "--key-file", str(key), "--cert-hostname",
                      "127.0.0.1"],
            ["cert", "create", "--cert-file", "server.crt", "--key-file", "server.key", "--cert-hostname", "127.0.0.1"])
    say(f"   [dim]person.mof:[/] {escape(MOF.strip())}")

    serve_args = ["serve", "--repository", str(tmp / "served.db"), "--users", str(users), "--cert-file", str(cert),
                  "--key-file", str(key), "--http-port", "none", "--https-port", "0", "--mof-file", str(mof)]
    say("\n7. Start the WS-Management server on a free loopback port (port 0, read back):")
    say("   [dim]$[/] openmi serve --https-port 0 --http-port none --mof-file person.mof --users users.json "
        "--cert-file server.crt --key-file server.key")
    proc = subprocess.Popen([sys.executable, "-m", "openmi", *serve_args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on https://"):
            proc.wait(30)
            raise RuntimeError(f"openmi serve did not start: {line or proc.stderr.read().strip()}")
        say(f"   {escape(line)}")
        port = int(line.rsplit(":", 1)[1].split("/")[0])

        say("\n8. Connect a remote session over HTTPS, checking the server against [cyan]server.crt[/]:")
        opts = openmi.DestinationOptions("https", port, ca_file=str(cert), uri_style="dmtf")
        opts.add_credentials(openmi.AuthType.BASIC, "demo", password)
        say(f"   opts = DestinationOptions(\"https\", {port}, ca_file=\"server.crt\", uri_style=\"dmtf\")")
        say("   opts.add_credentials(AuthType.BASIC, \"demo\", …)")
        say("   session = app.new_session(\"127.0.0.1\", protocol=\"WINRM\", options=opts)")
        with openmi.Application() as app:
            session = app.new_session("127.0.0.1", protocol="WINRM", options=opts)
            with session.test_connection() as op:
                r = op.get_instance()
            say(f"   test_connection → {r.result.mi_name}")
            ok = r.result == openmi.MIResult.OK and tour(console, app, session, "on the server", 9,
                                                        "the server answers with a WS-Man fault (subcode, "
                                                        "WSManFault code, CIM_Error detail); the remote "
                                                        "operation ends with the same NOT_FOUND:")
            session.close()
        ok = command_line(console, port, cert, password) and ok
    finally:
        say("\n14. Stop the server (SIGTERM: requests in flight finish, then it exits):")
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        say(f"   openmi serve exited with {code}")
    return ok and code == 0


def command_line(console: Console, port: int, cert: Path, password: str) -> bool:
    """The same NOT_FOUND from the ``openmi`` command: its exit status is the MI_Result."""
    say = console.print
    say("\n13. The same delete from the command line (the exit status is the MI_Result):")
    args = ["di", "root/cimv2", "{", "Sample_Person", "Id", "2", "}", "--hostname", "127.0.0.1", "--port", str(port),
            "--ssl", "-u", "demo", "--verbose"]
    say(f"   [dim]$[/] OPENMI_PASSWORD=… openmi {escape(' '.join(args))} --cafile server.crt; echo $?")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENMI_")}
    env["OPENMI_PASSWORD"] = password
    r = subprocess.run([sys.executable, "-m", "openmi", *args, "--cafile", str(cert)], env=env, capture_output=True,
                       text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    for line in lines[:2] + (["   …"] if len(lines) > 4 else []) + [ln for ln in lines if "CIMStatusCode=" in ln]:
        say(f"   {escape(line.strip())}")
    say(f"   {r.returncode}")
    return r.returncode == int(openmi.MIResult.NOT_FOUND) and "MI_RESULT_NOT_FOUND" in r.stderr


def main() -> int:
    console = Console()
    console.print(f"[bold]openmi {openmi.__version__}[/] — the MI API, an embedded CIM server, and WS-Management\n")
    with tempfile.TemporaryDirectory(prefix="openmi-demo-") as name:
        tmp = Path(name)
        ok = embedded(console, tmp)
        try:
            ok = served(console, tmp) and ok
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:  # a step of part 2 could not run
            console.print(f"[red]{escape(str(exc))}[/]")
            ok = False
    console.print("\n[bold green]Demo finished.[/]" if ok else "\n[bold red]Demo did not end as expected.[/]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

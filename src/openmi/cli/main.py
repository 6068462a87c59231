"""The ``openmi`` command: omicli's verbs and exit codes against the embedded server or a WS-Man host,
plus the server's own tools (``serve``, ``mof compile``, ``user``, ``cert``).

The exit status is the operation's MI_Result (0 OK, 5 INVALID_CLASS, 6 NOT_FOUND …); usage errors
exit with 4 (INVALID_PARAMETER), as a malformed request would.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from ..cim.errors import MIError, MOFError
from ..cim.instance import Instance
from ..cim.types import MIResult, OperationFlags
from ..client.application import Application
from ..client.operation import Operation
from ..client.options import AuthType, DestinationOptions, OperationOptions
from ..client.session import Session
from .output import Printer

VERBS = ("noop", "id", "gi", "ci", "mi", "di", "ei", "iv", "gc", "ec", "mof", "serve", "user", "cert")

EXAMPLES = {
    "noop": "openmi noop --hostname server1 -u admin",
    "id": "openmi id --hostname server1 -u admin",
    "gi": "openmi gi root/cimv2 { Sample_Person Id 7 }",
    "ci": "openmi ci root/cimv2 { Sample_Person Id 7 *Name Ada *Tags [ a b ] }",
    "mi": "openmi mi root/cimv2 { Sample_Person Id 7 *Name Grace }",
    "di": "openmi di root/cimv2 { Sample_Person Id 7 }",
    "ei": "openmi ei root/cimv2 Sample_Person --json",
    "iv": "openmi iv root/cimv2 { Sample_Calc } Add { A 2 B 40 }",
    "gc": "openmi gc root/cimv2 Sample_Person --mof",
    "ec": "openmi ec root/cimv2 CIM_ManagedElement --names-only",
    "mof": "openmi mof compile schema.mof --namespace root/cimv2",
    "serve": "openmi serve --http-port 5985 --https-port 5986 --users users.json",
    "user": "openmi user add alice --password-stdin --rights root/cimv2=rw",
    "cert": "openmi cert create --hostname server1.example.org",
}

USAGE_ERROR = int(MIResult.INVALID_PARAMETER)


class UsageError(Exception):
    pass


# --- argument parsing -------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    g = p.add_argument_group("destination (default: the embedded server and your repository)")
    g.add_argument("--hostname", default=env("OPENMI_HOSTNAME"), help="a WS-Management host (openmi serve, OMI, WinRM)")
    g.add_argument("--port", type=int, default=_env_int("OPENMI_PORT"), help="default 5985 (http) / 5986 (https)")
    g.add_argument("-u", "--user", default=env("OPENMI_USER"), help="user name (DOMAIN\\user or user@domain too)")
    g.add_argument("-p", "--password", default=env("OPENMI_PASSWORD"), help="password; prompted for when omitted")
    g.add_argument("--auth", default=env("OPENMI_AUTH", "Basic"),
                   help="Basic, NegoWithCreds (Negotiate), NTLM or Kerberos (default Basic)")
    g.add_argument("--encryption", choices=("http", "https", "none"), default=env("OPENMI_ENCRYPTION"),
                   help="http: HTTP with message encryption; https: TLS; none: plain HTTP")
    g.add_argument("--ssl", action="store_true", default=_env_bool("OPENMI_SSL"), help="same as --encryption https")
    g.add_argument("--noverify", action="store_true", default=_env_bool("OPENMI_NOVERIFY"),
                   help="do not check the server's certificate")
    g.add_argument("--cafile", default=env("OPENMI_CAFILE"), help="CA certificate(s) to check the server against")
    g.add_argument("--uri-style", choices=("wmi", "dmtf"), default=env("OPENMI_URI_STYLE"),
                   help="resource URI style (default: dmtf for openmi/OMI, wmi with --winrm)")
    g.add_argument("--maxenvsize", type=int, default=None, help="maximum envelope size in bytes")
    g.add_argument("--maxelements", type=int, default=None, help="items per enumeration Pull")
    g.add_argument("--local", action="store_true", help="use the embedded server (the default)")
    g.add_argument("--repository", default=env("OPENMI_REPOSITORY"), help="the embedded server's repository file")
    o = p.add_argument_group("output")
    o.add_argument("--json", dest="fmt", action="store_const", const="json", help="one JSON object per line")
    o.add_argument("--mof", dest="fmt", action="store_const", const="mof", help="MOF")
    o.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    o.add_argument("-n", dest="nulls", action="store_true", help="show NULL properties")
    o.add_argument("-v", "--verbose", action="store_true", help="show the error-details instance on failure")
    o.add_argument("-R", dest="repeat", type=int, default=1, metavar="N", help="repeat N times and print timing")
    o.add_argument("--timeout", type=float, default=90.0, help="operation timeout in seconds (default 90)")


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return int(v) if v and v.isdigit() else None


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")


VERB_PARSERS: dict[str, argparse.ArgumentParser] = {}


def build_parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="openmi", description="Manage CIM instances on the embedded server, an "
                                   "openmi serve, OMI or WinRM (omicli's verbs).",
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES.values()))
    root.add_argument("--version", action="version", version=f"openmi {__version__}")
    sub = root.add_subparsers(dest="verb", metavar="VERB")

    def verb(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, epilog=f"example:\n  {EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(p)
        VERB_PARSERS[name] = p
        return p

    verb("noop", "test the connection (MI_Session_TestConnection)")
    verb("id", "identify the server (WS-Man Identify; the embedded server's own identity locally)")
    for name, what in (("gi", "get an instance"), ("ci", "create an instance"), ("mi", "modify an instance"),
                       ("di", "delete an instance")):
        p = verb(name, what)
        p.add_argument("namespace")
        p.add_argument("instance", nargs="*", help="{ Class Key value … } (omicli brace syntax)")
    p = verb("ei", "enumerate the instances of a class")
    p.add_argument("namespace")
    p.add_argument("class_name")
    p.add_argument("-shallow", "--shallow", action="store_true", help="only the class itself, not subclasses")
    p.add_argument("--keys-only", action="store_true")
    p = verb("iv", "invoke a method: iv NS { Class [keys] } METHOD [{ param value … }]")
    p.add_argument("namespace")
    p.add_argument("rest", nargs="*")
    p = verb("gc", "get a class")
    p.add_argument("namespace")
    p.add_argument("class_name")
    p = verb("ec", "enumerate classes (all, or those derived from CLASS)")
    p.add_argument("namespace")
    p.add_argument("class_name", nargs="?")
    p.add_argument("--names-only", action="store_true")
    p.add_argument("-shallow", "--shallow", action="store_true", help="only direct subclasses")
    p = verb("mof", "compile MOF into the repository: mof compile FILE...")
    p.add_argument("action", choices=("compile",))
    p.add_argument("files", nargs="+")
    p.add_argument("--namespace", default="root/cimv2")
    p.add_argument("-I", "--include", action="append", default=[], help="a folder to search for #pragma include")
    p = verb("serve", "serve the embedded server over WS-Management")
    p.add_argument("--config", help="a file of key = value lines; flags override it")
    p.add_argument("--http-port", type=_port, help="HTTP port (default 5985; 'none' for no HTTP)")
    p.add_argument("--https-port", type=_port, help="HTTPS port (default 5986; 'none' for no HTTPS)")
    p.add_argument("--users", help="the user file (openmi user add …)")
    p.add_argument("--mof-file", "--load-mof", dest="mof_files", action="append", default=[],
                   help="MOF to load at start (repeatable)")
    p.add_argument("--allow-unencrypted", action="store_true", default=None,
                   help="accept Basic and unencrypted bodies over plain HTTP")
    p.add_argument("--bind", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--cert-file")
    p.add_argument("--key-file")
    p = verb("user", "manage the users of openmi serve: user add|remove|list")
    p.add_argument("action", choices=("add", "remove", "list"))
    p.add_argument("name", nargs="?")
    p.add_argument("--users", help="the user file (default ~/.config/openmi/users.json)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--rights", default="*=rw", help="NS=r|rw,… (default *=rw: every namespace, read and write)")
    p = verb("cert", "make a self-signed TLS certificate: cert create")
    p.add_argument("action", choices=("create",))
    p.add_argument("--cert-file")
    p.add_argument("--key-file")
    p.add_argument("--cert-hostname", dest="cert_hostnames", action="append", default=[],
                   help="a name or address the certificate is for (repeatable)")
    return root


def _port(text: str) -> int | None:
    if text.lower() in ("none", "off", "no"):
        return None
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError(f"{n} is not a port number")
    return n


def _split_options(argv: list[str]) -> list[str]:
    """omicli allows options anywhere: bring the verb to the front so every option is seen by its parser."""
    for i, word in enumerate(argv):
        if word in VERBS:
            return [word, *argv[:i], *argv[i + 1:]]
        if word in ("-h", "--help", "--version"):
            break
    return argv


# --- running -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args_list = _split_options(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    if not args_list:
        parser.print_help()
        return USAGE_ERROR
    try:
        if args_list[0] in VERB_PARSERS:  # options may stand anywhere among the words, as with omicli
            args = VERB_PARSERS[args_list[0]].parse_intermixed_args(args_list[1:])
            args.verb = args_list[0]
        else:
            args = parser.parse_args(args_list)
    except SystemExit as exc:
        return USAGE_ERROR if exc.code not in (0, None) else 0
    if getattr(args, "verb", None) is None:
        parser.print_help()
        return USAGE_ERROR
    printer = Printer(args.fmt or "text", args.quiet, args.nulls)
    try:
        return COMMANDS[args.verb](args, printer)
    except UsageError as exc:
        print(f"openmi: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except MOFError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        return int(exc.result)
    except MIError as exc:
        report(exc.result, exc.message, exc.details, args.verbose)
        return int(exc.result)
    except KeyboardInterrupt:
        return 130


def report(result: int, message: str | None, details: Instance | None, verbose: bool) -> None:
    try:
        name = MIResult(result).mi_name
    except ValueError:
        name = f"MI_RESULT {result}"
    print(f"openmi: result: {name}", file=sys.stderr)
    if message:
        print(f"openmi: result: {message}", file=sys.stderr)
    if verbose and details is not None:
        Printer("text", stream=sys.stderr, show_nulls=False).instance(details)


def _session(args: argparse.Namespace, app: Application) -> Session:
    if args.hostname and not args.local:
        return app.new_session(args.hostname, "WINRM", _destination(args))
    if args.repository:
        from ..engine.server import Server

        return app.new_session(server=Server(args.repository))
    return app.new_session()


def _destination(args: argparse.Namespace) -> DestinationOptions:
    enc = args.encryption or ("https" if args.ssl else None)
    transport = "https" if enc == "https" else "http"
    encryption = {"http": "always", "none": "never"}.get(enc or "", "auto")
    kw: dict[str, Any] = {}
    if args.maxenvsize:
        kw["max_envelope_size"] = args.maxenvsize
    if args.maxelements:
        kw["max_elements"] = args.maxelements
    opts = DestinationOptions(transport, args.port, encryption=encryption, uri_style=args.uri_style or "dmtf",
                              timeout=args.timeout, ca_file=args.cafile, skip_ca_check=args.noverify,
                              skip_cn_check=args.noverify, **kw)
    if args.user:
        password = args.password
        if password is None:
            password = _prompt_password(args.user, args.hostname)
        user, domain = args.user, None
        if "\\" in user:
            domain, user = user.split("\\", 1)
        auth = {"basic": AuthType.BASIC, "negowithcreds": AuthType.NEGO_WITH_CREDS, "negotiate":
                AuthType.NEGO_WITH_CREDS, "ntlm": AuthType.NTLM, "ntlmdomain": AuthType.NTLM,
                "kerberos": AuthType.KERBEROS}.get(args.auth.lower())
        if auth is None:
            raise UsageError(f"unknown --auth {args.auth!r}: use Basic, NegoWithCreds, NTLM or Kerberos")
        opts.add_credentials(auth, user, password, domain)
    return opts


def _prompt_password(user: str, host: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError("a password is needed (-p, OPENMI_PASSWORD, or run on a terminal to be asked)")
    return getpass.getpass(f"Password for {user}@{host}: ")


def _options(args: argparse.Namespace) -> OperationOptions:
    return OperationOptions(timeout=args.timeout) if args.timeout else OperationOptions()


def _brace(words: list[str], what: str) -> Instance:
    from ..cim.mof import BraceError, parse_brace

    if not words:
        raise UsageError(f"{what} is missing: give it in brace syntax, e.g. {{ Sample_Person Id 7 }}")
    try:
        return parse_brace(words, keys=True)
    except BraceError as exc:
        raise UsageError(f"malformed instance at argument {exc.position} "
                         f"({words[exc.position - 1] if 0 < exc.position <= len(words) else 'end'}): {exc}") from None


def _drain(op: Operation, printer: Printer, kind: str = "instance", names_only: bool = False,
           progress: bool = False) -> tuple[MIResult, str | None, Instance | None, int]:
    count = 0
    bar: Any = None
    if progress and sys.stderr.isatty() and not printer.quiet:
        from rich.progress import Progress, SpinnerColumn, TextColumn

        bar = Progress(SpinnerColumn(), TextColumn("{task.completed} results"), transient=True,
                       console=__import__("rich.console", fromlist=["Console"]).Console(file=sys.stderr))
        bar.start()
        task = bar.add_task("enumerating", total=None)
    try:
        while True:
            r = op.get_class() if kind == "class" else op.get_instance()
            item = r[0]
            if item is not None:
                count += 1
                if isinstance(item, Instance):
                    printer.instance(item)
                else:
                    printer.cls(item, names_only)
                if bar is not None:
                    bar.update(task, completed=count)
            if not r.more_results:
                return r.result, r.error_message, r.error_details, count
    finally:
        if bar is not None:
            bar.stop()


def _run_op(args: argparse.Namespace, start: Callable[[Session], Operation], kind: str = "instance",
            names_only: bool = False, progress: bool = False, on_ok: Callable[[], None] | None = None) -> int:
    with Application("openmi-cli") as app:
        session = _session(args, app)
        result, message, details = MIResult.OK, None, None
        t0 = time.perf_counter()
        repeat = max(1, args.repeat)
        for i in range(repeat):
            printer = Printer(args.fmt or "text", args.quiet or (repeat > 1 and i > 0), args.nulls)
            with start(session) as op:
                result, message, details, _ = _drain(op, printer, kind, names_only, progress)
            if result != MIResult.OK:
                break
            if on_ok is not None and i == 0:
                on_ok()
        elapsed = time.perf_counter() - t0
        if repeat > 1:
            print(f"{i + 1} operations in {elapsed:.3f} s ({(i + 1) / elapsed:.1f}/s)", file=sys.stderr)
        session.close()
    if result != MIResult.OK:
        report(result, message, details, args.verbose)
    return int(result)


def cmd_noop(args: argparse.Namespace, printer: Printer) -> int:
    return _run_op(args, lambda s: s.test_connection(), on_ok=lambda: printer.line("got noop response"))


def cmd_id(args: argparse.Namespace, printer: Printer) -> int:
    if args.hostname and not args.local:
        with Application("openmi-cli") as app:
            session = _session(args, app)
            identity = session.identify()
            printer.instance(identity)
        return 0
    from ..cim.instance import Instance as Inst
    from ..engine.server import default_repository_path

    inst = Inst("OpenMI_Identify", {
        "ProductVendor": "openmi", "ProductVersion": __version__, "ProtocolVersion": "embedded",
        "Repository": args.repository or str(default_repository_path()), "SystemName": os.uname().nodename})
    printer.instance(inst)
    return 0


def _instance_cmd(method: str) -> Callable[[argparse.Namespace, Printer], int]:
    def cmd(args: argparse.Namespace, printer: Printer) -> int:
        inst = _brace(args.instance, "the instance")
        opts = _options(args)
        return _run_op(args, lambda s: getattr(s, method)(args.namespace, inst, options=opts))
    return cmd


def cmd_ei(args: argparse.Namespace, printer: Printer) -> int:
    flags = int(OperationFlags.POLYMORPHISM_SHALLOW) if args.shallow else 0
    opts = _options(args)
    return _run_op(args, lambda s: s.enumerate_instances(args.namespace, args.class_name, args.keys_only,
                                                          options=opts, flags=flags), progress=True)


def cmd_iv(args: argparse.Namespace, printer: Printer) -> int:
    rest: list[str] = args.rest
    if not rest or rest[0] != "{":
        raise UsageError("iv needs { Class [keys] } METHOD [{ param value … }]")
    depth, end = 0, -1
    for i, w in enumerate(rest):
        depth += w == "{"
        depth -= w == "}"
        if depth == 0:
            end = i
            break
    if end < 0 or end + 1 >= len(rest):
        raise UsageError("iv needs a method name after the instance")
    target = _brace(rest[: end + 1], "the instance or class")
    method = rest[end + 1]
    params: Instance | None = None
    if len(rest) > end + 2:
        words = rest[end + 2:]
        if words[0] != "{":
            raise UsageError("method parameters go in braces: { name value … }")
        params = _brace(["{", "__parameters", *words[1:]], "the parameters")
    opts = _options(args)
    instance = target if len(target) else None
    return _run_op(args, lambda s: s.invoke(args.namespace, target.class_name, method, instance, params,
                                            options=opts))


def cmd_gc(args: argparse.Namespace, printer: Printer) -> int:
    opts = _options(args)
    return _run_op(args, lambda s: s.get_class(args.namespace, args.class_name, options=opts), kind="class")


def cmd_ec(args: argparse.Namespace, printer: Printer) -> int:
    flags = int(OperationFlags.POLYMORPHISM_SHALLOW) if args.shallow else 0
    opts = _options(args)
    return _run_op(args, lambda s: s.enumerate_classes(args.namespace, args.class_name, args.names_only,
                                                        options=opts, flags=flags),
                   kind="class", names_only=args.names_only, progress=True)


def cmd_mof(args: argparse.Namespace, printer: Printer) -> int:
    from ..engine.server import Server

    with Server(args.repository) as srv:
        total_c = total_i = 0
        for path in args.files:
            t0 = time.perf_counter()
            if sys.stderr.isatty() and not printer.quiet:  # a live status line while a large schema loads
                from rich.console import Console

                with Console(stderr=True).status(f"compiling and loading {path} …"):
                    result = srv.compile_mof(path, args.namespace, include_dirs=args.include)
            else:
                result = srv.compile_mof(path, args.namespace, include_dirs=args.include)
            total_c += len(result.classes)
            total_i += len(result.instances)
            printer.line(f"{path}: {len(result.classes)} classes, {len(result.instances)} instances, "
                         f"{len(result.qualifier_decls)} qualifier declarations ({time.perf_counter() - t0:.2f} s)")
    return 0


def cmd_serve(args: argparse.Namespace, printer: Printer) -> int:
    import signal
    import threading

    from ..wsman_server.config import ServeConfig
    from ..wsman_server.run import WSManServer

    try:
        cfg = ServeConfig.load(args.config) if args.config else ServeConfig()
        for key, value in (("repository", args.repository), ("http_port", args.http_port),
                           ("https_port", args.https_port), ("users", args.users), ("bind", args.bind),
                           ("allow_unencrypted", args.allow_unencrypted), ("cert_file", args.cert_file),
                           ("key_file", args.key_file)):
            if value is not None or (key.endswith("_port") and _given(key)):
                cfg.set(key, value)
        cfg.mof.extend(args.mof_files)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        server = WSManServer(cfg)
        urls = server.start()
    except (OSError, ValueError) as exc:
        print(f"openmi: cannot serve: {exc}", file=sys.stderr)
        return int(MIResult.FAILED)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    for url in urls:
        print(f"listening on {url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


def _given(key: str) -> bool:
    flag = "--" + key.replace("_", "-")
    return any(a == flag or a.startswith(flag + "=") for a in sys.argv)


def cmd_user(args: argparse.Namespace, printer: Printer) -> int:
    from ..wsman_server.users import UserStore

    store = UserStore(args.users)
    if args.action == "list":
        for u in store.users():
            granted = ",".join(f"{k}={v}" for k, v in u.rights.items())
            printer.line(f"{u.name}\t{granted}\t{'ntlm' if u.nt_hash else ''}".rstrip())
        return 0
    if not args.name:
        raise UsageError(f"user {args.action} needs a user name")
    if args.action == "remove":
        try:
            store.remove(args.name)
        except KeyError:
            print(f"openmi: no user {args.name} in {store.path}", file=sys.stderr)
            return int(MIResult.NOT_FOUND)
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask the password on: use --password-stdin")
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the passwords differ")
    rights: dict[str, str] = {}
    for part in args.rights.split(","):
        ns, sep, right = part.partition("=")
        if not sep or right not in ("r", "rw"):
            raise UsageError(f"--rights takes NS=r or NS=rw, not {part!r}")
        rights[ns.strip()] = right
    try:
        store.add(args.name, password, rights=rights, replace=True)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    printer.line(f"user {args.name} saved in {store.path}")
    return 0


def cmd_cert(args: argparse.Namespace, printer: Printer) -> int:
    from ..wsman_server.config import config_dir
    from ..wsman_server.tls import create_self_signed

    cert = args.cert_file or str(config_dir() / "server.crt")
    key = args.key_file or str(config_dir() / "server.key")
    create_self_signed(cert, key, args.cert_hostnames or None)
    printer.line(f"certificate {cert}\nprivate key {key}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Printer], int]] = {
    "noop": cmd_noop, "id": cmd_id, "gi": _instance_cmd("get_instance"), "ci": _instance_cmd("create_instance"),
    "mi": _instance_cmd("modify_instance"), "di": _instance_cmd("delete_instance"), "ei": cmd_ei, "iv": cmd_iv,
    "gc": cmd_gc, "ec": cmd_ec, "mof": cmd_mof, "serve": cmd_serve, "user": cmd_user, "cert": cmd_cert,
}


if __name__ == "__main__":
    sys.exit(main())

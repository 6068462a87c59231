"""The ``openmi`` command: omicli's verbs and exit codes against the embedded server or a WS-Man host,
plus the server's own tools (``serve``, ``mof compile``, ``user``, ``cert``).

The exit status is the operation's MI_Result (0 OK, 5 INVALID_CLASS, 6 NOT_FOUND …); usage errors
exit with 4 (INVALID_PARAMETER), as a malformed request would.

How the parser is built (the verb table)
----------------------------------------
Every verb is one entry of :data:`VERBS`, registered once with the :func:`verb` decorator on the function
that runs it::

    def _wql_arguments(p: argparse.ArgumentParser) -> None:      # the verb's own words and options
        p.add_argument("namespace")
        p.add_argument("query")

    @verb("wql", "run a WQL query", 'openmi wql root/cimv2 "SELECT * FROM Sample_Person"',
          arguments=_wql_arguments)                                 # group=OPERATIONS, options=CLIENT
    def cmd_wql(args: argparse.Namespace, printer: Printer) -> int:
        return _run_op(args, lambda s: s.query_instances(args.namespace, "WQL", args.query))

- ``group`` places the verb in ``openmi --help`` (one of :data:`GROUPS`, in their order);
- ``options`` names the shared option sets the verb accepts (:data:`OPTION_SETS`: ``connection`` — the
  destination and credentials, most also settable by an ``OPENMI_*`` variable (:data:`ENVIRONMENT`,
  applied after parsing to whatever the command line left unset) —, ``output`` and ``repeat`` (-R)); the
  client verbs take :data:`CLIENT` (all three), the server tools none, adding their own in ``arguments``;
- the example is shown in ``openmi --help`` and ``openmi VERB --help``;
- the function gets the parsed arguments and a :class:`Printer` for the chosen output form and returns
  the exit status (an ``MIResult``); it raises :class:`UsageError` for bad input, ``MIError`` to fail.

Each verb has a parser of its own, so ``openmi VERB --help`` lists only the options that apply to it.
Options may stand anywhere among the words, as with omicli (``parse_intermixed_args``); the verb is the
first word that is not an option or an option's value. An option the verb does not know is reported
with the closest one it does ("unknown option --hostnme for ei; did you mean --hostname?"), and so is
an unknown verb.
"""

from __future__ import annotations

import argparse
import difflib
import getpass
import os
import re
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from .. import __version__
from ..cim.errors import MIError, MOFError
from ..cim.instance import Instance
from ..cim.types import MIResult, OperationFlags
from ..client.application import Application
from ..client.operation import Operation
from ..client.options import AuthType, DestinationOptions, OperationOptions
from ..client.session import Session
from .output import Printer

USAGE_ERROR = int(MIResult.INVALID_PARAMETER)

Command = Callable[[argparse.Namespace, Printer], int]


class UsageError(Exception):
    pass


# --- the verb table ----------------------------------------------------------------------------------

OPERATIONS, MOF, SERVE, USER, CERT = "operations", "mof", "serve", "user", "cert"

# The groups of ``openmi --help``, in order: key → heading.
GROUPS: dict[str, str] = {
    OPERATIONS: "operations (on the embedded server and your repository; on a WS-Man host with --hostname)",
    MOF: "MOF",
    SERVE: "serving over WS-Management",
    USER: "users of openmi serve",
    CERT: "TLS certificates",
}


@dataclass(frozen=True)
class Verb:
    name: str
    summary: str  # one line: what the verb does
    example: str  # one command line
    run: Command
    group: str
    options: tuple[str, ...]  # names of OPTION_SETS
    arguments: Callable[[argparse.ArgumentParser], None] | None


VERBS: dict[str, Verb] = {}

CLIENT = ("connection", "output", "repeat")


def verb(name: str, summary: str, example: str, *, group: str = OPERATIONS, options: tuple[str, ...] = CLIENT,
         arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> Callable[[Command], Command]:
    """Register the decorated function as the verb ``name`` (see the module docstring)."""
    if group not in GROUPS:
        raise ValueError(f"verb {name}: unknown group {group!r} (one of {', '.join(GROUPS)})")
    unknown = [o for o in options if o not in OPTION_SETS]
    if unknown:
        raise ValueError(f"verb {name}: unknown option sets {unknown} (known: {', '.join(OPTION_SETS)})")

    def register(fn: Command) -> Command:
        if name in VERBS:
            raise ValueError(f"verb {name} is registered twice")
        VERBS[name] = Verb(name, summary, example, fn, group, options, arguments)
        return fn
    return register


# --- shared option sets --------------------------------------------------------------------------------


def _connection_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("destination (default: the embedded server and your repository)")
    g.add_argument("--hostname", metavar="HOST",
                   help="a WS-Management host (openmi serve, OMI, WinRM) [OPENMI_HOSTNAME]")
    g.add_argument("--port", type=_port_number, help="default 5985 (http) / 5986 (https) [OPENMI_PORT]")
    g.add_argument("-u", "--user", help="user name (DOMAIN\\user or user@domain too) [OPENMI_USER]")
    g.add_argument("-p", "--password", help="password; prompted for when omitted [OPENMI_PASSWORD]")
    g.add_argument("--auth", type=_choice(*AUTHS), metavar="METHOD",
                   help="Basic (the default), NegoWithCreds (Negotiate), NTLM or Kerberos [OPENMI_AUTH]")
    # --ssl and --encryption set one value, so the last flag given wins, and any flag beats the environment
    g.add_argument("--encryption", choices=ENCRYPTIONS,
                   help="http: HTTP with message encryption; https: TLS; none: plain HTTP [OPENMI_ENCRYPTION]")
    g.add_argument("--ssl", dest="encryption", action="store_const", const="https",
                   help="same as --encryption https [OPENMI_SSL]")
    g.add_argument("--noverify", action="store_true", help="do not check the server's certificate [OPENMI_NOVERIFY]")
    g.add_argument("--cafile", metavar="FILE", help="CA certificate(s) to check the server against [OPENMI_CAFILE]")
    g.add_argument("--uri-style", choices=URI_STYLES,
                   help="resource URI style: dmtf (openmi, OMI; the default) or wmi (WinRM) [OPENMI_URI_STYLE]")
    g.add_argument("--maxenvsize", type=int, default=None, metavar="BYTES", help="maximum envelope size in bytes")
    g.add_argument("--maxelements", type=int, default=None, metavar="N", help="items per enumeration Pull")
    g.add_argument("--local", action="store_true", help="use the embedded server (the default)")
    g.add_argument("--repository", metavar="FILE", help="the embedded server's repository file [OPENMI_REPOSITORY]")


def _output_options(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("output")
    o.add_argument("--json", dest="fmt", action="store_const", const="json", help="one JSON object per line")
    o.add_argument("--mof", dest="fmt", action="store_const", const="mof", help="MOF")
    o.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    o.add_argument("-n", dest="nulls", action="store_true", help="show NULL properties")
    o.add_argument("-v", "--verbose", action="store_true", help="show the error-details instance on failure")
    o.add_argument("--timeout", type=float, default=90.0, metavar="SECONDS",
                   help="operation timeout in seconds (default 90)")


def _repeat_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-R", dest="repeat", type=_positive, default=1, metavar="N",
                   help="run the operation N times and print the timing")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return n


OPTION_SETS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "connection": _connection_options,
    "output": _output_options,
    "repeat": _repeat_options,
}


ENCRYPTIONS = ("http", "https", "none")
AUTHS = {"basic": AuthType.BASIC, "negowithcreds": AuthType.NEGO_WITH_CREDS, "negotiate": AuthType.NEGO_WITH_CREDS,
         "ntlm": AuthType.NTLM, "ntlmdomain": AuthType.NTLM, "kerberos": AuthType.KERBEROS}
URI_STYLES = ("wmi", "dmtf")


def _port_number(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < n <= 65535:
        raise argparse.ArgumentTypeError(f"{n} is not a port number (1-65535)")
    return n


def _choice(*choices: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text.lower() not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}{_suggest(text, choices)}")
        return text.lower()
    return convert


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _boolean(text: str) -> bool:
    if text.lower() not in _TRUE + _FALSE:
        raise argparse.ArgumentTypeError(f"{text!r} is neither true (1, yes, on) nor false (0, no, off)")
    return text.lower() in _TRUE


# OPENMI_* variables: (destination, variable, conversion). A variable fills its option when the command
# line left it unset; a verb without that option ignores it.
ENVIRONMENT: list[tuple[str, str, Callable[[str], Any]]] = [
    ("hostname", "OPENMI_HOSTNAME", str),
    ("port", "OPENMI_PORT", _port_number),
    ("user", "OPENMI_USER", str),
    ("password", "OPENMI_PASSWORD", str),
    ("auth", "OPENMI_AUTH", _choice(*AUTHS)),
    ("encryption", "OPENMI_ENCRYPTION", _choice(*ENCRYPTIONS)),
    ("encryption", "OPENMI_SSL", lambda text: "https" if _boolean(text) else None),
    ("noverify", "OPENMI_NOVERIFY", _boolean),
    ("cafile", "OPENMI_CAFILE", str),
    ("uri_style", "OPENMI_URI_STYLE", _choice(*URI_STYLES)),
    ("repository", "OPENMI_REPOSITORY", str),
]


def _apply_environment(args: argparse.Namespace) -> None:
    for dest, variable, convert in ENVIRONMENT:
        text = os.environ.get(variable)
        if text is None or not hasattr(args, dest) or getattr(args, dest) not in (None, False):
            continue
        try:
            setattr(args, dest, convert(text))
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{variable}: {exc}") from None


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


# --- parsing -----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises :class:`UsageError` (exit 4) instead of exiting with 2."""

    def error(self, message: str) -> NoReturn:
        choice = re.match(r"argument (\S+): invalid choice: '(.*)' \(choose from (.*)\)$", message)
        if choice:  # name the closest choice, as for options
            options = [c.strip(" '") for c in choice.group(3).split(",")]
            message = f"{choice.group(2)!r} is not one of {', '.join(options)}{_suggest(choice.group(2), options)}"
        raise UsageError(f"{self.prog.removeprefix('openmi ')}: {message} (see {self.prog} --help)")


def verb_parser(name: str) -> argparse.ArgumentParser:
    """The parser of one verb: its own arguments and the option sets it takes, nothing else."""
    v = VERBS[name]
    p = _Parser(prog=f"openmi {name}", description=v.summary, epilog=f"example:\n  {v.example}",
                formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.set_defaults(fmt=None, quiet=False, nulls=False, verbose=False, repeat=1, timeout=None)
    if v.arguments is not None:
        v.arguments(p)
    for option_set in v.options:
        OPTION_SETS[option_set](p)
    return p


def _option_strings(p: argparse.ArgumentParser) -> dict[str, bool]:
    """Every option string of a parser → whether it takes a value. (An option string must mean the same in
    every verb that has it — a flag, or an option with a value — since the verb is found among options
    given before it: tests/cli/test_cli_parser.py checks this for every registered verb.)"""
    return {s: a.nargs != 0 for a in p._actions for s in a.option_strings}


_NEGATIVE = re.compile(r"^-\d+$|^-\d*\.\d+$")


def _is_option(word: str) -> bool:
    return word.startswith("-") and word != "-" and not _NEGATIVE.match(word)


def _known(word: str, options: dict[str, bool]) -> bool:
    name = word.split("=", 1)[0]
    if name in options:
        return True
    if word.startswith("--") or len(word) < 3:
        return False
    # -R5 (a short option with its value attached) or -qn (short flags together)
    if options.get(word[:2]):
        return True
    return all(options.get("-" + c) is False for c in word[1:])


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) from ``a`` to ``b``."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            d = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                d = min(d, prev2[j - 2] + 1)
            row.append(d)
        prev2, prev = prev, row
    return prev[-1]


def closest(word: str, candidates: Sequence[str]) -> str | None:
    """The candidate a typo most likely meant: few edits (a swap of two letters counts as one), or a
    similar spelling (``--mof`` → ``--mof-file``); None when nothing is close."""
    best: tuple[Any, ...] | None = None
    single = len(word.lstrip("-")) == 1  # -R is one edit from every short option: only -r may mean -R
    for c in candidates:
        if single and c.lstrip("-").lower() != word.lstrip("-").lower():
            continue
        d = _distance(word.lower(), c.lower())
        ratio = difflib.SequenceMatcher(None, word, c).ratio()
        if d > max(1, min(3, len(word) // 4)) and ratio < 0.6:
            continue
        key = (not c.startswith(word), d, sorted(word) != sorted(c), -ratio, c)
        if best is None or key < best:
            best = key
    return None if best is None else str(best[-1])


def _suggest(word: str, candidates: Sequence[str], quote: bool = False) -> str:
    close = closest(word.split("=", 1)[0], candidates)
    if close is None:
        return ""
    return f"; did you mean {close!r}?" if quote else f"; did you mean {close}?"


def _find_verb(words: list[str], options: dict[str, bool]) -> tuple[int | None, str | None]:
    """The index of the verb (the first word that is neither an option nor an option's value) and the
    first option no verb knows, if any came before it."""
    unknown = None
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--":
            return (i + 1 if i + 1 < len(words) else None), unknown
        if not _is_option(w):
            return i, unknown
        if not _known(w, options):
            unknown = unknown or w
        elif options.get(w) and "=" not in w:
            i += 1  # the option's value
        i += 1
    return None, unknown


def _check_options(name: str, words: list[str], options: dict[str, bool],
                   parsers: dict[str, argparse.ArgumentParser]) -> None:
    """Name the first option the verb does not take, and the closest one it does (or the verbs that
    take it: ``openmi serve --json`` is a client verb's option)."""
    skip = False
    for w in words:
        if skip:
            skip = False
            continue
        if w == "--":
            return
        if not _is_option(w):
            continue
        if _known(w, options):
            skip = bool(options.get(w)) and "=" not in w
            continue
        option = w.split("=", 1)[0]
        hint = _suggest(w, list(options))
        owners = [v for v, p in parsers.items() if option in _option_strings(p)]
        if not hint and owners:
            hint = f" (it is an option of {', '.join(owners)})"
        raise UsageError(f"unknown option {option} for {name}{hint} (see openmi {name} --help)")


def root_help() -> str:
    lines = [f"usage: openmi VERB [WORDS] [OPTIONS]     (openmi {__version__})", "",
             "Manage CIM instances on the embedded server or a WS-Management host (openmi serve, OMI, WinRM)",
             "with omicli's verbs; serve the embedded server over WS-Management. Options may stand anywhere;",
             "'openmi VERB --help' lists the options of a verb.", ""]
    width = max(len(n) for n in VERBS) + 2
    for group, heading in GROUPS.items():
        members = [v for v in VERBS.values() if v.group == group]
        if not members:
            continue
        lines.append(f"{heading}:")
        for v in members:
            lines.append(f"  {v.name:<{width}}{v.summary}")
            lines.append(f"  {'':<{width}}$ {v.example}")
        lines.append("")
    lines += ["The exit status is the MI_Result: 0 OK, 1 FAILED, 2 ACCESS_DENIED, 3 INVALID_NAMESPACE,",
              "4 INVALID_PARAMETER (also a usage error), 5 INVALID_CLASS, 6 NOT_FOUND, 7 NOT_SUPPORTED …",
              *textwrap.wrap("Connection options also come from " + ", ".join(dict.fromkeys(
                  variable for _, variable, _ in ENVIRONMENT)) + " (a flag given beats them).", 100)]
    return "\n".join(lines)


def parse(argv: Sequence[str]) -> argparse.Namespace | int:
    """The parsed arguments (``args.verb`` is the verb), or an exit status when there is nothing to run
    (help or version printed). Raises :class:`UsageError`."""
    words = list(argv)
    parsers = {name: verb_parser(name) for name in VERBS}
    every: dict[str, bool] = {"-h": False, "--help": False, "--version": False}
    for p in parsers.values():
        every.update(_option_strings(p))
    index, unknown = _find_verb(words, every)
    if index is None or words[index] not in VERBS:
        if unknown is not None:
            raise UsageError(f"unknown option {unknown.split('=', 1)[0]}{_suggest(unknown, list(every))} "
                             f"(see openmi --help)")
        if "--version" in words:
            print(f"openmi {__version__}")
            return 0
        if index is None:
            print(root_help())
            return 0 if {"-h", "--help"} & set(words) else USAGE_ERROR
        raise UsageError(f"unknown verb {words[index]!r}{_suggest(words[index], list(VERBS), quote=True)} "
                         f"(see openmi --help)")
    name = words[index]
    rest = words[:index] + words[index + 1:]
    if "--version" in rest:
        print(f"openmi {__version__}")
        return 0
    parser = parsers[name]
    _check_options(name, rest, _option_strings(parser), parsers)
    try:
        args = parser.parse_intermixed_args(rest)
    except SystemExit as exc:  # --help
        return 0 if exc.code in (0, None) else USAGE_ERROR
    args.verb = name
    _apply_environment(args)
    return args


# --- running -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parsed = parse(sys.argv[1:] if argv is None else argv)
    except UsageError as exc:
        print(f"openmi: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if isinstance(parsed, int):
        return parsed
    args = parsed
    printer = Printer(args.fmt or "text", args.quiet, args.nulls)
    try:
        return VERBS[args.verb].run(args, printer)
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


@contextmanager
def _session(args: argparse.Namespace, app: Application) -> Iterator[Session]:
    """A session to the host given, else to the embedded server (on ``--repository`` if given), closed
    after use together with any server opened for it."""
    if args.hostname and not args.local:
        session = app.new_session(args.hostname, "WINRM", _destination(args))
        try:
            yield session
        finally:
            session.close()
        return
    from ..engine.server import Server

    # shared: the repository file may be served by ``openmi serve`` right now (its workers share it the same
    # way, and see what this command changes at their next request)
    with Server(args.repository or None, shared=True) as srv:
        session = app.new_session(server=srv)
        try:
            yield session
        finally:
            session.close()


def _destination(args: argparse.Namespace) -> DestinationOptions:
    enc = args.encryption
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
        auth = AUTHS[args.auth or "basic"]
        password = args.password
        if password is None:
            password = _prompt_password(args.user, args.hostname)
        user, domain = args.user, None
        if "\\" in user:
            domain, user = user.split("\\", 1)
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


def _drain(op: Operation, printer: Printer, names_only: bool = False,
           progress: bool = False) -> tuple[MIResult, str | None, Instance | None, int]:
    count = 0
    bar: Any = None
    if progress and sys.stderr.isatty() and not printer.quiet:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn

        bar = Progress(SpinnerColumn(), TextColumn("{task.completed} results"), transient=True,
                       console=Console(file=sys.stderr))
        bar.start()
        task = bar.add_task("enumerating", total=None)
    try:
        while True:
            r = op.get_class() if op.kind == "class" else op.get_instance()  # a schema query gives classes
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


def _run_op(args: argparse.Namespace, start: Callable[[Session], Operation], names_only: bool = False,
            progress: bool = False, on_ok: Callable[[], None] | None = None) -> int:
    with Application("openmi-cli") as app, _session(args, app) as session:
        result, message, details = MIResult.OK, None, None
        t0 = time.perf_counter()
        repeat = max(1, args.repeat)
        for i in range(repeat):
            printer = Printer(args.fmt or "text", args.quiet or (repeat > 1 and i > 0), args.nulls)
            with start(session) as op:
                result, message, details, _ = _drain(op, printer, names_only, progress)
            if result != MIResult.OK:
                break
            if on_ok is not None and i == 0:
                on_ok()
        elapsed = time.perf_counter() - t0
        if repeat > 1:
            print(f"{i + 1} operations in {elapsed:.3f} s ({(i + 1) / elapsed:.1f}/s)", file=sys.stderr)
    if result != MIResult.OK:
        report(result, message, details, args.verbose)
    return int(result)


# --- operations ----------------------------------------------------------------------------------


@verb("noop", "test the connection (MI_Session_TestConnection)", "openmi noop --hostname server1 -u admin")
def cmd_noop(args: argparse.Namespace, printer: Printer) -> int:
    return _run_op(args, lambda s: s.test_connection(), on_ok=lambda: printer.line("got noop response"))


@verb("id", "identify the server (WS-Man Identify; the embedded server's own identity locally)",
      "openmi id --hostname server1 -u admin", options=("connection", "output"))
def cmd_id(args: argparse.Namespace, printer: Printer) -> int:
    if args.hostname and not args.local:
        with Application("openmi-cli") as app, _session(args, app) as session:
            printer.instance(session.identify())
        return 0
    from ..engine.server import default_repository_path

    inst = Instance("OpenMI_Identify", {
        "ProductVendor": "openmi", "ProductVersion": __version__, "ProtocolVersion": "embedded",
        "Repository": args.repository or str(default_repository_path()), "SystemName": os.uname().nodename})
    printer.instance(inst)
    return 0


def _instance_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("instance", nargs="*", help="{ Class Key value … } (omicli brace syntax)")


def _instance_verb(name: str, method: str, summary: str, example: str) -> None:
    def cmd(args: argparse.Namespace, printer: Printer) -> int:
        inst = _brace(args.instance, "the instance")
        opts = _options(args)
        return _run_op(args, lambda s: getattr(s, method)(args.namespace, inst, options=opts))
    verb(name, summary, example, arguments=_instance_arguments)(cmd)


_instance_verb("gi", "get_instance", "get an instance", "openmi gi root/cimv2 { Sample_Person Id 7 }")
_instance_verb("ci", "create_instance", "create an instance",
               "openmi ci root/cimv2 { Sample_Person Id 7 *Name Ada *Tags [ a b ] }")
_instance_verb("mi", "modify_instance", "modify an instance", "openmi mi root/cimv2 { Sample_Person Id 7 *Name Grace }")
_instance_verb("di", "delete_instance", "delete an instance", "openmi di root/cimv2 { Sample_Person Id 7 }")


def _a_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("instance", nargs="*", help="{ Class Key value … } (omicli brace syntax): the source instance")
    p.add_argument("-ac", dest="assoc_class", metavar="CLASS", help="only through this association class (or a "
                   "subclass)")
    p.add_argument("-rc", dest="result_class", metavar="CLASS", help="only results of this class (or a subclass)")
    p.add_argument("-r", dest="role", metavar="PROPERTY", help="the role the source plays (a reference property)")
    p.add_argument("-rr", dest="result_role", metavar="PROPERTY", help="the role the results play")
    p.add_argument("--keys-only", action="store_true", help="only the key properties")


@verb("a", "associators: the instances associated with one instance (-ac -rc -r -rr)",
      "openmi a root/cimv2 { Sample_Disk Id d1 } -ac Sample_DiskPartition -rr PartComponent", arguments=_a_arguments)
def cmd_a(args: argparse.Namespace, printer: Printer) -> int:
    inst = _brace(args.instance, "the source instance")
    opts = _options(args)
    return _run_op(args, lambda s: s.associator_instances(args.namespace, inst, args.assoc_class, args.result_class,
                                                          args.role, args.result_role, args.keys_only, options=opts))


def _r_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("instance", nargs="*", help="{ Class Key value … } (omicli brace syntax): the source instance")
    p.add_argument("-rc", dest="result_class", metavar="CLASS", help="only this association class (or a subclass)")
    p.add_argument("-r", dest="role", metavar="PROPERTY", help="the role the source plays (a reference property)")
    p.add_argument("--keys-only", action="store_true", help="only the key properties")


@verb("r", "references: the association instances that refer to one instance (-rc -r)",
      "openmi r root/cimv2 { Sample_Disk Id d1 } -rc Sample_DiskPartition", arguments=_r_arguments)
def cmd_r(args: argparse.Namespace, printer: Printer) -> int:
    inst = _brace(args.instance, "the source instance")
    opts = _options(args)
    return _run_op(args, lambda s: s.reference_instances(args.namespace, inst, args.result_class, args.role,
                                                         args.keys_only, options=opts))


def _ei_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("class_name")
    p.add_argument("-shallow", "--shallow", action="store_true", help="only the class itself, not subclasses")
    p.add_argument("--keys-only", action="store_true", help="only the key properties")
    p.add_argument("--querylang", metavar="DIALECT", help="with --queryexpr: run a query (WQL or CQL) instead, as "
                   "omicli does")
    p.add_argument("--queryexpr", metavar="QUERY", help="the query to run instead of enumerating")


@verb("ei", "enumerate the instances of a class", "openmi ei root/cimv2 Sample_Person --json",
      arguments=_ei_arguments)
def cmd_ei(args: argparse.Namespace, printer: Printer) -> int:
    flags = int(OperationFlags.POLYMORPHISM_SHALLOW) if args.shallow else 0
    opts = _options(args)
    if args.queryexpr is not None or args.querylang is not None:
        if not args.queryexpr or not args.querylang:
            raise UsageError("--querylang and --queryexpr go together")
        if args.keys_only:
            raise UsageError("--keys-only does not apply to a query")
        return _run_op(args, lambda s: s.query_instances(args.namespace, args.querylang, args.queryexpr,
                                                          options=opts, flags=flags), progress=True)
    return _run_op(args, lambda s: s.enumerate_instances(args.namespace, args.class_name, args.keys_only,
                                                          options=opts, flags=flags), progress=True)


def _query_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("query", help="the query, quoted as one word")
    p.add_argument("-shallow", "--shallow", action="store_true", help="only the FROM class itself, not subclasses")


def _query(args: argparse.Namespace, dialect: str) -> int:
    flags = int(OperationFlags.POLYMORPHISM_SHALLOW) if args.shallow else 0
    opts = _options(args)
    return _run_op(args, lambda s: s.query_instances(args.namespace, dialect, args.query, options=opts,
                                                      flags=flags), progress=True)


@verb("wql", "run a WQL query (MI_Session_QueryInstances)",
      'openmi wql root/cimv2 "SELECT Name FROM Sample_Person WHERE Id > 5" --json', arguments=_query_arguments)
def cmd_wql(args: argparse.Namespace, printer: Printer) -> int:
    return _query(args, "WQL")


@verb("cql", "run a CQL query (DSP0202; WQL without LIKE)",
      'openmi cql root/cimv2 "SELECT * FROM Sample_Person WHERE Id = 7"', arguments=_query_arguments)
def cmd_cql(args: argparse.Namespace, printer: Printer) -> int:
    return _query(args, "CQL")


def _iv_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("rest", nargs="*", metavar="WORDS", help="{ Class [keys] } METHOD [{ param value … }]")


@verb("iv", "invoke a method: iv NS { Class [keys] } METHOD [{ param value … }]",
      "openmi iv root/cimv2 { Sample_Calc } Add { A 2 B 40 }", arguments=_iv_arguments)
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


def _sub_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("--querylang", type=_choice("wql", "cql"), default="wql", metavar="WQL|CQL",
                   help="the query language (default WQL)")
    p.add_argument("--queryexpr", required=True, metavar="QUERY", help="the event query")
    p.add_argument("--count", type=_positive, metavar="N", help="stop after N indications")
    p.add_argument("--heartbeat", type=float, metavar="SECONDS",
                   help="remote: how long a Pull waits before the server says it is still there")
    p.add_argument("--bookmark", metavar="BOOKMARK",
                   help="resume after this bookmark (printed with -v), or oldest / newest")
    o = p.add_argument_group("output")
    o.add_argument("--json", dest="fmt", action="store_const", const="json", help="one JSON object per line")
    o.add_argument("--mof", dest="fmt", action="store_const", const="mof", help="MOF")
    o.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    o.add_argument("-n", dest="nulls", action="store_true", help="show NULL properties")
    o.add_argument("-v", "--verbose", action="store_true",
                   help="print each indication's bookmark (stderr) and the error details on failure")
    o.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds (default: run until Ctrl-C)")


@verb("sub", "print indications as they come, until Ctrl-C, --count N or --timeout S",
      'openmi sub root/cimv2 --querylang WQL --queryexpr "SELECT * FROM CIM_InstDeletion '
      "WHERE SourceInstance ISA 'Sample_Person'\" --json", options=("connection",), arguments=_sub_arguments)
def cmd_sub(args: argparse.Namespace, printer: Printer) -> int:
    """omicli's ``sub``: a subscription whose indications are printed one by one (flushed, so a pipe sees
    each at once). Locally it watches the embedded server of this process (changes other processes make
    to the same repository file are not seen); with --hostname, the host's events over WS-Man Pull."""
    from ..cim.requests import BOOKMARK_NEWEST, BOOKMARK_OLDEST
    from ..client.options import SubscriptionDeliveryOptions

    duration, args.timeout = args.timeout, None  # --timeout is how long to listen, not a request timeout
    if duration is not None and duration <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {duration:g}")
    if args.heartbeat is not None and args.heartbeat <= 0:
        raise UsageError(f"--heartbeat must be a positive number of seconds, not {args.heartbeat:g}")
    bookmark = {"oldest": BOOKMARK_OLDEST, "newest": BOOKMARK_NEWEST}.get((args.bookmark or "").lower(),
                                                                          args.bookmark)
    deadline = None if duration is None else time.monotonic() + duration
    count = 0
    with Application("openmi-cli") as app, _session(args, app) as session:
        delivery = SubscriptionDeliveryOptions(heartbeat=args.heartbeat, bookmark=bookmark)
        op = session.subscribe(args.namespace, args.querylang.upper(), args.queryexpr, delivery_options=delivery,
                               flags=OperationFlags.REPORT_OPERATION_STARTED)
        # Ctrl-C sets a flag the loop looks at, rather than raising KeyboardInterrupt wherever the main thread
        # happens to be (inside the operation's own locks, it could leave one held and the exit hanging)
        stop = threading.Event()
        previous = _catch_sigint(stop)
        try:
            while not stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return 0
                try:
                    r = op.get_indication(timeout=0.25 if left is None else min(0.25, left))
                except TimeoutError:
                    continue
                if r.instance is not None:
                    printer.instance(r.instance)
                    printer.stream.flush()
                    if args.verbose and r.bookmark:
                        print(f"openmi: bookmark: {r.bookmark}", file=sys.stderr, flush=True)
                    count += 1
                    if args.count is not None and count >= args.count:
                        return 0
                elif r.more_results:  # the subscription is live
                    if not args.quiet and sys.stderr.isatty():
                        print("openmi: subscribed; waiting for indications (Ctrl-C to stop)", file=sys.stderr)
                elif r.result != MIResult.OK:
                    report(r.result, r.error_message, r.error_details, args.verbose)
                    return int(r.result)
                else:
                    return 0  # the subscription expired
            return 0  # Ctrl-C
        except KeyboardInterrupt:
            return 0
        finally:
            _restore_sigint(previous)  # (a second Ctrl-C interrupts the wait for the unsubscribe)
            _end_subscription(op)


def _catch_sigint(stop: threading.Event) -> Any:
    """Make SIGINT set ``stop``; the handler it replaces (None where signals cannot be caught here)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGINT, lambda *_: stop.set())
    except (ValueError, OSError):
        return None


def _restore_sigint(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _end_subscription(op: Operation, wait: float = 10.0) -> None:
    """Cancel and wait (a little) for the final result, so that a remote subscription has been unsubscribed
    before the command exits."""
    op.cancel()
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            try:
                if not op.get_indication(timeout=max(0.0, deadline - time.monotonic())).more_results:
                    break
            except TimeoutError:
                break
    except KeyboardInterrupt:
        pass
    finally:
        op.close()


def _gc_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("class_name")


@verb("gc", "get a class", "openmi gc root/cimv2 Sample_Person --mof", arguments=_gc_arguments)
def cmd_gc(args: argparse.Namespace, printer: Printer) -> int:
    opts = _options(args)
    return _run_op(args, lambda s: s.get_class(args.namespace, args.class_name, options=opts))


def _ec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("namespace")
    p.add_argument("class_name", nargs="?")
    p.add_argument("--names-only", action="store_true", help="only the names (and superclasses)")
    p.add_argument("-shallow", "--shallow", action="store_true", help="only direct subclasses")


@verb("ec", "enumerate classes (all, or those derived from CLASS)", "openmi ec root/cimv2 CIM_ManagedElement "
      "--names-only", arguments=_ec_arguments)
def cmd_ec(args: argparse.Namespace, printer: Printer) -> int:
    flags = int(OperationFlags.POLYMORPHISM_SHALLOW) if args.shallow else 0
    opts = _options(args)
    return _run_op(args, lambda s: s.enumerate_classes(args.namespace, args.class_name, args.names_only,
                                                        options=opts, flags=flags),
                   names_only=args.names_only, progress=True)


# --- the server's tools -----------------------------------------------------------------------------


def _mof_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("compile",))
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--namespace", default="root/cimv2", help="where the classes go (default root/cimv2)")
    p.add_argument("-I", "--include", action="append", default=[], help="a folder to search for #pragma include")
    p.add_argument("--repository",
                   help="the repository file (default ~/.local/share/openmi/repository.db) [OPENMI_REPOSITORY]")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


@verb("mof", "compile MOF into the repository: mof compile FILE...",
      "openmi mof compile schema.mof --namespace root/cimv2", group=MOF, options=(), arguments=_mof_arguments)
def cmd_mof(args: argparse.Namespace, printer: Printer) -> int:
    from ..engine.server import Server

    with Server(args.repository or None, shared=True) as srv:  # (a running openmi serve may share the file)
        for path in args.files:
            t0 = time.perf_counter()
            if sys.stderr.isatty() and not printer.quiet:  # a live status line while a large schema loads
                from rich.console import Console

                with Console(stderr=True).status(f"compiling and loading {path} …"):
                    result = srv.compile_mof(Path(path), args.namespace, include_dirs=args.include)
            else:  # a Path: always a file, whatever its name looks like
                result = srv.compile_mof(Path(path), args.namespace, include_dirs=args.include)
            printer.line(f"{path}: {len(result.classes)} classes, {len(result.instances)} instances, "
                         f"{len(result.qualifier_decls)} qualifier declarations ({time.perf_counter() - t0:.2f} s)")
    return 0


# serve's flags that override the configuration file: only those given are applied (default SUPPRESS)
_SERVE_KEYS = ("http_port", "https_port", "users", "bind", "allow_unencrypted", "cert_file",
               "key_file")


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    none = argparse.SUPPRESS
    p.add_argument("--config", help="a file of key = value lines; flags override it")
    p.add_argument("--repository",
                   help="the repository file to serve (default ~/.local/share/openmi/repository.db) "
                        "[OPENMI_REPOSITORY]")
    p.add_argument("--mof-file", "--load-mof", dest="mof_files", action="append", default=[], metavar="FILE",
                   help="MOF to load at start (repeatable)")
    p.add_argument("--bind", default=none, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--http-port", type=_port, default=none,
                   help="HTTP port (default 5985; 0 picks a free one; 'none' for no HTTP)")
    p.add_argument("--https-port", type=_port, default=none,
                   help="HTTPS port (default 5986; 0 picks a free one; 'none' for no HTTPS)")
    p.add_argument("--users", default=none, help="the user file (openmi user add …)")
    p.add_argument("--allow-unencrypted", action="store_true", default=none,
                   help="accept Basic and unencrypted bodies over plain HTTP")
    p.add_argument("--cert-file", default=none, help="the TLS certificate (default: made on first use)")
    p.add_argument("--key-file", default=none, help="its private key")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="server processes sharing the ports and the repository (default, or 0: one per core; "
                        "1 with an in-memory repository)")


@verb("serve", "serve the embedded server over WS-Management (HTTP 5985, HTTPS 5986)",
      "openmi serve --mof-file schema.mof --http-port 5985 --https-port 5986", group=SERVE, options=(),
      arguments=_serve_arguments)
def cmd_serve(args: argparse.Namespace, printer: Printer) -> int:
    import signal
    import threading

    from ..wsman_server.config import ServeConfig
    from ..wsman_server.run import WSManServer

    try:
        cfg = ServeConfig.load(args.config) if args.config else ServeConfig()
        if args.repository is not None:
            cfg.set("repository", args.repository)
        for key in _SERVE_KEYS:
            if hasattr(args, key):
                cfg.set(key, getattr(args, key))
        cfg.mof.extend(args.mof_files)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from ..wsman_server.workers import Supervisor, default_workers

    # One per core by default (the workers share the login throttles, forward each other the requests for
    # their contexts and hand each other the events their subscribers watch); an in-memory repository
    # cannot be shared, so it gets one.
    can_fork = hasattr(os, "fork")  # the workers are forked (POSIX); elsewhere one process serves
    if args.workers is None:
        workers = 1 if cfg.repository == ":memory:" or not can_fork else default_workers()
    else:
        workers = args.workers if args.workers != 0 else default_workers() if can_fork else 1
    if workers < 1:
        raise UsageError("--workers is a number of processes: 1 or more, or 0 for one per core")
    if workers > 1 and not can_fork:
        raise UsageError("--workers above 1 needs os.fork (a POSIX system); this one serves with one process")
    if workers > 1:
        try:
            supervisor = Supervisor(cfg, workers)
            urls = supervisor.prepare()
        except (OSError, ValueError, MIError) as exc:
            print(f"openmi: cannot serve: {exc}", file=sys.stderr)
            return int(MIResult.FAILED)
        for url in urls:
            print(f"listening on {url}", flush=True)
        print(f"openmi: {workers} workers", file=sys.stderr, flush=True)
        return supervisor.run()
    from ..engine.server import Server

    engine: Server | None = None
    try:
        # shared, as the workers open it: the CLI's local commands may use the file while it is served
        engine = Server(cfg.repository, shared=True)
        server = WSManServer(cfg, engine=engine)
        urls = server.start()
    except BaseException as exc:
        if engine is not None:
            engine.close()
        if not isinstance(exc, (OSError, ValueError)):
            raise  # (a MOF error, say: reported as the other verbs report it)
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
        engine.close()
    return 0


def _user_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("add", "remove", "list"))
    p.add_argument("name", nargs="?")
    p.add_argument("--users", help="the user file (default ~/.config/openmi/users.json)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--rights", default="*=rw", help="NS=r|rw,… (default *=rw: every namespace, read and write)")


@verb("user", "manage the users of openmi serve: user add|remove|list",
      "openmi user add alice --password-stdin --rights root/cimv2=rw", group=USER, options=(),
      arguments=_user_arguments)
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
    rights: dict[str, str] = {}
    for part in args.rights.split(","):
        ns, sep, right = part.partition("=")
        if not sep or right not in ("r", "rw"):
            raise UsageError(f"--rights takes NS=r or NS=rw, not {part!r}")
        rights[ns.strip()] = right
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask the password on: use --password-stdin")
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the passwords differ")
    try:
        store.add(args.name, password, rights=rights, replace=True)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    printer.line(f"user {args.name} saved in {store.path}")
    return 0


def _cert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("create",))
    p.add_argument("--cert-file", help="where the certificate goes (default ~/.config/openmi/server.crt)")
    p.add_argument("--key-file", help="where its private key goes (default ~/.config/openmi/server.key)")
    p.add_argument("--cert-hostname", dest="cert_hostnames", action="append", default=[], metavar="NAME",
                   help="a name or address the certificate is for (repeatable; default this host's name, "
                        "localhost, 127.0.0.1, ::1)")


@verb("cert", "make a self-signed TLS certificate for openmi serve: cert create",
      "openmi cert create --cert-hostname server1.example.org", group=CERT, options=(), arguments=_cert_arguments)
def cmd_cert(args: argparse.Namespace, printer: Printer) -> int:
    from ..wsman_server.config import config_dir
    from ..wsman_server.tls import create_self_signed

    cert = args.cert_file or str(config_dir() / "server.crt")
    key = args.key_file or str(config_dir() / "server.key")
    create_self_signed(cert, key, args.cert_hostnames or None)
    printer.line(f"certificate {cert}\nprivate key {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

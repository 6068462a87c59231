"""The command line's shape: each verb shows and takes only its own options, ``openmi --help`` groups the
verbs with an example each, a misspelled option or verb names the closest valid one, options stand
anywhere, OPENMI_* settings still apply, and a new verb is one registration."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterator

import pytest

from openmi import __version__
from openmi.cli import main as cli_main
from openmi.cli.output import Printer

from .conftest import CLI

CLIENT_VERBS = ("noop", "id", "gi", "ci", "mi", "di", "ei", "iv", "gc", "ec")


def options_in_help(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text.split("example:")[0]))


def test_root_help_groups_the_verbs_with_an_example_each(cli: CLI) -> None:
    r = cli("--help")
    assert r.code == 0 and r.err == ""
    headings = [line for line in r.out.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert [h.split(" (")[0].rstrip(":") for h in headings] == [
        "operations", "MOF", "serving over WS-Management", "users of openmi serve", "TLS certificates"]
    for name in (*CLIENT_VERBS, "mof", "serve", "user", "cert"):
        line = re.search(rf"^  {name} +(\S.*)\n +\$ (openmi {name} .*)$", r.out, re.M)
        assert line, name
    # the group a verb sits in
    assert r.out.index("  ec ") < r.out.index("MOF:") < r.out.index("  mof ") < r.out.index("  serve ")
    assert "exit status is the MI_Result" in r.out and "OPENMI_HOSTNAME" in r.out
    assert cli("-h").out == r.out
    r = cli()  # nothing to do: the same help, as a usage error
    assert r.code == 4 and "operations (" in r.out


def test_an_option_is_a_flag_or_takes_a_value_in_every_verb_alike() -> None:
    """The verb is found after options that may precede it, so ``-u user noop`` needs -u to take a value
    everywhere it exists; a new verb must not reuse an option string the other way round."""
    kinds: dict[str, set[bool]] = {}
    for name in cli_main.VERBS:
        for option, takes_value in cli_main._option_strings(cli_main.verb_parser(name)).items():
            kinds.setdefault(option, set()).add(takes_value)
    assert {o: k for o, k in kinds.items() if len(k) > 1} == {}


def test_version(cli: CLI) -> None:
    assert cli("--version").out == f"openmi {__version__}\n"
    assert cli("ei", "--version").out == f"openmi {__version__}\n"


@pytest.mark.parametrize("name", CLIENT_VERBS)
def test_client_verbs_show_connection_and_output_options(cli: CLI, name: str) -> None:
    r = cli(name, "--help")
    assert r.code == 0
    shown = options_in_help(r.out)
    assert {"--hostname", "--port", "--user", "--password", "--auth", "--encryption", "--cafile", "--json", "--mof",
            "--quiet", "--verbose", "--timeout", "--repository"} <= shown
    assert ("-R" in shown) == (name != "id")  # identifying is not an operation to repeat
    assert not shown & {"--mof-file", "--users", "--http-port", "--password-stdin", "--cert-file", "--namespace"}
    assert f"example:\n  openmi {name} " in r.out


def test_server_tools_show_only_their_own_options(cli: CLI) -> None:
    serve = options_in_help(cli("serve", "--help").out)
    assert serve == {"-h", "--help", "--config", "--repository", "--mof-file", "--load-mof", "--bind", "--http-port",
                     "--https-port", "--users", "--allow-unencrypted", "--cert-file", "--key-file", "--workers"}
    mof = options_in_help(cli("mof", "--help").out)
    assert mof == {"-h", "--help", "--namespace", "-I", "--include", "--repository", "-q", "--quiet"}
    user = options_in_help(cli("user", "--help").out)
    assert user == {"-h", "--help", "--users", "--password-stdin", "--rights"}
    cert = options_in_help(cli("cert", "--help").out)
    assert cert == {"-h", "--help", "--cert-file", "--key-file", "--cert-hostname"}


@pytest.mark.parametrize(("argv", "message"), [
    (["ei", "root/cimv2", "X", "--hostnme", "h"], "unknown option --hostnme for ei; did you mean --hostname?"),
    (["--hostnme", "h", "ei", "root/cimv2", "X"], "unknown option --hostnme; did you mean --hostname?"),
    (["serve", "--mof", "schema.mof"], "unknown option --mof for serve; did you mean --mof-file?"),
    (["serve", "--json"], "unknown option --json for serve (it is an option of noop, id, gi, ci, mi, di, a, r, ei, "
                          "wql, cql, iv, sub, gc, ec)"),
    (["cert", "create", "--users=u.json"], "unknown option --users for cert (it is an option of serve, user)"),
    (["ei", "root/cimv2", "X", "-verbose"], "unknown option -verbose for ei; did you mean --verbose?"),
    (["ei", "root/cimv2", "X", "--shalow"], "unknown option --shalow for ei; did you mean --shallow?"),
    (["gi", "root/cimv2", "--jsn", "{", "A", "K", "1", "}"], "unknown option --jsn for gi; did you mean --json?"),
    (["id", "-R", "3"], "unknown option -R for id (it is an option of noop, gi, ci, mi, di, a, r, ei, wql, cql, iv, "
                        "gc, ec)"),
    (["ei", "root/cimv2", "X", "-r", "3"], "unknown option -r for ei; did you mean -R?"),
    (["ei", "root/cimv2", "X", "-x"], "unknown option -x for ei (see openmi ei --help)"),  # no wild guess
    (["noop", "-R", "0"], "noop: argument -R: '0' is not a positive whole number"),
    (["noop", "--port", "99999"], "noop: argument --port: 99999 is not a port number (1-65535)"),
    (["ie", "root/cimv2", "X"], "unknown verb 'ie'; did you mean 'ei'?"),
    (["serv"], "unknown verb 'serv'; did you mean 'serve'?"),
    (["frobnicate"], "unknown verb 'frobnicate' (see openmi --help)"),
    (["mof", "compil", "x.mof"], "mof: 'compil' is not one of compile; did you mean compile?"),
    (["user", "ad", "bob"], "user: 'ad' is not one of add, remove, list; did you mean add?"),
    (["ei", "root/cimv2"], "ei: the following arguments are required: class_name"),
    (["ei", "root/cimv2", "X", "-R"], "ei: argument -R: expected one argument"),
    (["serve", "--http-port", "http"], "serve: argument --http-port: 'http' is not a port number"),
])
def test_usage_errors_name_the_closest_valid_word(cli: CLI, argv: list[str], message: str) -> None:
    r = cli(*argv)
    assert r.code == 4 and r.out == ""
    assert r.err.startswith("openmi: " + message), r.err


def test_unknown_verb_suggestion_uses_quotes_for_verbs(cli: CLI) -> None:
    # options known to some verb do not hide a misspelled verb; an option's value is never taken for the verb
    r = cli("-u", "user", "--hostname", "h", "noopp")
    assert r.code == 4 and "unknown verb 'noopp'; did you mean 'noop'?" in r.err


def test_options_anywhere_short_flags_together_and_attached_values(cli: CLI) -> None:
    args = cli_main.parse(["-qn", "--json", "ei", "-R3", "root/cimv2", "--port=99", "X", "-u", "ei"])
    assert isinstance(args, argparse.Namespace)
    assert (args.verb, args.namespace, args.class_name) == ("ei", "root/cimv2", "X")
    assert (args.quiet, args.nulls, args.fmt, args.repeat, args.port, args.user) == (True, True, "json", 3, 99, "ei")
    # after "--" words are words, even when they look like options
    args = cli_main.parse(["gi", "root/cimv2", "--", "{", "A", "K", "-x", "}"])
    assert isinstance(args, argparse.Namespace) and args.instance == ["{", "A", "K", "-x", "}"]
    args = cli_main.parse(["gi", "root/cimv2", "{", "A", "K", "-5", "}"])  # a negative number is a word
    assert isinstance(args, argparse.Namespace) and args.instance[-2] == "-5"


def test_environment_settings_still_apply(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENMI_HOSTNAME", "server1")
    monkeypatch.setenv("OPENMI_PORT", "5999")
    monkeypatch.setenv("OPENMI_USER", "alice")
    monkeypatch.setenv("OPENMI_SSL", "yes")
    args = cli_main.parse(["noop"])
    assert isinstance(args, argparse.Namespace)
    assert (args.hostname, args.port, args.user, args.encryption) == ("server1", 5999, "alice", "https")
    args = cli_main.parse(["noop", "--hostname", "server2", "--encryption", "none"])  # a flag beats the environment
    assert isinstance(args, argparse.Namespace) and (args.hostname, args.encryption) == ("server2", "none")
    monkeypatch.setenv("OPENMI_ENCRYPTION", "none")
    args = cli_main.parse(["noop", "--ssl"])
    assert isinstance(args, argparse.Namespace) and args.encryption == "https"


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("OPENMI_PORT", "abc", "OPENMI_PORT: 'abc' is not a port number"),
    ("OPENMI_PORT", "70000", "OPENMI_PORT: 70000 is not a port number (1-65535)"),
    ("OPENMI_ENCRYPTION", "htps", "OPENMI_ENCRYPTION: 'htps' is not one of http, https, none; did you mean https?"),
    ("OPENMI_NOVERIFY", "maybe", "OPENMI_NOVERIFY: 'maybe' is neither true"),
    ("OPENMI_URI_STYLE", "cim", "OPENMI_URI_STYLE: 'cim' is not one of wmi, dmtf"),
])
def test_a_bad_environment_setting_is_a_usage_error(cli: CLI, monkeypatch: pytest.MonkeyPatch, variable: str,
                                                    value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    r = cli("noop")
    assert r.code == 4 and r.err.startswith("openmi: " + message), r.err
    assert cli("user", "list", "--users", "/nonexistent/users.json").code == 0  # a verb without the option


def test_serve_applies_only_the_flags_given() -> None:
    args = cli_main.parse(["serve", "--https-port", "none", "--mof-file", "a.mof", "--load-mof", "b.mof"])
    assert isinstance(args, argparse.Namespace)
    assert args.https_port is None and args.mof_files == ["a.mof", "b.mof"]
    assert not hasattr(args, "http_port") and not hasattr(args, "allow_unencrypted")  # left to the config


@pytest.fixture
def extra_verb() -> Iterator[list[argparse.Namespace]]:
    seen: list[argparse.Namespace] = []

    def arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("namespace")
        p.add_argument("--twice", action="store_true")

    @cli_main.verb("xq", "an extra verb registered by a test", "openmi xq root/cimv2 --twice", arguments=arguments)
    def cmd(args: argparse.Namespace, printer: Printer) -> int:
        seen.append(args)
        printer.line(args.namespace * (2 if args.twice else 1))
        return 0
    yield seen
    del cli_main.VERBS["xq"]


def test_a_new_verb_is_one_registration(cli: CLI, extra_verb: list[argparse.Namespace]) -> None:
    assert "  xq " in cli("--help").out and "$ openmi xq root/cimv2 --twice" in cli("--help").out
    r = cli("--twice", "xq", "ab")
    assert (r.code, r.out) == (0, "abab\n")
    assert extra_verb[0].hostname is None  # the client option sets came with it
    r = cli("xq", "ab", "--twic")
    assert r.code == 4 and "did you mean --twice?" in r.err
    with pytest.raises(ValueError, match="registered twice"):
        cli_main.verb("xq", "again", "openmi xq")(lambda a, p: 0)
    with pytest.raises(ValueError, match="unknown group"):
        cli_main.verb("xr", "x", "openmi xr", group="nowhere")
    with pytest.raises(ValueError, match="unknown option sets"):
        cli_main.verb("xr", "x", "openmi xr", options=("colour",))


def test_serve_workers_need_fork(cli: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no os.fork (Windows), more than one worker is a usage error, naming why."""
    monkeypatch.delattr(os, "fork")
    r = cli("serve", "--workers", "2", "--http-port", "0", "--https-port", "none")
    assert r.code == 4 and "needs os.fork" in r.err

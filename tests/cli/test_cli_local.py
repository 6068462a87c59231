"""The installed ``openmi`` executable against the embedded server: every verb, exit codes, output forms."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MOF = """
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
Qualifier Static : boolean = false, Scope(method), Flavor(DisableOverride, ToSubclass);
class Sample_Person { [Key] uint32 Id; string Name; string Tags[]; datetime Born; };
class Sample_Employee : Sample_Person { string Dept; };
"""


def openmi_exe() -> list[str]:
    exe = shutil.which("openmi", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "openmi"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["OPENMI_REPOSITORY"] = str(tmp_path / "repo.db")
    e["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    e["COLUMNS"] = "200"
    for k in ("OPENMI_HOSTNAME", "OPENMI_USER", "OPENMI_PASSWORD"):
        e.pop(k, None)
    mof = tmp_path / "sample.mof"
    mof.write_text(MOF)
    r = run(["mof", "compile", str(mof)], e)
    assert r.returncode == 0, r.stderr
    assert "2 classes" in r.stdout
    return e


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*openmi_exe(), *args], env=env, capture_output=True, text=True, input=stdin, timeout=60)


def test_version_and_help(env: dict[str, str]) -> None:
    r = run(["--version"], env)
    assert r.returncode == 0 and r.stdout.startswith("openmi ")
    for verb in ("noop", "id", "gi", "ci", "mi", "di", "ei", "iv", "gc", "ec", "mof", "serve", "user", "cert"):
        h = run([verb, "--help"], env)
        assert h.returncode == 0, verb
        assert "example:" in h.stdout and "openmi " + verb in h.stdout


def test_instance_verbs_and_exit_codes(env: dict[str, str]) -> None:
    r = run(["ci", "root/cimv2", "{", "Sample_Person", "Id", "7", "Name", "Ada", "Tags", "[", "a", "b", "]",
             "Born", "19151210000000.000000+000", "}"], env)
    assert r.returncode == 0, r.stderr
    r = run(["gi", "root/cimv2", "{", "Sample_Person", "Id", "7", "}"], env)
    assert r.returncode == 0
    assert "instance of root/cimv2:Sample_Person" in r.stdout and "[Key] Id=7" in r.stdout
    assert "Tags={a, b}" in r.stdout
    r = run(["mi", "root/cimv2", "{", "Sample_Person", "Id", "7", "*Name", "Ada Lovelace", "}", "--json"], env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["properties"]["Name"] == "Ada Lovelace"
    r = run(["di", "root/cimv2", "{", "Sample_Person", "Id", "7", "}"], env)
    assert r.returncode == 0 and r.stdout == ""
    r = run(["di", "root/cimv2", "{", "Sample_Person", "Id", "7", "}"], env)
    assert r.returncode == 6
    assert "MI_RESULT_NOT_FOUND" in r.stderr and "Sample_Person" in r.stderr
    r = run(["di", "root/cimv2", "{", "Sample_Person", "Id", "7", "}", "--verbose"], env)
    assert r.returncode == 6 and "CIMStatusCode=6" in r.stderr
    r = run(["gi", "root/cimv2", "{", "No_Class", "Id", "7", "}"], env)
    assert r.returncode == 5 and "MI_RESULT_INVALID_CLASS" in r.stderr
    r = run(["gi", "root/nowhere", "{", "Sample_Person", "Id", "7", "}"], env)
    assert r.returncode == 3


def test_malformed_brace_points_at_the_argument(env: dict[str, str]) -> None:
    r = run(["gi", "root/cimv2", "{", "Sample_Person", "Id", "}"], env)
    assert r.returncode == 4
    assert "argument" in r.stderr and "malformed instance" in r.stderr
    r = run(["gi", "root/cimv2", "Sample_Person", "Id", "7"], env)
    assert r.returncode == 4


def test_enumerate_json_is_typed_and_stable(env: dict[str, str]) -> None:
    for i in range(3):
        assert run(["ci", "root/cimv2", "{", "Sample_Person", "Id", str(i), "Name", f"n{i}", "}"], env).returncode == 0
    assert run(["ci", "root/cimv2", "{", "Sample_Employee", "Id", "9", "Dept", "Ops", "}"], env).returncode == 0
    r = run(["ei", "root/cimv2", "Sample_Person", "--json"], env)
    assert r.returncode == 0
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 4
    assert rows[0]["types"]["Id"] == "uint32" and rows[0]["keys"] == ["Id"]
    assert {row["class"] for row in rows} == {"Sample_Person", "Sample_Employee"}
    r = run(["ei", "-shallow", "root/cimv2", "Sample_Person", "--json"], env)
    assert len(r.stdout.splitlines()) == 3
    r = run(["ei", "root/cimv2", "Sample_Person", "-q"], env)
    assert r.returncode == 0 and r.stdout == ""
    r = run(["ei", "root/cimv2", "Sample_Person", "--mof"], env)
    assert "instance of Sample_Person" in r.stdout


def test_classes(env: dict[str, str]) -> None:
    r = run(["gc", "root/cimv2", "Sample_Employee", "--json"], env)
    assert r.returncode == 0
    c = json.loads(r.stdout)
    assert c["superclass"] == "Sample_Person" and c["properties"]["Id"]["key"] is True
    r = run(["gc", "root/cimv2", "Sample_Person", "--mof"], env)
    assert "class Sample_Person" in r.stdout
    r = run(["ec", "root/cimv2", "--names-only"], env)
    assert r.stdout.splitlines()[:2] == ["Sample_Person", "Sample_Employee : Sample_Person"]
    r = run(["gc", "root/cimv2", "Nope"], env)
    assert r.returncode == 5


def test_noop_repeat_and_id(env: dict[str, str]) -> None:
    r = run(["noop", "-R", "20"], env)
    assert r.returncode == 0 and "got noop response" in r.stdout
    assert "20 operations in" in r.stderr
    r = run(["id", "--json"], env)
    assert r.returncode == 0 and json.loads(r.stdout)["properties"]["ProductVendor"] == "openmi"


def test_invoke_without_provider_is_not_supported(env: dict[str, str]) -> None:
    r = run(["iv", "root/cimv2", "{", "Sample_Person", "Id", "1", "}", "Nope"], env)
    assert r.returncode == 17  # METHOD_NOT_FOUND
    r = run(["iv", "root/cimv2", "{", "Sample_Person", "}"], env)
    assert r.returncode == 4


def test_user_management(env: dict[str, str], tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    r = run(["user", "add", "alice", "--users", str(users), "--password-stdin", "--rights", "root/cimv2=r"], env,
            stdin="s3cret\n")
    assert r.returncode == 0, r.stderr
    assert "s3cret" not in users.read_text()
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    r = run(["user", "list", "--users", str(users)], env)
    assert r.stdout.startswith("alice\troot/cimv2=r")
    r = run(["user", "add", "bob", "--users", str(users)], env, stdin="")
    assert r.returncode == 4 and "--password-stdin" in r.stderr
    assert run(["user", "remove", "alice", "--users", str(users)], env).returncode == 0
    assert run(["user", "remove", "alice", "--users", str(users)], env).returncode == 6


def test_cert_create(env: dict[str, str], tmp_path: Path) -> None:
    r = run(["cert", "create", "--cert-file", str(tmp_path / "c.pem"), "--key-file", str(tmp_path / "k.pem")], env)
    assert r.returncode == 0
    assert (tmp_path / "c.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert oct((tmp_path / "k.pem").stat().st_mode & 0o777) == "0o600"


def test_mof_errors_exit_nonzero(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.mof"
    bad.write_text("class Broken : Missing_Parent { };\n")
    r = run(["mof", "compile", str(bad)], env)
    assert r.returncode != 0
    assert "bad.mof:1:" in r.stderr and "Missing_Parent" in r.stderr

"""``openmi`` against the embedded server, in-process: every verb, exit codes (the MI_Result), output forms,
the server's tools (mof compile, user, cert)."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import CLI

PERSON_7 = ["{", "Sample_Person", "Id", "7", "}"]


def test_instance_verbs_and_exit_codes(sample: CLI) -> None:
    r = sample("ci", "root/cimv2", "{", "Sample_Person", "Id", "7", "*Name", "Ada", "*Tags", "[", "a", "b", "]",
               "*Born", "19151210000000.000000+000", "}")
    assert r.code == 0, r.err
    r = sample("gi", "root/cimv2", *PERSON_7)
    assert r.code == 0
    assert "instance of root/cimv2:Sample_Person" in r.out and "[Key] Id=7" in r.out
    assert "Tags={a, b}" in r.out and "Born=19151210000000.000000+000" in r.out
    r = sample("mi", "root/cimv2", "{", "Sample_Person", "Id", "7", "*Name", "Ada Lovelace", "}", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["properties"]["Name"] == "Ada Lovelace"
    assert sample("ci", "root/cimv2", *PERSON_7).code == 11  # ALREADY_EXISTS
    r = sample("di", "root/cimv2", *PERSON_7)
    assert (r.code, r.out, r.err) == (0, "", "")
    r = sample("di", "root/cimv2", *PERSON_7)
    assert r.code == 6
    assert r.err.splitlines() == ["openmi: result: MI_RESULT_NOT_FOUND",
                                  "openmi: result: no instance of Sample_Person with Id=7 in namespace root/cimv2"]
    r = sample("di", "root/cimv2", *PERSON_7, "--verbose")
    assert r.code == 6 and "CIMStatusCode=6" in r.err and "OpenMI_Error" in r.err
    r = sample("gi", "root/cimv2", "{", "No_Class", "Id", "7", "}")
    assert r.code == 5 and "MI_RESULT_INVALID_CLASS" in r.err
    r = sample("gi", "root/nowhere", *PERSON_7)
    assert r.code == 3 and "MI_RESULT_INVALID_NAMESPACE" in r.err
    r = sample("gi", "root/cimv2", "{", "Sample_Person", "Id", "x", "}")
    assert r.code == 13 and "MI_RESULT_TYPE_MISMATCH" in r.err  # uint32 key given as text


def test_malformed_brace_points_at_the_argument(sample: CLI) -> None:
    r = sample("gi", "root/cimv2", "{", "Sample_Person", "Id", "}")
    assert r.code == 4
    assert "malformed instance at argument 4 (})" in r.err
    r = sample("gi", "root/cimv2", "Sample_Person", "Id", "7")
    assert r.code == 4 and "malformed instance at argument 1" in r.err
    r = sample("gi", "root/cimv2")
    assert r.code == 4 and "the instance is missing" in r.err


def test_enumerate_json_is_typed_and_stable(sample: CLI) -> None:
    for i in range(3):
        assert sample("ci", "root/cimv2", "{", "Sample_Person", "Id", str(i), "*Name", f"n{i}", "}").code == 0
    assert sample("ci", "root/cimv2", "{", "Sample_Employee", "Id", "9", "*Dept", "Ops", "}").code == 0
    r = sample("ei", "root/cimv2", "Sample_Person", "--json")
    assert r.code == 0
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [row["properties"]["Id"] for row in rows] == [0, 1, 2, 9]
    assert rows[0] == {"class": "Sample_Person", "namespace": "root/cimv2",
                       "properties": {"Id": 0, "Name": "n0", "Tags": None, "Born": None},
                       "types": {"Id": "uint32", "Name": "string", "Tags": "string[]", "Born": "datetime"},
                       "keys": ["Id"]}
    assert rows[3]["class"] == "Sample_Employee" and rows[3]["properties"]["Dept"] == "Ops"
    # options anywhere, omicli's single-dash -shallow
    r = sample("--json", "ei", "-shallow", "root/cimv2", "--quiet", "Sample_Person")
    assert r.code == 0 and r.out == ""
    r = sample("ei", "root/cimv2", "-shallow", "Sample_Person", "--json")
    assert len(r.out.splitlines()) == 3
    r = sample("ei", "root/cimv2", "Sample_Person", "--keys-only", "--json")
    assert [sorted(json.loads(line)["properties"]) for line in r.out.splitlines()] == [["Id"]] * 4
    r = sample("ei", "root/cimv2", "Sample_Person", "--mof")
    assert r.out.count("instance of Sample_Person") == 3 and "instance of Sample_Employee" in r.out
    r = sample("ei", "root/cimv2", "Sample_Person")
    assert "Name=n1" in r.out and "Born=" not in r.out
    r = sample("ei", "root/cimv2", "Sample_Person", "-n")  # NULLs shown
    assert "Born=NULL" in r.out
    r = sample("ei", "root/cimv2", "Nope")
    assert r.code == 5


def test_classes(sample: CLI) -> None:
    r = sample("gc", "root/cimv2", "Sample_Employee", "--json")
    assert r.code == 0
    c = json.loads(r.out)
    assert c["superclass"] == "Sample_Person" and c["properties"]["Id"]["key"] is True
    assert c["properties"]["Dept"]["origin"] == "Sample_Employee"
    r = sample("gc", "root/cimv2", "Sample_Employee", "--mof")  # as declared: only its own property
    assert "class Sample_Employee : Sample_Person" in r.out and "Dept" in r.out and "Name" not in r.out
    r = sample("ec", "root/cimv2", "--names-only")
    assert r.out.splitlines()[:2] == ["Sample_Person", "Sample_Employee : Sample_Person"]
    r = sample("ec", "root/cimv2", "Sample_Person", "--names-only", "--json")
    assert [json.loads(line) for line in r.out.splitlines()] == [
        {"class": "Sample_Employee", "superclass": "Sample_Person"}]
    r = sample("gc", "root/cimv2", "Nope")
    assert r.code == 5


def test_noop_repeat_and_id(sample: CLI, tmp_path: Path) -> None:
    r = sample("noop", "-R", "20")
    assert r.code == 0 and r.out == "got noop response\n"
    assert "20 operations in" in r.err
    r = sample("id", "--json")
    assert r.code == 0
    props = json.loads(r.out)["properties"]
    assert props["ProductVendor"] == "openmi" and props["Repository"] == str(tmp_path / "repo.db")


def test_invoke_errors(sample: CLI) -> None:
    r = sample("iv", "root/cimv2", "{", "Sample_Person", "Id", "1", "}", "Nope")
    assert r.code == 17 and "MI_RESULT_METHOD_NOT_FOUND" in r.err
    r = sample("iv", "root/cimv2", "{", "Sample_Person", "}")
    assert r.code == 4 and "method name" in r.err
    r = sample("iv", "root/cimv2", "Sample_Person", "Nope")
    assert r.code == 4 and "iv needs { Class [keys] } METHOD" in r.err
    r = sample("iv", "root/cimv2", "{", "Sample_Person", "}", "M", "A", "1")
    assert r.code == 4 and "parameters go in braces" in r.err


def test_repository_option_beats_the_environment(cli: CLI, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    mof = tmp_path / "one.mof"
    mof.write_text("class Only_Here { [Key] string K; };\n")
    assert cli("mof", "compile", str(mof), "--repository", str(other), "-q").code == 0
    assert cli("gc", "root/cimv2", "Only_Here", "--repository", str(other)).code == 0
    assert cli("gc", "root/cimv2", "Only_Here").code == 5  # the environment's repository has no such class


def test_user_management(cli: CLI, tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    r = cli("user", "add", "alice", "--users", str(users), "--password-stdin", "--rights", "root/cimv2=r",
            stdin="s3cret-Pw\n")
    assert r.code == 0, r.err
    assert r.out == f"user alice saved in {users}\n"
    assert "s3cret" not in users.read_text()
    assert oct(users.stat().st_mode & 0o777) == "0o600"
    r = cli("user", "list", "--users", str(users))
    assert r.out.startswith("alice\troot/cimv2=r")
    r = cli("user", "add", "bob", "--users", str(users))  # no terminal to ask on
    assert r.code == 4 and "--password-stdin" in r.err
    r = cli("user", "add", "bob", "--users", str(users), "--password-stdin", "--rights", "root/cimv2=x", stdin="pw\n")
    assert r.code == 4 and "--rights takes NS=r or NS=rw" in r.err
    r = cli("user", "add", "--users", str(users), "--password-stdin", stdin="pw\n")
    assert r.code == 4 and "needs a user name" in r.err
    assert cli("user", "remove", "alice", "--users", str(users)).code == 0
    r = cli("user", "remove", "alice", "--users", str(users))
    assert r.code == 6 and "no user alice" in r.err
    assert cli("user", "list", "--users", str(users)).out == ""


def test_cert_create(cli: CLI, tmp_path: Path) -> None:
    from cryptography import x509

    r = cli("cert", "create", "--cert-file", str(tmp_path / "c.pem"), "--key-file", str(tmp_path / "k.pem"),
            "--cert-hostname", "server1.example.org", "--cert-hostname", "10.1.2.3")
    assert r.code == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "c.pem").read_bytes())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["server1.example.org"]
    assert [str(a) for a in alt.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert oct((tmp_path / "k.pem").stat().st_mode & 0o777) == "0o600"
    r = cli("cert", "create")  # the default place: the configuration folder
    assert r.code == 0 and (tmp_path / "config" / "openmi" / "server.crt").exists()


def test_mof_errors_exit_nonzero_and_load_nothing(cli: CLI, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mof"
    bad.write_text("class Fine { };\nclass Broken : Missing_Parent { };\n")
    r = cli("mof", "compile", str(bad))
    assert r.code == 1
    assert "bad.mof:2:" in r.err and "Missing_Parent" in r.err
    assert cli("gc", "root/cimv2", "Fine").code == 5
    r = cli("mof", "compile", str(tmp_path / "absent.mof"))
    assert r.code != 0 and "absent.mof" in r.err

"""``openmi`` client verbs, in-process, against a real ``WSManServer`` on loopback ports (port 0, read back):
every verb over WS-Man, HTTPS checked against the server's certificate, exit codes for ACCESS_DENIED,
a wrong password, a refused connection and a missing password."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import openmi
from openmi.wsman_server.run import WSManServer

from .conftest import CLI, PASSWORD

PERSON_7 = ["{", "Sample_Person", "Id", "7", "}"]


def test_every_verb_over_wsman(remote: CLI, served: WSManServer) -> None:
    r = remote("noop")
    assert (r.code, r.out) == (0, "got noop response\n")
    r = remote("id", "--json")
    assert r.code == 0 and json.loads(r.out)["properties"]["ProductVendor"] == "openmi"
    r = remote("ci", "root/cimv2", "{", "Sample_Person", "Id", "7", "*Name", "Ada", "*Tags", "[", "a", "b", "]", "}")
    assert r.code == 0, r.err
    r = remote("gi", "root/cimv2", *PERSON_7)
    assert r.code == 0 and "Name=Ada" in r.out and "Tags={a, b}" in r.out
    r = remote("mi", "root/cimv2", "{", "Sample_Person", "Id", "7", "*Name", "Grace", "}")
    assert r.code == 0, r.err
    r = remote("ei", "root/cimv2", "Sample_Person", "--json", "--maxelements", "1")
    assert r.code == 0 and json.loads(r.out)["properties"]["Name"] == "Grace"
    # the server's own repository changed, not the client's embedded one
    with openmi.Application() as app:
        assert [p["Name"] for p in app.new_session(server=served.engine).enumerate("Sample_Person")] == ["Grace"]
    assert remote("gi", "root/cimv2", *PERSON_7, "--local").code == 5  # the local repository has no such class
    r = remote("di", "root/cimv2", *PERSON_7)
    assert r.code == 0
    r = remote("di", "root/cimv2", *PERSON_7, "--verbose")
    assert r.code == 6 and "MI_RESULT_NOT_FOUND" in r.err and "CIMStatusCode=6" in r.err
    r = remote("gi", "root/cimv2", "{", "No_Class", "Id", "1", "}")
    assert r.code == 5
    r = remote("gi", "root/nowhere", *PERSON_7)
    assert r.code == 3
    r = remote("iv", "root/cimv2", "{", "Sample_Person", "Id", "1", "}", "Nope")
    assert r.code in (7, 17)
    r = remote("noop", "-R", "5")
    assert r.code == 0 and "5 operations in" in r.err


def test_https_checked_against_the_server_certificate(remote: CLI, served: WSManServer, tmp_path: Path) -> None:
    https = ["--encryption", "https", "--port", str(served.port("https"))]
    r = remote("noop", *https, "--cafile", str(tmp_path / "server.crt"))
    assert r.code == 0, r.err
    r = remote("noop", "--ssl", "--port", str(served.port("https")), "--cafile", str(tmp_path / "server.crt"))
    assert r.code == 0, r.err
    r = remote("noop", *https)  # the self-signed certificate is not in the system's CA store
    assert r.code == 1 and "certificate" in r.err.lower()
    r = remote("noop", *https, "--noverify")
    assert r.code == 0, r.err


def test_access_denied_wrong_password_and_refused(remote: CLI, served: WSManServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    r = remote("di", "root/cimv2", *PERSON_7, "-u", "reader")
    assert r.code == 2 and "MI_RESULT_ACCESS_DENIED" in r.err
    r = remote("ei", "root/cimv2", "Sample_Person", "-p", "not-it")
    assert r.code == 2 and "MI_RESULT_ACCESS_DENIED" in r.err
    assert "not-it" not in r.err + r.out
    monkeypatch.setenv("OPENMI_PASSWORD", "not-it")  # the environment's password, and a flag to override it
    assert remote("noop").code == 2
    assert remote("noop", "--password", PASSWORD).code == 0
    r = remote("noop", "--port", "1")
    assert r.code == 1 and "refused" in r.err
    r = remote("noop", "--auth", "Digest")
    assert r.code == 4 and "argument --auth: 'Digest' is not one of basic, negowithcreds" in r.err
    r = remote("noop", "--auth", "ntlmm")
    assert r.code == 4 and "did you mean ntlm?" in r.err
    assert remote("noop", "--auth", "BASIC", "-p", PASSWORD).code == 0  # any case


def test_no_password_and_no_terminal(remote: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENMI_PASSWORD")
    r = remote("noop")
    assert r.code == 4 and "a password is needed" in r.err


def test_serve_refuses_a_busy_port(cli: CLI, served: WSManServer, tmp_path: Path) -> None:
    port = served.port("http")
    r = cli("serve", "--http-port", str(port), "--https-port", "none", "--repository", str(tmp_path / "other.db"))
    assert r.code == 1 and "cannot serve" in r.err and str(port) in r.err


def test_serve_reports_a_bad_configuration(cli: CLI, tmp_path: Path) -> None:
    conf = tmp_path / "serve.conf"
    conf.write_text("http_port = 0\nmax_conections = 3\n")
    r = cli("serve", "--config", str(conf))
    assert r.code == 4 and "serve.conf:2" in r.err and "max_conections" in r.err
    r = cli("serve", "--config", str(tmp_path / "absent.conf"))
    assert r.code == 4 and "cannot read the configuration" in r.err
    r = cli("serve", "--http-port", "none", "--https-port", "none", "--repository", str(tmp_path / "r.db"))
    assert r.code == 1 and "no listener" in r.err

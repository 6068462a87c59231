"""The ``openmi`` executable against an ``openmi serve`` started by the test (a real subprocess, port 0):
every verb over WS-Man, exit codes for ACCESS_DENIED and a wrong password, and a password typed at the
prompt in a real terminal (tmux)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmi.wsman_server.users import UserStore

from .test_cli_local import MOF, openmi_exe, run

PASSWORD = "Cli-pa55word"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[dict[str, str], int]]:
    env = dict(os.environ)
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), OPENMI_REPOSITORY=str(tmp_path / "client-local.db"),
               COLUMNS="200")
    users = tmp_path / "users.json"
    store = UserStore(users)
    store.add("alice", PASSWORD)
    store.add("reader", PASSWORD, rights={"root/cimv2": "r"})
    mof = tmp_path / "sample.mof"
    mof.write_text(MOF)
    proc = subprocess.Popen(
        [*openmi_exe(), "serve", "--repository", str(tmp_path / "served.db"), "--users", str(users), "--http-port", "0",
         "--https-port", "none", "--allow-unencrypted", "--mof-file", str(mof)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr.read() if proc.stderr else "")
    port = int(line.rsplit(":", 1)[1].split("/")[0])
    env.update(OPENMI_HOSTNAME="127.0.0.1", OPENMI_PORT=str(port), OPENMI_USER="alice", OPENMI_PASSWORD=PASSWORD,
               OPENMI_ENCRYPTION="none")
    yield env, port
    proc.terminate()
    assert proc.wait(15) == 0  # a clean, graceful stop


def test_every_verb_over_wsman(server: tuple[dict[str, str], int]) -> None:
    env, _ = server
    r = run(["noop"], env)
    assert r.returncode == 0 and "got noop response" in r.stdout
    r = run(["id", "--json"], env)
    assert r.returncode == 0 and json.loads(r.stdout)["properties"]["ProductVendor"] == "openmi"
    r = run(["ci", "root/cimv2", "{", "Sample_Person", "Id", "7", "Name", "Ada", "Tags", "[", "a", "b", "]", "}"],
            env)
    assert r.returncode == 0, r.stderr
    r = run(["gi", "root/cimv2", "{", "Sample_Person", "Id", "7", "}"], env)
    assert r.returncode == 0 and "Name=Ada" in r.stdout and "Tags={a, b}" in r.stdout
    r = run(["mi", "root/cimv2", "{", "Sample_Person", "Id", "7", "*Name", "Grace", "}"], env)
    assert r.returncode == 0, r.stderr
    r = run(["ei", "root/cimv2", "Sample_Person", "--json"], env)
    assert r.returncode == 0 and json.loads(r.stdout)["properties"]["Name"] == "Grace"
    r = run(["di", "root/cimv2", "{", "Sample_Person", "Id", "7", "}"], env)
    assert r.returncode == 0
    r = run(["di", "root/cimv2", "{", "Sample_Person", "Id", "7", "}"], env)
    assert r.returncode == 6 and "MI_RESULT_NOT_FOUND" in r.stderr
    r = run(["gi", "root/cimv2", "{", "No_Class", "Id", "1", "}"], env)
    assert r.returncode == 5
    r = run(["iv", "root/cimv2", "{", "Sample_Person", "Id", "1", "}", "Nope"], env)
    assert r.returncode in (7, 17)
    r = run(["gc", "root/cimv2", "Sample_Person"], env)
    assert r.returncode == 7 and "not available over WS-Management" in r.stderr
    r = run(["noop", "-R", "5"], env)
    assert r.returncode == 0 and "5 operations in" in r.stderr


def test_access_denied_and_wrong_password(server: tuple[dict[str, str], int]) -> None:
    env, _ = server
    reader = dict(env, OPENMI_USER="reader")
    r = run(["di", "root/cimv2", "{", "Sample_Person", "Id", "7", "}"], reader)
    assert r.returncode == 2 and "MI_RESULT_ACCESS_DENIED" in r.stderr
    wrong = dict(env, OPENMI_PASSWORD="not-it")
    r = run(["ei", "root/cimv2", "Sample_Person"], wrong)
    assert r.returncode == 2 and "MI_RESULT_ACCESS_DENIED" in r.stderr
    assert "not-it" not in r.stderr + r.stdout
    r = run(["noop", "--port", "1"], env)
    assert r.returncode == 1 and "refused" in r.stderr


def test_no_password_and_no_terminal(server: tuple[dict[str, str], int]) -> None:
    env, _ = server
    env = dict(env)
    env.pop("OPENMI_PASSWORD")
    r = run(["noop"], env, stdin="")
    assert r.returncode == 4 and "password" in r.stderr


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/test-deps.sh)")
def test_password_prompt_in_a_terminal(server: tuple[dict[str, str], int], tmp_path: Path) -> None:
    env, _ = server
    env = dict(env)
    env.pop("OPENMI_PASSWORD")
    out = tmp_path / "out.txt"
    exe = " ".join(openmi_exe())
    script = tmp_path / "run.sh"
    script.write_text(f"#!/bin/sh\n{exe} noop > {out} 2>&1; echo \"rc=$?\" >> {out}\n")
    script.chmod(0o755)
    sock = str(tmp_path / "tmux.sock")
    subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-x", "120", "-y", "20", str(script)], env=env,
                   check=True)
    try:
        screen = ""
        for _ in range(100):
            screen = subprocess.run(["tmux", "-S", sock, "capture-pane", "-p"], capture_output=True, text=True).stdout
            if "Password for alice@127.0.0.1" in screen:
                break
            time.sleep(0.1)
        assert "Password for alice@127.0.0.1" in screen
        subprocess.run(["tmux", "-S", sock, "send-keys", PASSWORD, "Enter"], check=True)
        for _ in range(100):
            if out.exists() and "rc=" in out.read_text():
                break
            time.sleep(0.1)
        text = out.read_text()
        assert "got noop response" in text and "rc=0" in text
        assert PASSWORD not in text  # never echoed, never printed
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)


def test_serve_refuses_a_busy_port(server: tuple[dict[str, str], int], tmp_path: Path) -> None:
    env, port = server
    r = subprocess.run([*openmi_exe(), "serve", "--http-port", str(port), "--https-port", "none",
                        "--repository", str(tmp_path / "other.db")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and str(port) in r.stderr


def test_module_entry_point() -> None:
    r = subprocess.run([sys.executable, "-m", "openmi", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("openmi ")

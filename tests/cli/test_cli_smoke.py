"""A few runs of the installed ``openmi`` executable in subprocesses (the rest of tests/cli runs ``main``
in-process): the entry points, exit statuses as a shell sees them, ``openmi serve`` started, used and
stopped by SIGTERM, and a password typed at the prompt in a real terminal (tmux)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from openmi.wsman_server.users import UserStore

from .conftest import MOF, PASSWORD, clean_env, openmi_exe


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*openmi_exe(), *args], env=env, capture_output=True, text=True, input=stdin, timeout=60)


def test_entry_points(tmp_path: Path) -> None:
    r = run(["--version"], clean_env(tmp_path))
    assert r.returncode == 0 and r.stdout.startswith("openmi ")
    r = subprocess.run([sys.executable, "-m", "openmi", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("openmi ")


def test_exit_statuses_in_a_shell(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    (tmp_path / "sample.mof").write_text(MOF)
    assert run(["mof", "compile", str(tmp_path / "sample.mof")], env).returncode == 0
    person = ["root/cimv2", "{", "Sample_Person", "Id", "7", "}"]
    assert run(["ci", *person], env).returncode == 0
    assert run(["di", *person], env).returncode == 0
    r = run(["di", *person], env)
    assert r.returncode == 6 and "MI_RESULT_NOT_FOUND" in r.stderr
    r = run(["ei", "root/cimv2", "Sample_Person", "--hostnme", "h"], env)
    assert r.returncode == 4 and "did you mean --hostname?" in r.stderr


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """``openmi serve`` in a subprocess on a free port; the env of a client pointed at it as alice."""
    env = clean_env(tmp_path)
    users = tmp_path / "users.json"
    UserStore(users).add("alice", PASSWORD)
    (tmp_path / "sample.mof").write_text(MOF)
    proc = subprocess.Popen(
        [*openmi_exe(), "serve", "--repository", str(tmp_path / "served.db"), "--users", str(users),
         "--http-port", "0", "--https-port", "none", "--allow-unencrypted", "--mof-file", str(tmp_path / "sample.mof")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr.read())
    port = line.rsplit(":", 1)[1].split("/")[0]
    env.update(OPENMI_HOSTNAME="127.0.0.1", OPENMI_PORT=port, OPENMI_USER="alice", OPENMI_ENCRYPTION="none")
    try:
        yield env, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(15)
        proc.stdout.close()
        proc.stderr.close()


def test_serve_answers_and_stops_cleanly_on_sigterm(serve: tuple[dict[str, str], subprocess.Popen[str]]) -> None:
    env, proc = serve
    r = run(["di", "root/cimv2", "{", "Sample_Person", "Id", "7", "}", "-p", PASSWORD], env)
    assert r.returncode == 6 and "MI_RESULT_NOT_FOUND" in r.stderr  # the class came from --mof-file
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0  # a clean, graceful stop


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/test-deps.sh)")
def test_password_prompt_in_a_terminal(serve: tuple[dict[str, str], subprocess.Popen[str]], tmp_path: Path) -> None:
    env, _ = serve
    out = tmp_path / "out.txt"
    script = tmp_path / "run.sh"
    script.write_text(f"#!/bin/sh\n{' '.join(openmi_exe())} noop > {out} 2>&1; echo \"rc=$?\" >> {out}\n")
    script.chmod(0o755)
    sock = str(tmp_path / "tmux.sock")
    subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-x", "120", "-y", "20", str(script)], env=env,
                   check=True)
    try:
        screen = ""
        for _ in range(300):  # the prompt, waited for without a time limit on what is measured
            screen = subprocess.run(["tmux", "-S", sock, "capture-pane", "-p"], capture_output=True, text=True).stdout
            if "Password for alice@127.0.0.1" in screen:
                break
            time.sleep(0.1)
        assert "Password for alice@127.0.0.1" in screen
        subprocess.run(["tmux", "-S", sock, "send-keys", PASSWORD, "Enter"], check=True)
        for _ in range(300):
            if out.exists() and "rc=" in out.read_text():
                break
            time.sleep(0.1)
        text = out.read_text()
        assert "got noop response" in text and "rc=0" in text
        assert PASSWORD not in text  # never echoed, never printed
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], capture_output=True)

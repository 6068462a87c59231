"""MOF that uses standard qualifiers without declaring them loads through `openmi mof compile` and
`openmi serve --mof-file`, as it does through WMI's mofcomp."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from openmi.wsman_server.config import ServeConfig
from openmi.wsman_server.run import WSManServer

from .test_cli_local import openmi_exe

MOF = "class Sample_Person { [Key] uint32 Id; string Name; };\n"


def _env(tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e["OPENMI_REPOSITORY"] = str(tmp_path / "repo.db")
    e["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return e


def test_mof_compile_with_key_and_no_declarations(tmp_path: Path) -> None:
    (tmp_path / "person.mof").write_text(MOF)
    env = _env(tmp_path)
    r = subprocess.run([*openmi_exe(), "mof", "compile", str(tmp_path / "person.mof")], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*openmi_exe(), "gc", "root/cimv2", "Sample_Person", "--mof"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and " ".join(r.stdout.split()).startswith(
        "class Sample_Person { [Key] uint32 Id; string Name; };"), r.stdout


def test_mof_compile_names_a_conflicting_declaration(tmp_path: Path) -> None:
    (tmp_path / "bad.mof").write_text("Qualifier Key : string = null, Scope(property);\n" + MOF)
    r = subprocess.run([*openmi_exe(), "mof", "compile", str(tmp_path / "bad.mof")], env=_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "bad.mof:1:11: qualifier Key conflicts with the standard (DSP0004) declaration" in r.stderr


def test_serve_mof_file_with_key_and_no_declarations(tmp_path: Path) -> None:
    (tmp_path / "person.mof").write_text(MOF)
    cfg = ServeConfig(repository=str(tmp_path / "repo.db"), http_port=0, https_port=None,
                      users=str(tmp_path / "users"), mof=[str(tmp_path / "person.mof")])
    server = WSManServer(cfg)
    try:
        assert server.engine.get_class("root/cimv2", "Sample_Person").properties["Id"].key
    finally:
        server.stop()

"""MOF that uses standard qualifiers without declaring them loads through `openmi mof compile` and
`openmi serve --mof-file`, as it does through WMI's mofcomp."""

from __future__ import annotations

from pathlib import Path

from openmi.wsman_server.config import ServeConfig
from openmi.wsman_server.run import WSManServer

from .conftest import CLI

MOF = "class Sample_Person { [Key] uint32 Id; string Name; };\n"


def test_mof_compile_with_key_and_no_declarations(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "person.mof").write_text(MOF)
    r = cli("mof", "compile", str(tmp_path / "person.mof"))
    assert r.code == 0, r.err
    r = cli("gc", "root/cimv2", "Sample_Person", "--mof")
    assert r.code == 0 and " ".join(r.out.split()).startswith(
        "class Sample_Person { [Key] uint32 Id; string Name; };"), r.out


def test_mof_compile_names_a_conflicting_declaration(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "bad.mof").write_text("Qualifier Key : string = null, Scope(property);\n" + MOF)
    r = cli("mof", "compile", str(tmp_path / "bad.mof"))
    assert r.code != 0
    assert "bad.mof:1:11: qualifier Key conflicts with the standard (DSP0004) declaration" in r.err


def test_serve_mof_file_with_key_and_no_declarations(tmp_path: Path) -> None:
    (tmp_path / "person.mof").write_text(MOF)
    cfg = ServeConfig(repository=str(tmp_path / "repo.db"), http_port=0, https_port=None,
                      users=str(tmp_path / "users"), mof=[str(tmp_path / "person.mof")])
    server = WSManServer(cfg)
    try:
        assert server.engine.get_class("root/cimv2", "Sample_Person").properties["Id"].key
    finally:
        server.stop()

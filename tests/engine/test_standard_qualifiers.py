"""Every namespace of the embedded server starts with the standard qualifier declarations (DSP0004):
new ones, ones a MOF creates, and those of a repository made before openmi declared them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import openmi
from openmi import MIType, MOFError
from openmi.cim.mof import standard_qualifiers

PERSON = "class Sample_Person { [Key] uint32 Id; string Name; };"
STANDARD = {q.name.lower() for q in standard_qualifiers()}


def test_namespaces_start_with_the_standard_declarations(tmp_path: Path) -> None:
    with openmi.Server(tmp_path / "repo.db") as srv:
        srv.create_namespace("root/new")
        for ns in ("root/cimv2", "root/interop", "root/new"):
            assert {q.name.lower() for q in srv.qualifier_declarations(ns)} >= STANDARD
    with openmi.Server(tmp_path / "repo.db") as srv:  # persisted, not made again in memory only
        assert {q.name.lower() for q in srv.qualifier_declarations("root/new")} >= STANDARD


def test_mof_with_key_and_no_declarations_loads(tmp_path: Path) -> None:
    with openmi.Server(tmp_path / "repo.db") as srv:
        srv.compile_mof(PERSON + '\ninstance of Sample_Person { Id = 7; Name = "Ada"; };')
        srv.compile_mof('#pragma namespace("root/fresh")\n' + PERSON)  # a namespace the MOF creates
        assert srv.get_class("root/fresh", "Sample_Person").properties["Id"].key
    with openmi.Server(tmp_path / "repo.db") as srv:
        cls = srv.get_class("root/cimv2", "Sample_Person")
        assert cls.properties["Id"].key and cls.properties["Id"].type == MIType.UINT32


def test_agreeing_declaration_keeps_the_namespace_declaration() -> None:
    with openmi.Server(":memory:") as srv:
        srv.compile_mof("Qualifier Static : boolean = false, Scope(method), Flavor(DisableOverride, ToSubclass);\n"
                        + PERSON)
        static = {q.name: q for q in srv.qualifier_declarations("root/cimv2")}["Static"]
        assert static.scope == openmi.MIFlag.PROPERTY | openmi.MIFlag.METHOD  # still the standard one
        srv.compile_mof("class Sample_Counter { [Key] string Id; [Static] uint32 Count; };")


def test_conflicting_declaration_fails_and_loads_nothing() -> None:
    with openmi.Server(":memory:") as srv:
        before = srv.classes("root/cimv2")
        with pytest.raises(MOFError) as exc:
            srv.compile_mof("Qualifier Key : boolean = true, Scope(property, reference), "
                            "Flavor(DisableOverride, ToSubclass);\n" + PERSON)
        assert exc.value.errors == [
            "<string>:1:11: qualifier Key conflicts with the standard (DSP0004) declaration that namespace "
            "root/cimv2 holds: here default true, not false"]
        assert srv.classes("root/cimv2") == before
        assert {q.name: q for q in srv.qualifier_declarations("root/cimv2")}["Key"].default is False


def test_a_users_own_declaration_is_held_against_later_mof() -> None:
    with openmi.Server(":memory:") as srv:
        srv.compile_mof("Qualifier Colour : string = null, Scope(property);\n"
                        'class Sample_Car { [Key] string Id; [Colour("red")] string Paint; };')
        srv.compile_mof("Qualifier Colour : string = null, Scope(property);")  # the same again
        with pytest.raises(MOFError, match="qualifier Colour conflicts with the declaration that namespace "
                                           "root/cimv2 holds: here type uint32, not string"):
            srv.compile_mof("Qualifier Colour : uint32, Scope(property);")


def test_loading_a_precompiled_result_checks_declarations_too() -> None:
    result = openmi.cim.mof.compile_mof("Qualifier Key : boolean = false, Scope(property);\n" + PERSON,
                                        qualifier_lookup=lambda ns, name: None)
    result.qualifier_decls[0][1].scope = openmi.MIFlag.CLASS
    with openmi.Server(":memory:") as srv, pytest.raises(MOFError, match="qualifier Key conflicts"):
        srv.load(result)


def test_an_older_repository_gets_them_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with openmi.Server(path) as srv:
        srv.create_namespace("root/old")
        srv.compile_mof("Qualifier Key : boolean = false, Scope(property, reference), "
                        "Flavor(DisableOverride, ToSubclass);\nclass Old_Item { [Key] string Id; };", "root/old")
    db = sqlite3.connect(path)  # as a repository written before the standard declarations existed
    db.execute("DELETE FROM qualifiers WHERE name <> 'key'")
    db.commit()
    db.close()
    with openmi.Server(path) as srv:
        assert {q.name.lower() for q in srv.qualifier_declarations("root/old")} >= STANDARD
        srv.compile_mof('class Old_Thing : Old_Item { [Description("x"), MaxLen(8)] string Note; };', "root/old")
        assert srv.get_class("root/old", "Old_Thing").properties["Id"].key
    db = sqlite3.connect(path)
    stored = {r[0] for r in db.execute("SELECT name FROM qualifiers WHERE ns='root/old'")}
    db.close()
    assert stored >= STANDARD

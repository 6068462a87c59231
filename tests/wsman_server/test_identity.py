"""OMI_Identify in root/omi, as OMI answers ``omicli id`` (an Enumerate of the class with __cimnamespace):
the product, its version and the repository's namespaces; a Get by its key; a repository with a root/omi
of its own answers from there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import openmi
from openmi import AuthType, DestinationOptions, Instance, MIError, MIResult

from .conftest import PASSWORD, Running, start


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    r = start(tmp_path, allow_unencrypted=True)
    yield r
    r.server.stop()
    r.engine.close()


def session(app: openmi.Application, r: Running) -> openmi.Session:
    o = DestinationOptions("http", r.http_port, uri_style="dmtf")  # (OMI's client: DMTF URIs, __cimnamespace)
    o.add_credentials(AuthType.BASIC, "alice", PASSWORD)
    return app.new_session("127.0.0.1", "WINRM", o)


def test_omi_identify_is_answered(served: Running) -> None:
    with openmi.Application() as app:
        s = session(app, served)
        (ident,) = s.enumerate("OMI_Identify", namespace="root/omi")
        assert ident.class_name == "OMI_Identify" and ident["ProductName"] == "openmi"
        assert ident["ProductVersionString"] == openmi.__version__
        assert isinstance(ident["ProductVersionMajor"], int)
        assert "root-cimv2" in ident["ConfigNameSpaces"]
        with s.get_instance("root/omi", Instance("OMI_Identify", {"InstanceID": ident["InstanceID"]})) as op:
            assert op.get_instance().instance["SystemName"] == ident["SystemName"]
        with s.get_instance("root/omi", Instance("OMI_Identify", {"InstanceID": "nope"})) as op:
            assert op.get_instance().result == MIResult.NOT_FOUND
        with pytest.raises(MIError) as info:  # only that class: root/omi holds nothing else
            s.enumerate("OMI_Other", namespace="root/omi")
        assert info.value.result == MIResult.INVALID_NAMESPACE


def test_a_repository_with_its_own_root_omi_answers_from_it(served: Running) -> None:
    served.engine.create_namespace("root/omi")
    served.engine.define_class("root/omi", openmi.Class("OMI_Identify", properties=[
        openmi.Property("InstanceID", openmi.MIType.STRING, key=True)]))
    with openmi.Application() as app:
        local = app.new_session(server=served.engine)
        local.create(Instance("OMI_Identify", {"InstanceID": "mine"}), namespace="root/omi")
        assert [i["InstanceID"] for i in session(app, served).enumerate("OMI_Identify", namespace="root/omi")] == \
            ["mine"]


def test_it_names_only_the_namespaces_the_user_may_read(served: Running) -> None:
    served.engine.create_namespace("root/secret")
    served.server.users.add("ops", PASSWORD, rights={"root/omi": "r", "root/cimv2": "r"})
    with openmi.Application() as app:
        o = DestinationOptions("http", served.http_port, uri_style="dmtf")
        o.add_credentials(AuthType.BASIC, "ops", PASSWORD)
        s = app.new_session("127.0.0.1", "WINRM", o)
        (ident,) = s.enumerate("OMI_Identify", namespace="root/omi")
        assert "root-cimv2" in ident["ConfigNameSpaces"] and "root-secret" not in ident["ConfigNameSpaces"]
        (everything,) = session(app, served).enumerate("OMI_Identify", namespace="root/omi")
        assert "root-secret" in everything["ConfigNameSpaces"]  # (alice may read every namespace)

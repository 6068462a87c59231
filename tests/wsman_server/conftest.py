"""A real ``openmi serve`` on loopback ports (port 0, read back), with users, TLS and a sample class."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import openmi
from openmi import MIType
from openmi.wsman_server.config import ServeConfig
from openmi.wsman_server.run import WSManServer
from openmi.wsman_server.tls import create_self_signed
from openmi.wsman_server.users import UserStore

PASSWORD = "Secr3t-pw!"


class Recorder:
    """A provider for Sample_Watched that records every call: proof that a request was (not) executed."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def get_instance(self, ctx: Any, ns: str, inst: openmi.Instance) -> openmi.Instance:
        self.calls.append("get")
        out = ctx.new_instance("Sample_Watched")
        out["Id"] = inst["Id"]
        return out

    def enumerate_instances(self, ctx: Any, ns: str, cls: str, keys_only: bool) -> list[openmi.Instance]:
        self.calls.append("enumerate")
        return []

    def delete_instance(self, ctx: Any, ns: str, inst: openmi.Instance) -> None:
        self.calls.append("delete")

    def invoke(self, ctx: Any, ns: str, cls: str, method: str, inst: Any, params: openmi.Instance) -> Any:
        self.calls.append(method)
        if method == "Add":
            return {"ReturnValue": 0, "Sum": params["A"] + params["B"]}
        return 0


@dataclass
class Running:
    server: WSManServer
    engine: openmi.Server
    recorder: Recorder
    cert: Path
    users: Path

    @property
    def http_port(self) -> int:
        return self.server.port("http")

    @property
    def https_port(self) -> int:
        return self.server.port("https")


def sample_engine(path: str = ":memory:") -> tuple[openmi.Server, Recorder]:
    engine = openmi.Server(path)
    engine.create_namespace("root/test")
    engine.define_class("root/cimv2", openmi.Class("Sample_Person", properties=[
        openmi.Property("Id", MIType.UINT32, key=True), openmi.Property("Name", MIType.STRING),
        openmi.Property("Tags", MIType.STRINGA), openmi.Property("Born", MIType.DATETIME)]))
    engine.define_class("root/cimv2", openmi.Class("Sample_Watched", properties=[
        openmi.Property("Id", MIType.UINT32, key=True)], methods=[
        openmi.Method("Add", MIType.UINT32, [openmi.Parameter("A", MIType.SINT32), openmi.Parameter("B", MIType.SINT32),
                                             openmi.Parameter("Sum", MIType.SINT64, in_=False, out=True)],
                      qualifiers={"Static": True})]))
    recorder = Recorder()
    engine.register_provider("root/cimv2", "Sample_Watched", recorder)
    return engine, recorder


def start(tmp: Path, *, allow_unencrypted: bool = False, engine: openmi.Server | None = None,
          recorder: Recorder | None = None, **cfg: Any) -> Running:
    users = tmp / "users.json"
    store = UserStore(users)
    if not store.get("alice"):
        store.add("alice", PASSWORD)
        store.add("reader", PASSWORD, rights={"root/cimv2": "r"})
    cert, key = tmp / "server.crt", tmp / "server.key"
    if not cert.exists():
        create_self_signed(cert, key, ["localhost", "127.0.0.1"])
    config = ServeConfig(http_port=0, https_port=0, users=str(users), cert_file=str(cert), key_file=str(key),
                         allow_unencrypted=allow_unencrypted, shutdown_timeout=5.0)
    for k, v in cfg.items():
        setattr(config, k, v)
    if engine is None:
        engine, recorder = sample_engine()
    server = WSManServer(config, engine=engine)
    server.start()
    assert recorder is not None
    return Running(server, engine, recorder, cert, users)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Running]:
    r = start(tmp_path)
    yield r
    r.server.stop()
    r.engine.close()


@pytest.fixture
def served_unencrypted(tmp_path: Path) -> Iterator[Running]:
    r = start(tmp_path, allow_unencrypted=True)
    yield r
    r.server.stop()
    r.engine.close()

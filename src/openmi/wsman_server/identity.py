"""``OMI_Identify`` in ``root/omi``: OMI's built-in instance that says which server this is, answered by
``openmi serve`` as OMI answers it.

OMI's command-line client asks for it with ``omicli id``: an Enumerate of the class's DMTF URI with the
``__cimnamespace`` selector ``root/omi`` (not WS-Man's own Identify). A repository that has a ``root/omi``
namespace of its own (an OMI schema compiled into it) answers from there instead; otherwise the service
answers Enumerate, Get and GetClass of the class, with the one instance made here: the product, its version, the
platform and the repository's namespaces (``ConfigNameSpaces``, in OMI's ``root-cimv2`` form).
"""

from __future__ import annotations

import platform
import re
import socket
import uuid
from collections.abc import Callable, Iterator

from .. import __version__
from ..cim import requests as rq
from ..cim.classes import Class, Property
from ..cim.errors import MIError
from ..cim.instance import Instance
from ..cim.types import MIResult, MIType
from ..engine.server import Server

NAMESPACE = "root/omi"
CLASS_NAME = "OMI_Identify"

_STRINGS = ("SystemName", "ProductName", "ProductVendor")
_VERSIONS = ("ProductVersionMajor", "ProductVersionMinor", "ProductVersionRevision")
_MORE = ("ProductVersionString", "Platform", "OperatingSystem", "Architecture", "Compiler")

#: the class as OMI declares it (the names and types its clients read)
IDENTIFY_CLASS = Class(CLASS_NAME, properties=[
    Property("InstanceID", MIType.STRING, key=True),
    *(Property(n, MIType.STRING) for n in _STRINGS),
    *(Property(n, MIType.UINT32) for n in _VERSIONS),
    *(Property(n, MIType.STRING) for n in _MORE),
    Property("ConfigNameSpaces", MIType.STRINGA),
])


def asks_identity(engine: Server, record: rq.Request) -> bool:
    """Whether ``record`` is an Enumerate or Get of OMI_Identify in root/omi that the service answers (the
    repository has no root/omi of its own)."""
    if not isinstance(record, (rq.EnumerateInstances, rq.GetInstance, rq.GetClass)):
        return False
    if (record.namespace or "").strip("/").lower() != NAMESPACE:
        return False
    if isinstance(record, (rq.EnumerateInstances, rq.GetClass)):
        name = record.class_name
    else:
        name = record.instance.class_name if isinstance(record.instance, Instance) else None
    if not isinstance(name, str) or name.lower() != CLASS_NAME.lower():
        return False
    return NAMESPACE not in (n.lower() for n in engine.namespaces)


def answer(engine: Server, record: rq.Request, readable: Callable[[str], bool]) -> Iterator[Instance | Class]:
    """The result of an Enumerate (the instance), a Get (it, if the key names it; else NOT_FOUND) or a
    GetClass (the class, which clients read to type the instance). ``readable(namespace)``: whether the
    user may read it (the instance lists only those namespaces)."""
    if isinstance(record, rq.GetClass):
        yield IDENTIFY_CLASS.clone()  # (a copy: the caller may set its namespace)
        return
    inst = identify_instance(engine, readable)
    if isinstance(record, rq.GetInstance):
        asked = record.instance.get("InstanceID") if isinstance(record.instance, Instance) else None
        if asked != inst["InstanceID"]:
            raise MIError(MIResult.NOT_FOUND, f"no instance of {CLASS_NAME} with InstanceID={asked!r} in "
                          f"namespace {NAMESPACE}")
    yield inst


def identify_instance(engine: Server, readable: Callable[[str], bool] = lambda _ns: True) -> Instance:
    host = socket.gethostname()
    numbers = [int(n) for n in re.findall(r"\d+", __version__)[:3]]
    numbers += [0] * (3 - len(numbers))
    system = platform.system().upper()
    machine = platform.machine().upper()
    inst = Instance(CLASS_NAME, cls=IDENTIFY_CLASS, namespace=NAMESPACE)
    inst["InstanceID"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"openmi:{host}:{engine.path}")).upper()
    inst["SystemName"] = host
    inst["ProductName"] = "openmi"
    inst["ProductVendor"] = "openmi"
    for name, n in zip(_VERSIONS, numbers):
        inst[name] = n
    inst["ProductVersionString"] = __version__
    inst["Platform"] = f"{system}_{machine}_PYTHON"
    inst["OperatingSystem"] = system
    inst["Architecture"] = machine
    inst["Compiler"] = f"PYTHON{platform.python_version()}"
    inst["ConfigNameSpaces"] = sorted(n.replace("/", "-") for n in engine.namespaces if readable(n))
    return inst

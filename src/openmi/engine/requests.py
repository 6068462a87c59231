"""The requests the engine serves, one small record per MI operation kind.

Whoever calls the engine (the in-process session, the WS-Man server) builds one of these; the engine
answers with a stream of results (instances or classes) that ends with success or an :class:`MIError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..cim.instance import Instance


@dataclass(slots=True)
class Request:
    namespace: str | None = None
    flags: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    #: "instance" (results are instances) or "class"
    result_kind: ClassVar[str] = "instance"
    #: True when the operation has at most one result, delivered with the final status
    single: ClassVar[bool] = True
    #: the MI function's name, used in messages
    name: ClassVar[str] = "Operation"


@dataclass(slots=True)
class GetInstance(Request):
    instance: Instance | None = None
    name: ClassVar[str] = "GetInstance"


@dataclass(slots=True)
class CreateInstance(Request):
    instance: Instance | None = None
    name: ClassVar[str] = "CreateInstance"


@dataclass(slots=True)
class ModifyInstance(Request):
    instance: Instance | None = None
    name: ClassVar[str] = "ModifyInstance"


@dataclass(slots=True)
class DeleteInstance(Request):
    instance: Instance | None = None
    name: ClassVar[str] = "DeleteInstance"


@dataclass(slots=True)
class EnumerateInstances(Request):
    class_name: str | None = None
    keys_only: bool = False
    single: ClassVar[bool] = False
    name: ClassVar[str] = "EnumerateInstances"


@dataclass(slots=True)
class QueryInstances(Request):
    """MI_Session_QueryInstances: ``dialect`` "WQL"/"CQL" (or a WS-Man dialect URI) and the query text."""

    dialect: str | None = None
    query: str | None = None
    single: ClassVar[bool] = False
    name: ClassVar[str] = "QueryInstances"


@dataclass(slots=True)
class Invoke(Request):
    class_name: str | None = None
    method_name: str | None = None
    instance: Instance | None = None
    parameters: Instance | dict[str, Any] | None = None
    name: ClassVar[str] = "Invoke"


@dataclass(slots=True)
class GetClass(Request):
    class_name: str | None = None
    result_kind: ClassVar[str] = "class"
    name: ClassVar[str] = "GetClass"


@dataclass(slots=True)
class EnumerateClasses(Request):
    class_name: str | None = None
    class_names_only: bool = False
    result_kind: ClassVar[str] = "class"
    single: ClassVar[bool] = False
    name: ClassVar[str] = "EnumerateClasses"


@dataclass(slots=True)
class TestConnection(Request):
    name: ClassVar[str] = "TestConnection"

    __test__ = False  # not a pytest test class


@dataclass(slots=True)
class AssociatorInstances(Request):
    """The instances associated with ``instance`` (MI_Session_AssociatorInstances); every filter optional."""

    instance: Instance | None = None
    assoc_class: str | None = None
    result_class: str | None = None
    role: str | None = None
    result_role: str | None = None
    keys_only: bool = False
    single: ClassVar[bool] = False
    name: ClassVar[str] = "AssociatorInstances"


@dataclass(slots=True)
class ReferenceInstances(Request):
    """The association instances that refer to ``instance`` (MI_Session_ReferenceInstances);
    ``result_class`` names an association class."""

    instance: Instance | None = None
    result_class: str | None = None
    role: str | None = None
    keys_only: bool = False
    single: ClassVar[bool] = False
    name: ClassVar[str] = "ReferenceInstances"

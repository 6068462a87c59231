"""Typed WS-Man requests: one dataclass per operation, sharing the header fields of §2 of the notes.

The server gets them from ``parse_request``; the client fills them in and hands them to
``build_request``. Selector values are text (the engine types them with the class) or, for a
reference-valued key, a key-only :class:`~openmi.cim.instance.Instance`. ``namespace`` and
``class_name`` are resolved from the resource URI and ``__cimnamespace``, which is not kept among the
selectors.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from openmi.cim.instance import Instance

from . import namespaces as ns
from .uri import CIMXML_SCHEMA_URI, UriStyle, resource_uri
from .values import Selectors


def new_message_id() -> str:
    """A fresh ``uuid:`` message id: a random (version 4) UUID in upper case, as Windows writes them."""
    h = os.urandom(16).hex().upper()
    return f"uuid:{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_VARIANT: Final = {c: "89AB"[int(c, 16) & 3] for c in "0123456789ABCDEF"}


class EnumerationMode(str, enum.Enum):
    """``wsman:EnumerationMode``: what each enumerated item carries."""

    OBJECTS = ""
    EPR = "EnumerateEPR"
    OBJECT_AND_EPR = "EnumerateObjectAndEPR"


class PolymorphismMode(str, enum.Enum):
    """``wsmb:PolymorphismMode``: deep (default), deep with base properties only, or shallow."""

    INCLUDE_SUBCLASS_PROPERTIES = "IncludeSubClassProperties"
    EXCLUDE_SUBCLASS_PROPERTIES = "ExcludeSubClassProperties"
    NONE = "None"


@dataclass(kw_only=True, slots=True)
class Request:
    """Header fields every request shares.

    ``operation_timeout`` is in seconds; ``option_set`` maps option names to text, bool or int
    (from the ``Type`` attribute); ``encoding`` is the body's character encoding, which the answer
    mirrors. ``uri_style`` says which resource URI style to write (client) or was used (server).
    ``plain_values`` (server): the client reads OMI's shapes, datetimes as plain text and a query's selected
    properties in the class's element, not WinRM's ``cim:Datetime`` wrappers and ``wsman:XmlFragment``
    (OMI's own client, which names no User-Agent; OMI's server answers likewise any client but WinRM's).
    """

    ACTION: ClassVar[str] = ""

    message_id: str = field(default_factory=new_message_id)
    to: str | None = None
    resource_uri: str | None = None
    namespace: str | None = None
    class_name: str | None = None
    selectors: Selectors = field(default_factory=dict)
    operation_timeout: float | None = None
    max_envelope_size: int | None = None
    locale: str | None = None
    data_locale: str | None = None
    option_set: dict[str, Any] = field(default_factory=dict)
    option_set_must_understand: bool = False
    reply_to: str = ns.ANONYMOUS
    session_id: str | None = None
    operation_id: str | None = None
    uri_style: UriStyle = UriStyle.DMTF
    encoding: str = "utf-8"
    plain_values: bool = False

    @property
    def action(self) -> str:
        return self.ACTION

    def effective_resource_uri(self) -> str | None:
        """The resource URI given, or the one ``namespace``/``class_name``/``uri_style`` make."""
        if self.resource_uri:
            return self.resource_uri
        if self.class_name:
            return resource_uri(self.namespace, self.class_name, self.uri_style)
        return None


@dataclass(kw_only=True, slots=True)
class IdentifyRequest(Request):
    """``wsmid:Identify``; ``unauthenticated`` when it came with ``WSMANIDENTIFY: unauthenticated``."""

    unauthenticated: bool = False


@dataclass(kw_only=True, slots=True)
class GetRequest(Request):
    ACTION: ClassVar[str] = ns.ACTION_GET


@dataclass(kw_only=True, slots=True)
class DeleteRequest(Request):
    ACTION: ClassVar[str] = ns.ACTION_DELETE


@dataclass(kw_only=True, slots=True)
class PutRequest(Request):
    """Modify: keys in ``selectors``, the (full or partial) instance in the body."""

    ACTION: ClassVar[str] = ns.ACTION_PUT
    instance: Instance | None = None


@dataclass(kw_only=True, slots=True)
class CreateRequest(Request):
    ACTION: ClassVar[str] = ns.ACTION_CREATE
    instance: Instance | None = None


@dataclass(kw_only=True, slots=True)
class AssociationFilter:
    """The association filter dialect: ``associators`` for AssociatedInstances, else References."""

    object: Instance
    associators: bool = True
    association_class: str | None = None
    result_class: str | None = None
    role: str | None = None
    result_role: str | None = None


@dataclass(kw_only=True, slots=True)
class Filter:
    """``wsman:Filter``: a query (WQL, CQL), a selector filter, or an association filter."""

    dialect: str
    query: str | None = None
    selectors: Selectors | None = None
    association: AssociationFilter | None = None


@dataclass(kw_only=True, slots=True)
class EnumerateRequest(Request):
    """``max_elements`` None means absent (the server's default of 1 applies when ``optimize``)."""

    ACTION: ClassVar[str] = ns.ACTION_ENUMERATE
    optimize: bool = False
    max_elements: int | None = None
    mode: EnumerationMode = EnumerationMode.OBJECTS
    polymorphism: PolymorphismMode | None = None
    filter: Filter | None = None
    expires: str | None = None

    def effective_resource_uri(self) -> str | None:
        """As for any request, except that a query sent in the WMI style goes to the namespace's ``*`` URI
        (``…/wmi/root/cimv2/*``): WinRM serves WQL there, the FROM class naming the class."""
        if not self.resource_uri and self.uri_style is UriStyle.WMI and self.namespace \
                and self.filter is not None and self.filter.query is not None:
            return resource_uri(self.namespace, "*", UriStyle.WMI)
        return Request.effective_resource_uri(self)


@dataclass(kw_only=True, slots=True)
class PullRequest(Request):
    """``max_time`` in seconds; ``max_characters`` as sent."""

    ACTION: ClassVar[str] = ns.ACTION_PULL
    context: str = ""
    max_elements: int | None = None
    max_time: float | None = None
    max_characters: int | None = None


@dataclass(kw_only=True, slots=True)
class ReleaseRequest(Request):
    ACTION: ClassVar[str] = ns.ACTION_RELEASE
    context: str = ""


@dataclass(kw_only=True, slots=True)
class InvokeRequest(Request):
    """A method call: action ``<resource URI>/<method>`` unless ``action_uri`` says otherwise.

    ``parameters`` holds the in-parameters (class ``__parameters``); instance methods carry keys in
    ``selectors``, static ones none.
    """

    method: str = ""
    parameters: Instance | None = None
    action_uri: str | None = None

    @property
    def action(self) -> str:
        if self.action_uri:
            return self.action_uri
        return f"{self.effective_resource_uri() or ''}/{self.method}"


CLASS_NAME_SELECTOR: Final = "ClassName"


@dataclass(kw_only=True, slots=True)
class GetClassRequest(GetRequest):
    """GetClass: a Get on the CIM-XML schema URI, the class in the ``ClassName`` selector and the
    namespace in ``__cimnamespace`` (wsman.md §3.10). What the body carries (qualifiers, inherited
    elements, class origins, the inheritance chain) is asked for in ``option_set`` (see
    :class:`~openmi.protocol.wsman.classxml.ClassOptions`)."""

    def __post_init__(self) -> None:
        if self.class_name and CLASS_NAME_SELECTOR not in self.selectors:
            self.selectors[CLASS_NAME_SELECTOR] = self.class_name

    def effective_resource_uri(self) -> str | None:
        return self.resource_uri or CIMXML_SCHEMA_URI


@dataclass(kw_only=True, slots=True)
class EnumerateClassesRequest(EnumerateRequest):
    """EnumerateClasses: an Enumerate on the CIM-XML schema URI. ``class_name`` (the ``ClassName``
    selector) is the root whose subclasses are listed, None for every class; ``deep`` False lists direct
    subclasses only (``wsmb:PolymorphismMode`` None on the wire); ``names_only`` asks for classes without
    their elements (option ``ClassNamesOnly``)."""

    deep: bool = True
    names_only: bool = False

    def __post_init__(self) -> None:
        if self.class_name and CLASS_NAME_SELECTOR not in self.selectors:
            self.selectors[CLASS_NAME_SELECTOR] = self.class_name
        if not self.deep:
            self.polymorphism = PolymorphismMode.NONE
        if self.names_only:
            self.option_set.setdefault(CLASS_NAMES_ONLY_OPTION, True)

    def effective_resource_uri(self) -> str | None:
        return self.resource_uri or CIMXML_SCHEMA_URI


CLASS_NAMES_ONLY_OPTION: Final = "ClassNamesOnly"


REQUEST_TYPES: dict[str, type[Request]] = {
    ns.ACTION_GET: GetRequest,
    ns.ACTION_DELETE: DeleteRequest,
    ns.ACTION_PUT: PutRequest,
    ns.ACTION_CREATE: CreateRequest,
    ns.ACTION_ENUMERATE: EnumerateRequest,
    ns.ACTION_PULL: PullRequest,
    ns.ACTION_RELEASE: ReleaseRequest,
}

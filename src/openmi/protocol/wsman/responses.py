"""Typed WS-Man responses: what the engine hands the server to send, and what the client reads back.

Faults are not responses: the server builds them from an MIError, the client gets a ``WSManFault``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openmi.cim.classes import Class
from openmi.cim.instance import Instance

from . import namespaces as ns
from .classxml import ClassOptions
from .requests import EnumerationMode, new_message_id
from .values import Selectors


@dataclass(kw_only=True, slots=True)
class Response:
    """``relates_to`` and ``action`` are filled in when reading; the codec sets them when writing."""

    message_id: str = field(default_factory=new_message_id)
    relates_to: str | None = None
    action: str | None = None


@dataclass(kw_only=True, slots=True)
class IdentifyResponse(Response):
    """``product_version`` is left out for an unauthenticated Identify."""

    protocol_version: str = ns.WSMAN
    product_vendor: str = ""
    product_version: str | None = None
    security_profiles: list[str] = field(default_factory=list)
    fault_includes_cim_error: bool = False


@dataclass(kw_only=True, slots=True)
class GetResponse(Response):
    instance: Instance


@dataclass(kw_only=True, slots=True)
class GetClassResponse(Response):
    """A class as a DSP0201 ``<CLASS>`` body. Writing, ``derivation`` is its superclass chain (nearest
    first), sent when the request asks for IncludeInheritanceHierarchy; reading, it is what DERIVATION
    listed."""

    cls: Class
    derivation: list[str] = field(default_factory=list)


@dataclass(kw_only=True, slots=True)
class PutResponse(Response):
    """The updated instance, or None for an empty body (OMI sends one when its provider posts none)."""

    instance: Instance | None = None


@dataclass(kw_only=True, slots=True)
class CreateResponse(Response):
    """The ``ResourceCreated`` EPR. Writing needs ``instance_name`` (the new instance or its keys);
    reading fills ``resource_uri``, ``selectors`` and an ``instance_name`` made from them."""

    instance_name: Instance | None = None
    resource_uri: str | None = None
    selectors: Selectors = field(default_factory=dict)
    address: str = ns.ANONYMOUS


@dataclass(kw_only=True, slots=True)
class DeleteResponse(Response):
    pass


@dataclass(kw_only=True, slots=True)
class EnumerateResponse(Response):
    """``items`` are instances, or key-only instances in EPR mode.

    ``mode`` says what each item carries; writing, None means the Enumerate request's mode (a Pull
    does not repeat it, so the engine sets it on PullResponses). Reading, ``eprs`` holds each item's
    EPR in ObjectAndEPR and EPR modes, and the items' key elements are marked KEY.
    """

    context: str | None = None
    items: list[Instance] = field(default_factory=list)
    end_of_sequence: bool = False
    mode: EnumerationMode | None = None
    eprs: list[Instance] = field(default_factory=list)
    #: EnumerateClasses: the classes (``<CLASS>`` items), written after ``items`` and read apart from them
    classes: list[Class] = field(default_factory=list)
    #: writing classes with IncludeInheritanceHierarchy: each one's superclass chain, by lower-case name
    derivations: dict[str, list[str]] = field(default_factory=dict)
    #: writing classes: what they carry (None: what the request's OptionSet asks for)
    class_options: ClassOptions | None = None
    #: writing: each instance as a ``wsman:XmlFragment`` of unqualified properties in alphabetical order,
    #: the way WinRM answers a query that selects properties (``SELECT a, b``)
    fragments: bool = False


@dataclass(kw_only=True, slots=True)
class PullResponse(EnumerateResponse):
    """``bookmark``: a subscription's ``wsman:Bookmark`` header (the bookmark of the last event in the page),
    written when the Subscribe asked for SendBookmarks. ``heartbeat``: the page is a heartbeat (no event came
    in the interval)."""

    bookmark: str | None = None
    heartbeat: bool = False


@dataclass(kw_only=True, slots=True)
class ReleaseResponse(Response):
    pass


@dataclass(kw_only=True, slots=True)
class InvokeResponse(Response):
    """The out-parameters and ``ReturnValue`` (class ``__parameters``)."""

    method: str = ""
    parameters: Instance | None = None

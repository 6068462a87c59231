"""WS-Management for MI, sans I/O: SOAP 1.2 envelopes ⇄ typed requests, responses and faults.

One codec serves the server (``parse_request``, ``build_response``, ``build_fault``) and the client
(``build_request``, ``parse_response``); see :mod:`.codec`.
"""

from .classxml import ClassOptions, class_from_element, class_to_element
from .codec import (
    CLIENT_LIMITS,
    SERVER_LIMITS,
    Limits,
    build_fault,
    build_request,
    build_response,
    content_type,
    parse_identify,
    parse_request,
    parse_response,
    request_headers,
    response_content_type,
)
from .faults import Fault, WSManFault, fault_to_result
from .requests import (
    AssociationFilter,
    CreateRequest,
    DeleteRequest,
    EnumerateClassesRequest,
    EnumerateRequest,
    EnumerationMode,
    Filter,
    GetClassRequest,
    GetRequest,
    IdentifyRequest,
    InvokeRequest,
    PolymorphismMode,
    PullRequest,
    PutRequest,
    ReleaseRequest,
    Request,
    new_message_id,
)
from .responses import (
    CreateResponse,
    DeleteResponse,
    EnumerateResponse,
    GetClassResponse,
    GetResponse,
    IdentifyResponse,
    InvokeResponse,
    PullResponse,
    PutResponse,
    ReleaseResponse,
    Response,
)
from .uri import CIMXML_SCHEMA_URI, ResourceRef, UriStyle, parse_resource_uri, resource_uri
from .values import ClassLookup, apply_class, instance_selectors

__all__ = [
    "CIMXML_SCHEMA_URI",
    "CLIENT_LIMITS", "SERVER_LIMITS", "AssociationFilter", "ClassLookup", "ClassOptions", "CreateRequest",
    "CreateResponse", "DeleteRequest", "DeleteResponse", "EnumerateClassesRequest", "EnumerateRequest",
    "EnumerateResponse", "EnumerationMode", "Fault", "Filter", "GetClassRequest", "GetClassResponse", "GetRequest",
    "GetResponse", "IdentifyRequest", "IdentifyResponse", "InvokeRequest", "InvokeResponse", "Limits",
    "PolymorphismMode", "PullRequest", "PullResponse", "PutRequest", "PutResponse", "ReleaseRequest",
    "ReleaseResponse", "Request", "ResourceRef", "Response", "UriStyle", "WSManFault", "apply_class", "build_fault",
    "build_request", "build_response", "class_from_element", "class_to_element", "content_type", "fault_to_result",
    "instance_selectors", "new_message_id", "parse_identify", "parse_request", "parse_resource_uri", "parse_response",
    "request_headers", "resource_uri", "response_content_type",
]

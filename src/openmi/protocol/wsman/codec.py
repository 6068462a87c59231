"""The sans-I/O WS-Management codec: the five calls the server and the client make.

Server: ``parse_request`` (bytes → typed Request, or a WSManFault), ``build_response`` (typed
Response → bytes), ``build_fault`` (MIError → (HTTP status, bytes)), ``content_type`` for the reply.
Client: ``build_request`` (typed Request → bytes) with ``request_headers``, ``parse_response``
(bytes → typed Response, or a WSManFault carrying the MI result).
"""

from __future__ import annotations

from .envelope import CLIENT_LIMITS, SERVER_LIMITS, Limits, content_type
from .faults import WSManFault
from .request_codec import MAX_IDENTIFY_ENVELOPE, build_request, parse_identify, parse_request, request_headers
from .requests import Request
from .response_codec import build_fault, build_response, parse_response


def response_content_type(request: Request | None, error: Exception | None = None) -> str:
    """The Content-Type of our answer: it mirrors the request's encoding (UTF-8 or UTF-16)."""
    if request is not None:
        return content_type(request.encoding)
    if isinstance(error, WSManFault):
        return content_type(error.encoding)
    return content_type("utf-8")


__all__ = [
    "CLIENT_LIMITS", "MAX_IDENTIFY_ENVELOPE", "SERVER_LIMITS", "Limits", "WSManFault", "build_fault",
    "build_request", "build_response", "content_type", "parse_identify", "parse_request", "parse_response",
    "request_headers", "response_content_type",
]

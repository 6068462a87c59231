"""Resource URIs ⇄ (CIM namespace, class name), in the WMI style and the DMTF style.

WMI style carries the namespace in the path (``…/wsman/1/wmi/root/cimv2/Win32_Service``); DMTF style
(``…/wscim/1/cim-schema/2/CIM_Foo``) carries it in the ``__cimnamespace`` selector. Like OMI, any URI
whose path holds ``/cim-schema/<n>/`` counts as DMTF style and only its last segment names the class.
Namespaces follow the one rule of :func:`openmi.cim.namespaces.normalize_namespace` (``root/cimv2``; a
``\\`` from a Windows peer is a ``/``); a namespace it refuses raises its MIError (INVALID_PARAMETER).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from openmi.cim.namespaces import normalize_namespace

WMI_PREFIX: Final = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
DMTF_PREFIX: Final = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
DMTF_WILDCARD: Final = "http://schemas.dmtf.org/wbem/wscim/1/*"
CIMXML_SCHEMA_URI: Final = "http://schemas.dmtf.org/wbem/cim-xml/2/cim-schema/2/*"

CIMNAMESPACE_SELECTOR: Final = "__cimnamespace"

_WMI_PREFIX_LOW = WMI_PREFIX.lower()


class UriStyle(str, enum.Enum):
    """How a resource URI names its class: the style a response should echo back."""

    WMI = "wmi"
    DMTF = "dmtf"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """A parsed resource URI: its style, the namespace its path names (WMI style only) and the class.

    ``class_name`` is ``"*"`` for wildcard URIs and ``None`` when the URI names no class at all.
    """

    uri: str
    style: UriStyle
    namespace: str | None
    class_name: str | None

    @property
    def is_wildcard(self) -> bool:
        return self.class_name == "*"


MAX_CACHED_URI: Final = 512
"""Resource URIs up to this length are cached (2048 of them: at most ~1 MB); longer ones are parsed each time."""


def parse_resource_uri(uri: str) -> ResourceRef:
    """Split a resource URI into style, path namespace and class name (cached: URIs repeat)."""
    if len(uri) > MAX_CACHED_URI:
        return _parse_resource_uri(uri)
    return _cached_resource_uri(uri)


def _parse_resource_uri(uri: str) -> ResourceRef:
    u = uri.strip()
    if u.lower().startswith(_WMI_PREFIX_LOW):
        path = u[len(WMI_PREFIX):].strip("/")
        ns, _, cls = path.rpartition("/")
        return ResourceRef(u, UriStyle.WMI, ns or None, cls or None)  # checked by resolve_namespace
    path = u.split("?", 1)[0].rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if "/cim-schema/" in path or path.endswith("/wscim/1/*"):
        return ResourceRef(u, UriStyle.DMTF, None, last or None)
    return ResourceRef(u, UriStyle.OTHER, None, last or None)


_cached_resource_uri = lru_cache(maxsize=2048)(_parse_resource_uri)


def is_class_schema_uri(uri: str | None) -> bool:
    """Whether a resource URI addresses class declarations (GetClass, EnumerateClasses): the CIM-XML
    schema URI ``http://schemas.dmtf.org/wbem/cim-xml/2/cim-schema/2/*`` as Windows MI and OMI send it."""
    return bool(uri) and "/wbem/cim-xml/" in uri.lower()  # type: ignore[union-attr]


def resolve_namespace(
    ref: ResourceRef, cimnamespace: str | None, default_namespace: str | None
) -> str | None:
    """The CIM namespace a request addresses: ``__cimnamespace`` wins, then the WMI path, then the default."""
    if cimnamespace:
        return normalize_namespace(cimnamespace)
    if ref.namespace:
        return normalize_namespace(ref.namespace)
    return default_namespace


def resource_uri(namespace: str | None, class_name: str, style: UriStyle = UriStyle.DMTF) -> str:
    """The resource URI of a class: WMI style needs the namespace, DMTF style ignores it."""
    if style is UriStyle.WMI and namespace:
        return f"{WMI_PREFIX}{normalize_namespace(namespace)}/{class_name}"
    return DMTF_PREFIX + class_name


def needs_cimnamespace_selector(style: UriStyle) -> bool:
    """Whether a URI of this style leaves the namespace to the ``__cimnamespace`` selector."""
    return style is not UriStyle.WMI

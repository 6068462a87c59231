"""Namespace names: what mi.h accepts (``root/cimv2``) and what it refuses (machine names, empty segments).

The one rule for every front end: the engine, a remote session and the WS-Man server all normalize here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .errors import MIError
from .types import MIResult

DEFAULT_NAMESPACE = "root/cimv2"
INTEROP_NAMESPACE = "root/interop"

_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def normalize_namespace(namespace: str | None) -> str:
    """Return the namespace in ``a/b`` form, or raise INVALID_PARAMETER naming what is wrong.

    ``None`` and ``""`` select the server default. Backslashes are taken as separators (as WMI
    does), but a leading pair of separators (a machine name: ``//host/root``, ``\\\\host\\root``), empty
    segments and characters outside letters, digits, ``_``, ``-`` and ``.`` are refused.
    """
    if namespace is None or namespace == "":
        return DEFAULT_NAMESPACE
    if not isinstance(namespace, str):
        raise MIError(MIResult.INVALID_PARAMETER, f"the namespace must be a string, not {type(namespace).__name__}")
    if type(namespace) is not str:  # a str subclass (lxml's text results hold their tree): cache plain text
        namespace = str(namespace)
    return _normalize(namespace)


@lru_cache(maxsize=1024)  # every request names its namespace; a few names recur (a refusal is not cached)
def _normalize(namespace: str) -> str:
    text = namespace.replace("\\", "/")
    if text.startswith("//"):
        raise MIError(MIResult.INVALID_PARAMETER,
                      f"the namespace {namespace!r} names a machine; give only the namespace, e.g. root/cimv2")
    parts = text.split("/")
    for part in parts:
        if part == "":
            raise MIError(MIResult.INVALID_PARAMETER, f"the namespace {namespace!r} has an empty segment")
        if not _SEGMENT.match(part):
            raise MIError(MIResult.INVALID_PARAMETER,
                          f"the namespace {namespace!r} has an illegal character in {part!r}")
    return "/".join(parts)
